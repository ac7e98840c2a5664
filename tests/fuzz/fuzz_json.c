/* fuzz_json.c - libFuzzer target: the JSON scanner, iteration and scalar decoding */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
static void die(const char *what)
{
	fprintf(stderr, "fuzz_json: invariant broken: %s\n", what);
	abort();
}

/* Validate [p, p+n); 0 and *v on success. */
static int validate(const char *p, size_t n, struct json_span *v)
{
	const char *msg = NULL;
	size_t off = SIZE_MAX;
	int r = json_validate(p, p + n, v, &msg, &off);

	if (r != 0 && (r != -EINVAL || !msg || off > n))
		die("json_validate error report");
	return r;
}

/* Decode a number both ways and cross-check the results. */
static void check_number(struct json_span v)
{
	int64_t x = 0;
	double d = 0;
	int ri = json_int(v, &x);
	int rd = json_double(v, &d);
	int integral =
	    !memchr(v.p, '.', v.len) && !memchr(v.p, 'e', v.len) && !memchr(v.p, 'E', v.len);

	if (rd != 0)
		die("json_double failed on a number");
	if (ri == 0) {
		if (!integral || x > JSON_INT_MAX || x < -JSON_INT_MAX || (double)x != d)
			die("json_int disagrees with json_double");
	} else if (ri == -ERANGE) {
		if (!integral || fabs(d) < (double)JSON_INT_MAX)
			die("json_int -ERANGE on a small integer");
	} else if (ri != -EINVAL || integral) {
		die("json_int -EINVAL on an integer literal");
	}
}

/* Decode a string, re-encode it, and check both directions agree. */
static void check_string(struct json_span v, struct buf *tmp)
{
	struct buf enc = {0}, again = {0};
	struct json_span e;

	if (json_string_decode(v, tmp) != 0)
		die("json_string_decode failed on a string");
	if (tmp->data[tmp->len] != '\0' || tmp->len > v.len)
		die("decoded string length");
	if (!memchr(v.p, '\\', v.len) &&
	    (tmp->len != v.len - 2 || memcmp(tmp->data, v.p + 1, tmp->len) != 0))
		die("decoding a string without escapes changed it");
	if (!memchr(tmp->data, '\0', tmp->len) && !memchr(v.p, '\\', v.len) &&
	    json_string_eq(v, tmp->data) != 1)
		die("json_string_eq is false for its own text");
	/* the decoded bytes are valid UTF-8: re-encoded they validate and decode the same */
	buf_add_json_string(&enc, tmp->data, tmp->len);
	if (validate(enc.data, enc.len, &e) != 0 || e.len != enc.len)
		die("re-encoded string does not validate");
	if (json_string_decode(e, &again) != 0 || again.len != tmp->len ||
	    memcmp(again.data, tmp->data, tmp->len) != 0)
		die("string round trip");
	buf_free(&enc);
	buf_free(&again);
}

/* Visit v and everything inside it. */
static void walk(struct json_span v, const char *base, size_t size, int depth, struct buf *tmp)
{
	struct json_span sub, key, val;
	struct json_iter it;
	size_t n = 0;

	if (!v.p || v.len == 0 || v.p < base || v.p + v.len > base + size)
		die("span outside the input");
	if (depth > JSON_MAX_DEPTH && (json_type(v) == JSON_ARRAY || json_type(v) == JSON_OBJECT))
		die("containers nested deeper than JSON_MAX_DEPTH");
	if (validate(v.p, v.len, &sub) != 0 || sub.p != v.p || sub.len != v.len)
		die("a sub-value does not validate on its own");
	switch (json_type(v)) {
	case JSON_ARRAY:
		json_iter_init(&it, v);
		while (json_array_next(&it, &sub)) {
			walk(sub, base, size, depth + 1, tmp);
			n++;
		}
		if (n != json_array_count(v))
			die("json_array_count");
		/* taken in chunks of 1 to 3 elements, the same elements in the same order */
		{
			struct json_iter a, b;
			struct json_span first, span;
			size_t k, got, max = (size_t)(v.len % 3) + 1;

			json_iter_init(&a, v);
			json_iter_init(&b, v);
			while ((got = json_array_take(&b, max, SIZE_MAX, &span)) > 0) {
				for (k = 0; k < got; k++)
					if (!json_array_next(&a, k ? &sub : &first))
						die("json_array_take took too many");
				if (span.p != first.p ||
				    span.p + span.len !=
				        (got > 1 ? sub.p + sub.len : first.p + first.len))
					die("json_array_take span");
			}
			if (json_array_next(&a, &sub))
				die("json_array_take stopped early");
		}
		if (v.p[v.len - 1] != ']')
			die("array span end");
		break;
	case JSON_OBJECT:
		json_iter_init(&it, v);
		while (json_object_next(&it, &key, &val)) {
			if (json_type(key) != JSON_STRING)
				die("object key is not a string");
			walk(key, base, size, depth + 1, tmp);
			walk(val, base, size, depth + 1, tmp);
		}
		/* the same members with their arrays counted on the way */
		{
			struct json_iter a, b;
			struct json_span k2, v2;
			size_t count;

			json_iter_init(&a, v);
			json_iter_init(&b, v);
			while (json_object_next(&a, &key, &val)) {
				if (!json_object_next_count(&b, &k2, &v2, &count) ||
				    k2.p != key.p || k2.len != key.len || v2.p != val.p ||
				    v2.len != val.len)
					die("json_object_next_count member");
				if (count !=
				    (json_type(val) == JSON_ARRAY ? json_array_count(val) : 0))
					die("json_object_next_count count");
			}
			if (json_object_next_count(&b, &k2, &v2, &count))
				die("json_object_next_count end");
		}
		if (v.p[v.len - 1] != '}')
			die("object span end");
		break;
	case JSON_STRING:
		check_string(v, tmp);
		break;
	case JSON_NUMBER:
		check_number(v);
		break;
	case JSON_TRUE:
		if (v.len != 4 || memcmp(v.p, "true", 4) != 0)
			die("true");
		break;
	case JSON_FALSE:
		if (v.len != 5 || memcmp(v.p, "false", 5) != 0)
			die("false");
		break;
	case JSON_NULL:
		if (v.len != 4 || memcmp(v.p, "null", 4) != 0)
			die("null");
		break;
	}
	/* scalar decoders reject what they are not made for */
	if (json_type(v) != JSON_STRING && json_string_decode(v, tmp) != -EINVAL)
		die("json_string_decode accepted a non-string");
	if (json_type(v) != JSON_NUMBER) {
		int64_t x;
		double d;

		if (json_int(v, &x) != -EINVAL || json_double(v, &d) != -EINVAL)
			die("a number decoder accepted a non-number");
	}
}

