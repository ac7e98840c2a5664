/* test_proto.c - unit tests for request parsing and reply encoding (proto/proto.c) */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const struct proto_limits lim = {
    .max_items = 1000,
    .max_timeout_ms = 60000,
    .default_timeout_ms = 5000,
};

/* 1 when the n bytes at p are exactly one valid JSON value. */
/* Item i of a parsed map's args. */
static struct json_span nth(const struct proto_request *req, size_t i)
{
	struct json_iter it;
	struct json_span e = {NULL, 0};

	json_iter_init(&it, req->args);
	while (json_array_next(&it, &e) && i--)
		;
	return e;
}

static int is_json(const char *p, size_t n)
{
	struct json_span v;
	const char *msg;
	size_t off;

	return json_validate(p, p + n, &v, &msg, &off) == 0;
}

/* Parse s, which must succeed; returns 1 when it did. */
static int parse_ok(const char *file, int line, const char *s, struct proto_request *req)
{
	struct proto_error err;
	int r = proto_parse_request(s, strlen(s), &lim, req, &err);

	check_count++;
	if (r != 0) {
		check_fail(file, line, "parse failed: %s: %s", proto_code_name(err.code),
		           err.message);
		check_print_bytes("request", s, strlen(s));
		return 0;
	}
	return 1;
}

/*
 * Parse the n bytes at s with *l, which must fail with code; the id must have been
 * captured as want_id (NULL: no id), the index must be want_index, and the
 * message must contain msg (when not NULL). The error reply must be valid JSON.
 */
