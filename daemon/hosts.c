/* hosts.c - the supervisor's side of worker hosts: joins, heartbeats and results over sealed tcp */
#include "hosts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <nanomsg/pipeline.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confgen.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "seal.h"
#include "supervisor.h"
#include "wire.h"
#include "xalloc.h"

#define RECV_BATCH 256
#define ENDPOINT_MAX 128
#define RETIRED_MAX 16
#define DROP_LOG_MS 10000

enum host_state { HOST_FREE, HOST_JOINING, HOST_READY, HOST_REFUSED, HOST_LOST };

static const char *const host_state_names[] = {
    [HOST_FREE] = "free",       [HOST_JOINING] = "joining", [HOST_READY] = "ready",
    [HOST_REFUSED] = "refused", [HOST_LOST] = "lost",
};

struct host {
	char endpoint[ENDPOINT_MAX]; /* its task endpoint, as its join named it */
	enum host_state state;
	uint64_t session;       /* the sender id of its current join */
	struct seal_window win; /* sequences seen from that session */
	uint32_t gen;           /* joins of this endpoint accepted so far */
	uint32_t workers;
	int slot;             /* its remote pool slot, -1 when none */
	int push;             /* nanomsg PUSH connected to its endpoint, -1 when none */
	struct event *ev_snd; /* armed while a task waits for room in push */
	uint64_t last_heard_ms;
};

static struct host hosts[POOL_MAX_HOSTS];
static int pull = -1;
static struct event *ev_pull, *ev_beat;
static unsigned char key[SEAL_KEY_BYTES];
static uint64_t session, seq_out;
static uint64_t retired[RETIRED_MAX]; /* sessions of lost or replaced generations */
static unsigned n_retired;
static struct buf plain, sealed;
static uint64_t drop_log_ms, drops_unlogged;

int hosts_conf_hash(const struct conf *c, char out[33])
{
	unsigned char h[16];
	struct buf b = {0};

	if (conf_json(c, &b) < 0)
		return -ENOMEM;
	crypto_generichash(h, sizeof(h), (const unsigned char *)b.data, b.len, NULL, 0);
	sodium_bin2hex(out, 33, h, sizeof(h));
	buf_free(&b);
	return 0;
}

/* A message on the hosts port was refused: counted, and logged at most every 10 s. */
static void drop(const char *why, int len)
{
	uint64_t now = now_ms();

	metrics_sealed_drop();
	if (drop_log_ms && now - drop_log_ms < DROP_LOG_MS) {
		drops_unlogged++;
		return;
	}
	log_warn("hosts port: dropped a message (%s, %d bytes)%s", why, len,
	         drops_unlogged ? "; more were dropped since the last such line" : "");
	drop_log_ms = now;
	drops_unlogged = 0;
}

static int retired_session(uint64_t s)
{
	unsigned i;

	for (i = 0; i < RETIRED_MAX; i++)
		if (retired[i] == s)
			return 1;
	return 0;
}

/* Seal m (its payload included) for h and send it; -EAGAIN when its socket is full. */
static int send_plain(struct host *h)
{
	struct seal_hdr sh = {.sender = session, .dest = h->session, .seq = ++seq_out};

	if (h->push < 0)
		return -EAGAIN;
	buf_reset(&sealed);
	buf_reserve(&sealed, plain.len + SEAL_OVERHEAD);
	seal_box(key, &sh, plain.data, plain.len, (unsigned char *)sealed.data);
	sealed.len = plain.len + SEAL_OVERHEAD;
	if (nn_send(h->push, sealed.data, sealed.len, NN_DONTWAIT) < 0) {
		if (nn_errno() != EAGAIN)
			log_warn("host %s: %s", h->endpoint, nn_strerror(nn_errno()));
		return -EAGAIN;
	}
	return 0;
}

