//! `cargo xtask bench`: what an I/O costs in the miniport and in the emulator around it.
//!
//! Every figure comes from the release CLI (`rspvscsi-sim`) doing random reads on a RAM disk in
//! the deterministic schedule, run twice with N1 and N2 requests: a per-I/O figure is the
//! difference divided by the difference in I/Os (N2 − N1), so bring-up, the bus scan and the
//! report drop out. What is measured, and with what:
//! - instructions (callgrind, `--dump-instr=yes`): the whole program per I/O; the miniport's
//!   per I/O and per routine, excluding what it calls in the port ([`attribution`]); for the
//!   loaded `.sys`, its code regrouped by the linker's map ([`image`]);
//! - completions per interrupt: the CLI's own counts (`interrupts`, `ios`), differential in the
//!   deterministic schedule; in the concurrent schedule (real threads, so wall-clock dependent)
//!   the range over a few whole runs;
//! - system calls per I/O: `strace -f -c`, differential; for the loaded `.sys`, the `rt_sigreturn`
//!   that ends each emulated register access (its MMIO trap) is reported apart ([`split_mmio_traps`]);
//! - payload copies per byte read: bytes passed to `memcpy`/`memmove`/`memset` calls of at least
//!   512 bytes (an `LD_PRELOAD` shim, [`probes`]), differential, over the bytes read;
//! - locked instructions (full barriers) per I/O: callgrind's counts of the instructions the
//!   CLI's and the loaded image's code says lock ([`locked`]), with the miniport's share and by
//!   function;
//! - IOPS against a plain memcpy of the same bytes: the CLI's IOPS (its workload loop, wall
//!   clock, after a ramp of [`wall_ramp`] requests) over the rate at which this process copies
//!   the same blocks (same size, same count, from a buffer the size of the disk into one buffer
//!   per queue slot), best of a few runs each, interleaved. A ratio, so it says little about the
//!   machine; wall clock, so it is only reported here and never asserted by a test;
//! - what the verifier's checks cost: the whole program per I/O and the IOPS again with the CLI's
//!   `--no-verifier` (Windows without Driver Verifier), reported beside the figures with it.
//!
//! Results go to `target/bench/` (`bench.json`, `bench.md`, `bench.svg`, the raw callgrind files
//! under `raw/` for `callgrind_annotate`). `--check` fails on a figure past its target
//! ([`thresholds`]).

pub mod attribution;
pub mod callgrind;
pub mod image;
pub mod inline;
pub mod locked;
pub mod probes;
pub mod report;
pub mod thresholds;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::sys;
use attribution::{Attribution, Kind, attribute, kind_of};
use callgrind::Profile;

/// `cargo xtask bench` options.
#[derive(Clone, Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)]
pub struct Args {
    /// The CI subset: QD 1, 32, 64 at 4 KiB, fewer requests.
    #[arg(long)]
    pub quick: bool,
    /// Fail (exit 1) when a figure crosses its target (issue 11's targets, bench/thresholds.rs).
    #[arg(long)]
    pub check: bool,
    /// Like --check, but fail only on these figures (keys of bench/thresholds.rs, such as
    /// `qd_growth`); the others are reported. What CI holds while some targets are not met yet.
    #[arg(long, value_name = "KEY,...", value_delimiter = ',', conflicts_with = "check")]
    pub check_only: Option<Vec<String>>,
    /// Where the results go (default: target/bench).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Use this rspvscsi-sim instead of building the release one.
    #[arg(long, value_name = "PATH")]
    pub cli: Option<PathBuf>,
    /// Use this .sys (with its .map beside it) instead of building it with `cargo xtask sys`.
    #[arg(long, value_name = "PATH")]
    pub sys: Option<PathBuf>,
    /// Measure the linked-in driver only.
    #[arg(long)]
    pub no_sys: bool,
    /// Callgrind runs at once (default: the CPUs available).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The two request counts of each differential run (default 1000,3000, and 200,600 for
    /// blocks over 4 KiB; quick 200,600).
    #[arg(long, value_name = "N1,N2", value_parser = parse_pair)]
    pub counts: Option<(u64, u64)>,
    /// Queue depths at 4 KiB (default 1,2,4,8,16,32,64; quick 1,32,64).
    #[arg(long, value_name = "QD,...", value_delimiter = ',')]
    pub qd: Option<Vec<u32>>,
    /// Block sizes at QD 32 (default 512,4K,16K,64K,128K; quick 4K).
    #[arg(long, value_name = "BYTES,...", value_delimiter = ',', value_parser = parse_size)]
    pub bs: Option<Vec<u64>>,
    /// Skip the wall-clock comparison with memcpy (and the concurrent schedule).
    #[arg(long)]
    pub no_wall_clock: bool,
    /// The port driver and the driver's flavour on it: scsiport (`rspvscsi.sys`) or storport
    /// (`rspvscsi_storport.sys`); the CLI's `--port`.
    #[arg(long, value_name = "PORT", default_value = "scsiport", value_parser = ["scsiport", "storport"])]
    pub port: String,
}

impl Args {
    /// The image of the port measured.
    fn flavor(&self) -> &'static sys::Flavor {
        if self.port == "storport" { &sys::STORPORT } else { &sys::SCSIPORT }
    }
}

fn parse_pair(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once(',').ok_or("expected N1,N2")?;
    let (a, b) = (a.trim().parse::<u64>().map_err(|e| e.to_string())?, b.trim().parse::<u64>().map_err(|e| e.to_string())?);
    if a == 0 || b <= a {
        return Err("need 0 < N1 < N2".into());
    }
    Ok((a, b))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1024),
        Some((i, 'M' | 'm')) => (&s[..i], 1024 * 1024),
        _ => (s, 1),
    };
    let n = num.parse::<u64>().map_err(|e| format!("{s:?}: {e}"))? * mult;
    if n == 0 || n % 512 != 0 || n > 128 * 1024 {
        return Err(format!("{s:?}: a block size is a multiple of 512 up to 128K"));
    }
    Ok(n)
}

/// The RAM disk every run uses: large enough for QD 64 × 128 KiB, small enough to stay cheap.
pub const DISK: &str = "ram:16M";
/// The disk's size in bytes.
pub const DISK_BYTES: usize = 16 << 20;
/// The seed of every run.
pub const SEED: u64 = 1;
/// The configuration the headline figures are taken at (issue 11): QD 32, 4 KiB.
pub const REFERENCE: Config = Config { qd: 32, bs: 4096 };

