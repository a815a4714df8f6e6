//! Protocol arithmetic and identities shared by the tracker and attribution:
//! endpoints, TCP sequence numbers with wrapping comparison, TCP flags.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// An IP address and a TCP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Endpoint {
    /// The address.
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// A TCP sequence number. Comparison wraps modulo 2^32 (RFC 9293 §3.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// `self + n`, wrapping.
    pub fn plus(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// Signed distance from `other` to `self`.
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// RFC 9293 §3.10.7.3 (SYN-SENT): an ACK is acceptable when SND.UNA < SEG.ACK =< SND.NXT.
    /// After a SYN with initial sequence `isn` carrying `syn_payload` bytes, SND.UNA = ISN and
    /// SND.NXT = ISN + 1 + payload: so a plain SYN is acknowledged by ISN+1 exactly.
    pub fn acks_syn(self, isn: SeqNumber, syn_payload: u32) -> bool {
        let d = self.diff(isn);
        d >= 1 && (d as i64) <= 1 + i64::from(syn_payload)
    }
}

/// TCP control bits, including the reserved bits (and AE) of the 12-bit flags field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN
    pub const FIN: u16 = 0x001;
    /// SYN
    pub const SYN: u16 = 0x002;
    /// RST
    pub const RST: u16 = 0x004;
    /// PSH
    pub const PSH: u16 = 0x008;
    /// ACK
    pub const ACK: u16 = 0x010;
    /// URG
    pub const URG: u16 = 0x020;
    /// ECE
    pub const ECE: u16 = 0x040;
    /// CWR
    pub const CWR: u16 = 0x080;
    /// AE (was NS, RFC 3540; reassigned by AccECN) and the three reserved bits above it.
    pub const RESERVED: u16 = 0xF00;

    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }
    /// SYN set.
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// ACK set.
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// RST set.
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    /// FIN set.
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// SYN without ACK or RST: a segment that opens a connection (an attempt).
    pub fn opens(self) -> bool {
        self.syn() && !self.ack() && !self.rst()
    }
    /// Reserved/AE bits set.
    pub fn reserved(self) -> u16 {
        (self.0 & Self::RESERVED) >> 8
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump's letters: `S`, `S.`, `R.`, `F.`, `P.` …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        for (bit, c) in [
            (Self::FIN, 'F'),
            (Self::SYN, 'S'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
        ] {
            if self.has(bit) {
                s.push(c);
            }
        }
        if self.ack() {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_wraps() {
        let isn = SeqNumber(u32::MAX);
        assert_eq!(isn.plus(1), SeqNumber(0));
        assert!(SeqNumber(0).acks_syn(isn, 0));
        assert!(!SeqNumber(u32::MAX).acks_syn(isn, 0));
        assert!(!SeqNumber(1).acks_syn(isn, 0));
    }

    #[test]
    fn syn_with_payload_accepts_up_to_snd_nxt() {
        let isn = SeqNumber(1000);
        assert!(SeqNumber(1001).acks_syn(isn, 100));
        assert!(SeqNumber(1101).acks_syn(isn, 100));
        assert!(!SeqNumber(1102).acks_syn(isn, 100));
        assert!(!SeqNumber(1000).acks_syn(isn, 100));
    }

    #[test]
    fn flags_display_like_tcpdump() {
        assert_eq!(TcpFlags(TcpFlags::SYN).to_string(), "S");
        assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).to_string(), "S.");
        assert_eq!(TcpFlags(TcpFlags::RST | TcpFlags::ACK).to_string(), "R.");
        assert_eq!(TcpFlags(0x100 | TcpFlags::RST).reserved(), 1);
    }
}
