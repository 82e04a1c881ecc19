#!/usr/bin/env python3
"""The Prometheus endpoint and the tierctl commands that measure and adapt
(top, limits, limit, history, analyze, optimiser, allocator), on the host,
with real agents."""

import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from tierlib import TIERCTL, Fail, Tierd, check, main, test, wait_until

PROMTOOL = "/usr/bin/promtool"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

FLEET = ("[supervisor]\nmonitor_interval = 200ms\n"
         "[agent orch]\ntier = 1\nexec = @AGENT@ --role orchestrator\n"
         "[agent prim]\ntier = 2\nexec = @AGENT@ --role primary\n"
         "[agent sec-1]\ntier = 3\nexec = @AGENT@ --role secondary\n"
         "[agent sec-2]\ntier = 3\nexec = @AGENT@ --role secondary\n")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metrics_tierd(name, body, address):
    """A Tierd whose metrics_address is address (tierlib writes "off")."""
    t = Tierd(name, body)
    with open(t.config) as f:
        text = f.read()
    check("metrics_address = off\n" in text, "tierlib's config head sets metrics_address")
    with open(t.config, "w") as f:
        f.write(text.replace("metrics_address = off\n", "metrics_address = %s\n" % address, 1))
    return t


def with_tierd(t, fn):
    try:
        t.start()
        t.wait_states("ready", timeout=20)
        return fn(t)
    finally:
        t.cleanup()


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse(text):
    """{(name, ((label, value), ...)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, "a sample line: %r" % line)
        labels = tuple(sorted((k, unescape(v)) for k, v in LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
    check(key in samples, "sample %s%s present" % (name, labels))
    return samples[key]


def get(port, path="/metrics", method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def tierctl(t, *args):
    return subprocess.run([TIERCTL, "--socket", t.sock] + list(args), capture_output=True,
                          text=True, timeout=30)


def listening_tcp_ports(pid):
    """Ports of the TCP sockets pid listens on (its fds against /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                col = row.split()
                if col[3] == "0A" and col[9] in inodes:
                    ports.add(int(col[1].rsplit(":", 1)[1], 16))
    return ports


@test
def metrics_count_tasks_and_pass_promtool():
    if not os.path.exists(PROMTOOL):
        raise Fail("promtool is not installed (Debian package prometheus): cannot lint the "
                   "exposition")
    port = free_port()
    n3, n1 = 7, 3

    def run(t):
        c = t.client()
        for i in range(n3):
            r = c.ok("submit", tier=3, type="noop", payload="t%d" % i)
            check(r["status"] == "ok", "tier-3 noop task ok: %s" % r)
        for i in range(n1):
            c.ok("submit", agent="orch", type="noop", payload="o%d" % i)
        st = c.ok("status")
        c.close()
        check(st.get("metrics", {}).get("state") == "listening" and
              st["metrics"].get("address") == "127.0.0.1:%d" % port,
              "status reports the endpoint: %s" % st.get("metrics"))

        # The exposition is rebuilt on the monitor tick (200 ms here).
        def counted():
            code, _ctype, body = get(port)
            if code != 200:
                return None
            s = parse(body)
            done = sum(value(s, "tierd_agent_tasks_total", agent=a, tier=3, status="ok")
                       for a in ("sec-1", "sec-2"))
            return (s, body) if done == n3 else None
        s, body = wait_until(counted, 10, 0.1, "a tick that counts the tasks")
        for a, tier in (("orch", 1), ("prim", 2), ("sec-1", 3), ("sec-2", 3)):
            check(value(s, "tierd_agent_up", agent=a, tier=tier) == 1, "%s is up" % a)
            check(value(s, "tierd_agent_restarts_total", agent=a, tier=tier) == 0,
                  "%s never restarted" % a)
            check(value(s, "tierd_agent_cpu_seconds_total", agent=a, tier=tier) >= 0,
                  "%s has a CPU counter" % a)
        check(value(s, "tierd_agent_tasks_total", agent="orch", tier=1, status="ok") == n1,
              "orch ran its %d tasks" % n1)
        check(value(s, "tierd_agent_response_seconds_count", agent="orch", tier=1) == n1,
              "orch's response summary counts %d" % n1)
        q = value(s, "tierd_agent_response_seconds", agent="orch", tier=1, quantile="0.95")
        check(0 <= q < 5, "orch's p95 response is a small number of seconds: %s" % q)
        check(value(s, "tierd_tasks_submitted_total") == n1 + n3, "submitted counted")
        check(value(s, "tierd_tasks_finished_total", status="ok") == n1 + n3, "finished ok counted")
        check(value(s, "tierd_tier_agents", tier=3) == 2, "two agents in tier 3")
        check(value(s, "tierd_tier_agents_ready", tier=3) == 2, "both ready")
        check(value(s, "tierd_machine_cpus") >= 1, "machine CPUs")
        check(value(s, "tierd_machine_memory_available_bytes") > 0, "machine memory")
        check(value(s, "tierd_accounting_info", source=st["accounting"],
                    bpf="true" if st["accounting"].startswith("bpf") else "false") == 1,
              "the accounting source, as status says")
        has_net = any(k[0] == "tierd_agent_network_receive_bytes_total" for k in s)
        check(has_net == st["accounting"].startswith("bpf"),
              "network counters only where the source has them")
        for line in body.splitlines():
            if line.startswith("# TYPE ") and line.endswith(" counter"):
                check(line.split()[2].endswith("_total"), "a counter ends in _total: %s" % line)

        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                              text=True)
        problems = (lint.stdout + lint.stderr).strip()
        check(lint.returncode == 0 and not problems,
              "promtool check metrics: exit %d\n%s" % (lint.returncode, problems))

        code, ctype, _ = get(port)
        check(code == 200 and ctype.startswith("text/plain; version=0.0.4"),
              "exposition content type: %s" % ctype)
        check(get(port, "/")[0] == 404, "other paths are 404")
        check(get(port, "/metrics", "POST")[0] == 405, "POST is 405")
        check(t.stop() == 0, "tierd stops cleanly with the endpoint open:\n" + t.log_text()[-2000:])
        s2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s2.bind(("127.0.0.1", port))
            s2.listen(1)
        except OSError as e:
            raise Fail("the port is free again after tierd stopped: %s" % e)
        finally:
            s2.close()
    with_tierd(metrics_tierd("metrics", FLEET, "127.0.0.1:%d" % port), run)


