/* buf.h - growable byte buffer */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

/*
 * Called with the size asked for when an allocation fails, before -ENOMEM is
 * returned; NULL by default. poold sets it to end the process (xalloc.h).
 */
extern void (*buf_on_oom)(size_t n);

/* Make sure at least n more bytes fit; returns 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Length of the valid UTF-8 sequence at p (1 to 4), 0 when invalid or cut short. */
size_t buf_utf8_len(const unsigned char *p, const unsigned char *end);
/* Append s as a quoted, escaped JSON string; invalid UTF-8 becomes U+FFFD. */
int buf_add_json_string(struct buf *b, const char *s, size_t n);
/* Append an integer / a double as JSON (a double always has a '.' or exponent). */
int buf_add_int(struct buf *b, int64_t v);
/* Most bytes buf_fmt_int writes: "-9223372036854775808". */
#define BUF_INT_MAX 20
/*
 * Write v in decimal at p (no NUL); returns the end. It may store into any of
 * the BUF_INT_MAX bytes from p, past the end it returns too: keep them free.
 */
char *buf_fmt_int(char *p, int64_t v);
int buf_add_double(struct buf *b, double v);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hand the data over to the caller (NUL-terminated) and reset the buffer. */
char *buf_steal(struct buf *b, size_t *len);
