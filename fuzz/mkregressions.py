#!/usr/bin/env python3
"""Writes the hand-minimised regression captures of tests/regressions/ (run from that directory)."""
import struct, sys

def block(kind, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)

def shb():
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))

def idb(link, tsresol=None, tsoffset=None):
    b = struct.pack("<HHI", link, 0, 262144)
    opts = b""
    if tsresol is not None:
        opts += struct.pack("<HHB3x", 9, 1, tsresol)
    if tsoffset is not None:
        opts += struct.pack("<HHq", 14, 8, tsoffset)
    if opts:
        opts += b"\0\0\0\0"
    return block(1, b + opts)

def epb(if_id, units, frame):
    return block(6, struct.pack("<IIIII", if_id, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame)) + frame)

def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def tcp4(src, sport, dst, dport, seq, ack, flags, ttl=64):
    th = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    ph = bytes(src) + bytes(dst) + struct.pack("!BBH", 0, 6, len(th))
    th = th[:16] + struct.pack("!H", csum(ph + th)) + th[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th), 0x1234, 0x4000, ttl, 6, 0, bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return bytes([2,0,0,0,0,1, 2,0,0,0,0,0xc]) + b"\x08\x00" + ip + th

C, S = [198,18,0,2], [198,19,0,10]
SYN = tcp4(C, 40000, S, 80, 1000, 0, 0x02)
RST = tcp4(S, 80, C, 40000, 0, 1001, 0x14, ttl=61)

# F1: packets on interfaces that no IDB declared (if_id 1 and 7) next to one valid SYN.
open("pcapng-epb-unknown-interface.pcapng", "wb").write(
    shb() + idb(1) + epb(0, 1_700_000_000_000_000, SYN) + epb(1, 1_700_000_000_010_000, RST) + epb(7, 1_700_000_000_020_000, RST))

# F2: interface 0 counts seconds (if_tsresol 0) and its packets say 2^64-1 s: i64::MAX ns.
# Interface 1 has if_tsoffset i64::MIN s: its packets at unit 0 are at i64::MIN ns.
# One SYN (and one RST) on each: the tracker subtracts the two timestamps.
open("pcapng-timestamps-far-apart.pcapng", "wb").write(
    shb() + idb(1, tsresol=0) + idb(1, tsoffset=-(2**63))
    + epb(0, 2**64 - 1, SYN) + epb(1, 0, SYN) + epb(0, 2**64 - 1, RST) + epb(1, 0, RST))
