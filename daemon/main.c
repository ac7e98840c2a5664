/* main.c - poold's command line: the supervisor, or a worker when exec'd with --worker */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "buf.h"
#include "conf.h"
#include "config.h"
#include "proto.h"
#include "seal.h"
#include "supervisor.h"
#include "worker.h"
#include "xalloc.h"

#define MAX_WORKERS CONF_MAX_WORKERS

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: poold [options]\n"
	    "       poold --check-config [--config PATH] [--json]\n"
	    "Run a pool of worker processes that map functions over JSON items.\n\n"
	    "  -c, --config PATH            read this poold.conf(5) (default "
	    "/etc/poold/poold.conf\n"
	    "                               as root, else $XDG_CONFIG_HOME/poold/poold.conf;\n"
	    "                               a missing default file means built-ins only)\n"
	    "  -t, --check-config           check the configuration (modules load, programs\n"
	    "                               answer), print each problem as FILE:LINE: message\n"
	    "      --json                   with --check-config: print the function table as JSON\n"
	    "  -s, --socket PATH            listen here (default $POOLD_SOCKET, else\n"
	    "                               $XDG_RUNTIME_DIR/poold/poold.sock, as root\n"
	    "                               /run/poold/poold.sock)\n"
	    "      --socket-group NAME      let members of group NAME connect too (socket 0660)\n"
	    "  -w, --workers N              worker processes (default: online CPUs, max %d)\n"
	    "      --timeout-ms MS          default per-item timeout (default 0 = none)\n"
	    "      --max-line BYTES         longest request line (default 64 MiB)\n"
	    "      --max-items N            most items in one map or feed line (default 10000000)\n"
	    "      --max-pending-items N    most items in flight in all (default 20000000)\n"
	    "      --max-connections N      most clients at once (default 1024)\n"
	    "      --max-inflight N         most requests in flight per client (default 1024)\n"
	    "      --max-tasks-per-worker N restart a worker after N items (default 0 = never)\n"
	    "      --max-memory BYTES       most bytes the daemon buffers in all (default 256M)\n"
	    "      --slow-task-ms MS        log tasks running longer than this (default 0 = "
	    "never)\n"
	    "      --stop-timeout SEC       on SIGTERM, wait this long for requests (default "
	    "30)\n"
	    "      --hosts tcp://ADDR:PORT  let host agents join here (needs --cluster-key)\n"
	    "      --join tcp://ADDR:PORT   run as a host agent of the supervisor there\n"
	    "      --host-endpoint tcp://ADDR:PORT\n"
	    "                               a host agent's task endpoint (default: its address\n"
	    "                               toward the supervisor, the supervisor's port + 1)\n"
	    "      --cluster-key FILE       the cluster key (mode 0600) sealing host traffic\n"
	    "      --host-timeout-ms MS     a host or supervisor silent this long is lost\n"
	    "                               (default 5000)\n"
	    "      --keygen FILE            write a new cluster key to FILE (mode 0600) and exit\n"
	    "      --listen tls://ADDR:PORT remote clients with certificates (repeatable;\n"
	    "                               plain tcp:// on a loopback address only)\n"
	    "      --tls-cert, --tls-key, --tls-ca FILE\n"
	    "                               the server's certificate and key (PEM) and the CA\n"
	    "                               that signs client certificates\n"
	    "  -v, --verbose                debug logging\n"
	    "  -h, --help                   this help\n"
	    "  -V, --version                print the version\n"
	    "Options given here win over the [poold] section of the configuration file.\n",
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
	/* One arena: nanomsg's threads would otherwise keep heaps of their own that
	 * malloc_trim never gives back (5 to 15 MiB). */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

/* poold --keygen FILE: a new cluster key, mode 0600; an existing file is left alone. */
static int keygen(const char *path)
{
	char err[300];

	if (seal_init() < 0 || seal_keygen(path, err, sizeof(err)) < 0) {
		fprintf(stderr, "poold: --keygen %s\n", err);
		return 1;
	}
	printf("poold: wrote a new cluster key to %s (mode 0600); copy it to every host\n", path);
	return 0;
}

