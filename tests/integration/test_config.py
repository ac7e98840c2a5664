"""poold.conf(5) and poold --check-config: every problem is one line FILE:LINE: message."""

import json
import os
import pwd
import shutil
import tempfile

import harness
from harness import Daemon, Skip, check, check_eq, check_error, check_results

# A file with no problem: one function of the command kind.
GOOD = """\
[poold]
max_items = 5

[function upper]
kind = command
description = capital letters
command = tr a-z A-Z
input = stdin
"""


class ConfDir:
    """A private directory holding poold.conf (mode 0600), removed at the end."""

    def __init__(self, text, mode=0o600, name="poold.conf"):
        self.dir = tempfile.mkdtemp(prefix="poold-conf-")
        self.path = os.path.join(self.dir, name)
        with open(self.path, "w") as f:
            f.write(text)
        os.chmod(self.path, mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def check_config(text, mode=0o600, extra=(), env=None):
    """Run poold --check-config on text written to poold.conf (named relatively, as
    poold.conf, so that messages say exactly that). Returns (status, stdout, stderr lines)."""
    with ConfDir(text, mode) as d:
        return run_check(d.dir, ["--config", "poold.conf"] + list(extra), env)


def run_check(cwd, args, env=None):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        p = harness.run([harness.poold_bin(), "--check-config"] + args, env=env)
    finally:
        os.chdir(old)
    return p.returncode, p.stdout.decode(), p.stderr.decode().splitlines()


def expect_problems(text, want, what, mode=0o600):
    """--check-config on text exits 1 with exactly the lines want on stderr."""
    rc, out, err = check_config(text, mode)
    check_eq(err, want, "%s: stderr" % what)
    check_eq(rc, 1, "%s: exit status" % what)
    check_eq(out, "", "%s: stdout" % what)


def test_valid():
    rc, out, err = check_config(GOOD)
    check_eq(err, [], "stderr of a valid file")
    check_eq(rc, 0, "exit status of a valid file")
    check(out.startswith("poold: configuration poold.conf is valid ("),
          "the valid line: %r" % out)


def test_json():
    rc, out, err = check_config(GOOD, extra=["--json"])
    check_eq((rc, err), (0, []), "--check-config --json of a valid file")
    table = json.loads(out)
    fns = {f["name"]: f for f in table["functions"]}
    check_eq(fns["upper"], {"name": "upper", "kind": "command", "min_args": 1, "max_args": 1,
                            "description": "capital letters"}, "the configured function")
    check_eq(fns["square"]["kind"], "builtin", "built-ins are in the table")
    check_eq(fns["add"]["min_args"], 2, "a built-in's arity")
    check_eq(out.count("\n"), 1, "one line of JSON")


def test_example():
    path = os.path.join(harness.SRCROOT, "examples", "poold.conf")
    with open(path) as f, ConfDir(f.read()) as d:
        rc, out, err = run_check(d.dir, ["--config", d.path])
    check_eq((rc, err), (0, []), "examples/poold.conf")
    check(out.startswith("poold: configuration %s is valid" % d.path), "valid line: %r" % out)


def test_poold_values():
    keys = [("socket", "", "takes a path of 1 to 107 bytes, not ''"),
            ("workers", "0", "takes a number from 1 to 256, not '0'"),
            ("timeout_ms", "-1", "takes a number from 0 to 86400000, not '-1'"),
            ("max_line", "1000", "takes a size in bytes from 1024 to 1073741824 "
             "(K, M, G or T may follow), not '1000'"),
            ("max_items", "x", "takes a number from 1 to 4294967294, not 'x'"),
            ("max_pending_items", "0", "takes a number from 1 to 1099511627776, not '0'"),
            ("max_connections", "1e3", "takes a number from 1 to 1048576, not '1e3'"),
            ("max_inflight", "", "takes a number from 1 to 1048576, not ''"),
            ("max_tasks_per_worker", "+1", "takes a number from 0 to 4611686018427387904, "
             "not '+1'"),
            ("stop_timeout", "86401", "takes a number from 0 to 86400, not '86401'"),
            ("max_memory", "2X", "takes a size in bytes from 1048576 to 1099511627776 "
             "(K, M, G or T may follow), not '2X'"),
            ("verbose", "yes", "takes a number from 0 to 3, not 'yes'")]
    text = "[poold]\n" + "".join("%s = %s\n" % (k, v) for k, v, _ in keys)
    want = ["poold.conf:%d: [poold]: %s %s" % (i + 2, k, m) for i, (k, _, m) in enumerate(keys)]
    expect_problems(text, want, "every [poold] key with a wrong value")


def test_function_values():
    text = """\
[function p]
kind = program
command = worker 'unclosed
preload = maybe
min_args = 17
max_args = x
timeout_ms = 86400001
retries = 101
max_tasks_per_worker = -5
env = 1X=2
cwd = relative/dir
description = fine

[function m]
kind = module
module = lib/m.so
symbol = bad name

[function c]
kind = command
command = echo {}
input = file
output = xml

[function k]
kind = shell
"""
    want = [
        "poold.conf:3: [function p]: command has a ' quote that is not closed",
        "poold.conf:4: [function p]: preload takes yes or no, not 'maybe'",
        "poold.conf:5: [function p]: min_args takes a number from 0 to 16, not '17'",
        "poold.conf:6: [function p]: max_args takes a number from 0 to 16, not 'x'",
        "poold.conf:7: [function p]: timeout_ms takes a number from 0 to 86400000, "
        "not '86400001'",
        "poold.conf:8: [function p]: retries takes a number from 0 to 100, not '101'",
        "poold.conf:9: [function p]: max_tasks_per_worker takes a number from 0 to "
        "4611686018427387904, not '-5'",
        "poold.conf:10: [function p]: env takes NAME=VALUE pairs, not '1X=2'",
        "poold.conf:11: [function p]: cwd takes an absolute path, not 'relative/dir'",
        "poold.conf:16: [function m]: module takes an absolute path, not 'lib/m.so'",
        "poold.conf:17: [function m]: symbol takes 1 to 63 of A-Z a-z 0-9 _ . -, "
        "not 'bad name'",
        "poold.conf:22: [function c]: input takes argv or stdin, not 'file'",
        "poold.conf:23: [function c]: output takes string or json, not 'xml'",
        "poold.conf:26: [function k]: kind takes module, program or command, not 'shell'",
    ]
    expect_problems(text, want, "every [function] key with a wrong value")


def test_unknown_key():
    expect_problems("[poold]\nworkerz = 2\n[function f]\nkind = command\ncommand = echo {}\n"
                    "colour = red\n",
                    ["poold.conf:2: [poold]: unknown key 'workerz'",
                     "poold.conf:6: [function f]: unknown key 'colour'"], "unknown keys")


def test_unknown_section():
    expect_problems("[pool]\nworkers = 2\n[function]\n[function a b]\n[poold]\nworkers = 2\n",
                    ["poold.conf:1: unknown section [pool]: expected [poold], [function NAME] "
                     "or [client NAME]",
                     "poold.conf:3: unknown section [function]: expected [poold], "
                     "[function NAME] or [client NAME]",
                     "poold.conf:4: function name 'a b' is not 1 to 63 of A-Z a-z 0-9 _ . -"],
                    "unknown sections (their keys are not checked)")


def test_duplicate_section():
    expect_problems("[poold]\n[function f]\nkind = command\ncommand = echo {}\n\n[poold]\n"
                    "[function f]\nkind = command\ncommand = echo {}\n",
                    ["poold.conf:6: duplicate section [poold] (first at line 1)",
                     "poold.conf:7: duplicate section [function f] (first at line 2)"],
                    "duplicate sections")


def test_duplicate_key():
    expect_problems("[poold]\nworkers = 2\nworkers = 3\n[function f]\nkind = command\n"
                    "command = echo {}\ncommand = echo {} {}\nenv = A=1\nenv = B=2\nenv = A=3\n",
                    ["poold.conf:3: [poold]: duplicate key 'workers' (first at line 2)",
                     "poold.conf:7: [function f]: duplicate key 'command' (first at line 6)",
                     "poold.conf:10: [function f]: env sets A twice"],
                    "duplicate keys (env may repeat, each name once)")


def test_missing_and_foreign_keys():
    expect_problems("[function a]\ncommand = echo {}\n"
                    "[function b]\nkind = module\n"
                    "[function c]\nkind = program\n"
                    "[function d]\nkind = command\ncommand = echo\n"
                    "[function e]\nkind = command\ncommand = echo {}\ninput = stdin\n"
                    "[function f]\nkind = command\ncommand = echo {}\npreload = yes\nsymbol = x\n"
                    "[function g]\nkind = program\ncommand = w\nmin_args = 3\nmax_args = 2\n",
                    ["poold.conf:1: [function a]: no kind: add kind = module, program or command",
                     "poold.conf:3: [function b]: kind = module needs a 'module' key",
                     "poold.conf:5: [function c]: kind = program needs a 'command' key",
                     "poold.conf:9: [function d]: command needs {} where the item goes "
                     "(or input = stdin)",
                     "poold.conf:12: [function e]: command cannot have {} with input = stdin",
                     "poold.conf:17: [function f]: key 'preload' does not belong to "
                     "kind = command",
                     "poold.conf:18: [function f]: key 'symbol' does not belong to "
                     "kind = command",
                     "poold.conf:23: [function g]: max_args 2 is less than min_args 3"],
                    "missing keys, keys of another kind, placeholders, arity")


def test_builtin_redefined():
    expect_problems("[function square]\nkind = command\ncommand = echo {}\n",
                    ["poold.conf:1: [function square]: square is a built-in function and "
                     "cannot be redefined"], "a built-in's name")


def test_syntax():
    expect_problems("workers = 2\n[poold\n[poold] x\n[poold]\njust words\n= 3\n",
                    ["poold.conf:1: key 'workers' outside any section: put it under [poold] "
                     "or [function NAME]",
                     "poold.conf:2: section header without ']'",
                     "poold.conf:3: text after the section header: 'x'",
                     "poold.conf:5: expected KEY = VALUE, a [section] or a comment",
                     "poold.conf:6: expected KEY = VALUE, a [section] or a comment"],
                    "lines that are not KEY = VALUE")


def test_long_line():
    # libinih cuts lines over 199 bytes; poold refuses them by their real number.
    ok = "description = " + "d" * (199 - len("description = "))
    long_ = "description = " + "x" * 300
    text = ("[function f]\nkind = command\ncommand = echo {}\n%s\n[function g]\nkind = command\n"
            "command = echo {}\n%s\nretries = 500\n" % (ok, long_))
    expect_problems(text, ["poold.conf:8: line is 314 bytes long; the most is 199",
                           "poold.conf:9: [function g]: retries takes a number from 0 to 100, "
                           "not '500'"],
                    "a 199-byte line passes, a 314-byte one is refused by its own number")


def test_comments_and_indent():
    rc, out, err = check_config("\ufeff# comment\n; comment\n[poold]\n    workers = 2   ; inline\n"
                                "\t max_memory = 64M\n[function f]  # header comment\n"
                                "  kind = command\n  command = \"echo\" 'a b' {}\n", extra=["--json"])
    check_eq((rc, err), (0, []), "comments, a BOM, indented keys, CRLF-free quoting")


def test_mode_0666():
    expect_problems(GOOD, ["poold.conf: refused: the file is writable by group and others "
                           "(mode 0666); chmod go-w it"], "a file anyone may write", mode=0o666)


def test_mode_0620():
    expect_problems(GOOD, ["poold.conf: refused: the file is writable by its group "
                           "(mode 0620); chmod go-w it"], "a file its group may write",
                    mode=0o620)


def test_wrong_owner():
    if os.geteuid() != 0:
        raise Skip("only root can give a file to another user")
    nobody = pwd.getpwnam("nobody").pw_uid
    with ConfDir(GOOD) as d:
        os.chown(d.path, nobody, -1)
        rc, out, err = run_check(d.dir, ["--config", "poold.conf"])
    check_eq(err, ["poold.conf: refused: the file is owned by uid %d, not by root or poold's "
                   "user (uid 0)" % nobody], "a file owned by nobody")
    check_eq(rc, 1, "exit status")


def test_module_checks():
    with ConfDir("") as d:
        so = os.path.join(d.dir, "m.so")
        with open(so, "w") as f:
            f.write("not a module")
        os.chmod(so, 0o666)
        text = ("[function gone]\nkind = module\nmodule = /nonexistent/m.so\n"
                "[function open]\nkind = module\nmodule = %s\n"
                "[function nocmd]\nkind = command\ncommand = poold-no-such-command {}\n"
                "env = PATH=/nonexistent\n" % so)
        with open(d.path, "w") as f:
            f.write(text)
        rc, out, err = run_check(d.dir, ["--config", "poold.conf"])
    check_eq(err, ["poold.conf:1: [function gone]: module /nonexistent/m.so: No such file or "
                   "directory",
                   "poold.conf:4: [function open]: module %s: refused: the file is writable by "
                   "group and others (mode 0666); chmod go-w it" % so,
                   "poold.conf:7: [function nocmd]: 'poold-no-such-command' is not found in "
                   "PATH (/nonexistent)"], "modules and commands that cannot run")
    check_eq(rc, 1, "exit status")


def test_missing_config():
    with ConfDir("") as d:
        rc, out, err = run_check(d.dir, ["--config", "absent.conf"])
    check_eq((rc, err), (1, ["absent.conf: no such file"]), "a --config file that is absent")


def test_missing_default():
    with ConfDir("") as d:
        env = {"XDG_CONFIG_HOME": d.dir, "HOME": d.dir}
        if os.geteuid() == 0 and os.path.exists("/etc/poold/poold.conf"):
            raise Skip("this machine has /etc/poold/poold.conf")
        rc, out, err = run_check(d.dir, [], env)
    check_eq((rc, err), (0, []), "no default file")
    check(out.startswith("poold: no configuration file: built-in functions only ("), out)


def test_default_path():
    if os.geteuid() == 0:
        raise Skip("root reads /etc/poold/poold.conf")
    with ConfDir("[poold]\nworkerz = 1\n") as d:
        os.mkdir(os.path.join(d.dir, "poold"))
        os.rename(d.path, os.path.join(d.dir, "poold", "poold.conf"))
        rc, out, err = run_check(d.dir, [], {"XDG_CONFIG_HOME": d.dir})
    check_eq(err, ["%s/poold/poold.conf:2: [poold]: unknown key 'workerz'" % d.dir],
             "the default file under $XDG_CONFIG_HOME is read")


def test_flag_wins():
    with ConfDir("[poold]\nworkers = 3\nmax_items = 5\nmax_inflight = 7\n") as d:
        # The harness passes --workers 1: the flag wins over the file's 3...
        with Daemon(workers=1, args=["--config", d.path, "--max-items", "10"]) as dm:
            check_eq(len(dm.status()["slots"]), 1, "--workers 1 over workers = 3")
            check_results(dm.call({"op": "map", "fn": "square", "args": list(range(10))}),
                          [i * i for i in range(10)], "--max-items 10 over max_items = 5")
        # ...and what no flag sets comes from the file.
        with Daemon(workers=1, args=["--config", d.path]) as dm:
            check_error(dm.call({"op": "map", "fn": "square", "args": list(range(6))}),
                        "too_large", "max_items = 5 from the file")


def test_daemon_refuses_bad_config():
    with ConfDir("[poold]\nworkers = 0\n") as d:
        p = harness.run([harness.poold_bin(), "--socket", os.path.join(d.dir, "s.sock"),
                         "--config", d.path], timeout=30)
    check_eq(p.stderr.decode().splitlines(),
             ["%s:2: [poold]: workers takes a number from 1 to 256, not '0'" % d.path],
             "the daemon's stderr")
    check_eq(p.returncode, 1, "the daemon's exit status")


def test_configured_command_runs():
    with ConfDir(GOOD) as d, Daemon(workers=1, args=["--config", d.path]) as dm:
        check_results(dm.call({"op": "map", "fn": "upper", "args": ["abc", "x y"]}),
                      ["ABC", "X Y"], "a function from the file")


def test_bad_flag():
    p = harness.run([harness.poold_bin(), "--max-memory", "12Q"])
    check_eq(p.stderr.decode().splitlines(),
             ["poold: --max-memory takes a size in bytes from 1048576 to 1099511627776 "
              "(K, M, G or T may follow), not '12Q'"], "a bad flag")
    check_eq(p.returncode, 2, "exit status of a bad flag")


def example_module(name):
    """An example module built beside poold (examples/modules in the build dir)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(harness.poold_bin()))),
                        "examples", "modules", name + ".so")
    if not os.path.exists(path):
        raise Skip("%s is not built" % path)
    return path


def test_arity_learnt():
    # The supervisor loads no user code: it learns a module's and a program's arity
    # and description from poold --check-config --json run on its copy of the file.
    text = ("[function wc]\nkind = module\nmodule = %s\nsymbol = wordcount\n"
            "[function slugify]\nkind = program\ncommand = python3 %s\n"
            "[function shout]\nkind = program\ncommand = python3 %s\n"
            "description = mine\nmin_args = 1\nmax_args = 1\n" %
            (example_module("textstats"),
             os.path.join(harness.SRCROOT, "examples", "programs", "pyfuncs.py"),
             os.path.join(harness.SRCROOT, "examples", "programs", "pyfuncs.py")))
    with ConfDir(text) as d:
        rc, out, err = run_check(d.dir, ["--config", "poold.conf", "--json"])
        check_eq((rc, err), (0, []), "--check-config --json with a module and programs")
        fns = {f["name"]: f for f in json.loads(out)["functions"]}
        check_eq((fns["wc"]["min_args"], fns["wc"]["max_args"]), (1, 1), "the module's arity")
        check(fns["wc"]["description"].startswith('{"lines":L'), "the module's description")
        with Daemon(workers=1, args=["--config", d.path]) as dm:
            reply = dm.call({"op": "functions"})
            got = {f["name"]: f for f in reply["functions"]}
            check_eq((got["wc"]["kind"], got["wc"]["min_args"], got["wc"]["max_args"]),
                     ("module", 1, 1), "the module function as the daemon lists it")
            check_eq(got["wc"]["doc"], fns["wc"]["description"], "its description")
            check_eq((got["shout"]["kind"], got["shout"]["doc"]), ("program", "mine"),
                     "a program function's own description")
            check_results(dm.call({"op": "map", "fn": "wc", "args": ["a b\nc"]}),
                          [{"lines": 1, "words": 3, "bytes": 5}], "the module at work")
            check_results(dm.call({"op": "map", "fn": "slugify", "args": ["Hello, World!"]}),
                          ["hello-world"], "the program at work")


def test_daemon_probe_fails():
    # A program that cannot answer its handshake stops the daemon at start, with the
    # checker's line relayed as it printed it.
    with ConfDir("[function bad]\nkind = program\ncommand = /bin/false\n") as d:
        p = harness.run([harness.poold_bin(), "--socket", os.path.join(d.dir, "s.sock"),
                         "--config", d.path], timeout=60, env={"TMPDIR": d.dir})
    lines = p.stderr.decode().splitlines()
    want = "%s:1: [function bad]: program /bin/false exited with status 1" % d.path
    check(any(l.endswith("error: " + want) for l in lines),
          "the checker's line in the daemon's log: %s" % lines)
    check_eq(sum(1 for l in lines if "[function bad]" in l), 1, "said once: %s" % lines)
    check_eq(p.returncode, 1, "the daemon's exit status")


harness.main(globals())
