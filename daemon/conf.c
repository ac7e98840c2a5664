/* conf.c - poold.conf(5): read the file with libinih, check every key, build the function table */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modload.h"
#include "xalloc.h"

/*
 * Debian's libinih is built with a 200-byte line buffer and cuts longer
 * lines silently (the rest becomes the next line). Lines therefore reach it
 * through our own reader, which counts them (the handler gets no line
 * number in that build) and refuses an over-long one by its real number.
 */
#define LINE_MAX_BYTES 199
#define FILE_MAX_BYTES (1u << 20)
#define NAME_MAX_BYTES 63
#define MSG_MAX 512

/* ------------------------------------------------------------ daemon options */

enum opt_type { T_NUM, T_BYTES, T_STR, T_NAME, T_ADDR };

struct optdef {
	const char *key;
	enum opt_type type;
	unsigned long long min, max;
	uint64_t bit;
	size_t off, size;
};

#define OPT(key, type, min, max, bit, field)                                                       \
	{                                                                                          \
		key, type, min, max, bit, offsetof(struct options, field),                         \
		    sizeof(((struct options *)0)->field)                                           \
	}

/* The one table of daemon options: main.c's flags and the [poold] keys. */
static const struct optdef optdefs[] = {
    OPT("socket", T_STR, 1, 107, CONF_OPT_SOCKET, socket_path),
    OPT("socket_group", T_NAME, 1, 32, CONF_OPT_SOCKET_GROUP, socket_group),
    OPT("workers", T_NUM, 1, CONF_MAX_WORKERS, CONF_OPT_WORKERS, workers),
    OPT("timeout_ms", T_NUM, 0, 86400000, CONF_OPT_TIMEOUT, timeout_ms),
    OPT("max_line", T_BYTES, 1024, 1u << 30, CONF_OPT_MAX_LINE, max_line),
    OPT("max_items", T_NUM, 1, UINT32_MAX - 1, CONF_OPT_MAX_ITEMS, max_items),
    OPT("max_pending_items", T_NUM, 1, 1ull << 40, CONF_OPT_MAX_PENDING, max_pending_items),
    OPT("max_connections", T_NUM, 1, 1 << 20, CONF_OPT_MAX_CONN, max_connections),
    OPT("max_inflight", T_NUM, 1, 1 << 20, CONF_OPT_MAX_INFLIGHT, max_inflight),
    OPT("max_tasks_per_worker", T_NUM, 0, 1ull << 62, CONF_OPT_MAX_TASKS, max_tasks_per_worker),
    OPT("stop_timeout", T_NUM, 0, 86400, CONF_OPT_STOP_TIMEOUT, stop_timeout_s),
    OPT("max_memory", T_BYTES, 1u << 20, 1ull << 40, CONF_OPT_MAX_MEMORY, max_memory),
    OPT("slow_task_ms", T_NUM, 0, 86400000, CONF_OPT_SLOW_TASK, slow_task_ms),
    OPT("verbose", T_NUM, 0, 3, CONF_OPT_VERBOSE, verbose),
    OPT("hosts", T_ADDR, 7, 120, CONF_OPT_HOSTS, hosts),
    OPT("join", T_ADDR, 7, 120, CONF_OPT_JOIN, join),
    OPT("host_endpoint", T_ADDR, 7, 120, CONF_OPT_HOST_ENDPOINT, host_endpoint),
    OPT("cluster_key", T_ADDR, 1, 4000, CONF_OPT_CLUSTER_KEY, cluster_key),
    OPT("host_timeout_ms", T_NUM, 100, 600000, CONF_OPT_HOST_TIMEOUT, host_timeout_ms),
    OPT("listen", T_ADDR, 7, 1000, CONF_OPT_LISTEN, listen),
    OPT("tls_cert", T_ADDR, 1, 4000, CONF_OPT_TLS_CERT, tls_cert),
    OPT("tls_key", T_ADDR, 1, 4000, CONF_OPT_TLS_KEY, tls_key),
    OPT("tls_ca", T_ADDR, 1, 4000, CONF_OPT_TLS_CA, tls_ca),
};
#define N_OPTDEFS (sizeof(optdefs) / sizeof(optdefs[0]))

/* s as a decimal number, with a K/M/G/T multiplier when bytes; 0 or -1. */
static int parse_number(const char *s, int bytes, unsigned long long *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (bytes && *end) {
		const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*end));

		if (!u)
			return -1;
		mul = 1ull << (10 * (u - units + 1));
		end++;
	}
	if (*end || __builtin_mul_overflow(v, mul, &v))
		return -1;
	*out = v;
	return 0;
}

