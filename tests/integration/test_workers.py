"""Worker life and death, timeouts, cancel, disconnects, shutdown, half-close, peer uid."""

import os
import shutil
import signal
import socket
import time

import harness
from harness import (Daemon, check, check_eq, check_error, check_results, pid_alive,
                     wait_until)


def running(d):
    """Status once at least one task is running."""
    st = d.status()
    return st if st["tasks_running"] > 0 else None


def gone(pids):
    return lambda: not any(pid_alive(p) for p in pids)


def test_kill_idle_worker():
    with Daemon(workers=2) as d:
        st = d.status()
        old, other = st["slots"][0]["pid"], st["slots"][1]["pid"]
        os.kill(old, signal.SIGKILL)

        def replaced():
            s = d.status()["slots"]
            ok = s[0]["pid"] not in (0, old) and s[0]["state"] == "idle"
            return s if ok else None
        slots = wait_until(replaced, 20, "slot 0 to get a new worker")
        check_eq(slots[0]["restarts"], 1, "slot 0 restarts")
        check_eq((slots[1]["pid"], slots[1]["restarts"]), (other, 0), "slot 1 untouched")
        check(not pid_alive(old), "the killed worker %d is still there" % old)
        wait_until(lambda: not os.path.exists("/proc/%d" % old), 10,
                   "the killed worker to be reaped")
        r = d.call({"op": "map", "fn": "getpid", "args": list(range(8)), "chunksize": 1})
        check(r.get("ok") is True, "map after a worker was killed: %s" % r)
        pids = set(x["pid"] for x in r["results"])
        check(pids <= {slots[0]["pid"], other}, "items ran on %s" % pids)
        check_eq([x["item"] for x in r["results"]], list(range(8)), "items")


def test_crash_segv():
    with Daemon(workers=2) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "crash", "args": [1, 2], "retries": 0})
        err = check_error(r, "worker_died", "crash with retries 0", index=0)
        check("SIGSEGV" in err["message"], "message does not name SIGSEGV: %s" % err["message"])
        r = c.call({"op": "apply", "fn": "exit_worker", "args": [3], "retries": 0})
        err = check_error(r, "worker_died", "a worker that exits with status 3")
        check("status 3" in err["message"], "message does not say 'status 3': %s" %
              err["message"])
        check_results(c.call({"op": "map", "fn": "square", "args": [3, 4]}), [9, 16],
                      "map after crashes")
        st = d.wait_quiet(connections=2)
        check(sum(s["restarts"] for s in st["slots"]) >= 2, "restarts after 2+ crashes: %s" %
              st["slots"])


def test_crash_first_retried():
    with Daemon(workers=2) as d, d.client() as c:
        items = list(range(1, 9))
        r = c.call({"op": "map", "fn": "crash_first", "args": items, "retries": 1,
                    "chunksize": 1})
        check_results(r, items, "crash_first with retries 1, chunksize 1")
        r = c.call({"op": "map", "fn": "crash_first", "args": items, "retries": 1,
                    "chunksize": 3})
        check_results(r, items, "crash_first with retries 1, chunksize 3")
        r = c.call({"op": "map", "fn": "crash_first", "args": [7], "retries": 0})
        check_error(r, "worker_died", "crash_first with retries 0", index=0)
        st = d.wait_quiet(connections=2)
        check(sum(s["restarts"] for s in st["slots"]) >= 9, "restarts: %s" % st["slots"])


def test_crash_blame_repeated():
    """A crash is charged to the item that crashed, never to one that already succeeded.

    crash_first dies only on an item's first attempt, so with retries 1 every item
    must succeed. Repeated (up to 150 maps or 45 s), because a wrong charge depends
    on timing.
    """
    with Daemon(workers=2) as d, d.client() as c:
        items = list(range(1, 17))
        deadline = time.monotonic() + 45
        for k in range(150):
            if time.monotonic() > deadline:
                break
            r = c.call({"id": k, "op": "map", "fn": "crash_first", "args": items, "retries": 1,
                        "chunksize": 1})
            check_results(r, items, "round %d: crash_first with retries 1" % k)


def test_abort():
    with Daemon(workers=2) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "abort", "args": [1], "retries": 0})
        err = check_error(r, "worker_died", "abort with retries 0", index=0)
        check("SIGABRT" in err["message"], "message does not name SIGABRT: %s" % err["message"])
        r = c.call({"op": "map", "fn": "abort", "args": [1, 2, 3], "retries": 2,
                    "on_error": "collect", "chunksize": 1})
        check_eq([x.get("error", {}).get("code") for x in r.get("results", [])],
                 ["worker_died"] * 3, "collect of abort")
        check_eq(r.get("failed"), [0, 1, 2], "failed")
        check("3 attempts" in r["results"][0]["error"]["message"],
              "retries 2 means 3 attempts: %s" % r["results"][0])
        check_results(c.call({"op": "map", "fn": "square", "args": [5]}), [25],
                      "map after aborts")


