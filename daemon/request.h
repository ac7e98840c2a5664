/* request.h - one client request: its items, its tasks, its reply */
#pragma once

#include <stdint.h>
#include <sys/queue.h>

#include "conf.h"
#include "json.h"
#include "ledger.h"
#include "proto.h"

/* Chunks stay under this many bytes of items, whatever the item count. */
#define CHUNK_MAX_BYTES (1024 * 1024)
/*
 * Automatic chunks aim at this much work: a task costs about one ipc round
 * trip (50-100 us) in the supervisor and the worker, so 5 ms of work keeps
 * that overhead near 1-2 % while a slow item still travels alone.
 */
#define CHUNK_TARGET_NS 5000000.0

struct conn;
struct confgen;

/*
 * One line's array of items: a map's args or one feed of a stream. Items are
 * cut into tasks straight from the line's text (no per-item storage); the
 * batch lives while a task points into it or items are left to cut.
 */
struct batch {
	char *line;           /* owned text, NULL when it is the request's own line */
	struct json_iter cut; /* the items not yet cut */
	struct json_index ix; /* where its items lie (its marks owned), n_marks 0 when unknown */
	uint32_t n;           /* its items */
	uint32_t left;        /* how many are not cut yet */
	uint32_t refs;        /* tasks pointing into the text, +1 while items are left */
	size_t bytes;         /* the line's length, counted against --max-memory */
	TAILQ_ENTRY(batch) link;
};
TAILQ_HEAD(batch_list, batch);

struct request;
TAILQ_HEAD(request_list, request);

struct request {
	struct conn *conn;
	char *line; /* the request line; pr's spans point into it */
	struct proto_request pr;
	struct confgen *cg;        /* the configuration it started with (a reference) */
	const struct fn_entry *fn; /* in cg */
	uint16_t wire_flags;       /* WIRE_STAR, WIRE_APPLY, WIRE_FAIL_FAST for its tasks */
	struct batch_list batches; /* live batches, oldest first */
	struct batch *cutting;     /* first batch with items left, NULL when none */
	uint64_t n_items;          /* items received (a map: all of them) */
	uint64_t n_cut;            /* items cut into tasks */
	uint64_t n_written;        /* stream: items whose results were written */
	uint64_t n_failed;         /* stream: failed items written (collect mode) */
	int ended;                 /* no more items will come */
	int full;                  /* a stream over its window: its connection is not read */
	size_t mem;                /* bytes counted against --max-memory: text, results */
	double ns_per_item;        /* measured cost of one item, 0 until known */
	struct task_list tasks;    /* tasks not yet written, in item order */
	struct task *prefix;       /* first task not yet done, NULL when none */
	struct task_list retryq;   /* tasks to send again */
	int in_pending;
	uint32_t n_sent;            /* tasks held by workers now */
	uint32_t crashes;           /* workers its items crashed: then one task at a time */
	struct event *ev_hold;      /* after a crash: when it may send again (NULL until one) */
	TAILQ_ENTRY(request) plink; /* supervisor's pending ring */
	TAILQ_ENTRY(request) clink; /* the connection's requests */
	uint64_t start_ms;
};

/*
 * Start a map, a stream or an apply: takes line (malloc'd) and pr. ix, when
 * not NULL, indexes pr's args in line (json_scan_index): chunks are cut
 * without walking the items. Errors are answered on the connection; returns
 * 0 or -errno.
 */
int request_start(struct conn *c, char *line, struct proto_request *pr,
                  const struct json_index *ix);
/* A feed or end line for stream r: takes line; ix as for request_start. Errors end the stream. */
void request_feed(struct request *r, char *line, const struct proto_request *pr,
                  const struct json_index *ix);
/*
 * A worker crashed on one of r's items: r sends one task at a time from now
 * on, and waits a little longer after each crash before its next one.
 */
void request_crashed(struct request *r);
/* 1 when the request has tasks to dispatch now. */
int request_has_work(const struct request *r);
/*
 * Items in the next new chunk of r, 0 when its next task would be a retry or
 * it has nothing to cut (only new chunks join a bundle).
 */
uint32_t request_next_count(const struct request *r);
/* The next task to send: a retry first, else a new chunk. */
struct task *request_next_task(struct request *r);
/* Cut t after its first k items; the rest becomes a new queued task, returned. */
struct task *request_split_task(struct request *r, struct task *t, uint32_t k);
/* A worker measured count items of r taking ns nanoseconds (sizes later chunks). */
void request_observe(struct request *r, uint32_t count, uint64_t ns);
/* A task of r got its final answer: write what is ready, reply when all is. */
void request_task_done(struct request *r, struct task *t);
/* Answer r with err and free it. */
void request_fail(struct request *r, const struct proto_error *err);
/* Answer r with an error and free it (cancel, disconnect, shutdown). */
void request_abort(struct request *r, enum proto_code code, const char *why);
/* Free r; its tasks still held by slots become orphans. */
void request_free(struct request *r);
/* Put r in (or keep it in) the dispatch ring. */
void request_schedule(struct request *r);
/* Free a task whose answer was written (or is no longer wanted). */
void request_drop_task(struct request *r, struct task *t);
/* Update r->full from the items it holds; the connection stops reading while full. */
void request_check_window(struct request *r);
