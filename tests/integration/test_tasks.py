#!/usr/bin/env python3
"""Tasks and the full-team workflow, on the host, with real agents."""

import json
import os
import random
import signal
import sys
import threading
import time

from tierlib import (Client, Fail, Tierd, check, main, team_config, test, wait_until)


def with_tierd(name, body, fn, **kw):
    t = Tierd(name, body, **kw)
    try:
        t.start()
        t.wait_states("ready", timeout=20)
        return fn(t)
    finally:
        t.cleanup()


@test
def every_task_gets_exactly_one_result_under_random_agent_kills():
    n_tasks = 10000
    body = ("[supervisor]\ncrash_loop_count = 64\ncrash_loop_window = 1s\nrestart_backoff_base = 1ms\n"
            "restart_backoff_cap = 20ms\ntask_retry_budget = 100\ntask_queue_limit = 100000\n"
            + "".join("[agent w%02d]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n" % i
                      for i in range(6)))

    def run(t):
        c = Client(t.sock, timeout=120)
        stop = threading.Event()
        kills = [0]

        def killer():
            rnd = random.Random(7)
            while not stop.is_set():
                time.sleep(0.02)
                try:
                    ags = [a for a in t.agents().values() if a["pid"]]
                except Exception:  # noqa: BLE001 - the fleet is mid-restart
                    continue
                if ags:
                    try:
                        os.kill(rnd.choice(ags)["pid"], signal.SIGKILL)
                        kills[0] += 1
                    except ProcessLookupError:
                        pass
        th = threading.Thread(target=killer)
        th.start()
        ids = {}
        try:
            # Pipelined: all requests out, then all replies in.
            for i in range(n_tasks):
                ids[c.send("submit", tier=3, type="sleep", payload="2")] = i
            seen = {}
            while len(seen) < n_tasks:
                m = c.read_msg()
                check(m["id"] in ids, "reply to a request we made: %s" % m)
                check(m["id"] not in seen, "one final result per task (dup for %s)" % m["id"])
                check(m.get("ok"), "accepted: %s" % m)
                seen[m["id"]] = m["result"]["status"]
        finally:
            stop.set()
            th.join()
        statuses = {}
        for s in seen.values():
            statuses[s] = statuses.get(s, 0) + 1
        check(kills[0] >= 20, "agents were killed during the run (%d)" % kills[0])
        check(set(statuses) <= {"ok"}, "all ok (retried on agent death): %s" % statuses)
        st = c.ok("status")["tasks"]
        check(st["retries"] > 0, "some tasks were retried: %s" % st)
        check(st["pending"] == 0, "nothing left pending: %s" % st)
        c.close()
        print("    %d tasks, %d kills, %d retries" % (n_tasks, kills[0], st["retries"]))
    with_tierd("once", body, run)


@test
def a_task_that_keeps_killing_agents_is_finished_as_crashed():
    body = ("[supervisor]\ntask_retry_budget = 3\ncrash_loop_count = 64\nrestart_backoff_base = 1ms\n"
            "[agent a]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n"
            "[agent b]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n")

    def run(t):
        c = t.client()
        r = c.ok("submit", tier=3, type="crash", payload="")
        check(r["status"] == "crashed", "poison task crashed: %s" % r)
        check(r["attempts"] == 4, "tried once and retried three times: %s" % r)
        r = c.ok("submit", tier=3, type="noop", payload="")
        check(r["status"] == "ok", "the tier still works: %s" % r)
        c.close()
    with_tierd("poison", body, run)


@test
def task_retry_budget_counts_retries_after_the_first_attempt():
    # docs/config.md: the times a task held by an agent that died is retried.
    for budget, attempts in ((0, 1), (1, 2), (3, 4)):
        body = ("[supervisor]\ntask_retry_budget = %d\ncrash_loop_count = 64\n"
                "restart_backoff_base = 1ms\n"
                "[agent a]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n"
                "[agent b]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n" % budget)

        def run(t):
            c = t.client()
            r = c.ok("submit", tier=3, type="crash", payload="")
            check(r["status"] == "crashed", "budget %d: crashed: %s" % (budget, r))
            check(r["attempts"] == attempts, "budget %d: %d attempts: %s" % (budget, attempts, r))
            c.close()
        with_tierd("retry%d" % budget, body, run)


def run_team(t, **args):
    c = Client(t.sock, timeout=60)
    agg = c.ok("run", **args)
    trace = c.ok("trace", run=agg["run"])
    c.close()
    return agg, trace


def slices(trace, name):
    tracks = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"
              and e["name"] == "thread_name"}
    return [(tracks[e["tid"]], e["ts"], e["ts"] + e["dur"], e["args"])
            for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] == name]


