/*
 * client_lib_test.c - libpoolclient against a running poold:
 *   client_lib_test SOCKET [WORKERS]   the API end to end
 *   client_lib_test SOCKET opts        zero options mean the defaults, POOL_NONE the protocol's 0
 *   client_lib_test SOCKET deadline    pool_set_deadline, driven over stdin/stdout by the test
 */
#include <cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccheck.h"
#include "poolclient.h"

/* Parse JSON text for inputs; aborts on a typo in this file. */
static cJSON *js(const char *text)
{
	cJSON *v = cJSON_Parse(text);

	if (!v) {
		fprintf(stderr, "bad test JSON: %s\n", text);
		exit(2);
	}
	return v;
}

/* 1 when v prints (unformatted) exactly as want. */
static int json_is(const cJSON *v, const char *want)
{
	char *s = v ? cJSON_PrintUnformatted(v) : NULL;
	int eq = s && strcmp(s, want) == 0;

	if (!eq)
		fprintf(stderr, "    got %s, want %s\n", s ? s : "(null)", want);
	free(s);
	return eq;
}

/* The number member key of o, or -1e300 when absent. */
static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1e300;
}

/* ping: the whole reply, protocol 1 and a pid. */
static void test_ping(pool_client *c)
{
	struct pool_error e = {0};
	cJSON *rep = NULL;
	int r = pool_ping(c, &rep, &e);

	if (!CHECK(r == 0, "pool_ping: %d %s %s", r, e.code_name, e.message))
		return;
	CHECK(num(rep, "protocol") == 1, "ping protocol");
	CHECK(num(rep, "pid") > 1, "ping pid");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rep, "ok")), "ping ok");
	CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(rep, "version")), "ping version");
	cJSON_Delete(rep);
}

/* map, starmap and apply through cJSON trees. */
static void test_calls(pool_client *c)
{
	struct pool_error e = {0};
	struct pool_map_opts o = POOL_MAP_OPTS_INIT;
	cJSON *items = js("[2,3,4,5,6,7,8]"), *pairs = js("[[1,2],[3,4],[-1,1.5]]");
	cJSON *args = js("[20,22]"), *echo = js("[{\"k\":[1,null,true,\"s\"]}]"), *out = NULL;
	int r;

	r = pool_map(c, "square", items, NULL, &out, &e);
	CHECK(r == 0 && json_is(out, "[4,9,16,25,36,49,64]"), "pool_map square: %d %s", r,
	      e.message);
	cJSON_Delete(out);
	out = NULL;
	o.chunksize = 1;
	o.retries = POOL_NONE;
	o.timeout_ms = 10000;
	r = pool_map(c, "cube", items, &o, &out, &e);
	CHECK(r == 0 && json_is(out, "[8,27,64,125,216,343,512]"), "pool_map cube opts: %d %s", r,
	      e.message);
	cJSON_Delete(out);
	out = NULL;
	r = pool_starmap(c, "add", pairs, NULL, &out, &e);
	CHECK(r == 0 && json_is(out, "[3,7,0.5]"), "pool_starmap add: %d %s", r, e.message);
	cJSON_Delete(out);
	out = NULL;
	r = pool_apply(c, "add", args, NULL, &out, &e);
	CHECK(r == 0 && cJSON_IsNumber(out) && out->valuedouble == 42, "pool_apply add: %d %s", r,
	      e.message);
	cJSON_Delete(out);
	out = NULL;
	r = pool_apply(c, "echo", echo, NULL, &out, &e);
	CHECK(r == 0 && json_is(out, "{\"k\":[1,null,true,\"s\"]}"), "pool_apply echo: %d %s", r,
	      e.message);
	cJSON_Delete(out);
	cJSON_Delete(items);
	cJSON_Delete(pairs);
	cJSON_Delete(args);
	cJSON_Delete(echo);
}

