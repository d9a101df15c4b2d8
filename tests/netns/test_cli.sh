#!/bin/bash
# shiftctl's contract on a live rig: every error path exits with the documented
# code (1 failed operation, 2 bad usage), names what was wrong, and changes no
# pinned map; the accepted weight spellings write the right basis points.
#
# "No map changed" compares a snapshot of every pinned map (mapsnap.py: what
# `bpftool map dump pinned` shows, per map, per-CPU counters included: no
# traffic runs during this test) taken before and after each bad invocation.
# Exit 0 pass, 77 skipped (a feature probe said no), 1 fail.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=agent_lib.sh
. "$HERE/agent_lib.sh"
cd "$AGENT_ROOT"

rig_probe || rig_skip "$RIG_SKIP_REASON"
agent_bins

RIG_CLIENTS=1 RIG_BLUE=1 RIG_GREEN=1 RIG_QUIET=1 rig_up
# No ARP/ND while we compare maps: shiftd caches next hops in shift_backends.
rig_neigh_permanent
rig_write_config "$RIG_DIR/shiftd.conf"
t_note "rig $RIG_ID up; config $RIG_CONFIG"
shiftd_start "$RIG_DIR/shiftd.log" || t_bail "shiftd starts on the rig"
t_ok "shiftd started (pid $SHIFTD_PID)"

S=$RIG_DIR/snap
snap_n=0
# settle: the maps stop changing once shiftd has written config, rings and next hops
maps_snap "$S.base"
stable=0
for ((i = 0; i < 20; i++)); do
	sleep 0.2
	maps_snap "$S.next"
	if maps_diff "$S.base" "$S.next" >/dev/null; then
		stable=1
		break
	fi
	mv -f "$S.next" "$S.base"
done
[ "$stable" = 1 ] || t_bail "the pinned maps settle after shiftd's start"
t_ok "the pinned maps are stable with no traffic"
# The per-case snapshots read the rings of the configured services only (the whole
# whole array, 256 services, is read once): the whole of it is compared start to end.
MAPSNAP_FULL=1 maps_snap "$S.full.start"

# Start from a weight that is not the default, so "unchanged" means something.
ctl set-weight web 10 >/dev/null || t_bail "set-weight web 10"
ctl set-weight web6 10 >/dev/null || t_bail "set-weight web6 10"
maps_snap "$S.base"

# bad WANT_RC DESC -- SHIFTCTL-ARGS...: run shiftctl (in the edge netns, no implicit -c),
# check its exit code, that it said something on stderr, and that no map changed.
bad() {
	local want=$1 desc=$2 rc=0 msg d
	shift 3
	rig_edge "$SHIFTCTL" "$@" >"$RIG_DIR/out" 2>"$RIG_DIR/err" </dev/null || rc=$?
	msg=$(grep -v "^Try 'shiftctl --help'" "$RIG_DIR/err" | head -n 1)
	snap_n=$((snap_n + 1))
	maps_snap "$S.after"
	d=$(maps_diff "$S.base" "$S.after") || true
	if [ "$rc" != "$want" ]; then
		t_notok "$desc: exit $rc, want $want [${msg:-no message}]"
	elif [ -n "$d" ]; then
		t_notok "$desc: exit $rc but the maps changed: $(echo "$d" | head -n 3 | tr '\n' ';')"
	elif [ -z "$msg" ]; then
		t_notok "$desc: exit $rc, maps unchanged, but no message on stderr"
	else
		t_ok "$desc: exit $rc, maps unchanged [$msg]"
	fi
	mv -f "$S.after" "$S.base"
}
C=(-c "$RIG_CONFIG")

t_section "set-weight: weights that are not weights (exit 2)"
for w in 150 100.01 -1 abc 1e3 '50%%' '' 0.001% ' 25' '25 %' +5 0x10 inf 25.5.5 '.5' '5.' '%'; do
	bad 2 "set-weight web '$w'" -- "${C[@]}" set-weight web "$w"
