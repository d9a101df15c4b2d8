#!/bin/bash
# Fleet, must-show 3 (issue #17; SPEC "Fleet", Partitions): failures of etcd and of the
# network between a node and etcd.
#   A. One etcd member killed (kill -9; the raft leader):
#      nothing changes on any node, a set-weight still succeeds and reaches all three.
#      Restarted, it rejoins.
#   B. Node 3 cut off from etcd (nft drops every packet between it and etcd, silently):
#      it keeps serving (cli3's requests all answered) at its last weight; it does not
#      follow a raise it cannot see; on it set-weight, ramp, promote and clear exit 1
#      ("fleet unreachable") and change nothing; an operator rollback on node 1 latches
#      nodes 1 and 2 only. Healed: node 3 adopts the fleet's rollback within 3 s.
#   C. Node 3 cut off, green fails, only cli3 sends traffic: node 3's own trigger rolls
#      it back locally; nodes 1 and 2 stay as they were. Healed: node 3 publishes its
#      rollback, nodes 1 and 2 latch within 3 s with origin n3 and its reason.
#   D. Node 3 cut off: `shiftctl rollback` on it exits 0 and applies at once; healed:
#      the fleet takes it (the reason verbatim) within 3 s.
#   E. Quorum lost (two members down): nothing changes locally; fleet verbs exit 1,
#      a local rollback still works; quorum back: the fleet follows it.
# After each of B, C, D: `fleet status` on every node shows all three agreeing.
# Figures: stdout and ${OUTPUT:-.output}/fleet_partition.txt. Exit 0 / 77 / 1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

CONF=("web.min_requests=20" "web.max_consecutive_errors=5" web.max_error_rate=off
	web.max_error_rate_increase=off web.max_latency_p99=off web.max_latency_ratio=off
	web.rollback_window=10s web.rollback_evict=yes)
ADOPT_S=3       # SPEC: on reconnect, the fleet's rollback within 3 s
CUT_NOTICE_S=15 # how long a node may take to notice it is cut off (etcd_timeout 2s, lease 5s)

fleet_up_joined "${CONF[@]}"
fleet_report_open fleet_partition
D=$RIG_DIR
for k in 1 2 3; do fleet_wait_connected "$k" 15 || notok "node $k: not connected within 15 s"; done

# base W: clear + set-weight W on node 1, every node there (a fresh start for a part)
base() {
	fleet_ctl 1 clear web >/dev/null 2>&1
	fleet_ctl 1 set-weight web "$1" >/dev/null 2>&1 || notok "setup: set-weight web $1 on n1 failed"
	fleet_wait_all 5 green_weight_bp "$(($1 * 100))" || notok "setup: weights $(fleet_all green_weight_bp), want $(($1 * 100)) everywhere"
	fleet_wait_all 5 rolled_back False || notok "setup: rolled_back $(fleet_all rolled_back)"
}
# latched_within SECONDS NODES...: until every listed node is rolled back; prints the ms
latched_within() {
	local s=$1 i k t0 all
	shift
	t0=$(fleet_now_ns)
	for ((i = 0; i < s * 20; i++)); do
		all=1
		for k in "$@"; do [ "$(fleet_svc "$k" rolled_back)" = True ] || { all=0; break; }; done
		[ "$all" = 1 ] && { echo $((($(fleet_now_ns) - t0) / 1000000)); return 0; }
		sleep 0.05
	done
	echo "> $((s * 1000))"
	return 1
}
lr() { echo "$(fleet_svc "$1" rolled_back)/$(fleet_svc "$1" last_rollback.origin)/\"$(fleet_svc "$1" last_rollback.reason)\""; }
agree_all() { # LABEL
	local k
	for k in 1 2 3; do
		if fleet_wait_agree "$k" 10; then ok "$1: fleet status on n$k: $FLEET_AGREE"; else notok "$1: fleet status on n$k: ${FLEET_AGREE:-}"; fi
	done
}
# cut3: cut node 3 off etcd and wait (bounded) until it says so (shift_fleet_connected 0)
cut3() {
	fleet_cut 3 || fleet_bail "fleet_cut 3 failed"
	local t0=$SECONDS
	if fleet_wait_disconnected 3 "$CUT_NOTICE_S"; then
		note "node 3 reports shift_fleet_connected 0 after ~$((SECONDS - t0)) s"
	else
		notok "node 3 cut off: shift_fleet_connected still '$(fleet_metric 3 shift_fleet_connected)' after $CUT_NOTICE_S s"
	fi
}
heal3() { fleet_heal 3; }