/* The text functions pass the daemon's bytes through. */
static void test_text(pool_client *c)
{
	struct pool_error e = {0};
	char *out = NULL, *big;
	size_t len = 0, i, n = 20000, k = 0, cap = n * 8 + 2;
	int r;

	r = pool_map_text(c, "cbrt", "[27,125,343,729]", 16, NULL, &out, &len, &e);
	CHECK(r == 0 && out && strcmp(out, "[3.0,5.0,7.0,9.0]") == 0 && len == strlen(out),
	      "pool_map_text cbrt: %d %s", r, out ? out : e.message);
	free(out);
	out = NULL;
	r = pool_map_text(c, "echo", "[9007199254740993]xyz", 18, NULL, &out, NULL, &e);
	CHECK(r == 0 && out && strcmp(out, "[9007199254740993]") == 0,
	      "pool_map_text echo 2^53+1 (len excludes trailing bytes): %d %s", r,
	      out ? out : e.message);
	free(out);
	out = NULL;
	r = pool_map_text(c, "square", "[94906265]", 10, NULL, &out, &len, &e);
	CHECK(r == 0 && out && strcmp(out, "[9007199136250225]") == 0,
	      "pool_map_text square exact: %d %s", r, out ? out : e.message);
	free(out);
	out = NULL;
	r = pool_apply_text(c, "add", "[1.5,2]", 7, NULL, &out, &len, &e);
	CHECK(r == 0 && out && strcmp(out, "3.5") == 0, "pool_apply_text add: %d %s", r,
	      out ? out : e.message);
	free(out);
	out = NULL;

	/* 20,000 items in one request, results in order. */
	big = malloc(cap);
	if (!big)
		exit(2);
	big[k++] = '[';
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(big + k, cap - k, "%s%zu", i ? "," : "", i);
	big[k++] = ']';
	r = pool_map_text(c, "square", big, k, NULL, &out, &len, &e);
	if (CHECK(r == 0 && out, "pool_map_text 20000 items: %d %s", r, e.message)) {
		cJSON *v = cJSON_Parse(out), *x;

		i = 0;
		cJSON_ArrayForEach(x, v)
		{
			if (!CHECK(x->valuedouble == (double)(i * i), "item %zu: %g", i,
			           x->valuedouble))
				break;
			i++;
		}
		CHECK(i == n, "20000-item map returned %zu results", i);
		cJSON_Delete(v);
	}
	free(out);
	free(big);
}

/* Latency mode: calls give the same answers, slow replies still arrive, bad values refused. */
static void test_spin(pool_client *c)
{
	struct pool_error e = {0};
	char *out = NULL;
	int r, i, ok = 1;

	CHECK(pool_set_spin(c, -1, &e) == -POOL_EINVAL, "pool_set_spin(-1) refused");
	CHECK(pool_set_spin(c, 1000001, &e) == -POOL_EINVAL, "pool_set_spin(1000001) refused");
	CHECK(pool_set_spin(NULL, 10, &e) == -POOL_EINVAL, "pool_set_spin(NULL) refused");
	CHECK(pool_set_spin(c, 1000, &e) == 0, "pool_set_spin(1000): %s", e.message);
	for (i = 0; i < 200 && ok; i++) {
		char args[32], want[32];

		snprintf(args, sizeof(args), "[%d]", i);
		snprintf(want, sizeof(want), "%d", i * i);
		r = pool_apply_text(c, "square", args, strlen(args), NULL, &out, NULL, &e);
		ok = CHECK(r == 0 && out && strcmp(out, want) == 0, "spinning apply %d: %d %s", i,
		           r, out ? out : e.message);
		free(out);
		out = NULL;
	}
	/* A reply slower than the spin (50 ms > 1 ms) is waited for, asleep. */
	r = pool_apply_text(c, "sleep_ms", "[50]", 4, NULL, &out, NULL, &e);
	CHECK(r == 0 && out && strcmp(out, "50") == 0, "spinning apply past the spin: %d %s", r,
	      out ? out : e.message);
	free(out);
	CHECK(pool_set_spin(c, 0, &e) == 0, "pool_set_spin(0)");
}

/* Rejections are POOL_EREQUEST, job failures POOL_EJOB with the item index. */
static void test_errors(pool_client *c)
{
	struct pool_error e = {0};
	struct pool_map_opts o = POOL_MAP_OPTS_INIT;
	cJSON *one = js("[1]"), *mixed = js("[0,1,\"x\",2,\"y\"]"), *out = NULL;
	cJSON *msgs = js("[\"boom\",\"bang\"]");
	int r;

	r = pool_map(c, "no_such_function", one, NULL, &out, &e);
	CHECK(r == -POOL_EREQUEST && e.code == POOL_EREQUEST, "unknown function: r=%d code=%d", r,
	      e.code);
	CHECK(strcmp(e.code_name, "unknown_function") == 0, "unknown function code_name %s",
	      e.code_name);
	CHECK(out == NULL, "output set on failure");
	memset(&e, 0, sizeof(e));
	r = pool_apply(c, "add", one, NULL, &out, &e);
	CHECK(r == -POOL_EREQUEST && strcmp(e.code_name, "bad_arity") == 0, "apply add(1): r=%d %s",
	      r, e.code_name);

	memset(&e, 0, sizeof(e));
	r = pool_map(c, "fail", msgs, NULL, &out, &e);
	CHECK(r == -POOL_EJOB && e.code == POOL_EJOB, "fail: r=%d code=%d", r, e.code);
	CHECK(strcmp(e.code_name, "function_error") == 0 && e.index == 0 &&
	          strstr(e.message, "boom"),
	      "fail: %s index %ld message %s", e.code_name, e.index, e.message);
	memset(&e, 0, sizeof(e));
	o.chunksize = 1;
	r = pool_map(c, "sleep_ms", mixed, &o, &out, &e);
	CHECK(r == -POOL_EJOB && strcmp(e.code_name, "type_error") == 0 && e.index == 2,
	      "sleep_ms on a string: r=%d %s index %ld", r, e.code_name, e.index);

	memset(&e, 0, sizeof(e));
	o.collect = 1;
	r = pool_map(c, "sleep_ms", mixed, &o, &out, &e);
	CHECK(r == 2, "collect: %d failed items reported, want 2 (%s)", r, e.message);
	CHECK(e.index == 2 && strcmp(e.code_name, "type_error") == 0,
	      "collect: first failure %s index %ld", e.code_name, e.index);
	if (CHECK(out != NULL, "collect: no results")) {
		CHECK(cJSON_GetArraySize(out) == 5, "collect: %d results", cJSON_GetArraySize(out));
		CHECK(cJSON_IsNumber(cJSON_GetArrayItem(out, 3)) &&
		          cJSON_GetArrayItem(out, 3)->valuedouble == 2,
		      "collect: item 3");
		CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(out, 4), "error") != NULL,
		      "collect: item 4 is an error");
	}
	cJSON_Delete(out);
	out = NULL;

	memset(&e, 0, sizeof(e));
	r = pool_apply(c, "fail", msgs, NULL, &out, &e);
	CHECK(r == -POOL_EREQUEST && strcmp(e.code_name, "bad_arity") == 0,
	      "apply fail with 2 args: r=%d %s", r, e.code_name);
	memset(&e, 0, sizeof(e));
	r = pool_map(c, "square", NULL, NULL, &out, &e);
	CHECK(r == -POOL_EINVAL && e.code == POOL_EINVAL, "NULL items: r=%d", r);
	r = pool_map(c, "square", one, NULL, &out, &e);
	CHECK(r == 0 && json_is(out, "[1]"), "the connection works after errors: %d %s", r,
	      e.message);
	cJSON_Delete(out);
	cJSON_Delete(one);
	cJSON_Delete(mixed);
	cJSON_Delete(msgs);
}

