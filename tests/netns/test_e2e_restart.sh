#!/bin/bash
# End to end (issue 4): kill -9 of shiftd in the middle of real HTTP load, then a restart.
# The datapath stays attached and pinned (fail-static), so: zero failed requests from the
# two rate clients (new connections) and from keep-alive connections across the kill and
# the restart, no keep-alive connection changes backend, the weight survives, the split
# stays within tolerance, and shift's counters (pinned maps, adopted by the new shiftd)
# account for every connection.
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

RATE=${E2E_RESTART_RATE:-150} # new connections per second per client
DUR=${E2E_RESTART_DURATION:-9}
CONNS=${E2E_RESTART_CONNS:-20}

# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up
D=$RIG_DIR
setphase() { e2e_setphase "$D/ka.ctl" "$1"; }
weight() { ctl status --json web | "$RIG_PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
s = j["services"][0]
print(s["green_weight_bp"], s["rolled_back"], j["agent_running"])'; }

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
T_LOAD=$SECONDS

sleep 2.5
modes0=$(e2e_xdp_modes)
old=$E2E_SHIFTD_PID
{ # (stderr: no "Killed" job notice from bash)
	kill -KILL "$old" # a pid rig_spawn started, never a name
	for ((i = 0; i < 50; i++)); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
	wait "$old"
	st=$?
} 2>/dev/null
setphase killed
modes1=$(e2e_xdp_modes)
read -r w1 _ ag1 <<<"$(weight)"
if [ "$st" = 137 ] && [ "$modes1" = "$modes0" ] && [ "$w1" = 2000 ] && [ "$ag1" = False ]; then
	ok "kill -9: shiftd (pid $old) died (status $st) $((SECONDS - T_LOAD))s into the load; XDP stays attached ($modes1), weight ${w1} bp from the pinned maps, agent_running $ag1"
else
	notok "kill -9: status $st; XDP before: $modes0, after: $modes1; weight $w1 bp; agent_running $ag1"
fi

sleep 2 # load keeps flowing with no agent at all
t_start=$SECONDS
e2e_start_shiftd || notok "restart: shiftd did not come back"
setphase restarted
read -r w2 rb2 ag2 <<<"$(weight)"
modes2=$(e2e_xdp_modes)
adopt=$(grep -o 'maps adopted\|program kept' "$E2E_SHIFTD_LOG" | sort | uniq -c | tr -s ' ' | paste -sd';' -)
if [ "$w2" = 2000 ] && [ "$rb2" = False ] && [ "$ag2" = True ] && [ "${modes2//:none/}" = "$modes2" ]; then
	ok "restart: shiftd back in $((SECONDS - t_start))s, weight ${w2} bp kept, XDP $modes2 (log:$adopt)"
else
	notok "restart: weight $w2 bp, rolled_back $rb2, agent_running $ag2, XDP $modes2"
fi
note "new shiftd's log:"
sed 's/^/#   /' "$E2E_SHIFTD_LOG"

e2e_wait_pid "$R1" $((DUR + 15)) || notok "rate client cli1 did not finish"
e2e_wait_pid "$R2" $((DUR + 15)) || notok "rate client cli2 did not finish"
e2e_phase_hold 2 # the rate clients' clock started before the restart: keep-alive rounds after it
setphase stop
e2e_wait_pid "$KA" 15 || notok "keepalive client did not stop"
e2e_snap "$D/after.json"

e2e_run_py ratecheck "kill -9 + restart: load across both" 0 - "$D/rate1.json" "$D/rate2.json"
e2e_run_py split-nomatch "kill -9 + restart: split 20% of that load" web 2000 300 \
	"$D/before.json" "$D/after.json" "$D/rate1.json" "$D/rate2.json"
e2e_run_py sticky "kill -9 + restart: keep-alive" web "$D/before.json" "$D/after.json" \
	"$D/ka.json" "before,killed,restarted" "$D/rate1.json" "$D/rate2.json"

e2e_finish