static void send_simple(struct host *h, uint16_t type, const char *payload)
{
	struct wire_msg m = {.type = type,
	                     .slot = h->slot < 0 ? 0 : (uint32_t)h->slot,
	                     .gen = h->gen,
	                     .first_error = WIRE_NO_ERROR,
	                     .payload = payload,
	                     .payload_len = payload ? strlen(payload) : 0};

	wire_encode(&plain, &m);
	if (send_plain(h) < 0)
		log_debug("host %s: message type %u not sent (no room)", h->endpoint, type);
}

int hosts_can_send(const struct host *h)
{
	return !event_pending(h->ev_snd, EV_READ, NULL);
}

int hosts_send_task(struct host *h, const struct nn_iovec *iov, int n)
{
	int i;

	buf_reset(&plain);
	for (i = 0; i < n; i++)
		buf_add(&plain, iov[i].iov_base, iov[i].iov_len);
	if (send_plain(h) < 0) {
		if (h->ev_snd)
			event_add(h->ev_snd, NULL);
		return -EAGAIN;
	}
	return 0;
}

static void on_host_sndfd(evutil_socket_t fd, short ev, void *arg)
{
	struct host *h = arg;

	event_del(h->ev_snd);
	ledger_dispatch();
}

static void host_close(struct host *h)
{
	if (h->ev_snd) {
		event_free(h->ev_snd);
		h->ev_snd = NULL;
	}
	if (h->push >= 0)
		nn_close(h->push);
	h->push = -1;
}

/* The PUSH to h's endpoint; nanomsg connects (and reconnects) in the background. */
static int host_open(struct host *h)
{
	evutil_socket_t fd;
	size_t fdlen = sizeof(fd);

	h->push = nn_socket(AF_SP, NN_PUSH);
	if (h->push < 0 || nn_connect(h->push, h->endpoint) < 0 ||
	    nn_getsockopt(h->push, NN_SOL_SOCKET, NN_SNDFD, &fd, &fdlen) < 0) {
		log_warn("host %s: cannot connect: %s", h->endpoint, nn_strerror(nn_errno()));
		host_close(h);
		return -1;
	}
	h->ev_snd = event_new(sv.base, fd, EV_READ | EV_PERSIST, on_host_sndfd, h);
	return 0;
}

/* Forget h's session (its generation is over) and give back its slot. */
static void host_end(struct host *h, enum host_state st, const char *why)
{
	retired[n_retired++ % RETIRED_MAX] = h->session;
	if (h->slot >= 0)
		pool_host_remove(h->slot, why);
	h->slot = -1;
	host_close(h);
	h->state = st;
}

static struct host *by_session(uint64_t s)
{
	int i;

	for (i = 0; i < POOL_MAX_HOSTS; i++)
		if (hosts[i].state != HOST_FREE && hosts[i].state != HOST_LOST &&
		    hosts[i].session == s)
			return &hosts[i];
	return NULL;
}

/* The record of endpoint ep: its own (a new generation), else a free one. */
static struct host *by_endpoint(const char *ep)
{
	struct host *free_one = NULL;
	int i;

	for (i = 0; i < POOL_MAX_HOSTS; i++) {
		if (hosts[i].state != HOST_FREE && strcmp(hosts[i].endpoint, ep) == 0)
			return &hosts[i];
		if (!free_one && (hosts[i].state == HOST_FREE))
			free_one = &hosts[i];
	}
	for (i = 0; i < POOL_MAX_HOSTS && !free_one; i++)
		if (hosts[i].state == HOST_LOST)
			free_one = &hosts[i];
	if (free_one && free_one->state == HOST_LOST)
		free_one->state = HOST_FREE; /* a lost host's record goes to a new one */
	return free_one;
}