/* status and functions. */
static void test_info(pool_client *c, int workers)
{
	struct pool_error e = {0};
	cJSON *st = NULL, *fns = NULL, *f;
	int r, found = 0;

	r = pool_status(c, &st, &e);
	if (CHECK(r == 0, "pool_status: %d %s", r, e.message)) {
		const cJSON *slots = cJSON_GetObjectItemCaseSensitive(st, "slots");

		CHECK(workers <= 0 || num(st, "workers") == workers, "status workers %g, want %d",
		      num(st, "workers"), workers);
		CHECK(cJSON_IsArray(slots) &&
		          (workers <= 0 || cJSON_GetArraySize(slots) == workers),
		      "status slots");
		CHECK(num(st, "requests") == 0, "status requests %g", num(st, "requests"));
		CHECK(num(st, "pid") > 1, "status pid");
	}
	cJSON_Delete(st);
	r = pool_functions(c, &fns, &e);
	if (CHECK(r == 0 && cJSON_IsArray(fns), "pool_functions: %d %s", r, e.message)) {
		cJSON_ArrayForEach(f, fns)
		{
			const char *name =
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name"));

			if (name && strcmp(name, "add") == 0) {
				found = 1;
				CHECK(num(f, "min_args") == 2 && num(f, "max_args") == 2,
				      "add arity");
			}
		}
		CHECK(found, "functions has no add");
	}
	cJSON_Delete(fns);
}

/* pool_request_raw and the helpers. */
static void test_raw(pool_client *c)
{
	struct pool_error e = {0};
	char *rep = NULL;
	size_t len = 0;
	int r;

	r = pool_request_raw(c, "{\"op\":\"cancel\",\"target\":12345}", 30, &rep, &len, &e);
	CHECK(r == 0 && rep && strstr(rep, "\"not_found\"") && len == strlen(rep),
	      "raw cancel of nothing: %d %s", r, rep ? rep : e.message);
	free(rep);
	rep = NULL;
	r = pool_request_raw(c, "{\"op\":\"ping\"}", 13, &rep, &len, &e);
	CHECK(r == 0 && rep && strstr(rep, "\"protocol\":1"), "raw ping: %d %s", r,
	      rep ? rep : e.message);
	free(rep);
	rep = NULL;
	r = pool_request_raw(c, "{\"id\":1,\"op\":\"ping\"}", 20, &rep, &len, &e);
	CHECK(r == -POOL_EINVAL, "raw request with an id: %d", r);
	CHECK(pool_fd(c) >= 0, "pool_fd");
	CHECK(strcmp(pool_errc_name(POOL_OK), pool_errc_name(POOL_EJOB)) != 0, "pool_errc_name");
}

/* The text of the JSON array [from, from+1, ..., from+n-1], pad spaces after each item. */
static char *int_array(long from, long n, int pad, size_t *len)
{
	size_t cap = (size_t)n * (24 + (size_t)pad) + 3, k = 0;
	char *t = malloc(cap);
	long i;

	if (!t)
		exit(2);
	t[k++] = '[';
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(t + k, cap - k, "%s%ld%*s", i ? "," : "", from + i, pad, "");
	t[k++] = ']';
	t[k] = '\0';
	*len = k;
	return t;
}

