/* pool.c - the worker slots: processes, their nanomsg sockets, credit and restarts */
#include "pool.h"

#include <errno.h>
#include <event2/event.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "confgen.h"
#include "hosts.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "spawn.h"
#include "supervisor.h"
#include "worker.h"
#include "xalloc.h"

#define HANDSHAKE_TIMEOUT_MS 10000
#define KILL_GRACE_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define RECV_BATCH 256
/* A worker still running a task whose request went away is stopped after this. */
#define ORPHAN_GRACE_MS 1000
/* Starts that failed in a row, on every slot, before queued work is failed. */
#define START_FAILURES_UNAVAILABLE 3

enum slot_state { SLOT_STOPPED, SLOT_STARTING, SLOT_READY, SLOT_BACKOFF };

static const char *const state_names[] = {
    [SLOT_STOPPED] = "stopped",
    [SLOT_STARTING] = "starting",
    [SLOT_READY] = "ready",
    [SLOT_BACKOFF] = "backoff",
};

struct slot {
	uint32_t index;
	struct host *host; /* a remote slot: the host agent behind it (hosts.c); NULL: a worker */
	uint32_t credit;   /* messages it may hold: POOL_CREDIT, or a host's worker count */
	uint32_t gen;
	int sock; /* nanomsg PUSH bound at RUNDIR/w<index>-<gen>.ipc, -1 when none */
	struct event *ev_snd;
	pid_t pid;
	enum slot_state state;
	int retiring;              /* the coming exit is planned, not a crash */
	enum proto_code kill_code; /* PROTO_TIMEOUT when we killed it for a timeout */
	struct task_list held;
	uint32_t n_held; /* tasks */
	uint32_t n_msgs; /* messages carrying them: the credit counts these */
	uint64_t items_done;
	uint64_t tasks_done;        /* results received: chunks answered */
	uint64_t items_this_worker; /* items sent to the current process */
	uint64_t restarts;
	uint32_t crashes_in_row; /* deaths with no task to blame: start-up or idle */
	uint32_t start_failures; /* exits before the handshake, in a row */
	int rolling;             /* being replaced for a new configuration */
	struct confgen *cg;      /* the configuration its worker runs (a reference) */
	struct event *ev_timer;  /* handshake deadline or the head task's deadline */
	struct event *ev_kill;   /* SIGKILL after the grace period */
	struct event *ev_respawn;
};

static struct slot *slots;
static int n_slots;
static int results_sock = -1;
static struct event *ev_results;
static size_t max_msg;
static int stopping;
static struct buf head;
static char last_start_failure[192];
static int n_local; /* slots [0, n_local) are local workers, the rest remote hosts */

static const struct pool_hooks ledger_hooks = {
    .result = ledger_message_result,
    .lost = ledger_task_lost,
    .dispatch = ledger_dispatch,
    .reaped = supervisor_check_idle,
};
static const struct pool_hooks *hooks = &ledger_hooks;

void pool_set_hooks(const struct pool_hooks *h)
{
	hooks = h;
}

static void slot_start(struct slot *s);

size_t pool_max_msg(void)
{
	return max_msg;
}

static void slot_addr(const struct slot *s, char *out, size_t n, int url)
{
	snprintf(out, n, "%s%s/w%u-%u.ipc", url ? "ipc://" : "", sv.rundir, s->index, s->gen);
}

static void slot_close_sock(struct slot *s)
{
	char path[128];

	if (s->sock < 0)
		return;
	if (s->ev_snd) {
		event_free(s->ev_snd);
		s->ev_snd = NULL;
	}
	nn_close(s->sock);
	s->sock = -1;
	slot_addr(s, path, sizeof(path), 0);
	unlink(path);
}

static void slot_kill(struct slot *s, int sig)
{
	if (s->pid > 0)
		kill(s->pid, sig);
}

static void on_kill_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct slot *s = arg;

	log_warn("worker pid %d did not stop; sending SIGKILL", (int)s->pid);
	slot_kill(s, SIGKILL);
}

/* Ask the worker to stop; SIGKILL follows if it is still there after the grace. */
static void slot_terminate(struct slot *s)
{
	struct timeval tv = {KILL_GRACE_MS / 1000, (KILL_GRACE_MS % 1000) * 1000};

	slot_kill(s, SIGTERM);
	evtimer_add(s->ev_kill, &tv);
}

