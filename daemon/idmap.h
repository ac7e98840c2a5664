/* idmap.h - a connection's requests by id: duplicate checks, feed, end and cancel in O(1) */
#pragma once

#include <stddef.h>

#include "json.h"

struct request;

/* Open addressing with linear probing; keys are the ids' bytes as written. */
struct idmap {
	struct request **slot;
	size_t cap; /* a power of two, or 0 before the first put */
	size_t n;
};

/* Add r under r->pr.id (not already present). */
void idmap_put(struct idmap *m, struct request *r);
/* Remove r (present). */
void idmap_del(struct idmap *m, struct request *r);
/* The request whose id is id byte for byte, NULL when none. */
struct request *idmap_get(const struct idmap *m, struct json_span id);
void idmap_free(struct idmap *m);