static void expect_err_lim(const char *file, int line, const char *s, size_t n,
                           const struct proto_limits *l, enum proto_code code, const char *want_id,
                           long want_index, const char *msg)
{
	struct proto_request req;
	struct proto_error err;
	struct buf b = {0}, head = {0};
	int r = proto_parse_request(s, n, l, &req, &err);

	check_count++;
	if (r == 0) {
		check_fail(file, line, "parse succeeded, expected %s", proto_code_name(code));
		check_print_bytes("request", s, n);
		return;
	}
	if (r != -EINVAL || err.code != code) {
		check_fail(file, line, "got %d %s (%s), expected %s", r, proto_code_name(err.code),
		           err.message, proto_code_name(code));
		check_print_bytes("request", s, n);
	}
	if (want_id)
		check_mem_eq(file, line, req.id.p, req.id.len, want_id);
	else if (req.id.len != 0)
		check_fail(file, line, "expected no id, got %.*s", (int)req.id.len, req.id.p);
	if (err.index != want_index)
		check_fail(file, line, "index %ld, expected %ld", err.index, want_index);
	if (msg && !strstr(err.message, msg))
		check_fail(file, line, "message \"%s\" lacks \"%s\"", err.message, msg);
	/* the reply for this error is one valid JSON line */
	proto_reply_error(&b, req.id, &err);
	buf_adds(&head, "{\"id\":");
	if (want_id)
		buf_adds(&head, want_id);
	else
		buf_adds(&head, "null");
	buf_printf(&head,
	           ",\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":", proto_code_name(code));
	if (b.len < 2 || b.data[b.len - 1] != '\n' || !is_json(b.data, b.len - 1) ||
	    memchr(b.data, '\n', b.len - 1) || strncmp(b.data, head.data, head.len) != 0) {
		check_fail(file, line, "bad error reply");
		check_print_bytes("reply", b.data, b.len);
	}
	buf_free(&b);
	buf_free(&head);
}

#define ERR(s, code, id)                                                                           \
	expect_err_lim(__FILE__, __LINE__, (s), strlen(s), &lim, (code), (id), -1, NULL)
#define ERR_MSG(s, code, id, msg)                                                                  \
	expect_err_lim(__FILE__, __LINE__, (s), strlen(s), &lim, (code), (id), -1, (msg))
#define ERR_IDX(s, code, id, idx)                                                                  \
	expect_err_lim(__FILE__, __LINE__, (s), strlen(s), &lim, (code), (id), (idx), NULL)
#define OK(s, req) parse_ok(__FILE__, __LINE__, (s), (req))

/* Valid map requests and the defaults they get. */
static void test_map(void)
{
	struct proto_request req;

	if (OK("{\"id\":1,\"op\":\"map\",\"fn\":\"square\",\"args\":[1,2,3]}", &req)) {
		CHECK_INT(req.op, OP_MAP);
		CHECK_MEM(req.id.p, req.id.len, "1");
		CHECK_STR(req.fn, "square");
		CHECK_MEM(req.args.p, req.args.len, "[1,2,3]");
		CHECK_INT(req.n_items, 3);
		if (req.n_items == 3) {
			CHECK_MEM(nth(&req, 0).p, nth(&req, 0).len, "1");
			CHECK_MEM(nth(&req, 1).p, nth(&req, 1).len, "2");
			CHECK_MEM(nth(&req, 2).p, nth(&req, 2).len, "3");
		}
		CHECK_INT(req.star, 0);
		CHECK_INT(req.on_error, ON_ERROR_FAIL);
		CHECK_INT(req.chunksize, 0);
		CHECK_INT(req.retries, 2);
		CHECK_INT(req.timeout_ms, 5000); /* the daemon's default */
		CHECK_INT(req.target.len, 0);
		CHECK(req.has_args);
		CHECK_INT(req.stream, 0);
	}
	if (OK("{\"id\":\"job-1\",\"op\":\"map\",\"fn\":\"add\",\"star\":true,\"args\":[[1,2],[3,"
	       "4]],\"on_error\":\"collect\",\"chunksize\":10,\"retries\":0,\"timeout_ms\":0}",
	       &req)) {
		CHECK_MEM(req.id.p, req.id.len, "\"job-1\"");
		CHECK_STR(req.fn, "add");
		CHECK_INT(req.star, 1);
		CHECK_INT(req.on_error, ON_ERROR_COLLECT);
		CHECK_INT(req.chunksize, 10);
		CHECK_INT(req.retries, 0);
		CHECK_INT(req.timeout_ms, 0);
		CHECK_INT(req.n_items, 2);
		if (req.n_items == 2) {
			CHECK_MEM(nth(&req, 0).p, nth(&req, 0).len, "[1,2]");
			CHECK_MEM(nth(&req, 1).p, nth(&req, 1).len, "[3,4]");
		}
	}
	/* empty args, every upper bound, key order, whitespace, explicit defaults */
	if (OK(" { \"args\" : [ ] , \"fn\" : \"f\" , \"op\" : \"map\" , \"id\" : 0 } ", &req)) {
		CHECK_INT(req.n_items, 0);
		CHECK_MEM(req.id.p, req.id.len, "0");
		CHECK_STR(req.fn, "f");
	}
	if (OK("{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"args\":[1],\"chunksize\":1000000,"
	       "\"retries\":100,\"timeout_ms\":60000,\"star\":false,\"on_error\":\"fail\"}",
	       &req)) {
		CHECK_INT(req.chunksize, PROTO_MAX_CHUNKSIZE);
		CHECK_INT(req.retries, PROTO_MAX_RETRIES);
		CHECK_INT(req.timeout_ms, 60000);
		CHECK_INT(req.star, 0);
		CHECK_INT(req.on_error, ON_ERROR_FAIL);
	}
	/* without star, items can be anything */
	if (OK("{\"id\":1,\"op\":\"map\",\"fn\":\"echo\",\"args\":[null,\"s\",{\"a\":[1]},[],1.5,"
	       "true]}",
	       &req)) {
		CHECK_INT(req.n_items, 6);
		if (req.n_items == 6)
			CHECK_MEM(nth(&req, 2).p, nth(&req, 2).len, "{\"a\":[1]}");
	}
	/* star with an empty argument list is an array too */
	if (OK("{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"star\":true,\"args\":[[]]}", &req)) {
		CHECK_INT(req.n_items, 1);
	}
	/* fn: up to 63 bytes, any unescaped UTF-8 */
	{
		char fn[80], line[200];

		memset(fn, 'f', 63);
		fn[63] = '\0';
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"map\",\"fn\":\"%s\",\"args\":[]}",
		         fn);
		if (OK(line, &req)) {
			CHECK_STR(req.fn, fn);
		}
		memset(fn, 'f', 64);
		fn[64] = '\0';
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"map\",\"fn\":\"%s\",\"args\":[]}",
		         fn);
		ERR_MSG(line, PROTO_INVALID_REQUEST, "1", "'fn'");
	}
	if (OK("{\"id\":1,\"op\":\"map\",\"fn\":\"\xc3\xa9t\xc3\xa9\",\"args\":[]}", &req)) {
		CHECK_STR(req.fn, "\xc3\xa9t\xc3\xa9");
	}
}

