"""Helpers for tierd's host integration tests: run a real tierd with a
generated config in a private directory, talk to it over its control
socket, and clean up only what the test started."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TIERD_BUILD", os.path.join(ROOT, "build"))
TIERD = os.path.join(BUILD, "tierd")
TIERCTL = os.path.join(BUILD, "tierctl")
AGENT = os.path.join(BUILD, "examples", "team-agent")
CG_MOUNTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


class Fail(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def cgroup_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "cgroup2":
                return parts[4]
    raise Fail("no cgroup2 mount")


def wait_until(pred, timeout=10.0, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise Fail("timed out after %.1fs waiting for %s" % (timeout, what))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


class Client:
    """One control connection (JSON lines)."""

    def __init__(self, path, timeout=30.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.next_id = 1
        self.pending = {}

    def close(self):
        self.s.close()

    def send(self, cmd, **args):
        rid = self.next_id
        self.next_id += 1
        self.s.sendall((json.dumps({"id": rid, "cmd": cmd, "args": args}) + "\n").encode())
        return rid

    def read_msg(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise Fail("tierd closed the control connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def wait(self, rid):
        while rid not in self.pending:
            m = self.read_msg()
            if "id" in m and not m.get("more"):
                self.pending[m["id"]] = m
        return self.pending.pop(rid)

    def call(self, cmd, **args):
        m = self.wait(self.send(cmd, **args))
        return m

    def ok(self, cmd, **args):
        m = self.call(cmd, **args)
        check(m.get("ok"), "%s %s failed: %s" % (cmd, args, m.get("error")))
        return m["result"]


LAST = []


class Tierd:
    """A tierd with its own cgroup root, socket and directory."""

    def __init__(self, name, config_body, log_level="info", env=None):
        LAST[:] = [self]
        self.dir = tempfile.mkdtemp(prefix="tierd-it-")
        self.name = "tierd-it-%s-%d" % (name, os.getpid())
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.config = os.path.join(self.dir, "tierd.ini")
        self.log_path = os.path.join(self.dir, "tierd.log")
        self.write_config(config_body, log_level)
        self.proc = None
        self.env = env

    def write_config(self, body, log_level="info"):
        # Every tierd its own task journal: journal_dir is locked.
        head = ("[supervisor]\ncgroup_root = %s\ncontrol_socket = %s\nlog_level = %s\n"
                "metrics_address = off\njournal_dir = %s\n"
                % (self.name, self.sock, log_level, os.path.join(self.dir, "journal")))
        body = body.replace("@AGENT@", AGENT).replace("@DIR@", self.dir)
        if body.lstrip().startswith("[supervisor]"):
            # Merge: our keys first, the test's supervisor keys after.
            body = body.lstrip()[len("[supervisor]"):]
            text = head + body
        else:
            text = head + "\n" + body
        with open(self.config, "w") as f:
            f.write(text)

    def start(self, wait_socket=True):
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen([TIERD, "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        if wait_socket:
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

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def client(self):
        return Client(self.sock)

    def agents(self, c=None):
        own = c is None
        c = c or self.client()
        try:
            return {a["name"]: a for a in c.ok("agents")["agents"]}
        finally:
            if own:
                c.close()

    def wait_states(self, want, timeout=15.0):
        """want: {name: state} or a state for every agent."""
        def ok():
            ags = self.agents()
            if isinstance(want, str):
                return ags if all(a["state"] == want for a in ags.values()) else None
            return ags if all(ags[n]["state"] == s for n, s in want.items()) else None
        return wait_until(ok, timeout, 0.05, "agent states %s" % (want,))

    def cgroup_root(self):
        return os.path.join(cgroup_mount(), self.name)

    def leaf_pids(self):
        pids = []
        root = self.cgroup_root()
        for dirpath, _dirs, files in os.walk(root):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids += [int(x) for x in f.read().split()]
                except FileNotFoundError:
                    pass
        return pids

    def stop(self, timeout=20.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Fail("tierd did not stop within %.0fs" % timeout)
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        """Whatever a failed test left: our tierd, our tree (by its own cgroup)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        root = self.cgroup_root()
        if os.path.isdir(root):
            kill = os.path.join(root, "cgroup.kill")
            if os.path.exists(kill):
                try:
                    with open(kill, "w") as f:
                        f.write("1")
                except OSError:
                    pass
            time.sleep(0.2)
            for dirpath, dirs, _files in sorted(os.walk(root, topdown=False), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def team_config(n_secondary=16, restart="always", extra=""):
    """The bundled team's shape with the example agent."""
    out = ["[agent orchestrator]\ntier = 1\nexec = @AGENT@ --role orchestrator\nrestart = %s\n" % restart]
    for i in range(3):
        out.append("[agent primary-%d]\ntier = 2\nexec = @AGENT@ --role primary\nrestart = %s\n" % (i + 1, restart))
    for i in range(n_secondary):
        out.append("[agent secondary-%02d]\ntier = 3\nexec = @AGENT@ --role secondary\nrestart = %s\n" % (i + 1, restart))
    for sp in ("security", "performance", "data", "docs"):
        out.append("[agent spec-%s]\ntier = 4\nexec = @AGENT@ --role specialist --specialty %s\n"
                   "specialties = %s\nrestart = %s\n" % (sp, sp, sp, restart))
    return "\n".join(out) + extra


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def main(argv):
    import traceback
    only = argv[1:] if len(argv) > 1 else None
    passed = failed = 0
    for fn in TESTS:
        if only and fn.__name__ not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print("  PASS  %-55s %6.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failed += 1
            print("  FAIL  %-55s %6.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
            traceback.print_exc()
            print(e)
            if LAST:
                print("---- last lines of tierd's log (%s):" % LAST[0].log_path)
                print("\n".join(LAST[0].log_text().splitlines()[-25:]))
    print("integration: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
