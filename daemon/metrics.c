/* metrics.c - counters for the metrics op (Prometheus text format) and the slow-task log */
#include "metrics.h"

#include <event2/event.h>
#include <string.h>

#include "config.h"
#include "ledger.h"
#include "log.h"
#include "pool.h"
#include "request.h"
#include "supervisor.h"

#define N_OPS (OP_METRICS + 1)
/* The slow-task check runs at a quarter of the threshold, 10 ms to 1 s. */
#define SLOW_SCAN_MIN_MS 10
#define SLOW_SCAN_MAX_MS 1000

/* Upper bounds of the task-duration histogram, in milliseconds. */
static const uint64_t bucket_ms[] = {1, 5, 10, 50, 100, 500, 1000, 5000, 30000};
#define N_BUCKETS (sizeof(bucket_ms) / sizeof(bucket_ms[0]))

static const char *const death_names[DEATH_MAX] = {
    [DEATH_CRASH] = "crash",     [DEATH_KILLED] = "killed", [DEATH_TIMEOUT] = "timeout",
    [DEATH_PROGRAM] = "program", [DEATH_START] = "start",   [DEATH_RETIRED] = "retired",
};

static struct {
	uint64_t replies[N_OPS][2]; /* [op][0 ok, 1 error] */
	uint64_t errors[PROTO_CODE_MAX];
	uint64_t items_ok, items_failed;
	uint64_t worker_starts;
	uint64_t deaths[DEATH_MAX];
	uint64_t retries;
	uint64_t sealed_drops;
	uint64_t task_buckets[N_BUCKETS + 1]; /* the last: above every bound */
	uint64_t task_count, task_ms_sum;
	uint64_t bytes_in, bytes_out;
} m;

static struct event *ev_slow;

void metrics_reply(enum proto_op op, enum proto_code code)
{
	if ((unsigned)op < N_OPS)
		m.replies[op][code != PROTO_OK]++;
}

void metrics_error(enum proto_code code)
{
	if ((unsigned)code < PROTO_CODE_MAX)
		m.errors[code]++;
}

void metrics_items(uint64_t ok, uint64_t failed)
{
	m.items_ok += ok;
	m.items_failed += failed;
}

void metrics_worker_start(void)
{
	m.worker_starts++;
}

void metrics_worker_death(enum metrics_death cause)
{
	m.deaths[cause]++;
}

void metrics_retry(void)
{
	m.retries++;
}

void metrics_sealed_drop(void)
{
	m.sealed_drops++;
}

void metrics_task_time(uint64_t ms)
{
	size_t i = 0;

	while (i < N_BUCKETS && ms > bucket_ms[i])
		i++;
	m.task_buckets[i]++;
	m.task_count++;
	m.task_ms_sum += ms;
}

void metrics_bytes(uint64_t in, uint64_t out)
{
	m.bytes_in += in;
	m.bytes_out += out;
}

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP poold_%s %s\n# TYPE poold_%s %s\n", name, help, name, type);
}

static void one(struct buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	head(b, name, type, help);
	buf_printf(b, "poold_%s %llu\n", name, (unsigned long long)v);
}

static void render_requests(struct buf *b)
{
	int op, k;

	head(b, "requests_total", "counter", "Requests answered, by op and outcome.");
	for (op = 0; op < N_OPS; op++)
		for (k = 0; k < 2; k++)
			if (m.replies[op][k] || op == OP_MAP || op == OP_APPLY)
				buf_printf(b,
				           "poold_requests_total{op=\"%s\",outcome=\"%s\"} %llu\n",
				           proto_op_name((enum proto_op)op), k ? "error" : "ok",
				           (unsigned long long)m.replies[op][k]);
	head(b, "errors_total", "counter", "Error replies, by code.");
	for (k = 1; k < PROTO_CODE_MAX; k++)
		buf_printf(b, "poold_errors_total{code=\"%s\"} %llu\n",
		           proto_code_name((enum proto_code)k), (unsigned long long)m.errors[k]);
	head(b, "items_total", "counter", "Items answered, by outcome.");
	buf_printf(b, "poold_items_total{outcome=\"ok\"} %llu\n", (unsigned long long)m.items_ok);
	buf_printf(b, "poold_items_total{outcome=\"failed\"} %llu\n",
	           (unsigned long long)m.items_failed);
}

