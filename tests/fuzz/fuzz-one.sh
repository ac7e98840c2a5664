#!/bin/sh
# fuzz-one.sh FUZZER CORPUS [SECONDS] - run one libFuzzer target for a bounded
# time (SECONDS, else $FUZZ_SECONDS, else 30) from a temporary copy of its seed
# corpus, so nothing is written into the source tree. Crash inputs are copied
# next to the fuzzer binary. Exits non-zero when the fuzzer found a crash.
set -u
exe=$1
corpus=$2
seconds=${3:-${FUZZ_SECONDS:-30}}
name=$(basename "$exe")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/poold-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp/corpus" "$tmp/artifacts"
cp "$corpus"/* "$tmp/corpus/"
if "$exe" -max_len=65536 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$tmp/artifacts/" "$tmp/corpus" >"$tmp/log" 2>&1; then
	grep -E '^stat::number_of_executed_units' "$tmp/log"
	echo "ok $name: ${seconds}s, no crash"
	exit 0
fi
echo "FAIL $name (log tail below)" >&2
tail -n 40 "$tmp/log" >&2
dest=$(dirname "$exe")/fuzz-artifacts
mkdir -p "$dest"
cp "$tmp/artifacts/"* "$dest/" 2>/dev/null && echo "crash inputs copied to $dest" >&2
exit 1
