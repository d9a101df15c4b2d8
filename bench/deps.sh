#!/bin/sh
# Install the peers `make bench` compares shift with (Debian 12 packages), only those
# missing: wrk (HTTP load), haproxy and nginx (the proxies, and nginx as the static
# backend), nftables (the kernel-only split). Run as root.
#
# The daemons these packages ship must not start or be enabled by the install: the
# benchmark starts its own instances, inside its namespaces, and stops them. So:
#  - a policy-rc.d that answers 101 ("action forbidden") is in place during the
#    install (ours only if none exists; the one found is left alone);
#  - afterwards their systemd units and init scripts are disabled (systemctl works
#    on the unit files without a running systemd; update-rc.d for Sys-V links).
set -eu

PKGS="wrk haproxy nginx nftables"
UNITS="haproxy.service nginx.service"

is_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

missing=""
for p in $PKGS; do
	is_missing "$p" && missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "bench/deps: missing packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "bench/deps: installing$missing (their services are neither started nor enabled)" >&2
policy=/usr/sbin/policy-rc.d own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# bench/deps.sh: no daemon starts during this install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
# shellcheck disable=SC2317 # called by the trap
cleanup() { [ "$own_policy" = 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT INT TERM
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || { echo "bench/deps: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null ||
	{ echo "bench/deps: apt-get install failed for:$missing" >&2; exit 1; }
if command -v systemctl >/dev/null 2>&1; then
	for u in $UNITS; do
		systemctl disable "$u" >/dev/null 2>&1 || true
	done
fi
for s in haproxy nginx; do
	if [ -e "/etc/init.d/$s" ]; then update-rc.d "$s" disable >/dev/null 2>&1 || true; fi
done
exit 0
