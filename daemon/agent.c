/* agent.c - poold --join: a host agent runs its own workers for a remote supervisor */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "confgen.h"
#include "hosts.h"
#include "ledger.h"
#include "log.h"
#include "pool.h"
#include "seal.h"
#include "spawn.h"
#include "xalloc.h"

#define RECV_BATCH 256
#define JOIN_EVERY_MS 200
#define REFUSED_JOIN_EVERY_MS 5000
#define SEND_TIMEOUT_MS 1000
#define DROP_LOG_MS 10000

enum agent_state { JOINING, JOINED, REFUSED };

static struct {
	enum agent_state state;
	uint64_t session;     /* our sender id for this join (new after each loss) */
	uint64_t sup_session; /* the supervisor's, learnt from its accept */
	struct seal_window win;
	uint64_t seq_out;
	uint64_t last_heard_ms;
	uint64_t last_join_ms;
	unsigned char key[SEAL_KEY_BYTES];
	char endpoint[128];
	char hash[33];
	int pull, push;
	struct event *ev_pull, *ev_tick, *ev_sigterm, *ev_sigint, *ev_sigchld;
	struct task_list queue; /* tasks waiting for an idle worker (qlink) */
	struct task_list all;   /* every task the agent holds (rlink) */
	struct buf plain, sealed;
	uint64_t drop_log_ms;
	int stopping;
} a;

/* Seal a.plain and send it to the supervisor (bounded wait; a lost one is found by heartbeats). */
static void send_plain(void)
{
	struct seal_hdr sh = {.sender = a.session, .dest = a.sup_session, .seq = ++a.seq_out};

	buf_reset(&a.sealed);
	buf_reserve(&a.sealed, a.plain.len + SEAL_OVERHEAD);
	seal_box(a.key, &sh, a.plain.data, a.plain.len, (unsigned char *)a.sealed.data);
	a.sealed.len = a.plain.len + SEAL_OVERHEAD;
	if (nn_send(a.push, a.sealed.data, a.sealed.len, 0) < 0)
		log_debug("to the supervisor: %s", nn_strerror(nn_errno()));
}

static void send_msg(struct wire_msg *m)
{
	m->first_error = m->type == WIRE_RESULT ? m->first_error : WIRE_NO_ERROR;
	wire_encode(&a.plain, m);
	send_plain();
}

static void send_join(void)
{
	struct buf p = {0};
	struct wire_msg m = {.type = WIRE_JOIN,
	                     .count = (uint32_t)sv.opt.workers,
	                     .fn = a.endpoint,
	                     .fn_len = strlen(a.endpoint)};

	buf_printf(&p, "{\"hash\":\"%s\",\"functions\":%zu}", a.hash, confgen_current()->c.n_fns);
	m.payload = p.data;
	m.payload_len = p.len;
	a.last_join_ms = now_ms();
	send_msg(&m);
	buf_free(&p);
}

/* The ids of every task held, for the supervisor to find messages lost on the way. */
static void send_beat(void)
{
	struct buf ids = {0};
	struct wire_msg m = {.type = WIRE_BEAT};
	struct task *t;

	TAILQ_FOREACH(t, &a.all, rlink)
	{
		unsigned char le[8];
		int i;

		for (i = 0; i < 8; i++)
			le[i] = (unsigned char)(t->id >> (8 * i));
		buf_add(&ids, le, sizeof(le));
	}
	m.count = (uint32_t)(ids.len / 8);
	m.payload = ids.data;
	m.payload_len = ids.len;
	send_msg(&m);
	buf_free(&ids);
}

static void task_free(struct task *t)
{
	TAILQ_REMOVE(&a.all, t, rlink);
	if (t->msg)
		nn_freemsg(t->msg);
	free(t);
}

static void agent_dispatch(void)
{
	struct task *t;
	int s;

	while ((t = TAILQ_FIRST(&a.queue)) && (s = pool_pick(t->fn)) >= 0) {
		if (pool_send(s, &t, 1) < 0)
			break;
		TAILQ_REMOVE(&a.queue, t, qlink);
		t->state = TASK_SENT;
	}
}

/* A local worker answered: the result goes to the supervisor as it came. */
static void on_result(struct task **ts, int n, const struct wire_msg *m, void *msg)
{
	struct task *t = ts[0];

	if (a.state == JOINED) {
		buf_reset(&a.plain);
		buf_add(&a.plain, msg, (size_t)(m->payload - (const char *)msg) + m->payload_len);
		send_plain();
	}
	nn_freemsg(msg);
	task_free(t);
}

