/*
 * fuzz_digits.c - proto/digits.h and buf_fmt_int against byte-by-byte
 * references: digits_int_elem at every position of the input (the worker's
 * integer-form reader, eight digits at a time), and buf_fmt_int of every
 * 8-byte word of the input against printf.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "digits.h"

/* What digits_int_elem must answer, one byte at a time. */
static int ref_elem(const char *p, const char *end, int64_t *x, const char **next)
{
	const char *d;
	int64_t v = 0;
	int neg;

	while (p < end && *p && strchr(" \t\n\r", *p))
		p++;
	if (p < end && *p == ',')
		p++;
	while (p < end && *p && strchr(" \t\n\r", *p))
		p++;
	neg = p < end && *p == '-';
	p += neg;
	for (d = p; p < end && *p >= '0' && *p <= '9' && p - d < DIGITS_ELEM_MAX; p++)
		v = v * 10 + (*p - '0');
	if (p == d)
		return 0;
	*next = p;
	while (p < end && *p && strchr(" \t\n\r", *p))
		p++;
	if (p < end && *p != ',')
		return 0;
	*x = neg ? -v : v;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy: reads past the end are caught by ASan */
	char *text = malloc(size ? size : 1);
	size_t i;

	memcpy(text, data, size);
	for (i = 0; i <= size; i++) {
		const char *n1 = NULL, *n2 = NULL;
		int64_t x1 = 0, x2 = 0;
		int r1 = digits_int_elem(text + i, text + size, &x1, &n1);
		int r2 = ref_elem(text + i, text + size, &x2, &n2);

		if (r1 != r2 || (r1 && (x1 != x2 || n1 != n2)))
			abort();
	}
	for (i = 0; i + 8 <= size; i += 8) {
		char got[BUF_INT_MAX + 8], want[32];
		int64_t v;
		char *e;

		memcpy(&v, text + i, 8);
		e = buf_fmt_int(got, v);
		snprintf(want, sizeof(want), "%lld", (long long)v);
		if ((size_t)(e - got) != strlen(want) || memcmp(got, want, strlen(want)) != 0)
			abort();
	}
	free(text);
	return 0;
}
