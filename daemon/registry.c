/* registry.c - the table of functions workers can run; modules plug in here */
#include "registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fn_std.h"

static const struct fn_set *const sets[] = {
    &fn_std_set,
};

const struct fn_def *registry_find(const char *name, size_t len)
{
	size_t s;
	const struct fn_def *d;

	for (s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
		for (d = sets[s]->defs; d->name; d++)
			if (strlen(d->name) == len && memcmp(d->name, name, len) == 0)
				return d;
	return NULL;
}

void registry_foreach(void (*cb)(const struct fn_def *def, void *arg), void *arg)
{
	size_t s;
	const struct fn_def *d;

	for (s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
		for (d = sets[s]->defs; d->name; d++)
			cb(d, arg);
}

int fn_fail(struct fn_call *c, enum proto_code code, const char *fmt, ...)
{
	va_list ap;

	c->err->code = code;
	c->err->index = -1;
	va_start(ap, fmt);
	vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
	va_end(ap);
	return -1;
}

int fn_arg_int(struct fn_call *c, int i, int64_t *out)
{
	int r;

	if (json_type(c->argv[i]) != JSON_NUMBER)
		return fn_fail(c, PROTO_TYPE_ERROR, "argument %d must be an integer", i + 1);
	r = json_int(c->argv[i], out);
	if (r == -ERANGE)
		return fn_fail(c, PROTO_OUT_OF_RANGE, "argument %d is beyond 2^53", i + 1);
	if (r < 0)
		return fn_fail(c, PROTO_TYPE_ERROR, "argument %d must be an integer, not %.*s",
		               i + 1, (int)(c->argv[i].len > 32 ? 32 : c->argv[i].len),
		               c->argv[i].p);
	return 0;
}

int fn_arg_num(struct fn_call *c, int i, double *dv, int *is_int, int64_t *iv)
{
	int r;

	if (json_type(c->argv[i]) != JSON_NUMBER)
		return fn_fail(c, PROTO_TYPE_ERROR, "argument %d must be a number", i + 1);
	r = json_int(c->argv[i], iv);
	if (r == -ERANGE)
		return fn_fail(c, PROTO_OUT_OF_RANGE,
		               "argument %d is an integer beyond 2^53; pass it as a float (e.g. "
		               "1e20) if precision does not matter",
		               i + 1);
	*is_int = r == 0;
	if (*is_int)
		*dv = (double)*iv;
	else if (json_double(c->argv[i], dv) < 0)
		return fn_fail(c, PROTO_TYPE_ERROR, "argument %d must be a number", i + 1);
	return 0;
}

int fn_out_int(struct fn_call *c, int64_t v)
{
	if (v > JSON_INT_MAX || v < -JSON_INT_MAX)
		return fn_fail(c, PROTO_OUT_OF_RANGE, "integer result beyond 2^53");
	return buf_add_int(c->out, v);
}

int fn_out_double(struct fn_call *c, double v)
{
	if (buf_add_double(c->out, v) < 0)
		return fn_fail(c, PROTO_FUNCTION_ERROR, "result is not a finite number");
	return 0;
}
