/* fn_program.c - worker programs: one long-lived child per worker, JSON lines */
#include "fn_program.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "child.h"
#include "fn_command.h"
#include "json.h"
#include "log.h"
#include "poold/module.h"

/* How long a program may take to write its handshake line. */
#define PROGRAM_HANDSHAKE_MS 10000
/* Longest handshake line. */
#define PROGRAM_HANDSHAKE_MAX (1024 * 1024)
/* A reply line may exceed the task's result limit by this much (its framing). */
#define PROGRAM_REPLY_SLACK 65536
/* How long a recycled program may take to exit after its stdin is closed. */
#define PROGRAM_STOP_GRACE_MS 1000
/* Longest stderr line forwarded whole; longer ones are cut into pieces this size. */
#define PROGRAM_LOG_LINE 4096
/* Members of a program's reply line recorded as it is validated (more are looked up). */
#define REPLY_MEMBERS 8

struct program {
	const struct fn_entry *e;
	struct child c;
	struct buf out;     /* stdout not yet consumed */
	size_t scanned;     /* bytes of out known to hold no newline */
	struct buf errline; /* stderr's unfinished line */
	uint64_t tasks;
	struct program *next;
};

/* Every program this worker runs; read by program_stop_all from a signal handler too. */
static struct program *volatile programs;

/* Log stderr line by line, prefixed with the function and the program's pid (the role: slot). */
static void forward_err(void *arg, const char *b, size_t n)
{
	struct program *p = arg;
	struct buf *l = &p->errline;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] != '\n')
			buf_addc(l, b[i]);
		if (b[i] == '\n' || l->len >= PROGRAM_LOG_LINE) {
			log_info("%s[%d]: %.*s", p->e->name, (int)p->c.pid, (int)l->len,
			         l->data ? l->data : "");
			buf_reset(l);
		}
	}
	if (n == 0 && l->len) {
		log_info("%s[%d]: %.*s", p->e->name, (int)p->c.pid, (int)l->len, l->data);
		buf_reset(l);
	}
}

static struct child_io io_for(struct program *p, size_t max)
{
	return (struct child_io){.out = &p->out, .out_max = max, .on_err = forward_err, .arg = p};
}

/* Forward what the program has written to stderr so far, without waiting. */
static void drain_err(struct program *p)
{
	struct child_io io = io_for(p, SIZE_MAX);
	int i;

	for (i = 0; i < 64 && p->c.err >= 0; i++)
		if (child_pump(&p->c, &io, 0) < 0)
			break;
}

/* Why stdout ended: the program's exit status when it exits soon after, else the closed pipe. */
static void describe_end(struct program *p, char *why, size_t n)
{
	struct child_io io = io_for(p, SIZE_MAX);
	long long end = child_now_ms() + 200;

	while (!p->c.reaped && p->c.pidfd >= 0 && child_now_ms() < end)
		if (child_pump(&p->c, &io, (int)(end - child_now_ms())) == -ETIMEDOUT)
			break;
	if (!p->c.reaped)
		snprintf(why, n, "closed its stdout");
	else if (WIFSIGNALED(p->c.status))
		snprintf(why, n, "was killed by signal %d (%s)", WTERMSIG(p->c.status),
		         strsignal(WTERMSIG(p->c.status)));
	else
		snprintf(why, n, "exited with status %d", WEXITSTATUS(p->c.status));
}

/*
 * Write the request line (io->in_p) and wait for one line of stdout, up to
 * end (0: no deadline). Returns the line's length (without the newline), or
 * -1 with why set.
 */
static long read_line(struct program *p, struct child_io *io, long long end, char *why, size_t n)
{
	for (;;) {
		char *nl = p->out.len > p->scanned
		               ? memchr(p->out.data + p->scanned, '\n', p->out.len - p->scanned)
		               : NULL;
		int rc, ms = -1;

		if (nl)
			return (long)(nl - p->out.data);
		p->scanned = p->out.len;
		if (p->c.out < 0) {
			describe_end(p, why, n);
			return -1;
		}
		if (end) {
			long long left = end - child_now_ms();

			ms = left > 0 ? (int)left : 0;
		}
		rc = child_pump(&p->c, io, ms);
		if (rc == -ETIMEDOUT) {
			snprintf(why, n, "wrote no line within %d ms", PROGRAM_HANDSHAKE_MS);
			return -1;
		}
		if (rc == -ENOBUFS) {
			snprintf(why, n, "wrote a line over %zu bytes", io->out_max);
			return -1;
		}
		if (rc < 0) {
			snprintf(why, n, "could not be talked to: %s", strerror(-rc));
			return -1;
		}
	}
}

