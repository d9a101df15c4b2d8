#!/bin/bash
# shiftd's start and exit around the state it shares with the next one, on the
# namespace rig:
#  (a) a second shiftd on the same config while one runs is refused (exit 2, naming
#      the running one's pid) before it touches anything: the first keeps its control
#      socket (same file), shiftctl status and reload still reach it; so is one on a
#      config with its own state_dir and control socket but the same bpffs_dir (it
#      would adopt the first's maps and write its services over them), naming the
#      first's pid from the directory's lock; an exit removes the socket path only
#      while it is still the file that shiftd bound;
#  (b) pins a start cannot take, found before the programs load (no verifier time) and
#      refused with exit 2, which the unit does not restart: maps of another map ABI
#      (the pinned shift_config set to ABI 5 with bpftool), and maps without
#      shift_config beside pinned links ("incomplete pins"); maps without shift_config
#      and no link (a first start that died pinning them) are replaced, and the start
#      goes on;
#  (c) an interface removed from the config while shiftd is stopped loses shift's
#      program at the next start (XDP link, then a tcx link), as a reload's does;
#  (d) a start that fails on one interface (another XDP program holds its hook,
#      attach = xdp) exits 2, and leaves no half datapath: the backend side is attached
#      first, and what that start attached where shift had nothing is detached again
#      (a first start leaves nothing attached; a restart keeps what it adopted);
#  (e) a start verifies the programs of its attach mode only (attach = xdp: the XDP
#      ones); a reload to attach = tc keeps XDP running and says the change waits for
#      the next start, which then moves every interface to TC;
#  (f) and of its interfaces' roles only (two clients and a backend: no client+backend
#      program); a reload that makes the host one-armed (backend_interface = a client
#      interface) keeps the interfaces and says the change waits for the next start,
#      which then runs the client+backend program there and detaches the old backend
#      interface.
# LIFECYCLE_ONLY="b c" runs some of the sections (each stands on its own).
# Exit 0 pass, 77 skipped (a feature probe said no), 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=agent_lib.sh
. "$HERE/agent_lib.sh"
cd "$AGENT_ROOT" || exit 1

rig_probe || rig_skip "$RIG_SKIP_REASON"
agent_bins

