//! `soak`: randomized I/O under every fault the emulator can make, in both schedules, across
//! seeds, with every byte checked.
//!
//! A run is a number of steps on a fresh machine (the driver on the PVSCSI model, two RAM disks).
//! A step is either an I/O submitted (a READ or WRITE of 1 to 64 sectors at a random LBA, from a
//! buffer at a random offset in its page) or a fault made ([`FaultKind`]); the I/O is kept `--qd`
//! deep, and a request never overlaps a write (or a fault's victim) in flight. Every completion is
//! judged:
//!
//! * a successful READ must return, sector by sector, what the soak knows the disk holds (zero
//!   until written, then the pattern of the last successful write; a failed write makes its
//!   sectors unknown until the next successful one), and a success must move every byte;
//! * `SRB_STATUS_BUS_RESET` is reissued and UNIT ATTENTION retried, as a class driver does;
//! * a request a fault was aimed at (its *victim*) must end as the fault implies (an injected
//!   CHECK CONDITION with that sense, an injected SCSI status, an aborted request ABORTED, ...);
//! * any other failure is allowed only if a fault that could cause it happened while the request
//!   was outstanding (a reset, hostile device writes, the target unplugged, a port-initiated
//!   reset seen in the port's counters); otherwise it is a failure of the run.
//!
//! The machine's verifier stops the run at the first rule broken (a lost or twice-completed
//! request, an interrupt storm, ...), and a request that never completes stops it too. At the end
//! every sector of every disk is read back through the driver and read from the medium directly,
//! and checked. Each failure is printed with the command that reproduces it; in the
//! deterministic schedule that command replays the run exactly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scsiport_sim::disk::{Disk, Sense};
use scsiport_sim::pvscsi::{Effect, FaultAction, HostileAction, HostileConfig, Injection, InjectionId, PvscsiDevice, Trigger};
use scsiport_sim::{Completion, Error, Request, Schedule, Ticket};
use scsiport_sys as sys;
use serde_json::{Value, json};

use crate::app::{self, Verdict};
use crate::cli::{DiskSpec, HbaArg, MiniportArg, PortArg, SoakArgs, SoakMode};
use crate::pattern::{self, SECTOR};
use crate::rig::{self, Rig, RigConfig};

/// The soak's disks: small, so that reads often meet earlier writes, and two sizes.
const DISKS: [&str; 2] = ["ram:4M", "ram:6M"];
/// Largest request, in sectors.
const MAX_BLOCKS: u64 = 64;
/// `TimeOutValue` of ordinary requests (s): what a hung request costs in the concurrent schedule.
const TIMEOUT_S: u32 = 2;
/// `TimeOutValue` of a lost or slow victim (s).
const VICTIM_TIMEOUT_S: u32 = 1;
/// `TimeOutValue` of an abort's victim (s): long, so that the abort, not the timeout, ends it.
const ABORT_VICTIM_TIMEOUT_S: u32 = 30;
/// Retries of one request on UNIT ATTENTION before it counts as failed.
const UA_RETRIES: u32 = 32;
/// Reissues of one request after `BUS_RESET` before it counts as failed.
const REISSUES: u32 = 64;
/// The SCSI Port reset hold of a soak machine: short, since resets are frequent.
const RESET_HOLD: Duration = Duration::from_millis(1);
/// Deterministic schedule: steps a lost or slow victim may stay outstanding before the soak
/// stops submitting so that machine time reaches its timeout.
const SLOW_PATIENCE: u64 = 32;

/// Shadow value of a sector nobody wrote: it reads as zeros.
const ZERO: u64 = 0;
/// Shadow value of a sector whose content is unknown (a write to it failed).
const UNKNOWN: u64 = u64::MAX;

/// One kind of fault the soak makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Another initiator resets the bus (device side): in-flight requests end BUSRESET.
    DeviceBusReset,
    /// A reset of one target from the device side.
    DeviceTargetReset,
    /// The device resets itself (`ADAPTER_RESET`'s effects): rings forgotten, requests cancelled.
    DeviceAdapterReset,
    /// SCSI Port's own bus reset with requests at the miniport (`HwScsiResetBus`); one in four
    /// with a reset from the device side in the middle of the reset's `SETUP_RINGS`.
    PortReset,
    /// A class driver's `SRB_FUNCTION_RESET_BUS`.
    ClassReset,
    /// `SRB_FUNCTION_ABORT_COMMAND` for a request the device sits on.
    Abort,
    /// A request the device finishes only after its timeout: the port times it out and resets.
    Timeout,
    /// A request the device never finishes: the port's timeout recovers it.
    Lost,
    /// An injected host status or SCSI status (BUSY, TASK SET FULL, RESERVATION CONFLICT).
    Status,
    /// An injected CHECK CONDITION with sense data.
    Sense,
    /// A window of hostile device writes (garbage indexes, forged and stale contexts, ...).
    Hostile,
    /// A disk unplugged with requests in flight, plugged back later.
    HotPlug,
    /// `ScsiStopAdapter` then `ScsiRestartAdapter` (power management).
    StopRestart,
    /// A PnP stop and start: a fresh `HwScsiFindAdapter` on a fresh device extension.
    PnpStopStart,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [Self; 14] = [
        Self::DeviceBusReset,
        Self::DeviceTargetReset,
        Self::DeviceAdapterReset,
        Self::PortReset,
        Self::ClassReset,
        Self::Abort,
        Self::Timeout,
        Self::Lost,
        Self::Status,
        Self::Sense,
        Self::Hostile,
        Self::HotPlug,
        Self::StopRestart,
        Self::PnpStopStart,
    ];

    /// The name on the command line and in the report.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::DeviceBusReset => "device-bus-reset",
            Self::DeviceTargetReset => "device-target-reset",
            Self::DeviceAdapterReset => "device-adapter-reset",
            Self::PortReset => "port-reset",
            Self::ClassReset => "class-reset",
            Self::Abort => "abort",
            Self::Timeout => "timeout",
            Self::Lost => "lost",
            Self::Status => "status",
            Self::Sense => "sense",
            Self::Hostile => "hostile",
            Self::HotPlug => "hot-plug",
            Self::StopRestart => "stop-restart",
            Self::PnpStopStart => "pnp-stop-start",
        }
    }

    /// Whether it ends only by the port's timeout (real seconds in the concurrent schedule): a
    /// lost or late request, garbage from the device, a device that forgot its rings.
    fn slow(self) -> bool {
        matches!(self, Self::Timeout | Self::Lost | Self::Hostile | Self::DeviceAdapterReset)
    }
}

/// Parses `--faults`: `all`, `none`, or names.
///
/// # Errors
/// An unknown name.
pub fn parse_faults(list: &[String]) -> Result<Vec<FaultKind>, String> {
    let mut out = Vec::new();
    for name in list.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "all" => out.extend(FaultKind::ALL),
            "none" => {}
            _ => {
                let Some(k) = FaultKind::ALL.iter().find(|k| k.name() == name) else {
                    let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                    return Err(format!("--faults: no fault {name:?} (all, none, or of: {})", known.join(", ")));
                };
                out.push(*k);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One run's settings.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Seed of the workload, the faults, the model and the deterministic schedule.
    pub seed: u64,
    /// Deterministic or concurrent.
    pub deterministic: bool,
    /// Steps to make.
    pub steps: u64,
    /// Fault kinds to choose from.
    pub faults: Vec<FaultKind>,
    /// One fault per this many steps on average.
    pub fault_every: u64,
    /// Requests kept outstanding.
    pub qd: usize,
    /// The HBA (model or model-vmware).
    pub hba: HbaArg,
    /// The port driver.
    pub port: PortArg,
    /// The miniport.
    pub miniport: MiniportArg,
    /// A driver image instead of the linked-in driver.
    pub driver: Option<std::path::PathBuf>,
    /// Its `ArgumentString`.
    pub argument_string: Option<String>,
    /// Trace file.
    pub trace: Option<std::path::PathBuf>,
    /// The memory monitor's full quarantine.
    pub quarantine: bool,
}

impl RunSpec {
    fn mode(&self) -> &'static str {
        if self.deterministic { "deterministic" } else { "concurrent" }
    }
}