# --- A. one etcd member killed: the raft leader, the hardest one ---------------------------
base 20
L=$(fleet_etcd_leader) || L=1
fleet_etcd_stop "$L" KILL
t0=$(fleet_now_ns)
# etcd itself needs a new leader before it takes a write (election timeout 1 s here)
rig_wait 40 0.5 fleet_etcd_healthy 2 || notok "A: the two members left are not healthy within 20 s"
t_el=$((($(fleet_now_ns) - t0) / 1000000))
w=$(fleet_all green_weight_bp)
r=$(fleet_all rolled_back)
if [ "$w" = "2000 2000 2000" ] && [ "$r" = "False False False" ]; then
	ok "A: member m$L (the leader) killed: every node still at 2000 bp, unlatched (two members healthy again after $t_el ms)"
else
	notok "A: member m$L killed: weights $w, rolled_back $r (want 2000 and False everywhere)"
fi
t0=$(fleet_now_ns)
out=$(timeout 30 nsenter --net="/run/netns/$(fleet_ns 2)" "$SHIFTCTL" -c "$FLEET_CONFIG_2" set-weight web 30 2>&1)
rc=$?
if [ "$rc" = 0 ] && fleet_wait_all 10 green_weight_bp 3000; then
	ok "A: member m$L down: set-weight web 30 on n2 exit 0, every node at 3000 bp $((($(fleet_now_ns) - t0) / 1000000)) ms after the command"
else
	notok "A: member m$L down: set-weight web 30 on n2 exit $rc ($out); weights $(fleet_all green_weight_bp)"
fi
fleet_report "A: leader m$L killed: 2 members healthy after $t_el ms; set-weight from n2 on every node $((($(fleet_now_ns) - t0) / 1000000)) ms after the command (incl. polling)"
for k in 1 2 3; do
	c=$(fleet_metric "$k" shift_fleet_connected)
	fleet_wait_connected "$k" 10 || notok "A: member m$L down: n$k shift_fleet_connected '$c' after 10 s (want 1: two members of three are a quorum)"
done
fleet_etcd_start "$L"
rig_wait 40 0.5 fleet_etcd_healthy 3 && ok "A: member m$L restarted: 3/3 healthy" || notok "A: member m$L did not rejoin within 20 s"

# --- B. node 3 cut off: fail-static, no raise, verbs refused, adopts the fleet's rollback ---
base 30
cut3
fleet_ctl 1 set-weight web 40 >/dev/null || notok "B: set-weight web 40 on n1 failed"
sleep 1.5 # what n1 and n2 apply within 100 ms; n3 must not follow at all
w=$(fleet_all green_weight_bp)
if [ "$w" = "4000 4000 3000" ]; then
	ok "B: raise to 40 % on n1 while n3 is cut off: n1, n2 at 4000 bp, n3 keeps 3000 bp (weights $w)"
else
	notok "B: raise to 40 % while n3 is cut off: weights $w (want 4000 4000 3000)"
fi
# fleet status on n1 names n3 as the node that disagrees (its last applied state is 30 %)
fs=$(fleet_status_json 1 2>/dev/null | "$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s:%s" % (n["node"], "agrees" if n.get("agrees") else "disagrees") for n in d.get("nodes", [])))')
if [ "$fs" = "n1:agrees n2:agrees n3:disagrees" ]; then
	ok "B: fleet status on n1 while n3 is cut off: $fs"
else
	notok "B: fleet status on n1 while n3 is cut off: '$fs' (want n1:agrees n2:agrees n3:disagrees)"
fi
fleet_traffic_start B 30 2
fleet_traffic_wait 30
s3=$(fleet_traffic_sum B | "$RIG_PYTHON" -c 'import json,sys; d=json.load(sys.stdin)["per_client"]["cli3"]; print(d["ok"], d["sent"], json.dumps(d["errors"]))')
read -r ok3 sent3 err3 <<<"$s3"
[ "$ok3" = "$sent3" ] && [ "$sent3" -gt 0 ] && ok "B: n3 cut off keeps serving: cli3 $ok3/$sent3 answered" ||
	notok "B: n3 cut off: cli3 $ok3/$sent3 answered ($err3)"
