#!/usr/bin/env bash
# make bench: run every benchmark; each measures its own baselines in the
# same run and prints ratios. Output is also saved under BUILD/bench/.
set -u
build=${1:-build}
status=0
for b in "$build"/bench/*_bench; do
	[ -x "$b" ] || continue
	name=$(basename "$b")
	echo "=== $name"
	if ! "$b" 2> >(grep -v '^  repetition' >&2) | tee "$build/bench/$name.txt"; then
		echo "=== $name: FAILED"
		status=1
	fi
	echo
done
exit $status
