#!/usr/bin/python3
# A stdio agent (run by agentd) that floods one of its streams with lines
# forever and never answers: tests/integration/test_hostile_ring.py.
#   stdio_flood.py stderr|stdout
import sys

stream = sys.stdout.buffer if sys.argv[1:] == ["stdout"] else sys.stderr.buffer
line = b"flood " * 16 + b"\n"
while True:
    stream.write(line * 64)
