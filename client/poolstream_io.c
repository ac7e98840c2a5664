/* poolstream_io.c - libpoolclient's streams on the wire: replies in, request lines out */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "buf.h"
#include "json.h"
#include "poolclient.h"
#include "poolconn.h"
#include "poolstream.h"

/* End the stream with error e unless it has ended already; returns -e->code. */
static int stream_fail(pool_stream *s, const struct pool_error *e)
{
	if (s->final == 0) {
		s->fin = *e;
		s->final = -e->code;
	}
	return -e->code;
}

/* The outcome of an ended stream, copied into err: 0 when done, else the error. */
int poolstream_result(pool_stream *s, struct pool_error *err)
{
	if (s->final >= 0)
		return 0;
	if (err)
		*err = s->fin;
	return s->final;
}

/* After a line of the stream was sent (r from poolstream_send_line): 0 or the stream's error. */
int poolstream_sent(pool_stream *s, int r, struct pool_error *err)
{
	if (s->final < 0)
		return poolstream_result(s, err);
	if (r < 0)
		return poolconn_error(err, POOL_EIO, "the connection failed");
	return 0;
}

/* The daemon said the last word about the stream: other requests may use the client. */
static void stream_over(pool_stream *s)
{
	s->over = 1;
	if (s->c->stream == s)
		s->c->stream = NULL;
}

/* Remember failed item f of the part results (first item index) when it is the lowest yet. */
static void note_failure(pool_stream *s, struct json_span results, int64_t index, int64_t f)
{
	struct json_span x, eo;
	struct json_iter it;
	int64_t k = index;

	if (s->failed++ > 0 && f >= s->first_fail.index)
		return;
	poolconn_error(&s->first_fail, POOL_EJOB, "failed");
	json_iter_init(&it, results);
	while (json_array_next(&it, &x) && k < f)
		k++;
	if (k == f && poolconn_get(x, "error", &eo) && json_type(eo) == JSON_OBJECT)
		poolconn_error_from(s->c, eo, &s->first_fail);
	s->first_fail.code = POOL_EJOB;
	s->first_fail.index = (long)f;
}

/* Queue a part; collect mode: count its failures, remember the one of lowest index. */
static int add_part(pool_stream *s, const struct poolconn_reply *rep, struct pool_error *e)
{
	struct json_span idx, res, failed, x;
	struct json_iter it;
	int64_t index, f;
	size_t count;
	struct poolstream_part *p;

	if (!poolconn_reply_get(rep, "index", &idx) || json_int(idx, &index) < 0 ||
	    !poolconn_reply_get(rep, "results", &res) || json_type(res) != JSON_ARRAY)
		return poolconn_error(e, POOL_EPROTO, "stream part without index or results");
	count = json_array_count(res);
	if (index < 0 || index > s->fed || count > (size_t)(s->fed - index) ||
	    (!s->unordered && index != s->next_part))
		return poolconn_error(e, POOL_EPROTO,
		                      "stream part at index %" PRId64 " with %zu results is not "
		                      "expected (%ld items fed, next part at %ld)",
		                      index, count, s->fed, s->next_part);
	if (poolconn_reply_get(rep, "failed", &failed) && json_type(failed) == JSON_ARRAY) {
		json_iter_init(&it, failed);
		while (json_array_next(&it, &x)) {
			if (json_int(x, &f) < 0 || f < index || f >= index + (int64_t)count)
				return poolconn_error(e, POOL_EPROTO, "bad \"failed\" in a part");
			note_failure(s, res, index, f);
		}
	}
	p = malloc(sizeof(*p));
	if (!p || !(p->text = malloc(res.len + 1))) {
		free(p);
		return poolconn_error(e, POOL_ENOMEM, "out of memory queueing a part");
	}
	memcpy(p->text, res.p, res.len);
	p->text[res.len] = '\0';
	p->len = res.len;
	p->index = (long)index;
	p->next = NULL;
	if (s->tail)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
	s->received += (long)count;
	if (!s->unordered)
		s->next_part = (long)index + (long)count;
	return 0;
}

/* The done line: its counts must match what was fed and received. */
static int done_line(pool_stream *s, const struct poolconn_reply *rep, struct pool_error *e)
{
	struct json_span v;
	int64_t items = -1, failed = -1;

	if (poolconn_reply_get(rep, "items", &v))
		json_int(v, &items);
	if (poolconn_reply_get(rep, "failed", &v))
		json_int(v, &failed);
	if (!s->ended || items != s->fed || s->received != s->fed || failed != s->failed)
		return poolconn_error(e, POOL_EPROTO,
		                      "stream done with %" PRId64 " items, %" PRId64
		                      " failed, but %ld were fed, %ld answered, %ld failed%s",
		                      items, failed, s->fed, s->received, s->failed,
		                      s->ended ? "" : " and the stream was not ended");
	s->final = 1;
	return 0;
}

/* An error reply's error object into e; -POOL_EPROTO when it has none. */
static int error_of(pool_stream *s, const struct poolconn_reply *rep, struct pool_error *e)
{
	struct json_span v;

	if (!poolconn_reply_get(rep, "error", &v) || json_type(v) != JSON_OBJECT)
		return poolconn_error(e, POOL_EPROTO, "error reply has no \"error\" object");
	poolconn_error_from(s->c, v, e);
	return 0;
}

/* Handle a reply to the stream itself: a part, done, or the error that ends it. */
static int stream_line(pool_stream *s, const struct poolconn_reply *rep, struct pool_error *e)
{
	struct json_span v;
	int r;

	if (!rep->ok) {
		r = error_of(s, rep, e);
		if (r == 0)
			stream_fail(s, e);
		stream_over(s);
		return r;
	}
	if (poolconn_reply_get(rep, "done", &v)) {
		r = done_line(s, rep, e);
		stream_over(s);
		return r;
	}
	return add_part(s, rep, e);
}

