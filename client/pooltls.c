/* pooltls.c - libpoolclient's remote transports: pool_connect_uri(), tcp:// and tls:// (OpenSSL 3)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "poolconn.h"

/* The most plaintext in one TLS record: reads offer at least this much room. */
#define RECORD_MAX 16384
/* Connecting and the TLS handshake give up after this long. */
#define CONNECT_TIMEOUT_MS 30000

/* Milliseconds on the monotonic clock. */
static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The first OpenSSL error queued (or why), as one line; the queue is emptied. */
static void ssl_reason(pool_client *c, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(c->tls_err, sizeof(c->tls_err), "TLS: %s", r ? r : fallback);
	ERR_clear_error();
}

/*
 * OpenSSL writes with write(2), without MSG_NOSIGNAL: a daemon that closed
 * the connection would kill the caller with SIGPIPE. Around each SSL call the
 * signal is blocked, and one it raised is taken back, so a closed connection
 * is an error here as on a plain socket (a SIGPIPE pending before is left).
 */
struct pipe_guard {
	sigset_t old;
	int pending; /* a SIGPIPE was pending before: not ours to take */
};

static void guard_on(struct pipe_guard *g)
{
	sigset_t pipe, pend;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	g->pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

static void guard_off(struct pipe_guard *g)
{
	struct timespec zero = {0, 0};
	sigset_t pipe, pend;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (!g->pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

enum ssl_op { OP_READ, OP_WRITE, OP_CONNECT, OP_SHUTDOWN };

/* An SSL call under the SIGPIPE guard; errno as the call left it. */
static int guarded(enum ssl_op op, SSL *ssl, void *buf, int n)
{
	struct pipe_guard g;
	int r, e;

	guard_on(&g);
	switch (op) {
	case OP_READ:
		r = SSL_read(ssl, buf, n);
		break;
	case OP_WRITE:
		r = SSL_write(ssl, buf, n);
		break;
	case OP_CONNECT:
		r = SSL_connect(ssl);
		break;
	default:
		r = SSL_shutdown(ssl);
		break;
	}
	e = errno;
	guard_off(&g);
	errno = e;
	return r;
}

/* Wait for fd (events) until until_ms (0 = forever): 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t until_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	do {
		int64_t left = until_ms ? until_ms - mono_ms() : -1;

		if (until_ms && left <= 0)
			return 0;
		r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : r > 0;
}

/*
 * After an SSL call returned rc <= 0: 1 to retry (having waited for the
 * socket unless dontwait), 0 at the peer's close, -1 with errno set.
 */
static int ssl_again(pool_client *c, int rc, int dontwait)
{
	int e = SSL_get_error(c->tls, rc), saved = errno;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		if (dontwait) {
			errno = EAGAIN;
			return -1;
		}
		if (wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0) < 0)
			return -1;
		return 1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		c->tls_failed = 1;
		if (!saved)
			return 0;
		errno = saved;
		return -1;
	default:
		c->tls_failed = 1;
		ssl_reason(c, "protocol error");
		errno = EPROTO;
		return -1;
	}
}

ssize_t poolconn_io_recv(pool_client *c, void *buf, size_t n, int flags)
{
	size_t got = 0;
	int r;

	if (!c->tls)
		return recv(c->fd, buf, n, flags);
	/*
	 * Read whole records only (room for RECORD_MAX each) and until the socket
	 * has no more: no decrypted byte stays inside OpenSSL, so that poll(2) on
	 * the descriptor keeps telling the truth to callers that wait on it.
	 */
	while (got == 0 || n - got >= RECORD_MAX) {
		ERR_clear_error();
		r = guarded(OP_READ, c->tls, (char *)buf + got,
		            (int)(n - got > INT32_MAX ? INT32_MAX : n - got));
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (got) {
			ERR_clear_error();
			break; /* an end or an error comes again on the next call */
		}
		r = ssl_again(c, r, flags & MSG_DONTWAIT);
		if (r <= 0)
			return r;
	}
	return (ssize_t)got;
}

ssize_t poolconn_io_sendmsg(pool_client *c, const struct msghdr *m, int flags)
{
	unsigned char rec[RECORD_MAX];
	size_t total = 0, i;
	int r;

	if (!c->tls)
		return sendmsg(c->fd, m, flags);
	/*
	 * Gather up to one record and write it with one SSL_write. A write that
	 * must wait is retried by the caller with the same bytes (unsent, so
	 * still at the front of its iov): what OpenSSL requires.
	 */
	for (;;) {
		size_t k = 0, skip = total;

		for (i = 0; i < m->msg_iovlen && k < sizeof(rec); i++) {
			size_t len = m->msg_iov[i].iov_len, take;

			if (skip >= len) {
				skip -= len;
				continue;
			}
			take = len - skip < sizeof(rec) - k ? len - skip : sizeof(rec) - k;
			memcpy(rec + k, (const char *)m->msg_iov[i].iov_base + skip, take);
			k += take;
			skip = 0;
		}
		if (!k)
			return (ssize_t)total;
		ERR_clear_error();
		r = guarded(OP_WRITE, c->tls, rec, (int)k);
		if (r > 0) {
			total += (size_t)r;
			continue;
		}
		if (total) {
			ERR_clear_error();
			return (ssize_t)total;
		}
		r = ssl_again(c, r, flags & MSG_DONTWAIT);
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		if (r < 0)
			return -1;
	}
}

ssize_t poolconn_io_send(pool_client *c, const void *buf, size_t n, int flags)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};

	return poolconn_io_sendmsg(c, &m, flags);
}

