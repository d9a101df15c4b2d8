#!/bin/bash
# shiftd --detach, as the README ("Remove") and debian/shift.prerm have an operator run it,
# for each attachment: clsact (SHIFT_TC_LEGACY=1: the legacy path of Debian 12's 6.1),
# tcx (TC on kernels with tcx) and XDP:
#  (a) with shiftd running, --detach is refused: exit 1, the message names shiftd's pid
#      and says "systemctl stop shiftd", and nothing changes: the programs stay, status
#      says attached, the VIP keeps splitting, set-weight still works;
#  (b) shiftd stopped and bpffs_dir removed by hand (rm -r): shift's clsact filter
#      outlives its pins and keeps splitting the VIP with no map in sight (tcx and XDP
#      links go with their pins); --detach finds the filter by its handle and priority
#      and its program's name, removes it and says so, and the VIP goes dark;
#  (c) bpffs_dir changed in the config since the programs were attached: --detach with
#      the new config finds and removes them all the same (XDP and tcx links by the
#      interface and their program's name);
#  (d) (after (a), under the same shiftd) --detach --force detaches, and that shiftd
#      notices: its log says so and its status no longer says attached.
# Then (e): another tool's programs on the configured interfaces (a clsact filter at
# shift's own handle and priority, one at another priority, an XDP program, none of them
# named shift_*) are left alone by --detach, which says so.
# DETACH_VARIANTS (default "clsact tcx xdp") picks the attachments. Exit 0 pass, 77
# skipped, 1 fail.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=agent_lib.sh
. "$HERE/agent_lib.sh"
cd "$AGENT_ROOT"

rig_probe || rig_skip "$RIG_SKIP_REASON"
agent_bins
command -v tc >/dev/null 2>&1 || rig_skip "missing command: tc"

RIG_CLIENTS=1 RIG_BLUE=1 RIG_GREEN=1 RIG_QUIET=1 rig_up
rig_neigh_permanent
t_note "rig $RIG_ID up in $((SECONDS - T_START))s; $RIG_DIR"
EDGE_IFS="${RIG_EDGE_CLIENT_IFS//,/ } $RIG_EDGE_BACKEND_IF"
N_IF=$(wc -w <<<"$EDGE_IFS")

# kprogs: "IF:HOOK:NAME" for every program on the edge's interfaces as the kernel reports
# it, sorted: XDP (ip link), clsact filters (tc: HOOK clsact/PREF/HANDLE; a filter of
# another kind shows its kind for NAME) and tcx (BPF_PROG_QUERY: no tool of Debian 12
# lists tcx programs). Names are the kernel's, cut at 15 characters.
kprogs() {
	# shellcheck disable=SC2086 # one word per interface
	rig_edge "$RIG_PYTHON" -c '
import ctypes, json, os, socket, struct, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
NR_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)

def tcx_ids(ifname):  # BPF_PROG_QUERY (16), BPF_TCX_INGRESS (46); no tcx: EINVAL
    if NR_BPF is None:
        return []
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(64)
    struct.pack_into("<IIIIQI", attr, 0, socket.if_nametoindex(ifname), 46, 0, 0,
                     ctypes.addressof(ids), 64)
    if libc.syscall(NR_BPF, 16, attr, 64) != 0:
        return []
    return list(ids[:struct.unpack_from("<I", attr, 24)[0]])

def prog_name(i):
    r = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(i)],
                       capture_output=True, text=True)
    try:
        return json.loads(r.stdout).get("name", "?")[:15]  # bpftool: the BTF name, in full
    except ValueError:
        return "?"

