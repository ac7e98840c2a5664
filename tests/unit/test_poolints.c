/*
 * test_poolints.c - libpoolclient's integer path (client/poolints.c): the request
 * writer, and the fast reader of replies checked against the general path on
 * crafted lines fed whole, a byte at a time and in random pieces. Built twice:
 * as is, and with POOLINTS_SCALAR (the byte loop only).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "poolclient.h"
#include "poolints.h"
#include "poolints_ref.h"

#define ID 7
#define MAXN 64

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

/* xorshift64: the same numbers every run. */
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

enum { WHOLE, BYTES, PIECES, RETIRE, BIG_PIECES, BIG_RETIRE };

/* The size of the next piece for each way of feeding (rnd() for the random ones). */
static size_t how_step(void *ctx, size_t left)
{
	int how = *(const int *)ctx;

	return how == WHOLE                     ? left
	       : how == BYTES                   ? 1
	       : how == PIECES || how == RETIRE ? 1 + rnd() % 40
	                                        : 1 + rnd() % 70000;
}

/*
 * Feed text (len bytes) to a reader for request ID with n results into out, as
 * the bytes would arrive in the given way; RETIRE and BIG_RETIRE drop the
 * results read after each piece, as libpoolclient does. The caller frees o.line.
 */
static struct poolints_outcome run(const char *text, size_t len, int64_t *out, size_t n, int how)
{
	return poolints_ref_run(text, len, ID, out, n, how_step, &how,
	                        how == RETIRE || how == BIG_RETIRE);
}

static const char *verdict_name(int v)
{
	return v == POOLINTS_DONE ? "DONE" : v == POOLINTS_SLOW ? "SLOW" : "MORE";
}

/*
 * Check one reply text (n results expected): fed whole, a byte at a time, in
 * pieces, and in pieces with the results read dropped, it gets the same
 * verdict; DONE takes exactly the first line and only where the general path
 * accepts that line with the same results; SLOW and MORE vouch for no newline
 * where they say; the general path on a line whose results were dropped says
 * what it says on the whole line. want: the verdict expected (-1: any); vals:
 * the results expected on DONE (NULL: not checked); ref: what the general
 * path must say on the first line (-1: not checked). Returns the verdict.
 */
static int expect_at(int line, const char *text, size_t len, size_t n, int want,
                     const int64_t *vals, int ref)
{
	static int64_t out[4][MAXN], refout[MAXN], dropout[MAXN];
	const char *nl = memchr(text, '\n', len);
	struct poolints_outcome o[4];
	int how, r;

	for (how = WHOLE; how <= RETIRE; how++) {
		memset(out[how], 0x55, sizeof(out[how]));
		o[how] = run(text, len, out[how], n, how);
	}
	check_count++;
	if (o[BYTES].verdict != o[WHOLE].verdict || o[PIECES].verdict != o[WHOLE].verdict ||
	    o[RETIRE].verdict != o[WHOLE].verdict || (want >= 0 && o[WHOLE].verdict != want)) {
		check_fail(__FILE__, line,
		           "verdicts %s (whole), %s (bytes), %s (pieces), %s (retiring), want %s",
		           verdict_name(o[WHOLE].verdict), verdict_name(o[BYTES].verdict),
		           verdict_name(o[PIECES].verdict), verdict_name(o[RETIRE].verdict),
		           want >= 0 ? verdict_name(want) : "any");
		check_print_bytes("line", text, len);
	}
	r = nl ? poolints_ref_read(text, (size_t)(nl - text), ID, refout, n, 0) : -1;
	if (ref >= 0 && r != ref) {
		check_fail(__FILE__, line, "the general path says %d, want %d", r, ref);
		check_print_bytes("line", text, len);
	}
	for (how = WHOLE; how <= RETIRE; how++) {
		const char *onl = memchr(o[how].line, '\n', o[how].len);

		memcpy(dropout, out[how], sizeof(dropout));
		if (poolints_ref_first_line(&o[how], ID, dropout, n) != r ||
		    (r == 1 && memcmp(dropout, refout, n * sizeof(int64_t)) != 0)) {
			check_fail(__FILE__, line,
			           "the general path differs after %zu results dropped",
			           o[how].base);
			check_print_bytes("line", text, len);
		}
		if (o[how].verdict == POOLINTS_DONE) {
			CHECK(onl && o[how].off == (size_t)(onl - o[how].line) + 1);
			if (r != 1) {
				check_fail(__FILE__, line,
				           "fast path took a line the general one did not");
				check_print_bytes("line", text, len);
			} else {
				CHECK(memcmp(out[how], refout, n * sizeof(int64_t)) == 0);
			}
			if (vals)
				CHECK(memcmp(out[how], vals, n * sizeof(int64_t)) == 0);
		} else {
			CHECK(o[how].off <= o[how].len && !memchr(o[how].line, '\n', o[how].off));
			if (o[how].verdict == POOLINTS_MORE)
				CHECK(!nl);
		}
		free(o[how].line);
	}
	return o[WHOLE].verdict;
}