for verb in "set-weight web 50" "ramp web 50,60 --hold 5s" "promote web" "clear web"; do
	# shellcheck disable=SC2086 # the verb's words
	out=$(timeout 30 nsenter --net="/run/netns/$(fleet_ns 3)" "$SHIFTCTL" -c "$FLEET_CONFIG_3" $verb 2>&1)
	rc=$?
	w=$(fleet_svc 3 green_weight_bp)
	if [ "$rc" = 1 ] && grep -qi 'fleet unreachable' <<<"$out" && [ "$w" = 3000 ]; then
		ok "B: on cut-off n3 'shiftctl $verb' exit 1 (\"${out//$'\n'/ }\"), weight still 3000 bp"
	else
		notok "B: on cut-off n3 'shiftctl $verb': exit $rc (want 1), \"${out//$'\n'/ }\" (want 'fleet unreachable'), weight $w (want 3000)"
	fi
done
REASON_B="partition test: operator on n1"
fleet_ctl 1 rollback web --reason "$REASON_B" >/dev/null || notok "B: rollback on n1 failed"
sleep 1
st="$(lr 1) $(lr 2) $(lr 3)"
if [ "$(fleet_all rolled_back)" = "True True False" ]; then
	ok "B: operator rollback on n1 while n3 is cut off: n1, n2 latched, n3 not (it cannot see it): $st"
else
	notok "B: operator rollback on n1 while n3 is cut off: $st (want True True False)"
fi
heal3
ms=$(latched_within "$ADOPT_S" 3)
rc=$?
if [ "$rc" = 0 ] && [ "$(fleet_svc 3 last_rollback.reason)" = "$(fleet_svc 1 last_rollback.reason)" ] &&
	[[ $(fleet_svc 3 last_rollback.reason) == *"$REASON_B"* ]] && [ "$(fleet_svc 3 green_weight_bp)" = 0 ]; then
	ok "B: healed: n3 adopted the fleet's rollback $ms ms after the heal (bound ${ADOPT_S} s): $(lr 3)"
else
	notok "B: healed: n3 did not adopt the fleet's rollback within ${ADOPT_S} s ($ms ms): $(lr 3), weight $(fleet_svc 3 green_weight_bp)"
fi
fleet_report "B: cut-off node adopted the fleet's rollback $ms ms after the heal"
agree_all B

# --- C. node 3 cut off, its own trigger fires, published on heal ----------------------------
base 50
cut3
rig_backend_mode green1 500
rig_spawn "$RIG_ID-cli3" "$D/C.cli3.jsonl" "$RIG_PYTHON" "$RIG_CLIENT_PY" rate --url "$RIG_URL" \
	--rate 60 --duration 3 --concurrency 16 --timeout 2
pc=$RIG_LAST_PID
ms=$(latched_within 10 3)
rc=$?
# shellcheck disable=SC2034 # read by fleet_traffic_wait
FLEET_TRAFFIC_PIDS=("$pc")
fleet_traffic_wait 20
rig_backend_mode green1 ok
st="$(lr 1) $(lr 2) $(lr 3)"
if [ "$rc" = 0 ] && [ "$(fleet_all rolled_back)" = "False False True" ] &&
	[ "$(fleet_svc 3 last_rollback.origin)" = n3 ] &&
	[[ $(fleet_svc 3 last_rollback.reason) == consecutive_errors* ]]; then
	ok "C: n3 cut off, green fails under cli3's traffic: n3 rolled back on its own trigger (${ms} ms), n1, n2 untouched: $st"
else
	notok "C: n3 cut off, green fails: $st (want n3 True/n3/consecutive_errors..., n1 n2 False)"
fi
reason_c=$(fleet_svc 3 last_rollback.reason)
heal3
ms=$(latched_within "$ADOPT_S" 1 2)
rc=$?
st="$(lr 1) $(lr 2)"
if [ "$rc" = 0 ] && [ "$st" = "True/n3/\"$reason_c\" True/n3/\"$reason_c\"" ]; then
	ok "C: healed: n3's rollback published, n1 and n2 latched $ms ms after the heal (bound ${ADOPT_S} s), origin n3, reason verbatim: $st"
