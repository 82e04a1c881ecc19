"""A nats-server for tests (loopback port, temporary store, stopped by pid) and
a minimal NATS client speaking the text protocol (CONNECT, SUB, PUB, HPUB,
MSG, HMSG, PING): enough to publish to JetStream, call its API and read
results, written from the protocol's documentation, no library."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class NatsServer:
    """One JetStream-enabled nats-server on 127.0.0.1."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nats-it-")
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                                      "-sd", os.path.join(self.dir, "store")],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not listen on %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Nats:
    def __init__(self, url, timeout=5.0):
        host, port = url.split("//")[-1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.sid = 0
        self.inbox = "_INBOX.t%d%d" % (os.getpid(), int(time.monotonic() * 1e6))
        self.nreq = 0
        self.pending = {}
        self._line()  # INFO
        self._send(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                   b'"no_responders":true,"protocol":1}\r\nPING\r\n')
        self._wait_pong()
        self.inbox_sid = self.sub(self.inbox + ".*")

    def close(self):
        self.sock.close()

    def _send(self, b):
        self.sock.sendall(b)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("NATS connection closed")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def _wait_pong(self):
        while True:
            m = self.next_msg()
            if m == "PONG":
                return

    def next_msg(self):
        """One protocol item: a message dict, or 'PONG'."""
        while True:
            line = self._line()
            if line.startswith("PING"):
                self._send(b"PONG\r\n")
                continue
            if line.startswith("PONG"):
                return "PONG"
            if line.startswith("+OK") or line.startswith("INFO"):
                continue
            if line.startswith("-ERR"):
                raise RuntimeError("NATS: " + line)
            parts = line.split()
            if parts[0] == "MSG":
                reply = parts[3] if len(parts) == 5 else None
                data = self._bytes(int(parts[-1]))
                return {"subject": parts[1], "reply": reply, "headers": {}, "status": None,
                        "data": data}
            if parts[0] == "HMSG":
                reply = parts[3] if len(parts) == 6 else None
                hl, tl = int(parts[-2]), int(parts[-1])
                raw = self._bytes(tl)
                hdr, data = raw[:hl].decode(), raw[hl:]
                lines = hdr.split("\r\n")
                status = lines[0][len("NATS/1.0"):].strip() or None
                headers = {}
                for h in lines[1:]:
                    if ":" in h:
                        k, v = h.split(":", 1)
                        headers[k.strip()] = v.strip()
                return {"subject": parts[1], "reply": reply, "headers": headers,
                        "status": status, "data": data}

    def sub(self, subject):
        self.sid += 1
        self._send(("SUB %s %d\r\n" % (subject, self.sid)).encode())
        return self.sid

    def pub(self, subject, data=b"", reply=None, headers=None):
        if isinstance(data, str):
            data = data.encode()
        r = (" " + reply) if reply else ""
        if headers:
            h = ("NATS/1.0\r\n" + "".join("%s: %s\r\n" % kv for kv in headers.items())
                 + "\r\n").encode()
            self._send(("HPUB %s%s %d %d\r\n" % (subject, r, len(h), len(h) + len(data))).encode()
                       + h + data + b"\r\n")
        else:
            self._send(("PUB %s%s %d\r\n" % (subject, r, len(data))).encode() + data + b"\r\n")

    def request(self, subject, data=b"", headers=None, timeout=5.0):
        self.nreq += 1
        reply = "%s.%d" % (self.inbox, self.nreq)
        self.pub(subject, data, reply, headers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if reply in self.pending:
                return self.pending.pop(reply)
            m = self.next_msg()
            if m == "PONG":
                continue
            if m["subject"] == reply:
                return m
            self.pending[m["subject"]] = m
        raise TimeoutError("no reply on %s" % subject)

    def js_api(self, what, body=None):
        m = self.request("$JS.API." + what, json.dumps(body).encode() if body is not None else b"")
        return json.loads(m["data"] or b"{}")

    def js_publish(self, subject, data=b"", headers=None):
        """JetStream publish; returns the PubAck ({"stream", "seq"} or {"error"})."""
        m = self.request(subject, data, headers)
        if m["status"] and not m["data"]:
            return {"error": {"description": m["status"]}}
        return json.loads(m["data"])

    def last_result(self, stream, subject):
        r = self.js_api("STREAM.MSG.GET." + stream, {"last_by_subj": subject})
        if "message" not in r:
            return None
        return json.loads(base64.b64decode(r["message"]["data"]))

    def subject_counts(self, stream, filt=">"):
        r = self.js_api("STREAM.INFO." + stream, {"subjects_filter": filt})
        return (r.get("state") or {}).get("subjects") or {}
