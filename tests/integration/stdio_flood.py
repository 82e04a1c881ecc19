#!/usr/bin/python3
# A stdio agent (run by agentd) that floods stderr with lines forever and
# never answers: tests/integration/test_hostile_ring.py.
import sys

line = b"stderr flood " * 8 + b"\n"
while True:
    sys.stderr.buffer.write(line * 64)
