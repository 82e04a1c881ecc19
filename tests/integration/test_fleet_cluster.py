#!/usr/bin/env python3
"""A fleet on this machine against real servers (docs/fleet.md): a
three-server JetStream cluster (R3 streams) and three tierd nodes with their
own cgroup roots. 20,000 tasks while nodes are SIGKILLed and restarted get
exactly one stored result each; a nats-server killed and restarted
mid-stream loses nothing; a node cut off (its own network namespace, link
down) longer than AckWait has its tasks finished elsewhere and its late
results refused; a task whose nodes keep dying ends crashed after
MaxDeliver; a nats.js submitter using only docs/fleet.md gets its results."""

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

from fleetlib import NatsCluster, Netns, Node, fleet_section, node_alive, tierctl_fleet
from natslib import Nats
from tierlib import ROOT, TIERCTL, Fail, check, main, test, wait_until

JS_DIR = os.path.join(ROOT, "tests", "fleet-js")


def node_body(cluster, name, workers=4, ack_wait="2s", max_deliver=5):
    body = "".join("[agent w%d]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n" % i
                   for i in range(workers))
    return ("[supervisor]\ncrash_loop_count = 64\nrestart_backoff_base = 1ms\n" + body +
            fleet_section(cluster, name, ack_wait, max_deliver))


FLEETS = [0]


class Fleet:
    """A cluster and n nodes; stop() ends all of them (by pid) and removes
    their directories, cgroups and the namespace."""

    def __init__(self, nodes=3, ack_wait="2s", max_deliver=5, netns_last=False):
        self.netns = Netns().create() if netns_last else None
        self.cluster = NatsCluster(3, self.netns.host_ip if self.netns else "127.0.0.1")
        self.nodes = []
        self.n = None
        self.cfg = (ack_wait, max_deliver)
        self.count = nodes

    def start(self):
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        FLEETS[0] += 1
        self.cluster.start().wait_ready()
        for i in range(self.count):
            ns = self.netns if (self.netns and i == self.count - 1) else None
            nd = Node("flc%d-%d" % (FLEETS[0], i), node_body(self.cluster, "node-%d" % i, 4, *self.cfg), netns=ns)
            self.nodes.append(nd)
            nd.start()
        for nd in self.nodes:
            nd.wait_states("ready", timeout=30)
            wait_until(lambda: nd.fleet_status()["connected"], 20, 0.1, "node %s connected" % nd.name)
        self.n = Nats(self.cluster.url(0), timeout=10)
        wait_until(lambda: "config" in self.n.js_api("STREAM.INFO.TIERD_RESULTS"), 20, 0.1,
                   "the results stream")
        for st in ("TIERD_TASKS", "TIERD_RESULTS"):
            wait_until(lambda: self.n.js_api("STREAM.INFO." + st).get("cluster", {}).get("leader"),
                       20, 0.1, "a leader of %s" % st)
        info = self.n.js_api("STREAM.INFO.TIERD_TASKS")
        check(info["config"]["num_replicas"] == 3, "tasks stream not R3: %s" % info["config"])
        return self

    def stop(self):
        if self.n:
            self.n.close()
        for nd in self.nodes:
            try:
                nd.cleanup()
            except Exception as e:  # noqa: BLE001 - the rest must still be stopped
                print("    cleanup of %s: %s" % (nd.name, e))
        self.cluster.stop()
        if self.netns:
            self.netns.remove()
        for nd in self.nodes:
            shutil.rmtree(nd.dir, ignore_errors=True)


BP_RUN = [0]


def bulk_publish(n, subject, count, headers=None, chunk=500, payload=b"x" * 64):
    """count JetStream publishes, pipelined chunk at a time, each with its
    own Nats-Msg-Id: one refused (503 while a stream leader is elected) or
    unanswered is published again with the same key, so JetStream stores it
    once. The sequences."""
    BP_RUN[0] += 1
    seqs = []
    for base in range(0, count, chunk):
        k = min(chunk, count - base)
        todo = {}
        for i in range(base, base + k):
            h = dict(headers or {"Tierd-Type": "noop"})
            h["Nats-Msg-Id"] = "bp-%d-%d-%d-%d" % (os.getpid(), BP_RUN[0], time.monotonic_ns(), i)
            todo[i] = h
        got = {}
        deadline = time.monotonic() + 120
        while todo:
            check(time.monotonic() < deadline, "pub acks missing: %d of %d" % (len(todo), k))
            replies = {}
            for i, h in todo.items():
                n.nreq += 1
                r = "%s.%d" % (n.inbox, n.nreq)
                replies[r] = i
                n.pub(subject, payload, r, h)
            wait_end = time.monotonic() + 5
            while replies and time.monotonic() < wait_end:
                try:
                    m = n.next_msg()
                except OSError:
                    break
                if m == "PONG" or m["subject"] not in replies:
                    continue
                i = replies.pop(m["subject"])
                a = json.loads(m["data"] or b"{}") if m["data"] else {}
                if "seq" in a:
                    got[i] = a["seq"]
                    todo.pop(i, None)
            if todo:
                time.sleep(0.2)
        seqs += [got[i] for i in sorted(got)]
    return seqs


