#!/usr/bin/env python3
"""tierd core, on the host: start, supervise, restart, stop, reclaim, reload,
peers, a second instance, a missing binary."""

import os
import signal
import subprocess
import sys
import time

from tierlib import (AGENT, TIERCTL, TIERD, Client, Fail, Tierd, check, main, pid_alive,
                     team_config, test, wait_until)


def with_tierd(name, body, fn, **kw):
    t = Tierd(name, body, **kw)
    try:
        t.start()
        return fn(t)
    finally:
        t.cleanup()


@test
def twenty_four_agents_start_and_report_ready():
    def run(t):
        ags = t.wait_states("ready", timeout=20)
        check(len(ags) == 24, "24 agents, got %d" % len(ags))
        tiers = [sum(1 for a in ags.values() if a["tier"] == k) for k in (1, 2, 3, 4)]
        check(tiers == [1, 3, 16, 4], "tiers 1/3/16/4, got %s" % tiers)
        for a in ags.values():
            check(a["pid"] and pid_alive(a["pid"]), "%s has a live pid" % a["name"])
            with open("/proc/%d/cgroup" % a["pid"]) as f:
                cg = f.read()
            check("/%s/tier%d/agent-%s" % (t.name, a["tier"], a["name"]) in cg,
                  "%s runs in its leaf: %s" % (a["name"], cg.strip()))
        c = t.client()
        st = c.ok("status")
        c.close()
        check(st["agents"] == 24, "status counts 24 agents")
        check(sum(x["states"]["ready"] for x in st["tiers"]) == 24, "status: all ready")
    with_tierd("team", team_config(), run)


@test
def a_killed_agent_is_restarted_with_a_new_pid():
    def run(t):
        ags = t.wait_states("ready")
        old = ags["secondary-03"]["pid"]
        os.kill(old, signal.SIGKILL)
        def replaced():
            a = t.agents()["secondary-03"]
            return a if a["state"] == "ready" and a["pid"] != old else None
        a = wait_until(replaced, 5, what="a replacement")
        check(a["restarts"] == 1, "one restart counted, got %d" % a["restarts"])
        check("signal 9" in (a["last_exit"] or ""), "last exit says SIGKILL: %s" % a["last_exit"])
        check(not pid_alive(old), "old pid gone")
    with_tierd("kill", team_config(n_secondary=4), run)


@test
def backoff_grows_on_repeated_crashes_then_the_agent_fails():
    body = ("[supervisor]\nrestart_backoff_base = 50ms\ncrash_loop_count = 5\ncrash_loop_window = 60s\n"
            "[agent crasher]\ntier = 3\nexec = /bin/false\nrestart = always\n"
            "[agent steady]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n")

    def run(t):
        t.wait_states({"crasher": "failed", "steady": "ready"}, timeout=10)
        c = t.client()
        ev = c.ok("events")["events"]
        c.close()
        starts = [e["ts"] for e in ev if e["kind"] == "spawned" and e["agent"] == "crasher"]
        exits = [e["ts"] for e in ev if e["kind"] == "agent_exit" and e["agent"] == "crasher"]
        check(len(starts) == 5, "five starts before failing, got %d" % len(starts))
        check(len(exits) == 5, "five exits, got %d" % len(exits))
        # The restart delays, from each exit to the next start (not start to
        # start: that adds how long /bin/false took, which load stretches).
        gaps = [b - a for a, b in zip(exits, starts[1:])]
        # First restart immediate, then 50, 100, 200 ms.
        check(gaps[0] < 0.045, "first restart immediate: %.3fs" % gaps[0])
        for prev, cur in zip(gaps[1:], gaps[2:]):
            check(cur > prev * 1.6, "backoff grows: %s" % ["%.3f" % g for g in gaps])
        check(any(e["kind"] == "crash_loop" and e["agent"] == "crasher" for e in ev),
              "a crash_loop event")
        # An operator restart gives it a fresh history.
        r = subprocess.run([TIERCTL, "--socket", t.sock, "restart", "crasher"], capture_output=True)
        check(r.returncode == 0, "tierctl restart: %s" % r.stderr)
        wait_until(lambda: t.agents()["crasher"]["state"] in ("starting", "backoff", "ready"), 2,
                   what="crasher leaving failed")
    with_tierd("backoff", body, run)


