/* conn.c - one client connection: line framing, ops, backpressure */
#include "conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "confgen.h"
#include "config.h"
#include "idmap.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "supervisor.h"
#include "tls.h"

/* Stop reading a client whose unread replies pass OUT_HIGH; resume below OUT_LOW. */
#define OUT_HIGH (8u * 1024 * 1024)
#define OUT_LOW (1u * 1024 * 1024)
/* Bytes moved per read or write system call. */
#define READ_CHUNK (1024 * 1024)
/* --max-memory when the options leave it 0. */
#define DEFAULT_MAX_MEMORY ((size_t)256 * 1024 * 1024)
/* A line being read is refused for memory only once it is this long. */
#define PARTIAL_FREE (64 * 1024)
/* Give freed heap back to the system when the last client leaves after this much. */
#define TRIM_AFTER (8u * 1024 * 1024)
/* Without a spare descriptor to watch a silent connection, look at it this often. */
#define WATCH_POLL_MS 100

struct conn {
	evutil_socket_t fd;
	struct evbuffer *in;   /* bytes read, not yet framed into lines */
	struct event *ev_read; /* the socket has bytes (or EOF) to read */
	struct json_scan scan; /* the line being read, validated as its bytes come */
	size_t fed;            /* bytes of that line scanned (for JSON and its newline) */
	/* where that line's args lie, found by the same scan: items counted and cut without a walk
	 */
	struct json_index index;
	size_t marks[JSON_INDEX_MARKS]; /* index.mark */
	int skipping;                   /* discarding the rest of a refused line */
	int paused;                     /* reading stopped until the output drains */
	int blocked;                    /* streams full: reading stopped until they drain */
	int starved;                    /* a long line waits for memory this connection holds */
	int closing;                    /* free once the output is flushed */
	int eof;                        /* the client shut its sending side: answer, flush, close */
	int watch_fd;                   /* a dup of fd watched for a full close while not reading */
	struct tls *tls;                /* a tls:// client's session; NULL: plain bytes on fd */
	char peer[64];                  /* a remote client's address ("" on the Unix socket) */
	struct event *ev_watch;
	size_t held; /* bytes its requests hold (text, results) */
	int n_requests;
	struct request_list requests;
	struct idmap ids;        /* the same requests by id */
	struct event *ev_resume; /* deferred: handle lines buffered while not reading */
	struct evbuffer *out;    /* replies not yet written */
	struct event *ev_write;  /* the socket can take more of out */
	struct event *ev_flush;  /* deferred: write what this loop iteration produced */
	struct evbuffer_cb_entry *in_cb, *out_cb;
	TAILQ_ENTRY(conn) link;
};

/* Bytes the supervisor buffers for clients: input, output, request text, results. */
static size_t mem_total;
/* Full streams and starved connections: what a release may let read again. */
static int n_blocked;
/* A re-check of full streams is queued (see conn_wake). */
static int wake_queued;
/* The most mem_total reached since the heap was last trimmed. */
static size_t mem_peak;

static void conn_read(struct conn *c);
static void conn_resume(struct conn *c);
static void conn_tls_kick(struct conn *c);

struct request_list *conn_requests(struct conn *c)
{
	return &c->requests;
}

struct evbuffer *conn_output(struct conn *c)
{
	return c->out;
}

size_t conn_max_memory(void)
{
	return sv.opt.max_memory ? sv.opt.max_memory : DEFAULT_MAX_MEMORY;
}

int conn_over_budget(void)
{
	return sv.items_in_flight >= sv.opt.max_pending_items || mem_total > conn_max_memory();
}

/* Re-check every full stream: memory or items were released. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c;
	struct request *r;

	wake_queued = 0;
	TAILQ_FOREACH(c, &sv.conns, link)
	{
		if (c->starved) {
			c->starved = 0;
			n_blocked--;
			conn_resume(c); /* its line is looked at again */
		}
		if (!c->blocked)
			continue;
		TAILQ_FOREACH(r, &c->requests, clink)
		if (r->full)
			request_check_window(r);
	}
}

