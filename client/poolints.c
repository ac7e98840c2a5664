/* poolints.c - libpoolclient's integer path: a map of int64s written and read without copies */
#include "poolints.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "digits.h"
#include "poolclient.h"

/* Items written per reservation: what an array over-reserves stays small. */
#define ADD_BLOCK 4096

/*
 * The eight-bytes-at-a-time element reader needs a little-endian machine;
 * POOLINTS_SCALAR forces the byte loop everywhere (the unit tests build both).
 */
#if DIGITS_SWAR && !defined(POOLINTS_SCALAR)
#define POOLINTS_SWAR 1
#else
#define POOLINTS_SWAR 0
#endif

/* Bytes from an element's start that the eight-byte reader may look at: '-', 16 digits, 1. */
#define FAST_SPAN 18

enum { ST_HEAD, ST_FIRST, ST_ELEM, ST_TAIL };

/* 1 when v is beyond +-2^53: both bounds in unsigned arithmetic, no branch. */
static inline uint64_t beyond(int64_t v)
{
	return (((uint64_t)JSON_INT_MAX - (uint64_t)v) | ((uint64_t)v + (uint64_t)JSON_INT_MAX)) >>
	       63;
}

size_t poolints_check_range(const int64_t *items, size_t n)
{
	size_t i, j;

	/* blocks without a branch per item (the compiler vectorizes them), then the culprit */
	for (i = 0; i < n; i += ADD_BLOCK) {
		size_t end = n - i < ADD_BLOCK ? n : i + ADD_BLOCK;
		uint64_t any = 0;

		for (j = i; j < end; j++)
			any |= beyond(items[j]);
		if (any)
			for (j = i; j < end; j++)
				if (beyond(items[j]))
					return j;
	}
	return n;
}

int poolints_add_items(struct buf *b, const int64_t *items, size_t from, size_t to)
{
	size_t i = from;

	while (i < to) {
		size_t k = to - i < ADD_BLOCK ? to - i : ADD_BLOCK;
		char *p;

		if (buf_reserve(b, k * (BUF_INT_MAX + 1)) < 0)
			return -ENOMEM;
		p = b->data + b->len;
		for (; k > 0; k--, i++) {
			*p = ',';
			p += i != 0;
			p = buf_fmt_int(p, items[i]);
		}
		b->len = (size_t)(p - b->data);
	}
	if (b->data)
		b->data[b->len] = '\0';
	return 0;
}

void poolints_restart(struct poolints_reader *r)
{
	r->got = 0;
	r->base = 0;
	r->off = 0;
	r->state = ST_HEAD;
}

void poolints_init(struct poolints_reader *r, int64_t id, int64_t *out, size_t n)
{
	r->out = out;
	r->n = n;
	r->headlen = (size_t)snprintf(r->head, sizeof(r->head),
	                              "{\"id\":%" PRId64 ",\"ok\":true,\"results\":[", id);
	poolints_restart(r);
}

static inline int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * The integer element at p, read a byte at a time up to end: 1 with *v and
 * *q (the ',' or ']' after it) set; 0 when the bytes end first; -1 when it is
 * not an integer literal within +-2^53 followed by ',' or ']'.
 */
static int elem_scalar(const char *p, const char *end, int64_t *v, const char **q)
{
	const char *d;
	uint64_t u = 0;
	int neg = p < end && *p == '-';

	p += neg;
	for (d = p; p < end && is_digit(*p); p++) {
		if (p - d == 16)
			return -1; /* a 17th digit: beyond 2^53 (no leading zeros) */
		u = u * 10 + (uint64_t)(*p - '0');
	}
	if (p == end)
		return 0;
	if (p == d || (*d == '0' && p - d > 1) || u > (uint64_t)JSON_INT_MAX ||
	    (*p != ',' && *p != ']'))
		return -1;
	*v = neg ? -(int64_t)u : (int64_t)u;
	*q = p;
	return 1;
}

#if POOLINTS_SWAR
static const uint64_t powers10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/*
 * elem_scalar() when at least FAST_SPAN bytes are there: the digits eight at
 * a time (digits.h), their value in three multiplications each. Never
 * returns 0.
 */