const char *poolconn_io_strerror(const pool_client *c, int e)
{
	return c->tls && c->tls_err[0] ? c->tls_err : strerror(e);
}

void poolconn_io_close(pool_client *c)
{
	if (!c->tls)
		return;
	if (!c->tls_failed)
		guarded(OP_SHUTDOWN, c->tls, NULL,
		        0); /* close_notify, not waiting for the daemon's */
	SSL_free(c->tls);
	c->tls = NULL;
}

/* Split "HOST:PORT" ([v6]:PORT too) after the scheme; 0 or -1. */
static int split_hostport(const char *s, char *host, size_t hn, char *port, size_t pn)
{
	const char *colon, *end;

	if (*s == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		colon = end + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		end = colon;
	}
	if (!colon || end == s || (size_t)(end - s) >= hn || !colon[1] || strlen(colon + 1) >= pn)
		return -1;
	snprintf(host, hn, "%.*s", (int)(end - s), s);
	snprintf(port, pn, "%s", colon + 1);
	return 0;
}

/* A connected TCP socket to host:port (blocking, TCP_NODELAY), or -1 with err set. */
static int tcp_connect(const char *host, const char *port, struct pool_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai, *a;
	int fd = -1, r, one = 1, e = ECONNREFUSED;

	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0) {
		poolconn_error(err, POOL_ECONNECT, "%.100s:%.10s: %s", host, port, gai_strerror(r));
		return -1;
	}
	for (a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		do
			r = connect(fd, a->ai_addr, a->ai_addrlen);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		poolconn_error(err, POOL_ECONNECT, "cannot connect to %.100s:%.10s: %s", host, port,
		               strerror(e));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* TLS sessions run on a non-blocking socket: every wait is a poll(2) of ours. */
static int fcntl_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* $name when s is NULL or empty. */
static const char *or_env(const char *s, const char *name)
{
	const char *e = getenv(name);

	return s && *s ? s : e && *e ? e : NULL;
}

/* A client context: TLS 1.2+, the CA that signs the daemon's certificate, our certificate. */
static SSL_CTX *client_ctx(const char *cert, const char *key, const char *ca,
                           struct pool_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *what = "cannot make a TLS context";

	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	what = "cannot load the CA (--ca, POOLD_CA)";
	if (ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
	       : SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto fail;
	if (cert || key) {
		what = "cannot load the client certificate (--cert, POOLD_CERT)";
		if (!cert || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
			goto fail;
		what = "cannot load the client key (--key, POOLD_KEY)";
		if (!key || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1)
			goto fail;
	}
	return ctx;
fail : {
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	poolconn_error(err, POOL_ECONNECT, "%s%s%s", what, r ? ": " : "", r ? r : "");
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}
}

/* Run the TLS handshake on c->fd toward host (the name checked in its certificate). */
static int tls_start(pool_client *c, const char *host, const char *cert, const char *key,
                     const char *ca, struct pool_error *err)
{
	SSL_CTX *ctx = client_ctx(cert, key, ca, err);
	int64_t until = mono_ms() + CONNECT_TIMEOUT_MS;
	unsigned char ip[16];
	int r;

	if (!ctx)
		return -1;
	c->tls = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the session holds its own reference */
	if (!c->tls || SSL_set_fd(c->tls, c->fd) != 1)
		return poolconn_error(err, POOL_ENOMEM, "out of memory starting TLS");
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->tls), host);
	} else {
		SSL_set_tlsext_host_name(c->tls, host);
		SSL_set1_host(c->tls, host);
	}
	while ((r = guarded(OP_CONNECT, c->tls, NULL, 0)) != 1) {
		int e = SSL_get_error(c->tls, r);
		long v = SSL_get_verify_result(c->tls);

		if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
		    wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until) > 0)
			continue;
		c->tls_failed = 1;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return poolconn_error(err, POOL_ECONNECT,
			                      "TLS handshake with %.100s: no answer "
			                      "in %d s",
			                      host, CONNECT_TIMEOUT_MS / 1000);
		if (v != X509_V_OK)
			return poolconn_error(
			    err, POOL_ECONNECT,
			    "TLS handshake with %.100s: the daemon's certificate: %s", host,
			    X509_verify_cert_error_string(v));
		ssl_reason(c, e == SSL_ERROR_SYSCALL ? "the daemon closed the connection"
		                                     : "handshake failed");
		return poolconn_error(err, POOL_ECONNECT, "handshake with %.100s: %s", host,
		                      c->tls_err);
	}
	return 0;
}

