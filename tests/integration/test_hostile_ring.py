#!/usr/bin/env python3
"""Hostile native agents (tests/agents/hostile-agent.c) and a stdio one: each
ring fault is one protocol_violation event and one restart, floods are
throttled and then killed as flooders, tierd keeps serving a well-behaved
agent, and what reaches tierd's log stays bounded."""

import os
import sys
import time

from tierlib import BUILD, Client, Tierd, check, main, test, wait_until

HOSTILE = os.path.join(BUILD, "tests", "agents", "hostile-agent")
# The agent under test comes from this tree's build even when TIERD_BUILD
# points at another tierd (to see a test fail on an older one).
HOSTILE = os.environ.get("HOSTILE_AGENT", HOSTILE)
HERE = os.path.dirname(os.path.abspath(__file__))
GOOD_BODY = "[agent good]\ntier = 2\nexec = %s good\nrestart = always\n" % HOSTILE


def config(mode, sup="", extra=""):
    return ("[supervisor]\nrestart_backoff_base = 200ms\nrestart_backoff_cap = 200ms\n"
            "crash_loop_count = 64\n" + sup +
            "[agent h]\ntier = 3\nexec = %s %s\nrestart = always\n" % (HOSTILE, mode) +
            GOOD_BODY + extra)


def events(c, kind, agent="h"):
    return [e for e in c.ok("events")["events"] if e["kind"] == kind and e.get("agent") == agent]


def good_serves(c):
    r = c.ok("submit", tier=2, type="echo", payload="still here", timeout_ms=5000)
    check(r["status"] == "ok" and r.get("payload") == "still here",
          "the well-behaved agent is served: %s" % r)


def log_lines_about(t, name="h"):
    return [l for l in t.log_text().splitlines() if ("agent %s" % name) in l]


def one_violation_per_incarnation(t, c, want_what, submit=True, kind="protocol_violation",
                                  lines_per_s=0):
    """Provoke (submit a task to h if asked), then check the answer."""
    t0 = time.monotonic()
    if submit:
        c.send("submit", agent="h", type="echo", payload="x", timeout_ms=3000)
    wait_until(lambda: events(c, kind), 10, what="a %s event" % kind)
    wait_until(lambda: t.agents(c)["h"]["incarnation"] >= 2, 10, what="h restarted")
    time.sleep(0.5)
    evs = events(c, kind)
    per_inc = {}
    for e in evs:
        per_inc[e["incarnation"]] = per_inc.get(e["incarnation"], 0) + 1
    check(per_inc.get(1) == 1, "exactly one %s for incarnation 1: %s" % (kind, evs))
    check(all(n == 1 for n in per_inc.values()), "never two for one incarnation: %s" % per_inc)
    what = evs[0].get("what", "") + " " + evs[0].get("error", "") + " " + evs[0].get("budget", "")
    check(want_what in what, "the event names the reason (%r): %s" % (want_what, evs[0]))
    exits = [e for e in c.ok("events")["events"] if e["kind"] == "agent_exit" and e["agent"] == "h"]
    check(exits, "h was killed (agent_exit)")
    good_serves(c)
    lines = log_lines_about(t)
    incs = t.agents(c)["h"]["incarnation"]
    bound = 20 * incs + lines_per_s * (time.monotonic() - t0 + 3)
    check(len(lines) <= bound, "log lines about h bounded: %d for %d incarnations (<= %d)"
          % (len(lines), incs, bound))
    return evs


def run(mode, want, sup="", submit=True, kind="protocol_violation"):
    t = Tierd("hostile-" + mode, config(mode, sup))
    try:
        t.start()
        t.wait_states("ready", timeout=15)
        c = t.client()
        one_violation_per_incarnation(t, c, want, submit, kind)
        c.close()
    finally:
        t.cleanup()


@test
def a_short_result_is_one_violation_and_fails_its_task():
    t = Tierd("short", config("short-result"))
    try:
        t.start()
        t.wait_states("ready", timeout=15)
        c = t.client()
        r = c.ok("submit", agent="h", type="echo", payload="x")
        check(r["status"] == "error" and "malformed result" in (r.get("error") or ""),
              "the task fails at once (no deadline given): %s" % r)
        one_violation_per_incarnation(t, c, "shorter than its header", submit=False)
        c.close()
    finally:
        t.cleanup()


