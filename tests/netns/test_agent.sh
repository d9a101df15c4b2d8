#!/bin/bash
# shiftd on the namespace rig, as an operator drives it:
#  (a) shiftctl set-weight / rollback / clear / promote change the pinned weight word
#      (read with bpftool) and status --json reports it;
#  (b) set-weight and rollback with shiftd stopped act on the pinned maps and the
#      state file; a restart keeps them, and so does a start after `shiftd --detach`
#      (maps gone: restored from state_dir);
#  (c) kill -9 shiftd and start it again under keep-alive load: the connection table
#      keeps every entry, the XDP programs stay attached (same prog ids), no request
#      fails, no connection resets;
#  (d) upgrade to a rebuilt program (make BPF_EXTRA_CFLAGS=-DSHIFT_UPGRADE_TEST):
#      "replaced (upgrade)", new prog ids on the client interfaces, same flows, no
#      failures;
#  (e) SIGHUP adding blue3: open connections keep their backend, new ones reach
#      blue3, a changed syn_slots keeps the running size and the log says so;
#      SIGHUP with a broken config is refused (file:line in the log) and
#      everything keeps working.
# One keep-alive run (IPv4 and IPv6) spans (c)-(e); each step is a phase of it.
# Exit 0 pass, 77 skipped (a feature probe said no), 1 fail.
# run.sh: alone (its variant build, make -j2, takes both cores during (a)-(c))
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=agent_lib.sh
. "$HERE/agent_lib.sh"
cd "$AGENT_ROOT"

rig_probe || rig_skip "$RIG_SKIP_REASON"
agent_bins
command -v make >/dev/null 2>&1 || rig_skip "missing command: make"

RIG_CLIENTS=2 RIG_BLUE=3 RIG_GREEN=1 RIG_QUIET=1 rig_up
rig_neigh_permanent
t_note "rig $RIG_ID up in $((SECONDS - T_START))s; $RIG_DIR"

# (d)'s variant build runs while (a) and (b) do: in its own session, so that a
# clean-up stops the whole build by its process group.
UPG_OUT=$RIG_DIR/upg
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL setsid make -s -j2 -C "$AGENT_ROOT" OUTPUT="$UPG_OUT" BPF_EXTRA_CFLAGS=-DSHIFT_UPGRADE_TEST \
	"$UPG_OUT/shiftd" >"$RIG_DIR/upg-build.log" 2>&1 </dev/null &
BUILD_PID=$!
rig_on_exit "kill -TERM -- -$BUILD_PID 2>/dev/null || true"

blue12() { # FAMILY: blue1 and blue2 only (blue3 joins at (e))
	local a b
	a=$(rig_backend_addr blue1 "$1") b=$(rig_backend_addr blue2 "$1")
	if [ "$1" = 6 ]; then echo "[$a]:$RIG_BACKEND_PORT, [$b]:$RIG_BACKEND_PORT"; else
		echo "$a:$RIG_BACKEND_PORT, $b:$RIG_BACKEND_PORT"; fi
}
RIG_SVC_BLUE=$(blue12 4) RIG_SVC6_BLUE=$(blue12 6) rig_write_config "$RIG_DIR/shiftd.conf"

