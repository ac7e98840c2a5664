"""Summarize `perf script -F comm,pid,tid,ip,sym,dso` output per process role.

    perf script -i perf.data -F comm,pid,tid,ip,sym,dso | \\
        python3 perfsum.py --supervisor PID --workers PID,PID [--client-comm bench_client] [--top N]

For each role (client, supervisor, workers taken together) it prints its share
of the samples of those three (other processes on the machine are counted, not shown), the top symbols by self samples, and, for samples in
the kernel, the first user-space frame under them (what the process was doing
when it entered the kernel: a syscall, or a page fault in memmove/malloc).
Standard library only.
"""

import argparse
import collections
import re
import sys

HEADER = re.compile(r"^(\S.*?)\s+(\d+)/(\d+)\s*$")
FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def frames_of(lines):
    out = []
    for line in lines:
        m = FRAME.match(line)
        if m:
            sym, dso = m.group(2), m.group(3)
            out.append((sym if sym != "[unknown]" else "?", dso.rsplit("/", 1)[-1]))
    return out


def samples(stream):
    head, body = None, []
    for line in stream:
        line = line.rstrip("\n")
        m = HEADER.match(line)
        if m and not line.startswith((" ", "\t")):
            if head:
                yield head, frames_of(body)
            head, body = (m.group(1), int(m.group(2))), []
        elif line.strip():
            body.append(line)
    if head:
        yield head, frames_of(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--supervisor", type=int, required=True)
    ap.add_argument("--workers", default="")
    ap.add_argument("--client-comm", default="bench_client")
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    workers = {int(p) for p in a.workers.split(",") if p}
    total = 0
    by_role = collections.defaultdict(collections.Counter)
    kern_by_role = collections.defaultdict(collections.Counter)
    count = collections.Counter()
    for (comm, pid), frames in samples(sys.stdin):
        if not frames:
            continue
        role = ("supervisor" if pid == a.supervisor else "worker" if pid in workers
                else "client" if comm == a.client_comm else "other")
        total += 1
        count[role] += 1
        sym, dso = frames[0]
        by_role[role]["%s (%s)" % (sym, dso)] += 1
        if dso == "[kernel.kallsyms]":
            user = next(("%s (%s)" % f for f in frames if f[1] != "[kernel.kallsyms]"), "?")
            kern_by_role[role]["%s <- %s" % (user, kern_kind(frames))] += 1
    ours = total - count["other"]
    if not ours:
        raise SystemExit("perfsum: no samples of the client or the daemon")
    print("%d samples: client, supervisor and workers %d; other processes on the machine %d "
          "(%.0f%%, not shown)\n" % (total, ours, count["other"], 100.0 * count["other"] / total))
    for role in ("client", "supervisor", "worker"):
        n = count[role]
        if not n:
            continue
        kern = sum(kern_by_role[role].values())
        print("### %s: %.1f%% of the run's samples (%d), %.0f%% of them in the kernel" %
              (role + ("s (%d)" % len(workers) if role == "worker" else ""),
               100.0 * n / ours, n, 100.0 * kern / n))
        print()
        print("| self % of role | symbol (dso) |")
        print("|---|---|")
        for name, k in by_role[role].most_common(a.top):
            print("| %.1f | %s |" % (100.0 * k / n, name.replace("|", "\\|")))
        if kern:
            print()
            print("kernel samples by the user frame that entered the kernel:")
            print()
            for name, k in kern_by_role[role].most_common(6):
                print("- %.1f%%: %s" % (100.0 * k / n, name))
        print()


def kern_kind(frames):
    """page fault, syscall name or 'kernel' for a kernel stack."""
    names = [s for s, d in frames if d == "[kernel.kallsyms]"]
    if any("page_fault" in s for s in names):
        return "page fault"
    for s in reversed(names):
        if s.startswith("__x64_sys_") or s.startswith("__sys_"):
            return s.replace("__x64_sys_", "").replace("__sys_", "") + "()"
    return "kernel"


if __name__ == "__main__":
    main()
