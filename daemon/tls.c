/* tls.c - TLS for remote clients (OpenSSL 3): the server context and one session per connection */
#include "tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

/* The most plaintext in one record: one SSL_write per record. */
#define RECORD_MAX 16384
/* The most plaintext one tls_read hands out: a fast sender must not hold the loop. */
#define READ_MAX (1024 * 1024)
/* Raw bytes one read(2) may take: records are read ahead, many per system call. */
#define READ_AHEAD (128 * 1024)
/* The first byte of a TLS handshake record (ClientHello). */
#define TLS_HANDSHAKE 0x16

struct tls {
	SSL *ssl;
	int fd;
	int started;     /* the first byte was seen to be a TLS record */
	int done;        /* the handshake finished: name is set */
	int failed;      /* a fatal error: no close_notify */
	int read_ww;     /* the last read waits for the socket to be writable */
	int write_wr;    /* the last write waits for the socket to be readable */
	size_t wlen;     /* a write to retry with exactly this length (OpenSSL's rule) */
	int deferred;    /* an end or error met after bytes that were handed out first */
	int deferred_rc; /* its result (0 or -1) and errno */
	int deferred_errno;
	char name[256]; /* the certificate subject's CN */
	char addr[64];  /* the peer's address */
};

static SSL_CTX *ctx;

/* The first OpenSSL error queued, as one line (the queue is emptied). */
static const char *ssl_reason(char *out, size_t n)
{
	unsigned long e = ERR_get_error();

	if (!e)
		snprintf(out, n, "unknown error");
	else
		ERR_error_string_n(e, out, n);
	ERR_clear_error();
	return out;
}

int tls_server_init(const char *cert, const char *key, const char *ca, char *err, size_t n)
{
	char why[256];
	const char *step;

	if (!cert || !key || !ca) {
		snprintf(err, n,
		         "a tls:// listener needs tls_cert, tls_key and tls_ca (%s missing)",
		         !cert  ? "tls_cert"
		         : !key ? "tls_key"
		                : "tls_ca");
		return -1;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	step = "cannot make a TLS context";
	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
	                             SSL_OP_IGNORE_UNEXPECTED_EOF |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, READ_AHEAD);
	step = "tls_cert: cannot load the certificate chain";
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		goto fail;
	step = "tls_key: cannot load the private key";
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	step = "tls_key does not match tls_cert";
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	step = "tls_ca: cannot load the client CA";
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		goto fail;
	SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(ca));
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
fail:
	snprintf(err, n, "%s: %s", step, ssl_reason(why, sizeof(why)));
	tls_server_free();
	return -1;
}

void tls_server_free(void)
{
	SSL_CTX_free(ctx);
	ctx = NULL;
}

struct tls *tls_new(int fd, const char *peer)
{
	struct tls *t;

