/*
 * apitest.c - a module for the integration tests: the API end to end, hooks
 * that say when they run, a function that crashes its worker.
 */
#include <poold/module.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int initialised;

/* init and fini write one line each to stderr (the daemon's log). */
static int init(char *err, size_t n)
{
	initialised = 1;
	fprintf(stderr, "apitest: init in pid %d\n", (int)getpid());
	return 0;
}

static void fini(void)
{
	fprintf(stderr, "apitest: fini in pid %d\n", (int)getpid());
}

/* The argument decoded and its bytes in hex: strings arrive as UTF-8, NULs included. */
static int hexbytes(struct poold_call *c)
{
	static const char hex[] = "0123456789abcdef";
	const char *s;
	size_t len, i;
	char out[512];

	if (poold_arg_string(c, 0, &s, &len) < 0)
		return -1;
	if (len > sizeof(out) / 2)
		return poold_fail(c, POOLD_OUT_OF_RANGE, "at most %zu bytes", sizeof(out) / 2);
	for (i = 0; i < len; i++) {
		out[2 * i] = hex[(unsigned char)s[i] >> 4];
		out[2 * i + 1] = hex[s[i] & 15];
	}
	return poold_out_string(c, out, 2 * len);
}

/* Each argument's type name, and whether init ran in this process. */
static int types(struct poold_call *c)
{
	static const char *const names[] = {"null",   "false", "true",  "number",
	                                    "string", "array", "object"};
	int i;

	if (poold_out_object_begin(c) < 0 || poold_out_key(c, "init", 4) < 0 ||
	    poold_out_bool(c, initialised) < 0 || poold_out_key(c, "types", 5) < 0 ||
	    poold_out_array_begin(c) < 0)
		return -1;
	for (i = 0; i < poold_argc(c); i++) {
		const char *t = names[poold_type(poold_arg(c, i))];

		if (poold_out_string(c, t, strlen(t)) < 0)
			return -1;
	}
	if (poold_out_array_end(c) < 0)
		return -1;
	return poold_out_object_end(c);
}

/* The keys of an object, in order. */
static int keys(struct poold_call *c)
{
	struct poold_iter it;
	struct poold_value k, v;
	const char *s;
	size_t len;

	if (poold_type(poold_arg(c, 0)) != POOLD_OBJECT)
		return poold_fail(c, POOLD_TYPE_ERROR, "keys takes an object");
	if (poold_iter_init(c, poold_arg(c, 0), &it) < 0 || poold_out_array_begin(c) < 0)
		return -1;
	while (poold_object_next(&it, &k, &v))
		if (poold_string(c, k, &s, &len) < 0 || poold_out_string(c, s, len) < 0)
			return -1;
	return poold_out_array_end(c);
}

static int two_values(struct poold_call *c)
{
	poold_out_int(c, 1);
	return poold_out_int(c, 2);
}

static int bad_json(struct poold_call *c)
{
	return poold_out_json(c, "{\"a\":", 5);
}

static int fails_type(struct poold_call *c)
{
	return poold_fail(c, POOLD_TYPE_ERROR, "wanted %s", "a duck");
}

static int segv(struct poold_call *c)
{
	raise(SIGSEGV);
	return poold_fail(c, POOLD_FUNCTION_ERROR, "still alive after SIGSEGV");
}

/* Busy for the given milliseconds (a function that is running when SIGTERM comes). */
static int busy_ms(struct poold_call *c)
{
	int64_t ms;

	if (poold_arg_int(c, 0, &ms) < 0)
		return -1;
	fprintf(stderr, "apitest: busy in pid %d\n", (int)getpid());
	usleep((useconds_t)ms * 1000);
	return poold_out_int(c, ms);
}

static const struct poold_function functions[] = {
    {"hexbytes", 1, 1, "the UTF-8 bytes of a string, in hex", hexbytes},
    {"types", 0, 16, "the JSON type of each argument", types},
    {"keys", 1, 1, "the keys of an object, in order", keys},
    {"two_values", 0, 0, "misuse: appends two results", two_values},
    {"bad_json", 0, 0, "misuse: appends invalid JSON", bad_json},
    {"fails_type", 0, 0, "fails with type_error", fails_type},
    {"segv", 1, 1, "the worker dies of SIGSEGV", segv},
    {"busy_ms", 1, 1, "sleeps ms milliseconds", busy_ms},
    {NULL, 0, 0, NULL, NULL},
};

POOLD_MODULE_DEFINE("apitest", "0.1", functions, init, fini);
