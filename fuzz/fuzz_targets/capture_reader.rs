//! Arbitrary bytes as a capture file → `synrst::analyze` → every report format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synrst::track::TrackConfig;

fuzz_target!(|data: &[u8]| {
    // A small in-flight cap so that eviction and tombstone paths run too.
    let track = TrackConfig {
        max_in_flight: 8,
        ..TrackConfig::default()
    };
    synrst_fuzz::analyze_bytes(data, track, "capture");
});
