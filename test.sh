#!/usr/bin/env bash
# Build poold and run every suite: format check, unit, integration, the same
# suites under AddressSanitizer+UBSan, and the libFuzzer targets (when clang
# is there). The last line is "N passed, N failed" from meson's own results.
set -uo pipefail
cd "$(dirname "$0")"
. scripts/ensure-deps.sh
ensure_deps clang clang-format libclang-rt-14-dev systemd iproute2 jq parallel || { echo "cannot install dependencies" >&2; exit 2; }

logs=()
failed_steps=0

# setup DIR [meson options...]: configure (or reconfigure) a build directory.
setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

# suite DIR [meson test args...]: build and run tests, remember the results.
suite() {
	local dir=$1
	shift
	if ! ninja -C "$dir" >"$dir.ninja.log" 2>&1; then
		cat "$dir.ninja.log" >&2
		echo "build failed in $dir" >&2
		failed_steps=$((failed_steps + 1))
		return
	fi
	meson test -C "$dir" --print-errorlogs "$@"
	logs+=("$dir/meson-logs/testlog.json")
}

echo "== clang-format"
if ! clang-format --dry-run -Werror $(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*'); then
	echo "clang-format: the files above need formatting" >&2
	failed_steps=$((failed_steps + 1))
fi

echo "== build and test (werror)"
setup build -Dwerror=true
suite build --no-suite fuzz

# The soak (minutes of mixed load) and the tiny benchmark run once, in the
# build above; every other suite runs again under the sanitizers.
echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	suite build-asan --no-suite fuzz --no-suite soak --no-suite bench --timeout-multiplier 3

if command -v clang >/dev/null; then
	echo "== libFuzzer targets (${FUZZ_SECONDS:=30} s each)"
	CC=clang setup build-fuzz -Dfuzz=true -Dwerror=true
	FUZZ_SECONDS=$FUZZ_SECONDS suite build-fuzz --suite fuzz
else
	echo "clang not found: fuzzers skipped"
fi

python3 - "$failed_steps" "${logs[@]}" <<'PY'
import json, sys
ok_states = {"OK", "EXPECTEDFAIL"}
bad_states = {"FAIL", "TIMEOUT", "UNEXPECTEDPASS", "ERROR"}
passed = failed = skipped = 0
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        r = json.loads(line)
        if r["result"] in ok_states:
            passed += 1
        elif r["result"] in bad_states:
            failed += 1
            print("FAILED:", path.split("/")[0], r["name"], file=sys.stderr)
        else:
            skipped += 1
failed += int(sys.argv[1])
if skipped:
    print(f"({skipped} skipped)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
