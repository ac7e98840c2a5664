"""Chaos: a big map completes exactly while workers are SIGKILLed every 20 ms."""

import os
import random
import signal
import threading
import time

import harness
from harness import Daemon, check, check_eq, check_results

N_ITEMS = 200000
KILL_EVERY = 0.020
MIN_KILLS = 50


def test_kill_workers_during_map():
    """Maps of 200,000 items are repeated until 50 kills landed while a map ran."""
    rng = random.Random(4242)
    with Daemon(workers=4) as d, d.client() as c, d.client() as watcher:
        active = threading.Event()
        done = threading.Event()
        kills = []
        errors = []

        def killer():
            try:
                while not done.is_set():
                    if not active.wait(0.1):
                        continue
                    st = watcher.call({"op": "status"}, timeout=30)["status"]
                    pids = [s["pid"] for s in st["slots"] if s["pid"] > 0]
                    if pids and active.is_set():
                        pid = rng.choice(pids)
                        if harness.ppid_of(pid) == d.pid:  # never a recycled pid
                            try:
                                os.kill(pid, signal.SIGKILL)
                                kills.append(pid)
                            except ProcessLookupError:
                                pass
                    done.wait(KILL_EVERY)
            except BaseException as e:
                errors.append(repr(e))

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        deadline = time.monotonic() + 150
        rounds = 0
        try:
            while len(kills) < MIN_KILLS and time.monotonic() < deadline:
                fn, want = ("square", lambda i: i * i) if rounds % 2 == 0 else \
                    ("echo", lambda i: i)
                items = list(range(rounds, rounds + N_ITEMS))
                t0 = time.monotonic()
                n0 = len(kills)
                c.send({"id": rounds, "op": "map", "fn": fn, "args": items, "chunksize": 500,
                        "retries": 100})
                active.set()
                try:
                    r = c.recv_id(rounds, timeout=max(deadline - time.monotonic(), 1) + 60)
                finally:
                    active.clear()
                print("round %d: map %s of %d items in %.1fs, %d workers killed" %
                      (rounds, fn, N_ITEMS, time.monotonic() - t0, len(kills) - n0), flush=True)
                check(r.get("ok") is True, "round %d: the map failed: %s" %
                      (rounds, harness._short(r)))
                res = r["results"]
                check_eq(len(res), N_ITEMS, "round %d: number of results" % rounds)
                bad = [k for k, i in enumerate(items) if res[k] != want(i)]
                check(not bad, "round %d: %d wrong results, first at %s: %s" %
                      (rounds, len(bad), bad[:5], [res[k] for k in bad[:5]]))
                rounds += 1
        finally:
            done.set()
            active.clear()
            t.join(30)
        check(not errors, "killer thread failed: %s" % errors)
        check(len(kills) >= MIN_KILLS, "only %d workers were killed during %d maps" %
              (len(kills), rounds))
        # Still healthy: every slot comes back, nothing in flight, work is done right.
        st = d.wait_quiet(timeout=60, connections=3)
        check(sum(s["restarts"] for s in st["slots"]) >= 1, "no restart counted: %s" %
              st["slots"])
        check_results(c.call({"op": "map", "fn": "cube", "args": list(range(1000))}),
                      [i ** 3 for i in range(1000)], "map after the chaos")
        check_eq(d.call({"op": "ping"}).get("pid"), d.pid, "ping after the chaos")


harness.main(globals())
