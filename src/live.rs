//! `synrst live` and `synrst interfaces`: capture through libpcap, explain each attempt as it
//! resolves, write the final report on SIGINT/SIGTERM, `--duration` or `--count`.
//!
//! Order of operations, as tcpdump does it: open the output files, open the capture (needs
//! root or CAP_NET_RAW+CAP_NET_ADMIN), then drop root for `--user` before reading a packet.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

use synrst::capture::live::{Live, LiveOptions};
use synrst::capture::{CaptureInfo, Format as FileFormat, Source, Timestamp};
use synrst::model::{AttemptRecord, LiveSummary};
use synrst::report::{self, Format};
use synrst::track::TrackConfig;
use synrst::Engine;

use crate::cli::LiveArgs;

/// `synrst interfaces`.
pub fn interfaces() -> anyhow::Result<ExitCode> {
    let list = synrst::capture::live::interfaces()?;
    let mut out = std::io::stdout().lock();
    for i in list {
        writeln!(
            out,
            "{}{}{}{}",
            i.name,
            if i.up { "" } else { " [down]" },
            if i.loopback { " [loopback]" } else { "" },
            if i.addresses.is_empty() {
                String::new()
            } else {
                format!("  {}", i.addresses.join(" "))
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `synrst live`.
pub fn run(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    let Some(interface) = args.interface.clone() else {
        bail!("synrst live needs an interface: -i IFACE (`synrst interfaces` lists them; `any` captures on all)");
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!("--timeout must be between 0 and 3600 seconds, got {}", args.timeout);
    }
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            bail!("--duration must be a positive number of seconds, got {d}");
        }
    }
    let output = crate::config::output(&args.output);
    if output.evidence.is_some() && args.write.is_none() {
        bail!("--evidence with live capture needs -w FILE: the evidence is cut from the written capture");
    }

    // 1. Output files first, while we may still be root.
    let mut out = crate::open_output(&output.path)?;
    let mut pcapng = match &args.write {
        Some(p) => Some(PcapNgWriter::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ))?),
        None => None,
    };
    if let Some(p) = &output.evidence {
        File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
    }

    // 2. The capture.
    let mut live = Live::open(&LiveOptions {
        interface: interface.clone(),
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: args.promisc,
    })?;
    if let Some(w) = pcapng.as_mut() {
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::from(live.link().0),
            snaplen: args.snaplen.max(0) as u32,
            options: vec![
                InterfaceDescriptionOption::IfName(interface.clone().into()),
                InterfaceDescriptionOption::IfTsResol(9),
                InterfaceDescriptionOption::IfFilter(format!("\0{}", live.filter()).into_bytes().into()),
            ],
        };
        w.write_pcapng_block(idb)?;
    }

    // 3. Drop root.
    let owned: Vec<&Path> = [
        output.path.as_deref(),
        args.write.as_deref(),
        output.evidence.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(user) = drop_privileges(&args.user, &owned)? {
        eprintln!("synrst: capturing on {} as user {user}", interface);
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot install the signal handler")?;
    }

    // 4. Capture until told to stop.
    let streaming = matches!(output.format, Format::Table | Format::Ndjson);
    let reported = Cell::new(0u64);
    let mut write_err: Option<std::io::Error> = None;
    let started = Instant::now();
    let mut frames = 0u64;
    let mut link_types = BTreeMap::new();
    let report = {
        let mut on_closed = |r: &AttemptRecord| {
            reported.set(reported.get() + 1);
            if !streaming || write_err.is_some() {
                return;
            }
            let mut r = r.clone();
            if output.anonymize {
                synrst::anonymize::anonymize_attempt(synrst::anonymize::anonymizer(), &mut r);
            }
            let res = match output.format {
                Format::Ndjson => report::write_ndjson_attempt(&r, &mut out),
                _ => writeln!(out, "{}", line(&r)),
            };
            if let Err(e) = res.and_then(|_| out.flush()) {
                write_err = Some(e);
            }
        };
        let track = TrackConfig {
            timeout_ns: (args.timeout * 1e9) as i64,
            ..TrackConfig::default()
        };
        let mut engine = Engine::new(track, Some(&mut on_closed));
        let name = format!("live:{}", interface);
        engine.begin_source(name.clone());
        let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
        loop {
            if stop.load(Ordering::SeqCst)
                || deadline.is_some_and(|d| Instant::now() >= d)
                || args.count.is_some_and(|c| reported.get() >= c)
            {
                break;
            }
            let mut pcap_err = None;
            let got = live.next(|frame| {
                frames += 1;
                *link_types.entry(frame.link.0).or_insert(0u64) += 1;
                if let Some(w) = pcapng.as_mut() {
                    let epb = EnhancedPacketBlock {
                        interface_id: 0,
                        timestamp: Duration::from_nanos(frame.ts.0.max(0) as u64),
                        original_len: frame.orig_len,
                        data: frame.data.into(),
                        options: vec![],
                    };
                    if let Err(e) = w.write_pcapng_block(epb) {
                        pcap_err = Some(e);
                    }
                }
                engine.frame(frame);
            })?;
            if let Some(e) = pcap_err {
                return Err(anyhow::anyhow!("cannot write the capture file: {e}"));
            }
            if !got {
                engine.advance(wall_clock());
            }
        }
        let counters = live.counters().unwrap_or_default();
        engine.end_source(CaptureInfo {
            path: name,
            format: FileFormat::Live,
            gzip: false,
            frames,
            link_types,
            skipped: BTreeMap::new(),
            bytes: 0,
            warnings: Vec::new(),
        });
        let dropped = u64::from(counters.dropped) + u64::from(counters.if_dropped);
        if dropped > 0 {
            engine.warn(synrst::capture::Warning {
                file: format!("live:{}", interface),
                offset: None,
                message: format!(
                    "{dropped} packet(s) dropped ({} by the kernel, {} by the interface): answers may be missing; narrow the capture with -f",
                    counters.dropped, counters.if_dropped
                ),
            });
        }
        engine.summary_mut().live = Some(LiveSummary {
            interface: interface.clone(),
            link_type: live.link().0,
            filter: live.filter().to_string(),
            received: u64::from(counters.received),
            dropped_kernel: u64::from(counters.dropped),
            dropped_interface: u64::from(counters.if_dropped),
            seconds: started.elapsed().as_secs_f64(),
        });
        engine.finish()
    };
    if let Some(e) = write_err {
        return Err(e.into());
    }
    if let Some(mut w) = pcapng {
        w.get_mut().flush()?;
    }
    let sources: Vec<Source> = args.write.iter().map(|p: &PathBuf| Source::Path(p.clone())).collect();
    crate::emit(report, &output, &sources, &mut out)
}

