# shellcheck shell=bash
# The shift network-namespace rig: clients -> edge host -> switch (bridge) -> backends.
#
#   . tests/netns/lib.sh
#   rig_probe || rig_skip "$RIG_SKIP_REASON"
#   rig_up                       # builds everything, starts backends, sets the traps
#   rig_curl cli1 "http://$(rig_backend_addr blue1):8080/"
#   rig_down                     # optional: the EXIT trap does it too
#
# See tests/netns/README.md for the diagram, the addresses and every variable.
# Safe under `set -euo pipefail`; does not change the caller's shell options.
# Every function returns non-zero on failure and says why on stderr.

[ -n "${_RIG_LIB_LOADED:-}" ] && return 0
_RIG_LIB_LOADED=1

RIG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# --- knobs (set before rig_up) ------------------------------------------------
: "${RIG_CLIENTS:=2}"          # client namespaces cli1..cliN (1..99)
: "${RIG_BLUE:=2}"             # blue backends blue1..blueN (0..99)
: "${RIG_GREEN:=1}"            # green backends green1..greenN (0..99)
: "${RIG_BACKEND_PORT:=8080}"
: "${RIG_VIP:=198.18.100.10}"
: "${RIG_VIP6:=2001:db8:100::10}"
: "${RIG_VIP_PORT:=80}"
: "${RIG_QUEUES:=1}"           # rx/tx queues of the edge's veths (a multi-queue NIC: one per CPU)
: "${RIG_TX_CSUM_OFF:=1}"      # 1: checksums in software on every veth (full csums for XDP NAT)
: "${RIG_ATTACH:=xdp}"         # shiftd's attach = (auto | xdp | tc); auto/tc want RIG_TX_CSUM_OFF=0
: "${RIG_WAIT_TRIES:=100}"     # backend readiness: tries x 0.1 s
: "${RIG_KEEP:=0}"             # 1: keep $RIG_DIR (logs, config) after rig_down
: "${RIG_QUIET:=0}"
if [ -z "${RIG_PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then RIG_PYTHON=/usr/bin/python3; else RIG_PYTHON=python3; fi
fi
RIG_BACKEND_PY=$RIG_LIB_DIR/backend.py
RIG_CLIENT_PY=$RIG_LIB_DIR/client.py
export RIG_PYTHON RIG_BACKEND_PY RIG_CLIENT_PY

# --- internal state -------------------------------------------------------------
_RIG_STATE=down                # down | building | up
_RIG_NAMESPACES=()             # every netns this run made, in creation order
_RIG_SPAWNED=()                # "name pid starttime" of every process this rig started
_RIG_EXIT_HOOKS=()             # rig_on_exit commands, run last-in first-out
_RIG_BPFFS_MOUNTED=0
_RIG_PREV_EXIT_TRAP=""
declare -gA _RIG_BACKEND_PID=()

_rig_log() { [ "$RIG_QUIET" = 1 ] || echo "rig: $*" >&2; }
_rig_err() { echo "rig: error: $*" >&2; }

# Run a command; on failure print it with its output and return 1.
_rig_run() {
	local out
	if ! out=$("$@" 2>&1); then
		_rig_err "failed: $*"
		[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/rig:   /' >&2
		return 1
	fi
	[ -z "$out" ] || printf '%s\n' "$out"
}

_rig_is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# --- skipping -----------------------------------------------------------------

# rig_skip REASON: print "SKIP: REASON" and exit 77 (the "skipped" outcome of tests/run.sh).
rig_skip() {
	echo "SKIP: $*" >&2
	exit 77
}

# rig_probe: can this machine build a rig? 0 if yes; else 1 with RIG_SKIP_REASON set.
# Also sets RIG_HAVE_NFT and RIG_HAVE_ETHTOOL (1/0).
rig_probe() {
	local c ns="rigprobe$$"
	RIG_SKIP_REASON=""
	RIG_HAVE_NFT=0
	RIG_HAVE_ETHTOOL=0
	if [ "$(id -u)" != 0 ]; then
		RIG_SKIP_REASON="needs root"
		return 1
	fi
	for c in ip nsenter curl sysctl "$RIG_PYTHON"; do
		command -v "$c" >/dev/null 2>&1 || { RIG_SKIP_REASON="missing command: $c"; return 1; }
	done
	command -v nft >/dev/null 2>&1 && RIG_HAVE_NFT=1
	command -v ethtool >/dev/null 2>&1 && RIG_HAVE_ETHTOOL=1
	if ! ip netns add "$ns" 2>/dev/null; then
		RIG_SKIP_REASON="cannot create a network namespace (ip netns add)"
		return 1
	fi
	if ! ip -n "$ns" link add rp0 type veth peer name rp1 2>/dev/null; then
		RIG_SKIP_REASON="no veth support"
	elif ! ip -n "$ns" link add rpbr type bridge 2>/dev/null; then
		RIG_SKIP_REASON="no bridge support"
	elif ! ip -n "$ns" -6 addr add 2001:db8::1/64 dev rp0 nodad 2>/dev/null; then
		RIG_SKIP_REASON="no IPv6"
	elif [ "$RIG_HAVE_NFT" = 1 ] && ! nsenter --net="/run/netns/$ns" nft add table inet rigprobe 2>/dev/null; then
		RIG_HAVE_NFT=0 # nft present but the kernel lacks nf_tables: fall back to ip rule
	fi
	ip netns del "$ns" 2>/dev/null || true
	export RIG_HAVE_NFT RIG_HAVE_ETHTOOL
	[ -z "$RIG_SKIP_REASON" ]
}

# --- names and entering namespaces -------------------------------------------

# rig_ns NAME: the full netns name of edge | switch | cliN | blueN | greenN (or a full name).
rig_ns() {
	if [ -e "/run/netns/$1" ]; then
		printf '%s\n' "$1"
	elif [ -n "${RIG_ID:-}" ] && [ -e "/run/netns/$RIG_ID-$1" ]; then
		printf '%s\n' "$RIG_ID-$1"
	else
		_rig_err "no such namespace: $1"
		return 1
	fi
}

# rig_nsenter NS CMD...: run CMD in NS's network namespace only (host mount namespace,
# so bpffs pins under /sys/fs/bpf and $RIG_DIR stay visible). Use it for the edge host.
rig_nsenter() {
	local ns
	ns=$(rig_ns "$1") || return 1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# rig_exec NS CMD...: `ip netns exec` (private mount namespace, that netns's /sys).
rig_exec() {
	local ns
	ns=$(rig_ns "$1") || return 1
	shift
	ip netns exec "$ns" "$@"
}

# rig_edge CMD...: rig_nsenter edge CMD...
rig_edge() { rig_nsenter "${RIG_NS_EDGE:?no rig is up}" "$@"; }

# rig_curl NS CURL-ARGS...: curl -sS with a bounded time (RIG_CURL_TIMEOUT, 3 s) from NS.
rig_curl() {
	local ns=$1
	shift
	rig_nsenter "$ns" curl -sS --max-time "${RIG_CURL_TIMEOUT:-3}" "$@"
}

# rig_client_py NS ARGS...: run client.py in NS (prints its JSON).
rig_client_py() {
	local ns=$1
	shift
	rig_nsenter "$ns" "$RIG_PYTHON" "$RIG_CLIENT_PY" "$@"
}

# rig_json_get KEY[.KEY...]: read JSON on stdin, print one field (numbers, strings; {} as JSON).
rig_json_get() {
	"$RIG_PYTHON" -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"
}

# rig_svc_id_in NAME: the service's id in a `bpftool -j map dump` of shift_svc_info on
# stdin (a slot in use with that name); fails without one.
rig_svc_id_in() {
	"$RIG_PYTHON" -c '
import json, sys
for e in json.load(sys.stdin):
    v = e["formatted"]["value"]
    if v["name"] == sys.argv[1] and v["flags"] & 2:
        print(e["formatted"]["key"]); break
else:
    sys.exit(1)' "$1"
}

# rig_svc_id NAME: the service's id, from the edge's pinned shift_svc_info (bpftool).
rig_svc_id() {
	rig_edge bpftool -j map dump pinned "$RIG_BPFFS_DIR/maps/shift_svc_info" | rig_svc_id_in "$1"
}

# rig_le32 N: N as bpftool's four bytes, little-endian (the maps' u32 keys and values)
rig_le32() { printf '%d %d %d %d' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

# rig_weight_word NAME: the service's weight word in the edge's pinned shift_weights
# (basis points | 0x80000000 when latched), in decimal; "?" and 1 without the service.
rig_weight_word() {
	local id
	id=$(rig_svc_id "$1") || { echo "?"; return 1; }
	# shellcheck disable=SC2046 # four byte words
	rig_edge bpftool -j map lookup pinned "$RIG_BPFFS_DIR/maps/shift_weights" key $(rig_le32 "$id") |
		"$RIG_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["formatted"]["value"])'
}

# rig_weight_word_set NAME WORD: write the service's weight word in the edge's pinned
# shift_weights as shiftctl does (a test forcing an order shiftctl leaves to chance)
rig_weight_word_set() {
	local id
	id=$(rig_svc_id "$1") || return 1
	# shellcheck disable=SC2046 # four byte words
	rig_edge bpftool map update pinned "$RIG_BPFFS_DIR/maps/shift_weights" key $(rig_le32 "$id") \
		value $(rig_le32 "$2")
}

# rig_ctl_raw SOCKET LINE: one request on a shiftd's control socket, as shiftctl sends
# it (a test forcing an order shiftctl leaves to chance); the reply's first line (OK, or
# ERR CODE MESSAGE).
rig_ctl_raw() {
	"$RIG_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while b"\n" not in buf:
    b = s.recv(4096)
    if not b:
        break
    buf += b
print(buf.decode(errors="replace").split("\n")[0])' "$1" "$2"
}

# rig_wait TRIES DELAY CMD...: run CMD until it succeeds, at most TRIES times,
# sleeping DELAY seconds between tries. Returns CMD's last status.
rig_wait() {
	local tries=$1 delay=$2 i rc=1
	shift 2
	for ((i = 0; i < tries; i++)); do
		rc=0
		"$@" && return 0 || rc=$?
		((i + 1 < tries)) && sleep "$delay"
	done
	return "$rc"
}

# --- addresses ---------------------------------------------------------------

# rig_backend_addr NAME [4|6]: blueJ -> 198.19.0.(10+J) (J<=9) else 198.19.1.J;
# greenJ -> 198.19.0.(20+J) (J<=9) else 198.19.2.J; IPv6 likewise in 2001:db8:b::/64.
rig_backend_addr() {
	local name=$1 fam=${2:-4} pool j p
	case $name in
	blue[0-9]*) pool=1 j=${name#blue} ;;
	green[0-9]*) pool=2 j=${name#green} ;;
	*) _rig_err "not a backend name: $name"; return 1 ;;
	esac
	if ! _rig_is_uint "$j" || [ "$j" -lt 1 ] || [ "$j" -gt 99 ]; then
		_rig_err "not a backend name: $name"
		return 1
	fi
	if [ "$j" -le 9 ]; then
		if [ "$fam" = 6 ]; then p="2001:db8:b::$pool$j"; else p="198.19.0.$((pool * 10 + j))"; fi
	else
		if [ "$fam" = 6 ]; then p="2001:db8:b::$pool:$j"; else p="198.19.$pool.$j"; fi
	fi
	printf '%s\n' "$p"
}

# rig_pool blue|green [4|6]: "IP:PORT, IP:PORT" of the pool (IPv6 in brackets), for configs.
rig_pool() {
	local pool=$1 fam=${2:-4} n name a out="" j
	case $pool in blue) n=$RIG_BLUE ;; green) n=$RIG_GREEN ;; *) _rig_err "pool: $pool"; return 1 ;; esac
	for ((j = 1; j <= n; j++)); do
		name=$pool$j
		a=$(rig_backend_addr "$name" "$fam") || return 1
		[ "$fam" = 6 ] && a="[$a]"
		out+="${out:+, }$a:$RIG_BACKEND_PORT"
	done
	printf '%s\n' "$out"
}