/* What a stream returned: every item's result (as double) and how often it came. */
struct got {
	long n;          /* items expected */
	double *val;     /* val[i]: item i's result */
	int *seen;       /* seen[i]: times item i came back */
	long parts;      /* parts returned */
	long next;       /* ordered: where the next part must start */
	long first_part; /* index of the first part returned */
	int ordered_ok;  /* every part started where the last ended */
};

/* Start counting the results of n items. */
static void got_init(struct got *g, long n)
{
	memset(g, 0, sizeof(*g));
	g->n = n;
	g->val = calloc((size_t)n + 1, sizeof(double));
	g->seen = calloc((size_t)n + 1, sizeof(int));
	g->first_part = -1;
	g->ordered_ok = 1;
	if (!g->val || !g->seen)
		exit(2);
}

/* Record one part; 0, or -1 when it names items outside 0..n-1. */
static int got_part(struct got *g, long index, const cJSON *results)
{
	const cJSON *x;
	long i = index;

	if (g->first_part < 0)
		g->first_part = index;
	if (index != g->next)
		g->ordered_ok = 0;
	g->parts++;
	cJSON_ArrayForEach(x, results)
	{
		if (i < 0 || i >= g->n)
			return -1;
		g->val[i] = cJSON_IsNumber(x) ? x->valuedouble : -1e300;
		g->seen[i]++;
		i++;
	}
	g->next = i;
	return 0;
}

/* Items 0..n-1 each came back exactly once with f(i); the first bad index, or -1. */
static long got_bad(const struct got *g, double (*f)(long))
{
	long i;

	for (i = 0; i < g->n; i++)
		if (g->seen[i] != 1 || g->val[i] != f(i))
			return i;
	return -1;
}

/* Free what got_init allocated. */
static void got_free(struct got *g)
{
	free(g->val);
	free(g->seen);
}

/* Read parts until the stream ends; returns what the last next returned. */
static int read_all(pool_stream *s, struct got *g, struct pool_error *e)
{
	cJSON *res = NULL;
	long index = -1;
	int r;

	while ((r = pool_stream_next(s, -1, &index, &res, e)) == 1) {
		if (got_part(g, index, res) < 0) {
			cJSON_Delete(res);
			return -100;
		}
		cJSON_Delete(res);
		res = NULL;
	}
	return r;
}

/* f(i) = i*i. */
static double sq(long i)
{
	return (double)i * (double)i;
}
/* f(i) = i. */
static double ident(long i)
{
	return (double)i;
}

/* open / feed (cJSON and text) / end / next in order; the client is busy meanwhile. */
static void test_stream_basic(pool_client *c)
{
	struct pool_error e = {0};
	pool_stream *s;
	cJSON *items = js("[0,1,2]"), *out = NULL;
	char *text = NULL;
	size_t len = 0;
	struct got g;
	int r;

	got_init(&g, 6);
	s = pool_stream_open(c, "square", NULL, &e);
	if (!CHECK(s != NULL, "pool_stream_open: %s %s", e.code_name, e.message)) {
		cJSON_Delete(items);
		got_free(&g);
		return;
	}
	r = pool_stream_feed(s, items, &e);
	CHECK(r == 0, "pool_stream_feed: %d %s", r, e.message);
	r = pool_map(c, "square", items, NULL, &out, &e);
	CHECK(r == -POOL_EINVAL && out == NULL, "pool_map while a stream is open: %d", r);
	CHECK(pool_stream_open(c, "square", NULL, &e) == NULL && e.code == POOL_EINVAL,
	      "a second stream on the client: %d", e.code);
	r = pool_stream_feed_text(s, "[3,\n4,5]xyz", 8, &e);
	CHECK(r == 0, "pool_stream_feed_text (newline inside, trailing bytes): %d %s", r,
	      e.message);
	r = pool_stream_feed_text(s, "[6,", 3, &e);
	CHECK(r == -POOL_EINVAL, "feed of bad JSON: %d", r);
	r = pool_stream_next_text(s, -1, &g.first_part, &text, &len, &e);
	if (CHECK(r == 1 && text, "first part: %d %s", r, e.message)) {
		cJSON *v = cJSON_Parse(text);

		CHECK(len == strlen(text), "part length");
		CHECK(g.first_part == 0, "first part index %ld", g.first_part);
		got_part(&g, g.first_part, v);
		cJSON_Delete(v);
	}
	free(text);
	r = pool_stream_end(s, &e);
	CHECK(r == 0, "pool_stream_end: %d %s", r, e.message);
	r = pool_stream_feed(s, items, &e);
	CHECK(r == -POOL_EINVAL, "feed after end: %d", r);
	r = read_all(s, &g, &e);
	CHECK(r == 0, "stream end: %d %s %s", r, e.code_name, e.message);
	CHECK(got_bad(&g, sq) < 0, "stream results: item %ld wrong", got_bad(&g, sq));
	CHECK(g.ordered_ok, "ordered stream parts out of order");
	r = pool_stream_next(s, 0, &g.first_part, &out, &e);
	CHECK(r == 0, "next after done again: %d", r);
	CHECK(pool_stream_failed(s, NULL) == 0, "failed count of a clean stream");
	/* done: the client takes other requests again, before the stream is closed */
	r = pool_map(c, "square", items, NULL, &out, &e);
	CHECK(r == 0 && json_is(out, "[0,1,4]"), "pool_map after the stream: %d %s", r, e.message);
	cJSON_Delete(out);
	pool_stream_close(s);
	pool_stream_close(NULL);
	cJSON_Delete(items);
	got_free(&g);
}

