/*
 * intforms.c - integer forms (ABI 1.1) for test_modules.py: one that answers
 * for some items and leaves the others to the function, and a test hook that
 * breaks the contract on purpose to show which of the two answered.
 */
#include <poold/module.h>

/* x / 2; an odd integer fails with a message. */
static int halve(struct poold_call *c)
{
	int64_t x;

	if (poold_arg_int(c, 0, &x) < 0)
		return -1;
	if (x % 2)
		return poold_fail(c, POOLD_FUNCTION_ERROR, "%lld is odd", (long long)x);
	return poold_out_int(c, x / 2);
}

static int int_halve(int64_t x, int64_t *result)
{
	if (x % 2)
		return 1; /* the function writes the message */
	*result = x / 2;
	return 0;
}

/* Test hook: the function answers 10x+2, the integer form 10x+1. */
static int path(struct poold_call *c)
{
	int64_t x;

	if (poold_arg_int(c, 0, &x) < 0)
		return -1;
	return poold_out_int(c, 10 * x + 2);
}

static int int_path(int64_t x, int64_t *result)
{
	*result = 10 * x + 1;
	return 0;
}

/* Test hook: an integer form whose results are beyond 2^53 (poold checks them). */
static int big(struct poold_call *c)
{
	return poold_out_int(c, 7);
}

static int int_big(int64_t x, int64_t *result)
{
	*result = POOLD_INT_MAX + 1 + x;
	return 0;
}

static const struct poold_function functions[] = {
    {"halve", 1, 1, "x / 2 for even integers", halve},
    {"path", 1, 1, "test hook: 10x+2, or 10x+1 from the integer form", path},
    {"big", 1, 1, "test hook: 7, the integer form answers beyond 2^53", big},
    {NULL, 0, 0, NULL, NULL},
};

static const struct poold_int_form int_forms[] = {
    {"halve", int_halve},
    {"path", int_path},
    {"big", int_big},
    {NULL, NULL},
};

POOLD_MODULE_DEFINE_INT("intforms", "0.1", functions, NULL, NULL, int_forms);
