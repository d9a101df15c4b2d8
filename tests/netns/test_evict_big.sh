#!/bin/bash
# A rollback's eviction at a large connection table (rollback_evict = yes): shiftd
# walks it a chunk per loop turn, not in one go. The table is filled by flowtab
# (idle entries written straight into the pinned shift_flows4): 300000 of web's green,
# 100000 of web's blue, 100000 of web6's green. Then green answers 500:
#   - web rolls back, and every green entry of web goes (the written ones and the
#     real ones), counted in the log, over more than one loop turn; web's blue stay
#   - web6's green fails while that runs: web6 rolls back too, its green entries go
#   - the control socket answers while the eviction runs (status)
#   - a reload that removes web6 drops all of its entries (100000 more, blue)
# Timings are not asserted (the loop stall is measured, not tested: see the commit).
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

FLOWTAB=$E2E_OUT/tests/flowtab
N_GREEN=300000
N_BLUE=100000
N_WEB6=100000
TRIGGERS=(max_consecutive_errors=3 min_requests=100000 max_error_rate=off
	max_error_rate_increase=off max_latency_p99=off max_latency_ratio=off rollback_evict=yes)

if [ ! -x "$FLOWTAB" ]; then
	make -s -C "$E2E_ROOT" "$FLOWTAB" >/dev/null 2>&1 ||
		{ echo "not ok - setup: $FLOWTAB not built (make tests)"; exit 1; }
fi
e2e_up "${TRIGGERS[@]/#/web.}" "${TRIGGERS[@]/#/web6.}"
T4=$RIG_BPFFS_DIR/maps/shift_flows4
flowtab() { rig_edge "$FLOWTAB" "$@"; }
t_expect() { if [ "$2" = "$3" ]; then ok "$1 ($2)"; else notok "$1: got '$2', want '$3'"; fi; }
# blue_kept DESC: web's blue entries: the written ones and the few real ones (the
# requests after the rollback went blue)
blue_kept() {
	local n
	n=$(flowtab count "$T4" "$sid" 0)
	if [ "${n:-0}" -ge $N_BLUE ] && [ "$n" -le $((N_BLUE + 16)) ]; then
		ok "$1 ($n: the $N_BLUE written and the real ones)"
	else
		notok "$1: $n, want $N_BLUE and up to 16 real ones"
	fi
}
# svc_of SERVICE KEY: a field of SERVICE in status --json
svc_of() {
	ctl status "$1" --json | "$RIG_PYTHON" -c '
import json, sys
print([s for s in json.load(sys.stdin)["services"] if s["service"] == sys.argv[1]][0][sys.argv[2]])' "$1" "$2"
}

out=$(ctl set-weight web 100) || notok "set-weight web 100: $out"
out=$(ctl set-weight web6 100) || notok "set-weight web6 100: $out"
sid=$(rig_svc_id web)
sid6=$(rig_svc_id web6)
# be_id SERVICE COLOR: the id of the service's first backend of that color
be_id() {
	ctl backends "$1" --json | "$RIG_PYTHON" -c '
import json, sys
print([b["id"] for b in json.load(sys.stdin) if b["color"] == sys.argv[1]][0])' "$2"
}
if ! g=$(flowtab fill "$T4" $N_GREEN "$sid" 1 "$(be_id web green)" 0) ||
	! b=$(flowtab fill "$T4" $N_BLUE "$sid" 0 "$(be_id web blue)" $N_GREEN) ||
	! g6=$(flowtab fill "$T4" $N_WEB6 "$sid6" 1 "$(be_id web6 green)" $((N_GREEN + N_BLUE))); then
	notok "setup: flowtab fill"
	e2e_finish
fi
note "written: $g green and $b blue entries of web (id $sid), $g6 green of web6 (id $sid6)"

# evicted_line SERVICE: shiftd's log line for the end of SERVICE's green eviction
evicted_line() { grep -o "service $1: [0-9]* green connections re-steered to blue.*" "$E2E_SHIFTD_LOG"; }
# wait_log PATTERN SECONDS
wait_log() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q "$1" "$E2E_SHIFTD_LOG" && return 0
		sleep 0.1
	done
	return 1
}

rig_backend_mode green1 500 || notok "rig_backend_mode green1 500"
for i in 1 2 3 4; do rig_curl cli1 -o /dev/null "$RIG_URL"; done
wait_log "service web: ROLLBACK" 10 || notok "web: no rollback within 10 s of green answering 500"
# While web's eviction runs: web6's green fails too, and the control socket answers.
for i in 1 2 3 4; do rig_curl cli1 -o /dev/null "$RIG_URL6"; done
running=yes
evicted_line web >/dev/null && running="no (over already)"
if st=$(ctl status web --json) && [ "$(rig_json_get agent_running <<<"$st")" = True ]; then
	ok "status answered; web's eviction still running when it was asked: $running"
else
	notok "status did not answer during web's eviction"
fi
wait_log "service web: [0-9]* green connections re-steered" 60 ||
	notok "web: the eviction did not end within 60 s"
wait_log "service web6: [0-9]* green connections re-steered" 60 ||
	notok "web6: no rollback and eviction within 60 s"
rig_backend_mode green1 ok

line=$(evicted_line web)
n=$(sed -n 's/^service web: \([0-9]*\) green.*/\1/p' <<<"$line")
turns=$(sed -n 's/.*, \([0-9]*\) loop turns\?).*/\1/p' <<<"$line")
left=$(flowtab count "$T4" "$sid" 1)
if [ "${n:-0}" -ge $N_GREEN ] && [ "$left" = 0 ] && [ "${turns:-0}" -gt 1 ]; then
	ok "web: every green entry evicted ($n: the $N_GREEN written and the real ones), over $turns loop turns, $left left [$line]"
else
	notok "web: evicted '$n' (want >= $N_GREEN), $left green entries left (want 0), over '$turns' loop turns (want > 1) [$line]"
fi
blue_kept "web: blue entries kept"
line6=$(evicted_line web6)
n6=$(sed -n 's/^service web6: \([0-9]*\) green.*/\1/p' <<<"$line6")
if [ "$(svc_of web6 rolled_back)" = True ] &&
	[ "${n6:-0}" -ge $N_WEB6 ] && [ "$(flowtab count "$T4" "$sid6" 1)" = 0 ]; then
	ok "web6: rolled back during web's eviction ($(grep -o 'service web6: ROLLBACK.*' "$E2E_SHIFTD_LOG" | cut -c1-80)...), its $n6 green entries evicted"
else
	notok "web6: evicted '$n6' (want >= $N_WEB6), $(flowtab count "$T4" "$sid6" 1) green left [$line6]"
fi

# --- a reload removes web6: its entries go too ------------------------------------------
flowtab fill "$T4" $N_WEB6 "$sid6" 0 "$(be_id web6 blue)" $((N_GREEN + N_BLUE + N_WEB6)) >/dev/null ||
	notok "setup: flowtab fill (web6 blue)"
RIG_SVC6='' rig_write_config "$RIG_CONFIG" xdp_mode=auto web.health_check=none \
	"${TRIGGERS[@]/#/web.}" || notok "setup: config without web6"
out=$(ctl reload 2>&1) || notok "reload without web6: $out"
if wait_log "service web6 (removed): [0-9]* connections dropped" 60; then
	line=$(grep -o 'service web6 (removed): .*' "$E2E_SHIFTD_LOG")
	t_expect "reload without web6: its entries left [$line]" "$(flowtab count "$T4" "$sid6")" 0
else
	notok "reload without web6: no end of its eviction within 60 s"
fi
blue_kept "web: blue entries still kept after the reload"

e2e_finish
