"""The anchor side of bench/run.sh: the same workloads with Python's
multiprocessing.Pool (standard library only), on the same machine in the same run.

    python3 anchor.py COMMAND ARGS...   -> one JSON object on stdout

Each command runs in its own fresh interpreter (bench.py starts one per
workload), so peak-RSS numbers belong to that workload alone. The pool is
always started, and warmed up, before anything is timed; every result is
checked (outside the timed region).
"""

import hashlib
import json
import multiprocessing
import os
import resource
import sys
import threading
import time

sys.dont_write_bytecode = True


def square(x):
    return x * x


def sleep_ms(ms):
    time.sleep(ms / 1000.0)
    return ms


def spin(n):
    """CPU-bound Python busy loop: n rounds of integer mixing."""
    h = 0x9E3779B9
    for i in range(n):
        h = ((h ^ i) * 0x01000193) & 0xFFFFFFFF
    return h


def percentile(sorted_values, p):
    """Nearest-rank percentile, the same rule as bench_client.c."""
    n = len(sorted_values)
    k = min(max(int((p / 100.0) * n + 0.999999999), 1), n)
    return sorted_values[k - 1]


def peak_rss_kib():
    """Peak RSS of this process and of its largest waited-for child, in KiB.

    Our own figure is VmHWM, not ru_maxrss: Linux keeps the pre-exec high-water
    mark across execve, so ru_maxrss would include the RSS of the orchestrator
    that started us. The workers are forked from us and really map our pages,
    so their ru_maxrss (RUSAGE_CHILDREN, after join) is theirs.
    """
    hwm = None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def cmd_map(n, reps, workers):
    """a: Pool(W).map(square, range(n)), default chunksize; the map call only is timed."""
    n, reps, workers = int(n), int(reps), int(workers)
    want = [i * i for i in range(n)]
    times = []
    with multiprocessing.Pool(workers) as pool:
        t0 = time.perf_counter()
        got = pool.map(square, range(n))
        warm = time.perf_counter() - t0
        if got != want:
            raise SystemExit("anchor map: wrong results (warm-up)")
        for _ in range(reps):
            t0 = time.perf_counter()
            got = pool.map(square, range(n))
            times.append(time.perf_counter() - t0)
            if got != want:
                raise SystemExit("anchor map: wrong results")
    return {"items": n, "warmup_s": warm, "times_s": times}


