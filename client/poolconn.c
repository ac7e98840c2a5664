/* poolconn.c - libpoolclient's connection: socket, framing, ids, replies, errors */
#include "poolconn.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "poolints.h"

#define RECV_CHUNK 65536
#define RBUF_SHRINK (4u << 20)
/* Bytes of a reply read by the fast reader past which their text is dropped. */
#define RETIRE_AT (128u << 10)

static const char *const job_codes[] = {"function_error", "type_error", "out_of_range",
                                        "worker_died",    "timeout",    "result_too_large",
                                        "cancelled"};

/* Short name of an enum pool_errc value, either sign. */
const char *pool_errc_name(int code)
{
	static const char *const names[] = {"ok",  "connect", "io",    "protocol", "request",
	                                    "job", "invalid", "nomem", "again",    "timedout"};

	if (code < 0)
		code = -code;
	if (code >= (int)(sizeof(names) / sizeof(names[0])))
		return "unknown";
	return names[code];
}

/* Fill err (printf-style one-line message) and return -code. */
int poolconn_error(struct pool_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -code;
	err->code = code;
	snprintf(err->code_name, sizeof(err->code_name), "%s", pool_errc_name(code));
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	err->index = -1;
	return -code;
}

/* The caller's err, or the client's own when the caller passed NULL. */
struct pool_error *poolconn_errp(pool_client *c, struct pool_error *err)
{
	return err ? err : &c->lasterr;
}

/* Copy at most n-1 bytes of s into out, not cutting a UTF-8 sequence, control chars -> ' '. */
static void copy_text(char *out, size_t n, const char *s, size_t len)
{
	size_t i;

	if (len >= n) {
		len = n - 1;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	for (i = 0; i < len; i++)
		out[i] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
	out[len] = '\0';
}

/* Default socket path as in poold(8): $POOLD_SOCKET, $XDG_RUNTIME_DIR/poold (not for root),
 * /run/poold. */
static int default_path(char *out, size_t n)
{
	const char *s = getenv("POOLD_SOCKET");

	if (s && *s)
		return snprintf(out, n, "%s", s);
	s = getenv("XDG_RUNTIME_DIR");
	if (geteuid() != 0 && s && *s)
		return snprintf(out, n, "%s/poold/poold.sock", s);
	return snprintf(out, n, "/run/poold/poold.sock");
}

/* connect(2) that survives EINTR by waiting for the connection to finish. */
static int connect_retry(int fd, const struct sockaddr_un *sa)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	socklen_t len = sizeof(int);
	int e = 0;

	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno != EINTR && errno != EINPROGRESS)
		return -errno;
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		return -errno;
	return -e;
}

/* Connect to the daemon's Unix socket (default path when socket_path is NULL). */
pool_client *pool_connect(const char *socket_path, struct pool_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[4096];
	pool_client *c;
	int r;

	if (!socket_path) {
		if (default_path(path, sizeof(path)) >= (int)sizeof(path)) {
			poolconn_error(err, POOL_ECONNECT, "default socket path too long");
			return NULL;
		}
		socket_path = path;
	}
	if (!*socket_path || strlen(socket_path) >= sizeof(sa.sun_path)) {
		poolconn_error(err, POOL_ECONNECT,
		               "bad socket path (empty or over %zu bytes): %.200s",
		               sizeof(sa.sun_path) - 1, socket_path);
		return NULL;
	}
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	c = calloc(1, sizeof(*c));
	if (!c) {
		poolconn_error(err, POOL_ENOMEM, "out of memory");
		return NULL;
	}
	c->next_id = 1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		poolconn_error(err, POOL_ECONNECT, "socket: %s", strerror(errno));
		free(c);
		return NULL;
	}
	r = connect_retry(c->fd, &sa);
	if (r < 0) {
		poolconn_error(err, POOL_ECONNECT, "cannot connect to %.200s: %s", socket_path,
		               strerror(-r));
		close(c->fd);
		free(c);
		return NULL;
	}
	return c;
}

/* Close the connection and free everything. */
void pool_close(pool_client *c)
{
	if (!c)
		return;
	poolconn_io_close(c);
	close(c->fd);
	buf_free(&c->rbuf);
	buf_free(&c->req);
	buf_free(&c->tmp);
	free(c);
}

/* The connection's file descriptor. */
int pool_fd(const pool_client *c)
{
	return c ? c->fd : -1;
}

