/* poolctl.c - command-line client of poold: map, starmap, apply, status, ping, functions */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "json.h"
#include "poolclient.h"
#include "poolctl.h"

struct cmd {
	const char *name;
	int (*run)(const struct cmd *cmd, const char *sock, int argc, char **argv);
	const char *usage; /* full --help text */
};

static const char main_usage[] =
    "Usage: poolctl [--socket PATH] COMMAND [OPTIONS] [ARGS...]\n"
    "\n"
    "Send jobs to the poold daemon and print the results, one JSON value per line.\n"
    "\n"
    "Commands:\n"
    "  map FN ARG...         call FN on each ARG, results in order\n"
    "  starmap FN ARGLIST... call FN with each ARGLIST (a JSON array) as its arguments\n"
    "  apply FN ARG...       call FN once with the ARGs as its arguments\n"
    "  status                show the daemon's workers and counters\n"
    "  ping                  check that the daemon answers\n"
    "  functions             list the functions the daemon offers\n"
    "\n"
    "Options:\n"
    "  -s, --socket PATH  daemon socket (default $POOLD_SOCKET, then\n"
    "                     $XDG_RUNTIME_DIR/poold/poold.sock, then /run/poold/poold.sock)\n"
    "  -h, --help         show this help (COMMAND --help: help on a command)\n"
    "  -V, --version      show the version\n"
    "\n"
    "Each ARG is one JSON value: strings need quotes, e.g. '\"hello\"'.\n"
    "Exit status: 0 success, 1 a job failed, 2 usage, connection or request error.\n";

/* Print "poolctl: " + message + newline on stderr; returns EXIT_USAGE. */
int poolctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("poolctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

/* A one-line complaint about the option getopt just rejected (opt is '?' or ':'). */
static int bad_option(const char *cmd, char **argv, int opt)
{
	char shortopt[3] = {'-', (char)optopt, '\0'};
	const char *arg = optopt ? shortopt : argv[optind - 1];

	if (opt == ':')
		arg = argv[optind - 1];
	return poolctl_fail("%s%s%s '%s' (see poolctl %s%s--help)", cmd ? cmd : "", cmd ? ": " : "",
	                    opt == ':' ? "missing value for option" : "unknown option", arg,
	                    cmd ? cmd : "", cmd ? " " : "");
}

/* Report a library error on one line; returns the exit code it deserves. */
int poolctl_report(const struct pool_error *e)
{
	if (e->code == POOL_EJOB && e->index >= 0)
		fprintf(stderr, "poolctl: item %ld: %s: %s\n", e->index, e->code_name, e->message);
	else if (e->code == POOL_EJOB || e->code == POOL_EREQUEST)
		fprintf(stderr, "poolctl: %s: %s\n", e->code_name, e->message);
	else
		fprintf(stderr, "poolctl: %s\n", e->message);
	return e->code == POOL_EJOB ? EXIT_JOB : EXIT_USAGE;
}

/* Parse a non-negative integer option value no larger than max; 0 or EXIT_USAGE. */
static int parse_num(const char *cmd, const char *opt, const char *s, long max, long *out)
{
	char *end;
	long v = 0;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return poolctl_fail("%s: --%s wants an integer from 0 to %ld, not '%s'", cmd, opt,
		                    max, s);
	*out = v;
	return 0;
}

/* Append one JSON value (validated; an array when want_array) to the list in b. */
static int add_value(struct buf *b, const char *p, size_t len, int want_array, const char *what,
                     long n)
{
	struct json_span v;
	const char *msg;
	size_t off;

	if (json_validate(p, p + len, &v, &msg, &off) < 0)
		return poolctl_fail(
		    "%s %ld is not valid JSON: %s at byte %zu (strings need quotes: "
		    "'\"hello\"')",
		    what, n, msg, off);
	if (want_array && json_type(v) != JSON_ARRAY)
		return poolctl_fail("%s %ld is not a JSON array of arguments", what, n);
	if ((b->len > 1 && buf_addc(b, ',') < 0) || buf_add(b, v.p, v.len) < 0)
		return poolctl_fail("out of memory");
	return 0;
}

/* Read one JSON value per non-blank line of stdin into the list in b. */
static int read_stdin(struct buf *b, int want_array)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int r = 0;

	while (r == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		r = add_value(b, line, (size_t)n, want_array, "stdin line", lineno);
	}
	if (r == 0 && ferror(stdin))
		r = poolctl_fail("reading stdin: %s", strerror(errno));
	free(line);
	return r;
}

/* Build the JSON array text of the ARGs (or of stdin for a single "-"). */
static int build_list(struct buf *b, int argc, char **argv, int want_array)
{
	int i, r;

	if (buf_addc(b, '[') < 0)
		return poolctl_fail("out of memory");
	if (argc == 1 && strcmp(argv[0], "-") == 0) {
		r = read_stdin(b, want_array);
		if (r)
			return r;
	} else {
		for (i = 0; i < argc; i++) {
			r = add_value(b, argv[i], strlen(argv[i]), want_array, "argument", i + 1);
			if (r)
				return r;
		}
	}
	return buf_addc(b, ']') < 0 ? poolctl_fail("out of memory") : 0;
}

