"""Worker programs: JSON lines on stdin/stdout, one chunk per line, and every way
a program can misbehave (crash, garbage, hang, no handshake, wrong count)."""

import os
import re
import shutil
import sys
import tempfile
import time

import harness
from harness import Daemon, check, check_eq, check_error, check_results, wait_until

PYTHON = sys.executable or "python3"
EXAMPLES = os.path.join(harness.SRCROOT, "examples", "programs")
PYPATH = os.path.join(harness.SRCROOT, "python")

# A raw worker program (no helper) that answers "t": each item back, except the
# special ones that make it misbehave.
MISBEHAVE = r'''
import json, os, sys, time
marker = os.environ.get("NO_HANDSHAKE_IF")
if marker and os.path.exists(marker):
    time.sleep(3600)
out = sys.stdout
out.write(json.dumps({"poold": 1, "functions": [{"name": "t", "min_args": 1, "max_args": 1}]})
          + "\n")
out.flush()
for line in sys.stdin:
    req = json.loads(line)
    res = []
    bye = False
    for x in req["args"]:
        if x == "crash":
            os.kill(os.getpid(), 9)
        elif x == "garbage":
            out.write("this is not json\n")
            out.flush()
        elif x == "hang":
            time.sleep(3600)
        elif x == "short":
            res.pop() if res else None
            continue
        elif x == "exit":
            sys.exit(5)
        elif x == "bye":
            bye = True
        elif x == "pid":
            x = os.getpid()
        elif x == "fail":
            x = {"error": {"code": "no_such_code", "message": "it failed here"}}
        elif x == "badtype":
            x = {"error": {"code": "type_error", "message": "wrong type"}}
        res.append(x)
    out.write(json.dumps({"results": res}) + "\n")
    out.flush()
    if bye:
        break
'''

# A program written with the Python helper: print() inside a function.
NOISY = r'''
import poold.worker

@poold.worker.function
def noisy(x):
    print("noise from item", x)
    return x * 2

@poold.worker.function
def boom(x):
    if x == 3:
        raise ValueError("three is bad")
    return x

poold.worker.serve()
'''


class Programs:
    """A private directory of worker programs; no process of them may outlive the test."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="poold-prog-")
        for name, text in (("misbehave.py", MISBEHAVE), ("noisy.py", NOISY)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        return self

    def path(self, name):
        return os.path.join(self.dir, name)

    def processes(self):
        """Live processes whose command line names our directory."""
        key = self.dir.encode()
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    if key in f.read() and harness.pid_alive(int(name)):
                        found.append(int(name))
            except OSError:
                pass
        return found

    def __exit__(self, *exc):
        try:
            left = []
            try:
                wait_until(lambda: not self.processes(), 10, "programs to be gone")
            except AssertionError:
                left = self.processes()
                for pid in left:
                    os.kill(pid, 9)
            if exc[0] is None:
                check(not left, "programs outlived poold: %s" % left)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def config(p, extra=""):
    return """
[function t]
kind = program
command = %s %s
env = NO_HANDSHAKE_IF=%s
%s
[function noisy]
kind = program
command = %s %s
env = PYTHONPATH=%s

[function boom]
kind = program
command = %s %s
env = PYTHONPATH=%s

[function slugify]
kind = program
command = %s %s

[function word_freq]
kind = program
command = %s %s