/* Something was released: let full streams look again, once per loop iteration. */
static void conn_wake(void)
{
	struct timeval now = {0, 0};

	if (n_blocked && !wake_queued &&
	    event_base_once(sv.base, -1, EV_TIMEOUT, on_wake, NULL, &now) == 0)
		wake_queued = 1;
}

void conn_mem(struct conn *c, ssize_t delta)
{
	c->held += (size_t)delta;
	mem_total += (size_t)delta;
	if (mem_total > mem_peak)
		mem_peak = mem_total;
	if (delta < 0)
		conn_wake();
}

/* The input or output buffer of a connection grew or shrank. */
static void on_buffer(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	mem_total += info->n_added;
	mem_total -= info->n_deleted;
	if (mem_total > mem_peak)
		mem_peak = mem_total;
	if (info->n_deleted)
		conn_wake();
}

void conn_status(struct buf *b)
{
	struct conn *c;
	int first = 1;

	buf_printf(b, ",\"memory\":%zu,\"max_memory\":%zu,\"items_in_flight\":%llu", mem_total,
	           conn_max_memory(), (unsigned long long)sv.items_in_flight);
	/* Remote clients: TLS ones by their certificate's name. */
	buf_adds(b, ",\"remote_clients\":[");
	TAILQ_FOREACH(c, &sv.conns, link)
	{
		const char *name = c->tls ? tls_peer_name(c->tls) : "";

		if (!c->peer[0])
			continue;
		buf_adds(b, first ? "{\"name\":" : ",{\"name\":");
		buf_add_json_string(b, name, strlen(name));
		buf_adds(b, ",\"address\":");
		buf_add_json_string(b, c->peer, strlen(c->peer));
		buf_printf(b, ",\"tls\":%s,\"requests\":%d}", c->tls ? "true" : "false",
		           c->n_requests);
		first = 0;
	}
	buf_addc(b, ']');
}

void conn_send_error(struct conn *c, struct json_span id, const struct proto_error *err)
{
	struct buf b = {0};

	proto_reply_error(&b, id, err);
	evbuffer_add(conn_output(c), b.data, b.len);
	buf_free(&b);
	conn_reply_sent(c);
	metrics_error(err->code);
}

void conn_request_added(struct conn *c, struct request *r)
{
	c->n_requests++;
	idmap_put(&c->ids, r);
}

void conn_request_removed(struct conn *c, struct request *r)
{
	c->n_requests--;
	idmap_del(&c->ids, r);
}

static void conn_free(struct conn *c);

/* The client closed fully (not just its sending side): drop it and its work. */
static int conn_probe_gone(struct conn *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	if (poll(&p, 1, 0) < 0 || !(p.revents & (POLLHUP | POLLERR)))
		return 0;
	if (c->n_requests)
		log_debug("client left with %d requests in flight; dropping them", c->n_requests);
	conn_free(c);
	return 1;
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	conn_probe_gone(arg);
}

/*
 * While its socket is not read (a half-close, a full stream, unread
 * replies), a connection is still watched for the client's full close, which
 * drops it at once. The watch is an edge-triggered read event on a duplicate
 * of the socket: it wakes when the client sends more or goes away, never
 * spins on bytes left unread. Without a spare descriptor, a timer looks.
 */
static void watch_start(struct conn *c)
{
	struct timeval tv = {0, WATCH_POLL_MS * 1000};

	if (c->ev_watch)
		return;
	c->watch_fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	if (c->watch_fd >= 0)
		c->ev_watch =
		    event_new(sv.base, c->watch_fd, EV_READ | EV_ET | EV_PERSIST, on_watch, c);
	else
		c->ev_watch = event_new(sv.base, -1, EV_PERSIST, on_watch, c);
	if (!c->ev_watch || event_add(c->ev_watch, c->watch_fd >= 0 ? NULL : &tv) < 0)
		log_warn("cannot watch a client for its close: %s", strerror(errno));
}

