//! Decode stage: one captured frame → one small `Copy` [`Observation`], or a counted [`Skip`].
//!
//! Contract: [`decode`] never panics and never allocates. The link type chooses the framing
//! (never guessed): Ethernet (802.1Q/802.1ad stacks up to three tags, MPLS label stacks),
//! Linux SLL and SLL2, raw IP (12, 14, 101, 228, 229), BSD NULL and OpenBSD LOOP. Parsing is
//! etherparse's lax slicing, so frames cut at the snap length and the partial packets quoted
//! by ICMP errors still yield what they contain. Only TCP segments and ICMP/ICMPv6
//! destination-unreachable and time-exceeded errors quoting TCP are observations; every other
//! frame is a [`Skip`] with a reason that the caller counts.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    ip_number, EtherType, Icmpv4Type, Icmpv6Type, LaxIpSlice, LaxNetSlice, LaxSlicedPacket, LinkSlice,
    TcpOptionElement, TcpOptionsIterator, TransportSlice,
};
use serde::Serialize;

use crate::capture::{Frame, LinkType, Timestamp};
use crate::flow::{Endpoint, SeqNumber, TcpFlags};

/// What one frame tells us. Small and `Copy`: it outlives the frame's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// Capture time.
    pub ts: Timestamp,
    /// Frame number in its file (from 1).
    pub frame: u64,
    /// Link-layer source address, where the framing has one.
    pub src_mac: Option<[u8; 6]>,
    /// Network-layer facts.
    pub ip: IpInfo,
    /// TCP segment or ICMP error.
    pub l4: L4,
    /// The frame was cut short by the snap length.
    pub truncated: bool,
}

/// IPv4/IPv6 header facts kept for attribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IPv4 identification (None for IPv6).
    pub ip_id: Option<u16>,
    /// IPv4 don't-fragment bit.
    pub df: bool,
    /// IPv4 TOS byte or IPv6 traffic class.
    pub tos: u8,
    /// IPv6 flow label (None for IPv4).
    pub flow_label: Option<u32>,
}

/// The transport-level content of an observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum L4 {
    /// A TCP segment.
    Tcp(TcpInfo),
    /// An ICMP or ICMPv6 error quoting a TCP segment.
    IcmpError(IcmpError),
}

/// TCP header facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNumber,
    /// Acknowledgment number (meaningful only with ACK).
    pub ack: SeqNumber,
    /// Control bits including reserved bits.
    pub flags: TcpFlags,
    /// Window field.
    pub window: u16,
    /// Summary of the options.
    pub options: TcpOptions,
    /// Payload bytes according to the IP length (not the captured length).
    pub payload_len: u32,
    /// Whether the TCP checksum verifies.
    pub checksum: Checksum,
}

/// A summary of TCP options: enough for fingerprints and anomaly checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpOptions {
    /// Bytes of options in the header.
    pub len: u8,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window scale option.
    pub wscale: Option<u8>,
    /// SACK-permitted option present.
    pub sack_permitted: bool,
    /// Timestamps option present.
    pub timestamps: bool,
    /// Option kinds in order, one byte each (first eight), for fingerprints.
    pub layout: u64,
}

/// Result of checking a TCP checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    /// It verifies.
    Good,
    /// It does not (on packets sent by the capturing host this is usually checksum offload).
    Bad,
    /// It could not be checked (segment cut by the snap length).
    Unknown,
    /// Not checked: a segment with payload and neither SYN nor RST (established data, which
    /// no attempt's outcome depends on; summing every payload byte would cost more than the
    /// rest of the analysis).
    NotChecked,
}

/// Whether a segment's checksum is worth verifying: SYNs, SYN-ACKs, RSTs, and segments
/// without payload (the header alone is cheap), not established data.
#[inline]
fn worth_checking(flags: TcpFlags, payload_len: usize) -> bool {
    payload_len == 0 || flags.syn() || flags.rst()
}

/// Kind of ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IcmpKind {
    /// ICMP type 3 / ICMPv6 type 1.
    Unreachable,
    /// ICMP type 11 / ICMPv6 type 3.
    TimeExceeded,
}

/// An ICMP/ICMPv6 error and the TCP header it quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// ICMPv6 rather than ICMPv4.
    pub v6: bool,
    /// Unreachable or time exceeded.
    pub kind: IcmpKind,
    /// Raw type.
    pub icmp_type: u8,
    /// Raw code.
    pub code: u8,
    /// The quoted packet.
    pub quote: Quote,
}

/// The offending packet's headers as quoted in an ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Quoted source (the client, for a SYN).
    pub src: Endpoint,
    /// Quoted destination (the server).
    pub dst: Endpoint,
    /// Quoted sequence number, when at least 8 bytes of TCP are quoted.
    pub seq: Option<SeqNumber>,
    /// Quoted flags, when at least 14 bytes of TCP are quoted.
    pub flags: Option<TcpFlags>,
    /// TTL of the quoted packet as the ICMP sender received it.
    pub ttl: u8,
    /// Bytes of TCP header quoted.
    pub tcp_bytes: u16,
}