/* A local worker died holding t: the supervisor charges it as it charges its own. */
static void on_lost(struct task *t, enum lost_charge charge, enum proto_code code, const char *why)
{
	struct wire_msg m = {.type = WIRE_LOST,
	                     .task_id = t->id,
	                     .flags = (uint16_t)charge,
	                     .attempt = (uint32_t)code,
	                     .payload = why,
	                     .payload_len = strlen(why)};

	if (t->state == TASK_QUEUED)
		TAILQ_REMOVE(&a.queue, t, qlink);
	if (a.state == JOINED)
		send_msg(&m);
	task_free(t);
}

static void on_reaped(void)
{
	if (a.stopping && pool_all_exited())
		event_base_loopbreak(sv.base);
}

static const struct pool_hooks agent_hooks = {
    .result = on_result,
    .lost = on_lost,
    .dispatch = agent_dispatch,
    .reaped = on_reaped,
};

/* A task message from the supervisor: queued as one task for one local worker. */
static void take_task(const struct wire_msg *m, void *pt)
{
	const struct fn_entry *fn = conf_find(&confgen_current()->c, m->fn, m->fn_len);
	struct task *t;

	if (!fn || m->payload_len < 2 || m->count == 0) {
		struct wire_msg l = {.type = WIRE_LOST,
		                     .task_id = m->task_id,
		                     .flags = LOST_CHARGE,
		                     .attempt = PROTO_UNKNOWN_FUNCTION,
		                     .payload = "no such function on this host",
		                     .payload_len = 29};

		send_msg(&l);
		nn_freemsg(pt);
		return;
	}
	t = xcalloc(1, sizeof(*t));
	t->id = m->task_id;
	t->fn = fn;
	t->count = m->count;
	t->attempts = m->attempt;
	t->flags = m->flags;
	t->timeout_ms = m->timeout_ms;
	t->budget_ms = m->budget_ms;
	t->items.p = m->payload + 1;
	t->items.len = m->payload_len - 2;
	t->slot = -1;
	t->state = TASK_QUEUED;
	t->msg = pt;
	t->msg_is_nn = 1;
	TAILQ_INSERT_TAIL(&a.all, t, rlink);
	TAILQ_INSERT_TAIL(&a.queue, t, qlink);
}

/* Back to joining under a new session: what waits is dropped (the supervisor retries it). */
static void rejoin(void)
{
	struct task *t;

	while ((t = TAILQ_FIRST(&a.queue))) {
		TAILQ_REMOVE(&a.queue, t, qlink);
		task_free(t);
	}
	a.state = JOINING;
	a.session = seal_session_id();
	a.sup_session = 0;
	a.seq_out = 0;
	memset(&a.win, 0, sizeof(a.win));
	send_join();
}

static void handle(const struct seal_hdr *sh, const struct wire_msg *m, void *pt)
{
	if (m->type == WIRE_ACCEPT && a.state == JOINING) {
		a.state = JOINED;
		a.sup_session = sh->sender;
		memset(&a.win, 0, sizeof(a.win));
		seal_window_accept(&a.win, sh->seq);
		a.last_heard_ms = now_ms();
		log_info("joined the supervisor at %s as generation %u", sv.opt.join, m->gen);
		send_msg(&(struct wire_msg){.type = WIRE_READY});
		nn_freemsg(pt);
		return;
	}
	if (m->type == WIRE_REFUSE && a.state == JOINING) {
		log_warn("the supervisor at %s refused this host: %.*s", sv.opt.join,
		         (int)(m->payload_len > 200 ? 200 : m->payload_len), m->payload);
		a.state = REFUSED;
		nn_freemsg(pt);
		return;
	}
	if (a.state != JOINED || sh->sender != a.sup_session ||
	    !seal_window_accept(&a.win, sh->seq)) {
		nn_freemsg(pt);
		return;
	}
	a.last_heard_ms = now_ms();
	if (m->type == WIRE_TASK) {
		take_task(m, pt);
		return;
	}
	if (m->type == WIRE_ACCEPT)
		send_msg(&(struct wire_msg){.type = WIRE_READY});
	nn_freemsg(pt);
}

static void drop(const char *why, int n)
{
	uint64_t now = now_ms();

	if (a.drop_log_ms && now - a.drop_log_ms < DROP_LOG_MS)
		return;
	a.drop_log_ms = now;
	log_warn("task endpoint: dropped a message (%s, %d bytes)", why, n);
}

