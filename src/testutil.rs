//! Packet and capture builders for tests (unit and integration), over etherparse's
//! `PacketBuilder`. Not part of the stable interface.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IpHeaders, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder, TcpHeader, TcpOptionElement};

/// Client MAC.
pub const MAC_C: [u8; 6] = [2, 0, 0, 0, 0, 0xc];
/// Gateway MAC (everything from the network arrives from it).
pub const MAC_G: [u8; 6] = [2, 0, 0, 0, 0, 0x1];
/// Client IPv4.
pub const C4: [u8; 4] = [198, 18, 0, 2];
/// Server IPv4.
pub const S4: [u8; 4] = [198, 19, 0, 10];
/// Router IPv4.
pub const R4: [u8; 4] = [198, 18, 0, 1];
/// Client IPv6.
pub const C6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Server IPv6.
pub const S6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];

/// Every field a test may want to set on a TCP/IP packet.
#[derive(Clone, Debug)]
pub struct Tcp {
    /// Source address (4 or 16 bytes).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (sets ACK when Some).
    pub ack: Option<u32>,
    /// SYN flag.
    pub syn: bool,
    /// RST flag.
    pub rst: bool,
    /// FIN flag.
    pub fin: bool,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 identification.
    pub ip_id: u16,
    /// IPv4 don't-fragment bit.
    pub df: bool,
    /// IPv6 flow label.
    pub flow_label: u32,
    /// Window.
    pub window: u16,
    /// Add MSS/SACK/TS/WS options like Linux.
    pub options: bool,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Tcp {
    /// A Linux-like SYN.
    pub fn syn(src: impl Into<IpAddr>, sport: u16, dst: impl Into<IpAddr>, dport: u16, seq: u32) -> Tcp {
        Tcp {
            src: src.into(),
            dst: dst.into(),
            sport,
            dport,
            seq,
            ack: None,
            syn: true,
            rst: false,
            fin: false,
            ttl: 64,
            ip_id: 0x1234,
            df: true,
            flow_label: 0x12345,
            window: 64240,
            options: true,
            payload: Vec::new(),
        }
    }

    /// The SYN-ACK answering `syn` (server ISN `seq`).
    pub fn synack_to(syn: &Tcp, seq: u32) -> Tcp {
        Tcp {
            src: syn.dst,
            dst: syn.src,
            sport: syn.dport,
            dport: syn.sport,
            seq,
            ack: Some(syn.seq.wrapping_add(1).wrapping_add(syn.payload.len() as u32)),
            syn: true,
            ip_id: 0,
            window: 65160,
            ..syn.clone()
        }
    }

    /// The RST+ACK a Linux stack sends for a SYN to a closed port.
    pub fn rst_to(syn: &Tcp) -> Tcp {
        Tcp {
            src: syn.dst,
            dst: syn.src,
            sport: syn.dport,
            dport: syn.sport,
            seq: 0,
            ack: Some(syn.seq.wrapping_add(1)),
            syn: false,
            rst: true,
            ip_id: 0,
            window: 0,
            options: false,
            ..syn.clone()
        }
    }

    /// With this TTL.
    pub fn ttl(mut self, ttl: u8) -> Tcp {
        self.ttl = ttl;
        self
    }

    /// IP packet bytes (no link layer).
    pub fn ip_bytes(&self) -> Vec<u8> {
        let mut h = TcpHeader::new(self.sport, self.dport, self.seq, self.window);
        h.syn = self.syn;
        h.rst = self.rst;
        h.fin = self.fin;
        if let Some(a) = self.ack {
            h.ack = true;
            h.acknowledgment_number = a;
        }
        if self.options {
            let opts = [
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(1, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ];
            h.set_options(&opts).expect("options fit");
        }
        let mut ip = ip_headers(self.src, self.dst, self.ttl, self.ip_id, etherparse::ip_number::TCP);
        match &mut ip {
            IpHeaders::Ipv4(h, _) => h.dont_fragment = self.df,
            IpHeaders::Ipv6(h, _) => h.flow_label = Ipv6FlowLabel::try_new(self.flow_label & 0xF_FFFF).expect("label"),
        }
        let b = PacketBuilder::ip(ip).tcp_header(h);
        let mut out = Vec::new();
        b.write(&mut out, &self.payload).expect("write");
        out
    }

    /// Ethernet frame bytes (client MAC when sent by `C4`/`C6`, gateway MAC otherwise).
    pub fn frame(&self) -> Vec<u8> {
        ether(self.src, &self.ip_bytes())
    }
}

fn ip_headers(src: IpAddr, dst: IpAddr, ttl: u8, ip_id: u16, proto: etherparse::IpNumber) -> IpHeaders {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, ttl, proto, s.octets(), d.octets()).expect("header");
            h.identification = ip_id;
            h.dont_fragment = true;
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::try_new(0x12345).expect("label"),
                payload_length: 0,
                next_header: proto,
                hop_limit: ttl,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => panic!("mixed address families"),
    }
}

