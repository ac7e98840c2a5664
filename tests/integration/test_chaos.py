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


# A worker program written with the Python helper (no file: python3 -c).
PROGRAM_CONF = """
[function double]
kind = program
command = python3 -c "import poold.worker as w; w.register(lambda x: 2 * x, 'double'); w.serve()"
env = PYTHONPATH=%s
""" % os.path.join(harness.SRCROOT, "python")


def test_kill_workers_during_map():
    """Maps of 200,000 items are repeated until 50 kills landed while a map ran."""
    chaos([("square", lambda i: i * i), ("echo", lambda i: i)])


def test_kill_workers_during_program_map():
    """The same with a worker program: killed with its worker, restarted, results exact."""
    # A kill every 100 ms: a worker's program must get through its start-up
    # (an interpreter) between kills for the map to make progress at all.
    chaos([("double", lambda i: 2 * i)], config=PROGRAM_CONF, n_items=50000, min_kills=25,
          kill_every=0.1)

    def programs():
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if b"w.register(lambda x: 2 * x, 'double')" in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return [p for p in found if harness.pid_alive(p)]
    harness.wait_until(lambda: not programs(), 10, "no worker program to outlive poold")


def chaos(fns, config=None, n_items=N_ITEMS, min_kills=MIN_KILLS, kill_every=KILL_EVERY):
    rng = random.Random(4242)
    with Daemon(workers=4, config=config) as d, d.client() as c, d.client() as watcher:
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
                    done.wait(kill_every)
            except BaseException as e:
                errors.append(repr(e))

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        deadline = time.monotonic() + 150
        rounds = 0
        try:
            while len(kills) < min_kills and time.monotonic() < deadline:
                fn, want = fns[rounds % len(fns)]
                items = list(range(rounds, rounds + n_items))
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
                      (rounds, fn, n_items, time.monotonic() - t0, len(kills) - n0), flush=True)
                check(r.get("ok") is True, "round %d: the map failed: %s" %
                      (rounds, harness._short(r)))
                res = r["results"]
                check_eq(len(res), n_items, "round %d: number of results" % rounds)
                bad = [k for k, i in enumerate(items) if res[k] != want(i)]
                check(not bad, "round %d: %d wrong results, first at %s: %s" %
                      (rounds, len(bad), bad[:5], [res[k] for k in bad[:5]]))
                rounds += 1
        finally:
            done.set()
            active.clear()
            t.join(30)
        check(not errors, "killer thread failed: %s" % errors)
        check(len(kills) >= min_kills, "only %d workers were killed during %d maps" %
              (len(kills), rounds))
        # Still healthy: every slot comes back, nothing in flight, work is done right.
        st = d.wait_quiet(timeout=60, connections=3)
        check(sum(s["restarts"] for s in st["slots"]) >= 1, "no restart counted: %s" %
              st["slots"])
        check_results(c.call({"op": "map", "fn": "cube", "args": list(range(1000))}),
                      [i ** 3 for i in range(1000)], "map after the chaos")
        check_eq(d.call({"op": "ping"}).get("pid"), d.pid, "ping after the chaos")


harness.main(globals())