uint64_t conf_option_set(struct options *o, const char *key, const char *text, char *err, size_t n)
{
	const struct optdef *d = NULL;
	unsigned long long v;
	size_t i;

	for (i = 0; i < N_OPTDEFS && !d; i++)
		if (strcmp(optdefs[i].key, key) == 0)
			d = &optdefs[i];
	if (!d) {
		snprintf(err, n, "is not an option");
		return 0;
	}
	if (d->type == T_STR || d->type == T_NAME || d->type == T_ADDR) {
		v = strlen(text);
		if (v < d->min || v > d->max) {
			snprintf(err, n, "takes a %s of %llu to %llu bytes, not '%s'",
			         d->type == T_STR    ? "path"
			         : d->type == T_NAME ? "name"
			                             : "value",
			         d->min, d->max, text);
			return 0;
		}
		memcpy((char *)o + d->off, &text, sizeof(text));
		return d->bit;
	}
	if (parse_number(text, d->type == T_BYTES, &v) < 0 || v < d->min || v > d->max) {
		if (d->type == T_BYTES)
			snprintf(
			    err, n,
			    "takes a size in bytes from %llu to %llu (K, M, G or T may follow), "
			    "not '%s'",
			    d->min, d->max, text);
		else
			snprintf(err, n, "takes a number from %llu to %llu, not '%s'", d->min,
			         d->max, text);
		return 0;
	}
	if (d->size == sizeof(uint32_t)) {
		uint32_t v32 = (uint32_t)v;

		memcpy((char *)o + d->off, &v32, sizeof(v32));
	} else {
		uint64_t v64 = v;

		memcpy((char *)o + d->off, &v64, sizeof(v64));
	}
	return d->bit;
}

/* ------------------------------------------------------------ parser state */

enum section { S_NONE, S_POOLD, S_FUNCTION, S_CLIENT, S_SKIP };

/* A key of a [function] section, kept until the section ends (kind may come last). */
struct pkey {
	int def; /* index in fkeys, -1 when unknown */
	char *name;
	char *value;
	int line;
};

struct parser {
	struct conf *c;
	conf_report report;
	void *arg;
	const char *text;
	size_t len, pos;
	int line;
	int errors;
	enum section sect;
	int poold_line;
	int opt_line[N_OPTDEFS];
	struct fn_entry *fn; /* the [function] being read */
	int broken;          /* a line of it could not be read: skip missing-key checks */
	struct pkey *keys;
	size_t n_keys, cap_keys;
};

