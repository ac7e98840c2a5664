/* test_command.c - unit tests for commands per item (daemon/fn_command.c, daemon/child.c) */
#include "fn_command.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"

static char tmpdir[] = "/tmp/poold-test-command-XXXXXX";

/* Run argv on the JSON item text; out gets the value, err the error. Returns command_call's. */
static int run(char **argv, const char *item, int in_stdin, int json_out, uint32_t tmo,
               struct buf *out, struct proto_error *err)
{
	struct fn_entry e = {.name = "cmd",
	                     .kind = FN_COMMAND,
	                     .argv = argv,
	                     .input_stdin = in_stdin,
	                     .output_json = json_out,
	                     .timeout_ms = tmo};
	struct json_span it = {item, strlen(item)};

	buf_reset(out);
	*err = (struct proto_error){.code = PROTO_OK};
	return command_call(&e, it, out, err);
}

#define OK(argv, item, want)                                                                       \
	do {                                                                                       \
		CHECK_INT(run(argv, item, 0, 0, 0, &out, &err), 0);                                \
		CHECK_MEM(out.data ? out.data : "", out.len, want);                                \
	} while (0)

/* Substitution: a string as its text, anything else as its JSON text, one argument each. */
static void test_substitution(void)
{
	char *echo[] = {"echo", "{}", NULL};
	char *word[] = {"printf", "<%s>", "x{}y{}", NULL};
	char *meta[] = {"printf", "%s", "{}", NULL};
	char marker[300], item[1000];
	struct buf out = {0};
	struct proto_error err;

	OK(echo, "\"hello\"", "\"hello\"");
	OK(echo, "42", "\"42\"");
	OK(echo, "[1, 2]", "\"[1, 2]\"");
	OK(echo, "\"tab\\tand \\u00e9\"", "\"tab\\tand \xc3\xa9\"");
	OK(word, "\"a\"", "\"<xaya>\"");
	/* Shell metacharacters reach the command as one literal argument. */
	OK(meta, "\"; rm -rf /\"", "\"; rm -rf /\"");
	snprintf(marker, sizeof(marker), "%s/pwned", tmpdir);
	snprintf(item, sizeof(item), "\"$(touch %s); `touch %s` | touch %s\"", marker, marker,
	         marker);
	CHECK_INT(run(meta, item, 0, 0, 0, &out, &err), 0);
	CHECK(access(marker, F_OK) < 0);
	/* A NUL cannot be in an argument. */
	CHECK_INT(run(echo, "\"a\\u0000b\"", 0, 0, 0, &out, &err), -1);
	CHECK_INT(err.code, PROTO_TYPE_ERROR);
	buf_free(&out);
}

/* input = stdin, output = json, and an item bigger than a pipe's buffer. */
static void test_stdin_json(void)
{
	char *cat[] = {"cat", NULL};
	char *jq[] = {"jq", "-c", "{b: (.a + 1)}", NULL};
	char *wc[] = {"wc", "-c", NULL};
	char *bad[] = {"echo", "{not json", NULL};
	struct buf out = {0}, big = {0};
	struct proto_error err;
	size_t i;

	CHECK_INT(run(cat, "\"line\"", 1, 0, 0, &out, &err), 0);
	CHECK_MEM(out.data, out.len, "\"line\"");
	CHECK_INT(run(jq, "{\"a\": 1}", 1, 1, 0, &out, &err), 0);
	CHECK_MEM(out.data, out.len, "{\"b\":2}");
	CHECK_INT(run(bad, "1", 0, 1, 0, &out, &err), -1);
	CHECK_INT(err.code, PROTO_FUNCTION_ERROR);
	CHECK(strstr(err.message, "no valid JSON") != NULL);
	/* 1 MiB through cat: stdin written while stdout is read, no deadlock. */
	buf_addc(&big, '"');
	for (i = 0; i < 1024 * 1024; i++)
		buf_addc(&big, (char)('a' + i % 26));
	buf_addc(&big, '"');
	CHECK_INT(run(cat, big.data, 1, 0, 0, &out, &err), 0);
	CHECK_INT(out.len, 1024 * 1024 + 2);
	CHECK_INT(run(wc, big.data, 1, 1, 0, &out, &err), 0);
	CHECK_MEM(out.data, out.len, "1048577");
	buf_free(&big);
	buf_free(&out);
}