@test
def the_workflow_runs_tiers_in_order_batches_and_staggers():
    def run(t):
        text = "The quick brown fox jumps over the lazy dog. " * 40
        agg, trace = run_team(t, type="security", payload=text, batch_size=4, stagger_ms=100)
        tiers = {x["tier"]: x for x in agg["tiers"]}
        check([tiers[k]["tasks"] for k in (1, 2, 3, 4)] == [1, 3, 16, 1],
              "tasks per tier 1/3/16/1 (tier 4 matched only spec-security): %s" %
              [tiers[k]["tasks"] for k in (1, 2, 3, 4)])
        check(all(tiers[k]["ok"] == tiers[k]["tasks"] for k in tiers), "all ok")
        check(tiers[3]["batches"] == 4, "four batches of four")
        res = agg["results"]
        check([r["agent"] for r in res if r["tier"] == 4] == ["spec-security"], "tier-4 matching")
        run_ = slices(trace, "run")
        by_tier = {}
        for r in res:
            by_tier.setdefault(r["tier"], []).append(r["agent"])
        disp = {a: s for a, s, _e, _x in slices(trace, "queued") + slices(trace, "dispatch")}
        coll = {}
        for a, _s, e, _x in slices(trace, "collect"):
            coll[a] = max(coll.get(a, 0), e)
        start = {}
        for a, s, _e, _x in run_:
            start[a] = min(start.get(a, 1e18), s)
        # Tier order: each tier starts after the previous one is collected.
        for lo, hi in ((1, 2), (2, 3), (3, 4)):
            check(max(coll[a] for a in by_tier[lo]) <= min(start[a] for a in by_tier[hi]) + 0.001,
                  "tier %d before tier %d: collected %s, started %s" % (
                      lo, hi, {a: coll[a] for a in by_tier[lo]}, {a: start[a] for a in by_tier[hi]}))
        # Batches: sizes and the stagger between them, from trace timestamps.
        batches = {}
        for r in res:
            if r["tier"] == 3:
                batches.setdefault(r["batch"], []).append(r["agent"])
        check(sorted(len(v) for v in batches.values()) == [4, 4, 4, 4], "batch sizes %s" % batches)
        for b in range(1, 4):
            prev_end = max(coll[a] for a in batches[b - 1])
            nxt = min(start[a] for a in batches[b])
            gap_ms = (nxt - prev_end) / 1000.0
            check(95 <= gap_ms <= 150, "stagger before batch %d is %.1f ms (want ~100)" % (b, gap_ms))
        # Context passed forward: each stage sees all earlier results.
        lines = {r["agent"]: json.loads(r["result"])["context_lines"] for r in res}
        check(lines["orchestrator"] == 0, "tier 1 sees no context")
        check(all(lines[a] == 1 for a in by_tier[2]), "tier 2 sees tier 1's result")
        check(all(lines[a] == 4 for a in by_tier[3]), "tier 3 sees tiers 1-2")
        check(lines["spec-security"] == 20, "tier 4 sees tiers 1-3")
        # Checkable work: the secondaries' shards add up to the orchestrator's count.
        orch = json.loads([r for r in res if r["tier"] == 1][0]["result"])
        shard_words = sum(json.loads(r["result"])["words"] for r in res if r["tier"] == 3)
        check(shard_words == orch["words"] == 360, "shards sum to the word count: %d vs %d" %
              (shard_words, orch["words"]))
        qs = [r["quality"] for r in res]
        check(len(set(qs)) > 1 and all(0 <= q <= 10 for q in qs), "qualities vary, in range: %s" % qs)
        agg5, _ = run_team(t, type="other", payload=text, batch_size=5, stagger_ms=0)
        sizes = {}
        for r in agg5["results"]:
            if r["tier"] == 3:
                sizes[r["batch"]] = sizes.get(r["batch"], 0) + 1
        check(sorted(sizes.values()) == [1, 5, 5, 5], "batch_size 5 gives 5/5/5/1: %s" % sizes)
        check(all(r["tier"] != 4 for r in agg5["results"]), "no tier 4 for an unmatched type")
    with_tierd("wf", team_config(), run)


@test
def a_hanging_agent_times_out_its_batch_and_the_run_completes():
    body = team_config(n_secondary=8).replace(
        "[agent secondary-03]\ntier = 3\nexec = @AGENT@ --role secondary",
        "[agent secondary-03]\ntier = 3\nexec = @AGENT@ --role secondary --hang-on review")
    body = "[tier3]\nprocessing_timeout = 300ms\n" + body

    def run(t):
        t0 = time.monotonic()
        agg, _ = run_team(t, type="review", payload="some text to review here.", stagger_ms=0)
        wall = time.monotonic() - t0
        r3 = {r["agent"]: r for r in agg["results"] if r["tier"] == 3}
        check(r3["secondary-03"]["status"] == "timeout", "the hung agent's task timed out")
        check(sum(1 for r in r3.values() if r["status"] == "ok") == 7, "the others finished")
        tier3 = [x for x in agg["tiers"] if x["tier"] == 3][0]
        check(tier3["timeouts"] == 1, "one timeout reported for tier 3")
        check(0.3 <= wall < 2.0, "bounded by the batch timeout: %.2fs" % wall)
    with_tierd("hang", body, run)


