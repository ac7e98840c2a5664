/* poolctl.h - poolctl's parts: options, messages, printers, streams, output, top */
#pragma once

#include <stddef.h>

#include <cJSON.h>

#include "buf.h"
#include "json.h"
#include "poolclient.h"

/* Exit codes: success, a job failed, usage/connection/rejection/deadline errors. */
enum { EXIT_JOB = 1, EXIT_USAGE = 2 };

/* The commands, as bits of the set of commands an option applies to. */
enum {
	CMD_MAP = 1 << 0,
	CMD_STARMAP = 1 << 1,
	CMD_APPLY = 1 << 2,
	CMD_STATUS = 1 << 3,
	CMD_PING = 1 << 4,
	CMD_FUNCTIONS = 1 << 5,
	CMD_METRICS = 1 << 6,
	CMD_TOP = 1 << 7,
};

/* What the command line asked for; numbers are -1 when not given. */
struct poolctl_args {
	const char *socket;
	const char *connect; /* --connect URI (tls://, tcp://, unix:) */
	const char *cert, *key, *ca;
	long deadline_ms; /* 0 = none */
	int help, version, json, raw_in, raw_out, collect, unordered;
	int progress; /* 1 --progress, 0 --no-progress, -1 neither */
	long chunksize, retries, timeout_ms, window, count;
	const char *cmd_name; /* NULL when none was given */
	int cmd;              /* CMD_*, 0 when none or unknown */
	char **pos;           /* the words after the command: FN and ARGs (NULL-terminated) */
	int npos;
	int stdin_items; /* the ARGs are a single "-" given before "--" */
};

/*
 * Parse argv: options anywhere before "--" (long, --name=value, bundled short
 * flags), the first other word is the command. Words starting with '-' and a
 * digit are arguments (negative numbers). Returns 0, or EXIT_USAGE with the
 * message printed. Free a->pos with free().
 */
int poolctl_parse(int argc, char **argv, struct poolctl_args *a);
/* The help text of the command (or the main one for 0). */
const char *poolctl_usage(int cmd);

/* Print "poolctl: " + message + newline on stderr; returns EXIT_USAGE. */
int poolctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a library error on one line, in poolctl's words; returns the exit code it deserves. */
int poolctl_report(const struct pool_error *e);

/*
 * Append one item to b: ARG or stdin line p (len bytes) as JSON, or with raw
 * a string (starmap: an array of its TAB-separated fields). 0; -1 with why
 * filled (not valid JSON, not an array); -ENOMEM.
 */
int poolctl_item(struct buf *b, const char *p, size_t len, int raw, int star, char *why,
                 size_t whylen);

/* Print v as one JSON line on stdout; 0 or -ENOMEM. */
int poolctl_print_json(const cJSON *v);
/* Print a status object as a summary and a table of slots; 0 or -ENOMEM. */
int poolctl_print_status(const cJSON *status);
/* Print a ping reply (id and ok removed) on one line; 0. */
int poolctl_print_ping(const cJSON *ping);
/* Print the functions array as a table; 0. */
int poolctl_print_functions(const cJSON *list);

/*
 * Stream fn over the items of stdin (a->stdin_items) or of the ARGs and write
 * the results as they come. Returns the exit status.
 */
int poolctl_stream(const struct poolctl_args *a, const char *fn, const struct pool_stream_opts *o,
                   int argc, char **argv);

/* poolctl top: a view of the status op once a second. Returns the exit status. */
int poolctl_top(const struct poolctl_args *a);
/* poolctl metrics: the metrics op's text as it came. Returns the exit status. */
int poolctl_metrics(const struct poolctl_args *a);

/* Connect to a->socket and set the deadline; NULL with the error reported (*code). */
pool_client *poolctl_connect(const struct poolctl_args *a, int *code);

/* Set up standard output; progress 1 = draw the progress line on stderr. */
void poolctl_out_init(int progress);
/* Buffer n bytes for stdout; 0 or -errno. */
int poolctl_out_write(const char *p, size_t n);
/*
 * Buffer the elements of an array without strings or nested values (the
 * text between its brackets), one per line: its commas become newlines.
 */
int poolctl_out_lines(const char *p, size_t n);
/* Buffer one value: a JSON string decoded when raw, anything else as JSON; 0 or -errno. */
int poolctl_out_value(struct json_span v, int raw);
/* Write the buffered bytes to stdout; 0 or -errno. */
int poolctl_out_flush(void);
/* Redraw the progress line (total -1 = unknown), at most every 200 ms unless force. */
void poolctl_progress_show(long done, long total, int force);
/* Erase the progress line if it is shown. */
void poolctl_progress_clear(void);
/* Milliseconds until the progress line wants a redraw, -1 when it is off. */
int poolctl_progress_wait(void);
