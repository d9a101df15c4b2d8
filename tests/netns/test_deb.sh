#!/bin/bash
# The Debian package (issue 19), on this machine (dpkg -i; the postinst runs
# addgroup, which a scratch `dpkg --root` lacks), restored at the end:
#  (a) make deb builds shift_N (debian/changelog's version) and shift_N+1 (the
#      variant program, -DSHIFT_UPGRADE_TEST); lintian: no error;
#  (b) dpkg -i N: binaries on PATH, unit (disabled, not started), man pages,
#      /etc/shift/shiftd.conf a conffile with every key commented, the shift
#      system group, rules and dashboard; shiftd --check on the installed config
#      (refused as shipped: no interface; valid with every key uncommented);
#      an enabled shift-drill@web.timer and a token in /etc/shift: remove
#      disables the timer and keeps the config; purge: the same files, links
#      and group as before the install (/etc/shift gone, token and all);
#  (c) upgrade under traffic: N installed, /usr/sbin/shiftd running on the rig
#      under rate and keep-alive load; dpkg -i N+1, then the restart the
#      postinst does under systemd (try-restart: SIGTERM, start the new binary).
#      0 failed requests, no keep-alive connection moved, the new program
#      swapped in by bpf_link_update (prog ids change, link ids stay); purge.
# PID 1 is not systemd here (a container): the postinst's try-restart is a
# no-op, and the test does the restart itself, as systemd would. Under systemd
# the same holds: this shiftd is not shiftd.service, which stays disabled.
# Exit 0 pass, 77 skipped (reason printed), 1 fail.
# run.sh: alone (two package builds take both cores; dpkg -i is machine-wide)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