else
	notok "C: healed: n1 n2 after ${ADOPT_S} s ($ms ms): $st (want True/n3/\"$reason_c\" on both)"
fi
fleet_report "C: cut-off node's own rollback reached the fleet $ms ms after the heal"
agree_all C

# --- D. operator rollback on the cut-off node ----------------------------------------------
base 50
cut3
REASON_D="partition test: operator on cut-off n3"
fleet_watch_start "$D/D.watch.json" --until any-change --duration 4 || fleet_bail "watcher"
t0=$(fleet_now_ns)
out=$(timeout 30 nsenter --net="/run/netns/$(fleet_ns 3)" "$SHIFTCTL" -c "$FLEET_CONFIG_3" rollback web --reason "$REASON_D" 2>&1)
rc=$?
dt=$((($(fleet_now_ns) - t0) / 1000000))
fleet_watch_wait 8
# "at once": n3's map latched well before the command returns (it then tries etcd)
m3=$("$RIG_PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1])); t0 = int(sys.argv[2])
c = d["nodes"]["n3"]["changes"]
print("%.0f" % ((c[0][0] - t0) / 1e6) if c and c[0][1] & (1 << 31) else "never")' "$D/D.watch.json" "$t0")
st="$(lr 1) $(lr 2) $(lr 3)"
if [ "$rc" = 0 ] && [ "$m3" != never ] && [ "$m3" -lt 1000 ] && [ "$(fleet_svc 3 green_weight_bp)" = 0 ] &&
	[ "$(fleet_all rolled_back)" = "False False True" ]; then
	ok "D: rollback on cut-off n3: its map latched $m3 ms after the command (exit 0 after $dt ms, etcd tried meanwhile); n1, n2 not yet: $st"
else
	notok "D: rollback on cut-off n3: exit $rc ($out) after $dt ms; n3's map latched at '$m3' ms (want < 1000); $st, n3 weight $(fleet_svc 3 green_weight_bp)"
fi
fleet_report "D: rollback on a cut-off node: map latched after $m3 ms, command exit 0 after $dt ms"
heal3
ms=$(latched_within "$ADOPT_S" 1 2)
rc=$?
r3=$(fleet_svc 3 last_rollback.reason)
st="$(fleet_svc 1 last_rollback.reason)|$(fleet_svc 2 last_rollback.reason)"
if [ "$rc" = 0 ] && [ "$st" = "$r3|$r3" ] && [[ $r3 == *"$REASON_D"* ]]; then
	ok "D: healed: n1, n2 latched with the reason verbatim $ms ms after the heal"
else
	notok "D: healed: after ${ADOPT_S} s ($ms ms) n1|n2 reasons: $st (want n3's \"$r3\", containing \"$REASON_D\"); $(lr 1) $(lr 2)"
fi
agree_all D

# --- F. only node 3's watch goes silent -------------------------------------------------------
# A NAT's or firewall's idle timeout, or a drop of that one connection: node 3's
# keepalives, on another connection, still pass. TCP keepalives on the watch find it
# dead (a third of the lease idle, 3 probes 1 s apart); node 3 re-reads the fleet and
# adopts the rollback made meanwhile.
if [ "$FLEET_CUT" = nft ] && [ "${RIG_HAVE_NFT:-0}" = 1 ]; then
	base 20
	sleep 1
	# The watch: node 3's connection to etcd that has sent nothing for the longest.
	wport=$(fleet_nsenter 3 ss -Htni state established "( dport = :2379 )" | "$RIG_PYTHON" -c '
import re, sys
lines = sys.stdin.read().split("\n")
best = None
for i in range(0, len(lines) - 1, 2):
    addrs = [w for w in lines[i].split() if ":" in w]
    local = addrs[0] if addrs else ""
    m = re.search(r"lastsnd:(\d+)", lines[i + 1])
    if m and local and (best is None or int(m.group(1)) > best[0]):
        best = (int(m.group(1)), local.rsplit(":", 1)[1])
print(best[1] if best else "")')
	if [ -n "$wport" ]; then
		fleet_nsenter 3 nft -f - <<-EOF
			table inet fleet_watchcut {
				chain out { type filter hook output priority 0; policy accept; tcp sport $wport drop; }
				chain in { type filter hook input priority 0; policy accept; tcp dport $wport drop; }
			}
		EOF
		fleet_ctl 1 rollback web --reason "the watch went silent" >/dev/null 2>&1 ||
			notok "F: rollback on n1 failed"
		ms=$(latched_within 15 3)
		rc=$?
		c3=$(fleet_svc 3 rolled_back)
		[ "$rc" = 0 ] && ok "F: node 3's watch silently dropped (port $wport): it adopted n1's rollback after $ms ms" ||
			notok "F: node 3's watch silently dropped (port $wport): rolled back $c3 after 15 s ($(lr 3))"
		fleet_nsenter 3 nft delete table inet fleet_watchcut 2>/dev/null || true
		agree_all F
	else
		notok "F: node 3's watch connection not found (ss)"
	fi
fi

# --- G. a rollback not yet published survives a restart of shiftd --------------------------
# Node 3 cut off rolls back; the operator then sets a weight elsewhere (later in time);
# node 3's shiftd restarts before etcd is back. The rollback is still its to publish:
# a rollback anywhere wins over a concurrent raise, restart or not.
base 50
cut3
REASON_G="partition test: rolled back, then restarted while cut off"
timeout 30 nsenter --net="/run/netns/$(fleet_ns 3)" "$SHIFTCTL" -c "$FLEET_CONFIG_3" rollback web \
	--reason "$REASON_G" >/dev/null 2>&1 || notok "G: rollback on cut-off n3 failed"
sleep 0.5
fleet_ctl 1 set-weight web 30 >/dev/null 2>&1 || notok "G: set-weight 30 on n1 failed"
fleet_stop 3
fleet_start 3 || fleet_bail "G: node 3 does not start again"
heal3
ms=$(latched_within 10 1 2 3)
rc=$?
st="$(lr 1) $(lr 2) $(lr 3)"
if [ "$rc" = 0 ] && [[ $(fleet_svc 1 last_rollback.reason) == *"$REASON_G"* ]]; then
	ok "G: healed after n3's restart: its rollback published, every node latched $ms ms after the heal"
else
	notok "G: healed after n3's restart: after 10 s: $st (want every node latched with \"$REASON_G\")"
fi
agree_all G

# --- E. quorum lost ---------------------------------------------------------------------------
base 20
fleet_etcd_stop 1 KILL
fleet_etcd_stop 2 KILL
sleep 3
w=$(fleet_all green_weight_bp)
[ "$w" = "2000 2000 2000" ] && ok "E: quorum lost (m1, m2 killed): every node keeps 2000 bp" || notok "E: quorum lost: weights $w"
out=$(timeout 30 nsenter --net="/run/netns/$(fleet_ns 2)" "$SHIFTCTL" -c "$FLEET_CONFIG_2" set-weight web 60 2>&1)
rc=$?
[ "$rc" = 1 ] && [ "$(fleet_all green_weight_bp)" = "2000 2000 2000" ] &&
	ok "E: quorum lost: set-weight on n2 exit 1 (\"${out//$'\n'/ }\"), nothing changed" ||
	notok "E: quorum lost: set-weight on n2 exit $rc ($out), weights $(fleet_all green_weight_bp)"
out=$(timeout 30 nsenter --net="/run/netns/$(fleet_ns 2)" "$SHIFTCTL" -c "$FLEET_CONFIG_2" rollback web --reason "no quorum" 2>&1)
rc=$?
[ "$rc" = 0 ] && [ "$(fleet_svc 2 rolled_back)" = True ] && ok "E: quorum lost: rollback on n2 exit 0, applied locally" ||
	notok "E: quorum lost: rollback on n2 exit $rc ($out), rolled_back $(fleet_svc 2 rolled_back)"
fleet_etcd_start 1
fleet_etcd_start 2
rig_wait 60 0.5 fleet_etcd_healthy 3 || notok "E: etcd not healthy again within 30 s"
ms=$(latched_within 10 1 3)
rc=$?
[ "$rc" = 0 ] && ok "E: quorum back: n2's rollback reached n1 and n3 ($ms ms after etcd was healthy)" ||
	notok "E: quorum back: $(lr 1) $(lr 3) after 10 s"
agree_all E
fleet_finish
