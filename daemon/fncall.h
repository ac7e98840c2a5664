/* fncall.h - one call of a module function: the poold_* API of poold/module.h */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"
#include "poold/module.h"
#include "proto.h"

/* A container being built by poold_out_*_begin. */
struct fncall_level {
	unsigned char object;    /* an object (else an array) */
	unsigned char after_key; /* object: a key was written, its value is due */
	unsigned char any;       /* something was written: the next one needs a comma */
};

/*
 * The state of one call, opaque to modules. The worker keeps one and reuses
 * it (its decoded-string buffers survive from call to call).
 */
struct poold_call {
	const char *fn_name;
	int argc;
	struct poold_value argv[POOLD_MAX_ARGS];
	uint32_t attempt;
	struct buf *out; /* where the result goes, after what is there already */
	size_t mark;     /* out->len when the call began */
	size_t limit;    /* most bytes the result may take */
	struct proto_error *err;
	int failed; /* err is set: everything else is refused */
	int n_top;  /* top-level values written (one allowed) */
	int depth;
	struct fncall_level level[JSON_MAX_DEPTH];
	struct buf *strs; /* decoded strings, one buffer each */
	size_t n_strs;    /* buffers in use in this call */
	size_t cap_strs;  /* buffers allocated */
};

/* Release what c owns (its string buffers). */
void fncall_deinit(struct poold_call *c);

/*
 * Set the call's arguments from item: its elements when spread (star, apply),
 * else the item itself. Returns the number of arguments found (it may be
 * more than POOLD_MAX_ARGS, then only the first are kept).
 */
size_t fncall_set_args(struct poold_call *c, struct json_span item, int spread);

/*
 * Run f on the arguments set, appending its result to out (at most limit
 * bytes). Returns 0 with exactly one JSON value appended, or -1 with err set
 * and out as it was: a failure, an arity error, or a misuse of the API.
 */
int fncall_run(struct poold_call *c, const struct poold_function *f, const char *name, size_t nargs,
               uint32_t attempt, struct buf *out, size_t limit, struct proto_error *err);