/*
 * When the task the worker runs now must be over, 0 for never: its timeout
 * budget (see ledger.h), or a short grace once its request went away.
 */
static uint64_t task_deadline(const struct task *t, uint64_t orphan_ms)
{
	uint64_t at = t->timeout_ms ? t->sent_ms + t->budget_ms : 0;

	if (orphan_ms && (!at || orphan_ms + ORPHAN_GRACE_MS < at))
		at = orphan_ms + ORPHAN_GRACE_MS;
	return at;
}

/*
 * When every task of the message the worker runs now lost its request, the
 * latest of those moments; 0 while one of them is still wanted.
 */
static uint64_t message_orphaned(const struct slot *s)
{
	const struct task *first = TAILQ_FIRST(&s->held), *t;
	uint64_t at = 0;

	for (t = first; t && t->msg_id == first->msg_id; t = TAILQ_NEXT(t, slink)) {
		if (t->req)
			return 0;
		at = t->orphan_ms > at ? t->orphan_ms : at;
	}
	return at;
}

/* (Re)arm the deadline of the task the worker is running now. */
static void slot_arm_deadline(struct slot *s)
{
	struct task *t = TAILQ_FIRST(&s->held);
	uint64_t at, now = now_ms(), ms;
	struct timeval tv;

	evtimer_del(s->ev_timer);
	if (s->host) /* its agent keeps the deadlines of its own workers */
		return;
	if (!t || s->kill_code || s->retiring || !(at = task_deadline(t, message_orphaned(s))))
		return;
	ms = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(s->ev_timer, &tv);
}

void pool_task_orphaned(struct task *t)
{
	struct task *first;

	t->orphan_ms = now_ms();
	if (t->slot < 0 || t->slot >= n_slots)
		return;
	first = TAILQ_FIRST(&slots[t->slot].held);
	if (first && first->msg_id == t->msg_id)
		slot_arm_deadline(&slots[t->slot]);
}

static void on_slot_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct slot *s = arg;

	if (s->state == SLOT_STARTING) {
		log_warn("worker %u (pid %d) did not finish its handshake; killing it", s->index,
		         (int)s->pid);
		s->kill_code = PROTO_TIMEOUT; /* our kill: a failed start, not one from outside */
		slot_kill(s, SIGKILL);
		return;
	}
	if (TAILQ_EMPTY(&s->held))
		return;
	if (message_orphaned(s)) {
		/* Pool.terminate: abandoned work must not hold a worker forever. */
		log_info("worker %u (pid %d) still runs a task whose request went away; "
		         "stopping it",
		         s->index, (int)s->pid);
		s->retiring = 1;
		slot_terminate(s);
		return;
	}
	log_warn("worker %u (pid %d) ran task %llu for %llu ms, past its timeout; stopping it",
	         s->index, (int)s->pid, (unsigned long long)TAILQ_FIRST(&s->held)->id,
	         (unsigned long long)(now_ms() - TAILQ_FIRST(&s->held)->sent_ms));
	s->kill_code = PROTO_TIMEOUT;
	slot_terminate(s);
}

static void on_respawn(evutil_socket_t fd, short ev, void *arg)
{
	slot_start(arg);
}

static void on_sndfd(evutil_socket_t fd, short ev, void *arg)
{
	struct slot *s = arg;

	event_del(s->ev_snd);
	hooks->dispatch();
}

/*
 * The runtime directory can vanish under a running daemon (a tmp cleaner, an
 * administrator): make it again, with the result endpoint and the
 * configuration copy the next worker needs. Returns 0 or -errno.
 */
static int ensure_rundir(void)
{
	static uint64_t rebound_ms; /* nn_bind makes the file a moment later */
	char path[128], addr[160];
	struct stat st;

	snprintf(path, sizeof(path), "%s/r.ipc", sv.rundir);
	if (stat(path, &st) == 0 || (rebound_ms && now_ms() - rebound_ms < 1000))
		return 0;
	log_warn("%s is gone; making it again", path);
	if (mkdir(sv.rundir, 0700) < 0 && errno != EEXIST)
		return -errno;
	/*
	 * A second endpoint on the same path. The old one is not shut down: an
	 * ipc endpoint unlinks its path when it closes, which would remove the
	 * new file (its listener is harmless: nobody can reach it any more).
	 */
	snprintf(addr, sizeof(addr), "ipc://%s", path);
	if (nn_bind(results_sock, addr) < 0)
		return -nn_errno();
	rebound_ms = now_ms();
	return confgen_restore();
}