#define EXPECT(text, n, want, ref)                                                                 \
	expect_at(__LINE__, (text), strlen(text), (n), (want), NULL, (ref))
#define EXPECT_VALS(text, n, ...)                                                                  \
	do {                                                                                       \
		static const int64_t vals_[] = {__VA_ARGS__};                                      \
		expect_at(__LINE__, (text), strlen(text), (n), POOLINTS_DONE, vals_, 1);           \
	} while (0)

/*
 * A line the fast reader must pass on whatever the count of results expected
 * (0 to 24, so that no miscounted element can pass for another); the general
 * path accepts it only with accept_n results (-1: never).
 */
static void expect_slow(int line, const char *text, int accept_n)
{
	int n;

	for (n = 0; n <= 24; n++)
		expect_at(line, text, strlen(text), (size_t)n, POOLINTS_SLOW, NULL,
		          n == accept_n ? 1 : 0);
}

#define SLOW(text, accept_n) expect_slow(__LINE__, (text), (accept_n))

#define HEAD "{\"id\":7,\"ok\":true,\"results\":"

static void test_shapes(void)
{
	EXPECT_VALS(HEAD "[1,4,9]}\n", 3, 1, 4, 9);
	EXPECT(HEAD "[]}\n", 0, POOLINTS_DONE, 1);
	EXPECT_VALS(HEAD "[-0,0,-1,10,-10]}\n", 5, 0, 0, -1, 10, -10);
	EXPECT_VALS(HEAD "[9007199254740992,-9007199254740992,9007199254740991]}\n", 3,
	            9007199254740992LL, -9007199254740992LL, 9007199254740991LL);
	/* the next line's bytes already there: only the first is taken */
	EXPECT_VALS(HEAD "[5]}\n{\"id\":8,\"ok\":true,\"results\":[6]}\n", 1, 5);
	/* beyond 2^53, 17 digits and more: the general path refuses them too */
	SLOW(HEAD "[9007199254740993]}\n", -1);
	SLOW(HEAD "[-9007199254740993]}\n", -1);
	SLOW(HEAD "[9999999999999999]}\n", -1);
	SLOW(HEAD "[10000000000000000]}\n", -1);
	SLOW(HEAD "[99999999999999999999999]}\n", -1);
	SLOW(HEAD "[1,2,9223372036854775808]}\n", -1);
	/* numbers that are not integer literals */
	SLOW(HEAD "[1e3]}\n", -1);
	SLOW(HEAD "[1E3]}\n", -1);
	SLOW(HEAD "[1.5]}\n", -1);
	SLOW(HEAD "[2.0]}\n", -1);
	SLOW(HEAD "[-0.0]}\n", -1);
	SLOW(HEAD "[123456789012.5]}\n", -1);
	/* not JSON: leading zeros, lone signs, stray commas */
	SLOW(HEAD "[01]}\n", -1);
	SLOW(HEAD "[-01]}\n", -1);
	SLOW(HEAD "[00000000000000000001]}\n", -1);
	SLOW(HEAD "[0123,1,2,3,4,5,6,7,8,9]}\n", -1);
	SLOW(HEAD "[-00,1,2,3,4,5,6,7,8,9]}\n", -1);
	SLOW(HEAD "[0123456789012345,1,2,3,4]}\n", -1);
	SLOW(HEAD "[1,-,2,3,4,5,6,7,8,9,10,11]}\n", -1);
	SLOW(HEAD "[1,2.5,3,4,5,6,7,8,9,10,11]}\n", -1);
	SLOW(HEAD "[1,25e1,3,4,5,6,7,8,9,10,11]}\n", -1);
	SLOW(HEAD "[1,123456789.5,3,4,5,6,7,8,9]}\n", -1);
	SLOW(HEAD "[-]}\n", -1);
	SLOW(HEAD "[--1]}\n", -1);
	SLOW(HEAD "[+1]}\n", -1);
	SLOW(HEAD "[1,]}\n", -1);
	SLOW(HEAD "[,1]}\n", -1);
	SLOW(HEAD "[1 2]}\n", -1);
	SLOW(HEAD "[1]]}\n", -1);
	SLOW(HEAD "[1]}}\n", -1);
	/* whitespace: valid, left to the general path */
	SLOW(HEAD "[1, 2]}\n", 2);
	SLOW(HEAD " [1]}\n", 1);
	SLOW(HEAD "[1] }\n", 1);
	SLOW(HEAD "[1]}\r\n", 1);
	SLOW("{\"id\":7, \"ok\":true,\"results\":[1]}\n", 1);
	/* strings (escapes too), nested values, other members */
	SLOW(HEAD "[\"1\"]}\n", -1);
	SLOW(HEAD "[\"a\\\"b\\u0041\"]}\n", -1);
	SLOW(HEAD "[[1]]}\n", -1);
	SLOW(HEAD "[{\"error\":{\"code\":\"x\"}}]}\n", -1);
	SLOW(HEAD "[1,null,true]}\n", -1);
	SLOW(HEAD "[1],\"failed\":[]}\n", 1);
	SLOW("{\"ok\":true,\"id\":7,\"results\":[1]}\n", 1);
	/* counts other than n */
	EXPECT(HEAD "[1,2]}\n", 3, POOLINTS_SLOW, 0);
	EXPECT(HEAD "[1,2,3,4]}\n", 3, POOLINTS_SLOW, 0);
	EXPECT(HEAD "[]}\n", 1, POOLINTS_SLOW, 0);
	EXPECT(HEAD "[1]}\n", 0, POOLINTS_SLOW, 0);
	/* other replies: another id, a prefix of ours, null, errors */
	SLOW("{\"id\":8,\"ok\":true,\"results\":[1]}\n", -1);
	SLOW("{\"id\":70,\"ok\":true,\"results\":[1]}\n", -1);
	SLOW("{\"id\":null,\"ok\":false,\"error\":{\"code\":\"parse_error\"}}\n", -1);
	SLOW("{\"id\":7,\"ok\":false,\"error\":{\"code\":\"function_error\",\"index\":3}}\n", -1);
	SLOW("{\"id\":7,\"ok\":true,\"result\":[1]}\n", -1);
	SLOW("\n", -1);
	/* truncated: more is needed, wherever it stops */
	EXPECT("{\"id\":7,\"ok\":tr", 1, POOLINTS_MORE, -1);
	EXPECT(HEAD "[", 1, POOLINTS_MORE, -1);
	EXPECT(HEAD "[1,4", 2, POOLINTS_MORE, -1);
	EXPECT(HEAD "[1,-", 2, POOLINTS_MORE, -1);
	EXPECT(HEAD "[1,4]", 2, POOLINTS_MORE, -1);
	EXPECT(HEAD "[1,4]}", 2, POOLINTS_MORE, -1);
	EXPECT(HEAD "[1,4]}x", 2, POOLINTS_SLOW, -1);
	EXPECT(HEAD "[1,4,123456789012345", 3, POOLINTS_MORE, -1);
	EXPECT(HEAD "[1,4,12345678901234567", 3, POOLINTS_SLOW, -1);
	EXPECT("", 1, POOLINTS_MORE, -1);
}

