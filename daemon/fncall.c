/* fncall.c - one call of a module function: the poold_* API of poold/module.h */
#include "fncall.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_code(struct poold_call *c, enum proto_code code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The first failure wins: later ones (and any output) are ignored. */
static int fail_code(struct poold_call *c, enum proto_code code, const char *fmt, va_list ap)
{
	if (c->failed)
		return -1;
	c->failed = 1;
	c->err->code = code;
	c->err->index = -1;
	vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
	return -1;
}

static int fail(struct poold_call *c, enum proto_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct poold_call *c, enum proto_code code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fail_code(c, code, fmt, ap);
	va_end(ap);
	return r;
}

int poold_fail(struct poold_call *c, enum poold_error code, const char *fmt, ...)
{
	static const enum proto_code codes[] = {
	    [POOLD_FUNCTION_ERROR] = PROTO_FUNCTION_ERROR,
	    [POOLD_TYPE_ERROR] = PROTO_TYPE_ERROR,
	    [POOLD_OUT_OF_RANGE] = PROTO_OUT_OF_RANGE,
	};
	enum proto_code pc =
	    (unsigned)code < sizeof(codes) / sizeof(codes[0]) ? codes[code] : PROTO_FUNCTION_ERROR;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fail_code(c, pc, fmt, ap);
	va_end(ap);
	return r;
}

static struct json_span span(struct poold_value v)
{
	return (struct json_span){v.json, v.len};
}

/* ------------------------------------------------------------- arguments */

int poold_argc(const struct poold_call *c)
{
	return c->argc;
}

struct poold_value poold_arg(const struct poold_call *c, int i)
{
	if (i < 0 || i >= c->argc)
		return (struct poold_value){NULL, 0};
	return c->argv[i];
}

unsigned poold_attempt(const struct poold_call *c)
{
	return c->attempt;
}

const char *poold_function_name(const struct poold_call *c)
{
	return c->fn_name;
}

enum poold_type poold_type(struct poold_value v)
{
	if (!v.json || !v.len)
		return POOLD_NULL;
	return (enum poold_type)json_type(span(v));
}

/* What a message names for a value that is not an argument. */
#define WHAT_VALUE INT_MIN

/*
 * The name of what is read, for the messages: "argument N" for argument
 * arg (0-based), "value" for WHAT_VALUE. Built only when a message needs it.
 */
struct what {
	char s[32];
};

static const char *what_name(struct what *w, int arg)
{
	if (arg == WHAT_VALUE)
		return "value";
	snprintf(w->s, sizeof(w->s), "argument %d", arg + 1);
	return w->s;
}

/*
 * A plain decimal integer literal of at most 15 digits (always within 2^53):
 * 0 with *out set, or -1 for anything else (sign only '-', no fraction or
 * exponent), which the caller then reads the general way.
 */
static inline int small_int(struct poold_value v, int64_t *out)
{
	const char *p = v.json, *end = v.json + v.len;
	int neg = p < end && *p == '-';
	int64_t x = 0;

	p += neg;
	if (p == end || end - p > 15)
		return -1;
	for (; p < end; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (d > 9)
			return -1;
		x = x * 10 + d;
	}
	*out = neg ? -x : x;
	return 0;
}

static int get_int(struct poold_call *c, struct poold_value v, int arg, int64_t *out)
{
	struct what w;
	int r;

	if (v.len && small_int(v, out) == 0)
		return 0;
	if (poold_type(v) != POOLD_NUMBER)
		return fail(c, PROTO_TYPE_ERROR, "%s must be an integer", what_name(&w, arg));
	r = json_int(span(v), out);
	if (r == -ERANGE)
		return fail(c, PROTO_OUT_OF_RANGE, "%s is beyond 2^53", what_name(&w, arg));
	if (r < 0)
		return fail(c, PROTO_TYPE_ERROR, "%s must be an integer, not %.*s",
		            what_name(&w, arg), (int)(v.len > 32 ? 32 : v.len), v.json);
	return 0;
}

