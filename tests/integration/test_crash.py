#!/usr/bin/env python3
"""Crash safety of the task journal (docs/journal.md): SIGKILL tierd at
random points of a stream of detached submits, including mid-fsync and
mid-rotation through the TIERD_WAL_CRASH test hook, restart it on the same
config, again and again; then every acknowledged task has exactly one final
result, ok, and the journal stayed under its cap. A corrupted tail is cut
at the next start and the cut is reported as a journal_truncated event.

SIGKILL keeps the page cache, so this cannot catch a missing fsync: the
power cut in the VM suite does that."""

import os
import random
import socket
import threading
import time

from tierlib import BUILD, Client, Fail, Tierd, check, main, team_config, test, wait_until

RECORD_AGENT = os.path.join(BUILD, "tests", "agents", "record-agent")
ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20"))
TASKS = int(os.environ.get("CRASH_TASKS", "20000"))
MAX_BYTES = 8 << 20
WINDOW = 64          # submits in flight on the connection


def config():
    return ("[supervisor]\njournal_sync = batch\njournal_segment_bytes = 64K\n"
            "journal_max_bytes = %d\ntask_retry_budget = 100\ntask_queue_limit = 100000\n"
            "result_retention = 1h\nresult_retention_max = 100000\n"
            "result_retention_bytes = 256M\ncrash_loop_count = 64\n"
            % MAX_BYTES
            + "".join("[agent r%d]\ntier = 3\nexec = %s --ids @DIR@/ids/r%d\nrestart = always\n"
                      % (i, RECORD_AGENT, i) for i in range(2)))


def submit_stream(sock, n, acked, stop):
    """Detached submits, WINDOW in flight, until n are acknowledged or the
    connection dies (tierd killed). Acknowledged ids go into acked."""
    try:
        c = Client(sock, timeout=10)
    except OSError:
        return
    sent = got = 0
    try:
        while got < n and not stop.is_set():
            while sent - got < WINDOW and sent < n:
                c.send("submit", tier=3, type="noop", payload="p", detach=True)
                sent += 1
            m = c.read_msg()
            if m.get("more"):
                continue
            got += 1
            if m.get("ok"):
                acked.append(m["result"]["task"])
            elif "journal full" not in (m.get("error") or ""):
                raise Fail("submit refused: %s" % m.get("error"))
    except (OSError, Fail, ValueError) as e:
        if isinstance(e, Fail) and "closed" not in str(e):
            raise
    finally:
        c.close()


def journal_bytes(t):
    d = os.path.join(t.dir, "journal")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".wal"))


def start(t, env=None):
    """False when a crash hook killed tierd during its start (the replay
    re-writes and syncs the pending tasks: a crash point like any other)."""
    t.env = env
    try:
        t.start()
        for attempt in range(3):
            try:
                t.wait_states("ready", timeout=20)
                break
            except OSError:
                # A probe connection reset while tierd is busy starting:
                # ask again unless tierd is gone.
                if attempt == 2 or t.proc.poll() is not None:
                    raise
                time.sleep(0.1)
    except (Fail, OSError):
        if env:
            try:
                t.proc.wait(5)
            except Exception:  # noqa: BLE001 - judged just below
                pass
        if not env or t.proc.poll() != -9:
            raise
        return False
    return True


