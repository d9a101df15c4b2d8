#!/bin/bash
# shellcheck disable=SC2015,SC2034 # "A && ok || notok": ok returns 0; read -r takes every summary field
# Faults of the agent under real load (issue 9), each counted in failed requests and
# lost state. client.py rate (new connections) and keepalive run through every step.
#  A keep-alive client (16 connections) runs through (a), (b) and (c)'s overflow.
#  (a) kill -9 shiftd in a loop (10 rounds; 30 with CHAOS_LONG=1), restarting it each
#      time: no failed request, no reset, every program kept (same prog ids), the
#      keep-alive entries, the weight and a rollback latch (with its reason) survive;
#  (b) SIGHUP with a broken config: refused with file:line, running config kept,
#      traffic unaffected; a good SIGHUP afterwards still reloads;
#  (c) ring buffer overflow: shiftd stopped (SIGSTOP) while a spoofed-SYN flood makes
#      the return path emit a connect sample per SYN-ACK; after SIGCONT the drop
#      counter has moved, no request failed, and an automatic rollback (green answers
#      500) still fires and latches;
#  (d) a full disk under state_dir (a tiny tmpfs, filled): set-weight and rollback
#      still change the datapath, the state write fails cleanly (logged; the old
#      state file intact, no temp file), and once space is freed the next change
#      persists.
# Exit 0 pass, 77 skipped, 1 fail.
# run.sh: alone (its overflow step floods 200k spoofed SYNs while clients keep a rate)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=chaos_lib.sh
. "$HERE/chaos_lib.sh"

ROUNDS=${CHAOS_KILL_ROUNDS:-$([ "$CHAOS_LONG" = 1 ] && echo 30 || echo 10)}
OVERFLOW=${CHAOS_OVERFLOW_SYNS:-$([ "$CHAOS_LONG" = 1 ] && echo 600000 || echo 200000)}

rig_probe || rig_skip "$RIG_SKIP_REASON"
command -v bpftool >/dev/null 2>&1 || rig_skip "missing command: bpftool"
command -v mountpoint >/dev/null 2>&1 || rig_skip "missing command: mountpoint"
chaos_need_synflood

# (d)'s state_dir: a tiny tmpfs, mounted before the rig (this EXIT trap runs after rig_down).
SD=$(mktemp -d "${TMPDIR:-/tmp}/shift-chaos-state.XXXXXX") || exit 1
trap 'umount "$SD" 2>/dev/null || umount -l "$SD" 2>/dev/null; rmdir "$SD" 2>/dev/null' EXIT
mount -t tmpfs -o size=256k,mode=0700 shift-chaos "$SD" || rig_skip "cannot mount a tmpfs"

e2e_up state_dir="$SD"
rig_neigh_permanent || notok "setup: permanent neighbours"
D=$RIG_DIR
chaos_spoof_route || notok "setup: spoofed prefix route"
LATCH=$((1 << 31))
# todo DESC: a known bug (reported, not fixed here): TAP "# TODO", not counted as a failure
todo() { echo "not ok - $* # TODO known bug"; }