/// One queue depth and block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Config {
    /// Requests outstanding.
    pub qd: u32,
    /// Bytes per request.
    pub bs: u64,
}

/// What the bench measures and how much.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Callgrind configurations.
    pub grid: Vec<Config>,
    /// N1 and N2 at 4 KiB and smaller blocks.
    pub counts: (u64, u64),
    /// N1 and N2 for larger blocks: under callgrind a 128 KiB read costs as much as thirty
    /// 4 KiB ones, and the per-I/O figure is steady after a few times the queue depth.
    pub large_counts: (u64, u64),
    /// Concurrent-schedule runs for the completions-per-interrupt range.
    pub concurrent_runs: usize,
    /// Repetitions of each wall-clock measurement (the best is kept).
    pub wall_reps: usize,
    /// Requests per wall-clock run: (4 KiB, 64 KiB).
    pub wall_counts: (u64, u64),
    /// Whether to measure wall clock at all.
    pub wall_clock: bool,
}

impl Plan {
    /// The plan for `args`.
    #[must_use]
    pub fn new(args: &Args) -> Self {
        let qds = args.qd.clone().unwrap_or_else(|| if args.quick { vec![1, 32, 64] } else { vec![1, 2, 4, 8, 16, 32, 64] });
        // The quick subset leaves the block sizes to the full run: under callgrind a 64 KiB read
        // costs as much as eight 4 KiB ones, and no target is set on them.
        let bss = args.bs.clone().unwrap_or_else(|| if args.quick { vec![4096] } else { vec![512, 4096, 16384, 65536, 131_072] });
        let mut grid: Vec<Config> = qds.iter().map(|&qd| Config { qd, bs: 4096 }).collect();
        grid.extend(bss.iter().map(|&bs| Config { qd: 32, bs }));
        grid.sort();
        grid.dedup();
        Self {
            grid,
            counts: args.counts.unwrap_or(if args.quick { (200, 600) } else { (1000, 3000) }),
            large_counts: args.counts.unwrap_or((200, 600)),
            concurrent_runs: 5,
            wall_reps: if args.quick { 3 } else { 5 },
            wall_counts: if args.quick { (5000, 1500) } else { (20000, 5000) },
            wall_clock: !args.no_wall_clock,
        }
    }
}

/// Which driver a run loads.
#[derive(Clone, Debug)]
pub enum Driver {
    /// The driver linked into the CLI.
    Linked,
    /// A `.sys` loaded by the emulator's PE loader (`--driver`).
    Sys {
        /// The image.
        sys: PathBuf,
        /// Its symbols.
        symbols: image::Symbols,
    },
}

impl Driver {
    /// The variant's name in the results.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Linked => "linked",
            Self::Sys { .. } => "sys",
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Self::Linked => Vec::new(),
            Self::Sys { sys, .. } => vec!["--driver".into(), sys.display().to_string()],
        }
    }
}

/// The CLI's arguments for a deterministic read run.
#[must_use]
pub fn run_args(port: &str, driver: &Driver, c: Config, count: u64, mode: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "--port", port, "--disk", DISK, "--workload", "read", "--mode", mode, "--json", "--no-progress",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    a.extend(["--qd".into(), c.qd.to_string(), "--bs".into(), c.bs.to_string(), "--count".into(), count.to_string()]);
    a.extend(["--seed".into(), SEED.to_string()]);
    a.extend(driver.args());
    a
}

