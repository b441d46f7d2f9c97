//! The scenario set: what a release of the driver must survive, each on a fresh machine.

use std::time::Instant;

use serde_json::json;

use crate::app::{self, Verdict};
use crate::checks;
use crate::cli::RunArgs;
use crate::engine::{Engine, Kind, Outcome, Spec};
use crate::report::{Report, RunInfo};
use crate::rig::{Access, Rig, RigConfig};

/// Disks of a scenario machine unless `--disk` says otherwise: two sizes, so a mixed-up target
/// shows.
const SCENARIO_DISKS: [&str; 2] = ["ram:8M", "ram:12M"];

/// The scenarios: name and what it asserts.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "bring-up",
        "HwScsiFindAdapter/HwScsiInitialize and the bus scan find exactly the disks (targets, sizes); each answers INQUIRY as a disk, READ CAPACITY(10) and (16) alike, TEST UNIT READY",
    ),
    ("mixed", "random reads and writes at the queue depth; every read returns what was last written there"),
    ("pattern", "write-pattern then verify-pattern of every sector of every disk; on the model the media hold the pattern too"),
    (
        "page-cross",
        "transfers of odd sizes from buffers starting at odd places in a page (1 byte to 4095), up to 128 KiB at an offset (33 pages); written with one shape, read back with another",
    ),
    ("bad-lba", "READs past the end end in CHECK CONDITION with sense 05/21/00 (ILLEGAL REQUEST, LBA out of range); the disk still reads"),
    ("missing-target", "INQUIRY, TEST UNIT READY and READ to a free target end in selection timeout; the disks still answer"),
    (
        "reset-under-load",
        "bus resets with the queue full: every request completes exactly once (BUS_RESET ones reissued, UNIT ATTENTION retried), nothing is lost, and everything written verifies",
    ),
];

/// The result of one scenario.
struct Ran {
    name: &'static str,
    report: Option<Report>,
    failures: Vec<String>,
    detail: String,
    ms: f64,
}

/// Scenarios write to every disk: to an image only with --allow-write.
fn access(args: &RunArgs) -> Access {
    if args.allow_write { Access::Write } else { Access::WriteUnasked("the scenario set".into()) }
}

fn build(args: &RunArgs, tweak: impl FnOnce(&mut RigConfig)) -> Result<Rig, String> {
    let mut config = RigConfig::from_args(args, &SCENARIO_DISKS, &access(args))?;
    tweak(&mut config);
    Rig::new(&config).map_err(|e| {
        app::report_rig_error(&e, false);
        format!("bring-up: {e}")
    })
}

fn info(args: &RunArgs, workload: &str) -> RunInfo {
    RunInfo { workload: workload.into(), qd: args.qd, bs: args.bs, buffer_offset: args.buffer_offset, io: !matches!(workload, "bring-up" | "bad-lba" | "missing-target") }
}

fn spec(args: &RunArgs, kind: Kind) -> Spec {
    Spec { qd: args.qd as usize, seed: args.seed, progress: !args.no_progress && !args.json, ..Spec::new(kind, args.seed) }
}

/// Runs the engine and adds its outcome to `total`; false if the machine stopped.
fn io(rig: &Rig, s: Spec, total: &mut Outcome) -> bool {
    let o = Engine::new(rig, s).run();
    let ok = o.halted.is_none();
    total.merge(&o);
    ok
}

/// What one scenario found, besides the report's own failures.
#[derive(Default)]
struct Found {
    outcome: Outcome,
    checks: Vec<checks::Check>,
    failures: Vec<String>,
    detail: String,
}

impl Found {
    fn checks(&mut self, r: Result<Vec<checks::Check>, scsiport_sim::Error>) {
        match r {
            Ok(c) => self.checks = c,
            Err(e) => self.outcome.halted = Some(e),
        }
    }
}

fn bring_up(rig: &mut Rig, f: &mut Found) {
    f.checks(checks::inquiry(rig));
    let sizes: Vec<&str> = f.checks.iter().filter(|c| c.name.ends_with("CAPACITY")).map(|c| c.detail.split(" (").next().unwrap_or("")).collect();
    f.detail = format!("{} disks: {}", rig.disks.len(), sizes.join("; "));
}

fn bad_lba(rig: &mut Rig, f: &mut Found) {
    f.checks(checks::bad_lba(rig));
    let refused = f.checks.iter().filter(|c| c.ok && !c.name.ends_with("afterwards")).count();
    f.detail = format!("{refused} reads past the end refused with 05/21/00");
}

