"""Daemon limits: --max-items, --max-inflight, --max-pending-items, --max-connections."""

import time

import harness
from harness import Daemon, check, check_eq, check_error, check_results


def test_max_items():
    with Daemon(workers=1, args=["--max-items", "10"]) as d, d.client() as c:
        check_results(c.call({"op": "map", "fn": "square", "args": list(range(10))}),
                      [i * i for i in range(10)], "a map of exactly --max-items items")
        check_error(c.call({"op": "map", "fn": "square", "args": list(range(11))}),
                    "too_large", "a map of --max-items + 1 items")
        check_results(c.call({"op": "map", "fn": "square", "args": [3]}), [9],
                      "the connection after too_large")


def test_max_inflight():
    with Daemon(workers=2, args=["--max-inflight", "2"]) as d, d.client() as c:
        c.send({"id": "a", "op": "apply", "fn": "sleep_ms", "args": [1000]})
        c.send({"id": "b", "op": "map", "fn": "sleep_ms", "args": [1000]})
        check_error(c.call({"id": "c", "op": "map", "fn": "square", "args": [1]}, timeout=10),
                    "busy", "a third request in flight with --max-inflight 2", id_="c")
        # The limit is per connection, and ops without workers are not counted.
        check_eq(c.call({"op": "ping"}, timeout=10).get("ok"), True, "ping at the limit")
        with d.client() as other:
            check_results(other.call({"op": "map", "fn": "square", "args": [2]}), [4],
                          "another connection at the limit")
        check_eq(c.recv_id("a", timeout=20).get("result"), 1000, "request a")
        check_results(c.recv_id("b", timeout=20), [1000], "request b")
        check_results(c.call({"id": "d", "op": "map", "fn": "square", "args": [5]}), [25],
                      "a request once the others are answered")


def test_max_pending_items():
    with Daemon(workers=2, args=["--max-pending-items", "10"]) as d, d.client() as c:
        check_error(c.call({"op": "map", "fn": "square", "args": list(range(11))}), "busy",
                    "a map bigger than --max-pending-items")
        c.send({"id": "slow", "op": "map", "fn": "sleep_ms", "args": [500] * 8,
                "chunksize": 1})
        with d.client() as other:
            check_error(other.call({"op": "map", "fn": "square", "args": [1, 2, 3]}), "busy",
                        "3 more items while 8 of 10 are in flight")
            check_results(other.call({"op": "map", "fn": "square", "args": [1, 2]}), [1, 4],
                          "2 more items while 8 of 10 are in flight")
        check_results(c.recv_id("slow", timeout=30), [500] * 8, "the slow map")
        check_results(c.call({"op": "map", "fn": "square", "args": list(range(10))}),
                      [i * i for i in range(10)], "10 items once nothing is in flight")


def test_max_connections():
    with Daemon(workers=1, args=["--max-connections", "2"]) as d:
        a, b = d.client(), d.client()
        try:
            check_eq(a.call({"op": "ping"}).get("ok"), True, "connection 1")
            check_eq(b.call({"op": "ping"}).get("ok"), True, "connection 2")
            # A third client waits in the listen backlog, unanswered...
            third = d.client()
            try:
                third.send({"id": "t", "op": "ping"})
                third.expect_silence(0.5)
                st = a.call({"op": "status"})["status"]
                check_eq(st["connections"], 2, "connections at the limit")
                # ...until a connection closes.
                b.close()
                t0 = time.monotonic()
                r = third.recv_id("t", timeout=10)
                check_eq(r.get("ok"), True, "the waiting client's ping")
                check(time.monotonic() - t0 < 5, "served %.1fs after a slot freed" %
                      (time.monotonic() - t0))
            finally:
                third.close()
        finally:
            a.close()
            b.close()
        d.wait_quiet()


harness.main(globals())
