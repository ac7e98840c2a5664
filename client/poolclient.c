/* poolclient.c - libpoolclient's operations: map, apply, text variants, info requests */
#include "poolclient.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "poolconn.h"
#include "poolints.h"

/* Append the options valid for op ("map" or "apply") and close the line into tail. */
static void opts_tail(char *tail, size_t n, const struct pool_map_opts *o, int is_map)
{
	int k = 0;

	tail[0] = '\0';
	if (o && is_map) {
		if (o->star)
			k += snprintf(tail + k, n - (size_t)k, ",\"star\":true");
		if (o->collect)
			k += snprintf(tail + k, n - (size_t)k, ",\"on_error\":\"collect\"");
		if (o->chunksize > 0)
			k += snprintf(tail + k, n - (size_t)k, ",\"chunksize\":%ld", o->chunksize);
	}
	if (o && poolconn_opt_set(o->retries))
		k += snprintf(tail + k, n - (size_t)k, ",\"retries\":%ld",
		              poolconn_opt_wire(o->retries));
	if (o && poolconn_opt_set(o->timeout_ms))
		k += snprintf(tail + k, n - (size_t)k, ",\"timeout_ms\":%ld",
		              poolconn_opt_wire(o->timeout_ms));
	snprintf(tail + k, n - (size_t)k, "}\n");
}

/* Count failed items of a collect-mode reply and describe the first in err. */
static int collect_failures(pool_client *c, const struct poolconn_reply *rep,
                            struct json_span results, struct pool_error *err)
{
	struct json_span failed, e, eo;
	struct json_iter it;
	int64_t first;
	size_t n, i;

	if (!poolconn_reply_get(rep, "failed", &failed) || json_type(failed) != JSON_ARRAY)
		return 0;
	n = json_array_count(failed);
	json_iter_init(&it, failed);
	if (n == 0 || !json_array_next(&it, &e) || json_int(e, &first) < 0 || first < 0)
		return n > INT32_MAX ? INT32_MAX : (int)n;
	json_iter_init(&it, results);
	for (i = 0; json_array_next(&it, &e); i++) {
		if (i != (size_t)first)
			continue;
		if (err && poolconn_get(e, "error", &eo)) {
			poolconn_error_from(c, eo, err);
			err->code = POOL_EJOB;
			err->index = (long)first;
		}
		break;
	}
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* map or apply on raw text; *value is the results (result) span inside the receive buffer. */
static int call_fn(pool_client *c, int is_map, const char *fn, const char *args, size_t len,
                   const struct pool_map_opts *opts, struct json_span *value,
                   struct pool_error *err)
{
	struct poolconn_reply rep;
	char tail[256];
	int r;

	if (!c || !fn || !value)
		return poolconn_error(err, POOL_EINVAL, "NULL client, function name or output");
	r = poolconn_check_array(&c->tmp, &args, &len, NULL, err);
	if (r < 0)
		return r;
	if (poolconn_begin(c, is_map ? "map" : "apply") < 0 || buf_adds(&c->req, ",\"fn\":") < 0 ||
	    buf_add_json_string(&c->req, fn, strlen(fn)) < 0 || buf_adds(&c->req, ",\"args\":") < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	opts_tail(tail, sizeof(tail), opts, is_map);
	r = poolconn_transact(c, args, len, tail, &rep, NULL, err);
	if (r < 0)
		return r;
	if (!poolconn_reply_get(&rep, is_map ? "results" : "result", value) ||
	    (is_map && json_type(*value) != JSON_ARRAY))
		return poolconn_error(err, POOL_EPROTO, "reply has no \"%s\"",
		                      is_map ? "results" : "result");
	if (is_map && opts && opts->collect)
		return collect_failures(c, &rep, *value, err);
	return 0;
}

/* Copy a span into a fresh NUL-terminated string. */
static int span_dup(struct json_span v, char **out, size_t *len, struct pool_error *err)
{
	char *s = malloc(v.len + 1);

	if (!s)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	if (v.len)
		memcpy(s, v.p, v.len);
	s[v.len] = '\0';
	*out = s;
	if (len)
		*len = v.len;
	return 0;
}

/* Parse a span of the receive buffer into a cJSON tree (NUL-terminating it in place). */
static int span_cjson(pool_client *c, struct json_span v, cJSON **out, struct pool_error *err)
{
	char *p = c->rbuf.data + (v.p - c->rbuf.data);
	const char *end = NULL;
	char saved = p[v.len];

	p[v.len] = '\0';
	*out = cJSON_ParseWithLengthOpts(p, v.len + 1, &end, 1);
	p[v.len] = saved;
	if (!*out)
		return poolconn_error(err, POOL_ENOMEM, "cannot build the JSON tree of the reply");
	return 0;
}

/* map on JSON text: the results array's text as the daemon wrote it. */
int pool_map_text(pool_client *c, const char *fn, const char *args_json, size_t len,
                  const struct pool_map_opts *opts, char **results_json, size_t *results_len,
                  struct pool_error *err)
{
	struct json_span v = {0};
	int r, r2;

