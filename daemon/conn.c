/* conn.c - one client connection: line framing, ops, backpressure */
#include "conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "request.h"
#include "supervisor.h"

/* Stop reading a client whose unread replies pass OUT_HIGH; resume below OUT_LOW. */
#define OUT_HIGH (8u * 1024 * 1024)
#define OUT_LOW (1u * 1024 * 1024)
/* Bytes moved per read or write system call. */
#define READ_CHUNK (1024 * 1024)

struct conn {
	evutil_socket_t fd;
	struct evbuffer *in;   /* bytes read, not yet framed into lines */
	struct event *ev_read; /* the socket has bytes (or EOF) to read */
	int skipping;          /* discarding the rest of an over-long line */
	int paused;            /* reading stopped until the output drains */
	int blocked;           /* streams over their window: reading stopped until they drain */
	int closing;           /* free once the output is flushed */
	int eof;               /* the client shut its sending side: answer, flush, close */
	size_t scanned;        /* input bytes already searched for a newline */
	int n_requests;
	struct request_list requests;
	struct event *ev_resume; /* deferred: handle lines buffered while not reading */
	struct evbuffer *out;    /* replies not yet written */
	struct event *ev_write;  /* the socket can take more of out */
	struct event *ev_flush;  /* deferred: write what this loop iteration produced */
	TAILQ_ENTRY(conn) link;
};

static void conn_read(struct conn *c);

struct request_list *conn_requests(struct conn *c)
{
	return &c->requests;
}

struct evbuffer *conn_output(struct conn *c)
{
	return c->out;
}

void conn_send_error(struct conn *c, struct json_span id, const struct proto_error *err)
{
	struct buf b = {0};

	proto_reply_error(&b, id, err);
	evbuffer_add(conn_output(c), b.data, b.len);
	buf_free(&b);
	conn_reply_sent(c);
}

void conn_request_added(struct conn *c)
{
	c->n_requests++;
}

void conn_request_removed(struct conn *c)
{
	c->n_requests--;
}

/* Read from the socket unless paused, blocked or closed; handle buffered lines soon. */
static void conn_resume(struct conn *c)
{
	if (c->paused || c->blocked || c->closing)
		return;
	if (!c->eof)
		event_add(c->ev_read, NULL);
	event_active(c->ev_resume, EV_TIMEOUT, 1);
}

void conn_block(struct conn *c, int delta)
{
	c->blocked += delta;
	if (c->blocked && delta > 0)
		event_del(c->ev_read);
	else if (!c->blocked)
		conn_resume(c);
}

/*
 * After adding output: write it before the loop waits again (one write for
 * all the replies of this iteration, and no write event to arm when the
 * socket takes it all, which is the common case), and pause reading while the
 * client is not keeping up.
 */
void conn_reply_sent(struct conn *c)
{
	if (!event_pending(c->ev_write, EV_WRITE, NULL))
		event_active(c->ev_flush, EV_WRITE, 1);
	if (!c->paused && evbuffer_get_length(conn_output(c)) > OUT_HIGH) {
		c->paused = 1;
		event_del(c->ev_read);
	}
}

/* Close c's socket and free its buffers and events (any of them may be missing). */
static void conn_release(struct conn *c)
{
	struct event *evs[] = {c->ev_read, c->ev_resume, c->ev_write, c->ev_flush};
	size_t i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	if (c->in)
		evbuffer_free(c->in);
	if (c->out)
		evbuffer_free(c->out);
	close(c->fd);
	free(c);
}

static void conn_free(struct conn *c)
{
	struct request *r;

	while ((r = TAILQ_FIRST(&c->requests)))
		request_free(r);
	TAILQ_REMOVE(&sv.conns, c, link);
	sv.n_conns--;
	conn_release(c);
	listener_conn_closed();
	supervisor_check_idle();
}

static void reply_simple(struct conn *c, struct json_span id, const char *fields)
{
	struct buf b = {0};

	proto_reply_ok_begin(&b, id);
	buf_adds(&b, fields);
	buf_adds(&b, "}\n");
	evbuffer_add(conn_output(c), b.data, b.len);
	buf_free(&b);
}

static void add_function(const struct fn_def *d, void *arg)
{
	struct buf *b = arg;

	if (b->data[b->len - 1] == '}')
		buf_addc(b, ',');
	buf_adds(b, "{\"name\":");
	buf_add_json_string(b, d->name, strlen(d->name));
	buf_printf(b, ",\"min_args\":%d,\"max_args\":%d,\"doc\":", d->min_args, d->max_args);
	buf_add_json_string(b, d->doc, strlen(d->doc));
	buf_addc(b, '}');
}

static struct request *find_request(struct conn *c, struct json_span id)
{
	struct request *r;

	TAILQ_FOREACH(r, &c->requests, clink)
	if (r->pr.id.len == id.len && memcmp(r->pr.id.p, id.p, id.len) == 0)
		return r;
	return NULL;
}