/* Unordered: a slow first item does not hold back the others. */
static void test_stream_unordered(pool_client *c)
{
	struct pool_stream_opts o = POOL_STREAM_OPTS_INIT;
	struct pool_error e = {0};
	pool_stream *s;
	struct got g;
	int r;

	o.unordered = 1;
	o.chunksize = 1;
	got_init(&g, 5);
	s = pool_stream_open(c, "sleep_ms", &o, &e);
	if (!CHECK(s != NULL, "open unordered: %s", e.message)) {
		got_free(&g);
		return;
	}
	r = pool_stream_feed_text(s, "[1500,1,2,3,4]", 14, &e);
	CHECK(r == 0, "feed unordered: %d %s", r, e.message);
	r = pool_stream_end(s, &e);
	CHECK(r == 0, "end unordered: %d %s", r, e.message);
	r = read_all(s, &g, &e);
	CHECK(r == 0, "unordered stream: %d %s", r, e.message);
	g.val[0] = g.val[0] == 1500 ? 0 : -1; /* sleep_ms returns its argument */
	CHECK(got_bad(&g, ident) < 0, "unordered results: item %ld", got_bad(&g, ident));
	CHECK(g.first_part != 0, "unordered: the 1500 ms item came first");
	pool_stream_close(s);
	got_free(&g);
}

/* Collect mode: failures in place, counted; fail mode: the error ends the stream. */
static void test_stream_errors(pool_client *c)
{
	static const char FAILING[] = "[30,20,10,0,0,\"boom\",1,2]";
	static const char MIXED[] = "[1,\"x\",2,\"y\",3]";
	struct pool_stream_opts o = POOL_STREAM_OPTS_INIT;
	struct pool_error e = {0}, first = {0};
	pool_stream *s;
	cJSON *res = NULL;
	long index = -1, before = 0;
	int r;

	o.collect = 1;
	s = pool_stream_open(c, "sleep_ms", &o, &e);
	if (CHECK(s != NULL, "open collect: %s", e.message)) {
		r = pool_stream_feed_text(s, MIXED, strlen(MIXED), &e);
		CHECK(r == 0 && pool_stream_end(s, &e) == 0, "feed/end collect: %s", e.message);
		while ((r = pool_stream_next(s, -1, &index, &res, &e)) == 1) {
			cJSON *x;

			cJSON_ArrayForEach(x, res)
			{
				int bad = (index % 2) == 1;

				CHECK(bad ? cJSON_GetObjectItemCaseSensitive(x, "error") != NULL
				          : cJSON_IsNumber(x),
				      "collect item %ld", index);
				index++;
			}
			cJSON_Delete(res);
			res = NULL;
		}
		CHECK(r == 0 && index == 5, "collect stream end: %d (last index %ld) %s", r, index,
		      e.message);
		CHECK(pool_stream_failed(s, &first) == 2, "collect: %ld failed, want 2",
		      pool_stream_failed(s, NULL));
		CHECK(first.code == POOL_EJOB && first.index == 1 &&
		          strcmp(first.code_name, "type_error") == 0,
		      "collect: first failure %s at %ld", first.code_name, first.index);
		pool_stream_close(s);
	}

	/* fail mode, ordered: parts before the failing item all come first */
	o = (struct pool_stream_opts)POOL_STREAM_OPTS_INIT;
	o.chunksize = 1;
	s = pool_stream_open(c, "sleep_ms", &o, &e);
	if (CHECK(s != NULL, "open fail mode: %s", e.message)) {
		r = pool_stream_feed_text(s, FAILING, strlen(FAILING), &e);
		CHECK(r == 0, "feed fail mode: %d %s", r, e.message);
		while ((r = pool_stream_next(s, 5000, &index, &res, &e)) == 1) {
			before += cJSON_GetArraySize(res);
			cJSON_Delete(res);
			res = NULL;
		}
		CHECK(r == -POOL_EJOB && e.code == POOL_EJOB && e.index == 5 &&
		          strcmp(e.code_name, "type_error") == 0,
		      "fail mode: %d %s index %ld", r, e.code_name, e.index);
		CHECK(before == 5, "fail mode: %ld results before the failing item, want 5",
		      before);
		r = pool_stream_feed_text(s, "[1]", 3, &e);
		CHECK(r == -POOL_EJOB && e.index == 5, "feed after the failure: %d", r);
		r = pool_stream_next(s, -1, &index, &res, &e);
		CHECK(r == -POOL_EJOB, "next after the failure again: %d", r);
		pool_stream_close(s);
	}

	/* rejected at open: unknown function, bad window */
	s = pool_stream_open(c, "no_such_function", NULL, &e);
	CHECK(s == NULL && e.code == POOL_EREQUEST && strcmp(e.code_name, "unknown_function") == 0,
	      "open of an unknown function: %p %s", (void *)s, e.code_name);
	o = (struct pool_stream_opts)POOL_STREAM_OPTS_INIT;
	o.window = 2000000;
	s = pool_stream_open(c, "square", &o, &e);
	CHECK(s == NULL && e.code == POOL_EREQUEST, "open with window 2000000: %p %s", (void *)s,
	      e.code_name);
	r = pool_map(c, "square", NULL, NULL, &res, &e);
	CHECK(r == -POOL_EINVAL, "client still answers after failed opens: %d", r);
}

