/* buf.c - growable byte buffer */
#include "buf.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"

void (*buf_on_oom)(size_t n);

int buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->cap - b->len > n)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len <= n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		if (buf_on_oom)
			buf_on_oom(cap);
		return -ENOMEM;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
	if (buf_reserve(b, 1) < 0)
		return -ENOMEM;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* Length of the valid UTF-8 sequence at p, 0 if invalid (overlong, surrogate, > U+10FFFF). */
size_t buf_utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n = (size_t)(end - p);

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if (p[0] == 0xe0 && p[1] < 0xa0)
			return 0;
		if (p[0] == 0xed && p[1] >= 0xa0)
			return 0;
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if (p[0] == 0xf0 && p[1] < 0x90)
			return 0;
		if (p[0] == 0xf4 && p[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

int buf_add_json_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	if (buf_reserve(b, n + 2) < 0 || buf_addc(b, '"') < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
		int r;

		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			r = buf_add(b, e, 2);
		} else if (c == '\n') {
			r = buf_add(b, "\\n", 2);
		} else if (c == '\t') {
			r = buf_add(b, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			r = buf_add(b, esc, 6);
		} else if (c >= 0x80) {
			/* Copy valid UTF-8 through; a broken or cut sequence becomes U+FFFD. */
			size_t k = buf_utf8_len((const unsigned char *)s + i,
			                        (const unsigned char *)s + n);

			if (k) {
				r = buf_add(b, s + i, k);
				i += k - 1;
			} else {
				r = buf_add(b, "\\ufffd", 6);
			}
		} else {
			r = buf_addc(b, (char)c);
		}
		if (r < 0)
			return r;
	}
	return buf_addc(b, '"');
}

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* Decimal digits of u (1 for 0). */
static inline size_t decimal_digits(uint64_t u)
{
	static const uint64_t pow10[20] = {1ULL,
	                                   10ULL,
	                                   100ULL,
	                                   1000ULL,
	                                   10000ULL,
	                                   100000ULL,
	                                   1000000ULL,
	                                   10000000ULL,
	                                   100000000ULL,
	                                   1000000000ULL,
	                                   10000000000ULL,
	                                   100000000000ULL,
	                                   1000000000000ULL,
	                                   10000000000000ULL,
	                                   100000000000000ULL,
	                                   1000000000000000ULL,
	                                   10000000000000000ULL,
	                                   100000000000000000ULL,
	                                   1000000000000000000ULL,
	                                   10000000000000000000ULL};
	/* log10 from the bit length (1233/4096 ~ log10(2)), then one correction */
	size_t n = (size_t)((64 - __builtin_clzll(u | 1)) * 1233) >> 12;

	return u < 10 ? 1 : n + (u >= pow10[n]);
}

/* The digits of u < 2^32 written backwards from p (no leading zeros); the new p. */
static inline char *digits32_back(char *p, uint32_t u)
{
	while (u >= 100) {
		uint32_t d = u % 100 * 2;

		u /= 100;
		*--p = digit_pairs[d + 1];
		*--p = digit_pairs[d];
	}
	if (u >= 10) {
		*--p = digit_pairs[u * 2 + 1];
		*--p = digit_pairs[u * 2];
	} else {
		*--p = (char)('0' + u);
	}
	return p;
}

/*
 * Up to 16 digits go eight (or sixteen, SSE2) at a time (digits.h): the first
 * word is shifted so that only its significant digits land at p, the second
 * ends at the end.
 * Longer values (beyond 2^53: never a result poold sends) are written from
 * their last digit, two digits per division, in 32-bit arithmetic.
 */
char *buf_fmt_int(char *p, int64_t v)
{
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	size_t n = decimal_digits(u);
	char *end;
	uint64_t w;

	if (v < 0)
		*p++ = '-';
	end = p + n;
	if (DIGITS_SWAR && n <= 8) {
		w = digits_text8((uint32_t)u) >> (8 * (8 - n));
		memcpy(p, &w, 8);
		return end;
	}
	if (DIGITS_SWAR && n <= 16) {
		uint64_t w2;

		digits_text16(u, &w, &w2);
		w >>= 8 * (16 - n);
		memcpy(p, &w, 8);
		memcpy(end - 8, &w2, 8);
		return end;
	}
	p = end;
	while (u > UINT32_MAX) {
		uint32_t lo = (uint32_t)(u % 100000000), i;

		u /= 100000000;
		for (i = 0; i < 4; i++) {
			uint32_t d = lo % 100 * 2;

			lo /= 100;
			*--p = digit_pairs[d + 1];
			*--p = digit_pairs[d];
		}
	}
	digits32_back(p, (uint32_t)u);
	return end;
}

int buf_add_int(struct buf *b, int64_t v)
{
	if (buf_reserve(b, BUF_INT_MAX) < 0)
		return -ENOMEM;
	b->len = (size_t)(buf_fmt_int(b->data + b->len, v) - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/*
 * Shortest representation that reads back to the same double, with ".0" added
 * to integral values so that a float stays recognisable as one (as Python does).
 */
int buf_add_double(struct buf *b, double v)
{
	char tmp[40];
	int prec;

	if (!isfinite(v))
		return -EDOM;
	for (prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (!strpbrk(tmp, ".eEn"))
		strcat(tmp, ".0");
	return buf_adds(b, tmp);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *buf_steal(struct buf *b, size_t *len)
{
	char *p = b->data;

	if (!p)
		p = calloc(1, 1);
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