/// Runs `cmd`, expecting the CLI's JSON summary on stdout and a pass.
fn run_json(mut cmd: Command, what: &str) -> Result<Value> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("{what}: no JSON summary ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr)))?;
    if !out.status.success() || json["result"] != "pass" {
        bail!("{what} did not pass ({}): {}\n{}", out.status, json["failures"], String::from_utf8_lossy(&out.stderr));
    }
    Ok(json)
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

#[allow(clippy::cast_precision_loss)]
fn per(num: f64, den: u64) -> f64 {
    if den == 0 { f64::NAN } else { num / den as f64 }
}

/// Takes the MMIO traps' `rt_sigreturn` calls out of a run's system calls per I/O.
///
/// The loaded `.sys` reaches its registers with plain volatile loads and stores, as it does on
/// Windows x64 (`READ_REGISTER_ULONG` is inline there). The emulator maps the register window
/// with no access, so each such access is a page fault delivered as SIGSEGV, emulated
/// (`mmio.rs`), and ended by `rt_sigreturn`: the emulator's equivalent of a VM exit, which the
/// real access does not have and which the driver's register accesses, not the emulator's own
/// work, decide. Those calls are reported as their own figure (MMIO traps per I/O) and do not
/// count as the emulator's system calls; any `rt_sigreturn` beyond one per emulated access stays.
#[must_use]
pub fn split_mmio_traps(mut calls: BTreeMap<String, f64>, traps_per_io: f64) -> BTreeMap<String, f64> {
    if traps_per_io.is_finite()
        && traps_per_io > 0.0
        && let Some(r) = calls.get_mut("rt_sigreturn")
    {
        *r -= traps_per_io.min(*r);
        if r.abs() < 0.0005 {
            calls.remove("rt_sigreturn");
        }
    }
    calls
}

#[allow(clippy::cast_precision_loss)]
fn diff(a: u64, b: u64) -> f64 {
    b as f64 - a as f64
}

/// One callgrind run's results.
struct Sample {
    json: Value,
    profile: Profile,
    attribution: Attribution,
    /// Locked instructions executed in the CLI's and the loaded image's code, by function
    /// ([`locked`]).
    locked_by_function: BTreeMap<String, u64>,
}

/// One callgrind run as read, before attribution.
struct RawSample {
    json: Value,
    profile: Profile,
}

/// One routine at one configuration.
#[derive(Clone, Debug, Default)]
pub struct RoutineFigure {
    /// Driver instructions per I/O.
    pub per_io: f64,
    /// Entries per I/O.
    pub calls_per_io: f64,
    /// Driver instructions per entry.
    pub per_call: f64,
    /// Instructions per entry of the entry function's own code (the trampoline with what LTO
    /// inlined into it), without the driver functions it calls.
    pub own_per_call: f64,
}

/// One configuration's differential figures.
#[derive(Clone, Debug, Default)]
pub struct Point {
    /// Where.
    pub config: Option<Config>,
    /// I/Os of the two runs.
    pub ios: (u64, u64),
    /// The whole program's instructions per I/O.
    pub whole_per_io: f64,
    /// The miniport's instructions per I/O (sum over routines).
    pub miniport_per_io: f64,
    /// By routine.
    pub routines: BTreeMap<String, RoutineFigure>,
    /// Completions per interrupt (differential).
    pub completions_per_interrupt: f64,
    /// Spurious interrupts per I/O (differential).
    pub spurious_per_io: f64,
    /// Driver cost split among callers by call counts, per I/O.
    pub shared_per_io: f64,
    /// Emulator code LTO inlined into driver functions (excluded from the miniport), per I/O.
    pub inlined_port_per_io: f64,
    /// Self cost per I/O of every function that has some, with its kind, largest first.
    pub self_per_io: Vec<(String, Kind, f64)>,
    /// Locked instructions (atomic read-modify-writes) per I/O ([`locked`]): the emulator's and
    /// the driver's, linked in or loaded.
    pub locked_per_io: f64,
    /// Of those, the driver's own code's.
    pub miniport_locked_per_io: f64,
    /// Locked instructions per I/O by function (where the locking code ran), largest first.
    pub locked_by_function: Vec<(String, Kind, f64)>,
}

fn point(config: Config, a: &Sample, b: &Sample) -> Point {
    let ios = (u(&a.json, "ios"), u(&b.json, "ios"));
    let dn = ios.1.saturating_sub(ios.0);
    let whole = per(diff(a.profile.total(), b.profile.total()), dn);
    let mut routines = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = a.attribution.routines.keys().chain(b.attribution.routines.keys()).collect();
    for name in names {
        let ra = a.attribution.routines.get(name).cloned().unwrap_or_default();
        let rb = b.attribution.routines.get(name).cloned().unwrap_or_default();
        let cost = rb.cost - ra.cost;
        let calls = rb.calls.saturating_sub(ra.calls);
        if cost.abs() < 1e-9 && calls == 0 {
            continue;
        }
        let own = |p: &Profile| -> u64 {
            p.functions.iter().filter(|f| kind_of(&f.name) == Kind::Driver && attribution::routine_of(&f.name) == *name).map(|f| f.self_cost).sum()
        };
        routines.insert(
            name.clone(),
            RoutineFigure {
                per_io: per(cost, dn),
                calls_per_io: per(diff(ra.calls, rb.calls), dn),
                per_call: per(cost, calls),
                own_per_call: per(diff(own(&a.profile), own(&b.profile)), calls),
            },
        );
    }
    let mut self_per_io: Vec<(String, Kind, f64)> = b
        .profile
        .functions
        .iter()
        .map(|f| {
            let before = a.profile.function(&f.name).map_or(0, |g| g.self_cost);
            (f.name.clone(), kind_of(&f.name), per(diff(before, f.self_cost), dn))
        })
        .filter(|(_, _, v)| v.abs() >= 0.05)
        .collect();
    self_per_io.sort_by(|x, y| y.2.total_cmp(&x.2));
    let interrupts = diff(u(&a.json, "interrupts"), u(&b.json, "interrupts"));
    let inlined = |p: &Profile| -> u64 { p.functions.iter().filter(|f| f.name.ends_with(inline::PORT_PART)).map(|f| f.self_cost).sum() };
    Point {
        config: Some(config),
        ios,
        whole_per_io: whole,
        miniport_per_io: per(b.attribution.total() - a.attribution.total(), dn),
        routines,
        completions_per_interrupt: if interrupts > 0.0 { diff(ios.0, ios.1) / interrupts } else { f64::NAN },
        spurious_per_io: per(diff(u(&a.json, "spurious_interrupts"), u(&b.json, "spurious_interrupts")), dn),
        shared_per_io: per(b.attribution.shared - a.attribution.shared, dn),
        inlined_port_per_io: per(diff(inlined(&a.profile), inlined(&b.profile)), dn),
        self_per_io,
        locked_per_io: per(diff(locked_sum(a, |_| true), locked_sum(b, |_| true)), dn),
        miniport_locked_per_io: per(diff(locked_sum(a, |k| k == Kind::Driver), locked_sum(b, |k| k == Kind::Driver)), dn),
        locked_by_function: locked_by_function(a, b, dn),
    }
}

/// The locked instructions `s` executed in functions whose kind passes `want`.
fn locked_sum(s: &Sample, want: impl Fn(Kind) -> bool) -> u64 {
    s.locked_by_function.iter().filter(|(name, _)| want(kind_of(name))).map(|(_, n)| *n).sum()
}

/// [`Point::locked_by_function`] of the pair: the functions whose count per I/O is at least 0.05.
fn locked_by_function(a: &Sample, b: &Sample, dn: u64) -> Vec<(String, Kind, f64)> {
    let mut out: Vec<(String, Kind, f64)> = b
        .locked_by_function
        .iter()
        .map(|(name, n)| (name.clone(), kind_of(name), per(diff(a.locked_by_function.get(name).copied().unwrap_or(0), *n), dn)))
        .filter(|(_, _, v)| *v >= 0.05)
        .collect();
    out.sort_by(|x, y| y.2.total_cmp(&x.2));
    out
}

/// The ISR's name on each port: SCSI Port's, then Storport's (`attribution::ROUTINES`).
const ISR_NAMES: [&str; 2] = ["HwScsiInterrupt", "HwStorInterrupt"];

/// Completions per interrupt of a CLI run: its I/Os over the interrupts claimed, as the
/// deterministic figure is taken ([`point`]). The CLI's own `completions_per_interrupt` counts
/// only what completes in interrupt context, which on Storport is nothing (its DPC completes).
fn completions_per_interrupt(json: &Value) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    let (ios, interrupts) = (json["ios"].as_u64()? as f64, json["interrupts"].as_u64()? as f64);
    (interrupts > 0.0).then(|| ios / interrupts)
}

