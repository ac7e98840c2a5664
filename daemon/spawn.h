/* spawn.h - the one careful fork+exec routine */
#pragma once

#include <sys/types.h>

/*
 * Remember the running poold image (/proc/self/exe, opened once at start) so
 * that workers and probes exec exactly this binary even after the file on
 * disk was replaced or removed by an upgrade. Returns 0 or -errno.
 */
int spawn_self_open(void);
/* Release what spawn_self_open holds. */
void spawn_self_close(void);

/*
 * Start a child that dies with the supervisor: signals blocked around fork,
 * handlers and mask reset in the child, stdio from fds (fds[i] < 0 or fds
 * NULL: inherited), every other fd above 2 closed, PR_SET_PDEATHSIG set, then
 * exec. spawn_process execs argv[0] (a path); spawn_self execs the image kept
 * by spawn_self_open, with argv as given. Both return the pid or -errno.
 */
pid_t spawn_process(char *const argv[], const int fds[3]);
pid_t spawn_self(char *const argv[], const int fds[3]);