/* Open the slot's PUSH socket for a new worker generation. Returns 0 or -errno. */
static int slot_open_sock(struct slot *s)
{
	char addr[160];
	evutil_socket_t fd;
	size_t fdlen = sizeof(fd);
	int r;

	s->sock = nn_socket(AF_SP, NN_PUSH);
	if (s->sock < 0)
		return -nn_errno();
	slot_addr(s, addr, sizeof(addr), 1);
	if (nn_bind(s->sock, addr) < 0 ||
	    nn_getsockopt(s->sock, NN_SOL_SOCKET, NN_SNDFD, &fd, &fdlen) < 0) {
		r = -nn_errno();
		nn_close(s->sock);
		s->sock = -1;
		return r;
	}
	s->ev_snd = event_new(sv.base, fd, EV_READ | EV_PERSIST, on_sndfd, s);
	return 0;
}

/* Try again later; a start that failed is not the work's fault. */
static void slot_backoff(struct slot *s, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	s->state = SLOT_BACKOFF;
	s->rolling = 0;
	evtimer_add(s->ev_respawn, &tv);
}

static void slot_start(struct slot *s)
{
	char a_slot[16], a_gen[16], a_msg[24];
	struct confgen *cg = confgen_current();
	char *argv[] = {sv.exe,
	                "--worker",
	                a_slot,
	                a_gen,
	                sv.rundir,
	                a_msg,
	                cg->copy[0] ? cg->copy : "-",
	                cg->name ? (char *)cg->name : "-",
	                NULL,
	                NULL};
	struct timeval tv = {HANDSHAKE_TIMEOUT_MS / 1000, 0};
	pid_t pid;
	int r;

	if (stopping)
		return;
	s->gen++;
	if ((r = ensure_rundir()) < 0 || (r = slot_open_sock(s)) < 0) {
		log_error("cannot prepare worker %u: %s", s->index, strerror(-r));
		snprintf(last_start_failure, sizeof(last_start_failure),
		         "worker %u cannot be prepared: %s", s->index, strerror(-r));
		s->start_failures++;
		slot_close_sock(s);
		slot_backoff(s, BACKOFF_MAX_MS);
		return;
	}
	snprintf(a_slot, sizeof(a_slot), "%u", s->index);
	snprintf(a_gen, sizeof(a_gen), "%u", s->gen);
	snprintf(a_msg, sizeof(a_msg), "%zu", max_msg);
	if (sv.opt.verbose)
		argv[8] = "-v";
	pid = spawn_self(argv, NULL);
	if (pid < 0) {
		log_error("cannot start worker %u: %s", s->index, strerror(-pid));
		snprintf(last_start_failure, sizeof(last_start_failure),
		         "worker %u cannot be started: %s", s->index, strerror(-pid));
		s->start_failures++;
		slot_close_sock(s);
		slot_backoff(s, BACKOFF_MAX_MS);
		return;
	}
	s->pid = pid;
	s->state = SLOT_STARTING;
	s->retiring = 0;
	s->kill_code = PROTO_OK;
	s->items_this_worker = 0;
	s->cg = confgen_ref(cg);
	evtimer_add(s->ev_timer, &tv);
	metrics_worker_start();
	log_debug("worker %u started, pid %d (configuration %u)", s->index, (int)pid, cg->gen);
}

static void send_welcome(struct slot *s)
{
	struct wire_msg m = {
	    .type = WIRE_WELCOME, .slot = s->index, .gen = s->gen, .first_error = WIRE_NO_ERROR};

	wire_encode(&head, &m);
	if (nn_send(s->sock, head.data, head.len, NN_DONTWAIT) < 0)
		log_debug("welcome to worker %u not sent: %s", s->index, nn_strerror(nn_errno()));
}

static void slot_retire_if_due(struct slot *s)
{
	if (s->host || !sv.opt.max_tasks_per_worker ||
	    s->items_this_worker < sv.opt.max_tasks_per_worker || s->n_held || s->retiring)
		return;
	log_debug("worker %u retires after %llu items", s->index,
	          (unsigned long long)s->items_this_worker);
	s->retiring = 1;
	slot_terminate(s);
}

