/* bad_abi.c - a module built for ABI 2.0: poold must refuse it */
#include <poold/module.h>

static int f(struct poold_call *c)
{
	return poold_out_null(c);
}

static const struct poold_function functions[] = {
    {"f", 1, 1, "null", f},
    {NULL, 0, 0, NULL, NULL},
};

POOLD_EXPORT const struct poold_module poold_module = {POOLD_MODULE_MAGIC,
                                                       2,
                                                       0,
                                                       sizeof(struct poold_module),
                                                       "bad_abi",
                                                       "1.0",
                                                       functions,
                                                       NULL,
                                                       NULL,
                                                       NULL};