@test
def a_short_result_without_doorbell_is_one_violation_and_fails_its_task():
    t = Tierd("short-nobell", config("short-result-nobell"))
    try:
        t.start()
        t.wait_states("ready", timeout=15)
        c = t.client()
        r = c.ok("submit", agent="h", type="echo", payload="x")
        check(r["status"] == "error", "the task fails, never pending forever: %s" % r)
        one_violation_per_incarnation(t, c, "shorter than its header", submit=False)
        c.close()
    finally:
        t.cleanup()


def corrupt_sq_head(mode, want_what):
    """h answers one task, corrupting its task ring's head first; the next
    task tierd publishes must find it."""
    t = Tierd(mode, config(mode))
    try:
        t.start()
        t.wait_states("ready", timeout=15)
        c = t.client()
        r = c.ok("submit", agent="h", type="echo", payload="first")
        check(r["status"] == "ok", "first task answered: %s" % r)
        one_violation_per_incarnation(t, c, want_what)
        c.close()
    finally:
        t.cleanup()


@test
def sq_head_moved_back_to_zero_is_caught_on_the_next_publish():
    corrupt_sq_head("head-zero", "head moved backwards")


@test
def sq_head_moved_far_ahead_is_caught_on_the_next_publish():
    corrupt_sq_head("head-ahead", "past")


@test
def a_result_for_an_id_never_issued_is_a_violation():
    run("unknown-id", "does not hold")


@test
def a_duplicate_result_is_a_violation():
    run("dup-result", "does not hold")


@test
def a_result_for_another_agents_task_is_a_violation():
    t = Tierd("other-id", config("other-id", extra="[agent slow]\ntier = 4\nexec = %s --role "
                                  "specialist\nspecialties = slow\nrestart = always\n"
                                  % os.path.join(BUILD, "examples", "team-agent")))
    try:
        t.start()
        t.wait_states("ready", timeout=15)
        c = t.client()
        slow = c.ok("submit", agent="slow", type="sleep", payload="3000", detach=True)["task"]
        c.send("submit", agent="h", type="echo", payload="x", timeout_ms=3000)
        one_violation_per_incarnation(t, c, "does not hold", submit=False)
        r = c.ok("result", task=slow)
        check(r["status"] in ("ok", "pending") or r.get("status") is None,
              "the other agent's task was not taken over: %s" % r)
        c.close()
    finally:
        t.cleanup()


@test
def a_late_result_after_a_deadline_is_counted_not_a_violation():
    t = Tierd("late", config("good") .replace("exec = %s good\nrestart = always\n[agent good]"
                                               % HOSTILE, "exec = %s\nrestart = always\n[agent good]"
                                               % (os.path.join(BUILD, "examples", "team-agent")
                                                  + " --role secondary")))
    try:
        t.start()
        t.wait_states("ready", timeout=15)
        c = t.client()
        r = c.ok("submit", agent="h", type="sleep", payload="500", timeout_ms=100)
        check(r["status"] == "timeout", "timed out: %s" % r)
        wait_until(lambda: c.ok("status")["tasks"]["late_results"] >= 1, 5,
                   what="the late result counted")
        check(not events(c, "protocol_violation"), "a late result is no violation")
        check(t.agents(c)["h"]["incarnation"] == 1, "h not restarted")
        c.close()
    finally:
        t.cleanup()


@test
def a_record_type_an_agent_may_not_send_is_a_violation():
    run("type16", "record type 16", submit=False)


