//! The program: parses the command line and runs what it asks for.

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use crate::cdb;
use crate::check_image;
use crate::checks::{self, Check};
use crate::cli::{Cli, Command, ProbeDiffArgs, RunArgs, WorkloadArg};
use crate::debug_exit;
use crate::engine::{self, Engine, Kind, Outcome, Spec};
use crate::pattern::{self, SECTOR};
use crate::probe;
use crate::probe_diff;
use crate::report::{Report, RunInfo};
use crate::rig::{Access, Rig, RigConfig, RigError};
use crate::scenario;
use crate::soak;
use crate::trace_cmd;

/// Exit status of a run that failed a check.
pub const EXIT_FAIL: u8 = 1;
/// Exit status of a usage error (as clap's).
pub const EXIT_USAGE: u8 = 2;

/// The disk the plain run uses when none is given.
pub const DEFAULT_DISK: &str = "ram:16M";

/// Entry point.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckImage(a)) => finish(check_image::run(&a), false),
        Some(Command::DebugExit { code }) => match debug_exit::write(code) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rspvscsi-sim: {e}");
                ExitCode::from(EXIT_FAIL)
            }
        },
        Some(Command::Scenario { names, run }) => finish(scenario::run(&names, &run), run.debug_exit),
        Some(Command::Probe { output, run }) => finish(probe::run(&run, output.as_deref()), run.debug_exit),
        Some(Command::ProbeDiff(a)) => finish(probe_diff_command(&a), false),
        Some(Command::Soak(a)) => finish(soak::run(&a), false),
        Some(Command::Cdb(a)) => finish(cdb::run(&a), a.run.debug_exit),
        Some(Command::TraceDiff(a)) => finish(trace_cmd::trace_diff(&a), false),
        Some(Command::TraceExport(a)) => finish(trace_cmd::trace_export(&a), false),
        None => finish(run(&cli.run), cli.run.debug_exit),
    }
}

/// `probe-diff`: compares two probe answers, or makes a golden file of one.
fn probe_diff_command(a: &ProbeDiffArgs) -> Verdict {
    let allow_text = match &a.allowlist {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => return usage(&format!("--allowlist {}: {e}", p.display())),
        },
        None => probe_diff::BUILTIN_ALLOWLIST.to_string(),
    };
    let allow = match probe_diff::parse_allowlist(&allow_text) {
        Ok(l) => l,
        Err(e) => return usage(&e),
    };
    let docs: Result<Vec<serde_json::Value>, String> = a.files.iter().map(|p| probe_diff::load(p)).collect();
    let docs = match docs {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rspvscsi-sim probe-diff: {e}");
            return Verdict::Fail;
        }
    };
    match (a.make_golden, docs.as_slice()) {
        (true, [doc]) => {
            print!("{}", probe_diff::pretty(&probe_diff::golden(doc, &allow, &a.source)));
            Verdict::Pass
        }
        (false, [expected, actual]) => {
            let (le, la) = a.labels.split_once(',').unwrap_or(("expected", "actual"));
            match probe_diff::compare(expected, actual, &allow) {
                Ok(c) => {
                    print!("{}", probe_diff::report(&c, (le, la), a.verbose));
                    if c.failures().next().is_none() { Verdict::Pass } else { Verdict::Fail }
                }
                Err(e) => {
                    eprintln!("rspvscsi-sim probe-diff: {e}");
                    Verdict::Fail
                }
            }
        }
        (true, _) => usage("--make-golden takes one file"),
        (false, _) => usage("probe-diff compares two files: the reference, then the one to check"),
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything held.
    Pass,
    /// A check failed.
    Fail,
    /// The command line made no sense.
    Usage,
}

fn finish(v: Verdict, debug_exit: bool) -> ExitCode {
    if debug_exit {
        // Returns only when no isa-debug-exit device is there.
        if let Err(e) = debug_exit::write(u8::from(v != Verdict::Pass)) {
            eprintln!("rspvscsi-sim: --debug-exit: {e}");
        }
    }
    match v {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(EXIT_FAIL),
        Verdict::Usage => ExitCode::from(EXIT_USAGE),
    }
}

/// Writes `text` to stdout and flushes it. A report that cannot be written (a full disk,
/// `/dev/full`, a closed pipe) is a failed run, never a silent pass.
///
/// # Errors
/// The message to print.
pub fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| format!("writing the report to stdout failed: {e}"))
}

/// [`emit`], with a failure printed and turned into the verdict.
#[must_use]
pub fn emit_or_fail(text: &str, v: Verdict) -> Verdict {
    match emit(text) {
        Ok(()) => v,
        Err(e) => {
            eprintln!("rspvscsi-sim: FAIL: {e}");
            Verdict::Fail
        }
    }
}

