#!/usr/bin/env bash
# make test: the layer check, unit tests, fuzzers (bounded), host integration,
# VM suite.
# Each part runs even if an earlier one failed; the summary says which failed.
set -u
build=${1:-build}
declare -a failed=()
part() {
	local name=$1
	shift
	echo "=== $name"
	if "$@"; then echo "=== $name: ok"; else echo "=== $name: FAILED"; failed+=("$name"); fi
}
# The include rules of docs/architecture.md, and the test of that check.
part layers python3 scripts/check-layers.py --strict-cycles
part layers-check python3 tests/test_check_layers.py
part unit bash tests/run-unit.sh "$build"
part fuzz make --no-print-directory BUILD="$build" fuzz
if [ -x tests/integration/run.sh ]; then part integration bash tests/integration/run.sh "$build"; fi
if [ -x tests/vm/run.sh ]; then part vm bash tests/vm/run.sh "$build"; fi
if [ -x tests/vm/powercut.sh ]; then part vm-powercut bash tests/vm/powercut.sh "$build"; fi
if [ ${#failed[@]} -gt 0 ]; then
	echo "test: FAILED: ${failed[*]}"
	exit 1
fi
echo "test: all parts passed"
