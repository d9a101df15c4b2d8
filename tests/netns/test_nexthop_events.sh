#!/bin/bash
# Backend next hops and the netlink events that concern them. shiftd's loop
# blocks on every netlink query, and it used to look every backend up again
# (route, link, neighbour: three queries each) on any neighbour, route or link
# event, whatever the address: at 32768 backends one unrelated `ip neigh
# replace` stalled the loop 1.4 s. Here service "many" has 128 backends behind
# one gateway (10.200.0.0/16 via blue1, 198.19.0.11), and:
#  (a) 200 changes of a neighbour entry no backend resolves through cost no
#      netlink query (shift_nexthop_queries_total, shift_nexthop_lookups_total);
#  (b) the gateway's MAC changes: every backend behind it has the new MAC in the
#      backend map at once, taken from the event (no route lookup);
#  (c) the gateway's entry is deleted: the kernel is asked to resolve it again,
#      the real MAC comes back, and blue1 serves through the VIP;
#  (d) a route for 10.200.0.0/25 via green1 (and its removal): the 64 backends
#      inside it are looked up again and move to green1's MAC, the others stay.
# Figures: stdout. Exit 0 / 77 / 1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=agent_lib.sh
. "$HERE/agent_lib.sh"

rig_probe || rig_skip "$RIG_SKIP_REASON"
agent_bins
cd "$AGENT_ROOT" || exit 1
RIG_BLUE=1 RIG_GREEN=1 rig_up || t_bail "setup: rig_up"

BK=$RIG_EDGE_BACKEND_IF
GW=$(rig_backend_addr blue1 4)
G1=$(rig_backend_addr green1 4)
many_blue="" many_green=""
for ((j = 1; j <= 64; j++)); do
	many_blue+="${many_blue:+, }10.200.0.$j:8080"
	many_green+="${many_green:+, }10.200.1.$j:8080"
done
ip -n "$RIG_NS_EDGE" route add 10.200.0.0/16 via "$GW" dev "$BK" || t_bail "setup: route to 10.200.0.0/16"
RIG_SVC6='' RIG_CONFIG_EXTRA="[service many]
vip = 198.18.100.20:80
blue = $many_blue
green = $many_green
health_check = none" rig_write_config "$RIG_DIR/shiftd.conf" xdp_mode=generic metrics_interval=1s \
	web.health_check=none || t_bail "setup: config"
shiftd_start "$RIG_DIR/shiftd.log" || t_bail "setup: shiftd"

PROM=$RIG_TEXTFILE_DIR/shift.prom
# metric NAME: its value in the next shift.prom written from now (bounded wait)
metric() {
	local ino i
	ino=$(stat -c %i "$PROM" 2>/dev/null)
	for ((i = 0; i < 60; i++)); do
		[ "$(stat -c %i "$PROM" 2>/dev/null)" != "$ino" ] && break
		sleep 0.1
	done
	awk -v m="$1" '$1 == m {print $2}' "$PROM"
}
# macs: "ADDR DMAC VALID" for each backend of 10.200.0.0/16 in the backend map, sorted
macs() {
	rig_edge bpftool -j map dump pinned "$RIG_BPFFS_DIR/maps/shift_backends" | "$RIG_PYTHON" -c '
import json, sys
for e in json.load(sys.stdin):
    v = bytes(int(x, 16) for x in e["value"])
    if v[18] != 2 or v[0] != 10 or v[1] != 200:
        continue
    print("%d.%d.%d.%d" % tuple(v[:4]), v[34:40].hex(":"), (v[19] >> 1) & 1)' | sort -V
}
# macs_are WANT1 WANT0: every backend of 10.200.0.x has WANT0, of 10.200.1.x WANT1, valid
macs_are() {
	macs | awk -v w0="$1" -v w1="$2" '
		{ n++; want = ($1 ~ /^10\.200\.0\./) ? w0 : w1; if ($2 == want && $3 == 1) ok++ }
		END { exit !(n == 128 && ok == 128) }'
}
# wait_macs WANT0 WANT1 TRIES: poll macs_are (0.1 s apart)
wait_macs() {
	local i
	for ((i = 0; i < $3; i++)); do
		macs_are "$1" "$2" && return 0
		sleep 0.1
	done
	return 1
}
mac_of() { ip -n "$1" -br link show dev "$2" | awk '{print $3}'; }
GW_MAC=$(mac_of "$RIG_ID-blue1" "${RIG_ID}blue1")
G1_MAC=$(mac_of "$RIG_ID-green1" "${RIG_ID}green1")

# The edge resolves the gateway when shiftd asks (or has).
if wait_macs "$GW_MAC" "$GW_MAC" 50; then
	t_ok "start: the 128 backends behind $GW have its MAC ($GW_MAC) cached"
else
	t_notok "start: backends' next hops: $(macs | awk '{print $2, $3}' | sort | uniq -c | tr '\n' ';')"