/// What went wrong, when, and how to get it again.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The step it was seen at.
    pub step: u64,
    /// What happened.
    pub what: String,
}

/// What one run did.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    /// Seed.
    pub seed: u64,
    /// Schedule name.
    pub mode: &'static str,
    /// Steps made.
    pub steps: u64,
    /// I/O requests submitted (steps that were not faults).
    pub submitted: u64,
    /// Requests completed, each once however often it was reissued or retried.
    pub ios: u64,
    /// Of which reads.
    pub reads: u64,
    /// Of which writes.
    pub writes: u64,
    /// Bytes moved by successful requests.
    pub bytes: u64,
    /// Sectors whose content was checked (reads during the run and the final pass).
    pub sectors_verified: u64,
    /// Sectors left unknown at the end (written by a write that failed), not checkable.
    pub unknown_sectors: u64,
    /// Requests that ended in an error the faults explain.
    pub failed_as_expected: u64,
    /// Reissues after `BUS_RESET`.
    pub reissues: u64,
    /// Retries after UNIT ATTENTION.
    pub ua_retries: u64,
    /// Faults made, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Final statuses of requests, by name.
    pub statuses: BTreeMap<String, u64>,
    /// Port-initiated bus resets (`HwScsiResetBus` calls) and SRB timeouts, from the port.
    pub port_resets: u64,
    /// SRB timeouts seen by the port.
    pub timeouts: u64,
    /// Hostile device actions performed.
    pub hostile_actions: u64,
    /// Completed SRBs the full quarantine kept guarded (`--quarantine`), and how many of them it
    /// released past its cap.
    pub quarantined: (u64, u64),
    /// Things worth knowing that are not failures (the concurrent schedule's real-time timeouts).
    pub notes: Vec<String>,
    /// Failures.
    pub failures: Vec<Failure>,
    /// The command that reproduces the run.
    pub reproduce: String,
    /// Wall time.
    pub wall: Duration,
    /// Machine time (virtual in the deterministic schedule).
    pub machine_ns: u64,
}

impl RunResult {
    fn fail(&mut self, step: u64, what: String) {
        if self.failures.len() < 100 {
            self.failures.push(Failure { step, what });
        }
    }

    fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }

    fn json(&self) -> Value {
        json!({
            "seed": self.seed, "mode": self.mode, "steps": self.steps, "ios_submitted": self.submitted,
            "faults_made": self.faults_total(), "ios": self.ios, "reads": self.reads, "writes": self.writes,
            "bytes": self.bytes, "sectors_verified": self.sectors_verified, "unknown_sectors": self.unknown_sectors,
            "failed_as_expected": self.failed_as_expected, "reissued_after_bus_reset": self.reissues,
            "unit_attention_retries": self.ua_retries, "faults": self.faults, "statuses": self.statuses,
            "port_resets": self.port_resets, "timeouts": self.timeouts, "hostile_actions": self.hostile_actions,
            "quarantined": self.quarantined.0, "quarantine_released": self.quarantined.1,
            "notes": self.notes,
            "failures": self.failures.iter().map(|f| json!({"step": f.step, "what": f.what})).collect::<Vec<_>>(),
            "reproduce": self.reproduce, "wall_ms": self.wall.as_secs_f64() * 1e3, "machine_ms": nanos_ms(self.machine_ns),
            "result": if self.failures.is_empty() { "pass" } else { "fail" },
        })
    }
}

#[allow(clippy::cast_precision_loss)]
fn nanos_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The name of an SRB status (without its flag bits).
fn status_name(status: u8) -> String {
    let name = match status {
        sys::SRB_STATUS_PENDING => "PENDING",
        sys::SRB_STATUS_SUCCESS => "SUCCESS",
        sys::SRB_STATUS_ABORTED => "ABORTED",
        sys::SRB_STATUS_ABORT_FAILED => "ABORT_FAILED",
        sys::SRB_STATUS_ERROR => "ERROR",
        sys::SRB_STATUS_BUSY => "BUSY",
        sys::SRB_STATUS_INVALID_REQUEST => "INVALID_REQUEST",
        sys::SRB_STATUS_INVALID_PATH_ID => "INVALID_PATH_ID",
        sys::SRB_STATUS_NO_DEVICE => "NO_DEVICE",
        sys::SRB_STATUS_TIMEOUT => "TIMEOUT",
        sys::SRB_STATUS_SELECTION_TIMEOUT => "SELECTION_TIMEOUT",
        sys::SRB_STATUS_COMMAND_TIMEOUT => "COMMAND_TIMEOUT",
        sys::SRB_STATUS_MESSAGE_REJECTED => "MESSAGE_REJECTED",
        sys::SRB_STATUS_BUS_RESET => "BUS_RESET",
        sys::SRB_STATUS_PARITY_ERROR => "PARITY_ERROR",
        sys::SRB_STATUS_REQUEST_SENSE_FAILED => "REQUEST_SENSE_FAILED",
        sys::SRB_STATUS_NO_HBA => "NO_HBA",
        sys::SRB_STATUS_BAD_SRB_BLOCK_LENGTH => "BAD_SRB_BLOCK_LENGTH",
        sys::SRB_STATUS_UNEXPECTED_BUS_FREE => "UNEXPECTED_BUS_FREE",
        sys::SRB_STATUS_PHASE_SEQUENCE_FAILURE => "PHASE_SEQUENCE_FAILURE",
        sys::SRB_STATUS_DATA_OVERRUN => "DATA_OVERRUN",
        sys::SRB_STATUS_REQUEST_FLUSHED => "REQUEST_FLUSHED",
        sys::SRB_STATUS_INVALID_LUN => "INVALID_LUN",
        sys::SRB_STATUS_INVALID_TARGET_ID => "INVALID_TARGET_ID",
        sys::SRB_STATUS_BAD_FUNCTION => "BAD_FUNCTION",
        _ => return format!("{status:#04x}"),
    };
    name.to_string()
}

/// One READ or WRITE.
#[derive(Clone, Copy, Debug)]
struct Op {
    disk: usize,
    lba: u64,
    blocks: u64,
    write: bool,
    /// Writes: the seed of the data.
    seed: u64,
}

/// What a victim's fault should do to it.
#[derive(Clone, Copy, Debug)]
struct Victim {
    kind: FaultKind,
    effect: Effect,
    injection: InjectionId,
}

/// What an outstanding request is.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// A READ or WRITE, perhaps a fault's victim.
    Io(Op, Option<Victim>),
    /// An `ABORT_COMMAND` for the request with this ticket.
    Abort(Ticket),
    /// A class driver's bus reset.
    ClassReset,
}

