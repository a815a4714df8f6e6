//! synrst: who refused this connection, and how do we know?
//!
//! The pipeline, one module per stage, each passing plain data to the next:
//!
//! ```text
//! capture (frames + timestamps + link type)
//!   → decode (etherparse views → Copy Observation, or a counted Skip)
//!   → track (attempts keyed by 4-tuple + ISN; answers in arrival order)
//!   → attribute (per-host baselines + decision table → verdict + evidence)
//!   → report (one serialisable Report; one writer per format)
//! ```
//!
//! [`analyze`] runs it over capture files. Nothing in the library parses command lines.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anomaly;
pub mod anonymize;
pub mod attribute;
pub mod capture;
pub mod decode;
pub mod evidence;
pub mod flow;
mod hint;
pub mod model;
pub mod probe;
pub mod report;
pub mod sketch;
#[doc(hidden)]
pub mod testutil;
pub mod track;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use attribute::{Baselines, Verdict, VerdictCounts, VerdictKind};
use capture::{CaptureError, Source, Timestamp};
use decode::L4;
use model::{AnswerRecord, AttemptRecord, CaptureSummary, Destination, Flood, Report, Summary};
use track::{outcome, Attempt, Event, Outcome, Role, Sink, TrackConfig, Tracker};

/// What to analyse and how.
#[derive(Clone, Debug)]
pub struct AnalyzeConfig {
    /// Captures, read in order into one tracker (like consecutive files of `tcpdump -C`).
    pub sources: Vec<Source>,
    /// Tracker settings.
    pub track: TrackConfig,
    /// When given, the bytes read from the inputs are added to it as reading goes (once per
    /// buffer of a few hundred KiB; gzip counts compressed bytes): a progress display polls it.
    pub progress: Option<Arc<AtomicU64>>,
}

/// Analyses the captures. `on_closed`, when given, sees each attempt as soon as the tracker
/// closes it (attributed with the baselines learned so far): the NDJSON writer streams it.
/// The returned report is attributed with the baselines of the whole capture.
pub fn analyze(cfg: &AnalyzeConfig, on_closed: Option<&mut dyn FnMut(&AttemptRecord)>) -> Result<Report, CaptureError> {
    analyze_listing(cfg, DEFAULT_MAX_LISTED, on_closed)
}

/// Most attempts listed one by one in a report by default; the rest are counted per destination.
/// It bounds memory whatever the capture's size (a listed attempt keeps a few KiB until the
/// report is written), and a report of ten thousand attempts is about all anyone reads; the
/// NDJSON stream has every attempt.
pub const DEFAULT_MAX_LISTED: usize = 10_000;

/// [`analyze`], listing at most `max_listed` attempts one by one (the rest are counted in the
/// summary, so memory stays bounded under SYN floods).
pub fn analyze_listing(
    cfg: &AnalyzeConfig,
    max_listed: usize,
    on_closed: Option<&mut dyn FnMut(&AttemptRecord)>,
) -> Result<Report, CaptureError> {
    let mut engine = Engine::new(cfg.track, on_closed);
    engine.set_max_listed(max_listed);
    for source in &cfg.sources {
        engine.begin_source(source.display());
        // Decoding (and hashing for the tracker's index) runs on the reading thread; tracking
        // here.
        let keyer = engine.tracker.keyer();
        let info = capture::read_capture_mapped(
            source,
            cfg.progress.clone(),
            |frame, batch: &mut Batch| batch.push(frame, &keyer),
            |batch| engine.decoded_batch(batch),
        )?;
        engine.end_source(info);
    }
    Ok(engine.finish())
}

/// Frames decoded on the reading side, in order, as they cross to the tracking side.
///
/// Each frame is an [`Item`] of 48 bytes; only an observation that is not an IPv4 SYN opening
/// an attempt is kept whole, in `observations` (144 bytes). On a SYN flood that is three
/// times fewer bytes (cache lines) going from one core to the other, and the tracker reads
/// just what it needs of a SYN.
struct Batch {
    items: Vec<Item>,
    /// The observations of the items that are [`What::Observation`], in order (each `Ok`),
    /// then one more place, where the next frame is decoded: kept there when it is an
    /// observation (a new place follows), overwritten by the next frame when not.
    observations: Vec<Result<decode::Observation, decode::Skip>>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            items: Vec::new(),
            observations: vec![Err(decode::Skip::NotIp)],
        }
    }
}

/// A frame decoded on the reading side: its time, what it is, and what the tracker can be told
/// ahead about it.
#[derive(Clone, Copy)]
struct Item {
    ts: Timestamp,
    /// [`track::Keyer::first_hash`] of its observation (0 for a skipped frame).
    hash: u32,
    /// [`track::Keyer::client_mark`] of its observation.
    mark: sketch::Mark,
    what: What,
}

#[derive(Clone, Copy)]
enum What {
    /// An IPv4 SYN opening an attempt.
    Syn4(decode::Syn4),
    /// Another observation: the batch's next in `observations`.
    Observation,
    /// A frame skipped.
    Skip(decode::Skip),
}

impl capture::Batch for Batch {
    fn frames(&self) -> usize {
        self.items.len()
    }

    fn clear(&mut self) {
        self.items.clear();
        self.observations.truncate(1);
    }
}

impl Batch {
    /// Decodes `frame` (hashing what it holds for the tracker's index) and adds it.
    #[inline]
    fn push(&mut self, frame: &capture::Frame<'_>, keyer: &track::Keyer) {
        // Decoded in the place after the observations: an observation is not copied.
        if self.observations.is_empty() {
            // (Not after Batch::default or clear: the place is there.)
            self.observations.push(Err(decode::Skip::NotIp));
        }
        let n = self.observations.len() - 1;
        let decoded = &mut self.observations[n];
        let (hash, mark, what) = match decode::decode_into_or_syn4(frame, decoded) {
            Some(syn) => (
                keyer.syn4_hash(&syn),
                sketch::mark(IpAddr::V4(syn.src)),
                What::Syn4(syn),
            ),
            None => match decoded {
                Ok(o) => {
                    let ahead = (keyer.first_hash(o), keyer.client_mark(o));
                    // It stays: the next frame gets a place of its own.
                    self.observations.push(Err(decode::Skip::NotIp));
                    (ahead.0, ahead.1, What::Observation)
                }
                &mut Err(skip) => (0, sketch::Mark::default(), What::Skip(skip)),
            },
        };
        self.items.push(Item {
            ts: frame.ts,
            hash,
            mark,
            what,
        });
    }
}

/// The pipeline behind [`analyze`] and live capture: feed it frames, then finish it.
pub struct Engine<'cb> {
    tracker: Tracker,
    baselines: Baselines,
    collector: Collector,
    summary: CaptureSummary,
    /// Earliest and latest frame times (MAX, MIN before the first frame).
    first: Timestamp,
    last: Timestamp,
    unsupported: BTreeMap<(String, u32), u64>,
    /// Frames skipped, per reason ([`skip_index`]), not yet added to `summary.skipped`.
    skips: [u64; SKIP_REASONS],
    on_closed: Option<&'cb mut dyn FnMut(&AttemptRecord)>,
}

