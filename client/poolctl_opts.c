/* poolctl_opts.c - poolctl's command line: options anywhere before "--", ranges, help texts */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poolctl.h"

#define CALLS (CMD_MAP | CMD_STARMAP | CMD_APPLY)
#define MAPS (CMD_MAP | CMD_STARMAP)
#define INFOS (CMD_STATUS | CMD_PING | CMD_FUNCTIONS)
#define ALL 0xff

/* Ranges of the protocol (PROTOCOL.md, section 14) and of libpoolclient. */
#define MAX_CHUNKSIZE 1000000L
#define MAX_RETRIES 100L
#define MAX_MS 86400000L
#define MAX_WINDOW 1000000L
#define MAX_COUNT 1000000000L

enum opt_id {
	O_SOCKET,
	O_CONNECT,
	O_CERT,
	O_KEY,
	O_CA,
	O_DEADLINE,
	O_HELP,
	O_VERSION,
	O_JSON,
	O_RAW_IN,
	O_RAW_OUT,
	O_CHUNKSIZE,
	O_RETRIES,
	O_TIMEOUT,
	O_COLLECT,
	O_UNORDERED,
	O_WINDOW,
	O_PROGRESS,
	O_NO_PROGRESS,
	O_COUNT,
};

struct optdef {
	const char *name;
	char short_name; /* 0 = long only */
	int has_arg;
	int id;
	int cmds;             /* CMD_* bits it applies to */
	long min, max;        /* numeric value range (has_arg; max 0: a text value) */
	const char *for_whom; /* "map and starmap": said when given to another command */
};