struct Outstanding {
    ticket: Ticket,
    role: Role,
    req: Request,
    submit_step: u64,
    ua: u32,
    reissues: u32,
    /// A victim's fault was seen to act (it timed out, it was aborted).
    acted: bool,
}

struct SoakDisk {
    target: u8,
    blocks: u64,
    disk: Disk,
    present: bool,
    /// Step at which an unplugged disk comes back.
    replug_at: Option<u64>,
    /// Last step a fault aimed at this disk alone happened.
    disturbed: u64,
    /// Per sector: [`ZERO`], [`UNKNOWN`] or the seed of the data written.
    shadow: Vec<u64>,
}

/// One run in progress.
struct Soak<'a> {
    spec: &'a RunSpec,
    rig: &'a Rig,
    dev: PvscsiDevice,
    rng: u64,
    disks: Vec<SoakDisk>,
    outstanding: Vec<Outstanding>,
    step: u64,
    generation: u64,
    /// Last step a fault that can reach any request happened (or was still going on).
    disturbed: u64,
    /// A hostile window ends at this step.
    hostile_until: Option<u64>,
    /// Step the outstanding lost or slow victim was submitted at.
    slow_since: Option<u64>,
    /// Port resets and timeouts already accounted for.
    port_seen: (u64, u64),
    /// Completions taken while waiting for something else, judged with the next batch.
    early: Vec<Completion>,
    out: RunResult,
}

/// The first step of the run for a disturbance test: "no fault yet".
const NEVER: u64 = 0;

impl<'a> Soak<'a> {
    fn new(spec: &'a RunSpec, rig: &'a Rig, dev: PvscsiDevice) -> Self {
        let disks = rig
            .disks
            .iter()
            .map(|d| {
                let disk = rig.model_disks.iter().find(|m| m.target == d.target).map_or_else(|| rig.model_disks[0].disk.clone(), |m| m.disk.clone());
                SoakDisk {
                    target: d.target,
                    blocks: d.blocks,
                    disk,
                    present: true,
                    replug_at: None,
                    disturbed: NEVER,
                    shadow: vec![ZERO; usize::try_from(d.blocks).unwrap_or(0)],
                }
            })
            .collect();
        Self {
            spec,
            rig,
            dev,
            rng: spec.seed ^ 0x50AC_5EED_0FFA_1700,
            disks,
            outstanding: Vec::new(),
            step: 0,
            generation: 0,
            disturbed: NEVER,
            hostile_until: None,
            slow_since: None,
            port_seen: (0, 0),
            early: Vec::new(),
            out: RunResult { seed: spec.seed, mode: spec.mode(), ..RunResult::default() },
        }
    }

    fn rand(&mut self) -> u64 {
        pattern::splitmix64(&mut self.rng)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 { 0 } else { self.rand() % n }
    }

