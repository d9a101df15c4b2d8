#!/usr/bin/env python3
"""HTTP/1.1 interim responses written with the final one, either end, for
test_e2e_interim.sh.

server: on each connection, read a request up to its blank line, then write
the interim responses (--interim: 100, 103, or both, "100,103") and the
final response (--final: its status) in one send, so they leave in one TCP
segment; the final response says "Connection: close", and the server closes
first, then waits for the client's FIN.

client: N connections, one after another: a POST with "Expect:
100-continue", then everything up to the server's close. Each must hold
interim responses and then one final one with a status the client accepts
(200 or 503). Prints "ok N 200:A 503:B" and exits 0 when every one went so;
otherwise a line saying what went wrong, exit 1.
"""

import argparse
import socket
import sys

import peer_lib
from peer_lib import read_all, read_until

REQUEST = (
    b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
    b"Expect: 100-continue\r\n\r\n"
)
INTERIM = {
    "100": b"HTTP/1.1 100 Continue\r\n\r\n",
    # RFC 8297: headers the client may act on before the answer.
    "103": (
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n"
        b"Link: </app.js>; rel=preload\r\n\r\n"
    ),
}
REASON = {200: b"OK", 503: b"Service Unavailable"}


def serve(port, interim, final):
    body = b"ok"
    out = b"".join(INTERIM[i] for i in interim.split(",") if i)
    out += (
        b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (final, REASON.get(final, b"X"), len(body))
    ) + body

    def handle(c):
        if b"\r\n\r\n" not in read_until(c, b"\r\n\r\n"):
            return
        c.sendall(out)
        c.shutdown(socket.SHUT_WR)
        read_all(c)  # until the client's FIN

    peer_lib.serve(port, handle)


def final_status(data):
    """The status of the first non-1xx response in data, and how many 1xx
    came before it; (None, n) when there is none."""
    n = 0
    while data.startswith(b"HTTP/1.1 "):
        status = int(data[9:12])
        if status >= 200:
            return status, n
        n += 1
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        data = data[end + 4 :]
    return None, n


def client(host, port, n):
    seen = {200: 0, 503: 0}
    for i in range(n):
        s = socket.create_connection((host, port), timeout=5)
        try:
            s.sendall(REQUEST)
            data = read_all(s)
        except OSError as e:
            print(f"connection {i}: {e}")
            return 1
        finally:
            s.close()
        status, interim = final_status(data)
        if status not in seen or not interim:
            print(f"connection {i}: {interim} interim, final {status}: {data[:60]!r}")
            return 1
        seen[status] += 1
    print(f"ok {n} 200:{seen[200]} 503:{seen[503]}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--host", default="")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--interim", default="100")
    ap.add_argument("--final", type=int, default=200)
    ap.add_argument("-n", type=int, default=1)
    a = ap.parse_args()
    if a.role == "server":
        serve(a.port, a.interim, a.final)
        return 0
    return client(a.host, a.port, a.n)


if __name__ == "__main__":
    sys.exit(main())
