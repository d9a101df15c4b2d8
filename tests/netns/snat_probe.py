#!/usr/bin/env python3
"""Helpers of the source NAT test (test_e2e_snat.sh); stdlib only, bounded in time.

    snat_probe.py udp-server --name NAME --port PORT
        Dual-stack UDP server: answers every datagram with "NAME" to its sender.
        SIGTERM exits 0.
    snat_probe.py udp-client --host ADDR --port PORT --count N [--timeout S]
        N requests, each from a new socket (a new source port: a new flow).
        {"ok", "failed", "by_backend": {name: n}}
    snat_probe.py hold --host ADDR --port PORT --conns K [--timeout S] [--hold S]
        K TCP connections opened at once and held; one HTTP GET on each that
        connects, answered on its own connection, then held --hold seconds more.
        {"connected", "refused_or_timeout", "answered", "bad_answers", "by_backend"}
"""

import argparse
import json
import select
import signal
import socket
import sys
import time


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_server(a):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", a.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    name = a.name.encode()
    while True:
        _, peer = s.recvfrom(2048)
        s.sendto(name, peer)


def udp_client(a):
    ok = failed = 0
    by = {}
    deadline = time.monotonic() + 120
    for _ in range(a.count):
        if time.monotonic() > deadline:
            failed += 1
            continue
        s = socket.socket(family_of(a.host), socket.SOCK_DGRAM)
        s.settimeout(a.timeout)
        got = None
        for _try in range(3):  # a lost datagram is retried from the same socket
            try:
                s.sendto(b"ping", (a.host, a.port))
                got = s.recv(256).decode(errors="replace")
                break
            except OSError:
                continue
        s.close()
        if got:
            ok += 1
            by[got] = by.get(got, 0) + 1
        else:
            failed += 1
    print(json.dumps({"ok": ok, "failed": failed, "by_backend": by}))


def hold(a):
    fam = family_of(a.host)
    socks = []
    for _ in range(a.conns):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((a.host, a.port))
        socks.append(s)
    end = time.monotonic() + a.timeout
    pending = set(socks)
    connected = []
    while pending and time.monotonic() < end:
        _, w, _ = select.select([], list(pending), [], max(0.0, end - time.monotonic()))
        for s in w:
            pending.discard(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(s)
    answered = bad = 0
    by = {}
    for s in connected:
        s.setblocking(True)
        s.settimeout(a.timeout)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: shift\r\n\r\n")
            buf = b""
            while len(buf) < 65536:
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    clen = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            clen = int(v.strip() or 0)
                    if len(body) >= clen:
                        break
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200") and body.strip():
                answered += 1
                name = body.strip().decode(errors="replace")
                by[name] = by.get(name, 0) + 1
            else:
                bad += 1
        except OSError:
            bad += 1
    time.sleep(a.hold)
    for s in socks:
        s.close()
    print(json.dumps({"connected": len(connected), "refused_or_timeout": a.conns - len(connected),
                      "answered": answered, "bad_answers": bad, "by_backend": by}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("udp-server")
    q.add_argument("--name", required=True)
    q.add_argument("--port", type=int, required=True)
    q = sub.add_parser("udp-client")
    q.add_argument("--host", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--count", type=int, required=True)
    q.add_argument("--timeout", type=float, default=1.0)
    q = sub.add_parser("hold")
    q.add_argument("--host", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--conns", type=int, required=True)
    q.add_argument("--timeout", type=float, default=3.0)
    q.add_argument("--hold", type=float, default=0.0)
    a = p.parse_args()
    {"udp-server": udp_server, "udp-client": udp_client, "hold": hold}[a.cmd](a)


if __name__ == "__main__":
    main()