    /// A random element of a non-empty slice.
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        let i = usize::try_from(self.below(v.len() as u64)).unwrap_or(0);
        v[i.min(v.len() - 1)]
    }

    fn fail(&mut self, what: String) {
        let step = self.step;
        self.out.fail(step, what);
    }

    /// Marks every outstanding request as possibly touched by a fault happening now.
    fn disturb(&mut self) {
        self.disturbed = self.step;
    }

    fn count_fault(&mut self, k: FaultKind) {
        *self.out.faults.entry(k.name()).or_insert(0) += 1;
        self.step += 1;
    }

    fn io_count(&self) -> usize {
        self.outstanding.iter().filter(|o| matches!(o.role, Role::Io(..))).count()
    }

    /// Whether `op` overlaps a request in flight it must not race with: any write, or any
    /// victim (whose injection must meet only it).
    fn conflicts(&self, op: &Op, as_victim: bool) -> bool {
        self.outstanding.iter().any(|o| match o.role {
            Role::Io(x, v) => {
                x.disk == op.disk
                    && (x.write || op.write || v.is_some() || as_victim)
                    && x.lba < op.lba + op.blocks
                    && op.lba < x.lba + x.blocks
            }
            _ => false,
        })
    }

    /// A random READ or WRITE on a present disk, not conflicting with what is in flight.
    fn pick_op(&mut self, as_victim: bool) -> Option<Op> {
        let present: Vec<usize> = (0..self.disks.len()).filter(|&i| self.disks[i].present).collect();
        for _ in 0..4 {
            if present.is_empty() {
                return None;
            }
            let disk = self.pick(&present);
            let cap = self.disks[disk].blocks;
            let blocks = if self.rand().trailing_zeros() >= 2 { 1 + self.below(MAX_BLOCKS) } else { 1 + self.below(8) }.min(cap);
            let lba = self.below(cap - blocks + 1);
            let write = self.rand() & 1 == 0;
            self.generation += 1;
            let mut seed = pattern::generation_seed(self.spec.seed, self.disks[disk].target, self.generation);
            if seed == ZERO || seed == UNKNOWN {
                seed = 1;
            }
            let op = Op { disk, lba, blocks, write, seed };
            if !self.conflicts(&op, as_victim) {
                return Some(op);
            }
        }
        None
    }

    fn request_of(&mut self, op: &Op) -> Request {
        let target = self.disks[op.disk].target;
        let blocks = u32::try_from(op.blocks).unwrap_or(1);
        let data = op.write.then(|| pattern::sectors(op.lba, usize::try_from(op.blocks).unwrap_or(1), op.seed));
        let offset = if self.rand().trailing_zeros() >= 2 { usize::try_from(self.below(4096)).unwrap_or(0) } else { 0 };
        rig::rw_request(target, op.lba, blocks, data).with_buffer_offset(offset).with_timeout(TIMEOUT_S)
    }

    fn submit(&mut self, role: Role, req: Request) -> Result<Ticket, Error> {
        let ticket = self.rig.machine.submit(req.clone())?;
        self.outstanding.push(Outstanding { ticket, role, req, submit_step: self.step, ua: 0, reissues: 0, acted: false });
        Ok(ticket)
    }

    /// One I/O step; false if nothing could be submitted (everything conflicted).
    fn io_step(&mut self) -> Result<bool, Error> {
        let Some(op) = self.pick_op(false) else { return Ok(false) };
        let req = self.request_of(&op);
        self.submit(Role::Io(op, None), req)?;
        self.out.submitted += 1;
        self.step += 1;
        Ok(true)
    }

    /// Submits a victim with an injection aimed at exactly it.
    fn victim(&mut self, kind: FaultKind, effect: Effect, timeout_s: u32) -> Result<Option<Ticket>, Error> {
        let Some(op) = self.pick_op(true) else { return Ok(None) };
        let target = self.disks[op.disk].target;
        let injection = self.dev.inject(Injection { count: Some(1), ..Injection::lbas(op.lba..op.lba + op.blocks, effect).on_target(target) });
        let req = self.request_of(&op).with_timeout(timeout_s);
        let t = self.submit(Role::Io(op, Some(Victim { kind, effect, injection })), req)?;
        Ok(Some(t))
    }

    /// Makes a fault of `kind` if it can be made now; counts it.
    #[allow(clippy::too_many_lines)]
    fn fault(&mut self, kind: FaultKind) -> Result<bool, Error> {
        if kind.slow() && (self.slow_since.is_some() || self.hostile_until.is_some()) {
            return Ok(false);
        }
        // A stop first waits for every request; in real time a lost one costs its timeout.
        let drains = matches!(kind, FaultKind::StopRestart | FaultKind::PnpStopStart);
        if drains && !self.spec.deterministic && self.slow_since.is_some() {
            return Ok(false);
        }
        let present: Vec<usize> = (0..self.disks.len()).filter(|&i| self.disks[i].present).collect();
        match kind {
            FaultKind::DeviceBusReset => {
                self.dev.apply(FaultAction::BusReset);
                self.disturb();
            }
            FaultKind::DeviceTargetReset => {
                let d = self.pick(&present);
                self.dev.apply(FaultAction::DeviceReset(self.disks[d].target));
                self.disks[d].disturbed = self.step;
            }
            FaultKind::DeviceAdapterReset => {
                // The device forgets its rings: what is in flight, and what comes next, waits
                // for the port's timeout and HwScsiResetBus.
                self.dev.apply(FaultAction::AdapterReset);
                self.disturb();
                self.slow_since = Some(self.step);
            }
            FaultKind::PortReset => {
                self.disturb();
                if self.below(4) == 0 {
                    // The device resets itself between two of the command's 132 words (the
                    // concurrent schedule met this by chance): the driver sets the rings up again.
                    let after_words = usize::try_from(self.below(131)).unwrap_or(0);
                    let code = scsiport_sim::pvscsi::regs::cmd::SETUP_RINGS;
                    self.dev.schedule(Trigger::DuringCommand { code, after_words }, FaultAction::AdapterReset);
                }
                self.rig.machine.reset_bus(0, 0)?;
                self.port_seen.0 += 1;
            }
            FaultKind::ClassReset => {
                self.disturb();
                self.submit(Role::ClassReset, Request::reset_bus(0))?;
            }
            FaultKind::Abort => {
                let before = self.dev.stats().injected;
                let Some(victim) = self.victim(kind, Effect::Lose, ABORT_VICTIM_TIMEOUT_S)? else { return Ok(false) };
                // The abort is for a request the device holds: let the device take it (a
                // bounded wait: a reset meanwhile may complete it before it gets there).
                // Completions meanwhile are taken (an error completion freezes its LU's queue
                // until its submitter has it) and judged with the next batch.
                let dev = self.dev.clone();
                let mut budget = if self.spec.deterministic { 10_000 } else { 200 };
                let tickets: Vec<Ticket> = self.outstanding.iter().map(|o| o.ticket).filter(|&t| t != victim).collect();
                let mut early = std::mem::take(&mut self.early);
                let r = self.rig.machine.run_until(|m| {
                    early.extend(tickets.iter().filter_map(|&t| m.try_take(t)));
                    budget -= 1;
                    budget == 0 || dev.stats().injected > before
                });
                self.early = early;
                match r {
                    Ok(()) | Err(Error::Stuck(_)) => {}
                    Err(e) => return Err(e),
                }
                self.submit(Role::Abort(victim), Request::abort(victim))?;
            }
            FaultKind::Timeout => {
                let late = u64::from(VICTIM_TIMEOUT_S) * 3_000_000_000;
                if self.victim(kind, Effect::Latency(late), VICTIM_TIMEOUT_S)?.is_none() {
                    return Ok(false);
                }
                self.slow_since = Some(self.step);
            }
            FaultKind::Lost => {
                if self.victim(kind, Effect::Lose, VICTIM_TIMEOUT_S)?.is_none() {
                    return Ok(false);
                }
                self.slow_since = Some(self.step);
            }
            FaultKind::Status => {
                const HOST: [u16; 12] = [0x11, 0x13, 0x14, 0x17, 0x1B, 0x1C, 0x20, 0x21, 0x23, 0x25, 0x26, 0x7777];
                const SCSI: [u8; 3] = [sys::SCSISTAT_BUSY, sys::SCSISTAT_RESERVATION_CONFLICT, 0x28];
                let effect = if self.below((HOST.len() + SCSI.len()) as u64) < HOST.len() as u64 {
                    Effect::Host(self.pick(&HOST))
                } else {
                    Effect::Status(self.pick(&SCSI))
                };
                if self.victim(kind, effect, TIMEOUT_S)?.is_none() {
                    return Ok(false);
                }
            }
            FaultKind::Sense => {
                const SENSE: [(u8, u8, u8); 6] = [(0x03, 0x11, 0x04), (0x04, 0x44, 0x00), (0x02, 0x04, 0x01), (0x0B, 0x47, 0x00), (0x03, 0x0C, 0x02), (0x06, 0x29, 0x00)];
                let (k, asc, ascq) = self.pick(&SENSE);
                if self.victim(kind, Effect::Check(Sense::new(k, asc, ascq)), TIMEOUT_S)?.is_none() {
                    return Ok(false);
                }
            }
            FaultKind::Hostile => {
                let mut actions: Vec<HostileAction> = HostileAction::ALL.iter().copied().filter(|_| self.rand() & 1 == 0).collect();
                if actions.is_empty() {
                    actions = HostileAction::ALL.to_vec();
                }
                let permille = 50 + u32::try_from(self.below(300)).unwrap_or(0);
                let seed = self.rand();
                self.dev.set_hostile(Some(HostileConfig { seed, permille, interval_ns: None, actions }));
                self.hostile_until = Some(self.step + 10 + self.below(100));
                self.disturb();
            }
            FaultKind::HotPlug => {
                if present.len() < 2 {
                    return Ok(false);
                }
                let d = self.pick(&present);
                let _ = self.dev.detach(self.disks[d].target);
                let back = self.step + 20 + self.below(400);
                let sd = &mut self.disks[d];
                sd.present = false;
                sd.replug_at = Some(back);
                sd.disturbed = self.step;
            }
            FaultKind::StopRestart | FaultKind::PnpStopStart => {
                self.drain()?;
                self.end_hostile();
                self.disturb();
                if kind == FaultKind::StopRestart {
                    self.rig.machine.stop_adapter(0)?;
                    self.rig.machine.restart_adapter(0)?;
                } else {
                    self.rig.machine.pnp_stop_start(0)?;
                }
            }
        }
        self.count_fault(kind);
        Ok(true)
    }
}

/// Whether a victim's final completion is what its fault implies (a disturbance aside).
fn victim_verdict(v: &Victim, c: &Completion) -> Result<(), String> {
    let status = c.status();
    let ok = match v.effect {
        // Ended by the abort, or by a timeout's reset and then reissued (the injection spent).
        Effect::Lose | Effect::Latency(_) => c.is_success() || (v.kind == FaultKind::Abort && status == sys::SRB_STATUS_ABORTED),
        // Resets are reissued and ABORTQUEUE retried by the port (BUSY): both end well. An
        // unposted completion (not a fault the soak injects) is found by the timeout's reset.
        Effect::Host(0x22 | 0x23 | 0x25 | 0x26) | Effect::Unposted => c.is_success(),
        Effect::Host(_) => !c.is_success() && status != sys::SRB_STATUS_PENDING,
        Effect::Status(s) => c.is_success() || (status == sys::SRB_STATUS_ERROR && c.scsi_status == s),
        Effect::Check(sense) if sense.key == sys::SCSI_SENSE_UNIT_ATTENTION => c.is_success(),
        Effect::Check(sense) => {
            status == sys::SRB_STATUS_ERROR
                && c.scsi_status == sys::SCSISTAT_CHECK_CONDITION
                && c.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID != 0
                && rig::sense_triple(c) == Some((sense.key, sense.asc, sense.ascq))
        }
    };
    if ok { Ok(()) } else { Err(format!("the injected {:?} ended {}", v.effect, rig::describe(c))) }
}

