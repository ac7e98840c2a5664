/* supervisor.h - the supervisor's state, options and main loop */
#pragma once

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"

struct conf;

struct options {
	const char *socket_path;
	int workers;
	uint32_t timeout_ms;
	size_t max_line;
	size_t max_items;
	uint64_t max_pending_items;
	int max_connections;
	int max_inflight;
	uint64_t max_tasks_per_worker;
	int stop_timeout_s;
	size_t max_memory;     /* bytes the supervisor may buffer in all (issue 9) */
	uint32_t slow_task_ms; /* log tasks running longer than this (0 = never) */
	int verbose;
	const char *socket_group;  /* members may connect; NULL: the daemon's uid and root only */
	const char *config_path;   /* --config; NULL = the default path, which may be absent */
	const char *hosts;         /* supervisor: host agents join here (tcp://ADDR:PORT) */
	const char *join;          /* host agent: the supervisor's hosts address (tcp://) */
	const char *host_endpoint; /* host agent: its task endpoint, bound and announced */
	const char *cluster_key;   /* the cluster key file shared by supervisor and hosts */
	uint32_t host_timeout_ms;  /* a supervisor or host silent this long is lost */
	const char *listen;        /* remote clients: tls:// or loopback tcp:// ADDR:PORT, spaced */
	const char *tls_cert;      /* the server's certificate chain (PEM) for tls:// */
	const char *tls_key;       /* its private key (PEM) */
	const char *tls_ca;        /* the CA that signs client certificates (PEM) */
	/* The configuration main.c loaded, taken by the supervisor; NULL: none. */
	struct conf *conf;
};

struct conn;
struct request;

struct supervisor {
	struct event_base *base;
	struct options opt;
	char exe[4096];
	char rundir[96]; /* private: the workers' ipc endpoints, the configuration copies */
	uint64_t start_ms;
	int stopping;
	int n_conns;
	TAILQ_HEAD(, conn) conns;
	TAILQ_HEAD(, request) pending; /* requests with tasks waiting for a slot */
	uint32_t n_requests;
	uint64_t tasks_queued;
	uint64_t tasks_running;
	uint64_t items_done;
	uint64_t items_in_flight; /* items of all requests not yet answered */
	uint64_t next_task_id;
};

extern struct supervisor sv;

/* Milliseconds on the monotonic clock. */
uint64_t now_ms(void);
/* The state every mode that runs a pool starts from (supervisor, host agent). */
void supervisor_init(const struct options *opt, const char *role);
/* Run the daemon until it is stopped; returns the exit status. */
int supervisor_main(const struct options *opt);
/* Start a graceful stop (as SIGTERM does). */
void supervisor_stop(void);
/* Called when a request or connection ends, to finish a graceful stop. */
void supervisor_check_idle(void);
/* Append the status object (without the reply envelope). */
void supervisor_status(struct buf *b);