def test_timeout():
    with Daemon(workers=2) as d, d.client() as c:
        before = d.worker_pids()
        t0 = time.monotonic()
        r = c.call({"op": "map", "fn": "sleep_ms", "args": [10, 20, 60000, 30, 40],
                    "chunksize": 1, "timeout_ms": 300, "retries": 1, "on_error": "collect"},
                   timeout=60)
        dt = time.monotonic() - t0
        check(r.get("ok") is True, "collect map failed: %s" % r)
        res = r["results"]
        check_eq([res[i] for i in (0, 1, 3, 4)], [10, 20, 30, 40], "quick items")
        check(isinstance(res[2], dict) and res[2].get("error", {}).get("code") == "timeout",
              "hanging item: %s" % res[2])
        check_eq(r.get("failed"), [2], "failed")
        check(dt < 20, "the request took %.1fs" % dt)
        # The hanging worker was stopped, not left sleeping.
        check(any(not pid_alive(p) for p in before), "no worker was killed: %s" % before)
        d.wait_quiet(timeout=20, connections=2)
        # fail mode and apply: code timeout too.
        r = c.call({"op": "apply", "fn": "sleep_ms", "args": [60000], "timeout_ms": 200,
                    "retries": 0}, timeout=60)
        check_error(r, "timeout", "apply with timeout_ms")
        r = c.call({"op": "map", "fn": "sleep_ms", "args": [1, 60000], "timeout_ms": 200,
                    "retries": 0, "chunksize": 1}, timeout=60)
        check_error(r, "timeout", "map with timeout_ms", index=1)
        check_results(c.call({"op": "map", "fn": "sleep_ms", "args": [50], "timeout_ms": 5000}),
                      [50], "an item within its timeout")


def test_default_timeout():
    with Daemon(workers=1, args=["--timeout-ms", "200"]) as d, d.client() as c:
        t0 = time.monotonic()
        r = c.call({"op": "map", "fn": "sleep_ms", "args": [60000], "retries": 0}, timeout=60)
        check_error(r, "timeout", "--timeout-ms 200 applies by default", index=0)
        check(time.monotonic() - t0 < 20, "took %.1fs" % (time.monotonic() - t0))
        r = c.call({"op": "map", "fn": "sleep_ms", "args": [500], "timeout_ms": 0})
        check_results(r, [500], "timeout_ms 0 lifts the default")


def test_max_tasks_per_worker():
    with Daemon(workers=2, args=["--max-tasks-per-worker", "5"]) as d, d.client() as c:
        before = d.worker_pids()
        r = c.call({"op": "map", "fn": "square", "args": list(range(50)), "chunksize": 1})
        check_results(r, [i * i for i in range(50)], "50 items with --max-tasks-per-worker 5")
        st = d.wait_quiet(connections=2)
        after = [s["pid"] for s in st["slots"]]
        check(not set(before) & set(after), "worker pids did not all change: %s -> %s" %
              (before, after))
        r = c.call({"op": "map", "fn": "getpid", "args": list(range(40)), "chunksize": 1})
        check(r.get("ok") is True, "getpid map: %s" % r)
        check_eq([x["item"] for x in r["results"]], list(range(40)), "getpid items")
        # 2 slots recycled every ~5 items: many processes (the exact bound is checked by
        # max_tasks_limit_exact).
        n = len(set(x["pid"] for x in r["results"]))
        check(n >= 4, "40 items ran on only %d worker processes" % n)


def test_max_tasks_limit_exact():
    """No worker runs more than N items (chunksize 1) with --max-tasks-per-worker N.

    Repeated over 10 maps: whether a worker gets an extra item depends on how the
    supervisor batches the results it reads.
    """
    with Daemon(workers=2, args=["--max-tasks-per-worker", "5"]) as d, d.client() as c:
        for k in range(10):
            r = c.call({"id": k, "op": "map", "fn": "getpid", "args": list(range(60)),
                        "chunksize": 1})
            check(r.get("ok") is True, "getpid map: %s" % r)
            per_pid = {}
            for x in r["results"]:
                per_pid[x["pid"]] = per_pid.get(x["pid"], 0) + 1
            check(max(per_pid.values()) <= 5, "round %d: a worker ran %d items with "
                  "--max-tasks-per-worker 5 (items per pid: %s)" %
                  (k, max(per_pid.values()), sorted(per_pid.values())))