state_field() { sed -n "s/^name=$1 //p" "$SD/state" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
xdp_ids() { ip -n "$RIG_NS_EDGE" -d link show | grep -o 'prog/xdp[a-z]* id [0-9]*' | awk '{print $3}' | tr '\n' ' '; }

ctl set-weight web 30 >/dev/null || notok "setup: set-weight web 30"
ctl rollback web6 --reason chaos-latch >/dev/null || notok "setup: rollback web6"
ok "setup: web at 30 %, web6 rolled back (reason chaos-latch); state_dir on a 256 KiB tmpfs"

# --- (a) kill -9 loop -------------------------------------------------------------
t_a=$SECONDS
chaos_ka cli2 "$D/ka.a.json" 16 $((ROUNDS * 3 + 60)) || notok "(a) keep-alive client not ready"
sleep 0.5
flows_of "$CHAOS_KA_SRC" >"$D/ka.flows0"
IDS0=$(xdp_ids)
ka_phase kill9
kept=0 lost=0 maxr=0 sumr=0 changed=0 rfiles=()
# rate runs of at most 10 rounds each (short client runs)
for ((c0 = 1; c0 <= ROUNDS; c0 += 10)); do
	cn=$((ROUNDS - c0 + 1))
	[ "$cn" -le 10 ] || cn=10
	chaos_rate cli1 "$D/rate.a.$c0.json" $((cn * 2 + 3))
	RA=$CHAOS_RATE
	rfiles+=("$D/rate.a.$c0.json")
	sleep 1
	for ((r = c0; r < c0 + cn; r++)); do
		kill -KILL "$E2E_SHIFTD_PID" 2>/dev/null
		{ wait "$E2E_SHIFTD_PID"; } 2>/dev/null
		sleep 0.2
		t0=$(date +%s%N)
		e2e_start_shiftd || { notok "(a) round $r: shiftd did not come back"; break 2; }
		ms=$((($(date +%s%N) - t0) / 1000000))
		sumr=$((sumr + ms))
		[ "$ms" -gt "$maxr" ] && maxr=$ms
		n=$(grep -c 'program kept' "$E2E_SHIFTD_LOG")
		kept=$((kept + n))
		if grep -q 'replaced' "$E2E_SHIFTD_LOG"; then # evidence for a bug report
			note "(a) round $r: a restart of the same binary replaced a program: $(grep 'replaced' "$E2E_SHIFTD_LOG")"
			for id in $IDS0 $(xdp_ids); do
				note "    $(bpftool prog show id "$id" 2>&1 | head -n 1) xlated $(bpftool prog dump xlated id "$id" 2>/dev/null | wc -l) lines"
			done
		fi
		[ "$(xdp_ids)" = "$IDS0" ] || changed=$((changed + 1))
	done
	e2e_wait_pid "$RA" 40 || notok "(a) rate client (rounds $c0-$((c0 + cn - 1))) did not finish"
done
ka_phase after
sleep 1
flows_of "$CHAOS_KA_SRC" >"$D/ka.flows1"
lost=$(comm -23 "$D/ka.flows0" "$D/ka.flows1" | wc -l)
read -r s okc f sk errs byb fsec p99 <<<"$(rate_sum "${rfiles[@]}")"
[ "$f" = 0 ] && [ "$sk" = 0 ] && [ "$s" -gt 0 ] &&
	ok "(a) kill -9 x $ROUNDS: $okc/$s new connections ok, $f failed (errors: $errs; $byb), p99 $p99 ms" ||
	notok "(a) kill -9 x $ROUNDS: $okc/$s ok, $f failed, $sk skipped (errors: $errs)"
[ "$kept" = $((ROUNDS * 3)) ] && [ "$changed" = 0 ] &&
	ok "(a) every restart kept the 3 attached programs (\"program kept\" $kept/$((ROUNDS * 3)), prog ids unchanged: $IDS0)" ||
	notok "(a) \"program kept\" $kept/$((ROUNDS * 3)); rounds with other prog ids: $changed"
ok "(a) restart to ready: mean $((sumr / ROUNDS)) ms, max $maxr ms (the datapath runs on meanwhile)"
[ "$lost" = 0 ] && [ -s "$D/ka.flows1" ] &&
	ok "(a) keep-alive connection-table entries lost: $lost of $(wc -l <"$D/ka.flows0") (bpftool, same backend/hash)" ||
	notok "(a) keep-alive entries lost: $lost of $(wc -l <"$D/ka.flows0")"
w=$(rig_weight_word web) w6=$(rig_weight_word web6)
e2e_snap "$D/a.json"
rs=$(svc "$D/a.json" web6 last_rollback.reason)
[ "$w" = 3000 ] && [ "$w6" = "$LATCH" ] && case $rs in *chaos-latch*) true ;; *) false ;; esac &&
	ok "(a) state after $ROUNDS kills: web weight word $w, web6 latched ($w6), reason '$rs'" ||
	notok "(a) state after the kills: web $w (want 3000), web6 $w6 (want $LATCH), reason '$rs'"
note "(a) took $((SECONDS - t_a))s"

# --- (b) SIGHUP with a broken config ----------------------------------------------
t_b=$SECONDS
cp "$RIG_CONFIG" "$D/good.conf"
chaos_rate cli1 "$D/rate.b.json" 6
RB=$CHAOS_RATE
ka_phase sighup
sleep 1
e2e_snap "$D/b0.json"
sed 's/^\(\[service web\]\)$/\1\nmax_error_rate = 250%/' "$D/good.conf" >"$D/bad.conf"
line=$(grep -n '^max_error_rate = 250%' "$D/bad.conf" | cut -d: -f1)
cp "$D/bad.conf" "$RIG_CONFIG"
kill -HUP "$E2E_SHIFTD_PID"
if wait_log "$E2E_SHIFTD_LOG" 'reload refused' 1 5; then
	msg=$(grep 'reload refused' "$E2E_SHIFTD_LOG" | tail -n 1)
	case $msg in *"$RIG_CONFIG:$line:"*) ok "(b) broken config refused with file:line: ${msg#*: }" ;;
	*) notok "(b) refusal does not name $RIG_CONFIG:$line: $msg" ;; esac