	if (!results_json)
		return poolconn_error(err, POOL_EINVAL, "NULL output");
	r = call_fn(c, 1, fn, args_json, len, opts, &v, err);
	if (r < 0)
		return r;
	r2 = span_dup(v, results_json, results_len, err);
	return r2 < 0 ? r2 : r;
}

/* apply on JSON text: the result's text as the daemon wrote it. */
int pool_apply_text(pool_client *c, const char *fn, const char *args_json, size_t len,
                    const struct pool_map_opts *opts, char **result_json, size_t *result_len,
                    struct pool_error *err)
{
	struct json_span v = {0};
	int r;

	if (!result_json)
		return poolconn_error(err, POOL_EINVAL, "NULL output");
	r = call_fn(c, 0, fn, args_json, len, opts, &v, err);
	if (r < 0)
		return r;
	return span_dup(v, result_json, result_len, err);
}

/* Fill err about a result of pool_map_int64() that is not an integer within +-2^53. */
static int not_int64(pool_client *c, size_t i, struct json_span bad, struct pool_error *err)
{
	struct pool_error *e = poolconn_errp(c, err);
	int shown = bad.len > 64 ? 64 : (int)bad.len;

	poolconn_error(e, POOL_EJOB, "result %zu is not an integer within +-2^53: %.*s%s", i, shown,
	               bad.p, bad.len > 64 ? "..." : "");
	snprintf(e->code_name, sizeof(e->code_name), "not_an_integer");
	e->index = i > LONG_MAX ? LONG_MAX : (long)i;
	return -POOL_EJOB;
}

/* Items of pool_map_int64() written per part of its request (up to ~170 KB). */
#define SEND_ITEMS 8192

/* map on int64s: the request written in place, the reply read as it arrives. */
int pool_map_int64(pool_client *c, const char *fn, const int64_t *items, size_t n,
                   const struct pool_map_opts *opts, int64_t *results, struct pool_error *err)
{
	struct poolints_reader rd;
	struct poolconn_reply rep;
	struct json_span v, bad = {0};
	struct poolconn_tx tx;
	char tail[256];
	size_t i = 0, next;
	int r;

	if (!c || !fn || (n && (!items || !results)))
		return poolconn_error(err, POOL_EINVAL,
		                      "NULL client, function name, items or results");
	if (opts && (opts->star || opts->collect))
		return poolconn_error(err, POOL_EINVAL,
		                      "pool_map_int64 takes neither star nor collect");
	i = poolints_check_range(items, n);
	if (i < n) {
		r = poolconn_error(err, POOL_EINVAL, "item %zu (%" PRId64 ") is beyond +-2^53", i,
		                   items[i]);
		if (err)
			err->index = i > LONG_MAX ? LONG_MAX : (long)i;
		return r;
	}
	if (poolconn_begin(c, "map") < 0 || buf_adds(&c->req, ",\"fn\":") < 0 ||
	    buf_add_json_string(&c->req, fn, strlen(fn)) < 0 ||
	    buf_adds(&c->req, ",\"args\":[") < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	opts_tail(tail + 1, sizeof(tail) - 1, opts, 1);
	tail[0] = ']';
	poolints_init(&rd, c->cur_id, results, n);
	r = poolconn_tx_begin(c, &tx, err);
	/* the items in parts: the request's text is never whole in memory */
	for (i = 0; r == 0 && i < n; i = next) {
		next = n - i > SEND_ITEMS ? i + SEND_ITEMS : n;
		if (poolints_add_items(&c->req, items, i, next) < 0) {
			poolconn_tx_abort(c, &tx);
			return poolconn_error(err, POOL_ENOMEM, "out of memory");
		}
		if (next < n)
			r = poolconn_tx_part(c, &tx, &rep, &rd, err);
	}
	if (r == 0)
		r = poolconn_tx_end(c, &tx, "", 0, tail, &rep, &rd, err);
	if (r != 0)
		return r < 0 ? r : 0;
	/*
	 * A reply of another shape: validated, then its results read element by
	 * element, from rd.base on (the fast reader kept those before).
	 */
	if (!poolconn_reply_get(&rep, "results", &v) || json_type(v) != JSON_ARRAY)
		return poolconn_error(err, POOL_EPROTO, "reply has no \"results\"");
	r = poolints_results(v, results ? results + rd.base : NULL, n - rd.base, &i, &bad);
	if (r == -POOL_EPROTO)
		return poolconn_error(err, POOL_EPROTO, "reply has %zu results for %zu items",
		                      rd.base + i, n);
	if (r < 0)
		return not_int64(c, rd.base + i, bad, err);
	return 0;
}

/* map/apply with cJSON in and out. */
static int call_cjson(pool_client *c, int is_map, const char *fn, const cJSON *args,
                      const struct pool_map_opts *opts, cJSON **out, struct pool_error *err)
{
	struct json_span v = {0};
	char *text;
	int r, r2;

	if (!cJSON_IsArray(args) || !out)
		return poolconn_error(err, POOL_EINVAL,
		                      "args is not a cJSON array, or NULL output");
	text = cJSON_PrintUnformatted(args);
	if (!text)
		return poolconn_error(err, POOL_ENOMEM, "out of memory printing the arguments");
	r = call_fn(c, is_map, fn, text, strlen(text), opts, &v, err);
	cJSON_free(text);
	if (r < 0)
		return r;
	r2 = span_cjson(c, v, out, err);
	return r2 < 0 ? r2 : r;
}

/* map with cJSON arguments and results. */
int pool_map(pool_client *c, const char *fn, const cJSON *items, const struct pool_map_opts *opts,
             cJSON **results, struct pool_error *err)
{
	return call_cjson(c, 1, fn, items, opts, results, err);
}

/* map with each item an argument array. */
int pool_starmap(pool_client *c, const char *fn, const cJSON *arglists,
                 const struct pool_map_opts *opts, cJSON **results, struct pool_error *err)
{
	struct pool_map_opts o = POOL_MAP_OPTS_INIT;

	if (opts)
		o = *opts;
	o.star = 1;
	return call_cjson(c, 1, fn, arglists, &o, results, err);
}

/* One call with cJSON arguments and result. */
int pool_apply(pool_client *c, const char *fn, const cJSON *args, const struct pool_map_opts *opts,
               cJSON **result, struct pool_error *err)
{
	return call_cjson(c, 0, fn, args, opts, result, err);
}

/* A request without arguments; *value = member key of the reply, or the whole reply. */
static int simple_op(pool_client *c, const char *op, const char *key, cJSON **out,
                     struct pool_error *err)
{
	struct json_span v = {0};
	struct poolconn_reply rep;
	int r;

	if (!c || !out)
		return poolconn_error(err, POOL_EINVAL, "NULL client or output");
	if (poolconn_begin(c, op) < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	r = poolconn_transact(c, "", 0, "}\n", &rep, NULL, err);
	if (r < 0)
		return r;
	v = rep.obj;
	if (key && !poolconn_reply_get(&rep, key, &v))
		return poolconn_error(err, POOL_EPROTO, "reply has no \"%s\"", key);
	return span_cjson(c, v, out, err);
}

/* The whole ping reply. */
int pool_ping(pool_client *c, cJSON **reply, struct pool_error *err)
{
	return simple_op(c, "ping", NULL, reply, err);
}

/* The daemon's status object. */
int pool_status(pool_client *c, cJSON **status, struct pool_error *err)
{
	return simple_op(c, "status", "status", status, err);
}

/* The array of registered functions. */
int pool_functions(pool_client *c, cJSON **list, struct pool_error *err)
{
	return simple_op(c, "functions", "functions", list, err);
}

/* Any request without an id; the whole reply line, ok or not. */
int pool_request_raw(pool_client *c, const char *request_json, size_t len, char **reply_json,
                     size_t *reply_len, struct pool_error *err)
{
	struct json_span v, rest;
	struct poolconn_reply rep;
	const char *msg;
	size_t off;
	int r;

	if (!c || !request_json || !reply_json)
		return poolconn_error(err, POOL_EINVAL, "NULL client, request or output");
	if (json_validate(request_json, request_json + len, &v, &msg, &off) < 0)
		return poolconn_error(err, POOL_EINVAL, "request is not valid JSON: %s at byte %zu",
		                      msg, off);
	if (json_type(v) != JSON_OBJECT)
		return poolconn_error(err, POOL_EINVAL, "request is not a JSON object");
	if (poolconn_get(v, "id", &rest))
		return poolconn_error(err, POOL_EINVAL, "request must not have an id");
	/* {"id":N, then the members after '{' (or just '}' when there are none) */
	rest.p = v.p + 1;
	rest.len = v.len - 1;
	while (rest.len && strchr(" \t\r\n", rest.p[0])) {
		rest.p++;
		rest.len--;
	}
	if (poolconn_begin(c, NULL) < 0 || (rest.p[0] != '}' && buf_addc(&c->req, ',') < 0) ||
	    buf_add(&c->req, rest.p, rest.len) < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	for (off = 0; off < c->req.len; off++)
		if (c->req.data[off] == '\n')
			c->req.data[off] = ' ';
	r = poolconn_transact(c, "", 0, "\n", &rep, NULL, err);
	if (r < 0 && r != -POOL_EREQUEST && r != -POOL_EJOB)
		return r;
	return span_dup(rep.obj, reply_json, reply_len, err);
}