/* Take the tasks message msg_id carried out of s's held list, in order; how many. */
static int take_message(struct slot *s, uint64_t msg_id, struct task **ts)
{
	struct task *t, *next;
	int n = 0;

	for (t = TAILQ_FIRST(&s->held); t; t = next) {
		next = TAILQ_NEXT(t, slink);
		if (t->msg_id != msg_id)
			continue;
		TAILQ_REMOVE(&s->held, t, slink);
		s->n_held--;
		ts[n++] = t;
	}
	if (n)
		s->n_msgs--;
	return n;
}

static void handle_result(struct slot *s, const struct wire_msg *m, void *msg)
{
	struct task *ts[POOL_BUNDLE_MAX];
	int n = take_message(s, m->task_id, ts);

	if (!n) {
		log_debug("worker %u: dropping a result for task %llu (already answered)", s->index,
		          (unsigned long long)m->task_id);
		nn_freemsg(msg);
		return;
	}
	s->items_done += m->count;
	s->tasks_done++;
	metrics_task_time(now_ms() - ts[0]->sent_ms);
	s->crashes_in_row = 0;
	slot_arm_deadline(s);
	hooks->result(ts, n, m, msg);
	slot_retire_if_due(s);
	pool_roll();
}

static void on_results(evutil_socket_t fd, short ev, void *arg)
{
	int i;

	for (i = 0; i < RECV_BATCH; i++) {
		struct wire_msg m;
		struct slot *s;
		void *msg;
		int n = nn_recv(results_sock, &msg, NN_MSG, NN_DONTWAIT);

		if (n < 0) {
			if (nn_errno() == EINTR)
				continue;
			if (nn_errno() != EAGAIN)
				log_error("receiving results: %s", nn_strerror(nn_errno()));
			break;
		}
		if (wire_decode(msg, (size_t)n, &m) < 0 || m.slot >= (uint32_t)n_local ||
		    slots[m.slot].gen != m.gen || slots[m.slot].pid != (pid_t)m.pid) {
			log_debug("dropping a stale or malformed message (%d bytes)", n);
			nn_freemsg(msg);
			continue;
		}
		s = &slots[m.slot];
		switch (m.type) {
		case WIRE_HELLO:
			if (s->state == SLOT_STARTING)
				send_welcome(s);
			nn_freemsg(msg);
			break;
		case WIRE_READY:
			if (s->state == SLOT_STARTING) {
				s->state = SLOT_READY;
				s->start_failures = 0;
				s->rolling = 0;
				evtimer_del(s->ev_timer);
				log_debug("worker %u ready", s->index);
				pool_roll();
			}
			nn_freemsg(msg);
			break;
		case WIRE_RESULT:
			handle_result(s, &m, msg);
			break;
		default:
			nn_freemsg(msg);
		}
	}
	hooks->dispatch();
}

/* 1 when the worker of s knows fn: same configuration, or one with a function of that name. */
static int slot_knows(const struct slot *s, const struct fn_entry *fn)
{
	const struct conf *c = &s->cg->c;

	if (!fn || (fn >= c->fns && fn < c->fns + c->n_fns))
		return 1;
	return conf_find(c, fn->name, strlen(fn->name)) != NULL;
}

/* 1 when s cannot send now: its socket's buffer is full (a send waits for room). */
static int slot_blocked(const struct slot *s)
{
	return s->host ? !hosts_can_send(s->host) : event_pending(s->ev_snd, EV_READ, NULL);
}

/*
 * Idle slots first (local workers before hosts); then the host with the
 * most free credit, so that work spreads over hosts rather than queueing on one.
 */
int pool_pick(const struct fn_entry *fn)
{
	int i, best = -1;
	uint32_t best_free = 0;

	for (i = 0; i < n_slots; i++) {
		struct slot *s = &slots[i];

		if (s->state != SLOT_READY || s->retiring || s->kill_code ||
		    s->n_msgs >= s->credit || slot_blocked(s) || !slot_knows(s, fn))
			continue;
		if (!s->host && sv.opt.max_tasks_per_worker &&
		    s->items_this_worker >= sv.opt.max_tasks_per_worker)
			continue;
		if (s->n_msgs == 0)
			return i;
		if (s->credit - s->n_msgs > best_free) {
			best = i;
			best_free = s->credit - s->n_msgs;
		}
	}
	return best;
}

