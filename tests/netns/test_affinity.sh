#!/bin/bash
# End to end (issue 15): client affinity. 100 client addresses x 6 connections through the
# XDP datapath with affinity = client: at 30 % every client lands on one color and 30 +- 12
# clients are green; raised to 60 % no client went back from green to blue; after a
# rollback every client is blue. The same over IPv6 with affinity_prefix6 = 64: 100 /64s,
# each client's six connections from two addresses inside its /64 (they share a color,
# distinct /64s draw apart). `shiftctl which` is checked against the backend that really
# answered, for connections (ADDR:PORT) and for clients (ADDR).
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${RIG_BLUE:=2}" "${RIG_GREEN:=2}"
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

NCLI=100
e2e_up web.affinity=client web6.affinity=client web6.affinity_prefix6=64
D=$RIG_DIR
AFF_PY=$HERE/affinity_client.py

# --- 100 v4 clients (198.18.201.1-100) and 100 v6 /64s (2001:db8:c1:N::2 and ::3) on cli1
cmac=$(_rig_mac "$RIG_ID-cli1" "${RIG_ID}e1")
{
	for ((c = 1; c <= NCLI; c++)); do
		echo "addr add 198.18.201.$c/32 dev ${RIG_ID}e1"
		printf 'addr add 2001:db8:c1:%x::2/128 dev %se1 nodad\n' "$c" "$RIG_ID"
		printf 'addr add 2001:db8:c1:%x::3/128 dev %se1 nodad\n' "$c" "$RIG_ID"
	done
} | ip -n "$RIG_ID-cli1" -batch - || { notok "setup: client addresses"; e2e_finish; }
{
	echo "route add 198.18.201.0/24 dev ${RIG_ID}c1"
	echo "route add 2001:db8:c1::/48 dev ${RIG_ID}c1"
	for ((c = 1; c <= NCLI; c++)); do
		echo "neigh replace 198.18.201.$c lladdr $cmac dev ${RIG_ID}c1 nud permanent"
		printf 'neigh replace 2001:db8:c1:%x::2 lladdr %s dev %sc1 nud permanent\n' "$c" "$cmac" "$RIG_ID"
		printf 'neigh replace 2001:db8:c1:%x::3 lladdr %s dev %sc1 nud permanent\n' "$c" "$cmac" "$RIG_ID"
	done
} | ip -n "$RIG_NS_EDGE" -batch - || { notok "setup: edge routes to the clients"; e2e_finish; }

st=$(ctl status --json)
aff=$("$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s:%s/%s" % (s["service"], s.get("affinity"), s.get("affinity_prefix")) for s in d["services"]))' <<<"$st")
check "status --json shows the affinity: $aff" [ "$aff" = "web:client/32 web6:client/64" ]
txt=$(ctl status web)
check "status text says affinity client /32" grep -q "affinity client (source /32" <<<"$txt"

# run_phase P: every client's six connections (source ports unique per phase, so no
# 5-tuple meets an entry from an earlier phase); results in $D/p$P.v4 / .v6.
run_phase() {
	local p=$1 c k
	: >"$D/p$p.v4.in"
	: >"$D/p$p.v6.in"
	for ((c = 1; c <= NCLI; c++)); do
		for ((k = 0; k < 6; k++)); do
			echo "198.18.201.$c $((20000 + p * 10 + k))" >>"$D/p$p.v4.in"
			printf '2001:db8:c1:%x::%d %d\n' "$c" $((2 + k % 2)) $((20000 + p * 10 + k)) >>"$D/p$p.v6.in"
		done
	done
	timeout 120 nsenter --net="/run/netns/$RIG_ID-cli1" "$RIG_PYTHON" "$AFF_PY" --vip "$RIG_VIP" \
		--port "$RIG_VIP_PORT" --conns-file "$D/p$p.v4.in" >"$D/p$p.v4" 2>"$D/p$p.v4.err"
	timeout 120 nsenter --net="/run/netns/$RIG_ID-cli1" "$RIG_PYTHON" "$AFF_PY" --vip "$RIG_VIP6" \
		--port "$RIG_VIP_PORT" --conns-file "$D/p$p.v6.in" >"$D/p$p.v6" 2>"$D/p$p.v6.err"
}

