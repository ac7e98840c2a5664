"""Integration-test harness for poold: start the real daemon on a private
socket, talk to it over raw sockets, and make sure nothing is left behind.

Python 3 standard library only. Paths come from meson through the environment:
POOLD_BIN, POOLCTL_BIN, CLIENT_LIB_TEST, POOLD_TEST_DATA (tests/data).

A test file defines functions named test_*, and ends with
`harness.main(globals())`. Run it with case names to run those cases (meson
registers one test per case), with no argument to run all of them, or with
--list to print the names. Exit status: 0 passed, 1 failed, 77 skipped.
"""

import atexit
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
SRCROOT = os.path.dirname(os.path.dirname(HERE))

# Sanitizer settings for the daemon and its workers: the crash test hooks must
# die by their real signals, leaks and UB must fail loudly.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "handle_segv=0:handle_abort=0:detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}

# Lines in the daemon's log that fail the test whatever it checked.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")

# Deadlines (seconds). Generous: the suite also runs under ASan on busy machines.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
REPLY_TIMEOUT = 60.0


class Skip(Exception):
    """Raised by a test that cannot run here (meson: exit 77)."""


def _binary(var, *fallback):
    path = os.environ.get(var)
    if not path:
        path = os.path.join(SRCROOT, "build", *fallback)
    return path


def poold_bin():
    return _binary("POOLD_BIN", "daemon", "poold")


def poolctl_bin():
    return _binary("POOLCTL_BIN", "client", "poolctl")


def client_lib_test_bin():
    return _binary("CLIENT_LIB_TEST", "tests", "integration", "client_lib_test")


def data_dir():
    return os.environ.get("POOLD_TEST_DATA") or os.path.join(SRCROOT, "tests", "data")


# ---------------------------------------------------------------- assertions


def check(cond, what):
    """Fail the test with `what` unless cond holds (never stripped by -O)."""
    if not cond:
        raise AssertionError(what)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %s, want %s" % (what, _short(got), _short(want)))


def _short(v, limit=600):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def wait_until(cond, timeout, what, interval=0.01):
    """Poll cond() until it returns a true value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %s)" %
                                 (timeout, what, _short(last)))
        time.sleep(interval)


def check_error(reply, code, what, id_=None, index=None):
    """reply is an error reply with this code (and id/index when given)."""
    check(isinstance(reply, dict), "%s: reply is not an object: %s" % (what, _short(reply)))
    check(reply.get("ok") is False, "%s: want an error %s, got %s" % (what, code, _short(reply)))
    err = reply.get("error")
    check(isinstance(err, dict), "%s: no error object in %s" % (what, _short(reply)))
    check_eq(err.get("code"), code, "%s: error code (reply %s)" % (what, _short(reply)))
    check(isinstance(err.get("message"), str), "%s: error without a message" % what)
    if id_ is not None:
        check_eq(reply.get("id"), id_, "%s: reply id" % what)
    if index is not None:
        check_eq(err.get("index"), index, "%s: error index (reply %s)" % (what, _short(reply)))
    return err


def check_results(reply, want, what):
    check(isinstance(reply, dict) and reply.get("ok") is True,
          "%s: want ok results, got %s" % (what, _short(reply)))
    check_eq(reply.get("results"), want, "%s: results" % what)


# ------------------------------------------------------------------- client


class Client:
    """One raw connection to the daemon: newline-delimited JSON both ways."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.eof = False
        self.stash = {}  # replies read while looking for another id
        self.next_id = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def fileno(self):
        return self.sock.fileno()

    def send_raw(self, data, timeout=REPLY_TIMEOUT):
        """Write all of data (bytes or str), waiting for the socket with a deadline."""
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("send blocked for %.1fs (%d bytes left)" % (timeout, len(view)))
            select.select([], [self.sock], [], min(left, 0.5))

    def send(self, obj):
        """Send one request object; an "id" is added when it has none. Returns the id."""
        if "id" not in obj:
            obj = dict(obj, id=self.next_id)
            self.next_id += 1
        self.send_raw(json.dumps(obj, separators=(",", ":")) + "\n")
        return obj["id"]

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete reply line in time (%d bytes buffered)" % len(self.buf))
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def recv_line(self, timeout=REPLY_TIMEOUT):
        """The next reply line as bytes (no newline). EOFError when the daemon closed."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line
            if self.eof:
                raise EOFError("connection closed by the daemon (%d bytes pending: %s)" %
                               (len(self.buf), _short(bytes(self.buf))))
            self._fill(deadline)

    def recv(self, timeout=REPLY_TIMEOUT):
        """The next reply, parsed (integers stay exact)."""
        line = self.recv_line(timeout)
        try:
            return json.loads(line)
        except ValueError as e:
            raise AssertionError("reply is not JSON (%s): %s" % (e, _short(line)))

    def recv_id(self, id_, timeout=REPLY_TIMEOUT):
        """The reply for id_, keeping replies for other ids aside."""
        key = json.dumps(id_)
        if key in self.stash:
            return self.stash.pop(key)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.recv(max(deadline - time.monotonic(), 0.001))
            rkey = json.dumps(reply.get("id"))
            if rkey == key:
                return reply
            check(rkey not in self.stash, "two replies for id %s: %s" % (rkey, _short(reply)))
            self.stash[rkey] = reply

    def call(self, obj, timeout=REPLY_TIMEOUT):
        """Send a request and return its reply."""
        return self.recv_id(self.send(obj), timeout)

    def expect_silence(self, seconds):
        """Fail if anything arrives within `seconds` (for 'no reply yet' checks only)."""
        r, _, _ = select.select([self.sock], [], [], seconds)
        if r:
            try:
                self.buf += self.sock.recv(1 << 16)
            except BlockingIOError:
                pass
        check(not self.buf, "unexpected data from the daemon: %s" % _short(bytes(self.buf)))


# ------------------------------------------------------------------- daemon

_live_daemons = []
_case_daemons = []

PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _child_setup():
    # The daemon dies with the test process, whatever kills the test. The signal
    # follows the forking thread: start daemons from the main thread only.
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rfind(")") + 2:].split()[0]
    return state not in ("Z", "X")


def proc_status_kib(pid, field):
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def sanitized(d):
    """True when the daemon runs under ASan (its memory use is then not comparable)."""
    try:
        with open("/proc/%d/maps" % d.pid) as f:
            if "libasan" in f.read():
                return True
        with open(poold_bin(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def ppid_of(pid):
    """The parent pid of pid, None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[1])


