/* poolstream.h - libpoolclient internals: a stream's state, replies and writes */
#pragma once

#include <stdint.h>

#include "buf.h"
#include "poolclient.h"

/* One part received and not handed out yet. */
struct poolstream_part {
	struct poolstream_part *next;
	long index;
	char *text; /* the results array, NUL-terminated */
	size_t len;
};

struct pool_stream {
	pool_client *c;
	int64_t id;
	int unordered;
	int ended; /* "end" was sent */
	int over;  /* the daemon's done or error line for the stream arrived */
	int final; /* 0 = running, 1 = done, -code = ended by the error in fin */
	struct pool_error fin;
	int64_t until;    /* the public call running must end by then (ms), 0 = no deadline */
	int64_t watch_id; /* a request of ours besides the stream (ping at open, cancel at close) */
	int watch_seen;   /* its reply arrived */
	int watch_ok;     /* and said ok */
	long fed;         /* items sent */
	long received;    /* items in the parts received */
	long next_part;   /* ordered: the index the next part must start at */
	long failed;
	struct pool_error first_fail; /* collect: the failed item of lowest index */
	struct poolstream_part *head, *tail;
	struct buf line;    /* request heads */
	struct buf scratch; /* items with newlines turned into spaces */
};

/* The outcome of an ended stream, copied into err: 0 when done, else the error. */
int poolstream_result(pool_stream *s, struct pool_error *err);
/* After a request line of the stream was sent (r from poolstream_send_line): 0 or the error. */
int poolstream_sent(pool_stream *s, int r, struct pool_error *err);
/* Handle every complete line already received (parts are queued). */
void poolstream_handle_lines(pool_stream *s);
/*
 * Receive what is there (or wait for it when block, until s->until) and handle
 * it; 0, -POOL_EIO or -POOL_ETIMEDOUT (both end the stream).
 */
int poolstream_pump(pool_stream *s, int block);
/* Send one line made of the head in s->line, body and tail, reading replies meanwhile. */
int poolstream_send_line(pool_stream *s, const char *body, size_t len, const char *tail);
/* The deadline passed: cancel the stream, end it with -POOL_ETIMEDOUT (returned). */
int poolstream_timeout(pool_stream *s);
/*
 * Wait for the reply to s->watch_id (and, when over_too and it was ok, the
 * stream's end); 0, or the error of poolstream_pump().
 */
int poolstream_wait_watch(pool_stream *s, int over_too);