skip() { echo "# skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i)"
for c in dpkg-buildpackage dh fakeroot make; do
	command -v "$c" >/dev/null 2>&1 || skip "missing $c (apt-get install dpkg-dev debhelper fakeroot)"
done
if ! bd=$(cd "$ROOT" && dpkg-checkbuilddeps 2>&1); then
	skip "build dependencies missing: ${bd#*: }"
fi
rig_probe || rig_skip "$RIG_SKIP_REASON"

# The machine must not have shift already: the test installs and purges it.
PKG_PATHS="/usr/sbin/shiftd /usr/sbin/shiftctl /lib/systemd/system/shiftd.service /etc/shift
/usr/share/shift /usr/share/doc/shift /var/lib/shift"
st=$(dpkg-query -W -f='${db:Status-Status}' shift 2>/dev/null) || st=not-installed
[ "$st" = not-installed ] || skip "package shift is on this machine ($st); the test would replace it"
for p in $PKG_PATHS; do [ ! -e "$p" ] || skip "$p exists (make install?); the test would overwrite it"; done
! getent group shift >/dev/null || skip "group shift exists; the test would take it over"

T=$(mktemp -d "${TMPDIR:-/tmp}/shift-deb.$$.XXXXXX") || exit 1
INSTALLED=0
BUILD1=""
cleanup() {
	[ -z "$BUILD1" ] || kill -TERM -- -"$BUILD1" 2>/dev/null
	if [ "$INSTALLED" = 1 ]; then
		DEBIAN_FRONTEND=noninteractive dpkg --purge shift >>"$T/dpkg.log" 2>&1 ||
			echo "# cleanup: dpkg --purge shift failed; see $T/dpkg.log" >&2
	fi
	[ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT # kept by rig_up; runs after rig_down (which stops shiftd)

# dpkg ARGS..., waiting (bounded) for the lock another apt/dpkg may hold.
dpkg_do() {
	local i out
	for ((i = 0; i < 120; i++)); do
		if out=$(DEBIAN_FRONTEND=noninteractive dpkg "$@" 2>&1); then
			printf '%s\n' "$out" >>"$T/dpkg.log"
			return 0
		fi
		case $out in *lock*) sleep 0.5 ;; *) printf '%s\n' "$out" | sed 's/^/#   /'; return 1 ;; esac
	done
	echo "#   dpkg lock still held after 60 s"
	return 1
}
install_deb() { dpkg_do -i "$1" && INSTALLED=1; }
purge() { dpkg_do --purge shift && INSTALLED=0; }

# What the package may leave: its paths, debhelper's systemd state, the group.
snapshot() {
	{
		for p in $PKG_PATHS /var/lib/prometheus/node-exporter/shift.prom; do [ ! -e "$p" ] || echo "$p"; done
		find /var/lib/dpkg/info /etc/systemd /var/lib/systemd /lib/systemd/system /usr/share/man \
			\( -name 'shift.*' -o -name 'shiftd*' -o -name 'shiftctl*' -o -name 'shift-drill@*' \) \
			2>/dev/null
		getent group shift
	} | sort
}
# no_shiftd_from_package: no process runs /usr/sbin/shiftd.
pkg_shiftd_pids() {
	local d
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2>/dev/null)" = /usr/sbin/shiftd ] && echo "${d#/proc/}"
	done
	return 0
}

# ---------------------------------------------------------------------------------
note "--- (a) make deb, N and N+1 ($((SECONDS - E2E_T0))s)"
V0=$(sed -n '1s/^shift (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog")
V1=$V0+upgradetest1
ARCH=$(dpkg --print-architecture)
build() { # LOG MAKE-ARGS...
	local log=$1
	shift
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" deb DEB_OUT="$T/debs" "$@" >"$log" 2>&1
}
# N+1 builds while N does (two cores), in its own session: the clean-up stops the
# whole build by its process group.
t1=$SECONDS
setsid bash -c "$(declare -f build); ROOT='$ROOT' T='$T'; build '$T/build1.log' OUTPUT='$T/out1' \
	DEB_VERSION='$V1' BPF_EXTRA_CFLAGS=-DSHIFT_UPGRADE_TEST" </dev/null &
BUILD1=$!
t0=$SECONDS
if build "$T/build0.log" OUTPUT="$T/out0"; then
	ok "make deb OUTPUT=\$T/out0 DEB_OUT=\$T/debs: shift_${V0}_$ARCH.deb in $((SECONDS - t0))s"
else
	notok "make deb: $(tail -n 5 "$T/build0.log")"
	e2e_finish
fi
for ((i = 0; i < 3000; i++)); do kill -0 "$BUILD1" 2>/dev/null || break; sleep 0.1; done
kill -0 "$BUILD1" 2>/dev/null && kill -TERM -- -"$BUILD1" 2>/dev/null
rc=0
wait "$BUILD1" || rc=$?
BUILD1=""
if [ "$rc" = 0 ]; then
	ok "make deb DEB_VERSION=$V1 BPF_EXTRA_CFLAGS=-DSHIFT_UPGRADE_TEST: shift_${V1}_$ARCH.deb in $((SECONDS - t1))s (alongside)"
else
	notok "make deb (N+1): exit $rc: $(tail -n 5 "$T/build1.log")"
	e2e_finish
fi
DEB0=$T/debs/shift_${V0}_$ARCH.deb
DEB1=$T/debs/shift_${V1}_$ARCH.deb
check "both .deb files are there" test -f "$DEB0" -a -f "$DEB1"
left=$(git -C "$ROOT" status --porcelain --ignored -- debian 2>/dev/null | grep '^[?!]')
check "the source tree has no build files in debian/ ('${left//$'\n'/ }')" test -z "$left"
if command -v lintian >/dev/null 2>&1; then
	lintian "$DEB0" >"$T/lintian.txt" 2>&1
	e=$(grep -c '^E: ' "$T/lintian.txt")
	w=$(grep -c '^W: ' "$T/lintian.txt")
	check "lintian $(basename "$DEB0"): $e errors, $w warnings" test "$e" = 0
	grep '^[EWI]: ' "$T/lintian.txt" | sed 's/^/#   /'
else
	note "lintian not installed: not run"
fi

# ---------------------------------------------------------------------------------
note "--- (b) dpkg -i, the files, the conffile, the group; purge ($((SECONDS - E2E_T0))s)"
snapshot >"$T/snap.before"
if install_deb "$DEB0"; then ok "dpkg -i shift_${V0}"; else notok "dpkg -i shift_${V0}"; e2e_finish; fi
p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v shiftd)
c=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v shiftctl)
check "shiftd and shiftctl on PATH: $p $c" test "$p $c" = "/usr/sbin/shiftd /usr/sbin/shiftctl"
v=$(/usr/sbin/shiftd --version 2>&1)
check "shiftd --version: '$v'" grep -q "^shiftd $V0 " <<<"$v"
/usr/sbin/shiftctl --help >/dev/null 2>&1
check "shiftctl runs (--help)" test $? = 0
missing=""
for f in /lib/systemd/system/shiftd.service /lib/systemd/system/shift-drill@.service \
	/lib/systemd/system/shift-drill@.timer /usr/share/man/man8/shiftd.8.gz \
	/usr/share/man/man8/shiftctl.8.gz /usr/share/man/man5/shiftd.conf.5.gz \
	/usr/share/shift/prometheus/shift-rules.yml /usr/share/shift/grafana/shift-dashboard.json \
	/usr/share/doc/shift/copyright /usr/share/doc/shift/examples/shiftd.conf.example; do
	[ -f "$f" ] || missing+=" $f"