/// One line per attempt for a terminal, as it resolves.
fn line(r: &AttemptRecord) -> String {
    let time = r.first_syn.get(11..23).unwrap_or(&r.first_syn);
    format!(
        "{time} #{} {} -> {} {} {} ({}){}: {}",
        r.id,
        r.client,
        r.server,
        r.outcome.name(),
        r.verdict.name(),
        r.confidence.name(),
        r.client_error.map(|e| format!(" {e}")).unwrap_or_default(),
        report::escape(&r.explanation)
    )
}

fn wall_clock() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Switches to `user` when running as root (tcpdump -Z). Files in `owned` are handed to the
/// user first so the report can still be written. Returns the user switched to.
fn drop_privileges(user: &str, owned: &[&Path]) -> anyhow::Result<Option<String>> {
    use nix::unistd::{chown, setgid, setgroups, setuid, Uid, User};
    if !Uid::effective().is_root() || user == "root" {
        return Ok(None);
    }
    let u = User::from_name(user)
        .with_context(|| format!("cannot look up user {user}"))?
        .with_context(|| format!("no user {user} on this system (choose one with --user)"))?;
    for p in owned {
        chown(*p, Some(u.uid), Some(u.gid)).with_context(|| format!("cannot hand {} to {user}", p.display()))?;
    }
    setgroups(&[u.gid]).context("setgroups")?;
    setgid(u.gid).context("setgid")?;
    setuid(u.uid).context("setuid")?;
    if setuid(Uid::from_raw(0)).is_ok() {
        bail!("dropping root privileges failed: could regain root");
    }
    Ok(Some(user.to_string()))
}
