#!/bin/bash
# bench/summary.sh OUTPUT: gather what `make bench` measured into CSV files, one JSON
# (medians and ratios) and a Markdown summary, all under OUTPUT/bench/:
#   datapath.csv live.csv flows.csv pktrate.csv flood.csv http.csv reaction.csv agent.csv
#   results.json summary.md
# Inputs: OUTPUT/bench-datapath.txt (and OUTPUT/bench/datapath-run-*.txt, its runs),
# OUTPUT/bench/datapath-flows1000.txt,
# OUTPUT/bench/flows.json, OUTPUT/bench-rollback.txt, OUTPUT/bench/peers/*.jsonl.
# A missing input leaves its section out (and says so).
set -euo pipefail
OUTPUT=${1:-${OUTPUT:-.output}}
[ -d "$OUTPUT/bench" ] || { echo "summary: no $OUTPUT/bench" >&2; exit 1; }
exec python3 - "$OUTPUT" <<'PYEOF'
import csv, glob, json, os, re, statistics, sys, time

out = sys.argv[1]
B = os.path.join(out, "bench")
P = os.path.join(B, "peers")
res = {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
md = []
missing = []


def jl(name):
    p = os.path.join(P, name + ".jsonl")
    if not os.path.exists(p):
        return []
    return [json.loads(l) for l in open(p) if l.strip()]


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def rng(v):
    v = [x for x in v if x is not None]
    if len(v) < 2:
        return ""
    return f" ({min(v):,.0f}–{max(v):,.0f})"


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def round_ratios(rounds, a, b):
    """a / b within each round (a dict of system -> figure per round): the cell
    "×median (min–max)" and the median; "–" and None without a pair."""
    v = [x for x in (ratio(r.get(a), r.get(b)) for r in rounds) if x is not None]
    if not v:
        return "–", None
    cell = f"×{med(v):.2f} ({min(v):.2f}–{max(v):.2f})" if len(v) > 1 else f"×{v[0]:.2f}"
    return cell, med(v)


def rounds_ahead(rounds, a, b):
    """In how many rounds a's figure was at least b's, of the rounds with both:
    what SPEC's "at least" targets ask of each round, not of the medians."""
    pairs = [(r[a], r[b]) for r in rounds if r.get(a) and r.get(b)]
    return sum(x >= y for x, y in pairs), len(pairs)


def fmt(v, nd=0):
    if v is None:
        return "–"
    if isinstance(v, float) and nd:
        return f"{v:,.{nd}f}"
    return f"{v:,.0f}" if isinstance(v, (int, float)) else str(v)


def wcsv(name, rows, cols):
    with open(os.path.join(B, name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r.get(c, "") if not isinstance(r.get(c), (dict, list)) else json.dumps(r.get(c)) for c in cols])


# --- machine -------------------------------------------------------------------
meta = (jl("meta") or [{}])[0]
meta_end = (jl("meta_end") or [{}])[0]
u = os.uname()
res["machine"] = {
    "cpus": os.cpu_count(), "kernel": u.release, "arch": u.machine,
    "load_start": meta.get("load_start"), "load_end": meta_end.get("load_end"),
    "peers_seconds": meta_end.get("seconds"), "rig_queues": meta.get("queues"),
    "versions": {k: meta.get(k) for k in ("wrk", "haproxy", "nginx", "nft")},
}
md.append("# shift benchmarks — summary of the newest figures of each part of `make bench`\n")
md.append(f"Machine: {os.cpu_count()} CPUs, kernel {u.release} {u.machine}; load average "
          f"(1/5/15 min) {meta.get('load_start', '?')} at the start of the rig part, "
          f"{meta_end.get('load_end', '?')} at its end (other jobs share the machine).  ")
md.append(f"Peers: {meta.get('haproxy', '?')}; {meta.get('nginx', '?')}; {meta.get('nft', '?')}; "
          f"{meta.get('wrk', '?')}. The edge's veths: {meta.get('queues', 1)} queue(s) each "
          "(BENCH_QUEUES).  ")


# A part of `make bench` can run alone (make bench-peers, bench-flows, a
# BENCH_SECTIONS subset, ...) and leaves the other parts' files as they were: say
# when each input was last written, so that figures of different runs are not read
# as one run's. (The load averages above are the last rig run's.)
def written(path):
    if not os.path.exists(path):
        return None
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(path)))