_rig_set_names() {
	local i j
	if ! _rig_is_uint "$RIG_CLIENTS" || [ "$RIG_CLIENTS" -lt 1 ] || [ "$RIG_CLIENTS" -gt 99 ]; then
		_rig_err "RIG_CLIENTS must be 1..99 (got '$RIG_CLIENTS')"
		return 1
	fi
	if ! _rig_is_uint "$RIG_BLUE" || [ "$RIG_BLUE" -gt 99 ]; then
		_rig_err "RIG_BLUE must be 0..99 (got '$RIG_BLUE')"
		return 1
	fi
	if ! _rig_is_uint "$RIG_GREEN" || [ "$RIG_GREEN" -gt 99 ]; then
		_rig_err "RIG_GREEN must be 0..99 (got '$RIG_GREEN')"
		return 1
	fi
	if ! _rig_is_uint "$RIG_QUEUES" || [ "$RIG_QUEUES" -lt 1 ] || [ "$RIG_QUEUES" -gt 256 ]; then
		_rig_err "RIG_QUEUES must be 1..256 (got '$RIG_QUEUES')"
		return 1
	fi
	RIG_NS_EDGE=$RIG_ID-edge
	RIG_NS_SWITCH=$RIG_ID-switch
	RIG_EDGE_BACKEND_IF=${RIG_ID}bk
	RIG_EDGE_BACKEND_ADDR=198.19.0.1
	RIG_EDGE_BACKEND_ADDR6=2001:db8:b::1
	RIG_BACKEND_NET=198.19.0.0/16
	RIG_BACKEND_NET6=2001:db8:b::/64
	RIG_SWITCH_BRIDGE=${RIG_ID}br
	RIG_CLIENT_NAMES="" RIG_NS_CLIENTS="" RIG_EDGE_CLIENT_IFS="" RIG_CLIENT_IFS=""
	RIG_CLIENT_ADDRS="" RIG_CLIENT_ADDRS6="" RIG_EDGE_CLIENT_ADDRS="" RIG_EDGE_CLIENT_ADDRS6=""
	for ((i = 1; i <= RIG_CLIENTS; i++)); do
		RIG_CLIENT_NAMES+="${RIG_CLIENT_NAMES:+ }cli$i"
		RIG_NS_CLIENTS+="${RIG_NS_CLIENTS:+ }$RIG_ID-cli$i"
		RIG_EDGE_CLIENT_IFS+="${RIG_EDGE_CLIENT_IFS:+,}${RIG_ID}c$i"
		RIG_CLIENT_IFS+="${RIG_CLIENT_IFS:+ }${RIG_ID}e$i"
		RIG_CLIENT_ADDRS+="${RIG_CLIENT_ADDRS:+ }198.18.$i.2"
		RIG_CLIENT_ADDRS6+="${RIG_CLIENT_ADDRS6:+ }2001:db8:c$i::2"
		RIG_EDGE_CLIENT_ADDRS+="${RIG_EDGE_CLIENT_ADDRS:+ }198.18.$i.1"
		RIG_EDGE_CLIENT_ADDRS6+="${RIG_EDGE_CLIENT_ADDRS6:+ }2001:db8:c$i::1"
	done
	RIG_BLUE_NAMES="" RIG_GREEN_NAMES="" RIG_BLUE_ADDRS="" RIG_GREEN_ADDRS=""
	RIG_BLUE_ADDRS6="" RIG_GREEN_ADDRS6=""
	for ((j = 1; j <= RIG_BLUE; j++)); do
		RIG_BLUE_NAMES+="${RIG_BLUE_NAMES:+ }blue$j"
		RIG_BLUE_ADDRS+="${RIG_BLUE_ADDRS:+ }$(rig_backend_addr "blue$j" 4)"
		RIG_BLUE_ADDRS6+="${RIG_BLUE_ADDRS6:+ }$(rig_backend_addr "blue$j" 6)"
	done
	for ((j = 1; j <= RIG_GREEN; j++)); do
		RIG_GREEN_NAMES+="${RIG_GREEN_NAMES:+ }green$j"
		RIG_GREEN_ADDRS+="${RIG_GREEN_ADDRS:+ }$(rig_backend_addr "green$j" 4)"
		RIG_GREEN_ADDRS6+="${RIG_GREEN_ADDRS6:+ }$(rig_backend_addr "green$j" 6)"
	done
	RIG_BACKENDS="$RIG_BLUE_NAMES${RIG_BLUE_NAMES:+${RIG_GREEN_NAMES:+ }}$RIG_GREEN_NAMES"
	RIG_NS_BACKENDS=""
	for j in $RIG_BACKENDS; do RIG_NS_BACKENDS+="${RIG_NS_BACKENDS:+ }$RIG_ID-$j"; done
	RIG_URL="http://$RIG_VIP:$RIG_VIP_PORT/"
	RIG_URL6="http://[$RIG_VIP6]:$RIG_VIP_PORT/"
	export RIG_ID RIG_DIR RIG_NS_EDGE RIG_NS_SWITCH RIG_NS_CLIENTS RIG_NS_BACKENDS \
		RIG_EDGE_BACKEND_IF RIG_EDGE_BACKEND_ADDR RIG_EDGE_BACKEND_ADDR6 RIG_BACKEND_NET \
		RIG_BACKEND_NET6 RIG_SWITCH_BRIDGE RIG_CLIENT_NAMES RIG_EDGE_CLIENT_IFS RIG_CLIENT_IFS \
		RIG_CLIENT_ADDRS RIG_CLIENT_ADDRS6 RIG_EDGE_CLIENT_ADDRS RIG_EDGE_CLIENT_ADDRS6 \
		RIG_BLUE_NAMES RIG_GREEN_NAMES RIG_BACKENDS RIG_BLUE_ADDRS RIG_GREEN_ADDRS \
		RIG_BLUE_ADDRS6 RIG_GREEN_ADDRS6 RIG_URL RIG_URL6 RIG_VIP RIG_VIP6 RIG_VIP_PORT \
		RIG_BACKEND_PORT RIG_CLIENTS RIG_BLUE RIG_GREEN
}