static __attribute__((format(printf, 3, 4))) void fail(struct parser *p, int line, const char *fmt,
                                                       ...)
{
	char msg[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->errors++;
	p->report(p->arg, p->c->name, line, msg);
}

/* The n bytes at s as a string. */
static char *xstrndup(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Append s to the NULL-terminated vector *v. */
static void vec_add(char ***v, char *s)
{
	size_t n = 0;

	while (*v && (*v)[n])
		n++;
	*v = xrealloc(*v, (n + 2) * sizeof(**v));
	(*v)[n] = s;
	(*v)[n + 1] = NULL;
}

static void vec_free(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A function name: 1 to 63 of [A-Za-z0-9_.-]. */
static int valid_name(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > NAME_MAX_BYTES)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return 0;
	return 1;
}

/* ------------------------------------------------------------ [function] keys */

#define K_MODULE (1u << FN_MODULE)
#define K_PROGRAM (1u << FN_PROGRAM)
#define K_COMMAND (1u << FN_COMMAND)
#define K_ALL (K_MODULE | K_PROGRAM | K_COMMAND)

/* Parse a value into e; 0, or -1 with err set to the rest of a sentence after the key. */
typedef int (*fkey_parse)(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n);

struct fkey {
	const char *name;
	unsigned kinds;
	int repeat;
	fkey_parse parse;
};

static int parse_u32(const char *v, unsigned long long max, uint32_t *out, char *err, size_t n)
{
	unsigned long long x;

	if (parse_number(v, 0, &x) < 0 || x > max) {
		snprintf(err, n, "takes a number from 0 to %llu, not '%s'", max, v);
		return -1;
	}
	*out = (uint32_t)x;
	return 0;
}

static int parse_choice(const char *v, const char *a, const char *b, int *out, char *err, size_t n)
{
	if (strcmp(v, a) == 0 || strcmp(v, b) == 0) {
		*out = strcmp(v, b) == 0;
		return 0;
	}
	snprintf(err, n, "takes %s or %s, not '%s'", a, b, v);
	return -1;
}

static int parse_abs_path(struct parser *p, const char *v, char **out, char *err, size_t n)
{
	if (v[0] != '/') {
		snprintf(err, n, "takes an absolute path, not '%s'", v);
		return -1;
	}
	*out = xstrdup(v);
	return 0;
}

/*
 * Split v into words: whitespace separates them, '...' is taken literally,
 * "..." too except that \" and \\ stand for " and \. No shell, no variables.
 */
static int split_words(struct parser *p, const char *v, char ***out, char *err, size_t n)
{
	char *w = xmalloc(strlen(v) + 1);
	size_t len;
	int in_word;

	while (*v) {
		while (isspace((unsigned char)*v))
			v++;
		if (!*v)
			break;
		len = 0;
		in_word = 1;
		while (*v && in_word) {
			char q = *v;

			if (isspace((unsigned char)q)) {
				in_word = 0;
			} else if (q == '\'' || q == '"') {
				for (v++; *v && *v != q; v++) {
					if (q == '"' && *v == '\\' && (v[1] == '"' || v[1] == '\\'))
						v++;
					w[len++] = *v;
				}
				if (!*v) {
					snprintf(err, n, "has a %c quote that is not closed", q);
					free(w);
					return -1;
				}
				v++;
			} else {
				w[len++] = *v++;
			}
		}
		vec_add(out, xstrndup(w, len));
	}
	free(w);
	return 0;
}

static int fk_description(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	e->description = xstrdup(v);
	return 0;
}

static int fk_timeout(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	return parse_u32(v, 86400000, &e->timeout_ms, err, n);
}

static int fk_retries(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	e->has_retries = 1;
	return parse_u32(v, 100, &e->retries, err, n);
}

static int fk_max_tasks(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	unsigned long long x;

	if (parse_number(v, 0, &x) < 0 || x > (1ull << 62)) {
		snprintf(err, n, "takes a number from 0 to %llu, not '%s'", 1ull << 62, v);
		return -1;
	}
	e->max_tasks_per_worker = x;
	return 0;
}

static int fk_env(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	char **words = NULL;
	size_t i, j, k;
	int rc = split_words(p, v, &words, err, n);

	for (i = 0; rc == 0 && words && words[i]; i++) {
		const char *eq = strchr(words[i], '=');
		size_t nl = eq ? (size_t)(eq - words[i]) : 0;

		if (!eq || nl == 0 || isdigit((unsigned char)words[i][0]))
			rc = -1;
		for (j = 0; j < nl && rc == 0; j++)
			if (!isalnum((unsigned char)words[i][j]) && words[i][j] != '_')
				rc = -1;
		if (rc < 0) {
			snprintf(err, n, "takes NAME=VALUE pairs, not '%s'", words[i]);
			break;
		}
		for (k = 0; e->env && e->env[k]; k++)
			if (strncmp(e->env[k], words[i], nl + 1) == 0) {
				snprintf(err, n, "sets %.*s twice", (int)nl, words[i]);
				rc = -1;
			}
		if (rc == 0)
			vec_add(&e->env, xstrdup(words[i]));
	}
	if (rc == 0 && !words) {
		snprintf(err, n, "takes NAME=VALUE pairs, not nothing");
		rc = -1;
	}
	vec_free(words);
	return rc;
}

static int fk_cwd(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	return parse_abs_path(p, v, &e->cwd, err, n);
}

static int fk_module(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	return parse_abs_path(p, v, &e->module, err, n);
}

static int fk_symbol(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	if (!valid_name(v, strlen(v))) {
		snprintf(err, n, "takes 1 to %d of A-Z a-z 0-9 _ . -, not '%s'", NAME_MAX_BYTES, v);
		return -1;
	}
	e->symbol = xstrdup(v);
	return 0;
}

static int fk_command(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	if (split_words(p, v, &e->argv, err, n) < 0)
		return -1;
	if (!e->argv) {
		snprintf(err, n, "takes a program and its arguments, not nothing");
		return -1;
	}
	if (strstr(e->argv[0], "{}")) {
		snprintf(err, n, "cannot have {} in the program's name '%s'", e->argv[0]);
		return -1;
	}
	return 0;
}

static int fk_preload(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	int x = 0;
	int rc = parse_choice(v, "yes", "no", &x, err, n);

	e->preload = !x;
	return rc;
}

static int parse_arity(const char *v, int *out, char *err, size_t n)
{
	unsigned long long x;

	if (parse_number(v, 0, &x) < 0 || x > POOLD_MAX_ARGS) {
		snprintf(err, n, "takes a number from 0 to %d, not '%s'", POOLD_MAX_ARGS, v);
		return -1;
	}
	*out = (int)x;
	return 0;
}

static int fk_min_args(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	return parse_arity(v, &e->min_args, err, n);
}

static int fk_max_args(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	return parse_arity(v, &e->max_args, err, n);
}

static int fk_input(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	return parse_choice(v, "argv", "stdin", &e->input_stdin, err, n);
}

static int fk_output(struct parser *p, struct fn_entry *e, const char *v, char *err, size_t n)
{
	return parse_choice(v, "string", "json", &e->output_json, err, n);
}

enum {
	FK_KIND,
	FK_DESCRIPTION,
	FK_TIMEOUT,
	FK_RETRIES,
	FK_MAX_TASKS,
	FK_ENV,
	FK_CWD,
	FK_MODULE,
	FK_SYMBOL,
	FK_COMMAND,
	FK_PRELOAD,
	FK_MIN_ARGS,
	FK_MAX_ARGS,
	FK_INPUT,
	FK_OUTPUT,
	N_FKEYS
};

/* Every key of a [function] section, and the kinds it belongs to ("kind" is read first). */
static const struct fkey fkeys[N_FKEYS] = {
    [FK_KIND] = {"kind", K_ALL, 0, NULL},
    [FK_DESCRIPTION] = {"description", K_ALL, 0, fk_description},
    [FK_TIMEOUT] = {"timeout_ms", K_ALL, 0, fk_timeout},
    [FK_RETRIES] = {"retries", K_ALL, 0, fk_retries},
    [FK_MAX_TASKS] = {"max_tasks_per_worker", K_PROGRAM, 0, fk_max_tasks},
    [FK_ENV] = {"env", K_PROGRAM | K_COMMAND, 1, fk_env},
    [FK_CWD] = {"cwd", K_PROGRAM | K_COMMAND, 0, fk_cwd},
    [FK_MODULE] = {"module", K_MODULE, 0, fk_module},
    [FK_SYMBOL] = {"symbol", K_MODULE, 0, fk_symbol},
    [FK_COMMAND] = {"command", K_PROGRAM | K_COMMAND, 0, fk_command},
    [FK_PRELOAD] = {"preload", K_PROGRAM, 0, fk_preload},
    [FK_MIN_ARGS] = {"min_args", K_PROGRAM, 0, fk_min_args},
    [FK_MAX_ARGS] = {"max_args", K_PROGRAM, 0, fk_max_args},
    [FK_INPUT] = {"input", K_COMMAND, 0, fk_input},
    [FK_OUTPUT] = {"output", K_COMMAND, 0, fk_output},
};

const char *fn_kind_name(enum fn_kind k)
{
	static const char *const names[] = {"builtin", "module", "program", "command"};

	return (unsigned)k < 4 ? names[k] : "?";
}

static void entry_free(struct fn_entry *e)
{
	free(e->name);
	free(e->description);
	free(e->module);
	free(e->symbol);
	vec_free(e->argv);
	vec_free(e->env);
	free(e->cwd);
}

/* Check the placeholders of a command: {} in argv, or none with input = stdin. */
static void check_placeholders(struct parser *p, struct fn_entry *e, int line)
{
	size_t i, n = 0;

	for (i = 0; e->argv && e->argv[i]; i++)
		n += strstr(e->argv[i], "{}") != NULL;
	if (!e->argv)
		return;
	if (e->input_stdin && n)
		fail(p, line, "[function %s]: command cannot have {} with input = stdin", e->name);
	else if (!e->input_stdin && !n)
		fail(p, line,
		     "[function %s]: command needs {} where the item goes (or input = stdin)",
		     e->name);
}

/* The kind named by the section's kind key: 0 found and valid, -1 otherwise. */
static int section_kind(struct parser *p, struct fn_entry *e)
{
	size_t i;

	for (i = 0; i < p->n_keys; i++) {
		if (p->keys[i].def != FK_KIND)
			continue;
		if (strcmp(p->keys[i].value, "module") == 0)
			e->kind = FN_MODULE;
		else if (strcmp(p->keys[i].value, "program") == 0)
			e->kind = FN_PROGRAM;
		else if (strcmp(p->keys[i].value, "command") == 0)
			e->kind = FN_COMMAND;
		else
			return -1;
		return 0;
	}
	if (!p->broken)
		fail(p, e->where.line,
		     "[function %s]: no kind: add kind = module, program or command", e->name);
	return -1;
}

/* Check one stored key against the kind (known when has_kind) and parse its value. */
static void function_key(struct parser *p, struct fn_entry *e, int has_kind, struct pkey *k,
                         int *seen)
{
	const struct fkey *d = k->def >= 0 ? &fkeys[k->def] : NULL;
	char err[MSG_MAX / 2];

	if (!d) {
		fail(p, k->line, "[function %s]: unknown key '%s'", e->name, k->name);
		return;
	}
	if (seen[k->def] && !d->repeat) {
		fail(p, k->line, "[function %s]: duplicate key '%s' (first at line %d)", e->name,
		     d->name, seen[k->def]);
		return;
	}
	if (!seen[k->def])
		seen[k->def] = k->line;
	if (k->def == FK_KIND) {
		if (!has_kind && e->kind == FN_BUILTIN)
			fail(p, k->line,
			     "[function %s]: kind takes module, program or command, not '%s'",
			     e->name, k->value);
		return;
	}
	if (has_kind && !(d->kinds & (1u << e->kind))) {
		fail(p, k->line, "[function %s]: key '%s' does not belong to kind = %s", e->name,
		     d->name, fn_kind_name(e->kind));
		return;
	}
	if (d->parse(p, e, k->value, err, sizeof(err)) < 0)
		fail(p, k->line, "[function %s]: %s %s", e->name, d->name, err);
}

/* The [function] section ends: check it as a whole and add it to the table. */
static void finish_function(struct parser *p)
{
	struct fn_entry *e = p->fn;
	int seen[N_FKEYS] = {0};
	int has_kind = section_kind(p, e) == 0;
	size_t i;

	for (i = 0; i < p->n_keys; i++)
		function_key(p, e, has_kind, &p->keys[i], seen);
	if (has_kind && !p->broken) {
		const char *need = e->kind == FN_MODULE ? "module" : "command";
		int have = e->kind == FN_MODULE ? e->module != NULL : e->argv != NULL;

		if (!have && !seen[e->kind == FN_MODULE ? FK_MODULE : FK_COMMAND])
			fail(p, e->where.line, "[function %s]: kind = %s needs a '%s' key", e->name,
			     fn_kind_name(e->kind), need);
	}
	if (has_kind && e->kind == FN_COMMAND) {
		e->min_args = e->max_args = 1;
		check_placeholders(p, e, seen[FK_COMMAND]);
	}
	if (seen[FK_MIN_ARGS] && seen[FK_MAX_ARGS] && e->min_args > e->max_args)
		fail(p, seen[FK_MAX_ARGS], "[function %s]: max_args %d is less than min_args %d",
		     e->name, e->max_args, e->min_args);
	if (has_kind && e->kind == FN_MODULE && !e->symbol)
		e->symbol = xstrdup(e->name);
	for (i = 0; i < p->n_keys; i++) {
		free(p->keys[i].name);
		free(p->keys[i].value);
	}
	p->n_keys = 0;
	p->fn = NULL;
	p->c->fns = xrealloc(p->c->fns, (p->c->n_fns + 1) * sizeof(*p->c->fns));
	p->c->fns[p->c->n_fns++] = *e;
	free(e);
}

/* ------------------------------------------------------------ sections and lines */

static void finish_section(struct parser *p)
{
	if (p->sect == S_FUNCTION && p->fn)
		finish_function(p);
	p->sect = S_NONE;
	p->broken = 0;
}

/* A "[function NAME]" header: NAME checked, a fresh entry begun. */
static void begin_function(struct parser *p, const char *name, size_t n)
{
	const struct fn_entry *old = conf_find(p->c, name, n);
	struct fn_entry *e;

	p->sect = S_SKIP;
	if (!valid_name(name, n)) {
		fail(p, p->line, "function name '%.*s' is not 1 to %d of A-Z a-z 0-9 _ . -", (int)n,
		     name, NAME_MAX_BYTES);
		return;
	}
	if (modload_builtin(name, n)) {
		fail(p, p->line,
		     "[function %.*s]: %.*s is a built-in function and cannot be redefined", (int)n,
		     name, (int)n, name);
		return;
	}
	if (old) {
		fail(p, p->line, "duplicate section [function %.*s] (first at line %d)", (int)n,
		     name, old->where.line);
		return;
	}
	e = xcalloc(1, sizeof(*e));
	e->name = xstrndup(name, n);
	e->min_args = e->max_args = -1;
	e->where.file = p->c->name;
	e->where.line = p->line;
	p->fn = e;
	p->sect = S_FUNCTION;
}

/* A "[client NAME]" header (NAME: a certificate's common name): a fresh allow-list. */
static void begin_client(struct parser *p, const char *name, size_t n)
{
	struct conf_client *k;
	size_t i;

	p->sect = S_SKIP;
	if (n < 1 || n > 255 || memchr(name, '\0', n)) {
		fail(p, p->line,
		     "[client]: the name (a certificate's common name) is 1 to 255 bytes");
		return;
	}
	for (i = 0; i < p->c->n_clients; i++)
		if (strlen(p->c->clients[i].name) == n &&
		    memcmp(p->c->clients[i].name, name, n) == 0) {
			fail(p, p->line, "duplicate section [client %.*s] (first at line %d)",
			     (int)n, name, p->c->clients[i].line);
			return;
		}
	p->c->clients = xrealloc(p->c->clients, (p->c->n_clients + 1) * sizeof(*p->c->clients));
	k = &p->c->clients[p->c->n_clients++];
	memset(k, 0, sizeof(*k));
	k->name = xstrndup(name, n);
	k->line = p->line;
	p->sect = S_CLIENT;
}

/* A key of a [client NAME] section: functions = NAME... (once). */
static void client_key(struct parser *p, const char *name, const char *value)
{
	struct conf_client *k = &p->c->clients[p->c->n_clients - 1];
	char err[MSG_MAX / 2];
	size_t i;

	if (strcmp(name, "functions") != 0) {
		fail(p, p->line, "[client %s]: unknown key '%s' (the key is functions)", k->name,
		     name);
		return;
	}
	if (k->functions) {
		fail(p, p->line, "[client %s]: duplicate key 'functions'", k->name);
		return;
	}
	if (split_words(p, value, &k->functions, err, sizeof(err)) < 0) {
		fail(p, p->line, "[client %s]: functions %s", k->name, err);
		return;
	}
	if (!k->functions)
		k->functions = xcalloc(1, sizeof(*k->functions));
	for (i = 0; k->functions[i]; i++)
		if (!valid_name(k->functions[i], strlen(k->functions[i])))
			fail(p, p->line, "[client %s]: '%s' is not a function name", k->name,
			     k->functions[i]);
}

/* Every function an allow-list names must exist (built-ins and [function] sections). */
static void check_clients(struct parser *p)
{
	size_t i, j;

	for (i = 0; i < p->c->n_clients; i++) {
		const struct conf_client *k = &p->c->clients[i];

		for (j = 0; k->functions && k->functions[j]; j++)
			if (!conf_find(p->c, k->functions[j], strlen(k->functions[j])))
				fail(p, k->line,
				     "[client %s]: functions names '%s', which is not a function",
				     k->name, k->functions[j]);
	}
}

int conf_client_allows(const struct conf *c, const char *client, const char *fn)
{
	size_t i, j;

	for (i = 0; i < c->n_clients; i++) {
		if (strcmp(c->clients[i].name, client) != 0)
			continue;
		for (j = 0; c->clients[i].functions && c->clients[i].functions[j]; j++)
			if (strcmp(c->clients[i].functions[j], fn) == 0)
				return 1;
		return 0;
	}
	return 1;
}

/* A line that begins with '[' (s: n bytes, leading blanks skipped). */
static void section_line(struct parser *p, const char *s, size_t n)
{
	const char *close = memchr(s, ']', n), *in = s + 1, *rest;
	size_t len;

	finish_section(p);
	p->sect = S_SKIP;
	if (!close) {
		fail(p, p->line, "section header without ']'");
		return;
	}
	for (rest = close + 1; rest < s + n && isspace((unsigned char)*rest); rest++)
		;
	if (rest < s + n && *rest != ';' && *rest != '#') {
		fail(p, p->line, "text after the section header: '%.*s'", (int)(s + n - rest),
		     rest);
		return;
	}
	while (in < close && isspace((unsigned char)*in))
		in++;
	len = (size_t)(close - in);
	while (len && isspace((unsigned char)in[len - 1]))
		len--;
	if (len == 5 && memcmp(in, "poold", 5) == 0) {
		if (p->poold_line) {
			fail(p, p->line, "duplicate section [poold] (first at line %d)",
			     p->poold_line);
			return;
		}
		p->poold_line = p->line;
		p->sect = S_POOLD;
	} else if (len > 8 && memcmp(in, "function", 8) == 0 && isspace((unsigned char)in[8])) {
		for (in += 8, len -= 8; isspace((unsigned char)*in); in++, len--)
			;
		begin_function(p, in, len);
	} else if (len > 6 && memcmp(in, "client", 6) == 0 && isspace((unsigned char)in[6])) {
		for (in += 6, len -= 6; isspace((unsigned char)*in); in++, len--)
			;
		begin_client(p, in, len);
	} else {
		fail(p, p->line,
		     "unknown section [%.*s]: expected [poold], [function NAME] or [client NAME]",
		     (int)len, in);
	}
}

/* Whether libinih finds '=' or ':' on the line before an inline comment (" ;"). */
static int has_separator(const char *s, size_t n)
{
	int was_space = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '=' || s[i] == ':')
			return 1;
		if (was_space && s[i] == ';')
			return 0;
		was_space = isspace((unsigned char)s[i]);
	}
	return 0;
}