fn missing_target(rig: &mut Rig, args: &RunArgs, f: &mut Found) {
    f.checks(checks::missing_target(rig, args.target));
    f.detail = f.checks.first().map(|c| format!("{}: {}", c.name, c.detail)).unwrap_or_default();
}

fn mixed(rig: &Rig, args: &RunArgs, f: &mut Found) {
    let s = Spec { count: args.count.or(Some(1000)), bs_sectors: args.bs.and_then(|b| u32::try_from(b / 512).ok()), ..spec(args, Kind::Mixed) };
    io(rig, s, &mut f.outcome);
    if f.outcome.sectors_checked == 0 {
        f.failures.push("no read could be checked".into());
    }
    f.detail = format!("{} I/Os, {} sectors checked", f.outcome.ios, f.outcome.sectors_checked);
}

fn pattern(rig: &Rig, args: &RunArgs, f: &mut Found) {
    let _ = io(rig, spec(args, Kind::WritePattern), &mut f.outcome) && io(rig, spec(args, Kind::VerifyPattern), &mut f.outcome);
    f.failures.extend(app::check_media(rig, args.seed, None));
    f.detail = format!("{} sectors written and verified", f.outcome.sectors_checked);
}

fn page_cross(rig: &Rig, args: &RunArgs, f: &mut Found) {
    // (write bytes, write offset, read bytes, read offset)
    let shapes: [(u32, u16, u32, u16); 5] =
        [(1536, 2560, 12800, 512), (512, 4095, 4608, 1), (131_072, 2048, 65536, 3000), (4096, 4000, 131_072, 100), (7680, 7, 1024, 4094)];
    // 256 KiB of each disk per shape keeps it quick.
    let limit = 512;
    for (i, (wb, wo, rb, ro)) in shapes.into_iter().enumerate() {
        let seed = args.seed.wrapping_add(i as u64 + 1);
        let base = Spec { seed, pattern_sectors: Some(limit), ..spec(args, Kind::WritePattern) };
        let ok = io(rig, Spec { bs_sectors: Some(wb / 512), buffer_offset: wo, ..base.clone() }, &mut f.outcome)
            && io(rig, Spec { kind: Kind::VerifyPattern, bs_sectors: Some(rb / 512), buffer_offset: ro, ..base }, &mut f.outcome);
        f.failures.extend(app::check_media(rig, seed, Some(limit)).into_iter().map(|e| format!("{wb}@{wo}: {e}")));
        if !ok {
            break;
        }
    }
    f.detail = format!("{} shapes, {} I/Os, {} sectors checked", shapes.len(), f.outcome.ios, f.outcome.sectors_checked);
}

fn reset_under_load(rig: &Rig, args: &RunArgs, f: &mut Found) {
    let qd = (args.qd as usize).max(32);
    let every = args.reset_bus_every.unwrap_or(40);
    let limit = Some(4096);
    let w = Spec { qd, reset_every: Some(every), bs_sectors: Some(16), pattern_sectors: limit, ..spec(args, Kind::WritePattern) };
    let r = Spec { qd, bs_sectors: Some(64), pattern_sectors: limit, ..spec(args, Kind::VerifyPattern) };
    let o = &mut f.outcome;
    if io(rig, w, o) && io(rig, r, o) {
        if o.resets == 0 {
            f.failures.push("no bus reset was submitted".into());
        }
        let deterministic = rig.config.mode_name() == "deterministic";
        if deterministic && rig.model.is_some() && o.reset_reissues == 0 {
            f.failures.push("no request was in flight at any reset (nothing to prove)".into());
        }
    }
    f.failures.extend(app::check_media(rig, args.seed, limit));
    f.detail = format!(
        "{} resets at qd {qd} with {} requests in flight, {} reissued, {} unit attentions retried, {} sectors verified",
        o.resets, o.in_flight_at_resets, o.reset_reissues, o.ua_retries, o.sectors_checked
    );
}