def all_results(n, seqs, timeout):
    """Wait until every seq has a stored result; the subject counts."""
    want = {"tierd.result.%d" % s for s in seqs}
    cnt = {}

    def there():
        try:
            got = n.subject_counts("TIERD_RESULTS")
        except (OSError, RuntimeError, ValueError):
            return False   # a JetStream API call unanswered while a leader moves: ask again
        cnt.clear()
        cnt.update(got)
        return want <= set(cnt)
    try:
        wait_until(there, timeout, 0.5, "results of %d tasks" % len(seqs))
    except Fail:
        missing = sorted(want - set(cnt))
        raise Fail("%d tasks without a result, e.g. %s" % (len(missing), missing[:10]))
    bad = {k: v for k, v in cnt.items() if k in want and v != 1}
    check(not bad, "tasks with more than one stored result: %s" % list(bad.items())[:10])
    return cnt


@test
def twenty_thousand_tasks_while_nodes_are_killed_get_one_result_each():
    f = Fleet().start()
    stop = threading.Event()
    kills = []

    def killer():
        rnd = random.Random(12)
        while not stop.is_set():
            time.sleep(rnd.uniform(0.3, 0.8))
            nd = rnd.choice(f.nodes)
            if node_alive(nd):
                nd.sigkill()
                kills.append(nd.name)
                time.sleep(0.3)
                nd.start()
    try:
        t = threading.Thread(target=killer)
        t.start()
        try:
            # 2 ms tasks: 12 agents take a few seconds, so the loop kills
            # several nodes while the stream is being worked.
            seqs = bulk_publish(f.n, "tierd.task.tier.3", 20000, {"Tierd-Type": "sleep"}, payload=b"2")
            check(len(set(seqs)) == 20000, "20000 distinct task ids expected, got %d" % len(set(seqs)))
            all_results(f.n, seqs, 240)
        finally:
            stop.set()
            t.join()
        check(len(kills) >= 3, "the loop killed only %d nodes" % len(kills))
        redelivered = 0
        for s in seqs[::500]:
            r = f.n.last_result("TIERD_RESULTS", "tierd.result.%d" % s)
            check(r["task"] == s and r["status"] == "ok", "result of %d: %s" % (s, r))
            redelivered += r["deliveries"] > 1
        print("    %d node kills; sampled results redelivered: %d of 40" % (len(kills), redelivered))
    finally:
        f.stop()


@test
def a_nats_server_killed_and_restarted_mid_stream_loses_nothing():
    f = Fleet().start()
    try:
        seqs = bulk_publish(f.n, "tierd.task.tier.3", 3000, {"Tierd-Type": "sleep"}, payload=b"2")
        f.cluster.kill(2)
        seqs += bulk_publish(f.n, "tierd.task.tier.3", 3000, {"Tierd-Type": "sleep"}, payload=b"2")
        time.sleep(1)
        f.cluster.start(2)
        seqs += bulk_publish(f.n, "tierd.task.tier.3", 3000)
        all_results(f.n, seqs, 180)
        check(f.cluster.procs[2].poll() is None, "the restarted server exited:\n" + f.cluster.log(2))
        check(all(node_alive(nd) for nd in f.nodes), "a node died with the server")
    finally:
        f.stop()


@test
def a_node_cut_off_past_ack_wait_has_its_tasks_finished_elsewhere_late_results_refused():
    if shutil.which("ip") is None:
        raise Fail("no ip(8): install iproute2")
    f = Fleet(netns_last=True).start()
    cut = f.nodes[-1]
    try:
        # Only the cut node fetches while the tasks (1.5 s each) go in.
        for nd in f.nodes[:-1]:
            ctl(nd, "fleet-drain")
        seqs = bulk_publish(f.n, "tierd.task.tier.3", 16, {"Tierd-Type": "sleep"}, payload=b"1500")
        wait_until(lambda: cut.fleet_status()["leases"] >= 8, 20, 0.05, "the cut node holding tasks")
        f.netns.link(False)
        held = cut.fleet_status()["leases"]
        for nd in f.nodes[:-1]:
            ctl(nd, "fleet-undrain")
        time.sleep(5)   # > ack_wait (2 s): the others take the cut node's tasks
        all_results(f.n, seqs, 90)
        by_node = {}
        for s in seqs:
            r = f.n.last_result("TIERD_RESULTS", "tierd.result.%d" % s)
            by_node[r["node"]] = by_node.get(r["node"], 0) + 1
        f.netns.link(True)
        # Back on the network: its finished tasks' results are refused.
        wait_until(lambda: cut.fleet_status()["connected"] and cut.fleet_status()["leases"] == 0,
                   60, 0.2, "the cut node reconnected with nothing held")
        st = cut.fleet_status()
        # The late results went out (refused by the results stream, or taken
        # as duplicates of the same Nats-Msg-Id inside the window) and did not
        # replace what was stored: one result per task, by the other nodes.
        check(st["results_published"] + st["duplicates"] >= held,
              "the cut node sent %d late results for the %d it held" %
              (st["results_published"] + st["duplicates"], held))
        check(cut.name not in by_node and "node-%d" % (len(f.nodes) - 1) not in by_node,
              "the cut node stored results while cut off: %s" % by_node)
        after = {}
        for s_ in seqs:
            r = f.n.last_result("TIERD_RESULTS", "tierd.result.%d" % s_)
            after[r["node"]] = after.get(r["node"], 0) + 1
        check(after == by_node, "stored results changed when the cut node came back: %s -> %s"
              % (by_node, after))
        all_results(f.n, seqs, 5)
        check(n_ok(f.n, seqs), "a task's stored result is not ok")
        print("    cut node held %d; results by node %s; its duplicates %d"
              % (held, by_node, st["duplicates"]))
    finally:
        f.stop()


