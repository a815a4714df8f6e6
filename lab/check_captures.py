#!/usr/bin/env python3
"""Check the synrst lab's captures against its truth.tsv, from the wire alone.

    lab/check_captures.py DIR [FILE...]

For every truth row (optionally only rows of the given files) it finds the
client's SYN(s) for the row's 4-tuple and the first thing that answered:

* a SYN-ACK from the server with ack = ISN + 1          -> outcome accepted
* a RST from the server's address with ack = ISN + 1     -> outcome refused
* an ICMP / ICMPv6 destination-unreachable quoting that
  very SYN (same 4-tuple, same sequence number)          -> outcome unreachable
* nothing, and the SYN was retransmitted                 -> outcome no-answer

and checks the row's outcome, plus what the notes promise: "answered by ADDR
(..., ttl T)" (source address and TTL / hop limit of the first answer),
"ICMP t/c" or "ICMPv6 t/c" (type and code), and for the injected RST that the
forged RST precedes the genuine SYN-ACK, with a different TTL, and the client
then RSTs the late SYN-ACK. Every TCP flow in a file (also one quoted in an
ICMP error) must have a truth row. It also checks TCP checksums: files whose name
contains "offload" were captured with veth TX checksum offload on and must
show bad checksums on locally sent packets; all others must have none.

Reads pcap (Ethernet, Linux cooked v1/v2, raw IP) and pcapng. Python 3
standard library only. Exit status 0 when every row checks out.
"""
import csv
import ipaddress
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------- reading


def read_frames(path: Path):
    """Yield (timestamp, linktype, frame bytes) from a pcap or pcapng file."""
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from _read_pcapng(data)
        return
    for endian in ("<", ">"):
        (m,) = struct.unpack(endian + "I", magic)
        if m in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        raise ValueError(f"{path}: not a pcap or pcapng file")
    scale = 1e-6 if m == 0xA1B2C3D4 else 1e-9
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        yield sec + frac * scale, linktype, data[off:off + incl]
        off += incl


