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
#include <stdint.h>

#include <cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

enum pool_errc {
	POOL_OK = 0,
	POOL_ECONNECT,  /* the socket could not be reached (path, permissions, no daemon) */
	POOL_EIO,       /* read/write failed or the daemon closed the connection */
	POOL_EPROTO,    /* the daemon's reply is not valid protocol */
	POOL_EREQUEST,  /* the daemon rejected the request: parse_error, invalid_request,
	                   unknown_op, unknown_function, bad_arity, too_large, busy,
	                   shutting_down, duplicate_id, not_found, forbidden, internal, ... */
	POOL_EJOB,      /* the job failed: function_error, type_error, out_of_range,
	                   worker_died, timeout, result_too_large, cancelled */
	POOL_EINVAL,    /* bad argument to a library call (NULL, not an array, ...) */
	POOL_ENOMEM,    /* out of memory */
	POOL_EAGAIN,    /* pool_stream_next*(): nothing arrived within timeout_ms; call again */
	POOL_ETIMEDOUT, /* no reply within the client's deadline (pool_set_deadline()); the
	                   request was cancelled */
};

struct pool_error {
	int code;           /* enum pool_errc */
	char code_name[32]; /* the daemon's code ("function_error"), or a local one ("io") */
	char message[256];  /* one line, no trailing newline */
	long index;         /* item index the error is about, -1 if none */
};

/*
 * Options: a field left 0 (or -1, as written by older programs) means the
 * default, so a zeroed struct, {0} and POOL_*_OPTS_INIT are all "every default".
 * What the protocol spells 0 is asked for with POOL_NONE: no retries, no time
 * limit.
 */
#define POOL_NONE (-2)

/* Options of pool_map() and friends; fields that apply also to pool_apply(). */
struct pool_map_opts {
	int star;        /* map: each item is an argument array (starmap) */
	int collect;     /* map: on_error "collect" instead of "fail" */
	long chunksize;  /* map: items per task, 1..1000000; 0 = automatic */
	int retries;     /* map, apply: retries after a worker death or timeout, 1..100;
	                    0 = the default (2); POOL_NONE = none */
	long timeout_ms; /* map, apply: per item, 1..86400000; 0 = the daemon's default;
	                    POOL_NONE = no limit */
};

/* The defaults, as pool_map() uses for opts == NULL: every field 0. */
#define POOL_MAP_OPTS_INIT                                                                         \
	{                                                                                          \
		0                                                                                  \
	}

typedef struct pool_client pool_client;

/*
 * Connect to poold. socket_path NULL = $POOLD_SOCKET, else
 * $XDG_RUNTIME_DIR/poold/poold.sock, else /run/poold/poold.sock.
 * Returns the client or NULL with *err set (POOL_ECONNECT, POOL_ENOMEM).
 */
pool_client *pool_connect(const char *socket_path, struct pool_error *err);
/*
 * Connect to poold at an address: tls://HOST:PORT (mutual TLS: cert and key
 * are this client's certificate and key, ca the CA that signed the daemon's;
 * NULL = $POOLD_CERT, $POOLD_KEY, $POOLD_CA; without a CA, the system's),
 * tcp://HOST:PORT (plain, which poold serves on loopback only), unix:PATH or
 * a socket path. uri NULL = $POOLD_ADDRESS, else pool_connect(NULL).
 * Returns the client or NULL with *err set (POOL_ECONNECT, POOL_EINVAL,
 * POOL_ENOMEM). A daemon that refuses the certificate may only say so at the
 * first request (TLS 1.3): that call fails with POOL_EIO and the reason.
 */
pool_client *pool_connect_uri(const char *uri, const char *cert, const char *key, const char *ca,
                              struct pool_error *err);
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

/*
 * pool_map() on integers, the commonest C case: items[0..n) in, results[0..n)
 * out (the caller's arrays; results may be items), with no JSON for the
 * caller to write or read and no copy of the reply. Each item must lie within
 * +-2^53 (JSON's exact integers): else -POOL_EINVAL naming the item, before
 * anything is sent. Each result must be an integer within +-2^53: a float
 * (3.0 too), a string, an object or a larger integer fails the call with
 * -POOL_EJOB, err->code_name "not_an_integer" and err->index its item. As
 * pool_map() outside collect mode, the first failing item fails the call
 * (-POOL_EJOB with err->index, the daemon's code and message). opts may be
 * NULL; star and collect are refused (-POOL_EINVAL): a failed item has no
 * int64 to stand in its place. Returns 0; on any error the contents of
 * results are unspecified. items and results may be NULL when n is 0.
 */
int pool_map_int64(pool_client *c, const char *fn, const int64_t *items, size_t n,
                   const struct pool_map_opts *opts, int64_t *results, struct pool_error *err);

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

/*
 * Streams: map over items supplied a batch at a time, results read back a part
 * at a time while more items are fed (like imap and imap_unordered). While a
 * stream is open (until pool_stream_next*() returned 0 or an error, or
 * pool_stream_close()), the client runs no other request: those calls fail with
 * POOL_EINVAL. Feeding never deadlocks with the daemon's window: while a feed
 * cannot be written the library reads the replies and queues their parts for
 * pool_stream_next*(); call pool_stream_next*(s, 0, ...) between feeds to keep
 * that queue short (about window + one batch of items).
 */

