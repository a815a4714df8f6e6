//! A simulated network behind the [`Wire`] trait, for unit tests: the lab's topology
//! (client — r1 — fw — r2 — server) with virtual time. Routers check the TTL before their
//! forward filter, as Linux does; the server listens on port 80 and keeps a half-open
//! connection per SYN-ACK until a RST with the right sequence number arrives.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

use super::Wire;
use crate::capture::Timestamp;
use crate::testutil::{icmp_error, Tcp};

/// What the firewall at hop 2 does to SYNs to its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `reject with tcp reset` (forged with the server's address).
    Rst,
    /// `reject with icmp` of this type and code.
    Icmp(u8, u8),
    /// `drop`.
    Drop,
}

/// The simulated lab.
pub struct Sim {
    now: i64,
    v6: bool,
    routers: Vec<IpAddr>,
    server: IpAddr,
    filter: Option<(u16, Action)>,
    /// Routers send no time exceeded and nothing answers echo.
    pub silent_routers: bool,
    queue: VecDeque<(i64, Vec<u8>)>,
    sent: Vec<(i64, Vec<u8>)>,
    /// Half-open connections: client port → the sequence number a RST must carry.
    half_open: HashMap<u16, u32>,
    synacks: usize,
    isn: u32,
}

const HOP_NS: i64 = 100_000;

impl Sim {
    /// The lab, IPv4 or IPv6, with an optional filter at fw (hop 2) for one port.
    pub fn lab(v6: bool, filter: Option<(u16, Action)>) -> Sim {
        let a = |s4: &str, s6: &str| -> IpAddr {
            if v6 {
                s6.parse().unwrap()
            } else {
                s4.parse().unwrap()
            }
        };
        Sim {
            now: 1_700_000_000_000_000_000,
            v6,
            routers: vec![
                a("198.18.1.1", "2001:db8:1::1"),
                a("198.18.2.2", "2001:db8:2::2"),
                a("198.18.3.2", "2001:db8:3::2"),
            ],
            server: a("198.18.4.2", "2001:db8:4::2"),
            filter,
            silent_routers: false,
            queue: VecDeque::new(),
            sent: Vec::new(),
            half_open: HashMap::new(),
            synacks: 0,
            isn: 0x5000_0000,
        }
    }

    /// SYN-ACKs the server sent.
    pub fn synacks_sent(&self) -> usize {
        self.synacks
    }

    /// Half-open connections left on the server (source ports).
    pub fn half_open(&self) -> Vec<u16> {
        self.half_open.keys().copied().collect()
    }

    /// Times (ns) and TTLs of every packet the probe sent.
    pub fn send_times(&self) -> Vec<(i64, u8)> {
        self.sent
            .iter()
            .map(|(t, p)| (*t, super::craft::ttl_of(p).unwrap_or(0)))
            .collect()
    }

    /// Highest TTL below 64 of a packet sent (the trace's last TTL).
    pub fn max_ttl_sent(&self) -> u8 {
        self.send_times()
            .iter()
            .map(|x| x.1)
            .filter(|t| *t < 64)
            .max()
            .unwrap_or(0)
    }

    fn deliver(&mut self, hops_away: i64, pkt: Vec<u8>) {
        let due = self.now + 2 * HOP_NS * hops_away.max(1);
        let at = self
            .queue
            .iter()
            .position(|(d, _)| *d > due)
            .unwrap_or(self.queue.len());
        self.queue.insert(at, (due, pkt));
    }

    fn with_ttl(pkt: &[u8], ttl: u8) -> Vec<u8> {
        let mut p = pkt.to_vec();
        match p.first().map(|b| b >> 4) {
            Some(4) => p[8] = ttl,
            Some(6) => p[7] = ttl,
            _ => {}
        }
        p
    }

    fn icmp(&self, from: IpAddr, to: IpAddr, t: u8, code: u8, quoted: &[u8], ttl: u8) -> Vec<u8> {
        icmp_error(from, to, t, code, quoted, ttl)[14..].to_vec()
    }

