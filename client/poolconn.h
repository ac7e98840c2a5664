/* poolconn.h - libpoolclient internals: the connection and the request/reply round trip */
#pragma once

#include <stdint.h>

#include "buf.h"
#include "json.h"
#include "poolclient.h"

struct pool_client {
	int fd;
	int64_t next_id;
	int64_t cur_id;            /* id of the request in flight */
	struct buf rbuf;           /* received bytes; the line handed out last comes first */
	size_t consumed;           /* bytes of the line handed out last (with its newline) */
	size_t scanned;            /* bytes at the start of rbuf known to hold no newline */
	struct buf req;            /* head of the request being built */
	struct buf tmp;            /* scratch: string decoding, argument copies */
	int broken;                /* the connection failed; every later call fails at once */
	struct pool_error lasterr; /* used when the caller passes err == NULL */
};

/* A received reply: spans point into the client's receive buffer until the next read. */
struct poolconn_reply {
	struct json_span obj;
	int ok;
};

/* Fill err (printf-style one-line message; err may be NULL) and return -code. */
int poolconn_error(struct pool_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Look up member key of a validated object: 1 with *val set, or 0. */
int poolconn_get(struct json_span obj, const char *key, struct json_span *val);
/* Fill err from a protocol error object {"code":..,"message":..,"index":..}; returns -err->code. */
int poolconn_error_from(pool_client *c, struct json_span eo, struct pool_error *err);
/* Start the next request in c->req: {"id":N, then ,"op":"OP" unless op is NULL. */
int poolconn_begin(pool_client *c, const char *op);
/*
 * Send c->req + body + tail as one request line and wait for its reply; an
 * ok:false reply becomes -POOL_EREQUEST or -POOL_EJOB with err filled.
 */
int poolconn_transact(pool_client *c, const char *body, size_t body_len, const char *tail,
                      struct poolconn_reply *rep, struct pool_error *err);
