/* test_conf.c - conf_load_text and conf_option_set: what a valid file becomes, and each problem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conf.h"
#include "xalloc.h"

/* Every reported line, "LINE: message", joined by newlines. */
static char reports[8192];

static void collect(void *arg, const char *file, int line, const char *msg)
{
	size_t n = strlen(reports);

	snprintf(reports + n, sizeof(reports) - n, "%s:%d: %s\n", file, line, msg);
}

/* Load text; returns conf_load_text's result with the reports in `reports`. */
static int load(struct conf *c, const char *text, const struct options *base)
{
	reports[0] = '\0';
	return conf_load_text(c, text, strlen(text), "t.conf", base, collect, NULL);
}

/* text must fail with exactly the report want. */
static void check_problem(const char *text, const char *want)
{
	struct conf c;

	CHECK_INT(load(&c, text, NULL), -1);
	if (!CHECK_STR(reports, want))
		fprintf(stderr, "    for: %s\n", text);
	CHECK_INT((int)c.n_fns, 0);
}

static void test_commands(void)
{
	struct conf c;
	const struct fn_entry *e;

	CHECK_INT(load(&c,
	               "[function q]\n"
	               "kind = command\n"
	               "command = sh -c 'echo \"$1\" x' \"a \\\"b\\\" \\\\c\" pre{}post\n"
	               "env = A=1 B=\"two words\"\n"
	               "env = C=\n"
	               "cwd = /tmp\n"
	               "output = json\n",
	               NULL),
	          0);
	CHECK_STR(reports, "");
	e = conf_find(&c, "q", 1);
	CHECK(e != NULL);
	if (!e)
		return;
	CHECK_INT(e->kind, FN_COMMAND);
	CHECK_STR(e->argv[0], "sh");
	CHECK_STR(e->argv[1], "-c");
	CHECK_STR(e->argv[2], "echo \"$1\" x");
	CHECK_STR(e->argv[3], "a \"b\" \\c");
	CHECK_STR(e->argv[4], "pre{}post");
	CHECK(e->argv[5] == NULL);
	CHECK_STR(e->env[0], "A=1");
	CHECK_STR(e->env[1], "B=two words");
	CHECK_STR(e->env[2], "C=");
	CHECK(e->env[3] == NULL);
	CHECK_STR(e->cwd, "/tmp");
	CHECK_INT(e->output_json, 1);
	CHECK_INT(e->input_stdin, 0);
	CHECK_INT(e->min_args, 1);
	CHECK_INT(e->max_args, 1);
	CHECK_INT(e->where.line, 1);
	CHECK_STR(e->where.file, "t.conf");
	/* Built-ins follow the file's functions; a name is matched whole. */
	e = conf_find(&c, "square", 6);
	CHECK(e != NULL && e->kind == FN_BUILTIN && e->min_args == 1 && e->description);
	CHECK(conf_find(&c, "squar", 5) == NULL);
	CHECK(conf_find(&c, "q\0x", 3) == NULL);
	CHECK_STR(c.fns[0].name, "q");
	conf_free(&c);
	CHECK(c.fns == NULL && c.n_fns == 0);
}

static void test_module_and_program(void)
{
	struct conf c;
	const struct fn_entry *e;

	CHECK_INT(load(&c,
	               "[function m.x-1]\nkind = module\nmodule = /lib/m.so\n"
	               "[function p]\nkind = program\ncommand = /bin/p --flag\npreload = yes\n"
	               "retries = 0\ntimeout_ms = 250\nmax_tasks_per_worker = 9\nmin_args = 0\n",
	               NULL),
	          0);
	CHECK_STR(reports, "");
	e = conf_find(&c, "m.x-1", 5);
	CHECK(e && e->kind == FN_MODULE);
	if (e) {
		CHECK_STR(e->module, "/lib/m.so");
		CHECK_STR(e->symbol, "m.x-1");
		CHECK_INT(e->min_args, -1);
		CHECK(e->description == NULL);
		CHECK_INT(e->has_retries, 0);
	}
	e = conf_find(&c, "p", 1);
	CHECK(e && e->kind == FN_PROGRAM);
	if (e) {
		CHECK_INT(e->preload, 1);
		CHECK_INT(e->has_retries, 1);
		CHECK_INT((int)e->retries, 0);
		CHECK_INT((int)e->timeout_ms, 250);
		CHECK_INT((int)e->max_tasks_per_worker, 9);
		CHECK_INT(e->min_args, 0);
		CHECK_INT(e->max_args, -1);
		CHECK_INT(e->where.line, 4);
	}
	conf_free(&c);
}

