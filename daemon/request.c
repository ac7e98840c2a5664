/* request.c - one client request: its items, its tasks, its reply */
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "confgen.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "reply.h"
#include "supervisor.h"
#include "xalloc.h"

/* Check the arity of each item of args (star) or of the apply's call. */
static int check_items(struct request *r, struct json_span args, struct proto_error *err)
{
	const struct fn_entry *d = r->fn;
	struct json_iter it;
	struct json_span e;
	uint64_t i = r->n_items;
	size_t n;

	if (r->pr.op == OP_APPLY) {
		n = json_array_count(args);
		if ((int)n < d->min_args || (int)n > d->max_args)
			return proto_error_set(err, PROTO_BAD_ARITY, -1,
			                       "%s takes %d to %d arguments, got %zu", d->name,
			                       d->min_args, d->max_args, n);
		return 0;
	}
	if (!r->pr.star) {
		if (d->min_args > 1 || d->max_args < 1)
			return proto_error_set(err, PROTO_BAD_ARITY, -1,
			                       "%s takes %d arguments; map passes one per item "
			                       "(use star for argument lists)",
			                       d->name, d->min_args);
		return 0;
	}
	if (!args.p)
		return 0; /* a stream opened without items */
	json_iter_init(&it, args);
	for (; json_array_next(&it, &e); i++) {
		if (json_type(e) != JSON_ARRAY)
			return proto_error_set(err, PROTO_INVALID_REQUEST, (long)i,
			                       "starmap item %llu is not an array of arguments",
			                       (unsigned long long)i);
		n = json_array_count(e);
		if ((int)n < d->min_args || (int)n > d->max_args)
			return proto_error_set(err, PROTO_BAD_ARITY, (long)i,
			                       "item %llu: %s takes %d to %d arguments, got %zu",
			                       (unsigned long long)i, d->name, d->min_args,
			                       d->max_args, n);
	}
	return 0;
}

/*
 * The function's own timeout_ms and retries are its defaults and its ceiling:
 * a request may ask for less, never for more. Flags for its tasks too.
 */
static void apply_function_limits(struct request *r)
{
	const struct fn_entry *f = r->fn;

	if (f->timeout_ms &&
	    (!r->pr.has_timeout || !r->pr.timeout_ms || r->pr.timeout_ms > f->timeout_ms))
		r->pr.timeout_ms = f->timeout_ms;
	if (f->has_retries && (!r->pr.has_retries || r->pr.retries > f->retries))
		r->pr.retries = f->retries;
	if (r->pr.op == OP_APPLY)
		r->wire_flags |= WIRE_APPLY;
	if (r->pr.star)
		r->wire_flags |= WIRE_STAR;
	if (r->pr.on_error == ON_ERROR_FAIL)
		r->wire_flags |= WIRE_FAIL_FAST;
}

/*
 * Queue args (n items) for cutting; line (may be NULL) is owned by the batch.
 * The marks of ix are copied when ix indexes args and has some.
 */
static void add_batch(struct request *r, char *line, struct json_span args, size_t n,
                      const struct json_index *ix)
{
	struct batch *b = xcalloc(1, sizeof(*b));

	b->line = line;
	json_iter_init(&b->cut, args);
	if (ix && ix->end && ix->n_marks && ix->base + ix->start == args.p) {
		b->ix = *ix;
		b->ix.mark = xmalloc(ix->n_marks * sizeof(*ix->mark));
		memcpy(b->ix.mark, ix->mark, ix->n_marks * sizeof(*ix->mark));
	}
	b->n = (uint32_t)n;
	b->left = (uint32_t)n;
	b->refs = 1;
	TAILQ_INSERT_TAIL(&r->batches, b, link);
	if (!r->cutting)
		r->cutting = b;
	r->n_items += n;
	sv.items_in_flight += n;
}

/* r holds delta more bytes of text or results (negative: fewer), for --max-memory. */
static void request_mem(struct request *r, ssize_t delta)
{
	r->mem += (size_t)delta;
	conn_mem(r->conn, delta);
}

static void batch_unref(struct request *r, struct batch *b)
{
	if (--b->refs)
		return;
	request_mem(r, -(ssize_t)b->bytes);
	TAILQ_REMOVE(&r->batches, b, link);
	free(b->ix.mark);
	free(b->line);
	free(b);
}

void request_fail(struct request *r, const struct proto_error *err)
{
	metrics_reply(r->pr.op, err->code);
	conn_send_error(r->conn, r->pr.id, err);
	request_free(r);
}

