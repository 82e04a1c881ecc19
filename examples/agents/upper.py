#!/usr/bin/env python3
# agentd mode stdio: one JSON request per line in, one reply per line out.
# Replies with the payload upper-cased; quality = 10 x the share of letters.
import json, sys

for line in sys.stdin:
    req = json.loads(line)
    text = req.get("payload", "")
    quality = round(10 * sum(c.isalpha() for c in text) / len(text), 2) if text else 0
    print(json.dumps({"id": req["id"], "status": "ok", "quality": quality,
                      "payload": text.upper()}), flush=True)
