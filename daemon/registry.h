/* registry.h - the table of functions workers can run; modules plug in here */
#pragma once

#include <stdint.h>

#include "buf.h"
#include "json.h"
#include "proto.h"

#define FN_MAX_ARGS 16

/* One call: the arguments as raw JSON, the output buffer, the error slot. */
struct fn_call {
	int argc;
	struct json_span argv[FN_MAX_ARGS];
	uint32_t attempt; /* 0 on the first attempt of this item */
	struct buf *out;  /* append exactly one JSON value */
	struct proto_error *err;
};

/* Returns 0 with one value appended to out, or -1 with err set (see fn_fail). */
typedef int (*fn_impl)(struct fn_call *c);

struct fn_def {
	const char *name;
	int min_args;
	int max_args;
	const char *doc; /* one line */
	fn_impl fn;
};

/* A named set of functions, e.g. "std"; the list ends with a NULL name. */
struct fn_set {
	const char *name;
	const struct fn_def *defs;
};

/* Look a function up by name; NULL when unknown. */
const struct fn_def *registry_find(const char *name, size_t len);
/* Call cb for every registered function, in registration order. */
void registry_foreach(void (*cb)(const struct fn_def *def, void *arg), void *arg);

/* Helpers for implementations: fail with a code and message (returns -1). */
int fn_fail(struct fn_call *c, enum proto_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Argument i as an exact integer (type_error / out_of_range on failure). */
int fn_arg_int(struct fn_call *c, int i, int64_t *out);
/* Argument i as a number; *is_int tells whether it was an integer literal (then *iv holds it). */
int fn_arg_num(struct fn_call *c, int i, double *dv, int *is_int, int64_t *iv);
/* Append an integer result, out_of_range beyond 2^53. */
int fn_out_int(struct fn_call *c, int64_t v);
/* Append a float result, function_error when not finite. */
int fn_out_double(struct fn_call *c, double v);
