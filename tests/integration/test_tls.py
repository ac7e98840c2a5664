"""Remote clients: --listen tls:// (mutual TLS) and loopback tcp://, every limit on TCP.

A throwaway CA, server and client certificates are made with the openssl CLI
in the case's temp dir; only loopback addresses, ports found free by binding
port 0 first.
"""

import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import Daemon, check, check_eq, check_error, check_results, wait_until

sys.path.insert(0, os.path.join(harness.SRCROOT, "python"))
import poold  # noqa: E402  (from the source tree, not an installed copy)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class PKI:
    """A CA, the daemon's certificate (127.0.0.1, localhost), client certificates."""

    def __init__(self):
        if not shutil.which("openssl"):
            raise harness.Skip("the openssl command is not installed")
        self.dir = tempfile.mkdtemp(prefix="poold-pki-")
        with open(self.path("ext.cnf"), "w") as f:
            f.write("[srv]\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth\n[cli]\nextendedKeyUsage=clientAuth\n")
        self.ca("ca")
        self.ca("otherca")
        self.cert("srv", "localhost", "ca", "srv")
        for name in ("alice", "bob"):
            self.cert(name, name, "ca", "cli")
        self.cert("mallory", "mallory", "otherca", "cli")
        self.expired = self.make_expired()

    def path(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj",
                "/CN=" + name, cwd=self.dir)

    def csr(self, name, cn):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
                cwd=self.dir)

    def cert(self, name, cn, ca, ext):
        self.csr(name, cn)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-set_serial", str(abs(hash(name)) % 100000 + 2), "-days", "2", "-extfile",
                "ext.cnf", "-extensions", ext, "-out", name + ".pem", cwd=self.dir)

    def make_expired(self):
        """A client certificate valid only in 2020 ('openssl ca' takes a start date)."""
        self.csr("old", "old")
        with open(self.path("ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
                    "serial = serial\ndefault_md = sha256\npolicy = p\n"
                    "[p]\ncommonName = supplied\n")
        open(self.path("index.txt"), "w").close()
        with open(self.path("serial"), "w") as f:
            f.write("1000\n")
        try:
            openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                    "-in", "old.csr", "-out", "old.pem", "-startdate", "20200101000000Z",
                    "-enddate", "20200102000000Z", "-notext", cwd=self.dir)
        except subprocess.CalledProcessError as e:
            print("cannot make an expired certificate: %s" % e.stderr.decode(errors="replace"))
            return False
        return True

    def client_files(self, name):
        return self.path(name + ".pem"), self.path(name + ".key")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class TLSClient(harness.Client):
    """harness.Client over TCP, with TLS when ctx is given (blocking with a deadline)."""

    def __init__(self, port, ctx=None, timeout=10.0):
        raw = socket.create_connection(("127.0.0.1", port), timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.path = "127.0.0.1:%d" % port
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if ctx else raw
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.eof = False
        self.stash = {}
        self.next_id = 1

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete reply line in time (%d bytes buffered)" % len(self.buf))
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not pending:
            select.select([self.sock], [], [], left)
        try:
            chunk = self.sock.recv(1 << 20)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def send_raw(self, data, timeout=harness.REPLY_TIMEOUT):
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = self.sock.send(view[:1 << 16])
                view = view[n:]
                continue
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("send blocked for %.1fs (%d bytes left)" % (timeout, len(view)))
            select.select([], [self.sock], [], min(left, 0.5))


class Remote:
    """A daemon listening on tls:// and loopback tcp:// beside its Unix socket."""

    def __init__(self, workers=2, args=(), config=None):
        self.pki = PKI()
        self.tls_port, self.tcp_port = free_port(), free_port()
        p = self.pki.path
        self.daemon = Daemon(workers=workers, config=config, args=[
            "--listen", "tls://127.0.0.1:%d" % self.tls_port,
            "--listen", "tcp://127.0.0.1:%d" % self.tcp_port,
            "--tls-cert", p("srv.pem"), "--tls-key", p("srv.key"), "--tls-ca", p("ca.pem")] +
            list(args))

    def __enter__(self):
        try:
            self.daemon.start()
        except BaseException:
            self.daemon.cleanup()
            self.pki.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.daemon.cleanup()
        self.pki.cleanup()

    def context(self, who="alice", ca="ca"):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.pki.path(ca + ".pem"))
        if who:
            ctx.load_cert_chain(*self.pki.client_files(who))
        return ctx

    def tls(self, who="alice", timeout=10.0):
        return TLSClient(self.tls_port, self.context(who), timeout)

    def tcp(self, timeout=10.0):
        return TLSClient(self.tcp_port, None, timeout)

    def poolctl(self, *args, env=None, who="alice"):
        cert, key = self.pki.client_files(who)
        argv = [harness.poolctl_bin(), "--connect", "tls://127.0.0.1:%d" % self.tls_port,
                "--cert", cert, "--key", key, "--ca", self.pki.path("ca.pem")] + list(args)
        return subprocess.run(argv, capture_output=True, timeout=60, env=env)


