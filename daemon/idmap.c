/* idmap.c - a connection's requests by id: duplicate checks, feed, end and cancel in O(1) */
#include "idmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "xalloc.h"

#define IDMAP_MIN 16

static size_t hash(struct json_span id)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < id.len; i++)
		h = (h ^ (unsigned char)id.p[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32));
}

static int same(const struct request *r, struct json_span id)
{
	return r->pr.id.len == id.len && memcmp(r->pr.id.p, id.p, id.len) == 0;
}

static void insert(struct request **slot, size_t cap, struct request *r)
{
	size_t i = hash(r->pr.id) & (cap - 1);

	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = r;
}

/* Keep the table at most half full. */
static void grow(struct idmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : IDMAP_MIN, i;
	struct request **slot = xcalloc(cap, sizeof(*slot));

	for (i = 0; i < m->cap; i++)
		if (m->slot[i])
			insert(slot, cap, m->slot[i]);
	free(m->slot);
	m->slot = slot;
	m->cap = cap;
}

void idmap_put(struct idmap *m, struct request *r)
{
	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	insert(m->slot, m->cap, r);
	m->n++;
}

struct request *idmap_get(const struct idmap *m, struct json_span id)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = hash(id) & (m->cap - 1); m->slot[i]; i = (i + 1) & (m->cap - 1))
		if (same(m->slot[i], id))
			return m->slot[i];
	return NULL;
}

/* Remove by backward shift: later entries of the same probe run move up. */
void idmap_del(struct idmap *m, struct request *r)
{
	size_t mask = m->cap - 1, i = hash(r->pr.id) & mask, j, home;

	while (m->slot[i] != r)
		i = (i + 1) & mask;
	m->slot[i] = NULL;
	m->n--;
	for (j = (i + 1) & mask; m->slot[j]; j = (j + 1) & mask) {
		home = hash(m->slot[j]->pr.id) & mask;
		/* Move slot j to the hole at i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slot[i] = m->slot[j];
			m->slot[j] = NULL;
			i = j;
		}
	}
}

void idmap_free(struct idmap *m)
{
	free(m->slot);
	memset(m, 0, sizeof(*m));
}