int pool_unavailable(char *why, size_t n)
{
	int i;

	for (i = 0; i < n_slots; i++)
		if (slots[i].state == SLOT_READY ||
		    (i < n_local && slots[i].start_failures < START_FAILURES_UNAVAILABLE))
			return 0;
	snprintf(why, n, "no worker can start (%s)",
	         last_start_failure[0] ? last_start_failure : "every start failed");
	return n_local > 0;
}

int pool_send(int idx, struct task **ts, int n)
{
	struct slot *s = &slots[idx];
	struct task *t = ts[0];
	struct wire_msg m = {.type = WIRE_TASK,
	                     .slot = s->index,
	                     .gen = s->gen,
	                     .first_error = WIRE_NO_ERROR,
	                     .task_id = t->id,
	                     .attempt = t->attempts,
	                     /* in a bundle each task's fail mode is applied here, not there */
	                     .flags = n > 1 ? t->flags & ~WIRE_FAIL_FAST : t->flags,
	                     .timeout_ms = t->timeout_ms,
	                     .budget_ms =
	                         t->budget_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)t->budget_ms,
	                     .fn = t->fn->name,
	                     .fn_len = strlen(t->fn->name)};
	struct nn_iovec iov[2 + 2 * POOL_BUNDLE_MAX];
	struct nn_msghdr hdr = {.msg_iov = iov};
	uint64_t now = now_ms();
	int i, k = 1;

	for (i = 0; i < n; i++) {
		m.count += ts[i]->count;
		iov[k].iov_base = i ? "," : "[";
		iov[k++].iov_len = 1;
		iov[k].iov_base = (void *)ts[i]->items.p;
		iov[k++].iov_len = ts[i]->items.len;
	}
	iov[k].iov_base = "]";
	iov[k++].iov_len = 1;
	hdr.msg_iovlen = k;
	wire_encode_head(&head, &m);
	iov[0].iov_base = head.data;
	iov[0].iov_len = head.len;
	if (s->host) {
		if (hosts_send_task(s->host, iov, k) < 0)
			return -EAGAIN;
	} else if (nn_sendmsg(s->sock, &hdr, NN_DONTWAIT) < 0) {
		int e = nn_errno();

		if (e != EAGAIN)
			log_warn("sending to worker %u: %s", s->index, nn_strerror(e));
		event_add(s->ev_snd, NULL);
		return -EAGAIN;
	}
	for (i = 0; i < n; i++) {
		ts[i]->slot = idx;
		ts[i]->sent_ms = now;
		ts[i]->msg_id = t->id;
		TAILQ_INSERT_TAIL(&s->held, ts[i], slink);
		s->n_held++;
	}
	s->items_this_worker += m.count;
	if (++s->n_msgs == 1)
		slot_arm_deadline(s);
	return 0;
}

static void describe_exit(const struct slot *s, int status, char *why, size_t n)
{
	if (WIFSIGNALED(status))
		snprintf(why, n, "worker %u (pid %d) was killed by signal %d (SIG%s)", s->index,
		         (int)s->pid, WTERMSIG(status), sigabbrev_np(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == WORKER_EXIT_PROGRAM)
		snprintf(why, n, "worker %u (pid %d): its worker program failed (see the log)",
		         s->index, (int)s->pid);
	else if (WEXITSTATUS(status) == WORKER_EXIT_CONFIG)
		snprintf(why, n, "worker %u (pid %d) could not load its functions (see the log)",
		         s->index, (int)s->pid);
	else
		snprintf(why, n, "worker %u (pid %d) exited with status %d", s->index, (int)s->pid,
		         WEXITSTATUS(status));
}

/* 1 when the worker died by its own fault, not killed from outside (operator, OOM killer). */
static int crashed(const struct slot *s, int status)
{
	return s->kill_code == PROTO_TIMEOUT || !WIFSIGNALED(status) ||
	       (WTERMSIG(status) != SIGKILL && WTERMSIG(status) != SIGTERM);
}

static enum metrics_death death_cause(const struct slot *s, int status, int planned,
                                      int was_starting)
{
	if (planned)
		return DEATH_RETIRED;
	if (was_starting)
		return DEATH_START;
	if (s->kill_code == PROTO_TIMEOUT)
		return DEATH_TIMEOUT;
	if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_PROGRAM)
		return DEATH_PROGRAM;
	return crashed(s, status) ? DEATH_CRASH : DEATH_KILLED;
}

