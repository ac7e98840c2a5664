/* poolstream.c - libpoolclient's streams: open, feed, end, next part, close */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "json.h"
#include "poolclient.h"
#include "poolconn.h"
#include "poolstream.h"

/* Append the open request's options. */
static int open_options(struct buf *b, const struct pool_stream_opts *o)
{
	int r = 0;

	if (o->star)
		r |= buf_adds(b, ",\"star\":true");
	if (o->collect)
		r |= buf_adds(b, ",\"on_error\":\"collect\"");
	if (o->chunksize > 0)
		r |= buf_printf(b, ",\"chunksize\":%ld", o->chunksize);
	if (poolconn_opt_set(o->retries))
		r |= buf_printf(b, ",\"retries\":%ld", poolconn_opt_wire(o->retries));
	if (poolconn_opt_set(o->timeout_ms))
		r |= buf_printf(b, ",\"timeout_ms\":%ld", poolconn_opt_wire(o->timeout_ms));
	if (o->unordered)
		r |= buf_adds(b, ",\"ordered\":false");
	if (o->window > 0)
		r |= buf_printf(b, ",\"window\":%ld", o->window);
	return r;
}

/* Free the queued parts and buffers of s. */
static void stream_free(pool_stream *s)
{
	struct poolstream_part *p, *next;

	for (p = s->head; p; p = next) {
		next = p->next;
		free(p->text);
		free(p);
	}
	buf_free(&s->line);
	buf_free(&s->scratch);
	free(s);
}

/* Open a stream: the map request with "stream":true, then a ping to learn whether it failed. */
pool_stream *pool_stream_open(pool_client *c, const char *fn, const struct pool_stream_opts *opts,
                              struct pool_error *err)
{
	struct pool_stream_opts o = POOL_STREAM_OPTS_INIT;
	pool_stream *s;
	int r;

	if (!c || !fn) {
		poolconn_error(err, POOL_EINVAL, "NULL client or function name");
		return NULL;
	}
	if (c->stream || c->broken) {
		poolconn_error(err, c->broken ? POOL_EIO : POOL_EINVAL, "%s",
		               c->broken ? "the connection failed earlier; reconnect"
		                         : "a stream is already open on this client");
		return NULL;
	}
	if (opts)
		o = *opts;
	s = calloc(1, sizeof(*s));
	if (!s) {
		poolconn_error(err, POOL_ENOMEM, "out of memory");
		return NULL;
	}
	s->c = c;
	s->unordered = o.unordered;
	s->id = c->next_id++;
	s->watch_id = c->next_id++;
	if (buf_printf(&s->line, "{\"id\":%" PRId64 ",\"op\":\"map\",\"fn\":", s->id) < 0 ||
	    buf_add_json_string(&s->line, fn, strlen(fn)) < 0 ||
	    buf_adds(&s->line, ",\"stream\":true") < 0 || open_options(&s->line, &o) < 0 ||
	    buf_printf(&s->line, "}\n{\"id\":%" PRId64 ",\"op\":\"ping\"}\n", s->watch_id) < 0) {
		stream_free(s);
		poolconn_error(err, POOL_ENOMEM, "out of memory");
		return NULL;
	}
	c->stream = s;
	s->until = poolconn_until(c);
	r = poolstream_send_line(s, "", 0, "");
	if (r == 0)
		r = poolstream_wait_watch(s, 0);
	if (r < 0 || s->final < 0) {
		poolstream_sent(s, r, err);
		if (!s->over && !c->broken)
			c->broken = 1; /* the ping went missing: the connection is not sane */
		if (c->stream == s)
			c->stream = NULL;
		stream_free(s);
		return NULL;
	}
	return s;
}

/* Feed a batch of items given as the text of a JSON array. */
int pool_stream_feed_text(pool_stream *s, const char *items_json, size_t len,
                          struct pool_error *err)
{
	size_t count = 0;
	int r;

