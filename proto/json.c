/* json.c - a strict, allocation-free JSON scanner working on raw text */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* JSON_SCALAR forces the portable byte-wise paths (tests build both). */
#if defined(__SSE2__) && !defined(JSON_SCALAR)
#define JSON_SSE2 1
#include <emmintrin.h>
#endif

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum {
	S_VALUE,     /* a value */
	S_ARR_FIRST, /* a value or ']' right after '[' */
	S_OBJ_FIRST, /* a key or '}' right after '{' */
	S_KEY,       /* a key after ',' */
	S_COLON,     /* ':' after a key */
	S_AFTER,     /* ',' or the closing bracket after a value */
	S_TRAIL,     /* only whitespace after the top-level value */
	S_STR,       /* inside a string */
	S_ESC,       /* after a backslash */
	S_HEX,       /* in the hex digits of \uXXXX */
	S_UTF8,      /* in the continuation bytes of a UTF-8 sequence */
	S_LIT,       /* inside true, false or null */
	S_MINUS,     /* number: after '-' */
	S_ZERO,      /* number: a leading 0 */
	S_INT,       /* number: integer digits */
	S_DOT,       /* number: after '.' */
	S_FRAC,      /* number: fraction digits */
	S_EXP,       /* number: after 'e' */
	S_ESIGN,     /* number: after the exponent's sign */
	S_EDIGITS,   /* number: exponent digits */
	S_ERROR,
};

/* Finding the indexed array: its key, its value, inside it, found. */
enum { IX_OFF, IX_KEY, IX_VALUE, IX_IN, IX_DONE };

void json_scan_init(struct json_scan *s)
{
	memset(s, 0, offsetof(struct json_scan, stack));
	s->state = S_VALUE;
}

void json_scan_index(struct json_scan *s, struct json_index *ix)
{
	ix->start = ix->end = ix->count = ix->n_marks = 0;
	ix->stride = JSON_INDEX_STRIDE;
	s->ix = ix;
	s->ix_phase = IX_KEY;
}

/*
 * The comma at offset off is due for a mark. A full index keeps every other
 * mark and doubles its stride: a mark falls on every stride-th comma again.
 */
static void ix_mark(struct json_scan *s, size_t off)
{
	struct json_index *ix = s->ix;
	size_t i;

	ix->mark[ix->n_marks++] = off;
	if (ix->n_marks == JSON_INDEX_MARKS) {
		for (i = 0; i < JSON_INDEX_MARKS / 2; i++)
			ix->mark[i] = ix->mark[2 * i + 1];
		ix->n_marks = JSON_INDEX_MARKS / 2;
		ix->stride *= 2;
	}
	s->ix_left = ix->stride;
}

/* A comma at offset off between two elements at the current depth: count it if it is args'. */
static inline void ix_comma(struct json_scan *s, size_t off)
{
	if (s->ix_phase == IX_IN && s->depth == 2) {
		s->ix->count++;
		if (--s->ix_left == 0)
			ix_mark(s, off);
	}
}

/* The ']' at offset off closes the current array: args' when it is at depth 2 inside it. */
static inline void ix_close(struct json_scan *s, size_t off, int empty)
{
	if (s->ix_phase == IX_IN && s->depth == 2) {
		s->ix->count = empty ? 0 : s->ix->count + 1;
		s->ix->end = off + 1;
		s->ix_phase = IX_DONE;
	}
}

/*
 * A depth-1 key closed at p - 1 (p in the slice that starts at offset
 * s->off): the next value is args' when the key is exactly "args" (what
 * json_string_eq matches). Its bytes from earlier slices are in ix_kbuf.
 */
static void ix_key_end(struct json_scan *s, const char *start, const char *p)
{
	size_t q = s->off + (size_t)(p - start) - 1, from = s->ix_key > s->off ? s->ix_key : s->off;
	char key[4];

	if (q - s->ix_key != 4)
		return;
	memcpy(key, s->ix_kbuf, s->ix_klen);
	memcpy(key + s->ix_klen, start + (from - s->off), q - from);
	if (memcmp(key, "args", 4) == 0)
		s->ix_phase = IX_VALUE;
}

