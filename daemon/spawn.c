/* spawn.c - the one careful fork+exec routine */
#include "spawn.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

pid_t spawn_process(char *const argv[])
{
	sigset_t all, old;
	pid_t parent = getpid(), pid;
	int sig;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		for (sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(127);
		close_range(3, ~0u, 0);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execv(argv[0], argv);
		_exit(127);
	}
	sig = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -sig : pid;
}