impl<'cb> Engine<'cb> {
    /// A new pipeline; `on_closed` sees each attempt when the tracker closes it.
    pub fn new(track: TrackConfig, on_closed: Option<&'cb mut dyn FnMut(&AttemptRecord)>) -> Engine<'cb> {
        Engine {
            tracker: Tracker::new(track),
            baselines: Baselines::default(),
            collector: Collector::default(),
            summary: CaptureSummary::default(),
            first: Timestamp(i64::MAX),
            last: Timestamp(i64::MIN),
            unsupported: BTreeMap::new(),
            skips: [0; SKIP_REASONS],
            on_closed,
        }
    }

    /// Starts a new input (a file, or an interface); `name` labels its attempts.
    pub fn begin_source(&mut self, name: String) {
        self.collector.files.push(name);
    }

    /// Lists at most `n` attempts one by one; later ones are counted per destination.
    pub fn set_max_listed(&mut self, n: usize) {
        self.collector.max_listed = n;
    }

    /// Feeds one frame.
    pub fn frame(&mut self, frame: &capture::Frame<'_>) {
        self.decoded(frame.ts, &decode::decode(frame), None);
    }

    /// Feeds frames already decoded.
    fn decoded_batch(&mut self, batch: &Batch) {
        let (batch, mut observations) = (&batch.items, batch.observations.iter());
        // Start loading the index entries that the packet AHEAD places later will look up
        // (and, the tracker being full, the entry of the attempt it will evict), so that the
        // memory accesses overlap instead of each stalling in turn: on floods the index is far
        // bigger than the caches.
        const AHEAD: usize = 16;
        for (k, d) in batch.iter().take(AHEAD).enumerate() {
            self.tracker.prefetch(d.hash);
            self.tracker.prefetch_victim(k);
        }
        for i in 0..batch.len() {
            if let Some(ahead) = batch.get(i + AHEAD) {
                self.tracker.prefetch(ahead.hash);
            }
            self.tracker.prefetch_victim(AHEAD);
            let d = &batch[i];
            // (By reference: the SYN's fields are read where they are used, not copied first.)
            match &d.what {
                What::Syn4(s) => self.syn(s, d.ts, d.hash, d.mark),
                What::Observation => {
                    if let Some(Ok(o)) = observations.next() {
                        self.observed(o, Some((d.hash, d.mark)));
                    }
                }
                &What::Skip(skip) => self.skipped(d.ts, skip),
            }
        }
    }

    /// Feeds an IPv4 SYN that opens an attempt, captured at `ts`, with its
    /// [`track::Keyer::first_hash`] and [`track::Keyer::client_mark`]: what
    /// [`Engine::decoded`] does with its observation.
    #[inline]
    fn syn(&mut self, syn: &decode::Syn4, ts: Timestamp, hash: u32, mark: sketch::Mark) {
        self.saw(ts);
        self.summary.decoded += 1;
        // (A client's SYN teaches the baselines nothing: see Baselines::observe.)
        let mut streaming = Streaming {
            collector: &mut self.collector,
            baselines: &self.baselines,
            on_closed: self.on_closed.as_deref_mut(),
        };
        self.tracker.syn4_hashed(syn, ts, hash, mark, &mut streaming);
    }

    /// Feeds one frame already decoded, with its [`track::Keyer::first_hash`] and
    /// [`track::Keyer::client_mark`] if worked out.
    fn decoded(
        &mut self,
        ts: Timestamp,
        decoded: &Result<decode::Observation, decode::Skip>,
        ahead: Option<(u32, sketch::Mark)>,
    ) {
        match decoded {
            Ok(o) => self.observed(o, ahead),
            &Err(skip) => self.skipped(ts, skip),
        }
    }

    /// [`Engine::decoded`] of an observation.
    #[inline]
    fn observed(&mut self, o: &decode::Observation, ahead: Option<(u32, sketch::Mark)>) {
        self.saw(o.ts);
        self.summary.decoded += 1;
        self.baselines.observe(o);
        let mut streaming = Streaming {
            collector: &mut self.collector,
            baselines: &self.baselines,
            on_closed: self.on_closed.as_deref_mut(),
        };
        match ahead {
            Some((h, mark)) => self.tracker.observe_hashed(o, h, mark, &mut streaming),
            None => self.tracker.observe(o, &mut streaming),
        }
    }

    /// Widens the span of frame times to `ts`.
    #[inline]
    fn saw(&mut self, ts: Timestamp) {
        self.first = self.first.min(ts);
        self.last = self.last.max(ts);
    }

    /// [`Engine::decoded`] of a frame skipped.
    fn skipped(&mut self, ts: Timestamp, skip: decode::Skip) {
        self.saw(ts);
        self.skips[skip_index(skip)] += 1;
        if let decode::Skip::UnsupportedLinkType(l) = skip {
            *self
                .unsupported
                .entry((self.collector.file().to_string(), l.0))
                .or_insert(0) += 1;
        }
    }

    /// Lets time pass without a packet (live capture): attempts whose timeout expired close.
    pub fn advance(&mut self, now: Timestamp) {
        let mut streaming = Streaming {
            collector: &mut self.collector,
            baselines: &self.baselines,
            on_closed: self.on_closed.as_deref_mut(),
        };
        self.tracker.advance(now, &mut streaming);
    }

    /// Records what reading one input saw.
    pub fn end_source(&mut self, info: capture::CaptureInfo) {
        self.summary.frames += info.frames;
        for (k, v) in &info.skipped {
            *self.summary.skipped.entry(k.clone()).or_insert(0) += v;
        }
        self.summary.warnings.extend(info.warnings.iter().cloned());
        self.summary.files.push(info);
    }

    /// Adds a warning to the report.
    pub fn warn(&mut self, w: capture::Warning) {
        self.summary.warnings.push(w);
    }

    /// Frames fed so far that were read (for live statistics).
    pub fn summary_mut(&mut self) -> &mut CaptureSummary {
        self.flush_skips();
        &mut self.summary
    }

    fn flush_skips(&mut self) {
        for (i, n) in std::mem::take(&mut self.skips).into_iter().enumerate() {
            if n > 0 {
                *self.summary.skipped.entry(SKIP_NAMES[i].to_string()).or_insert(0) += n;
            }
        }
    }

    /// Closes every attempt and builds the report, attributed with the whole capture's baselines.
    pub fn finish(mut self) -> Report {
        self.flush_skips();
        for ((file, link), n) in std::mem::take(&mut self.unsupported) {
            self.summary.warnings.push(capture::Warning {
                file,
                offset: None,
                message: format!(
                    "{n} frame(s) with unsupported link type {link} ({}) skipped",
                    capture::LinkType(link).name()
                ),
            });
        }
        let stats = {
            let mut streaming = Streaming {
                collector: &mut self.collector,
                baselines: &self.baselines,
                on_closed: self.on_closed,
            };
            self.tracker.finish(&mut streaming)
        };
        let mut summary = self.summary;
        let mut baselines = self.baselines;
        // (A frame was seen exactly when first <= last, whatever its time.)
        if self.first <= self.last {
            summary.first_packet = Some(self.first.rfc3339());
            summary.last_packet = Some(self.last.rfc3339());
        }
        summary.unmatched_rst = stats.unmatched_rst;
        summary.unmatched_icmp = stats.unmatched_icmp;
        summary.attempts_evicted = stats.evicted;
        summary.peak_in_flight = stats.peak_in_flight;
        summary.anomalies = stats.anomalies;

        let mut folded = std::mem::take(&mut self.collector.folded);
        folded.flush();
        if folded.attempts > 0 {
            summary.warnings.push(capture::Warning {
                file: self.collector.files.join(", "),
                offset: None,
                message: format!(
                    "{} attempt(s) are counted in the summary, not listed one by one (at most {} are listed, failures before successes)",
                    folded.attempts, self.collector.max_listed
                ),
            });
        }
        let files = std::mem::take(&mut self.collector.files);
        let attempts = std::mem::take(&mut self.collector.attempts);
        for (_, a) in attempts.values() {
            baselines.observe_attempt(a);
        }
        // Attribution and records are independent per attempt: both cores share them, and half
        // of the attempts are dropped as their records are made, so the two do not pile up.
        let records: Vec<AttemptRecord> = in_parallel(attempts, |i, (f, a)| {
            let file = files.get(*f as usize).map(String::as_str).unwrap_or_default();
            let v = attribute::attribute(a, &baselines);
            record(i as u64 + 1, file, a, v)
        });
        let hints = attribute::capture_hints(records.iter().map(|r| (r.server.ip, r.verdict)), &baselines);
        let summary_block = summarize(&records, hints, folded);
        Report {
            schema: model::SCHEMA,
            tool: model::Tool::default(),
            capture: summary,
            attempts: records,
            summary: summary_block,
            probe: None,
        }
    }
}

/// Below this many items, [`in_parallel`] does not start a thread.
const PARALLEL_MIN: usize = 256;

/// `f(index, item)` for every item of `items` (in key order), on this thread and one more;
/// the results in order. The map is split in two, not copied. This thread's part is dropped
/// item by item as it goes; the other thread only reads its part, which this thread drops at
/// the end: one thread freeing memory that the other allocates from makes them wait for each
/// other on the allocator's lock. This thread takes the bigger part (3/5): it allocates where
/// its items were freed, the other thread in fresh memory (measured on a generated capture of
/// 20k attempts: 7 ms for half here, 11 ms there).
fn in_parallel<K: Ord + Copy + Send + Sync, T: Send + Sync, R: Send>(
    mut items: BTreeMap<K, T>,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    let middle = items.keys().nth(n * 3 / 5).copied();
    let (Some(middle), true) = (middle, n >= PARALLEL_MIN) else {
        return items.into_values().enumerate().map(|(i, x)| f(i, &x)).collect();
    };
    let second = items.split_off(&middle);
    let offset = items.len();
    let f = &f;
    let out = std::thread::scope(|s| {
        let second = &second;
        let other = s.spawn(move || {
            second
                .values()
                .enumerate()
                .map(|(i, x)| f(offset + i, x))
                .collect::<Vec<R>>()
        });
        let mut out: Vec<R> = Vec::with_capacity(n);
        out.extend(items.into_values().enumerate().map(|(i, x)| f(i, &x)));
        match other.join() {
            Ok(rest) => out.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        out
    });
    drop(second);
    out
}

/// Number of skip reasons.
const SKIP_REASONS: usize = 9;

/// The report name of each skip reason, by [`skip_index`].
const SKIP_NAMES: [&str; SKIP_REASONS] = [
    "unsupported_link_type",
    "not_ip",
    "other_protocol",
    "icmp_other",
    "icmp_quote_not_tcp",
    "icmp_quote_truncated",
    "ip_fragment",
    "truncated",
    "malformed",
];

/// A skip reason's place in [`SKIP_NAMES`].
fn skip_index(s: decode::Skip) -> usize {
    use decode::Skip;
    match s {
        Skip::UnsupportedLinkType(_) => 0,
        Skip::NotIp => 1,
        Skip::OtherProtocol => 2,
        Skip::IcmpOther => 3,
        Skip::IcmpQuoteNotTcp => 4,
        Skip::IcmpQuoteTruncated => 5,
        Skip::IpFragment => 6,
        Skip::Truncated => 7,
        Skip::Malformed => 8,
    }
}

/// Attempts beyond the listing cap, counted per destination.
#[derive(Default)]
struct Folded {
    attempts: u64,
    by_dest: std::collections::HashMap<flow::Endpoint, FoldCounts, foldhash::fast::RandomState>,
    /// The destination counted last, held out of `by_dest` (a flood repeats one destination).
    last: Option<(flow::Endpoint, FoldCounts)>,
    /// Attempts to destinations beyond the cap on destinations.
    other_destinations: u64,
    /// Their outcomes and verdicts (in the capture-wide counts, in no destination's row).
    other: FoldCounts,
}

impl Folded {
    /// Puts `last` back into `by_dest`.
    fn flush(&mut self) {
        if let Some((server, c)) = self.last.take() {
            if self.by_dest.capacity() == 0 {
                // Room for the rows the default listing allows, made once: grown by doubling,
                // the table would be copied, and its memory touched afresh, at every step.
                self.by_dest.reserve(DEFAULT_MAX_LISTED);
            }
            self.by_dest.insert(server, c);
        }
    }
}

#[derive(Default)]
struct FoldCounts {
    outcomes: [u64; 4],
    /// Verdicts of the failures that were answered; none for most destinations (their
    /// attempts were accepted), so kept apart.
    verdicts: Option<Box<VerdictCounts>>,
    /// Attempts nothing answered (filtered-or-down), counted apart from `verdicts` (once per
    /// SYN on a flood: the cheapest count there is).
    silent: u64,
    /// Distinct client addresses (estimated), for flood detection.
    sources: sketch::Sources,
}

impl FoldCounts {
    /// Counts the attempt's outcome and, for a failure, its verdict (None: an attempt nothing
    /// answered, see [`Sink::closed_unanswered`]).
    #[inline]
    fn count(&mut self, a: Option<&Attempt>, baselines: &Baselines) {
        match a {
            Some(a) if !a.events.is_empty() => self.count_answered(a, baselines),
            // Nothing answered and the client did not go on (a SYN flood's attempts): the
            // outcome is no-answer and `attribute` can only conclude filtered-or-down (with no
            // RST there is nothing forged), so skip building its evidence.
            _ => {
                self.outcomes[Outcome::NoAnswer as usize] += 1;
                self.silent += 1;
            }
        }
    }

    /// [`FoldCounts::count`] of an attempt with events (out of line: floods have none).
    #[inline(never)]
    fn count_answered(&mut self, a: &Attempt, baselines: &Baselines) {
        let o = outcome(a);
        self.outcomes[o as usize] += 1;
        if o != Outcome::Accepted {
            let kind = attribute::attribute(a, baselines).verdict;
            self.verdicts.get_or_insert_with(Default::default).add(kind, 1);
        }
    }

    /// The verdicts of the failures counted, silences as filtered-or-down (None: no failure).
    fn failure_verdicts(&self) -> Option<VerdictCounts> {
        if self.verdicts.is_none() && self.silent == 0 {
            return None;
        }
        let mut v = self.verdicts.as_deref().copied().unwrap_or_default();
        v.add(VerdictKind::FilteredOrDown, self.silent);
        Some(v)
    }
}

/// Capture-wide counts per outcome and verdict, added up before they go into the summary's
/// maps (keyed by name) once.
#[derive(Default)]
struct Totals {
    outcomes: [u64; 4],
    verdicts: VerdictCounts,
}

impl Totals {
    /// Adds attempts counted per destination, given as their outcomes and
    /// [`FoldCounts::failure_verdicts`] (the accepted ones count as verdict `accepted`).
    fn add_folded(&mut self, outcomes: [u64; 4], failures: Option<&VerdictCounts>) {
        for (t, n) in self.outcomes.iter_mut().zip(outcomes) {
            *t += n;
        }
        if let Some(v) = failures {
            self.verdicts.merge(v);
        }
        self.verdicts
            .add(VerdictKind::Accepted, outcomes[Outcome::Accepted as usize]);
    }

    /// Puts the counts into `s` (only those above zero, as names).
    fn into_summary(self, s: &mut Summary) {
        const OUTCOMES: [Outcome; 4] = [
            Outcome::Accepted,
            Outcome::Refused,
            Outcome::Unreachable,
            Outcome::NoAnswer,
        ];
        for (o, n) in OUTCOMES.into_iter().zip(self.outcomes) {
            if n > 0 {
                s.by_outcome.insert(o.name(), n);
            }
        }
        for (k, n) in self.verdicts.iter() {
            s.by_verdict.insert(k.name(), n);
        }
    }
}

/// Keeps closed attempts (by id) so that late packets can still join them, up to a cap.
struct Collector {
    files: Vec<String>,
    attempts: BTreeMap<u64, (u32, Attempt)>,
    /// Listed attempts that were accepted, oldest first: once the listing is full, a failed
    /// attempt takes the place of one of them (failures are what a report is read for).
    accepted: std::collections::VecDeque<u64>,
    max_listed: usize,
    folded: Folded,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            files: Vec::new(),
            attempts: BTreeMap::new(),
            accepted: std::collections::VecDeque::new(),
            max_listed: DEFAULT_MAX_LISTED,
            folded: Folded::default(),
        }
    }
}