# state_field NAME KEY: KEY=VALUE of the service's line in state_dir/state
state_field() {
	sed -n "s/^name=$1 //p" "$RIG_STATE_DIR/state" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# wait_log FILE PATTERN COUNT: until FILE has COUNT lines matching PATTERN (bounded, 10 s)
wait_log() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
LATCH=$((1 << 31))

# ---------------------------------------------------------------------------------
t_section "(a) shiftd on the veths; shiftctl changes and reports the maps"
shiftd_start "$RIG_DIR/shiftd.1.log" || t_bail "shiftd starts"
t_ok "shiftd started (pid $SHIFTD_PID)"
n=$(grep -c 'program attached' "$RIG_DIR/shiftd.1.log") || true
t_expect "programs attached (2 client veths + the backend veth)" "$n" 3
t_note "$(grep -o 'XDP mode [a-z]*' "$RIG_DIR/shiftd.1.log" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
IDS_A=$(xdp_prog_ids)
t_note "XDP prog ids: $IDS_A"
t_expect "status --json: agent_running" "$(status_get web agent_running)" true
t_expect "initial weight word of web (bpftool)" "$(rig_weight_word web)" 0

ctl set-weight web 25 >/dev/null || t_notok "set-weight web 25 exits 0"
t_expect "set-weight web 25: weight word (bpftool)" "$(rig_weight_word web)" 2500
t_expect "set-weight web 25: status --json green_weight_bp" "$(status_get web green_weight_bp)" 2500
t_expect "set-weight web 25: status --json green_weight" "$(status_get web green_weight)" "25%"
ctl rollback web --reason test-agent-a >/dev/null || t_notok "rollback web exits 0"
t_expect "rollback web: weight word latched, 0 bp (bpftool)" "$(rig_weight_word web)" $LATCH
t_expect "rollback web: status --json rolled_back" "$(status_get web rolled_back)" true
t_expect "rollback web: status --json green_weight_bp" "$(status_get web green_weight_bp)" 0
r=$(status_get web last_rollback.reason) || true
case $r in *test-agent-a*) t_ok "rollback web: status --json last_rollback.reason ($r)" ;;
*) t_notok "rollback web: status --json last_rollback.reason: got '$r'" ;; esac
rc=0; ctl set-weight web 30 >/dev/null 2>&1 || rc=$?
t_expect "set-weight web 30 while rolled back: exit" "$rc" 1
ctl clear web >/dev/null || t_notok "clear web exits 0"
t_expect "clear web: weight word (bpftool)" "$(rig_weight_word web)" 0
t_expect "clear web: status --json rolled_back" "$(status_get web rolled_back)" false
ctl promote web >/dev/null || t_notok "promote web exits 0"
t_expect "promote web: weight word (bpftool)" "$(rig_weight_word web)" 10000
ctl set-weight web 50 >/dev/null || t_notok "set-weight web 50 exits 0"
ctl set-weight web6 50 >/dev/null || t_notok "set-weight web6 50 exits 0"
t_expect "set-weight web6 50: weight word (bpftool)" "$(rig_weight_word web6)" 5000
t_expect "set-weight web6 50: status --json green_weight_bp" "$(status_get web6 green_weight_bp)" 5000
# the datapath follows the word: both colors answer at 50 %, over v4 and v6
for u in "$RIG_URL" "$RIG_URL6"; do
	j=$(rig_client_py cli1 new --url "$u" --count 100 --concurrency 8 --deadline 20) || true
	f=$(rig_json_get failed <<<"$j") g=$(rig_json_get by_backend.green1 <<<"$j")
	t_expect "100 new connections to $u at 50 %: failed" "$f" 0
	if [ "$g" -ge 20 ] && [ "$g" -le 80 ]; then t_ok "... green1 got $g of 100"; else
		t_notok "... green1 got $g of 100, want 20..80"; fi
done

# ---------------------------------------------------------------------------------
t_section "(b) set-weight and rollback with shiftd stopped"
shiftd_stop
t_check "shiftd stopped (SIGTERM)" test ! -e "/proc/$SHIFTD_PID"
t_expect "XDP programs stay attached with shiftd stopped" "$(xdp_prog_ids)" "$IDS_A"
t_expect "status --json with shiftd stopped: agent_running" "$(status_get web agent_running)" false
ctl set-weight web 40 >/dev/null || t_notok "set-weight web 40 (shiftd stopped) exits 0"
t_expect "set-weight web 40, shiftd stopped: weight word (bpftool)" "$(rig_weight_word web)" 4000
t_expect "... status --json (from the maps) green_weight_bp" "$(status_get web green_weight_bp)" 4000
t_expect "... state file: web weight" "$(state_field web weight)" 4000
t_expect "... state file: web latched" "$(state_field web latched)" 0
ctl rollback web6 --reason down-b >/dev/null || t_notok "rollback web6 (shiftd stopped) exits 0"
t_expect "rollback web6, shiftd stopped: weight word (bpftool)" "$(rig_weight_word web6)" $LATCH
t_expect "... state file: web6 latched" "$(state_field web6 latched)" 1
t_expect "... state file: web6 weight" "$(state_field web6 weight)" 0
r=$(state_field web6 reason) || true
case $r in *down-b*) t_ok "... state file: web6 reason ($r)" ;;
*) t_notok "... state file: web6 reason: got '$r'" ;; esac

