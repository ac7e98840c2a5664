/* check.h - a tiny assertion kit for the unit tests (no framework) */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int check_count;
static int check_failures;

/* Count one failed check and print where it is and why. */
static inline __attribute__((format(printf, 3, 4))) void check_fail(const char *file, int line,
                                                                    const char *fmt, ...)
{
	va_list ap;

	check_failures++;
	fprintf(stderr, "%s:%d: FAILED: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Print the string s (n bytes) with non-printable bytes escaped, for failure messages. */
static inline void check_print_bytes(const char *what, const char *s, size_t n)
{
	size_t i;

	fprintf(stderr, "    %s (%zu bytes): \"", what, n);
	for (i = 0; i < n && i < 300; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fprintf(stderr, "%s\"\n", i < n ? "..." : "");
}

/* Compare n bytes at a against the NUL-terminated string b; 1 when equal. */
static inline int check_mem_eq(const char *file, int line, const char *a, size_t n, const char *b)
{
	size_t m = strlen(b);

	check_count++;
	if (n == m && (n == 0 || memcmp(a, b, n) == 0))
		return 1;
	check_fail(file, line, "byte strings differ");
	check_print_bytes("got", a, n);
	check_print_bytes("expected", b, m);
	return 0;
}

/* Print the totals and give the exit status for main(). */
static inline int check_exit(const char *name)
{
	fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count, check_failures);
	return check_failures ? 1 : 0;
}

/* Check that expr is true. */
#define CHECK(expr)                                                                                \
	do {                                                                                       \
		check_count++;                                                                     \
		if (!(expr))                                                                       \
			check_fail(__FILE__, __LINE__, "%s", #expr);                               \
	} while (0)

/* Check two integers for equality, printing both on failure. */
#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
		check_count++;                                                                     \
		if (check_a_ != check_b_)                                                          \
			check_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b,          \
			           check_a_, check_b_);                                            \
	} while (0)

/* Check two NUL-terminated strings for equality. */
#define CHECK_STR(a, b) check_mem_eq(__FILE__, __LINE__, (a), strlen(a), (b))
/* Check n bytes at a against the string b (which may not contain NUL). */
#define CHECK_MEM(a, n, b) check_mem_eq(__FILE__, __LINE__, (a), (n), (b))
