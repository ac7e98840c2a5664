"""poold under systemd, without PID 1: socket activation (systemd-socket-activate
and a socket the test holds itself, as systemd does across restarts), the
sd_notify(3) sequence and watchdog read from a test-side NOTIFY_SOCKET, the
units' hardening score and syntax, and the access group (--socket-group)."""

import grp
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time

import harness
from harness import Daemon, check, check_eq, check_error, check_results

STATE_KEYS = ("READY", "RELOADING", "STOPPING")


class Notify:
    """A test-side NOTIFY_SOCKET: a datagram socket that records each message
    (its NAME=VALUE lines as a dict), when it came and the sender's pid."""

    def __init__(self, path=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if path is None:
            name = "poold-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.sock.bind(path)
            self.address = path
        self.sock.setblocking(False)
        self.msgs = []  # (monotonic time, dict, sender pid)

    def close(self):
        self.sock.close()

    def drain(self, wait=0.0):
        """Read what has arrived (waiting up to `wait` seconds for the first)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                harness.select.select([self.sock], [], [], min(left, 0.05))
                continue
            pid = None
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", raw[:12])[0]
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            self.msgs.append((time.monotonic(), fields, pid))

    def wait(self, pred, timeout, what, since=None):
        """Wait for a message satisfying pred(fields), among those from index
        `since` on (default: those still to come); returns (time, fields, pid)."""
        seen = len(self.msgs) if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            for m in self.msgs[seen:]:
                if pred(m[1]):
                    return m
            seen = len(self.msgs)
            left = deadline - time.monotonic()
            check(left > 0, "timed out waiting for %s; got %s" % (what, self.msgs))
            self.drain(min(left, 0.2))

    def states(self):
        return [k for _, f, _ in self.msgs for k in f if k in STATE_KEYS]


class Activated(Daemon):
    """A poold handed its listening socket: through systemd-socket-activate
    (how="activate"), or as fd 3 with LISTEN_FDS/LISTEN_PID from a socket
    this test holds (how=a listening socket object), as systemd does; or
    started by hand (how=None). It runs in `dir` when given (else a new temp
    dir), on `sock` when given (else DIR/s.sock), with an empty config."""

    def __init__(self, how="activate", notify=None, env=None, dir=None, sock=None, **kw):
        super().__init__(env=env, **kw)
        self.how = how
        self.notify = notify
        self.dir = dir
        self.sock = sock

    def start(self):
        if self.dir is None:
            base = tempfile.gettempdir()
            self.dir = tempfile.mkdtemp(prefix="poold-it-",
                                        dir=base if len(base) <= 22 else "/tmp")
        self.sock = self.sock or os.path.join(self.dir, "s.sock")
        self.log_path = os.path.join(self.dir, "poold-%d.log" % len(os.listdir(self.dir)))
        env = dict(os.environ)
        for k in ("POOLD_SOCKET", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                  "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            env.pop(k, None)
        env.update(harness.SANITIZER_ENV)
        env["TMPDIR"] = self.dir
        if self.notify is not None:
            env["NOTIFY_SOCKET"] = self.notify.address
        env.update(self.extra_env)
        # An empty configuration: nothing from /etc/poold or ~/.config.
        self.config_path = os.path.join(self.dir, "poold.conf")
        if not os.path.exists(self.config_path):
            self.write_config(self.config or "")
        poold = [harness.poold_bin(), "--workers", str(self.workers), "--config",
                 self.config_path, "--socket", self.sock] + self.args
        preexec = harness._child_setup
        if self.how == "activate":
            sa = shutil.which("systemd-socket-activate")
            if not sa:
                raise harness.Skip("systemd-socket-activate is not installed")
            passed = [k for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "TMPDIR", "ASAN_OPTIONS",
                                  "UBSAN_OPTIONS") if k in env]
            argv = [sa, "-l", self.sock] + ["-E%s=%s" % (k, env[k]) for k in passed] + poold
        elif self.how is None:
            argv = poold
        else:
            listen_fd = self.how.fileno()

            def preexec():
                harness._child_setup()
                os.dup2(listen_fd, 3)
            env["LISTEN_FDS"] = "1"
            argv = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"'] + poold
        if self not in harness._live_daemons:
            harness._live_daemons.append(self)
            harness._case_daemons.append(self)
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=preexec,
                                         pass_fds=(3,) if preexec != harness._child_setup
                                         else ())
        self.wait_ready()

    def log(self):
        out = []
        for name in sorted(os.listdir(self.dir)) if self.dir else []:
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    out.append("== %s\n%s" % (name, f.read().decode(errors="replace")))
        return "\n".join(out) or "(no log)"


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat_line = f.read()
    return stat_line[stat_line.rfind(")") + 2:].split()[0]


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_notify_sequence():
    n = Notify()
    try:
        with Activated(workers=2, notify=n) as d:
            # The first connection made systemd-socket-activate exec poold: served at once.
            check_results(d.call({"op": "map", "fn": "square", "args": [1, 2, 3]}), [1, 4, 9],
                          "map on the inherited socket")
            n.wait(lambda f: f.get("READY") == "1", 30, "READY=1")
            for pid in d.worker_pids():
                env = environ_of(pid)
                leaked = sorted(k.decode() for k in env if k.startswith(
                    (b"NOTIFY_SOCKET", b"WATCHDOG_", b"LISTEN_")))
                check_eq(leaked, [], "systemd variables in worker %d's environment" % pid)
            before = monotonic_usec()
            d.signal(signal.SIGHUP)
            n.wait(lambda f: f.get("READY") == "1", 30, "READY=1 after the reload")
            after = monotonic_usec()
            d.wait_slots_idle()
            check_results(d.call({"op": "map", "fn": "square", "args": [4]}), [16],
                          "map after the reload")
            d.wait_slots_idle()
            # STATUS= follows the pool within a second.
            n.wait(lambda f: re.search(r"\b0 busy, 2 idle\b", f.get("STATUS", "")), 5,
                   "STATUS= with 2 idle workers", since=0)
            d.signal(signal.SIGTERM)
            check_eq(d.wait_exit(), 0, "poold's exit status")
            n.drain(0.1)
            check_eq(n.states(), ["READY", "RELOADING", "READY", "STOPPING"],
                     "the state notifications, in order")
            reloading = [f for _, f, _ in n.msgs if "RELOADING" in f][0]
            check(before <= int(reloading.get("MONOTONIC_USEC", -1)) <= after,
                  "MONOTONIC_USEC=%s not within the reload [%d, %d]" %
                  (reloading.get("MONOTONIC_USEC"), before, after))
            status = [f["STATUS"] for _, f, _ in n.msgs if "STATUS" in f]
            check(any(s.startswith("stopping") for s in status),
                  "no STATUS= saying it stops: %s" % status)
            check_eq([f for _, f, _ in n.msgs if "WATCHDOG" in f], [],
                     "WATCHDOG=1 without WATCHDOG_USEC")
            check_eq(sorted({p for _, _, p in n.msgs}), [d.pid],
                     "senders of the notifications (the supervisor alone)")
            st = os.lstat(d.sock)
            check(stat.S_ISSOCK(st.st_mode), "the inherited socket file was removed by poold")
    finally:
        n.close()


def test_watchdog_period():
    period_us = 400000
    with tempfile.TemporaryDirectory(prefix="poold-nt-") as tmp:
        n = Notify(os.path.join(tmp, "notify"))
        try:
            with Activated(workers=1, notify=n, env={"WATCHDOG_USEC": str(period_us)}) as d:
                n.wait(lambda f: f.get("READY") == "1", 30, "READY=1")
                # Count WATCHDOG=1 over a window: the ratio to the period says how often.
                n.drain()
                t0, first = time.monotonic(), len(n.msgs)
                while time.monotonic() - t0 < 2.0:
                    n.drain(0.05)
                window = time.monotonic() - t0
                got = sum(1 for _, f, _ in n.msgs[first:] if f.get("WATCHDOG") == "1")
                want = window / (period_us / 2e6)
                check(0.6 * want <= got <= 1.4 * want,
                      "%d WATCHDOG=1 in %.2fs; want about %.1f (every %d us)" %
                      (got, window, want, period_us // 2))
                # A stopped loop sends nothing (systemd would then restart it).
                d.signal(signal.SIGSTOP)
                try:
                    harness.wait_until(lambda: proc_state(d.pid) == "T", 5, "poold stopped")
                    n.drain()
                    stopped = len(n.msgs)
                    n.drain(0.8)
                    check_eq(n.msgs[stopped:], [], "notifications from a stopped daemon")
                finally:
                    d.signal(signal.SIGCONT)
                n.wait(lambda f: f.get("WATCHDOG") == "1", 5, "WATCHDOG=1 after SIGCONT")
                check_eq(d.stop(), 0, "poold's exit status")
        finally:
            n.close()


def test_restart_keeps_socket():
    base = tempfile.gettempdir()
    tmp = tempfile.mkdtemp(prefix="poold-it-", dir=base if len(base) <= 22 else "/tmp")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path = os.path.join(tmp, "held.sock")
        listener.bind(path)
        listener.listen(16)
        d1 = Activated(how=listener, workers=1, dir=tmp, sock=path)
        d1.start()
        check_results(d1.call({"op": "map", "fn": "square", "args": [5]}), [25],
                      "map served by the first daemon")
        check_eq(d1.stop(), 0, "first daemon's exit status")
        check(stat.S_ISSOCK(os.lstat(path).st_mode), "poold removed the socket it was given")
        # Nobody serves now, but the path still takes connections: the client waits.
        with harness.Client(path) as c:
            rid = c.send({"op": "map", "fn": "square", "args": [6, 7]})
            c.expect_silence(0.2)
            d2 = Activated(how=listener, workers=1, dir=tmp, sock=path)
            d2.start()
            check_results(c.recv_id(rid), [36, 49], "the queued client, served after the restart")
        check_eq(d2.stop(), 0, "second daemon's exit status")
        d1.dir = None  # d2 owns the directory now: clean it once
        d2.cleanup()
    finally:
        listener.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _analyze():
    exe = shutil.which("systemd-analyze")
    if not exe:
        raise harness.Skip("systemd-analyze is not installed")
    return exe


def _units(tmp):
    """The units from their templates, with the built binaries' directories."""
    src = os.path.join(harness.SRCROOT, "systemd")
    sub = {"@sbindir@": os.path.dirname(os.path.abspath(harness.poold_bin())),
           "@bindir@": os.path.dirname(os.path.abspath(harness.poolctl_bin()))}
    out = {}
    for rel in ("poold.service", "poold.socket", "poold-metrics.service",
                "poold-metrics.timer", "user/poold.service", "user/poold.socket"):
        with open(os.path.join(src, rel)) as f:
            text = f.read()
        for k, v in sub.items():
            text = text.replace(k, v)
        dst = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w") as f:
            f.write(text)
        out[rel] = dst
    return out


def test_hardening_score():
    exe = _analyze()
    with tempfile.TemporaryDirectory() as tmp:
        unit = _units(tmp)["poold.service"]
        p = harness.run([exe, "security", "--offline=yes", "--no-pager", unit], timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        if "--offline" in out and ("unrecognized" in out or "Unknown option" in out):
            raise harness.Skip("systemd-analyze has no --offline")
        m = re.search(r"Overall exposure level for poold\.service: ([0-9.]+)", out)
        check(m is not None, "no exposure level in systemd-analyze's output:\n%s" % out)
        check(float(m.group(1)) <= 2.0, "exposure %s > 2.0:\n%s" % (m.group(1), out))


def test_units_verify():
    exe = _analyze()
    with tempfile.TemporaryDirectory() as tmp:
        u = _units(tmp)
        system = [u[k] for k in ("poold.service", "poold.socket", "poold-metrics.service",
                                 "poold-metrics.timer")]
        p = harness.run([exe, "verify", "--man=no"] + system, timeout=60)
        check_eq(p.returncode, 0, "systemd-analyze verify (system units): %s" %
                 (p.stdout + p.stderr).decode(errors="replace"))
        p = harness.run([exe, "--user", "verify", "--man=no", u["user/poold.service"],
                         u["user/poold.socket"]], timeout=60, env={"XDG_RUNTIME_DIR": tmp})
        check_eq(p.returncode, 0, "systemd-analyze --user verify (user units): %s" %
                 (p.stdout + p.stderr).decode(errors="replace"))


# ------------------------------------------------------------ --socket-group

CLIENT = """
import os, socket, sys
gid, groups = int(sys.argv[2]), [int(g) for g in sys.argv[3].split(",") if g]
os.setgroups(groups)
os.setgid(gid)
os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect: %s" % e.strerror)
    sys.exit(0)
try:
    s.sendall(b'{"id":1,"op":"ping"}\\n')
except OSError:
    pass  # refused and closed before the request went out: the reply is still there
b = b""
while not b.endswith(b"\\n"):
    x = s.recv(4096)
    if not x:
        break
    b += x
sys.stdout.write(b.decode())
"""


def _as_nobody(sock, gid, groups):
    """Ping as uid nobody with this gid and these supplementary groups."""
    py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
    p = harness.run([py, "-c", CLIENT, sock, str(gid), ",".join(map(str, groups))], timeout=30)
    check_eq(p.returncode, 0, "client as nobody (stderr %r)" % p.stderr[-500:])
    out = p.stdout.decode().strip()
    if out.startswith("connect:"):
        return out
    return harness.json.loads(out or "null")


def test_socket_group():
    if os.geteuid() != 0:
        raise harness.Skip("needs root to make a group and connect as another user")
    name = "pooldt%s" % os.urandom(3).hex()
    p = harness.run(["groupadd", "-r", name], timeout=30)
    if p.returncode != 0:
        raise harness.Skip("groupadd failed: %r" % p.stderr[-300:])
    try:
        gid = grp.getgrnam(name).gr_gid
        nogroup = 65534
        base = tempfile.gettempdir()
        tmp = tempfile.mkdtemp(prefix="poold-it-", dir=base if len(base) <= 22 else "/tmp")
        os.chmod(tmp, 0o711)
        run_dir = os.path.join(tmp, "run")  # poold makes it: 0750, the group's
        with Activated(how=None, workers=1, args=["--socket-group", name], dir=tmp,
                       sock=os.path.join(run_dir, "s.sock")) as d:
            st = os.stat(run_dir)
            check_eq((oct(stat.S_IMODE(st.st_mode)), st.st_gid), (oct(0o750), gid),
                     "mode and group of the socket's directory")
            st = os.stat(d.sock)
            check_eq((oct(stat.S_IMODE(st.st_mode)), st.st_gid), (oct(0o660), gid),
                     "mode and group of the socket")
            r = _as_nobody(d.sock, nogroup, [gid])
            check(isinstance(r, dict) and r.get("ok") is True,
                  "nobody with the group as a supplementary group: %s" % (r,))
            r = _as_nobody(d.sock, gid, [])
            check(isinstance(r, dict) and r.get("ok") is True,
                  "nobody with the group as its primary group: %s" % (r,))
            r = _as_nobody(d.sock, nogroup, [])
            check_eq(r, "connect: Permission denied", "nobody outside the group, socket 0660")
            # poold checks the peer itself too, whatever the file's mode says.
            os.chmod(d.sock, 0o666)
            os.chmod(run_dir, 0o755)
            r = _as_nobody(d.sock, nogroup, [])
            check_error(r, "forbidden", "nobody outside the group")
            check_eq(d.call({"op": "ping"}).get("ok"), True, "ping as root")
            d.wait_quiet()
    finally:
        harness.run(["groupdel", name], timeout=30)


def test_socket_group_unknown():
    with tempfile.TemporaryDirectory(prefix="poold-it-") as tmp:
        sock = os.path.join(tmp, "s.sock")
        conf = os.path.join(tmp, "poold.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("[poold]\nsocket_group = nosuchgroup%s\n" % os.urandom(3).hex())
        p = harness.run([harness.poold_bin(), "--workers", "1", "--socket", sock,
                         "--config", conf], timeout=30, env={"TMPDIR": tmp})
        err = p.stderr.decode(errors="replace")
        check_eq(p.returncode, 1, "exit status with an unknown group (%s)" % err)
        check("no such group" in err, "no 'no such group' in: %s" % err)
        check(not os.path.exists(sock), "a socket was made anyway")
        p = harness.run([harness.poold_bin(), "--socket-group", ""], timeout=30)
        check_eq(p.returncode, 2, "exit status of --socket-group ''")
        check(b"takes a name" in p.stderr, "message for an empty group: %r" % p.stderr)


harness.main(globals())
