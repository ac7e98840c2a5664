/* test_fncall.c - unit tests of the module API (daemon/fncall.c, poold/module.h) */
#include "fncall.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* One call of f on the JSON array text args (spread); returns fncall_run's result. */
static struct buf out;
static struct proto_error err;
static struct poold_call call;

static int run(poold_fn fn, int min_args, int max_args, const char *args, size_t limit)
{
	struct poold_function f = {"t", min_args, max_args, "test", fn};
	struct json_span v;
	const char *msg;
	size_t off, n;

	buf_reset(&out);
	memset(&err, 0, sizeof(err));
	if (json_validate(args, args + strlen(args), &v, &msg, &off) < 0) {
		fprintf(stderr, "bad test input %s\n", args);
		exit(2);
	}
	n = fncall_set_args(&call, v, 1);
	return fncall_run(&call, &f, "t", n, 0, &out, limit, &err);
}

/* The result text, or "" after an error. */
static const char *res(void)
{
	return out.data ? out.data : "";
}

#define OK(fn, args, want)                                                                         \
	do {                                                                                       \
		CHECK_INT(run(fn, 0, POOLD_MAX_ARGS, args, 1 << 20), 0);                           \
		CHECK_STR(res(), want);                                                            \
	} while (0)

#define FAILS(fn, args, want_code, msg_part)                                                       \
	do {                                                                                       \
		CHECK_INT(run(fn, 0, POOLD_MAX_ARGS, args, 1 << 20), -1);                          \
		CHECK_INT(err.code, want_code);                                                    \
		CHECK(strstr(err.message, msg_part) != NULL);                                      \
		CHECK_INT(out.len, 0);                                                             \
	} while (0)

/* ---- functions under test ---- */

static int f_int(struct poold_call *c)
{
	int64_t v;

	return poold_arg_int(c, 0, &v) < 0 ? -1 : poold_out_int(c, v);
}

static int f_num(struct poold_call *c)
{
	double d;
	int is_int;
	int64_t iv = 0;

	if (poold_arg_number(c, 0, &d, &is_int, &iv) < 0)
		return -1;
	return is_int ? poold_out_int(c, iv) : poold_out_double(c, d);
}

static int f_double_only(struct poold_call *c)
{
	double d;

	return poold_number(c, poold_arg(c, 0), &d, NULL, NULL) < 0 ? -1 : poold_out_double(c, d);
}

