"""The documentation's programs still work: every C program (```c blocks of
README.md, blocks of the man pages holding `int main`) is compiled against the
built libpoolclient and run against a daemon; every shell example of the form
"$ COMMAND" followed by its output is run and its output compared."""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import harness
from harness import Daemon, check, check_eq

README = os.path.join(harness.SRCROOT, "README.md")
MAN_PAGES = sorted(glob.glob(os.path.join(harness.SRCROOT, "client", "*.[13]")) +
                   glob.glob(os.path.join(harness.SRCROOT, "docs", "*.[358]")))
RUN_TIMEOUT = 120

# roff escapes used in the examples, and what they stand for
ROFF = [("\\(aq", "'"), ("\\(dq", '"'), ("\\(lq", '"'), ("\\(rq", '"'), ("\\(rs", "\\"),
        ("\\-", "-"), ("\\&", ""), ("\\e", "\\")]

# commands an example may pipe through and still be run here
TOOLS = {"poolctl", "ls", "echo", "printf", "seq", "socat", "nc", "tail", "head", "sort", "jq", "wc"}
# commands whose output changes from run to run: run, but do not compare
VARYING = ("status", "ping", "top", "metrics", "functions", "getpid", "--version", "uptime")


def rel(path):
    return os.path.relpath(path, harness.SRCROOT)


def unroff(line):
    for esc, text in ROFF:
        line = line.replace(esc, text)
    return line


def man_blocks(path):
    """(first line number, lines) of each .EX/.EE and .nf/.fi block, unescaped."""
    blocks, cur, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for n, ln in enumerate(f, 1):
            ln = ln.rstrip("\n")
            if ln in (".EX", ".nf"):
                cur, start = [], n + 1
            elif ln in (".EE", ".fi") and cur is not None:
                blocks.append((start, cur))
                cur = None
            elif cur is not None and not ln.startswith("."):
                cur.append(unroff(ln))
    return blocks


def markdown_blocks(path, langs):
    """(first line number, lines) of each fenced block whose language is in langs."""
    blocks, cur, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for n, ln in enumerate(f, 1):
            ln = ln.rstrip("\n")
            if cur is None and ln.startswith("```"):
                cur, start, lang = [], n + 1, ln[3:].strip()
            elif cur is not None and ln.startswith("```"):
                if lang in langs:
                    blocks.append((start, cur))
                cur = None
            elif cur is not None:
                cur.append(ln)
    return blocks


def c_programs():
    """(where, source) of every complete C program in the docs; README ```c blocks must be."""
    progs = []
    for start, lines in markdown_blocks(README, ("c",)):
        progs.append(("%s:%d" % (rel(README), start), "\n".join(lines) + "\n"))
    for page in MAN_PAGES:
        for start, lines in man_blocks(page):
            text = "\n".join(lines) + "\n"
            if re.search(r"\bint main\s*\(", text):
                progs.append(("%s:%d" % (rel(page), start), text))
    return progs


def daemon_env(d, workdir):
    """The environment of the examples: the daemon is the default socket, $S, and
    $XDG_RUNTIME_DIR/poold/poold.sock."""
    xdg = os.path.join(workdir, "xdg")
    os.makedirs(os.path.join(xdg, "poold"), exist_ok=True)
    link = os.path.join(xdg, "poold", "poold.sock")
    if not os.path.lexists(link):
        os.symlink(d.sock, link)
    env = dict(os.environ)
    env.update(harness.SANITIZER_ENV)
    env.update({"POOLD_SOCKET": d.sock, "S": d.sock, "XDG_RUNTIME_DIR": xdg,
                "PATH": os.path.dirname(os.path.abspath(harness.poolctl_bin())) + ":" +
                env.get("PATH", "")})
    env.pop("POOLD_DEADLINE_MS", None)
    return env


