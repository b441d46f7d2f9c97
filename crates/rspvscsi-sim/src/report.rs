//! The summary of a run: the table, the JSON object, and the verdict.

use serde_json::{Value, json};

use scsiport_sim::{BugCheck, Error, Stats};

use crate::checks::Check;
use crate::engine::Outcome;
use crate::extents;
use crate::rig::{DiskInfo, Durability, Rig};

/// Errors, mismatches, violations and extents listed one by one on stderr (the rest counted).
const SHOW: usize = 10;

/// Everything a run reports.
#[derive(Debug)]
pub struct Report {
    /// Miniport name.
    pub miniport: String,
    /// HBA name as given (`model`, `uio:...`).
    pub hba: String,
    /// Schedule name.
    pub mode: String,
    /// Seed.
    pub seed: u64,
    /// Workload name.
    pub workload: String,
    /// Queue depth.
    pub qd: u32,
    /// Request size (bytes), if fixed.
    pub bs: Option<u64>,
    /// Buffer offset.
    pub buffer_offset: u16,
    /// Whether the run did I/O.
    pub io: bool,
    /// Disks found.
    pub disks: Vec<DiskInfo>,
    /// I/O counts.
    pub outcome: Outcome,
    /// Check results.
    pub checks: Vec<Check>,
    /// The port's counters.
    pub stats: Stats,
    /// Whether the verifier checked the run (`--no-verifier`).
    pub verifier: bool,
    /// Every verifier record (fatal and warnings).
    pub violations: Vec<BugCheck>,
    /// The bug check that stopped the machine.
    pub bugcheck: Option<BugCheck>,
    /// Device-model complaints.
    pub device_faults: Vec<String>,
    /// Extra failures found by the caller (discovery, scenario expectations).
    pub extra_failures: Vec<String>,
    /// Unit attentions retried outside the engine (discovery, checks).
    pub setup_ua_retries: u32,
    /// Load time (wall, ms).
    pub load_ms: f64,
    /// uio: interrupts received, register accesses refused.
    pub uio: Option<(u64, u64)>,
    /// What the end of a write run did to make it durable.
    pub durability: Option<Durability>,
}

/// The run's parameters, as reported.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// Workload name.
    pub workload: String,
    /// Queue depth.
    pub qd: u32,
    /// Fixed request size in bytes.
    pub bs: Option<u64>,
    /// Buffer offset.
    pub buffer_offset: u16,
    /// Whether the run did I/O (the table then has the I/O rows).
    pub io: bool,
}

impl Report {
    /// Collects the report of a rig after a run.
    #[must_use]
    pub fn new(rig: &Rig, info: RunInfo, outcome: Outcome, checks: Vec<Check>) -> Self {
        Self {
            miniport: rig.config.miniport_key(),
            hba: rig.config.hba.to_string(),
            mode: rig.config.mode_name().into(),
            seed: rig.config.seed,
            workload: info.workload,
            qd: info.qd,
            bs: info.bs,
            buffer_offset: info.buffer_offset,
            io: info.io,
            disks: rig.disks.clone(),
            outcome,
            checks,
            stats: rig.machine.stats(),
            verifier: rig.config.verifier,
            violations: rig.machine.violations(),
            bugcheck: rig.machine.bugcheck(),
            device_faults: rig.device_faults(),
            extra_failures: Vec::new(),
            setup_ua_retries: rig.ua_retries,
            load_ms: rig.load_time.as_secs_f64() * 1e3,
            uio: rig.uio.as_ref().map(|u| (u.interrupt_wakeups(), u.rejected_accesses())),
            durability: None,
        }
    }

