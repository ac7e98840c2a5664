/* poolconn.h - libpoolclient internals: the connection and the request/reply round trip */
#pragma once

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"
#include "json.h"
#include "poolclient.h"
#include "poolints.h"

struct pool_client {
	int fd;
	int64_t next_id;
	int64_t cur_id;            /* id of the request in flight */
	struct buf rbuf;           /* received bytes; lines already handed out come first */
	size_t rpos;               /* start of the bytes not handed out yet */
	size_t scanned;            /* bytes after rpos known to hold no newline */
	size_t last_line;          /* length of the last line handed out */
	struct buf req;            /* head of the request being built */
	struct buf tmp;            /* scratch: string decoding, argument copies */
	int broken;                /* the connection failed; every later call fails at once */
	long spin_us;              /* pool_set_spin(): poll this long before sleeping */
	long deadline_ms;          /* pool_set_deadline(): 0 = none */
	pool_stream *stream;       /* the stream that owns the connection until it ends */
	struct pool_error lasterr; /* used when the caller passes err == NULL */
	struct ssl_st *tls;        /* tls:// (pooltls.c): the session; NULL: plain bytes on fd */
	int tls_failed;            /* the session failed: no close_notify at pool_close() */
	char tls_err[128];         /* why it failed, for messages */
};

/* Top-level members of a reply recorded while it is validated (more are looked up). */
#define POOLCONN_MEMBERS 12

/* A received reply: spans point into the client's receive buffer until the next read. */
struct poolconn_reply {
	struct json_span obj;
	int ok;
	int n;   /* members recorded, in order */
	int all; /* every member of obj is recorded */
	struct json_span key[POOLCONN_MEMBERS];
	struct json_span val[POOLCONN_MEMBERS];
};

/* 1 when option value v asks for something (> 0 or POOL_NONE), 0 for the default. */
static inline int poolconn_opt_set(long v)
{
	return v > 0 || v == POOL_NONE;
}

/* The value to send for an option that is set (POOL_NONE is the wire's 0). */
static inline long poolconn_opt_wire(long v)
{
	return v == POOL_NONE ? 0 : v;
}

/*
 * The transport (pooltls.c): recv(2), sendmsg(2) and send(2) on c's socket,
 * or through its TLS session with the same results (-1 with errno EAGAIN
 * under MSG_DONTWAIT; otherwise they wait). A TLS read leaves no decrypted
 * byte inside the session, so poll(2) on the socket stays truthful.
 */
ssize_t poolconn_io_recv(pool_client *c, void *buf, size_t n, int flags);
ssize_t poolconn_io_sendmsg(pool_client *c, const struct msghdr *m, int flags);
ssize_t poolconn_io_send(pool_client *c, const void *buf, size_t n, int flags);
/* strerror(e), or the TLS session's reason when it failed. */
const char *poolconn_io_strerror(const pool_client *c, int e);
/* End the TLS session (close_notify unless it failed); the socket stays open. */
void poolconn_io_close(pool_client *c);

/* The monotonic time (ms) a call starting now must end by, 0 when c has no deadline. */
int64_t poolconn_until(const pool_client *c);
/*
 * Wait until fd is ready for events or until (ms, 0 = forever) passes:
 * 1 ready, 0 timed out, -POOL_EIO on a poll failure.
 */
int poolconn_wait(int fd, short events, int64_t until, struct pool_error *err);
/*
 * Send {"op":"cancel","target":target} without waiting (the reply is dropped
 * later as stale); when it cannot be written at once the connection is shut down
 * and marked broken, which cancels everything on it too.
 */
void poolconn_send_cancel(pool_client *c, int64_t target);

/* Fill err (printf-style one-line message; err may be NULL) and return -code. */
int poolconn_error(struct pool_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Look up member key of a validated object: 1 with *val set, or 0. */
int poolconn_get(struct json_span obj, const char *key, struct json_span *val);
/* Look up member key of a parsed reply (first of duplicates, as poolconn_get): 1 or 0. */
int poolconn_reply_get(const struct poolconn_reply *rep, const char *key, struct json_span *val);
/* Fill err from a protocol error object {"code":..,"message":..,"index":..}; returns -err->code. */
int poolconn_error_from(pool_client *c, struct json_span eo, struct pool_error *err);
/*
 * Check that args (*len bytes) is one JSON array; *args and *len then name the text
 * to send (a copy in scratch with newlines turned into spaces when it had any).
 * *count (may be NULL) receives the number of items.
 */
int poolconn_check_array(struct buf *scratch, const char **args, size_t *len, size_t *count,
                         struct pool_error *err);
/* The caller's err, or the client's own when the caller passed NULL. */
struct pool_error *poolconn_errp(pool_client *c, struct pool_error *err);
/*
 * The next complete line already received: 1 with *line set (newline replaced
 * by NUL; valid until the next poolconn_recv), or 0.
 */
int poolconn_take_line(pool_client *c, struct json_span *line);
/*
 * Receive once (flags for recv(2), e.g. MSG_DONTWAIT): the number of bytes,
 * 0 when MSG_DONTWAIT found nothing, or -POOL_EIO (the connection is then
 * marked broken; end of file is an error too) or -POOL_ENOMEM. It reads even
 * from a broken connection: the daemon may have said why it closed.
 */
int poolconn_recv(pool_client *c, int flags, struct pool_error *err);
/* Skip the first done bytes of iov[0..*n) after a partial write. */
void poolconn_iov_advance(struct iovec **iov, int *n, size_t done);
/*
 * Validate a reply line: its object, whether it is ok, and its id in *id.
 * One pass: each top-level member is validated where it stands and
 * recorded, so that looking members up walks nothing again. Returns 0 or
 * -POOL_EPROTO.
 */
int poolconn_parse_reply(struct json_span line, struct poolconn_reply *rep, struct json_span *id,
                         struct pool_error *err);
/* Start the next request in c->req: {"id":N, then ,"op":"OP" unless op is NULL. */
int poolconn_begin(pool_client *c, const char *op);
/* A request line being sent in parts. */
struct poolconn_tx {
	int64_t until; /* the call's deadline (ms, 0: none) */
	int sent;      /* some of the line went out */
};

/* Start a request that is sent in parts: 0, or an error (a failed connection, a stream open). */
int poolconn_tx_begin(pool_client *c, struct poolconn_tx *tx, struct pool_error *err);
/* Send c->req as the next part of the line and empty it: 0 or an error (as poolconn_transact). */
int poolconn_tx_part(pool_client *c, struct poolconn_tx *tx, struct poolconn_reply *rep,
                     struct poolints_reader *fast, struct pool_error *err);
/* Send c->req + body + tail, the line's end, and wait for the reply: as poolconn_transact. */
int poolconn_tx_end(pool_client *c, struct poolconn_tx *tx, const char *body, size_t body_len,
                    const char *tail, struct poolconn_reply *rep, struct poolints_reader *fast,
                    struct pool_error *err);
/* Give up a request between parts: a line partly sent closes the connection. */
void poolconn_tx_abort(pool_client *c, struct poolconn_tx *tx);

/*
 * Send c->req + body + tail as one request line and wait for its reply; an
 * ok:false reply becomes -POOL_EREQUEST or -POOL_EJOB with err filled. With
 * fast (else NULL), the reply is offered to the fast reader first as it
 * arrives: 1 when the reader took it (rep is not set), 0 when rep holds it.
 */
int poolconn_transact(pool_client *c, const char *body, size_t body_len, const char *tail,
                      struct poolconn_reply *rep, struct poolints_reader *fast,
                      struct pool_error *err);