/*
 * Answer a line with an error. A client reads any error carrying an open
 * stream's id as that stream's end, so it is (but duplicate_id, the answer to
 * a second open with the id, leaves the first alone).
 */
static void conn_error(struct conn *c, struct json_span id, const struct proto_error *err)
{
	struct request *r;

	if (err->code != PROTO_DUPLICATE_ID && id.len && (r = find_request(c, id)) && r->pr.stream)
		request_fail(r, err);
	else
		conn_send_error(c, id, err);
}

/* Answer the ops that need no worker. */
static void handle_simple_op(struct conn *c, struct proto_request *pr)
{
	struct buf b = {0};
	struct proto_error err;
	struct request *r;

	switch (pr->op) {
	case OP_PING:
		buf_printf(&b, ",\"protocol\":%d,\"version\":\"%s\",\"pid\":%d", PROTO_VERSION,
		           POOLD_VERSION, (int)getpid());
		break;
	case OP_STATUS:
		buf_adds(&b, ",\"status\":");
		supervisor_status(&b);
		break;
	case OP_FUNCTIONS:
		buf_adds(&b, ",\"functions\":[");
		registry_foreach(add_function, &b);
		buf_adds(&b, "]");
		break;
	case OP_CANCEL:
		r = find_request(c, pr->target);
		if (!r) {
			proto_error_set(&err, PROTO_NOT_FOUND, -1,
			                "no request with id %.*s in flight on this connection",
			                (int)(pr->target.len > 64 ? 64 : pr->target.len),
			                pr->target.p);
			conn_error(c, pr->id, &err);
			return;
		}
		request_abort(r, PROTO_CANCELLED, "cancelled by the client");
		buf_adds(&b, ",\"cancelled\":");
		buf_add(&b, pr->target.p, pr->target.len);
		break;
	default:
		return;
	}
	reply_simple(c, pr->id, b.data);
	buf_free(&b);
	conn_reply_sent(c);
}

static void handle_line(struct conn *c, char *line, size_t len)
{
	struct proto_limits lim = {.max_items = sv.opt.max_items,
	                           .max_timeout_ms = 86400000,
	                           .default_timeout_ms = sv.opt.timeout_ms};
	struct proto_request pr;
	struct proto_error err;
	struct request *r;

	if (proto_parse_request(line, len, &lim, &pr, &err) < 0)
		goto fail;
	if (pr.op == OP_FEED || pr.op == OP_END) {
		r = find_request(c, pr.id);
		if (!r || !r->pr.stream) {
			proto_error_set(&err, PROTO_NOT_FOUND, -1,
			                "no open stream with this id on this connection");
			goto fail;
		}
		request_feed(r, line, &pr);
		return;
	}
	if (pr.op != OP_MAP && pr.op != OP_APPLY) {
		handle_simple_op(c, &pr);
		free(line);
		return;
	}
	if (sv.stopping) {
		proto_error_set(&err, PROTO_SHUTTING_DOWN, -1, "the daemon is stopping");
		goto fail;
	}
	if (find_request(c, pr.id)) {
		proto_error_set(&err, PROTO_DUPLICATE_ID, -1,
		                "a request with this id is already in flight on this connection");
		goto fail;
	}
	if (c->n_requests >= sv.opt.max_inflight) {
		proto_error_set(&err, PROTO_BUSY, -1,
		                "%d requests already in flight on this connection (--max-inflight)",
		                c->n_requests);
		goto fail;
	}
	if (sv.items_in_flight + pr.n_items > sv.opt.max_pending_items) {
		proto_error_set(&err, PROTO_BUSY, -1,
		                "%llu items already in flight (--max-pending-items); retry later",
		                (unsigned long long)sv.items_in_flight);
		goto fail;
	}
	request_start(c, line, &pr);
	return;
fail:
	conn_error(c, pr.id, &err);
	free(line);
}

static void too_long(struct conn *c)
{
	struct proto_error err;
	struct json_span none = {NULL, 0};

	proto_error_set(&err, PROTO_TOO_LARGE, -1,
	                "request line longer than %zu bytes (--max-line); discarded",
	                sv.opt.max_line);
	conn_send_error(c, none, &err);
}