/* Append a random integer of len digits (negative when neg) to p; *v its value (INT64_MIN: beyond
 * 2^53). */
static char *random_int(char *p, int len, int neg, int64_t *v)
{
	uint64_t u = 0;
	int i;

	if (neg)
		*p++ = '-';
	for (i = 0; i < len; i++) {
		int d = i == 0 ? 1 + (int)(rnd() % 9) : (int)(rnd() % 10);

		if (len == 1 && rnd() % 4 == 0)
			d = 0;
		*p++ = (char)('0' + d);
		u = u * 10 + (uint64_t)d;
	}
	*v = u > (uint64_t)JSON_INT_MAX ? INT64_MIN : neg ? -(int64_t)u : (int64_t)u;
	return p;
}

/*
 * Every length of digits from 1 to 17, both signs, after 0 to 8 bytes of
 * earlier elements (each alignment of the eight-byte reads), last or followed
 * by more elements (the byte loop near the end, the eight-byte one elsewhere).
 */
static void test_digit_runs(void)
{
	char text[256];
	int len, neg, pre, last, rep;

	for (len = 1; len <= 17; len++)
		for (neg = 0; neg <= 1; neg++)
			for (pre = 0; pre <= 8; pre++)
				for (last = 0; last <= 1; last++)
					for (rep = 0; rep < 4; rep++) {
						int64_t vals[8], v;
						char *p = text + sprintf(text, HEAD "[");
						size_t n = 0;
						int k;

						for (k = 0; k < pre; k++)
							*p++ = k % 2 ? ',' : '5';
						if (pre % 2)
							*p++ = ',';
						for (k = 0; k < (pre + 1) / 2; k++)
							vals[n++] = 5;
						p = random_int(p, len, neg, &v);
						vals[n++] = v;
						if (!last) {
							p += sprintf(p, ",%d,-33", rep);
							vals[n++] = rep;
							vals[n++] = -33;
						}
						p += sprintf(p, "]}\n");
						if (v != INT64_MIN)
							expect_at(__LINE__, text,
							          (size_t)(p - text), n,
							          POOLINTS_DONE, vals, 1);
						else
							expect_at(__LINE__, text,
							          (size_t)(p - text), n,
							          POOLINTS_SLOW, NULL, 0);
					}
	/* every 16-digit value's edge: 2^53 and its neighbours */
	EXPECT_VALS(HEAD "[1000000000000000,9007199254740990,-1000000000000000]}\n", 3,
	            1000000000000000LL, 9007199254740990LL, -1000000000000000LL);
}