# --- process bookkeeping ------------------------------------------------------

_rig_starttime() { # field 22 of /proc/PID/stat (stable for the life of the process)
	local s f
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	read -r -a f <<<"${s##*) }"
	printf '%s\n' "${f[19]}"
}

_rig_alive() { # PID STARTTIME: the very process we started is still there
	local st
	st=$(_rig_starttime "$1") || return 1
	[ "$st" = "$2" ]
}

# Stop one process we started: TERM, up to ~3 s, then KILL. Never by name.
_rig_stop_pid() {
	local pid=$1 st=$2 i
	_rig_alive "$pid" "$st" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		_rig_alive "$pid" "$st" || break
		sleep 0.1
	done
	if _rig_alive "$pid" "$st"; then
		_rig_log "pid $pid ignored SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# rig_spawn NS LOGFILE CMD...: start CMD in the background in NS (rig_nsenter), output to
# LOGFILE; sets RIG_LAST_PID. rig_down stops it (SIGTERM, then SIGKILL) before the
# backends. Call it directly, not in $(...), so the process stays this shell's child.
rig_spawn() {
	local ns log=$2 st
	ns=$(rig_ns "$1") || return 1
	shift 2
	nsenter --net="/run/netns/$ns" -- "$@" >"$log" 2>&1 </dev/null &
	RIG_LAST_PID=$!
	st=$(_rig_starttime "$RIG_LAST_PID") || st=gone
	_RIG_SPAWNED+=("$ns $RIG_LAST_PID $st")
	export RIG_LAST_PID
}

# rig_kill PID: stop a process started by rig_spawn (SIGTERM, bounded wait, SIGKILL).
rig_kill() {
	local e n p st
	for e in "${_RIG_SPAWNED[@]}"; do
		read -r n p st <<<"$e"
		if [ "$p" = "$1" ]; then
			_rig_stop_pid "$p" "$st"
			return 0
		fi
	done
	_rig_err "rig_kill: pid $1 was not started by the rig"
	return 1
}

# --- exit handling ------------------------------------------------------------

# rig_on_exit CMD: register a cleanup command (a string, eval'ed) run by rig_down
# before it stops the rig's processes and deletes the namespaces; last in, first out.
rig_on_exit() { _RIG_EXIT_HOOKS+=("$*"); }

_rig_trap_exit() {
	local rc=$?
	set +e
	rig_down
	if [ -n "$_RIG_PREV_EXIT_TRAP" ]; then
		eval "$_RIG_PREV_EXIT_TRAP"
	fi
	exit "$rc"
}

_rig_trap_signal() {
	set +e
	echo "rig: caught SIG$1, cleaning up" >&2
	rig_down
	trap - EXIT
	if [ -n "$_RIG_PREV_EXIT_TRAP" ]; then
		eval "$_RIG_PREV_EXIT_TRAP"
	fi
	[ "$1" = INT ] && exit 130
	exit 143
}

_rig_set_traps() {
	local prev
	prev=$(trap -p EXIT)
	case $prev in
	*_rig_trap_exit*) ;;
	"") _RIG_PREV_EXIT_TRAP="" ;;
	*) # keep a pre-existing EXIT trap: run it after rig_down
		# `trap -p` prints: trap -- 'CMD' EXIT (CMD quoted for reuse as shell input)
		local -a words
		eval "words=($prev)"
		_RIG_PREV_EXIT_TRAP=${words[2]}
		;;
	esac
	trap _rig_trap_exit EXIT
	trap '_rig_trap_signal INT' INT
	trap '_rig_trap_signal TERM' TERM
}