def proc_cpu_s(pid):
    """utime + stime of a live process, in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def cmd_mapcpu(n, reps, workers):
    """j: CPU of Pool(W).map(square, range(n)), a warm-up and REPS maps, parent and workers.

    Counted from the started pool on (interpreter and pool start left out, as the
    daemon's start is on poold's side): the parent's getrusage (its threads
    included) and each worker's /proc/PID/stat.
    """
    n, reps, workers = int(n), int(reps), int(workers)
    want = [i * i for i in range(n)]
    with multiprocessing.Pool(workers) as pool:
        pids = [p.pid for p in pool._pool]
        w0, s0 = [proc_cpu_s(p) for p in pids], self_cpu_s()
        for _ in range(reps + 1):
            if pool.map(square, range(n)) != want:
                raise SystemExit("anchor mapcpu: wrong results")
        s1, w1 = self_cpu_s(), [proc_cpu_s(p) for p in pids]
    return {"items": n * (reps + 1), "parent_cpu_s": s1 - s0,
            "workers_cpu_s": [b - a for a, b in zip(w0, w1)]}


def cmd_apply(n, warm, workers):
    """b: Pool(W).apply(square, (i,)) one at a time; latency of each call."""
    n, warm, workers = int(n), int(warm), int(workers)
    lat = []
    clock = time.perf_counter
    with multiprocessing.Pool(workers) as pool:
        for i in range(warm):
            if pool.apply(square, (i,)) != i * i:
                raise SystemExit("anchor apply: wrong result")
        t_all = clock()
        for i in range(n):
            t0 = clock()
            r = pool.apply(square, (i,))
            lat.append(clock() - t0)
            if r != i * i:
                raise SystemExit("anchor apply: wrong result")
        wall = clock() - t_all
    lat.sort()
    return {"calls": n, "warmup": warm, "p50_us": percentile(lat, 50) * 1e6,
            "p99_us": percentile(lat, 99) * 1e6, "mean_us": sum(lat) / n * 1e6,
            "min_us": lat[0] * 1e6, "max_us": lat[-1] * 1e6, "wall_s": wall}


def calibrate(target_ms):
    """Rounds of spin() that take about target_ms here (median of 3)."""
    rounds, want = 1000, target_ms / 1000.0
    for _ in range(8):
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            spin(rounds)
            ts.append(time.perf_counter() - t0)
        med = sorted(ts)[1]
        if 0.97 * want < med < 1.03 * want:
            break
        rounds = max(1, int(rounds * (100 if med * 100 < want else want / med)))
    return rounds, med


def cmd_spin(target_ms, items, reps, workers):
    """c: the same CPU-bound map on Pool(1) and Pool(W); speedup = t1 / tW (medians)."""
    target_ms, items, reps, workers = float(target_ms), int(items), int(reps), int(workers)
    rounds, ms = calibrate(target_ms)
    want = [spin(rounds)] * items
    out = {"rounds": rounds, "calibrated_ms": ms * 1e3, "items": items}
    for w, key in ((1, "times_1_s"), (workers, "times_w_s")):
        times = []
        with multiprocessing.Pool(w) as pool:
            pool.map(spin, [rounds] * w)  # warm-up: every worker once
            for _ in range(reps):
                t0 = time.perf_counter()
                got = pool.map(spin, [rounds] * items)
                times.append(time.perf_counter() - t0)
                if got != want:
                    raise SystemExit("anchor spin: wrong results")
        out[key] = times
    return out


def cmd_imap(n, workers, chunksize):
    """d: Pool(W).imap(square, generator, chunksize) over n items; time and peak RSS."""
    n, workers, chunksize = int(n), int(workers), int(chunksize)
    base, cpu0 = peak_rss_kib()[0], self_cpu_s()
    t0 = time.perf_counter()
    with multiprocessing.Pool(workers) as pool:
        count = 0
        for i, r in enumerate(pool.imap(square, (i for i in range(n)), chunksize)):
            if r != i * i:
                raise SystemExit("anchor imap: item %d is %r" % (i, r))
            count += 1
        pool.close()
        pool.join()
    wall = time.perf_counter() - t0
    if count != n:
        raise SystemExit("anchor imap: %d results for %d items" % (count, n))
    self_kib, child_kib = peak_rss_kib()
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"items": n, "chunksize": chunksize, "wall_s": wall, "peak_rss_kib": self_kib,
            "start_rss_kib": base, "worker_peak_rss_kib": child_kib,
            "parent_cpu_s": self_cpu_s() - cpu0, "workers_cpu_s": ch.ru_utime + ch.ru_stime}


def cmd_poolmap_rss(n, workers):
    """d (note): Pool(W).map(square, range(n)): its peak RSS, for comparison."""
    n, workers = int(n), int(workers)
    t0 = time.perf_counter()
    with multiprocessing.Pool(workers) as pool:
        got = pool.map(square, range(n))
        pool.close()
        pool.join()
    wall = time.perf_counter() - t0
    if len(got) != n or got[-1] != (n - 1) * (n - 1):
        raise SystemExit("anchor poolmap: wrong results")
    self_kib, child_kib = peak_rss_kib()
    return {"items": n, "wall_s": wall, "peak_rss_kib": self_kib,
            "worker_peak_rss_kib": child_kib}


def cmd_skew(path, reps, workers):
    """e: Pool(W).map(sleep_ms, items) with the default chunksize; items from a file."""
    reps, workers = int(reps), int(workers)
    with open(path) as f:
        items = json.load(f)
    times = []
    with multiprocessing.Pool(workers) as pool:
        pool.map(sleep_ms, [0] * workers)
        for _ in range(reps):
            t0 = time.perf_counter()
            got = pool.map(sleep_ms, items)
            times.append(time.perf_counter() - t0)
            if got != items:
                raise SystemExit("anchor skew: wrong results")
    return {"items": len(items), "times_s": times}


def cmd_clients(nclients, napplies, workers):
    """f: nclients threads sharing one Pool(W), each doing napplies applies, all checked."""
    nclients, napplies, workers = int(nclients), int(napplies), int(workers)
    errors = []
    with multiprocessing.Pool(workers) as pool:
        pool.map(square, range(workers))
        start = threading.Barrier(nclients + 1)

        def client(cid):
            start.wait()
            for k in range(napplies):
                x = cid * napplies + k
                r = pool.apply(square, (x,))
                if r != x * x:
                    errors.append("client %d: square(%d) = %r" % (cid, x, r))
                    return

        threads = [threading.Thread(target=client, args=(c,)) for c in range(nclients)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        start.wait()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    if errors:
        raise SystemExit("anchor clients: " + "; ".join(errors[:5]))
    req = nclients * napplies
    return {"clients": nclients, "applies": napplies, "requests": req, "wall_s": wall,
            "rps": req / wall}

def mandelbrot_row(y, w, h, max_iter):
    """g: escape counts of row y, the same arithmetic as examples/modules/textstats.c."""
    row = []
    ci = -1.5 + 3.0 * y / h
    for x in range(w):
        cr = -2.0 + 3.0 * x / w
        zr = zi = 0.0
        n = 0
        while n < max_iter and zr * zr + zi * zi <= 4.0:
            t = zr * zr - zi * zi + cr
            zi = 2.0 * zr * zi + ci
            zr = t
            n += 1
        row.append(n)
    return row


def rows_digest(rows):
    """sha256 of the rows as compact JSON: both sides of g check against it."""
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def cmd_mandelbrot(w, h, max_iter, reps, workers):
    """g: Pool(W).starmap(mandelbrot_row, every row), default chunksize, timed."""
    w, h, max_iter, reps, workers = int(w), int(h), int(max_iter), int(reps), int(workers)
    args = [(y, w, h, max_iter) for y in range(h)]
    times = []
    with multiprocessing.Pool(workers) as pool:
        want = rows_digest(pool.starmap(mandelbrot_row, args))  # warm-up
        for _ in range(reps):
            t0 = time.perf_counter()
            got = pool.starmap(mandelbrot_row, args)
            times.append(time.perf_counter() - t0)
            if rows_digest(got) != want:
                raise SystemExit("anchor mandelbrot: results differ between runs")
    return {"rows": h, "times_s": times, "digest": want}


def add(a, b):
    return a + b


def cmd_applyasync(n, reps, workers):
    """h: n apply_async(add, (i, 1)) at once, then every get(); REPS timed after a warm-up."""
    n, reps, workers = int(n), int(reps), int(workers)
    times = []
    with multiprocessing.Pool(workers) as pool:
        for r in range(reps + 1):
            t0 = time.perf_counter()
            res = [pool.apply_async(add, (i, 1)) for i in range(n)]
            got = [x.get() for x in res]
            if r:
                times.append(time.perf_counter() - t0)
            if got != [i + 1 for i in range(n)]:
                raise SystemExit("anchor applyasync: wrong results")
    return {"requests": n, "times_s": times}


def cmd_mapwhole(n, workers):
    """i: the whole process: Pool(W).map(square, range(n)), results written to stdout."""
    n, workers = int(n), int(workers)
    with multiprocessing.Pool(workers) as pool:
        out = pool.map(square, range(n))
    sys.stdout.write("\n".join(map(str, out)) + "\n")
    raise SystemExit(0)


COMMANDS = {"applyasync": cmd_applyasync, "mapwhole": cmd_mapwhole, "map": cmd_map, "mapcpu": cmd_mapcpu, "apply": cmd_apply, "spin": cmd_spin, "imap": cmd_imap,
            "poolmap-rss": cmd_poolmap_rss, "skew": cmd_skew, "clients": cmd_clients,
            "mandelbrot": cmd_mandelbrot}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        raise SystemExit("usage: anchor.py {%s} ARGS..." % ",".join(COMMANDS))
    print(json.dumps(COMMANDS[sys.argv[1]](*sys.argv[2:])))
