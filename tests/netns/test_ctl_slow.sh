#!/bin/bash
# Silent and slow clients of the control socket do not hold shiftd's loop.
# shiftd serves the socket from the loop that reads the samples and fires the
# rollbacks; it used to wait on one client at a time, up to 0.5 s for its
# request and 2 s for its answer to be taken. With 8 silent clients and one
# that asks "status json" and never reads:
#   - ping round trips from a well-behaved client stay fast (before: the first
#     waited ~4 s behind the silent ones);
#   - the loop's own latency: the longest gap between its tick's sd_notify
#     WATCHDOG=1 pings (WATCHDOG_USEC=100 ms: a ping every 100 ms tick) stays
#     near a tick (before: each silent client stalled it 0.5 s);
#   - every silent client is closed by the request budget (0.5 s + a tick);
#   - with 16 silent clients (the bound) a 17th is answered "ERR 1 busy" at once.
# Bounds are generous (a loaded 2-CPU box): an order of magnitude apart from the
# figures before. CTL_SHIFTD / CTL_SHIFTCTL run other binaries (the old ones).
# Exit 0 pass, 77 skipped, 1 fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/netns/lib.sh
rig_probe || rig_skip "$RIG_SKIP_REASON"
SHIFTD=${CTL_SHIFTD:-.output/shiftd}
SHIFTCTL=${CTL_SHIFTCTL:-.output/shiftctl}
SILENT=8
BOUND=16

fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }

RIG_BLUE=1 RIG_GREEN=1 rig_up
D=$RIG_DIR
NOTIFY_SOCK=$D/notify.sock
NOTIFY_LOG=$D/notify.log
rig_spawn edge "$D/notify.out" "$RIG_PYTHON" tests/netns/ops_check.py notify "$NOTIFY_SOCK" \
	"$NOTIFY_LOG" 120
rig_wait 50 0.1 test -S "$NOTIFY_SOCK" || { echo "not ok - notify receiver did not start"; exit 1; }
rig_write_config "$D/shiftd.conf"
rig_spawn edge "$D/shiftd.log" env NOTIFY_SOCKET="$NOTIFY_SOCK" WATCHDOG_USEC=100000 \
	"$SHIFTD" -c "$D/shiftd.conf"
SPID=$RIG_LAST_PID
ctl() { rig_edge "$SHIFTCTL" -c "$D/shiftd.conf" "$@"; }
rig_wait 150 0.2 grep -q 'info: ready:' "$D/shiftd.log" || { cat "$D/shiftd.log"; exit 1; }
rig_wait 50 0.2 ctl status >/dev/null 2>&1 || { cat "$D/shiftd.log"; exit 1; }
rig_edge timeout 60 "$RIG_PYTHON" tests/netns/ctl_slow.py "$RIG_CONTROL_SOCKET" "$SILENT" "$BOUND" \
	>"$D/slow.out" 2>&1 || { notok "ctl_slow.py failed: $(cat "$D/slow.out")"; }
sed 's/^/# /' "$D/slow.out"
get() { sed -n "s/^$1 //p" "$D/slow.out"; }
max() { tr ' ' '\n' | awk 'NF { if ($1 > m) m = $1 } END { printf "%.1f", m + 0 }'; }

base=$(get base_ms | max)
load=$(get load_ms | max)
if [ -n "$(get load_ms)" ] && awk -v l="$load" 'BEGIN { exit !(l < 300) }'; then
	ok "ping round trips with $SILENT silent clients and a non-reader: max $load ms (alone: max $base ms)"
else
	notok "ping round trips with $SILENT silent clients waited: max ${load:-?} ms (alone: max $base ms)"
fi
case $(get load_answers) in OK) ok "every loaded ping answered OK" ;;
*) notok "loaded pings answered: $(get load_answers)" ;; esac

# The loop: the longest gap between its tick's watchdog pings while loaded.
t0=$(get load_t0) t1=$(get load_t1)
# A gap that ends in the window, or spans it, counts.
gap=$(awk -v t0="$t0" -v t1="$t1" '$2 == "WATCHDOG=1" {
	if (p && $1 >= t0 && p <= t1 && $1 - p > g) g = $1 - p; p = $1 }
	END { printf "%.0f", g * 1000 }' "$NOTIFY_LOG")
pings=$(awk -v t0="$t0" -v t1="$t1" '$2 == "WATCHDOG=1" && $1 >= t0 && $1 <= t1' "$NOTIFY_LOG" | wc -l)
span=$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (t1 - t0) * 1000 }')
if [ "$pings" -ge 3 ] && [ "$gap" -lt 450 ]; then
	ok "the loop's longest tick gap while the clients were held ($span ms): $gap ms (a tick is 100 ms; $pings pings)"
else
	notok "the loop stalled: longest tick gap $gap ms while the clients were held ($span ms, $pings pings)"
fi

eof=$(get eof_s)
worst=$(echo "$eof" | max)
if [ -n "$eof" ] && ! echo "$eof" | grep -q -- '-1' && awk -v w="$worst" 'BEGIN { exit !(w < 1.5) }'; then
	ok "every silent client closed by the request budget: at most $worst s after its connect ($eof)"
else
	notok "silent clients not closed in time: $eof"
fi

busy=$(get busy_answer)
bms=$(get busy_ms)
case $busy in "ERR 1 busy"*)
	if awk -v m="$bms" 'BEGIN { exit !(m < 300) }'; then
		ok "over $BOUND held connections, a client is told at once ($bms ms): $busy"
	else
		notok "the busy answer took $bms ms: $busy"
	fi ;;
*) notok "over $BOUND held connections, a client got '$busy' after $bms ms" ;; esac

kill -0 "$SPID" 2>/dev/null && ok "shiftd still running" || notok "shiftd exited"
ctl status >/dev/null 2>&1 && ok "status answers afterwards" || notok "status fails afterwards"

echo
[ "$fails" -eq 0 ] && echo "ctl_slow: all checks passed" || echo "ctl_slow: $fails check(s) failed"
[ "$fails" -eq 0 ]
