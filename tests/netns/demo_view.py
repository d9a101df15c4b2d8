#!/usr/bin/env python3
"""Live view of `make demo` (tests/netns/demo.sh): stdlib only.

    demo_view.py --service web --events FILE --rate FILE [--rate FILE ...] -- STATUS-CMD...

Every second it reads
  - the per-second JSON lines of `client.py rate` (one file per client): new connections
    per backend, failures, p99 as the clients saw them;
  - `STATUS-CMD` (shiftctl ... status --json SERVICE): the weight, the rollback latch, the
    ramp, the last rollback (reason, reaction time), per-pool connections, error rate and
    latency percentiles over shift's window;
  - the events FILE, written by demo.sh: "EPOCH<TAB>TEXT" lines; "END" ends the view.
On a terminal it redraws a compact screen in place; otherwise it prints one plain log line
per second (and each event once). It exits on END, when its parent goes away, or after
--max-seconds.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

BAR = 30


def fmt_ms(v):
    if v is None:
        return "-"
    if v < 1:
        return f"{v * 1000:.0f}us"
    if v < 1000:
        return f"{v:.1f}ms"
    return f"{v / 1000:.2f}s"


def fmt_s(v):
    return "-" if not v else fmt_ms(v * 1000.0)


def clip(line, width):
    """line cut to width visible columns (ANSI sequences kept, not counted)."""
    out, n, i = [], 0, 0
    while i < len(line):
        if line[i] == "\033":
            j = line.find("m", i)
            j = len(line) - 1 if j < 0 else j
            out.append(line[i:j + 1])
            i = j + 1
            continue
        if n >= width:
            break
        out.append(line[i])
        n += 1
        i += 1
    return "".join(out) + ("\033[0m" if "\033" in line else "")


def color_of(name):
    return "green" if name.startswith("green") else "blue"


class RateFile:
    """Follows one client's per-second lines."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.buf = ""
        self.lines = []  # every per-second dict so far

    def poll(self):
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except OSError:
            return
        self.buf += data
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if not d.get("summary"):
                self.lines.append(d)


