#!/bin/bash
# The fleet rig itself (tests/netns/fleet_lib.sh), without the fleet feature: a healthy
# 3-member etcd cluster reachable from every edge, and on each of the three edges a
# shiftd WITHOUT [fleet] forwarding real HTTP from its own client to blue and green.
# Then the rig's own levers: fleet_cut isolates one edge from etcd (and only from etcd),
# fleet_heal undoes it, one member stopped leaves a quorum, restarted it rejoins.
# What the fleet tests build on; it must pass before their results mean anything.
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

fleet_probe || rig_skip "$FLEET_SKIP_REASON"
fleet_up || fleet_bail "setup: fleet_up failed"
fleet_report_open fleet_rig

# etcd: healthy, one cluster, writable
out=$(fleet_etcdctl endpoint health 2>&1)
n=$(grep -c 'is healthy' <<<"$out")
if [ "$n" = 3 ]; then ok "etcd: 3/3 members healthy"; else notok "etcd: $n/3 healthy: $out"; fi
m=$(fleet_etcdctl member list 2>/dev/null | grep -c started)
[ "$m" = 3 ] && ok "etcd: one cluster of 3 started members" || notok "etcd: member list shows $m started (want 3)"
fleet_etcdctl put /rig/probe x >/dev/null && v=$(fleet_etcdctl get /rig/probe --print-value-only)
[ "${v:-}" = x ] && ok "etcd: put/get round trip" || notok "etcd: put/get gave '${v:-}'"

# every edge reaches every member over its own veth (the v3 JSON gateway: what shiftd uses)
for k in 1 2 3; do
	good=0
	for i in 1 2 3; do
		code=$(fleet_nsenter "$k" curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
			-X POST -d '{"key":"L3JpZy9wcm9iZQ=="}' "$(fleet_etcd_url "$i")/v3/kv/range") || true
		[ "$code" = 200 ] && good=$((good + 1))
	done
	[ "$good" = 3 ] && ok "edge $k: POST /v3/kv/range answered 200 by 3/3 members" ||
		notok "edge $k: /v3/kv/range answered by $good/3 members"
done

# shiftd on each edge, no [fleet]: each forwards its own client's traffic
for k in 1 2 3; do
	FLEET_JOIN=0 fleet_write_config "$k" || fleet_bail "node $k: config"
	fleet_start "$k" || fleet_bail "node $k: shiftd did not start"
done
ok "3 shiftd running (no [fleet]), one per edge, each with its own bpffs, state, socket"
for k in 1 2 3; do fleet_ctl "$k" set-weight web 50 >/dev/null || notok "node $k: set-weight web 50"; done
fleet_traffic_start rig 40 3
fleet_traffic_wait 30 || notok "traffic: a client did not finish in time"
sum=$(fleet_traffic_sum rig)
"$RIG_PYTHON" - "$sum" <<'PY' && ok "traffic: $(echo "$sum" | "$RIG_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], "of", d["sent"], "ok; per client", {k: (v["ok"], v["sent"]) for k, v in d["per_client"].items()}, "by backend", d["by_backend"])')" || notok "traffic through the three edges: $sum"
import json, sys
d = json.loads(sys.argv[1])
pc = d["per_client"]
good = d["failed"] == 0 and d["sent"] > 0 and all(v["ok"] > 20 for v in pc.values())
good &= d["by_backend"].get("blue1", 0) > 0 and d["by_backend"].get("green1", 0) > 0
sys.exit(0 if good else 1)
PY
for k in 1 2 3; do
	g=$(fleet_svc "$k" green_weight_bp)
	[ "$g" = 5000 ] || notok "node $k: green_weight_bp $g (want 5000)"
done
# the watcher reads the three nodes' maps
fleet_watch_start "$RIG_DIR/w.json" --duration 1 && fleet_watch_wait 5
w=$("$RIG_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(v["initial"]) for v in d["nodes"].values()), d["rounds"])' "$RIG_DIR/w.json" 2>/dev/null)
[ "${w% *}" = "5000 5000 5000" ] && ok "fleet_watch.py reads all three weight maps (5000 bp each, ${w##* } rounds in 1 s)" ||
	notok "fleet_watch.py: '$w' $(cat "$RIG_DIR/w.json.err" 2>/dev/null)"

# fleet_cut: etcd unreachable from edge 3 only; clients still served there
fleet_cut 3
code=$(fleet_nsenter 3 curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST -d '{}' \
	"$(fleet_etcd_url 1)/v3/maintenance/status") || true
code2=$(fleet_nsenter 2 curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST -d '{}' \
	"$(fleet_etcd_url 1)/v3/maintenance/status") || true
fleet_traffic_start cut 20 2
fleet_traffic_wait 30
f3=$(fleet_traffic_sum cut | "$RIG_PYTHON" -c 'import json,sys; d=json.load(sys.stdin)["per_client"]["cli3"]; print(d["ok"], d["sent"])')
if [ "$code" = 000 ] && [ "$code2" = 200 ] && [ "${f3% *}" = "${f3#* }" ] && [ "${f3% *}" -gt 0 ]; then
	ok "fleet_cut 3 ($FLEET_CUT): edge 3 cannot reach etcd (curl $code), edge 2 can ($code2), cli3 still served ($f3 ok/sent)"
else
	notok "fleet_cut 3: edge 3 curl $code (want 000), edge 2 $code2 (want 200), cli3 ok/sent $f3"
fi
fleet_heal 3
code=$(fleet_nsenter 3 curl -s -o /dev/null -w '%{http_code}' --max-time 3 -X POST -d '{}' \
	"$(fleet_etcd_url 1)/v3/maintenance/status") || true
[ "$code" = 200 ] && ok "fleet_heal 3: edge 3 reaches etcd again" || notok "fleet_heal 3: curl $code"

# one member down: quorum stays; back up: it rejoins
# (if m2 led, the two left elect a new leader first: wait for their health, bounded)
fleet_etcd_stop 2 KILL
t0=$SECONDS
rig_wait 40 0.5 fleet_etcd_healthy 2 || notok "etcd: the two members left not healthy within 20 s"
if fleet_etcdctl put /rig/probe y >/dev/null 2>&1; then
	ok "etcd: member m2 killed, a write still succeeds (2/3 quorum; healthy again after ~$((SECONDS - t0)) s)"
else
	notok "etcd: write with m2 down failed"
fi
fleet_etcd_start 2
if rig_wait 40 0.5 fleet_etcd_healthy 3; then ok "etcd: m2 restarted from its data dir, 3/3 healthy"; else notok "etcd: m2 did not rejoin within 20 s"; fi
fleet_finish