/// Why a frame gave no observation. Counted per reason, never logged per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// The capture's link type is not one synrst decodes.
    UnsupportedLinkType(LinkType),
    /// Not IPv4/IPv6 (ARP, LLDP, …), or an encapsulation synrst does not open.
    NotIp,
    /// IP, but neither TCP nor ICMP.
    OtherProtocol,
    /// ICMP that is not an error about a packet (echo, neighbour discovery, …).
    IcmpOther,
    /// An ICMP error quoting something other than TCP.
    IcmpQuoteNotTcp,
    /// An ICMP error whose quote is too short to hold the TCP ports.
    IcmpQuoteTruncated,
    /// A non-first IP fragment (no TCP header).
    IpFragment,
    /// The frame ends before the headers do.
    Truncated,
    /// Headers that cannot be parsed.
    Malformed,
}

impl Skip {
    /// Stable snake_case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Skip::UnsupportedLinkType(_) => "unsupported_link_type",
            Skip::NotIp => "not_ip",
            Skip::OtherProtocol => "other_protocol",
            Skip::IcmpOther => "icmp_other",
            Skip::IcmpQuoteNotTcp => "icmp_quote_not_tcp",
            Skip::IcmpQuoteTruncated => "icmp_quote_truncated",
            Skip::IpFragment => "ip_fragment",
            Skip::Truncated => "truncated",
            Skip::Malformed => "malformed",
        }
    }
}

const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MCAST: u16 = 0x8848;
/// Deepest MPLS label stack opened.
const MAX_MPLS_LABELS: usize = 8;

/// Decodes one frame.
#[inline(always)]
pub fn decode(frame: &Frame<'_>) -> Result<Observation, Skip> {
    let mut out = Err(Skip::NotIp);
    decode_into(frame, &mut out);
    out
}

/// [`decode`] into `out`: the observation is written in place, where a returned one would be
/// built aside and copied (it is 144 bytes, and millions are decoded).
#[inline(always)]
pub fn decode_into(frame: &Frame<'_>, out: &mut Result<Observation, Skip>) {
    match fast(frame) {
        Some(f) => *out = Ok(f.observation(frame)),
        None => *out = decode_sliced(frame),
    }
}

/// An IPv4 TCP segment that opens a connection ([`TcpFlags::opens`]), in the few fields that
/// tracking needs of it (on a SYN flood, every frame is one): 32 bytes where its
/// [`Observation`] is 144.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syn4 {
    /// Frame number in its file.
    pub frame: u64,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNumber,
    /// Payload bytes according to the IP length (an IPv4 packet is at most 65,535 bytes).
    pub payload_len: u16,
    /// Whether the TCP checksum verifies.
    pub checksum: Checksum,
}

impl Syn4 {
    /// The [`Syn4`] of `o`, if `o` is one.
    #[inline]
    pub fn of(o: &Observation) -> Option<Syn4> {
        let L4::Tcp(t) = &o.l4 else { return None };
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (o.ip.src, o.ip.dst) else {
            return None;
        };
        if !t.flags.opens() {
            return None;
        }
        Some(Syn4 {
            frame: o.frame,
            src,
            dst,
            src_port: t.src_port,
            dst_port: t.dst_port,
            seq: t.seq,
            payload_len: u16::try_from(t.payload_len).ok()?,
            checksum: t.checksum,
        })
    }
}

/// [`decode_into`], except that a [`Syn4`] comes back as one: the same facts as [`Syn4::of`]
/// the observation, without building the rest of it when the fast path reads it. With `Some`,
/// `out` holds nothing to use (the fast path leaves it as it was; the long way has decoded into
/// it).
#[inline(always)]
pub fn decode_into_or_syn4(frame: &Frame<'_>, out: &mut Result<Observation, Skip>) -> Option<Syn4> {
    match fast(frame) {
        Some(f) => {
            let syn = f.syn4(frame);
            if syn.is_none() {
                *out = Ok(f.observation(frame));
            }
            syn
        }
        None => {
            *out = decode_sliced(frame);
            Syn4::of(out.as_ref().ok()?)
        }
    }
}

/// A TCP segment as [`fast`] reads it, before it becomes an [`Observation`].
struct Fast<'a> {
    src_mac: Option<[u8; 6]>,
    ip: IpInfo,
    /// The fixed TCP header (an array: its fields are read without bounds checks).
    head: &'a [u8; 20],
    /// The options after it.
    options: &'a [u8],
    /// Payload bytes as the IP length gives them.
    payload_len: usize,
    flags: TcpFlags,
    truncated: bool,
    checksum: Checksum,
}

impl Fast<'_> {
    #[inline(always)]
    fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.head[0], self.head[1]])
    }

    #[inline(always)]
    fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.head[2], self.head[3]])
    }

    #[inline(always)]
    fn seq(&self) -> SeqNumber {
        let h = self.head;
        SeqNumber(u32::from_be_bytes([h[4], h[5], h[6], h[7]]))
    }

    #[inline(always)]
    fn observation(&self, frame: &Frame<'_>) -> Observation {
        let tcp = self.head;
        Observation {
            ts: frame.ts,
            frame: frame.number,
            src_mac: self.src_mac,
            ip: self.ip,
            l4: L4::Tcp(TcpInfo {
                src_port: self.src_port(),
                dst_port: self.dst_port(),
                seq: self.seq(),
                ack: SeqNumber(u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]])),
                flags: self.flags,
                window: u16::from_be_bytes([tcp[14], tcp[15]]),
                options: options_of(self.options),
                payload_len: self.payload_len as u32,
                checksum: self.checksum,
            }),
            truncated: self.truncated,
        }
    }

    /// The [`Syn4`] of [`Fast::observation`], if it is one.
    #[inline(always)]
    fn syn4(&self, frame: &Frame<'_>) -> Option<Syn4> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (self.ip.src, self.ip.dst) else {
            return None;
        };
        if !self.flags.opens() {
            return None;
        }
        Some(Syn4 {
            frame: frame.number,
            src,
            dst,
            src_port: self.src_port(),
            dst_port: self.dst_port(),
            seq: self.seq(),
            payload_len: u16::try_from(self.payload_len).ok()?,
            checksum: self.checksum,
        })
    }
}

