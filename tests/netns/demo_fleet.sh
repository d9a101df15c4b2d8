#!/bin/bash
# `make demo-fleet`: many edge hosts, one decision (issue #17), for a human, in about two
# minutes.
#
# Builds the fleet rig (tests/netns/fleet_lib.sh): three edge hosts, each running shiftd
# with [fleet], one real 3-member etcd cluster, blue1, blue2 and green1 shared by all
# three, and one client per edge opening new HTTP connections to the VIP continuously.
# Then: a ramp started on node 2 (1 -> 10 -> 50 %) that every node follows in step;
# green1 starts answering HTTP 500; the first node whose trigger fires rolls back and the
# rollback spreads to the other two through etcd, shown live per node (weight, latch,
# origin, fleet_lag_us) by fleet_view.py. A summary with the per-node figures at the end;
# everything is torn down, also on Ctrl-C.
#
# Needs root and the built binaries (`make demo-fleet` builds them). Knobs: DEMO_RATE
# (new connections per second: node 1's client twice that, the others half; 60), DEMO_HOLD (seconds per ramp step, 6),
# DEMO_PLAIN=1 (log lines even on a terminal), DEMO_LONE=1 (the same three hosts without
# [fleet], for comparison: the ramp runs on each, each must detect green's failure itself).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

RATE=${DEMO_RATE:-60}
HOLD=${DEMO_HOLD:-6}
T0=$SECONDS
VIEW=""
EV=""

die() {
	echo "demo-fleet: $*" >&2
	exit 1
}
now() { date +%s.%N; }
say() {
	if [ -n "$EV" ]; then printf '%s\t%s\n' "$(now)" "$*" >>"$EV"; fi
	[ -n "$VIEW" ] || echo "demo-fleet: $*"
}
end_view() {
	local i
	[ -n "$VIEW" ] || return 0
	printf '%s\tEND\n' "$(now)" >>"$EV"
	for ((i = 0; i < 50; i++)); do
		kill -0 "$VIEW" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$VIEW" 2>/dev/null && kill -TERM "$VIEW" 2>/dev/null # the pid we started
	wait "$VIEW" 2>/dev/null
	VIEW=""
}

fleet_probe || die "this machine cannot run the fleet demo: $FLEET_SKIP_REASON"
echo "demo-fleet: building the rig: cli1..3 -> edge1..3 (shift, XDP, shiftd with [fleet]) -> blue1, blue2, green1; etcd m1..m3"
fleet_up || die "fleet_up failed"
LONE=${DEMO_LONE:-0}
if [ "$LONE" = 1 ]; then
	export FLEET_JOIN=0
else
	fleet_feature_probe || die "this shiftd cannot join a fleet: $FLEET_SKIP_REASON"
fi
# on NODE ARGS...: shiftctl on node NODE (lone hosts: on every node)
on() {
	local k=$1 rc=0
	shift
	if [ "$LONE" = 1 ]; then
		for k in 1 2 3; do fleet_ctl "$k" "$@" || rc=$?; done
		return $rc
	fi
	fleet_ctl "$k" "$@"
}
rig_on_exit end_view
EV=$RIG_DIR/events
: >"$EV"
for k in 1 2 3; do
	fleet_write_config "$k" web.rollback_window=10s web.min_requests=20 web.max_error_rate=5% \
		web.max_consecutive_errors=5 web.rollback_evict=yes || die "cannot write node $k's config"
done
echo "demo-fleet: node 1's config ($FLEET_CONFIG_1), from [service web] on:"
sed -n '/^\[service/,$p' "$FLEET_CONFIG_1" | sed 's/^/demo-fleet:   /'
for k in 1 2 3; do fleet_start "$k" || die "node $k: shiftd did not start"; done
if [ "$LONE" = 0 ]; then
	for k in 1 2 3; do fleet_wait_connected "$k" 15 || die "node $k did not connect to etcd"; done
fi
on 1 set-weight web 0 >/dev/null || die "set-weight web 0 failed"

# Uneven on purpose, as ECMP and anycast are: node 1 carries most users. Alone, each node
# would let its own max_consecutive_errors 500s through; in the fleet, the first to see
# them rolls back everyone.
RATES=($((2 * RATE)) $((RATE / 2)) $((RATE / 2)))
for k in 1 2 3; do
	rig_nsenter "$RIG_ID-cli$k" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" 2>/dev/null
	rig_spawn "$RIG_ID-cli$k" "$RIG_DIR/rate.cli$k.jsonl" "$RIG_PYTHON" "$RIG_CLIENT_PY" rate \
		--url "$RIG_URL" --rate "${RATES[k - 1]}" --duration 110 --concurrency 32 --timeout 2 ||
		die "cannot start the client in cli$k"
done
view_args=(--shiftctl "$SHIFTCTL" --events "$EV")
for k in 1 2 3; do
	view_args+=(--node "n$k,/run/netns/$(fleet_ns "$k"),$(fleet_dir "$k")/shiftd.conf,$RIG_DIR/rate.cli$k.jsonl")
