#!/usr/bin/env python3
"""Live view of `make demo-fleet` (tests/netns/demo_fleet.sh): stdlib only.

    fleet_view.py --shiftctl PATH --events FILE [--service web] [--plain]
                  --node NAME,NETNS,CONFIG,RATEFILE [--node ...]

Every second, for each node: `shiftctl -c CONFIG status --json` in the node's network
namespace (nsenter: the pins live in the host's mount namespace) gives the green
weight, the rollback latch, and the last rollback's origin, fleet_lag_us and reason;
the node's client (client.py rate, per-second JSON lines in RATEFILE) gives what its
users saw through that edge in the last second. The first node's `fleet status
--json` gives the fleet's revision and whether every node agrees. The events FILE,
written by demo_fleet.sh, holds "EPOCH<TAB>TEXT" lines; "END" ends the view.
On a terminal the screen is redrawn in place; otherwise one plain line per node per
second (and each event once). Shares its helpers with demo_view.py.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_view import BAR, RateFile, clip, color_of, fmt_ms  # noqa: E402


class Node:
    def __init__(self, spec, shiftctl, service):
        try:
            self.name, self.netns, self.config, rate = spec.split(",", 3)
        except ValueError:
            raise SystemExit(f"fleet_view: --node NAME,NETNS,CONFIG,RATEFILE, not {spec!r}")
        self.cmd = ["nsenter", f"--net={self.netns}", "--", shiftctl, "-c", self.config]
        self.service = service
        self.rate = RateFile(rate)
        self.svc = None
        self.err = ""
        self.lock = threading.Lock()

    def poll(self):
        try:
            out = subprocess.run(self.cmd + ["status", "--json", self.service],
                                 capture_output=True, text=True, timeout=10)
            j = json.loads(out.stdout)
            s = [x for x in j.get("services", []) if x.get("service") == self.service]
            with self.lock:
                self.svc = s[0] if s else None
                self.err = "" if s else f"no service {self.service}"
        except (subprocess.SubprocessError, ValueError, OSError) as e:
            with self.lock:
                self.err = f"status: {e}"[:60]

    def second(self):
        self.rate.poll()
        d = self.rate.lines[-1] if self.rate.lines else {}
        agg = {"blue": 0, "green": 0}
        for k, v in d.get("by_backend", {}).items():
            agg[color_of(k)] += v
        agg["failed"] = d.get("failed", 0)
        agg["e500"] = d.get("errors", {}).get("http_500", 0)
        agg["tot500"] = sum(x.get("errors", {}).get("http_500", 0) for x in self.rate.lines)
        return agg


class View:
    def __init__(self, a):
        self.a = a
        self.tty = sys.stdout.isatty() and not a.plain
        self.t0 = time.time()
        self.nodes = [Node(s, a.shiftctl, a.service) for s in a.node]
        self.events = []
        self.ev_pos = 0
        self.ev_printed = 0
        self.end = False
        self.fleet = None
        self.fleet_err = ""

    def poll_events(self):
        try:
            with open(self.a.events, encoding="utf-8", errors="replace") as f:
                f.seek(self.ev_pos)
                data = f.read()
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

    def poll_fleet(self):
        n = self.nodes[0]
        try:
            out = subprocess.run(n.cmd + ["fleet", "status", "--json"], capture_output=True,
                                 text=True, timeout=10)
            self.fleet = json.loads(out.stdout)
            self.fleet_err = ""
        except (subprocess.SubprocessError, ValueError, OSError) as e:
            self.fleet_err = f"fleet status: {e}"[:60]

    def status_loop(self, stop):
        while not stop.is_set():
            t = time.monotonic()
            ths = [threading.Thread(target=n.poll) for n in self.nodes]
            if not self.a.no_fleet:
                ths.append(threading.Thread(target=self.poll_fleet))
            for th in ths:
                th.start()
            for th in ths:
                th.join()
            stop.wait(max(0.05, 1.0 - (time.monotonic() - t)))

    def rows(self):
        out = []
        for n in self.nodes:
            with n.lock:
                s, err = n.svc, n.err
            sec = n.second()
            tot = sec["blue"] + sec["green"]
            gshare = 100.0 * sec["green"] / tot if tot else 0.0
            r = {"node": n.name, "err": err, "sec": sec, "gshare": gshare, "n": tot}
            if s:
                lr = s.get("last_rollback") or {}
                r.update(weight=s.get("green_weight", "?"), latched=bool(s.get("rolled_back")),
                         origin=lr.get("origin", "-") if lr.get("unix_ns") else "-",
                         lag=lr.get("fleet_lag_us"), reason=lr.get("reason", "") if lr.get("unix_ns") else "",
                         react=lr.get("reaction_us"))
            out.append(r)
        return out

    def fleet_line(self):
        f = self.fleet
        if self.a.no_fleet:
            return "no fleet: three lone hosts, each deciding on its own"
        if not f:
            return f"fleet: {self.fleet_err or 'no answer yet'}"
        nodes = f.get("nodes", [])
        agree = sum(1 for x in nodes if x.get("agrees"))
        alive = sum(1 for x in nodes if x.get("alive"))
        return (f"fleet {f.get('fleet')} at etcd revision {f.get('revision')}: "
                f"{alive}/{len(nodes)} alive, {agree}/{len(nodes)} agree")

    @staticmethod
    def lag_txt(r):
        if r.get("origin") in (None, "-"):
            return "-"
        if r["origin"] == r["node"]:
            return f"origin (reaction {r.get('react') or 0:.0f} us)"
        lag = r.get("lag")
        return f"+{lag / 1000.0:.1f} ms after {r['origin']}" if lag is not None else "?"

    def plain(self, rows):
        for t, text in self.events[self.ev_printed:]:
            print(f"t={t:5.1f}s EVENT  {text}", flush=True)
        self.ev_printed = len(self.events)
        t = time.time() - self.t0
        for r in rows:
            if "weight" not in r:
                print(f"t={t:5.1f}s {r['node']}: {r['err'] or 'no status yet'}", flush=True)
                continue
            print(f"t={t:5.1f}s {r['node']}: green {r['weight']:>6} latch {'ON ' if r['latched'] else 'off'}"
                  f" | origin {r['origin']} {self.lag_txt(r)}"
                  f" | last 1s: green {r['gshare']:5.1f}% of {r['n']}, {r['sec']['e500']} x 500"
                  f" (total {r['sec']['tot500']})", flush=True)
        print(f"t={t:5.1f}s {self.fleet_line()}", flush=True)

    def screen(self, rows):
        cols = shutil.get_terminal_size((110, 30)).columns
        t = time.time() - self.t0
        out = [f"shift fleet demo: service {self.a.service} on {len(rows)} edge hosts, one etcd"
               f"   t={t:.0f}s   (Ctrl-C stops and cleans up)", self.fleet_line(), ""]
        out.append(f"{'node':<5} {'green weight':>12}  {'latch':<8} {'rollback origin / fleet lag':<34}"
                   f"{'its clients, last 1s: green share':<{BAR + 10}} {'500s':>6}")
        for r in rows:
            if "weight" not in r:
                out.append(f"{r['node']:<5} {r['err'] or 'waiting for shiftd...'}")
                continue
            latch = "\033[1;31mLATCHED\033[0m " if r["latched"] else "off     "
            fill = int(round(BAR * r["gshare"] / 100.0))
            bar = "\033[32m" + "█" * fill + "\033[0m" + "·" * (BAR - fill)
            who = f"{r['origin']} {self.lag_txt(r)}" if r["origin"] != "-" else "-"
            out.append(f"{r['node']:<5} \033[1m{r['weight']:>12}\033[0m  {latch} {who:<34}"
                       f"{bar} {r['gshare']:5.1f}% {r['sec']['e500']:>3}/s {r['sec']['tot500']:>4}")
        reasons = {r.get("reason") for r in rows if r.get("reason")}
        out.append("")
        out.append("last rollback: " + (" | ".join(sorted(reasons)) if reasons else "none"))
        out.append("")
        out.append("events")
        for et, text in self.events[-10:]:
            out.append(f"  {int(et) // 60:02d}:{int(et) % 60:02d}  {text}")
        sys.stdout.write("\033[H" + "".join(clip(x, cols - 1) + "\033[K\n" for x in out) + "\033[J")
        sys.stdout.flush()

    def frame(self):
        self.poll_events()
        rows = self.rows()
        if self.tty:
            self.screen(rows)
        else:
            self.plain(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--service", default="web")
    ap.add_argument("--shiftctl", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--node", action="append", required=True)
    ap.add_argument("--plain", action="store_true", help="log lines even on a terminal")
    ap.add_argument("--no-fleet", action="store_true", help="lone hosts: no fleet status")
    ap.add_argument("--max-seconds", type=float, default=240.0)
    a = ap.parse_args()
    v = View(a)
    ppid = os.getppid()
    stop = threading.Event()
    threading.Thread(target=v.status_loop, args=(stop,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if v.tty:
        sys.stdout.write("\033[?25l\033[2J")
    try:
        start = nxt = time.monotonic()
        time.sleep(0.3)
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
