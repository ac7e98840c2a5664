"""poolctl, the real CLI: commands, stdin mode, exit codes and one-line reasons."""

import json
import os
import pty
import select
import signal
import socket
import subprocess
import time

import harness
from harness import Daemon, check, check_eq


def poolctl(sock, *args, input=None):
    argv = [harness.poolctl_bin()]
    if sock is not None:
        argv += ["--socket", sock]
    return harness.run(argv + list(args), input=input, timeout=60)


def ok_lines(p, what):
    """Exit 0, nothing on stderr; stdout's lines."""
    check_eq(p.returncode, 0, "%s: exit status (stderr %r)" % (what, p.stderr))
    check_eq(p.stderr, b"", "%s: stderr" % what)
    return p.stdout.decode().splitlines()


def fails(p, code, what, *words):
    """Exit `code` with one line on stderr starting "poolctl: " and naming `words`."""
    check_eq(p.returncode, code, "%s: exit status (stdout %r, stderr %r)" %
             (what, p.stdout, p.stderr))
    err = p.stderr.decode()
    check(err.startswith("poolctl: ") and err.endswith("\n") and err.count("\n") == 1,
          "%s: stderr is not one 'poolctl: ' line: %r" % (what, err))
    for w in words:
        check(w in err, "%s: %r not in stderr %r" % (what, w, err))
    return err


def on_terminal(argv, stream, input=None, timeout=60, settle=0.0):
    """Run argv with its stdout or stderr (stream) on a pseudo-terminal and the other
    piped; (CompletedProcess, what the terminal got). Skips when there is no pty."""
    try:
        master, slave = pty.openpty()
    except OSError as e:
        raise harness.Skip("no pseudo-terminal: %s" % e)
    got = b""
    try:
        outs = {"stdout": slave, "stderr": subprocess.PIPE} if stream == "stdout" else \
            {"stdout": subprocess.PIPE, "stderr": slave}
        proc = subprocess.run(argv, input=input, timeout=timeout, **outs)
        os.close(slave)
        slave = None
        while select.select([master], [], [], settle)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    return proc, got


def test_map_starmap_apply():
    with Daemon(workers=2) as d:
        check_eq(ok_lines(poolctl(d.sock, "map", "square", "1", "2", "3"), "map"),
                 ["1", "4", "9"], "map square")
        check_eq(ok_lines(poolctl(d.sock, "map", "--chunksize", "1", "--retries", "0",
                                  "--timeout-ms", "5000", "cube", "2", "-3"), "map opts"),
                 ["8", "-27"], "map cube with options")
        check_eq(ok_lines(poolctl(d.sock, "map", "cbrt", "27"), "cbrt"), ["3.0"],
                 "cbrt printed as the daemon wrote it")
        check_eq(ok_lines(poolctl(d.sock, "map", "echo", '"hi"', '{"a":[1,null]}',
                                  "9007199254740993"), "echo"),
                 ['"hi"', '{"a":[1,null]}', "9007199254740993"], "map echo")
        check_eq(ok_lines(poolctl(d.sock, "starmap", "add", "[1,2]", "[3,4]"), "starmap"),
                 ["3", "7"], "starmap add")
        check_eq(ok_lines(poolctl(d.sock, "apply", "add", "1", "2"), "apply"), ["3"],
                 "apply add")
        check_eq(ok_lines(poolctl(d.sock, "apply", "echo", "[1,2]"), "apply echo"), ["[1,2]"],
                 "apply echo of one array argument")
        check_eq(ok_lines(poolctl(d.sock, "map", "square"), "map without args"), [],
                 "map without ARGs prints nothing")
        # POOLD_SOCKET instead of --socket.
        p = harness.run([harness.poolctl_bin(), "map", "square", "5"],
                        env={"POOLD_SOCKET": d.sock}, timeout=60)
        check_eq(ok_lines(p, "POOLD_SOCKET"), ["25"], "map via $POOLD_SOCKET")


def test_stdin():
    with Daemon(workers=2) as d:
        p = poolctl(d.sock, "map", "square", "-", input="1\n2\n\n  \n3\n")
        check_eq(ok_lines(p, "map -"), ["1", "4", "9"], "map from stdin, blank lines skipped")
        p = poolctl(d.sock, "starmap", "add", "-", input="[1,2]\n[10,-4]\n")
        check_eq(ok_lines(p, "starmap -"), ["3", "6"], "starmap from stdin")
        items = list(range(5000))
        p = poolctl(d.sock, "map", "square", "-", input="".join("%d\n" % i for i in items))
        check_eq(ok_lines(p, "map - 5000"), [str(i * i) for i in items], "5000 items from stdin")
        p = poolctl(d.sock, "map", "square", "-", input="1\nnope\n")
        fails(p, 2, "bad JSON on stdin", "line 2")
        p = poolctl(d.sock, "starmap", "add", "-", input="[1,2]\n3\n")
        fails(p, 2, "starmap stdin line that is not an array", "line 2")
        # integer lines skip the scanner; everything around them still goes through it
        p = poolctl(d.sock, "map", "echo", "-",
                    input="-0\n0\n-9007199254740992\n9007199254740993\n 7\n8 \n1e2\n-1.5\n"
                          "\"a,b\"\n[1,2]\n")
        check_eq(ok_lines(p, "map echo -"), ["-0", "0", "-9007199254740992", "9007199254740993",
                                             "7", "8", "1e2", "-1.5", "\"a,b\"", "[1,2]"],
                 "echoed stdin lines: integers, spaces, floats, strings, arrays")
        for bad in ("01", "-", "--1", "1-", "+1", "0x1", "1,2"):
            p = poolctl(d.sock, "map", "square", "-", input="1\n%s\n" % bad)
            fails(p, 2, "stdin line %r" % bad, "line 2")


