/*
 * abi10.c - a module built against ABI 1.0, whose descriptor ends before
 * int_forms: a poold of a later 1.x minor loads it and never reads past it.
 */
#include <poold/module.h>

static int twice(struct poold_call *c)
{
	int64_t x;

	if (poold_arg_int(c, 0, &x) < 0)
		return -1;
	return poold_out_int(c, 2 * x);
}

static const struct poold_function functions[] = {
    {"twice", 1, 1, "2x", twice},
    {NULL, 0, 0, NULL, NULL},
};

/* struct poold_module as ABI 1.0 laid it out. */
struct poold_module_1_0 {
	uint64_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;
	const char *name;
	const char *version;
	const struct poold_function *functions;
	int (*init)(char *err, size_t errlen);
	void (*fini)(void);
};

POOLD_EXPORT extern const struct poold_module_1_0 poold_module;
const struct poold_module_1_0 poold_module = {
    POOLD_MODULE_MAGIC, 1,    0,   sizeof(struct poold_module_1_0), "abi10", "1.0",
    functions,          NULL, NULL};