/*
 * libinih's reader: hand it one line at a time, leading blanks removed (so
 * that nothing is read as a continuation line) and section headers,
 * comments and refused lines blanked (sections are ours: libinih keeps only
 * 49 bytes of a section name).
 */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *s = p->text + p->pos, *nl;
	size_t n;

	if (p->pos >= p->len)
		return NULL;
	nl = memchr(s, '\n', p->len - p->pos);
	n = nl ? (size_t)(nl - s) : p->len - p->pos;
	p->pos += n + (nl != NULL);
	p->line++;
	str[0] = '\0';
	if (n && s[n - 1] == '\r')
		n--;
	if (n > LINE_MAX_BYTES || n >= (size_t)num) {
		fail(p, p->line, "line is %zu bytes long; the most is %d", n, LINE_MAX_BYTES);
		p->broken = 1;
		return str;
	}
	if (memchr(s, '\0', n)) {
		fail(p, p->line, "line holds a NUL byte");
		p->broken = 1;
		return str;
	}
	if (p->line == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3, n -= 3;
	while (n && isspace((unsigned char)*s))
		s++, n--;
	if (!n || *s == ';' || *s == '#')
		return str;
	if (*s == '[') {
		section_line(p, s, n);
		return str;
	}
	if (!has_separator(s, n)) {
		fail(p, p->line, "expected KEY = VALUE, a [section] or a comment");
		p->broken = 1;
		return str;
	}
	memcpy(str, s, n);
	if (n + 1 < (size_t)num)
		str[n++] = '\n';
	str[n] = '\0';
	return str;
}

