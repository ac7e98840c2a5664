/* worker.c - the worker process: receives tasks, runs functions, sends results */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "digits.h"
#include "fn_command.h"
#include "fn_program.h"
#include "fncall.h"
#include "log.h"
#include "modload.h"
#include "proto.h"
#include "wire.h"

#define HELLO_FIRST_MS 2
#define HELLO_FAST_TRIES 20
#define HELLO_INTERVAL_MS 50
#define HELLO_GIVE_UP_MS 30000

struct worker {
	const struct worker_args *a;
	int pull;
	int push;
	uint32_t pid;
	struct buf head;
	struct buf out;
	struct buf errbuf;                  /* failed items' indices, little-endian u32 */
	struct buf scratch;                 /* one command's output */
	struct conf conf;                   /* the configuration copy; no functions when none */
	const struct poold_function **impl; /* per conf entry: its built-in or module function */
	poold_int_fn *forms;                /* per conf entry: its integer form, or NULL */
	struct poold_call call;
};

/*
 * SIGTERM: while a function runs (busy), stop the programs and commands it
 * may have started and die at once, as Pool.terminate() does; while idle,
 * wake the task loop through a pipe so that it exits cleanly (fini hooks).
 * Either way the worker ends by SIGTERM, as the supervisor expects.
 */
static volatile sig_atomic_t busy = 1, stop_requested;
static int wake_pipe[2] = {-1, -1};

static int nn_open(int type, const char *rundir, const char *name, size_t max_msg)
{
	char addr[256];
	int s = nn_socket(AF_SP, type);
	int max = (int)max_msg;

	if (s < 0)
		fatal("nn_socket: %s", nn_strerror(nn_errno()));
	if (type == NN_PULL && nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)))
		fatal("NN_RCVMAXSIZE: %s", nn_strerror(nn_errno()));
	snprintf(addr, sizeof(addr), "ipc://%s/%s", rundir, name);
	if (nn_connect(s, addr) < 0)
		fatal("nn_connect %s: %s", addr, nn_strerror(nn_errno()));
	return s;
}

static void send_simple(struct worker *w, uint16_t type, int flags)
{
	struct wire_msg m = {.type = type,
	                     .slot = w->a->slot,
	                     .gen = w->a->gen,
	                     .pid = (uint32_t)getpid(),
	                     .first_error = WIRE_NO_ERROR};

	wire_encode(&w->head, &m);
	if (nn_send(w->push, w->head.data, w->head.len, flags) < 0 && nn_errno() != EAGAIN)
		fatal("nn_send: %s", nn_strerror(nn_errno()));
}

/*
 * The first message on a fresh nanomsg pipe can be lost, so the worker repeats
 * HELLO until the supervisor's WELCOME arrives; READY then follows on a pipe
 * known to work in both directions.
 */
static void handshake(struct worker *w)
{
	int tmo = HELLO_FIRST_MS, waited = 0, tries = 0;
	struct wire_msg m;

	nn_setsockopt(w->pull, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo));
	for (;;) {
		void *msg;
		int n;

		send_simple(w, WIRE_HELLO, NN_DONTWAIT);
		n = nn_recv(w->pull, &msg, NN_MSG, 0);
		if (n < 0) {
			if (nn_errno() != ETIMEDOUT && nn_errno() != EINTR)
				fatal("nn_recv: %s", nn_strerror(nn_errno()));
			waited += tmo;
			if (++tries == HELLO_FAST_TRIES) {
				tmo = HELLO_INTERVAL_MS;
				nn_setsockopt(w->pull, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
				              sizeof(tmo));
			}
			if (waited > HELLO_GIVE_UP_MS)
				fatal("no welcome from the supervisor");
			continue;
		}
		n = wire_decode(msg, (size_t)n, &m) == 0 && m.type == WIRE_WELCOME;
		nn_freemsg(msg);
		if (n)
			break;
	}
	tmo = -1;
	nn_setsockopt(w->pull, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo));
	send_simple(w, WIRE_READY, 0);
}

/* Die of SIGTERM now (its handler is gone). */
static void die_of_sigterm(void)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t set;

	sigaction(SIGTERM, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(SIGTERM);
	_exit(128 + SIGTERM);
}

static void on_sigterm(int sig)
{
	int e = errno;
	ssize_t n;

	if (busy) {
		program_stop_all();
		command_stop();
		die_of_sigterm();
	}
	stop_requested = 1;
	n = write(wake_pipe[1], "", 1); /* fails only when a wake-up is already pending */
	(void)n;
	errno = e;
}

/*
 * nanomsg's threads start with SIGTERM blocked (it is blocked while the
 * sockets are made), so the handler runs in the thread that runs functions.
 */
