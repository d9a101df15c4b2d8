#!/bin/bash
# XDP smoke test on the running kernel (run by vmtest/guest.sh; works on any root shell
# too): two fresh netns joined by a veth pair, every program of the BPF object loaded
# and pinned with `bpftool prog loadall`, the client XDP program attached to the
# receiving veth, then ping and a TCP echo must pass through it, and it must have run.
#
#   SMOKE_OBJ   BPF object (default $OUTPUT/shift.bpf.o, or shift_compat.bpf.o on a kernel
#               without bpf_cast_to_kern_ctx, before 6.2: the one shiftd loads there)
#   SMOKE_PROG  program to attach (default shift_xdp_client)
set -euo pipefail

OUT=${OUTPUT:-.output}
if grep -qw bpf_cast_to_kern_ctx /proc/kallsyms 2>/dev/null; then
	OBJ=${SMOKE_OBJ:-$OUT/shift.bpf.o}
else
	OBJ=${SMOKE_OBJ:-$OUT/shift_compat.bpf.o}
fi
PROG=${SMOKE_PROG:-shift_xdp_client}
NSA=shiftvm-a-$$
NSB=shiftvm-b-$$
PIN=/sys/fs/bpf/shiftvm-$$
ADDR_A=10.213.0.1
ADDR_B=10.213.0.2
PORT=8213

say() { echo "smoke: $*"; }
fail() { say "FAIL: $*" >&2; exit 1; }

stats_was=

cleanup() {
	[ -z "$stats_was" ] || sysctl -qw kernel.bpf_stats_enabled="$stats_was" 2>/dev/null || true
	ip netns del "$NSA" 2>/dev/null || true
	ip netns del "$NSB" 2>/dev/null || true
	rm -rf "$PIN"
}
trap cleanup EXIT

[ -f "$OBJ" ] || fail "$OBJ is missing (build it with 'make')"
for t in ip bpftool nsenter; do
	command -v "$t" >/dev/null || fail "$t not found"
done
if command -v ping >/dev/null; then
	PING=(ping)
elif command -v busybox >/dev/null; then
	PING=(busybox ping)
else
	fail "no ping (iputils-ping or busybox)"
fi

in_a() { ip netns exec "$NSA" "$@"; }
in_b() { ip netns exec "$NSB" "$@"; }
# bpftool needs the bpffs at /sys/fs/bpf, which `ip netns exec` hides: only enter the netns.
bpftool_b() { nsenter --net="/run/netns/$NSB" bpftool "$@"; }

ip netns add "$NSA"
ip netns add "$NSB"
ip link add veth0 netns "$NSA" type veth peer name veth1 netns "$NSB"
in_a ip link set lo up
in_b ip link set lo up
in_a ip addr add "$ADDR_A/24" dev veth0
in_b ip addr add "$ADDR_B/24" dev veth1
in_a ip link set veth0 up
in_b ip link set veth1 up

# run_cnt proves the program ran; the sysctl is put back on exit.
stats=0
if stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null) &&
	sysctl -qw kernel.bpf_stats_enabled=1 2>/dev/null; then
	stats=1
fi

say "loading every program of $OBJ"
bpftool prog loadall "$OBJ" "$PIN" || fail "bpftool prog loadall $OBJ failed (verifier log above)"
[ -e "$PIN/$PROG" ] || fail "no program $PROG in $OBJ; pinned: $(ls "$PIN" | tr '\n' ' ')"
bpftool_b net attach xdp pinned "$PIN/$PROG" dev veth1 || fail "cannot attach $PROG to veth1"
in_b ip -d link show dev veth1 | grep -q 'prog/xdp' || fail "veth1 shows no XDP program"

say "loaded programs:"
bpftool prog list
bpftool_b net show dev veth1

# Traffic A -> B crosses the XDP program on veth1.
in_a "${PING[@]}" -c 3 -i 0.2 -W 2 "$ADDR_B" || fail "ping $ADDR_A -> $ADDR_B through XDP failed"

if command -v python3 >/dev/null; then
	in_b python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(10); c.sendall(c.recv(100)); c.close()
' "$ADDR_B" "$PORT" &
	server=$!
	in_a python3 -c '
import socket, sys, time
for _ in range(100):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("cannot connect")
c.settimeout(10); c.sendall(b"shift-vmtest"); data = c.recv(100)
sys.exit(0 if data == b"shift-vmtest" else "bad echo: %r" % data)
' "$ADDR_B" "$PORT" || { kill "$server" 2>/dev/null; fail "TCP echo through XDP failed"; }
	wait "$server" || fail "TCP echo server failed"
	say "TCP echo through XDP: ok"
elif command -v nc >/dev/null; then
	in_b timeout 20 nc -l -p "$PORT" >/dev/null &
	server=$!
	sleep 0.5
	echo shift-vmtest | in_a timeout 10 nc -q 1 "$ADDR_B" "$PORT" || fail "TCP connection through XDP failed"
	wait "$server" || true
	say "TCP connection through XDP: ok"
else
	say "no python3 or nc on the host root: TCP check skipped"
fi

if [ "$stats" = 1 ]; then
	line=$(bpftool prog show pinned "$PIN/$PROG")
	echo "$line"
	echo "$line" | grep -qE 'run_cnt [1-9]' || fail "$PROG never ran (run_cnt 0)"
fi

bpftool_b net detach xdp dev veth1 || fail "cannot detach $PROG"
say "PASS: $PROG from $OBJ attached to veth, traffic passed"