@test
def stop_leaves_no_process_and_no_cgroup():
    def run(t):
        ags = t.wait_states("ready")
        pids = [a["pid"] for a in ags.values()]
        root = t.cgroup_root()
        check(os.path.isdir(root), "tree exists while running")
        rc = t.stop()
        check(rc == 0, "tierd exits 0 on SIGTERM, got %s" % rc)
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5, what="agents gone")
        check(not os.path.exists(root), "cgroup root removed")
        check(not os.path.exists(t.sock), "control socket removed")
    with_tierd("stop", team_config(n_secondary=4), run)


@test
def a_sigkilled_tierd_takes_its_agents_and_the_next_start_reclaims_the_tree():
    body = team_config(n_secondary=4)

    def run(t):
        ags = t.wait_states("ready")
        pids = [a["pid"] for a in ags.values()]
        t.proc.kill()
        t.proc.wait()
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5,
                   what="agents to die with tierd (PDEATHSIG)")
        check(os.path.isdir(t.cgroup_root()), "the stale tree is still there")
        # A leftover process in the stale tree, as a crashed tierd could leave.
        leaf = os.path.join(t.cgroup_root(), "tier3", "agent-secondary-01")
        stray = subprocess.Popen(["sleep", "1000"])
        with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
            f.write(str(stray.pid))
        t.start()
        t.wait_states("ready")
        stray.wait(5)
        check(stray.returncode == -signal.SIGKILL, "stray killed by reclaim: %s" % stray.returncode)
        check("reclaimed a stale tree" in t.log_text(), "the reclaim is logged")
        t.stop()
    with_tierd("reclaim", body, run)


@test
def reload_adds_removes_and_restarts_only_what_changed():
    base = ("[agent keep]\ntier = 2\nexec = @AGENT@ --role primary\n"
            "[agent change]\ntier = 3\nexec = @AGENT@ --role secondary\n"
            "[agent drop]\ntier = 3\nexec = @AGENT@ --role secondary\n")
    new = ("[agent keep]\ntier = 2\nexec = @AGENT@ --role primary\n"
           "[agent change]\ntier = 3\nexec = @AGENT@ --role primary\n"
           "[agent fresh]\ntier = 4\nexec = @AGENT@ --role specialist --specialty docs\nspecialties = docs\n")

    def run(t):
        before = t.wait_states("ready")
        t.write_config(new)
        c = t.client()
        r = c.ok("reload")
        c.close()
        check(r["added"] == ["fresh"], "added: %s" % r)
        check(r["removed"] == ["drop"], "removed: %s" % r)
        check(r["restarted"] == ["change"], "restarted: %s" % r)
        check(r["unchanged"] == 1, "unchanged: %s" % r)
        after = t.wait_states({"keep": "ready", "change": "ready", "fresh": "ready"})
        wait_until(lambda: "drop" not in t.agents(), 5, what="drop removed")
        check(after["keep"]["pid"] == before["keep"]["pid"], "unchanged agent kept its process")
        check(after["change"]["pid"] != before["change"]["pid"], "changed agent restarted")
        check(not os.path.exists(os.path.join(t.cgroup_root(), "tier3", "agent-drop")),
              "removed agent's leaf is gone")
        # A bad reload keeps everything running and says why.
        t.write_config(new + "[agent broken]\ntier = 9\nexec = /bin/true\n")
        c = t.client()
        m = c.call("reload")
        c.close()
        check(not m["ok"] and "tier" in m["error"], "bad reload refused: %s" % m)
        check(set(t.agents()) == {"keep", "change", "fresh"}, "running set unchanged")
    with_tierd("reload", base, run)


