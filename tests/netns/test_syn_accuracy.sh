#!/bin/bash
# Honest SYN errors (issue 15, Must show 4): the TIME_WAIT reuse pattern counts no error.
#   1. a client connects straight to green1 (no VIP) from fixed source ports of
#      NSRC of cli1's addresses; the server closes first, so green1 holds each 4-tuple in TIME_WAIT
#      (checked with ss). "Straight" is a namespace of its own on the backends' switch
#      holding that address, with a host route to it in green1 for the time being:
#      through the edge, green1's answers from its service port would be taken for VIP
#      replies (that is what a backend address:port means to the return path);
#   2. within seconds, cli1 connects through the VIP (green at 100 %) from the same
#      addresses and ports: green1 sees the same 4-tuples. A client's TCP timestamp
#      offset depends on (source, destination) address, VIP and green1 differ, so for
#      about half the source addresses the new SYN's timestamp is older than the one
#      green1 remembers: PAWS rejects it in TIME_WAIT with a bare ACK (counted by green1's
#      kernel as TcpExtPAWSTimewait), the client resets and re-sends its SYN (same ISN)
#      at once (Linux re-arms the SYN timer at its minimum after such an ACK), and
#      green1 then accepts it. With NSRC = 10 addresses the pattern happens for none with
#      probability 1/1024; the test requires it at least once (the counter says).
#      Every connection succeeds, and green1 gets 0 syn_retransmit and 0 rst errors and
#      no rollback. (A re-SYN that came late after such an ACK — the ACK rate-limited,
#      the client's RST lost — would be no error either: the ACK marks the SYN answered;
#      tests/bpf/test_fallback.c has that row.)
#   3. a SYN green really ignores (nft drop in its namespace) still counts: 3 connections
#      -> >= 1 syn_retransmit error for green (connect_fallback sends the retransmits to
#      blue, so the clients still succeed).
# Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

NSRC=10
K=${SYNACC_PORTS:-6} # ports per address
N=$((NSRC * K))

e2e_up web.min_requests=20 web.max_consecutive_errors=5 web.max_error_rate=5% \
	web.max_error_rate_increase=off web.max_latency_p99=off web.max_latency_ratio=off
D=$RIG_DIR


out=$(ctl set-weight web 100) || notok "setup: set-weight web 100 failed: $out"
SRCS=()
for ((i = 0; i < NSRC; i++)); do
	e2e_use_src cli1 4 || notok "setup: no source address"
	SRCS+=("$E2E_SRC")