/* No results yet: POOL_EAGAIN; nothing left to wait for: POOL_EINVAL, not a hang. */
static void test_stream_timeouts(pool_client *c)
{
	struct pool_error e = {0};
	pool_stream *s = pool_stream_open(c, "sleep_ms", NULL, &e);
	char *text = NULL;
	long index = -1;
	int r;

	if (!CHECK(s != NULL, "open sleep_ms: %s", e.message))
		return;
	r = pool_stream_next_text(s, 0, &index, &text, NULL, &e);
	CHECK(r == -POOL_EAGAIN && e.code == POOL_EAGAIN, "next on nothing fed: %d", r);
	r = pool_stream_next_text(s, -1, &index, &text, NULL, &e);
	CHECK(r == -POOL_EINVAL, "blocking next on nothing fed, not ended: %d", r);
	r = pool_stream_feed_text(s, "[400]", 5, &e);
	CHECK(r == 0, "feed 400: %d %s", r, e.message);
	r = pool_stream_next_text(s, 0, &index, &text, NULL, &e);
	CHECK(r == -POOL_EAGAIN, "next(0) while the item sleeps: %d", r);
	r = pool_stream_next_text(s, 50, &index, &text, NULL, &e);
	CHECK(r == -POOL_EAGAIN, "next(50) while the item sleeps: %d", r);
	r = pool_stream_next_text(s, 20000, &index, &text, NULL, &e);
	CHECK(r == 1 && index == 0 && text && strcmp(text, "[400]") == 0, "next(20000): %d %s", r,
	      text ? text : e.message);
	free(text);
	CHECK(strcmp(pool_errc_name(POOL_EAGAIN), "again") == 0, "pool_errc_name(POOL_EAGAIN)");
	CHECK(pool_stream_fd(s) == pool_fd(c), "pool_stream_fd");
	pool_stream_close(s); /* not ended: cancelled */
	r = pool_request_raw(c, "{\"op\":\"ping\"}", 13, &text, NULL, &e);
	CHECK(r == 0 && text && strstr(text, "\"protocol\":1"), "ping after closing a stream: %d",
	      r);
	free(text);
}

/*
 * A window of 10 and 10,000 items fed without reading between feeds: no
 * deadlock. The items carry 300 spaces each (3 MB in all), far more than the
 * socket buffers, so feeds block while the daemon holds a full window.
 */
static void test_stream_window(pool_client *c)
{
	struct pool_stream_opts o = POOL_STREAM_OPTS_INIT;
	struct pool_error e = {0};
	pool_stream *s;
	struct got g;
	size_t len;
	char *items;
	long k;
	int r = 0;

	o.window = 10;
	got_init(&g, 10000);
	s = pool_stream_open(c, "square", &o, &e);
	if (!CHECK(s != NULL, "open window 10: %s", e.message)) {
		got_free(&g);
		return;
	}
	for (k = 0; k < 10 && r == 0; k++) {
		items = int_array(k * 1000, 1000, 300, &len);
		r = pool_stream_feed_text(s, items, len, &e);
		free(items);
	}
	CHECK(r == 0, "feeds into a window of 10: %d %s", r, e.message);
	r = pool_stream_end(s, &e);
	CHECK(r == 0, "end window 10: %d %s", r, e.message);
	r = read_all(s, &g, &e);
	CHECK(r == 0, "stream with window 10: %d %s", r, e.message);
	CHECK(got_bad(&g, sq) < 0 && g.ordered_ok, "window 10 results: item %ld", got_bad(&g, sq));
	pool_stream_close(s);
	got_free(&g);

	/* the same in one feed of 10,000 items */
	got_init(&g, 10000);
	s = pool_stream_open(c, "square", &o, &e);
	if (CHECK(s != NULL, "open window 10 again: %s", e.message)) {
		items = int_array(0, 10000, 300, &len);
		r = pool_stream_feed_text(s, items, len, &e);
		free(items);
		CHECK(r == 0 && pool_stream_end(s, &e) == 0, "one feed of 10000: %s", e.message);
		r = read_all(s, &g, &e);
		CHECK(r == 0 && got_bad(&g, sq) < 0, "one feed of 10000: %d %s item %ld", r,
		      e.message, got_bad(&g, sq));
		pool_stream_close(s);
	}
	got_free(&g);
}

