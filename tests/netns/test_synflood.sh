#!/bin/bash
# shellcheck disable=SC2015 # "A && ok || notok": ok always returns 0
# Hostile input (issue 9): a SYN flood of spoofed sources at the VIP while real clients
# work, with the connection table sized too small on purpose (max_flows = 1024, the
# minimum the config allows).
#  (a) tests/netns/synflood.c sends FLOOD spoofed SYNs (random source in 198.18.128.0/17,
#      routed back to cli1, where the backends' SYN-ACKs are dropped; random source
#      ports) from cli1 while client.py rate opens new connections from cli1 and cli2
#      at green 30 %: the real clients' success rate (>= 99 %; 100 % measured on a
#      quiet machine), their blue/green share, and the datapath counters (flow_new,
#      flow_insert_fail, table occupancy);
#  (b) keep-alive connections (cli2) across that flood: their entries are evicted
#      again and again; none changes backend, none is reset (a request may time out
#      when other jobs load the machine: at most 1 %; measured quietly: none);
#  (c) the strict form: the keep-alive client is paused (SIGSTOP), a flood evicts its
#      entries (bpftool shows none left), it resumes: every connection continues on the
#      same backend with zero failures, and its re-created entries carry the same
#      backend, color and hash as before (weight unchanged).
# Short by default (make check: 200k SYNs); CHAOS_LONG=1 (make chaos): CHAOS_FLOOD SYNs
# (default 3M). Exit 0 pass, 77 skipped, 1 fail.
# run.sh: alone (200k spoofed SYNs take a core while clients keep a rate)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=chaos_lib.sh
. "$HERE/chaos_lib.sh"

if [ "$CHAOS_LONG" = 1 ]; then FLOOD=${CHAOS_FLOOD:-3000000}; else FLOOD=${SYNFLOOD_COUNT:-200000}; fi
PPS=$CHAOS_PPS
EVICT_FLOOD=${SYNFLOOD_EVICT:-50000}
RATE=${SYNFLOOD_RATE:-100}      # real new connections per second per client
WEIGHT=30
SPOOF=$CHAOS_SPOOF

rig_probe || rig_skip "$RIG_SKIP_REASON"
command -v bpftool >/dev/null 2>&1 || rig_skip "missing command: bpftool"
chaos_need_synflood

e2e_up max_flows=1024
rig_neigh_permanent || notok "setup: permanent neighbours"
D=$RIG_DIR
chaos_spoof_route || notok "setup: route $SPOOF via cli1"
ctl set-weight web $WEIGHT >/dev/null || notok "setup: set-weight web $WEIGHT"
sz=$(rig_edge bpftool -j map show pinned "$RIG_BPFFS_DIR/maps/shift_flows4" | rig_json_get max_entries)
if [ "$sz" = 1024 ]; then ok "connection table shift_flows4 sized to max_flows = $sz (bpftool)"; else
	notok "shift_flows4 max_entries $sz, want 1024"; fi
flood() { chaos_flood "$@"; }

# ---------------------------------------------------------------------------------
KA_CTL=$D/ka.control KA_READY=$D/ka.ready
setphase() { printf '%s\n' "$1" >"$KA_CTL.tmp" && mv -f "$KA_CTL.tmp" "$KA_CTL"; }
setphase before
chaos_client cli2 "$D/ka.json" keepalive --url "$RIG_URL" --conns 16 --duration $((CHAOS_LONG == 1 ? 600 : 240)) \
	--interval 200 --timeout 3 --control-file "$KA_CTL" --ready-file "$KA_READY"
KA=$E2E_PID KA_SRC=$E2E_SRC
e2e_wait_file "$KA_READY" 15 || notok "keep-alive: 16 connections not ready in 15 s"
sleep 0.5
flows_of "$KA_SRC" >"$D/ka.flows.start"
n0=$(wc -l <"$D/ka.flows.start")
[ "$n0" = 16 ] && ok "keep-alive: 16 connections from $KA_SRC, 16 entries in shift_flows4 (bpftool)" ||
	notok "keep-alive: $n0 entries from $KA_SRC in shift_flows4, want 16"