def serves(r, who, what):
    """The connected client who still gets a map answered."""
    check_results(who.call({"op": "map", "fn": "square", "args": [7, 8]}, timeout=10), [49, 64],
                  "%s: a connected client is served" % what)
    with r.tls() as c:
        check_results(c.call({"op": "map", "fn": "square", "args": [3]}, timeout=10), [9],
                      "%s: a new client is served" % what)


def test_poolctl_map():
    with Remote() as r:
        out = r.poolctl("map", "square", "1", "2", "3")
        check_eq(out.returncode, 0, "poolctl map over TLS (stderr %r)" % out.stderr)
        check_eq(out.stdout.split(), [b"1", b"4", b"9"], "poolctl map over TLS")
        # The same through the environment, streaming stdin.
        cert, key = r.pki.client_files("bob")
        env = dict(os.environ, POOLD_ADDRESS="tls://localhost:%d" % r.tls_port,
                   POOLD_CERT=cert, POOLD_KEY=key, POOLD_CA=r.pki.path("ca.pem"))
        out = subprocess.run([harness.poolctl_bin(), "map", "square", "-"],
                             input=b"".join(b"%d\n" % i for i in range(20000)),
                             capture_output=True, timeout=60, env=env)
        check_eq(out.returncode, 0, "poolctl map - with POOLD_ADDRESS (stderr %r)" % out.stderr)
        check_eq([int(x) for x in out.stdout.split()], [i * i for i in range(20000)],
                 "20,000 items streamed over TLS")
        out = subprocess.run([harness.poolctl_bin(), "--connect",
                              "tcp://127.0.0.1:%d" % r.tcp_port, "apply", "add", "2", "3"],
                             capture_output=True, timeout=60)
        check_eq(out.stdout.strip(), b"5", "poolctl apply over loopback tcp://")
        # The status names TLS clients by their certificate.
        with r.tls("bob") as b:
            check(b.call({"op": "ping"}).get("ok"), "ping over TLS")
            st = r.daemon.call({"op": "status"})["status"]
            names = [c["name"] for c in st["remote_clients"] if c["tls"]]
            check_eq(names, ["bob"], "remote_clients in status")
        check("client bob (127.0.0.1:" in r.daemon.log(), "the log names the client")


def test_socat_map():
    if not shutil.which("socat"):
        raise harness.Skip("socat is not installed")
    with Remote() as r:
        cert, key = r.pki.client_files("alice")
        line = b'{"id":1,"op":"map","fn":"square","args":[1,2,3]}\n'
        out = subprocess.run(
            ["socat", "-t", "30", "-", "OPENSSL:127.0.0.1:%d,cert=%s,key=%s,cafile=%s" %
             (r.tls_port, cert, key, r.pki.path("ca.pem"))],
            input=line, capture_output=True, timeout=60)
        check_eq(out.stdout, b'{"id":1,"ok":true,"results":[1,4,9]}\n',
                 "socat one-liner (stderr %r)" % out.stderr)
        check_eq(out.returncode, 0, "socat exit status (stderr %r)" % out.stderr)


def test_python_map():
    with Remote() as r:
        cert, key = r.pki.client_files("alice")
        with poold.Pool(address="tls://127.0.0.1:%d" % r.tls_port, cert=cert, key=key,
                        ca=r.pki.path("ca.pem")) as p:
            check_eq(p.map("square", range(50000)), [i * i for i in range(50000)],
                     "Pool.map over TLS")
            check_eq(list(p.imap("square", range(20000))), [i * i for i in range(20000)],
                     "Pool.imap over TLS")
            res = [p.apply_async("add", (i, 1)) for i in range(2000)]
            check_eq([x.get(30) for x in res], [i + 1 for i in range(2000)],
                     "2,000 apply_async over TLS")
        with poold.Pool(address="tls://127.0.0.1:%d" % r.tls_port, ca=r.pki.path("ca.pem")) as p:
            try:
                p.map("square", [1])
                check(False, "a Pool without a certificate was served")
            except poold.PooldError as e:
                check("certificate" in str(e), "the refusal says why: %s" % e)


def refused(r, ctx, what):
    """A TLS client with ctx is refused: at the handshake or its first request."""
    try:
        with TLSClient(r.tls_port, ctx, timeout=10) as c:
            c.send({"op": "map", "fn": "square", "args": [1]})
            line = c.recv_line(timeout=10)
            check(False, "%s: served: %r" % (what, line))
    except (ssl.SSLError, EOFError, ConnectionResetError, BrokenPipeError):
        pass