static const struct optdef opts[] = {
    {"socket", 's', 1, O_SOCKET, ALL, 0, 0, NULL},
    {"connect", 0, 1, O_CONNECT, ALL, 0, 0, NULL},
    {"cert", 0, 1, O_CERT, ALL, 0, 0, NULL},
    {"key", 0, 1, O_KEY, ALL, 0, 0, NULL},
    {"ca", 0, 1, O_CA, ALL, 0, 0, NULL},
    {"deadline", 0, 1, O_DEADLINE, ALL, 0, MAX_MS, NULL},
    {"help", 'h', 0, O_HELP, ALL, 0, 0, NULL},
    {"version", 'V', 0, O_VERSION, ALL, 0, 0, NULL},
    {"json", 'j', 0, O_JSON, INFOS, 0, 0, "status, ping and functions"},
    {"raw-input", 'R', 0, O_RAW_IN, CALLS, 0, 0, "map, starmap and apply"},
    {"raw-output", 'r', 0, O_RAW_OUT, CALLS, 0, 0, "map, starmap and apply"},
    {"chunksize", 0, 1, O_CHUNKSIZE, MAPS, 0, MAX_CHUNKSIZE, "map and starmap"},
    {"retries", 0, 1, O_RETRIES, CALLS, 0, MAX_RETRIES, "map, starmap and apply"},
    {"timeout-ms", 0, 1, O_TIMEOUT, CALLS, 0, MAX_MS, "map, starmap and apply"},
    {"collect", 0, 0, O_COLLECT, MAPS, 0, 0, "map and starmap"},
    {"unordered", 0, 0, O_UNORDERED, MAPS, 0, 0, "map and starmap"},
    {"window", 0, 1, O_WINDOW, MAPS, 1, MAX_WINDOW, "map and starmap"},
    {"progress", 0, 0, O_PROGRESS, MAPS, 0, 0, "map and starmap"},
    {"no-progress", 0, 0, O_NO_PROGRESS, MAPS, 0, 0, "map and starmap"},
    {"count", 'n', 1, O_COUNT, CMD_TOP, 1, MAX_COUNT, "top"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char main_usage[] =
    "Usage: poolctl [OPTIONS] COMMAND [OPTIONS] [--] [ARGS...]\n"
    "\n"
    "Send jobs to the poold daemon and print the results, one JSON value per line.\n"
    "\n"
    "Commands:\n"
    "  map FN ARG...         call FN on each ARG, results in order\n"
    "  starmap FN ARGLIST... call FN with each ARGLIST (a JSON array) as its arguments\n"
    "  apply FN ARG...       call FN once with the ARGs as its arguments\n"
    "  status                show the daemon's workers and counters\n"
    "  top                   the status, refreshed every second\n"
    "  metrics               the daemon's counters in Prometheus text format\n"
    "  ping                  check that the daemon answers\n"
    "  functions             list the functions the daemon offers\n"
    "\n"
    "Options (anywhere before --; after -- every word is an ARG):\n"
    "  -s, --socket PATH  daemon socket (default $POOLD_SOCKET, then\n"
    "                     /run/poold/poold.sock for root, else\n"
    "                     $XDG_RUNTIME_DIR/poold/poold.sock)\n"
    "  --connect ADDR     a remote daemon: tls://HOST:PORT (or tcp://HOST:PORT on\n"
    "                     loopback; unix:PATH); default $POOLD_ADDRESS\n"
    "  --cert FILE, --key FILE, --ca FILE\n"
    "                     tls://: this client's certificate and key and the CA of\n"
    "                     the daemon's (default $POOLD_CERT, $POOLD_KEY, $POOLD_CA)\n"
    "  --deadline MS      give up after MS milliseconds (0-86400000, 0 = never;\n"
    "                     default $POOLD_DEADLINE_MS) and cancel the request\n"
    "  -h, --help         show this help (COMMAND --help: help on a command)\n"
    "  -V, --version      show the version\n"
    "\n"
    "Each ARG is one JSON value: strings need quotes, e.g. '\"hello\"', or use -R.\n"
    "\n"
    "Examples:\n"
    "  poolctl map square 1 2 3              # 1 4 9, one per line\n"
    "  seq 1000 | poolctl map square -       # stream stdin, results as they come\n"
    "  ls | poolctl map -R -r echo -         # lines as strings, strings printed bare\n"
    "  poolctl starmap add '[1,2]' '[3,4]'   # 3 7\n"
    "  poolctl apply add 20 22 --deadline 5000\n"
    "  poolctl functions                     # what FN can be\n"
    "\n"
    "Exit status: 0 success, 1 a job failed, 2 usage, connection, request or\n"
    "deadline error.\n";

static const char map_usage[] =
    "Usage: poolctl map [OPTIONS] FN [--] ARG...\n"
    "       poolctl map [OPTIONS] FN -    (stream: one ARG per line of stdin)\n"
    "\n"
    "Call FN on each ARG (one JSON value each; strings need quotes: '\"hello\"')\n"
    "and print the results one per line, in the order of the ARGs. With -, items\n"
    "are read and results printed as they come, in constant memory.\n"
    "\n"
    "  -R, --raw-input  each ARG or line of stdin is a string, as it is (jq -R)\n"
    "  -r, --raw-output print string results without quotes or escapes (jq -r)\n"
    "  --chunksize N    items per task sent to a worker (0-1000000, 0 = automatic)\n"
    "  --retries N      attempts after a worker died (0-100; default: daemon's, 2)\n"
    "  --timeout-ms N   time limit per item (0-86400000, 0 = none; default: daemon's)\n"
    "  --collect        do not stop at failed items: print {\"error\":...} in\n"
    "                   their place and exit 1 at the end\n"
    "  --unordered      stream; print results as they finish: INDEX<TAB>VALUE\n"
    "  --window N       stream; the daemon holds at most N items (1-1000000)\n"
    "  --progress, --no-progress\n"
    "                   stream; progress line on stderr (default: if a terminal)\n"
    "  --deadline MS    give up after MS milliseconds, cancelling the request\n"
    "\n"
    "Without --collect the first failing item fails the command:\n"
    "  poolctl: item 3: function_error: boom   (items count from 0), exit 1\n"
    "(streaming, the results before it have been printed; so have they before a\n"
    "line of stdin that is not valid JSON, which exits 2).\n"
    "\n"
    "Examples:\n"
    "  poolctl map square 1 2 3 --chunksize 1\n"
    "  seq 100000 | poolctl map --unordered square -\n"
    "  ls | poolctl map -R -r echo -\n"
    "  poolctl map echo -R -- -x --y     # after --, words starting with - are ARGs\n";

static const char starmap_usage[] =
    "Usage: poolctl starmap [OPTIONS] FN [--] ARGLIST...\n"
    "       poolctl starmap [OPTIONS] FN -    (stream: one ARGLIST per line of stdin)\n"
    "\n"
    "Call FN once per ARGLIST, a JSON array of arguments. With -R, each ARGLIST\n"
    "is a line whose TAB-separated fields are string arguments.\n"
    "Options as for map (poolctl map --help).\n"
    "\n"
    "Examples:\n"
    "  poolctl starmap add '[1,2]' '[3,4]'\n"
    "  paste a.txt b.txt | poolctl starmap -R -r FN -\n";

static const char apply_usage[] =
    "Usage: poolctl apply [OPTIONS] FN [--] ARG...\n"
    "\n"
    "Call FN once with the ARGs (JSON values, or strings with -R) as its\n"
    "arguments and print the result on one line.\n"
    "\n"
    "  -R, --raw-input, -r, --raw-output, --retries N, --timeout-ms N,\n"
    "  --deadline MS    as for map (poolctl map --help)\n"
    "\n"
    "Examples:\n"
    "  poolctl apply add 1 2\n"
    "  poolctl apply -R -r echo hello\n";

static const char status_usage[] = "Usage: poolctl status [--json]\n"
                                   "\n"
                                   "Show the daemon's counters and a table of its worker slots;\n"
                                   "--json prints the status object as one JSON line.\n"
                                   "\n"
                                   "Example:\n"
                                   "  poolctl status --json | jq .slots\n";

static const char ping_usage[] =
    "Usage: poolctl ping [--json]\n"
    "\n"
    "Check that the daemon answers; print its version, protocol and pid.\n"
    "\n"
    "Example:\n"
    "  poolctl ping --deadline 1000 || echo 'poold does not answer'\n";

static const char functions_usage[] =
    "Usage: poolctl functions [--json]\n"
    "\n"
    "List the functions the daemon offers, with their number of arguments.\n"
    "\n"
    "Example:\n"
    "  poolctl functions --json | jq -r '.[].name'\n";

static const char metrics_usage[] =
    "Usage: poolctl metrics\n"
    "\n"
    "Print the daemon's counters in the Prometheus text exposition format, as\n"
    "the daemon wrote them (for the node exporter's textfile collector).\n"
    "\n"
    "Example:\n"
    "  poolctl metrics > /var/lib/prometheus/node-exporter/poold.prom.$$ &&\n"
    "    mv /var/lib/prometheus/node-exporter/poold.prom.$$ \\\n"
    "       /var/lib/prometheus/node-exporter/poold.prom\n";

static const char top_usage[] =
    "Usage: poolctl top [--count N]\n"
    "\n"
    "Show the workers (busy, idle), the tasks queued and running, the items\n"
    "done and their rate, and each worker slot, refreshed every second. When\n"
    "standard output is not a terminal, print one line per second instead.\n"
    "\n"
    "  -n, --count N  stop after N refreshes (default: until interrupted)\n"
    "\n"
    "Example:\n"
    "  poolctl top --count 10 > load.log\n";

static const struct {
	const char *name;
	int cmd;
	const char *usage;
} cmds[] = {
    {"map", CMD_MAP, map_usage},
    {"starmap", CMD_STARMAP, starmap_usage},
    {"apply", CMD_APPLY, apply_usage},
    {"status", CMD_STATUS, status_usage},
    {"ping", CMD_PING, ping_usage},
    {"functions", CMD_FUNCTIONS, functions_usage},
    {"metrics", CMD_METRICS, metrics_usage},
    {"top", CMD_TOP, top_usage},
};

const char *poolctl_usage(int cmd)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (cmds[i].cmd == cmd)
			return cmds[i].usage;
	return main_usage;
}

/* A number in [min, max]: 0 with *out set, or -1. */
static int parse_range(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || !isdigit((unsigned char)s[0]))
		return -1;
	*out = v;
	return 0;
}

