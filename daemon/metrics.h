/* metrics.h - counters for the metrics op (Prometheus text format) and the slow-task log */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"

/* Why a worker process ended. */
enum metrics_death {
	DEATH_CRASH,   /* a signal or an exit of its own (a function's fault) */
	DEATH_KILLED,  /* SIGKILL/SIGTERM from outside: an operator, the OOM killer */
	DEATH_TIMEOUT, /* stopped by poold: a task ran past its timeout */
	DEATH_PROGRAM, /* its worker program misbehaved */
	DEATH_START,   /* it exited before its handshake */
	DEATH_RETIRED, /* planned: max_tasks_per_worker, abandoned work, reload, stop */
	DEATH_MAX
};

/* A request (any op) was answered: code PROTO_OK or the error's code. */
void metrics_reply(enum proto_op op, enum proto_code code);
/* An error reply line was written (whatever its origin: a request, a bad line, a limit). */
void metrics_error(enum proto_code code);
/* Items answered: ok or failed (an error in the item's place, or the request failed). */
void metrics_items(uint64_t ok, uint64_t failed);
void metrics_worker_start(void);
void metrics_worker_death(enum metrics_death cause);
/* A task went back to the queue after its worker was lost. */
void metrics_retry(void);
/* A message on the hosts port was dropped (authentication, replay, malformed). */
void metrics_sealed_drop(void);
/* A task was answered after ms milliseconds on its worker. */
void metrics_task_time(uint64_t ms);
/* Bytes read from / written to clients. */
void metrics_bytes(uint64_t in, uint64_t out);
/* Append the whole exposition text (as a JSON string's content it is escaped by the caller). */
void metrics_render(struct buf *b);
/* Start the once-a-second slow-task check (--slow-task-ms; 0 = off). */
void metrics_start(void);
void metrics_stop(void);
