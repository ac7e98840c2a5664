/* fn_command.c - commands per item: spawned cheaply, output captured */
#include "fn_command.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "child.h"

/* Most stdout bytes kept from one command; more is a function_error. */
#define COMMAND_MAX_OUTPUT (64u * 1024 * 1024)
/* Bytes of stderr kept to find its last line. */
#define STDERR_TAIL 1024

/* The running command's process group, for command_stop (from a signal handler too). */
static volatile pid_t running;

struct tail {
	char b[STDERR_TAIL];
	size_t len;
};

/* Keep the last STDERR_TAIL bytes of stderr. */
static void keep_tail(void *arg, const char *p, size_t n)
{
	struct tail *t = arg;

	if (n >= sizeof(t->b)) {
		memcpy(t->b, p + n - sizeof(t->b), sizeof(t->b));
		t->len = sizeof(t->b);
		return;
	}
	if (t->len + n > sizeof(t->b)) {
		size_t drop = t->len + n - sizeof(t->b);

		memmove(t->b, t->b + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->b + t->len, p, n);
	t->len += n;
}

/* The last non-empty line of stderr (its bytes, without the newline). */
static struct json_span last_line(const struct tail *t)
{
	size_t end = t->len, start;

	while (end > 0 && (t->b[end - 1] == '\n' || t->b[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0 && t->b[start - 1] != '\n')
		start--;
	return (struct json_span){t->b + start, end - start};
}

/* The item's text: a string's decoded bytes, any other value's JSON text. */
static int item_text(struct json_span item, struct buf *text)
{
	if (json_type(item) != JSON_STRING)
		return buf_add(text, item.p, item.len);
	return json_string_decode(item, text);
}

/*
 * Build argv: every "{}" in a word becomes the item's text (the config
 * requires at least one unless input = stdin, where argv is used as it is).
 * The words are stored in store; the array is the caller's to free.
 */
static char **build_argv(const struct fn_entry *e, const char *text, size_t text_len,
                         struct buf *store)
{
	size_t n = 0, i, *offs;
	char **argv;

	while (e->argv[n])
		n++;
	argv = calloc(n + 1, sizeof(*argv));
	offs = calloc(n + 1, sizeof(*offs));
	if (!argv || !offs)
		goto oom;
	buf_reset(store);
	for (i = 0; i < n; i++) {
		const char *w = e->argv[i], *h;

		offs[i] = store->len;
		while (!e->input_stdin && (h = strstr(w, "{}"))) {
			buf_add(store, w, (size_t)(h - w));
			buf_add(store, text, text_len);
			w = h + 2;
		}
		buf_adds(store, w);
		if (buf_addc(store, '\0') < 0)
			goto oom;
	}
	for (i = 0; i < n; i++)
		argv[i] = store->data + offs[i];
	free(offs);
	return argv;
oom:
	free(argv);
	free(offs);
	return NULL;
}

/* function_error naming how the command ended and the last line of its stderr. */
static int failed_status(const struct fn_entry *e, int st, const struct tail *t,
                         struct proto_error *err)
{
	struct json_span l = last_line(t);
	char how[64];

	if (WIFSIGNALED(st))
		snprintf(how, sizeof(how), "was killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(st));
	if (l.len)
		return proto_error_set(err, PROTO_FUNCTION_ERROR, -1, "%s %s: %.*s", e->argv[0],
		                       how, (int)(l.len > 150 ? 150 : l.len), l.p);
	return proto_error_set(err, PROTO_FUNCTION_ERROR, -1, "%s %s", e->argv[0], how);
}

/* Append the captured stdout as the item's value. */
static int add_output(const struct fn_entry *e, struct buf *so, struct buf *out,
                      struct proto_error *err)
{
	if (e->output_json) {
		struct json_span v;
		const char *msg;
		size_t off;

		if (json_validate(so->data ? so->data : "", (so->data ? so->data : "") + so->len,
		                  &v, &msg, &off) < 0)
			return proto_error_set(
			    err, PROTO_FUNCTION_ERROR, -1,
			    "%s wrote no valid JSON (output = json): %s at byte %zu", e->argv[0],
			    msg, off);
		return buf_add(out, v.p, v.len) < 0 ? -ENOMEM : 0;
	}
	if (so->len && so->data[so->len - 1] == '\n')
		so->len--;
	return buf_add_json_string(out, so->data ? so->data : "", so->len) < 0 ? -ENOMEM : 0;
}

int command_call(const struct fn_entry *e, struct json_span item, struct buf *out,
                 struct proto_error *err)
{
	struct buf text = {0}, store = {0}, so = {0};
	struct tail t = {.len = 0};
	struct child c;
	struct child_io io = {.out = &so,
	                      .out_max = COMMAND_MAX_OUTPUT,
	                      .on_err = keep_tail,
	                      .arg = &t,
	                      .close_in = 1};
	long long end = e->timeout_ms ? child_now_ms() + e->timeout_ms : 0;
	char **argv = NULL;
	int rc;

	if (item_text(item, &text) < 0) {
		rc = proto_error_set(err, PROTO_INTERNAL, -1, "out of memory");
		goto done;
	}
	if (!e->input_stdin && strlen(text.data) != text.len) {
		rc = proto_error_set(err, PROTO_TYPE_ERROR, -1,
		                     "a string with a NUL character cannot be an argument");
		goto done;
	}
	argv = build_argv(e, text.data, text.len, &store);
	if (!argv) {
		rc = proto_error_set(err, PROTO_INTERNAL, -1, "out of memory");
		goto done;
	}
	if (e->input_stdin) {
		buf_addc(&text, '\n');
		io.in_p = text.data;
		io.in_left = text.len;
	}
	rc = child_spawn(&c, argv, e->env, e->cwd, e->input_stdin);
	if (rc < 0) {
		rc = proto_error_set(err, PROTO_FUNCTION_ERROR, -1, "cannot run %s: %s", e->argv[0],
		                     strerror(-rc));
		goto done;
	}
	running = c.pid;
	/* Until it has exited (or, without pidfd, closed both pipes), then drain. */
	for (;;) {
		int ms = -1;

		if (c.reaped || (c.pidfd < 0 && c.out < 0 && c.err < 0))
			break;
		if (end) {
			long long left = end - child_now_ms();

			ms = left > 0 ? (int)left : 0;
		}
		rc = child_pump(&c, &io, ms);
		if (rc == -ETIMEDOUT) {
			child_stop(&c, 0);
			rc = proto_error_set(err, PROTO_TIMEOUT, -1,
			                     "%s ran past timeout_ms (%u ms); its process group "
			                     "was killed",
			                     e->argv[0], e->timeout_ms);
			goto stopped;
		}
		if (rc == -ENOBUFS) {
			child_stop(&c, 0);
			rc = proto_error_set(err, PROTO_FUNCTION_ERROR, -1,
			                     "%s wrote more than %u bytes to stdout; killed",
			                     e->argv[0], COMMAND_MAX_OUTPUT);
			goto stopped;
		}
	}
	/* What it wrote before exiting is in the pipes now: take it without waiting. */
	while (c.out >= 0 || c.err >= 0) {
		rc = child_pump(&c, &io, 0);
		if (rc == -ETIMEDOUT)
			break;
		if (rc == -ENOBUFS) {
			child_stop(&c, 0);
			rc = proto_error_set(err, PROTO_FUNCTION_ERROR, -1,
			                     "%s wrote more than %u bytes to stdout", e->argv[0],
			                     COMMAND_MAX_OUTPUT);
			goto stopped;
		}
	}
	/* Whatever it left running in its group goes with it. */
	rc = child_stop(&c, 0);
	if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
		rc = failed_status(e, rc, &t, err);
	else if (add_output(e, &so, out, err) < 0)
		rc = -EINVAL;
	else
		rc = 0;
stopped:
	running = 0;
done:
	free(argv);
	buf_free(&text);
	buf_free(&store);
	buf_free(&so);
	return rc < 0 ? -1 : 0;
}

void command_stop(void)
{
	child_kill_group(running);
}
