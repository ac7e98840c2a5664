/* modload.c - C modules: dlopen, ABI checks, the function table they export */
#include "modload.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn_std.h"

/* Longest function table accepted: a table without its NULL end is refused, not overrun. */
#define MAX_FUNCTIONS 4096

/* A module loaded in this process; the list is in load order. */
struct loaded {
	char *path;
	void *handle;
	const struct poold_module *mod;
	struct loaded *next;
};

static struct loaded *loaded;

/* The descriptor's size in ABI 1.0, the least accepted: everything before int_forms. */
#define SIZE_1_0 offsetof(struct poold_module, int_forms)

const struct poold_module *modload_builtin_module(void)
{
	return &fn_std_module;
}

static const struct poold_function *find(const struct poold_module *m, const char *name, size_t len)
{
	const struct poold_function *f;

	for (f = m->functions; f->name; f++)
		if (strlen(f->name) == len && memcmp(f->name, name, len) == 0)
			return f;
	return NULL;
}

const struct poold_function *modload_builtin(const char *name, size_t len)
{
	return find(&fn_std_module, name, len);
}

/* The descriptor's own size in the module's symbol table, 0 when unknown. */
static size_t symbol_size(const void *sym)
{
	Dl_info info;
	const ElfW(Sym) *es = NULL;

	if (!dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) || !es)
		return 0;
	return (size_t)es->st_size;
}

/* The module's integer forms: NULL for a module built for ABI 1.0 (its descriptor ends before). */
static const struct poold_int_form *int_forms(const struct poold_module *m)
{
	return m->size >= SIZE_1_0 + sizeof(m->int_forms) ? m->int_forms : NULL;
}

/* Each integer form names a function of the table and has its pointer. */
static int check_int_forms(const char *path, const struct poold_module *m, char *err, size_t n)
{
	const struct poold_int_form *g = int_forms(m);
	size_t i;

	for (i = 0; g && g->name; g++, i++) {
		if (i == MAX_FUNCTIONS)
			return snprintf(err, n,
			                "%s: more than %d integer forms (no NULL name at the end?)",
			                path, MAX_FUNCTIONS),
			       -1;
		if (!g->fn || !find(m, g->name, strlen(g->name)))
			return snprintf(err, n, "%s: integer form %s: %s", path, g->name,
			                !g->fn ? "no function pointer"
			                       : "names no function of the table"),
			       -1;
	}
	return 0;
}

/* Check the descriptor: magic, ABI, size, a well-formed function table. */
static int check_module(const char *path, const struct poold_module *m, char *err, size_t n)
{
	size_t have = symbol_size(m), i;
	const struct poold_function *f;

	if (have && have < offsetof(struct poold_module, name))
		return snprintf(err, n,
		                "%s: poold_module is %zu bytes: not a poold module descriptor",
		                path, have),
		       -1;
	if (m->magic != POOLD_MODULE_MAGIC)
		return snprintf(err, n,
		                "%s: poold_module has the wrong magic (0x%llx): not built with "
		                "poold/module.h",
		                path, (unsigned long long)m->magic),
		       -1;
	if (m->abi_major != POOLD_MODULE_ABI_MAJOR)
		return snprintf(err, n,
		                "%s: module ABI %u.%u, this poold speaks %u.x (up to %u.%u)", path,
		                m->abi_major, m->abi_minor, POOLD_MODULE_ABI_MAJOR,
		                POOLD_MODULE_ABI_MAJOR, POOLD_MODULE_ABI_MINOR),
		       -1;
	if (m->size < SIZE_1_0 || (have && have < SIZE_1_0) || (have && have < m->size))
		return snprintf(err, n,
		                "%s: poold_module is %u bytes (ABI %u.%u), this poold (ABI %u.%u) "
		                "needs at least %zu",
		                path, m->size, m->abi_major, m->abi_minor, POOLD_MODULE_ABI_MAJOR,
		                POOLD_MODULE_ABI_MINOR, SIZE_1_0),
		       -1;
	if (!m->name || !m->version || !m->functions)
		return snprintf(err, n, "%s: poold_module lacks its %s", path,
		                !m->name      ? "name"
		                : !m->version ? "version"
		                              : "function table"),
		       -1;
	for (i = 0, f = m->functions; f->name; f++, i++) {
		if (i == MAX_FUNCTIONS)
			return snprintf(err, n,
			                "%s: more than %d functions (no NULL name at the end?)",
			                path, MAX_FUNCTIONS),
			       -1;
		if (!f->fn || f->min_args < 0 || f->max_args < f->min_args ||
		    f->max_args > POOLD_MAX_ARGS)
			return snprintf(err, n, "%s: function %s: %s", path, f->name,
			                !f->fn ? "no function pointer"
			                       : "min_args and max_args must satisfy "
			                         "0 <= min_args <= max_args <= 16"),
			       -1;
	}
	return check_int_forms(path, m, err, n);
}