/* map with fn, args, star or on_error missing or wrong. */
static void test_map_errors(void)
{
	ERR_MSG("{\"id\":9,\"op\":\"map\",\"args\":[1]}", PROTO_INVALID_REQUEST, "9", "'fn'");
	ERR_MSG("{\"id\":9,\"op\":\"map\",\"fn\":\"f\"}", PROTO_INVALID_REQUEST, "9", "'args'");
	ERR("{\"id\":9,\"op\":\"map\"}", PROTO_INVALID_REQUEST, "9");
	/* fn of the wrong type or shape */
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":1,\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":null,\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":true,\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":[\"f\"],\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":{\"f\":1},\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"\",\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"a\\u0062\",\"args\":[]}", PROTO_INVALID_REQUEST,
	    "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"a\\\"b\",\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	/* args not an array */
	ERR_MSG("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":{}}", PROTO_INVALID_REQUEST, "9",
	        "'args'");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":\"[1]\"}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":1}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":null}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":true}", PROTO_INVALID_REQUEST, "9");
	/* star */
	ERR_MSG("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"star\":1}",
	        PROTO_INVALID_REQUEST, "9", "'star'");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"star\":\"true\"}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"star\":null}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"star\":[true]}",
	    PROTO_INVALID_REQUEST, "9");
	ERR_IDX("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"star\":true,\"args\":[1]}",
	        PROTO_INVALID_REQUEST, "9", 0);
	ERR_IDX("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"star\":true,\"args\":[[1],2,[3]]}",
	        PROTO_INVALID_REQUEST, "9", 1);
	ERR_IDX("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"star\":true,\"args\":[[1],[2],\"x\"]}",
	        PROTO_INVALID_REQUEST, "9", 2);
	ERR_IDX("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"star\":true,\"args\":[[],{},null]}",
	        PROTO_INVALID_REQUEST, "9", 1);
	ERR_IDX("{\"id\":\"s\",\"star\":true,\"op\":\"map\",\"fn\":\"f\",\"args\":[[1],[2],[3],"
	        "null]}",
	        PROTO_INVALID_REQUEST, "\"s\"", 3);
	/* on_error */
	ERR_MSG("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"on_error\":\"FAIL\"}",
	        PROTO_INVALID_REQUEST, "9", "on_error");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"on_error\":\"\"}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"on_error\":\"collect \"}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"on_error\":\"ignore\"}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"on_error\":1}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"on_error\":null}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"on_error\":[\"fail\"]}",
	    PROTO_INVALID_REQUEST, "9");
}

/* Check each bad value of an integer field of map. */
static void test_int_fields(void)
{
	static const char *const fields[] = {"chunksize", "retries", "timeout_ms"};
	static const char *const bad[] = {
	    "\"10\"",
	    "1.5",
	    "1.0",
	    "1e2",
	    "1E0",
	    "-1",
	    "-0.0",
	    "true",
	    "null",
	    "[1]",
	    "{}",
	    "1e400",
	    "-1e400",
	    "99999999999999999999",
	    "-9007199254740992",
	    "9007199254740993",
	    "\"\"",
	};
	static const char *const over[] = {"1000001", "101", "60001"};
	char line[300];
	size_t f, i;

	for (f = 0; f < 3; f++) {
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(line, sizeof(line),
			         "{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[1],\"%s\":%s}",
			         fields[f], bad[i]);
			ERR_MSG(line, PROTO_INVALID_REQUEST, "9", fields[f]);
		}
		snprintf(line, sizeof(line),
		         "{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[1],\"%s\":%s}", fields[f],
		         over[f]);
		ERR_MSG(line, PROTO_INVALID_REQUEST, "9", fields[f]);
		/* zero is always fine, -0 too */
		snprintf(line, sizeof(line),
		         "{\"id\":9,\"op\":\"map\",\"fn\":\"f\",\"args\":[1],\"%s\":-0}",
		         fields[f]);
		{
			struct proto_request req;

			OK(line, &req);
		}
	}
	/* apply accepts retries and timeout_ms with the same checks */
	ERR("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":[1],\"retries\":101}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":[1],\"timeout_ms\":-5}",
	    PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":[1],\"timeout_ms\":0.5}",
	    PROTO_INVALID_REQUEST, "9");
	/* max_timeout_ms comes from the limits */
	{
		struct proto_limits l = lim;
		struct proto_request req;
		struct proto_error err;
		const char *s =
		    "{\"id\":1,\"op\":\"apply\",\"fn\":\"f\",\"args\":[],\"timeout_ms\":"
		    "86400000}";

		l.max_timeout_ms = 86400000;
		CHECK(proto_parse_request(s, strlen(s), &l, &req, &err) == 0);
		CHECK_INT(req.timeout_ms, 86400000);
		l.max_timeout_ms = 86399999;
		expect_err_lim(__FILE__, __LINE__, s, strlen(s), &l, PROTO_INVALID_REQUEST, "1", -1,
		               "timeout_ms");
	}
}

/* Valid and invalid apply requests. */
static void test_apply(void)
{
	struct proto_request req;

	if (OK("{\"id\":\"abc\",\"op\":\"apply\",\"fn\":\"add\",\"args\":[1,2]}", &req)) {
		CHECK_INT(req.op, OP_APPLY);
		CHECK_MEM(req.id.p, req.id.len, "\"abc\"");
		CHECK_STR(req.fn, "add");
		CHECK_MEM(req.args.p, req.args.len, "[1,2]");
		CHECK_INT(req.n_items, 0);
		CHECK(req.has_args);
		CHECK_INT(req.stream, 0);
		CHECK_INT(req.retries, 2);
		CHECK_INT(req.timeout_ms, 5000);
	}
	if (OK("{\"id\":2,\"op\":\"apply\",\"fn\":\"sleep_ms\",\"args\":[5],\"retries\":7,"
	       "\"timeout_ms\":100}",
	       &req)) {
		CHECK_INT(req.retries, 7);
		CHECK_INT(req.timeout_ms, 100);
	}
	/* apply is not limited by max_items: its args are one call */
	{
		size_t n = 3000, k;
		char *s = malloc(n * 2 + 100), *p = s;

		p += sprintf(p, "{\"id\":3,\"op\":\"apply\",\"fn\":\"f\",\"args\":[");
		for (k = 0; k < n; k++)
			p += sprintf(p, k ? ",1" : "1");
		strcpy(p, "]}");
		if (OK(s, &req))
			free(s);
	}
	ERR("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\"}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"apply\",\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":{}}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":1}", PROTO_INVALID_REQUEST, "9");
	ERR("{\"id\":9,\"op\":\"apply\",\"fn\":2,\"args\":[]}", PROTO_INVALID_REQUEST, "9");
	/* map-only fields */
	ERR_MSG("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":[],\"star\":false}",
	        PROTO_INVALID_REQUEST, "9", "'star' is not valid for op 'apply'");
	ERR_MSG("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":[],\"on_error\":\"fail\"}",
	        PROTO_INVALID_REQUEST, "9", "on_error");
	ERR_MSG("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":[],\"chunksize\":1}",
	        PROTO_INVALID_REQUEST, "9", "chunksize");
	ERR_MSG("{\"id\":9,\"op\":\"apply\",\"fn\":\"f\",\"args\":[],\"target\":1}",
	        PROTO_INVALID_REQUEST, "9", "target");
}

