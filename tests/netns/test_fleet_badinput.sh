#!/bin/bash
# Fleet, must-show 5 (issue #17; SPEC "Fleet"): bad input never moves a weight.
#   - Endpoints: node 1's list starts with an address where no etcd answers: it still
#     joins and follows. Node 3's list has only such addresses: shiftd starts from
#     state_dir, keeps serving at its weight, says it is not connected, and names the
#     endpoint it cannot reach in its log.
#   - Values written by hand with etcdctl (ETCDCTL_API=3) into the service's key:
#     not JSON; JSON with weight_bp 20000 (out of range); weight_bp -1; weight_bp a
#     string; a ramp with steps out of range; latched with a weight above 0. Each one: every connected node logs it with
#     the key and the revision, ignores it, keeps its last good weight (fleet_watch.py
#     sees no map change at all); `fleet status` still answers.
#   - A good value written by hand afterwards is followed (the watch survived).
# Figures: stdout and ${OUTPUT:-.output}/fleet_badinput.txt. Exit 0 / 77 / 1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

DEAD1=http://$FLEET_NET.99:2379 # in the etcd subnet, nobody there
DEAD2=http://$FLEET_NET.98:2379

fleet_probe || rig_skip "$FLEET_SKIP_REASON"
fleet_up || fleet_bail "setup: fleet_up failed"
fleet_feature_probe || rig_skip "$FLEET_SKIP_REASON"
fleet_report_open fleet_badinput
D=$RIG_DIR
KEY=/shift/$FLEET_NAME/svc/web

# node 3 first alone (green 15 %, into its state_dir), then every node with [fleet]
FLEET_JOIN=0 fleet_write_config 3 || fleet_bail "setup: n3 config"
fleet_start 3 || fleet_bail "setup: n3 alone"
fleet_ctl 3 set-weight web 15 >/dev/null || fleet_bail "setup: n3 set-weight 15"
fleet_stop 3
fleet_write_config 1 "fleet.etcd_endpoints=$DEAD1, $(fleet_endpoints)" || fleet_bail "setup: n1 config"
fleet_write_config 2 || fleet_bail "setup: n2 config"
fleet_write_config 3 "fleet.etcd_endpoints=$DEAD2" || fleet_bail "setup: n3 config"
for k in 1 2 3; do fleet_start "$k" || fleet_bail "setup: n$k shiftd with [fleet]"; done

# --- endpoints -------------------------------------------------------------------------------
if fleet_wait_connected 1 20; then
	ok "n1 (endpoints: $DEAD1 first, then the three members): connected"
else
	notok "n1 with an unreachable first endpoint: not connected within 20 s"
fi
fleet_wait_connected 2 20 || notok "n2: not connected within 20 s"
fleet_ctl 2 set-weight web 25 >/dev/null || notok "set-weight web 25 on n2 failed"
w=$(fleet_all green_weight_bp)
for ((i = 0; i < 30; i++)); do [[ $w == "2500 2500 "* ]] && break; sleep 0.1; w=$(fleet_all green_weight_bp); done
if [[ $w == "2500 2500 1500" ]]; then
	ok "set-weight 25 on n2: n1 follows despite its dead first endpoint; n3 (only dead endpoints) keeps 1500 bp from its state_dir"
else
	notok "set-weight 25 on n2: weights $w (want 2500 2500 1500)"