else
	notok "(b) no 'reload refused' in the log after SIGHUP with a broken config"
fi
cp "$D/good.conf" "$RIG_CONFIG"
kill -0 "$E2E_SHIFTD_PID" 2>/dev/null && ok "(b) shiftd still running" || notok "(b) shiftd died on a broken SIGHUP"
e2e_snap "$D/b1.json"
[ "$(svc "$D/b1.json" web green_weight_bp)" = 3000 ] && [ "$(svc "$D/b1.json" web6 rolled_back)" = True ] &&
	ok "(b) running config and state kept (web 3000 bp, web6 latched)" || notok "(b) state changed by a refused reload"
kill -HUP "$E2E_SHIFTD_PID"
wait_log "$E2E_SHIFTD_LOG" 'config reloaded' 1 5 && ok "(b) a good config reloads afterwards (SIGHUP)" ||
	notok "(b) no 'config reloaded' after SIGHUP with the good config"
e2e_wait_pid "$RB" 20 || notok "(b) rate client did not finish"
read -r s okc f sk errs byb fsec p99 <<<"$(rate_sum "$D/rate.b.json")"
[ "$f" = 0 ] && [ "$sk" = 0 ] && [ "$s" -gt 0 ] && ok "(b) traffic across both SIGHUPs: $okc/$s ok, $f failed" ||
	notok "(b) traffic across the SIGHUPs: $okc/$s ok, $f failed (errors: $errs)"
note "(b) took $((SECONDS - t_b))s"

# --- (c) ring buffer overflow ------------------------------------------------------
t_c=$SECONDS
ka_phase overflow
e2e_snap "$D/c0.json"
chaos_rate cli2 "$D/rate.c.json" $((OVERFLOW / CHAOS_PPS + 5))
RC=$CHAOS_RATE
sleep 0.5
kill -STOP "$E2E_SHIFTD_PID"
ts=$(date +%s%N)
chaos_flood "$OVERFLOW" "$D/flood.c.json" || notok "(c) synflood failed: $(cat "$D/flood.c.json")"
stopped=$((($(date +%s%N) - ts) / 1000000))
kill -CONT "$E2E_SHIFTD_PID"
e2e_wait_pid "$RC" 30 || notok "(c) rate client did not finish"
sleep 1
e2e_snap "$D/c1.json" || notok "(c) shiftctl status after SIGCONT"
rd=$(($(dp "$D/c1.json" ringbuf_dropped) - $(dp "$D/c0.json" ringbuf_dropped)))
ed=$(($(dp "$D/c1.json" errbuf_dropped) - $(dp "$D/c0.json" errbuf_dropped)))
[ "$rd" -gt 0 ] && ok "(c) shiftd stopped for ${stopped} ms under $OVERFLOW spoofed SYNs: ringbuf_dropped +$rd samples, errbuf_dropped +$ed" ||
	notok "(c) ringbuf_dropped +$rd after ${stopped} ms stopped under $OVERFLOW SYNs (want > 0)"
# The rings' drops by service, color and kind: in one file, they add up to the
# rings' drop counters, and the overflow's are there.
lost_sum() { "$RIG_PYTHON" - "$RIG_TEXTFILE_DIR/shift.prom" <<'PY'
import re, sys
lost, dropped, rows = 0, 0, []
for line in open(sys.argv[1]):
    m = re.match(r'shift_samples_lost_total\{(.*)\} (\d+)$', line)
    if m:
        lost += int(m.group(2))
        if int(m.group(2)):
            rows.append("%s=%s" % (re.sub(r'[a-z]+="([^"]*)"', r'\1', m.group(1)).replace(",", "/"), m.group(2)))
    m = re.match(r'shift_ringbuf_dropped_total\{ring="(samples|errors)"\} (\d+)$', line)
    if m:
        dropped += int(m.group(2))
print(lost, dropped, " ".join(rows))
sys.exit(0 if lost > 0 and lost == dropped else 1)
PY
}
if rig_wait 20 0.25 lost_sum >/dev/null 2>&1; then
	ok "(c) shift_samples_lost_total adds up to the rings' drops: $(lost_sum)"
