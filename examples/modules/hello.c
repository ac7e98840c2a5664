/* hello.c - a complete, minimal poold module (the example of poold-module(3)) */
#include <poold/module.h>
#include <string.h>

/* greet("ann") -> "hello, ann" */
static int greet(struct poold_call *c)
{
	const char *name;
	size_t len;
	char text[7 + 64];

	if (poold_arg_string(c, 0, &name, &len) < 0)
		return -1; /* not a string: the call already failed with type_error */
	if (len > 64)
		return poold_fail(c, POOLD_OUT_OF_RANGE, "a name of %zu bytes; at most 64", len);
	memcpy(text, "hello, ", 7);
	memcpy(text + 7, name, len);
	return poold_out_string(c, text, 7 + len);
}

/* sum([1, 2, 3]) -> 6 */
static int sum(struct poold_call *c)
{
	struct poold_iter it;
	struct poold_value v;
	int64_t total = 0, x;

	if (poold_type(poold_arg(c, 0)) != POOLD_ARRAY)
		return poold_fail(c, POOLD_TYPE_ERROR, "sum takes an array of integers");
	poold_iter_init(c, poold_arg(c, 0), &it);
	while (poold_array_next(&it, &v)) {
		if (poold_int(c, v, &x) < 0)
			return -1;
		if (__builtin_add_overflow(total, x, &total))
			return poold_fail(c, POOLD_OUT_OF_RANGE, "the sum is beyond 2^63");
	}
	return poold_out_int(c, total); /* out_of_range beyond 2^53 */
}

static const struct poold_function functions[] = {
    {"greet", 1, 1, "greet(name) -> \"hello, NAME\"", greet},
    {"sum", 1, 1, "sum([integers]) -> their sum", sum},
    {NULL, 0, 0, NULL, NULL},
};

POOLD_MODULE_DEFINE("hello", "1.0", functions, NULL, NULL);