/* A million integers of every length, fed in pieces of up to 70,000 bytes. */
static void test_big(void)
{
	size_t n = 1000000, i, cap = n * 18 + 64, len;
	char *text = malloc(cap), *p;
	int64_t *want = malloc(n * sizeof(int64_t)), *got = malloc((n + 1) * sizeof(int64_t));
	struct poolints_outcome o;
	int how;

	if (!text || !want || !got)
		abort();
	p = text + sprintf(text, HEAD "[");
	for (i = 0; i < n; i++) {
		char *q;
		int64_t v;

		do /* another one when beyond 2^53 */
			q = random_int(p, 1 + (int)(rnd() % 16), (int)(rnd() % 2), &v);
		while (v == INT64_MIN);
		want[i] = v;
		p = q;
		*p++ = ',';
	}
	p[-1] = ']';
	p += sprintf(p, "}\n");
	len = (size_t)(p - text);
	for (how = BIG_PIECES; how <= BIG_RETIRE; how++) {
		memset(got, 0, n * sizeof(int64_t));
		o = run(text, len, got, n, how);
		CHECK_INT(o.verdict, POOLINTS_DONE);
		CHECK(o.off == o.len && o.line[o.off - 1] == '\n');
		CHECK(memcmp(got, want, n * sizeof(int64_t)) == 0);
		CHECK(how == BIG_PIECES ? o.len == len : o.len < 1000000);
		free(o.line);
		/* one result short, one too many: the general path still refuses */
		o = run(text, len, got, n - 1, how);
		CHECK_INT(o.verdict, POOLINTS_SLOW);
		CHECK(poolints_ref_first_line(&o, ID, got, n - 1) == 0);
		free(o.line);
		o = run(text, len, got, n + 1, how);
		CHECK_INT(o.verdict, POOLINTS_SLOW);
		CHECK(poolints_ref_first_line(&o, ID, got, n + 1) == 0);
		free(o.line);
	}
	/* the general path on the same line */
	memset(got, 0, n * sizeof(int64_t));
	CHECK(poolints_ref_read(text, len - 1, ID, got, n, 0) == 1);
	CHECK(memcmp(got, want, n * sizeof(int64_t)) == 0);
	free(text);
	free(want);
	free(got);
}

