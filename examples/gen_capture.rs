//! Deterministic capture generator for benchmarks (`bench/run.sh`).
//!
//! ```text
//! cargo run --release --example gen_capture -- mix   OUT.pcap[ng] [MEGABYTES]   # default 1024
//! cargo run --release --example gen_capture -- flood OUT.pcap[ng] [FRAMES]      # default 10000000
//! ```
//!
//! `mix`: realistic traffic of about 1.2 M frames per GB: complete connections with data
//! (full-size segments and ACKs), thousands of attempts answered by SYN-ACK, RST, ICMP or
//! nothing, some IPv6 and 802.1Q-tagged frames, UDP noise. `flood`: 64-byte SYNs from random
//! sources to one server, nothing answers. The same arguments always give the same bytes
//! (xorshift seeded with a constant); packets are built with etherparse, checksums valid.
//!
//! An output name ending in `.pcapng` gives pcapng (one section, one Ethernet interface,
//! microsecond timestamps, enhanced packet blocks) with the same packets; anything else gives
//! classic pcap (microseconds, little-endian).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use synrst::testutil::{icmp_error, Tcp};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Writer {
    out: BufWriter<File>,
    /// pcapng rather than pcap.
    ng: bool,
    t_us: u64,
    frames: u64,
    bytes: u64,
}

/// One pcapng block: type, total length, body padded to 32 bits, total length again.
fn ng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&[0; 3][..pad]);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

impl Writer {
    fn new(path: &str) -> Writer {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create output"));
        let ng = path.ends_with(".pcapng");
        let mut h = Vec::new();
        if ng {
            // Section header: byte-order magic, version 1.0, section length unknown.
            let mut shb = Vec::new();
            shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
            shb.extend_from_slice(&1u16.to_le_bytes());
            shb.extend_from_slice(&0u16.to_le_bytes());
            shb.extend_from_slice(&(-1i64).to_le_bytes());
            h.extend_from_slice(&ng_block(0x0a0d_0d0a, &shb));
            // Interface 0: Ethernet, snap length 262144, default (microsecond) resolution.
            let mut idb = Vec::new();
            idb.extend_from_slice(&1u16.to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&262_144u32.to_le_bytes());
            h.extend_from_slice(&ng_block(1, &idb));
        } else {
            h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
            h.extend_from_slice(&2u16.to_le_bytes());
            h.extend_from_slice(&4u16.to_le_bytes());
            h.extend_from_slice(&[0; 8]);
            h.extend_from_slice(&262_144u32.to_le_bytes());
            h.extend_from_slice(&1u32.to_le_bytes());
        }
        out.write_all(&h).unwrap();
        Writer {
            out,
            ng,
            t_us: 1_764_000_000_000_000,
            frames: 0,
            bytes: h.len() as u64,
        }
    }

    fn frame(&mut self, advance_us: u64, f: &[u8]) {
        self.t_us += advance_us;
        if self.ng {
            let mut epb = Vec::with_capacity(20 + f.len());
            epb.extend_from_slice(&0u32.to_le_bytes());
            epb.extend_from_slice(&((self.t_us >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(self.t_us as u32).to_le_bytes());
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(f);
            let block = ng_block(6, &epb);
            self.out.write_all(&block).unwrap();
            self.bytes += block.len() as u64;
        } else {
            let mut rec = [0u8; 16];
            rec[0..4].copy_from_slice(&((self.t_us / 1_000_000) as u32).to_le_bytes());
            rec[4..8].copy_from_slice(&((self.t_us % 1_000_000) as u32).to_le_bytes());
            rec[8..12].copy_from_slice(&(f.len() as u32).to_le_bytes());
            rec[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
            self.out.write_all(&rec).unwrap();
            self.out.write_all(f).unwrap();
            self.bytes += 16 + f.len() as u64;
        }
        self.frames += 1;
    }
}

/// Inserts an 802.1Q tag after the MAC addresses.
fn vlan(mut f: Vec<u8>, id: u16) -> Vec<u8> {
    let tag = [0x81, 0x00, (id >> 8) as u8 & 0x0f, id as u8];
    f.splice(12..12, tag);
    f
}

fn v4(r: &mut Rng, net: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        198,
        18 + (net & 1),
        r.below(250) as u8 + 1,
        r.below(250) as u8 + 1,
    ))
}

fn v6(r: &mut Rng) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        r.below(16) as u16,
        0,
        0,
        0,
        0,
        r.below(60000) as u16 + 1,
    ))
}

