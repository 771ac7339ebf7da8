//! How far an import is: on a terminal a progress bar (objects done of the
//! total once the listing has counted them, bytes, lines/s, ETA), else a
//! log line every few seconds; log lines print above the bar.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar, once an import on a terminal made one; log lines go through it.
static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// A `tracing` writer to standard error that keeps the bar intact.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BAR.get() {
            Some(bar) if !bar.is_hidden() => {
                bar.suspend(|| io::stderr().write_all(buf))?;
                Ok(buf.len())
            }
            _ => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

/// Counters the import's tasks update.
#[derive(Debug, Default)]
pub struct Counters {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: AtomicU64,
    /// Objects to work on, known once listing finished.
    pub total: AtomicU64,
    pub listing_finished: AtomicBool,
    /// Every object finished or given up: the reporter stops.
    pub finished: AtomicBool,
}

/// Reads the counters every tick and shows them.
pub struct Reporter {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
    interval: Duration,
}

impl Reporter {
    /// A bar when `terminal`, else a log line every `interval`.
    pub fn new(terminal: bool, interval: Duration) -> Reporter {
        let bar = terminal.then(|| {
            let bar = BAR.get_or_init(|| {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} objects {msg} ETA {eta}",
                    )
                    .expect("a valid template"),
                );
                bar
            });
            bar.clone()
        });
        Reporter {
            bar,
            started: Instant::now(),
            last_log: Instant::now(),
            interval,
        }
    }

    /// Shows `counters` with the global `bytes` and `lines` so far.
    pub fn tick(&mut self, counters: &Counters, bytes: u64, lines: u64) {
        let finished =
            counters.done.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let lines_per_sec = lines as f64 / elapsed;
        let total = counters
            .listing_finished
            .load(Ordering::Relaxed)
            .then(|| counters.total.load(Ordering::Relaxed));
        match &self.bar {
            Some(bar) => {
                bar.set_length(total.unwrap_or(finished.max(1)));
                bar.set_position(finished);
                bar.set_message(format!(
                    "{}, {lines_per_sec:.0} lines/s, {} failed",
                    human_bytes(bytes),
                    counters.failed.load(Ordering::Relaxed)
                ));
                bar.tick();
            }
            None if self.last_log.elapsed() >= self.interval => {
                self.last_log = Instant::now();
                tracing::info!(
                    done = counters.done.load(Ordering::Relaxed),
                    failed = counters.failed.load(Ordering::Relaxed),
                    skipped = counters.skipped.load(Ordering::Relaxed),
                    total = total.map_or_else(|| "listing".to_owned(), |t| t.to_string()),
                    bytes,
                    lines,
                    lines_per_sec = lines_per_sec.round() as u64,
                    "import progress"
                );
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_do() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
