#!/bin/bash
# Fleet (issue #17; SPEC "Fleet"): a fleet rollback does on every node what a local one
# does. Keep-alive clients hold connections to blue and green through each of the three
# edges; an operator's `shiftctl rollback --evict` on node 1; nodes 1 and 2 have
# rollback_evict = yes, node 3 rollback_evict = no; each has a notify_command.
#   - nodes 1 and 2 (the origin and a follower): the green keep-alive connections are
#     evicted (one reset or close, then the client reconnects and gets blue), the blue
#     ones are untouched, nothing else fails; after the rollback no request is answered
#     by green;
#   - node 3 (a follower with rollback_evict = no): every connection keeps its backend,
#     green ones too (sticky, as on a lone host), nothing fails; its weight is 0 all
#     the same;
#   - the notify hook ran once, with the service and the reason (SHIFT_REASON is the
#     trigger, "manual" for an operator; SHIFT_DETAIL the text), as on a lone host.
# Figures: stdout and ${OUTPUT:-.output}/fleet_evict.txt. Exit 0 / 77 / 1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

# Each client's check needs a green and a blue connection at weight 50: with 16, all on
# one color up to once in 11,000 runs (three clients); with 24, once in 2.8 million.
CONNS=24
fleet_probe || rig_skip "$FLEET_SKIP_REASON"
fleet_up || fleet_bail "setup: fleet_up failed"
fleet_feature_probe || rig_skip "$FLEET_SKIP_REASON"
fleet_report_open fleet_evict
D=$RIG_DIR
for k in 1 2 3; do
	# the hook: one line per call, from the environment shiftd gives it
	printf '#!/bin/sh\necho "$SHIFT_EVENT|$SHIFT_SERVICE|$SHIFT_REASON|$SHIFT_DETAIL" >>%s\n' "$(fleet_dir "$k")/notify.log" \
		>"$(fleet_dir "$k")/notify.sh"
	chmod 755 "$(fleet_dir "$k")/notify.sh"
	ev=yes
	[ "$k" = 3 ] && ev=no
	fleet_write_config "$k" "web.rollback_evict=$ev" "notify_command=$(fleet_dir "$k")/notify.sh" ||
		fleet_bail "setup: n$k config"
done
for k in 1 2 3; do fleet_start "$k" || fleet_bail "setup: n$k shiftd"; done
for k in 1 2 3; do fleet_wait_connected "$k" 15 || notok "n$k not connected within 15 s"; done
fleet_ctl 1 set-weight web 50 >/dev/null || fleet_bail "setup: set-weight 50"
fleet_wait_all 5 green_weight_bp 5000 || fleet_bail "setup: weights $(fleet_all green_weight_bp)"

# keep-alive clients through every edge
CTL=$D/ka.ctl
echo before >"$CTL"
pids=()
for k in 1 2 3; do
	rig_spawn "$RIG_ID-cli$k" "$D/ka.cli$k.json" "$RIG_PYTHON" "$RIG_CLIENT_PY" keepalive \
		--url "$RIG_URL" --conns "$CONNS" --duration 30 --interval 50 --timeout 2 \
		--control-file "$CTL" --ready-file "$D/ka.cli$k.ready"
	pids+=("$RIG_LAST_PID")
done
for k in 1 2 3; do
	rig_wait 100 0.1 test -e "$D/ka.cli$k.ready" || fleet_bail "keep-alive client cli$k not ready: $(tail -n 3 "$D/ka.cli$k.json")"
done
sleep 1
echo during >"$CTL"
REASON="fleet evict test"
out=$(fleet_ctl 1 rollback web --reason "$REASON" --evict 2>&1) || notok "rollback --evict on n1: $out"
fleet_wait_all 5 rolled_back True || notok "not every node rolled back: $(fleet_all rolled_back)"
sleep 1
echo after >"$CTL"
sleep 2
echo stop >"$CTL"
for p in "${pids[@]}"; do
	for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && rig_kill "$p"
