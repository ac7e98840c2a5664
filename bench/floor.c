/* floor.c - the floor of poold's design: one Unix socket round trip plus one
 * nanomsg ipc PUSH/PULL round trip between two processes, nothing else. */
#include "floor.h"

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG "{\"id\":1,\"op\":\"apply\",\"fn\":\"square\",\"args\":[12345]}\n"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void fail(const char *what)
{
	fprintf(stderr, "bench_client floor: %s\n", what);
	exit(1);
}

/* Echo every message of a PULL socket back on a PUSH socket (child, never returns). */
static void nn_echo(const char *in_url, const char *out_url)
{
	int in = nn_socket(AF_SP, NN_PULL), out = nn_socket(AF_SP, NN_PUSH);
	char *m;
	int r;

	if (in < 0 || out < 0 || nn_bind(in, in_url) < 0 || nn_connect(out, out_url) < 0)
		_exit(1);
	while ((r = nn_recv(in, &m, NN_MSG, 0)) > 1)
		if (nn_send(out, &m, NN_MSG, 0) < 0)
			_exit(1);
	_exit(0);
}

/* Round trips of one message through a nanomsg echo process: n timed after warm. */
static void nn_round_trips(const char *dir, long n, long warm, double *lat)
{
	char a[256], b[256], buf[256];
	int in, out;
	long i;
	pid_t p;

	snprintf(a, sizeof(a), "ipc://%s/floor-a.ipc", dir);
	snprintf(b, sizeof(b), "ipc://%s/floor-b.ipc", dir);
	/* Fork before any nanomsg socket exists: nanomsg is not fork-safe. */
	p = fork();
	if (p < 0)
		fail("fork");
	if (p == 0)
		nn_echo(a, b);
	in = nn_socket(AF_SP, NN_PULL);
	out = nn_socket(AF_SP, NN_PUSH);
	if (in < 0 || out < 0 || nn_bind(in, b) < 0 || nn_connect(out, a) < 0)
		fail("nanomsg sockets");
	for (i = -warm; i < n; i++) {
		double t = now_us();

		if (nn_send(out, MSG, sizeof(MSG) - 1, 0) < 0 ||
		    nn_recv(in, buf, sizeof(buf), 0) < 0)
			fail("nanomsg round trip");
		if (i >= 0)
			lat[i] = now_us() - t;
	}
	if (nn_send(out, "q", 1, 0) < 0)
		kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	nn_close(in);
	nn_close(out);
}

/* Round trips of one line through an echo process over a Unix socketpair. */
static void unix_round_trips(long n, long warm, double *lat)
{
	char buf[256];
	int sv[2];
	long i;
	pid_t p;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		fail("socketpair");
	p = fork();
	if (p < 0)
		fail("fork");
	if (p == 0) {
		ssize_t r;

		close(sv[0]);
		while ((r = read(sv[1], buf, sizeof(buf))) > 0)
			if (write(sv[1], buf, (size_t)r) != r)
				_exit(1);
		_exit(0);
	}
	close(sv[1]);
	for (i = -warm; i < n; i++) {
		double t = now_us();

		if (write(sv[0], MSG, sizeof(MSG) - 1) != sizeof(MSG) - 1 ||
		    read(sv[0], buf, sizeof(buf)) <= 0)
			fail("unix round trip");
		if (i >= 0)
			lat[i] = now_us() - t;
	}
	close(sv[0]);
	waitpid(p, NULL, 0);
}

int cmd_floor(const char *dir, long n, long warm)
{
	double *ipc = malloc((size_t)n * sizeof(*ipc)), *ux = malloc((size_t)n * sizeof(*ux));

	if (!ipc || !ux)
		fail("out of memory");
	nn_round_trips(dir, n, warm, ipc);
	unix_round_trips(n, warm, ux);
	qsort(ipc, (size_t)n, sizeof(*ipc), cmp);
	qsort(ux, (size_t)n, sizeof(*ux), cmp);
	/* One apply needs both trips: the floor is their sum. */
	printf("{\"trips\":%ld,\"ipc_p50_us\":%.2f,\"ipc_p99_us\":%.2f,\"unix_p50_us\":%.2f,"
	       "\"unix_p99_us\":%.2f,\"floor_p50_us\":%.2f}\n",
	       n, ipc[n / 2], ipc[n * 99 / 100], ux[n / 2], ux[n * 99 / 100],
	       ipc[n / 2] + ux[n / 2]);
	free(ipc);
	free(ux);
	return 0;
}
