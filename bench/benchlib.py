"""What the extra bench scripts (programs_bench.py, pyclient_bench.py) share: the
processes they start, a private poold with a configuration, one request, a timing."""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
START_TIMEOUT = 30.0


class BenchError(Exception):
    pass


class Run:
    """The run's temp dir, the process groups it starts (TMP/pgids for run.sh's trap)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def popen(self, argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        with open(os.path.join(self.tmp, "pgids"), "a") as f:
            f.write("%d\n" % p.pid)
        return p

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()


def call(sock, obj, timeout=600.0):
    """One request on a fresh connection; the reply object."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        buf = bytearray()
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                raise BenchError("poold closed the connection")
            buf += chunk
        return json.loads(buf)
    finally:
        s.close()


def start_poold(run, poold, workers, name, conf_text):
    """A private poold (TMP/NAME.sock, TMP/NAME.log) with conf_text as its configuration,
    once it answers and every worker is idle; (process, socket)."""
    conf = os.path.join(run.tmp, name + ".conf")
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(conf_text)
    sock = os.path.join(run.tmp, name + ".sock")
    env = dict(os.environ, TMPDIR=run.tmp)
    env.pop("POOLD_SOCKET", None)
    with open(os.path.join(run.tmp, name + ".log"), "ab") as log:
        p = run.popen([poold, "--socket", sock, "--workers", str(workers), "--config", conf],
                      stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if p.poll() is not None:
            raise BenchError("poold exited with %s" % p.returncode)
        try:
            if call(sock, {"id": 0, "op": "ping"}, 2).get("pid") == p.pid:
                st = call(sock, {"id": 0, "op": "status"}, 2)["status"]
                if all(s["state"] == "idle" for s in st["slots"]):
                    return p, sock
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise BenchError("poold not ready within %.0f s" % START_TIMEOUT)
        time.sleep(0.01)


def stop_poold(p):
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    if p.returncode != 0:
        raise BenchError("poold exited with %d after SIGTERM" % p.returncode)


def timed(f, reps):
    """Median and best of reps timed calls of f (after one warm-up call)."""
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def program_conf(name, prog):
    """A [function NAME] section serving NAME by the Python worker program prog."""
    return ("[function %s]\nkind = program\ncommand = %s %s\nenv = PYTHONPATH=%s\n"
            "preload = yes\n" % (name, sys.executable, prog,
                                 os.path.join(ROOT, "python")))