/* A key of [poold]: set the option now. */
static void poold_key(struct parser *p, const char *name, const char *value)
{
	char err[MSG_MAX / 2];
	const char *v = value;
	uint64_t bit;
	size_t i;

	for (i = 0; i < N_OPTDEFS && strcmp(optdefs[i].key, name); i++)
		;
	if (i == N_OPTDEFS) {
		fail(p, p->line, "[poold]: unknown key '%s'", name);
		return;
	}
	if (p->opt_line[i]) {
		fail(p, p->line, "[poold]: duplicate key '%s' (first at line %d)", name,
		     p->opt_line[i]);
		return;
	}
	p->opt_line[i] = p->line;
	if (optdefs[i].type == T_ADDR && p->c->n_strs < CONF_MAX_STRS)
		v = p->c->strs[p->c->n_strs++] = xstrdup(value);
	if (optdefs[i].type == T_STR || optdefs[i].type == T_NAME) {
		char **own = optdefs[i].type == T_STR ? &p->c->socket : &p->c->group;

		free(*own);
		v = *own = xstrdup(value);
	}
	bit = conf_option_set(&p->c->opt, name, v, err, sizeof(err));
	if (!bit)
		fail(p, p->line, "[poold]: %s %s", name, err);
	p->c->opt_set |= bit;
}

