#!/usr/bin/env python3
"""A hostile agent tries to leave its tier (issue 9, finding 1).

tests/agents/escape-agent runs each attempt and prints "escape NAME RESULT";
tierd logs its stdout tagged with the agent, which is where these tests read
the results. The same agent runs twice: as `user = root` and as the default
per-tier user. Each attempt must fail with the errno asserted here, and
tierd must keep serving afterwards.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tierlib import (AGENT, BUILD, Tierd, check, cgroup_mount, main, pid_alive, test,  # noqa: E402
                     wait_until)

ESCAPE = os.path.join(BUILD, "tests", "agents", "escape-agent")
LINE = re.compile(r"agent (\S+)\[\d+\]: escape (\S+) (\S+)")

# What each attempt must meet once tierd confines its agents. The default
# user fails on permissions first (EACCES, EPERM); a root agent, which
# passes those, hits the read-only cgroup mounts of its sandbox (EROFS). A
# root agent keeps what uid 0 without capabilities can still do
# (docs/security.md): signal tierd, write root's own files; those two are
# asserted for the default user only. The control socket is covered by a
# bind of /dev/null: no longer a socket, so ECONNREFUSED.
CGROUP_WRITES = ("move_to_tier1", "move_to_supervisor", "move_to_mount_root",
                 "freeze_supervisor", "grandchild_to_mount_root")
COMMON = {
    "own_cgroup": "namespace-root",
    "v1_freezer_mkdir": "EROFS",
    "kill_other_tier_agent": "EPERM",
    "ptrace_other_tier_agent": "EPERM",
    "connect_control_socket": "ECONNREFUSED",
}
WANT = {
    "hostile-root": dict(COMMON, **{k: "EROFS" for k in CGROUP_WRITES}),
    "hostile": dict(COMMON, kill_tierd="EPERM", open_root_file_for_writing="EACCES",
                    **{k: "EACCES" for k in CGROUP_WRITES}),
}


def results(t):
    out = {}
    for name, what, res in LINE.findall(t.log_text()):
        out.setdefault(name, {})[what] = res
    return out


def config(t, root_extra=""):
    mnt = cgroup_mount()
    root = t.cgroup_root()
    victim_leaf = os.path.join(root, "tier2", "agent-victim")
    target = os.path.join(t.dir, "root-owned")
    with open(target, "w") as f:
        f.write("tierd's, not the agent's\n")
    os.chmod(target, 0o644)
    os.chmod(t.dir, 0o755)
    probe = ("exec = %s --mount %s --root %s --sock %s --file %s --other-leaf %s --then %s "
             "--role secondary\nstart_timeout = 30s\nrestart = never\n"
             % (ESCAPE, mnt, root, t.sock, target, victim_leaf, AGENT))
    # The hostile agents start after the victim: it must exist to be hit.
    return ("[agent victim]\ntier = 2\nexec = %s --role primary\n"
            "[agent hostile-root]\ntier = 3\nuser = root\n%s%s"
            "[agent hostile]\ntier = 3\n%s" % (AGENT, root_extra, probe, probe))


@test
def a_hostile_agent_root_or_not_cannot_leave_its_tier_or_touch_tierd():
    t = Tierd("escape", "")
    t.write_config(config(t))
    grandchildren = []
    try:
        t.start()
        t.wait_states("ready", timeout=30)

        def done():
            r = results(t)
            return r if all("done" in r.get(n, {}) for n in WANT) else None
        got = wait_until(done, 20, what="both hostile agents to finish their attempts")
        for line in t.log_text().splitlines():
            m = re.search(r"escape grandchild_pid (\d+)", line)
            if m:
                grandchildren.append(int(m.group(1)))
        bad = []
        for name, want in WANT.items():
            for what, res in sorted(want.items()):
                if got[name].get(what) != res:
                    bad.append("%s %s: %s, expected %s" % (name, what, got[name].get(what), res))
        # Still serving, every agent still where tierd put it.
        ags = t.agents()
        check(all(a["state"] == "ready" for a in ags.values()), "agents still ready: %s" % ags)
        for name in ("hostile", "hostile-root"):
            leaf = os.path.join(t.cgroup_root(), "tier3", "agent-" + name, "cgroup.procs")
            with open(leaf) as f:
                pids = [int(x) for x in f.read().split()]
            check(ags[name]["pid"] in pids, "%s still in its leaf: %s" % (name, pids))
        check(t.stop() == 0, "tierd stopped cleanly")
        survivors = [p for p in grandchildren if pid_alive(p)]
        check(not survivors, "no grandchild outlives tierd's shutdown: %s" % survivors)
        check(not bad, "escape attempts that did not fail as expected:\n  " + "\n  ".join(bad))
    finally:
        for p in grandchildren:
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)
        t.cleanup()


@test
def a_root_agent_with_sandbox_off_reaches_tierds_cgroups_as_the_docs_warn():
    """The knob is real: without its sandbox a root agent's writes land."""
    t = Tierd("escape-nosb", "")
    t.write_config(config(t, "sandbox = no\n"))
    grandchildren = []
    try:
        t.start()

        def done():
            r = results(t).get("hostile-root", {})
            return r if "done" in r else None
        got = wait_until(done, 20, what="the root agent to finish its attempts")
        grandchildren = [int(p) for p in re.findall(r"hostile-root\[\d+\]: escape grandchild_pid (\d+)",
                                                     t.log_text())]
        check(got["own_cgroup"] == "tierd-path", "no cgroup namespace: %s" % got["own_cgroup"])
        check(got["move_to_supervisor"] == "ok" and got["freeze_supervisor"] == "ok",
              "writes to tierd's cgroups go through: %s" % got)
        check(got["connect_control_socket"] == "ok", "the socket is reachable: %s" % got)
        t.client().ok("status")
    finally:
        for p in grandchildren:
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)
        t.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
