#!/bin/bash
# shiftd's start and exit around the state it shares with the next one, on the
# namespace rig:
#  (a) a second shiftd on the same config while one runs is refused (exit 2, naming
#      the running one's pid) before it touches anything: the first keeps its control
#      socket (same file), shiftctl status and reload still reach it; an exit removes
#      the socket path only while it is still the file that shiftd bound.
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

# run_shiftd LOG: a shiftd that should refuse to start, in the foreground, bounded;
# its exit status (124 when it ran on: it did not refuse).
run_shiftd() {
	local rc=0
	rig_edge timeout 60 "$SHIFTD" --config "$RIG_CONFIG" >"$1" 2>&1 </dev/null || rc=$?
	echo "$rc"
}

# ---------------------------------------------------------------------------------
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
if grep -q "shiftd pid $A is already running" "$RIG_DIR/shiftd.b.log"; then
	t_ok "second shiftd: names the running one: $(grep -o 'shiftd pid.*' "$RIG_DIR/shiftd.b.log" | head -n 1)"
else
	t_notok "second shiftd: its log names pid $A: $(tr '\n' '|' <"$RIG_DIR/shiftd.b.log" | cut -c 1-400)"
fi
if grep -qE 'datapath|maps (adopted|created)|program' "$RIG_DIR/shiftd.b.log"; then
	t_notok "second shiftd: touched the datapath before refusing: $(grep -E 'datapath|maps|program' "$RIG_DIR/shiftd.b.log" | head -n 2 | tr '\n' '|')"
else
	t_ok "second shiftd: refused before the datapath (no load, no maps, no programs in its log)"
fi
t_expect "the first's control socket: still there, same file (inode)" "$(stat -c %i "$SOCK" 2>/dev/null)" "$ino0"
t_expect "shiftctl status --json: agent_running" "$(status_get web agent_running)" true
rc=0
ctl reload >"$RIG_DIR/reload.out" 2>&1 || rc=$?
t_expect "shiftctl reload reaches the first shiftd: exit" "$rc" 0
t_check "the first shiftd (pid $A) still runs" kill -0 "$A"

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

t_summary
