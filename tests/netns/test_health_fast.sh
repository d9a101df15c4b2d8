#!/bin/bash
# shellcheck disable=SC2015 # "A && ok || notok": ok returns 0
# Health checks on per-backend timers (issue 15): health_interval = 20ms and
# health_timeout = 15ms, HTTP checks against the rig's real backends.
#  (a) healthy backends stay up for 5 s: no backend DOWN, no rollback, and each
#      backend got about one check per interval (counted by an nft counter of SYNs
#      in its namespace: far more than the old 100 ms tick allowed, never a burst);
#  (b) a backend slower than the timeout (40 ms) leaves its pool, one within it
#      (5 ms) stays, and the slow one comes back when it is fast again; one that
#      resets each connection right after its 200 stays;
#  (c) green1's server is killed (connection refused): it leaves the pool within a
#      bounded number of intervals and green's health trigger rolls back; blue stays.
# Counts, not speed: every bound is generous (a loaded 2-core host).
# Exit 0 pass, 77 skipped, 1 fail.
# run.sh: alone (15 ms timeouts: beside another test, a CI run saw a healthy backend's
# checks fail 5 in a row, twice, though the backends and shiftd run SCHED_FIFO)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

IV_MS=20
export RIG_BLUE=2 RIG_GREEN=1
# A 15 ms timeout is tight for a Python backend on a shared, loaded 2-core host:
# measured here at load 6 (other tests, VMs), the rig's backends answered a check in
# 1.2 ms at p50 but 25-430 ms at p99 (the same without shiftd), i.e. a backend starved
# of CPU is not healthy at a 15 ms timeout, and HAProxy would say so too. This test is
# about shiftd's timers, not the CI host's scheduler: the backends (every thread) and
# shiftd run SCHED_FIFO from the start, as a dedicated host would let them (max 12 ms
# at load 8). Processes this test started, by pid; nothing else changes.
rig_probe || rig_skip "$RIG_SKIP_REASON"
command -v chrt >/dev/null 2>&1 || rig_skip "missing command: chrt"
[ -x "$SHIFTD" ] && [ -x "$SHIFTCTL" ] || { echo "not ok - setup: shiftd/shiftctl not built"; exit 1; }
rig_up || { echo "not ok - setup: rig_up failed"; exit 1; }
for b in $RIG_BACKENDS; do
	chrt -a -f -p 10 "${_RIG_BACKEND_PID[$b]}" >/dev/null 2>&1 ||
		rig_skip "cannot make the backends SCHED_FIFO (chrt)"
done
printf '#!/bin/sh\nexec chrt -f 10 %s "$@"\n' "$SHIFTD" >"$RIG_DIR/shiftd-fifo"
chmod +x "$RIG_DIR/shiftd-fifo"
SHIFTD=$RIG_DIR/shiftd-fifo
# fall 5 (100 ms of failed checks in a row): packets between the namespaces are
# moved in softirq, which a loaded host defers to ksoftirqd at normal priority; at
# load 10 that delayed 3 checks in a row past 15 ms now and then (fall 3 was flaky).
rig_write_config "$RIG_DIR/shiftd.conf" xdp_mode=auto web6.health_check=none \
	web.health_check=http:/readyz web.health_interval=${IV_MS}ms web.health_timeout=15ms \
	web.health_fall=5 web.health_rise=2 web.max_consecutive_errors=off \
	web.min_requests=1000000 || { echo "not ok - setup: rig_write_config failed"; exit 1; }
e2e_add_sources || { echo "not ok - setup: cannot add client source addresses"; exit 1; }
e2e_start_shiftd || exit 1
# shellcheck disable=SC2016 # evaluated at exit
rig_on_exit '[ "$E2E_FAILS" = 0 ] || e2e_dump_logs >&2'
out=$(ctl set-weight web 50 2>&1) || notok "setup: set-weight web 50: $out"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
healthy() { # NAME: true|false from status --json
	ctl status web --json 2>/dev/null | "$RIG_PYTHON" -c '
import json, sys
want = sys.argv[1]
for s in json.load(sys.stdin)["services"]:
    for b in s["backends"]:
        if b["backend"].rsplit(":", 1)[0] == want:
            print(str(b["healthy"]).lower()); sys.exit(0)
print("?")' "$(rig_backend_addr "$1")"
}
until_health() { # NAME true|false TRIES: ms until status says so (50 ms steps)
	local t0 i
	t0=$(now_ms)
	for ((i = 0; i < $3; i++)); do
		[ "$(healthy "$1")" = "$2" ] && { echo $(($(now_ms) - t0)); return 0; }
		sleep 0.05
	done
	echo never
	return 1
}
downs() { grep -c "is DOWN" "$E2E_SHIFTD_LOG" || true; }
svc_field() { # FIELD: of service web
	ctl status web --json 2>/dev/null | "$RIG_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)["services"][0]
v = s
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print(v)' "$1"
}

# SYN counters in each backend namespace: one SYN per check (HTTP/1.0, Connection: close).
have_nft=0
if [ "$RIG_HAVE_NFT" = 1 ]; then
	have_nft=1
	for b in $RIG_BACKENDS; do
		nsenter --net="/run/netns/$RIG_ID-$b" -- nft -f - <<-EOF || have_nft=0
			table inet shift_hc
			delete table inet shift_hc
			table inet shift_hc {
				chain input {
					type filter hook input priority -20; policy accept;
					ip saddr $RIG_EDGE_BACKEND_ADDR tcp dport $RIG_BACKEND_PORT tcp flags & (syn | ack) == syn counter
				}
			}
		EOF
	done
