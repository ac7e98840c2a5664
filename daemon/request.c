/* request.c - one client request: its items, its tasks, its reply */
#include "request.h"

#include <errno.h>
#include <event2/buffer.h>
#include <nanomsg/nn.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "supervisor.h"

/* Chunks stay under this many bytes of items, whatever the item count. */
#define CHUNK_MAX_BYTES (1024 * 1024)

static int check_arity(struct request *r, struct proto_error *err)
{
	const struct fn_def *d = r->fn;
	size_t i, n;

	if (r->pr.op == OP_APPLY) {
		n = json_array_count(r->pr.args);
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
	for (i = 0; i < r->pr.n_items; i++) {
		n = json_array_count(r->pr.items[i]);
		if ((int)n < d->min_args || (int)n > d->max_args)
			return proto_error_set(err, PROTO_BAD_ARITY, (long)i,
			                       "item %zu: %s takes %d to %d arguments, got %zu", i,
			                       d->name, d->min_args, d->max_args, n);
	}
	return 0;
}

int request_start(struct conn *c, char *line, struct proto_request *pr)
{
	struct request *r = calloc(1, sizeof(*r));
	struct proto_error err;
	uint32_t auto_chunk;

	if (!r) {
		proto_error_set(&err, PROTO_INTERNAL, -1, "out of memory");
		goto fail;
	}
	r->conn = c;
	r->line = line;
	r->pr = *pr;
	r->start_ms = now_ms();
	TAILQ_INIT(&r->tasks);
	TAILQ_INIT(&r->retryq);
	r->fn = registry_find(r->pr.fn, strlen(r->pr.fn));
	if (!r->fn) {
		proto_error_set(&err, PROTO_UNKNOWN_FUNCTION, -1,
		                "no function named '%s' (see the functions op)", r->pr.fn);
		goto fail;
	}
	if (r->pr.op == OP_APPLY) {
		r->pr.items = malloc(sizeof(*r->pr.items));
		if (!r->pr.items) {
			proto_error_set(&err, PROTO_INTERNAL, -1, "out of memory");
			goto fail;
		}
		r->pr.items[0] = r->pr.args;
		r->pr.n_items = 1;
	}
	if (check_arity(r, &err) < 0)
		goto fail;
	auto_chunk = (uint32_t)((r->pr.n_items + (size_t)sv.opt.workers * 4 - 1) /
	                        ((size_t)sv.opt.workers * 4));
	r->chunksize = r->pr.chunksize ? r->pr.chunksize : auto_chunk ? auto_chunk : 1;
	TAILQ_INSERT_TAIL(conn_requests(c), r, clink);
	conn_request_added(c);
	sv.n_requests++;
	sv.items_in_flight += r->pr.n_items;
	if (r->pr.n_items == 0) {
		request_task_done(r, NULL);
		return 0;
	}
	request_schedule(r);
	ledger_dispatch();
	return 0;
fail:
	conn_send_error(c, pr->id, &err);
	if (r) {
		proto_request_deinit(&r->pr);
		free(r);
	} else {
		proto_request_deinit(pr);
	}
	free(line);
	return -EINVAL;
}

int request_has_work(const struct request *r)
{
	return !TAILQ_EMPTY(&r->retryq) || r->next_item < r->pr.n_items;
}

void request_schedule(struct request *r)
{
	if (r->in_pending || !request_has_work(r))
		return;
	TAILQ_INSERT_TAIL(&sv.pending, r, plink);
	r->in_pending = 1;
}

struct task *request_next_task(struct request *r)
{
	struct task *t = TAILQ_FIRST(&r->retryq);
	uint32_t n = 0;
	size_t bytes = 0;

	if (t) {
		TAILQ_REMOVE(&r->retryq, t, qlink);
		return t;
	}
	while (r->next_item + n < r->pr.n_items && n < r->chunksize) {
		bytes += r->pr.items[r->next_item + n].len + 1;
		if (n > 0 && bytes > CHUNK_MAX_BYTES)
			break;
		n++;
	}
	t = ledger_task_new(r, r->next_item, n);
	if (!t)
		return NULL;
	r->next_item += n;
	TAILQ_INSERT_TAIL(&r->tasks, t, rlink);
	if (!r->prefix)
		r->prefix = t;
	return t;
}

static void free_nn(const void *data, size_t len, void *msg)
{
	nn_freemsg(msg);
}

static void free_heap(const void *data, size_t len, void *msg)
{
	free(msg);
}

/* Move t's answer into out without copying; out frees it once written. */
static void add_answer(struct evbuffer *out, struct task *t)
{
	if (evbuffer_add_reference(out, t->result, t->result_len,
	                           t->msg_is_nn ? free_nn : free_heap, t->msg) == 0) {
		t->msg = NULL;
		return;
	}
	evbuffer_add(out, t->result, t->result_len);
}

static void add_id(struct evbuffer *out, const struct request *r, const char *rest)
{
	evbuffer_add(out, "{\"id\":", 6);
	evbuffer_add(out, r->pr.id.p, r->pr.id.len);
	evbuffer_add(out, rest, strlen(rest));
}

static void reply_results(struct request *r)
{
	struct evbuffer *out = conn_output(r->conn);
	struct task *t;
	int first = 1;

	if (r->pr.op == OP_APPLY) {
		add_id(out, r, ",\"ok\":true,\"result\":");
		add_answer(out, TAILQ_FIRST(&r->tasks));
		evbuffer_add(out, "}\n", 2);
		return;
	}
	add_id(out, r, ",\"ok\":true,\"results\":[");
	TAILQ_FOREACH(t, &r->tasks, rlink)
	{
		if (!first)
			evbuffer_add(out, ",", 1);
		first = 0;
		add_answer(out, t);
	}
	evbuffer_add(out, "]", 1);
	if (r->pr.on_error == ON_ERROR_COLLECT) {
		struct buf b = {0};

		buf_adds(&b, ",\"failed\":[");
		first = 1;
		TAILQ_FOREACH(t, &r->tasks, rlink)
		{
			uint32_t i;

			for (i = 0; i < t->n_failed; i++) {
				buf_printf(&b, "%s%u", first ? "" : ",", t->first + t->failed[i]);
				first = 0;
			}
		}
		buf_addc(&b, ']');
		evbuffer_add(out, b.data, b.len);
		buf_free(&b);
	}
	evbuffer_add(out, "}\n", 2);
}

/* Fail the request with item t->first + t->first_error's error, as Pool.map raises. */
static void reply_failure(struct request *r, struct task *t)
{
	struct evbuffer *out = conn_output(r->conn);
	struct json_iter it = {t->result, t->result + t->result_len};
	struct json_span e, key, val;
	uint32_t i;

	for (i = 0; i <= t->first_error; i++)
		json_array_next(&it, &e);
	json_iter_init(&it, e);
	json_object_next(&it, &key, &val);
	add_id(out, r, ",\"ok\":false,\"error\":");
	evbuffer_add(out, val.p, val.len - 1);
	if (r->pr.op == OP_MAP)
		evbuffer_add_printf(out, ",\"index\":%u", t->first + t->first_error);
	evbuffer_add(out, "}}\n", 3);
}

void request_task_done(struct request *r, struct task *t)
{
	if (t)
		r->items_answered += t->count;
	while (r->prefix && r->prefix->state == TASK_DONE) {
		if (r->prefix->first_error != WIRE_NO_ERROR &&
		    (r->pr.on_error == ON_ERROR_FAIL || r->pr.op == OP_APPLY)) {
			reply_failure(r, r->prefix);
			conn_reply_sent(r->conn);
			request_free(r);
			return;
		}
		r->prefix = TAILQ_NEXT(r->prefix, rlink);
	}
	if (r->items_answered < r->pr.n_items)
		return;
	log_debug("request %.*s: %zu items in %llu ms", (int)r->pr.id.len, r->pr.id.p,
	          r->pr.n_items, (unsigned long long)(now_ms() - r->start_ms));
	reply_results(r);
	conn_reply_sent(r->conn);
	request_free(r);
}

void request_abort(struct request *r, enum proto_code code, const char *why)
{
	struct proto_error err;

	proto_error_set(&err, code, -1, "%s", why);
	conn_send_error(r->conn, r->pr.id, &err);
	request_free(r);
}

void request_free(struct request *r)
{
	struct task *t, *next;

	TAILQ_REMOVE(conn_requests(r->conn), r, clink);
	conn_request_removed(r->conn);
	if (r->in_pending)
		TAILQ_REMOVE(&sv.pending, r, plink);
	for (t = TAILQ_FIRST(&r->tasks); t; t = next) {
		next = TAILQ_NEXT(t, rlink);
		if (t->state == TASK_SENT)
			t->req = NULL;
		else
			ledger_task_free(t);
	}
	sv.n_requests--;
	sv.items_in_flight -= r->pr.n_items;
	proto_request_deinit(&r->pr);
	free(r->line);
	free(r);
	supervisor_check_idle();
}
