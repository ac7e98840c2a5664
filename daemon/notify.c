/* notify.c - systemd's service notifications (sd_notify(3)): readiness, status, watchdog */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"
#include "supervisor.h"

#define READY_POLL_MS 20
#define STATUS_PERIOD_MS 1000
#define STATUS_MAX 256

/*
 * The datagrams are sent here rather than through sd_notify(): sd_notify()
 * reads $NOTIFY_SOCKET at each call, so the variable would have to stay in
 * the environment that every worker (and every program a worker starts)
 * inherits through exec; those would then be able to report for the service.
 * The protocol is one datagram of NAME=VALUE lines to that address.
 */
static int sock_fd = -1;
static struct sockaddr_un addr;
static socklen_t addr_len;
static uint64_t watchdog_usec;
static int ready_sent, warned;
static char last_status[STATUS_MAX];
static struct event *ev_ready, *ev_status, *ev_watchdog;

/* Send one notification (NAME=VALUE lines); failures are logged once. */
static void send_msg(const char *msg)
{
	if (sock_fd < 0)
		return;
	if (sendto(sock_fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
	           (const struct sockaddr *)&addr, addr_len) < 0 &&
	    !warned) {
		warned = 1;
		log_warn("cannot notify systemd at %s%s: %s", addr.sun_path[0] ? "" : "@",
		         addr.sun_path + !addr.sun_path[0], strerror(errno));
	}
}

void notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len = path ? strlen(path) : 0;

	if (sd_watchdog_enabled(1, &watchdog_usec) <= 0)
		watchdog_usec = 0;
	if (len < 2 || len >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
		if (path)
			log_warn("ignoring NOTIFY_SOCKET='%s': not a socket path", path);
		unsetenv("NOTIFY_SOCKET");
		return;
	}
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	/* An abstract address is exactly len bytes; a path may take its NUL. */
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	unsetenv("NOTIFY_SOCKET");
	sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock_fd < 0)
		log_warn("cannot notify systemd: socket: %s", strerror(errno));
}

/* The one-line summary systemctl status shows. */
static void format_status(char *out, size_t n)
{
	struct pool_counts pc;

	pool_counts(&pc);
	snprintf(out, n,
	         "STATUS=%sworkers %d busy, %d idle, %d starting; %llu tasks queued, "
	         "%llu items in flight; %u requests, %d clients",
	         sv.stopping ? "stopping: " : "", pc.busy, pc.idle, pc.starting + pc.backoff,
	         (unsigned long long)sv.tasks_queued, (unsigned long long)sv.items_in_flight,
	         sv.n_requests, sv.n_conns);
}

/* Send STATUS= when it changed since the last one. */
static void send_status(void)
{
	char status[STATUS_MAX];

	format_status(status, sizeof(status));
	if (strcmp(status, last_status) == 0)
		return;
	memcpy(last_status, status, sizeof(status));
	send_msg(status);
}

static void on_status(evutil_socket_t fd, short ev, void *arg)
{
	send_status();
}

/* Every worker slot answered its handshake: READY=1, once. */
static void on_ready_poll(evutil_socket_t fd, short ev, void *arg)
{
	struct pool_counts pc;

	pool_counts(&pc);
	if (pc.busy + pc.idle < pool_size())
		return;
	event_del(ev_ready);
	ready_sent = 1;
	send_msg("READY=1");
	send_status();
	log_debug("told systemd: ready");
}

static void on_watchdog(evutil_socket_t fd, short ev, void *arg)
{
	send_msg("WATCHDOG=1");
}

/* A persistent timer of ms milliseconds on base. */
static struct event *periodic(struct event_base *base, uint64_t ms, event_callback_fn cb)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	struct event *ev = event_new(base, -1, EV_PERSIST, cb, NULL);

	event_add(ev, &tv);
	return ev;
}

void notify_start(struct event_base *base)
{
	if (sock_fd < 0)
		return;
	ev_ready = periodic(base, READY_POLL_MS, on_ready_poll);
	ev_status = periodic(base, STATUS_PERIOD_MS, on_status);
	if (watchdog_usec) {
		uint64_t half_ms = watchdog_usec / 2000;

		ev_watchdog = periodic(base, half_ms ? half_ms : 1, on_watchdog);
		send_msg("WATCHDOG=1");
	}
}

void notify_reloading(void)
{
	char msg[64];
	struct timespec ts;

	if (!ready_sent)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ull +
	             (unsigned long long)ts.tv_nsec / 1000);
	send_msg(msg);
}

void notify_reloaded(void)
{
	if (!ready_sent)
		return;
	send_msg("READY=1");
	send_status();
}

void notify_stopping(void)
{
	send_msg("STOPPING=1");
	send_status();
}

void notify_free(void)
{
	struct event **evs[] = {&ev_ready, &ev_status, &ev_watchdog};
	size_t i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (*evs[i])
			event_free(*evs[i]);
		*evs[i] = NULL;
	}
	if (sock_fd >= 0)
		close(sock_fd);
	sock_fd = -1;
}
