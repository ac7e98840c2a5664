"""Commands per item: substitution, stdin/json, exit status, signals, timeouts,
and items full of shell metacharacters that must stay one literal argument."""

import os
import shutil
import tempfile
import time

import harness
from harness import Daemon, check, check_eq, check_error, check_results, wait_until


class Scratch:
    """A private directory for marker and pid files."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="poold-cmd-")
        return self

    def path(self, name):
        return os.path.join(self.dir, name)

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def config(s):
    return """
[function echo1]
kind = command
command = printf %%s {}

[function nargs]
kind = command
command = sh -c 'printf "%%s|%%s" "$#" "$1"' sh {}

[function inc]
kind = command
command = jq -c "{n: (.n + 1)}"
input = stdin
output = json

[function fail3]
kind = command
command = sh -c 'echo "working on $1" >&2; echo "it broke on $1" >&2; exit 3' sh {}

[function selfkill]
kind = command
command = sh -c 'kill -9 $$' sh {}

[function slow]
kind = command
command = sh -c 'sleep 30 & echo $! > %s/bg.$1; sleep "$1"; echo slept $1' sh {}
timeout_ms = 400
""" % s.dir


def test_results_exact():
    """Strings as their text, other values as JSON text; stdin in, JSON out."""
    items = ["plain", "two words", "tab\there", "\u00e9t\u00e9", 42, -1.5, [1, "a"],
             {"k": None}, True, ""] * 30
    want = [x if isinstance(x, str) else None for x in items]
    with Scratch() as s, Daemon(workers=2, config=config(s)) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "echo1", "args": items})
        check(r.get("ok") is True, "echo1: %s" % r)
        for i, (got, w) in enumerate(zip(r["results"], want)):
            if w is not None:
                check_eq(got, w, "item %d" % i)
        check_eq(r["results"][4:9], ["42", "-1.5", '[1,"a"]', '{"k":null}', "true"],
                 "non-strings as their JSON text")
        check_results(c.call({"op": "map", "fn": "inc", "args": [{"n": i} for i in range(100)]}),
                      [{"n": i + 1} for i in range(100)], "jq on stdin, output = json")


def test_shell_metacharacters():
    """Each item reaches the command as exactly one literal argument."""
    with Scratch() as s, Daemon(workers=2, config=config(s)) as d, d.client() as c:
        marker = s.path("pwned")
        items = ["; rm -rf /", "$(touch %s)" % marker, "`touch %s`" % marker,
                 "&& touch %s" % marker, "| touch %s" % marker, "a b  c", "*", "~",
                 "'single' \"double\" \\back", "$HOME", "{}", "-n", "new\nline"]
        r = c.call({"op": "map", "fn": "nargs", "args": items})
        check_results(r, ["1|" + x for x in items], "one literal argument each")
        check(not os.path.exists(marker), "a metacharacter was interpreted")


def test_exit_status():
    """A command that exits 3: function_error naming the status and stderr's last line."""
    with Scratch() as s, Daemon(workers=2, config=config(s)) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "fail3", "args": ["x", "y"], "on_error": "collect"})
        check(r.get("ok") is True, "collect: %s" % r)
        for i, x in enumerate(["x", "y"]):
            err = r["results"][i]["error"]
            check_eq(err["code"], "function_error", "code")
            check("exited with status 3" in err["message"] and
                  ("it broke on %s" % x) in err["message"],
                  "message lacks status or stderr: %s" % err["message"])
        err = check_error(c.call({"op": "apply", "fn": "selfkill", "args": [1]}),
                          "function_error", "a command killed by a signal")
        check("killed by signal 9" in err["message"], "signal not named: %s" % err)
        check_results(c.call({"op": "map", "fn": "echo1", "args": ["still", "fine"]}),
                      ["still", "fine"], "after failures")


def test_timeout_kills_group():
    """timeout_ms: the item fails with timeout and its whole process group is killed."""
    with Scratch() as s, Daemon(workers=2, config=config(s)) as d, d.client() as c:
        t0 = time.monotonic()
        r = c.call({"op": "map", "fn": "slow", "args": [0, 30, 0.1], "chunksize": 1,
                    "on_error": "collect", "retries": 0}, timeout=60)
        check(time.monotonic() - t0 < 20, "took %.1fs" % (time.monotonic() - t0))
        check_eq([r["results"][0], r["results"][2]], ["slept 0", "slept 0.1"], "quick items")
        check_eq(r["results"][1]["error"]["code"], "timeout", "slow item")
        # The background sleeps of every item, finished or killed, are gone.
        for x in ("0", "30", "0.1"):
            pid = int(open(s.path("bg." + x)).read())
            wait_until(lambda: not harness.pid_alive(pid), 10,
                       "the background sleep of item %s (pid %d) to die" % (x, pid))


if __name__ == "__main__":
    harness.main(globals())