/// The common case read straight from the bytes: a complete, unfragmented TCP segment in
/// IPv4 (with or without options) or IPv6 (no extension header), over Ethernet with at most one
/// VLAN tag, Linux SLL/SLL2 or raw IP. The result is exactly what [`decode_sliced`] gives for
/// such a frame (the tests compare them) once [`Fast::observation`] has made it one; anything
/// else returns `None` and goes that way.
#[inline(always)]
fn fast<'a>(frame: &Frame<'a>) -> Option<Fast<'a>> {
    let data = frame.data;
    let (ip, src_mac) = match frame.link {
        LinkType::ETHERNET => {
            let mut ether_type = u16::from_be_bytes([*data.get(12)?, *data.get(13)?]);
            let mut at = 14;
            if matches!(ether_type, 0x8100 | 0x88a8 | 0x9100) {
                ether_type = u16::from_be_bytes([*data.get(16)?, *data.get(17)?]);
                at = 18;
            }
            if ether_type != 0x0800 && ether_type != 0x86dd {
                return None;
            }
            (&data[at..], mac_of(&data[6..12]))
        }
        LinkType::LINUX_SLL => {
            let head = data.get(..16)?;
            if !matches!(u16::from_be_bytes([head[14], head[15]]), 0x0800 | 0x86dd) {
                return None;
            }
            let alen = usize::from(u16::from_be_bytes([head[4], head[5]])).min(8);
            (&data[16..], mac_of(&head[6..6 + alen]))
        }
        LinkType::LINUX_SLL2 => {
            let head = data.get(..20)?;
            if !matches!(u16::from_be_bytes([head[0], head[1]]), 0x0800 | 0x86dd) {
                return None;
            }
            let alen = usize::from(head[11]).min(8);
            (&data[20..], mac_of(&head[12..12 + alen]))
        }
        LinkType::RAW | LinkType::RAW_OPENBSD | LinkType::RAW_BSDOS | LinkType::IPV4 | LinkType::IPV6 => (data, None),
        _ => return None,
    };
    let (info, tcp, pseudo) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            // Header and a whole TCP header inside the packet, the packet inside the frame,
            // TCP, not a fragment (no MF flag, offset 0).
            if ihl < 20 || total < ihl + 20 || total > ip.len() || ip[9] != 6 {
                return None;
            }
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            if frag & 0x3fff != 0 {
                return None;
            }
            let src: [u8; 4] = ip[12..16].try_into().ok()?;
            let dst: [u8; 4] = ip[16..20].try_into().ok()?;
            let tcp = &ip[ihl..total];
            let pseudo = u64::from(u32::from_ne_bytes(src))
                + u64::from(u32::from_ne_bytes(dst))
                + u64::from(u16::from_ne_bytes([0, ip_number::TCP.0]))
                + u64::from(u16::from_ne_bytes((tcp.len() as u16).to_be_bytes()));
            let info = IpInfo {
                src: IpAddr::V4(src.into()),
                dst: IpAddr::V4(dst.into()),
                ttl: ip[8],
                ip_id: Some(u16::from_be_bytes([ip[4], ip[5]])),
                df: frag & 0x4000 != 0,
                tos: ip[1],
                flow_label: None,
            };
            (info, tcp, pseudo)
        }
        6 => {
            let head = ip.get(..40)?;
            let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
            // TCP right after the fixed header; a payload length of 0 (jumbogram) goes the
            // long way.
            if head[6] != ip_number::TCP.0 || len < 20 || 40 + len > ip.len() {
                return None;
            }
            let src: [u8; 16] = head[8..24].try_into().ok()?;
            let dst: [u8; 16] = head[24..40].try_into().ok()?;
            let tcp = &ip[40..40 + len];
            let pseudo = sum16(&src)
                + sum16(&dst)
                + u64::from(u16::from_ne_bytes([0, ip_number::TCP.0]))
                + u64::from(u32::from_ne_bytes((tcp.len() as u32).to_be_bytes()));
            let info = IpInfo {
                src: IpAddr::V6(src.into()),
                dst: IpAddr::V6(dst.into()),
                ttl: head[7],
                ip_id: None,
                df: false,
                tos: (head[0] << 4) | (head[1] >> 4),
                flow_label: Some(u32::from_be_bytes([0, head[1] & 0x0f, head[2], head[3]])),
            };
            (info, tcp, pseudo)
        }
        _ => return None,
    };
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len < 20 || header_len > tcp.len() {
        return None;
    }
    let truncated = (frame.orig_len as usize) > data.len();
    let flags = flags_of(tcp);
    let checksum = if truncated {
        Checksum::Unknown
    } else if !worth_checking(flags, tcp.len() - header_len) {
        Checksum::NotChecked
    } else {
        let sum = pseudo + sum16(&tcp[..16]) + sum16(&tcp[18..]);
        if (!fold16(sum)).to_be() == u16::from_be_bytes([tcp[16], tcp[17]]) {
            Checksum::Good
        } else {
            Checksum::Bad
        }
    };
    Some(Fast {
        src_mac,
        ip: info,
        head: tcp[..20].try_into().ok()?,
        options: &tcp[20..header_len],
        payload_len: tcp.len() - header_len,
        flags,
        truncated,
        checksum,
    })
}

