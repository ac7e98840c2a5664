/* test_poolconn.c - libpoolclient's reply parsing and argument check, on crafted text */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "poolconn.h"

/* Parse line; 0 or the negative code, err filled. */
static int parse(const char *line, struct poolconn_reply *rep, struct json_span *id,
                 struct pool_error *err)
{
	struct json_span l = {line, strlen(line)};

	memset(err, 0, sizeof(*err));
	return poolconn_parse_reply(l, rep, id, err);
}

/* The member key of rep is exactly want (NULL: absent). */
static void expect_member(int line, const struct poolconn_reply *rep, const char *key,
                          const char *want)
{
	struct json_span v;
	int r = poolconn_reply_get(rep, key, &v);

	if (!want) {
		if (r)
			check_fail(__FILE__, line, "member %s found", key);
		return;
	}
	if (!r) {
		check_fail(__FILE__, line, "member %s missing", key);
		return;
	}
	check_mem_eq(__FILE__, line, v.p, v.len, want);
}

static void test_replies(void)
{
	struct poolconn_reply rep;
	struct pool_error err;
	struct json_span id;

	CHECK(parse("{\"id\":7,\"ok\":true,\"results\":[1,-0,9007199254740992,-9007199254740992,"
	            "1e3,2.5E-3,\"a\\\"]\",[[]],{\"k\":[1]}]}",
	            &rep, &id, &err) == 0);
	CHECK_MEM(id.p, id.len, "7");
	CHECK(rep.ok == 1 && rep.all == 1 && rep.n == 3);
	expect_member(__LINE__, &rep, "results",
	              "[1,-0,9007199254740992,-9007199254740992,1e3,2.5E-3,\"a\\\"]\",[[]],"
	              "{\"k\":[1]}]");
	expect_member(__LINE__, &rep, "failed", NULL);
	/* whitespace everywhere, an error reply, duplicates: the first wins */
	CHECK(parse(" { \"ok\" : false ,\t\"id\" : null , \"error\" : {\"code\":\"x\"} , "
	            "\"ok\":true } ",
	            &rep, &id, &err) == 0);
	CHECK(rep.ok == 0);
	CHECK_MEM(id.p, id.len, "null");
	expect_member(__LINE__, &rep, "error", "{\"code\":\"x\"}");
	CHECK(rep.obj.p[0] == '{' && rep.obj.p[rep.obj.len - 1] == '}');
	/* more members than recorded: the rest are looked up in the text */
	CHECK(parse("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,"
	            "\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"id\":1,\"ok\":true,\"results\":[]}",
	            &rep, &id, &err) == 0);
	CHECK(rep.all == 0 && rep.n == POOLCONN_MEMBERS);
	expect_member(__LINE__, &rep, "results", "[]");
	expect_member(__LINE__, &rep, "a", "1");
	expect_member(__LINE__, &rep, "m", "13");
	expect_member(__LINE__, &rep, "zz", NULL);
	/* an escaped key is not the plain one (as poolconn_get) */
	CHECK(parse("{\"\\u0069d\":1,\"ok\":true}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(strstr(err.message, "object with an id") != NULL);
	/* errors: the same words as a whole-line validation */
	CHECK(parse("{\"id\":1,\"ok\":true,\"results\":[1,2}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(strstr(err.message, "reply is not valid JSON") != NULL);
	CHECK(parse("{\"id\":1,\"ok\":true} x", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(strstr(err.message, "trailing characters") != NULL);
	CHECK(parse("{\"id\":1,\"ok\":true,}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("{\"id\" 1}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("{\"id\":1 \"ok\":true}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("{\"id\":1,\"ok\":tru}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("{\"id\":\"\xff\",\"ok\":true}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("{", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("[1]", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(strstr(err.message, "object with an id") != NULL);
	CHECK(parse("{}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(parse("{\"id\":1}", &rep, &id, &err) == -POOL_EPROTO);
	CHECK(strstr(err.message, "\"ok\" boolean") != NULL);
	CHECK(parse("{\"id\":1,\"ok\":1}", &rep, &id, &err) == -POOL_EPROTO);
}

/* Check args; 0 or the negative code; *out the text to send, *n its items. */
static int check_args(const char *args, struct buf *scratch, const char **out, size_t *n)
{
	struct pool_error err = {0};
	size_t len = strlen(args);

	*out = args;
	*n = 12345;
	return poolconn_check_array(scratch, out, &len, n, &err) < 0 ? -err.code : (int)len;
}

static void test_args(void)
{
	struct buf scratch = {0};
	const char *out;
	size_t n;

	/* the integer fast path */
	CHECK_INT(check_args("[1,-2,0,-0,9007199254740993]", &scratch, &out, &n), 28);
	CHECK_INT(n, 5);
	CHECK_INT(check_args("[]", &scratch, &out, &n), 2);
	CHECK_INT(n, 0);
	/* the general one: floats, exponents, strings, whitespace and newlines */
	CHECK_INT(check_args("[1.5,1e3,-0.0,\"a\\n\"]", &scratch, &out, &n), 20);
	CHECK_INT(n, 4);
	CHECK_INT(check_args(" [1,\n2] ", &scratch, &out, &n), 6);
	CHECK_MEM(out, 6, "[1, 2]");
	CHECK_INT(n, 2);
	/* refused */
	CHECK_INT(check_args("[01]", &scratch, &out, &n), -POOL_EINVAL);
	CHECK_INT(check_args("[1,]", &scratch, &out, &n), -POOL_EINVAL);
	CHECK_INT(check_args("{}", &scratch, &out, &n), -POOL_EINVAL);
	CHECK_INT(check_args("[1] [2]", &scratch, &out, &n), -POOL_EINVAL);
	CHECK_INT(check_args("[1\n", &scratch, &out, &n), -POOL_EINVAL);
	buf_free(&scratch);
}

int main(void)
{
	test_replies();
	test_args();
	return check_exit("test_poolconn");
}
