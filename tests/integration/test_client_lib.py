"""libpoolclient end to end: the C program client_lib_test against a real daemon."""

import os
import select
import signal
import subprocess
import time

import harness
from harness import Daemon, check, check_eq


def test_client_lib():
    exe = harness.client_lib_test_bin()
    check(os.access(exe, os.X_OK), "client_lib_test not built at %s" % exe)
    with Daemon(workers=3) as d:
        p = harness.run([exe, d.sock, "3"], timeout=100)
        out = (p.stdout + p.stderr).decode(errors="replace")
        check_eq(p.returncode, 0, "client_lib_test exit status; its output:\n%s" % out)
        check("0 failed" in out, "client_lib_test did not report its checks:\n%s" % out)
        # The library closed its connection and left nothing in flight.
        d.wait_quiet()


def test_client_lib_daemon_down():
    exe = harness.client_lib_test_bin()
    with Daemon(workers=1) as d:
        sock = d.sock
        check_eq(d.stop(), 0, "poold exit status")
        p = harness.run([exe, sock, "1"], timeout=60)
        check_eq(p.returncode, 1, "client_lib_test without a daemon: exit status (%r)" %
                 p.stderr)
        check(b"cannot connect" in p.stderr, "client_lib_test without a daemon: %r" % p.stderr)


def test_client_lib_opts():
    with Daemon(workers=2) as d:
        p = harness.run([harness.client_lib_test_bin(), d.sock, "opts"], timeout=100)
        out = (p.stdout + p.stderr).decode(errors="replace")
        check_eq(p.returncode, 0, "client_lib_test opts: exit status; its output:\n%s" % out)
        d.wait_quiet()


def expect_line(proc, want, timeout):
    """Read one line of proc's stdout within timeout and check it is want."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        check(left > 0, "client_lib_test did not say %r in %.0fs (got %r)" % (want, timeout, buf))
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                raise AssertionError("client_lib_test ended before saying %r: %r" %
                                     (want, proc.stderr.read()))
            buf += chunk
    check_eq(buf.decode().strip(), want, "client_lib_test's step")


def test_client_lib_deadline():
    # 3 workers: the two cancelled 30 s items may hold theirs for a grace period
    with Daemon(workers=3) as d:
        argv = [harness.client_lib_test_bin(), d.sock, "deadline"]
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            stopped = False
            try:
                expect_line(proc, "ready", 30)
                d.signal(signal.SIGSTOP)
                stopped = True
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
                # two calls, each given up after 0.4 s
                expect_line(proc, "timedout", 40)
                d.signal(signal.SIGCONT)
                stopped = False
                # the cancels reached the daemon: nothing in flight, the client still connected
                d.wait_quiet(connections=2)
                proc.stdin.write(b"on\n")
                proc.stdin.flush()
                expect_line(proc, "quiet?", 60)
                d.wait_quiet(connections=2)
                proc.stdin.write(b"bye\n")
                proc.stdin.flush()
                err = proc.stderr.read().decode(errors="replace")
                check_eq(proc.wait(60), 0, "client_lib_test deadline: exit status; stderr:\n%s" %
                         err)
                check("0 failed" in err, "client_lib_test deadline: %s" % err)
            finally:
                if stopped:
                    d.signal(signal.SIGCONT)
                proc.kill()
        d.wait_quiet()


harness.main(globals())