/* The hash in a join's payload, copied into out (33 bytes); -1 when there is none. */
static int join_hash(const struct wire_msg *m, char out[33])
{
	char *text = xmalloc(m->payload_len + 1);
	cJSON *root, *hash;
	int r = -1;

	memcpy(text, m->payload, m->payload_len);
	text[m->payload_len] = '\0';
	root = cJSON_ParseWithLengthOpts(text, m->payload_len + 1, NULL, 1);
	hash = cJSON_GetObjectItemCaseSensitive(root, "hash");
	if (cJSON_IsString(hash) && strlen(hash->valuestring) == 32) {
		memcpy(out, hash->valuestring, 33);
		r = 0;
	}
	cJSON_Delete(root);
	free(text);
	return r;
}

/*
 * A join from a session never seen: a host starting, or coming back after it
 * was lost (a new generation; what it held before was retried already).
 */
static void handle_join(const struct seal_hdr *sh, const struct wire_msg *m, int len)
{
	char ep[ENDPOINT_MAX], theirs[33], ours[33], why[200];
	struct host *h;

	if (retired_session(sh->sender)) {
		drop("a join of a generation that ended", len);
		return;
	}
	if (m->fn_len < 7 || m->fn_len >= sizeof(ep) || memcmp(m->fn, "tcp://", 6) != 0 ||
	    memchr(m->fn, '\0', m->fn_len) || m->count < 1 || m->count > CONF_MAX_WORKERS ||
	    join_hash(m, theirs) < 0) {
		drop("a malformed join", len);
		return;
	}
	memcpy(ep, m->fn, m->fn_len);
	ep[m->fn_len] = '\0';
	h = by_endpoint(ep);
	if (!h) {
		log_warn("host %s cannot join: %d hosts joined already", ep, POOL_MAX_HOSTS);
		return;
	}
	if (h->state == HOST_JOINING || h->state == HOST_READY || h->state == HOST_REFUSED) {
		snprintf(why, sizeof(why), "host %.120s joined again (a new generation)", ep);
		log_warn("%s: retrying the tasks of generation %u", why, h->gen);
		host_end(h, HOST_LOST, why);
	}
	if (h->state == HOST_FREE) {
		memset(h, 0, sizeof(*h));
		h->push = -1;
		snprintf(h->endpoint, sizeof(h->endpoint), "%s", ep);
	}
	h->session = sh->sender;
	memset(&h->win, 0, sizeof(h->win));
	seal_window_accept(&h->win, sh->seq);
	h->gen++;
	h->workers = m->count;
	h->slot = -1;
	h->last_heard_ms = now_ms();
	h->state = HOST_JOINING;
	if (host_open(h) < 0) {
		h->state = HOST_LOST;
		return;
	}
	hosts_conf_hash(&confgen_current()->c, ours);
	if (strcmp(theirs, ours) != 0) {
		h->state = HOST_REFUSED;
		log_warn("host %s refused: its functions differ from this supervisor's "
		         "(hash %s, here %s)",
		         ep, theirs, ours);
		send_simple(h, WIRE_REFUSE, "its functions differ from the supervisor's");
		return;
	}
	h->slot = pool_host_add(h, h->workers, confgen_current());
	if (h->slot < 0) {
		h->state = HOST_REFUSED;
		log_warn("host %s refused: no free remote slot", ep);
		send_simple(h, WIRE_REFUSE, "the supervisor has no free remote slot");
		return;
	}
	log_info("host %s joins (generation %u, %u workers)", ep, h->gen, h->workers);
	send_simple(h, WIRE_ACCEPT, NULL);
}

/* A LOST message: the agent's worker died holding message task_id. */
static void handle_lost(struct host *h, const struct wire_msg *m)
{
	char why[200];

	if (m->flags > LOST_CRASH || m->attempt >= PROTO_CODE_MAX)
		return;
	snprintf(why, sizeof(why), "on host %.120s: %.*s", h->endpoint,
	         (int)(m->payload_len > 150 ? 150 : m->payload_len), m->payload);
	pool_host_lost(h->slot, m->task_id, (enum lost_charge)m->flags, (enum proto_code)m->attempt,
	               why);
}

