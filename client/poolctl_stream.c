/* poolctl_stream.c - poolctl map and starmap streaming: stdin in, results out as they come */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "poolclient.h"
#include "poolctl.h"

#define BATCH_ITEMS 4096   /* a feed holds at most this many items */
#define BATCH_BYTES 262144 /* or about this many bytes */
#define READ_CHUNK 65536   /* bytes read from stdin at a time */
#define POLL_STDIN 0       /* index of stdin in the poll set */
#define POLL_SOCKET 1

struct streamer {
	pool_client *c;
	pool_stream *s;
	int star, unordered, raw_in, raw_out;
	long deadline_ms; /* --deadline, 0 = none */
	int64_t until;    /* the time it ends (ms, monotonic clock) */
	char bad[320];    /* the complaint about a bad line; feeding stopped before it */
	/* input */
	char *in; /* bytes read from stdin; complete lines first */
	size_t in_len, in_cap;
	int in_done;      /* end of input reached and the stream ended */
	long lineno;      /* stdin lines seen */
	struct buf batch; /* "[item,item" being collected for the next feed */
	long batch_items;
	long fed;        /* items fed */
	int feed_failed; /* a feed failed: its error is in feed_err unless the stream says more */
	struct pool_error feed_err;
	/* output */
	long done; /* results written */
	struct pool_error err;
	int exit_code; /* RUN_EXIT: the status, its message printed */
};

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Append an item to the batch: 0, 1 when it is bad (st->bad says why; the
 * items before it are still fed and answered), or EXIT_USAGE (out of memory).
 */
static int add_item(struct streamer *st, const char *p, size_t len, const char *what, long n)
{
	size_t mark = st->batch.len;
	char why[200];
	int r;

	if (buf_addc(&st->batch, st->batch_items ? ',' : '[') < 0)
		return poolctl_fail("out of memory");
	r = poolctl_item(&st->batch, p, len, st->raw_in, st->star, why, sizeof(why));
	if (r == -1) {
		st->batch.len = mark;
		snprintf(st->bad, sizeof(st->bad), "%s %ld %s", what, n, why);
		return 1;
	}
	if (r < 0)
		return poolctl_fail("out of memory");
	st->batch_items++;
	return 0;
}

/* 1 when the line p (n bytes) has something besides spaces, tabs and CRs. */
static int not_blank(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 1;
	return 0;
}

/* Give the library the time left before the deadline for its next blocking call. */
static void arm(struct streamer *st)
{
	int64_t left;

	if (!st->until)
		return;
	left = st->until - now_ms();
	pool_set_deadline(st->c, left > 1 ? (long)left : 1, NULL);
}

/* Send the batch as one feed; 0, or -1 when it failed (feed_err says why, or the stream does). */
static int feed(struct streamer *st)
{
	int r = -POOL_ENOMEM;

	if (st->batch_items == 0)
		return 0;
	arm(st);
	if (buf_addc(&st->batch, ']') == 0)
		r = pool_stream_feed_text(st->s, st->batch.data, st->batch.len, &st->feed_err);
	else
		st->feed_err = (struct pool_error){
		    .code = POOL_ENOMEM, .message = "out of memory", .index = -1};
	st->fed += st->batch_items;
	st->batch_items = 0;
	buf_reset(&st->batch);
	st->feed_failed = r < 0;
	return r < 0 ? -1 : 0;
}

/* Write the results of one part, one per line (unordered: INDEX<TAB>VALUE); 0 or -errno. */
static int write_part(struct streamer *st, long index, const char *text, size_t len)
{
	struct json_span arr = {text, len}, e;
	struct json_iter it;
	char num[32];
	size_t n;
	int r = 0;

	if (!st->unordered && json_int_array(text, text + len, &n)) {
		/* integers, the common case: one copy, commas turned into newlines */
		st->done += (long)n;
		if (n == 0)
			return 0;
		r = poolctl_out_lines(text + 1, len - 2);
		return r < 0 ? r : poolctl_out_write("\n", 1);
	}
	json_iter_init(&it, arr);
	while (r == 0 && json_array_next(&it, &e)) {
		if (st->unordered) {
			int k = snprintf(num, sizeof(num), "%ld\t", index++);

			r = poolctl_out_write(num, (size_t)k);
		}
		if (r == 0)
			r = poolctl_out_value(e, st->raw_out);
		st->done++;
	}
	return r;
}

