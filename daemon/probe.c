/* probe.c - what the configured functions declare: probed by poold --check-config, read back by the
 * supervisor */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fn_program.h"
#include "modload.h"
#include "spawn.h"
#include "xalloc.h"

/*
 * The checker loads modules and starts programs (each program has its own
 * handshake deadline); past this the supervisor gives up on it.
 */
#define RESOLVE_DEADLINE_MS 30000
#define RESOLVE_MAX_OUT (4u << 20)
#define RESOLVE_MAX_ERR (64u << 10)

/* Report a problem of entry e at its [function] line. */
static __attribute__((format(printf, 4, 5))) void
report_fn(conf_report report, void *arg, const struct fn_entry *e, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(arg, e->where.file, e->where.line, msg);
}

/* The PATH a command of e is searched in: its env's PATH, else poold's. */
static const char *search_path(const struct fn_entry *e)
{
	const char *p = getenv("PATH");
	size_t i;

	for (i = 0; e->env && e->env[i]; i++)
		if (strncmp(e->env[i], "PATH=", 5) == 0)
			p = e->env[i] + 5;
	return p && *p ? p : "/usr/local/bin:/usr/bin:/bin";
}

/* 0 when e's argv[0] is an executable file (searched in PATH without a '/'), else -1 with why. */
static int find_program(const struct fn_entry *e, char *why, size_t n)
{
	const char *name = e->argv[0], *dir, *end;
	char full[PATH_MAX];
	struct stat st;

	if (strchr(name, '/')) {
		if (name[0] != '/' && e->cwd)
			snprintf(full, sizeof(full), "%s/%s", e->cwd, name);
		else
			snprintf(full, sizeof(full), "%s", name);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return 0;
		snprintf(why, n, "'%s' is not an executable file", name);
		return -1;
	}
	for (dir = search_path(e); *dir; dir = *end ? end + 1 : end) {
		end = strchrnul(dir, ':');
		snprintf(full, sizeof(full), "%.*s/%s", (int)(end - dir), end == dir ? "." : dir,
		         name);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return 0;
	}
	snprintf(why, n, "'%s' is not found in PATH (%s)", name, search_path(e));
	return -1;
}

int conf_probe(struct conf *c, conf_report report, void *arg)
{
	char why[512];
	size_t i;
	int rc = 0;

	for (i = 0; i < c->n_fns; i++) {
		struct fn_entry *e = &c->fns[i];

		switch (e->kind) {
		case FN_MODULE:
			if (conf_file_check(e->module, why, sizeof(why)) < 0) {
				report_fn(report, arg, e, "[function %s]: module %s: %s", e->name,
				          e->module, why);
				rc = -1;
			} else if (!modload_function(e, why, sizeof(why))) {
				report_fn(report, arg, e, "[function %s]: %s", e->name, why);
				rc = -1;
			}
			break;
		case FN_PROGRAM:
		case FN_COMMAND:
			if (find_program(e, why, sizeof(why)) < 0 ||
			    (e->kind == FN_PROGRAM && program_probe(e, why, sizeof(why)) < 0)) {
				report_fn(report, arg, e, "[function %s]: %s", e->name, why);
				rc = -1;
			}
			break;
		case FN_BUILTIN:
			break;
		}
	}
	return rc;
}

int conf_json(const struct conf *c, struct buf *b)
{
	size_t i;
	int r = buf_adds(b, "{\"functions\":[");

	for (i = 0; i < c->n_fns && r == 0; i++) {
		const struct fn_entry *e = &c->fns[i];

		r |= buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
		r |= buf_add_json_string(b, e->name, strlen(e->name));
		r |= buf_printf(b,
		                ",\"kind\":\"%s\",\"min_args\":%d,\"max_args\":%d,\"description\":",
		                fn_kind_name(e->kind), e->min_args, e->max_args);
		r |= e->description ? buf_add_json_string(b, e->description, strlen(e->description))
		                    : buf_adds(b, "null");
		r |= buf_addc(b, '}');
	}
	r |= buf_adds(b, "]}");
	return r ? -ENOMEM : 0;
}

/* One line of the checker's stderr: "NAME:LINE: msg" for our file goes back as such. */
static void report_line(const struct conf *c, const char *exe, char *line, conf_report report,
                        void *arg)
{
	size_t n = strlen(c->name);
	char *end;
	long ln;

	if (!*line)
		return;
	if (strncmp(line, c->name, n) == 0 && line[n] == ':') {
		if (line[n + 1] == ' ') {
			report(arg, c->name, 0, line + n + 2);
			return;
		}
		ln = strtol(line + n + 1, &end, 10);
		if (ln > 0 && ln < INT_MAX && end[0] == ':' && end[1] == ' ') {
			report(arg, c->name, (int)ln, end + 2);
			return;
		}
	}
	report(arg, exe, 0, line);
}

