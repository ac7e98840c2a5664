/* registry.c - the built-in functions as the supervisor sees them: name, arity, doc */
#include "registry.h"

#include <string.h>

#include "modload.h"

#define MAX_BUILTINS 64

static struct fn_def defs[MAX_BUILTINS];
static size_t n_defs;

/* The supervisor never runs the functions: it copies what it needs of the table once. */
static void fill(void)
{
	const struct poold_function *f;

	if (n_defs)
		return;
	for (f = modload_builtin_module()->functions; f->name && n_defs < MAX_BUILTINS; f++)
		defs[n_defs++] = (struct fn_def){f->name, f->min_args, f->max_args, f->doc};
}

const struct fn_def *registry_find(const char *name, size_t len)
{
	size_t i;

	fill();
	for (i = 0; i < n_defs; i++)
		if (strlen(defs[i].name) == len && memcmp(defs[i].name, name, len) == 0)
			return &defs[i];
	return NULL;
}

void registry_foreach(void (*cb)(const struct fn_def *def, void *arg), void *arg)
{
	size_t i;

	fill();
	for (i = 0; i < n_defs; i++)
		cb(&defs[i], arg);
}