/* When the slot starts again: at once, or after a backoff for a worker that cannot start. */
static void slot_restart(struct slot *s)
{
	uint32_t n = s->start_failures > s->crashes_in_row ? s->start_failures : s->crashes_in_row;
	uint64_t ms;

	if (n <= 1) {
		slot_start(s);
		return;
	}
	ms = (uint64_t)BACKOFF_MIN_MS << (n - 2 > 10 ? 10 : n - 2);
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	slot_backoff(s, ms);
	log_info("worker %u restarts in %llu ms (failure %u in a row)", s->index,
	         (unsigned long long)ms, n);
}

static void slot_exited(struct slot *s, int status)
{
	char why[160];
	struct task *t, *head_task = TAILQ_FIRST(&s->held);
	uint64_t head_msg;
	int alone;
	int planned = s->retiring || stopping, was_starting = s->state == SLOT_STARTING;
	int crash = !planned && crashed(s, status);
	enum proto_code code = s->kill_code == PROTO_TIMEOUT ? PROTO_TIMEOUT : PROTO_WORKER_DIED;

	if (code == PROTO_TIMEOUT && head_task)
		snprintf(why, sizeof(why), "ran past timeout_ms (%u ms per item) on worker %u",
		         head_task->timeout_ms, s->index);
	else
		describe_exit(s, status, why, sizeof(why));
	if (planned)
		log_debug("%s", why);
	else
		log_warn("%s", why);
	metrics_worker_death(death_cause(s, status, planned, was_starting));
	evtimer_del(s->ev_timer);
	evtimer_del(s->ev_kill);
	slot_close_sock(s);
	confgen_unref(s->cg);
	s->cg = NULL;
	s->pid = 0;
	s->state = SLOT_STOPPED;
	/*
	 * Only the message the worker was running is charged. A message that
	 * carried several requests' tasks is charged to none of them: each goes
	 * back alone, so that a poison item is charged alone and nobody else's.
	 */
	alone = head_task && TAILQ_NEXT(head_task, slink) &&
	        TAILQ_NEXT(head_task, slink)->msg_id == head_task->msg_id;
	head_msg = head_task ? head_task->msg_id : 0; /* head_task may be freed below */
	while ((t = TAILQ_FIRST(&s->held))) {
		int running = head_task && t->msg_id == head_msg;

		TAILQ_REMOVE(&s->held, t, slink);
		s->n_held--;
		t->alone |= running && alone;
		hooks->lost(t,
		            !running || alone || s->retiring ? LOST_FREE
		            : crash                          ? LOST_CRASH
		                                             : LOST_CHARGE,
		            code, why);
	}
	s->n_msgs = 0;
	if (stopping)
		return;
	if (!planned)
		s->restarts++;
	/*
	 * A worker that dies while running a task is replaced at once: the blame
	 * goes to the task (charged, and its request throttled), not to the
	 * slot, so one client's poison items never leave the others without
	 * workers. A worker that cannot even start, or dies idle, backs off.
	 */
	if (was_starting)
		s->rolling = 0;
	/*
	 * Only a start that failed by itself counts towards "no worker can start":
	 * a worker killed from outside while it starts (an operator, a test's
	 * chaos) says nothing about the next one.
	 */
	if (was_starting && crash) {
		s->start_failures++;
		snprintf(last_start_failure, sizeof(last_start_failure), "%s before its handshake",
		         why);
	} else if (crash && !head_task) {
		s->crashes_in_row++;
	} else {
		s->crashes_in_row = 0;
	}
	slot_restart(s);
}

/*
 * After a reload: replace one worker of an older configuration at a time,
 * when it is idle. The last worker of a generation that requests still use
 * stays until they end, so a function a reload removed answers its requests
 * in flight.
 */
