#!/usr/bin/env bash
# The VM suite: proves on a real cgroup v2 kernel what a hybrid host cannot.
#
#   tests/vm/run.sh [BUILD]          (make vmtest; make test runs it too)
#
# Boots Debian 12's own 6.1 kernel (the current linux-image-6.1.0-*-amd64
# that linux-image-amd64 depends on, fetched with apt-get download and cached
# outside git) under qemu with a busybox initramfs holding the project's
# binaries, every VM test, and the shared libraries and kernel modules they
# need. Inside, tests/vm/init mounts a pure cgroup2 hierarchy and runs
# every test; each prints "VMTEST PASS|FAIL|SKIP name: ...".
#
# What runs in the VM (extensible: add a file, nothing else to change):
#   tests/vm/*.c     built by make into BUILD/vm/NAME, run as /vmtests/NAME
#   tests/vm/t/*     executable scripts, run as /vmtests/NAME
#   BUILD/* (ELF)    the project's programs (tierd, tools), in /opt/tierd/bin
# They run in name order, each under a timeout. Programs named bench_* are
# benchmarks, run only when asked for (TIERD_VM_ONLY=bench_...).
#
# Environment:
#   TIERD_VM_CACHE        kernel cache (default /var/cache/tierd-vm)
#   TIERD_VM_KVM=1        use KVM instead of TCG
#   TIERD_VM_TIMEOUT      bound on the whole VM run, seconds (default 420)
#   TIERD_VM_TEST_TIMEOUT bound on one test inside the VM (default 120)
#   TIERD_VM_ONLY=STR     run only tests whose name contains STR
#   TIERD_VM_CPUS=N       guest vCPUs (default 2)
#   TIERD_VM_REQUIRE=1    a suite that cannot run is an error (exit 2)
#   TIERD_VM_RETRY=0      no second boot after a boot that hung as a whole
#
# Last line: "vm: N passed, N failed" (exit 1 if any failed or the VM did not
# finish in time), or "vm: SKIPPED (reason)" when qemu or the kernel package
# cannot be obtained (exit 0, or 2 with TIERD_VM_REQUIRE=1) — never "passed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
cache=${TIERD_VM_CACHE:-/var/cache/tierd-vm}
bound=${TIERD_VM_TIMEOUT:-420}
test_timeout=${TIERD_VM_TEST_TIMEOUT:-120}
cpus=${TIERD_VM_CPUS:-2}
work="$build/vm-run"
log="$work/console.log"
t_start=$(date +%s)

skip() {
	echo "vm: ************************************************************" >&2
	echo "vm: *** VM SUITE NOT RUN: $*" >&2
	echo "vm: *** nothing it proves (cgroup limits on a real v2 kernel) was checked" >&2
	echo "vm: ************************************************************" >&2
	echo "vm: SKIPPED ($*)"
	[ "${TIERD_VM_REQUIRE:-0}" = 1 ] && exit 2
	exit 0
}

die() {
	echo "vm: error: $*" >&2
	echo "vm: 0 passed, 1 failed"
	exit 1
}

# ---- tools -------------------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
	skip "a static busybox is needed for the initramfs (apt-get install busybox-static)"
fi
for tool in cpio dpkg modinfo ldd timeout; do
	command -v "$tool" >/dev/null || skip "$tool is not installed"
done

# ---- the kernel ------------------------------------------------------------------
# Name of the current Debian 6.1 kernel image package.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\.0-[0-9]+-amd64$/ { print $2; exit }'
}

