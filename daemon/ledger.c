/* ledger.c - every task in the supervisor: where it is, its attempts, its answer */
#include "ledger.h"

#include <nanomsg/nn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "request.h"
#include "supervisor.h"
#include "xalloc.h"

static void task_set_state(struct task *t, enum task_state st)
{
	if (t->state == TASK_QUEUED) {
		sv.tasks_queued--;
	} else if (t->state == TASK_SENT) {
		sv.tasks_running--;
		if (t->req && t->req->n_sent-- && t->req->crashes)
			request_schedule(t->req); /* a throttled request may send its next */
	}
	t->state = st;
	if (st == TASK_QUEUED) {
		sv.tasks_queued++;
	} else if (st == TASK_SENT) {
		sv.tasks_running++;
		if (t->req)
			t->req->n_sent++;
	}
	if (st != TASK_SENT)
		t->slot = -1;
}

struct task *ledger_task_new(struct request *req, uint64_t first, uint32_t count)
{
	struct task *t = xcalloc(1, sizeof(*t));

	t->id = ++sv.next_task_id;
	t->req = req;
	t->fn = req->fn;
	t->flags = req->wire_flags;
	t->timeout_ms = req->pr.timeout_ms;
	t->first = first;
	t->count = count;
	t->slot = -1;
	t->state = TASK_DONE;
	t->first_error = WIRE_NO_ERROR;
	task_set_state(t, TASK_QUEUED);
	return t;
}

static void task_drop_answer(struct task *t)
{
	if (t->msg && t->msg_is_nn)
		nn_freemsg(t->msg);
	else
		free(t->msg);
	t->msg = NULL;
	free(t->failed);
	t->failed = NULL;
}

void ledger_task_free(struct task *t)
{
	task_set_state(t, TASK_DONE);
	task_drop_answer(t);
	free(t);
}

void ledger_task_result(struct task *t, const struct wire_msg *m, void *msg)
{
	struct request *r = t->req;
	uint32_t i;

	task_set_state(t, TASK_DONE);
	if (!r || m->count == 0) {
		nn_freemsg(msg);
		if (!r) {
			ledger_task_free(t);
			return;
		}
		ledger_task_lost(t, LOST_CHARGE, PROTO_INTERNAL, "a worker answered no item");
		return;
	}
	if (m->count < t->count &&
	    (m->first_error == WIRE_NO_ERROR || r->pr.on_error == ON_ERROR_COLLECT)) {
		/* The worker answered part of the chunk (its result filled a message). */
		struct task *rest = request_split_task(r, t, m->count);

		TAILQ_INSERT_HEAD(&r->retryq, rest, qlink);
		request_schedule(r);
	}
	if (m->busy_ns)
		request_observe(r, m->count, m->busy_ns);
	t->count = m->count; /* fail mode stops at the first failed item */
	t->msg = msg;
	t->msg_is_nn = 1;
	t->result = m->payload;
	t->result_len = m->payload_len;
	t->first_error = m->first_error;
	t->n_failed = m->n_errors;
	if (m->n_errors) {
		t->failed = xmalloc(sizeof(*t->failed) * m->n_errors);
		for (i = 0; i < m->n_errors; i++)
			t->failed[i] = wire_error_at(m, i);
	}
	sv.items_done += m->count;
	metrics_items(m->count - m->n_errors, m->n_errors);
	request_task_done(r, t);
}

/* Give t its final answer: the error code for its single item. */
static void task_fail(struct task *t, enum proto_code code, const char *why)
{
	struct proto_error e = {.code = code, .index = -1};
	struct buf b = {0};

	snprintf(e.message, sizeof(e.message), "%s; %u attempt%s", why, t->attempts,
	         t->attempts == 1 ? "" : "s");
	buf_adds(&b, "{\"error\":");
	proto_error_object(&b, &e);
	buf_addc(&b, '}');
	task_set_state(t, TASK_DONE);
	t->result_len = b.len;
	t->msg = buf_steal(&b, NULL);
	t->msg_is_nn = 0;
	t->result = t->msg;
	t->first_error = 0;
	t->n_failed = 1;
	t->failed = xcalloc(1, sizeof(*t->failed));
	sv.items_done++;
	metrics_items(0, 1);
	request_task_done(t->req, t);
}

