#!/usr/bin/env python3
"""Issue 10's row: the Python client poold.Pool against multiprocessing.Pool, same run.

y. poold.Pool(socket=...).map(NAME, items) against multiprocessing.Pool(W).map(square,
   items) on the same N integers (1,000,000), the same function x*x: once with
   poold's built-in `square` (C), once with a Python `square` served as a worker
   program by poold.worker. Each is timed from the call to the checked-later
   list of results (the client's JSON encode and decode included); the median
   of REPS after a warm-up. Ratio = poold items/s / Pool.map items/s (above 1:
   poold faster). No target: the row says what a multiprocessing user gets by
   switching.

Run by bench/run.sh after the other rows (arguments as bench.py's; those it
does not use are ignored); --out FILE appends a section to FILE (BENCHMARKS.md).
--tiny: a few items, checked, nothing written.
"""

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
import poold  # noqa: E402  (the package from this source tree)

START_TIMEOUT = 30.0

PROGRAM = '''import poold.worker


@poold.worker.function
def pysquare(x):
    return x * x


poold.worker.serve()
'''


def square(x):
    return x * x


class BenchError(Exception):
    pass


def start_poold(tmp, poold_bin, workers, procs):
    """A private poold with the worker program pysquare; (process, socket)."""
    prog = os.path.join(tmp, "pysquare.py")
    with open(prog, "w") as f:
        f.write(PROGRAM)
    conf = os.path.join(tmp, "pyclient.conf")
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[function pysquare]\nkind = program\ncommand = %s %s\nenv = PYTHONPATH=%s\n"
                "preload = yes\n" % (sys.executable, prog, os.path.join(ROOT, "python")))
    sock = os.path.join(tmp, "pyclient.sock")
    env = dict(os.environ, TMPDIR=tmp)
    env.pop("POOLD_SOCKET", None)
    with open(os.path.join(tmp, "pyclient.log"), "ab") as log:
        p = subprocess.Popen([poold_bin, "--socket", sock, "--workers", str(workers),
                              "--config", conf], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log, env=env, start_new_session=True)
    procs.append(p)
    with open(os.path.join(tmp, "pgids"), "a") as f:
        f.write("%d\n" % p.pid)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if p.poll() is not None:
            raise BenchError("poold exited with %s" % p.returncode)
        try:
            with poold.Pool(socket=sock, timeout=2) as pool:
                st = pool.status()
            if st["pid"] == p.pid and all(s["state"] == "idle" for s in st["slots"]):
                return p, sock
        except poold.PooldError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("poold not ready within %.0f s" % START_TIMEOUT)
        time.sleep(0.01)


def timed(f, reps):
    """Median and best of reps timed calls of f (after one warm-up call)."""
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def measure(sock, workers, n, reps):
    items = list(range(n))
    want = [square(i) for i in items]
    got = {}
    out = {}
    with poold.Pool(socket=sock) as pool:
        for name in ("square", "pysquare"):
            def via_poold():
                got[name] = pool.map(name, items)
            out[name] = timed(via_poold, reps)
            if got[name] != want:
                raise BenchError("poold.Pool.map(%r): wrong results" % name)
    with multiprocessing.Pool(workers) as mp:
        def via_mp():
            got["mp"] = mp.map(square, items)
        out["mp"] = timed(via_mp, reps)
    if got["mp"] != want:
        raise BenchError("multiprocessing Pool.map: wrong results")
    return out


def fmt_rate(n, t):
    return "%s items/s" % format(int(n / t), ",")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--poold", required=True)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--only")
    ap.add_argument("--out")
    args, _ = ap.parse_known_args()
    if args.only is not None and "y" not in args.only:
        return 0
    n, reps = (2000, 1) if args.tiny else (1000000, 3)
    w = args.workers
    procs = []
    try:
        p, sock = start_poold(args.tmp, args.poold, w, procs)
        t = measure(sock, w, n, reps)
        p.send_signal(signal.SIGTERM)
        if p.wait(30) != 0:
            raise BenchError("poold exited with %d after SIGTERM" % p.returncode)
    finally:
        for q in procs:
            if q.poll() is None:
                os.killpg(q.pid, signal.SIGKILL)
                q.wait()
    if args.tiny:
        print("pyclient_bench --tiny: row y checked")
        return 0
    mp_m, mp_b = t["mp"]
    lines = []
    for name, what in (("square", "built-in `square` (C)"),
                       ("pysquare", "`square` in Python, a worker program (poold.worker)")):
        m, b = t[name]
        lines.append("| y. `poold.Pool.map` vs `multiprocessing.Pool(%d).map`, x*x over %s "
                     "integers; poold runs %s | %s (best %s) | %s (best %s) | %.2fx |" % (
                         w, format(n, ","), what, fmt_rate(n, m), fmt_rate(n, b),
                         fmt_rate(n, mp_m), fmt_rate(n, mp_b), mp_m / m))
    text = "\n".join([
        "", "## The Python client (issue 10)", "",
        "Generated by `bench/pyclient_bench.py` (run by `bench/run.sh`), same run, W = %d. "
        "Both sides are called from one Python process with the same list; each figure is "
        "the median of %d timed maps after a warm-up, the client's JSON encoding and "
        "decoding included; results are checked outside the timed region. Ratio = poold "
        "items/s / Pool.map items/s." % (w, reps),
        "", "| workload | poold.Pool | multiprocessing.Pool | ratio |", "|---|---|---|---|"]
        + lines + [""])
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("pyclient_bench: %s" % e, file=sys.stderr)
        sys.exit(1)
