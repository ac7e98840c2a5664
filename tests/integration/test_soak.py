"""Soak (issue 9): minutes of mixed clients while workers are killed.

Well-behaved clients (maps, starmaps, applies, streams, half-closers that
wait for their reply) must get every answer exactly. Around them: clients
that never read, that half-close and leave, that vanish mid-request, and
SIGKILLs of random workers. At the end nothing may be left in the daemon
(connections, requests, tasks) and its memory must be back near its start.

SOAK_SECONDS sets the length of the load (default 100).
"""

import json
import os
import random
import signal
import socket
import threading
import time

import harness
from harness import Daemon, check, check_eq

SECONDS = float(os.environ.get("SOAK_SECONDS", "100"))
MiB = 1024 * 1024



class Soak:
    def __init__(self, d):
        self.d = d
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.counts = {}

    def client(self):
        """A connection; while the daemon's listen backlog is full, wait and retry."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return self.d.client(timeout=30)
            except BlockingIOError:
                self.count("backlog_full")
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def fail(self, what):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(what)

    def run(self, name, body):
        """Run body(rng) in a loop until the end; record what goes wrong."""
        rng = random.Random(hash(name) ^ int(time.time()))
        while not self.stop.is_set():
            try:
                body(rng)
            except (ConnectionError, OSError, EOFError, TimeoutError, AssertionError) as e:
                self.fail("%s: %s: %s" % (name, type(e).__name__, e))
                time.sleep(0.2)

    def call_retry(self, c, obj):
        """A request answered, retried while the daemon says busy."""
        while True:
            r = c.call(dict(obj, id=c.next_id), timeout=120)
            c.next_id += 1
            if r.get("ok") is False and r["error"]["code"] == "busy":
                self.count("busy")
                time.sleep(0.05)
                continue
            return r

    # ------------------------------------------------------------ well-behaved

    def mapper(self, rng):
        with self.client() as c:
            for _ in range(rng.randint(1, 8)):
                n = rng.choice((1, 5, 50, 500, 3000))
                xs = [rng.randint(-10**6, 10**6) for _ in range(n)]
                req = {"op": "map", "fn": "square", "args": xs, "retries": 100}
                if rng.random() < 0.3:
                    req["chunksize"] = rng.choice((1, 7, 100))
                r = self.call_retry(c, req)
                check(r.get("results") == [x * x for x in xs], "map of %d: %s" %
                      (n, harness._short(r)))
                pairs = [[rng.randint(0, 999), rng.randint(0, 999)] for _ in range(20)]
                r = self.call_retry(c, {"op": "map", "fn": "add", "args": pairs, "star": True,
                                        "retries": 100})
                check(r.get("results") == [a + b for a, b in pairs], "starmap: %s" %
                      harness._short(r))
                self.count("maps", 2)

    def applier(self, rng):
        with self.client() as c:
            for _ in range(rng.randint(1, 20)):
                v = rng.choice((None, True, rng.random(), "x" * rng.randint(0, 3000),
                                {"k": [1, 2, {"z": "é"}]}, list(range(rng.randint(0, 50)))))
                r = self.call_retry(c, {"op": "apply", "fn": "echo", "args": [v],
                                        "retries": 100})
                check(r.get("ok") is True and r.get("result") == v, "apply echo: %s" %
                      harness._short(r))
                self.count("applies")

    def streamer(self, rng):
        with self.client() as c:
            sid = "s%d" % rng.randint(0, 10**9)
            n, batch = rng.choice((100, 1000, 5000)), rng.choice((1, 10, 100))
            ordered = rng.random() < 0.7
            c.send({"id": sid, "op": "map", "fn": "square", "stream": True, "ordered": ordered,
                    "window": rng.choice((10, 100, 1000)), "retries": 100})
            got = {}
            fed = 0
            done = None
            deadline = time.monotonic() + 120
            while done is None and time.monotonic() < deadline:
                if fed < n:
                    k = min(batch, n - fed)
                    msg = {"id": sid, "op": "feed", "args": list(range(fed, fed + k))}
                    fed += k
                    if fed == n:
                        msg["end"] = True
                    # the daemon may stop reading (window, limits): read while it does
                    payload = (json.dumps(msg) + "\n").encode()
                    view = memoryview(payload)
                    while view:
                        try:
                            view = view[c.sock.send(view):]
                        except BlockingIOError:
                            done = self.drain_stream(c, sid, got, 0.05) or done
                            if done is not None:
                                break
                if done is None:
                    done = self.drain_stream(c, sid, got, 0 if fed < n else 1.0)
            check(done is not None, "stream %s unfinished (%d of %d results)" %
                  (sid, len(got), n))
            check(done.get("ok") is True and done.get("items") == n,
                  "stream %s ended with %s" % (sid, harness._short(done)))
            check(got == {i: i * i for i in range(n)}, "stream %s results (%d of %d)" %
                  (sid, len(got), n))
            self.count("streams")

    def drain_stream(self, c, sid, got, timeout):
        """Read the stream's replies that arrive within timeout; its done line, if it came."""
        t_end = time.monotonic() + timeout
        while True:
            try:
                r = c.recv(timeout=max(t_end - time.monotonic(), 0.001))
            except TimeoutError:
                return None
            check(r.get("id") == sid, "reply for another id: %s" % harness._short(r))
            if r.get("done") or r.get("ok") is False:
                return r
            for i, v in enumerate(r["results"]):
                check(r["index"] + i not in got, "item %d answered twice" % (r["index"] + i))
                got[r["index"] + i] = v

    def polite_half_closer(self, rng):
        with self.client() as c:
            xs = list(range(rng.randint(1, 200)))
            c.send({"id": 1, "op": "map", "fn": "square", "args": xs, "retries": 100})
            c.sock.shutdown(socket.SHUT_WR)
            r = c.recv(timeout=120)
            if r.get("ok") is False and r["error"]["code"] == "busy":
                self.count("busy")
                return
            check(r.get("results") == [x * x for x in xs], "half-closed map: %s" %
                  harness._short(r))
            self.count("half_closed")

    # ------------------------------------------------------------------ hostile

    def never_reader(self, rng):
        c = self.client()
        try:
            payload = "y" * rng.choice((1000, 65536, 500000))
            for i in range(rng.randint(5, 60)):
                c.send_raw(json.dumps({"id": i, "op": "apply", "fn": "echo",
                                       "args": [payload]}) + "\n", timeout=5)
            self.stop.wait(rng.uniform(0.5, 5))
        except TimeoutError:
            pass  # the daemon stopped reading it: that is the point
        finally:
            c.close()
        self.count("never_readers")

    def rude_half_closer(self, rng):
        c = self.client()
        try:
            if rng.random() < 0.5:
                c.send({"id": 1, "op": "map", "fn": "square", "stream": True})
                c.send({"id": 1, "op": "feed", "args": list(range(100))})
            else:
                c.send({"id": 1, "op": "map", "fn": "sleep_ms", "args": [50] * 10,
                        "chunksize": 1})
            c.sock.shutdown(socket.SHUT_WR)
            self.stop.wait(rng.uniform(0, 0.5))
        finally:
            c.close()
        self.count("rude_half_closers")

    def vanisher(self, rng):
        c = self.client()
        try:
            if rng.random() < 0.5:
                c.send({"id": 1, "op": "map", "fn": "sleep_ms", "stream": True, "window": 3,
                        "chunksize": 1})
                for _ in range(5):
                    c.send_raw(json.dumps({"id": 1, "op": "feed", "args": [20] * 5}) + "\n",
                               timeout=1)
            else:
                c.send({"id": 1, "op": "map", "fn": "square", "args": list(range(20000))})
                c.send_raw('{"id":2,"op":"map","fn":"square","args":[' + "1," * 50000)
        except TimeoutError:
            pass
        finally:
            c.close()
        self.count("vanishers")
        self.stop.wait(rng.uniform(0.01, 0.05))

    def killer(self, rng):
        self.stop.wait(rng.uniform(0.2, 0.8))
        pids = self.d.worker_pids()
        if pids:
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
                self.count("kills")
            except ProcessLookupError:
                pass


