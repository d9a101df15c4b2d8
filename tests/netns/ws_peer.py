#!/usr/bin/env python3
"""A WebSocket-shaped conversation, either end, for test_e2e_websocket.sh.

server: on each connection, read a request up to its blank line, answer
"101 Switching Protocols", echo one frame back, then close first (RFC 6455
has the server start the TCP close), and wait for the client's FIN.

client: N connections, one after another: an upgrade request, the 101, a
frame that starts like a request line ("GET frame"), its echo, then the
server's close before its own. Prints "ok N" and exits 0 when every one went
so; otherwise a line saying which step failed, exit 1.

No real framing or Sec-WebSocket-Accept: what the datapath sees (a request,
a 101, bytes both ways, the server's FIN first) is what matters here.
"""

import argparse
import socket
import sys

import peer_lib
from peer_lib import read_all, read_exact, read_until

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\n\r\n"
)
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\n\r\n"
)
FRAME = b"GET frame"


def serve(port):
    def handle(c):
        if b"\r\n\r\n" not in read_until(c, b"\r\n\r\n"):
            return
        c.sendall(SWITCH)
        frame = read_exact(c, len(FRAME))
        c.sendall(frame)
        c.shutdown(socket.SHUT_WR)
        read_all(c)  # until the client's FIN

    peer_lib.serve(port, handle)


def client(host, port, n):
    for i in range(n):
        s = socket.create_connection((host, port), timeout=5)
        try:
            s.sendall(UPGRADE)
            head = read_until(s, b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101 "):
                print(f"connection {i}: no 101: {head[:40]!r}")
                return 1
            s.sendall(FRAME)
            echo = read_exact(s, len(FRAME))
            if echo != FRAME:
                print(f"connection {i}: echo {echo!r}")
                return 1
            rest = s.recv(64)
            if rest:
                print(f"connection {i}: {rest!r} where the server's FIN was due")
                return 1
        except OSError as e:
            print(f"connection {i}: {e}")
            return 1
        finally:
            s.close()
    print(f"ok {n}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--host", default="")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=1)
    a = ap.parse_args()
    if a.role == "server":
        serve(a.port)
        return 0
    return client(a.host, a.port, a.n)


if __name__ == "__main__":
    sys.exit(main())