# --- up -----------------------------------------------------------------------

_rig_claim_id() {
	local cand i
	for ((i = 0; i < 50; i++)); do
		if [ "$i" = 0 ]; then cand="s$(($$ % 100000))"; else cand="s$(((RANDOM * 32768 + RANDOM) % 100000))"; fi
		# creating the edge namespace is the atomic claim of the id
		if ip netns add "$cand-edge" 2>/dev/null; then
			RIG_ID=$cand
			_RIG_NAMESPACES+=("$cand-edge")
			return 0
		fi
	done
	_rig_err "no free rig id after 50 tries"
	return 1
}

_rig_ns_add() { # NAME [extra sysctls...]
	local ns=$1
	shift
	if [ "$ns" != "$RIG_NS_EDGE" ]; then
		_rig_run ip netns add "$ns" || return 1
		_RIG_NAMESPACES+=("$ns")
	fi
	_rig_run nsenter --net="/run/netns/$ns" -- sysctl -qw \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv6.conf.default.accept_ra=0 "$@" >/dev/null
}

_rig_batch() { # NS: `ip -batch` from stdin in NS
	local ns=$1 out
	if ! out=$(ip -n "$ns" -batch - 2>&1); then
		_rig_err "ip -n $ns -batch failed:"
		printf '%s\n' "$out" | sed 's/^/rig:   /' >&2
		return 1
	fi
}

# The RIG_QUEUES queues of DEV (in NS): transmit queue q serves CPU q only (XPS),
# so a packet sent on CPU q arrives on the peer's rx queue q, whose NAPI runs on
# CPU q, as a NIC queue's interrupt does on its CPU. Without it the flow hash picks
# the queue and half the skbs cross to the other CPU's NAPI. (`ip netns exec`: the
# namespace's own /sys.)
_rig_xps() { # NS DEV...
	local ns=$1 d q n cmd=""
	shift
	n=$(nproc)
	for d in "$@"; do
		for ((q = 0; q < RIG_QUEUES; q++)); do
			cmd+="printf '%x' $((1 << (q % n))) >/sys/class/net/$d/queues/tx-$q/xps_cpus && "
		done
	done
	ip netns exec "$ns" sh -c "${cmd}true" 2>/dev/null ||
		_rig_log "warning: XPS of $* in $ns not set"
}