done

for k in 1 2 3; do
	mode=evict
	[ "$k" = 3 ] && mode=keep
	r=$("$RIG_PYTHON" - "$D/ka.cli$k.json" "$mode" <<'PY'
import json, sys
mode = sys.argv[2]
j = None
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            j = json.loads(line)
        except ValueError:
            pass
if j is None:
    print("no JSON from the keep-alive client"); sys.exit(1)
green = lambda w: w.startswith("green")
ng = nb = good_g = good_b = 0
bad = []
for i, s in enumerate(j.get("per_conn", [])):
    seq = [w for w, _ in s]
    if not seq or seq[0].startswith(("!", "#")):
        bad.append((i, seq[:6])); continue
    if green(seq[0]) and mode == "keep":
        ng += 1
        if all(green(w) for w in seq):
            good_g += 1
        else:
            bad.append((i, seq[:8]))
    elif green(seq[0]):
        ng += 1
        k = 0
        while k < len(seq) and green(seq[k]):
            k += 1
        fails = []
        while k < len(seq) and seq[k].startswith("!"):
            fails.append(seq[k]); k += 1
        rest = [w for w in seq[k:] if not w.startswith("#")]
        if len(fails) == 1 and seq[k:k + 1] == ["#reconnect"] and rest and not any(green(w) for w in rest) \
                and not any(w.startswith("!") for w in rest):
            good_g += 1
        else:
            bad.append((i, seq[:8]))
    else:
        nb += 1
        if all(not w.startswith(("!", "#")) and not green(w) for w in seq):
            good_b += 1
        else:
            bad.append((i, seq[:8]))
after = j.get("phases", {}).get("after", {})
ga = sum(v for w, v in after.get("by_backend", {}).items() if green(w))
if mode == "keep":
    ok = not bad and ng > 0 and nb > 0 and ga > 0 and j.get("failed") == 0
    print(f"{good_g}/{ng} green keep-alive connections kept green (not evicted), {good_b}/{nb} blue ones "
          f"untouched; after the rollback {after.get('ok', 0)} answers, {ga} from green; {j.get('failed')} failed"
          + (f"; unexpected: {bad[:3]}" if bad else "") + ("" if ng else " (no green connection at all)"))
    sys.exit(0 if ok else 1)
ok = not bad and ng > 0 and nb > 0 and ga == 0 and after.get("ok", 0) > 0
print(f"{good_g}/{ng} green keep-alive connections evicted (one reset/close, then blue), "
      f"{good_b}/{nb} blue ones untouched; after the rollback {after.get('ok', 0)} answers, {ga} from green; "
      f"{j.get('failed')} failed ({j.get('resets')} resets, {j.get('closed')} closed)"
      + (f"; unexpected: {bad[:3]}" if bad else "") + ("" if ng else " (no green connection at all)"))
sys.exit(0 if ok else 1)
PY
)
	rc=$?
	case $k in 1) who="origin, --evict" ;; 2) who="follower, rollback_evict = yes" ;; *) who="follower, rollback_evict = no" ;; esac
	if [ "$rc" = 0 ]; then ok "n$k ($who): $r"; else notok "n$k ($who): $r"; fi
	fleet_report "n$k: $r"
done

# the notify hook, once per node, with the service and the reason
for k in 1 2 3; do
	f=$(fleet_dir "$k")/notify.log
	rig_wait 30 0.1 test -s "$f"
	n=$(grep -c '^rollback|web|' "$f" 2>/dev/null)
	if [ "${n:-0}" = 1 ] && grep -q "$REASON" "$f"; then
		ok "n$k: notify_command ran once: $(cat "$f")"
	else
		notok "n$k: notify_command log: '$(cat "$f" 2>/dev/null)' (want one 'rollback|web|...$REASON...' line)"
	fi
done
fleet_finish
