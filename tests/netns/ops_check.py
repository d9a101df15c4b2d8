#!/usr/bin/env python3
"""Helpers of tests/netns/test_ops.sh (stdlib only; every loop is bounded).

  ops_check.py compare STATUS_JSON SCRAPE
      The figures of `shiftctl status --json` equal the shift_* series the node
      exporter serves: per service the green weight, the latch and the rollback
      count; per backend connections, errors (by kind), HTTP responses (by class)
      and latency samples; the datapath counters. Prints one line per check
      group; exit 1 on any difference.

  ops_check.py series SCRAPE NAME...
      Every NAME has at least one sample (histograms: NAME_bucket) in SCRAPE.

  ops_check.py poll FILE COUNT SECONDS BACKENDS
      Read FILE COUNT times over about SECONDS while shiftd rewrites it; every
      read must be a whole file: the first and last families, BACKENDS
      shift_backend_up samples, a final newline, and the same number of lines
      each time. Prints {"reads", "partial", "rewrites_seen", ...} as JSON;
      exit 1 if any read was partial or no rewrite was seen.

  ops_check.py notify SOCKET LOG SECONDS
      An sd_notify receiver: binds the datagram socket SOCKET and appends
      "MONOTONIC_SECONDS LINE" to LOG for every line received, for SECONDS.

  ops_check.py exprs DASHBOARD RULES_OUT
      The PromQL of every Grafana panel and annotation, with the dashboard's
      variables replaced, written as recording rules for `promtool check rules`.

  ops_check.py names SCRAPE FILE...
      Every shift_* metric name used in FILEs (rules, dashboard) exists in SCRAPE.
"""

