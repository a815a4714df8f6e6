//! The probe's packets, crafted with `pnet`: complete IPv4/IPv6 packets (header included) with
//! correct checksums, ready for a raw socket with the IP header included.
//!
//! Contract: every function returns one whole IP packet; nothing here does I/O. The SYN looks
//! like a Linux client's (window 64240, MSS, SACK-permitted, timestamps, window scale), because
//! some filters treat bare SYNs differently from real ones. The RST that closes a half-open
//! connection is what RFC 9293 §3.10.7.3 has a client send for an unexpected SYN-ACK:
//! `<SEQ=SEG.ACK><CTL=RST>`.

use std::net::{IpAddr, Ipv4Addr};

use pnet::packet::icmp::{echo_request::MutableEchoRequestPacket, IcmpTypes};
use pnet::packet::icmpv6::{echo_request::MutableEchoRequestPacket as MutableEcho6Packet, Icmpv6Types};
use pnet::packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet::packet::ipv4::{self, MutableIpv4Packet};
use pnet::packet::ipv6::MutableIpv6Packet;
use pnet::packet::tcp::{self, MutableTcpPacket, TcpFlags, TcpOption};
use pnet::packet::Packet;

/// The TTL (hop limit) of probe packets that are not TTL-limited: Linux's default.
pub const DEFAULT_TTL: u8 = 64;

/// What goes into one TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Source address (the probe's).
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
    /// TSval for the SYN's timestamp option.
    pub ts_val: u32,
}

/// A SYN with Linux-like options.
pub fn syn(s: &Segment) -> Vec<u8> {
    let mss = if s.dst.is_ipv6() { 1440 } else { 1460 };
    let options = [
        TcpOption::mss(mss),
        TcpOption::sack_perm(),
        TcpOption::timestamp(s.ts_val, 0),
        TcpOption::nop(),
        TcpOption::wscale(7),
    ];
    tcp_packet(s, TcpFlags::SYN, 0, 64240, &options, 40)
}

/// A RST (no ACK) with sequence `s.seq`: the answer to a SYN-ACK whose ack is `s.seq`.
pub fn rst(s: &Segment) -> Vec<u8> {
    tcp_packet(s, TcpFlags::RST, 0, 0, &[], 0)
}

fn tcp_packet(s: &Segment, flags: u8, ack: u32, window: u16, options: &[TcpOption], options_len: usize) -> Vec<u8> {
    let tcp_len = 20 + options_len;
    let mut buf = ip_buffer(s.src, s.dst, IpNextHeaderProtocols::Tcp, s.ttl, s.ip_id, tcp_len);
    let off = ip_header_len(s.dst);
    {
        let Some(mut t) = MutableTcpPacket::new(&mut buf[off..]) else {
            return buf;
        };
        t.set_source(s.sport);
        t.set_destination(s.dport);
        t.set_sequence(s.seq);
        t.set_acknowledgement(ack);
        t.set_data_offset((tcp_len / 4) as u8);
        t.set_flags(flags);
        t.set_window(window);
        t.set_urgent_ptr(0);
        if !options.is_empty() {
            t.set_options(options);
        }
        let sum = match (s.src, s.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => tcp::ipv4_checksum(&t.to_immutable(), &a, &b),
            (IpAddr::V6(a), IpAddr::V6(b)) => tcp::ipv6_checksum(&t.to_immutable(), &a, &b),
            _ => 0,
        };
        t.set_checksum(sum);
    }
    buf
}

/// An ICMP (IPv4) or ICMPv6 echo request with identifier `id` and sequence `seq`.
pub fn echo_request(src: IpAddr, dst: IpAddr, id: u16, seq: u16, ttl: u8, ip_id: u16) -> Vec<u8> {
    const PAYLOAD: &[u8] = b"synrst probe baseline";
    let len = 8 + PAYLOAD.len();
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            let mut buf = ip_buffer(src, dst, IpNextHeaderProtocols::Icmp, ttl, ip_id, len);
            if let Some(mut e) = MutableEchoRequestPacket::new(&mut buf[20..]) {
                e.set_icmp_type(IcmpTypes::EchoRequest);
                e.set_identifier(id);
                e.set_sequence_number(seq);
                e.set_payload(PAYLOAD);
                let sum = pnet::packet::util::checksum(e.packet(), 1);
                e.set_checksum(sum);
            }
            buf
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mut buf = ip_buffer(src, dst, IpNextHeaderProtocols::Icmpv6, ttl, ip_id, len);
            if let Some(mut e) = MutableEcho6Packet::new(&mut buf[40..]) {
                e.set_icmpv6_type(Icmpv6Types::EchoRequest);
                e.set_identifier(id);
                e.set_sequence_number(seq);
                e.set_payload(PAYLOAD);
                let sum = pnet::packet::util::ipv6_checksum(e.packet(), 1, &[], &a, &b, IpNextHeaderProtocols::Icmpv6);
                e.set_checksum(sum);
            }
            buf
        }
        _ => Vec::new(),
    }
}

fn ip_header_len(dst: IpAddr) -> usize {
    if dst.is_ipv6() {
        40
    } else {
        20
    }
}