void poolconn_iov_advance(struct iovec **iov, int *n, size_t done)
{
	while (*n > 0 && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
}

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t poolconn_until(const pool_client *c)
{
	return c->deadline_ms > 0 ? now_ms() + c->deadline_ms : 0;
}

int poolconn_wait(int fd, short events, int64_t until, struct pool_error *err)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int64_t left = until ? until - now_ms() : -1;
		int r;

		if (until && left <= 0)
			return 0;
		r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return poolconn_error(err, POOL_EIO, "poll: %s", strerror(errno));
	}
}

int pool_set_deadline(pool_client *c, long ms, struct pool_error *err)
{
	if (!c || ms < 0 || ms > 86400000)
		return poolconn_error(err, POOL_EINVAL, "deadline must be 0 to 86400000 ms");
	c->deadline_ms = ms;
	return 0;
}

void poolconn_send_cancel(pool_client *c, int64_t target)
{
	char line[96];
	int n = snprintf(line, sizeof(line),
	                 "{\"id\":%" PRId64 ",\"op\":\"cancel\",\"target\":%" PRId64 "}\n",
	                 c->next_id++, target);
	ssize_t w;

	if (c->broken)
		return;
	do
		w = poolconn_io_send(c, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w != n) {
		/* a part of the line may be out: the daemon drops the connection's requests
		 * once it sees the end of the connection instead */
		shutdown(c->fd, SHUT_RDWR);
		c->broken = 1;
	}
}

/*
 * Write all of iov[0..n) with MSG_NOSIGNAL, across partial writes and EINTR,
 * until (ms, 0 = none): 0, -errno, or -ETIMEDOUT (*sent tells whether any
 * byte went out).
 */
static int send_all(pool_client *c, struct iovec *iov, int n, int64_t until, int *sent)
{
	*sent = 0;
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = poolconn_io_sendmsg(c, &m, MSG_NOSIGNAL | (until ? MSG_DONTWAIT : 0));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (until && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				int r = poolconn_wait(c->fd, POLLOUT, until, NULL);

				if (r == 0)
					return -ETIMEDOUT;
				if (r < 0)
					return -EIO;
				continue;
			}
			return -errno;
		}
		*sent = 1;
		poolconn_iov_advance(&iov, &n, (size_t)w);
	}
	return 0;
}

/*
 * Move the bytes not handed out yet to the front; shrink a huge, mostly empty
 * buffer once the replies have become small (a client mapping big arrays
 * keeps its buffer from one reply to the next instead of growing it again).
 */
static void rbuf_compact(pool_client *c)
{
	struct buf *b = &c->rbuf;
	size_t left = b->len - c->rpos;

	if (b->cap > RBUF_SHRINK && left < RECV_CHUNK && c->last_line < b->cap / 8) {
		struct buf nb = {0};

		if (buf_add(&nb, b->data + c->rpos, left) == 0) {
			buf_free(b);
			*b = nb;
			c->rpos = 0;
		}
	}
	if (c->rpos > 0) {
		memmove(b->data, b->data + c->rpos, left);
		b->len = left;
		b->data[left] = '\0';
		c->rpos = 0;
	}
}

/* The next complete line in the receive buffer, if there is one. */
int poolconn_take_line(pool_client *c, struct json_span *line)
{
	struct buf *b = &c->rbuf;
	size_t from = c->rpos + c->scanned;
	char *nl = b->len > from ? memchr(b->data + from, '\n', b->len - from) : NULL;

	if (!nl) {
		c->scanned = b->len - c->rpos;
		return 0;
	}
	*nl = '\0';
	line->p = b->data + c->rpos;
	line->len = (size_t)(nl - line->p);
	c->last_line = line->len;
	c->rpos += line->len + 1;
	c->scanned = 0;
	return 1;
}

/* Receive once into the buffer; end of file and errors break the connection. */
int poolconn_recv(pool_client *c, int flags, struct pool_error *err)
{
	struct buf *b = &c->rbuf;
	ssize_t r;

	rbuf_compact(c);
	if (buf_reserve(b, RECV_CHUNK) < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory reading a reply");
	do
		r = poolconn_io_recv(c, b->data + b->len, b->cap - b->len - 1, flags);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && (flags & MSG_DONTWAIT))
		return 0;
	if (r <= 0)
		c->broken = 1;
	if (r < 0)
		return poolconn_error(err, POOL_EIO, "read: %s", poolconn_io_strerror(c, errno));
	if (r == 0)
		return poolconn_error(err, POOL_EIO,
		                      b->len ? "connection closed in the middle of a reply"
		                             : "connection closed by the daemon");
	b->len += (size_t)r;
	b->data[b->len] = '\0';
	return (int)(r > INT32_MAX ? INT32_MAX : r);
}

