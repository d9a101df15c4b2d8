#!/bin/bash
# shellcheck disable=SC2015 # "A && ok || notok": ok always returns 0
# Path MTU discovery through the edge (README, "Limits", "Path MTU discovery"): ICMP
# errors from the client side to a VIP (IPv4 "fragmentation needed", IPv6 "packet too
# big") must reach the backend, translated, or its TCP never lowers its segment size.
# A "far" client namespace sits behind cli1, which routes for it over a veth of MTU
# 1400 (both ends) with no MSS clamp; far's routes to the VIP say advmss 1460 (IPv4) /
# 1440 (IPv6), so it offers a full-size MSS its own link cannot carry:
#
#   ${id}-far 198.18.150.2 ---- ${id}-cli1 198.18.150.1 ---- ${id}-edge ---- backends
#             2001:db8:fa::2    (router)   2001:db8:fa::1       routes 198.18.150.0/24 and
#             ${id}fc  mtu 1400  ${id}fr   mtu 1400              2001:db8:fa::/64 via cli1
#
# A backend's 1500-byte DF segment, rewritten by shift to VIP -> far, reaches cli1,
# which cannot forward it and sends "fragmentation needed" / "packet too big" (mtu 1400)
# to the VIP; it enters the edge on the cli1 side, where shift must find the flow from
# the quoted packet and forward the message to the backend, whose TCP then lowers its
# MSS. Without that the backend resends full-size segments until the client gives up
# (a PMTU black hole). Checks, once with attach = xdp and checksums in software (the NIC
# case), once with attach = tc and the veths' offloads at their defaults (containers):
#  - far reaches the VIP at all (a small GET over IPv4 and IPv6);
#  - a 2 MiB body (python's http.server on port 8082 of every backend, services big and
#    big6 on VIP port 81) arrives whole at far within 10 s (curl --max-time) over IPv4
#    and over IPv6, both at once (a stall costs 10 s, not 20);
#  - cli1 did send too-big messages of each family (the test's premise), and the
#    backend that served each body has cached a path MTU of 1400 towards far;
#  - shift counted the messages forwarded (datapath stat icmp_too_big_forwarded > 0)
#    and none as about no flow (pass_icmp_no_flow +0: every one quotes a live flow);
#  - the same through services with source NAT (bigs and bigs6, VIP port 82, snat =
#    the edge's own addresses on the backends' subnet): the messages' quotes name the
#    edge's address and port the backend sent to, and the backend caches the path MTU
#    towards that address (as it would behind the kernel's own NAT).
# PMTU_ROUNDS="xdp tc" (the default) picks the rounds. Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RIG_BLUE=1 RIG_GREEN=1
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

BIG_PORT=8082 BIGS_PORT=8083 # a backend serves one service: bigs and bigs6 have their own
BIG_SIZE=$((2 * 1024 * 1024))
BLUE=$(rig_backend_addr blue1) GREEN=$(rig_backend_addr green1)
BLUE6=$(rig_backend_addr blue1 6) GREEN6=$(rig_backend_addr green1 6)
# The edge's own addresses on the backends' subnet (tests/netns/README.md).
SNAT4=198.19.0.1 SNAT6=2001:db8:b::1
RIG_CONFIG_EXTRA="
[service big]
vip = $RIG_VIP:81
blue = $BLUE:$BIG_PORT
green = $GREEN:$BIG_PORT
health_check = none

[service big6]
vip = [$RIG_VIP6]:81
blue = [$BLUE6]:$BIG_PORT
green = [$GREEN6]:$BIG_PORT
health_check = none

[service bigs]
vip = $RIG_VIP:82
blue = $BLUE:$BIGS_PORT
green = $GREEN:$BIGS_PORT
health_check = none
snat = $SNAT4

[service bigs6]
vip = [$RIG_VIP6]:82
blue = [$BLUE6]:$BIGS_PORT
green = [$GREEN6]:$BIGS_PORT
health_check = none
snat = $SNAT6
"
export RIG_CONFIG_EXTRA

# The far client's link (addresses in the rig's test ranges, in namespaces made here).
FAR4=198.18.150.2 FAR_GW4=198.18.150.1 FAR_NET4=198.18.150.0/24
FAR6=2001:db8:fa::2 FAR_GW6=2001:db8:fa::1 FAR_NET6=2001:db8:fa::/64
FAR_MTU=1400

