#!/bin/bash
# `make demo`: shift's main job, end to end, for a human, in under two minutes.
#
# Builds the namespace rig (2 clients -> edge host running shift -> blue1, blue2, green1
# serving HTTP), starts shiftd, has both clients open new HTTP connections to the VIP
# continuously, ramps green 0 -> 1 -> 10 -> 50 %, then makes green answer HTTP 500 and
# shows the rollback (automatic if shiftd's triggers fire within 5 s, else an operator
# `shiftctl rollback --evict`), with the reaction time and the traffic back on blue.
# A live view (demo_view.py) redraws in place on a terminal; otherwise one plain log line
# per second. Everything is torn down at the end, also on Ctrl-C.
#
# Needs root and the built binaries (`make demo` builds them). Knobs: DEMO_RATE (new
# connections per second per client, 100), DEMO_HOLD (seconds per ramp step, 8),
# DEMO_PLAIN=1 (log lines even on a terminal).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${RIG_QUIET:=1}"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

OUT=${OUTPUT:-$ROOT/.output}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
SHIFTD=$OUT/shiftd
SHIFTCTL=$OUT/shiftctl
RATE=${DEMO_RATE:-100}
HOLD=${DEMO_HOLD:-8}
T0=$SECONDS
VIEW=""
EV=""

die() {
	echo "demo: $*" >&2
	exit 1
}
now() { date +%s.%N; }
# say TEXT: an event for the live view (and the plain log); printed directly while no
# view runs.
say() {
	if [ -n "$EV" ]; then printf '%s\t%s\n' "$(now)" "$*" >>"$EV"; fi
	[ -n "$VIEW" ] || echo "demo: $*"
}
ctl() { rig_edge "$SHIFTCTL" -c "$RIG_CONFIG" "$@"; }
# svc FIELD[.FIELD]: one field of `shiftctl status --json web` for service web
svc() {
	ctl status --json web 2>/dev/null | "$RIG_PYTHON" -c '
import json, sys
try:
    v = json.load(sys.stdin)["services"][0]
except Exception:
    sys.exit(1)
for k in sys.argv[1].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1" 2>/dev/null
}
# end_view: tell the view to draw its last frame and exit; bounded wait.
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

rig_probe || die "this machine cannot run the demo: $RIG_SKIP_REASON"
{ [ -x "$SHIFTD" ] && [ -x "$SHIFTCTL" ]; } || die "$SHIFTD or $SHIFTCTL missing: run 'make demo' (it builds them)"

echo "demo: building the rig: cli1, cli2 -> edge (shift, XDP) -> blue1, blue2, green1 (HTTP)"
RIG_CLIENTS=2 RIG_BLUE=2 RIG_GREEN=1 rig_up || die "rig_up failed"
rig_on_exit end_view
EV=$RIG_DIR/events
: >"$EV"
RIG_SVC6='' rig_write_config "$RIG_DIR/shiftd.conf" xdp_mode=auto \
	web.rollback_window=10s web.min_requests=20 web.max_error_rate=5% \
	web.max_consecutive_errors=5 web.rollback_evict=yes || die "cannot write the config"
echo "demo: config $RIG_CONFIG:"
sed -n '/^\[service/,$p' "$RIG_CONFIG" | sed 's/^/demo:   /'

rig_spawn edge "$RIG_DIR/shiftd.log" "$SHIFTD" --config "$RIG_CONFIG" || die "cannot start shiftd"
SHIFTD_PID=$RIG_LAST_PID
for ((i = 0; i < 100; i++)); do
	kill -0 "$SHIFTD_PID" 2>/dev/null || { cat "$RIG_DIR/shiftd.log" >&2; die "shiftd exited"; }
	[ "$(ctl status --json 2>/dev/null | rig_json_get agent_running 2>/dev/null)" = True ] && break
	sleep 0.1
done
[ "$i" -lt 100 ] || { cat "$RIG_DIR/shiftd.log" >&2; die "shiftd not ready after 10 s"; }
ifs=$(ctl status --json | rig_json_get interfaces)

for c in cli1 cli2; do
	rig_spawn "$c" "$RIG_DIR/rate.$c.jsonl" "$RIG_PYTHON" "$RIG_CLIENT_PY" rate --url "$RIG_URL" \
		--rate "$RATE" --duration 115 --concurrency 64 || die "cannot start the client in $c"
done

