/* spawn.c - the one careful fork+exec routine */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/* The running image, moved to this fd in the child before exec. */
#define SELF_FD 3

extern char **environ;

static int self_fd = -1;

int spawn_self_open(void)
{
	if (self_fd >= 0)
		return 0;
	self_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	return self_fd < 0 ? -errno : 0;
}

void spawn_self_close(void)
{
	if (self_fd >= 0)
		close(self_fd);
	self_fd = -1;
}

/* In the child: stdio from fds, the image (when self) at SELF_FD, nothing else open. */
static int child_fds(const int fds[3], int self)
{
	int i, keep = 2;

	for (i = 0; fds && i < 3; i++)
		if (fds[i] >= 0 && fds[i] != i && dup2(fds[i], i) < 0)
			return -1;
	if (self) {
		if (dup3(self_fd, SELF_FD, O_CLOEXEC) < 0)
			return -1;
		keep = SELF_FD;
	}
	return close_range((unsigned)keep + 1, ~0u, 0);
}

static pid_t spawn(char *const argv[], const int fds[3], int self)
{
	sigset_t all, old;
	pid_t parent = getpid(), pid;
	int sig;

	if (self && self_fd < 0)
		return -EBADF;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		for (sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(127);
		if (child_fds(fds, self) < 0)
			_exit(127);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (self)
			execveat(SELF_FD, "", argv, environ, AT_EMPTY_PATH);
		else
			execv(argv[0], argv);
		_exit(127);
	}
	sig = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -sig : pid;
}

pid_t spawn_process(char *const argv[], const int fds[3])
{
	return spawn(argv, fds, 0);
}

pid_t spawn_self(char *const argv[], const int fds[3])
{
	return spawn(argv, fds, 1);
}
