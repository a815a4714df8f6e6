//! Track stage: pairs every SYN with what answered it.
//!
//! An *attempt* is (client, server, client ISN). SYN retransmissions (same ISN) join their
//! attempt; a SYN with a new ISN on the same 4-tuple is a new attempt (port reuse). Everything
//! that answers — SYN-ACK, RST, ICMP/ICMPv6 errors quoting the SYN — is kept in arrival order
//! with a flag saying whether the client's stack would act on it ([`Event::acceptable`]); the
//! outcome is computed from that list by a pure function at report time ([`outcome`]).
//!
//! Direction comes from flags, never from address order: the sender of a SYN without ACK is
//! the client. A capture that starts mid-connection makes no attempt. An ICMP error quoting a
//! SYN that is not in the capture creates the attempt from the quote.
//!
//! Memory is bounded: an attempt leaves the tracker `timeout` after its last SYN or answer
//! (handed to a [`Sink`]); at most `max_in_flight` attempts are held, the oldest evicted and
//! counted. A closed attempt leaves a small tombstone for `linger` so that a SYN retransmitted
//! or an answer arriving after the timeout still joins it ([`Sink::late`]).

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};

use smallvec::SmallVec;

use serde::Serialize;

use crate::anomaly::{Anomaly, AnomalyCounts, AnomalySet};
use crate::capture::Timestamp;
use crate::decode::{self, Checksum, IcmpKind, Observation, TcpInfo, L4};
use crate::flow::{Endpoint, SeqNumber};
use crate::sketch::{self, Mark};

mod index;
mod live;
use index::Index;
use live::Live;

/// Tracker settings.
#[derive(Clone, Copy, Debug)]
pub struct TrackConfig {
    /// How long to wait for an answer after the last SYN (nanoseconds).
    pub timeout_ns: i64,
    /// How long a closed attempt still absorbs late retransmissions and answers (nanoseconds).
    pub linger_ns: i64,
    /// Most attempts held at once; beyond it the oldest is closed early.
    pub max_in_flight: usize,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            timeout_ns: 3_000_000_000,
            // Linux gives up on connect() after 127 s (tcp_syn_retries = 6).
            linger_ns: 130_000_000_000,
            max_in_flight: 200_000,
        }
    }
}

/// The role of a packet in an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// SYN-ACK from the server side.
    SynAck,
    /// RST (with or without ACK) from the server side.
    Rst,
    /// Any other segment from the server side (bare ACK, data, FIN).
    ServerOther,
    /// ICMP/ICMPv6 destination unreachable quoting the SYN.
    IcmpUnreachable,
    /// ICMP/ICMPv6 time exceeded quoting the SYN.
    IcmpTimeExceeded,
    /// The client's ACK completing the handshake (or any later client segment without SYN/RST).
    ClientAck,
    /// A RST from the client.
    ClientRst,
    /// A RST from the server side after the handshake completed (the connection was reset,
    /// not refused).
    ResetAfterHandshake,
}

impl Role {
    /// Whether the packet travelled towards the client (an answer).
    pub fn is_answer(self) -> bool {
        matches!(
            self,
            Role::SynAck | Role::Rst | Role::ServerOther | Role::IcmpUnreachable | Role::IcmpTimeExceeded
        )
    }
}

/// One packet of an attempt other than its SYNs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// What it is.
    pub role: Role,
    /// Whether the client's stack would act on it (RFC 9293 §3.10.7.3 for segments;
    /// Linux `tcp_v4_err`/`tcp_v6_err` for ICMP: the quoted sequence must be the ISN).
    pub acceptable: bool,
    /// Arrived after the attempt had been closed by the timeout.
    pub late: bool,
    /// The packet.
    pub obs: Observation,
}

/// Why an attempt left the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseReason {
    /// `timeout` passed after its last SYN or answer.
    Timeout,
    /// The capture ended.
    CaptureEnd,
    /// Too many attempts in flight.
    Evicted,
    /// A SYN with a new ISN on the same 4-tuple.
    PortReuse,
}

/// A connection attempt and everything seen of it.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Order of creation, from 0.
    pub id: u64,
    /// The SYN's sender.
    pub client: Endpoint,
    /// The SYN's destination.
    pub server: Endpoint,
    /// The client's initial sequence number.
    pub isn: SeqNumber,
    /// Payload bytes carried by the SYN.
    pub syn_payload: u32,
    /// The frame of the first SYN, when the capture holds it (None: learned from an ICMP quote).
    pub syn_frame: Option<u64>,
    /// SYNs seen (duplicates of one frame count once).
    pub syns: u32,
    /// Times of the SYNs (the first 16; the first few without a heap allocation).
    pub syn_times: SynTimes,
    /// Everything else, in arrival order (the first 32).
    pub events: Vec<Event>,
    /// When it starts: the first SYN, or the first event when no SYN was seen.
    pub start: Timestamp,
    /// The last SYN.
    pub last_syn: Timestamp,
    /// When it was closed and why.
    pub closed: (Timestamp, CloseReason),
    /// Anomalies seen in it.
    pub anomalies: AnomalySet,
    deadline: Timestamp,
    /// The tracker's hash of (client, server).
    hash: u32,
    /// Bit 0: a client ACK, bit 1: a server segment, is already among the events of this
    /// answered attempt, so later ones are not its business (a cache of what
    /// [`Tracker::on_event`] would find by looking through the events; once true, always).
    settled: u8,
    /// The client's address as the source sketch counts it, when worked out while decoding.
    client_mark: Mark,
}

/// The SYN times of an attempt: a vector that holds the first four in place.
pub type SynTimes = SmallVec<[Timestamp; 4]>;

/// Most SYN times kept per attempt.
pub const MAX_SYN_TIMES: usize = 16;
/// Most events kept per attempt.
pub const MAX_EVENTS: usize = 32;
/// Two copies of the same packet closer than this are one frame captured twice.
const DUPLICATE_NS: i64 = 1_000_000;

/// What answered the SYN, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// An acceptable SYN-ACK came first.
    Accepted,
    /// An acceptable RST came first.
    Refused,
    /// An ICMP error the client acts on came first.
    Unreachable,
    /// Nothing the client would act on.
    NoAnswer,
}

impl Outcome {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Refused => "refused",
            Outcome::Unreachable => "unreachable",
            Outcome::NoAnswer => "no-answer",
        }
    }
}

impl Attempt {
    /// The client's address as a source sketch counts it ([`sketch::mark`]), if it was worked
    /// out ahead (else the default mark).
    pub fn client_mark(&self) -> Mark {
        self.client_mark
    }

    /// The first event the client acted on, which decides the outcome.
    pub fn answer(&self) -> Option<&Event> {
        self.events.iter().find(|e| e.acceptable && e.role.is_answer())
    }

    /// The client went on with the connection (an ACK or data without SYN/RST) although no
    /// SYN-ACK is in the capture: it must have received one (a one-sided capture).
    pub fn client_continued(&self) -> Option<&Event> {
        self.events
            .iter()
            .find(|e| e.role == Role::ClientAck && matches!(e.obs.l4, L4::Tcp(t) if t.flags.ack()))
    }
}

/// The outcome: the first acceptable answer decides (the client's stack acts on the first).
/// With no answer in the capture, a client that went on with the connection was accepted.
pub fn outcome(a: &Attempt) -> Outcome {
    match a.answer().map(|e| e.role) {
        Some(Role::SynAck) => Outcome::Accepted,
        Some(Role::Rst) => Outcome::Refused,
        Some(Role::IcmpUnreachable | Role::IcmpTimeExceeded) => Outcome::Unreachable,
        _ if a.client_continued().is_some() => Outcome::Accepted,
        _ => Outcome::NoAnswer,
    }
}

/// Receives attempts as they leave the tracker.
pub trait Sink {
    /// An attempt is complete (for now: late events may still follow).
    fn closed(&mut self, attempt: Attempt);
    /// A SYN retransmission (`event` None) or a packet for attempt `id`, after it closed.
    fn late(&mut self, id: u64, ts: Timestamp, event: Option<Event>);
    /// Offered every complete attempt before [`Sink::closed`]: a sink that only needs to look
    /// at it (to count it) does so and returns `true`, and the attempt is then dropped where it
    /// lies instead of being moved out to [`Sink::closed`]. By default, every attempt is
    /// handed over.
    fn closed_ref(&mut self, attempt: &Attempt) -> bool {
        let _ = attempt;
        false
    }
    /// Offered before [`Sink::closed_ref`] an attempt that is nothing but the SYN that opened
    /// it from `client` (with its [`Attempt::client_mark`]) to `server`: nothing answered it,
    /// the client sent nothing more, no anomaly but [`Anomaly::Evicted`] was seen. A sink that
    /// can count it from these alone does so and returns `true`; by default (`false`) the
    /// attempt is written out and offered to [`Sink::closed_ref`], then [`Sink::closed`].
    fn closed_unanswered(&mut self, client: Endpoint, mark: Mark, server: Endpoint) -> bool {
        let _ = (client, mark, server);
        false
    }
}