/* A slice [start, end) ends inside a depth-1 key: keep its bytes, as long as it may be "args". */
static void ix_key_save(struct json_scan *s, const char *start, const char *end)
{
	size_t from = s->ix_key > s->off ? s->ix_key : s->off;
	size_t k = s->off + (size_t)(end - start) - from;

	if (s->ix_klen + k > 4) {
		s->ix_klen = 5;
		return;
	}
	memcpy(s->ix_kbuf + s->ix_klen, start + (from - s->off), k);
	s->ix_klen = (uint8_t)(s->ix_klen + k);
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A value ended at offset off (exclusive). */
static void value_done(struct json_scan *s, size_t off)
{
	if (s->depth == 0) {
		s->vend = off;
		s->state = S_TRAIL;
	} else {
		s->state = S_AFTER;
	}
}

/* Start a string (a key when key is set). */
static void string_begin(struct json_scan *s, int key)
{
	s->in_key = (uint8_t)key;
	s->state = S_STR;
}

/* First byte of a UTF-8 sequence: how many follow and the range of the next one. */
static int utf8_lead(struct json_scan *s, unsigned char c)
{
	s->lo = 0x80;
	s->hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		s->need = 1;
	else if (c >= 0xe0 && c <= 0xef)
		s->need = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		s->need = 3;
	else
		return -1;
	if (c == 0xe0)
		s->lo = 0xa0; /* no overlong forms */
	else if (c == 0xed)
		s->hi = 0x9f; /* no surrogates */
	else if (c == 0xf0)
		s->lo = 0x90;
	else if (c == 0xf4)
		s->hi = 0x8f; /* nothing above U+10FFFF */
	return 0;
}

/* Handle byte c at offset off in states that expect a value or a key. */
static const char *scan_token(struct json_scan *s, char c, size_t off)
{
	switch (s->state) {
	case S_OBJ_FIRST:
		if (c == '}') {
			s->depth--;
			value_done(s, off + 1);
			return NULL;
		}
		/* fall through */
	case S_KEY:
		if (c != '"')
			return "expected a string key";
		if (s->ix_phase == IX_KEY && s->depth == 1) {
			s->ix_key = off + 1;
			s->ix_klen = 0;
		}
		string_begin(s, 1);
		return NULL;
	case S_COLON:
		if (c != ':')
			return "expected ':'";
		s->state = S_VALUE;
		return NULL;
	case S_AFTER:
		if (c == s->stack[s->depth - 1] + 2) {
			ix_close(s, off, 0);
			s->depth--;
			value_done(s, off + 1);
			return NULL;
		}
		if (c != ',')
			return s->stack[s->depth - 1] == '[' ? "expected ',' or ']'"
			                                     : "expected ',' or '}'";
		ix_comma(s, off);
		s->state = s->stack[s->depth - 1] == '[' ? S_VALUE : S_KEY;
		return NULL;
	case S_TRAIL:
		return "trailing characters after the value";
	case S_ARR_FIRST:
		if (c == ']') {
			ix_close(s, off, 1);
			s->depth--;
			value_done(s, off + 1);
			return NULL;
		}
		break;
	default:
		break;
	}
	/* a value */
	if (s->depth == 0)
		s->vstart = off;
	if (s->ix_phase == IX_VALUE) {
		s->ix_phase = c == '[' ? IX_IN : IX_OFF;
		s->ix->start = off;
		s->ix_left = s->ix->stride;
	}
	switch (c) {
	case '{':
	case '[':
		if (s->depth >= JSON_MAX_DEPTH)
			return "nesting too deep";
		s->stack[s->depth++] = c;
		s->state = c == '{' ? S_OBJ_FIRST : S_ARR_FIRST;
		return NULL;
	case '"':
		string_begin(s, 0);
		return NULL;
	case 't':
		s->lit = "true";
		break;
	case 'f':
		s->lit = "false";
		break;
	case 'n':
		s->lit = "null";
		break;
	case '-':
		s->state = S_MINUS;
		return NULL;
	case '0':
		s->state = S_ZERO;
		return NULL;
	default:
		if (c >= '1' && c <= '9') {
			s->state = S_INT;
			return NULL;
		}
		return "unexpected character";
	}
	s->state = S_LIT;
	s->need = 1;
	return NULL;
}

/*
 * Handle bytes from p on inside a string; returns the first byte not taken:
 * end when all were, the bad byte with *err set.
 */
static const char *scan_string_bytes(struct json_scan *s, const char *p, const char *end,
                                     const char **err)
{
	while (p < end) {
		unsigned char c = (unsigned char)*p;

		switch (s->state) {
		case S_STR:
			/* plain ASCII runs are the bulk of any payload */
			while (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
				if (++p == end)
					return p;
				c = (unsigned char)*p;
			}
			if (c == '"') {
				s->state = s->in_key ? S_COLON : S_AFTER;
				return p + 1;
			}
			if (c == '\\')
				s->state = S_ESC;
			else if (c < 0x20)
				*err = "control character in string";
			else if (utf8_lead(s, c) < 0)
				*err = "invalid UTF-8 in string";
			else
				s->state = S_UTF8;
			break;
		case S_ESC:
			if (c == 'u') {
				s->state = S_HEX;
				s->need = 4;
			} else if (c && strchr("\"\\/bfnrt", c)) {
				s->state = S_STR;
			} else {
				*err = "bad escape in string";
			}
			break;
		case S_HEX:
			if (hexval((char)c) < 0)
				*err = "bad \\u escape";
			else if (--s->need == 0)
				s->state = S_STR;
			break;
		default: /* S_UTF8 */
			if (c < s->lo || c > s->hi) {
				*err = "invalid UTF-8 in string";
			} else {
				s->lo = 0x80;
				s->hi = 0xbf;
				if (--s->need == 0)
					s->state = S_STR;
			}
		}
		if (*err)
			return p;
		p++;
	}
	return p;
}

/* Handle byte c inside a number; returns 1 when c is not part of it (the number ended). */
static int scan_number_byte(struct json_scan *s, char c, const char **err)
{
	switch (s->state) {
	case S_MINUS:
		if (!is_digit(c))
			break;
		s->state = c == '0' ? S_ZERO : S_INT;
		return 0;
	case S_ZERO:
	case S_INT:
	case S_FRAC:
		if (s->state != S_ZERO && is_digit(c))
			return 0;
		if (c == '.' && s->state != S_FRAC) {
			s->state = S_DOT;
			return 0;
		}
		if (c == 'e' || c == 'E') {
			s->state = S_EXP;
			return 0;
		}
		return 1;
	case S_DOT:
		if (!is_digit(c))
			break;
		s->state = S_FRAC;
		return 0;
	case S_EXP:
		if (c == '+' || c == '-') {
			s->state = S_ESIGN;
			return 0;
		}
		/* fall through */
	case S_ESIGN:
		if (!is_digit(c))
			break;
		s->state = S_EDIGITS;
		return 0;
	default: /* S_EDIGITS */
		return is_digit(c) ? 0 : 1;
	}
	*err = "bad number";
	return 0;
}

/*
 * The first byte at or after p that is not an ASCII digit (end when all
 * are). Eight bytes at a time while eight are left (little-endian): per byte, c - '0' has
 * its high bit set, or gets it by adding 0x76, unless c is a digit; a borrow
 * only reaches the bytes after a non-digit, so the lowest flagged byte is
 * the first non-digit.
 */
static inline const char *skip_digits(const char *p, const char *end)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (end - p >= 8) {
		uint64_t w, x, m;

		memcpy(&w, p, 8);
		x = w - 0x3030303030303030ULL;
		m = (x | (x + 0x7676767676767676ULL)) & 0x8080808080808080ULL;
		if (m)
			return p + (__builtin_ctzll(m) >> 3);
		p += 8;
	}
#endif
	while (p < end && is_digit(*p))
		p++;
	return p;
}