static void watch_stop(struct conn *c)
{
	if (c->ev_watch)
		event_free(c->ev_watch);
	c->ev_watch = NULL;
	if (c->watch_fd >= 0)
		close(c->watch_fd);
	c->watch_fd = -1;
}

/*
 * TLS: a session can hold what the socket no longer shows (decrypted bytes,
 * a close_notify read after data), and a renegotiation-free session's only
 * cross waits are a handshake message for the socket to take (read waits for
 * writable) and a write that waits for a read; wake the other side for them.
 */
static void conn_tls_kick(struct conn *c)
{
	if (tls_pending(c->tls) && event_pending(c->ev_read, EV_READ, NULL))
		event_active(c->ev_read, EV_READ, 1);
	if (tls_write_wants_read(c->tls) && evbuffer_get_length(c->out))
		event_active(c->ev_flush, EV_WRITE, 1);
}

/* Read the socket while nothing stops it; else watch it for the client's full close. */
static void conn_set_reading(struct conn *c)
{
	if (!c->paused && !c->blocked && !c->starved && !c->closing && !c->eof) {
		event_add(c->ev_read, NULL);
		watch_stop(c);
		if (c->tls)
			conn_tls_kick(c);
		return;
	}
	event_del(c->ev_read);
	if (c->closing)
		watch_stop(c);
	else
		watch_start(c);
}

/* Read from the socket unless paused, blocked or closed; handle buffered lines soon. */
static void conn_resume(struct conn *c)
{
	conn_set_reading(c);
	if (!c->paused && !c->blocked && !c->starved && !c->closing)
		event_active(c->ev_resume, EV_TIMEOUT, 1);
}

void conn_block(struct conn *c, int delta)
{
	c->blocked += delta;
	n_blocked += delta;
	if (c->blocked && delta > 0)
		conn_set_reading(c);
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
		conn_set_reading(c);
	}
}

/* Forget a buffer's bytes in the memory total and free it. */
static void buffer_release(struct evbuffer *b, struct evbuffer_cb_entry *cb)
{
	if (!b)
		return;
	if (cb) {
		evbuffer_remove_cb_entry(b, cb);
		mem_total -= evbuffer_get_length(b);
	}
	evbuffer_free(b);
}

/* Close c's socket and free its buffers and events (any of them may be missing). */
static void conn_release(struct conn *c)
{
	struct event *evs[] = {c->ev_read, c->ev_resume, c->ev_write, c->ev_flush};
	size_t i;

	watch_stop(c);
	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	buffer_release(c->in, c->in_cb);
	buffer_release(c->out, c->out_cb);
	if (c->tls && tls_peer_name(c->tls)[0])
		log_info("client %s (%s) disconnected", tls_peer_name(c->tls), c->peer);
	tls_free(c->tls);
	close(c->fd);
	idmap_free(&c->ids);
	free(c);
}

