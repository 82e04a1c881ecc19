#!/usr/bin/env bash
# The journal across a power cut (make vmtest-powercut; make vmtest and make
# test run it too).
#
#   tests/vm/powercut.sh [BUILD]
#
# SIGKILL of tierd never loses the page cache, so it cannot catch a missing
# fsync; killing qemu can. For each journal_sync mode (batch, always, off):
#   1. a raw disk image, given to the guest as virtio-blk with cache=none
#      (O_DIRECT on the host: nothing the guest did not flush survives in a
#      host cache; cache=directsync where the host fs refuses O_DIRECT);
#   2. boot 1 (tierd.pc=MODE:load): the guest formats it ext4, runs tierd
#      with its journal there and a client that submits detached tasks and
#      writes each acknowledged id to its second serial port, a file here;
#   3. once PCUT_KILL_AT (default 2000, plus up to 2000 at random)
#      acknowledgements are in that file, qemu is killed with SIGKILL by its
#      pid: the power cut. The acknowledged ids are what the file holds;
#   4. boot 2 (tierd.pc=MODE:check) on the same disk, the list of ids as a
#      second disk: tierd replays its journal, the guest checks that every
#      acknowledged task has exactly one final result, its own payload.
# batch and always must lose nothing; off may lose tasks: the loss is
# printed and does not fail the test.
#
# Environment: PCUT_MODES (default "batch always off"; "none" runs the
# harness against a tierd without a journal), PCUT_KILL_AT, the VM suite's
# TIERD_VM_* (tests/vm/run.sh). Last line: "vm-powercut: N passed, N failed"
# or "vm-powercut: SKIPPED (reason)".
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
work="$build/vm-powercut"
modes=${PCUT_MODES:-batch always off}
kill_at=${PCUT_KILL_AT:-2000}
test_timeout=${TIERD_VM_TEST_TIMEOUT:-240}
cpus=${TIERD_VM_CPUS:-2}
if [ "${TIERD_VM_KVM:-0}" = 1 ]; then
	accel=(-accel kvm -cpu host)
else
	accel=(-accel tcg -cpu max)
fi
t_start=$(date +%s)

mkdir -p "$work" || exit 1
prep=$(TIERD_VM_WORK="$work" TIERD_VM_DISK=1 TIERD_VM_PREPARE_ONLY=1 bash "$here/run.sh" "$build")
rc=$?
echo "$prep" | grep -v '^vm: SKIPPED'
if echo "$prep" | grep -q '^vm: SKIPPED'; then
	echo "vm-powercut: SKIPPED (${prep##*SKIPPED (}"
	exit "$rc"
fi
[ "$rc" = 0 ] && [ -f "$work/kernel.path" ] || { echo "vm-powercut: 0 passed, 1 failed"; exit 1; }
vmlinuz=$(cat "$work/kernel.path")

# cache=none is O_DIRECT on the image: refused by some host file systems.
disk="$work/disk.img"
cache=none
truncate -s 0 "$disk" && truncate -s 256M "$disk" || exit 1
if ! dd if=/dev/zero of="$disk" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>/dev/null; then
	cache=directsync
	echo "vm-powercut: the host fs under $work refuses O_DIRECT: cache=directsync instead of cache=none"
fi
echo "vm-powercut: disk $disk (raw, 256M, virtio-blk, cache=$cache) on $(findmnt -no FSTYPE,SOURCE -T "$work" 2>/dev/null || stat -f -c %T "$work")"

qpid=""
cleanup() {
	[ -n "$qpid" ] && kill -KILL "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
}
trap cleanup EXIT

