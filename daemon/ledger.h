/* ledger.h - every task in the supervisor: where it is, its attempts, its answer */
#pragma once

#include <stdint.h>
#include <sys/queue.h>

#include "json.h"
#include "proto.h"
#include "wire.h"

enum task_state {
	TASK_QUEUED, /* waiting for a slot */
	TASK_SENT,   /* held by a slot */
	TASK_DONE,   /* answered; result kept until the request replies */
};

struct request;
struct batch;
struct fn_entry;

struct task {
	uint64_t id;
	struct request *req;    /* NULL once the request is gone (orphan) */
	struct batch *batch;    /* the line holding the items' text; NULL for orphans */
	struct json_span items; /* the items' text, "a,b,c" */
	uint64_t first;         /* index of the first item in the request */
	uint32_t count;
	enum task_state state;
	int slot;
	uint32_t attempts; /* failed attempts so far */
	uint64_t sent_ms;
	/* What the worker needs, set when the task is made (orphans keep it). */
	const struct fn_entry *fn;
	uint16_t flags;      /* wire_flags */
	uint32_t timeout_ms; /* per item, 0 = none */
	uint64_t orphan_ms;  /* when its request went away while a worker held it */
	/*
	 * How long its worker may take before it counts as hung: timeout_ms for
	 * its running item plus the measured cost of the others, so that a hung
	 * worker is found about timeout_ms after its item started, not
	 * timeout_ms times the chunk's size later.
	 */
	uint64_t budget_ms;
	int slow_logged; /* the slow-task log named it already */
	uint64_t msg_id; /* the message that carried it to its worker (the first task's id) */
	int alone;       /* it died in a bundle: it travels alone from now on */
	void *msg;       /* nanomsg result message (nn_freemsg) or malloc'd text */
	int msg_is_nn;
	const char *result; /* answered items' values joined by ',' (inside msg) */
	size_t result_len;
	uint32_t n_failed;
	uint32_t *failed; /* indices within the task of failed items (collect mode) */
	uint32_t first_error;
	TAILQ_ENTRY(task) rlink; /* the request's tasks, in item order */
	TAILQ_ENTRY(task) qlink; /* the request's retry queue */
	TAILQ_ENTRY(task) slink; /* the slot's held tasks, oldest first */
};

TAILQ_HEAD(task_list, task);

/* A new queued task for items [first, first+count) of req. */
struct task *ledger_task_new(struct request *req, uint64_t first, uint32_t count);
void ledger_task_free(struct task *t);
/*
 * A worker answered the message that carried tasks ts[0..n) with m (msg is
 * the nanomsg buffer, taken): each task gets its share of the values.
 */
void ledger_message_result(struct task **ts, int n, const struct wire_msg *m, void *msg);
/* How a lost task is charged. */
enum lost_charge {
	LOST_FREE,   /* not its fault (a worker retired or was stopped with it queued) */
	LOST_CHARGE, /* it was running when its worker was killed from outside */
	LOST_CRASH,  /* it was running when its worker crashed or overran its timeout */
};

/*
 * The slot holding t lost it. charge: whether the attempt counts against the
 * task's retries; a crash also throttles its request (one task at a time), so
 * that one client's poison items cannot keep every worker restarting.
 */
void ledger_task_lost(struct task *t, enum lost_charge charge, enum proto_code code,
                      const char *why);
/* Hand queued tasks to slots with free credit, fairly across requests. */
void ledger_dispatch(void);
