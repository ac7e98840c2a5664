/* spawn.h - the one careful fork+exec routine */
#pragma once

#include <sys/types.h>

/*
 * Start argv[0] (a path) with argv in a child that dies with the supervisor:
 * signals blocked around fork, handlers and mask reset in the child, every fd
 * above 2 closed, PR_SET_PDEATHSIG set, then exec. Returns the pid or -errno.
 */
pid_t spawn_process(char *const argv[]);
