#!/bin/sh
# run-fuzzers.sh DIR SECONDS - run each libFuzzer target built in DIR for SECONDS.
#
# DIR is a build directory configured with `CC=clang meson setup DIR -Dfuzz=true`.
# ./test.sh runs the same through meson (suite fuzz). Exits 1 if any fuzzer
# crashed or is missing.
set -u
if [ $# -ne 2 ]; then
	echo "usage: $0 BUILDDIR SECONDS" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
failed=0
for t in fuzz_request fuzz_json fuzz_wire fuzz_digits fuzz_ints; do
	exe=$1/tests/fuzz/$t
	if [ ! -x "$exe" ]; then
		echo "FAIL $t: no fuzzer binary in $1 (configure with -Dfuzz=true and CC=clang)" >&2
		failed=1
		continue
	fi
	"$here/fuzz-one.sh" "$exe" "$here/corpus/$t" "$2" || failed=1
done
exit $failed