done
SRC=$(IFS=,; echo "${SRCS[*]}")
GREEN=$(rig_backend_addr green1 4)
VIP=${RIG_URL#http://}
VIP=${VIP%%/*}
VIP=${VIP%:*}
P0=$((20000 + RANDOM % 20000))

# conns NS MODE HOST PORT: connect from each of $SRC (comma list) x ports P0..P0+K-1,
# GET with Connection: close, read to EOF; prints {"ok", "failed", "slow", "errors"}
# (slow: connects that took >= 0.9 s).
conns() {
	rig_exec "$1" timeout 90 "$RIG_PYTHON" - "$SRC" "$P0" "$K" "$2" "$3" "$4" <<'PY'
import json, socket, sys, threading, time
srcs, p0, k, mode, host, port = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
res = {"ok": 0, "failed": 0, "slow": 0, "errors": {}}
lock = threading.Lock()
def one(src, p, tries=1):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(8)
    try:
        s.bind((src, p))
        t0 = time.monotonic()
        s.connect((host, port))
        dt = time.monotonic() - t0
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            data += c
        good = data.startswith(b"HTTP/1.1 200")
        with lock:
            res["ok" if good else "failed"] += 1
            res["slow"] += dt >= 0.9
    except OSError as e:
        s.close()
        # The direct client only sets green1's TIME_WAITs up, beside shift:
        # a connect that failed there under load (CI run 141: 3 of 60, a bare
        # OSError, its errno not kept then) is tried again, from the same
        # address and port; what still fails is reported with its errno.
        if mode == "direct" and tries < 3 and not isinstance(e, ConnectionRefusedError):
            time.sleep(0.5)
            return one(src, p, tries + 1)
        with lock:
            res["failed"] += 1
            k = "%s:%s" % (type(e).__name__, e.errno)
            res["errors"][k] = res["errors"].get(k, 0) + 1
    finally:
        s.close()
ths = []
for src, i in [(a, i) for a in srcs for i in range(k)]:
    th = threading.Thread(target=one, args=(src, p0 + i))
    th.start()
    ths.append(th)
    if mode == "direct":
        th.join()  # one at a time: each leaves its TIME_WAIT before the next
for th in ths:
    th.join()
print(json.dumps(res))
PY
}
jf() { rig_json_get "$1" <"$2"; }
# paws_tw: SYNs green1's kernel answered from TIME_WAIT with an ACK (PAWS)
paws_tw() { rig_exec green1 nstat -asz TcpExtPAWSTimewait | awk '$1 == "TcpExtPAWSTimewait" { print $2 }'; }

# 1. straight to green1, from a namespace on the switch that holds $SRC
TW=$RIG_ID-tw
rig_on_exit "ip netns del $TW 2>/dev/null || true"
tw_up() {
	local a
	ip netns add "$TW" &&
		ip -n "$RIG_NS_SWITCH" link add "${RIG_ID}stw" type veth peer name "${RIG_ID}tw" netns "$TW" &&
		ip -n "$RIG_NS_SWITCH" link set "${RIG_ID}stw" master "$RIG_SWITCH_BRIDGE" up &&
		ip -n "$TW" link set lo up && ip -n "$TW" link set "${RIG_ID}tw" up &&
		ip -n "$TW" addr add 198.19.3.1/16 dev "${RIG_ID}tw" || return 1
	for a in "${SRCS[@]}"; do
		ip -n "$TW" addr add "$a/32" dev "${RIG_ID}tw" &&
			ip -n "$RIG_ID-green1" route add "$a/32" via 198.19.3.1 || return 1
	done
}
tw_up || notok "setup: the direct client's namespace"
conns "$TW" direct "$GREEN" "$RIG_BACKEND_PORT" >"$D/direct.json"
for a in "${SRCS[@]}"; do
	ip -n "$RIG_ID-green1" route del "$a/32" via 198.19.3.1 || notok "setup: green1 route del $a"
done
ip netns del "$TW"
tw=$(rig_exec green1 ss -Htan state time-wait "( sport = :$RIG_BACKEND_PORT )" | grep -c "198\.18\.1\." || true)
if [ "$(jf ok "$D/direct.json")" = "$N" ] && [ "$tw" -ge $((N * 9 / 10)) ]; then
	ok "direct: $N connections from ${#SRCS[@]} addresses ($SRC) x ports $P0.. to green1 $GREEN; green1 holds $tw of them in TIME_WAIT"
else
	notok "direct: $(cat "$D/direct.json"); green1 holds $tw in TIME_WAIT (want ~$N)"
fi

# 2. the same 4-tuples through the VIP
e0=$(green_errs syn_retransmit) r0=$(green_errs rst) pw0=$(paws_tw)
conns cli1 vip "$VIP" "$RIG_VIP_PORT" >"$D/vip.json"
e1=$(green_errs syn_retransmit) r1=$(green_errs rst)
pw1=$(paws_tw)
slow=$(jf slow "$D/vip.json")
if [ "$(jf ok "$D/vip.json")" = "$N" ]; then
	ok "vip: $N/$N connections through the VIP from the same addresses and ports succeeded ($slow took >= 0.9 s)"
else
	notok "vip: $(cat "$D/vip.json")"
fi
if [ $((pw1 - pw0)) -ge 1 ]; then
	ok "vip: $((pw1 - pw0)) of $N SYNs met green1's TIME_WAIT and got a bare ACK (TcpExtPAWSTimewait), then the client's RST and SYN again"
else
	notok "vip: no SYN met green1's TIME_WAIT (TcpExtPAWSTimewait $pw0 -> $pw1): the test did not exercise the pattern"
fi
if [ $((e1 - e0)) = 0 ] && [ $((r1 - r0)) = 0 ] && [ "$(svc rolled_back)" = False ]; then
	ok "vip: green counted 0 syn_retransmit and 0 rst errors for it; no rollback"
else
	notok "vip: green syn_retransmit errors +$((e1 - e0)), rst +$((r1 - r0)), rolled_back $(svc rolled_back) (want 0, 0, False)"
fi

# 3. a SYN green really ignores still counts
rig_backend_blackhole green1 on || notok "blackhole: could not drop green1's SYNs"
e0=$(green_errs syn_retransmit)
rig_client_py cli2 new --url "$RIG_URL" --count 3 --concurrency 3 --timeout 4 \
	--deadline 30 >"$D/bh.json"
e1=$(green_errs syn_retransmit)
rig_backend_blackhole green1 off
if [ $((e1 - e0)) -ge 1 ]; then
	ok "blackhole: 3 SYNs green1 ignored -> $((e1 - e0)) syn_retransmit errors; clients ok $(e2e_py get "$D/bh.json" ok)/3 (their retransmits went blue)"
else
	notok "blackhole: green syn_retransmit errors +$((e1 - e0)) for 3 ignored SYNs (want >= 1)"
fi

e2e_finish
