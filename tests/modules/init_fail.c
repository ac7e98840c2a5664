/* init_fail.c - a module whose init hook fails: the worker must not start */
#include <poold/module.h>
#include <stdio.h>

static int f(struct poold_call *c)
{
	return poold_out_null(c);
}

static int init(char *err, size_t n)
{
	snprintf(err, n, "cannot open /nonexistent/model.bin");
	return 1;
}

static const struct poold_function functions[] = {
    {"f", 1, 1, "null", f},
    {NULL, 0, 0, NULL, NULL},
};

POOLD_MODULE_DEFINE("init_fail", "1.0", functions, init, NULL);