#ifdef JSON_SSE2
/* Bits set in a mask (x86-64's baseline has no popcnt instruction). */
static inline unsigned popcount64(uint64_t x)
{
	x -= x >> 1 & 0x5555555555555555ULL;
	x = (x & 0x3333333333333333ULL) + (x >> 2 & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}

/*
 * At the start of an element of an array, with 16 x blocks bytes readable
 * (blocks 1 to 4): the length of the whole integer elements and their
 * commas that those bytes hold, when every one of them is a valid integer
 * literal (0: none, or some byte needs the byte-wise scan, which then finds
 * the same or says what is wrong), *commas the bits of those commas. One
 * bit per byte: an element starts at bit 0 and after each comma; a '-' only
 * there and before a digit; a number's first digit 0 is not followed by a
 * digit; no element is empty.
 */
static inline unsigned int_block(const char *p, int blocks, uint64_t *commas)
{
	uint64_t d = 0, c = 0, m = 0, z = 0, other, range, starts, firsts;
	unsigned last;
	int i;

	for (i = 0; i < blocks; i++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
		/* digits move to -128..-119 and nothing else does */
		__m128i dv = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x80 - '0')),
		                            _mm_set1_epi8(-128 + 10));

		d |= (uint64_t)(unsigned)_mm_movemask_epi8(dv) << 16 * i;
		c |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')))
		     << 16 * i;
		m |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')))
		     << 16 * i;
		z |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('0')))
		     << 16 * i;
	}
	other = ~(d | c | m); /* bits past the blocks read are set: no byte there */
	/* the commas before the first byte that is no digit, comma or '-' */
	if (other)
		c &= ((uint64_t)1 << __builtin_ctzll(other)) - 1;
	if (!c)
		return 0;
	last = 63 - (unsigned)__builtin_clzll(c);
	range = last == 63 ? ~0ULL : ((uint64_t)2 << last) - 1; /* up to the last comma */
	starts = (c << 1 | 1) & range;
	firsts = (starts | m << 1) & d & range;
	if ((starts & ~(d | m)) || (m & ~starts & range) || (m << 1 & range & ~d) ||
	    ((firsts & z) << 1 & d))
		return 0;
	*commas = c;
	return last + 1;
}
#endif

