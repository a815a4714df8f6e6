//! Attempts in flight as the tracker keeps them: most of a SYN flood's in one cache line.
//!
//! An attempt that is still only the IPv4 SYN that opened it (every attempt of a SYN flood,
//! and every attempt until its answer arrives) is kept [`Lean`]: 64 bytes in place where an
//! [`Attempt`] is 192, so that the tracker's 200,000 attempts in flight take 13 MB instead of
//! 38 and stay in a CPU's last-level cache. It becomes a whole [`Attempt`] ([`Live::full`])
//! when anything more is to be recorded, and is written out as one when it closes.

use std::net::{IpAddr, Ipv4Addr};

use super::{Attempt, Key, Start, Tomb};
use crate::capture::Timestamp;
use crate::decode::Syn4;
use crate::flow::{Endpoint, SeqNumber};
use crate::sketch::Mark;

/// An attempt in flight.
#[derive(Debug)]
pub(super) enum Live {
    /// Still only its first SYN, over IPv4 without payload.
    Lean(Lean),
    /// Anything more.
    Full(Box<Attempt>),
}

/// An attempt that is still only the IPv4 SYN that opened it: the [`Attempt`] it stands for is
/// [`Lean::attempt`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Lean {
    id: u64,
    /// The SYN's frame.
    frame: u64,
    /// The SYN's time (the attempt's start).
    ts: Timestamp,
    deadline: Timestamp,
    client: Ipv4Addr,
    server: Ipv4Addr,
    client_port: u16,
    server_port: u16,
    isn: SeqNumber,
    hash: u32,
    client_mark: Mark,
}

impl Lean {
    /// The start of an attempt as a [`Lean`] one, when it can be one.
    #[inline]
    fn of(s: &Start) -> Option<Lean> {
        let (IpAddr::V4(client), IpAddr::V4(server)) = (s.key.0.ip, s.key.1.ip) else {
            return None;
        };
        let (ts, frame) = s.syn?;
        if ts != s.ts || s.syn_payload != 0 {
            return None;
        }
        Some(Lean {
            id: s.id,
            frame,
            ts,
            deadline: s.deadline,
            client,
            server,
            client_port: s.key.0.port,
            server_port: s.key.1.port,
            isn: s.isn,
            hash: s.hash,
            client_mark: s.client_mark,
        })
    }

    /// The lean attempt of the SYN `s`, captured at `ts`, of hash `hash`: what [`Lean::of`]
    /// makes of the start of its attempt.
    #[inline]
    pub(super) fn of_syn4(s: &Syn4, ts: Timestamp, id: u64, deadline: Timestamp, hash: u32, client_mark: Mark) -> Lean {
        Lean {
            id,
            frame: s.frame,
            ts,
            deadline,
            client: s.src,
            server: s.dst,
            client_port: s.src_port,
            server_port: s.dst_port,
            isn: s.seq,
            hash,
            client_mark,
        }
    }

    /// The (client, server) pair of the SYN `s`.
    #[inline]
    pub(super) fn key_of(s: &Syn4) -> Key {
        let end = |ip, port| Endpoint {
            ip: IpAddr::V4(ip),
            port,
        };
        (end(s.src, s.src_port), end(s.dst, s.dst_port))
    }

    /// The client's [`Mark`].
    #[inline]
    pub(super) fn client_mark(&self) -> Mark {
        self.client_mark
    }

    /// The (client, server) pair.
    #[inline]
    pub(super) fn key(&self) -> Key {
        (
            Endpoint {
                ip: IpAddr::V4(self.client),
                port: self.client_port,
            },
            Endpoint {
                ip: IpAddr::V4(self.server),
                port: self.server_port,
            },
        )
    }

    /// [`Tomb::of`] the attempt this stands for, without making the attempt: only its SYN, so
    /// no payload and not accepted.
    #[inline]
    pub(super) fn tomb(&self) -> Tomb {
        Tomb {
            key: self.key(),
            hash: self.hash,
            id: self.id,
            isn: self.isn,
            syn_payload: 0,
            accepted: false,
        }
    }

    /// The attempt this stands for.
    #[inline]
    pub(super) fn attempt(&self) -> Attempt {
        Attempt::new(Start {
            id: self.id,
            key: self.key(),
            isn: self.isn,
            syn_payload: 0,
            syn: Some((self.ts, self.frame)),
            ts: self.ts,
            deadline: self.deadline,
            hash: self.hash,
            client_mark: self.client_mark,
        })
    }
}

impl Live {
    /// A new attempt, lean if it can be.
    #[inline]
    pub(super) fn new(s: Start) -> Live {
        match Lean::of(&s) {
            Some(lean) => Live::Lean(lean),
            None => Live::Full(Box::new(Attempt::new(s))),
        }
    }

    /// [`Attempt::id`].
    #[inline]
    pub(super) fn id(&self) -> u64 {
        match self {
            Live::Lean(l) => l.id,
            Live::Full(a) => a.id,
        }
    }

    /// The attempt's start.
    #[inline]
    pub(super) fn start(&self) -> Timestamp {
        match self {
            Live::Lean(l) => l.ts,
            Live::Full(a) => a.start,
        }
    }

    /// When it times out.
    #[inline]
    pub(super) fn deadline(&self) -> Timestamp {
        match self {
            Live::Lean(l) => l.deadline,
            Live::Full(a) => a.deadline,
        }
    }

