/* child.h - user programs and commands started by a worker, in process groups of their own */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* A running child: its pid (also its process group) and the worker's pipe ends. */
struct child {
	pid_t pid;
	int in;    /* its stdin, -1 when not piped or closed */
	int out;   /* its stdout, -1 once closed */
	int err;   /* its stderr, -1 once closed */
	int pidfd; /* readable when it exits; -1 when the kernel has none */
	int reaped;
	int status; /* wait status, once reaped */
};

/* What child_pump moves: input still to write, where output goes. */
struct child_io {
	const char *in_p; /* bytes still to write to stdin */
	size_t in_left;
	size_t in_done;  /* bytes written so far */
	int close_in;    /* close stdin once in_left reaches 0 */
	struct buf *out; /* stdout is appended here ... */
	size_t out_max;  /* ... while out->len < out_max */
	/* stderr bytes as they come (n == 0: end of file) */
	void (*on_err)(void *arg, const char *p, size_t n);
	void *arg;
};

/*
 * Start argv (argv[0] searched in PATH when it has no '/') in a new process
 * group, with the worker's environment plus env (NAME=VALUE, may be NULL), in
 * cwd (NULL: the worker's), stdin a pipe when pipe_in (else /dev/null), stdout
 * and stderr pipes, every other fd closed, and PR_SET_PDEATHSIG(SIGKILL) so
 * that it never outlives the worker. Cheap: clone(CLONE_VM | CLONE_VFORK), as
 * posix_spawn does, not a copy of the worker. The worker's ends are
 * non-blocking and close-on-exec. Returns 0, or -errno (exec failures
 * included) with nothing left behind.
 */
int child_spawn(struct child *c, char *const argv[], char *const env[], const char *cwd,
                int pipe_in);
/*
 * Wait up to ms (-1: no limit) for stdin room, output or the child's exit,
 * then move what can move: write io's input (without SIGPIPE: when the reader
 * is gone the rest is dropped, stdin stays open for child_unread), read stdout into io->out, hand
 * stderr to io->on_err, reap the child when it has exited. Returns 0, -ETIMEDOUT when nothing
 * happened in time, -ENOBUFS when stdout has more than io->out_max bytes, or -errno.
 */
int child_pump(struct child *c, struct child_io *io, int ms);
/* Bytes written to c's stdin that it has not read (0 when stdin is closed). */
size_t child_unread(const struct child *c);
/* SIGKILL a process group (async-signal-safe; 0 does nothing). */
void child_kill_group(pid_t pgid);
/*
 * Stop c: close its stdin, give it grace_ms to exit by itself (0: none), then
 * kill its process group, reap it and close every fd. Returns its wait status.
 */
int child_stop(struct child *c, int grace_ms);
/* Milliseconds on the monotonic clock. */
long long child_now_ms(void);
