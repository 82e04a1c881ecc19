#!/usr/bin/env python3
"""Live upgrade: tierd re-executes itself in place (same pid), keeping every
agent, task, run and socket; a binary that cannot take the state over hands
it back to the old one."""

import json
import os
import shutil
import signal
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
STRICT = os.path.join(BUILD, "upgrade", "tierd-strict")   # takes at most one agent


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
        follower = subprocess.Popen([TIERCTL, "--socket", t.sock, "--json", "events", "-f"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.3)
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
        # The event journal goes on: no gap, no reset of its sequence.
        c = t.client()
        evs = c.ok("events", after=0)["events"]
        seqs = [e["seq"] for e in evs]
        check(seqs == list(range(seqs[0], seqs[0] + len(seqs))), "event sequence has gaps: %s" % seqs)
        kinds = [e["kind"] for e in evs]
        check(kinds.count("upgraded") == 2, "upgraded events: %s" % kinds)
        # tierctl events -f followed across both upgrades, without a gap.
        time.sleep(0.5)
        follower.terminate()
        out, _ = follower.communicate(timeout=10)
        fseq = [json.loads(l)["seq"] for l in out.splitlines() if l.startswith("{")]
        fkinds = [json.loads(l)["kind"] for l in out.splitlines() if l.startswith("{")]
        check(fkinds.count("upgraded") == 2 and fseq == list(range(fseq[0], fseq[0] + len(fseq))),
              "the follower across upgrades saw %s" % list(zip(fseq, fkinds))[-8:])
        # SIGUSR2 (the systemd unit's reload) upgrades to the binary's path.
        last = seqs[-1]
        os.kill(t.proc.pid, signal.SIGUSR2)
        def upgraded():
            try:   # a connection the old binary took while it quiesced is closed
                return any(e["kind"] == "upgraded" for e in
                           reconnect(t).ok("events", after=last)["events"])
            except (OSError, Fail):
                return False
        wait_until(upgraded, 10, 0.05, "an upgrade on SIGUSR2")
        check(agent_pids(t) == before and reconnect(t).ok("status")["upgrades"] == 3,
              "after SIGUSR2")
    with_tierd("up-basic", stream_config(), run)


@test
def metrics_socket_sandbox_and_restarts_work_after_an_upgrade():
    """The metrics listener crosses (same port, never refused), a restarted
    agent spawns into the sandbox namespace the previous binary made, and
    the probe's counters go on."""
    import socket
    import urllib.request
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t = Tierd("up-mtr", stream_config(2))
    with open(t.config) as f:
        text = f.read()
    with open(t.config, "w") as f:
        f.write(text.replace("metrics_address = off\n", "metrics_address = 127.0.0.1:%d\n" % port, 1))

    def scrape():
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            return r.read().decode()

    def cpu_of(text, agent):
        for line in text.splitlines():
            if line.startswith("tierd_agent_cpu_seconds_total{") and 'agent="%s"' % agent in line:
                return float(line.rsplit(" ", 1)[1])
        return None

    try:
        t.start()
        t.wait_states("ready", timeout=30)
        c = t.client()
        for _ in range(50):
            c.ok("submit", tier=3, type="sleep", payload="1")
        time.sleep(1.2)   # a monitor tick
        cpu0 = cpu_of(scrape(), "w00")
        upgrade(t, ALT)
        time.sleep(1.2)
        after = scrape()
        check("tierd_" in after, "metrics not served after the upgrade")
        cpu1 = cpu_of(after, "w00")
        check(cpu0 is not None and cpu1 is not None and cpu1 >= cpu0,
              "agent CPU before and after: %s -> %s" % (cpu0, cpu1))
        before = agent_pids(t)
        c = t.client()
        c.ok("restart", agent="w00")
        wait_until(lambda: (lambda a: a["w00"]["state"] == "ready" and a["w00"]["pid"] != before["w00"])(
            t.agents()), 20, 0.05, "w00 restarted by the new binary")
        out = t.client().ok("submit", agent="w00", type="sleep", payload="1")
        check(out["status"] == "ok", "task on the restarted agent: %s" % out)
        check(agent_pids(t)["w01"] == before["w01"], "w01 should not have restarted")
    finally:
        t.cleanup()


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
        # A binary that refuses the configuration in force (at most one
        # agent; this one has two) hands the state back too.
        r = upgrade(t, STRICT, expect_ok=False)
        check(not r["ok"] and "configuration in force is refused" in r["error"], "strict: %s" % r)
        check(agent_pids(t) == before, "pids changed after the configuration refusal")
        st = t.client().ok("status")
        check(not st["version"].endswith("alt") and st["pid"] == t.proc.pid, "status: %s" % st)
        kinds = [e["kind"] for e in t.client().ok("events", after=0)["events"]]
        check(kinds.count("upgrade_failed") == 3, "upgrade_failed events: %s" % kinds)
        out = t.client().ok("submit", tier=3, type="sleep", payload="1")
        check(out["status"] == "ok", "task after refusals: %s" % out)
        shutil.rmtree(d)
    with_tierd("up-refuse", stream_config(2), run)


class Stream:
    """Detached submits, pipelined (a window of requests in flight) and
    paced, on a connection that an upgrade closes: what was acknowledged is
    kept; a request without its reply when the connection closed was never
    taken (tierd answers everything it read before it closes), so it is
    sent again."""

    def __init__(self, t, n, rate, window=32, mode="detach", tier=3, payload="2"):
        self.t, self.n, self.rate, self.window = t, n, rate, window
        self.tier, self.payload = tier, payload
        self.ids, self.errors, self.reconnects = [], [], 0
        self.done = threading.Event()
        self.th = threading.Thread(target=self.run)

    def start(self):
        self.th.start()
        return self

    def run(self):
        try:
            c = reconnect(self.t)
            inflight = {}
            sent = 0
            t0 = time.monotonic()
            while len(self.ids) < self.n:
                try:
                    while (len(inflight) < self.window and sent < self.n and
                           sent < (time.monotonic() - t0) * self.rate + self.window):
                        rid = c.send("submit", tier=self.tier, type="sleep", payload=self.payload,
                                     detach=True)
                        inflight[rid] = sent
                        sent += 1
                    if not inflight:
                        time.sleep(0.001)
                        continue
                    m = c.read_msg()
                except (OSError, Fail):
                    # Cut off by an upgrade. Replies tierd wrote before it
                    # closed are still to be read (a failed send says
                    # nothing of them); then send again what had none.
                    self.drain(c, inflight)
                    sent -= len(inflight)
                    inflight.clear()
                    self.reconnects += 1
                    c = reconnect(self.t)
                    continue
                if "id" not in m or m["id"] not in inflight:
                    continue
                del inflight[m["id"]]
                if m.get("ok"):
                    self.ids.append(m["result"]["task"])
                else:
                    self.errors.append(m)
                    return
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))
        finally:
            self.done.set()

    def drain(self, c, inflight):
        while inflight:
            try:
                m = c.read_msg()
            except (OSError, Fail):
                return
            if m.get("id") in inflight:
                del inflight[m["id"]]
                if m.get("ok"):
                    self.ids.append(m["result"]["task"])
                else:
                    self.errors.append(m)

    def join(self, timeout):
        self.th.join(timeout)