/// The sum of `data` as native-endian 16-bit words (a last odd byte padded with zero), in a
/// `u64` that cannot overflow for any IP payload: congruent, modulo 0xFFFF, to the
/// ones'-complement sum of RFC 1071, which [`fold16`] then gives.
#[inline]
fn sum16(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    let (mut lo, mut hi) = (0u64, 0u64);
    for c in &mut chunks {
        let w = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        lo += w & 0xffff_ffff;
        hi += w >> 32;
    }
    let mut sum = lo + hi;
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        sum += u64::from(u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        sum += u64::from(u16::from_ne_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        sum += u64::from(u16::from_ne_bytes([b, 0]));
    }
    sum
}

/// Folds a [`sum16`] to 16 bits with end-around carries: the same residue modulo 0xFFFF, zero
/// only for a zero sum (so the same value as etherparse's ones'-complement sum).
#[inline]
fn fold16(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Decodes one frame through etherparse's lax slicing (every framing and encapsulation).
fn decode_sliced(frame: &Frame<'_>) -> Result<Observation, Skip> {
    let data = frame.data;
    let (sliced, src_mac) = match frame.link {
        LinkType::ETHERNET => {
            let p = LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Truncated)?;
            let mac = match &p.link {
                Some(LinkSlice::Ethernet2(e)) => Some(e.source()),
                _ => None,
            };
            (p, mac)
        }
        LinkType::LINUX_SLL => {
            // 16-byte header: packet type, ARPHRD, address length, 8 address bytes, protocol
            // (LINKTYPE_LINUX_SLL). Read by offset: etherparse's LinuxSllSlice rejects hardware
            // types other than Ethernet-like ones (e.g. PPP, 0x0200), whose payload is still IP.
            if data.len() < 16 {
                return Err(Skip::Truncated);
            }
            let alen = usize::from(u16::from_be_bytes([data[4], data[5]])).min(8);
            let proto = u16::from_be_bytes([data[14], data[15]]);
            (
                LaxSlicedPacket::from_ether_type(EtherType(proto), &data[16..]),
                mac_of(&data[6..6 + alen]),
            )
        }
        LinkType::LINUX_SLL2 => {
            // 20-byte header: protocol, reserved, ifindex, ARPHRD, packet type, address length,
            // 8 address bytes (LINKTYPE_LINUX_SLL2 in the tcpdump.org registry).
            if data.len() < 20 {
                return Err(Skip::Truncated);
            }
            let proto = u16::from_be_bytes([data[0], data[1]]);
            let alen = usize::from(data[11]).min(8);
            (
                LaxSlicedPacket::from_ether_type(EtherType(proto), &data[20..]),
                mac_of(&data[12..12 + alen]),
            )
        }
        LinkType::RAW | LinkType::RAW_OPENBSD | LinkType::RAW_BSDOS | LinkType::IPV4 | LinkType::IPV6 => {
            (from_ip(data)?, None)
        }
        LinkType::NULL | LinkType::LOOP => {
            // 4-byte address family: host order for NULL, network order for LOOP. Accept
            // both orders, as libpcap does, since captures travel between machines.
            if data.len() < 4 {
                return Err(Skip::Truncated);
            }
            let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD),
            // 28 (FreeBSD), 30 (macOS).
            let is_af = |v: u32| matches!(v, 2 | 10 | 24 | 28 | 30);
            if !(is_af(le) || is_af(be)) {
                return Err(Skip::NotIp);
            }
            (from_ip(&data[4..])?, None)
        }
        other => return Err(Skip::UnsupportedLinkType(other)),
    };
    let sliced = open_mpls(sliced)?;
    let truncated = (frame.orig_len as usize) > data.len();
    observe(frame.ts, frame.number, src_mac, &sliced, truncated, true)
}

fn mac_of(addr: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(addr).ok()
}

fn from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    LaxSlicedPacket::from_ip(data).map_err(|e| match e {
        etherparse::err::ip::LaxHeaderSliceError::Len(_) => Skip::Truncated,
        etherparse::err::ip::LaxHeaderSliceError::Content(_) => Skip::NotIp,
    })
}

