/* conf.h - poold.conf(5): daemon options and the functions users declare */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "supervisor.h"

#define CONF_MAX_WORKERS 256
/* Text options of [poold] other than socket and socket_group (hosts, join, ...). */
#define CONF_MAX_STRS 8

/* How a function runs inside a worker process. */
enum fn_kind {
	FN_BUILTIN, /* compiled into poold through the module API ("std") */
	FN_MODULE,  /* a C module (.so) dlopen'ed in each worker */
	FN_PROGRAM, /* a long-lived program per worker, JSON lines on stdin/stdout */
	FN_COMMAND, /* a command spawned per item */
};

/* Where a value came from, for FILE:LINE: messages. */
struct conf_where {
	const char *file; /* the config file as the user named it */
	int line;
};

/*
 * One function a client may call. Built-ins get an entry too (kind
 * FN_BUILTIN), so that the supervisor, the functions op and the workers look
 * every function up in one table.
 */
struct fn_entry {
	char *name;
	enum fn_kind kind;
	char *description; /* one line; for modules and built-ins the module's doc */
	int min_args;      /* learnt from the module or program handshake when not set */
	int max_args;
	/* FN_MODULE */
	char *module; /* absolute path of the .so */
	char *symbol; /* the function's name inside the module (default: name) */
	/* FN_PROGRAM, FN_COMMAND: argv, NULL-terminated; no shell */
	char **argv;
	char **env;      /* extra NAME=VALUE pairs, NULL-terminated (may be NULL) */
	char *cwd;       /* working directory, NULL = the daemon's */
	int preload;     /* program: start at worker start, not on first use */
	int input_stdin; /* command: the item goes to stdin, not into argv */
	int output_json; /* command: stdout parsed as JSON, not returned as a string */
	/* Per-function limits: a request may lower them, never raise them. 0 = unset. */
	uint32_t timeout_ms;
	uint32_t retries;
	int has_retries;
	uint64_t max_tasks_per_worker;
	struct conf_where where; /* the [function NAME] header line */
};

/* Which daemon options the file set (a command-line flag wins over the file). */
struct conf {
	char *path;                /* the file read, NULL when none */
	char *name;                /* the file name shown in messages (name_as, else path) */
	char *socket;              /* owns opt.socket_path when the file set it */
	char *group;               /* owns opt.socket_group when the file set it */
	char *strs[CONF_MAX_STRS]; /* own the other text options the file set (hosts, join, ...) */
	int n_strs;
	char *text; /* its bytes, as read (workers parse a copy of exactly these) */
	size_t text_len;
	struct options opt; /* the [poold] section applied over the defaults */
	uint64_t opt_set;   /* bit per option the file set: CONF_OPT_* */
	struct fn_entry *fns;
	size_t n_fns;
	struct conf_client *clients; /* [client NAME] sections: remote clients' allow-lists */
	size_t n_clients;
};

/* A [client NAME] section: the functions a remote client of that name may call. */
struct conf_client {
	char *name;       /* its certificate's common name */
	char **functions; /* NULL-terminated; NULL: the section has no functions key (none) */
	int line;
};

enum conf_opt_bit {
	CONF_OPT_SOCKET = 1u << 0,
	CONF_OPT_WORKERS = 1u << 1,
	CONF_OPT_TIMEOUT = 1u << 2,
	CONF_OPT_MAX_LINE = 1u << 3,
	CONF_OPT_MAX_ITEMS = 1u << 4,
	CONF_OPT_MAX_PENDING = 1u << 5,
	CONF_OPT_MAX_CONN = 1u << 6,
	CONF_OPT_MAX_INFLIGHT = 1u << 7,
	CONF_OPT_MAX_TASKS = 1u << 8,
	CONF_OPT_STOP_TIMEOUT = 1u << 9,
	CONF_OPT_MAX_MEMORY = 1u << 10,
	CONF_OPT_VERBOSE = 1u << 11,
	CONF_OPT_SLOW_TASK = 1u << 12,
	CONF_OPT_SOCKET_GROUP = 1u << 13,
	CONF_OPT_HOSTS = 1u << 14,
	CONF_OPT_JOIN = 1u << 15,
	CONF_OPT_HOST_ENDPOINT = 1u << 16,
	CONF_OPT_CLUSTER_KEY = 1u << 17,
	CONF_OPT_HOST_TIMEOUT = 1u << 18,
	CONF_OPT_LISTEN = 1u << 19,
	CONF_OPT_TLS_CERT = 1u << 20,
	CONF_OPT_TLS_KEY = 1u << 21,
	CONF_OPT_TLS_CA = 1u << 22,
};