fn mix(path: &str, megabytes: u64) {
    let mut r = Rng(0x5EED_1234_ABCD_0001);
    let mut w = Writer::new(path);
    let target = megabytes << 20;
    let data = vec![0x61u8; 1448];
    let client4 = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    let client6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2));
    let router = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let mut sport = 10_000u16;
    while w.bytes < target {
        sport = sport.wrapping_add(1).max(10_000);
        let ipv6 = r.below(10) == 0;
        let tagged = r.below(8) == 0;
        let (client, server) = if ipv6 {
            (client6, v6(&mut r))
        } else {
            (client4, v4(&mut r, 1))
        };
        let port = [80u16, 443, 22, 8080, 5432][r.below(5) as usize];
        let syn = Tcp::syn(client, sport, server, port, r.next() as u32);
        let tag = |f: Vec<u8>| if tagged { vlan(f, 42) } else { f };
        w.frame(r.below(200), &tag(syn.frame()));
        match r.below(100) {
            // A complete connection with data: handshake, ~40 full segments each way-ish, FINs.
            0..=84 => {
                let sa = Tcp::synack_to(&syn, r.next() as u32).ttl(57);
                w.frame(300 + r.below(2000), &tag(sa.frame()));
                let mut ack = syn.clone();
                ack.syn = false;
                ack.options = false;
                ack.seq = syn.seq.wrapping_add(1);
                ack.ack = Some(sa.seq.wrapping_add(1));
                w.frame(20, &tag(ack.frame()));
                let mut down = sa.clone();
                down.syn = false;
                down.options = false;
                down.seq = sa.seq.wrapping_add(1);
                down.ack = ack.seq.into();
                down.payload = data.clone();
                let segments = 10 + r.below(60);
                for i in 0..segments {
                    w.frame(40 + r.below(100), &tag(down.frame()));
                    down.seq = down.seq.wrapping_add(1448);
                    if i % 2 == 1 {
                        ack.ack = Some(down.seq);
                        w.frame(10, &tag(ack.frame()));
                    }
                }
                let mut fin = ack.clone();
                fin.fin = true;
                w.frame(50, &tag(fin.frame()));
                down.fin = true;
                down.payload.clear();
                w.frame(50, &tag(down.frame()));
            }
            // Refused by the host.
            85..=91 => w.frame(300 + r.below(2000), &tag(Tcp::rst_to(&syn).ttl(57).frame())),
            // Refused by a firewall with ICMP (IPv4) — or RST from nearer for IPv6.
            92..=95 => {
                if ipv6 {
                    w.frame(100, &tag(Tcp::rst_to(&syn).ttl(63).frame()));
                } else {
                    w.frame(100, &tag(icmp_error(router, client, 3, 13, &syn.ip_bytes(), 63)));
                }
            }
            // Nothing answers: two retransmissions.
            _ => {
                w.frame(1_000_000, &tag(syn.frame()));
                w.frame(2_000_000, &tag(syn.frame()));
            }
        }
        // UDP noise (DNS-sized), about one in four connections.
        if r.below(4) == 0 {
            let mut noise = Tcp::syn(client4, 53000, v4(&mut r, 0), 53, 0).frame();
            // Turn the TCP packet into a UDP-protocol IP packet of similar size: protocol 17.
            noise[14 + 9] = 17;
            w.frame(30, &noise);
        }
    }
    w.out.flush().unwrap();
    eprintln!("mix: {} frames, {} bytes -> {path}", w.frames, w.bytes);
}

fn flood(path: &str, frames: u64) {
    let mut r = Rng(0x5EED_F100_D000_0002);
    let mut w = Writer::new(path);
    let server = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 10));
    // A minimal SYN, no options: 14 + 20 + 20 = 54 bytes, padded to the 60-byte Ethernet minimum
    // plus 4 bytes standing for the FCS-less 64-byte wire frame.
    let mut base = Tcp::syn(Ipv4Addr::new(198, 18, 0, 1), 1, server, 80, 0);
    base.options = false;
    for _ in 0..frames {
        base.src = IpAddr::V4(Ipv4Addr::from((r.next() as u32) & 0x0001_FFFF | 0xC612_0000));
        base.sport = r.below(64_000) as u16 + 1024;
        base.seq = r.next() as u32;
        let mut f = base.frame();
        f.resize(64, 0);
        w.frame(1 + r.below(2), &f);
    }
    w.out.flush().unwrap();
    eprintln!("flood: {} frames, {} bytes -> {path}", w.frames, w.bytes);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("mix"), Some(out)) => mix(out, args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024)),
        (Some("flood"), Some(out)) => flood(out, args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000_000)),
        _ => {
            eprintln!("usage: gen_capture mix OUT.pcap[ng] [MEGABYTES] | flood OUT.pcap[ng] [FRAMES]");
            std::process::exit(2);
        }
    }
}
