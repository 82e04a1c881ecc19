#!/usr/bin/env bash
# make run-fleet: a fleet on this machine. Starts a three-server NATS
# JetStream cluster (loopback ports, R3 streams, stores in a temp dir) and
# three tierd nodes (the bundled team's shape, 4 secondaries each, their own
# cgroup roots and sockets), runs a stream of tasks and one full-team
# workflow through NATS, SIGKILLs one node mid-stream, and shows that every
# task got exactly one stored result and which node ran it. Everything it
# started is stopped by pid and its temp dirs removed (tests/integration/
# fleetlib.py). Needs root (cgroups), nats-server (scripts/setup-deps.sh).
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "make run-fleet needs root (cgroups, agents' credentials)" >&2
	exit 1
fi
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || {
	echo "no nats-server: run scripts/setup-deps.sh (Debian's nats-server package)" >&2
	exit 1
}
export TIERD_BUILD=$(cd "$build" && pwd)
export FLEET_TASKS=${FLEET_TASKS:-3000}
exec python3 - "$here" <<'PY'
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "integration"))
from fleetlib import NatsCluster, Node, fleet_section, node_alive
from natslib import Nats
from tierlib import TIERCTL, team_config, wait_until
from test_fleet_cluster import bulk_publish

N = int(os.environ["FLEET_TASKS"])
cluster = NatsCluster(3, name="runfleet")
nodes = []
n = None
try:
    t0 = time.monotonic()
    cluster.start().wait_ready()
    print("NATS: 3 JetStream servers in a cluster: %s" % cluster.urls())
    for i in range(3):
        body = ("[supervisor]\ncrash_loop_count = 64\n" + team_config(4) +
                "\n" + fleet_section(cluster, "node-%d" % i, "3s", 5))
        nodes.append(Node("fleet%d" % i, body).start())
    for nd in nodes:
        nd.wait_states("ready", timeout=60)
        wait_until(lambda: nd.fleet_status()["connected"], 30, 0.1, "%s connected" % nd.name)
    n = Nats(cluster.url(0), timeout=10)
    for st in ("TIERD_TASKS", "TIERD_RESULTS"):
        wait_until(lambda: n.js_api("STREAM.INFO." + st).get("cluster", {}).get("leader"), 30, 0.1,
                   "a leader of " + st)
    print("nodes: %s (each: the team's shape with 4 secondaries, R3 streams), up in %.1fs"
          % (", ".join("node-%d pid %d" % (i, nd.proc.pid) for i, nd in enumerate(nodes)),
             time.monotonic() - t0))

    # A stream of tasks to tier 3; node-1 is SIGKILLed a third of the way.
    hdr = {"Tierd-Type": "sleep"}
    seqs = bulk_publish(n, "tierd.task.tier.3", N // 3, hdr, payload=b"20")
    victim = nodes[1]
    try:
        wait_until(lambda: victim.fleet_status(True).get("leases", 0) > 0, 10, 0.01, "node-1 busy")
    except Exception:
        pass
    print("submitted %d tasks; SIGKILL node-1 (pid %d, holding %d leases)"
          % (len(seqs), victim.proc.pid, victim.fleet_status(True).get("leases", 0)))
    victim.sigkill()
    seqs += bulk_publish(n, "tierd.task.tier.3", N - len(seqs), hdr, payload=b"20")
    print("submitted %d tasks in all; waiting for their results" % len(seqs))

    # One full-team workflow through NATS, by tierctl.
    text = os.path.join(sys.argv[1], "examples", "data", "team-brief.txt")
    p = subprocess.run([TIERCTL, "-t", "120", "fleet", "run", "docs", "@" + text,
                        "--servers", cluster.urls()], capture_output=True, text=True)
    print("$ tierctl fleet run docs @examples/data/team-brief.txt")
    print(p.stdout.rstrip() or p.stderr.rstrip())

    want = {"tierd.result.%d" % s for s in seqs}
    def done():
        c = n.subject_counts("TIERD_RESULTS")
        return c if want <= set(c) else None
    cnt = wait_until(done, 300, 0.5, "every task's result")
    by_node, redelivered, status = {}, 0, {}
    for s in seqs:
        r = n.last_result("TIERD_RESULTS", "tierd.result.%d" % s)
        by_node[r["node"]] = by_node.get(r["node"], 0) + 1
        status[r["status"]] = status.get(r["status"], 0) + 1
        redelivered += r.get("deliveries", 1) > 1
    one = sum(1 for k in want if cnt.get(k) == 1)
    print("\n%d tasks, %d with exactly one stored result, statuses %s" % (len(seqs), one, status))
    for k in sorted(by_node):
        print("  %-8s ran %5d%s" % (k, by_node[k], "  (SIGKILLed mid-stream)" if k == "node-1" else ""))
    print("  %d results came from a redelivery (the killed node's leases, after AckWait)" % redelivered)
    for i, nd in enumerate(nodes):
        if node_alive(nd):
            st = nd.fleet_status()
            print("  node-%d: fetched %d, acked %d, duplicates %d" % (i, st["fetched"], st["acked"],
                                                                   st["duplicates"]))
    ok = one == len(seqs) and p.returncode == 0
    print("run-fleet: %s" % ("every task has one result" if ok else "FAILED"))
    sys.exit(0 if ok else 1)
finally:
    if n:
        n.close()
    for nd in nodes:
        nd.cleanup()
        subprocess.run(["rm", "-rf", nd.dir])
    cluster.stop()
PY
