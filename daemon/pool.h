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

/* Remote slots kept for worker hosts when the supervisor listens for them (--hosts). */
#define POOL_MAX_HOSTS 32

/*
 * Where the pool reports what becomes of tasks: the ledger's functions in
 * the supervisor, a host agent's relays in poold --join (agent.c).
 */
struct pool_hooks {
	/* A worker answered the message that carried ts[0..n) with m (msg taken). */
	void (*result)(struct task **ts, int n, const struct wire_msg *m, void *msg);
	/* The slot holding t lost it (see ledger_task_lost). */
	void (*lost)(struct task *t, enum lost_charge charge, enum proto_code code,
	             const char *why);
	/* Credit came free: send what waits. */
	void (*dispatch)(void);
	/* Children were reaped. */
	void (*reaped)(void);
};

/* Replace the ledger's hooks (before pool_init); h must outlive the pool. */
void pool_set_hooks(const struct pool_hooks *h);
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
/* Most tasks one message carries (a bundle of several requests' cheap tasks). */
#define POOL_BUNDLE_MAX 64

/*
 * Send tasks ts[0..n) to slot s in one message (n > 1: a bundle; they share
 * the function, flags and timeout, and ts[0]->budget_ms covers them all).
 * Returns 0, or -EAGAIN when the slot cannot take it now.
 */
int pool_send(int s, struct task **ts, int n);
/* Append the "slots" array of the status reply. */
void pool_status(struct buf *b);
/* Largest message on any nanomsg socket. */
size_t pool_max_msg(void);

/*
 * Remote slots: a host agent (hosts.c) is one slot with pid 0 and a credit of
 * its worker count, so that dispatch, credit, halving and retries treat it as
 * they treat a worker. pool_send hands its messages to hosts_send_task.
 */
struct host;
struct confgen;
/* A joined host gets a free remote slot (not ready yet); its index, or -1 when none is left. */
int pool_host_add(struct host *h, uint32_t workers, struct confgen *cg);
/* The host's handshake finished: send it tasks. */
void pool_host_ready(int slot);
/* A result from the host (msg taken, an nn_allocmsg buffer holding m). */
void pool_host_result(int slot, const struct wire_msg *m, void *msg);
/* The host lost message msg_id (its worker died): charged as a local worker's death. */
void pool_host_lost(int slot, uint64_t msg_id, enum lost_charge charge, enum proto_code code,
                    const char *why);
/*
 * A heartbeat listed the messages the host holds (n little-endian u64 ids):
 * a message sent before sent_before that it does not list was lost on the
 * way (there or back) and is queued again, uncharged.
 */
void pool_host_reconcile(int slot, const unsigned char *ids, size_t n, uint64_t sent_before);
/* The host is gone: every message it held is lost (charged as an outside kill); slot freed. */
void pool_host_remove(int slot, const char *why);
/* Tasks the host holds now, items it answered in this generation. */
void pool_host_counts(int slot, uint32_t *held, uint64_t *items_done);
