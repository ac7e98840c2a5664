/* poolctl_top.c - poolctl top (the status op once a second) and poolctl metrics */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "poolctl.h"

#define REFRESH_MS 1000

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep until the monotonic time at (ms). */
static void sleep_until(int64_t at)
{
	struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (long)(at % 1000) * 1000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Member key of o as a number, 0 when absent. */
static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The number of slots in state (a string member "state"). */
static int count_state(const cJSON *slots, const char *state)
{
	const cJSON *s;
	int n = 0;

	cJSON_ArrayForEach(s, slots)
	{
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "state"));

		n += st && strcmp(st, state) == 0;
	}
	return n;
}

/* One snapshot as one line (stdout not a terminal). */
static void line_view(const cJSON *st, double rate)
{
	const cJSON *slots = cJSON_GetObjectItemCaseSensitive(st, "slots"), *s;
	time_t t = time(NULL);
	char when[32];
	const char *sep = "";

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", localtime(&t));
	printf("%s workers %.0f busy %d idle %d queued %.0f running %.0f requests %.0f "
	       "items_done %.0f rate %.1f/s slots ",
	       when, num(st, "workers"), count_state(slots, "busy"), count_state(slots, "idle"),
	       num(st, "tasks_queued"), num(st, "tasks_running"), num(st, "requests"),
	       num(st, "items_done"), rate);
	cJSON_ArrayForEach(s, slots)
	{
		const char *state =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "state"));

		printf("%s%s", sep, state ? state : "-");
		sep = ",";
	}
	printf(cJSON_GetArraySize(slots) ? "\n" : "-\n");
}

/* One snapshot as a screen (stdout a terminal): cleared, summary, rate, slot table. */
static int screen_view(const cJSON *st, double rate)
{
	const cJSON *slots = cJSON_GetObjectItemCaseSensitive(st, "slots");

	fputs("\033[H\033[2J", stdout);
	printf("poolctl top - every %d s, ^C to quit\n\n", REFRESH_MS / 1000);
	printf("workers busy %d, idle %d; items done %.0f at %.1f items/s\n\n",
	       count_state(slots, "busy"), count_state(slots, "idle"), num(st, "items_done"), rate);
	return poolctl_print_status(st);
}

int poolctl_top(const struct poolctl_args *a)
{
	int tty = isatty(STDOUT_FILENO), r = 0;
	struct pool_error e = {0};
	double prev_items = -1;
	int64_t prev_at = 0, next_at = now_ms();
	pool_client *c;
	long n;

	if (a->npos > 0)
		return poolctl_fail("top: unexpected argument '%s'", a->pos[0]);
	c = poolctl_connect(a, &r);
	if (!c)
		return r;
	for (n = 0; a->count < 0 || n < a->count; n++) {
		cJSON *st = NULL;
		double items, rate;
		int64_t at;

		if (n > 0)
			sleep_until(next_at);
		r = pool_status(c, &st, &e);
		if (r < 0)
			break;
		at = now_ms();
		items = num(st, "items_done");
		if (prev_items >= 0 && at > prev_at)
			rate = (items - prev_items) * 1000.0 / (double)(at - prev_at);
		else
			rate = num(st, "uptime_ms") > 0 ? items * 1000.0 / num(st, "uptime_ms") : 0;
		prev_items = items;
		prev_at = at;
		if (tty)
			screen_view(st, rate);
		else
			line_view(st, rate);
		cJSON_Delete(st);
		if (fflush(stdout) != 0) {
			pool_close(c);
			return poolctl_fail("writing the output: %s", strerror(errno));
		}
		next_at += REFRESH_MS;
	}
	pool_close(c);
	return r < 0 ? poolctl_report(&e) : 0;
}

int poolctl_metrics(const struct poolctl_args *a)
{
	static const char req[] = "{\"op\":\"metrics\"}";
	struct pool_error e = {0};
	cJSON *reply, *text, *err;
	const char *code, *msg;
	char *line = NULL;
	pool_client *c;
	int r;

	c = poolctl_connect(a, &r);
	if (!c)
		return r;
	r = pool_request_raw(c, req, sizeof(req) - 1, &line, NULL, &e);
	pool_close(c);
	if (r < 0)
		return poolctl_report(&e);
	reply = cJSON_Parse(line);
	free(line);
	text = cJSON_GetObjectItemCaseSensitive(reply, "metrics");
	err = cJSON_GetObjectItemCaseSensitive(reply, "error");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")) && cJSON_IsString(text)) {
		fputs(text->valuestring, stdout);
		cJSON_Delete(reply);
		if (fflush(stdout) != 0 || ferror(stdout))
			return poolctl_fail("writing the output: %s", strerror(errno));
		return 0;
	}
	code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "code"));
	msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
	e = (struct pool_error){.code = POOL_EREQUEST, .index = -1};
	snprintf(e.code_name, sizeof(e.code_name), "%s", code ? code : "protocol");
	snprintf(e.message, sizeof(e.message), "%s", msg ? msg : "the reply has no metrics text");
	cJSON_Delete(reply);
	return poolctl_report(&e);
}
