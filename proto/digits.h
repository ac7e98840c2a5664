/*
 * digits.h - decimal digits eight at a time (SWAR: one 64-bit word holds
 * eight ASCII digits, the first in its lowest byte, as a little-endian load
 * of the text gives them). Used where integers are read or written per item:
 * the worker's integer forms and buf_fmt_int.
 */
#pragma once

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DIGITS_SWAR 1
#else
#define DIGITS_SWAR 0
#endif

/* The eight bytes at p as a little-endian word (any alignment). */
static inline uint64_t digits_load8(const char *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return x;
}

/*
 * How many of the eight bytes of x (from its lowest) are ASCII digits before
 * the first byte that is not one: 0 to 8.
 */
static inline unsigned digits_count8(uint64_t x)
{
	uint64_t t = x - 0x3030303030303030ULL;
	/* a byte's high bit is set when it was below '0' or above '9' */
	uint64_t bad = (t | (t + 0x7676767676767676ULL)) & 0x8080808080808080ULL;

	return bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
}

/* The value of the first n (1 to 8) digits of x, the first the most significant. */
static inline uint32_t digits_value8(uint64_t x, unsigned n)
{
	/* the digits' values, moved up so that the missing leading ones are zero bytes */
	uint64_t t = (x - 0x3030303030303030ULL) << (8 * (8 - n));

	t = (t * 10 + (t >> 8)) & 0x00FF00FF00FF00FFULL;
	t = (t * 100 + (t >> 16)) & 0x0000FFFF0000FFFFULL;
	return (uint32_t)((t * 10000 + (t >> 32)) & 0xFFFFFFFFULL);
}

/* The eight digits of v < 10^8 (leading zeros included) as ASCII, the first in the lowest byte. */
static inline uint64_t digits_text8(uint32_t v)
{
	/* two lanes of 32 bits: the high four digits, then the low four */
	uint64_t x = v / 10000 | (uint64_t)(v % 10000) << 32;
	/* each lane / 100 (10486 / 2^20 is exact for lanes below 10^4) */
	uint64_t y = (x * 10486 >> 20) & 0x0000007F0000007FULL;
	/* four 16-bit lanes of two digits each, then each / 10 (103 / 2^10 is exact below 100) */
	uint64_t z = y | (x - y * 100) << 16;
	uint64_t tens = (z * 103 >> 10) & 0x000F000F000F000FULL;

	return (tens | (z - tens * 10) << 8) + 0x3030303030303030ULL;
}

/* Longest integer literal digits_int_elem reads: 15 digits are always within 2^53. */
#define DIGITS_ELEM_MAX 15

/* JSON's whitespace. */
static inline int digits_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The next element of a validated JSON array being walked, p just after the
 * '[' or after the element before, when that element is a plain integer
 * literal: '-'? and 1 to 15 digits (no fraction or exponent), spaces around
 * it and its comma allowed, then ',' or the end of the array (end: its ']').
 * Returns 1 with *x and *next (the byte after the digits) set; 0 for anything
 * else, left to a general reader. Eight digits at a time where eight bytes
 * can be read.
 */
static inline int digits_int_elem(const char *p, const char *end, int64_t *x, const char **next)
{
	const char *d;
	int64_t v = 0;
	unsigned n;
	int neg;

	while (p < end && digits_is_ws(*p))
		p++;
	if (p < end && *p == ',')
		p++;
	while (p < end && digits_is_ws(*p))
		p++;
	neg = p < end && *p == '-';
	p += neg;
	d = p;
	if (DIGITS_SWAR && end - p >= 8 && (n = digits_count8(digits_load8(p))) > 0 && n < 8) {
		v = digits_value8(digits_load8(p), n);
		p += n;
	} else {
		while (p < end && (unsigned)(*p - '0') <= 9 && p - d < DIGITS_ELEM_MAX)
			v = v * 10 + (*p++ - '0');
	}
	if (p == d)
		return 0;
	*next = p;
	while (p < end && digits_is_ws(*p))
		p++;
	if (p < end && *p != ',')
		return 0;
	*x = neg ? -v : v;
	return 1;
}