done
t_section "usage errors (exit 2)"
bad 2 "set-weight web (missing WEIGHT)" -- "${C[@]}" set-weight web
bad 2 "set-weight (missing SERVICE WEIGHT)" -- "${C[@]}" set-weight
bad 2 "set-weight web 25 30 (extra argument)" -- "${C[@]}" set-weight web 25 30
bad 2 "set-weight web 25 --evict (option it does not take)" -- "${C[@]}" set-weight web 25 --evict
bad 2 "set-weight web 25 --json" -- "${C[@]}" set-weight web 25 --json
bad 2 "set-weight web 25 --reason x" -- "${C[@]}" set-weight web 25 --reason x
bad 2 "set-weight web 25 --bogus (unknown option)" -- "${C[@]}" set-weight web 25 --bogus
bad 2 "--bogus status (unknown global option)" -- --bogus "${C[@]}" status
bad 2 "frobnicate web (unknown command)" -- "${C[@]}" frobnicate web
bad 2 "(no command)" -- "${C[@]}"
bad 2 "-c (missing FILE)" -- -c
bad 2 "rollback (missing SERVICE)" -- "${C[@]}" rollback
bad 2 "rollback web web6 (extra argument)" -- "${C[@]}" rollback web web6
bad 2 "rollback web --force (option it does not take)" -- "${C[@]}" rollback web --force
bad 2 "rollback web --reason '' (empty reason)" -- "${C[@]}" rollback web --reason ''
bad 2 "rollback web --reason <101 chars>" -- "${C[@]}" rollback web --reason "$(printf 'x%.0s' {1..101})"
bad 2 "clear (missing SERVICE)" -- "${C[@]}" clear
bad 2 "clear web --force" -- "${C[@]}" clear web --force
bad 2 "status web web6 (extra argument)" -- "${C[@]}" status web web6
bad 2 "status --evict" -- "${C[@]}" status --evict
bad 2 "promote web 50 (extra argument)" -- "${C[@]}" promote web 50
bad 2 "ramp web 1,x,10 --hold 1s (bad steps)" -- "${C[@]}" ramp web 1,x,10 --hold 1s
bad 2 "ramp web 10,5 --hold 1s (steps going down)" -- "${C[@]}" ramp web 10,5 --hold 1s
bad 2 "ramp web 1,,5 --hold 1s (empty step)" -- "${C[@]}" ramp web 1,,5 --hold 1s
bad 2 "ramp web 1,150 --hold 1s (step above 100 %)" -- "${C[@]}" ramp web 1,150 --hold 1s
bad 2 "ramp web 1,5,10 (missing --hold)" -- "${C[@]}" ramp web 1,5,10
bad 2 "ramp web 1,5 --hold soon (bad duration)" -- "${C[@]}" ramp web 1,5 --hold soon
bad 2 "ramp web 1,5 --hold 10 (duration without unit)" -- "${C[@]}" ramp web 1,5 --hold 10
bad 2 "ramp web 1,5 --hold -1s (negative duration)" -- "${C[@]}" ramp web 1,5 --hold -1s
bad 2 "ramp web (missing STEPS)" -- "${C[@]}" ramp web --hold 1s
bad 2 "set-weight <70-char service name>" -- "${C[@]}" set-weight "$(printf 's%.0s' {1..70})" 25
bad 2 "which web (missing ADDR)" -- "${C[@]}" which web
bad 2 "which web 10.0.0.5 x (extra argument)" -- "${C[@]}" which web 10.0.0.5 x
bad 2 "which web not-an-address" -- "${C[@]}" which web not-an-address
bad 2 "which web 198.18.1.2:70000 (port out of range)" -- "${C[@]}" which web 198.18.1.2:70000
bad 2 "which web 2001:db8::5 (family differs from the VIP's)" -- "${C[@]}" which web 2001:db8::5
bad 2 "which web 198.18.1.2 --force" -- "${C[@]}" which web 198.18.1.2 --force