    /// The run's header: machine, disks, workload. Printed before the run starts.
    #[must_use]
    pub fn header(rig: &Rig, info: &RunInfo) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rspvscsi-sim: {} on {}, {} schedule, seed {}{}",
            rig.config.miniport_name(),
            rig.hba_description(),
            rig.config.mode_name(),
            rig.config.seed,
            if rig.config.verifier { "" } else { ", verifier off" }
        );
        for d in &rig.disks {
            #[allow(clippy::cast_precision_loss)]
            let mib = d.bytes() as f64 / f64::from(1u32 << 20);
            let medium = rig.model_disks.iter().find(|m| m.target == d.target).and_then(|m| m.image.as_ref()).map_or_else(String::new, |p| {
                format!(", image {}{}", p.display(), if rig.config.read_only { " (read-only)" } else { "" })
            });
            let _ = writeln!(s, "  disk t{}: {} blocks x {} ({mib:.1} MiB) {} {}{medium}", d.target, d.blocks, d.block_size, d.vendor, d.product);
        }
        if info.io {
            let bs = info.bs.map_or_else(|| "random 512..64K".to_string(), |b| b.to_string());
            let _ = writeln!(s, "  workload: {}, qd {}, bs {bs}, buffer offset {}", info.workload, info.qd, info.buffer_offset);
        } else {
            let _ = writeln!(s, "  workload: {}", info.workload);
        }
        s
    }

    /// Fatal verifier violations.
    #[must_use]
    pub fn fatal_violations(&self) -> usize {
        self.violations.iter().filter(|v| v.rule.fatal()).count().max(usize::from(self.bugcheck.is_some()))
    }

    /// Why the run failed; empty when it passed.
    #[must_use]
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if let Some(b) = &self.bugcheck {
            f.push(format!("verifier: {b}"));
        } else if self.fatal_violations() > 0 {
            f.push(format!("verifier: {} violations", self.fatal_violations()));
        }
        match &self.outcome.halted {
            Some(Error::BugCheck(_)) | None => {}
            Some(e) => f.push(format!("machine: {e}")),
        }
        if self.outcome.errors > 0 {
            f.push(format!("{} I/O errors (first: {})", self.outcome.errors, self.outcome.error_log.first().map_or("", String::as_str)));
        }
        if self.outcome.mismatches > 0 {
            f.push(format!(
                "{} sectors read back did not hold what was written (first: {})",
                self.outcome.mismatches,
                self.outcome.mismatch_log.first().map_or("", String::as_str)
            ));
        }
        for d in &self.device_faults {
            f.push(format!("device: {d}"));
        }
        for c in self.checks.iter().filter(|c| !c.ok) {
            f.push(format!("check failed: {}: {}", c.name, c.detail));
        }
        if let Some(d) = &self.durability {
            for (t, ok, detail) in &d.synchronize_cache {
                if !ok {
                    f.push(format!("SYNCHRONIZE CACHE to t{t} failed: {detail}"));
                }
            }
            for (p, ok, detail) in &d.fsync {
                if !ok {
                    f.push(format!("fsync of {} failed: {detail}", p.display()));
                }
            }
        }
        f.extend(self.extra_failures.iter().cloned());
        f
    }

    /// Whether the run passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The nearest-rank percentile `p` of `v`, found by selection (linear), not a sort: the
    /// report is part of every benchmarked run, and a sort would cost each I/O a log factor.
    /// `v`'s order changes.
    fn percentile(v: &mut [u64], p: f64) -> u64 {
        if v.is_empty() {
            return 0;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        *v.select_nth_unstable(rank.min(v.len()) - 1).1
    }

    fn latency(&self) -> (u64, u64, u64, u64) {
        let mut v = self.outcome.latencies.clone();
        let mean = if v.is_empty() { 0 } else { v.iter().sum::<u64>() / v.len() as u64 };
        let max = v.iter().copied().max().unwrap_or(0);
        (Self::percentile(&mut v, 50.0), Self::percentile(&mut v, 99.0), max, mean)
    }

    #[allow(clippy::cast_precision_loss)]
    fn iops(&self) -> (f64, f64) {
        let o = &self.outcome;
        // After a ramp, the requests and the time since it ended.
        let (ios, wall, machine_ns) = match o.ramp {
            Some((n, w, m)) => (o.ios.saturating_sub(n), o.wall.saturating_sub(w), o.machine_ns.saturating_sub(m)),
            None => (o.ios, o.wall, o.machine_ns),
        };
        let per = |s: f64| if s > 0.0 { ios as f64 / s } else { 0.0 };
        (per(wall.as_secs_f64()), per(machine_ns as f64 / 1e9))
    }

    /// The summary as one JSON object.
    #[must_use]
    pub fn json(&self) -> Value {
        let (p50, p99, max, mean) = self.latency();
        let (iops, machine_iops) = self.iops();
        let o = &self.outcome;
        let failures = self.failures();
        json!({
            "result": if failures.is_empty() { "pass" } else { "fail" },
            "failures": failures,
            "miniport": self.miniport,
            "hba": self.hba,
            "mode": self.mode,
            "seed": self.seed,
            "workload": self.workload,
            "qd": self.qd,
            "bs": self.bs,
            "buffer_offset": self.buffer_offset,
            "disks": self.disks.iter().map(|d| json!({
                "target": d.target, "blocks": d.blocks, "block_size": d.block_size,
                "vendor": d.vendor, "product": d.product,
            })).collect::<Vec<_>>(),
            "ios": o.ios,
            "reads": o.reads,
            "writes": o.writes,
            "bytes": o.bytes,
            "errors": o.errors,
            "mismatches": o.mismatches,
            "sectors_checked": o.sectors_checked,
            "unit_attention_retries": o.ua_retries + u64::from(self.setup_ua_retries),
            "bus_resets_submitted": o.resets,
            "in_flight_at_resets": o.in_flight_at_resets,
            "reissued_after_reset": o.reset_reissues,
            "latency_ns": { "p50": p50, "p99": p99, "max": max, "mean": mean },
            "iops": iops,
            "ramp_ios": o.ramp.map(|(n, _, _)| n),
            "ramp_ms": o.ramp.map(|(_, w, _)| w.as_secs_f64() * 1e3),
            "machine_iops": machine_iops,
            "elapsed_ms": o.wall.as_secs_f64() * 1e3,
            "load_ms": self.load_ms,
            "machine_ms": nanos_ms(o.machine_ns),
            "interrupts": self.stats.interrupts,
            "spurious_interrupts": self.stats.spurious_interrupts,
            "completions_per_interrupt": self.stats.completions_per_interrupt(),
            "dpcs": self.stats.dpc_calls,
            "completions_per_dpc": self.stats.completions_per_dpc(),
            "register_accesses": self.stats.register_accesses,
            "registers_emulated": self.stats.registers_emulated,
            "start_io_calls": self.stats.start_io_calls,
            "busy_retries": self.stats.busy_retries,
            "timeouts": self.stats.timeouts,
            "hw_reset_bus_calls": self.stats.bus_resets,
            "resets_detected": self.stats.resets_detected,
            "verifier": if self.verifier { "on" } else { "off" },
            "verifier_violations": self.fatal_violations(),
            "verifier_warnings": self.violations.iter().filter(|v| !v.rule.fatal()).count(),
            "bugcheck": self.bugcheck.as_ref().map(|b| json!({
                "code": format!("{:#x}", b.code),
                "rule": format!("{:?}", b.rule),
                "doc": b.doc,
                "message": b.message,
                "text": b.rule.text(),
                "routine": b.routine,
                "params": b.params.iter().map(|p| format!("{p:#x}")).collect::<Vec<_>>(),
            })),
            "violations": self.violations.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "device_faults": self.device_faults,
            "checks": self.checks.iter().map(|c| json!({"check": c.name, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
            "error_log": o.error_log,
            "mismatch_log": o.mismatch_log,
            "mismatch_extents": o.mismatch_extents.json(),
            "unwritten_extents": o.unwritten.json(),
            "synchronize_cache": self.durability.as_ref().map(|d| d.synchronize_cache.iter().map(|(t, ok, detail)| json!({"target": t, "ok": ok, "detail": detail})).collect::<Vec<_>>()),
            "fsync": self.durability.as_ref().map(|d| d.fsync.iter().map(|(p, ok, detail)| json!({"image": p, "ok": ok, "detail": detail})).collect::<Vec<_>>()),
            "uio": self.uio.map(|(w, r)| json!({"interrupt_wakeups": w, "rejected_accesses": r})),
        })
    }

    /// The summary as a table (after [`Self::header`], which the run printed first).
    #[must_use]
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let (p50, p99, max, _) = self.latency();
        let (iops, machine_iops) = self.iops();
        let o = &self.outcome;
        let mut s = String::new();
        let us = |ns: u64| {
            #[allow(clippy::cast_precision_loss)]
            let v = ns as f64 / 1e3;
            format!("{v:.1} µs")
        };
        for c in &self.checks {
            let _ = writeln!(s, "  [{}] {}: {}", if c.ok { "ok" } else { "FAIL" }, c.name, c.detail);
        }
        s.push('\n');
        let deterministic = self.mode == "deterministic";
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "  {k:<24}{v}");
        };
        if self.io {
            row("I/Os", format!("{} ({} reads, {} writes, {:.1} MiB)", o.ios, o.reads, o.writes, bytes_mib(o.bytes)));
            let ramp = o.ramp.map_or(String::new(), |(n, w, _)| format!(", after a ramp of {n} I/Os in {:.1} ms", w.as_secs_f64() * 1e3));
            let wall = format!("{iops:.0} (wall {:.1} ms{ramp})", o.wall.as_secs_f64() * 1e3);
            row(
                "IOPS",
                if deterministic { format!("{wall}; in machine time {machine_iops:.0} ({:.1} ms)", nanos_ms(o.machine_ns)) } else { wall },
            );
            row("latency p50 / p99 / max", format!("{} / {} / {}", us(p50), us(p99), us(max)));
        }
        row("interrupts", format!("{} claimed, {} not ours", self.stats.interrupts, self.stats.spurious_interrupts));
        if self.stats.dpc_calls > 0 {
            // Storport: the ISR completes nothing, its DPC does.
            row("DPCs", format!("{}, {:.2} completions each", self.stats.dpc_calls, self.stats.completions_per_dpc()));
        } else {
            row("completions/interrupt", format!("{:.2}", self.stats.completions_per_interrupt()));
        }
        if self.stats.registers_emulated > 0 {
            // A loaded image touches its registers directly; each access is emulated.
            #[allow(clippy::cast_precision_loss)]
            let per_io = self.stats.registers_emulated as f64 / (o.ios.max(1) as f64);
            row("registers emulated", format!("{} of {} accesses ({per_io:.2} per I/O)", self.stats.registers_emulated, self.stats.register_accesses));
        }
        if o.resets > 0 || self.stats.bus_resets > 0 {
            row(
                "bus resets",
                format!(
                    "{} made with {} requests in flight, {} reissued; {} HwScsiResetBus calls, {} ResetDetected",
                    o.resets, o.in_flight_at_resets, o.reset_reissues, self.stats.bus_resets, self.stats.resets_detected
                ),
            );
        }
        row("unit attentions", format!("{} retried", o.ua_retries + u64::from(self.setup_ua_retries)));
        let warnings = self.violations.iter().filter(|v| !v.rule.fatal()).count();
        row(
            "verifier",
            if !self.verifier {
                "off (--no-verifier): nothing checked".into()
            } else if self.fatal_violations() == 0 {
                format!("clean (0 violations, {warnings} warnings)")
            } else {
                format!("{} VIOLATIONS, {warnings} warnings", self.fatal_violations())
            },
        );
        row("errors", o.errors.to_string());
        if self.io {
            row("data mismatches", format!("{} ({} sectors checked)", o.mismatches, o.sectors_checked));
        }
        if !o.unwritten.is_empty() {
            let x = o.unwritten.sorted();
            row("not written", format!("{} sectors in {} extents (listed on stderr and in --json)", o.unwritten.sectors(), x.len()));
        }
        if let Some(d) = &self.durability {
            let syncs: Vec<String> = d.synchronize_cache.iter().map(|(t, ok, _)| format!("t{t} {}", if *ok { "ok" } else { "FAILED" })).collect();
            let mut text = format!("SYNCHRONIZE CACHE {}", syncs.join(", "));
            if !d.fsync.is_empty() {
                let fs: Vec<String> = d.fsync.iter().map(|(p, ok, _)| format!("{} {}", p.display(), if *ok { "ok" } else { "FAILED" })).collect();
                let _ = write!(text, "; fsync {}", fs.join(", "));
            }
            row("made durable", text);
        }
        if let Some((w, r)) = self.uio {
            row("uio", format!("{w} interrupts received, {r} register accesses refused"));
        }
        let failures = self.failures();
        row("result", if failures.is_empty() { "PASS".to_string() } else { "FAIL".to_string() });
        s
    }

    /// Prints the failures, the bug check in full, and the logs, to stderr.
    pub fn print_failures(&self) {
        let failures = self.failures();
        if failures.is_empty() {
            return;
        }
        self.print_bugcheck();
        for f in &failures {
            eprintln!("rspvscsi-sim: FAIL: {f}");
        }
        self.print_logs();
    }

    /// Prints the bug check in full and the other violations, to stderr.
    pub fn print_bugcheck(&self) {
        if let Some(b) = &self.bugcheck {
            eprintln!("rspvscsi-sim: BUG CHECK {:#x} ({:?})", b.code, b.rule);
            eprintln!("  rule:    {}", b.rule.text());
            eprintln!("  doc:     {}", b.doc);
            eprintln!("  message: {}", b.message);
            eprintln!("  params:  {:#x} {:#x} {:#x}{}", b.params[0], b.params[1], b.params[2], b.routine.map_or_else(String::new, |r| format!(" (in {r})")));
        }
        let rest = self.violations.len().saturating_sub(usize::from(self.bugcheck.is_some()));
        for v in self.violations.iter().skip(usize::from(self.bugcheck.is_some())).take(SHOW) {
            eprintln!("rspvscsi-sim: {v}");
        }
        if rest > SHOW {
            eprintln!("rspvscsi-sim: … {} more violations (all in --json)", rest - SHOW);
        }
    }

    /// Prints the errors and mismatches after the first (which the failure lines name), each
    /// list cut with "… N more", and the extents of bad and unwritten sectors.
    pub fn print_logs(&self) {
        let o = &self.outcome;
        for e in o.error_log.iter().skip(1) {
            eprintln!("  error: {e}");
        }
        if o.errors > o.error_log.len() as u64 {
            eprintln!("  … {} more errors", o.errors - o.error_log.len() as u64);
        }
        for m in o.mismatch_log.iter().skip(1) {
            eprintln!("  mismatch: {m}");
        }
        if o.mismatches > o.mismatch_log.len() as u64 {
            eprintln!("  … {} more mismatches", o.mismatches - o.mismatch_log.len() as u64);
        }
        if !o.mismatch_extents.is_empty() {
            eprintln!("  sectors that did not hold what was written, by extent:");
            for l in extents::lines(&o.mismatch_extents.sorted(), SHOW, "    ", " (all in --json: mismatch_extents)") {
                eprintln!("{l}");
            }
        }
    }

    /// Prints the extents a write-pattern did not write (informational: --count and --seconds
    /// stop it early on purpose).
    pub fn print_unwritten(&self) {
        let x = self.outcome.unwritten.sorted();
        if x.is_empty() {
            return;
        }
        eprintln!("rspvscsi-sim: {} sectors were not written with the pattern:", self.outcome.unwritten.sectors());
        for l in extents::lines(&x, SHOW, "  ", " (all in --json: unwritten_extents)") {
            eprintln!("{l}");
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn bytes_mib(b: u64) -> f64 {
    b as f64 / f64::from(1u32 << 20)
}

#[allow(clippy::cast_precision_loss)]
fn nanos_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::Report;

    /// Selection answers what the nearest-rank definition over the sorted values answers.
    #[test]
    fn percentile_by_selection_is_the_nearest_rank() {
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        for n in [1usize, 2, 3, 7, 100, 101, 1000] {
            let v: Vec<u64> = (0..n)
                .map(|_| {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    r % 500
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            for p in [1.0, 50.0, 90.0, 99.0, 100.0] {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
                let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
                let mut w = v.clone();
                assert_eq!(Report::percentile(&mut w, p), sorted[rank - 1], "n {n} p {p}");
            }
        }
        assert_eq!(Report::percentile(&mut [], 50.0), 0);
    }
}
