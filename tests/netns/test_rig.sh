#!/bin/bash
# Self-test of the netns rig WITHOUT shift: plain kernel forwarding on the edge host.
# Checks the topology (every client reaches every backend over IPv4 and IPv6), the
# backend modes as a client sees them, client.py, two more rigs at the same time,
# and that every namespace, process and file of each rig is gone afterwards
# (also after a failing test and after SIGTERM).
# Exit 0 pass, 77 skipped (a feature probe said no), 1 fail.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

rig_probe || rig_skip "$RIG_SKIP_REASON"

T0=$SECONDS
FAILS=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; FAILS=$((FAILS + 1)); }
expect() { # DESC GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}
expect_ge() { # DESC GOT MIN
	if [ "$2" -ge "$3" ] 2>/dev/null; then ok "$1 ($2)"; else bad "$1: got '$2', want >= $3"; fi
}
jget() { rig_json_get "$2" <<<"$1"; } # JSON KEY

# A rig in a child script (used for the concurrency and cleanup checks below).
# $1: what it does once up: "exit3" fails under set -e, "term" waits for SIGTERM
# (that one with two queues on the edge's veths, as bench/peers.sh builds it).
child_rig() {
	local queues=1
	[ "$1" = term ] && queues=2
	RIG_CLIENTS=1 RIG_BLUE=1 RIG_GREEN=0 RIG_QUIET=1 RIG_QUEUES=$queues exec bash -c '
		set -euo pipefail
		. "$1"
		rig_up
		echo "$RIG_ID" >"$2.id"
		# The queues in use (a veth allocates one per CPU, uses one unless told).
		for d in "$RIG_NS_EDGE ${RIG_ID}c1" "$RIG_ID-cli1 ${RIG_ID}e1" \
			"$RIG_NS_EDGE $RIG_EDGE_BACKEND_IF" "$RIG_NS_SWITCH ${RIG_ID}se"; do
			ip netns exec ${d% *} sh -c "cd /sys/class/net/${d#* }/queues
				echo rx \$(ls -d rx-* | wc -l) tx \$(ls -d tx-* | wc -l) xps \$(cat tx-*/xps_cpus)"
		done >"$2.queues"
		body=$(rig_curl cli1 "http://$(rig_backend_addr blue1):$RIG_BACKEND_PORT/")
		echo "$body" >"$2.body"
		case $3 in
		exit3) false ;;                       # a failing test: set -e exits, trap cleans
		term) for _ in $(seq 100); do sleep 0.2; done ;; # until SIGTERM from the parent
		esac' child "$HERE/lib.sh" "$2" "$1"
}

no_ns_left() { # ID
	! ip netns list | grep -q "^$1-"
}

# A bad knob is refused before anything is built, naming it.
out=$(RIG_QUEUES=two RIG_QUIET=1 bash -c '. "$1"; rig_up' child "$HERE/lib.sh" 2>&1) && rc=0 || rc=$?
expect "RIG_QUEUES=two: rig_up fails" "$rc" 1
if grep -q "RIG_QUEUES must be 1..256 (got 'two')" <<<"$out"; then ok "RIG_QUEUES=two: named"; else
	bad "RIG_QUEUES=two: no error naming it: $out"; fi

rig_up
echo "rig $RIG_ID up in $((SECONDS - T0))s"
TMP=$RIG_DIR

# Two more rigs while this one runs: one fails under set -e, one gets SIGTERM.
child_rig exit3 "$TMP/c1" >"$TMP/c1.log" 2>&1 &
C1=$!
child_rig term "$TMP/c2" >"$TMP/c2.log" 2>&1 &
C2=$!
rig_on_exit "kill $C1 $C2 2>/dev/null || true"

# --- topology: each client reaches each backend, v4 and v6, by kernel forwarding ---
for c in $RIG_CLIENT_NAMES; do
	for b in $RIG_BACKENDS; do
		for fam in 4 6; do
			a=$(rig_backend_addr "$b" "$fam")
			[ "$fam" = 6 ] && a="[$a]"
			hdr=$(rig_curl "$c" -D - -o /dev/null "http://$a:$RIG_BACKEND_PORT/" 2>&1 | tr -d '\r' |
				sed -n 's/^[Xx]-[Bb]ackend: //p') || true
			expect "$c -> $b IPv$fam X-Backend" "$hdr" "$b"
		done
	done