def check_results(t, ids, want_attempts=1):
    c = Client(t.sock, timeout=120)
    statuses = {}
    # Pipelined reads of every result.
    for k in range(0, len(ids), 256):
        rids = {c.send("result", task=tid, wait=True): tid for tid in ids[k:k + 256]}
        for rid, tid in rids.items():
            r = c.wait(rid)
            check(r.get("ok"), "task %d: %s" % (tid, r))
            res = r["result"]
            statuses[res["status"]] = statuses.get(res["status"], 0) + 1
            if want_attempts:
                check(res["attempts"] == want_attempts, "task %d ran %d times" % (tid, res["attempts"]))
    c.close()
    return statuses


@test
def twenty_upgrades_during_a_20000_task_stream_lose_nothing():
    n_tasks = 20000

    def run(t):
        before = agent_pids(t)
        s = Stream(t, n_tasks, rate=1500).start()
        binaries = [ALT, TIERD] * 10
        pauses = []
        for b in binaries:
            time.sleep(0.2)
            check(not s.done.is_set(), "the stream ended before upgrade %d" % (len(pauses) + 1))
            pauses.append(upgrade(t, b)["result"]["pause_ms"])
        s.join(300)
        check(not s.errors, "submitter: %s" % s.errors[:3])
        check(len(s.ids) == n_tasks and len(set(s.ids)) == n_tasks, "ids: %d (%d distinct)"
              % (len(s.ids), len(set(s.ids))))
        statuses = check_results(t, s.ids)
        check(statuses == {"ok": n_tasks}, "statuses: %s" % statuses)
        check(agent_pids(t) == before, "agent pids changed")
        st = t.client().ok("status")
        check(st["upgrades"] == 20, "status: %d upgrades" % st["upgrades"])
        check(st["tasks"]["submitted"] == n_tasks and st["tasks"]["retries"] == 0,
              "tierd took %d submits (the client has %d acks), %d retries" %
              (st["tasks"]["submitted"], n_tasks, st["tasks"]["retries"]))
        print("    pauses ms: median %.1f max %.1f; %d reconnects" %
              (sorted(pauses)[len(pauses) // 2], max(pauses), s.reconnects))
    with_tierd("up-stream", stream_config(), run)


@test
def twenty_upgrades_during_full_team_workflows():
    def run(t):
        before = agent_pids(t)
        c = t.client()
        runs = []
        binaries = [ALT, TIERD] * 10
        for b in binaries:
            runs.append(c.ok("run", type="docs", payload="upgrade during a run " * 40,
                             stagger_ms=20, detach=True)["run"])
            time.sleep(0.05)
            upgrade(t, b)
            c = reconnect(t)
        for run_id in runs:
            r = c.call("runs", run=run_id, wait=True)
            check(r.get("ok"), "run %d: %s" % (run_id, r))
            tiers = {x["tier"]: x for x in r["result"]["tiers"]}
            check(sum(x["ok"] for x in tiers.values()) == sum(x["tasks"] for x in tiers.values()),
                  "run %d: not every task ok: %s" % (run_id, tiers))
        check(agent_pids(t) == before, "agent pids changed")
    with_tierd("up-runs", team_config(), run)


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


@test
def waiting_submit_survives_a_crash_and_restart():
    """tierctl had the id (the accepted partial): after SIGKILL of tierd and
    a restart on the same journal it waits for the same task again."""
    def run(t):
        sub = subprocess.Popen([TIERCTL, "--socket", t.sock, "--json", "submit", "tier3", "sleep",
                                "800"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.4)
        t.proc.kill()
        t.proc.wait()
        t.start()
        out, err = sub.communicate(timeout=60)
        check(sub.returncode == 0 and '"status":"ok"' in out.replace(" ", ""),
              "waiting submit across a crash: rc %d\n%s\n%s" % (sub.returncode, out, err))
        check("1 tasks re-queued" in t.log_text(), "the replay did not re-queue the task")
        check("waiting for task" in err, "tierctl did not say it reconnected: %s" % err)
    with_tierd("up-crash", stream_config(2), run)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