def test_info_commands():
    with Daemon(workers=2) as d:
        lines = ok_lines(poolctl(d.sock, "ping"), "ping")
        check_eq(len(lines), 1, "ping lines")
        check(str(d.pid) in lines[0], "ping names the pid %d: %r" % (d.pid, lines[0]))
        pj = json.loads(ok_lines(poolctl(d.sock, "ping", "--json"), "ping --json")[0])
        check_eq((pj.get("protocol"), pj.get("pid")), (1, d.pid), "ping --json")

        st = d.status()
        lines = ok_lines(poolctl(d.sock, "status"), "status")
        text = "\n".join(lines)
        check("workers 2" in text, "status text without 'workers 2': %r" % text)
        for s in st["slots"]:
            check(str(s["pid"]) in text, "status text misses worker pid %d" % s["pid"])
        sj = json.loads(ok_lines(poolctl(d.sock, "status", "--json"), "status --json")[0])
        check_eq((sj["workers"], sj["pid"], len(sj["slots"])), (2, d.pid, 2), "status --json")

        lines = ok_lines(poolctl(d.sock, "functions"), "functions")
        check_eq(lines[0].split(), ["NAME", "KIND", "ARGS", "DOC"], "functions header")
        rows = {ln.split()[0]: ln.split()[1:3] for ln in lines[1:]}
        for fn in ("square", "add", "echo", "sleep_ms"):
            check(fn in rows, "functions misses %s: %r" % (fn, lines))
        check_eq(rows["add"], ["builtin", "2"], "functions: add's kind and arity")
        fj = json.loads(ok_lines(poolctl(d.sock, "functions", "--json"), "functions --json")[0])
        check_eq({f["name"]: f["max_args"] for f in fj}.get("add"), 2, "functions --json add")


def test_exit_codes():
    with Daemon(workers=2) as d:
        fails(poolctl(d.sock, "map", "nosuchfn", "1"), 2, "unknown function", "unknown_function")
        fails(poolctl(d.sock, "apply", "add", "1"), 2, "apply with a bad arity", "bad_arity")
        fails(poolctl(d.sock, "map", "fail", '"boom"'), 1, "function error",
              "item 0", "function_error", "boom")
        fails(poolctl(d.sock, "map", "sleep_ms", "0", "1", '"x"', "2"), 1, "type error",
              "item 2", "type_error")
        fails(poolctl(d.sock, "map", "--timeout-ms", "200", "--retries", "0", "sleep_ms", "1",
                      "30000"), 1, "timeout", "item 1", "timeout")
        fails(poolctl(d.sock, "apply", "fail", '"bang"'), 1, "apply error", "function_error",
              "bang")
        # --collect: every result printed, failures in place, exit 1.
        p = poolctl(d.sock, "map", "--collect", "sleep_ms", "1", '"x"', "2")
        check_eq(p.returncode, 1, "collect with a failure: exit status")
        out = [json.loads(x) for x in p.stdout.decode().splitlines()]
        check_eq(len(out), 3, "collect output lines")
        check_eq((out[0], out[2]), (1, 2), "collect good items")
        check_eq(out[1].get("error", {}).get("code"), "type_error", "collect failed item")
        err = p.stderr.decode()
        check(err.count("\n") == 1 and "item 1" in err, "collect stderr: %r" % err)
        # Bad JSON arguments: exit 2, the daemon is not needed to say so.
        fails(poolctl(d.sock, "map", "square", "hello"), 2, "bare word argument", "argument 1")
        fails(poolctl(d.sock, "map", "square", "1", "[1,"), 2, "truncated JSON", "argument 2")
        fails(poolctl(d.sock, "starmap", "add", "1"), 2, "starmap non-array argument")
        # Usage errors.
        fails(poolctl(d.sock, "map"), 2, "map without FN")
        fails(poolctl(d.sock, "frobnicate"), 2, "unknown command", "frobnicate")
        fails(poolctl(d.sock, "map", "--bogus", "square", "1"), 2, "unknown option", "--bogus")
        fails(poolctl(d.sock, "map", "--chunksize", "-1", "square", "1"), 2, "bad chunksize")
        fails(poolctl(d.sock, "apply", "--collect", "add", "1", "2"), 2, "apply --collect")
        fails(poolctl(d.sock), 2, "no command")
        # The daemon is fine after all that.
        check_eq(ok_lines(poolctl(d.sock, "map", "square", "4"), "after errors"), ["16"],
                 "map after the errors")


