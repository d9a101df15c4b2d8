# shellcheck shell=bash
# Shared helpers of the end-to-end tests (tests/netns/test_e2e_*.sh): real HTTP through
# shift's XDP path in the namespace rig. Sourced, never run.
#
#   . "$HERE/e2e_lib.sh"
#   e2e_up [KEY=VALUE...]        # probe (exit 77 if the machine cannot), rig_up,
#                                # write the config, start shiftd, wait until it is ready
#   ctl set-weight web 20        # shiftctl -c $RIG_CONFIG in the edge namespace
#   e2e_snap before.json         # shiftctl status --json
#   e2e_setphase CTL NAME        # the keep-alive client's phase; e2e_phase_hold S
#   e2e_new OUT NS URL COUNT     # client.py new (rig_spawn'ed, bounded), JSON to OUT
#   e2e_verify_new LABEL SVC WANT_BP BEFORE AFTER OUT...   # the split checks
#   e2e_finish                   # summary line; exit 0 or 1
#
# A check prints "ok - ..." or "not ok - ..." with its figures; a failed check does not
# stop the script (set -e is not used): e2e_finish exits 1 if any failed.

HERE=${HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
: "${RIG_QUIET:=1}"
# A VIP of its own per run (other rigs may run at the same time; see e2e_add_sources).
_e2e_v=$((20 + RANDOM % 230))
: "${RIG_VIP:=198.18.100.$_e2e_v}"
: "${RIG_VIP6:=2001:db8:100::$(printf '%x' "$_e2e_v")}"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

E2E_ROOT=$(cd "$HERE/../.." && pwd)
E2E_OUT=${OUTPUT:-$E2E_ROOT/.output}
case $E2E_OUT in /*) ;; *) E2E_OUT=$E2E_ROOT/$E2E_OUT ;; esac
SHIFTD=$E2E_OUT/shiftd
SHIFTCTL=$E2E_OUT/shiftctl
E2E_T0=$SECONDS
E2E_FAILS=0
E2E_CHECKS=0
E2E_SHIFTD_PID=""
E2E_SHIFTD_N=0

ok() { E2E_CHECKS=$((E2E_CHECKS + 1)); echo "ok - $*"; }
notok() { E2E_CHECKS=$((E2E_CHECKS + 1)); E2E_FAILS=$((E2E_FAILS + 1)); echo "not ok - $*"; }
note() { echo "# $*"; }
# check DESC CMD...: ok if CMD succeeds
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}

# ctl ARGS...: shiftctl for this rig (edge namespace: the bpffs pins and the socket).
ctl() { rig_edge "$SHIFTCTL" -c "$RIG_CONFIG" "$@"; }

# e2e_snap FILE: status --json to FILE, the clients' reused-SYN count to FILE.reuse
e2e_snap() {
	ctl status --json >"$1"
	e2e_reused >"$1.reuse"
}

# e2e_up [KEY=VALUE...]: everything up to a ready shiftd.
# svc KEY[.KEY]: a field of service web in status --json ("" if absent). Tests
# with more services define their own svc after sourcing this file.
svc() {
	ctl status web --json | "$RIG_PYTHON" -c '
import json, sys
v = [s for s in json.load(sys.stdin)["services"] if s["service"] == "web"][0]
for k in sys.argv[1].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1"
}

# svc_eval SERVICE EXPR: EXPR (python, over s: the service's status --json) printed
svc_eval() {
	ctl status "$1" --json | "$RIG_PYTHON" -c '
import json, sys
s = [s for s in json.load(sys.stdin)["services"] if s["service"] == sys.argv[1]][0]
print(eval(sys.argv[2]))' "$1" "$2"
}
# backend_sum SERVICE EXPR [COLOR]: EXPR (python, over b: one backend's status) summed
# over the service's backends (of COLOR only, when given)
backend_sum() {
	svc_eval "$1" "sum(($2) for b in s[\"backends\"] if \"${3-}\" in (\"\", b[\"color\"]))"
}
# e2e_listening NS PORT: wait (5 s at most) until 127.0.0.1:PORT accepts in NS.
e2e_listening() {
	rig_wait 50 0.1 rig_nsenter "$1" bash -c "exec 3<>/dev/tcp/127.0.0.1/$2" 2>/dev/null
}
# wait_rollback SECONDS: poll status --json until web is rolled back; 0 if it was.
wait_rollback() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(svc rolled_back)" = True ] && return 0
		sleep 0.1
	done
	return 1
}

# green_errs KIND: green's errors of one kind (status --json, all green backends)
green_errs() {
	ctl status web --json | "$RIG_PYTHON" -c '
import json, sys
s = [s for s in json.load(sys.stdin)["services"] if s["service"] == "web"][0]
print(sum(b["errors_by_kind"][sys.argv[1]] for b in s["backends"] if b["color"] == "green"))' "$1"
}

e2e_up() {
	rig_probe || rig_skip "$RIG_SKIP_REASON"
	if [ ! -x "$SHIFTD" ] || [ ! -x "$SHIFTCTL" ]; then
		echo "not ok - setup: $SHIFTD / $SHIFTCTL not built (make all)"
		exit 1
	fi
	rig_up || { echo "not ok - setup: rig_up failed"; exit 1; }
	local -a hc=()
	[ -z "${RIG_SVC-web}" ] || hc+=("${RIG_SVC-web}.health_check=none")
	[ -z "${RIG_SVC6-web6}" ] || hc+=("${RIG_SVC6-web6}.health_check=none")
	rig_write_config "$RIG_DIR/shiftd.conf" xdp_mode=auto "${hc[@]}" "$@" ||
		{ echo "not ok - setup: rig_write_config failed"; exit 1; }
	e2e_add_sources || { echo "not ok - setup: cannot add client source addresses"; exit 1; }
	e2e_start_shiftd || exit 1
	# On failure, show shiftd's logs (stderr keeps stdout's ok/not ok lines clean).
	# shellcheck disable=SC2016 # evaluated at exit
	rig_on_exit '[ "$E2E_FAILS" = 0 ] || e2e_dump_logs >&2'
}

e2e_dump_logs() {
	local f
	for f in "$RIG_DIR"/shiftd.*.log "$RIG_DIR"/shiftd.*.log.*; do
		[ -e "$f" ] || continue
		echo "--- $f (last 30 lines)"
		tail -n 30 "$f"
	done
}

# e2e_start_shiftd: start shiftd (rig_spawn) and wait until it reports itself running.
e2e_start_shiftd() {
	local i j
	E2E_SHIFTD_N=$((E2E_SHIFTD_N + 1))
	E2E_SHIFTD_LOG=$RIG_DIR/shiftd.$E2E_SHIFTD_N.log
	rig_spawn edge "$E2E_SHIFTD_LOG" "$SHIFTD" --config "$RIG_CONFIG" || return 1
	E2E_SHIFTD_PID=$RIG_LAST_PID
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$E2E_SHIFTD_PID" 2>/dev/null; then
			echo "not ok - shiftd exited at start; its log:"
			sed 's/^/#   /' "$E2E_SHIFTD_LOG"
			return 1
		fi
		j=$(ctl status --json 2>/dev/null) &&
			[ "$(rig_json_get agent_running <<<"$j")" = True ] && return 0
		sleep 0.1
	done
	echo "not ok - shiftd not ready after 10 s; its log:"
	sed 's/^/#   /' "$E2E_SHIFTD_LOG"
	return 1
}

# Fresh client source addresses. A client reuses a 5-tuple (source port) now and then:
# measured here, ~0.5 % of 1350 connections from one fresh address, and far more once
# the ephemeral range wraps; a reused 5-tuple meets the connection-table entry of the
# earlier connection. That case is tested on purpose (test_e2e_rollback.sh, "reuse");
# elsewhere it would blur the checks, so each client run gets a source address of its own
# (the route to the VIP names it: a bind() would pick random ports and reuse far more),
# the widest ephemeral port range, and an nft counter of SYNs per (source, port) in each
# client namespace measures any reuse left, for the diagnosis (e2e_reused).
E2E_NSRC=24
declare -gA _E2E_SRC_NEXT=()
e2e_add_sources() {
	local i k c mac base=$((10 + RANDOM % 200))
	E2E_SRC_BASE=$base
	for ((i = 1; i <= RIG_CLIENTS; i++)); do
		c=cli$i
		rig_nsenter "$c" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" || return 1
		mac=$(_rig_mac "$RIG_ID-$c" "${RIG_ID}e$i") || return 1
		{
			for ((k = base; k < base + E2E_NSRC; k++)); do
				echo "addr add 198.18.$i.$k/24 dev ${RIG_ID}e$i"
				printf 'addr add 2001:db8:c%d::%x/64 dev %se%d nodad\n' "$i" "$k" "$RIG_ID" "$i"
			done
		} | ip -n "$RIG_ID-$c" -batch - || return 1
		{
			for ((k = base; k < base + E2E_NSRC; k++)); do
				echo "neigh replace 198.18.$i.$k lladdr $mac dev ${RIG_ID}c$i nud permanent"
				printf 'neigh replace 2001:db8:c%d::%x lladdr %s dev %sc%d nud permanent\n' \
					"$i" "$k" "$mac" "$RIG_ID" "$i"
			done
		} | ip -n "$RIG_NS_EDGE" -batch - || return 1
		_E2E_SRC_NEXT[$c]=$base
		if [ "${RIG_HAVE_NFT:-0}" = 1 ]; then
			rig_nsenter "$c" nft -f - <<-EOF || return 1
				table inet e2e_syn {
					set v4 { type ipv4_addr . inet_service; flags dynamic; size 65535; counter; }
					set v6 { type ipv6_addr . inet_service; flags dynamic; size 65535; counter; }
					chain out {
						type filter hook output priority 0; policy accept;
						meta nfproto ipv4 tcp dport $RIG_VIP_PORT tcp flags & (syn | ack) == syn update @v4 { ip saddr . tcp sport }
						meta nfproto ipv6 tcp dport $RIG_VIP_PORT tcp flags & (syn | ack) == syn update @v6 { ip6 saddr . tcp sport }
					}
				}
			EOF
		fi
	done
}

# e2e_reused: SYNs the clients sent from a (source, port) that had sent one before: a
# reused 5-tuple or a retransmitted SYN ("-" without nft).
e2e_reused() {
	local c n=0 x
	[ "${RIG_HAVE_NFT:-0}" = 1 ] || { echo -; return 0; }
	for c in $RIG_CLIENT_NAMES; do
		x=$(rig_nsenter "$c" nft -j list table inet e2e_syn | "$RIG_PYTHON" -c '
import json, sys
n = 0
for o in json.load(sys.stdin).get("nftables", []):
    for e in o.get("set", {}).get("elem", []) or []:
        n += max(0, e.get("elem", {}).get("counter", {}).get("packets", 1) - 1)
print(n)') || x=0
		n=$((n + x))
	done
	echo "$n"
}

# e2e_src NS 4|6: the next unused source address of client NS.
e2e_src() {
	local c=$1 k i
	k=${_E2E_SRC_NEXT[$c]:?no sources for $c}
	if [ "$k" -ge $((E2E_SRC_BASE + E2E_NSRC)) ]; then
		echo "e2e: out of source addresses for $c" >&2
		return 1
	fi
	_E2E_SRC_NEXT[$c]=$((k + 1))
	i=${c#cli}
	if [ "$2" = 6 ]; then printf '2001:db8:c%d::%x\n' "$i" "$k"; else echo "198.18.$i.$k"; fi
}

# e2e_use_src NS 4|6: new connections from NS to the VIP leave from a fresh address
# (sets E2E_SRC).
e2e_use_src() {
	local c=$1 i=${1#cli}
	# Not $(...): e2e_src advances a counter, which a subshell would lose.
	e2e_src "$c" "$2" >"$RIG_DIR/.src.$c" || return 1
	E2E_SRC=$(cat "$RIG_DIR/.src.$c")
	if [ "$2" = 6 ]; then
		ip -n "$RIG_ID-$c" -6 route replace "$RIG_VIP6/128" via "2001:db8:c$i::1" src "$E2E_SRC"
	else
		ip -n "$RIG_ID-$c" route replace "$RIG_VIP/32" via "198.18.$i.1" src "$E2E_SRC"
	fi
}

# e2e_client NS OUT CLIENT-ARGS...: client.py in NS in the background (rig_spawn, so
# rig_down stops it), from a fresh source address; sets E2E_PID and E2E_SRC. Its JSON
# goes to OUT.
e2e_client() {
	local ns=$1 out=$2 a fam=4
	shift 2
	for a in "$@"; do case $a in http://\[*) fam=6 ;; esac; done
	e2e_use_src "$ns" "$fam" || return 1
	rig_spawn "$ns" "$out" "$RIG_PYTHON" "$RIG_CLIENT_PY" "$@" || return 1
	E2E_PID=$RIG_LAST_PID
}

# e2e_wait_pid PID SECONDS: wait for a rig_spawn'ed child, bounded; 0 if it exited 0.
e2e_wait_pid() {
	local pid=$1 limit=$2 i
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "# pid $pid still running after ${limit}s: stopping it" >&2
		rig_kill "$pid"
		return 1
	fi
	wait "$pid" 2>/dev/null
}

# e2e_new OUT NS URL COUNT [CONCURRENCY]: COUNT new connections from NS in the background.
e2e_new() {
	e2e_client "$2" "$1" new --url "$3" --count "$4" --concurrency "${5:-16}" --deadline 40
}

# e2e_new_both TAG URL COUNT_PER_CLIENT: both clients at once, waits; files $RIG_DIR/TAG.cli{1,2}.json
e2e_new_both() {
	local tag=$1 url=$2 n=$3 p1 p2 rc=0
	e2e_new "$RIG_DIR/$tag.cli1.json" cli1 "$url" "$n" || return 1
	p1=$E2E_PID
	e2e_new "$RIG_DIR/$tag.cli2.json" cli2 "$url" "$n" || return 1
	p2=$E2E_PID
	e2e_wait_pid "$p1" 60 || rc=1
	e2e_wait_pid "$p2" 60 || rc=1
	return $rc
}

# e2e_wait_file FILE SECONDS
e2e_wait_file() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# e2e_setphase CTL NAME: the keep-alive client (client.py keepalive --control-file CTL)
# reads CTL's first line every 0.1 s and counts its answers under that phase ("stop"
# ends it). Remembers when, for e2e_phase_hold.
e2e_setphase() {
	printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
	E2E_PHASE_T0=${EPOCHREALTIME/[.,]/}
}

# e2e_phase_hold SECONDS: return once the phase set last has lasted SECONDS (whole). A
# phase that ends when something else finishes (rate clients timed from before a
# restart) can otherwise be over before the client has read it, on a slow host: a phase
# with no answers at all, which the keep-alive checks rightly refuse.
e2e_phase_hold() {
	local left=$((${E2E_PHASE_T0:-0} + $1 * 1000000 - ${EPOCHREALTIME/[.,]/}))
	[ "$left" -gt 0 ] || return 0
	sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"
}

# e2e_xdp_modes: "ifname:mode ..." as the kernel reports it in the edge namespace
# (xdp = native, xdpgeneric = generic; TC: clsact = our cls_bpf filter, tcx = our
# pinned tcx link still attached; none).
e2e_xdp_modes() {
	local ifc out=""
	for ifc in ${RIG_EDGE_CLIENT_IFS//,/ } "$RIG_EDGE_BACKEND_IF"; do
		if ip -n "$RIG_NS_EDGE" -d link show dev "$ifc" | grep -q 'prog/xdp id'; then
			out+="$ifc:native "
		elif ip -n "$RIG_NS_EDGE" -d link show dev "$ifc" | grep -q 'prog/xdpgeneric id'; then
			out+="$ifc:generic "
		elif tc -n "$RIG_NS_EDGE" filter show dev "$ifc" ingress 2>/dev/null | grep -q 'shift_tc_'; then
			out+="$ifc:clsact "
		elif [ -e "$RIG_BPFFS_DIR/links/$ifc:tcx" ] &&
			bpftool link show pinned "$RIG_BPFFS_DIR/links/$ifc:tcx" 2>/dev/null | grep -qE "tcx|type 11"; then
			out+="$ifc:tcx "
		else
			out+="$ifc:none "
		fi
	done
	printf '%s\n' "${out% }"
}

# e2e_kernel_fwd: IPv4 + IPv6 datagrams the edge's kernel forwarded (IP stack, not XDP).
e2e_kernel_fwd() {
	# shellcheck disable=SC2016 # awk's $7, not the shell's
	rig_edge sh -c 'awk "/^Ip: [0-9]/ {print \$7}" /proc/net/snmp; awk "/Ip6OutForwDatagrams/ {print \$2}" /proc/net/snmp6' |
		awk '{s += $1} END {print s + 0}'
}

# The backend name -> "addr:port" map for the analysis (IPv4 and IPv6 forms).
e2e_backend_map() {
	local b out=""
	for b in $RIG_BACKENDS; do
		out+="$b=$(rig_backend_addr "$b" 4):$RIG_BACKEND_PORT,[$(rig_backend_addr "$b" 6)]:$RIG_BACKEND_PORT "
	done
	printf '%s\n' "${out% }"
}

# e2e_py SUBCOMMAND ARGS...: the analysis (see E2E_PY below); prints ok/not ok lines,
# exits 1 if one failed.
e2e_py() {
	E2E_BACKEND_MAP=$(e2e_backend_map) "$RIG_PYTHON" -c "$E2E_PY" "$@"
}

# e2e_run_py SUBCOMMAND ARGS...: e2e_py, counting its checks into this shell's tally.
e2e_run_py() {
	local out rc=0
	out=$(e2e_py "$@") || rc=$?
	printf '%s\n' "$out"
	E2E_CHECKS=$((E2E_CHECKS + $(grep -c '^\(not \)\?ok - ' <<<"$out")))
	E2E_FAILS=$((E2E_FAILS + $(grep -c '^not ok - ' <<<"$out")))
	return "$rc"
}

# e2e_verify_new LABEL SVC WANT_BP TOL_BP BEFORE AFTER CLIENT_JSON...: the split checks
# for a batch of new connections (TOL_BP 0: exact).
e2e_verify_new() { e2e_run_py split "$@"; }

e2e_finish() {
	local rc=0
	[ "$E2E_FAILS" = 0 ] || rc=1
	echo "# $(basename "$0"): $((E2E_CHECKS - E2E_FAILS))/$E2E_CHECKS checks passed in $((SECONDS - E2E_T0))s"
	exit "$rc"
}

# --- the analysis, in Python ---------------------------------------------------------
E2E_PY=$(cat <<'PY'
import json, math, os, sys

def load_json(path):
    """The last JSON object line of a file (client.py prints one; stderr may precede it)."""
    last = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    last = json.loads(line)
                except ValueError:
                    pass
    if last is None:
        raise SystemExit(f"not ok - no JSON in {path}: " + open(path, errors="replace").read()[-400:])
    return last

def names():
    m = {}
    for item in os.environ.get("E2E_BACKEND_MAP", "").split():
        name, addrs = item.split("=", 1)
        for a in addrs.split(","):
            m[a] = name
    return m

def backends(status, svc):
    """{name: backend dict} of service svc in a status --json document."""
    nm = names()
    for s in status.get("services", []):
        if s.get("service") == svc:
            return {nm.get(b["backend"], b["backend"]): b for b in s.get("backends", [])}
    raise SystemExit(f"not ok - service {svc} not in status --json")

def service(status, svc):
    for s in status.get("services", []):
        if s.get("service") == svc:
            return s
    raise SystemExit(f"not ok - service {svc} not in status --json")

def delta(before, after, svc):
    b0, b1 = backends(before, svc), backends(after, svc)
    out = {}
    for n, b in b1.items():
        z = b0.get(n, {})
        out[n] = {k: b.get(k, 0) - z.get(k, 0)
                  for k in ("connections", "packets", "reply_packets", "errors")}
    return out

def color(name):
    return "green" if name.startswith("green") else "blue"

fails = 0
def check(cond, text):
    global fails
    print(("ok - " if cond else "not ok - ") + text, flush=True)
    if not cond:
        fails += 1

def sum_clients(paths):
    tot = {"ok": 0, "failed": 0, "errors": {}, "by_backend": {}, "p99": []}
    for p in paths:
        j = load_json(p)
        tot["ok"] += j.get("ok", 0)
        tot["failed"] += j.get("failed", 0)
        for k, v in j.get("errors", {}).items():
            tot["errors"][k] = tot["errors"].get(k, 0) + v
        for k, v in j.get("by_backend", {}).items():
            tot["by_backend"][k] = tot["by_backend"].get(k, 0) + v
        if j.get("p99_ms") is not None:
            tot["p99"].append(j["p99_ms"])
    return tot

def pct(a, b):
    return 100.0 * a / b if b else 0.0

def binom_tol(want_bp, n):
    """4.5 standard deviations, in basis points, of the green share of n flows
    at want_bp: a correct datapath lands outside want +- this once in ~150,000
    checks. A band narrower than that fails a correct split now and then (3.45
    sigma, +-5 points for 1,000 flows at 30 %, did once in ~40 CI runs)."""
    p = want_bp / 10000.0
    return int(math.ceil(4.5 * math.sqrt(p * (1 - p) / max(1, n)) * 10000))

def band(want_bp, tol_bp, n):
    """The half-width a split check of n flows uses: tol_bp, widened to
    binom_tol(); 0 (exact) stays 0. Returns (half-width, widened)."""
    floor = binom_tol(want_bp, n) if tol_bp else 0
    return max(tol_bp, floor), floor > tol_bp

REUSE = {"before": None, "after": None}

def reuse_note():
    """What the clients' SYN counter says about reused 5-tuples in this window."""
    try:
        b = open(REUSE["before"] + ".reuse").read().strip()
        a = open(REUSE["after"] + ".reuse").read().strip()
        n = int(a) - int(b)
    except (OSError, TypeError, ValueError):
        return ""
    if n <= 0:
        return "; the clients sent no SYN from a (source, port) used before"
    return (f"; the clients sent {n} SYNs from a (source, port) used before: a new connection "
            f"on a reused 5-tuple follows the stale connection-table entry and is not counted "
            f"as a new flow (see the 'reuse' check in test_e2e_rollback.sh)")

def counters_match(label, cl_by, d):
    """Every answer the clients got is a connection shift counted, backend by backend."""
    names_all = sorted(set(cl_by) | {n for n, x in d.items() if x["connections"]})
    parts, good = [], True
    for n in names_all:
        c, s = cl_by.get(n, 0), d.get(n, {}).get("connections", 0)
        parts.append(f"{n} {c}/{s}")
        good &= c == s
    check(good, f"{label}: shift counted every connection (client/shift per backend: "
          + ", ".join(parts) + ")" + ("" if good else reuse_note()))

def both_ways(label, d):
    """Both directions went through shift: per-backend packets and reply_packets grew."""
    conns = sum(x["connections"] for x in d.values())
    pk = sum(x["packets"] for x in d.values())
    rp = sum(x["reply_packets"] for x in d.values())
    weak = [n for n, x in d.items() if x["connections"] and
            (x["packets"] < 3 * x["connections"] or x["reply_packets"] < 3 * x["connections"])]
    check(conns > 0 and not weak,
          f"{label}: both directions through XDP: packets +{pk} (client->backend), "
          f"reply_packets +{rp} (backend->client) for {conns} connections"
          + (f"; under 3 per connection: {weak}" if weak else ""))

def cmd_split(a, match=True):
    label, svc, want, tol, before, after = a[0], a[1], int(a[2]), int(a[3]), a[4], a[5]
    cl = sum_clients(a[6:])
    REUSE.update(before=before, after=after)
    d = delta(json.load(open(before)), json.load(open(after)), svc)
    total = sum(cl["by_backend"].values())
    green = sum(v for k, v in cl["by_backend"].items() if color(k) == "green")
    sg = sum(x["connections"] for n, x in d.items() if color(n) == "green")
    st = sum(x["connections"] for x in d.values())
    share = pct(green, total)
    tol, widened = band(want, tol, total)
    lo, hi = (want - tol) / 100.0, (want + tol) / 100.0
    errs = ",".join(f"{k}={v}" for k, v in sorted(cl["errors"].items())) or "none"
    if tol == 0:
        cond = (green == total if want == 10000 else green == 0) and sg == (st if want == 10000 else 0)
        rng = "exact"
    else:
        cond = lo <= share <= hi and lo <= pct(sg, st) <= hi
        rng = f"tolerance {lo:g}-{hi:g}" + (f", 4.5 sigma of {total}" if widened else "")
    if not cond:
        rng += reuse_note()
    check(cond and total > 0 and cl["failed"] == 0,
          f"{label}: green {share:.1f}% of {total} (shift: {pct(sg, st):.1f}% of {st}; {rng}), "
          f"{cl['failed']} failed (errors: {errs}), client p99 {max(cl['p99'] or [0]):.1f} ms")
    if match:
        counters_match(label, cl["by_backend"], d)
        both_ways(label, d)

def cmd_delta(a):
    """delta SVC BEFORE AFTER: print the per-backend deltas as JSON."""
    print(json.dumps(delta(json.load(open(a[1])), json.load(open(a[2])), a[0]), sort_keys=True))

def cmd_get(a):
    """get FILE KEY.KEY...: a field of the last JSON line of FILE."""
    v = load_json(a[0])
    for k in a[1].split("."):
        v = v.get(k, 0) if isinstance(v, dict) else 0
    print(json.dumps(v) if isinstance(v, (dict, list)) else v)

def cmd_sticky(a):
    """sticky LABEL SVC BEFORE AFTER KA_JSON PHASE,PHASE... [PROBE_JSON...]: a keepalive
    run across weight changes: no connection changed backend or reconnected, no failure;
    shift counted exactly the keep-alive connections plus the probes' new connections."""
    label, svc, before, after, j, phases = a[0], a[1], a[2], a[3], load_json(a[4]), a[5].split(",")
    per = j.get("per_conn", [])
    first = [s[0][0] if s else "?" for s in per]
    single = sum(1 for s in per if len(s) == 1 and not s[0][0].startswith(("!", "#")))
    g = sum(1 for f in first if f.startswith("green"))
    b = sum(1 for f in first if f.startswith("blue"))
    ph = j.get("phases", {})
    phtxt = ", ".join(f"{p}: {ph.get(p, {}).get('requests', 0)}" for p in phases)
    check(single == j.get("conns") and j.get("changed_backend") == 0
          and j.get("connections") == j.get("conns"),
          f"{label}: {single}/{j.get('conns')} keep-alive connections kept their backend "
          f"({b} blue, {g} green) across phases {' -> '.join(phases)}; "
          f"{j.get('connections')} TCP connections opened, changed_backend {j.get('changed_backend')}")
    missing = [p for p in phases if ph.get(p, {}).get("ok", 0) < j.get("conns", 0)]
    check(j.get("resets") == 0 and j.get("failed") == 0 and j.get("requests", 0) > 0 and not missing,
          f"{label}: {j.get('requests')} keep-alive requests ({phtxt}), {j.get('failed')} failed, "
          f"{j.get('resets')} resets"
          + (f"; phases with fewer answers than connections: {missing}" if missing else ""))
    want = {}
    for f in first:
        want[f] = want.get(f, 0) + 1
    for p in a[6:]:
        for k, v in load_json(p).get("by_backend", {}).items():
            want[k] = want.get(k, 0) + v
    d = delta(json.load(open(before)), json.load(open(after)), svc)
    REUSE.update(before=before, after=after)
    counters_match(label + " (keep-alive and other clients)", want, d)
    reqs = {}
    for k, v in j.get("by_backend", {}).items():
        reqs[k] = reqs.get(k, 0) + v
    short = [n for n, r in reqs.items() if d.get(n, {}).get("packets", 0) < r
             or d.get(n, {}).get("reply_packets", 0) < r]
    check(not short, f"{label}: every keep-alive request crossed shift both ways (per backend "
          + ", ".join(f"{n} {r} req/{d.get(n, {}).get('packets', 0)} pkts/"
                      f"{d.get(n, {}).get('reply_packets', 0)} reply pkts" for n, r in sorted(reqs.items()))
          + ")")

def cmd_evict(a):
    """evict LABEL FILE PRE POST: keep-alive run across rollback --evict in phase POST."""
    label, j = a[0], load_json(a[1])
    per = j.get("per_conn", [])
    blue_ok = green_ok = 0
    nb = ng = 0
    bad = []
    for i, s in enumerate(per):
        seq = [w for w, _ in s]
        if not seq or seq[0].startswith(("!", "#")):
            bad.append((i, seq)); continue
        if color(seq[0]) == "blue":
            nb += 1
            if len(seq) == 1:
                blue_ok += 1
            else:
                bad.append((i, seq))
        else:
            ng += 1
            # green answers, then one failure (a reset, or the close it causes), a reconnect,
            # then only blue answers
            k = 0
            while k < len(seq) and seq[k].startswith("green"):
                k += 1
            fails_ = []
            while k < len(seq) and seq[k].startswith("!"):
                fails_.append(seq[k]); k += 1
            rest = seq[k:]
            if (len(fails_) == 1 and fails_[0] in ("!reset", "!closed") and rest[:1] == ["#reconnect"]
                    and len(rest) >= 2 and all(color(w) == "blue" for w in rest[1:]
                                              if not w.startswith("#"))
                    and rest.count("#reconnect") == 1):
                green_ok += 1
            else:
                bad.append((i, seq))
    check(not bad and ng > 0 and nb > 0,
          f"{label}: {green_ok}/{ng} green keep-alive connections were re-steered (one reset, "
          f"then blue on the next connection); {blue_ok}/{nb} blue ones untouched"
          + (f"; unexpected: {bad[:4]}" if bad else "") + ("" if ng else " (no green connection: retry)"))
    post = j.get("phases", {}).get(a[3], {})
    byb = post.get("by_backend", {})
    check(j.get("failed", 0) == j.get("resets", 0) + j.get("closed", 0) and
          j.get("failed", 0) <= ng,
          f"{label}: {j.get('failed')} failed keep-alive requests, all on evicted green "
          f"connections ({j.get('resets')} resets, {j.get('closed')} closed, {ng} green conns); "
          f"after the evict: " + ", ".join(f"{k} {v}" for k, v in sorted(byb.items())))

def cmd_rate(a):
    """rate FILE...: summary of client.py rate runs (one line of figures, JSON)."""
    tot = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0, "errors": {}, "by_backend": {}}
    for p in a:
        j = load_json(p)
        for k in ("sent", "ok", "failed", "skipped"):
            tot[k] += j.get(k, 0)
        for k, v in j.get("errors", {}).items():
            tot["errors"][k] = tot["errors"].get(k, 0) + v
        for k, v in j.get("by_backend", {}).items():
            tot["by_backend"][k] = tot["by_backend"].get(k, 0) + v
    print(json.dumps(tot, sort_keys=True))

def cmd_ratecheck(a):
    """ratecheck LABEL MAXFAIL KINDS FILE...: client.py rate runs: at most MAXFAIL failed,
    each of a kind in KINDS (comma list; "-" none), nothing skipped."""
    label, maxfail, kinds = a[0], int(a[1]), set(a[2].split(",")) - {"-"}
    tot = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0, "errors": {}, "by_backend": {}}
    secs = 0
    for p in a[3:]:
        j = load_json(p)
        secs = max(secs, j.get("elapsed_s", 0))
        for k in ("sent", "ok", "failed", "skipped"):
            tot[k] += j.get(k, 0)
        for k, v in j.get("errors", {}).items():
            tot["errors"][k] = tot["errors"].get(k, 0) + v
        for k, v in j.get("by_backend", {}).items():
            tot["by_backend"][k] = tot["by_backend"].get(k, 0) + v
    other = {k: v for k, v in tot["errors"].items() if k not in kinds and k != "skipped"}
    byb = ", ".join(f"{k} {v}" for k, v in sorted(tot["by_backend"].items()))
    errs = ",".join(f"{k}={v}" for k, v in sorted(tot["errors"].items())) or "none"
    check(tot["failed"] <= maxfail and not other and tot["skipped"] == 0 and tot["ok"] > 0,
          f"{label}: {tot['sent']} new connections in {secs:.1f}s from {len(a) - 3} client(s), "
          f"{tot['ok']} ok, {tot['failed']} failed (allowed {maxfail}"
          + (f" of kind {','.join(sorted(kinds))}" if kinds else "") + f"), {tot['skipped']} skipped; "
          f"errors: {errs}; by backend: {byb}")

def cmd_band(a):
    """band WANT_BP TOL_BP N: the half-width, in basis points, of a split check of N flows."""
    print(band(int(a[0]), int(a[1]), int(a[2]))[0])

def cmd_match(a):
    """match LABEL SVC BEFORE AFTER CLIENT_JSON...: counters vs the clients only."""
    label, svc, before, after = a[:4]
    d = delta(json.load(open(before)), json.load(open(after)), svc)
    by = {}
    for p in a[4:]:
        for k, v in load_json(p).get("by_backend", {}).items():
            by[k] = by.get(k, 0) + v
    counters_match(label, by, d)
    both_ways(label, d)

cmds = {"split": cmd_split, "split-nomatch": lambda a: cmd_split(a, match=False), "delta": cmd_delta, "get": cmd_get, "sticky": cmd_sticky,
        "evict": cmd_evict, "rate": cmd_rate, "ratecheck": cmd_ratecheck, "match": cmd_match, "band": cmd_band}
cmds[sys.argv[1]](sys.argv[2:])
sys.exit(1 if fails else 0)
PY
)