void pool_roll(void)
{
	struct confgen *cur = confgen_current();
	int i, j, others;

	if (stopping || !cur)
		return;
	for (i = 0; i < n_slots; i++)
		if (slots[i].rolling)
			return;
	for (i = 0; i < n_slots; i++) {
		struct slot *s = &slots[i];

		if (s->host || s->state != SLOT_READY || !s->cg || s->cg == cur || s->n_held ||
		    s->retiring)
			continue;
		for (others = 0, j = 0; j < n_slots; j++)
			others += j != i && slots[j].cg == s->cg;
		if (!others && confgen_in_use(s->cg))
			continue;
		log_debug("worker %u: replacing it for configuration %u", s->index, cur->gen);
		s->rolling = 1;
		s->retiring = 1;
		slot_terminate(s);
		return;
	}
}

void pool_reap(void)
{
	pid_t pid;
	int status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < n_slots; i++)
			if (slots[i].pid == pid)
				break;
		if (i < n_slots)
			slot_exited(&slots[i], status);
	}
	hooks->dispatch();
	hooks->reaped();
}

int pool_init(void)
{
	char addr[160];
	evutil_socket_t fd;
	size_t fdlen = sizeof(fd);
	int i, max;

	max_msg = sv.opt.max_line + 65536;
	max = (int)max_msg;
	results_sock = nn_socket(AF_SP, NN_PULL);
	snprintf(addr, sizeof(addr), "ipc://%s/r.ipc", sv.rundir);
	if (results_sock < 0 ||
	    nn_setsockopt(results_sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)) < 0 ||
	    nn_bind(results_sock, addr) < 0 ||
	    nn_getsockopt(results_sock, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdlen) < 0) {
		log_error("result socket %s: %s", addr, nn_strerror(nn_errno()));
		return -EIO;
	}
	ev_results = event_new(sv.base, fd, EV_READ | EV_PERSIST, on_results, NULL);
	n_local = sv.opt.workers;
	max = n_local + (sv.opt.hosts ? POOL_MAX_HOSTS : 0);
	slots = xcalloc((size_t)max, sizeof(*slots));
	event_add(ev_results, NULL);
	for (i = 0; i < max; i++) {
		struct slot *s = &slots[i];

		s->index = (uint32_t)i;
		s->sock = -1;
		s->credit = POOL_CREDIT;
		TAILQ_INIT(&s->held);
		s->ev_timer = evtimer_new(sv.base, on_slot_timer, s);
		s->ev_kill = evtimer_new(sv.base, on_kill_timer, s);
		s->ev_respawn = evtimer_new(sv.base, on_respawn, s);
		n_slots = i + 1;
		if (i < n_local)
			slot_start(s);
	}
	return 0;
}

void pool_stop(void)
{
	int i;

	stopping = 1;
	for (i = 0; i < n_slots; i++) {
		evtimer_del(slots[i].ev_respawn);
		if (slots[i].pid > 0) {
			slots[i].retiring = 1;
			slot_terminate(&slots[i]);
		}
	}
}

int pool_all_exited(void)
{
	int i;

	for (i = 0; i < n_slots; i++)
		if (slots[i].pid > 0)
			return 0;
	return 1;
}

void pool_free(void)
{
	int i;
	char path[128];

	stopping = 1;
	for (i = 0; i < n_slots; i++) {
		struct slot *s = &slots[i];
		struct task *t;

		if (s->pid > 0) {
			slot_kill(s, SIGKILL);
			waitpid(s->pid, NULL, 0);
		}
		while ((t = TAILQ_FIRST(&s->held))) {
			TAILQ_REMOVE(&s->held, t, slink);
			hooks->lost(t, LOST_FREE, PROTO_SHUTTING_DOWN, "the daemon stopped");
		}
		slot_close_sock(s);
		confgen_unref(s->cg);
		s->cg = NULL;
		event_free(s->ev_timer);
		event_free(s->ev_kill);
		event_free(s->ev_respawn);
	}
	free(slots);
	slots = NULL;
	n_slots = 0;
	if (ev_results)
		event_free(ev_results);
	if (results_sock >= 0)
		nn_close(results_sock);
	snprintf(path, sizeof(path), "%s/r.ipc", sv.rundir);
	unlink(path);
	buf_free(&head);
}