/* A configuration problem, as nginx -t prints it. */
static void report(void *arg, const char *file, int line, const char *msg)
{
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
}

/* --check-config: everything checked, modules loaded and programs started once; the exit status. */
static int check_config(struct conf *c, const char *path, int json)
{
	struct buf b = {0};
	int rc = conf_probe(c, report, NULL);

	if (rc == 0 && json) {
		if (conf_json(c, &b) < 0 || buf_addc(&b, '\n') < 0 ||
		    fwrite(b.data, 1, b.len, stdout) != b.len)
			rc = -1;
		buf_free(&b);
	} else if (rc == 0 && path) {
		printf("poold: configuration %s is valid (%zu functions)\n", path, c->n_fns);
	} else if (rc == 0) {
		printf("poold: no configuration file: built-in functions only (%zu functions)\n",
		       c->n_fns);
	}
	if (fflush(stdout) != 0)
		rc = -1;
	conf_free(c);
	free(c);
	return rc == 0 ? 0 : 1;
}

/*
 * Load the configuration over the defaults in base: path from --config (must
 * exist) or the default one (may be absent). NULL after reporting problems.
 */
static struct conf *load_config(const char *config, const char *name_as, const struct options *base,
                                const char **shown)
{
	char def[PATH_MAX];
	const char *path = config ? config : conf_default_path(def, sizeof(def));
	struct conf *c = xcalloc(1, sizeof(*c));
	int rc = -ENOENT;

	if (path)
		rc = conf_load(c, path, name_as, base, report, NULL);
	if (rc == -ENOENT && config) {
		fprintf(stderr, "%s: no such file\n", name_as ? name_as : config);
		rc = -1;
	} else if (rc == -ENOENT) {
		rc = conf_load_text(c, "", 0, NULL, base, report, NULL);
		path = NULL;
	}
	if (rc < 0) {
		free(c);
		return NULL;
	}
	*shown = path ? c->name : NULL;
	return c;
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
		O_STOPTIMEOUT,
		O_MAXMEMORY,
		O_SLOWTASK,
		O_SOCKGROUP,
		O_JSON,
		O_CONFNAME,
		O_HOSTS,
		O_JOIN,
		O_HOSTENDPOINT,
		O_CLUSTERKEY,
		O_HOSTTIMEOUT,
		O_KEYGEN,
		O_LISTEN,
		O_TLSCERT,
		O_TLSKEY,
		O_TLSCA,
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
	    {"max-memory", required_argument, NULL, O_MAXMEMORY},
	    {"slow-task-ms", required_argument, NULL, O_SLOWTASK},
	    {"socket-group", required_argument, NULL, O_SOCKGROUP},
	    {"config", required_argument, NULL, 'c'},
	    {"config-name", required_argument, NULL, O_CONFNAME},
	    {"check-config", no_argument, NULL, 't'},
	    {"json", no_argument, NULL, O_JSON},
	    {"hosts", required_argument, NULL, O_HOSTS},
	    {"join", required_argument, NULL, O_JOIN},
	    {"host-endpoint", required_argument, NULL, O_HOSTENDPOINT},
	    {"cluster-key", required_argument, NULL, O_CLUSTERKEY},
	    {"host-timeout-ms", required_argument, NULL, O_HOSTTIMEOUT},
	    {"keygen", required_argument, NULL, O_KEYGEN},
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"tls-cert", required_argument, NULL, O_TLSCERT},
	    {"tls-key", required_argument, NULL, O_TLSKEY},
	    {"tls-ca", required_argument, NULL, O_TLSCA},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct options o =
	                   {
	                       .timeout_ms = 0,
	                       .max_line = 64u << 20,
	                       .max_items = 10000000,
	                       .max_pending_items = 20000000,
	                       .max_connections = 1024,
	                       .max_inflight = 1024,
	                       .stop_timeout_s = 30,
	                       .max_memory = 256u << 20,
	                       .host_timeout_ms = 5000,
	                   },
	               base;
	/* Options given on the command line, applied again over the file's. */
	struct {
		char key[32];
		const char *value;
	} given[sizeof(longopts) / sizeof(longopts[0])];
	size_t n_given = 0, i;
	const char *config = NULL, *config_name = NULL, *shown = NULL;
	static char listen[1024];
	size_t n_listen = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c, idx, check = 0, json = 0, verbose = 0;
	char err[256];
	struct conf *cf;

	xalloc_install();
	tune_malloc();
	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_mode(argc, argv);
	o.workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
	base = o;
	while ((c = getopt_long(argc, argv, "s:w:c:tvhV", longopts, &idx)) != -1) {
		const char *name = NULL;

		switch (c) {
		case 'c':
			config = optarg;
			break;
		case O_CONFNAME:
			config_name = optarg;
			break;
		case 't':
			check = 1;
			break;
		case O_JSON:
			json = 1;
			break;
		case O_KEYGEN:
			return keygen(optarg);
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("poold %s (protocol %d)\n", POOLD_VERSION, PROTO_VERSION);
			return 0;
		case 's':
			name = "socket";
			break;
		case 'w':
			name = "workers";
			break;
		case O_TIMEOUT:
		case O_MAXLINE:
		case O_MAXITEMS:
		case O_MAXPENDING:
		case O_MAXCONN:
		case O_MAXINFLIGHT:
		case O_MAXTASKS:
		case O_STOPTIMEOUT:
		case O_MAXMEMORY:
		case O_SLOWTASK:
		case O_SOCKGROUP:
		case O_HOSTS:
		case O_JOIN:
		case O_HOSTENDPOINT:
		case O_CLUSTERKEY:
		case O_HOSTTIMEOUT:
		case O_TLSCERT:
		case O_TLSKEY:
		case O_TLSCA:
			name = longopts[idx].name;
			break;
		case O_LISTEN: /* repeatable: every address given, space-separated */
			n_listen += (size_t)snprintf(listen + n_listen, sizeof(listen) - n_listen,
			                             "%s%s", n_listen ? " " : "", optarg);
			if (n_listen >= sizeof(listen)) {
				fprintf(stderr, "poold: --listen: too many addresses\n");
				return 2;
			}
			optarg = listen;
			name = "listen";
			break;
		default: /* getopt named the option already */
			fprintf(stderr, "Try 'poold --help' for the options.\n");
			return 2;
		}
		if (!name)
			continue;
		snprintf(given[n_given].key, sizeof(given[n_given].key), "%s", name);
		for (i = 0; given[n_given].key[i]; i++)
			if (given[n_given].key[i] == '-')
				given[n_given].key[i] = '_';
		given[n_given].value = optarg;
		if (!conf_option_set(&o, given[n_given].key, optarg, err, sizeof(err))) {
			fprintf(stderr, "poold: --%s %s\n", name, err);
			return 2;
		}
		if (n_given + 1 < sizeof(given) / sizeof(given[0]))
			n_given++;
	}
	if (optind < argc) {
		fprintf(stderr, "poold: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (json && !check) {
		fprintf(stderr, "poold: --json goes with --check-config\n");
		return 2;
	}
	cf = load_config(config, config_name, &base, &shown);
	if (!cf)
		return 1;
	if (check)
		return check_config(cf, shown, json);
	o = cf->opt;
	for (i = 0; i < n_given; i++)
		conf_option_set(&o, given[i].key, given[i].value, err, sizeof(err));
	if (verbose)
		o.verbose = verbose;
	o.config_path = config;
	o.conf = cf;
	if (o.join && o.hosts) {
		fprintf(stderr,
		        "poold: join and hosts: a host agent cannot take hosts of its own\n");
		return 2;
	}
	if (o.join)
		return agent_main(&o);
	if (!o.socket_path)
		o.socket_path = default_socket();
	return supervisor_main(&o);
}
