"""The Python client poold.Pool (python/poold): multiprocessing.Pool's API over the
daemon's socket, run from the source tree against the real daemon."""

import itertools
import os
import signal
import sys
import threading
import time

import harness
from harness import Daemon, check, check_eq, wait_until

sys.path.insert(0, os.path.join(harness.SRCROOT, "python"))
import poold  # noqa: E402  (from the source tree, not an installed copy)
from poold import PooldError  # noqa: E402


def expect_error(code, f, *args, index=None, **kw):
    """f(*args, **kw) raises PooldError with code (and index); the error."""
    try:
        got = f(*args, **kw)
    except PooldError as e:
        check_eq(e.code, code, "error code of %s (%s)" % (getattr(f, "__name__", f), e))
        check(isinstance(e.message, str) and e.message, "error without a message: %r" % e)
        check_eq(e.index, index, "error index (%s)" % e)
        return e
    raise AssertionError("%s returned %r, want PooldError %s" % (f, got, code))


def requests_gone(d):
    """Wait until the daemon has no request in flight (a cancelled or abandoned one)."""
    return wait_until(lambda: d.status()["requests"] == 0, 10, "no request in flight")


def test_reference_examples():
    """The multiprocessing examples of ../shared/reference, with names for functions."""
    with Daemon(workers=2) as d:
        # from multiprocessing import Pool; with Pool(5) as p: print(p.map(f, [1, 2, 3]))
        with poold.Pool(5, socket=d.sock) as p:
            check_eq(p.map("square", [1, 2, 3]), [x * x for x in [1, 2, 3]], "Pool(5).map")
        # pool = Pool(processes=4); results = pool.map(find_cube_root, ...); close; join
        pool = poold.Pool(processes=4, socket=d.sock)
        cuberoot_list = [27, 125, 343, 729]
        results = pool.map("cbrt", cuberoot_list)
        pool.close()
        pool.join()
        for got, n in zip(results, cuberoot_list):
            want = n ** (1 / 3)  # find_cube_root; 27 ** (1/3) is 3.0000000000000004
            check(isinstance(got, float) and abs(got - want) <= 1e-12 * want,
                  "cbrt(%d): got %r, want %r" % (n, got, want))
        check_eq(len(results), 4, "cube roots")
        # The array example: [2..8] squared.
        with poold.Pool(socket=d.sock) as p:
            arr = [2, 3, 4, 5, 6, 7, 8]
            check_eq(p.map("square", arr), [v ** 2 for v in arr], "squares of the array")
            # starmap with add, as Pool.starmap(operator.add, ...)
            pairs = [(1, 2), (3, 4), (-5, 5), (1.5, 2)]
            check_eq(p.starmap("add", pairs), [a + b for a, b in pairs], "starmap add")
            # Worker pids (the print_number/os.getpid examples): each number ran in one
            # of the daemon's workers, never in the client or the supervisor.
            numbers = [11, 33, 55, 77]
            out = p.map("getpid", numbers, chunksize=1)
            check_eq([o["item"] for o in out], numbers, "getpid items")
            pids = set(o["pid"] for o in out)
            workers = set(s["pid"] for s in p.status()["slots"])
            check(pids <= workers, "items ran on %s, workers are %s" % (pids, workers))
            check(os.getpid() not in pids and d.pid not in pids, "an item ran outside a worker")


def test_many_async():
    """More apply_async calls than the daemon takes in flight on one connection
    (--max-inflight): the client holds the rest back, none is answered "busy"."""
    with Daemon(workers=2) as d:  # --max-inflight 1024
        with poold.Pool(socket=d.sock) as pool:
            # The sleeps keep the workers busy while the rest piles up behind them.
            calls = [pool.apply_async("sleep_ms", (5,)) for _ in range(200)]
            calls += [pool.apply_async("add", (i, 1)) for i in range(3000)]
            got = [c.get(60) for c in calls]
        check_eq(got, [5] * 200 + [i + 1 for i in range(3000)], "every async call answered")
        st = d.wait_quiet()
        check_eq(st["requests"], 0, "requests left")


