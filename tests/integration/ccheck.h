/*
 * ccheck.h - the checks of the C test programs run by the integration tests
 * (client_lib_test, client_ints_test): CHECK(cond, fmt, ...) counts a check
 * and prints the file, line and message of one that failed.
 */
#pragma once

#include <stdarg.h>
#include <stdio.h>

static int n_checks, n_failed;

/* Count one check; print where and why when it failed. Returns cond. */
static __attribute__((format(printf, 4, 5))) int check_at(const char *file, int line, int cond,
                                                          const char *fmt, ...)
{
	va_list ap;

	n_checks++;
	if (cond)
		return 1;
	n_failed++;
	fprintf(stderr, "%s:%d: FAILED: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 0;
}

#define CHECK(cond, ...) check_at(__FILE__, __LINE__, (cond), __VA_ARGS__)