/* Handle one received line; a protocol error ends the stream and breaks the connection. */
static void handle_line(pool_stream *s, struct json_span line)
{
	struct poolconn_reply rep;
	struct pool_error e;
	struct json_span id;
	int64_t n = 0;
	int r;

	r = poolconn_parse_reply(line, &rep, &id, &e);
	if (r == 0 && json_type(id) == JSON_NULL) {
		/* an error about a line of ours that the daemon could not tie to an id */
		r = rep.ok ? poolconn_error(&e, POOL_EPROTO, "ok reply without an id")
		           : error_of(s, &rep, &e);
		if (r == 0) {
			stream_fail(s, &e);
			return;
		}
	} else if (r == 0 && json_int(id, &n) == 0 && n == s->watch_id) {
		s->watch_seen = 1;
		s->watch_ok = rep.ok;
		return;
	} else if (r == 0) {
		if (json_int(id, &n) < 0 || n != s->id || s->over)
			return; /* a stale reply, or not_found for feeds after the stream's end */
		r = stream_line(s, &rep, &e);
	}
	if (r < 0 && e.code != POOL_ENOMEM) {
		s->c->broken = 1;
		stream_over(s);
	}
	if (r < 0)
		stream_fail(s, &e);
}

/* Handle every complete line already received. */
void poolstream_handle_lines(pool_stream *s)
{
	struct json_span line;

	while (poolconn_take_line(s->c, &line))
		handle_line(s, line);
}

/*
 * Receive what is there (or wait for it when block) and handle it: 0, or
 * -POOL_EIO when the connection failed (which ends the stream).
 */
int poolstream_pump(pool_stream *s, int block)
{
	struct pool_error e;
	int r;

	if (block && s->until) {
		r = poolconn_wait(s->c->fd, POLLIN, s->until, &e);
		if (r == 0)
			return poolstream_timeout(s);
		if (r < 0) {
			stream_over(s);
			stream_fail(s, &e);
			return -POOL_EIO;
		}
	}
	r = poolconn_recv(s->c, block ? 0 : MSG_DONTWAIT, &e);

	/* lines received before a failure may say why (shutting_down, ...) */
	poolstream_handle_lines(s);
	if (r < 0) {
		stream_over(s);
		stream_fail(s, &e);
		return -POOL_EIO;
	}
	return 0;
}

int poolstream_timeout(pool_stream *s)
{
	struct pool_error e;

	poolconn_send_cancel(s->c, s->id);
	poolconn_error(&e, POOL_ETIMEDOUT,
	               "no reply within the deadline (%ld ms); the stream was cancelled",
	               s->c->deadline_ms);
	stream_over(s);
	stream_fail(s, &e);
	return -POOL_ETIMEDOUT;
}

/*
 * Write iov[0..n) whole, reading and handling replies whenever the socket is
 * full: the daemon stops reading while the stream is over its window, and
 * resumes only once we took its results.
 */
static int send_reading(pool_stream *s, struct iovec *iov, int n)
{
	pool_client *c = s->c;
	struct pool_error e;
	int iov_whole = 1; /* no byte of the line is out yet */

	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w;

		if (c->broken) {
			poolconn_error(&e, POOL_EIO, "the connection failed");
			return stream_fail(s, &e);
		}
		w = poolconn_io_sendmsg(c, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			int werr = errno;

			/* read what the daemon said before it closed, then fail */
			while (!c->broken && poolstream_pump(s, 1) == 0)
				;
			c->broken = 1;
			stream_over(s);
			poolconn_error(&e, POOL_EIO, "write: %s", strerror(werr));
			return stream_fail(s, &e);
		}
		if (w < 0) {
			int pr = poolconn_wait(c->fd, POLLIN | POLLOUT, s->until, &e);

			if (pr == 0 && iov_whole) {
				/* nothing of this line is out: the stream can be cancelled */
				return poolstream_timeout(s);
			}
			if (pr == 0) {
				shutdown(c->fd, SHUT_RDWR);
				c->broken = 1;
				stream_over(s);
				poolconn_error(
				    &e, POOL_ETIMEDOUT,
				    "the daemon did not read within the deadline (%ld ms); "
				    "the connection was closed",
				    c->deadline_ms);
				return stream_fail(s, &e);
			}
			if (pr < 0) {
				c->broken = 1;
				stream_over(s);
				return stream_fail(s, &e);
			}
			if (poolstream_pump(s, 0) < 0)
				return -POOL_EIO;
			continue;
		}
		iov_whole = 0;
		poolconn_iov_advance(&iov, &n, (size_t)w);
	}
	return 0;
}

/* Send one line made of the head in s->line, body and tail. */
int poolstream_send_line(pool_stream *s, const char *body, size_t len, const char *tail)
{
	struct iovec iov[3] = {
	    {.iov_base = s->line.data, .iov_len = s->line.len},
	    {.iov_base = (void *)(uintptr_t)body, .iov_len = len},
	    {.iov_base = (void *)(uintptr_t)tail, .iov_len = strlen(tail)},
	};

	return send_reading(s, iov, 3);
}

/*
 * Wait until the watched reply arrived and, when over_too and that reply was
 * ok (a cancel that found the stream), the stream's last line.
 */
int poolstream_wait_watch(pool_stream *s, int over_too)
{
	poolstream_handle_lines(s);
	while (!s->watch_seen || (over_too && s->watch_ok && !s->over)) {
		int r;

		if (s->c->broken)
			return -POOL_EIO;
		r = poolstream_pump(s, 1);
		if (r < 0)
			return r;
	}
	return 0;
}