done
check "unit, man pages, rules, dashboard, copyright, example in place (missing:${missing:- none})" test -z "$missing"
check "dpkg -V shift: every file as packaged" test -z "$(dpkg -V shift 2>&1)"
unit=/lib/systemd/system/shiftd.service
es=$(grep '^ExecStart=' "$unit")
check "unit: '$es'" test "$es" = "ExecStart=/usr/sbin/shiftd --config /etc/shift/shiftd.conf"
check "unit: no /usr/local left outside comments" test "$(grep -v "^#" "$unit" | grep -c /usr/local)" = 0
es=$(grep '^ExecStart=' /lib/systemd/system/shift-drill@.service)
# shellcheck disable=SC2016 # the unit's literal ${SHIFT_DRILL_HOLD}
check "drill unit: '$es'" test "$es" = \
	'ExecStart=/usr/sbin/shiftctl --config /etc/shift/shiftd.conf drill %i --hold ${SHIFT_DRILL_HOLD}'
if command -v systemd-analyze >/dev/null 2>&1; then
	out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$unit" 2>&1)
	check "systemd-analyze verify $unit: '${out:-no warning}'" test -z "$out"
fi
wants=$(find /etc/systemd/system -name shiftd.service 2>/dev/null | tr '\n' ' ')
check "unit not enabled (no symlink under /etc/systemd/system: '$wants')" test -z "$wants"
check "no shiftd started by the install" test -z "$(pkg_shiftd_pids)"
# Under systemd (not here, see the top): an upgrade must not stop shiftd before the
# unpack, and must restart it after only if it runs. What dpkg will run, read:
info=/var/lib/dpkg/info
after_upgrade_test() { # the line after `if [ -n "$2" ]` (a previous version: an upgrade)
	awk '/if \[ -n "\$2" \]; then/ { getline; print }' "$info/shift.postinst" |
		grep -q "deb-systemd-invoke try-restart 'shiftd.service'"
}
check "postinst: 'deb-systemd-invoke try-restart shiftd.service' on upgrade only" after_upgrade_test
check "postinst: try-restart, never start or restart" \
	test "$(grep -o 'deb-systemd-invoke [a-z-]*' "$info/shift.postinst" | sort -u)" = "deb-systemd-invoke try-restart"
check "no preinst stop before an upgrade" test ! -e "$info/shift.preinst" -o -z "$(grep -s 'stop' "$info/shift.preinst")"
# shellcheck disable=SC2016 # a literal $1 in the prerm
check "prerm: stops shiftd.service on remove only" \
	grep -q '^if \[ "$1" = remove \] .*/run/systemd/system' "$info/shift.prerm"
if command -v man >/dev/null 2>&1; then
	m=$(man -w shiftd shiftctl shiftd.conf 2>&1 | tr '\n' ' ')
	check "man -w shiftd shiftctl shiftd.conf: $m" test "$m" = \
		"/usr/share/man/man8/shiftd.8.gz /usr/share/man/man8/shiftctl.8.gz /usr/share/man/man5/shiftd.conf.5.gz "
