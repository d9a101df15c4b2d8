# shellcheck shell=bash
# Helpers of the hostile-input and fault tests (test_synflood.sh, test_chaos_*.sh), on
# top of e2e_lib.sh. Sourced, never run.
#
#   . "$HERE/chaos_lib.sh"          # sources e2e_lib.sh; CHAOS_LONG=1: long versions
#   chaos_need_synflood             # builds/locates $SYNFLOOD (exit 1 if it cannot)
#   chaos_spoof_route               # after e2e_up: the spoofed prefix routes back to cli1
#   chaos_flood COUNT OUT           # COUNT spoofed SYNs (or ACKs) from cli1 (bounded), JSON to OUT
#   chaos_client NS OUT ARGS...     # client.py from a fresh source address (background)
#   chaos_rate / chaos_ka           # client.py rate / keepalive through chaos_client
#   flows_of SRC | flows_of 0 count # shift_flows4 entries of source SRC / all of them
#   map_entries MAP                 # how many entries a pinned map of the edge holds
#   tcp_snap OUT / why_failed ...    # kernel TCP and datapath counters, printed on a failure
#   dp FILE KEY / svc FILE SVC KEY  # fields of a status --json snapshot
#   rate_sum FILE...                # one line: sent ok failed skipped errors by_backend
#                                   #           max_failed_seconds(first-last) p99