void pool_status(struct buf *b)
{
	int i;

	buf_adds(b, "[");
	for (i = 0; i < n_local; i++) {
		const struct slot *s = &slots[i];
		const char *state = state_names[s->state];

		if (s->state == SLOT_READY)
			state = s->n_held ? "busy" : "idle";
		buf_printf(b,
		           "%s{\"slot\":%d,\"pid\":%d,\"state\":\"%s\",\"tasks_held\":%u,"
		           "\"tasks_done\":%llu,\"items_done\":%llu,\"restarts\":%llu,"
		           "\"config\":%u}",
		           i ? "," : "", i, (int)s->pid, state, s->n_held,
		           (unsigned long long)s->tasks_done, (unsigned long long)s->items_done,
		           (unsigned long long)s->restarts, s->cg ? s->cg->gen : 0);
	}
	buf_adds(b, "]");
}

void pool_counts(struct pool_counts *pc)
{
	int i;

	memset(pc, 0, sizeof(*pc));
	for (i = 0; i < n_local; i++) {
		const struct slot *s = &slots[i];

		if (s->state == SLOT_READY && s->n_held)
			pc->busy++;
		else if (s->state == SLOT_READY)
			pc->idle++;
		else if (s->state == SLOT_STARTING)
			pc->starting++;
		else
			pc->backoff++;
	}
}

int pool_size(void)
{
	return n_slots;
}

struct task *pool_running(int i)
{
	return i >= 0 && i < n_slots ? TAILQ_FIRST(&slots[i].held) : NULL;
}

/* ------------------------------------------------------------ remote slots */

int pool_host_add(struct host *h, uint32_t workers, struct confgen *cg)
{
	int i;

	for (i = n_local; i < n_slots; i++) {
		struct slot *s = &slots[i];

		if (s->host)
			continue;
		s->host = h;
		s->gen++;
		s->credit = workers;
		s->state = SLOT_STARTING;
		s->cg = confgen_ref(cg);
		s->items_done = s->tasks_done = 0;
		return i;
	}
	return -1;
}

void pool_host_ready(int slot)
{
	slots[slot].state = SLOT_READY;
}

void pool_host_result(int slot, const struct wire_msg *m, void *msg)
{
	handle_result(&slots[slot], m, msg);
}

/*
 * The message msg_id of remote slot s is lost: charged as a local death
 * charges the message its worker ran (a bundle's tasks go back alone, free).
 */
static void host_lose_message(struct slot *s, uint64_t msg_id, enum lost_charge charge,
                              enum proto_code code, const char *why)
{
	struct task *ts[POOL_BUNDLE_MAX];
	int i, n = take_message(s, msg_id, ts);

	for (i = 0; i < n; i++) {
		ts[i]->alone |= n > 1;
		hooks->lost(ts[i], n > 1 ? LOST_FREE : charge, code, why);
	}
}

void pool_host_lost(int slot, uint64_t msg_id, enum lost_charge charge, enum proto_code code,
                    const char *why)
{
	host_lose_message(&slots[slot], msg_id, charge, code, why);
}

void pool_host_reconcile(int slot, const unsigned char *ids, size_t n, uint64_t sent_before)
{
	struct slot *s = &slots[slot];
	struct task *t, *next;
	size_t i;

	for (t = TAILQ_FIRST(&s->held); t; t = next) {
		uint64_t id = t->msg_id;

		next = TAILQ_NEXT(t, slink);
		if (t->sent_ms >= sent_before)
			continue;
		for (i = 0; i < n; i++) {
			uint64_t v = 0;
			int b;

			for (b = 7; b >= 0; b--)
				v = v << 8 | ids[i * 8 + (size_t)b];
			if (v == id)
				break;
		}
		if (i < n)
			continue;
		log_warn("host slot %d: message %llu never arrived or its answer was lost; "
		         "sending it again",
		         slot, (unsigned long long)id);
		while (next && next->msg_id == id)
			next = TAILQ_NEXT(next, slink);
		host_lose_message(s, id, LOST_FREE, PROTO_WORKER_DIED, "lost on the network");
	}
}

void pool_host_remove(int slot, const char *why)
{
	struct slot *s = &slots[slot];
	struct task *t;

	while ((t = TAILQ_FIRST(&s->held)))
		host_lose_message(s, t->msg_id, LOST_CHARGE, PROTO_WORKER_DIED, why);
	s->n_msgs = 0;
	s->host = NULL;
	s->state = SLOT_STOPPED;
	confgen_unref(s->cg);
	s->cg = NULL;
	hooks->dispatch();
}

void pool_host_counts(int slot, uint32_t *held, uint64_t *items_done)
{
	*held = slots[slot].n_held;
	*items_done = slots[slot].items_done;
}
