/* bench_client.c - the C side of bench/run.sh: timed, checked calls through libpoolclient */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "floor.h"
#include "poolclient.h"

/*
 * Every subcommand prints one JSON object on stdout (times in seconds or
 * microseconds, as named) and exits 0, or prints one line on stderr and exits 1
 * when a call failed or any result was wrong. Every result is checked.
 */

static const char usage[] =
    "usage: bench_client COMMAND ...\n"
    "  map SOCK N REPS              map square over 0..N-1 (pool_map_int64), REPS timed\n"
    "                               after a warm-up; also this process's CPU (warm-up\n"
    "                               included)\n"
    "  apply SOCK N WARMUP          N timed one-item applies of square: p50, p99\n"
    "  apply-spin SOCK N WARMUP US  the same with pool_set_spin(US): the client polls\n"
    "                               up to US microseconds before sleeping\n"
    "  calibrate SOCK MS            spin rounds for one apply of about MS milliseconds\n"
    "  spin SOCK ROUNDS ITEMS REPS  map spin(ROUNDS) over ITEMS items, REPS timed\n"
    "  mapfile SOCK FN FILE REPS    map FN over the JSON array in FILE; the results must\n"
    "                               equal the items (sleep_ms, echo), REPS timed\n"
    "  clients SOCK C N             C threads, one connection each, N applies each\n"
    "  check-squares N              stdin must be exactly the lines i*i for i = 0..N-1\n"
    "  pipeline SOCK N REPS         N one-item applies of add(i, 1) written at once on one\n"
    "                               raw connection, every answer checked, REPS timed\n"
    "  floor DIR N WARMUP           the design's floor: Unix socket and nanomsg ipc\n"
    "                               round trips (endpoints in DIR), p50, p99\n"
    "  rusage FILE CMD [ARG...]     run CMD (stdin, stdout shared), write its exit status\n"
    "                               peak RSS and CPU to FILE as JSON, exit with its status\n";