/* Options of pool_stream_open(): those of pool_map_opts, and how results come back. */
struct pool_stream_opts {
	int star;        /* each item is an argument array (starmap) */
	int collect;     /* on_error "collect": failed items stand in place, the stream goes on */
	long chunksize;  /* items per task, 1..1000000; 0 = automatic */
	int retries;     /* as in pool_map_opts: 0 = default (2), POOL_NONE = none */
	long timeout_ms; /* as in pool_map_opts: 0 = daemon's default, POOL_NONE = no limit */
	int unordered;   /* parts as items finish, in any order (each still consecutive items) */
	long window;     /* items the daemon holds at most, 1..1000000; 0 = default (65536) */
};

/* The defaults, as pool_stream_open() uses for opts == NULL: every field 0. */
#define POOL_STREAM_OPTS_INIT                                                                      \
	{                                                                                          \
		0                                                                                  \
	}

typedef struct pool_stream pool_stream;

/*
 * Open a stream calling fn (opts NULL = defaults) and check it with the daemon
 * (unknown function, bad option: NULL with err set, POOL_EREQUEST).
 */
pool_stream *pool_stream_open(pool_client *c, const char *fn, const struct pool_stream_opts *opts,
                              struct pool_error *err);
/*
 * Append the elements of the JSON array items (text: items_json, len bytes) to
 * the stream; their indices continue from the last batch (the first item is 0).
 * Blocks until the batch is written, reading replies meanwhile. Returns 0, or
 * the error that ended the stream (the parts before it stay readable).
 */
int pool_stream_feed(pool_stream *s, const cJSON *items, struct pool_error *err);
int pool_stream_feed_text(pool_stream *s, const char *items_json, size_t len,
                          struct pool_error *err);
/* No more items: the stream is done once every item is answered. */
int pool_stream_end(pool_stream *s, struct pool_error *err);
/*
 * The next part of the results, waiting up to timeout_ms (0 = do not wait,
 * -1 = as long as it takes): returns 1 with *index the index of the part's
 * first item and *results_json the text of the part's results array (a run of
 * consecutive items; in order unless opts.unordered), 0 when the stream is done
 * (every item answered after pool_stream_end()), -POOL_EAGAIN when nothing came
 * in time, or the error that ended the stream (fail mode: -POOL_EJOB with
 * err->index; the parts before it were all returned first when ordered).
 */
int pool_stream_next_text(pool_stream *s, int timeout_ms, long *index, char **results_json,
                          size_t *results_len, struct pool_error *err);
/* pool_stream_next_text() with the results as a cJSON array. */
int pool_stream_next(pool_stream *s, int timeout_ms, long *index, cJSON **results,
                     struct pool_error *err);
/*
 * Collect mode: the number of failed items in the parts received so far (all
 * of them once pool_stream_next*() returned 0); *first (may be NULL) describes
 * the failed item of lowest index among them.
 */
long pool_stream_failed(const pool_stream *s, struct pool_error *first);
/*
 * The connection's descriptor, to poll(2) for POLLIN next to other files. Data
 * may already wait inside the library: poll only after pool_stream_next*(s, 0,
 * ...) returned -POOL_EAGAIN.
 */
int pool_stream_fd(const pool_stream *s);
/*
 * Free the stream; one still running in the daemon is cancelled first (op
 * cancel), waiting for the daemon to confirm. NULL is fine. Close every stream
 * before pool_close() of its client.
 */
void pool_stream_close(pool_stream *s);

/*
 * Latency mode: after sending a request, a blocking call polls the socket
 * without sleeping for up to spin_us microseconds before it sleeps. A reply
 * that comes within that time is seen without a thread wake-up, which saves
 * a few tens of microseconds per call on machines where waking is slow; the
 * price is one CPU kept busy while waiting. 0 (the default) never spins;
 * 1 to 1000000 allowed. Streams are not affected.
 */
int pool_set_spin(pool_client *c, long spin_us, struct pool_error *err);

/*
 * Deadline: every later call of this client that waits for the daemon (map,
 * apply, ping, status, functions, pool_request_raw, stream open, feed, end,
 * pool_stream_next*() with timeout_ms -1, pool_stream_close) waits at most ms
 * milliseconds, counted from the call's start. Past it the call fails with
 * -POOL_ETIMEDOUT and the request is cancelled (op cancel, sent without
 * waiting for its answer); the client stays usable. 0 (the default) waits
 * as long as it takes; 1 to 86400000 allowed. A stream ended this way is
 * over: pool_stream_close() then only frees it.
 */
int pool_set_deadline(pool_client *c, long ms, struct pool_error *err);

/* The file descriptor of the connection (e.g. to poll for hang-up). */
int pool_fd(const pool_client *c);
/* A short name for an enum pool_errc value ("io", "request", ...). */
const char *pool_errc_name(int code);

#ifdef __cplusplus
}
#endif