/*
 * At the start of an element of an array, a '-' or a digit: whole integer
 * elements and their commas in one tight loop (16 bytes at a time with
 * SSE2). Returns where the general scan goes on, with the state it would
 * have reached there (inside a number, or at a value that is not an
 * integer). Commas of the indexed array are counted and marked; start is
 * where the slice being fed begins (offset s->off).
 */
static const char *scan_int_run(struct json_scan *s, const char *p, const char *end,
                                const char *start)
{
	int counting = s->ix_phase == IX_IN && s->depth == 2;
	size_t left = counting ? s->ix_left : SIZE_MAX, commas = 0;

	for (;;) {
#ifdef JSON_SSE2
		uint64_t cm;
		unsigned k, n;

		while ((k = end - p >= 64   ? int_block(p, 4, &cm)
		            : end - p >= 16 ? int_block(p, 1, &cm)
		                            : 0)) {
			n = popcount64(cm);
			commas += n;
			while (n >= left) {
				size_t i;

				for (i = 1; i < left; i++)
					cm &= cm - 1; /* the left-th comma is due */
				ix_mark(s, s->off + (size_t)(p - start) +
				               (unsigned)__builtin_ctzll(cm));
				cm &= cm - 1;
				n -= (unsigned)left;
				left = s->ix->stride;
			}
			left -= n;
			p += k;
			s->state = S_VALUE;
			if (p == end || (!is_digit(*p) && *p != '-'))
				goto out;
		}
#endif
		if (*p == '-' && ++p == end) {
			s->state = S_MINUS;
			break;
		}
		if (!is_digit(*p)) {
			s->state = S_MINUS; /* the general scan says "bad number" here */
			break;
		}
		if (*p++ == '0') {
			s->state = S_ZERO;
		} else {
			p = skip_digits(p, end);
			s->state = S_INT;
		}
		if (p == end || *p != ',')
			break;
		s->state = S_VALUE;
		commas++;
		if (--left == 0) {
			ix_mark(s, s->off + (size_t)(p - start));
			left = s->ix->stride;
		}
		if (++p == end || (!is_digit(*p) && *p != '-'))
			break;
	}
#ifdef JSON_SSE2
out:
#endif
	if (counting) {
		s->ix->count += commas;
		s->ix_left = left;
	}
	return p;
}