class Daemon:
    """A poold on a private socket in its own temp dir.

    Use as a context manager; stop() is also run at exit for any daemon left
    running. TMPDIR points into the temp dir, so the daemon's runtime dir (and
    its workers' command lines) name it, which lets cleanup find every process.
    """

    def __init__(self, workers=2, args=(), wait_idle=True, env=None, config=None):
        self.workers = workers
        self.args = list(args)
        self.config = config  # text of a poold.conf to pass with --config (mode 0600)
        self.config_path = None
        self.wait_idle = wait_idle
        self.extra_env = env or {}
        self.dir = None
        self.sock = None
        self.log_path = None
        self.proc = None
        self.returncode = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        # Short paths: the socket and the daemon's nanomsg files must fit sun_path, and
        # poold uses $TMPDIR for its runtime dir only when it is at most 40 bytes
        # (BASE/poold-it-XXXXXXXX is 18 bytes longer than BASE).
        base = tempfile.gettempdir()
        self.dir = tempfile.mkdtemp(prefix="poold-it-", dir=base if len(base) <= 22 else "/tmp")
        self.sock = os.path.join(self.dir, "s.sock")
        self.log_path = os.path.join(self.dir, "poold.log")
        env = dict(os.environ)
        env.pop("POOLD_SOCKET", None)
        env.update(SANITIZER_ENV)
        env["TMPDIR"] = self.dir
        env.update(self.extra_env)
        argv = [poold_bin(), "--socket", self.sock, "--workers", str(self.workers)] + self.args
        if self.config is not None:
            self.config_path = os.path.join(self.dir, "poold.conf")
            self.write_config(self.config)
            argv += ["--config", self.config_path]
        _live_daemons.append(self)
        _case_daemons.append(self)
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=_child_setup)
        self.wait_ready()

    def write_config(self, text):
        """Replace the config file (atomically, mode 0600) with text."""
        tmp = self.config_path + ".new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.rename(tmp, self.config_path)

    def wait_ready(self, timeout=START_TIMEOUT):
        """Wait until the socket accepts and ping answers with our pid (and workers idle)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("poold exited with %s during start-up\n%s" %
                                     (self.proc.returncode, self.log()))
            if os.path.exists(self.sock):
                try:
                    with Client(self.sock) as c:
                        reply = c.call({"op": "ping"}, timeout=max(deadline - time.monotonic(), 1))
                    check_eq(reply.get("pid"), self.proc.pid, "ping pid")
                    break
                except (OSError, EOFError):
                    pass  # not listening yet, or a stale socket file
            if time.monotonic() >= deadline:
                raise AssertionError("poold did not answer ping within %.0fs\n%s" %
                                     (timeout, self.log()))
            time.sleep(0.01)
        if self.wait_idle:
            self.wait_slots_idle(max(deadline - time.monotonic(), 1))

    def log(self):
        """The daemon's stderr so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except (OSError, TypeError):
            return "(no log)"

    def client(self, timeout=10.0):
        return Client(self.sock, timeout)

    def call(self, obj, timeout=REPLY_TIMEOUT):
        """One request on a fresh connection."""
        with self.client() as c:
            return c.call(obj, timeout)

    def status(self, timeout=REPLY_TIMEOUT):
        reply = self.call({"op": "status"}, timeout)
        check(reply.get("ok") is True and isinstance(reply.get("status"), dict),
              "status failed: %s" % _short(reply))
        return reply["status"]

    def worker_pids(self):
        """Pids of the slots that have a process now (from status)."""
        return [s["pid"] for s in self.status()["slots"] if s["pid"] > 0]

    def wait_slots_idle(self, timeout=START_TIMEOUT):
        def idle():
            st = self.status()
            return st if all(s["state"] == "idle" for s in st["slots"]) else None
        return wait_until(idle, timeout, "every worker slot idle")

    def wait_quiet(self, timeout=20.0, connections=1):
        """Wait until nothing is in flight and every slot is idle, with `connections`
        client connections open (counting the status connection; None: any number)."""
        last = [None]

        def quiet():
            st = last[0] = self.status()
            ok = (st["requests"] == 0 and st["tasks_queued"] == 0 and st["tasks_running"] == 0
                  and (connections is None or st["connections"] == connections)
                  and all(s["state"] == "idle" for s in st["slots"]))
            return st if ok else None
        try:
            return wait_until(quiet, timeout, "an idle daemon")
        except AssertionError as e:
            raise AssertionError("%s; last status: %s" % (e, _short(last[0], 2000)))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the daemon to exit; its status, or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait with a deadline, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait_exit(timeout) is None:
                sys.stderr.write("harness: poold %d ignored SIGTERM for %.0fs; SIGKILL\n" %
                                 (self.proc.pid, timeout))
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        return self.returncode

    def own_processes(self):
        """Pids of live processes (other than us) whose command line names our temp dir."""
        found = []
        if not self.dir:
            return found
        key = self.dir.encode()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if key in cmd and pid_alive(int(name)):
                found.append(int(name))
        return found

    def cleanup(self):
        """Stop the daemon, kill anything of ours still alive, remove the temp dir."""
        if self.dir is None:
            return
        try:
            self.stop()
        finally:
            deadline = time.monotonic() + 5
            left = self.own_processes()
            while left and time.monotonic() < deadline:
                time.sleep(0.02)
                left = self.own_processes()
            self.leftovers = left
            for pid in left:
                sys.stderr.write("harness: process %d outlived poold; SIGKILL\n" % pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self in _live_daemons:
                _live_daemons.remove(self)
            self._saved_log = self.log()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def problems(self):
        """What went wrong with the daemon itself: a sanitizer report, a bad exit."""
        out = []
        log = self.saved_log()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                out.append("poold (or a worker) printed '%s'" % marker)
        if getattr(self, "leftovers", None):
            out.append("processes outlived poold by 5s: %s" % self.leftovers)
        if self.proc is not None and self.returncode is not None and self.returncode != 0:
            out.append("poold exited with status %s" % self.returncode)
        return out

    def saved_log(self):
        return getattr(self, "_saved_log", None) or self.log()


def _cleanup_all():
    for d in list(_live_daemons):
        try:
            d.cleanup()
        except Exception:
            traceback.print_exc()


atexit.register(_cleanup_all)


def _on_signal(sig, frame):
    # Turn meson's SIGTERM (timeout) into an exception, so finally and atexit run.
    raise SystemExit("killed by signal %d" % sig)


# -------------------------------------------------------------- subprocesses


def run(argv, input=None, timeout=60, env=None):
    """Run a program with a deadline; returns CompletedProcess (bytes out/err)."""
    full_env = dict(os.environ)
    full_env.pop("POOLD_SOCKET", None)
    full_env.update(SANITIZER_ENV)
    if env:
        full_env.update(env)
    if isinstance(input, str):
        input = input.encode()
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=full_env)


