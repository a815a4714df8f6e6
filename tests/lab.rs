//! The lab's captures against the lab's ground truth.
//!
//! `captures/` holds captures recorded by `lab/run.sh` from real kernels, with
//! `captures/truth.tsv` stating for every attempt the outcome, the verdict attribution must
//! find and the errno the client really got. The committed files are checked on every
//! `cargo test`; with `SYNRST_LAB=1` and root, the lab is re-run and its fresh captures are
//! checked the same way, so the committed files cannot drift from what kernels do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use synrst::attribute::Confidence;
use synrst::capture::Source;
use synrst::model::Report;
use synrst::track::TrackConfig;
use synrst::AnalyzeConfig;

struct Row {
    file: String,
    client: (String, u16),
    server: (String, u16),
    outcome: String,
    verdict: String,
    errno: Option<String>,
}

fn truth(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("truth.tsv")).expect("truth.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (f, ci, cp, si, sp, o, v, e) = (
        col("file"),
        col("client_ip"),
        col("client_port"),
        col("server_ip"),
        col("server_port"),
        col("outcome"),
        col("verdict"),
        col("client_errno"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[f].to_string(),
                client: (c[ci].to_string(), c[cp].parse().unwrap()),
                server: (c[si].to_string(), c[sp].parse().unwrap()),
                outcome: c[o].to_string(),
                verdict: c[v].to_string(),
                errno: (c[e] != "-").then(|| c[e].to_string()),
            }
        })
        .collect()
}

fn analyze(path: PathBuf) -> Report {
    let cfg = AnalyzeConfig {
        sources: vec![Source::Path(path)],
        track: TrackConfig::default(),
        progress: None,
    };
    synrst::analyze(&cfg, None).expect("analyse")
}

/// Checks every truth row of `dir` and that every attempt found has a truth row.
fn check(dir: &Path) {
    let rows = truth(dir);
    assert!(!rows.is_empty(), "no truth rows in {}", dir.display());
    let mut reports: HashMap<String, Report> = HashMap::new();
    let mut problems = Vec::new();
    for r in &rows {
        let rep = reports
            .entry(r.file.clone())
            .or_insert_with(|| analyze(dir.join(&r.file)));
        let found: Vec<_> = rep
            .attempts
            .iter()
            .filter(|a| {
                (a.client.ip.to_string(), a.client.port) == r.client
                    && (a.server.ip.to_string(), a.server.port) == r.server
            })
            .collect();
        let label = format!(
            "{} {}:{} -> {}:{}",
            r.file, r.client.0, r.client.1, r.server.0, r.server.1
        );
        if found.len() != 1 {
            problems.push(format!("{label}: {} attempts found, want 1", found.len()));
            continue;
        }
        let a = found[0];
        if a.outcome.name() != r.outcome || a.verdict.name() != r.verdict {
            problems.push(format!(
                "{label}: got {} / {}, want {} / {}: {}",
                a.outcome.name(),
                a.verdict.name(),
                r.outcome,
                r.verdict,
                a.explanation
            ));
        }
        if a.client_error.map(str::to_string) != r.errno {
            problems.push(format!(
                "{label}: client_error {:?}, the client got {:?}",
                a.client_error, r.errno
            ));
        }
        // Every lab scenario is decidable from its capture (RST captures carry a baseline).
        if a.confidence < Confidence::Medium {
            problems.push(format!("{label}: confidence {} below medium", a.confidence.name()));
        }
    }
    for (file, rep) in &reports {
        for a in &rep.attempts {
            let known = rows.iter().any(|r| {
                &r.file == file
                    && (a.client.ip.to_string(), a.client.port) == r.client
                    && (a.server.ip.to_string(), a.server.port) == r.server
            });
            if !known {
                problems.push(format!("{file}: attempt {} -> {} has no truth row", a.client, a.server));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn committed_lab_captures_match_their_truth() {
    check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("captures"));
}

#[test]
fn rerun_lab_captures_match_their_truth() {
    if std::env::var_os("SYNRST_LAB").is_none() {
        eprintln!("skipping the lab re-run: set SYNRST_LAB=1 (needs root, ip, nft, tcpdump, python3; about 90 s)");
        return;
    }
    let out = std::env::temp_dir().join(format!("synrst-lab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/run.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run the lab");
    assert!(status.success(), "lab/run.sh failed (see its output above)");
    check(&out);
    let _ = std::fs::remove_dir_all(&out);
}
