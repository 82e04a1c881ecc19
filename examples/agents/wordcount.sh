#!/bin/sh
# agentd mode exec: the payload arrives on stdin, stdout is the result, and
# the exit status says ok (0) or error (anything else, reason on stderr).
exec wc -w
