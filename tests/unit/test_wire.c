/* test_wire.c - unit tests for supervisor <-> worker messages (proto/wire.c) */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Little-endian u32 list of the given indices, in out (4 * n bytes). */
static void put_indices(unsigned char *out, const uint32_t *idx, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[4 * i] = (unsigned char)idx[i];
		out[4 * i + 1] = (unsigned char)(idx[i] >> 8);
		out[4 * i + 2] = (unsigned char)(idx[i] >> 16);
		out[4 * i + 3] = (unsigned char)(idx[i] >> 24);
	}
}

/* Store v little-endian at p. */
static void set32(unsigned char *p, uint32_t v)
{
	put_indices(p, &v, 1);
}

/* Check that the decoded d carries every field of m. */
static void expect_same(const char *file, int line, const struct wire_msg *m,
                        const struct wire_msg *d)
{
	uint32_t i;

	check_count++;
	if (d->type != m->type || d->flags != m->flags || d->slot != m->slot || d->gen != m->gen ||
	    d->pid != m->pid || d->count != m->count || d->first_error != m->first_error ||
	    d->task_id != m->task_id || d->attempt != m->attempt || d->fn_len != m->fn_len ||
	    d->timeout_ms != m->timeout_ms || d->budget_ms != m->budget_ms ||
	    d->n_errors != m->n_errors || d->payload_len != m->payload_len) {
		check_fail(file, line, "header fields differ after a round trip (type %u)",
		           m->type);
		return;
	}
	if ((m->fn_len && memcmp(d->fn, m->fn, m->fn_len) != 0) ||
	    (m->payload_len && memcmp(d->payload, m->payload, m->payload_len) != 0))
		check_fail(file, line, "fn or payload differ after a round trip");
	for (i = 0; i < m->n_errors; i++)
		if (wire_error_at(d, i) != wire_error_at(m, i))
			check_fail(file, line, "error %u differs", i);
}

/* Encode and decode every message type, with and without fn, errors and payload. */
static void test_round_trips(void)
{
	static const uint32_t idx[] = {0, 3, 7, 65536, 4000000000u};
	unsigned char errs[sizeof(idx)];
	struct buf b = {0}, h = {0};
	struct wire_msg m, d;
	const char *payload = "[1,\"two\",{\"3\":[4]}]";
	uint16_t t;

	put_indices(errs, idx, 5);
	for (t = WIRE_TASK; t <= WIRE_LOST; t++) {
		memset(&m, 0, sizeof(m));
		m.type = t;
		m.timeout_ms = t == WIRE_TASK ? 86400000u : 0;
		m.budget_ms = t == WIRE_TASK ? 0xfffffff0u : 0;
		m.flags = (uint16_t)(t == WIRE_TASK ? WIRE_STAR | WIRE_FAIL_FAST | WIRE_APPLY : 0);
		m.slot = 3 + t;
		m.gen = 0xfffffffeu;
		m.pid = 123456;
		m.count = t == WIRE_RESULT ? 4000000001u : 3;
		m.first_error = t == WIRE_RESULT ? 3 : WIRE_NO_ERROR;
		m.task_id = 0x0123456789abcdefULL;
		m.attempt = t == WIRE_TASK ? 0xfedcba98u : 0;
		m.fn = t == WIRE_TASK ? "square" : NULL;
		m.fn_len = t == WIRE_TASK ? 6 : 0;
		m.n_errors = t == WIRE_RESULT ? 5 : 0;
		m.errors = t == WIRE_RESULT ? errs : NULL;
		m.payload = t == WIRE_TASK || t == WIRE_RESULT ? payload : NULL;
		m.payload_len = m.payload ? strlen(payload) : 0;

		CHECK(wire_encode(&b, &m) == 0);
		CHECK_INT(b.len, WIRE_HDR_SIZE + m.fn_len + 4 * m.n_errors + m.payload_len);
		CHECK(memcmp(b.data, "POP1", 4) == 0);
		CHECK_INT((unsigned char)b.data[4], t);
		CHECK_INT((unsigned char)b.data[40], m.fn_len);
		CHECK(b.data[42] == 0 && b.data[43] == 0); /* reserved */
		CHECK_INT((unsigned char)b.data[44], m.attempt & 0xff);
		CHECK_INT((unsigned char)b.data[60], m.budget_ms & 0xff);
		CHECK(wire_decode(b.data, b.len, &d) == 0);
		expect_same(__FILE__, __LINE__, &m, &d);
		/* the pointers refer into the buffer */
		CHECK(d.fn == b.data + WIRE_HDR_SIZE);
		CHECK(d.payload == b.data + b.len - m.payload_len);
		/* encode resets: a second encode gives the same bytes */
		{
			size_t len = b.len;
			char *copy = malloc(len);

			memcpy(copy, b.data, len);
			CHECK(wire_encode(&b, &m) == 0);
			CHECK(b.len == len && memcmp(copy, b.data, len) == 0);
			/* head + payload appended by hand is the same message */
			CHECK(wire_encode_head(&h, &m) == 0);
			CHECK_INT(h.len, len - m.payload_len);
			buf_add(&h, m.payload, m.payload_len);
			CHECK(h.len == len && memcmp(copy, h.data, len) == 0);
			free(copy);
		}
	}
	/* a zeroed message of each type */
	for (t = WIRE_TASK; t <= WIRE_LOST; t++) {
		memset(&m, 0, sizeof(m));
		m.type = t;
		m.first_error = WIRE_NO_ERROR;
		CHECK(wire_encode(&b, &m) == 0);
		CHECK_INT(b.len, WIRE_HDR_SIZE);
		CHECK(wire_decode(b.data, b.len, &d) == 0);
		expect_same(__FILE__, __LINE__, &m, &d);
	}
	/* the largest fn length the header can carry, and a big payload */
	{
		size_t n = 65535, pl = 1 << 20;
		char *fn = malloc(n), *p = malloc(pl);

		memset(fn, 'f', n);
		memset(p, '1', pl);
		memset(&m, 0, sizeof(m));
		m.type = WIRE_TASK;
		m.first_error = WIRE_NO_ERROR;
		m.fn = fn;
		m.fn_len = n;
		m.payload = p;
		m.payload_len = pl;
		CHECK(wire_encode(&b, &m) == 0);
		CHECK(wire_decode(b.data, b.len, &d) == 0);
		expect_same(__FILE__, __LINE__, &m, &d);
		free(fn);
		free(p);
	}
	/* decoding from an unaligned address */
	{
		char *u;

		memset(&m, 0, sizeof(m));
		m.type = WIRE_RESULT;
		m.count = 4000000001u;
		m.first_error = 0;
		m.n_errors = 5;
		m.errors = errs;
		m.task_id = 77;
		CHECK(wire_encode(&b, &m) == 0);
		u = malloc(b.len + 1);
		memcpy(u + 1, b.data, b.len);
		CHECK(wire_decode(u + 1, b.len, &d) == 0);
		expect_same(__FILE__, __LINE__, &m, &d);
		CHECK(wire_error_at(&d, 4) == 4000000000u);
		free(u);
	}
	buf_free(&b);
	buf_free(&h);
}

