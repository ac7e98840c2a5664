/* child.c - user programs and commands started by a worker, in process groups of their own */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_STACK (256 * 1024)
#define READ_CHUNK 65536

extern char **environ;

struct spawn_arg {
	char *const *argv;
	char *const *envp;
	const char *cwd;
	int fds[3];
	pid_t parent;
	int err; /* set by the child when it cannot exec (shared memory) */
};

long long child_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Runs in the child, on its own stack, sharing the worker's memory until
 * exec: only system calls here, and a failure is reported through a->err.
 */
static int child_main(void *p)
{
	struct spawn_arg *a = p;
	sigset_t none;
	int sig, i;

	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != a->parent) {
		errno = ESRCH;
		goto fail;
	}
	for (i = 0; i < 3; i++)
		if (dup2(a->fds[i], i) < 0)
			goto fail;
	if (close_range(3, ~0u, 0) < 0 || (a->cwd && chdir(a->cwd) < 0))
		goto fail;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(a->argv[0], a->argv, a->envp);
fail:
	a->err = errno ? errno : EINVAL;
	_exit(127);
}

/* The worker's environment with env's NAME=VALUE pairs added or replacing. */
static char **env_merge(char *const env[])
{
	size_t n = 0, m = 0, i, j, k = 0;
	char **out;

	while (environ[n])
		n++;
	while (env && env[m])
		m++;
	out = calloc(n + m + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t len = strcspn(environ[i], "=");

		for (j = 0; j < m; j++)
			if (strncmp(env[j], environ[i], len) == 0 && env[j][len] == '=')
				break;
		if (j == m)
			out[k++] = environ[i];
	}
	for (j = 0; j < m; j++)
		out[k++] = env[j];
	return out;
}