/// Tracker counters for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrackStats {
    /// Attempts created.
    pub attempts: u64,
    /// Attempts closed early because of the in-flight cap.
    pub evicted: u64,
    /// Most attempts in flight at once.
    pub peak_in_flight: u64,
    /// RSTs that matched no attempt (mid-connection, or a SYN outside the capture).
    pub unmatched_rst: u64,
    /// ICMP errors quoting TCP that matched no attempt and were not about a SYN.
    pub unmatched_icmp: u64,
    /// Anomalies over the whole capture.
    pub anomalies: AnomalyCounts,
}

type Key = (Endpoint, Endpoint);

/// Where the tracker keeps what it knows about a (client, server) pair: an attempt in flight
/// (`live[index]`) or the tombstone of a closed one (`tombs[index]`). A pair never has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Live(u32),
    Tomb(u32),
}

/// Marks a tombstone's index in the index table.
const TOMB: u32 = 1 << 31;

impl Slot {
    fn code(self) -> u32 {
        match self {
            Slot::Live(i) => i,
            Slot::Tomb(i) => i | TOMB,
        }
    }
    fn of(code: u32) -> Slot {
        if code & TOMB != 0 {
            Slot::Tomb(code & !TOMB)
        } else {
            Slot::Live(code)
        }
    }
}

/// A closed attempt that still absorbs late retransmissions and answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tomb {
    key: Key,
    hash: u32,
    id: u64,
    isn: SeqNumber,
    syn_payload: u32,
    /// It was accepted: later packets belong to the connection, not to the attempt.
    accepted: bool,
}

impl Tomb {
    /// The tombstone of `a`.
    fn of(a: &Attempt) -> Tomb {
        Tomb {
            key: (a.client, a.server),
            hash: a.hash,
            id: a.id,
            isn: a.isn,
            syn_payload: a.syn_payload,
            accepted: outcome(a) == Outcome::Accepted,
        }
    }
}

/// Places that are either used or free, reused last-freed first.
#[derive(Debug)]
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
    used: usize,
}

impl<T> Slab<T> {
    fn new() -> Slab<T> {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
            used: 0,
        }
    }
    fn insert(&mut self, item: T) -> u32 {
        self.used += 1;
        match self.free.pop() {
            Some(i) => {
                // A freed place is empty: nothing to drop there.
                let _ = self.items[i as usize].insert(item);
                i
            }
            None => {
                self.items.push(Some(item));
                (self.items.len() - 1) as u32
            }
        }
    }
    fn take(&mut self, i: u32) -> Option<T> {
        let item = self.items.get_mut(i as usize)?.take()?;
        self.free.push(i);
        self.used -= 1;
        Some(item)
    }
    /// Drops the item at `i` where it lies.
    fn remove(&mut self, i: u32) {
        if let Some(slot) = self.items.get_mut(i as usize) {
            if slot.is_some() {
                *slot = None;
                self.free.push(i);
                self.used -= 1;
            }
        }
    }
    fn get(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize)?.as_ref()
    }
    /// Starts loading place `i`.
    #[inline]
    fn touch(&self, i: u32)
    where
        T: Copy,
    {
        if let Some(item) = self.items.get(i as usize) {
            crate::hint::prefetch(item);
        }
    }
    fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize)?.as_mut()
    }
}

/// The tracker's hash of keys, which places them in its index: a small value, so that the
/// thread that decodes packets can hash them too ([`Keyer::first_hash`]) and hand the hash
/// on with the observation ([`Tracker::observe_hashed`]).
///
/// Keyed per process: the keys come from the wire, so an unkeyed hash would let a sender force
/// collisions.
#[derive(Clone, Debug)]
pub struct Keyer(foldhash::fast::RandomState);

impl Keyer {
    /// The hash of a pair, the same in either order: a segment's attempt is found from either
    /// side under one hash (lookups compare whole keys, in order; the hash only places them).
    #[inline]
    fn hash(&self, key: &Key) -> u32 {
        if let (IpAddr::V4(c), IpAddr::V4(s)) = (key.0.ip, key.1.ip) {
            return self.hash_v4(c, key.0.port, s, key.1.port);
        }
        fn bits(e: Endpoint) -> (u128, bool, u16) {
            match e.ip {
                IpAddr::V4(a) => (u128::from(a.to_bits()), false, e.port),
                IpAddr::V6(a) => (a.to_bits(), true, e.port),
            }
        }
        let (a, b) = (bits(key.0), bits(key.1));
        (self.0.hash_one((a.min(b), a.max(b))) >> 32) as u32
    }

    /// [`Keyer::hash`] of an IPv4 pair (the common case): an endpoint in one word.
    #[inline]
    fn hash_v4(&self, c: Ipv4Addr, c_port: u16, s: Ipv4Addr, s_port: u16) -> u32 {
        let a = (u64::from(c.to_bits()) << 16) | u64::from(c_port);
        let b = (u64::from(s.to_bits()) << 16) | u64::from(s_port);
        (self.0.hash_one((a.min(b), a.max(b))) >> 32) as u32
    }

    /// [`Keyer::first_hash`] of the observation of `s`.
    #[inline]
    pub fn syn4_hash(&self, s: &decode::Syn4) -> u32 {
        self.hash_v4(s.src, s.src_port, s.dst, s.dst_port)
    }

    /// The [`sketch::mark`] of the client when `o` is a SYN that opens an attempt (else the
    /// default mark), for [`Tracker::observe_hashed`].
    #[inline]
    pub fn client_mark(&self, o: &Observation) -> Mark {
        match &o.l4 {
            L4::Tcp(t) if opens(t) => sketch::mark(o.ip.src),
            _ => Mark::default(),
        }
    }

    /// The hash of the pair observing `o` looks up: the segment's two ends (in either order:
    /// the same hash), or the quoted pair of an ICMP error.
    #[inline]
    pub fn first_hash(&self, o: &Observation) -> u32 {
        let key = match o.l4 {
            L4::Tcp(t) => endpoints(o, &t),
            L4::IcmpError(e) => (e.quote.src, e.quote.dst),
        };
        self.hash(&key)
    }
}

/// Attempts in flight and tombstones, found by (client, server) through an [`Index`] of small
/// entries (32 bits of the key's hash and a [`Slot`] code): the keys themselves stay in the
/// attempts and tombstones, so the table stays small under floods.
#[derive(Debug)]
struct Store {
    keyer: Keyer,
    index: Index,
    live: Slab<Live>,
    tombs: Slab<Tomb>,
}

impl Store {
    fn new() -> Store {
        Store {
            keyer: Keyer(foldhash::fast::RandomState::default()),
            index: Index::new(),
            live: Slab::new(),
            tombs: Slab::new(),
        }
    }

    /// Whether the key stored at `slot` is `key` (compared where it lies).
    #[inline]
    fn holds(live: &Slab<Live>, tombs: &Slab<Tomb>, slot: Slot, key: &Key) -> bool {
        match slot {
            Slot::Live(i) => live.get(i).is_some_and(|a| a.is_pair(key)),
            Slot::Tomb(i) => tombs.get(i).is_some_and(|t| t.key == *key),
        }
    }

    #[inline]
    fn find(&self, key: &Key, h: u32) -> Option<Slot> {
        let (live, tombs) = (&self.live, &self.tombs);
        self.index
            .find(h, |code| Store::holds(live, tombs, Slot::of(code), key))
            .map(Slot::of)
    }

    /// Where the pair of a segment from `src` to `dst` (hash `h`) is kept: as (`dst`, `src`),
    /// the segment coming from the server's side (`true`), else as (`src`, `dst`). One probe
    /// for both: the hash does not depend on the order.
    #[inline]
    fn find_either(&self, src: Endpoint, dst: Endpoint, h: u32) -> Option<(Slot, bool)> {
        let (live, tombs) = (&self.live, &self.tombs);
        // Some(true): kept the server's way round, Some(false): the client's, None: another pair.
        let side = |code: u32| {
            let slot = Slot::of(code);
            if Store::holds(live, tombs, slot, &(dst, src)) {
                Some(true)
            } else if Store::holds(live, tombs, slot, &(src, dst)) {
                Some(false)
            } else {
                None
            }
        };
        let mut found = None;
        self.index.find(h, |code| match side(code) {
            Some(true) => {
                found = Some((Slot::of(code), true));
                true
            }
            Some(false) => {
                // Kept looking: the server's side, if it is also there, comes first.
                found = found.or(Some((Slot::of(code), false)));
                false
            }
            None => false,
        });
        found
    }