when = [(what, written(path)) for what, path in (
    ("datapath", os.path.join(out, "bench-datapath.txt")),
    ("datapath, 1000-entry table", os.path.join(B, "datapath-flows1000.txt")),
    ("connection table", os.path.join(B, "flows.json")),
    ("rollback", os.path.join(out, "bench-rollback.txt")),
    *((sec, os.path.join(P, sec + ".jsonl"))
      for sec in ("pktrate", "live", "flood", "http", "flows1m", "reaction", "agent")))]
when = [(w, t) for w, t in when if t]
res["measured"] = dict(when)
if when:
    md.append("Written: " + "; ".join(f"{w} {t}" for w, t in when) + ".\n")

# --- 1. datapath ----------------------------------------------------------------
# bench_datapath's table: case, then XDP ns, XDP above, TC ns, TC above (the floor
# of each kind), target, met (XDP/TC), Katran (SPEC). Case names have spaces.
DP_ROW = re.compile(r"^(.*?)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+"
                    r"(<= \d+|-)\s+(\S+)\s+(.*?)\s*$")

def parse_datapath(path):
    rows = []
    if not os.path.exists(path):
        return rows
    for line in open(path):
        if line.startswith("#") or line.startswith("case"):
            continue
        m = DP_ROW.match(line.rstrip())
        if m:
            rows.append({"case": m.group(1).strip(), "xdp_ns": float(m.group(2)),
                         "xdp_above_ns": float(m.group(3)), "tc_ns": float(m.group(4)),
                         "tc_above_ns": float(m.group(5)), "target": m.group(6),
                         "met": m.group(7), "katran": m.group(8)})
    return rows

dp = parse_datapath(os.path.join(out, "bench-datapath.txt"))
dp1k = parse_datapath(os.path.join(B, "datapath-flows1000.txt"))
if dp:
    for r in dp:
        r["table"] = "default (1M v4 / 256k v6)"
    for r in dp1k:
        r["table"] = "1000 entries"
    wcsv("datapath.csv", dp + dp1k, ["table", "case", "xdp_ns", "xdp_above_ns", "tc_ns",
                                     "tc_above_ns", "target", "met", "katran"])
    res["datapath"] = dp
    res["datapath_flows1000"] = dp1k
    # The floors' rows repeat under v4 and v6: the n-th row of a name pairs with the n-th.
    def keyed(rows):
        seen = {}
        for r in rows:
            seen[r["case"]] = seen.get(r["case"], 0) + 1
            yield (r["case"], seen[r["case"]]), r
    by1k = dict(keyed(dp1k))
    # make bench-datapath's whole runs (DP_ROUNDS): each case's median (min–max) and
    # the runs that met its target; one run alone is shown as it is.
    runs = [parse_datapath(f) for f in sorted(
        glob.glob(os.path.join(B, "datapath-run-*.txt")),
        key=lambda f: int(re.sub(r"\D", "", os.path.basename(f)) or 0))]
    runs = [dict(keyed(x)) for x in runs if x]
    res["datapath_runs"] = len(runs)

    def over_runs(k, r, field):
        v = [x[k][field] for x in runs if k in x]
        if len(v) < 2:
            return f"{r[field]:.1f}", None
        m = r["target"].split()
        met = sum(x <= float(m[1]) for x in v) if len(m) == 2 else None
        return f"{med(v):.1f} ({min(v):.1f}–{max(v):.1f})", (met, len(v))

    title = (f"median (min–max) of {len(runs)} whole runs" if len(runs) > 1 else "one run")
    md.append(f"## 1. Datapath cost (BPF_PROG_TEST_RUN, repeat = 1, ns above the floor of each kind; {title})\n")
    md.append("| case | XDP | TC | XDP, 1000-entry table | TC, 1000-entry table | target | met (XDP/TC) | Katran (SPEC) |")
    md.append("|---|---:|---:|---:|---:|---|---|---|")
    for k, r in keyed(dp):
        o = by1k.get(k)
        (cx, mx), (ct, mt) = over_runs(k, r, "xdp_above_ns"), over_runs(k, r, "tc_above_ns")
        met = r["met"]
        if mx and mt and mx[0] is not None:
            met = f"{mx[0]} of {mx[1]} / {mt[0]} of {mt[1]} runs"
            res.setdefault("datapath_met", {})["/".join(map(str, k))] = {
                "xdp": list(mx), "tc": list(mt), "target": r["target"]}
        md.append(f"| {r['case']} | {cx} | {ct} | "
                  f"{o['xdp_above_ns'] if o else '–'} | {o['tc_above_ns'] if o else '–'} | "
                  f"{r['target']} | {met} | {r['katran']} |")
    md.append("")
