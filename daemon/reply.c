/* reply.c - writing a request's answers: whole maps, stream parts, failures */
#include "reply.h"

#include <event2/buffer.h>
#include <nanomsg/nn.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "request.h"

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

/* The text of t's first k answers (k <= t->count). */
static size_t answers_len(const struct task *t, uint32_t k)
{
	struct json_iter it = {t->result, t->result + t->result_len};
	struct json_span e = {t->result, 0};
	uint32_t i;

	for (i = 0; i < k; i++)
		json_array_next(&it, &e);
	return (size_t)(e.p + e.len - t->result);
}

void reply_map(struct request *r)
{
	struct evbuffer *out = conn_output(r->conn);
	struct task *t;
	int first = 1;

	if (r->pr.op == OP_APPLY) {
		add_id(out, r, ",\"ok\":true,\"result\":");
		add_answer(out, TAILQ_FIRST(&r->tasks));
		evbuffer_add(out, "}\n", 2);
		conn_reply_sent(r->conn);
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
				buf_printf(&b, "%s%llu", first ? "" : ",",
				           (unsigned long long)(t->first + t->failed[i]));
				first = 0;
			}
		}
		buf_addc(&b, ']');
		evbuffer_add(out, b.data, b.len);
		buf_free(&b);
	}
	evbuffer_add(out, "}\n", 2);
	conn_reply_sent(r->conn);
}

/* The code of an error object's "code" member (function_error when unknown). */
static enum proto_code error_code(struct json_span obj)
{
	struct json_iter it;
	struct json_span key, val;
	int k;

	json_iter_init(&it, obj);
	while (json_object_next(&it, &key, &val))
		if (json_string_eq(key, "code"))
			for (k = 1; k < PROTO_CODE_MAX; k++)
				if (json_string_eq(val, proto_code_name((enum proto_code)k)))
					return (enum proto_code)k;
	return PROTO_FUNCTION_ERROR;
}

enum proto_code reply_failure(struct request *r, struct task *t)
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
	if (r->pr.op != OP_APPLY)
		evbuffer_add_printf(out, ",\"index\":%llu",
		                    (unsigned long long)(t->first + t->first_error));
	evbuffer_add(out, "}}\n", 3);
	conn_reply_sent(r->conn);
	return error_code(val);
}

void reply_part_begin(struct reply_part *p, struct request *r, uint64_t first)
{
	struct evbuffer *out = conn_output(r->conn);

	add_id(out, r, ",\"ok\":true,\"index\":");
	evbuffer_add_printf(out, "%llu,\"results\":[", (unsigned long long)first);
	p->open = 1;
	p->first = 1;
	buf_reset(&p->failed);
}

void reply_part_add(struct reply_part *p, struct request *r, struct task *t, uint32_t k)
{
	struct evbuffer *out = conn_output(r->conn);
	uint32_t i;

	if (!p->first)
		evbuffer_add(out, ",", 1);
	p->first = 0;
	if (k == t->count)
		add_answer(out, t);
	else
		evbuffer_add(out, t->result, answers_len(t, k));
	for (i = 0; i < t->n_failed && t->failed[i] < k; i++) {
		buf_printf(&p->failed, ",%llu", (unsigned long long)(t->first + t->failed[i]));
		r->n_failed++;
	}
}

void reply_part_end(struct reply_part *p, struct request *r)
{
	struct evbuffer *out = conn_output(r->conn);

	evbuffer_add(out, "]", 1);
	if (p->failed.len) {
		evbuffer_add(out, ",\"failed\":[", 11);
		evbuffer_add(out, p->failed.data + 1, p->failed.len - 1);
		evbuffer_add(out, "]", 1);
	}
	evbuffer_add(out, "}\n", 2);
	buf_free(&p->failed);
	p->open = 0;
	conn_reply_sent(r->conn);
}

void reply_done(struct request *r)
{
	struct evbuffer *out = conn_output(r->conn);

	add_id(out, r, ",\"ok\":true,\"done\":true,\"items\":");
	evbuffer_add_printf(out, "%llu,\"failed\":%llu}\n", (unsigned long long)r->n_items,
	                    (unsigned long long)r->n_failed);
	conn_reply_sent(r->conn);
}
