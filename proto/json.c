/* json.c - a strict, allocation-free JSON scanner working on raw text */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* Scan a string starting at its opening quote; returns the byte after the closing one. */
static const char *scan_string(const char *p, const char *end, const char **err)
{
	p++;
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		size_t n;

		if (c == '"')
			return p + 1;
		if (c == '\\') {
			if (++p >= end)
				break;
			if (*p == 'u') {
				if (end - p < 5 || hexval(p[1]) < 0 || hexval(p[2]) < 0 ||
				    hexval(p[3]) < 0 || hexval(p[4]) < 0) {
					*err = "bad \\u escape";
					return NULL;
				}
				p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", *p) || !*p) {
				*err = "bad escape in string";
				return NULL;
			}
			p++;
			continue;
		}
		if (c < 0x20) {
			*err = "control character in string";
			return NULL;
		}
		n = buf_utf8_len((const unsigned char *)p, (const unsigned char *)end);
		if (!n) {
			*err = "invalid UTF-8 in string";
			return NULL;
		}
		p += n;
	}
	*err = "unterminated string";
	return NULL;
}

static int is_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

static const char *scan_number(const char *p, const char *end, const char **err)
{
	if (p < end && *p == '-')
		p++;
	if (!is_digit(p, end))
		goto bad;
	if (*p == '0')
		p++;
	else
		while (is_digit(p, end))
			p++;
	if (p < end && *p == '.') {
		p++;
		if (!is_digit(p, end))
			goto bad;
		while (is_digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(p, end))
			goto bad;
		while (is_digit(p, end))
			p++;
	}
	return p;
bad:
	*err = "bad number";
	return NULL;
}

static const char *scan_literal(const char *p, const char *end, const char *lit, const char **err)
{
	size_t n = strlen(lit);

	if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0) {
		*err = "unexpected character";
		return NULL;
	}
	return p + n;
}

/*
 * Iterative scanner: stack[] holds the open containers ('[' or '{'); after each
 * value we look at the innermost container for ',' or its closing bracket.
 */
int json_validate(const char *p, const char *end, struct json_span *value, const char **errmsg,
                  size_t *erroff)
{
	char stack[JSON_MAX_DEPTH];
	int depth = 0;
	const char *start = p, *vstart;
	const char *err = NULL;

	p = skip_ws(p, end);
	vstart = p;
	for (;;) {
		/* expect a value */
		p = skip_ws(p, end);
		if (p >= end) {
			err = "unexpected end of input";
			goto fail;
		}
		switch (*p) {
		case '{':
		case '[':
			if (depth >= JSON_MAX_DEPTH) {
				err = "nesting too deep";
				goto fail;
			}
			stack[depth++] = *p;
			p = skip_ws(p + 1, end);
			if (p < end && (*p == ']' || *p == '}') && *p == stack[depth - 1] + 2) {
				p++;
				depth--;
				break;
			}
			if (stack[depth - 1] == '{') {
				if (p >= end || *p != '"') {
					err = "expected a string key";
					goto fail;
				}
				if (!(p = scan_string(p, end, &err)))
					goto fail_nopos;
				p = skip_ws(p, end);
				if (p >= end || *p != ':') {
					err = "expected ':'";
					goto fail;
				}
				p++;
			}
			continue;
		case '"':
			if (!(p = scan_string(p, end, &err)))
				goto fail_nopos;
			break;
		case 't':
			p = scan_literal(p, end, "true", &err);
			break;
		case 'f':
			p = scan_literal(p, end, "false", &err);
			break;
		case 'n':
			p = scan_literal(p, end, "null", &err);
			break;
		default:
			if (*p == '-' || (*p >= '0' && *p <= '9')) {
				p = scan_number(p, end, &err);
			} else {
				err = "unexpected character";
				goto fail;
			}
		}
		if (!p)
			goto fail_nopos;
		/* after a value: close containers or move to the next element */
		for (;;) {
			if (depth == 0) {
				value->p = vstart;
				value->len = (size_t)(p - vstart);
				p = skip_ws(p, end);
				if (p != end) {
					err = "trailing characters after the value";
					goto fail;
				}
				return 0;
			}
			p = skip_ws(p, end);
			if (p >= end) {
				err = "unexpected end of input";
				goto fail;
			}
			if (*p == stack[depth - 1] + 2) {
				p++;
				depth--;
				continue;
			}
			if (*p != ',') {
				err = stack[depth - 1] == '[' ? "expected ',' or ']'"
				                              : "expected ',' or '}'";
				goto fail;
			}
			p = skip_ws(p + 1, end);
			if (stack[depth - 1] == '{') {
				if (p >= end || *p != '"') {
					err = "expected a string key";
					goto fail;
				}
				if (!(p = scan_string(p, end, &err)))
					goto fail_nopos;
				p = skip_ws(p, end);
				if (p >= end || *p != ':') {
					err = "expected ':'";
					goto fail;
				}
				p++;
			}
			break;
		}
	}
fail_nopos:
	p = NULL;
fail:
	*errmsg = err;
	*erroff = p ? (size_t)(p - start) : 0;
	return -EINVAL;
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

/* End of the validated value at p: strings and brackets are matched, nothing more is checked. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	do {
		switch (*p) {
		case '"':
			for (p++; *p != '"'; p++)
				if (*p == '\\')
					p++;
			p++;
			break;
		case '[':
		case '{':
			depth++;
			p++;
			break;
		case ']':
		case '}':
			depth--;
			p++;
			break;
		default:
			if (depth == 0) {
				while (p < end && *p != ',' && *p != ']' && *p != '}' &&
				       *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
					p++;
				return p;
			}
			p++;
		}
	} while (depth > 0);
	return p;
}

int json_array_next(struct json_iter *it, struct json_span *elem)
{
	const char *p = skip_ws(it->p, it->end);

	if (p < it->end && *p == ',')
		p = skip_ws(p + 1, it->end);
	if (p >= it->end)
		return 0;
	elem->p = p;
	p = skip_value(p, it->end);
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

size_t json_array_count(struct json_span arr)
{
	struct json_iter it;
	struct json_span e;
	size_t n = 0;

	json_iter_init(&it, arr);
	while (json_array_next(&it, &e))
		n++;
	return n;
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
