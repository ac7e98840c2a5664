/* poolints.h - libpoolclient's integer path: a map of int64s written and read without copies */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

/* The index of the first of items[0..n) beyond +-2^53; n when none is. */
size_t poolints_check_range(const int64_t *items, size_t n);
/*
 * Append items[from..to) of an array of integers within +-2^53 (checked
 * before) to b, each after a ',' but the array's first (index 0), written in
 * place (no validation: the text is known good). Returns 0 or -ENOMEM.
 */
int poolints_add_items(struct buf *b, const int64_t *items, size_t from, size_t to);

/* What poolints_feed() found in the bytes of a reply line so far. */
enum poolints_verdict {
	POOLINTS_MORE, /* every byte so far has the fast shape; more are needed */
	POOLINTS_DONE, /* the whole line had it: out[0..n) are the results */
	POOLINTS_SLOW, /* the line is something else: read it the general way */
};

/*
 * The fast reader of one reply line, fed while it arrives. The fast shape is
 * exactly {"id":ID,"ok":true,"results":[R0,...]} and a newline: n elements,
 * each an integer literal (-?(0|[1-9][0-9]*)) within +-2^53, no whitespace.
 * Any other line, valid or not (another id, an error, a float, a count other
 * than n, a space), is POOLINTS_SLOW; the general path then decides.
 * Whatever line it accepts, the general path accepts with the same results.
 */
struct poolints_reader {
	int64_t *out; /* the results, out[0..n) */
	size_t n;
	size_t got;  /* results read so far */
	size_t base; /* results whose text poolints_retire() dropped from the line */
	size_t off;  /* bytes of the line taken so far (or, after SLOW, known to hold no newline) */
	int state;
	size_t headlen;
	char head[64]; /* {"id":ID,"ok":true,"results":[ */
};

/* Set up r for the reply to request id, its n results going to out. */
void poolints_init(struct poolints_reader *r, int64_t id, int64_t *out, size_t n);
/* Forget the line read so far: the next feed starts a new one. */
void poolints_restart(struct poolints_reader *r);
/*
 * Read on in a reply line: line[0..avail) are its bytes received so far (the
 * same line each call, only longer; the reader goes on where it stopped).
 * Returns an enum poolints_verdict. DONE: the line and its newline are
 * line[0..r->off). SLOW: line[0..r->off) holds no newline.
 */
int poolints_feed(struct poolints_reader *r, const char *line, size_t avail);

/*
 * Drop from the line the text of the results read, all but the last one, so
 * that a long reply need not stay whole in memory: line[0..avail) are the
 * bytes received, the rest moves up. Returns how many bytes went (0 when
 * there was nothing to drop). The line keeps its head, '[' and the last
 * result read before the elements not read yet, so the general path, if it
 * must read it, finds the same verdict on the rest: it reads the results
 * from index r->base on.
 */
size_t poolints_retire(struct poolints_reader *r, char *line, size_t avail);

/*
 * The general path: the validated array results into out[0..n). Returns 0;
 * -POOL_EPROTO when it has another count than n (*index = its count, nothing
 * written); -POOL_EJOB when element *index is the first that is not an
 * integer within +-2^53 (*bad = its text; the elements before it are written).
 */
int poolints_results(struct json_span results, int64_t *out, size_t n, size_t *index,
                     struct json_span *bad);
