#!/bin/bash
# End to end (issue 13): containers on the edge host. Every veth of the rig keeps the
# kernel's default offloads (TX checksum offload on: clients and backends are local
# senders handing over CHECKSUM_PARTIAL packets), shiftd runs with attach = auto:
#  - auto picks TC on every edge veth (virtual interfaces): the kernel (tc filter / tcx
#    link), status (text and --json "attach") and shiftd's log say so;
#  - 1000 HTTP connections at green 30 % over IPv4 and 1000 over IPv6: 0 failed, green's
#    share within 4.5 sigma (+-6.53 points; e2e_verify_new), and shift's counters account
#    for every connection;
#  - 1000 more of each with TX checksum offload off on the edge's own veths: the kernel
#    completes the checksum the NAT left in each CHECKSUM_PARTIAL packet and the
#    receivers check it (a PARTIAL packet that crosses veths only is never checked):
#    0 failed, 0 TCP InCsumErrors in any backend or client;
#  - the e2e suite once more on this variant (offloads on, attach = auto): keep-alive
#    stickiness through weight changes (test_e2e_sticky.sh), rollback under load
#    (test_e2e_rollback.sh), kill -9 of shiftd under load (test_e2e_restart.sh), interim
#    responses in the final one's segment, read with the skb's helpers (test_e2e_interim.sh).
# E2E_TC_SUITE=0 skips the last part. Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export RIG_TX_CSUM_OFF=0 RIG_ATTACH=auto
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

N=${E2E_TC_N:-500} # new connections per client (2 clients) per family

# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up
D=$RIG_DIR

# --- offloads as the kernel left them ------------------------------------------------
if command -v ethtool >/dev/null 2>&1; then
	tx=$(rig_edge ethtool -k "$RIG_EDGE_BACKEND_IF" | awk '/^tx-checksumming:/ {print $2}')
	cif=$(ip -n "$RIG_ID-cli1" -o link show | awk -F': ' '$2 != "lo" {sub(/@.*/, "", $2); print $2; exit}')
	txc=$(rig_nsenter "$RIG_ID-cli1" ethtool -k "$cif" | awk '/^tx-checksumming:/ {print $2}')
	if [ "$tx" = on ] && [ "$txc" = on ]; then
		ok "offloads at their defaults: tx-checksumming $tx on the edge's backend veth, $txc in cli1"
	else
		notok "offloads: tx-checksumming edge '$tx', cli1 '$txc' (want on)"
	fi
fi