shiftd_start "$RIG_DIR/shiftd.2.log" || t_bail "shiftd restarts"
t_check "restart: the log says the maps were adopted" grep -q 'maps adopted' "$RIG_DIR/shiftd.2.log"
t_expect "restart: web weight word survives (bpftool)" "$(rig_weight_word web)" 4000
t_expect "restart: web status --json green_weight_bp" "$(status_get web green_weight_bp)" 4000
t_expect "restart: web6 latch survives (bpftool)" "$(rig_weight_word web6)" $LATCH
t_expect "restart: web6 status --json rolled_back" "$(status_get web6 rolled_back)" true
r=$(status_get web6 last_rollback.reason) || true
case $r in *down-b*) t_ok "restart: web6 reason survives ($r)" ;;
*) t_notok "restart: web6 reason survives: got '$r'" ;; esac
t_expect "restart: programs kept (same prog ids)" "$(xdp_prog_ids)" "$IDS_A"

# A hung shiftd (SIGSTOP): rollback still writes the map and returns, bounded.
kill -STOP "$SHIFTD_PID"
t0=$SECONDS rc=0
rig_edge timeout 20 "$SHIFTCTL" -c "$RIG_CONFIG" rollback web --reason hung \
	>/dev/null 2>"$RIG_DIR/err" || rc=$?
el=$((SECONDS - t0))
kill -CONT "$SHIFTD_PID"
if [ "$rc" = 0 ] && [ "$el" -le 10 ]; then t_ok "rollback web with shiftd hung (SIGSTOP): exit 0 in ${el}s"; else
	t_notok "rollback web with shiftd hung (SIGSTOP): exit $rc in ${el}s, want 0 in <= 10s [$(head -n 1 "$RIG_DIR/err")]"; fi
t_expect "... weight word latched (bpftool)" "$(rig_weight_word web)" $LATCH
t_expect "... state file: web latched" "$(state_field web latched)" 1
ctl set-weight web 40 --force >/dev/null || t_notok "set-weight web 40 --force"
t_expect "set-weight web 40 --force lifts the latch (bpftool)" "$(rig_weight_word web)" 4000
t_expect "... status --json rolled_back" "$(status_get web rolled_back)" false

# A reboot loses the pins: `shiftd --detach` does the same; the state file remains.
shiftd_stop
rc=0
rig_edge "$SHIFTD" --config "$RIG_CONFIG" --detach >"$RIG_DIR/detach.log" 2>&1 || rc=$?
t_expect "shiftd --detach: exit" "$rc" 0
t_expect "shiftd --detach: no XDP program left" "$(xdp_prog_ids)" ""
t_check "shiftd --detach: maps unpinned" test ! -e "$RIG_BPFFS_DIR/maps/shift_weights"
shiftd_start "$RIG_DIR/shiftd.3.log" || t_bail "shiftd starts after --detach"
t_check "start after --detach: maps created afresh" grep -q 'created and pinned' "$RIG_DIR/shiftd.3.log"
t_expect "start after --detach: web weight from state_dir (bpftool)" "$(rig_weight_word web)" 4000
t_expect "start after --detach: web6 latch from state_dir (bpftool)" "$(rig_weight_word web6)" $LATCH
t_expect "start after --detach: web6 status --json rolled_back" "$(status_get web6 rolled_back)" true
ctl clear web6 >/dev/null || t_notok "clear web6"
ctl set-weight web6 50 >/dev/null || t_notok "set-weight web6 50"
ctl set-weight web 50 >/dev/null || t_notok "set-weight web 50"
t_expect "web and web6 at 50 % for the load below" "$(rig_weight_word web) $(rig_weight_word web6)" "5000 5000"

# ---------------------------------------------------------------------------------
t_section "(c) kill -9 and restart under keep-alive load"
IDS_C=$(xdp_prog_ids)
ka_start cli1 "$RIG_DIR/ka4.json" "$RIG_URL" 16 90 || t_bail "IPv4 keep-alive client ready"
# shellcheck disable=SC2153 # KA_* are set by ka_start
KA4_PID=$KA_PID KA4_CTL=$KA_CTL KA4_LOG=$KA_LOG
ka_start cli2 "$RIG_DIR/ka6.json" "$RIG_URL6" 8 90 || t_bail "IPv6 keep-alive client ready"
KA6_PID=$KA_PID KA6_CTL=$KA_CTL KA6_LOG=$KA_LOG
phase() { printf '%s\n' "$1" >"$KA4_CTL.tmp"; mv -f "$KA4_CTL.tmp" "$KA4_CTL"
	printf '%s\n' "$1" >"$KA6_CTL.tmp"; mv -f "$KA6_CTL.tmp" "$KA6_CTL"; }