done

B1=http://$(rig_backend_addr blue1):$RIG_BACKEND_PORT/
B2_6="http://[$(rig_backend_addr blue2 6)]:$RIG_BACKEND_PORT/"

# --- client.py new: 200 new connections, v4 and v6 ---
j=$(rig_client_py cli1 new --url "$B1" --count 200 --concurrency 8 --deadline 20)
expect "new v4: ok" "$(jget "$j" ok)" 200
expect "new v4: failed" "$(jget "$j" failed)" 0
expect "new v4: by_backend" "$(jget "$j" by_backend.blue1)" 200
j=$(rig_client_py cli2 new --url "$B2_6" --count 200 --concurrency 8 --deadline 20 \
	--source "${RIG_CLIENT_ADDRS6##* }")
expect "new v6 (--source): ok" "$(jget "$j" ok)" 200
expect "new v6 (--source): by_backend" "$(jget "$j" by_backend.blue2)" 200

# --- client.py keepalive: connections stay up and on one backend ---
j=$(rig_client_py cli1 keepalive --url "$B2_6" --conns 4 --duration 1 --interval 50)
expect "keepalive: connections" "$(jget "$j" connections)" 4
expect "keepalive: failed" "$(jget "$j" failed)" 0
expect "keepalive: changed_backend" "$(jget "$j" changed_backend)" 0
expect_ge "keepalive: requests" "$(jget "$j" requests)" 40

# --- the VIP without shift: the edge has no route, so clients get unreachable ---
j=$(rig_client_py cli1 new --url "$RIG_URL" --count 2 --concurrency 1 --timeout 1)
expect "VIP without shift: ok" "$(jget "$j" ok)" 0
expect_ge "VIP without shift: unreachable (ICMP is rate-limited)" "$(jget "$j" errors.unreachable)" 1

# --- backend modes, as a client sees them ---
rig_backend_mode blue1 500
j=$(rig_client_py cli1 new --url "$B1" --count 3 --concurrency 1)
expect "mode 500: http_500" "$(jget "$j" errors.http_500)" 3
expect "mode 500: X-Backend still set" "$(jget "$j" by_backend.blue1)" 3

rig_backend_mode blue1 rst
j=$(rig_client_py cli1 new --url "$B1" --count 3 --concurrency 1)
expect "mode rst: reset" "$(jget "$j" errors.reset)" 3
j=$(rig_client_py cli2 keepalive --url "$B1" --conns 2 --duration 0.3 --interval 50)
expect_ge "mode rst: keepalive resets" "$(jget "$j" resets)" 2

rig_backend_mode blue1 slow:300
j=$(rig_client_py cli1 new --url "$B1" --count 2 --concurrency 2)
expect "mode slow: ok" "$(jget "$j" ok)" 2
p50=$(jget "$j" p50_ms)
expect_ge "mode slow:300: p50 ms" "${p50%.*}" 290

rig_backend_mode blue1 unready
expect "mode unready: /readyz" "$(rig_curl cli1 -o /dev/null -w '%{http_code}' "${B1}readyz" || true)" 503
expect "mode unready: /" "$(rig_curl cli1 -o /dev/null -w '%{http_code}' "$B1" || true)" 200

rig_backend_mode blue1 ok
expect "mode ok: /readyz" "$(rig_curl cli1 -o /dev/null -w '%{http_code}' "${B1}readyz" || true)" 200

bh_check() { # LABEL
	rig_backend_blackhole blue1 on
	j=$(rig_client_py cli1 new --url "$B1" --count 2 --concurrency 2 --timeout 1)
	expect "blackhole on ($1): connect_timeout" "$(jget "$j" errors.connect_timeout)" 2
	rig_backend_blackhole blue1 off
	j=$(rig_client_py cli1 new --url "$B1" --count 2 --concurrency 2 --timeout 1)
	expect "blackhole off ($1): ok" "$(jget "$j" ok)" 2
}
if [ "$RIG_HAVE_NFT" = 1 ]; then
	bh_check nftables
	RIG_HAVE_NFT=0 bh_check "ip rule fallback"
else
	echo "note  nft missing: blackhole tested with the ip rule fallback only"
	bh_check "ip rule fallback"
fi