/* Write each element of a JSON array text on its own line. */
static void print_lines(const char *text, size_t len)
{
	struct json_span arr = {text, len}, e;
	struct json_iter it;

	json_iter_init(&it, arr);
	while (json_array_next(&it, &e)) {
		fwrite(e.p, 1, e.len, stdout);
		putchar('\n');
	}
}

/* Flush stdout; a failed write is an error worth exit status 2. */
static int finish_output(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return poolctl_fail("writing the results: %s", strerror(errno));
	return code;
}

/* The long name of option value opt in longopts. */
static const char *option_name(const struct option *longopts, int opt)
{
	for (; longopts->name; longopts++)
		if (longopts->val == opt)
			return longopts->name;
	return "?";
}

/* Shared by map, starmap and apply: parse options, build the args, call, print. */
static int run_call(const struct cmd *cmd, const char *sock, int argc, char **argv)
{
	static const struct option longopts[] = {{"chunksize", required_argument, NULL, 'c'},
	                                         {"retries", required_argument, NULL, 'r'},
	                                         {"timeout-ms", required_argument, NULL, 't'},
	                                         {"collect", no_argument, NULL, 'C'},
	                                         {"unordered", no_argument, NULL, 'u'},
	                                         {"window", required_argument, NULL, 'w'},
	                                         {"progress", no_argument, NULL, 'P'},
	                                         {"no-progress", no_argument, NULL, 'N'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	struct pool_stream_opts so = POOL_STREAM_OPTS_INIT;
	struct pool_map_opts o = POOL_MAP_OPTS_INIT;
	int is_apply = strcmp(cmd->name, "apply") == 0;
	struct pool_error e = {0};
	struct buf args = {0};
	char *out = NULL;
	size_t out_len = 0;
	pool_client *c;
	long v = 0;
	int opt, r, nfail, progress = -1;

	o.star = strcmp(cmd->name, "starmap") == 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (is_apply && opt != 'h' && opt != 'r' && opt != 't' && opt != '?' && opt != ':')
			return poolctl_fail("apply: --%s is for map and starmap only",
			                    option_name(longopts, opt));
		switch (opt) {
		case 'h':
			fputs(cmd->usage, stdout);
			return 0;
		case 'C':
			o.collect = 1;
			break;
		case 'u':
			so.unordered = 1;
			break;
		case 'w':
			if (parse_num(cmd->name, "window", optarg, 1000000, &v))
				return EXIT_USAGE;
			if (v == 0)
				return poolctl_fail(
				    "%s: --window wants an integer from 1 to 1000000", cmd->name);
			so.window = v;
			break;
		case 'P':
		case 'N':
			progress = opt == 'P';
			break;
		case 'c':
			if (parse_num(cmd->name, "chunksize", optarg, 1000000, &v))
				return EXIT_USAGE;
			o.chunksize = v;
			break;
		case 'r':
			if (parse_num(cmd->name, "retries", optarg, 100, &v))
				return EXIT_USAGE;
			o.retries = (int)v;
			break;
		case 't':
			if (parse_num(cmd->name, "timeout-ms", optarg, INT_MAX, &v))
				return EXIT_USAGE;
			o.timeout_ms = v;
			break;
		default:
			return bad_option(cmd->name, argv, opt);
		}
	}
	if (optind >= argc)
		return poolctl_fail("%s: missing FN (see poolctl %s --help)", cmd->name, cmd->name);
	so.star = o.star;
	so.collect = o.collect;
	so.chunksize = o.chunksize;
	so.retries = o.retries;
	so.timeout_ms = o.timeout_ms;
	if (!is_apply && ((argc - optind == 2 && strcmp(argv[optind + 1], "-") == 0) ||
	                  so.unordered || so.window > 0 || progress == 1))
		return poolctl_stream(sock, argv[optind], &so, progress, argc - optind - 1,
		                      argv + optind + 1);
	r = build_list(&args, argc - optind - 1, argv + optind + 1, o.star);
	if (r) {
		buf_free(&args);
		return r;
	}
	c = pool_connect(sock, &e);
	if (!c) {
		buf_free(&args);
		return poolctl_report(&e);
	}
	if (is_apply)
		r = pool_apply_text(c, argv[optind], args.data, args.len, &o, &out, &out_len, &e);
	else
		r = pool_map_text(c, argv[optind], args.data, args.len, &o, &out, &out_len, &e);
	pool_close(c);
	buf_free(&args);
	if (r < 0)
		return poolctl_report(&e);
	nfail = r;
	if (is_apply)
		printf("%s\n", out);
	else
		print_lines(out, out_len);
	free(out);
	r = finish_output(0);
	if (r == 0 && nfail > 0) {
		if (e.code == POOL_EJOB)
			fprintf(stderr, "poolctl: item %ld: %s: %s", e.index, e.code_name,
			        e.message);
		else
			fprintf(stderr, "poolctl: items failed");
		fprintf(stderr, nfail > 1 ? " (%d items failed)\n" : "\n", nfail);
		return EXIT_JOB;
	}
	return r;
}

/* status, ping, functions: parse --json, connect, fetch, print. */
static int run_info(const struct cmd *cmd, const char *sock, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct pool_error e = {0};
	cJSON *v = NULL;
	pool_client *c;
	int opt, json = 0, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(cmd->usage, stdout);
			return 0;
		}
		if (opt != 'j')
			return bad_option(cmd->name, argv, opt);
		json = 1;
	}
	if (optind < argc)
		return poolctl_fail("%s: unexpected argument '%s'", cmd->name, argv[optind]);
	c = pool_connect(sock, &e);
	if (!c)
		return poolctl_report(&e);
	if (cmd->name[0] == 's')
		r = pool_status(c, &v, &e);
	else if (cmd->name[0] == 'p')
		r = pool_ping(c, &v, &e);
	else
		r = pool_functions(c, &v, &e);
	pool_close(c);
	if (r < 0)
		return poolctl_report(&e);
	if (cmd->name[0] == 'p') {
		cJSON_DeleteItemFromObjectCaseSensitive(v, "id");
		cJSON_DeleteItemFromObjectCaseSensitive(v, "ok");
	}
	if (json)
		r = poolctl_print_json(v);
	else if (cmd->name[0] == 's')
		r = poolctl_print_status(v);
	else if (cmd->name[0] == 'p')
		r = poolctl_print_ping(v);
	else
		r = poolctl_print_functions(v);
	cJSON_Delete(v);
	return r ? poolctl_fail("out of memory") : finish_output(0);
}

