#!/bin/bash
# End to end (issue 4): real HTTP over new connections from two clients through shift's
# XDP datapath, IPv4 and IPv6.
#  - split: at green 0 % and 100 % every connection goes to one color (exact); at 20 %
#    (IPv4) and 30 % (IPv6) green's share is within 3 points; zero failed requests;
#  - a request counts only if shift saw it: per backend, the connections shift counted
#    (status --json) equal the answers the clients got from that backend;
#  - both directions pass through shift's programs: per-backend packets (client->backend)
#    and reply_packets (backend->client) grow by >= 3 per connection, and the edge's
#    kernel forwarded (almost) nothing;
#  - a SYN-ACK goes back by its SYN's next hop, not a FIB lookup: reply_fib grows by
#    <= 5 % of the connections (IPv4 and IPv6);
#  - XDP attach mode: native on veth (the kernel has had it since 4.19), as the kernel
#    (ip link), status --json "interfaces" and shiftd's log all say.
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

N=${E2E_SPLIT_N:-1500}   # new connections per client for a tolerance check (2 clients)
N_EXACT=${E2E_EXACT_N:-500}

# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up
D=$RIG_DIR

# --- XDP mode ----------------------------------------------------------------------
modes=$(e2e_xdp_modes)
st=$(ctl status --json)
ifs=$(rig_json_get interfaces <<<"$st")
logmodes=$(grep -o 'XDP mode [a-z]*' "$E2E_SHIFTD_LOG" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
kmaj=$(uname -r | cut -d. -f1) kmin=$(uname -r | cut -d. -f2)
if [ "$kmaj" -gt 4 ] || { [ "$kmaj" = 4 ] && [ "$kmin" -ge 19 ]; }; then want=native; else want=generic; fi
n_if=$(wc -w <<<"$modes")
n_want=$(grep -o ":$want" <<<"$modes" | wc -l)
n_st=$(grep -o "(xdp $want)" <<<"$ifs" | wc -l)
if [ "$n_want" = "$n_if" ] && [ "$n_st" = "$n_if" ]; then
	ok "XDP mode $want on all $n_if edge veths (kernel $(uname -r)): ip link: $modes; status --json interfaces: \"$ifs\"; log:$logmodes"
else
	notok "XDP mode: want $want on $n_if veths (kernel $(uname -r)); ip link: $modes; status --json interfaces: \"$ifs\"; log:$logmodes"
fi

# --- IPv4 split at 0 %, 20 %, 100 % ---------------------------------------------------------
phase() { # LABEL SVC WEIGHT TOL_BP URL PER_CLIENT
	local label=$1 svc=$2 w=$3 tol=$4 url=$5 n=$6 t0=$SECONDS
	ctl set-weight "$svc" "$w" >/dev/null || { notok "$label: shiftctl set-weight $svc $w failed"; return 1; }
	e2e_snap "$D/$label.before.json"
	e2e_new_both "$label" "$url" "$n" || notok "$label: a client did not finish in time"
	e2e_snap "$D/$label.after.json"
	e2e_verify_new "$label" "$svc" "$(awk -v w="${w%\%}" 'BEGIN { printf "%d", w * 100 }')" "$tol" \
		"$D/$label.before.json" "$D/$label.after.json" "$D/$label.cli1.json" "$D/$label.cli2.json"
	note "$label: $((SECONDS - t0))s"
}

phase "split 0%" web 0 0 "$RIG_URL" "$N_EXACT"
fwd0=$(e2e_kernel_fwd)
phase "split 20%" web 20 300 "$RIG_URL" "$N"
fwd1=$(e2e_kernel_fwd)
pk=$(e2e_py delta web "$D/split 20%.before.json" "$D/split 20%.after.json" |
	"$RIG_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(sum(x["packets"]+x["reply_packets"] for x in d.values()))')
fwd=$((fwd1 - fwd0))
# A few packets may legitimately take the kernel (neighbour not resolved yet); the bulk must not.
if [ "$pk" -gt 0 ] && [ $((fwd * 100)) -le "$pk" ]; then
	ok "split 20%: the edge's kernel forwarded $fwd datagrams while shift handled $pk packets (XDP, not the IP stack)"
else
	notok "split 20%: the edge's kernel forwarded $fwd datagrams while shift handled $pk packets (want <= 1 %)"
fi
# A SYN-ACK goes back the way its SYN came (bpf/client_nh.h): only a SYN-ACK whose
# SYN slot another SYN took needs the FIB (reply_fib). Every one did before.
rfib() { # LABEL: reply_fib's growth over the phase
	"$RIG_PYTHON" -c 'import json, sys
a, b = (json.load(open(f))["datapath"]["reply_fib"] for f in sys.argv[1:])
print(b - a)' "$D/$1.before.json" "$D/$1.after.json"
}
rf=$(rfib "split 20%") conns=$((2 * N))
if [ -n "$rf" ] && [ $((rf * 20)) -le "$conns" ]; then
	ok "split 20%: $conns new connections, $rf replies by a FIB lookup: the SYN-ACKs went back the way their SYNs came"
else
	notok "split 20%: $conns new connections, ${rf:-?} replies by a FIB lookup (want <= 5 %: SYN-ACKs by their SYN's next hop)"
fi
phase "split 100%" web 100 0 "$RIG_URL" "$N_EXACT"
ctl set-weight web 0 >/dev/null

# --- IPv6 VIP ------------------------------------------------------------------------
phase "split IPv6 30%" web6 30 300 "$RIG_URL6" "$N"
rf=$(rfib "split IPv6 30%")
if [ -n "$rf" ] && [ $((rf * 20)) -le "$conns" ]; then
	ok "split IPv6 30%: $conns new connections, $rf replies by a FIB lookup (SYN-ACKs by their SYN's next hop)"
else
	notok "split IPv6 30%: $conns new connections, ${rf:-?} replies by a FIB lookup (want <= 5 %)"
fi
phase "split IPv6 100%" web6 100 0 "$RIG_URL6" "$N_EXACT"

e2e_finish