static void conn_free(struct conn *c)
{
	struct request *r;

	c->closing = 1; /* nothing re-arms its events while its requests go */
	if (c->starved)
		n_blocked--;
	while ((r = TAILQ_FIRST(&c->requests)))
		request_free(r);
	TAILQ_REMOVE(&sv.conns, c, link);
	sv.n_conns--;
	conn_release(c);
	/*
	 * The daemon keeps up to 64 MiB of freed heap for reuse (M_TRIM_THRESHOLD);
	 * once the last client has left after a busy spell and no task is left
	 * (abandoned ones included), give it back.
	 */
	if (!sv.n_conns && !sv.tasks_running && !sv.tasks_queued && mem_peak > TRIM_AFTER) {
		malloc_trim(0);
		mem_peak = mem_total;
	}
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

static void add_functions(struct buf *b)
{
	const struct conf *c = &confgen_current()->c;
	size_t i;

	for (i = 0; i < c->n_fns; i++) {
		const struct fn_entry *f = &c->fns[i];
		const char *doc = f->description ? f->description : "";

		buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
		buf_add_json_string(b, f->name, strlen(f->name));
		buf_printf(b, ",\"kind\":\"%s\",\"min_args\":%d,\"max_args\":%d,\"doc\":",
		           fn_kind_name(f->kind), f->min_args, f->max_args);
		buf_add_json_string(b, doc, strlen(doc));
		buf_addc(b, '}');
	}
}

static struct request *find_request(struct conn *c, struct json_span id)
{
	return idmap_get(&c->ids, id);
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
		add_functions(&b);
		buf_adds(&b, "]");
		break;
	case OP_METRICS: {
		struct buf text = {0};

		metrics_render(&text);
		buf_adds(&b, ",\"metrics\":");
		buf_add_json_string(&b, text.data, text.len);
		buf_free(&text);
		break;
	}
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
	metrics_reply(pr->op, PROTO_OK);
}

/* Refuse a map or apply that would pass --max-memory, in total or for this connection. */
static int check_memory(struct conn *c, size_t len, struct proto_error *err)
{
	size_t max = conn_max_memory(), mine = c->held + evbuffer_get_length(c->out);

	if (mem_total + len > max)
		return proto_error_set(err, PROTO_BUSY, -1,
		                       "the daemon buffers %zu bytes and this request has %zu "
		                       "(--max-memory %zu); retry later",
		                       mem_total, len, max);
	if (mine > max / 4)
		return proto_error_set(err, PROTO_BUSY, -1,
		                       "this connection holds %zu bytes of requests and unread "
		                       "replies, more than a quarter of --max-memory (%zu); read "
		                       "replies or retry later",
		                       mine, max);
	return 0;
}

/*
 * Handle one complete line of len bytes whose JSON value v was validated as
 * it arrived, by a scan that indexed its args in ix.
 */
static void handle_line(struct conn *c, char *line, size_t len, struct json_span v,
                        const struct json_index *ix)
{
	struct proto_limits lim = {.max_items = sv.opt.max_items,
	                           .max_timeout_ms = 86400000,
	                           .default_timeout_ms = sv.opt.timeout_ms,
	                           .args = ix};
	struct proto_request pr;
	struct proto_error err;
	struct request *r;

	if (proto_parse_value(v, &lim, &pr, &err) < 0)
		goto fail;
	pr.line_len = len;
	if (pr.op == OP_FEED || pr.op == OP_END) {
		r = find_request(c, pr.id);
		if (!r || !r->pr.stream) {
			proto_error_set(&err, PROTO_NOT_FOUND, -1,
			                "no open stream with this id on this connection");
			goto fail;
		}
		request_feed(r, line, &pr, ix);
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
	if (c->tls && !conf_client_allows(&confgen_current()->c, tls_peer_name(c->tls), pr.fn)) {
		proto_error_set(&err, PROTO_FORBIDDEN, -1,
		                "client %s may not call %s (its [client] section)",
		                tls_peer_name(c->tls), pr.fn);
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
	if (check_memory(c, len, &err) < 0)
		goto fail;
	request_start(c, line, &pr, ix);
	return;
fail:
	conn_error(c, pr.id, &err);
	free(line);
}

/* Answer a line that is refused before it is complete; the rest of it is discarded. */
static void refuse_line(struct conn *c, const struct proto_error *err)
{
	struct json_span none = {NULL, 0};

	conn_send_error(c, none, err);
	c->skipping = 1;
}

/*
 * Scan the input from c->fed on: search the newline ending the current line
 * and, unless the line is being discarded, feed its bytes to the JSON scanner,
 * so that the work on a long line is spread over its reads. Returns 1 when
 * the newline is at offset c->fed, 0 when the input holds no newline yet, -1
 * when the line is malformed so far.
 */
static int scan_input(struct conn *c)
{
	size_t len = evbuffer_get_length(c->in);

	while (c->fed < len) {
		struct evbuffer_iovec v[16];
		struct evbuffer_ptr p;
		int i, n;

		if (evbuffer_ptr_set(c->in, &p, c->fed, EVBUFFER_PTR_SET) < 0)
			return 0;
		n = evbuffer_peek(c->in, (ssize_t)(len - c->fed), &p, v, 16);
		for (i = 0; i < n && i < 16; i++) {
			const char *b = v[i].iov_base, *nl = memchr(b, '\n', v[i].iov_len);
			size_t k = nl ? (size_t)(nl - b) : v[i].iov_len;

			if (!c->skipping && json_scan_feed(&c->scan, b, k) < 0)
				return -1;
			c->fed += k;
			if (nl)
				return 1;
		}
	}
	return 0;
}

/* Drop the first n input bytes (a line and its newline) and start a new line. */
static void next_line(struct conn *c, size_t n)
{
	evbuffer_drain(c->in, n);
	c->fed = 0;
	json_scan_init(&c->scan);
	json_scan_index(&c->scan, &c->index);
}

/* An empty line (or a lone CR) is skipped silently. */
static int line_is_empty(struct evbuffer *in, size_t len)
{
	char ch;

	return len == 0 || (len == 1 && evbuffer_copyout(in, &ch, 1) == 1 && ch == '\r');
}

/*
 * Memory is short while c reads a long line: stop reading c if memory of its
 * own will drain (items not yet answered, unread replies), and look again
 * when it has. Returns 0 when nothing of c's will drain: the line is refused.
 */
static int wait_for_memory(struct conn *c)
{
	struct request *r;

	TAILQ_FOREACH(r, &c->requests, clink)
	if (r->pr.stream)
		request_check_window(r);
	if (c->blocked)
		return 1;
	TAILQ_FOREACH(r, &c->requests, clink)
	if (r->n_items > r->n_written)
		break;
	if (!r && !evbuffer_get_length(c->out))
		return 0;
	c->starved = 1;
	n_blocked++;
	conn_set_reading(c);
	return 1;
}

/*
 * No complete line yet (len bytes buffered): refuse the line now when it is
 * over --max-line, or long while the memory budget is spent (unless the
 * connection can wait for its own streams to drain instead).
 */
static void partial_line(struct conn *c, size_t len)
{
	struct proto_error err;

	if (c->skipping) {
		next_line(c, len);
		return;
	}
	if (len > sv.opt.max_line) {
		proto_error_set(&err, PROTO_TOO_LARGE, -1,
		                "request line longer than %zu bytes (--max-line); discarded",
		                sv.opt.max_line);
	} else if (len > PARTIAL_FREE && mem_total > conn_max_memory()) {
		if (wait_for_memory(c))
			return;
		proto_error_set(&err, PROTO_BUSY, -1,
		                "the daemon buffers %zu bytes (--max-memory %zu): a request line "
		                "being read was discarded; retry later",
		                mem_total, conn_max_memory());
	} else {
		return;
	}
	refuse_line(c, &err);
	next_line(c, len);
}

/* Take every complete line out of the input buffer and handle it. */
static void conn_read(struct conn *c)
{
	struct evbuffer *in = c->in;

	while (!c->paused && !c->blocked && !c->starved && !c->closing) {
		size_t len = evbuffer_get_length(in), eol_len = 1;
		struct proto_error err;
		struct json_index ix;
		struct json_span v;
		char *line;
		int r = scan_input(c);

		if (r < 0) {
			proto_error_malformed(&err, c->scan.erroff, c->scan.err);
			refuse_line(c, &err);
			next_line(c, c->fed);
			continue;
		}
		if (r == 0) {
			if (!c->eof || !len || c->skipping || len > sv.opt.max_line) {
				partial_line(c, len);
				return;
			}
			eol_len = 0; /* at EOF a last line needs no newline */
		}
		len = c->fed;
		if (c->skipping || len > sv.opt.max_line) {
			if (!c->skipping) {
				proto_error_set(&err, PROTO_TOO_LARGE, -1,
				                "request line longer than %zu bytes (--max-line); "
				                "discarded",
				                sv.opt.max_line);
				refuse_line(c, &err);
			}
			c->skipping = 0;
			next_line(c, len + eol_len);
			continue;
		}
		if (line_is_empty(in, len)) {
			next_line(c, len + eol_len);
			continue;
		}
		if (json_scan_end(&c->scan) < 0) {
			proto_error_malformed(&err, c->scan.erroff, c->scan.err);
			conn_send_error(c, (struct json_span){NULL, 0}, &err);
			next_line(c, len + eol_len);
			continue;
		}
		line = malloc(len + 1);
		if (!line) {
			log_error("out of memory reading a %zu-byte line", len);
			c->closing = 1;
			return;
		}
		evbuffer_remove(in, line, len);
		line[len] = '\0';
		v.p = line + c->scan.vstart;
		v.len = c->scan.vend - c->scan.vstart;
		ix = c->index; /* its marks stay in c->marks until the next line is scanned */
		ix.base = line;
		if (line[len - 1] == '\r')
			line[--len] = '\0';
		next_line(c, eol_len);
		handle_line(c, line, len, v, &ix);
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
	int n = !evbuffer_get_length(c->out) ? 0
	        : c->tls                     ? tls_write_buffer(c->tls, c->out, READ_CHUNK)
	                                     : evbuffer_write_atmost(c->out, fd, READ_CHUNK);

	if (c->tls && tls_read_wants_write(c->tls))
		event_active(c->ev_read, EV_READ, 1);
	if (n > 0)
		metrics_bytes(0, (uint64_t)n);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		if (c->n_requests)
			log_debug("client gone with %d requests in flight; dropping them",
			          c->n_requests);
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(c->out) && !(c->tls && tls_write_wants_read(c->tls)))
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
	/*
	 * EOF alone is a half-close (echo ... | socat): answer what was asked, then
	 * close, and drop all at once if the client closes fully before that.
	 * POLLHUP or an error means the client is gone: drop its requests now.
	 */
	if (failed) {
		conn_free(c);
		return;
	}
	if (conn_probe_gone(c))
		return;
	c->eof = 1;
	conn_set_reading(c);
	conn_read(c);
	conn_maybe_close(c);
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
	n = c->tls ? tls_read(c->tls, v.iov_base, v.iov_len) : read(fd, v.iov_base, v.iov_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (c->tls && tls_read_wants_write(c->tls))
			event_add(c->ev_write, NULL); /* on_write reads again */
		return;
	}
	if (n <= 0) {
		conn_eof(c, n < 0);
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &v, 1);
	metrics_bytes((uint64_t)n, 0);
	conn_read(c);
	if (c->tls)
		conn_tls_kick(c);
}

void conn_new(evutil_socket_t fd)
{
	conn_new_remote(fd, NULL, NULL);
}

void conn_new_remote(evutil_socket_t fd, struct tls *t, const char *peer)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		tls_free(t);
		close(fd);
		return;
	}
	c->fd = fd;
	c->tls = t;
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "");
	c->watch_fd = -1;
	c->index.mark = c->marks;
	json_scan_init(&c->scan);
	json_scan_index(&c->scan, &c->index);
	c->in = evbuffer_new();
	c->ev_read = event_new(sv.base, fd, EV_READ | EV_PERSIST, on_readable, c);
	c->ev_resume = evtimer_new(sv.base, on_resume, c);
	c->out = evbuffer_new();
	c->ev_write = event_new(sv.base, fd, EV_WRITE | EV_PERSIST, on_write, c);
	c->ev_flush = event_new(sv.base, fd, 0, on_write, c);
	if (!c->in || !c->ev_read || !c->ev_resume || !c->out || !c->ev_write || !c->ev_flush ||
	    !(c->in_cb = evbuffer_add_cb(c->in, on_buffer, c)) ||
	    !(c->out_cb = evbuffer_add_cb(c->out, on_buffer, c))) {
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
		conn_set_reading(c);
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