def test_methods():
    """Every method: apply, map, starmap, their _async forms, imap, imap_unordered,
    AsyncResult, callbacks, functions, status, close/join and the argument checks."""
    with Daemon(workers=2) as d:
        _methods(d)


def _methods(d):
    with poold.Pool(socket=d.sock) as p:
        check_eq(p.apply("add", (2, 3)), 5, "apply")
        check_eq(p.apply("echo", ([1, {"a": "é"}],)), [1, {"a": "é"}], "apply echo")
        check_eq(p.apply("add", [2, 3], {}), 5, "apply with empty kwds")
        check_eq(p.map("square", range(100)), [i * i for i in range(100)], "map")
        check_eq(p.map("square", []), [], "empty map")
        check_eq(p.map("square", range(50), chunksize=7), [i * i for i in range(50)],
                 "map with chunksize")
        check_eq(p.starmap("add", zip(range(20), range(20))), [2 * i for i in range(20)],
                 "starmap")
        got, errs = [], []
        done = threading.Event()
        r = p.apply_async("sleep_ms", (1000,), callback=lambda v: (got.append(v), done.set()))
        check(not r.ready(), "apply_async ready at once")
        try:
            r.successful()
            raise AssertionError("successful() before ready did not raise")
        except ValueError:
            pass
        expect_error("wait_timeout", r.get, 0.01)
        r.wait(0.01)
        check_eq(r.get(10), 1000, "apply_async get")
        check(r.ready() and r.successful(), "ready and successful")
        check(done.wait(10) and got == [1000], "callback got %s" % got)
        m = p.map_async("square", [1, 2, 3])
        s = p.starmap_async("add", [(1, 1), (2, 2)])
        check_eq((m.get(10), s.get(10)), ([1, 4, 9], [2, 4]), "map_async, starmap_async")
        e = p.map_async("fail", ["no"], error_callback=errs.append)
        expect_error("function_error", e.get, 10, index=0)
        check(e.ready() and not e.successful(), "failed result")
        check(len(errs) == 1 and isinstance(errs[0], PooldError), "error_callback: %s" % errs)
        check_eq(list(p.imap("square", range(30))), [i * i for i in range(30)], "imap")
        check_eq(list(p.imap("square", iter([]))), [], "imap of nothing")
        check_eq(sorted(p.imap_unordered("cube", range(30), chunksize=3)),
                 sorted(i ** 3 for i in range(30)), "imap_unordered")
        check_eq(list(p.istarmap("add", ((i, 1) for i in range(10)))), list(range(1, 11)),
                 "istarmap")
        it = p.imap("sleep_ms", [1000, 1])
        expect_error("wait_timeout", it.next, 0.01)
        check_eq([it.next(10), next(it)], [1000, 1], "imap next(timeout) goes on")
        names = [f["name"] for f in p.functions()]
        check("square" in names and "getpid" in names, "functions: %s" % names)
        check_eq(p.status()["workers"], 2, "status workers")
        # A callback that blocks on the pool would deadlock: it is refused.
        inner = []
        cb = p.apply_async("square", (3,), callback=lambda v: inner.append(
            _catch(lambda: p.map("square", [v]))))
        cb.get(10)
        check(isinstance(inner[0], RuntimeError), "blocking inside a callback: %r" % inner)
        # Threads share one pool.
        outs = {}

        def worker(k):
            outs[k] = [p.apply("square", (k * 100 + j,)) for j in range(20)]
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        check_eq(outs, {k: [(k * 100 + j) ** 2 for j in range(20)] for k in range(8)},
                 "8 threads x 20 applies")
        # Argument checks.
        for bad in (lambda: p.map(len, [1]), lambda: p.apply(print), lambda: p.imap(abs, [1]),
                    lambda: p.apply("add", (1, 2), {"b": 1}), lambda: p.map(3, [1])):
            check(isinstance(_catch(bad), TypeError), "TypeError expected")
        check("'len'" in str(_catch(lambda: p.map(len, [1]))), "callable hint names it")
        check(isinstance(_catch(lambda: p.map("echo", [object()])), TypeError), "not JSON")
        check(isinstance(_catch(p.join), ValueError), "join before close")
        last = p.map_async("sleep_ms", [100, 100])
        p.close()
        check(isinstance(_catch(lambda: p.map("square", [1])), ValueError), "map after close")
        p.join()
        check_eq(last.get(0.001), [100, 100], "join waited for the call in flight")
    with poold.Pool(socket=d.sock) as p:
        r = p.apply_async("square", (2,))
        r.get(10)
    check(isinstance(_catch(lambda: p.map("square", [1])), ValueError), "map after exit")