/* Drop the first len + 1 bytes of stdout (a line and its newline). */
static void consume_line(struct program *p, size_t len)
{
	size_t rest = p->out.len - len - 1;

	memmove(p->out.data, p->out.data + len + 1, rest);
	p->out.len = rest;
	p->out.data[rest] = '\0';
	p->scanned = 0;
}

/* An arity in [0, POOLD_MAX_ARGS], or -1 when v is not one. */
static int arity_of(struct json_span v)
{
	int64_t x;

	return json_int(v, &x) == 0 && x >= 0 && x <= POOLD_MAX_ARGS ? (int)x : -1;
}

/*
 * Check a handshake line: {"poold":1,"functions":[NAME or {"name":..,
 * "min_args":..,"max_args":..,"description":..}, ...]} serving e->name.
 * Fills *min and *max (-1 when not declared) and desc (when given). Returns
 * 0, or -1 with why set.
 */
static int parse_handshake(const struct fn_entry *e, const char *line, size_t len, int *min,
                           int *max, struct buf *desc, char *why, size_t n)
{
	struct json_span v, key, val, fns = {0}, f;
	struct json_iter it, fi;
	const char *msg;
	size_t off;
	int64_t version = 0;

	*min = *max = -1;
	if (json_validate(line, line + len, &v, &msg, &off) < 0 || json_type(v) != JSON_OBJECT) {
		snprintf(why, n, "wrote a handshake that is not a JSON object: %.60s", line);
		return -1;
	}
	json_iter_init(&it, v);
	while (json_object_next(&it, &key, &val)) {
		if (json_string_eq(key, "poold") && json_int(val, &version) < 0)
			version = 0;
		else if (json_string_eq(key, "functions") && json_type(val) == JSON_ARRAY)
			fns = val;
	}
	if (version != 1 || !fns.p) {
		snprintf(why, n, "wrote a handshake without \"poold\":1 and a \"functions\" array");
		return -1;
	}
	json_iter_init(&fi, fns);
	while (json_array_next(&fi, &f)) {
		if (json_type(f) == JSON_STRING && json_string_eq(f, e->name))
			return 0;
		if (json_type(f) != JSON_OBJECT)
			continue;
		{
			int found = 0, lo = -1, hi = -1;

			json_iter_init(&it, f);
			while (json_object_next(&it, &key, &val)) {
				if (json_string_eq(key, "name"))
					found = json_type(val) == JSON_STRING &&
					        json_string_eq(val, e->name);
				else if (json_string_eq(key, "min_args"))
					lo = arity_of(val);
				else if (json_string_eq(key, "max_args"))
					hi = arity_of(val);
				else if (json_string_eq(key, "description") && desc &&
				         json_type(val) == JSON_STRING)
					json_string_decode(val, desc);
			}
			if (found) {
				*min = lo;
				*max = lo >= 0 && hi >= 0 && hi < lo ? lo : hi;
				return 0;
			}
		}
	}
	snprintf(why, n, "does not list %s among the functions of its handshake", e->name);
	return -1;
}

/* Start p's program and take its handshake. Returns 0, or -1 with why set (p left stopped). */
static int program_start(struct program *p, int *min, int *max, struct buf *desc, char *why,
                         size_t n)
{
	struct child_io io = io_for(p, PROGRAM_HANDSHAKE_MAX);
	long len;
	int rc;

	buf_reset(&p->out);
	buf_reset(&p->errline);
	p->scanned = 0;
	p->tasks = 0;
	rc = child_spawn(&p->c, p->e->argv, p->e->env, p->e->cwd, 1);
	if (rc < 0) {
		snprintf(why, n, "could not be started: %s", strerror(-rc));
		return -1;
	}
	log_debug("program %s started (pid %d)", p->e->name, (int)p->c.pid);
	len = read_line(p, &io, child_now_ms() + PROGRAM_HANDSHAKE_MS, why, n);
	if (len >= 0 &&
	    parse_handshake(p->e, p->out.data, (size_t)len, min, max, desc, why, n) == 0) {
		consume_line(p, (size_t)len);
		return 0;
	}
	if (len < 0 && strncmp(why, "wrote no line", 13) == 0)
		snprintf(why, n, "wrote no handshake within %d ms", PROGRAM_HANDSHAKE_MS);
	drain_err(p);
	child_stop(&p->c, 0);
	return -1;
}