/// Everything measured for one driver.
#[derive(Clone, Debug, Default)]
pub struct Variant {
    /// `linked` or `sys`.
    pub name: String,
    /// The callgrind grid.
    pub points: Vec<Point>,
    /// System calls per I/O by name (QD 32, 4 KiB).
    pub syscalls: Option<BTreeMap<String, f64>>,
    /// Register accesses emulated through a page fault per I/O (QD 32, 4 KiB): the loaded
    /// `.sys`'s MMIO traps, whose `rt_sigreturn` is not in `syscalls` ([`split_mmio_traps`]).
    pub mmio_traps: Option<f64>,
    /// Bytes per byte read by routine (QD 32, 4 KiB), and the calls per I/O.
    pub copies: Option<BTreeMap<String, (f64, f64)>>,
    /// Completions per interrupt of each concurrent run (QD 32, 4 KiB).
    pub concurrent_cpi: Vec<f64>,
    /// (block size, CLI IOPS, memcpy IOPS), best of the repetitions.
    pub iops: Vec<(u64, f64, f64)>,
    /// The whole program per I/O without the verifier (`--no-verifier`), at the reference
    /// configuration: beside `whole_per_io`, what the checks cost.
    pub whole_unverified: Option<f64>,
    /// (block size, CLI IOPS without the verifier), best of the repetitions, interleaved with
    /// those of [`Variant::iops`] and over the same memcpy.
    pub iops_unverified: Vec<(u64, f64)>,
    /// Why a measurement was not made.
    pub notes: Vec<String>,
}

impl Variant {
    /// The point at `c`.
    #[must_use]
    pub fn at(&self, c: Config) -> Option<&Point> {
        self.points.iter().find(|p| p.config == Some(c))
    }

    /// The figures the thresholds hold (keys of [`thresholds::THRESHOLDS`]), where measured.
    #[must_use]
    pub fn figures(&self) -> BTreeMap<String, f64> {
        let mut f = BTreeMap::new();
        if let Some(p) = self.at(REFERENCE) {
            f.insert("miniport_per_io".into(), p.miniport_per_io);
            if let Some(r) = ISR_NAMES.iter().find_map(|n| p.routines.get(*n)) {
                f.insert("isr_per_call".into(), r.per_call);
            }
            f.insert("completions_per_interrupt".into(), p.completions_per_interrupt);
            f.insert("whole_per_io".into(), p.whole_per_io);
            f.insert("locked_per_io".into(), p.locked_per_io);
        }
        if let Some(g) = self.growth() {
            f.insert("qd_growth".into(), g.0);
        }
        if let Some(c) = &self.copies {
            f.insert("copies_per_byte".into(), c.values().map(|(b, _)| b).sum());
        }
        if let Some(s) = &self.syscalls {
            f.insert("syscalls_per_io".into(), s.values().sum());
        }
        if let Some(median) = median(&self.concurrent_cpi) {
            f.insert("completions_per_interrupt_concurrent_median".into(), median);
        }
        for (bs, sim, mem) in &self.iops {
            let key = match bs {
                4096 => "iops_vs_memcpy_4k",
                65536 => "iops_vs_memcpy_64k",
                _ => continue,
            };
            f.insert(key.into(), sim / mem);
            if let Some((_, bare)) = self.iops_unverified.iter().find(|(b, _)| b == bs) {
                f.insert(format!("{key}_unverified"), bare / mem);
            }
        }
        if let Some(w) = self.whole_unverified {
            f.insert("whole_per_io_unverified".into(), w);
        }
        f
    }

    /// Whole-program growth from the smallest to the largest queue depth at 4 KiB: (ratio − 1,
    /// least-squares slope per unit of queue depth over the depths ≥ 8, the two end figures).
    #[must_use]
    pub fn growth(&self) -> Option<Growth> {
        let mut at4k: Vec<(u32, f64)> =
            self.points.iter().filter_map(|p| p.config.filter(|c| c.bs == 4096).map(|c| (c.qd, p.whole_per_io))).collect();
        at4k.sort_by_key(|p| p.0);
        let (first, last) = (*at4k.first()?, *at4k.last()?);
        if first.0 != 1 || last.0 != 64 {
            return None;
        }
        let tail: Vec<(f64, f64)> = at4k.iter().filter(|p| p.0 >= 8).map(|p| (f64::from(p.0), p.1)).collect();
        Some((last.1 / first.1 - 1.0, slope(&tail), first, last))
    }
}

/// Whole-program growth with queue depth: (per I/O at the largest QD over the smallest, minus
/// 1; slope per unit of QD over QD ≥ 8; (QD, per I/O) at both ends).
pub type Growth = (f64, f64, (u32, f64), (u32, f64));

#[allow(clippy::cast_precision_loss)]
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return f64::NAN;
    }
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
    let (mx, my) = (sx / n, sy / n);
    let num: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    num / den
}

/// The bench's whole result.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// The plan's counts.
    pub counts: (u64, u64),
    /// Whether it was the quick subset.
    pub quick: bool,
    /// The variants measured.
    pub variants: Vec<Variant>,
    /// Variants that could not be measured, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Seconds the bench took.
    pub seconds: f64,
    /// The command line that produced it.
    pub command: String,
    /// The port driver measured (`scsiport`, `storport`): which limits hold its figures.
    pub port: String,
}

impl Results {
    /// Every variant's figures, for [`thresholds::check`].
    #[must_use]
    pub fn figures(&self) -> BTreeMap<String, BTreeMap<String, f64>> {
        self.variants.iter().map(|v| (v.name.clone(), v.figures())).collect()
    }
}

/// Builds the release CLI with line tables (see [`inline`]) into `target/bench/cargo`, apart
/// from the plain release build so that neither rebuilds the other, and returns its path.
///
/// # Errors
/// When cargo fails.
pub fn build_cli(log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    log("building the release rspvscsi-sim (with line tables) in target/bench/cargo");
    let dir = sys::target_dir().join("bench").join("cargo");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(crate::workspace_root())
        .args(["build", "--quiet", "--release", "-p", "rspvscsi-sim"])
        .env("CARGO_TARGET_DIR", &dir)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only")
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build --release -p rspvscsi-sim failed ({status})");
    }
    Ok(dir.join("release").join("rspvscsi-sim"))
}

/// Whether the CLI can load a `.sys` (`--driver` in its help).
#[must_use]
pub fn cli_loads_images(cli: &Path) -> bool {
    cli_has_option(cli, "--driver")
}

