/* wire.c - messages between the supervisor and its workers */
#include "wire.h"

#include <errno.h>
#include <string.h>

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/*
 * Header layout (64 bytes): magic 0, type 4, flags 6, slot 8, gen 12, pid 16,
 * count 20, first_error 24, n_errors 28, task_id 32, fn_len 40, reserved 42,
 * attempt 44, busy_ns 48, timeout_ms 56, budget_ms 60.
 */
int wire_encode_head(struct buf *b, const struct wire_msg *m)
{
	unsigned char h[WIRE_HDR_SIZE] = {0};

	buf_reset(b);
	put32(h, WIRE_MAGIC);
	put16(h + 4, m->type);
	put16(h + 6, m->flags);
	put32(h + 8, m->slot);
	put32(h + 12, m->gen);
	put32(h + 16, m->pid);
	put32(h + 20, m->count);
	put32(h + 24, m->first_error);
	put32(h + 28, m->n_errors);
	put64(h + 32, m->task_id);
	put16(h + 40, (uint16_t)m->fn_len);
	put32(h + 44, m->attempt);
	put64(h + 48, m->busy_ns);
	put32(h + 56, m->timeout_ms);
	put32(h + 60, m->budget_ms);
	if (buf_add(b, h, sizeof(h)) < 0 || buf_add(b, m->fn, m->fn_len) < 0 ||
	    buf_add(b, m->errors, (size_t)m->n_errors * 4) < 0)
		return -ENOMEM;
	return 0;
}

int wire_encode(struct buf *b, const struct wire_msg *m)
{
	if (wire_encode_head(b, m) < 0 || buf_add(b, m->payload, m->payload_len) < 0)
		return -ENOMEM;
	return 0;
}

int wire_decode(const void *data, size_t len, struct wire_msg *m)
{
	const unsigned char *p = data;
	size_t need;
	uint32_t i;

	if (len < WIRE_HDR_SIZE || get32(p) != WIRE_MAGIC)
		return -EBADMSG;
	memset(m, 0, sizeof(*m));
	m->type = get16(p + 4);
	m->flags = get16(p + 6);
	m->slot = get32(p + 8);
	m->gen = get32(p + 12);
	m->pid = get32(p + 16);
	m->count = get32(p + 20);
	m->first_error = get32(p + 24);
	m->n_errors = get32(p + 28);
	m->task_id = get64(p + 32);
	m->fn_len = get16(p + 40);
	m->attempt = get32(p + 44);
	m->busy_ns = get64(p + 48);
	m->timeout_ms = get32(p + 56);
	m->budget_ms = get32(p + 60);
	if (m->type < WIRE_TASK || m->type > WIRE_LOST)
		return -EBADMSG;
	if (m->n_errors > m->count || m->n_errors > (len - WIRE_HDR_SIZE) / 4)
		return -EBADMSG;
	need = WIRE_HDR_SIZE + m->fn_len + (size_t)m->n_errors * 4;
	if (need > len)
		return -EBADMSG;
	if (m->first_error != WIRE_NO_ERROR && m->first_error >= m->count)
		return -EBADMSG;
	m->fn = (const char *)p + WIRE_HDR_SIZE;
	m->errors = p + WIRE_HDR_SIZE + m->fn_len;
	/* Error indices rise strictly and stay below count. */
	for (i = 0; i < m->n_errors; i++) {
		uint32_t e = wire_error_at(m, i);

		if (e >= m->count || (i > 0 && e <= wire_error_at(m, i - 1)))
			return -EBADMSG;
	}
	m->payload = (const char *)p + need;
	m->payload_len = len - need;
	return 0;
}

uint32_t wire_error_at(const struct wire_msg *m, uint32_t i)
{
	return get32(m->errors + (size_t)i * 4);
}