else:
    missing.append("datapath (make bench-datapath)")

# --- 1b. the datapath in a live stream ---------------------------------------------
# bench/peers.sh's live section: the kernel's ns per run (BPF run-time statistics) of
# shift's client program and of each hook's floor on the same stream; above = the
# program less its floor in the same round.
lv = jl("live")
if lv:
    wcsv("live.csv", lv, ["system", "round", "flows", "hook", "prog_name", "runs", "ns_per_run",
                          "delivered_pps", "load1"])
    floor = {(r["round"], r["hook"]): r["ns_per_run"] for r in lv if r.get("floor")}
    agg = {}
    for r in lv:
        if r.get("floor"):
            continue
        f = floor.get((r["round"], r["hook"]))
        a = agg.setdefault((r["flows"], r["hook"]), {"ns": [], "above": []})
        a["ns"].append(r["ns_per_run"])
        if f is not None:
            a["above"].append(r["ns_per_run"] - f)
    fl_x = [v for (_, h), v in floor.items() if h == "xdp"]
    fl_t = [v for (_, h), v in floor.items() if h == "tcx"]
    res["live"] = {f"{fl}/{h}": {"median_ns": med(v["ns"]), "median_above_ns": med(v["above"]),
                                 "above_ns": v["above"]} for (fl, h), v in agg.items()}
    res["live"]["floor"] = {"xdp": med(fl_x), "tcx": med(fl_t)}

    def cell(v):
        v = [x for x in v if x is not None]
        if not v:
            return "–"
        return f"{med(v):.1f} ({min(v):.1f}–{max(v):.1f})" if len(v) > 1 else f"{v[0]:.1f}"

    md.append("## 1b. The same program in a live stream (bench/progcost: the kernel's BPF run-time "
              "statistics, ns per run above the hook's floor on the same stream)\n")
    md.append("Established ACKs through the rig's edge (two senders, bursts of 64), every flow opened "
              "by a whole handshake first; the floor is XDP_PASS / TC_ACT_UNSPEC on the same veth. "
              f"Floors: XDP {cell(fl_x)}, TC (tcx) {cell(fl_t)} ns per run (the statistics' own clock "
              "reads and the hook's call are in both). Median (min–max) over the rounds.\n")
    md.append("SPEC's ≤ 50 ns is for section 1's method; this is the same path between the "
              "same kind of floors, timed by the kernel in a live stream.\n")
    md.append("| established packet | XDP | TC |")
    md.append("|---|---:|---:|")
    sizes = sorted({k[0] for k in agg})
    for fl in sizes:
        x, t = agg.get((fl, "xdp"), {}), agg.get((fl, "tcx"), {})
        md.append(f"| {fl:,} flows | {cell(x.get('above', []))} | {cell(t.get('above', []))} |")
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        cells = []
        for h, name in (("xdp", "XDP"), ("tcx", "TC")):
            a, b = agg.get((lo, h), {}).get("above", []), agg.get((hi, h), {}).get("above", [])
            if a and b:
                r = ratio(med(b), med(a))
                res["live"][f"ratio/{h}"] = r
                cells.append(f"{name} ×{r}")
        if cells:
            md.append(f"\n{hi:,} against {lo:,} flows (medians): " + ", ".join(cells) +
                      " (SPEC ≤ 2× is for section 5's random lookups).")
    md.append("")
else:
    missing.append("live (bench/peers.sh)")