def test_cancel():
    with Daemon(workers=2) as d, d.client() as c:
        c.send({"id": "slow", "op": "map", "fn": "sleep_ms", "args": [200] * 100,
                "chunksize": 1})
        wait_until(lambda: running(d), 20, "the slow map to start")
        r = c.call({"id": "c1", "op": "cancel", "target": "slow"}, timeout=10)
        check_eq(r, {"id": "c1", "ok": True, "cancelled": "slow"}, "cancel reply")
        check_error(c.recv_id("slow", timeout=5), "cancelled", "the cancelled map")
        st = d.status()
        check_eq((st["tasks_queued"], st["requests"]), (0, 0),
                 "tasks_queued, requests right after cancel")
        t0 = time.monotonic()
        d.wait_quiet(timeout=3, connections=2)  # 96 items were left: 9.6 s if not dropped
        check(time.monotonic() - t0 < 3, "not quiet in time")
        check_error(c.call({"op": "cancel", "target": "slow"}), "not_found", "cancel again")
        check_error(c.call({"op": "cancel", "target": 12345}), "not_found", "cancel of nothing")
        # Only requests on the same connection can be cancelled.
        c.send({"id": 99, "op": "map", "fn": "sleep_ms", "args": [300]})
        with d.client() as other:
            check_error(other.call({"op": "cancel", "target": 99}), "not_found",
                        "cancel from another connection")
        check_results(c.recv_id(99), [300], "the map another connection tried to cancel")
        check_results(c.call({"op": "map", "fn": "square", "args": [6]}), [36],
                      "map after cancel")


def test_disconnect_mid_map():
    with Daemon(workers=2) as d:
        c = d.client()
        try:
            c.send({"op": "map", "fn": "sleep_ms", "args": [200] * 100, "chunksize": 1})
            wait_until(lambda: running(d), 20, "the map to start")
        finally:
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
        # 100 items of 200 ms on 2 workers: 10 s if the daemon kept running them.
        t0 = time.monotonic()
        d.wait_quiet(timeout=3)
        check(time.monotonic() - t0 < 3, "not quiet in time")
        check_results(d.call({"op": "map", "fn": "square", "args": [7]}), [49],
                      "map after a client left")


def test_duplicate_id():
    with Daemon(workers=2) as d, d.client() as c, d.client() as c2:
        c.send({"id": 7, "op": "map", "fn": "sleep_ms", "args": [1000]})
        c.send({"id": 7, "op": "map", "fn": "square", "args": [2]})
        # Another connection may use the same id.
        check_results(c2.call({"id": 7, "op": "map", "fn": "square", "args": [3]}), [9],
                      "id 7 on another connection")
        replies = [c.recv(timeout=10), c.recv(timeout=10)]
        check_eq([r.get("id") for r in replies], [7, 7], "ids of the two replies")
        errors = [r for r in replies if r.get("ok") is False]
        check_eq(len(errors), 1, "error replies among %s" % replies)
        check_error(errors[0], "duplicate_id", "second request with id 7 in flight")
        check_results([r for r in replies if r.get("ok")][0], [1000], "the first request")
        # Once answered, the id is free again.
        check_results(c.call({"id": 7, "op": "map", "fn": "square", "args": [4]}), [16],
                      "id 7 reused after its reply")
        c.send({"id": "s", "op": "apply", "fn": "sleep_ms", "args": [500]})
        check_error(c.call({"id": "s", "op": "apply", "fn": "add", "args": [1, 2]}),
                    "duplicate_id", "duplicate string id")
        check_eq(c.recv(timeout=10).get("result"), 500, "apply s")


def test_sigterm_drains():
    with Daemon(workers=2) as d:
        pids = d.worker_pids()
        c, idle = d.client(), d.client()
        try:
            c.send({"id": "m", "op": "map", "fn": "sleep_ms", "args": [200] * 20, "chunksize": 1})
            wait_until(lambda: running(d), 20, "the map to start")
            d.signal(signal.SIGTERM)
            # The listener goes away at once; new connections are refused.
            wait_until(lambda: not os.path.exists(d.sock), 5, "the socket file to go")
            try:
                harness.Client(d.sock).close()
                check(False, "a new connection was accepted after SIGTERM")
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            # Existing connections are still answered, and get shutting_down for new work.
            st = idle.call({"op": "status"}, timeout=10).get("status", {})
            check_eq(st.get("stopping"), True, "status stopping during the stop")
            check_eq(idle.call({"op": "ping"}, timeout=10).get("pid"), d.pid, "ping while stopping")
            check_error(idle.call({"op": "map", "fn": "square", "args": [1]}, timeout=10),
                        "shutting_down", "map after SIGTERM")
            # The map in flight still gets its whole answer.
            check_results(c.recv_id("m", timeout=20), [200] * 20, "the map in flight")
        finally:
            c.close()
            idle.close()
        check_eq(d.wait_exit(20), 0, "poold exit status after SIGTERM")
        check(not os.path.exists(d.sock), "the socket file is still there")
        wait_until(gone(pids), 10, "the workers %s to be gone" % pids)
        left = sorted(set(os.listdir(d.dir)) - {"poold.log"})
        check_eq(left, [], "files left in the daemon's temp dir")


