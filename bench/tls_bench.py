#!/usr/bin/env python3
"""Benchmark row for remote clients: 10,000 small requests (apply square) over
--listen tls:// vs the Unix socket, on one connection each, pipelined (all
written, then all read) and one at a time (a round trip each); also the cost
of a TLS connection (handshake with client certificates). Prints the times and
the ratios. Certificates are made with the openssl CLI in a temp dir.
Usage: tls_bench.py [POOLD_BIN] [REQUESTS]
"""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

POOLD = sys.argv[1] if len(sys.argv) > 1 else "build/daemon/poold"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
CONNECTS = 200
ROUNDS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(tmp, *args):
    subprocess.run(["openssl"] + list(args), cwd=tmp, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki(tmp):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(tmp, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=bench-ca")
    with open(os.path.join(tmp, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for name, ext in (("srv", ["-extfile", "san.cnf"]), ("cli", [])):
        openssl(tmp, "req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj",
                "/CN=" + name)
        openssl(tmp, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", str(len(name) + (name == "srv")), "-days", "1", "-out",
                name + ".pem", *ext)


def read_lines(s, n):
    """Read until n newlines arrived; returns the bytes."""
    buf, got = bytearray(), 0
    while got < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit("poold closed the connection")
        got += chunk.count(b"\n")
        buf += chunk
    return bytes(buf)


def lines():
    return b"".join(b'{"id":%d,"op":"apply","fn":"square","args":[%d]}\n' % (i, i)
                    for i in range(N))


def pipelined(s):
    data = lines()
    t0 = time.monotonic()
    s.sendall(data)
    out = read_lines(s, N)
    dt = time.monotonic() - t0
    if out.count(b'"ok":true') != N:
        raise SystemExit("pipelined: not every request succeeded")
    return dt


def one_at_a_time(s):
    reqs = [b'{"id":%d,"op":"apply","fn":"square","args":[%d]}\n' % (i, i) for i in range(N)]
    t0 = time.monotonic()
    for r in reqs:
        s.sendall(r)
        read_lines(s, 1)
    return time.monotonic() - t0


def best(connect, fn):
    times = []
    for _ in range(ROUNDS):
        with connect() as s:
            fn(s)  # warm-up on this connection
            times.append(fn(s))
    return min(times)


def main():
    tmp = tempfile.mkdtemp(prefix="poold-tb-", dir="/tmp")
    proc = None
    try:
        make_pki(tmp)
        sock, port = os.path.join(tmp, "s.sock"), free_port()
        p = lambda name: os.path.join(tmp, name)  # noqa: E731
        proc = subprocess.Popen(
            [POOLD, "--socket", sock, "--workers", "2", "--max-inflight", str(N), "--listen",
             "tls://127.0.0.1:%d" % port, "--tls-cert", p("srv.pem"), "--tls-key",
             p("srv.key"), "--tls-ca", p("ca.pem")],
            env=dict(os.environ, TMPDIR=tmp), stderr=subprocess.DEVNULL)
        ctx = ssl.create_default_context(cafile=p("ca.pem"))
        ctx.load_cert_chain(p("cli.pem"), p("cli.key"))

        def unix():
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            return s

        def tls():
            raw = socket.create_connection(("127.0.0.1", port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

        end = time.monotonic() + 30
        while True:
            try:
                with unix() as s:
                    s.sendall(b'{"id":1,"op":"ping"}\n')
                    read_lines(s, 1)
                break
            except OSError:
                if time.monotonic() > end:
                    raise SystemExit("poold did not start")
                time.sleep(0.05)
        rows = []
        for name, fn in (("pipelined", pipelined), ("one at a time", one_at_a_time)):
            u, t = best(unix, fn), best(tls, fn)
            rows.append("%s: unix %.3f s, tls %.3f s, ratio %.2f" % (name, u, t, t / u))
        t0 = time.monotonic()
        for _ in range(CONNECTS):
            with tls() as s:
                s.sendall(b'{"id":1,"op":"ping"}\n')
                read_lines(s, 1)
        hs = (time.monotonic() - t0) / CONNECTS
        print("tls: %d small requests (apply square) on one connection; %s; a TLS connection "
              "(handshake, ping, close) %.2f ms" % (N, "; ".join(rows), hs * 1000))
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