def _catch(f):
    try:
        f()
    except Exception as e:  # the test checks the type
        return e
    return None


def test_errors():
    """Error replies become PooldError with code, message, index and id."""
    with Daemon(workers=2) as d, poold.Pool(socket=d.sock) as p:
        e = expect_error("function_error", p.map, "fail", ["ok?", "boom"], index=0)
        check_eq(e.message, "ok?", "message of the first failing item")
        check(isinstance(e.id, int), "the request id: %r" % e.id)
        check_eq(str(e), "function_error: ok? (item 0)", "str of the error")
        expect_error("type_error", p.map, "square", [1, "x", 3], index=1)
        expect_error("function_error", p.apply, "fail", ("x",))
        expect_error("unknown_function", p.map, "no_such_fn", [1])
        expect_error("bad_arity", p.apply, "add", (1,))
        expect_error("bad_arity", p.starmap, "add", [(1, 2), (3,)], index=1)
        expect_error("invalid_request", p.map, "square", [1], chunksize=-1)
        # imap: the values before the failing item, then its error.
        it = p.imap("cbrt", [27, 8, "x", 1], chunksize=1)
        check_eq([next(it), next(it)], [3.0, 2.0], "values before the failure")
        expect_error("type_error", next, it, index=2)
        expect_error("type_error", next, it, index=2)  # and it stays failed
        expect_error("unknown_function", list, p.imap("no_such_fn", [1]))
        # The pool is still usable after all that.
        check_eq(p.map("square", [4]), [16], "map after errors")


def test_connect_failed():
    """No daemon: the constructor says so (and the default socket rule)."""
    with Daemon(workers=1) as d:
        missing = os.path.join(d.dir, "nobody.sock")
        expect_error("connect_failed", poold.Pool, socket=missing)
        old = dict(os.environ)
        try:
            os.environ["POOLD_SOCKET"] = d.sock
            check_eq(poold.default_socket(), d.sock, "$POOLD_SOCKET first")
            with poold.Pool() as p:
                check_eq(p.map("square", [5]), [25], "Pool() on $POOLD_SOCKET")
            os.environ["POOLD_SOCKET"] = ""
            os.environ["XDG_RUNTIME_DIR"] = "/xdg"
            want = "/run/poold/poold.sock" if os.geteuid() == 0 else "/xdg/poold/poold.sock"
            check_eq(poold.default_socket(), want, "XDG_RUNTIME_DIR (not for root)")
            del os.environ["XDG_RUNTIME_DIR"]
            check_eq(poold.default_socket(), "/run/poold/poold.sock", "system socket")
        finally:
            os.environ.clear()
            os.environ.update(old)


