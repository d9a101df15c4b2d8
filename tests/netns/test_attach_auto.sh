#!/bin/bash
# attach = auto decides "NIC or virtual" in shiftd's own network namespace, not from
# /sys: /sys shows the namespace of whoever mounted it, and a shiftd started with a
# plain `nsenter --net` (as the rig, and any container sharing the host's /sys, run it)
# reads the host's interfaces there. The trap: the edge's client veth is renamed to the
# name of an interface that has a device in this /sys (the host's eth0 or ens*), so
# /sys/class/net/NAME/device exists for a veth.
#  - status --json "attach", the kernel and shiftd's log: TC on that veth (and on the
#    backend veth), no XDP program on it;
#  - clients whose packets carry partial checksums (TX checksum offload on, the
#    rig's veths as the kernel leaves them) get through it over IPv4 and IPv6: XDP's
#    NAT would have written wrong checksums and every connection would time out;
#  - the veth deleted and made again under the same name: shiftd stays up, attaches
#    TC to the new one (a link event), and clients get through it.
# Exit 0 pass, 77 skipped (no interface with a device in /sys, or no rig), 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=agent_lib.sh
. "$HERE/agent_lib.sh"
cd "$AGENT_ROOT" || exit 1

rig_probe || rig_skip "$RIG_SKIP_REASON"
agent_bins

# A name /sys says has a device behind it (a NIC of the namespace that mounted /sys).
PHYS=""
for d in /sys/class/net/*/device; do
	[ -e "$d" ] || continue
	n=${d%/device}
	n=${n##*/}
	[ "${#n}" -lt 16 ] && { PHYS=$n; break; }
done
[ -n "$PHYS" ] || rig_skip "no interface in /sys/class/net has a device: no name to mistake a veth for"

export RIG_TX_CSUM_OFF=0 RIG_ATTACH=auto
RIG_CLIENTS=1 RIG_BLUE=1 RIG_GREEN=1 RIG_QUIET=1 rig_up || t_bail "rig_up failed"
t_note "rig $RIG_ID up in $((SECONDS - T_START))s; $RIG_DIR; the veth will be named $PHYS"

# The edge's client veth takes PHYS's name (down for the rename: its addresses go with
# it, so they are put back).
OLD_IF=$RIG_EDGE_CLIENT_IFS
printf '%s\n' "link set $OLD_IF down" "link set $OLD_IF name $PHYS" \
	"addr replace 198.18.1.1/24 dev $PHYS" "addr replace 2001:db8:c1::1/64 dev $PHYS nodad" \
	"link set $PHYS up" | ip -n "$RIG_NS_EDGE" -batch - || t_bail "cannot rename $OLD_IF to $PHYS"
RIG_EDGE_CLIENT_IFS=$PHYS
export RIG_EDGE_CLIENT_IFS

kind=$(ip -n "$RIG_NS_EDGE" -d -o link show dev "$PHYS" | grep -o ' veth ' | tr -d ' ')
if [ "$kind" = veth ] && rig_edge test -e "/sys/class/net/$PHYS/device"; then
	t_ok "the trap: in the edge netns $PHYS is a veth, and /sys (as shiftd sees it) shows a device for $PHYS ($(rig_edge readlink "/sys/class/net/$PHYS/device"))"
else
	t_bail "the trap is not set: $PHYS in the edge netns is '$kind', /sys/class/net/$PHYS/device in the edge: $(rig_edge ls -d "/sys/class/net/$PHYS/device" 2>&1)"
fi

rig_write_config "$RIG_DIR/shiftd.conf" web.min_requests=5 web6.min_requests=5 ||
	t_bail "rig_write_config failed"
shiftd_start "$RIG_DIR/shiftd.log" || t_bail "shiftd did not start"

# hooks: "IFNAME:HOOK/MODE ..." from status --json
hooks() {
	ctl status --json | rig_json_get attach | "$RIG_PYTHON" -c '
import json, sys
print(" ".join("%s:%s/%s" % (a["interface"], a["hook"], a["mode"]) for a in json.load(sys.stdin)))'
}
# kernel_hook IFNAME: xdp (native or generic), tc (our cls_bpf filter or tcx link) or none
kernel_hook() {
	if ip -n "$RIG_NS_EDGE" -d link show dev "$1" | grep -q 'prog/xdp'; then
		echo xdp
	elif tc -n "$RIG_NS_EDGE" filter show dev "$1" ingress 2>/dev/null | grep -q 'shift_tc_'; then
		echo tc
	elif [ -e "$RIG_BPFFS_DIR/links/$1:tcx" ]; then
		echo tc
	else
		echo none
	fi
}
# wait_hook IFNAME HOOK: until status says IFNAME runs HOOK (bounded, 10 s)
wait_hook() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -qE "(^| )$1:$2/" <<<"$(hooks)" && return 0
		sleep 0.1
	done
	return 1
}