def test_daemon_down():
    with Daemon(workers=1) as d:
        check_eq(ok_lines(poolctl(d.sock, "ping"), "ping while up")[0].count(str(d.pid)), 1,
                 "ping while the daemon is up")
        check_eq(d.stop(), 0, "poold exit status")
        fails(poolctl(d.sock, "ping"), 2, "ping after the daemon stopped")
        fails(poolctl(d.sock, "map", "square", "1"), 2, "map after the daemon stopped")
        # A path with no socket file, and a socket file nobody listens on.
        missing = os.path.join(d.dir, "nothing-here.sock")
        fails(poolctl(missing, "status"), 2, "status on a missing socket")
        stale = os.path.join(d.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        fails(poolctl(stale, "map", "square", "1"), 2, "map on a stale socket")
        fails(poolctl(os.path.join(d.dir, "x" * 200), "ping"), 2, "socket path too long")


def test_help():
    for cmd in ([], ["map"], ["starmap"], ["apply"], ["status"], ["ping"], ["functions"]):
        p = poolctl(None, *(cmd + ["--help"]))
        check_eq(p.returncode, 0, "poolctl %s --help: exit status" % " ".join(cmd))
        check_eq(p.stderr, b"", "poolctl %s --help: stderr" % " ".join(cmd))
        out = p.stdout.decode()
        check(out.startswith("Usage: poolctl") and out.endswith("\n"),
              "poolctl %s --help output: %r" % (" ".join(cmd), out[:200]))
        if cmd:
            check(("poolctl " + cmd[0]) in out, "help of %s does not name it" % cmd[0])
    p = poolctl(None, "--version")
    check(p.returncode == 0 and p.stdout.startswith(b"poolctl "), "--version: %r" % (p,))
    # Every help shows examples, and the main help every command.
    main = poolctl(None, "--help").stdout.decode()
    check("Examples:" in main, "poolctl --help has no examples")
    for cmd in ("map", "starmap", "apply", "status", "ping", "functions", "top", "metrics"):
        check("  %s " % cmd in main, "poolctl --help does not list %s" % cmd)
        out = ok_lines(poolctl(None, cmd, "--help"), "%s --help" % cmd)
        check(any(ln.startswith("Example") for ln in out), "%s --help has no example" % cmd)
    # --help anywhere before --, also after the FN.
    check(ok_lines(poolctl(None, "map", "square", "1", "--help"), "map ... --help")[0]
          .startswith("Usage: poolctl map"), "map square 1 --help")


# ------------------------------------------------------------------ streaming (map/starmap -)

STREAM_WAIT = 60.0  # deadline for a streaming poolctl to finish


def is_asan(path):
    """True when the binary was built with AddressSanitizer (its RSS means little then)."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def vm_hwm_kib(pid):
    """The peak RSS (VmHWM, KiB) of a live process since its exec."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    raise AssertionError("no VmHWM in /proc/%d/status" % pid)


def stream_measured(argv, stdin_path, want_len, timeout=STREAM_WAIT):
    """Run argv with stdin from a file; (exit status, stdout, stderr, peak RSS in KiB).

    The peak RSS is read from /proc while poolctl is blocked writing its last
    512 KiB of results into the pipe we stop reading: all its input has been
    read and nearly all of it answered by then.
    """
    env = dict(os.environ)
    env.pop("POOLD_SOCKET", None)
    env.update(harness.SANITIZER_ENV)
    with open(stdin_path, "rb") as fin:
        p = subprocess.Popen(argv, stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env)
    try:
        out = bytearray()
        hwm = None
        deadline = time.monotonic() + timeout
        while True:
            if hwm is None and len(out) >= want_len - (512 << 10):
                hwm = vm_hwm_kib(p.pid)
            left = deadline - time.monotonic()
            check(left > 0, "%s did not finish within %.0fs" % (argv, timeout))
            r, _, _ = select.select([p.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(p.stdout.fileno(), 1 << 20)
            if not chunk:
                break
            out += chunk
        err = p.stderr.read()
        return p.wait(timeout), bytes(out), err, hwm
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()


def test_stream_order():
    with Daemon(workers=3) as d:
        # 1,000,000 items from stdin, in order, in little memory.
        n = 1000000
        src = os.path.join(d.dir, "in.txt")
        with open(src, "w") as f:
            f.write("".join("%d\n" % i for i in range(n)))
        want = "".join("%d\n" % (i * i) for i in range(n)).encode()
        rc, out, err, rss = stream_measured([harness.poolctl_bin(), "--socket", d.sock, "map",
                                             "square", "-"], src, len(want))
        check_eq((rc, err), (0, b""), "map square - of %d items: exit status, stderr" % n)
        check(out == want, "map square - of %d items: %d bytes of output, want %d; first "
              "difference at byte %d" % (n, len(out), len(want),
                                         next((i for i, (a, b) in enumerate(zip(out, want))
                                               if a != b), min(len(out), len(want)))))
        check(rss is not None, "no peak RSS measured")
        if not is_asan(harness.poolctl_bin()):
            check(rss < 16 * 1024, "poolctl's peak RSS streaming %d items: %d KiB" % (n, rss))
        # starmap from stdin, with blank lines and no newline at the end.
        p = poolctl(d.sock, "starmap", "add", "-", input="[1,2]\n\n[10,-4]\n  \n[0.5,1]")
        check_eq(ok_lines(p, "starmap - without a final newline"), ["3", "6", "1.5"],
                 "starmap from stdin")
        p = poolctl(d.sock, "map", "square", "-", input="")
        check_eq(ok_lines(p, "map - of nothing"), [], "map - of empty stdin")
        d.wait_quiet()


def unordered_lines(p, what):
    """Exit 0; stdout's INDEX<TAB>VALUE lines as a list of (index, value) in output order."""
    out = []
    for ln in ok_lines(p, what):
        idx, tab, val = ln.partition("\t")
        check(tab == "\t" and idx.isdigit(), "%s: not INDEX<TAB>VALUE: %r" % (what, ln))
        out.append((int(idx), json.loads(val)))
    return out


def test_stream_unordered():
    with Daemon(workers=3) as d:
        items = [1500] + list(range(1, 40))
        p = poolctl(d.sock, "map", "--unordered", "--chunksize", "1", "sleep_ms", "-",
                    input="".join("%d\n" % i for i in items))
        got = unordered_lines(p, "map --unordered -")
        check_eq(sorted(got), list(enumerate(items)), "unordered: every index once, its value")
        check(got[0][0] != 0, "unordered: the 1500 ms item came first: %r" % got[:3])
        check_eq(got[-1], (0, 1500), "unordered: the slow item came last")
        # ARGs work too, and so does a large unordered stream.
        p = poolctl(d.sock, "map", "--unordered", "square", "2", "3")
        check_eq(sorted(unordered_lines(p, "map --unordered ARGs")), [(0, 4), (1, 9)],
                 "unordered ARGs")
        n = 100000
        p = poolctl(d.sock, "map", "--unordered", "square", "-",
                    input="".join("%d\n" % i for i in range(n)))
        got = unordered_lines(p, "map --unordered - of %d" % n)
        check_eq(len(got), n, "unordered lines")
        check(sorted(got) == [(i, i * i) for i in range(n)],
              "unordered %d items: indices or values wrong" % n)


def test_stream_errors():
    with Daemon(workers=2) as d:
        # Collect: failures in place, every result printed, exit 1 naming the first.
        p = poolctl(d.sock, "map", "--collect", "sleep_ms", "-", input='1\n"x"\n2\n"y"\n3\n')
        check_eq(p.returncode, 1, "stream --collect with failures: exit status")
        out = [json.loads(x) for x in p.stdout.decode().splitlines()]
        check_eq(len(out), 5, "stream collect output lines")
        check_eq((out[0], out[2], out[4]), (1, 2, 3), "stream collect good items")
        for i in (1, 3):
            check_eq(out[i].get("error", {}).get("code"), "type_error",
                     "stream collect failed item %d" % i)
        err = p.stderr.decode()
        check(err.count("\n") == 1 and "item 1: type_error" in err and "2 items failed" in err,
              "stream collect stderr: %r" % err)
        # Fail mode: the results before the failing item, then its error, exit 1.
        p = poolctl(d.sock, "map", "--chunksize", "1", "sleep_ms", "-",
                    input='1\n2\n"x"\n4\n5\n')
        fails(p, 1, "stream fail mode", "item 2", "type_error")
        check_eq(p.stdout.decode().splitlines(), ["1", "2"], "stream fail mode: results before")
        p = poolctl(d.sock, "map", "fail", "-", input='"boom"\n')
        fails(p, 1, "stream fail()", "item 0", "function_error", "boom")
        # Request errors and bad input: exit 2.
        fails(poolctl(d.sock, "map", "square", "-", input="1\n2\nnope\n"), 2,
              "bad JSON in the stream", "stdin line 3")
        fails(poolctl(d.sock, "starmap", "add", "-", input="[1,2]\n\n7\n"), 2,
              "starmap stream line that is not an array", "stdin line 3")
        fails(poolctl(d.sock, "starmap", "add", "-", input="[1,2]\n[1]\n"), 2,
              "starmap stream of a bad arity", "bad_arity")
        for bad in ("0", "1000001", "x"):
            fails(poolctl(d.sock, "map", "--window", bad, "square", "-", input="1\n"), 2,
                  "--window %s" % bad, "window")
        fails(poolctl(d.sock, "apply", "--unordered", "add", "1", "2"), 2,
              "apply --unordered", "unordered")
        # An unknown function fails at once, without waiting for stdin's end.
        argv = [harness.poolctl_bin(), "--socket", d.sock, "map", "nosuchfn", "-"]
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            try:
                _, err = proc.communicate(timeout=STREAM_WAIT)
            finally:
                proc.kill()
        check_eq(proc.returncode, 2, "map nosuchfn - with stdin left open: exit status")
        check(b"unknown_function" in err, "map nosuchfn -: stderr %r" % err)
        d.wait_quiet()


def read_line_by(f, deadline, what):
    """One line from the pipe f (bytes, no newline), failing at the deadline."""
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        check(left > 0, "timed out waiting for %s (got %r)" % (what, buf))
        r, _, _ = select.select([f], [], [], left)
        if r:
            chunk = os.read(f.fileno(), 1)
            check(chunk != b"", "poolctl closed stdout while waiting for %s" % what)
            buf += chunk
    return buf[:-1]


def test_stream_slow_producer():
    with Daemon(workers=2) as d:
        argv = [harness.poolctl_bin(), "--socket", d.sock, "map", "square", "-"]
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            try:
                deadline = time.monotonic() + STREAM_WAIT
                # Each result arrives while stdin is still open.
                for i in (3, 4, 5):
                    proc.stdin.write(b"%d\n" % i)
                    proc.stdin.flush()
                    check_eq(read_line_by(proc.stdout, deadline, "the square of %d" % i),
                             b"%d" % (i * i), "result before stdin's end")
                proc.stdin.write(b"6\n7")
                proc.stdin.close()
                rest = proc.stdout.read()
                check_eq(proc.wait(STREAM_WAIT), 0, "exit status after stdin's end")
                check_eq(rest, b"36\n49\n", "results after stdin's end")
                check_eq(proc.stderr.read(), b"", "stderr (not a terminal: no progress)")
            finally:
                proc.kill()


def test_stream_progress():
    with Daemon(workers=1) as d:
        # Forced on: progress lines on stderr, the last one erased; stdout untouched.
        p = poolctl(d.sock, "map", "--progress", "sleep_ms", "300", "300", "300")
        check_eq(p.returncode, 0, "--progress: exit status (stderr %r)" % p.stderr)
        check_eq(p.stdout, b"300\n300\n300\n", "--progress: stdout")
        err = p.stderr.decode()
        check("\r\x1b[Kpoolctl: " in err and "/3 (" in err and " done, " in err,
              "--progress: no progress line in %r" % err)
        check(err.endswith("\r\x1b[K"), "--progress: the line is not erased at the end: %r" %
              err)
        # On a terminal it is on by default, and --no-progress turns it off.
        for flag, want in (([], True), (["--no-progress"], False)):
            argv = [harness.poolctl_bin(), "--socket", d.sock, "map"] + flag + ["sleep_ms", "-"]
            proc, err = on_terminal(argv, "stderr", input=b"300\n300\n300\n",
                                    timeout=STREAM_WAIT)
            check_eq((proc.returncode, proc.stdout), (0, b"300\n300\n300\n"),
                     "map %s on a terminal: exit status, stdout" % flag)
            check_eq(b" done, " in err, want, "progress on a terminal with %s: %r" % (flag, err))


def test_stream_window():
    with Daemon(workers=2) as d:
        n = 20000
        p = poolctl(d.sock, "map", "--window", "10", "square", "-",
                    input="".join("%d\n" % i for i in range(n)))
        check(ok_lines(p, "map --window 10 -") == [str(i * i) for i in range(n)],
              "map --window 10 of %d items: results wrong" % n)
        p = poolctl(d.sock, "starmap", "--window", "1", "--unordered", "add", "-",
                    input="".join("[%d,1]\n" % i for i in range(1000)))
        check_eq(sorted(unordered_lines(p, "starmap --window 1 --unordered")),
                 [(i, i + 1) for i in range(1000)], "starmap --window 1 --unordered")
        d.wait_quiet()


# ------------------------------------------------------------------ what new users trip over

def test_options_anywhere():
    with Daemon(workers=2) as d:
        check_eq(ok_lines(poolctl(d.sock, "map", "square", "1", "--chunksize", "5"), "opt last"),
                 ["1"], "map square 1 --chunksize 5")
        check_eq(ok_lines(poolctl(None, "map", "--socket", d.sock, "square", "2", "3",
                                  "--retries=0", "--timeout-ms", "5000"), "socket after"),
                 ["4", "9"], "--socket after the command, --opt=value")
        check_eq(ok_lines(poolctl(None, "map", "cube", "2", "-3", "-s", d.sock), "negative"),
                 ["8", "-27"], "a negative number is an ARG, -s at the end")
        # After --, every word is an ARG: not JSON is an error naming it, with -R a string.
        err = fails(poolctl(d.sock, "map", "echo", "--", "--x"), 2, "-- then a non-JSON word",
                    "argument 1", "-R")
        check("unknown option" not in err, "after --, --x is no option: %r" % err)
        check_eq(ok_lines(poolctl(d.sock, "map", "-R", "echo", "--", "--x", "-", "-y"), "-R --"),
                 ['"--x"', '"-"', '"-y"'], "map -R echo -- --x - -y")
        check_eq(ok_lines(poolctl(d.sock, "-Rr", "apply", "echo", "hi there"), "bundled -Rr"),
                 ["hi there"], "-Rr before the command")
        # A misplaced option says what it is for, in the command's words.
        fails(poolctl(d.sock, "status", "--collect"), 2, "status --collect",
              "--collect is for map and starmap only")
        fails(poolctl(d.sock, "map", "square", "1", "--bogus"), 2, "unknown option last",
              "unknown option '--bogus'")
        fails(poolctl(d.sock, "map", "square", "--window"), 2, "missing value",
              "missing value for option '--window'")
        fails(poolctl(d.sock, "map", "--collect=1", "square", "1"), 2, "flag with a value",
              "--collect=1")


def test_raw_io():
    with Daemon(workers=2) as d:
        names = ["a file", 'quote"d', "tab\there", "", "ünï"]
        stdin = "".join(n + "\n" for n in names)
        p = poolctl(d.sock, "map", "-R", "echo", "-", input=stdin.encode())
        check_eq([json.loads(x) for x in ok_lines(p, "map -R -")], names,
                 "map -R: each line one string, the empty line too")
        p = poolctl(d.sock, "map", "-R", "-r", "echo", "-", input=stdin.encode())
        check_eq(p.stdout.decode(), stdin, "map -R -r: the lines back as they were")
        # -r prints strings bare and everything else as JSON; in ARG mode and unordered too.
        p = poolctl(d.sock, "map", "-r", "echo", '"x\\ty"', "[1,\"s\"]", "null", "2.5")
        check_eq(ok_lines(p, "map -r"), ["x\ty", '[1,"s"]', "null", "2.5"], "map -r ARGs")
        p = poolctl(d.sock, "map", "--unordered", "-r", "-R", "echo", "-", input=b"p\nq\n")
        check_eq(sorted(unordered_lines_raw(p, "unordered -r")), [("0", "p"), ("1", "q")],
                 "map --unordered -R -r")
        p = poolctl(d.sock, "apply", "-R", "-r", "echo", "two words")
        check_eq(ok_lines(p, "apply -R -r"), ["two words"], "apply -R -r")
        # starmap -R: TAB-separated fields are the string arguments.
        p = poolctl(d.sock, "starmap", "-R", "-r", "echo", "-", input=b"one\ntwo words\n")
        check_eq(ok_lines(p, "starmap -R"), ["one", "two words"], "starmap -R one field each")
        fails(poolctl(d.sock, "starmap", "-R", "echo", "a\tb"), 2, "starmap -R two fields",
              "bad_arity")
        # ls | poolctl map -R echo -: what used to fail.
        top = os.path.join(d.dir, "files")
        os.mkdir(top)
        files = sorted(["plain", "with space", "caf\u00e9", "-dash", "'quote'"])
        for f in files:
            open(os.path.join(top, f), "w").close()
        ls = subprocess.run(["ls", "-1", top], stdout=subprocess.PIPE, check=True)
        p = poolctl(d.sock, "map", "-R", "-r", "echo", "-", input=ls.stdout)
        check_eq(sorted(ok_lines(p, "ls | map -R -r echo -")), files, "ls | poolctl map -R")


def unordered_lines_raw(p, what):
    """Exit 0; stdout's INDEX<TAB>TEXT lines as (index, text) pairs."""
    out = []
    for ln in ok_lines(p, what):
        idx, tab, val = ln.partition("\t")
        check(tab == "\t" and idx.isdigit(), "%s: not INDEX<TAB>TEXT: %r" % (what, ln))
        out.append((idx, val))
    return out


def test_ranges():
    with Daemon(workers=1) as d:
        good = {"--chunksize": ("0", "1000000"), "--retries": ("0", "100"),
                "--timeout-ms": ("0", "86400000"), "--window": ("1", "1000000"),
                "--deadline": ("0", "86400000")}
        bad = {"--chunksize": ("-1", "1000001", "x"), "--retries": ("101", "-1", "1e3"),
               "--timeout-ms": ("86400001", "99999999999999999999", ""),
               "--window": ("0", "1000001"), "--deadline": ("86400001", "-5")}
        for opt, values in good.items():
            for v in values:
                check_eq(ok_lines(poolctl(d.sock, "map", opt, v, "square", "3"),
                                  "%s %s" % (opt, v)), ["9"],
                         "%s %s is in the daemon's range" % (opt, v))
        for opt, values in bad.items():
            for v in values:
                fails(poolctl(d.sock, "map", "square", "3", opt, v), 2, "%s %r" % (opt, v),
                      opt, "wants an integer from")
        fails(poolctl(d.sock, "apply", "--timeout-ms", "86400001", "add", "1", "2"), 2,
              "apply --timeout-ms over the range", "86400000")
        fails(poolctl(d.sock, "top", "--count", "0"), 2, "top --count 0", "--count")
        p = harness.run([harness.poolctl_bin(), "--socket", d.sock, "ping"],
                        env={"POOLD_DEADLINE_MS": "soon"}, timeout=60)
        fails(p, 2, "POOLD_DEADLINE_MS not a number", "POOLD_DEADLINE_MS")


def test_cli_words():
    with Daemon(workers=1) as d:
        err = fails(poolctl(d.sock, "map", "add", "1"), 2, "map of a two-argument function",
                    "bad_arity", "poolctl starmap")
        check("use star " not in err, "protocol jargon in %r" % err)
        err = fails(poolctl(d.sock, "apply", "nosuch", "1"), 2, "unknown function",
                    "unknown_function", "poolctl functions")
        check("functions op" not in err, "protocol jargon in %r" % err)
        err = fails(poolctl(d.sock, "map", "square", "-", input=b"1\nnope\n"), 2, "bad line")
        check("or use -R" in err, "the bad-line message does not point at -R: %r" % err)


def test_bad_line_after_results():
    with Daemon(workers=2) as d:
        p = poolctl(d.sock, "map", "square", "-", input=b"1\n2\n3\nbad\n5\n")
        fails(p, 2, "a bad fourth line", "stdin line 4")
        check_eq(p.stdout, b"1\n4\n9\n", "the results before the bad line are printed")
        p = poolctl(d.sock, "starmap", "--unordered", "add", "-", input=b"[1,2]\n[3,4]\n5\n")
        fails(p, 2, "starmap: third line not an array", "stdin line 3", "array")
        check_eq(sorted(p.stdout.split(b"\n")), [b"", b"0\t3", b"1\t7"],
                 "starmap --unordered: both results before the bad line")
        # A large stream: everything before the bad line, in order.
        n = 20000
        p = poolctl(d.sock, "map", "square", "-",
                    input=("".join("%d\n" % i for i in range(n)) + "{\n7\n").encode())
        fails(p, 2, "bad line after %d" % n, "stdin line %d" % (n + 1))
        check(p.stdout.decode().split() == [str(i * i) for i in range(n)],
              "the %d results before the bad line" % n)
        d.wait_quiet()


DEADLINE_BOUND = 20.0  # seconds a timed-out call may take at most on a loaded machine


def test_deadline():
    with Daemon(workers=2) as d:
        check_eq(ok_lines(poolctl(d.sock, "map", "--deadline", "30000", "square", "4"),
                          "deadline not reached"), ["16"], "a call within its deadline")
        d.signal(signal.SIGSTOP)
        try:
            runs = [("map", ["--deadline", "300", "map", "square", "1", "2"], None, {}),
                    ("apply", ["apply", "add", "1", "2"], None, {"POOLD_DEADLINE_MS": "300"}),
                    ("stream", ["map", "--deadline", "300", "square", "-"], b"1\n2\n", {}),
                    ("ping", ["ping", "--deadline", "300"], None, {})]
            for what, args, stdin, env in runs:
                t0 = time.monotonic()
                p = harness.run([harness.poolctl_bin(), "--socket", d.sock] + args,
                                input=stdin, env=env, timeout=60)
                took = time.monotonic() - t0
                fails(p, 2, "%s to a stopped daemon" % what, "deadline (300 ms)", "cancelled")
                check(0.29 <= took < DEADLINE_BOUND,
                      "%s: gave up after %.2fs, deadline 0.3s" % (what, took))
        finally:
            d.signal(signal.SIGCONT)
        # Nothing is left in the daemon, which serves on.
        d.wait_quiet()
        check_eq(ok_lines(poolctl(d.sock, "map", "--deadline", "30000", "square", "5"),
                          "after SIGCONT"), ["25"], "map after the stopped daemon resumed")
        # A slow item past the deadline: cancelled in the daemon too.
        t0 = time.monotonic()
        fails(poolctl(d.sock, "apply", "--deadline", "300", "sleep_ms", "20000"), 2,
              "sleep past the deadline", "deadline")
        check(time.monotonic() - t0 < DEADLINE_BOUND, "sleep_ms past the deadline took long")
        d.wait_quiet()
        # A stream: the deadline covers the whole command; the results before it are out.
        t0 = time.monotonic()
        p = poolctl(d.sock, "map", "--deadline", "1000", "--chunksize", "1", "sleep_ms", "-",
                    input=b"1\n" + b"400\n" * 20)
        took = time.monotonic() - t0
        fails(p, 2, "a stream past its deadline", "deadline (1000 ms)", "cancelled")
        out = p.stdout.split()
        check(1 <= len(out) < 21 and out[0] == b"1", "stream cut by the deadline: %r" % out)
        check(0.99 <= took < DEADLINE_BOUND, "the stream gave up after %.2fs" % took)
        d.wait_quiet()


def test_top():
    with Daemon(workers=2) as d:
        t0 = time.monotonic()
        p = poolctl(d.sock, "top", "--count", "3")
        took = time.monotonic() - t0
        lines = ok_lines(p, "top --count 3")
        check_eq(len(lines), 3, "top --count 3: one line per refresh when not a terminal")
        check(took >= 1.9, "three refreshes a second apart took %.2fs" % took)
        for ln in lines:
            w = ln.split()
            check(w[1:3] == ["workers", "2"] and "busy" in w and "idle" in w and
                  "items_done" in w and w[-2] == "slots",
                  "top line: %r" % ln)
            check_eq(len(w[-1].split(",")), 2, "one state per slot in %r" % ln)
        # The rate follows the work done between two refreshes.
        argv = [harness.poolctl_bin(), "--socket", d.sock, "map", "--chunksize", "1",
                "sleep_ms", "-"]
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) as load:
            try:
                load.stdin.write(b"20\n" * 400)
                load.stdin.flush()
                harness.wait_until(lambda: d.status()["items_done"] >= 20, 30, "work started")
                lines = ok_lines(poolctl(d.sock, "top", "-n", "2"), "top under load")
                rate = float(lines[1].split()[lines[1].split().index("rate") + 1][:-2])
                check(rate > 0, "top under load: rate %r" % lines[1])
            finally:
                load.kill()
        # On a terminal: a screen per refresh, cleared first.
        proc, screen = on_terminal([harness.poolctl_bin(), "--socket", d.sock, "top", "-n", "1"],
                                   "stdout", timeout=60, settle=0.5)
        check_eq(proc.returncode, 0, "top on a terminal: exit status (%r)" % proc.stderr)
        check(screen.startswith(b"\x1b[H\x1b[2J") and b"SLOT" in screen,
              "top on a terminal: %r" % screen[:300])


def test_metrics():
    with Daemon(workers=1) as d:
        ok_lines(poolctl(d.sock, "map", "square", "1", "2"), "some work first")
        p = poolctl(d.sock, "metrics")
        reply = d.call({"op": "metrics"})
        check(reply.get("ok") is True, "the metrics op: %r" % reply)
        text = p.stdout.decode()
        check_eq((p.returncode, p.stderr), (0, b""), "poolctl metrics: exit status, stderr")
        check("# TYPE " in text and "# HELP " in text, "metrics text: %r" % text[:300])
        # Verbatim: the same families as the op's own text (counters may move in between).
        fam = lambda t: sorted(ln for ln in t.splitlines() if ln.startswith("# TYPE"))
        check_eq(fam(text), fam(reply["metrics"]), "poolctl metrics prints the op's text")
        fails(poolctl(d.sock, "metrics", "extra"), 2, "metrics with an argument", "extra")


def test_completion():
    script = os.path.join(harness.SRCROOT, "client", "poolctl.bash-completion")
    with Daemon(workers=1) as d:
        probe = ("source %s\n"
                 "comp() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); "
                 "_poolctl; echo \"${COMPREPLY[*]}\"; }\n"
                 "comp poolctl ''\ncomp poolctl st\ncomp poolctl map --ch\n"
                 "comp poolctl map sq\ncomp poolctl --socket %s apply ''\n"
                 "comp poolctl top --\n" % (script, d.sock))
        env = dict(os.environ)
        env["PATH"] = os.path.dirname(harness.poolctl_bin()) + ":" + env.get("PATH", "")
        env.pop("POOLD_SOCKET", None)
        p = subprocess.run(["bash", "--norc", "--noprofile"], input=probe.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
        check_eq((p.returncode, p.stderr), (0, b""), "bash with the completion")
        got = p.stdout.decode().split("\n")
        check_eq(got[0].split(), ["map", "starmap", "apply", "status", "top", "metrics", "ping",
                                  "functions"], "commands")
        check_eq(got[1].split(), ["starmap", "status"], "commands starting with st")
        check_eq(got[2].split(), ["--chunksize"], "map option")
        check_eq(got[3].split(), [], "no function names without a daemon at the default socket")
        names = got[4].split()
        for fn in ("square", "add", "echo", "sleep_ms"):
            check(fn in names, "function %s not completed after --socket: %r" % (fn, names))
        check("--count" in got[5].split(), "top options: %r" % got[5])


harness.main(globals())
