/* fuzz_wire.c - libFuzzer target: wire_decode on arbitrary bytes, then a re-encode */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
static void die(const char *what)
{
	fprintf(stderr, "fuzz_wire: invariant broken: %s\n", what);
	abort();
}

/* 1 when [p, p+n) lies inside [base, base+size). */
static int inside(const void *p, size_t n, const uint8_t *base, size_t size)
{
	const uint8_t *q = p;

	return n == 0 || (q >= base && n <= size && q + n <= base + size);
}

/* Sum of every error index, payload byte and fn byte of a decoded message. */
static uint32_t walk(const struct wire_msg *m)
{
	uint32_t i, sum = 0;
	size_t k;

	for (i = 0; i < m->n_errors; i++)
		sum += wire_error_at(m, i);
	for (k = 0; k < m->payload_len; k++)
		sum += (unsigned char)m->payload[k];
	for (k = 0; k < m->fn_len; k++)
		sum += (unsigned char)m->fn[k];
	return sum;
}

/* libFuzzer entry: decode, walk, re-encode and compare. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_msg m, d;
	struct buf b = {0};
	uint32_t sum;
	int r = wire_decode(data, size, &m);

	if (r != 0) {
		if (r != -EBADMSG)
			die("error code");
		return 0;
	}
	if (m.type < WIRE_TASK || m.type > WIRE_LOST || m.n_errors > m.count ||
	    (m.first_error != WIRE_NO_ERROR && m.first_error >= m.count))
		die("header fields");
	if (!inside(m.fn, m.fn_len, data, size) ||
	    !inside(m.errors, (size_t)m.n_errors * 4, data, size) ||
	    !inside(m.payload, m.payload_len, data, size) ||
	    WIRE_HDR_SIZE + m.fn_len + (size_t)m.n_errors * 4 + m.payload_len != size)
		die("sections");
	/* walk every error index, payload byte and fn byte (ASan checks each read) */
	sum = walk(&m);
	/* re-encoding gives the same bytes, except the reserved header bytes 42..43 (zero) */
	if (wire_encode(&b, &m) != 0)
		die("wire_encode");
	if (b.len != size || memcmp(b.data, data, 42) != 0 ||
	    memcmp(b.data + 44, data + 44, size - 44) != 0)
		die("re-encoded message differs");
	if (wire_decode(b.data, b.len, &d) != 0 || d.type != m.type || d.flags != m.flags ||
	    d.slot != m.slot || d.gen != m.gen || d.pid != m.pid || d.count != m.count ||
	    d.first_error != m.first_error || d.n_errors != m.n_errors || d.task_id != m.task_id ||
	    d.attempt != m.attempt || d.busy_ns != m.busy_ns || d.timeout_ms != m.timeout_ms ||
	    d.budget_ms != m.budget_ms || d.fn_len != m.fn_len || d.payload_len != m.payload_len)
		die("decode after re-encode");
	if (walk(&d) != sum)
		die("contents differ after re-encode");
	buf_free(&b);
	return 0;
}