@test
def every_acknowledged_task_has_one_result_across_sigkills():
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "11")))
    t = Tierd("crash", config())
    os.chmod(t.dir, 0o711)
    ids_dir = os.path.join(t.dir, "ids")
    os.mkdir(ids_dir)
    os.chmod(ids_dir, 0o777)
    acked = []
    hooks = {"rotate": 0, "sync": 0}
    try:
        per_round = TASKS // ROUNDS
        for rnd_no in range(ROUNDS):
            kind = ("sync", "rotate", None)[rnd_no % 3]
            env = None
            if kind == "sync":
                env = {"TIERD_WAL_CRASH": "sync:%d" % rnd.randint(2, 6)}
            elif kind == "rotate":
                env = {"TIERD_WAL_CRASH": "rotate:%d" % rnd.randint(1, 2)}
            if not start(t, env):
                hooks[kind] += 1
                continue
            stop = threading.Event()
            before = len(acked)
            th = threading.Thread(target=submit_stream, args=(t.sock, per_round, acked, stop))
            th.start()
            if not kind:
                time.sleep(rnd.uniform(0.0, 0.1))
                t.proc.kill()
            th.join(60)
            stop.set()
            if kind and len(acked) - before < per_round:
                # The stream ended early: the hook's SIGKILL (reaped soon).
                try:
                    t.proc.wait(5)
                except Exception:  # noqa: BLE001 - judged just below
                    pass
            if kind and t.proc.poll() is not None:
                check(t.proc.returncode == -9, "tierd ended with %s, not the hook's SIGKILL"
                      % t.proc.returncode)
                hooks[kind] += 1
            if t.proc.poll() is None:
                t.proc.kill()
            t.proc.wait()
            check(journal_bytes(t) <= MAX_BYTES, "journal %d bytes passed its cap %d"
                  % (journal_bytes(t), MAX_BYTES))
        check(hooks["sync"] > 0, "the sync crash hook never fired")
        check(hooks["rotate"] > 0, "the rotate crash hook never fired")
        check(len(acked) > TASKS // 4, "only %d submits acknowledged" % len(acked))
        check(len(set(acked)) == len(acked), "a task id was acknowledged twice")

        # A torn tail on the newest segment: cut at the next start.
        d = os.path.join(t.dir, "journal")
        newest = sorted(f for f in os.listdir(d) if f.endswith(".wal"))[-1]
        with open(os.path.join(d, newest), "ab") as f:
            f.write(b"\x40\x00\x00\x00\x01\x00\x00\x00garbage")
        start(t)
        c = Client(t.sock, timeout=60)
        ev = c.ok("events", after=0)["events"]
        cut = [e for e in ev if e.get("kind") == "journal_truncated"]
        check(cut and cut[0].get("segment") == int(newest[:16], 16),
              "no journal_truncated event for segment %s: %s" % (newest, cut))

        wait_until(lambda: c.ok("status")["tasks"]["pending"] == 0, 60, 0.1,
                   "every replayed task to finish")
        bad = []
        for tid in acked:
            m = c.call("result", task=tid)
            if not m.get("ok"):
                bad.append((tid, m.get("error")))
                continue
            r = m["result"]
            if r["status"] != "ok" or r.get("payload") != "done %d" % tid:
                bad.append((tid, r["status"], r.get("error"), r.get("payload")))
        check(not bad, "%d of %d acknowledged tasks without their one ok result, e.g. %s"
              % (len(bad), len(acked), bad[:5]))
        runs = {}
        for name in os.listdir(ids_dir):
            with open(os.path.join(ids_dir, name)) as f:
                for line in f:
                    if line.strip():
                        runs[int(line)] = runs.get(int(line), 0) + 1
        missing = [tid for tid in acked if tid not in runs]
        check(not missing, "acknowledged tasks no agent ever ran: %s" % missing[:5])
        rerun = sum(1 for tid in acked if runs[tid] > 1)
        st = c.ok("status")["journal"]
        check(st["bytes"] <= MAX_BYTES, "journal over its cap: %s" % st)
        print("    %d acknowledged over %d kills, %d ran more than once (one result each); "
              "journal %d bytes in %d segments"
              % (len(acked), ROUNDS, rerun, st["bytes"], st["segments"]))
        c.close()
    finally:
        t.cleanup()


def crash_during_a_run(after_crash):
    t = Tierd("crash-run-" + after_crash, "[supervisor]\nworkflow_after_crash = %s\n"
              % after_crash + team_config(n_secondary=2))
    try:
        start(t)
        c = t.client()
        run = c.ok("run", type="sleep", payload="300", detach=True)["run"]
        # Tier 1 done, tier 2 running: part of the run completed.
        time.sleep(0.45)
        t.proc.kill()
        t.proc.wait()
        start(t)
        c = t.client()
        agg = c.ok("runs", run=run)
        check(agg.get("status") == "interrupted", "run %d after the crash: %s" % (run, agg))
        done = [x for x in agg["completed"] if x["status"] == "ok"]
        check(len(done) >= 1, "the orchestrator's finished task is not listed: %s" % agg)
        ev = [e for e in c.ok("events", after=0)["events"] if e.get("kind") == "run_interrupted"]
        check(ev and ev[0].get("run") == run, "no run_interrupted event: %s" % ev)
        return c, agg, t
    except BaseException:
        t.cleanup()
        raise


@test
def a_run_in_progress_at_a_crash_ends_interrupted_with_what_completed():
    c, agg, t = crash_during_a_run("interrupt")
    try:
        check(agg["cancelled"] >= 1, "its pending tasks were not cancelled: %s" % agg)
        check("rerun_as" not in agg, "run again without workflow_after_crash = rerun: %s" % agg)
        wait_until(lambda: c.ok("status")["tasks"]["pending"] == 0, 5, 0.05,
                   "its cancelled tasks to be done (their ends durable)")
    finally:
        t.cleanup()


@test
def workflow_after_crash_rerun_starts_the_run_again():
    c, agg, t = crash_during_a_run("rerun")
    try:
        again = agg.get("rerun_as")
        check(again and again > agg["run"], "no new run: %s" % agg)
        res = wait_until(lambda: (lambda m: m["result"] if m.get("ok") else None)(
            c.call("runs", run=again)), 30, 0.1, "the re-run to finish")
        check(res["tiers"][0]["ok"] >= 1, "the re-run did not complete: %s" % res)
    finally:
        t.cleanup()


if __name__ == "__main__":
    raise SystemExit(main(os.sys.argv))