/* ping, status and functions, and each field they must refuse. */
static void test_simple_ops(void)
{
	static const struct {
		const char *name;
		enum proto_op op;
	} ops[] = {{"ping", OP_PING}, {"status", OP_STATUS}, {"functions", OP_FUNCTIONS}};
	static const char *const extra[] = {
	    "\"fn\":\"f\"",    "\"args\":[]",   "\"star\":true",    "\"on_error\":\"fail\"",
	    "\"chunksize\":1", "\"retries\":1", "\"timeout_ms\":1", "\"target\":1",
	};
	struct proto_request req;
	char line[200];
	size_t i, j;

	for (i = 0; i < 3; i++) {
		snprintf(line, sizeof(line), "{\"id\":%zu,\"op\":\"%s\"}", i + 3, ops[i].name);
		if (OK(line, &req)) {
			CHECK_INT(req.op, ops[i].op);
			CHECK_STR(proto_op_name(req.op), ops[i].name);
			CHECK_INT(req.id.len, 1);
		}
		snprintf(line, sizeof(line), "{\"op\":\"%s\",\"id\":\"x\"}", ops[i].name);
		if (OK(line, &req))
			for (j = 0; j < sizeof(extra) / sizeof(extra[0]); j++) {
				snprintf(line, sizeof(line), "{\"id\":4,\"op\":\"%s\",%s}",
				         ops[i].name, extra[j]);
				ERR_MSG(line, PROTO_INVALID_REQUEST, "4", "is not valid for op");
			}
	}
}

/* cancel and its target. */
static void test_cancel(void)
{
	struct proto_request req;
	char line[400], longid[200];

	if (OK("{\"id\":6,\"op\":\"cancel\",\"target\":1}", &req)) {
		CHECK_INT(req.op, OP_CANCEL);
		CHECK_MEM(req.target.p, req.target.len, "1");
	}
	if (OK("{\"id\":6,\"op\":\"cancel\",\"target\":\"job-1\"}", &req)) {
		CHECK_MEM(req.target.p, req.target.len, "\"job-1\"");
	}
	if (OK("{\"id\":6,\"op\":\"cancel\",\"target\":-9007199254740992}", &req)) {
		CHECK_MEM(req.target.p, req.target.len, "-9007199254740992");
	}
	ERR_MSG("{\"id\":6,\"op\":\"cancel\"}", PROTO_INVALID_REQUEST, "6", "'target'");
	ERR_MSG("{\"id\":6,\"op\":\"cancel\",\"target\":{}}", PROTO_INVALID_REQUEST, "6",
	        "'target'");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":[1]}", PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":true}", PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":null}", PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":1.5}", PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":9007199254740993}", PROTO_INVALID_REQUEST, "6");
	memset(longid, 'x', 129);
	longid[129] = '\0';
	snprintf(line, sizeof(line), "{\"id\":6,\"op\":\"cancel\",\"target\":\"%s\"}", longid);
	ERR(line, PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":1,\"fn\":\"f\"}", PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":1,\"args\":[]}", PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"cancel\",\"target\":1,\"retries\":1}", PROTO_INVALID_REQUEST, "6");
	ERR("{\"id\":6,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"target\":1}",
	    PROTO_INVALID_REQUEST, "6");
}

