//! Per-adapter counters and the latency histogram.

/// Latency histogram with power-of-two buckets of nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// `buckets[i]` counts samples in `[2^i, 2^(i+1))` ns (bucket 0 also holds 0).
    pub buckets: Vec<u64>,
    /// Number of samples.
    pub count: u64,
    /// Sum of all samples (ns).
    pub sum_ns: u128,
    /// Smallest sample.
    pub min_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, ns: u64) {
        let b = (64 - ns.leading_zeros()).saturating_sub(1) as usize;
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, 0);
        }
        if let Some(slot) = self.buckets.get_mut(b) {
            *slot += 1;
        }
        self.min_ns = if self.count == 0 { ns } else { self.min_ns.min(ns) };
        self.max_ns = self.max_ns.max(ns);
        self.count += 1;
        self.sum_ns += u128::from(ns);
    }

    /// Merges another histogram in.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.min_ns = if self.count == 0 { other.min_ns } else { self.min_ns.min(other.min_ns) };
        self.max_ns = self.max_ns.max(other.max_ns);
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }

    /// Mean (ns).
    #[must_use]
    pub fn mean_ns(&self) -> u64 {
        if self.count == 0 { 0 } else { u64::try_from(self.sum_ns / u128::from(self.count)).unwrap_or(u64::MAX) }
    }

    /// The `p`-th percentile (0..=100), as the upper edge of its bucket, clamped to the maximum.
    #[must_use]
    pub fn percentile_ns(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = if i >= 63 { u64::MAX } else { (1u64 << (i + 1)) - 1 };
                return upper.min(self.max_ns);
            }
        }
        self.max_ns
    }
}

/// What happened on one adapter (or, summed, on a machine).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Upper-edge requests completed (the bus scan not included).
    pub ios: u64,
    /// Of those, completed with a status other than SUCCESS (`DATA_OVERRUN` included).
    pub errors: u64,
    /// ISR calls that returned TRUE.
    pub interrupts: u64,
    /// ISR calls that returned FALSE.
    pub spurious_interrupts: u64,
    /// SRBs the miniport completed (`RequestComplete` or `ScsiPortCompleteRequest`), scan included.
    pub completions: u64,
    /// Completions that happened inside an ISR or deferred-interrupt callback.
    pub completions_in_interrupt: u64,
    /// `HwScsiStartIo` (`HwStorStartIo`) calls.
    pub start_io_calls: u64,
    /// `HwStorBuildIo` calls (Storport).
    pub build_io_calls: u64,
    /// `HwStorDpcRoutine` calls (Storport).
    pub dpc_calls: u64,
    /// Completions that happened inside `HwStorDpcRoutine` (Storport).
    pub completions_in_dpc: u64,
    /// Storport: `HwStorInterrupt` and `HwStorDpcRoutine` calls that began while another thread
    /// was in `HwStorBuildIo` or `HwStorStartIo` of the same adapter (full duplex; always 0 in the
    /// deterministic schedule, which runs one routine at a time).
    pub overlapped_submissions: u64,
    /// `HwScsiEnableInterruptsCallback` calls.
    pub enable_callbacks: u64,
    /// `HwScsiDisableInterruptsCallback` calls.
    pub disable_callbacks: u64,
    /// `HwScsiTimer` calls.
    pub timer_calls: u64,
    /// Requests the port requeued after `SRB_STATUS_BUSY`.
    pub busy_retries: u64,
    /// Requests the port timed out.
    pub timeouts: u64,
    /// `HwScsiResetBus` calls.
    pub bus_resets: u64,
    /// `ResetDetected` notifications.
    pub resets_detected: u64,
    /// Register and port accesses the miniport made, whichever way (accessor routine, or a
    /// direct access by a loaded image).
    pub register_accesses: u64,
    /// Of those, direct accesses by a loaded image's code that faulted and were emulated.
    pub registers_emulated: u64,
    /// Submission → completion latency of `ios`.
    pub latency: Histogram,
    /// Fatal violations recorded.
    pub violations: u64,
    /// Warnings recorded.
    pub warnings: u64,
    /// Completed SRBs the full quarantine (`VerifierConfig::quarantine_all`) kept guarded.
    pub quarantined: u64,
    /// Of those, the ones released past its cap (`verifier::QUARANTINE_ALL_CAP`), whose memory
    /// could then be reused: 0 means every completed SRB stayed guarded for the whole run.
    pub quarantine_released: u64,
}

impl Stats {
    /// Completions per interrupt (completions in interrupt context / interrupts claimed).
    #[must_use]
    pub fn completions_per_interrupt(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        if self.interrupts == 0 { 0.0 } else { self.completions_in_interrupt as f64 / self.interrupts as f64 }
    }

    /// Completions per DPC routine call (completions in `HwStorDpcRoutine` / its calls).
    #[must_use]
    pub fn completions_per_dpc(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        if self.dpc_calls == 0 { 0.0 } else { self.completions_in_dpc as f64 / self.dpc_calls as f64 }
    }

    /// Adds another adapter's counters.
    pub fn merge(&mut self, o: &Stats) {
        self.ios += o.ios;
        self.errors += o.errors;
        self.interrupts += o.interrupts;
        self.spurious_interrupts += o.spurious_interrupts;
        self.completions += o.completions;
        self.completions_in_interrupt += o.completions_in_interrupt;
        self.start_io_calls += o.start_io_calls;
        self.build_io_calls += o.build_io_calls;
        self.dpc_calls += o.dpc_calls;
        self.completions_in_dpc += o.completions_in_dpc;
        self.overlapped_submissions += o.overlapped_submissions;
        self.enable_callbacks += o.enable_callbacks;
        self.disable_callbacks += o.disable_callbacks;
        self.timer_calls += o.timer_calls;
        self.busy_retries += o.busy_retries;
        self.timeouts += o.timeouts;
        self.bus_resets += o.bus_resets;
        self.resets_detected += o.resets_detected;
        self.register_accesses += o.register_accesses;
        self.registers_emulated += o.registers_emulated;
        self.quarantined += o.quarantined;
        self.quarantine_released += o.quarantine_released;
        self.latency.merge(&o.latency);
        self.violations = self.violations.max(o.violations);
        self.warnings = self.warnings.max(o.warnings);
    }
}