    /// Points the key of hash `h`, known to be absent, at `slot`.
    #[inline(always)]
    fn insert(&mut self, h: u32, slot: Slot) {
        self.index.insert(h, slot.code());
    }

    /// Points the key of hash `h`, now at `old`, at `new` instead.
    #[inline(always)]
    fn replace(&mut self, h: u32, old: Slot, new: Slot) {
        self.index.replace(h, old.code(), new.code());
    }

    /// Forgets the key of hash `h`, which points at `slot`.
    #[inline(always)]
    fn remove(&mut self, h: u32, slot: Slot) {
        self.index.remove(h, slot.code());
    }
}

/// What [`Tracker::evict_oldest`] did.
enum Evicted {
    /// Nothing was in flight.
    None,
    /// The oldest attempt went to [`Sink::closed`]: its place is free.
    MovedOut,
    /// The oldest attempt at this place was counted by [`Sink::closed_ref`] and is done with:
    /// the place is still taken, for the caller to refill.
    Counted(u32),
}

/// What a new attempt starts with.
#[derive(Clone, Copy, Debug)]
struct Start {
    id: u64,
    key: Key,
    isn: SeqNumber,
    syn_payload: u32,
    /// The SYN's time and frame (None: learned from an ICMP quote).
    syn: Option<(Timestamp, u64)>,
    ts: Timestamp,
    deadline: Timestamp,
    hash: u32,
    client_mark: Mark,
}

impl Attempt {
    fn new(s: Start) -> Attempt {
        let mut syn_times = SynTimes::new();
        if let Some((ts, _)) = s.syn {
            syn_times.push(ts);
        }
        Attempt {
            id: s.id,
            client: s.key.0,
            server: s.key.1,
            isn: s.isn,
            syn_payload: s.syn_payload,
            syns: u32::from(s.syn.is_some()),
            syn_times,
            syn_frame: s.syn.map(|(_, frame)| frame),
            events: Vec::new(),
            start: s.ts,
            last_syn: s.ts,
            closed: (s.ts, CloseReason::Timeout),
            anomalies: AnomalySet::default(),
            deadline: s.deadline,
            hash: s.hash,
            settled: 0,
            client_mark: s.client_mark,
        }
    }
}

/// A deadline set for an attempt: when, where it lies, its key's hash, its id. An entry whose
/// attempt has gone or moved its deadline is skipped.
#[derive(Clone, Copy, Debug)]
struct Due {
    at: Timestamp,
    index: u32,
    hash: u32,
    id: u64,
}

impl Due {
    fn of(a: &Attempt, index: u32) -> Due {
        Due {
            at: a.deadline,
            index,
            hash: a.hash,
            id: a.id,
        }
    }
}

/// A SYN that opens an attempt (SYN without ACK or RST): what the tracker needs of it, which is
/// far less than its [`Observation`] (on SYN floods, every packet is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syn {
    /// Capture time.
    pub ts: Timestamp,
    /// Frame number in its file.
    pub frame: u64,
    /// Its sender.
    pub client: Endpoint,
    /// Its destination.
    pub server: Endpoint,
    /// Its sequence number (the client's ISN).
    pub seq: SeqNumber,
    /// Payload bytes it carries.
    pub payload_len: u32,
    /// Its TCP checksum.
    pub checksum: Checksum,
}

impl Syn {
    /// The SYN of `o`, if `o` is a segment that opens an attempt.
    #[inline]
    pub fn of(o: &Observation) -> Option<Syn> {
        let L4::Tcp(t) = &o.l4 else { return None };
        if !opens(t) {
            return None;
        }
        let (client, server) = endpoints(o, t);
        Some(Syn {
            ts: o.ts,
            frame: o.frame,
            client,
            server,
            seq: t.seq,
            payload_len: t.payload_len,
            checksum: t.checksum,
        })
    }

    /// The SYN of `s`, captured at `ts`.
    #[inline]
    pub fn of_v4(s: &decode::Syn4, ts: Timestamp) -> Syn {
        let (client, server) = live::Lean::key_of(s);
        Syn {
            ts,
            frame: s.frame,
            client,
            server,
            seq: s.seq,
            payload_len: u32::from(s.payload_len),
            checksum: s.checksum,
        }
    }
}

/// How many places ahead in the queues [`Tracker::expire`] prefetches what it will close.
const EXPIRING: usize = 16;

/// The attempt tracker.
#[derive(Debug)]
pub struct Tracker {
    cfg: TrackConfig,
    store: Store,
    /// Deadlines in the order they were set.
    queue: VecDeque<Due>,
    /// Tombstones in the order they were made: (until, index of the tombstone, attempt id).
    tomb_queue: VecDeque<(Timestamp, u32, u64)>,
    now: Timestamp,
    /// No deadline in `queue` or `tomb_queue` falls before this: [`Tracker::expire`] has nothing
    /// to do until then (a lower bound; exact after each expiry).
    next_due: Timestamp,
    next_id: u64,
    stats: TrackStats,
    /// Capture-wide anomaly counts (turned into `stats.anomalies` at the end).
    counts: [u64; Anomaly::ALL.len()],
}

impl Tracker {
    /// A tracker with these settings.
    pub fn new(cfg: TrackConfig) -> Tracker {
        Tracker {
            cfg,
            store: Store::new(),
            queue: VecDeque::new(),
            tomb_queue: VecDeque::new(),
            now: Timestamp(i64::MIN),
            next_due: Timestamp(i64::MAX),
            next_id: 0,
            stats: TrackStats::default(),
            counts: [0; Anomaly::ALL.len()],
        }
    }

    /// Attempts currently in flight.
    pub fn in_flight(&self) -> usize {
        self.store.live.used
    }

    #[inline]
    fn bump(&mut self, a: Anomaly) {
        self.counts[a as usize] += 1;
    }

    /// Feeds one observation.
    pub fn observe(&mut self, o: &Observation, sink: &mut impl Sink) {
        let h = self.store.keyer.first_hash(o);
        self.observe_hashed(o, h, Mark::default(), sink);
    }

    /// [`Tracker::observe`] with `h` = [`Keyer::first_hash`]`(o)` and `mark` =
    /// [`Keyer::client_mark`]`(o)` (or the default mark) computed before.
    pub(crate) fn observe_hashed(&mut self, o: &Observation, h: u32, mark: Mark, sink: &mut impl Sink) {
        if let Some(syn) = Syn::of(o) {
            self.syn_hashed(&syn, h, mark, sink);
            return;
        }
        self.move_to(o.ts, sink);
        match o.l4 {
            L4::Tcp(t) => {
                let (src, dst) = endpoints(o, &t);
                if t.checksum == Checksum::Bad {
                    self.bump(Anomaly::BadChecksum);
                }
                if let Some((slot, from_server)) = self.store.find_either(src, dst, h) {
                    let role = match (from_server, t.flags.rst(), t.flags.syn()) {
                        (true, true, _) => Role::Rst,
                        (true, false, true) => Role::SynAck,
                        (true, false, false) => Role::ServerOther,
                        (false, true, _) => Role::ClientRst,
                        (false, false, _) => Role::ClientAck,
                    };
                    self.on_event(slot, role, o, sink);
                } else if t.flags.rst() {
                    self.stats.unmatched_rst += 1;
                }
            }
            L4::IcmpError(e) => {
                let key = (e.quote.src, e.quote.dst);
                let role = match e.kind {
                    IcmpKind::Unreachable => Role::IcmpUnreachable,
                    IcmpKind::TimeExceeded => Role::IcmpTimeExceeded,
                };
                if let Some(slot) = self.store.find(&key, h) {
                    self.on_event(slot, role, o, sink);
                } else if e.quote.flags.is_none_or(|f| f.syn() && !f.ack()) && e.quote.seq.is_some() {
                    // The SYN is not in the capture, but the quote names it (RFC 792 quotes at
                    // least the ports and the sequence number).
                    let isn = e.quote.seq.unwrap_or_default();
                    let index = self.create(key, h, true, isn, 0, None, Mark::default(), o.ts, sink);
                    self.on_event(Slot::Live(index), role, o, sink);
                } else {
                    self.stats.unmatched_icmp += 1;
                }
            }
        }
    }

    /// [`Tracker::observe_hashed`] of a SYN that opens an attempt, given as a [`Syn`] (its hash
    /// and mark as there).
    #[inline]
    pub(crate) fn syn_hashed(&mut self, syn: &Syn, h: u32, mark: Mark, sink: &mut impl Sink) {
        self.move_to(syn.ts, sink);
        if syn.checksum == Checksum::Bad {
            self.bump(Anomaly::BadChecksum);
        }
        self.on_syn(syn, h, mark, sink);
    }