# far_up: ${id}-far behind cli1 (a router now), the edge's routes to it via cli1.
far_up() {
	local cli=$RIG_ID-cli1
	FAR_NS=$RIG_ID-far
	# registered before the namespace exists: a signal in between leaves nothing behind
	rig_on_exit "ip netns del $FAR_NS 2>/dev/null || true"
	ip netns add "$FAR_NS" || return 1
	rig_nsenter "$FAR_NS" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.accept_ra=0 >/dev/null &&
		rig_nsenter "$cli" sysctl -qw net.ipv4.ip_forward=1 \
			net.ipv6.conf.all.forwarding=1 >/dev/null || return 1
	printf '%s\n' \
		"link add ${RIG_ID}fr type veth peer name ${RIG_ID}fc netns $FAR_NS" \
		"link set ${RIG_ID}fr mtu $FAR_MTU" \
		"addr add $FAR_GW4/24 dev ${RIG_ID}fr" \
		"addr add $FAR_GW6/64 dev ${RIG_ID}fr nodad" \
		"link set ${RIG_ID}fr up" | _rig_batch "$cli" || return 1
	printf '%s\n' "link set lo up" \
		"link set ${RIG_ID}fc mtu $FAR_MTU" \
		"addr add $FAR4/24 dev ${RIG_ID}fc" \
		"addr add $FAR6/64 dev ${RIG_ID}fc nodad" \
		"link set ${RIG_ID}fc up" \
		"route add default via $FAR_GW4" \
		"route add ::/0 via $FAR_GW6" \
		"route add $RIG_VIP/32 via $FAR_GW4 advmss 1460" \
		"route add $RIG_VIP6/128 via $FAR_GW6 advmss 1440" | _rig_batch "$FAR_NS" || return 1
	printf '%s\n' \
		"route add $FAR_NET4 via 198.18.1.2 dev ${RIG_ID}c1" \
		"route add $FAR_NET6 via 2001:db8:c1::2 dev ${RIG_ID}c1" | _rig_batch "$RIG_NS_EDGE" || return 1
	_rig_features "$cli" "${RIG_ID}fr"
	_rig_features "$FAR_NS" "${RIG_ID}fc"
}

# big_up: http.server with a 2 MiB random file in every backend, on BIG_PORT and
# BIGS_PORT (logs http.BACKEND.log and https.BACKEND.log); waits until each answers.
big_up() {
	local b a p
	mkdir -p "$D/www" || return 1
	head -c "$BIG_SIZE" /dev/urandom >"$D/www/big" && echo small >"$D/www/small" || return 1
	for b in $RIG_BACKENDS; do
		rig_spawn "$b" "$D/http.$b.log" "$RIG_PYTHON" -u -m http.server "$BIG_PORT" --bind :: \
			--directory "$D/www" &&
			rig_spawn "$b" "$D/https.$b.log" "$RIG_PYTHON" -u -m http.server "$BIGS_PORT" \
				--bind :: --directory "$D/www" || return 1
	done
	for b in $RIG_BACKENDS; do
		for a in "$(rig_backend_addr "$b" 4)" "[$(rig_backend_addr "$b" 6)]"; do
			for p in "$BIG_PORT" "$BIGS_PORT"; do
				rig_wait 50 0.1 rig_edge curl -sf -o /dev/null --max-time 1 \
					"http://$a:$p/small" || { echo "# $b: no answer on $a:$p" >&2; return 1; }
			done
		done
	done
}

# dp_stat NAME: a datapath stat from status --json ("absent" if shiftd has no such stat).
dp_stat() {
	ctl status --json | "$RIG_PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["datapath"].get(sys.argv[1], "absent"))' "$1"
}
# delta A B: B - A, or "absent"
delta() { case $1$2 in *[!0-9]*) echo absent ;; *) echo $(($2 - $1)) ;; esac; }

# too_big_sent 4|6: the too-big messages cli1's kernel has sent (v4: every destination
# unreachable; cli1 sends no other kind here).
too_big_sent() {
	if [ "$1" = 6 ]; then
		rig_nsenter cli1 awk '$1 == "Icmp6OutPktTooBigs" {print $2}' /proc/net/snmp6
	else
		# shellcheck disable=SC2016 # awk's own $n
		rig_nsenter cli1 awk '/^Icmp:/ {for (i = 1; i <= NF; i++) if (h) { if (f[i] == "OutDestUnreachs") print $i } else f[i] = $i; h = 1}' /proc/net/snmp
	fi
}

# served_by ADDR [s]: the backend whose http.server logged a GET /big from ADDR (an IPv4
# client shows as ::ffff:ADDR on its dual-stack socket); s: the one on BIGS_PORT
served_by() {
	local b re="^(::ffff:)?${1//./\\.} - .*\"GET /big "
	for b in $RIG_BACKENDS; do
		grep -qE "$re" "$D/http${2:-}.$b.log" 2>/dev/null && { echo "$b"; return 0; }
	done
	echo none
}

