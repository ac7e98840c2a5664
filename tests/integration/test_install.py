"""`meson install --destdir`: every file a user or packager needs is there, and the
installed pieces work on their own: the README's C example and an example module
build against the installed headers and .pc files only and run against the
installed daemon; poolctl and the Python package work from the install."""

import json
import os
import re
import shutil
import tempfile

import harness
from harness import Daemon, check, check_eq, check_results

SRC = harness.SRCROOT


def build_root():
    root = os.environ.get("MESON_BUILD_ROOT")
    if not root or not os.path.isdir(root):
        raise harness.Skip("MESON_BUILD_ROOT is not set (run through meson test)")
    return root


def options(root):
    """The build's install directories (meson introspect), absolute."""
    p = harness.run(["meson", "introspect", "--buildoptions", root], timeout=60)
    check_eq(p.returncode, 0, "meson introspect: %r" % p.stderr[-500:])
    opts = {o["name"]: o["value"] for o in json.loads(p.stdout)}
    prefix = opts["prefix"]
    dirs = {k: v if k == "prefix" or os.path.isabs(v) else os.path.join(prefix, v)
            for k, v in opts.items()
            if k in ("prefix", "bindir", "sbindir", "libdir", "includedir", "datadir", "mandir")}
    return dirs, opts.get("b_sanitize", "none")


class Installed:
    """The build installed under a private DESTDIR."""

    def __init__(self):
        self.root = build_root()
        self.tmp = tempfile.mkdtemp(prefix="poold-inst-")
        self.destdir = os.path.join(self.tmp, "dest")
        p = harness.run(["meson", "install", "-C", self.root, "--destdir", self.destdir,
                         "--no-rebuild", "--quiet"], timeout=300)
        check_eq(p.returncode, 0, "meson install: %s" %
                 (p.stdout + p.stderr).decode(errors="replace")[-2000:])
        self.dirs, sanitize = options(self.root)
        # A sanitizer build's library needs the sanitizer's runtime in what links it.
        self.cflags = [] if sanitize in ("none", "") else ["-fsanitize=" + sanitize]

    def path(self, key, *rel):
        return os.path.join(self.destdir + self.dirs[key], *rel)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def expected(self):
        """(what, path) of every file the install must hold."""
        unit = ("prefix", "lib", "systemd")
        out = [
            ("the daemon", self.path("sbindir", "poold")),
            ("the CLI", self.path("bindir", "poolctl")),
            ("the client library", self.path("libdir", "libpoolclient.so.0")),
            ("the client library's link", self.path("libdir", "libpoolclient.so")),
            ("the client header", self.path("includedir", "poolclient.h")),
            ("the module header", self.path("includedir", "poold", "module.h")),
            ("pkg-config poolclient", self.path("libdir", "pkgconfig", "poolclient.pc")),
            ("pkg-config poold-module", self.path("libdir", "pkgconfig", "poold-module.pc")),
            ("poold(8)", self.path("mandir", "man8", "poold.8")),
            ("poold.conf(5)", self.path("mandir", "man5", "poold.conf.5")),
            ("poolctl(1)", self.path("mandir", "man1", "poolctl.1")),
            ("libpoolclient(3)", self.path("mandir", "man3", "libpoolclient.3")),
            ("poold-module(3)", self.path("mandir", "man3", "poold-module.3")),
            ("the protocol", self.path("datadir", "doc", "poold", "PROTOCOL.md")),
            ("the example config", self.path("datadir", "doc", "poold", "examples",
                                             "poold.conf")),
            ("bash completion", self.path("datadir", "bash-completion", "completions",
                                          "poolctl")),
            ("the sysusers.d file", self.path("prefix", "lib", "sysusers.d", "poold.conf")),
        ]
        for name in ("poold.service", "poold.socket", "poold-metrics.service",
                     "poold-metrics.timer"):
            out.append(("system unit", self.path(*unit, "system", name)))
        for name in ("poold.service", "poold.socket"):
            out.append(("user unit", self.path(*unit, "user", name)))
        pkg = self.python_dir()
        for name in ("__init__.py", "worker.py", "pool.py"):
            out.append(("the Python package", os.path.join(pkg or "(no poold package)", "poold",
                                                           name)))
        return out

    def python_dir(self):
        """The installed directory holding the poold package (site- or dist-packages)."""
        for dirpath, dirnames, filenames in os.walk(self.destdir + self.dirs["prefix"]):
            if os.path.basename(dirpath) == "poold" and "__init__.py" in filenames:
                return os.path.dirname(dirpath)
        return None

    def pkg_config(self, *args):
        """Flags from the installed .pc files. They name the configured prefix
        (absolute, as distributions want them), so copies with prefix= moved
        into DESTDIR stand in for them; their Requires (libcjson) come from
        the system as for any user."""
        pcdir = os.path.join(self.tmp, "pkgconfig")
        if not os.path.isdir(pcdir):
            os.makedirs(pcdir)
            src = self.path("libdir", "pkgconfig")
            for name in os.listdir(src):
                with open(os.path.join(src, name)) as f:
                    text = f.read()
                check(re.search(r"^prefix=%s$" % re.escape(self.dirs["prefix"]), text, re.M),
                      "%s: no prefix=%s line" % (name, self.dirs["prefix"]))
                text = re.sub(r"^prefix=.*$", "prefix=" + self.destdir + self.dirs["prefix"],
                              text, count=1, flags=re.M)
                with open(os.path.join(pcdir, name), "w") as f:
                    f.write(text)
        path = os.environ.get("PKG_CONFIG_PATH")
        p = harness.run(["pkg-config"] + list(args), timeout=30, env={
            "PKG_CONFIG_PATH": pcdir + (":" + path if path else "")})
        check_eq(p.returncode, 0, "pkg-config %s: %r" % (" ".join(args), p.stderr))
        return p.stdout.decode().split()

    def env(self):
        return {"LD_LIBRARY_PATH": self.path("libdir"), "PYTHONPATH": self.python_dir() or ""}