int request_start(struct conn *c, char *line, struct proto_request *pr, const struct json_index *ix)
{
	struct request *r = xcalloc(1, sizeof(*r));
	struct proto_error err;

	r->conn = c;
	r->line = line;
	request_mem(r, (ssize_t)pr->line_len);
	r->pr = *pr;
	r->start_ms = now_ms();
	r->ended = !pr->stream;
	TAILQ_INIT(&r->tasks);
	TAILQ_INIT(&r->retryq);
	TAILQ_INIT(&r->batches);
	TAILQ_INSERT_TAIL(conn_requests(c), r, clink);
	conn_request_added(c, r);
	sv.n_requests++;
	r->cg = confgen_ref(confgen_current());
	r->cg->n_requests++;
	r->fn = conf_find(&r->cg->c, r->pr.fn, strlen(r->pr.fn));
	if (!r->fn) {
		proto_error_set(&err, PROTO_UNKNOWN_FUNCTION, -1,
		                "no function named '%s' (see the functions op)", r->pr.fn);
		goto fail;
	}
	apply_function_limits(r);
	if (r->pr.op == OP_APPLY) {
		/*
		 * One item, the argument list itself: a batch iterates the inside
		 * of the span it gets, so widen args by a byte on each side.
		 */
		struct json_span one = {r->pr.args.p - 1, r->pr.args.len + 2};

		if (check_items(r, r->pr.args, &err) < 0)
			goto fail;
		r->pr.args = one;
		r->pr.n_items = 1;
		ix = NULL;
	} else if (check_items(r, r->pr.args, &err) < 0) {
		goto fail;
	}
	if (r->pr.has_args && r->pr.n_items)
		add_batch(r, NULL, r->pr.args, r->pr.n_items, ix);
	if (r->ended && r->n_items == 0) {
		request_task_done(r, NULL);
		return 0;
	}
	request_check_window(r);
	request_schedule(r);
	ledger_dispatch();
	return 0;
fail:
	request_fail(r, &err);
	return -EINVAL;
}

void request_feed(struct request *r, char *line, const struct proto_request *pr,
                  const struct json_index *ix)
{
	struct proto_error err;

	if (r->ended) {
		free(line);
		proto_error_set(&err, PROTO_INVALID_REQUEST, -1,
		                "a feed after the stream's end; the stream is cancelled");
		request_fail(r, &err);
		return;
	}
	if (pr->has_args && pr->n_items) {
		if (check_items(r, pr->args, &err) < 0) {
			free(line);
			request_fail(r, &err);
			return;
		}
		add_batch(r, line, pr->args, pr->n_items, ix);
		TAILQ_LAST(&r->batches, batch_list)->bytes = pr->line_len;
		request_mem(r, (ssize_t)pr->line_len);
	} else {
		free(line);
	}
	if (pr->end || pr->op == OP_END)
		r->ended = 1;
	if (r->ended && r->n_written == r->n_items) {
		request_task_done(r, NULL);
		return;
	}
	request_check_window(r);
	request_schedule(r);
	ledger_dispatch();
}

/*
 * A stream is full, and its connection not read, while it holds its window of
 * items, or holds any while the daemon is over --max-pending-items or
 * --max-memory: backpressure, not an error (conn.c re-checks full streams
 * whenever memory or items are released).
 */
void request_check_window(struct request *r)
{
	uint64_t held = r->n_items - r->n_written;
	int full =
	    r->pr.stream && !r->ended && held && (held >= r->pr.window || conn_over_budget());

	if (full == r->full)
		return;
	r->full = full;
	conn_block(r->conn, full ? 1 : -1);
}

/* A worker restart costs a few ms of CPU: after c crashes, wait c x this, up to the cap. */
#define CRASH_HOLD_STEP_MS 4
#define CRASH_HOLD_MAX_MS 100

static void on_hold(evutil_socket_t fd, short ev, void *arg)
{
	request_schedule(arg);
	ledger_dispatch();
}

void request_crashed(struct request *r)
{
	uint64_t ms = (uint64_t)++r->crashes * CRASH_HOLD_STEP_MS;
	struct timeval tv;

	if (ms > CRASH_HOLD_MAX_MS)
		ms = CRASH_HOLD_MAX_MS;
	tv.tv_sec = 0;
	tv.tv_usec = (suseconds_t)ms * 1000;
	if (!r->ev_hold)
		r->ev_hold = evtimer_new(sv.base, on_hold, r);
	evtimer_add(r->ev_hold, &tv);
}

int request_has_work(const struct request *r)
{
	/* A request whose items crashed workers sends one task at a time. */
	if (r->crashes && (r->n_sent || evtimer_pending(r->ev_hold, NULL)))
		return 0;
	return !TAILQ_EMPTY(&r->retryq) || r->cutting;
}