fetch_kernel() {
	local pkg deb tmp
	mkdir -p "$cache" || return 1
	pkg=$(kernel_pkg)
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
		echo "vm: refreshing apt package lists to resolve linux-image-amd64" >&2
		apt-get update -q >/dev/null 2>&1
		pkg=$(kernel_pkg)
	fi
	if [ -n "$pkg" ]; then
		deb=$(ls "$cache/${pkg}"_*_amd64.deb 2>/dev/null | sort -V | tail -n 1)
		if [ -z "$deb" ]; then
			echo "vm: downloading $pkg into $cache" >&2
			tmp=$(mktemp -d "$cache/dl.XXXXXX") || return 1
			if (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
				mv "$tmp"/*.deb "$cache/" && deb=$(ls "$cache/${pkg}"_*_amd64.deb | sort -V | tail -n 1)
			fi
			rm -rf "$tmp"
		fi
	fi
	# Offline, or the archive moved on: any 6.1 image already cached will do.
	if [ -z "${deb:-}" ]; then
		deb=$(ls "$cache"/linux-image-6.1.0-*-amd64_*_amd64.deb 2>/dev/null | sort -V | tail -n 1)
		[ -n "$deb" ] && echo "vm: could not resolve or fetch the current kernel; using cached $(basename "$deb")" >&2
	fi
	[ -n "${deb:-}" ] || return 1
	kdir="$cache/$(basename "$deb" .deb)"
	if [ ! -f "$kdir/.extracted" ]; then
		rm -rf "$kdir" && mkdir -p "$kdir" && dpkg -x "$deb" "$kdir" && touch "$kdir/.extracted" ||
			return 1
	fi
	vmlinuz=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n 1)
	moddir=$(ls -d "$kdir"/lib/modules/*/ 2>/dev/null | head -n 1)
	[ -n "$vmlinuz" ] && [ -n "$moddir" ]
}

fetch_kernel || skip "Debian's linux-image-6.1.0-*-amd64 could not be obtained (apt-get download failed, nothing cached in $cache)"
echo "vm: kernel $(basename "$vmlinuz") from $(basename "$kdir")"

# ---- the programs ---------------------------------------------------------------
is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" 2>/dev/null | tail -c 3)" = ELF ]; }