static __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_client: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A decimal argument in [lo, hi], or die. */
static long long arg_num(const char *s, long long lo, long long hi, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die("bad %s '%s' (want %lld..%lld)", what, s, lo, hi);
	return v;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static pool_client *xconnect(const char *sock)
{
	struct pool_error e = {0};
	pool_client *c = pool_connect(sock, &e);

	if (!c)
		die("connect %s: %s: %s", sock, e.code_name, e.message);
	return c;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/*
 * Parse the JSON array of integers in s (len bytes) into out[0..max-1].
 * Returns the count, or -1 when the text is not such an array (or has more
 * than max elements).
 */
static long parse_ints(const char *s, size_t len, int64_t *out, size_t max)
{
	const char *p = s, *end = s + len;
	size_t n = 0;

	p = skip_ws(p, end);
	if (p == end || *p++ != '[')
		return -1;
	p = skip_ws(p, end);
	if (p < end && *p == ']')
		return skip_ws(p + 1, end) == end ? 0 : -1;
	for (;;) {
		int neg = 0;
		uint64_t v = 0;
		const char *d;

		if (n == max)
			return -1;
		if (p < end && *p == '-') {
			neg = 1;
			p++;
		}
		d = p;
		while (p < end && *p >= '0' && *p <= '9' && p - d < 19)
			v = v * 10 + (uint64_t)(*p++ - '0');
		if (p == d || (p < end && *p >= '0' && *p <= '9'))
			return -1;
		out[n++] = neg ? -(int64_t)v : (int64_t)v;
		p = skip_ws(p, end);
		if (p == end)
			return -1;
		if (*p == ']')
			break;
		if (*p++ != ',')
			return -1;
		p = skip_ws(p, end);
	}
	return skip_ws(p + 1, end) == end ? (long)n : -1;
}

/* The bare JSON integer s (len bytes) in *v; -1 when it is not one. */
static int parse_int(const char *s, size_t len, int64_t *v)
{
	char *end;

	if (len == 0 || len > 20)
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno || end != s + len ? -1 : 0;
}

/* Seconds of a struct timeval. */
static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* ,"cpu_user_s":U,"cpu_sys_s":S: this whole process's CPU so far (warm-up included). */
static void print_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		die("getrusage: %s", strerror(errno));
	printf(",\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f", tv_s(ru.ru_utime), tv_s(ru.ru_stime));
}

static void print_times(const char *key, const double *t, int n)
{
	int i;

	printf("\"%s\":[", key);
	for (i = 0; i < n; i++)
		printf("%s%.6f", i ? "," : "", t[i]);
	printf("]");
}

/*
 * One timed map of square over x = 0..n-1 through pool_map_int64, the results
 * written over the items (as the API allows: no second array of n), then
 * every result checked and put back to its item: a result the next map fails
 * to write cannot pass as the old one (only 0 and 1 are their own squares).
 */
static double map_once(pool_client *c, int64_t *x, int64_t n)
{
	struct pool_error e = {0};
	double t0 = now_s(), t;
	int64_t i, sq = 0;
	uint64_t wrong = 0;

	if (pool_map_int64(c, "square", x, (size_t)n, NULL, x, &e) < 0)
		die("map square: %s: %s (index %ld)", e.code_name, e.message, e.index);
	t = now_s() - t0;
	/* one pass without a branch per result (the squares by their differences) */
	for (i = 0; i < n; i++) {
		wrong |= (uint64_t)(x[i] ^ sq);
		sq += 2 * i + 1;
		x[i] = i;
	}
	if (wrong)
		die("map square: a result is not its item's square");
	return t;
}

static int cmd_map(char **argv)
{
	pool_client *c = xconnect(argv[0]);
	int64_t n = arg_num(argv[1], 0, 94906265, "N"); /* (N-1)^2 < 2^53 */
	int reps = (int)arg_num(argv[2], 1, 1000, "REPS"), i;
	int64_t *x = xmalloc((size_t)n * sizeof *x), k;
	double warm, *t = xmalloc((size_t)reps * sizeof *t);

	for (k = 0; k < n; k++)
		x[k] = k;
	warm = map_once(c, x, n);
	for (i = 0; i < reps; i++)
		t[i] = map_once(c, x, n);
	printf("{\"items\":%" PRId64 ",\"warmup_s\":%.6f,", n, warm);
	print_times("times_s", t, reps);
	print_cpu();
	printf("}\n");
	pool_close(c);
	free(x);
	free(t);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted v[0..n-1] (bench.py uses the same rule). */
static double percentile(const double *v, long n, double p)
{
	long k = (long)((p / 100.0) * (double)n + 0.999999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

/* One apply of square(x), checked; returns its latency in seconds. */
static double apply_once(pool_client *c, int64_t x)
{
	struct pool_error e = {0};
	char args[32], *p = args, *out = NULL;
	size_t rlen;
	int64_t r;
	double t0, t;

	*p++ = '[';
	p = buf_fmt_int(p, x);
	*p++ = ']';
	t0 = now_s();
	if (pool_apply_text(c, "square", args, (size_t)(p - args), NULL, &out, &rlen, &e) < 0)
		die("apply square(%" PRId64 "): %s: %s", x, e.code_name, e.message);
	t = now_s() - t0;
	if (parse_int(out, rlen, &r) < 0 || r != x * x)
		die("apply square(%" PRId64 ") = %s", x, out);
	free(out);
	return t;
}

/* N timed applies after WARMUP, the client spinning up to spin_us for each reply. */
static int apply_run(char **argv, long spin_us)
{
	pool_client *c = xconnect(argv[0]);
	long n = (long)arg_num(argv[1], 1, 100000000, "N");
	long warm = (long)arg_num(argv[2], 0, 100000000, "WARMUP"), i;
	double *lat = xmalloc((size_t)n * sizeof *lat), sum = 0, t0, wall;
	struct pool_error e;

	if (pool_set_spin(c, spin_us, &e) < 0)
		die("pool_set_spin: %s", e.message);
	for (i = 0; i < warm; i++)
		apply_once(c, i);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		lat[i] = apply_once(c, i);
		sum += lat[i];
	}
	wall = now_s() - t0;
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	printf("{\"calls\":%ld,\"warmup\":%ld,\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,"
	       "\"min_us\":%.2f,\"max_us\":%.2f,\"wall_s\":%.6f}\n",
	       n, warm, percentile(lat, n, 50) * 1e6, percentile(lat, n, 99) * 1e6,
	       sum / (double)n * 1e6, lat[0] * 1e6, lat[n - 1] * 1e6, wall);
	pool_close(c);
	free(lat);
	return 0;
}

static int cmd_apply(char **argv)
{
	return apply_run(argv, 0);
}

static int cmd_apply_spin(char **argv)
{
	return apply_run(argv, (long)arg_num(argv[3], 0, 1000000, "SPIN_US"));
}

/* One apply of spin(rounds); its wall time in seconds, the hash in *h. */
static double spin_apply(pool_client *c, int64_t rounds, int64_t *h)
{
	struct pool_error e = {0};
	char args[32], *p = args, *out = NULL;
	size_t rlen;
	double t0 = now_s(), t;

	*p++ = '[';
	p = buf_fmt_int(p, rounds);
	*p++ = ']';
	if (pool_apply_text(c, "spin", args, (size_t)(p - args), NULL, &out, &rlen, &e) < 0)
		die("apply spin(%" PRId64 "): %s: %s", rounds, e.code_name, e.message);
	t = now_s() - t0;
	if (parse_int(out, rlen, h) < 0)
		die("apply spin: unexpected result %s", out);
	free(out);
	return t;
}

/* Scale the round count until one apply takes about ms milliseconds (median of 3). */
static int cmd_calibrate(char **argv)
{
	pool_client *c = xconnect(argv[0]);
	double want = (double)arg_num(argv[1], 1, 100000, "MS") / 1000.0, t[3];
	int64_t rounds = 100000, h;
	int iter, i;

	for (iter = 0; iter < 8; iter++) {
		for (i = 0; i < 3; i++)
			t[i] = spin_apply(c, rounds, &h);
		qsort(t, 3, sizeof *t, cmp_double);
		if (t[1] > want * 0.97 && t[1] < want * 1.03)
			break;
		/* Grow at most 100x per step: the first tiny timing is mostly overhead. */
		rounds = (int64_t)((double)rounds * (t[1] * 100 < want ? 100 : want / t[1]));
		if (rounds < 1)
			rounds = 1;
	}
	printf("{\"rounds\":%" PRId64 ",\"ms\":%.3f,\"iterations\":%d}\n", rounds, t[1] * 1e3,
	       iter + 1);
	pool_close(c);
	return 0;
}

static int cmd_spin(char **argv)
{
	pool_client *c = xconnect(argv[0]);
	int64_t rounds = arg_num(argv[1], 0, INT64_MAX / 2, "ROUNDS"), h, *res;
	long items = (long)arg_num(argv[2], 1, 10000000, "ITEMS"), k;
	int reps = (int)arg_num(argv[3], 1, 1000, "REPS"), i;
	double *t = xmalloc((size_t)reps * sizeof *t), t0;
	size_t alen = 0, rlen;
	char *args = xmalloc((size_t)items * 22 + 3), *p = args, *out;
	struct pool_error e = {0};

	spin_apply(c, rounds, &h);
	*p++ = '[';
	for (k = 0; k < items; k++) {
		p = buf_fmt_int(p, rounds);
		*p++ = ',';
	}
	p[-1] = ']';
	alen = (size_t)(p - args);
	res = xmalloc((size_t)items * sizeof *res);
	for (i = 0; i < reps; i++) {
		out = NULL;
		t0 = now_s();
		if (pool_map_text(c, "spin", args, alen, NULL, &out, &rlen, &e) < 0)
			die("map spin: %s: %s", e.code_name, e.message);
		t[i] = now_s() - t0;
		if (parse_ints(out, rlen, res, (size_t)items) != items)
			die("map spin: wrong result count");
		for (k = 0; k < items; k++)
			if (res[k] != h)
				die("map spin: item %ld is %" PRId64 ", want %" PRId64, k, res[k],
				    h);
		free(out);
	}
	printf("{\"rounds\":%" PRId64 ",\"items\":%ld,", rounds, items);
	print_times("times_s", t, reps);
	printf("}\n");
	pool_close(c);
	free(args);
	free(res);
	free(t);
	return 0;
}

/* The whole of a file, NUL-terminated. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0, k;
	char *buf = xmalloc(cap);

	if (!f)
		die("%s: %s", path, strerror(errno));
	while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die("out of memory");
		}
	}
	if (ferror(f))
		die("%s: read error", path);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int cmd_mapfile(char **argv)
{
	pool_client *c = xconnect(argv[0]);
	const char *fn = argv[1];
	int reps = (int)arg_num(argv[3], 1, 1000, "REPS"), i;
	size_t alen, rlen, cap;
	char *args = read_file(argv[2], &alen), *out;
	int64_t *want, *got;
	long n, m;
	double *t = xmalloc((size_t)reps * sizeof *t), t0;
	struct pool_error e = {0};

	cap = alen / 2 + 1;
	want = xmalloc(cap * sizeof *want);
	got = xmalloc(cap * sizeof *got);
	n = parse_ints(args, alen, want, cap);
	if (n < 0)
		die("%s: not a JSON array of integers", argv[2]);
	for (i = 0; i < reps; i++) {
		out = NULL;
		t0 = now_s();
		if (pool_map_text(c, fn, args, alen, NULL, &out, &rlen, &e) < 0)
			die("map %s: %s: %s", fn, e.code_name, e.message);
		t[i] = now_s() - t0;
		m = parse_ints(out, rlen, got, cap);
		if (m != n || memcmp(got, want, (size_t)n * sizeof *got) != 0)
			die("map %s: the results are not the items", fn);
		free(out);
	}
	printf("{\"items\":%ld,", n);
	print_times("times_s", t, reps);
	printf("}\n");
	pool_close(c);
	free(args);
	free(want);
	free(got);
	free(t);
	return 0;
}

struct client_job {
	const char *sock;
	long id, applies;
	pthread_barrier_t *start;
	pool_client *c;
	int failed;
	char why[640];
};

/* One client thread: n applies of square over its own range, every answer checked. */
static void *client_run(void *arg)
{
	struct client_job *j = arg;
	struct pool_error e = {0};
	char args[32], *p, *out;
	size_t rlen;
	long k;

	pthread_barrier_wait(j->start);
	for (k = 0; k < j->applies && !j->failed; k++) {
		int64_t x = j->id * j->applies + k, r;

		p = args;
		*p++ = '[';
		p = buf_fmt_int(p, x);
		*p++ = ']';
		out = NULL;
		if (pool_apply_text(j->c, "square", args, (size_t)(p - args), NULL, &out, &rlen,
		                    &e) < 0) {
			j->failed = 1;
			snprintf(j->why, sizeof j->why, "client %ld apply %ld: %s: %s", j->id, k,
			         e.code_name, e.message);
			break;
		}
		if (parse_int(out, rlen, &r) < 0 || r != x * x) {
			j->failed = 1;
			snprintf(j->why, sizeof j->why, "client %ld: square(%" PRId64 ") = %.40s",
			         j->id, x, out);
		}
		free(out);
	}
	return NULL;
}

static int cmd_clients(char **argv)
{
	long nc = (long)arg_num(argv[1], 1, 10000, "C");
	long na = (long)arg_num(argv[2], 1, 100000000, "N"), i, bad = 0;
	struct client_job *jobs = calloc((size_t)nc, sizeof *jobs);
	pthread_t *th = xmalloc((size_t)nc * sizeof *th);
	pthread_barrier_t start;
	double t0, wall;

	if (!jobs)
		die("out of memory");
	if (nc * na > 94906265) /* every x*x must stay below 2^53 */
		die("C*N must be at most 94906265");
	pthread_barrier_init(&start, NULL, (unsigned)nc + 1);
	for (i = 0; i < nc; i++) {
		jobs[i] =
		    (struct client_job){.sock = argv[0], .id = i, .applies = na, .start = &start};
		jobs[i].c = xconnect(argv[0]);
		if (pthread_create(&th[i], NULL, client_run, &jobs[i]) != 0)
			die("pthread_create failed");
	}
	t0 = now_s();
	pthread_barrier_wait(&start);
	for (i = 0; i < nc; i++)
		pthread_join(th[i], NULL);
	wall = now_s() - t0;
	for (i = 0; i < nc; i++) {
		if (jobs[i].failed && bad++ < 5)
			fprintf(stderr, "bench_client: %s\n", jobs[i].why);
		pool_close(jobs[i].c);
	}
	pthread_barrier_destroy(&start);
	free(jobs);
	free(th);
	if (bad)
		die("%ld of %ld clients failed", bad, nc);
	printf("{\"clients\":%ld,\"applies\":%ld,\"requests\":%ld,\"wall_s\":%.6f,\"rps\":%.1f}\n",
	       nc, na, nc * na, wall, (double)(nc * na) / wall);
	return 0;
}

/* Check one reply line of the pipeline: {"id":I,"ok":true,"result":I+1}; its id. */
static int64_t pipeline_check(const char *line, size_t len, int64_t n)
{
	char want[96];
	int64_t id;
	char *end;

	if (len < 7 || memcmp(line, "{\"id\":", 6) != 0)
		die("pipeline: unexpected reply %.*s", (int)(len > 200 ? 200 : len), line);
	id = strtoll(line + 6, &end, 10);
	snprintf(want, sizeof want, ",\"ok\":true,\"result\":%" PRId64 "}", id + 1);
	if (id < 0 || id >= n || (size_t)(line + len - end) != strlen(want) ||
	    memcmp(end, want, strlen(want)) != 0)
		die("pipeline: wrong reply %.*s", (int)(len > 200 ? 200 : len), line);
	return id;
}

/* One round: write all n requests (reading replies as they come), check every answer. */
static double pipeline_round(const char *sock, const char *req, size_t req_len, int64_t n)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	static char buf[1 << 20];
	size_t sent = 0, have = 0;
	int64_t got = 0;
	char *seen = calloc((size_t)n, 1);
	double t0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock);
	if (fd < 0 || !seen || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
		die("pipeline: connect %s: %s", sock, strerror(errno));
	t0 = now_s();
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < req_len ? POLLOUT : 0)};
		ssize_t k;
		char *nl, *line;

		if (poll(&p, 1, 60000) <= 0)
			die("pipeline: no progress for 60 s (%" PRId64 " answers)", got);
		if ((p.revents & POLLOUT) && sent < req_len) {
			k = write(fd, req + sent, req_len - sent);
			if (k > 0)
				sent += (size_t)k;
		}
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		k = read(fd, buf + have, sizeof buf - have);
		if (k == 0)
			die("pipeline: poold closed the connection");
		if (k < 0)
			continue;
		have += (size_t)k;
		line = buf;
		while ((nl = memchr(line, '\n', (size_t)(buf + have - line)))) {
			int64_t id = pipeline_check(line, (size_t)(nl - line), n);

			if (seen[id]++)
				die("pipeline: two answers for id %" PRId64, id);
			got++;
			line = nl + 1;
		}
		have = (size_t)(buf + have - line);
		memmove(buf, line, have);
	}
	t0 = now_s() - t0;
	close(fd);
	free(seen);
	return t0;
}

