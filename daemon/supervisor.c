/* supervisor.c - the supervisor's state, signals, status and graceful stop */
#include "supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "confgen.h"
#include "config.h"
#include "conn.h"
#include "hosts.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "pool.h"
#include "request.h"
#include "spawn.h"

#define FINISH_POLL_MS 20
#define FINISH_MAX_MS 5000

struct supervisor sv;

static struct event *ev_sigterm, *ev_sigint, *ev_sigchld, *ev_sighup;
static struct event *ev_stop_timeout, *ev_finish;
static int finishing;
static uint64_t finish_started;

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void supervisor_status(struct buf *b)
{
	buf_printf(b,
	           "{\"version\":\"%s\",\"pid\":%d,\"uptime_ms\":%llu,\"workers\":%d,"
	           "\"connections\":%d,\"requests\":%u,\"tasks_queued\":%llu,"
	           "\"tasks_running\":%llu,\"items_done\":%llu,\"stopping\":%s,\"slots\":",
	           POOLD_VERSION, (int)getpid(), (unsigned long long)(now_ms() - sv.start_ms),
	           sv.opt.workers, sv.n_conns, sv.n_requests, (unsigned long long)sv.tasks_queued,
	           (unsigned long long)sv.tasks_running, (unsigned long long)sv.items_done,
	           sv.stopping ? "true" : "false");
	pool_status(b);
	hosts_status(b);
	conn_status(b);
	buf_addc(b, '}');
}

/* Wait for the workers to exit and the replies to flush, then leave the loop. */
static void on_finish(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval tv = {0, FINISH_POLL_MS * 1000};

	if (!finish_started) {
		finish_started = now_ms();
		log_info("all requests answered; stopping workers");
		conn_close_all_flushed();
		pool_stop();
	}
	pool_reap();
	if ((pool_all_exited() && sv.n_conns == 0) || now_ms() - finish_started > FINISH_MAX_MS) {
		event_base_loopbreak(sv.base);
		return;
	}
	evtimer_add(ev_finish, &tv);
}

/* Runs from the loop, never inside a caller that is walking connections or requests. */
void supervisor_check_idle(void)
{
	struct timeval now = {0, 0};

	if (sv.stopping && sv.n_requests == 0 && !finishing) {
		finishing = 1;
		evtimer_add(ev_finish, &now);
	}
}

/* --stop-timeout passed: answer what is left with shutting_down. */
static void on_stop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	log_warn("stop timeout: failing %u requests still in flight", sv.n_requests);
	conn_abort_all(PROTO_SHUTTING_DOWN, "the daemon is stopping (--stop-timeout passed)");
	supervisor_check_idle();
}

void supervisor_stop(void)
{
	struct timeval tv = {sv.opt.stop_timeout_s, 0};

	if (sv.stopping)
		return;
	sv.stopping = 1;
	notify_stopping();
	listener_close();
	log_info("stopping: %u requests in flight", sv.n_requests);
	ev_stop_timeout = evtimer_new(sv.base, on_stop_timeout, NULL);
	ev_finish = evtimer_new(sv.base, on_finish, NULL);
	evtimer_add(ev_stop_timeout, &tv);
	supervisor_check_idle();
}

static void on_signal(evutil_socket_t sig, short ev, void *arg)
{
	switch (sig) {
	case SIGCHLD:
		pool_reap();
		break;
	case SIGHUP:
		if (!sv.stopping) {
			notify_reloading();
			confgen_reload();
			notify_reloaded();
		}
		break;
	default:
		log_info("got SIG%s", sigabbrev_np((int)sig));
		supervisor_stop();
	}
}

/*
 * The private directory of the workers' endpoints and the configuration
 * copies: beside the socket, in the daemon's runtime directory (a tmp cleaner
 * leaves /run and $XDG_RUNTIME_DIR alone), unless that path is too long for
 * an ipc address; then in $TMPDIR. pool.c makes it again if it vanishes.
 */
