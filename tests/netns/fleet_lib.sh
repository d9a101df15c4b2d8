# shellcheck shell=bash
# The fleet rig: three edge hosts, each running its own shiftd, sharing blue/green
# backends and one real 3-member etcd cluster. Sourced by tests/netns/test_fleet_*.sh
# and demo_fleet.sh, never run.
#
#   . tests/netns/fleet_lib.sh
#   fleet_probe || rig_skip "$FLEET_SKIP_REASON"
#   fleet_up                          # rig + edges 2,3 + clients + etcd (healthy); traps set
#   fleet_write_config 1 [KEY=VALUE...]   # per node; [fleet] unless FLEET_JOIN=0
#   fleet_start 1; fleet_start 2; fleet_start 3
#   fleet_ctl 1 set-weight web 20     # shiftctl of node 1 (its edge netns)
#   fleet_svc 2 green_weight_bp       # a field of `status --json` on node 2
#   fleet_cut 3; fleet_heal 3         # node 3 loses etcd (silent drop), gets it back
#   fleet_etcd_stop 2; fleet_etcd_start 2
#
# Layout (NS = network namespace; $RIG_ID as in lib.sh, e.g. s4242):
#
#  NS $ID-cli1 198.18.1.2 -- 198.18.1.1 NS $ID-edge  (node n1) 198.19.0.1 --+
#  NS $ID-cli2 198.18.2.2 -- 198.18.2.1 NS $ID-edge2 (node n2) 198.19.0.2 --+- NS $ID-switch
#  NS $ID-cli3 198.18.3.2 -- 198.18.3.1 NS $ID-edge3 (node n3) 198.19.0.3 --+   (bridge)
#                                       |  each edge: ${ID}x 198.18.200.1K   |
#                                       +---- NS $ID-etcd: bridge, members   blue1 198.19.0.11
#                                             m1..m3 on 198.18.200.1..3      blue2 198.19.0.12
#                                                                            green1 198.19.0.21
#
# Node K's edge is lib.sh's edge for K = 1 (rig_up builds it with cli1, the switch and
# the backends); edges 2 and 3, their clients and the etcd namespace are added here.
# The backends reply through the edge the connection came through (LVS-NAT): each has
# a route per client subnet via that subnet's edge. Every client reaches the same VIP
# through its own edge, so the three nodes see independent traffic (no ECMP router: a
# NAT edge needs its replies back, which per-subnet routes give without policy routing).
# Node K's files are under $RIG_DIR/nK/ (config, state, textfile, bpffs: a private bpffs
# mount, control socket, shiftd.N.log). etcd's data is a mktemp dir under
# FLEET_ETCD_PARENT (/dev/shm when writable: a loaded CI disk's fsync would dominate
# every figure measured here; set FLEET_ETCD_PARENT=/var/tmp for a disk).
#
# Knobs (before fleet_up): FLEET_ETCD=1 (0: fleet_up does not start etcd),
# FLEET_CUT=nft|link (how fleet_cut isolates a node: nft drops every packet to and
# from etcd in the edge netns, silently, like a dead link upstream; link takes the
# edge's etcd veth down), FLEET_LEASE (5s), FLEET_TIMEOUT (etcd_timeout, 2s),
# FLEET_NAME (fleet key prefix, fleet-$RIG_ID). Every wait is bounded.

[ -n "${_FLEET_LIB_LOADED:-}" ] && return 0
_FLEET_LIB_LOADED=1

FLEET_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RIG_QUIET:=1}"
# a VIP of its own per run, as e2e_lib.sh does
_fleet_v=$((20 + RANDOM % 230))
: "${RIG_VIP:=198.18.100.$_fleet_v}"
# shellcheck source=lib.sh
. "$FLEET_LIB_DIR/lib.sh"

