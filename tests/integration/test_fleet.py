#!/usr/bin/env python3
"""The NATS JetStream intake against a real nats-server (docs/fleet.md): tasks
by tier and by agent get exactly one stored result each; a malformed message
is terminated with a rejected result; a poison task ends crashed; a result
published twice is stored once; tasks in flight across a live upgrade are
neither lost nor duplicated. The multi-node cluster tests are elsewhere."""

import os
import signal
import subprocess
import sys
import time

from natslib import NATS_SERVER, Nats, NatsServer
from tierlib import BUILD, TIERD, Client, Fail, Tierd, check, main, test, wait_until

ALT = os.path.join(BUILD, "upgrade", "tierd-alt")


def fleet_config(url, agents=4, extra="", node="n1"):
    body = "".join("[agent w%d]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n" % i
                   for i in range(agents))
    body += "[agent solo]\ntier = 2\nexec = @AGENT@ --role primary\n"
    return ("[supervisor]\ncrash_loop_count = 64\nrestart_backoff_base = 1ms\n" + body +
            "[fleet]\nservers = %s\nnode = %s\nack_wait = 2s\nmax_deliver = 3\n%s" % (url, node, extra))


def with_fleet(name, fn, agents=4, extra=""):
    ns = NatsServer().start()
    t = Tierd(name, fleet_config(ns.url, agents, extra))
    try:
        t.start()
        t.wait_states("ready", timeout=30)
        c = t.client()
        wait_until(lambda: c.ok("fleet-status")["connected"], 15, 0.05, "the intake connected")
        n = Nats(ns.url)
        # The streams exist once the thread set them up.
        wait_until(lambda: "config" in n.js_api("STREAM.INFO.TIERD_RESULTS"), 15, 0.1,
                   "the results stream")
        return fn(t, n, c, ns)
    finally:
        t.cleanup()
        ns.cleanup()


def results_for(n, seqs, timeout=30):
    want = {"tierd.result.%d" % s for s in seqs}

    def all_there():
        cnt = n.subject_counts("TIERD_RESULTS")
        return cnt if want <= set(cnt) else None
    try:
        return wait_until(all_there, timeout, 0.1, "results of %d tasks" % len(seqs))
    except Fail:
        cnt = n.subject_counts("TIERD_RESULTS")
        raise Fail("results missing for %s" % sorted(want - set(cnt))[:20])


@test
def tasks_by_tier_and_agent_get_one_result_each():
    def run(t, n, c, ns):
        seqs = []
        for i in range(200):
            a = n.js_publish("tierd.task.tier.3", b"t%d" % i, {"Tierd-Type": "noop"})
            check("seq" in a, "pub ack: %s" % a)
            seqs.append(a["seq"])
        agent_seqs = []
        for i in range(20):
            a = n.js_publish("tierd.task.agent.solo", b"a%d" % i,
                             {"Tierd-Type": "noop", "Nats-Msg-Id": "key-%d" % i})
            agent_seqs.append(a["seq"])
        cnt = results_for(n, seqs + agent_seqs)
        check(all(cnt["tierd.result.%d" % s] == 1 for s in seqs + agent_seqs),
              "more than one result stored for some task: %s" %
              {k: v for k, v in cnt.items() if v != 1})
        r = n.last_result("TIERD_RESULTS", "tierd.result.%d" % agent_seqs[3])
        check(r["status"] == "ok" and r["agent"] == "solo" and r["task"] == agent_seqs[3] and
              r["node"] == "n1" and r["key"] == "key-3" and r["payload"] == "",
              "agent task's result: %s" % r)
        r = n.last_result("TIERD_RESULTS", "tierd.result.%d" % seqs[0])
        check(r["status"] == "ok" and r["tier"] == 3 and r["agent"].startswith("w"),
              "tier task's result: %s" % r)
        # Acked once stored: nothing left in the work queue.
        wait_until(lambda: n.js_api("STREAM.INFO.TIERD_TASKS")["state"]["messages"] == 0, 10,
                   0.1, "the tasks stream emptied")
        st = c.ok("fleet-status")
        check(st["acked"] == len(seqs) + len(agent_seqs) and st["leases"] == 0,
              "status: %s" % st)
    with_fleet("fl-basic", run)