/* Parts of any size: an echo of a 3 MiB string. */
static void test_stream_big(pool_client *c)
{
	struct pool_error e = {0};
	size_t n = 3u << 20, len = 0;
	char *item = malloc(n + 8), *text = NULL;
	pool_stream *s;
	long index = -1;
	int r;

	if (!item)
		exit(2);
	memcpy(item, "[\"", 2);
	memset(item + 2, 'x', n);
	memcpy(item + 2 + n, "\"]", 3);
	s = pool_stream_open(c, "echo", NULL, &e);
	if (!CHECK(s != NULL, "open echo: %s", e.message)) {
		free(item);
		return;
	}
	r = pool_stream_feed_text(s, item, n + 4, &e);
	CHECK(r == 0 && pool_stream_end(s, &e) == 0, "feed/end a 3 MiB item: %d %s", r, e.message);
	r = pool_stream_next_text(s, -1, &index, &text, &len, &e);
	CHECK(r == 1 && index == 0 && len == n + 4 && memcmp(text, item, len) == 0,
	      "3 MiB part: %d len %zu", r, len);
	free(text);
	r = pool_stream_next_text(s, -1, &index, &text, &len, &e);
	CHECK(r == 0, "3 MiB stream done: %d %s", r, e.message);
	pool_stream_close(s);
	free(item);
}

/* Connecting to nothing fails with POOL_ECONNECT. */
static void test_connect_fail(const char *sock)
{
	struct pool_error e = {0};
	char path[4096];
	pool_client *c;

	snprintf(path, sizeof(path), "%s.missing", sock);
	c = pool_connect(path, &e);
	CHECK(c == NULL && e.code == POOL_ECONNECT, "connect to %s: %p code %d", path, (void *)c,
	      e.code);
	CHECK(e.message[0] != '\0' && !strchr(e.message, '\n'), "connect error message '%s'",
	      e.message);
	pool_close(c);
	pool_close(NULL);
}

/*
 * Zeroed options are the defaults everywhere (retries 2: crash_first, which
 * crashes an item's first attempt, succeeds); POOL_NONE asks for none.
 */
static void test_opts(pool_client *c)
{
	struct pool_map_opts zero, none = {0}, old = {.retries = -1, .timeout_ms = -1};
	struct pool_stream_opts szero;
	struct pool_error e = {0};
	cJSON *items = js("[7]"), *out = NULL;
	char *text = NULL;
	long index = -1;
	pool_stream *s;
	int r;

	memset(&zero, 0, sizeof(zero));
	memset(&szero, 0, sizeof(szero));
	r = pool_map(c, "crash_first", items, &zero, &out, &e);
	CHECK(r == 0 && json_is(out, "[7]"), "zeroed options: default retries: %d %s", r,
	      e.message);
	cJSON_Delete(out);
	out = NULL;
	r = pool_map(c, "crash_first", items, &old, &out, &e);
	CHECK(r == 0 && json_is(out, "[7]"), "-1 still means the default: %d %s", r, e.message);
	cJSON_Delete(out);
	out = NULL;
	r = pool_apply(c, "crash_first", items, &zero, &out, &e);
	CHECK(r == 0 && json_is(out, "7"), "apply, zeroed options: %d %s", r, e.message);
	cJSON_Delete(out);
	out = NULL;
	none.retries = POOL_NONE;
	none.timeout_ms = POOL_NONE;
	r = pool_map(c, "crash_first", items, &none, &out, &e);
	CHECK(r == -POOL_EJOB && strcmp(e.code_name, "worker_died") == 0 && e.index == 0,
	      "POOL_NONE retries: no second attempt: %d %s", r, e.code_name);
	s = pool_stream_open(c, "crash_first", &szero, &e);
	if (CHECK(s != NULL, "stream with zeroed options: %s", e.message)) {
		r = pool_stream_feed_text(s, "[8]", 3, &e);
		if (r == 0)
			r = pool_stream_end(s, &e);
		if (r == 0)
			r = pool_stream_next_text(s, -1, &index, &text, NULL, &e);
		CHECK(r == 1 && index == 0 && text && strcmp(text, "[8]") == 0,
		      "stream, zeroed options (default window and retries): %d %s", r,
		      text ? text : e.message);
		free(text);
		pool_stream_close(s);
	}
	cJSON_Delete(items);
}

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Say word on stdout and wait for the test's next line on stdin. */
static void handshake(const char *word)
{
	char line[64];

	printf("%s\n", word);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		exit(3);
}

#define DEADLINE_MS 400
#define DEADLINE_BOUND_MS 20000 /* a timed-out call may take this long on a loaded machine */

