#!/bin/sh
# An exec-mode agent for tests/test_agentd_exec.c: one run per task, behaviour
# chosen by the task type agentd puts in the environment.
case "$TIER_TASK_TYPE" in
wc)	exec wc -w ;;
cat)	exec cat ;;
env)	printf '%s %s %s %s' "$TIER_TASK_TYPE" "$TIER_TASK_ID" "$TIER_TASK_ATTEMPT" "$TIER_BRIDGE"
	[ -n "$TIER_PROTO" ] && printf ' ring-variables-leaked'
	exit 0 ;;
fail)	cat >/dev/null
	echo "a first complaint" >&2
	echo "the real reason" >&2
	exit 3 ;;
sleep)	sleep 30 ;;
nap)	sleep 0.5; printf napped ;;
big)	head -c 200000 /dev/zero ;;
segv)	kill -SEGV $$ ;;
flood)	i=0; while [ $i -lt 100 ]; do head -c 65536 /dev/zero | tr '\0' x >&2; i=$((i+1)); done ;;
*)	echo "unknown type $TIER_TASK_TYPE" >&2; exit 2 ;;
esac