/// A usage error found after parsing.
pub fn usage(msg: &str) -> Verdict {
    eprintln!("rspvscsi-sim: error: {msg}\n\nFor more information, try '--help'.");
    Verdict::Usage
}

/// `--bs` in sectors, checked.
///
/// # Errors
/// Not a multiple of 512, or beyond the largest transfer.
pub fn bs_sectors(bs: Option<u64>) -> Result<Option<u32>, String> {
    match bs {
        None => Ok(None),
        Some(b) if b == 0 || b % SECTOR as u64 != 0 => Err(format!("--bs {b} is not a positive multiple of 512")),
        Some(b) if b > engine::MAX_TRANSFER => Err(format!("--bs {b} exceeds the driver's largest transfer, {} bytes", engine::MAX_TRANSFER)),
        Some(b) => Ok(u32::try_from(b / SECTOR as u64).ok()),
    }
}

/// The engine's kind for an I/O workload.
#[must_use]
pub fn kind_of(w: WorkloadArg) -> Option<Kind> {
    match w {
        WorkloadArg::Mixed => Some(Kind::Mixed),
        WorkloadArg::Read => Some(Kind::Read),
        WorkloadArg::Write => Some(Kind::Write),
        WorkloadArg::WritePattern => Some(Kind::WritePattern),
        WorkloadArg::VerifyPattern => Some(Kind::VerifyPattern),
        WorkloadArg::Inquiry | WorkloadArg::BadLba | WorkloadArg::MissingTarget => None,
    }
}

/// The engine spec of the command line.
#[must_use]
pub fn spec_of(a: &RunArgs, kind: Kind, bs: Option<u32>) -> Spec {
    Spec {
        qd: a.qd as usize,
        bs_sectors: bs,
        count: a.count,
        seconds: a.seconds,
        ramp: a.ramp,
        buffer_offset: a.buffer_offset,
        reset_every: a.reset_bus_every,
        progress: !a.no_progress && !a.json,
        ..Spec::new(kind, a.seed)
    }
}

/// Prints a machine's failure to come up (load failure or bug check during bring-up).
pub fn report_rig_error(e: &RigError, json: bool) {
    let (msg, violations, bugcheck) = match e {
        RigError::Setup(s) => (s.clone(), 0, None),
        RigError::Machine(err, m) => {
            let b = m.as_ref().and_then(|m| m.bugcheck()).or_else(|| err.bugcheck().cloned());
            let n = m.as_ref().map_or(0, |m| m.violations().iter().filter(|v| v.rule.fatal()).count()).max(usize::from(b.is_some()));
            (err.to_string(), n, b)
        }
    };
    if let Some(b) = &bugcheck {
        eprintln!("rspvscsi-sim: BUG CHECK {:#x} ({:?}) during bring-up", b.code, b.rule);
        eprintln!("  rule:    {}", b.rule.text());
        eprintln!("  doc:     {}", b.doc);
        eprintln!("  message: {}", b.message);
    } else {
        eprintln!("rspvscsi-sim: FAIL: {msg}");
    }
    if json {
        let _ = emit(&format!(
            "{}\n",
            json!({
                "result": "fail", "failures": [msg], "ios": 0, "errors": 0, "mismatches": 0,
                "verifier_violations": violations, "interrupts": 0, "completions_per_interrupt": 0.0, "iops": 0.0,
                "bugcheck": bugcheck.map(|b| json!({"code": format!("{:#x}", b.code), "rule": format!("{:?}", b.rule), "doc": b.doc, "message": b.message})),
            })
        ));
    }
}

/// Checks the pattern on the model's media directly (bypassing the driver): the first
/// `limit` sectors of each disk. Returns the failures.
#[must_use]
pub fn check_media(rig: &Rig, seed: u64, limit: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    for md in &rig.model_disks {
        let n = limit.map_or(md.disk.blocks(), |l| l.min(md.disk.blocks()));
        let mut bad = 0u64;
        let mut first = None;
        let mut lba = 0;
        while lba < n {
            let count = (n - lba).min(2048);
            let data = match md.disk.read_sectors(lba, count) {
                Ok(d) => d,
                Err(e) => {
                    out.push(format!("t{} medium: {e}", md.target));
                    break;
                }
            };
            for (i, s) in data.chunks_exact(SECTOR).enumerate() {
                if let Err(m) = pattern::check_sector(lba + i as u64, seed, s) {
                    bad += 1;
                    first.get_or_insert(m);
                }
            }
            lba += count;
        }
        if let Some(m) = first {
            out.push(format!("t{} medium: {bad} of {n} sectors do not carry the pattern (first: {m})", md.target));
        }
    }
    out
}

