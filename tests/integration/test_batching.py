"""Batching across requests: cheap tasks of different requests travel in one message,
each item keeps its own request, index, retry count and answer."""

import json
import re
import socket
import statistics
import time

import harness
from harness import Daemon, check, check_eq, check_error, wait_until

# Dies (SIGSEGV of its worker) on the item 13, echoes any other: a poison item
# for a function that is otherwise cheap, so that it lands in a bundle.
POISON = """
[function poisonable]
kind = command
command = sh -c "if [ \\"$1\\" = 13 ]; then kill -SEGV $PPID; sleep 5; fi; printf %s \\"$1\\"" sh {}
description = echoes its item; item 13 kills the worker
"""


def metric(d, name):
    text = d.call({"op": "metrics"})["metrics"]
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1))


def tasks_done(d):
    return sum(s["tasks_done"] for s in d.status()["slots"])


def pipeline(c, reqs, timeout=120):
    """Send every request at once, return {id: reply}."""
    c.send_raw("".join(json.dumps(r) + "\n" for r in reqs).encode())
    out = {}
    while len(out) < len(reqs):
        r = c.recv(timeout=timeout)
        out[r["id"]] = r
    return out


def test_applies_share_tasks():
    n = 4000
    with Daemon(workers=2, args=["--max-inflight", str(n)]) as d:
        conns = [d.client() for _ in range(4)]
        # Warm up: the function's cost per item is measured on the first answers.
        pipeline(conns[0], [{"id": i, "op": "apply", "fn": "add", "args": [i, 1]}
                            for i in range(50)])
        before = tasks_done(d)
        for k, c in enumerate(conns):
            c.send_raw("".join(json.dumps({"id": i, "op": "apply", "fn": "add",
                                           "args": [i, k]}) + "\n" for i in range(n)).encode())
        for k, c in enumerate(conns):
            got = {}
            while len(got) < n:
                r = c.recv()
                got[r["id"]] = r.get("result")
            check_eq([got[i] for i in range(n)], [i + k for i in range(n)],
                     "answers of connection %d" % k)
        tasks = tasks_done(d) - before
        print("%d applies in %d tasks" % (4 * n, tasks))
        check(tasks < n, "applies did not share tasks: %d tasks for %d" % (tasks, 4 * n))
        for c in conns:
            c.close()


def test_poison_in_bundle_charges_alone():
    with Daemon(workers=2, config=POISON, args=["--max-inflight", "1000"]) as d, \
            d.client() as c:
        pipeline(c, [{"id": i, "op": "map", "fn": "poisonable", "args": [i + 100]}
                     for i in range(20)])
        before = tasks_done(d)
        reqs = [{"id": i, "op": "map", "fn": "poisonable", "args": [i], "retries": 0}
                for i in range(300)]
        got = pipeline(c, reqs)
        err = check_error(got[13], "worker_died", "the poison item")
        check("SIGSEGV" in err["message"], "poison message: %s" % err["message"])
        for i in range(300):
            if i != 13:
                check_eq(got[i].get("results"), [str(i)],
                         "request %d (retries 0: any charge would fail it)" % i)
        tasks = tasks_done(d) - before
        print("300 applies in %d answered tasks" % tasks)
        check(tasks < 290, "no bundles formed (%d tasks): the test proves nothing" % tasks)


def test_cancel_leaves_bundle_mates():
    n = 600
    with Daemon(workers=2, args=["--max-inflight", str(n)]) as d, d.client() as a, \
            d.client() as b:
        pipeline(b, [{"id": i, "op": "apply", "fn": "spin", "args": [2000]} for i in range(50)])
        want = pipeline(b, [{"id": 0, "op": "apply", "fn": "spin", "args": [20000]}])[0]
        b.send_raw("".join(json.dumps({"id": i, "op": "apply", "fn": "spin", "args": [20000]})
                           + "\n" for i in range(n)).encode())
        a.send_raw("".join(json.dumps({"id": i, "op": "apply", "fn": "spin", "args": [20000]})
                           + "\n" for i in range(n)).encode())
        a.send_raw("".join(json.dumps({"id": "c%d" % i, "op": "cancel", "target": i}) + "\n"
                           for i in range(n)).encode())
        got = {}
        while len(got) < n:
            r = b.recv()
            got[r["id"]] = r
        check(all(got[i].get("result") == want["result"] for i in range(n)),
              "answers of the other client")
        st = d.wait_quiet(connections=3)
        check_eq(st["requests"], 0, "requests left")
        check_eq(sum(s["restarts"] for s in st["slots"]), 0, "workers restarted")
        check_eq(metric(d, 'poold_worker_deaths_total{cause="retired"}'), 0,
                 "workers stopped for abandoned work while bundle mates were wanted")


def test_options_never_mixed():
    with Daemon(workers=2, args=["--max-inflight", "2000"]) as d, d.client() as c:
        pipeline(c, [{"id": i, "op": "apply", "fn": "sleep_ms", "args": [0]} for i in range(50)])
        # A 200 ms item with a long timeout among cheap ones with a 40 ms timeout: in one
        # message it would run under the short timeout's budget and be killed.
        reqs = []
        for i in range(400):
            slow = i % 100 == 50
            reqs.append({"id": i, "op": "apply", "fn": "sleep_ms", "args": [200 if slow else 0],
                         "timeout_ms": 5000 if slow else 40})
        # Error modes: a fail-fast task that stops at its error must never lead a
        # message holding collect-mode tasks (they would go back to the queue).
        for i in range(400, 800):
            bad = i % 2 == 0
            reqs.append({"id": i, "op": "map", "fn": "add", "star": True,
                         "args": [["x", 1]] if bad else [[i, 1]],
                         "on_error": "fail" if bad else "collect"})
        retries = metric(d, "poold_retries_total")
        got = pipeline(c, reqs)
        for i in range(400):
            check_eq(got[i].get("result"), 200 if i % 100 == 50 else 0, "sleep_ms %d" % i)
        for i in range(400, 800):
            if i % 2 == 0:
                check_error(got[i], "type_error", "fail-mode map %d" % i)
            else:
                check_eq(got[i].get("results"), [i + 1], "collect-mode map %d" % i)
        check_eq(metric(d, "poold_timeouts_total"), 0, "timeouts")
        check_eq(metric(d, "poold_retries_total") - retries, 0, "tasks sent again")


def test_huge_map_does_not_starve_apply():
    with Daemon(workers=2) as d, d.client() as big, d.client() as small:
        n = 3000000
        t0 = time.monotonic()
        big.send({"id": 1, "op": "map", "fn": "square", "args": list(range(n))})
        wait_until(lambda: d.status()["tasks_running"] > 0, 30, "the big map to start")
        lat = []
        for i in range(20):
            t = time.monotonic()
            check_eq(small.call({"op": "apply", "fn": "add", "args": [i, 1]}).get("result"),
                     i + 1, "apply during the map")
            lat.append(time.monotonic() - t)
        r = big.recv_id(1, timeout=300)
        total = time.monotonic() - t0
        check(r.get("ok") is True and len(r["results"]) == n, "the big map")
        ratio = statistics.median(lat) / total
        print("apply p50 %.2f ms during a %.2f s map: %.4f of it" %
              (statistics.median(lat) * 1e3, total, ratio))
        check(ratio < 0.05, "applies waited %.1f%% of the map's time" % (ratio * 100))


if __name__ == "__main__":
    harness.main(globals())
