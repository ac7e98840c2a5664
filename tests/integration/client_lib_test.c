/* client_lib_test.c - libpoolclient against a running poold: client_lib_test SOCKET [WORKERS] */
#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poolclient.h"

static int n_checks, n_failed;

/* Count one check; print where and why when it failed. Returns cond. */
static __attribute__((format(printf, 3, 4))) int check_at(int line, int cond, const char *fmt, ...)
{
	va_list ap;

	n_checks++;
	if (cond)
		return 1;
	n_failed++;
	fprintf(stderr, "client_lib_test.c:%d: FAILED: ", line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 0;
}

#define CHECK(cond, ...) check_at(__LINE__, (cond), __VA_ARGS__)

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
	o.retries = 0;
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

int main(int argc, char **argv)
{
	struct pool_error e = {0};
	pool_client *c;

	if (argc < 2) {
		fprintf(stderr, "usage: client_lib_test SOCKET [WORKERS]\n");
		return 2;
	}
	c = pool_connect(argv[1], &e);
	if (!c) {
		fprintf(stderr, "cannot connect to %s: %s\n", argv[1], e.message);
		return 1;
	}
	test_ping(c);
	test_calls(c);
	test_text(c);
	test_errors(c);
	test_info(c, argc > 2 ? atoi(argv[2]) : 0);
	test_raw(c);
	pool_close(c);
	test_connect_fail(argv[1]);
	fprintf(stderr, "client_lib_test: %d checks, %d failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