/* Take every complete line out of the input buffer and handle it. */
static void conn_read(struct conn *c)
{
	struct evbuffer *in = c->in;

	while (!c->paused && !c->blocked && !c->closing) {
		size_t eol_len = 0, len = evbuffer_get_length(in);
		struct evbuffer_ptr p;
		char *line;

		/* Search only the bytes that arrived since the last call: a 64 MiB line
		 * comes in thousands of reads and must not be rescanned for each. */
		if (c->scanned > len || evbuffer_ptr_set(in, &p, c->scanned, EVBUFFER_PTR_SET) < 0)
			evbuffer_ptr_set(in, &p, 0, EVBUFFER_PTR_SET);
		p = evbuffer_search_eol(in, &p, &eol_len, EVBUFFER_EOL_LF);
		c->scanned = p.pos < 0 ? len : 0;
		if (p.pos < 0 && c->eof && len && !c->skipping && len <= sv.opt.max_line) {
			p.pos = (ssize_t)len; /* at EOF a last line needs no newline */
			eol_len = 0;
		}
		if (p.pos < 0) {
			if (c->skipping) {
				evbuffer_drain(in, len);
			} else if (len > sv.opt.max_line) {
				too_long(c);
				c->skipping = 1;
				evbuffer_drain(in, len);
			}
			if (c->skipping)
				c->scanned = 0;
			return;
		}
		len = (size_t)p.pos;
		c->scanned = 0;
		if (c->skipping || len > sv.opt.max_line) {
			if (!c->skipping)
				too_long(c);
			c->skipping = 0;
			evbuffer_drain(in, len + eol_len);
			continue;
		}
		line = malloc(len + 1);
		if (!line) {
			log_error("out of memory reading a %zu-byte line", len);
			c->closing = 1;
			return;
		}
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		line[len] = '\0';
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0) {
			free(line);
			continue;
		}
		handle_line(c, line, len);
	}
}

/* Free c once it has nothing left to say and nobody will ask more. Returns 1 if freed. */
static int conn_maybe_close(struct conn *c)
{
	if ((c->closing || (c->eof && c->n_requests == 0)) &&
	    evbuffer_get_length(conn_output(c)) == 0) {
		conn_free(c);
		return 1;
	}
	return 0;
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_read(c);
	conn_maybe_close(c);
}

/* Write up to READ_CHUNK bytes of replies (from the flush or the write event). */
static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(c->out) && evbuffer_write_atmost(c->out, fd, READ_CHUNK) < 0 &&
	    errno != EAGAIN && errno != EINTR) {
		if (c->n_requests)
			log_debug("client gone with %d requests in flight; dropping them",
			          c->n_requests);
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(c->out))
		event_add(c->ev_write, NULL);
	else
		event_del(c->ev_write);
	if (conn_maybe_close(c))
		return;
	if (c->paused && evbuffer_get_length(c->out) <= OUT_LOW) {
		c->paused = 0;
		conn_resume(c); /* lines already buffered do not fire the read callback */
	}
}

/* The client shut its side (failed == 0) or the socket failed. */
static void conn_eof(struct conn *c, int failed)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	/*
	 * EOF alone is a half-close (echo ... | socat): answer what was asked, then
	 * close. POLLHUP or an error means the client is gone: drop its requests.
	 */
	if (!failed && poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP)) {
		c->eof = 1;
		event_del(c->ev_read);
		conn_read(c);
		conn_maybe_close(c);
		return;
	}
	if (c->n_requests)
		log_debug("client left with %d requests in flight; dropping them", c->n_requests);
	conn_free(c);
}

/*
 * Read what the socket has, straight into the input buffer (a bufferevent
 * reads 4 KiB a call: 16384 reads for a 64 MiB line).
 */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct evbuffer_iovec v;
	ssize_t n;

	if (evbuffer_reserve_space(c->in, READ_CHUNK, &v, 1) < 1) {
		log_error("out of memory reading from a client");
		conn_free(c);
		return;
	}
	n = read(fd, v.iov_base, v.iov_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_eof(c, n < 0);
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &v, 1);
	conn_read(c);
}

void conn_new(evutil_socket_t fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->in = evbuffer_new();
	c->ev_read = event_new(sv.base, fd, EV_READ | EV_PERSIST, on_readable, c);
	c->ev_resume = evtimer_new(sv.base, on_resume, c);
	c->out = evbuffer_new();
	c->ev_write = event_new(sv.base, fd, EV_WRITE | EV_PERSIST, on_write, c);
	c->ev_flush = event_new(sv.base, fd, 0, on_write, c);
	if (!c->in || !c->ev_read || !c->ev_resume || !c->out || !c->ev_write || !c->ev_flush) {
		conn_release(c);
		return;
	}
	TAILQ_INIT(&c->requests);
	TAILQ_INSERT_TAIL(&sv.conns, c, link);
	sv.n_conns++;
	event_add(c->ev_read, NULL);
}

void conn_close_all_flushed(void)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&sv.conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		c->closing = 1;
		event_del(c->ev_read);
		if (evbuffer_get_length(conn_output(c)) == 0)
			conn_free(c);
	}
}

void conn_abort_all(enum proto_code code, const char *why)
{
	struct conn *c;
	struct request *r;

	TAILQ_FOREACH(c, &sv.conns, link)
	while ((r = TAILQ_FIRST(&c->requests)))
		request_abort(r, code, why);
}