    /// [`Tracker::syn_hashed`] of the SYN of `s`, captured at `ts`. A plain SYN (no payload,
    /// a checksum that is not bad) of a pair the tracker knows nothing of, as every SYN of a
    /// flood, starts its lean attempt straight from `s`; any other goes the general way.
    #[inline]
    pub(crate) fn syn4_hashed(&mut self, s: &decode::Syn4, ts: Timestamp, h: u32, mark: Mark, sink: &mut impl Sink) {
        if s.payload_len == 0 && s.checksum != Checksum::Bad {
            self.move_to(ts, sink);
            let key = live::Lean::key_of(s);
            if self.store.find(&key, h).is_none() {
                let lean = |id, deadline| Live::Lean(live::Lean::of_syn4(s, ts, id, deadline, h, mark));
                self.create_live(h, None, ts, lean, sink);
                return;
            }
        }
        self.syn_hashed(&Syn::of_v4(s, ts), h, mark, sink);
    }

    /// Moves capture time to `ts` if later, closing what expired.
    #[inline]
    fn move_to(&mut self, ts: Timestamp, sink: &mut impl Sink) {
        // Capture time only moves forward, so out-of-order timestamps cannot reopen the past.
        if ts > self.now {
            self.now = ts;
            if self.now >= self.next_due {
                self.expire(sink);
            }
        }
    }

    /// The hash that [`Tracker::observe_hashed`] takes, computable on another thread.
    pub fn keyer(&self) -> Keyer {
        self.store.keyer.clone()
    }

    /// Starts loading the index entry of hash `h` ([`Keyer::first_hash`]), which observing its
    /// packet will look up first (see [`Index::touch`]).
    #[inline]
    pub fn prefetch(&self, h: u32) {
        self.store.index.touch(h);
    }

    /// When the tracker is full, starts loading the index entry of the attempt that the
    /// `k`th new one from now would evict (from 0).
    #[inline]
    pub fn prefetch_victim(&self, k: usize) {
        if self.store.live.used >= self.cfg.max_in_flight {
            if let Some(due) = self.queue.get(k) {
                self.store.index.touch(due.hash);
            }
        }
    }

    /// Moves capture time to `now` without a packet (live capture), closing what expired.
    pub fn advance(&mut self, now: Timestamp, sink: &mut impl Sink) {
        if now > self.now {
            self.now = now;
            self.expire(sink);
        }
    }

    /// Closes every attempt (the capture ended) and returns the counters.
    pub fn finish(self, sink: &mut impl Sink) -> TrackStats {
        let Tracker {
            store,
            now,
            mut stats,
            counts,
            ..
        } = self;
        let mut live = store.live.items;
        // Free the index first: the attempts are handed on one by one, and their reports grow.
        drop(store.index);
        drop(store.tombs);
        for i in by_id(&live) {
            let Some(a) = live[i as usize].take() else {
                continue;
            };
            let mut a = a.into_attempt();
            a.closed = (now.max(a.start), CloseReason::CaptureEnd);
            if !sink.closed_ref(&a) {
                sink.closed(a);
            }
        }
        drop(live);
        for (a, n) in Anomaly::ALL.iter().zip(counts) {
            if n > 0 {
                stats.anomalies.0.insert(a.name(), n);
            }
        }
        stats
    }

    fn on_syn(&mut self, syn: &Syn, h: u32, mark: Mark, sink: &mut impl Sink) {
        let key = (syn.client, syn.server);
        let found = self.store.find(&key, h);
        // Nothing known of the pair: nothing closed below can change that.
        let absent = found.is_none();
        match found {
            Some(Slot::Live(index)) => {
                let timeout = self.cfg.timeout_ns;
                let now = self.now;
                let Some(a) = self.store.live.get_mut(index).map(Live::full) else {
                    return;
                };
                if a.isn == syn.seq {
                    if a.syn_frame.is_none() {
                        // Learned from an ICMP quote first; now the SYN itself.
                        a.syn_frame = Some(syn.frame);
                        a.syn_payload = syn.payload_len;
                    }
                    if a.syn_times
                        .last()
                        .is_some_and(|last| syn.ts.0.abs_diff(last.0) < DUPLICATE_NS.unsigned_abs())
                    {
                        a.anomalies.insert(Anomaly::DuplicateFrame);
                        self.bump(Anomaly::DuplicateFrame);
                        return;
                    }
                    a.syns += 1;
                    if a.syn_times.len() < MAX_SYN_TIMES {
                        a.syn_times.push(syn.ts);
                    }
                    a.last_syn = a.last_syn.max(syn.ts);
                    let deadline = now.plus_nanos(timeout);
                    if deadline > a.deadline {
                        a.deadline = deadline;
                        let due = Due::of(a, index);
                        self.next_due = self.next_due.min(due.at);
                        self.queue.push_back(due);
                    }
                    return;
                }
                // Port reuse: a new ISN on the same 4-tuple closes the old attempt.
                a.anomalies.insert(Anomaly::PortReuse);
                self.bump(Anomaly::PortReuse);
                self.close(index, (syn.ts, CloseReason::PortReuse), sink);
            }
            Some(Slot::Tomb(i)) => {
                if let Some(tomb) = self.store.tombs.get(i).filter(|tomb| tomb.isn == syn.seq) {
                    let id = tomb.id;
                    self.bump(Anomaly::SynAfterTimeout);
                    sink.late(id, syn.ts, None);
                    return;
                }
            }
            None => {}
        }
        if syn.payload_len > 0 {
            self.bump(Anomaly::SynWithData);
        }
        let index = self.create(
            key,
            h,
            absent,
            syn.seq,
            syn.payload_len,
            Some((syn.ts, syn.frame)),
            mark,
            syn.ts,
            sink,
        );
        if syn.payload_len > 0 || syn.checksum == Checksum::Bad {
            if let Some(a) = self.store.live.get_mut(index).map(Live::full) {
                if syn.payload_len > 0 {
                    a.anomalies.insert(Anomaly::SynWithData);
                }
                if syn.checksum == Checksum::Bad {
                    a.anomalies.insert(Anomaly::BadChecksum);
                }
            }
        }
    }

