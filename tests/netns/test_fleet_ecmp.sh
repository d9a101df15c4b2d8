#!/bin/bash
# Fleet behind ECMP (issue #17): one client population behind a router that spreads
# connections over the three edges with L4 multipath hashing (fleet_lib.sh FLEET_ECMP=1),
# the way an edge site's routers spread users over its hosts.
#   - the connections really spread: every node carries a share of them (>= 15 %);
#   - green fails: every node is rolled back (origin's write -> last node's write from
#     fleet_lag_us, < 1 s; reported), the 500s that reached the users are counted
#     (reported against 3 x max_consecutive_errors); afterwards every new connection,
#     through whichever edge, goes blue.
# Figures: stdout and ${OUTPUT:-.output}/fleet_ecmp.txt. Exit 0 / 77 / 1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

MAX_CONSEC=5
export FLEET_ECMP=1
fleet_up_joined "web.min_requests=20" "web.max_consecutive_errors=$MAX_CONSEC" web.max_error_rate=off \
	web.max_error_rate_increase=off web.max_latency_p99=off web.max_latency_ratio=off \
	web.rollback_window=10s web.rollback_evict=yes
fleet_report_open fleet_ecmp
D=$RIG_DIR
for k in 1 2 3; do fleet_wait_connected "$k" 15 || notok "n$k not connected within 15 s"; done
fleet_ctl 1 set-weight web 50 >/dev/null || fleet_bail "setup: set-weight 50"
fleet_wait_all 5 green_weight_bp 5000 || fleet_bail "setup: weights $(fleet_all green_weight_bp)"

# conns K: new connections node K has counted for web so far
conns() {
	fleet_ctl "$1" status web --json | "$RIG_PYTHON" -c '
import json, sys
print(sum(b["connections"] for b in json.load(sys.stdin)["services"][0]["backends"]))'
}
c0=() c1=()
for k in 1 2 3; do c0+=("$(conns "$k")"); done
fleet_traffic_start warm 50 3
fleet_traffic_wait 30
for k in 1 2 3; do c1+=("$(conns "$k")"); done
s=$(fleet_traffic_sum warm)
sent=$(rig_json_get sent <<<"$s")
failed=$(rig_json_get failed <<<"$s")
d1=$((c1[0] - c0[0])) d2=$((c1[1] - c0[1])) d3=$((c1[2] - c0[2]))
tot=$((d1 + d2 + d3))
if [ "$failed" = 0 ] && [ "$tot" -gt 0 ] && [ $((d1 * 100)) -ge $((tot * 15)) ] &&
	[ $((d2 * 100)) -ge $((tot * 15)) ] && [ $((d3 * 100)) -ge $((tot * 15)) ]; then
	ok "ECMP spreads $sent new connections from one client over the three edges: n1 $d1, n2 $d2, n3 $d3 (each >= 15 %), 0 failed"
else
	notok "ECMP spread: n1 $d1, n2 $d2, n3 $d3 of $tot (want each >= 15 %), $failed of $sent failed"
fi
fleet_report "ECMP spread of $tot connections: n1 $d1, n2 $d2, n3 $d3"

fleet_watch_start "$D/watch.json" --until latched --duration 12 || fleet_bail "watcher"
rig_backend_mode green1 500
fleet_traffic_start fail 50 4
for ((i = 0; i < 100; i++)); do
	[ "$(fleet_all rolled_back)" = "True True True" ] && break
	sleep 0.1
done
fleet_traffic_wait 30
fleet_watch_wait 15
rb=$(fleet_all rolled_back)
lags="" origin="" maxlag=0
for k in 1 2 3; do
	o=$(fleet_svc "$k" last_rollback.origin)
	l=$(fleet_svc "$k" last_rollback.fleet_lag_us)
	lags+="n$k origin $o lag ${l} us; "
	[ "$o" = "n$k" ] && origin+="n$k "
	[ "$o" != "n$k" ] && maxlag=$("$RIG_PYTHON" -c "print(max($maxlag, float('${l:-0}' or 0)))")
done
if [ "$rb" = "True True True" ] && [ -n "$origin" ] &&
	"$RIG_PYTHON" -c "import sys; sys.exit(0 if $maxlag < 1e6 else 1)"; then
	ok "green fails behind ECMP: every node rolled back; $lags spread $("$RIG_PYTHON" -c "print('%.1f' % ($maxlag / 1e3))") ms; $(fleet_watch_gap "$D/watch.json")"
else
	notok "green fails behind ECMP: rolled_back $rb; $lags (want every node latched, an origin, spread < 1 s)"
fi
fleet_report "ECMP rollback: $lags"
s=$(fleet_traffic_sum fail)
e500=$(rig_json_get errors.http_500 <<<"$s")
bound=$((3 * MAX_CONSEC))
# Reported, not asserted: with an even spread the three nodes count their errors in
# parallel, so the first to roll back saves the others only their last one or two
# (test_fleet_rollback.sh asserts the saving, with uneven traffic).
note "500s that reached the users behind ECMP: ${e500:-0} (three lone nodes: about $bound = 3 x max_consecutive_errors)"
fleet_report "ECMP: 500s reaching users $e500 (3 x threshold = $bound)"
# afterwards (green still failing): every new connection blue, whichever edge it crosses
out=$(rig_nsenter "$FLEET_NS_ECLI" "$RIG_PYTHON" "$RIG_CLIENT_PY" new --url "$RIG_URL" --count 150 \
	--concurrency 8 --timeout 2 --deadline 30)
g=$(rig_json_get by_backend.green1 <<<"$out")
okn=$(rig_json_get ok <<<"$out")
[ "$okn" = 150 ] && [ "${g:-0}" = 0 ] && ok "afterwards 150/150 new connections through the ECMP router answered by blue" ||
	notok "afterwards: $okn/150 ok, $g from green: $out"
fleet_finish