/* Accepted and refused ids, echoed verbatim, kept for later errors. */
static void test_ids(void)
{
	static const char *const good[] = {
	    "0",    "-0",    "1",          "-1",          "9007199254740992", "-9007199254740992",
	    "\"\"", "\"a\"", "\"a\\\"b\"", "\"\\u00e9\"", "\"\xc3\xa9\"",
	};
	static const char *const bad[] = {
	    "1.5",
	    "1.0",
	    "1e3",
	    "-1e-3",
	    "true",
	    "false",
	    "null",
	    "[1]",
	    "[]",
	    "{}",
	    "{\"a\":1}",
	    "9007199254740993",
	    "-9007199254740993",
	    "99999999999999999999",
	    "1e400",
	};
	struct proto_request req;
	char line[400], sid[200];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(line, sizeof(line), "{\"id\":%s,\"op\":\"ping\"}", good[i]);
		if (OK(line, &req)) {
			CHECK_MEM(req.id.p, req.id.len, good[i]); /* verbatim */
		}
		/* the id is kept for later errors too */
		snprintf(line, sizeof(line), "{\"id\":%s,\"op\":\"nope\"}", good[i]);
		ERR(line, PROTO_UNKNOWN_OP, good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "{\"id\":%s,\"op\":\"ping\"}", bad[i]);
		ERR_MSG(line, PROTO_INVALID_REQUEST, NULL, "'id'");
	}
	/* string ids: 128 bytes fit, 129 do not */
	sid[0] = '"';
	memset(sid + 1, 'i', 128);
	sid[129] = '"';
	sid[130] = '\0';
	snprintf(line, sizeof(line), "{\"id\":%s,\"op\":\"ping\"}", sid);
	if (OK(line, &req)) {
		CHECK_INT(req.id.len, 130);
	}
	sid[129] = 'i';
	sid[130] = '"';
	sid[131] = '\0';
	snprintf(line, sizeof(line), "{\"id\":%s,\"op\":\"ping\"}", sid);
	ERR_MSG(line, PROTO_INVALID_REQUEST, NULL, "'id'");
	/* missing id */
	ERR_MSG("{\"op\":\"ping\"}", PROTO_INVALID_REQUEST, NULL, "missing field 'id'");
	ERR_MSG("{}", PROTO_INVALID_REQUEST, NULL, "'id'");
	ERR("{\"op\":\"map\",\"fn\":\"f\",\"args\":[1]}", PROTO_INVALID_REQUEST, NULL);
}

/*
 * Several bad fields: the one reported follows PROTOCOL.md section 4's order
 * of checks, whatever their order in the line (issue 9 item 10).
 */
static void test_check_order(void)
{
	/* step 3 (unknown, duplicate) before everything, the first in the line */
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"y\":1,\"x\":2,\"fn\":3}", PROTO_INVALID_REQUEST, "1",
	        "unknown field \"y\"");
	/* step 6 (not valid for the op) in the fixed field order: fn before target */
	ERR_MSG("{\"id\":1,\"op\":\"ping\",\"target\":1,\"fn\":\"f\"}", PROTO_INVALID_REQUEST, "1",
	        "'fn' is not valid");
	/* step 7 in its order: fn, star, stream, end, ordered, window, args, on_error,
	 * chunksize, retries, timeout_ms */
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"timeout_ms\":-1,\"retries\":\"x\",\"chunksize\":1.5,"
	        "\"on_error\":\"no\",\"args\":5,\"star\":3,\"fn\":7}",
	        PROTO_INVALID_REQUEST, "1", "'fn'");
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"timeout_ms\":-1,\"retries\":\"x\",\"chunksize\":1.5,"
	        "\"on_error\":\"no\",\"args\":5,\"star\":3,\"fn\":\"f\"}",
	        PROTO_INVALID_REQUEST, "1", "'star'");
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"timeout_ms\":-1,\"retries\":\"x\",\"chunksize\":1.5,"
	        "\"on_error\":\"no\",\"args\":5,\"fn\":\"f\"}",
	        PROTO_INVALID_REQUEST, "1", "'args'");
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"timeout_ms\":-1,\"retries\":\"x\",\"chunksize\":1.5,"
	        "\"on_error\":\"no\",\"args\":[],\"fn\":\"f\"}",
	        PROTO_INVALID_REQUEST, "1", "'on_error'");
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"timeout_ms\":-1,\"retries\":\"x\",\"chunksize\":1.5,"
	        "\"args\":[],\"fn\":\"f\"}",
	        PROTO_INVALID_REQUEST, "1", "'chunksize'");
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"timeout_ms\":-1,\"retries\":\"x\",\"args\":[],"
	        "\"fn\":\"f\"}",
	        PROTO_INVALID_REQUEST, "1", "'retries'");
	ERR_MSG("{\"id\":1,\"op\":\"map\",\"window\":0,\"stream\":1,\"fn\":\"f\"}",
	        PROTO_INVALID_REQUEST, "1", "'stream'");
}