phase c-before
t_ok "keep-alive clients up: 16 over IPv4 (cli1), 8 over IPv6 (cli2)"
sleep 0.5
flows_keys shift_flows4 >"$RIG_DIR/f4.c0"
flows_keys shift_flows6 >"$RIG_DIR/f6.c0"
t_expect_ge "shift_flows4 entries before kill -9" "$(wc -l <"$RIG_DIR/f4.c0")" 16
t_expect_ge "shift_flows6 entries before kill -9" "$(wc -l <"$RIG_DIR/f6.c0")" 8
phase c-killed
shiftd_kill9
t_check "kill -9 shiftd (pid $SHIFTD_PID)" test ! -e "/proc/$SHIFTD_PID"
sleep 1
t_expect "shiftd dead: XDP prog ids unchanged" "$(xdp_prog_ids)" "$IDS_C"
shiftd_start "$RIG_DIR/shiftd.4.log" || t_bail "shiftd restarts after kill -9"
phase c-after
n=$(grep -c 'program kept' "$RIG_DIR/shiftd.4.log") || true
t_expect "restart after kill -9: the log says each program was kept" "$n" 3
t_expect "restart after kill -9: XDP prog ids unchanged" "$(xdp_prog_ids)" "$IDS_C"
sleep 1
flows_keys shift_flows4 >"$RIG_DIR/f4.c1"
flows_keys shift_flows6 >"$RIG_DIR/f6.c1"
t_expect "shift_flows4 entries after: every one from before, same backend" \
	"$(comm -23 "$RIG_DIR/f4.c0" "$RIG_DIR/f4.c1" | wc -l) missing of $(wc -l <"$RIG_DIR/f4.c0"), $(wc -l <"$RIG_DIR/f4.c1") now" \
	"0 missing of $(wc -l <"$RIG_DIR/f4.c0"), $(wc -l <"$RIG_DIR/f4.c1") now"
t_expect "shift_flows6 entries after: every one from before, same backend" \
	"$(comm -23 "$RIG_DIR/f6.c0" "$RIG_DIR/f6.c1" | wc -l) missing" "0 missing"
t_expect "the weights after kill -9 and restart (bpftool)" "$(rig_weight_word web) $(rig_weight_word web6)" "5000 5000"

PHASES="c-before c-killed c-after"

# ---------------------------------------------------------------------------------
t_section "(d) upgrade to a rebuilt program"
rc=0
for ((i = 0; i < 1200; i++)); do kill -0 "$BUILD_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$BUILD_PID" 2>/dev/null; then
	echo "# the variant build is still running after 120 s: stopping it" >>"$RIG_DIR/upg-build.log"
	kill -TERM -- -"$BUILD_PID" 2>/dev/null || true
fi
wait "$BUILD_PID" || rc=$?
if [ "$rc" != 0 ] || [ ! -x "$UPG_OUT/shiftd" ]; then
	t_notok "variant build (make OUTPUT=\$RIG_DIR/upg BPF_EXTRA_CFLAGS=-DSHIFT_UPGRADE_TEST): exit $rc"
	sed 's/^/#   /' "$RIG_DIR/upg-build.log" | tail -n 20