/* Stop p's program: stdin closed, a grace period, then its process group killed. */
static void program_stop(struct program *p, int grace_ms)
{
	drain_err(p);
	child_stop(&p->c, grace_ms);
	forward_err(p, "", 0);
}

/*
 * The program broke the protocol: say so, kill every child of this worker and
 * exit, so that the supervisor handles the task as a dead worker's.
 */
__attribute__((noreturn, format(printf, 2, 3))) static void program_fail(struct program *p,
                                                                         const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (p->c.pid > 0)
		drain_err(p);
	log_warn("program %s (pid %d) %s; killing its process group and this worker", p->e->name,
	         (int)p->c.pid, why);
	program_stop_all();
	command_stop();
	exit(WORKER_EXIT_PROGRAM);
}

static struct program *program_get(const struct fn_entry *e)
{
	struct program *p;

	for (p = programs; p; p = p->next)
		if (p->e == e)
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		fatal("out of memory");
	p->e = e;
	p->c = (struct child){.in = -1, .out = -1, .err = -1, .pidfd = -1};
	p->next = programs;
	programs = p;
	return p;
}

/* p's program, running and past its handshake; exits the worker when it cannot be. */
static void program_ensure(struct program *p)
{
	char why[256];
	int min, max;

	if (p->c.pid > 0)
		return;
	if (program_start(p, &min, &max, NULL, why, sizeof(why)) < 0)
		program_fail(p, "%s", why);
}

/* An error code a program may give an item; anything else becomes function_error. */
static enum proto_code item_code(struct json_span v)
{
	if (json_string_eq(v, "type_error"))
		return PROTO_TYPE_ERROR;
	if (json_string_eq(v, "out_of_range"))
		return PROTO_OUT_OF_RANGE;
	return PROTO_FUNCTION_ERROR;
}

/*
 * When r is {"error":{...}} (an object whose one member is "error"), fill err
 * from it and return 1; 0 when r is a value.
 */
static int item_error(struct json_span r, struct proto_error *err)
{
	struct json_span key, val, ev = {0}, k, v;
	struct json_iter it;
	struct buf msg = {0};
	int members = 0;

	if (json_type(r) != JSON_OBJECT)
		return 0;
	json_iter_init(&it, r);
	while (json_object_next(&it, &key, &val)) {
		members++;
		if (json_string_eq(key, "error"))
			ev = val;
	}
	if (members != 1 || !ev.p)
		return 0;
	*err = (struct proto_error){.code = PROTO_FUNCTION_ERROR, .index = -1};
	snprintf(err->message, sizeof(err->message), "the program gave no message");
	if (json_type(ev) != JSON_OBJECT)
		return 1;
	json_iter_init(&it, ev);
	while (json_object_next(&it, &k, &v)) {
		if (json_string_eq(k, "code") && json_type(v) == JSON_STRING)
			err->code = item_code(v);
		else if (json_string_eq(k, "message") && json_string_decode(v, &msg) == 0)
			snprintf(err->message, sizeof(err->message), "%s", msg.data);
	}
	buf_free(&msg);
	return 1;
}

/* Check a reply line and hand its results to o; exits the worker when it is not one. */
static void take_reply(struct program *p, const char *line, size_t len, uint32_t count,
                       struct task_out *o)
{
	struct json_span v, key[REPLY_MEMBERS], val[REPLY_MEMBERS], res = {0}, r;
	struct json_iter it;
	const char *msg;
	size_t off, n, i;
	int full = 0;

	/* one validating pass that also finds the members; a second over the results */
	if (json_object_scan(line, line + len, &v, key, val, REPLY_MEMBERS, &n) < 0) {
		if (json_validate(line, line + len, &v, &msg, &off) < 0)
			program_fail(p,
			             "wrote a line that is not valid JSON (%s at byte %zu): %.60s",
			             msg, off, line);
		program_fail(p, "wrote a line that is not a reply object: %.60s", line);
	}
	for (i = 0; i < n && i < REPLY_MEMBERS; i++)
		if (json_string_eq(key[i], "results") && json_type(val[i]) == JSON_ARRAY)
			res = val[i];
	if (n > REPLY_MEMBERS) {
		/* more members than recorded: the rest are looked up in the text */
		json_iter_init(&it, v);
		for (i = 0; json_object_next(&it, &key[0], &val[0]); i++)
			if (i >= REPLY_MEMBERS && json_string_eq(key[0], "results") &&
			    json_type(val[0]) == JSON_ARRAY)
				res = val[0];
	}
	if (!res.p)
		program_fail(p, "wrote a reply without a \"results\" array: %.60s", line);
	/* counted as they are handed on: a wrong count ends the worker, whatever was handed */
	json_iter_init(&it, res);
	for (n = 0; json_array_next(&it, &r); n++) {
		struct proto_error err;

		if (!full && (item_error(r, &err) ? task_out_error(o, &err) < 0
		                                  : task_out_value(o, r.p, r.len) < 0))
			full = 1;
	}
	if (n != count)
		program_fail(p, "answered %zu results for %u items", n, count);
}