/* One option seen: which, how, and its value. */
struct seen {
	const struct optdef *d;
	int is_short; /* written as -c rather than --name */
	const char *value;
};

/* The option as the user wrote it, "-s" or "--socket", in out (40 bytes). */
static const char *spelled(const struct seen *s, char *out)
{
	if (s->is_short)
		snprintf(out, 40, "-%c", s->d->short_name);
	else
		snprintf(out, 40, "--%s", s->d->name);
	return out;
}

/* Store the value of option s into a; EXIT_USAGE when the value is bad. */
static int apply_opt(struct poolctl_args *a, const struct seen *s)
{
	char sp[40];
	long v = 0;

	if (s->d->has_arg && s->d->max && parse_range(s->value, s->d->min, s->d->max, &v) < 0)
		return poolctl_fail("%s%s%s wants an integer from %ld to %ld, not '%s'",
		                    a->cmd_name ? a->cmd_name : "", a->cmd_name ? ": " : "",
		                    spelled(s, sp), s->d->min, s->d->max, s->value);
	switch (s->d->id) {
	case O_SOCKET:
		a->socket = s->value;
		break;
	case O_CONNECT:
		a->connect = s->value;
		break;
	case O_CERT:
		a->cert = s->value;
		break;
	case O_KEY:
		a->key = s->value;
		break;
	case O_CA:
		a->ca = s->value;
		break;
	case O_DEADLINE:
		a->deadline_ms = v;
		break;
	case O_HELP:
		a->help = 1;
		break;
	case O_VERSION:
		a->version = 1;
		break;
	case O_JSON:
		a->json = 1;
		break;
	case O_RAW_IN:
		a->raw_in = 1;
		break;
	case O_RAW_OUT:
		a->raw_out = 1;
		break;
	case O_CHUNKSIZE:
		a->chunksize = v;
		break;
	case O_RETRIES:
		a->retries = v;
		break;
	case O_TIMEOUT:
		a->timeout_ms = v;
		break;
	case O_COLLECT:
		a->collect = 1;
		break;
	case O_UNORDERED:
		a->unordered = 1;
		break;
	case O_WINDOW:
		a->window = v;
		break;
	case O_PROGRESS:
	case O_NO_PROGRESS:
		a->progress = s->d->id == O_PROGRESS;
		break;
	case O_COUNT:
		a->count = v;
		break;
	}
	return 0;
}