else
	t_ok "variant built: make OUTPUT=\$RIG_DIR/upg BPF_EXTRA_CFLAGS=-DSHIFT_UPGRADE_TEST"
	phase d-upgrade
	PHASES+=" d-upgrade d-after"
	IDS_D=$(xdp_prog_ids)
	flows_keys shift_flows4 >"$RIG_DIR/f4.d0"
	flows_keys shift_flows6 >"$RIG_DIR/f6.d0"
	shiftd_stop
	shiftd_start "$RIG_DIR/shiftd.5.log" "$UPG_OUT/shiftd" || t_bail "the variant shiftd starts"
	n=$(grep -c 'client program replaced (upgrade)' "$RIG_DIR/shiftd.5.log") || true
	t_expect "the variant's log: client programs 'replaced (upgrade)'" "$n" 2
	n=$(grep -c 'backend program kept' "$RIG_DIR/shiftd.5.log") || true
	t_expect "the variant's log: the backend program (unchanged) kept" "$n" 1
	IDS_D1=$(xdp_prog_ids)
	t_note "prog ids before: $IDS_D; after: $IDS_D1"
	for ifc in ${RIG_EDGE_CLIENT_IFS//,/ }; do
		b=$(tr ' ' '\n' <<<"$IDS_D" | sed -n "s/^$ifc=//p")
		a=$(tr ' ' '\n' <<<"$IDS_D1" | sed -n "s/^$ifc=//p")
		if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then
			t_ok "$ifc: prog id changed ($b -> $a)"
		else
			t_notok "$ifc: prog id changed: before '$b', after '$a'"
		fi
	done
	phase d-after
	sleep 1
	flows_keys shift_flows4 >"$RIG_DIR/f4.d1"
	flows_keys shift_flows6 >"$RIG_DIR/f6.d1"
	t_expect "upgrade: shift_flows4 entries from before all there, same backend" \
		"$(comm -23 "$RIG_DIR/f4.d0" "$RIG_DIR/f4.d1" | wc -l) missing of $(wc -l <"$RIG_DIR/f4.d0")" \
		"0 missing of $(wc -l <"$RIG_DIR/f4.d0")"
	t_expect "upgrade: shift_flows6 entries from before all there, same backend" \
		"$(comm -23 "$RIG_DIR/f6.d0" "$RIG_DIR/f6.d1" | wc -l) missing" "0 missing"
	j=$(rig_client_py cli2 new --url "$RIG_URL" --count 40 --concurrency 8 --deadline 20) || true
	t_expect "upgrade: 40 new connections through the new program: failed" \
		"$(rig_json_get failed <<<"$j")" 0
fi

# ---------------------------------------------------------------------------------
t_section "(e) SIGHUP: add blue3; then a broken config"
phase e-hup-add
PHASES+=" e-hup-add e-hup-bad"
cat "$RIG_DIR/f4.c0" "$RIG_DIR/f6.c0" >"$RIG_DIR/ka.flows" # the keep-alive connections
t_expect "before the reload, the ring agrees with every keep-alive flow (moved total)" \
	"$(flows_moved "$RIG_DIR/ka.flows")" "0 $(wc -l <"$RIG_DIR/ka.flows")"
# default pools: blue1..blue3; a map size a reload cannot change
rig_write_config "$RIG_DIR/shiftd.conf" syn_slots=8192
grep -q "$(rig_backend_addr blue3):" "$RIG_CONFIG" || t_notok "the new config has blue3"
kill -HUP "$SHIFTD_PID"
LOG=$SHIFTD_LOG
if wait_log "$LOG" 'config reloaded' 1; then t_ok "SIGHUP: 'config reloaded' in the log"; else
	t_notok "SIGHUP: 'config reloaded' in the log"; fi
t_check "SIGHUP, syn_slots changed: the log says the running size stays" \
	grep -q "syn_slots keep their running sizes" "$LOG"
sz=$(rig_edge bpftool -j map show pinned "$RIG_BPFFS_DIR/maps/shift_syns" | rig_json_get max_entries)
t_expect "SIGHUP, syn_slots = 8192: shift_syns keeps its size (bpftool)" "$sz" 32768
b=$(ctl backends web --json | grep -c "$(rig_backend_addr blue3):" || true)
t_expect_ge "shiftctl backends web lists blue3" "$b" 1
read -r moved total < <(flows_moved "$RIG_DIR/ka.flows") || true
t_note "after the reload, $moved of the $total keep-alive flows hash to a slot the ring gave to another backend (blue3); they must stay put"
j=$(rig_client_py cli2 new --url "$RIG_URL" --count 150 --concurrency 8 --deadline 20) || true
t_expect "150 new IPv4 connections after the reload: failed" "$(rig_json_get failed <<<"$j")" 0
t_expect_ge "... of which blue3 answered" "$(rig_json_get by_backend.blue3 <<<"$j")" 1
j=$(rig_client_py cli1 new --url "$RIG_URL6" --count 150 --concurrency 8 --deadline 20) || true
t_expect "150 new IPv6 connections after the reload: failed" "$(rig_json_get failed <<<"$j")" 0
t_expect_ge "... of which blue3 answered" "$(rig_json_get by_backend.blue3 <<<"$j")" 1
sleep 0.5

phase e-hup-bad
cp "$RIG_CONFIG" "$RIG_DIR/shiftd.conf.good"
echo "this line is not valid" >>"$RIG_CONFIG"
BAD_LINE=$(wc -l <"$RIG_CONFIG")
kill -HUP "$SHIFTD_PID"
if wait_log "$LOG" 'reload refused' 1; then
	l=$(grep 'reload refused' "$LOG" | tail -n 1)
	case $l in *"shiftd.conf:$BAD_LINE"*) t_ok "SIGHUP, broken config: refused, log names shiftd.conf:$BAD_LINE" ;;
	*) t_notok "SIGHUP, broken config: log names shiftd.conf:$BAD_LINE: '$l'" ;; esac
