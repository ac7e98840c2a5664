/*
 * client_ints_test.c - pool_map_int64() against a running poold:
 *   client_ints_test SOCKET map      plain, negative, empty, +-2^53, options, a million items
 *   client_ints_test SOCKET errors   failing items, non-integer results, refused calls
 *   client_ints_test SOCKET stale    a reply to a request given up at its deadline is skipped
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccheck.h"
#include "poolclient.h"

#define P53 9007199254740992LL

static void *xcalloc(size_t n)
{
	void *p = calloc(n ? n : 1, sizeof(int64_t));

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

/* Map fn over items[0..n); 1 when it succeeded with results equal to want[0..n). */
static int map_is(pool_client *c, const char *fn, const int64_t *items, size_t n,
                  const struct pool_map_opts *o, const int64_t *want)
{
	struct pool_error e = {0};
	int64_t *got = xcalloc(n);
	size_t i;
	int r = pool_map_int64(c, fn, items, n, o, got, &e), ok = 1;

	if (!CHECK(r == 0, "%s over %zu items: %d %s: %s", fn, n, r, e.code_name, e.message)) {
		free(got);
		return 0;
	}
	for (i = 0; i < n && ok; i++)
		ok = CHECK(got[i] == want[i], "%s: result %zu is %" PRId64 ", want %" PRId64, fn, i,
		           got[i], want[i]);
	free(got);
	return ok;
}

/* The call fails with code, err->code_name name and err->index index. */
static void fails_with(int line, pool_client *c, const char *fn, const int64_t *items, size_t n,
                       const struct pool_map_opts *o, int code, const char *name, long index,
                       const char *in_message)
{
	struct pool_error e = {0};
	int64_t *got = xcalloc(n);
	int r = pool_map_int64(c, fn, items, n, o, got, &e);

	check_at(__FILE__, line,
	         r == -code && strcmp(e.code_name, name) == 0 && e.index == index &&
	             (!in_message || strstr(e.message, in_message)),
	         "%s: got %d %s index %ld \"%s\", want %d %s index %ld \"%s\"", fn, r, e.code_name,
	         e.index, e.message, -code, name, index, in_message ? in_message : "");
	free(got);
}

static void test_map(pool_client *c)
{
	int64_t items[16], want[16], *big, *bigwant;
	struct pool_map_opts o = POOL_MAP_OPTS_INIT;
	struct pool_error e = {0};
	size_t i, n = 1000000;
	uint64_t x = 12345;

	for (i = 0; i < 10; i++) {
		items[i] = (int64_t)i;
		want[i] = (int64_t)(i * i);
	}
	map_is(c, "square", items, 10, NULL, want);
	/* negative numbers, -0 as written by the library is 0 */
	for (i = 0; i < 11; i++) {
		items[i] = (int64_t)i - 5;
		want[i] = items[i] * items[i];
	}
	map_is(c, "square", items, 11, NULL, want);
	map_is(c, "echo", items, 11, NULL, items);
	/* empty: NULL arrays are fine */
	CHECK(pool_map_int64(c, "square", NULL, 0, NULL, NULL, &e) == 0, "empty map: %s",
	      e.message);
	/* the bounds, both ways */
	items[0] = P53;
	items[1] = -P53;
	items[2] = P53 - 1;
	items[3] = 0;
	map_is(c, "echo", items, 4, NULL, items);
	items[0] = 94906265; /* its square is the largest below 2^53 */
	want[0] = 94906265LL * 94906265LL;
	map_is(c, "square", items, 1, NULL, want);
	/* options that apply: chunksize, retries, timeout */
	for (i = 0; i < 16; i++) {
		items[i] = (int64_t)i * 1000003 - 7000000;
		want[i] = items[i] * items[i];
	}
	o.chunksize = 3;
	o.retries = POOL_NONE;
	o.timeout_ms = 60000;
	map_is(c, "square", items, 16, &o, want);
	/* results may be the items */
	memcpy(want, items, sizeof(items));
	for (i = 0; i < 16; i++)
		want[i] *= want[i];
	CHECK(pool_map_int64(c, "square", items, 16, NULL, items, &e) == 0 &&
	          memcmp(items, want, sizeof(want)) == 0,
	      "results written over the items: %s", e.message);
	/* a million items: replies arrive in many reads; every digit count */
	big = xcalloc(n);
	bigwant = xcalloc(n);
	for (i = 0; i < n; i++) {
		big[i] = (int64_t)i;
		bigwant[i] = (int64_t)(i * i);
	}
	map_is(c, "square", big, n, NULL, bigwant);
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		big[i] = (int64_t)((x >> (11 + x % 53)) % (uint64_t)P53) * (x & 1 ? -1 : 1);
	}
	map_is(c, "echo", big, n, NULL, big);
	/* the latency mode's polling path */
	CHECK(pool_set_spin(c, 2000, &e) == 0, "spin: %s", e.message);
	map_is(c, "echo", big, n, NULL, big);
	map_is(c, "square", items, 0, NULL, want);
	CHECK(pool_set_spin(c, 0, &e) == 0, "spin off: %s", e.message);
	free(big);
	free(bigwant);
}

