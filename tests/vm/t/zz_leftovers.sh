#!/bin/sh
# VM, last: after every test, no cgroup is left under the mount and no
# process runs besides init, this script and kernel threads.
cg=$(find /sys/fs/cgroup -mindepth 1 -type d)
# Our ancestors (init) are not strays.
mine=" $$ "
p=$$
while [ "$p" != 1 ] && [ -n "$p" ]; do
	p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)
	mine="$mine$p "
done
procs=""
for d in /proc/[0-9]*; do
	p=${d#/proc/}
	case "$mine" in *" $p "*) continue ;; esac
	# Kernel threads have an empty cmdline.
	cmd=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
	[ -z "$cmd" ] && continue
	# This script's own helpers are its children.
	ppid=$(awk '/^PPid:/ {print $2}' "$d/status" 2>/dev/null)
	[ "$ppid" = $$ ] && continue
	procs="$procs [$p: $cmd]"
done
if [ -z "$cg" ] && [ -z "$procs" ]; then
	echo "VMTEST PASS leftovers: no cgroup under /sys/fs/cgroup, no stray process"
else
	echo "VMTEST FAIL leftovers: cgroups: ${cg:-none}; processes:${procs:- none}"
	exit 1
fi
