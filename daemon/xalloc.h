/* xalloc.h - allocation that cannot fail: poold's one out-of-memory rule */
#pragma once

#include <stddef.h>

/*
 * The rule (see HACKING.md): in poold, supervisor and workers alike, running
 * out of memory ends the process at once with one log line, as tmux's
 * xmalloc does. No call site checks for NULL, so no half-handled failure path
 * can corrupt the ledger. Memory a client can make the daemon use is bounded
 * before it is allocated (--max-line, --max-memory, windows), so hitting this
 * means the machine itself is out of memory.
 */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Route libevent's, cJSON's and struct buf's allocations through the rule too. */
void xalloc_install(void);