/*
 * Problems are reported through this callback as "FILE:LINE: message"
 * (line 0: the file as a whole); the loader goes on to find more.
 */
typedef void (*conf_report)(void *arg, const char *file, int line, const char *msg);

/*
 * The default path: /etc/poold/poold.conf for root, else
 * $XDG_CONFIG_HOME/poold/poold.conf or ~/.config/poold/poold.conf.
 */
const char *conf_default_path(char *out, size_t n);

/*
 * Read and check path (syntax, keys, values, file modes and owners as sshd's
 * StrictModes) into c, over the option defaults in base. name_as is the file
 * name shown in messages (NULL: path). Problems go to report. Returns 0 when
 * none was found, -1 otherwise (c is then freed). A missing file is -ENOENT
 * without a report, so that callers decide whether the default may be absent.
 */
int conf_load(struct conf *c, const char *path, const char *name_as, const struct options *base,
              conf_report report, void *arg);
/* Parse text (a copy written by the supervisor) the same way, without file checks. */
int conf_load_text(struct conf *c, const char *text, size_t len, const char *name_as,
                   const struct options *base, conf_report report, void *arg);
/* Release everything c owns (c itself is the caller's). */
void conf_free(struct conf *c);

/*
 * sshd's StrictModes for a file poold reads settings or code from: 0 when it
 * is a regular file owned by root or poold's user and writable by no one
 * else; -1 with the reason in msg ("is writable by others (mode 0666): ...").
 */
int conf_file_check(const char *path, char *msg, size_t n);

/* The entry named name (len bytes) in c, NULL when none. */
const struct fn_entry *conf_find(const struct conf *c, const char *name, size_t len);

const char *fn_kind_name(enum fn_kind k);

/*
 * Whether the remote client named client (its certificate's common name) may
 * call function fn: every function when no [client NAME] section names it,
 * else only those its functions key lists.
 */
int conf_client_allows(const struct conf *c, const char *client, const char *fn);

/*
 * Set the daemon option key (a [poold] key such as "max_line"; the
 * command-line flag is the same name with '-' for '_') in o from text, which
 * must outlive o for "socket". Returns the option's CONF_OPT_* bit, or 0 with
 * err set to the rest of a sentence naming the accepted values ("takes a
 * number from 1 to 256, not 'x'"; "is not an option" for an unknown key).
 */
uint64_t conf_option_set(struct options *o, const char *key, const char *text, char *err, size_t n);

/*
 * Append the function table as one JSON object, the answer of
 * `poold --check-config --json` that conf_resolve reads:
 * {"functions":[{"name":..,"kind":..,"min_args":..,"max_args":..,"description":..},..]}
 * (min_args/max_args -1 and description null when unknown).
 */
struct buf;
int conf_json(const struct conf *c, struct buf *b);

/*
 * In a process that may run user code (poold --check-config, never the
 * supervisor): load each module and start each program once, fill in the
 * arity and description they declare, report what fails. Returns 0 or -1.
 */
int conf_probe(struct conf *c, conf_report report, void *arg);

/*
 * In the supervisor: learn what conf_probe learns without loading user code,
 * by running `exe --check-config --config copy --json` and reading its
 * answer (bounded by a deadline). Problems go to report. Returns 0 or -1.
 */
int conf_resolve(struct conf *c, const char *exe, const char *copy, conf_report report, void *arg);