def ctl(nd, cmd):
    c = nd.client()
    try:
        return c.ok(cmd)
    finally:
        c.close()


def n_ok(n, seqs):
    return all(n.last_result("TIERD_RESULTS", "tierd.result.%d" % s)["status"] == "ok" for s in seqs)


@test
def a_task_whose_nodes_keep_dying_ends_crashed_after_max_deliver():
    f = Fleet(ack_wait="2s", max_deliver=3).start()
    try:
        seq = bulk_publish(f.n, "tierd.task.tier.3", 1, {"Tierd-Type": "hang"})[0]
        for delivery in (1, 2):
            holder = wait_until(lambda: next((nd for nd in f.nodes if node_alive(nd) and
                                              nd.fleet_status(True).get("leases", 0) > 0), None),
                                30, 0.1, "delivery %d taken" % delivery)
            holder.sigkill()
            holder.start()
        all_results(f.n, [seq], 60)
        r = f.n.last_result("TIERD_RESULTS", "tierd.result.%d" % seq)
        check(r["status"] == "crashed" and r["deliveries"] >= 3, "poison result: %s" % r)
        pend = f.n.js_api("STREAM.INFO.TIERD_TASKS")["state"]["messages"]
        check(pend == 0, "the poison message was not terminated: %d left" % pend)
    finally:
        f.stop()


@test
def a_nats_js_submitter_using_only_the_docs_gets_its_results():
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise Fail("no node/npm: install Debian's nodejs and npm")
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "nats")):
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=JS_DIR,
                           capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, "npm install nats failed:\n" + p.stdout + p.stderr)
    f = Fleet().start()
    try:
        p = subprocess.run(["node", os.path.join(JS_DIR, "submit.mjs"), f.cluster.urls(), "50"],
                           capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "the nats.js submitter failed:\n" + p.stdout + p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        check(out["submitted"] == 50 and out["results"] == 50 and out["ok"] == 50,
              "nats.js: %s" % out)
        check(len(set(out["nodes"])) >= 1 and out["keyed"] == 50, "nats.js: %s" % out)
        all_results(f.n, out["ids"], 10)
    finally:
        f.stop()


@test
def tierctl_fleet_submits_reads_results_and_asks_a_node():
    f = Fleet().start()
    try:
        out, _ = tierctl_fleet(f.cluster, "submit", "tier3", "hello", "--type", "noop", "--key", "k-1")
        check(len(out) == 1 and out[0]["status"] == "ok" and out[0]["key"] == "k-1" and
              out[0]["node"].startswith("node-"), "tierctl fleet submit: %s" % out)
        tid = out[0]["task"]
        again, _ = tierctl_fleet(f.cluster, "result", str(tid))
        check(again == out, "fleet result %d: %s, submit said %s" % (tid, again, out))
        dup, _ = tierctl_fleet(f.cluster, "submit", "tier3", "hello", "--key", "k-1", "--detach")
        check(dup == [{"task": tid, "duplicate": True}], "same key again: %s" % dup)
        _, p = tierctl_fleet(f.cluster, "result", "999999", check_rc=False)
        check(p.returncode == 1 and "no result stored" in p.stderr, "absent result: %s" % p.stderr)
        p = subprocess.run([TIERCTL, "-s", f.nodes[0].sock, "fleet", "status"], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 0 and "connected" in p.stdout and "tierd_tier3" in p.stdout,
              "tierctl fleet status: %s%s" % (p.stdout, p.stderr))
        p = subprocess.run([TIERCTL, "-s", f.nodes[0].sock, "fleet", "drain"], capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 0 and f.nodes[0].fleet_status()["draining"], "drain: %s" % p.stderr)
    finally:
        f.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
