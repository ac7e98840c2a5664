/* seal.h - the envelope of every message between a supervisor and its hosts (libsodium) */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_BYTES 32
#define SEAL_NONCE_BYTES 24
#define SEAL_TAG_BYTES 16
/* Additional data: magic "PSL1", sender, dest, seq (little-endian u64 each). */
#define SEAL_AD_BYTES 28
/* Bytes a sealed message adds to its plaintext. */
#define SEAL_OVERHEAD (SEAL_AD_BYTES + SEAL_NONCE_BYTES + SEAL_TAG_BYTES)

/*
 * Who sent a message, to whom, and its number. sender is the random id of
 * the sending process's session (a host's join; a supervisor's run), dest
 * that of the receiver (0 on a join, which does not know it yet); seq starts
 * at 1 and rises by one per message of a session.
 */
struct seal_hdr {
	uint64_t sender;
	uint64_t dest;
	uint64_t seq;
};

/*
 * Sequences seen from one session: the highest, and a bitmap of the 64 below
 * it. A sequence already seen, or older than the window, is a replay.
 */
struct seal_window {
	uint64_t top;
	uint64_t bits;
};

/* sodium_init once. Returns 0 or -1. */
int seal_init(void);
/*
 * Read the cluster key from path: 64 hex digits and a newline, a regular
 * file of the daemon's user (or root) that no group or other may read or
 * write (mode 0600 or stricter). Returns 0, or -1 with the reason in err.
 */
int seal_key_load(const char *path, unsigned char key[SEAL_KEY_BYTES], char *err, size_t n);
/* Write a new random key to path (created, mode 0600; an existing file is kept). 0 or -1. */
int seal_keygen(const char *path, char *err, size_t n);
/* Seal pt (len bytes) into out (len + SEAL_OVERHEAD bytes) under key, with a fresh nonce. */
void seal_box(const unsigned char key[SEAL_KEY_BYTES], const struct seal_hdr *h, const void *pt,
              size_t len, unsigned char *out);
/*
 * Open a sealed message of len bytes into pt (len - SEAL_OVERHEAD bytes) and
 * h. Returns 0, or -EBADMSG when it is too short, not an envelope, or fails
 * authentication (a wrong key, a changed byte).
 */
int seal_open(const unsigned char key[SEAL_KEY_BYTES], const void *in, size_t len,
              struct seal_hdr *h, void *pt);
/* 1 and remembered when seq is new in w; 0 for a replay or a sequence too old. */
int seal_window_accept(struct seal_window *w, uint64_t seq);
/* A random session id, never 0. */
uint64_t seal_session_id(void);