# shellcheck disable=SC2034 # CHAOS_* are for the callers
HERE=${HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

CHAOS_LONG=${CHAOS_LONG:-0}
SYNFLOOD=$E2E_OUT/tests/synflood
CHAOS_SPOOF=198.18.128.0/17
CHAOS_PPS=${SYNFLOOD_PPS:-60000} # paced: other tests share this 2-core machine

chaos_need_synflood() {
	if [ ! -x "$SYNFLOOD" ]; then
		make -s -C "$E2E_ROOT" "$SYNFLOOD" >/dev/null 2>&1 ||
			{ echo "not ok - setup: $SYNFLOOD not built (make tests)"; exit 1; }
	fi
}

# The spoofed sources' SYN-ACKs go back to cli1, which does not forward: dropped there.
chaos_spoof_route() {
	ip -n "$RIG_NS_EDGE" route replace "$CHAOS_SPOOF" via 198.18.1.2 || return 1
	CHAOS_EDGE_MAC=$(_rig_mac "$RIG_NS_EDGE" "${RIG_ID}c1")
}

# chaos_flood COUNT OUT: spoofed SYNs from cli1 to the VIP (foreground; at most COUNT
# frames and COUNT/(PPS/2)+30 seconds). CHAOS_FLOOD_CPU=N: the sender on CPU N only
# (a veth runs the peer's XDP on the sending CPU, so the flood's inserts and
# evictions hit that CPU's LRU list: shift's tables have per-CPU LRU lists).
# CHAOS_FLOOD_ACK=1: bare ACKs of no connection instead of SYNs.
chaos_flood() {
	local secs=$(($1 / (CHAOS_PPS / 2) + 30)) pin=() ack=()
	[ -z "${CHAOS_FLOOD_CPU:-}" ] || pin=(taskset -c "$CHAOS_FLOOD_CPU")
	[ "${CHAOS_FLOOD_ACK:-0}" = 0 ] || ack=(--ack)
	[ "${CHAOS_FLOOD_PAIR:-0}" = 0 ] || ack=(--pair)
	rig_nsenter cli1 "${pin[@]}" "$SYNFLOOD" --ifname "${RIG_ID}e1" --dst-mac "$CHAOS_EDGE_MAC" \
		--dst "$RIG_VIP" --dport "$RIG_VIP_PORT" --src-prefix "$CHAOS_SPOOF" --count "$1" \
		--pps "$CHAOS_PPS" --seconds "$secs" "${ack[@]}" >"$2" 2>&1
}

# map_entries MAP: how many entries the edge's pinned map MAP holds.
map_entries() {
	rig_edge bpftool -j map dump pinned "$RIG_BPFFS_DIR/maps/$1" | "$RIG_PYTHON" -c '
import json, sys
print(len(json.load(sys.stdin)))'
}

# flows_of SRC: "KEY VALUE[:11]" (hex) of every shift_flows4 entry from SRC, sorted; the
# value part is what never changes for a flow (backend_id, hash, service_id, color).
# flows_of 0 count: the number of entries (map_entries shift_flows4).
flows_of() {
	if [ "${2:-}" = count ]; then
		map_entries shift_flows4
		return
	fi
	rig_edge bpftool -j map dump pinned "$RIG_BPFFS_DIR/maps/shift_flows4" | "$RIG_PYTHON" -c '
import json, socket, sys
src = socket.inet_aton(sys.argv[1])
for e in json.load(sys.stdin):
    k = bytes(int(x, 16) for x in e["key"])
    if k[:4] == src:
        print(k.hex(), bytes(int(x, 16) for x in e["value"][:11]).hex())' "$1" | sort
}

# dp FILE KEY: a datapath counter of a status --json snapshot
dp() {
	"$RIG_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["datapath"][sys.argv[2]])' "$1" "$2"
}

# svc FILE SVC KEY[.KEY]: a service field of a status --json snapshot
svc() {
	"$RIG_PYTHON" -c '
import json, sys
v = [s for s in json.load(open(sys.argv[1]))["services"] if s["service"] == sys.argv[2]][0]
for k in sys.argv[3].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1" "$2" "$3"
}

# tcp_snap OUT: the kernel's TCP counters of every client and backend namespace (the
# ones that tell who reset or dropped a connection), one "NS KEY VALUE" per line.
tcp_snap() {
	local ns
	for ns in $RIG_NS_CLIENTS $RIG_NS_BACKENDS; do
		nsenter --net="/run/netns/$ns" -- cat /proc/net/snmp /proc/net/netstat |
			awk -v ns="${ns#"$RIG_ID"-}" '
				$1 == "Tcp:" || $1 == "TcpExt:" {
					if (!($1 in hdr)) { for (i = 2; i <= NF; i++) k[$1, i] = $i; hdr[$1] = 1; next }
					for (i = 2; i <= NF; i++) print ns, k[$1, i], $i
				}'
	done >"$1"
}

# why_failed SNAP0 SNAP1 STATUS0 STATUS1: what moved between two tcp_snap and two status
# --json snapshots, as "# " lines: the counters that tell a reset or a drop by the
# kernel (a backend's listen queue, SYN cookies, RSTs sent) from one by shift
# (connect_fallback, SYN slot misses, insert failures).
why_failed() {
	"$RIG_PYTHON" - "$@" <<'PY'
import json, sys
KEYS = ("OutRsts", "AttemptFails", "EstabResets", "RetransSegs", "ListenOverflows",
        "ListenDrops", "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed",
        "TCPAbortOnData", "TCPAbortOnClose", "TCPReqQFullDrop", "TCPReqQFullDoCookies",
        "TCPTimeouts", "TCPSynRetrans", "TCPChallengeACK")
def snap(p):
    d = {}
    for line in open(p):
        ns, k, v = line.split()
        d[(ns, k)] = int(v)
    return d
a, b = snap(sys.argv[1]), snap(sys.argv[2])
by_ns = {}
for (ns, k), v in sorted(b.items()):
    dv = v - a.get((ns, k), 0)
    if k in KEYS and dv:
        by_ns.setdefault(ns, []).append(f"{k} +{dv}")
for ns, kv in by_ns.items():
    print(f"# kernel TCP counters, {ns}: " + ", ".join(kv))
da = json.load(open(sys.argv[3]))["datapath"]
db = json.load(open(sys.argv[4]))["datapath"]
moved = [f"{k} +{db[k] - da.get(k, 0)}" for k in sorted(db)
         if isinstance(db[k], int) and db[k] != da.get(k, 0)]
print("# shift's datapath counters: " + (", ".join(moved) or "none moved"))
PY
}

# rate_sum FILE...: client.py rate runs summed, one line:
#   SENT OK FAILED SKIPPED ERRORS BY_BACKEND FAILED_SECONDS P99_MS
# FAILED_SECONDS: how many one-second lines had a failure (an outage's length, to 1 s).
rate_sum() {
	"$RIG_PYTHON" - "$@" <<'PY'
import json, sys
tot = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0}
errs, byb, p99, fsec = {}, {}, [0], 0
for p in sys.argv[1:]:
    summary = None
    for line in open(p, errors="replace"):
        if not line.startswith("{"):
            continue
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("summary"):
            summary = j
        elif j.get("failed", 0) or j.get("skipped", 0):
            fsec += 1
    if summary is None:
        tot["failed"] += 1
        errs["no_summary"] = errs.get("no_summary", 0) + 1
        continue
    for k in tot:
        tot[k] += summary.get(k, 0)
    for k, v in summary.get("errors", {}).items():
        errs[k] = errs.get(k, 0) + v
    for k, v in summary.get("by_backend", {}).items():
        byb[k] = byb.get(k, 0) + v
    p99.append(summary.get("p99_ms") or 0)
print(tot["sent"], tot["ok"], tot["failed"], tot["skipped"],
      ",".join(f"{k}={v}" for k, v in sorted(errs.items())) or "none",
      ",".join(f"{k}={v}" for k, v in sorted(byb.items())) or "none", fsec, f"{max(p99):.1f}")
PY
}