@test
def a_large_payload_truncates_the_context_and_says_so():
    # 63 KiB payloads leave the context under 1 KiB in a 64 KiB record.
    body = "[supervisor]\nmax_payload = 63K\n" + team_config(n_secondary=4)

    def run(t):
        text = ("word " * 13000)[:64400]
        agg, _ = run_team(t, type="docs", payload=text, stagger_ms=0)
        check(agg["context_truncated"], "aggregate says the context was cut")
        check(agg["context_bytes"] < 1024, "context kept within its bound: %d" % agg["context_bytes"])
        docs = [json.loads(r["result"]) for r in agg["results"] if r["tier"] == 4]
        check(docs and docs[0]["context_truncated"], "the tier-4 agent saw the flag: %s" % docs)
        check(all(r["status"] == "ok" for r in agg["results"]), "every stage still ran")
    with_tierd("trunc", body, run)


@test
def a_full_queue_rejects_with_the_reason():
    body = ("[supervisor]\ntask_queue_limit = 5\n"
            "[agent slow]\ntier = 3\nexec = @AGENT@ --role secondary --max-inflight 1\n")

    def run(t):
        c = t.client()
        ids = [c.send("submit", agent="slow", type="sleep", payload="100") for _ in range(10)]
        res = [c.wait(i) for i in ids]
        sts = [m["result"]["status"] for m in res]
        check(sts.count("ok") == 6, "1 in flight + 5 queued ran: %s" % sts)
        check(sts.count("rejected") == 4, "the rest rejected: %s" % sts)
        rej = [m["result"]["error"] for m in res if m["result"]["status"] == "rejected"]
        check(all("queue full" in e for e in rej), "reason given: %s" % rej[0])
        c.close()
    with_tierd("qfull", body, run)


@test
def deadlines_cancel_and_retention_work():
    body = "[agent a]\ntier = 3\nexec = @AGENT@ --role secondary\n[agent b]\ntier = 3\nexec = @AGENT@ --role secondary\n"

    def run(t):
        c = t.client()
        r = c.ok("submit", agent="a", type="sleep", payload="500", timeout_ms=100)
        check(r["status"] == "timeout", "deadline expiry: %s" % r)
        tid = c.ok("submit", agent="b", type="sleep", payload="1000", detach=True)["task"]
        check(c.ok("result", task=tid)["status"] == "pending", "detached task pending")
        check(c.ok("cancel", task=tid)["task"] == tid, "cancel accepted")
        check(c.ok("result", task=tid)["status"] == "cancelled", "cancelled")
        m = c.call("cancel", task=tid)
        check(not m["ok"] and m["code"] == "ENOENT", "second cancel refused: %s" % m)
        # A client that leaves before its result: it is kept, fetched by id.
        c2 = t.client()
        rid = c2.send("submit", agent="a", type="sleep", payload="200", ack=True)
        acc = c2.read_msg()
        check(acc.get("more") and acc["result"]["state"] == "accepted", "ack first: %s" % acc)
        tid2 = acc["result"]["task"]
        c2.close()
        r = wait_until(lambda: (lambda x: x if x["status"] != "pending" else None)(
            c.ok("result", task=tid2)), 5, what="the gone client's task to finish")
        check(r["status"] == "ok", "kept for the gone client: %s" % r)
        m = c.call("submit", agent="a", type="x", payload="y" * (70 * 1024))
        check(not m["ok"] and m["code"] == "EMSGSIZE" and "max_payload" in m["error"], "size limit: %s" % m)
        m = c.call("submit", agent="nobody", type="x", payload="")
        check(not m["ok"] and m["code"] == "ENOENT", "unknown agent: %s" % m)
        c.close()
    with_tierd("deadline", body, run)


@test
def drain_and_rolling_restart_keep_work_flowing():
    body = "".join("[agent r%d]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n" % i
                   for i in range(3))

    def run(t):
        c = t.client()
        c.ok("drain", agent="r0")
        res = [c.ok("submit", tier=3, type="noop", payload="") for _ in range(30)]
        check(all(r["agent"] != "r0" for r in res), "a drained agent takes no tier tasks")
        m = c.call("submit", agent="r0", type="noop", payload="")
        check(m["ok"] and m["result"]["status"] == "rejected", "or targeted ones: %s" % m)
        c.ok("undrain", agent="r0")
        before = {n: a["pid"] for n, a in t.agents().items()}
        # Work flows while the tier restarts one agent at a time.
        c2 = t.client()
        box = {}
        th = threading.Thread(target=lambda: box.update(m=c2.call("rolling-restart", tier=3)))
        th.start()
        ok = 0
        while th.is_alive():
            r = c.ok("submit", tier=3, type="noop", payload="", timeout_ms=5000)
            ok += r["status"] == "ok"
            check(r["status"] == "ok", "no task lost to the rolling restart: %s" % r)
        th.join()
        c2.pending[0] = box["m"]
        rid = 0
        m = c2.pending[rid]
        check(m["ok"] and sorted(m["result"]["restarted"]) == ["r0", "r1", "r2"], "all restarted: %s" % m)
        after = {n: a["pid"] for n, a in t.agents().items()}
        check(all(after[n] != before[n] for n in before), "every agent has a new process")
        check(ok > 0, "tasks kept succeeding during the rolling restart (%d)" % ok)
        c.close()
        c2.close()
    with_tierd("roll", body, run)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
