/* modload.h - C modules: dlopen, ABI checks, the function table they export */
#pragma once

#include <stddef.h>

#include "conf.h"
#include "poold/module.h"

/*
 * Load e->module (a FN_MODULE entry), check its magic, ABI and descriptor
 * size, and find e->symbol. On success returns the function and fills
 * e->min_args, e->max_args and e->description (when unset); on failure returns
 * NULL with one line in err naming the file and, for an ABI mismatch, both
 * versions. A module is loaded once per process however many entries use it;
 * its init hook runs once, right after loading.
 */
const struct poold_function *modload_function(struct fn_entry *e, char *err, size_t n);
/* The built-in "std" module's function named name, NULL when none. */
const struct poold_function *modload_builtin(const char *name, size_t len);
/* The built-in module (its table lists every built-in function). */
const struct poold_module *modload_builtin_module(void);
/* The integer form of f (a function modload_function or modload_builtin gave), NULL when none. */
poold_int_fn modload_int_form(const struct poold_function *f);
/* Run every loaded module's fini hook (worker exit). */
void modload_fini_all(void);
