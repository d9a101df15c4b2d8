#!/bin/bash
# Consecutive errors are green's errors in a row by the samples' kernel time, not by
# the order they reach shiftd. Errors have a ring of their own that wakes shiftd at
# once; successes wait in the ordinary ring for a batch (SHIFT_WAKEUP_BATCH) or the
# tick, so the successes between two errors usually arrive after both.
#   spread  green answers 500 on every 10th request (never two in a row) under a
#           keep-alive load (wrk from cli1, green at 50 %): no rollback, while shiftd
#           saw green's 500s (at least 10 x max_consecutive_errors of them)
#   streak  then green answers 500 to everything: consecutive_errors fires as before
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

DURATION=${STREAK_DURATION:-8} # seconds of load in the spread phase
MAX_CONSEC=3

command -v wrk >/dev/null 2>&1 || rig_skip "missing wrk (Debian: wrk)"
# The rate triggers out of the way: 10 % errors is the point of the test.
e2e_up web.min_requests=20 "web.max_consecutive_errors=$MAX_CONSEC" web.max_error_rate=50% \
	web.max_error_rate_increase=off web.max_latency_p99=off web.max_latency_ratio=off \
	web.rollback_window=10s web.rollback_evict=yes
D=$RIG_DIR

out=$(ctl set-weight web 50) || notok "set-weight web 50: $out"

# --- spread ------------------------------------------------------------------------
note "--- spread: every 10th green answer a 500 ($((SECONDS - E2E_T0))s)"
rig_backend_mode green1 every:10 || notok "rig_backend_mode green1 every:10"
e0=$(green_errs http_5xx)
# 32 keep-alive connections: green's share of the requests is its share of them (the
# kernel picks the source ports), and with 4 of 32 it still answers the 30 errors
# wanted; 4 or fewer, once in 100,000 runs. With 16: 1 or none (~18 errors at most)
# once in 3,900 runs, 2 (~35, at the edge) once in 550.
rig_spawn cli1 "$D/wrk.log" wrk -t2 -c32 "-d${DURATION}s" --timeout 5s "$RIG_URL" ||
	notok "wrk did not start"
wrk_pid=$RIG_LAST_PID
for ((i = 0; i < DURATION * 10 + 50; i++)); do
	[ "$(svc rolled_back)" = True ] && break
	kill -0 "$wrk_pid" 2>/dev/null || break
	sleep 0.1
done
e2e_wait_pid "$wrk_pid" $((DURATION + 20)) || notok "wrk did not finish"
e1=$(green_errs http_5xx)
errs=$((e1 - e0))
reqs=$(awk '/requests in/ { print $1 }' "$D/wrk.log")
rb=$(svc rolled_back)
if [ "$rb" = True ]; then
	notok "spread: rolled back ($(svc last_rollback.reason)) after $errs green 500s, none two in a row"
elif [ "$errs" -lt $((10 * MAX_CONSEC)) ]; then
	notok "spread: only $errs green 500s reached shiftd (want >= $((10 * MAX_CONSEC))); wrk: $(tail -n 3 "$D/wrk.log" | tr '\n' ' ')"
else
	ok "spread: no rollback after $errs green 500s, none two in a row, among ${reqs:-?} requests (max_consecutive_errors $MAX_CONSEC)"
fi
# status --json's per-backend error rate (SPEC "status"): green1 one answer in 10,
# blue none.
rates=$(ctl status web --json | "$RIG_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)["services"][0]
print(" ".join("%s=%s" % (b["backend"], b["error_rate"]) for b in s["backends"]))')
green_rate=$(ctl status web --json | "$RIG_PYTHON" -c '
import json, sys
bs = json.load(sys.stdin)["services"][0]["backends"]
g = [b["error_rate"] for b in bs if b["color"] == "green"]
b = [b["error_rate"] for b in bs if b["color"] == "blue" and b["error_rate"] is not None]
print("ok" if len(g) == 1 and 0.08 <= g[0] <= 0.12 and all(x == 0 for x in b) else "bad")')
[ "$green_rate" = ok ] && ok "spread: per-backend error_rate in status --json: $rates" ||
	notok "spread: per-backend error_rate, want green ~0.1 and blue 0: $rates"

# --- streak ------------------------------------------------------------------------
note "--- streak: every green answer a 500 ($((SECONDS - E2E_T0))s)"
ctl clear web >/dev/null 2>&1
out=$(ctl set-weight web 50) || notok "set-weight web 50: $out"
rig_backend_mode green1 500 || notok "rig_backend_mode green1 500"
# 24 keep-alive connections: with 8, all of them hashed to blue once in 256 runs, and
# green answered nothing.
rig_spawn cli1 "$D/wrk2.log" wrk -t1 -c24 -d5s --timeout 5s "$RIG_URL" || notok "wrk did not start"
wrk_pid=$RIG_LAST_PID
if wait_rollback 10; then
	reason=$(svc last_rollback.reason)
	if [[ $reason == consecutive_errors* ]]; then
		ok "streak: rolled back, \"$reason\", reaction $(svc last_rollback.reaction_us) us"
	else
		notok "streak: rolled back for another reason: \"$reason\""
	fi
else
	notok "streak: no rollback within 10 s of green answering only 500s"
fi
e2e_wait_pid "$wrk_pid" 20 || notok "wrk did not finish"

e2e_finish