# --- attach = auto: TC on veth ----------------------------------------------------------
modes=$(e2e_xdp_modes)
st=$(ctl status --json)
hooks=$(rig_json_get attach <<<"$st" | "$RIG_PYTHON" -c '
import json, sys
print(" ".join("%s:%s/%s" % (a["interface"], a["hook"], a["mode"]) for a in json.load(sys.stdin)))')
text=$(ctl status | head -n 1)
logl=$(grep -o 'TC mode [a-z]* (attach = auto)' "$E2E_SHIFTD_LOG" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
n_if=$(wc -w <<<"$modes")
n_k=$(grep -oE ':(tcx|clsact)' <<<"$modes" | wc -l)
n_st=$(grep -oE ':tc/(tcx|clsact)' <<<"$hooks" | wc -l)
n_txt=$(grep -oE '\(tc (tcx|clsact)\)' <<<"$text" | wc -l)
if [ "$n_k" = "$n_if" ] && [ "$n_st" = "$n_if" ] && [ "$n_txt" = "$n_if" ] && [ -n "$logl" ]; then
	ok "attach = auto: TC on all $n_if edge veths; kernel: $modes; status --json attach: $hooks; status: \"$text\"; log:$logl"
else
	notok "attach = auto: want TC on $n_if veths; kernel: $modes; status --json: $hooks; status: \"$text\"; log:$logl"
fi

# --- 1000 connections at 30 %, IPv4 and IPv6 --------------------------------------------
# CHECK: split (share, 0 failed, shift's per-backend counts equal the clients') or
# split-nomatch (without the counts).
phase() { # LABEL SVC WEIGHT TOL_BP URL PER_CLIENT [CHECK]
	local label=$1 svc=$2 w=$3 tol=$4 url=$5 n=$6 check=${7:-split} t0=$SECONDS
	ctl set-weight "$svc" "$w" >/dev/null || { notok "$label: shiftctl set-weight $svc $w failed"; return 1; }
	e2e_snap "$D/$label.before.json"
	e2e_new_both "$label" "$url" "$n" || notok "$label: a client did not finish in time"
	e2e_snap "$D/$label.after.json"
	e2e_run_py "$check" "$label" "$svc" "$(awk -v w="${w%\%}" 'BEGIN { printf "%d", w * 100 }')" \
		"$tol" "$D/$label.before.json" "$D/$label.after.json" "$D/$label.cli1.json" \
		"$D/$label.cli2.json"
	note "$label: $((SECONDS - t0))s"
}

phase "tc split 30%" web 30 500 "$RIG_URL" "$N"
phase "tc split IPv6 30%" web6 30 500 "$RIG_URL6" "$N"

# --- the edge completes the checksums ----------------------------------------------------
# A CHECKSUM_PARTIAL packet that crosses veths only is never checked: its receiver takes
# it as verified, whatever its checksum field holds. With TX checksum offload off on the
# edge's own veths, the kernel completes every packet the TC programs redirect from the
# field the NAT left (the pseudo-header's sum, clients' and backends' packets alike),
# and the receivers check the result: a wrong field is a segment dropped and counted in
# the receiver's TCP InCsumErrors. Counted here in every backend and client: 0. (No
# exact per-backend flow count in this phase: its evidence is the checksums.)
edge_tx() { # on|off
	local d
	for d in $RIG_EDGE_BACKEND_IF ${RIG_EDGE_CLIENT_IFS//,/ }; do
		rig_edge ethtool -K "$d" tx "$1" >/dev/null 2>&1 || return 1
	done
}
csum_errors() { # the TCP InCsumErrors of every backend and client namespace, summed
	local n sum=0 v
	for n in $RIG_BACKENDS $RIG_CLIENT_NAMES; do
		# shellcheck disable=SC2016 # awk's own $NF
		v=$(rig_nsenter "$n" awk '/^Tcp:/ && ++k == 2 { print $NF }' /proc/net/snmp) || v=x
		case $v in '' | *[!0-9]*) echo "?"; return ;; esac
		sum=$((sum + v))
	done
	echo "$sum"
}
tx_phase() { # LABEL SVC URL
	local label=$1 c0 c1
	c0=$(csum_errors)
	phase "$label" "$2" 30 500 "$3" "$N" split-nomatch
	c1=$(csum_errors)
	if [ "$c0" != "?" ] && [ "$c1" != "?" ] && [ "$c1" = "$c0" ]; then
		ok "$label: TCP InCsumErrors in the backends and clients: +0 (total $c1)"
	else
		notok "$label: TCP InCsumErrors in the backends and clients: $c0 -> $c1"
	fi
}
if ! command -v ethtool >/dev/null 2>&1; then
	note "no ethtool: the edge cannot complete the checksums, phase skipped"
elif edge_tx off; then
	tx_phase "tc split 30%, the edge completes the checksums" web "$RIG_URL"
	tx_phase "tc split IPv6 30%, the edge completes the checksums" web6 "$RIG_URL6"
	edge_tx on || notok "ethtool -K tx on, on the edge's veths"
else
	notok "ethtool -K tx off, on the edge's veths"
fi
ctl set-weight web 0 >/dev/null
ctl set-weight web6 0 >/dev/null
bad=$(ctl status --json | "$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)["datapath"]
print(sum(v for k, v in d.items() if k in ("truncated", "bad_length", "bad_ihl")))')
if [ "$bad" = 0 ]; then
	ok "no packet of a local sender was taken for malformed (truncated/bad_length/bad_ihl: 0)"
else
	notok "datapath counted $bad malformed packets from local senders"
fi

# --- the e2e suite on this variant -------------------------------------------------------
if [ "${E2E_TC_SUITE:-1}" = 1 ]; then
	for t in sticky rollback restart interim; do
		t0=$SECONDS
		out=$(RIG_TX_CSUM_OFF=0 RIG_ATTACH=auto bash "$HERE/test_e2e_$t.sh" 2>&1)
		rc=$?
		sum=$(grep -E '^# test_e2e_' <<<"$out" | tail -n 1)
		if [ "$rc" = 0 ]; then
			ok "test_e2e_$t.sh with offloads on, attach = auto: passed ($sum; $((SECONDS - t0))s)"
			grep -E '^ok - ' <<<"$out" | sed 's/^/#   /' | cut -c1-220
		elif [ "$rc" = 77 ]; then
			note "test_e2e_$t.sh skipped: $(tail -n 1 <<<"$out")"
		else
			notok "test_e2e_$t.sh with offloads on, attach = auto: exit $rc ($sum)"
			sed 's/^/#   /' <<<"$out" | tail -n 40
		fi
	done
fi

e2e_finish