static void on_pull(evutil_socket_t fd, short ev, void *arg)
{
	int i;

	for (i = 0; i < RECV_BATCH; i++) {
		struct seal_hdr sh;
		struct wire_msg m;
		void *msg, *pt;
		int n = nn_recv(a.pull, &msg, NN_MSG, NN_DONTWAIT);

		if (n < 0) {
			if (nn_errno() == EINTR)
				continue;
			if (nn_errno() != EAGAIN)
				log_error("task endpoint: %s", nn_strerror(nn_errno()));
			break;
		}
		if (n < SEAL_OVERHEAD + WIRE_HDR_SIZE) {
			drop("too short to be sealed", n);
			nn_freemsg(msg);
			continue;
		}
		pt = nn_allocmsg((size_t)n - SEAL_OVERHEAD, 0);
		if (!pt)
			fatal("out of memory");
		if (seal_open(a.key, msg, (size_t)n, &sh, pt) < 0 || sh.dest != a.session ||
		    wire_decode(pt, (size_t)n - SEAL_OVERHEAD, &m) < 0) {
			drop("not sealed for this host's session", n);
			nn_freemsg(pt);
		} else {
			handle(&sh, &m, pt);
		}
		nn_freemsg(msg);
	}
	agent_dispatch();
}

/* Every host_timeout_ms/4: join (again), or beat; a supervisor silent too long is lost. */
static void on_tick(evutil_socket_t fd, short ev, void *arg)
{
	uint64_t now = now_ms();

	if (a.stopping)
		return;
	if (a.state == JOINED && now - a.last_heard_ms > sv.opt.host_timeout_ms) {
		log_warn("the supervisor at %s was silent for %llu ms; joining again", sv.opt.join,
		         (unsigned long long)(now - a.last_heard_ms));
		rejoin();
		return;
	}
	if (a.state == JOINED)
		send_beat();
	else if (now - a.last_join_ms >=
	         (a.state == JOINING ? JOIN_EVERY_MS : REFUSED_JOIN_EVERY_MS))
		send_join();
}

static void on_signal(evutil_socket_t sig, short ev, void *arg)
{
	if (sig == SIGCHLD) {
		pool_reap();
		return;
	}
	if (a.stopping)
		return;
	log_info("got SIG%s; stopping", sigabbrev_np((int)sig));
	a.stopping = 1;
	pool_stop();
	on_reaped();
}

/*
 * The task endpoint when none is given: the address this host uses to reach
 * the supervisor (a UDP connect sends nothing, it only picks the route), on
 * the supervisor's port + 1.
 */
