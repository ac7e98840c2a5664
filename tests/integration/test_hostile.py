"""Hostile and careless clients (issue 9): each case reproduced a failure of the
landed daemon first. Half-closed and blocked connections that close, memory
bounded in bytes, --max-pending-items for streams, one huge line against
everyone else's latency, and parse_error offsets.
"""

import json
import socket
import threading
import time

import harness
from harness import Daemon, check, check_eq, check_error, check_results, wait_until

MiB = 1024 * 1024
GONE = 5.0  # deadline for the daemon to notice a closed client (it should be at once)


def line(obj):
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()



def wait_alone(d, what, timeout=GONE):
    """Wait until the status connection is the only one and nothing is in flight."""
    def alone():
        st = d.status()
        return st if st["connections"] == 1 and st["requests"] == 0 else None
    return wait_until(alone, timeout, what)


def send_some(c, data, stall, limit=10.0):
    """Write data until it is all sent or the daemon took nothing for `stall` seconds."""
    view = memoryview(data)
    sent = 0
    last = time.monotonic()
    deadline = last + limit
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += c.sock.send(view[sent:])
            last = time.monotonic()
        except BlockingIOError:
            if time.monotonic() - last > stall:
                break
            time.sleep(0.005)
    return sent


def occupy(d, ms):
    """A connection whose apply keeps the only worker busy for ms."""
    busy = d.client()
    busy.send({"id": "occupy", "op": "apply", "fn": "sleep_ms", "args": [ms]})
    wait_until(lambda: d.status()["tasks_running"] == 1, 10, "the worker busy")
    return busy


# ------------------------------------------------------------ items 1 and 2


def test_half_closed_stream_then_closed():
    """Item 1: a stream left open, SHUT_WR, then close(): all of it is dropped at once."""
    with Daemon(workers=1, args=["--max-connections", "4"]) as d:
        for _ in range(3):  # three such clients must not hold three slots
            c = d.client()
            c.send({"id": 1, "op": "map", "fn": "square", "stream": True})
            c.send({"id": 1, "op": "feed", "args": [1, 2]})
            c.sock.shutdown(socket.SHUT_WR)
            got = []
            while len(got) < 2:
                r = c.recv(timeout=10)
                check(r.get("ok") is True and r.get("index") == len(got), "a part: %s" % r)
                got.extend(r["results"])
            check_eq(got, [1, 4], "the parts before the close")
            c.close()
        wait_alone(d, "the half-closed stream clients dropped after their close")
        d.wait_quiet()


def test_half_closed_request_then_closed():
    """Item 1: a half-closed apply's client that closes is dropped at once, not at reply."""
    with Daemon(workers=1) as d:
        c = d.client()
        c.send({"id": 1, "op": "apply", "fn": "sleep_ms", "args": [20000]})
        wait_until(lambda: d.status()["tasks_running"] == 1, 10, "the apply running")
        c.sock.shutdown(socket.SHUT_WR)
        c.expect_silence(0.2)
        c.close()
        wait_alone(d, "the closed client's connection and request dropped")


def test_blocked_stream_then_closed():
    """Item 2: a stream over its window (not read) whose client leaves is dropped at once."""
    with Daemon(workers=1) as d:
        c = d.client()
        c.send({"id": 1, "op": "map", "fn": "sleep_ms", "stream": True, "window": 1,
                "chunksize": 1})
        c.send({"id": 1, "op": "feed", "args": [1500, 1500, 1500]})
        c.send({"id": 1, "op": "feed", "args": [1500]})
        wait_until(lambda: d.status()["tasks_running"] == 1, 10, "the first item running")
        done0 = d.status()["items_done"]
        c.close()
        wait_alone(d, "the blocked stream's connection dropped after its close", timeout=1.0)
        d.wait_quiet(timeout=20)
        check(d.status()["items_done"] - done0 <= 1,
              "queued items of a vanished client were run: %d" %
              (d.status()["items_done"] - done0))


# ------------------------------------------------------------------ item 5