/* The decoded string, its length and bytes as hex, to see NULs and UTF-8 exactly. */
static int f_str(struct poold_call *c)
{
	const char *s;
	size_t len, i;
	char hex[512];

	if (poold_arg_string(c, 0, &s, &len) < 0)
		return -1;
	for (i = 0; i < len && i < 250; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
	hex[2 * i] = '\0';
	CHECK_INT(s[len], 0);
	return poold_out_string(c, hex, strlen(hex));
}

/* Two strings decoded in one call both stay valid. */
static int f_two_strs(struct poold_call *c)
{
	const char *a, *b;
	size_t la, lb;

	if (poold_arg_string(c, 0, &a, &la) < 0 || poold_arg_string(c, 1, &b, &lb) < 0)
		return -1;
	if (poold_out_array_begin(c) < 0 || poold_out_string(c, a, la) < 0 ||
	    poold_out_string(c, b, lb) < 0)
		return -1;
	return poold_out_array_end(c);
}

static int f_bool(struct poold_call *c)
{
	int b;

	return poold_bool(c, poold_arg(c, 0), &b) < 0 ? -1 : poold_out_bool(c, !b);
}

/* Rebuild any value through the iterators and builders: a deep copy. */
static int copy(struct poold_call *c, struct poold_value v)
{
	struct poold_iter it;
	struct poold_value k, e;
	const char *s;
	size_t len;
	int b;

	switch (poold_type(v)) {
	case POOLD_NULL:
		return poold_out_null(c);
	case POOLD_TRUE:
	case POOLD_FALSE:
		return poold_bool(c, v, &b) < 0 ? -1 : poold_out_bool(c, b);
	case POOLD_NUMBER:
		return poold_out_json(c, v.json, v.len);
	case POOLD_STRING:
		return poold_string(c, v, &s, &len) < 0 ? -1 : poold_out_string(c, s, len);
	case POOLD_ARRAY:
		if (poold_iter_init(c, v, &it) < 0 || poold_out_array_begin(c) < 0)
			return -1;
		while (poold_array_next(&it, &e))
			if (copy(c, e) < 0)
				return -1;
		return poold_out_array_end(c);
	case POOLD_OBJECT:
		if (poold_iter_init(c, v, &it) < 0 || poold_out_object_begin(c) < 0)
			return -1;
		while (poold_object_next(&it, &k, &e))
			if (poold_string(c, k, &s, &len) < 0 || poold_out_key(c, s, len) < 0 ||
			    copy(c, e) < 0)
				return -1;
		return poold_out_object_end(c);
	}
	return -1;
}

static int f_copy(struct poold_call *c)
{
	return copy(c, poold_arg(c, 0));
}

static int f_info(struct poold_call *c)
{
	struct poold_value v = poold_arg(c, 0);

	if (poold_out_object_begin(c) < 0 || poold_out_key(c, "argc", 4) < 0 ||
	    poold_out_int(c, poold_argc(c)) < 0 || poold_out_key(c, "type", 4) < 0 ||
	    poold_out_int(c, poold_type(v)) < 0 || poold_out_key(c, "len", 3) < 0 ||
	    poold_out_int(c, (int64_t)poold_array_len(v)) < 0 || poold_out_key(c, "is_k", 4) < 0 ||
	    poold_out_bool(c, poold_string_eq(v, "k")) < 0 || poold_out_key(c, "name", 4) < 0 ||
	    poold_out_string(c, poold_function_name(c), 1) < 0 ||
	    poold_out_key(c, "missing_arg_type", 16) < 0 ||
	    poold_out_int(c, poold_type(poold_arg(c, 99))) < 0)
		return -1;
	return poold_out_object_end(c);
}

static int f_escape(struct poold_call *c)
{
	static const char s[] = "q\"b\\n\nt\tc\x01nul\0del\x7f\xc3\xa9\xff\xf0\x9f\x98\x80";

	if (poold_out_array_begin(c) < 0 || poold_out_string(c, s, sizeof(s) - 1) < 0 ||
	    poold_out_object_begin(c) < 0 || poold_out_key(c, "a\"\n", 3) < 0 ||
	    poold_out_null(c) < 0 || poold_out_key(c, "", 0) < 0 || poold_out_array_begin(c) < 0 ||
	    poold_out_array_end(c) < 0 || poold_out_object_end(c) < 0 ||
	    poold_out_double(c, 0.5) < 0 || poold_out_double(c, -0.0) < 0 ||
	    poold_out_double(c, 1e300) < 0 || poold_out_json(c, " [1, {\"x\":2}] ", 14) < 0 ||
	    poold_out_int(c, -JSON_INT_MAX) < 0)
		return -1;
	return poold_out_array_end(c);
}

static int f_out_int_arg(struct poold_call *c)
{
	double d;

	if (poold_arg_number(c, 0, &d, NULL, NULL) < 0)
		return -1;
	return poold_out_int(c, (int64_t)d);
}

static int f_two_values(struct poold_call *c)
{
	poold_out_int(c, 1);
	return poold_out_int(c, 2);
}

static int f_member_without_key(struct poold_call *c)
{
	poold_out_object_begin(c);
	poold_out_int(c, 1);
	return poold_out_object_end(c);
}

static int f_key_outside(struct poold_call *c)
{
	poold_out_array_begin(c);
	poold_out_key(c, "k", 1);
	return poold_out_array_end(c);
}

static int f_key_twice(struct poold_call *c)
{
	poold_out_object_begin(c);
	poold_out_key(c, "k", 1);
	poold_out_key(c, "l", 1);
	return 0;
}

static int f_wrong_end(struct poold_call *c)
{
	poold_out_array_begin(c);
	return poold_out_object_end(c);
}

static int f_unclosed(struct poold_call *c)
{
	return poold_out_array_begin(c);
}

static int f_nothing(struct poold_call *c)
{
	return 0;
}

static int f_minus_one(struct poold_call *c)
{
	return -1;
}

static int f_bad_json(struct poold_call *c)
{
	return poold_out_json(c, "[1,", 3);
}

static int f_two_json(struct poold_call *c)
{
	return poold_out_json(c, "1 2", 3);
}

static int f_nan(struct poold_call *c)
{
	return poold_out_double(c, 0.0 / 0.0);
}

/* The first failure wins; what came before it is dropped. */
static int f_fail_after_output(struct poold_call *c)
{
	poold_out_array_begin(c);
	poold_out_int(c, 1);
	poold_fail(c, POOLD_FUNCTION_ERROR, "first %d", 1);
	poold_fail(c, POOLD_TYPE_ERROR, "second");
	return poold_out_int(c, 3);
}

static int f_fail_bad_code(struct poold_call *c)
{
	return poold_fail(c, (enum poold_error)42, "odd code");
}

static int f_big(struct poold_call *c)
{
	int i;

	if (poold_out_array_begin(c) < 0)
		return -1;
	for (i = 0; i < 1000; i++)
		if (poold_out_string(c, "0123456789", 10) < 0)
			return -1;
	return poold_out_array_end(c);
}

static int f_deep(struct poold_call *c)
{
	int i;

	for (i = 0; i <= JSON_MAX_DEPTH; i++)
		if (poold_out_array_begin(c) < 0)
			return -1;
	return 0;
}

static int f_iter_number(struct poold_call *c)
{
	struct poold_iter it;

	return poold_iter_init(c, poold_arg(c, 0), &it);
}

/* Walking an array as an object (or the reverse) ends at once. */
static int f_iter_mismatch(struct poold_call *c)
{
	struct poold_iter it;
	struct poold_value k, v;
	int n = 0;

	if (poold_iter_init(c, poold_arg(c, 0), &it) < 0)
		return -1;
	n += poold_object_next(&it, &k, &v);
	if (poold_iter_init(c, poold_arg(c, 1), &it) < 0)
		return -1;
	n += poold_array_next(&it, &v);
	it = (struct poold_iter){0};
	n += poold_array_next(&it, &v) + poold_object_next(&it, &k, &v);
	return poold_out_int(c, n);
}

static void test_ints(void)
{
	OK(f_int, "[0]", "0");
	OK(f_int, "[-0]", "0");
	OK(f_int, "[9007199254740992]", "9007199254740992");
	OK(f_int, "[-9007199254740992]", "-9007199254740992");
	FAILS(f_int, "[9007199254740993]", PROTO_OUT_OF_RANGE, "argument 1 is beyond 2^53");
	FAILS(f_int, "[-9007199254740993]", PROTO_OUT_OF_RANGE, "beyond 2^53");
	FAILS(f_int, "[123456789012345678901234567890]", PROTO_OUT_OF_RANGE, "beyond 2^53");
	FAILS(f_int, "[1.0]", PROTO_TYPE_ERROR, "argument 1 must be an integer, not 1.0");
	FAILS(f_int, "[1e3]", PROTO_TYPE_ERROR, "must be an integer, not 1e3");
	FAILS(f_int, "[\"1\"]", PROTO_TYPE_ERROR, "argument 1 must be an integer");
	FAILS(f_int, "[]", PROTO_TYPE_ERROR, "argument 1 must be an integer");
	/* the short-integer fast path (up to 15 digits) and the general one beside it */
	OK(f_int, "[999999999999999]", "999999999999999");
	OK(f_int, "[-999999999999999]", "-999999999999999");
	OK(f_int, "[1000000000000000]", "1000000000000000");
	OK(f_int, "[-1000000000000000]", "-1000000000000000");
	OK(f_int, "[-1]", "-1");
	OK(f_int, "[12,1]", "12");
	FAILS(f_int, "[-1.5]", PROTO_TYPE_ERROR, "argument 1 must be an integer, not -1.5");
	FAILS(f_int, "[10E1]", PROTO_TYPE_ERROR, "must be an integer, not 10E1");
	FAILS(f_int, "[-0e0]", PROTO_TYPE_ERROR, "must be an integer, not -0e0");
	FAILS(f_int, "[[1]]", PROTO_TYPE_ERROR, "argument 1 must be an integer");
	/* results: 2^53 both ways, no further */
	OK(f_out_int_arg, "[9007199254740992]", "9007199254740992");
	FAILS(f_out_int_arg, "[9007199254740994.0]", PROTO_OUT_OF_RANGE, "integer result beyond");
	FAILS(f_out_int_arg, "[-1e17]", PROTO_OUT_OF_RANGE, "integer result beyond");
}

static void test_numbers(void)
{
	OK(f_num, "[7]", "7");
	OK(f_num, "[-0]", "0");
	OK(f_num, "[-0.0]", "-0.0");
	OK(f_num, "[1e2]", "100.0");
	OK(f_num, "[1E+2]", "100.0");
	OK(f_num, "[2.5e-3]", "0.0025");
	OK(f_num, "[-1.5]", "-1.5");
	OK(f_num, "[1e308]", "1e+308");
	FAILS(f_num, "[9007199254740993]", PROTO_OUT_OF_RANGE, "pass it as a float");
	OK(f_num, "[-9007199254740992]", "-9007199254740992");
	OK(f_num, "[123456789012345]", "123456789012345");
	OK(f_num, "[-123456789012345]", "-123456789012345");
	OK(f_num, "[1234567890123456]", "1234567890123456");
	OK(f_num, "[5e0]", "5.0");
	OK(f_num, "[-5.0]", "-5.0");
	FAILS(f_num, "[null]", PROTO_TYPE_ERROR, "argument 1 must be a number");
	/* without is_int any number is a double, big integers included */
	OK(f_double_only, "[9007199254740993]", "9007199254740992.0");
	OK(f_double_only, "[3]", "3.0");
	FAILS(f_double_only, "[true]", PROTO_TYPE_ERROR, "value must be a number");
	FAILS(f_nan, "[]", PROTO_FUNCTION_ERROR, "not a finite number");
	FAILS(f_double_only, "[1e999]", PROTO_FUNCTION_ERROR, "not a finite number");
}

static void test_strings(void)
{
	OK(f_str, "[\"\"]", "\"\"");
	OK(f_str, "[\"abc\"]", "\"616263\"");
	OK(f_str, "[\"a\\u0000b\"]", "\"610062\"");
	OK(f_str, "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "\"225c2f080c0a0d09\"");
	OK(f_str, "[\"\\u00e9\\u20ac\"]", "\"c3a9e282ac\"");
	OK(f_str, "[\"\\ud83d\\ude00\"]", "\"f09f9880\""); /* a surrogate pair: U+1F600 */
	OK(f_str, "[\"\\ud83dx\"]", "\"efbfbd78\"");       /* a lone high surrogate: U+FFFD */
	OK(f_str, "[\"\\ude00\"]", "\"efbfbd\"");          /* a lone low surrogate */
	OK(f_str, "[\"\xc3\xa9\"]", "\"c3a9\"");           /* raw UTF-8 passes through */
	FAILS(f_str, "[1]", PROTO_TYPE_ERROR, "argument 1 must be a string");
	OK(f_two_strs, "[\"a\\u0000\", \"\\n\"]", "[\"a\\u0000\",\"\\n\"]");
	/* many strings in one call, then in the next: buffers reused */
	OK(f_two_strs, "[\"first\", \"second\"]", "[\"first\",\"second\"]");
	OK(f_bool, "[true]", "false");
	OK(f_bool, "[false]", "true");
	FAILS(f_bool, "[0]", PROTO_TYPE_ERROR, "true or false");
}

static void test_nested(void)
{
	OK(f_copy, "[[]]", "[]");
	OK(f_copy, "[{}]", "{}");
	OK(f_copy, "[[1, [2, [3, []]], {\"a\": {\"b\": [null, true, false]}}]]",
	   "[1,[2,[3,[]]],{\"a\":{\"b\":[null,true,false]}}]");
	OK(f_copy, "[{\"k\\u0000\": \"v\\ud83d\\ude00\", \"\": -0.5e-3}]",
	   "{\"k\\u0000\":\"v\xf0\x9f\x98\x80\",\"\":-0.5e-3}");
	OK(f_info, "[[1, 2, 3]]",
	   "{\"argc\":1,\"type\":5,\"len\":3,\"is_k\":false,\"name\":\"t\",\"missing_arg_type\":"
	   "0}");
	OK(f_info, "[\"k\"]",
	   "{\"argc\":1,\"type\":4,\"len\":0,\"is_k\":true,\"name\":\"t\",\"missing_arg_type\":0}");
	OK(f_info, "[{\"a\":1}, 2, 3]",
	   "{\"argc\":3,\"type\":6,\"len\":0,\"is_k\":false,\"name\":\"t\",\"missing_arg_type\":"
	   "0}");
	FAILS(f_iter_number, "[5]", PROTO_TYPE_ERROR, "array or an object");
	OK(f_iter_mismatch, "[[1, 2], {\"a\": 1}]", "0");
}

static void test_builders(void)
{
	OK(f_escape, "[]",
	   "[\"q\\\"b\\\\n\\nt\\tc\\u0001nul\\u0000del\\u007f\xc3\xa9\\ufffd\xf0\x9f\x98\x80\","
	   "{\"a\\\"\\n\":null,\"\":[]},0.5,-0.0,1e+300,[1, {\"x\":2}],-9007199254740992]");
	FAILS(f_two_values, "[]", PROTO_FUNCTION_ERROR, "returns one value");
	FAILS(f_member_without_key, "[]", PROTO_FUNCTION_ERROR, "needs poold_out_key first");
	FAILS(f_key_outside, "[]", PROTO_FUNCTION_ERROR, "outside an object");
	FAILS(f_key_twice, "[]", PROTO_FUNCTION_ERROR, "twice without a value");
	FAILS(f_wrong_end, "[]", PROTO_FUNCTION_ERROR, "poold_out_object_end without its begin");
	FAILS(f_unclosed, "[]", PROTO_FUNCTION_ERROR, "left an array open");
	FAILS(f_nothing, "[]", PROTO_FUNCTION_ERROR, "returned no value");
	FAILS(f_minus_one, "[]", PROTO_FUNCTION_ERROR, "without a message");
	FAILS(f_bad_json, "[]", PROTO_FUNCTION_ERROR, "not one JSON value");
	FAILS(f_two_json, "[]", PROTO_FUNCTION_ERROR, "not one JSON value");
	FAILS(f_fail_after_output, "[]", PROTO_FUNCTION_ERROR, "first 1");
	FAILS(f_fail_bad_code, "[]", PROTO_FUNCTION_ERROR, "odd code");
	FAILS(f_deep, "[]", PROTO_FUNCTION_ERROR, "nested deeper than 256");
	/* size limit: the result alone over it */
	CHECK_INT(run(f_big, 0, 0, "[]", 1000), -1);
	CHECK_INT(err.code, PROTO_RESULT_TOO_LARGE);
	CHECK_INT(run(f_big, 0, 0, "[]", 20000), 0);
	CHECK_INT(out.len, 13001);
}

static void test_arity_and_append(void)
{
	CHECK_INT(run(f_int, 2, 3, "[1]", 100), -1);
	CHECK_INT(err.code, PROTO_BAD_ARITY);
	CHECK_STR(err.message, "t takes 2 to 3 arguments, got 1");
	CHECK_INT(run(f_int, 0, 1, "[1, 2]", 100), -1);
	CHECK_INT(err.code, PROTO_BAD_ARITY);
	/* more arguments than POOLD_MAX_ARGS: counted, not stored */
	CHECK_INT(run(f_int, 0, 16, "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]", 100), -1);
	CHECK_STR(err.message, "t takes 0 to 16 arguments, got 17");
	/* a result goes after what out holds; a failure restores it */
	{
		struct poold_function f = {"t", 1, 1, "", f_int};
		struct json_span item = {"5", 1};
		struct proto_error e;

		buf_reset(&out);
		buf_adds(&out, "1,");
		CHECK_INT(fncall_set_args(&call, item, 0), 1);
		CHECK_INT(fncall_run(&call, &f, "t", 1, 0, &out, 100, &e), 0);
		CHECK_STR(out.data, "1,5");
		item = (struct json_span){"\"x\"", 3};
		fncall_set_args(&call, item, 0);
		CHECK_INT(fncall_run(&call, &f, "t", 1, 0, &out, 100, &e), -1);
		CHECK_STR(out.data, "1,5");
		CHECK_INT(e.index, -1);
	}
}

int main(void)
{
	test_ints();
	test_numbers();
	test_strings();
	test_nested();
	test_builders();
	test_arity_and_append();
	fncall_deinit(&call);
	buf_free(&out);
	return check_exit("fncall");
}
