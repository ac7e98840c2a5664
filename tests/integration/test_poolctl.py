"""poolctl, the real CLI: commands, stdin mode, exit codes and one-line reasons."""

import json
import os
import socket

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
        names = [ln.split()[0] for ln in lines[1:]]
        for fn in ("square", "add", "echo", "sleep_ms"):
            check(fn in names, "functions misses %s: %r" % (fn, lines))
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


harness.main(globals())