fn one(name: &'static str, args: &RunArgs) -> Ran {
    let started = Instant::now();
    let built = build(args, |c| {
        if name == "reset-under-load" {
            // Requests must still be at the device when the reset comes.
            if c.latency_us.is_none() {
                c.latency_us = Some((200, 2000));
            }
            c.reset_hold = c.reset_hold.min(std::time::Duration::from_millis(50));
        }
    });
    let mut rig = match built {
        Ok(r) => r,
        Err(e) => return Ran { name, report: None, failures: vec![e], detail: String::new(), ms: started.elapsed().as_secs_f64() * 1e3 },
    };
    let mut f = Found::default();
    if let Err(e) = rig.check_discovery() {
        f.failures.push(e);
    }
    match name {
        "bring-up" => bring_up(&mut rig, &mut f),
        "bad-lba" => bad_lba(&mut rig, &mut f),
        "missing-target" => missing_target(&mut rig, args, &mut f),
        "mixed" => mixed(&rig, args, &mut f),
        "pattern" => pattern(&rig, args, &mut f),
        "page-cross" => page_cross(&rig, args, &mut f),
        "reset-under-load" => reset_under_load(&rig, args, &mut f),
        _ => f.failures.push(format!("no scenario {name}")),
    }
    if let Some(e) = rig.finish_trace() {
        f.failures.push(e);
    }
    let report = Report::new(&rig, info(args, name), f.outcome, f.checks);
    let mut failures = report.failures();
    failures.append(&mut f.failures);
    Ran { name, report: Some(report), failures, detail: f.detail, ms: started.elapsed().as_secs_f64() * 1e3 }
}

/// Runs the named scenarios (all if none); prints one line each and a summary.
#[must_use]
pub fn run(names: &[String], args: &RunArgs) -> Verdict {
    if names.iter().any(|n| n == "list") {
        for (n, what) in SCENARIOS {
            println!("{n:<18}{what}");
        }
        return Verdict::Pass;
    }
    if let Err(e) = app::bs_sectors(args.bs) {
        return app::usage(&e);
    }
    let mut chosen = Vec::new();
    for n in names {
        let Some((s, _)) = SCENARIOS.iter().find(|(s, _)| s == n) else {
            let known: Vec<&str> = SCENARIOS.iter().map(|(s, _)| *s).collect();
            return app::usage(&format!("no scenario {n:?} (known: {})", known.join(", ")));
        };
        chosen.push(*s);
    }
    if chosen.is_empty() {
        chosen = SCENARIOS.iter().map(|(s, _)| *s).collect();
    }
    // Usage errors (images, options) before anything runs, and the header at once.
    let config = match RigConfig::from_args(args, &SCENARIO_DISKS, &access(args)) {
        Ok(c) => c,
        Err(e) => return app::usage(&e),
    };
    if !args.json {
        let header = format!(
            "rspvscsi-sim scenarios: {} on {}, {} schedule, seed {}\n",
            config.miniport_name(),
            config.hba_description(),
            config.mode_name(),
            config.seed
        );
        if let Err(e) = app::emit(&header) {
            eprintln!("rspvscsi-sim: FAIL: {e}");
            return Verdict::Fail;
        }
    }
    let mut results: Vec<Ran> = Vec::new();
    let mut broken_output = None;
    for n in chosen {
        let r = one(n, args);
        if !args.json && broken_output.is_none() {
            let v = r.report.as_ref();
            let verifier = v.map_or(0, Report::fatal_violations);
            let line = format!(
                "  {} {:<18}{:>8.1} ms  {} (verifier: {})\n",
                if r.failures.is_empty() { "PASS" } else { "FAIL" },
                r.name,
                r.ms,
                r.detail,
                if verifier == 0 { "clean".to_string() } else { format!("{verifier} violations") }
            );
            broken_output = app::emit(&line).err();
        }
        results.push(r);
    }
    let passed = results.iter().filter(|r| r.failures.is_empty()).count();
    let all = if passed == results.len() { Verdict::Pass } else { Verdict::Fail };
    let verdict = if let Some(e) = broken_output {
        eprintln!("rspvscsi-sim: FAIL: {e}");
        Verdict::Fail
    } else if args.json {
        let list: Vec<_> = results
            .iter()
            .map(|r| {
                let mut v = r.report.as_ref().map_or_else(|| json!({}), Report::json);
                v["scenario"] = json!(r.name);
                v["result"] = json!(if r.failures.is_empty() { "pass" } else { "fail" });
                v["failures"] = json!(r.failures);
                v["detail"] = json!(r.detail);
                v["elapsed_ms"] = json!(r.ms);
                v
            })
            .collect();
        let doc = json!({"result": if passed == results.len() { "pass" } else { "fail" }, "passed": passed, "total": results.len(), "scenarios": list});
        app::emit_or_fail(&format!("{doc}\n"), all)
    } else {
        app::emit_or_fail(&format!("scenarios: {passed} of {} passed\n", results.len()), all)
    };
    for r in results.iter().filter(|r| !r.failures.is_empty()) {
        if let Some(rep) = &r.report {
            rep.print_bugcheck();
            rep.print_logs();
        }
        for f in &r.failures {
            eprintln!("rspvscsi-sim: scenario {} FAIL: {f}", r.name);
        }
    }
    verdict
}