def readme_c_example():
    """The README's complete C program: its ```c block with an int main."""
    with open(os.path.join(SRC, "README.md")) as f:
        text = f.read()
    blocks = re.findall(r"^```c\n(.*?)^```", text, re.S | re.M)
    full = [b for b in blocks if re.search(r"\bint\s+main\s*\(", b)]
    check(full, "README.md has no ```c block with an int main (%d ```c blocks)" % len(blocks))
    return full[0]


def compile_c(src_text, out, flags, shared=False):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise harness.Skip("no C compiler")
    src = out + ".c"
    with open(src, "w") as f:
        f.write(src_text)
    argv = [cc, "-std=gnu11", "-Wall", "-Werror", "-o", out, src] + flags
    if shared:
        argv[1:1] = ["-shared", "-fPIC"]
    p = harness.run(argv, timeout=120)
    check_eq(p.returncode, 0, "compiling %s: %s" % (os.path.basename(src),
                                                     p.stderr.decode(errors="replace")))


def test_file_list():
    inst = Installed()
    try:
        missing = ["%s: %s" % (what, os.path.relpath(path, inst.destdir))
                   for what, path in inst.expected() if not os.path.exists(path)]
        check(not missing, "not installed:\n  " + "\n  ".join(missing))
        for what, path in inst.expected():
            if path.endswith((".service", ".socket", ".timer")):
                with open(path) as f:
                    text = f.read()
                check("@sbindir@" not in text and "@bindir@" not in text,
                      "%s: a template placeholder left in %s" % (what, path))
        with open(inst.path("sbindir", "poold"), "rb") as f:
            check_eq(f.read(4), b"\x7fELF", "poold is a binary")
        check(os.access(inst.path("sbindir", "poold"), os.X_OK), "poold is not executable")
        unit = inst.path("prefix", "lib", "systemd", "system", "poold.service")
        with open(unit) as f:
            execs = re.findall(r"^ExecStart=(\S+)", f.read(), re.M)
        check_eq(execs, [inst.dirs["sbindir"] + "/poold"], "poold.service's ExecStart binary")
    finally:
        inst.cleanup()


def test_build_and_run_installed():
    inst = Installed()
    saved_bin = os.environ.get("POOLD_BIN")
    try:
        out = os.path.join(inst.tmp, "build")
        os.makedirs(out)
        flags = inst.pkg_config("--cflags", "--libs", "poolclient")
        check(("-I" + inst.path("includedir")) in flags and
              ("-L" + inst.path("libdir")) in flags,
              "pkg-config poolclient does not name the installed include and lib "
              "directories: %s" % flags)
        example = os.path.join(out, "readme_example")
        compile_c(readme_c_example(), example, flags + inst.cflags)
        module = os.path.join(out, "hello.so")
        with open(os.path.join(SRC, "examples", "modules", "hello.c")) as f:
            compile_c(f.read(), module, inst.pkg_config("--cflags", "poold-module") + inst.cflags,
                      shared=True)
        os.chmod(out, 0o755)
        os.chmod(module, 0o755)
        os.environ["POOLD_BIN"] = inst.path("sbindir", "poold")
        config = "[function greet]\nkind = module\nmodule = %s\n" % module
        with Daemon(workers=2, config=config, env=inst.env()) as d:
            check_results(d.call({"op": "map", "fn": "greet", "args": ["ann", "bo"]}),
                          ["hello, ann", "hello, bo"], "the example module in the installed poold")
            env = dict(inst.env(), POOLD_SOCKET=d.sock)
            p = harness.run([example], timeout=60, env=env)
            check_eq(p.returncode, 0, "the README's C example: exit status (stdout %r, "
                     "stderr %r)" % (p.stdout[-500:], p.stderr[-500:]))
            p = harness.run([inst.path("bindir", "poolctl"), "--socket", d.sock, "map", "square",
                             "1", "2", "3"], timeout=60, env=inst.env())
            check_eq(p.returncode, 0, "installed poolctl map: %r" % p.stderr)
            check_eq([json.loads(x) for x in p.stdout.split()], [1, 4, 9],
                     "installed poolctl map output")
            check(inst.python_dir(), "the Python package poold is not installed")
            code = ("import poold, poold.worker, poold.pool, sys\n"
                    "print(poold.__file__)\n")
            p = harness.run(["python3", "-I", "-c", "import sys; sys.path.insert(0, %r); " %
                             inst.python_dir() + code], timeout=60)
            check_eq(p.returncode, 0, "importing the installed Python package: %r" % p.stderr)
            check(p.stdout.decode().startswith(inst.destdir),
                  "python imported poold from %r, not from the install" % p.stdout)
            d.wait_quiet()
    finally:
        if saved_bin is None:
            os.environ.pop("POOLD_BIN", None)
        else:
            os.environ["POOLD_BIN"] = saved_bin
        inst.cleanup()


harness.main(globals())