def _read_pcapng(data: bytes):
    off, endian, ifaces = 0, "<", []
    while off + 12 <= len(data):
        btype = struct.unpack(endian + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8:off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack(endian + "I", data[off + 4:off + 8])[0]
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # interface description
            linktype = struct.unpack(endian + "H", body[:2])[0]
            tsres = 1e-6
            opt = 8
            while opt + 4 <= len(body):
                code, olen = struct.unpack(endian + "HH", body[opt:opt + 4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    v = body[opt + 4]
                    tsres = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
                opt += 4 + ((olen + 3) & ~3)
            ifaces.append((linktype, tsres))
        elif btype == 6:  # enhanced packet
            ifid, hi, lo, incl, _orig = struct.unpack(endian + "IIIII", body[:20])
            linktype, tsres = ifaces[ifid]
            yield ((hi << 32) | lo) * tsres, linktype, body[20:20 + incl]
        elif btype == 3:  # simple packet
            linktype, _ = ifaces[0]
            yield 0.0, linktype, body[4:]
        off += blen


def l3(linktype: int, frame: bytes):
    """Return the IP packet inside a link-layer frame, or None."""
    if linktype == 1:  # Ethernet
        etype, off = struct.unpack("!H", frame[12:14])[0], 14
        while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            etype, off = struct.unpack("!H", frame[off + 2:off + 4])[0], off + 4
    elif linktype == 113:  # Linux cooked v1
        etype, off = struct.unpack("!H", frame[14:16])[0], 16
    elif linktype == 276:  # Linux cooked v2
        etype, off = struct.unpack("!H", frame[0:2])[0], 20
    elif linktype in (101, 12, 14):  # raw IP
        return frame
    else:
        raise ValueError(f"unsupported link type {linktype}")
    return frame[off:] if etype in (0x0800, 0x86DD) else None


def csum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class Pkt:
    ts: float
    ver: int
    src: str
    dst: str
    ttl: int
    proto: int
    l4: bytes
    ip_id: int = 0
    df: bool = False
    csum_ok: bool = True
    # TCP
    sport: int = 0
    dport: int = 0
    seq: int = 0
    ack: int = 0
    flags: int = 0
    # ICMP / ICMPv6 destination unreachable
    icmp: tuple = ()
    quoted: dict = field(default_factory=dict)


def parse_ip(ts: float, ip: bytes):
    """Parse an IPv4/IPv6 packet carrying TCP or ICMP(v6); None otherwise."""
    if len(ip) < 20:
        return None
    ver = ip[0] >> 4
    if ver == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        ip = ip[:total]
        p = Pkt(ts, 4, str(ipaddress.IPv4Address(ip[12:16])),
                str(ipaddress.IPv4Address(ip[16:20])), ip[8], ip[9], ip[ihl:])
        p.ip_id = struct.unpack("!H", ip[4:6])[0]
        p.df = bool(ip[6] & 0x40)
        pseudo = ip[12:20] + struct.pack("!BBH", 0, p.proto, len(p.l4))
        icmp_type, proto_icmp = 3, 1
    elif ver == 6 and len(ip) >= 40:
        plen = struct.unpack("!H", ip[4:6])[0]
        ip = ip[:40 + plen]
        p = Pkt(ts, 6, str(ipaddress.IPv6Address(ip[8:24])),
                str(ipaddress.IPv6Address(ip[24:40])), ip[7], ip[6], ip[40:])
        pseudo = ip[8:40] + struct.pack("!IxxxB", len(p.l4), p.proto)
        icmp_type, proto_icmp = 1, 58
    else:
        return None
    if p.proto == 6 and len(p.l4) >= 8:  # an ICMP quote may hold only 8 bytes
        p.sport, p.dport, p.seq = struct.unpack("!HHI", p.l4[:8])
        if len(p.l4) >= 20:
            p.ack = struct.unpack("!I", p.l4[8:12])[0]
            p.flags = p.l4[13]
            p.csum_ok = csum16(pseudo + p.l4) == 0
        return p
    if p.proto == proto_icmp and len(p.l4) >= 8:
        p.icmp = (p.l4[0], p.l4[1])
        if p.l4[0] == icmp_type:
            inner = parse_ip(ts, p.l4[8:])
            if inner is not None and inner.proto == 6:
                p.quoted = {"src": inner.src, "dst": inner.dst, "sport": inner.sport,
                            "dport": inner.dport, "seq": inner.seq}
        return p
    return None


def packets(path: Path):
    out = []
    for ts, linktype, frame in read_frames(path):
        ip = l3(linktype, frame)
        if ip is not None:
            p = parse_ip(ts, ip)
            if p is not None:
                out.append(p)
    return out


# ---------------------------------------------------------------- checking

SYN, RST, ACK = 0x02, 0x04, 0x10


def norm(addr: str) -> str:
    return str(ipaddress.ip_address(addr))


def check_row(row: dict, pkts: list) -> tuple:
    """Return (ok, description) for one truth row."""
    c, cp = norm(row["client_ip"]), int(row["client_port"])
    s, sp = norm(row["server_ip"]), int(row["server_port"])
    notes = row["notes"]
    problems = []

    syns = [p for p in pkts if p.proto == 6 and p.src == c and p.dst == s
            and p.sport == cp and p.dport == sp and p.flags & (SYN | ACK) == SYN]
    if not syns:
        return False, "no SYN from the client for this 4-tuple"
    isn, t0 = syns[0].seq, syns[0].ts
    ack_ok = (isn + 1) & 0xFFFFFFFF

    answers = []
    for p in pkts:
        if p.ts < t0:
            continue
        if p.proto == 6 and p.src == s and p.dst == c and p.sport == sp and p.dport == cp:
            if p.flags & (SYN | ACK) == SYN | ACK and p.ack == ack_ok:
                answers.append(("synack", p))
            elif p.flags & RST:
                if p.flags & ACK and p.ack == ack_ok:
                    answers.append(("rst", p))
                else:
                    problems.append(f"RST without ack=ISN+1 (flags {p.flags:#x} ack {p.ack})")
        elif p.icmp and p.dst == c and p.quoted:
            q = p.quoted
            if (q["src"], q["dst"], q["sport"], q["dport"]) == (c, s, cp, sp):
                if q["seq"] == isn:
                    answers.append(("icmp", p))
                else:
                    problems.append(f"ICMP quotes seq {q['seq']}, not the SYN's {isn}")

    kind_outcome = {"synack": "accepted", "rst": "refused", "icmp": "unreachable"}
    if answers:
        kind, first = answers[0]
        outcome = kind_outcome[kind]
        desc = f"{kind}"
        if kind == "icmp":
            desc += f" {first.icmp[0]}/{first.icmp[1]}"
        desc += (f" from {first.src} ttl {first.ttl} after "
                 f"{(first.ts - t0) * 1000:.0f} ms")
    else:
        kind, first, outcome = None, None, "no-answer"
        desc = "no answer"
    desc += f", {len(syns)} SYN(s)"
    if outcome != row["outcome"]:
        problems.append(f"wire says {outcome}, truth says {row['outcome']}")

    m = re.search(r"answered by (\S+) \(.*?ttl (\d+)\)", notes)
    if m and first is not None:
        if first.src != norm(m.group(1)):
            problems.append(f"answer from {first.src}, notes say {m.group(1)}")
        if first.ttl != int(m.group(2)):
            problems.append(f"answer ttl {first.ttl}, notes say {m.group(2)}")
    elif m:
        problems.append("notes name an answer but there is none")
    m = re.search(r"ICMP(?:v6)? (\d+)/(\d+)", notes)
    if m and kind == "icmp" and first.icmp != (int(m.group(1)), int(m.group(2))):
        problems.append(f"ICMP {first.icmp}, notes say {m.group(1)}/{m.group(2)}")

    if outcome == "no-answer" and len(syns) < 3:
        problems.append(f"silence but only {len(syns)} SYN(s) (expected retransmissions)")
    if row["client_errno"] == "-" and not any(k == "synack" for k, _ in answers):
        problems.append("client connected but there is no SYN-ACK")

    if "injector" in notes:
        kinds = [k for k, _ in answers]
        if kinds[:2] != ["rst", "synack"]:
            problems.append(f"expected forged RST then genuine SYN-ACK, got {kinds}")
        else:
            rst, synack = answers[0][1], answers[1][1]
            desc += (f"; genuine SYN-ACK ttl {synack.ttl} {(synack.ts - rst.ts) * 1000:.0f} ms"
                     f" later; forged RST ip id {rst.ip_id} df {int(rst.df)}")
            if rst.ttl == synack.ttl:
                problems.append("forged RST and genuine SYN-ACK have the same TTL")
            late_rst = [p for p in pkts if p.proto == 6 and p.src == c and p.sport == cp
                        and p.dport == sp and p.flags & RST and p.ts >= synack.ts]
            if not late_rst:
                problems.append("client did not RST the late SYN-ACK")
            elif late_rst[0].seq != synack.ack:
                problems.append("client's RST does not use the SYN-ACK's ack as seq")
    return not problems, desc + ("" if not problems else " -- " + "; ".join(problems))


def main(argv) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    d = Path(argv[1])
    only = set(argv[2:])
    with open(d / "truth.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    want_header = ["file", "client_ip", "client_port", "server_ip", "server_port",
                   "outcome", "verdict", "client_errno", "notes"]
    if not rows or list(rows[0].keys()) != want_header:
        print("truth.tsv: bad or missing header", file=sys.stderr)
        return 1
    cache, bad, n = {}, 0, 0
    for row in rows:
        fname = row["file"]
        if only and fname not in only:
            continue
        if fname not in cache:
            cache[fname] = packets(d / fname)
            tcp = [p for p in cache[fname] if p.proto == 6]
            nbad = sum(not p.csum_ok for p in tcp)
            offload = "offload" in fname
            ok = nbad > 0 if offload else nbad == 0
            bad += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {fname}: {len(cache[fname])} IP packets, "
                  f"{nbad}/{len(tcp)} TCP checksums bad "
                  f"(expected {'some' if offload else 'none'}: offload {'on' if offload else 'off'})")
            # Every TCP flow in the file (also those quoted in ICMP errors)
            # must be one of the file's truth rows: no stray traffic.
            flows = {(norm(r["client_ip"]), int(r["client_port"]), norm(r["server_ip"]),
                      int(r["server_port"])) for r in rows if r["file"] == fname}
            stray = set()
            for p in cache[fname]:
                if p.proto == 6:
                    t = (p.src, p.sport, p.dst, p.dport)
                    if t not in flows and (p.dst, p.dport, p.src, p.sport) not in flows:
                        stray.add(t)
                elif p.quoted:
                    q = p.quoted
                    t = (q["src"], q["sport"], q["dst"], q["dport"])
                    if t not in flows:
                        stray.add(t)
            if stray:
                bad += 1
                print(f"FAIL {fname}: TCP flows not in truth.tsv: {sorted(stray)}")
        ok, desc = check_row(row, cache[fname])
        n += 1
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {fname} {row['client_ip']}:{row['client_port']} -> "
              f"{row['server_ip']}:{row['server_port']} {row['outcome']}/{row['verdict']}"
              f"/{row['client_errno']}: {desc}")
    print(f"{n} rows checked in {len(cache)} files, {bad} problems")
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