	if (!ctx || !(t = calloc(1, sizeof(*t))))
		return NULL;
	t->ssl = SSL_new(ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	SSL_set_accept_state(t->ssl);
	t->fd = fd;
	snprintf(t->addr, sizeof(t->addr), "%s", peer);
	return t;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	if (t->done && !t->failed)
		SSL_shutdown(t->ssl);
	ERR_clear_error();
	SSL_free(t->ssl);
	free(t);
}

/* The handshake finished: name the client by its certificate and log it. */
static void name_peer(struct tls *t)
{
	X509 *x = SSL_get0_peer_certificate(t->ssl);
	X509_NAME *subj = x ? X509_get_subject_name(x) : NULL;

	t->done = 1;
	if (!subj || X509_NAME_get_text_by_NID(subj, NID_commonName, t->name, sizeof(t->name)) <= 0)
		X509_NAME_oneline(subj, t->name, sizeof(t->name));
	log_info("client %s (%s) connected over %s", t->name, t->addr, SSL_get_version(t->ssl));
}

/*
 * A client that speaks plain JSON lines to the TLS port is told so in its
 * own protocol and closed: the port never answers a request without TLS.
 */
static int check_first_byte(struct tls *t)
{
	static const char line[] =
	    "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"forbidden\",\"message\":\"this port "
	    "speaks TLS: connect with tls:// and a client certificate\"}}\n";
	unsigned char b;
	char scratch[4096];
	ssize_t r = recv(t->fd, &b, 1, MSG_PEEK);

	if (r <= 0)
		return (int)r;
	if (b == TLS_HANDSHAKE) {
		t->started = 1;
		return 1;
	}
	log_warn("refused a client at %s: plain text on a TLS port", t->addr);
	if (send(t->fd, line, sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refusing a plaintext client: %s", strerror(errno));
	/* Closing with its request unread would reset the connection before our line is read. */
	for (int i = 0; i < 16 && recv(t->fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
		;
	shutdown(t->fd, SHUT_WR);
	t->failed = 1;
	errno = EPROTO;
	return -1;
}

/* Why the handshake failed, as the log says it. */
static void log_refusal(struct tls *t)
{
	long v = SSL_get_verify_result(t->ssl);
	char why[256];

	if (v != X509_V_OK)
		log_warn("refused a client at %s: its certificate: %s", t->addr,
		         X509_verify_cert_error_string(v));
	else
		log_warn("refused a client at %s: TLS handshake: %s", t->addr,
		         ssl_reason(why, sizeof(why)));
}

/* Map an SSL_ERROR_* of a read (reading) or write to the errno convention of tls.h. */
static ssize_t ssl_fail(struct tls *t, int rc, int reading)
{
	int e = SSL_get_error(t->ssl, rc), saved = errno;

	t->read_ww = reading && e == SSL_ERROR_WANT_WRITE;
	t->write_wr = !reading && e == SSL_ERROR_WANT_READ;
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN: /* close_notify, or a FIN (SSL_OP_IGNORE_UNEXPECTED_EOF) */
		return 0;
	case SSL_ERROR_SYSCALL:
		t->failed = 1;
		ERR_clear_error();
		if (!t->done)
			log_warn("refused a client at %s: it left during the TLS handshake (%s)",
			         t->addr, saved ? strerror(saved) : "end of file");
		errno = saved ? saved : ECONNRESET;
		return -1;
	default:
		t->failed = 1;
		if (!t->done)
			log_refusal(t);
		else
			log_warn("client %s (%s): TLS error; closing", t->name, t->addr);
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

ssize_t tls_read(struct tls *t, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	if (t->deferred) {
		errno = t->deferred_errno;
		return t->deferred_rc;
	}
	if (!t->started && (r = check_first_byte(t)) <= 0)
		return r;
	if (n > READ_MAX)
		n = READ_MAX;
	/*
	 * One read(2) of up to READ_AHEAD bytes, then the records it brought
	 * while there is room for a whole one (RECORD_MAX). What stays inside
	 * the session (tls_pending) is not shown by the socket's readiness:
	 * the caller reads again without waiting for it.
	 */
	while (got == 0 || (n - got >= RECORD_MAX && SSL_has_pending(t->ssl))) {
		int want = n - got > INT32_MAX ? INT32_MAX : (int)(n - got);

		ERR_clear_error();
		r = SSL_read(t->ssl, (char *)buf + got, want);
		if (!t->done && SSL_is_init_finished(t->ssl))
			name_peer(t);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		r = ssl_fail(t, (int)r, 1);
		if (!got)
			return r;
		/*
		 * The bytes before an end or an error go first; the end is kept
		 * for the next call (the socket may never be readable again:
		 * tls_pending says so).
		 */
		if (r == 0 || errno != EAGAIN) {
			t->deferred = 1;
			t->deferred_rc = (int)r;
			t->deferred_errno = errno;
		}
		break;
	}
	t->read_ww = 0;
	return (ssize_t)got;
}

int tls_write_buffer(struct tls *t, struct evbuffer *b, size_t max)
{
	size_t sent = 0, len;
	int r;

	while (sent < max && (len = evbuffer_get_length(b)) > 0) {
		size_t k = t->wlen ? t->wlen : len < RECORD_MAX ? len : RECORD_MAX;
		unsigned char *p = evbuffer_pullup(b, (ssize_t)k);

		if (!p) {
			errno = ENOMEM;
			return -1;
		}
		ERR_clear_error();
		r = SSL_write(t->ssl, p, (int)k);
		if (r <= 0) {
			t->wlen = k;
			if (ssl_fail(t, r, 0) == 0)
				errno = EPIPE;
			if (sent && errno == EAGAIN)
				return (int)sent;
			return -1;
		}
		t->wlen = 0;
		t->write_wr = 0;
		evbuffer_drain(b, (size_t)r);
		sent += (size_t)r;
	}
	return (int)sent;
}

int tls_read_wants_write(const struct tls *t)
{
	return t->read_ww;
}

int tls_write_wants_read(const struct tls *t)
{
	return t->write_wr;
}

int tls_pending(const struct tls *t)
{
	return t->deferred || SSL_has_pending(t->ssl);
}

const char *tls_peer_name(const struct tls *t)
{
	return t->name;
}

const char *tls_peer_addr(const struct tls *t)
{
	return t->addr;
}
