#!/usr/bin/env python3
"""The control socket's roles and bounds, on the host: who may run which
command (root, a user in admin_group, one only in control_group, one in
neither), idle clients dropped, the per-uid connection cap, agents refused
whatever their uid, clamped deadlines and counts, capped result retention,
reloads that free what they replace, and a bounded bench-dispatch.

Users and groups are created for the run (names unique to it) and removed
afterwards; peers with those uids are child processes that drop to them
before they connect."""

import json
import os
import pwd
import grp
import socket
import subprocess
import sys
import time

from tierlib import (TIERCTL, Client, Fail, Tierd, check, main, test, wait_until)

TAG = "tdc%d" % (os.getpid() % 100000)
G_READ, G_ADMIN = TAG + "r", TAG + "a"
U_ADMIN, U_READ, U_NONE = TAG + "ua", TAG + "ur", TAG + "un"
# The peers run as other users: an interpreter they can execute (a
# per-user install under /root is not).
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

# A peer as another user: connect, send each request, print each reply
# (or the refusal line, or the connect error) as one JSON line.
PEER = r"""
import json, socket, sys
path, reqs = sys.argv[1], json.loads(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
try:
    s.connect(path)
except OSError as e:
    print(json.dumps({"connect_error": e.errno})); sys.exit(0)
f = s.makefile("rb")
for i, (cmd, args) in enumerate(reqs):
    s.sendall((json.dumps({"id": i + 1, "cmd": cmd, "args": args}) + "\n").encode())
    while True:
        line = f.readline()
        if not line:
            print(json.dumps({"closed": True})); sys.exit(0)
        m = json.loads(line)
        if m.get("more"):
            continue
        print(json.dumps(m)); break
"""

# Many idle connections as another user: how many were let in, how many
# refused and why; then hold them until stdin closes.
HOLDER = r"""
import json, select, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks, refused, why = [], 0, ""
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
# A refusal arrives at once; an admitted client hears nothing.
time.sleep(1.0)
for s in socks:
    r, _, _ = select.select([s], [], [], 0)
    if r:
        line = s.recv(4096)
        if line:
            refused += 1
            why = json.loads(line.split(b"\n")[0]).get("error", "")
print(json.dumps({"admitted": n - refused, "refused": refused, "why": why}), flush=True)
sys.stdin.read()
"""


def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Users:
    def __enter__(self):
        sh("groupadd", G_READ)
        sh("groupadd", G_ADMIN)
        # The socket file is root:control_group 0660: admins reach it
        # through control_group too (docs/control.md).
        sh("useradd", "-M", "-N", "-g", "nogroup", "-G", G_READ + "," + G_ADMIN, "-s",
           "/usr/sbin/nologin", U_ADMIN)
        sh("useradd", "-M", "-N", "-g", "nogroup", "-G", G_READ, "-s", "/usr/sbin/nologin", U_READ)
        sh("useradd", "-M", "-N", "-g", "nogroup", "-s", "/usr/sbin/nologin", U_NONE)
        return self

    def __exit__(self, *exc):
        for u in (U_ADMIN, U_READ, U_NONE):
            subprocess.run(["userdel", u], stderr=subprocess.DEVNULL)
        for g in (G_READ, G_ADMIN):
            subprocess.run(["groupdel", g], stderr=subprocess.DEVNULL)


def as_user(user, argv, **kw):
    pw = pwd.getpwnam(user)
    groups = [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]
    return dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=groups, cwd="/", **kw), argv


def peer(user, sock, reqs):
    kw, argv = as_user(user, [PY, "-c", PEER, sock, json.dumps(reqs)])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    check(out.returncode == 0, "peer as %s failed: %s" % (user, out.stderr))
    return [json.loads(x) for x in out.stdout.splitlines()]


def open_dir(t):
    # The test's directory is 0700; the other users must reach the socket.
    os.chmod(t.dir, 0o755)


def ctl_tierd(name, extra="", agents=None):
    body = ("[supervisor]\ncontrol_group = %s\nadmin_group = %s\n%s\n" % (G_READ, G_ADMIN, extra)
            + (agents if agents is not None else
               "[agent w1]\ntier = 3\nexec = @AGENT@ --role secondary\n"))
    return Tierd(name, body)


READS = [("status", {}), ("agents", {}), ("events", {}), ("top", {}), ("limits", {}),
         ("runs", {}), ("history", {}), ("result", {"task": 999999})]
