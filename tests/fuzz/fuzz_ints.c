/*
 * fuzz_ints.c - libFuzzer target: libpoolclient's integer path (client/poolints.c).
 * Input: byte 0 = the count of results expected (mod 24), byte 1 = how the
 * line is cut into reads, the rest = the bytes of a reply line as received.
 * The fast reader must give one verdict however the bytes are cut, and
 * whether it drops the results read as it goes (poolints_retire()); take only
 * a line the general path (json_validate + poolints_results) accepts, with
 * the same results; and leave a line on which the general path says what it
 * says on the whole one. The same bytes, read as int64 items, go through the
 * range check and the request writer (in two parts) and back through the
 * general path.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "poolints.h"
#include "poolints_ref.h"

#define ID 7
#define MAXN 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
static void die(const char *what)
{
	fprintf(stderr, "fuzz_ints: invariant broken: %s\n", what);
	abort();
}

/* Steps of a read that grow by cut-dependent amounts (cut 0: all at once). */
struct cut_steps {
	unsigned cut;
	uint32_t seed;
};

static size_t cut_step(void *ctx, size_t left)
{
	struct cut_steps *c = ctx;

	if (!c->cut)
		return left;
	c->seed = c->seed * 1103515245u + 12345u;
	return 1 + (c->seed >> 16) % (c->cut % 64 + 1);
}

/* poolints_ref_run with the steps of cut; with retire, results dropped as read. */
static struct poolints_outcome run(const char *text, size_t len, int64_t *out, size_t n,
                                   unsigned cut, int retire)
{
	struct cut_steps c = {cut, cut * 2654435761u + 1};
	struct poolints_outcome o = poolints_ref_run(text, len, ID, out, n, cut_step, &c, retire);

	if (o.verdict != POOLINTS_MORE && o.verdict != POOLINTS_DONE && o.verdict != POOLINTS_SLOW)
		die("unknown verdict");
	return o;
}

/* The reader against the general path on one reply line. */
static void check_reader(const char *text, size_t len, size_t n, unsigned cut)
{
	int64_t out[3][MAXN], ref[MAXN], again[MAXN];
	struct poolints_outcome o[3];
	int i, r;

	o[0] = run(text, len, out[0], n, 0, 0);
	o[1] = run(text, len, out[1], n, cut, 0);
	o[2] = run(text, len, out[2], n, cut, 1);
	r = poolints_ref_first_line(&o[0], ID, ref, n);
	for (i = 0; i < 3; i++) {
		const char *nl = memchr(o[i].line, '\n', o[i].len);

		if (o[i].verdict != o[0].verdict)
			die("the verdict depends on how the bytes arrive");
		memcpy(again, out[i], sizeof(again));
		if (poolints_ref_first_line(&o[i], ID, again, n) != r ||
		    (r == 1 && memcmp(again, ref, n * sizeof(int64_t)) != 0))
			die("the general path differs once results were dropped");
		if (o[i].verdict == POOLINTS_DONE) {
			if (!nl || o[i].off != (size_t)(nl - o[i].line) + 1)
				die("DONE does not end at the first newline");
			if (r != 1)
				die("the fast reader took a line the general path refuses");
			if (memcmp(out[i], ref, n * sizeof(int64_t)) != 0)
				die("the fast reader's results differ from the general path's");
		} else {
			if (o[i].off > o[i].len || memchr(o[i].line, '\n', o[i].off))
				die("a newline before the offset the reader vouches for");
			if (o[i].verdict == POOLINTS_MORE && nl)
				die("MORE although the line is complete");
		}
		free(o[i].line);
	}
}

/* The request writer: its text is valid and reads back as the items, in any parts. */
static void check_writer(const uint8_t *data, size_t size)
{
	size_t n = size / 8, i, first_bad = n, idx, cut;
	int64_t *items = malloc(n * 8 + 8), *back = malloc(n * 8 + 8);
	struct json_span v, e;
	struct buf b = {0};
	const char *msg;

	if (!items || !back)
		abort();
	memcpy(items, data, n * 8);
	for (i = 0; i < n; i++) {
		items[i] >>= (unsigned)(items[i] & 63); /* every magnitude */
		if (first_bad == n && (items[i] > JSON_INT_MAX || items[i] < -JSON_INT_MAX))
			first_bad = i;
	}
	if (poolints_check_range(items, n) != first_bad)
		die("the first item beyond 2^53 is not the one named");
	if (first_bad == n) {
		cut = n ? data[0] % (n + 1) : 0;
		if (buf_addc(&b, '[') < 0 || poolints_add_items(&b, items, 0, cut) < 0 ||
		    poolints_add_items(&b, items, cut, n) < 0 || buf_addc(&b, ']') < 0)
			abort();
		if (json_validate(b.data, b.data + b.len, &v, &msg, &idx) != 0 || v.len != b.len ||
		    poolints_results(v, back, n, &idx, &e) != 0 || memcmp(items, back, n * 8) != 0)
			die("the request text does not read back as the items");
	}
	buf_free(&b);
	free(items);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	check_reader((const char *)data + 2, size - 2, data[0] % MAXN, data[1]);
	check_writer(data + 2, size - 2);
	return 0;
}