RIG_CLIENTS=2 RIG_BLUE=1 RIG_GREEN=1 RIG_QUIET=1 rig_up || t_bail "rig_up failed"
rig_write_config "$RIG_DIR/shiftd.conf" || t_bail "rig_write_config failed"
t_note "rig $RIG_ID up in $((SECONDS - T_START))s; $RIG_DIR"
SOCK=$RIG_CONTROL_SOCKET
: "${LIFECYCLE_ONLY:=a b c d e f}"
section() { [[ " $LIFECYCLE_ONLY " == *" $1 "* ]]; }
C1=${RIG_EDGE_CLIENT_IFS%%,*} C2=${RIG_EDGE_CLIENT_IFS##*,} BK=$RIG_EDGE_BACKEND_IF

# link_id PIN: the id of the bpf_link pinned at links/PIN ("" when none)
link_id() {
	bpftool -j link show pinned "$RIG_BPFFS_DIR/links/$1" 2>/dev/null | rig_json_get id 2>/dev/null
}
# link_alive ID: the kernel still has that link (detached and unpinned, it is freed:
# this bpftool shows no ifindex for XDP and tcx links)
link_alive() { [ -n "$1" ] && bpftool link show id "$1" >/dev/null 2>&1; }
# xdp_on IF: the XDP program id on IF, "" when none (ip, edge netns)
xdp_on() { ip -n "$RIG_NS_EDGE" -d link show dev "$1" | sed -n 's/.*prog\/xdp[a-z]* id \([0-9]*\).*/\1/p'; }
# run_shiftd LOG: a shiftd that should refuse to start, in the foreground, bounded;
# its exit status (124 when it ran on: it did not refuse).
run_shiftd() {
	local rc=0
	rig_edge timeout 60 "$SHIFTD" --config "$RIG_CONFIG" >"$1" 2>&1 </dev/null || rc=$?
	echo "$rc"
}

# refused_log LABEL LOG TEXT: a refused shiftd's LOG names the running one (TEXT) and
# shows no step into the datapath
refused_log() {
	if grep -q "$3" "$2"; then
		t_ok "$1: names the running one: $(grep -o 'shiftd pid.*' "$2" | head -n 1)"
	else
		t_notok "$1: its log says '$3': $(tr '\n' '|' <"$2" | cut -c 1-400)"
	fi
	if grep -qE 'datapath|maps (adopted|created)|program' "$2"; then
		t_notok "$1: touched the datapath before refusing: $(grep -E 'datapath|maps|program' "$2" | head -n 2 | tr '\n' '|')"
	else
		t_ok "$1: refused before the datapath (no load, no maps, no programs in its log)"
	fi
}

# ---------------------------------------------------------------------------------
if section a; then
t_section "(a) a second shiftd on the same config"
shiftd_start "$RIG_DIR/shiftd.a.log" || t_bail "shiftd starts"
A=$SHIFTD_PID
ino0=$(stat -c %i "$SOCK")
t_note "first shiftd pid $A, control socket $SOCK (inode $ino0)"

# By hand, as an operator would while the unit runs: in the background, so that one
# that does start (the bug) can be told apart and stopped.
rig_spawn edge "$RIG_DIR/shiftd.b.log" "$SHIFTD" --config "$RIG_CONFIG"
B=$RIG_LAST_PID
for ((i = 0; i < 600; i++)); do
	kill -0 "$B" 2>/dev/null || break
	grep -q 'ready:' "$RIG_DIR/shiftd.b.log" && break
	sleep 0.1
done
if kill -0 "$B" 2>/dev/null; then
	t_notok "second shiftd refused: it started (pid $B) and took the control socket over"
	rig_kill "$B" # its exit, as before the fix, deletes the socket under the first
	rcb=running
else
	rcb=0
	wait "$B" 2>/dev/null || rcb=$?
fi
t_expect "second shiftd: exit status (no restart by the unit)" "$rcb" 2
refused_log "second shiftd" "$RIG_DIR/shiftd.b.log" "shiftd pid $A is already running"
t_expect "the first's control socket: still there, same file (inode)" "$(stat -c %i "$SOCK" 2>/dev/null)" "$ino0"
t_expect "shiftctl status --json: agent_running" "$(status_get web agent_running)" true
rc=0
ctl reload >"$RIG_DIR/reload.out" 2>&1 || rc=$?
t_expect "shiftctl reload reaches the first shiftd: exit" "$rc" 0
t_check "the first shiftd (pid $A) still runs" kill -0 "$A"

# Another state_dir and control socket, the same pins: in the foreground, bounded
# (one that does start runs until the timeout: 124).
mkdir -p "$RIG_DIR/other" || t_notok "mkdir $RIG_DIR/other"
sed -e "s|^state_dir = .*|state_dir = $RIG_DIR/other/state|" \
	-e "s|^control_socket = .*|control_socket = $RIG_DIR/other/ctl.sock|" \
	"$RIG_CONFIG" >"$RIG_DIR/other/shiftd.conf"
if grep -q "^bpffs_dir = $RIG_BPFFS_DIR\$" "$RIG_DIR/other/shiftd.conf" &&
	grep -q "^state_dir = $RIG_DIR/other/state\$" "$RIG_DIR/other/shiftd.conf"; then
	w0=$(status_get web green_weight_bp)
	rc=0
	rig_edge timeout 20 "$SHIFTD" --config "$RIG_DIR/other/shiftd.conf" \
		>"$RIG_DIR/shiftd.c.log" 2>&1 </dev/null || rc=$?
	t_expect "a shiftd on another state_dir, the same bpffs_dir: exit status" "$rc" 2
	refused_log "the same bpffs_dir" "$RIG_DIR/shiftd.c.log" \
		"shiftd pid $A is already running on bpffs_dir $RIG_BPFFS_DIR"
	t_check "the same bpffs_dir: no control socket of its own" test ! -e "$RIG_DIR/other/ctl.sock"
	t_expect "the first's green weight for web (basis points), as it was" "$(status_get web green_weight_bp)" "$w0"
	t_check "the first shiftd (pid $A) still runs" kill -0 "$A"
else
	t_notok "a config with another state_dir: $(grep -E '^(bpffs_dir|state_dir|control_socket) =' "$RIG_DIR/other/shiftd.conf" | tr '\n' '|')"
fi

# Its socket path made another file meanwhile (moved aside, another bound there):
# the first's exit leaves that file alone, and removes only its own.
mv "$SOCK" "$SOCK.a" || t_notok "mv $SOCK aside"
"$RIG_PYTHON" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK" ||
	t_notok "bind another socket at $SOCK"
ino1=$(stat -c %i "$SOCK")
shiftd_stop
t_expect "after the first's exit: the other file at $SOCK stays (inode)" "$(stat -c %i "$SOCK" 2>/dev/null)" "$ino1"
rm -f "$SOCK" "$SOCK.a"

shiftd_start "$RIG_DIR/shiftd.a2.log" || t_bail "shiftd starts again"
t_check "a start after the first's exit (the lock is free)" kill -0 "$SHIFTD_PID"
shiftd_stop
t_check "a clean exit removes its own control socket" test ! -e "$SOCK"
fi

# ---------------------------------------------------------------------------------
CFG=$RIG_BPFFS_DIR/maps/shift_config
if section b; then
t_section "(b) pins a start cannot take: refused before the load"
if [ ! -e "$CFG" ]; then
	shiftd_start "$RIG_DIR/shiftd.b-pins.log" || t_bail "shiftd starts (to pin the maps)"
	shiftd_stop
fi
# cfg_abi_set N: the pinned shift_config's abi_version (its first 4 bytes) set to N,
# the rest as it is
cfg_abi_set() {
	local v
	v=$(bpftool -j map lookup pinned "$CFG" key 0 0 0 0 | "$RIG_PYTHON" -c '
import json, sys
v = [int(x, 16) for x in json.load(sys.stdin)["value"]]
v[0:4] = int(sys.argv[1]).to_bytes(4, "little")
print(" ".join(str(b) for b in v))' "$1") || return 1
	# shellcheck disable=SC2086 # one word per byte
	bpftool map update pinned "$CFG" key 0 0 0 0 value $v
}
cfg_abi() {
	bpftool -j map lookup pinned "$CFG" key 0 0 0 0 | "$RIG_PYTHON" -c '
import json, sys
print(int.from_bytes(bytes(int(x, 16) for x in json.load(sys.stdin)["value"][:4]), "little"))'
}
t_expect "the pinned shift_config's map ABI (shiftd stopped)" "$(cfg_abi)" 6
cfg_abi_set 5 || t_notok "bpftool map update of $CFG"
t_expect "... set to 5 with bpftool" "$(cfg_abi)" 5
t0=$SECONDS
rc=$(run_shiftd "$RIG_DIR/shiftd.abi.log")
el=$((SECONDS - t0))
t_expect "a start over map ABI 5: exit status (the unit does not restart it)" "$rc" 2
if grep -q 'have map ABI 5, this shiftd speaks 6' "$RIG_DIR/shiftd.abi.log"; then
	t_ok "... names both ABIs: $(grep -o 'pinned maps under.*' "$RIG_DIR/shiftd.abi.log" | cut -c 1-200)"
else
	t_notok "... names both ABIs: $(tr '\n' '|' <"$RIG_DIR/shiftd.abi.log" | cut -c 1-300)"
fi
if grep -q 'datapath' "$RIG_DIR/shiftd.abi.log"; then
	t_notok "... refused before the programs load: the log has $(grep -c 'datapath' "$RIG_DIR/shiftd.abi.log") datapath line(s) (${el}s)"
else
	t_ok "... refused before the programs load: no datapath line in its log (${el}s)"
fi
cfg_abi_set 6 || t_notok "bpftool map update of $CFG back to 6"

# Maps pinned without shift_config while programs are attached (pinned links).
ids_b=$(xdp_prog_ids)
rm -f "$CFG"
rc=$(run_shiftd "$RIG_DIR/shiftd.inc.log")
t_expect "a start over maps without shift_config, links pinned: exit status" "$rc" 2
if grep -q 'incomplete pins' "$RIG_DIR/shiftd.inc.log" && grep -q 'shiftd --detach' "$RIG_DIR/shiftd.inc.log"; then
	t_ok "... says incomplete pins and what to do: $(grep -o 'incomplete pins.*' "$RIG_DIR/shiftd.inc.log" | cut -c 1-200)"
else
	t_notok "... says incomplete pins and what to do: $(tr '\n' '|' <"$RIG_DIR/shiftd.inc.log" | cut -c 1-300)"
fi
t_expect "... the attached programs left as they were" "$(xdp_prog_ids)" "$ids_b"
t_check "... no shift_config pinned by the refused start" test ! -e "$CFG"

# What a first start that died while pinning leaves: maps, no shift_config, no link.
rc=0
rig_edge "$SHIFTD" --config "$RIG_CONFIG" --detach >"$RIG_DIR/detach.b.log" 2>&1 || rc=$?
t_expect "shiftd --detach over them: exit" "$rc" 0
shiftd_start "$RIG_DIR/shiftd.b1.log" || t_bail "shiftd starts after --detach"
shiftd_stop
rm -f "$RIG_BPFFS_DIR"/links/* # no fd holds them: the links go, the programs with them
rm -f "$CFG"
t_expect "leftovers made: no program attached" "$(xdp_prog_ids)" ""
if shiftd_start "$RIG_DIR/shiftd.left.log"; then
	t_ok "a start over leftover pins (no shift_config, no link) goes on"
	if grep -q 'leftovers of a first start' "$RIG_DIR/shiftd.left.log" &&
		grep -q 'maps created and pinned' "$RIG_DIR/shiftd.left.log"; then
		t_ok "... says so and creates the maps: $(grep -o '[0-9]* map(s) pinned without.*' "$RIG_DIR/shiftd.left.log" | cut -c 1-160)"
	else
		t_notok "... says so and creates the maps: $(grep -E 'leftovers|maps' "$RIG_DIR/shiftd.left.log" | tr '\n' '|')"
	fi
	t_expect "... shift_config pinned again, map ABI" "$(cfg_abi)" 6
	n=$(xdp_prog_ids | wc -w)
	t_expect "... programs attached on every interface" "$n" 3
	shiftd_stop
else
	t_notok "a start over leftover pins (no shift_config, no link) goes on: $(grep -E 'error' "$RIG_DIR/shiftd.left.log" | head -n 2 | tr '\n' '|')"
fi
fi

# ---------------------------------------------------------------------------------
if section c; then
t_section "(c) an interface removed from the config while shiftd is stopped"
for hook in xdp tc; do
	rig_write_config "$RIG_DIR/shiftd.conf" attach=$hook || t_notok "config, attach = $hook"
	shiftd_start "$RIG_DIR/shiftd.c-$hook.log" || t_bail "shiftd starts (attach = $hook)"
	shiftd_stop
	sfx=""
	[ $hook = tc ] && sfx=:tcx
	l1=$(link_id "$C1$sfx") l2=$(link_id "$C2$sfx")
	if link_alive "$l1" && link_alive "$l2"; then
		t_ok "attach = $hook, shiftd stopped: links/$C1$sfx (link $l1) and links/$C2$sfx (link $l2) attached"
	else
		t_notok "attach = $hook, shiftd stopped: links/$C1$sfx and links/$C2$sfx attached: ids '$l1' '$l2'"
	fi
	rig_write_config "$RIG_DIR/shiftd.conf" attach=$hook interface="$C1" || t_notok "config without $C2"
	shiftd_start "$RIG_DIR/shiftd.c-$hook-1.log" || t_bail "shiftd starts without $C2"
	if link_alive "$l2"; then
		t_notok "$C2 no longer configured, shiftd restarted: link $l2 still attached to it"
	else
		t_ok "$C2 no longer configured, shiftd restarted: link $l2 gone"
	fi
	t_check "... links/$C2$sfx unpinned" test ! -e "$RIG_BPFFS_DIR/links/$C2$sfx"
	[ $hook = xdp ] && t_expect "... no XDP program on $C2 (ip link)" "$(xdp_on "$C2")" ""
	l=$(grep "interface $C2: detached (no longer configured" "$SHIFTD_LOG" | head -n 1)
	if [ -n "$l" ]; then t_ok "... the log says so: ${l#*: info: }"; else
		t_notok "... the log says $C2 was detached: $(grep "$C2" "$SHIFTD_LOG" | tr '\n' '|')"; fi
	t_expect "... $C1 keeps its link" "$(link_id "$C1$sfx")" "$l1"
	t_check "... still there" link_alive "$l1"
	[ $hook = xdp ] && t_check "... and $C1 runs an XDP program (ip link)" test -n "$(xdp_on "$C1")"
	shiftd_stop
done
rig_write_config "$RIG_DIR/shiftd.conf" || t_notok "the config back as it was"
fi

# ---------------------------------------------------------------------------------
FOREIGN_O=$RIG_DIR/foreign.o
# foreign IF on|off: another XDP program (generic, XDP_PASS) on IF, or none
foreign() {
	if [ "$2" = on ]; then
		ip -n "$RIG_NS_EDGE" link set dev "$1" xdpgeneric obj "$FOREIGN_O" sec xdp
	else
		ip -n "$RIG_NS_EDGE" link set dev "$1" xdpgeneric off
	fi
}
# xdp_all: "IF=ID ..." for the three interfaces, ID "" when none
xdp_all() { echo "$C1=$(xdp_on "$C1") $C2=$(xdp_on "$C2") $BK=$(xdp_on "$BK")"; }
pins() { find "$RIG_BPFFS_DIR/links" -mindepth 1 -printf '%f ' 2>/dev/null | tr ' ' '\n' | sort | paste -sd' ' -; }
if section d && ! command -v clang >/dev/null 2>&1; then
	t_note "(d) skipped: no clang to build the other XDP program"
elif section d; then
t_section "(d) a start that fails on one interface"
printf '%s\n' '__attribute__((section("xdp"), used)) int foreign_pass(void *ctx) { return 2; }' \
	'char _license[] __attribute__((section("license"), used)) = "GPL";' |
	clang -O2 -target bpf -c -x c - -o "$FOREIGN_O" || t_bail "clang: the other XDP program"
rig_write_config "$RIG_DIR/shiftd.conf" attach=xdp || t_notok "config, attach = xdp"
rc=0
rig_edge "$SHIFTD" --config "$RIG_CONFIG" --detach >"$RIG_DIR/detach.d.log" 2>&1 || rc=$?
t_expect "shiftd --detach first (a first start follows): exit" "$rc" 0

# 1. The backend interface taken: nothing of the clients attached before it fails.
foreign "$BK" on || t_notok "the other program on $BK"
fid=$(xdp_on "$BK")
rc=$(run_shiftd "$RIG_DIR/shiftd.d1.log")
t_expect "first start, another XDP program on $BK: exit status" "$rc" 2
t_expect "... nothing of shift's attached (XDP ids by interface)" "$(xdp_all)" "$C1= $C2= $BK=$fid"
t_expect "... no link pinned" "$(pins)" ""
t_expect "... no client program attached meanwhile either (log)" \
	"$(grep -c 'client program attached' "$RIG_DIR/shiftd.d1.log")" 0
if grep -q "another XDP program, id $fid, holds the hook" "$RIG_DIR/shiftd.d1.log"; then
	t_ok "... the log names it: $(grep -o "$BK: cannot attach.*" "$RIG_DIR/shiftd.d1.log" | cut -c 1-200)"
else
	t_notok "... the log names program $fid: $(grep -E 'error' "$RIG_DIR/shiftd.d1.log" | tr '\n' '|' | cut -c 1-300)"
fi
foreign "$BK" off

# 2. The last client taken: the backend and the first client, attached by this start
# where shift had nothing, are detached again.
foreign "$C2" on || t_notok "the other program on $C2"
fid=$(xdp_on "$C2")
rc=$(run_shiftd "$RIG_DIR/shiftd.d2.log")
t_expect "first start, another XDP program on $C2: exit status" "$rc" 2
t_expect "... what it attached is detached again (XDP ids by interface)" "$(xdp_all)" "$C1= $C2=$fid $BK="
t_expect "... no link pinned" "$(pins)" ""
n=$(grep -c "detached again: the start failed" "$RIG_DIR/shiftd.d2.log")
t_expect "... the log says so for $BK and $C1" "$n" 2
first=$(grep -o "interface [^ ]* (ifindex" "$RIG_DIR/shiftd.d2.log" | head -n 1 | cut -d' ' -f2)
t_expect "... the backend side attached first" "$first" "$BK"
foreign "$C2" off

# 3. A restart keeps what it adopted: $BK and $C1 attached by an earlier shiftd.
rig_write_config "$RIG_DIR/shiftd.conf" attach=xdp interface="$C1" || t_notok "config without $C2"
shiftd_start "$RIG_DIR/shiftd.d3a.log" || t_bail "shiftd starts on $C1 and $BK"
shiftd_stop
before=$(xdp_all)
lk="$(link_id "$C1") $(link_id "$BK")"
rig_write_config "$RIG_DIR/shiftd.conf" attach=xdp || t_notok "config with $C2 again"
foreign "$C2" on || t_notok "the other program on $C2"
fid=$(xdp_on "$C2")
rc=$(run_shiftd "$RIG_DIR/shiftd.d3.log")
t_expect "restart, another XDP program on the newly configured $C2: exit status" "$rc" 2
t_expect "... the adopted programs stay (XDP ids by interface)" "$(xdp_all)" "${before/$C2=/$C2=$fid}"
t_expect "... and their links" "$(link_id "$C1") $(link_id "$BK")" "$lk"
t_expect "... nothing detached again" "$(grep -c 'detached again' "$RIG_DIR/shiftd.d3.log")" 0
foreign "$C2" off
rig_write_config "$RIG_DIR/shiftd.conf" || t_notok "the config back as it was"
fi

# ---------------------------------------------------------------------------------
if section e; then
t_section "(e) attach changed by a reload"
rig_write_config "$RIG_DIR/shiftd.conf" attach=xdp || t_notok "config, attach = xdp"
shiftd_start "$RIG_DIR/shiftd.e1.log" || t_bail "shiftd starts (attach = xdp)"
t_expect "attach = xdp: the start verified the XDP programs only (log)" \
	"$(grep -o 'datapath loaded ([A-Za-z ]* programs' "$SHIFTD_LOG")" "datapath loaded (XDP programs"
before=$(xdp_all)
rig_write_config "$RIG_DIR/shiftd.conf" attach=tc || t_notok "config, attach = tc"
out=$(ctl reload 2>&1)
rc=$?
t_expect "reload to attach = tc: exit ($out)" "$rc" 0
t_expect "... the XDP programs stay (XDP ids by interface)" "$(xdp_all)" "$before"
t_expect "... no TC link pinned" "$(find "$RIG_BPFFS_DIR/links" -name '*:tc*' | wc -l)" 0
l=$(grep -o 'reload: attach = tc takes effect at the next start.*' "$SHIFTD_LOG" | head -n 1)
if [ -n "$l" ]; then t_ok "... the log says when it takes effect: $l"; else
	t_notok "... the log says the change waits for the next start: $(grep -E 'warn|error' "$SHIFTD_LOG" | tr '\n' '|' | cut -c 1-300)"; fi
ctl status >/dev/null 2>&1
t_expect "... status still answers: exit" "$?" 0
shiftd_stop
shiftd_start "$RIG_DIR/shiftd.e2.log" || t_bail "shiftd starts (attach = tc)"
t_expect "the next start: the TC programs only (log)" \
	"$(grep -o 'datapath loaded ([A-Za-z ]* programs' "$SHIFTD_LOG")" "datapath loaded (TC programs"
t_expect "... no XDP program left (XDP ids by interface)" "$(xdp_all)" "$C1= $C2= $BK="
t_expect "... every interface on TC (log)" "$(grep -c 'program [a-z]*, TC mode' "$SHIFTD_LOG")" 3
shiftd_stop
rig_write_config "$RIG_DIR/shiftd.conf" || t_notok "the config back as it was"
fi

# ---------------------------------------------------------------------------------
if section f; then
t_section "(f) interface roles changed by a reload"
# prog_name IF: the name of the XDP program on IF, "" when none
prog_name() {
	local id
	id=$(xdp_on "$1")
	[ -n "$id" ] && bpftool -j prog show id "$id" 2>/dev/null | rig_json_get name 2>/dev/null
}
rig_write_config "$RIG_DIR/shiftd.conf" attach=xdp || t_notok "config, attach = xdp"
shiftd_start "$RIG_DIR/shiftd.f1.log" || t_bail "shiftd starts (two-armed)"
t_expect "two-armed: the start verified the client and backend programs only (log)" \
	"$(grep -o 'datapath loaded (XDP programs of [a-z+, ]*)' "$SHIFTD_LOG")" \
	"datapath loaded (XDP programs of client, backend)"
before=$(xdp_all)
rig_write_config "$RIG_DIR/shiftd.conf" attach=xdp backend_interface="$C1" ||
	t_notok "config, backend_interface = $C1"
out=$(ctl reload 2>&1)
rc=$?
t_expect "reload to one-armed on $C1: exit ($out)" "$rc" 0
t_expect "... the programs stay (XDP ids by interface)" "$(xdp_all)" "$before"
t_expect "... $C1 keeps the client program" "$(prog_name "$C1")" shift_xdp_client
l=$(grep -o 'reload: interface and backend_interface take effect at the next start.*' "$SHIFTD_LOG" | head -n 1)
if [[ $l == *"client+backend programs"*"client, backend only"*"interfaces kept"* ]]; then
	t_ok "... the log says what it needs and when it takes effect: $l"
else
	t_notok "... the log names the missing role and the next start: '$l' $(grep -E 'warn|error' "$SHIFTD_LOG" | tr '\n' '|' | cut -c 1-300)"
fi
ctl status >/dev/null 2>&1
t_expect "... status still answers: exit" "$?" 0
shiftd_stop
shiftd_start "$RIG_DIR/shiftd.f2.log" || t_bail "shiftd starts (one-armed)"
t_expect "the next start: the client and client+backend programs (log)" \
	"$(grep -o 'datapath loaded (XDP programs of [a-z+, ]*)' "$SHIFTD_LOG")" \
	"datapath loaded (XDP programs of client, client+backend)"
t_expect "... $C1 runs the client+backend program" "$(prog_name "$C1")" shift_xdp_both
t_expect "... $C2 the client program" "$(prog_name "$C2")" shift_xdp_client
t_expect "... $BK, no longer configured, none" "$(xdp_on "$BK")" ""
shiftd_stop
rig_edge "$SHIFTD" --config "$RIG_CONFIG" --detach >/dev/null 2>&1
rig_write_config "$RIG_DIR/shiftd.conf" || t_notok "the config back as it was"
fi

t_summary