/* Fill c's entries from the checker's answer; 0, or -1 when it is not a function table. */
static int apply_json(struct conf *c, const struct buf *out)
{
	cJSON *root, *fns, *f, *name, *min, *max, *doc;
	const char *end = NULL;
	struct fn_entry *e;

	root = out->data ? cJSON_ParseWithLengthOpts(out->data, out->len + 1, &end, 1) : NULL;
	fns = cJSON_GetObjectItemCaseSensitive(root, "functions");
	if (!cJSON_IsArray(fns)) {
		cJSON_Delete(root);
		return -1;
	}
	cJSON_ArrayForEach(f, fns)
	{
		name = cJSON_GetObjectItemCaseSensitive(f, "name");
		min = cJSON_GetObjectItemCaseSensitive(f, "min_args");
		max = cJSON_GetObjectItemCaseSensitive(f, "max_args");
		doc = cJSON_GetObjectItemCaseSensitive(f, "description");
		if (!cJSON_IsString(name))
			continue;
		e = (struct fn_entry *)conf_find(c, name->valuestring, strlen(name->valuestring));
		if (!e || e->kind == FN_BUILTIN)
			continue;
		if (cJSON_IsNumber(min) && min->valuedouble >= 0 &&
		    min->valuedouble <= POOLD_MAX_ARGS)
			e->min_args = (int)min->valuedouble;
		if (cJSON_IsNumber(max) && max->valuedouble >= 0 &&
		    max->valuedouble <= POOLD_MAX_ARGS)
			e->max_args = (int)max->valuedouble;
		if (cJSON_IsString(doc) && !e->description)
			e->description = xstrdup(doc->valuestring);
	}
	cJSON_Delete(root);
	return 0;
}

/* Read the checker's stdout and stderr until both close or the deadline; 0 or -ETIMEDOUT. */
static int read_child(int out, int err, struct buf *bo, struct buf *be, long long deadline)
{
	struct pollfd pfd[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
	char chunk[65536];
	struct timespec ts;
	long long now;
	ssize_t r;
	int i;

	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(pfd, 2, (int)(deadline - now)) < 0 && errno != EINTR)
			return -errno;
		for (i = 0; i < 2; i++) {
			struct buf *b = i ? be : bo;
			size_t max = i ? RESOLVE_MAX_ERR : RESOLVE_MAX_OUT;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			r = read(pfd[i].fd, chunk, sizeof(chunk));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0)
				pfd[i].fd = -1;
			else if (b->len + (size_t)r > max && i == 0)
				return -EMSGSIZE;
			else if (b->len + (size_t)r <= max && buf_add(b, chunk, (size_t)r) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* Start the checker with its stdout and stderr on pipes; the pid or -errno. */
static pid_t start_checker(const struct conf *c, const char *exe, const char *copy, int *out,
                           int *err)
{
	char *argv[] = {(char *)exe,     "--check-config", "--config", (char *)copy,
	                "--config-name", c->name,          "--json",   NULL};
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, fds[3];
	pid_t pid = -EMFILE;

	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fds[0] >= 0 && pipe2(po, O_CLOEXEC) == 0 && pipe2(pe, O_CLOEXEC) == 0) {
		fds[1] = po[1];
		fds[2] = pe[1];
		pid = spawn_self(argv, fds);
	}
	if (fds[0] >= 0)
		close(fds[0]);
	if (po[1] >= 0)
		close(po[1]);
	if (pe[1] >= 0)
		close(pe[1]);
	*out = po[0];
	*err = pe[0];
	if (pid < 0) {
		if (po[0] >= 0)
			close(po[0]);
		if (pe[0] >= 0)
			close(pe[0]);
	}
	return pid;
}

int conf_resolve(struct conf *c, const char *exe, const char *copy, conf_report report, void *arg)
{
	struct buf bo = {0}, be = {0};
	char msg[256], *line, *save = NULL;
	struct timespec ts;
	int out, err, st = 0, rc, lines = 0, failed = 1;
	pid_t pid = start_checker(c, exe, copy, &out, &err);

	if (pid < 0) {
		snprintf(msg, sizeof(msg), "cannot start --check-config: %s", strerror((int)-pid));
		report(arg, exe, 0, msg);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rc = read_child(out, err, &bo, &be,
	                ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + RESOLVE_DEADLINE_MS);
	close(out);
	close(err);
	if (rc < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (be.len && buf_addc(&be, '\0') == 0)
		for (line = strtok_r(be.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save), lines++)
			report_line(c, exe, line, report, arg);
	msg[0] = '\0';
	if (rc == -ETIMEDOUT)
		snprintf(msg, sizeof(msg), "--check-config took longer than %d s: killed",
		         RESOLVE_DEADLINE_MS / 1000);
	else if (rc < 0)
		snprintf(msg, sizeof(msg), "--check-config: %s", strerror(-rc));
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (!lines) /* else its own lines said why */
			snprintf(msg, sizeof(msg), "--check-config failed (%s %d)",
			         WIFEXITED(st) ? "exit status" : "signal",
			         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	} else if (apply_json(c, &bo) < 0)
		snprintf(msg, sizeof(msg), "--check-config --json answered no function table");
	else
		failed = 0;
	if (msg[0])
		report(arg, exe, 0, msg);
	buf_free(&bo);
	buf_free(&be);
	return failed ? -1 : 0;
}