import json
import os
import re
import socket
import sys
import time

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise SystemExit(f"ops_check: not a sample line: {line!r}")
        labels = {}
        for k, v in LABEL.findall(m.group(2) or ""):
            labels[k] = v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        series[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return series


def get(series, name, **labels):
    return series.get((name, frozenset(labels.items())))


def compare(status_path, scrape_path):
    with open(status_path) as f:
        st = json.load(f)
    with open(scrape_path) as f:
        sc = parse(f.read())
    bad = []
    counts = {}

    def check(group, what, want, got):
        counts[group] = counts.get(group, 0) + 1
        if got is None:
            bad.append(f"{what}: missing from the scrape (status says {want})")
        elif abs(float(want) - got) > 1e-9:
            bad.append(f"{what}: scrape {got:g}, status {want}")

    for s in st["services"]:
        svc = s["service"]
        check("weight", f"{svc} green weight ratio", s["green_weight_bp"] / 10000.0,
              get(sc, "shift_green_weight_ratio", service=svc))
        check("latch", f"{svc} rollback_active", 1 if s["rolled_back"] else 0,
              get(sc, "shift_rollback_active", service=svc))
        total = sum(v for (n, ls), v in sc.items()
                    if n == "shift_rollbacks_total" and dict(ls).get("service") == svc)
        reasons = sum(1 for (n, ls) in sc if n == "shift_rollbacks_total"
                      and dict(ls).get("service") == svc)
        check("rollbacks", f"{svc} rollbacks (sum of {reasons} reasons)", s["rollbacks_total"],
              total if reasons else None)
        for b in s["backends"]:
            lb = dict(service=svc, color=b["color"], backend=b["backend"])
            what = f"{svc} {b['color']} {b['backend']}"
            check("connections", f"{what} connections", b["connections"],
                  get(sc, "shift_backend_connections_total", **lb))
            for kind, n in b["errors_by_kind"].items():
                check("errors", f"{what} errors {kind}", n,
                      get(sc, "shift_backend_errors_total", kind=kind, **lb))
            for cls, n in b["responses"].items():
                check("responses", f"{what} responses {cls}", n,
                      get(sc, "shift_backend_responses_total", **{"class": cls}, **lb))
            resp = get(sc, "shift_backend_latency_seconds_count", kind="response", **lb)
            conn = get(sc, "shift_backend_latency_seconds_count", kind="connect", **lb)
            # status: the response histogram when it has samples, else connect's
            check("latency", f"{what} latency samples", b["latency_samples"],
                  resp if resp else conn)
            check("health", f"{what} up", 1 if b["healthy"] in (True, None) else 0,
                  get(sc, "shift_backend_up", **lb))
    other = {"flow_new": ("shift_flows_created_total", {}),
             "flow_insert_fail": ("shift_flow_insert_failures_total", {}),
             "ringbuf_dropped": ("shift_ringbuf_dropped_total", {"ring": "samples"}),
             "errbuf_dropped": ("shift_ringbuf_dropped_total", {"ring": "errors"}),
             "override_hit": ("shift_source_override_hits_total", {}),
             "flow_insert": ("shift_flow_inserts_total", {}),
             "syn_slot_miss": ("shift_syn_slot_misses_total", {}),
             "reply_fib": ("shift_replies_fib_total", {}),
             "connect_fallback": ("shift_connect_fallbacks_total", {}),
             "ack_unmatched": ("shift_handshake_acks_unmatched_total", {}),
             "icmp_too_big_forwarded": ("shift_icmp_too_big_forwarded_total", {})}
    for name, v in st["datapath"].items():
        if name in other:
            got = get(sc, other[name][0], **other[name][1])
        elif name.startswith("pass_"):
            got = get(sc, "shift_packets_passed_total", reason=name[5:])
        else:
            got = get(sc, "shift_packets_dropped_total", reason=name)
        check("datapath", f"datapath {name}", v, got)
    for g in sorted(counts):
        print(f"  compared {counts[g]:3d} {g}")
    for b in bad:
        print(f"  DIFF {b}")
    return 1 if bad else 0


def series_present(scrape_path, names):
    with open(scrape_path) as f:
        text = f.read()
    sc = parse(text)
    have = {n for n, _ in sc}
    # A family shiftd declares but has no sample for yet (the last drill's time
    # to blue before any drill) is exported all the same; histogram and summary
    # families stand for their _bucket/_sum/_count series.
    for m in re.finditer(r"^# TYPE (shift_[a-z0-9_]+) (\w+)", text, re.M):
        have.add(m.group(1))
        if m.group(2) in ("histogram", "summary"):
            have |= {m.group(1) + x for x in ("_bucket", "_sum", "_count")}
    missing = [n for n in names if n not in have and n + "_bucket" not in have]
    for n in missing:
        print(f"  missing series: {n}")
    return 1 if missing else 0


def poll(path, count, seconds, backends):
    count, seconds, backends = int(count), float(seconds), int(backends)
    pause = seconds / count
    reads = partial = rewrites = 0
    prev = None
    lines = None
    problems = []
    deadline = time.monotonic() + seconds * 3 + 10
    while reads < count and time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            problems.append("file missing")
            partial += 1
            reads += 1
            continue
        reads += 1
        # Each rewrite is a new file (rename): a new inode or mtime; numbers get reused.
        if prev is not None and (st.st_ino, st.st_mtime_ns) != prev:
            rewrites += 1
        prev = (st.st_ino, st.st_mtime_ns)
        text = data.decode("utf-8", "replace")
        n = text.count("\n")
        why = None
        if not text.startswith("# HELP shift_build_info "):
            why = "does not start with shift_build_info"
        elif not text.endswith("\n"):
            why = "no final newline"
        elif text.count("\nshift_backend_up{") != backends:
            why = f"{text.count(chr(10) + 'shift_backend_up{')} shift_backend_up samples"
        elif lines is not None and n != lines:
            why = f"{n} lines, earlier reads had {lines}"
        if why:
            partial += 1
            if len(problems) < 5:
                problems.append(f"read {reads}: {why} ({len(data)} bytes)")
        elif lines is None:
            lines = n
        time.sleep(pause)
    out = {"reads": reads, "partial": partial, "rewrites_seen": rewrites,
           "lines": lines, "problems": problems}
    print(json.dumps(out))
    return 1 if partial or reads < count or not rewrites else 0


def notify(sock_path, log_path, seconds):
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(0.2)
    end = time.monotonic() + float(seconds)
    with open(log_path, "a", buffering=1) as f:
        while time.monotonic() < end:
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            now = time.monotonic()
            for line in data.decode("utf-8", "replace").split("\n"):
                f.write(f"{now:.3f} {line}\n")
    return 0


def exprs(dash_path, out_path):
    with open(dash_path) as f:
        d = json.load(f)
    found = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    found.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(d.get("panels", []))
    for a in d.get("annotations", {}).get("list", []):
        if a.get("expr"):
            found.append(("annotation " + a.get("name", "?"), a["expr"]))
    subst = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m",
             "${datasource}": "x", "$instance": ".*", "$service": ".*"}
    with open(out_path, "w") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, (title, e) in enumerate(found):
            for k, v in subst.items():
                e = e.replace(k, v)
            if "$" in e:
                raise SystemExit(f"ops_check: unknown variable in {title!r}: {e}")
            f.write(f"      - record: dashboard:expr_{i}\n        expr: {json.dumps(e)}\n")
    print(f"  {len(found)} dashboard expressions")
    return 0 if found else 1


def names(scrape_path, files):
    with open(scrape_path) as f:
        text = f.read()
    sc = parse(text)
    have = {n for n, _ in sc}
    # A family shiftd declares but has no sample for yet (the last drill's time
    # to blue before any drill) is exported all the same; histogram and summary
    # families stand for their _bucket/_sum/_count series.
    for m in re.finditer(r"^# TYPE (shift_[a-z0-9_]+) (\w+)", text, re.M):
        have.add(m.group(1))
        if m.group(2) in ("histogram", "summary"):
            have |= {m.group(1) + x for x in ("_bucket", "_sum", "_count")}
    used = set()
    for path in files:
        with open(path) as f:
            used |= set(re.findall(r"\bshift_[a-z0-9_]+", f.read()))
    missing = sorted(n for n in used if n not in have)
    for n in missing:
        print(f"  used but not exported: {n}")
    print(f"  {len(used)} shift_* names used, {len(used) - len(missing)} exported")
    return 1 if missing else 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "compare":
        return compare(argv[2], argv[3])
    if len(argv) >= 4 and argv[1] == "series":
        return series_present(argv[2], argv[3:])
    if len(argv) == 6 and argv[1] == "poll":
        return poll(*argv[2:])
    if len(argv) == 5 and argv[1] == "notify":
        return notify(*argv[2:])
    if len(argv) == 4 and argv[1] == "exprs":
        return exprs(argv[2], argv[3])
    if len(argv) >= 4 and argv[1] == "names":
        return names(argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