static int default_endpoint(const char *join, char *out, size_t n)
{
	char host[128], port[8], addr[INET6_ADDRSTRLEN];
	const char *hp = join + 6, *colon = strrchr(hp, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, ok;

	if (!colon || (size_t)(colon - hp) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
	     getsockname(fd, (struct sockaddr *)&ss, &sl) == 0;
	freeaddrinfo(ai);
	if (fd >= 0)
		close(fd);
	if (!ok)
		return -1;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
	snprintf(out, n, ss.ss_family == AF_INET ? "tcp://%s:%d" : "tcp://[%s]:%d", addr,
	         atoi(port) + 1);
	return 0;
}

/* The sockets: PULL bound at the task endpoint, PUSH to the supervisor. 0 or -1. */
static int open_sockets(void)
{
	int max = (int)(pool_max_msg() + SEAL_OVERHEAD), tmo = SEND_TIMEOUT_MS;
	evutil_socket_t fd;
	size_t fdlen = sizeof(fd);

	a.pull = nn_socket(AF_SP, NN_PULL);
	a.push = nn_socket(AF_SP, NN_PUSH);
	if (a.pull < 0 || a.push < 0 ||
	    nn_setsockopt(a.pull, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)) < 0 ||
	    nn_setsockopt(a.push, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof(tmo)) < 0 ||
	    nn_bind(a.pull, a.endpoint) < 0) {
		log_error("task endpoint %s: %s", a.endpoint, nn_strerror(nn_errno()));
		return -1;
	}
	if (nn_connect(a.push, sv.opt.join) < 0 ||
	    nn_getsockopt(a.pull, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdlen) < 0) {
		log_error("join %s: %s", sv.opt.join, nn_strerror(nn_errno()));
		return -1;
	}
	a.ev_pull = event_new(sv.base, fd, EV_READ | EV_PERSIST, on_pull, NULL);
	event_add(a.ev_pull, NULL);
	return 0;
}

static void events_init(void)
{
	struct timeval tv = {0, 0};
	uint32_t tick = sv.opt.host_timeout_ms / 4;

	if (tick > JOIN_EVERY_MS)
		tick = JOIN_EVERY_MS;
	tv.tv_sec = tick / 1000;
	tv.tv_usec = (suseconds_t)(tick % 1000) * 1000;
	a.ev_tick = event_new(sv.base, -1, EV_PERSIST, on_tick, NULL);
	event_add(a.ev_tick, &tv);
	a.ev_sigterm = evsignal_new(sv.base, SIGTERM, on_signal, NULL);
	a.ev_sigint = evsignal_new(sv.base, SIGINT, on_signal, NULL);
	a.ev_sigchld = evsignal_new(sv.base, SIGCHLD, on_signal, NULL);
	event_add(a.ev_sigterm, NULL);
	event_add(a.ev_sigint, NULL);
	event_add(a.ev_sigchld, NULL);
}

/* The private directory of the local workers' ipc endpoints. */
static void make_rundir(void)
{
	const char *base = getenv("RUNTIME_DIRECTORY"), *tmp = getenv("TMPDIR");

	if (!base || !*base || strlen(base) > 40)
		base = tmp && *tmp && strlen(tmp) <= 40 ? tmp : "/tmp";
	snprintf(sv.rundir, sizeof(sv.rundir), "%s/poold-host.XXXXXX", base);
	if (!mkdtemp(sv.rundir))
		fatal("cannot make a runtime directory in %s: %s", base, strerror(errno));
}

static void remove_rundir(void)
{
	char path[sizeof(sv.rundir) + 16];

	snprintf(path, sizeof(path), "%s/r.ipc", sv.rundir);
	unlink(path);
	if (rmdir(sv.rundir) < 0)
		log_warn("cannot remove %s: %s", sv.rundir, strerror(errno));
}

int agent_main(const struct options *opt)
{
	char err[300];
	struct task *t;
	int r;

	supervisor_init(opt, "host");
	TAILQ_INIT(&a.queue);
	TAILQ_INIT(&a.all);
	if (strncmp(opt->join, "tcp://", 6) != 0)
		fatal("join %s: a host joins its supervisor at tcp://ADDR:PORT", opt->join);
	if (!opt->cluster_key)
		fatal("join: a cluster key is needed (cluster_key, made by poold --keygen)");
	if (seal_init() < 0 || seal_key_load(opt->cluster_key, a.key, err, sizeof(err)) < 0)
		fatal("cluster key: %s", err);
	if (opt->host_endpoint)
		snprintf(a.endpoint, sizeof(a.endpoint), "%s", opt->host_endpoint);
	else if (default_endpoint(opt->join, a.endpoint, sizeof(a.endpoint)) < 0)
		fatal("cannot tell this host's address toward %s: give host_endpoint", opt->join);
	if (strncmp(a.endpoint, "tcp://", 6) != 0)
		fatal("host_endpoint %s: a tcp://ADDR:PORT the supervisor can reach", a.endpoint);
	unsetenv("NOTIFY_SOCKET");
	signal(SIGPIPE, SIG_IGN);
	sv.base = event_base_new();
	if (!sv.base)
		fatal("event_base_new failed");
	if ((r = spawn_self_open()) < 0)
		fatal("cannot open /proc/self/exe: %s", strerror(-r));
	make_rundir();
	if (confgen_init(opt->conf) < 0) {
		remove_rundir();
		fatal("the configuration has problems (above)");
	}
	hosts_conf_hash(&confgen_current()->c, a.hash);
	pool_set_hooks(&agent_hooks);
	if ((r = pool_init()) < 0)
		fatal("cannot start the pool: %s", strerror(-r));
	if (open_sockets() < 0) {
		pool_free();
		confgen_free();
		remove_rundir();
		return 1;
	}
	events_init();
	a.session = seal_session_id();
	send_join();
	log_info("joining %s with %d workers; tasks come to %s", opt->join, opt->workers,
	         a.endpoint);
	event_base_dispatch(sv.base);

	pool_free();
	while ((t = TAILQ_FIRST(&a.queue))) {
		TAILQ_REMOVE(&a.queue, t, qlink);
		task_free(t);
	}
	confgen_free();
	remove_rundir();
	spawn_self_close();
	event_free(a.ev_pull);
	event_free(a.ev_tick);
	event_free(a.ev_sigterm);
	event_free(a.ev_sigint);
	event_free(a.ev_sigchld);
	nn_close(a.pull);
	nn_close(a.push);
	event_base_free(sv.base);
	sodium_memzero(a.key, sizeof(a.key));
	buf_free(&a.plain);
	buf_free(&a.sealed);
	log_info("stopped");
	return 0;
}
