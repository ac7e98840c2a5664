#!/usr/bin/env python3
"""Benchmark row for worker hosts: a CPU-bound map (spin) on a supervisor with
local workers plus host agents on loopback, vs the supervisor alone with the
same total number of workers. Prints both times and their ratio (the cost of the
sealed network path). Usage: hosts_bench.py [POOLD_BIN] [TOTAL_WORKERS] [ITEMS]
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

POOLD = sys.argv[1] if len(sys.argv) > 1 else "build/daemon/poold"
TOTAL = int(sys.argv[2]) if len(sys.argv) > 2 else 4
ITEMS = int(sys.argv[3]) if len(sys.argv) > 3 else 4000
ROUNDS = 200000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(path, obj, timeout=600):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(dict(obj, id=1)).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                raise EOFError("poold closed the connection")
            buf += chunk
    return json.loads(buf)


def wait(cond, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


def timed_map(sock):
    call(sock, {"op": "map", "fn": "spin", "args": [ROUNDS] * (TOTAL * 4)})  # warm-up
    t0 = time.monotonic()
    r = call(sock, {"op": "map", "fn": "spin", "args": [ROUNDS] * ITEMS})
    if not r.get("ok") or len(r["results"]) != ITEMS:
        raise SystemExit("map failed: %s" % str(r)[:300])
    return time.monotonic() - t0


def run(tmp, local, hosts):
    sock = os.path.join(tmp, "s%d.sock" % hosts)
    key = os.path.join(tmp, "k")
    port = free_port()
    env = dict(os.environ, TMPDIR=tmp)
    argv = [POOLD, "--socket", sock, "--workers", str(local)]
    if hosts:
        argv += ["--hosts", "tcp://127.0.0.1:%d" % port, "--cluster-key", key]
    procs = [subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)]
    try:
        wait(lambda: os.path.exists(sock) and call(sock, {"op": "ping"}).get("ok"), "poold")
        per = (TOTAL - local) // max(hosts, 1)
        for i in range(hosts):
            procs.append(subprocess.Popen(
                [POOLD, "--join", "tcp://127.0.0.1:%d" % port, "--host-endpoint",
                 "tcp://127.0.0.1:%d" % free_port(), "--cluster-key", key,
                 "--workers", str(per)], env=env, stderr=subprocess.DEVNULL))
        wait(lambda: sum(h["state"] == "ready" for h in
                         call(sock, {"op": "status"})["status"]["hosts"]) == hosts, "hosts")
        return timed_map(sock)
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(30)


def main():
    tmp = tempfile.mkdtemp(prefix="poold-hb-", dir="/tmp")
    try:
        subprocess.run([POOLD, "--keygen", os.path.join(tmp, "k")], check=True,
                       stdout=subprocess.DEVNULL)
        alone = run(tmp, TOTAL, 0)
        local = max(TOTAL // 2, 1)
        spread = run(tmp, local, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("hosts: %d x spin(%d) with %d workers: supervisor alone %.3f s, "
          "supervisor (%d) + 1 loopback host (%d) %.3f s, ratio %.2f"
          % (ITEMS, ROUNDS, TOTAL, alone, local, TOTAL - local, spread, spread / alone))


if __name__ == "__main__":
    main()
