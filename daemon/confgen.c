/* confgen.c - generations of the configuration: the current one, and older ones still in use */
#include "confgen.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"
#include "supervisor.h"
#include "xalloc.h"

static struct confgen *current;
static uint32_t last_gen;

static void report(void *arg, const char *file, int line, const char *msg)
{
	if (line > 0)
		log_error("%s:%d: %s", file ? file : "(config)", line, msg);
	else
		log_error("%s: %s", file ? file : "(config)", msg);
}

struct confgen *confgen_current(void)
{
	return current;
}

struct confgen *confgen_ref(struct confgen *g)
{
	g->refs++;
	return g;
}

void confgen_unref(struct confgen *g)
{
	if (!g || --g->refs)
		return;
	if (g->copy[0])
		unlink(g->copy);
	conf_free(&g->c);
	free(g->cost_ns);
	free(g);
}

/* Write the text the workers will parse: exactly the bytes that were checked. */
static int write_copy(struct confgen *g)
{
	size_t off = 0;
	int fd;

	snprintf(g->copy, sizeof(g->copy), "%s/conf-%u", sv.rundir, g->gen);
	fd = open(g->copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	while (off < g->c.text_len) {
		ssize_t n = write(fd, g->c.text + off, g->c.text_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			goto fail;
		}
		off += (size_t)n;
	}
	if (close(fd) == 0)
		return 0;
fail:
	log_error("cannot write %s: %s", g->copy, strerror(errno));
	unlink(g->copy);
	g->copy[0] = '\0';
	return -1;
}

/* 1 when some function runs user code, whose arity only a probe can learn. */
static int needs_probe(const struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_fns; i++)
		if (c->fns[i].kind == FN_MODULE || c->fns[i].kind == FN_PROGRAM)
			return 1;
	return 0;
}

/* Take c into a new generation, ready to be made current; NULL after logging. */
static struct confgen *confgen_new(struct conf *c)
{
	struct confgen *g = xcalloc(1, sizeof(*g));

	g->c = *c;
	g->cost_ns = xcalloc(g->c.n_fns ? g->c.n_fns : 1, sizeof(*g->cost_ns));
	g->gen = ++last_gen;
	g->refs = 1;
	g->name = g->c.path;
	if (!g->c.path)
		return g;
	if (write_copy(g) < 0 ||
	    (needs_probe(&g->c) && conf_resolve(&g->c, sv.exe, g->copy, report, NULL) < 0)) {
		confgen_unref(g);
		return NULL;
	}
	return g;
}

int confgen_init(struct conf *c)
{
	struct conf none = {0};

	if (!c) {
		if (conf_load_text(&none, "", 0, NULL, &sv.opt, report, NULL) < 0)
			return -1;
		c = &none;
	}
	current = confgen_new(c);
	return current ? 0 : -1;
}

/*
 * A reload applies the functions. Numeric [poold] options the new file sets
 * to other values than the file in force are logged: they wait for a restart.
 */
static void note_options(const struct conf *was, const struct conf *now)
{
	const struct options *o = &was->opt, *n = &now->opt;
	const struct {
		const char *key;
		uint64_t bit;
		int differs;
	} opts[] = {
	    {"workers", CONF_OPT_WORKERS, o->workers != n->workers},
	    {"timeout_ms", CONF_OPT_TIMEOUT, o->timeout_ms != n->timeout_ms},
	    {"max_line", CONF_OPT_MAX_LINE, o->max_line != n->max_line},
	    {"max_items", CONF_OPT_MAX_ITEMS, o->max_items != n->max_items},
	    {"max_pending_items", CONF_OPT_MAX_PENDING,
	     o->max_pending_items != n->max_pending_items},
	    {"max_connections", CONF_OPT_MAX_CONN, o->max_connections != n->max_connections},
	    {"max_inflight", CONF_OPT_MAX_INFLIGHT, o->max_inflight != n->max_inflight},
	    {"max_tasks_per_worker", CONF_OPT_MAX_TASKS,
	     o->max_tasks_per_worker != n->max_tasks_per_worker},
	    {"stop_timeout", CONF_OPT_STOP_TIMEOUT, o->stop_timeout_s != n->stop_timeout_s},
	    {"max_memory", CONF_OPT_MAX_MEMORY, o->max_memory != n->max_memory},
	    {"slow_task_ms", CONF_OPT_SLOW_TASK, o->slow_task_ms != n->slow_task_ms},
	    {"host_timeout_ms", CONF_OPT_HOST_TIMEOUT, o->host_timeout_ms != n->host_timeout_ms},
	};
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if ((now->opt_set & opts[i].bit) && opts[i].differs)
			log_warn("reload: [poold] %s changed; it takes effect at the next start",
			         opts[i].key);
}

int confgen_reload(void)
{
	char def[PATH_MAX];
	const char *path =
	    sv.opt.config_path ? sv.opt.config_path : conf_default_path(def, sizeof(def));
	struct conf c = {0};
	struct confgen *g;
	int r = conf_load(&c, path, NULL, &sv.opt, report, NULL);

	if (r == -ENOENT && !sv.opt.config_path)
		r = conf_load_text(&c, "", 0, NULL, &sv.opt, report, NULL);
	else if (r == -ENOENT)
		log_error("%s: no such file", path);
	if (r < 0) {
		log_error("reload refused: %s has problems (above); the configuration in force "
		          "stays",
		          path);
		return -1;
	}
	note_options(&current->c, &c);
	g = confgen_new(&c);
	if (!g) {
		log_error("reload refused: the configuration in force stays");
		return -1;
	}
	confgen_unref(current);
	current = g;
	log_info("configuration %s loaded (generation %u, %zu functions); replacing workers", path,
	         g->gen, g->c.n_fns);
	pool_roll();
	return 0;
}

int confgen_restore(void)
{
	if (!current || !current->copy[0] || access(current->copy, R_OK) == 0)
		return 0;
	return write_copy(current) < 0 ? -EIO : 0;
}

double *confgen_cost(struct confgen *g, const struct fn_entry *fn)
{
	if (fn < g->c.fns || fn >= g->c.fns + g->c.n_fns)
		return NULL;
	return &g->cost_ns[fn - g->c.fns];
}

int confgen_in_use(const struct confgen *g)
{
	return g->n_requests > 0;
}

void confgen_free(void)
{
	confgen_unref(current);
	current = NULL;
}
