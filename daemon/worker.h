/* worker.h - the worker process: receives tasks, runs functions, sends results */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct worker_args {
	uint32_t slot;
	uint32_t gen;
	const char *rundir;
	size_t max_msg;
	int verbose;
};

/* Run the worker loop until the supervisor goes away; returns the exit status. */
int worker_main(const struct worker_args *a);