WRITES = [("limit", {"tier": 3, "cpu": "off"}), ("reload", {}), ("submit", {"tier": 3, "type": "noop"}),
          ("stop", {"agent": "w1"}), ("start", {"agent": "w1"}), ("restart", {"agent": "w1"}),
          ("drain", {"agent": "w1"}), ("undrain", {"agent": "w1"}), ("cancel", {"task": 999999}),
          ("allocator", {"state": "on"}), ("optimiser", {"state": "on"}),
          ("run", {"type": "noop", "detach": True}),
          ("bench-dispatch", {"tier": 3, "n": 1}), ("rolling-restart", {"tier": 3})]


def refused_for_role(m):
    return not m.get("ok") and m.get("code") == "EPERM" and "needs the admin role" in m.get("error", "")


@test
def roles_allow_reads_to_control_group_and_everything_to_admins():
    with Users():
        t = ctl_tierd("roles")
        try:
            t.start()
            open_dir(t)
            t.wait_states("ready", timeout=20)
            # Only control_group: every read works, every change is refused,
            # naming the role it needs and the one the peer has.
            got = peer(U_READ, t.sock, READS + WRITES + [("shutdown", {})])
            for (cmd, _), m in zip(READS, got[:len(READS)]):
                check(not refused_for_role(m) and "closed" not in m,
                      "read-only peer refused %s: %s" % (cmd, m))
            for (cmd, _), m in zip(WRITES + [("shutdown", {})], got[len(READS):]):
                check(refused_for_role(m), "read-only peer was not refused %s: %s" % (cmd, m))
                check("you have read-only" in m["error"] and G_ADMIN in m["error"]
                      and ("'%s'" % cmd) in m["error"], "refusal does not name the roles: %s" % m)
            check(t.proc.poll() is None, "tierd went away after a refused shutdown")
            # tierctl says the same, and fails.
            kw, argv = as_user(U_READ, [TIERCTL, "--socket", t.sock, "shutdown"])
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)
            check(out.returncode == 1 and "'shutdown' needs the admin role" in out.stderr
                  and "you have read-only" in out.stderr, "tierctl shutdown as read-only: rc %d, %s"
                  % (out.returncode, out.stderr))
            kw, argv = as_user(U_READ, [TIERCTL, "--socket", t.sock, "status"])
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)
            check(out.returncode == 0, "tierctl status as read-only: %s" % out.stderr)
            # admin_group: the changes go through (they may fail for their own
            # reasons, never for the role).
            got = peer(U_ADMIN, t.sock, READS + WRITES)
            for (cmd, _), m in zip(READS + WRITES, got):
                check("closed" not in m and not refused_for_role(m),
                      "admin peer refused %s: %s" % (cmd, m))
            check(any(m.get("ok") for m in got[len(READS):]), "no admin change succeeded: %s" % got)
            # Neither group: no connection at all (the file's mode, then
            # tierd's own check).
            got = peer(U_NONE, t.sock, [("status", {})])
            check(got[0].get("connect_error") or (not got[0].get("ok") and got[0].get("code") == "EPERM"),
                  "a peer in neither group was let in: %s" % got)
            # Root: everything, shutdown included.
            c = t.client()
            check(c.ok("drain", agent="w1")["agents"] == ["w1"], "root drain")
            c.ok("undrain", agent="w1")
            got = peer(U_ADMIN, t.sock, [("shutdown", {})])
            check(got[0].get("ok"), "admin shutdown: %s" % got)
            t.proc.wait(20)
            check(t.proc.returncode == 0, "tierd exit code %s" % t.proc.returncode)
        finally:
            t.cleanup()


@test
def idle_clients_are_told_and_dropped_after_the_timeout():
    t = Tierd("idle", "[supervisor]\ncontrol_idle_timeout = 1s\n"
              "[agent w1]\ntier = 3\nexec = @AGENT@ --role secondary\n")
    try:
        t.start()
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.settimeout(10)
        idle.connect(t.sock)
        busy = t.client()
        t0 = time.monotonic()
        line = b""
        # The busy one keeps asking, the idle one says nothing.
        while time.monotonic() - t0 < 2.5:
            busy.ok("status")
            time.sleep(0.3)
        idle.settimeout(3)
        while not line.endswith(b"\n"):
            chunk = idle.recv(4096)
            if not chunk:
                break
            line += chunk
        check(line, "the idle client was not told anything")
        m = json.loads(line)
        check(m.get("code") == "ETIMEDOUT" and "idle" in m.get("error", ""), "idle message: %s" % m)
        check(idle.recv(4096) == b"", "the idle client is still connected")
        busy.ok("status")
        check("idle for 1000 ms" in t.log_text(), "the log does not say why")
    finally:
        t.cleanup()


def hold(user, sock, n):
    kw, argv = as_user(user, [PY, "-c", HOLDER, sock, str(n)])
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kw)
    return p, json.loads(p.stdout.readline())