else
	notok "(c) shift_samples_lost_total (sum, rings' drops, rows): $(lost_sum 2>&1)"
fi
read -r s okc f sk errs byb _ p99 <<<"$(rate_sum "$D/rate.c.json")"
# The 200k spoofed SYNs are forwarded to the backends like any SYN (stateless):
# a real SYN may die in a veth queue beside them, or meet a backend's own SYN-flood
# defence (full SYN backlog, SYN cookies) and be reset. test_synflood.sh allows
# 1 % for it. A connect timeout or a reset or two is the flood's, not the agent's;
# any other failure, or more than 1 %, fails.
if [ "$sk" = 0 ] && [ "$s" -gt 0 ] &&
	{ [ "$f" = 0 ] || { [ $((f * 100)) -le "$s" ] &&
		[[ $errs =~ ^((connect_timeout|reset)=[0-9]+,?)+$ ]]; }; }; then
	ok "(c) traffic with the agent stopped and the ring overflowing: $okc/$s ok, $f failed (errors: $errs; allowed: connect timeouts and resets <= 1 %), p99 $p99 ms"
else
	notok "(c) traffic during the overflow: $okc/$s ok, $f failed (errors: $errs)"
fi
note "(c) backend errors during the overflow: $("$RIG_PYTHON" -c '
import json, sys
def be(p):
    return {b["backend"]: b for s in json.load(open(p))["services"] if s["service"] == "web" for b in s["backends"]}
a, b = be(sys.argv[1]), be(sys.argv[2])
out = []
for k, x in sorted(b.items()):
    d = {e: v - a.get(k, {}).get("errors_by_kind", {}).get(e, 0) for e, v in x["errors_by_kind"].items()}
    d = {e: v for e, v in d.items() if v}
    col, ls = x["color"], x["latency_samples"] - a.get(k, {}).get("latency_samples", 0)
    out.append(f"{k} ({col}) errors {d or 0}, {ls} latency samples")
print("; ".join(out))' "$D/c0.json" "$D/c1.json"); last rollback: $(svc "$D/c1.json" web last_rollback.reason)"
kill -0 "$E2E_SHIFTD_PID" 2>/dev/null && [ "$(svc "$D/c1.json" web rolled_back)" = False ] &&
	ok "(c) after SIGCONT: shiftd running, answering, no spurious rollback" ||
	notok "(c) after SIGCONT: shiftd alive? rolled_back=$(svc "$D/c1.json" web rolled_back)"
# the keep-alive client across (a), (b) and the overflow (green answers 500 next)
ka_phase stop
e2e_wait_pid "$CHAOS_KA" 20 || notok "keep-alive client did not stop"
read -r kc kconn kreq kf kres kchg kerr kbyb <<<"$(ka_sum "$D/ka.a.json")"
[ "$kf" = 0 ] || note "keep-alive failures by phase: $("$RIG_PYTHON" -c 'import json,sys; j=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]; print({k: v["failed"] for k, v in j["phases"].items()})' "$D/ka.a.json")"
[ "$kres" = 0 ] && [ "$kchg" = 0 ] && [ "$kconn" = "$kc" ] &&
	ok "keep-alive through (a), (b), (c) overflow: $kc connections, $kreq requests, $kf failed ($kerr), $kres resets, $kchg changed backend, $kconn TCP connections ($kbyb)" ||
	notok "keep-alive through (a), (b), (c) overflow: $kc conns, $kconn TCP connections, $kreq requests, $kf failed ($kerr), $kres resets, $kchg changed backend"
# an automatic rollback still works: green answers 500
ctl set-weight web 50 >/dev/null || notok "(c) set-weight web 50"
rig_backend_mode green1 500
chaos_client cli2 "$D/new.c.json" new --url "$RIG_URL" --count 200 --concurrency 4 --deadline 40
e2e_wait_pid "$E2E_PID" 40 || notok "(c) client did not finish"
e2e_snap "$D/c2.json"
rb=$(svc "$D/c2.json" web rolled_back) why=$(svc "$D/c2.json" web last_rollback.reason)
us=$(svc "$D/c2.json" web last_rollback.reaction_us)
g5=$(e2e_py get "$D/new.c.json" by_status.500)
[ "$rb" = True ] && [ "$(rig_weight_word web)" = "$LATCH" ] &&
	ok "(c) automatic rollback after the overflow: reason '$why', reaction $us us, $g5 answers 500 reached the client" ||
	notok "(c) no automatic rollback after the overflow (rolled_back $rb, reason '$why')"