FLEET_ROOT=$(cd "$FLEET_LIB_DIR/../.." && pwd)
FLEET_OUT=${OUTPUT:-$FLEET_ROOT/.output}
case $FLEET_OUT in /*) ;; *) FLEET_OUT=$FLEET_ROOT/$FLEET_OUT ;; esac
: "${SHIFTD:=$FLEET_OUT/shiftd}"
: "${SHIFTCTL:=$FLEET_OUT/shiftctl}"
: "${FLEET_ETCD_BIN:=/usr/bin/etcd}"
: "${FLEET_ETCDCTL_BIN:=/usr/bin/etcdctl}"
: "${FLEET_ETCD:=1}"
: "${FLEET_CUT:=nft}"
: "${FLEET_ECMP:=0}"
: "${FLEET_LEASE:=5s}"
: "${FLEET_TIMEOUT:=2s}"
FLEET_N=3
FLEET_NET=198.18.200            # etcd members .1-.3, edge K .1K
FLEET_SVC=web
declare -gA _FLEET_SHIFTD_PID=() _FLEET_ETCD_PID=() _FLEET_SHIFTD_RUNS=()
_FLEET_MOUNTS=()
_FLEET_ETCD_DATA=""

_fleet_err() { echo "fleet: error: $*" >&2; }

# --- probing ----------------------------------------------------------------------

# fleet_probe: can this machine run the fleet rig? 0 if yes; else 1 with
# FLEET_SKIP_REASON set (for rig_skip). Needs root, the rig's tools, etcd + etcdctl
# (Debian etcd-server, etcd-client) and the built shiftd/shiftctl.
fleet_probe() {
	FLEET_SKIP_REASON=""
	if ! rig_probe; then
		FLEET_SKIP_REASON=$RIG_SKIP_REASON
		return 1
	fi
	if [ ! -x "$FLEET_ETCD_BIN" ]; then
		FLEET_SKIP_REASON="no $FLEET_ETCD_BIN (Debian package etcd-server)"
	elif [ ! -x "$FLEET_ETCDCTL_BIN" ]; then
		FLEET_SKIP_REASON="no $FLEET_ETCDCTL_BIN (Debian package etcd-client)"
	elif [ ! -x "$SHIFTD" ] || [ ! -x "$SHIFTCTL" ]; then
		FLEET_SKIP_REASON="$SHIFTD / $SHIFTCTL not built (make all)"
	elif [ "$FLEET_ECMP" = 1 ] && [ "${RIG_HAVE_NFT:-0}" != 1 ]; then
		FLEET_SKIP_REASON="FLEET_ECMP=1 needs nftables (the backends' reply marks)"
	fi
	[ -z "$FLEET_SKIP_REASON" ]
}

# fleet_feature_probe: does this shiftd speak [fleet] (SPEC "Fleet")? 0 if yes; else 1
# with FLEET_SKIP_REASON naming what is missing. Checked by the product itself: a
# config with a [fleet] section must pass `shiftd --check`, and shiftctl must know
# `fleet status`. Call after fleet_up (it writes a scratch config under $RIG_DIR).
fleet_feature_probe() {
	local c=$RIG_DIR/probe.conf out
	FLEET_SKIP_REASON=""
	fleet_write_config 1 >/dev/null || { FLEET_SKIP_REASON="cannot write a probe config"; return 1; }
	cp "$FLEET_CONFIG_1" "$c"
	if ! out=$("$SHIFTD" --check --config "$c" 2>&1); then
		FLEET_SKIP_REASON="shiftd has no [fleet] section yet (shiftd --check: $(printf '%s' "$out" | tail -n 1))"
		return 1
	fi
	if ! "$SHIFTCTL" --help 2>&1 | grep -q 'fleet status'; then
		FLEET_SKIP_REASON="shiftctl has no 'fleet status' verb yet"
		return 1
	fi
}

# --- names -----------------------------------------------------------------------

# fleet_ns K: node K's edge netns.
fleet_ns() { if [ "$1" = 1 ]; then echo "$RIG_NS_EDGE"; else echo "$RIG_ID-edge$1"; fi; }
fleet_node() { echo "n$1"; }     # node K's fleet name
fleet_dir() { echo "$RIG_DIR/n$1"; }
fleet_etcd_url() { echo "http://$FLEET_NET.$1:2379"; }
fleet_endpoints() { # "http://...:2379, ..." of the three members
	local i out=""
	for ((i = 1; i <= FLEET_N; i++)); do out+="${out:+, }$(fleet_etcd_url "$i")"; done
	echo "$out"
}

# fleet_nsenter K CMD...: CMD in node K's edge netns (host mount namespace: bpffs pins).
fleet_nsenter() {
	local k=$1
	shift
	nsenter --net="/run/netns/$(fleet_ns "$k")" -- "$@"
}

# fleet_ctl K ARGS...: shiftctl of node K.
fleet_ctl() {
	local k=$1
	shift
	fleet_nsenter "$k" "$SHIFTCTL" -c "$(fleet_dir "$k")/shiftd.conf" "$@"
}

# --- up -----------------------------------------------------------------------------

# fleet_up: the rig (lib.sh rig_up: edge 1, cli1, switch, blue1, blue2, green1), edges 2..3
# with their clients, the etcd namespace, the etcd cluster (FLEET_ETCD=1), and each
# node's directories and private bpffs. Sets the traps (via rig_up); cleanup of every
# namespace, pid and mount is rig_down's (hooks registered here).
fleet_up() {
	local k i b sw_ifs=()
	export RIG_CLIENTS=1
	rig_up || return 1
	rig_on_exit fleet_teardown
	: "${FLEET_NAME:=fleet-$RIG_ID}"
	FLEET_NS_ETCD=$RIG_ID-etcd
	_rig_ns_add "$FLEET_NS_ETCD" net.ipv6.conf.default.disable_ipv6=1 || return 1
	{
		echo "link set lo up"
		echo "link add ${RIG_ID}eb type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
		for ((i = 1; i <= FLEET_N; i++)); do echo "addr add $FLEET_NET.$i/24 dev ${RIG_ID}eb"; done
		echo "link set ${RIG_ID}eb up"
	} | _rig_batch "$FLEET_NS_ETCD" || return 1

	for ((k = 1; k <= FLEET_N; k++)); do
		mkdir -p "$(fleet_dir "$k")/state" "$(fleet_dir "$k")/textfile" "$(fleet_dir "$k")/bpffs" || return 1
		mount -t bpf bpf "$(fleet_dir "$k")/bpffs" || { _fleet_err "cannot mount a bpffs for node $k"; return 1; }
		_FLEET_MOUNTS+=("$(fleet_dir "$k")/bpffs")
		if [ "$k" -gt 1 ]; then
			_fleet_add_edge "$k" || return 1
			sw_ifs+=("${RIG_ID}se$k")
		fi
		# every edge: a veth into the etcd namespace's bridge
		{
			echo "link add ${RIG_ID}x type veth peer name ${RIG_ID}x$k netns $FLEET_NS_ETCD"
			echo "addr add $FLEET_NET.1$k/24 dev ${RIG_ID}x"
			echo "link set ${RIG_ID}x up"
		} | _rig_batch "$(fleet_ns "$k")" || return 1
		echo "link set ${RIG_ID}x$k master ${RIG_ID}eb up" | _rig_batch "$FLEET_NS_ETCD" || return 1
	done
	_rig_features "$RIG_NS_SWITCH" "${sw_ifs[@]}"
	# the backends answer each client subnet through that subnet's edge
	for b in $RIG_BACKENDS; do
		for ((k = 2; k <= FLEET_N; k++)); do
			echo "route add 198.18.$k.0/24 via 198.19.0.$k" | _rig_batch "$RIG_ID-$b" || return 1
		done
	done
	if [ "$FLEET_ECMP" = 1 ]; then
		_fleet_ecmp_up || return 1
	fi
	if [ "$FLEET_ETCD" = 1 ]; then
		fleet_etcd_up || return 1
	fi
}

# FLEET_ECMP=1: one client behind an ECMP router instead of one client per edge. The
# client ends of the three edges' client links move into ${ID}-rtr (198.18.K.2 there),
# which routes the VIP over the three edges with L4 multipath hashing
# (fib_multipath_hash_policy = 1: each connection sticks to one edge); the client,
# ${ID}-ecli, is 198.18.50.2 behind it. The backends send each connection's replies
# back through the edge its SYN came from: the SYN's source MAC (edge K's) sets a
# conntrack mark K, replies carry it as a fwmark, and `ip rule fwmark K` routes them
# via 198.19.0.K (an LVS-NAT edge must see its replies).
FLEET_ECMP_CLIENT=198.18.50.2
_fleet_ecmp_up() {
	local k b rtr=$RIG_ID-rtr mac rules=""
	export FLEET_NS_RTR=$rtr
	FLEET_NS_ECLI=$RIG_ID-ecli
	_rig_ns_add "$rtr" || return 1
	_rig_ns_add "$FLEET_NS_ECLI" || return 1
	_rig_run nsenter --net="/run/netns/$rtr" -- sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv4.fib_multipath_hash_policy=1 >/dev/null || return 1
	for ((k = 1; k <= FLEET_N; k++)); do
		ip -n "$RIG_ID-cli$k" link set "${RIG_ID}e$k" netns "$rtr" || return 1
		printf '%s\n' "addr add 198.18.$k.2/24 dev ${RIG_ID}e$k" "link set ${RIG_ID}e$k up" |
			_rig_batch "$rtr" || return 1
		echo "route add 198.18.50.0/24 via 198.18.$k.2" | _rig_batch "$(fleet_ns "$k")" || return 1
		mac=$(_rig_mac "$(fleet_ns "$k")" "$RIG_EDGE_BACKEND_IF") || return 1
		rules+="ct state new ether saddr $mac ct mark set $k"$'\n'
	done
	{
		echo "link set lo up"
		echo "link add ${RIG_ID}u type veth peer name ${RIG_ID}v netns $FLEET_NS_ECLI"
		echo "addr add 198.18.50.1/24 dev ${RIG_ID}u"
		echo "link set ${RIG_ID}u up"
		echo "route add $RIG_VIP/32 nexthop via 198.18.1.1 nexthop via 198.18.2.1 nexthop via 198.18.3.1"
	} | _rig_batch "$rtr" || return 1
	printf '%s\n' "link set lo up" "addr add $FLEET_ECMP_CLIENT/24 dev ${RIG_ID}v" "link set ${RIG_ID}v up" \
		"route add default via 198.18.50.1" | _rig_batch "$FLEET_NS_ECLI" || return 1
	_rig_features "$rtr" "${RIG_ID}u" "${RIG_ID}e1" "${RIG_ID}e2" "${RIG_ID}e3"
	_rig_features "$FLEET_NS_ECLI" "${RIG_ID}v"
	for b in $RIG_BACKENDS; do
		nsenter --net="/run/netns/$RIG_ID-$b" -- nft -f - <<-EOF || return 1
			table ip fleet_ecmp {
				chain pre {
					type filter hook prerouting priority -150; policy accept;
					$rules
				}
				chain out {
					type route hook output priority -150; policy accept;
					meta mark set ct mark
				}
			}
		EOF
		for ((k = 1; k <= FLEET_N; k++)); do
			printf '%s\n' "rule add fwmark $k table $((100 + k))" \
				"route add default via 198.19.0.$k table $((100 + k))" | _rig_batch "$RIG_ID-$b" || return 1
		done
	done
}

_fleet_add_edge() { # K: edge K (netns, backend-side veth into the switch) and client K
	local k=$1 ns cli
	ns=$(fleet_ns "$k")
	cli=$RIG_ID-cli$k
	_rig_ns_add "$ns" net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 ||
		return 1
	_rig_ns_add "$cli" || return 1
	{
		echo "link set lo up"
		echo "link add $RIG_EDGE_BACKEND_IF type veth peer name ${RIG_ID}se$k netns $RIG_NS_SWITCH"
		echo "addr add 198.19.0.$k/16 dev $RIG_EDGE_BACKEND_IF"
		echo "link set $RIG_EDGE_BACKEND_IF up"
		echo "link add ${RIG_ID}c$k type veth peer name ${RIG_ID}e$k netns $cli"
		echo "addr add 198.18.$k.1/24 dev ${RIG_ID}c$k"
		echo "link set ${RIG_ID}c$k up"
	} | _rig_batch "$ns" || return 1
	echo "link set ${RIG_ID}se$k master $RIG_SWITCH_BRIDGE up" | _rig_batch "$RIG_NS_SWITCH" || return 1
	printf '%s\n' "link set lo up" "addr add 198.18.$k.2/24 dev ${RIG_ID}e$k" \
		"link set ${RIG_ID}e$k up" "route add default via 198.18.$k.1" | _rig_batch "$cli" || return 1
	_rig_run nsenter --net="/run/netns/$ns" -- sysctl -qw net.ipv4.ip_forward=1 >/dev/null || return 1
	_rig_features "$ns" "$RIG_EDGE_BACKEND_IF" "${RIG_ID}c$k"
	_rig_features "$cli" "${RIG_ID}e$k"
}

# fleet_teardown: stop every shiftd and etcd member (by pid), unmount the bpffs
# instances, remove etcd's data. Registered by fleet_up with rig_on_exit; idempotent.
fleet_teardown() {
	local k m
	fleet_traffic_stop 2>/dev/null
	for k in "${!_FLEET_SHIFTD_PID[@]}"; do fleet_stop "$k"; done
	for m in "${!_FLEET_ETCD_PID[@]}"; do fleet_etcd_stop "$m"; done
	for m in "${_FLEET_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || _fleet_err "cannot unmount $m"
	done
	_FLEET_MOUNTS=()
	if [ -n "$_FLEET_ETCD_DATA" ] && [ -d "$_FLEET_ETCD_DATA" ]; then
		if [ "${RIG_KEEP:-0}" = 1 ]; then
			echo "fleet: kept etcd data $_FLEET_ETCD_DATA" >&2
		else
			rm -rf "$_FLEET_ETCD_DATA"
		fi
	fi
	_FLEET_ETCD_DATA=""
}

# --- etcd ---------------------------------------------------------------------------

_fleet_initial_cluster() {
	local i out=""
	for ((i = 1; i <= FLEET_N; i++)); do out+="${out:+,}m$i=http://$FLEET_NET.$i:2380"; done
	echo "$out"
}

# fleet_etcd_start I: start member mI (its data dir is kept across restarts, so a
# restarted member rejoins with its log). Does not wait.
fleet_etcd_start() {
	local i=$1 parent
	if [ -z "$_FLEET_ETCD_DATA" ]; then
		parent=${FLEET_ETCD_PARENT:-}
		if [ -z "$parent" ]; then
			if [ -d /dev/shm ] && [ -w /dev/shm ]; then parent=/dev/shm; else parent=${TMPDIR:-/tmp}; fi
		fi
		_FLEET_ETCD_DATA=$(mktemp -d "$parent/shift-fleet-etcd.$RIG_ID.XXXXXX") || return 1
	fi
	if [ -n "${_FLEET_ETCD_PID[$i]:-}" ] && kill -0 "${_FLEET_ETCD_PID[$i]}" 2>/dev/null; then
		return 0
	fi
	rig_spawn "$FLEET_NS_ETCD" "$RIG_DIR/log/etcd-m$i.log.$((${#_FLEET_ETCD_PID[@]} + RANDOM))" \
		"$FLEET_ETCD_BIN" --name "m$i" --data-dir "$_FLEET_ETCD_DATA/m$i" \
		--listen-client-urls "$(fleet_etcd_url "$i")" \
		--advertise-client-urls "$(fleet_etcd_url "$i")" \
		--listen-peer-urls "http://$FLEET_NET.$i:2380" \
		--initial-advertise-peer-urls "http://$FLEET_NET.$i:2380" \
		--initial-cluster "$(_fleet_initial_cluster)" \
		--initial-cluster-token "shift-$RIG_ID" --initial-cluster-state new \
		--logger zap --log-outputs stderr --log-level warn || return 1
	_FLEET_ETCD_PID[$i]=$RIG_LAST_PID
}

# fleet_etcd_stop I [KILL]: stop member mI (SIGTERM; with KILL, SIGKILL: a crash).
fleet_etcd_stop() {
	local i=$1 p=${_FLEET_ETCD_PID[$1]:-}
	[ -n "$p" ] || return 0
	if [ "${2:-}" = KILL ]; then
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	else
		rig_kill "$p"
	fi
	unset '_FLEET_ETCD_PID[$i]'
}

# fleet_etcdctl ARGS...: etcdctl (v3) against every member, from the etcd netns.
fleet_etcdctl() {
	local eps
	eps=$(fleet_endpoints)
	ETCDCTL_API=3 nsenter --net="/run/netns/$FLEET_NS_ETCD" -- "$FLEET_ETCDCTL_BIN" \
		--endpoints "${eps//, /,}" --dial-timeout 2s --command-timeout 5s "$@"
}

# fleet_etcd_leader: the index I of the member mI that is the raft leader now.
fleet_etcd_leader() {
	fleet_etcdctl endpoint status -w json 2>/dev/null | "$RIG_PYTHON" -c '
import json, sys
for e in json.load(sys.stdin):
    st = e.get("Status", {})
    if st.get("header", {}).get("member_id") == st.get("leader"):
        print(e["Endpoint"].rsplit(":", 1)[0].rsplit(".", 1)[1]); break
else:
    sys.exit(1)'
}

# fleet_etcd_healthy [N]: at least N (default 3) members report healthy.
fleet_etcd_healthy() {
	local want=${1:-$FLEET_N} n
	n=$(fleet_etcdctl endpoint health 2>&1 | grep -c 'is healthy') || true
	[ "$n" -ge "$want" ]
}

# fleet_etcd_up: start the three members, wait (bounded, 30 s) until all are healthy.
fleet_etcd_up() {
	local i
	for ((i = 1; i <= FLEET_N; i++)); do fleet_etcd_start "$i" || return 1; done
	if ! rig_wait 60 0.5 fleet_etcd_healthy; then
		_fleet_err "etcd cluster not healthy after 30 s:"
		fleet_etcdctl endpoint health >&2 2>&1
		tail -n 5 "$RIG_DIR"/log/etcd-m*.log* >&2
		return 1
	fi
}

# --- cutting a node off etcd -----------------------------------------------------------

# fleet_cut K: node K can no longer reach etcd (FLEET_CUT: nft = silent drop, link =
# its etcd veth down). Nothing else changes: clients and backends still reach it.
fleet_cut() {
	local k=$1
	if [ "$FLEET_CUT" = nft ] && [ "${RIG_HAVE_NFT:-0}" = 1 ]; then
		fleet_nsenter "$k" nft -f - <<-EOF
			table inet fleet_cut {
				chain out { type filter hook output priority 0; policy accept; ip daddr $FLEET_NET.0/24 drop; }
				chain in { type filter hook input priority 0; policy accept; ip saddr $FLEET_NET.0/24 drop; }
			}
		EOF
	else
		ip -n "$(fleet_ns "$k")" link set "${RIG_ID}x" down
	fi
}

# fleet_heal K: undo fleet_cut K.
fleet_heal() {
	local k=$1
	fleet_nsenter "$k" nft delete table inet fleet_cut 2>/dev/null || true
	ip -n "$(fleet_ns "$k")" link set "${RIG_ID}x" up
}

# --- shiftd per node -------------------------------------------------------------------

# fleet_write_config K [KEY=VALUE | web.KEY=VALUE | fleet.KEY=VALUE ...]: node K's
# shiftd.conf (lib.sh rig_write_config with node K's interfaces and directories; one
# IPv4 service "web", health checks off, shift.prom every second) plus a [fleet] section unless FLEET_JOIN=0:
# etcd_endpoints (FLEET_ENDPOINTS or the three members), fleet, node, etcd_timeout,
# fleet_lease; fleet.KEY=VALUE adds or replaces a key there (empty value: drops it).
# Sets FLEET_CONFIG_K.
fleet_write_config() {
	local k=$1 d arg rest=() fk=() fv=() i found
	shift
	d=$(fleet_dir "$k")
	fk=(etcd_endpoints fleet node etcd_timeout fleet_lease)
	fv=("${FLEET_ENDPOINTS:-$(fleet_endpoints)}" "$FLEET_NAME" "$(fleet_node "$k")" "$FLEET_TIMEOUT" "$FLEET_LEASE")
	for arg in "$@"; do
		case $arg in
		fleet.*=*)
			arg=${arg#fleet.}
			found=0
			for i in "${!fk[@]}"; do
				if [ "${fk[i]}" = "${arg%%=*}" ]; then fv[i]=${arg#*=}; found=1; fi
			done
			[ "$found" = 1 ] || { fk+=("${arg%%=*}"); fv+=("${arg#*=}"); }
			;;
		*) rest+=("$arg") ;;
		esac
	done
	local extra=""
	if [ "${FLEET_JOIN:-1}" = 1 ]; then
		extra="[fleet]"
		for i in "${!fk[@]}"; do
			[ -z "${fv[i]}" ] || extra+=$'\n'"${fk[i]} = ${fv[i]}"
		done
	fi
	RIG_SVC=$FLEET_SVC RIG_SVC6='' RIG_CONFIG_EXTRA="${FLEET_CONFIG_EXTRA:-}${FLEET_CONFIG_EXTRA:+$'\n'}$extra" \
		RIG_EDGE_CLIENT_IFS="${RIG_ID}c$k" RIG_BPFFS_DIR="$d/bpffs" RIG_STATE_DIR="$d/state" \
		RIG_TEXTFILE_DIR="$d/textfile" RIG_CONTROL_SOCKET="$d/shiftd.sock" \
		rig_write_config "$d/shiftd.conf" xdp_mode=auto metrics_interval=1s \
		"$FLEET_SVC.health_check=none" "${rest[@]}" ||
		return 1
	printf -v "FLEET_CONFIG_$k" '%s' "$d/shiftd.conf"
	export "FLEET_CONFIG_$k"
}

# fleet_running K: node K's shiftd answers status --json with agent_running true.
fleet_running() {
	local j
	j=$(fleet_ctl "$1" status --json 2>/dev/null) && [ "$(rig_json_get agent_running <<<"$j")" = True ]
}

# fleet_start K: start node K's shiftd (rig_spawn in its edge netns), wait (bounded,
# 15 s) until it reports itself running. Log: $RIG_DIR/nK/shiftd.N.log (FLEET_LOG_K).
fleet_start() {
	local k=$1 n log i
	n=$((${_FLEET_SHIFTD_RUNS[$k]:-0} + 1))
	_FLEET_SHIFTD_RUNS[$k]=$n
	log=$(fleet_dir "$k")/shiftd.$n.log
	printf -v "FLEET_LOG_$k" '%s' "$log"
	rig_spawn "$(fleet_ns "$k")" "$log" "$SHIFTD" --config "$(fleet_dir "$k")/shiftd.conf" || return 1
	_FLEET_SHIFTD_PID[$k]=$RIG_LAST_PID
	for ((i = 0; i < 150; i++)); do
		if ! kill -0 "${_FLEET_SHIFTD_PID[$k]}" 2>/dev/null; then
			_fleet_err "node $k: shiftd exited at start; its log:"
			sed 's/^/fleet:   /' "$log" >&2
			unset '_FLEET_SHIFTD_PID[$k]'
			return 1
		fi
		fleet_running "$k" && return 0
		sleep 0.1
	done
	_fleet_err "node $k: shiftd not running after 15 s; its log:"
	sed 's/^/fleet:   /' "$log" >&2
	return 1
}

# fleet_stop K [KILL]: stop node K's shiftd (SIGTERM, bounded; KILL: kill -9).
fleet_stop() {
	local k=$1 p=${_FLEET_SHIFTD_PID[$1]:-}
	[ -n "$p" ] || return 0
	if [ "${2:-}" = KILL ]; then
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	else
		rig_kill "$p"
	fi
	unset '_FLEET_SHIFTD_PID[$k]'
}

# fleet_pid K: node K's shiftd pid ("" if none).
fleet_pid() { echo "${_FLEET_SHIFTD_PID[$1]:-}"; }

# fleet_log K: node K's current shiftd log.
fleet_log() { local v="FLEET_LOG_$1"; echo "${!v:-/dev/null}"; }

# fleet_svc K FIELD[.FIELD]: a field of service web in node K's `status --json`
# (booleans as True/False, "" if absent).
fleet_svc() {
	fleet_ctl "$1" status --json 2>/dev/null | "$RIG_PYTHON" -c '
import json, sys
try:
    v = [s for s in json.load(sys.stdin)["services"] if s["service"] == sys.argv[1]][0]
except Exception:
    print(""); sys.exit(1)
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$FLEET_SVC" "$2"
}

# fleet_all FIELD: "V1 V2 V3": fleet_svc of every node.
fleet_all() {
	local k out=""
	for ((k = 1; k <= FLEET_N; k++)); do out+="${out:+ }$(fleet_svc "$k" "$1")"; done
	echo "$out"
}

# fleet_wait_all SECONDS FIELD VALUE: until every node's FIELD is VALUE (10 tries/s).
fleet_wait_all() {
	local i want
	want=$(printf "$3 %.0s" $(seq "$FLEET_N"))
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(fleet_all "$2") " = "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

# fleet_status_json K: `shiftctl fleet status --json` of node K.
fleet_status_json() { fleet_ctl "$1" fleet status --json; }

# fleet_agree K: node K's `fleet status --json` lists every node alive and agreeing.
# Prints a one-line summary ("n1 alive agrees 2500 bp; ...") either way.
fleet_agree() {
	fleet_status_json "$1" 2>&1 | "$RIG_PYTHON" -c '
import json, sys
raw = sys.stdin.read()
try:
    d = json.loads(raw)
except ValueError:
    print("not JSON: " + raw.strip()[:200]); sys.exit(1)
want = int(sys.argv[1])
nodes = d.get("nodes", [])
parts, good = [], len(nodes) == want
for n in nodes:
    svcs = []
    for x in n.get("services", []):
        svcs.append("%s %s bp%s" % (x.get("service"), x.get("green_weight_bp"),
                                     " latched" if x.get("rolled_back") else ""))
    parts.append("%s %s %s rev %s (%s)" % (n.get("node"), "alive" if n.get("alive") else "DEAD",
                 "agrees" if n.get("agrees") else "DISAGREES", n.get("applied_revision"),
                 ", ".join(svcs)))
    good &= bool(n.get("alive")) and bool(n.get("agrees"))
print("fleet %s rev %s: %s" % (d.get("fleet"), d.get("revision"), "; ".join(parts)))
sys.exit(0 if good else 1)' "$FLEET_N"
}

# fleet_svc_id K: service web's id on node K (from the pinned shift_svc_info).
fleet_svc_id() {
	fleet_nsenter "$1" bpftool -j map dump pinned "$(fleet_dir "$1")/bpffs/maps/shift_svc_info" |
		rig_svc_id_in "$FLEET_SVC"
}

# fleet_watch_args: the --node arguments of fleet_watch.py for every node.
fleet_watch_args() {
	local k id
	for ((k = 1; k <= FLEET_N; k++)); do
		id=$(fleet_svc_id "$k") || { _fleet_err "node $k: no service $FLEET_SVC in its maps"; return 1; }
		printf -- '--node\n%s=%s:%s\n' "$(fleet_node "$k")" "$(fleet_dir "$k")/bpffs/maps/shift_weights" "$id"
	done
}

# fleet_watch_start OUT ARGS...: fleet_watch.py in the background (host netns: it only
# reads pinned maps; SCHED_FIFO 5 via chrt unless FLEET_WATCH_RT=0), JSON to OUT; waits (bounded) until it has read every map once.
# Sets FLEET_WATCH_PID.
fleet_watch_start() {
	local out=$1 ready i
	shift
	local -a nargs
	mapfile -t nargs < <(fleet_watch_args) || return 1
	[ "${#nargs[@]}" = $((2 * FLEET_N)) ] || return 1
	ready=$out.ready
	rm -f "$ready"
	# a real-time priority (when chrt works): a loaded box must not deschedule the observer
	local rt=()
	if [ "${FLEET_WATCH_RT:-1}" = 1 ] && chrt -f 5 true 2>/dev/null; then rt=(chrt -f 5); fi
	"${rt[@]}" "$RIG_PYTHON" "$FLEET_LIB_DIR/fleet_watch.py" "${nargs[@]}" --ready-file "$ready" "$@" \
		>"$out" 2>"$out.err" </dev/null &
	FLEET_WATCH_PID=$!
	local st
	st=$(_rig_starttime "$FLEET_WATCH_PID") || st=gone
	_RIG_SPAWNED+=("watch $FLEET_WATCH_PID $st")
	for ((i = 0; i < 100; i++)); do
		[ -e "$ready" ] && return 0
		kill -0 "$FLEET_WATCH_PID" 2>/dev/null || break
		sleep 0.05
	done
	_fleet_err "fleet_watch.py not ready: $(cat "$out.err")"
	return 1
}

# fleet_watch_gap OUT: the watcher's resolution in that run ("max gap N ms").
fleet_watch_gap() {
	"$RIG_PYTHON" -c 'import json,sys; print("watcher max gap %.1f ms" % (json.load(open(sys.argv[1])).get("max_gap_us", 0) / 1e3))' "$1" 2>/dev/null
}

# fleet_watch_wait SECONDS: wait (bounded) for the watcher; its exit status.
fleet_watch_wait() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		kill -0 "$FLEET_WATCH_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$FLEET_WATCH_PID" 2>/dev/null && rig_kill "$FLEET_WATCH_PID"
	wait "$FLEET_WATCH_PID"
}

# --- client traffic ----------------------------------------------------------------------

# fleet_traffic_start TAG RATE DURATION [CLIENT-ARGS...]: client.py rate in every client
# namespace (cliK through node K), RATE new connections/s each; per-second JSON lines
# to $RIG_DIR/TAG.cliK.jsonl (FLEET_ECMP=1: one client behind the router at N x RATE,
# TAG.ecli.jsonl). Sets FLEET_TRAFFIC_PIDS.
fleet_traffic_start() {
	local tag=$1 rate=$2 dur=$3 k
	shift 3
	FLEET_TRAFFIC_PIDS=()
	if [ "$FLEET_ECMP" = 1 ]; then # one client behind the router, N times the rate
		rig_nsenter "$FLEET_NS_ECLI" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" 2>/dev/null
		rig_spawn "$FLEET_NS_ECLI" "$RIG_DIR/$tag.ecli.jsonl" "$RIG_PYTHON" "$RIG_CLIENT_PY" rate \
			--url "$RIG_URL" --rate "$((rate * FLEET_N))" --duration "$dur" --concurrency 48 \
			--timeout 2 "$@" || return 1
		FLEET_TRAFFIC_PIDS+=("$RIG_LAST_PID")
		return 0
	fi
	for ((k = 1; k <= FLEET_N; k++)); do
		rig_nsenter "$RIG_ID-cli$k" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" 2>/dev/null
		rig_spawn "$RIG_ID-cli$k" "$RIG_DIR/$tag.cli$k.jsonl" "$RIG_PYTHON" "$RIG_CLIENT_PY" rate \
			--url "$RIG_URL" --rate "$rate" --duration "$dur" --concurrency 32 --timeout 2 "$@" || return 1
		FLEET_TRAFFIC_PIDS+=("$RIG_LAST_PID")
	done
}

# fleet_traffic_wait SECONDS: wait (bounded) for the clients of fleet_traffic_start.
fleet_traffic_wait() {
	local p i rc=0
	for p in "${FLEET_TRAFFIC_PIDS[@]}"; do
		for ((i = 0; i < $1 * 10; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$p" 2>/dev/null; then rig_kill "$p"; rc=1; fi
	done
	FLEET_TRAFFIC_PIDS=()
	return $rc
}

fleet_traffic_stop() {
	local p
	for p in "${FLEET_TRAFFIC_PIDS[@]}"; do rig_kill "$p" 2>/dev/null; done
	FLEET_TRAFFIC_PIDS=()
}

# fleet_traffic_sum TAG: one JSON object summing every client's summary line, per
# client too: {"sent","ok","failed","errors":{},"by_backend":{},"per_client":{cliK:{...}}}
# (with FLEET_ECMP=1 the one client is "ecli").
fleet_traffic_sum() {
	"$RIG_PYTHON" - "$RIG_DIR" "$1" <<'PY'
import glob, json, os, sys
d, tag = sys.argv[1], sys.argv[2]
tot = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0, "errors": {}, "by_backend": {}, "per_client": {}}
for path in sorted(glob.glob(f"{glob.escape(d)}/{glob.escape(tag)}.*.jsonl")):
    name = os.path.basename(path)[len(tag) + 1:-len(".jsonl")]
    if "." in name:  # another tag's file (TAG.warm.cli1.jsonl for TAG)
        continue
    summ = None
    secs = []
    try:
        for line in open(path, errors="replace"):
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j.get("summary"):
                summ = j
            else:
                secs.append(j)
    except OSError:
        pass
    if summ is None:  # stopped early: add up the per-second lines
        summ = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0, "errors": {}, "by_backend": {}}
        for j in secs:
            for key in ("sent", "ok", "failed", "skipped"):
                summ[key] += j.get(key, 0)
            for key in ("errors", "by_backend"):
                for a, b in j.get(key, {}).items():
                    summ[key][a] = summ[key].get(a, 0) + b
    tot["per_client"][name] = {x: summ.get(x, 0) for x in ("sent", "ok", "failed")}
    tot["per_client"][name]["errors"] = summ.get("errors", {})
    for key in ("sent", "ok", "failed", "skipped"):
        tot[key] += summ.get(key, 0)
    for key in ("errors", "by_backend"):
        for a, b in summ.get(key, {}).items():
            tot[key][a] = tot[key].get(a, 0) + b
print(json.dumps(tot, sort_keys=True))
PY
}

# --- reporting ---------------------------------------------------------------------------

# fleet_report_open NAME: figures go to stdout and to ${OUTPUT:-.output}/NAME.txt.
fleet_report_open() {
	mkdir -p "$FLEET_OUT" || return 1
	FLEET_REPORT=$FLEET_OUT/$1.txt
	: >"$FLEET_REPORT"
	echo "# $1 $(date -u +%FT%TZ) rig $RIG_ID" >>"$FLEET_REPORT"
}

# fleet_report TEXT: one figure line, to stdout ("# TEXT") and the report file.
fleet_report() {
	echo "# $*"
	[ -z "${FLEET_REPORT:-}" ] || echo "$*" >>"$FLEET_REPORT"
}

# fleet_dump_logs: the tail of every node's shiftd log and every etcd member's (stderr).
fleet_dump_logs() {
	local f
	for f in "$RIG_DIR"/n*/shiftd.*.log "$RIG_DIR"/log/etcd-m*.log*; do
		[ -e "$f" ] || continue
		echo "--- $f (last 25 lines)"
		tail -n 25 "$f"
	done
}

