/* tls.h - TLS for remote clients (OpenSSL 3): the server context and one session per connection */
#pragma once

#include <stddef.h>
#include <sys/types.h>

struct tls;
struct evbuffer;

/*
 * Load the server certificate chain and key and the CA that signs client
 * certificates: TLS 1.2 at least (1.3 preferred), every client must present
 * a certificate the CA signed (mutual TLS), no renegotiation, no tickets.
 * Returns 0, or -1 with the reason in err (a start-up error).
 */
int tls_server_init(const char *cert, const char *key, const char *ca, char *err, size_t n);
/* Free the server context (sessions still open keep their own reference). */
void tls_server_free(void);

/*
 * A server session over an accepted, non-blocking socket; peer is the
 * client's address for logs. NULL when out of memory or without a context.
 */
struct tls *tls_new(int fd, const char *peer);
/* Send close_notify once, without waiting, unless the session failed; free t (not the fd). */
void tls_free(struct tls *t);
/*
 * Read decrypted bytes, running the handshake first: the number read (up to
 * n: every record already received is decrypted), 0 when the client sent
 * close_notify or the TCP connection ended, -1 with errno EAGAIN when the
 * socket must become readable (or writable: tls_read_wants_write), or -1
 * with another errno when the session failed (refused or broken: logged).
 */
ssize_t tls_read(struct tls *t, void *buf, size_t n);
/*
 * Encrypt and send up to max bytes from the front of b, draining what was
 * sent: the number of bytes, or -1 with errno EAGAIN (wait for the socket;
 * readable when tls_write_wants_read) or another errno (the session failed).
 */
int tls_write_buffer(struct tls *t, struct evbuffer *b, size_t max);
/* The last read waits for the socket to be writable (a handshake message is unsent). */
int tls_read_wants_write(const struct tls *t);
/* The last write waits for the socket to be readable. */
int tls_write_wants_read(const struct tls *t);
/* Bytes received and held inside the session: read again without waiting for the socket. */
int tls_pending(const struct tls *t);
/*
 * The client's name: the common name of its certificate's subject (else the
 * whole subject, one line); "" until the handshake is done.
 */
const char *tls_peer_name(const struct tls *t);
/* The client's address as given to tls_new. */
const char *tls_peer_addr(const struct tls *t);