@test
def a_malformed_message_is_terminated_with_a_rejected_result():
    def run(t, n, c, ns):
        a = n.js_publish("tierd.task.tier.3", b"x", {"Tierd-Timeout": "soon"})
        # No such tier: no stream takes the subject, the publish fails.
        b = n.js_publish("tierd.task.tier.7", b"x")
        check("error" in b, "a task for tier 7 was stored: %s" % b)
        big = n.js_publish("tierd.task.tier.3", b"x", {"Tierd-Type": "noop",
                                                       "X-Pad": "p" * 3000})
        results_for(n, [a["seq"]])
        ra = n.last_result("TIERD_RESULTS", "tierd.result.%d" % a["seq"])
        check(ra["status"] == "rejected" and "Tierd-Timeout" in ra["error"], "bad header: %s" % ra)
        # max_header_bytes = 1024 in this test's config.
        results_for(n, [big["seq"]])
        rc = n.last_result("TIERD_RESULTS", "tierd.result.%d" % big["seq"])
        check(rc["status"] == "rejected" and "max_header_bytes" in rc["error"],
              "oversized headers: %s" % rc)
        wait_until(lambda: c.ok("fleet-status")["termed"] == 2, 10, 0.1, "two terminated")
    with_fleet("fl-bad", run, extra="max_header_bytes = 1024\n")


@test
def a_result_published_twice_is_stored_once():
    def run(t, n, c, ns):
        a = n.js_publish("tierd.task.tier.3", b"x", {"Tierd-Type": "noop"})
        results_for(n, [a["seq"]])
        first = n.last_result("TIERD_RESULTS", "tierd.result.%d" % a["seq"])
        # A late node's result, long after the duplicates window matters:
        # refused by the stream, whatever its Nats-Msg-Id.
        late = n.js_publish("tierd.result.%d" % a["seq"], b'{"status":"error"}',
                            {"Nats-Msg-Id": "other-%d" % a["seq"]})
        check("error" in late and "maximum messages per subject" in late["error"]["description"],
              "a second result was not refused: %s" % late)
        check(n.subject_counts("TIERD_RESULTS")["tierd.result.%d" % a["seq"]] == 1, "stored twice")
        check(n.last_result("TIERD_RESULTS", "tierd.result.%d" % a["seq"]) == first,
              "the stored result changed")
    with_fleet("fl-dup", run)


@test
def a_task_that_crashes_its_agents_ends_crashed_with_one_result():
    def run(t, n, c, ns):
        a = n.js_publish("tierd.task.tier.3", b"x", {"Tierd-Type": "crash"})
        results_for(n, [a["seq"]], timeout=60)
        r = n.last_result("TIERD_RESULTS", "tierd.result.%d" % a["seq"])
        check(r["status"] == "crashed" and r["attempts"] >= 1, "poison result: %s" % r)
        time.sleep(1)
        check(n.subject_counts("TIERD_RESULTS")["tierd.result.%d" % a["seq"]] == 1,
              "more than one result")
    with_fleet("fl-poison", run)


@test
def a_task_whose_node_dies_max_deliver_times_ends_crashed_after_max_deliver():
    """max_deliver = 3: two deliveries die with their node (SIGKILL while the
    task hangs), the third is ended crashed without running, and terminated."""
    def run(t, n, c, ns):
        a = n.js_publish("tierd.task.tier.3", b"x", {"Tierd-Type": "hang"})
        seq = a["seq"]
        for delivery in (1, 2):
            wait_until(lambda: c.ok("fleet-status")["leases"] == 1, 20, 0.05,
                       "delivery %d taken" % delivery)
            t.proc.send_signal(signal.SIGKILL)
            t.proc.wait()
            t.start()

            def ready():
                try:
                    return t.wait_states("ready", timeout=5)
                except (OSError, Fail):
                    return None
            wait_until(ready, 30, 0.2, "the restarted node ready")
            c = t.client()
        results_for(n, [seq], timeout=30)
        r = n.last_result("TIERD_RESULTS", "tierd.result.%d" % seq)
        check(r["status"] == "crashed" and "max_deliver" in r["error"] and r["deliveries"] == 3,
              "after max_deliver: %s" % r)
        wait_until(lambda: n.js_api("STREAM.INFO.TIERD_TASKS")["state"]["messages"] == 0, 10,
                   0.1, "the poison message terminated")
    with_fleet("fl-maxdel", run)