/* libinih's handler: one KEY = VALUE line (the section is tracked by read_line). */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	struct pkey *k;
	size_t i;

	if (!*name) {
		fail(p, p->line, "expected KEY = VALUE, a [section] or a comment");
		return 1;
	}
	switch (p->sect) {
	case S_NONE:
		fail(p, p->line,
		     "key '%s' outside any section: put it under [poold] or [function NAME]", name);
		break;
	case S_POOLD:
		poold_key(p, name, value);
		break;
	case S_CLIENT:
		client_key(p, name, value);
		break;
	case S_FUNCTION:
		if (p->n_keys == p->cap_keys) {
			size_t cap = p->cap_keys ? 2 * p->cap_keys : 16;

			p->keys = xrealloc(p->keys, cap * sizeof(*p->keys));
			p->cap_keys = cap;
		}
		k = &p->keys[p->n_keys++];
		k->def = -1;
		for (i = 0; i < N_FKEYS; i++)
			if (strcmp(fkeys[i].name, name) == 0)
				k->def = (int)i;
		k->name = xstrdup(name);
		k->value = xstrdup(value);
		k->line = p->line;
		break;
	case S_SKIP:
		break;
	}
	return 1;
}

/* Append an FN_BUILTIN entry per function of the built-in module. */
static void add_builtins(struct parser *p)
{
	const struct poold_module *m = modload_builtin_module();
	const struct poold_function *f;
	struct fn_entry *e;
	size_t n = 0;

	for (f = m->functions; f && f->name; f++)
		n++;
	p->c->fns = xrealloc(p->c->fns, (p->c->n_fns + n) * sizeof(*p->c->fns));
	for (f = m->functions; f && f->name; f++) {
		e = &p->c->fns[p->c->n_fns++];
		memset(e, 0, sizeof(*e));
		e->name = xstrdup(f->name);
		e->description = f->doc ? xstrdup(f->doc) : NULL;
		e->kind = FN_BUILTIN;
		e->min_args = f->min_args;
		e->max_args = f->max_args;
		e->where.file = p->c->name;
	}
}