static int get_number(struct poold_call *c, struct poold_value v, int arg, double *d, int *is_int,
                      int64_t *iv)
{
	struct what w;
	int64_t i;
	int r;

	if (is_int && v.len && small_int(v, &i) == 0) {
		*is_int = 1;
		if (iv)
			*iv = i;
		*d = (double)i;
		return 0;
	}
	if (poold_type(v) != POOLD_NUMBER)
		return fail(c, PROTO_TYPE_ERROR, "%s must be a number", what_name(&w, arg));
	if (!is_int)
		return json_double(span(v), d) < 0
		           ? fail(c, PROTO_TYPE_ERROR, "%s must be a number", what_name(&w, arg))
		           : 0;
	r = json_int(span(v), &i);
	if (r == -ERANGE)
		return fail(c, PROTO_OUT_OF_RANGE,
		            "%s is an integer beyond 2^53; pass it as a float (e.g. 1e20) if "
		            "precision does not matter",
		            what_name(&w, arg));
	*is_int = r == 0;
	if (*is_int) {
		if (iv)
			*iv = i;
		*d = (double)i;
	} else if (json_double(span(v), d) < 0) {
		return fail(c, PROTO_TYPE_ERROR, "%s must be a number", what_name(&w, arg));
	}
	return 0;
}

static int get_string(struct poold_call *c, struct poold_value v, int arg, const char **s,
                      size_t *len)
{
	struct what w;
	struct buf *b;

	if (poold_type(v) != POOLD_STRING)
		return fail(c, PROTO_TYPE_ERROR, "%s must be a string", what_name(&w, arg));
	if (c->n_strs == c->cap_strs) {
		size_t cap = c->cap_strs ? c->cap_strs * 2 : 4;
		struct buf *p = realloc(c->strs, cap * sizeof(*p));

		if (!p)
			return fail(c, PROTO_INTERNAL, "out of memory");
		memset(p + c->cap_strs, 0, (cap - c->cap_strs) * sizeof(*p));
		c->strs = p;
		c->cap_strs = cap;
	}
	b = &c->strs[c->n_strs];
	if (json_string_decode(span(v), b) < 0 || !b->data)
		return fail(c, PROTO_INTERNAL, "out of memory");
	c->n_strs++;
	*s = b->data;
	if (len)
		*len = b->len;
	return 0;
}

int poold_int(struct poold_call *c, struct poold_value v, int64_t *out)
{
	return get_int(c, v, WHAT_VALUE, out);
}

int poold_arg_int(struct poold_call *c, int i, int64_t *out)
{
	return get_int(c, poold_arg(c, i), i, out);
}

int poold_number(struct poold_call *c, struct poold_value v, double *d, int *is_int, int64_t *iv)
{
	return get_number(c, v, WHAT_VALUE, d, is_int, iv);
}

int poold_arg_number(struct poold_call *c, int i, double *d, int *is_int, int64_t *iv)
{
	return get_number(c, poold_arg(c, i), i, d, is_int, iv);
}

int poold_string(struct poold_call *c, struct poold_value v, const char **s, size_t *len)
{
	return get_string(c, v, WHAT_VALUE, s, len);
}

int poold_arg_string(struct poold_call *c, int i, const char **s, size_t *len)
{
	return get_string(c, poold_arg(c, i), i, s, len);
}

int poold_bool(struct poold_call *c, struct poold_value v, int *b)
{
	enum poold_type t = poold_type(v);

	if (t != POOLD_TRUE && t != POOLD_FALSE)
		return fail(c, PROTO_TYPE_ERROR, "value must be true or false");
	*b = t == POOLD_TRUE;
	return 0;
}

int poold_string_eq(struct poold_value v, const char *s)
{
	return poold_type(v) == POOLD_STRING && json_string_eq(span(v), s);
}

int poold_iter_init(struct poold_call *c, struct poold_value v, struct poold_iter *it)
{
	struct json_iter ji;
	enum poold_type t = poold_type(v);

	*it = (struct poold_iter){NULL, NULL, 0};
	if (t != POOLD_ARRAY && t != POOLD_OBJECT)
		return fail(c, PROTO_TYPE_ERROR, "value must be an array or an object");
	json_iter_init(&ji, span(v));
	it->p = ji.p;
	it->end = ji.end;
	it->object = t == POOLD_OBJECT;
	return 0;
}