t_section "failed operations (exit 1)"
bad 1 "set-weight nosuch 25 (unknown service)" -- "${C[@]}" set-weight nosuch 25
bad 1 "rollback nosuch (unknown service)" -- "${C[@]}" rollback nosuch
bad 1 "clear nosuch (unknown service)" -- "${C[@]}" clear nosuch
bad 1 "promote nosuch (unknown service)" -- "${C[@]}" promote nosuch
bad 1 "status nosuch (unknown service)" -- "${C[@]}" status nosuch
bad 1 "backends nosuch (unknown service)" -- "${C[@]}" backends nosuch
bad 1 "ramp nosuch 1,5 --hold 1s (unknown service)" -- "${C[@]}" ramp nosuch 1,5 --hold 1s
bad 1 "which nosuch 198.18.1.2 (unknown service)" -- "${C[@]}" which nosuch 198.18.1.2
bad 1 "-c /nonexistent set-weight web 25 (no config file)" -- -c "$RIG_DIR/nonexistent.conf" set-weight web 25
bad 1 "-c /nonexistent status" -- -c "$RIG_DIR/nonexistent.conf" status
printf '[global]\nthis is not a key\n' >"$RIG_DIR/broken.conf"
bad 1 "-c broken.conf set-weight web 25 (bad config line)" -- -c "$RIG_DIR/broken.conf" set-weight web 25
if grep -q 'broken.conf:2' "$RIG_DIR/err"; then t_ok "the message names broken.conf:2"; else
	t_notok "the message names broken.conf:2: $(head -n 1 "$RIG_DIR/err")"; fi

t_section "an answer that cannot be written is a failure"
# A script reading status --json from a file on a full disk must not see exit 0.
rc=0
ctl status --json >/dev/full 2>"$RIG_DIR/err" || rc=$?
if [ "$rc" = 1 ] && grep -q 'write error on standard output' "$RIG_DIR/err"; then
	t_ok "status --json > /dev/full: exit 1, $(head -n 1 "$RIG_DIR/err")"
else
	t_notok "status --json > /dev/full: exit $rc (want 1): $(head -n 1 "$RIG_DIR/err")"
fi

t_section "a status for an unknown service keeps no memory in shiftd"
# Each status builds a 17 MB model of all 256 services; one for a name that is
# not there used to return without freeing it (a monitoring check still asking
# about a removed service grew shiftd by that much a call). VmSize, not VmRSS:
# calloc's fresh pages stay untouched, so the leak shows in the address space.
vm_kb() { awk '/^VmSize:/ { print $2 }' "/proc/$SHIFTD_PID/status"; }
ctl status >/dev/null || t_bail "status"
ctl status --json >/dev/null || t_bail "status --json"
vm0=$(vm_kb)
for ((i = 0; i < 20; i++)); do
	ctl status nosuch >/dev/null 2>&1 || true
	ctl status nosuch --json >/dev/null 2>&1 || true
done
vm1=$(vm_kb)
if [ $((vm1 - vm0)) -lt 65536 ]; then
	t_ok "40 statuses of an unknown service: shiftd's VmSize ${vm0} -> ${vm1} kB"
else
	t_notok "40 statuses of an unknown service: shiftd's VmSize ${vm0} -> ${vm1} kB (grew $(((vm1 - vm0) / 1024)) MB)"
fi

t_section "a rolled-back service refuses set-weight without --force"
ctl rollback web --reason "test_cli" >/dev/null || t_notok "rollback web"
t_expect "rollback web: weight word latched, 0 bp (bpftool)" "$(rig_weight_word web)" $((1 << 31))
maps_snap "$S.base"
bad 1 "set-weight web 30 while rolled back" -- "${C[@]}" set-weight web 30
bad 1 "promote web while rolled back" -- "${C[@]}" promote web
t_expect "the latch is kept (bpftool weight word)" "$(rig_weight_word web)" $((1 << 31))
t_expect "the latch is kept (status --json rolled_back)" "$(status_get web rolled_back)" true
t_expect "status --json green_weight_bp" "$(status_get web green_weight_bp)" 0
ctl clear web >/dev/null || t_notok "clear web"
t_expect "clear web: latch lifted, weight 0 (bpftool)" "$(rig_weight_word web)" 0

