/* request.h - one client request: its items, its tasks, its reply */
#pragma once

#include <stdint.h>
#include <sys/queue.h>

#include "ledger.h"
#include "proto.h"
#include "registry.h"

struct conn;

struct request;
TAILQ_HEAD(request_list, request);

struct request {
	struct conn *conn;
	char *line; /* the request line; pr's spans point into it */
	struct proto_request pr;
	const struct fn_def *fn;
	uint32_t chunksize;
	uint32_t next_item;      /* first item not yet cut into a task */
	uint32_t items_answered; /* items with a final answer */
	struct task_list tasks;  /* in item order */
	struct task *prefix;     /* first task not yet done, NULL when none */
	struct task_list retryq; /* tasks to send again */
	int in_pending;
	TAILQ_ENTRY(request) plink; /* supervisor's pending ring */
	TAILQ_ENTRY(request) clink; /* the connection's requests */
	uint64_t start_ms;
};

/*
 * Start a map or apply: takes line (malloc'd) and pr. Errors are answered on
 * the connection; returns 0 or -errno.
 */
int request_start(struct conn *c, char *line, struct proto_request *pr);
/* 1 when the request has tasks to dispatch. */
int request_has_work(const struct request *r);
/* The next task to send: a retry first, else a new chunk. */
struct task *request_next_task(struct request *r);
/* A task of r got its final answer: reply when everything is answered. */
void request_task_done(struct request *r, struct task *t);
/* Answer r with an error and free it (cancel, disconnect, shutdown). */
void request_abort(struct request *r, enum proto_code code, const char *why);
/* Free r; its tasks still held by slots become orphans. */
void request_free(struct request *r);
/* Put r in (or keep it in) the dispatch ring. */
void request_schedule(struct request *r);
