#!/usr/bin/env python3
"""Limits this host cannot enforce are named (issue 9, finding 7).

On a hybrid host pids (and memory, cpu, io) may be bound to cgroup v1,
where tierd writes nothing: `--check-config` and `tierctl status` must say
which agent's and tier's limits are not enforced. What is expected follows
the controllers tierd itself reports live, so the test holds on a pure v2
host too (where nothing is unenforced).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tierlib import AGENT, TIERCTL, TIERD, Tierd, check, main, test  # noqa: E402

BODY = ("[tier2]\npids_max = 100\n"
        "[agent capped]\ntier = 1\nexec = %s --role orchestrator\npids_max = 64\nmemory_max = 1G\n"
        "[agent free]\ntier = 2\nexec = %s --role primary\n" % (AGENT, AGENT))


@test
def check_config_and_status_name_the_limits_this_host_does_not_enforce():
    t = Tierd("hostlim", BODY)
    try:
        t.start()
        t.wait_states("ready")
        r = subprocess.run([TIERCTL, "--socket", t.sock, "--json", "status"], capture_output=True,
                           text=True, timeout=30)
        st = json.loads(r.stdout)
        live = {k: v["live"] for k, v in st["cgroup"]["controllers"].items()}
        want_agent = [k for k, c in (("memory_max", "memory"), ("pids_max", "pids")) if not live[c]]
        want = {"tiers": {"tier2": ["pids_max"]} if not live["pids"] else {},
                "agents": {"capped": want_agent} if want_agent else {}}
        check(st["unenforced"] == want, "status: %s, expected %s" % (st["unenforced"], want))
        text = subprocess.run([TIERCTL, "--socket", t.sock, "status"], capture_output=True,
                              text=True, timeout=30).stdout
        if want_agent:
            check("not enforced on this host: tier2: pids_max; agent capped: %s" % ", ".join(want_agent)
                  in text, "tierctl status says so:\n" + text)
        else:
            check("not enforced" not in text, "nothing to say on this host:\n" + text)
        chk = subprocess.run([TIERD, "-c", t.config, "--check-config"], capture_output=True,
                             text=True, timeout=30)
        check(chk.returncode == 0, "check-config passes: %s" % chk.stderr)
        if not live["pids"]:
            check("[tier2] not enforceable on this host: pids_max (pids: " in chk.stderr,
                  "check-config names the tier: %s" % chk.stderr)
        if want_agent:
            check("[agent capped] not enforceable on this host: %s" % ", ".join(want_agent)
                  in chk.stderr, "check-config names the agent: %s" % chk.stderr)
        check("[agent free] not enforceable" not in chk.stderr, "an agent without limits is not named")
    finally:
        t.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