impl Collector {
    fn file(&self) -> &str {
        self.files.last().map(String::as_str).unwrap_or("")
    }

    /// Whether the next closed attempt is listed (kept) rather than counted.
    fn listing(&self) -> bool {
        self.attempts.len() < self.max_listed
    }

    /// Whether `a`, closing with the listing full, takes the place of a listed success.
    fn displaces(&self, a: &Attempt) -> bool {
        !self.accepted.is_empty() && outcome(a) != Outcome::Accepted
    }

    fn closed(&mut self, a: Attempt, baselines: &Baselines) {
        if !self.listing() {
            if !self.displaces(&a) {
                self.fold(&a, baselines);
                return;
            }
            // The oldest listed success makes room: it is counted instead.
            while let Some(id) = self.accepted.pop_front() {
                if let Some((_, old)) = self.attempts.remove(&id) {
                    self.fold(&old, baselines);
                    break;
                }
            }
        }
        if outcome(&a) == Outcome::Accepted {
            self.accepted.push_back(a.id);
        }
        let file = self.files.len().saturating_sub(1) as u32;
        self.attempts.insert(a.id, (file, a));
    }

    /// Over the cap: counts the attempt where the summary will show it.
    #[inline]
    fn fold(&mut self, a: &Attempt, baselines: &Baselines) {
        self.fold_parts(a.client.ip, a.client_mark(), a.server, Some(a), baselines);
    }