int json_scan_feed(struct json_scan *s, const char *p, size_t n)
{
	const char *start = p, *end = p + n, *err = NULL;

	if (s->state == S_ERROR)
		return -EINVAL;
	while (p < end) {
		unsigned st = s->state;
		char c;

		if (st == S_INT || st == S_FRAC || st == S_EDIGITS) {
			p = skip_digits(p, end);
			if (p == end)
				goto out;
			/* the common end of a number: the next element of an array */
			if (*p == ',' && s->depth && s->stack[s->depth - 1] == '[') {
				ix_comma(s, s->off + (size_t)(p - start));
				s->state = S_VALUE;
				p++;
				continue;
			}
		}
		c = *p;
		if (st >= S_STR && st <= S_UTF8) {
			p = scan_string_bytes(s, p, end, &err);
			if (err)
				goto fail;
			if (s->state == S_AFTER)
				value_done(s, s->off + (size_t)(p - start));
			else if (s->state == S_COLON && s->ix_phase == IX_KEY && s->depth == 1)
				ix_key_end(s, start, p);
			continue;
		}
		if (st == S_LIT) {
			if (c != s->lit[s->need]) {
				err = "bad literal (true, false or null)";
				goto fail;
			}
			if (!s->lit[++s->need])
				value_done(s, s->off + (size_t)(p - start) + 1);
			p++;
			continue;
		}
		if (st >= S_MINUS) {
			if (!scan_number_byte(s, c, &err)) {
				if (err)
					goto fail;
				p++;
				continue;
			}
			value_done(s, s->off + (size_t)(p - start));
			st = s->state;
		}
		/* the common steps of arrays of numbers, without a call */
		if (st == S_AFTER && c == ',' && s->stack[s->depth - 1] == '[') {
			ix_comma(s, s->off + (size_t)(p - start));
			s->state = S_VALUE;
			p++;
			continue;
		}
		if ((st == S_VALUE || st == S_ARR_FIRST) && s->depth && (is_digit(c) || c == '-') &&
		    s->stack[s->depth - 1] == '[') {
			p = scan_int_run(s, p, end, start);
			continue;
		}
		if (is_ws(c)) {
			p++;
			continue;
		}
		if ((err = scan_token(s, c, s->off + (size_t)(p - start))))
			goto fail;
		p++;
	}
out:
	if (s->ix_phase == IX_KEY && s->depth == 1 && s->in_key && s->state >= S_STR &&
	    s->state <= S_UTF8)
		ix_key_save(s, start, end);
	s->off += n;
	return 0;
fail:
	s->err = err;
	s->erroff = s->off + (size_t)(p - start);
	s->state = S_ERROR;
	return -EINVAL;
}

int json_scan_end(struct json_scan *s)
{
	if (s->state == S_ERROR)
		return -EINVAL;
	if (s->state >= S_MINUS) {
		const char *err = NULL;

		if (!scan_number_byte(s, ' ', &err)) {
			s->err = err;
			goto fail;
		}
		value_done(s, s->off);
	}
	if (s->state == S_TRAIL)
		return 0;
	s->err = s->state >= S_STR && s->state <= S_UTF8 ? "unterminated string"
	                                                 : "unexpected end of input";
fail:
	s->erroff = s->off;
	s->state = S_ERROR;
	return -EINVAL;
}

int json_validate(const char *p, const char *end, struct json_span *value, const char **errmsg,
                  size_t *erroff)
{
	struct json_scan s;

	json_scan_init(&s);
	if (json_scan_feed(&s, p, (size_t)(end - p)) < 0 || json_scan_end(&s) < 0) {
		*errmsg = s.err;
		*erroff = s.erroff;
		return -EINVAL;
	}
	value->p = p + s.vstart;
	value->len = s.vend - s.vstart;
	return 0;
}

int json_validate_prefix(const char *p, const char *end, struct json_span *value,
                         const char **errmsg, size_t *erroff)
{
	struct json_scan s;

	json_scan_init(&s);
	if (json_scan_feed(&s, p, (size_t)(end - p)) == 0 ? json_scan_end(&s) < 0 : s.vend == 0) {
		*errmsg = s.err;
		*erroff = s.erroff;
		return -EINVAL;
	}
	value->p = p + s.vstart;
	value->len = s.vend - s.vstart;
	return 0;
}