/* A result with fn, 3 errors and a payload, encoded into b. */
static void make_result(struct buf *b, struct wire_msg *m, unsigned char *errs)
{
	static const uint32_t idx[] = {1, 2, 4};

	put_indices(errs, idx, 3);
	memset(m, 0, sizeof(*m));
	m->type = WIRE_RESULT;
	m->count = 5;
	m->first_error = 1;
	m->task_id = 42;
	m->fn = "fn";
	m->fn_len = 2;
	m->n_errors = 3;
	m->errors = errs;
	m->payload = "1,{},{},4,{}";
	m->payload_len = strlen(m->payload);
	wire_encode(b, m);
}

/* Every truncation of a result message. */
static void test_truncated(void)
{
	unsigned char errs[12];
	struct buf b = {0};
	struct wire_msg m, d;
	size_t need = WIRE_HDR_SIZE + 2 + 12, len;

	make_result(&b, &m, errs);
	for (len = 0; len <= b.len; len++) {
		char *copy = malloc(len ? len : 1); /* exact size, so ASan sees over-reads */
		int r;

		memcpy(copy, b.data, len);
		r = wire_decode(copy, len, &d);
		if (len < need) {
			CHECK_INT(r, -EBADMSG);
		} else {
			/* the payload has no length of its own: a cut payload is just shorter */
			CHECK_INT(r, 0);
			CHECK_INT(d.payload_len, len - need);
		}
		free(copy);
	}
	CHECK_INT(wire_decode("", 0, &d), -EBADMSG);
	buf_free(&b);
}

/* Decode b after patching the u32 at off to v; returns wire_decode's result. */
static int decode_patched32(const struct buf *b, size_t off, uint32_t v)
{
	unsigned char *copy = malloc(b->len);
	struct wire_msg d;
	int r;

	memcpy(copy, b->data, b->len);
	set32(copy + off, v);
	r = wire_decode(copy, b->len, &d);
	free(copy);
	return r;
}