def test_stream_counts_against_max_pending_items():
    """Item 5: a stream is read no further while the daemon holds --max-pending-items."""
    limit, per_feed, feeds = 10, 2, 40
    with Daemon(workers=1, args=["--max-pending-items", str(limit)]) as d, d.client() as c:
        busy = occupy(d, 1500)
        data = line({"id": "s", "op": "map", "fn": "square", "stream": True})
        for k in range(feeds):
            data += line({"id": "s", "op": "feed", "args": list(range(k * per_feed,
                                                                     (k + 1) * per_feed))})
        data += line({"id": "s", "op": "end"})
        c.send_raw(data)
        # Every line is in the daemon's socket buffer; it must stop taking feeds at the limit.
        wait_until(lambda: d.status()["items_in_flight"] >= limit, 10, "the stream at the limit")
        time.sleep(0.3)
        st = d.status()
        check(st["items_in_flight"] <= limit + per_feed + 1,
              "items held with --max-pending-items %d: %d" % (limit, st["items_in_flight"]))
        with d.client() as other:
            check_error(other.call({"op": "map", "fn": "square", "args": [1]}), "busy",
                        "another map while the stream holds the limit")
        check_eq(busy.recv_id("occupy", timeout=30).get("result"), 1500, "the occupying apply")
        busy.close()
        got = {}
        while True:
            r = c.recv(timeout=30)
            check(r.get("ok") is True, "stream reply: %s" % r)
            if r.get("done"):
                break
            for i, v in enumerate(r["results"]):
                got[r["index"] + i] = v
        check_eq(r["items"], feeds * per_feed, "items in done")
        check_eq(got, {i: i * i for i in range(feeds * per_feed)}, "every stream result")
        d.wait_quiet(connections=2)


# ------------------------------------------------------------------ item 4


def test_memory_budget_applies_and_never_readers():
    """Item 4: 1 MiB applies from clients that never read: the daemon holds --max-memory."""
    budget, item = 16 * MiB, MiB
    args = ["--max-memory", str(budget)]
    env = {"ASAN_OPTIONS": harness.SANITIZER_ENV["ASAN_OPTIONS"] + ":quarantine_size_mb=0"}
    with Daemon(workers=1, args=args, env=env) as d:
        asan = harness.sanitized(d)
        base = harness.proc_status_kib(d.pid, "VmRSS")
        busy = occupy(d, 1500)
        payload = "x" * item
        clients = [d.client() for _ in range(6)]
        try:
            for n, c in enumerate(clients):
                data = b"".join(line({"id": i, "op": "apply", "fn": "echo", "args": [payload]})
                                for i in range(8))
                send_some(c, data, 0.3)
            st = d.status()
            # The budget, plus the part read so far of a line each client is sending.
            check(st["memory"] <= budget + len(clients) * item + MiB,
                  "bytes held with --max-memory %d: %d" % (budget, st["memory"]))
            check_eq(busy.recv_id("occupy", timeout=30).get("result"), 1500, "occupying apply")
            # One client reads: each of its requests was answered or refused with busy.
            c = clients[0]
            codes = []
            for i in range(8):
                r = c.recv_id(i, timeout=30)
                if r.get("ok"):
                    check_eq(r.get("result"), payload, "echo of 1 MiB")
                    codes.append("ok")
                else:
                    codes.append(check_error(r, "busy", "a refused apply")["code"])
            hwm = harness.proc_status_kib(d.pid, "VmHWM")
            print("48 MiB of applies, budget 16 MiB: client 0 got %s; VmHWM %d KiB, start %d "
                  "KiB" % (codes, hwm, base), flush=True)
            if not asan:
                check(hwm - base < (3 * budget + 16 * MiB) // 1024,
                      "VmHWM grew by %d KiB with --max-memory %d" % (hwm - base, budget))
        finally:
            for c in clients:
                c.close()
            busy.close()
        d.wait_quiet()
        check(d.status()["memory"] < 64 * 1024, "bytes held once every client left: %d" %
              d.status()["memory"])


def test_memory_budget_stream():
    """Item 4: a stream of 4 MiB items waiting for a busy worker: read up to --max-memory."""
    budget, item, n = 16 * MiB, 4 * MiB, 32
    args = ["--max-memory", str(budget)]
    with Daemon(workers=1, args=args) as d, d.client() as c:
        asan = harness.sanitized(d)
        base = harness.proc_status_kib(d.pid, "VmRSS")
        busy = occupy(d, 1500)
        payloads = [chr(ord("a") + k % 26) * item for k in range(n)]
        data = line({"id": "s", "op": "map", "fn": "echo", "stream": True})
        data += b"".join(line({"id": "s", "op": "feed", "args": [p]}) for p in payloads)
        data += line({"id": "s", "op": "end"})
        sent = send_some(c, data, 0.5)
        st = d.status()
        check(st["memory"] <= budget + 2 * item + MiB,
              "bytes held by a stream with --max-memory %d: %d" % (budget, st["memory"]))
        check(sent < len(data), "the daemon took all %d bytes of the stream" % sent)
        check_eq(busy.recv_id("occupy", timeout=30).get("result"), 1500, "occupying apply")
        busy.close()
        got = []
        writer = threading.Thread(target=c.send_raw, args=(memoryview(data)[sent:], 120))
        writer.start()
        try:
            while True:
                r = c.recv(timeout=60)
                check(r.get("ok") is True, "stream reply: %s" % harness._short(r))
                if r.get("done"):
                    break
                got.extend(r["results"])
        finally:
            writer.join()
        check_eq(len(got), n, "stream results")
        check(got == payloads, "the echoed 4 MiB items differ")
        hwm = harness.proc_status_kib(d.pid, "VmHWM")
        print("stream of %d x 4 MiB, budget 16 MiB: VmHWM %d KiB, start %d KiB" %
              (n, hwm, base), flush=True)
        if not asan:
            # Beyond the budget: a line's copy, tasks and results in nanomsg, malloc's heap.
            check(hwm - base < (4 * budget + 16 * MiB) // 1024,
                  "VmHWM grew by %d KiB with --max-memory %d" % (hwm - base, budget))
        d.wait_quiet(connections=2)