@test
def an_event_with_bad_utf8_is_kept_escaped():
    t = Tierd("utf8", config("bad-utf8-event"))
    try:
        t.start()
        t.wait_states("ready", timeout=15)
        c = t.client()
        evs = wait_until(lambda: events(c, "agent_event"), 5, what="the agent's event")
        check(evs[0]["event"] == "probe", "kind kept: %s" % evs[0])
        check(evs[0]["message"] == "bytes \\xff\\xfe\\xc3( end", "bytes escaped: %r" % evs[0]["message"])
        check("\\xff\\xfe" in t.log_text(), "the log line is escaped too")
        check(b"\xff" not in open(t.log_path, "rb").read(), "no raw bytes in the log")
        check(not events(c, "protocol_violation"), "not a violation")
        good_serves(c)
        c.close()
    finally:
        t.cleanup()


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def flood_test(mode, budget, sup):
    t = Tierd("flood-" + mode, config(mode, "agent_flood_kill_after = 3s\nagent_log_rate = 20\n"
                                      + sup))
    try:
        t.start()
        t.wait_states({"good": "ready"}, timeout=15)
        c = t.client()
        # While throttled, before the kill: tierd pays little.
        time.sleep(0.5)
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(t.proc.pid)
        time.sleep(1.5)
        cpu = (cpu_ticks(t.proc.pid) - c0) / hz / (time.monotonic() - t0)
        check(cpu < 0.5, "tierd's CPU while %s is throttled: %.0f%% of a core" % (mode, cpu * 100))
        good_serves(c)
        evs = one_violation_per_incarnation(t, c, budget, submit=False, kind="flooder",
                                            lines_per_s=20)
        check(evs[0]["budget"] == budget, "names its budget: %s" % evs[0])
        print("    tierd CPU while throttled: %.1f%% of a core" % (cpu * 100))
        c.close()
    finally:
        t.cleanup()


@test
def a_log_record_flood_is_throttled_then_killed_as_a_flooder():
    flood_test("log-flood", "records", "agent_record_rate = 20000\n")


@test
def a_stdout_flood_is_throttled_then_killed_as_a_flooder():
    flood_test("stdout-flood", "output_bytes", "")


@test
def a_doorbell_write_loop_is_throttled_then_killed_as_a_flooder():
    flood_test("bell-loop", "wakeups", "")


def stdio_flood(stream, answers):
    t = Tierd("flood-stdio-" + stream, "[supervisor]\nrestart_backoff_base = 200ms\nagent_log_rate = 50\n"
              "crash_loop_count = 64\n[agent h]\ntier = 3\nmode = stdio\nexec = %s %s %s\n"
              "restart = always\nuser = root\n" % (sys.executable, os.path.join(HERE, "stdio_flood.py"), stream)
              + GOOD_BODY)
    try:
        t.start()
        t.wait_states({"good": "ready"}, timeout=15)
        c = t.client()
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(t.proc.pid)
        time.sleep(3)
        cpu = (cpu_ticks(t.proc.pid) - c0) / hz / (time.monotonic() - t0)
        check(cpu < 0.5, "tierd's CPU while a stdio agent floods %s: %.0f%% of a core"
              % (stream, cpu * 100))
        good_serves(c)
        evs = [e for e in c.ok("events")["events"] if e.get("agent") == "h" and
               (e["kind"] == "flooder" or e.get("event") in answers)]
        check(evs, "the flood was answered (%s or tierd's flooder)" % (answers,))
        lines = log_lines_about(t)
        check(len(lines) <= 50 * (time.monotonic() - t0 + 2) + 40,
              "log lines about h bounded by agent_log_rate: %d" % len(lines))
        print("    tierd CPU: %.1f%% of a core, %d log lines" % (cpu * 100, len(lines)))
        c.close()
    finally:
        t.cleanup()


@test
def a_stdio_agent_flooding_stderr_through_agentd_costs_tierd_little():
    stdio_flood("stderr", ("stderr_flood",))


@test
def a_stdio_agent_flooding_stdout_through_agentd_costs_tierd_little():
    stdio_flood("stdout", ("malformed_reply", "stdout_flood"))


@test
def a_child_refilling_the_ring_after_its_parent_exits_is_killed_with_the_leaf():
    t = Tierd("fork-refill", config("fork-refill", "agent_flood_kill_after = 0\n")
              .replace("fork-refill\nrestart = always", "fork-refill\nrestart = never"))
    try:
        t.start()
        c = t.client()
        wait_until(lambda: t.agents(c)["h"]["state"] == "stopped", 15, what="h stopped after its exit")
        good_serves(c)
        c.close()
        with open(os.path.join(t.cgroup_root(), "tier3", "agent-h", "cgroup.procs")) as f:
            left = f.read().split()
        check(not left, "the child it left died with its leaf: %s" % left)
        lines = log_lines_about(t)
        check(len(lines) <= 150, "log lines about h bounded: %d" % len(lines))
    finally:
        t.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