# big_get LABEL PORT [snat]: the 2 MiB body from far over the VIP's PORT, IPv4 and IPv6
# at once, the checks of each family, then shift's counters (one stat for both
# families). snat: the services source-NAT to the edge's addresses, which the
# backends then see as the peer (in their logs and their path MTU cache) instead of far.
big_get() {
	local label=$1 port=$2 snat=${3:-} fam url far peer rc s0 s1 n0 n1 got b r fwd nof out
	local -A pid=() sent0=() sent1=()
	s0=$(dp_stat icmp_too_big_forwarded) n0=$(dp_stat pass_icmp_no_flow)
	for fam in 4 6; do
		if [ "$fam" = 6 ]; then url="http://[$RIG_VIP6]:$port/big"; else url="http://$RIG_VIP:$port/big"; fi
		sent0[$fam]=$(too_big_sent "$fam")
		rm -f "$D/big.$fam"
		rig_spawn "$FAR_NS" "$D/curl.$fam.log" curl -sS --max-time 10 -o "$D/big.$fam" \
			-w '%{size_download} bytes in %{time_total}s' "$url" || return 1
		pid[$fam]=$RIG_LAST_PID
	done
	for fam in 4 6; do
		e2e_wait_pid "${pid[$fam]}" 15
		rc=$?
		sent1[$fam]=$(too_big_sent "$fam")
		if [ "$fam" = 6 ]; then far=$FAR6 peer=$FAR6; else far=$FAR4 peer=$FAR4; fi
		if [ -n "$snat" ]; then
			if [ "$fam" = 6 ]; then peer=$SNAT6; else peer=$SNAT4; fi
		fi
		got=$(stat -c %s "$D/big.$fam" 2>/dev/null || echo 0)
		out=$(tr '\n' ' ' <"$D/curl.$fam.log")
		if [ "$rc" = 0 ] && [ "$got" = "$BIG_SIZE" ] && cmp -s "$D/big.$fam" "$D/www/big"; then
			ok "$label IPv$fam: 2 MiB over the VIP to far (link mtu $FAR_MTU): $out, content identical"
		else
			notok "$label IPv$fam: 2 MiB over the VIP to far: curl exit $rc ($out), $got of $BIG_SIZE bytes"
		fi
		[ "$((sent1[$fam] - sent0[$fam]))" -gt 0 ] &&
			ok "$label IPv$fam: cli1 sent $((sent1[$fam] - sent0[$fam])) too-big messages to the VIP (mtu $FAR_MTU)" ||
			notok "$label IPv$fam: cli1 sent no too-big message (${sent0[$fam]} -> ${sent1[$fam]}): the test's premise failed"
		b=$(served_by "$peer" "${snat:+s}")
		r=none
		[ "$b" = none ] || r=$(ip -n "$RIG_ID-$b" -"$fam" -o route get "$peer" 2>&1 | tr -s ' \t\\' ' ')
		grep -qw "mtu $FAR_MTU" <<<"$r" &&
			ok "$label IPv$fam: $b caches path MTU $FAR_MTU towards $peer: $r" ||
			notok "$label IPv$fam: the backend that served far ($b, peer $peer) has no path MTU $FAR_MTU towards it: $r"
	done
	s1=$(dp_stat icmp_too_big_forwarded) n1=$(dp_stat pass_icmp_no_flow)
	fwd=$(delta "$s0" "$s1") nof=$(delta "$n0" "$n1")
	# every message quotes a live flow: none is a no-flow one
	case $fwd/$nof in
	absent/* | 0/* | */absent | */[1-9]*)
		notok "$label: icmp_too_big_forwarded $s0 -> $s1 (+$fwd), pass_icmp_no_flow $n0 -> $n1 (+$nof)" ;;
	*) ok "$label: icmp_too_big_forwarded +$fwd ($s1), pass_icmp_no_flow +$nof" ;;
	esac
}

# one_round xdp|tc: a rig, shiftd, far, the checks; the rig down again.
one_round() {
	local v=$1 t0=$SECONDS a out
	if [ "$v" = xdp ]; then
		export RIG_ATTACH=xdp RIG_TX_CSUM_OFF=1
	else
		export RIG_ATTACH=tc RIG_TX_CSUM_OFF=0
	fi
	# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
	e2e_up
	D=$RIG_DIR/pmtu
	mkdir -p "$D"
	note "$v: attach = $RIG_ATTACH, RIG_TX_CSUM_OFF=$RIG_TX_CSUM_OFF; edge hooks: $(e2e_xdp_modes)"
	if ! far_up; then
		notok "$v: setup: the far client behind cli1"
		rig_down
		return
	fi
	if ! big_up; then
		notok "$v: setup: http.server on port $BIG_PORT in the backends"
		rig_down
		return
	fi
	for a in "$RIG_URL" "$RIG_URL6"; do
		out=$(rig_curl "$FAR_NS" "$a" 2>&1)
		case $out in
		blue* | green*) ok "$v: far reaches the VIP: GET $a answered by $out" ;;
		*) notok "$v: far reaches the VIP: GET $a: $out" ;;
		esac
	done
	big_get "$v" 81 || notok "$v: curl in far not started"
	big_get "$v snat" 82 snat || notok "$v snat: curl in far not started"
	rig_down
	note "$v: $((SECONDS - t0))s"
}

for v in ${PMTU_ROUNDS:-xdp tc}; do
	case $v in xdp | tc) one_round "$v" ;; *) notok "PMTU_ROUNDS: '$v' is neither xdp nor tc" ;; esac
done
e2e_finish
