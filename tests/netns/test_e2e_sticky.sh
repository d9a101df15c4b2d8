#!/bin/bash
# End to end (issue 4): stickiness. 50 keep-alive HTTP connections opened at green 10 %
# keep their backend (every answer names it) while the weight goes 10 -> 90 -> 0 -> 50 %
# (shiftctl set-weight between phases); zero resets, zero failed requests. In each phase a
# probe of new connections from the other client shows the weight really changed, and
# shift's per-backend counters account for every connection and request.
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

CONNS=${E2E_STICKY_CONNS:-50}
PROBE=${E2E_STICKY_PROBE:-400}   # new connections per phase from cli2

# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up
D=$RIG_DIR
CTL=$D/ka.control READY=$D/ka.ready

setphase() { e2e_setphase "$CTL" "$1"; }

ctl set-weight web 10 >/dev/null || notok "shiftctl set-weight web 10 failed"
setphase 10%
e2e_snap "$D/sticky.before.json"
e2e_client cli1 "$D/ka.json" keepalive --url "$RIG_URL" --conns "$CONNS" --duration 60 \
	--interval 100 --control-file "$CTL" --ready-file "$READY"
KA=$E2E_PID
if ! e2e_wait_file "$READY" 15; then
	notok "sticky: $CONNS keep-alive connections not all answered within 15 s"
	setphase stop
	e2e_wait_pid "$KA" 10
	cat "$D/ka.json" >&2
	e2e_finish
fi

probes=()
for w in 10 90 0 50; do
	t0=$SECONDS
	if [ "$w" != 10 ]; then
		out=$(ctl set-weight web "$w") || notok "sticky: shiftctl set-weight web $w failed: $out"
		setphase "$w%"
	fi
	case $w in 0) tol=0 ;; 50) tol=1000 ;; *) tol=600 ;; esac
	label="sticky phase $w%: probe"
	e2e_snap "$D/$label.before.json"
	e2e_new "$D/$label.cli2.json" cli2 "$RIG_URL" "$PROBE" || notok "$label: cannot start client"
	e2e_wait_pid "$E2E_PID" 40 || notok "$label: client did not finish"
	e2e_snap "$D/$label.after.json"
	e2e_verify_new "$label" web "$((w * 100))" "$tol" "$D/$label.before.json" "$D/$label.after.json" \
		"$D/$label.cli2.json"
	probes+=("$D/$label.cli2.json")
	sleep 1 # ten more keep-alive rounds in this phase
	note "phase $w%: $((SECONDS - t0))s"
done
setphase stop
e2e_wait_pid "$KA" 15 || notok "sticky: keepalive client did not stop within 15 s"
e2e_snap "$D/sticky.after.json"
e2e_run_py sticky "sticky 10->90->0->50%" web "$D/sticky.before.json" "$D/sticky.after.json" \
	"$D/ka.json" "10%,90%,0%,50%" "${probes[@]}"

e2e_finish