t_section "accepted weights (exit 0) and the basis points they write"
# The comparison is not blind: a good set-weight shows up as exactly one changed word.
maps_snap "$S.base"
ctl set-weight web 7 >/dev/null || t_notok "set-weight web 7"
maps_snap "$S.after"
d=$(maps_diff "$S.base" "$S.after") || true
want="shift_weights: key $(printf '%02x000000' "$(rig_svc_id web)"): 00000000 -> bc020000"
t_expect "the snapshots see set-weight web 7 as one changed word, nothing else" "$d" "$want"
for pair in 25:2500 25%:2500 0.5%:50 0.01%:1 100:10000 0:0 '99.99%:9999' '12.3:1230'; do
	w=${pair%:*} want=${pair##*:} rc=0
	ctl set-weight web "$w" >"$RIG_DIR/out" 2>"$RIG_DIR/err" || rc=$?
	if [ "$rc" != 0 ]; then
		t_notok "set-weight web $w: exit $rc [$(head -n 1 "$RIG_DIR/err")]"
		continue
	fi
	t_expect "set-weight web $w -> shift_weights word (bpftool)" "$(rig_weight_word web)" "$want"
	t_expect "set-weight web $w -> status --json green_weight_bp" \
		"$(status_get web green_weight_bp)" "$want"
done
t_expect "web6 untouched by web's changes (bpftool)" "$(rig_weight_word web6)" 1000

t_section "a rollback written while set-weight or a reload runs stays"
# set-weight reads the word, asks shiftd's shadow gate (green from 0), then writes. With
# shiftd stopped (SIGSTOP, its pid) the question waits; a rollback written meanwhile, as
# shiftd's trigger writes it (bpftool), must not be overwritten by set-weight's write.
ctl set-weight web 0 >/dev/null || t_notok "set-weight web 0"
kill -STOP "$SHIFTD_PID"
nsenter --net="/run/netns/$(rig_ns edge)" -- "$SHIFTCTL" -c "$RIG_CONFIG" set-weight web 30 \
	>"$RIG_DIR/out" 2>"$RIG_DIR/err" </dev/null &
ctl_pid=$!
# its question is out once it holds a socket (the word was read before)
for ((i = 0; i < 50; i++)); do
	ls -l "/proc/$ctl_pid/fd" 2>/dev/null | grep -q 'socket:' && break
	sleep 0.1
done
latch_rc=0
rig_weight_word_set web $((1 << 31)) || latch_rc=$?
kill -CONT "$SHIFTD_PID"
rc=0
wait "$ctl_pid" || rc=$?
msg=$(head -n 1 "$RIG_DIR/err")
want="shiftctl: service web: the weight changed while this command ran (rolled back now); this host's map was not written"
if [ "$latch_rc" = 0 ] && [ "$rc" = 1 ] && [ "$msg" = "$want" ]; then
	t_ok "set-weight web 30 over a rollback written after its read: exit 1, '$msg'"
else
	t_notok "set-weight web 30 over a rollback written after its read: latch write $latch_rc, exit $rc, '$msg' (waited $i x 0.1 s for its socket)"
fi
t_expect "the rollback stays (bpftool weight word)" "$(rig_weight_word web)" $((1 << 31))
ctl clear web >/dev/null || t_notok "clear web"
# A reload between shiftctl's map write and its sync (which follows the eviction and
# the etcd write) rewrites every service's word; a rollback written there must stay.
ctl set-weight web 10 >/dev/null || t_notok "set-weight web 10"
rig_weight_word_set web $((1 << 31)) || t_notok "write the latch with bpftool"
out=$(ctl reload 2>&1) || t_notok "reload: $out"
t_expect "reload says it was done" "$out" "shiftd: config reloaded"
t_expect "a reload after a rollback whose sync has not come: the latch stays (bpftool)" \
	"$(rig_weight_word web)" $((1 << 31))
t_expect "... and shiftd reads it back (status --json rolled_back)" "$(status_get web rolled_back)" true
ctl clear web >/dev/null || t_notok "clear web"

t_section "a config being edited: shiftctl acts on what runs (shiftd running)"
# An operator mid-edit of the config: web6's section moved first (a service id taken
# from the file would now be web6's), a typo there (the file's first error) and an
# unknown key in web's. shiftd runs on its last good config; the emergency commands
# must act on it, warning which line is broken.
EDIT_CONF=$RIG_DIR/editing.conf
"$RIG_PYTHON" - "$RIG_CONFIG" "$EDIT_CONF" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
head, web, web6 = re.split(r"(?m)^(?=\[service )", text)
web6 = web6.replace("[service web6]\n", "[service web6]\nmax_error_rate = 5\n", 1)
open(sys.argv[2], "w").write(head + web6.rstrip("\n") + "\n\n" + web.rstrip("\n") + "\nbogus_key = 1\n")
PY
EDIT_ERR="$EDIT_CONF:$(grep -n '^max_error_rate = 5$' "$EDIT_CONF" | cut -d: -f1): max_error_rate"
# edited WANT_RC DESC -- SHIFTCTL-ARGS...: shiftctl with the config being edited (in the
# edge netns): its exit code, and the warning naming the file's first error.
edited() {
	local want=$1 desc=$2 rc=0
	shift 3
	rig_edge "$SHIFTCTL" -c "$EDIT_CONF" "$@" >"$RIG_DIR/out" 2>"$RIG_DIR/err" </dev/null || rc=$?
	if [ "$rc" != "$want" ]; then
		t_notok "$desc: exit $rc, want $want [$(head -n 3 "$RIG_DIR/err" | tr '\n' ' ')]"
	elif ! grep -qF "shiftctl: warning: the config does not load: $EDIT_ERR" "$RIG_DIR/err"; then
		t_notok "$desc: exit $rc, no warning naming $EDIT_ERR [$(head -n 1 "$RIG_DIR/err")]"
	else
		t_ok "$desc: exit $rc [$(head -n 1 "$RIG_DIR/err")]"
	fi
}
# err_has TEXT DESC: the last shiftctl's stderr says TEXT.
err_has() {
	if grep -qF -- "$1" "$RIG_DIR/err"; then t_ok "$2"; else
		t_notok "$2: no '$1' in [$(tr '\n' ' ' <"$RIG_DIR/err")]"; fi
}
ctl set-weight web 10 >/dev/null || t_notok "set-weight web 10"
ctl set-weight web6 10 >/dev/null || t_notok "set-weight web6 10"
edited 0 "rollback web --reason mid-edit, the file broken" -- rollback web --reason mid-edit
t_expect "... web's weight word latched (bpftool)" "$(rig_weight_word web)" $((1 << 31))
t_expect "... web6, first in the file, untouched (bpftool)" "$(rig_weight_word web6)" 1000
t_expect "... shiftd took it (status --json last_rollback.reason)" \
	"$(status_get web last_rollback.reason)" "manual: mid-edit"
edited 0 "status --json, the file broken" -- status --json
t_expect "... shiftd's answer (agent_running)" "$("$RIG_PYTHON" -c '
import json, sys
print(str(json.load(sys.stdin)["agent_running"]).lower())' <"$RIG_DIR/out")" true
edited 0 "clear web, the file broken" -- clear web
t_expect "... latch lifted (bpftool)" "$(rig_weight_word web)" 0
edited 0 "set-weight web 20, the file broken" -- set-weight web 20
t_expect "... shift_weights word (bpftool)" "$(rig_weight_word web)" 2000
t_expect "... shiftd took it (status --json green_weight_bp)" "$(status_get web green_weight_bp)" 2000
edited 0 "backends web --json, the file broken" -- backends web --json
maps_snap "$S.base"
bad 1 "reload, the file broken" -- -c "$EDIT_CONF" reload
err_has "$EDIT_ERR" "... the refusal names the broken line"
err_has "not reloaded" "... and says nothing was reloaded"
t_expect "... shiftd runs on (status --json agent_running)" "$(status_get web agent_running)" true
bad 1 "set-weight nosuch 25, the file broken" -- -c "$EDIT_CONF" set-weight nosuch 25
# Where the maps are is what a broken line may have meant to change: nothing is done.
sed 's|^bpffs_dir = .*|bpffs_dir = sys/fs/bpf/typo|' "$EDIT_CONF" >"$RIG_DIR/editing2.conf"
bad 1 "rollback web, bpffs_dir broken" -- -c "$RIG_DIR/editing2.conf" rollback web
err_has "where the pinned maps are cannot be told: $RIG_DIR/editing2.conf:$(grep -n '^bpffs_dir' \
	"$RIG_DIR/editing2.conf" | cut -d: -f1): bpffs_dir: 'sys/fs/bpf/typo' is not an absolute path" \
	"... naming the bpffs_dir line"
# A [fleet] that does not read: set-weight cannot write etcd first, a rollback acts here.
{ cat "$EDIT_CONF"; printf '[fleet\netcd_endpoints = http://198.18.0.1:2379\nfleet = f\n'; } \
	>"$RIG_DIR/editing3.conf"
bad 1 "set-weight web 30, [fleet] unreadable" -- -c "$RIG_DIR/editing3.conf" set-weight web 30
err_has "this host's fleet cannot be told" "... naming the fleet"
rc=0
rig_edge "$SHIFTCTL" -c "$RIG_DIR/editing3.conf" rollback web >/dev/null 2>"$RIG_DIR/err" || rc=$?
t_expect "rollback web, [fleet] unreadable: exit" "$rc" 0
err_has "the fleet not written" "... saying the fleet is not written"
t_expect "... latched (bpftool)" "$(rig_weight_word web)" $((1 << 31))
ctl clear web >/dev/null || t_notok "clear web"

t_section "with shiftd stopped"
shiftd_stop
ctl set-weight web 10 >/dev/null 2>&1 || t_notok "set-weight web 10 with shiftd stopped"
maps_snap "$S.base"
bad 1 "set-weight nosuch 25, shiftd stopped" -- "${C[@]}" set-weight nosuch 25
bad 2 "set-weight web 150, shiftd stopped" -- "${C[@]}" set-weight web 150
bad 1 "ramp web 1,5 --hold 1s, shiftd stopped (needs shiftd)" -- "${C[@]}" ramp web 1,5 --hold 1s
bad 1 "reload, shiftd stopped (needs shiftd)" -- "${C[@]}" reload
bad 1 "status nosuch, shiftd stopped" -- "${C[@]}" status nosuch
ctl rollback web >/dev/null 2>&1 || t_notok "rollback web with shiftd stopped"
maps_snap "$S.base"
bad 1 "set-weight web 30 while rolled back, shiftd stopped" -- "${C[@]}" set-weight web 30
t_expect "the latch is kept (bpftool)" "$(rig_weight_word web)" $((1 << 31))

t_section "a config being edited, shiftd stopped"
edited 0 "clear web, shiftd stopped, the file broken" -- clear web
t_expect "... latch lifted (bpftool)" "$(rig_weight_word web)" 0
edited 0 "set-weight web 15, shiftd stopped, the file broken" -- set-weight web 15
t_expect "... shift_weights word (bpftool)" "$(rig_weight_word web)" 1500
edited 0 "rollback web --reason mid-edit-down, shiftd stopped, the file broken" -- \
	rollback web --reason mid-edit-down
t_expect "... latched (bpftool)" "$(rig_weight_word web)" $((1 << 31))
t_expect "... web6 untouched (bpftool)" "$(rig_weight_word web6)" 1000
if grep -q '^name=web .*latched=1 reason=manual:[^ ]*mid-edit-down' "$RIG_STATE_DIR/state"; then
	t_ok "... the state file has it, for shiftd's next start"
else
	t_notok "... the state file has it: $(grep '^name=web ' "$RIG_STATE_DIR/state" | cut -c1-120)"
fi
edited 0 "status web --json, shiftd stopped, the file broken" -- status web --json
t_expect "... from the maps and the state file (rolled_back, reason)" "$("$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
s = d["services"][0]
print(str(d["agent_running"]).lower(), s["rolled_back"], s["last_rollback"]["reason"])' \
	<"$RIG_DIR/out")" "false True manual: mid-edit-down"
maps_snap "$S.base"
bad 1 "reload, shiftd stopped, the file broken" -- -c "$EDIT_CONF" reload

t_section "the whole ring array, start to end"
MAPSNAP_FULL=1 maps_snap "$S.full.end"
d=$(maps_diff "$S.full.start" "$S.full.end" | grep '^shift_rings:') || true
if [ -z "$d" ]; then t_ok "shift_rings (all 256 services) unchanged over the test"; else
	t_notok "shift_rings changed: $(echo "$d" | head -n 3 | tr '\n' ';')"; fi
t_note "$snap_n bad invocations compared"

t_section "source overrides the config no longer has are removed"
# which_by ADDR:PORT [SERVICE]: "COLOR DECIDED_BY" for a new connection from there.
which_by() {
	ctl which "${2:-web}" "$1" --json | "$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print(d["color"], d["decided_by"].replace(" ", "_"))'
}
rig_write_config "$RIG_CONFIG" "web.green_sources=198.18.200.0/24, 198.18.201.0/24"
shiftd_start "$RIG_DIR/shiftd.ovr1.log" || t_bail "shiftd starts with green_sources"
ctl clear web >/dev/null 2>&1 || t_notok "clear web"
ctl set-weight web 0 >/dev/null || t_notok "set-weight web 0"
t_expect "web at 0 %, green_sources 198.18.201.0/24: which web 198.18.201.7:40000" \
	"$(which_by 198.18.201.7:40000)" "green override"
# Edited while shiftd was down: the restart adopts the maps, with no old config to diff.
shiftd_stop
rig_write_config "$RIG_CONFIG" web.green_sources=198.18.200.0/24
shiftd_start "$RIG_DIR/shiftd.ovr2.log" || t_bail "shiftd restarts without 198.18.201.0/24"
t_expect "restarted without 198.18.201.0/24: which web 198.18.201.7:40000" \
	"$(which_by 198.18.201.7:40000)" "blue weight"
t_expect "... and 198.18.200.0/24 still pins: which web 198.18.200.7:40000" \
	"$(which_by 198.18.200.7:40000)" "green override"
# A reload that replaces web by api: web's prefix is not api's, whichever service id
# api gets (web's is given again once every other free one has been).
web_id=$(rig_svc_id web)
RIG_SVC=api rig_write_config "$RIG_CONFIG" api.blue_sources=198.18.202.0/24 api.green_weight=0%
ctl reload >/dev/null || t_notok "reload (web replaced by api)"
t_expect "web replaced by api at 0 %: which api 198.18.200.7:40000" \
	"$(which_by 198.18.200.7:40000 api)" "blue weight"
t_expect "... api's own blue_sources: which api 198.18.202.7:40000" \
	"$(which_by 198.18.202.7:40000 api)" "blue override"

t_section "a removed service's id is not the next one given out"
# web's samples still in the rings carry its id: given to api in the same reload, they
# fed api's windows and streak (web's green errors could roll api back).
api_id=$(rig_svc_id api)
if [ -n "$web_id" ] && [ -n "$api_id" ] && [ "$web_id" != "$api_id" ]; then
	t_ok "web, replaced by api in one reload, had service id $web_id; api got $api_id"
else
	t_notok "web, replaced by api in one reload, had service id '$web_id'; api got '$api_id' (want another)"
fi

t_section "a removed backend's slot is not the next one given out"
# Idle flow entries still name a removed backend's slot, and the datapath trusts
# an entry whose backend is active in its service: a green backend added by the
# next reload must not take it.
be_id() { # ADDR:PORT: the slot of api's backend there
	ctl backends api --json | "$RIG_PYTHON" -c '
import json, sys
print(*[b["id"] for b in json.load(sys.stdin) if b["backend"] == sys.argv[1]])' "$1"
}
api_conf() { RIG_SVC=api rig_write_config "$RIG_CONFIG" api.green_weight=0% "$@"; }
api_conf "api.blue=$(rig_pool blue 4), 198.18.210.12:8080"
ctl reload >/dev/null || t_notok "reload (api with a second blue)"
old_id=$(be_id 198.18.210.12:8080)
api_conf "api.blue=$(rig_pool blue 4)"
ctl reload >/dev/null || t_notok "reload (the second blue removed)"
api_conf "api.blue=$(rig_pool blue 4)" "api.green=$(rig_pool green 4), 198.18.210.22:8080"
ctl reload >/dev/null || t_notok "reload (a second green)"
new_id=$(be_id 198.18.210.22:8080)
if [ -n "$old_id" ] && [ -n "$new_id" ] && [ "$old_id" != "$new_id" ]; then
	t_ok "the removed blue had slot $old_id; the green added next got slot $new_id"
else
	t_notok "the removed blue had slot '$old_id'; the green added next got slot '$new_id'"
fi

t_section "a backend given a removed one's slot starts its counters at 0"
be_conns() { # ADDR:PORT: api's backend there: "SLOT CONNECTIONS"
	ctl backends api --json | "$RIG_PYTHON" -c '
import json, sys
print(*[(b["id"], b["connections"]) for b in json.load(sys.stdin) if b["backend"] == sys.argv[1]][0])' "$1"
}
two_green="api.green=$(rig_pool green 4), 198.18.210.22:8080"
api_conf "api.blue=$(rig_pool blue 4), 198.18.210.13:8080" "$two_green"
ctl reload >/dev/null || t_notok "reload (a blue nobody answers for)"
# New connections to blue: about half go to 198.18.210.13 (its SYNs count, then time out).
for ((i = 0; i < 16; i++)); do rig_curl cli1 --max-time 0.2 -s -o /dev/null "$RIG_URL" || true; done
read -r x_id x_conns <<<"$(be_conns 198.18.210.13:8080)"
api_conf "api.blue=$(rig_pool blue 4)" "$two_green"
ctl reload >/dev/null || t_notok "reload (198.18.210.13 removed)"
# A restart adopts the maps: the next fresh slot is the first past the adopted ones.
shiftd_stop
shiftd_start "$RIG_DIR/shiftd.slots.log" || t_bail "shiftd restarts"
api_conf "api.blue=$(rig_pool blue 4), 198.18.210.14:8080" "$two_green"
ctl reload >/dev/null || t_notok "reload (198.18.210.14 added)"
read -r y_id y_conns <<<"$(be_conns 198.18.210.14:8080)"
if [ "${x_conns:-0}" -gt 0 ] && [ "$x_id" = "$y_id" ] && [ "$y_conns" = 0 ]; then
	t_ok "198.18.210.13 had $x_conns connections in slot $x_id; 198.18.210.14, given that slot, has $y_conns"
else
	t_notok "198.18.210.13: slot ${x_id:-?}, ${x_conns:-?} connections; 198.18.210.14: slot ${y_id:-?}, ${y_conns:-?} (want the same slot, > 0, then 0)"
fi

t_section "a service's protocol changed on reload: its backends' old index keys go"
# The return path finds a backend by (address, port, protocol): a key of the old
# protocol left behind would take that protocol's packets for the service's.
idx_keys() {
	bpftool -j map dump pinned "$RIG_BPFFS_DIR/maps/shift_be_idx" | "$RIG_PYTHON" -c '
import json, sys
print(len(json.load(sys.stdin)))'
}
n_tcp=$(idx_keys)
api_conf "api.blue=$(rig_pool blue 4), 198.18.210.14:8080" "$two_green" api.protocol=udp \
	api.health_check=none
ctl reload >/dev/null || t_notok "reload (api as udp)"
n_udp=$(idx_keys)
api_conf "api.blue=$(rig_pool blue 4), 198.18.210.14:8080" "$two_green"
ctl reload >/dev/null || t_notok "reload (api as tcp again)"
n_back=$(idx_keys)
t_expect "backend index keys: tcp $n_tcp, udp $n_udp, tcp again $n_back" "$n_udp $n_back" \
	"$n_tcp $n_tcp"

t_section "a reload the host cannot take changes nothing"
# snat_ports inside the edge's ephemeral ports (32768-60999) for api, which comes
# first, and a new weight for web6 after it: refused before any write. The weight
# then comes with the next good reload.
ctl set-weight web6 10 >/dev/null || t_notok "set-weight web6 10"
api_conf "api.blue=$(rig_pool blue 4)" "snat=$RIG_EDGE_BACKEND_ADDR, $RIG_EDGE_BACKEND_ADDR6" \
	api.snat_ports=40000-50000 \
	web6.green_weight=20%
rc=0
out=$(ctl reload 2>&1) || rc=$?
t_expect "reload with snat_ports inside ip_local_port_range: exit" "$rc" 1
case $out in *"snat_ports 40000-50000 lie inside"*) t_ok "... the refusal names them [$out]" ;;
*) t_notok "... the refusal names snat_ports: [$out]" ;; esac
t_expect "... web6 untouched (status --json green_weight_bp)" "$(status_get web6 green_weight_bp)" 1000
api_conf "api.blue=$(rig_pool blue 4)" web6.green_weight=20%
ctl reload >/dev/null || t_notok "reload (snat_ports gone)"
t_expect "the next good reload takes web6's new weight" "$(status_get web6 green_weight_bp)" 2000
shiftd_stop

t_summary