fi
syns() { # NAME: SYNs from the edge's own address so far
	nsenter --net="/run/netns/$RIG_ID-$1" -- nft list table inet shift_hc 2>/dev/null |
		sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -n 1
}

# --- (a) healthy backends, 5 s -----------------------------------------------------------
sleep 0.5
declare -A s0=() s1=()
d0=$(downs) t0=$(now_ms)
for b in $RIG_BACKENDS; do s0[$b]=$( ((have_nft)) && syns "$b" || echo 0); done
sleep 5
for b in $RIG_BACKENDS; do s1[$b]=$( ((have_nft)) && syns "$b" || echo 0); done
t1=$(now_ms)
d1=$(downs)
[ "$d1" = "$d0" ] && [ "$d1" = 0 ] && ok "(a) 5 s at ${IV_MS}ms/15ms: no backend went DOWN" ||
	notok "(a) $d1 DOWN lines at ${IV_MS}ms/15ms (healthy backends): $(grep 'is DOWN' "$E2E_SHIFTD_LOG" | head -3)"
allup=1
for b in $RIG_BACKENDS; do [ "$(healthy "$b")" = true ] || allup=0; done
[ "$allup" = 1 ] && [ "$(svc_field rolled_back)" = False ] &&
	ok "(a) every backend healthy, no rollback" ||
	notok "(a) a backend unhealthy or a rollback: $(ctl status web 2>&1 | tail -8)"
if ((have_nft)); then
	slots=$(((t1 - t0) / IV_MS))
	for b in $RIG_BACKENDS; do
		n=$((s1[$b] - s0[$b]))
		# The old 100 ms tick could not exceed slots/5; a burst would exceed slots
		# (the window, t0..t1, holds both counter reads).
		[ "$n" -ge $((slots * 2 / 5)) ] && [ "$n" -le $((slots + 2)) ] &&
			ok "(a) $b: $n checks in $((t1 - t0)) ms ($slots intervals)" ||
			notok "(a) $b: $n checks in $((t1 - t0)) ms, want $((slots * 2 / 5))..$((slots + 2))"
	done
else
	note "(a) nft missing: checks not counted"
fi

# --- (b) the timeout is the timeout ---------------------------------------------------------
d0=$(downs)
rig_backend_mode blue2 slow:5
sleep 2
[ "$(healthy blue2)" = true ] && [ "$(downs)" = "$d0" ] && ok "(b) blue2 answering in 5 ms (timeout 15 ms) stays up" ||
	notok "(b) blue2 answering in 5 ms went DOWN"
rig_backend_mode blue2 slow:40
l=$(until_health blue2 false 60) && ok "(b) blue2 answering in 40 ms left its pool (${l} ms)" ||
	notok "(b) blue2 answering in 40 ms still healthy after 3 s"
rig_backend_mode blue2 ok
l=$(until_health blue2 true 60) && ok "(b) blue2 fast again: back in its pool (${l} ms)" ||
	notok "(b) blue2 not back 3 s after answering fast again"
# A 200 followed at once by a reset (an abortive close) is a 200: the answer is
# read before the socket's error.
d0=$(downs)
rig_backend_mode blue2 abort
sleep 2
[ "$(healthy blue2)" = true ] && [ "$(downs)" = "$d0" ] &&
	ok "(b) blue2 answering 200 and then resetting stays up" ||
	notok "(b) blue2 answering 200 and then resetting went DOWN ($(($(downs) - d0)) DOWN lines)"
rig_backend_mode blue2 ok

# --- (c) green1 killed -------------------------------------------------------------------
rig_backend_stop green1 || notok "(c) cannot stop green1's server"
l=$(until_health green1 false 200)
# fall 5 at 20 ms: ~5 intervals, plus the time this poll (shiftctl + python at normal
# priority) takes to see it; 100 intervals (2 s) is the generous bound.
if [ "$l" != never ] && [ "$l" -le $((100 * IV_MS)) ]; then
	ok "(c) killed green1 left its pool after ${l} ms = $((l / IV_MS)) intervals (bound 100)"
else
	notok "(c) killed green1: $l ms until unhealthy (bound $((100 * IV_MS)) ms)"
fi
for ((i = 0; i < 40; i++)); do
	[ "$(svc_field rolled_back)" = True ] && break
	sleep 0.05
done
reason=$(svc_field last_rollback.reason)
[ "$(svc_field rolled_back)" = True ] && [ "$(svc_field green_weight_bp)" = 0 ] &&
	ok "(c) rolled back: $reason" || notok "(c) no rollback after green1 died (reason '$reason')"
# No kernel sample to time it from: no reaction time (it read ~10 us, verdict to write,
# and pulled shift_rollback_reaction_seconds' p99 down).
react=$(svc_field last_rollback.reaction_us)
awk -v r="$react" 'BEGIN { exit !(r == 0) }' &&
	ok "(c) a health rollback records no reaction time (reaction_us $react)" ||
	notok "(c) a health rollback recorded reaction_us $react (want 0: no sample to time it from)"
[ "$(healthy blue1)" = true ] && [ "$(healthy blue2)" = true ] &&
	ok "(c) blue stays up" || notok "(c) blue went down"
code=$(rig_curl cli1 --max-time 2 -s -o /dev/null -w '%{http_code}' "$RIG_URL" 2>/dev/null)
[ "$code" = 200 ] && ok "(c) the VIP still answers (blue)" || notok "(c) the VIP answers '$code'"

for b in $RIG_BACKENDS; do
	nsenter --net="/run/netns/$RIG_ID-$b" -- nft delete table inet shift_hc 2>/dev/null || true
done
e2e_finish