out = []
for ifc in sys.argv[1:]:
    link = json.loads(subprocess.check_output(["ip", "-d", "-j", "link", "show", "dev", ifc]))[0]
    xdp = link.get("xdp", {})
    for a in xdp.get("attached", [xdp] if "prog" in xdp else []):
        out.append("%s:xdp:%s" % (ifc, a["prog"]["name"]))
    r = subprocess.run(["tc", "-j", "filter", "show", "dev", ifc, "ingress"],
                       capture_output=True, text=True)
    for f in json.loads(r.stdout or "[]"):
        o = f.get("options")
        if o is None:
            continue
        if f.get("kind") == "bpf":
            out.append("%s:clsact/%s/%s:%s" % (ifc, f["pref"], o.get("handle"),
                                               o.get("prog", {}).get("name", "?")))
        else:
            out.append("%s:clsact/%s:%s" % (ifc, f["pref"], f.get("kind")))
    for i in tcx_ids(ifc):
        out.append("%s:tcx:%s" % (ifc, prog_name(i)))
print(" ".join(sorted(out)))' $EDGE_IFS
}

# shift_progs: kprogs, shift's only
shift_progs() { kprogs | tr ' ' '\n' | grep ':shift_' | tr '\n' ' ' | sed 's/ $//' || true; }

# want_progs HOOK: what shift runs on the edge with this hook
want_progs() {
	local ifc out="" name
	for ifc in $EDGE_IFS; do
		if [ "$ifc" = "$RIG_EDGE_BACKEND_IF" ]; then name=backen; else name=client; fi
		case $1 in
		xdp) out+=" $ifc:xdp:shift_xdp_${name:0:5}" ;;
		tcx) out+=" $ifc:tcx:shift_tc_$name" ;;
		clsact) out+=" $ifc:clsact/1/0x5f1:shift_tc_$name" ;;
		esac
	done
	tr ' ' '\n' <<<"${out# }" | sort | tr '\n' ' ' | sed 's/ $//'
}

# split: "ok=N failed=N green=N" of 40 new connections to the IPv4 VIP from cli1
split() {
	rig_client_py cli1 new --url "$RIG_URL" --count 40 --concurrency 8 --timeout 1 --deadline 20 |
		"$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print("ok=%d failed=%d green=%d" % (d["ok"], d["failed"], d["by_backend"].get("green1", 0)))'
}
splitting() { # SPLIT: every connection answered, by blue and green both
	case $1 in ok=40\ failed=0\ green=[1-9]*) [ "${1##*green=}" -lt 40 ] ;; *) false ;; esac
}
dark() { case $1 in "ok=0 failed=40 "*) true ;; *) false ;; esac; }

# start LOG [ENV=VALUE...]: shiftd with the current config, bounded wait (30 s: the
# verifier takes its time on a busy machine) for "ready:".
start() {
	local log=$1 i
	shift
	rig_spawn edge "$log" env "$@" "$SHIFTD" --config "$RIG_CONFIG"
	SHIFTD_PID=$RIG_LAST_PID
	for ((i = 0; i < 300; i++)); do
		grep -q 'ready:' "$log" 2>/dev/null && return 0
		kill -0 "$SHIFTD_PID" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/#   /' "$log"
	return 1
}

# detach LOG [ARGS...]: shiftd --detach with the current config; its exit status in RC
detach() {
	local log=$1
	shift
	RC=0
	rig_edge timeout 60 "$SHIFTD" --config "$RIG_CONFIG" --detach "$@" >"$log" 2>&1 || RC=$?
	sed 's/^/#   | /' "$log"
}

# attached_ifaces: how many interfaces `shiftctl status --json` says are attached
attached_ifaces() {
	ctl status --json | "$RIG_PYTHON" -c '
import json, sys
print(sum(1 for a in json.load(sys.stdin)["attach"] if a["attached"]))'
}