def test_refused_clients():
    with Remote() as r, r.tls() as good:
        serves(r, good, "before")
        refused(r, r.context(who=None), "no client certificate")
        serves(r, good, "after a client without a certificate")
        other = r.context(who=None)
        other.load_cert_chain(*r.pki.client_files("mallory"))
        refused(r, other, "a certificate from another CA")
        serves(r, good, "after another CA's certificate")
        if r.pki.expired:
            old = r.context(who=None)
            old.load_cert_chain(*r.pki.client_files("old"))
            refused(r, old, "an expired certificate")
            serves(r, good, "after an expired certificate")
        with socket.create_connection(("127.0.0.1", r.tls_port), 10) as p:
            p.sendall(b'{"id":1,"op":"ping"}\n')
            p.settimeout(10)
            data = b""
            while True:
                chunk = p.recv(4096)
                if not chunk:
                    break
                data += chunk
            check_error(json.loads(data), "forbidden", "plain text on the TLS port")
        serves(r, good, "after a plaintext client")
        log = r.daemon.log()
        for want in ("peer did not return a certificate", "unable to get local issuer",
                     "plain text on a TLS port") + (("expired",) if r.pki.expired else ()):
            check(want in log, "the log says %r:\n%s" % (want, log))
        if not r.pki.expired:
            raise harness.Skip("openssl ca could not make an expired certificate (see above)")


