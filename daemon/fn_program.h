/* fn_program.h - worker programs: one long-lived child per worker, JSON lines */
#pragma once

#include <stddef.h>

#include "conf.h"
#include "wire.h"
#include "worker.h"

/*
 * Start e's program (FN_PROGRAM), read its handshake within a deadline,
 * check that it serves e->name, fill e->min_args/max_args when it declares
 * them, and stop it. Returns 0, or -1 with one line in err.
 */
int program_probe(struct fn_entry *e, char *err, size_t n);

/*
 * Run the items of task t through e's program, started on first use and kept
 * warm (recycled after e->max_tasks_per_worker tasks): one request line per
 * task, one reply line back. Each item's value or error goes to o. A program
 * that misbehaves (exits, closes stdout, writes a line that is not a reply,
 * writes too much) is killed with its process group, logged, and the worker
 * exits with WORKER_EXIT_PROGRAM so that the supervisor treats the chunk as a
 * dead worker's.
 */
void program_run_task(const struct fn_entry *e, const struct wire_msg *t, struct task_out *o);
/* Start e's program now (preload = yes). */
void program_preload(const struct fn_entry *e);
/* Kill every program's process group (the worker is exiting). */
void program_stop_all(void);
