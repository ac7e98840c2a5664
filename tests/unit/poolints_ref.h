/* poolints_ref.h - the general path of a map reply's integers, for tests of the fast reader */
#pragma once

#include <stddef.h>
#include <stdint.h>

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
