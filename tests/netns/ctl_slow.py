#!/usr/bin/env python3
"""Slow and silent clients of shiftd's control socket (test_ctl_slow.sh).

  ctl_slow.py SOCKET SILENT BOUND

Prints one "key value..." line per figure (monotonic seconds, CLOCK_MONOTONIC
like the sd_notify log's):
  base_ms MS...        ping round trips, no other client
  load_t0 T / load_t1 T the window the silent clients are held (to their EOF)
  load_ms MS...        ping round trips with SILENT silent clients and a client
                       that sent "status json" and never reads
  eof_s S...           per silent client: seconds from its connect to EOF
                       (-1: still open after 5 s)
  busy_ms MS / busy_answer TEXT  a ping over BOUND silent clients
Every wait is bounded.
"""

import select
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def request(path, line):
    """One round trip: (ms, first line of the answer)."""
    t = time.monotonic()
    s = connect(path)
    try:
        s.sendall(line)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError as e:
        data = ("error: %s" % e).encode()
    s.close()
    ms = (time.monotonic() - t) * 1000
    return ms, data.split(b"\n", 1)[0].decode("utf-8", "replace")


def wait_eof(socks, t_open, limit):
    """Seconds from each socket's connect to its EOF, -1 if none by limit."""
    out = [-1.0] * len(socks)
    left = set(range(len(socks)))
    end = time.monotonic() + limit
    while left and time.monotonic() < end:
        r, _, _ = select.select([socks[i] for i in left], [], [], 0.05)
        now = time.monotonic()
        for i in list(left):
            if socks[i] in r:
                try:
                    b = socks[i].recv(4096, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:
                    b = b""
                if not b:
                    out[i] = now - t_open[i]
                    left.discard(i)
                # an answer ("ERR 2 empty request") before the EOF: read on
    return out


def main():
    path, silent, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    base = [request(path, b"ping\n")[0] for _ in range(5)]
    print("base_ms " + " ".join("%.1f" % m for m in base))

    socks, t_open = [], []
    for _ in range(silent):
        t_open.append(time.monotonic())
        socks.append(connect(path))
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    slow.settimeout(10)
    slow.connect(path)
    slow.sendall(b"status json\n")
    print("load_t0 %.3f" % time.monotonic())
    load, answers = [], set()
    for _ in range(10):
        ms, first = request(path, b"ping\n")
        load.append(ms)
        answers.add(first)
    print("load_ms " + " ".join("%.1f" % m for m in load))
    print("load_answers " + "|".join(sorted(answers)))
    eof = wait_eof(socks, t_open, 5.0)
    print("load_t1 %.3f" % time.monotonic())
    print("eof_s " + " ".join("%.2f" % e for e in eof))
    for s in socks:
        s.close()
    slow.close()

    # The bound: BOUND silent clients, then one more asks.
    time.sleep(0.3)
    socks = [connect(path) for _ in range(bound)]
    time.sleep(0.05)
    ms, first = request(path, b"ping\n")
    print("busy_ms %.1f" % ms)
    print("busy_answer " + first)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