@test
def metrics_off_listens_nowhere():
    def run(t):
        c = t.client()
        st = c.ok("status")
        c.close()
        check(st.get("metrics") == {"state": "off"}, "status says off: %s" % st.get("metrics"))
        check(not listening_tcp_ports(t.proc.pid), "tierd listens on no TCP port: %s" %
              listening_tcp_ports(t.proc.pid))
    with_tierd(Tierd("metrics-off", FLEET), run)


@test
def a_taken_port_is_reported_and_tierd_runs_without_metrics():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]

    def run(t):
        c = t.client()
        st = c.ok("status")
        c.close()
        m = st.get("metrics", {})
        check(m.get("state") == "failed" and "already in use" in m.get("error", ""),
              "status explains the failure: %s" % m)
        log = t.log_text()
        check("cannot listen on 127.0.0.1:%d: the port is already in use" % port in log,
              "the log names the address and the cause:\n" + log[-2000:])
        check(port not in listening_tcp_ports(t.proc.pid), "tierd did not take the port")
        r = tierctl(t, "status")
        check(r.returncode == 0 and "not served" in r.stdout and "already in use" in r.stdout,
              "tierctl status shows it: %s" % r.stdout)
    try:
        with_tierd(metrics_tierd("metrics-busy", FLEET, "127.0.0.1:%d" % port), run)
    finally:
        blocker.close()


@test
def tierctl_top_limits_history_analyze_and_switches():
    def run(t):
        c = t.client()
        for i in range(4):
            c.ok("submit", tier=3, type="noop", payload="x%d" % i)
        c.ok("run", type="noop", payload="wf")
        c.close()
        wait_until(lambda: tierctl(t, "history", "tier3", "3").stdout.count("\n") >= 4, 5, 0.1,
                   "three samples of history")

        r = tierctl(t, "top", "--once")
        check(r.returncode == 0, "top --once: %s" % r.stderr)
        for a in ("orch", "prim", "sec-1", "sec-2"):
            check(re.search(r"^%s\s+\d\s+ready\s" % re.escape(a), r.stdout, re.M),
                  "top lists %s as ready:\n%s" % (a, r.stdout))
        check("accounting:" in r.stdout and "machine" in r.stdout, "top has its header")
        r = tierctl(t, "--json", "top")
        snap = json.loads(r.stdout)
        check(r.returncode == 0 and len(snap["agents"]) == 4, "top --json: one snapshot")

        r = tierctl(t, "limits", "--explain")
        check(r.returncode == 0 and "CPU.MAX" in r.stdout and "tier1:" in r.stdout,
              "limits --explain: %s %s" % (r.stdout, r.stderr))
        r = tierctl(t, "limit", "tier3", "cpu=30%", "memory=2G")
        check(r.returncode == 0, "limit: %s" % r.stderr)
        check(re.search(r"^3\s.*cpu,memory", r.stdout, re.M), "tier 3 shows both pins:\n" + r.stdout)
        r = tierctl(t, "--json", "limits")
        t3 = json.loads(r.stdout)["tiers"][2]
        check(t3["cpu_pinned"] and t3["memory_pinned"], "pins in the JSON: %s" % t3)
        r = tierctl(t, "limit", "tier3", "cpu=off")
        check(r.returncode == 0 and re.search(r"^3\s.*\smemory\s", r.stdout, re.M),
              "cpu pin removed, memory kept:\n" + r.stdout)

        r = tierctl(t, "history", "tier3", "3")
        check(r.returncode == 0 and "AGE" in r.stdout, "history: %s" % r.stderr)
        r = tierctl(t, "analyze")
        check(r.returncode == 0 and "run 1:" in r.stdout and "bottlenecks:" in r.stdout,
              "analyze shows the run and the bottlenecks:\n" + r.stdout)
        for what in ("optimiser", "allocator"):
            r = tierctl(t, what, "off")
            check(r.returncode == 0 and r.stdout.strip() == "%s off" % what, "%s off" % what)
            r = tierctl(t, what, "on")
            check(r.returncode == 0 and r.stdout.strip() == "%s on" % what, "%s on" % what)
        r = tierctl(t, "status")
        check(r.returncode == 0 and "allocator    on, optimiser on" in r.stdout,
              "status shows the allocator line:\n" + r.stdout)

        for bad in (["limit", "tier3"], ["limit", "tier9", "cpu=1"], ["limit", "tier3", "cpu=x"],
                    ["limit", "tier3", "memory=2Q"], ["limit", "tier3", "disk=1"],
                    ["limits", "--why"], ["history", "tier3", "zero"], ["optimiser", "maybe"],
                    ["top", "--forever"]):
            r = tierctl(t, *bad)
            check(r.returncode == 2 and r.stderr.startswith("tierctl %s: " % bad[0]),
                  "%s is a usage error (exit 2): %d %s" % (bad, r.returncode, r.stderr[:200]))
    with_tierd(Tierd("adapt", FLEET), run)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