rig_backend_mode green1 ok
note "(c) took $((SECONDS - t_c))s"

# --- (d) full disk under state_dir ------------------------------------------------------
t_d=$SECONDS
ctl clear web >/dev/null || notok "(d) clear web"
ctl set-weight web 20 >/dev/null || notok "(d) set-weight web 20"
[ "$(state_field web weight)" = 2000 ] || notok "(d) state file: web weight $(state_field web weight), want 2000"
cp "$SD/state" "$D/state.before"
dd if=/dev/zero of="$SD/fill" bs=4k >/dev/null 2>&1
fr=$(df --output=avail -B1 "$SD" | tail -n 1 | tr -d ' ')
chaos_rate cli1 "$D/rate.d.json" 5
RD=$CHAOS_RATE
nerr0=$(grep -c 'state not saved' "$E2E_SHIFTD_LOG")
rc=0
out=$(ctl set-weight web 40 2>&1) || rc=$?
w=$(rig_weight_word web)
sleep 0.3
nerr=$(($(grep -c 'state not saved' "$E2E_SHIFTD_LOG") - nerr0))
msg=$(grep 'state not saved' "$E2E_SHIFTD_LOG" | tail -n 1)
tmps=$(find "$SD" -name 'state.tmp*' | wc -l)
[ "$w" = 4000 ] && ok "(d) disk full ($fr bytes free): set-weight web 40 reached the datapath (weight word $w); shiftctl exit $rc: ${out:-(no output)}" ||
	notok "(d) disk full: set-weight web 40: weight word $w (exit $rc: $out)"
[ "$nerr" -ge 1 ] && ok "(d) the failed state write is logged: ${msg#*: }" || notok "(d) no 'state not saved' in shiftd's log"
cmp -s "$SD/state" "$D/state.before" && [ "$tmps" = 0 ] &&
	ok "(d) nothing half-written: the old state file intact (weight=$(state_field web weight)), $tmps temp files" ||
	notok "(d) state file changed or temp file left ($tmps): $(ls -la "$SD")"
rc=0
ctl rollback web --reason disk-full >/dev/null 2>&1 || rc=$?
[ "$(rig_weight_word web)" = "$LATCH" ] && ok "(d) rollback with the disk full: latched in the map (exit $rc)" ||
	notok "(d) rollback with the disk full: weight word $(rig_weight_word web) (exit $rc)"
e2e_wait_pid "$RD" 20 || notok "(d) rate client did not finish"
read -r s okc f sk errs byb _ p99 <<<"$(rate_sum "$D/rate.d.json")"
[ "$f" = 0 ] && [ "$s" -gt 0 ] && ok "(d) traffic with the disk full: $okc/$s ok, $f failed ($byb)" ||
	notok "(d) traffic with the disk full: $okc/$s ok, $f failed (errors: $errs)"
rm -f "$SD/fill"
# With space back and no further change, the unsaved rollback should reach the state
# file (else a reboot now would restore weight 2000 and drop the latch).
sleep 3
if [ "$(state_field web latched)" = 1 ]; then
	ok "(d) space freed: the unsaved rollback is persisted without a further change (latched=1)"
else
	notok "(d) space freed, 3 s, no further change: the state file still says weight=$(state_field web weight) latched=$(state_field web latched) while the map is latched: the failed state write was not retried (a reboot now would drop the rollback latch)"
fi
ctl clear web >/dev/null || notok "(d) clear web after freeing space"
ctl set-weight web 45 >/dev/null || notok "(d) set-weight web 45 after freeing space"
sleep 0.2
[ "$(state_field web weight)" = 4500 ] && [ "$(state_field web latched)" = 0 ] &&
	ok "(d) space freed: the next change persists (state file weight=$(state_field web weight), latched=0)" ||
	notok "(d) after freeing space: state file weight=$(state_field web weight) latched=$(state_field web latched), want 4500/0"
note "(d) took $((SECONDS - t_d))s"

e2e_finish