impl Soak<'_> {
    /// Runs the steps, then the final check of every sector.
    fn run(&mut self) -> Result<(), Error> {
        let faults = self.spec.faults.clone();
        let (mut last_step, mut idle) = (0, 0u32);
        while self.step < self.spec.steps {
            // A run that cannot go on is a failure, never a hang of CI.
            if self.step == last_step {
                idle += 1;
                if idle > 200_000 {
                    return Err(Error::Stuck(format!("the soak made no progress at step {} ({} requests outstanding)", self.step, self.outstanding.len())));
                }
            } else {
                (last_step, idle) = (self.step, 0);
            }
            self.replug(false);
            if self.hostile_until.is_some_and(|u| self.step >= u) {
                self.end_hostile();
            }
            let ongoing = self.hostile_until.is_some() || self.outstanding.iter().any(|o| matches!(o.role, Role::Abort(_) | Role::ClassReset));
            if ongoing {
                self.disturb();
            }
            // Deterministic: let machine time reach a lost or slow victim's timeout.
            // (With nothing in flight there is nothing to wait for: new requests will meet it.)
            let waiting = self.spec.deterministic
                && !self.outstanding.is_empty()
                && self.slow_since.is_some_and(|s| self.step.saturating_sub(s) > SLOW_PATIENCE);
            let mut progressed = false;
            if !waiting && self.io_count() < self.spec.qd {
                if !faults.is_empty() && self.below(self.spec.fault_every) == 0 {
                    let k = self.pick(&faults);
                    progressed = self.fault(k)?;
                }
                if !progressed {
                    progressed = self.io_step()?;
                }
            }
            if !progressed || waiting || self.io_count() >= self.spec.qd {
                self.collect_some()?;
            }
        }
        self.drain()?;
        self.end_hostile();
        self.replug(true);
        self.drain()?;
        self.dev.clear_injections();
        self.final_check()
    }

    /// Plugs back the disks whose time has come (all with `all`).
    fn replug(&mut self, all: bool) {
        for d in 0..self.disks.len() {
            let due = self.disks[d].replug_at.is_some_and(|at| all || self.step >= at);
            if !due {
                continue;
            }
            let (target, disk) = (self.disks[d].target, self.disks[d].disk.clone());
            if let Err(e) = self.dev.attach(target, disk) {
                self.fail(format!("plugging t{target} back: {e}"));
            }
            let step = self.step;
            let sd = &mut self.disks[d];
            sd.present = true;
            sd.replug_at = None;
            sd.disturbed = step;
            if all {
                // Let the port see it again before the final pass reads it.
                let dev_target = target;
                let _ = self.rig.machine.run_until(|m| m.logical_units(0).iter().any(|&(p, t, l)| p == 0 && t == dev_target && l == 0));
            }
        }
    }

    fn end_hostile(&mut self) {
        if self.hostile_until.take().is_some() {
            self.dev.set_hostile(None);
            self.disturb();
        }
    }

    fn drain(&mut self) -> Result<(), Error> {
        while !self.outstanding.is_empty() {
            self.collect_some()?;
        }
        Ok(())
    }

    /// Takes the completions that are ready (waiting for at least one) and judges them.
    fn collect_some(&mut self) -> Result<(), Error> {
        if self.outstanding.is_empty() {
            return self.rig.machine.run_for(Duration::from_micros(200));
        }
        let found = self.collect()?;
        if found.iter().any(|(_, c)| c.timed_out) {
            // The port reset the bus: everything in flight may have met it, and a device that
            // had forgotten its rings has them again.
            self.disturb();
            let victim = self.outstanding.iter().any(|o| matches!(o.role, Role::Io(_, Some(v)) if matches!(v.kind, FaultKind::Timeout | FaultKind::Lost)));
            if !victim {
                self.slow_since = None;
            }
        }
        for (i, c) in found {
            self.complete(i, &c)?;
        }
        self.outstanding.retain(|o| o.ticket.0 != 0);
        Ok(())
    }

    fn collect(&mut self) -> Result<Vec<(usize, Completion)>, Error> {
        let m = &self.rig.machine;
        let sweep = |found: &mut Vec<(usize, Completion)>| {
            for (i, o) in self.outstanding.iter().enumerate() {
                if let Some(c) = m.try_take(o.ticket) {
                    found.push((i, c));
                }
            }
        };
        let mut found: Vec<(usize, Completion)> = std::mem::take(&mut self.early)
            .into_iter()
            .filter_map(|c| self.outstanding.iter().position(|o| o.ticket == c.ticket).map(|i| (i, c)))
            .collect();
        sweep(&mut found);
        if !found.is_empty() {
            return Ok(found);
        }
        // Concurrent too: polling (every millisecond) takes each completion as it comes, so a
        // queue frozen by an error completion is released at once (SCSI Port's class driver
        // releases it when it has the error in hand), instead of after a blocking wait for
        // another request gives up on it.
        m.run_until(|_| {
            sweep(&mut found);
            !found.is_empty()
        })?;
        Ok(found)
    }

    /// Whether the port reset the bus (a timeout) since last asked: then every request in flight
    /// may have met it.
    fn port_reset_since(&mut self) -> bool {
        let s = self.rig.machine.stats();
        let now = (s.bus_resets, s.timeouts);
        let new = now.0 > self.port_seen.0 || now.1 > self.port_seen.1;
        self.port_seen = now;
        if new {
            self.disturb();
        }
        new
    }

    fn resubmit(&mut self, i: usize) -> Result<(), Error> {
        let t = self.rig.machine.submit(self.outstanding[i].req.clone())?;
        self.outstanding[i].ticket = t;
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn complete(&mut self, i: usize, c: &Completion) -> Result<(), Error> {
        let status = c.status();
        let role = self.outstanding[i].role;
        match role {
            Role::ClassReset => {
                self.outstanding[i].ticket = Ticket(0);
                *self.out.statuses.entry(format!("RESET_BUS {}", status_name(status))).or_insert(0) += 1;
                if !c.is_success() {
                    self.fail(format!("SRB_FUNCTION_RESET_BUS ended {} (a bus reset a class driver asked for was not done)", rig::describe(c)));
                }
                self.disturb();
            }
            Role::Abort(victim) => {
                self.outstanding[i].ticket = Ticket(0);
                *self.out.statuses.entry(format!("ABORT_COMMAND {}", status_name(status))).or_insert(0) += 1;
                match status {
                    sys::SRB_STATUS_SUCCESS => {
                        if let Some(v) = self.outstanding.iter_mut().find(|o| o.ticket == victim) {
                            v.acted = true;
                        }
                    }
                    // The victim had finished (a reset reached it first).
                    sys::SRB_STATUS_ABORT_FAILED => {}
                    _ => self.fail(format!("SRB_FUNCTION_ABORT_COMMAND ended {} (the abort was not done)", rig::describe(c))),
                }
            }
            Role::Io(op, victim) => {
                let o = &mut self.outstanding[i];
                if rig::is_unit_attention(c) && o.ua < UA_RETRIES {
                    o.ua += 1;
                    self.out.ua_retries += 1;
                    return self.resubmit(i);
                }
                if status == sys::SRB_STATUS_BUS_RESET && o.reissues < REISSUES {
                    o.reissues += 1;
                    o.acted |= c.timed_out;
                    self.out.reissues += 1;
                    return self.resubmit(i);
                }
                let submit_step = o.submit_step;
                o.ticket = Ticket(0);
                if let Some(v) = victim {
                    let _ = self.dev.remove_injection(v.injection);
                    if matches!(v.kind, FaultKind::Timeout | FaultKind::Lost) {
                        self.slow_since = None;
                    }
                }
                let target = self.disks[op.disk].target;
                let what = format!("{} t{target} LBA {} x{} (submitted at step {submit_step})", if op.write { "WRITE" } else { "READ" }, op.lba, op.blocks);
                *self.out.statuses.entry(status_name(status)).or_insert(0) += 1;
                self.out.ios += 1;
                if op.write {
                    self.out.writes += 1;
                } else {
                    self.out.reads += 1;
                }
                let mut disturbed = self.disturbed >= submit_step || self.disks[op.disk].disturbed >= submit_step;
                if c.timed_out && victim.is_none_or(|v| !v.kind.slow()) {
                    disturbed |= self.port_reset_since();
                    if !disturbed {
                        let msg = format!("{what}: timed out (the port reset the bus) with no fault in flight");
                        if self.spec.deterministic { self.fail(msg) } else { self.out.notes.push(format!("step {}: {msg}", self.step)) }
                    }
                }
                let want = op.blocks * SECTOR as u64;
                if c.is_success() {
                    if u64::from(c.data_transfer_length) != want {
                        self.fail(format!("{what}: SUCCESS with {} of {want} bytes", c.data_transfer_length));
                        self.set_shadow(&op, UNKNOWN);
                        return Ok(());
                    }
                    self.out.bytes += want;
                    if op.write {
                        self.set_shadow(&op, op.seed);
                    } else {
                        self.verify(&op, &what, &c.data);
                    }
                } else {
                    if op.write {
                        self.set_shadow(&op, UNKNOWN);
                    }
                    if victim.is_none() && !disturbed {
                        disturbed = self.port_reset_since();
                    }
                    if victim.is_none() && !disturbed {
                        self.fail(format!("{what}: {} with no fault in flight", rig::describe(c)));
                        return Ok(());
                    }
                    self.out.failed_as_expected += 1;
                }
                if let Some(v) = victim
                    && let Err(e) = victim_verdict(&v, c)
                    && !disturbed
                    && !self.port_reset_since()
                {
                    self.fail(format!("{what}, victim of a {} fault: {e}", v.kind.name()));
                }
            }
        }
        Ok(())
    }

    fn set_shadow(&mut self, op: &Op, value: u64) {
        let sd = &mut self.disks[op.disk];
        let (a, b) = (usize::try_from(op.lba).unwrap_or(0), usize::try_from(op.lba + op.blocks).unwrap_or(0));
        if let Some(s) = sd.shadow.get_mut(a..b) {
            s.fill(value);
        }
    }

    /// Checks what a successful READ returned against what the disk must hold.
    fn verify(&mut self, op: &Op, what: &str, data: &[u8]) {
        let mut first = None;
        for (i, sector) in data.chunks_exact(SECTOR).enumerate() {
            let lba = op.lba + i as u64;
            let want = self.disks[op.disk].shadow.get(usize::try_from(lba).unwrap_or(usize::MAX)).copied().unwrap_or(UNKNOWN);
            if want == UNKNOWN {
                continue;
            }
            self.out.sectors_verified += 1;
            let bad = if want == ZERO {
                (!sector.iter().all(|&b| b == 0)).then(|| format!("LBA {lba}: should be zero (never written), is not"))
            } else {
                pattern::check_sector(lba, want, sector).err().map(|m| m.to_string())
            };
            if first.is_none() {
                first = bad;
            }
        }
        if let Some(m) = first {
            self.fail(format!("{what}: SUCCESS but {m}"));
        }
    }

    /// The last pass: every sector of every disk read through the driver and from the medium.
    fn final_check(&mut self) -> Result<(), Error> {
        for d in 0..self.disks.len() {
            let (target, blocks) = (self.disks[d].target, self.disks[d].blocks);
            let mut lba = 0;
            while lba < blocks {
                let n = (blocks - lba).min(128);
                let op = Op { disk: d, lba, blocks: n, write: false, seed: 0 };
                let what = format!("final READ t{target} LBA {lba} x{n}");
                let req = rig::rw_request(target, lba, u32::try_from(n).unwrap_or(1), None).with_timeout(TIMEOUT_S);
                let mut c = self.rig.machine.execute(req.clone())?;
                for _ in 0..UA_RETRIES {
                    if !(rig::is_unit_attention(&c) || c.status() == sys::SRB_STATUS_BUS_RESET) {
                        break;
                    }
                    c = self.rig.machine.execute(req.clone())?;
                }
                if c.is_success() && u64::from(c.data_transfer_length) == n * SECTOR as u64 {
                    self.verify(&op, &what, &c.data);
                } else {
                    self.fail(format!("{what}: {}", rig::describe(&c)));
                }
                match self.disks[d].disk.read_sectors(lba, n) {
                    Ok(medium) => {
                        let before = self.out.failures.len();
                        self.verify(&op, &format!("the medium of t{target} at LBA {lba} x{n}"), &medium);
                        if self.out.failures.len() > before {
                            break;
                        }
                    }
                    Err(e) => self.fail(format!("reading the medium of t{target}: {e}")),
                }
                lba += n;
            }
            self.out.unknown_sectors += self.disks[d].shadow.iter().filter(|&&s| s == UNKNOWN).count() as u64;
        }
        Ok(())
    }
}