static void render_workers(struct buf *b)
{
	struct pool_counts pc;
	int k;

	pool_counts(&pc);
	one(b, "worker_starts_total", "counter", "Worker processes started.", m.worker_starts);
	head(b, "worker_deaths_total", "counter", "Worker processes ended, by cause.");
	for (k = 0; k < DEATH_MAX; k++)
		buf_printf(b, "poold_worker_deaths_total{cause=\"%s\"} %llu\n", death_names[k],
		           (unsigned long long)m.deaths[k]);
	head(b, "workers", "gauge", "Worker slots, by state.");
	buf_printf(b, "poold_workers{state=\"busy\"} %d\npoold_workers{state=\"idle\"} %d\n",
	           pc.busy, pc.idle);
	buf_printf(b, "poold_workers{state=\"starting\"} %d\npoold_workers{state=\"backoff\"} %d\n",
	           pc.starting, pc.backoff);
	one(b, "retries_total", "counter",
	    "Tasks sent again after their worker was lost (halves of a chunk count once each).",
	    m.retries);
	one(b, "timeouts_total", "counter", "Workers stopped for a task past its timeout.",
	    m.deaths[DEATH_TIMEOUT]);
	one(b, "sealed_drops_total", "counter",
	    "Messages on the hosts port dropped: failed authentication, replayed, malformed.",
	    m.sealed_drops);
}

static void render_tasks(struct buf *b)
{
	uint64_t cum = 0;
	size_t i;

	one(b, "tasks_queued", "gauge", "Tasks waiting for a worker.", sv.tasks_queued);
	one(b, "tasks_running", "gauge", "Tasks held by workers.", sv.tasks_running);
	one(b, "items_in_flight", "gauge", "Items received and not yet answered.",
	    sv.items_in_flight);
	one(b, "connections", "gauge", "Client connections open.", (uint64_t)sv.n_conns);
	head(b, "task_duration_seconds", "histogram",
	     "Time from sending a task to its worker to its answer.");
	for (i = 0; i < N_BUCKETS; i++) {
		cum += m.task_buckets[i];
		buf_printf(b, "poold_task_duration_seconds_bucket{le=\"%g\"} %llu\n",
		           (double)bucket_ms[i] / 1000, (unsigned long long)cum);
	}
	cum += m.task_buckets[N_BUCKETS];
	buf_printf(b, "poold_task_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
	           (unsigned long long)cum);
	buf_printf(b, "poold_task_duration_seconds_sum %.3f\n", (double)m.task_ms_sum / 1000);
	buf_printf(b, "poold_task_duration_seconds_count %llu\n", (unsigned long long)m.task_count);
	one(b, "received_bytes_total", "counter", "Bytes read from clients.", m.bytes_in);
	one(b, "sent_bytes_total", "counter", "Bytes written to clients.", m.bytes_out);
}

void metrics_render(struct buf *b)
{
	head(b, "info", "gauge", "Always 1; the labels name the version.");
	buf_printf(b, "poold_info{version=\"%s\",protocol=\"%d\"} 1\n", POOLD_VERSION,
	           PROTO_VERSION);
	one(b, "uptime_seconds", "gauge", "Seconds since the daemon started.",
	    (now_ms() - sv.start_ms) / 1000);
	render_requests(b);
	render_workers(b);
	render_tasks(b);
}

/* PHP-FPM's slowlog: each task running past --slow-task-ms is logged once. */
static void on_slow_scan(evutil_socket_t fd, short ev, void *arg)
{
	uint64_t now = now_ms();
	int i, n = pool_size();

	for (i = 0; i < n; i++) {
		struct task *t = pool_running(i);

		if (!t || t->slow_logged || now - t->sent_ms < sv.opt.slow_task_ms)
			continue;
		t->slow_logged = 1;
		log_warn("slow task: request %.*s, function %s, items %llu-%llu, worker %d, "
		         "running for %llu ms",
		         t->req ? (int)t->req->pr.id.len : 11,
		         t->req ? t->req->pr.id.p : "(abandoned)", t->fn->name,
		         (unsigned long long)t->first,
		         (unsigned long long)(t->first + t->count - 1), i,
		         (unsigned long long)(now - t->sent_ms));
	}
}

void metrics_start(void)
{
	uint32_t ms = sv.opt.slow_task_ms / 4;
	struct timeval tv;

	if (!sv.opt.slow_task_ms)
		return;
	ms = ms < SLOW_SCAN_MIN_MS   ? SLOW_SCAN_MIN_MS
	     : ms > SLOW_SCAN_MAX_MS ? SLOW_SCAN_MAX_MS
	                             : ms;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	ev_slow = event_new(sv.base, -1, EV_PERSIST, on_slow_scan, NULL);
	event_add(ev_slow, &tv);
}

void metrics_stop(void)
{
	if (ev_slow)
		event_free(ev_slow);
	ev_slow = NULL;
}
