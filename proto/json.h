/* json.h - a strict, allocation-free JSON scanner working on raw text */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Deepest nesting of arrays and objects accepted anywhere. */
#define JSON_MAX_DEPTH 256
/* Largest integer carried exactly (2^53, as in IEEE doubles and JavaScript). */
#define JSON_INT_MAX 9007199254740992LL

enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/* A stretch of raw JSON text: one value, or a string with its quotes. */
struct json_span {
	const char *p;
	size_t len;
};

struct json_iter {
	const char *p;
	const char *end;
};

/*
 * Validate exactly one JSON value in [p, end), whitespace allowed around it.
 * RFC 8259 grammar, strings must be valid UTF-8, nesting at most JSON_MAX_DEPTH.
 * Returns 0 and the value's span, or -EINVAL with *errmsg and *erroff set.
 */
int json_validate(const char *p, const char *end, struct json_span *value, const char **errmsg,
                  size_t *erroff);
/*
 * Validate the one JSON value that starts at p (whitespace allowed before it)
 * and find where it ends; the bytes after it are not looked at. Returns 0 and
 * the value's span, or -EINVAL with *errmsg and *erroff set.
 */
int json_validate_prefix(const char *p, const char *end, struct json_span *value,
                         const char **errmsg, size_t *erroff);
/*
 * Validate the one object in [p, end) (whitespace allowed around it) in one
 * pass, member by member, recording the key and value spans of the first
 * max members in keys and vals; *n counts them all. Returns 0 with *obj set,
 * or -EINVAL when the text is not exactly one valid object (json_validate
 * says why). A member's value may nest JSON_MAX_DEPTH levels below the
 * object, one more than json_validate allows.
 */
int json_object_scan(const char *p, const char *end, struct json_span *obj, struct json_span *keys,
                     struct json_span *vals, size_t max, size_t *n);
/*
 * Marks an index holds at most (even); past that it keeps every other one
 * and doubles its stride. Smaller values (fuzzers) exercise the same code.
 */
#ifndef JSON_INDEX_MARKS
#define JSON_INDEX_MARKS 1024
#endif
/* A new index marks every this many elements (at least 1). */
#ifndef JSON_INDEX_STRIDE
#define JSON_INDEX_STRIDE 64
#endif

/*
 * Where the elements of one array lie in its text, without a walk: filled by
 * json_scan (json_scan_index) for the "args" member of a top-level object as
 * it validates the line, so that its elements are counted and chunks of them
 * cut without walking them again. Offsets count from base (set by the user
 * of the index once the text is in place); memory is bounded: mark holds
 * at most JSON_INDEX_MARKS offsets whatever the array's length.
 */
struct json_index {
	const char *base; /* the text the offsets count from */
	size_t start;     /* the array's '[' */
	size_t end;       /* the byte after its ']', 0 while not found or not complete */
	size_t count;     /* its elements */
	size_t stride;    /* mark[i]: the comma after element (i + 1) x stride - 1 */
	size_t n_marks;
	size_t *mark; /* the user's room for JSON_INDEX_MARKS offsets */
};

/*
 * The same validation fed in slices as bytes arrive (a line read from a
 * socket): the work is done once, as the bytes come, and a line is known
 * valid or bad as soon as its last byte is there. Offsets count from the
 * first byte fed.
 */
struct json_scan {
	size_t off;      /* bytes fed so far */
	size_t vstart;   /* the top-level value: its first byte */
	size_t vend;     /* and the byte after it, once it is complete */
	const char *err; /* after an error: what */
	size_t erroff;   /* and the offset of the byte at fault */
	const char *lit; /* the literal being matched */
	int depth;
	uint8_t state;
	uint8_t in_key;        /* the string being scanned is an object key */
	uint8_t need;          /* bytes still due: UTF-8 continuation, hex digits, literal index */
	uint8_t lo, hi;        /* range of the next UTF-8 continuation byte */
	uint8_t ix_phase;      /* where the scan stands in finding the indexed array */
	struct json_index *ix; /* the index being filled, NULL when none was asked for */
	size_t ix_key;         /* offset of the depth-1 key being read */
	char ix_kbuf[4];       /* its bytes from earlier slices */
	uint8_t ix_klen;       /* how many (5: more than 4) */
	size_t ix_left;        /* commas of the array until its next mark */
	char stack[JSON_MAX_DEPTH];
};

