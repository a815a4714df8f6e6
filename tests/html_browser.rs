//! The HTML report in a real browser: headless Chromium renders it and takes a screenshot.
//!
//! Skipped with a note when Chromium is not installed (Debian: `apt-get install chromium`),
//! unless `SYNRST_REQUIRE_BROWSER=1`. The screenshot is left in
//! `target/tmp/html_browser/report.png` for people to look at.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use synrst::capture::Source;
use synrst::report::{self, Format, Options};
use synrst::testutil::{icmp_error, pcap, Tcp, C4, R4, S4};
use synrst::track::TrackConfig;
use synrst::AnalyzeConfig;

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        for dir in ["/usr/bin", "/usr/local/bin", "/snap/bin"] {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The lab's mixed capture when present, else a built one with a race, an ARP wait and a
/// closed port.
fn source(dir: &Path) -> Source {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/lab-mixed.pcap");
    if lab.is_file() {
        return Source::Path(lab);
    }
    let (c, s, r) = (
        IpAddr::V4(Ipv4Addr::from(C4)),
        IpAddr::V4(Ipv4Addr::from(S4)),
        IpAddr::V4(Ipv4Addr::from(R4)),
    );
    let mut f = Vec::new();
    let ok = Tcp::syn(c, 40000, s, 80, 1);
    f.push((0.0, ok.frame()));
    f.push((0.01, Tcp::synack_to(&ok, 2).ttl(61).frame()));
    let race = Tcp::syn(c, 40001, s, 443, 3);
    f.push((1.0, race.frame()));
    f.push((1.004, Tcp::rst_to(&race).ttl(63).frame()));
    f.push((1.3, Tcp::synack_to(&race, 4).ttl(61).frame()));
    let dead = Tcp::syn(c, 40002, IpAddr::V4(Ipv4Addr::new(198, 19, 0, 99)), 80, 5);
    for t in [2.0, 3.0, 5.0] {
        f.push((t, dead.frame()));
    }
    f.push((5.05, icmp_error(r, c, 3, 1, &dead.ip_bytes(), 62)));
    let closed = Tcp::syn(c, 40003, s, 81, 6);
    f.push((6.0, closed.frame()));
    f.push((6.01, Tcp::rst_to(&closed).ttl(61).frame()));
    let path = dir.join("built.pcap");
    std::fs::write(&path, pcap(1, &f)).unwrap();
    Source::Path(path)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var_os("SYNRST_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
            panic!("SYNRST_REQUIRE_BROWSER=1 but no Chromium found (Debian: apt-get install chromium)");
        }
        eprintln!("skipping: no Chromium (Debian: apt-get install chromium; SYNRST_REQUIRE_BROWSER=1 makes this fail)");
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html_browser");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = AnalyzeConfig {
        sources: vec![source(&dir)],
        track: TrackConfig::default(),
        progress: None,
    };
    let r = synrst::analyze(&cfg, None).unwrap();
    assert!(r.attempts.iter().any(|a| a.verdict.name() != "accepted"));
    let mut html = Vec::new();
    report::write(&r, Format::Html, Options { all: false }, &mut html).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, &html).unwrap();
    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let profile = dir.join("profile");
    let _ = std::fs::remove_dir_all(&profile);

    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "chromium failed: {status}\n{err}");
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{err}", shot.display()));
    assert_eq!(png_size(&png), Some((1280, 2000)), "not a 1280x2000 PNG");
    // A blank page compresses to a few kilobytes; the report's text, tables and timelines
    // do not.
    assert!(png.len() > 40_000, "screenshot suspiciously small: {} bytes", png.len());
    eprintln!("screenshot: {}", shot.display());
}
