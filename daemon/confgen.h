/* confgen.h - generations of the configuration: the current one, and older ones still in use */
#pragma once

#include <stdint.h>

#include "conf.h"

/*
 * One loaded configuration. Requests and worker slots hold a reference to
 * the generation they started with, so that a reload never changes the
 * function a running request calls nor frees what its tasks point to.
 */
struct confgen {
	struct conf c;
	uint32_t gen;
	uint32_t refs;
	char copy[128];      /* RUNDIR/conf-GEN: the text the workers parse; "" when none */
	const char *name;    /* the file name shown in messages, NULL when none */
	uint32_t n_requests; /* requests in flight that started with it */
	double *cost_ns;     /* per function (c.fns order): measured ns per item, 0 = unknown */
};

/* The generation new requests and new workers use. */
struct confgen *confgen_current(void);
/*
 * Make the first generation from the configuration main.c loaded (c, taken;
 * NULL: built-ins only): write the copy for workers into RUNDIR and learn the
 * functions' arities through a probe process. Returns 0, or -1 after logging
 * each problem.
 */
int confgen_init(struct conf *c);
/*
 * SIGHUP: read the file again. A file that fails validation is refused with a
 * log line per problem and the current generation stays; otherwise it becomes
 * current and the pool replaces its workers one at a time. Returns 0 or -1.
 */
int confgen_reload(void);
/* Write the current copy again (the runtime directory vanished). Returns 0 or -errno. */
int confgen_restore(void);
/* Where g keeps fn's measured cost per item (fn is one of g's entries), or NULL. */
double *confgen_cost(struct confgen *g, const struct fn_entry *fn);
/* 1 when requests in flight still use g. */
int confgen_in_use(const struct confgen *g);
struct confgen *confgen_ref(struct confgen *g);
void confgen_unref(struct confgen *g);
/* Release the current generation (daemon exit). */
void confgen_free(void);