/// If the frame stopped at an MPLS label stack, skip the labels and slice the IP packet under it.
fn open_mpls(sliced: LaxSlicedPacket<'_>) -> Result<LaxSlicedPacket<'_>, Skip> {
    if sliced.net.is_some() {
        return Ok(sliced);
    }
    let Some(payload) = sliced.ether_payload() else {
        return Ok(sliced);
    };
    if payload.ether_type.0 != ETHERTYPE_MPLS && payload.ether_type.0 != ETHERTYPE_MPLS_MCAST {
        return Ok(sliced);
    }
    // RFC 3032: 4-byte entries; the bottom-of-stack bit is the lowest bit of the third byte.
    let mut rest = payload.payload;
    for _ in 0..MAX_MPLS_LABELS {
        if rest.len() < 4 {
            return Err(Skip::Truncated);
        }
        let bottom = rest[2] & 1 == 1;
        rest = &rest[4..];
        if bottom {
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => from_ip(rest),
                Some(_) => Err(Skip::NotIp),
                None => Err(Skip::Truncated),
            };
        }
    }
    Err(Skip::NotIp)
}

fn observe(
    ts: Timestamp,
    frame: u64,
    src_mac: Option<[u8; 6]>,
    p: &LaxSlicedPacket<'_>,
    truncated: bool,
    outer: bool,
) -> Result<Observation, Skip> {
    let ip = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            IpInfo {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                ttl: h.ttl(),
                ip_id: Some(h.identification()),
                df: h.dont_fragment(),
                tos: h.slice()[1],
                flow_label: None,
            }
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            IpInfo {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                ttl: h.hop_limit(),
                ip_id: None,
                df: false,
                tos: h.traffic_class(),
                flow_label: Some(h.flow_label().value()),
            }
        }
        Some(LaxNetSlice::Arp(_)) | None => {
            return Err(match p.stop_err {
                Some(_) => Skip::Truncated,
                None => Skip::NotIp,
            })
        }
    };
    let payload = p.net.as_ref().and_then(|n| n.ip_payload_ref());
    let (ip_number, fragmented, ip_payload_len) = match payload {
        Some(pl) => (pl.ip_number, pl.fragmented, pl.payload.len()),
        None => return Err(Skip::Malformed),
    };
    // A frame cut by the snap length holds less than the IP header says was sent: the
    // payload length comes from the header then, so that cut segments keep their size.
    let ip_payload_len = match (&p.net, payload.is_some_and(|pl| pl.incomplete)) {
        (Some(LaxNetSlice::Ipv4(v4)), true) => {
            usize::from(v4.header().total_len()).saturating_sub(usize::from(v4.header().ihl()) * 4)
        }
        (Some(LaxNetSlice::Ipv6(v6)), true) => {
            usize::from(v6.header().payload_length()).saturating_sub(v6.extensions().slice().len())
        }
        _ => ip_payload_len,
    }
    .max(ip_payload_len);
    let l4 = match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            let checksum = if truncated {
                Checksum::Unknown
            } else if !worth_checking(flags_of(tcp.header_slice()), tcp.payload().len()) {
                Checksum::NotChecked
            } else {
                let computed = match (&p.net, ip.src, ip.dst) {
                    (_, IpAddr::V4(s), IpAddr::V4(d)) => tcp.calc_checksum_ipv4(s.octets(), d.octets()).ok(),
                    (_, IpAddr::V6(s), IpAddr::V6(d)) => tcp.calc_checksum_ipv6(s.octets(), d.octets()).ok(),
                    _ => None,
                };
                match computed {
                    Some(c) if c == tcp.checksum() => Checksum::Good,
                    Some(_) => Checksum::Bad,
                    None => Checksum::Unknown,
                }
            };
            let header_len = usize::from(tcp.data_offset()) * 4;
            // The IP length says how much payload was sent even when the capture cut it.
            let payload_len = ip_payload_len.saturating_sub(header_len) as u32;
            L4::Tcp(TcpInfo {
                src_port: tcp.source_port(),
                dst_port: tcp.destination_port(),
                seq: SeqNumber(tcp.sequence_number()),
                ack: SeqNumber(tcp.acknowledgment_number()),
                flags: flags_of(tcp.header_slice()),
                window: tcp.window_size(),
                options: options_of(tcp.options()),
                payload_len,
                checksum,
            })
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
            let (kind, code) = match icmp.icmp_type() {
                Icmpv4Type::DestinationUnreachable(_) => (IcmpKind::Unreachable, icmp.code_u8()),
                Icmpv4Type::TimeExceeded(_) => (IcmpKind::TimeExceeded, icmp.code_u8()),
                _ => return Err(Skip::IcmpOther),
            };
            L4::IcmpError(IcmpError {
                v6: false,
                kind,
                icmp_type: icmp.type_u8(),
                code,
                quote: quote_of(icmp.payload())?,
            })
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            let kind = match icmp.icmp_type() {
                Icmpv6Type::DestinationUnreachable(_) => IcmpKind::Unreachable,
                Icmpv6Type::TimeExceeded(_) => IcmpKind::TimeExceeded,
                _ => return Err(Skip::IcmpOther),
            };
            L4::IcmpError(IcmpError {
                v6: true,
                kind,
                icmp_type: icmp.type_u8(),
                code: icmp.code_u8(),
                quote: quote_of(icmp.payload())?,
            })
        }
        Some(TransportSlice::Udp(udp)) => {
            // One level of tunnel only: the input must not control the recursion depth.
            return match teredo_inner(udp.payload()).filter(|_| outer) {
                Some(inner) => {
                    let p = from_ip(inner)?;
                    observe(ts, frame, src_mac, &p, truncated, false)
                }
                None => Err(Skip::OtherProtocol),
            };
        }
        Some(_) => return Err(Skip::OtherProtocol),
        None => {
            return Err(if fragmented {
                Skip::IpFragment
            } else if ip_number == ip_number::TCP || ip_number == ip_number::ICMP || ip_number == ip_number::IPV6_ICMP {
                Skip::Truncated
            } else {
                Skip::OtherProtocol
            })
        }
    };
    Ok(Observation {
        ts,
        frame,
        src_mac,
        ip,
        l4,
        truncated,
    })
}

