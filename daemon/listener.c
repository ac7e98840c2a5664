/* listener.c - the Unix socket clients connect to */
#include "listener.h"

#include <errno.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "supervisor.h"

#define ACCEPT_RETRY_MS 100

static struct evconnlistener *lev;
static struct event *ev_retry;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int at_limit;

static void refuse(evutil_socket_t fd, const char *code, const char *msg)
{
	char line[256];
	int n =
	    snprintf(line, sizeof(line),
	             "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
	             code, msg);

	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refusing a client: %s", strerror(errno));
	close(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		close(fd);
		return;
	}
	if (cred.uid != getuid() && cred.uid != 0) {
		log_warn("refused a client of uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
		refuse(fd, "forbidden", "this daemon serves only its own user");
		return;
	}
	evutil_make_socket_nonblocking(fd);
	conn_new(fd);
	if (sv.n_conns >= sv.opt.max_connections && !at_limit) {
		log_warn("%d connections (--max-connections): not accepting more for now",
		         sv.n_conns);
		at_limit = 1;
		evconnlistener_disable(lev);
	}
}

static void on_retry(evutil_socket_t fd, short ev, void *arg)
{
	if (lev && !at_limit)
		evconnlistener_enable(lev);
}

/* EMFILE and friends: libevent would retry at once forever; pause instead. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};

	log_warn("accept: %s; pausing the listener", strerror(errno));
	evconnlistener_disable(lev);
	evtimer_add(ev_retry, &tv);
}

void listener_conn_closed(void)
{
	if (at_limit && lev && sv.n_conns < sv.opt.max_connections) {
		at_limit = 0;
		evconnlistener_enable(lev);
	}
}

/* Make the socket's directory (0700) when it does not exist. */
static int make_parent(const char *path)
{
	char dir[sizeof(sock_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file nobody answers on is stale: remove it. One that answers is another poold. */
static int clear_stale(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	if (errno == ECONNREFUSED) {
		struct stat st;

		/* Never remove anything but a socket: --socket may name a wrong file. */
		if (lstat(sun->sun_path, &st) == 0 && !S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(sun->sun_path);
	}
	return 0;
}

int listener_open(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	evutil_socket_t fd;
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((r = make_parent(path)) < 0 || (r = clear_stale(&sun)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	lev = evconnlistener_new(sv.base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 128, fd);
	if (!lev) {
		close(fd);
		unlink(path);
		return -EIO;
	}
	evconnlistener_set_error_cb(lev, on_accept_error);
	ev_retry = evtimer_new(sv.base, on_retry, NULL);
	return 0;
}

void listener_close(void)
{
	if (!lev)
		return;
	evconnlistener_free(lev);
	lev = NULL;
	event_free(ev_retry);
	ev_retry = NULL;
	unlink(sock_path);
}
