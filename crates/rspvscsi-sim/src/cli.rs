//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Runs the rspvscsi SCSI Port miniport (or the emulator's test miniport) in the SCSI Port \
emulator, against the PVSCSI device model or a real PVSCSI function through uio, and checks it: \
Driver-Verifier-style rules, data integrity, error handling.";

const AFTER: &str = "\
Exit status: 0 pass; 1 a verifier violation, an I/O error, a data mismatch, a failed check or \
output that could not be written (--trace, --json, stdout); 2 a usage error (including an image \
that is missing, not a regular file, not whole 512-byte sectors, or given twice).

An image (--disk file:PATH) is written only when asked: by naming a workload that writes \
(--workload mixed, write or write-pattern) or with --allow-write (scenario and probe write too). \
Otherwise it is opened read-only. A run that wrote ends with SYNCHRONIZE CACHE to every disk \
through the driver and the images fsync'd.

Examples:
  rspvscsi-sim                                   the driver on a RAM disk, a short mixed verify run
  rspvscsi-sim --disk ram:64M --disk ram:1G --qd 64 --seconds 5 --mode concurrent
  rspvscsi-sim --disk file:d0.img --workload write-pattern --seed 7
  rspvscsi-sim --disk file:d0.img --workload verify-pattern --seed 7
  rspvscsi-sim soak --seeds 4 --steps 100000         randomized I/O with every fault, both schedules
  rspvscsi-sim check-image --seed 7 d0.img       check a raw image on the host, no driver
  rspvscsi-sim scenario                          the scenario set on the device model
  rspvscsi-sim --trace a.jsonl --driver rspvscsi_c.sys; rspvscsi-sim --trace b.jsonl
  rspvscsi-sim trace-diff a.jsonl b.jsonl        the C reference's trace against the Rust driver's
  rspvscsi-sim trace-export --chrome a.jsonl -o a.json   a timeline for Perfetto or chrome://tracing
  rspvscsi-sim --hba uio:0000:00:03.0 --workload inquiry";

/// `rspvscsi-sim`: the rspvscsi miniport in the SCSI Port emulator.
#[derive(Debug, Parser)]
#[command(name = "rspvscsi-sim", version, about = ABOUT, after_help = AFTER, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do besides running a workload.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The run (no subcommand).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the scenario set (bring-up, pattern, page-crossing transfers, bad LBA, missing
    /// target, bus reset under load), each on a fresh machine; all of them unless named.
    Scenario {
        /// Scenarios to run (default: all). `list` prints them.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// The machine and the options scenarios share.
        #[command(flatten)]
        run: RunArgs,
    },
    /// Checks raw image files for the write-pattern of SEED, without running any driver.
    CheckImage(CheckImageArgs),
    /// Sends a fixed catalogue of requests through the driver and records what the device
    /// answered to each (status, sense, data); for comparing the model with QEMU (probe-diff).
    Probe {
        /// Also write the answer, framed with a length and hash, to FILE (e.g. /dev/ttyS1 in
        /// the QEMU guest).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The machine (default disks: ram:8M and ram:12M, as the QEMU harness has).
        #[command(flatten)]
        run: RunArgs,
    },
    /// Compares two probe answers (e.g. QEMU's and the model's); differences not in the
    /// allowlist fail. With --make-golden, turns one answer into a golden file instead.
    ProbeDiff(ProbeDiffArgs),
    /// Randomized I/O under every fault the emulator can make (device-, port- and class-initiated
    /// resets, aborts, timeouts, lost requests, injected statuses and sense, a hostile device,
    /// hot-plug, stop/restart, PnP stop/start), in both schedules, across seeds, every byte
    /// verified; each failure with the command that reproduces it.
    Soak(SoakArgs),
    /// Sends one SCSI command (any CDB, data direction and buffer length, as a pass-through
    /// could) through the miniport and prints how it ended; then a TEST UNIT READY, to show the
    /// device still answers. Fails when the ending is not one of --expect.
    Cdb(CdbArgs),
    /// Compares two traces (--trace FILE of two runs: the C reference and the Rust driver on the
    /// same seed, say) event by event: routines called, notifications, register accesses, DMA
    /// (with --trace-dma), completions with status, sense and length. Prints the first
    /// difference with the events before and after it, then the differences by kind of event
    /// and a summary. Exit status: 0 the traces agree under the allowlist, 1 they differ, 2 a
    /// file cannot be read or is not a trace, or the allowlist is malformed (as diff(1)).
    TraceDiff(TraceDiffArgs),
    /// Writes a trace (--trace FILE) as a timeline. --chrome: Chrome's trace-event JSON, which
    /// Perfetto and `chrome://tracing` open: per adapter a process whose tracks are `StartIo`,
    /// the ISR, the DPC (the enable and disable callbacks), reset and control, the port, the
    /// interrupt line and the device's DMA; routines, completions and resets are slices, each
    /// request a flow from `HwScsiStartIo` to its completion. Exit status: 0 written, 1 the
    /// output could not be written, 2 the trace cannot be read or parsed, or no format was named.
    TraceExport(TraceExportArgs),
    /// Writes CODE to QEMU's isa-debug-exit port (0xf4): QEMU exits with status (CODE << 1) | 1.
    DebugExit {
        /// 0..=127 (0: pass, 1: fail by convention).
        code: u8,
    },
}

