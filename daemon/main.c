/* main.c - poold's command line: the supervisor, or a worker when exec'd with --worker */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "proto.h"
#include "supervisor.h"
#include "worker.h"

#define MAX_WORKERS 256

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: poold [options]\n"
	    "Run a pool of worker processes that map functions over JSON items.\n\n"
	    "  -s, --socket PATH            listen here (default $POOLD_SOCKET, else\n"
	    "                               $XDG_RUNTIME_DIR/poold/poold.sock, as root\n"
	    "                               /run/poold/poold.sock)\n"
	    "  -w, --workers N              worker processes (default: online CPUs, max %d)\n"
	    "      --timeout-ms MS          default per-item timeout (default 0 = none)\n"
	    "      --max-line BYTES         longest request line (default 64 MiB)\n"
	    "      --max-items N            most items in one map or feed line (default 10000000)\n"
	    "      --max-pending-items N    most items in flight in all (default 20000000)\n"
	    "      --max-connections N      most clients at once (default 1024)\n"
	    "      --max-inflight N         most requests in flight per client (default 1024)\n"
	    "      --max-tasks-per-worker N restart a worker after N items (default 0 = never)\n"
	    "      --stop-timeout SEC       on SIGTERM, wait this long for requests (default "
	    "30)\n"
	    "  -v, --verbose                debug logging\n"
	    "  -h, --help                   this help\n"
	    "  -V, --version                print the version\n",
	    MAX_WORKERS);
}

static unsigned long long parse_num(const char *opt, const char *s, unsigned long long min,
                                    unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "poold: %s takes a number from %llu to %llu, not '%s'\n", opt, min,
		        max, s);
		exit(2);
	}
	return v;
}

static const char *default_socket(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("POOLD_SOCKET"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		return env;
	if (geteuid() != 0 && xdg && *xdg) {
		snprintf(path, sizeof(path), "%s/poold/poold.sock", xdg);
		return path;
	}
	return "/run/poold/poold.sock";
}

/* poold --worker SLOT GEN RUNDIR MAX_MSG CONF_COPY|- CONF_NAME|- [-v]: set by pool.c */
static int worker_mode(int argc, char **argv)
{
	struct worker_args a = {0};

	if (argc < 8) {
		fprintf(stderr, "poold: --worker is internal to poold\n");
		return 2;
	}
	a.slot = (uint32_t)parse_num("--worker", argv[2], 0, MAX_WORKERS);
	a.gen = (uint32_t)parse_num("--worker", argv[3], 0, UINT32_MAX);
	a.rundir = argv[4];
	a.max_msg = (size_t)parse_num("--worker", argv[5], 65536, INT32_MAX);
	a.conf = strcmp(argv[6], "-") ? argv[6] : NULL;
	a.conf_name = strcmp(argv[7], "-") ? argv[7] : a.conf;
	a.verbose = argc > 8 && strcmp(argv[8], "-v") == 0;
	return worker_main(&a);
}

/*
 * Chunks and their results (up to a few MiB) pass through malloc thousands of
 * times a second. Above glibc's default 128 KiB threshold each one would be a
 * fresh mmap, paid again in page faults; keep them in the heap and let it hold
 * up to 64 MiB of free memory before giving any back.
 */
static void tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

int main(int argc, char **argv)
{
	enum {
		O_TIMEOUT = 256,
		O_MAXLINE,
		O_MAXITEMS,
		O_MAXPENDING,
		O_MAXCONN,
		O_MAXINFLIGHT,
		O_MAXTASKS,
		O_STOPTIMEOUT
	};
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"workers", required_argument, NULL, 'w'},
	    {"timeout-ms", required_argument, NULL, O_TIMEOUT},
	    {"max-line", required_argument, NULL, O_MAXLINE},
	    {"max-items", required_argument, NULL, O_MAXITEMS},
	    {"max-pending-items", required_argument, NULL, O_MAXPENDING},
	    {"max-connections", required_argument, NULL, O_MAXCONN},
	    {"max-inflight", required_argument, NULL, O_MAXINFLIGHT},
	    {"max-tasks-per-worker", required_argument, NULL, O_MAXTASKS},
	    {"stop-timeout", required_argument, NULL, O_STOPTIMEOUT},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct options o = {
	    .timeout_ms = 0,
	    .max_line = 64u << 20,
	    .max_items = 10000000,
	    .max_pending_items = 20000000,
	    .max_connections = 1024,
	    .max_inflight = 1024,
	    .stop_timeout_s = 30,
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	tune_malloc();
	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_mode(argc, argv);
	o.workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
	while ((c = getopt_long(argc, argv, "s:w:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket_path = optarg;
			break;
		case 'w':
			o.workers = (int)parse_num("--workers", optarg, 1, MAX_WORKERS);
			break;
		case O_TIMEOUT:
			o.timeout_ms = (uint32_t)parse_num("--timeout-ms", optarg, 0, 86400000);
			break;
		case O_MAXLINE:
			o.max_line = (size_t)parse_num("--max-line", optarg, 1024, 1u << 30);
			break;
		case O_MAXITEMS:
			o.max_items = (size_t)parse_num("--max-items", optarg, 1, UINT32_MAX - 1);
			break;
		case O_MAXPENDING:
			o.max_pending_items =
			    parse_num("--max-pending-items", optarg, 1, 1ull << 40);
			break;
		case O_MAXCONN:
			o.max_connections = (int)parse_num("--max-connections", optarg, 1, 1 << 20);
			break;
		case O_MAXINFLIGHT:
			o.max_inflight = (int)parse_num("--max-inflight", optarg, 1, 1 << 20);
			break;
		case O_MAXTASKS:
			o.max_tasks_per_worker =
			    parse_num("--max-tasks-per-worker", optarg, 0, 1ull << 62);
			break;
		case O_STOPTIMEOUT:
			o.stop_timeout_s = (int)parse_num("--stop-timeout", optarg, 0, 86400);
			break;
		case 'v':
			o.verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("poold %s (protocol %d)\n", POOLD_VERSION, PROTO_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "poold: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!o.socket_path)
		o.socket_path = default_socket();
	return supervisor_main(&o);
}
