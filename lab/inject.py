#!/usr/bin/env python3
"""synrst lab on-path RST injector (runs inside the lab's fw namespace).

It behaves like the classic on-path censorship / "TCP reset" middlebox:

1. It watches the client-facing interface with an AF_PACKET socket (which
   sees packets before netfilter does) for TCP SYNs to --dst:--dport.
2. For each SYN it immediately forges a RST+ACK *from the server* to the
   client: correct 4-tuple, seq 0, ack = client ISN + 1 (the only values the
   client kernel checks in SYN-SENT), window 0, its own IP ID, no DF, and its
   own TTL (--ttl, 64: it is sent by the fw namespace, so it reaches the
   client with 63, while the real server's packets arrive with 61).
3. The genuine SYN is dropped by an nft rule in fw's forward chain (the lab
   installs it); after --delay seconds this program re-emits the very same
   SYN towards the server with the TTL decremented by one, exactly as if fw
   had forwarded it. The server's genuine SYN-ACK therefore reaches the
   client *after* the forged RST; the client's kernel has already aborted the
   connect (ECONNREFUSED) and answers the late SYN-ACK with a RST of its own.

The delay is needed only because network namespaces are too fast for a real
race to be won reliably. Bounded: it handles at most --max SYNs and exits
after --lifetime seconds. IPv4 only. Python 3 standard library only.
"""
import argparse
import random
import select
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4


def csum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def forge_rst(client: bytes, server: bytes, cport: int, sport: int,
              ack: int, ttl: int) -> bytes:
    # TCP header: sport, dport, seq, ack, data offset 5 words, flags RST|ACK,
    # window 0, checksum (filled below), urgent pointer 0.
    tcp = struct.pack("!HHIIBBHHH", sport, cport, 0, ack, 5 << 4, 0x14, 0, 0, 0)
    pseudo = server + client + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum16(pseudo + tcp)) + tcp[18:]
    ip_id = random.randint(1, 0xFFFF)
    # IPv4 header; the kernel fills in the header checksum (IPPROTO_RAW).
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0, ttl,
                     socket.IPPROTO_TCP, 0, server, client)
    return ip + tcp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iface", required=True, help="client-facing interface")
    ap.add_argument("--dst", required=True, help="server address to 'protect'")
    ap.add_argument("--dport", type=int, required=True, help="server port")
    ap.add_argument("--delay", type=float, default=0.3,
                    help="seconds to hold the genuine SYN back")
    ap.add_argument("--ttl", type=int, default=64, help="TTL of the forged RST")
    ap.add_argument("--max", type=int, default=8, help="SYNs to handle at most")
    ap.add_argument("--lifetime", type=float, default=120.0,
                    help="exit after this many seconds (hard bound)")
    args = ap.parse_args()

    dst = socket.inet_aton(args.dst)
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sniff.bind((args.iface, 0))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    print("ready", flush=True)

    pending = []  # (due time, genuine SYN with TTL already decremented)
    handled = 0
    deadline = time.monotonic() + args.lifetime
    while (now := time.monotonic()) < deadline and (handled < args.max or pending):
        wait = min([deadline - now, 0.5] + [max(0.0, due - now) for due, _ in pending])
        ready, _, _ = select.select([sniff], [], [], wait)
        if ready:
            pkt, addr = sniff.recvfrom(65535)
            if addr[2] != PACKET_OUTGOING and handled < args.max and len(pkt) >= 40:
                ihl = (pkt[0] & 0x0F) * 4
                if (pkt[0] >> 4 == 4 and pkt[9] == socket.IPPROTO_TCP
                        and pkt[16:20] == dst and len(pkt) >= ihl + 20):
                    cport, dport, seq = struct.unpack("!HHI", pkt[ihl:ihl + 8])
                    flags = pkt[ihl + 13]
                    if dport == args.dport and flags & 0x12 == 0x02 and pkt[8] > 1:
                        client = pkt[12:16]
                        raw.sendto(forge_rst(client, dst, cport, dport,
                                             (seq + 1) & 0xFFFFFFFF, args.ttl),
                                   (socket.inet_ntoa(client), 0))
                        fwd = bytearray(pkt)
                        fwd[8] -= 1          # what forwarding would have done
                        fwd[10:12] = b"\0\0"  # IP checksum: kernel recomputes
                        pending.append((time.monotonic() + args.delay, bytes(fwd)))
                        handled += 1
                        print(f"injected RST for {socket.inet_ntoa(client)}:{cport}"
                              f" -> {args.dst}:{dport} ack={(seq + 1) & 0xFFFFFFFF}",
                              flush=True)
        now = time.monotonic()
        for item in [p for p in pending if p[0] <= now]:
            raw.sendto(item[1], (args.dst, 0))
            pending.remove(item)
            print("released genuine SYN", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
