//! Decision-table tests for attribution, one per arm, through the whole pipeline
//! (pcap bytes → decode → track → baselines → verdict). Packets are built with etherparse's
//! `PacketBuilder` (synrst::testutil); hop distances mimic the lab: server 3 hops away
//! (TTL 61), a firewall 1 hop away (TTL 63).

use std::net::Ipv4Addr;

use synrst::attribute::{Confidence, VerdictKind};
use synrst::capture::Source;
use synrst::model::{AttemptRecord, Report};
use synrst::testutil::{icmp4_unreach, pcap, Tcp, C4, R4, S4};
use synrst::track::{Outcome, TrackConfig};
use synrst::AnalyzeConfig;

fn analyze(name: &str, frames: &[(f64, Vec<u8>)]) -> Report {
    let path = std::env::temp_dir().join(format!("synrst-attr-{}-{name}.pcap", std::process::id()));
    std::fs::write(&path, pcap(1, frames)).unwrap();
    let cfg = AnalyzeConfig {
        sources: vec![Source::Path(path.clone())],
        track: TrackConfig::default(),
        progress: None,
    };
    let r = synrst::analyze(&cfg, None).unwrap();
    let _ = std::fs::remove_file(&path);
    r
}

fn syn(port: u16, sport: u16) -> Tcp {
    Tcp::syn(
        Ipv4Addr::from(C4),
        sport,
        Ipv4Addr::from(S4),
        port,
        1000 + u32::from(sport),
    )
}

/// A working connection to port 80 of the server: the host's baseline (TTL 61 = 3 hops).
fn baseline() -> Vec<(f64, Vec<u8>)> {
    let s = syn(80, 40000);
    vec![(0.0, s.frame()), (0.010, Tcp::synack_to(&s, 77).ttl(61).frame())]
}

fn attempt_to(r: &Report, port: u16) -> &AttemptRecord {
    r.attempts
        .iter()
        .find(|a| a.server.port == port)
        .expect("attempt to port")
}

fn signals(a: &AttemptRecord) -> Vec<&str> {
    a.evidence.iter().map(|e| e.signal).collect()
}

#[test]
fn rst_at_host_distance_is_closed_port_and_says_host_firewall_looks_the_same() {
    let mut f = baseline();
    let s = syn(81, 40001);
    f.push((1.0, s.frame()));
    f.push((1.010, Tcp::rst_to(&s).ttl(61).frame()));
    let r = analyze("closed", &f);
    let a = attempt_to(&r, 81);
    assert_eq!(a.outcome, Outcome::Refused);
    assert_eq!(a.verdict, VerdictKind::ClosedPort);
    assert_eq!(a.confidence, Confidence::High);
    assert!(signals(a).contains(&"host_firewall_indistinguishable"));
    assert_eq!(a.client_error, Some("ECONNREFUSED"));
    assert_eq!(a.browser_error, Some("net::ERR_CONNECTION_REFUSED"));
    assert_eq!(a.history, "Sr");
}

#[test]
fn rst_at_host_distance_with_other_header_habits_is_closed_port_with_lower_confidence() {
    let mut f = baseline();
    // A second packet of the server (data after the handshake), DF set like the SYN-ACK.
    let s80 = syn(80, 40000);
    let mut data = Tcp::synack_to(&s80, 78).ttl(61);
    data.syn = false;
    data.payload = vec![1; 10];
    f.push((0.02, data.frame()));
    let s = syn(81, 40001);
    f.push((1.0, s.frame()));
    let mut rst = Tcp::rst_to(&s).ttl(61);
    rst.df = false;
    f.push((1.010, rst.frame()));
    let r = analyze("habits", &f);
    let a = attempt_to(&r, 81);
    assert_eq!(a.verdict, VerdictKind::ClosedPort, "habits never accuse the path alone");
    assert_eq!(a.confidence, Confidence::Medium);
    assert!(signals(a).contains(&"rst_df"), "{:?}", signals(a));
}

#[test]
fn rst_nearer_than_host_is_path_firewall() {
    let mut f = baseline();
    let s = syn(81, 40001);
    f.push((1.0, s.frame()));
    f.push((1.001, Tcp::rst_to(&s).ttl(63).frame()));
    let r = analyze("pathrst", &f);
    let a = attempt_to(&r, 81);
    assert_eq!(a.verdict, VerdictKind::PathFirewall);
    assert_eq!(a.confidence, Confidence::High);
    let hops = a.evidence.iter().find(|e| e.signal == "rst_hops").unwrap();
    assert!(hops.observed.starts_with("1 hop "), "{hops:?}");
    assert!(hops.baseline.as_deref().unwrap().starts_with("3 hops"), "{hops:?}");
}

#[test]
fn rst_without_baseline_is_closed_port_low_and_says_what_to_capture() {
    let s = syn(81, 40001);
    let r = analyze("nobase", &[(0.0, s.frame()), (0.001, Tcp::rst_to(&s).ttl(63).frame())]);
    let a = attempt_to(&r, 81);
    assert_eq!(a.verdict, VerdictKind::ClosedPort);
    assert_eq!(a.confidence, Confidence::Low);
    assert!(signals(a).contains(&"no_baseline"));
}

