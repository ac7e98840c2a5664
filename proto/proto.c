/* proto.c - the client protocol: request parsing and reply encoding (no I/O) */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const code_names[PROTO_CODE_MAX] = {
    [PROTO_OK] = "ok",
    [PROTO_PARSE_ERROR] = "parse_error",
    [PROTO_INVALID_REQUEST] = "invalid_request",
    [PROTO_UNKNOWN_OP] = "unknown_op",
    [PROTO_UNKNOWN_FUNCTION] = "unknown_function",
    [PROTO_BAD_ARITY] = "bad_arity",
    [PROTO_TOO_LARGE] = "too_large",
    [PROTO_BUSY] = "busy",
    [PROTO_SHUTTING_DOWN] = "shutting_down",
    [PROTO_DUPLICATE_ID] = "duplicate_id",
    [PROTO_NOT_FOUND] = "not_found",
    [PROTO_CANCELLED] = "cancelled",
    [PROTO_FORBIDDEN] = "forbidden",
    [PROTO_FUNCTION_ERROR] = "function_error",
    [PROTO_TYPE_ERROR] = "type_error",
    [PROTO_OUT_OF_RANGE] = "out_of_range",
    [PROTO_WORKER_DIED] = "worker_died",
    [PROTO_TIMEOUT] = "timeout",
    [PROTO_RESULT_TOO_LARGE] = "result_too_large",
    [PROTO_INTERNAL] = "internal",
};

static const char *const op_names[] = {
    [OP_MAP] = "map",
    [OP_APPLY] = "apply",
    [OP_PING] = "ping",
    [OP_STATUS] = "status",
    [OP_FUNCTIONS] = "functions",
    [OP_CANCEL] = "cancel",
    [OP_FEED] = "feed",
    [OP_END] = "end",
    [OP_METRICS] = "metrics",
};

enum field {
	F_ID,
	F_OP,
	F_FN,
	F_ARGS,
	F_STAR,
	F_ON_ERROR,
	F_CHUNKSIZE,
	F_RETRIES,
	F_TIMEOUT_MS,
	F_TARGET,
	F_STREAM,
	F_ORDERED,
	F_WINDOW,
	F_END,
	F_MAX
};

static const char *const field_names[F_MAX] = {
    "id",      "op",         "fn",     "args",   "star",    "on_error", "chunksize",
    "retries", "timeout_ms", "target", "stream", "ordered", "window",   "end",
};

/* Which fields each op accepts, as bit masks over enum field. */
#define FB(f) (1u << (f))
static const unsigned op_fields[] = {
    [OP_MAP] = FB(F_FN) | FB(F_ARGS) | FB(F_STAR) | FB(F_ON_ERROR) | FB(F_CHUNKSIZE) |
               FB(F_RETRIES) | FB(F_TIMEOUT_MS) | FB(F_STREAM) | FB(F_ORDERED) | FB(F_WINDOW),
    [OP_APPLY] = FB(F_FN) | FB(F_ARGS) | FB(F_RETRIES) | FB(F_TIMEOUT_MS),
    [OP_PING] = 0,
    [OP_STATUS] = 0,
    [OP_FUNCTIONS] = 0,
    [OP_CANCEL] = FB(F_TARGET),
    [OP_FEED] = FB(F_ARGS) | FB(F_END),
    [OP_END] = 0,
    [OP_METRICS] = 0,
};

const char *proto_code_name(enum proto_code code)
{
	if ((unsigned)code >= PROTO_CODE_MAX)
		return "internal";
	return code_names[code];
}

const char *proto_op_name(enum proto_op op)
{
	return op_names[op];
}

int proto_error_set(struct proto_error *err, enum proto_code code, long index, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->index = index;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An id is an integer within +-2^53 or a string of at most PROTO_MAX_ID_LEN bytes. */
static int valid_id(struct json_span v)
{
	int64_t n;

	if (json_type(v) == JSON_STRING)
		return v.len <= PROTO_MAX_ID_LEN + 2;
	return json_type(v) == JSON_NUMBER && json_int(v, &n) == 0;
}

static int parse_uint(struct json_span v, enum field f, uint64_t max, uint32_t *out,
                      struct proto_error *err)
{
	int64_t n;
	int r;

	if (json_type(v) != JSON_NUMBER)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
		                       "field '%s' must be an integer", field_names[f]);
	r = json_int(v, &n);
	if (r == -EINVAL)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
		                       "field '%s' must be an integer, not a fraction",
		                       field_names[f]);
	if (r < 0 || n < 0 || (uint64_t)n > max)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
		                       "field '%s' must be between 0 and %llu", field_names[f],
		                       (unsigned long long)max);
	*out = (uint32_t)n;
	return 0;
}

/* Check the n items of args (their spans are cut lazily, never stored). */
static int parse_items(struct proto_request *req, size_t n, const struct proto_limits *lim,
                       struct proto_error *err)
{
	struct json_iter it;
	struct json_span e;
	size_t i = 0;