    /// [`Collector::fold`] of an attempt from `client` (with its mark) to `server` (None: one
    /// that nothing answered, [`Sink::closed_unanswered`]).
    ///
    /// Inlined into the tracker's eviction (on floods, once per SYN), the change of destination
    /// out of line.
    #[inline]
    fn fold_parts(
        &mut self,
        client: IpAddr,
        mark: sketch::Mark,
        server: flow::Endpoint,
        a: Option<&Attempt>,
        baselines: &Baselines,
    ) {
        let f = &mut self.folded;
        f.attempts += 1;
        if f.last.as_ref().is_none_or(|(last, _)| *last != server) && !self.switch_to(server, a, baselines) {
            return;
        }
        if let Some((_, c)) = self.folded.last.as_mut() {
            c.sources.add_marked(client, mark);
            c.count(a, baselines);
        }
    }

    /// Makes `server` the destination [`Collector::fold_parts`] counts into; false when it is
    /// one too many to have a row (`a` is then counted with the others).
    #[inline(never)]
    fn switch_to(&mut self, server: flow::Endpoint, a: Option<&Attempt>, baselines: &Baselines) -> bool {
        let f = &mut self.folded;
        f.flush();
        let known = f.by_dest.len() < self.max_listed || f.by_dest.contains_key(&server);
        if !known {
            f.other_destinations += 1;
            f.other.count(a, baselines);
            return false;
        }
        let c = f.by_dest.remove(&server).unwrap_or_default();
        f.last = Some((server, c));
        true
    }

    fn late(&mut self, id: u64, ts: Timestamp, event: Option<Event>) {
        let Some((_, a)) = self.attempts.get_mut(&id) else {
            return;
        };
        match event {
            None => {
                a.syns += 1;
                a.anomalies.insert(anomaly::Anomaly::SynAfterTimeout);
                if a.syn_times.len() < track::MAX_SYN_TIMES {
                    a.syn_times.push(ts);
                }
                a.last_syn = a.last_syn.max(ts);
            }
            Some(e) => {
                a.anomalies.insert(anomaly::Anomaly::LateAnswer);
                if a.events.len() < track::MAX_EVENTS {
                    a.events.push(e);
                }
            }
        }
    }
}

struct Streaming<'a, 'b> {
    collector: &'a mut Collector,
    baselines: &'a Baselines,
    on_closed: Option<&'a mut (dyn FnMut(&AttemptRecord) + 'b)>,
}

impl Sink for Streaming<'_, '_> {
    fn closed(&mut self, a: Attempt) {
        if let Some(f) = self.on_closed.as_deref_mut() {
            let v = attribute::attribute(&a, self.baselines);
            f(&record(a.id + 1, self.collector.file(), &a, v));
        }
        self.collector.closed(a, self.baselines);
    }

    #[inline]
    fn closed_ref(&mut self, a: &Attempt) -> bool {
        // Only a listed attempt is kept; one beyond the cap is streamed and counted in place.
        if self.collector.listing() || self.collector.displaces(a) {
            return false;
        }
        if self.on_closed.is_some() {
            self.stream(a);
        }
        self.collector.fold(a, self.baselines);
        true
    }

    #[inline]
    fn closed_unanswered(&mut self, client: flow::Endpoint, mark: sketch::Mark, server: flow::Endpoint) -> bool {
        // What closed_ref would do with it (it is no success, so it displaces one when there
        // is one), unless it is to be streamed: the callback takes a whole record.
        if self.collector.listing() || !self.collector.accepted.is_empty() || self.on_closed.is_some() {
            return false;
        }
        self.collector.fold_parts(client.ip, mark, server, None, self.baselines);
        true
    }