@test
def one_uid_cannot_lock_out_root_with_idle_connections():
    with Users():
        for cap, want in ((8, 8), (0, 256 - 16)):
            t = ctl_tierd("cap%d" % cap, "control_max_clients_per_uid = %d\ncontrol_idle_timeout = 0\n" % cap)
            p = None
            try:
                t.start()
                open_dir(t)
                p, got = hold(U_READ, t.sock, 300)
                check(got["admitted"] == want, "cap %d: %s admitted, expected %d (%s)" % (cap, got["admitted"], want, got))
                check("too many control" in got["why"], "refusal: %s" % got)
                # Root still gets in, and so does an admin.
                c = Client(t.sock, timeout=5)
                check(c.ok("status")["pid"] == t.proc.pid, "root status")
                c.close()
                m = peer(U_ADMIN, t.sock, [("status", {})])[0]
                check(m.get("ok"), "admin locked out: %s" % m)
            finally:
                if p:
                    p.stdin.close()
                    p.wait(10)
                t.cleanup()


AGENT_PROBE = r"""#!/usr/bin/env python3
import json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
out = {"uid": os.getuid()}
try:
    s.connect(sys.argv[1])
    try:
        s.sendall(b'{"id": 1, "cmd": "status"}\n')
    except OSError:
        pass  # refused and closed already: the refusal is still there to read
    out["reply"] = json.loads(s.makefile("rb").readline())
except OSError as e:
    out["error"] = str(e)
with open(sys.argv[2] + ".tmp", "w") as f:
    json.dump(out, f)
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(60)
"""


@test
def an_agent_inside_the_tree_is_refused_even_as_root():
    t = Tierd("agentpeer", "")
    try:
        probe = os.path.join(t.dir, "probe.py")
        res = os.path.join(t.dir, "probe.json")
        with open(probe, "w") as f:
            f.write(AGENT_PROBE)
        os.chmod(probe, 0o755)
        # Root, and outside the sandbox (which would hide the socket from
        # it): what is left to refuse it is the peer's cgroup.
        t.write_config("[agent prober]\ntier = 3\nexec = %s %s %s\nrestart = never\n"
                       "start_timeout = 30s\nuser = root\nsandbox = no\n"
                       % (probe, t.sock, res))
        t.start()
        wait_until(lambda: os.path.exists(res), 15, what="the agent's probe")
        with open(res) as f:
            out = json.load(f)
        check(out["uid"] == 0, "the probe should run as root here: %s" % out)
        r = out.get("reply", {})
        check(not r.get("ok") and r.get("code") == "EPERM" and "cgroup tree" in r.get("error", ""),
              "an agent reached the control socket: %s" % out)
        # The operator, outside the tree, still does.
        t.client().ok("status")
    finally:
        t.cleanup()


@test
def huge_deadlines_and_counts_are_refused_and_tierd_survives():
    t = Tierd("clamp", "[agent w1]\ntier = 3\nexec = @AGENT@ --role secondary\n")
    try:
        t.start()
        t.wait_states("ready", timeout=20)
        c = t.client()
        for cmd, args, word in (
                ("submit", {"tier": 3, "type": "noop", "timeout_ms": 9223372036854}, "timeout_ms"),
                ("submit", {"tier": 3, "type": "noop", "timeout_ms": 1e300}, "timeout_ms"),
                ("submit", {"tier": 4294967299, "type": "noop"}, "tier"),
                ("run", {"type": "noop", "timeout_ms": 9223372036854, "detach": True}, "timeout_ms"),
                ("run", {"type": "noop", "stagger_ms": 1e18, "detach": True}, "stagger_ms"),
                ("history", {"n": -1}, "'n'"),
                ("events", {"after": -5}, "after"),
                ("bench-dispatch", {"tier": 3, "n": 100000000}, "n (1..1000000"),
                ("bench-dispatch", {"tier": 3, "n": 10, "window": 1 << 40}, "window"),
                ("bench-dispatch", {"tier": 3, "n": 10, "gap_us": 1 << 62}, "gap_us")):
            m = c.call(cmd, **args)
            check(not m.get("ok") and word in m.get("error", ""), "%s %s: %s" % (cmd, args, m))
        check(t.proc.poll() is None, "tierd died")
        r = c.ok("submit", tier=3, type="noop", timeout_ms=604800000)
        check(r["status"] == "ok", "the longest allowed deadline: %s" % r)
    finally:
        t.cleanup()