static int make_rundir(const char *socket_path)
{
	const char *slash = strrchr(socket_path, '/'), *tmp = getenv("TMPDIR");
	char tmpl[sizeof(sv.rundir)];
	int dirlen = slash ? (int)(slash - socket_path) : 0;

	/* RUNDIR/w255-4294967295.ipc must fit in a 108-byte sun_path. */
	if (slash && dirlen > 0 && dirlen < 70) {
		snprintf(tmpl, sizeof(tmpl), "%.*s", dirlen, socket_path);
		if (mkdir(tmpl, 0700) < 0 && errno != EEXIST)
			log_warn("cannot make %s: %s", tmpl, strerror(errno));
		snprintf(tmpl, sizeof(tmpl), "%.*s/poold-ipc.XXXXXX", dirlen, socket_path);
		if (mkdtemp(tmpl)) {
			snprintf(sv.rundir, sizeof(sv.rundir), "%s", tmpl);
			return 0;
		}
	}
	if (!tmp || !*tmp || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/poold.XXXXXX", tmp);
	if (!mkdtemp(tmpl))
		return -errno;
	snprintf(sv.rundir, sizeof(sv.rundir), "%s", tmpl);
	return 0;
}

/* Leave nothing behind in the runtime directory. */
static void remove_rundir(void)
{
	char path[sizeof(sv.rundir) + 300];
	DIR *d = opendir(sv.rundir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", sv.rundir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	if (rmdir(sv.rundir) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", sv.rundir, strerror(errno));
}

void supervisor_init(const struct options *opt, const char *role)
{
	ssize_t n;

	sv.opt = *opt;
	sv.start_ms = now_ms();
	TAILQ_INIT(&sv.conns);
	TAILQ_INIT(&sv.pending);
	log_init(role, opt->verbose);
	n = readlink("/proc/self/exe", sv.exe, sizeof(sv.exe) - 1);
	if (n < 0)
		fatal("readlink /proc/self/exe: %s", strerror(errno));
	sv.exe[n] = '\0';
}

int supervisor_main(const struct options *opt)
{
	static char inherited[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char err[512];
	int r;

	supervisor_init(opt, "supervisor");
	notify_init();
	if ((r = listener_inherit(inherited, sizeof(inherited))) < 0)
		fatal("LISTEN_FDS: poold takes one listening Unix stream socket from systemd");
	if (r > 0 && inherited[0])
		sv.opt.socket_path = inherited;
	signal(SIGPIPE, SIG_IGN);
	sv.base = event_base_new();
	if (!sv.base)
		fatal("event_base_new failed");
	ev_sigterm = evsignal_new(sv.base, SIGTERM, on_signal, NULL);
	ev_sigint = evsignal_new(sv.base, SIGINT, on_signal, NULL);
	ev_sigchld = evsignal_new(sv.base, SIGCHLD, on_signal, NULL);
	ev_sighup = evsignal_new(sv.base, SIGHUP, on_signal, NULL);
	event_add(ev_sigterm, NULL);
	event_add(ev_sigint, NULL);
	event_add(ev_sigchld, NULL);
	event_add(ev_sighup, NULL);
	if ((r = spawn_self_open()) < 0)
		fatal("cannot open /proc/self/exe: %s", strerror(-r));
	if ((r = listener_prepare(sv.opt.socket_path)) == -EINVAL)
		fatal("socket_group %s: no such group", sv.opt.socket_group);
	if (r < 0)
		fatal("cannot make the directory of %s: %s", sv.opt.socket_path, strerror(-r));
	if (listener_open_remote(err, sizeof(err)) < 0)
		fatal("%s", err);
	if ((r = make_rundir(sv.opt.socket_path)) < 0)
		fatal("cannot make a runtime directory: %s", strerror(-r));
	if (confgen_init(opt->conf) < 0) {
		remove_rundir();
		fatal("the configuration has problems (above)");
	}
	if ((r = pool_init()) < 0) {
		pool_free();
		confgen_free();
		remove_rundir();
		fatal("cannot start the pool: %s", strerror(-r));
	}
	if (hosts_init() < 0) {
		pool_free();
		confgen_free();
		remove_rundir();
		fatal("cannot listen for hosts (above)");
	}
	if ((r = listener_open(sv.opt.socket_path)) < 0) {
		pool_free();
		confgen_free();
		remove_rundir();
		if (r == -EADDRINUSE)
			fatal("%s: another poold is already listening there", sv.opt.socket_path);
		if (r == -EEXIST)
			fatal("%s exists and is not a socket; not removing it", sv.opt.socket_path);
		fatal("cannot listen on %s: %s", sv.opt.socket_path, strerror(-r));
	}
	metrics_start();
	log_info("listening on %s with %d workers", sv.opt.socket_path, opt->workers);
	notify_start(sv.base);
	event_base_dispatch(sv.base);

	listener_close();
	notify_free();
	metrics_stop();
	pool_free();
	hosts_free();
	confgen_free();
	remove_rundir();
	spawn_self_close();
	if (ev_stop_timeout)
		event_free(ev_stop_timeout);
	if (ev_finish)
		event_free(ev_finish);
	event_free(ev_sigterm);
	event_free(ev_sigint);
	event_free(ev_sigchld);
	event_free(ev_sighup);
	event_base_free(sv.base);
	log_info("stopped");
	return 0;
}