static void signals_init(void)
{
	struct sigaction sa = {.sa_handler = on_sigterm};
	sigset_t set;

	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("pipe2: %s", strerror(errno));
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void must(int r)
{
	if (r < 0)
		fatal("out of memory");
}

/* Record the item just answered; see task_out_value. */
static int task_out_commit(struct task_out *o, size_t mark, int failed)
{
	uint32_t i = o->count;
	unsigned char le[4] = {(unsigned char)i, (unsigned char)(i >> 8), (unsigned char)(i >> 16),
	                       (unsigned char)(i >> 24)};

	if (o->out->len + (size_t)(o->n_errors + 1) * 4 > o->limit) {
		/* Too big: leave the rest to a later task, or fail a lone item. */
		o->out->len = mark;
		if (o->count > 0)
			return -1;
		must(buf_adds(o->out, "{\"error\":{\"code\":\"result_too_large\",\"message\":"
		                      "\"the result does not fit in a message\"}}"));
		failed = 1;
	}
	if (failed) {
		if (o->first_error == WIRE_NO_ERROR)
			o->first_error = i;
		must(buf_add(o->errbuf, le, 4));
		o->n_errors++;
	}
	o->count++;
	return failed && o->fail_fast ? -1 : 0;
}

/* Where the next item's answer starts: after a ',' when one came before. */
static size_t task_out_begin(struct task_out *o)
{
	size_t mark = o->out->len;

	if (o->count)
		must(buf_addc(o->out, ','));
	return mark;
}

static void add_error_object(struct buf *b, const struct proto_error *e)
{
	must(buf_adds(b, "{\"error\":"));
	must(proto_error_object(b, e));
	must(buf_addc(b, '}'));
}

int task_out_value(struct task_out *o, const char *json, size_t len)
{
	size_t mark = task_out_begin(o);

	must(buf_add(o->out, json, len));
	return task_out_commit(o, mark, 0);
}

int task_out_error(struct task_out *o, const struct proto_error *e)
{
	size_t mark = task_out_begin(o);

	add_error_object(o->out, e);
	return task_out_commit(o, mark, 1);
}

/* A built-in or module function on one item, its result written in place. */
static int call_item(struct worker *w, struct task_out *o, const char *name,
                     const struct poold_function *f, const struct wire_msg *t,
                     struct json_span item)
{
	struct proto_error err; /* filled by a failure only: not zeroed per item (216 bytes) */
	size_t mark = task_out_begin(o), used = o->out->len + (size_t)(o->n_errors + 1) * 4;
	size_t nargs = fncall_set_args(&w->call, item, t->flags & (WIRE_STAR | WIRE_APPLY));
	int failed = fncall_run(&w->call, f, name, nargs, t->attempt, o->out,
	                        used < o->limit ? o->limit - used : 0, &err) < 0;

	if (failed && err.code == PROTO_RESULT_TOO_LARGE && o->count > 0) {
		o->out->len = mark; /* it may fit in a task of its own */
		return -1;
	}
	if (failed)
		add_error_object(o->out, &err);
	return task_out_commit(o, mark, failed);
}

/* A command on one item. */
static int command_item(struct worker *w, struct task_out *o, const struct fn_entry *e,
                        struct json_span item)
{
	struct proto_error err = {.code = PROTO_OK, .index = -1};

	buf_reset(&w->scratch);
	if (command_call(e, item, &w->scratch, &err) < 0)
		return task_out_error(o, &err);
	return task_out_value(o, w->scratch.data ? w->scratch.data : "null", w->scratch.len);
}

/* The function a task names: its config entry (NULL for a built-in not in it), code and form. */
static const struct fn_entry *lookup(struct worker *w, const struct wire_msg *t,
                                     const struct poold_function **f, poold_int_fn *form)
{
	const struct fn_entry *e = w->conf.n_fns ? conf_find(&w->conf, t->fn, t->fn_len) : NULL;

	*f = NULL;
	*form = NULL;
	if (!e) {
		*f = modload_builtin(t->fn, t->fn_len);
	} else if (e->kind == FN_BUILTIN || e->kind == FN_MODULE) {
		if (e >= w->conf.fns && e < w->conf.fns + w->conf.n_fns) {
			*f = w->impl[e - w->conf.fns];
			*form = w->forms[e - w->conf.fns];
			return e;
		}
		if (e->kind == FN_BUILTIN)
			*f = modload_builtin(e->name, strlen(e->name));
	}
	if (*f)
		*form = modload_int_form(*f);
	return e;
}

/*
 * Items through the function's integer form while they are plain integers and
 * the form answers; stops at the first item that needs the general path.
 * Results are written straight into the output, which is kept NUL-terminated.
 */
static void run_int_form(poold_int_fn form, struct json_iter *it, uint32_t *i, uint32_t count,
                         struct task_out *o)
{
	struct buf *b = o->out;
	const char *next;
	int64_t x, y;

	for (; *i < count; (*i)++) {
		/* a ',' and the longest integer, and the item's error index, must fit */
		if (b->cap - b->len <= BUF_INT_MAX + 2)
			must(buf_reserve(b, 64 * 1024));
		if (b->len + BUF_INT_MAX + 1 + (size_t)(o->n_errors + 1) * 4 > o->limit ||
		    !digits_int_elem(it->p, it->end, &x, &next) || form(x, &y) != 0 ||
		    y > POOLD_INT_MAX || y < -POOLD_INT_MAX)
			return;
		if (o->count)
			b->data[b->len++] = ',';
		b->len = (size_t)(buf_fmt_int(b->data + b->len, y) - b->data);
		b->data[b->len] = '\0';
		o->count++;
		it->p = next;
	}
}

/* Each item of t through the function, one by one. */
static void run_items(struct worker *w, const struct wire_msg *t, const struct fn_entry *e,
                      const struct poold_function *f, poold_int_fn form, struct task_out *o)
{
	struct json_span arr = {t->payload, t->payload_len}, item;
	struct json_iter it;
	uint32_t i = 0;
	int r;

	if (t->flags & (WIRE_STAR | WIRE_APPLY))
		form = NULL;
	json_iter_init(&it, arr);
	for (;;) {
		if (form)
			run_int_form(form, &it, &i, t->count, o);
		if (i == t->count || !json_array_next(&it, &item))
			break;
		if (f) {
			r = call_item(w, o, e ? e->name : f->name, f, t, item);
		} else if (e && e->kind == FN_COMMAND) {
			r = command_item(w, o, e, item);
		} else {
			struct proto_error err = {.code = PROTO_UNKNOWN_FUNCTION, .index = -1};

			snprintf(err.message, sizeof(err.message),
			         "no function %.*s in this worker", (int)t->fn_len, t->fn);
			r = task_out_error(o, &err);
		}
		if (r < 0)
			break;
		i++;
	}
}

static void run_task(struct worker *w, const struct wire_msg *t)
{
	const struct poold_function *f;
	poold_int_fn form;
	const struct fn_entry *e = lookup(w, t, &f, &form);
	struct task_out o = {.out = &w->out,
	                     .errbuf = &w->errbuf,
	                     .first_error = WIRE_NO_ERROR,
	                     .limit = w->a->max_msg - WIRE_HDR_SIZE - 4096,
	                     .fail_fast = (t->flags & WIRE_FAIL_FAST) != 0};
	struct wire_msg r = {.type = WIRE_RESULT,
	                     .slot = w->a->slot,
	                     .gen = w->a->gen,
	                     .pid = w->pid,
	                     .task_id = t->task_id};
	struct nn_iovec iov[2];
	struct nn_msghdr hdr = {.msg_iov = iov};
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	buf_reset(&w->out);
	buf_reset(&w->errbuf);
	if (!f && e && e->kind == FN_PROGRAM)
		program_run_task(e, t, &o);
	else
		run_items(w, t, e, f, form, &o);
	r.count = o.count;
	r.n_errors = o.n_errors;
	r.first_error = o.first_error;
	r.errors = (const unsigned char *)w->errbuf.data;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r.busy_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
	            (uint64_t)t0.tv_nsec;
	must(wire_encode_head(&w->head, &r));
	iov[0].iov_base = w->head.data;
	iov[0].iov_len = w->head.len;
	iov[1].iov_base = w->out.data ? w->out.data : "";
	iov[1].iov_len = w->out.len;
	hdr.msg_iovlen = 2;
	if (nn_sendmsg(w->push, &hdr, 0) < 0)
		fatal("nn_sendmsg: %s", nn_strerror(nn_errno()));
}

static void report(void *arg, const char *file, int line, const char *msg)
{
	if (line > 0)
		log_error("%s:%d: %s", file, line, msg);
	else
		log_error("%s: %s", file, msg);
}

/* The whole of the supervisor's configuration copy, or exit. */
static char *read_copy(const char *path, size_t *len)
{
	struct buf b = {0};
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		exit(WORKER_EXIT_CONFIG);
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("%s: %s", path, strerror(errno));
			exit(WORKER_EXIT_CONFIG);
		}
		must(buf_add(&b, chunk, (size_t)n));
	}
	close(fd);
	must(buf_reserve(&b, 1));
	b.data[b.len] = '\0';
	*len = b.len;
	return b.data;
}