/* dlopen path once per process, check it, run its init. NULL with err on failure. */
static struct loaded *load(const char *path, char *err, size_t n)
{
	struct loaded *l;
	const struct poold_module *m;
	const char *why;
	char msg[200] = "";
	void *h;

	for (l = loaded; l; l = l->next)
		if (strcmp(l->path, path) == 0)
			return l;
	dlerror();
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		why = dlerror();
		why = why ? why : "cannot load";
		if (strncmp(why, path, strlen(path)) == 0)
			snprintf(err, n, "%s", why);
		else
			snprintf(err, n, "%s: %s", path, why);
		return NULL;
	}
	for (l = loaded; l; l = l->next)
		if (l->handle == h) { /* the same file under another name */
			dlclose(h);
			return l;
		}
	m = dlsym(h, "poold_module");
	if (!m) {
		snprintf(err, n,
		         "%s: no symbol poold_module: not a poold module (define it with "
		         "POOLD_MODULE_DEFINE)",
		         path);
		goto fail;
	}
	if (check_module(path, m, err, n) < 0)
		goto fail;
	if (m->init && m->init(msg, sizeof(msg)) != 0) {
		msg[sizeof(msg) - 1] = '\0';
		snprintf(err, n, "%s: init of module %s failed: %s", path, m->name,
		         msg[0] ? msg : "(no reason given)");
		goto fail;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->path = strdup(path))) {
		free(l);
		snprintf(err, n, "%s: out of memory", path);
		goto fail;
	}
	l->handle = h;
	l->mod = m;
	l->next = loaded;
	loaded = l;
	return l;
fail:
	dlclose(h);
	return NULL;
}

/* "a, b, c" into out: the functions a module offers, for a message. */
static void list_functions(const struct poold_module *m, char *out, size_t n)
{
	const struct poold_function *f;
	size_t len = 0;

	out[0] = '\0';
	for (f = m->functions; f->name && len < n; f++)
		len += (size_t)snprintf(out + len, n - len, "%s%s", f == m->functions ? "" : ", ",
		                        f->name);
}

const struct poold_function *modload_function(struct fn_entry *e, char *err, size_t n)
{
	const char *sym = e->symbol ? e->symbol : e->name;
	const struct poold_function *f;
	struct loaded *l;
	char names[120];

	if (!e->module) {
		snprintf(err, n, "function %s: no module path", e->name);
		return NULL;
	}
	l = load(e->module, err, n);
	if (!l)
		return NULL;
	f = find(l->mod, sym, strlen(sym));
	if (!f) {
		list_functions(l->mod, names, sizeof(names));
		snprintf(err, n, "%s: module %s %s has no function %s (it has: %s)", e->module,
		         l->mod->name, l->mod->version, sym, names);
		return NULL;
	}
	e->min_args = f->min_args;
	e->max_args = f->max_args;
	if (!e->description && f->doc)
		e->description = strdup(f->doc);
	return f;
}

poold_int_fn modload_int_form(const struct poold_function *f)
{
	const struct poold_module *m = NULL;
	const struct poold_int_form *g;
	const struct poold_function *t;
	struct loaded *l;

	for (t = fn_std_module.functions; t->name && !m; t++)
		if (t == f)
			m = &fn_std_module;
	for (l = loaded; l && !m; l = l->next)
		for (t = l->mod->functions; t->name && !m; t++)
			if (t == f)
				m = l->mod;
	if (!m)
		return NULL;
	for (g = int_forms(m); g && g->name; g++)
		if (strcmp(g->name, f->name) == 0)
			return g->fn;
	return NULL;
}

void modload_fini_all(void)
{
	struct loaded *l;

	/* Newest first, like atexit: a module loaded later may use an earlier one. */
	for (l = loaded; l; l = l->next)
		if (l->mod->fini)
			l->mod->fini();
}
