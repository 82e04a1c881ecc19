#!/usr/bin/env python3
"""Live upgrade: tierd re-executes itself in place (same pid), keeping every
agent, task, run and socket; a binary that cannot take the state over hands
it back to the old one."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

from tierlib import (BUILD, TIERCTL, TIERD, Client, Fail, Tierd, check, main, team_config, test,
                     wait_until)

# Two more builds of tierd (make upgrade-bins): another build tag, and one
# that writes and reads a bumped state format.
ALT = os.path.join(BUILD, "upgrade", "tierd-alt")
BUMPED = os.path.join(BUILD, "upgrade", "tierd-bumped")


def tierctl(t, *args, timeout=60):
    return subprocess.run([TIERCTL, "--socket", t.sock] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def agent_pids(t):
    return {n: a["pid"] for n, a in t.agents().items()}


def upgrade(t, binary=None, expect_ok=True):
    c = t.client()
    try:
        args = {"binary": binary} if binary else {}
        r = c.call("upgrade", **args)
    finally:
        c.close()
    if expect_ok:
        check(r.get("ok"), "upgrade to %s failed: %s\n%s" % (binary, r, t.log_text()[-3000:]))
    return r


def with_tierd(name, body, fn, **kw):
    t = Tierd(name, body, **kw)
    try:
        t.start()
        t.wait_states("ready", timeout=30)
        return fn(t)
    finally:
        t.cleanup()


def stream_config(n=6):
    return ("[supervisor]\ntask_queue_limit = 100000\nresult_retention_max = 100000\n" +
            "".join("[agent w%02d]\ntier = 3\nexec = @AGENT@ --role secondary\n" % i
                    for i in range(n)))


@test
def upgrade_keeps_pid_agents_and_answers_the_requester():
    def run(t):
        before = agent_pids(t)
        st0 = t.client().ok("status")
        r = upgrade(t, ALT)
        res = r["result"]
        check(res["pid"] == t.proc.pid, "pid changed: %s vs %d" % (res, t.proc.pid))
        check(res["to"].endswith("alt"), "the new binary is not the alt build: %s" % res)
        check(res["agents"] == len(before), "agents kept: %s" % res)
        after = agent_pids(t)
        check(after == before, "agent pids changed: %s -> %s" % (before, after))
        st = t.client().ok("status")
        check(st["pid"] == st0["pid"] and st["upgrades"] == 1, "status after: %s" % st)
        check(t.proc.poll() is None, "tierd exited")
        # The agents still work, through the same rings.
        c = t.client()
        out = c.ok("submit", tier=3, type="sleep", payload="1")
        check(out["status"] == "ok", "task after the upgrade: %s" % out)
        # And back to the first build, by the command-line tool.
        p = tierctl(t, "upgrade", "--binary", TIERD)
        check(p.returncode == 0 and "upgraded in place" in p.stdout, "tierctl upgrade: %s %s"
              % (p.stdout, p.stderr))
        check(agent_pids(t) == before, "agent pids changed on the way back")
    with_tierd("up-basic", stream_config(), run)


@test
def refused_state_and_bad_binary_leave_the_old_tierd_serving():
    def run(t):
        before = agent_pids(t)
        # Not executable: refused before anything stops.
        d = tempfile.mkdtemp(prefix="tierd-up-")
        bad = os.path.join(d, "tierd-noexec")
        shutil.copy(TIERD, bad)
        os.chmod(bad, 0o644)
        r = upgrade(t, bad, expect_ok=False)
        check(not r["ok"] and "not executable" in r["error"], "non-executable: %s" % r)
        # Executable but not a program: execve fails, the old binary
        # takes its state back and says so.
        junk = os.path.join(d, "tierd-junk")
        with open(junk, "w") as f:
            f.write("this is not a program\n")
        os.chmod(junk, 0o755)
        r = upgrade(t, junk, expect_ok=False)
        check(not r["ok"] and "cannot execute" in r["error"], "junk binary: %s" % r)
        check(agent_pids(t) == before, "pids changed after the junk binary")
        # A binary with another state format refuses it; the old one
        # goes on with the very same state.
        r = upgrade(t, BUMPED, expect_ok=False)
        check(not r["ok"] and "format" in r["error"], "bumped format: %s" % r)
        check(agent_pids(t) == before, "pids changed after the refusal")
        st = t.client().ok("status")
        check(not st["version"].endswith("alt") and st["pid"] == t.proc.pid, "status: %s" % st)
        out = t.client().ok("submit", tier=3, type="sleep", payload="1")
        check(out["status"] == "ok", "task after refusals: %s" % out)
        shutil.rmtree(d)
    with_tierd("up-refuse", stream_config(2), run)


@test
def twenty_upgrades_during_a_20000_task_stream_lose_nothing():
    n_tasks = 20000

    def run(t):
        before = agent_pids(t)
        ids = []
        done = threading.Event()
        errors = []

        def submitter():
            try:
                c = Client(t.sock, timeout=30)
                i = 0
                while i < n_tasks:
                    try:
                        r = c.call("submit", tier=3, type="sleep", payload="0", detach=True)
                    except (OSError, Fail):
                        # Cut off by the upgrade: the request may or may not
                        # have been taken. Reconnect; ask again only with a
                        # new payload so a lost ack shows up as unknown.
                        c = reconnect(t)
                        continue
                    if r.get("ok"):
                        ids.append(r["result"]["task"])
                        i += 1
                    elif r.get("code") == "EAGAIN" or "upgraded" in r.get("error", ""):
                        c = reconnect(t)
                    else:
                        errors.append(r)
                        return
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            finally:
                done.set()
        th = threading.Thread(target=submitter)
        th.start()
        binaries = [ALT, TIERD] * 10
        n_up = 0
        while not done.is_set() and n_up < len(binaries):
            time.sleep(0.1)
            upgrade(t, binaries[n_up])
            n_up += 1
        th.join(300)
        check(not errors, "submitter: %s" % errors[:3])
        check(n_up == 20, "only %d upgrades happened during the stream" % n_up)
        check(len(ids) == n_tasks and len(set(ids)) == n_tasks, "ids: %d (%d distinct)"
              % (len(ids), len(set(ids))))
        c = Client(t.sock, timeout=60)
        statuses = {}
        for tid in ids:
            r = c.call("result", task=tid, wait=True)
            check(r.get("ok"), "task %d: %s" % (tid, r))
            statuses[r["result"]["status"]] = statuses.get(r["result"]["status"], 0) + 1
            check(r["result"]["attempts"] == 1, "task %d ran %d times" % (tid, r["result"]["attempts"]))
        check(statuses == {"ok": n_tasks}, "statuses: %s" % statuses)
        check(agent_pids(t) == before, "agent pids changed")
        st = c.ok("status")
        check(st["upgrades"] == 20 and st["tasks"]["retries"] == 0,
              "status: upgrades %s, retries %s" % (st["upgrades"], st["tasks"]["retries"]))
    with_tierd("up-stream", stream_config(), run)


def reconnect(t):
    def conn():
        try:
            return Client(t.sock, timeout=30)
        except OSError:
            return None
    return wait_until(conn, 10, 0.01, "the control socket after an upgrade")


@test
def waiting_submit_and_run_survive_an_upgrade():
    def run(t):
        before = agent_pids(t)
        # tierctl waits for a slow task and for a whole workflow run.
        sub = subprocess.Popen([TIERCTL, "--socket", t.sock, "--json", "submit", "tier3", "sleep",
                                "1500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        brief = os.path.join(os.path.dirname(TIERD), "..", "examples", "data", "team-brief.txt")
        run_p = subprocess.Popen([TIERCTL, "--socket", t.sock, "--json", "run", "docs",
                                  "@" + os.path.abspath(brief), "--stagger", "300"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        upgrade(t, ALT)
        out, err = sub.communicate(timeout=30)
        check(sub.returncode == 0 and '"status":"ok"' in out.replace(" ", ""),
              "waiting submit across the upgrade: rc %d\n%s\n%s" % (sub.returncode, out, err))
        check("waiting for task" in err, "tierctl did not say it reconnected: %s" % err)
        out, err = run_p.communicate(timeout=60)
        check(run_p.returncode == 0 and '"tiers"' in out, "waiting run across the upgrade: rc %d\n%s\n%s"
              % (run_p.returncode, out, err))
        check(agent_pids(t) == before, "agent pids changed")
    with_tierd("up-wait", team_config(), run)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