/*
 * Load the configuration copy and make every function ready: modules loaded
 * (their init run), programs with preload started. Any failure is logged and
 * ends the worker with WORKER_EXIT_CONFIG.
 */
static void functions_init(struct worker *w)
{
	const struct worker_args *a = w->a;
	struct options base = {0};
	char err[512];
	size_t len, i;
	char *text;

	if (!a->conf)
		return;
	text = read_copy(a->conf, &len);
	if (conf_load_text(&w->conf, text, len, a->conf_name, &base, report, NULL) < 0) {
		free(text);
		exit(WORKER_EXIT_CONFIG);
	}
	free(text);
	w->impl = calloc(w->conf.n_fns ? w->conf.n_fns : 1, sizeof(*w->impl));
	w->forms = calloc(w->conf.n_fns ? w->conf.n_fns : 1, sizeof(*w->forms));
	if (!w->impl || !w->forms)
		fatal("out of memory");
	for (i = 0; i < w->conf.n_fns; i++) {
		struct fn_entry *e = &w->conf.fns[i];

		switch (e->kind) {
		case FN_BUILTIN:
			w->impl[i] = modload_builtin(e->name, strlen(e->name));
			if (!w->impl[i]) {
				log_error("%s:%d: no built-in function %s", e->where.file,
				          e->where.line, e->name);
				exit(WORKER_EXIT_CONFIG);
			}
			break;
		case FN_MODULE:
			w->impl[i] = modload_function(e, err, sizeof(err));
			if (!w->impl[i]) {
				log_error("%s:%d: function %s: %s", e->where.file, e->where.line,
				          e->name, err);
				exit(WORKER_EXIT_CONFIG);
			}
			break;
		case FN_PROGRAM:
			if (e->preload)
				program_preload(e);
			break;
		case FN_COMMAND:
			break;
		}
		if (w->impl[i])
			w->forms[i] = modload_int_form(w->impl[i]);
	}
}

