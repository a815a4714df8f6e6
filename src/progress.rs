//! The progress bar of `synrst analyze` on standard error, for large files read while a person
//! watches (binary only: the library just counts bytes in `AnalyzeConfig::progress`).
//!
//! Shown only when standard error is a terminal, every input is a regular file (its size is
//! the total; gzip files count compressed bytes, so they qualify) and together they hold at
//! least [`MIN_BYTES`]. A thread polls the counter every [`TICK`]; dropping the [`Bar`] stops
//! it and clears the line, so nothing of it is left when the report is written.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use synrst::capture::Source;

/// Inputs smaller than this are read too fast for a bar to help.
pub const MIN_BYTES: u64 = 64 << 20;
/// How often the counter is read and the bar redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A running progress bar; dropping it clears it.
pub struct Bar {
    counter: Arc<AtomicU64>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Bar {
    /// Starts a bar for reading `sources`, when one should be shown (module doc).
    pub fn start(sources: &[Source]) -> Option<Bar> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let mut total = 0u64;
        for s in sources {
            let Source::Path(p) = s else {
                return None;
            };
            let meta = std::fs::metadata(p).ok().filter(|m| m.is_file())?;
            total += meta.len();
        }
        if total < MIN_BYTES {
            return None;
        }
        let counter = Arc::new(AtomicU64::new(0));
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("synrst: reading {bytes}/{total_bytes} {percent:>3}% [{wide_bar}] {eta} left")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.tick();
        let (stop, stopped) = channel::<()>();
        let seen = Arc::clone(&counter);
        let thread = std::thread::Builder::new()
            .name("synrst-progress".into())
            .spawn(move || {
                // Runs until the sender is dropped.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    bar.set_position(seen.load(Ordering::Relaxed).min(total));
                }
                bar.finish_and_clear();
            })
            .ok()?;
        Some(Bar {
            counter,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The byte counter the analysis adds to.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.counter)
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
