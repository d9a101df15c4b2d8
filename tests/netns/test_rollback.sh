#!/bin/bash
# Automatic rollback under real load (issue 5): shiftd watches the return path and rolls
# green back on its own. Four ways for green to fail, one after the other on one rig:
#   500        green answers HTTP 500            -> consecutive_errors (HTTP 5xx samples)
#   rst        green resets every connection     -> consecutive_errors (backend RST samples)
#   blackhole  green drops SYNs (nftables)        -> consecutive_errors (the clients' SYN
#                                                   retransmits, ~1 s after each SYN; client
#                                                   timeout 4 s, past the 3 s retransmit)
#   slow       green answers 200 ms late; blue p99 a few ms (green p99 5x and more)
#                                                -> latency_ratio (green p99 > 5 x blue p99)
# The reaction time is reported, not bounded, here (bench_rollback measures it): for the
# latency trigger it includes the wakeup batching of ordinary samples (up to shiftd's
# 100 ms tick), for the error triggers it is tens of microseconds.
# Each scenario: green at 50 %, a warm-up load, then green fails and a fresh load of new
# connections (cli1, RATE/s) runs while shiftd notices. Checks, with figures:
#   - the rollback happened on its own, with the expected reason, and status --json shows
#     last_rollback.reason and reaction_us > 0 (sample's kernel time -> weight 0 written);
#   - few requests reached the failing green: at most max_consecutive_errors + SLACK for
#     500/rst (so well under min_requests + SLACK), at most min_requests + SLACK slow
#     answers for slow; for the blackhole, the detection time is bounded instead (every
#     SYN sent in the first second is lost before the first retransmit can tell);
#     SLACK = requests already on their way to green when the weight write lands;
#   - afterwards 100 % of new connections go blue (client side and shift's counters),
#     with zero failures, while green is still failing;
#   - the latch holds: set-weight without --force exits 1 and the weight stays 0.
# Between scenarios: shiftctl clear + set-weight, green back to normal. $ARM, when set,
# runs between the warm-up and green's failure.
# Exit 0 pass, 77 skipped, 1 fail.
# run.sh: alone (the slow scenario's warm-up compares green's p99 with blue's over a
# few dozen requests: a test in the other lane sets off the 5x ratio trigger early)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

RATE=${ROLLBACK_RATE:-200}    # new connections per second during a scenario
MIN_REQ=20                    # min_requests
MAX_CONSEC=5                  # max_consecutive_errors
SLACK=5                       # green requests in flight at the write (~0.2 expected at 100/s)
SLOW_MS=200                   # green's delay: fires while blue's p99 stays under 40 ms
DETECT_MAX_S=5                # blackhole: switch -> rollback

BASE_CONF=("web.min_requests=$MIN_REQ" "web.max_consecutive_errors=$MAX_CONSEC"
	web.max_error_rate=5% web.max_error_rate_increase=off web.max_latency_p99=off
	web.max_latency_ratio=off web.rollback_window=10s web.rollback_evict=yes)

e2e_up "${BASE_CONF[@]}"
D=$RIG_DIR

now_ns() { date +%s%N; }
jget() { e2e_py get "$1" "$2"; } # FILE KEY: a field of a client's JSON
green_of() { # FILE: answers from green backends
	"$RIG_PYTHON" -c '
import json, sys
j = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
print(sum(v for k, v in j.get("by_backend", {}).items() if k.startswith("green")))' "$1"
}

# pools_line: both pools' windows, for a trigger that did not fire
pools_line() {
	ctl status web --json | "$RIG_PYTHON" -c '
import json, sys
s = [s for s in json.load(sys.stdin)["services"] if s["service"] == "web"][0]
print(", ".join("%s %s answers, %s errors, p99 %.3f ms" % (c, p.get("window_requests"),
      p.get("window_errors"), 1e3 * (p.get("latency_p99_seconds") or 0))
      for c, p in s["pools"].items()))'
}

# reset: green healthy, latch cleared, green at 50 %.
reset() {
	rig_backend_mode green1 ok
	rig_backend_blackhole green1 off
	ctl clear web >/dev/null || notok "reset: shiftctl clear web failed"
	ctl set-weight web 50 >/dev/null || notok "reset: shiftctl set-weight web 50 failed"
}