static inline int elem_fast(const char *p, int64_t *v, const char **q)
{
	int neg = *p == '-';
	uint64_t x, u;
	unsigned len;

	p += neg;
	x = digits_load8(p);
	len = digits_count8(x);
	if (len == 0)
		return -1;
	if (len < 8) {
		u = digits_value8(x, len);
	} else {
		uint64_t x2 = digits_load8(p + 8);
		unsigned len2 = digits_count8(x2);

		u = digits_value8(x, 8); /* a 17th digit fails the check of the byte after */
		if (len2)
			u = u * powers10[len2] + digits_value8(x2, len2);
		len = 8 + len2;
	}
	if ((len > 1 && p[0] == '0') || u > (uint64_t)JSON_INT_MAX ||
	    (p[len] != ',' && p[len] != ']'))
		return -1;
	*v = neg ? -(int64_t)u : (int64_t)u;
	*q = p + len;
	return 1;
}
#endif

/* The next element at p (ends at end): as elem_scalar(). */
static inline int elem_next(const char *p, const char *end, int64_t *v, const char **q)
{
#if POOLINTS_SWAR
	if (end - p >= FAST_SPAN)
		return elem_fast(p, v, q);
#endif
	return elem_scalar(p, end, v, q);
}

/* Read elements from p on; returns the verdict so far, r->off and r->got updated. */
static int feed_elems(struct poolints_reader *r, const char *line, const char *p, const char *end)
{
	int64_t *out = r->out;
	size_t got = r->got, n = r->n;
	const char *q = p;
	int64_t v;
	int k;

	for (;;) {
		k = elem_next(p, end, &v, &q);
		if (k <= 0 || got == n)
			break;
		out[got++] = v;
		p = q + 1;
		if (*q == ']') {
			r->state = ST_TAIL;
			break;
		}
	}
	r->got = got;
	r->off = (size_t)(p - line);
	if (r->state == ST_ELEM)
		return k == 0 ? POOLINTS_MORE : POOLINTS_SLOW;
	return POOLINTS_MORE;
}

int poolints_feed(struct poolints_reader *r, const char *line, size_t avail)
{
	const char *p, *end = line + avail;

	if (avail == 0)
		return POOLINTS_MORE;
	if (r->state == ST_HEAD) {
		if (memcmp(line, r->head, avail < r->headlen ? avail : r->headlen) != 0)
			return POOLINTS_SLOW;
		if (avail < r->headlen)
			return POOLINTS_MORE;
		r->off = r->headlen;
		r->state = ST_FIRST;
	}
	p = line + r->off;
	if (r->state == ST_FIRST) {
		if (p == end)
			return POOLINTS_MORE;
		if (*p == ']') {
			r->off++;
			r->state = ST_TAIL;
		} else {
			r->state = ST_ELEM;
		}
	}
	if (r->state == ST_ELEM && feed_elems(r, line, p, end) == POOLINTS_SLOW)
		return POOLINTS_SLOW;
	if (r->state != ST_TAIL)
		return POOLINTS_MORE;
	/* after the array: exactly "}\n", and every result there */
	p = line + r->off;
	if (r->got != r->n || (p < end && *p != '}') || (end - p >= 2 && p[1] != '\n'))
		return POOLINTS_SLOW;
	if (end - p < 2)
		return POOLINTS_MORE;
	r->off += 2;
	return POOLINTS_DONE;
}

size_t poolints_retire(struct poolints_reader *r, char *line, size_t avail)
{
	size_t keep, gone;

	if (r->state != ST_ELEM || r->got - r->base < 2)
		return 0;
	/* line[r->off - 1] is the ',' after the last result read: find its start */
	keep = r->off - 1;
	while (line[keep - 1] != ',')
		keep--;
	gone = keep - r->headlen;
	memmove(line + r->headlen, line + keep, avail - keep);
	r->off -= gone;
	r->base = r->got - 1;
	return gone;
}

int poolints_results(struct json_span results, int64_t *out, size_t n, size_t *index,
                     struct json_span *bad)
{
	size_t count = json_array_count(results), i;
	struct json_iter it;
	struct json_span e;

	if (count != n) {
		*index = count;
		return -POOL_EPROTO;
	}
	json_iter_init(&it, results);
	for (i = 0; json_array_next(&it, &e); i++)
		if (json_int(e, &out[i]) < 0) {
			*index = i;
			*bad = e;
			return -POOL_EJOB;
		}
	return 0;
}
