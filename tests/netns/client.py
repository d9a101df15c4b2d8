#!/usr/bin/env python3
"""Load generator and checker for the shift netns rig (stdlib only).

Every run is bounded in count and in wall time and prints JSON on stdout.

  client.py new --url URL --count N [--concurrency C] [--timeout S] [--source ADDR]
                [--deadline S]
      N requests, each on a NEW connection (Connection: close).
      {"ok", "failed", "errors": {kind: n}, "by_backend": {name: n},
       "by_status": {code: n}, "p50_ms", "p99_ms", "elapsed_s"}
      by_backend counts every answer that carried X-Backend (5xx included);
      p50/p99 are over the ok answers.

  client.py keepalive --url URL --conns K --duration S [--interval MS]
                      [--timeout S] [--source ADDR] [--control-file F] [--ready-file F]
                      [--retry-reused]
      K persistent HTTP/1.1 connections, one request on each every interval.
      A reset, a close or a timeout is counted and the slot reconnects.
      --retry-reused: a request that dies with a reset or a close, without an
      answer, on a connection that had answered before is retried once on a new
      connection, as browsers and HTTP libraries do for idempotent requests;
      it counts as "retried" (and as a failure only if the retry fails too).
      {"conns", "connections", "requests", "ok", "failed", "resets", "closed",
       "changed_backend", "errors", "by_backend", "phases", "per_conn"}
      changed_backend = TCP connections that saw more than one backend name.
      --ready-file F: created once every slot has had its first answer.
      --control-file F: polled every interval; its first line is the current phase
      label (per-phase counts go to "phases"); the word "stop" ends the run.

  client.py rate --url URL --rate R --duration S [--concurrency C] [--timeout S]
      R new connections per second; one JSON line per second:
      {"t", "sent", "ok", "failed", "skipped", "errors", "by_backend", "p99_ms"}
      then a last line {"summary": true, ...} for the whole run.

Error kinds: connect_timeout, refused, unreachable, connect_error, reset, closed,
timeout, http_<code>, deadline, skipped, other.
"""

import argparse
import errno
import http.client
import json
import math
import os
import socket
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


# --------------------------------------------------------------------------
# one request


class Target:
    def __init__(self, url, source, timeout):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"client.py: unsupported url {url!r} (http://HOST[:PORT]/PATH)")
        self.host = u.hostname
        self.port = u.port or 80
        self.path = (u.path or "/") + (("?" + u.query) if u.query else "")
        hh = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = hh if self.port == 80 else f"{hh}:{self.port}"
        self.source = (source, 0) if source else None
        self.timeout = timeout


class Failure(Exception):
    def __init__(self, kind, backend=None, status=None):
        super().__init__(kind)
        self.kind = kind
        self.backend = backend
        self.status = status


def classify(exc, connecting):
    if isinstance(exc, Failure):
        return exc.kind
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "connect_timeout" if connecting else "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return "closed"
    if isinstance(exc, http.client.BadStatusLine):
        return "closed" if not str(exc).strip("'\"") else "other"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable"
        if exc.errno == errno.ECONNRESET:
            return "reset"
        return "connect_error" if connecting else "other"
    return "other"


def open_conn(t):
    c = http.client.HTTPConnection(t.host, t.port, timeout=t.timeout,
                                   source_address=t.source)
    c.connect()
    try:  # answers are tiny; do not let Nagle/delayed-ACK add 40 ms
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return c


def do_request(c, t, close):
    """One request on connection c; returns (backend, status, keep). Raises."""
    hdrs = {"Host": t.host_header}
    if close:
        hdrs["Connection"] = "close"
    c.putrequest("GET", t.path, skip_host=True, skip_accept_encoding=True)
    for k, v in hdrs.items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    r.read()
    backend = r.getheader("X-Backend")
    keep = not r.will_close
    if r.status >= 400:
        raise Failure(f"http_{r.status}", backend, r.status)
    return backend, r.status, keep