# ka_sum FILE: a client.py keepalive result, one line:
#   CONNS TCP_CONNECTIONS REQUESTS FAILED RESETS CHANGED_BACKEND ERRORS BY_BACKEND
ka_sum() {
	"$RIG_PYTHON" - "$1" <<'PY'
import json, sys
j = {}
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("{"):
        try:
            j = json.loads(line)
        except ValueError:
            pass
print(j.get("conns", 0), j.get("connections", -1), j.get("requests", 0), j.get("failed", -1),
      j.get("resets", -1), j.get("changed_backend", -1),
      ",".join(f"{k}={v}" for k, v in sorted(j.get("errors", {}).items())) or "none",
      ",".join(f"{k}={v}" for k, v in sorted(j.get("by_backend", {}).items())) or "none")
PY
}

# chaos_client NS OUT CLIENT-ARGS...: client.py in NS in the background (rig_spawn), its
# connections to the VIP from a fresh source address of NS (IPv4); sets E2E_PID and
# E2E_SRC. (e2e_use_src calls e2e_src in a command substitution, so its counter never
# advances and every client run of a namespace gets the same address.)
chaos_client() {
	local ns=$1 out=$2 i=${1#cli}
	shift 2
	e2e_src "$ns" 4 >"$RIG_DIR/.src.$ns" || return 1 # not $(...): e2e_src advances a counter
	E2E_SRC=$(<"$RIG_DIR/.src.$ns")
	ip -n "$RIG_ID-$ns" route replace "$RIG_VIP/32" via "198.18.$i.1" src "$E2E_SRC" || return 1
	rig_spawn "$ns" "$out" "$RIG_PYTHON" "$RIG_CLIENT_PY" "$@" || return 1
	E2E_PID=$RIG_LAST_PID
}

# chaos_ka NS OUT CONNS DURATION: a keep-alive client (chaos_client), waits until ready.
# Sets CHAOS_KA (pid), CHAOS_KA_SRC, CHAOS_KA_CTL.
chaos_ka() {
	CHAOS_KA_CTL=$RIG_DIR/ka.$RANDOM.control
	printf 'start\n' >"$CHAOS_KA_CTL"
	chaos_client "$1" "$2" keepalive --url "$RIG_URL" --conns "$3" --duration "$4" \
		--interval 200 --timeout 3 --control-file "$CHAOS_KA_CTL" --ready-file "$CHAOS_KA_CTL.ready" ||
		return 1
	# shellcheck disable=SC2034 # for the callers
	CHAOS_KA=$E2E_PID CHAOS_KA_SRC=$E2E_SRC
	e2e_wait_file "$CHAOS_KA_CTL.ready" 15
}

# ka_phase LABEL: the keep-alive client's phase ("stop" ends it)
ka_phase() { printf '%s\n' "$1" >"$CHAOS_KA_CTL.tmp" && mv -f "$CHAOS_KA_CTL.tmp" "$CHAOS_KA_CTL"; }

# chaos_rate NS OUT SECONDS [RATE]: new connections at RATE/s (default 100) in the
# background (chaos_client), CHAOS_CONCURRENCY (32) at most in flight; sets CHAOS_RATE (pid).
chaos_rate() {
	chaos_client "$1" "$2" rate --url "$RIG_URL" --rate "${4:-100}" --duration "$3" \
		--concurrency "${CHAOS_CONCURRENCY:-32}" --timeout 3 || return 1
	# shellcheck disable=SC2034 # for the callers
	CHAOS_RATE=$E2E_PID
}

# wait_log FILE PATTERN [COUNT] [SECONDS]: until FILE has COUNT lines matching (bounded)
wait_log() {
	local i
	for ((i = 0; i < ${4:-10} * 10; i++)); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] && return 0
		sleep 0.1
	done
	return 1
}
