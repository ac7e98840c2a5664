/* worker.h - the worker process: receives tasks, runs functions, sends results */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"

/*
 * Exit statuses a worker chooses, so that the supervisor can say what
 * happened (pool.c describes them): a worker program misbehaved, or the
 * configuration copy could not be used.
 */
#define WORKER_EXIT_PROGRAM 70
#define WORKER_EXIT_CONFIG 71

struct worker_args {
	uint32_t slot;
	uint32_t gen;
	const char *rundir;
	size_t max_msg;
	const char *conf;      /* the supervisor's copy of the config file, NULL when none */
	const char *conf_name; /* the file name to show in messages */
	int verbose;
};

/* The results of one task as the worker builds them. */
struct task_out {
	struct buf *out;    /* the items' values joined by ',' */
	struct buf *errbuf; /* failed items' indices, little-endian u32 */
	uint32_t count;     /* items answered so far */
	uint32_t n_errors;
	uint32_t first_error;
	size_t limit; /* most bytes of out + errbuf in one message */
	int fail_fast;
};

/*
 * Append the next item's value (JSON text) or error. Returns 0, or -1 when
 * the task must stop here: fail-fast after an error, or the message is full
 * (then the item is not counted and is left to a later task, unless it is the
 * first, which becomes result_too_large).
 */
int task_out_value(struct task_out *o, const char *json, size_t len);
int task_out_error(struct task_out *o, const struct proto_error *e);

/* Run the worker loop until the supervisor goes away; returns the exit status. */
int worker_main(const struct worker_args *a);