/// `trace-diff` options.
#[derive(Debug, Args)]
pub struct TraceDiffArgs {
    /// What may differ, each entry with its reason: `field KEY: reason`, `field KEY in NAME:
    /// reason`, `event NAME: reason` (e.g. driver/c-reference/trace.allow). Default: nothing.
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// Events shown before the first difference (those both traces share).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub context: usize,
    /// Names for the two traces in the report, comma-separated (default: their file names).
    #[arg(long, value_name = "A,B")]
    pub labels: Option<String>,
    /// The first trace (JSON Lines, as --trace writes it).
    #[arg(value_name = "A.jsonl")]
    pub a: PathBuf,
    /// The second trace.
    #[arg(value_name = "B.jsonl")]
    pub b: PathBuf,
}

/// `trace-export` options.
#[derive(Debug, Args)]
pub struct TraceExportArgs {
    /// Chrome's trace-event format (the JSON object form).
    #[arg(long)]
    pub chrome: bool,
    /// Every port service call too (register accesses, address translations), as instants on
    /// the track of the routine that made it.
    #[arg(long)]
    pub services: bool,
    /// Where to write it (default: stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The trace (JSON Lines, as --trace writes it).
    #[arg(value_name = "TRACE.jsonl")]
    pub input: PathBuf,
}

/// `check-image` options.
#[derive(Debug, Args)]
pub struct CheckImageArgs {
    /// The seed the pattern was written with.
    #[arg(long)]
    pub seed: u64,
    /// Check only the first N sectors (default: the whole file).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sectors: Option<u64>,
    /// Also print the result as one JSON object per image, with every bad sector as extents.
    #[arg(long)]
    pub json: bool,
    /// Raw image files (LBA × 512 = file offset).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `soak`'s default queue depth.
pub const SOAK_QD: u32 = 16;
/// `soak`'s default fault rate (one per this many steps).
pub const SOAK_FAULT_EVERY: u64 = 40;

/// The schedules a soak runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SoakMode {
    /// Each seed in both.
    Both,
    /// Deterministic only (a failure replays exactly).
    Deterministic,
    /// Concurrent only.
    Concurrent,
}