_rig_features() { # NS DEV...: GRO on (XDP_REDIRECT into a veth needs NAPI on its peer)
	local ns=$1 d
	shift
	[ "${RIG_HAVE_ETHTOOL:-1}" = 1 ] && command -v ethtool >/dev/null 2>&1 || return 0
	for d in "$@"; do
		nsenter --net="/run/netns/$ns" -- ethtool -K "$d" gro on >/dev/null 2>&1 ||
			_rig_log "warning: ethtool -K $d gro on failed in $ns"
		if [ "$RIG_TX_CSUM_OFF" = 1 ]; then
			nsenter --net="/run/netns/$ns" -- ethtool -K "$d" tx off >/dev/null 2>&1 ||
				_rig_log "warning: ethtool -K $d tx off failed in $ns"
		fi
	done
}

_rig_start_backend() { # NAME
	local name=$1 ns=$RIG_ID-$1 st
	[ -e "$RIG_DIR/mode/$name" ] || printf 'ok\n' >"$RIG_DIR/mode/$name"
	nsenter --net="/run/netns/$ns" -- "$RIG_PYTHON" "$RIG_BACKEND_PY" --name "$name" \
		--port "$RIG_BACKEND_PORT" --mode-file "$RIG_DIR/mode/$name" \
		>>"$RIG_DIR/log/$name.log" 2>&1 </dev/null &
	_RIG_BACKEND_PID[$name]=$!
	st=$(_rig_starttime "$!") || st=gone
	_RIG_SPAWNED+=("backend:$name $! $st")
}

_rig_backend_answers() { # NAME: /readyz answers (any HTTP status) on v4 and v6 from the edge
	local name=$1 a code
	for a in "$(rig_backend_addr "$name" 4)" "[$(rig_backend_addr "$name" 6)]"; do
		code=$(nsenter --net="/run/netns/$RIG_NS_EDGE" -- curl -s -o /dev/null -w '%{http_code}' \
			--max-time 1 "http://$a:$RIG_BACKEND_PORT/readyz" 2>/dev/null) || return 1
		[ "$code" != 000 ] || return 1
	done
}

