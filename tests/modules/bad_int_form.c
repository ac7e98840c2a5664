/* bad_int_form.c - an integer form that names no function of the table: refused */
#include <poold/module.h>

static int f(struct poold_call *c)
{
	return poold_out_null(c);
}

static int int_g(int64_t x, int64_t *result)
{
	*result = x;
	return 0;
}

static const struct poold_function functions[] = {
    {"f", 1, 1, "null", f},
    {NULL, 0, 0, NULL, NULL},
};

static const struct poold_int_form int_forms[] = {
    {"g", int_g},
    {NULL, NULL},
};

POOLD_MODULE_DEFINE_INT("bad_int_form", "1.0", functions, NULL, NULL, int_forms);