/* Microseconds on the monotonic clock. */
static int64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int pool_set_spin(pool_client *c, long spin_us, struct pool_error *err)
{
	if (!c || spin_us < 0 || spin_us > 1000000)
		return poolconn_error(err, POOL_EINVAL, "spin_us must be 0 to 1000000");
	c->spin_us = spin_us;
	return 0;
}

/*
 * Wait for more bytes of a reply and receive them, until (ms, 0 = none: then
 * -POOL_ETIMEDOUT), polling without sleep until spin_until (us, 0 = never).
 */
static int recv_more(pool_client *c, int64_t spin_until, int64_t until, struct pool_error *err)
{
	int spin = spin_until && now_us() < spin_until;
	int r;

	if (!spin && until) {
		r = poolconn_wait(c->fd, POLLIN, until, err);
		if (r < 0)
			return r;
		if (r == 0)
			return poolconn_error(err, POOL_ETIMEDOUT,
			                      "no reply within the deadline (%ld ms); the request "
			                      "was cancelled",
			                      c->deadline_ms);
	}
	r = poolconn_recv(c, spin ? MSG_DONTWAIT : 0, err);
	return r < 0 ? r : 0;
}

/* When a call that may spin stops spinning (us), 0 when it never does. */
static int64_t spin_end(const pool_client *c)
{
	return c->spin_us ? now_us() + c->spin_us : 0;
}