    fn handle(&mut self, pkt: &[u8]) {
        let Ok(s) = SlicedPacket::from_ip(pkt) else { return };
        let (src, ttl) = match &s.net {
            Some(etherparse::NetSlice::Ipv4(v4)) => (IpAddr::V4(v4.header().source_addr()), v4.header().ttl()),
            Some(etherparse::NetSlice::Ipv6(v6)) => (IpAddr::V6(v6.header().source_addr()), v6.header().hop_limit()),
            _ => return,
        };
        match &s.transport {
            Some(TransportSlice::Icmpv4(i)) => {
                if let etherparse::Icmpv4Type::EchoRequest(h) = i.icmp_type() {
                    if !self.silent_routers {
                        let (IpAddr::V4(a), IpAddr::V4(b)) = (self.server, src) else {
                            return;
                        };
                        let mut out = Vec::new();
                        PacketBuilder::ipv4(a.octets(), b.octets(), 61)
                            .icmpv4_echo_reply(h.id, h.seq)
                            .write(&mut out, i.payload())
                            .unwrap();
                        self.deliver(4, out);
                    }
                }
            }
            Some(TransportSlice::Icmpv6(i)) => {
                if let etherparse::Icmpv6Type::EchoRequest(h) = i.icmp_type() {
                    if !self.silent_routers {
                        let (IpAddr::V6(a), IpAddr::V6(b)) = (self.server, src) else {
                            return;
                        };
                        let mut out = Vec::new();
                        PacketBuilder::ipv6(a.octets(), b.octets(), 61)
                            .icmpv6_echo_reply(h.id, h.seq)
                            .write(&mut out, i.payload())
                            .unwrap();
                        self.deliver(4, out);
                    }
                }
            }
            Some(TransportSlice::Tcp(t)) => {
                let syn = Tcp {
                    src,
                    dst: self.server,
                    sport: t.source_port(),
                    dport: t.destination_port(),
                    seq: t.sequence_number(),
                    ack: None,
                    syn: true,
                    rst: false,
                    fin: false,
                    ttl,
                    ip_id: 0,
                    df: true,
                    flow_label: 0x12345,
                    window: 64240,
                    options: true,
                    payload: Vec::new(),
                };
                if t.rst() {
                    // The server's RCV.NXT is the client's ISN + 1: a RST must carry it.
                    if self.half_open.get(&t.source_port()) == Some(&t.sequence_number()) {
                        self.half_open.remove(&t.source_port());
                    }
                    return;
                }
                if !t.syn() || t.ack() {
                    return;
                }
                let mut left = ttl;
                for (h, router) in self.routers.clone().into_iter().enumerate() {
                    let hop = h as i64 + 1;
                    let back_ttl = 64 - h as u8;
                    // Linux ip_forward: the TTL check comes before the forward chain.
                    if left <= 1 {
                        if !self.silent_routers {
                            let q = Self::with_ttl(pkt, left);
                            let te = if self.v6 { (3, 0) } else { (11, 0) };
                            let p = self.icmp(router, src, te.0, te.1, &q, back_ttl);
                            self.deliver(hop, p);
                        }
                        return;
                    }
                    left -= 1;
                    if h == 1 {
                        if let Some((port, action)) = self.filter {
                            if port == t.destination_port() {
                                match action {
                                    Action::Rst => {
                                        let p = Tcp::rst_to(&syn).ttl(back_ttl).ip_bytes();
                                        self.deliver(hop, p);
                                    }
                                    Action::Icmp(ty, code) => {
                                        let q = Self::with_ttl(pkt, left);
                                        let p = self.icmp(router, src, ty, code, &q, back_ttl);
                                        self.deliver(hop, p);
                                    }
                                    Action::Drop => {}
                                }
                                return;
                            }
                        }
                    }
                }
                if t.destination_port() == 80 {
                    self.isn = self.isn.wrapping_add(0x1000);
                    let p = Tcp::synack_to(&syn, self.isn).ttl(61).ip_bytes();
                    self.half_open
                        .insert(t.source_port(), t.sequence_number().wrapping_add(1));
                    self.synacks += 1;
                    self.deliver(4, p);
                } else {
                    let p = Tcp::rst_to(&syn).ttl(61).ip_bytes();
                    self.deliver(4, p);
                }
            }
            _ => {}
        }
    }
}

impl Wire for Sim {
    fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }

    fn send(&mut self, packet: &[u8], _dst: IpAddr) -> io::Result<()> {
        self.sent.push((self.now, packet.to_vec()));
        self.handle(packet);
        Ok(())
    }

    fn recv(&mut self, wait: Duration, on_packet: &mut dyn FnMut(Timestamp, &[u8])) -> io::Result<()> {
        let until = self.now + wait.as_nanos() as i64;
        match self.queue.front() {
            Some((due, _)) if *due <= until => {
                let (due, p) = self.queue.pop_front().unwrap_or_default();
                self.now = self.now.max(due);
                on_packet(Timestamp(self.now), &p);
            }
            _ => self.now = until,
        }
        Ok(())
    }
}