rig_backend_stop blue1
j=$(rig_client_py cli1 new --url "$B1" --count 2 --concurrency 1 --timeout 1)
expect "backend stopped: refused" "$(jget "$j" errors.refused)" 2
rig_backend_start blue1
j=$(rig_client_py cli1 new --url "$B1" --count 2 --concurrency 1 --timeout 1)
expect "backend restarted: ok" "$(jget "$j" ok)" 2

# --- permanent neighbours and the config writer ---
rig_neigh_permanent
n=$(rig_edge ip neigh show dev "$RIG_EDGE_BACKEND_IF" nud permanent | wc -l)
expect "permanent neighbours on the edge backend side" "$n" $((2 * $(wc -w <<<"$RIG_BACKENDS")))
expect "forwarding with permanent neighbours" "$(rig_curl cli2 "$B1" || true)" blue1

rig_write_config "$TMP/shiftd.conf" hash_seed=0x5eed web.min_requests=5 web6.green=
conf=$(cat "$TMP/shiftd.conf")
for want in "interface = ${RIG_EDGE_CLIENT_IFS}" "backend_interface = $RIG_EDGE_BACKEND_IF" \
	"bpffs_dir = $RIG_BPFFS_DIR" "control_socket = $RIG_CONTROL_SOCKET" "hash_seed = 0x5eed" \
	"[service web]" "vip = $RIG_VIP:$RIG_VIP_PORT" "blue = $(rig_pool blue)" \
	"green = $(rig_pool green)" "min_requests = 5" "[service web6]" "vip = [$RIG_VIP6]:$RIG_VIP_PORT"; do
	if grep -qxF -- "$want" <<<"$conf"; then ok "config: $want"; else bad "config lacks: $want"; fi
done
expect "config: web6 green removed" "$(grep -c '^green = ' <<<"$conf")" 1
expect "bpffs_dir is a bpffs" "$(stat -f -c %T "$RIG_BPFFS_DIR" 2>/dev/null || true)" bpf_fs

# --- the two other rigs ---
wait "$C1" && rc1=0 || rc1=$?
expect "child rig 1: exit status of its failure" "$rc1" 1
for _ in $(seq 1 50); do [ -s "$TMP/c2.body" ] && break; sleep 0.1; done
kill -TERM "$C2" 2>/dev/null || true
wait "$C2" && rc2=0 || rc2=$?
expect "child rig 2: exit status after SIGTERM" "$rc2" 143
for c in c1 c2; do
	id=$(cat "$TMP/$c.id" 2>/dev/null || echo none)
	if [ "$id" != "$RIG_ID" ] && [ "$id" != none ]; then ok "child rig $c has its own id ($id)"; else
		bad "child rig $c id '$id' (main $RIG_ID)"; fi
	expect "child rig $c served" "$(cat "$TMP/$c.body" 2>/dev/null || true)" blue1
	q="rx 1 tx 1 xps 0"
	[ "$c" = c2 ] && q="rx 2 tx 2 xps 1 $(printf '%x' $((1 << (1 % $(nproc)))))"
	expect "child rig $c: RIG_QUEUES on the edge's veths (both ends)" \
		"$(sort -u "$TMP/$c.queues" 2>/dev/null | tr '\n' ' ')" "$q "
	if no_ns_left "$id"; then ok "child rig $c: namespaces gone"; else bad "child rig $c left namespaces"; fi
	if ! compgen -G "${TMPDIR:-/tmp}/shift-rig.$id.*" >/dev/null; then ok "child rig $c: dir gone"; else
		bad "child rig $c left its dir"; sed 's/^/      /' "$TMP/$c.log"; fi
done

# --- teardown ---
id=$RIG_ID dir=$RIG_DIR
pids=$(for b in $RIG_BACKENDS; do echo "${_RIG_BACKEND_PID[$b]}"; done)
trap - EXIT INT TERM
rig_down
if no_ns_left "$id"; then ok "teardown: no namespace of $id left"; else
	bad "teardown: left $(ip netns list | grep "^$id-" | tr '\n' ' ')"; fi
alive=""
for p in $pids; do if kill -0 "$p" 2>/dev/null; then alive+=" $p"; fi; done
expect "teardown: backend processes gone" "$alive" ""
if [ ! -e "$dir" ]; then ok "teardown: $dir removed"; else bad "teardown: $dir still there"; fi

echo "test_rig: $FAILS failure(s) in $((SECONDS - T0))s"
[ "$FAILS" -eq 0 ]