/// The IPv6 packet inside a Teredo UDP payload (RFC 4380), if it is one: optional
/// authentication (0x0001) and origin-indication (0x0000) headers, then an IPv6 header with a
/// Teredo address (2001:0::/32) as source or destination. Detected by content, not by port,
/// since Teredo peers talk on arbitrary ports.
fn teredo_inner(mut p: &[u8]) -> Option<&[u8]> {
    if p.len() >= 4 && p[0] == 0 && p[1] == 1 {
        // Authentication: 2+1+1 bytes, client id, auth value, 8-byte nonce, 1-byte confirmation.
        let len = 4 + usize::from(p[2]) + usize::from(p[3]) + 9;
        p = p.get(len..)?;
    }
    if p.len() >= 8 && p[0] == 0 && p[1] == 0 {
        p = &p[8..];
    }
    if p.len() < 40 || p[0] >> 4 != 6 {
        return None;
    }
    let teredo = |a: &[u8]| a[..4] == [0x20, 0x01, 0x00, 0x00];
    (teredo(&p[8..24]) || teredo(&p[24..40])).then_some(p)
}

/// The 12 flag bits: reserved/AE bits from byte 12, the classic eight from byte 13.
fn flags_of(header: &[u8]) -> TcpFlags {
    TcpFlags((u16::from(header[12] & 0x0F) << 8) | u16::from(header[13]))
}

#[inline]
fn options_of(raw: &[u8]) -> TcpOptions {
    let mut o = TcpOptions {
        len: raw.len() as u8,
        ..TcpOptions::default()
    };
    let mut n = 0;
    for (i, elem) in TcpOptionsIterator::from_slice(raw).enumerate() {
        let Ok(elem) = elem else { break };
        let kind: u8 = match elem {
            TcpOptionElement::Noop => 1,
            TcpOptionElement::MaximumSegmentSize(m) => {
                o.mss = Some(m);
                2
            }
            TcpOptionElement::WindowScale(w) => {
                o.wscale = Some(w);
                3
            }
            TcpOptionElement::SelectiveAcknowledgementPermitted => {
                o.sack_permitted = true;
                4
            }
            TcpOptionElement::SelectiveAcknowledgement(..) => 5,
            TcpOptionElement::Timestamp(..) => {
                o.timestamps = true;
                8
            }
        };
        if i < 8 {
            o.layout |= u64::from(kind) << (8 * i);
            n += 1;
        }
    }
    let _ = n;
    o
}

