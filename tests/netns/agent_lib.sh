# shellcheck shell=bash
# Helpers shared by test_agent.sh and test_cli.sh: TAP-like check lines, shiftd
# start/stop through the rig, shiftctl, and readers of the pinned maps.
#
#   . tests/netns/lib.sh; . tests/netns/agent_lib.sh
#   agent_bins                       # SHIFTD, SHIFTCTL (from $OUTPUT, default .output)
#   t_expect "weight word" "$got" 2500
#   t_summary                        # prints the summary, returns 0 if every check passed

[ -n "${_AGENT_LIB_LOADED:-}" ] && return 0
_AGENT_LIB_LOADED=1

AGENT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAPSNAP_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mapsnap.py
T_NAME=${T_NAME:-$(basename "$0" .sh)}
T_PASS=0
T_FAIL=0
T_START=$SECONDS
T_FAILED=()

# --- check lines ----------------------------------------------------------------

t_ok() { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
t_notok() {
	T_FAIL=$((T_FAIL + 1))
	T_FAILED+=("$1")
	echo "not ok - $*"
}
t_note() { echo "# $*"; }
t_section() { echo "# --- $* ($((SECONDS - T_START))s)"; }

# t_expect DESC GOT WANT
t_expect() {
	if [ "$2" = "$3" ]; then t_ok "$1 ($2)"; else t_notok "$1: got '$2', want '$3'"; fi
}
# t_expect_ge DESC GOT MIN
t_expect_ge() {
	if [ "$2" -ge "$3" ] 2>/dev/null; then t_ok "$1 ($2 >= $3)"; else t_notok "$1: got '$2', want >= $3"; fi
}
# t_check DESC CMD...: ok if CMD succeeds
t_check() {
	local d=$1
	shift
	if "$@"; then t_ok "$d"; else t_notok "$d"; fi
}

# t_summary: one closing line; returns 1 if a check failed.
t_summary() {
	local f
	echo "# $T_NAME: $T_PASS ok, $T_FAIL not ok, $((SECONDS - T_START))s"
	for f in "${T_FAILED[@]}"; do echo "#   failed: $f"; done
	[ "$T_FAIL" -eq 0 ] && [ "$T_PASS" -gt 0 ]
}

# t_bail MSG: a set-up step failed; nothing after it can be checked.
t_bail() {
	t_notok "$*"
	t_summary || true
	exit 1
}

# --- binaries ---------------------------------------------------------------------

agent_bins() {
	local out=${OUTPUT:-.output}
	case $out in /*) ;; *) out=$AGENT_ROOT/$out ;; esac
	SHIFTD=$out/shiftd
	SHIFTCTL=$out/shiftctl
	if [ ! -x "$SHIFTD" ] || [ ! -x "$SHIFTCTL" ]; then
		t_bail "no $SHIFTD or $SHIFTCTL: run 'make all' first"
	fi
	command -v bpftool >/dev/null 2>&1 || rig_skip "missing command: bpftool"
}

# --- shiftd -------------------------------------------------------------------------

# shiftd_start LOG [BINARY]: start shiftd in the edge netns, wait (bounded) until its
# log says "ready:". Sets SHIFTD_PID and SHIFTD_LOG. Returns 1 (and shows the log) if
# it does not.
shiftd_start() {
	local log=$1 bin=${2:-$SHIFTD} i
	rig_spawn edge "$log" "$bin" --config "$RIG_CONFIG"
	SHIFTD_PID=$RIG_LAST_PID
	# shellcheck disable=SC2034 # for the callers
	SHIFTD_LOG=$log
	# 30 s: loading the programs takes seconds, more on a machine busy with
	# other tests' rigs
	for ((i = 0; i < 300; i++)); do
		grep -q 'ready:' "$log" 2>/dev/null && return 0
		kill -0 "$SHIFTD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# shiftd did not get ready; its log:"
	sed 's/^/#   /' "$log"
	return 1
}

# shiftd_stop: SIGTERM (then SIGKILL) the shiftd we started.
shiftd_stop() { rig_kill "$SHIFTD_PID"; }

# shiftd_kill9: SIGKILL the shiftd we started (no clean-up at all), and reap it.
shiftd_kill9() {
	kill -KILL "$SHIFTD_PID"
	{ wait "$SHIFTD_PID"; } 2>/dev/null || true
}

# ctl ARGS...: shiftctl with the rig's config, in the edge netns.
ctl() { rig_edge "$SHIFTCTL" -c "$RIG_CONFIG" "$@"; }

# --- the pinned maps -----------------------------------------------------------------

# status_get NAME KEY: a field of the service in `shiftctl status NAME --json`
# (KEY like green_weight_bp, rolled_back, last_rollback.reason); agent_running: top level.
status_get() {
	ctl status "$1" --json | "$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
if sys.argv[2] == "agent_running":
    print(str(d["agent_running"]).lower()); sys.exit(0)
v = [s for s in d["services"] if s["service"] == sys.argv[1]][0]
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}

# flows_keys MAP: one line per connection-table entry (sorted), for comparing two
# moments: "KEY-HEX VALUE-HEX", the value cut to what never changes for a flow
# (backend_id, hash, service_id, color: struct shift_flow's first 11 bytes).
flows_keys() {
	rig_edge bpftool -j map dump pinned "$RIG_BPFFS_DIR/maps/$1" |
		"$RIG_PYTHON" -c '
import json, sys
for e in sorted(json.load(sys.stdin), key=lambda e: e["key"]):
    print("".join(x[2:] for x in e["key"]), "".join(x[2:] for x in e["value"][:11]))'
}

# flows_moved FILE: for the flows in FILE (flows_keys output), "MOVED TOTAL": how many
# of them a NEW flow with the same hash would now send to another backend (their
# pool's ring, read from the pinned shift_rings, no longer points at their backend).
flows_moved() {
	"$RIG_PYTHON" -c '
import json, struct, subprocess, sys
RING = 16381  # SHIFT_RING_SIZE
CHUNKS = (RING + 31) // 32  # SHIFT_RING_CHUNKS
def fmix32(h, n):  # include/shift/flow_hash.h
    h ^= n; h ^= h >> 16; h = (h * 0x85ebca6b) & 0xffffffff; h ^= h >> 13
    h = (h * 0xc2b2ae35) & 0xffffffff; h ^= h >> 16
    return h
moved = total = 0
for line in open(sys.argv[2]):
    be, h, sid, color = struct.unpack_from("<IIHB", bytes.fromhex(line.split()[1]))
    slot = fmix32(h ^ 0x9e3779b9, 4) % RING
    idx = (sid * 2 + color) * CHUNKS + slot // 32  # 32 slots of 2 bytes per value
    out = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned", sys.argv[1], "key"] +
                         [str(b) for b in struct.pack("<I", idx)],
                         capture_output=True, text=True, check=True).stdout
    value = bytes(int(x, 16) for x in json.loads(out)["value"])
    total += 1
    moved += struct.unpack_from("<H", value, 2 * (slot % 32))[0] != be
print(moved, total)' "$RIG_BPFFS_DIR/maps/shift_rings" "$1"
}

# xdp_prog_ids: "IFNAME=PROG_ID" per interface with an XDP program in the edge netns,
# sorted (from `bpftool net` run inside the edge netns).
xdp_prog_ids() {
	rig_edge bpftool -j net show | "$RIG_PYTHON" -c '
import json, sys
out = []
for blk in json.load(sys.stdin):
    for x in blk.get("xdp", []):
        out.append("%s=%s" % (x["devname"], x["id"]))
print(" ".join(sorted(out)))'
}

# maps_snap FILE: snapshot every pinned map but the ring buffer (mapsnap.py); the
# Maglev rings only for the first NSVC services (512 values of 32 slots per ring; the
# full array, 256 services, with MAPSNAP_FULL=1).
maps_snap() {
	local head=()
	[ "${MAPSNAP_FULL:-0}" = 1 ] || head=(--head "shift_rings=$((${MAPSNAP_NSVC:-4} * 2 * 512))")
	"$RIG_PYTHON" "$MAPSNAP_PY" save "$RIG_BPFFS_DIR/maps" "$1" --skip shift_samples "${head[@]}"
}

# maps_diff A B: prints the differences; 0 if none.
maps_diff() { "$RIG_PYTHON" "$MAPSNAP_PY" diff "$1" "$2"; }

# ka_start NS LOG URL CONNS DURATION: a client.py keepalive run in the background; its
# phase is the first line of $KA_CTL ("stop" ends it); waits (bounded) until every
# connection answered. Sets KA_PID, KA_LOG and KA_CTL.
# shellcheck disable=SC2034 # KA_* are for the callers
ka_start() {
	local ns=$1 log=$2 url=$3 conns=$4 dur=$5 i
	KA_LOG=$log
	KA_CTL=$RIG_DIR/ka.$$.$RANDOM.ctl
	KA_READY=$KA_CTL.ready
	echo start >"$KA_CTL"
	rig_spawn "$ns" "$log" "$RIG_PYTHON" "$RIG_CLIENT_PY" keepalive --url "$url" \
		--conns "$conns" --duration "$dur" --interval 50 --timeout 2 \
		--control-file "$KA_CTL" --ready-file "$KA_READY"
	KA_PID=$RIG_LAST_PID
	for ((i = 0; i < 100; i++)); do
		[ -e "$KA_READY" ] && return 0
		kill -0 "$KA_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# keepalive client not ready; its output:"
	sed 's/^/#   /' "$log"
	return 1
}
