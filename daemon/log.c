/* log.c - leveled logging on stderr, with journal priorities and the process role */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char role[32] = "poold";
static int verbosity;
static int journal;

/* systemd sets JOURNAL_STREAM to "dev:ino" of the stream it gave us as stderr. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_init(const char *r, int verbose)
{
	snprintf(role, sizeof(role), "%s", r);
	verbosity = verbose;
	journal = stderr_is_journal();
}

__attribute__((format(printf, 2, 0))) static void log_vmsg(enum log_level lvl, const char *fmt,
                                                           va_list ap)
{
	static const char *const names[] = {[LOG_LVL_ERROR] = "error",
	                                    [LOG_LVL_WARN] = "warning",
	                                    [LOG_LVL_INFO] = "info",
	                                    [LOG_LVL_DEBUG] = "debug"};
	char line[1024];
	int n;

	if (lvl == LOG_LVL_DEBUG && verbosity < 1)
		return;
	if (journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ", lvl, role);
	else
		n = snprintf(line, sizeof(line), "poold[%d] %s: %s: ", (int)getpid(), role,
		             names[lvl]);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	strcat(line, "\n");
	if (write(STDERR_FILENO, line, strlen(line)) < 0)
		return;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