/* A message from a known session. pt (an nn buffer) is taken. */
static void handle_known(struct host *h, const struct wire_msg *m, void *pt)
{
	h->last_heard_ms = now_ms();
	switch (m->type) {
	case WIRE_JOIN: /* it has not seen our answer yet */
		send_simple(h, h->state == HOST_REFUSED ? WIRE_REFUSE : WIRE_ACCEPT,
		            h->state == HOST_REFUSED ? "refused" : NULL);
		break;
	case WIRE_READY:
		if (h->state == HOST_JOINING) {
			h->state = HOST_READY;
			pool_host_ready(h->slot);
			log_info("host %s ready", h->endpoint);
		}
		break;
	case WIRE_RESULT:
		if (h->state == HOST_READY) {
			pool_host_result(h->slot, m, pt);
			return;
		}
		break;
	case WIRE_LOST:
		if (h->state == HOST_READY)
			handle_lost(h, m);
		break;
	case WIRE_BEAT:
		if (h->state == HOST_READY)
			pool_host_reconcile(h->slot, (const unsigned char *)m->payload,
			                    m->payload_len / 8,
			                    now_ms() - sv.opt.host_timeout_ms / 2);
		break;
	}
	nn_freemsg(pt);
}

/* One message from the hosts port: opened, checked against replays, handled. */
static void receive(void *msg, int n)
{
	struct seal_hdr sh;
	struct wire_msg m;
	struct host *h;
	void *pt;

	if (n < SEAL_OVERHEAD + WIRE_HDR_SIZE) {
		drop("too short to be sealed", n);
		return;
	}
	pt = nn_allocmsg((size_t)n - SEAL_OVERHEAD, 0);
	if (!pt)
		fatal("out of memory");
	if (seal_open(key, msg, (size_t)n, &sh, pt) < 0) {
		drop("authentication failed: a wrong key or a changed message", n);
		nn_freemsg(pt);
		return;
	}
	if ((sh.dest && sh.dest != session) || wire_decode(pt, (size_t)n - SEAL_OVERHEAD, &m) < 0) {
		drop(sh.dest && sh.dest != session ? "addressed to an earlier run" : "malformed",
		     n);
		nn_freemsg(pt);
		return;
	}
	h = by_session(sh.sender);
	if (!h) {
		if (m.type == WIRE_JOIN)
			handle_join(&sh, &m, n);
		else
			log_debug("dropping a message of a session that is not joined (type %u)",
			          m.type);
		nn_freemsg(pt);
		return;
	}
	if (!seal_window_accept(&h->win, sh.seq)) {
		drop("replayed", n);
		nn_freemsg(pt);
		return;
	}
	handle_known(h, &m, pt);
}

static void on_pull(evutil_socket_t fd, short ev, void *arg)
{
	int i;

	for (i = 0; i < RECV_BATCH; i++) {
		void *msg;
		int n = nn_recv(pull, &msg, NN_MSG, NN_DONTWAIT);

		if (n < 0) {
			if (nn_errno() == EINTR)
				continue;
			if (nn_errno() != EAGAIN)
				log_error("hosts port: %s", nn_strerror(nn_errno()));
			break;
		}
		receive(msg, n);
		nn_freemsg(msg);
	}
	ledger_dispatch();
}

/* Every host_timeout_ms/4: a host silent for host_timeout_ms is lost; the others hear from us. */
static void on_beat(evutil_socket_t fd, short ev, void *arg)
{
	uint64_t now = now_ms();
	char why[200];
	int i;

	for (i = 0; i < POOL_MAX_HOSTS; i++) {
		struct host *h = &hosts[i];

		if (h->state != HOST_JOINING && h->state != HOST_READY && h->state != HOST_REFUSED)
			continue;
		if (now - h->last_heard_ms <= sv.opt.host_timeout_ms) {
			if (h->state != HOST_REFUSED)
				send_simple(h, WIRE_BEAT, NULL);
			continue;
		}
		snprintf(why, sizeof(why), "host %.120s was silent for %llu ms", h->endpoint,
		         (unsigned long long)(now - h->last_heard_ms));
		if (h->state == HOST_REFUSED)
			log_debug("%s; forgetting it", why);
		else
			log_warn("%s: lost (generation %u); retrying what it held", why, h->gen);
		host_end(h, HOST_LOST, why);
	}
}

