"""A fleet on one machine for the tests and `make run-fleet`: a JetStream
cluster of nats-server processes on loopback ports (cluster routes, store
dirs in a temp dir), tierd nodes with their own cgroup roots, sockets and
journal dirs, and optionally one node in a network namespace of its own
behind a veth pair (to cut it off). Everything is started and stopped by
pid; nothing here ends a process it did not start."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from tierlib import TIERCTL, Fail, Tierd, check, pid_alive, wait_until

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound, read, released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class NatsCluster:
    """n nats-servers forming one JetStream cluster. client_host is where the
    clients' port listens (127.0.0.1, or a veth address for a node in its
    own namespace); routes and monitoring stay on 127.0.0.1."""

    def __init__(self, n=3, client_host="127.0.0.1", name="tierdit"):
        self.dir = tempfile.mkdtemp(prefix="tierd-nats-")
        self.n = n
        self.host = client_host
        ports = free_ports(3 * n)
        self.client_ports = ports[:n]
        self.route_ports = ports[n:2 * n]
        self.http_ports = ports[2 * n:]
        self.procs = [None] * n
        self.name = name

    def url(self, i):
        return "nats://%s:%d" % (self.host, self.client_ports[i])

    def urls(self):
        return ",".join(self.url(i) for i in range(self.n))

    def _conf(self, i):
        path = os.path.join(self.dir, "n%d.conf" % i)
        routes = ", ".join("nats-route://127.0.0.1:%d" % p for j, p in enumerate(self.route_ports) if j != i)
        with open(path, "w") as f:
            f.write("server_name: n%d\nlisten: %s:%d\nhttp: 127.0.0.1:%d\n"
                    "max_payload: 8MB\n"
                    "jetstream { store_dir: \"%s\", max_memory_store: 64MB, max_file_store: 2GB }\n"
                    "cluster { name: %s, listen: 127.0.0.1:%d, routes: [%s] }\n"
                    % (i, self.host, self.client_ports[i], self.http_ports[i],
                       os.path.join(self.dir, "store%d" % i), self.name, self.route_ports[i], routes))
        return path

    def start(self, i=None):
        for k in ([i] if i is not None else range(self.n)):
            log = open(os.path.join(self.dir, "n%d.log" % k), "ab")
            self.procs[k] = subprocess.Popen([NATS_SERVER, "-c", self._conf(k)], stdout=log,
                                             stderr=subprocess.STDOUT)
            log.close()
        return self

    def healthy(self, i):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.http_ports[i], timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def jsz(self, i):
        with urllib.request.urlopen("http://127.0.0.1:%d/jsz" % self.http_ports[i], timeout=2) as r:
            return json.load(r)

    def wait_ready(self, timeout=30.0):
        """Every running server healthy and the meta group has a leader."""
        def ready():
            for k, p in enumerate(self.procs):
                if p is None:
                    continue
                check(p.poll() is None, "nats-server n%d exited:\n%s" % (k, self.log(k)))
                if not self.healthy(k):
                    return False
            try:
                return bool(self.jsz(self.live()[0]).get("meta_cluster", {}).get("leader"))
            except (OSError, ValueError, IndexError):
                return False
        wait_until(ready, timeout, 0.1, "the JetStream cluster")
        return self

    def live(self):
        return [k for k, p in enumerate(self.procs) if p is not None and p.poll() is None]

    def kill(self, i):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def log(self, i):
        try:
            with open(os.path.join(self.dir, "n%d.log" % i), errors="replace") as f:
                return "\n".join(f.read().splitlines()[-20:])
        except FileNotFoundError:
            return ""

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def fleet_section(cluster, node, ack_wait="3s", max_deliver=4, extra=""):
    return ("[fleet]\nservers = %s\nnode = %s\nreplicas = %d\nack_wait = %s\nmax_deliver = %d\n"
            "fetch_wait = 200ms\n%s" % (cluster.urls(), node, min(cluster.n, 3), ack_wait,
                                       max_deliver, extra))


def light_team(extra=""):
    """A small team: 4 tier-2 workers, an orchestrator, 4 tier-3 workers."""
    out = ["[agent orchestrator]\ntier = 1\nexec = @AGENT@ --role orchestrator\nrestart = always\n"]
    for i in range(4):
        out.append("[agent primary-%d]\ntier = 2\nexec = @AGENT@ --role primary\nrestart = always\n" % (i + 1))
    for i in range(4):
        out.append("[agent secondary-%02d]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = always\n" % (i + 1))
    return "\n".join(out) + extra


class Netns:
    """A network namespace with a veth pair to the host: host end HOST_IP,
    namespace end NS_IP, a default route back. Removed by remove()."""

    def __init__(self, idx=1):
        tag = "%d%d" % (os.getpid() % 10000, idx)
        self.ns = "tierdit%s" % tag
        self.host_if, self.ns_if = "tfh%s" % tag, "tfn%s" % tag
        octet = 16 + (os.getpid() % 200)
        self.host_ip, self.ns_ip = "10.254.%d.1" % octet, "10.254.%d.2" % octet
        self.made = False

    @staticmethod
    def ip(*args):
        subprocess.run(["ip"] + list(args), check=True, capture_output=True)

    def create(self):
        self.ip("netns", "add", self.ns)
        self.made = True
        self.ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        self.ip("link", "set", self.ns_if, "netns", self.ns)
        self.ip("addr", "add", self.host_ip + "/30", "dev", self.host_if)
        self.ip("link", "set", self.host_if, "up")
        self.ip("-n", self.ns, "addr", "add", self.ns_ip + "/30", "dev", self.ns_if)
        self.ip("-n", self.ns, "link", "set", self.ns_if, "up")
        self.ip("-n", self.ns, "link", "set", "lo", "up")
        self.ip("-n", self.ns, "route", "add", "default", "via", self.host_ip)
        return self

    def link(self, up):
        self.ip("-n", self.ns, "link", "set", self.ns_if, "up" if up else "down")

    def remove(self):
        if not self.made:
            return
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        self.made = False


class Node(Tierd):
    """A tierd fleet node; netns: run it inside that namespace (ip netns
    exec execs tierd, so the pid is tierd's)."""

    def __init__(self, name, body, netns=None):
        super().__init__(name, body)
        self.netns = netns

    def start(self, wait_socket=True):
        if self.netns is None:
            return super().start(wait_socket)
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        from tierlib import TIERD
        # nsenter, not ip netns exec: that remounts /sys, hiding the cgroup2
        # mount; nsenter execs tierd, so the pid is tierd's.
        self.proc = subprocess.Popen(["nsenter", "--net=/run/netns/" + self.netns.ns, TIERD, "-c", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait_socket:
            from tierlib import Client

            def listening():
                if self.proc.poll() is not None:
                    return True
                try:
                    Client(self.sock, timeout=1).close()
                    return True
                except OSError:
                    return False
            wait_until(listening, what="the control socket")
            check(self.proc.poll() is None, "tierd exited at start:\n" + self.log_text())
        return self

    def sigkill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def fleet_status(self, quiet=False):
        """fleet-status; quiet: {} when the node does not answer (just
        killed or restarting)."""
        try:
            c = self.client()
        except OSError:
            if quiet:
                return {}
            raise
        try:
            return c.ok("fleet-status")
        except (OSError, Fail):
            if quiet:
                return {}
            raise
        finally:
            c.close()


def tierctl_fleet(cluster, *args, timeout=60, check_rc=True):
    """tierctl fleet ... --servers the cluster, -j; the parsed JSON lines."""
    cmd = [TIERCTL, "-j", "-t", str(timeout), "fleet"] + list(args) + ["--servers", cluster.urls()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
    if check_rc:
        check(p.returncode == 0, "%s: rc %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")], p


def node_alive(n):
    return n.proc is not None and pid_alive(n.proc.pid)


__all__ = ["NatsCluster", "Node", "Netns", "fleet_section", "light_team", "tierctl_fleet", "free_ports",
           "node_alive", "Fail", "check", "wait_until"]