# ------------------------------------------------------------------ item 9


def ping_rtt(c):
    t0 = time.monotonic()
    r = c.call({"op": "ping"}, timeout=30)
    check(r.get("ok") is True, "ping: %s" % r)
    return time.monotonic() - t0


def test_huge_line_does_not_stall_others():
    """Item 9: pings from another client while a 64 MiB line arrives and is refused."""
    with Daemon(workers=1) as d, d.client() as pinger, d.client() as big:
        body = b'{"id":1,"op":"map","fn":"square","args":[' + b"1," * (32 * MiB - 64)
        data = body + b"]]}\n"  # malformed only at its very end: parse_error
        check(len(data) <= 64 * MiB, "the line fits --max-line")
        idle = sorted(ping_rtt(pinger) for _ in range(20))[10]
        worst = [0.0]
        stop = threading.Event()

        def pings():
            while not stop.is_set():
                worst[0] = max(worst[0], ping_rtt(pinger))
        th = threading.Thread(target=pings)
        th.start()
        try:
            t0 = time.monotonic()
            big.send_raw(data)
            check_error(big.recv(timeout=60), "parse_error", "the malformed 64 MiB line")
            total = time.monotonic() - t0
        finally:
            stop.set()
            th.join()
        print("64 MiB line sent and refused in %.3fs; ping p50 idle %.2f ms, worst during "
              "%.2f ms (%.1f%% of the line's time)" %
              (total, idle * 1000, worst[0] * 1000, 100 * worst[0] / total), flush=True)
        check(worst[0] < total * 0.15,
              "a ping waited %.3fs while a 64 MiB line took %.3fs" % (worst[0], total))
        check_results(big.call({"op": "map", "fn": "square", "args": [3]}), [9],
                      "the big line's connection afterwards")


# ----------------------------------------------------------------- item 10


def test_parse_error_offsets():
    """Item 10: parse_error names the byte where the JSON goes wrong."""
    with Daemon(workers=1) as d, d.client() as c:
        for text, bad in ((b'{"id":1,"op":"ping","x":[tru]}', b"]}"),
                          (b'{"id":1,"op":"ping","x":[1.]}', b"]}"),
                          (b'{"id":1,"op":"ping","x":["\\x"]}', b'x"]'),
                          (b'{"id":1,"op":"ping","x":-}', b"}")):
            off = text.index(bad)
            c.send_raw(text + b"\n")
            err = check_error(c.recv(), "parse_error", "%r" % text, id_=None)
            check("at byte %d:" % off in err["message"],
                  "%r: message %r does not name byte %d" % (text, err["message"], off))


def test_several_bad_fields_follow_check_order():
    """Item 10: with several bad fields, the one reported follows PROTOCOL.md section 4."""
    with Daemon(workers=1) as d, d.client() as c:
        r = c.call({"id": 1, "op": "map", "timeout_ms": -1, "retries": "x", "chunksize": 1.5,
                    "on_error": "maybe", "star": 3, "fn": "square", "args": 5})
        check("star" in check_error(r, "invalid_request", "several bad fields", id_=1)["message"],
              "the reported field is not 'star' (step 7's first): %s" % r)
        r = c.call({"id": 2, "op": "map", "timeout_ms": -1, "retries": "x", "fn": "square",
                    "args": [1]})
        check("retries" in check_error(r, "invalid_request", "retries and timeout_ms",
                                       id_=2)["message"],
              "the reported field is not 'retries': %s" % r)


harness.main(globals())