/* pool_connect() for unix:PATH, a path, tcp://HOST:PORT and tls://HOST:PORT. */
pool_client *pool_connect_uri(const char *uri, const char *cert, const char *key, const char *ca,
                              struct pool_error *err)
{
	char host[256], port[16];
	pool_client *c;
	int tls;

	uri = or_env(uri, "POOLD_ADDRESS");
	if (!uri)
		return pool_connect(NULL, err);
	if (strncmp(uri, "unix:", 5) == 0)
		return pool_connect(uri + 5, err);
	tls = strncmp(uri, "tls://", 6) == 0;
	if (!tls && strncmp(uri, "tcp://", 6) != 0) {
		if (strstr(uri, "://")) {
			poolconn_error(err, POOL_EINVAL,
			               "address %.200s: expected tls://HOST:PORT, tcp://HOST:PORT, "
			               "unix:PATH or a socket path",
			               uri);
			return NULL;
		}
		return pool_connect(uri, err);
	}
	if (split_hostport(uri + 6, host, sizeof(host), port, sizeof(port)) < 0) {
		poolconn_error(err, POOL_EINVAL, "address %.200s: expected %.6sHOST:PORT", uri,
		               uri);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		poolconn_error(err, POOL_ENOMEM, "out of memory");
		return NULL;
	}
	c->next_id = 1;
	c->fd = tcp_connect(host, port, err);
	if (c->fd < 0) {
		free(c);
		return NULL;
	}
	if (tls && (fcntl_nonblock(c->fd) < 0 ||
	            tls_start(c, host, or_env(cert, "POOLD_CERT"), or_env(key, "POOLD_KEY"),
	                      or_env(ca, "POOLD_CA"), err) < 0)) {
		pool_close(c);
		return NULL;
	}
	return c;
}