    /// The tracker's hash of its pair.
    #[inline]
    pub(super) fn hash(&self) -> u32 {
        match self {
            Live::Lean(l) => l.hash,
            Live::Full(a) => a.hash,
        }
    }

    /// Whether it is the attempt of `key` (client, server), compared in place.
    #[inline]
    pub(super) fn is_pair(&self, key: &Key) -> bool {
        match self {
            Live::Lean(l) => {
                let v4 = |e: &Endpoint, ip: Ipv4Addr, port: u16| e.ip == IpAddr::V4(ip) && e.port == port;
                v4(&key.0, l.client, l.client_port) && v4(&key.1, l.server, l.server_port)
            }
            Live::Full(a) => a.client == key.0 && a.server == key.1,
        }
    }

    /// The whole attempt, to record more in it (a lean one becomes whole first).
    #[inline(always)]
    pub(super) fn full(&mut self) -> &mut Attempt {
        match self {
            Live::Full(a) => a,
            Live::Lean(_) => self.made_full(),
        }
    }

    /// [`Live::full`] of a lean attempt (once per attempt at most: out of line).
    #[cold]
    #[inline(never)]
    fn made_full(&mut self) -> &mut Attempt {
        if let Live::Lean(l) = self {
            *self = Live::Full(Box::new(l.attempt()));
        }
        // Whole now: the first arm.
        self.full()
    }

    /// The attempt, out of the tracker.
    #[inline]
    pub(super) fn into_attempt(self) -> Attempt {
        match self {
            Live::Lean(l) => l.attempt(),
            Live::Full(a) => *a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{C4, C6, S4, S6};

    fn start(client: IpAddr, server: IpAddr) -> Start {
        Start {
            id: 7,
            key: (
                Endpoint {
                    ip: client,
                    port: 40_000,
                },
                Endpoint { ip: server, port: 443 },
            ),
            isn: SeqNumber(0xdead_beef),
            syn_payload: 0,
            syn: Some((Timestamp(1_000), 3)),
            ts: Timestamp(1_000),
            deadline: Timestamp(3_000_001_000),
            hash: 0x1234_5678,
            client_mark: crate::sketch::mark(client),
        }
    }

    fn v4() -> Start {
        start(IpAddr::from(C4), IpAddr::from(S4))
    }

    #[test]
    fn an_ipv4_syn_alone_is_kept_lean_and_stands_for_its_whole_attempt() {
        let s = v4();
        let live = Live::new(s);
        assert!(matches!(live, Live::Lean(_)));
        assert_eq!(std::mem::size_of::<Live>(), 64);
        assert_eq!(std::mem::size_of::<Option<Live>>(), 64, "one cache line in the slab");
        let whole = format!("{:?}", Attempt::new(s));
        assert_eq!(format!("{:?}", live.into_attempt()), whole);
        let live = Live::new(s);
        assert_eq!(
            (live.id(), live.start(), live.deadline(), live.hash()),
            (7, s.ts, s.deadline, s.hash)
        );
        let Live::Lean(lean) = &live else {
            unreachable!("lean above")
        };
        assert_eq!(lean.tomb(), Tomb::of(&Attempt::new(s)));
        assert!(live.is_pair(&s.key));
        assert!(!live.is_pair(&(s.key.1, s.key.0)));
        let other_port = (
            Endpoint {
                port: 40_001,
                ..s.key.0
            },
            s.key.1,
        );
        assert!(!live.is_pair(&other_port));
        let v6_twin = (
            Endpoint {
                ip: IpAddr::from(C6),
                port: 40_000,
            },
            s.key.1,
        );
        assert!(!live.is_pair(&v6_twin));
    }

    #[test]
    fn a_syn4_makes_the_lean_attempt_its_start_would() {
        let s = v4();
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (s.key.0.ip, s.key.1.ip) else {
            unreachable!("v4() is IPv4")
        };
        let syn = Syn4 {
            frame: 3,
            src,
            dst,
            src_port: s.key.0.port,
            dst_port: s.key.1.port,
            seq: s.isn,
            payload_len: 0,
            checksum: crate::decode::Checksum::Good,
        };
        assert_eq!(Lean::key_of(&syn), s.key);
        let straight = Lean::of_syn4(&syn, s.ts, s.id, s.deadline, s.hash, s.client_mark);
        assert_eq!(format!("{straight:?}"), format!("{:?}", Lean::of(&s).unwrap()));
    }

    #[test]
    fn anything_more_than_an_ipv4_syn_alone_is_kept_whole() {
        let v6 = start(IpAddr::from(C6), IpAddr::from(S6));
        let with_data = Start {
            syn_payload: 20,
            ..v4()
        };
        let from_a_quote = Start { syn: None, ..v4() };
        for s in [v6, with_data, from_a_quote] {
            let live = Live::new(s);
            assert!(matches!(live, Live::Full(_)), "{s:?}");
            assert!(live.is_pair(&s.key));
            assert_eq!(format!("{:?}", live.into_attempt()), format!("{:?}", Attempt::new(s)));
        }
    }

    #[test]
    fn a_lean_attempt_made_whole_keeps_what_it_was_and_takes_more() {
        let s = v4();
        let mut live = Live::new(s);
        live.full().syns += 1;
        assert!(matches!(live, Live::Full(_)));
        let a = live.full();
        assert_eq!((a.id, a.syns, a.syn_frame, a.start), (7, 2, Some(3), s.ts));
        assert!(live.is_pair(&s.key));
    }
}