# summary FILE FAM [PREV_GREEN_FILE]: "conns errors mixed green back" and the green client
# list in FILE.green; a client is the address (v4) or its /64 (v6).
summary() {
	"$RIG_PYTHON" - "$@" <<'PY'
import ipaddress, json, sys
path, fam = sys.argv[1], sys.argv[2]
prev = set(open(sys.argv[3]).read().split()) if len(sys.argv) > 3 else set()
colors, conns, errors = {}, 0, 0
for line in open(path):
    r = json.loads(line)
    conns += 1
    if not r["backend"]:
        errors += 1
        continue
    a = r["src"]
    cl = a if fam == "4" else str(ipaddress.ip_network(a + "/64", strict=False))
    colors.setdefault(cl, set()).add("green" if r["backend"].startswith("green") else "blue")
mixed = sum(1 for s in colors.values() if len(s) > 1)
green = sorted(c for c, s in colors.items() if s == {"green"})
back = len(prev - set(green))
open(path + ".green", "w").write("\n".join(green) + "\n")
print(conns, errors, mixed, len(green), back)
PY
}

# which_check FAM SVC: shiftctl which for 12 connections (ADDR:PORT) and their clients
# (ADDR) against the backend that answered.
which_check() {
	local fam=$1 svc=$2 p=$3 n=0 bad=0 line src sport be got want wcolor addr
	while read -r line; do
		src=$(rig_json_get src <<<"$line") sport=$(rig_json_get sport <<<"$line")
		be=$(rig_json_get backend <<<"$line")
		[ "$be" != None ] || continue
		addr=$(rig_backend_addr "$be" "$fam")
		if [ "$fam" = 6 ]; then want="[$addr]:$RIG_BACKEND_PORT"; else want="$addr:$RIG_BACKEND_PORT"; fi
		if [ "$fam" = 6 ]; then j=$(ctl which "$svc" "[$src]:$sport" --json); else j=$(ctl which "$svc" "$src:$sport" --json); fi
		got=$(rig_json_get backend <<<"$j")
		wcolor=$(rig_json_get color <<<"$(ctl which "$svc" "$src" --json)")
		n=$((n + 1))
		if [ "$got" != "$want" ] || [ "$wcolor" != "${be%%[0-9]*}" ]; then
			bad=$((bad + 1))
			note "which $svc $src:$sport says backend $got (client: $wcolor); $be ($want) answered"
		fi
	done < <(awk 'NR % 50 == 1' "$D/p$p.v$fam")
	label="phase $p v$fam: shiftctl which names the backend that answered ($((n - bad))/$n connections, their clients' color too)"
	if [ "$bad" = 0 ] && [ "$n" -ge 10 ]; then ok "$label"; else notok "$label"; fi
}

prev4="" prev6=""
p=0
for w in 30 60 rollback; do
	p=$((p + 1))
	if [ "$w" = rollback ]; then
		ctl rollback web --reason "affinity test" >/dev/null || notok "shiftctl rollback web failed"
		ctl rollback web6 --reason "affinity test" >/dev/null || notok "shiftctl rollback web6 failed"
	else
		ctl set-weight web "$w" >/dev/null || notok "shiftctl set-weight web $w failed"
		ctl set-weight web6 "$w" >/dev/null || notok "shiftctl set-weight web6 $w failed"
	fi
	run_phase "$p"
	for fam in 4 6; do
		if [ "$fam" = 4 ]; then prev=$prev4; svc=web; else prev=$prev6; svc=web6; fi
		[ "$w" != rollback ] || prev="" # a rollback moves every client back, by design
		read -r conns errors mixed green back < <(summary "$D/p$p.v$fam" "$fam" ${prev:+"$prev"})
		label="v$fam $w: $conns connections from $NCLI clients: $green green, $mixed on both colors, $errors failed"
		[ -n "$prev" ] && label+=", $back of the previous phase's green clients back on blue"
		case $w in
		30) lo=18 hi=42 ;;
		60) lo=48 hi=72 ;;
		*) lo=0 hi=0 ;;
		esac
		if [ "$conns" = $((NCLI * 6)) ] && [ "$errors" = 0 ] && [ "$mixed" = 0 ] &&
			[ "$green" -ge "$lo" ] && [ "$green" -le "$hi" ] && [ "${back:-0}" = 0 ]; then
			ok "$label"
		else
			notok "$label"
		fi
		[ "$w" = rollback ] || which_check "$fam" "$svc" "$p"
		if [ "$fam" = 4 ]; then prev4=$D/p$p.v4.green; else prev6=$D/p$p.v6.green; fi
	done
done
j=$(ctl which web 198.18.201.1 --json)
if [ "$(rig_json_get color <<<"$j")" = blue ] && [ "$(rig_json_get decided_by <<<"$j")" = "rolled back" ]; then
	ok "which after the rollback: blue, decided by the latch"
else
	notok "which after the rollback: $j"
fi

e2e_finish