fi
q0=$(metric shift_nexthop_queries_total) l0=$(metric shift_nexthop_lookups_total)
[ -n "$q0" ] || t_bail "no shift_nexthop_queries_total in $PROM"
t_note "start: $q0 netlink queries for $l0 lookups (130 backends, one gateway, two on-link)"

# --- (a) neighbour churn elsewhere -----------------------------------------------------
for ((k = 0; k < 200; k++)); do
	printf 'neigh replace 198.19.9.%d lladdr 02:00:00:00:%02x:%02x dev %s nud permanent\n' \
		$((k % 20 + 1)) $((k / 256)) $((k % 256)) "$BK"
done | ip -n "$RIG_NS_EDGE" -batch - || t_notok "(a) ip neigh replace"
ip -n "$RIG_NS_EDGE" neigh flush dev "$BK" to 198.19.9.0/24 nud permanent
sleep 0.5
q1=$(metric shift_nexthop_queries_total) l1=$(metric shift_nexthop_lookups_total)
t_expect "(a) 220 neighbour events for addresses no backend resolves through: netlink queries" $((q1 - q0)) 0
t_expect "(a) ... backends looked up again" $((l1 - l0)) 0

# --- (b) the gateway's MAC changes -------------------------------------------------------
ip -n "$RIG_NS_EDGE" neigh replace "$GW" lladdr 02:00:00:00:be:ef dev "$BK" nud permanent
if wait_macs 02:00:00:00:be:ef 02:00:00:00:be:ef 30; then
	t_ok "(b) the gateway's new MAC is in all 128 backends' entries"
else
	t_notok "(b) after the gateway's MAC change: $(macs | awk '{print $2, $3}' | sort | uniq -c | tr '\n' ';')"
fi
q2=$(metric shift_nexthop_queries_total) l2=$(metric shift_nexthop_lookups_total)
u2=$(metric shift_nexthop_event_updates_total)
t_expect "(b) ... taken from the event: backends looked up again" $((l2 - l1)) 0
t_expect "(b) ... netlink queries" $((q2 - q1)) 0
t_expect_ge "(b) ... entries rewritten from neighbour events" "$u2" 129

# --- (c) the gateway's entry goes: resolved again ------------------------------------------
ip -n "$RIG_NS_EDGE" neigh del "$GW" dev "$BK"
if wait_macs "$GW_MAC" "$GW_MAC" 50; then
	t_ok "(c) gateway entry deleted: shiftd had the kernel resolve it, its real MAC is back ($GW_MAC)"
else
	t_notok "(c) after the gateway's entry was deleted: $(macs | awk '{print $2, $3}' | sort | uniq -c | tr '\n' ';'); neigh: $(ip -n "$RIG_NS_EDGE" neigh show "$GW")"
fi
out=$(rig_client_py cli1 new --url "$RIG_URL" --count 20 --concurrency 4 2>&1)
okn=$(rig_json_get ok <<<"$out" 2>/dev/null)
t_expect "(c) requests through the VIP (blue1, behind that entry) answered" "${okn:-?}" 20
q3=$(metric shift_nexthop_queries_total) l3=$(metric shift_nexthop_lookups_total)
t_note "(c) cost: $((q3 - q2)) netlink queries (probes), $((l3 - l2)) lookups"
t_expect "(c) ... backends looked up again" $((l3 - l2)) 0

# --- (d) a route for part of them ----------------------------------------------------------
ip -n "$RIG_NS_EDGE" route add 10.200.0.0/25 via "$G1" dev "$BK"
if wait_macs "$G1_MAC" "$GW_MAC" 50; then
	t_ok "(d) route 10.200.0.0/25 via green1: its 64 backends have green1's MAC, the other 64 blue1's"
else
	t_notok "(d) after the /25 route: $(macs | awk '{split($1, a, "."); print a[3], $2, $3}' | sort | uniq -c | tr '\n' ';')"
fi
l4=$(metric shift_nexthop_lookups_total)
t_expect "(d) ... backends looked up again (those inside the /25)" $((l4 - l3)) 64
ip -n "$RIG_NS_EDGE" route del 10.200.0.0/25 via "$G1" dev "$BK"
if wait_macs "$GW_MAC" "$GW_MAC" 50; then
	t_ok "(d) route removed: all 128 back on blue1's MAC"
else
	t_notok "(d) after the /25's removal: $(macs | awk '{print $2, $3}' | sort | uniq -c | tr '\n' ';')"
fi
l5=$(metric shift_nexthop_lookups_total) q5=$(metric shift_nexthop_queries_total)
t_expect "(d) ... backends looked up again" $((l5 - l4)) 64
t_note "totals: $q5 netlink queries, $l5 lookups"

if kill -0 "$SHIFTD_PID" 2>/dev/null; then t_ok "shiftd still running"; else t_notok "shiftd exited"; fi
shiftd_stop
t_summary
