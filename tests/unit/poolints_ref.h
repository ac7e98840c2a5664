/* poolints_ref.h - the general path of a map reply's integers, for tests of the fast reader */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "poolints.h"

/*
 * What libpoolclient does with a whole reply line (no newline) when the fast
 * reader passes it on: validate it as one object (json_validate), take the
 * first "id", "ok" and "results" members, and read the results with
 * poolints_results() from index base on (the results before it left the
 * line: poolints_retire()). 1 with out[base..n) set when the line is the ok
 * reply to request id with n integer results within +-2^53, else 0.
 */
static inline int poolints_ref_read(const char *line, size_t len, int64_t id, int64_t *out,
                                    size_t n, size_t base)
{
	struct json_span v, k, val, idv = {0}, ok = {0}, res = {0}, bad;
	struct json_iter it;
	const char *msg;
	size_t off;
	int64_t got;

	if (json_validate(line, line + len, &v, &msg, &off) < 0 || json_type(v) != JSON_OBJECT)
		return 0;
	json_iter_init(&it, v);
	while (json_object_next(&it, &k, &val)) {
		if (!idv.p && json_string_eq(k, "id"))
			idv = val;
		else if (!ok.p && json_string_eq(k, "ok"))
			ok = val;
		else if (!res.p && json_string_eq(k, "results"))
			res = val;
	}
	if (!idv.p || json_int(idv, &got) < 0 || got != id || !ok.p || json_type(ok) != JSON_TRUE ||
	    !res.p || json_type(res) != JSON_ARRAY)
		return 0;
	return poolints_results(res, out + base, n - base, &off, &bad) == 0;
}

/* What a reader made of a text fed to it (poolints_ref_run). */
struct poolints_outcome {
	int verdict;
	size_t off, base;
	char *line; /* the line as the reader left it (poolints_retire()), the bytes not fed
	               appended */
	size_t len;
};

/*
 * Feed text (len bytes) to a fresh reader for request id with n results into
 * out, the bytes received growing by step(ctx, left) bytes at a time (1 to
 * left), until it says DONE or SLOW or the text is all fed; with retire, the
 * results read are dropped after each step, as libpoolclient does. Short
 * lines are fed from exact-size copies, so that a read past the bytes
 * received shows under AddressSanitizer. The caller frees o.line.
 */
static inline struct poolints_outcome poolints_ref_run(const char *text, size_t len, int64_t id,
                                                       int64_t *out, size_t n,
                                                       size_t (*step)(void *ctx, size_t left),
                                                       void *ctx, int retire)
{
	struct poolints_reader r;
	struct poolints_outcome o = {POOLINTS_MORE, 0, 0, malloc(len + 1), 0};
	size_t fed = 0;

	if (!o.line)
		abort();
	poolints_init(&r, id, out, n);
	while (o.verdict == POOLINTS_MORE && fed < len) {
		size_t k = step(ctx, len - fed);

		k = k < 1 ? 1 : k > len - fed ? len - fed : k;
		memcpy(o.line + o.len, text + fed, k);
		o.len += k;
		fed += k;
		if (o.len <= 4096) {
			char *copy = malloc(o.len);

			if (!copy)
				abort();
			memcpy(copy, o.line, o.len);
			o.verdict = poolints_feed(&r, copy, o.len);
			free(copy);
		} else {
			o.verdict = poolints_feed(&r, o.line, o.len);
		}
		if (o.verdict == POOLINTS_MORE && retire)
			o.len -= poolints_retire(&r, o.line, o.len);
	}
	memcpy(o.line + o.len, text + fed, len - fed);
	o.len += len - fed;
	o.off = r.off;
	o.base = r.base;
	return o;
}

/*
 * The general path on the first line of o (-1: no newline), results into
 * out[o.base..n): for a reader that dropped results, what libpoolclient reads.
 */
static inline int poolints_ref_first_line(const struct poolints_outcome *o, int64_t id,
                                          int64_t *out, size_t n)
{
	const char *nl = memchr(o->line, '\n', o->len);

	return nl ? poolints_ref_read(o->line, (size_t)(nl - o->line), id, out, n, o->base) : -1;
}
