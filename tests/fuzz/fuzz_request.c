/* fuzz_request.c - libFuzzer target: proto_parse_request and the replies on arbitrary bytes */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
static void die(const char *what)
{
	fprintf(stderr, "fuzz_request: invariant broken: %s\n", what);
	abort();
}

/* 1 when the n bytes at p are exactly one valid JSON value. */
static int is_json(const char *p, size_t n)
{
	struct json_span v;
	const char *msg;
	size_t off;

	return json_validate(p, p + n, &v, &msg, &off) == 0;
}

/* The span must lie inside the input and be one JSON value of its own. */
static void check_span(struct json_span v, const char *line, size_t size, const char *what)
{
	if (!v.p || v.len == 0 || v.p < line || v.len > size || v.p + v.len > line + size)
		die(what);
	if (!is_json(v.p, v.len))
		die(what);
}

/* The reply in b must be one JSON object followed by exactly one newline. */
static void check_reply_line(const struct buf *b)
{
	if (b->len < 2 || b->data[b->len - 1] != '\n' || memchr(b->data, '\n', b->len - 1))
		die("error reply is not one line");
	if (!is_json(b->data, b->len - 1))
		die("error reply is not valid JSON");
}

/* Invariants of a request that parsed, then the replies the daemon would write for it. */
static void check_request(const struct proto_request *req, const struct proto_limits *lim,
                          const char *line, size_t size)
{
	struct proto_error err;
	struct buf b = {0};
	size_t i;

	check_span(req->id, line, size, "id");
	if ((unsigned)req->op > OP_END)
		die("op");
	if (req->retries > PROTO_MAX_RETRIES || req->chunksize > PROTO_MAX_CHUNKSIZE ||
	    req->timeout_ms > lim->max_timeout_ms)
		die("numeric field out of range");
	if (req->op == OP_MAP || req->op == OP_APPLY) {
		size_t n = strnlen(req->fn, sizeof(req->fn));

		if (n == 0 || n >= sizeof(req->fn))
			die("fn length");
	}
	if (req->has_args) {
		check_span(req->args, line, size, "args");
		if (json_type(req->args) != JSON_ARRAY)
			die("args is not an array");
	}
	if (req->op == OP_MAP) {
		struct json_iter it;
		struct json_span e;

		if (req->n_items > lim->max_items || (!req->has_args && !req->stream) ||
		    (req->has_args && req->n_items != json_array_count(req->args)))
			die("item count");
		if (req->has_args)
			json_iter_init(&it, req->args);
		for (i = 0; req->has_args && json_array_next(&it, &e); i++) {
			check_span(e, line, size, "item");
			if (req->star && json_type(e) != JSON_ARRAY)
				die("starmap item is not an array");
		}
	} else if (req->op != OP_FEED && req->n_items) {
		die("items outside map");
	}
	if (req->op == OP_CANCEL)
		check_span(req->target, line, size, "target");

	proto_reply_ok_begin(&b, req->id);
	buf_adds(&b, "}");
	if (!is_json(b.data, b.len))
		die("ok reply is not valid JSON");
	buf_reset(&b);
	proto_error_set(&err, PROTO_FUNCTION_ERROR, (long)req->n_items, "%s(%.*s) failed", req->fn,
	                (int)(req->args.len > 60 ? 60 : req->args.len),
	                req->args.p ? req->args.p : "");
	proto_reply_error(&b, req->id, &err);
	/* args may be cut inside a UTF-8 sequence here, so only the framing is checked */
	if (b.len < 2 || b.data[b.len - 1] != '\n' || memchr(b.data, '\n', b.len - 1))
		die("error reply with index is not one line");
	buf_reset(&b);
	proto_error_set(&err, PROTO_CANCELLED, -1, "request %s cancelled", proto_op_name(req->op));
	proto_reply_error(&b, req->id, &err);
	check_reply_line(&b);
	buf_free(&b);
}

/*
 * The daemon's way: the line validated by json_scan with an index of its
 * args, then proto_parse_value told where args lies. The same request or
 * the same error as proto_parse_request (r, req, err).
 */
static void check_indexed(const char *line, size_t size, const struct proto_limits *lim, int r,
                          const struct proto_request *req, const struct proto_error *err)
{
	static size_t room[JSON_INDEX_MARKS];
	struct json_index ix = {.mark = room};
	struct proto_limits l = *lim;
	struct proto_request req2;
	struct proto_error err2;
	struct json_scan s;
	struct json_span v;

	json_scan_init(&s);
	json_scan_index(&s, &ix);
	if (json_scan_feed(&s, line, size) < 0 || json_scan_end(&s) < 0) {
		if (r == 0 || err->code != PROTO_PARSE_ERROR)
			die("json_scan refused a line proto_parse_request took");
		return;
	}
	ix.base = line;
	l.args = &ix;
	v.p = line + s.vstart;
	v.len = s.vend - s.vstart;
	if (proto_parse_value(v, &l, &req2, &err2) != r)
		die("indexed parse: another verdict");
	if (r == 0 ? req2.n_items != req->n_items || req2.args.p != req->args.p ||
	                 req2.args.len != req->args.len || req2.op != req->op
	           : err2.code != err->code || strcmp(err2.message, err->message) != 0)
		die("indexed parse: another request or error");
}

/* libFuzzer entry: parse one line, check the result and the replies for it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_limits lim = {
	    .max_items = 1000,
	    .max_timeout_ms = 86400000,
	    .default_timeout_ms = 7,
	};
	const char *line = (const char *)data;
	struct proto_request req;
	struct proto_error err;
	struct buf b = {0};
	int r;

	memset(&err, 0xa5, sizeof(err));
	r = proto_parse_request(line, size, &lim, &req, &err);
	check_indexed(line, size, &lim, r, &req, &err);
	if (r == 0) {
		check_request(&req, &lim, line, size);
	} else {
		if (r != -EINVAL || err.code <= PROTO_OK || err.code >= PROTO_CODE_MAX)
			die("error code");
		if (!memchr(err.message, '\0', sizeof(err.message)))
			die("message not terminated");
		if (req.id.len)
			check_span(req.id, line, size, "id in an error");
		proto_reply_error(&b, req.id, &err);
		check_reply_line(&b);
	}
	buf_free(&b);
	return 0;
}
