#!/bin/sh
# Install the Debian 12 packages shift needs to build and test, only those missing.
# Run as root; used by `make check` and `make demo` so a fresh machine needs no set-up.
set -eu

PKGS="clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libmnl-dev
libcmocka-dev iproute2 ethtool nftables python3 curl procps util-linux kmod"
# The VM test needs these; they are optional (vmtest says "skipped" without them).
VM_PKGS="qemu-system-x86 busybox-static cpio"

missing=""
for p in $PKGS ${SHIFT_WITH_VM:-$VM_PKGS}; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || { echo "install-deps: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null ||
	{ echo "install-deps: apt-get install failed for:$missing" >&2; exit 1; }
