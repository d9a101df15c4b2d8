#!/usr/bin/env bash
# shellcheck disable=SC2015 # "A && ok || notok": ok always returns 0
# HTTP/1.1 interim responses and the final one in one TCP segment, through the edge
# (README, "Analysis of TLS and HTTP/2"): a server that writes them together, or GRO
# merging them before a TC hook. interim_peer.py plays both ends: blue writes
# "100 Continue", "103 Early Hints" (two Link headers) and "200 OK" in one send, green
# "100 Continue" and "503" in one; each closes first ("Connection: close"). For both
# analysis = auto (service ia) and analysis = http (service ih), green at 50 %, 30
# connections:
#  - every connection completes, with its interim responses and a 200 or a 503;
#  - blue counts no error (before, under auto, each of its closes was an early_close:
#    the 200 behind the interim responses went unseen and left the request open);
#  - green counts each 503 the clients saw as an http_5xx, and no early_close (before,
#    none was seen: under http green counted nothing, under auto early_closes);
#  - so the 503s reach the triggers: max_consecutive_errors rolls green back, the last
#    error an http_5xx (before, under auto, an early_close did; under http nothing);
#  - the 1xx counts: 2 per blue connection, 1 per green one; 2xx: blue's 200s.
# test_e2e_tc.sh runs this again with TC and the kernel's default offloads.
# (bpf_test l7 and http_upgrade check the same packet by packet, XDP and TC.)
# Exit 0 pass, 77 skipped, 1 fail.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_BLUE=1 RIG_GREEN=1
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

N=${E2E_INTERIM_N:-30}
IA_PORT=8092 IH_PORT=8093
BLUE=$(rig_backend_addr blue1) GREEN=$(rig_backend_addr green1)
RIG_CONFIG_EXTRA="
[service ia]
vip = $RIG_VIP:84
blue = $BLUE:$IA_PORT
green = $GREEN:$IA_PORT
health_check = none

[service ih]
vip = $RIG_VIP:85
blue = $BLUE:$IH_PORT
green = $GREEN:$IH_PORT
health_check = none
analysis = http
"
export RIG_CONFIG_EXTRA
# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up

D=$RIG_DIR/interim
mkdir -p "$D"
for b in blue1 green1; do
	if [ "$b" = blue1 ]; then args=(--interim "100,103" --final 200); else args=(--interim 100 --final 503); fi
	for p in $IA_PORT $IH_PORT; do
		rig_spawn "$b" "$D/$b.$p.log" "$RIG_PYTHON" -u "$HERE/interim_peer.py" server --port "$p" \
			"${args[@]}" || { notok "interim_peer.py server in $b:$p"; e2e_finish; }
	done
done
for b in blue1 green1; do
	for p in $IA_PORT $IH_PORT; do
		e2e_listening "$b" "$p" ||
			{ notok "interim_peer.py server in $b:$p: not listening"; e2e_finish; }
	done
done

for svc in ia ih; do
	if [ "$svc" = ia ]; then port=84 mode=auto; else port=85 mode=http; fi
	out=$(ctl set-weight "$svc" 50 2>&1) || notok "set-weight $svc 50: $out"
	r1=$(backend_sum "$svc" 'b["responses"]["1xx"]')
	r2=$(backend_sum "$svc" 'b["responses"]["2xx"]' blue)
	out=$(rig_nsenter cli1 timeout 60 "$RIG_PYTHON" "$HERE/interim_peer.py" client \
		--host "$RIG_VIP" --port "$port" -n "$N" 2>&1)
	read -r word n ok200 ok503 <<<"$out"
	ok200=${ok200#200:} ok503=${ok503#503:}
	[ "$word $n" = "ok $N" ] &&
		ok "$svc ($mode): $N connections completed, each with its interim responses ($ok200 x 200, $ok503 x 503)" ||
		{ notok "$svc ($mode): $N connections: $out"; continue; }
	be=$(backend_sum "$svc" 'b["errors"]' blue)
	bec=$(backend_sum "$svc" 'b["errors_by_kind"]["early_close"]' blue)
	[ "$be" = 0 ] && ok "$svc ($mode): blue (100, 103 and its 200 in one segment): no error" ||
		notok "$svc ($mode): blue: $be errors, of them early_close $bec"
	g5=$(backend_sum "$svc" 'b["errors_by_kind"]["http_5xx"]' green)
	gec=$(backend_sum "$svc" 'b["errors_by_kind"]["early_close"]' green)
	[ "$g5" = "$ok503" ] && [ "$gec" = 0 ] &&
		ok "$svc ($mode): green (100 and its 503 in one segment): http_5xx $g5, as many as the clients' 503s; early_close 0" ||
		notok "$svc ($mode): green: http_5xx $g5 (clients saw $ok503 503s), early_close $gec"
	rb=$(svc_eval "$svc" 's["rolled_back"]' 2>/dev/null || echo "?")
	why=$(svc_eval "$svc" 's["last_rollback"].get("reason", "")' 2>/dev/null)
	[ "$rb" = True ] && [[ $why == *"last: http_5xx "* ]] &&
		ok "$svc ($mode): rolled back by green's 503s: \"$why\"" ||
		notok "$svc ($mode): rolled_back $rb (\"$why\") after $ok503 x 503 from green"
	d1=$(($(backend_sum "$svc" 'b["responses"]["1xx"]') - r1))
	d2=$(($(backend_sum "$svc" 'b["responses"]["2xx"]' blue) - r2))
	[ "$d1" = $((2 * ok200 + ok503)) ] && [ "$d2" = "$ok200" ] &&
		ok "$svc ($mode): 1xx +$d1 (2 per blue connection, 1 per green one), blue's 2xx +$d2" ||
		notok "$svc ($mode): 1xx +$d1, want $((2 * ok200 + ok503)); blue's 2xx +$d2, want $ok200"
done
e2e_finish