/* Bad magic, type, n_errors, first_error and fn_len. */
static void test_bad_headers(void)
{
	unsigned char errs[12];
	struct buf b = {0};
	struct wire_msg m, d;
	size_t i;

	make_result(&b, &m, errs);
	CHECK(wire_decode(b.data, b.len, &d) == 0);
	/* bad magic: any changed byte */
	for (i = 0; i < 4; i++) {
		b.data[i] ^= 0x20;
		CHECK_INT(wire_decode(b.data, b.len, &d), -EBADMSG);
		b.data[i] ^= 0x20;
	}
	CHECK_INT(decode_patched32(&b, 0, 0x31504f51u), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 0, 0x504f5031u), -EBADMSG); /* big-endian "POP1" */
	/* type out of range (type and flags share the u32 at offset 4) */
	CHECK_INT(decode_patched32(&b, 4, 0), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 4, WIRE_LOST + 1), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 4, 0xffff), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 4, 0x00010005), 0); /* flags do not matter */
	/* n_errors (offset 28) beyond count or beyond the message */
	CHECK_INT(decode_patched32(&b, 28, 6), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 28, 7), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 28, 0xffffffffu), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 28, 0x40000000u), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 28, 0), 0);
	/* 4 or 5 indices fit, but the extra ones are payload bytes, not item indices */
	CHECK_INT(decode_patched32(&b, 28, 4), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 28, 5), -EBADMSG);
	{
		/* a huge count does not let n_errors run past the data */
		unsigned char *copy = malloc(b.len);

		memcpy(copy, b.data, b.len);
		set32(copy + 20, 0xffffffffu);
		set32(copy + 28, 0x40000001u);
		CHECK_INT(wire_decode(copy, b.len, &d), -EBADMSG);
		set32(copy + 28, (uint32_t)((b.len - WIRE_HDR_SIZE) / 4 + 1));
		CHECK_INT(wire_decode(copy, b.len, &d), -EBADMSG);
		/* 6 errors would fill the 26 bytes after the header, but read garbage */
		set32(copy + 28, 6);
		CHECK_INT(wire_decode(copy, b.len, &d), -EBADMSG);
		copy[40] = 3;
		CHECK_INT(wire_decode(copy, b.len, &d), -EBADMSG);
		free(copy);
	}
	/* first_error (offset 24) must be an item of the message or WIRE_NO_ERROR */
	CHECK_INT(decode_patched32(&b, 24, 5), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 24, 6), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 24, 0xfffffffeu), -EBADMSG);
	CHECK_INT(decode_patched32(&b, 24, 4), 0);
	CHECK_INT(decode_patched32(&b, 24, 0), 0);
	CHECK_INT(decode_patched32(&b, 24, WIRE_NO_ERROR), 0);
	/* error indices (after fn "fn", at 58) must rise and stay below count */
	CHECK_INT(decode_patched32(&b, WIRE_HDR_SIZE + 2, 5), -EBADMSG);
	CHECK_INT(decode_patched32(&b, WIRE_HDR_SIZE + 2, 0xffffffffu), -EBADMSG);
	CHECK_INT(decode_patched32(&b, WIRE_HDR_SIZE + 2, 2), -EBADMSG);
	CHECK_INT(decode_patched32(&b, WIRE_HDR_SIZE + 6, 1), -EBADMSG);
	CHECK_INT(decode_patched32(&b, WIRE_HDR_SIZE + 10, 2), -EBADMSG);
	CHECK_INT(decode_patched32(&b, WIRE_HDR_SIZE + 2, 0), 0);
	CHECK_INT(decode_patched32(&b, WIRE_HDR_SIZE + 10, 3), 0);
	/* fn_len (offset 40, u16) past the end */
	{
		unsigned char *copy = malloc(b.len);

		memcpy(copy, b.data, b.len);
		copy[40] = 0xff;
		copy[41] = 0xff;
		CHECK_INT(wire_decode(copy, b.len, &d), -EBADMSG);
		copy[40] = (unsigned char)(b.len - WIRE_HDR_SIZE - 12 + 1);
		copy[41] = 0;
		CHECK_INT(wire_decode(copy, b.len, &d), -EBADMSG);
		/* without errors, fn may take every byte after the header */
		set32(copy + 28, 0);
		copy[40] = (unsigned char)(b.len - WIRE_HDR_SIZE + 1);
		CHECK_INT(wire_decode(copy, b.len, &d), -EBADMSG);
		copy[40] = (unsigned char)(b.len - WIRE_HDR_SIZE);
		CHECK_INT(wire_decode(copy, b.len, &d), 0);
		CHECK_INT(d.payload_len, 0);
		free(copy);
	}
	/* count 0 with a first error is inconsistent */
	memset(&m, 0, sizeof(m));
	m.type = WIRE_RESULT;
	m.first_error = 0;
	wire_encode(&b, &m);
	CHECK_INT(wire_decode(b.data, b.len, &d), -EBADMSG);
	buf_free(&b);
}

/* Reading back a long list of error indices. */
static void test_error_walk(void)
{
	uint32_t idx[100];
	unsigned char errs[400];
	struct buf b = {0};
	struct wire_msg m, d;
	uint32_t i;

	for (i = 0; i < 100; i++)
		idx[i] = i * 3 + 1;
	put_indices(errs, idx, 100);
	memset(&m, 0, sizeof(m));
	m.type = WIRE_RESULT;
	m.count = 300;
	m.first_error = 1;
	m.n_errors = 100;
	m.errors = errs;
	m.payload = "x";
	m.payload_len = 1;
	CHECK(wire_encode(&b, &m) == 0);
	CHECK(wire_decode(b.data, b.len, &d) == 0);
	CHECK_INT(d.n_errors, 100);
	for (i = 0; i < 100; i++)
		CHECK_INT(wire_error_at(&d, i), i * 3 + 1);
	CHECK_MEM(d.payload, d.payload_len, "x");
	buf_free(&b);
}

/* Run every test; non-zero exit on any failure. */
int main(void)
{
	test_round_trips();
	test_truncated();
	test_bad_headers();
	test_error_walk();
	return check_exit("test_wire");
}