fi
sleep 2
c3=$(fleet_metric 3 shift_fleet_connected)
[ "$c3" = 0 ] && ok "n3 (only $DEAD2): shift_fleet_connected 0" || notok "n3: shift_fleet_connected '$c3' (want 0)"
if grep -q -F "${DEAD2#http://}" "$(fleet_log 3)"; then
	ok "n3's log names the unreachable endpoint: $(grep -F "${DEAD2#http://}" "$(fleet_log 3)" | tail -n 1)"
else
	notok "n3's log does not name $DEAD2: $(tail -n 3 "$(fleet_log 3)" | tr '\n' '|')"
fi
fleet_traffic_start ep 20 2
fleet_traffic_wait 30
s=$(fleet_traffic_sum ep | "$RIG_PYTHON" -c 'import json,sys; d=json.load(sys.stdin)["per_client"]["cli3"]; print(d["ok"], d["sent"])')
[ "${s% *}" = "${s#* }" ] && [ "${s% *}" -gt 0 ] && ok "n3 without etcd keeps serving: cli3 ${s% *}/${s#* } answered" ||
	notok "n3 without etcd: cli3 answered/sent $s"
# only nodes 1 and 2 can see the values below
FLEET_N_SEEN=(1 2)

# --- bad values by hand --------------------------------------------------------------------
good=$(fleet_etcdctl get "$KEY" --print-value-only)
note "the good value: $good"
"$RIG_PYTHON" -c 'import json,sys; json.loads(sys.argv[1])' "$good" 2>/dev/null || notok "the fleet's value at $KEY is not JSON: '$good'"
# mutate FIELD=JSONVALUE: the good value with one field replaced (prints JSON)
mutate() {
	"$RIG_PYTHON" -c '
import json, sys
v = json.loads(sys.argv[1])
for a in sys.argv[2:]:
    k, x = a.split("=", 1)
    v[k] = json.loads(x)
print(json.dumps(v))' "$good" "$@"
}
bad_cases=(
	"not JSON|{\"weight_bp\": 5000, oops"
	"weight_bp 20000|$(mutate weight_bp=20000)"
	"weight_bp -1|$(mutate weight_bp=-1)"
	"weight_bp a string|$(mutate 'weight_bp="9000"')"
	"ramp steps out of range|$(mutate 'ramp={"steps":[5000,20000],"hold_ns":1000000000,"start_unix_ns":1}')"
	"latched with a weight above 0|$(mutate latched=true 'reason="by hand"')"
)
n=0
for c in "${bad_cases[@]}"; do
	n=$((n + 1))
	label=${c%%|*}
	val=${c#*|}
	fleet_watch_start "$D/bad$n.json" --until any-change --duration 2 || fleet_bail "watcher"
	rev=$(fleet_etcdctl put "$KEY" "$val" -w json | rig_json_get header.revision)
	fleet_watch_wait 6
	moved=$("$RIG_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(n for n, v in d["nodes"].items() if v["changes"]))' "$D/bad$n.json")
	logged="" missing=""
	for k in "${FLEET_N_SEEN[@]}"; do
		for ((i = 0; i < 30; i++)); do
			grep -F "$KEY" "$(fleet_log "$k")" | grep -q -w "$rev" && break
			sleep 0.1
		done
		if line=$(grep -F "$KEY" "$(fleet_log "$k")" | grep -w "$rev" | tail -n 1); then
			logged+="n$k: \"$line\" "
		else
			missing+="n$k "
		fi
	done
	w=$(fleet_all green_weight_bp)
	if [ -z "$moved" ] && [ -z "$missing" ] && [ "$w" = "2500 2500 1500" ]; then
		ok "bad value ($label) at rev $rev: ignored, no map moved (weights $w); logged with key and revision: $logged"
	else
		notok "bad value ($label) at rev $rev: maps moved on '${moved}', not logged with $KEY and $rev on '${missing}', weights $w (want 2500 2500 1500); $logged"
	fi
	fleet_report "bad value ($label) rev $rev: moved '${moved}', logged: $logged"
done
# a value for a service no node has: ignored too
rev=$(fleet_etcdctl put "/shift/$FLEET_NAME/svc/nosuch" "$good" -w json | rig_json_get header.revision)
sleep 1
w=$(fleet_all green_weight_bp)
[ "$w" = "2500 2500 1500" ] && ok "a value for an unknown service (rev $rev): nothing moved" || notok "a value for an unknown service: weights $w"
for k in "${FLEET_N_SEEN[@]}"; do
	kill -0 "$(fleet_pid "$k")" 2>/dev/null || notok "n$k's shiftd died on bad input"
	if out=$(fleet_status_json "$k" 2>"$D/fs.err") && [ -n "$(rig_json_get fleet <<<"$out")" ]; then
		ok "n$k: fleet status --json still answers with the bad value in etcd (its warning: $(tr '\n' ' ' <"$D/fs.err"))"
	else
		notok "n$k: fleet status --json with the bad value in etcd: $out $(cat "$D/fs.err")"
	fi
done

# what an operator's set-weight does over a bad stored value (SPEC says nothing: noted)
out=$(fleet_ctl 2 set-weight web 30 2>&1)
note "set-weight web 30 on n2 over the bad stored value: exit $? (${out//$'\n'/ | }); weights now $(fleet_all green_weight_bp)"

# --- a good value by hand: followed ------------------------------------------------------------
fleet_watch_start "$D/good.json" --until any-change --duration 5 || fleet_bail "watcher"
rev=$(fleet_etcdctl put "$KEY" "$(mutate weight_bp=4200)" -w json | rig_json_get header.revision)
fleet_watch_wait 8
w=$(fleet_all green_weight_bp)
if [[ $w == "4200 4200 1500" ]]; then
	ok "a good value by hand (rev $rev, weight_bp 4200): n1, n2 follow; the watch survived the bad ones"
else
	notok "a good value by hand (rev $rev, weight_bp 4200): weights $w (want 4200 4200 1500)"
fi
fleet_finish