/* A call that timed out: -POOL_ETIMEDOUT after at least the deadline, and not much more. */
static void check_timedout(const char *what, int r, int64_t t0, const struct pool_error *e)
{
	int64_t took = now_ms() - t0;

	CHECK(r == -POOL_ETIMEDOUT && e->code == POOL_ETIMEDOUT &&
	          strcmp(e->code_name, "timedout") == 0 && strstr(e->message, "cancelled"),
	      "%s: %d %s %s", what, r, e->code_name, e->message);
	CHECK(took >= DEADLINE_MS - 10 && took < DEADLINE_BOUND_MS, "%s: gave up after %lld ms",
	      what, (long long)took);
}

/*
 * Deadlines. The test stops the daemon (SIGSTOP) between "ready" and our next
 * step, resumes it after "timedout", and checks that no request is left.
 */
static void test_deadline(pool_client *c)
{
	struct pool_error e = {0};
	char *out = NULL, *text = NULL;
	long index = -1;
	pool_stream *s;
	int64_t t0;
	int r;

	CHECK(pool_set_deadline(c, -1, &e) == -POOL_EINVAL && e.code == POOL_EINVAL,
	      "deadline -1 refused");
	CHECK(pool_set_deadline(c, 86400001, &e) == -POOL_EINVAL, "deadline 86400001 refused");
	CHECK(pool_set_deadline(c, DEADLINE_MS, &e) == 0, "deadline %d: %s", DEADLINE_MS,
	      e.message);
	handshake("ready");
	t0 = now_ms();
	r = pool_map_text(c, "square", "[1,2]", 5, NULL, &out, NULL, &e);
	check_timedout("map to a stopped daemon", r, t0, &e);
	t0 = now_ms();
	s = pool_stream_open(c, "square", NULL, &e);
	check_timedout("stream open to a stopped daemon", s ? 0 : -e.code, t0, &e);
	pool_stream_close(s);
	handshake("timedout");
	/* resumed: the late replies to the cancelled requests are dropped */
	r = pool_map_text(c, "square", "[3]", 3, NULL, &out, NULL, &e);
	CHECK(r == 0 && out && strcmp(out, "[9]") == 0, "map after the deadline: %d %s", r,
	      out ? out : e.message);
	free(out);
	out = NULL;
	t0 = now_ms();
	r = pool_apply_text(c, "sleep_ms", "[30000]", 7, NULL, &out, NULL, &e);
	check_timedout("apply sleep_ms 30000", r, t0, &e);
	s = pool_stream_open(c, "sleep_ms", NULL, &e);
	if (CHECK(s != NULL, "stream open: %s", e.message)) {
		r = pool_stream_feed_text(s, "[1,30000]", 9, &e);
		CHECK(r == 0, "feed: %d %s", r, e.message);
		r = pool_stream_next_text(s, -1, &index, &text, NULL, &e);
		CHECK(r == 1 && index == 0 && text && strcmp(text, "[1]") == 0, "first part: %d %s",
		      r, text ? text : e.message);
		free(text);
		t0 = now_ms();
		r = pool_stream_next_text(s, -1, &index, &text, NULL, &e);
		check_timedout("stream next past the deadline", r, t0, &e);
		r = pool_stream_next_text(s, 0, &index, &text, NULL, &e);
		CHECK(r == -POOL_ETIMEDOUT, "a timed-out stream has ended: %d", r);
		pool_stream_close(s);
	}
	r = pool_map_text(c, "square", "[4]", 3, NULL, &out, NULL, &e);
	CHECK(r == 0 && out && strcmp(out, "[16]") == 0, "map after a timed-out stream: %d %s", r,
	      out ? out : e.message);
	free(out);
	CHECK(pool_set_deadline(c, 0, &e) == 0, "deadline off");
	handshake("quiet?");
}

int main(int argc, char **argv)
{
	struct pool_error e = {0};
	pool_client *c;

	if (argc < 2) {
		fprintf(stderr, "usage: client_lib_test SOCKET [WORKERS|opts|deadline]\n");
		return 2;
	}
	c = pool_connect(argv[1], &e);
	if (!c) {
		fprintf(stderr, "cannot connect to %s: %s\n", argv[1], e.message);
		return 1;
	}
	if (argc > 2 && (strcmp(argv[2], "opts") == 0 || strcmp(argv[2], "deadline") == 0)) {
		if (argv[2][0] == 'o')
			test_opts(c);
		else
			test_deadline(c);
		pool_close(c);
		fprintf(stderr, "client_lib_test: %d checks, %d failed\n", n_checks, n_failed);
		return n_failed ? 1 : 0;
	}
	test_ping(c);
	test_calls(c);
	test_text(c);
	test_spin(c);
	test_errors(c);
	test_info(c, argc > 2 ? atoi(argv[2]) : 0);
	test_raw(c);
	test_stream_basic(c);
	test_stream_unordered(c);
	test_stream_errors(c);
	test_stream_timeouts(c);
	test_stream_window(c);
	test_stream_big(c);
	pool_close(c);
	test_connect_fail(argv[1]);
	fprintf(stderr, "client_lib_test: %d checks, %d failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