def one_new(t):
    """A request on a fresh connection: (ok, kind, backend, status, ms)."""
    start = time.monotonic()
    c = None
    connecting = True
    try:
        c = open_conn(t)
        connecting = False
        backend, status, _ = do_request(c, t, close=True)
        return True, None, backend, status, (time.monotonic() - start) * 1000
    except Exception as e:  # noqa: BLE001 - every failure is data here
        b = getattr(e, "backend", None)
        s = getattr(e, "status", None)
        return False, classify(e, connecting), b, s, (time.monotonic() - start) * 1000
    finally:
        if c is not None:
            c.close()


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    # nearest rank
    i = min(len(sorted_vals) - 1, max(0, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return round(sorted_vals[i], 3)


def bump(d, k, n=1):
    d[k] = d.get(k, 0) + n


# --------------------------------------------------------------------------
# new


def cmd_new(a):
    t = Target(a.url, a.source, a.timeout)
    deadline = time.monotonic() + a.deadline
    lock = threading.Lock()
    res = {"ok": 0, "failed": 0, "errors": {}, "by_backend": {}, "by_status": {}}
    lat = []
    next_i = [0]

    def worker():
        while True:
            with lock:
                if next_i[0] >= a.count:
                    return
                if time.monotonic() >= deadline:
                    n = a.count - next_i[0]
                    next_i[0] = a.count
                    res["failed"] += n
                    bump(res["errors"], "deadline", n)
                    return
                next_i[0] += 1
            ok, kind, backend, status, ms = one_new(t)
            with lock:
                if backend:
                    bump(res["by_backend"], backend)
                if status is not None:
                    bump(res["by_status"], str(status))
                if ok:
                    res["ok"] += 1
                    lat.append(ms)
                else:
                    res["failed"] += 1
                    bump(res["errors"], kind)

    start = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(max(1, min(a.concurrency, a.count)))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(max(0.0, deadline + 2 * a.timeout + 1 - time.monotonic()))
    with lock:
        done = res["ok"] + res["failed"]
        if done < a.count:  # stuck beyond every bound: report, do not hang
            res["failed"] += a.count - done
            bump(res["errors"], "deadline", a.count - done)
        lat.sort()
        res["p50_ms"] = pct(lat, 50)
        res["p99_ms"] = pct(lat, 99)
        res["elapsed_s"] = round(time.monotonic() - start, 3)
        print(json.dumps(res, sort_keys=True), flush=True)
    return 0


# --------------------------------------------------------------------------
# keepalive


def read_control(path):
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return ""


def cmd_keepalive(a):
    t = Target(a.url, a.source, a.timeout)
    interval = a.interval / 1000.0
    start = time.monotonic()
    end = start + a.duration
    lock = threading.Lock()
    stop = threading.Event()
    tot = {"requests": 0, "ok": 0, "failed": 0, "resets": 0, "closed": 0,
           "connections": 0, "changed_backend": 0, "errors": {}, "by_backend": {},
           "retried": 0, "retried_kinds": {}}
    phases = {}
    state = {"phase": read_control(a.control_file) or "default"}
    ready = [0]
    per_conn = [None] * a.conns

    def account(kind, backend, ok):
        ph = phases.setdefault(state["phase"], {"requests": 0, "ok": 0, "failed": 0,
                                                "resets": 0, "by_backend": {}})
        for d in (tot, ph):
            d["requests"] += 1
            if ok:
                d["ok"] += 1
            else:
                d["failed"] += 1
            if kind == "reset":
                d["resets"] += 1
            if backend:
                bump(d["by_backend"], backend)
        if kind:
            bump(tot["errors"], kind)
            if kind == "closed":
                tot["closed"] += 1

    def slot(i):
        # run-length [what, count]: a backend name per answer, "!KIND" per failure
        # without an answer, "#reconnect" per new connection after the first
        seq = []
        conn = None
        answered = 0  # answers on the current connection
        names = set()
        first = True
        nxt = time.monotonic()

        def note(what):
            if seq and seq[-1][0] == what:
                seq[-1][1] += 1
            else:
                seq.append([what, 1])

        def drop():
            nonlocal conn, names, answered
            if conn is not None:
                conn.close()
            conn = None
            answered = 0
            if len(names) > 1:
                with lock:
                    tot["changed_backend"] += 1
            names = set()

        while not stop.is_set() and time.monotonic() < end:
            connecting = conn is None
            kind = backend = None
            ok = False
            try:
                if conn is None:
                    if seq:
                        note("#reconnect")
                    conn = open_conn(t)
                    with lock:
                        tot["connections"] += 1
                    connecting = False
                backend, _, keep = do_request(conn, t, close=False)
                ok = True
                answered += 1
                if not keep:
                    drop()
            except Exception as e:  # noqa: BLE001
                kind = classify(e, connecting)
                backend = getattr(e, "backend", None)
                reused = answered > 0 and not connecting
                if not isinstance(e, Failure) or e.status is None or connecting:
                    drop()
                elif conn is not None and conn.sock is None:
                    drop()
                if (a.retry_reused and reused and backend is None
                        and kind in ("reset", "closed")):
                    note("#retry-" + kind)
                    with lock:
                        tot["retried"] += 1
                        bump(tot["retried_kinds"], kind)
                    drop()
                    kind = None
                    try:
                        connecting = True
                        conn = open_conn(t)
                        with lock:
                            tot["connections"] += 1
                        connecting = False
                        backend, _, keep = do_request(conn, t, close=False)
                        ok = True
                        answered += 1
                        if not keep:
                            drop()
                    except Exception as e2:  # noqa: BLE001
                        kind = classify(e2, connecting)
                        backend = getattr(e2, "backend", None)
                        drop()
            if backend:
                names.add(backend)
            note(backend or "!" + (kind or "none"))
            with lock:
                account(kind, backend, ok)
                if first and ok:
                    first = False
                    ready[0] += 1
                    if ready[0] == a.conns and a.ready_file:
                        with open(a.ready_file, "w", encoding="utf-8") as f:
                            f.write("ready\n")
            nxt += interval
            now = time.monotonic()
            if nxt < now:  # fell behind (slow answer): do not burst to catch up
                nxt = now
            stop.wait(max(0.0, min(nxt, end) - now))
        drop()
        per_conn[i] = seq

    threads = [threading.Thread(target=slot, args=(i,), daemon=True) for i in range(a.conns)]
    for th in threads:
        th.start()
    while time.monotonic() < end and not stop.is_set():
        time.sleep(min(interval, 0.1, max(0.0, end - time.monotonic())))
        c = read_control(a.control_file)
        if c == "stop":
            stop.set()
        elif c:
            with lock:
                state["phase"] = c
    stop.set()
    for th in threads:
        th.join(max(0.1, 2 * a.timeout + 1 - (time.monotonic() - end)))
    with lock:
        out = dict(tot)
        out["conns"] = a.conns
        out["phases"] = phases
        out["per_conn"] = [s if s is not None else [["#stuck", 1]] for s in per_conn]
        out["elapsed_s"] = round(time.monotonic() - start, 3)
        print(json.dumps(out, sort_keys=True), flush=True)
    return 0


# --------------------------------------------------------------------------
# rate


def cmd_rate(a):
    t = Target(a.url, a.source, a.timeout)
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(a.concurrency)

    def fresh():
        return {"sent": 0, "ok": 0, "failed": 0, "skipped": 0, "errors": {},
                "by_backend": {}, "lat": []}

    cur = fresh()
    total = fresh()

    def run_one():
        try:
            ok, kind, backend, _, ms = one_new(t)
            with lock:
                for d in (cur, total):
                    if backend:
                        bump(d["by_backend"], backend)
                    if ok:
                        d["ok"] += 1
                        d["lat"].append(ms)
                    else:
                        d["failed"] += 1
                        bump(d["errors"], kind)
        finally:
            slots.release()

    def emit(d, extra):
        lat = sorted(d.pop("lat"))
        d.update(extra)
        d["p99_ms"] = pct(lat, 99)
        d["p50_ms"] = pct(lat, 50)
        print(json.dumps(d, sort_keys=True), flush=True)

    start = time.monotonic()
    end = start + a.duration
    step = 1.0 / a.rate
    nxt = start
    sec = 1
    with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
        while True:
            now = time.monotonic()
            if now >= start + sec or now >= end:
                with lock:
                    d, cur = cur, fresh()
                emit(d, {"t": sec})
                sec += 1
                if now >= end:
                    break
            if now >= nxt:
                nxt += step
                with lock:
                    cur["sent"] += 1
                    total["sent"] += 1
                if slots.acquire(blocking=False):
                    pool.submit(run_one)
                else:  # client saturated: count it rather than queue it
                    with lock:
                        for d in (cur, total):
                            d["skipped"] += 1
                            bump(d["errors"], "skipped")
                continue
            time.sleep(max(0.0, min(nxt, start + sec, end) - now))
        # in-flight requests finish within their timeout
    with lock:
        emit(total, {"summary": True, "elapsed_s": round(time.monotonic() - start, 3)})
    return 0


# --------------------------------------------------------------------------


def positive(kind):
    def conv(s):
        v = kind(s)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {s}")
        return v
    return conv


def main():
    ap = argparse.ArgumentParser(
        description="Load generator / checker for the shift netns rig.",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--url", required=True, help="http://HOST[:PORT]/PATH, [v6] in brackets")
        p.add_argument("--timeout", type=positive(float), default=2.0,
                       help="per connect and per read, seconds (default 2)")
        p.add_argument("--source", default="", help="source address to bind")

    p = sub.add_parser("new", help="N requests, each on a new connection")
    common(p)
    p.add_argument("--count", type=positive(int), required=True)
    p.add_argument("--concurrency", type=positive(int), default=8)
    p.add_argument("--deadline", type=positive(float), default=60.0,
                   help="no request starts after this many seconds (default 60)")
    p.set_defaults(fn=cmd_new)

    p = sub.add_parser("keepalive", help="K persistent connections")
    common(p)
    p.add_argument("--conns", type=positive(int), required=True)
    p.add_argument("--duration", type=positive(float), required=True)
    p.add_argument("--interval", type=positive(float), default=100.0, help="ms")
    p.add_argument("--control-file", default="")
    p.add_argument("--ready-file", default="")
    p.add_argument("--retry-reused", action="store_true",
                   help="retry once, on a new connection, a request that a reused "
                        "connection reset or closed without an answer")
    p.set_defaults(fn=cmd_keepalive)

    p = sub.add_parser("rate", help="new connections at a target rate, a line per second")
    common(p)
    p.add_argument("--rate", type=positive(float), required=True, help="requests/s")
    p.add_argument("--duration", type=positive(float), required=True)
    p.add_argument("--concurrency", type=positive(int), default=64)
    p.set_defaults(fn=cmd_rate)

    a = ap.parse_args()
    if a.cmd == "keepalive" and a.conns > 4096:
        ap.error("--conns at most 4096")
    if getattr(a, "concurrency", 1) > 1024:
        ap.error("--concurrency at most 1024")
    return a.fn(a)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os._exit(1)