def test_imap_unbounded():
    """imap over itertools.count(): the first N values in order, the input read at
    most one window ahead of what was consumed, the daemon holding little."""
    n, window = 20000, 256
    pulled = [0]

    def counting():
        for i in itertools.count():
            pulled[0] = i + 1
            yield i

    with Daemon(workers=2) as d, poold.Pool(socket=d.sock) as p:
        it = p.imap("square", counting(), window=window)
        for i in range(n):
            v = next(it)
            if v != i * i:
                raise AssertionError("item %d: got %r" % (i, v))
            check(pulled[0] <= i + 1 + window, "input read %d ahead after %d values" %
                  (pulled[0] - i - 1, i + 1))
            if i == n // 2:
                st = d.status()
                check(st["tasks_queued"] + st["tasks_running"] <= window,
                      "daemon holds %s tasks" % st)
        check(pulled[0] <= n + window, "pulled %d items for %d values" % (pulled[0], n))
        it.close()
        requests_gone(d)
        # imap_unordered over an unbounded input, likewise.
        pulled[0] = 0
        it = p.imap_unordered("square", counting(), window=window)
        got = [next(it) for _ in range(5000)]
        check(pulled[0] <= 5000 + window, "unordered: pulled %d" % pulled[0])
        check_eq(len(set(got)), 5000, "distinct values")
        it.close()
        requests_gone(d)


def test_imap_slow_producer():
    """A slow input's items are sent as they come, not held back for a batch."""
    pulled = [0]

    def slow():
        for i in range(6):
            time.sleep(0.2)
            pulled[0] = i + 1
            yield i

    with Daemon(workers=2) as d, poold.Pool(socket=d.sock) as p:
        it = p.imap("square", slow())
        check_eq(next(it), 0, "first value")
        check(pulled[0] <= 2, "the first value waited for %d items of the input" % pulled[0])
        check_eq(list(it), [i * i for i in range(1, 6)], "the rest")


def test_imap_worker_killed():
    """A worker SIGKILLed while imap runs: every value still right, in order."""
    items = [20 + i % 7 for i in range(120)]
    with Daemon(workers=2) as d, poold.Pool(socket=d.sock) as p:
        it = p.imap("sleep_ms", items, chunksize=1, window=16)
        got = [next(it) for _ in range(10)]
        busy = wait_until(lambda: [s for s in d.status()["slots"] if s["state"] == "busy"],
                          10, "a busy worker")
        victim = busy[0]
        os.kill(victim["pid"], signal.SIGKILL)
        got += list(it)
        check_eq(got, items, "values after a worker was killed")
        st = d.status()
        check(victim["pid"] not in [s["pid"] for s in st["slots"]], "the victim is gone")
        check(st["slots"][victim["slot"]]["restarts"] >= 1, "restart counted: %s" % st)


