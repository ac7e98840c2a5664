/* poolctl_out.c - poolctl's buffered standard output and its progress line on stderr */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "poolctl.h"

#define OUT_SIZE 65536
#define PROGRESS_MS 200 /* at most 5 updates a second */

static struct {
	char buf[OUT_SIZE];
	size_t len;
	int same_tty; /* stdout is a terminal: take the progress line away before writing */
} out;

static struct {
	int on;
	int shown; /* the line is on the terminal now */
	int64_t start_ms, last_ms;
} prog;

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write all of p to fd, waiting when fd is non-blocking; 0 or -errno. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};

			poll(&pf, 1, -1);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Set up: progress 1 = show the progress line, 0 = not. */
void poolctl_out_init(int progress)
{
	out.len = 0;
	out.same_tty = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
	prog.on = progress;
	prog.shown = 0;
	prog.start_ms = prog.last_ms = now_ms();
}

/* Write what is buffered to stdout; 0 or -errno. */
int poolctl_out_flush(void)
{
	int r;

	if (out.len == 0)
		return 0;
	if (out.same_tty)
		poolctl_progress_clear();
	r = write_all(STDOUT_FILENO, out.buf, out.len);
	out.len = 0;
	return r;
}

/* Append n bytes to the output buffer, writing it out when full; 0 or -errno. */
int poolctl_out_write(const char *p, size_t n)
{
	int r;

	if (out.len + n <= OUT_SIZE) {
		memcpy(out.buf + out.len, p, n);
		out.len += n;
		return 0;
	}
	r = poolctl_out_flush();
	if (r < 0)
		return r;
	if (n > OUT_SIZE / 2) {
		if (out.same_tty)
			poolctl_progress_clear();
		return write_all(STDOUT_FILENO, p, n);
	}
	memcpy(out.buf, p, n);
	out.len = n;
	return 0;
}

int poolctl_out_lines(const char *p, size_t n)
{
	while (n > 0) {
		size_t k = n < OUT_SIZE - out.len ? n : OUT_SIZE - out.len, i;
		char *d = out.buf + out.len;
		int r;

		memcpy(d, p, k);
		for (i = 0; i < k; i++)
			if (d[i] == ',')
				d[i] = '\n';
		out.len += k;
		p += k;
		n -= k;
		if (out.len == OUT_SIZE && (r = poolctl_out_flush()) < 0)
			return r;
	}
	return 0;
}

/* Append one value and a newline: a string decoded when raw, else its JSON text. */
int poolctl_out_value(struct json_span v, int raw)
{
	static struct buf text;
	int r;

	if (raw && json_type(v) == JSON_STRING) {
		if (json_string_decode(v, &text) < 0)
			return -ENOMEM;
		r = poolctl_out_write(text.data, text.len);
	} else {
		r = poolctl_out_write(v.p, v.len);
	}
	return r < 0 ? r : poolctl_out_write("\n", 1);
}

/* Format a count with k/M/G suffix into b ("12", "12.3k", "4.56M"). */
static const char *human(char *b, size_t n, double v)
{
	if (v < 1000)
		snprintf(b, n, "%.0f", v);
	else if (v < 1e6)
		snprintf(b, n, "%.1fk", v / 1e3);
	else if (v < 1e9)
		snprintf(b, n, "%.2fM", v / 1e6);
	else
		snprintf(b, n, "%.2fG", v / 1e9);
	return b;
}

/* Format seconds as "4.2s", "42s", "3m07s" or "2h05m" into b. */
static const char *duration(char *b, size_t n, double sec)
{
	long s = (long)(sec + 0.5);

	if (sec < 9.95)
		snprintf(b, n, "%.1fs", sec);
	else if (s < 60)
		snprintf(b, n, "%lds", s);
	else if (s < 3600)
		snprintf(b, n, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(b, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
	return b;
}

/*
 * Redraw the progress line (done items, of total when total >= 0, rate and
 * ETA) unless it was drawn less than PROGRESS_MS ago and force is 0.
 */
void poolctl_progress_show(long done, long total, int force)
{
	char line[160], b[2][32];
	int64_t now;
	double sec, rate;
	int k;

	if (!prog.on)
		return;
	now = now_ms();
	if (!force && now - prog.last_ms < PROGRESS_MS)
		return;
	prog.last_ms = now;
	sec = (double)(now - prog.start_ms) / 1000.0;
	rate = sec > 0 ? (double)done / sec : 0;
	k = snprintf(line, sizeof(line), "\r\033[Kpoolctl: %ld", done);
	if (total >= 0)
		k += snprintf(line + k, sizeof(line) - (size_t)k, "/%ld (%.0f%%)", total,
		              total > 0 ? 100.0 * (double)done / (double)total : 100.0);
	k += snprintf(line + k, sizeof(line) - (size_t)k, " done, %s items/s",
	              human(b[0], sizeof(b[0]), rate));
	if (total >= 0 && rate > 0 && done < total)
		snprintf(line + k, sizeof(line) - (size_t)k, ", ETA %s",
		         duration(b[1], sizeof(b[1]), (double)(total - done) / rate));
	write_all(STDERR_FILENO, line, strlen(line));
	prog.shown = 1;
}

/* Erase the progress line if it is shown (before other output on the terminal). */
void poolctl_progress_clear(void)
{
	if (!prog.shown)
		return;
	write_all(STDERR_FILENO, "\r\033[K", 4);
	prog.shown = 0;
}

/* Milliseconds to wait at most before the progress line wants an update (-1: none). */
int poolctl_progress_wait(void)
{
	int64_t left;

	if (!prog.on)
		return -1;
	left = prog.last_ms + PROGRESS_MS - now_ms();
	return left > 0 ? (int)left : 0;
}
