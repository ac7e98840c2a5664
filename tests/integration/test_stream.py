"""Streaming maps: open with stream:true, feed, end; parts, done, window, errors.

The contract is proto/PROTOCOL.md section 7.5. Every reply of a stream is
checked as it arrives by a Stream object: parts contiguous and in order (or each
index exactly once when unordered), values and failures as the test expects,
then exactly one done or error line and nothing after it but not_found errors
for lines the test sent after the end.
"""

import collections
import json
import os
import select
import signal
import socket
import time

import harness
from harness import Daemon, check, check_eq, check_error, pid_alive, wait_until

WAIT = 30.0  # deadline for a stream to finish (generous: ASan, busy machines)


def square(i):
    return i * i


def square1(i):
    """The square of item i of a stream whose items are 1, 2, 3, ..."""
    return (i + 1) * (i + 1)


def key(id_):
    return json.dumps(id_)


def line(obj):
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def feed(sid, items, end=False):
    obj = {"id": sid, "op": "feed", "args": list(items)}
    if end:
        obj["end"] = True
    return obj


def end(sid):
    return {"id": sid, "op": "end"}


def is_error(reply, code):
    return (isinstance(reply, dict) and reply.get("ok") is False and
            isinstance(reply.get("error"), dict) and reply["error"].get("code") == code)


class Fail:
    """What a test wants for an item that fails in collect mode."""

    def __init__(self, code, message=None):
        self.code = code
        self.message = message

    def __repr__(self):
        return "Fail(%s)" % self.code


class Stream:
    """One stream's replies, checked against the contract as they arrive."""

    def __init__(self, sid, want=None, ordered=True, keep=True):
        self.sid = sid
        self.want = want  # want(i): the value (or Fail) item i must get; None: no check
        self.ordered = ordered
        self.keep = keep
        self.values = [] if ordered else {}
        self.seen = bytearray()  # unordered: 1 for each index answered
        self.next = 0  # ordered: the index the next part must start at
        self.answered = 0
        self.parts = []  # (index, count) in arrival order
        self.failed = []  # absolute indices reported in "failed", in arrival order
        self.final = None  # the done or error reply

    def what(self):
        return "stream %s" % key(self.sid)

    def add(self, reply):
        check(self.final is None, "%s: a reply after its %s: %s" %
              (self.what(), harness._short(self.final), harness._short(reply)))
        ok = reply.get("ok")
        if ok is False:
            err = reply.get("error")
            check(isinstance(err, dict) and isinstance(err.get("code"), str) and
                  isinstance(err.get("message"), str),
                  "%s: malformed error reply %s" % (self.what(), harness._short(reply)))
            self.final = reply
            return
        check(ok is True, "%s: reply without ok true/false: %s" %
              (self.what(), harness._short(reply)))
        if "done" in reply:
            self._done(reply)
        else:
            self._part(reply)

    def _done(self, reply):
        what = self.what()
        check_eq(reply.get("done"), True, "%s: done" % what)
        check("results" not in reply and "index" not in reply,
              "%s: done line with a part's fields: %s" % (what, harness._short(reply)))
        items = reply.get("items")
        check(isinstance(items, int) and not isinstance(items, bool),
              "%s: done without integer items: %s" % (what, reply))
        check_eq(items, self.answered, "%s: done items vs items answered in parts" % what)
        if self.ordered:
            check_eq(self.next, items, "%s: done before every item was answered" % what)
        else:
            missing = [i for i in range(items) if i >= len(self.seen) or not self.seen[i]]
            check(not missing, "%s: done with items %s never answered" % (what, missing[:10]))
        check_eq(reply.get("failed"), len(self.failed), "%s: done failed count" % what)
        self.final = reply

    def _part(self, reply):
        what = self.what()
        index, results = reply.get("index"), reply.get("results")
        check(isinstance(index, int) and not isinstance(index, bool) and index >= 0,
              "%s: part without a valid index: %s" % (what, harness._short(reply)))
        check(isinstance(results, list), "%s: part without results: %s" %
              (what, harness._short(reply)))
        n = len(results)
        if self.ordered:
            check_eq(index, self.next, "%s: index of the next part (parts so far %s)" %
                     (what, self.parts[-5:]))
            self.next = index + n
        else:
            if len(self.seen) < index + n:
                self.seen.extend(bytes(index + n - len(self.seen)))
            dup = [i for i in range(index, index + n) if self.seen[i]]
            check(not dup, "%s: indices %s answered twice" % (what, dup[:10]))
            self.seen[index:index + n] = b"\x01" * n
        failed = reply.get("failed")
        if "failed" in reply:
            check(isinstance(failed, list) and failed, "%s: 'failed' present but not a "
                  "non-empty list: %s" % (what, harness._short(reply)))
            check(all(isinstance(i, int) and index <= i < index + n for i in failed) and
                  failed == sorted(set(failed)),
                  "%s: failed %s not ascending absolute indices in [%d,%d)" %
                  (what, failed, index, index + n))
            for i in failed:
                r = results[i - index]
                check(isinstance(r, dict) and isinstance(r.get("error"), dict) and
                      isinstance(r["error"].get("code"), str) and
                      isinstance(r["error"].get("message"), str),
                      "%s: failed item %d is not {\"error\":{code,message}}: %s" % (what, i, r))
            self.failed.extend(failed)
        if self.want is not None:
            want = [self.want(i) for i in range(index, index + n)]
            want_failed = [index + k for k, w in enumerate(want) if isinstance(w, Fail)]
            check_eq(failed or [], want_failed, "%s: failed indices of the part at %d" %
                     (what, index))
            if want_failed:
                for k, w in enumerate(want):
                    if isinstance(w, Fail):
                        err = results[k]["error"]
                        check_eq(err["code"], w.code, "%s: error code of item %d" %
                                 (what, index + k))
                        if w.message is not None:
                            check_eq(err["message"], w.message, "%s: error message of item %d"
                                     % (what, index + k))
                    else:
                        check_eq(results[k], w, "%s: result of item %d" % (what, index + k))
            elif results != want:
                bad = [k for k in range(n) if results[k] != want[k]]
                check(False, "%s: wrong results at %s: got %s, want %s" %
                      (what, [index + k for k in bad[:5]], [results[k] for k in bad[:5]],
                       [want[k] for k in bad[:5]]))
        self.answered += n
        self.parts.append((index, n))
        if self.keep:
            if self.ordered:
                self.values.extend(results)
            else:
                for k, r in enumerate(results):
                    self.values[index + k] = r

    def check_done(self, items, failed=0):
        """The stream ended with done, items and failed as given."""
        check_eq(self.final, {"id": self.sid, "ok": True, "done": True, "items": items,
                              "failed": failed}, "%s: the done line" % self.what())

    def check_error(self, code, index=None):
        """The stream ended with an error reply of this code (and index)."""
        check(self.final is not None, "%s has not ended" % self.what())
        return check_error(self.final, code, "%s: end" % self.what(), id_=self.sid, index=index)