/* Parse c->text (already in c) over base; 0 or -1 (c freed). */
static int parse(struct conf *c, const struct options *base, int errors, conf_report report,
                 void *arg)
{
	struct parser p = {.c = c, .report = report, .arg = arg, .errors = errors};
	size_t i;

	if (base)
		c->opt = *base;
	p.text = c->text;
	p.len = c->text_len;
	ini_parse_stream(read_line, &p, on_key, &p);
	finish_section(&p);
	for (i = 0; i < p.n_keys; i++) {
		free(p.keys[i].name);
		free(p.keys[i].value);
	}
	free(p.keys);
	if (p.fn) {
		entry_free(p.fn);
		free(p.fn);
	}
	add_builtins(&p);
	check_clients(&p);
	if (p.errors) {
		conf_free(c);
		return -1;
	}
	return 0;
}

int conf_load_text(struct conf *c, const char *text, size_t len, const char *name_as,
                   const struct options *base, conf_report report, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name_as ? name_as : "poold.conf");
	c->text = xmalloc(len + 1);
	memcpy(c->text, text, len);
	c->text[len] = '\0';
	c->text_len = len;
	return parse(c, base, 0, report, arg);
}

/* Read fd (a regular file of size bytes) into c->text; 0 or -errno. */
static int read_all(struct conf *c, int fd, size_t size)
{
	ssize_t r;

	c->text = xmalloc(size + 1);
	while (c->text_len < size) {
		r = read(fd, c->text + c->text_len, size - c->text_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		c->text_len += (size_t)r;
	}
	c->text[c->text_len] = '\0';
	return 0;
}

/* sshd's StrictModes for a file poold reads code or settings from: the message, or NULL. */
static const char *unsafe_file(const struct stat *st, char *msg, size_t n)
{
	if (!S_ISREG(st->st_mode))
		snprintf(msg, n, "refused: not a regular file");
	else if (st->st_mode & (S_IWGRP | S_IWOTH))
		snprintf(msg, n, "refused: the file is writable by %s (mode %04o); chmod go-w it",
		         (st->st_mode & S_IWGRP) && (st->st_mode & S_IWOTH) ? "group and others"
		         : st->st_mode & S_IWGRP                            ? "its group"
		                                                            : "others",
		         (unsigned)(st->st_mode & 07777));
	else if (st->st_uid != 0 && st->st_uid != geteuid())
		snprintf(
		    msg, n,
		    "refused: the file is owned by uid %u, not by root or poold's user (uid %u)",
		    (unsigned)st->st_uid, (unsigned)geteuid());
	else
		return NULL;
	return msg;
}

int conf_file_check(const char *path, char *msg, size_t n)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(msg, n, "%s", strerror(errno));
		return -1;
	}
	return unsafe_file(&st, msg, n) ? -1 : 0;
}