/*
 * 5,000 results with defect written before the one of index 4,000 (replacing
 * it when replace is set): the reader drops the results before it and passes
 * the line on; the general path then reads it from the right index: accept
 * (1: the values, with the defect's) or fails as it does on the whole line,
 * naming the same index (code: -POOL_EJOB or -POOL_EPROTO; at: the index or
 * count it names).
 */
static void late_defect(int line, const char *defect, int replace, int accept, int code, size_t at)
{
	static char text[64000];
	static int64_t got[5001];
	size_t n = 5000, i, idx = 0;
	struct json_span v, bad;
	const char *msg, *nl;
	char *p = text + sprintf(text, HEAD "[");
	struct poolints_outcome o;
	int r;

	for (i = 0; i < n; i++) {
		if (i == 4000)
			p += sprintf(p, "%s", defect);
		if (i != 4000 || !replace)
			p += sprintf(p, "%zu", i);
		*p++ = i + 1 < n ? ',' : ']';
	}
	p += sprintf(p, "}\n");
	o = run(text, (size_t)(p - text), got, n, RETIRE);
	check_count++;
	if (o.verdict != POOLINTS_SLOW || o.base < 3000)
		check_fail(__FILE__, line, "verdict %s with %zu results dropped",
		           verdict_name(o.verdict), o.base);
	nl = memchr(o.line, '\n', o.len);
	r = json_validate(o.line, nl, &v, &msg, &idx);
	if (r == 0 && !accept && code == -POOL_EPROTO && at == SIZE_MAX) {
		check_fail(__FILE__, line, "the line stayed valid JSON");
	} else if (r == 0) {
		struct json_iter it;
		struct json_span k, val;

		json_iter_init(&it, v);
		while (json_object_next(&it, &k, &val) && !json_string_eq(k, "results"))
			;
		r = poolints_results(val, got + o.base, n - o.base, &idx, &bad);
		if (accept) {
			CHECK(r == 0);
			for (i = 0; i < n && r == 0; i++)
				if (got[i] != (int64_t)i)
					break;
			CHECK_INT(i, n);
		} else {
			CHECK_INT(r, code);
			CHECK_INT(idx + o.base, at);
		}
	} else {
		CHECK(at == SIZE_MAX); /* not valid JSON: not valid on the whole line either */
	}
	CHECK_INT(poolints_ref_read(text, (size_t)(strchr(text, '\n') - text), ID, got, n, 0),
	          accept);
	free(o.line);
}

static void test_late_defects(void)
{
	late_defect(__LINE__, " ", 0, 1, 0, 0);
	late_defect(__LINE__, "\t\r ", 0, 1, 0, 0);
	late_defect(__LINE__, "2.5", 1, 0, -POOL_EJOB, 4000);
	late_defect(__LINE__, "1e3", 1, 0, -POOL_EJOB, 4000);
	late_defect(__LINE__, "9007199254740993", 1, 0, -POOL_EJOB, 4000);
	late_defect(__LINE__, "\"x\"", 1, 0, -POOL_EJOB, 4000);
	late_defect(__LINE__, "[1]", 1, 0, -POOL_EJOB, 4000);
	late_defect(__LINE__, "1,", 0, 0, -POOL_EPROTO, 5001);     /* one result too many */
	late_defect(__LINE__, "]", 0, 0, -POOL_EPROTO, SIZE_MAX);  /* "[..,]": not JSON */
	late_defect(__LINE__, " ]", 0, 0, -POOL_EPROTO, SIZE_MAX); /* "[.., ]": not JSON */
	late_defect(__LINE__, ",", 0, 0, -POOL_EPROTO, SIZE_MAX);  /* "[..,,": not JSON */
	late_defect(__LINE__, "01", 1, 0, -POOL_EPROTO, SIZE_MAX); /* a leading zero */
}