	if (n > lim->max_items)
		return proto_error_set(err, PROTO_TOO_LARGE, -1,
		                       "%zu items, more than the limit of %zu", n, lim->max_items);
	json_iter_init(&it, req->args);
	for (; req->star && json_array_next(&it, &e); i++)
		if (json_type(e) != JSON_ARRAY)
			return proto_error_set(err, PROTO_INVALID_REQUEST, (long)i,
			                       "starmap item %zu is not an array of arguments", i);
	req->n_items = n;
	return 0;
}

/* Parse a true/false field. */
static int parse_bool(struct json_span v, enum field f, int *out, struct proto_error *err)
{
	enum json_type t = json_type(v);

	if (t != JSON_TRUE && t != JSON_FALSE)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1, "'%s' must be true or false",
		                       field_names[f]);
	*out = t == JSON_TRUE;
	return 0;
}

int proto_error_malformed(struct proto_error *err, size_t off, const char *what)
{
	return proto_error_set(err, PROTO_PARSE_ERROR, -1, "malformed JSON at byte %zu: %s", off,
	                       what);
}

int proto_parse_request(const char *line, size_t len, const struct proto_limits *lim,
                        struct proto_request *req, struct proto_error *err)
{
	struct json_span v;
	const char *msg;
	size_t off;

	if (json_validate(line, line + len, &v, &msg, &off) < 0) {
		memset(req, 0, sizeof(*req));
		return proto_error_malformed(err, off, msg);
	}
	return proto_parse_value(v, lim, req, err);
}

int proto_parse_value(struct json_span v, const struct proto_limits *lim, struct proto_request *req,
                      struct proto_error *err)
{
	struct json_span key, val, fv[F_MAX];
	struct json_iter it;
	unsigned seen = 0;
	size_t count, n_args = 0;
	int f, r = 0;

	memset(req, 0, sizeof(*req));
	req->retries = 2;
	req->timeout_ms = lim->default_timeout_ms;
	if (json_type(v) != JSON_OBJECT)
		return proto_error_set(err, PROTO_PARSE_ERROR, -1,
		                       "a request must be a JSON object");

