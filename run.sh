#!/usr/bin/env bash
# The main job: build poold, start it on a private socket, run the reference
# examples (Python's multiprocessing notes, as poold maps), show the status,
# stop the daemon cleanly.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/ensure-deps.sh
ensure_deps

if [ -f build/build.ninja ]; then :; else meson setup build >/dev/null; fi
ninja -C build >/dev/null

dir=$(mktemp -d /tmp/poold-run.XXXXXX)
sock=$dir/poold.sock
poold=build/daemon/poold
poolctl=(build/client/poolctl --socket "$sock")
pid=

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

"$poold" --socket "$sock" --workers "${WORKERS:-$(nproc)}" 2>"$dir/poold.log" &
pid=$!
for _ in $(seq 100); do # up to 10 s for the daemon to answer
	"${poolctl[@]}" ping >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$dir/poold.log" >&2; exit 1; }
	sleep 0.1
done
"${poolctl[@]}" ping >/dev/null

show() { # show TITLE COMMAND...: print the poold equivalent and its output
	printf '\n## %s\n$ poolctl %s\n' "$1" "${*:3}"
	"${@:2}" | paste -sd' ' -
}

echo "poold is up (pid $pid, socket $sock)"
show "square each element, as multiprocessing.Array + 7 Processes -> [4, 9, 16, 25, 36, 49, 64]" \
	"${poolctl[@]}" map square 2 3 4 5 6 7 8
show "Pool(5).map(f, [1, 2, 3]) with f(x) = x*x -> [1, 4, 9]" \
	"${poolctl[@]}" map square 1 2 3
show "cube roots of [27, 125, 343, 729] -> 3, 5, 7, 9" \
	"${poolctl[@]}" map cbrt 27 125 343 729
show "starmap(add, [(1, 2), (3, 4)]) -> [3, 7]" \
	"${poolctl[@]}" starmap add '[1,2]' '[3,4]'
show "apply(add, (40, 2)) -> 42" \
	"${poolctl[@]}" apply add 40 2
printf '\n## which worker ran each item (os.getpid() in each Process)\n'
echo "supervisor pid: $pid"
"${poolctl[@]}" map --chunksize 1 getpid 1 2 3 4 5 6 7 8
printf '\n## Pool.imap over 1,000,000 items, streamed from stdin in constant memory\n'
printf '$ seq 0 999999 | poolctl map square - | tail -n 3\n'
seq 0 999999 | "${poolctl[@]}" map square - | tail -n 3
printf '\n## Pool.imap_unordered: results as they finish, with their index\n'
printf '$ printf "300\\n1\\n2\\n" | poolctl map --unordered sleep_ms -\n'
printf '300\n1\n2\n' | "${poolctl[@]}" map --unordered sleep_ms -
printf '\n## poolctl status\n'
"${poolctl[@]}" status

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
echo
echo "poold stopped (exit status $status); socket removed: $([ -e "$sock" ] && echo no || echo yes)"
