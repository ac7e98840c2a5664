/* xalloc.c - allocation that cannot fail: poold's one out-of-memory rule */
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

static void out_of_memory(size_t n)
{
	log_error("out of memory (%zu bytes); exiting", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		out_of_memory(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		out_of_memory(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		out_of_memory(n);
	return q;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

void xalloc_install(void)
{
	cJSON_Hooks hooks = {.malloc_fn = xmalloc, .free_fn = free};

	event_set_mem_functions(xmalloc, xrealloc, free);
	cJSON_InitHooks(&hooks);
	buf_on_oom = out_of_memory;
}