	json_iter_init(&it, v);
	/* one walk: the members, and the items of args counted as they are skipped */
	while (json_object_next_known(&it, &key, &val, &count, lim->args)) {
		for (f = 0; f < F_MAX; f++)
			if (json_string_eq(key, field_names[f]))
				break;
		if (f == F_MAX) {
			int klen = key.len > 40 ? 40 : (int)key.len;

			while (klen < (int)key.len && ((unsigned char)key.p[klen] & 0xc0) == 0x80)
				klen--; /* do not cut a UTF-8 sequence: the reply must stay UTF-8 */
			if (r == 0)
				r = proto_error_set(err, PROTO_INVALID_REQUEST, -1,
				                    "unknown field %.*s", klen, key.p);
			continue;
		}
		if (seen & FB(f)) {
			if (r == 0)
				r = proto_error_set(err, PROTO_INVALID_REQUEST, -1,
				                    "duplicate field '%s'", field_names[f]);
			continue;
		}
		seen |= FB(f);
		fv[f] = val;
		if (f == F_ARGS)
			n_args = count;
	}
	/* Read on past a bad field so that the error reply still carries the id. */
	if ((seen & FB(F_ID)) && valid_id(fv[F_ID]))
		req->id = fv[F_ID];
	if (r < 0)
		return r;
	if (!(seen & FB(F_ID)))
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1, "missing field 'id'");
	if (!req->id.len)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
		                       "'id' must be an integer within 2^53 or a string of at "
		                       "most %d bytes",
		                       PROTO_MAX_ID_LEN);
	if (!(seen & FB(F_OP)))
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1, "missing field 'op'");
	if (json_type(fv[F_OP]) != JSON_STRING)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1, "'op' must be a string");
	for (f = 0; f < (int)(sizeof(op_names) / sizeof(op_names[0])); f++)
		if (json_string_eq(fv[F_OP], op_names[f]))
			break;
	if (f == (int)(sizeof(op_names) / sizeof(op_names[0]))) {
		int olen = fv[F_OP].len > 40 ? 40 : (int)fv[F_OP].len;

		while (olen < (int)fv[F_OP].len && ((unsigned char)fv[F_OP].p[olen] & 0xc0) == 0x80)
			olen--; /* do not cut a UTF-8 sequence: the reply must stay UTF-8 */
		return proto_error_set(err, PROTO_UNKNOWN_OP, -1, "unknown op %.*s", olen,
		                       fv[F_OP].p);
	}
	req->op = (enum proto_op)f;
	for (f = F_FN; f < F_MAX; f++)
		if ((seen & FB(f)) && !(op_fields[req->op] & FB(f)))
			return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
			                       "field '%s' is not valid for op '%s'",
			                       field_names[f], op_names[req->op]);

	if (req->op == OP_MAP || req->op == OP_APPLY) {
		struct json_span fn = fv[F_FN];

		if (!(seen & FB(F_FN)))
			return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
			                       "missing field 'fn'");
		if (json_type(fn) != JSON_STRING || fn.len < 3 || fn.len > sizeof(req->fn) + 1 ||
		    memchr(fn.p, '\\', fn.len))
			return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
			                       "'fn' must be a function name of 1 to %zu plain "
			                       "characters",
			                       sizeof(req->fn) - 1);
		memcpy(req->fn, fn.p + 1, fn.len - 2);
		req->fn[fn.len - 2] = '\0';
	}
	if ((seen & FB(F_STAR)) && parse_bool(fv[F_STAR], F_STAR, &req->star, err) < 0)
		return -EINVAL;
	if ((seen & FB(F_STREAM)) && parse_bool(fv[F_STREAM], F_STREAM, &req->stream, err) < 0)
		return -EINVAL;
	if ((seen & FB(F_END)) && parse_bool(fv[F_END], F_END, &req->end, err) < 0)
		return -EINVAL;
	req->ordered = 1;
	if ((seen & FB(F_ORDERED)) && parse_bool(fv[F_ORDERED], F_ORDERED, &req->ordered, err) < 0)
		return -EINVAL;
	req->window = PROTO_DEFAULT_WINDOW;
	if ((seen & FB(F_WINDOW)) &&
	    parse_uint(fv[F_WINDOW], F_WINDOW, PROTO_MAX_WINDOW, &req->window, err) < 0)
		return -EINVAL;
	if ((seen & (FB(F_ORDERED) | FB(F_WINDOW))) && !req->stream)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
		                       "'ordered' and 'window' need \"stream\":true");
	if (req->window == 0)
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
		                       "'window' must be between 1 and %d", PROTO_MAX_WINDOW);
	if (seen & FB(F_ARGS)) {
		if (json_type(fv[F_ARGS]) != JSON_ARRAY)
			return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
			                       "'args' must be an array");
		req->args = fv[F_ARGS];
		req->has_args = 1;
	} else if (req->op == OP_APPLY || (req->op == OP_MAP && !req->stream) ||
	           (req->op == OP_FEED && !req->end)) {
		return proto_error_set(err, PROTO_INVALID_REQUEST, -1, "missing field 'args'");
	}
	if (seen & FB(F_ON_ERROR)) {
		if (json_string_eq(fv[F_ON_ERROR], "fail"))
			req->on_error = ON_ERROR_FAIL;
		else if (json_string_eq(fv[F_ON_ERROR], "collect"))
			req->on_error = ON_ERROR_COLLECT;
		else
			return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
			                       "'on_error' must be \"fail\" or \"collect\"");
	}
	if ((seen & FB(F_CHUNKSIZE)) && (parse_uint(fv[F_CHUNKSIZE], F_CHUNKSIZE,
	                                            PROTO_MAX_CHUNKSIZE, &req->chunksize, err) < 0))
		return -EINVAL;
	if ((seen & FB(F_RETRIES)) &&
	    parse_uint(fv[F_RETRIES], F_RETRIES, PROTO_MAX_RETRIES, &req->retries, err) < 0)
		return -EINVAL;
	req->has_retries = (seen & FB(F_RETRIES)) != 0;
	req->has_timeout = (seen & FB(F_TIMEOUT_MS)) != 0;
	if ((seen & FB(F_TIMEOUT_MS)) && parse_uint(fv[F_TIMEOUT_MS], F_TIMEOUT_MS,
	                                            lim->max_timeout_ms, &req->timeout_ms, err) < 0)
		return -EINVAL;
	if (req->op == OP_CANCEL) {
		if (!(seen & FB(F_TARGET)))
			return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
			                       "missing field 'target'");
		if (!valid_id(fv[F_TARGET]))
			return proto_error_set(err, PROTO_INVALID_REQUEST, -1,
			                       "'target' must be a request id");
		req->target = fv[F_TARGET];
	}
	if ((req->op == OP_MAP || req->op == OP_FEED) && req->has_args)
		return parse_items(req, n_args, lim, err);
	return 0;
}

int proto_reply_ok_begin(struct buf *b, struct json_span id)
{
	buf_adds(b, "{\"id\":");
	buf_add(b, id.p, id.len);
	return buf_adds(b, ",\"ok\":true");
}

int proto_error_object(struct buf *b, const struct proto_error *err)
{
	buf_adds(b, "{\"code\":\"");
	buf_adds(b, proto_code_name(err->code));
	buf_adds(b, "\",\"message\":");
	buf_add_json_string(b, err->message, strlen(err->message));
	if (err->index >= 0)
		buf_printf(b, ",\"index\":%ld", err->index);
	return buf_addc(b, '}');
}

int proto_reply_error(struct buf *b, struct json_span id, const struct proto_error *err)
{
	buf_adds(b, "{\"id\":");
	if (id.len)
		buf_add(b, id.p, id.len);
	else
		buf_adds(b, "null");
	buf_adds(b, ",\"ok\":false,\"error\":");
	proto_error_object(b, err);
	return buf_adds(b, "}\n");
}