int conf_load(struct conf *c, const char *path, const char *name_as, const struct options *base,
              conf_report report, void *arg)
{
	const char *shown = name_as ? name_as : path;
	char msg[MSG_MAX];
	struct stat st;
	int fd, errors = 0, rc;

	memset(c, 0, sizeof(*c));
	if (!path)
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
		report(arg, shown, 0, msg);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (unsafe_file(&st, msg, sizeof(msg))) {
		report(arg, shown, 0, msg);
		errors++;
	}
	if (S_ISREG(st.st_mode) && st.st_size > FILE_MAX_BYTES) {
		snprintf(msg, sizeof(msg), "is larger than %u bytes", FILE_MAX_BYTES);
		report(arg, shown, 0, msg);
		close(fd);
		return -1;
	}
	c->path = xstrdup(path);
	c->name = xstrdup(shown);
	rc = S_ISREG(st.st_mode) ? read_all(c, fd, (size_t)st.st_size) : -EINVAL;
	close(fd);
	if (rc < 0) {
		if (rc != -EINVAL) {
			snprintf(msg, sizeof(msg), "cannot read: %s", strerror(-rc));
			report(arg, shown, 0, msg);
		}
		conf_free(c);
		return -1;
	}
	return parse(c, base, errors, report, arg);
}

void conf_free(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_fns; i++)
		entry_free(&c->fns[i]);
	free(c->fns);
	for (i = 0; i < c->n_clients; i++) {
		free(c->clients[i].name);
		vec_free(c->clients[i].functions);
	}
	free(c->clients);
	free(c->path);
	free(c->name);
	free(c->socket);
	free(c->group);
	while (c->n_strs)
		free(c->strs[--c->n_strs]);
	free(c->text);
	memset(c, 0, sizeof(*c));
}

const struct fn_entry *conf_find(const struct conf *c, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < c->n_fns; i++)
		if (strlen(c->fns[i].name) == len && memcmp(c->fns[i].name, name, len) == 0)
			return &c->fns[i];
	return NULL;
}

const char *conf_default_path(char *out, size_t n)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		snprintf(out, n, "/etc/poold/poold.conf");
	else if (xdg && xdg[0] == '/')
		snprintf(out, n, "%s/poold/poold.conf", xdg);
	else if (home && home[0] == '/')
		snprintf(out, n, "%s/.config/poold/poold.conf", home);
	else
		return NULL;
	return out;
}
