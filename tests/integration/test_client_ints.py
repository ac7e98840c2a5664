"""pool_map_int64() end to end: the C program client_ints_test against a real daemon."""

import os

import harness
from harness import Daemon, check, check_eq


def client_ints_test_bin():
    return harness._binary("CLIENT_INTS_TEST", "tests", "integration", "client_ints_test")


def run_case(case, workers=2):
    exe = client_ints_test_bin()
    check(os.access(exe, os.X_OK), "client_ints_test not built at %s" % exe)
    with Daemon(workers=workers) as d:
        p = harness.run([exe, d.sock, case], timeout=100)
        out = (p.stdout + p.stderr).decode(errors="replace")
        check_eq(p.returncode, 0, "client_ints_test %s: exit status; its output:\n%s" %
                 (case, out))
        check(" 0 failed" in out, "client_ints_test %s did not report its checks:\n%s" %
              (case, out))
        d.wait_quiet()


def test_ints_map():
    run_case("map")


def test_ints_errors():
    run_case("errors")


def test_ints_stale():
    # 3 workers: the two cancelled sleeps may hold theirs a while
    run_case("stale", workers=3)


harness.main(globals())