/* Missing, mistyped and unknown ops; unknown and duplicate fields. */
static void test_op_and_fields(void)
{
	/* missing / mistyped op */
	ERR_MSG("{\"id\":1}", PROTO_INVALID_REQUEST, "1", "missing field 'op'");
	ERR_MSG("{\"id\":1,\"op\":1}", PROTO_INVALID_REQUEST, "1", "'op'");
	ERR("{\"id\":1,\"op\":null}", PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":true}", PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":[\"ping\"]}", PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":{}}", PROTO_INVALID_REQUEST, "1");
	/* unknown op */
	ERR_MSG("{\"id\":1,\"op\":\"reduce\"}", PROTO_UNKNOWN_OP, "1", "reduce");
	ERR("{\"id\":1,\"op\":\"\"}", PROTO_UNKNOWN_OP, "1");
	ERR("{\"id\":1,\"op\":\"MAP\"}", PROTO_UNKNOWN_OP, "1");
	ERR("{\"id\":1,\"op\":\"map \"}", PROTO_UNKNOWN_OP, "1");
	ERR("{\"id\":1,\"op\":\"pin\"}", PROTO_UNKNOWN_OP, "1");
	ERR("{\"id\":1,\"op\":\"pingg\"}", PROTO_UNKNOWN_OP, "1");
	ERR("{\"id\":1,\"op\":\"\\u0070ing\"}", PROTO_UNKNOWN_OP, "1");
	ERR("{\"id\":\"q\",\"op\":\"\\\"\\n\"}", PROTO_UNKNOWN_OP, "\"q\"");
	/* an unknown op is reported before fields the op would not accept */
	ERR("{\"id\":1,\"op\":\"nope\",\"fn\":\"f\"}", PROTO_UNKNOWN_OP, "1");
	/* a long unknown op, its name cut in the message (and the reply still valid JSON) */
	{
		char line[400], op[300];

		memset(op, 'o', 250);
		op[250] = '\0';
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"%s\"}", op);
		ERR(line, PROTO_UNKNOWN_OP, "1");
		/* cut inside a multi-byte character */
		memset(op, 'o', 38);
		strcpy(op + 38, "\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"%s\"}", op);
		ERR(line, PROTO_UNKNOWN_OP, "1");
		memset(op, 'o', 37);
		strcpy(op + 37, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"%s\"}", op);
		ERR(line, PROTO_UNKNOWN_OP, "1");
		memset(op, 'k', 37);
		strcpy(op + 37, "\xe2\x82\xac\xe2\x82\xac");
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"ping\",\"%s\":1}", op);
		ERR(line, PROTO_INVALID_REQUEST, "1");
		memset(op, 'k', 39);
		strcpy(op + 39, "\xc3\xa9\xc3\xa9");
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"ping\",\"%s\":1}", op);
		ERR(line, PROTO_INVALID_REQUEST, "1");
	}
	/* unknown fields */
	ERR_MSG("{\"id\":1,\"op\":\"ping\",\"x\":1}", PROTO_INVALID_REQUEST, "1", "unknown field");
	/* the id is found after a bad field too, and the first problem is the one reported */
	ERR_MSG("{\"op\":\"ping\",\"x\":1,\"id\":5}", PROTO_INVALID_REQUEST, "5", "unknown field");
	ERR_MSG("{\"op\":\"ping\",\"op\":\"ping\",\"y\":1,\"id\":\"s\"}", PROTO_INVALID_REQUEST,
	        "\"s\"", "duplicate field 'op'");
	ERR_MSG("{\"id\":1,\"op\":\"ping\",\"extra\":true}", PROTO_INVALID_REQUEST, "1", "extra");
	ERR("{\"id\":1,\"op\":\"ping\",\"ID\":1}", PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":\"ping\",\"\":1}", PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":\"ping\",\"\\u0069d\":1}", PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"Star\":true}",
	    PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":\"nope\",\"x\":1}", PROTO_INVALID_REQUEST, "1");
	/* duplicate fields */
	ERR_MSG("{\"id\":1,\"op\":\"ping\",\"op\":\"ping\"}", PROTO_INVALID_REQUEST, "1",
	        "duplicate field 'op'");
	ERR_MSG("{\"id\":1,\"id\":2,\"op\":\"ping\"}", PROTO_INVALID_REQUEST, "1",
	        "duplicate field 'id'");
	ERR("{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"args\":[],\"args\":[]}", PROTO_INVALID_REQUEST,
	    "1");
	ERR("{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"fn\":\"f\",\"args\":[]}",
	    PROTO_INVALID_REQUEST, "1");
	ERR("{\"id\":1,\"op\":\"cancel\",\"target\":1,\"target\":2}", PROTO_INVALID_REQUEST, "1");
	/* an invalid id is not echoed, whatever the later error */
	ERR("{\"id\":1.5,\"op\":\"ping\",\"x\":1}", PROTO_INVALID_REQUEST, NULL);
	ERR("{\"id\":true,\"op\":\"nope\"}", PROTO_INVALID_REQUEST, NULL);
}