/// A bug check in one line: code, rule, its text, the doc, the message.
fn bugcheck_text(b: &scsiport_sim::BugCheck) -> String {
    format!("BUG CHECK {:#x} ({:?}): {} [{}] {}", b.code, b.rule, b.rule.text(), b.doc, b.message)
}

/// The machine of a run.
fn config_of(spec: &RunSpec) -> RigConfig {
    RigConfig {
        port: spec.port,
        miniport: spec.miniport,
        driver: spec.driver.clone(),
        argument_string: spec.argument_string.clone(),
        hba: spec.hba.clone(),
        disks: DISKS.iter().map(|d| DiskSpec::fixed(d)).collect(),
        schedule: if spec.deterministic { Schedule::Deterministic { seed: spec.seed } } else { Schedule::Concurrent },
        trace: spec.trace.clone(),
        trace_dma: false,
        time_scale: 1.0,
        reset_hold: RESET_HOLD,
        latency_us: Some((20, 200)),
        seed: spec.seed,
        read_only: false,
        verifier: true,
        quarantine_all: spec.quarantine,
        // Storport's ISR preempts the routines that hold only the `StartIo` lock; the
        // deterministic schedule makes that happen after every one of their register accesses,
        // reproducibly (the concurrent one leaves it to chance).
        adversarial: spec.port == PortArg::Storport && spec.deterministic,
    }
}