/// `soak` options.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Steps per run: each an I/O submitted or a fault made.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Number of seeds (each run in each schedule of --mode).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// The schedules.
    #[arg(long, value_enum, default_value = "both")]
    pub mode: SoakMode,
    /// Fault kinds, comma-separated: all, none, or of device-bus-reset, device-target-reset,
    /// device-adapter-reset, port-reset, class-reset, abort, timeout, lost, status, sense,
    /// hostile, hot-plug, stop-restart, pnp-stop-start.
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub faults: Vec<String>,
    /// One fault per N steps on average.
    #[arg(long, value_name = "N", default_value_t = SOAK_FAULT_EVERY, value_parser = clap::value_parser!(u64).range(1..))]
    pub fault_every: u64,
    /// Requests kept outstanding.
    #[arg(long, value_name = "N", default_value_t = SOAK_QD, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub qd: u32,
    /// The HBA: model or model-vmware.
    #[arg(long, value_name = "HBA", value_parser = parse_hba, default_value = "model")]
    pub hba: HbaArg,
    /// The port driver: scsiport or storport (as for `run`).
    #[arg(long, value_enum, default_value = "scsiport")]
    pub port: PortArg,
    /// The miniport to load (the test miniport's `break=` knobs show what a failure looks like).
    #[arg(long, value_enum, default_value = "rspvscsi")]
    pub miniport: MiniportArg,
    /// Run this driver image instead of the linked-in rspvscsi driver: a `.sys` (e.g. what
    /// `cargo xtask sys` builds), mapped by the emulator's PE loader, its imports linked against
    /// the emulated SCSIPORT.SYS, its direct register accesses emulated (crates/scsiport-sim/LOADER.md).
    #[arg(long, value_name = "PATH.sys", conflicts_with = "miniport")]
    pub driver: Option<PathBuf>,
    /// `ArgumentString` handed to `HwScsiFindAdapter` (test miniport default: "tagged=1 qd=8").
    #[arg(long = "args", value_name = "STRING")]
    pub argument_string: Option<String>,
    /// Runs at a time (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Write the emulator's trace of the run to FILE (one run only).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The memory monitor's full quarantine: every completed SRB's pages stay guarded and are
    /// never reused, so that a late access by the miniport, however late, is a 0xD1 bug check
    /// naming the routine and the SRB instead of a write into memory handed out again
    /// (crates/scsiport-sim/VERIFIER.md; also on with `SCSIPORT_SIM_QUARANTINE=all`)
    #[arg(long)]
    pub quarantine: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The data direction a `cdb` request's `SrbFlags` give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DirArg {
    /// `SRB_FLAGS_DATA_IN`.
    In,
    /// `SRB_FLAGS_DATA_OUT`.
    Out,
    /// Neither bit.
    None,
    /// Both bits (`SRB_FLAGS_UNSPECIFIED_DIRECTION`).
    Unspecified,
}

/// `cdb` options. The target is --target (default 0).
#[derive(Debug, Args)]
pub struct CdbArgs {
    /// The CDB in hex, e.g. 2a00000000000000010000.
    #[arg(value_name = "HEX")]
    pub cdb: String,
    /// The request's data direction.
    #[arg(long, value_enum, default_value = "none")]
    pub dir: DirArg,
    /// Data buffer bytes (`DataTransferLength`).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub len: u32,
    /// The byte a data-out buffer is filled with.
    #[arg(long, value_name = "BYTE", default_value_t = 0)]
    pub fill: u8,
    /// The start of a data-out buffer, in hex (a parameter list); the rest is --fill.
    #[arg(long, value_name = "HEX")]
    pub data: Option<String>,
    /// The logical unit.
    #[arg(long, default_value_t = 0)]
    pub lun: u8,
    /// Send it untagged.
    #[arg(long)]
    pub untagged: bool,
    /// `TimeOutValue`: after this many seconds the port resets the bus.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u32,
    /// The SRB statuses the command may end with (a name such as `SUCCESS` or a number);
    /// repeatable. Default: any, as long as it ends.
    #[arg(long, value_name = "STATUS")]
    pub expect: Vec<String>,
    /// The bytes data-in must start with, in hex (fails otherwise).
    #[arg(long, value_name = "HEX")]
    pub expect_data: Option<String>,
    /// The machine (default disks: ram:8M and ram:12M, as the QEMU harness has).
    #[command(flatten)]
    pub run: RunArgs,
}

