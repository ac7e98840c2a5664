#!/usr/bin/env bash
# bench/run.sh - issue 4's benchmark: poold against Python's multiprocessing.Pool.
#
#   bench/run.sh [--tiny] [--workers N] [--only abcdefghij] [--build DIR] [--no-poolmap-rss]
#                [--quiet-wait SEC] [--noisy-retries N]
#
# Builds poold in release mode (DIR, default build-bench/ at the repo root; reused
# when it exists), starts private poold instances on sockets in a fresh temp dir
# and runs workloads a-g, each beside its Python anchor. Writes BENCHMARKS.md at
# the repo root and bench/out/bench.json. --tiny: a few items per workload,
# correctness only, nothing written; it uses $POOLD_BIN, $POOLCTL_BIN and
# $BENCH_CLIENT when set (meson test --suite bench sets them) instead of building.
# Before each workload it waits up to SEC (120) seconds for an idle machine, and
# runs a workload again (N times at most, 2) when other processes used >10% of it.
# Every process started is killed on exit, whatever happens.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
tiny=0 build="$root/build-bench" py_args=() workers=$(nproc)
argv_text="$*"

while [ $# -gt 0 ]; do
	case $1 in
	--tiny) tiny=1; py_args+=(--tiny) ;;
	--workers|-w) py_args+=(--workers "$2"); workers=$2; shift ;;
	--only) py_args+=(--only "$2"); shift ;;
	--build) build=$2; shift ;;
	--no-poolmap-rss) py_args+=(--no-poolmap-rss) ;;
	--quiet-wait) py_args+=(--quiet-wait "$2"); shift ;;
	--noisy-retries) py_args+=(--noisy-retries "$2"); shift ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ -n "${POOLD_BIN:-}" ] && [ -n "${POOLCTL_BIN:-}" ] && [ -n "${BENCH_CLIENT:-}" ]; then
	poold=$POOLD_BIN poolctl=$POOLCTL_BIN client=$BENCH_CLIENT
	module=${TEXTSTATS_SO:-$(dirname "$(dirname "$POOLD_BIN")")/examples/modules/textstats.so}
else
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root" --buildtype=release >&2
	elif [ "$(meson introspect --buildoptions "$build" |
		python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"][0])')" != release ]; then
		echo "run.sh: $build is not a release build (meson configure $build -Dbuildtype=release)" >&2
		exit 2
	fi
	ninja -C "$build" daemon/poold client/poolctl bench/bench_client \
		examples/modules/textstats.so >&2
	poold=$build/daemon/poold poolctl=$build/client/poolctl client=$build/bench/bench_client
	module=$build/examples/modules/textstats.so
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/poold-bench.XXXXXX")
py=
cleanup() {
	local pg
	if [ -n "$py" ]; then
		kill -TERM "$py" 2>/dev/null || true
		wait "$py" 2>/dev/null || true
	fi
	if [ -f "$tmp/pgids" ]; then
		while read -r pg; do
			kill -KILL -- "-$pg" 2>/dev/null || true
		done <"$tmp/pgids"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

args=(--tmp "$tmp" --poold "$poold" --poolctl "$poolctl" --client "$client" --module "$module")
if [ "$tiny" = 0 ]; then
	mkdir -p "$here/out"
	args+=(--out "$root/BENCHMARKS.md" --json "$here/out/bench.json" "--argv=$argv_text")
fi
# In the background, so that a signal to this script runs its trap at once.
python3 "$here/bench.py" "${args[@]}" "${py_args[@]}" &
py=$!
rc=0
wait "$py" || rc=$?
# Issue 8's rows (worker programs, commands per item), appended to BENCHMARKS.md.
if [ "$rc" = 0 ]; then
	python3 "$here/programs_bench.py" "${args[@]}" "${py_args[@]}" &
	py=$!
	wait "$py" || rc=$?
fi
# Issue 10's row (the Python client poold.Pool against multiprocessing.Pool).
if [ "$rc" = 0 ]; then
	python3 "$here/pyclient_bench.py" "${args[@]}" "${py_args[@]}" &
	py=$!
	wait "$py" || rc=$?
fi
# Issue 11's rows (worker hosts on loopback, remote TLS submission): one line each.
if [ "$rc" = 0 ] && [ "$tiny" = 0 ]; then
	{
		printf '\n## Network (issue 11)\n\nSame run, loopback only, W = %s.\n\n' "$workers"
		printf -- '- %s\n' "$(python3 "$here/hosts_bench.py" "$poold" "$workers" 4000)"
		printf -- '- %s\n' "$(python3 "$here/tls_bench.py" "$poold" 10000)"
	} >>"$root/BENCHMARKS.md" || rc=$?
fi
py=
exit "$rc"