# scenario NAME WANT_REASON FAIL-CMD...: see the header.
scenario() {
	local name=$1 want=$2 t_sw t_rb rb reason react failed errs green bound w rc out
	local tmo=2
	shift 2
	[ "$name" = blackhole ] && tmo=4 # > the SYN retransmit at 3 s, which goes blue
	reset
	# warm-up: both pools have a window of successes (and latencies) before green fails
	rig_client_py cli1 rate --url "$RIG_URL" --rate "$RATE" --duration 2 --concurrency 16 \
		--timeout 2 >"$D/$name.warm.json"
	rb=$(svc rolled_back)
	if [ "$rb" != False ] || [ "$(jget "$D/$name.warm.json" failed)" != 0 ] ||
		[ "$(green_of "$D/$name.warm.json")" = 0 ]; then
		notok "$name: warm-up: rolled_back=$rb, $(jget "$D/$name.warm.json" failed) failed," \
			"$(green_of "$D/$name.warm.json") green answers (want False, 0, > 0)"
		return 1
	fi
	if [ -n "${ARM:-}" ] && ! "$ARM"; then
		return 1
	fi
	t_sw=$(now_ns)
	"$@" || { notok "$name: could not make green fail ($*)"; return 1; }
	e2e_client cli1 "$D/$name.load.json" rate --url "$RIG_URL" --rate "$RATE" --duration 4 \
		--concurrency 16 --timeout "$tmo"
	local load=$E2E_PID i pools=""
	# Like wait_rollback 10, but keeps what the windows held when the load ended: by
	# the end of the wait they have aged out, and a miss needs both p99s explained.
	for ((i = 0; i < 100; i++)); do
		[ "$(svc rolled_back)" = True ] && break
		[ -z "$pools" ] && ! kill -0 "$load" 2>/dev/null && pools=$(pools_line)
		sleep 0.1
	done
	if [ "$(svc rolled_back)" != True ]; then
		notok "$name: no automatic rollback within 10 s (green weight $(svc green_weight_bp) bp;" \
			"windows when the load ended: ${pools:-$(pools_line)})"
		e2e_wait_pid "$load" 20
		return 1
	fi
	e2e_wait_pid "$load" 20 || notok "$name: the load client did not finish"
	t_rb=$(svc last_rollback.unix_ns)
	reason=$(svc last_rollback.reason)
	react=$(svc last_rollback.reaction_us)
	failed=$(jget "$D/$name.load.json" failed)
	errs=$(jget "$D/$name.load.json" errors)
	green=$(green_of "$D/$name.load.json")
	local detect_ms=$(((t_rb - t_sw) / 1000000))

	# reason and reaction time
	# consecutive_errors names the backend by its address, not its slot
	if [[ $reason == "$want"* ]] && awk -v r="$react" 'BEGIN { exit !(r > 0) }' &&
		{ [ "$want" != consecutive_errors ] || [[ $reason == *" from $(rig_backend_addr green1 4):"* ]]; }; then
		ok "$name: automatic rollback \"$reason\", reaction ${react} us, ${detect_ms} ms after green failed"
	else
		notok "$name: last_rollback.reason \"$reason\" (want $want...), reaction_us \"$react\" (want > 0)"
	fi

	# what reached the clients
	case $name in
	500 | rst)
		# every failure a client saw: the 500s / resets from green, and any in-flight
		# green connection cut by the evict
		bound=$((MAX_CONSEC + SLACK))
		if [ "$failed" -ge 1 ] && [ "$failed" -le "$bound" ]; then
			ok "$name: $failed errors reached clients (errors $errs; $green answers from green) of $(jget "$D/$name.load.json" sent) requests; bound max_consecutive_errors + slack = $bound (min_requests $MIN_REQ)"
		else
			notok "$name: $failed errors reached clients (errors $errs; $green answers from green); want 1..$bound"
		fi
		;;
	blackhole)
		if [ "$detect_ms" -le $((DETECT_MAX_S * 1000)) ]; then
			ok "blackhole: detected ${detect_ms} ms after green stopped answering SYNs (SYN retransmit at ~1 s; bound ${DETECT_MAX_S} s); clients: $failed of $(jget "$D/$name.load.json" sent) failed, $(jget "$D/$name.load.json" skipped) not sent while hung connects filled the client's 16 slots; their SYN retransmits at 3 s went blue after the evict (client p99 $(jget "$D/$name.load.json" p99_ms) ms)"
		else
			notok "blackhole: detected ${detect_ms} ms after green stopped answering SYNs (want <= ${DETECT_MAX_S} s)"
		fi
		;;
	slow)
		# A failure here can only be a slow green request in flight when the evict cut
		# its connection (a reset): at most the load client's 16 in flight (at 100
		# green requests/s of 200 ms each, most of them are green's).
		bound=$((MIN_REQ + SLACK))
		local cut
		cut=$(($(e2e_py get "$D/$name.load.json" errors.reset) + $(e2e_py get "$D/$name.load.json" errors.closed)))
		if [ "$green" -le "$bound" ] && [ "$failed" = "$cut" ] && [ "$cut" -le 16 ]; then
			ok "slow: $green slow answers from green reached clients (bound min_requests + slack = $bound); $cut in-flight green requests cut by the evict; client p99 $(jget "$D/$name.load.json" p99_ms) ms"
		else
			notok "slow: $green slow answers from green (want <= $bound), $failed failed (errors $errs; want only resets, <= 16)"
		fi
		;;
	esac

	# afterwards: every new connection goes blue, none fails (green still failing)
	e2e_snap "$D/$name.before.json"
	rig_client_py cli2 new --url "$RIG_URL" --count 300 --concurrency 8 --timeout 2 \
		--deadline 30 >"$D/$name.after.json"
	e2e_snap "$D/$name.after.json.status"
	local g_cl g_sh
	g_cl=$(green_of "$D/$name.after.json")
	g_sh=$(e2e_py delta web "$D/$name.before.json" "$D/$name.after.json.status" |
		"$RIG_PYTHON" -c 'import json, sys; d = json.load(sys.stdin); print(sum(v["connections"] for k, v in d.items() if k.startswith("green")))')
	if [ "$g_cl" = 0 ] && [ "$g_sh" = 0 ] && [ "$(jget "$D/$name.after.json" ok)" = 300 ]; then
		ok "$name: afterwards 300/300 new connections went blue (green: client 0, shift 0), 0 failed"
	else
		notok "$name: afterwards green answered $g_cl (shift counted $g_sh new green connections), ok $(jget "$D/$name.after.json" ok)/300 (errors $(jget "$D/$name.after.json" errors))"
	fi

	# the latch holds
	out=$(ctl set-weight web 50 2>&1)
	rc=$?
	w=$(svc green_weight_bp)
	if [ "$rc" = 1 ] && [ "$w" = 0 ] && [ "$(svc rolled_back)" = True ]; then
		ok "$name: latch holds: set-weight web 50 exit 1 (\"${out//$'\n'/ }\"), weight stays 0"
	else
		notok "$name: set-weight web 50 without --force: exit $rc, weight $w bp, rolled_back $(svc rolled_back)"
	fi
}