/// `probe-diff` options.
#[derive(Debug, Args)]
pub struct ProbeDiffArgs {
    /// The allowlist (default: the one built in, crates/rspvscsi-sim/probe/allowlist).
    #[arg(long, value_name = "FILE")]
    pub allowlist: Option<PathBuf>,
    /// Names of the two sides in the report.
    #[arg(long, value_name = "A,B", default_value = "expected,actual")]
    pub labels: String,
    /// Also list the allowlisted differences with both values.
    #[arg(long)]
    pub verbose: bool,
    /// Print a golden file made from the one answer given (allowlisted fields removed).
    #[arg(long)]
    pub make_golden: bool,
    /// With --make-golden: where the answer came from (stored as "source").
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub source: String,
    /// The reference answer (plain or framed JSON), then the answer to check.
    #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The port driver the machine emulates, and so which flavour of the driver runs on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PortArg {
    /// SCSI Port, with the SCSI Port flavour (`rspvscsi.sys`, `rspvscsi::scsi_port`).
    #[default]
    Scsiport,
    /// Storport, with the Storport flavour (`rspvscsi_storport.sys`, `rspvscsi::stor_port`).
    Storport,
}

impl PortArg {
    /// The emulator's port.
    #[must_use]
    pub fn sim(self) -> scsiport_sim::Port {
        match self {
            Self::Scsiport => scsiport_sim::Port::ScsiPort,
            Self::Storport => scsiport_sim::Port::Storport,
        }
    }

    /// Its name on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Scsiport => "scsiport",
            Self::Storport => "storport",
        }
    }
}

/// Which miniport runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MiniportArg {
    /// The rspvscsi driver, the flavour of the port (`rspvscsi::scsi_port`, `rspvscsi::stor_port`).
    Rspvscsi,
    /// The emulator's own test miniport (`scsiport_sim::test_miniport`, or
    /// `scsiport_sim::stor_test_miniport` on Storport).
    Test,
}

/// The schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One thread, virtual time, seeded: the same seed gives the same run.
    Deterministic,
    /// Real threads and time: the device completes on its own thread.
    Concurrent,
}

/// What the run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// Random reads and writes; every read is checked against what was written.
    Mixed,
    /// Random reads (not checked).
    Read,
    /// Random writes (not read back).
    Write,
    /// Writes every sector of every disk once with the pattern of --seed.
    WritePattern,
    /// Reads every sector of every disk and checks the pattern of --seed.
    VerifyPattern,
    /// Bring-up, then INQUIRY, READ CAPACITY(10/16) and TEST UNIT READY of every disk.
    Inquiry,
    /// READs past the last LBA: each must end in CHECK CONDITION, sense 05/21/00.
    BadLba,
    /// Commands to a target with no disk (--target): each must end in selection timeout.
    MissingTarget,
}

impl WorkloadArg {
    /// Whether it writes to the disks.
    #[must_use]
    pub fn writes(self) -> bool {
        matches!(self, Self::Mixed | Self::Write | Self::WritePattern)
    }

    /// The name as typed.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Mixed => "mixed",
            Self::Read => "read",
            Self::Write => "write",
            Self::WritePattern => "write-pattern",
            Self::VerifyPattern => "verify-pattern",
            Self::Inquiry => "inquiry",
            Self::BadLba => "bad-lba",
            Self::MissingTarget => "missing-target",
        }
    }
}

/// The HBA behind the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HbaArg {
    /// The PVSCSI model, QEMU layout.
    Model,
    /// The PVSCSI model, VMware layout (I/O BAR 0, 64-bit MMIO BAR 1, VMware's data lengths).
    ModelVmware,
    /// A real PVSCSI function bound to `uio_pci_generic`.
    Uio(String),
}

