"""Automatic chunk sizes: tiny items travel many to a task, slow items one at a time.

The daemon counts the chunks each slot answered (status slots[].tasks_done), so
the tests read how a map was cut without timing anything.
"""

import harness
from harness import Daemon, check, check_eq, check_results


def tasks_done(d):
    return sum(s["tasks_done"] for s in d.status()["slots"])


def items_done(d):
    return sum(s["items_done"] for s in d.status()["slots"])


def test_tiny_items_share_tasks():
    n = 200000
    with Daemon(workers=2) as d, d.client() as c:
        before = tasks_done(d)
        check_results(c.call({"op": "map", "fn": "square", "args": list(range(n))}, timeout=60),
                      [i * i for i in range(n)], "200,000 squares")
        tasks = tasks_done(d) - before
        # Measured cost per square is tens of ns: 5 ms of work is tens of
        # thousands of items. One item a task would be 200,000 tasks.
        check(2 <= tasks <= 200, "200,000 squares in %d tasks (want 2 to 200)" % tasks)
        # A second map measures again (single-item probes), then cuts big.
        before = tasks_done(d)
        check_results(c.call({"op": "map", "fn": "square", "args": list(range(n))}, timeout=60),
                      [i * i for i in range(n)], "200,000 squares again")
        again = tasks_done(d) - before
        check(again <= 200, "the second map in %d tasks" % again)


def test_slow_items_travel_alone():
    with Daemon(workers=2) as d, d.client() as c:
        # Teach the daemon that sleep_ms is cheap with 0 ms items...
        check_results(c.call({"op": "map", "fn": "sleep_ms", "args": [0] * 2000}, timeout=60),
                      [0] * 2000, "2000 sleeps of 0 ms")
        # ...then a map of slow items must not be cut by that cost: it probes
        # with single items and, once timed, sends each 30 ms item alone.
        before_t, before_i = tasks_done(d), items_done(d)
        items = [30] * 40
        check_results(c.call({"op": "map", "fn": "sleep_ms", "args": items}, timeout=60),
                      items, "40 sleeps of 30 ms")
        check_eq(items_done(d) - before_i, 40, "items answered")
        check_eq(tasks_done(d) - before_t, 40, "tasks for 40 items of 30 ms")


def test_explicit_chunksize():
    with Daemon(workers=2) as d, d.client() as c:
        before = tasks_done(d)
        check_results(c.call({"op": "map", "fn": "square", "args": list(range(1000)),
                              "chunksize": 10}), [i * i for i in range(1000)],
                      "1000 squares in chunks of 10")
        check_eq(tasks_done(d) - before, 100, "tasks for chunksize 10")


def test_stream_chunks_follow_cost():
    with Daemon(workers=2) as d, d.client() as c:
        before = tasks_done(d)
        c.send({"id": "s", "op": "map", "fn": "square", "stream": True})
        for k in range(10):
            c.send({"id": "s", "op": "feed", "args": list(range(k * 10000, (k + 1) * 10000))})
        c.send({"id": "s", "op": "end"})
        got = []
        while True:
            r = c.recv_id("s", timeout=60)
            check(r.get("ok") is True, "stream reply %s" % str(r)[:300])
            if r.get("done"):
                break
            check_eq(r["index"], len(got), "part index")
            got += r["results"]
        check_eq(got, [i * i for i in range(100000)], "streamed squares")
        tasks = tasks_done(d) - before
        # A chunk never spans two feeds: at least one task per feed line, and
        # far fewer than one per item.
        check(10 <= tasks <= 400, "100,000 streamed squares in %d tasks" % tasks)


harness.main(globals())