    fn late(&mut self, id: u64, ts: Timestamp, event: Option<Event>) {
        self.collector.late(id, ts, event);
    }
}

impl Streaming<'_, '_> {
    /// Hands `a`'s record to `on_closed` (out of line: the JSON report has no such callback).
    #[inline(never)]
    fn stream(&mut self, a: &Attempt) {
        if let Some(f) = self.on_closed.as_deref_mut() {
            let v = attribute::attribute(a, self.baselines);
            f(&record(a.id + 1, self.collector.file(), a, v));
        }
    }
}

fn answer_record(a: &Attempt, e: &Event) -> AnswerRecord {
    let (flags, seq, ack, window, payload_len, icmp_type, icmp_code) = match e.obs.l4 {
        L4::Tcp(t) => (
            Some(flags_text(t.flags)),
            Some(t.seq.0),
            t.flags.ack().then_some(t.ack.0),
            Some(t.window),
            Some(t.payload_len),
            None,
            None,
        ),
        L4::IcmpError(i) => (None, None, None, None, None, Some(i.icmp_type), Some(i.code)),
    };
    AnswerRecord {
        kind: e.role,
        sender: e.obs.ip.src,
        after_ms: round3(e.obs.ts.millis_since(a.start)),
        frame: e.obs.frame,
        ttl: e.obs.ip.ttl,
        ip_id: e.obs.ip.ip_id,
        flags,
        seq,
        ack,
        window,
        payload_len,
        icmp_type,
        icmp_code,
        acceptable: e.acceptable,
        late: e.late,
    }
}

/// `flags.to_string()`, shared: the texts of the 256 combinations of the eight flags are made
/// once (reserved bits, which the text does not show, are formatted each time).
fn flags_text(flags: flow::TcpFlags) -> std::borrow::Cow<'static, str> {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    match usize::from(flags.0) {
        low @ 0..=0xFF => {
            let texts = TEXTS.get_or_init(|| (0..=0xFF).map(|f| flow::TcpFlags(f).to_string()).collect());
            std::borrow::Cow::Borrowed(texts[low].as_str())
        }
        _ => std::borrow::Cow::Owned(flags.to_string()),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// History letters, in time order: `S` SYN, `h` SYN-ACK, `r` RST from the server side,
/// `i` ICMP unreachable, `t` ICMP time exceeded, `d` other server segment, `A` client ACK,
/// `R` client RST; `r` after `h` is a reset of the established connection. A packet the client ignored is followed by `!`.
pub fn history(a: &Attempt) -> String {
    // (time, SYNs before other packets at the same time, letter, ignored)
    let mut items: smallvec::SmallVec<[(Timestamp, u8, u8, bool); 16]> =
        a.syn_times.iter().map(|t| (*t, 0, b'S', false)).collect();
    for e in &a.events {
        let c = match e.role {
            Role::SynAck => b'h',
            Role::Rst => b'r',
            Role::IcmpUnreachable => b'i',
            Role::IcmpTimeExceeded => b't',
            Role::ServerOther => b'd',
            Role::ClientAck => b'A',
            Role::ClientRst => b'R',
            Role::ResetAfterHandshake => b'r',
        };
        let ignored = e.role.is_answer() && !e.acceptable;
        items.push((e.obs.ts, 1, c, ignored));
    }
    // Stable: packets at the same time keep their order.
    items.sort_by_key(|(t, k, _, _)| (*t, *k));
    let mut out = String::with_capacity(items.len() + items.iter().filter(|i| i.3).count());
    for (_, _, c, ignored) in items {
        out.push(char::from(c));
        if ignored {
            out.push('!');
        }
    }
    out
}

fn record(id: u64, file: &str, a: &Attempt, v: Verdict) -> AttemptRecord {
    let out = outcome(a);
    let client_error = attribute::client_error(a);
    let waited_ms = (out == Outcome::NoAnswer).then(|| round3(a.closed.0.millis_since(a.start)));
    let packets: Vec<AnswerRecord> = a.events.iter().map(|e| answer_record(a, e)).collect();
    // The answer is one of the packets (`Attempt::answer`'s choice).
    let answer = a
        .answer()
        .and_then(|ans| a.events.iter().position(|e| std::ptr::eq(e, ans)))
        .map(|i| packets[i].clone());
    AttemptRecord {
        id,
        file: file.to_string(),
        client: a.client,
        server: a.server,
        isn: a.isn.0,
        first_syn: a.start.rfc3339(),
        syn_seen: a.syn_frame.is_some(),
        syn_frame: a.syn_frame,
        syns: a.syns,
        syn_times_ms: a.syn_times.iter().map(|t| round3(t.millis_since(a.start))).collect(),
        outcome: out,
        answer,
        packets,
        waited_ms,
        client_error,
        browser_error: attribute::browser_error(client_error),
        verdict: v.verdict,
        confidence: v.confidence,
        explanation: v.explanation,
        evidence: v.evidence,
        history: history(a),
        anomalies: a.anomalies.names(),
        closed: a.closed.1,
    }
}

/// A destination is named a SYN flood with at least this many attempts: fewer is a retry
/// storm or a busy client, and a real flood (the reason `--max-listed` exists) has far more.
pub const FLOOD_MIN_ATTEMPTS: u64 = 1000;
/// A flood also comes from at least this many distinct client addresses (estimated): many
/// attempts from a few clients are a misbehaving client or a load test, not a flood of
/// (spoofed) sources.
pub const FLOOD_MIN_SOURCES: u64 = 100;
/// And at least this share (percent) of its attempts got no answer: the flood's SYNs are
/// dropped or the server is overwhelmed. A server answering a flood with SYN-ACKs (SYN
/// cookies) cannot be told from a busy server by the SYNs and their answers alone, and one
/// answering with RSTs is a closed port hit by many clients: neither is named here.
pub const FLOOD_MIN_NO_ANSWER_PERCENT: u64 = 90;

/// Whether a destination's counts make it a SYN flood (before counting its sources).
fn flood_candidate(d: &Destination) -> bool {
    d.attempts >= FLOOD_MIN_ATTEMPTS && d.no_answer * 100 >= d.attempts * FLOOD_MIN_NO_ANSWER_PERCENT
}

/// The capture-wide hint naming a flood.
fn flood_hint(f: &Flood) -> String {
    format!(
        "{} got a SYN flood: {} attempts from about {} source addresses, {} of them unanswered; its no-answer attempts are the flood, not clients being refused one by one",
        f.server, f.attempts, f.estimated_sources, f.no_answer
    )
}

/// A hash map with the fast (keyed) hasher.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

