/* listener.c - the Unix socket clients connect to */
#include "listener.h"

#include <errno.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "supervisor.h"
#include "tls.h"
#include "xalloc.h"

#define ACCEPT_RETRY_MS 100

static struct evconnlistener *lev;
static struct event *ev_retry;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "": not ours to remove */
static int at_limit;
static int inherited_fd = -1; /* the listening socket systemd passed (LISTEN_FDS) */
static int has_group;         /* --socket-group: its members are served too */
static gid_t group_gid;

/* Remote listeners (--listen): tls:// on any address, plain tcp:// on loopback only. */
#define MAX_REMOTE 8
static struct remote {
	struct evconnlistener *lev;
	int tls;
} remotes[MAX_REMOTE];
static int n_remotes;

/* Accept on every listener, or on none (--max-connections, accept errors). */
static void set_accepting(int on)
{
	int i;

	if (lev)
		(on ? evconnlistener_enable : evconnlistener_disable)(lev);
	for (i = 0; i < n_remotes; i++)
		(on ? evconnlistener_enable : evconnlistener_disable)(remotes[i].lev);
}

/* After a new connection: stop accepting at --max-connections. */
static void check_limit(void)
{
	if (sv.n_conns >= sv.opt.max_connections && !at_limit) {
		log_warn("%d connections (--max-connections): not accepting more for now",
		         sv.n_conns);
		at_limit = 1;
		set_accepting(0);
	}
}

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

/*
 * A member of --socket-group: its gid, or one of its supplementary groups as
 * the kernel recorded them at connect() (SO_PEERGROUPS). These are the very
 * groups the socket's 0660 mode let in; a lookup in the group database
 * (getgrouplist) could block on NSS and would miss a setgroups() of the peer.
 */
static int peer_in_group(evutil_socket_t fd, const struct ucred *cred)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	int r, found = cred->gid == group_gid;
	size_t i;

	r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	if (r < 0 && errno == ERANGE) {
		groups = xmalloc(len);
		r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	}
	for (i = 0; r == 0 && i < len / sizeof(gid_t) && !found; i++)
		found = groups[i] == group_gid;
	if (groups != small)
		free(groups);
	return found;
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
	if (cred.uid != getuid() && cred.uid != 0 && !(has_group && peer_in_group(fd, &cred))) {
		log_warn("refused a client of uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
		refuse(fd, "forbidden",
		       has_group ? "this daemon serves only its own user and its socket group"
		                 : "this daemon serves only its own user");
		return;
	}
	evutil_make_socket_nonblocking(fd);
	conn_new(fd);
	check_limit();
}

static void on_retry(evutil_socket_t fd, short ev, void *arg)
{
	if (!at_limit)
		set_accepting(1);
}