/* Lines that are not one JSON object: parse_error with no id. */
static void test_not_an_object(void)
{
	static const char *const parse[] = {
	    "",
	    " ",
	    "{",
	    "}",
	    "not json",
	    "{\"id\":1,\"op\":\"ping\"",
	    "{\"id\":1,\"op\":\"ping\"}}",
	    "{\"id\":1,\"op\":\"ping\"} x",
	    "{\"id\":1,\"op\":\"ping\"}{\"id\":2,\"op\":\"ping\"}",
	    "{'id':1,'op':'ping'}",
	    "{id:1,op:\"ping\"}",
	    "{\"id\":01,\"op\":\"ping\"}",
	    "{\"id\":NaN,\"op\":\"ping\"}",
	    "{\"id\":1,\"op\":\"ping\",}",
	    "[{\"id\":1,\"op\":\"ping\"}]",
	    "[]",
	    "1",
	    "\"ping\"",
	    "null",
	    "true",
	    "{\"id\":1,\"op\":\"pi\xffng\"}",
	    "{\"id\":\"\xc0\xaf\",\"op\":\"ping\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(parse) / sizeof(parse[0]); i++)
		ERR(parse[i], PROTO_PARSE_ERROR, NULL);
	ERR_MSG("[1]", PROTO_PARSE_ERROR, NULL, "object");
	ERR_MSG("{\"id\":1,", PROTO_PARSE_ERROR, NULL, "malformed JSON");
	/* NUL bytes, inside and outside strings */
	{
		static const char a[] = "{\"id\":1,\"op\":\"pi\0ng\"}";
		static const char b[] = "{\"id\":1,\0\"op\":\"ping\"}";
		static const char c[] = "{\"id\":1,\"op\":\"ping\"}\0";

		expect_err_lim(__FILE__, __LINE__, a, sizeof(a) - 1, &lim, PROTO_PARSE_ERROR, NULL,
		               -1, NULL);
		expect_err_lim(__FILE__, __LINE__, b, sizeof(b) - 1, &lim, PROTO_PARSE_ERROR, NULL,
		               -1, NULL);
		expect_err_lim(__FILE__, __LINE__, c, sizeof(c) - 1, &lim, PROTO_PARSE_ERROR, NULL,
		               -1, NULL);
	}
	/* a leading/trailing CR or spaces are JSON whitespace, so this one parses */
	{
		struct proto_request req;

		OK(" \t{\"id\":1,\"op\":\"ping\"}\r ", &req);
	}
	/* 10,000-deep args */
	{
		size_t n = 10000, k;
		char *s = malloc(n * 2 + 100), *p = s;

		p += sprintf(p, "{\"id\":1,\"op\":\"map\",\"fn\":\"echo\",\"args\":");
		for (k = 0; k < n; k++)
			*p++ = '[';
		for (k = 0; k < n; k++)
			*p++ = ']';
		strcpy(p, "}");
		ERR_MSG(s, PROTO_PARSE_ERROR, NULL, "deep");
		free(s);
	}
	/* args nested to the limit (the request object is one level) */
	{
		size_t n = JSON_MAX_DEPTH - 1, k;
		char *s = malloc(n * 2 + 100), *p = s;
		struct proto_request req;

		p += sprintf(p, "{\"id\":1,\"op\":\"map\",\"fn\":\"echo\",\"args\":");
		for (k = 0; k < n; k++)
			*p++ = '[';
		for (k = 0; k < n; k++)
			*p++ = ']';
		strcpy(p, "}");
		if (OK(s, &req)) {
			CHECK_INT(req.n_items, 1);
		}
		free(s);
	}
}

/* The max_items limit (too_large) and default_timeout_ms. */
static void test_max_items(void)
{
	struct proto_limits l = lim;
	struct proto_request req;
	struct proto_error err;
	size_t n = 1001, k;
	char *s = malloc(n * 2 + 100), *p;
	const char *one = "{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"args\":[1]}";
	const char *star = "{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"star\":true,\"args\":[1,2]}";
	const char *none = "{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"args\":[]}";

	p = s + sprintf(s, "{\"id\":\"big\",\"op\":\"map\",\"fn\":\"f\",\"args\":[");
	for (k = 0; k < n; k++)
		p += sprintf(p, k ? ",0" : "0");
	strcpy(p, "]}");
	ERR_MSG(s, PROTO_TOO_LARGE, "\"big\"", "1001");
	/* exactly at the limit */
	p = s + sprintf(s, "{\"id\":\"big\",\"op\":\"map\",\"fn\":\"f\",\"args\":[");
	for (k = 0; k < n - 1; k++)
		p += sprintf(p, k ? ",0" : "0");
	strcpy(p, "]}");
	if (OK(s, &req)) {
		CHECK_INT(req.n_items, 1000);
		if (req.n_items == 1000)
			CHECK_MEM(nth(&req, 999).p, nth(&req, 999).len, "0");
	}
	free(s);
	/* a limit of 0 allows only empty maps; the limit is checked before star items */
	l.max_items = 0;
	CHECK(proto_parse_request(none, strlen(none), &l, &req, &err) == 0);
	expect_err_lim(__FILE__, __LINE__, one, strlen(one), &l, PROTO_TOO_LARGE, "1", -1, NULL);
	l.max_items = 1;
	expect_err_lim(__FILE__, __LINE__, star, strlen(star), &l, PROTO_TOO_LARGE, "1", -1, NULL);
	l.max_items = 2;
	expect_err_lim(__FILE__, __LINE__, star, strlen(star), &l, PROTO_INVALID_REQUEST, "1", 0,
	               NULL);
	/* default_timeout_ms is used only when timeout_ms is absent */
	l.default_timeout_ms = 0;
	CHECK(proto_parse_request(one, strlen(one), &l, &req, &err) == 0);
	CHECK_INT(req.timeout_ms, 0);
}

/* Error replies, the ok prefix and proto_error_set, byte for byte. */
static void test_reply_encoding(void)
{
	struct buf b = {0};
	struct proto_error err;
	struct json_span id1 = {"7", 1}, sid = {"\"a\\\"b\"", 6}, none = {NULL, 0};

	CHECK_INT(proto_error_set(&err, PROTO_INVALID_REQUEST, -1, "bad %s", "thing"), -EINVAL);
	CHECK_INT(err.code, PROTO_INVALID_REQUEST);
	CHECK_INT(err.index, -1);
	CHECK_STR(err.message, "bad thing");
	proto_reply_error(&b, id1, &err);
	CHECK_STR(b.data,
	          "{\"id\":7,\"ok\":false,\"error\":{\"code\":\"invalid_request\",\"message\":"
	          "\"bad thing\"}}\n");
	buf_reset(&b);
	proto_error_set(&err, PROTO_FUNCTION_ERROR, 3, "boom");
	proto_reply_error(&b, id1, &err);
	CHECK_STR(b.data, "{\"id\":7,\"ok\":false,\"error\":{\"code\":\"function_error\","
	                  "\"message\":\"boom\",\"index\":3}}\n");
	buf_reset(&b);
	proto_error_set(&err, PROTO_PARSE_ERROR, -1, "x");
	proto_reply_error(&b, none, &err);
	CHECK_STR(b.data, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"parse_error\","
	                  "\"message\":\"x\"}}\n");
	buf_reset(&b);
	proto_error_set(&err, PROTO_TIMEOUT, 0, "quote \" backslash \\ nl \n tab \t bell \a");
	proto_reply_error(&b, sid, &err);
	CHECK_STR(b.data, "{\"id\":\"a\\\"b\",\"ok\":false,\"error\":{\"code\":\"timeout\","
	                  "\"message\":\"quote \\\" backslash \\\\ nl \\n tab \\t bell "
	                  "\\u0007\",\"index\":0}}\n");
	CHECK(is_json(b.data, b.len - 1));
	buf_reset(&b);
	proto_error_set(&err, PROTO_WORKER_DIED, 123456789L, "%s", "");
	CHECK_INT(proto_error_object(&b, &err), 0);
	CHECK_STR(b.data, "{\"code\":\"worker_died\",\"message\":\"\",\"index\":123456789}");
	buf_reset(&b);
	CHECK_INT(proto_reply_ok_begin(&b, id1), 0);
	CHECK_STR(b.data, "{\"id\":7,\"ok\":true");
	buf_adds(&b, ",\"result\":3}");
	CHECK(is_json(b.data, b.len));
	buf_reset(&b);
	CHECK_INT(proto_reply_ok_begin(&b, sid), 0);
	CHECK_STR(b.data, "{\"id\":\"a\\\"b\",\"ok\":true");
	/* a long message is cut to the buffer, NUL-terminated */
	{
		char big[1000];

		memset(big, 'm', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		proto_error_set(&err, PROTO_INTERNAL, -1, "%s", big);
		CHECK_INT(strlen(err.message), sizeof(err.message) - 1);
	}
	buf_free(&b);
}

/* The wire names of every error code and op. */
static void test_names(void)
{
	static const char *const names[PROTO_CODE_MAX] = {
	    "ok",
	    "parse_error",
	    "invalid_request",
	    "unknown_op",
	    "unknown_function",
	    "bad_arity",
	    "too_large",
	    "busy",
	    "shutting_down",
	    "duplicate_id",
	    "not_found",
	    "cancelled",
	    "forbidden",
	    "function_error",
	    "type_error",
	    "out_of_range",
	    "worker_died",
	    "timeout",
	    "result_too_large",
	    "internal",
	};
	int i;

	for (i = 0; i < PROTO_CODE_MAX; i++)
		CHECK_STR(proto_code_name((enum proto_code)i), names[i]);
	CHECK_STR(proto_code_name(PROTO_CODE_MAX), "internal");
	CHECK_STR(proto_code_name((enum proto_code) - 1), "internal");
	CHECK_STR(proto_op_name(OP_MAP), "map");
	CHECK_STR(proto_op_name(OP_APPLY), "apply");
	CHECK_STR(proto_op_name(OP_PING), "ping");
	CHECK_STR(proto_op_name(OP_STATUS), "status");
	CHECK_STR(proto_op_name(OP_FUNCTIONS), "functions");
	CHECK_STR(proto_op_name(OP_CANCEL), "cancel");
}

/* Run every test; non-zero exit on any failure. */
int main(void)
{
	test_map();
	test_map_errors();
	test_int_fields();
	test_apply();
	test_simple_ops();
	test_cancel();
	test_ids();
	test_op_and_fields();
	test_check_order();
	test_not_an_object();
	test_max_items();
	test_reply_encoding();
	test_names();
	return check_exit("test_proto");
}
