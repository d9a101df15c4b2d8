#!/bin/bash
# bench/peers.sh — shift against what a user would pick instead, on one namespace rig
# (tests/netns/lib.sh: clients -> edge host -> switch -> backends), in one run:
#
#   pktrate   packets/s through the edge host (bench/pktgen: AF_PACKET senders in cli1,
#             an XDP counter on the switch port facing the edge): SYNs of new flows and
#             packets of established flows, for
#               plain  kernel forwarding only, the sender splits 45/45/10 itself
#               nft    nftables DNAT: jhash(ip saddr . tcp sport) mod 10000 -> map
#               shift     shiftd, attach = xdp (native XDP on the veth)
#               shift-tc  shiftd, attach = tc (what attach = auto picks on a veth)
#               before, before-tc  with BENCH_BEFORE=REV: REV's shiftd, XDP and TC
#   http      wrk from cli1, keep-alive and "Connection: close": requests/s, p50/p99,
#             through nft, haproxy, nginx (proxies on the VIP in the edge namespace),
#             shift and shift-tc (and before, before-tc); nginx static backends in the
#             backend namespaces
#   reaction  green starts answering 500 under a steady load of new connections
#             (client.py rate from cli2): requests that still reached green after its
#             first 500, and the time from that 500 to the last one, for haproxy
#             (observe layer7 + error-limit + health checks every 100 ms),
#             haproxy50 (the same, checks every 50 ms), nginx (max_fails) and shift
#             (consecutive errors + error rate + health checks every 50 ms), in
#             BENCH_REACT_ROUNDS rounds, the systems taking turns in each round
#   live      the datapath's cost per packet in a live stream of established packets,
#             by the kernel's own clock (bench/progcost: BPF run-time statistics): shift's
#             client program, XDP and TC, at BENCH_LIVE_FLOWS flows, and the floor of
#             each hook (XDP_PASS, TC_ACT_UNSPEC) on the same veth and stream
#   flood     issue 14's experiment, for each shift system: idle keep-alive connections,
#             green's weight moved, >= 1M spoofed SYNs: connections broken, table
#             entries before and after, new connections after
#   flows1m   1.1M whole handshakes through shiftd, from two CPUs, then from one:
#             entries in its table, maps' memlock
#   agent     shiftd's CPU per sample at 100k and 1M samples/s (bench/bench_agent)
#
# Weights everywhere: blue1 45 %, blue2 45 %, green1 10 %.
# Results: $OUT/peers/*.jsonl (one record per run), summarised by bench/summary.sh.
# Knobs: BENCH_ROUNDS (3) BENCH_HTTP_ROUNDS (2) BENCH_PKT_SECONDS (3)
#        BENCH_HTTP_SECONDS (15) BENCH_HTTP_CONNS (64) BENCH_QUEUES (one per CPU: the
#        edge's veth queues) BENCH_REACT_RATE (500) BENCH_REACT_WINDOW (12)
#        BENCH_REACT_ROUNDS (3) BENCH_REACT_SYSTEMS ("haproxy haproxy50 nginx shift")
#        BENCH_FIFO (0) BENCH_AGENT_SECONDS (5) BENCH_FLOOD_CONNS (30)
#        BENCH_FLOOD_SECONDS (2) BENCH_LIVE_FLOWS ("1024 100000 1000000")
#        BENCH_SECTIONS (all of "pktrate live flood flows1m http reaction agent"),
#        BENCH_BEFORE (unset: a revision whose shiftd runs in pktrate, flood and http
#        beside this tree's, built in $OUTPUT/before; the "before" of a change,
#        measured in the same run), OUTPUT (.output).
# A run replaces the results of the sections it runs only (make bench-health runs
# the reaction section alone).
# Needs root. Every process it starts is stopped by pid; the rig's traps delete the
# namespaces. No packet leaves the namespaces it creates.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
OUTPUT=${OUTPUT:-.output}
case $OUTPUT in /*) ;; *) OUTPUT=$ROOT/$OUTPUT ;; esac
OUT=$OUTPUT/bench
RES=$OUT/peers
SHIFTD=$OUTPUT/shiftd
SHIFTCTL=$OUTPUT/shiftctl
PKTGEN=$OUTPUT/bench/pktgen
AGENT=$OUTPUT/bench/bench_agent
PROGCOST=$OUTPUT/bench/progcost

: "${BENCH_ROUNDS:=3}"
: "${BENCH_HTTP_ROUNDS:=2}"
: "${BENCH_PKT_SECONDS:=3}"
: "${BENCH_HTTP_SECONDS:=15}" # 5 s runs swung by ±15 % on a noisy host, 15 s ones less (§7zc)
: "${BENCH_HTTP_CONNS:=64}"
: "${BENCH_REACT_RATE:=500}"
: "${BENCH_REACT_WINDOW:=12}"
: "${BENCH_REACT_ROUNDS:=3}"
: "${BENCH_QUEUES:=$(nproc)}"
# 1: the backends and the system under test (shiftd, HAProxy, nginx) run SCHED_FIFO.
# The backends stand for hosts of their own and shiftd's unit runs it SCHED_FIFO; on a
# shared 2-core box at load 8-10 (other jobs) a backend starved of CPU for 40 ms fails
# a 40 ms check, and both shift and HAProxy then take green (or blue) out before the
# fault: a false result either way. make bench-health sets it; default off.
: "${BENCH_FIFO:=0}"
FIFO=()
[ "$BENCH_FIFO" = 1 ] && FIFO=(chrt -f 10)
: "${BENCH_REACT_SYSTEMS:=haproxy haproxy50 nginx shift}"
: "${BENCH_AGENT_SECONDS:=5}"
: "${BENCH_SECTIONS:=pktrate live flood flows1m http reaction agent}"
: "${BENCH_BEFORE:=}"
: "${BENCH_FLOOD_CONNS:=30}"
: "${BENCH_FLOOD_SECONDS:=2}"
: "${BENCH_LIVE_FLOWS:=1024 100000 1000000}"
BK_PORT=8081 # nginx backends (the rig's backend.py keeps 8080)
W_BLUE=45 W_GREEN=10

T0=$SECONDS
say() { printf 'bench: [%3ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { say "error: $*"; exit 1; }
want() { case " $BENCH_SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

[ "$(id -u)" = 0 ] || die "needs root"
for f in "$SHIFTD" "$SHIFTCTL" "$PKTGEN" "$AGENT" "$PROGCOST"; do
	[ -x "$f" ] || die "$f is not built (make bench builds it)"
done
"$HERE/deps.sh" || die "cannot install wrk/haproxy/nginx/nftables"
for c in wrk haproxy nginx nft; do command -v "$c" >/dev/null || die "missing $c"; done

# BENCH_BEFORE: that revision's shiftd and shiftctl, built once per revision in a
# worktree of its own (kept for the next run; `git worktree prune` forgets it once
# $OUTPUT/before is removed). Only the agent and its datapath come from there:
# the rig, the generator and the counting are this tree's, so the two differ by
# nothing else.
BEFORE_SHIFTD="" BEFORE_SHIFTCTL="" BEFORE_REV=""
before_build() {
	local wt log
	BEFORE_REV=$(git -C "$ROOT" rev-parse --verify --quiet "$BENCH_BEFORE^{commit}") ||
		die "BENCH_BEFORE '$BENCH_BEFORE' is not a commit of this repository"
	wt=$OUTPUT/before/${BEFORE_REV:0:12}
	log=$OUTPUT/before/${BEFORE_REV:0:12}.build.log
	if [ ! -x "$wt/.output/shiftd" ] || [ ! -x "$wt/.output/shiftctl" ]; then
		say "building shiftd at $BENCH_BEFORE (${BEFORE_REV:0:12}) in $wt"
		mkdir -p "$OUTPUT/before" || die "cannot create $OUTPUT/before"
		git -C "$ROOT" worktree remove --force "$wt" >/dev/null 2>&1 || true
		rm -rf "$wt"
		git -C "$ROOT" worktree prune
		git -C "$ROOT" worktree add --detach --force "$wt" "$BEFORE_REV" >"$log" 2>&1 ||
			die "git worktree add $wt failed: $(tail -3 "$log")"
		# Its own .output: make's environment names this tree's.
		if ! env -u OUTPUT make -C "$wt" -j"$(nproc)" OUTPUT=.output .output/shiftd \
			.output/shiftctl >>"$log" 2>&1 || [ ! -x "$wt/.output/shiftd" ] ||
			[ ! -x "$wt/.output/shiftctl" ]; then
			die "building shiftd at ${BEFORE_REV:0:12} failed: $(tail -5 "$log")"
		fi
	fi
	BEFORE_SHIFTD=$wt/.output/shiftd BEFORE_SHIFTCTL=$wt/.output/shiftctl
}
[ -n "$BENCH_BEFORE" ] && before_build
# The shift systems of the pktrate, flood and http sections.
SHIFT_SYSTEMS="shift shift-tc"
[ -n "$BENCH_BEFORE" ] && SHIFT_SYSTEMS="shift shift-tc before before-tc"
is_shift() { case $1 in shift | shift-tc | before | before-tc) return 0 ;; *) return 1 ;; esac; }
# The systems of round ROUND in the order they run: as given in odd rounds, reversed
# in even ones. A round takes minutes and this host drifts over them; with one fixed
# order, the system that always ran first would meet a different host than the one
# that always ran last, and their ratio would carry the drift. Reversed every other
# round, a pair's drift cancels over two rounds.
round_order() { # ROUND SYSTEM...
	local r=$1 i
	shift
	local -a s=("$@")
	if ((r % 2)); then
		echo "${s[@]}"
	else
		for ((i = ${#s[@]} - 1; i >= 0; i--)); do printf '%s ' "${s[i]}"; done
		echo
	fi
}

mkdir -p "$RES"
rm -f "$RES"/meta.jsonl "$RES"/meta_end.jsonl
for _s in $BENCH_SECTIONS; do
	rm -f "$RES/$_s".jsonl "$RES/$_s"_*.jsonl
	[ "$_s" = pktrate ] && rm -f "$RES"/pktgen_check.jsonl
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=65536
PROXY_CONNS=$((NOFILE / 2 - 100)) # a proxied connection takes two descriptors
[ "$PROXY_CONNS" -gt 30000 ] && PROXY_CONNS=30000

# --- the rig --------------------------------------------------------------------
# shellcheck disable=SC2034 # read by tests/netns/lib.sh
RIG_QUIET=1
# A VIP of its own (as the e2e tests do: other rigs may run at the same time).
_v=$((20 + RANDOM % 200))
RIG_VIP=198.18.100.$_v
# shellcheck disable=SC2034 # read by tests/netns/lib.sh
RIG_CLIENTS=2 RIG_BLUE=2 RIG_GREEN=1
# The edge's veths with one rx/tx queue per CPU, as an edge host's NIC has (RSS): each
# queue's NAPI runs on its own CPU, XDP and the kernel's forwarding alike. A veth has
# one queue unless told: every packet then went through one NAPI instance, one CPU at
# a time, whichever system forwarded it.
# shellcheck disable=SC2034 # read by tests/netns/lib.sh
RIG_QUEUES=$BENCH_QUEUES
# shellcheck source=../tests/netns/lib.sh
. "$ROOT/tests/netns/lib.sh"
rig_probe || die "cannot build the rig: $RIG_SKIP_REASON"
[ "$RIG_HAVE_NFT" = 1 ] || die "nftables unusable here"
rig_up || die "rig_up failed"
rig_neigh_permanent || die "neighbours"
VIP=$RIG_VIP
B1=$(rig_backend_addr blue1) B2=$(rig_backend_addr blue2) G1=$(rig_backend_addr green1)
EDGE_C1_MAC=$(ip -n "$RIG_NS_EDGE" -br link show dev "${RIG_ID}c1" | awk '{print $3}')
NGX=$RIG_DIR/nginx
mkdir -p "$NGX"
STATE_N=0

for ns in cli1 cli2 edge; do
	rig_nsenter "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" \
		net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192
done
for b in $RIG_BACKENDS; do
	rig_nsenter "$b" sysctl -qw net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192
done

load1() { cut -d' ' -f1 /proc/loadavg; }

# rec FILE JSON KEY=VALUE...: append JSON with the keys added (numbers stay numbers).
rec() {
	local file=$1 json=$2
	shift 2
	"$RIG_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1]) if sys.argv[1].strip() else {}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    try:
        v = json.loads(v)
    except ValueError:
        pass
    d[k] = v
print(json.dumps(d, sort_keys=True))' "$json" "$@" >>"$RES/$file.jsonl"
}

# --- nginx backends (static, each answers with its name; green can be made to fail) --
nginx_temp_paths() { # DIR
	local d=$1
	mkdir -p "$d/tmp"
	printf '  client_body_temp_path %s/tmp/body;\n  proxy_temp_path %s/tmp/proxy;\n' "$d" "$d"
	printf '  fastcgi_temp_path %s/tmp/fcgi;\n  uwsgi_temp_path %s/tmp/uwsgi;\n' "$d" "$d"
	printf '  scgi_temp_path %s/tmp/scgi;\n' "$d"
}

backend_up() { # NAME
	local n=$1 d=$NGX/$1 log="access_log off;"
	mkdir -p "$d"
	# green's access log: which requests reached it, when (the reaction section)
	[ "$n" = green1 ] && log="access_log $d/access.log bench;"
	cat >"$d/nginx.conf" <<-EOF
		worker_processes 1;
		daemon off;
		user root;
		pid $d/nginx.pid;
		error_log $d/error.log warn;
		events { worker_connections 16384; multi_accept on; }
		http {
		$(nginx_temp_paths "$d")
		  log_format bench '\$msec \$status \$remote_addr \$remote_port \$uri';
		  $log
		  keepalive_requests 1000000;
		  keepalive_timeout 60s;
		  server {
		    listen $BK_PORT reuseport backlog=8192;
		    default_type text/plain;
		    location / {
		      if (-f $d/fail) {
		        add_header X-Backend $n always;
		        return 500 "$n failing\n";
		      }
		      add_header X-Backend $n always;
		      return 200 "$n\n";
		    }
		  }
		}
	EOF
	rig_spawn "$n" "$d/stdout.log" "${FIFO[@]}" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
}

backend_ready() { # NAME
	local code
	code=$(rig_edge curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
		"http://$(rig_backend_addr "$1"):$BK_PORT/readyz" 2>/dev/null) || return 1
	[ "$code" = 200 ]
}

for b in $RIG_BACKENDS; do backend_up "$b"; done
for b in $RIG_BACKENDS; do
	rig_wait 50 0.1 backend_ready "$b" || die "nginx backend $b does not answer ($(cat "$NGX/$b/error.log" 2>/dev/null))"
done
say "rig $RIG_ID up: VIP $VIP, backends $B1 $B2 (blue) $G1 (green) :$BK_PORT, load $(load1)"

# --- the systems under test -------------------------------------------------------
SYS_PID=""

vip_local() { # on|off: the VIP as a local address of the edge (for the proxies)
	if [ "$1" = on ]; then
		ip -n "$RIG_NS_EDGE" addr add "$VIP/32" dev lo
	else
		ip -n "$RIG_NS_EDGE" addr del "$VIP/32" dev lo 2>/dev/null || true
	fi
}

nft_up() {
	rig_edge nft -f - <<-EOF
		table ip bench_split {
		  chain prerouting {
		    type nat hook prerouting priority dstnat; policy accept;
		    ip daddr $VIP tcp dport 80 dnat ip to jhash ip saddr . tcp sport mod 10000 map { 0-999 : $G1 . $BK_PORT, 1000-5499 : $B1 . $BK_PORT, 5500-9999 : $B2 . $BK_PORT }
		  }
		}
	EOF
}

nft_down() {
	rig_edge nft delete table ip bench_split 2>/dev/null || true
	rig_edge "$PKTGEN" --ct-flush "$RIG_NS_EDGE" || true
}

haproxy_up() { # throughput|reaction [CHECK_INTERVAL_MS]
	local d=$RIG_DIR/haproxy srv iv=${2:-100}
	mkdir -p "$d"
	if [ "$1" = reaction ]; then
		srv="check inter ${iv}ms fastinter ${iv}ms downinter 1s fall 1 rise 2 observe layer7 error-limit 5 on-error mark-down"
	else
		srv="check inter 2s"
	fi
	cat >"$d/haproxy.cfg" <<-EOF
		global
		    nbthread 2
		    maxconn $PROXY_CONNS
		defaults
		    mode http
		    maxconn $PROXY_CONNS
		    timeout connect 2s
		    timeout client 30s
		    timeout server 30s
		    timeout http-keep-alive 30s
		frontend fe
		    bind $VIP:80
		    default_backend be
		backend be
		    balance roundrobin
		    option httpchk GET /readyz
		    http-check expect status 200
		    default-server $srv
		    server blue1 $B1:$BK_PORT weight $W_BLUE
		    server blue2 $B2:$BK_PORT weight $W_BLUE
		    server green1 $G1:$BK_PORT weight $W_GREEN
	EOF
	vip_local on
	rig_spawn edge "$d/haproxy.log" "${FIFO[@]}" haproxy -db -f "$d/haproxy.cfg"
	SYS_PID=$RIG_LAST_PID
}

nginx_proxy_up() { # throughput|reaction
	local d=$RIG_DIR/nginx-proxy fails="" nu="error timeout"
	mkdir -p "$d"
	# nginx's only automatic mechanism (open source: passive): max_fails within
	# fail_timeout, counting what proxy_next_upstream names (a 500 only with http_500,
	# which also retries the request on another server).
	if [ "$1" = reaction ]; then
		fails=" max_fails=5 fail_timeout=10s"
		nu="error timeout http_500"
	fi
	cat >"$d/nginx.conf" <<-EOF
		worker_processes 2;
		daemon off;
		user root;
		worker_rlimit_nofile $NOFILE;
		pid $d/nginx.pid;
		error_log $d/error.log warn;
		events { worker_connections $PROXY_CONNS; multi_accept on; }
		http {
		$(nginx_temp_paths "$d")
		  access_log off;
		  upstream be {
		    server $B1:$BK_PORT weight=$W_BLUE$fails;
		    server $B2:$BK_PORT weight=$W_BLUE$fails;
		    server $G1:$BK_PORT weight=$W_GREEN$fails;
		    keepalive 64;
		  }
		  server {
		    listen $VIP:80 reuseport backlog=8192;
		    location / {
		      proxy_pass http://be;
		      proxy_http_version 1.1;
		      proxy_set_header Connection "";
		      proxy_next_upstream $nu;
		    }
		  }
		}
	EOF
	vip_local on
	rig_spawn edge "$d/stdout.log" "${FIFO[@]}" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
	SYS_PID=$RIG_LAST_PID
}

# The shiftd and shiftctl of the running system: this tree's, or BENCH_BEFORE's.
SYS_SHIFTD=$SHIFTD SYS_SHIFTCTL=$SHIFTCTL
shift_up() { # throughput|reaction [ATTACH]
	local extra=() attach=${2:-xdp}
	STATE_N=$((STATE_N + 1))
	mkdir -p "$RIG_DIR/state.$STATE_N"
	# Health checks on per-backend timers: every 50 ms, 40 ms timeout, fall 1 (as
	# HAProxy's below). nginx answers a check in ~1 ms here.
	[ "$1" = reaction ] && extra=(web.health_interval=50ms web.health_timeout=40ms web.health_fall=1)
	RIG_SVC6='' RIG_SVC_BLUE="$B1:$BK_PORT, $B2:$BK_PORT" RIG_SVC_GREEN="$G1:$BK_PORT" \
		RIG_ATTACH=$attach rig_write_config "$RIG_DIR/shiftd.conf" xdp_mode=auto state_dir="$RIG_DIR/state.$STATE_N" \
		web.green_weight=10% web.health_check=http:/readyz web.max_consecutive_errors=5 \
		web.max_error_rate=5% web.rollback_evict=yes "${extra[@]}"
	rig_spawn edge "$RIG_DIR/shiftd.$STATE_N.log" "${FIFO[@]}" "$SYS_SHIFTD" --config "$RIG_CONFIG"
	SYS_PID=$RIG_LAST_PID
	local i j
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SYS_PID" 2>/dev/null || die "shiftd exited: $(tail -5 "$RIG_DIR/shiftd.$STATE_N.log")"
		j=$(rig_edge "$SYS_SHIFTCTL" -c "$RIG_CONFIG" status --json 2>/dev/null) &&
			[ "$(rig_json_get agent_running <<<"$j")" = True ] && return 0
		sleep 0.1
	done
	die "shiftd not ready after 10 s"
}

shift_status() { rig_edge "$SYS_SHIFTCTL" -c "$RIG_CONFIG" status --json 2>/dev/null || echo '{}'; }

shift_down() {
	rig_kill "$SYS_PID" || true
	rig_edge "$SYS_SHIFTD" --detach --config "$RIG_CONFIG" >/dev/null 2>&1 ||
		say "warning: shiftd --detach failed"
}

proxy_ready() { # the VIP answers 200
	local code
	code=$(rig_nsenter cli1 curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$VIP/") ||
		return 1
	[ "$code" = 200 ]
}

sys_up() { # SYSTEM throughput|reaction
	SYS_SHIFTD=$SHIFTD SYS_SHIFTCTL=$SHIFTCTL
	case $1 in before | before-tc) SYS_SHIFTD=$BEFORE_SHIFTD SYS_SHIFTCTL=$BEFORE_SHIFTCTL ;; esac
	case $1 in
	plain) ;;
	nft) nft_up ;;
	haproxy) haproxy_up "$2" ;;
	haproxy50) haproxy_up "$2" 50 ;;
	nginx) nginx_proxy_up "$2" ;;
	shift) shift_up "$2" ;;
	shift-tc | before-tc) shift_up "$2" tc ;;
	before) shift_up "$2" ;;
	esac
	if [ "$1" != plain ]; then
		rig_wait 50 0.1 proxy_ready || die "$1: the VIP does not answer"
	fi
}

sys_down() { # SYSTEM
	case $1 in
	plain) ;;
	nft) nft_down ;;
	haproxy | haproxy50 | nginx) rig_kill "$SYS_PID" || true; vip_local off ;;
	shift | shift-tc | before | before-tc) shift_down ;;
	esac
	SYS_PID=""
}

# --- packets/s ------------------------------------------------------------------------
# SYN runs: each (system, round) its own source block 198.18.(10+k).0/.., 4M flows, so no
# SYN ever repeats a 5-tuple (new flow everywhere); ACK runs: 100k flows from 198.18.1.10,
# through shift each opened first with a whole handshake (pktgen --open: the sink
# answers each SYN with its backend's SYN-ACK, then the client sends its first ACK):
# shift writes an entry only for a handshake it saw whose first ACK acknowledges the
# backend's SYN-ACK, and an ACK without one is steered statelessly, which is not the
# established path these runs measure. shift_entries in the record counts the entries.
PG_K=0
pg_run() { # SYSTEM ROUND syn|ack
	local sys=$1 r=$2 fl=$3 dst src flows burst out ct="" open="" extra=()
	if [ "$sys" = plain ]; then
		dst="$B1:$BK_PORT@$W_BLUE,$B2:$BK_PORT@$W_BLUE,$G1:$BK_PORT@$W_GREEN"
	else
		dst="$VIP:80"
	fi
	# SYNs one frame per call (--burst 1: see bench/pktgen.c, bursts repeated frames
	# here); established packets in bursts of 64, where a repeat changes nothing.
	if [ "$fl" = syn ]; then
		src=198.18.$((10 + PG_K)).1 flows=4000000 burst=1
		PG_K=$((PG_K + 1))
	else
		src=198.18.1.10 flows=100000 burst=64
		# Only shift: conntrack marks an ACK after a SYN that was never answered
		# invalid (nothing reached the sinks), while it picks up a flow met in
		# mid-stream as established; routing keeps no state.
		is_shift "$sys" && open=--open
	fi
	out=$(timeout $((BENCH_PKT_SECONDS + 90)) "$PKTGEN" --tx-netns "$RIG_ID-cli1" \
		--tx-dev "${RIG_ID}e1" --dmac "$EDGE_C1_MAC" --sink-netns "$RIG_NS_SWITCH" \
		--sink-dev "${RIG_ID}se" --dst "$dst" --src "$src" --flows "$flows" --flags "$fl" \
		--threads 2 --burst "$burst" --warmup 1 --duration "$BENCH_PKT_SECONDS" $open) || die "pktgen failed ($sys $fl)"
	[ "$sys" = nft ] && ct=$(rig_edge cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0)
	[ -n "$ct" ] && extra+=("conntrack_entries=$ct")
	# The entries shift holds after an ACK run: the opened flows (100k) are among them.
	if [ -n "$open" ]; then
		extra+=("shift_entries=$(rig_edge "$AGENT" --bpffs "$RIG_BPFFS_DIR" --count-flows 2>/dev/null || echo -1)")
	fi
	rec pktrate "$out" system="$sys" round="$r" burst="$burst" load1="$(load1)" "${extra[@]}"
	say "pktrate $sys $fl round $r: $("$RIG_PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); print("%d pps delivered of %d sent" % (d["delivered_pps"], d["sent_pps"]))' "$out")"
}

section_pktrate() {
	local r sys out
	# The generator itself: every SYN a new 5-tuple (a sink that remembers them all)
	out=$(timeout 60 "$PKTGEN" --tx-netns "$RIG_ID-cli1" --tx-dev "${RIG_ID}e1" \
		--dmac "$EDGE_C1_MAC" --sink-netns "$RIG_NS_SWITCH" --sink-dev "${RIG_ID}se" \
		--dst "$B1:$BK_PORT" --src 198.18.99.1 --flows 4000000 --flags syn --threads 2 \
		--warmup 0 --duration 2 --check-dups) || die "pktgen --check-dups failed"
	rec pktgen_check "$out" load1="$(load1)"
	say "pktgen check: $out"
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		# shellcheck disable=SC2086 # word lists
		for sys in $(round_order "$r" plain nft $SHIFT_SYSTEMS); do
			sys_up "$sys" throughput
			[ "$sys" = nft ] && rig_edge "$PKTGEN" --ct-flush "$RIG_NS_EDGE"
			pg_run "$sys" "$r" ack
			[ "$sys" = nft ] && rig_edge "$PKTGEN" --ct-flush "$RIG_NS_EDGE"
			pg_run "$sys" "$r" syn
			if is_shift "$sys"; then
				rec pktrate_status "$(shift_status)" round="$r" system="$sys"
			fi
			sys_down "$sys"
		done
	done
}

# --- the flood of issue 14 ------------------------------------------------------------
# The experiment issue 14 was filed with, for each shift system: BENCH_FLOOD_CONNS (30)
# keep-alive connections from cli2 at green 30 %, each answered once; the client
# stopped (SIGSTOP: the connections idle), green's weight to 70 %, spoofed SYNs at
# the VIP for BENCH_FLOOD_SECONDS (2) at the generator's full rate (pktgen --flags
# syn, a fresh 5-tuple each: >= 1M here; the sink drops them before the backends),
# the client resumed for 4 s: connections that saw a second backend or failed are
# broken. The table's entries before and after the flood, and those of them from the
# flood's source block (its own, if it wrote any); whether green was rolled
# back after it (a broken connection's RST is an error sample); then 200 new
# connections (client.py new), which must all succeed, ~70 % to green.
FLOOD_K=0
flood_run() { # SYSTEM ROUND
	local sys=$1 r=$2 d=$RIG_DIR/flood.$1.$2 ka out before after newc net src blk st
	sys_up "$sys" throughput
	rig_edge "$SYS_SHIFTCTL" -c "$RIG_CONFIG" set-weight web 30 >/dev/null ||
		die "$sys: set-weight web 30 failed"
	mkdir -p "$d"
	echo before >"$d/phase"
	rig_spawn cli2 "$d/ka.json" "$RIG_PYTHON" "$RIG_CLIENT_PY" keepalive --url "http://$VIP/" \
		--conns "$BENCH_FLOOD_CONNS" --duration 120 --interval 250 --timeout 3 \
		--control-file "$d/phase" --ready-file "$d/ready"
	ka=$RIG_LAST_PID
	rig_wait 200 0.1 test -e "$d/ready" || die "$sys: $BENCH_FLOOD_CONNS keep-alive connections not ready in 20 s"
	kill -STOP "$ka"
	# Each run its own source block, as the pktrate section's SYN runs: the
	# table's entries from that block are the flood's own (pktgen: 64,000 flows
	# an address: 4M flows take the block's first 63).
	net=198.18.$((200 + FLOOD_K % 55))
	src=$net.1 blk=$net.0/24
	FLOOD_K=$((FLOOD_K + 1))
	before=$(rig_edge "$AGENT" --bpffs "$RIG_BPFFS_DIR" --count-flows --from "$blk") ||
		die "counting flows failed"
	rig_edge "$SYS_SHIFTCTL" -c "$RIG_CONFIG" set-weight web 70 >/dev/null ||
		die "$sys: set-weight web 70 failed"
	out=$(timeout $((BENCH_FLOOD_SECONDS + 90)) "$PKTGEN" --tx-netns "$RIG_ID-cli1" \
		--tx-dev "${RIG_ID}e1" --dmac "$EDGE_C1_MAC" --sink-netns "$RIG_NS_SWITCH" \
		--sink-dev "${RIG_ID}se" --dst "$VIP:80" --src "$src" --flows 4000000 --flags syn \
		--threads 2 --burst 1 --warmup 0 --duration "$BENCH_FLOOD_SECONDS") ||
		die "pktgen flood failed ($sys)"
	after=$(rig_edge "$AGENT" --bpffs "$RIG_BPFFS_DIR" --count-flows --from "$blk") ||
		die "counting flows failed"
	echo after >"$d/phase"
	kill -CONT "$ka"
	sleep 4
	echo stop >"$d/phase"
	rig_wait 100 0.1 test -s "$d/ka.json" || say "warning: the keep-alive client did not stop"
	kill -0 "$ka" 2>/dev/null && rig_kill "$ka"
	st=$(shift_status)
	newc=$(rig_nsenter cli1 timeout 60 "$RIG_PYTHON" "$RIG_CLIENT_PY" new --url "http://$VIP/" \
		--count 200 --concurrency 8 --timeout 3) || newc='{}'
	out=$("$RIG_PYTHON" -c '
import json, sys
ka = json.loads(open(sys.argv[1]).readline() or "{}")
fl, b4, af = json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
nc = json.loads(sys.argv[5] or "{}")
svc = [x for x in json.loads(sys.argv[6] or "{}").get("services", []) if x.get("service") == "web"]
svc = svc[0] if svc else {}
bb = nc.get("by_backend", {})
tot = sum(bb.values()) or 1
# a connection is broken if it saw a second backend, or failed, reset or closed
broken = 0
for seq in ka.get("per_conn", []):
    names = {w for w, _ in seq if not w.startswith("!") and not w.startswith("#")}
    bad = any(w.startswith("!") or w.startswith("#") for w, _ in seq)
    broken += 1 if len(names) > 1 or bad else 0
print(json.dumps({
    "conns": ka.get("conns"), "broken": broken, "changed_backend": ka.get("changed_backend"),
    "failed": ka.get("failed"), "resets": ka.get("resets"),
    "after_ok": ka.get("phases", {}).get("after", {}).get("ok"),
    "flood_sent": fl.get("sent_total"), "flood_delivered": fl.get("delivered_total"),
    "entries_before": b4.get("flows4"), "entries_after": af.get("flows4"),
    "flood_entries_before": b4.get("flows4_from"), "flood_entries_after": af.get("flows4_from"),
    "new_ok": nc.get("ok"), "new_failed": nc.get("failed"),
    "new_green_pct": round(100.0 * sum(v for k, v in bb.items() if k.startswith("green")) / tot, 1),
    "rolled_back": svc.get("rolled_back"), "green_weight": svc.get("green_weight"),
}))' "$d/ka.json" "$out" "$before" "$after" "$newc" "$st")
	rec flood "$out" system="$sys" round="$r" load1="$(load1)"
	say "flood $sys round $r: $out"
	sys_down "$sys"
}

section_flood() {
	local r sys
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for sys in $SHIFT_SYSTEMS; do flood_run "$sys" "$r"; done
	done
}

# --- 1M flows through shiftd ------------------------------------------------------------
# 1.1M distinct 5-tuples, each opened with a whole handshake (pktgen --open: the
# sink answers each SYN with its backend's SYN-ACK, then the client's first ACK
# writes the entry), from THREADS sender CPUs into a fresh shiftd. The sources are
# cli1's own /24 (SRC + i/64000): the edge routes the SYN-ACKs back there, and a
# SYN-ACK it cannot route is not a client's, so no entry would follow. SYNs alone
# write none (a SYN flood leaves the table alone).
flows1m_run() { # THREADS SRC
	local out cnt maps
	sys_up shift throughput
	out=$(timeout 150 "$PKTGEN" --tx-netns "$RIG_ID-cli1" --tx-dev "${RIG_ID}e1" \
		--dmac "$EDGE_C1_MAC" --sink-netns "$RIG_NS_SWITCH" --sink-dev "${RIG_ID}se" \
		--dst "$VIP:80" --src "$2" --flows 1100000 --flags ack --open --threads "$1" \
		--burst 64 --warmup 0 --duration 1) || die "pktgen (1M flows, $1 CPU(s)) failed"
	cnt=$(rig_edge "$AGENT" --bpffs "$RIG_BPFFS_DIR" --count-flows) || die "counting flows failed"
	maps=$("$RIG_PYTHON" -c '
import json, sys, os, subprocess
ids = {}
d = sys.argv[1]
for name in os.listdir(d):
    try:
        j = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned", os.path.join(d, name)],
                                      capture_output=True, text=True).stdout)
        ids[name] = j.get("bytes_memlock", 0)
    except Exception:
        pass
print(json.dumps({"maps_memlock": ids, "maps_memlock_total": sum(ids.values())}))' "$RIG_BPFFS_DIR/maps")
	rec flows1m "$cnt" pktgen="$out" maps="$maps" threads="$1" load1="$(load1)"
	say "flows1m ($1 CPU(s)): $cnt"
	sys_down shift
}

section_flows1m() {
	flows1m_run 2 198.18.1.100
	flows1m_run 1 198.18.1.150
}

# --- HTTP -----------------------------------------------------------------------------
wrk_json() { # parse wrk's text on stdin into JSON
	"$RIG_PYTHON" -c '
import json, re, sys
t = sys.stdin.read()
def ms(v, u):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]
d = {}
m = re.search(r"Requests/sec:\s+([\d.]+)", t)
d["rps"] = float(m.group(1)) if m else 0.0
m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", t)
d["requests"] = int(m.group(1)) if m else 0
for p in ("50", "75", "90", "99"):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % p, t, re.M)
    d["p%s_ms" % p] = round(ms(*m.groups()), 3) if m else None
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
d["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
d["non2xx"] = int(m.group(1)) if m else 0
print(json.dumps(d))'
}

wrk_run() { # SYSTEM ROUND keepalive|close
	local sys=$1 r=$2 mode=$3 txt js
	local -a hdr=()
	[ "$mode" = close ] && hdr=(-H "Connection: close")
	txt=$(rig_nsenter cli1 timeout $((BENCH_HTTP_SECONDS + 20)) wrk -t2 -c"$BENCH_HTTP_CONNS" \
		-d"${BENCH_HTTP_SECONDS}s" --timeout 2s --latency "${hdr[@]}" "http://$VIP/" 2>&1) ||
		die "wrk failed ($sys $mode): $txt"
	js=$(wrk_json <<<"$txt")
	rec http "$js" system="$sys" mode="$mode" round="$r" conns="$BENCH_HTTP_CONNS" load1="$(load1)"
	say "http $sys $mode round $r: $js"
}

section_http() {
	local r sys
	for ((r = 1; r <= BENCH_HTTP_ROUNDS; r++)); do
		# nftables beside shift: the comparison issue 14 asks for (close vs nft).
		# shellcheck disable=SC2086 # word lists
		for sys in $(round_order "$r" haproxy nginx nft $SHIFT_SYSTEMS); do
			sys_up "$sys" throughput
			wrk_run "$sys" "$r" keepalive
			wrk_run "$sys" "$r" close
			is_shift "$sys" && rec http_status "$(shift_status)" round="$r" system="$sys"
			sys_down "$sys"
		done
	done
}

# --- reaction to a bad green -------------------------------------------------------------
react_run() { # SYSTEM ROUND
	local sys=$1 round=$2 t_fail cpid out summary st="{}" warm=3
	rm -f "$NGX/green1/fail"
	sys_up "$sys" reaction
	sleep 1
	: >"$NGX/green1/access.log"
	rig_spawn cli2 "$RIG_DIR/react.$sys.$round.jsonl" "$RIG_PYTHON" "$RIG_CLIENT_PY" rate \
		--url "http://$VIP/" --rate "$BENCH_REACT_RATE" \
		--duration $((warm + BENCH_REACT_WINDOW)) --concurrency 64 --timeout 2
	cpid=$RIG_LAST_PID
	sleep "$warm"
	t_fail=$(date +%s.%N)
	touch "$NGX/green1/fail"
	local i
	for ((i = 0; i < (BENCH_REACT_WINDOW + 20) * 10; i++)); do
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$cpid" 2>/dev/null && rig_kill "$cpid"
	wait "$cpid" 2>/dev/null || true
	[ "$sys" = shift ] && st=$(shift_status)
	summary=$(grep '"summary": true' "$RIG_DIR/react.$sys.$round.jsonl" || echo '{}')
	out=$("$RIG_PYTHON" -c '
import json, sys
t_fail = float(sys.argv[1])
first = None
reqs = []
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) < 5 or f[4].startswith("/readyz"):
        continue                       # health checks are not client requests
    t, status = float(f[0]), int(f[1])
    reqs.append((t, status))
reqs.sort()
before = [r for r in reqs if r[0] < t_fail - 0.001]
fails = [r for r in reqs if r[1] >= 500]
d = {"green_requests_before_fail": len(before)}
if reqs:
    # Negative: green got nothing from before the fault on (taken out too early).
    d["last_green_request_ms_after_fail"] = round((reqs[-1][0] - t_fail) * 1e3, 1)
if not fails:
    # Taken out before any client request met a 500 (health checks are not counted).
    d.update({"green_requests_after_first_500": 0, "green_500s": 0,
              "last_green_request_ms_after_first_500": 0.0})
if fails:
    t0 = fails[0][0]
    after = [r for r in reqs if r[0] >= t0]
    d.update({"first_500_after_fail_ms": round((t0 - t_fail) * 1e3, 1),
              "green_requests_after_first_500": len(after),
              "green_500s": len(fails),
              "last_green_request_ms_after_first_500": round((after[-1][0] - t0) * 1e3, 1),
              "green_requests_in_window_by_second": {}})
    for t, s in after:
        k = str(int(t - t0))
        d["green_requests_in_window_by_second"][k] = d["green_requests_in_window_by_second"].get(k, 0) + 1
c = json.loads(sys.argv[3] or "{}")
d["client_sent"] = c.get("sent", 0)
d["client_ok"] = c.get("ok", 0)
d["client_errors"] = c.get("errors", {})
d["client_by_backend"] = c.get("by_backend", {})
st = json.loads(sys.argv[4] or "{}")
for s in st.get("services", []):
    if s.get("service") == "web":
        d["shift_last_rollback"] = s.get("last_rollback")
        ns = (s.get("last_rollback") or {}).get("unix_ns")
        if ns:
            d["rollback_ms_after_fail"] = round((ns / 1e9 - t_fail) * 1e3, 1)
        d["shift_green_weight"] = s.get("green_weight")
print(json.dumps(d))' "$t_fail" "$NGX/green1/access.log" "$summary" "$st")
	rec reaction "$out" system="$sys" round="$round" rate="$BENCH_REACT_RATE" \
		window_s="$BENCH_REACT_WINDOW" load1="$(load1)"
	say "reaction $sys round $round: $out"
	sys_down "$sys"
	rm -f "$NGX/green1/fail"
}

section_reaction() {
	local sys r
	for ((r = 1; r <= BENCH_REACT_ROUNDS; r++)); do
		for sys in $BENCH_REACT_SYSTEMS; do react_run "$sys" "$r"; done
	done
}

# --- the datapath's cost in a live stream ----------------------------------------------
# bench_datapath times one packet per BPF_PROG_TEST_RUN call; here the kernel's own
# run-time statistics time the program on a stream (bench/progcost: BPF_ENABLE_STATS
# while the stream runs), established ACKs in bursts of 64 from two senders, as the
# pktrate section's: shift's client program on the edge's client veth, XDP and TC
# (tcx), at BENCH_LIVE_FLOWS flows each (opened first by whole handshakes, as there),
# and the floor of each hook on the same veth and stream (XDP_PASS; TC_ACT_UNSPEC,
# the kernel then forwards). The statistics' clock reads are in every run, so a
# program's cost is its ns per run less its floor's in the same round.
LIVE_K=0
LIVE_ARGS=()
live_args() { # DST SRC FLOWS SECONDS: pktgen's arguments for an ACK stream, in LIVE_ARGS
	LIVE_ARGS=(--tx-netns "$RIG_ID-cli1" --tx-dev "${RIG_ID}e1" --dmac "$EDGE_C1_MAC"
		--sink-netns "$RIG_NS_SWITCH" --sink-dev "${RIG_ID}se" --dst "$1" --src "$2"
		--flows "$3" --flags ack --threads 2 --burst 64 --warmup 0 --duration "$4")
}

live_measure() { # SYSTEM ROUND HOOK FLOWS DST SRC [--floor]
	local sys=$1 r=$2 hook=$3 flows=$4 f=$RIG_DIR/live.json pg floor=()
	[ "${7:-}" = --floor ] && floor=(--floor)
	rm -f "$f"
	live_args "$5" "$6" "$flows" "$BENCH_PKT_SECONDS"
	pg=$("$PROGCOST" --netns "$RIG_NS_EDGE" --dev "${RIG_ID}c1" --hook "$hook" \
		--out "$f" "${floor[@]}" -- timeout $((BENCH_PKT_SECONDS + 90)) "$PKTGEN" "${LIVE_ARGS[@]}") ||
		die "progcost failed ($sys, $flows flows)"
	rec live "$(cat "$f")" system="$sys" round="$r" flows="$flows" load1="$(load1)" \
		delivered_pps="$(rig_json_get delivered_pps <<<"$pg")"
	say "live $sys round $r, $flows flows: $(cat "$f")"
}

live_run() { # SYSTEM ROUND
	local sys=$1 r=$2 hook=xdp fl src
	local plain="$B1:$BK_PORT@$W_BLUE,$B2:$BK_PORT@$W_BLUE,$G1:$BK_PORT@$W_GREEN"
	case $sys in floor-tc | shift-tc) hook=tcx ;; esac
	case $sys in
	floor-*)
		# The floor has no flows to find: one stream, routed by the kernel.
		live_measure "$sys" "$r" "$hook" 1024 "$plain" 198.18.3.10 --floor
		;;
	*)
		sys_up "$sys" throughput
		for fl in $BENCH_LIVE_FLOWS; do
			# Each run its own source block: every flow opened in this shiftd.
			LIVE_K=$((LIVE_K + 1))
			src=198.18.$((40 + LIVE_K % 40)).10
			live_args "$VIP:80" "$src" "$fl" 1
			timeout 120 "$PKTGEN" "${LIVE_ARGS[@]}" --open >/dev/null || die "pktgen --open failed ($sys)"
			live_measure "$sys" "$r" "$hook" "$fl" "$VIP:80" "$src"
		done
		rec live_status "$(shift_status)" round="$r" system="$sys"
		sys_down "$sys"
		;;
	esac
}

section_live() {
	local r sys systems="floor-xdp shift floor-tc shift-tc" f=$RIG_DIR/live.probe
	# tcx (Linux 6.6) is what the TC floor attaches to, as shiftd does where it can: a
	# probe whose record is written once the floor is attached, even with no traffic.
	rm -f "$f"
	"$PROGCOST" --netns "$RIG_NS_EDGE" --dev "${RIG_ID}c1" --hook tcx --floor --out "$f" \
		-- true 2>/dev/null || true
	if [ ! -s "$f" ]; then
		say "live: no tcx on this kernel: XDP only"
		systems="floor-xdp shift"
	fi
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		# shellcheck disable=SC2086 # a word list
		for sys in $(round_order "$r" $systems); do live_run "$sys" "$r"; done
	done
}

# --- agent CPU --------------------------------------------------------------------------
section_agent() {
	local out
	sys_up shift throughput
	out=$(rig_edge "$AGENT" --bpffs "$RIG_BPFFS_DIR" --pid "$SYS_PID" --client-if "${RIG_ID}c1" \
		--backend-if "$RIG_EDGE_BACKEND_IF" --vip "$VIP:80" --client 198.18.1.2 \
		--rates 0,100000,1000000 --duration "$BENCH_AGENT_SECONDS") || die "bench_agent failed"
	while read -r line; do
		[ -n "$line" ] && rec agent "$line"
	done <<<"$out"
	say "agent: $(tr '\n' ' ' <<<"$out")"
	rec agent_status "$(shift_status)"
	sys_down shift
}

rec meta '{}' rig="$RIG_ID" vip="$VIP" cpus="$(nproc)" queues="$BENCH_QUEUES" kernel="$(uname -r)" \
	fifo="$BENCH_FIFO" before="$BEFORE_REV" \
	load_start="$(cut -d' ' -f1-3 /proc/loadavg)" started="$(date -u +%FT%TZ)" \
	wrk="$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')" \
	haproxy="$(haproxy -v | head -1 | awk '{print $1, $3}')" \
	nginx="$(nginx -v 2>&1 | sed 's/.*version: //')" nft="$(nft --version | awk '{print $1, $2}')"
for s in pktrate live flood flows1m http reaction agent; do
	if want "$s"; then
		say "section $s (load $(load1))"
		"section_$s"
	fi
done
rec meta_end '{}' load_end="$(cut -d' ' -f1-3 /proc/loadavg)" seconds=$((SECONDS - T0))
say "done in $((SECONDS - T0)) s; raw results in $RES"
