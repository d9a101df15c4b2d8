#!/usr/bin/env python3
"""Connections from many source addresses, each from a chosen source port.

    affinity_client.py --vip ADDR --port 80 --conns-file FILE

FILE: one "SRC SPORT" per line. For each, one HTTP/1.0 GET over a fresh
connection bound to SRC:SPORT; prints one JSON line per connection:
{"src", "sport", "backend" (the X-Backend header, or null), "error" (or null)}.
Bounded: a 3 s timeout per connection, 16 at a time.
"""
import argparse
import concurrent.futures
import json
import socket
import sys


def one(vip, port, src, sport):
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3.0)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, sport))
        s.connect((vip, port))
        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        data = b""
        while len(data) < 65536:
            b = s.recv(4096)
            if not b:
                break
            data += b
        for line in data.split(b"\r\n"):
            if line.lower().startswith(b"x-backend:"):
                return {"src": src, "sport": sport,
                        "backend": line.split(b":", 1)[1].strip().decode(), "error": None}
        return {"src": src, "sport": sport, "backend": None, "error": "no X-Backend"}
    except OSError as e:
        return {"src": src, "sport": sport, "backend": None, "error": str(e)}
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vip", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--conns-file", required=True)
    a = ap.parse_args()
    work = []
    with open(a.conns_file) as f:
        for line in f:
            if line.strip():
                src, sport = line.split()
                work.append((src, int(sport)))
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        for r in ex.map(lambda w: one(a.vip, a.port, w[0], w[1]), work):
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