/// Runs one seed in one schedule.
fn one_run(spec: &RunSpec, reproduce: String) -> RunResult {
    let started = Instant::now();
    let mut empty = RunResult { seed: spec.seed, mode: spec.mode(), reproduce: reproduce.clone(), ..RunResult::default() };
    let rig = match Rig::new(&config_of(spec)) {
        Ok(r) => r,
        Err(e) => {
            let b = match &e {
                rig::RigError::Machine(err, m) => m.as_ref().and_then(|m| m.bugcheck()).or_else(|| err.bugcheck().cloned()),
                rig::RigError::Setup(_) => None,
            };
            empty.fail(0, format!("bring-up: {}", b.map_or_else(|| e.to_string(), |b| bugcheck_text(&b))));
            empty.wall = started.elapsed();
            return empty;
        }
    };
    let Some(dev) = rig.model.clone() else {
        empty.fail(0, "the soak needs the device model".into());
        return empty;
    };
    let t0 = rig.machine.now_ns();
    let mut s = Soak::new(spec, &rig, dev.clone());
    if let Err(e) = s.run() {
        let detail = rig.machine.bugcheck().map_or_else(|| format!("the machine stopped: {e}"), |b| bugcheck_text(&b));
        s.fail(detail);
    }
    for f in rig.device_faults() {
        s.fail(format!("device: {f}"));
    }
    if let Some(e) = rig.finish_trace() {
        s.fail(e);
    }
    let mut out = std::mem::take(&mut s.out);
    out.steps = s.step;
    let stats = rig.machine.stats();
    out.port_resets = stats.bus_resets;
    out.timeouts = stats.timeouts;
    out.hostile_actions = dev.stats().hostile_actions;
    out.quarantined = (stats.quarantined, stats.quarantine_released);
    out.reproduce = reproduce;
    out.machine_ns = rig.machine.now_ns().saturating_sub(t0);
    out.wall = started.elapsed();
    out
}

/// The command that runs `spec` alone.
fn reproduce_of(args: &SoakArgs, spec: &RunSpec, faults: &[FaultKind]) -> String {
    use std::fmt::Write as _;
    let mut s = format!("rspvscsi-sim soak --mode {} --seed {} --seeds 1 --steps {}", spec.mode(), spec.seed, spec.steps);
    if faults != FaultKind::ALL {
        let names: Vec<&str> = faults.iter().map(|k| k.name()).collect();
        let _ = write!(s, " --faults {}", if names.is_empty() { "none".to_string() } else { names.join(",") });
    }
    if args.fault_every != crate::cli::SOAK_FAULT_EVERY {
        let _ = write!(s, " --fault-every {}", args.fault_every);
    }
    if args.qd != crate::cli::SOAK_QD {
        let _ = write!(s, " --qd {}", args.qd);
    }
    if args.hba != HbaArg::Model {
        let _ = write!(s, " --hba {}", args.hba);
    }
    if args.port != PortArg::Scsiport {
        let _ = write!(s, " --port {}", args.port.name());
    }
    if args.miniport == MiniportArg::Test {
        s.push_str(" --miniport test");
    }
    if let Some(path) = &args.driver {
        let _ = write!(s, " --driver '{}'", path.display().to_string().replace('\'', "'\\''"));
    }
    if let Some(a) = &args.argument_string {
        let _ = write!(s, " --args '{}'", a.replace('\'', "'\\''"));
    }
    if args.quarantine {
        s.push_str(" --quarantine");
    }
    s
}

/// One line for a finished run.
fn run_line(r: &RunResult) -> String {
    format!(
        "  {} {:<13} seed {:<6} {} steps ({} I/Os, {} faults), {} completed, {} sectors verified, {} failures, {:.1} s\n",
        if r.failures.is_empty() { "PASS" } else { "FAIL" },
        r.mode,
        r.seed,
        r.steps,
        r.submitted,
        r.faults_total(),
        r.ios,
        r.sectors_verified,
        r.failures.len(),
        r.wall.as_secs_f64()
    )
}

