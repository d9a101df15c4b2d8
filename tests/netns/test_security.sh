#!/bin/bash
# Security of the running agent (issue 9, item 5):
# - shiftd keeps only CAP_BPF and CAP_NET_ADMIN after setup;
# - the control socket refuses peers that are neither root nor in
#   control_socket_group (SO_PEERCRED + the group database), even when the
#   file mode would let them connect;
# - pinned objects and the state are not world-accessible.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/netns/lib.sh
rig_probe || rig_skip "$RIG_SKIP_REASON"
command -v setpriv >/dev/null || rig_skip "setpriv (util-linux) not found"
GROUP=adm
getent group "$GROUP" >/dev/null || rig_skip "no group '$GROUP' to test with"
GID=$(getent group "$GROUP" | cut -d: -f3)

fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }

RIG_BLUE=1 RIG_GREEN=1 rig_up
# Other users must reach the socket and read the config to be refused (or not)
# by the socket itself: both live in a traversable directory of their own.
PUB=$(mktemp -d /tmp/shift-sec.XXXXXX)
rig_on_exit rm -rf "$PUB"
chmod 755 "$PUB"
rig_write_config "$PUB/shiftd.conf" control_socket_group=$GROUP control_socket_mode=0660 \
	control_socket="$PUB/shiftd.sock"
chmod 644 "$PUB/shiftd.conf"
RIG_CONTROL_SOCKET=$PUB/shiftd.sock
rig_spawn edge "$RIG_DIR/shiftd.log" .output/shiftd -c "$PUB/shiftd.conf"
SPID=$RIG_LAST_PID
ctl() { rig_edge .output/shiftctl -c "$PUB/shiftd.conf" "$@"; }
# "ready:" is logged right after the capabilities are dropped: `status` alone
# answers from the pinned maps before shiftd has got that far.
rig_wait 150 0.2 grep -q 'info: ready:' "$RIG_DIR/shiftd.log" ||
	{ cat "$RIG_DIR/shiftd.log"; exit 1; }
rig_wait 50 0.2 ctl status >/dev/null 2>&1 || { cat "$RIG_DIR/shiftd.log"; exit 1; }

# 1. Capabilities: CAP_NET_ADMIN (12) and CAP_BPF (39) only.
want=$(printf '%016x' $(((1 << 12) | (1 << 39))))
eff=$(sed -n 's/^CapEff:\s*//p' /proc/$SPID/status)
bnd=$(sed -n 's/^CapBnd:\s*//p' /proc/$SPID/status)
[ "$eff" = "$want" ] && ok "effective capabilities $eff = CAP_BPF|CAP_NET_ADMIN" ||
	notok "effective capabilities $eff, want $want"
[ "$bnd" = "$want" ] && ok "bounding set $bnd" || notok "bounding set $bnd, want $want"
# Capabilities are per thread: every helper thread (state file and metrics
# writers, status and render threads; some start before the main thread drops
# its own) holds no more than the main thread.
bad=""
nthreads=0
for st in /proc/$SPID/task/*/status; do
	nthreads=$((nthreads + 1))
	teff=$(sed -n 's/^CapEff:\s*//p' "$st")
	tbnd=$(sed -n 's/^CapBnd:\s*//p' "$st")
	tname=$(sed -n 's/^Name:\s*//p' "$st")
	[ "$teff" = "$want" ] && [ "$tbnd" = "$want" ] || bad="$bad $tname:$teff/$tbnd"
done
[ -z "$bad" ] && [ "$nthreads" -gt 1 ] &&
	ok "all $nthreads threads hold CAP_BPF|CAP_NET_ADMIN at most" ||
	notok "threads with other capabilities (of $nthreads):$bad"
# ...and it still works with them: a set-weight round trip through the agent.
ctl set-weight web 10 >/dev/null && ctl status --json | grep -q '"green_weight_bp":1000' &&
	ok "agent works after the drop" || notok "agent broken after the drop"

# 2. Control socket peers. The socket is 0660 root:$GROUP.
sock_mode=$(stat -c '%a %G' "$RIG_CONTROL_SOCKET")
[ "$sock_mode" = "660 $GROUP" ] && ok "control socket $sock_mode" || notok "control socket is $sock_mode"
as() { rig_nsenter "$RIG_NS_EDGE" setpriv "$@" .output/shiftctl -c "$PUB/shiftd.conf" status 2>&1; }
# nobody with $GROUP only as a runtime supplementary group: the file mode lets it
# connect, the group database does not list it: refused by SO_PEERCRED.
out=$(as --reuid=nobody --regid=nogroup --groups="$GID" || true)
case $out in *"permission denied"*) ok "peer nobody (not in $GROUP) refused: ${out##*shiftctl: }" ;;
*) notok "peer nobody was not refused: $out" ;; esac
# nobody without the group cannot even connect (file mode).
out=$(as --reuid=nobody --regid=nogroup --clear-groups || true)
case $out in *"ermission denied"* | *"not running"*) ok "peer without the group cannot connect" ;;
*) notok "peer without the group got: $out" ;; esac
# primary group $GROUP: allowed.
out=$(as --reuid=nobody --regid="$GID" --clear-groups || true)
case $out in *"service web"*) ok "peer with primary group $GROUP allowed" ;;
*) notok "peer with primary group $GROUP refused: $out" ;; esac

# 2a. A fleet's TLS key is shiftd's (root, 0600): a member of the group still
# runs status, which needs no etcd.
(umask 077 && : >"$PUB/etcd.key" && : >"$PUB/etcd.pem")
cp "$PUB/shiftd.conf" "$PUB/fleet.conf"
printf '\n[fleet]\netcd_endpoints = http://127.0.0.1:9\nfleet = sec\nnode = n1\netcd_cert = %s\netcd_key = %s\n' \
	"$PUB/etcd.pem" "$PUB/etcd.key" >>"$PUB/fleet.conf"