_rig_wait_backends() { # NAME...: bounded wait until each answers
	local pending=("$@") silent i n e
	for ((i = 0; i < RIG_WAIT_TRIES; i++)); do
		silent=()
		for n in "${pending[@]}"; do
			_rig_backend_answers "$n" || silent+=("$n")
		done
		[ ${#silent[@]} -eq 0 ] && return 0
		for n in "${silent[@]}"; do
			e=${_RIG_BACKEND_PID[$n]:-}
			if [ -z "$e" ] || ! kill -0 "$e" 2>/dev/null; then
				_rig_err "backend $n exited; its log:"
				sed 's/^/rig:   /' "$RIG_DIR/log/$n.log" >&2 || true
				return 1
			fi
		done
		pending=("${silent[@]}")
		sleep 0.1
	done
	_rig_err "backends not answering after $RIG_WAIT_TRIES tries: ${pending[*]}"
	return 1
}

# rig_up: build the topology, start the backends, wait until they answer; sets the
# EXIT/INT/TERM traps that call rig_down. Knobs: RIG_CLIENTS RIG_BLUE RIG_GREEN RIG_ID ...
rig_up() {
	local t0=$SECONDS i n ns b c
	if [ "$_RIG_STATE" != down ]; then
		_rig_err "rig_up: a rig is already up in this shell ($RIG_ID)"
		return 1
	fi
	if [ "$(id -u)" != 0 ]; then
		_rig_err "rig_up: needs root"
		return 1
	fi
	_RIG_STATE=building
	_RIG_NAMESPACES=() _RIG_SPAWNED=() _RIG_EXIT_HOOKS=() _RIG_BACKEND_PID=()
	_rig_set_traps
	RIG_DIR=""
	_rig_claim_id || { _RIG_STATE=down; return 1; }
	_rig_set_names || return 1
	RIG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/shift-rig.$RIG_ID.XXXXXX") || return 1
	mkdir -p "$RIG_DIR/mode" "$RIG_DIR/log" "$RIG_DIR/state" "$RIG_DIR/textfile" \
		"$RIG_DIR/bpffs" || return 1
	RIG_STATE_DIR=$RIG_DIR/state
	RIG_TEXTFILE_DIR=$RIG_DIR/textfile
	RIG_CONTROL_SOCKET=$RIG_DIR/shiftd.sock
	# A private bpffs instance per run; else a per-run directory on the host's bpffs.
	if mount -t bpf bpf "$RIG_DIR/bpffs" 2>/dev/null; then
		_RIG_BPFFS_MOUNTED=1
		RIG_BPFFS_DIR=$RIG_DIR/bpffs
	else
		RIG_BPFFS_DIR=/sys/fs/bpf/shift-rig-$RIG_ID
	fi
	export RIG_DIR RIG_STATE_DIR RIG_TEXTFILE_DIR RIG_CONTROL_SOCKET RIG_BPFFS_DIR

	# namespaces (sysctls before any interface exists, so new interfaces inherit them)
	_rig_ns_add "$RIG_NS_EDGE" net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.default.send_redirects=0 || return 1
	_rig_ns_add "$RIG_NS_SWITCH" net.ipv6.conf.default.disable_ipv6=1 || return 1
	for ns in $RIG_NS_CLIENTS $RIG_NS_BACKENDS; do
		_rig_ns_add "$ns" || return 1
	done

	# edge: one veth per client, one towards the switch
	local q=""
	[ "$RIG_QUEUES" -gt 1 ] && q="numtxqueues $RIG_QUEUES numrxqueues $RIG_QUEUES"
	{
		echo "link set lo up"
		echo "link add $RIG_EDGE_BACKEND_IF $q type veth peer name ${RIG_ID}se $q netns $RIG_NS_SWITCH"
		echo "addr add $RIG_EDGE_BACKEND_ADDR/16 dev $RIG_EDGE_BACKEND_IF"
		echo "addr add $RIG_EDGE_BACKEND_ADDR6/64 dev $RIG_EDGE_BACKEND_IF nodad"
		echo "link set $RIG_EDGE_BACKEND_IF up"
		for ((i = 1; i <= RIG_CLIENTS; i++)); do
			echo "link add ${RIG_ID}c$i $q type veth peer name ${RIG_ID}e$i $q netns $RIG_ID-cli$i"
			echo "addr add 198.18.$i.1/24 dev ${RIG_ID}c$i"
			echo "addr add 2001:db8:c$i::1/64 dev ${RIG_ID}c$i nodad"
			echo "link set ${RIG_ID}c$i up"
		done
	} | _rig_batch "$RIG_NS_EDGE" || return 1
	_rig_run nsenter --net="/run/netns/$RIG_NS_EDGE" -- sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 >/dev/null || return 1

	# switch: a bridge with the edge and every backend
	{
		echo "link set lo up"
		echo "link add $RIG_SWITCH_BRIDGE type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
		echo "link set $RIG_SWITCH_BRIDGE up"
		echo "link set ${RIG_ID}se master $RIG_SWITCH_BRIDGE up"
		for b in $RIG_BACKENDS; do
			echo "link add ${RIG_ID}s$b type veth peer name $RIG_ID$b netns $RIG_ID-$b"
			echo "link set ${RIG_ID}s$b master $RIG_SWITCH_BRIDGE up"
		done
	} | _rig_batch "$RIG_NS_SWITCH" || return 1

	for ((i = 1; i <= RIG_CLIENTS; i++)); do
		printf '%s\n' "link set lo up" \
			"addr add 198.18.$i.2/24 dev ${RIG_ID}e$i" \
			"addr add 2001:db8:c$i::2/64 dev ${RIG_ID}e$i nodad" \
			"link set ${RIG_ID}e$i up" \
			"route add default via 198.18.$i.1" \
			"route add ::/0 via 2001:db8:c$i::1" | _rig_batch "$RIG_ID-cli$i" || return 1
	done
	for b in $RIG_BACKENDS; do
		printf '%s\n' "link set lo up" \
			"addr add $(rig_backend_addr "$b" 4)/16 dev $RIG_ID$b" \
			"addr add $(rig_backend_addr "$b" 6)/64 dev $RIG_ID$b nodad" \
			"link set $RIG_ID$b up" \
			"route add default via $RIG_EDGE_BACKEND_ADDR" \
			"route add ::/0 via $RIG_EDGE_BACKEND_ADDR6" | _rig_batch "$RIG_ID-$b" || return 1
	done

	# offloads on every veth end
	# shellcheck disable=SC2086 # word splitting of the interface lists is intended
	_rig_features "$RIG_NS_EDGE" "$RIG_EDGE_BACKEND_IF" ${RIG_EDGE_CLIENT_IFS//,/ }
	local sw_ifs=("${RIG_ID}se")
	for b in $RIG_BACKENDS; do sw_ifs+=("${RIG_ID}s$b"); done
	_rig_features "$RIG_NS_SWITCH" "${sw_ifs[@]}"
	for ((i = 1; i <= RIG_CLIENTS; i++)); do _rig_features "$RIG_ID-cli$i" "${RIG_ID}e$i"; done
	for b in $RIG_BACKENDS; do _rig_features "$RIG_ID-$b" "$RIG_ID$b"; done
	# the edge's veths, both ends, were made with RIG_QUEUES queues
	if [ "$RIG_QUEUES" -gt 1 ]; then
		# shellcheck disable=SC2086
		_rig_xps "$RIG_NS_EDGE" "$RIG_EDGE_BACKEND_IF" ${RIG_EDGE_CLIENT_IFS//,/ }
		_rig_xps "$RIG_NS_SWITCH" "${RIG_ID}se"
		for ((i = 1; i <= RIG_CLIENTS; i++)); do _rig_xps "$RIG_ID-cli$i" "${RIG_ID}e$i"; done
	fi

	# backends
	for b in $RIG_BACKENDS; do _rig_start_backend "$b"; done
	# shellcheck disable=SC2086
	[ -z "$RIG_BACKENDS" ] || _rig_wait_backends $RIG_BACKENDS || return 1

	_RIG_STATE=up
	c=$(echo "$RIG_BACKENDS" | wc -w)
	n=$((SECONDS - t0))
	_rig_log "up: id $RIG_ID, $RIG_CLIENTS client(s), $c backend(s), dir $RIG_DIR (${n}s)"
}

# --- down ---------------------------------------------------------------------

# rig_down: run the rig_on_exit hooks, stop every process the rig started (by pid),
# delete every namespace of this run, unmount the bpffs, remove $RIG_DIR. Idempotent.
rig_down() {
	local i e n p st ns pids
	[ "$_RIG_STATE" != down ] || return 0
	_RIG_STATE=down
	for ((i = ${#_RIG_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
		eval "${_RIG_EXIT_HOOKS[i]}" || _rig_log "exit hook failed: ${_RIG_EXIT_HOOKS[i]}"
	done
	_RIG_EXIT_HOOKS=()
	for ((i = ${#_RIG_SPAWNED[@]} - 1; i >= 0; i--)); do
		read -r n p st <<<"${_RIG_SPAWNED[i]}"
		[ "$st" = gone ] || _rig_stop_pid "$p" "$st"
	done
	_RIG_SPAWNED=()
	for ((i = ${#_RIG_NAMESPACES[@]} - 1; i >= 0; i--)); do
		ns=${_RIG_NAMESPACES[i]}
		[ -e "/run/netns/$ns" ] || continue
		pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
		[ -z "$pids" ] || _rig_log "warning: processes not started by the rig remain in $ns: $pids"
		ip netns del "$ns" 2>/dev/null || _rig_log "warning: cannot delete netns $ns"
	done
	_RIG_NAMESPACES=()
	if [ "$_RIG_BPFFS_MOUNTED" = 1 ]; then
		umount "$RIG_DIR/bpffs" 2>/dev/null || umount -l "$RIG_DIR/bpffs" 2>/dev/null ||
			_rig_log "warning: cannot unmount $RIG_DIR/bpffs"
		_RIG_BPFFS_MOUNTED=0
	elif [ -n "${RIG_BPFFS_DIR:-}" ] && [ "${RIG_BPFFS_DIR#/sys/fs/bpf/shift-rig-}" != "$RIG_BPFFS_DIR" ]; then
		rm -rf "$RIG_BPFFS_DIR" 2>/dev/null || true
	fi
	if [ -n "${RIG_DIR:-}" ] && [ -d "$RIG_DIR" ]; then
		if [ "$RIG_KEEP" = 1 ]; then
			_rig_log "kept $RIG_DIR"
		elif ! mountpoint -q "$RIG_DIR/bpffs" 2>/dev/null; then
			rm -rf "$RIG_DIR"
		fi
	fi
	_rig_log "down: $RIG_ID"
}

# --- backends at run time -------------------------------------------------------

_rig_check_backend() {
	case " $RIG_BACKENDS " in
	*" $1 "*) return 0 ;;
	*) _rig_err "no such backend: $1 (have: $RIG_BACKENDS)"; return 1 ;;
	esac
}

# rig_backend_mode NAME ok|500|rst|slow:MS|every:N|unready: takes effect from the next request.
rig_backend_mode() {
	local name=$1 mode=$2 f
	_rig_check_backend "$name" || return 1
	case $mode in
	ok | 500 | rst | abort | unready) ;;
	slow:*) _rig_is_uint "${mode#slow:}" || { _rig_err "bad mode: $mode"; return 1; } ;;
	every:*) _rig_is_uint "${mode#every:}" && [ "${mode#every:}" -ge 2 ] ||
		{ _rig_err "bad mode: $mode (every:N, N >= 2)"; return 1; } ;;
	*) _rig_err "bad mode: $mode (ok | 500 | rst | abort | slow:MS | every:N | unready)"; return 1 ;;
	esac
	f=$RIG_DIR/mode/$name
	printf '%s\n' "$mode" >"$f.tmp" && mv -f "$f.tmp" "$f" # rename: new inode, seen at once
}

# rig_backend_blackhole NAME on|off: drop inbound SYNs to the backend port in its
# namespace (nftables), so SYNs go unanswered. Without nft: an `ip rule` blackhole on
# replies from the backend port (then established connections go silent too).
rig_backend_blackhole() {
	local name=$1 how=$2 ns fam
	_rig_check_backend "$name" || return 1
	ns=$RIG_ID-$name
	case $how in on | off) ;; *) _rig_err "rig_backend_blackhole: on|off, not '$how'"; return 1 ;; esac
	if [ "${RIG_HAVE_NFT:-}" = "" ]; then
		if command -v nft >/dev/null 2>&1; then RIG_HAVE_NFT=1; else RIG_HAVE_NFT=0; fi
	fi
	if [ "$RIG_HAVE_NFT" = 1 ]; then
		if [ "$how" = on ]; then
			_rig_run nsenter --net="/run/netns/$ns" -- nft -f - <<-EOF || return 1
				table inet shift_rig
				delete table inet shift_rig
				table inet shift_rig {
					chain input {
						type filter hook input priority -10; policy accept;
						tcp dport $RIG_BACKEND_PORT tcp flags & (syn | ack) == syn counter drop
					}
				}
			EOF
		else
			nsenter --net="/run/netns/$ns" -- nft delete table inet shift_rig 2>/dev/null || true
		fi
	else
		for fam in -4 -6; do
			ip -n "$ns" "$fam" rule del pref 100 ipproto tcp sport "$RIG_BACKEND_PORT" \
				blackhole 2>/dev/null || true
			if [ "$how" = on ]; then
				_rig_run ip -n "$ns" "$fam" rule add pref 100 ipproto tcp \
					sport "$RIG_BACKEND_PORT" blackhole || return 1
			fi
		done
	fi
}

# rig_backend_stop NAME: stop its backend.py (clients then get a RST: connection refused).
rig_backend_stop() {
	local name=$1 i n p st found=0
	_rig_check_backend "$name" || return 1
	for ((i = 0; i < ${#_RIG_SPAWNED[@]}; i++)); do
		read -r n p st <<<"${_RIG_SPAWNED[i]}"
		if [ "$n" = "backend:$name" ]; then
			found=1
			[ "$st" = gone ] || _rig_stop_pid "$p" "$st"
			_RIG_SPAWNED[i]="backend:$name $p gone"
		fi
	done
	_RIG_BACKEND_PID[$name]=""
	if [ "$found" = 0 ]; then
		_rig_err "rig_backend_stop: $name was not started by this shell's rig_up"
		return 1
	fi
}

# rig_backend_start NAME: start its backend.py again (after rig_backend_stop) and wait.
rig_backend_start() {
	local name=$1
	_rig_check_backend "$name" || return 1
	if [ -n "${_RIG_BACKEND_PID[$name]:-}" ] && kill -0 "${_RIG_BACKEND_PID[$name]}" 2>/dev/null; then
		return 0
	fi
	_rig_start_backend "$name"
	_rig_wait_backends "$name"
}

_rig_mac() { ip -n "$1" -br link show dev "$2" | awk '{print $3}'; }

# rig_neigh_permanent: permanent neighbour entries on the edge for every client and
# backend (and for the edge in them), so no packet ever waits on ARP/ND.
rig_neigh_permanent() {
	local i b mac emac
	emac=$(_rig_mac "$RIG_NS_EDGE" "$RIG_EDGE_BACKEND_IF") || return 1
	for b in $RIG_BACKENDS; do
		mac=$(_rig_mac "$RIG_ID-$b" "$RIG_ID$b") || return 1
		printf '%s\n' \
			"neigh replace $(rig_backend_addr "$b" 4) lladdr $mac dev $RIG_EDGE_BACKEND_IF nud permanent" \
			"neigh replace $(rig_backend_addr "$b" 6) lladdr $mac dev $RIG_EDGE_BACKEND_IF nud permanent" |
			_rig_batch "$RIG_NS_EDGE" || return 1
		printf '%s\n' \
			"neigh replace $RIG_EDGE_BACKEND_ADDR lladdr $emac dev $RIG_ID$b nud permanent" \
			"neigh replace $RIG_EDGE_BACKEND_ADDR6 lladdr $emac dev $RIG_ID$b nud permanent" |
			_rig_batch "$RIG_ID-$b" || return 1
	done
	for ((i = 1; i <= RIG_CLIENTS; i++)); do
		mac=$(_rig_mac "$RIG_ID-cli$i" "${RIG_ID}e$i") || return 1
		emac=$(_rig_mac "$RIG_NS_EDGE" "${RIG_ID}c$i") || return 1
		printf '%s\n' \
			"neigh replace 198.18.$i.2 lladdr $mac dev ${RIG_ID}c$i nud permanent" \
			"neigh replace 2001:db8:c$i::2 lladdr $mac dev ${RIG_ID}c$i nud permanent" |
			_rig_batch "$RIG_NS_EDGE" || return 1
		printf '%s\n' \
			"neigh replace 198.18.$i.1 lladdr $emac dev ${RIG_ID}e$i nud permanent" \
			"neigh replace 2001:db8:c$i::1 lladdr $emac dev ${RIG_ID}e$i nud permanent" |
			_rig_batch "$RIG_ID-cli$i" || return 1
	done
}

# --- shiftd configuration ---------------------------------------------------------

_rig_kv() { # PREFIX KEY VALUE: set/replace (empty: remove) in the caller's PREFIXk/PREFIXv arrays
	local -n _rk=${1}k _rv=${1}v
	local x
	for x in "${!_rk[@]}"; do
		if [ "${_rk[x]}" = "$2" ]; then
			if [ -z "$3" ]; then unset '_rk[x]' '_rv[x]'; else _rv[x]=$3; fi
			return 0
		fi
	done
	[ -z "$3" ] || { _rk+=("$2"); _rv+=("$3"); }
}

# rig_write_config PATH [KEY=VALUE | SERVICE.KEY=VALUE ...]: write a shiftd.conf for
# this rig and set RIG_CONFIG=PATH. KEY=VALUE goes to [global], SERVICE.KEY=VALUE to
# [service SERVICE]; a given key replaces the default one, an empty value removes it.
# Variables: RIG_SVC (web) RIG_SVC_VIP RIG_SVC_BLUE RIG_SVC_GREEN,
#            RIG_SVC6 (web6; empty: no IPv6 service) RIG_SVC6_VIP RIG_SVC6_BLUE RIG_SVC6_GREEN,
#            RIG_CONFIG_EXTRA (raw text appended, e.g. more [service] sections).
rig_write_config() {
	local path=$1 arg key val sec s4=${RIG_SVC-web} s6=${RIG_SVC6-web6} tmp
	shift || { _rig_err "rig_write_config PATH [KEY=VALUE...]"; return 1; }
	local -a gk=() gv=() ak=() av=() bk=() bv=()
	_rig_kv g interface "$RIG_EDGE_CLIENT_IFS"
	_rig_kv g backend_interface "$RIG_EDGE_BACKEND_IF"
	_rig_kv g attach "$RIG_ATTACH"
	_rig_kv g bpffs_dir "$RIG_BPFFS_DIR"
	_rig_kv g state_dir "$RIG_STATE_DIR"
	_rig_kv g textfile_dir "$RIG_TEXTFILE_DIR"
	_rig_kv g control_socket "$RIG_CONTROL_SOCKET"
	_rig_kv a vip "${RIG_SVC_VIP:-$RIG_VIP:$RIG_VIP_PORT}"
	_rig_kv a protocol tcp
	_rig_kv a blue "${RIG_SVC_BLUE-$(rig_pool blue 4)}"
	_rig_kv a green "${RIG_SVC_GREEN-$(rig_pool green 4)}"
	_rig_kv b vip "${RIG_SVC6_VIP:-[$RIG_VIP6]:$RIG_VIP_PORT}"
	_rig_kv b protocol tcp
	_rig_kv b blue "${RIG_SVC6_BLUE-$(rig_pool blue 6)}"
	_rig_kv b green "${RIG_SVC6_GREEN-$(rig_pool green 6)}"
	for arg in "$@"; do
		case $arg in *=*) ;; *) _rig_err "rig_write_config: not KEY=VALUE: $arg"; return 1 ;; esac
		key=${arg%%=*} val=${arg#*=}
		if [ "${key#*.}" != "$key" ]; then
			sec=${key%%.*} key=${key#*.}
			if [ -n "$s4" ] && [ "$sec" = "$s4" ]; then
				_rig_kv a "$key" "$val"
			elif [ -n "$s6" ] && [ "$sec" = "$s6" ]; then
				_rig_kv b "$key" "$val"
			else
				_rig_err "rig_write_config: no service '$sec' (have: $s4 $s6)"
				return 1
			fi
		else
			_rig_kv g "$key" "$val"
		fi
	done
	tmp=$path.tmp.$$
	{
		echo "; written by tests/netns/lib.sh for rig $RIG_ID"
		echo "[global]"
		for arg in "${!gk[@]}"; do echo "${gk[arg]} = ${gv[arg]}"; done
		if [ -n "$s4" ]; then
			echo
			echo "[service $s4]"
			for arg in "${!ak[@]}"; do echo "${ak[arg]} = ${av[arg]}"; done
		fi
		if [ -n "$s6" ]; then
			echo
			echo "[service $s6]"
			for arg in "${!bk[@]}"; do echo "${bk[arg]} = ${bv[arg]}"; done
		fi
		if [ -n "${RIG_CONFIG_EXTRA:-}" ]; then
			echo
			printf '%s\n' "$RIG_CONFIG_EXTRA"
		fi
	} >"$tmp" || { rm -f "$tmp"; return 1; }
	mv -f "$tmp" "$path" || return 1
	RIG_CONFIG=$path
	export RIG_CONFIG
}

# rig_env: print every RIG_* variable (for logs and demos).
rig_env() { declare -p | sed -n 's/^declare -x \(RIG_[A-Z0-9_]*=\)/\1/p'; }