/// Parses the IP+TCP packet quoted in an ICMP error (usually cut short: lax slicing).
fn quote_of(quoted: &[u8]) -> Result<Quote, Skip> {
    let (ip, _) = LaxIpSlice::from_slice(quoted).map_err(|_| Skip::IcmpQuoteTruncated)?;
    let payload = ip.payload();
    if payload.ip_number != ip_number::TCP {
        return Err(Skip::IcmpQuoteNotTcp);
    }
    let ttl = match &ip {
        LaxIpSlice::Ipv4(v4) => v4.header().ttl(),
        LaxIpSlice::Ipv6(v6) => v6.header().hop_limit(),
    };
    // A partial TCP header: etherparse slices only complete headers, and RFC 792 routers
    // quote only 8 bytes of it, so the fixed offsets are read here (RFC 9293 §3.1).
    let t = payload.payload;
    if t.len() < 4 {
        return Err(Skip::IcmpQuoteTruncated);
    }
    let seq = (t.len() >= 8).then(|| SeqNumber(u32::from_be_bytes([t[4], t[5], t[6], t[7]])));
    let flags = (t.len() >= 14).then(|| flags_of(t));
    Ok(Quote {
        src: Endpoint {
            ip: ip.source_addr(),
            port: u16::from_be_bytes([t[0], t[1]]),
        },
        dst: Endpoint {
            ip: ip.destination_addr(),
            port: u16::from_be_bytes([t[2], t[3]]),
        },
        seq,
        flags,
        ttl,
        tcp_bytes: t.len().min(usize::from(u16::MAX)) as u16,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::*;

    fn frame(link: LinkType, data: &[u8]) -> Frame<'_> {
        Frame {
            ts: Timestamp(1),
            link,
            data,
            orig_len: data.len() as u32,
            number: 1,
        }
    }

    #[test]
    fn ethernet_syn() {
        let pkt = syn4(C4, 40000, S4, 80, 1000, 64);
        let o = decode(&frame(LinkType::ETHERNET, &pkt)).unwrap();
        let L4::Tcp(t) = o.l4 else { panic!("not tcp") };
        assert!(t.flags.syn() && !t.flags.ack());
        assert_eq!(t.seq, SeqNumber(1000));
        assert_eq!(t.options.mss, Some(1460));
        assert_eq!(t.checksum, Checksum::Good);
        assert_eq!(o.ip.ttl, 64);
        assert_eq!(o.src_mac, Some(MAC_C));
    }

    #[test]
    fn icmp_quote_gives_four_tuple_and_isn() {
        let syn = syn4(C4, 40000, S4, 80, 1000, 63);
        let pkt = icmp4_unreach(R4, C4, 13, &syn[14..], 62);
        let o = decode(&frame(LinkType::ETHERNET, &pkt)).unwrap();
        let L4::IcmpError(e) = o.l4 else { panic!("not icmp") };
        assert_eq!((e.icmp_type, e.code), (3, 13));
        assert_eq!(e.quote.src.port, 40000);
        assert_eq!(e.quote.dst.port, 80);
        assert_eq!(e.quote.seq, Some(SeqNumber(1000)));
        assert!(e.quote.flags.unwrap().syn());
    }

    #[test]
    fn icmp_quote_of_eight_tcp_bytes_still_has_seq() {
        let syn = syn4(C4, 40000, S4, 80, 1000, 63);
        // 14 bytes Ethernet + 20 bytes IP + 8 bytes TCP, as RFC 792 routers quote.
        let pkt = icmp4_unreach(R4, C4, 1, &syn[14..14 + 28], 62);
        let o = decode(&frame(LinkType::ETHERNET, &pkt)).unwrap();
        let L4::IcmpError(e) = o.l4 else { panic!("not icmp") };
        assert_eq!(e.quote.seq, Some(SeqNumber(1000)));
        assert_eq!(e.quote.flags, None);
    }

    #[test]
    fn raw_ip_and_loopback_framings() {
        let pkt = syn4(C4, 40000, S4, 80, 7, 64);
        let ip = &pkt[14..];
        assert!(decode(&frame(LinkType::RAW, ip)).is_ok());
        assert!(decode(&frame(LinkType::IPV4, ip)).is_ok());
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert!(decode(&frame(LinkType::NULL, &null)).is_ok());
        let mut lo = 2u32.to_be_bytes().to_vec();
        lo.extend_from_slice(ip);
        assert!(decode(&frame(LinkType::LOOP, &lo)).is_ok());
        let mut bad = 99u32.to_be_bytes().to_vec();
        bad.extend_from_slice(ip);
        assert_eq!(decode(&frame(LinkType::LOOP, &bad)), Err(Skip::NotIp));
    }

    #[test]
    fn sll2_and_mpls() {
        let pkt = syn6(C6, 40000, S6, 443, 9, 64);
        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6];
        sll2.extend_from_slice(&MAC_C);
        sll2.extend_from_slice(&[0, 0]);
        sll2.extend_from_slice(&pkt[14..]);
        let o = decode(&frame(LinkType::LINUX_SLL2, &sll2)).unwrap();
        assert_eq!(o.src_mac, Some(MAC_C));
        assert!(matches!(o.l4, L4::Tcp(_)));

        let v4 = syn4(C4, 1, S4, 2, 3, 64);
        let mut mpls = v4[..12].to_vec();
        mpls.extend_from_slice(&[0x88, 0x47, 0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64]);
        mpls.extend_from_slice(&v4[14..]);
        assert!(matches!(
            decode(&frame(LinkType::ETHERNET, &mpls)).unwrap().l4,
            L4::Tcp(_)
        ));
    }

    #[test]
    fn unsupported_link_type_is_named() {
        assert_eq!(
            decode(&frame(LinkType(147), &[0; 40])),
            Err(Skip::UnsupportedLinkType(LinkType(147)))
        );
    }

    #[test]
    fn truncated_at_every_length_never_panics() {
        let syn = syn4(C4, 40000, S4, 80, 1000, 63);
        let icmp = icmp4_unreach(R4, C4, 3, &syn[14..], 62);
        let v6 = syn6(C6, 1, S6, 2, 3, 64);
        for pkt in [&syn, &icmp, &v6] {
            for len in 0..=pkt.len() {
                for link in [
                    LinkType::ETHERNET,
                    LinkType::RAW,
                    LinkType::LINUX_SLL,
                    LinkType::LINUX_SLL2,
                    LinkType::NULL,
                ] {
                    let f = Frame {
                        ts: Timestamp(0),
                        link,
                        data: &pkt[..len],
                        orig_len: pkt.len() as u32,
                        number: 1,
                    };
                    let _ = decode(&f);
                }
            }
        }
    }

    /// Every frame for which the fast path answers, and its mutants: the same observation as
    /// etherparse's slicing, and the same [`Syn4`] read straight or from the observation.
    fn check_fast_path(link: LinkType, data: &[u8], orig_len: u32) -> usize {
        let f = Frame {
            ts: Timestamp(7),
            link,
            data,
            orig_len,
            number: 3,
        };
        let sliced = decode_sliced(&f);
        let syn = sliced.as_ref().ok().and_then(Syn4::of);
        let mut out = Err(Skip::NotIp);
        assert_eq!(decode_into_or_syn4(&f, &mut out), syn, "{link:?} {data:02x?}");
        if syn.is_none() {
            assert_eq!(out, sliced, "{link:?} {data:02x?}");
        }
        match fast(&f) {
            Some(fast) => {
                assert_eq!(Ok(fast.observation(&f)), sliced, "{link:?} {data:02x?}");
                assert_eq!(fast.syn4(&f), syn, "{link:?} {data:02x?}");
                1
            }
            None => 0,
        }
    }

    #[test]
    fn fast_path_agrees_with_etherparse() {
        let mut frames: Vec<(LinkType, Vec<u8>, u32)> = Vec::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().contains(".pcap") {
                continue;
            }
            let source = crate::capture::Source::Path(path);
            crate::capture::read_capture(&source, |f| frames.push((f.link, f.data.to_vec(), f.orig_len))).unwrap();
        }
        let v6 = syn6(C6, 1, S6, 2, 3, 64);
        let v4 = syn4(C4, 40000, S4, 80, 1000, 63);
        frames.push((LinkType::ETHERNET, v4.clone(), v4.len() as u32));
        frames.push((LinkType::ETHERNET, v6.clone(), v6.len() as u32));
        frames.push((LinkType::RAW, v4[14..].to_vec(), v4.len() as u32 - 14));
        let mut tagged = v4[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0, 42]);
        tagged.extend_from_slice(&v4[12..]);
        frames.push((LinkType::ETHERNET, tagged.clone(), tagged.len() as u32));
        let mut sll = vec![0, 0, 0, 1, 0, 6];
        sll.extend_from_slice(&MAC_C);
        sll.extend_from_slice(&[0, 0, 0x08, 0x00]);
        sll.extend_from_slice(&v4[14..]);
        frames.push((LinkType::LINUX_SLL, sll.clone(), sll.len() as u32));
        let mut fast_hits = 0;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for (link, data, orig_len) in &frames {
            fast_hits += check_fast_path(*link, data, *orig_len);
            // Cut short, and longer on the wire (snap length).
            for len in (0..data.len()).step_by(7) {
                check_fast_path(*link, &data[..len], *orig_len);
            }
            check_fast_path(*link, data, orig_len + 10);
            // Header bytes changed: lengths, versions, flags, options, checksums.
            for i in 0..data.len().min(96) {
                for v in [0u8, 1, 4, 5, 6, 0x45, 0x46, 0x4f, 0x60, 0x80, 0xff] {
                    let mut m = data.clone();
                    m[i] = v;
                    check_fast_path(*link, &m, *orig_len);
                }
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mut m = data.clone();
                m[i] ^= (rng as u8) | 1;
                check_fast_path(*link, &m, *orig_len);
            }
            // Padding after the IP packet (Ethernet minimum frame).
            let mut padded = data.clone();
            padded.extend_from_slice(&[0xaa; 13]);
            check_fast_path(*link, &padded, *orig_len + 13);
        }
        assert!(fast_hits > 100, "the fast path took only {fast_hits} frames");
        // The straight way to a Syn4 was taken (with the sums checked, as in the observation).
        let frame = |data| Frame {
            ts: Timestamp(7),
            link: LinkType::ETHERNET,
            data,
            orig_len: 0,
            number: 3,
        };
        let mut out = Err(Skip::NotIp);
        let syn = fast(&frame(&v4)).and_then(|f| f.syn4(&frame(&v4))).unwrap();
        assert_eq!(
            (syn.src, syn.dst_port, syn.seq.0, syn.checksum),
            (Ipv4Addr::from(C4), 80, 1000, Checksum::Good)
        );
        assert_eq!(decode_into_or_syn4(&frame(&v4), &mut out), Some(syn));
        assert_eq!(out, Err(Skip::NotIp), "left as it was");
        assert_eq!(decode_into_or_syn4(&frame(&v6), &mut out), None);
        assert!(out.is_ok());
    }

    #[test]
    fn checksum_sum_matches_etherparse_for_every_length() {
        let mut seg: Vec<u8> = (0..1600u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        seg[12] = 0x50;
        for len in 20..seg.len() {
            for fill in [0u8, 0xff] {
                let mut s = seg[..len].to_vec();
                if fill == 0xff {
                    s.iter_mut().skip(20).for_each(|b| *b = 0xff);
                }
                let tcp = etherparse::TcpSlice::from_slice(&s).unwrap();
                let src = [198, 18, 0, 2];
                let dst = [198, 19, 0, 10];
                let want = tcp.calc_checksum_ipv4(src, dst).unwrap();
                let pseudo = u64::from(u32::from_ne_bytes(src))
                    + u64::from(u32::from_ne_bytes(dst))
                    + u64::from(u16::from_ne_bytes([0, 6]))
                    + u64::from(u16::from_ne_bytes((len as u16).to_be_bytes()));
                let got = (!fold16(pseudo + sum16(&s[..16]) + sum16(&s[18..]))).to_be();
                assert_eq!(got, want, "length {len}");
            }
        }
    }

    #[test]
    fn snaplen_cut_segment_is_kept_with_unknown_checksum() {
        let mut pkt = syn4(C4, 40000, S4, 80, 1000, 64);
        pkt.extend_from_slice(&[]);
        let f = Frame {
            ts: Timestamp(0),
            link: LinkType::ETHERNET,
            data: &pkt,
            orig_len: pkt.len() as u32 + 100,
            number: 1,
        };
        let o = decode(&f).unwrap();
        assert!(o.truncated);
        let L4::Tcp(t) = o.l4 else { panic!() };
        assert_eq!(t.checksum, Checksum::Unknown);
    }
}