/* The request writer: the same text as printf, in parts too; the items checked against +-2^53. */
static void test_add_items(void)
{
	static const int64_t items[] = {0,  -1, 1,    9007199254740992LL, -9007199254740992LL,
	                                10, 99, -100, 123456789012345LL,  100000000};
	static const int64_t beyond[] = {9007199254740993LL, -9007199254740993LL, INT64_MIN,
	                                 INT64_MAX, INT64_MIN + 1};
	size_t n = sizeof(items) / sizeof(items[0]), i, cut;
	int64_t many[5000];
	struct buf b = {0};
	char want[512], *p = want;

	CHECK(poolints_add_items(&b, items, 0, 0) == 0 && b.len == 0);
	p += sprintf(p, "head:[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s%" PRId64, i ? "," : "", items[i]);
	sprintf(p, "]");
	for (cut = 0; cut <= n; cut++) {
		buf_reset(&b);
		CHECK(buf_adds(&b, "head:[") == 0);
		CHECK(poolints_add_items(&b, items, 0, cut) == 0);
		CHECK(poolints_add_items(&b, items, cut, n) == 0);
		CHECK(buf_addc(&b, ']') == 0);
		CHECK_STR(b.data, want);
		CHECK_INT(b.len, strlen(want));
	}
	CHECK_INT(poolints_check_range(items, n), n);
	CHECK_INT(poolints_check_range(NULL, 0), 0);
	for (i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++) {
		size_t at;

		for (at = 0; at < 5000; at++)
			many[at] = (int64_t)at * 1800000000000LL - 4500000000000000LL;
		CHECK_INT(poolints_check_range(many, 5000), 5000);
		for (at = 0; at < 5000; at += 1237) {
			int64_t keep = many[at];

			many[at] = beyond[i];
			CHECK_INT(poolints_check_range(many, 5000), at);
			many[4999] = beyond[i];
			CHECK_INT(poolints_check_range(many, 5000), at);
			many[at] = keep;
		}
	}
	buf_free(&b);
}

/* Many blocks of items, each checked back through the general path. */
static void test_add_items_big(void)
{
	size_t n = 10000, i, idx;
	int64_t *items = malloc(n * sizeof(int64_t)), *back = malloc(n * sizeof(int64_t));
	struct json_span v, bad;
	struct buf b = {0};
	const char *msg;

	if (!items || !back)
		abort();
	for (i = 0; i < n; i++)
		items[i] = (int64_t)(rnd() % (2 * (uint64_t)JSON_INT_MAX + 1)) - JSON_INT_MAX;
	CHECK_INT(poolints_check_range(items, n), n);
	CHECK(buf_addc(&b, '[') == 0 && poolints_add_items(&b, items, 0, 4321) == 0 &&
	      poolints_add_items(&b, items, 4321, n) == 0 && buf_addc(&b, ']') == 0);
	CHECK(json_validate(b.data, b.data + b.len, &v, &msg, &idx) == 0);
	CHECK(poolints_results(v, back, n, &idx, &bad) == 0);
	CHECK(memcmp(items, back, n * sizeof(int64_t)) == 0);
	free(items);
	free(back);
	buf_free(&b);
}

/* The general reader of a validated results array: counts, then each element. */
static void test_results(void)
{
	int64_t out[4];
	struct json_span bad = {0};
	size_t idx = 99;
	struct json_span a = {"[1,2.5,\"x\"]", 11};

	CHECK(poolints_results(a, out, 2, &idx, &bad) == -POOL_EPROTO && idx == 3);
	CHECK(poolints_results(a, out, 3, &idx, &bad) == -POOL_EJOB && idx == 1);
	CHECK_MEM(bad.p, bad.len, "2.5");
	CHECK(out[0] == 1);
	a.p = "[ -0 , 9007199254740992 ]";
	a.len = strlen(a.p);
	CHECK(poolints_results(a, out, 2, &idx, &bad) == 0 && out[0] == 0 &&
	      out[1] == 9007199254740992LL);
	a.p = "[]";
	a.len = 2;
	CHECK(poolints_results(a, NULL, 0, &idx, &bad) == 0);
}

int main(void)
{
	test_shapes();
	test_digit_runs();
	test_big();
	test_late_defects();
	test_add_items();
	test_add_items_big();
	test_results();
	return check_exit("test_poolints");
}