impl HbaArg {
    /// Whether this is the device model.
    #[must_use]
    pub fn is_model(&self) -> bool {
        !matches!(self, Self::Uio(_))
    }
}

impl std::fmt::Display for HbaArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Model => f.write_str("model"),
            Self::ModelVmware => f.write_str("model-vmware"),
            Self::Uio(bdf) => write!(f, "uio:{bdf}"),
        }
    }
}

fn parse_time_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (1.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: a number from 1 to 1000")),
    }
}

fn parse_hba(s: &str) -> Result<HbaArg, String> {
    match s {
        "model" => Ok(HbaArg::Model),
        "model-vmware" => Ok(HbaArg::ModelVmware),
        _ => match s.strip_prefix("uio:") {
            Some(bdf) if !bdf.is_empty() => Ok(HbaArg::Uio(bdf.to_string())),
            _ => Err("expected model, model-vmware or uio:<PCI address> (e.g. uio:0000:00:03.0)".into()),
        },
    }
}

/// A byte count with an optional K/M/G suffix.
fn parse_bytes(s: &str) -> Result<u64, String> {
    scsiport_sim::disk::parse_size(s).map_err(|e| e.to_string())
}

/// A `--disk` spec: `ram:SIZE` or `file:PATH`, then `,key=value` options (`serial=`, `name=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// `ram:SIZE` or `file:PATH`.
    pub medium: String,
    /// The unit serial number (QEMU's scsi-hd `serial=`): VPD page 0x80 and the device
    /// identification. None: no serial, like scsi-hd without one.
    pub serial: Option<String>,
    /// The drive's name (QEMU's `-drive id=`), which scsi-hd reports as the device identification
    /// when it has no serial. Default: d0, d1, ... in order, as the QEMU harness names them.
    pub name: Option<String>,
}

fn parse_disk(s: &str) -> Result<DiskSpec, String> {
    let mut parts = s.split(',');
    let medium = parts.next().unwrap_or_default().to_string();
    let mut spec = DiskSpec { medium, serial: None, name: None };
    for opt in parts {
        match opt.split_once('=') {
            Some(("serial", v)) if !v.is_empty() => spec.serial = Some(v.to_string()),
            Some(("name", v)) if !v.is_empty() => spec.name = Some(v.to_string()),
            _ => return Err(format!("unknown disk option {opt:?} (serial=TEXT, name=TEXT)")),
        }
    }
    if let Some(size) = spec.medium.strip_prefix("ram:") {
        let n = parse_bytes(size)?;
        if n < 512 {
            return Err(format!("a RAM disk needs at least one 512-byte sector, not {n} bytes"));
        }
        Ok(spec)
    } else if spec.medium.strip_prefix("file:").is_some_and(|p| !p.is_empty()) {
        Ok(spec)
    } else {
        Err("expected ram:SIZE (e.g. ram:64M) or file:PATH (a raw image), then ,serial=TEXT or ,name=TEXT".into())
    }
}

impl DiskSpec {
    /// The image path of a `file:` disk.
    #[must_use]
    pub fn file(&self) -> Option<&str> {
        self.medium.strip_prefix("file:")
    }

    /// A spec from text already known to be valid (defaults of the program).
    ///
    /// # Panics
    /// When the text is not a valid spec (a programming error).
    #[must_use]
    pub fn fixed(s: &str) -> Self {
        parse_disk(s).unwrap_or_else(|e| panic!("built-in disk spec {s:?}: {e}"))
    }
}

fn parse_latency(s: &str) -> Result<(u64, u64), String> {
    let us = |t: &str| t.trim().parse::<u64>().map_err(|_| format!("{t:?} is not a number of microseconds"));
    match s.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (us(a)?, us(b)?);
            if lo > hi {
                return Err(format!("the range {lo}-{hi} ends before it starts (MIN-MAX, MIN <= MAX)"));
            }
            Ok((lo, hi))
        }
        None => us(s).map(|v| (v, v)),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