class Conn:
    """A raw connection whose replies are routed by id: a stream's to its Stream
    (checked at once), others to a queue per id."""

    def __init__(self, daemon, timeout=10.0):
        self.c = daemon.client(timeout)
        self.streams = {}
        self.queues = collections.defaultdict(collections.deque)
        self.arrivals = []  # (id key, kind) of every reply, in order
        self.out = bytearray()
        self.feeder = None
        self.sent = 0
        self.pings = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.c.close()

    @property
    def sock(self):
        return self.c.sock

    def fileno(self):
        return self.c.sock.fileno()

    def stream(self, sid, **kw):
        old = self.streams.get(key(sid))
        check(old is None or old.final is not None, "stream %s is still open" % key(sid))
        s = self.streams[key(sid)] = Stream(sid, **kw)
        return s

    def send(self, *objs):
        """Queue request lines; they are written while pumping."""
        for obj in objs:
            self.out += obj if isinstance(obj, (bytes, bytearray)) else line(obj)
        return self

    def _route(self, reply):
        check(isinstance(reply, dict) and "id" in reply, "reply without id: %s" %
              harness._short(reply))
        k = key(reply["id"])
        s = self.streams.get(k)
        if s is not None and s.final is None:
            s.add(reply)
            kind = "error" if reply.get("ok") is False else \
                ("done" if "done" in reply else "part")
        else:
            # After a stream's end only not_found (for lines sent after it) may come.
            check(s is None or is_error(reply, "not_found"),
                  "stream %s: a reply after its end %s: %s" %
                  (k, harness._short(s.final if s else None), harness._short(reply)))
            self.queues[k].append(reply)
            kind = "other"
        self.arrivals.append((k, kind))

    def _read(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            raise EOFError("the daemon closed the connection (%d bytes pending)" %
                           len(self.c.buf))
        buf = self.c.buf
        buf += data
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i < 0:
                break
            raw = bytes(buf[start:i])
            start = i + 1
            try:
                reply = json.loads(raw)
            except ValueError as e:
                raise AssertionError("reply is not JSON (%s): %s" % (e, harness._short(raw)))
            self._route(reply)
        del buf[:start]

    def _refill(self):
        while self.feeder is not None and len(self.out) < (256 << 10):
            try:
                self.out += next(self.feeder)
            except StopIteration:
                self.feeder = None

    def _write(self):
        try:
            n = self.sock.send(memoryview(self.out)[:1 << 20])
        except BlockingIOError:
            return
        self.sent += n
        del self.out[:n]

    def pump(self, until=None, timeout=WAIT, what="replies", read=True, fail=True):
        """Write queued lines and read replies until until() holds and all is written
        (until None: until all is written). At the deadline: fail, or return False."""
        return pump_all([self], until, timeout, what, read, fail)

    def wait_answered(self, s, n, timeout=WAIT):
        """Read until stream s has n items answered; fail at once if it ends first."""
        def enough():
            check(s.answered >= n or s.final is None, "%s ended after %d of %d items: %s" %
                  (s.what(), s.answered, n, harness._short(s.final)))
            return s.answered >= n
        self.pump(enough, timeout, "%d items of %s" % (n, s.what()))

    def wait_final(self, s, timeout=WAIT):
        self.pump(lambda: s.final is not None, timeout, "the end of %s" % s.what())
        return s.final

    def call(self, obj, timeout=15.0):
        """Send one request and return the first reply queued for its id."""
        k = key(obj["id"])
        check(not self.queues[k], "replies already waiting for id %s: %s" %
              (k, list(self.queues[k])))
        self.send(obj)
        self.pump(lambda: self.queues[k], timeout, "a reply for id %s" % k)
        return self.queues[k].popleft()

    def expect(self, id_, timeout=15.0):
        """The next queued (non-stream) reply for id_."""
        k = key(id_)
        self.pump(lambda: self.queues[k], timeout, "a reply for id %s" % k)
        return self.queues[k].popleft()

    def check_nothing_more(self):
        """Every reply the daemon had queued before a ping has been read: fail if any
        stream got one after its end (checked by _route) or a reply is left unclaimed."""
        self.pings += 1
        pid = "ping-%d" % self.pings
        r = self.call({"id": pid, "op": "ping"})
        check_eq(r.get("ok"), True, "ping on the stream connection")
        left = {k: list(q) for k, q in self.queues.items() if q}
        check(not left, "unclaimed replies: %s" % harness._short(left))


def pump_all(conns, until=None, timeout=WAIT, what="replies", read=True, fail=True):
    deadline = time.monotonic() + timeout
    while True:
        for c in conns:
            c._refill()
        busy = [c for c in conns if c.out]
        if not busy and (until is None or until()):
            return True
        left = deadline - time.monotonic()
        if left <= 0 and not fail:
            return False
        if left <= 0:
            raise AssertionError("timed out after %.1fs waiting for %s (%s)" % (
                timeout, what, "; ".join("%d bytes unsent, streams %s" % (
                    len(c.out), {k: (s.answered, s.final is not None)
                                 for k, s in c.streams.items()}) for c in conns)))
        r, w, _ = select.select(conns if read else [], busy, [], min(left, 0.5))
        for c in w:
            c._write()
        for c in r:
            c._read()


def open_req(sid, fn, **kw):
    obj = {"id": sid, "op": "map", "fn": fn, "stream": True}
    obj.update(kw)
    return obj


def status_slots(d):
    return d.status()["slots"]



# --------------------------------------------------------------------- cases


def test_ordered_feeds():
    """Several feeds then end: parts in order and contiguous, values right, one done."""
    with Daemon(workers=2) as d, Conn(d) as c:
        s = c.stream("s1", want=square)
        c.send(open_req("s1", "square", chunksize=7))
        for lo, hi in ((0, 10), (10, 10), (10, 300), (300, 301), (301, 1000)):
            c.send(feed("s1", range(lo, hi)))
        c.send(end("s1"))
        # An integer id, items only in the first batch of the open, default chunking.
        t = c.stream(7, want=lambda i: i ** 3)
        c.send(open_req(7, "cube", args=list(range(50))), end(7))
        c.wait_final(s)
        c.wait_final(t)
        s.check_done(1000)
        t.check_done(50)
        check_eq(s.values, [i * i for i in range(1000)], "concatenated results")
        check_eq(t.values, [i ** 3 for i in range(50)], "concatenated results, stream 7")
        c.check_nothing_more()
        # The stream is gone: feed and end name no open stream.
        check_error(c.call(feed("s1", [1])), "not_found", "feed after done", id_="s1")
        check_error(c.call(end(7)), "not_found", "end after done", id_=7)
        # The id is free again for a new stream.
        s = c.stream("s1", want=lambda i: i + 5)
        c.send(open_req("s1", "add", star=True, args=[[i, 5] for i in range(3)]),
               feed("s1", [[3, 5]]), end("s1"))
        c.wait_final(s)
        s.check_done(4)
        c.check_nothing_more()
        d.wait_quiet(connections=2)


def test_parts_before_end():
    """Results of fed items come back while the stream is still open."""
    with Daemon(workers=2) as d, Conn(d) as c:
        s = c.stream(1, want=square)
        c.send(open_req(1, "square"), feed(1, range(20)))
        c.wait_answered(s, 20, 20)
        check_eq(s.answered, 20, "items answered")
        c.check_nothing_more()
        check(s.final is None, "the stream ended before end: %s" % s.final)
        s2 = c.stream(2, want=lambda i: 10000)
        c.send(open_req(2, "square", args=[100]))
        c.send(feed(1, range(20, 45)))
        c.wait_answered(s, 45, 20)
        check(s.final is None, "the stream ended before end: %s" % s.final)
        c.send(end(1))
        c.wait_final(s)
        s.check_done(45)
        check_eq(s.values, [i * i for i in range(45)], "results")
        c.check_nothing_more()
        # Stream 2 (one item in its open, not ended yet) streams its part too.
        c.wait_answered(s2, 1)
        check_eq((s2.values, s2.final), ([10000], None), "stream 2 before end")
        c.send(end(2))
        c.wait_final(s2)
        s2.check_done(1)


def test_unordered():
    """ordered:false: each index exactly once; a quick item overtakes a slow one."""
    with Daemon(workers=2) as d, Conn(d) as c:
        items = [300, 1, 1, 1]
        s = c.stream("u", want=lambda i: items[i], ordered=False)
        c.send(open_req("u", "sleep_ms", ordered=False, chunksize=1, args=items), end("u"))
        c.wait_final(s)
        s.check_done(4)
        check_eq(sorted(s.values), [0, 1, 2, 3], "indices answered")
        check(s.parts[0][0] != 0, "index 0 (300 ms) came first: parts %s" % s.parts)
        # More items over several feeds, of different lengths.
        many = [(i * 7) % 6 for i in range(240)]
        s = c.stream("v", want=lambda i: many[i], ordered=False)
        c.send(open_req("v", "sleep_ms", ordered=False, chunksize=1, args=many[:40]))
        for lo in range(40, 240, 50):
            c.send(feed("v", many[lo:lo + 50]))
        c.send(end("v"))
        c.wait_final(s)
        s.check_done(240)
        check_eq(sorted(s.values), list(range(240)), "indices answered")
        c.check_nothing_more()


def test_open_args_and_end_true():
    with Daemon(workers=2) as d, Conn(d) as c:
        a = c.stream("a", want=square1)
        c.send(open_req("a", "square", args=[1, 2, 3]), feed("a", [4, 5], end=True))
        c.wait_final(a)
        a.check_done(5)
        check_eq(a.values, [1, 4, 9, 16, 25], "open args then feed with end:true")
        # Open args then a bare end.
        b = c.stream("b", want=lambda i: [4, 9][i])
        c.send(open_req("b", "square", args=[2, 3]), end("b"))
        c.wait_final(b)
        b.check_done(2)
        # Empty streams: no parts, done at once.
        e = c.stream("e")
        c.send(open_req("e", "square"), end("e"))
        c.wait_final(e)
        e.check_done(0)
        check_eq(e.parts, [], "parts of an empty stream")
        f = c.stream("f")
        c.send(open_req("f", "square", args=[]), feed("f", []), feed("f", [], end=True))
        c.wait_final(f)
        f.check_done(0)
        # end:true without args.
        h = c.stream("h", want=lambda i: 49)
        c.send(open_req("h", "square", args=[7]), {"id": "h", "op": "feed", "end": True})
        c.wait_final(h)
        h.check_done(1)
        # Starmap with the first batch in the open and end:true on a feed.
        g = c.stream("g", want=lambda i: [3, 7, 11][i])
        c.send(open_req("g", "add", star=True, args=[[1, 2]]),
               feed("g", [[3, 4], [5, 6]], end=True))
        c.wait_final(g)
        g.check_done(3)
        c.check_nothing_more()


def test_window_backpressure():
    """window 10: while 10 items are held the daemon stops reading the connection."""
    n_lines, pad, slow_ms = 2000, 4000, 4000  # 8 MB of feed lines, one item each
    with Daemon(workers=2) as d, Conn(d) as c, Conn(d) as watcher:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        s = c.stream("w", want=lambda i: slow_ms if i == 0 else 0)
        # Item 0 sleeps 4 s from t0 at the earliest; in order, nothing after it can be
        # written back meanwhile, so 10 items are held once 9 more are read.
        t0 = time.monotonic()
        c.send(open_req("w", "sleep_ms", window=10, chunksize=1, args=[slow_ms]))
        c.pump(until=None, what="the open")
        padded = [line(feed("w", [0]))[:-2] + b" " * pad + b"}\n" for _ in range(n_lines)]
        total = sum(len(x) for x in padded)
        for x in padded:
            c.send(x)
        # Write without reading for 1.5 s: the daemon must stop reading long before 8 MB
        # (it may keep what one read call took, 1 MiB, and the socket buffers).
        check(not c.pump(until=None, timeout=1.5, what="the feeds", read=False, fail=False),
              "the daemon read all %d bytes of feeds within 1.5 s while the window was full"
              % total)
        stalled_at = c.sent
        # Another connection is served at once, and few items were taken.
        t1 = time.monotonic()
        st = watcher.call({"id": "st", "op": "status"}, timeout=5)["status"]
        check(time.monotonic() - t1 < 1.0, "status took %.2fs" % (time.monotonic() - t1))
        check(time.monotonic() - t0 < slow_ms / 1000.0 - 0.1, "too slow to judge: item 0 "
              "may have finished before the status (%.1fs)" % (time.monotonic() - t0))
        check(st["items_done"] <= 10, "items done by the workers while the window of 10 "
              "was full: %d" % st["items_done"])
        check(st["tasks_queued"] + st["tasks_running"] <= 10,
              "tasks held with window 10: %s" % harness._short(st, 300))
        check(stalled_at < total // 2, "the daemon took %d of %d bytes while stalled" %
              (stalled_at, total))
        print("stalled after %d of %d bytes; status items_done %d" %
              (stalled_at, total, st["items_done"]), flush=True)
        # Reading again, everything completes.
        c.send(end("w"))
        c.wait_final(s, timeout=60)
        s.check_done(n_lines + 1)
        c.check_nothing_more()
        d.wait_quiet(connections=3)


def test_memory_bound():
    """2,000,000 items through one stream: the supervisor's peak memory stays small."""
    n, batch = 2000000, 10000
    with Daemon(workers=2) as d, Conn(d) as c:
        asan = harness.sanitized(d)
        if asan:
            n = 200000  # still checked for correctness, not for memory
        base = harness.proc_status_kib(d.pid, "VmHWM")
        s = c.stream("m", want=square, keep=False)

        def lines():
            yield line(open_req("m", "square"))
            for lo in range(0, n, batch):
                yield line(feed("m", range(lo, lo + batch)))
            yield line(end("m"))
        c.feeder = lines()
        t0 = time.monotonic()
        c.pump(lambda: s.final is not None, 60, "the %d-item stream" % n)
        dt = time.monotonic() - t0
        s.check_done(n)
        hwm = harness.proc_status_kib(d.pid, "VmHWM")
        print("%d items in %.1fs in %d parts; VmHWM %d KiB (at start %d KiB)" %
              (n, dt, len(s.parts), hwm, base), flush=True)
        if asan:
            raise harness.Skip("memory use under ASan is not comparable (%d items streamed "
                               "and checked)" % n)
        # A plain map of 2M items peaks near 75 MiB; a stream holds at most its window.
        check(hwm < 40 * 1024, "poold's VmHWM after streaming 2M items: %d KiB" % hwm)
        c.check_nothing_more()


# Items as written, to be echoed byte for byte: the daemon cuts items out of the
# feed line's text, so commas, brackets and quotes inside values must not fool it.
TRICKY = ['"a,b]"', '{"x":[1,2,{"y":"]}"}]}', '"\\"q\\\\"', '[ ]', '{}', '-0.0e+5', 'null',
          'true', '"\\u00e9,\\n"', '[[[[1]]],[2]]', '7', '"}]"', '12345678901234', '"\\\\"',
          '[",",","]', '2.50']


def test_echo_as_written():
    with Daemon(workers=2) as d, d.client() as c:
        for chunksize in (0, 1, 2, 100):
            for ordered in (True, False):
                sid = "e%d%s" % (chunksize, ordered)
                o = open_req(sid, "echo", ordered=ordered, chunksize=chunksize)
                c.send_raw(line(o) + (
                    '{"id":"%s","op":"feed","args":[%s]}\n'
                    '{"id":"%s","op":"feed","args": [ %s ] , "end" : true }\n' %
                    (sid, ",".join(TRICKY[:7]), sid, " ,\t".join(TRICKY[7:]))).encode())
                parts = {}
                while True:
                    raw = c.recv_line()
                    r = json.loads(raw)
                    check_eq(r.get("id"), sid, "reply id")
                    if "index" not in r:
                        break
                    check(r["index"] not in parts, "two parts at index %d" % r["index"])
                    # The results array as written: the reply ends with ]}.
                    i = raw.index(b'"results":[') + len(b'"results":[')
                    check(raw.endswith(b"]}"), "part does not end with results: %r" % raw)
                    parts[r["index"]] = raw[i:-2].decode()
                check_eq(r, {"id": sid, "ok": True, "done": True, "items": len(TRICKY),
                             "failed": 0}, "stream %s: done" % sid)
                got = ",".join(parts[k] for k in sorted(parts))
                check_eq(got, ",".join(TRICKY), "stream %s: items echoed as written" % sid)


def test_collect():
    """on_error collect: failed items stand in place, parts list them, done counts them."""
    with Daemon(workers=2) as d, Conn(d) as c:
        items = [[1, 2], ["x", 1], [3, 4], [1e308, 1e308], [5, 6], [7, "y"], [8, 9]]
        want = [3, Fail("type_error"), 7, Fail("function_error"), 11, Fail("type_error"), 17]
        s = c.stream("c", want=lambda i: want[i])
        c.send(open_req("c", "add", star=True, on_error="collect", chunksize=3, args=items[:2]),
               feed("c", items[2:5]), feed("c", []), feed("c", items[5:], end=True))
        c.wait_final(s)
        s.check_done(7, failed=3)
        check_eq(sorted(s.failed), [1, 3, 5], "failed indices over all parts")
        # Every item fails, several batches, unordered.
        t = c.stream("t", want=lambda i: Fail("function_error", "m%d" % i), ordered=False)
        c.send(open_req("t", "fail", star=True, on_error="collect", ordered=False,
                        chunksize=2, args=[["m0"], ["m1"], ["m2"]]),
               feed("t", [["m%d" % i] for i in range(3, 9)]), end("t"))
        c.wait_final(t)
        t.check_done(9, failed=9)
        check_eq(sorted(t.failed), list(range(9)), "failed indices, all failing")
        c.check_nothing_more()


def test_fail_mode():
    """fail mode: parts up to the failing index, then its error; later feeds not_found."""
    with Daemon(workers=2) as d, Conn(d) as c:
        s = c.stream("f", want=square)
        c.send(open_req("f", "square", chunksize=1, args=list(range(10))),
               feed("f", [10, 11, "x", 13, 14]))
        c.wait_final(s)
        s.check_error("type_error", index=12)
        check_eq(s.next, 12, "items answered in parts before the failing index 12")
        check_eq(s.values, [i * i for i in range(12)], "results before the failure")
        c.send(feed("f", [15]), end("f"))
        check_error(c.expect("f"), "not_found", "feed after the stream failed", id_="f")
        check_error(c.expect("f"), "not_found", "end after the stream failed", id_="f")
        c.check_nothing_more()
        # Lines sent before the failure was known: after the error only not_found.
        g = c.stream("g", want=lambda i: [1, 4][i])
        c.send(open_req("g", "square", chunksize=1, args=[1, 2, "y"]), feed("g", [4]),
               feed("g", [5]), end("g"))
        c.wait_final(g)
        g.check_error("type_error", index=2)
        check_eq(g.values, [1, 4], "results before the failure")
        check_eq(c.call({"id": "p", "op": "ping"}).get("ok"), True, "ping")
        late = c.queues.pop(key("g"), [])
        check(len(late) <= 3, "more replies than lines sent after the open: %s" % late)
        for r in late:  # _route let only not_found through
            check_error(r, "not_found", "a late reply of stream g", id_="g")
        c.check_nothing_more()


def test_feed_not_found():
    with Daemon(workers=2) as d, Conn(d) as c, Conn(d) as other:
        check_error(c.call(feed("nope", [1])), "not_found", "feed to an unknown id",
                    id_="nope")
        check_error(c.call(end(42)), "not_found", "end of an unknown id", id_=42)
        check_error(c.call(feed("x", [1], end=True)), "not_found", "feed end:true, unknown id",
                    id_="x")
        # Ids are per connection: another connection's stream is not found.
        s = c.stream("s", want=square1)
        c.send(open_req("s", "square", args=[1]))
        c.wait_answered(s, 1)
        check_error(other.call(feed("s", [2])), "not_found", "feed to another connection's "
                    "stream", id_="s")
        check_error(other.call(end("s")), "not_found", "end of another connection's stream",
                    id_="s")
        # A plain map in flight is not a stream, and is not disturbed.
        c.send({"id": "m", "op": "map", "fn": "sleep_ms", "args": [300]})
        check_error(c.call(feed("m", [1])), "not_found", "feed to a plain map's id", id_="m")
        check_error(c.call(end("m")), "not_found", "end of a plain map's id", id_="m")
        check_eq(c.expect("m"), {"id": "m", "ok": True, "results": [300]}, "the plain map")
        c.send(feed("s", [2]), end("s"))
        c.wait_final(s)
        s.check_done(2)
        c.check_nothing_more()
        other.check_nothing_more()


def test_bad_feed():
    """A bad feed line ends its stream with an error reply; later lines are not_found."""
    bad = {
        "a": b'{"id":"a","op":"feed","args":5}\n',
        "b": b'{"id":"b","op":"feed","args":[1],"bogus":1}\n',
        "c": b'{"id":"c","op":"feed","args":[1],"fn":"square"}\n',
        "d": b'{"id":"d","op":"feed","args":[1],"end":"yes"}\n',
        "e": b'{"id":"e","op":"feed","args":{"x":1}}\n',
    }
    with Daemon(workers=2) as d, Conn(d) as c:
        for sid, raw in sorted(bad.items()):
            s = c.stream(sid, want=lambda i: [1, 4][i])
            c.send(open_req(sid, "square", args=[1]), feed(sid, [2]))
            c.wait_answered(s, 2)
            c.send(raw)
            c.wait_final(s)
            s.check_error("invalid_request")
            check_eq(s.answered, 2, "stream %s: items answered" % sid)
            c.send(feed(sid, [3]), end(sid))
            check_error(c.expect(sid), "not_found", "stream %s: feed after a bad feed" % sid,
                        id_=sid)
            check_error(c.expect(sid), "not_found", "stream %s: end after a bad feed" % sid,
                        id_=sid)
        c.check_nothing_more()
        d.wait_quiet(connections=2)


def test_feed_after_end():
    """A feed (or end:true feed) after the stream's end ends it with invalid_request."""
    with Daemon(workers=2) as d, Conn(d) as c:
        for sid, late in (("a", feed("a", [1])), ("b", feed("b", [], end=True)),
                          ("c", feed("c", [2], end=True))):
            # The items take 300 ms: the stream is not done when the late feed comes.
            s = c.stream(sid, want=lambda i: 300)
            c.send(open_req(sid, "sleep_ms", chunksize=1, args=[300, 300]), end(sid), late)
            c.wait_final(s)
            s.check_error("invalid_request")
            check(s.answered < 2, "stream %s: done before the late feed was read" % sid)
            check_error(c.call(feed(sid, [1])), "not_found", "stream %s: a feed after the "
                        "error" % sid, id_=sid)
        c.check_nothing_more()
        d.wait_quiet(connections=2)


def test_limits():
    """--max-items per feed line; --max-pending-items counts held items, refuses opens."""
    args = ["--max-items", "10", "--max-pending-items", "10"]
    with Daemon(workers=2, args=args) as d, Conn(d) as c, Conn(d) as other:
        s = c.stream("s", want=square)
        c.send(open_req("s", "square", args=list(range(10))), feed("s", range(10, 20)))
        c.wait_answered(s, 20)
        c.send(feed("s", range(20, 31)))
        c.wait_final(s)
        s.check_error("too_large")
        check_error(c.call(open_req("t", "square", args=list(range(11)))), "too_large",
                    "an open with 11 items, --max-items 10", id_="t")
        check_error(c.call(feed("t", [1])), "not_found", "feed after a refused open", id_="t")
        # 8 slow items held by a stream count toward --max-pending-items.
        h = c.stream("h", want=lambda i: 500)
        c.send(open_req("h", "sleep_ms", chunksize=1, window=8, args=[500] * 8))
        c.pump(until=None)
        wait_until(lambda: d.status()["tasks_running"] > 0, 10, "the stream's items to run")
        check_error(other.call({"id": 1, "op": "map", "fn": "square", "args": [1, 2, 3]}),
                    "busy", "3 more items while a stream holds 8 of 10")
        check_error(other.call(open_req(2, "square", args=[1, 2, 3])), "busy",
                    "an open of 3 items while a stream holds 8 of 10")
        check_error(other.call(feed(2, [1])), "not_found", "feed after a busy open", id_=2)
        # Feeds are never refused for load: 30 more items pass through the window.
        c.send(feed("h", [0] * 10), feed("h", [0] * 10), feed("h", [0] * 10), end("h"))
        h.want = lambda i: 500 if i < 8 else 0
        c.wait_final(h)
        h.check_done(38)
        c.check_nothing_more()
        other.check_nothing_more()


def test_star_arity():
    with Daemon(workers=2) as d, Conn(d) as c:
        # A feed item of the wrong arity ends the stream with bad_arity.
        s = c.stream("s", want=lambda i: [3, 7][i])
        c.send(open_req("s", "add", star=True, args=[[1, 2]]), feed("s", [[3, 4]]))
        c.wait_answered(s, 2)
        c.send(feed("s", [[5, 6], [7]]))
        c.wait_final(s)
        s.check_error("bad_arity", index=3)  # the absolute index
        # Item 2 of the bad line may or may not have been answered before the error.
        check(s.answered in (2, 3), "items answered before the bad feed: %d" % s.answered)
        check_error(c.call(feed("s", [[1, 1]])), "not_found", "feed after bad_arity", id_="s")
        # A star item that is not an array: invalid_request, with its absolute index.
        t = c.stream("t", want=lambda i: 3)
        c.send(open_req("t", "add", star=True, args=[[1, 2]]))
        c.wait_answered(t, 1)
        c.send(feed("t", [[1, 2], 3]))
        c.wait_final(t)
        t.check_error("invalid_request", index=2)
        check_error(c.call(end("t")), "not_found", "end after a bad star item", id_="t")
        # Wrong arity in the open: refused like a map, no stream is opened.
        check_error(c.call(open_req("o", "add", star=True, args=[[1, 2], [1, 2, 3]])),
                    "bad_arity", "open with a bad first batch", id_="o", index=1)
        check_error(c.call(feed("o", [[1, 2]])), "not_found", "feed after a refused open",
                    id_="o")
        check_error(c.call(open_req("p", "add")), "bad_arity", "open of a 2-argument "
                    "function without star", id_="p")
        check_error(c.call(end("p")), "not_found", "end after a refused open", id_="p")
        c.check_nothing_more()


def test_open_invalid():
    with Daemon(workers=2) as d, Conn(d) as c:
        bad = [
            open_req(1, "square", window=0),
            open_req(2, "square", window=1000001),
            open_req(3, "square", window=-1),
            open_req(4, "square", window="10"),
            open_req(5, "square", window=1.5),
            open_req(6, "square", ordered="no"),
            open_req(7, "square", ordered=None),
            {"id": 8, "op": "map", "fn": "square", "args": [1], "ordered": False},
            {"id": 9, "op": "map", "fn": "square", "args": [1], "window": 10},
            {"id": 10, "op": "map", "fn": "square", "args": [1], "stream": False,
             "window": 10},
            {"id": 11, "op": "map", "fn": "square", "args": [1], "stream": False,
             "ordered": True},
            {"id": 12, "op": "map", "fn": "square", "stream": "yes"},
            {"id": 13, "op": "apply", "fn": "square", "args": [1], "stream": True},
            {"id": 14, "op": "map", "fn": "square"},  # no args, no stream
            {"id": 15, "op": "ping", "window": 10},
            {"id": 16, "op": "feed"},  # feed without args
        ]
        for req in bad:
            check_error(c.call(req), "invalid_request", "request %s" % json.dumps(req),
                        id_=req["id"])
        # None of them opened a stream.
        for req in bad[:7] + [bad[11]]:
            check_error(c.call(end(req["id"])), "not_found", "end after a refused open %s" %
                        json.dumps(req), id_=req["id"])
        check_error(c.call(open_req(20, "nosuchfn")), "unknown_function", "open of an unknown "
                    "function", id_=20)
        check_error(c.call(feed(20, [1])), "not_found", "feed after unknown_function", id_=20)
        # The extremes of window work; stream:false is a plain map.
        s = c.stream(30, want=square)
        c.send(open_req(30, "square", window=1, args=list(range(10))),
               feed(30, range(10, 30)), end(30))
        t = c.stream(31, want=lambda i: 25)
        c.send(open_req(31, "square", window=1000000, args=[5]), end(31))
        c.wait_final(s)
        c.wait_final(t)
        s.check_done(30)
        t.check_done(1)
        check_eq(c.call({"id": 32, "op": "map", "fn": "square", "args": [3], "stream": False}),
                 {"id": 32, "ok": True, "results": [9]}, "stream:false")
        c.check_nothing_more()


def test_cancel_stream():
    with Daemon(workers=2) as d, Conn(d) as c:
        s = c.stream("s", want=lambda i: 200)
        c.send(open_req("s", "sleep_ms", chunksize=1, args=[200] * 20), feed("s", [200] * 20))
        c.wait_answered(s, 1)
        c.send({"id": "c1", "op": "cancel", "target": "s"})
        c.pump(lambda: c.queues[key("c1")], what="the cancel reply")
        s.check_error("cancelled")
        check_eq(c.queues[key("c1")].popleft(), {"id": "c1", "ok": True, "cancelled": "s"},
                 "cancel reply")
        order = [a for a in c.arrivals if a[0] in (key("s"), key("c1"))][-2:]
        check_eq(order, [(key("s"), "error"), (key("c1"), "other")],
                 "the stream's cancelled error comes before the cancel's reply")
        check(s.answered < 40, "every item was answered before the cancel")
        check_error(c.call(feed("s", [1])), "not_found", "feed after cancel", id_="s")
        check_error(c.call({"id": "c2", "op": "cancel", "target": "s"}), "not_found",
                    "cancel again")
        # 40 items of 200 ms on 2 workers: 4 s if the queued ones were not dropped.
        d.wait_quiet(timeout=2, connections=2)
        # A stream with no items yet, never ended.
        t = c.stream(5)
        c.send(open_req(5, "square"))
        check_eq(c.call({"id": 6, "op": "cancel", "target": 5}),
                 {"id": 6, "ok": True, "cancelled": 5}, "cancel of an idle stream")
        t.check_error("cancelled")
        c.check_nothing_more()


def test_disconnect_mid_stream():
    with Daemon(workers=2) as d:
        # Items running, stream open.
        a = Conn(d)
        try:
            s = a.stream(1)
            a.send(open_req(1, "sleep_ms", chunksize=1, args=[500] * 10), feed(1, [500] * 10))
            a.wait_answered(s, 1)
        finally:
            a.sock.shutdown(socket.SHUT_RDWR)
            a.close()
        # The client never reads and its window is full.
        b = Conn(d)
        try:
            b.send(open_req(1, "square", window=5, chunksize=1, args=[1] * 5))
            b.send(*[feed(1, [2] * 5) for _ in range(200)])
            b.pump(until=None, timeout=1, read=False, fail=False)
        finally:
            b.close()
        # A client gone in the middle of a feed line.
        with d.client() as c:
            c.send_raw(line(open_req("x", "square")) + b'{"id":"x","op":"feed","args":[1,2,')
        # Everything is dropped (20 items of 500 ms: 5 s if not) and the daemon serves on.
        d.wait_quiet(timeout=3, connections=1)
        check_eq(d.call({"op": "ping"}).get("pid"), d.pid, "ping after the disconnects")
        # A half-close after end: the stream is answered to the end, then the daemon closes.
        with Conn(d) as h:
            s = h.stream("h", want=square1)
            h.send(open_req("h", "square", args=[1, 2]), feed("h", [3]), end("h"))
            h.pump(until=None)
            h.sock.shutdown(socket.SHUT_WR)
            h.wait_final(s)
            s.check_done(3)
            try:  # a timeout here fails the test
                h.pump(lambda: False, timeout=10, what="the daemon to close the connection")
            except EOFError:
                pass
        d.wait_quiet(timeout=5, connections=1)


def test_duplicate_open():
    with Daemon(workers=2) as d, Conn(d) as c:
        s = c.stream("s", want=square1)
        c.send(open_req("s", "square", args=[1]))
        c.wait_answered(s, 1)
        # A second open of the same id is refused; the first stream goes on.
        c.streams.pop(key("s"))
        check_error(c.call(open_req("s", "cube", args=[2])), "duplicate_id",
                    "a second open of stream s", id_="s")
        check_error(c.call({"id": "s", "op": "map", "fn": "square", "args": [2]}),
                    "duplicate_id", "a plain map with an open stream's id", id_="s")
        check_error(c.call({"id": "s", "op": "apply", "fn": "square", "args": [2]}),
                    "duplicate_id", "an apply with an open stream's id", id_="s")
        c.streams[key("s")] = s
        c.send(feed("s", [2, 3]), end("s"))
        c.wait_final(s)
        s.check_done(3)
        check_eq(s.values, [1, 4, 9], "the first stream's results")
        # An open with the id of a plain map in flight.
        c.send({"id": "m", "op": "map", "fn": "sleep_ms", "args": [300]})
        check_error(c.call(open_req("m", "square")), "duplicate_id",
                    "open with a plain map's id", id_="m")
        check_eq(c.expect("m"), {"id": "m", "ok": True, "results": [300]}, "the plain map")
        c.check_nothing_more()


def test_two_streams_one_connection():
    with Daemon(workers=2) as d, Conn(d) as c:
        a = c.stream("A", want=square)
        b = c.stream("B", want=lambda i: i ** 3, ordered=False)
        c.send(open_req("A", "square", chunksize=3), open_req("B", "cube", ordered=False,
                                                             chunksize=2, args=[0]))
        for k in range(10):
            c.send(feed("A", range(k * 20, k * 20 + 20)))
            c.send({"id": "m%d" % k, "op": "map", "fn": "square", "args": [k]})
            c.send(feed("B", range(k * 13 + 1, k * 13 + 14)))
            if k == 5:
                c.send({"id": "p", "op": "ping"})
        c.send(end("B"), end("A"))
        c.wait_final(a)
        c.wait_final(b)
        a.check_done(200)
        b.check_done(131)
        check_eq(a.values, [i * i for i in range(200)], "stream A")
        check_eq([b.values[i] for i in range(131)], [i ** 3 for i in range(131)], "stream B")
        for k in range(10):
            check_eq(c.expect("m%d" % k), {"id": "m%d" % k, "ok": True, "results": [k * k]},
                     "plain map m%d between the feeds" % k)
        check_eq(c.expect("p").get("pid"), d.pid, "ping between the feeds")
        c.check_nothing_more()


def test_many_connections():
    """6 connections with 2 streams each, fed in turns at once."""
    with Daemon(workers=2) as d:
        conns = [Conn(d) for _ in range(6)]
        try:
            streams = []
            for n, c in enumerate(conns):
                for sid in (n, "x"):  # the same id "x" on every connection
                    off = n * 1000 + (500 if sid == "x" else 0)
                    s = c.stream(sid, want=lambda i, off=off: off + i + 1,
                                 ordered=(sid == "x"))
                    c.send(open_req(sid, "add", star=True, chunksize=4))
                    streams.append((c, s, off))

            def lines(sid, off):
                for lo in range(0, 300, 30):
                    yield line(feed(sid, [[off + i, 1] for i in range(lo, lo + 30)]))
                yield line(end(sid))

            def round_robin(gens):
                while gens:
                    for g in list(gens):
                        try:
                            yield next(g)
                        except StopIteration:
                            gens.remove(g)
            for c in conns:
                c.feeder = round_robin([lines(s.sid, off) for c2, s, off in streams
                                        if c2 is c])
            pump_all(conns, lambda: all(s.final is not None for _, s, _ in streams),
                     what="12 streams on 6 connections")
            for c, s, off in streams:
                s.check_done(300)
                vals = s.values if s.ordered else [s.values[i] for i in range(300)]
                check_eq(vals, [off + i + 1 for i in range(300)], "results of %s" % s.what())
            for c in conns:
                c.check_nothing_more()
        finally:
            for c in conns:
                c.close()
        d.wait_quiet(connections=1)


def test_worker_killed():
    """Workers SIGKILLed mid-stream: every item still answered once, correctly."""
    n = 300
    with Daemon(workers=2) as d, Conn(d) as c:
        items = [10 + i % 3 for i in range(n)]
        s = c.stream("k", want=lambda i: items[i])
        c.send(open_req("k", "sleep_ms", chunksize=2, args=items[:20]))
        kills = []
        for lo in range(20, n, 20):
            c.send(feed("k", items[lo:lo + 20]))
            if lo in (60, 160):
                c.wait_answered(s, lo - 20)
                pids = [p["pid"] for p in status_slots(d) if p["pid"] > 0]
                pids = [p for p in pids if harness.ppid_of(p) == d.pid]
                check(pids, "no worker to kill: %s" % status_slots(d))
                os.kill(pids[0], signal.SIGKILL)
                kills.append(pids[0])
        c.send(end("k"))
        c.wait_final(s)
        s.check_done(n)
        check_eq(s.values, items, "results")
        check(all(not pid_alive(p) for p in kills), "a killed worker lives: %s" % kills)
        st = d.wait_quiet(connections=2)
        check(sum(x["restarts"] for x in st["slots"]) >= 2, "restarts after 2 kills: %s" %
              st["slots"])
        c.check_nothing_more()


def test_sigterm_open_stream():
    """A graceful stop ends a stream left open with shutting_down; ended ones finish."""
    with Daemon(workers=2, args=["--stop-timeout", "1"]) as d, Conn(d) as c:
        s = c.stream("open", want=square1)
        c.send(open_req("open", "square", args=[1, 2]))
        c.wait_answered(s, 2)
        e = c.stream("ended", want=lambda i: 300)
        c.send(open_req("ended", "sleep_ms", chunksize=1, args=[300, 300]), end("ended"))
        c.pump(until=None)
        wait_until(lambda: d.status()["tasks_running"] > 0, 10, "the sleeps to start")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        c.wait_final(e, timeout=10)
        e.check_done(2)
        c.wait_final(s, timeout=10)
        s.check_error("shutting_down")
        check(time.monotonic() - t0 < 5, "shutting_down after %.1fs" % (time.monotonic() - t0))
        check_eq(d.wait_exit(20), 0, "exit status")


harness.main(globals())
