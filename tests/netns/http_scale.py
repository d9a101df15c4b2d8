#!/usr/bin/env python3
"""Measure what a GET /metrics or a status costs shiftd's event loop
(tests/netns/test_http_scale.sh, test_status_scale.sh).

  stall   --sock PATH --url URL [--idle S] [--busy S] [--scrapers N] [--every MS] [--over MS]
          [--ctl-clients N] [--ctl-req LINE]
          Round trips of the control socket's "ping" (one request per connection,
          answered by the loop itself) every --every ms: first --idle seconds with no
          HTTP traffic, then --busy seconds while --scrapers threads GET --url back to
          back (and --ctl-clients threads ask the control socket --ctl-req, default
          "status json", back to back). One JSON line: {"idle": FIG, "busy": FIG,
          "scrapes": N, "codes": {CODE: N}, "scrape_ms": FIG, "bytes": LAST_BODY_SIZE,
          "busy_over": N, "ctl": {"n", "answers": {FIRST_LINE: N}, "ms": FIG,
          "bytes"}}, FIG being {"n", "p50_ms", "p99_ms", "max_ms"}, busy_over the busy
          pings over --over ms.
  ctl-burst --sock PATH [--n N] [--req LINE] [--out DIR]
          N control-socket requests (default "status json") sent at once, each on its
          own connection. One JSON line: {"answers": [FIRST_LINE...], "ms": [...],
          "bytes": [...], "distinct_bodies": N, "wall_ms": MS}; bodies as DIR/i.
  burst   --url URL [--n N] [--head] [--out DIR]
          N GETs (HEADs: no body to carry, the time is the server's) sent at once,
          each on its own connection. One JSON line: {"codes": [...], "ms": [...],
          "bytes": [...], "distinct_bodies": N, "wall_ms": MS}; bodies as DIR/i.
  sigterm --url URL --pid PID [--after MS] [--sock PATH [--req LINE]]
          Send a GET (and with --sock the control request --req, default "status
          json"), --after ms later SIGTERM to PID, and time until PID is gone (or a
          zombie). One JSON line: {"exit_ms": MS, "answer": FIRST_LINE, "ctl_answer":
          FIRST_LINE}.
  series  FILE...
          Check each file is Prometheus text (format 0.0.4: "# HELP"/"# TYPE" lines,
          samples "name{labels} value"); print its sorted series (name and labels,
          no value), one a line. Exit 1 naming the first bad line.
Every wait is bounded (socket timeouts); needs no privilege.
"""
import argparse
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request