@test
def bad_config_lines_each_give_their_message():
    # (config, the offending line's start or None, words the message must hold)
    cases = [
        ("[agent a]\ntier = 7\nexec = /bin/true\n", "tier = 7", "tier"),
        ("[agent a]\nexec = /bin/true\n", None, "tier"),
        ("[agent a]\ntier = 1\nexec = /bin/true\nrestart = sometimes\n", "restart =", "restart"),
        ("[agent a]\ntier = 1\nexec = /bin/true\nbogus = 1\n", "bogus", "bogus"),
        ("[supervisor]\nmonitor_interval = fast\n", "monitor_interval", "monitor_interval"),
        ("[agent a]\ntier = 1\nexec = /bin/true\nuser = no-such-user-here\n", "user =", "no-such-user-here"),
    ]
    for body, line_start, what in cases:
        t = Tierd("bad", body)
        if line_start:
            with open(t.config) as f:
                n = 1 + [l.startswith(line_start) for l in f].index(True)
            where = "tierd.ini:%d:" % n
        else:
            where = "[agent a]"
        try:
            r = subprocess.run([TIERD, "-c", t.config], capture_output=True, text=True, timeout=10)
            check(r.returncode == 1, "bad config exits 1: %r" % body)
            check(where in r.stderr and what in r.stderr,
                  "message names %r and %r: %s" % (where, what, r.stderr))
            check("nothing started" in r.stderr, "says nothing started")
            check(not os.path.exists(t.cgroup_root()), "no tree created for a bad config")
        finally:
            t.cleanup()


@test
def peers_in_the_group_are_served_and_others_refused():
    body = "[supervisor]\ncontrol_group = 4242\n[agent a]\ntier = 1\nexec = @AGENT@ --role orchestrator\n"

    def as_user(uid, groups, sock):
        def pre():
            os.setgroups(groups)
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        return subprocess.run([TIERCTL, "--socket", sock, "status"], capture_output=True, text=True,
                              preexec_fn=pre, timeout=10)

    def run(t):
        t.wait_states("ready")
        st = os.stat(t.sock)
        check(st.st_gid == 4242 and (st.st_mode & 0o777) == 0o660, "socket root:4242 0660")
        # The directory must let the group reach the socket.
        os.chmod(t.dir, 0o755)
        r = as_user(65534, [4242], t.sock)
        check(r.returncode == 0 and "agents" in r.stdout.lower(), "member served: %s %s" % (r.stdout, r.stderr))
        r = as_user(65533, [], t.sock)
        check(r.returncode != 0, "outsider refused")
        check("permission denied" in r.stderr.lower(), "outsider told why: %s" % r.stderr)
    with_tierd("peer", body, run)


@test
def a_second_tierd_on_the_same_root_refuses_to_start():
    def run(t):
        t.wait_states("ready")
        r = subprocess.run([TIERD, "-c", t.config], capture_output=True, text=True, timeout=10)
        check(r.returncode == 1, "second instance exits 1")
        check("in use by another tierd" in r.stderr, "says why: %s" % r.stderr)
        check(all(a["state"] == "ready" for a in t.agents().values()), "first fleet untouched")
    with_tierd("twice", "[agent a]\ntier = 1\nexec = @AGENT@ --role orchestrator\n", run)


@test
def exec_of_a_missing_binary_fails_that_agent_only():
    body = ("[agent ghost]\ntier = 3\nexec = /no/such/agent-binary\nrestart = always\n"
            "[agent fine]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n")

    def run(t):
        ags = t.wait_states({"ghost": "failed", "fine": "ready"}, timeout=10)
        check("No such file or directory" in ags["ghost"]["last_exit"],
              "ENOENT reported: %s" % ags["ghost"]["last_exit"])
        check(ags["fine"]["restarts"] == 0, "the other agent never restarted")
    with_tierd("ghost", body, run)


@test
def an_agent_that_never_says_hello_is_killed_after_its_start_timeout():
    body = ("[agent mute]\ntier = 3\nexec = /bin/sleep 1000\nstart_timeout = 300ms\nrestart = never\n")

    def run(t):
        a = t.wait_states({"mute": "stopped"}, timeout=5)["mute"]
        check("start timeout" in (a["last_exit"] or ""), "says start timeout: %s" % a["last_exit"])
    with_tierd("mute", body, run)