ROLES = [("mapper", 2), ("applier", 1), ("streamer", 2), ("polite_half_closer", 1),
         ("never_reader", 2), ("rude_half_closer", 1), ("vanisher", 1), ("killer", 1)]


def load(d, seconds):
    """Every role at once for `seconds`; returns the Soak with its counts and errors."""
    soak = Soak(d)
    threads = []
    for role, n in ROLES:
        for k in range(n):
            name = "%s%d" % (role, k)
            th = threading.Thread(target=soak.run, args=(name, getattr(soak, role)), name=name)
            th.start()
            threads.append(th)
    try:
        soak.stop.wait(seconds)
    finally:
        soak.stop.set()
        for th in threads:
            th.join(180)
    check(not any(th.is_alive() for th in threads), "client threads still running")
    return soak


def settled_rss(d, near, what):
    """VmRSS once the daemon is idle, waiting a little for it to come within 8 MiB of near."""
    st = d.wait_quiet(timeout=60)
    check_eq((st["connections"], st["requests"], st["tasks_queued"], st["tasks_running"],
              st["memory"], st["items_in_flight"]), (1, 0, 0, 0, 0, 0),
             "%s: connections, requests, tasks, bytes and items left" % what)
    # The daemon trims its heap when the last client leaves with no task left:
    # one more client, then read until the figure holds still.
    d.status()
    deadline = time.monotonic() + 10
    rss, last = harness.proc_status_kib(d.pid, "VmRSS"), None
    while time.monotonic() < deadline and (rss != last or (near is not None and
                                                           rss - near >= 8 * 1024)):
        time.sleep(0.2)
        rss, last = harness.proc_status_kib(d.pid, "VmRSS"), rss
    return rss


def test_soak():
    args = ["--max-memory", str(64 * MiB), "--max-connections", "256"]
    # One malloc arena: nanomsg's thread allocates the result messages, and a
    # second arena keeps 5-15 MiB of them that malloc_trim does not give back;
    # with one, the heap the daemon trims when idle is all of it.
    with Daemon(workers=3, args=args) as d:
        asan = harness.sanitized(d)
        # A short warm-up first: the baseline then includes what a first burst
        # allocates for good (nanomsg and malloc arenas, worker restarts).
        warm = load(d, 3)
        check(not warm.errors, "errors during the warm-up:\n  " + "\n  ".join(warm.errors))
        rss0 = settled_rss(d, None, "after the warm-up")
        soak = load(d, SECONDS)
        print("soak %.0fs: %s" % (SECONDS, json.dumps(soak.counts, sort_keys=True)), flush=True)
        check(not soak.errors, "well-behaved clients saw errors:\n  " + "\n  ".join(soak.errors))
        for what in ("maps", "applies", "streams", "half_closed", "kills"):
            check(soak.counts.get(what, 0) > 0, "no %s during the soak" % what)
        rss = settled_rss(d, rss0, "after the soak")
        print("VmRSS after the warm-up %d KiB, after the soak %d KiB, peak %d KiB" %
              (rss0, rss, harness.proc_status_kib(d.pid, "VmHWM")), flush=True)
        if not asan:
            check(rss - rss0 < 8 * 1024, "VmRSS %d KiB after the soak, %d KiB before" %
                  (rss, rss0))

harness.main(globals())