int poold_array_next(struct poold_iter *it, struct poold_value *elem)
{
	struct json_iter ji = {it->p, it->end};
	struct json_span e;
	int r;

	if (!it->p || it->object)
		return 0;
	r = json_array_next(&ji, &e);

	it->p = ji.p;
	if (r)
		*elem = (struct poold_value){e.p, e.len};
	return r;
}

int poold_object_next(struct poold_iter *it, struct poold_value *key, struct poold_value *val)
{
	struct json_iter ji = {it->p, it->end};
	struct json_span k, v;
	int r;

	if (!it->p || !it->object)
		return 0;
	r = json_object_next(&ji, &k, &v);

	it->p = ji.p;
	if (r) {
		*key = (struct poold_value){k.p, k.len};
		*val = (struct poold_value){v.p, v.len};
	}
	return r;
}

size_t poold_array_len(struct poold_value v)
{
	return poold_type(v) == POOLD_ARRAY ? json_array_count(span(v)) : 0;
}

/* ---------------------------------------------------------------- output */

/* Before any value: one top-level value, a key before each member, commas. */
static int before_value(struct poold_call *c)
{
	struct fncall_level *l;

	if (c->failed)
		return -1;
	if (c->depth == 0) {
		if (c->n_top)
			return fail(c, PROTO_FUNCTION_ERROR,
			            "%s: a function returns one value; a second was appended",
			            c->fn_name);
		c->n_top = 1;
		return 0;
	}
	l = &c->level[c->depth - 1];
	if (l->object) {
		if (!l->after_key)
			return fail(c, PROTO_FUNCTION_ERROR,
			            "%s: a member of an object needs poold_out_key first",
			            c->fn_name);
		l->after_key = 0;
		return 0;
	}
	if (l->any && buf_addc(c->out, ',') < 0)
		return fail(c, PROTO_INTERNAL, "out of memory");
	l->any = 1;
	return 0;
}

/* After appending: out of memory and the size limit end the call. */
static int after(struct poold_call *c, int r)
{
	if (r < 0)
		return fail(c, PROTO_INTERNAL, "out of memory");
	if (c->out->len - c->mark > c->limit)
		return fail(c, PROTO_RESULT_TOO_LARGE, "the result does not fit in a message");
	return 0;
}

int poold_out_int(struct poold_call *c, int64_t v)
{
	if (v > JSON_INT_MAX || v < -JSON_INT_MAX)
		return fail(c, PROTO_OUT_OF_RANGE, "integer result beyond 2^53");
	if (before_value(c) < 0)
		return -1;
	return after(c, buf_add_int(c->out, v));
}

int poold_out_double(struct poold_call *c, double v)
{
	if (!isfinite(v))
		return fail(c, PROTO_FUNCTION_ERROR, "result is not a finite number");
	if (before_value(c) < 0)
		return -1;
	return after(c, buf_add_double(c->out, v));
}

int poold_out_bool(struct poold_call *c, int b)
{
	if (before_value(c) < 0)
		return -1;
	return after(c, buf_adds(c->out, b ? "true" : "false"));
}

int poold_out_null(struct poold_call *c)
{
	if (before_value(c) < 0)
		return -1;
	return after(c, buf_adds(c->out, "null"));
}

int poold_out_string(struct poold_call *c, const char *s, size_t len)
{
	if (before_value(c) < 0)
		return -1;
	return after(c, buf_add_json_string(c->out, s, len));
}

int poold_out_json(struct poold_call *c, const char *json, size_t len)
{
	struct json_span v;
	const char *msg = NULL;
	size_t off = 0;

	if (c->failed)
		return -1;
	if (!json || json_validate(json, json + len, &v, &msg, &off) < 0)
		return fail(c, PROTO_FUNCTION_ERROR,
		            "%s: poold_out_json: not one JSON value (%s at byte %zu)", c->fn_name,
		            msg ? msg : "no text", off);
	if (before_value(c) < 0)
		return -1;
	return after(c, buf_add(c->out, v.p, v.len));
}

static int begin(struct poold_call *c, int object)
{
	if (c->failed)
		return -1;
	if (c->depth == JSON_MAX_DEPTH)
		return fail(c, PROTO_FUNCTION_ERROR, "%s: result nested deeper than %d", c->fn_name,
		            JSON_MAX_DEPTH);
	if (before_value(c) < 0)
		return -1;
	c->level[c->depth++] = (struct fncall_level){.object = (unsigned char)object};
	return after(c, buf_addc(c->out, object ? '{' : '['));
}