    /// Starts an attempt; returns its index.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn create(
        &mut self,
        key: Key,
        h: u32,
        absent: bool,
        isn: SeqNumber,
        syn_payload: u32,
        syn: Option<(Timestamp, u64)>,
        client_mark: Mark,
        ts: Timestamp,
        sink: &mut impl Sink,
    ) -> u32 {
        let start = |id, deadline| {
            Live::new(Start {
                id,
                key,
                isn,
                syn_payload,
                syn,
                ts,
                deadline,
                hash: h,
                client_mark,
            })
        };
        self.create_live(h, (!absent).then_some(&key), ts, start, sink)
    }

    /// Starts the attempt `new(id, deadline)` of hash `h`, at `ts`; returns its index. `tomb_of`:
    /// the pair, when a tombstone of it may be there (it gives way to the new attempt); None
    /// when nothing is known of it.
    #[inline(always)]
    fn create_live(
        &mut self,
        h: u32,
        tomb_of: Option<&Key>,
        ts: Timestamp,
        new: impl FnOnce(u64, Timestamp) -> Live,
        sink: &mut impl Sink,
    ) -> u32 {
        // The place of an attempt evicted and counted where it lay is refilled (on floods,
        // every new attempt evicts one: no drop, no move).
        let mut refill = None;
        while self.store.live.used >= self.cfg.max_in_flight.max(1) {
            match self.evict_oldest(sink) {
                Evicted::None => break,
                Evicted::MovedOut => {}
                Evicted::Counted(index) => {
                    refill = Some(index);
                    break;
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.stats.attempts += 1;
        let deadline = self.now.max(ts).plus_nanos(self.cfg.timeout_ns);
        // A tombstone of the pair gives way to the new attempt.
        let tomb = tomb_of.and_then(|key| self.store.find(key, h));
        let new = new(id, deadline);
        let index = match refill.and_then(|i| Some((i, self.store.live.get_mut(i)?))) {
            Some((i, a)) => {
                *a = new;
                i
            }
            None => self.store.live.insert(new),
        };
        match tomb {
            Some(old @ Slot::Tomb(t)) => {
                self.store.replace(h, old, Slot::Live(index));
                self.store.tombs.take(t);
            }
            Some(old @ Slot::Live(_)) => self.store.replace(h, old, Slot::Live(index)),
            None => self.store.insert(h, Slot::Live(index)),
        }
        self.next_due = self.next_due.min(deadline);
        self.queue.push_back(Due {
            at: deadline,
            index,
            hash: h,
            id,
        });
        if refill.is_none() {
            // (A refilled place leaves the number in flight as it was.)
            self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.store.live.used as u64);
        }
        index
    }

    fn on_event(&mut self, slot: Slot, role: Role, o: &Observation, sink: &mut impl Sink) {
        match slot {
            Slot::Live(index) => {
                let Tracker {
                    cfg,
                    store,
                    queue,
                    counts,
                    now,
                    next_due,
                    ..
                } = self;
                let Some(a) = store.live.get_mut(index).map(Live::full) else {
                    return;
                };
                let mut bump = |an: Anomaly| counts[an as usize] += 1;
                let settled_bit = match role {
                    Role::ClientAck => 1,
                    Role::ServerOther => 2,
                    _ => 0,
                };
                if a.settled & settled_bit != 0 {
                    // Data of a connection under way (most packets of a capture).
                    return;
                }
                let answered = a.answer().is_some();
                // A RST after an accepted SYN-ACK resets an established connection: it is not an
                // answer to the SYN, and not judged by SYN-SENT rules.
                let role = if role == Role::Rst && a.answer().is_some_and(|e| e.role == Role::SynAck) {
                    Role::ResetAfterHandshake
                } else {
                    role
                };
                // After the handshake, one client ACK and one server segment are enough to show it
                // went on; later data is not the attempt's business (RSTs still are).
                if matches!(role, Role::ClientAck | Role::ServerOther)
                    && answered
                    && a.events.iter().any(|e| e.role == role)
                {
                    a.settled |= settled_bit;
                    return;
                }
                let (acceptable, anomaly) = judge(role, a.isn, a.syn_payload, a.server, o);
                // A server segment is odd only while the client still waits in SYN-SENT.
                if let Some(an) = anomaly.filter(|_| !(role == Role::ServerOther && answered)) {
                    a.anomalies.insert(an);
                    bump(an);
                }
                if a.events.iter().rev().take(4).any(|e| is_duplicate(e, role, o)) {
                    a.anomalies.insert(Anomaly::DuplicateFrame);
                    bump(Anomaly::DuplicateFrame);
                    return;
                }
                if o.ts < a.start {
                    a.anomalies.insert(Anomaly::AnswerBeforeSyn);
                    bump(Anomaly::AnswerBeforeSyn);
                }
                if a.events.len() >= MAX_EVENTS {
                    a.anomalies.insert(Anomaly::EventsCapped);
                    bump(Anomaly::EventsCapped);
                    return;
                }
                a.events.push(Event {
                    role,
                    acceptable,
                    late: false,
                    obs: *o,
                });
                // Answers (not data after the handshake) keep the attempt open a little longer,
                // so that a RST followed by a SYN-ACK (an injection race) is seen whole.
                if matches!(
                    role,
                    Role::SynAck | Role::Rst | Role::IcmpUnreachable | Role::IcmpTimeExceeded
                ) {
                    let deadline = now.plus_nanos(cfg.timeout_ns);
                    if deadline > a.deadline {
                        a.deadline = deadline;
                        *next_due = (*next_due).min(deadline);
                        queue.push_back(Due::of(a, index));
                    }
                }
            }
            Slot::Tomb(i) => {
                let Some(t) = self.store.tombs.get(i).copied() else {
                    return;
                };
                if t.accepted
                    || !matches!(
                        role,
                        Role::SynAck | Role::Rst | Role::IcmpUnreachable | Role::IcmpTimeExceeded
                    )
                {
                    return;
                }
                let (acceptable, anomaly) = judge(role, t.isn, t.syn_payload, t.key.1, o);
                if let Some(an) = anomaly {
                    self.bump(an);
                }
                self.bump(Anomaly::LateAnswer);
                sink.late(
                    t.id,
                    o.ts,
                    Some(Event {
                        role,
                        acceptable,
                        late: true,
                        obs: *o,
                    }),
                );
            }
        }
    }

    fn expire(&mut self, sink: &mut impl Sink) {
        while let Some(&Due {
            at: deadline,
            index,
            id,
            ..
        }) = self.queue.front()
        {
            if deadline > self.now {
                break;
            }
            // Attempts time out in the order of the queue: start loading the index entry that
            // closing the one due EXPIRING places later will look up (when attempts time out
            // as fast as they come, as a SYN flood's do below the cap on attempts in flight,
            // the misses are what takes the time).
            if let Some(later) = self.queue.get(EXPIRING) {
                self.store.index.touch(later.hash);
            }
            self.queue.pop_front();
            let due = self
                .store
                .live
                .get(index)
                .filter(|a| a.id() == id && a.deadline() <= self.now)
                .map(Live::deadline);
            if let Some(deadline) = due {
                self.close(index, (deadline, CloseReason::Timeout), sink);
            }
        }
        while let Some(&(until, i, id)) = self.tomb_queue.front() {
            if until > self.now {
                break;
            }
            self.touch_tombs_ahead();
            self.tomb_queue.pop_front();
            self.remove_tomb(i, id);
        }
        let first = |at: Option<Timestamp>| at.unwrap_or(Timestamp(i64::MAX));
        self.next_due = first(self.queue.front().map(|d| d.at)).min(first(self.tomb_queue.front().map(|t| t.0)));
    }

    /// Tombstones leave in the order of their queue (by time or by the cap on them): starts
    /// loading the tombstone that is to go 2 × EXPIRING places later, and the index entry of
    /// the one EXPIRING places later (its tombstone loaded by now), so that removing them
    /// does not wait for memory.
    #[inline]
    fn touch_tombs_ahead(&self) {
        if let Some(&(_, later, _)) = self.tomb_queue.get(2 * EXPIRING) {
            self.store.tombs.touch(later);
        }
        if let Some(t) = self
            .tomb_queue
            .get(EXPIRING)
            .and_then(|&(_, j, _)| self.store.tombs.get(j))
        {
            self.store.index.touch(t.hash);
        }
    }

    /// Removes tombstone `i` if it is still attempt `id`'s.
    fn remove_tomb(&mut self, i: u32, id: u64) {
        if let Some(h) = self.store.tombs.get(i).filter(|t| t.id == id).map(|t| t.hash) {
            self.store.remove(h, Slot::Tomb(i));
            self.store.tombs.take(i);
        }
    }

    /// Closes the oldest attempt in flight, if there is one.
    fn evict_oldest(&mut self, sink: &mut impl Sink) -> Evicted {
        while let Some(Due { index, id, .. }) = self.queue.pop_front() {
            let Some(a) = self.store.live.get(index).filter(|a| a.id() == id) else {
                continue;
            };
            let (hash, closed) = (a.hash(), (self.now.max(a.start()), CloseReason::Evicted));
            self.bump(Anomaly::Evicted);
            self.stats.evicted += 1;
            // Overload sheds state: no tombstone (a late packet of it goes unmatched).
            self.store.remove(hash, Slot::Live(index));
            return match self.hand_over(index, closed, Some(Anomaly::Evicted), sink) {
                true => Evicted::Counted(index),
                false => Evicted::MovedOut,
            };
        }
        Evicted::None
    }

    /// Closes the attempt at `index` at `closed` (when, why): leaves a tombstone in its place and
    /// hands it to the sink.
    fn close(&mut self, index: u32, closed: (Timestamp, CloseReason), sink: &mut impl Sink) {
        let Some(live) = self.store.live.get(index) else {
            return;
        };
        let tomb = match live {
            Live::Lean(lean) => lean.tomb(),
            Live::Full(a) => Tomb::of(a),
        };
        let (hash, id) = (tomb.hash, tomb.id);
        let until = closed.0.plus_nanos(self.cfg.linger_ns);
        // Tombstones are bounded like live attempts: drop the oldest beyond the cap.
        while self.store.tombs.used >= self.cfg.max_in_flight.max(1) {
            self.touch_tombs_ahead();
            match self.tomb_queue.pop_front() {
                Some((_, i, id)) => self.remove_tomb(i, id),
                None => break,
            }
        }
        let t = self.store.tombs.insert(tomb);
        self.store.replace(hash, Slot::Live(index), Slot::Tomb(t));
        self.next_due = self.next_due.min(until);
        self.tomb_queue.push_back((until, t, id));
        if self.hand_over(index, closed, None, sink) {
            self.store.live.remove(index);
        }
    }

    /// Hands the attempt at `index`, out of the index, to the sink, closed at `closed` (with
    /// `anomaly`). True when the sink only counted it ([`Sink::closed_ref`]): its place is still
    /// taken, for the caller to refill or free; else the place is free.
    #[inline]
    fn hand_over(
        &mut self,
        index: u32,
        closed: (Timestamp, CloseReason),
        anomaly: Option<Anomaly>,
        sink: &mut impl Sink,
    ) -> bool {
        let close = |a: &mut Attempt| {
            a.closed = closed;
            if let Some(an) = anomaly {
                a.anomalies.insert(an);
            }
        };
        match self.store.live.get_mut(index) {
            // Written out where the sink can see it (a sink that only counts it looks at it in
            // place).
            Some(Live::Lean(lean)) => {
                let (client, server) = lean.key();
                if sink.closed_unanswered(client, lean.client_mark(), server) {
                    return true;
                }
                let mut a = lean.attempt();
                close(&mut a);
                if sink.closed_ref(&a) {
                    return true;
                }
                self.store.live.remove(index);
                sink.closed(a);
                false
            }
            Some(Live::Full(a)) => {
                close(a);
                if sink.closed_ref(a) {
                    return true;
                }
                if let Some(a) = self.store.live.take(index) {
                    sink.closed(a.into_attempt());
                }
                false
            }
            None => false,
        }
    }
}

/// The places of the attempts in `live`, in the order of their ids (of creation).
///
/// Ids are handed out in sequence, so those in flight usually lie in a range not much wider
/// than their number (on floods, exactly): then each place is put straight where its id says
/// (a sort of the 200,000 attempts a flood leaves in flight took 60 M instructions, most of the
/// end of its run); otherwise they are sorted.
fn by_id(live: &[Option<Live>]) -> Vec<u32> {
    let ids = || {
        live.iter()
            .enumerate()
            .filter_map(|(i, a)| Some((a.as_ref()?.id(), i as u32)))
    };
    let (n, lo, hi) = ids().fold((0, u64::MAX, 0), |(n, lo, hi), (id, _)| (n + 1, lo.min(id), hi.max(id)));
    if n == 0 {
        return Vec::new();
    }
    let span = hi - lo;
    if span < 4 * n + 1024 {
        // (Ids are unique: no place is put twice.)
        let mut at = vec![u32::MAX; span as usize + 1];
        for (id, i) in ids() {
            at[(id - lo) as usize] = i;
        }
        at.retain(|&i| i != u32::MAX);
        return at;
    }
    let mut order: Vec<(u64, u32)> = ids().collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| i).collect()
}

