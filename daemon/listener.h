/* listener.h - the Unix socket clients connect to */
#pragma once

#include <stddef.h>

/*
 * Take the listening socket systemd passed (LISTEN_FDS, LISTEN_PID; the
 * variables are removed): 1 with its path in path ("" when it has none), 0
 * when none was passed, -EBADF when what was passed is not exactly one
 * listening Unix stream socket. Call before anything is spawned.
 */
int listener_inherit(char *path, size_t n);
/*
 * Before listener_open: look up --socket-group (-EINVAL when there is no
 * such group) and, unless systemd passed the socket, make path's directory
 * when missing (0700, or 0750 with the group). Returns 0 or -errno.
 */
int listener_prepare(const char *path);
/*
 * Listen on the socket systemd passed, else bind path (0600, or 0660 with
 * --socket-group's group). Returns 0 or -errno.
 */
int listener_open(const char *path);
/*
 * Listen for remote clients on each address of --listen (tls://ADDR:PORT,
 * or tcp:// on a loopback address only), loading the TLS context first.
 * Returns 0, or -1 with a start-up error in err.
 */
int listener_open_remote(char *err, size_t n);
/* Stop accepting (every listener) and remove the socket file (never one systemd passed). */
void listener_close(void);
/* A connection ended: accept again if we were at --max-connections. */
void listener_conn_closed(void);