def test_deadline():
    """A call past its timeout fails with "deadline" promptly and is cancelled."""
    with Daemon(workers=2) as d:
        with poold.Pool(socket=d.sock) as p:
            t0 = time.monotonic()
            expect_error("deadline", p.apply, "sleep_ms", (5000,), timeout=0.3)
            check(time.monotonic() - t0 < 3, "deadline took %.1fs" % (time.monotonic() - t0))
            requests_gone(d)
            check_eq(p.map("square", [3], timeout=5), [9], "the pool goes on")
            it = p.imap("sleep_ms", [10, 5000], chunksize=1, timeout=1.5)
            check_eq(next(it), 10, "first value in time")
            expect_error("deadline", next, it)
            requests_gone(d)
            r = p.map_async("sleep_ms", [5000], timeout=0.3)
            expect_error("deadline", r.get, 5)
            requests_gone(d)
        # The Pool's own default timeout.
        with poold.Pool(socket=d.sock, timeout=0.3) as p:
            expect_error("deadline", p.map, "sleep_ms", [5000, 5000])
            requests_gone(d)
            check_eq(p.map("sleep_ms", [1, 2], timeout=10), [1, 2], "per-call timeout wins")
        # A stopped daemon (SIGSTOP) does not hang a call with a timeout.
        with poold.Pool(socket=d.sock, timeout=0.5) as p:
            d.signal(signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                expect_error("deadline", p.map, "square", [1])
                check(time.monotonic() - t0 < 3, "deadline with a stopped daemon")
            finally:
                d.signal(signal.SIGCONT)
        requests_gone(d)


class KilledDaemon(Daemon):
    """A daemon this test SIGKILLs on purpose: its exit status -9 is expected."""

    def problems(self):
        return [p for p in super().problems() if p != "poold exited with status -9"]


def test_daemon_killed():
    """The daemon SIGKILLed during a map, an async map and an imap: PooldError
    "disconnected" at once, no hang; later calls say connect_failed."""
    with KilledDaemon(workers=2) as d:
        p = poold.Pool(socket=d.sock)
        r = p.map_async("sleep_ms", [3000] * 4, chunksize=1)
        it = p.imap("sleep_ms", [3000] * 4, chunksize=1)
        errs = []
        th = threading.Thread(target=lambda: errs.append(_catch(
            lambda: p.map("sleep_ms", [3000, 3000]))))
        th.start()
        wait_until(lambda: d.status()["requests"] >= 2, 10, "maps in flight")
        t0 = time.monotonic()
        threading.Timer(0.3, lambda: d.proc.kill()).start()
        expect_error("disconnected", next, it)
        expect_error("disconnected", r.get, 10)
        th.join(10)
        check(not th.is_alive(), "blocking map still waiting")
        check(isinstance(errs[0], PooldError) and errs[0].code == "disconnected",
              "blocking map: %r" % errs)
        check(time.monotonic() - t0 < 3, "errors took %.1fs" % (time.monotonic() - t0))
        check_eq(d.wait_exit(), -signal.SIGKILL, "daemon killed")
        expect_error("connect_failed", p.map, "square", [1])
        p.terminate()


def test_daemon_restarted():
    """A long-lived Pool reconnects when the daemon comes back on its socket path."""
    with Daemon(workers=1) as d:
        link = os.path.join(d.dir, "link.sock")
        os.symlink(d.sock, link)
        p = poold.Pool(socket=link)
        check_eq(p.map("square", [2]), [4], "before")
        check_eq(d.stop(), 0, "graceful stop")
        # The I/O thread may not have seen the close yet: either error is right.
        e = _catch(lambda: p.map("square", [3]))
        check(isinstance(e, PooldError) and e.code in ("connect_failed", "disconnected"),
              "a call while no daemon runs: %r" % e)
        with Daemon(workers=1) as d2:
            os.unlink(link)
            os.symlink(d2.sock, link)
            check_eq(p.map("square", [3]), [9], "after the restart")
            p.close()
            p.join()


def test_terminate():
    """terminate() cancels the calls in flight; the daemon drops them."""
    with Daemon(workers=2) as d:
        p = poold.Pool(socket=d.sock)
        r = p.map_async("sleep_ms", [2000] * 6, chunksize=1)
        it = p.imap("sleep_ms", [2000] * 6, chunksize=1)
        check(it is not None, "imap")
        wait_until(lambda: d.status()["requests"] >= 1, 10, "the map in flight")
        t0 = time.monotonic()
        p.terminate()
        expect_error("cancelled", r.get, 5)
        check(time.monotonic() - t0 < 2, "terminate took %.1fs" % (time.monotonic() - t0))
        expect_error("cancelled", next, it)
        requests_gone(d)


def test_too_large():
    """A line over --max-line (reply id null) fails its own call, not its neighbours."""
    with Daemon(workers=2, args=["--max-line", "4096"]) as d, poold.Pool(socket=d.sock) as p:
        small = p.map_async("sleep_ms", [200])
        big = p.map_async("square", list(range(3000)))
        expect_error("too_large", big.get, 10)
        check_eq(small.get(10), [200], "the small call beside it")
        check_eq(p.map("square", [7]), [49], "the connection goes on")


harness.main(globals())