@test
def tierctl_explains_a_dead_socket_and_bad_arguments():
    r = subprocess.run([TIERCTL, "--socket", "/nonexistent/x.sock", "status"], capture_output=True,
                       text=True)
    check(r.returncode != 0 and "not running" in r.stderr, "dead socket: %s" % r.stderr)
    r = subprocess.run([TIERCTL, "frobnicate"], capture_output=True, text=True)
    check(r.returncode == 2 and "unknown command" in r.stderr, "unknown command: %s" % r.stderr)

    def run(t):
        r = subprocess.run([TIERCTL, "--socket", t.sock, "restart", "nobody"], capture_output=True,
                           text=True)
        check(r.returncode == 1 and "no agent named" in r.stderr, "unknown agent: %s" % r.stderr)
    with_tierd("ctl", "[agent a]\ntier = 1\nexec = @AGENT@ --role orchestrator\n", run)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


@test
def agents_run_with_dropped_privileges_and_only_the_capabilities_kept():
    import shutil
    body = ("[agent plain]\ntier = 3\nexec = @DIR@/team-agent --role secondary\nuser = nobody\n"
            "[agent binder]\ntier = 3\nexec = @DIR@/team-agent --role secondary\n"
            "capabilities = cap_net_bind_service\n")

    def run(t):
        ags = t.wait_states("ready")
        plain = proc_status(ags["plain"]["pid"])
        check(plain["Uid"].split()[:3] == ["65534"] * 3, "runs as nobody: %s" % plain["Uid"])
        check(plain["Groups"] == "", "supplementary groups cleared: %r" % plain["Groups"])
        check(int(plain["CapEff"], 16) == 0 and int(plain["CapPrm"], 16) == 0, "no capabilities")
        check(plain["NoNewPrivs"] == "1", "no_new_privs set")
        binder = proc_status(ags["binder"]["pid"])
        bit = 1 << 10  # CAP_NET_BIND_SERVICE
        check(int(binder["CapEff"], 16) == bit, "root agent keeps only its capability: %s" % binder["CapEff"])
        check(int(binder["CapBnd"], 16) == bit, "bounding set reduced too: %s" % binder["CapBnd"])
        for name in ("plain", "binder"):
            st = proc_status(ags[name]["pid"])
            check(st["SigBlk"] == "0000000000000000", "signal mask reset for %s" % name)

    t = Tierd("creds", body)
    try:
        # An executable nobody may reach: the temp dir, not the build tree.
        shutil.copy(AGENT, os.path.join(t.dir, "team-agent"))
        os.chmod(t.dir, 0o755)
        t.start()
        run(t)
    finally:
        t.cleanup()


@test
def agent_output_is_logged_tagged_and_rate_limited():
    body = ("[agent chatty]\ntier = 3\nstart_timeout = 30s\nrestart = never\n"
            "exec = /bin/sh -c 'echo hello-from-stdout; echo oops-on-stderr >&2; sleep 0.5; "
            "i=0; while [ $i -lt 3000 ]; do echo flood-$i; i=$((i+1)); done; sleep 100'\n")

    def run(t):
        wait_until(lambda: "lines suppressed" in t.log_text(), 10, what="the rate limit to act")
        log = t.log_text()
        check("agent chatty[" in log and "]: hello-from-stdout" in log, "stdout tagged with the agent")
        check("]: oops-on-stderr" in log, "stderr logged too")
        flood = log.count(": flood-")
        check(0 < flood < 1000, "flood cut by the rate limit: %d of 3000 lines logged" % flood)
    with_tierd("chatty", body, run)


@test
def tierd_tells_systemd_ready_status_and_stopping():
    import socket as so
    t = Tierd("notify", "[agent a]\ntier = 1\nexec = @AGENT@ --role orchestrator\n")
    path = os.path.join(t.dir, "notify.sock")
    s = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    t.env = {"NOTIFY_SOCKET": path}
    try:
        t.start()
        msgs = []
        while not any("READY=1" in m for m in msgs):
            msgs.append(s.recv(4096).decode())
        check(any("STATUS=" in m and "ready" in m for m in msgs), "STATUS sent: %s" % msgs)
        t.stop()
        s.settimeout(0.5)
        rest = []
        try:
            while True:
                rest.append(s.recv(4096).decode())
        except OSError:
            pass
        check(any("STOPPING=1" in m for m in rest), "STOPPING=1 on shutdown: %s" % rest)
    finally:
        s.close()
        t.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