/* EMFILE and friends: libevent would retry at once forever; pause instead. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};

	log_warn("accept: %s; pausing the listener", strerror(errno));
	set_accepting(0);
	evtimer_add(ev_retry, &tv);
}

void listener_conn_closed(void)
{
	if (at_limit && sv.n_conns < sv.opt.max_connections) {
		at_limit = 0;
		set_accepting(1);
	}
}

/* A remote client: no uid to check; TLS (when the listener is tls://) runs in conn.c. */
static void on_accept_remote(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int len, void *arg)
{
	const struct remote *rm = arg;
	char host[INET6_ADDRSTRLEN], port[8], peer[64];
	struct tls *t = NULL;
	int one = 1;

	if (getnameinfo(sa, (socklen_t)len, host, sizeof(host), port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(host, sizeof(host), "?"), snprintf(port, sizeof(port), "?");
	snprintf(peer, sizeof(peer), sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
	evutil_make_socket_nonblocking(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rm->tls && !(t = tls_new(fd, peer))) {
		log_error("out of memory accepting a TLS client at %s", peer);
		close(fd);
		return;
	}
	conn_new_remote(fd, t, peer);
	check_limit();
}

/* Whether a is a loopback address (127.0.0.0/8, ::1, or 127.x mapped into IPv6). */
static int is_loopback(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
	if (a->sa_family == AF_INET6) {
		const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(x) ||
		       (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
	}
	return 0;
}

/* Split "tls://HOST:PORT" (HOST may be [v6] or *): 0, or -1 with err set. */
static int parse_uri(const char *uri, int *tls, char *host, size_t hn, char *port, size_t pn,
                     char *err, size_t n)
{
	const char *h, *colon, *end;

	*tls = strncmp(uri, "tls://", 6) == 0;
	if (!*tls && strncmp(uri, "tcp://", 6) != 0)
		goto bad;
	h = uri + 6;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			goto bad;
		colon = end + 1;
		h++;
	} else {
		colon = strrchr(h, ':');
		end = colon;
	}
	if (!colon || (size_t)(end - h) >= hn || strlen(colon + 1) >= pn || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		goto bad;
	snprintf(host, hn, "%.*s", (int)(end - h), h);
	snprintf(port, pn, "%s", colon + 1);
	return 0;
bad:
	snprintf(err, n, "listen %s: expected tls://ADDR:PORT (or tcp://ADDR:PORT on loopback)",
	         uri);
	return -1;
}

/* Bind and listen on one address of --listen; 0, or -1 with err set. */
static int open_remote(const char *uri, char *err, size_t n)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
	                *ai = NULL;
	char host[256], port[8];
	struct remote *rm = &remotes[n_remotes];
	int tls, fd, one = 1, r;

	if (parse_uri(uri, &tls, host, sizeof(host), port, sizeof(port), err, n) < 0)
		return -1;
	if (n_remotes == MAX_REMOTE) {
		snprintf(err, n, "listen: at most %d addresses", MAX_REMOTE);
		return -1;
	}
	r = getaddrinfo(strcmp(host, "*") && host[0] ? host : NULL, port, &hints, &ai);
	if (r != 0) {
		snprintf(err, n, "listen %s: %s", uri, gai_strerror(r));
		return -1;
	}
	if (!tls && !is_loopback(ai->ai_addr)) {
		snprintf(err, n,
		         "listen %s: plain tcp:// is served only on a loopback address (127.0.0.1, "
		         "::1); use tls:// with a client CA for other addresses",
		         uri);
		freeaddrinfo(ai);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		snprintf(err, n, "listen %s: %s", uri, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	rm->tls = tls;
	rm->lev = evconnlistener_new(sv.base, on_accept_remote, rm, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (!rm->lev) {
		close(fd);
		snprintf(err, n, "listen %s: cannot watch the socket", uri);
		return -1;
	}
	evconnlistener_set_error_cb(rm->lev, on_accept_error);
	n_remotes++;
	log_info("listening for remote clients on %s%s", uri,
	         tls ? " (TLS, client certificates required)" : " (plain, loopback only)");
	return 0;
}

int listener_open_remote(char *err, size_t n)
{
	const char *list = sv.opt.listen, *p = list;
	char uri[200];
	int need_tls = 0;

	while (list && *(p += strspn(p, " \t,"))) {
		size_t len = strcspn(p, " \t,");

		snprintf(uri, sizeof(uri), "%.*s", (int)len, p);
		need_tls |= strncmp(uri, "tls://", 6) == 0;
		p += len;
	}
	if (need_tls && tls_server_init(sv.opt.tls_cert, sv.opt.tls_key, sv.opt.tls_ca, err, n) < 0)
		return -1;
	for (p = list; list && *(p += strspn(p, " \t,"));) {
		size_t len = strcspn(p, " \t,");

		snprintf(uri, sizeof(uri), "%.*s", (int)len, p);
		if (open_remote(uri, err, n) < 0)
			return -1;
		p += len;
	}
	if (n_remotes && !ev_retry)
		ev_retry = evtimer_new(sv.base, on_retry, NULL);
	return 0;
}

int listener_inherit(char *path, size_t n)
{
	struct sockaddr_un sun = {0};
	socklen_t len = sizeof(sun);
	int fds = sd_listen_fds(1), fd = SD_LISTEN_FDS_START;

	if (fds <= 0)
		return fds;
	if (fds != 1 || sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
		return -EBADF;
	if (evutil_make_socket_nonblocking(fd) < 0)
		return -errno;
	path[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == 0 &&
	    len > offsetof(struct sockaddr_un, sun_path) && sun.sun_path[0])
		snprintf(path, n, "%s", sun.sun_path);
	inherited_fd = fd;
	return 1;
}

/*
 * Make the socket's directory when it does not exist: 0700, or 0750 and
 * owned by --socket-group so that its members can reach the socket. An
 * existing directory is left as it is (it may be /tmp or a home directory).
 */
static int make_parent(const char *path)
{
	char dir[sizeof(sock_path)];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) == 0) {
		if (has_group && (chown(dir, (uid_t)-1, group_gid) < 0 || chmod(dir, 0750) < 0))
			return -errno;
		return 0;
	}
	if (errno != EEXIST)
		return -errno;
	if (has_group && stat(dir, &st) == 0 && !(st.st_mode & 0001) &&
	    !(st.st_gid == group_gid && (st.st_mode & 0010)))
		log_warn("%s (mode %04o) does not let group %s reach the socket", dir,
		         (unsigned)(st.st_mode & 07777), sv.opt.socket_group);
	return 0;
}

int listener_prepare(const char *path)
{
	if (sv.opt.socket_group) {
		struct group *g = getgrnam(sv.opt.socket_group);

		if (!g)
			return -EINVAL;
		has_group = 1;
		group_gid = g->gr_gid;
	}
	return inherited_fd >= 0 ? 0 : make_parent(path);
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
	evutil_socket_t fd = inherited_fd;
	mode_t old;
	int r;

	if (inherited_fd >= 0) {
		/* systemd made, bound and listens on it, and owns the file: backlog 0. */
		lev = evconnlistener_new(sv.base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 0, fd);
		if (!lev)
			return -EIO;
		inherited_fd = -1;
		evconnlistener_set_error_cb(lev, on_accept_error);
		if (!ev_retry)
			ev_retry = evtimer_new(sv.base, on_retry, NULL);
		return 0;
	}
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((r = clear_stale(&sun)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	old = umask(has_group ? 0117 : 0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || (has_group && chown(path, (uid_t)-1, group_gid) < 0) ||
	    chmod(path, has_group ? 0660 : 0600) < 0) {
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
	if (!ev_retry)
		ev_retry = evtimer_new(sv.base, on_retry, NULL);
	return 0;
}

void listener_close(void)
{
	while (n_remotes)
		evconnlistener_free(remotes[--n_remotes].lev);
	tls_server_free();
	if (ev_retry)
		event_free(ev_retry);
	ev_retry = NULL;
	if (!lev)
		return;
	evconnlistener_free(lev);
	lev = NULL;
	if (sock_path[0])
		unlink(sock_path);
}
