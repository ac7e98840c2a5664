#!/usr/bin/env python3
"""Issue 8's rows: user work through poold against its usual tools, same run.

p. A Python function served as a worker program (poold.worker) against the same
   function under multiprocessing.Pool(W).map: N small items (1,000,000), both
   timed end to end from Python (arguments encoded, results decoded and checked
   outside the timed region). Target: poold >= 1x Pool.map's items/s.
x. A command per item (`true {}`) over 5,000 items against `xargs -P W -n 1 true`
   (target >= 1x) and GNU `parallel -j W true` (target >= 5x), items/s.

Run by bench/run.sh after bench.py (arguments as bench.py's; those it does not
use are ignored); --out FILE appends a section to FILE (BENCHMARKS.md).
--tiny: a few items, checked, nothing written.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys

from benchlib import BenchError, Run, call, program_conf, start_poold, stop_poold, timed

# The function of row p, the same text on both sides.
FUNC = '''
def mix(x):
    """A small function of one integer."""
    return (x * 2654435761) % 1000003 + x // 7
'''
exec(FUNC)  # defines mix() here, for Pool.map and for the checks

PROGRAM = '''import poold.worker
%s
poold.worker.register(mix)
poold.worker.serve()
''' % FUNC


def start(run, poold, workers):
    """poold with mix (the worker program) and true (a command per item)."""
    prog = os.path.join(run.tmp, "mix.py")
    with open(prog, "w") as f:
        f.write(PROGRAM)
    return start_poold(run, poold, workers, "programs", program_conf("mix", prog) +
                       "\n[function true]\nkind = command\ncommand = true {}\n")


def row_p(sock, workers, n, reps):
    items = list(range(n))
    want = [mix(i) for i in items]
    got = {}

    def via_poold():
        r = call(sock, {"id": 1, "op": "map", "fn": "mix", "args": items})
        if not r.get("ok"):
            raise BenchError("map mix: %s" % str(r)[:300])
        got["r"] = r["results"]

    line = json.dumps({"id": 1, "op": "map", "fn": "mix", "args": items},
                      separators=(",", ":")).encode() + b"\n"

    def raw():
        # The daemon's side alone: the request already encoded, the reply not decoded.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            s.sendall(line)
            buf = bytearray()
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise BenchError("poold closed the connection")
                buf += chunk
            got["raw"] = buf
        finally:
            s.close()

    t_poold = timed(via_poold, reps)
    if got["r"] != want:
        raise BenchError("row p: poold's results differ")
    t_raw = timed(raw, reps)
    if json.loads(got["raw"])["results"] != want:
        raise BenchError("row p: poold's results differ (raw)")
    with multiprocessing.Pool(workers) as pool:
        def via_pool():
            got["p"] = pool.map(mix, items)
        t_pool = timed(via_pool, reps)
    if got["p"] != want:
        raise BenchError("row p: Pool.map's results differ")
    return t_poold, t_pool, t_raw


def row_x(run, sock, workers, n, reps):
    items = [str(i) for i in range(n)]
    text = ("\n".join(items) + "\n").encode()

    def via_poold():
        r = call(sock, {"id": 2, "op": "map", "fn": "true", "args": items})
        if r.get("results") != [""] * n:
            raise BenchError("map true: %s" % str(r)[:300])

    def tool(argv):
        def f():
            p = run.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            p.communicate(text, timeout=900)
            if p.returncode != 0:
                raise BenchError("%s exited with %d" % (argv[0], p.returncode))
        return f

    t_poold = timed(via_poold, reps)
    t_xargs = timed(tool(["xargs", "-P", str(workers), "-n", "1", "true"]), reps)
    t_par = None
    if shutil.which("parallel"):
        t_par = timed(tool(["parallel", "--will-cite", "-j", str(workers), "true"]), 1)
    return t_poold, t_xargs, t_par


def fmt_rate(n, t):
    return "%s items/s (%.2f µs/item)" % (format(int(n / t), ","), t / n * 1e6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--poold", required=True)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--only")
    ap.add_argument("--out")
    args, _ = ap.parse_known_args()
    rows = [r for r in "px" if args.only is None or r in args.only]
    if not rows:
        return 0
    n_p, n_x, reps = (2000, 50, 1) if args.tiny else (1000000, 5000, 3)
    w = args.workers
    run = Run(args.tmp)
    lines = []
    try:
        p, sock = start(run, args.poold, w)
        if "p" in rows:
            (tp, _), (ta, _), (tr, _) = row_p(sock, w, n_p, reps)
            lines.append("| p. Python function as a worker program, %s items | %s; "
                         "without the client's JSON encode/decode: %s | "
                         "Pool(%d).map: %s | %.2fx | ≥ 1x | %s |" % (
                             format(n_p, ","), fmt_rate(n_p, tp), fmt_rate(n_p, tr), w,
                             fmt_rate(n_p, ta), ta / tp, "yes" if ta / tp >= 1 else "**no**"))
        if "x" in rows:
            (tp, _), (tx, _), tpar = row_x(run, sock, w, n_x, reps)
            lines.append("| x. command per item (`true {}`), %s items | %s | "
                         "`xargs -P %d -n 1`: %s | %.2fx | ≥ 1x | %s |" % (
                             format(n_x, ","), fmt_rate(n_x, tp), w, fmt_rate(n_x, tx),
                             tx / tp, "yes" if tx / tp >= 1 else "**no**"))
            if tpar:
                lines.append("| x. the same | | `parallel -j %d`: %s | %.2fx | ≥ 5x | %s |" % (
                    w, fmt_rate(n_x, tpar[0]), tpar[0] / tp,
                    "yes" if tpar[0] / tp >= 5 else "**no**"))
        stop_poold(p)
    finally:
        run.kill_all()
    if args.tiny:
        print("programs_bench --tiny: rows %s checked" % "".join(rows))
        return 0
    text = "\n".join([
        "", "## User work (issue 8): worker programs and commands per item", "",
        "Generated by `bench/programs_bench.py` (run by `bench/run.sh`), same run, W = %d. "
        "Throughput is items/s end to end from a Python client (request encoded, reply "
        "decoded, results checked outside the timed region); the median of %d timed runs "
        "after a warm-up (GNU parallel: one run). Per-item cost = wall time / items." % (w, reps),
        "", "| workload | poold | anchor | ratio | target | met |", "|---|---|---|---|---|---|"]
        + lines + [""])
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