class View:
    def __init__(self, a):
        self.a = a
        self.tty = sys.stdout.isatty() and not a.plain
        self.t0 = time.time()
        self.rates = [RateFile(p) for p in a.rate]
        self.events = []  # (t, text)
        self.ev_pos = 0
        self.ev_printed = 0
        self.end = False
        self.st = None
        self.st_err = ""
        self.st_time = 0.0  # when self.st was read
        self.st_lock = threading.Lock()
        self.prev_conns = None
        self.last_lines = []

    # ---- inputs
    def poll_events(self):
        try:
            with open(self.a.events, encoding="utf-8", errors="replace") as f:
                f.seek(self.ev_pos)
                data = f.read()
                # only whole lines
                cut = data.rfind("\n") + 1
                self.ev_pos += len(data[:cut].encode())
                data = data[:cut]
        except OSError:
            return
        for line in data.splitlines():
            ts, _, text = line.partition("\t")
            if text == "END":
                self.end = True
                continue
            try:
                t = float(ts) - self.t0
            except ValueError:
                t, text = time.time() - self.t0, line
            self.events.append((max(0.0, t), text))

    def poll_status(self):
        """One status query (in the status thread: a slow answer must not freeze the view)."""
        try:
            out = subprocess.run(self.a.cmd, capture_output=True, text=True, timeout=10)
            j = json.loads(out.stdout)
            svc = [s for s in j.get("services", []) if s.get("service") == self.a.service]
            with self.st_lock:
                self.st = {"agent": j.get("agent_running"), "svc": svc[0] if svc else None}
                self.st_time = time.time()
                self.st_err = "" if svc else f"service {self.a.service} not in status"
        except (subprocess.SubprocessError, ValueError, OSError) as e:
            with self.st_lock:
                self.st_err = f"status: {e}"[:100]

    def status_loop(self, stop):
        while not stop.is_set():
            t = time.monotonic()
            self.poll_status()
            # once a second: each answer costs shiftd tens of ms of its event loop
            stop.wait(max(0.05, 1.0 - (time.monotonic() - t)))

    def stale(self):
        """'' or a note when the last status answer is old (shiftd busy)."""
        age = time.time() - self.st_time if self.st_time else 0.0
        return f"status {age:.0f}s old: shiftd not answering" if age > 2.5 else ""

    def second(self):
        """The last second every client has reported (sum over clients)."""
        agg = {"blue": 0, "green": 0, "ok": 0, "failed": 0, "sent": 0, "p99": None,
               "errors": {}}
        have = [r.lines[-1] for r in self.rates if r.lines]
        for d in have:
            for k, v in d.get("by_backend", {}).items():
                agg[color_of(k)] += v
            agg["ok"] += d.get("ok", 0)
            agg["failed"] += d.get("failed", 0)
            agg["sent"] += d.get("sent", 0)
            for k, v in d.get("errors", {}).items():
                agg["errors"][k] = agg["errors"].get(k, 0) + v
            p = d.get("p99_ms")
            if p is not None:
                agg["p99"] = p if agg["p99"] is None else max(agg["p99"], p)
        agg["clients"] = len(have)
        return agg

    def totals(self):
        t = {"sent": 0, "failed": 0}
        for r in self.rates:
            for d in r.lines:
                t["sent"] += d.get("sent", 0)
                t["failed"] += d.get("failed", 0)
        return t

    # ---- output
    def model(self):
        with self.st_lock:
            st = self.st
        s = st["svc"] if st else None
        sec = self.second()
        n = sec["blue"] + sec["green"]
        m = {"t": time.time() - self.t0, "sec": sec, "n": n,
             "share": {c: (100.0 * sec[c] / n if n else 0.0) for c in ("blue", "green")},
             "svc": s, "tot": self.totals()}
        if s:
            m["weight"] = s.get("green_weight", "?")
            m["latched"] = bool(s.get("rolled_back"))
            r = s.get("ramp", {})
            if r.get("active") and r.get("steps"):
                i = r.get("step_index", 0)
                m["ramp"] = (f"step {i + 1}/{len(r['steps'])} of {','.join(r['steps'])}, "
                             f"hold {r.get('hold_seconds', 0):g}s")
            else:
                m["ramp"] = "-"
            lr = s.get("last_rollback") or {}
            m["rollback"] = (f"{lr.get('reason', '?')}; reaction {lr.get('reaction_us', 0):.1f} us"
                             if lr.get("unix_ns") else "none")
            m["pools"] = s.get("pools", {})
        return m

    def pool(self, m, c):
        p = (m.get("pools") or {}).get(c, {})
        req = p.get("window_requests", 0)
        er = p.get("error_rate")
        return {"conns": p.get("connections", 0),
                "err": (f"{100.0 * er:.2f}%" if (er is not None and req) else "-"),
                "werr": p.get("window_errors", 0), "wreq": req,
                "p99": fmt_s(p.get("latency_p99_seconds")) if req else "-"}

    def plain(self, m):
        # events first, each once
        for t, text in self.events[self.ev_printed:]:
            print(f"t={t:5.1f}s EVENT  {text}", flush=True)
        self.ev_printed = len(self.events)
        sec = m["sec"]
        if m["svc"] is None:
            line = f"t={m['t']:5.1f}s (no status yet{': ' + self.st_err if self.st_err else ''})"
        else:
            b, g = self.pool(m, "blue"), self.pool(m, "green")
            errs = ",".join(f"{k}={v}" for k, v in sorted(sec["errors"].items()))
            line = (f"t={m['t']:5.1f}s green {m['weight']:>5} latch {'ON ' if m['latched'] else 'off'}"
                    f" | last 1s: blue {m['share']['blue']:5.1f}% green {m['share']['green']:5.1f}%"
                    f" of {m['n']} new"
                    f" | conns blue {b['conns']} green {g['conns']}"
                    f" | err(window) blue {b['err']} green {g['err']}"
                    f" | p99(window) blue {b['p99']} green {g['p99']}"
                    f" | clients: {sec['failed']} failed{' (' + errs + ')' if errs else ''},"
                    f" p99 {fmt_ms(sec['p99'])}")
            if self.stale():
                line += f" | ({self.stale()})"
        self.last_lines.append(line)
        print(line, flush=True)

    def screen(self, m):
        cols = shutil.get_terminal_size((100, 30)).columns
        out = []
        s = m["svc"]
        out.append(f"shift demo: service {self.a.service}  VIP {s.get('vip', '?') if s else '?'}"
                   f"   t={m['t']:.0f}s   (Ctrl-C stops and cleans up)")
        if s is None:
            out.append(f"waiting for shiftd... {self.st_err}")
        else:
            latch = "\033[1;31mROLLED BACK (latched)\033[0m" if m["latched"] else "off"
            out.append(f"green weight \033[1m{m['weight']:>6}\033[0m   latch {latch}   ramp {m['ramp']}")
            out.append("")
            out.append(f"{'':7} {'new connections, last 1s':<{BAR + 16}}{'conns':>8} "
                       f"{'err rate':>9} {'p99':>8}")
            for c, code in (("blue", "34"), ("green", "32")):
                sh = m["share"][c]
                fill = int(round(BAR * sh / 100.0))
                bar = f"\033[{code}m" + "█" * fill + "\033[0m" + "·" * (BAR - fill)
                p = self.pool(m, c)
                out.append(f"  {c:<5} {bar} {sh:5.1f}% {m['sec'][c]:>5}/s  {p['conns']:>8} "
                           f"{p['err']:>9} {p['p99']:>8}")
            out.append(f"  {'':5} (err rate and p99: shift's return path over the rollback window)")
            sec = m["sec"]
            tot = sec["ok"] + sec["failed"]
            errs = ",".join(f"{k}={v}" for k, v in sorted(sec["errors"].items()))
            fr = f"{100.0 * sec['failed'] / tot:.1f}%" if tot else "-"
            out.append(f"clients  {sec['sent']} req/s from {sec['clients']}, failed {sec['failed']} ({fr})"
                       f"{' ' + errs if errs else ''}, p99 {fmt_ms(sec['p99'])};"
                       f" total {m['tot']['sent']} sent, {m['tot']['failed']} failed")
            out.append(f"rollback {m['rollback']}")
            if self.stale():
                out.append(f"\033[33m({self.stale()}; shift figures above are from then)\033[0m")
        out.append("")
        out.append("events")
        for t, text in self.events[-9:]:
            out.append(f"  {int(t) // 60:02d}:{int(t) % 60:02d}  {text}")
        sys.stdout.write("\033[H" + "".join(clip(line, cols - 1) + "\033[K\n" for line in out)
                         + "\033[J")
        sys.stdout.flush()

    def frame(self):
        for r in self.rates:
            r.poll()
        self.poll_events()
        m = self.model()
        if self.tty:
            self.screen(m)
        else:
            self.plain(m)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--service", default="web")
    ap.add_argument("--events", required=True)
    ap.add_argument("--rate", action="append", default=[])
    ap.add_argument("--plain", action="store_true", help="log lines even on a terminal")
    ap.add_argument("--max-seconds", type=float, default=180.0)
    ap.add_argument("cmd", nargs="+", help="-- the status --json command")
    a = ap.parse_args()

    v = View(a)
    ppid = os.getppid()
    stop = threading.Event()
    threading.Thread(target=v.status_loop, args=(stop,), daemon=True).start()
    for _ in range(20):  # a first status before the first frame, if it comes quickly
        if v.st or v.st_err:
            break
        time.sleep(0.05)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if v.tty:
        sys.stdout.write("\033[?25l\033[2J")  # hide the cursor, clear once
    try:
        start = nxt = time.monotonic()
        while True:
            v.frame()
            if v.end or os.getppid() != ppid or time.monotonic() - start > a.max_seconds:
                break
            nxt += 1.0
            time.sleep(max(0.05, nxt - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if v.tty:
            sys.stdout.write("\033[?25h")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