if ! ls "$build"/vm/* >/dev/null 2>&1; then
	make -C "$repo" --no-print-directory BUILD="$build" vmprogs >&2 || die "building the VM programs failed"
fi

# ---- initramfs ------------------------------------------------------------------
stage="$work/root"
rm -rf "$stage"
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,run,lib/modules,vmtests,opt/tierd/bin} || die "cannot create $stage"
cp "$busybox" "$stage/bin/busybox"
cp "$here/init" "$stage/init" && chmod 755 "$stage/init"

elves=()
ntests=0
for f in "$build"/vm/*; do
	is_elf "$f" && [ -x "$f" ] || continue
	cp "$f" "$stage/vmtests/" && elves+=("$f") && ntests=$((ntests + 1))
done
for f in "$here"/t/*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	cp "$f" "$stage/vmtests/" && ntests=$((ntests + 1))
done
# The live-upgrade test's other build (make upgrade-bins) beside them.
for f in "$build"/* "$build"/upgrade/tierd-alt; do
	is_elf "$f" && [ -x "$f" ] || continue
	cp "$f" "$stage/opt/tierd/bin/" && elves+=("$f")
done
[ "$ntests" -gt 0 ] || die "no VM test found in $build/vm or $here/t"

# Every shared library any of them needs, at the path the loader expects.
for f in "${elves[@]}"; do
	ldd "$f" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'
done | sort -u | while read -r lib; do
	mkdir -p "$stage$(dirname "$lib")" && cp -L "$lib" "$stage$lib"
done

# Block-device modules for io.max, with their dependencies first.
find_ko() {
	find "$moddir" \( -name "$1.ko" -o -name "$1.ko.*" -o -name "${1//_/-}.ko" -o -name "${1//_/-}.ko.*" \) |
		head -n 1
}
declare -A loaded=()
add_module() {
	local name=$1 params=${2:-} ko dep out
	[ -n "${loaded[$name]:-}" ] && return 0
	ko=$(find_ko "$name")
	[ -n "$ko" ] || { echo "vm: module $name not in $(basename "$kdir")" >&2; return 1; }
	for dep in $(modinfo -F depends "$ko" 2>/dev/null | tr ',' ' '); do
		add_module "$dep" || return 1
	done
	out="$stage/lib/modules/$name.ko"
	case "$ko" in
	*.ko.xz) xz -dc "$ko" >"$out" ;;
	*.ko.zst) zstd -qdc "$ko" >"$out" ;;
	*.ko.gz) gzip -dc "$ko" >"$out" ;;
	*) cp "$ko" "$out" ;;
	esac || return 1
	loaded[$name]=1
	echo "$name.ko $params" >>"$stage/lib/modules/load.list"
}
# null_blk completes reads without touching memory; brd is the fallback.
add_module null_blk "nr_devices=1 gb=4 queue_mode=2 irqmode=0" ||
	add_module brd "rd_nr=1 rd_size=65536" ||
	echo "vm: warning: neither null_blk nor brd could be packed; io.max cannot be shown" >&2

(cd "$stage" && find . | cpio -o -H newc -R 0:0 --quiet) >"$work/initramfs.cpio" ||
	die "building the initramfs failed"
echo "vm: initramfs $(du -h "$work/initramfs.cpio" | cut -f1), $ntests test program(s)"

# ---- boot -------------------------------------------------------------------------
if [ "${TIERD_VM_KVM:-0}" = 1 ]; then
	accel=(-accel kvm -cpu host)
else
	accel=(-accel tcg -cpu max)
fi
# loglevel=4: the kernel's warnings (stalls, lockups, hung tasks) reach the log.
append="console=ttyS0 panic=-1 quiet loglevel=4 tierd.timeout=$test_timeout"
[ -n "${TIERD_VM_ONLY:-}" ] && append="$append tierd.only=$TIERD_VM_ONLY"
# One boot: qrc is qemu's status, the console goes to $log.
boot() {
	echo "vm: booting qemu (${accel[1]}, $cpus cpus, 2G), bound ${bound}s; console log: $log"
	t_boot=$(date +%s)
	timeout -k 10 "$bound" qemu-system-x86_64 "${accel[@]}" -smp "$cpus" -m 2G -nographic -no-reboot \
		-kernel "$vmlinuz" -initrd "$work/initramfs.cpio" -append "$append" </dev/null 2>&1 |
		tr -d '\r' | tee "$log" |
		sed -un -e '/^  [^ ]/p' \
			-e '/Kernel panic\|BUG:\|Oops\|Call Trace\|rcu: INFO\|soft lockup\|blocked for more than\|period too short/p' \
			-e 's/^VMTEST \(PASS\|FAIL\|SKIP\|BOOT\|NOTE\|BENCH\|TIME\|DONE\) /  \1  /p'
	qrc=${PIPESTATUS[0]}
	t_end=$(date +%s)
}

# A boot that hangs as a whole (the guest's own watch reports and skips a
# stuck test, so this means the guest kernel or qemu stopped) is reported
# with its console's last lines and kept; the suite is booted once more and
# that boot's results count. Anything else is never retried.
hung=""
boot
if ! grep -q '^VMTEST DONE' "$log" && { [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; } &&
	[ "${TIERD_VM_RETRY:-1}" = 1 ]; then
	echo "vm: *** the VM hung: no end within ${bound}s (killed); last lines of its console:"
	tail -n 40 "$log"
	mv "$log" "$work/console-hung.log"
	hung=" (after one boot that hung, kept as $work/console-hung.log)"
	echo "vm: *** booting the suite once more"
	boot
fi

pass=$(grep -c '^VMTEST PASS ' "$log")
fail=$(grep -c '^VMTEST FAIL ' "$log")
skipped=$(grep -c '^VMTEST SKIP ' "$log")
if ! grep -q '^VMTEST DONE' "$log"; then
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		echo "vm: the VM did not finish within ${bound}s (killed); last lines of $log:"
		tail -n 40 "$log"
	else
		echo "vm: the VM stopped before the suite finished (qemu status $qrc); last lines of $log:"
		tail -n 30 "$log"
	fi
	fail=$((fail + 1))
elif [ $((pass + fail + skipped)) -eq 0 ]; then
	echo "vm: no test reported a result; see $log"
	fail=$((fail + 1))
fi
echo "vm: boot to power-off $((t_end - t_boot))s, whole suite $((t_end - t_start))s"
if [ "$skipped" -gt 0 ]; then
	echo "vm: $pass passed, $fail failed, $skipped skipped$hung"
else
	echo "vm: $pass passed, $fail failed$hung"
fi
[ "$fail" -eq 0 ]
