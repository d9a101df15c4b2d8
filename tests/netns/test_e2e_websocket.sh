#!/usr/bin/env bash
# shellcheck disable=SC2015 # "A && ok || notok": ok always returns 0
# WebSocket-shaped connections through the edge (README, "Analysis of TLS and HTTP/2"): an
# upgrade request answered "101 Switching Protocols", a frame each way (the client's
# starts like a request line), then the server's FIN before the client's, as RFC 6455 has
# servers close (ws_peer.py plays both ends). A 101 answers its request and ends the
# reading of the connection, so for both analysis = auto (service ws) and analysis = http
# (service wsh), green at 50 %:
#  - every connection completes (ws_peer.py client: ok N);
#  - no backend counts an error of any kind (before the 101 closed the request, every
#    server's close under auto was an early_close), no rollback;
#  - each connection's 101 is counted once as a 1xx answer.
# (That a 101 is sampled as a response, with its latency, bpf_test http_upgrade and l7
# check packet by packet; before, every server's close under auto was an early_close,
# 20 errors and a rollback here.)
# Exit 0 pass, 77 skipped, 1 fail.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_BLUE=1 RIG_GREEN=1
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

N=${E2E_WS_N:-20}
WS_PORT=8090 WSH_PORT=8091
BLUE=$(rig_backend_addr blue1) GREEN=$(rig_backend_addr green1)
RIG_CONFIG_EXTRA="
[service ws]
vip = $RIG_VIP:82
blue = $BLUE:$WS_PORT
green = $GREEN:$WS_PORT
health_check = none

[service wsh]
vip = $RIG_VIP:83
blue = $BLUE:$WSH_PORT
green = $GREEN:$WSH_PORT
health_check = none
analysis = http
"
export RIG_CONFIG_EXTRA
# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up

D=$RIG_DIR/ws
mkdir -p "$D"
for b in blue1 green1; do
	for p in $WS_PORT $WSH_PORT; do
		rig_spawn "$b" "$D/$b.$p.log" "$RIG_PYTHON" -u "$HERE/ws_peer.py" server --port "$p" ||
			{ notok "ws_peer.py server in $b:$p"; e2e_finish; }
	done
done
for b in blue1 green1; do
	for p in $WS_PORT $WSH_PORT; do
		e2e_listening "$b" "$p" ||
			{ notok "ws_peer.py server in $b:$p: not listening"; e2e_finish; }
	done
done

for svc in ws wsh; do
	if [ "$svc" = ws ]; then port=82 mode=auto; else port=83 mode=http; fi
	out=$(ctl set-weight "$svc" 50 2>&1) || notok "set-weight $svc 50: $out"
	r1=$(backend_sum "$svc" 'b["responses"]["1xx"]')
	out=$(rig_nsenter cli1 timeout 60 "$RIG_PYTHON" "$HERE/ws_peer.py" client --host "$RIG_VIP" \
		--port "$port" -n "$N" 2>&1)
	[ "$out" = "ok $N" ] && ok "$svc ($mode): $N WebSocket-shaped connections completed" ||
		notok "$svc ($mode): $N connections: $out"
	errs=$(backend_sum "$svc" 'b["errors"]')
	ec=$(backend_sum "$svc" 'b["errors_by_kind"]["early_close"]')
	conns=$(backend_sum "$svc" 'b["connections"]')
	blue=$(svc_eval "$svc" '" ".join("%s:%d" % (b["color"], b["connections"]) for b in s["backends"])')
	[ "$errs" = 0 ] && ok "$svc ($mode): no backend error (early_close $ec; connections $blue)" ||
		notok "$svc ($mode): backend errors $errs, of them early_close $ec (connections $blue)"
	rb=$(svc_eval "$svc" 's["rolled_back"]' 2>/dev/null || echo "?")
	[ "$rb" = False ] && ok "$svc ($mode): not rolled back" || notok "$svc ($mode): rolled_back $rb"
	r2=$(backend_sum "$svc" 'b["responses"]["1xx"]')
	[ "$((r2 - r1))" = "$N" ] &&
		ok "$svc ($mode): each 101 counted once: 1xx +$((r2 - r1)) ($conns connections)" ||
		notok "$svc ($mode): 1xx +$((r2 - r1)), want +$N ($conns connections)"
done
e2e_finish
