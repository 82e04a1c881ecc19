#!/usr/bin/env bash
# Host integration tests: real tierd, real agents, real rings, the host's
# cgroup2. Each test_*.py prints PASS/FAIL per test and a summary line.
set -u
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
export TIERD_BUILD=$(cd "$build" && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "integration: SKIPPED: needs root (cgroups, credentials)"
	exit 0
fi
if ! grep -q ' - cgroup2 ' /proc/self/mountinfo; then
	echo "integration: SKIPPED: no cgroup2 mount on this host"
	exit 0
fi
status=0
for t in "$here"/test_*.py; do
	echo "--- $(basename "$t")"
	python3 "$t" || status=1
done
exit $status