void request_schedule(struct request *r)
{
	if (r->in_pending || !request_has_work(r))
		return;
	TAILQ_INSERT_TAIL(&sv.pending, r, plink);
	r->in_pending = 1;
}

/*
 * Items for the next chunk: enough for CHUNK_TARGET_NS of work at the
 * measured cost per item, but never more than a 1/(2W) share of the items
 * waiting (nor less than an eighth of that target), so that every worker
 * gets some and the last chunks of a map are small (guided self-scheduling).
 * Until one of its chunks has been timed, a request probes with single
 * items: the same function can cost nanoseconds with one argument and
 * seconds with another, so no earlier request's timing is trusted.
 */
static uint32_t chunk_items(const struct request *r)
{
	uint64_t avail = r->n_items - r->n_cut, share, want;
	uint64_t w2 = (uint64_t)sv.opt.workers * 2;
	double ns = r->ns_per_item;

	if (r->pr.chunksize)
		return r->pr.chunksize;
	if (ns <= 0)
		return 1;
	share = (avail + w2 - 1) / w2;
	want = ns >= CHUNK_TARGET_NS ? 1 : (uint64_t)(CHUNK_TARGET_NS / ns);
	/*
	 * Shares shrink no lower than an eighth of the target time: below that a
	 * chunk costs more in messages than it balances (a stream fed in small
	 * lines would otherwise go out in quarters of each feed).
	 */
	if (want > share)
		want = share > want / 8 ? share : want / 8;
	if (want > PROTO_MAX_CHUNKSIZE)
		want = PROTO_MAX_CHUNKSIZE;
	return want ? (uint32_t)want : 1;
}

uint32_t request_next_count(const struct request *r)
{
	uint32_t want;

	if (!TAILQ_EMPTY(&r->retryq) || !r->cutting || !request_has_work(r))
		return 0;
	want = chunk_items(r);
	return want < r->cutting->left ? want : r->cutting->left;
}

void request_observe(struct request *r, uint32_t count, uint64_t ns)
{
	double sample = (double)ns / count;

	/* A moving average: recent chunks count most, one odd chunk does not rule. */
	r->ns_per_item = r->ns_per_item > 0 ? 0.7 * r->ns_per_item + 0.3 * sample : sample;
}

struct task *request_next_task(struct request *r)
{
	struct task *t = TAILQ_FIRST(&r->retryq);
	struct batch *b = r->cutting;
	uint32_t want = chunk_items(r), n;
	struct json_span span = {NULL, 0};

	if (t) {
		TAILQ_REMOVE(&r->retryq, t, qlink);
		return t;
	}
	t = ledger_task_new(r, r->n_cut, 0);
	if (!t)
		return NULL;
	/*
	 * The chunk's items, each with its comma within CHUNK_MAX_BYTES: in one
	 * pass, or by the batch's index walking less than its stride.
	 */
	n = (uint32_t)json_array_take_indexed(&b->cut, b->ix.n_marks ? &b->ix : NULL,
	                                      b->n - b->left, want < b->left ? want : b->left,
	                                      CHUNK_MAX_BYTES - 1, &span);
	t->count = n;
	t->items = span;
	t->batch = b;
	b->refs++;
	b->left -= n;
	r->n_cut += n;
	if (b->left == 0) {
		r->cutting = TAILQ_NEXT(b, link);
		batch_unref(r, b);
	}
	TAILQ_INSERT_TAIL(&r->tasks, t, rlink);
	if (!r->prefix)
		r->prefix = t;
	return t;
}

struct task *request_split_task(struct request *r, struct task *t, uint32_t k)
{
	struct task *rest = ledger_task_new(r, t->first + k, t->count - k);
	struct json_iter it = {t->items.p, t->items.p + t->items.len};
	struct json_span e;
	const char *end;
	uint32_t i;

	if (!rest)
		return NULL;
	for (i = 0; i < k; i++)
		json_array_next(&it, &e);
	end = e.p + e.len; /* t keeps items up to the end of its k-th */
	json_array_next(&it, &e);
	rest->items.p = e.p;
	rest->items.len = (size_t)(t->items.p + t->items.len - e.p);
	t->items.len = (size_t)(end - t->items.p);
	t->count = k;
	rest->attempts = t->attempts;
	rest->batch = t->batch;
	t->batch->refs++;
	TAILQ_INSERT_AFTER(&r->tasks, t, rest, rlink);
	return rest;
}

void request_drop_task(struct request *r, struct task *t)
{
	if (r->prefix == t)
		r->prefix = TAILQ_NEXT(t, rlink);
	TAILQ_REMOVE(&r->tasks, t, rlink);
	if (t->state == TASK_DONE)
		request_mem(r, -(ssize_t)t->result_len);
	if (t->batch)
		batch_unref(r, t->batch);
	ledger_task_free(t);
}