/*
 * A chunk that dies as a whole is cut in two halves, without charging them:
 * nobody knows which item was guilty, and one poison item must not take its
 * neighbours down. Halving finds a poison item in log2(count) steps while
 * random deaths (a killed worker) leave big chunks big. Single items are
 * charged for every failure.
 */
void ledger_task_lost(struct task *t, enum lost_charge charge, enum proto_code code,
                      const char *why)
{
	struct request *r = t->req;

	task_set_state(t, TASK_QUEUED);
	if (!r) {
		ledger_task_free(t);
		return;
	}
	if (charge == LOST_CRASH)
		request_crashed(r);
	if (charge && t->count > 1) {
		metrics_retry();
		struct task *c = request_split_task(r, t, t->count / 2);

		TAILQ_INSERT_HEAD(&r->retryq, c, qlink);
		TAILQ_INSERT_HEAD(&r->retryq, t, qlink);
		request_schedule(r);
		return;
	}
	if (charge)
		t->attempts++;
	if (charge && t->attempts > r->pr.retries) {
		task_fail(t, code, why);
		return;
	}
	metrics_retry();
	TAILQ_INSERT_HEAD(&r->retryq, t, qlink);
	request_schedule(r);
}

/*
 * How long the worker may run t before it counts as hung: timeout_ms for the
 * item it runs now plus twice the measured cost of the others (a
 * misprediction only halves the chunk, uncharged), at most timeout_ms per item.
 */
static uint64_t task_budget_ms(const struct request *r, const struct task *t)
{
	uint64_t full = (uint64_t)t->timeout_ms * t->count, rest;

	if (!t->timeout_ms || t->count <= 1 || r->ns_per_item <= 0)
		return full;
	rest = (uint64_t)(2.0 * r->ns_per_item * (t->count - 1) / 1e6) + 1;
	return t->timeout_ms + rest < full ? t->timeout_ms + rest : full;
}

/* No worker can start: fail what waits, with the reason, rather than hang. */
static int fail_if_unavailable(void)
{
	char why[200];
	struct request *r;

	if (!TAILQ_FIRST(&sv.pending) || !pool_unavailable(why, sizeof(why)))
		return 0;
	log_error("%s: failing %s", why, "the requests waiting for a worker");
	while ((r = TAILQ_FIRST(&sv.pending)))
		request_abort(r, PROTO_WORKER_DIED, why);
	return 1;
}

/*
 * Hand queued tasks to slots with free credit, fairly across requests: each
 * pass takes the request at the head of the ring, sends one task, and puts it
 * back at the tail. A request no free worker can run now (its function is
 * only in a newer or older configuration) goes to the tail and waits.
 */
void ledger_dispatch(void)
{
	struct request *r, *first_stuck = NULL;
	struct task *t;
	int s;

	if (fail_if_unavailable())
		return;
	while ((r = TAILQ_FIRST(&sv.pending)) && r != first_stuck) {
		TAILQ_REMOVE(&sv.pending, r, plink);
		r->in_pending = 0;
		s = pool_pick(r->fn);
		if (s < 0) {
			request_schedule(r);
			if (pool_pick(NULL) < 0)
				break;
			if (!first_stuck)
				first_stuck = r;
			continue;
		}
		t = request_next_task(r);
		t->budget_ms = task_budget_ms(r, t);
		if (pool_send(s, t) < 0) {
			TAILQ_INSERT_HEAD(&r->retryq, t, qlink);
			request_schedule(r);
			continue;
		}
		task_set_state(t, TASK_SENT);
		if (request_has_work(r))
			request_schedule(r);
	}
}