def test_sigterm_idle():
    with Daemon(workers=3) as d:
        pids = d.worker_pids()
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        check_eq(d.wait_exit(20), 0, "exit status")
        check(time.monotonic() - t0 < 5, "an idle daemon took %.1fs to stop" %
              (time.monotonic() - t0))
        check(not os.path.exists(d.sock), "the socket file is still there")
        wait_until(gone(pids), 10, "the workers to be gone")
    with Daemon(workers=1) as d:
        d.signal(signal.SIGINT)
        check_eq(d.wait_exit(20), 0, "exit status after SIGINT")
        check(not os.path.exists(d.sock), "the socket file is still there after SIGINT")


def test_stop_timeout():
    with Daemon(workers=2, args=["--stop-timeout", "1"]) as d, d.client() as c:
        pids = d.worker_pids()
        c.send({"id": "long", "op": "map", "fn": "sleep_ms", "args": [10000] * 4,
                "chunksize": 1})
        wait_until(lambda: running(d), 20, "the map to start")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        r = c.recv_id("long", timeout=15)
        check_error(r, "shutting_down", "the map still running at --stop-timeout")
        check(time.monotonic() - t0 < 5, "shutting_down came after %.1fs" %
              (time.monotonic() - t0))
        check_eq(d.wait_exit(20), 0, "exit status")
        check(time.monotonic() - t0 < 8, "poold took %.1fs to exit" % (time.monotonic() - t0))
        wait_until(gone(pids), 10, "the workers to be gone")


def test_half_close():
    with Daemon(workers=2) as d:
        for data, want in ((b'{"id":1,"op":"map","fn":"square","args":[3]}\n', [9]),
                           (b'{"id":1,"op":"map","fn":"square","args":[4]}', [16]),
                           (b'{"id":1,"op":"map","fn":"sleep_ms","args":[300]}\n', [300])):
            with d.client() as c:
                c.send_raw(data)
                c.sock.shutdown(socket.SHUT_WR)
                check_results(c.recv(timeout=10), want, "half-closed %r" % data)
                try:
                    extra = c.recv_line(timeout=10)
                    check(False, "more after the reply: %r" % extra)
                except EOFError:
                    pass  # the daemon closes once it has answered
        with d.client() as c:
            c.send_raw(b'{"id":1,"op":"ping"}\n{"id":2,"op":"map","fn":"sleep_ms","args":[200]}\n'
                       b'{"id":3,"op":"apply","fn":"add","args":[1,2]}\n')
            c.sock.shutdown(socket.SHUT_WR)
            got = {c.recv(timeout=10)["id"] for _ in range(3)}
            check_eq(got, {1, 2, 3}, "three replies after a half-close")
        d.wait_quiet()


def test_peer_uid_forbidden():
    if os.geteuid() != 0:
        raise harness.Skip("needs root to connect as another user")
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise harness.Skip("setpriv not installed")
    py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", py]
    p = harness.run(as_nobody + ["-c", "pass"], timeout=30)
    if p.returncode != 0:
        raise harness.Skip("cannot run %s as nobody: %r" % (py, p.stderr[-300:]))
    client = ("import socket,sys\n"
              "s=socket.socket(socket.AF_UNIX)\n"
              "s.settimeout(20)\n"
              "s.connect(sys.argv[1])\n"
              "try:\n"
              "    s.sendall(b'{\"id\":1,\"op\":\"ping\"}\\n')\n"
              "except OSError:\n"
              "    pass\n"
              "b=b''\n"
              "while not b.endswith(b'\\n'):\n"
              "    x=s.recv(4096)\n"
              "    if not x: break\n"
              "    b+=x\n"
              "sys.stdout.write(b.decode())\n")
    with Daemon(workers=1) as d:
        os.chmod(d.dir, 0o755)
        os.chmod(d.sock, 0o666)
        p = harness.run(as_nobody + ["-c", client, d.sock], timeout=30)
        check_eq(p.returncode, 0, "client as nobody: exit status (stderr %r)" % p.stderr)
        r = harness.json.loads(p.stdout.decode().strip() or "null")
        check_error(r, "forbidden", "a client of another uid")
        # root and the daemon's own uid are still served.
        check_eq(d.call({"op": "ping"}).get("ok"), True, "ping as root after the refusal")
        d.wait_quiet()


harness.main(globals())
