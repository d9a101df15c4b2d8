#!/usr/bin/env python3
"""Hold many idle HTTP connections open against shiftd's HTTP API (a slowloris).

Opens --count connections to --host:--port, writes the start of a request that
never ends ("POST /v1/alertmanager HTTP/1.1" and a header) and then one more
header line on every connection every --trickle seconds, which keeps each one
inside the server's idle timeout. Runs --duration seconds at most, or until the
file --stop exists. Writes one JSON line to stdout at the end (and one to
--ready when every connection is open):
  {"wanted": N, "opened": N, "open_at_end": N, "refused": N}
open_at_end counts connections the server had not closed (no EOF, no reset).
Bounded in count and time; needs no privilege (raises its own fd limit).
"""
import argparse
import json
import os
import resource
import socket
import sys
import time


def still_open(s):
    s.setblocking(False)  # else a socket with a timeout waits it out on an idle peer
    try:
        data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return len(data) > 0  # an answer (say, 408) came: the server is done with it
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--trickle", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--stop", default="")
    ap.add_argument("--ready", default="")
    a = ap.parse_args()
    if not 0 < a.count <= 20000 or not 0 < a.duration <= 600:
        ap.error("--count 1..20000, --duration 0..600")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    t_end = time.monotonic() + a.duration
    socks, refused = [], 0
    head = b"POST /v1/alertmanager HTTP/1.1\r\nHost: shift\r\n"
    for _ in range(a.count):
        if time.monotonic() > t_end:
            break
        try:
            s = socket.create_connection((a.host, a.port), timeout=5)
            s.sendall(head)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            refused += 1
    if a.ready:
        with open(a.ready + ".tmp", "w") as f:
            f.write(json.dumps({"opened": len(socks), "refused": refused}) + "\n")
        os.rename(a.ready + ".tmp", a.ready)
    n = 0
    while time.monotonic() < t_end and not (a.stop and os.path.exists(a.stop)):
        time.sleep(min(a.trickle, max(0.0, t_end - time.monotonic())))
        n += 1
        for s in socks:
            try:
                s.send(b"X-Idle-%d: 1\r\n" % n)
            except OSError:
                pass  # closed by the server, or its buffer full: counted at the end
    alive = sum(1 for s in socks if still_open(s))
    print(json.dumps({"wanted": a.count, "opened": len(socks), "open_at_end": alive,
                      "refused": refused}))
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