static const struct cmd cmds[] = {
    {"map", run_call,
     "Usage: poolctl map [OPTIONS] FN ARG...\n"
     "       poolctl map [OPTIONS] FN -    (stream: one ARG per line of stdin)\n"
     "\n"
     "Call FN on each ARG (one JSON value each; strings need quotes: '\"hello\"')\n"
     "and print the results one per line, in the order of the ARGs. With -, items\n"
     "are read and results printed as they come, in constant memory.\n"
     "\n"
     "  --chunksize N   items per task sent to a worker (0 = automatic)\n"
     "  --retries N     attempts after a worker died (default: daemon's, 2)\n"
     "  --timeout-ms N  time limit per item (0 = none, default: daemon's)\n"
     "  --collect       do not stop at failed items: print {\"error\":...} in\n"
     "                  their place and exit 1 at the end\n"
     "  --unordered     stream; print results as they finish: INDEX<TAB>VALUE\n"
     "  --window N      stream; the daemon holds at most N items (1-1000000)\n"
     "  --progress, --no-progress\n"
     "                  stream; progress line on stderr (default: if a terminal)\n"
     "\n"
     "Without --collect the first failing item fails the command:\n"
     "  poolctl: item 3: function_error: boom   (items count from 0), exit 1\n"
     "(streaming, the results before it have been printed).\n"},
    {"starmap", run_call,
     "Usage: poolctl starmap [OPTIONS] FN ARGLIST...\n"
     "       poolctl starmap [OPTIONS] FN -    (stream: one ARGLIST per line of stdin)\n"
     "\n"
     "Call FN once per ARGLIST, a JSON array of arguments, e.g.\n"
     "  poolctl starmap add '[1,2]' '[3,4]'\n"
     "Options as for map (poolctl map --help).\n"},
    {"apply", run_call,
     "Usage: poolctl apply [--retries N] [--timeout-ms N] FN ARG...\n"
     "\n"
     "Call FN once with the ARGs (JSON values) as its arguments and print the\n"
     "result on one line, e.g.  poolctl apply add 1 2\n"},
    {"status", run_info,
     "Usage: poolctl status [--json]\n"
     "\n"
     "Show the daemon's counters and a table of its worker slots;\n"
     "--json prints the status object as one JSON line.\n"},
    {"ping", run_info,
     "Usage: poolctl ping [--json]\n"
     "\n"
     "Check that the daemon answers; print its version, protocol and pid.\n"},
    {"functions", run_info,
     "Usage: poolctl functions [--json]\n"
     "\n"
     "List the functions the daemon offers, with their number of arguments.\n"},
};

/* Parse the global options and run the command. */
int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"socket", required_argument, NULL, 's'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, 'V'},
	                                         {NULL, 0, NULL, 0}};
	const char *sock = NULL;
	size_t i;
	int opt;

	opterr = 0; /* bad_option() says it on one line */

	while ((opt = getopt_long(argc, argv, "+:s:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'h':
			fputs(main_usage, stdout);
			return 0;
		case 'V':
			printf("poolctl %s\n", POOLD_VERSION);
			return 0;
		default:
			return bad_option(NULL, argv, opt);
		}
	}
	if (optind >= argc)
		return poolctl_fail("missing COMMAND (see poolctl --help)");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[optind], cmds[i].name) == 0)
			return cmds[i].run(&cmds[i], sock, argc - optind, argv + optind);
	return poolctl_fail("unknown command '%s' (see poolctl --help)", argv[optind]);
}