# --- 5. connection table ----------------------------------------------------------
fj = os.path.join(B, "flows.json")
if os.path.exists(fj):
    fl = json.load(open(fj))
    res["flows"] = fl
    rows = []
    for s in fl["sizes"]:
        for k in ("syn_room", "established_random", "syn_full"):
            if s.get(k):
                rows.append({"flows": s["flows"], "case": k, **s[k]})
    wcsv("flows.csv", rows, ["flows", "case", "ns", "pass_ns", "above_ns"])
    md.append("## 5. Connection table at scale (bench_flows)\n")
    md.append("| table | filled | memlock | per flow | creating it: MemAvailable | SYN, room | established, random flow | SYN, table full |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in fl["sizes"]:
        g = lambda k: f"{s[k]['above_ns']:.0f} ns" if s.get(k) else "–"
        md.append(f"| {s['flows']:,} | {s['filled']:,} | {s['memlock_bytes'] / 2**20:.1f} MiB | "
                  f"{s['memlock_bytes'] / s['flows']:.0f} B | −{s['table_memavailable_drop_kb'] / 1024:.1f} MiB | "
                  f"{g('syn_room')} | {g('established_random')} | {g('syn_full')} |")
    o = fl.get("one_cpu_fill", {})
    sizes = {s["flows"]: s for s in fl["sizes"]}
    if len(sizes) >= 2:
        lo, hi = min(sizes), max(sizes)
        a, b = sizes[lo].get("established_random"), sizes[hi].get("established_random")
        if a and b:
            res["flows_ratio_established_big_vs_small"] = ratio(b["above_ns"], a["above_ns"])
            md.append(f"\nEstablished packet at {hi:,} vs {lo:,} flows: ×{ratio(b['above_ns'], a['above_ns'])} "
                      "(lookups spread over the whole table: cache misses).  ")
    if o.get("flows"):
        md.append(f"All {o['flows']:,} flows opened from ONE CPU: the table keeps {o['kept']:,} "
                  "(one common LRU list).  ")
    for r in jl("flows1m"):
        m = r.get("maps") or {}
        pg = r.get("pktgen") or {}
        md.append(f"Through the rig ({pg.get('flows', 0):,} whole handshakes from {r.get('threads', '?')} "
                  f"CPU(s) into a fresh shiftd, {pg.get('open_unanswered', '?')} unanswered): "
                  f"{r.get('flows4', 0):,} entries in its IPv4 table; all shiftd's maps "
                  f"{m.get('maps_memlock_total', 0) / 2**20:.0f} MiB memlock "
                  f"(IPv4 table {m.get('maps_memlock', {}).get('shift_flows4', 0) / 2**20:.0f} MiB, "
                  f"IPv6 table {m.get('maps_memlock', {}).get('shift_flows6', 0) / 2**20:.0f} MiB).")
        res.setdefault("flows1m_rig", []).append(r)
    md.append("")
else:
    missing.append("flows (make bench-flows)")

# --- 2. packet rate ------------------------------------------------------------------
pk = jl("pktrate")
if pk:
    wcsv("pktrate.csv", pk, ["system", "flags", "round", "burst", "delivered_pps", "sent_pps",
                             "delivered", "sent", "refused", "conntrack_entries", "load1", "by_dst_last_byte"])
    agg = {}
    for r in pk:
        agg.setdefault((r["system"], r["flags"]), []).append(r["delivered_pps"])
    res["pktrate"] = {f"{s}/{f}": {"median_pps": med(v), "runs": v} for (s, f), v in agg.items()}
    # per flags, per round: system -> packets/s (the systems of a round ran back to back)
    by_round = {}
    for r in pk:
        by_round.setdefault(r["flags"], {}).setdefault(r["round"], {})[r["system"]] = r["delivered_pps"]
    md.append("## 2. Packets/s through the edge host (bench/pktgen, median of rounds (min–max))\n")
    md.append("| packets | plain forwarding (no split) | nftables jhash DNAT | shift (XDP) | shift (TC) | "
              "XDP / plain | TC / plain | XDP / nft | TC / nft |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ahead = {}
    for f, label in (("ack", "established flows (100k flows, bursts of 64)"),
                     ("syn", "SYN, every one a new flow (one per call)")):
        p, n, s, t = (med(agg.get((x, f), [])) for x in ("plain", "nft", "shift", "shift-tc"))
        rp, rn, rs, rt = (rng(agg.get((x, f), [])) for x in ("plain", "nft", "shift", "shift-tc"))
        # ratios within each round, then their median
        rounds = by_round.get(f, {}).values()
        (csp, rsp), (ctp, rtp), (csn, rsn), (ctn, rtn) = (round_ratios(rounds, a, b) for a, b in (
            ("shift", "plain"), ("shift-tc", "plain"), ("shift", "nft"), ("shift-tc", "nft")))
        res["pktrate"][f"ratio/{f}"] = {"shift_vs_plain": rsp, "shift_vs_nft": rsn,
                                        "shift_tc_vs_plain": rtp, "shift_tc_vs_nft": rtn}
        md.append(f"| {label} | {fmt(p)}{rp} | {fmt(n)}{rn} | {fmt(s)}{rs} | {fmt(t)}{rt} | "
                  f"{csp} | {ctp} | {csn} | {ctn} |")
        ahead[f] = {x: rounds_ahead(rounds, x, "plain") for x in ("shift", "shift-tc")}
    # BENCH_BEFORE: an older shiftd in the same rounds; ratios within each round.
    if any(r["system"] in ("before", "before-tc") for r in pk):
        rev = (meta.get("before") or "?")[:12]
        md.append("")
        md.append(f"Before and after, the same rounds (`before` is shiftd at {rev}, BENCH_BEFORE; "
                  "ratios within each round, median (min–max)):\n")
        md.append("| packets | before XDP | after XDP | after / before | before TC | after TC | after / before "
                  "| before XDP / plain | before TC / plain |")
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        res["pktrate"]["before"] = {"rev": meta.get("before")}
        for f, label in (("ack", "established flows"), ("syn", "SYN, a new flow each")):
            cells, meds = [], {}
            for a, b in (("shift", "before"), ("shift-tc", "before-tc"), ("before", "plain"), ("before-tc", "plain")):
                c, m = round_ratios(by_round.get(f, {}).values(), a, b)
                cells.append(c)
                meds[f"{a}_vs_{b}"] = m
            res["pktrate"]["before"][f] = meds
            b4, af, b4t, aft = (med(agg.get((x, f), [])) for x in ("before", "shift", "before-tc", "shift-tc"))
            md.append(f"| {label} | {fmt(b4)} | {fmt(af)} | {cells[0]} | {fmt(b4t)} | {fmt(aft)} | {cells[1]} | "
                      f"{cells[2]} | {cells[3]} |")
    ct = [r.get("conntrack_entries") for r in pk if r["system"] == "nft" and r["flags"] == "syn"]
    share = {}
    for r in pk:
        d = r.get("by_dst_last_byte", {})
        tot = sum(d.values()) or 1
        share.setdefault(r["system"], []).append(100.0 * sum(v for k, v in d.items() if k.startswith("2")) / tot)
    md.append("")
    md.append("Ratios: the median (min–max) of the ratios within each round (the systems ran back to back, in an order reversed every other round). "
              "shift (TC) is shiftd with attach = tc, what attach = auto picks on a veth.  ")
    if ahead.get("syn"):
        (ks, ns), (kt, nt) = ahead["syn"]["shift"], ahead["syn"]["shift-tc"]
        res["pktrate"]["syn_rounds_at_least_plain"] = {"shift": [ks, ns], "shift_tc": [kt, nt]}
        md.append(f"SYNs/s at least plain forwarding's (SPEC): XDP in {ks} of {ns} rounds, TC in {kt} of {nt}.  ")
    md.append("Green share delivered (target 10 %): " + ", ".join(
        f"{s} {med(v):.1f} %" for s, v in share.items()) + ".  ")
    if ct:
        md.append(f"nftables conntrack entries after its SYN runs: {', '.join(str(c) for c in ct)} "
                  "(nf_conntrack_max of this host; new SYNs early-drop unreplied entries once full).  ")
    chk = jl("pktgen_check")
    if chk:
        c = chk[0]
        md.append(f"Generator check: {c.get('unique_total', 0):,} SYNs, {c.get('repeated_total', 0)} repeated 5-tuples.")
    md.append("")
else:
    missing.append("pktrate (bench/peers.sh)")

# --- 2b. flood -------------------------------------------------------------------------
fd = jl("flood")
if fd:
    cols = ["system", "round", "conns", "broken", "changed_backend", "resets", "flood_sent",
            "entries_before", "entries_after", "flood_entries_before",
            "flood_entries_after", "rolled_back", "green_weight", "new_ok", "new_failed",
            "new_green_pct", "load1"]
    wcsv("flood.csv", fd, cols)
    res["flood"] = fd
    md.append("## 2b. A SYN flood against idle connections (issue 14's experiment)\n")
    md.append("Keep-alive connections at green 30 %, idle while green goes to 70 % and the flood "
              "of spoofed SYNs (a fresh 5-tuple each) arrives; then resumed. Broken: saw a second "
              "backend, or failed. Then 200 new connections. The flood's own: the entries "
              "whose client is in the flood's source block (– where the run did not count "
              "them).\n")
    md.append("| system | round | broken | SYNs sent | table entries before → after | "
              "of them the flood's own | rolled back | new connections ok | to green |")
    md.append("|---|---:|---:|---:|---|---|---|---:|---:|")
    for r in fd:
        md.append(f"| {r['system']} | {r['round']} | {r.get('broken')} of {r.get('conns')} | "
                  f"{fmt(r.get('flood_sent'))} | {fmt(r.get('entries_before'))} → {fmt(r.get('entries_after'))} | "
                  f"{fmt(r.get('flood_entries_before'))} → {fmt(r.get('flood_entries_after'))} | "
                  f"{'yes' if r.get('rolled_back') else 'no'} | {r.get('new_ok')} of "
                  f"{(r.get('new_ok') or 0) + (r.get('new_failed') or 0)} | {r.get('new_green_pct')} % |")
    md.append("")

# --- 3. HTTP -------------------------------------------------------------------------
ht = jl("http")
if ht:
    for r in ht:
        se = r.get("socket_errors") or {}
        r["socket_errors_total"] = sum(se.values())
    wcsv("http.csv", ht, ["system", "mode", "round", "rps", "requests", "p50_ms", "p75_ms",
                          "p90_ms", "p99_ms", "socket_errors_total", "non2xx", "conns", "load1"])
    agg = {}
    for r in ht:
        agg.setdefault((r["system"], r["mode"]), []).append(r)
    res["http"] = {}
    md.append(f"## 3. HTTP through each (wrk, {ht[0].get('conns')} connections, 2 threads, median of rounds (min–max))\n")
    md.append("| system | keep-alive req/s | p50 | p99 | close: conn/s | p50 | p99 | errors |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    systems = ["shift", "shift-tc", "nft", "haproxy", "nginx"]
    if any(r["system"] in ("before", "before-tc") for r in ht):
        systems += ["before", "before-tc"]
    for s in systems:
        ka, cl = agg.get((s, "keepalive"), []), agg.get((s, "close"), [])
        row = {}
        for mode, rs in (("keepalive", ka), ("close", cl)):
            row[mode] = {k: med([x.get(k) for x in rs]) for k in ("rps", "p50_ms", "p99_ms")}
        err = sum(x["socket_errors_total"] + x.get("non2xx", 0) for x in ka + cl)
        res["http"][s] = row
        rk = rng([x.get("rps") for x in ka])
        rc = rng([x.get("rps") for x in cl])
        md.append(f"| {s} | {fmt(row['keepalive']['rps'])}{rk} | {fmt(row['keepalive']['p50_ms'], 2)} ms | "
                  f"{fmt(row['keepalive']['p99_ms'], 2)} ms | {fmt(row['close']['rps'])}{rc} | "
                  f"{fmt(row['close']['p50_ms'], 2)} ms | {fmt(row['close']['p99_ms'], 2)} ms | {err} |")
    md.append("")
    md.append("| shift / peer | keep-alive req/s | keep-alive p99 | close conn/s | close p99 |")
    md.append("|---|---:|---:|---:|---:|")
    mine = [("shift", "shift (XDP)", "shift"), ("shift-tc", "shift (TC)", "shift_tc")]
    if "before" in systems:
        mine += [("before", "before (XDP)", "before"), ("before-tc", "before (TC)", "before_tc")]
    # per figure, per mode, per round: system -> figure (a round's systems ran back to back)
    per_round = {}
    for r in ht:
        for k in ("rps", "p99_ms"):
            per_round.setdefault((k, r["mode"]), {}).setdefault(r["round"], {})[r["system"]] = r.get(k)
    for me, label, key in mine:
        sh = res["http"].get(me, {})
        for s in systems[2:]:
            # after against its own before; a before against the peers only
            if s.startswith("before") and (me.startswith("before") or
                                           s != ("before" if me == "shift" else "before-tc")):
                continue
            o = res["http"].get(s)
            if not o or not sh or sh["keepalive"]["rps"] is None:
                continue
            cells, rr, pp = {}, {}, {}
            for k, d in (("rps", rr), ("p99_ms", pp)):
                for m in ("keepalive", "close"):
                    cells[k, m], d[m] = round_ratios(per_round.get((k, m), {}).values(), me, s)
            res["http"][f"ratio/{key}_vs_{s}"] = {"rps": rr, "p99": pp}
            md.append(f"| {label} vs {s} | {cells['rps', 'keepalive']} | {cells['p99_ms', 'keepalive']} | "
                      f"{cells['rps', 'close']} | {cells['p99_ms', 'close']} |")
    md.append("")
    md.append("Ratios: the median (min–max) of the ratios within each round.  ")
    close = per_round.get(("rps", "close"), {}).values()
    (ks, ns), (kt, nt) = (rounds_ahead(close, x, "nft") for x in ("shift", "shift-tc"))
    if ns or nt:
        res["http"]["close_rounds_at_least_nft"] = {"shift": [ks, ns], "shift_tc": [kt, nt]}
        md.append(f"`Connection: close` connections/s at least nftables' (SPEC): XDP in {ks} of {ns} rounds, "
                  f"TC in {kt} of {nt}.")
    md.append("")
    if "before" in systems:
        md.append("Before and after, ratios within each round, median (min–max):\n")
        md.append("| requests/s | after / before, XDP | after / before, TC | before / nft, XDP | before / nft, TC "
                  "| after / nft, XDP | after / nft, TC |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        for mode, label in (("keepalive", "keep-alive"), ("close", "`Connection: close`")):
            cells = [round_ratios(per_round.get(("rps", mode), {}).values(), a, b)[0]
                     for a, b in (("shift", "before"), ("shift-tc", "before-tc"), ("before", "nft"),
                                  ("before-tc", "nft"), ("shift", "nft"), ("shift-tc", "nft"))]
            md.append(f"| {label} | " + " | ".join(cells) + " |")
        md.append("")
else:
    missing.append("http (bench/peers.sh)")

# --- 4. reaction ----------------------------------------------------------------------
rx = jl("reaction")
if rx:
    wcsv("reaction.csv", rx, ["system", "round", "rate", "first_500_after_fail_ms", "green_requests_after_first_500",
                              "green_500s", "last_green_request_ms_after_first_500",
                              "green_requests_in_window_by_second", "client_sent", "client_ok",
                              "client_errors", "window_s", "load1"])
    res["reaction"] = rx
    md.append(f"## 4. Reaction to a bad green ({rx[0].get('rate')} new connections/s, 10 % green, "
              f"green answers 500 from t = 0; observed {rx[0].get('window_s')} s)\n")
    mech = {
        "shift": "max_consecutive_errors 5, max_error_rate 5 %, HTTP check every 50 ms, timeout 40 ms (fall 1)",
        "haproxy": "observe layer7, error-limit 5, on-error mark-down; check inter 100ms fall 1",
        "haproxy50": "observe layer7, error-limit 5, on-error mark-down; check inter 50ms fall 1",
        "nginx": "max_fails=5 fail_timeout=10s, proxy_next_upstream http_500 (passive only)",
    }
    systems = []
    for r in rx:
        if r["system"] not in systems:
            systems.append(r["system"])
    rounds = max(len([r for r in rx if r["system"] == s]) for s in systems)
    md.append(f"Median over {rounds} round(s) (min–max); the systems take turns in each round.\n")
    md.append("| system | mechanism | requests reaching green after its first 500 | first 500 → last one | 5xx seen by clients |")
    md.append("|---|---|---:|---:|---:|")
    res["reaction_by_system"] = {}

    def c5(r):
        return sum(v for k, v in r.get("client_errors", {}).items() if k.startswith("http_5"))

    def rng1(v):
        v = [x for x in v if x is not None]
        return f" ({min(v):,.1f}–{max(v):,.1f})" if len(v) > 1 else ""

    def early(r):
        # The system took green out before the fault: a false positive, not a reaction.
        # shift says when it rolled back; for the others, no green request in the 200 ms
        # before the fault (10 inter-arrival times at ~50 green requests/s) says it.
        if r.get("rollback_ms_after_fail") is not None:
            return r["rollback_ms_after_fail"] < 0
        return r.get("last_green_request_ms_after_fail") is not None and \
            r["last_green_request_ms_after_fail"] < -200

    invalid = {}
    for s in systems:
        rs_all = [r for r in rx if r["system"] == s]
        rs = [r for r in rs_all if not early(r)]
        invalid[s] = len(rs_all) - len(rs)
        n = [r.get("green_requests_after_first_500") for r in rs]
        ms = [r.get("last_green_request_ms_after_first_500") for r in rs]
        e5 = [c5(r) for r in rs]
        res["reaction_by_system"][s] = {"rounds": len(rs), "requests_median": med(n), "requests": n,
                                        "ms_median": med(ms), "ms": ms, "client_5xx": e5}
        md.append(f"| {s} | {mech.get(s, '')} | {fmt(med(n))}{rng(n)} | {fmt(med(ms), 1)}{rng1(ms)} ms | "
                  f"{fmt(med(e5))}{rng(e5)} |")
    bad = {s: n for s, n in invalid.items() if n}
    if bad:
        md.append("\nRounds left out of the medians (green taken out *before* the fault: a false "
                  "positive, e.g. a check timing out on a starved host): " +
                  ", ".join(f"{s} {n}" for s, n in bad.items()) + ".")
    res["reaction_false_early"] = invalid
    md.append("\nEach round:\n")
    md.append("| round | system | requests after first 500 | first 500 → last | fault → first 500 | fault → last green request | 5xx seen by clients | load1 |")
    md.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rx:
        extra = ""
        if r["system"] == "shift" and r.get("shift_last_rollback"):
            extra = (f" (rollback {fmt(r.get('rollback_ms_after_fail'), 1)} ms after the fault, "
                     f"{r['shift_last_rollback'].get('reaction_us')} µs after its sample)")
        md.append(f"| {r.get('round', 1)} | {r['system']} | {fmt(r.get('green_requests_after_first_500'))} | "
                  f"{fmt(r.get('last_green_request_ms_after_first_500'), 1)} ms{extra} | "
                  f"{fmt(r.get('first_500_after_fail_ms'), 1)} ms | "
                  f"{fmt(r.get('last_green_request_ms_after_fail'), 1)} ms | {c5(r)} | {r.get('load1')} |")
    # Flat out, then paced (50k samples/s, SCHED_FIFO): the loop's CPU idles in between (§7w).
    for name, key, what in (("bench-rollback.txt", "rollback_reaction_us", "background samples flat out"),
                            ("bench-rollback-paced.txt", "rollback_reaction_paced_us",
                             "50k background samples/s, SCHED_FIFO")):
        rb = os.path.join(out, name)
        if not os.path.exists(rb):
            continue
        t = open(rb).read()
        m = re.search(r"reaction us: p50 ([\d.]+)\s+p90 ([\d.]+)\s+p99 ([\d.]+)", t)
        if m:
            res[key] = {"p50": float(m.group(1)), "p90": float(m.group(2)), "p99": float(m.group(3))}
            md.append(f"\nshiftd alone (bench-rollback, {what}): sample → weight write "
                      f"p50 {m.group(1)} µs, p99 {m.group(3)} µs.")
    md.append("")
else:
    missing.append("reaction (bench/peers.sh)")

# --- 6. agent --------------------------------------------------------------------------
ag = jl("agent")
if ag:
    wcsv("agent.csv", ag, ["target_rate", "injectors", "window_s", "samples", "rate", "dropped",
                           "shiftd_cpu_s", "shiftd_cpu_s_ticks", "shiftd_cpu_pct", "ns_per_sample", "load1"])
    res["agent"] = ag
    md.append("## 6. Agent cost (samples through the ring buffer into a running shiftd)\n")
    md.append("| target samples/s | achieved | dropped | shiftd CPU (% of one core) | CPU per sample |")
    md.append("|---:|---:|---:|---:|---:|")
    for r in ag:
        md.append(f"| {fmt(r['target_rate']) if r['target_rate'] else 'idle'} | {fmt(r['rate'])} | {r['dropped']} | "
                  f"{r['shiftd_cpu_pct']:.1f} % | {fmt(r['ns_per_sample']) + ' ns' if r['samples'] else '–'} |")
    top = max(ag, key=lambda r: r["rate"])
    if top["rate"] and top["ns_per_sample"]:
        md.append(f"\nAt the measured {top['ns_per_sample']:.0f} ns per sample, 1M samples/s would take "
                  f"{top['ns_per_sample'] * 1e6 / 1e9 * 100:.0f} % of one core (the injector, two test runs per "
                  f"sample, tops out at {top['rate']:,.0f}/s here).")
    md.append("")
else:
    missing.append("agent (bench/peers.sh)")

if missing:
    md.append("Not in this run: " + "; ".join(missing) + ".")
json.dump(res, open(os.path.join(B, "results.json"), "w"), indent=1, sort_keys=True)
open(os.path.join(B, "summary.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
PYEOF