# --- (a) + (b) ---------------------------------------------------------------------
dur=$((FLOOD / PPS + 3))
setphase flood
e2e_snap "$D/a0.json"
chaos_client cli1 "$D/rate1.json" rate --url "$RIG_URL" --rate "$RATE" --duration "$dur" --concurrency 128 --timeout 5
R1=$E2E_PID
chaos_client cli2 "$D/rate2.json" rate --url "$RIG_URL" --rate "$RATE" --duration "$dur" --concurrency 128 --timeout 5
R2=$E2E_PID
sleep 1
t0=$(date +%s.%N)
flood "$FLOOD" "$D/flood.json" || notok "synflood failed: $(cat "$D/flood.json")"
t1=$(date +%s.%N)
e2e_wait_pid "$R1" $((dur + 30)) || notok "rate client cli1 did not finish"
e2e_wait_pid "$R2" $((dur + 30)) || notok "rate client cli2 did not finish"
setphase after-flood
sleep 1
e2e_snap "$D/a1.json"
occ=$(flows_of 0 count)
sent=$(e2e_py get "$D/flood.json" sent) pps=$(e2e_py get "$D/flood.json" pps)
[ "$sent" = "$FLOOD" ] && ok "flood: $sent spoofed SYNs from $SPOOF in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s ($pps pps) into a 1024-entry table" ||
	notok "flood: sent $sent of $FLOOD ($(cat "$D/flood.json"))"
fn=$(($(dp "$D/a1.json" flow_new) - $(dp "$D/a0.json" flow_new)))
fi_=$(($(dp "$D/a1.json" flow_insert_fail) - $(dp "$D/a0.json" flow_insert_fail)))
[ "$fn" -ge "$FLOOD" ] && ok "datapath: flow_new +$fn (>= $FLOOD SYNs), flow_insert_fail +$fi_, table occupancy $occ/1024 after the flood" ||
	notok "datapath: flow_new +$fn, want >= $FLOOD (flow_insert_fail +$fi_, occupancy $occ)"
[ "$fi_" = 0 ] && ok "datapath: no insert failure in an LRU table under the flood (flow_insert_fail +0)" ||
	notok "datapath: flow_insert_fail +$fi_ (an LRU insert should evict, not fail)"
"$RIG_PYTHON" - "$D/rate1.json" "$D/rate2.json" "$WEIGHT" >"$D/a.txt" <<'PY'
import json, sys
def last(p):
    j = None
    for l in open(p):
        if l.startswith("{"):
            j = json.loads(l)
    return j or {}
tot = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0}
errs, byb, p99 = {}, {}, []
for p in sys.argv[1:3]:
    j = last(p)
    for k in tot:
        tot[k] += j.get(k, 0)
    for k, v in j.get("errors", {}).items():
        errs[k] = errs.get(k, 0) + v
    for k, v in j.get("by_backend", {}).items():
        byb[k] = byb.get(k, 0) + v
    p99.append(j.get("p99_ms") or 0)
ans = sum(byb.values())
g = sum(v for k, v in byb.items() if k.startswith("green"))
share = 100.0 * g / ans if ans else 0
rate = 100.0 * tot["ok"] / tot["sent"] if tot["sent"] else 0
w = int(sys.argv[3])
print(f"{tot['sent']} {tot['ok']} {tot['failed']} {tot['skipped']} {rate:.2f} {share:.1f} {max(p99):.1f} "
      + (",".join(f"{k}={v}" for k, v in sorted(errs.items())) or "none") + " "
      + ",".join(f"{k}={v}" for k, v in sorted(byb.items())))
PY
read -r rs rok rfail rskip rrate rshare rp99 rerrs rbyb <"$D/a.txt"
# Real clients under the flood: at least 99 % answered (a lost SYN's retry included;
# a request the saturated client could not even send counts as failed). Measured on a
# quiet machine: 100 %; other jobs loading the 2 cores at the same time cost more.
if [ "$rs" -gt 0 ] && [ $(((rfail + rskip) * 100)) -le "$rs" ]; then
	ok "real clients during the flood: $rok/$rs new connections ok ($rrate %), $rfail failed, $rskip not sent (client saturated), p99 ${rp99} ms, errors: $rerrs"
else
	notok "real clients during the flood: $rok/$rs ok ($rrate %, want >= 99 %), $rfail failed, $rskip not sent, p99 ${rp99} ms, errors: $rerrs"
fi
lo=$((WEIGHT - 6)) hi=$((WEIGHT + 6))
if awk -v s="$rshare" -v lo=$lo -v hi=$hi 'BEGIN { exit !(s >= lo && s <= hi) }'; then
	ok "real clients' green share during the flood: $rshare % at weight $WEIGHT % ($rbyb)"
else
	notok "real clients' green share during the flood: $rshare %, want $lo..$hi % ($rbyb)"
