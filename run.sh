#!/usr/bin/env bash
# The main job: build poold, start it on a private socket with a configuration
# declaring one function of each kind (C module, worker program, command), run
# the reference examples (Python's multiprocessing notes, as poold maps) and
# those functions, show functions, status and metrics, stop the daemon cleanly.
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

# The user's own work, one function of each kind: a C module, a worker program
# (Python, kept warm in each worker) and a command per item.
conf=$dir/poold.conf
cat >"$conf" <<CONF
[function wordcount]
kind = module
module = $PWD/build/examples/modules/textstats.so
description = lines, words and bytes of a text, as wc counts them

[function mandelbrot_row]
kind = module
module = $PWD/build/examples/modules/textstats.so

[function slugify]
kind = program
command = python3 $PWD/examples/programs/pyfuncs.py
env = PYTHONPATH=$PWD/python

[function sha256sum]
kind = command
command = sh -c 'printf %s "\$1" | sha256sum | cut -d " " -f 1' sha256sum {}
description = SHA-256 of a string, by sha256sum(1)
CONF
chmod 600 "$conf"
echo "## poold --check-config (like nginx -t)"
"$poold" --check-config --config "$conf"

"$poold" --socket "$sock" --config "$conf" --workers "${WORKERS:-$(nproc)}" 2>"$dir/poold.log" &
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
printf '\n## your own functions: a C module, a Python worker program, a command per item\n'
show "wordcount (C module textstats.so)" "${poolctl[@]}" map wordcount '"the quick brown fox"' '"a b\nc"'
show "mandelbrot_row (C module): row 12 of a 40x24 image, 50 iterations" \
	"${poolctl[@]}" apply mandelbrot_row 12 40 24 50
show "slugify (Python worker program, warm in each worker)" \
	"${poolctl[@]}" map slugify '"Hello, World!"' '"poold runs YOUR work"'
show "sha256sum (a command per item; the item is one argument, never shell code)" \
	"${poolctl[@]}" map sha256sum '"abc"' '"; rm -rf /"'
printf '\n## raw lines in, raw strings out (like jq -R / -r)\n$ printf "a\\nb c\\n" | poolctl map -R -r sha256sum -\n'
printf 'a\nb c\n' | "${poolctl[@]}" map -R -r sha256sum -
printf '\n## poolctl functions\n'
"${poolctl[@]}" functions
printf '\n## poolctl status\n'
"${poolctl[@]}" status
printf '\n## poolctl metrics (Prometheus text format), a few lines\n'
"${poolctl[@]}" metrics | grep -E '^poold_(requests_total|items_total|worker_starts_total)' | head -8

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
echo
echo "poold stopped (exit status $status); socket removed: $([ -e "$sock" ] && echo no || echo yes)"