/* Exit status, signal, missing program: function_error with the status and stderr's last line. */
static void test_failures(void)
{
	char *exit3[] = {"sh", "-c", "echo first >&2; echo 'it broke' >&2; exit 3", NULL};
	char *sig[] = {"sh", "-c", "kill -9 $$", NULL};
	char *none[] = {"/nonexistent/poold-cmd", NULL};
	char *bin[] = {"printf", "a\\377b", NULL};
	struct buf out = {0};
	struct proto_error err;

	CHECK_INT(run(exit3, "1", 0, 0, 0, &out, &err), -1);
	CHECK_INT(err.code, PROTO_FUNCTION_ERROR);
	CHECK(strstr(err.message, "exited with status 3: it broke") != NULL);
	CHECK_INT(run(sig, "1", 0, 0, 0, &out, &err), -1);
	CHECK(strstr(err.message, "killed by signal 9") != NULL);
	CHECK_INT(run(none, "1", 0, 0, 0, &out, &err), -1);
	CHECK(strstr(err.message, "cannot run /nonexistent/poold-cmd") != NULL);
	/* Invalid UTF-8 on stdout becomes U+FFFD. */
	CHECK_INT(run(bin, "1", 0, 0, 0, &out, &err), 0);
	CHECK_MEM(out.data, out.len, "\"a\\ufffdb\"");
	buf_free(&out);
}

/* 1 once pid is gone (or a zombie), waiting up to ms. */
static int gone(pid_t pid, int ms)
{
	long long end = child_now_ms() + ms;
	char path[64], st[256];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	do {
		FILE *f = fopen(path, "r");
		char *p;

		if (!f)
			return 1;
		p = fgets(st, sizeof(st), f);
		fclose(f);
		if (p && (p = strrchr(st, ')')) && p[1] == ' ' && p[2] == 'Z')
			return 1;
		usleep(10000);
	} while (child_now_ms() < end);
	return 0;
}

static pid_t read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

/* The timeout kills the whole group; a command's background leftovers never hold us. */
static void test_timeout_group(void)
{
	char script[600], pidfile[300];
	char *hang[] = {"sh", "-c", script, NULL};
	char *bg[] = {"sh", "-c", "sleep 30 & echo done", NULL};
	struct buf out = {0};
	struct proto_error err;
	long long t0;
	pid_t pid;

	snprintf(pidfile, sizeof(pidfile), "%s/bg.pid", tmpdir);
	snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; wait", pidfile);
	t0 = child_now_ms();
	CHECK_INT(run(hang, "1", 0, 0, 300, &out, &err), -1);
	CHECK_INT(err.code, PROTO_TIMEOUT);
	CHECK(child_now_ms() - t0 < 3000);
	CHECK(strstr(err.message, "timeout_ms (300 ms)") != NULL);
	pid = read_pid(pidfile);
	CHECK(pid > 0);
	CHECK(pid > 0 && gone(pid, 3000));
	t0 = child_now_ms();
	CHECK_INT(run(bg, "1", 0, 0, 0, &out, &err), 0);
	CHECK_MEM(out.data, out.len, "\"done\"");
	CHECK(child_now_ms() - t0 < 3000);
	buf_free(&out);
}

/* env adds to the environment, cwd sets the directory. */
static void test_env_cwd(void)
{
	char *argv[] = {"sh", "-c", "echo \"$POOLD_T $HOME\" && pwd", NULL};
	char *env[] = {"POOLD_T=yes", "HOME=/nowhere", NULL};
	struct fn_entry e = {
	    .name = "envcwd", .kind = FN_COMMAND, .argv = argv, .env = env, .cwd = tmpdir};
	struct json_span it = {"1", 1};
	struct proto_error err = {.code = PROTO_OK};
	struct buf out = {0}, want = {0};

	buf_printf(&want, "\"yes /nowhere\\n%s\"", tmpdir);
	CHECK_INT(command_call(&e, it, &out, &err), 0);
	CHECK_MEM(out.data, out.len, want.data);
	buf_free(&out);
	buf_free(&want);
}

int main(void)
{
	char cmd[400];

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_substitution();
	test_stdin_json();
	test_failures();
	test_timeout_group();
	test_env_cwd();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return check_exit("test_command");
}