int json_int_array(const char *p, const char *end, size_t *count)
{
	size_t n = 0;

	if (end - p < 2 || *p++ != '[' || *--end != ']')
		return 0;
	if (p == end) {
		*count = 0;
		return 1;
	}
	for (;;) {
		p += *p == '-';
		if (p == end || !is_digit(*p))
			return 0;
		if (*p++ == '0') {
			if (p < end && is_digit(*p))
				return 0;
		} else {
			p = skip_digits(p, end);
		}
		n++;
		if (p == end)
			break;
		if (*p++ != ',')
			return 0;
	}
	*count = n;
	return 1;
}

int json_object_scan(const char *p, const char *end, struct json_span *obj, struct json_span *keys,
                     struct json_span *vals, size_t max, size_t *n)
{
	const char *start, *msg;
	struct json_span k, v;
	size_t off;

	*n = 0;
	p = skip_ws(p, end);
	if (p == end || *p != '{')
		return -EINVAL;
	start = p;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		p++;
	else
		for (;;) {
			if (p == end || *p != '"' ||
			    json_validate_prefix(p, end, &k, &msg, &off) < 0)
				return -EINVAL;
			p = skip_ws(k.p + k.len, end);
			if (p == end || *p != ':' ||
			    json_validate_prefix(p + 1, end, &v, &msg, &off) < 0)
				return -EINVAL;
			if (*n < max) {
				keys[*n] = k;
				vals[*n] = v;
			}
			++*n;
			p = skip_ws(v.p + v.len, end);
			if (p < end && *p == '}') {
				p++;
				break;
			}
			if (p == end || *p != ',')
				return -EINVAL;
			p = skip_ws(p + 1, end);
		}
	obj->p = start;
	obj->len = (size_t)(p - start);
	return skip_ws(p, end) == end ? 0 : -EINVAL;
}

enum json_type json_type(struct json_span v)
{
	switch (v.len ? v.p[0] : 'n') {
	case '{':
		return JSON_OBJECT;
	case '[':
		return JSON_ARRAY;
	case '"':
		return JSON_STRING;
	case 't':
		return JSON_TRUE;
	case 'f':
		return JSON_FALSE;
	case 'n':
		return JSON_NULL;
	default:
		return JSON_NUMBER;
	}
}

void json_iter_init(struct json_iter *it, struct json_span v)
{
	it->p = v.p + 1;
	it->end = v.p + v.len - 1;
}

/* Byte classes for walking text already validated. */
enum { K_QUOTE = 1, K_OPEN = 2, K_CLOSE = 4, K_COMMA = 8, K_WS = 16, K_BACKSLASH = 32 };

static const unsigned char kind[256] = {
    ['"'] = K_QUOTE, ['['] = K_OPEN,  [']'] = K_CLOSE, ['{'] = K_OPEN,
    ['}'] = K_CLOSE, [','] = K_COMMA, [' '] = K_WS,    ['\t'] = K_WS,
    ['\n'] = K_WS,   ['\r'] = K_WS,   [':'] = 0,       ['\\'] = K_BACKSLASH,
};

#define KIND(p) kind[(unsigned char)*(p)]

/* After the opening quote of a validated string: the byte after its closing quote. */
static const char *skip_string(const char *p)
{
	for (;;) {
		while (!(KIND(p) & (K_QUOTE | K_BACKSLASH)))
			p++;
		if (*p == '"')
			return p + 1;
		p += 2; /* an escape: the escaped byte cannot end the string */
	}
}

/*
 * After the opening bracket of a validated array or object: the byte after
 * its closing bracket. *commas counts the commas at its own level (the
 * elements less one) when commas is not NULL.
 */
static const char *skip_container(const char *p, size_t *commas)
{
	size_t n = 0;
	int depth = 1;

	for (;;) {
		unsigned k;

		while (!(k = KIND(p) & (K_QUOTE | K_OPEN | K_CLOSE | K_COMMA)))
			p++;
		p++;
		if (k == K_COMMA) {
			n += depth == 1;
		} else if (k == K_QUOTE) {
			p = skip_string(p);
		} else if (k == K_OPEN) {
			depth++;
		} else if (--depth == 0) {
			break;
		}
	}
	if (commas)
		*commas = n;
	return p;
}

/* End of the validated value at p: strings and brackets are matched, nothing more is checked. */
static const char *skip_value(const char *p, const char *end)
{
	if (*p == '"')
		return skip_string(p + 1);
	if (*p == '[' || *p == '{')
		return skip_container(p + 1, NULL);
	while (p < end && !(KIND(p) & (K_COMMA | K_CLOSE | K_WS)))
		p++;
	return p;
}

