#!/usr/bin/env bash
# bench/profile.sh - where the time goes: perf record -g of one workload against poold.
#
#   bench/profile.sh [a|b|d|f] [--workers N] [--build DIR]
#
# Starts a private W-worker poold (release build, as run.sh), records every CPU
# with call graphs (perf record -a -g) while bench_client runs workload a (map
# 1,000,000 squares, 10 times), b (20,000 applies) or f (200 clients x 500
# applies), or poolctl streams d (seq 0 9999999 | poolctl map square -), and
# prints the top symbols per process role (client, supervisor, workers) with
# bench/perfsum.py. Needs perf and perf_event_paranoid <= 1 or root.
# perf.data is kept in bench/out/perf-WORKLOAD.data.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build="$root/build-bench" workers=$(nproc) workload=a

while [ $# -gt 0 ]; do
	case $1 in
	a|b|d|f) workload=$1 ;;
	--workers|-w) workers=$2; shift ;;
	--build) build=$2; shift ;;
	-h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "profile.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ -n "${POOLD_BIN:-}" ] && [ -n "${BENCH_CLIENT:-}" ] && [ -n "${POOLCTL_BIN:-}" ]; then
	poold=$POOLD_BIN client=$BENCH_CLIENT poolctl=$POOLCTL_BIN
else
	[ -f "$build/build.ninja" ] || meson setup "$build" "$root" --buildtype=release >&2
	ninja -C "$build" daemon/poold bench/bench_client client/poolctl >&2
	poold=$build/daemon/poold client=$build/bench/bench_client poolctl=$build/client/poolctl
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/poold-prof.XXXXXX")
pid=
cleanup() {
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sock=$tmp/p.sock
TMPDIR=$tmp "$poold" --socket "$sock" --workers "$workers" 2>"$tmp/log" &
pid=$!
# Ready when the socket answers ping and every worker is idle (30 s deadline).
python3 - "$sock" <<'PY'
import json, socket, sys, time
deadline = time.monotonic() + 30
while True:
    try:
        s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
        s.sendall(b'{"id":1,"op":"status"}\n'); buf = b""
        while not buf.endswith(b"\n"):
            buf += s.recv(65536) or sys.exit("poold closed the connection")
        st = json.loads(buf)["status"]
        if all(x["state"] == "idle" for x in st["slots"]):
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("poold not ready within 30 s")
    time.sleep(0.01)
PY
workers_pids=$(tr ' ' '\n' </proc/"$pid"/task/"$pid"/children | grep . | paste -sd, -)

case $workload in
a) cmd=("$client" map "$sock" 1000000 10) ;;
b) cmd=("$client" apply "$sock" 20000 1000) ;;
f) cmd=("$client" clients "$sock" 200 500) ;;
d) cmd=(sh -c 'seq 0 9999999 | "$1" -s "$2" map square - >/dev/null' sh "$poolctl" "$sock") ;;
esac
comm=bench_client
[ "$workload" != d ] || comm=poolctl
mkdir -p "$here/out"
data=$here/out/perf-$workload.data
echo "perf record -a -g -- ${cmd[*]}" >&2
perf record -q -a -g -o "$data" -- "${cmd[@]}" >&2
perf script -i "$data" -F comm,pid,tid,ip,sym,dso 2>/dev/null |
	python3 "$here/perfsum.py" --supervisor "$pid" --workers "$workers_pids" --client-comm "$comm"