static void test_options(void)
{
	struct options base = {.workers = 2, .max_line = 1 << 20, .socket_path = "/s"}, o;
	struct conf c;
	char err[256];

	CHECK_INT(
	    load(&c, "[poold]\nworkers = 7\nmax_line = 2M\nmax_memory = 1g\nsocket = /x\n", &base),
	    0);
	CHECK_INT(c.opt.workers, 7);
	CHECK_INT((int)c.opt.max_line, 2 << 20);
	CHECK(c.opt.max_memory == 1ull << 30);
	CHECK_STR(c.opt.socket_path, "/x");
	CHECK(c.opt_set ==
	      (CONF_OPT_WORKERS | CONF_OPT_MAX_LINE | CONF_OPT_MAX_MEMORY | CONF_OPT_SOCKET));
	conf_free(&c);
	/* An empty file: the base options and the built-ins. */
	CHECK_INT(load(&c, "", &base), 0);
	CHECK_INT(c.opt.workers, 2);
	CHECK(c.opt_set == 0 && c.n_fns > 0 && c.fns[0].kind == FN_BUILTIN);
	conf_free(&c);
	/* The flags' setter, by key. */
	o = base;
	CHECK(conf_option_set(&o, "stop_timeout", "5", err, sizeof(err)) == CONF_OPT_STOP_TIMEOUT);
	CHECK_INT(o.stop_timeout_s, 5);
	CHECK(conf_option_set(&o, "max_pending_items", "1099511627776", err, sizeof(err)) ==
	      CONF_OPT_MAX_PENDING);
	CHECK(o.max_pending_items == 1ull << 40);
	CHECK(conf_option_set(&o, "max_memory", "18446744073709551615K", err, sizeof(err)) == 0);
	CHECK(conf_option_set(&o, "nope", "1", err, sizeof(err)) == 0);
	CHECK_STR(err, "is not an option");
	CHECK_INT(o.workers, 2);
}

static void test_problems(void)
{
	check_problem("[function f]\nkind = command\ncommand = echo {}\nenv = =x\n",
	              "t.conf:4: [function f]: env takes NAME=VALUE pairs, not '=x'\n");
	check_problem("[function f]\nkind = command\ncommand = echo {}\nenv = A-B=1\n",
	              "t.conf:4: [function f]: env takes NAME=VALUE pairs, not 'A-B=1'\n");
	check_problem(
	    "[function f]\nkind = command\ncommand = {} x\n",
	    "t.conf:3: [function f]: command cannot have {} in the program's name '{}'\n");
	check_problem("[function f]\nkind = command\ncommand =\n",
	              "t.conf:3: [function f]: command takes a program and its arguments, not "
	              "nothing\n");
	check_problem("[function f]\nkind = program\ncommand = \"a\\\"\n",
	              "t.conf:3: [function f]: command has a \" quote that is not closed\n");
	check_problem("[function f]\nkind = program\ncommand = p\ninput = stdin\n",
	              "t.conf:4: [function f]: key 'input' does not belong to kind = program\n");
	check_problem("[function f]\nkind = module\nmodule = /m.so\nkind = module\n",
	              "t.conf:4: [function f]: duplicate key 'kind' (first at line 2)\n");
	check_problem("[function "
	              "a234567890123456789012345678901234567890123456789012345678901234]\n",
	              "t.conf:1: function name "
	              "'a234567890123456789012345678901234567890123456789012345678901234' is "
	              "not 1 to 63 of A-Z a-z 0-9 _ . -\n");
	/* A 63-byte name is fine, and libinih's 49-byte section buffer does not cut it. */
	{
		struct conf c;
		const char *name =
		    "a23456789012345678901234567890123456789012345678901234567890123";

		CHECK_INT(
		    load(
		        &c,
		        "[function a23456789012345678901234567890123456789012345678901234567890123]"
		        "\nkind = command\ncommand = echo {}\n",
		        NULL),
		    0);
		CHECK(conf_find(&c, name, strlen(name)) != NULL);
		conf_free(&c);
	}
}

/* A NUL inside the text: strlen would stop at it, so pass the length. */
static void test_nul(void)
{
	static const char text[] = "[poold]\nworkers = 2\0junk\n";
	struct conf c;

	reports[0] = '\0';
	CHECK_INT(conf_load_text(&c, text, sizeof(text) - 1, "t.conf", NULL, collect, NULL), -1);
	CHECK_STR(reports, "t.conf:2: line holds a NUL byte\n");
}

int main(void)
{
	xalloc_install();
	test_commands();
	test_module_and_program();
	test_options();
	test_problems();
	test_nul();
	return check_exit("conf");
}
