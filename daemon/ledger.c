/* ledger.c - every task in the supervisor: where it is, its attempts, its answer */
#include "ledger.h"

#include <nanomsg/nn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confgen.h"
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

/* Learn the function's cost per item across requests: what bundling goes by. */
static void ledger_observe_fn(const struct task *t, uint32_t count, uint64_t ns)
{
	double *cost = t->req ? confgen_cost(t->req->cg, t->fn) : NULL;
	double sample = (double)ns / count;

	if (cost)
		*cost = *cost > 0 ? 0.7 * *cost + 0.3 * sample : sample;
}

/* Free a result buffer: nanomsg's, or one of ours (a bundle's share). */
static void free_msg(void *msg, int is_nn)
{
	if (is_nn)
		nn_freemsg(msg);
	else
		free(msg);
}

/* t's worker answered m (msg holds it: nanomsg's buffer when is_nn, else malloc'd). */
static void task_answer(struct task *t, const struct wire_msg *m, void *msg, int is_nn)
{
	struct request *r = t->req;
	uint32_t i;

	task_set_state(t, TASK_DONE);
	if (!r || m->count == 0) {
		free_msg(msg, is_nn);
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
	t->msg_is_nn = is_nn;
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

/*
 * The share of bundle result m that answers k items starting at item base
 * (values it.p onwards): a message of its own, in a malloc'd copy.
 */
static void *bundle_share(const struct wire_msg *m, struct json_iter *it, uint32_t base, uint32_t k,
                          struct wire_msg *out)
{
	struct json_span e = {it->p, 0};
	const char *start = NULL;
	unsigned char *p;
	uint32_t i, n_err = 0;
	size_t len;

	for (i = 0; i < k; i++) {
		json_array_next(it, &e);
		if (!i)
			start = e.p;
	}
	len = k ? (size_t)(e.p + e.len - start) : 0;
	for (i = 0; i < m->n_errors; i++)
		n_err += wire_error_at(m, i) - base < k;
	p = xmalloc(len + (size_t)n_err * 4 + 1);
	memcpy(p, start, len);
	*out = *m;
	out->payload = (const char *)p;
	out->payload_len = len;
	out->count = k;
	out->busy_ns = m->count ? m->busy_ns * k / m->count : 0;
	out->first_error = WIRE_NO_ERROR;
	out->n_errors = 0;
	out->errors = p + len;
	for (i = 0; i < m->n_errors; i++) {
		uint32_t at = wire_error_at(m, i) - base;

		if (at >= k)
			continue;
		if (out->first_error == WIRE_NO_ERROR)
			out->first_error = at;
		p[len + out->n_errors * 4] = (unsigned char)at;
		p[len + out->n_errors * 4 + 1] = (unsigned char)(at >> 8);
		p[len + out->n_errors * 4 + 2] = (unsigned char)(at >> 16);
		p[len + out->n_errors * 4 + 3] = (unsigned char)(at >> 24);
		out->n_errors++;
	}
	return p;
}

void ledger_message_result(struct task **ts, int n, const struct wire_msg *m, void *msg)
{
	struct json_iter it = {m->payload, m->payload + m->payload_len};
	uint32_t base = 0;
	int i;

	if (m->busy_ns && m->count)
		ledger_observe_fn(ts[0], m->count, m->busy_ns);
	if (n == 1) {
		task_answer(ts[0], m, msg, 1);
		return;
	}
	for (i = 0; i < n; i++) {
		struct task *t = ts[i];
		uint32_t k = m->count - base < t->count ? m->count - base : t->count;
		struct wire_msg share;
		void *copy;

		if (!k) {
			/* The worker stopped before t (its message was full, or fail-fast). */
			t->alone |= m->count == 0;
			ledger_task_lost(t, m->count ? LOST_FREE : LOST_CHARGE, PROTO_INTERNAL,
			                 "a worker answered no item");
			continue;
		}
		copy = bundle_share(m, &it, base, k, &share);
		base += k;
		task_answer(t, &share, copy, 0);
	}
	nn_freemsg(msg);
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
	log_error("%s: failing the requests waiting for a worker", why);
	while ((r = TAILQ_FIRST(&sv.pending)))
		request_abort(r, PROTO_WORKER_DIED, why);
	return 1;
}

/* 1 when a task of o may share a message with t (a task of another request). */
static int bundles_with(const struct task *t, const struct request *o)
{
	const struct request *r = t->req;

	return o->fn == t->fn && o->wire_flags == t->flags && o->pr.timeout_ms == t->timeout_ms &&
	       o->pr.retries == r->pr.retries && o->pr.on_error == r->pr.on_error;
}

/*
 * Many small requests: when the function is cheap (its measured cost per
 * item, across requests) and other requests wait with work for it, their
 * next tasks join ts[0] in one message, up to about CHUNK_TARGET_NS of work,
 * CHUNK_MAX_BYTES of items and POOL_BUNDLE_MAX tasks. Each request gives one
 * task a turn and goes to the ring's tail, as in a dispatch pass. Only first
 * attempts travel together: a task that died in a bundle goes alone. Returns
 * the number of tasks in ts.
 */
static int bundle(struct request *r, struct task **ts)
{
	double *costp = confgen_cost(r->cg, r->fn), cost = costp ? *costp : 0, work;
	size_t bytes = ts[0]->items.len;
	struct request *o, *next, *moved = NULL;
	int n = 1;

	if (cost <= 0 || ts[0]->attempts || ts[0]->alone)
		return 1;
	work = cost * ts[0]->count;
	for (o = TAILQ_FIRST(&sv.pending); o && o != moved && n < POOL_BUNDLE_MAX; o = next) {
		uint32_t k = request_next_count(o);
		struct task *u;

		next = TAILQ_NEXT(o, plink);
		if (!k || !bundles_with(ts[0], o) || work + cost * k > CHUNK_TARGET_NS)
			continue;
		u = request_next_task(o);
		if (bytes + u->items.len + 1 > CHUNK_MAX_BYTES) {
			TAILQ_INSERT_HEAD(&o->retryq, u, qlink);
			break;
		}
		ts[n++] = u;
		work += cost * u->count;
		bytes += u->items.len + 1;
		ts[0]->budget_ms += (uint64_t)(2.0 * cost * u->count / 1e6) + 1;
		TAILQ_REMOVE(&sv.pending, o, plink);
		o->in_pending = 0;
		request_schedule(o);
		if (o->in_pending && !moved)
			moved = o;
	}
	return n;
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
	struct task *t, *ts[POOL_BUNDLE_MAX];
	int s, i, n;

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
		ts[0] = t = request_next_task(r);
		t->budget_ms = task_budget_ms(r, t);
		n = bundle(r, ts);
		if (pool_send(s, ts, n) < 0) {
			for (i = n - 1; i >= 0; i--) {
				TAILQ_INSERT_HEAD(&ts[i]->req->retryq, ts[i], qlink);
				request_schedule(ts[i]->req);
			}
			continue;
		}
		for (i = 0; i < n; i++)
			task_set_state(ts[i], TASK_SENT);
		if (request_has_work(r))
			request_schedule(r);
	}
}
