#!/bin/bash
# Fleet, must-show 4 (issue #17; SPEC "Fleet"): etcd unreachable when shiftd starts.
#   - Three nodes that ran alone before (green at 20 %, kept in state_dir) restart with
#     [fleet] while no etcd member runs: each shiftd starts anyway, from state_dir
#     (fail-static: 2000 bp, traffic served through all three edges), and says it is
#     not connected (shift_fleet_connected 0).
#   - etcd comes up: every node joins on its own (connected, alive in fleet status),
#     and a set-weight on node 2 reaches all three.
#   - A node restarting mid-ramp (kill -9, down across a step boundary) resumes at
#     the step the stored plan gives now, in line with the others.
# Figures: stdout and ${OUTPUT:-.output}/fleet_start.txt. Exit 0 / 77 / 1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

fleet_probe || rig_skip "$FLEET_SKIP_REASON"
FLEET_ETCD=0 fleet_up || fleet_bail "setup: fleet_up failed"
fleet_feature_probe || rig_skip "$FLEET_SKIP_REASON"
fleet_report_open fleet_start

# alone first: green at 20 %, then stopped (state_dir keeps it)
for k in 1 2 3; do
	FLEET_JOIN=0 fleet_write_config "$k" || fleet_bail "setup: node $k config"
	t0=$SECONDS
	fleet_start "$k" || fleet_bail "setup: node $k shiftd (alone)"
	note "n$k alone: $((SECONDS - t0)) s to running"
	fleet_ctl "$k" set-weight web 20 >/dev/null || fleet_bail "setup: node $k set-weight 20"
	fleet_stop "$k"
	fleet_write_config "$k" || fleet_bail "setup: node $k [fleet] config"
done

# --- etcd down at start ----------------------------------------------------------------------
for k in 1 2 3; do
	t0=$SECONDS
	if fleet_start "$k"; then
		ok "n$k: shiftd with [fleet] started while no etcd member runs ($((SECONDS - t0)) s to running)"
	else
		notok "n$k: shiftd with [fleet] did not start while etcd is down"
	fi
done
w=$(fleet_all green_weight_bp)
[ "$w" = "2000 2000 2000" ] && ok "fail-static: every node at 2000 bp from its state_dir" || notok "fail-static: weights $w (want 2000 everywhere)"
fleet_traffic_start down 30 2
fleet_traffic_wait 30
s=$(fleet_traffic_sum down | "$RIG_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], d["sent"], d["by_backend"].get("green1", 0), json.dumps(d["errors"]))')
read -r n_ok n_sent n_green n_err <<<"$s"
[ "$n_ok" = "$n_sent" ] && [ "$n_green" -gt 0 ] && ok "etcd down: $n_ok/$n_sent requests through the three edges answered, $n_green by green" ||
	notok "etcd down: $n_ok/$n_sent answered ($n_err), $n_green by green"
sleep 2 # a textfile round
for k in 1 2 3; do
	c=$(fleet_metric "$k" shift_fleet_connected)
	[ "$c" = 0 ] && ok "n$k: shift_fleet_connected 0 while etcd is down" || notok "n$k: shift_fleet_connected '$c' while etcd is down (want 0)"
done

# --- etcd comes up ------------------------------------------------------------------------------
t0=$(fleet_now_ns)
fleet_etcd_up || fleet_bail "etcd cluster did not come up"
th=$((($(fleet_now_ns) - t0) / 1000000))
for k in 1 2 3; do
	if fleet_wait_connected "$k" 30; then
		ok "n$k joined on its own: connected $((($(fleet_now_ns) - t0) / 1000000)) ms after etcd started (healthy after $th ms)"
	else
		notok "n$k: not connected 30 s after etcd came up"
	fi
done
fleet_report "etcd healthy $th ms after start; nodes joined by $((($(fleet_now_ns) - t0) / 1000000)) ms"
out=$(fleet_ctl 2 set-weight web 35 2>&1)
rc=$?
if [ "$rc" = 0 ] && fleet_wait_all 5 green_weight_bp 3500; then
	ok "after the join: set-weight web 35 on n2 reached every node"
else
	notok "after the join: set-weight web 35 on n2 exit $rc ($out), weights $(fleet_all green_weight_bp)"
fi
for k in 1 2 3; do
	if fleet_wait_agree "$k" 10; then ok "fleet status on n$k: $FLEET_AGREE"; else notok "fleet status on n$k: ${FLEET_AGREE:-}"; fi
done

# --- a node restarting mid-ramp ---------------------------------------------------------------
HOLD=3
out=$(fleet_ctl 1 ramp web 40,50,60,70 --hold "${HOLD}s" 2>&1) || notok "ramp on n1: $out"
for ((i = 0; i < 100; i++)); do [ "$(fleet_svc 2 green_weight_bp)" = 5000 ] && break; sleep 0.1; done
fleet_stop 2 KILL
note "n2 killed (kill -9) at 5000 bp, mid-ramp"
sleep $((HOLD + 1))
w_down=$(fleet_all green_weight_bp)
t0=$SECONDS
fleet_start 2 || notok "n2 did not restart"
match=0
for ((i = 0; i < 40; i++)); do
	w1=$(fleet_svc 1 green_weight_bp)
	w2=$(fleet_svc 2 green_weight_bp)
	[ -n "$w2" ] && [ "$w1" = "$w2" ] && [ "$w2" != 5000 ] && { match=1; break; }
	sleep 0.1
done
if [ "$match" = 1 ]; then
	ok "n2 restarted mid-ramp (weights while it was down: $w_down): resumed at $w2 bp, the step n1 is at ($((SECONDS - t0)) s after the restart)"
else
	notok "n2 restarted mid-ramp: n2 at '$w2' bp, n1 at '$w1' bp (weights while down: $w_down)"
fi
fleet_wait_all $((4 * HOLD)) green_weight_bp 7000 && ok "ramp finished on every node at 7000 bp" ||
	notok "ramp end: weights $(fleet_all green_weight_bp) (want 7000)"
fleet_finish