/* How run() ended. */
enum { RUN_DONE, RUN_FAILED, RUN_OUTPUT, RUN_EXIT };

/*
 * Write every part already there: RUN_DONE when the stream is done, -1 when
 * nothing more is there now, RUN_FAILED (st->err) or RUN_OUTPUT (errno).
 */
static int drain(struct streamer *st)
{
	char *text;
	size_t len;
	long index;
	int r;

	while ((r = pool_stream_next_text(st->s, 0, &index, &text, &len, &st->err)) == 1) {
		int w = write_part(st, index, text, len);

		free(text);
		if (w < 0) {
			errno = -w;
			return RUN_OUTPUT;
		}
		poolctl_progress_show(st->done, st->in_done ? st->fed : -1, 0);
	}
	if (r == -POOL_EAGAIN)
		return -1;
	return r == 0 ? RUN_DONE : RUN_FAILED;
}

static int end_input(struct streamer *st);

/*
 * Take the complete lines in st->in as items; a full batch is fed. 0, -1 (the
 * stream ended, or a bad line ended the input), or an exit status.
 */
static int take_lines(struct streamer *st, int at_eof)
{
	size_t pos = 0;
	int r;

	for (;;) {
		char *nl = memchr(st->in + pos, '\n', st->in_len - pos);
		size_t end = nl ? (size_t)(nl - st->in) : st->in_len;

		if (!nl && (!at_eof || pos == st->in_len))
			break;
		st->lineno++;
		/* blank lines are skipped, but not in raw mode: there they are "" */
		if (st->raw_in || not_blank(st->in + pos, end - pos)) {
			r = add_item(st, st->in + pos, end - pos, "stdin line", st->lineno);
			if (r == 1) {
				end_input(st);
				return -1;
			}
			if (r)
				return r;
		}
		pos = nl ? end + 1 : st->in_len;
		if ((st->batch_items >= BATCH_ITEMS || st->batch.len >= BATCH_BYTES) &&
		    feed(st) < 0)
			return -1;
	}
	memmove(st->in, st->in + pos, st->in_len - pos);
	st->in_len -= pos;
	return 0;
}

/* Feed what is left and end the stream; 0 or -1 (the stream ended). */
static int end_input(struct streamer *st)
{
	st->in_done = 1;
	if (feed(st) < 0)
		return -1;
	arm(st);
	if (pool_stream_end(st->s, &st->feed_err) < 0) {
		st->feed_failed = 1;
		return -1;
	}
	return 0;
}

/* Read once from stdin (it is readable) and take its lines; 0, -1 (stream ended) or exit. */
static int read_input(struct streamer *st)
{
	ssize_t n;
	int r;

	if (st->in_cap - st->in_len < READ_CHUNK / 2) {
		size_t cap = st->in_cap ? st->in_cap * 2 : READ_CHUNK;
		char *p = realloc(st->in, cap);

		if (!p)
			return poolctl_fail("out of memory");
		st->in = p;
		st->in_cap = cap;
	}
	do
		n = read(STDIN_FILENO, st->in + st->in_len, st->in_cap - st->in_len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		poolctl_progress_clear();
		return poolctl_fail("reading stdin: %s", strerror(errno));
	}
	st->in_len += (size_t)n;
	st->in[st->in_len] = '\0';
	r = take_lines(st, n == 0);
	if (r)
		return r;
	if (n > 0)
		return 0;
	return end_input(st);
}