/* A close-on-exec pipe whose two ends are above 2 (so dup2 onto 0-2 never clobbers). */
static int pipe_high(int p[2])
{
	int i;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	for (i = 0; i < 2; i++) {
		if (p[i] <= 2) {
			int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);

			close(p[i]);
			p[i] = fd;
		}
	}
	if (p[0] < 0 || p[1] < 0) {
		if (p[0] >= 0)
			close(p[0]);
		if (p[1] >= 0)
			close(p[1]);
		return -EMFILE;
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int child_spawn(struct child *c, char *const argv[], char *const env[], const char *cwd,
                int pipe_in)
{
	static char *stack;
	struct spawn_arg a = {.argv = argv, .cwd = cwd, .parent = getpid()};
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, rc, i;
	sigset_t all, old;
	pid_t pid;

	*c = (struct child){.in = -1, .out = -1, .err = -1, .pidfd = -1};
	if (!stack) {
		void *s = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

		if (s == MAP_FAILED)
			return -errno;
		stack = s;
	}
	a.envp = env ? env_merge(env) : environ;
	if (!a.envp)
		return -ENOMEM;
	if (pipe_in)
		rc = pipe_high(pin);
	else if ((pin[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		rc = -errno;
	else
		rc = 0;
	if (rc == 0)
		rc = pipe_high(pout);
	if (rc == 0)
		rc = pipe_high(perr);
	if (rc < 0)
		goto out;
	a.fds[0] = pin[0];
	a.fds[1] = pout[1];
	a.fds[2] = perr[1];
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = clone(child_main, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	rc = pid < 0 ? -errno : 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rc == 0 && a.err) {
		waitpid(pid, NULL, 0);
		rc = -a.err;
	}
	if (rc < 0)
		goto out;
	c->pid = pid;
	c->in = pin[1];
	c->out = pout[0];
	c->err = perr[0];
	pin[1] = pout[0] = perr[0] = -1;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (i = 0; i < 3; i++) {
		int fd = i == 0 ? c->in : i == 1 ? c->out : c->err;

		if (fd >= 0)
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
out:
	close_fd(&pin[0]);
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&pout[1]);
	close_fd(&perr[0]);
	close_fd(&perr[1]);
	if (a.envp != environ)
		free((void *)a.envp);
	return rc;
}

/* Write to stdin without SIGPIPE: the signal is blocked, and consumed if raised. */
static int write_in(struct child *c, struct child_io *io)
{
	sigset_t pipe_set, old;
	struct timespec zero = {0, 0};
	ssize_t n;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(c->in, io->in_p, io->in_left);
	if (n < 0 && errno == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		/* The reader is gone: what it did not take is dropped. */
		io->in_left = 0;
		return errno == EPIPE ? 0 : -errno;
	}
	io->in_p += n;
	io->in_left -= (size_t)n;
	io->in_done += (size_t)n;
	if (io->in_left == 0 && io->close_in)
		close_fd(&c->in);
	return 0;
}

static int read_out(struct child *c, struct child_io *io)
{
	ssize_t n;

	if (io->out->len >= io->out_max)
		return -ENOBUFS;
	if (buf_reserve(io->out, READ_CHUNK + 1) < 0)
		return -ENOMEM;
	n = read(c->out, io->out->data + io->out->len, READ_CHUNK);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		close_fd(&c->out);
	io->out->len += (size_t)n;
	io->out->data[io->out->len] = '\0';
	return io->out->len > io->out_max ? -ENOBUFS : 0;
}

static int read_err(struct child *c, struct child_io *io)
{
	char b[4096];
	ssize_t n = read(c->err, b, sizeof(b));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		close_fd(&c->err);
	if (io->on_err)
		io->on_err(io->arg, b, (size_t)n);
	return 0;
}

static void reap(struct child *c)
{
	int st;

	if (!c->reaped && waitpid(c->pid, &st, WNOHANG) == c->pid) {
		c->reaped = 1;
		c->status = st;
		close_fd(&c->pidfd);
	}
}

int child_pump(struct child *c, struct child_io *io, int ms)
{
	struct pollfd p[4];
	int n = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1, rc, i;

	if (c->in >= 0 && io->in_left) {
		i_in = n;
		p[n++] = (struct pollfd){.fd = c->in, .events = POLLOUT};
	}
	if (c->out >= 0) {
		i_out = n;
		p[n++] = (struct pollfd){.fd = c->out, .events = POLLIN};
	}
	if (c->err >= 0) {
		i_err = n;
		p[n++] = (struct pollfd){.fd = c->err, .events = POLLIN};
	}
	if (c->pidfd >= 0) {
		i_pid = n;
		p[n++] = (struct pollfd){.fd = c->pidfd, .events = POLLIN};
	}
	rc = poll(p, (nfds_t)n, ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	for (i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		if (i == i_in)
			rc = write_in(c, io);
		else if (i == i_out)
			rc = read_out(c, io);
		else if (i == i_err)
			rc = read_err(c, io);
		else if (i == i_pid)
			reap(c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

size_t child_unread(const struct child *c)
{
	int n = 0;

	if (c->in < 0 || ioctl(c->in, FIONREAD, &n) < 0 || n < 0)
		return 0;
	return (size_t)n;
}

void child_kill_group(pid_t pgid)
{
	if (pgid > 0)
		kill(-pgid, SIGKILL);
}

int child_stop(struct child *c, int grace_ms)
{
	long long end = child_now_ms() + grace_ms;

	if (c->pid <= 0)
		return 0;
	close_fd(&c->in);
	while (!c->reaped && grace_ms > 0) {
		long long left = end - child_now_ms();
		struct pollfd p = {.fd = c->pidfd, .events = POLLIN};

		if (left <= 0)
			break;
		if (c->pidfd >= 0)
			poll(&p, 1, (int)left);
		else
			usleep(10000);
		reap(c);
	}
	child_kill_group(c->pid);
	if (!c->reaped && waitpid(c->pid, &c->status, 0) == c->pid)
		c->reaped = 1;
	close_fd(&c->out);
	close_fd(&c->err);
	close_fd(&c->pidfd);
	c->pid = 0;
	return c->status;
}