[function upper]
kind = program
command = %s
""" % (PYTHON, p.path("misbehave.py"), p.path("no-handshake"), extra,
       PYTHON, p.path("noisy.py"), PYPATH, PYTHON, p.path("noisy.py"), PYPATH,
       PYTHON, os.path.join(EXAMPLES, "pyfuncs.py"), PYTHON, os.path.join(EXAMPLES, "pyfuncs.py"),
       os.path.join(EXAMPLES, "upper.sh"))


def slug(s):
    import re
    import unicodedata
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def test_results_exact():
    """The example programs (Python helper, shell + jq): map, starmap, apply, exact results."""
    titles = ["Title %d: Héllo, Wörld & friends!" % i for i in range(3000)]
    with Programs() as p, Daemon(workers=2, config=config(p)) as d, d.client() as c:
        check_results(c.call({"op": "map", "fn": "slugify", "args": titles}),
                      [slug(t) for t in titles], "slugify over 3000 titles")
        check_results(c.call({"op": "map", "fn": "word_freq", "star": True,
                              "args": [["b a b c b a"], ["x y x", 1]]}),
                      [[["b", 3], ["a", 2], ["c", 1]], [["x", 2]]], "word_freq starmap")
        r = c.call({"op": "apply", "fn": "word_freq", "args": ["to be or not to be", 2]})
        check_eq(r.get("result"), [["to", 2], ["be", 2]], "word_freq apply")
        words = ["w%d" % i for i in range(500)]
        check_results(c.call({"op": "map", "fn": "upper", "args": words}),
                      [w.upper() for w in words], "upper.sh over 500 words")
        r = c.call({"op": "map", "fn": "upper", "args": ["ok", 7], "on_error": "collect"})
        check_eq(r["results"][0], "OK", "upper.sh good item")
        check_eq(r["results"][1]["error"]["code"], "type_error", "upper.sh bad item")
        items = [1, "two", [3, {"four": 4.5}], None, True, {"k": "v\n\u00e9"}]
        check_results(c.call({"op": "map", "fn": "t", "args": items, "chunksize": 2}), items,
                      "JSON values through a program")
        # Per-item errors in place; an unknown code becomes function_error.
        r = c.call({"op": "map", "fn": "t", "args": [1, "fail", "badtype", 4],
                    "on_error": "collect"})
        check_eq(r["results"][0], 1, "item before the errors")
        check_eq(r["results"][3], 4, "item after the errors")
        check_eq(r["results"][1]["error"]["code"], "function_error", "unknown code")
        check_eq(r["results"][1]["error"]["message"], "it failed here", "message kept")
        check_eq(r["results"][2]["error"]["code"], "type_error", "type_error kept")
        # Exceptions through the helper: only the raising item fails.
        r = c.call({"op": "map", "fn": "boom", "args": [1, 2, 3, 4], "on_error": "collect"})
        check_eq([r["results"][i] for i in (0, 1, 3)], [1, 2, 4], "boom good items")
        err = r["results"][2]["error"]
        check_eq(err["code"], "function_error", "boom code")
        check("ValueError: three is bad" in err["message"], "boom message: %s" % err)


def test_print_inside_function():
    """print() inside a helper function goes to poold's log, not into the protocol."""
    with Programs() as p, Daemon(workers=1, config=config(p)) as d, d.client() as c:
        check_results(c.call({"op": "map", "fn": "noisy", "args": list(range(50))}),
                      [2 * i for i in range(50)], "noisy results")
        line = wait_until(lambda: [l for l in d.log().splitlines()
                                   if "noise from item 49" in l], 10, "the print in the log")
        check("worker 0" in line[0] and "noisy[" in line[0],
              "log line lacks slot, function or pid: %s" % line[0])


def test_poison_item():
    """A program killed by one item: only that item fails (worker_died), the rest exact."""
    items = list(range(40)) + ["crash"] + list(range(40, 80))
    with Programs() as p, Daemon(workers=2, config=config(p)) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "t", "args": items, "chunksize": 20,
                    "on_error": "collect", "retries": 2}, timeout=120)
        check(r.get("ok") is True, "collect map: %s" % r)
        check_eq(r.get("failed"), [40], "failed items")
        check_eq(r["results"][:40] + r["results"][41:], list(range(80)), "good items")
        err = r["results"][40]["error"]
        check_eq(err["code"], "worker_died", "poison item code")
        check("killed by signal 9" in d.log(), "the log does not say how the program died")
        # Exits with a status, in fail mode.
        r = c.call({"op": "map", "fn": "t", "args": [1, "exit", 3], "retries": 0,
                    "chunksize": 1})
        check_error(r, "worker_died", "a program that exits", index=1)
        check("exited with status 5" in d.log(), "the log does not give the exit status")
        check_results(c.call({"op": "map", "fn": "t", "args": [5, 6]}), [5, 6], "after")


