#!/usr/bin/env bash
# Install the Debian packages tierd needs, only those that are missing.
# Called by the Makefile (through a stamp file) so a fresh Debian 12 machine
# needs nothing by hand. Needs root for apt-get; without it, prints what to
# install and fails.
set -euo pipefail

# Build and library dependencies.
PKGS=(
	build-essential pkg-config
	liburing-dev libjemalloc-dev libbpf-dev bpftool clang llvm
	libclang-rt-14-dev libcriterion-dev
	libjansson-dev libmicrohttpd-dev libsystemd-dev libcap-dev zlib1g-dev
	linux-libc-dev libnats-dev
)
# Test and benchmark dependencies: baselines, the VM suite, tools.
PKGS+=(
	libzmq3-dev s6 runit beanstalkd
	qemu-system-x86 busybox-static cpio zstd xz-utils kmod
	python3 iproute2 prometheus nats-server
)

# The agents' users: without 'user', a root tierd runs a tier-N agent as
# tierd-tN (docs/security.md). Idempotent; needs root like apt-get.
agent_users() {
	local u t
	for t in 1 2 3 4; do
		u=tierd-t$t
		getent passwd "$u" >/dev/null && continue
		if [ "$(id -u)" -ne 0 ]; then
			echo "setup: not root; create the agent user with:" \
				"useradd --system --no-create-home --shell /usr/sbin/nologin $u" >&2
			continue
		fi
		useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
		echo "setup: created agent user $u" >&2
	done
}
agent_users

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing+=("$p") ;;
	esac
done

# The fleet tests' second-language submitter (tests/fleet-js: nats.js from
# the npm registry): node and npm. A nodejs that brings its own npm (not
# Debian's) is left alone.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "setup: not root; install these with: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}
if ! apt_install >/tmp/tierd-setup.log 2>&1; then
	echo "setup: first install attempt failed; refreshing package lists" >&2
	apt-get update -q >>/tmp/tierd-setup.log 2>&1 || true
	if ! apt_install >>/tmp/tierd-setup.log 2>&1; then
		tail -n 30 /tmp/tierd-setup.log >&2
		echo "setup: apt-get install failed (log above)" >&2
		exit 1
	fi
fi
echo "setup: done" >&2