/// A zeroed packet of the right size with its IP header filled in.
fn ip_buffer(src: IpAddr, dst: IpAddr, proto: IpNextHeaderProtocol, ttl: u8, ip_id: u16, payload: usize) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut buf = vec![0u8; 20 + payload];
            if let Some(mut ip) = MutableIpv4Packet::new(&mut buf) {
                fill_v4(&mut ip, s, d, proto, ttl, ip_id, 20 + payload);
            }
            buf
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut buf = vec![0u8; 40 + payload];
            if let Some(mut ip) = MutableIpv6Packet::new(&mut buf) {
                ip.set_version(6);
                ip.set_traffic_class(0);
                ip.set_flow_label(0);
                ip.set_payload_length(payload as u16);
                ip.set_next_header(proto);
                ip.set_hop_limit(ttl);
                ip.set_source(s);
                ip.set_destination(d);
            }
            buf
        }
        _ => Vec::new(),
    }
}

fn fill_v4(
    ip: &mut MutableIpv4Packet<'_>,
    s: Ipv4Addr,
    d: Ipv4Addr,
    proto: IpNextHeaderProtocol,
    ttl: u8,
    ip_id: u16,
    total: usize,
) {
    ip.set_version(4);
    ip.set_header_length(5);
    ip.set_total_length(total as u16);
    ip.set_identification(ip_id);
    ip.set_flags(ipv4::Ipv4Flags::DontFragment);
    ip.set_ttl(ttl);
    ip.set_next_level_protocol(proto);
    ip.set_source(s);
    ip.set_destination(d);
    let sum = ipv4::checksum(&ip.to_immutable());
    ip.set_checksum(sum);
}

/// The hop limit / TTL of a crafted packet.
pub fn ttl_of(packet: &[u8]) -> Option<u8> {
    match packet.first()? >> 4 {
        4 => packet.get(8).copied(),
        6 => packet.get(7).copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    use crate::capture::{Frame, LinkType, Timestamp};
    use crate::decode::{decode, Checksum, L4};

    fn seg(src: &str, dst: &str) -> Segment {
        Segment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport: 61000,
            dport: 82,
            seq: 0xdead_beef,
            ttl: 3,
            ip_id: 77,
            ts_val: 1,
        }
    }

    fn decoded(p: &[u8]) -> crate::decode::Observation {
        decode(&Frame {
            ts: Timestamp(0),
            link: LinkType::RAW,
            data: p,
            orig_len: p.len() as u32,
            number: 1,
        })
        .expect("decodes")
    }

    #[test]
    fn syn_v4_decodes_with_good_checksum_and_options() {
        let p = syn(&seg("198.18.1.2", "198.18.4.2"));
        let o = decoded(&p);
        assert_eq!(o.ip.ttl, 3);
        assert_eq!(o.ip.ip_id, Some(77));
        assert!(o.ip.df);
        let L4::Tcp(t) = o.l4 else { panic!() };
        assert!(t.flags.syn() && !t.flags.ack());
        assert_eq!(t.seq.0, 0xdead_beef);
        assert_eq!((t.src_port, t.dst_port), (61000, 82));
        assert_eq!(t.checksum, Checksum::Good);
        assert_eq!(t.options.mss, Some(1460));
        assert!(t.options.sack_permitted && t.options.timestamps);
        assert_eq!(t.options.wscale, Some(7));
        assert_eq!(ttl_of(&p), Some(3));
    }

    #[test]
    fn syn_v6_decodes_with_good_checksum() {
        let p = syn(&seg("2001:db8:1::2", "2001:db8:4::2"));
        let o = decoded(&p);
        assert_eq!(o.ip.ttl, 3);
        let L4::Tcp(t) = o.l4 else { panic!() };
        assert_eq!(t.checksum, Checksum::Good);
        assert_eq!(t.options.mss, Some(1440));
        assert_eq!(ttl_of(&p), Some(3));
    }

    #[test]
    fn rst_is_bare_rst_with_given_seq() {
        for (a, b) in [("198.18.1.2", "198.18.4.2"), ("2001:db8:1::2", "2001:db8:4::2")] {
            let p = rst(&seg(a, b));
            let L4::Tcp(t) = decoded(&p).l4 else { panic!() };
            assert!(t.flags.rst() && !t.flags.ack() && !t.flags.syn());
            assert_eq!(t.seq.0, 0xdead_beef);
            assert_eq!(t.window, 0);
            assert_eq!(t.checksum, Checksum::Good);
        }
    }

    #[test]
    fn echo_requests_verify() {
        let p = echo_request(
            "198.18.1.2".parse().unwrap(),
            "198.18.4.2".parse().unwrap(),
            5,
            1,
            64,
            9,
        );
        let s = etherparse::SlicedPacket::from_ip(&p).unwrap();
        match s.transport {
            Some(etherparse::TransportSlice::Icmpv4(i)) => {
                assert!(matches!(i.icmp_type(), etherparse::Icmpv4Type::EchoRequest(h) if h.id == 5 && h.seq == 1));
                assert_eq!(i.checksum(), pnet::packet::util::checksum(i.slice(), 1));
            }
            _ => panic!("not ICMP"),
        }
        let p = echo_request(
            "2001:db8:1::2".parse().unwrap(),
            "2001:db8:4::2".parse().unwrap(),
            5,
            2,
            64,
            0,
        );
        let s = etherparse::SlicedPacket::from_ip(&p).unwrap();
        match s.transport {
            Some(etherparse::TransportSlice::Icmpv6(i)) => {
                assert!(matches!(i.icmp_type(), etherparse::Icmpv6Type::EchoRequest(h) if h.id == 5 && h.seq == 2));
                assert!(i.is_checksum_valid(
                    "2001:db8:1::2".parse::<Ipv6Addr>().unwrap().octets(),
                    "2001:db8:4::2".parse::<Ipv6Addr>().unwrap().octets()
                ));
            }
            _ => panic!("not ICMPv6"),
        }
    }
}