fn summarize(records: &[AttemptRecord], hints: Vec<String>, folded: Folded) -> Summary {
    let mut s = Summary {
        attempts: records.len() as u64 + folded.attempts,
        unlisted_attempts: folded.attempts,
        hints,
        ..Summary::default()
    };
    // One row per server (tens of thousands on a scan), room made once; the listed attempts'
    // servers by a fast hasher.
    let rows = records.len() + folded.by_dest.len();
    let mut dests: Vec<Destination> = Vec::with_capacity(rows);
    let mut index: FastMap<flow::Endpoint, usize> =
        FastMap::with_capacity_and_hasher(records.len(), Default::default());
    // Verdict counts of the rows with failures (most rows of a big capture have none).
    let mut verdicts: Vec<Option<Box<VerdictCounts>>> = Vec::with_capacity(rows);
    let mut totals = Totals::default();
    for r in records {
        totals.outcomes[r.outcome as usize] += 1;
        totals.verdicts.add(r.verdict, 1);
        let i = *index.entry(r.server).or_insert_with(|| {
            dests.push(Destination::new(r.server));
            verdicts.push(None);
            dests.len() - 1
        });
        dests[i].count(r.outcome);
        if r.outcome != Outcome::Accepted {
            verdicts[i].get_or_insert_with(Default::default).add(r.verdict, 1);
        }
    }
    // Attempts beyond the listing cap, in the order of their destinations: the keys sorted (as
    // numbers, which order as `Endpoint`s do), the counts taken out of the map in that order
    // (moving them all into a list to sort would touch as much fresh memory again).
    let mut by_dest = folded.by_dest;
    let mut order: Vec<(bool, u128, u16)> = by_dest.keys().map(sort_key).collect();
    order.sort_unstable();
    // Distinct sources of the unlisted attempts, per destination row.
    let mut folded_sources: Vec<sketch::Sources> = Vec::new();
    for key in order {
        let server = endpoint_of(key);
        let Some(c) = by_dest.remove(&server) else {
            continue;
        };
        // A new row, unless listed attempts went to the same server.
        let i = index.get(&server).copied().unwrap_or_else(|| {
            dests.push(Destination::new(server));
            verdicts.push(None);
            dests.len() - 1
        });
        let d = &mut dests[i];
        let [accepted, refused, unreachable, no_answer] = c.outcomes;
        d.attempts += accepted + refused + unreachable + no_answer;
        d.accepted += accepted;
        d.refused += refused;
        d.unreachable += unreachable;
        d.no_answer += no_answer;
        let failures = c.failure_verdicts();
        totals.add_folded(c.outcomes, failures.as_ref());
        if let Some(more) = failures {
            verdicts[i].get_or_insert_with(Default::default).merge(&more);
        }
        if !matches!(c.sources, sketch::Sources::None) {
            if folded_sources.len() <= i {
                folded_sources.resize_with(i + 1, Default::default);
            }
            folded_sources[i] = c.sources;
        }
    }
    drop(by_dest);
    // Floods: sources are counted only for destinations the counts already point to, so
    // the listed attempts need no sketch per destination.
    let mut sources: FastMap<usize, sketch::Sources> = dests
        .iter()
        .enumerate()
        .filter(|(_, d)| flood_candidate(d))
        .map(|(i, _)| (i, folded_sources.get_mut(i).map(std::mem::take).unwrap_or_default()))
        .collect();
    drop(folded_sources);
    if !sources.is_empty() {
        for r in records {
            if let Some(src) = index.get(&r.server).and_then(|i| sources.get_mut(i)) {
                src.add(r.client.ip);
            }
        }
    }
    let mut candidates: Vec<(usize, sketch::Sources)> = sources.into_iter().collect();
    candidates.sort_by_key(|(i, _)| *i);
    for (i, src) in candidates {
        let d = &dests[i];
        let estimated_sources = src.estimate();
        if estimated_sources >= FLOOD_MIN_SOURCES {
            let f = Flood {
                server: d.server,
                attempts: d.attempts,
                estimated_sources,
                no_answer: d.no_answer,
            };
            s.hints.push(flood_hint(&f));
            s.floods.push(f);
        }
    }
    s.other_destinations = folded.other_destinations;
    // Attempts to destinations beyond the cap: in the capture-wide counts only.
    totals.add_folded(folded.other.outcomes, folded.other.failure_verdicts().as_ref());
    totals.into_summary(&mut s);
    for (d, v) in dests.iter_mut().zip(verdicts) {
        d.verdict = v.and_then(|v| v.most_common()).map(VerdictKind::name);
    }
    s.destinations = dests;
    s
}

/// A key that orders endpoints as `Endpoint`'s `Ord` does: IPv4 before IPv6, then address, then
/// port ([`endpoint_of`] gives the endpoint back).
fn sort_key(e: &flow::Endpoint) -> (bool, u128, u16) {
    match e.ip {
        IpAddr::V4(a) => (false, u128::from(a.to_bits()), e.port),
        IpAddr::V6(a) => (true, a.to_bits(), e.port),
    }
}