def fig(ms):
    if not ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(ms)
    return {"n": len(s), "p50_ms": round(s[len(s) // 2], 3),
            "p99_ms": round(s[min(len(s) - 1, (len(s) * 99) // 100)], 3),
            "max_ms": round(s[-1], 3)}


def ping(path, timeout):
    """One control-socket round trip in ms (connect, "ping", read to EOF)."""
    t0 = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"ping\n")
        got = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
    if not got.startswith(b"OK"):
        raise RuntimeError("ping answered %r" % got[:80])
    return (time.monotonic() - t0) * 1000.0


def ctl(path, timeout, req):
    """(first line, body, ms) of one control-socket request read to EOF."""
    t0 = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(req.encode() + b"\n")
        chunks = []
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
    got = b"".join(chunks)
    line, _, body = got.partition(b"\n")
    return line.decode(errors="replace"), body, (time.monotonic() - t0) * 1000.0


def get(url, timeout, method="GET"):
    """(code, body, ms) of one GET (or HEAD)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method),
                                    timeout=timeout) as r:
            body, code = r.read(), r.status
    except urllib.error.HTTPError as e:
        body, code = e.read(), e.code
    return code, body, (time.monotonic() - t0) * 1000.0


def pings(path, seconds, every_ms, timeout):
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(ping(path, timeout))
        time.sleep(every_ms / 1000.0)
    return out


def cmd_stall(a):
    idle = pings(a.sock, a.idle, a.every, a.timeout)
    stop = threading.Event()
    lock = threading.Lock()
    res = {"codes": {}, "ms": [], "bytes": 0, "errors": []}

    def scraper():
        while not stop.is_set():
            try:
                code, body, ms = get(a.url, a.timeout)
            except Exception as e:  # a refused or cut connection: counted, not fatal
                with lock:
                    res["errors"].append(str(e)[:200])
                time.sleep(0.1)
                continue
            with lock:
                res["codes"][str(code)] = res["codes"].get(str(code), 0) + 1
                res["ms"].append(ms)
                res["bytes"] = len(body)

    cres = {"answers": {}, "ms": [], "bytes": 0}

    def asker():
        while not stop.is_set():
            try:
                line, body, ms = ctl(a.sock, a.timeout, a.ctl_req)
            except Exception as e:  # counted, not fatal
                line, body, ms = "(%s)" % str(e)[:100], b"", None
                time.sleep(0.1)
            with lock:
                cres["answers"][line[:60]] = cres["answers"].get(line[:60], 0) + 1
                if ms is not None:
                    cres["ms"].append(ms)
                    cres["bytes"] = len(body)

    threads = [threading.Thread(target=scraper, daemon=True) for _ in range(a.scrapers)]
    threads += [threading.Thread(target=asker, daemon=True) for _ in range(a.ctl_clients)]
    for t in threads:
        t.start()
    busy = pings(a.sock, a.busy, a.every, a.timeout)
    stop.set()
    for t in threads:
        t.join(a.timeout + 5)
    print(json.dumps({"idle": fig(idle), "busy": fig(busy), "scrapes": len(res["ms"]),
                      "codes": res["codes"], "scrape_ms": fig(res["ms"]),
                      "bytes": res["bytes"], "errors": res["errors"][:3],
                      "busy_over": sum(1 for x in busy if x > a.over),
                      "ctl": {"n": len(cres["ms"]), "answers": cres["answers"],
                              "ms": fig(cres["ms"]), "bytes": cres["bytes"]}}))
    return 0


def run_burst(a, request, failed, missing, key, first):
    """a.n requests released at once: request() gives (first, body, ms), failed(e)
    the same for an exception, missing for no answer in time. Prints each answer's
    first(r) under key, times, sizes and how many distinct bodies came back."""
    res = [None] * a.n
    go = threading.Event()

    def one(i):
        go.wait()
        try:
            res[i] = request()
        except Exception as e:
            res[i] = failed(e)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(a.n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    go.set()
    for t in threads:
        t.join(a.timeout + 5)
    wall = (time.monotonic() - t0) * 1000.0
    digests = set()
    for i, r in enumerate(res):
        if r is None:
            res[i] = r = missing
        digests.add(hashlib.sha256(r[1]).hexdigest())
        if a.out:
            with open(os.path.join(a.out, str(i)), "wb") as f:
                f.write(r[1])
    print(json.dumps({key: [first(r) for r in res], "ms": [round(r[2], 1) for r in res],
                      "bytes": [len(r[1]) for r in res], "distinct_bodies": len(digests),
                      "wall_ms": round(wall, 1)}))
    return 0


def cmd_ctl_burst(a):
    return run_burst(a, lambda: ctl(a.sock, a.timeout, a.req),
                     lambda e: ("(%s)" % str(e)[:100], b"", 0.0), ("(no answer)", b"", 0.0),
                     "answers", lambda r: r[0][:60])


def cmd_burst(a):
    return run_burst(a, lambda: get(a.url, a.timeout, "HEAD" if a.head else "GET"),
                     lambda e: (-1, str(e).encode(), 0.0), (-1, b"", 0.0),
                     "codes", lambda r: r[0])


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def cmd_sigterm(a):
    host, port = re.match(r"http://([^:/]+):(\d+)", a.url).groups()
    path = a.url.split("/", 3)[3]
    s = socket.create_connection((host, int(port)), timeout=a.timeout)
    s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % (path, host)).encode())
    c = None
    if a.sock:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(a.timeout)
        c.connect(a.sock)
        c.sendall(a.req.encode() + b"\n")
    time.sleep(a.after / 1000.0)
    t0 = time.monotonic()
    os.kill(a.pid, 15)
    while not gone(a.pid) and time.monotonic() - t0 < a.timeout:
        time.sleep(0.005)
    exit_ms = (time.monotonic() - t0) * 1000.0
    try:
        first = s.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError as e:
        first = "(%s)" % e
    s.close()
    cfirst = None
    if c:
        try:
            cfirst = c.recv(200).split(b"\n", 1)[0].decode(errors="replace") or "(closed)"
        except OSError as e:
            cfirst = "(%s)" % e
        c.close()
    print(json.dumps({"exit_ms": round(exit_ms, 1), "gone": gone(a.pid),
                      "answer": first or "(closed)", "ctl_answer": cfirst}))
    return 0


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
META = re.compile(r"^# (HELP %s .*|TYPE %s (counter|gauge|histogram|summary|untyped))$"
                  % (NAME, NAME))


def cmd_series(a):
    for path in a.files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if not text.endswith("\n"):
            print("%s: does not end in a newline" % path, file=sys.stderr)
            return 1
        keys = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.startswith("#"):
                if not META.match(line):
                    print("%s:%d: bad comment line: %.120s" % (path, n, line), file=sys.stderr)
                    return 1
                continue
            m = SAMPLE.match(line)
            if not m:
                print("%s:%d: bad sample line: %.120s" % (path, n, line), file=sys.stderr)
                return 1
            try:
                float(m.group(3).replace("+Inf", "inf"))
            except ValueError:
                print("%s:%d: bad value: %.120s" % (path, n, line), file=sys.stderr)
                return 1
            keys.append(m.group(1) + (m.group(2) or ""))
        for k in sorted(keys):
            print(k)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stall")
    p.add_argument("--sock", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--idle", type=float, default=2.0)
    p.add_argument("--busy", type=float, default=10.0)
    p.add_argument("--scrapers", type=int, default=2)
    p.add_argument("--every", type=float, default=5.0)
    p.add_argument("--over", type=float, default=100.0)
    p.add_argument("--ctl-clients", type=int, default=0)
    p.add_argument("--ctl-req", default="status json")
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("ctl-burst")
    p.add_argument("--sock", required=True)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--req", default="status json")
    p.add_argument("--out")
    p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("burst")
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--head", action="store_true")
    p.add_argument("--out")
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("sigterm")
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--after", type=float, default=30.0)
    p.add_argument("--sock")
    p.add_argument("--req", default="status json")
    p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("series")
    p.add_argument("files", nargs="+")
    a = ap.parse_args()
    return {"stall": cmd_stall, "ctl-burst": cmd_ctl_burst, "burst": cmd_burst,
            "sigterm": cmd_sigterm, "series": cmd_series}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