static int end(struct poold_call *c, int object)
{
	struct fncall_level *l;

	if (c->failed)
		return -1;
	l = c->depth ? &c->level[c->depth - 1] : NULL;
	if (!l || l->object != object || l->after_key)
		return fail(c, PROTO_FUNCTION_ERROR, "%s: poold_out_%s_end without its begin%s",
		            c->fn_name, object ? "object" : "array",
		            l && l->after_key ? " (a key without its value)" : "");
	c->depth--;
	return after(c, buf_addc(c->out, object ? '}' : ']'));
}

int poold_out_array_begin(struct poold_call *c)
{
	return begin(c, 0);
}

int poold_out_array_end(struct poold_call *c)
{
	return end(c, 0);
}

int poold_out_object_begin(struct poold_call *c)
{
	return begin(c, 1);
}

int poold_out_object_end(struct poold_call *c)
{
	return end(c, 1);
}

int poold_out_key(struct poold_call *c, const char *key, size_t len)
{
	struct fncall_level *l;
	int r;

	if (c->failed)
		return -1;
	l = c->depth ? &c->level[c->depth - 1] : NULL;
	if (!l || !l->object || l->after_key)
		return fail(c, PROTO_FUNCTION_ERROR, "%s: poold_out_key %s", c->fn_name,
		            l && l->after_key ? "twice without a value between"
		                              : "outside an object");
	r = l->any ? buf_addc(c->out, ',') : 0;
	if (r == 0)
		r = buf_add_json_string(c->out, key, len);
	if (r == 0)
		r = buf_addc(c->out, ':');
	l->any = 1;
	l->after_key = 1;
	return after(c, r);
}

/* ------------------------------------------------------------ the worker */

void fncall_deinit(struct poold_call *c)
{
	size_t i;

	for (i = 0; i < c->cap_strs; i++)
		buf_free(&c->strs[i]);
	free(c->strs);
	c->strs = NULL;
	c->n_strs = c->cap_strs = 0;
}

size_t fncall_set_args(struct poold_call *c, struct json_span item, int spread)
{
	struct json_iter it;
	struct json_span e;
	size_t n = 0;

	if (!spread) {
		c->argv[0] = (struct poold_value){item.p, item.len};
		c->argc = 1;
		return 1;
	}
	json_iter_init(&it, item);
	while (json_array_next(&it, &e)) {
		if (n < POOLD_MAX_ARGS)
			c->argv[n] = (struct poold_value){e.p, e.len};
		n++;
	}
	c->argc = n < POOLD_MAX_ARGS ? (int)n : POOLD_MAX_ARGS;
	return n;
}

int fncall_run(struct poold_call *c, const struct poold_function *f, const char *name, size_t nargs,
               uint32_t attempt, struct buf *out, size_t limit, struct proto_error *err)
{
	int r;

	c->fn_name = name;
	c->attempt = attempt;
	c->out = out;
	c->mark = out->len;
	c->limit = limit;
	c->err = err;
	c->failed = 0;
	c->n_top = 0;
	c->depth = 0;
	c->n_strs = 0;
	if (nargs < (size_t)f->min_args || nargs > (size_t)f->max_args) {
		fail(c, PROTO_BAD_ARITY, "%s takes %d to %d arguments, got %zu", name, f->min_args,
		     f->max_args, nargs);
		return -1;
	}
	r = f->fn(c);
	if (!c->failed) {
		if (r != 0)
			fail(c, PROTO_FUNCTION_ERROR, "%s failed (returned %d) without a message",
			     name, r);
		else if (!c->n_top)
			fail(c, PROTO_FUNCTION_ERROR, "%s returned no value", name);
		else if (c->depth)
			fail(c, PROTO_FUNCTION_ERROR, "%s left an %s open", name,
			     c->level[c->depth - 1].object ? "object" : "array");
	}
	if (c->failed) {
		out->len = c->mark;
		if (out->data)
			out->data[out->len] = '\0';
		return -1;
	}
	return 0;
}