/// The segment's (sender, receiver).
#[inline]
fn endpoints(o: &Observation, t: &TcpInfo) -> (Endpoint, Endpoint) {
    (
        Endpoint {
            ip: o.ip.src,
            port: t.src_port,
        },
        Endpoint {
            ip: o.ip.dst,
            port: t.dst_port,
        },
    )
}

/// A SYN that opens an attempt: without ACK or RST.
#[inline]
fn opens(t: &TcpInfo) -> bool {
    t.flags.opens()
}

/// Would the client act on this packet? (RFC 9293 §3.10.7.3, and Linux for ICMP.)
fn judge(role: Role, isn: SeqNumber, syn_payload: u32, server: Endpoint, o: &Observation) -> (bool, Option<Anomaly>) {
    match (role, o.l4) {
        // SYN-SENT, first check: an ACK must satisfy SND.UNA < SEG.ACK =< SND.NXT, else the
        // segment is dropped (RST) or answered with a RST (SYN-ACK).
        (Role::SynAck, L4::Tcp(t)) => {
            if t.ack.acks_syn(isn, syn_payload) {
                (true, None)
            } else {
                (false, Some(Anomaly::SynAckBadAck))
            }
        }
        // Second check: a RST is acceptable only with an acceptable ACK; "if no ACK, drop the
        // segment and return".
        (Role::Rst, L4::Tcp(t)) => {
            if !t.flags.ack() {
                (false, Some(Anomaly::RstNoAck))
            } else if !t.ack.acks_syn(isn, syn_payload) {
                (false, Some(Anomaly::RstBadAck))
            } else if t.payload_len > 0 {
                (true, Some(Anomaly::RstWithPayload))
            } else {
                (true, None)
            }
        }
        (Role::ServerOther, _) => (false, Some(Anomaly::ServerUnexpectedSegment)),
        // Linux tcp_v4_err/tcp_v6_err: the quoted sequence number must lie in
        // [SND.UNA, SND.NXT]; "fragmentation needed" (ICMPv4 3/4) only lowers the path MTU.
        (Role::IcmpUnreachable | Role::IcmpTimeExceeded, L4::IcmpError(e)) => {
            if !e.v6 && e.kind == IcmpKind::Unreachable && e.code == 4 {
                return (false, Some(Anomaly::IcmpFragNeeded));
            }
            let _ = server;
            match e.quote.seq {
                None => (false, Some(Anomaly::IcmpQuoteNoSeq)),
                Some(seq) => {
                    let d = seq.diff(isn);
                    if d >= 0 && i64::from(d) <= 1 + i64::from(syn_payload) {
                        (true, None)
                    } else {
                        (false, Some(Anomaly::IcmpSeqMismatch))
                    }
                }
            }
        }
        (Role::ClientAck | Role::ClientRst | Role::ResetAfterHandshake, _) => (false, None),
        _ => (false, None),
    }
}