/* 1 when word w is an option (not "-", not a negative number). */
static int is_option(const char *w)
{
	return w[0] == '-' && w[1] && !isdigit((unsigned char)w[1]) && w[1] != '.';
}

/* The option named by long name n (len bytes) or short letter c. */
static const struct optdef *find_opt(const char *n, size_t len, char c)
{
	size_t i;

	for (i = 0; i < N_OPTS; i++)
		if (n ? strlen(opts[i].name) == len && strncmp(opts[i].name, n, len) == 0
		      : opts[i].short_name == c)
			return &opts[i];
	return NULL;
}

/* A one-line complaint about an option and a hint where to look. */
static int bad_option(const struct poolctl_args *a, const char *what, const char *opt)
{
	return poolctl_fail("%s%s%s '%s' (see poolctl %s%s--help)", a->cmd_name ? a->cmd_name : "",
	                    a->cmd_name ? ": " : "", what, opt, a->cmd_name ? a->cmd_name : "",
	                    a->cmd_name ? " " : "");
}

/*
 * Take the option word argv[*i] (and its value) into seen[*n]: 0, or EXIT_USAGE.
 * Short flags may be bundled (-Rr); a short option's value may follow it (-sPATH).
 */
static int take_option(struct poolctl_args *a, int argc, char **argv, int *i, struct seen *seen,
                       int *n)
{
	const char *w = argv[*i];
	const struct optdef *d;

	if (w[1] == '-') {
		const char *eq = strchr(w + 2, '=');
		size_t len = eq ? (size_t)(eq - w - 2) : strlen(w + 2);

		d = find_opt(w + 2, len, 0);
		if (!d)
			return bad_option(a, "unknown option", w);
		seen[*n] = (struct seen){d, 0, NULL};
		if (!d->has_arg && eq)
			return bad_option(a, "option takes no value", w);
		if (d->has_arg)
			seen[*n].value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
		if (d->has_arg && !seen[*n].value)
			return bad_option(a, "missing value for option", w);
		(*n)++;
		return 0;
	}
	for (w++; *w; w++) {
		char one[3] = {'-', *w, '\0'};

		d = find_opt(NULL, 0, *w);
		if (!d)
			return bad_option(a, "unknown option", one);
		seen[*n] = (struct seen){d, 1, NULL};
		if (d->has_arg) {
			seen[*n].value = w[1] ? w + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
			if (!seen[*n].value)
				return bad_option(a, "missing value for option", one);
			(*n)++;
			return 0;
		}
		(*n)++;
	}
	return 0;
}

