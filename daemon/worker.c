/* worker.c - the worker process: receives tasks, runs functions, sends results */
#include "worker.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "registry.h"
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
	struct buf errbuf; /* failed items' indices, little-endian u32 */
};

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

/* Record a failed item's index (little-endian, as the wire wants it). */
static void add_error(struct worker *w, uint32_t idx)
{
	unsigned char le[4] = {(unsigned char)idx, (unsigned char)(idx >> 8),
	                       (unsigned char)(idx >> 16), (unsigned char)(idx >> 24)};

	buf_add(&w->errbuf, le, 4);
}

/* Call the function on one item; append its value or its {"error":...} to out. */
static int run_item(struct worker *w, const struct fn_def *def, const struct wire_msg *t,
                    struct json_span item)
{
	struct proto_error err = {.code = PROTO_OK};
	struct fn_call c = {.attempt = t->attempt, .out = &w->out, .err = &err};
	size_t mark = w->out.len;

	if (t->flags & (WIRE_STAR | WIRE_APPLY)) {
		struct json_iter it;
		struct json_span e;

		json_iter_init(&it, item);
		while (json_array_next(&it, &e)) {
			if (c.argc == FN_MAX_ARGS) {
				c.argc++;
				break;
			}
			c.argv[c.argc++] = e;
		}
	} else {
		c.argv[c.argc++] = item;
	}
	if (c.argc < def->min_args || c.argc > def->max_args)
		fn_fail(&c, PROTO_BAD_ARITY, "%s takes %d to %d arguments, got %d", def->name,
		        def->min_args, def->max_args, c.argc);
	else if (def->fn(&c) == 0)
		return 0;
	w->out.len = mark;
	buf_adds(&w->out, "{\"error\":");
	proto_error_object(&w->out, &err);
	buf_addc(&w->out, '}');
	return -1;
}

static void run_task(struct worker *w, const struct wire_msg *t)
{
	const struct fn_def *def = registry_find(t->fn, t->fn_len);
	struct json_span arr = {t->payload, t->payload_len}, item;
	struct wire_msg r = {.type = WIRE_RESULT,
	                     .slot = w->a->slot,
	                     .gen = w->a->gen,
	                     .pid = w->pid,
	                     .task_id = t->task_id,
	                     .first_error = WIRE_NO_ERROR};
	size_t limit = w->a->max_msg - WIRE_HDR_SIZE - 4096;
	struct json_iter it;
	struct nn_iovec iov[2];
	struct nn_msghdr hdr = {.msg_iov = iov};
	struct timespec t0, t1;
	uint32_t i = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	buf_reset(&w->out);
	buf_reset(&w->errbuf);
	json_iter_init(&it, arr);
	while (i < t->count && json_array_next(&it, &item)) {
		size_t mark = w->out.len;
		int failed;

		if (i)
			buf_addc(&w->out, ',');
		if (!def) {
			struct proto_error e = {.code = PROTO_UNKNOWN_FUNCTION, .index = -1};

			snprintf(e.message, sizeof(e.message), "no function %.*s in this worker",
			         (int)t->fn_len, t->fn);
			buf_adds(&w->out, "{\"error\":");
			proto_error_object(&w->out, &e);
			buf_addc(&w->out, '}');
			failed = 1;
		} else {
			failed = run_item(w, def, t, item) < 0;
		}
		if (w->out.len + (size_t)(r.n_errors + 1) * 4 > limit) {
			/* Too big: leave the rest to a later task, or fail a lone item. */
			w->out.len = mark;
			if (i > 0)
				break;
			buf_adds(&w->out, "{\"error\":{\"code\":\"result_too_large\",\"message\":"
			                  "\"the result does not fit in a message\"}}");
			failed = 1;
		}
		if (failed) {
			if (r.first_error == WIRE_NO_ERROR)
				r.first_error = i;
			add_error(w, i);
			r.n_errors++;
		}
		i++;
		if (failed && (t->flags & WIRE_FAIL_FAST))
			break;
	}
	r.count = i;
	r.errors = (const unsigned char *)w->errbuf.data;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r.busy_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
	            (uint64_t)t0.tv_nsec;
	wire_encode_head(&w->head, &r);
	iov[0].iov_base = w->head.data;
	iov[0].iov_len = w->head.len;
	iov[1].iov_base = w->out.data ? w->out.data : "";
	iov[1].iov_len = w->out.len;
	hdr.msg_iovlen = 2;
	if (nn_sendmsg(w->push, &hdr, 0) < 0)
		fatal("nn_sendmsg: %s", nn_strerror(nn_errno()));
}

int worker_main(const struct worker_args *a)
{
	struct worker w = {.a = a, .pid = (uint32_t)getpid()};
	char rname[32], role[32];

	snprintf(role, sizeof(role), "worker %u", a->slot);
	log_init(role, a->verbose);
	/* Sleeps and timeouts inside functions end on time, not 50 us late. */
	prctl(PR_SET_TIMERSLACK, 1UL);
	snprintf(rname, sizeof(rname), "w%u-%u.ipc", a->slot, a->gen);
	w.pull = nn_open(NN_PULL, a->rundir, rname, a->max_msg);
	w.push = nn_open(NN_PUSH, a->rundir, "r.ipc", a->max_msg);
	handshake(&w);
	log_debug("ready");
	for (;;) {
		struct wire_msg t;
		void *msg;
		int n = nn_recv(w.pull, &msg, NN_MSG, 0);

		if (n < 0) {
			if (nn_errno() == EINTR)
				continue;
			fatal("nn_recv: %s", nn_strerror(nn_errno()));
		}
		if (wire_decode(msg, (size_t)n, &t) == 0 && t.type == WIRE_TASK)
			run_task(&w, &t);
		nn_freemsg(msg);
	}
}