/// The same packet captured twice (e.g. on two interfaces, or plain and encapsulated).
fn is_duplicate(e: &Event, role: Role, o: &Observation) -> bool {
    if e.role != role || e.obs.ts.0.abs_diff(o.ts.0) >= DUPLICATE_NS.unsigned_abs() {
        return false;
    }
    match (e.obs.l4, o.l4) {
        (L4::Tcp(a), L4::Tcp(b)) => {
            a.seq == b.seq && a.ack == b.ack && a.flags == b.flags && e.obs.ip.ip_id == o.ip.ip_id
        }
        (L4::IcmpError(a), L4::IcmpError(b)) => a == b && e.obs.ip.src == o.ip.src && e.obs.ip.ip_id == o.ip.ip_id,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Frame, LinkType};
    use crate::decode::decode;
    use crate::testutil::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[derive(Default)]
    struct Collect {
        closed: Vec<Attempt>,
        late: Vec<(u64, Option<Event>)>,
    }
    impl Sink for Collect {
        fn closed(&mut self, a: Attempt) {
            self.closed.push(a);
        }
        fn late(&mut self, id: u64, _ts: Timestamp, e: Option<Event>) {
            self.late.push((id, e));
        }
    }

    fn run(packets: &[(f64, Vec<u8>)]) -> Collect {
        run_with(TrackConfig::default(), packets).0
    }

    /// [`run`] with `cfg`, and the tracker's statistics.
    fn run_with(cfg: TrackConfig, packets: &[(f64, Vec<u8>)]) -> (Collect, TrackStats) {
        let mut t = Tracker::new(cfg);
        let mut c = Collect::default();
        for (secs, bytes) in packets {
            let f = Frame {
                ts: Timestamp((secs * 1e9) as i64),
                link: LinkType::ETHERNET,
                data: bytes,
                orig_len: bytes.len() as u32,
                number: 1,
            };
            let o = decode(&f).expect("decodes");
            t.observe(&o, &mut c);
        }
        let stats = t.finish(&mut c);
        c.closed.sort_by_key(|a| a.id);
        (c, stats)
    }

    fn syn() -> Tcp {
        Tcp::syn(Ipv4Addr::from(C4), 40000, Ipv4Addr::from(S4), 80, 1000)
    }

    #[test]
    fn syn_sent_synack_accepted() {
        let s = syn();
        let c = run(&[(0.0, s.frame()), (0.01, Tcp::synack_to(&s, 5).frame())]);
        assert_eq!(c.closed.len(), 1);
        assert_eq!(outcome(&c.closed[0]), Outcome::Accepted);
    }

    #[test]
    fn a_segment_of_a_pair_open_both_ways_answers_the_attempt_it_was_sent_to() {
        // Each end sent a SYN to the other on the same ports (a simultaneous open): the pair is
        // kept twice, once each way, under one hash. A segment goes to the attempt whose server
        // sent it, not to the one whose client did.
        let a = syn();
        let mut b = Tcp::syn(Ipv4Addr::from(S4), 80, Ipv4Addr::from(C4), 40000, 5000);
        b.options = false;
        let c = run(&[(0.0, a.frame()), (0.001, b.frame()), (0.01, Tcp::rst_to(&a).frame())]);
        assert_eq!(c.closed.len(), 2);
        assert_eq!(c.closed[0].client.port, 40000);
        assert_eq!(outcome(&c.closed[0]), Outcome::Refused);
        assert_eq!(c.closed[1].client.port, 80);
        assert!(c.closed[1].events.is_empty());
        // The other way: a segment from the first attempt's client is the second's server's.
        let mut ack = a.clone();
        ack.syn = false;
        ack.seq = a.seq.wrapping_add(1);
        ack.ack = Some(1);
        let c = run(&[(0.0, a.frame()), (0.001, b.frame()), (0.01, ack.frame())]);
        assert!(c.closed[0].events.is_empty());
        assert_eq!(c.closed[1].events.len(), 1);
        assert_eq!(c.closed[1].events[0].role, Role::ServerOther);
        // With only the first attempt, the same segment is its client's.
        let c = run(&[(0.0, a.frame()), (0.01, ack.frame())]);
        assert_eq!(c.closed[0].events.len(), 1);
        assert_eq!(c.closed[0].events[0].role, Role::ClientAck);
    }

    #[test]
    fn syn_sent_rst_ack_refused() {
        let s = syn();
        let c = run(&[(0.0, s.frame()), (0.01, Tcp::rst_to(&s).frame())]);
        assert_eq!(outcome(&c.closed[0]), Outcome::Refused);
    }

    #[test]
    fn syn_sent_rst_bad_ack_is_ignored_then_timeout() {
        let s = syn();
        let mut r = Tcp::rst_to(&s);
        r.ack = Some(1000); // acks the ISN itself, like a forged RST
        let c = run(&[(0.0, s.frame()), (0.01, r.frame()), (10.0, syn_other_flow())]);
        let a = &c.closed[0];
        assert_eq!(outcome(a), Outcome::NoAnswer);
        assert_eq!(a.events.len(), 1);
        assert!(!a.events[0].acceptable);
        assert!(a.anomalies.contains(Anomaly::RstBadAck));
        assert_eq!(a.closed.1, CloseReason::Timeout);
    }

    fn syn_other_flow() -> Vec<u8> {
        Tcp::syn(Ipv4Addr::from(C4), 41000, Ipv4Addr::from(S4), 81, 1).frame()
    }

    #[test]
    fn syn_sent_rst_no_ack_is_ignored() {
        let s = syn();
        let mut r = Tcp::rst_to(&s);
        r.ack = None;
        let c = run(&[(0.0, s.frame()), (0.01, r.frame())]);
        assert_eq!(outcome(&c.closed[0]), Outcome::NoAnswer);
        assert!(c.closed[0].anomalies.contains(Anomaly::RstNoAck));
    }

    #[test]
    fn syn_sent_forged_rst_then_synack_keeps_both_in_order() {
        let s = syn();
        let c = run(&[
            (0.0, s.frame()),
            (0.001, Tcp::rst_to(&s).ttl(63).frame()),
            (0.05, Tcp::synack_to(&s, 9).ttl(61).frame()),
        ]);
        let a = &c.closed[0];
        assert_eq!(outcome(a), Outcome::Refused);
        assert_eq!(
            a.events.iter().map(|e| e.role).collect::<Vec<_>>(),
            vec![Role::Rst, Role::SynAck]
        );
    }

    #[test]
    fn syn_retransmissions_join_and_duplicates_count_once() {
        let s = syn();
        let c = run(&[
            (0.0, s.frame()),
            (0.0002, s.frame()),
            (1.0, s.frame()),
            (3.0, s.frame()),
        ]);
        assert_eq!(c.closed.len(), 1);
        let a = &c.closed[0];
        assert_eq!(a.syns, 3);
        assert!(a.anomalies.contains(Anomaly::DuplicateFrame));
        assert_eq!(outcome(a), Outcome::NoAnswer);
        assert_eq!(a.closed.1, CloseReason::CaptureEnd);
    }

    #[test]
    fn syn_retransmitted_after_timeout_joins_closed_attempt() {
        let s = syn();
        let c = run(&[(0.0, s.frame()), (7.0, s.frame())]);
        assert_eq!(c.closed.len(), 1);
        assert_eq!(c.late.len(), 1);
        assert_eq!(c.late[0].0, c.closed[0].id);
    }

    #[test]
    fn port_reuse_with_new_isn_is_new_attempt() {
        let s = syn();
        let mut s2 = syn();
        s2.seq = 777_777;
        let c = run(&[(0.0, s.frame()), (0.5, s2.frame()), (0.51, Tcp::rst_to(&s2).frame())]);
        assert_eq!(c.closed.len(), 2);
        assert_eq!(outcome(&c.closed[0]), Outcome::NoAnswer);
        assert_eq!(c.closed[0].closed.1, CloseReason::PortReuse);
        assert_eq!(outcome(&c.closed[1]), Outcome::Refused);
    }

    #[test]
    fn icmp_quoting_unseen_syn_creates_attempt() {
        let s = syn();
        let icmp = icmp4_unreach(R4, C4, 13, &s.ip_bytes(), 63);
        let c = run(&[(0.0, icmp)]);
        assert_eq!(c.closed.len(), 1);
        let a = &c.closed[0];
        assert!(a.syn_frame.is_none());
        assert_eq!(a.isn, SeqNumber(1000));
        assert_eq!(outcome(a), Outcome::Unreachable);
    }

    #[test]
    fn icmp_frag_needed_is_not_a_refusal() {
        let s = syn();
        let icmp = icmp4_unreach(R4, C4, 4, &s.ip_bytes(), 63);
        let c = run(&[(0.0, s.frame()), (0.01, icmp)]);
        assert_eq!(outcome(&c.closed[0]), Outcome::NoAnswer);
    }

    #[test]
    fn midstream_capture_makes_no_attempt() {
        let s = syn();
        let c = run(&[(0.0, Tcp::synack_to(&s, 5).frame()), (0.1, Tcp::rst_to(&s).frame())]);
        assert!(c.closed.is_empty());
    }

    #[test]
    fn loopback_one_address_direction_from_flags() {
        let lo = Ipv6Addr::LOCALHOST;
        let s = Tcp::syn(lo, 50000, lo, 6379, 42);
        let c = run(&[(0.0, s.frame()), (0.001, Tcp::rst_to(&s).frame())]);
        assert_eq!(c.closed.len(), 1);
        assert_eq!(c.closed[0].client.port, 50000);
        assert_eq!(outcome(&c.closed[0]), Outcome::Refused);
    }

    #[test]
    fn cap_evicts_oldest_and_counts() {
        let mut t = Tracker::new(TrackConfig {
            max_in_flight: 2,
            ..TrackConfig::default()
        });
        let mut c = Collect::default();
        for i in 0..5u16 {
            let f = Tcp::syn(Ipv4Addr::from(C4), 1000 + i, Ipv4Addr::from(S4), 80, 1).frame();
            let fr = Frame {
                ts: Timestamp(i64::from(i)),
                link: LinkType::ETHERNET,
                data: &f,
                orig_len: f.len() as u32,
                number: 1,
            };
            t.observe(&decode(&fr).unwrap(), &mut c);
            assert!(t.in_flight() <= 2);
        }
        let stats = t.finish(&mut c);
        assert_eq!(stats.evicted, 3);
        assert_eq!(c.closed.len(), 5);
    }

    #[test]
    fn evicted_attempt_leaves_no_tombstone() {
        // Two attempts with room for one: the first is evicted by the second. A RST to the
        // first afterwards matches nothing (overload keeps no trace of it); the same RST after
        // a timeout would have joined it as a late answer.
        let mut t = Tracker::new(TrackConfig {
            max_in_flight: 1,
            ..TrackConfig::default()
        });
        let mut c = Collect::default();
        let first = Tcp::syn(Ipv4Addr::from(C4), 1000, Ipv4Addr::from(S4), 80, 1);
        let second = Tcp::syn(Ipv4Addr::from(C4), 1001, Ipv4Addr::from(S4), 80, 1);
        let rst = Tcp::rst_to(&first);
        for (i, f) in [first.frame(), second.frame(), rst.frame()].iter().enumerate() {
            let fr = Frame {
                ts: Timestamp(i as i64 * 1000),
                link: LinkType::ETHERNET,
                data: f,
                orig_len: f.len() as u32,
                number: i as u64 + 1,
            };
            t.observe(&decode(&fr).unwrap(), &mut c);
        }
        let stats = t.finish(&mut c);
        assert_eq!(stats.evicted, 1);
        assert_eq!(stats.unmatched_rst, 1);
        assert!(c.late.is_empty());
        assert_eq!(c.closed[0].closed.1, CloseReason::Evicted);
        assert!(c.closed[0].events.is_empty());

        let late = run(&[(0.0, first.frame()), (10.0, rst.frame())]);
        assert_eq!(late.late.len(), 1);
    }

    #[test]
    fn tombstones_beyond_their_cap_go_oldest_first() {
        // 100 attempts that each time out before the next, with room for 40: the tombstones of
        // the first 60 made way in turn, so a RST to one of those matches nothing, while a RST
        // to one of the last 40 joins its attempt as a late answer. (More than 2 x EXPIRING
        // tombstones are queued: the look-ahead of their removal runs too.)
        let syns: Vec<Tcp> = (0..100u16)
            .map(|i| Tcp::syn(Ipv4Addr::from(C4), 2000 + i, Ipv4Addr::from(S4), 80, u32::from(i)))
            .collect();
        let frames: Vec<(f64, Vec<u8>)> = syns
            .iter()
            .map(Tcp::frame)
            .chain(syns.iter().map(|s| Tcp::rst_to(s).frame()))
            .enumerate()
            .map(|(i, f)| (i as f64 * 0.01, f))
            .collect();
        let cfg = TrackConfig {
            timeout_ns: 1_000_000,
            max_in_flight: 40,
            ..TrackConfig::default()
        };
        let (c, stats) = run_with(cfg, &frames);
        assert_eq!(c.closed.len(), 100);
        assert!(c.closed.iter().all(|a| a.closed.1 == CloseReason::Timeout));
        assert_eq!(stats.evicted, 0);
        assert_eq!(stats.unmatched_rst, 60);
        let late: Vec<u64> = c.late.iter().map(|(id, _)| *id).collect();
        let ids: Vec<u64> = c.closed[60..].iter().map(|a| a.id).collect();
        assert_eq!(late, ids);
        assert!(c
            .late
            .iter()
            .all(|(_, e)| e.is_some_and(|e| e.role == Role::Rst && e.late)));
    }

    /// A sink that counts attempts in place ([`Sink::closed_ref`]), keeping a copy to look at.
    #[derive(Default)]
    struct CountInPlace {
        seen: Vec<Attempt>,
    }
    impl Sink for CountInPlace {
        fn closed(&mut self, a: Attempt) {
            panic!("attempt {} moved out although counted in place", a.id);
        }
        fn late(&mut self, _: u64, _: Timestamp, _: Option<Event>) {}
        fn closed_ref(&mut self, a: &Attempt) -> bool {
            self.seen.push(a.clone());
            true
        }
    }

    #[test]
    fn place_of_an_attempt_counted_in_place_is_refilled_clean() {
        // Room for one attempt. The first (a SYN with data and two SYNs, so anomalies and SYN
        // times to leave behind) is evicted by the second, which takes its place; the second
        // is then answered and must carry nothing of the first.
        let mut t = Tracker::new(TrackConfig {
            max_in_flight: 1,
            ..TrackConfig::default()
        });
        let mut sink = CountInPlace::default();
        let mut first = Tcp::syn(Ipv4Addr::from(C4), 1000, Ipv4Addr::from(S4), 80, 7);
        first.payload = vec![1, 2, 3];
        let second = Tcp::syn(Ipv4Addr::from(C4), 1001, Ipv4Addr::from(S4), 80, 500);
        let mut bad = Tcp::synack_to(&first, 9);
        bad.ack = Some(1); // a bad ACK: an event and an anomaly
        let packets = [
            first.frame(),
            bad.frame(),
            first.frame(),
            second.frame(),
            Tcp::synack_to(&second, 77).frame(),
        ];
        for (i, f) in packets.iter().enumerate() {
            let fr = Frame {
                ts: Timestamp(i as i64 * 2_000_000),
                link: LinkType::ETHERNET,
                data: f,
                orig_len: f.len() as u32,
                number: i as u64 + 1,
            };
            t.observe(&decode(&fr).unwrap(), &mut sink);
        }
        let stats = t.finish(&mut sink);
        assert_eq!(stats.evicted, 1);
        assert_eq!(sink.seen.len(), 2);
        let (old, new) = (&sink.seen[0], &sink.seen[1]);
        assert_eq!((old.id, old.client.port, old.syns, old.events.len()), (0, 1000, 2, 1));
        assert!(old.anomalies.contains(Anomaly::Evicted));
        assert!(old.anomalies.contains(Anomaly::SynWithData));
        assert_eq!(new.id, 1);
        assert_eq!((new.client.port, new.isn, new.syn_payload), (1001, SeqNumber(500), 0));
        assert_eq!((new.syns, new.syn_times.len(), new.syn_frame), (1, 1, Some(4)));
        assert_eq!(new.start, Timestamp(6_000_000));
        assert_eq!(new.anomalies, AnomalySet::default());
        assert_eq!(new.events.len(), 1);
        assert_eq!(outcome(new), Outcome::Accepted);
        assert_eq!(new.closed.1, CloseReason::CaptureEnd);
    }

    /// A data segment of the connection `syn` opened: from the client (`to_server`) or the
    /// server, `n` bytes after the ISNs.
    fn data(syn: &Tcp, server_isn: u32, to_server: bool, n: u32) -> Tcp {
        let (c, s) = (syn.seq.wrapping_add(1), server_isn.wrapping_add(1));
        let mut t = if to_server {
            Tcp {
                seq: c.wrapping_add(n),
                ack: Some(s),
                ..syn.clone()
            }
        } else {
            Tcp {
                seq: s.wrapping_add(n),
                ack: Some(c),
                ..Tcp::synack_to(syn, server_isn)
            }
        };
        t.syn = false;
        t.options = false;
        t.payload = vec![0; 100];
        t
    }

    #[test]
    fn data_after_the_handshake_is_kept_once_each_way_and_a_reset_still_counts() {
        let s = syn();
        let mut packets = vec![
            (0.0, s.frame()),
            (0.010, Tcp::synack_to(&s, 5000).frame()),
            (0.011, data(&s, 5000, true, 0).frame()),
        ];
        for i in 0..20 {
            let t = 0.02 + f64::from(i) * 0.001;
            packets.push((t, data(&s, 5000, i % 2 == 0, 100 * i).frame()));
        }
        let mut rst = data(&s, 5000, false, 5000);
        rst.rst = true;
        rst.payload.clear();
        packets.push((0.1, rst.frame()));
        let c = run(&packets);
        assert_eq!(c.closed.len(), 1);
        let a = &c.closed[0];
        assert_eq!(
            a.events.iter().map(|e| e.role).collect::<Vec<_>>(),
            vec![
                Role::SynAck,
                Role::ClientAck,
                Role::ServerOther,
                Role::ResetAfterHandshake
            ]
        );
        assert_eq!(outcome(a), Outcome::Accepted);
    }

    #[test]
    fn client_going_on_before_the_synack_is_seen_keeps_the_synack() {
        // The client's ACK and data come before the SYN-ACK (captured out of order): they are
        // kept until the answer arrives, and only then is later data left out.
        let s = syn();
        let c = run(&[
            (0.0, s.frame()),
            (0.011, data(&s, 5000, true, 0).frame()),
            (0.012, data(&s, 5000, true, 100).frame()),
            (0.013, Tcp::synack_to(&s, 5000).frame()),
            (0.014, data(&s, 5000, true, 200).frame()),
            (0.015, data(&s, 5000, false, 0).frame()),
            (0.016, data(&s, 5000, false, 100).frame()),
        ]);
        let roles: Vec<Role> = c.closed[0].events.iter().map(|e| e.role).collect();
        assert_eq!(
            roles,
            vec![Role::ClientAck, Role::ClientAck, Role::SynAck, Role::ServerOther]
        );
    }

    /// The attempts left in flight are handed on in the order of their ids, whether their ids
    /// are close together (placed by id) or far apart (sorted), lean or whole, with free places
    /// between them.
    #[test]
    fn attempts_in_flight_come_out_in_the_order_of_their_ids() {
        let live = |id: u64, whole: bool| {
            let end = |ip: [u8; 4], port| Endpoint {
                ip: IpAddr::from(ip),
                port,
            };
            Live::new(Start {
                id,
                key: (end([198, 18, 0, 1], 40_000), end([198, 19, 0, 1], 80)),
                isn: SeqNumber(1),
                // (A SYN with data is never kept lean.)
                syn_payload: u32::from(whole),
                syn: Some((Timestamp(0), id)),
                ts: Timestamp(0),
                deadline: Timestamp(1),
                hash: 7,
                client_mark: Mark::default(),
            })
        };
        let mut rng = crate::probe::Rng::new(11);
        for (n, spread) in [
            (0, 1),
            (1, 1),
            (500, 1),
            (500, 3),
            (300, 1_000_000),
            (2000, u64::MAX / 4096),
        ] {
            let mut slab: Vec<Option<Live>> = Vec::new();
            let mut id = rng.next_u64() % 1000;
            for _ in 0..n {
                if rng.next_u32() % 4 == 0 {
                    slab.push(None);
                }
                id += 1 + rng.next_u64() % spread;
                slab.push(Some(live(id, rng.next_u32() % 2 == 0)));
            }
            // Shuffled, as places are reused.
            for i in (1..slab.len()).rev() {
                slab.swap(i, rng.next_u64() as usize % (i + 1));
            }
            let mut want: Vec<(u64, u32)> = slab
                .iter()
                .enumerate()
                .filter_map(|(i, a)| Some((a.as_ref()?.id(), i as u32)))
                .collect();
            want.sort_unstable();
            let want: Vec<u32> = want.into_iter().map(|(_, i)| i).collect();
            assert_eq!(by_id(&slab), want, "{n} attempts, ids {spread} apart at most");
            assert_eq!(want.len(), n);
        }
        // Ids far apart at both ends of their range (no overflow working out the span).
        let slab = vec![Some(live(u64::MAX - 1, false)), None, Some(live(0, true))];
        assert_eq!(by_id(&slab), vec![2, 0]);
    }
}