int hosts_init(void)
{
	struct timeval tv;
	evutil_socket_t fd;
	size_t fdlen = sizeof(fd);
	char err[300];
	int max;

	if (!sv.opt.hosts)
		return 0;
	if (strncmp(sv.opt.hosts, "tcp://", 6) != 0) {
		log_error("hosts %s: host agents join over tcp://ADDR:PORT", sv.opt.hosts);
		return -1;
	}
	if (!sv.opt.cluster_key) {
		log_error("hosts: a cluster key is needed (cluster_key, made by poold --keygen)");
		return -1;
	}
	if (seal_init() < 0 || seal_key_load(sv.opt.cluster_key, key, err, sizeof(err)) < 0) {
		log_error("cluster key: %s", err);
		return -1;
	}
	session = seal_session_id();
	max = (int)(pool_max_msg() + SEAL_OVERHEAD);
	pull = nn_socket(AF_SP, NN_PULL);
	if (pull < 0 || nn_setsockopt(pull, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)) < 0 ||
	    nn_bind(pull, sv.opt.hosts) < 0 ||
	    nn_getsockopt(pull, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdlen) < 0) {
		log_error("hosts %s: %s", sv.opt.hosts, nn_strerror(nn_errno()));
		return -1;
	}
	ev_pull = event_new(sv.base, fd, EV_READ | EV_PERSIST, on_pull, NULL);
	event_add(ev_pull, NULL);
	ev_beat = event_new(sv.base, -1, EV_PERSIST, on_beat, NULL);
	tv.tv_sec = sv.opt.host_timeout_ms / 4 / 1000;
	tv.tv_usec = (suseconds_t)(sv.opt.host_timeout_ms / 4 % 1000) * 1000;
	event_add(ev_beat, &tv);
	log_info("host agents join at %s", sv.opt.hosts);
	return 0;
}

void hosts_free(void)
{
	int i;

	for (i = 0; i < POOL_MAX_HOSTS; i++)
		host_close(&hosts[i]);
	if (ev_beat)
		event_free(ev_beat);
	if (ev_pull)
		event_free(ev_pull);
	ev_beat = ev_pull = NULL;
	if (pull >= 0)
		nn_close(pull);
	pull = -1;
	sodium_memzero(key, sizeof(key));
	buf_free(&plain);
	buf_free(&sealed);
}

void hosts_status(struct buf *b)
{
	uint64_t now = now_ms(), items = 0;
	uint32_t held = 0;
	int i, first = 1;

	buf_adds(b, ",\"hosts\":[");
	for (i = 0; i < POOL_MAX_HOSTS; i++) {
		const struct host *h = &hosts[i];

		if (h->state == HOST_FREE)
			continue;
		held = 0;
		items = 0;
		if (h->slot >= 0)
			pool_host_counts(h->slot, &held, &items);
		buf_printf(b, "%s{\"address\":", first ? "" : ",");
		buf_add_json_string(b, h->endpoint, strlen(h->endpoint));
		buf_printf(b,
		           ",\"state\":\"%s\",\"workers\":%u,\"tasks_held\":%u,\"items_done\":%llu,"
		           "\"last_heartbeat_ms\":%llu,\"generation\":%u}",
		           host_state_names[h->state], h->workers, held, (unsigned long long)items,
		           (unsigned long long)(now - h->last_heard_ms), h->gen);
		first = 0;
	}
	buf_addc(b, ']');
}
