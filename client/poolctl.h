/* poolctl.h - poolctl's parts: messages, printers of daemon information, streams, output */
#pragma once

#include <stddef.h>

#include <cJSON.h>

#include "poolclient.h"

/* Exit codes: success, a job failed, usage/connection/rejection errors. */
enum { EXIT_JOB = 1, EXIT_USAGE = 2 };

/* Print "poolctl: " + message + newline on stderr; returns EXIT_USAGE. */
int poolctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a library error on one line; returns the exit code it deserves. */
int poolctl_report(const struct pool_error *e);

/* Print v as one JSON line on stdout; 0 or -ENOMEM. */
int poolctl_print_json(const cJSON *v);
/* Print a status object as a summary and a table of slots; 0 or -ENOMEM. */
int poolctl_print_status(const cJSON *status);
/* Print a ping reply (id and ok removed) on one line; 0. */
int poolctl_print_ping(const cJSON *ping);
/* Print the functions array as a table; 0. */
int poolctl_print_functions(const cJSON *list);

/*
 * Stream fn over the items of stdin (argc 1, argv[0] "-") or of the ARGs and
 * write the results as they come; progress: 1 show the progress line on
 * stderr, 0 not, -1 when stderr is a terminal. Returns the exit status.
 */
int poolctl_stream(const char *sock, const char *fn, const struct pool_stream_opts *o, int progress,
                   int argc, char **argv);

/* Set up standard output; progress 1 = draw the progress line on stderr. */
void poolctl_out_init(int progress);
/* Buffer n bytes for stdout; 0 or -errno. */
int poolctl_out_write(const char *p, size_t n);
/* Write the buffered bytes to stdout; 0 or -errno. */
int poolctl_out_flush(void);
/* Redraw the progress line (total -1 = unknown), at most every 200 ms unless force. */
void poolctl_progress_show(long done, long total, int force);
/* Erase the progress line if it is shown. */
void poolctl_progress_clear(void);
/* Milliseconds until the progress line wants a redraw, -1 when it is off. */
int poolctl_progress_wait(void);
