//! A frame list (see `synrst_fuzz::parse_frames`) → decode → tracker with a small in-flight cap
//! → attribution, then the same frames as a pcapng through `analyze` and every report format.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use synrst::attribute::{self, Baselines, Verdict};
use synrst::capture::{Frame, LinkType, Timestamp};
use synrst::decode;
use synrst::track::{self, Attempt, Event, Sink, Tracker};

#[derive(Default)]
struct Collect {
    closed: Vec<Attempt>,
    late: usize,
}

impl Sink for Collect {
    fn closed(&mut self, a: Attempt) {
        self.closed.push(a);
    }
    fn late(&mut self, id: u64, _ts: Timestamp, _e: Option<Event>) {
        assert!(
            self.closed.iter().any(|a| a.id == id),
            "late packet for an attempt never closed"
        );
        self.late += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let list = synrst_fuzz::parse_frames(data);
    let mut tracker = Tracker::new(list.track);
    let mut baselines = Baselines::default();
    let mut sink = Collect::default();
    for (i, f) in list.frames.iter().enumerate() {
        let frame = Frame {
            ts: Timestamp(f.ts),
            link: LinkType(f.link),
            data: f.data,
            orig_len: f.orig_len,
            number: i as u64 + 1,
        };
        if let Ok(o) = decode::decode(&frame) {
            assert_eq!(o.ts, frame.ts);
            baselines.observe(&o);
            tracker.observe(&o, &mut sink);
            assert!(tracker.in_flight() <= list.track.max_in_flight, "in-flight cap");
        }
    }
    let stats = tracker.finish(&mut sink);
    assert_eq!(stats.attempts, sink.closed.len() as u64, "every attempt closed once");
    let ids: HashSet<u64> = sink.closed.iter().map(|a| a.id).collect();
    assert_eq!(ids.len(), sink.closed.len(), "attempt ids unique");
    for a in &sink.closed {
        assert!(a.events.len() <= track::MAX_EVENTS);
        assert!(a.syn_times.len() <= track::MAX_SYN_TIMES);
        baselines.observe_attempt(a);
    }
    let verdicts: Vec<Verdict> = sink
        .closed
        .iter()
        .map(|a| attribute::attribute(a, &baselines))
        .collect();
    for a in &sink.closed {
        let _ = attribute::browser_error(attribute::client_error(a));
        let _ = synrst::history(a);
        let _ = track::outcome(a);
    }
    let _ = attribute::capture_hints(
        sink.closed.iter().zip(verdicts.iter()).map(|(a, v)| (a.server.ip, v.verdict)),
        &baselines,
    );

    // The whole pipeline, reports included, over the same frames.
    if !list.frames.is_empty() {
        synrst_fuzz::analyze_bytes(&synrst_fuzz::pcapng(&list.frames), list.track, "frames");
    }
});