int json_array_next(struct json_iter *it, struct json_span *elem)
{
	const char *p = it->p, *end = it->end;

	if (p < end && *p == ',')
		p++; /* compact text: no whitespace to skip */
	else if (p < end && (KIND(p) & K_WS)) {
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p++;
	}
	if (p < end && (KIND(p) & K_WS))
		p = skip_ws(p, end);
	if (p >= end)
		return 0;
	elem->p = p;
	if (KIND(p) & (K_QUOTE | K_OPEN))
		p = skip_value(p, end);
	else
		while (p < end && !(KIND(p) & (K_COMMA | K_CLOSE | K_WS)))
			p++;
	elem->len = (size_t)(p - elem->p);
	it->p = p;
	return 1;
}

int json_object_next(struct json_iter *it, struct json_span *key, struct json_span *val)
{
	const char *p;

	if (!json_array_next(it, key))
		return 0;
	p = skip_ws(it->p, it->end);
	it->p = p + 1; /* the ':' */
	return json_array_next(it, val);
}

int json_object_next_count(struct json_iter *it, struct json_span *key, struct json_span *val,
                           size_t *count)
{
	return json_object_next_known(it, key, val, count, NULL);
}

int json_object_next_known(struct json_iter *it, struct json_span *key, struct json_span *val,
                           size_t *count, const struct json_index *ix)
{
	const char *p;
	size_t commas;

	if (!json_array_next(it, key))
		return 0;
	p = skip_ws(skip_ws(it->p, it->end) + 1, it->end); /* after the ':' */
	val->p = p;
	if (ix && ix->end && p == ix->base + ix->start) {
		it->p = ix->base + ix->end;
		val->len = ix->end - ix->start;
		*count = ix->count;
		return 1;
	}
	if (*p != '[') {
		it->p = skip_value(p, it->end);
		val->len = (size_t)(it->p - p);
		*count = 0;
		return 1;
	}
	it->p = skip_container(p + 1, &commas);
	val->len = (size_t)(it->p - p);
	*count = *skip_ws(p + 1, it->p) == ']' ? 0 : commas + 1;
	return 1;
}

/*
 * Taking elements from first on, n of them taken (idx + n - 1 the last) and
 * p at the comma after it: the furthest mark of ix that ends no more than
 * max elements and max_bytes bytes from first. Returns the mark's comma and
 * sets *n and *last to what the walk would have there, or returns p.
 */
static const char *take_jump(const struct json_index *ix, size_t idx, size_t max, size_t max_bytes,
                             const char *first, const char *p, size_t *n, const char **last)
{
	size_t lo = (idx + *n) / ix->stride, hi = (idx + max) / ix->stride;
	const char *c;

	if (hi > ix->n_marks)
		hi = ix->n_marks;
	if (lo >= hi || (size_t)(ix->base + ix->mark[lo] - first) > max_bytes)
		return p;
	while (hi - lo > 1) { /* mark lo fits, mark hi does not (or is none) */
		size_t mid = lo + (hi - lo) / 2;

		if ((size_t)(ix->base + ix->mark[mid] - first) > max_bytes)
			hi = mid;
		else
			lo = mid;
	}
	c = ix->base + ix->mark[lo];
	*n = (lo + 1) * ix->stride - idx;
	*last = c;
	while (KIND(*last - 1) & K_WS)
		--*last;
	return c;
}

size_t json_array_take(struct json_iter *it, size_t max, size_t max_bytes, struct json_span *span)
{
	return json_array_take_indexed(it, NULL, 0, max, max_bytes, span);
}