#[test]
fn rst_then_synack_race_is_injection() {
    let s = syn(443, 40002);
    let r = analyze(
        "race",
        &[
            (0.0, s.frame()),
            (0.001, Tcp::rst_to(&s).ttl(63).frame()),
            (0.020, Tcp::synack_to(&s, 5).ttl(61).frame()),
        ],
    );
    let a = attempt_to(&r, 443);
    assert_eq!(a.outcome, Outcome::Refused);
    assert_eq!(a.verdict, VerdictKind::PathFirewall);
    assert_eq!(a.confidence, Confidence::High);
    assert!(signals(a).contains(&"rst_then_synack"));
    assert_eq!(a.history, "Srh");
}

#[test]
fn forged_rst_with_wrong_ack_is_ignored_and_flagged_on_accepted_attempt() {
    let s = syn(443, 40003);
    let mut forged = Tcp::rst_to(&s).ttl(63);
    forged.ack = Some(s.seq);
    forged.window = 16384;
    let r = analyze(
        "ignored",
        &[
            (0.0, s.frame()),
            (0.001, forged.frame()),
            (0.020, Tcp::synack_to(&s, 5).ttl(61).frame()),
        ],
    );
    let a = attempt_to(&r, 443);
    assert_eq!(a.outcome, Outcome::Accepted);
    assert_eq!(a.verdict, VerdictKind::Accepted);
    assert!(signals(a).contains(&"rst_ignored_by_client"));
    assert!(signals(a).contains(&"rst_then_synack"));
    assert_eq!(a.history, "Sr!h");
}

#[test]
fn icmp_admin_prohibited_from_router_is_path_firewall() {
    let s = syn(22, 40004);
    let icmp = icmp4_unreach(R4, C4, 13, &s.ip_bytes(), 63);
    let r = analyze("prohib", &[(0.0, s.frame()), (0.001, icmp)]);
    let a = attempt_to(&r, 22);
    assert_eq!(a.outcome, Outcome::Unreachable);
    assert_eq!(a.verdict, VerdictKind::PathFirewall);
    assert_eq!(a.confidence, Confidence::High);
    assert_eq!(a.client_error, Some("EHOSTUNREACH"));
}

#[test]
fn icmp_port_unreachable_from_server_is_host_firewall() {
    let s = syn(22, 40005);
    let icmp = icmp4_unreach(S4, C4, 3, &s.ip_bytes(), 61);
    let r = analyze("hostfw", &[(0.0, s.frame()), (0.001, icmp)]);
    let a = attempt_to(&r, 22);
    assert_eq!(a.verdict, VerdictKind::HostFirewall);
    assert_eq!(a.confidence, Confidence::High);
    assert_eq!(a.client_error, Some("ECONNREFUSED"));
}

#[test]
fn host_unreachable_after_arp_wait_is_host_down_but_at_once_is_a_rule() {
    let s = syn(80, 40006);
    let late = icmp4_unreach(R4, C4, 1, &s.ip_bytes(), 62);
    let r = analyze("arp", &[(0.0, s.frame()), (3.05, late)]);
    let a = attempt_to(&r, 80);
    assert_eq!(a.verdict, VerdictKind::HostUnreachable);
    assert_eq!(a.confidence, Confidence::High);

    let fast = icmp4_unreach(R4, C4, 1, &s.ip_bytes(), 62);
    let r = analyze("fastunreach", &[(0.0, s.frame()), (0.002, fast)]);
    assert_eq!(attempt_to(&r, 80).verdict, VerdictKind::PathFirewall);
}

#[test]
fn net_unreachable_is_no_route() {
    let s = syn(80, 40007);
    let icmp = icmp4_unreach(R4, C4, 0, &s.ip_bytes(), 63);
    let r = analyze("noroute", &[(0.0, s.frame()), (0.001, icmp)]);
    let a = attempt_to(&r, 80);
    assert_eq!(a.verdict, VerdictKind::NetUnreachable);
    assert_eq!(a.client_error, Some("ENETUNREACH"));
}

#[test]
fn silence_while_host_answers_other_port_is_a_filter() {
    let mut f = baseline();
    let s = syn(8080, 40008);
    f.push((1.0, s.frame()));
    f.push((2.0, s.frame()));
    f.push((4.0, s.frame()));
    f.push((10.0, syn(80, 40100).frame()));
    let r = analyze("drop", &f);
    let a = attempt_to(&r, 8080);
    assert_eq!(a.outcome, Outcome::NoAnswer);
    assert_eq!(a.syns, 3);
    assert_eq!(a.verdict, VerdictKind::FilteredOrDown);
    assert_eq!(a.confidence, Confidence::High);
    assert!(signals(a).contains(&"host_alive"));
    assert_eq!(a.client_error, Some("ETIMEDOUT"));
}

#[test]
fn silence_without_baseline_is_filtered_or_down_medium() {
    let s = syn(8080, 40009);
    let r = analyze("drop2", &[(0.0, s.frame()), (1.0, s.frame()), (3.0, s.frame())]);
    let a = attempt_to(&r, 8080);
    assert_eq!(a.verdict, VerdictKind::FilteredOrDown);
    assert_eq!(a.confidence, Confidence::Medium);
    assert!(signals(a).contains(&"no_baseline"));
}

#[test]
fn one_destination_failing_while_others_work_is_a_hint() {
    let mut f = baseline();
    let other = Tcp::syn(Ipv4Addr::from(C4), 40200, Ipv4Addr::new(198, 19, 0, 99), 443, 5);
    f.push((0.5, other.frame()));
    f.push((0.6, Tcp::rst_to(&other).ttl(61).frame()));
    let r = analyze("hint", &f);
    assert!(
        r.summary.hints.iter().any(|h| h.contains("198.19.0.99")),
        "{:?}",
        r.summary.hints
    );
}