impl RunArgs {
    /// The workload: as given, or mixed.
    #[must_use]
    pub fn workload(&self) -> WorkloadArg {
        self.workload.unwrap_or(WorkloadArg::Mixed)
    }
}

/// Everything that shapes a run.
#[derive(Clone, Debug, Args)]
#[allow(clippy::struct_excessive_bools)]
pub struct RunArgs {
    /// The port driver: scsiport (SCSI Port and the driver's SCSI Port flavour) or storport
    /// (Storport and its Storport flavour; a --driver image must be a Storport one).
    #[arg(long, value_enum, default_value = "scsiport")]
    pub port: PortArg,
    /// The miniport to load.
    #[arg(long, value_enum, default_value = "rspvscsi")]
    pub miniport: MiniportArg,
    /// Run this driver image instead of the linked-in rspvscsi driver: a `.sys` (e.g. what
    /// `cargo xtask sys` builds), mapped by the emulator's PE loader, its imports linked against
    /// the emulated SCSIPORT.SYS, its direct register accesses emulated (crates/scsiport-sim/LOADER.md).
    #[arg(long, value_name = "PATH.sys", conflicts_with = "miniport")]
    pub driver: Option<PathBuf>,
    /// `ArgumentString` handed to `HwScsiFindAdapter` (test miniport default: "tagged=1 qd=8").
    #[arg(long = "args", value_name = "STRING")]
    pub argument_string: Option<String>,
    /// The HBA: model (PVSCSI model, QEMU layout), model-vmware (VMware layout), or
    /// `uio:<PCI address>` (a real PVSCSI through `uio_pci_generic`; needs root).
    #[arg(long, value_name = "HBA", value_parser = parse_hba, default_value = "model")]
    pub hba: HbaArg,
    /// A disk for the model: `ram:SIZE` (K/M/G suffixes) or `file:PATH` (raw image), optionally
    /// followed by `,serial=TEXT` (a unit serial number) and `,name=TEXT` (the drive name scsi-hd
    /// reports without a serial; default d0, d1, ...). Repeatable, one target each: 0, 1, ...
    /// skipping 7 (the initiator). Default: one ram:16M.
    #[arg(long = "disk", value_name = "SPEC", value_parser = parse_disk)]
    pub disks: Vec<DiskSpec>,
    /// What the run does (default: mixed, which writes; on a file: image it must be named, or
    /// --allow-write given).
    #[arg(long, value_enum)]
    pub workload: Option<WorkloadArg>,
    /// Let the run write to file: images (scenario, probe, or the default workload). Without
    /// it, and without a writing workload named with --workload, images are opened read-only
    /// and a run that would write to one is refused.
    #[arg(long)]
    pub allow_write: bool,
    /// Requests kept outstanding.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub qd: u32,
    /// Bytes per request, a multiple of 512, at most 128K (default: mixed 512..64K at random,
    /// read/write 4K, patterns 64K).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub bs: Option<u64>,
    /// Where each data buffer starts inside its first page (0..4095): transfers then cross page
    /// boundaries at odd places.
    #[arg(long, value_name = "BYTES", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..4096))]
    pub buffer_offset: u16,
    /// Stop after N requests (default: 2000 for random workloads, every sector for patterns).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after S seconds of wall time.
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub seconds: Option<f64>,
    /// Leave the first N completed requests out of IOPS, as fio's `ramp_time` does (counted in
    /// requests here, so that a deterministic run ramps the same way each time): the buffers,
    /// SRB blocks and guard pages a run allocates as it starts are then not in the figure.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ramp: Option<u64>,
    /// Seed of the workload, the pattern, the device model and the deterministic schedule.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// The schedule (default: deterministic on the model, concurrent on uio).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// The target of missing-target (default: the first free ID other than 7).
    #[arg(long, value_name = "ID")]
    pub target: Option<u8>,
    /// Submit `SRB_FUNCTION_RESET_BUS` after every N requests, with the others in flight;
    /// requests the reset completes are reissued.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub reset_bus_every: Option<u64>,
    /// SCSI Port's hold after a bus reset, in ms of machine time.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub reset_hold_ms: u64,
    /// Multiplier on the verifier's routine time limits (0x1002 `RoutineTooLong`: 0.5 s,
    /// `HwScsiInitialize` 5 s), for a machine far slower than the hardware the limits are for: a
    /// QEMU guest under TCG on a loaded host (tests/qemu/scenarios uses 20). 1 to 1000.
    #[arg(long, value_name = "N", default_value_t = 1.0, value_parser = parse_time_scale)]
    pub time_scale: f64,
    /// Run without the verifier, as Windows runs a driver Driver Verifier is not enabled for: no
    /// rule is checked, the memory monitor neither poisons nor guards, and the port behaves the
    /// same otherwise. For measuring what the checks cost (`cargo xtask bench` does); a run that
    /// is to find bugs leaves it on.
    #[arg(long)]
    pub no_verifier: bool,
    /// Device model completion latency in µs: N or MIN-MAX (default 20-100).
    #[arg(long, value_name = "US", value_parser = parse_latency)]
    pub latency_us: Option<(u64, u64)>,
    /// Write the emulator's JSON Lines trace (TRACE.md) to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// With --trace: the device model's DMA too (`dma` events: descriptors, scatter-gather
    /// lists, data, sense, completions and ring indexes, each with a digest of the bytes).
    #[arg(long, requires = "trace")]
    pub trace_dma: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Never draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// At exit, write the verdict to QEMU's isa-debug-exit port 0xf4 (0 pass, 1 fail; QEMU then
    /// exits with 1 or 3). For a test guest's last command.
    #[arg(long)]
    pub debug_exit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_harness_lines() {
        let c = Cli::try_parse_from(["x", "--hba", "uio:0000:00:03.0", "--workload", "write-pattern", "--seed", "11", "--bs", "65536", "--qd", "8"]).unwrap();
        assert_eq!(c.run.hba, HbaArg::Uio("0000:00:03.0".into()));
        assert_eq!(c.run.bs, Some(65536));
        let c = Cli::try_parse_from(["x", "check-image", "--seed", "11", "a.img"]).unwrap();
        assert!(matches!(c.command, Some(Command::CheckImage(CheckImageArgs { seed: 11, .. }))));
        let c = Cli::try_parse_from(["x", "scenario", "bad-lba", "--mode", "concurrent"]).unwrap();
        assert!(matches!(c.command, Some(Command::Scenario { ref names, ref run }) if names == &["bad-lba"] && run.mode == Some(ModeArg::Concurrent)));
        assert!(Cli::try_parse_from(["x", "--disk", "tape:1"]).is_err());
        let c = Cli::try_parse_from(["x", "--disk", "ram:8M,name=d0", "--disk", "file:a.img,serial=SN1,name=x"]).unwrap();
        assert_eq!(c.run.disks[0], DiskSpec { medium: "ram:8M".into(), serial: None, name: Some("d0".into()) });
        assert_eq!(c.run.disks[1].serial.as_deref(), Some("SN1"));
        assert!(Cli::try_parse_from(["x", "--disk", "ram:8M,colour=blue"]).is_err());
        assert!(Cli::try_parse_from(["x", "--buffer-offset", "4096"]).is_err());
        assert_eq!(parse_latency("5-50"), Ok((5, 50)));
        assert!(parse_latency("100-10").is_err());
        for nonsense in [&["--count", "0"][..], &["--ramp", "0"], &["--reset-bus-every", "0"], &["--latency-us", "100-10"], &["check-image", "--seed", "1", "--sectors", "0", "a.img"]] {
            let mut argv = vec!["x"];
            argv.extend_from_slice(nonsense);
            assert!(Cli::try_parse_from(&argv).is_err(), "{nonsense:?} accepted");
        }
    }
}
