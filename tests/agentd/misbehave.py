#!/usr/bin/python3
# A stdio agent that does, on purpose, whatever the task type asks for:
# the well-behaved answers and every way of breaking the line protocol that
# agentd must survive (tests/test_agentd_stdio.c).
import base64, json, os, sys, time

out = sys.stdout.buffer


def reply(obj):
    out.write(json.dumps(obj).encode() + b"\n")
    out.flush()


def raw(data):
    out.write(data)
    out.flush()


held = None
for line in sys.stdin.buffer:
    req = json.loads(line)
    i, t = req["id"], req["type"]
    if t == "echo":
        r = {"id": i, "status": "ok"}
        for k in ("payload", "payload_b64"):
            if k in req:
                r[k] = req[k]
        reply(r)
    elif t == "reverse_b64":
        data = base64.b64decode(req["payload_b64"]) if "payload_b64" in req else req["payload"].encode()
        reply({"id": i, "status": "ok", "payload_b64": base64.b64encode(data[::-1]).decode()})
    elif t == "request":
        # The request as agentd wrote it, for checking its fields.
        reply({"id": i, "status": "ok", "payload": line.decode().rstrip("\n")})
    elif t == "swap":
        # Hold the first, answer the second before it: out of order.
        if held is None:
            held = i
        else:
            reply({"id": i, "status": "ok", "payload": "second"})
            reply({"id": held, "status": "ok", "payload": "first"})
            held = None
    elif t == "fds":
        fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
        reply({"id": i, "status": "ok", "payload": " ".join(map(str, fds))})
    elif t == "env":
        env = {k: v for k, v in os.environ.items() if k.startswith("TIER_")}
        reply({"id": i, "status": "ok", "payload": json.dumps(env, sort_keys=True)})
    elif t == "pid":
        reply({"id": i, "status": "ok", "payload": str(os.getpid())})
    elif t == "fail":
        reply({"id": i, "status": "error", "payload": "asked to fail"})
    elif t == "sleep":
        time.sleep(float(req["payload"]) / 1000)
        reply({"id": i, "status": "ok", "payload": req["payload"]})
    elif t == "stderr":
        sys.stderr.write("note from the agent: " + req["payload"] + "\n")
        sys.stderr.flush()
        reply({"id": i, "status": "ok"})
    elif t == "notjson":
        raw(b"this is not json\n")
    elif t == "array":
        raw(b"[1, 2, 3]\n")
    elif t == "noid":
        reply({"status": "ok", "payload": "whose?"})
    elif t == "unknownid":
        reply({"id": i + 1000000, "status": "ok"})
    elif t == "badstatus":
        reply({"id": i, "status": "maybe"})
    elif t == "quality":
        reply({"id": i, "status": "ok", "quality": 11})
    elif t == "bignum":
        raw(b'{"id": %d, "status": "ok", "quality": 1e999}\n' % i)
    elif t == "hugeid":
        raw(b'{"id": 123456789012345678901234567890, "status": "ok"}\n')
    elif t == "deep":
        raw(b'{"id": %d, "status": "ok", "x": ' % i + b"[" * 100000 + b"]" * 100000 + b"}\n")
    elif t == "hugeline":
        raw(b'{"id": %d, "status": "ok", "payload": "' % i + b"x" * (10 << 20) + b'"}\n')
    elif t == "badutf8":
        raw(b'{"id": %d, "status": "ok", "payload": "\xff\xfe"}\n' % i)
    elif t == "badb64":
        reply({"id": i, "status": "ok", "payload_b64": "not base64!"})
    elif t == "toolarge":
        reply({"id": i, "status": "ok", "payload": "y" * (1 << 20)})
    elif t == "exit":
        sys.exit(3)
    elif t == "hang":
        time.sleep(100000)
    elif t == "flood":
        chunk = b"flood " * 10000 + b"\n"
        for _ in range(400):
            sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
        reply({"id": i, "status": "ok"})
    elif t == "twice":
        reply({"id": i, "status": "ok"})
        reply({"id": i, "status": "ok"})
    else:
        reply({"id": i, "status": "error", "payload": "unknown type " + t})