scenario 500 consecutive_errors rig_backend_mode green1 500
scenario rst consecutive_errors rig_backend_mode green1 rst
scenario blackhole consecutive_errors rig_backend_blackhole green1 on

# slow: the latency trigger on, by a reload after the warm-up (ARM), so a scheduling
# hiccup in a healthy warm-up cannot look like a slow green: the one green backend
# carries as much as both blue ones together, and its healthy p99 reached 5.1x blue's
# in a warm-up here. The reload keeps the windows. Blue's p99 over the window is its
# third-slowest of a few hundred answers: 0.6-4 ms on a quiet host, 22 ms seen here,
# and a green 50 ms late once missed the 5x in CI. 200 ms late fires while blue's p99
# stays under 40 ms.
arm_latency() {
	local out
	if ! rig_write_config "$RIG_CONFIG" xdp_mode=auto web.health_check=none \
		web6.health_check=none "${BASE_CONF[@]}" web.max_latency_ratio=5.0 ||
		! out=$(ctl reload 2>&1); then
		notok "slow: shiftctl reload (max_latency_ratio = 5.0) failed: ${out:-}"
		return 1
	fi
}
ARM=arm_latency
scenario slow latency_ratio rig_backend_mode green1 "slow:$SLOW_MS"

e2e_finish