else
	t_notok "SIGHUP, broken config: 'reload refused' in the log"
fi
t_check "shiftd still running after the refused reload" kill -0 "$SHIFTD_PID"
rc=0; ctl reload >/dev/null 2>"$RIG_DIR/err" || rc=$?
t_expect "shiftctl reload, broken config: exit" "$rc" 1
t_check "... and names shiftd.conf:$BAD_LINE" grep -q "shiftd.conf:$BAD_LINE" "$RIG_DIR/err"
# (shiftctl reads the config too: give it the good copy, same socket)
b=$(rig_edge "$SHIFTCTL" -c "$RIG_DIR/shiftd.conf.good" backends web --json |
	grep -c "$(rig_backend_addr blue3):" || true)
t_expect_ge "running config kept: backends web still lists blue3" "$b" 1
t_expect "running config kept: weights (bpftool)" "$(rig_weight_word web) $(rig_weight_word web6)" "5000 5000"
j=$(rig_client_py cli2 new --url "$RIG_URL" --count 60 --concurrency 8 --deadline 20) || true
t_expect "60 new connections after the refused reload: failed" "$(rig_json_get failed <<<"$j")" 0
t_expect_ge "... blue3 still gets new connections" "$(rig_json_get by_backend.blue3 <<<"$j")" 1
cp "$RIG_DIR/shiftd.conf.good" "$RIG_CONFIG"
sleep 0.5

# ---------------------------------------------------------------------------------
t_section "keep-alive clients through (c)-(e)"
phase stop
# ka_checks FAMILY LOG PHASES: "ok - ..." / "not ok - ..." lines from the client's JSON
ka_checks() {
	"$RIG_PYTHON" -c '
import json, sys
fam, log, phases = sys.argv[1], sys.argv[2], sys.argv[3].split()
lines = [l for l in open(log) if l.startswith("{")]
if not lines:
    print("not ok - IPv%s keep-alive client printed no JSON" % fam); sys.exit(0)
d = json.loads(lines[-1])
def line(ok, msg):
    print(("ok - " if ok else "not ok - ") + msg)
for name in phases:
    p = d.get("phases", {}).get(name)
    if p is None:
        line(False, "IPv%s keep-alive, phase %s: no requests" % (fam, name))
        continue
    ok = p.get("failed", 0) == 0 and p.get("resets", 0) == 0 and p.get("ok", 0) > 0
    line(ok, "IPv%s keep-alive, phase %s: %d ok, %d failed, %d resets" %
         (fam, name, p.get("ok", 0), p.get("failed", 0), p.get("resets", 0)))
line(d["failed"] == 0 and d["resets"] == 0 and d["closed"] == 0,
     "IPv%s keep-alive overall: %d requests, %d failed, %d resets, %d closed" %
     (fam, d["requests"], d["failed"], d["resets"], d["closed"]))
line(d["connections"] == d["conns"],
     "IPv%s keep-alive: %d TCP connections for %d slots (none reopened)" %
     (fam, d["connections"], d["conns"]))
line(d["changed_backend"] == 0,
     "IPv%s keep-alive: no connection changed backend (%d did); by backend %s" %
     (fam, d["changed_backend"], json.dumps(d["by_backend"], sort_keys=True)))
' "$1" "$2" "$3"
}
for fam in 4 6; do
	if [ $fam = 4 ]; then pid=$KA4_PID log=$KA4_LOG; else pid=$KA6_PID log=$KA6_LOG; fi
	for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && rig_kill "$pid"
	wait "$pid" 2>/dev/null || true
	out=$(ka_checks "$fam" "$log" "$PHASES") || out="not ok - IPv$fam keep-alive: cannot read $log"
	while IFS= read -r l; do
		case $l in
		"ok - "*) t_ok "${l#ok - }" ;;
		"not ok - "*) t_notok "${l#not ok - }" ;;
		esac
	done <<<"$out"
done

t_summary