def asan(pid):
    """ASan keeps freed memory in quarantine: RSS says nothing there."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Fail("no VmRSS")


@test
def retention_is_capped_by_count_and_bytes_dropping_the_oldest():
    n, payload = 4000, "x" * (48 * 1024)
    t = Tierd("retain", "[supervisor]\nresult_retention = 1h\nresult_retention_max = 1000\n"
              "result_retention_bytes = 16M\ntask_queue_limit = 100000\n"
              "[agent w1]\ntier = 3\nexec = @AGENT@ --role secondary\n")
    try:
        t.start()
        t.wait_states("ready", timeout=20)
        c = Client(t.sock, timeout=120)
        rss0 = rss_kib(t.proc.pid)
        ids = []
        rids = [c.send("submit", tier=3, type="noop", payload=payload, detach=True) for _ in range(n)]
        for rid in rids:
            m = c.wait(rid)
            check(m.get("ok"), "submit: %s" % m)
            ids.append(m["result"]["task"])
        st = wait_until(lambda: (lambda s: s if s["pending"] == 0 else None)(c.ok("status")["tasks"]),
                        60, what="every task finished")
        rss1 = rss_kib(t.proc.pid)
        check(st["retained"] <= 1000 and st["retained_bytes"] <= 16 << 20, "caps: %s" % st)
        check(st["retention_dropped"] >= n - 1000, "dropped counter: %s" % st)
        first, last = c.call("result", task=ids[0]), c.call("result", task=ids[-1])
        check(not first.get("ok") and first["code"] == "ENOENT", "the oldest was kept: %s" % first)
        check(last.get("ok") and last["result"]["status"] == "ok", "the newest was dropped: %s" % last)
        # 4000 x 48 KiB is 188 MiB: kept, it would show.
        check(asan(t.proc.pid) or rss1 - rss0 < 64 * 1024, "RSS grew %d KiB (from %d)" % (rss1 - rss0, rss0))
        print("    retention: RSS %d -> %d KiB over %d detached 48 KiB submits, %s" %
              (rss0, rss1, n, st))
    finally:
        t.cleanup()


@test
def reloads_free_the_configurations_they_replace():
    agents = "".join("[agent w%02d]\ntier = 3\nexec = @AGENT@ --role secondary\nenv = A=%s\n"
                     % (i, "v" * 150) for i in range(24))
    t = Tierd("reload", agents)
    try:
        t.start()
        t.wait_states("ready", timeout=30)
        c = t.client()
        for _ in range(20):
            c.ok("reload")
        rss0 = rss_kib(t.proc.pid)
        for _ in range(1000):
            c.ok("reload")
        rss1 = rss_kib(t.proc.pid)
        st = c.ok("status")
        check(st["old_configs"] == 0, "old configurations kept: %s" % st["old_configs"])
        # An agent removed keeps its configuration only until it stopped.
        t.write_config(agents.split("[agent w23]")[0])
        c.ok("reload")
        wait_until(lambda: c.ok("status")["old_configs"] == 0 and "w23" not in t.agents(c),
                   20, what="the removed agent's configuration freed")
        print("    reload: RSS %d -> %d KiB over 1000 reloads of 24 agents" % (rss0, rss1))
        check(asan(t.proc.pid) or rss1 - rss0 < 4096, "RSS grew %d KiB over 1000 reloads" % (rss1 - rss0))
    finally:
        t.cleanup()


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@test
def bench_dispatch_answers_refused_submits_without_leaking():
    t = Tierd("bench", "[supervisor]\ntask_queue_limit = 16\n"
              "[agent w1]\ntier = 3\nexec = @AGENT@ --role secondary\n")
    try:
        t.start()
        t.wait_states("ready", timeout=20)
        fd0 = nfds(t.proc.pid)
        for _ in range(201):
            c = Client(t.sock, timeout=5)
            m = c.call("bench-dispatch", agent="nosuch", n=10)
            check(m.get("ok") and m["result"]["failed"] == 1 and "nosuch" in m["result"]["first_error"],
                  "bench-dispatch to no agent: %s" % m)
            c.close()
        wait_until(lambda: nfds(t.proc.pid) <= fd0 + 2, 5, what="fds back to %d" % fd0)
        # A window past the queue: the first refusal stops it, the loop
        # keeps serving meanwhile.
        c, s = t.client(), t.client()
        rid = c.send("bench-dispatch", tier=3, n=1000000, window=4096)
        t0 = time.monotonic()
        s.ok("status")
        check(time.monotonic() - t0 < 2.0, "status stalled %.1fs behind a bench" % (time.monotonic() - t0))
        m = c.wait(rid)
        check(m.get("ok") and m["result"]["tasks"] < 1000000 and "queue" in m["result"]["first_error"],
              "bench-dispatch past the queue: %s" % m)
        # One at a time.
        rid = c.send("bench-dispatch", tier=3, n=2000, window=1, gap_us=1000)
        m2 = s.call("bench-dispatch", tier=3, n=1)
        check(not m2.get("ok") and m2["code"] == "EBUSY", "a second bench at once: %s" % m2)
        check(c.wait(rid).get("ok"), "the first bench")
    finally:
        t.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
