#!/usr/bin/env python3
"""Watch the pinned weight maps of several shiftd nodes at once (stdlib only).

    fleet_watch.py --node NAME=MAP_PIN:SERVICE_ID [--node ...] [--duration S]
                   [--until bp:N | latched | any-change] [--period-us US]
                   [--ready-file F] [--control-file F]

An outside observer of the fleet: it opens every node's pinned shift_weights map with
the bpf(2) syscall (BPF_OBJ_GET, BPF_MAP_LOOKUP_ELEM; no bpftool fork per read, so one
round over three nodes takes microseconds) and records each change of each node's
weight word with CLOCK_REALTIME in nanoseconds: the moment the map write became
visible, independent of what shiftd reports about itself. The weight word is basis
points, with bit 31 set while the rollback latch is on (include/shift/maps.h).

It stops when every node satisfies --until (bp:N: weight N bp, unlatched; latched:
the latch bit set; any-change: the word differs from its first reading), when the
first line of --control-file says "stop", or after --duration seconds. Then it prints
one JSON object:
  {"done": bool, "start_ns": N, "end_ns": N, "rounds": N, "max_gap_us": N,
   "nodes": {NAME: {"initial": WORD, "changes": [[T_NS, WORD], ...],
                    "reached_ns": T_NS | null}}}
max_gap_us is the longest time between two rounds: the resolution of every time above
(on a loaded machine the watcher is not always scheduled; fleet_lib.sh runs it with a
real-time priority when it can). --ready-file F is created after the first round.
Exit 0 when done (or no --until), 1 when --until was not met, 2 on bad usage or a
map it cannot read.
"""

import argparse
import ctypes
import json
import os
import platform
import struct
import sys
import time

NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351,
          "riscv64": 280}
BPF_MAP_LOOKUP_ELEM = 1
BPF_OBJ_GET = 7
LATCHED = 1 << 31

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    nr = NR_BPF.get(platform.machine())
    if nr is None:
        raise OSError(f"no bpf syscall number known for {platform.machine()}")
    buf = ctypes.create_string_buffer(bytes(attr), 128)
    r = libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), buf, ctypes.c_uint(128))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def obj_get(path):
    p = ctypes.create_string_buffer(os.fsencode(path))
    # union bpf_attr: __u64 pathname; __u32 bpf_fd; __u32 file_flags
    attr = struct.pack("=QII", ctypes.addressof(p), 0, 0)
    return bpf(BPF_OBJ_GET, attr), p


class Node:
    def __init__(self, spec):
        try:
            self.name, rest = spec.split("=", 1)
            pin, sid = rest.rsplit(":", 1)
            self.sid = int(sid)
        except ValueError:
            raise SystemExit(f"fleet_watch: --node NAME=MAP_PIN:SERVICE_ID, not {spec!r}")
        try:
            self.fd, self._p = obj_get(pin)
        except OSError as e:
            print(f"fleet_watch: cannot open {pin}: {e}", file=sys.stderr)
            sys.exit(2)
        self.key = ctypes.c_uint32(self.sid)
        self.val = ctypes.c_uint32(0)
        # map_fd u32, pad u32, key u64, value u64, flags u64
        self.attr = ctypes.create_string_buffer(struct.pack(
            "=IIQQQ", self.fd, 0, ctypes.addressof(self.key), ctypes.addressof(self.val), 0), 128)
        self.nr = NR_BPF[platform.machine()]
        self.initial = None
        self.changes = []
        self.reached = None

    def read(self):
        r = libc.syscall(ctypes.c_long(self.nr), ctypes.c_int(BPF_MAP_LOOKUP_ELEM),
                         self.attr, ctypes.c_uint(128))
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"lookup of service {self.sid} in {self.name}'s map: {os.strerror(e)}")
        return self.val.value


def met(until, node, word):
    if until is None:
        return False
    if until == "latched":
        return bool(word & LATCHED)
    if until == "any-change":
        return word != node.initial
    return word == until


def main():
    ap = argparse.ArgumentParser(description="watch shift weight maps of several nodes")
    ap.add_argument("--node", action="append", required=True)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--until")
    ap.add_argument("--period-us", type=int, default=500)
    ap.add_argument("--ready-file")
    ap.add_argument("--control-file")
    a = ap.parse_args()
    until = a.until
    if until and until.startswith("bp:"):
        try:
            until = int(until[3:])
        except ValueError:
            ap.error(f"--until bp:N, not {a.until!r}")
    elif until not in (None, "latched", "any-change"):
        ap.error(f"--until bp:N | latched | any-change, not {a.until!r}")
    nodes = [Node(s) for s in a.node]
    period = a.period_us / 1e6
    start = time.time_ns()
    deadline = time.monotonic() + a.duration
    rounds = 0
    next_ctl = 0.0
    prev = None
    max_gap = 0
    while True:
        t_round = time.time_ns()
        if prev is not None:
            max_gap = max(max_gap, t_round - prev)
        prev = t_round
        for n in nodes:
            w = n.read()
            t = time.time_ns()
            if n.initial is None:
                n.initial = w
                n.last = w
            elif w != n.last:
                n.changes.append([t, w])
                n.last = w
            if n.reached is None and rounds > 0 and met(until, n, w):
                n.reached = t
        if rounds == 0 and a.ready_file:
            with open(a.ready_file, "w") as f:
                f.write("ready\n")
        rounds += 1
        if until is not None and all(n.reached is not None for n in nodes):
            break
        now = time.monotonic()
        if now >= deadline:
            break
        if a.control_file and now >= next_ctl:
            next_ctl = now + 0.05
            try:
                with open(a.control_file) as f:
                    if f.readline().strip() == "stop":
                        break
            except OSError:
                pass
        time.sleep(period)
    done = until is not None and all(n.reached is not None for n in nodes)
    print(json.dumps({
        "done": done, "start_ns": start, "end_ns": time.time_ns(), "rounds": rounds,
        "max_gap_us": max_gap // 1000,
        "nodes": {n.name: {"initial": n.initial, "changes": n.changes, "reached_ns": n.reached}
                  for n in nodes}}))
    return 0 if (done or until is None) else 1


if __name__ == "__main__":
    sys.exit(main())