static int cmd_pipeline(char **argv)
{
	int64_t n = arg_num(argv[1], 1, 10000000, "N"), i;
	long reps = (long)arg_num(argv[2], 1, 1000, "REPS"), r;
	char *req = xmalloc((size_t)n * 64);
	size_t len = 0;

	for (i = 0; i < n; i++)
		len +=
		    (size_t)sprintf(req + len,
		                    "{\"id\":%" PRId64
		                    ",\"op\":\"apply\",\"fn\":\"add\",\"args\":[%" PRId64 ",1]}\n",
		                    i, i);
	pipeline_round(argv[0], req, len, n); /* warm-up: the function's cost is measured */
	printf("{\"requests\":%" PRId64 ",\"times_s\":[", n);
	for (r = 0; r < reps; r++)
		printf("%s%.6f", r ? "," : "", pipeline_round(argv[0], req, len, n));
	printf("]}\n");
	free(req);
	return 0;
}

/* stdin must be exactly the lines "i*i\n" for i = 0..n-1; parsed in 1 MiB reads. */
static int cmd_check_squares(char **argv)
{
	int64_t n = arg_num(argv[0], 0, 94906265, "N"), line = 0;
	static char buf[1 << 20];
	uint64_t v = 0;
	int digits = 0;
	ssize_t k;

	while ((k = read(0, buf, sizeof buf)) != 0) {
		const char *p = buf, *end;

		if (k < 0) {
			if (errno == EINTR)
				continue;
			die("check-squares: read: %s", strerror(errno));
		}
		end = buf + k;
		for (; p < end; p++) {
			if (*p >= '0' && *p <= '9' && digits < 19) {
				v = v * 10 + (uint64_t)(*p - '0');
				digits++;
			} else if (*p == '\n' && digits > 0) {
				if (line >= n)
					die("check-squares: more than %" PRId64 " lines", n);
				if (v != (uint64_t)(line * line))
					die("check-squares: line %" PRId64 " is %" PRIu64
					    ", want %" PRId64,
					    line + 1, v, line * line);
				line++;
				v = 0;
				digits = 0;
			} else {
				die("check-squares: line %" PRId64 ": unexpected byte 0x%02x",
				    line + 1, (unsigned char)*p);
			}
		}
	}
	if (digits)
		die("check-squares: last line has no newline");
	if (line != n)
		die("check-squares: %" PRId64 " lines, want %" PRId64, line, n);
	printf("{\"lines\":%" PRId64 "}\n", line);
	return 0;
}

