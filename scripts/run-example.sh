#!/usr/bin/env bash
# make run: the main job. Starts tierd with the bundled 24-agent team
# (examples/team24.ini), waits until every agent is ready, runs a full-team
# workflow over a real text, checks the agents' work, saves the run's trace
# and stops tierd, leaving nothing behind.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
conf="$top/examples/team24.ini"
sock=/run/tierd/team24.sock
ctl() { "$build/tierctl" --socket "$sock" "$@"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "make run needs root (cgroups, agents' credentials)" >&2
	exit 1
fi
log=$(mktemp /tmp/tierd-run.XXXXXX.log)
"$build/tierd" -c "$conf" >"$log" 2>&1 &
tierd=$!
cleanup() {
	if kill -0 "$tierd" 2>/dev/null; then
		kill -TERM "$tierd"
		wait "$tierd" || true
	fi
}
trap cleanup EXIT

echo "== tierd started (pid $tierd, log $log); waiting for 24 agents"
for _ in $(seq 1 200); do
	if ctl --json agents 2>/dev/null | python3 -c '
import json, sys
a = json.load(sys.stdin)["agents"]
sys.exit(0 if len(a) == 24 and all(x["state"] == "ready" for x in a) else 1)' 2>/dev/null; then
		break
	fi
	if ! kill -0 "$tierd" 2>/dev/null; then
		cat "$log"
		echo "tierd exited" >&2
		exit 1
	fi
	sleep 0.1
done
ctl status
echo
ctl agents
echo
text="$top/examples/data/team-brief.txt"
echo "== full-team workflow over $(wc -w <"$text") words ($text)"
ctl run docs "@$text"
run=$(ctl --json runs | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][-1]["run"])')
ctl --json runs "$run" >"$build/run-result.json"
python3 - "$build/run-result.json" <<'EOF'
import json, sys
agg = json.load(open(sys.argv[1]))
res = agg["results"]
orch = json.loads([r for r in res if r["tier"] == 1][0]["result"])
shards = [json.loads(r["result"]) for r in res if r["tier"] == 3]
total = sum(s["words"] for s in shards)
print("checked: orchestrator counted %d words (%d distinct, top '%s' x%d); the %d secondary shards add up to %d %s"
      % (orch["words"], orch["distinct"], orch["top"], orch["top_count"], len(shards), total,
         "(match)" if total == orch["words"] else "(MISMATCH)"))
spec = [r["agent"] for r in res if r["tier"] == 4]
print("tier 4 ran only the specialists matching type '%s': %s" % (agg["type"], ", ".join(spec)))
print("tier 4 saw the %d earlier results as context" % json.loads([r for r in res if r["tier"] == 4][0]["result"])["context_lines"])
sys.exit(0 if total == orch["words"] else 1)
EOF
ctl --json trace "$run" >"$build/run-trace.json"
echo "trace of run $run written to $build/run-trace.json (open it in https://ui.perfetto.dev)"
echo
echo "== live upgrade: tierd re-executes itself in place (docs/operations.md)"
pids_before=$(ctl --json agents | python3 -c 'import json,sys; print(sorted(a["pid"] for a in json.load(sys.stdin)["agents"]))')
ctl upgrade
pids_after=$(ctl --json agents | python3 -c 'import json,sys; print(sorted(a["pid"] for a in json.load(sys.stdin)["agents"]))')
if [ "$pids_before" = "$pids_after" ]; then
	echo "all 24 agent pids unchanged across the upgrade"
else
	echo "agent pids changed across the upgrade" >&2
	exit 1
fi
echo
cg=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["cgroup"]["root"])')
echo "== stopping tierd"
kill -TERM "$tierd"
wait "$tierd"
trap - EXIT
if [ -e "$cg" ]; then
	echo "cgroup tree $cg still exists" >&2
	exit 1
fi
echo "tierd stopped; cgroup tree $cg removed; log in $log"