done
[ "${DEMO_PLAIN:-0}" = 1 ] && view_args+=(--plain)
[ "$LONE" = 1 ] && view_args+=(--no-fleet)
"$RIG_PYTHON" "$HERE/fleet_view.py" "${view_args[@]}" &
VIEW=$!

if [ "$LONE" = 1 ]; then
	say "3 shiftd up WITHOUT [fleet] (DEMO_LONE=1): three lone hosts; green at 0 %"
else
	say "3 shiftd up, one fleet '$FLEET_NAME' in etcd (3 members); green at 0 %"
fi
say "clients: ${RATES[0]}, ${RATES[1]}, ${RATES[2]} new HTTP connections/s through n1, n2, n3 to $RIG_URL"
sleep 4

# --- a ramp started on node 2, followed by every node ---------------------------------------
T_RAMP=$SECONDS
if out=$(on 2 ramp web 1,10,50 --hold "${HOLD}s" 2>&1); then
	if [ "$LONE" = 1 ]; then
		say "on every node: shiftctl ramp web 1,10,50 --hold ${HOLD}s (lone hosts: one command each)"
	else
		say "on n2: shiftctl ramp web 1,10,50 --hold ${HOLD}s (stored once in etcd; every node steps by the plan)"
	fi
else
	say "ramp on n2 refused ($out): stepping with set-weight on n2"
	for w in 1 10 50; do
		on 2 set-weight web "$w" >/dev/null && say "on n2: shiftctl set-weight web $w%"
		[ "$w" = 50 ] || sleep "$HOLD"
	done
fi
fleet_wait_all $((3 * HOLD + 10)) green_weight_bp 5000 ||
	say "not every node at 50 % in time: $(fleet_all green_weight_bp)"
say "every node at 50 % after $((SECONDS - T_RAMP))s of ramp"
sleep 5

# --- green fails ----------------------------------------------------------------------------
rig_backend_mode green1 500 || die "cannot switch green1 to 500"
t_fail=$(now)
say "green1 now answers every request with HTTP 500"
# Watch the logs, not `shiftctl status`: a status query holds a shiftd loop for a moment.
auto=0
while awk -v a="$t_fail" -v b="$(now)" 'BEGIN { exit !(b - a < 6) }'; do
	if grep -q 'ROLLBACK' "$(fleet_log 1)" "$(fleet_log 2)" "$(fleet_log 3)" 2>/dev/null; then
		auto=1
		break
	fi
	sleep 0.05
done
sleep 0.3 # the spread takes milliseconds; this is margin for a loaded box
if [ "$(fleet_all rolled_back)" != "True True True" ]; then
	out=$(on 1 rollback web --reason "demo: green returns 500" --evict 2>&1)
	say "not every node rolled back within 6 s ($(fleet_all rolled_back)): operator on n1: shiftctl rollback --evict: $out"
	fleet_wait_all 5 rolled_back True
fi
summary_nodes=""
for k in 1 2 3; do
	o=$(fleet_svc "$k" last_rollback.origin)
	l=$(fleet_svc "$k" last_rollback.fleet_lag_us)
	t=$(fleet_svc "$k" last_rollback.unix_ns)
	summary_nodes+="n$k: latched $(fleet_svc "$k" rolled_back), origin $o, fleet_lag_us $l, $(awk -v a="$t_fail" -v b="$t" 'BEGIN { printf "%.0f", (b / 1e9 - a) * 1000 }') ms after green1 failed"$'\n'
done
reason=$(fleet_svc 1 last_rollback.reason)
if [ "$auto" = 0 ]; then
	say "rollback: $reason"
elif [ "$LONE" = 1 ]; then
	say "AUTOMATIC ROLLBACK on each host, each after its own errors: $reason"
else
	say "AUTOMATIC ROLLBACK, fleet-wide: $reason"
fi
while IFS= read -r line; do [ -z "$line" ] || say "$line"; done <<<"$summary_nodes"
sleep 6
say "traffic back on blue on every edge; tearing down"
sleep 1
end_view

summary=$("$RIG_PYTHON" - "$RIG_DIR"/rate.cli*.jsonl <<'PY'
import json, sys
out = []
for p in sys.argv[1:]:
    sent = failed = 0
    errs = {}
    for line in open(p, errors="replace"):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("summary"):
            continue
        sent += d.get("sent", 0)
        failed += d.get("failed", 0)
        for k, v in d.get("errors", {}).items():
            errs[k] = errs.get(k, 0) + v
    e = ", ".join(f"{k} {v}" for k, v in sorted(errs.items())) or "none"
    out.append(f"{p.rsplit('.', 2)[-2]}: {sent} sent, {failed} failed ({e})")
print("; ".join(out))
PY
)
rig_down
echo
echo "demo-fleet: rollback per node (fleet_lag_us = origin's map write -> this node's):"
printf '%s' "$summary_nodes" | sed 's/^/demo-fleet:   /'
echo "demo-fleet: reason: $reason"
echo "demo-fleet: clients: $summary"
echo "demo-fleet:   (http_500: answers from the failing green that reached users; reset/closed: green connections cut by the evict; skipped: requests the client could not start in time, not failures of shift)"
echo "demo-fleet: rig torn down; done in $((SECONDS - T0))s"
