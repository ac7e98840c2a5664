/*
 * poold/module.h - the ABI of poold's C modules (see poold-module(3))
 *
 * A module is a shared object that exports one symbol, `poold_module`, a
 * struct poold_module describing it: magic, ABI version, its size as
 * compiled, a name and version, a table of functions, and optional hooks run
 * once in each worker process. Define it with POOLD_MODULE_DEFINE.
 *
 * A function reads its arguments and appends exactly one JSON value as its
 * result through the poold_* calls below, which poold itself exports: a
 * module links with no library. Everything a call hands out (argument text,
 * decoded strings) is valid until the function returns.
 *
 * Versioning: POOLD_MODULE_ABI_MAJOR changes when anything here changes
 * incompatibly; poold refuses a module built for another major. The minor
 * grows when something is added (new calls, fields appended to struct
 * poold_module); a module built for an older minor of the same major loads.
 * 1.1 added integer forms (int_forms, POOLD_MODULE_DEFINE_INT).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POOLD_MODULE_MAGIC 0x31444f4d4c4f4f50ull /* "POOLMOD1" little-endian */
#define POOLD_MODULE_ABI_MAJOR 1
#define POOLD_MODULE_ABI_MINOR 1

/* The largest integer poold reads or writes exactly: 2^53. */
#define POOLD_INT_MAX 9007199254740992LL

/* Most arguments a function can take (max_args of a table entry). */
#define POOLD_MAX_ARGS 16

/* One call of a function: opaque, handed to the function by poold. */
struct poold_call;

/* A function: returns 0 with one value appended, or -1 after a failure. */
typedef int (*poold_fn)(struct poold_call *c);

struct poold_function {
	const char *name; /* NULL ends the table */
	int min_args;
	int max_args;    /* at most POOLD_MAX_ARGS */
	const char *doc; /* one line */
	poold_fn fn;
};

/*
 * An integer form (ABI 1.1): a faster way into a function of the table for
 * its commonest item, one integer. For an item of a map (not of a starmap or
 * an apply) that is an integer literal of at most 15 digits (no fraction or
 * exponent), poold calls fn(x, &result) instead of the function. It returns 0 with
 * *result set, which must be within +-2^53 and the value the function would
 * append for x; or non-zero, and the function is called for that item as
 * usual (to fail it with a message, say). It gets no struct poold_call: it
 * cannot fail an item, append anything but one integer, or read the attempt
 * or the name.
 */
typedef int (*poold_int_fn)(int64_t x, int64_t *result);

struct poold_int_form {
	const char *name; /* the name of a function of the table; NULL ends the list */
	poold_int_fn fn;
};

struct poold_module {
	uint64_t magic;     /* POOLD_MODULE_MAGIC */
	uint16_t abi_major; /* POOLD_MODULE_ABI_MAJOR as the module was compiled */
	uint16_t abi_minor;
	uint32_t size; /* sizeof(struct poold_module) as the module was compiled */
	const char *name;
	const char *version;
	const struct poold_function *functions;
	/*
	 * Run once per worker process after loading, before any call (may be
	 * NULL). Return 0, or non-zero with a one-line reason in err: the worker
	 * then refuses to start and logs the reason.
	 */
	int (*init)(char *err, size_t errlen);
	/* Run once when the worker exits cleanly (may be NULL). */
	void (*fini)(void);
	/* ABI 1.1: integer forms of some functions of the table (may be NULL). */
	const struct poold_int_form *int_forms;
};

#if defined(__GNUC__)
#define POOLD_EXPORT __attribute__((visibility("default")))
#else
#define POOLD_EXPORT
#endif

/*
 * Define the module's descriptor: POOLD_MODULE_DEFINE("name", "1.0", table, init, fini);
 * POOLD_MODULE_DEFINE_INT adds a table of integer forms (NULL name at its end).
 */
#define POOLD_MODULE_DEFINE_INT(name_, version_, functions_, init_, fini_, int_forms_)             \
	POOLD_EXPORT extern const struct poold_module poold_module;                                \
	const struct poold_module poold_module = {POOLD_MODULE_MAGIC,                              \
	                                          POOLD_MODULE_ABI_MAJOR,                          \
	                                          POOLD_MODULE_ABI_MINOR,                          \
	                                          sizeof(struct poold_module),                     \
	                                          (name_),                                         \
	                                          (version_),                                      \
	                                          (functions_),                                    \
	                                          (init_),                                         \
	                                          (fini_),                                         \
	                                          (int_forms_)}
#define POOLD_MODULE_DEFINE(name_, version_, functions_, init_, fini_)                             \
	POOLD_MODULE_DEFINE_INT(name_, version_, functions_, init_, fini_, NULL)

/* The types of JSON values. */
enum poold_type {
	POOLD_NULL,
	POOLD_FALSE,
	POOLD_TRUE,
	POOLD_NUMBER,
	POOLD_STRING,
	POOLD_ARRAY,
	POOLD_OBJECT,
};