/// The summary of all runs: a table, or one JSON object.
fn summary(results: &[RunResult], faults: &[FaultKind], json_out: bool, wall: Duration) -> String {
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let total = |f: fn(&RunResult) -> u64| results.iter().map(f).sum::<u64>();
    let mut faults_by_kind: BTreeMap<&'static str, u64> = FaultKind::ALL.iter().filter(|k| faults.contains(k)).map(|k| (k.name(), 0)).collect();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for r in results {
        for (k, n) in &r.faults {
            *faults_by_kind.entry(k).or_insert(0) += n;
        }
        for (k, n) in &r.statuses {
            *statuses.entry(k.clone()).or_insert(0) += n;
        }
    }
    let steps = total(|r| r.steps);
    if json_out {
        let doc = json!({
            "result": if failed == 0 { "pass" } else { "fail" },
            "runs": results.iter().map(RunResult::json).collect::<Vec<_>>(),
            "steps": steps, "ios_submitted": total(|r| r.submitted), "faults_made": total(RunResult::faults_total),
            "ios": total(|r| r.ios), "reads": total(|r| r.reads), "writes": total(|r| r.writes), "bytes": total(|r| r.bytes),
            "sectors_verified": total(|r| r.sectors_verified), "failed_as_expected": total(|r| r.failed_as_expected),
            "faults": faults_by_kind, "statuses": statuses, "port_resets": total(|r| r.port_resets),
            "timeouts": total(|r| r.timeouts), "hostile_actions": total(|r| r.hostile_actions),
            "quarantined": total(|r| r.quarantined.0), "quarantine_released": total(|r| r.quarantined.1),
            "failures": total(|r| r.failures.len() as u64), "failed_runs": failed, "wall_ms": wall.as_secs_f64() * 1e3,
        });
        format!("{doc}\n")
    } else {
        use std::fmt::Write as _;
        let mut s = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "  {k:<20}{v}");
        };
        row("steps", format!("{steps} ({} I/Os submitted, {} faults made)", total(|r| r.submitted), total(RunResult::faults_total)));
        #[allow(clippy::cast_precision_loss)]
        let mib = total(|r| r.bytes) as f64 / f64::from(1u32 << 20);
        row(
            "I/Os",
            format!(
                "{} completed ({} reads, {} writes, {mib:.1} MiB), {} ended in an error a fault explains; {} reissued after BUS_RESET, {} UNIT ATTENTION retries",
                total(|r| r.ios),
                total(|r| r.reads),
                total(|r| r.writes),
                total(|r| r.failed_as_expected),
                total(|r| r.reissues),
                total(|r| r.ua_retries)
            ),
        );
        row("sectors verified", format!("{} (every read, then every sector of every disk through the driver and on the medium; {} left unknown by failed writes)", total(|r| r.sectors_verified), total(|r| r.unknown_sectors)));
        row("faults", if faults_by_kind.is_empty() { "none".into() } else { faults_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ") });
        row("port", format!("{} HwScsiResetBus calls, {} SRB timeouts; {} hostile device actions", total(|r| r.port_resets), total(|r| r.timeouts), total(|r| r.hostile_actions)));
        if results.iter().any(|r| r.quarantined.0 > 0) {
            row(
                "quarantine",
                format!(
                    "{} completed SRBs kept guarded, never reused; {} released past the cap",
                    total(|r| r.quarantined.0),
                    total(|r| r.quarantined.1)
                ),
            );
        }
        row("statuses", statuses.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "));
        let notes: usize = results.iter().map(|r| r.notes.len()).sum();
        if notes > 0 {
            row("notes", format!("{notes} (real-time timeouts in the concurrent schedule; in --json)"));
        }
        row("failures", format!("{} in {failed} of {} runs", total(|r| r.failures.len() as u64), results.len()));
        row("wall time", format!("{:.1} s", wall.as_secs_f64()));
        row("result", if failed == 0 { "PASS".into() } else { "FAIL".into() });
        s
    }
}

/// The first line of the report.
fn header(args: &SoakArgs, runs: usize, faults: &[FaultKind], jobs: usize) -> String {
    let kinds = if faults.len() == FaultKind::ALL.len() {
        format!("all {} kinds", faults.len())
    } else if faults.is_empty() {
        "none".to_string()
    } else {
        faults.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    };
    let hba = if args.hba == HbaArg::Model { "PVSCSI model (QEMU layout)" } else { "PVSCSI model (VMware layout)" };
    let miniport = match (&args.driver, args.miniport) {
        (Some(path), _) => format!("{} miniport (PE image)", path.display()),
        (None, MiniportArg::Test) => "test miniport".into(),
        (None, MiniportArg::Rspvscsi) => "rspvscsi miniport (linked in)".into(),
    };
    let miniport = if args.port == PortArg::Storport { format!("{miniport} on Storport") } else { miniport };
    format!(
        "rspvscsi-sim soak: {miniport} on {hba}; {} run(s) (seeds {}..={}, {}), {} steps each, qd {}; faults: {kinds}, one per {} steps on average; {jobs} at a time{}\n",
        runs,
        args.seed,
        args.seed.saturating_add(args.seeds - 1),
        match args.mode {
            SoakMode::Both => "deterministic and concurrent",
            SoakMode::Deterministic => "deterministic",
            SoakMode::Concurrent => "concurrent",
        },
        args.steps,
        args.qd,
        args.fault_every,
        if args.quarantine { "; every completed SRB quarantined" } else { "" },
    )
}

/// `rspvscsi-sim soak`.
#[must_use]
pub fn run(args: &SoakArgs) -> Verdict {
    let faults = match parse_faults(&args.faults) {
        Ok(f) => f,
        Err(e) => return app::usage(&e),
    };
    if let Some(path) = &args.driver
        && let Err(e) = crate::rig::check_driver(path)
    {
        return app::usage(&e);
    }
    if !matches!(args.hba, HbaArg::Model | HbaArg::ModelVmware) {
        return app::usage("the soak makes its faults with the device model: --hba model or model-vmware");
    }
    let modes: &[bool] = match args.mode {
        SoakMode::Both => &[true, false],
        SoakMode::Deterministic => &[true],
        SoakMode::Concurrent => &[false],
    };
    let mut specs = Vec::new();
    for seed in args.seed..args.seed.saturating_add(args.seeds) {
        for &deterministic in modes {
            specs.push(RunSpec {
                seed,
                deterministic,
                steps: args.steps,
                faults: faults.clone(),
                fault_every: args.fault_every,
                qd: args.qd as usize,
                hba: args.hba.clone(),
                port: args.port,
                miniport: args.miniport,
                driver: args.driver.clone(),
                argument_string: args.argument_string.clone(),
                trace: args.trace.clone(),
                quarantine: args.quarantine,
            });
        }
    }
    if args.trace.is_some() && specs.len() > 1 {
        return app::usage("--trace records one run: give --seeds 1 and --mode deterministic or concurrent");
    }
    let jobs = args.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get), usize::from).clamp(1, specs.len());
    let header = header(args, specs.len(), &faults, jobs);
    let started = Instant::now();
    let broken: Mutex<Option<String>> = Mutex::new(None);
    let print = |text: &str| {
        let mut g = broken.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.is_none() {
            *g = app::emit(text).err();
        }
    };
    if !args.json {
        print(&header);
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<RunResult>> = Mutex::new(Vec::new());
    let shared = Arc::new(specs);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = shared.get(i) else { break };
                    let r = one_run(spec, reproduce_of(args, spec, &faults));
                    if !args.json {
                        print(&run_line(&r));
                    }
                    for f in &r.failures {
                        eprintln!("rspvscsi-sim soak: FAIL: {} seed {} step {}: {}", r.mode, r.seed, f.step, f.what);
                    }
                    if !r.failures.is_empty() {
                        eprintln!("  reproduce: {}", r.reproduce);
                    }
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(r);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|r| (r.seed, r.mode));
    let wall = started.elapsed();
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let verdict = if failed == 0 { Verdict::Pass } else { Verdict::Fail };
    let text = summary(&results, &faults, args.json, wall);
    print(&text);
    let broken = broken.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = broken {
        eprintln!("rspvscsi-sim: FAIL: {e}");
        return Verdict::Fail;
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status srb.h defines below the first gap (0x00–0x16) has a name in the summary: the
    /// CI soak printed 92 completions as "0x10", `SRB_STATUS_REQUEST_SENSE_FAILED`.
    #[test]
    fn every_basic_srb_status_has_a_name() {
        for status in (0x00..=0x16u8).filter(|s| *s != 0x0C) {
            let name = status_name(status);
            assert!(!name.starts_with("0x"), "status {status:#04x} printed as {name}");
        }
        assert_eq!(status_name(0x10), "REQUEST_SENSE_FAILED");
        assert_eq!(status_name(0x0C), "0x0c");
    }

    fn spec(steps: u64, faults: Vec<FaultKind>) -> RunSpec {
        RunSpec {
            seed: 3,
            deterministic: true,
            steps,
            faults,
            fault_every: 10,
            qd: 8,
            hba: HbaArg::Model,
            port: PortArg::Scsiport,
            miniport: MiniportArg::Rspvscsi,
            driver: None,
            argument_string: None,
            trace: None,
            quarantine: false,
        }
    }

    #[test]
    fn a_sector_changed_behind_the_drivers_back_is_found() {
        let spec = spec(400, Vec::new());
        let rig = Rig::new(&config_of(&spec)).unwrap();
        let mut s = Soak::new(&spec, &rig, rig.model.clone().unwrap());
        s.run().unwrap();
        assert!(s.out.failures.is_empty(), "{:?}", s.out.failures);
        assert!(s.out.sectors_verified > 0 && s.out.writes > 0);
        // A sector the soak wrote, and one it never wrote, changed on the medium.
        let written = s.disks[0].shadow.iter().position(|&v| v != ZERO && v != UNKNOWN).unwrap() as u64;
        let never = s.disks[1].shadow.iter().position(|&v| v == ZERO).unwrap() as u64;
        s.disks[0].disk.write_sectors(written, &[0xA5; SECTOR]).unwrap();
        s.disks[1].disk.write_sectors(never, &pattern::sectors(never, 1, 9)).unwrap();
        s.final_check().unwrap();
        let text: Vec<&str> = s.out.failures.iter().map(|f| f.what.as_str()).collect();
        assert!(text.iter().any(|f| f.contains("final READ t0") && f.contains(&format!("LBA {written}:"))), "{text:?}");
        assert!(text.iter().any(|f| f.contains(&format!("LBA {never}: should be zero"))), "{text:?}");
    }

    #[test]
    fn each_fault_is_made_and_judged() {
        // Deterministic, each kind alone: it is made, and the run stays clean.
        for k in FaultKind::ALL {
            let spec = spec(600, vec![k]);
            let r = one_run(&spec, String::new());
            assert!(r.faults.get(k.name()).copied().unwrap_or(0) > 0, "{} never made: {r:?}", k.name());
            assert!(r.failures.is_empty(), "{}: {:?}", k.name(), r.failures);
            assert_eq!(r.steps, 600);
        }
    }

    #[test]
    fn fault_lists_parse() {
        assert_eq!(parse_faults(&["all".into()]).unwrap().len(), FaultKind::ALL.len());
        assert!(parse_faults(&["none".into()]).unwrap().is_empty());
        assert_eq!(parse_faults(&["abort,lost".into(), "abort".into()]).unwrap(), vec![FaultKind::Abort, FaultKind::Lost]);
        assert!(parse_faults(&["meteor".into()]).is_err());
        let names: std::collections::HashSet<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), FaultKind::ALL.len());
    }
}