# clients FAMILY COUNT: COUNT new connections from cli1 through PHYS, 0 may fail
clients() {
	local url=$RIG_URL out okn failed
	[ "$1" = 6 ] && url=$RIG_URL6
	out=$(rig_client_py cli1 new --url "$url" --count "$2" --concurrency 4 --timeout 2 \
		--deadline 20 2>&1 | tail -n 1)
	okn=$(rig_json_get ok <<<"$out" 2>/dev/null)
	failed=$(rig_json_get failed <<<"$out" 2>/dev/null)
	if [ "$okn" = "$2" ] && [ "$failed" = 0 ]; then
		t_ok "IPv$1: $2 connections through $PHYS, 0 failed"
	else
		t_notok "IPv$1: want $2 ok 0 failed through $PHYS, got: $out"
	fi
}

t_section "attach = auto on a veth named $PHYS"
st=$(hooks)
if grep -qE "(^| )$PHYS:tc/(tcx|clsact)( |$)" <<<"$st" &&
	grep -qE "(^| )$RIG_EDGE_BACKEND_IF:tc/(tcx|clsact)( |$)" <<<"$st"; then
	t_ok "status --json attach: TC on both veths: $st"
else
	t_notok "status --json attach: want TC on $PHYS and $RIG_EDGE_BACKEND_IF, got: $st"
fi
t_expect "kernel: shift's hook on $PHYS" "$(kernel_hook "$PHYS")" tc
logl=$(grep -E "interface $PHYS \(ifindex [0-9]+\): .* (TC|XDP) mode" "$SHIFTD_LOG" | tail -n 1)
why=$(grep -E "$PHYS: virtual interface" "$SHIFTD_LOG" | head -n 1)
if grep -qE 'TC mode (tcx|clsact) \(attach = auto\)' <<<"$logl" && grep -q '(veth)' <<<"$why"; then
	t_ok "log: '$why', '$logl'"
else
	t_notok "log: want why ('virtual interface (veth)') and TC mode ... (attach = auto) for $PHYS, got: '$why', '$logl'"
fi

t_section "clients with partial checksums through $PHYS"
clients 4 40
clients 6 40

t_section "$PHYS deleted and made again"
# A new veth pair to cli1 under the same name: shiftd learns of it by a link event.
ip -n "$RIG_NS_EDGE" link del "$PHYS" || t_notok "cannot delete $PHYS"
printf '%s\n' "link add $PHYS type veth peer name ${RIG_ID}e1 netns $RIG_ID-cli1" \
	"addr add 198.18.1.1/24 dev $PHYS" "addr add 2001:db8:c1::1/64 dev $PHYS nodad" \
	"link set $PHYS up" | ip -n "$RIG_NS_EDGE" -batch - || t_notok "cannot make $PHYS again"
printf '%s\n' "addr add 198.18.1.2/24 dev ${RIG_ID}e1" "addr add 2001:db8:c1::2/64 dev ${RIG_ID}e1 nodad" \
	"link set ${RIG_ID}e1 up" "route replace default via 198.18.1.1" \
	"route replace ::/0 via 2001:db8:c1::1" | ip -n "$RIG_ID-cli1" -batch - ||
	t_notok "cannot set up ${RIG_ID}e1 in cli1 again"
if wait_hook "$PHYS" tc && kill -0 "$SHIFTD_PID" 2>/dev/null; then
	t_ok "shiftd attached TC to the new $PHYS: $(hooks)"
else
	t_notok "the new $PHYS: want TC and shiftd alive; status: $(hooks); log tail: $(tail -n 3 "$SHIFTD_LOG" | tr '\n' '|')"
fi
t_expect "kernel: shift's hook on the new $PHYS" "$(kernel_hook "$PHYS")" tc
clients 4 20

shiftd_stop
t_summary