fi
cf=$(dpkg-query -W -f='${Conffiles}' shift | awk 'NF {print $1}' | tr '\n' ' ')
check "conffiles: $cf" test "$cf" = "/etc/shift/shiftd.conf "
conf=/etc/shift/shiftd.conf
active=$(grep -cE '^[[:space:]]*[A-Za-z0-9_]+[[:space:]]*=' "$conf")
keys=$(grep -cE '^#[a-z0-9_]+ = ' "$conf")
check "$conf: $keys keys shown, every one commented ($active active)" test "$active" = 0 -a "$keys" -ge 40
check "$conf is deploy/shiftd.conf" cmp -s "$conf" "$ROOT/deploy/shiftd.conf"
g=$(getent group shift)
gid=$(cut -d: -f3 <<<"$g")
check "group shift is a system group: '$g'" test -n "$gid" -a "${gid:-1000}" -lt 1000
out=$(/usr/sbin/shiftd --check --config "$conf" 2>&1)
rc=$?
check "shiftd --check on the installed config: exit $rc, '$out' (as shipped it must not start)" \
	test "$rc" = 2 -a -n "$(grep 'no interface' <<<"$out")"
# The [fleet] TLS keys and the HTTP API's token name files shiftd reads at
# --check: point them at empty ones, and at a token of mode 0600.
for f in etcd-ca.pem etcd-client.pem etcd-client.key; do : >"$T/$f"; done
(umask 077 && echo "deb-test-token" >"$T/token")
sed -e 's/^#\([a-z[]\)/\1/' -e "s|/etc/shift/etcd-|$T/etcd-|" -e "s|/etc/shift/token|$T/token|" \
	"$conf" >"$T/uncommented.conf"
out=$(/usr/sbin/shiftd --check --config "$T/uncommented.conf" 2>&1)
rc=$?
check "shiftd --check with every key uncommented (group shift, 0660): exit $rc, '$out'" test "$rc" = 0
# What an admin adds: a drill timer enabled (systemctl works on the files without
# a running systemd) and the HTTP API's token beside the config.
wl=/etc/systemd/system/timers.target.wants/shift-drill@web.timer
systemctl --quiet enable shift-drill@web.timer 2>/dev/null
check "systemctl enable shift-drill@web.timer: $wl" test -L "$wl"
(umask 077 && echo "deb-test-token" >/etc/shift/token)
if dpkg_do -r shift; then ok "dpkg -r shift"; else notok "dpkg -r shift"; fi
check "remove: the drill timer disabled (no $wl)" test ! -e "$wl" -a ! -L "$wl"
check "remove: the config and the token kept" test -f "$conf" -a -f /etc/shift/token
if purge; then ok "dpkg --purge shift"; else notok "dpkg --purge shift"; fi
check "purge: /etc/shift gone, token and all" test ! -e /etc/shift
snapshot >"$T/snap.after"
d=$(diff "$T/snap.before" "$T/snap.after" | grep '^[<>]' | tr '\n' ' ')
check "after purge: the same package paths and group as before (diff: '${d:-none}')" test -z "$d"

