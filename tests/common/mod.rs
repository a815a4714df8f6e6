//! Shared helpers for the integration tests: the public corpus, temporary files, and small
//! synthetic captures built with `synrst::testutil`.
//!
//! Each integration binary uses only part of this module.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use synrst::testutil::{icmp_error, pcap, Tcp, C4, R4, S4};

/// pcap link type for Ethernet.
pub const ETHERNET: u32 = 1;

/// `../shared/corpus` next to the repository, when present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.join("truth.tsv").is_file().then_some(dir)
}

/// A path under the system temp directory that is removed (file or directory) when dropped.
/// Names are unique per process, test and call, so tests can run in parallel.
pub struct TempPath {
    path: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TempPath {
    /// A fresh path (nothing is created) whose file name ends with `suffix`.
    pub fn new(test: &str, suffix: &str) -> TempPath {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("synrst-test-{}-{test}-{n}{suffix}", std::process::id());
        TempPath {
            path: std::env::temp_dir().join(name),
        }
    }

    /// A fresh file holding `bytes`.
    pub fn with_bytes(test: &str, suffix: &str, bytes: &[u8]) -> TempPath {
        let t = TempPath::new(test, suffix);
        std::fs::write(&t.path, bytes).expect("write temp file");
        t
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.path.is_dir() {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn client() -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(C4))
}

fn server() -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(S4))
}

/// The client's ACK completing a handshake.
pub fn client_ack(syn: &Tcp, synack: &Tcp) -> Tcp {
    Tcp {
        seq: syn.seq.wrapping_add(1),
        ack: Some(synack.seq.wrapping_add(1)),
        syn: false,
        options: false,
        ip_id: syn.ip_id.wrapping_add(1),
        ..syn.clone()
    }
}

/// SYN → SYN-ACK → ACK, starting at `t` seconds, client port `sport`, server port `dport`.
pub fn accepted_at(t: f64, sport: u16, dport: u16) -> Vec<(f64, Vec<u8>)> {
    let s = Tcp::syn(client(), sport, server(), dport, 1_000 + u32::from(sport));
    let sa = Tcp::synack_to(&s, 7_000_000).ttl(58);
    let ack = client_ack(&s, &sa);
    vec![(t, s.frame()), (t + 0.020, sa.frame()), (t + 0.0201, ack.frame())]
}

/// SYN → SYN-ACK → ACK to port 443.
pub fn accepted() -> Vec<(f64, Vec<u8>)> {
    accepted_at(0.0, 40_000, 443)
}

/// SYN → RST+ACK (ack = ISN+1) from the server itself: a closed port.
pub fn refused() -> Vec<(f64, Vec<u8>)> {
    let s = Tcp::syn(client(), 40_001, server(), 81, 2_000);
    vec![(0.5, s.frame()), (0.521, Tcp::rst_to(&s).ttl(58).frame())]
}

/// SYN → ICMP 3/13 (communication administratively prohibited) from a router on the path.
pub fn prohibited() -> Vec<(f64, Vec<u8>)> {
    let s = Tcp::syn(client(), 40_002, server(), 8443, 3_000);
    let icmp = icmp_error(IpAddr::V4(Ipv4Addr::from(R4)), client(), 3, 13, &s.ip_bytes(), 64);
    vec![(1.0, s.frame()), (1.002, icmp)]
}

/// SYN, two retransmissions (1 s and 3 s later), then silence.
pub fn silence() -> Vec<(f64, Vec<u8>)> {
    let s = Tcp::syn(client(), 40_003, server(), 9999, 4_000);
    vec![(2.0, s.frame()), (3.0, s.frame()), (5.0, s.frame())]
}

/// The frames of several scenarios merged in time order.
pub fn merge(parts: &[Vec<(f64, Vec<u8>)>]) -> Vec<(f64, Vec<u8>)> {
    let mut all: Vec<(f64, Vec<u8>)> = parts.iter().flatten().cloned().collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all
}

/// An Ethernet pcap of these frames.
pub fn pcap_of(frames: &[(f64, Vec<u8>)]) -> Vec<u8> {
    pcap(ETHERNET, frames)
}
