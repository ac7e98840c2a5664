/*
 * fn_std.c - the built-in "std" module: compiled into poold, written against
 * the public module API (poold/module.h) like any user module.
 */
#include "fn_std.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

/* Integer power with overflow and 2^53 checks; floats go through pow(). */
static int power(struct poold_call *c, int n)
{
	double d;
	int64_t v, r = 1;
	int is_int, i;

	if (poold_arg_number(c, 0, &d, &is_int, &v) < 0)
		return -1;
	if (!is_int)
		return poold_out_double(c, pow(d, n));
	for (i = 0; i < n; i++)
		if (__builtin_mul_overflow(r, v, &r))
			return poold_fail(c, POOLD_OUT_OF_RANGE, "integer result beyond 2^53");
	return poold_out_int(c, r);
}

static int fn_square(struct poold_call *c)
{
	return power(c, 2);
}

static int fn_cube(struct poold_call *c)
{
	return power(c, 3);
}

/* The integer forms of square and cube: beyond 2^53 the general form answers out_of_range. */
static int int_power(int64_t x, int n, int64_t *result)
{
	int64_t r = x;
	int i;

	for (i = 1; i < n; i++)
		if (__builtin_mul_overflow(r, x, &r))
			return -1;
	*result = r;
	return r > POOLD_INT_MAX || r < -POOLD_INT_MAX;
}

static int int_square(int64_t x, int64_t *result)
{
	return int_power(x, 2, result);
}

static int int_cube(int64_t x, int64_t *result)
{
	return int_power(x, 3, result);
}

static int fn_cbrt(struct poold_call *c)
{
	double d;
	int64_t v;
	int is_int;

	if (poold_arg_number(c, 0, &d, &is_int, &v) < 0)
		return -1;
	/* cbrtl rounds to the exact root where one exists: cbrt(27) is 3.0, not 3.0000000000000004
	 */
	return poold_out_double(c, (double)cbrtl((long double)d));
}

static int fn_add(struct poold_call *c)
{
	double a, b;
	int64_t ia, ib, r;
	int ai, bi;

	if (poold_arg_number(c, 0, &a, &ai, &ia) < 0 || poold_arg_number(c, 1, &b, &bi, &ib) < 0)
		return -1;
	if (ai && bi) {
		if (__builtin_add_overflow(ia, ib, &r))
			return poold_fail(c, POOLD_OUT_OF_RANGE, "integer result beyond 2^53");
		return poold_out_int(c, r);
	}
	return poold_out_double(c, a + b);
}

static int fn_echo(struct poold_call *c)
{
	struct poold_value v = poold_arg(c, 0);

	return poold_out_json(c, v.json, v.len);
}

static void sleep_for_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int fn_sleep_ms(struct poold_call *c)
{
	int64_t ms;

	if (poold_arg_int(c, 0, &ms) < 0)
		return -1;
	if (ms < 0 || ms > 86400000)
		return poold_fail(c, POOLD_OUT_OF_RANGE, "sleep_ms takes 0 to 86400000 ms");
	sleep_for_ms(ms);
	return poold_out_int(c, ms);
}

static int fn_getpid(struct poold_call *c)
{
	struct poold_value v = poold_arg(c, 0);

	if (poold_out_object_begin(c) < 0 || poold_out_key(c, "pid", 3) < 0 ||
	    poold_out_int(c, getpid()) < 0 || poold_out_key(c, "item", 4) < 0 ||
	    poold_out_json(c, v.json, v.len) < 0)
		return -1;
	return poold_out_object_end(c);
}

static int fn_fail_item(struct poold_call *c)
{
	struct poold_value v = poold_arg(c, 0);
	const char *msg;

	if (poold_type(v) != POOLD_STRING)
		return poold_fail(c, POOLD_FUNCTION_ERROR, "%.*s", (int)v.len, v.json);
	if (poold_string(c, v, &msg, NULL) < 0)
		return -1;
	return poold_fail(c, POOLD_FUNCTION_ERROR, "%s", msg);
}

/* A 64-bit mix (splitmix64 steps), kept within 2^53 so the result is exact in JSON. */
static int fn_spin(struct poold_call *c)
{
	int64_t n, i;
	uint64_t h = 0x9e3779b97f4a7c15ull;

	if (poold_arg_int(c, 0, &n) < 0)
		return -1;
	if (n < 0)
		return poold_fail(c, POOLD_OUT_OF_RANGE, "spin takes a round count >= 0");
	for (i = 0; i < n; i++) {
		h += 0x9e3779b97f4a7c15ull;
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
		h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
		h ^= h >> 31;
	}
	return poold_out_int(c, (int64_t)(h & ((1ull << 53) - 1)));
}

/* Test hooks: make the worker die in the ways real code does. */
static int fn_crash(struct poold_call *c)
{
	raise(SIGSEGV);
	return poold_fail(c, POOLD_FUNCTION_ERROR, "still alive after SIGSEGV");
}

static int fn_crash_first(struct poold_call *c)
{
	struct poold_value v = poold_arg(c, 0);

	if (poold_attempt(c) == 0)
		raise(SIGSEGV);
	return poold_out_json(c, v.json, v.len);
}

static int fn_abort(struct poold_call *c)
{
	abort();
}

static int fn_exit_worker(struct poold_call *c)
{
	int64_t st;

	if (poold_arg_int(c, 0, &st) < 0)
		return -1;
	_exit((int)(st & 0xff));
}

static const struct poold_function functions[] = {
    {"square", 1, 1, "x*x (exact for integers up to 2^53)", fn_square},
    {"cube", 1, 1, "x*x*x (exact for integers up to 2^53)", fn_cube},
    {"cbrt", 1, 1, "cube root of x, as a float", fn_cbrt},
    {"add", 2, 2, "a+b (use with starmap)", fn_add},
    {"echo", 1, 1, "returns its argument unchanged (any JSON)", fn_echo},
    {"sleep_ms", 1, 1, "sleeps ms milliseconds, returns ms", fn_sleep_ms},
    {"getpid", 1, 1, "returns {\"pid\":P,\"item\":x}: which worker ran x", fn_getpid},
    {"fail", 1, 1, "raises function_error with the given message", fn_fail_item},
    {"spin", 1, 1, "CPU-bound: n rounds of integer mixing, returns the hash", fn_spin},
    {"crash", 1, 1, "test hook: the worker dies of SIGSEGV", fn_crash},
    {"crash_first", 1, 1, "test hook: SIGSEGV on an item's first attempt, then echo",
     fn_crash_first},
    {"abort", 1, 1, "test hook: the worker calls abort()", fn_abort},
    {"exit_worker", 1, 1, "test hook: the worker exits with the given status", fn_exit_worker},
    {NULL, 0, 0, NULL, NULL},
};

static const struct poold_int_form int_forms[] = {
    {"square", int_square},
    {"cube", int_cube},
    {NULL, NULL},
};

const struct poold_module fn_std_module = {POOLD_MODULE_MAGIC,
                                           POOLD_MODULE_ABI_MAJOR,
                                           POOLD_MODULE_ABI_MINOR,
                                           sizeof(struct poold_module),
                                           "std",
                                           POOLD_VERSION,
                                           functions,
                                           NULL,
                                           NULL,
                                           int_forms};
