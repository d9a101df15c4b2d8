#!/usr/bin/env python3
"""Snapshot and compare every pinned BPF map under a directory (stdlib only).

  mapsnap.py save MAPS_DIR OUT [--skip NAME,...] [--head NAME=N,...]
                                                   snapshot to OUT (a pickle);
                                                   --head: only the first N
                                                   entries of array NAME
  mapsnap.py diff A B                              exit 0 if equal, else 1 and
                                                   one line per difference

What `bpftool map dump pinned` shows, read with BPF_MAP_LOOKUP_BATCH: shift's
arrays hold hundreds of thousands of entries (the Maglev rings 262k), which bpftool
prints in minutes, this reads in well under a second. Arrays are kept as a
digest per block of 256 entries (a difference names the entry range), small
maps and hash maps entry by entry (a difference names the key). Ring buffers
are skipped (no entries to read). Per-CPU values are compared per CPU.
"""
import ctypes
import hashlib
import os
import pickle
import platform
import struct
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD = 1, 4, 7, 15
BPF_MAP_LOOKUP_BATCH = 24
BPF_F_RDONLY = 1 << 3
PERCPU = {5, 6, 10}           # percpu_hash, percpu_array, lru_percpu_hash
ARRAYS = {2, 6}               # array, percpu_array: ordered by index
SKIP_TYPES = {27}             # ringbuf
BLOCK = 256                   # array entries per digest
RAW_LIMIT = 4096              # arrays up to this many entries are kept entry by entry

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    nr = SYS_BPF.get(platform.machine())
    if nr is None:
        raise OSError(0, "bpf(2) number unknown for " + platform.machine())
    r = libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr),
                     ctypes.c_uint(ctypes.sizeof(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def addr(buf):
    return ctypes.addressof(buf) if buf is not None else 0


def ncpus():
    n = 0
    with open("/sys/devices/system/cpu/possible") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n = max(n, int(hi or lo) + 1)
    return n


def obj_get(path):
    p = ctypes.create_string_buffer(path.encode())
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("=QII", attr, 0, addr(p), 0, BPF_F_RDONLY)
    return bpf(BPF_OBJ_GET, attr)


def map_info(fd):
    info = ctypes.create_string_buffer(128)
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("=IIQ", attr, 0, fd, 128, addr(info))
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    typ, mid, ks, vs, maxe, flags = struct.unpack_from("=6I", info, 0)
    return typ, ks, vs, maxe


def read_batch(fd, ks, vsz, maxe, limit=None):
    """All (keys, values) bytes with BPF_MAP_LOOKUP_BATCH; None if unsupported.
    limit: stop after that many entries (arrays: the first ones by index)."""
    chunk = max(1, min(maxe, max(1, (4 << 20) // max(vsz, 1)), limit or maxe))
    total = 0
    keys = ctypes.create_string_buffer(ks * chunk)
    vals = ctypes.create_string_buffer(vsz * chunk)
    tok_in = ctypes.create_string_buffer(max(ks, 8))
    tok_out = ctypes.create_string_buffer(max(ks, 8))
    kout, vout = [], []
    first = True
    while True:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=QQQQIIQQ", attr, 0, 0 if first else addr(tok_in), addr(tok_out),
                         addr(keys), addr(vals), chunk, fd, 0, 0)
        done = False
        try:
            bpf(BPF_MAP_LOOKUP_BATCH, attr)
        except OSError as e:
            if e.errno == 2:          # ENOENT: that was the last batch
                done = True
            elif first and e.errno in (22, 95, 524):   # EINVAL, EOPNOTSUPP, ENOTSUPP
                return None
            else:
                raise
        n = struct.unpack_from("=I", attr, 32)[0]
        kout.append(ctypes.string_at(keys, n * ks))
        vout.append(ctypes.string_at(vals, n * vsz))
        total += n
        if done or (limit and total >= limit):
            break
        ctypes.memmove(tok_in, tok_out, len(tok_out))
        first = False
    kb, vb = b"".join(kout), b"".join(vout)
    if limit:
        kb, vb = kb[:limit * ks], vb[:limit * vsz]
    return kb, vb


def read_iter(fd, ks, vsz):
    """Fallback: GET_NEXT_KEY + LOOKUP_ELEM (LPM tries have no batch ops)."""
    kout, vout = [], []
    cur = None
    nxt = ctypes.create_string_buffer(ks)
    val = ctypes.create_string_buffer(vsz)
    while True:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=IIQQ", attr, 0, fd, 0, addr(cur), addr(nxt))
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, attr)
        except OSError as e:
            if e.errno == 2:
                break
            raise
        k = ctypes.create_string_buffer(nxt.raw, ks)
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=IIQQQ", attr, 0, fd, 0, addr(k), addr(val), 0)
        try:
            bpf(BPF_MAP_LOOKUP_ELEM, attr)
            kout.append(k.raw)
            vout.append(val.raw)
        except OSError as e:
            if e.errno != 2:
                raise
        cur = k
    return b"".join(kout), b"".join(vout)


def snapshot(maps_dir, skip, head):
    snap = {}
    cpus = ncpus()
    for name in sorted(os.listdir(maps_dir)):
        if name in skip:
            continue
        fd = obj_get(os.path.join(maps_dir, name))
        try:
            typ, ks, vs, maxe = map_info(fd)
            if typ in SKIP_TYPES:
                continue
            vsz = ((vs + 7) // 8 * 8) * cpus if typ in PERCPU else vs
            got = read_batch(fd, ks, vsz, maxe, head.get(name) if typ in ARRAYS else None)
            if got is None:
                got = read_iter(fd, ks, vsz)
        finally:
            os.close(fd)
        kb, vb = got
        n = len(kb) // ks if ks else 0
        entries = [(kb[i * ks:(i + 1) * ks], vb[i * vsz:(i + 1) * vsz]) for i in range(n)] \
            if (typ not in ARRAYS or n <= RAW_LIMIT) else None
        if entries is not None:
            snap[name] = {"kind": "entries", "n": n, "vsz": vsz,
                          "entries": dict(entries)}
        else:
            mv = memoryview(vb)
            blocks = [hashlib.sha1(mv[b * vsz:(b + BLOCK) * vsz]).digest()
                      for b in range(0, n, BLOCK)]
            snap[name] = {"kind": "blocks", "n": n, "vsz": vsz, "blocks": blocks}
    return snap


def diff(a, b):
    out = []
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            out.append("%s: only in %s" % (name, "after" if name in b else "before"))
            continue
        x, y = a[name], b[name]
        if x["kind"] != y["kind"] or x["n"] != y["n"] and x["kind"] == "blocks":
            out.append("%s: %d -> %d entries" % (name, x["n"], y["n"]))
            continue
        if x["kind"] == "blocks":
            bad = [i for i, (p, q) in enumerate(zip(x["blocks"], y["blocks"])) if p != q]
            for i in bad[:5]:
                out.append("%s: entries %d..%d changed" % (name, i * BLOCK,
                                                          min(x["n"], (i + 1) * BLOCK) - 1))
            if len(bad) > 5:
                out.append("%s: ... %d blocks changed in all" % (name, len(bad)))
            continue
        ex, ey = x["entries"], y["entries"]
        keys = sorted(set(ex) | set(ey))
        bad = [k for k in keys if ex.get(k) != ey.get(k)]
        for k in bad[:5]:
            def h(v):
                return "-" if v is None else (v.hex() if len(v) <= 24 else v[:24].hex() + "...")
            out.append("%s: key %s: %s -> %s" % (name, k.hex(), h(ex.get(k)), h(ey.get(k))))
        if len(bad) > 5:
            out.append("%s: ... %d entries changed in all" % (name, len(bad)))
    return out


def main():
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "save":
        skip, head, rest = set(), {}, args[3:]
        while rest:
            if len(rest) < 2 or rest[0] not in ("--skip", "--head"):
                sys.exit(__doc__)
            for item in filter(None, rest[1].split(",")):
                if rest[0] == "--skip":
                    skip.add(item)
                else:
                    k, _, v = item.partition("=")
                    head[k] = int(v)
            rest = rest[2:]
        snap = snapshot(args[1], skip, head)
        with open(args[2] + ".tmp", "wb") as f:
            pickle.dump(snap, f)
        os.replace(args[2] + ".tmp", args[2])
        return 0
    if len(args) == 3 and args[0] == "diff":
        with open(args[1], "rb") as f:
            a = pickle.load(f)
        with open(args[2], "rb") as f:
            b = pickle.load(f)
        d = diff(a, b)
        for line in d:
            print(line)
        return 1 if d else 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