/* Fill in the command, check each option applies to it, store the values. */
static int finish(struct poolctl_args *a, struct seen *seen, int n)
{
	const char *env = getenv("POOLD_DEADLINE_MS");
	char sp[40];
	size_t c;
	int k;

	if (a->cmd_name) {
		for (c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
			if (strcmp(a->cmd_name, cmds[c].name) == 0)
				a->cmd = cmds[c].cmd;
		if (!a->cmd)
			return poolctl_fail("unknown command '%s' (see poolctl --help)",
			                    a->cmd_name);
	}
	if (env && *env && parse_range(env, 0, MAX_MS, &a->deadline_ms) < 0)
		return poolctl_fail("POOLD_DEADLINE_MS wants an integer from 0 to %ld, not '%s'",
		                    MAX_MS, env);
	for (k = 0; k < n; k++) {
		if (a->cmd && !(seen[k].d->cmds & a->cmd))
			return poolctl_fail("%s: %s is for %s only (see poolctl %s --help)",
			                    a->cmd_name, spelled(&seen[k], sp), seen[k].d->for_whom,
			                    a->cmd_name);
		if (apply_opt(a, &seen[k]))
			return EXIT_USAGE;
	}
	return 0;
}

int poolctl_parse(int argc, char **argv, struct poolctl_args *a)
{
	struct seen *seen = calloc((size_t)argc + 1, sizeof(*seen));
	int i, n = 0, dashdash = 0, dash_at = -1, r = 0;

	*a = (struct poolctl_args){.progress = -1,
	                           .chunksize = -1,
	                           .retries = -1,
	                           .timeout_ms = -1,
	                           .window = -1,
	                           .count = -1};
	a->pos = calloc((size_t)argc + 1, sizeof(char *));
	if (!seen || !a->pos) {
		free(seen);
		return poolctl_fail("out of memory");
	}
	for (i = 1; i < argc && r == 0; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0) {
			dashdash = 1;
		} else if (!dashdash && is_option(argv[i])) {
			r = take_option(a, argc, argv, &i, seen, &n);
		} else if (!a->cmd_name) {
			a->cmd_name = argv[i];
		} else {
			if (!dashdash && strcmp(argv[i], "-") == 0)
				dash_at = a->npos;
			a->pos[a->npos++] = argv[i];
		}
	}
	if (r == 0)
		r = finish(a, seen, n);
	a->stdin_items = a->npos == 2 && dash_at == 1;
	free(seen);
	return r;
}