/* Answer r with the error of t's first failed item (Pool.map raises it). */
static void request_failed_item(struct request *r, struct task *t)
{
	enum proto_code code = reply_failure(r, t);

	metrics_reply(r->pr.op, code);
	metrics_error(code);
}

/* A map or apply: reply once every item is answered, or at its first failure. */
static void map_progress(struct request *r)
{
	while (r->prefix && r->prefix->state == TASK_DONE) {
		if (r->prefix->first_error != WIRE_NO_ERROR &&
		    (r->pr.on_error == ON_ERROR_FAIL || r->pr.op == OP_APPLY)) {
			request_failed_item(r, r->prefix);
			request_free(r);
			return;
		}
		r->prefix = TAILQ_NEXT(r->prefix, rlink);
	}
	if (r->prefix || r->n_cut < r->n_items || !TAILQ_EMPTY(&r->retryq))
		return;
	log_debug("request %.*s: %llu items in %llu ms", (int)r->pr.id.len, r->pr.id.p,
	          (unsigned long long)r->n_items, (unsigned long long)(now_ms() - r->start_ms));
	reply_map(r);
	metrics_reply(r->pr.op, PROTO_OK);
	request_free(r);
}

/*
 * Write the answered items of task t (all, or those before its failure in
 * fail mode) into the open part p. Returns 1 when the stream failed at t.
 */
static int stream_take(struct request *r, struct task *t, struct reply_part *p)
{
	int fails = t->first_error != WIRE_NO_ERROR && r->pr.on_error == ON_ERROR_FAIL;
	uint32_t k = fails ? t->first_error : t->count;

	if (k) {
		if (!p->open)
			reply_part_begin(p, r, t->first);
		reply_part_add(p, r, t, k);
	}
	r->n_written += k;
	sv.items_in_flight -= k;
	return fails;
}

/* A stream: write what is ready (in order, or as it finishes), then maybe the end. */
static void stream_progress(struct request *r, struct task *done)
{
	struct reply_part p = {0};
	struct task *t = done;
	int failed = 0;

	if (r->pr.ordered) {
		while (!failed && (t = TAILQ_FIRST(&r->tasks)) && t->state == TASK_DONE) {
			failed = stream_take(r, t, &p);
			if (!failed)
				request_drop_task(r, t);
		}
	} else if (t) {
		failed = stream_take(r, t, &p);
		if (!failed)
			request_drop_task(r, t);
	}
	if (p.open)
		reply_part_end(&p, r);
	if (failed) {
		request_failed_item(r, t);
		request_free(r);
		return;
	}
	if (r->ended && r->n_written == r->n_items) {
		reply_done(r);
		metrics_reply(r->pr.op, PROTO_OK);
		request_free(r);
		return;
	}
	request_check_window(r);
}

void request_task_done(struct request *r, struct task *t)
{
	if (t)
		request_mem(r, (ssize_t)t->result_len);
	if (r->pr.stream)
		stream_progress(r, t);
	else
		map_progress(r);
}

void request_abort(struct request *r, enum proto_code code, const char *why)
{
	struct proto_error err;

	proto_error_set(&err, code, -1, "%s", why);
	request_fail(r, &err);
}

void request_free(struct request *r)
{
	struct task *t, *next;
	struct batch *b;

	TAILQ_REMOVE(conn_requests(r->conn), r, clink);
	if (r->full)
		conn_block(r->conn, -1);
	conn_request_removed(r->conn, r);
	if (r->in_pending)
		TAILQ_REMOVE(&sv.pending, r, plink);
	for (t = TAILQ_FIRST(&r->tasks); t; t = next) {
		next = TAILQ_NEXT(t, rlink);
		if (t->state == TASK_SENT) {
			t->req = NULL;
			t->batch = NULL;
			pool_task_orphaned(t);
		} else {
			ledger_task_free(t);
		}
	}
	while ((b = TAILQ_FIRST(&r->batches))) {
		TAILQ_REMOVE(&r->batches, b, link);
		free(b->ix.mark);
		free(b->line);
		free(b);
	}
	sv.n_requests--;
	sv.items_in_flight -= r->n_items - r->n_written;
	if (r->ev_hold)
		event_free(r->ev_hold);
	if (r->cg) {
		r->cg->n_requests--;
		confgen_unref(r->cg);
		pool_roll();
	}
	conn_mem(r->conn, -(ssize_t)r->mem);
	free(r->line);
	free(r);
	supervisor_check_idle();
}
