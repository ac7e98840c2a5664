/* poolctl.c - command-line client of poold: map, starmap, apply, status, ping, functions, ... */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "json.h"
#include "poolclient.h"
#include "poolctl.h"

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

/* The daemon's protocol words in its messages, and what a poolctl user types instead. */
static const char *const cli_words[][2] = {
    {"(use star for argument lists)", "(use poolctl starmap for argument lists)"},
    {"(see the functions op)", "(see poolctl functions)"},
};

/* Copy msg into out (n bytes) with the protocol's words replaced by poolctl's. */
static const char *in_cli_words(const char *msg, char *out, size_t n)
{
	size_t k;

	snprintf(out, n, "%s", msg);
	for (k = 0; k < sizeof(cli_words) / sizeof(cli_words[0]); k++) {
		char *at = strstr(out, cli_words[k][0]);
		char rest[512];

		if (!at)
			continue;
		snprintf(rest, sizeof(rest), "%s", at + strlen(cli_words[k][0]));
		*at = '\0';
		snprintf(at, n - (size_t)(at - out), "%s%s", cli_words[k][1], rest);
	}
	return out;
}

/* Report a library error on one line; returns the exit code it deserves. */
int poolctl_report(const struct pool_error *e)
{
	char msg[512];

	in_cli_words(e->message, msg, sizeof(msg));
	if (e->code == POOL_EJOB && e->index >= 0)
		fprintf(stderr, "poolctl: item %ld: %s: %s\n", e->index, e->code_name, msg);
	else if (e->code == POOL_EJOB || e->code == POOL_EREQUEST)
		fprintf(stderr, "poolctl: %s: %s\n", e->code_name, msg);
	else
		fprintf(stderr, "poolctl: %s\n", msg);
	return e->code == POOL_EJOB ? EXIT_JOB : EXIT_USAGE;
}

/* Append the TAB-separated fields of p as an array of strings. */
static int add_fields(struct buf *b, const char *p, size_t len)
{
	const char *end = p + len;

	if (buf_addc(b, '[') < 0)
		return -ENOMEM;
	for (;;) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		const char *stop = tab ? tab : end;

		if (buf_add_json_string(b, p, (size_t)(stop - p)) < 0)
			return -ENOMEM;
		if (!tab)
			break;
		if (buf_addc(b, ',') < 0)
			return -ENOMEM;
		p = tab + 1;
	}
	return buf_addc(b, ']') < 0 ? -ENOMEM : 0;
}

/* 1 when p (len bytes) is exactly one JSON integer literal, the common item: no scan needed. */
static int int_literal(const char *p, size_t len)
{
	const char *end = p + len;

	p += len && *p == '-';
	if (p == end)
		return 0;
	if (*p == '0')
		return p + 1 == end;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == end;
}

int poolctl_item(struct buf *b, const char *p, size_t len, int raw, int star, char *why,
                 size_t whylen)
{
	struct json_span v;
	const char *msg;
	size_t off;

	if (raw && star)
		return add_fields(b, p, len);
	if (raw)
		return buf_add_json_string(b, p, len) < 0 ? -ENOMEM : 0;
	if (!star && int_literal(p, len))
		return buf_add(b, p, len) < 0 ? -ENOMEM : 0;
	if (json_validate(p, p + len, &v, &msg, &off) < 0) {
		snprintf(why, whylen,
		         "is not valid JSON: %s at byte %zu (strings need quotes: '\"hello\"', "
		         "or use -R)",
		         msg, off);
		return -1;
	}
	if (star && json_type(v) != JSON_ARRAY) {
		snprintf(why, whylen, "is not a JSON array of arguments");
		return -1;
	}
	return buf_add(b, v.p, v.len) < 0 ? -ENOMEM : 0;
}

/* Build the JSON array text of the ARGs. */
static int build_list(struct buf *b, int argc, char **argv, const struct poolctl_args *a, int star)
{
	char why[200];
	int i, r;

	if (buf_addc(b, '[') < 0)
		return poolctl_fail("out of memory");
	for (i = 0; i < argc; i++) {
		if (i > 0 && buf_addc(b, ',') < 0)
			return poolctl_fail("out of memory");
		r = poolctl_item(b, argv[i], strlen(argv[i]), a->raw_in, star, why, sizeof(why));
		if (r == -1)
			return poolctl_fail("argument %d %s", i + 1, why);
		if (r < 0)
			return poolctl_fail("out of memory");
	}
	return buf_addc(b, ']') < 0 ? poolctl_fail("out of memory") : 0;
}

pool_client *poolctl_connect(const struct poolctl_args *a, int *code)
{
	struct pool_error e = {0};
	pool_client *c = a->socket && !a->connect
	                     ? pool_connect(a->socket, &e)
	                     : pool_connect_uri(a->connect, a->cert, a->key, a->ca, &e);

	if (c && a->deadline_ms > 0 && pool_set_deadline(c, a->deadline_ms, &e) < 0) {
		pool_close(c);
		c = NULL;
	}
	if (!c)
		*code = poolctl_report(&e);
	return c;
}