@test
def broker_tasks_in_flight_cross_an_upgrade_without_loss_or_duplicate():
    if not os.path.exists(ALT):
        subprocess.run(["make", "-s", "upgrade-bins"], check=False,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                           os.path.abspath(__file__)))))
    binary = ALT if os.path.exists(ALT) else TIERD

    def run(t, n, c, ns):
        seqs = []
        for i in range(40):
            seqs.append(n.js_publish("tierd.task.tier.3", b"300",
                                     {"Tierd-Type": "sleep"})["seq"])
        wait_until(lambda: c.ok("fleet-status")["leases"] > 0, 10, 0.02, "tasks in flight")
        held = c.ok("fleet-status")["leases"]
        r = c.call("upgrade", binary=binary)
        check(r.get("ok"), "upgrade: %s\n%s" % (r, t.log_text()[-3000:]))
        c = t.client()
        wait_until(lambda: c.ok("fleet-status")["connected"], 15, 0.05, "reconnected")
        for i in range(20):
            seqs.append(n.js_publish("tierd.task.tier.3", b"x", {"Tierd-Type": "noop"})["seq"])
        cnt = results_for(n, seqs, timeout=60)
        check(all(cnt["tierd.result.%d" % s] == 1 for s in seqs), "duplicates: %s" % cnt)
        bad = [s for s in seqs
               if n.last_result("TIERD_RESULTS", "tierd.result.%d" % s)["status"] != "ok"]
        check(not bad, "tasks not ok across the upgrade: %s" % bad[:5])
        # Their acks landed: nothing is redelivered after AckWait.
        time.sleep(3)
        check(n.js_api("STREAM.INFO.TIERD_TASKS")["state"]["messages"] == 0,
              "task messages left unacked after the upgrade")
        check(held > 0, "nothing was in flight at the upgrade")
    with_fleet("fl-upgrade", run)


@test
def a_full_team_run_from_the_broker_publishes_its_aggregate():
    def run(t, n, c, ns):
        a = n.js_publish("tierd.run.review", b"check this", {"Tierd-Timeout": "20s"})
        results_for(n, [a["seq"]], timeout=60)
        r = n.last_result("TIERD_RESULTS", "tierd.result.%d" % a["seq"])
        check(r["status"] == "ok" and r["run"] > 0 and r["aggregate"]["type"] == "review" and
              len(r["aggregate"]["tiers"]) >= 2, "run result: %s" % r)
    with_fleet("fl-run", run)


@test
def a_task_longer_than_ack_wait_keeps_its_lease_with_in_progress():
    """ack_wait = 2s, in_progress_fraction 0.5: a 4.5 s task is extended
    every second and delivered once."""
    def run(t, n, c, ns):
        a = n.js_publish("tierd.task.tier.3", b"4500", {"Tierd-Type": "sleep"})
        results_for(n, [a["seq"]], timeout=30)
        r = n.last_result("TIERD_RESULTS", "tierd.result.%d" % a["seq"])
        check(r["status"] == "ok" and r["deliveries"] == 1, "long task: %s" % r)
        st = c.ok("fleet-status")
        check(st["in_progress"] >= 3 and st["fetched"] == 1, "status: %s" % st)
    with_fleet("fl-wpi", run)


