/*
 * fuzz_ints.c - libFuzzer target: libpoolclient's integer path (client/poolints.c).
 * Input: byte 0 = the count of results expected (mod 24), byte 1 = how the
 * line is cut into reads, the rest = the bytes of a reply line as received.
 * The fast reader must give one verdict however the bytes are cut, and take
 * only a line the general path (json_validate + poolints_results) accepts,
 * with the same results. The same bytes, read as int64 items, go through the
 * request writer and back through the general path.
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

struct outcome {
	int verdict;
	size_t off;
};

/*
 * Feed text to a fresh reader, avail growing by cut-dependent steps (0: all at
 * once). Short texts are fed from exact-size copies, so that a read past the
 * bytes received is caught by AddressSanitizer.
 */
static struct outcome run(const char *text, size_t len, int64_t *out, size_t n, unsigned cut)
{
	struct poolints_reader r;
	struct outcome o = {POOLINTS_MORE, 0};
	uint32_t seed = cut * 2654435761u + 1;
	size_t avail = 0;

	poolints_init(&r, ID, out, n);
	while (o.verdict == POOLINTS_MORE && avail < len) {
		size_t step = len;

		if (cut) {
			seed = seed * 1103515245u + 12345u;
			step = 1 + (seed >> 16) % (cut % 64 + 1);
		}
		avail = len - avail < step ? len : avail + step;
		if (len <= 4096) {
			char *copy = malloc(avail);

			if (!copy)
				abort();
			memcpy(copy, text, avail);
			o.verdict = poolints_feed(&r, copy, avail);
			free(copy);
		} else {
			o.verdict = poolints_feed(&r, text, avail);
		}
	}
	if (o.verdict != POOLINTS_MORE && o.verdict != POOLINTS_DONE && o.verdict != POOLINTS_SLOW)
		die("unknown verdict");
	o.off = r.off;
	return o;
}

/* The reader against the general path on one reply line. */
static void check_reader(const char *text, size_t len, size_t n, unsigned cut)
{
	int64_t a[MAXN], b[MAXN], ref[MAXN];
	const char *nl = memchr(text, '\n', len);
	struct outcome whole = run(text, len, a, n, 0), cuts = run(text, len, b, n, cut);

	if (whole.verdict != cuts.verdict)
		die("the verdict depends on how the bytes arrive");
	if (whole.verdict == POOLINTS_DONE) {
		if (!nl || whole.off != (size_t)(nl - text) + 1 || cuts.off != whole.off)
			die("DONE does not end at the first newline");
		if (memcmp(a, b, n * sizeof(int64_t)) != 0)
			die("the results depend on how the bytes arrive");
		if (poolints_ref_read(text, (size_t)(nl - text), ID, ref, n) != 1)
			die("the fast reader took a line the general path refuses");
		if (memcmp(a, ref, n * sizeof(int64_t)) != 0)
			die("the fast reader's results differ from the general path's");
		return;
	}
	if (whole.off > len || memchr(text, '\n', whole.off) || cuts.off > len ||
	    memchr(text, '\n', cuts.off))
		die("a newline before the offset the reader vouches for");
	if (whole.verdict == POOLINTS_MORE && nl)
		die("MORE although the line is complete");
}

/* The request writer: its text is valid and reads back as the items. */
static void check_writer(const uint8_t *data, size_t size)
{
	size_t n = size / 8, i, bad = SIZE_MAX, first_bad = SIZE_MAX, idx;
	int64_t *items = malloc(n * 8 + 8), *back = malloc(n * 8 + 8);
	struct json_span v, e;
	struct buf b = {0};
	const char *msg;
	int r;

	if (!items || !back)
		abort();
	memcpy(items, data, n * 8);
	for (i = 0; i < n; i++) {
		items[i] >>= (unsigned)(items[i] & 63); /* every magnitude */
		if (first_bad == SIZE_MAX && (items[i] > JSON_INT_MAX || items[i] < -JSON_INT_MAX))
			first_bad = i;
	}
	r = poolints_add_array(&b, items, n, &bad);
	if (first_bad != SIZE_MAX) {
		if (r != -ERANGE || bad != first_bad)
			die("an item beyond 2^53 not refused, or the wrong one named");
	} else {
		if (r != 0 || json_validate(b.data, b.data + b.len, &v, &msg, &idx) != 0 ||
		    v.len != b.len || poolints_results(v, back, n, &idx, &e) != 0 ||
		    memcmp(items, back, n * 8) != 0)
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