# boot NAME MODE:PHASE [extra drive]: qemu in the background, qpid its pid.
boot() {
	local name=$1 arg=$2 extra=${3:-}
	local drives=(-drive "file=$disk,format=raw,if=virtio,cache=$cache")
	[ -n "$extra" ] && drives+=(-drive "file=$extra,format=raw,if=virtio,cache=$cache,readonly=on")
	: >"$work/$name.console" && : >"$work/$name.acks"
	qemu-system-x86_64 "${accel[@]}" -smp "$cpus" -m 2G -display none -no-reboot -monitor none \
		-serial "file:$work/$name.console" -serial "file:$work/$name.acks" "${drives[@]}" \
		-kernel "$vmlinuz" -initrd "$work/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 tierd.timeout=$test_timeout tierd.only=powercut tierd.pc=$arg" \
		</dev/null >"$work/$name.qemu" 2>&1 &
	qpid=$!
}

# Wait for qpid to exit by itself, at most $1 seconds (then SIGKILL).
wait_off() {
	local i
	for ((i = 0; i < $1 * 2; i++)); do
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.5
	done
	kill -KILL "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=""
}

pass=0
fail=0
for mode in $modes; do
	name="pc-$mode"
	truncate -s 0 "$disk" && truncate -s 256M "$disk"
	target=$((kill_at + RANDOM % 2000))
	echo "vm-powercut: $mode: boot 1, power cut after $target acknowledgements"
	boot "$name-load" "$mode:load"
	why=""
	for ((i = 0; ; i++)); do
		n=$(grep -c '^A ' "$work/$name-load.acks" 2>/dev/null)
		[ "$n" -ge "$target" ] && break
		grep -q '^PCUT NOJOURNAL' "$work/$name-load.acks" && why="this tierd has no journal" && break
		grep -q '^PCUT END' "$work/$name-load.acks" && why="the stream ended before the cut" && break
		if ! kill -0 "$qpid" 2>/dev/null; then why="qemu stopped before the cut"; break; fi
		[ "$i" -ge $((10 * (test_timeout + 60))) ] && why="only $n acknowledgements in $((test_timeout + 60))s" && break
		sleep 0.1
	done
	# The power cut: SIGKILL, by pid, mid-stream.
	kill -KILL "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=""
	tr -d '\r' <"$work/$name-load.console" | grep '^VMTEST \(NOTE\|FAIL\|PASS\)' | sed 's/^/  /'
	if [ "$why" = "this tierd has no journal" ]; then
		echo "  SKIP  powercut_$mode: $why"
		continue
	fi
	if [ -n "$why" ]; then
		echo "  FAIL  powercut_$mode: $why; console: $work/$name-load.console"
		tr -d '\r' <"$work/$name-load.console" | tail -n 20
		fail=$((fail + 1))
		continue
	fi
	# Only whole lines were acknowledged to us: a torn last line is not.
	acks="$work/$name.acklist"
	cp "$work/$name-load.acks" "$acks.raw"
	[ -n "$(tail -c 1 "$acks.raw")" ] && sed -i '$ d' "$acks.raw"
	awk '/^A [0-9]+ [0-9]+$/ { print $2, $3 }' "$acks.raw" >"$acks"
	nacks=$(wc -l <"$acks")
	echo "." >>"$acks"
	truncate -s %4096 "$acks"
	echo "vm-powercut: $mode: qemu killed with $nacks acknowledged; boot 2 on the same disk"
	boot "$name-check" "$mode:check" "$acks"
	wait_off $((test_timeout + 120))
	tr -d '\r' <"$work/$name-check.console" >"$work/$name-check.log"
	grep '^VMTEST \(NOTE\|FAIL\|PASS\|SKIP\)\|^PCUT RESULT' "$work/$name-check.log" | sed 's/^/  /'
	if grep -q '^VMTEST FAIL' "$work/$name-check.log"; then
		fail=$((fail + 1))
	elif grep -q '^VMTEST PASS' "$work/$name-check.log"; then
		pass=$((pass + 1))
	else
		echo "  FAIL  powercut_$mode: boot 2 reported nothing; last lines of $work/$name-check.log:"
		tail -n 20 "$work/$name-check.log"
		fail=$((fail + 1))
	fi
done
echo "vm-powercut: whole run $(($(date +%s) - t_start))s"
echo "vm-powercut: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