# --- check lines (as e2e_lib.sh) -----------------------------------------------------------

FLEET_T0=$SECONDS
FLEET_FAILS=0
FLEET_CHECKS=0
ok() { FLEET_CHECKS=$((FLEET_CHECKS + 1)); echo "ok - $*"; }
notok() { FLEET_CHECKS=$((FLEET_CHECKS + 1)); FLEET_FAILS=$((FLEET_FAILS + 1)); echo "not ok - $*"; }
note() { echo "# $*"; }
# check DESC CMD...: ok if CMD succeeds
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}

# fleet_finish: the summary line (also into the report); shiftd and etcd logs on stderr
# if a check failed; exit 0 or 1.
fleet_finish() {
	local rc=0
	[ "$FLEET_FAILS" = 0 ] || { rc=1; fleet_dump_logs >&2; }
	fleet_report "$(basename "$0"): $((FLEET_CHECKS - FLEET_FAILS))/$FLEET_CHECKS checks passed in $((SECONDS - FLEET_T0))s"
	exit "$rc"
}

# fleet_bail TEXT: a set-up step failed; nothing after it can be checked.
fleet_bail() {
	notok "$*"
	fleet_finish
}

# --- fleet helpers for the tests ----------------------------------------------------------

# fleet_metric K NAME: the value of metric NAME (first series, labels ignored) in node
# K's textfile shift.prom ("" if absent).
fleet_metric() {
	awk -v n="$2" '$1 == n || index($1, n "{") == 1 { print $2; exit }' \
		"$(fleet_dir "$1")/textfile/shift.prom" 2>/dev/null
}

