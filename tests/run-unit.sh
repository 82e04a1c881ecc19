#!/usr/bin/env bash
# Run every Criterion unit test binary in BUILD/tests. Exit non-zero if any fails.
set -u
build=${1:-build}
fail=0 n=0
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	n=$((n + 1))
	name=$(basename "$t")
	if "$t" --jobs 1 --short-filename >"$build/tests/$name.log" 2>&1; then
		printf '  PASS  %s  (%s)\n' "$name" "$(grep -Eo 'Tested: [0-9]+.*' "$build/tests/$name.log" | tail -n 1)"
	else
		printf '  FAIL  %s\n' "$name"
		tail -n 40 "$build/tests/$name.log"
		fail=$((fail + 1))
	fi
done
echo "unit: $n suites, $fail failed"
[ "$fail" -eq 0 ]