/// Options a workload would ignore: refused, so that a run never looks as if it did what it
/// did not.
fn ignored_options(a: &RunArgs) -> Option<String> {
    let w = a.workload();
    if a.target.is_some() && w != WorkloadArg::MissingTarget {
        return Some(format!("--target is the missing-target workload's; the {} workload has no use for it", w.name()));
    }
    if kind_of(w).is_none() {
        let given = [
            ("--bs", a.bs.is_some()),
            ("--buffer-offset", a.buffer_offset != 0),
            ("--reset-bus-every", a.reset_bus_every.is_some()),
            ("--count", a.count.is_some()),
            ("--seconds", a.seconds.is_some()),
            ("--ramp", a.ramp.is_some()),
        ];
        if let Some((opt, _)) = given.iter().find(|(_, g)| *g) {
            return Some(format!("{opt} shapes I/O workloads; the {} workload sends a fixed set of commands", w.name()));
        }
    }
    None
}

/// Whether the run writes, and whether that was asked for.
fn access_of(a: &RunArgs) -> Access {
    if !a.workload().writes() {
        Access::ReadOnly
    } else if a.workload.is_some() || a.allow_write {
        Access::Write
    } else {
        Access::WriteUnasked(format!("the default workload, {},", a.workload().name()))
    }
}

/// Runs one workload on a machine and reports it; returns the verdict.
#[must_use]
pub fn run(a: &RunArgs) -> Verdict {
    let workload = a.workload();
    let bs = match bs_sectors(a.bs) {
        Ok(b) => b,
        Err(e) => return usage(&e),
    };
    if let Some(e) = ignored_options(a) {
        return usage(&e);
    }
    if let (Some(ramp), Some(count)) = (a.ramp, a.count)
        && ramp >= count
    {
        return usage(&format!("--ramp {ramp} leaves none of the {count} requests to count: it must be below --count"));
    }
    if workload == WorkloadArg::MissingTarget && a.target.is_some_and(|t| t == crate::rig::INITIATOR_ID) {
        return usage("--target 7 is the initiator's own ID");
    }
    if a.target.is_some_and(|t| t >= crate::rig::MAX_TARGETS) {
        return usage(&format!("--target must be below {}: the driver scans targets 0..{}", crate::rig::MAX_TARGETS, crate::rig::MAX_TARGETS));
    }
    let config = match RigConfig::from_args(a, &[DEFAULT_DISK], &access_of(a)) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    let mut rig = match Rig::new(&config) {
        Ok(r) => r,
        Err(e) => {
            report_rig_error(&e, a.json);
            return Verdict::Fail;
        }
    };
    let info = RunInfo {
        workload: workload.name().into(),
        qd: a.qd,
        bs: bs.or_else(|| kind_of(workload).and_then(engine::default_bs_sectors)).map(|b| u64::from(b) * SECTOR as u64),
        buffer_offset: a.buffer_offset,
        io: kind_of(workload).is_some(),
    };
    if !a.json
        && let Err(e) = emit(&Report::header(&rig, &info))
    {
        eprintln!("rspvscsi-sim: FAIL: {e}");
        return Verdict::Fail;
    }
    let mut outcome = Outcome::default();
    let mut checks: Vec<Check> = Vec::new();
    let mut extra = Vec::new();
    let check_result = match workload {
        WorkloadArg::Inquiry => checks::inquiry(&mut rig),
        WorkloadArg::BadLba => checks::bad_lba(&mut rig),
        WorkloadArg::MissingTarget => checks::missing_target(&mut rig, a.target),
        _ => Ok(Vec::new()),
    };
    match check_result {
        Ok(c) => checks = c,
        Err(e) => outcome.halted = Some(e),
    }
    let mut durability = None;
    if let Some(kind) = kind_of(workload) {
        if let Err(e) = rig.check_discovery() {
            extra.push(e);
        }
        let spec = spec_of(a, kind, bs);
        outcome = Engine::new(&rig, spec).run();
        if kind == Kind::VerifyPattern && outcome.sectors_checked == 0 && outcome.halted.is_none() {
            extra.push("verify-pattern checked no sector".into());
        }
        if kind == Kind::Mixed && outcome.sectors_checked == 0 && outcome.reads > 0 {
            extra.push("the mixed workload read nothing it could check".into());
        }
        if workload.writes() && outcome.halted.is_none() {
            match rig.make_durable() {
                Ok(d) => durability = Some(d),
                Err(e) => outcome.halted = Some(e),
            }
        }
    }
    if let Some(e) = rig.finish_trace() {
        extra.push(e);
    }
    let mut report = Report::new(&rig, info, outcome, checks);
    report.extra_failures = extra;
    report.durability = durability;
    let text = if a.json { format!("{}\n", report.json()) } else { report.table() };
    let verdict = emit_or_fail(&text, if report.passed() { Verdict::Pass } else { Verdict::Fail });
    report.print_failures();
    report.print_unwritten();
    verdict
}
