/* poolclient.h - libpoolclient: a small blocking client for the poold daemon */
#pragma once

/*
 * One pool_client is one connection to poold. Every call sends one request and
 * blocks until its reply has arrived (request ids are generated and matched by
 * the library). A pool_client must not be used by two threads at once; open
 * one per thread instead.
 *
 * Return convention: 0 (or a count >= 0 where documented) on success, else a
 * negative enum pool_errc (-POOL_EIO, ...) with *err filled. err may be NULL.
 * Output pointers are set only on success and then belong to the caller:
 * cJSON trees are freed with cJSON_Delete(), text with free().
 *
 * Numbers: cJSON holds numbers as doubles, so an integral float result such as
 * 3.0 reads back as 3 and integers beyond 2^53 lose precision; the *_text
 * functions pass the daemon's JSON text through unchanged.
 */

#include <stddef.h>

#include <cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

enum pool_errc {
	POOL_OK = 0,
	POOL_ECONNECT, /* the socket could not be reached (path, permissions, no daemon) */
	POOL_EIO,      /* read/write failed or the daemon closed the connection */
	POOL_EPROTO,   /* the daemon's reply is not valid protocol */
	POOL_EREQUEST, /* the daemon rejected the request: parse_error, invalid_request,
	                  unknown_op, unknown_function, bad_arity, too_large, busy,
	                  shutting_down, duplicate_id, not_found, forbidden, internal, ... */
	POOL_EJOB,     /* the job failed: function_error, type_error, out_of_range,
	                  worker_died, timeout, result_too_large, cancelled */
	POOL_EINVAL,   /* bad argument to a library call (NULL, not an array, ...) */
	POOL_ENOMEM,   /* out of memory */
};

struct pool_error {
	int code;           /* enum pool_errc */
	char code_name[32]; /* the daemon's code ("function_error"), or a local one ("io") */
	char message[256];  /* one line, no trailing newline */
	long index;         /* item index the error is about, -1 if none */
};

/* Options of pool_map() and friends; fields that apply also to pool_apply(). */
struct pool_map_opts {
	int star;        /* map: each item is an argument array (starmap) */
	int collect;     /* map: on_error "collect" instead of "fail" */
	long chunksize;  /* map: items per task, 0 = automatic */
	int retries;     /* map, apply: retries after a worker death or timeout, -1 = default (2) */
	long timeout_ms; /* map, apply: per item, 0 = none, -1 = daemon default */
};

/* The defaults, as pool_map() uses for opts == NULL. */
#define POOL_MAP_OPTS_INIT                                                                         \
	{                                                                                          \
		.star = 0, .collect = 0, .chunksize = 0, .retries = -1, .timeout_ms = -1           \
	}

typedef struct pool_client pool_client;

/*
 * Connect to poold. socket_path NULL = $POOLD_SOCKET, else
 * $XDG_RUNTIME_DIR/poold/poold.sock, else /run/poold/poold.sock.
 * Returns the client or NULL with *err set (POOL_ECONNECT, POOL_ENOMEM).
 */
pool_client *pool_connect(const char *socket_path, struct pool_error *err);
/* Close the connection and free the client; NULL is fine. */
void pool_close(pool_client *c);

/*
 * Call fn on every element of the JSON array items (opts NULL = defaults) and
 * return the results array in item order. In collect mode a failed item stands
 * in its place as {"error":{"code":..,"message":..}}, and the return value is
 * the number of failed items (err then describes the lowest-index one);
 * otherwise the first failing item fails the call with -POOL_EJOB, err->index set.
 */
int pool_map(pool_client *c, const char *fn, const cJSON *items, const struct pool_map_opts *opts,
             cJSON **results, struct pool_error *err);
/* pool_map() with star set: each element of arglists is one call's argument array. */
int pool_starmap(pool_client *c, const char *fn, const cJSON *arglists,
                 const struct pool_map_opts *opts, cJSON **results, struct pool_error *err);
/* Call fn once with the JSON array args as its arguments; opts may be NULL. */
int pool_apply(pool_client *c, const char *fn, const cJSON *args, const struct pool_map_opts *opts,
               cJSON **result, struct pool_error *err);

/*
 * pool_map() on raw text: args_json (len bytes, need not be NUL-terminated) is
 * sent as-is and must be one JSON array; *results_json receives the results
 * array's text exactly as the daemon wrote it (NUL-terminated, *results_len
 * bytes; results_len may be NULL). No cJSON trees are built.
 */
int pool_map_text(pool_client *c, const char *fn, const char *args_json, size_t len,
                  const struct pool_map_opts *opts, char **results_json, size_t *results_len,
                  struct pool_error *err);
/* pool_apply() on raw text: args_json is the argument array, *result_json the result's text. */
int pool_apply_text(pool_client *c, const char *fn, const char *args_json, size_t len,
                    const struct pool_map_opts *opts, char **result_json, size_t *result_len,
                    struct pool_error *err);

/* The whole ping reply: {"id":..,"ok":true,"protocol":1,"version":"..","pid":..}. */
int pool_ping(pool_client *c, cJSON **reply, struct pool_error *err);
/* The "status" object of the daemon (workers, counters, "slots" array). */
int pool_status(pool_client *c, cJSON **status, struct pool_error *err);
/* The array of registered functions: [{"name":..,"min_args":..,"max_args":..,"doc":..}]. */
int pool_functions(pool_client *c, cJSON **list, struct pool_error *err);

/*
 * Send one request object without an "id" (e.g. {"op":"cancel","target":3});
 * the library adds the id. Returns 0 once a reply arrived, whether it says
 * ok or not, with the whole reply line in *reply_json (NUL-terminated, no
 * newline). Only one request is in flight at a time, so a cancel can only
 * name a request that has already been answered (not_found).
 */
int pool_request_raw(pool_client *c, const char *request_json, size_t len, char **reply_json,
                     size_t *reply_len, struct pool_error *err);

/* The file descriptor of the connection (e.g. to poll for hang-up). */
int pool_fd(const pool_client *c);
/* A short name for an enum pool_errc value ("io", "request", ...). */
const char *pool_errc_name(int code);

#ifdef __cplusplus
}
#endif