view_args=(--service web --events "$EV" --rate "$RIG_DIR/rate.cli1.jsonl" --rate "$RIG_DIR/rate.cli2.jsonl")
[ "${DEMO_PLAIN:-0}" = 1 ] && view_args+=(--plain)
"$RIG_PYTHON" "$HERE/demo_view.py" "${view_args[@]}" -- \
	nsenter --net="/run/netns/$RIG_NS_EDGE" -- "$SHIFTCTL" -c "$RIG_CONFIG" status --json web &
VIEW=$!

say "shiftd up, XDP on $ifs"
say "2 clients x $RATE new HTTP connections/s to $RIG_URL; green at 0 %"
sleep 4

# --- the ramp ------------------------------------------------------------------------
T_RAMP=$SECONDS
if out=$(ctl ramp web 1,10,50 --hold "${HOLD}s" 2>&1); then
	say "shiftctl ramp web 1,10,50 --hold ${HOLD}s"
	for ((i = 0; i < (3 * HOLD + 10) * 5; i++)); do
		[ "$(svc green_weight_bp)" = 5000 ] && break
		sleep 0.2
	done
	[ "$(svc green_weight_bp)" = 5000 ] || say "ramp did not reach 50 % in time (weight $(svc green_weight))"
else
	say "ramp refused ($out): stepping with shiftctl set-weight"
	for w in 1 10 50; do
		ctl set-weight web "$w" >/dev/null && say "shiftctl set-weight web $w%"
		[ "$w" = 50 ] || sleep "$HOLD"
	done
fi
say "green at 50 % after $((SECONDS - T_RAMP))s of ramp"
sleep 6

# --- green fails ---------------------------------------------------------------------
rig_backend_mode green1 500 || die "cannot switch green1 to 500"
t_fail=$(now)
say "green1 now answers every request with HTTP 500"
auto=0
# Watch shiftd's log, not `shiftctl status`: a status query occupies shiftd for tens of ms
# and would delay the very reaction being shown.
while awk -v a="$t_fail" -v b="$(now)" 'BEGIN { exit !(b - a < 5) }'; do
	grep -q 'ROLLBACK' "$RIG_DIR/shiftd.log" && { auto=1; break; }
	sleep 0.05
done
[ "$auto" = 1 ] || [ "$(svc rolled_back)" != True ] || auto=1
reason=$(svc last_rollback.reason)
reaction=$(svc last_rollback.reaction_us)
if [ "$auto" = 1 ]; then
	# when it happened, from shiftd's own record (a status query may be slower than that)
	after=$(awk -v a="$t_fail" -v b="$(svc last_rollback.unix_ns)" 'BEGIN { printf "%.0f", (b / 1e9 - a) * 1000 }')
	say "AUTOMATIC ROLLBACK ${after} ms after green1 started failing: $reason"
	say "green weight 0 written ${reaction} us after the sample that crossed the threshold"
	kind="automatic, by shiftd, ${after} ms after green1 started failing: $reason; reaction ${reaction} us (sample -> weight 0 written)"
else
	out=$(ctl rollback --reason "demo: green returns 500" --evict web 2>&1)
	say "no automatic rollback within 5 s: operator ran 'shiftctl rollback web --reason \"demo: green returns 500\" --evict': $out"
	kind="by the operator after 5 s without an automatic one ('shiftctl rollback --evict')"
fi
sleep 6
say "traffic back on blue; tearing down"
sleep 1
end_view

# --- summary ---------------------------------------------------------------------------
summary=$("$RIG_PYTHON" - "$RIG_DIR/rate.cli1.jsonl" "$RIG_DIR/rate.cli2.jsonl" <<'PY'
import json, sys
sent = failed = 0
errs = {}
last = {}
for p in sys.argv[1:]:
    lines = []
    for line in open(p, errors="replace"):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("summary"):
            continue
        lines.append(d)
        sent += d.get("sent", 0)
        failed += d.get("failed", 0)
        for k, v in d.get("errors", {}).items():
            errs[k] = errs.get(k, 0) + v
    for d in lines[-3:]:
        for k, v in d.get("by_backend", {}).items():
            c = "green" if k.startswith("green") else "blue"
            last[c] = last.get(c, 0) + v
n = sum(last.values())
e = ", ".join(f"{k} {v}" for k, v in sorted(errs.items())) or "none"
print(f"{sent} requests sent, {failed} failed ({e}; every HTTP 500 is one that reached a user); last 3 s: "
      f"{100.0 * last.get('blue', 0) / n if n else 0:.1f}% blue of {n}")
PY
)
rig_down # the EXIT trap would too; now, so the time below includes it
echo
echo "demo: rollback $kind"
echo "demo: clients: $summary"
echo "demo: rig torn down; done in $((SECONDS - T0))s"
