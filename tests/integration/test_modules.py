"""C modules (poold-module(3)): the example modules' results, the API end to end,
hooks, crashes, SIGTERM, and every broken module refused with one clear line."""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import harness
from harness import (Daemon, check, check_eq, check_error, check_results, pid_alive, run,
                     wait_until)


def example_dir():
    return os.environ.get("POOLD_EXAMPLE_MODULES") or os.path.join(
        harness.SRCROOT, "build", "examples", "modules")


def modules_dir_of_tests():
    return os.environ.get("POOLD_TEST_MODULES") or os.path.join(
        harness.SRCROOT, "build", "tests", "modules")


class Conf:
    """A private dir holding copies of the modules (mode 0755) and a poold.conf (0600)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="poold-mod-")
        self.path = os.path.join(self.dir, "poold.conf")

    def module(self, name, src=None):
        """Copy NAME.so (from the test modules, else the examples) into the dir."""
        for d in ([src] if src else [modules_dir_of_tests(), example_dir()]):
            p = os.path.join(d, name + ".so")
            if os.path.exists(p):
                dst = os.path.join(self.dir, name + ".so")
                shutil.copyfile(p, dst)
                os.chmod(dst, 0o755)
                return dst
        raise AssertionError("no module %s.so in %s or %s" % (name, modules_dir_of_tests(),
                                                             example_dir()))

    def write(self, text):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return self.path

    def line_of(self, section):
        """The line number of '[function SECTION]' in the file."""
        with open(self.path) as f:
            for i, line in enumerate(f, 1):
                if line.strip() == "[function %s]" % section:
                    return i
        raise AssertionError("no section %s" % section)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def fn(name, path, symbol=None):
    text = "[function %s]\nkind = module\nmodule = %s\n" % (name, path)
    if symbol:
        text += "symbol = %s\n" % symbol
    return text + "\n"


# ------------------------------------------------------------- references in Python


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def wordcount(text):
    b = text.encode()
    return {"lines": b.count(b"\n"), "words": len(b.split()), "bytes": len(b)}


def mandelbrot_row(y, w, h, max_iter):
    row = []
    for x in range(w):
        cr = -2.0 + 3.0 * x / w
        ci = -1.5 + 3.0 * y / h
        zr = zi = 0.0
        n = 0
        while n < max_iter and zr * zr + zi * zi <= 4.0:
            t = zr * zr - zi * zi + cr
            zi = 2.0 * zr * zi + ci
            zr = t
            n += 1
        row.append(n)
    return row


TEXTS = ["", "abc", "hello world\n", "a\u0000b", "caf\u00e9 \u20ac \U0001F600",
         "  lots   of\tspace\n\n and\r\nlines  ", "x" * 10000, "\"quoted\" \\ back"]


# ------------------------------------------------------------------- cases


def test_textstats():
    with Conf() as cf:
        so = cf.module("textstats")
        cf.write(fn("sha256", so) + fn("fnv1a64", so) + fn("wc", so, "wordcount") +
                 fn("mandelbrot_row", so))
        with Daemon(workers=2, args=["--config", cf.path]) as d, d.client() as c:
            r = c.call({"op": "map", "fn": "sha256", "args": TEXTS, "chunksize": 3})
            check_results(r, [hashlib.sha256(t.encode()).hexdigest() for t in TEXTS],
                          "sha256")
            r = c.call({"op": "map", "fn": "fnv1a64", "args": TEXTS})
            check_results(r, [fnv1a64(t.encode()) for t in TEXTS], "fnv1a64")
            r = c.call({"op": "map", "fn": "wc", "args": TEXTS})
            check_results(r, [wordcount(t) for t in TEXTS], "wordcount (symbol = wordcount)")
            rows = [[y, 60, 40, 200] for y in range(40)]
            r = c.call({"op": "map", "fn": "mandelbrot_row", "args": rows, "star": True})
            check_results(r, [mandelbrot_row(*a) for a in rows], "mandelbrot_row")
            r = c.call({"op": "map", "fn": "sha256", "args": [1, "ok"],
                        "on_error": "collect"})
            check(r.get("ok") is True, "collect: %s" % r)
            check_eq(r["results"][0]["error"]["code"], "type_error", "sha256 of a number")
            check_eq(r["results"][1], hashlib.sha256(b"ok").hexdigest(), "item after an error")
            r = c.call({"op": "apply", "fn": "mandelbrot_row", "args": [0, 10, 10]})
            check_error(r, "bad_arity", "mandelbrot_row with 3 arguments")
            r = c.call({"op": "apply", "fn": "mandelbrot_row", "args": [10, 10, 10, 5]})
            check_error(r, "out_of_range", "y = height")
            r = c.call({"op": "apply", "fn": "wordcount", "args": ["x"]})
            check_error(r, "unknown_function", "a module function not declared by its name")
            fns = {f["name"]: f for f in c.call({"op": "functions"})["functions"]}
            check_eq((fns["wc"]["kind"], fns["wc"]["min_args"], fns["wc"]["max_args"]),
                     ("module", 1, 1), "functions: wc")
            check("words" in fns["wc"].get("doc", ""),
                  "functions: wc's doc comes from the module: %s" % fns["wc"])
            check_eq(fns["square"]["kind"], "builtin", "functions: square")


def test_api_end_to_end():
    with Conf() as cf:
        so = cf.module("apitest")
        cf.write("".join(fn(n, so) for n in ("hexbytes", "types", "keys", "two_values",
                                               "bad_json", "fails_type")))
        with Daemon(workers=1, args=["--config", cf.path]) as d, d.client() as c:
            # strings are decoded into UTF-8 (escapes, NULs and surrogate pairs included)
            line = ('{"id":1,"op":"map","fn":"hexbytes","args":["a\\u0000b","\\ud83d\\ude00",'
                    '"\\u00e9\\n\\"","\xc3\xa9",""]}\n')
            c.send_raw(line.encode("latin-1"))
            check_results(c.recv_id(1), ["610062", "f09f9880", "c3a90a22", "c3a9", ""],
                          "hexbytes")
            r = c.call({"op": "apply", "fn": "types",
                        "args": [None, False, True, -0.0, "s", [1], {"a": 1}]})
            check(r.get("ok") is True, "types: %s" % r)
            check_eq(r["result"], {"init": True, "types": ["null", "false", "true", "number",
                                                           "string", "array", "object"]},
                     "types")
            r = c.call({"op": "apply", "fn": "keys", "args": [{"z": 1, "a\u0000": [], "m": {}}]})
            check_eq(r.get("result"), ["z", "a\u0000", "m"], "keys in order")
            check_error(c.call({"op": "apply", "fn": "keys", "args": [[1]]}), "type_error",
                        "keys of an array")
            err = check_error(c.call({"op": "apply", "fn": "two_values", "args": []}),
                              "function_error", "two values")
            check("one value" in err["message"], "message: %s" % err["message"])
            err = check_error(c.call({"op": "apply", "fn": "bad_json", "args": []}),
                              "function_error", "bad JSON")
            check("not one JSON value" in err["message"], "message: %s" % err["message"])
            err = check_error(c.call({"op": "apply", "fn": "fails_type", "args": []}),
                              "type_error", "poold_fail with type_error")
            check_eq(err["message"], "wanted a duck", "poold_fail's message")
            check_error(c.call({"op": "apply", "fn": "hexbytes", "args": []}), "bad_arity",
                        "arity checked before the call")
            check_results(c.call({"op": "map", "fn": "square", "args": [3]}), [9],
                          "built-ins beside modules")


def test_crash_costs_a_worker():
    with Conf() as cf:
        so = cf.module("apitest")
        cf.write(fn("segv", so) + fn("types", so))
        with Daemon(workers=2, args=["--config", cf.path]) as d, d.client() as c:
            err = check_error(c.call({"op": "map", "fn": "segv", "args": [1], "retries": 1}),
                              "worker_died", "a module function that crashes")
            check("SIGSEGV" in err["message"], "message names SIGSEGV: %s" % err["message"])
            r = c.call({"op": "map", "fn": "types", "args": [1, 2, 3, 4], "chunksize": 1})
            check_results(r, [{"init": True, "types": ["number"]}] * 4,
                          "the module works in the respawned workers")
            check(d.alive(), "the daemon survived")


def test_int_forms():
    """An integer form answers plain integers of a map; the function everything else."""
    with Conf() as cf:
        so = cf.module("intforms")
        cf.write(fn("halve", so) + fn("path", so) + fn("big", so))
        with Daemon(workers=2, args=["--config", cf.path]) as d, d.client() as c:
            # path: 10x+1 from the form (spaces around an integer are fine), 10x+2 from
            # the function (16 digits, an exponent)
            line = ('{"id":1,"op":"map","fn":"path","args":[1,-2,0,-0, 3 ,4,'
                    '123456789012345,1000000000000000,1e2,5],"chunksize":3,"on_error":"collect"}\n')
            c.send_raw(line.encode())
            check_eq(c.recv_id(1).get("results"),
                     [11, -19, 1, 1, 31, 41, 1234567890123451,
                      {"error": {"code": "out_of_range", "message": "integer result beyond 2^53"}},
                      {"error": {"code": "type_error",
                                 "message": "argument 1 must be an integer, not 1e2"}}, 51],
                     "form for plain integers of up to 15 digits, else the function")
            r = c.call({"op": "map", "fn": "path", "args": [[1], [2]], "star": True})
            check_results(r, [12, 22], "starmap always calls the function")
            r = c.call({"op": "apply", "fn": "path", "args": [3]})
            check_eq(r.get("result"), 32, "apply always calls the function")
            items = list(range(-50000, 50000, 7))
            r = c.call({"op": "map", "fn": "path", "args": items})
            check_results(r, [10 * x + 1 for x in items], "a big map through the form")
            # halve: the form declines odd numbers, the function fails them
            r = c.call({"op": "map", "fn": "halve", "args": [4, 3, -6, -1, 0],
                        "on_error": "collect"})
            check(r.get("ok") is True, "halve: %s" % r)
            check_eq(r["results"][0::2], [2, -3, 0], "halve: even items")
            check_eq(r["failed"], [1, 3], "halve: odd items failed")
            check_eq(r["results"][1]["error"],
                     {"code": "function_error", "message": "3 is odd"},
                     "the function's message for an item the form declined")
            # a result beyond 2^53 from the form is not trusted: the function answers
            r = c.call({"op": "map", "fn": "big", "args": [1, 2]})
            check_results(r, [7, 7], "a form's result beyond 2^53 goes to the function")


def test_builtin_int_forms():
    """square and cube through their integer forms give what the general path gave."""
    lim = 2 ** 53
    items = [0, 1, -1, 2, 94906265, -94906265, 94906266, 208063, -208064, 10 ** 14,
             999999999999999, -999999999999999, lim, -lim]
    items += list(range(-3000, 3000, 13)) + [12345678, 87654321, 99999999, 100000000]
    with Daemon(workers=2) as d, d.client() as c:
        for name, k in (("square", 2), ("cube", 3)):
            r = c.call({"op": "map", "fn": name, "args": items, "on_error": "collect",
                        "chunksize": 7})
            check(r.get("ok") is True, "%s: %s" % (name, r))
            for x, got in zip(items, r["results"]):
                want = x ** k
                if abs(want) > lim:
                    check_eq(got, {"error": {"code": "out_of_range",
                                             "message": "integer result beyond 2^53"}},
                             "%s(%d)" % (name, x))
                else:
                    check(type(got) is int and got == want,
                          "%s(%d) = %r, want %d" % (name, x, got, want))
        # the same values written with spaces, exponents and fractions take the general path
        c.send_raw(b'{"id":7,"op":"map","fn":"square","args":[ 3 ,-0,1e2,1.5,-2.0E1,4]}\n')
        check_results(c.recv_id(7), [9, 0, 10000.0, 2.25, 400.0, 16], "mixed literals")
    # results bigger than a worker's message (--max-line + 64 KiB): the form stops at the
    # limit and the items left go to later tasks
    with Daemon(workers=2, args=["--max-line", "131072"]) as d, d.client() as c:
        items = list(range(90000000, 90014000))
        r = c.call({"op": "map", "fn": "square", "args": items, "chunksize": len(items)})
        check_results(r, [x * x for x in items], "results twice the size of the arguments")


def test_abi_1_0_module_loads():
    with Conf() as cf:
        so = cf.module("abi10")
        cf.write(fn("twice", so))
        with Daemon(workers=1, args=["--config", cf.path]) as d, d.client() as c:
            check_results(c.call({"op": "map", "fn": "twice", "args": [1, -4, 21]}), [2, -8, 42],
                          "a module built for ABI 1.0")


def fini_pids(d):
    return set(int(p) for p in re.findall(r"apitest: fini in pid (\d+)", d.log()))


def test_init_fini_hooks():
    with Conf() as cf:
        so = cf.module("apitest")
        cf.write(fn("types", so) + fn("busy_ms", so))
        with Daemon(workers=2, args=["--config", cf.path]) as d:
            pids = d.worker_pids()
            check_eq(len(pids), 2, "two workers")
            log = d.log()
            for p in pids:
                check("apitest: init in pid %d" % p in log, "init ran in worker %d:\n%s" %
                      (p, log))
            # An idle worker stopped by SIGTERM runs fini, and dies of SIGTERM.
            os.kill(pids[0], signal.SIGTERM)
            wait_until(lambda: pids[0] in fini_pids(d), 10, "fini in the stopped worker")
            wait_until(lambda: not pid_alive(pids[0]), 10, "the stopped worker to exit")
            wait_until(lambda: pids[0] not in d.worker_pids() and len(d.worker_pids()) == 2,
                       20, "a new worker in the stopped one's slot")
            d.wait_slots_idle()
            # A busy worker stopped by SIGTERM dies at once, without fini.
            with d.client() as c:
                id_ = c.send({"op": "apply", "fn": "busy_ms", "args": [20000], "retries": 0})
                busy = int(wait_until(lambda: re.search(r"apitest: busy in pid (\d+)", d.log()),
                                      10, "busy_ms to run").group(1))
                t0 = time.monotonic()
                os.kill(busy, signal.SIGTERM)
                check_error(c.recv_id(id_, timeout=15), "worker_died",
                            "the item of a worker stopped while busy")
                check(time.monotonic() - t0 < 5, "a busy worker took %.1fs to stop" %
                      (time.monotonic() - t0))
            check(busy not in fini_pids(d), "fini ran in a worker stopped while busy")
            d.wait_slots_idle()
            live = d.worker_pids()
            check_eq(d.stop(), 0, "poold's exit status")
            missing = set(live) - fini_pids(d)
            check(not missing, "no fini in workers %s at shutdown:\n%s" % (missing, d.log()))


# Each broken module, and a part of the line that refuses it.
BROKEN = [
    ("bad_abi", None, "module ABI 2.0, this poold speaks 1.x"),
    ("bad_magic", None, "poold_module has the wrong magic"),
    ("bad_size", None, "poold_module is 16 bytes"),
    ("bad_int_form", None, "integer form g: names no function of the table"),
    ("no_symbol", None, "no symbol poold_module"),
    ("init_fail", None, "init of module init_fail failed: cannot open /nonexistent/model.bin"),
    ("apitest", "nope", "has no function nope (it has: hexbytes, types"),
]


def refused_lines(text, path):
    return [ln for ln in text.splitlines() if path in ln and ".so" in ln]


def test_broken_modules_check_config():
    for name, symbol, want in BROKEN:
        with Conf() as cf:
            good = cf.module("textstats")
            bad = cf.module(name)
            cf.write(fn("sha256", good) + fn("f", bad, symbol))
            p = run([harness.poold_bin(), "--check-config", "--config", cf.path], timeout=60)
            out = (p.stdout + p.stderr).decode(errors="replace")
            check_eq(p.returncode, 1, "--check-config with %s: exit status (%s)" % (name, out))
            lines = refused_lines(out, bad)
            check_eq(len(lines), 1, "%s: one line naming the module in:\n%s" % (name, out))
            prefix = "%s:%d: " % (cf.path, cf.line_of("f"))
            check(lines[0].find(prefix) >= 0, "%s: no '%s' in %r" % (name, prefix, lines[0]))
            check(want in lines[0], "%s: no '%s' in %r" % (name, want, lines[0]))


def test_broken_modules_at_start():
    for name, symbol, want in BROKEN:
        with Conf() as cf:
            bad = cf.module(name)
            cf.write(fn("f", bad, symbol))
            sock = os.path.join(cf.dir, "s.sock")
            p = run([harness.poold_bin(), "--socket", sock, "--workers", "1", "--config",
                     cf.path], timeout=60, env={"TMPDIR": cf.dir})
            out = (p.stdout + p.stderr).decode(errors="replace")
            check_eq(p.returncode, 1, "poold with %s: exit status (%s)" % (name, out))
            lines = refused_lines(out, bad)
            check(lines and all(want in ln for ln in lines),
                  "%s: no line with '%s' in:\n%s" % (name, want, out))
            check(not os.path.exists(sock), "%s: socket left behind" % name)


def man_example():
    """The C text of the EXAMPLES block of poold-module(3), unescaped."""
    with open(os.path.join(harness.SRCROOT, "docs", "poold-module.3")) as f:
        man = f.read()
    start = man.index("\n.EX\n", man.index(".SH EXAMPLES")) + 5
    text = man[start:man.index("\n.EE\n", start)]
    return "\n".join(ln[2:] if ln.startswith("\\&") else ln
                     for ln in text.split("\n")).replace("\\e", "\\") + "\n"


def test_man_page_example():
    with open(os.path.join(harness.SRCROOT, "examples", "modules", "hello.c")) as f:
        src = f.read()
    check_eq(man_example(), src, "poold-module(3)'s example is examples/modules/hello.c")


def test_hello_compiled_like_a_user():
    """hello.c built the way the man page says, against the header alone."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not cc:
        raise harness.Skip("no C compiler")
    with Conf() as cf:
        inc = os.path.join(cf.dir, "include")
        os.makedirs(os.path.join(inc, "poold"))
        shutil.copyfile(os.path.join(harness.SRCROOT, "daemon", "poold", "module.h"),
                        os.path.join(inc, "poold", "module.h"))
        so = os.path.join(cf.dir, "hello.so")
        p = run([cc, "-shared", "-fPIC", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", inc,
                 "-o", so, os.path.join(harness.SRCROOT, "examples", "modules", "hello.c")])
        check_eq(p.returncode, 0, "cc: %s" % p.stderr.decode(errors="replace"))
        os.chmod(so, 0o755)
        cf.write(fn("greet", so) + fn("add_up", so, "sum"))
        with Daemon(workers=1, args=["--config", cf.path]) as d, d.client() as c:
            check_results(c.call({"op": "map", "fn": "greet", "args": ["ann", "bob"]}),
                          ["hello, ann", "hello, bob"], "greet")
            r = c.call({"op": "apply", "fn": "add_up", "args": [[1, 2, 3]]})
            check_eq(r.get("result"), 6, "sum (symbol = sum): %s" % r)
            check_error(c.call({"op": "apply", "fn": "add_up", "args": [[1, "x"]]}),
                        "type_error", "sum of a string")
            check_error(c.call({"op": "apply", "fn": "add_up",
                                "args": [[9007199254740992, 1]]}),
                        "out_of_range", "sum beyond 2^53")
            check_error(c.call({"op": "apply", "fn": "greet", "args": ["x" * 65]}),
                        "out_of_range", "a long name")


def test_module_exports():
    """poold exports the poold_* API to modules, and nothing else of its own."""
    nm = shutil.which("nm")
    if not nm:
        raise harness.Skip("no nm")
    p = subprocess.run([nm, "-D", "--defined-only", harness.poold_bin()],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check_eq(p.returncode, 0, "nm: %s" % p.stderr.decode(errors="replace"))
    names = [ln.split()[-1] for ln in p.stdout.decode().splitlines() if ln.strip()]
    ours = [n for n in names if "@" not in n and not n.startswith("__")]
    header = open(os.path.join(harness.SRCROOT, "daemon", "poold", "module.h")).read()
    api = set(re.findall(r"\b(poold_[a-z_]+)\(", header)) - {"poold_fn"}
    check(api <= set(ours), "not exported: %s" % sorted(api - set(ours)))
    check_eq(sorted(n for n in ours if not n.startswith("poold_")), [],
             "symbols exported beyond poold_*")


if __name__ == "__main__":
    harness.main(globals())