/*
 * A JSON value: its text exactly as the client sent it (validated, a string
 * with its quotes, not NUL-terminated). Read it with the calls below.
 */
struct poold_value {
	const char *json;
	size_t len;
};

/* Iterator over an array or object (fields private). */
struct poold_iter {
	const char *p;
	const char *end;
	int object;
};

/* Error codes a function fails with (the protocol's item error codes). */
enum poold_error {
	POOLD_FUNCTION_ERROR, /* "function_error": the function failed (bad values included) */
	POOLD_TYPE_ERROR,     /* "type_error": an argument of the wrong type */
	POOLD_OUT_OF_RANGE,   /* "out_of_range": a number beyond what the function takes */
};

/* --- arguments --- */

/* Number of arguments of this call (between the entry's min_args and max_args). */
int poold_argc(const struct poold_call *c);
/* Argument i (0-based); an empty value (json NULL) when i is out of range. */
struct poold_value poold_arg(const struct poold_call *c, int i);
/* 0 on an item's first attempt, 1 on its first retry, ... */
unsigned poold_attempt(const struct poold_call *c);
/* The name the client called the function by. */
const char *poold_function_name(const struct poold_call *c);

/* The type of a value. */
enum poold_type poold_type(struct poold_value v);

/*
 * Read a value. Each returns 0, or fails the call (type_error, or out_of_range
 * for an integer beyond 2^53) and returns -1: the function then returns -1.
 * The poold_arg_* forms read argument i and name it in their messages.
 */
/* An integer literal (no fraction or exponent), exact within +-2^53. */
int poold_int(struct poold_call *c, struct poold_value v, int64_t *out);
int poold_arg_int(struct poold_call *c, int i, int64_t *out);
/*
 * Any number as a double. When is_int is not NULL it tells whether v was an
 * integer literal, then held exactly in *iv (out_of_range beyond 2^53).
 */
int poold_number(struct poold_call *c, struct poold_value v, double *d, int *is_int, int64_t *iv);
int poold_arg_number(struct poold_call *c, int i, double *d, int *is_int, int64_t *iv);
/*
 * A string, unescaped into UTF-8 and NUL-terminated; *len excludes the NUL
 * (a \u0000 in the text makes a NUL byte inside). Valid until the function
 * returns.
 */
int poold_string(struct poold_call *c, struct poold_value v, const char **s, size_t *len);
int poold_arg_string(struct poold_call *c, int i, const char **s, size_t *len);
/* true or false as 1 or 0. */
int poold_bool(struct poold_call *c, struct poold_value v, int *b);
/* 1 when v is a string equal to the NUL-terminated s (an object's key, say). */
int poold_string_eq(struct poold_value v, const char *s);

/* Start iterating an array or object (type_error otherwise). */
int poold_iter_init(struct poold_call *c, struct poold_value v, struct poold_iter *it);
/* The next element of an array: 1 with *elem set, 0 at the end (or for an object). */
int poold_array_next(struct poold_iter *it, struct poold_value *elem);
/*
 * The next member of an object: 1 with *key (a string value) and *val set, 0
 * at the end (or for an array).
 */
int poold_object_next(struct poold_iter *it, struct poold_value *key, struct poold_value *val);
/* Number of elements of an array (0 for anything else). */
size_t poold_array_len(struct poold_value v);

/* --- the result: exactly one value; arrays and objects are built in steps --- */
/*
 * Each returns 0, or -1 having failed the call: out_of_range (an integer
 * beyond 2^53), function_error (a double that is not finite, text that is
 * not one valid JSON value, a value where a key is due, a second top-level
 * value, an unbalanced end), or result_too_large. Commas are poold's job.
 */
int poold_out_int(struct poold_call *c, int64_t v);
int poold_out_double(struct poold_call *c, double v);
int poold_out_bool(struct poold_call *c, int b);
int poold_out_null(struct poold_call *c);
/* s (len bytes, any bytes) as a JSON string; invalid UTF-8 becomes U+FFFD. */
int poold_out_string(struct poold_call *c, const char *s, size_t len);
/* One JSON value as text (checked); e.g. an argument passed through: v.json, v.len. */
int poold_out_json(struct poold_call *c, const char *json, size_t len);
int poold_out_array_begin(struct poold_call *c);
int poold_out_array_end(struct poold_call *c);
int poold_out_object_begin(struct poold_call *c);
int poold_out_object_end(struct poold_call *c);
/* In an object: the key of the next member (then its value). */
int poold_out_key(struct poold_call *c, const char *key, size_t len);

/*
 * Fail the call with code and a printf-style message (one line, cut at 199
 * bytes). Returns -1, so that a function can `return poold_fail(...)`.
 * What the function appended is dropped; the item's answer is the error.
 */
int poold_fail(struct poold_call *c, enum poold_error code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif
