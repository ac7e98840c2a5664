"""The metrics op (Prometheus text exposition) and the slow-task log."""

import os
import re
import signal

import harness
from harness import Daemon, check, check_eq, check_error, check_results, wait_until

SAMPLE = re.compile(r'^(poold_[a-z_]+)(\{[^}]*\})? (\S+)$')


def metrics(d):
    r = d.call({"op": "metrics"})
    check(r.get("ok") is True and isinstance(r.get("metrics"), str), "metrics reply: %s" %
          harness._short(r))
    return r["metrics"]


def parse(text):
    """{(name, labels): value}, checking the exposition format on the way."""
    samples, typed = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            typed[name] = kind
            continue
        m = SAMPLE.match(line)
        check(m is not None, "not a sample line: %r" % line)
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        check(name in typed or base in typed, "%s has no # TYPE line" % name)
        if typed.get(name) == "counter":
            check(name.endswith("_total"), "counter %s does not end in _total" % name)
        samples[(name, labels)] = value
    return samples


def test_metrics_counts():
    with Daemon(workers=2) as d:
        before = parse(metrics(d))
        check_results(d.call({"op": "map", "fn": "square", "args": [1, 2, 3]}), [1, 4, 9], "map")
        check_error(d.call({"op": "map", "fn": "fail", "args": ["no"]}), "function_error",
                    "a failing item")
        check_error(d.call({"op": "map", "fn": "nope", "args": [1]}), "unknown_function",
                    "an unknown function")
        check_error(d.call({"op": "apply", "fn": "crash", "args": [1], "retries": 0}),
                    "worker_died", "a crash")
        wait_until(lambda: all(s["state"] == "idle" for s in d.status()["slots"]), 20,
                   "the crashed worker to come back")
        after = parse(metrics(d))

        def delta(name, labels=""):
            return after.get((name, labels), 0) - before.get((name, labels), 0)
        check_eq(delta("poold_requests_total", '{op="map",outcome="ok"}'), 1, "maps ok")
        check_eq(delta("poold_requests_total", '{op="map",outcome="error"}'), 2, "maps failed")
        check_eq(delta("poold_requests_total", '{op="apply",outcome="error"}'), 1,
                 "applies failed")
        check_eq(delta("poold_errors_total", '{code="function_error"}'), 1, "function_error")
        check_eq(delta("poold_errors_total", '{code="unknown_function"}'), 1, "unknown_function")
        check_eq(delta("poold_errors_total", '{code="worker_died"}'), 1, "worker_died")
        check_eq(delta("poold_items_total", '{outcome="ok"}'), 3, "items ok")
        check_eq(delta("poold_items_total", '{outcome="failed"}'), 2, "items failed")
        check_eq(delta("poold_worker_deaths_total", '{cause="crash"}'), 1, "crash deaths")
        check_eq(delta("poold_worker_starts_total"), 1, "worker starts")
        check_eq(after[("poold_workers", '{state="idle"}')], 2, "idle workers")
        check(after[("poold_received_bytes_total", "")] > before[("poold_received_bytes_total",
                                                                  "")], "bytes in counted")
        check(after[("poold_sent_bytes_total", "")] > before[("poold_sent_bytes_total", "")],
              "bytes out counted")
        buckets = sorted((float(k[1][5:-2]) if "Inf" not in k[1] else float("inf"), v)
                         for k, v in after.items() if k[0] == "poold_task_duration_seconds_bucket")
        counts = [v for _, v in buckets]
        check(counts == sorted(counts), "histogram buckets not cumulative: %s" % buckets)
        check_eq(counts[-1], after[("poold_task_duration_seconds_count", "")],
                 "+Inf bucket equals the count")
        check(counts[-1] >= 3, "tasks timed: %s" % counts[-1])


def test_slow_task_log():
    with Daemon(workers=2, args=["--slow-task-ms", "100"]) as d:
        check_eq(d.call({"id": 5, "op": "apply", "fn": "sleep_ms", "args": [400]}).get("result"),
                 400, "slow apply")
        check_results(d.call({"op": "map", "fn": "square", "args": [1, 2]}), [1, 4], "fast map")
        lines = [l for l in d.log().splitlines() if "slow task:" in l]
        check_eq(len(lines), 1, "slow-task lines: %s" % lines)
        check("request 5, function sleep_ms" in lines[0], "slow-task line: %s" % lines[0])


if __name__ == "__main__":
    harness.main(globals())