/// Whether the CLI's help names `option` (a `--cli` from an older commit may not have it).
fn cli_has_option(cli: &Path, option: &str) -> bool {
    Command::new(cli).arg("--help").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(option))
}

/// The CLI's switch for a run without the verifier.
const NO_VERIFIER: &str = "--no-verifier";

struct Runner<'a> {
    /// The CLI's `--port`.
    port: &'a str,
    /// The CLI that runs (without its debug sections when objcopy is there).
    cli: &'a Path,
    /// The CLI with its line tables, for [`inline::Frames`].
    debug_cli: &'a Path,
    raw: PathBuf,
    /// The addresses of the CLI's locked instructions ([`locked::sites`]).
    locked_sites: std::collections::BTreeSet<u64>,
}

/// A copy of `cli` without debug sections (same code at the same addresses), in `dir`:
/// valgrind reads a binary's line tables at start, which costs a second or two per run.
fn stripped(cli: &Path, dir: &Path) -> Option<PathBuf> {
    let out = dir.join("rspvscsi-sim");
    let ok = Command::new("objcopy").arg("--strip-debug").arg(cli).arg(&out).status().is_ok_and(|s| s.success());
    ok.then_some(out)
}

impl Runner<'_> {
    fn callgrind(&self, driver: &Driver, c: Config, count: u64, verifier: bool) -> Result<RawSample> {
        let tag = format!("{}-qd{}-bs{}-n{count}{}", driver.name(), c.qd, c.bs, if verifier { "" } else { "-unverified" });
        let out = self.raw.join(format!("callgrind.{tag}.out"));
        let mut cmd = Command::new("valgrind");
        cmd.args(["--tool=callgrind", "--dump-instr=yes", "--trace-children=no"])
            // The `.sys` reaches its registers through faults the emulator decodes and
            // completes (scsiport-sim's mmio.rs), reading and writing every general register
            // of the faulting context. By default valgrind brings only the stack, frame and
            // instruction pointers up to date at a memory access, so under callgrind the
            // handler saw stale registers and HwScsiFindAdapter failed; counting guest
            // instructions (Ir) does not depend on this setting.
            .arg("--vex-iropt-register-updates=allregs-at-mem-access")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(format!("--log-file={}", self.raw.join(format!("valgrind.{tag}.log")).display()))
            .arg(self.cli)
            .args(run_args(self.port, driver, c, count, "deterministic"));
        if !verifier {
            cmd.arg(NO_VERIFIER);
        }
        let json = run_json(cmd, &format!("callgrind of {tag}"))?;
        let profile = Profile::read(&out)?;
        Ok(RawSample { json, profile })
    }

    /// Puts the driver's code together ([`inline`] for the linked-in driver, [`image`] for the
    /// `.sys`) and attributes it to routines.
    fn attribute(&self, driver: &Driver, frames: Option<&mut inline::Frames>, raw: RawSample) -> Result<Sample> {
        let RawSample { json, profile } = raw;
        let mut image_locked = None;
        let profile = match driver {
            Driver::Linked => match frames {
                Some(frames) => inline::split(&profile, &self.cli.display().to_string(), &mut |a| frames.side(a)),
                None => profile,
            },
            Driver::Sys { symbols, sys } => {
                let base = json["image_base"]
                    .as_u64()
                    .or_else(|| image::find_base(&profile, symbols))
                    .context("no call into the loaded image was found")?;
                image_locked = Some(locked::sites(sys, Some(base))?);
                image::regroup(&profile, base, symbols)?
            }
        };
        let attribution = attribute(&profile, &kind_of);
        let cli = self.cli.display().to_string();
        let mut locked_by_function = locked::by_function(&profile, &cli, &self.locked_sites);
        if let Some(sites) = image_locked {
            // The image's functions are named as the driver's (image::regroup).
            locked_by_function.extend(locked::by_function(&profile, image::OBJECT, &sites));
        }
        Ok(Sample { json, profile, attribution, locked_by_function })
    }

    fn native(&self, driver: &Driver, c: Config, count: u64, mode: &str) -> Command {
        let mut cmd = Command::new(self.cli);
        cmd.args(run_args(self.port, driver, c, count, mode));
        cmd
    }

    /// System calls per I/O by name, and the emulated register accesses (MMIO traps) per I/O,
    /// whose `rt_sigreturn` calls [`split_mmio_traps`] takes out of the first.
    fn syscalls(&self, driver: &Driver, counts: (u64, u64)) -> Result<(BTreeMap<String, f64>, f64)> {
        let mut runs = Vec::new();
        for n in [counts.0, counts.1] {
            let file = self.raw.join(format!("strace.{}-n{n}.txt", driver.name()));
            let mut cmd = Command::new("strace");
            cmd.args(["-f", "-c", "-o"]).arg(&file).arg(self.cli).args(run_args(self.port, driver, REFERENCE, n, "deterministic"));
            let json = run_json(cmd, "strace run")?;
            let table = probes::parse_strace_summary(&std::fs::read_to_string(&file)?)?;
            runs.push((u(&json, "ios"), u(&json, "registers_emulated"), table));
        }
        let [(n1, t1, a), (n2, t2, b)] = <[_; 2]>::try_from(runs).map_err(|_| anyhow::anyhow!("two runs"))?;
        let dn = n2.saturating_sub(n1);
        let mut out = BTreeMap::new();
        for (name, calls) in &b {
            let v = per(diff(a.get(name).copied().unwrap_or(0), *calls), dn);
            if v.abs() >= 0.0005 {
                out.insert(name.clone(), v);
            }
        }
        let traps = per(diff(t1, t2), dn);
        Ok((split_mmio_traps(out, traps), traps))
    }

    fn copies(&self, driver: &Driver, shim: &Path, counts: (u64, u64)) -> Result<BTreeMap<String, (f64, f64)>> {
        let mut runs = Vec::new();
        for n in [counts.0, counts.1] {
            let file = self.raw.join(format!("copies.{}-n{n}.txt", driver.name()));
            let mut cmd = self.native(driver, REFERENCE, n, "deterministic");
            cmd.env("LD_PRELOAD", shim).env("COPYCOUNT_OUT", &file);
            let json = run_json(cmd, "copy-counting run")?;
            let copies = probes::parse_copies(&std::fs::read_to_string(&file).with_context(|| format!("the shim wrote no {}", file.display()))?)?;
            runs.push((u(&json, "ios"), u(&json, "bytes"), copies));
        }
        let [(n1, b1, a), (n2, b2, b)] = <[_; 2]>::try_from(runs).map_err(|_| anyhow::anyhow!("two runs"))?;
        let payload = b2.saturating_sub(b1);
        let dn = n2.saturating_sub(n1);
        Ok(b
            .iter()
            .map(|(name, (calls, bytes))| {
                let (c0, y0) = a.get(name).copied().unwrap_or((0, 0));
                (name.clone(), (per(diff(y0, *bytes), payload), per(diff(c0, *calls), dn)))
            })
            .collect())
    }

    fn concurrent_cpi(&self, driver: &Driver, runs: usize) -> Result<Vec<f64>> {
        (0..runs)
            .map(|_| {
                let json = run_json(self.native(driver, REFERENCE, 2000, "concurrent"), "concurrent run")?;
                completions_per_interrupt(&json).context("no interrupts in the concurrent run")
            })
            .collect()
    }

    /// [`Variant::iops`], and with `unverified` [`Variant::iops_unverified`] measured in turn
    /// with it.
    fn iops(&self, driver: &Driver, plan: &Plan, unverified: bool) -> Result<Rates> {
        let (mut out, mut bare_out) = (Vec::new(), Vec::new());
        for (bs, count) in [(4096u64, plan.wall_counts.0), (65536, plan.wall_counts.1)] {
            let c = Config { qd: REFERENCE.qd, bs };
            let (mut sim, mut bare, mut mem) = (0.0f64, 0.0f64, 0.0f64);
            let ramp = wall_ramp(c);
            let run = |verifier: bool| -> Result<f64> {
                let mut cmd = self.native(driver, c, count, "deterministic");
                cmd.args(["--ramp", &ramp.to_string()]);
                if !verifier {
                    cmd.arg(NO_VERIFIER);
                }
                let json = run_json(cmd, "wall-clock run")?;
                if json["ramp_ios"].as_u64().is_none() {
                    bail!("the wall-clock run of {count} I/Os ended before its ramp of {ramp}");
                }
                Ok(json["iops"].as_f64().unwrap_or(0.0))
            };
            for _ in 0..plan.wall_reps {
                sim = sim.max(run(true)?);
                if unverified {
                    bare = bare.max(run(false)?);
                }
                mem = mem.max(memcpy_iops(DISK_BYTES, c, count));
            }
            out.push((bs, sim, mem));
            if unverified {
                bare_out.push((bs, bare));
            }
        }
        Ok((out, bare_out))
    }
}

