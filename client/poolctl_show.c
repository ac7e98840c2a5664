/* poolctl_show.c - human-readable rendering of status, ping and functions replies */
#include "poolctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Print v as one JSON line. */
int poolctl_print_json(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);

	if (!s)
		return -ENOMEM;
	puts(s);
	cJSON_free(s);
	return 0;
}

/* The number member key of o formatted into out, or "-" when absent. */
static const char *num(const cJSON *o, const char *key, char *out, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v))
		return "-";
	snprintf(out, n, "%.0f", v->valuedouble);
	return out;
}

/* The string member key of o, or "-" when absent. */
static const char *str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	return s ? s : "-";
}

/* A duration in milliseconds as "3d04h05m", "1h02m03s", "4m05s" or "6.789s". */
static const char *uptime(const cJSON *o, char *out, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "uptime_ms");
	unsigned long long ms, s;

	if (!cJSON_IsNumber(v) || v->valuedouble < 0)
		return "-";
	ms = (unsigned long long)v->valuedouble;
	s = ms / 1000;
	if (s >= 86400)
		snprintf(out, n, "%llud%02lluh%02llum", s / 86400, s / 3600 % 24, s / 60 % 60);
	else if (s >= 3600)
		snprintf(out, n, "%lluh%02llum%02llus", s / 3600, s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(out, n, "%llum%02llus", s / 60, s % 60);
	else
		snprintf(out, n, "%llu.%03llus", s, ms % 1000);
	return out;
}

/* Print a status object: a summary, then a table of the slots. */
int poolctl_print_status(const cJSON *st)
{
	const cJSON *slots = cJSON_GetObjectItemCaseSensitive(st, "slots"), *s;
	char b[8][32];

	printf("poold %s, pid %s, up %s%s\n", str(st, "version"), num(st, "pid", b[0], 32),
	       uptime(st, b[1], 32),
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "stopping")) ? ", stopping" : "");
	printf("workers %s, connections %s, requests %s\n", num(st, "workers", b[0], 32),
	       num(st, "connections", b[1], 32), num(st, "requests", b[2], 32));
	printf("tasks queued %s, running %s; items done %s\n", num(st, "tasks_queued", b[0], 32),
	       num(st, "tasks_running", b[1], 32), num(st, "items_done", b[2], 32));
	if (!cJSON_IsArray(slots))
		return 0;
	printf("\n%-5s %-8s %-9s %6s %12s %8s\n", "SLOT", "PID", "STATE", "TASKS", "ITEMS",
	       "RESTARTS");
	cJSON_ArrayForEach(s, slots)
	{
		printf("%-5s %-8s %-9s %6s %12s %8s\n", num(s, "slot", b[0], 32),
		       num(s, "pid", b[1], 32), str(s, "state"), num(s, "tasks_held", b[2], 32),
		       num(s, "items_done", b[3], 32), num(s, "restarts", b[4], 32));
	}
	return 0;
}

/* Print a ping reply on one line. */
int poolctl_print_ping(const cJSON *p)
{
	char b[2][32];

	printf("poold %s, protocol %s, pid %s\n", str(p, "version"), num(p, "protocol", b[0], 32),
	       num(p, "pid", b[1], 32));
	return 0;
}

/* Print the functions as a table: name, kind, number of arguments, doc. */
int poolctl_print_functions(const cJSON *list)
{
	const cJSON *f;
	char b[2][32], args[80];
	int width = 4;

	cJSON_ArrayForEach(f, list)
	{
		int n = (int)strlen(str(f, "name"));

		if (n > width && n < 40)
			width = n;
	}
	printf("%-*s %-8s %-6s %s\n", width, "NAME", "KIND", "ARGS", "DOC");
	cJSON_ArrayForEach(f, list)
	{
		const char *lo = num(f, "min_args", b[0], 32), *hi = num(f, "max_args", b[1], 32);

		if (strcmp(lo, hi) == 0)
			snprintf(args, sizeof(args), "%s", lo);
		else if (strcmp(hi, "-") == 0 || hi[0] == '-')
			snprintf(args, sizeof(args), "%s+", lo);
		else
			snprintf(args, sizeof(args), "%s-%s", lo, hi);
		printf("%-*s %-8s %-6s %s\n", width, str(f, "name"), str(f, "kind"), args,
		       cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f, "doc")) ? str(f, "doc")
		                                                                  : "");
	}
	return 0;
}