static void test_errors(pool_client *c)
{
	struct pool_map_opts o = POOL_MAP_OPTS_INIT;
	int64_t items[8] = {1, 2, 3, 94906267, 5, 6, 7, 8}, want[8];
	char *text = NULL;
	size_t i;
	struct pool_error e = {0};

	/* an item whose square passes 2^53 fails in the worker: that item fails the map */
	fails_with(__LINE__, c, "square", items, 8, NULL, POOL_EJOB, "out_of_range", 3, NULL);
	fails_with(__LINE__, c, "fail", items, 8, NULL, POOL_EJOB, "function_error", 0, "1");
	/* a float result (cbrt's 2.0 too) is not an integer */
	items[0] = 8;
	fails_with(__LINE__, c, "cbrt", items, 2, NULL, POOL_EJOB, "not_an_integer", 0,
	           "result 0 is not an integer within +-2^53: 2.0");
	items[0] = 1;
	fails_with(__LINE__, c, "getpid", items, 3, NULL, POOL_EJOB, "not_an_integer", 0, "{");
	/* items beyond 2^53: refused before anything is sent */
	items[5] = P53 + 1;
	fails_with(__LINE__, c, "echo", items, 8, NULL, POOL_EINVAL, "invalid", 5, "item 5");
	items[5] = -P53 - 1;
	fails_with(__LINE__, c, "echo", items, 8, NULL, POOL_EINVAL, "invalid", 5, "beyond");
	items[5] = INT64_MIN;
	fails_with(__LINE__, c, "echo", items, 8, NULL, POOL_EINVAL, "invalid", 5, NULL);
	items[5] = 6;
	/* refused calls */
	fails_with(__LINE__, c, "no_such_function", items, 8, NULL, POOL_EREQUEST,
	           "unknown_function", -1, NULL);
	o.collect = 1;
	fails_with(__LINE__, c, "square", items, 8, &o, POOL_EINVAL, "invalid", -1, "collect");
	o.collect = 0;
	o.star = 1;
	fails_with(__LINE__, c, "square", items, 8, &o, POOL_EINVAL, "invalid", -1, "star");
	o.star = 0;
	o.chunksize = 5000000;
	fails_with(__LINE__, c, "square", items, 8, &o, POOL_EREQUEST, "invalid_request", -1, NULL);
	CHECK(pool_map_int64(NULL, "square", items, 1, NULL, want, &e) == -POOL_EINVAL,
	      "NULL client");
	CHECK(pool_map_int64(c, "square", NULL, 1, NULL, want, &e) == -POOL_EINVAL, "NULL items");
	CHECK(pool_map_int64(c, "square", items, 1, NULL, NULL, &e) == -POOL_EINVAL,
	      "NULL results");
	CHECK(pool_map_int64(c, "square", items, 1, NULL, NULL, NULL) == -POOL_EINVAL, "NULL err");
	/* the client goes on working, with every kind of call */
	items[3] = 4;
	for (i = 0; i < 8; i++)
		want[i] = items[i] * items[i];
	map_is(c, "square", items, 8, NULL, want);
	CHECK(pool_map_text(c, "square", "[1,2]", 5, NULL, &text, NULL, &e) == 0 && text &&
	          strcmp(text, "[1,4]") == 0,
	      "text map after int64 maps: %s", e.message);
	free(text);
	map_is(c, "square", items, 8, NULL, want);
}

/* A map given up at its deadline leaves its reply (and its cancel's) to be skipped. */
static void test_stale(pool_client *c)
{
	int64_t items[2] = {400, 400}, want[2] = {400, 400};
	struct pool_error e = {0};
	int64_t got[2];

	CHECK(pool_set_deadline(c, 100, &e) == 0, "deadline: %s", e.message);
	CHECK(pool_map_int64(c, "sleep_ms", items, 2, NULL, got, &e) == -POOL_ETIMEDOUT,
	      "sleep past the deadline: %s %s", e.code_name, e.message);
	CHECK(pool_set_deadline(c, 0, &e) == 0, "no deadline: %s", e.message);
	items[0] = want[0] = 3;
	items[1] = want[1] = 5;
	map_is(c, "sleep_ms", items, 2, NULL, want);
	map_is(c, "echo", items, 2, NULL, want);
}

int main(int argc, char **argv)
{
	struct pool_error e = {0};
	pool_client *c;

	if (argc != 3) {
		fprintf(stderr, "usage: client_ints_test SOCKET map|errors|stale\n");
		return 2;
	}
	c = pool_connect(argv[1], &e);
	if (!c) {
		fprintf(stderr, "cannot connect to %s: %s\n", argv[1], e.message);
		return 1;
	}
	if (strcmp(argv[2], "map") == 0)
		test_map(c);
	else if (strcmp(argv[2], "errors") == 0)
		test_errors(c);
	else if (strcmp(argv[2], "stale") == 0)
		test_stale(c);
	else
		n_failed = 1;
	pool_close(c);
	fprintf(stderr, "client_ints_test: %d checks, %d failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
