#!/bin/sh
# Install the Debian 12 packages shift needs to build and test, only those missing.
# Run as root; used by `make check` and `make demo` so a fresh machine needs no set-up.
set -eu

PKGS="clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libmnl-dev
libcmocka-dev iproute2 ethtool nftables python3 curl procps util-linux kmod"
# The HTTP API (agent/http/): libmicrohttpd serves, jansson parses the webhook JSON.
PKGS="$PKGS libmicrohttpd-dev"
# libFuzzer's runtime (tests/fuzz, make check): clang-14 only recommends it.
PKGS="$PKGS libclang-rt-14-dev"
# The fleet (agent/fleet/): libcurl talks to etcd's JSON gateway, jansson parses it.
PKGS="$PKGS libcurl4-openssl-dev libjansson-dev"
# The VM test needs these; they are optional (vmtest says "skipped" without them).
VM_PKGS="qemu-system-x86 busybox-static cpio"
# The operations test (tests/netns/test_ops.sh): the real node exporter, promtool
# (Debian ships it in "prometheus", a big package), systemd-analyze, man. A failed
# install is not fatal: the test skips what it cannot have and says why.
OPS_PKGS="prometheus-node-exporter prometheus systemd man-db groff-base"
# The package test (tests/netns/test_deb.sh, make deb): optional too, it skips
# without them; lintian is only needed for its lintian check.
DEB_PKGS="debhelper dpkg-dev fakeroot lintian"
# The HTTP API's end-to-end test (tests/netns/test_http_api.sh): a real Alertmanager
# (and amtool) firing into shiftd; it skips without it.
OPS_PKGS="$OPS_PKGS prometheus-alertmanager"
# The fleet tests run a real etcd of their own (never the system's: installed
# without starting its daemon, see install_optional) and etcdctl.
FLEET_PKGS="etcd-server etcd-client"
# analysis = auto end to end (tests/netns/test_e2e_l7.sh): real TLS and HTTP/2 servers and
# clients; optional too (the test skips without them).
OPS_PKGS="$OPS_PKGS nginx-light nghttp2-client openssl"
# Keep-alive load for test_streak.sh (its whole test) and test_http_api.sh's GET
# flood; optional (they skip without it).
OPS_PKGS="$OPS_PKGS wrk"
# The daemons those packages enable for the next boot: the tests start their own,
# on loopback ports of their namespaces, never these.
UNITS="etcd prometheus prometheus-alertmanager prometheus-node-exporter nginx"

is_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

policy=/usr/sbin/policy-rc.d own_policy=0
# shellcheck disable=SC2317 # called by the trap
cleanup() { [ "$own_policy" = 1 ] && rm -f "$policy"; return 0; }
# An install stopped half-way must not leave every later service start refused.
trap cleanup EXIT
trap 'exit 130' INT TERM

# Optional packages: never start their daemons, now or at the next boot (a test
# starts its own node exporter on a loopback port), and never fail the build
# over them.
install_optional() {
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# install-deps.sh: no daemon starts during this install\nexit 101\n' \
			>"$policy" && chmod 755 "$policy" && own_policy=1
	fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends "$@" >/dev/null ||
		echo "install-deps: warning: could not install:$* (the tests that need them skip)" >&2
	cleanup
	own_policy=0
	for u in $UNITS; do
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable "$u" >/dev/null 2>&1 || true
		fi
		if [ -e "/etc/init.d/$u" ]; then update-rc.d "$u" disable >/dev/null 2>&1 || true; fi
	done
	return 0
}

missing="" ops_missing=""
for p in $PKGS ${SHIFT_WITH_VM:-$VM_PKGS}; do
	is_missing "$p" && missing="$missing $p"
done
for p in ${SHIFT_WITH_OPS:-$OPS_PKGS} ${SHIFT_WITH_DEB:-$DEB_PKGS} ${SHIFT_WITH_FLEET:-$FLEET_PKGS}; do
	is_missing "$p" && ops_missing="$ops_missing $p"
done
[ -z "$missing$ops_missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	if [ -z "$missing" ]; then
		echo "install-deps: optional packages missing:$ops_missing (their tests skip)" >&2
		exit 0
	fi
	echo "install-deps: missing packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing$ops_missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || { echo "install-deps: apt-get update failed" >&2; exit 1; }
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ echo "install-deps: apt-get install failed for:$missing" >&2; exit 1; }
fi
# shellcheck disable=SC2086
[ -z "$ops_missing" ] || install_optional $ops_missing