def test_c_programs():
    cc = shutil.which("cc")
    if not cc:
        raise harness.Skip("no C compiler")
    libdir = os.path.dirname(os.path.abspath(harness.poolctl_bin()))
    check(glob.glob(os.path.join(libdir, "libpoolclient.so*")),
          "no libpoolclient.so beside poolctl in %s" % libdir)
    cjson = subprocess.run(["pkg-config", "--cflags", "--libs", "libcjson"],
                           stdout=subprocess.PIPE, check=True).stdout.decode().split()
    progs = c_programs()
    check(len(progs) >= 3, "found only %d C programs in the docs" % len(progs))
    failures = []
    with Daemon(workers=2) as d:
        env = daemon_env(d, d.dir)
        # A sanitized libpoolclient wants its programs built with the same runtime.
        san = ["-fsanitize=address,undefined"] if harness.sanitized(d) else []
        for i, (where, src) in enumerate(progs):
            if not re.search(r"\bint main\s*\(", src):
                failures.append("%s: a ```c block that is not a complete program (no main)" %
                                where)
                continue
            path = os.path.join(d.dir, "doc%d.c" % i)
            exe = os.path.join(d.dir, "doc%d" % i)
            with open(path, "w") as f:
                f.write(src)
            p = subprocess.run([cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror"] + san +
                               ["-o", exe, path,
                                "-I" + os.path.join(harness.SRCROOT, "client"), "-L" + libdir,
                                "-Wl,-rpath," + libdir, "-lpoolclient"] + cjson,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            if p.returncode != 0:
                failures.append("%s: does not compile:\n%s" % (where, p.stdout.decode()))
                continue
            p = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               cwd=d.dir, timeout=RUN_TIMEOUT)
            print("%s: compiled and ran, exit %d" % (where, p.returncode))
            if p.returncode != 0 or p.stderr or not p.stdout:
                failures.append("%s: exit %d, stdout %r, stderr %r" %
                                (where, p.returncode, p.stdout[:200], p.stderr[:500]))
        d.wait_quiet()
    check(not failures, "C programs of the docs:\n" + "\n".join(failures))


def expected_prints(src):
    """The values a README Python program's comments promise: `print(...)  # VALUE`."""
    return [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s*#\s*(.+)$", src, re.M)]


def test_python_programs():
    """Every README ```python block runs: a Pool client prints what its comments say; a
    worker program answers poold's handshake and a request line."""
    blocks = markdown_blocks(README, ("python",))
    check(len(blocks) >= 2, "found only %d Python programs in README.md" % len(blocks))
    pyenv = {"PYTHONPATH": os.path.join(harness.SRCROOT, "python"),
             "PYTHONDONTWRITEBYTECODE": "1"}
    with Daemon(workers=2) as d:
        env = daemon_env(d, d.dir)
        env.update(pyenv)
        for i, (start, lines) in enumerate(blocks):
            src, where = "\n".join(lines) + "\n", "%s:%d" % (rel(README), start)
            path = os.path.join(d.dir, "doc%d.py" % i)
            with open(path, "w") as f:
                f.write(src)
            if "poold.worker.serve()" in src:
                req = json.dumps({"fn": "slugify", "star": False, "apply": False,
                                  "args": ["Hello, World!"]}) + "\n"
                p = subprocess.run([sys.executable, path], input=req.encode(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                   timeout=RUN_TIMEOUT)
                out = p.stdout.decode().splitlines()
                check(p.returncode == 0 and len(out) == 2, "%s: exit %d, %r %r" %
                      (where, p.returncode, out, p.stderr[-300:]))
                check("slugify" in json.loads(out[0])["functions"][0]["name"],
                      "%s: handshake %s" % (where, out[0]))
                check_eq(json.loads(out[1]), {"results": ["hello-world"]}, where + " reply")
                continue
            p = subprocess.run([sys.executable, path], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=RUN_TIMEOUT)
            got = p.stdout.decode().split("\n")
            check(p.returncode == 0, "%s: exit %d: %r" % (where, p.returncode, p.stderr[-500:]))
            for want in expected_prints(src):
                check(want in got, "%s: no output line %r in %r" % (where, want, got))
            print("%s: ran, %d promised lines seen" % (where, len(expected_prints(src))))
        d.wait_quiet()


def shell_examples():
    """(where, command, expected output lines) of every "$ " line in the docs."""
    blocks = [(rel(README), b) for b in markdown_blocks(README, ("sh", "console", "shell"))]
    for page in MAN_PAGES:
        blocks += [(rel(page), b) for b in man_blocks(page)]
    out = []
    for name, (start, lines) in blocks:
        for k, ln in enumerate(lines):
            if not ln.startswith("$ "):
                continue
            cmd, n, want = ln[2:], start + k, []
            while cmd.endswith("\\") and k + 1 < len(lines):  # continued line
                k += 1
                cmd = cmd[:-1] + lines[k]
            for nxt in lines[k + 1:]:
                if nxt.startswith("$ "):
                    break
                want.append(nxt)
            out.append(("%s:%d" % (name, n), cmd, want))
    return out


def why_not_run(cmd):
    """Why a shell example cannot run here, or None."""
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        return "not one shell command"
    if not words:
        return "empty"
    if re.match(r"^[A-Za-z_]+=\S*$", words[0]) and len(words) == 1:
        return "an assignment (the test sets it)"
    firsts, new = [], True
    for w in words:
        if new:
            firsts.append(w)
        new = w in ("|", ";", "&&", "||")
    for w in firsts:
        if w not in TOOLS:
            return "runs %s" % w
        if w in ("nc", "jq") and not shutil.which(w):
            return "%s is not installed" % w
    if "&" in words:
        return "starts a background job"
    if "top" in words and not {"--count", "-n"} & set(words):
        return "runs until interrupted"
    return None


def test_shell_examples():
    examples = shell_examples()
    check(len(examples) >= 10, "found only %d shell examples in the docs" % len(examples))
    failures, ran = [], 0
    with Daemon(workers=3) as d:
        env = daemon_env(d, d.dir)
        fns = set(subprocess.run([harness.poolctl_bin(), "--socket", d.sock, "functions"],
                                 stdout=subprocess.PIPE, check=True)
                  .stdout.decode().split("\n")[1:])
        fns = {ln.split()[0] for ln in fns if ln.strip()}
        for where, cmd, want in examples:
            reason = why_not_run(cmd)
            # the README's daemon is "poold --socket /tmp/p.sock": ours stands in for it
            run_cmd = cmd.replace("/tmp/p.sock", d.sock)
            if reason:
                print("skip %s: %s: %s" % (where, reason, cmd))
                continue
            p = subprocess.run(["bash", "-c", run_cmd], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, cwd=d.dir, timeout=RUN_TIMEOUT)
            text = p.stdout.decode(errors="replace")
            got = text.splitlines()
            unknown = ("poolctl: unknown_function" in text or
                       '"code":"unknown_function"' in text)
            if unknown and not any("unknown_function" in w for w in want):
                named = re.findall(r'"fn":"([^"]+)"', cmd) + re.findall(
                    r"\b(?:map|starmap|apply)\s+(?:-\S+\s+)*([A-Za-z_]\w*)", cmd)
                print("skip %s: needs a configured function (%s): %s" %
                      (where, " ".join(f for f in named if f not in fns) or "?", cmd))
                continue
            ran += 1
            compare = want and not any(v in cmd for v in VARYING)
            ok = got == want if compare else ("echo $?" in cmd or p.returncode == 0)
            print("%s %s: %s" % ("ok  " if ok else "FAIL", where, cmd))
            if not ok:
                failures.append("%s: %s\n  exit %d, got %r\n  want %r" %
                                (where, cmd, p.returncode, got[:20],
                                 want if compare else "exit status 0"))
        d.wait_quiet(connections=None)
    check(ran >= 10, "only %d shell examples ran" % ran)
    check(not failures, "shell examples of the docs:\n" + "\n".join(failures))


harness.main(globals())
