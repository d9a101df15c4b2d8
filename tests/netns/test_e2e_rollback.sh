#!/bin/bash
# End to end (issue 4): `shiftctl rollback` under real HTTP load.
#  1. plain rollback at green 50 % while a rate load and keep-alive connections run:
#     every new connection afterwards goes blue (client side and shift's counters),
#     established connections keep their backend (no --evict), zero failed requests,
#     and the latch holds (set-weight without --force is refused);
#  2. rollback --evict: green keep-alive connections are re-steered (one reset, then the
#     next connection lands on blue), blue ones are untouched, new connections go blue;
#     the only failures allowed are resets of green connections in flight at the evict;
#  3. a NEW connection that reuses the 5-tuple of a closed green connection goes blue
#     after the rollback (a SYN is a new flow: SPEC "Datapath semantics").
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

CONNS=${E2E_ROLLBACK_CONNS:-30}
RATE=${E2E_ROLLBACK_RATE:-150}   # new connections per second from cli2
BATCH=${E2E_ROLLBACK_BATCH:-500} # new connections per client after the rollback

# shellcheck disable=SC2119 # e2e_up takes optional config KEY=VALUEs
e2e_up
D=$RIG_DIR

svc_field() { ctl status --json web | rig_json_get "services" | "$RIG_PYTHON" -c '
import json, sys
v = json.load(sys.stdin)[0]
for k in sys.argv[1].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1"; }

# start_round TAG: weight 50 %, keep-alive connections (cli1) and a rate load (cli2)
start_round() {
	local tag=$1
	out=$(ctl set-weight web 50) || notok "$tag: set-weight web 50 failed: $out"
	e2e_setphase "$D/$tag.ctl" before
	rm -f "$D/$tag.ready"
	e2e_snap "$D/$tag.before.json"
	e2e_client cli1 "$D/$tag.ka.json" keepalive --url "$RIG_URL" --conns "$CONNS" --duration 40 \
		--interval 100 --control-file "$D/$tag.ctl" --ready-file "$D/$tag.ready"
	KA=$E2E_PID
	e2e_wait_file "$D/$tag.ready" 15 || notok "$tag: keep-alive connections not ready in 15 s"
	e2e_client cli2 "$D/$tag.rate.json" rate --url "$RIG_URL" --rate "$RATE" --duration 7 \
		--concurrency 64
	RATEPID=$E2E_PID
	sleep 2 # the load runs at 50 % first
}

# --- 1. plain rollback ------------------------------------------------------------------
t0=$SECONDS
start_round r1
out=$(ctl rollback --reason "e2e: plain rollback" web) || notok "rollback: shiftctl rollback failed: $out"
e2e_setphase "$D/r1.ctl" rolled
rb=$(svc_field rolled_back) w=$(svc_field green_weight_bp) why=$(svc_field last_rollback.reason)
if [ "$rb" = True ] && [ "$w" = 0 ]; then
	ok "rollback: latched, green weight 0 (\"$out\"; reason \"$why\")"
else
	notok "rollback: rolled_back=$rb green_weight_bp=$w after \"$out\""
fi
e2e_snap "$D/r1.batch.before.json"
e2e_new_both r1.batch "$RIG_URL" "$BATCH" || notok "rollback: batch clients did not finish"
e2e_snap "$D/r1.batch.after.json"
e2e_run_py split-nomatch "rollback: new connections after it" web 0 0 "$D/r1.batch.before.json" \
	"$D/r1.batch.after.json" "$D/r1.batch.cli1.json" "$D/r1.batch.cli2.json"
if out=$(ctl set-weight web 10 2>&1); then
	notok "rollback: set-weight 10 without --force was accepted while latched: $out"
else
	rc=$? w=$(svc_field green_weight_bp)
	if [ "$rc" = 1 ] && [ "$w" = 0 ]; then ok "rollback: latch holds: set-weight 10 refused (exit 1: $out), weight still 0"
	else notok "rollback: set-weight 10 while latched: exit $rc, weight $w: $out"; fi
fi
e2e_wait_pid "$RATEPID" 20 || notok "rollback: rate client did not finish"
e2e_setphase "$D/r1.ctl" stop
e2e_wait_pid "$KA" 15 || notok "rollback: keepalive client did not stop"
e2e_snap "$D/r1.after.json"
e2e_run_py ratecheck "rollback: load across the rollback" 0 - "$D/r1.rate.json"
e2e_run_py sticky "rollback (no --evict): established connections" web "$D/r1.before.json" \
	"$D/r1.after.json" "$D/r1.ka.json" "before,rolled" "$D/r1.batch.cli1.json" \
	"$D/r1.batch.cli2.json" "$D/r1.rate.json"
note "plain rollback: $((SECONDS - t0))s"

# --- 2. rollback --evict ------------------------------------------------------------------
t0=$SECONDS
out=$(ctl clear web) || notok "evict: shiftctl clear failed: $out"
start_round r2
out=$(ctl rollback --evict --reason "e2e: evict" web) || notok "evict: shiftctl rollback --evict failed: $out"
e2e_setphase "$D/r2.ctl" evicted
note "evict: shiftctl said: $out"
sleep 1.5 # >= 10 keep-alive rounds after the evict
e2e_snap "$D/r2.batch.before.json"
e2e_new_both r2.batch "$RIG_URL" "$BATCH" || notok "evict: batch clients did not finish"
e2e_snap "$D/r2.batch.after.json"
e2e_run_py split-nomatch "evict: new connections after it" web 0 0 "$D/r2.batch.before.json" \
	"$D/r2.batch.after.json" "$D/r2.batch.cli1.json" "$D/r2.batch.cli2.json"
e2e_wait_pid "$RATEPID" 20 || notok "evict: rate client did not finish"
e2e_setphase "$D/r2.ctl" stop
e2e_wait_pid "$KA" 15 || notok "evict: keepalive client did not stop"
e2e_snap "$D/r2.after.json"
e2e_run_py evict "evict" "$D/r2.ka.json" before evicted
# New connections of the rate load that were green and in flight at the evict are reset
# too (an evicted flow is an evicted flow); at 150/s and ~5 ms each that is about one.
e2e_run_py ratecheck "evict: load across the rollback --evict" 3 reset,closed "$D/r2.rate.json"
note "rollback --evict: $((SECONDS - t0))s"

# --- 3. a reused 5-tuple after the rollback ----------------------------------------------
out=$(ctl clear web) || notok "reuse: shiftctl clear failed: $out"
out=$(ctl set-weight web 100) || notok "reuse: set-weight web 100 failed: $out"
port=$((600 + RANDOM % 300)) # below the clients' ephemeral range: nobody else uses it
# X-Backend of one request from cli1's source port $port. The socket closes with an
# RST (SO_LINGER 0): curl may close first and leave the port in TIME_WAIT, and then
# the reused 5-tuple would never be sent at all.
fetch() {
	local host=${RIG_URL#http://}
	host=${host%%/*}
	host=${host%:*}
	rig_exec cli1 timeout 10 "${RIG_PYTHON:-python3}" - "$port" "$host" <<'PY' 2>/dev/null || true
import socket, struct, sys
port, vip = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.settimeout(3)
s.bind(("198.18.1.2", port))
s.connect((vip, 80))
s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
data = b""
while len(data) < 65536:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
s.close()
for line in data.decode(errors="replace").split("\r\n"):
    if line.lower().startswith("x-backend:"):
        print(line.split(":", 1)[1].strip())
PY
}
b1=$(fetch)
out=$(ctl rollback --reason "e2e: reuse" web) || notok "reuse: rollback failed: $out"
b2=$(fetch)
b3=$(fetch)
if [ "${b1#green}" != "$b1" ] && [ "${b2#blue}" != "$b2" ] && [ "${b3#blue}" != "$b3" ]; then
	ok "reuse: a new connection from 198.18.1.2:$port went $b1 at 100 %, the same 5-tuple after the rollback went $b2, $b3"
else
	notok "reuse: new connections from the same 5-tuple (198.18.1.2:$port -> VIP): '$b1' at 100 %, then '$b2', '$b3' after the rollback (want blue: a SYN is a new flow; the stale connection-table entry was followed)"
fi

e2e_finish
