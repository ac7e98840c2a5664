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

/* x86-64 converts sixteen digits at once with SSE2 (its baseline); DIGITS_SCALAR turns it off. */
#if defined(__x86_64__) && defined(__SSE2__) && !defined(DIGITS_SCALAR)
#include <emmintrin.h>
#define DIGITS_SSE2 1
#else
#define DIGITS_SSE2 0
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

#if DIGITS_SSE2
/*
 * The eight digits of v < 10^8 as eight 16-bit lanes, the first in the lowest
 * (Wojciech Mula's method): v / 10^4 and v % 10^4 by one multiplication,
 * each copied into four lanes and divided by 10^3, 10^2, 10 and 1 with
 * multiply-high by fixed-point reciprocals, then each lane less ten times
 * the lane before it.
 */
static inline __m128i digits_lanes8(uint32_t v)
{
	const __m128i x = _mm_cvtsi32_si128((int)v);
	const __m128i hi = _mm_srli_epi64(_mm_mul_epu32(x, _mm_set1_epi32((int)0xd1b71759)), 45);
	const __m128i lo = _mm_sub_epi32(x, _mm_mul_epu32(hi, _mm_set1_epi32(10000)));
	const __m128i v1 = _mm_slli_epi64(_mm_unpacklo_epi16(hi, lo), 2);
	const __m128i v2 =
	    _mm_unpacklo_epi32(_mm_unpacklo_epi16(v1, v1), _mm_unpacklo_epi16(v1, v1));
	const __m128i v3 = _mm_mulhi_epu16(
	    v2, _mm_setr_epi16(8389, 5243, 13108, -32768, 8389, 5243, 13108, -32768));
	const __m128i v4 = _mm_mulhi_epu16(
	    v3, _mm_setr_epi16(1 << 7, 1 << 11, 1 << 13, -32768, 1 << 7, 1 << 11, 1 << 13, -32768));
	const __m128i v5 = _mm_slli_epi64(_mm_mullo_epi16(v4, _mm_set1_epi16(10)), 16);

	return _mm_sub_epi16(v4, v5);
}
#endif

/*
 * The sixteen digits of u < 10^16 (leading zeros included) as ASCII in two
 * words: *first the first eight, *second the last eight, each with its first
 * digit in the lowest byte.
 */
static inline void digits_text16(uint64_t u, uint64_t *first, uint64_t *second)
{
	uint32_t hi = (uint32_t)(u / 100000000), lo = (uint32_t)(u % 100000000);
#if DIGITS_SSE2
	__m128i d = _mm_packus_epi16(digits_lanes8(hi), digits_lanes8(lo));

	d = _mm_add_epi8(d, _mm_set1_epi8('0'));
	*first = (uint64_t)_mm_cvtsi128_si64(d);
	*second = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(d, d));
#else
	*first = digits_text8(hi);
	*second = digits_text8(lo);
#endif
}

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
