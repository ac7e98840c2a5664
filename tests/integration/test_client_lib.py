"""libpoolclient end to end: the C program client_lib_test against a real daemon."""

import os

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


harness.main(globals())