void json_scan_init(struct json_scan *s);
/*
 * After json_scan_init, before the first byte: fill ix (ix->mark set by the
 * caller, with room for JSON_INDEX_MARKS) with the "args" array of the
 * top-level object while validating. The scan accepts and refuses exactly
 * what it would without an index. ix->end stays 0 when the value is no such
 * object or its first "args" member is not an array.
 */
void json_scan_index(struct json_scan *s, struct json_index *ix);
/* Feed the next n bytes. Returns 0 while they are valid so far, -EINVAL at the first error. */
int json_scan_feed(struct json_scan *s, const char *p, size_t n);
/* The input ended: 0 when it held exactly one complete value, else -EINVAL. */
int json_scan_end(struct json_scan *s);
/*
 * 1 when [p, end) is exactly an array of integer literals without
 * whitespace (so a valid JSON value on one line), *count set to its length;
 * 0 for anything else, valid or not. The fast path of arrays of integers.
 */
int json_int_array(const char *p, const char *end, size_t *count);
/* Type of a validated value. */
enum json_type json_type(struct json_span v);
/* Start iterating a validated array or object. */
void json_iter_init(struct json_iter *it, struct json_span v);
/* Next element of an array: 1 with *elem set, 0 at the end. */
int json_array_next(struct json_iter *it, struct json_span *elem);
/* Next member of an object: 1 with *key (quoted) and *val set, 0 at the end. */
int json_object_next(struct json_iter *it, struct json_span *key, struct json_span *val);
/*
 * json_object_next, and when the value is an array its number of elements in
 * *count (0 otherwise), found by the same pass that finds its end.
 */
int json_object_next_count(struct json_iter *it, struct json_span *key, struct json_span *val,
                           size_t *count);
/*
 * json_object_next_count, but the array that ix found (when ix is not NULL
 * and ix->end is set) is skipped at once and its count taken from ix.
 */
int json_object_next_known(struct json_iter *it, struct json_span *key, struct json_span *val,
                           size_t *count, const struct json_index *ix);
/*
 * The next elements of an array being iterated, at most max of them, in one
 * pass: it stops before an element that would make the span longer than
 * max_bytes (the first is always taken). Returns how many were taken (0 at
 * the end), *span running from the first one's start to the last one's end.
 */
size_t json_array_take(struct json_iter *it, size_t max, size_t max_bytes, struct json_span *span);
/*
 * json_array_take with the same result, on the array that ix indexes: idx
 * is the index of the next element of it. Fewer than ix->stride elements
 * are walked, however many are taken. ix NULL: json_array_take.
 */
size_t json_array_take_indexed(struct json_iter *it, const struct json_index *ix, size_t idx,
                               size_t max, size_t max_bytes, struct json_span *span);
/* Number of elements of a validated array. */
size_t json_array_count(struct json_span arr);
/*
 * An integer literal (no fraction, no exponent) as int64: 0, -EINVAL when v is
 * not an integer literal, -ERANGE when |v| > 2^53.
 */
int json_int(struct json_span v, int64_t *out);
/* Any number literal as a double: 0 or -EINVAL when v is not a number. */
int json_double(struct json_span v, double *out);
/* 1 when the quoted string v, unescaped, equals s. */
int json_string_eq(struct json_span v, const char *s);
/* Unescape the quoted string v into out (NUL-terminated); -EINVAL if not a string. */
int json_string_decode(struct json_span v, struct buf *out);