/* SIGTERM while idle: stop what runs, fini hooks, free, and end as the supervisor asked. */
static void worker_stop(struct worker *w)
{
	log_debug("stopping");
	program_stop_all();
	command_stop();
	modload_fini_all();
	fncall_deinit(&w->call);
	conf_free(&w->conf);
	free(w->impl);
	free(w->forms);
	buf_free(&w->head);
	buf_free(&w->out);
	buf_free(&w->errbuf);
	buf_free(&w->scratch);
	die_of_sigterm();
}

/* The next task message (0), or 1 when SIGTERM asks the worker to stop. */
static int next_message(struct worker *w, int rcvfd, void **msg, int *len)
{
	struct pollfd p[2] = {{.fd = rcvfd, .events = POLLIN},
	                      {.fd = wake_pipe[0], .events = POLLIN}};

	for (;;) {
		if (stop_requested)
			return 1;
		*len = nn_recv(w->pull, msg, NN_MSG, NN_DONTWAIT);
		if (*len >= 0)
			return 0;
		if (nn_errno() != EAGAIN && nn_errno() != EINTR)
			fatal("nn_recv: %s", nn_strerror(nn_errno()));
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
	}
}

int worker_main(const struct worker_args *a)
{
	struct worker w = {.a = a, .pid = (uint32_t)getpid()};
	char rname[32], role[32];
	size_t sz = sizeof(int);
	sigset_t set;
	int rcvfd;

	snprintf(role, sizeof(role), "worker %u", a->slot);
	log_init(role, a->verbose);
	/* Sleeps and timeouts inside functions end on time, not 50 us late. */
	prctl(PR_SET_TIMERSLACK, 1UL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	snprintf(rname, sizeof(rname), "w%u-%u.ipc", a->slot, a->gen);
	w.pull = nn_open(NN_PULL, a->rundir, rname, a->max_msg);
	w.push = nn_open(NN_PUSH, a->rundir, "r.ipc", a->max_msg);
	if (nn_getsockopt(w.pull, NN_SOL_SOCKET, NN_RCVFD, &rcvfd, &sz) < 0)
		fatal("NN_RCVFD: %s", nn_strerror(nn_errno()));
	signals_init();
	functions_init(&w);
	busy = 0;
	handshake(&w);
	log_debug("ready");
	for (;;) {
		struct wire_msg t;
		void *msg;
		int n;

		if (next_message(&w, rcvfd, &msg, &n))
			worker_stop(&w);
		busy = 1;
		if (stop_requested) /* SIGTERM came before busy was set: stop, not run */
			worker_stop(&w);
		if (wire_decode(msg, (size_t)n, &t) == 0 && t.type == WIRE_TASK)
			run_task(&w, &t);
		busy = 0;
		nn_freemsg(msg);
	}
}