# ------------------------------------------------------------------- runner


def main(namespace):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    cases = {n[5:]: f for n, f in namespace.items() if n.startswith("test_") and callable(f)}
    args = sys.argv[1:]
    if args == ["--list"]:
        print("\n".join(sorted(cases)))
        return
    names = args or sorted(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        sys.stderr.write("unknown test case(s): %s (have: %s)\n" %
                         (" ".join(unknown), " ".join(sorted(cases))))
        sys.exit(1)
    failed, skipped = [], []
    for name in names:
        del _case_daemons[:]
        t0 = time.monotonic()
        interrupted = False
        try:
            cases[name]()
            print("PASS %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
        except Skip as e:
            skipped.append(name)
            print("SKIP %s: %s" % (name, e), flush=True)
        except BaseException as e:
            failed.append(name)
            interrupted = not isinstance(e, Exception)
            print("FAIL %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
            traceback.print_exc(file=sys.stdout)
        finally:
            for d in list(_case_daemons):
                try:
                    d.cleanup()
                except Exception:
                    traceback.print_exc(file=sys.stdout)
            problems = [p for d in _case_daemons for p in d.problems()]
            if problems and name not in failed:
                failed.append(name)
                print("FAIL %s: %s" % (name, "; ".join(problems)), flush=True)
            if name in failed:
                for d in _case_daemons:
                    print("---- poold log (pid %s, socket %s) ----\n%s" %
                          (d.proc.pid if d.proc else "-", d.sock, d.saved_log()))
            sys.stdout.flush()
        if interrupted:
            break
    if failed:
        print("FAILED: %s" % " ".join(failed))
        sys.exit(1)
    if skipped and len(skipped) == len(names):
        sys.exit(77)