size_t json_array_take_indexed(struct json_iter *it, const struct json_index *ix, size_t idx,
                               size_t max, size_t max_bytes, struct json_span *span)
{
	const char *p = skip_ws(it->p, it->end), *first, *last = NULL;
	size_t n = 0;

	if (p < it->end && *p == ',')
		p = skip_ws(p + 1, it->end);
	if (p >= it->end || max == 0)
		return 0;
	first = p;
	for (;;) {
		const char *e = p;

		/* a scalar ends at a comma, a bracket or a space: the array's own ']' stops it */
		if (KIND(e) & (K_QUOTE | K_OPEN))
			e = skip_value(e, it->end);
		else
			while (!(KIND(e) & (K_COMMA | K_CLOSE | K_WS)))
				e++;
		if (n > 0 && (size_t)(e - first) > max_bytes)
			break;
		last = e;
		if (++n == max)
			break;
		p = *e == ',' ? e : skip_ws(e, it->end);
		if (p >= it->end || *p != ',')
			break;
		if (n == 1 && ix) {
			p = take_jump(ix, idx, max, max_bytes, first, p, &n, &last);
			if (n == max)
				break;
		}
		p++;
		if (KIND(p) & K_WS)
			p = skip_ws(p, it->end);
	}
	it->p = last;
	span->p = first;
	span->len = (size_t)(last - first);
	return n;
}

size_t json_array_count(struct json_span arr)
{
	const char *p = skip_ws(arr.p + 1, arr.p + arr.len - 1);
	size_t commas;

	if (arr.len < 2 || *p == ']')
		return 0;
	skip_container(arr.p + 1, &commas);
	return commas + 1;
}

int json_int(struct json_span v, int64_t *out)
{
	const char *p = v.p, *end = v.p + v.len;
	int neg = 0;
	int64_t x = 0;

	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p == end)
		return -EINVAL;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (x > JSON_INT_MAX / 10 + 1)
			x = JSON_INT_MAX + 1;
		else
			x = x * 10 + (*p - '0');
	}
	if (x > JSON_INT_MAX)
		return -ERANGE;
	*out = neg ? -x : x;
	return 0;
}

int json_double(struct json_span v, double *out)
{
	char tmp[64];
	char *e;

	if (json_type(v) != JSON_NUMBER || v.len == 0)
		return -EINVAL;
	if (v.len < sizeof(tmp)) {
		memcpy(tmp, v.p, v.len);
		tmp[v.len] = '\0';
		*out = strtod(tmp, &e);
		return 0;
	} else {
		char *big = strndup(v.p, v.len);

		if (!big)
			return -ENOMEM;
		*out = strtod(big, &e);
		free(big);
		return 0;
	}
}

int json_string_decode(struct json_span v, struct buf *out)
{
	const char *p, *end;

	buf_reset(out);
	if (json_type(v) != JSON_STRING || v.len < 2)
		return -EINVAL;
	p = v.p + 1;
	end = v.p + v.len - 1;
	if (buf_reserve(out, v.len) < 0)
		return -ENOMEM;
	out->data[0] = '\0'; /* an empty string adds nothing: terminate it here */
	while (p < end) {
		unsigned cp;
		char u[4];
		size_t n;

		if (*p != '\\') {
			const char *q = p;

			while (q < end && *q != '\\')
				q++;
			buf_add(out, p, (size_t)(q - p));
			p = q;
			continue;
		}
		p++;
		switch (*p++) {
		case 'b':
			buf_addc(out, '\b');
			continue;
		case 'f':
			buf_addc(out, '\f');
			continue;
		case 'n':
			buf_addc(out, '\n');
			continue;
		case 'r':
			buf_addc(out, '\r');
			continue;
		case 't':
			buf_addc(out, '\t');
			continue;
		case 'u':
			break;
		default:
			buf_addc(out, p[-1]);
			continue;
		}
		cp = (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 |
		                hexval(p[3]));
		p += 4;
		if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
			unsigned lo = (unsigned)(hexval(p[2]) << 12 | hexval(p[3]) << 8 |
			                         hexval(p[4]) << 4 | hexval(p[5]));
			if (lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
		}
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp = 0xfffd;
		if (cp < 0x80) {
			u[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			u[0] = (char)(0xc0 | cp >> 6);
			u[1] = (char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			u[0] = (char)(0xe0 | cp >> 12);
			u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u[2] = (char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			u[0] = (char)(0xf0 | cp >> 18);
			u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		buf_add(out, u, n);
	}
	return 0;
}

int json_string_eq(struct json_span v, const char *s)
{
	size_t n = strlen(s);

	if (json_type(v) != JSON_STRING || v.len != n + 2 || memchr(v.p, '\\', v.len))
		return 0;
	return memcmp(v.p + 1, s, n) == 0;
}