/// Wraps an IP packet in Ethernet II.
pub fn ether(src: IpAddr, ip: &[u8]) -> Vec<u8> {
    let client = src == IpAddr::from(C4) || src == IpAddr::from(C6);
    let (smac, dmac) = if client { (MAC_C, MAC_G) } else { (MAC_G, MAC_C) };
    let mut out = Vec::with_capacity(14 + ip.len());
    out.extend_from_slice(&dmac);
    out.extend_from_slice(&smac);
    let et: u16 = if ip.first().map(|b| b >> 4) == Some(6) {
        0x86dd
    } else {
        0x0800
    };
    out.extend_from_slice(&et.to_be_bytes());
    out.extend_from_slice(ip);
    out
}

/// An ICMP (v4 or v6, by address family) error of `icmp_type`/`code` from `src` to `dst`,
/// quoting `quoted` (an IP packet), as an Ethernet frame.
pub fn icmp_error(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    icmp_type: u8,
    code: u8,
    quoted: &[u8],
    ttl: u8,
) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    let ip = ip_headers(src, dst, ttl, 0x4242, etherparse::ip_number::ICMP);
    let mut out = Vec::new();
    match ip {
        IpHeaders::Ipv4(..) => PacketBuilder::ip(ip)
            .icmpv4_raw(icmp_type, code, [0; 4])
            .write(&mut out, quoted),
        IpHeaders::Ipv6(h, e) => {
            let mut h = h;
            h.next_header = etherparse::ip_number::IPV6_ICMP;
            PacketBuilder::ip(IpHeaders::Ipv6(h, e))
                .icmpv6_raw(icmp_type, code, [0; 4])
                .write(&mut out, quoted)
        }
    }
    .expect("write");
    ether(src, &out)
}

/// Ethernet IPv4 SYN (for decode tests).
pub fn syn4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32, ttl: u8) -> Vec<u8> {
    Tcp::syn(Ipv4Addr::from(src), sport, Ipv4Addr::from(dst), dport, seq)
        .ttl(ttl)
        .frame()
}

/// Ethernet IPv6 SYN.
pub fn syn6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, seq: u32, hlim: u8) -> Vec<u8> {
    Tcp::syn(Ipv6Addr::from(src), sport, Ipv6Addr::from(dst), dport, seq)
        .ttl(hlim)
        .frame()
}

/// Ethernet ICMPv4 type-3 error with `code` quoting `quoted`.
pub fn icmp4_unreach(src: [u8; 4], dst: [u8; 4], code: u8, quoted: &[u8], ttl: u8) -> Vec<u8> {
    icmp_error(Ipv4Addr::from(src), Ipv4Addr::from(dst), 3, code, quoted, ttl)
}

/// A classic pcap file (microsecond, little-endian) holding `frames` as (seconds, frame).
pub fn pcap(link: u32, frames: &[(f64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&link.to_le_bytes());
    for (t, f) in frames {
        let micros = (t * 1e6).round() as u64;
        out.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}