fi
re=$((fn - FLOOD - rs))
note "flow_new +$fn = $FLOOD flood SYNs + $rs real connections + $re entries re-created for live connections whose entry the flood had evicted"
gs=$(e2e_py delta web "$D/a0.json" "$D/a1.json" | "$RIG_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
t = sum(x["connections"] for x in d.values())
g = sum(x["connections"] for n, x in d.items() if n.startswith("green"))
print(f"{100.0 * g / t:.1f} {t}" if t else "0 0")')
read -r gsh gtot <<<"$gs"
if awk -v s="$gsh" -v lo=$((WEIGHT - 2)) -v hi=$((WEIGHT + 2)) 'BEGIN { exit !(s >= lo && s <= hi) }'; then
	ok "shift's counters: green got $gsh % of all $gtot new flows (flood included) at weight $WEIGHT %"
else
	notok "shift's counters: green got $gsh % of $gtot new flows, want $WEIGHT +- 2 %"
fi
ww=$(python3 -c 'import json,sys; s=[x for x in json.load(open(sys.argv[1]))["services"] if x["service"]=="web"][0]; print(s["green_weight_bp"], s["rolled_back"])' "$D/a1.json")
[ "$ww" = "$((WEIGHT * 100)) False" ] && ok "no rollback, weight unchanged ($ww)" || notok "weight/rolled_back after the flood: $ww"

# --- (c) ---------------------------------------------------------------------------
flows_of "$KA_SRC" >"$D/ka.flows0" # the keep-alive entries right before the pause
kill -STOP "$KA"
setphase paused
# one share of the flood on each CPU: each CPU's LRU list evicts on its own
ncpu=$(nproc)
for ((cpu = 0; cpu < ncpu; cpu++)); do
	CHAOS_FLOOD_CPU=$cpu flood $((EVICT_FLOOD / ncpu)) "$D/flood2.$cpu.json" ||
		notok "synflood (eviction, CPU $cpu) failed: $(cat "$D/flood2.$cpu.json")"
done
flows_of "$KA_SRC" >"$D/ka.flows1"
n1=$(wc -l <"$D/ka.flows1") n0=$(wc -l <"$D/ka.flows0")
kill -CONT "$KA"
[ "$n1" = 0 ] && [ "$n0" = 16 ] && ok "eviction: keep-alive client paused, $EVICT_FLOOD spoofed SYNs: 16/16 of its entries evicted (bpftool: $n1 left; the flood sent from each of the $ncpu CPUs in turn)" ||
	notok "eviction: $n1 of $n0 keep-alive entries still in shift_flows4 after $EVICT_FLOOD SYNs"
setphase resumed
sleep 2
flows_of "$KA_SRC" >"$D/ka.flows2"
if cmp -s "$D/ka.flows0" "$D/ka.flows2"; then
	ok "re-steer: the 16 re-created entries carry the same backend, color and hash as before the eviction"
else
	notok "re-steer: entries differ after the eviction: $(diff "$D/ka.flows0" "$D/ka.flows2" | head -n 6 | tr '\n' ' ')"
fi
setphase stop
e2e_wait_pid "$KA" 20 || notok "keep-alive client did not stop"
"$RIG_PYTHON" - "$D/ka.json" >"$D/ka.txt" <<'PY'
import json, sys
j = None
for l in open(sys.argv[1]):
    if l.startswith("{"):
        j = json.loads(l)
ph = j.get("phases", {})
def f(p, k):
    return ph.get(p, {}).get(k, 0)
late = sum(f(p, "failed") for p in ("after-flood", "paused", "resumed"))
print(j["conns"], j["connections"], j["requests"], j["failed"], j["resets"], j["changed_backend"],
      f("flood", "requests"), f("flood", "failed"), f("resumed", "requests"), late,
      ",".join(f"{k}={v}" for k, v in sorted(j.get("errors", {}).items())) or "none",
      ",".join(f"{k}={v}" for k, v in sorted(j.get("by_backend", {}).items())))
PY
read -r kc kconn kreq kfail kres kchg kfr kff krr klate kerr kbyb <"$D/ka.txt"
# No answer ever came from another backend, nothing failed after the eviction; during
# the big flood a request may time out (3 s) on a loaded machine: at most 1 %.
if [ "$kchg" = 0 ] && [ "$kres" = 0 ] && [ "$klate" = 0 ] && [ $((kff * 100)) -le "$kfr" ]; then
	ok "keep-alive: $kc connections, $kreq requests ($kfr during the big flood, $krr after the eviction), $kfail failed ($kerr; $kff during the flood, $klate after it), $kres resets, $kchg changed backend, $kconn TCP connections opened ($kbyb)"
else
	notok "keep-alive: $kc conns, $kconn TCP connections, $kreq requests, $kfail failed ($kerr; $kff of $kfr during the flood, want <= 1 %; $klate after it, want 0), $kres resets, $kchg changed backend"
fi

e2e_finish