/* Write the results (an array, or the one result of apply) and flush; 0 or EXIT_USAGE. */
static int print_results(const char *text, size_t len, int is_apply, int raw)
{
	struct json_span arr = {text, len}, e;
	struct json_iter it;
	int r = 0;

	poolctl_out_init(0);
	if (is_apply) {
		r = poolctl_out_value(arr, raw);
	} else {
		json_iter_init(&it, arr);
		while (r == 0 && json_array_next(&it, &e))
			r = poolctl_out_value(e, raw);
	}
	if (r == 0)
		r = poolctl_out_flush();
	return r < 0 ? poolctl_fail("writing the results: %s", strerror(-r)) : 0;
}

/* map, starmap and apply: build the args, call (or stream), print. */
static int run_call(const struct poolctl_args *a)
{
	struct pool_stream_opts so = POOL_STREAM_OPTS_INIT;
	struct pool_map_opts o = POOL_MAP_OPTS_INIT;
	int is_apply = a->cmd == CMD_APPLY;
	struct pool_error e = {0};
	struct buf args = {0};
	char *out = NULL;
	size_t out_len = 0;
	pool_client *c;
	int r, nfail;

	if (a->npos < 1)
		return poolctl_fail("%s: missing FN (see poolctl %s --help)", a->cmd_name,
		                    a->cmd_name);
	o.star = a->cmd == CMD_STARMAP;
	o.collect = a->collect;
	o.chunksize = a->chunksize > 0 ? a->chunksize : 0;
	/* the library's 0 is "the default": the protocol's 0 is POOL_NONE */
	o.retries = a->retries < 0 ? 0 : a->retries == 0 ? POOL_NONE : (int)a->retries;
	o.timeout_ms = a->timeout_ms < 0 ? 0 : a->timeout_ms == 0 ? POOL_NONE : a->timeout_ms;
	so.star = o.star;
	so.collect = o.collect;
	so.chunksize = o.chunksize;
	so.retries = o.retries;
	so.timeout_ms = o.timeout_ms;
	so.unordered = a->unordered;
	so.window = a->window > 0 ? a->window : 0;
	if (!is_apply && (a->stdin_items || so.unordered || so.window > 0 || a->progress == 1))
		return poolctl_stream(a, a->pos[0], &so, a->npos - 1, a->pos + 1);
	r = build_list(&args, a->npos - 1, a->pos + 1, a, o.star);
	if (r) {
		buf_free(&args);
		return r;
	}
	c = poolctl_connect(a, &r);
	if (!c) {
		buf_free(&args);
		return r;
	}
	if (is_apply)
		r = pool_apply_text(c, a->pos[0], args.data, args.len, &o, &out, &out_len, &e);
	else
		r = pool_map_text(c, a->pos[0], args.data, args.len, &o, &out, &out_len, &e);
	pool_close(c);
	buf_free(&args);
	if (r < 0)
		return poolctl_report(&e);
	nfail = r;
	r = print_results(out, out_len, is_apply, a->raw_out);
	free(out);
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

/* status, ping, functions: connect, fetch, print. */
static int run_info(const struct poolctl_args *a)
{
	struct pool_error e = {0};
	cJSON *v = NULL;
	pool_client *c;
	int r;

	if (a->npos > 0)
		return poolctl_fail("%s: unexpected argument '%s'", a->cmd_name, a->pos[0]);
	c = poolctl_connect(a, &r);
	if (!c)
		return r;
	if (a->cmd == CMD_STATUS)
		r = pool_status(c, &v, &e);
	else if (a->cmd == CMD_PING)
		r = pool_ping(c, &v, &e);
	else
		r = pool_functions(c, &v, &e);
	pool_close(c);
	if (r < 0)
		return poolctl_report(&e);
	if (a->cmd == CMD_PING) {
		cJSON_DeleteItemFromObjectCaseSensitive(v, "id");
		cJSON_DeleteItemFromObjectCaseSensitive(v, "ok");
	}
	if (a->json)
		r = poolctl_print_json(v);
	else if (a->cmd == CMD_STATUS)
		r = poolctl_print_status(v);
	else if (a->cmd == CMD_PING)
		r = poolctl_print_ping(v);
	else
		r = poolctl_print_functions(v);
	cJSON_Delete(v);
	if (r)
		return poolctl_fail("out of memory");
	if (fflush(stdout) != 0 || ferror(stdout))
		return poolctl_fail("writing the output: %s", strerror(errno));
	return 0;
}

/* Parse the command line and run the command. */
int main(int argc, char **argv)
{
	struct poolctl_args a;
	int r = poolctl_parse(argc, argv, &a);

	if (r == 0 && a.help) {
		fputs(poolctl_usage(a.cmd), stdout);
	} else if (r == 0 && a.version) {
		printf("poolctl %s\n", POOLD_VERSION);
	} else if (r == 0 && !a.cmd) {
		r = poolctl_fail("missing COMMAND (see poolctl --help)");
	} else if (r == 0) {
		if (a.cmd & (CMD_MAP | CMD_STARMAP | CMD_APPLY))
			r = run_call(&a);
		else if (a.cmd == CMD_TOP)
			r = poolctl_top(&a);
		else if (a.cmd == CMD_METRICS)
			r = a.npos ? poolctl_fail("metrics: unexpected argument '%s'", a.pos[0])
			           : poolctl_metrics(&a);
		else
			r = run_info(&a);
	}
	free(a.pos);
	return r;
}
