/* listener.h - the Unix socket clients connect to */
#pragma once

/* Bind and listen on path (0600, parent directory created 0700). Returns 0 or -errno. */
int listener_open(const char *path);
/* Stop accepting and remove the socket file. */
void listener_close(void);
/* A connection ended: accept again if we were at --max-connections. */
void listener_conn_closed(void);