/* 1 when fd has something to read now (or hung up). */
static int readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Wait for stdin (unless done), the socket, or the next progress update. */
static void wait_events(struct streamer *st)
{
	struct pollfd p[2] = {
	    [POLL_STDIN] = {.fd = st->in_done ? -1 : STDIN_FILENO, .events = POLLIN},
	    [POLL_SOCKET] = {.fd = pool_stream_fd(st->s), .events = POLLIN},
	};

	int wait = poolctl_progress_wait();

	if (st->until) {
		int64_t left = st->until - now_ms();

		if (left < 0)
			left = 0;
		if (wait < 0 || left < wait)
			wait = (int)left;
	}
	poolctl_progress_show(st->done, st->in_done ? st->fed : -1, 0);
	poll(p, 2, wait);
}

/* The loop: read what stdin has, feed it, write the results that came, wait. */
static int run(struct streamer *st)
{
	int r;

	for (;;) {
		r = drain(st);
		if (r >= 0)
			return r;
		if (st->feed_failed) {
			/* the stream did not end, so the feed's own error is the reason */
			st->err = st->feed_err;
			return RUN_FAILED;
		}
		if (!st->in_done && readable(STDIN_FILENO)) {
			r = read_input(st);
			if (r > 0) {
				st->exit_code = r; /* its message was printed */
				return RUN_EXIT;
			}
			if (r < 0)
				st->in_done = 1; /* the stream ended: drain says why */
			continue;
		}
		if (!st->in_done && st->batch_items > 0) {
			if (feed(st) < 0)
				st->in_done = 1;
			continue;
		}
		if (poolctl_out_flush() < 0)
			return RUN_OUTPUT;
		if (st->until && now_ms() >= st->until) {
			st->err = (struct pool_error){.code = POOL_ETIMEDOUT, .index = -1};
			snprintf(st->err.message, sizeof(st->err.message),
			         "not done within the deadline (%ld ms); the request was cancelled",
			         st->deadline_ms);
			return RUN_FAILED;
		}
		wait_events(st);
	}
}

/* The exit status for how the stream ended (how from run()), with its message. */
static int finish(struct streamer *st, int how)
{
	struct pool_error first;
	long nfail;
	int w = how == RUN_OUTPUT ? -errno : poolctl_out_flush();

	poolctl_progress_clear();
	if (w < 0)
		return poolctl_fail("writing the results: %s", strerror(-w));
	if (how == RUN_EXIT)
		return st->exit_code;
	if (how == RUN_FAILED)
		return poolctl_report(&st->err);
	if (st->bad[0])
		return poolctl_fail("%s", st->bad);
	nfail = pool_stream_failed(st->s, &first);
	if (nfail == 0)
		return 0;
	fprintf(stderr, "poolctl: item %ld: %s: %s", first.index, first.code_name, first.message);
	fprintf(stderr, nfail > 1 ? " (%ld items failed)\n" : "\n", nfail);
	return EXIT_JOB;
}

int poolctl_stream(const struct poolctl_args *a, const char *fn, const struct pool_stream_opts *o,
                   int argc, char **argv)
{
	struct streamer st = {.star = o->star,
	                      .unordered = o->unordered,
	                      .raw_in = a->raw_in,
	                      .raw_out = a->raw_out,
	                      .deadline_ms = a->deadline_ms};
	int r = 0, i;

	if (a->deadline_ms > 0)
		st.until = now_ms() + a->deadline_ms;
	if (!a->stdin_items)
		for (i = 0; i < argc && r == 0; i++)
			r = add_item(&st, argv[i], strlen(argv[i]), "argument", i + 1);
	if (r) {
		buf_free(&st.batch);
		return r == 1 ? poolctl_fail("%s", st.bad) : r;
	}
	st.c = poolctl_connect(a, &r);
	if (!st.c) {
		buf_free(&st.batch);
		return r;
	}
	st.s = pool_stream_open(st.c, fn, o, &st.err);
	if (!st.s) {
		pool_close(st.c);
		buf_free(&st.batch);
		return poolctl_report(&st.err);
	}
	poolctl_out_init(a->progress < 0 ? isatty(STDERR_FILENO) : a->progress);
	if (!a->stdin_items)
		end_input(&st);
	r = finish(&st, run(&st));
	arm(&st);
	pool_stream_close(st.s);
	pool_close(st.c);
	buf_free(&st.batch);
	free(st.in);
	return r;
}