def test_garbage_and_wrong_count():
    """A line that is not JSON, or a reply with the wrong count: the item fails, logged."""
    with Programs() as p, Daemon(workers=2, config=config(p)) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "t", "args": [1, 2, "garbage", 4], "chunksize": 4,
                    "on_error": "collect", "retries": 3}, timeout=120)
        check_eq(r["results"][:2] + r["results"][3:], [1, 2, 4], "good items")
        check_eq(r["results"][2]["error"]["code"], "worker_died", "garbage item")
        check("not valid JSON" in d.log(), "the log does not say what was wrong")
        r = c.call({"op": "map", "fn": "t", "args": [1, "short", 3], "chunksize": 3,
                    "on_error": "collect", "retries": 3}, timeout=120)
        check_eq([r["results"][0], r["results"][2]], [1, 3], "good items (count)")
        check_eq(r["results"][1]["error"]["code"], "worker_died", "short item")
        check(re.search(r"answered \d+ results for \d+ items", d.log()), "count not logged")


def test_hang_timeout():
    """A program that hangs on an item: timeout for it, its process group killed."""
    with Programs() as p, Daemon(workers=2, config=config(p)) as d, d.client() as c:
        t0 = time.monotonic()
        r = c.call({"op": "map", "fn": "t", "args": [1, "hang", 3], "chunksize": 1,
                    "timeout_ms": 500, "retries": 1, "on_error": "collect"}, timeout=120)
        check(time.monotonic() - t0 < 30, "took %.1fs" % (time.monotonic() - t0))
        check_eq([r["results"][0], r["results"][2]], [1, 3], "quick items")
        check_eq(r["results"][1]["error"]["code"], "timeout", "hanging item")

        def hung():
            return [pid for pid in p.processes()
                    if "hang" in open("/proc/%d/cmdline" % pid, "rb").read().decode()]
        # No program is still sleeping on the item: each one answers at once.
        r = c.call({"op": "map", "fn": "t", "args": ["pid"] * 8, "chunksize": 1})
        live = set(p.processes())
        check(set(r["results"]) <= live, "answers from programs not alive: %s vs %s" %
              (r["results"], live))
        check(len(live) <= 2, "more programs than workers: %s" % live)
        check(not hung(), "hung programs left")


def test_no_handshake():
    """A program that never writes its handshake: the item fails after the deadline."""
    with Programs() as p, Daemon(workers=1, config=config(p)) as d, d.client() as c:
        check_results(c.call({"op": "map", "fn": "t", "args": [1]}), [1], "before")
        open(p.path("no-handshake"), "w").close()
        # Only a fresh program reads the marker: restart the worker.
        old = d.worker_pids()[0]
        os.kill(old, 9)
        wait_until(lambda: d.status()["slots"][0]["pid"] not in (0, old), 30,
                   "the killed worker to be replaced")
        d.wait_slots_idle(30)
        t0 = time.monotonic()
        r = c.call({"op": "map", "fn": "t", "args": [2], "retries": 0}, timeout=60)
        check_error(r, "worker_died", "no handshake", index=0)
        check(time.monotonic() - t0 >= 9, "gave up after %.1fs" % (time.monotonic() - t0))
        check("wrote no handshake within 10000 ms" in d.log(), "not logged")
        os.unlink(p.path("no-handshake"))
        check_results(c.call({"op": "map", "fn": "t", "args": [3]}), [3], "after")


def test_exit_between_tasks_and_recycle():
    """A program gone between tasks is restarted; max_tasks_per_worker recycles it."""
    with Programs() as p, \
            Daemon(workers=1, config=config(p, "max_tasks_per_worker = 3\n")) as d, \
            d.client() as c:
        r = c.call({"op": "map", "fn": "t", "args": [1, "bye"], "chunksize": 2})
        check_results(r, [1, "bye"], "the reply before leaving")
        check_results(c.call({"op": "map", "fn": "t", "args": [7, 8], "chunksize": 2}), [7, 8],
                      "the next task, on a new program")
        check("before reading a request; starting another" in d.log(), "the restart is not logged")
        r = c.call({"op": "map", "fn": "t", "args": ["pid"] * 9, "chunksize": 1})
        check(r.get("ok") is True, "map: %s" % r)
        check(len(set(r["results"])) >= 3, "9 tasks ran on %s" % set(r["results"]))


if __name__ == "__main__":
    harness.main(globals())