	if (!s)
		return poolconn_error(err, POOL_EINVAL, "NULL stream");
	if (s->final < 0)
		return poolstream_result(s, err);
	if (s->ended || s->final)
		return poolconn_error(err, POOL_EINVAL, "feed after pool_stream_end()");
	s->until = poolconn_until(s->c);
	r = poolconn_check_array(&s->scratch, &items_json, &len, &count, err);
	if (r < 0)
		return r;
	if (count > (size_t)(LONG_MAX - s->fed))
		return poolconn_error(err, POOL_EINVAL, "too many items");
	buf_reset(&s->line);
	if (buf_printf(&s->line, "{\"id\":%" PRId64 ",\"op\":\"feed\",\"args\":", s->id) < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	s->fed += (long)count;
	r = poolstream_send_line(s, items_json, len, "}\n");
	return poolstream_sent(s, r, err);
}

/* Feed a batch of items given as a cJSON array. */
int pool_stream_feed(pool_stream *s, const cJSON *items, struct pool_error *err)
{
	char *text;
	int r;

	if (!cJSON_IsArray(items))
		return poolconn_error(err, POOL_EINVAL, "items is not a cJSON array");
	text = cJSON_PrintUnformatted(items);
	if (!text)
		return poolconn_error(err, POOL_ENOMEM, "out of memory printing the items");
	r = pool_stream_feed_text(s, text, strlen(text), err);
	cJSON_free(text);
	return r;
}

/* Tell the daemon no more items come. */
int pool_stream_end(pool_stream *s, struct pool_error *err)
{
	int r;

	if (!s)
		return poolconn_error(err, POOL_EINVAL, "NULL stream");
	if (s->final < 0)
		return poolstream_result(s, err);
	if (s->ended || s->final)
		return 0;
	buf_reset(&s->line);
	if (buf_printf(&s->line, "{\"id\":%" PRId64 ",\"op\":\"end\"}\n", s->id) < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	s->ended = 1;
	s->until = poolconn_until(s->c);
	r = poolstream_send_line(s, "", 0, "");
	return poolstream_sent(s, r, err);
}

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next part as text, waiting up to timeout_ms. */
int pool_stream_next_text(pool_stream *s, int timeout_ms, long *index, char **results_json,
                          size_t *results_len, struct pool_error *err)
{
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;

	if (!s || !index || !results_json)
		return poolconn_error(err, POOL_EINVAL, "NULL stream or output");
	s->until = timeout_ms < 0 ? poolconn_until(s->c) : 0;
	for (;;) {
		struct pollfd p = {.fd = s->c ? s->c->fd : -1, .events = POLLIN};
		int wait = timeout_ms;
		struct poolstream_part *h = s->head;

		if (h) {
			s->head = h->next;
			if (!s->head)
				s->tail = NULL;
			*index = h->index;
			*results_json = h->text;
			if (results_len)
				*results_len = h->len;
			free(h);
			return 1;
		}
		if (s->final)
			return poolstream_result(s, err);
		poolstream_handle_lines(s);
		if (s->head || s->final)
			continue;
		if (timeout_ms < 0 && !s->ended && s->received == s->fed)
			return poolconn_error(err, POOL_EINVAL,
			                      "every item fed was answered and the stream is not "
			                      "ended: waiting would never end");
		if (timeout_ms > 0 || s->until) {
			int64_t left = (timeout_ms > 0 ? deadline : s->until) - now_ms();

			wait = left > 0 ? (int)left : 0;
		}
		if (poll(&p, 1, wait) < 0 && errno != EINTR)
			return poolconn_error(err, POOL_EIO, "poll: %s", strerror(errno));
		if (p.revents) {
			poolstream_pump(s, 0);
			continue;
		}
		if (timeout_ms >= 0 && (timeout_ms == 0 || now_ms() >= deadline))
			return poolconn_error(err, POOL_EAGAIN, "no results within %d ms",
			                      timeout_ms);
		if (s->until && now_ms() >= s->until) {
			poolstream_timeout(s);
			return poolstream_result(s, err);
		}
	}
}

/* The next part as a cJSON array. */
int pool_stream_next(pool_stream *s, int timeout_ms, long *index, cJSON **results,
                     struct pool_error *err)
{
	const char *end = NULL;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (!results)
		return poolconn_error(err, POOL_EINVAL, "NULL output");
	r = pool_stream_next_text(s, timeout_ms, index, &text, &len, err);
	if (r != 1)
		return r;
	*results = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
	free(text);
	if (!*results)
		return poolconn_error(err, POOL_ENOMEM, "cannot build the JSON tree of a part");
	return 1;
}

/* Failed items so far and the first of them. */
long pool_stream_failed(const pool_stream *s, struct pool_error *first)
{
	if (!s)
		return 0;
	if (first && s->failed > 0)
		*first = s->first_fail;
	return s->failed;
}

/* The connection's descriptor. */
int pool_stream_fd(const pool_stream *s)
{
	return s ? s->c->fd : -1;
}

/* Cancel the stream if the daemon still runs it, wait for its last line, free it. */
void pool_stream_close(pool_stream *s)
{
	pool_client *c;

	if (!s)
		return;
	c = s->c;
	s->until = poolconn_until(c);
	if (!s->over && !c->broken) {
		s->watch_id = c->next_id++;
		s->watch_seen = 0;
		buf_reset(&s->line);
		if (buf_printf(&s->line,
		               "{\"id\":%" PRId64 ",\"op\":\"cancel\",\"target\":%" PRId64 "}\n",
		               s->watch_id, s->id) < 0 ||
		    poolstream_send_line(s, "", 0, "") < 0 ||
		    poolstream_wait_watch(s, 1) == -POOL_EIO)
			c->broken = 1;
	}
	if (c->stream == s)
		c->stream = NULL;
	stream_free(s);
}