/// [`Variant::iops`] and [`Variant::iops_unverified`].
type Rates = (Vec<(u64, f64, f64)>, Vec<(u64, f64)>);

/// The middle of `xs` (the mean of the two middle ones for an even count); `None` when empty.
#[must_use]
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => v.get(mid).copied(),
        _ => Some((v.get(mid - 1)? + v.get(mid)?) / 2.0),
    }
}

/// The requests a wall-clock run completes before its IOPS counts (`rspvscsi-sim --ramp`): four
/// queues' worth. The first requests of a run allocate what later ones reuse (the submitter's
/// data buffers, SRB blocks, guard reservations); the copies of [`memcpy_iops`] are timed with
/// their buffers already made, so the CLI's figure leaves that out too.
#[must_use]
pub fn wall_ramp(c: Config) -> u64 {
    4 * u64::from(c.qd).max(1)
}

/// The rate of a plain copy of `count` blocks of `c.bs` bytes from random block-aligned places
/// of a `disk`-byte buffer into `c.qd` buffers in turn: what the emulator's reads would cost if
/// each were one `memcpy`. The `count` copies are repeated until they have taken
/// [`MEMCPY_MIN_TIME`]: the quick bench's 5000 copies of 4 KiB take a millisecond or two, which a
/// timer tick or a neighbour on the host can halve.
#[must_use]
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
pub fn memcpy_iops(disk: usize, c: Config, count: u64) -> f64 {
    let bs = c.bs as usize;
    let slots = (c.qd as usize).max(1);
    let src: Vec<u8> = (0..disk).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut dst = vec![vec![0u8; bs]; slots];
    let blocks = (disk / bs).max(1) as u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut done = 0u64;
    let started = Instant::now();
    loop {
        for i in 0..count {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = ((x % blocks) as usize) * bs;
            if let (Some(d), Some(s)) = (dst.get_mut(i as usize % slots), src.get(off..off + bs)) {
                d.copy_from_slice(s);
            }
            std::hint::black_box(&mut dst);
        }
        done += count;
        if count == 0 || started.elapsed() >= MEMCPY_MIN_TIME {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if secs > 0.0 { done as f64 / secs } else { f64::INFINITY }
}

/// How long [`memcpy_iops`] copies at least.
pub const MEMCPY_MIN_TIME: Duration = Duration::from_millis(20);

/// Runs `f` over `items` on `jobs` threads; the results in the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: &(dyn Fn(&T) -> Result<R> + Sync)) -> Result<Vec<Result<R>>> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = {
                        let Ok(mut n) = next.lock() else { return };
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(item) = items.get(i) else { return };
                    let r = f(item);
                    if let Ok(mut v) = results.lock()
                        && let Some(slot) = v.get_mut(i)
                    {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    Ok(results.into_inner().map_err(|_| anyhow::anyhow!("a worker panicked"))?.into_iter().map(|r| r.unwrap_or_else(|| bail!("a job did not run"))).collect())
}

fn measure(
    runner: &Runner<'_>,
    driver: &Driver,
    plan: &Plan,
    jobs: usize,
    shim: Option<&Path>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Variant> {
    let mut v = Variant { name: driver.name().into(), ..Variant::default() };
    let mut frames = match driver {
        Driver::Linked => match inline::Frames::load(runner.debug_cli) {
            Ok(f) => Some(f),
            Err(e) => {
                v.notes.push(format!(
                    "no line tables ({e:#}): emulator code that LTO inlined into driver functions counts as the miniport's"
                ));
                None
            }
        },
        Driver::Sys { .. } => None,
    };
    let runs: Vec<(Config, u64)> = plan
        .grid
        .iter()
        .flat_map(|&c| {
            let (n1, n2) = if c.bs > 4096 { plan.large_counts } else { plan.counts };
            [(c, n1), (c, n2)]
        })
        .collect();
    let raw = parallel(&runs, jobs, &|&(c, n)| {
        let t = Instant::now();
        let s = runner.callgrind(driver, c, n, true)?;
        log(&format!("  callgrind {} QD {:>2} bs {:>6} N {:>5}: {:.1} s", driver.name(), c.qd, c.bs, n, t.elapsed().as_secs_f64()));
        Ok(s)
    })?;
    // A configuration that failed is left out with a note; the others still count.
    let mut raw = raw.into_iter();
    for c in &plan.grid {
        let (Some(a), Some(b)) = (raw.next(), raw.next()) else { break };
        let pair = a.and_then(|a| Ok((a, b?))).and_then(|(a, b)| {
            Ok((runner.attribute(driver, frames.as_mut(), a)?, runner.attribute(driver, frames.as_mut(), b)?))
        });
        match pair {
            Ok((a, b)) => v.points.push(point(*c, &a, &b)),
            Err(e) => {
                log(&format!("  QD {} bs {}: not measured: {e:#}", c.qd, c.bs));
                v.notes.push(format!("QD {} bs {} not measured: {e:#}", c.qd, c.bs));
            }
        }
    }
    let unverified = cli_has_option(runner.cli, NO_VERIFIER);
    if unverified {
        log(&format!("  callgrind {} without the verifier", driver.name()));
        let pair = parallel(&[plan.counts.0, plan.counts.1], jobs, &|&n| runner.callgrind(driver, REFERENCE, n, false))?;
        match <[_; 2]>::try_from(pair) {
            Ok([Ok(a), Ok(b)]) => {
                let dn = u(&b.json, "ios").saturating_sub(u(&a.json, "ios"));
                v.whole_unverified = Some(per(diff(a.profile.total(), b.profile.total()), dn));
            }
            Ok([Err(e), _] | [_, Err(e)]) => v.notes.push(format!("without the verifier not measured: {e:#}")),
            Err(_) => v.notes.push("without the verifier not measured: two runs were asked for".into()),
        }
    } else {
        v.notes.push(format!("the CLI has no {NO_VERIFIER}: what the checks cost is not measured"));
    }
    if probes::have("strace") {
        log(&format!("  strace {}", driver.name()));
        let (calls, traps) = runner.syscalls(driver, plan.counts)?;
        v.syscalls = Some(calls);
        v.mmio_traps = Some(traps);
    } else {
        v.notes.push("syscalls not measured: strace is not installed (Debian: apt-get install strace)".into());
    }
    match shim {
        Some(shim) => {
            log(&format!("  copies {}", driver.name()));
            v.copies = Some(runner.copies(driver, shim, plan.counts)?);
            if matches!(driver, Driver::Sys { .. }) {
                v.notes.push("copies made inside the .sys (its own memcpy) are not seen by the shim".into());
            }
        }
        None => v.notes.push("copies not measured: no C compiler for the counting shim".into()),
    }
    if plan.wall_clock {
        log(&format!("  concurrent schedule and wall clock {}", driver.name()));
        v.concurrent_cpi = runner.concurrent_cpi(driver, plan.concurrent_runs)?;
        (v.iops, v.iops_unverified) = runner.iops(driver, plan, unverified)?;
    }
    Ok(v)
}

/// Runs the bench for `args` and writes its results; `log` gets progress.
///
/// # Errors
/// When a tool is missing (valgrind), a build fails, or a run fails.
pub fn run(args: &Args, log: &(dyn Fn(&str) + Sync)) -> Result<Results> {
    let started = Instant::now();
    if !probes::have("valgrind") {
        bail!("the bench counts instructions with callgrind: install valgrind (Debian: apt-get install valgrind)");
    }
    let plan = Plan::new(args);
    let out_dir = out_dir(args)?;
    let raw = out_dir.join("raw");
    std::fs::create_dir_all(&raw)?;
    let cli = match &args.cli {
        Some(p) => p.clone(),
        None => build_cli(&mut |l| log(l))?,
    };
    let mut results = Results {
        counts: plan.counts,
        quick: args.quick,
        command: std::iter::once("cargo xtask bench".to_string()).chain(std::env::args().skip(2)).collect::<Vec<_>>().join(" "),
        port: args.port.clone(),
        ..Results::default()
    };
    let mut drivers = vec![Driver::Linked];
    if args.no_sys {
        results.skipped.push(("sys".into(), "--no-sys".into()));
    } else if !cli_loads_images(&cli) {
        results.skipped.push(("sys".into(), "this rspvscsi-sim has no --driver option to load a .sys".into()));
    } else {
        match sys_image(args, &mut |l| log(l)) {
            Ok((sys, map)) => drivers.push(Driver::Sys { symbols: image::Symbols::load(&sys, &map)?, sys }),
            Err(e) => results.skipped.push(("sys".into(), format!("{e:#}"))),
        }
    }
    let shim = probes::build_shim(&raw).map_err(|e| log(&format!("no copy counts: {e:#}"))).ok();
    let cli = cli.canonicalize().with_context(|| format!("no CLI at {}", cli.display()))?;
    let run_cli = stripped(&cli, &raw).unwrap_or_else(|| cli.clone());
    let locked_sites = locked::sites(&run_cli, None)?;
    let runner = Runner { port: &args.port, cli: &run_cli, debug_cli: &cli, raw, locked_sites };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    for d in &drivers {
        log(&format!("measuring the {} driver: {} configurations × N = {} and {}", d.name(), plan.grid.len(), plan.counts.0, plan.counts.1));
        results.variants.push(measure(&runner, d, &plan, jobs, shim.as_deref(), log)?);
    }
    results.seconds = started.elapsed().as_secs_f64();
    report::write(&results, &out_dir)?;
    Ok(results)
}

/// The `.sys` and its map: `--sys`, or built by `cargo xtask sys` (signed when the signing
/// tools are there, since the package is shared with the tests that check the signature).
fn sys_image(args: &Args, log: &mut dyn FnMut(&str)) -> Result<(PathBuf, PathBuf)> {
    if let Some(sys) = &args.sys {
        return Ok((sys.clone(), sys.with_extension("map")));
    }
    // Missing signing tools only mean an unsigned image, which loads the same.
    if let Some(reason) = sys::unavailable_reason().filter(|r| !r.starts_with("signing needs")) {
        bail!("{}.sys cannot be built here: {reason}", args.flavor().name);
    }
    let opts = sys::Options { no_sign: !crate::sign::missing_tools().is_empty(), verbose: false };
    let p = sys::build(args.flavor(), &opts, log)?;
    Ok((p.sys, p.map))
}

/// Where the results go: `--out` or `target/bench`, made absolute. The stripped CLI that
/// callgrind runs lies there, and callgrind names it by its absolute path in the profile, which
/// the inline split matches by name: with a relative `--out` (CI's Storport run,
/// `--out target/bench-storport`) no instruction was found to be the emulator's inlined code,
/// and the emulator's register accesses inlined into `HwStorInterrupt` counted as the
/// miniport's (66 instructions per call against 56).
fn out_dir(args: &Args) -> Result<PathBuf> {
    let dir = args.out.clone().unwrap_or_else(|| sys::target_dir().join("bench"));
    std::path::absolute(&dir).with_context(|| format!("{}: no absolute path", dir.display()))
}

/// `cargo xtask bench`: runs, prints the table, and with `--check` fails past a target.
///
/// # Errors
/// When the bench cannot run.
pub fn main(args: &Args) -> Result<ExitCode> {
    let table = thresholds::table(&args.port);
    let held = thresholds::held(table, args.check, args.check_only.as_deref())?;
    let results = run(args, &|line| eprintln!("{line}"))?;
    let md = report::markdown(&results);
    println!("{md}");
    let verdicts = thresholds::check(table, &results.figures());
    println!("results: {}", out_dir(args)?.join("bench.json").display());
    println!("bench took {:.0} s", results.seconds);
    let (failing, reported): (Vec<_>, Vec<_>) = verdicts.into_iter().filter(|v| !v.ok).partition(|v| held.contains(&v.key));
    if failing.is_empty() && reported.is_empty() {
        println!("every figure meets its target");
    }
    if !reported.is_empty() {
        println!("figures past their targets (reported only; --check fails on them):\n{}", thresholds::describe_failures(table, &reported));
    }
    if failing.is_empty() {
        if !held.is_empty() {
            println!("every figure held (--check{}) meets its target", if args.check { "" } else { "-only" });
        }
        Ok(ExitCode::SUCCESS)
    } else {
        println!("figures past their targets (--check{}):\n{}", if args.check { "" } else { "-only" }, thresholds::describe_failures(table, &failing));
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_out_directory_is_made_absolute() {
        // Parsed as `cargo xtask bench` parses it, with CI's Storport arguments.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: Args,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["bench", "--quick", "--port", "storport", "--out", "target/bench-storport"]).unwrap();
        let dir = out_dir(&cli.bench).unwrap();
        assert!(dir.is_absolute() && dir.ends_with("target/bench-storport"), "{}", dir.display());
        let cli = <Cli as clap::Parser>::try_parse_from(["bench"]).unwrap();
        assert_eq!(out_dir(&cli.bench).unwrap(), sys::target_dir().join("bench"));
    }

    fn calls(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
    }

    #[test]
    fn storport_s_isr_and_its_completions_per_interrupt_are_measured_too() {
        let mut p = Point { config: Some(REFERENCE), ..Point::default() };
        p.routines.insert("HwStorInterrupt".into(), RoutineFigure { per_call: 41.0, ..RoutineFigure::default() });
        let v = Variant { points: vec![p], ..Variant::default() };
        assert_eq!(v.figures().get("isr_per_call"), Some(&41.0));
        // A Storport run completes in its DPC: none in interrupt context, 9 per interrupt.
        let json = serde_json::json!({"ios": 900, "interrupts": 100, "completions_per_interrupt": 0.0});
        assert_eq!(completions_per_interrupt(&json), Some(9.0));
        assert_eq!(completions_per_interrupt(&serde_json::json!({"ios": 9, "interrupts": 0})), None);
    }

    #[test]
    fn the_concurrent_figure_held_is_the_median_run_not_the_outlier() {
        // CI's run of ff4bf4f: one run of three slowed by the host.
        assert_eq!(median(&[10.753, 5.362, 10.256]), Some(10.256));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let v = Variant { concurrent_cpi: vec![10.753, 5.362, 10.256, 11.0, 9.9], ..Variant::default() };
        assert_eq!(v.figures().get("completions_per_interrupt_concurrent_median"), Some(&10.256));
    }

    #[test]
    fn the_memcpy_reference_copies_for_its_minimum_time_however_few_copies_it_is_asked_for() {
        // Ten copies of 4 KiB take microseconds; the rate is taken over repeats of them that
        // fill at least the minimum time, which bounds the rate from above.
        let started = Instant::now();
        let rate = memcpy_iops(1 << 20, Config { qd: 4, bs: 4096 }, 10);
        let took = started.elapsed();
        assert!(took >= MEMCPY_MIN_TIME, "{took:?}");
        assert!(rate.is_finite() && rate > 0.0, "{rate}");
    }

    #[test]
    fn only_one_rt_sigreturn_per_mmio_trap_leaves_the_count() {
        let out = split_mmio_traps(calls(&[("rt_sigreturn", 1.4), ("mprotect", 2.0)]), 1.4);
        assert_eq!(out, calls(&[("mprotect", 2.0)]));
        // A signal the traps do not explain still counts, and no other call is touched.
        let out = split_mmio_traps(calls(&[("rt_sigreturn", 1.5), ("futex", 0.25)]), 1.0);
        assert_eq!(out, calls(&[("rt_sigreturn", 0.5), ("futex", 0.25)]));
        // The linked-in driver traps nothing: its rt_sigreturn calls are the emulator's own.
        let out = split_mmio_traps(calls(&[("rt_sigreturn", 0.5)]), 0.0);
        assert_eq!(out, calls(&[("rt_sigreturn", 0.5)]));
        // More traps than returns (a run cut short) never makes a count negative.
        let out = split_mmio_traps(calls(&[("rt_sigreturn", 0.5)]), 3.0);
        assert!(out.is_empty());
        assert_eq!(split_mmio_traps(calls(&[("rt_sigreturn", 0.5)]), f64::NAN), calls(&[("rt_sigreturn", 0.5)]));
    }
}