/*
 * fork (not vfork) and exec, then wait4: the child's ru_maxrss. Linux keeps
 * the pre-exec high-water mark across execve, so the figure is at least this
 * small program's own RSS at the fork (about 1-2 MiB), never the RSS of
 * whatever started bench_client (a Python orchestrator is ~17 MiB).
 */
static int cmd_rusage(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *f;

	if (argc < 2)
		die("rusage: FILE CMD [ARG...]");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "bench_client: exec %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			die("wait4: %s", strerror(errno));
	f = fopen(argv[0], "w");
	if (!f)
		die("%s: %s", argv[0], strerror(errno));
	fprintf(f,
	        "{\"exit\":%d,\"signal\":%d,\"maxrss_kib\":%ld,\"cpu_user_s\":%.6f,"
	        "\"cpu_sys_s\":%.6f}\n",
	        WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	        WIFSIGNALED(status) ? WTERMSIG(status) : 0, ru.ru_maxrss, tv_s(ru.ru_utime),
	        tv_s(ru.ru_stime));
	if (fclose(f) != 0)
		die("%s: write error", argv[0]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* floor DIR N WARMUP: the design's floor (see floor.h). */
static int cmd_floor_args(char **argv)
{
	return cmd_floor(argv[0], (long)arg_num(argv[1], 1, 100000000, "N"),
	                 (long)arg_num(argv[2], 0, 100000000, "WARMUP"));
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int nargs;
		int (*run)(char **argv);
	} cmds[] = {
	    {"map", 3, cmd_map},
	    {"apply", 3, cmd_apply},
	    {"apply-spin", 4, cmd_apply_spin},
	    {"calibrate", 2, cmd_calibrate},
	    {"spin", 4, cmd_spin},
	    {"mapfile", 4, cmd_mapfile},
	    {"clients", 3, cmd_clients},
	    {"check-squares", 1, cmd_check_squares},
	    {"pipeline", 3, cmd_pipeline},
	    {"floor", 3, cmd_floor_args},
	};
	size_t i;

	if (argc > 1 && strcmp(argv[1], "rusage") == 0)
		return cmd_rusage(argc - 2, argv + 2);
	for (i = 0; argc > 1 && i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(argv[1], cmds[i].name) == 0) {
			if (argc - 2 != cmds[i].nargs)
				break;
			return cmds[i].run(argv + 2);
		}
	fputs(usage, stderr);
	return 2;
}