for v in ${DETACH_VARIANTS:-clsact tcx xdp}; do
	t_section "$v"
	D=$RIG_DIR/$v
	mkdir -p "$D"
	env=(SHIFT_TC_LEGACY=0) attach=tc
	case $v in
	clsact) env=(SHIFT_TC_LEGACY=1) ;;
	xdp) attach=xdp ;;
	esac
	BPFFS=$RIG_BPFFS_DIR/$v
	rig_write_config "$D/shiftd.conf" attach=$attach bpffs_dir="$BPFFS"
	start "$D/shiftd.1.log" "${env[@]}" || t_bail "$v: shiftd starts"
	if [ "$v" = tcx ] && ! grep -q 'TC mode tcx' "$D/shiftd.1.log"; then
		t_note "tcx: the kernel has no tcx (shiftd fell back to clsact): variant skipped"
		shiftd_stop
		detach "$D/detach.0.log" >/dev/null
		continue
	fi
	WANT=$(want_progs "$v")
	t_expect "$v: shift's programs in the kernel" "$(shift_progs)" "$WANT"
	ctl set-weight web 50 --force >/dev/null || t_notok "$v: set-weight web 50 --force"
	s=$(split)
	t_check "$v: the VIP splits at 50 % ($s)" splitting "$s"

	# (a) --detach under a running shiftd: refused, nothing changes
	detach "$D/detach.a.log"
	t_expect "$v (a): --detach with shiftd running: exit" "$RC" 1
	t_check "$v (a): ... the message names shiftd's pid $SHIFTD_PID and says stop it first" \
		grep -q "pid $SHIFTD_PID.*stop it first: systemctl stop shiftd" "$D/detach.a.log"
	t_expect "$v (a): ... the programs stay" "$(shift_progs)" "$WANT"
	t_expect "$v (a): ... status: interfaces attached" "$(attached_ifaces)" "$N_IF"
	s=$(split)
	t_check "$v (a): ... the VIP still splits ($s)" splitting "$s"
	rc=0
	ctl set-weight web 40 >/dev/null || rc=$?
	t_expect "$v (a): ... set-weight web 40: exit" "$rc" 0
	t_check "$v (a): ... the maps stay pinned" test -e "$BPFFS/maps/shift_weights"

	# (d) --detach --force under the same shiftd: detached, and shiftd notices
	detach "$D/detach.d.log" --force
	t_expect "$v (d): --detach --force with shiftd running: exit" "$RC" 0
	t_check "$v (d): ... it warns that shiftd (pid $SHIFTD_PID) runs on" \
		grep -q "shiftd (pid $SHIFTD_PID) is running.*--force" "$D/detach.d.log"
	t_expect "$v (d): ... no program of shift's left" "$(shift_progs)" ""
	ok=""
	for ((i = 0; i < 50; i++)); do
		n=$(grep -c 'no longer attached' "$D/shiftd.1.log") || true
		[ "$n" = "$N_IF" ] && [ "$(attached_ifaces)" = 0 ] && ok=1 && break
		sleep 0.1
	done
	t_check "$v (d): ... shiftd notices: its log says so for each interface ($n), status: none attached" \
		test -n "$ok"
	shiftd_stop

	# (b) shiftd stopped, the pins removed by hand, then --detach
	start "$D/shiftd.2.log" "${env[@]}" || t_bail "$v: shiftd starts again"
	t_expect "$v (b): attached again" "$(shift_progs)" "$WANT"
	shiftd_stop
	rm -r "$BPFFS"
	s=$(split)
	if [ "$v" = clsact ]; then
		t_expect "$v (b): after rm -r $BPFFS the filters still run" "$(shift_progs)" "$WANT"
		t_check "$v (b): ... and split the VIP, unmanaged ($s)" splitting "$s"
	else
		t_expect "$v (b): rm -r $BPFFS takes the links with it" "$(shift_progs)" ""
		t_check "$v (b): ... the VIP is dark ($s)" dark "$s"
	fi
	detach "$D/detach.b.log"
	t_expect "$v (b): --detach: exit" "$RC" 0
	t_expect "$v (b): ... no program of shift's left" "$(shift_progs)" ""
	s=$(split)
	t_check "$v (b): ... the VIP is dark ($s)" dark "$s"
	if [ "$v" = clsact ]; then
		n=$(grep -c 'removed the clsact ingress filter .*no pin of it under bpffs_dir' \
			"$D/detach.b.log") || true
		t_expect "$v (b): ... it says it removed each filter (without a pin)" "$n" "$N_IF"
	fi
	t_check "$v (b): ... its summary counts them" grep -q \
		"shift detached: $([ "$v" = clsact ] && echo "$N_IF programs" || echo "0 programs") removed" \
		"$D/detach.b.log"

	# (c) bpffs_dir changed since the programs were attached
	start "$D/shiftd.3.log" "${env[@]}" || t_bail "$v: shiftd starts a third time"
	t_expect "$v (c): attached again" "$(shift_progs)" "$WANT"
	shiftd_stop
	rig_write_config "$D/moved.conf" attach=$attach bpffs_dir="$BPFFS-moved" # bpffs: no "."
	detach "$D/detach.c.log"
	t_expect "$v (c): --detach with bpffs_dir changed: exit" "$RC" 0
	t_expect "$v (c): ... no program of shift's left" "$(shift_progs)" ""
	n=$(grep -c 'interface .*: removed .*\(not pinned under\|no pin of it under\) bpffs_dir' \
		"$D/detach.c.log") || true
	t_expect "$v (c): ... it says it removed each (not pinned there)" "$n" "$N_IF"
	rm -rf "$BPFFS"
