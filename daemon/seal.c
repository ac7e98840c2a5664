/* seal.c - the envelope of every message between a supervisor and its hosts (libsodium) */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEAL_MAGIC "PSL1"
#define KEY_HEX (SEAL_KEY_BYTES * 2)

int seal_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int seal_key_load(const char *path, unsigned char key[SEAL_KEY_BYTES], char *err, size_t n)
{
	char text[KEY_HEX + 2];
	struct stat st;
	size_t bin_len = 0;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, n, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, n, "%s: mode %04o lets others read the cluster key; chmod 600 it",
		         path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, n, "%s: owned by uid %u, not by poold's user or root", path,
		         (unsigned)st.st_uid);
		close(fd);
		return -1;
	}
	got = read(fd, text, sizeof(text));
	close(fd);
	if (got < KEY_HEX || got > KEY_HEX + 1 || (got == KEY_HEX + 1 && text[KEY_HEX] != '\n') ||
	    sodium_hex2bin(key, SEAL_KEY_BYTES, text, KEY_HEX, NULL, &bin_len, NULL) < 0 ||
	    bin_len != SEAL_KEY_BYTES) {
		snprintf(err, n,
		         "%s: not a cluster key (64 hex digits; make one with poold --keygen)",
		         path);
		sodium_memzero(text, sizeof(text));
		return -1;
	}
	sodium_memzero(text, sizeof(text));
	return 0;
}

int seal_keygen(const char *path, char *err, size_t n)
{
	unsigned char key[SEAL_KEY_BYTES];
	char hex[KEY_HEX + 1];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int ok;

	if (fd < 0) {
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return -1;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	hex[KEY_HEX] = '\n';
	ok = write(fd, hex, sizeof(hex)) == (ssize_t)sizeof(hex) && fsync(fd) == 0;
	if (!ok)
		snprintf(err, n, "%s: %s", path, strerror(errno));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	if (close(fd) < 0 && ok) {
		snprintf(err, n, "%s: %s", path, strerror(errno));
		ok = 0;
	}
	if (!ok)
		unlink(path);
	return ok ? 0 : -1;
}

static void put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Layout: additional data (magic, sender, dest, seq), the nonce, then the
 * ciphertext and its tag. The header travels in clear but is authenticated:
 * changing a byte of it fails the tag like changing the ciphertext does.
 */
void seal_box(const unsigned char key[SEAL_KEY_BYTES], const struct seal_hdr *h, const void *pt,
              size_t len, unsigned char *out)
{
	unsigned char *nonce = out + SEAL_AD_BYTES, *ct = nonce + SEAL_NONCE_BYTES;

	memcpy(out, SEAL_MAGIC, 4);
	put64(out + 4, h->sender);
	put64(out + 12, h->dest);
	put64(out + 20, h->seq);
	randombytes_buf(nonce, SEAL_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, pt, len, out, SEAL_AD_BYTES, NULL,
	                                           nonce, key);
}

int seal_open(const unsigned char key[SEAL_KEY_BYTES], const void *in, size_t len,
              struct seal_hdr *h, void *pt)
{
	const unsigned char *p = in, *nonce = p + SEAL_AD_BYTES, *ct = nonce + SEAL_NONCE_BYTES;

	if (len < SEAL_OVERHEAD || memcmp(p, SEAL_MAGIC, 4) != 0)
		return -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct,
	                                               len - SEAL_AD_BYTES - SEAL_NONCE_BYTES, p,
	                                               SEAL_AD_BYTES, nonce, key) < 0)
		return -EBADMSG;
	h->sender = get64(p + 4);
	h->dest = get64(p + 12);
	h->seq = get64(p + 20);
	return 0;
}

int seal_window_accept(struct seal_window *w, uint64_t seq)
{
	uint64_t back;

	if (seq == 0)
		return 0;
	if (seq > w->top) {
		uint64_t shift = seq - w->top;

		w->bits = shift >= 64 ? 0 : w->bits << shift;
		if (w->top && shift <= 64)
			w->bits |= 1ull << (shift - 1);
		w->top = seq;
		return 1;
	}
	back = w->top - seq;
	if (back == 0 || back > 64 || (w->bits & (1ull << (back - 1))))
		return 0;
	w->bits |= 1ull << (back - 1);
	return 1;
}

uint64_t seal_session_id(void)
{
	uint64_t id;

	do
		randombytes_buf(&id, sizeof(id));
	while (id == 0);
	return id;
}
