//! A progress bar on stderr, for runs longer than a second, only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Runs shorter than this never show a bar.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// Redraw at most this often.
const REDRAW: Duration = Duration::from_millis(100);
/// Width of the bar in cells.
const WIDTH: usize = 30;

/// The bar's state.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    total: Option<u64>,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// A bar for `total` requests (or a time-bounded run when `None`); drawn only if `wanted`
    /// and stderr is a terminal.
    #[must_use]
    pub fn new(wanted: bool, total: Option<u64>, started: Option<Instant>) -> Self {
        Self { enabled: wanted && std::io::stderr().is_terminal(), total, started: started.unwrap_or_else(Instant::now), last: None }
    }

    /// Redraws after `done` requests; `time_fraction` is the share of a time limit used.
    pub fn update(&mut self, done: u64, time_fraction: Option<f64>) {
        if !self.enabled {
            return;
        }
        let elapsed = self.started.elapsed();
        if elapsed < SHOW_AFTER || self.last.is_some_and(|l| l.elapsed() < REDRAW) {
            return;
        }
        self.last = Some(Instant::now());
        #[allow(clippy::cast_precision_loss)]
        let count_fraction = self.total.filter(|t| *t > 0).map(|t| done as f64 / t as f64);
        let fraction = count_fraction.into_iter().chain(time_fraction).fold(0.0f64, f64::max).clamp(0.0, 1.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let filled = (fraction * WIDTH as f64).round() as usize;
        #[allow(clippy::cast_precision_loss)]
        let iops = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r[{bar}] {:3.0}% {done} I/Os, {iops:.0} IOPS ", fraction * 100.0);
        let _ = e.flush();
    }

    /// Clears the bar if it was drawn.
    pub fn finish(&mut self) {
        if self.last.is_some() {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
            self.last = None;
        }
    }
}