/* Read the next reply line (newline replaced by NUL) into *line, as recv_more() waits. */
static int read_line(pool_client *c, struct json_span *line, int64_t until, struct pool_error *err)
{
	int64_t spin_until = spin_end(c);

	while (!poolconn_take_line(c, line)) {
		int r = recv_more(c, spin_until, until, err);

		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Read the next reply line with the fast reader rd while its bytes arrive: 1
 * when rd took the whole line (the results are in rd->out), 0 when the line
 * must be read the general way (read_line() then finds it; the bytes rd
 * passed are not searched for the newline again; the results before
 * rd->base may have left it), or an error.
 */
static int read_fast(pool_client *c, struct poolints_reader *rd, int64_t until,
                     struct pool_error *err)
{
	int64_t spin_until = spin_end(c);

	poolints_restart(rd);
	for (;;) {
		size_t avail = c->rbuf.len - c->rpos;
		int r = avail ? poolints_feed(rd, c->rbuf.data + c->rpos, avail) : POOLINTS_MORE;

		if (r == POOLINTS_DONE) {
			c->last_line = rd->off - 1;
			c->rpos += rd->off;
			c->scanned = 0;
			return 1;
		}
		if (r == POOLINTS_SLOW) {
			if (rd->off > c->scanned)
				c->scanned = rd->off;
			return 0;
		}
		if (rd->off >= RETIRE_AT) {
			/* the results read leave the buffer: it stays small, and in cache */
			c->rbuf.len -= poolints_retire(rd, c->rbuf.data + c->rpos, avail);
			c->rbuf.data[c->rbuf.len] = '\0';
			c->scanned = 0;
		}
		r = recv_more(c, spin_until, until, err);
		if (r < 0)
			return r;
	}
}

/* Look up member key of a validated object. */
int poolconn_get(struct json_span obj, const char *key, struct json_span *val)
{
	struct json_iter it;
	struct json_span k;

	if (json_type(obj) != JSON_OBJECT)
		return 0;
	json_iter_init(&it, obj);
	while (json_object_next(&it, &k, val))
		if (json_string_eq(k, key))
			return 1;
	return 0;
}

/* Decode the JSON string v into out (size n), truncated, as one line. */
static void span_text(pool_client *c, struct json_span v, char *out, size_t n)
{
	if (json_string_decode(v, &c->tmp) < 0) {
		copy_text(out, n, v.p, v.len);
		return;
	}
	copy_text(out, n, c->tmp.data, c->tmp.len);
}

/* Fill err from a protocol error object; the code decides EREQUEST or EJOB. */
int poolconn_error_from(pool_client *c, struct json_span eo, struct pool_error *err)
{
	struct json_span code, msg, idx;
	int64_t i;
	size_t k;

	err->code = POOL_EREQUEST;
	err->index = -1;
	snprintf(err->code_name, sizeof(err->code_name), "unknown");
	err->message[0] = '\0';
	if (poolconn_get(eo, "code", &code) && json_type(code) == JSON_STRING) {
		span_text(c, code, err->code_name, sizeof(err->code_name));
		for (k = 0; k < sizeof(job_codes) / sizeof(job_codes[0]); k++)
			if (strcmp(err->code_name, job_codes[k]) == 0)
				err->code = POOL_EJOB;
	}
	if (poolconn_get(eo, "message", &msg) && json_type(msg) == JSON_STRING)
		span_text(c, msg, err->message, sizeof(err->message));
	if (poolconn_get(eo, "index", &idx) && json_int(idx, &i) == 0 && i >= 0 && i <= LONG_MAX)
		err->index = (long)i;
	return -err->code;
}

/* 1 when the reply's id is the request in flight, or null (an error about our line). */
static int reply_is_ours(const pool_client *c, struct json_span id)
{
	int64_t v;

	if (json_type(id) == JSON_NULL)
		return 1;
	return json_int(id, &v) == 0 && v == c->cur_id;
}

int poolconn_reply_get(const struct poolconn_reply *rep, const char *key, struct json_span *val)
{
	int i;

	for (i = 0; i < rep->n; i++)
		if (json_string_eq(rep->key[i], key)) {
			*val = rep->val[i];
			return 1;
		}
	return rep->all ? 0 : poolconn_get(rep->obj, key, val);
}

/* Validate a reply line: an object with an id and an "ok" boolean. */
int poolconn_parse_reply(struct json_span line, struct poolconn_reply *rep, struct json_span *id,
                         struct pool_error *err)
{
	struct json_span ok;
	const char *msg;
	size_t off, n;

	/* one pass: each top-level member validated where it stands and recorded */
	if (json_object_scan(line.p, line.p + line.len, &rep->obj, rep->key, rep->val,
	                     POOLCONN_MEMBERS, &n) < 0) {
		/* not one valid object: say why as a whole-line validation does */
		if (json_validate(line.p, line.p + line.len, &rep->obj, &msg, &off) < 0)
			return poolconn_error(err, POOL_EPROTO,
			                      "reply is not valid JSON: %s at byte %zu", msg, off);
		return poolconn_error(err, POOL_EPROTO, "reply is not an object with an id");
	}
	rep->all = n <= POOLCONN_MEMBERS;
	rep->n = rep->all ? (int)n : POOLCONN_MEMBERS;
	if (!poolconn_reply_get(rep, "id", id))
		return poolconn_error(err, POOL_EPROTO, "reply is not an object with an id");
	if (!poolconn_reply_get(rep, "ok", &ok) ||
	    (json_type(ok) != JSON_TRUE && json_type(ok) != JSON_FALSE))
		return poolconn_error(err, POOL_EPROTO, "reply has no \"ok\" boolean");
	rep->ok = json_type(ok) == JSON_TRUE;
	return 0;
}

/*
 * Read replies until the one for the request in flight (through fast when not
 * NULL: 1 when it took the reply); ok:false becomes an error.
 */
static int wait_reply(pool_client *c, struct poolconn_reply *rep, struct poolints_reader *fast,
                      int64_t until, struct pool_error *err)
{
	struct json_span line = {0}, id, eo;
	int r;

	for (;;) {
		r = fast ? read_fast(c, fast, until, err) : 0;
		if (r == 0)
			r = read_line(c, &line, until, err);
		else if (r == 1)
			return 1;
		if (r == -POOL_ETIMEDOUT)
			poolconn_send_cancel(c, c->cur_id);
		if (r < 0)
			return r;
		r = poolconn_parse_reply(line, rep, &id, err);
		if (r < 0)
			return r;
		if (reply_is_ours(c, id))
			break;
		/* else a stale reply to an abandoned request, or to a closed stream */
	}
	if (rep->ok)
		return 0;
	if (!poolconn_reply_get(rep, "error", &eo) || json_type(eo) != JSON_OBJECT)
		return poolconn_error(err, POOL_EPROTO, "error reply has no \"error\" object");
	return poolconn_error_from(c, eo, poolconn_errp(c, err));
}

/* Check that args is one JSON array; newlines become spaces in a copy in scratch. */
int poolconn_check_array(struct buf *scratch, const char **args, size_t *len, size_t *count,
                         struct pool_error *err)
{
	struct json_span v = {0};
	const char *msg;
	size_t off, i;

	if (!*args)
		return poolconn_error(err, POOL_EINVAL, "args is NULL");
	if (json_int_array(*args, *args + *len, &off)) {
		/* one tight pass: valid, one line, counted */
		if (count)
			*count = off;
		return 0;
	}
	if (json_validate(*args, *args + *len, &v, &msg, &off) < 0)
		return poolconn_error(err, POOL_EINVAL, "args is not valid JSON: %s at byte %zu",
		                      msg, off);
	if (json_type(v) != JSON_ARRAY)
		return poolconn_error(err, POOL_EINVAL, "args is not a JSON array");
	if (count)
		*count = json_array_count(v);
	if (!memchr(v.p, '\n', v.len)) {
		*args = v.p;
		*len = v.len;
		return 0;
	}
	buf_reset(scratch);
	if (buf_add(scratch, v.p, v.len) < 0)
		return poolconn_error(err, POOL_ENOMEM, "out of memory");
	for (i = 0; i < scratch->len; i++)
		if (scratch->data[i] == '\n')
			scratch->data[i] = ' ';
	*args = scratch->data;
	*len = scratch->len;
	return 0;
}

/* Start a request line in c->req with the next id (a huge buffer goes once requests are small). */
int poolconn_begin(pool_client *c, const char *op)
{
	if (c->req.cap > RBUF_SHRINK && c->req.len < c->req.cap / 8)
		buf_free(&c->req);
	buf_reset(&c->req);
	c->cur_id = c->next_id++;
	if (!op)
		return buf_printf(&c->req, "{\"id\":%" PRId64, c->cur_id);
	return buf_printf(&c->req, "{\"id\":%" PRId64 ",\"op\":\"%s\"", c->cur_id, op);
}

int poolconn_tx_begin(pool_client *c, struct poolconn_tx *tx, struct pool_error *err)
{
	tx->until = poolconn_until(c);
	tx->sent = 0;
	if (c->broken)
		return poolconn_error(err, POOL_EIO, "the connection failed earlier; reconnect");
	if (c->stream)
		return poolconn_error(err, POOL_EINVAL,
		                      "a stream is open on this client; end or close it first");
	return 0;
}

void poolconn_tx_abort(pool_client *c, struct poolconn_tx *tx)
{
	if (tx->sent) {
		/* half a request line is out: only closing the connection ends it */
		shutdown(c->fd, SHUT_RDWR);
		c->broken = 1;
	}
}

/*
 * Send iov[0..n) as the next bytes of tx's request line: 0, or an error (a
 * failed write waits for the daemon's reason; it is the call's answer when
 * the line was whole, last, else the connection's end).
 */
static int send_part(pool_client *c, struct poolconn_tx *tx, struct iovec *iov, int n, int last,
                     struct poolconn_reply *rep, struct poolints_reader *fast,
                     struct pool_error *err)
{
	int r, sent;

	r = send_all(c, iov, n, tx->until, &sent);
	tx->sent |= sent;
	if (r == -EPIPE || r == -ECONNRESET) {
		/* The daemon may have answered before closing: prefer its reason. */
		c->broken = 1;
		r = wait_reply(c, rep, fast, 0, err);
		if (r >= 0 && !last)
			return poolconn_error(err, POOL_EIO, "the daemon closed the connection");
		return r;
	}
	if (r == -ETIMEDOUT) {
		poolconn_tx_abort(c, tx);
		return poolconn_error(err, POOL_ETIMEDOUT,
		                      "the daemon did not read the request within the deadline "
		                      "(%ld ms)%s",
		                      c->deadline_ms,
		                      tx->sent ? "; the connection was closed" : "");
	}
	if (r < 0) {
		c->broken = 1;
		return poolconn_error(err, POOL_EIO, "write: %s", strerror(-r));
	}
	return 0;
}

int poolconn_tx_part(pool_client *c, struct poolconn_tx *tx, struct poolconn_reply *rep,
                     struct poolints_reader *fast, struct pool_error *err)
{
	struct iovec iov = {.iov_base = c->req.data, .iov_len = c->req.len};
	int r = send_part(c, tx, &iov, 1, 0, rep, fast, err);

	buf_reset(&c->req);
	return r;
}

int poolconn_tx_end(pool_client *c, struct poolconn_tx *tx, const char *body, size_t body_len,
                    const char *tail, struct poolconn_reply *rep, struct poolints_reader *fast,
                    struct pool_error *err)
{
	struct iovec iov[3] = {
	    {.iov_base = c->req.data, .iov_len = c->req.len},
	    {.iov_base = (void *)(uintptr_t)body, .iov_len = body_len},
	    {.iov_base = (void *)(uintptr_t)tail, .iov_len = strlen(tail)},
	};
	int r = send_part(c, tx, iov, 3, 1, rep, fast, err);

	if (r != 0 || c->broken)
		return r;
	return wait_reply(c, rep, fast, tx->until, err);
}

/* Send head + body + tail as one request line and wait for its reply. */
int poolconn_transact(pool_client *c, const char *body, size_t body_len, const char *tail,
                      struct poolconn_reply *rep, struct poolints_reader *fast,
                      struct pool_error *err)
{
	struct poolconn_tx tx;
	int r = poolconn_tx_begin(c, &tx, err);

	return r < 0 ? r : poolconn_tx_end(c, &tx, body, body_len, tail, rep, fast, err);
}