def start_fails(args, want, what, config=None):
    """poold with args exits at start with status 1 and says want."""
    d = tempfile.mkdtemp(prefix="poold-it-")
    try:
        argv = [harness.poold_bin(), "--socket", os.path.join(d, "s.sock"), "--workers", "1"]
        if config is not None:
            fd = os.open(os.path.join(d, "poold.conf"), os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(config)
            argv += ["--config", os.path.join(d, "poold.conf")]
        p = harness.run(argv + list(args), timeout=30)
        err = p.stderr.decode(errors="replace")
        check_eq(p.returncode, 1, "%s: exit status (stderr %r)" % (what, err))
        check(want in err, "%s: the error says %r: %r" % (what, want, err))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_listen_addresses():
    start_fails(["--listen", "tcp://0.0.0.0:%d" % free_port()], "loopback",
                "plain tcp:// on 0.0.0.0")
    start_fails(["--listen", "tls://127.0.0.1:%d" % free_port()], "needs tls_cert",
                "tls:// without a certificate")
    start_fails(["--listen", "udp://127.0.0.1:1234"], "expected tls://", "an unknown scheme")
    port = free_port()
    with Daemon(config="[poold]\nlisten = tcp://127.0.0.1:%d\n" % port) as d:
        with TLSClient(port) as c:
            check_results(c.call({"op": "map", "fn": "square", "args": [4]}), [16],
                          "tcp://127.0.0.1 (the listen key) serves")
        check("plain, loopback only" in d.log(), "the log says the listener is plain")


def test_allow_list():
    cfg = "[client alice]\nfunctions = square sleep_ms\n[client carol]\n"
    with Remote(config=cfg) as r:
        with r.tls("alice") as a, r.tls("bob") as b:
            check_results(a.call({"op": "map", "fn": "square", "args": [2]}), [4],
                          "alice may call square")
            check_error(a.call({"op": "apply", "fn": "add", "args": [1, 2]}), "forbidden",
                        "alice may not call add")
            check_eq(b.call({"op": "apply", "fn": "add", "args": [1, 2]}).get("result"), 3,
                     "bob (no [client] section) may call add")
            check_results(a.call({"op": "map", "fn": "square", "args": [3]}), [9],
                          "alice after a refusal")
        # The allow-list applies to TLS clients; the Unix socket is the daemon's own user.
        check_eq(r.daemon.call({"op": "apply", "fn": "add", "args": [1, 2]}).get("result"), 3,
                 "the Unix socket is not restricted")
    start_fails([], "not a function", "an allow-list naming no function",
                config="[client x]\nfunctions = nosuch\n")


def limit_clients(r):
    """A client factory per transport: TLS and plain loopback TCP."""
    return [("tls", r.tls), ("tcp", r.tcp)]


def test_max_connections():
    with Remote(workers=1, args=["--max-connections", "2"]) as r:
        for name, make in limit_clients(r):
            a, b = make(), make()
            try:
                check_eq(a.call({"op": "ping"}).get("ok"), True, "%s: connection 1" % name)
                check_eq(b.call({"op": "ping"}).get("ok"), True, "%s: connection 2" % name)
                result = {}

                def third_ping():
                    # TLS: the handshake itself waits in the backlog.
                    try:
                        with make(timeout=30) as c:
                            result["reply"] = c.call({"id": "t", "op": "ping"}, timeout=30)
                    except Exception as e:  # reported by the check below
                        result["error"] = e

                t = threading.Thread(target=third_ping, daemon=True)
                t.start()
                t.join(0.5)
                check(t.is_alive(), "%s: a third client was served at the limit" % name)
                st = a.call({"op": "status"})["status"]
                check_eq(st["connections"], 2, "%s: connections at the limit" % name)
                b.close()
                t.join(20)
                check_eq(result.get("reply", {}).get("ok"), True,
                         "%s: the waiting client's ping (%r)" % (name, result))
            finally:
                a.close()
                b.close()
            wait_until(lambda: r.daemon.call({"op": "status"})["status"]["connections"] == 1,
                       10, "%s: connections to close" % name)


def test_max_inflight():
    with Remote(workers=2, args=["--max-inflight", "2"]) as r:
        for name, make in limit_clients(r):
            with make() as c:
                c.send({"id": "a", "op": "apply", "fn": "sleep_ms", "args": [500]})
                c.send({"id": "b", "op": "map", "fn": "sleep_ms", "args": [500]})
                check_error(c.call({"id": "c", "op": "map", "fn": "square", "args": [1]}),
                            "busy", "%s: a third request with --max-inflight 2" % name, id_="c")
                check_eq(c.recv_id("a", timeout=20).get("result"), 500, "%s: request a" % name)
                check_results(c.recv_id("b", timeout=20), [500], "%s: request b" % name)


def test_line_too_large():
    with Remote(args=["--max-line", "4096"]) as r:
        for name, make in limit_clients(r):
            with make() as c:
                big = '{"id":1,"op":"map","fn":"square","args":[%s]}\n' % ",".join(["1"] * 3000)
                c.send_raw(big)
                check_error(c.recv(), "too_large", "%s: a line over --max-line" % name)
                check_results(c.call({"op": "map", "fn": "square", "args": [5]}), [25],
                              "%s: the connection after too_large" % name)


def test_never_reads():
    for name in ("tls", "tcp"):
        with Remote(workers=2) as r:
            make = dict(limit_clients(r))[name]
            hog = make()
            big = "b" * (256 * 1024)
            sent = [0]

            def flood():
                try:
                    for i in range(400):
                        hog.send_raw('{"id":%d,"op":"map","fn":"echo","args":["%s"]}\n' %
                                     (i, big), timeout=2)
                        sent[0] += 1
                except (TimeoutError, OSError):
                    pass

            t = threading.Thread(target=flood, daemon=True)
            t.start()
            try:
                wait_until(lambda: not t.is_alive(), 60, "%s: the flooding client to stall" % name)
                check(sent[0] < 400, "%s: the daemon took all 400 requests (100 MB of replies) "
                      "from a client that never reads" % name)
                with r.tls("bob") as b:
                    t0 = time.monotonic()
                    check_results(b.call({"op": "map", "fn": "square", "args": [9]}, timeout=10),
                                  [81], "%s: a reading client beside a non-reading one" % name)
                    check(time.monotonic() - t0 < 5, "%s: the reading client waited" % name)
                rss_kb = harness.proc_status_kib(r.daemon.pid, "VmRSS")
                # ASan's shadow memory and quarantine make RSS meaningless there.
                check(harness.sanitized(r.daemon) or rss_kb < 160 * 1024,
                      "%s: poold RSS is %d MB with a non-reading client" % (name, rss_kb // 1024))
                print("%s: non-reading client: %d requests taken, poold RSS %d MB" %
                      (name, sent[0], rss_kb // 1024))
            finally:
                hog.close()
            wait_until(lambda: r.daemon.call({"op": "status"})["status"]["connections"] == 1,
                       30, "%s: the hog's connection to close" % name)


def test_half_close():
    with Remote() as r:
        # TCP FIN without close_notify: the request is answered, then the daemon closes.
        with r.tls() as c:
            c.send({"id": 1, "op": "map", "fn": "sleep_ms", "args": [200, 200]})
            c.sock.setblocking(True)
            socket.socket.shutdown(c.sock, socket.SHUT_WR)
            c.sock.setblocking(False)
            check_results(c.recv_id(1, timeout=20), [200, 200], "answered after a FIN")
            try:
                c.recv_line(timeout=10)
                check(False, "the daemon kept the half-closed connection open")
            except (EOFError, ssl.SSLError):
                pass
        # A client gone during the handshake costs nothing.
        with socket.create_connection(("127.0.0.1", r.tls_port), 10):
            pass
        wait_until(lambda: r.daemon.call({"op": "status"})["status"]["connections"] == 1, 10,
                   "connections to close")


harness.main(globals())