@test
def nats_down_and_back_local_work_goes_on_and_events_say_so():
    def run(t, n, c, ns):
        ns.stop()
        wait_until(lambda: not c.ok("fleet-status")["connected"], 15, 0.05, "disconnected")
        out = c.ok("submit", tier=3, type="noop", payload="local")
        check(out["status"] == "ok", "local work while NATS is down: %s" % out)
        ns.start()
        wait_until(lambda: c.ok("fleet-status")["connected"], 20, 0.1, "reconnected")
        kinds = [e["kind"] for e in c.ok("events", after=0)["events"]]
        check("fleet_disconnected" in kinds and kinds.count("fleet_connected") >= 2,
              "events: %s" % kinds)
        n2 = Nats(ns.url)
        seqs = [n2.js_publish("tierd.task.tier.3", b"x", {"Tierd-Type": "noop"})["seq"]
                for _ in range(10)]
        results_for(n2, seqs)
    with_fleet("fl-reconn", run)


@test
def fleet_drain_stops_fetching_and_answers_once_nothing_is_held():
    def run(t, n, c, ns):
        seqs = [n.js_publish("tierd.task.tier.3", b"800", {"Tierd-Type": "sleep"})["seq"]
                for _ in range(4)]
        wait_until(lambda: c.ok("fleet-status")["leases"] == 4, 10, 0.02, "four held")
        t0 = time.monotonic()
        d = t.client().ok("fleet-drain")
        check(d == {"drained": True} and time.monotonic() - t0 > 0.3,
              "drain answered before the tasks ended: %s" % d)
        results_for(n, seqs)
        late = n.js_publish("tierd.task.tier.3", b"x", {"Tierd-Type": "noop"})["seq"]
        time.sleep(1.5)
        check(c.ok("fleet-status")["fetched"] == 4, "a drained node fetched")
        # A drained node stays drained across a live upgrade.
        r = c.call("upgrade", binary=ALT if os.path.exists(ALT) else TIERD)
        check(r.get("ok"), "upgrade: %s" % r)
        c = t.client()
        wait_until(lambda: c.ok("fleet-status")["connected"], 15, 0.05, "reconnected")
        time.sleep(1.5)
        st = c.ok("fleet-status")
        check(st["draining"] and st["fetched"] == 0, "after the upgrade: %s" % st)
        c.ok("fleet-undrain")
        results_for(n, [late])
    with_fleet("fl-drain", run)


@test
def upgrades_during_a_broker_stream_lose_and_duplicate_nothing():
    binary = ALT if os.path.exists(ALT) else TIERD

    def run(t, n, c, ns):
        total, seqs = 3000, []
        hdr = ("NATS/1.0\r\nTierd-Type: sleep\r\n\r\n").encode()
        held = []
        for k in range(3):
            # A burst published without waiting for each PubAck, then an upgrade
            # while the node works through it.
            out = []
            for i in range(total // 3):
                out.append(("HPUB tierd.task.tier.3 %s.b%d_%d %d %d\r\n"
                            % (n.inbox, k, i, len(hdr), len(hdr) + 1)).encode() + hdr + b"5\r\n")
            n._send(b"".join(out))
            got = 0
            while got < total // 3:
                m = n.next_msg()
                if m != "PONG" and m["subject"].startswith(n.inbox):
                    seqs.append(__import__("json").loads(m["data"])["seq"])
                    got += 1
            held.append(t.client().ok("fleet-status")["leases"])
            r = t.client().call("upgrade", binary=binary if k % 2 == 0 else TIERD)
            check(r.get("ok"), "upgrade %d: %s\n%s" % (k, r, t.log_text()[-2000:]))
        cnt = results_for(n, seqs, timeout=120)
        check(len(seqs) == total and all(cnt["tierd.result.%d" % s] == 1 for s in seqs),
              "results: %d tasks, %d stored" % (len(seqs), len(cnt)))
        wait_until(lambda: n.js_api("STREAM.INFO.TIERD_TASKS")["state"]["messages"] == 0, 20,
                   0.1, "every task message acked")
        check(all(h > 0 for h in held), "an upgrade found nothing in flight: %s" % held)
        print("    leases held at each upgrade: %s" % held)
    with_fleet("fl-upstream", run, agents=8)


if __name__ == "__main__":
    if not os.access(NATS_SERVER, os.X_OK):
        print("integration: SKIPPED: no nats-server (scripts/setup-deps.sh installs it)")
        sys.exit(0)
    sys.exit(main(sys.argv))