/*
 * json_validate_prefix against json_validate: a prefix value found must
 * validate alone with the same span, and a whole valid input must give its
 * value as the prefix.
 */
static void check_prefix(const char *p, size_t size, int whole_ok, struct json_span whole)
{
	const char *msg = NULL;
	size_t off = SIZE_MAX;
	struct json_span v, again;
	int r = json_validate_prefix(p, p + size, &v, &msg, &off);

	if (r != 0) {
		if (r != -EINVAL || !msg || off > size)
			die("json_validate_prefix error report");
		if (whole_ok)
			die("json_validate_prefix refused a valid input");
		return;
	}
	if (v.p < p || v.len == 0 || v.p + v.len > p + size)
		die("json_validate_prefix span outside the input");
	if (validate(v.p, v.len, &again) != 0 || again.p != v.p || again.len != v.len)
		die("json_validate_prefix value does not validate alone");
	if (whole_ok && (v.p != whole.p || v.len != whole.len))
		die("json_validate_prefix and json_validate disagree");
}

/*
 * The same input fed to json_scan in slices (cut at points taken from its
 * own bytes) must give what one json_validate gave: the same verdict, the
 * same span or the same error and offset.
 */
static void check_slices(const char *p, size_t size, int whole_ok, struct json_span whole)
{
	const char *msg = NULL;
	struct json_scan s;
	size_t off = SIZE_MAX, at = 0, step = size ? (unsigned char)p[0] % 7 + 1 : 1;
	int r = 0;

	if (!whole_ok)
		json_validate(p, p + size, &whole, &msg, &off);
	json_scan_init(&s);
	while (r == 0 && at < size) {
		size_t n = size - at < step ? size - at : step;

		r = json_scan_feed(&s, p + at, n);
		at += n;
		step = step * 3 % 11 + 1;
	}
	if (r == 0)
		r = json_scan_end(&s);
	if ((r == 0) != whole_ok)
		die("sliced scan and json_validate disagree");
	if (r == 0 && (s.vstart != (size_t)(whole.p - p) || s.vend - s.vstart != whole.len))
		die("sliced scan span");
	if (r != 0 && (s.erroff != off || strcmp(s.err, msg) != 0))
		die("sliced scan error");
}

/*
 * The fast paths against the slow one: fed one byte at a time, json_scan
 * runs its byte-wise state machine only (no integer run, no 16-byte block),
 * and must give what json_validate gave on the whole input.
 */
static void check_bytewise(const char *p, size_t size)
{
	const char *msg = NULL;
	struct json_span whole;
	struct json_scan s;
	size_t off = SIZE_MAX, at;
	int r = 0, rw = json_validate(p, p + size, &whole, &msg, &off);

	json_scan_init(&s);
	for (at = 0; r == 0 && at < size; at++)
		r = json_scan_feed(&s, p + at, 1);
	if (r == 0)
		r = json_scan_end(&s);
	if (r != rw)
		die("byte-wise scan and json_validate disagree");
	if (r == 0 && (s.vstart != (size_t)(whole.p - p) || s.vend - s.vstart != whole.len))
		die("byte-wise scan span");
	if (r != 0 && (s.erroff != off || strcmp(s.err, msg) != 0))
		die("byte-wise scan error");
}