/// The endpoint of a [`sort_key`].
fn endpoint_of((v6, bits, port): (bool, u128, u16)) -> flow::Endpoint {
    let ip = if v6 {
        IpAddr::V6(std::net::Ipv6Addr::from_bits(bits))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::from_bits(bits as u32))
    };
    flow::Endpoint { ip, port }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::testutil::{pcap, Tcp, C4, S4};

    /// A pcap of `n` SYNs, written to a fresh temporary file (gzip-compressed when `gzip`).
    fn capture_file(name: &str, n: u16, gzip: bool) -> std::path::PathBuf {
        let frames: Vec<(f64, Vec<u8>)> = (0..n)
            .map(|i| {
                let s = Tcp::syn(
                    IpAddr::V4(Ipv4Addr::from(C4)),
                    30_000 + i,
                    IpAddr::V4(Ipv4Addr::from(S4)),
                    80,
                    1,
                );
                (f64::from(i) * 0.01, s.frame())
            })
            .collect();
        let mut bytes = pcap(1, &frames);
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&bytes).unwrap();
            bytes = gz.finish().unwrap();
        }
        let path = std::env::temp_dir().join(format!("synrst-lib-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Frames of every kind that [`Batch`] tells apart: IPv4 SYNs opening attempts (repeated,
    /// with data, with a bad checksum),
    /// an IPv6 SYN, answers (SYN-ACK, RST, ICMP), a client ACK and a frame that is not IP.
    fn mixed_frames() -> Vec<(f64, Vec<u8>)> {
        use crate::testutil::{icmp4_unreach, C6, S6};
        let (c4, s4) = (IpAddr::V4(Ipv4Addr::from(C4)), IpAddr::V4(Ipv4Addr::from(S4)));
        let accepted = Tcp::syn(c4, 40_000, s4, 443, 1000);
        let refused = Tcp::syn(c4, 40_001, s4, 81, 2000);
        let mut with_data = Tcp::syn(c4, 40_002, s4, 80, 3000);
        with_data.payload = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        let unreachable = Tcp::syn(c4, 40_003, s4, 82, 4000);
        let v6 = Tcp::syn(IpAddr::from(C6), 40_004, IpAddr::from(S6), 443, 5000);
        let mut bad_checksum = Tcp::syn(c4, 40_005, s4, 83, 6000).frame();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 0xff;
        let mut client_ack = Tcp::syn(c4, 40_000, s4, 443, 1001);
        (client_ack.syn, client_ack.ack) = (false, Some(7001));
        let mut not_ip = accepted.frame();
        not_ip[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        vec![
            (0.0, accepted.frame()),
            (0.0001, accepted.frame()),
            (0.01, Tcp::synack_to(&accepted, 7000).frame()),
            (0.02, client_ack.frame()),
            (0.1, refused.frame()),
            (0.11, Tcp::rst_to(&refused).frame()),
            (0.2, with_data.frame()),
            (0.3, unreachable.frame()),
            (0.31, icmp4_unreach(S4, C4, 3, &unreachable.ip_bytes(), 60)),
            (0.4, v6.frame()),
            (0.5, bad_checksum),
            (0.6, not_ip),
            (1.5, refused.frame()),
            // After the others' timeouts: they close before it starts.
            (10.0, Tcp::syn(c4, 40_009, s4, 80, 9000).frame()),
        ]
    }

    #[test]
    fn a_batch_holds_a_syn_in_48_bytes() {
        // The point of Item: a SYN flood's frames cross from core to core in one cache line
        // and a bit (an Observation is 144 bytes).
        assert_eq!(std::mem::size_of::<Item>(), 48);
    }

    #[test]
    fn syns_read_in_batches_give_the_report_of_frames_fed_one_by_one() {
        let frames = mixed_frames();
        let path = std::env::temp_dir().join(format!("synrst-lib-{}-mixed", std::process::id()));
        std::fs::write(&path, pcap(1, &frames)).unwrap();
        let source = Source::Path(path.clone());
        let batched = analyze(
            &AnalyzeConfig {
                sources: vec![source.clone()],
                track: TrackConfig::default(),
                progress: None,
            },
            None,
        )
        .unwrap();
        let mut engine = Engine::new(TrackConfig::default(), None);
        engine.begin_source(source.display());
        let info = capture::read_capture(&source, |frame| engine.frame(frame)).unwrap();
        engine.end_source(info);
        let one_by_one = engine.finish();
        let _ = std::fs::remove_file(path);
        // Every kind was there: attempts of all four outcomes, a SYN with data, a bad
        // checksum, a skipped frame.
        assert_eq!(batched.summary.attempts, 7);
        assert_eq!(batched.capture.decoded, frames.len() as u64 - 1);
        assert_eq!(batched.summary.by_outcome.len(), 4, "{:?}", batched.summary.by_outcome);
        let json = |r: &Report| serde_json::to_string(r).unwrap();
        assert!(json(&batched).contains("syn_with_data"));
        assert!(json(&batched).contains("bad_checksum"));
        assert_eq!(json(&batched), json(&one_by_one));
    }

    #[test]
    fn attempts_beyond_the_listing_are_counted_alike_whether_streamed_or_not() {
        // Evicted and timed-out attempts, most of them nothing but their SYN, past a listing
        // of three: without a callback the tracker hands the unanswered ones over as parts
        // (Sink::closed_unanswered); with one, every attempt is written out and streamed.
        let (s4, other) = (
            IpAddr::V4(Ipv4Addr::from(S4)),
            IpAddr::V4(Ipv4Addr::new(198, 19, 0, 11)),
        );
        let mut frames = Vec::new();
        for i in 0..60u16 {
            let t = f64::from(i) * 0.01;
            let client = IpAddr::V4(Ipv4Addr::new(198, 18, (i / 200) as u8, (i % 200) as u8 + 1));
            let syn = Tcp::syn(
                client,
                30_000 + i,
                if i % 7 == 0 { other } else { s4 },
                80,
                u32::from(i),
            );
            frames.push((t, syn.frame()));
            if i % 5 == 0 {
                frames.push((t + 0.001, Tcp::rst_to(&syn).frame()));
            }
            if i % 11 == 0 {
                let v6 = Tcp::syn(
                    IpAddr::from(crate::testutil::C6),
                    30_000 + i,
                    IpAddr::from(crate::testutil::S6),
                    80,
                    1,
                );
                frames.push((t + 0.002, v6.frame()));
            }
        }
        // A gap: what is still in flight times out.
        frames.push((10.0, Tcp::syn(IpAddr::from(C4), 1, s4, 80, 1).frame()));
        let path = std::env::temp_dir().join(format!("synrst-lib-{}-folded", std::process::id()));
        std::fs::write(&path, pcap(1, &frames)).unwrap();
        let cfg = AnalyzeConfig {
            sources: vec![Source::Path(path.clone())],
            track: TrackConfig {
                max_in_flight: 4,
                ..TrackConfig::default()
            },
            progress: None,
        };
        let counted = analyze_listing(&cfg, 3, None).unwrap();
        let mut streamed_ids = Vec::new();
        let mut on_closed = |r: &AttemptRecord| streamed_ids.push(r.id);
        let streamed = analyze_listing(&cfg, 3, Some(&mut on_closed)).unwrap();
        let _ = std::fs::remove_file(path);
        assert_eq!(counted.summary.attempts, 67);
        assert_eq!(streamed_ids.len(), 67, "every attempt streamed");
        assert_eq!(counted.summary.unlisted_attempts, 64);
        assert!(
            counted.capture.attempts_evicted > 30,
            "{}",
            counted.capture.attempts_evicted
        );
        let dest = |r: &Report, ip: IpAddr| {
            let d = r.summary.destinations.iter().find(|d| d.server.ip == ip).unwrap();
            (d.attempts, d.refused, d.no_answer)
        };
        assert_eq!(dest(&counted, other), (9, 2, 7));
        let json = |r: &Report| serde_json::to_string(r).unwrap();
        assert_eq!(json(&counted), json(&streamed));
    }

    #[test]
    fn an_ipv4_syn_crosses_in_a_few_bytes_unchanged() {
        let o = decode::decode(&capture::Frame {
            ts: Timestamp(1_500_000_000_123_456_789),
            number: 42,
            link: capture::LinkType::ETHERNET,
            data: &Tcp::syn(Ipv4Addr::from(C4), 40_000, Ipv4Addr::from(S4), 443, 0xdead_beef).frame(),
            orig_len: 0,
        })
        .unwrap();
        let syn = track::Syn::of(&o).unwrap();
        let small = decode::Syn4::of(&o).unwrap();
        assert_eq!(track::Syn::of_v4(&small, o.ts), syn);
        let keyer = Tracker::new(TrackConfig::default()).keyer();
        assert_eq!(keyer.syn4_hash(&small), keyer.first_hash(&o));
        assert_eq!(sketch::mark(IpAddr::V4(small.src)), keyer.client_mark(&o));
        // Not a SYN that opens an attempt: kept whole.
        let mut answer = o;
        if let L4::Tcp(t) = &mut answer.l4 {
            t.flags = flow::TcpFlags(flow::TcpFlags::SYN | flow::TcpFlags::ACK);
        }
        assert!(track::Syn::of(&answer).is_none());
        assert!(decode::Syn4::of(&answer).is_none());
    }

    #[test]
    fn progress_counts_every_input_byte_once_compressed_bytes_for_gzip() {
        // Larger than the first read (1 MiB), so the reading thread counts too.
        let plain = capture_file("progress-plain.pcap", 30_000, false);
        let gz = capture_file("progress.pcap.gz", 300, true);
        let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
        assert!(size(&plain) > 2 << 20, "{}", size(&plain));
        let counter = Arc::new(AtomicU64::new(0));
        let cfg = AnalyzeConfig {
            sources: vec![Source::Path(plain.clone()), Source::Path(gz.clone())],
            track: TrackConfig::default(),
            progress: Some(Arc::clone(&counter)),
        };
        let report = analyze(&cfg, None).unwrap();
        assert_eq!(report.summary.attempts, 30_300);
        assert_eq!(counter.load(Ordering::Relaxed), size(&plain) + size(&gz));
        let _ = std::fs::remove_file(plain);
        let _ = std::fs::remove_file(gz);
    }

    #[test]
    fn flag_texts_are_display() {
        for f in (0..=0xFFFu16).chain([0xF012, u16::MAX]) {
            let flags = flow::TcpFlags(f);
            assert_eq!(flags_text(flags), flags.to_string(), "{f:#x}");
        }
    }

    /// The summary's rows and counts are the same whether attempts are listed one by one or
    /// counted per destination beyond the listing (`summarize` merges the two), and the rows
    /// of counted destinations come after the listed ones, in `Endpoint` order.
    #[test]
    fn destinations_are_counted_alike_listed_or_not() {
        use crate::testutil::{icmp4_unreach, C6, S6};
        let c4 = IpAddr::V4(Ipv4Addr::from(C4));
        let mut frames = Vec::new();
        for i in 0..300u16 {
            let t = f64::from(i) * 0.01;
            // Seven IPv4 servers and five IPv6 ones (one of them ::198.19.0.3, whose 128-bit
            // number is that of an IPv4 address), visited out of order, on two ports each.
            let k = (i * 7) % 12;
            let server: [u8; 4] = [198, 19, 0, k as u8];
            let (client, server_ip) = if k < 7 {
                (c4, IpAddr::V4(Ipv4Addr::from(server)))
            } else if k == 7 {
                (IpAddr::from(C6), IpAddr::V6(std::net::Ipv6Addr::from_bits(0xc613_0003)))
            } else {
                let mut s6 = S6;
                s6[15] = k as u8;
                (IpAddr::from(C6), IpAddr::from(s6))
            };
            let syn = Tcp::syn(client, 30_000 + i, server_ip, 80 + (i / 48) % 2, u32::from(i));
            frames.push((t, syn.frame()));
            match ((i / 12 + i) % 4, server_ip) {
                (0, _) => frames.push((t + 0.001, Tcp::synack_to(&syn, 7).frame())),
                (1, _) => frames.push((t + 0.001, Tcp::rst_to(&syn).frame())),
                (2, IpAddr::V4(_)) => {
                    frames.push((t + 0.001, icmp4_unreach(server, C4, 3, &syn.ip_bytes(), 60)));
                }
                _ => {}
            }
        }
        // A gap: what is still in flight times out.
        frames.push((100.0, Tcp::syn(c4, 1, IpAddr::V4(Ipv4Addr::from(S4)), 80, 1).frame()));
        let path = std::env::temp_dir().join(format!("synrst-lib-{}-rows", std::process::id()));
        std::fs::write(&path, pcap(1, &frames)).unwrap();
        let cfg = AnalyzeConfig {
            sources: vec![Source::Path(path.clone())],
            track: TrackConfig::default(),
            progress: None,
        };
        let listed = analyze_listing(&cfg, 1_000, None).unwrap();
        // 30 listed, the other attempts counted (and at most 30 rows for them).
        let counted = analyze_listing(&cfg, 30, None).unwrap();
        let _ = std::fs::remove_file(path);
        assert_eq!(listed.summary.unlisted_attempts, 0);
        assert_eq!(counted.summary.unlisted_attempts, 271);
        assert_eq!(counted.summary.other_destinations, 0);
        let (a, b) = (&listed.summary, &counted.summary);
        assert_eq!(
            (a.attempts, &a.by_outcome, &a.by_verdict),
            (b.attempts, &b.by_outcome, &b.by_verdict)
        );
        assert_eq!(a.by_outcome.len(), 4, "{:?}", a.by_outcome);
        let rows = |s: &Summary| -> BTreeMap<flow::Endpoint, String> {
            s.destinations.iter().map(|d| (d.server, format!("{d:?}"))).collect()
        };
        assert_eq!(rows(a).len(), 25);
        assert_eq!(rows(a), rows(b));
        // The listed attempts' servers, each once, as they first come.
        let mut first_listed: Vec<flow::Endpoint> = Vec::new();
        for r in &counted.attempts {
            if !first_listed.contains(&r.server) {
                first_listed.push(r.server);
            }
        }
        assert!(first_listed.len() >= 5, "{first_listed:?}");
        let (head, tail) = b.destinations.split_at(first_listed.len());
        assert_eq!(head.iter().map(|d| d.server).collect::<Vec<_>>(), first_listed);
        assert!(tail.windows(2).all(|w| w[0].server < w[1].server), "{tail:?}");
    }

    #[test]
    fn endpoint_sort_keys_order_as_endpoints_and_give_them_back() {
        let mut ends: Vec<flow::Endpoint> = [
            "198.19.0.3",
            "::198.19.0.3",
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "2001:db8::1",
            "ffff::1",
            "198.19.0.2",
            "::1",
        ]
        .iter()
        .flat_map(|ip| {
            [0u16, 80, 65535].map(|port| flow::Endpoint {
                ip: ip.parse().unwrap(),
                port,
            })
        })
        .collect();
        ends.reverse();
        for e in &ends {
            assert_eq!(endpoint_of(sort_key(e)), *e);
        }
        let mut by_key = ends.clone();
        by_key.sort_by_key(sort_key);
        ends.sort();
        assert_eq!(by_key, ends);
    }

    #[test]
    fn a_destination_verdict_is_its_most_common_then_first_by_name() {
        let mut v = VerdictCounts::default();
        assert_eq!(v.most_common(), None);
        v.add(VerdictKind::Unknown, 2);
        v.add(VerdictKind::PathFirewall, 2);
        v.add(VerdictKind::ClosedPort, 1);
        assert_eq!(v.most_common(), Some(VerdictKind::PathFirewall));
        v.add(VerdictKind::FilteredOrDown, 2);
        assert_eq!(v.most_common(), Some(VerdictKind::FilteredOrDown));
        v.add(VerdictKind::ClosedPort, 2);
        assert_eq!(v.most_common(), Some(VerdictKind::ClosedPort));
        let mut w = VerdictCounts::default();
        w.add(VerdictKind::Unknown, 5);
        v.merge(&w);
        assert_eq!(v.most_common(), Some(VerdictKind::Unknown));
        assert_eq!(v.iter().map(|(_, n)| n).sum::<u64>(), 14);
    }

    /// Both halves, in key order, with their positions: the same as one thread.
    #[test]
    fn in_parallel_keeps_order_and_positions() {
        for n in [0, 1, PARALLEL_MIN - 1, PARALLEL_MIN, 1001] {
            let items: BTreeMap<u64, String> = (0..n as u64)
                .map(|k| (k * 7 % 1009 + k * 1009, format!("item {k}")))
                .collect();
            let want: Vec<(usize, String)> = items.values().cloned().enumerate().collect();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let got = in_parallel(items, |i, s| {
                threads.lock().expect("lock").insert(std::thread::current().id());
                (i, s.clone())
            });
            assert_eq!(got, want, "{n} items");
            let used = threads.into_inner().expect("lock").len();
            assert_eq!(
                used,
                if n >= PARALLEL_MIN { 2 } else { n.min(1) },
                "threads for {n} items"
            );
        }
    }
}