# ---------------------------------------------------------------------------------
note "--- (c) upgrade N -> N+1 under traffic ($((SECONDS - E2E_T0))s)"
if install_deb "$DEB0"; then ok "dpkg -i shift_${V0} again"; else notok "dpkg -i shift_${V0}"; e2e_finish; fi
# shellcheck disable=SC2034 # e2e_lib.sh's: e2e_up and ctl run the installed binaries
SHIFTD=/usr/sbin/shiftd SHIFTCTL=/usr/sbin/shiftctl
RATE=${DEB_UPGRADE_RATE:-100} DUR=${DEB_UPGRADE_DURATION:-10} CONNS=${DEB_UPGRADE_CONNS:-16}
# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up
D=$RIG_DIR
setphase() { e2e_setphase "$D/ka.ctl" "$1"; }
# link_ids: "IFNAME=LINK_ID/PROG_ID" for every pinned XDP link
link_ids() {
	local l out=""
	for l in "$RIG_BPFFS_DIR"/links/*; do
		out+="$(basename "$l")=$(bpftool -j link show pinned "$l" | "$RIG_PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
print("%s/%s" % (j["id"], j["prog_id"]))') "
	done
	printf '%s\n' "${out% }"
}

out=$(ctl set-weight web 20) || notok "set-weight web 20 failed: $out"
setphase before
e2e_snap "$D/before.json"
e2e_client cli1 "$D/ka.json" keepalive --url "$RIG_URL" --conns "$CONNS" --duration 40 \
	--interval 100 --control-file "$D/ka.ctl" --ready-file "$D/ka.ready"
KA=$E2E_PID
e2e_wait_file "$D/ka.ready" 15 || notok "keep-alive connections not ready in 15 s"
e2e_client cli1 "$D/rate1.json" rate --url "$RIG_URL" --rate "$RATE" --duration "$DUR" --concurrency 64
R1=$E2E_PID
e2e_client cli2 "$D/rate2.json" rate --url "$RIG_URL" --rate "$RATE" --duration "$DUR" --concurrency 64
R2=$E2E_PID
sleep 2
L0=$(link_ids)
old=$E2E_SHIFTD_PID
t0=$SECONDS
if install_deb "$DEB1"; then
	ok "dpkg -i shift_${V1} under load in $((SECONDS - t0))s"
else
	notok "dpkg -i shift_${V1}"
fi
setphase upgraded
v=$(/usr/sbin/shiftd --version 2>&1)
check "installed: '$v'" grep -q "^shiftd $V1 " <<<"$v"
check "the running shiftd (pid $old) outlived the unpack (the prerm stops it on remove only)" kill -0 "$old"
if [ -d /run/systemd/system ]; then
	note "systemd runs here: the postinst try-restarted shiftd.service (not active: not ours)"
else
	note "PID 1 is $(ps -o comm= -p 1), not systemd: the postinst's try-restart did nothing; restarting as systemd would"
fi
sleep 1
# systemctl try-restart: SIGTERM (shiftd leaves the datapath attached), then start.
t0=$SECONDS
rig_kill "$old"
e2e_start_shiftd || notok "the new shiftd did not come up"
setphase restarted
L1=$(link_ids)
note "links (IFNAME=link id/prog id) before: $L0; after: $L1"
n=$(grep -c 'client program replaced (upgrade)' "$E2E_SHIFTD_LOG") || true
nc=$(tr ',' '\n' <<<"$RIG_EDGE_CLIENT_IFS" | grep -c .)
check "restart in $((SECONDS - t0))s: the new shiftd's log says 'client program replaced (upgrade)' $n times ($nc client interfaces)" \
	test "$n" = "$nc"
for e in $L1; do
	ifc=${e%%=*}
	a=${e#*=}
	b=$(tr ' ' '\n' <<<"$L0" | sed -n "s/^$ifc=//p")
	case " ${RIG_EDGE_CLIENT_IFS//,/ } " in
	*" $ifc "*) check "$ifc: bpf_link_update: link id kept (${b%/*} -> ${a%/*}), prog id changed (${b#*/} -> ${a#*/})" \
		test -n "$b" -a "${a%/*}" = "${b%/*}" -a "${a#*/}" != "${b#*/}" ;;
	*) check "$ifc (backend side, program unchanged): link and prog id kept ($b -> $a)" test "$a" = "$b" ;;
	esac
done
e2e_wait_pid "$R1" $((DUR + 15)) || notok "rate client cli1 did not finish"
e2e_wait_pid "$R2" $((DUR + 15)) || notok "rate client cli2 did not finish"
e2e_phase_hold 2 # the rate clients' clock started before the restart: keep-alive rounds after it
setphase stop
e2e_wait_pid "$KA" 15 || notok "keepalive client did not stop"
e2e_snap "$D/after.json"
e2e_run_py ratecheck "upgrade under load: new connections" 0 - "$D/rate1.json" "$D/rate2.json"
e2e_run_py sticky "upgrade under load: keep-alive" web "$D/before.json" "$D/after.json" \
	"$D/ka.json" "before,upgraded,restarted" "$D/rate1.json" "$D/rate2.json"

rig_kill "$E2E_SHIFTD_PID"
if purge; then ok "dpkg --purge shift (after the upgrade)"; else notok "dpkg --purge shift"; fi
snapshot >"$T/snap.after2"
d=$(diff "$T/snap.before" "$T/snap.after2" | grep '^[<>]' | tr '\n' ' ')
check "after purge: the same package paths and group as before (diff: '${d:-none}')" test -z "$d"
check "no shiftd from the package left running" test -z "$(pkg_shiftd_pids)"
e2e_finish
