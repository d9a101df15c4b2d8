#!/bin/bash
# Rollbacks across a restart of shiftd. The datapath runs on without it (fail-static)
# and keeps writing samples into the pinned rings, which the next shiftd reads.
#   backlog  max_consecutive_errors = 3, green at 100 %; shiftd stopped; green answers
#            500 x4, then 200 x30; shiftd started again reads those samples: no
#            rollback (green has been healthy since its errors), one log line counts
#            the 4 errors; then green answers 500 again and its fresh errors roll it
#            back, with a reaction time of their own (not the backlog's age)
#   crash    shiftd killed (-9) by the notify hook, which runs right after an automatic
#            rollback: the state file already says latched (not only from the next
#            100 ms tick on), and a reboot (the pins gone: shiftd --detach, then a
#            start) comes back rolled back
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

MAX_CONSEC=3
# Only the streak: the rate triggers would see the backlog's 4 errors in 34 answers.
CONF=("web.max_consecutive_errors=$MAX_CONSEC" web.min_requests=1000 web.max_error_rate=off
	web.max_error_rate_increase=off web.max_latency_p99=off web.max_latency_ratio=off
	web.rollback_window=10s web.rollback_evict=yes)
e2e_up "${CONF[@]}"
D=$RIG_DIR

# requests N: N new connections to the VIP from cli1, one after the other
requests() {
	local i
	for ((i = 0; i < $1; i++)); do
		rig_curl cli1 -o /dev/null "$RIG_URL" || return 1
	done
}

# --- backlog -----------------------------------------------------------------------
note "--- backlog: green fails and recovers while shiftd is stopped ($((SECONDS - E2E_T0))s)"
out=$(ctl set-weight web 100) || notok "set-weight web 100: $out"
e0=$(green_errs http_5xx)
rig_kill "$E2E_SHIFTD_PID" # SIGTERM: a package upgrade's restart
rig_backend_mode green1 500 || notok "rig_backend_mode green1 500"
requests 4 || notok "backlog: 4 requests to green (500)"
rig_backend_mode green1 ok || notok "rig_backend_mode green1 ok"
requests 30 || notok "backlog: 30 requests to green (200)"
sleep 2 # the samples wait in the rings, older than the next shiftd
e2e_start_shiftd || { notok "backlog: shiftd did not start again"; e2e_finish; }
sleep 1.5 # more than the backlog needs: a replay rolls back within milliseconds
e1=$(green_errs http_5xx)
down=$(grep -o '[0-9]* green errors while shiftd was down' "$E2E_SHIFTD_LOG")
if [ "$(svc rolled_back)" = False ] && [ "$(svc green_weight_bp)" = 10000 ]; then
	ok "backlog: no rollback at the restart ($((e1 - e0)) green 500s in the counters, then 30 answers; log: \"${down:-nothing}\")"
else
	notok "backlog: rolled back at the restart: \"$(svc last_rollback.reason)\", reaction $(svc last_rollback.reaction_us) us"
fi
if [ "$down" = "4 green errors while shiftd was down" ]; then
	ok "backlog: shiftd logged \"$down\""
else
	notok "backlog: want \"4 green errors while shiftd was down\" in the log, got \"$down\""
fi
ctl clear web >/dev/null 2>&1 # whatever the replay did, the next check starts latch-free
out=$(ctl set-weight web 100) || notok "set-weight web 100: $out"
rig_backend_mode green1 500 || notok "rig_backend_mode green1 500"
requests $((MAX_CONSEC + 2)) || notok "backlog: requests to green (500) after the restart"
if wait_rollback 5; then
	reason=$(svc last_rollback.reason)
	react=$(svc last_rollback.reaction_us)
	# Microseconds here; a backlog sample's age would be seconds.
	if [[ $reason == consecutive_errors* ]] && awk -v r="$react" 'BEGIN { exit !(r > 0 && r < 1e6) }'; then
		ok "backlog: green failing after the restart: rolled back, \"$reason\", reaction $react us"
	else
		notok "backlog: rolled back with \"$reason\", reaction $react us (want consecutive_errors, 0 < reaction < 1 s)"
	fi
else
	notok "backlog: no rollback within 5 s of green answering 500 after the restart"
fi
rig_backend_mode green1 ok

# --- crash -------------------------------------------------------------------------
note "--- crash: shiftd killed right after an automatic rollback ($((SECONDS - E2E_T0))s)"
STATE=$RIG_STATE_DIR/state
# latched_in_state: web's latched= in the state file
latched_in_state() { sed -n 's/^name=web .*latched=\([01]\).*/\1/p' "$STATE"; }
# The hook is spawned by shiftd itself, last in the rollback: $PPID is that shiftd.
# shellcheck disable=SC2016 # $PPID is the hook's own
printf '#!/bin/sh\n# A crash right after the rollback.\nkill -KILL $PPID\n' >"$D/kill9.sh"
chmod 755 "$D/kill9.sh"
rig_write_config "$RIG_CONFIG" xdp_mode=auto web.health_check=none web6.health_check=none \
	"${CONF[@]}" "notify_command=$D/kill9.sh" || notok "crash: config with the hook"
out=$(ctl reload 2>&1) || notok "crash: reload (notify_command): $out"
ctl clear web >/dev/null || notok "crash: clear web"
out=$(ctl set-weight web 100) || notok "crash: set-weight web 100: $out"
rig_backend_mode green1 ok
before=$(latched_in_state)
pid=$E2E_SHIFTD_PID
rig_backend_mode green1 500 || notok "rig_backend_mode green1 500"
requests $((MAX_CONSEC + 2)) || notok "crash: requests to green (500)"
for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
{ wait "$pid"; st=$?; } 2>/dev/null
rig_backend_mode green1 ok
after=$(latched_in_state)
if [ "$st" = 137 ] && [ "$before" = 0 ] && [ "$after" = 1 ]; then
	ok "crash: shiftd killed by the hook (status $st); the state file said latched=$before before, latched=$after at the kill"
else
	notok "crash: shiftd status $st (want 137 from the hook); state file latched=$before before, latched=$after at the kill (want 0, then 1)"
fi
# A reboot: programs and pins gone, the state file alone says what was rolled back.
rig_edge "$SHIFTD" --config "$RIG_CONFIG" --detach >"$D/detach.log" 2>&1 ||
	notok "crash: shiftd --detach: $(tail -n 2 "$D/detach.log")"
if e2e_start_shiftd; then
	if [ "$(svc rolled_back)" = True ] && [ "$(svc green_weight_bp)" = 0 ]; then
		ok "crash: after the reboot web is still rolled back (\"$(svc last_rollback.reason)\")"
	else
		notok "crash: after the reboot web is not rolled back: rolled_back $(svc rolled_back), green weight $(svc green_weight_bp) bp"
	fi
else
	notok "crash: shiftd did not start after the reboot"
fi

e2e_finish