/*
 * json_scan_index, fed whole and in slices: the scan says what it says
 * without an index, and the index of a valid object's first "args" array
 * matches a walk of it (span, count, every mark on its comma); the member
 * walk skips args by it, and cutting by it takes what json_array_take takes.
 */
static void check_index(const char *p, size_t size, int whole_ok, struct json_span whole)
{
	static size_t room[JSON_INDEX_MARKS];
	struct json_index ix = {.mark = room};
	struct json_span k, val, k2, v2, args = {NULL, 0}, sa, sb;
	struct json_iter it, it2;
	struct json_scan s;
	size_t at = 0, step = size ? (unsigned char)p[size - 1] % 23 + 1 : 1, i, count, count2;
	size_t idx = 0, a, b, max, bytes;
	int r = 0;

	json_scan_init(&s);
	json_scan_index(&s, &ix);
	if (size && (unsigned char)p[0] % 2)
		step = size;
	while (r == 0 && at < size) {
		size_t n = size - at < step ? size - at : step;

		r = json_scan_feed(&s, p + at, n);
		at += n;
	}
	if (r == 0)
		r = json_scan_end(&s);
	if ((r == 0) != whole_ok)
		die("an indexed scan and json_validate disagree");
	if (!whole_ok)
		return;
	ix.base = p;
	if (json_type(whole) == JSON_OBJECT) {
		json_iter_init(&it, whole);
		while (json_object_next(&it, &k, &val))
			if (json_string_eq(k, "args")) {
				args = val;
				break;
			}
	}
	if (!args.p || json_type(args) != JSON_ARRAY) {
		if (ix.end)
			die("an index without an args array");
		return;
	}
	count = json_array_count(args);
	if (!ix.end || ix.base + ix.start != args.p || ix.end - ix.start != args.len ||
	    ix.count != count || ix.n_marks != (count ? (count - 1) / ix.stride : 0))
		die("index span or count");
	json_iter_init(&it, args);
	for (i = 1; json_array_next(&it, &val); i++) {
		const char *c = val.p + val.len;

		while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')
			c++;
		if (i % ix.stride == 0 && i / ix.stride <= ix.n_marks &&
		    ix.mark[i / ix.stride - 1] != (size_t)(c - p))
			die("index mark");
	}
	json_iter_init(&it, whole);
	json_iter_init(&it2, whole);
	while (json_object_next_count(&it, &k, &val, &count))
		if (!json_object_next_known(&it2, &k2, &v2, &count2, &ix) || k2.p != k.p ||
		    v2.p != val.p || v2.len != val.len || count2 != count || it2.p != it.p)
			die("json_object_next_known");
	if (json_object_next_known(&it2, &k2, &v2, &count2, &ix))
		die("json_object_next_known end");
	json_iter_init(&it, args);
	json_iter_init(&it2, args);
	max = size % 13 + 1;
	bytes = size % 3 ? SIZE_MAX : size % 40;
	do {
		a = json_array_take(&it, max, bytes, &sa);
		b = json_array_take_indexed(&it2, &ix, idx, max, bytes, &sb);
		if (a != b || (a && (sa.p != sb.p || sa.len != sb.len)) || it.p != it2.p)
			die("json_array_take_indexed");
		idx += a;
		max = max * 5 % 17 + 1;
	} while (a);
}

/*
 * json_object_scan against json_validate and json_object_next: a valid object
 * scans with the same members; a scanned object is valid, or nested one
 * level too deep (its members are each checked on their own).
 */
static void check_object_scan(const char *p, size_t size, int whole_ok, struct json_span whole)
{
	struct json_span obj, keys[4], vals[4], k, v;
	struct json_iter it;
	const char *msg = NULL;
	size_t n = 0, i = 0, off;
	int r = json_object_scan(p, p + size, &obj, keys, vals, 4, &n);

	if (whole_ok && json_type(whole) == JSON_OBJECT) {
		if (r != 0 || obj.p != whole.p || obj.len != whole.len)
			die("json_object_scan refused a valid object");
		json_iter_init(&it, whole);
		for (; json_object_next(&it, &k, &v); i++)
			if (i < 4 && (keys[i].p != k.p || keys[i].len != k.len ||
			              vals[i].p != v.p || vals[i].len != v.len))
				die("json_object_scan member");
		if (i != n)
			die("json_object_scan member count");
		return;
	}
	if (r == 0 && (whole_ok || json_validate(p, p + size, &v, &msg, &off) == 0 ||
	               strcmp(msg, "nesting too deep") != 0))
		die("json_object_scan accepted what json_validate refuses");
}

/* libFuzzer entry: validate, then walk and decode everything that validated. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct json_span v = {0};
	struct buf tmp = {0};
	int ok = validate(p, size, &v) == 0;

	if (ok)
		walk(v, p, size, 1, &tmp);
	check_prefix(p, size, ok, v);
	check_slices(p, size, ok, v);
	check_bytewise(p, size);
	check_index(p, size, ok, v);
	check_object_scan(p, size, ok, v);
	buf_free(&tmp);
	return 0;
}
