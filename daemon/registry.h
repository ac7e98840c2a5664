/* registry.h - the built-in functions as the supervisor sees them: name, arity, doc */
#pragma once

#include <stddef.h>

struct fn_def {
	const char *name;
	int min_args;
	int max_args;
	const char *doc; /* one line */
};

/* Look a built-in function up by name; NULL when unknown. */
const struct fn_def *registry_find(const char *name, size_t len);
/* Call cb for every built-in function, in the module's order. */
void registry_foreach(void (*cb)(const struct fn_def *def, void *arg), void *arg);