# fleet_up_joined [KEY=VALUE...]: fleet_probe, fleet_up, the feature probe (exit 77 with
# the missing feature named), a config with [fleet] on each node and three shiftd
# running. Exits 1 (not ok) if a set-up step fails.
fleet_up_joined() {
	fleet_probe || rig_skip "$FLEET_SKIP_REASON"
	fleet_up || fleet_bail "setup: fleet_up failed"
	fleet_feature_probe || rig_skip "$FLEET_SKIP_REASON"
	local k
	for ((k = 1; k <= FLEET_N; k++)); do
		fleet_write_config "$k" "$@" || fleet_bail "setup: node $k config"
	done
	for ((k = 1; k <= FLEET_N; k++)); do
		fleet_start "$k" || fleet_bail "setup: node $k: shiftd did not start with [fleet]"
	done
}

# fleet_wait_connected K SECONDS: until node K's shift_fleet_connected is 1.
fleet_wait_connected() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(fleet_metric "$1" shift_fleet_connected)" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

# fleet_wait_disconnected K SECONDS: until node K's shift_fleet_connected is 0.
fleet_wait_disconnected() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(fleet_metric "$1" shift_fleet_connected)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# fleet_wait_agree K SECONDS: until node K's `fleet status` shows every node alive and
# agreeing; FLEET_AGREE gets the last summary line.
fleet_wait_agree() {
	local i
	for ((i = 0; i < $2 * 4; i++)); do
		# shellcheck disable=SC2034 # for the callers
		FLEET_AGREE=$(fleet_agree "$1") && return 0
		sleep 0.25
	done
	return 1
}

# fleet_now_ns: CLOCK_REALTIME in ns (the clock of fleet_watch.py and of unix_ns).
fleet_now_ns() { date +%s%N; }
