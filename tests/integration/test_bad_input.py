"""Bad input: every line gets an error reply, the connection and the daemon stay up."""

import os
import random
import threading
import time

import harness
from harness import Daemon, check, check_eq, check_error, check_results


# Requests of 256 kB (and replies as big) a non-reading client tries to send.
N_FLOOD = 800


def probe(c, tag, k):
    """A valid request on connection c must still work."""
    r = c.call({"id": "probe-%s" % tag, "op": "map", "fn": "square", "args": [k, k + 1]},
               timeout=20)
    check_results(r, [k * k, (k + 1) * (k + 1)], "valid map after %s" % tag)


def still_healthy(d):
    """The daemon answers ping and status on a fresh connection."""
    check(d.alive(), "poold died (exit %s)" % d.proc.poll())
    r = d.call({"op": "ping"}, timeout=20)
    check(r.get("ok") is True and r.get("pid") == d.pid, "ping after bad input: %s" % r)
    st = d.status(timeout=20)
    check_eq(st["workers"], d.workers, "status workers after bad input")


def load_expect():
    bad = os.path.join(harness.data_dir(), "bad")
    cases = []
    with open(os.path.join(bad, "EXPECT")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, code = line.split()
            with open(os.path.join(bad, name), "rb") as g:
                cases.append((name, code, g.read()))
    return cases


def test_corpus():
    cases = load_expect()
    check(len(cases) >= 50, "only %d corpus entries found in %s" % (len(cases), harness.data_dir()))
    with Daemon(workers=2) as d, d.client() as c:
        for k, (name, code, data) in enumerate(cases):
            if not data.endswith(b"\n"):
                data += b"\n"
            check_eq(data.count(b"\n"), 1, "corpus file %s: lines" % name)
            c.send_raw(data)
            pid = "probe-%d" % k
            c.send({"id": pid, "op": "map", "fn": "square", "args": [k]})
            try:
                first = c.recv(timeout=20)
            except (TimeoutError, EOFError) as e:
                raise AssertionError("%s: no reply (%r)" % (name, e))
            check(first.get("id") != pid, "%s: no error reply before the probe's reply %s" %
                  (name, first))
            err = check_error(first, code, "corpus file %s" % name)
            if name == "star-items-not-arrays":
                check_eq(err.get("index"), 1, "%s: index" % name)
            try:
                second = c.recv(timeout=20)
            except (TimeoutError, EOFError) as e:
                raise AssertionError("%s: the connection stopped working (%r)" % (name, e))
            check_eq(second.get("id"), pid, "%s: reply after the error" % name)
            check_results(second, [k * k], "valid map after %s" % name)
        c.expect_silence(0.05)
        still_healthy(d)


def test_too_large():
    limit = 4096
    with Daemon(workers=2, args=["--max-line", str(limit)]) as d, d.client() as c:
        # All at once.
        c.send_raw(b'{"id":1,"op":"map","fn":"echo","args":["' + b"x" * 10000 + b'"]}\n')
        r = c.recv(timeout=20)
        check_error(r, "too_large", "10 kB line with --max-line 4096")
        check("id" in r and r["id"] is None, "too_large reply id is not null: %s" % r)
        probe(c, "too_large", 3)

        # In pieces: the first piece alone is already over the limit.
        c.send_raw(b'{"id":2,"op":"map","fn":"echo","args":["' + b"y" * 6000)
        with d.client() as other:
            check_eq(other.call({"op": "ping"}).get("ok"), True, "ping while a line is too long")
        c.send_raw(b"y" * 4000 + b'"]}\n')
        r = c.recv(timeout=20)
        check_error(r, "too_large", "10 kB line sent in two pieces")
        probe(c, "too_large_pieces", 5)  # exactly one error for that line, then this

        # The boundary: a line of exactly --max-line bytes is served, one more is not.
        def line_of(n, rid):
            head = '{"id":"%s","op":"map","fn":"echo","args":["' % rid
            tail = '"]}'
            pad = n - len(head) - len(tail)
            return (head + "z" * pad + tail).encode(), pad

        line, pad = line_of(limit, "exact")
        check_eq(len(line), limit, "test line length")
        c.send_raw(line + b"\n")
        r = c.recv(timeout=20)
        check_eq(r.get("id"), "exact", "reply to a line of exactly --max-line bytes (%s)" %
                 harness._short(r))
        check_results(r, ["z" * pad], "line of exactly --max-line bytes")
        line, pad = line_of(limit + 1, "over")
        c.send_raw(line + b"\n")
        check_error(c.recv(timeout=20), "too_large", "line of --max-line + 1 bytes")
        probe(c, "boundary", 7)
        still_healthy(d)


def test_half_line_stall():
    with Daemon(workers=2) as d, d.client() as a:
        a.send_raw(b'{"id":"half","op":"map","fn":"squ')
        # Another client is served while a's line is incomplete.
        with d.client() as b:
            t0 = time.monotonic()
            r = b.call({"op": "map", "fn": "square", "args": [1, 2, 3]}, timeout=10)
            check_results(r, [1, 4, 9], "map while another client stalls mid-line")
            check(time.monotonic() - t0 < 5, "served only after %.1fs" % (time.monotonic() - t0))
            check_eq(d.status()["connections"], 3, "connections (stalled, b, status)")
        a.expect_silence(0.05)  # nothing answered for half a line
        # The stalled client finishes its line and gets its answer.
        a.send_raw(b'are","args":[12]}\n')
        check_results(a.recv_id("half", timeout=20), [144], "the completed half line")
        still_healthy(d)


def test_never_reads():
    with Daemon(workers=2) as d:
        hog = d.client()
        big = "b" * (256 * 1024)
        sent = [0]
        stop = threading.Event()

        def flood():
            # Pipeline requests with 256 kB results and never read: the daemon must stop
            # reading this client instead of buffering its replies without bound.
            try:
                for i in range(N_FLOOD):
                    if stop.is_set():
                        return
                    hog.send_raw('{"id":%d,"op":"map","fn":"echo","args":["%s"]}\n' % (i, big),
                                 timeout=2)
                    sent[0] += 1
            except (TimeoutError, OSError):
                pass

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        try:
            # Wait until the hog is blocked (its sends stall) or it sent everything.
            harness.wait_until(lambda: not t.is_alive(), 60, "the flooding client to stall")
            with d.client() as b:
                for k in range(3):
                    t0 = time.monotonic()
                    r = b.call({"op": "map", "fn": "square", "args": [k, 9]}, timeout=10)
                    check_results(r, [k * k, 81], "map while a client does not read")
                    dt = time.monotonic() - t0
                    check(dt < 5, "a reading client waited %.1fs behind a non-reading one" % dt)
            check(sent[0] < N_FLOOD, "the daemon took all %d requests (%d MB of replies) from "
                  "a client that never reads" % (sent[0], N_FLOOD // 4))
            with open("/proc/%d/status" % d.pid) as f:
                rss_kb = int([x for x in f if x.startswith("VmRSS:")][0].split()[1])
            check(rss_kb < 160 * 1024, "poold RSS is %d MB with a non-reading client" %
                  (rss_kb // 1024))
            print("non-reading client: %d requests taken, poold RSS %d MB" %
                  (sent[0], rss_kb // 1024))
            still_healthy(d)
        finally:
            stop.set()
            hog.close()
            t.join(10)
        # Its requests are dropped once it is gone.
        d.wait_quiet(timeout=30)
        still_healthy(d)


def test_deep_nesting():
    with Daemon(workers=2) as d, d.client() as c:
        closed = '{"id":1,"op":"map","fn":"echo","args":[' + "[" * 10000 + "]" * 10000 + "]}\n"
        c.send_raw(closed)
        check_error(c.recv(timeout=20), "parse_error", "args nested 10,000 deep")
        probe(c, "nest-closed", 2)
        c.send_raw('{"id":2,"op":"map","fn":"echo","args":' + "[" * 10000 + "\n")
        check_error(c.recv(timeout=20), "parse_error", "10,000 unclosed brackets")
        probe(c, "nest-open", 3)
        c.send_raw('{"id":' + '{"a":' * 10000 + "1" + "}" * 10000 + ',"op":"ping"}\n')
        r = c.recv(timeout=20)
        check(r.get("ok") is False and r["error"]["code"] in ("parse_error", "invalid_request"),
              "id nested 10,000 deep: %s" % harness._short(r))
        probe(c, "nest-id", 4)
        still_healthy(d)


def test_binary_garbage():
    rng = random.Random(20240501)
    with Daemon(workers=2) as d, d.client() as c:
        for k in range(20):
            n = rng.randrange(1, 3000)
            data = bytes(rng.randrange(256) for _ in range(n)).replace(b"\n", b"\0")
            data = b"\0" + data.rstrip(b"\r") + b"\0"  # NULs at both ends, never empty
            c.send_raw(data + b"\n")
            r = c.recv(timeout=20)
            check_error(r, "parse_error", "garbage line %d (%d bytes)" % (k, len(data)))
            probe(c, "garbage-%d" % k, k)
        # A valid request with a NUL right after it, and one with a NUL inside a string.
        c.send_raw(b'{"id":5,"op":"ping"}\0\n')
        check_error(c.recv(timeout=20), "parse_error", "NUL after the object")
        c.send_raw(b'{"id":6,"op":"map","fn":"echo","args":["a\0b"]}\n')
        check_error(c.recv(timeout=20), "parse_error", "raw NUL inside a string")
        probe(c, "nul", 9)
        still_healthy(d)


harness.main(globals())