/* Append the request line for task t to b. */
static void request_line(struct buf *b, const struct fn_entry *e, const struct wire_msg *t)
{
	buf_reset(b);
	buf_adds(b, "{\"fn\":");
	buf_add_json_string(b, e->name, strlen(e->name));
	buf_adds(b, (t->flags & (WIRE_STAR | WIRE_APPLY)) ? ",\"star\":true" : ",\"star\":false");
	buf_adds(b, (t->flags & WIRE_APPLY) ? ",\"apply\":true,\"args\":"
	                                    : ",\"apply\":false,\"args\":");
	buf_add(b, t->payload, t->payload_len);
	if (buf_adds(b, "}\n") < 0)
		fatal("out of memory");
}

/*
 * Send task t's request and read the reply line. Returns its length, or -1
 * when the program ended without reading any of the request (it left between
 * tasks, so nothing is its fault: start another), or exits the worker.
 */
static long exchange(struct program *p, const struct buf *req, struct task_out *o)
{
	struct child_io io = io_for(p, o->limit + PROGRAM_REPLY_SLACK);
	char why[256];
	long len;

	/* A line written before its request would be taken as its reply. */
	if (child_pump(&p->c, &io, 0) == 0 && p->out.len)
		program_fail(p, "wrote to stdout without a request: %.60s", p->out.data);
	io.in_p = req->data;
	io.in_left = req->len;
	len = read_line(p, &io, 0, why, sizeof(why));
	if (len < 0 && p->c.out < 0 && child_unread(&p->c) == io.in_done) {
		log_info("program %s (pid %d) %s before reading a request; starting another",
		         p->e->name, (int)p->c.pid, why);
		program_stop(p, 0);
		return -1;
	}
	if (len < 0)
		program_fail(p, "%s", why);
	if (io.in_left)
		program_fail(p, "answered before reading its whole request");
	if (p->out.len > (size_t)len + 1)
		program_fail(p, "wrote more than one line for one request");
	return len;
}

void program_run_task(const struct fn_entry *e, const struct wire_msg *t, struct task_out *o)
{
	static struct buf req;
	struct program *p = program_get(e);
	long len;

	request_line(&req, e, t);
	program_ensure(p);
	len = exchange(p, &req, o);
	if (len < 0) {
		program_ensure(p);
		len = exchange(p, &req, o);
	}
	if (len < 0)
		program_fail(p, "ended twice before reading a request");
	p->out.data[len] = '\0';
	take_reply(p, p->out.data, (size_t)len, t->count, o);
	consume_line(p, (size_t)len);
	if (e->max_tasks_per_worker && ++p->tasks >= e->max_tasks_per_worker) {
		log_debug("program %s (pid %d) ran %llu tasks; recycling it", e->name,
		          (int)p->c.pid, (unsigned long long)p->tasks);
		program_stop(p, PROGRAM_STOP_GRACE_MS);
	}
}

void program_preload(const struct fn_entry *e)
{
	program_ensure(program_get(e));
}

void program_stop_all(void)
{
	struct program *p;

	for (p = programs; p; p = p->next)
		child_kill_group(p->c.pid);
}

int program_probe(struct fn_entry *e, char *err, size_t n)
{
	struct program p = {.e = e};
	struct buf desc = {0};
	char why[256];
	int min, max, rc = -1;

	if (program_start(&p, &min, &max, &desc, why, sizeof(why)) < 0) {
		snprintf(err, n, "program %s %s", e->argv[0], why);
		goto out;
	}
	/* What the configuration sets wins over the handshake. */
	if (min >= 0 && e->min_args < 0)
		e->min_args = min;
	if (max >= 0 && e->max_args < 0)
		e->max_args = max;
	if (desc.len && !e->description && !(e->description = strdup(desc.data))) {
		snprintf(err, n, "out of memory");
		goto out;
	}
	program_stop(&p, PROGRAM_STOP_GRACE_MS);
	rc = 0;
out:
	if (p.c.pid > 0)
		program_stop(&p, 0);
	buf_free(&p.out);
	buf_free(&p.errline);
	buf_free(&desc);
	return rc;
}
