/* pool.h - the worker slots: processes, their nanomsg sockets, credit and restarts */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "ledger.h"

/*
 * Tasks a slot may hold at once. One: then the task a dead worker held is the
 * one it was running, so retries are charged to the right items even when the
 * worker died right after sending a result (which nanomsg may lose). Chunking
 * amortises the round trip this costs between tasks.
 */
#define POOL_CREDIT 1

/* Start the result socket and every worker. Returns 0 or -errno. */
int pool_init(void);
/* Stop every worker (SIGTERM, SIGKILL after a grace); no respawns from now on. */
void pool_stop(void);
/* 1 when no worker process is left. */
int pool_all_exited(void);
/* Kill what is left and release everything. */
void pool_free(void);
/* Reap exited children (on SIGCHLD). */
void pool_reap(void);
struct fn_entry;

/* A ready slot with free credit that can run fn (NULL: any), idle ones first, or -1. */
int pool_pick(const struct fn_entry *fn);
/*
 * 1 when no worker can start (every slot failed its last starts before its
 * handshake), with the last reason in why: queued work must then fail rather
 * than wait without bound.
 */
int pool_unavailable(char *why, size_t n);
/* t's request went away while a worker runs it: stop that worker after a short grace. */
void pool_task_orphaned(struct task *t);
/* Slots by state, for metrics and systemd's STATUS=. */
struct pool_counts {
	int busy, idle, starting, backoff;
};
void pool_counts(struct pool_counts *pc);
/* Number of slots; the task slot i runs now (NULL when none). */
int pool_size(void);
struct task *pool_running(int i);
/* Replace workers of older configurations, one at a time (after a reload). */
void pool_roll(void);
/* Send t to slot s: 0, or -EAGAIN when the slot cannot take it now. */
int pool_send(int s, struct task *t);
/* Append the "slots" array of the status reply. */
void pool_status(struct buf *b);
/* Largest message on any nanomsg socket. */
size_t pool_max_msg(void);