done

# (e) another tool's programs are left alone
t_section "(e) another tool's programs"
FOREIGN=$RIG_DIR/foreign.bpf.o
cat >"$RIG_DIR/foreign.bpf.c" <<'EOF'
#include <linux/bpf.h>
__attribute__((section("tc"), used)) int other_tc(struct __sk_buff *skb) { return -1; }
__attribute__((section("xdp"), used)) int other_xdp(struct xdp_md *ctx) { return 2; }
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
EOF
CIF=${RIG_EDGE_CLIENT_IFS%%,*}
# foreign_install: clsact filters on CIF at shift's handle and prio and at another; XDP on
# the backend side
foreign_install() {
	{ rig_edge tc qdisc show dev "$CIF" | grep -q clsact || rig_edge tc qdisc add dev "$CIF" clsact; } &&
		rig_edge tc filter add dev "$CIF" ingress prio 1 handle 0x5f1 bpf da obj "$FOREIGN" sec tc &&
		rig_edge tc filter add dev "$CIF" ingress prio 7 handle 7 bpf da obj "$FOREIGN" sec tc &&
		rig_edge ip link set dev "$RIG_EDGE_BACKEND_IF" xdpgeneric obj "$FOREIGN" sec xdp
}
if ! ${CLANG:-clang} -O2 -g -target bpf -idirafter "/usr/include/$(${CC:-cc} -dumpmachine)" \
	-c "$RIG_DIR/foreign.bpf.c" -o "$FOREIGN" 2>"$RIG_DIR/foreign.err"; then
	t_note "no clang for a BPF object ($(head -n 1 "$RIG_DIR/foreign.err")): (e) skipped"
elif ! foreign_install 2>"$RIG_DIR/foreign.err"; then
	t_notok "(e): installing another tool's programs: $(head -n 1 "$RIG_DIR/foreign.err")"
else
	FWANT=$(kprogs)
	t_note "another tool's programs: $FWANT"
	rig_write_config "$RIG_DIR/e.conf" attach=tc bpffs_dir="$RIG_BPFFS_DIR/e"
	detach "$RIG_DIR/detach.e.log"
	t_expect "(e) --detach: exit" "$RC" 0
	t_expect "(e) ... every program of another tool stays" "$(kprogs)" "$FWANT"
	t_check "(e) ... it says the filter at shift's handle and priority is not shift's" \
		grep -q "clsact ingress filter at handle 0x5f1 prio 1 runs program other_tc .*not shift's: left" \
		"$RIG_DIR/detach.e.log"
	t_check "(e) ... and the XDP program" \
		grep -q "XDP program other_xdp .*not shift's, left" "$RIG_DIR/detach.e.log"
	t_check "(e) ... and removed nothing" grep -q "shift detached: 0 programs removed" \
		"$RIG_DIR/detach.e.log"
fi

t_summary