chmod 644 "$PUB/fleet.conf"
out=$(rig_nsenter "$RIG_NS_EDGE" setpriv --reuid=nobody --regid="$GID" --clear-groups \
	.output/shiftctl -c "$PUB/fleet.conf" status 2>&1 || true)
case $out in *"service web"*) ok "with the fleet's key root-only, group $GROUP still runs status" ;;
*) notok "with the fleet's key root-only, status as group $GROUP: $out" ;; esac

# 2b. A reload naming another group keeps the running one until the next start:
# the socket file keeps its group, and the peer check must agree with it.
OTHER=tty # nobody is in neither it nor adm
if getent group "$OTHER" >/dev/null; then
	rig_write_config "$PUB/shiftd.conf" control_socket_group=$OTHER control_socket_mode=0660 \
		control_socket="$PUB/shiftd.sock"
	ctl reload >/dev/null 2>&1 || notok "reload with control_socket_group=$OTHER failed"
	grep -q 'control_socket (its group and mode too) take effect at the next start' \
		"$RIG_DIR/shiftd.log" && ok "reload warns that the socket's group waits for a start" ||
		notok "reload did not warn about control_socket_group"
	out=$(as --reuid=nobody --regid="$GID" --clear-groups || true)
	case $out in *"service web"*) ok "after the reload, primary group $GROUP still allowed" ;;
	*) notok "after the reload, primary group $GROUP refused: $out" ;; esac
	sock_mode=$(stat -c '%a %G' "$RIG_CONTROL_SOCKET")
	[ "$sock_mode" = "660 $GROUP" ] && ok "control socket still $sock_mode" ||
		notok "control socket is $sock_mode after the reload"
	rig_write_config "$PUB/shiftd.conf" control_socket_group=$GROUP control_socket_mode=0660 \
		control_socket="$PUB/shiftd.sock"
	ctl reload >/dev/null 2>&1 || notok "reload back to $GROUP failed"
else
	echo "ok - # SKIP no group '$OTHER' to reload to"
fi

# 2c. What the group opens (README, shiftctl(8)): the verbs that go through the
# socket (reload here), not the ones that open the pinned maps, rollback included.
asg() { rig_nsenter "$RIG_NS_EDGE" setpriv --reuid=nobody --regid="$GID" --clear-groups \
	.output/shiftctl -c "$PUB/shiftd.conf" "$@" 2>&1; }
out=$(asg reload || echo "exit $?")
case $out in *"exit "*) notok "reload as group $GROUP: $out" ;;
*) ok "group $GROUP runs reload (the control socket)" ;; esac
w0=$(ctl status --json | grep -o '"green_weight_bp":[0-9]*' | head -1)
for verb in "set-weight web 20" "rollback web"; do
	# shellcheck disable=SC2086 # the verb and its arguments
	out=$(if asg $verb; then echo "exit 0"; fi)
	case $out in *"cannot open the pinned maps"*) ok "group $GROUP cannot $verb (pinned maps, root only)" ;;
	*) notok "$verb as group $GROUP: $out" ;; esac
done
w1=$(ctl status --json | grep -o '"green_weight_bp":[0-9]*' | head -1)
if [ -n "$w0" ] && [ "$w0" = "$w1" ]; then
	ok "the weight is unchanged ($w1)"
else
	notok "the weight moved: '$w0' -> '$w1'"
fi

# 3. Pins and state are not world-accessible.
bad=$( (find "$RIG_BPFFS_DIR" -mindepth 1; find "$RIG_STATE_DIR" -type f) 2>/dev/null |
	while read -r f; do [ $(($(stat -c '0%a' "$f") & 07)) -eq 0 ] || echo "$f"; done)
[ -z "$bad" ] && ok "no pin or state file is world-accessible" || notok "world-accessible: $bad"
dmode=$(stat -c '%a' "$RIG_BPFFS_DIR/maps")
[ "$dmode" = 700 ] && ok "pin directory mode $dmode" || notok "pin directory mode $dmode"

# 4. A client that trickles its request cannot hold the agent's loop: shiftd
# serves the socket from the loop that also reads samples and fires rollbacks.
# One byte every 300 ms for 6 s, never a newline; meanwhile a status must come
# back well before the trickle ends.
"$RIG_PYTHON" - "$RIG_CONTROL_SOCKET" >"$RIG_DIR/trickle.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
t0 = time.monotonic()
try:
    for _ in range(20):
        s.send(b"s")
        time.sleep(0.3)
except OSError as e:
    print("trickle: cut off after %.1f s (%s)" % (time.monotonic() - t0, e))
    sys.exit(0)
print("trickle: sent 20 bytes over %.1f s" % (time.monotonic() - t0))
PY
TPID=$!
sleep 0.5
t0=$(date +%s%N)
st_rc=0
ctl status >/dev/null 2>&1 || st_rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$TPID" || true
if [ "$st_rc" = 0 ] && [ "$ms" -lt 2000 ]; then
	ok "a trickling client (one byte per 300 ms) does not hold shiftd: status answered in $ms ms [$(cat "$RIG_DIR/trickle.out")]"
else
	notok "a trickling client held shiftd: status exit $st_rc after $ms ms [$(cat "$RIG_DIR/trickle.out")]"
fi

echo
[ "$fails" -eq 0 ] && echo "security: all checks passed" || echo "security: $fails check(s) failed"
[ "$fails" -eq 0 ]
