//! The port: scsiport.sys's side of every interaction with a miniport.
//!
//! A [`MachineCore`] holds the adapters, the verifier's record, the trace and the upper edge's
//! completions. Each [`Adapter`] holds the port's state for one HBA behind two locks: `intlock`
//! is the "interrupt lock" that serialises `HwScsiInitialize`, `HwScsiStartIo`, `HwScsiInterrupt`,
//! `HwScsiTimer`, `HwScsiResetBus`, the disable callback and `AdapterControl` stop/restart (contract
//! §3.8); `st` guards the bookkeeping and is never held while a miniport routine runs, so that the
//! routine's calls back into the port (which take `st`) cannot deadlock. Lock order: `intlock`
//! before `st`.
//!
//! The port services the miniport calls (`ffi.rs`) find their machine through a thread-local
//! "current routine" that [`MachineCore::call`] sets around every call into the miniport.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::CString;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use scsiport_sys as sys;
use sys::{
    ACCESS_RANGE, BOOLEAN, FALSE, HW_INITIALIZATION_DATA, PORT_CONFIGURATION_INFORMATION, PVOID,
    SCSI_REQUEST_BLOCK, TRUE,
};

use crate::guard::{self, DirectHandle, GuardHandle, GuardKind};
use crate::hba::{BarKind, Clock, Hba};
use crate::mem::{DmaRegion, DmaSpace, Layout, PAGE_SIZE};
use crate::request::{Completion, Direction, Request, Ticket};
use crate::stats::Stats;
use crate::trace::{J, Tracer, hex8};
use crate::verifier::{BugCheck, Rule, VerifierConfig};

/// Garbage the port writes into SRB extensions before `StartIo`: the port does not initialise them
/// (`DDI:ns-srb-_hw_initialization_data`), and a miniport that assumes zero should fail.
pub(crate) const SRB_EXTENSION_GARBAGE: u8 = 0xCD;
/// What a completed SRB and its extension are overwritten with before they are guarded.
pub(crate) const POISON: u8 = 0xDB;
/// Canary bytes the port puts after the `ScsiQuerySupportedControlTypes` list.
const CANARY: u8 = 0xA7;
/// Completed SRBs kept guarded per adapter before their memory is reused.
const QUARANTINE: usize = 48;

// ---------------------------------------------------------------------------------------------
// Routines and the thread-local "current call"
// ---------------------------------------------------------------------------------------------

/// A miniport entry point, named as the documentation names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Routine {
    DriverEntry,
    FindAdapter,
    Initialize,
    StartIo,
    Interrupt,
    EnableCallback,
    DisableCallback,
    ResetBus,
    AdapterControl,
    Timer,
}

impl Routine {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Routine::DriverEntry => "DriverEntry",
            Routine::FindAdapter => "HwScsiFindAdapter",
            Routine::Initialize => "HwScsiInitialize",
            Routine::StartIo => "HwScsiStartIo",
            Routine::Interrupt => "HwScsiInterrupt",
            Routine::EnableCallback => "HwScsiEnableInterruptsCallback",
            Routine::DisableCallback => "HwScsiDisableInterruptsCallback",
            Routine::ResetBus => "HwScsiResetBus",
            Routine::AdapterControl => "HwScsiAdapterControl",
            Routine::Timer => "HwScsiTimer",
        }
    }

    /// What a call costs in the latency model: `HwScsiStartIo` [`PortConfig::start_io_cost_ns`],
    /// the other run-time routines [`PortConfig::call_cost_ns`]. Load, initialisation and
    /// adapter control cost nothing; their waits are the `ScsiPortStallExecution` calls they
    /// make.
    fn cost(self, cfg: &PortConfig) -> Option<&RangeInclusive<u64>> {
        match self {
            Routine::StartIo => Some(&cfg.start_io_cost_ns),
            Routine::Interrupt | Routine::EnableCallback | Routine::DisableCallback | Routine::Timer | Routine::ResetBus => {
                Some(&cfg.call_cost_ns)
            }
            Routine::DriverEntry | Routine::FindAdapter | Routine::Initialize | Routine::AdapterControl => None,
        }
    }

    /// Driver Verifier's time limit (0x1002), in ns; `None` = exempt (`DT:scsi-verification`).
    const fn limit_ns(self) -> Option<u64> {
        match self {
            Routine::DriverEntry | Routine::FindAdapter => None,
            Routine::Initialize => Some(5_000_000_000),
            _ => Some(500_000_000),
        }
    }
}

pub(crate) struct CallCtx {
    pub(crate) machine: Arc<MachineCore>,
    pub(crate) adapter: Option<Arc<Adapter>>,
    pub(crate) routine: Routine,
    /// Virtual stall time (deterministic schedule) and total stall in this routine (µs).
    pub(crate) stall_ns: u64,
    pub(crate) stall_total_us: u64,
}

thread_local! {
    static CTX: RefCell<Vec<CallCtx>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the innermost current call, if any.
pub(crate) fn with_ctx<R>(f: impl FnOnce(Option<&mut CallCtx>) -> R) -> R {
    CTX.with(|c| match c.try_borrow_mut() {
        Ok(mut v) => f(v.last_mut()),
        Err(_) => f(None),
    })
}

/// The machine, adapter and routine of the current call.
pub(crate) fn current() -> Option<(Arc<MachineCore>, Option<Arc<Adapter>>, Routine)> {
    with_ctx(|c| c.map(|c| (Arc::clone(&c.machine), c.adapter.clone(), c.routine)))
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Port behaviour settings (what the registry and the PnP manager decide on Windows).
///
/// # The latency model (deterministic schedule)
///
/// On Windows nothing in the interrupt path is instantaneous, and that is why a miniport that
/// defers its interrupt work batches: between the line rising and the ISR running, and between
/// the ISR requesting `CallEnableInterrupts` and the enable callback running "as a DPC"
/// (contract §4.3), the HBA keeps posting completions, and the enable callback drains them all.
/// The deterministic schedule models three delays in virtual time, each drawn uniformly from a
/// range with the machine's seed (a stream of its own, so one seed gives one run, byte for
/// byte):
///
/// - [`interrupt_latency_ns`](Self::interrupt_latency_ns), 1–4 µs: line asserted → ISR
///   eligible. PVSCSI only exists in virtual machines, where an interrupt reaches the guest
///   through the hypervisor: a VM exit and entry on the vCPU, a round trip on the order of a
///   microsecond (Gordon et al., "ELI: Bare-Metal Performance for I/O Virtualization", ASPLOS
///   2012, count the exits each interrupt costs a KVM guest), then the kernel's dispatch to
///   the ISR under the interrupt lock (under 1 µs). Waking a halted vCPU (the host scheduler,
///   tens of µs) is not modelled.
/// - [`dpc_latency_ns`](Self::dpc_latency_ns), 4–25 µs: the ISR's return → enable callback
///   eligible. `LatencyMon` reports published from idle bare-metal Windows desktops show an
///   average "interrupt to DPC latency" of 1–3 µs (counted from the ISR's start) with maxima
///   of a few hundred µs. A PVSCSI guest adds the EOI write (an exit without APIC
///   virtualisation); the port's DPC has to collect what the ISR posted under the interrupt
///   lock before it can call back (inferred, not documented); and under I/O load other DPCs
///   are queued ahead of it. 4 µs is the floor of those steps; 25 µs covers queueing short of
///   the rare multi-hundred-µs tail (widen the range to explore that).
/// - [`call_cost_ns`](Self::call_cost_ns), 0.5–2 µs per call of the ISR, a deferred-interrupt
///   callback, `HwScsiTimer` or `HwScsiResetBus`, charged when it returns (the trace's `ret` is
///   that much later than its `call`): the routine's own work plus at least one register
///   access, which for an emulated device is itself an exit. Deliberately at the low end, so
///   the model does not overstate batching.
///
/// The model times the completion path. The submission path is not timed: the upper edge,
/// SCSI Port's dispatch and, by default, `HwScsiStartIo`
/// ([`start_io_cost_ns`](Self::start_io_cost_ns), 0) take no virtual time, so a burst of
/// requests reaches the device at one instant. Charging `StartIo` alone would time a small
/// part of that path (on Windows the I/O manager and the class driver cost more per request);
/// and with 0.5–2 µs per call a burst of 64 takes longer to issue than the PVSCSI model's
/// shortest latency (20 µs), so the queue never fills. Set it, with a device latency well
/// above depth × cost, to study submission-bound runs.
///
/// The disable callback gets no latency of its own beyond its call cost: the port calls it
/// from the same DPC right after the enable callback returns, synchronised with the ISR
/// (contract §4.3), not from a newly queued DPC. While an interrupt or a deferred callback is
/// not yet eligible the scheduler runs whatever else is (the device, `StartIo` for other
/// adapters, timers, the upper edge's requests), and when nothing is, moves the clock to the
/// earliest eligible event. The adapter's deferral window (no `HwScsiInterrupt`, no `StartIo`,
/// timer or timeout from `CallEnableInterrupts` to the disable callback's return) is unchanged;
/// it just lasts longer, so completions land inside it as they do on a real machine.
/// [`PortConfig::without_latency`] restores the instantaneous model. The concurrent schedule
/// ignores these settings: its threads have real latencies of their own.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)] // independent switches, like the registry values they stand for
pub struct PortConfig {
    /// `ArgumentString` for `HwScsiFindAdapter` (dump mode prepends `dump=1`).
    pub argument_string: Option<String>,
    /// Crash-dump style load: `DriverEntry` gets NULL arguments, `dump=1`, no interrupt is
    /// connected (the port polls `HwScsiInterrupt`), no deferral, uncached extension < 32 KiB
    /// (`KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive`).
    pub dump_mode: bool,
    /// `SenseInfoBufferLength` of each request (18..=255; SCSI Port's default is 18,
    /// `KG:registry-entries-for-scsi-miniport-drivers (arch)`).
    pub sense_len: u8,
    /// The bus-reset hold (ns of machine time); not documented for SCSI Port, default 4 s
    /// (contract §7.2).
    pub reset_hold_ns: u64,
    /// Contract §4.3 "adversarial" mode: run `HwScsiStartIo` on another thread while the enable
    /// callback runs.
    pub adversarial: bool,
    /// Trace every register access too.
    pub trace_registers: bool,
    /// How often a request answered with `SRB_STATUS_BUSY` is retried before the port gives up.
    pub max_busy_retries: u32,
    /// Delay before a BUSY request is retried (ns).
    pub busy_retry_delay_ns: u64,
    /// Polling period of `HwScsiInterrupt` in dump mode (ns).
    pub dump_poll_ns: u64,
    /// Run the INQUIRY bus scan after `HwScsiInitialize`.
    pub scan: bool,
    /// Deterministic schedule: interrupt latency, the virtual time from the moment the port
    /// sees an HBA's line asserted to the moment `HwScsiInterrupt` may be called for it, drawn
    /// uniformly (ns, seeded) each time a line starts wanting service. Default 1–4 µs (see the
    /// latency model above).
    pub interrupt_latency_ns: RangeInclusive<u64>,
    /// Deterministic schedule: DPC latency, the virtual time from the return of the
    /// `HwScsiInterrupt` that requested `CallEnableInterrupts` to the moment
    /// `HwScsiEnableInterruptsCallback` may be called, drawn uniformly (ns, seeded) per
    /// deferral. Default 4–25 µs.
    pub dpc_latency_ns: RangeInclusive<u64>,
    /// Deterministic schedule: the virtual time one call of `HwScsiInterrupt`, of a
    /// deferred-interrupt callback, of `HwScsiTimer` or of `HwScsiResetBus` costs, on top of any
    /// `ScsiPortStallExecution`, drawn uniformly (ns, seeded) per call. Default 0.5–2 µs.
    pub call_cost_ns: RangeInclusive<u64>,
    /// Deterministic schedule: the virtual time one `HwScsiStartIo` call costs, drawn like
    /// [`Self::call_cost_ns`]. Default 0 (off), like the rest of the submission path.
    pub start_io_cost_ns: RangeInclusive<u64>,
}

/// The latency model's defaults (ns). See [`PortConfig`]'s documentation.
pub(crate) const INTERRUPT_LATENCY_NS: RangeInclusive<u64> = 1_000..=4_000;
pub(crate) const DPC_LATENCY_NS: RangeInclusive<u64> = 4_000..=25_000;
pub(crate) const CALL_COST_NS: RangeInclusive<u64> = 500..=2_000;
pub(crate) const START_IO_COST_NS: RangeInclusive<u64> = 0..=0;

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            argument_string: None,
            dump_mode: false,
            sense_len: 18,
            reset_hold_ns: 4_000_000_000,
            adversarial: false,
            trace_registers: true,
            max_busy_retries: 1000,
            busy_retry_delay_ns: 1_000_000,
            dump_poll_ns: 20_000,
            scan: true,
            interrupt_latency_ns: INTERRUPT_LATENCY_NS,
            dpc_latency_ns: DPC_LATENCY_NS,
            call_cost_ns: CALL_COST_NS,
            start_io_cost_ns: START_IO_COST_NS,
        }
    }
}

impl PortConfig {
    /// The same settings with the latency model switched off: in the deterministic schedule
    /// interrupts, deferred callbacks and miniport calls then take no virtual time at all (an
    /// interrupt is dispatched and its enable callback runs at the instant the line rises).
    #[must_use]
    pub fn without_latency(mut self) -> Self {
        self.interrupt_latency_ns = 0..=0;
        self.dpc_latency_ns = 0..=0;
        self.call_cost_ns = 0..=0;
        self.start_io_cost_ns = 0..=0;
        self
    }
}

/// Why a machine operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The verifier stopped the machine.
    BugCheck(BugCheck),
    /// Loading or starting the driver failed without a rule being broken (e.g. `FindAdapter`
    /// returned `SP_RETURN_NOT_FOUND`).
    Load(String),
    /// Nothing more can happen and the awaited request is still not complete.
    Stuck(String),
    /// The call makes no sense in the machine's state.
    Usage(String),
}

impl Error {
    /// The bug check, if this is one.
    #[must_use]
    pub fn bugcheck(&self) -> Option<&BugCheck> {
        match self {
            Error::BugCheck(b) => Some(b),
            _ => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BugCheck(b) => write!(f, "{b}"),
            Error::Load(s) => write!(f, "driver load failed: {s}"),
            Error::Stuck(s) => write!(f, "stuck: {s}"),
            Error::Usage(s) => write!(f, "usage: {s}"),
        }
    }
}

impl std::error::Error for Error {}

/// The `ConfigInfo` fields `ScsiPortGetUncachedExtension` depends on, which must be final before
/// it is called (`DDI:nf-srb-scsiportgetuncachedextension`, contract §2.3).
const DMA_FIELD_NAMES: [&str; 9] = [
    "MaximumTransferLength",
    "NumberOfPhysicalBreaks",
    "ScatterGather",
    "Master",
    "Dma32BitAddresses",
    "Dma64BitAddresses",
    "AutoRequestSense",
    "SrbExtensionSize",
    "SpecificLuExtensionSize",
];

fn dma_fields(c: &PORT_CONFIGURATION_INFORMATION) -> [u64; 9] {
    [
        u64::from(c.MaximumTransferLength),
        u64::from(c.NumberOfPhysicalBreaks),
        u64::from(c.ScatterGather),
        u64::from(c.Master),
        u64::from(c.Dma32BitAddresses),
        u64::from(c.Dma64BitAddresses),
        u64::from(c.AutoRequestSense),
        u64::from(c.SrbExtensionSize),
        u64::from(c.SpecificLuExtensionSize),
    ]
}

/// Whether standard INQUIRY data describes a logical unit that exists (peripheral qualifier 0 and
/// not device type 0x1F, "unknown or no device"; SPC-4 §6.6.2).
fn inquiry_data_found(data: &[u8]) -> bool {
    let b0 = data.first().copied().unwrap_or(0x7F);
    (b0 >> 5) == 0 && (b0 & 0x1F) != 0x1F
}

/// Whether an INQUIRY completion found a logical unit.
fn inquiry_found(c: &Completion) -> bool {
    matches!(c.status(), sys::SRB_STATUS_SUCCESS | sys::SRB_STATUS_DATA_OVERRUN) && inquiry_data_found(&c.data)
}

// ---------------------------------------------------------------------------------------------
// Raw pointer holders
// ---------------------------------------------------------------------------------------------

/// `HW_INITIALIZATION_DATA` as registered (a copy; the miniport's is on its stack).
#[derive(Clone, Copy)]
pub(crate) struct HwInit(pub(crate) HW_INITIALIZATION_DATA);
// SAFETY: the raw pointers in it are entry points and ID strings of the miniport image, valid for
// the life of the process and never written through.
unsafe impl Send for HwInit {}
// SAFETY: as above.
unsafe impl Sync for HwInit {}

/// A heap block with a stable address the miniport owns (device and LU extensions).
pub(crate) struct ExtBlock(Box<[u128]>);

impl ExtBlock {
    fn zeroed(bytes: usize) -> Self {
        Self(vec![0u128; bytes.div_ceil(16).max(1)].into_boxed_slice())
    }
    pub(crate) fn ptr(&self) -> PVOID {
        self.0.as_ptr().cast_mut().cast()
    }
}

struct ConfigBox {
    info: Box<PORT_CONFIGURATION_INFORMATION>,
    ranges: Box<[ACCESS_RANGE]>,
}
// SAFETY: the config and ranges are owned heap blocks; the pointer inside `info` points into
// `ranges`, which lives as long as this value.
unsafe impl Send for ConfigBox {}

pub(crate) struct Mapping {
    pub(crate) va: usize,
    pub(crate) len: usize,
    pub(crate) bar: u8,
    pub(crate) bar_off: u64,
    pub(crate) io: bool,
    guard: Option<GuardHandle>,
    /// For a loaded image: the range whose direct accesses are emulated.
    direct: Option<DirectHandle>,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.guard.take();
        self.direct.take();
        guard::unreserve(self.va, self.len);
    }
}

/// A `PROT_NONE` address range handed out instead of real memory (the `DataBuffer` stand-in).
struct Reservation {
    guard: Option<GuardHandle>,
    base: usize,
    len: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.guard.take();
        guard::unreserve(self.base, self.len);
    }
}

/// The memory of one SRB: the SRB page, its extension, sense and data buffers. Fields drop in
/// order, so the guards are unregistered before any memory goes away.
pub(crate) struct SrbBlock {
    guards: Vec<GuardHandle>,
    /// The guarded stand-in handed out as `DataBuffer` when `MapBuffers` is FALSE.
    data_guard: Option<Reservation>,
    srb: DmaRegion,
    ext: Option<DmaRegion>,
    sense: Option<DmaRegion>,
    data: Option<DmaRegion>,
}

/// SRB page, extension and sense buffer of an evicted block, ready for reuse.
type Pooled = (DmaRegion, Option<DmaRegion>, Option<DmaRegion>);

impl SrbBlock {
    fn srb_ptr(&self) -> *mut SCSI_REQUEST_BLOCK {
        self.srb.va().cast()
    }

    /// Unguards the block and keeps its fixed-size parts for reuse.
    fn recycle(self, pool: &mut Vec<Pooled>) {
        let SrbBlock { guards, data_guard, srb, ext, sense, data } = self;
        if !guards.is_empty() {
            srb.set_cpu_access(true);
            if let Some(e) = &ext {
                e.set_cpu_access(true);
            }
        }
        drop(guards);
        drop(data_guard);
        drop(data);
        if pool.len() < 64 {
            pool.push((srb, ext, sense));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests inside the port
// ---------------------------------------------------------------------------------------------

type LuAddr = (u8, u8, u8);

/// A built SRB: its address, the request id and the trace fields of the `HwScsiStartIo` call.
type Built = (*mut SCSI_REQUEST_BLOCK, u64, Vec<(&'static str, J)>);

/// Whether a request belongs to a bus scan: the initial one (awaited) or a re-enumeration after
/// `BusChangeDetected` (nobody waits for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    No,
    Wait,
    Background,
}

pub(crate) struct PortReq {
    pub(crate) id: u64,
    pub(crate) req: Request,
    pub(crate) submitted_ns: u64,
    pub(crate) not_before_ns: u64,
    pub(crate) retries: u32,
    pub(crate) scan: Scan,
}

impl PortReq {
    fn lu(&self) -> LuAddr {
        (self.req.path, self.req.target, self.req.lun)
    }
}

struct ActiveSrb {
    preq: PortReq,
    block: SrbBlock,
    snapshot: SCSI_REQUEST_BLOCK,
    deadline_ns: u64,
    tag: u8,
    timed_out: bool,
}

// SAFETY: the snapshot's pointers are copies kept only for comparison, never dereferenced; the
// block's regions are Send.
unsafe impl Send for ActiveSrb {}

struct Quarantined {
    srb: usize,
    /// Kept (poisoned and guarded) until evicted, so a late access faults.
    block: SrbBlock,
}

#[derive(Default)]
struct Lu {
    ext: Option<ExtBlock>,
    exists: bool,
    queue: VecDeque<PortReq>,
    /// Active SRB addresses by queue tag (`SP_UNTAGGED` for the untagged one).
    active: BTreeMap<u8, usize>,
    ready_for_more: bool,
    frozen: bool,
    next_tag: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    FindAdapter,
    Initializing,
    Running,
    Stopped,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defer {
    None,
    /// The ISR asked for the enable callback; it has not run yet.
    EnablePending(usize),
    /// The enable callback is running.
    EnableRunning,
    /// The enable callback asked for the disable callback; it has not run yet.
    DisablePending(usize),
}

#[derive(Clone, Copy, Debug, Default)]
#[allow(clippy::struct_excessive_bools)]
pub(crate) struct Caps {
    pub(crate) tagged: bool,
    pub(crate) multi: bool,
    pub(crate) map_buffers: bool,
    pub(crate) need_phys: bool,
    pub(crate) caches_data: bool,
    pub(crate) buses: u8,
    pub(crate) targets: u8,
    pub(crate) luns: u8,
    pub(crate) initiator: [u8; 8],
    pub(crate) srb_ext: usize,
    pub(crate) lu_ext: usize,
}

struct Hold {
    until_ns: u64,
    ids: BTreeSet<u64>,
}

#[allow(clippy::struct_excessive_bools)]
pub(crate) struct AdapterSt {
    pub(crate) phase: Phase,
    hw: Option<HwInit>,
    devext: Option<ExtBlock>,
    config: Option<ConfigBox>,
    arg_string: Option<CString>,
    pub(crate) caps: Caps,
    pub(crate) mappings: Vec<Mapping>,
    uncached: Option<DmaRegion>,
    uncached_calls: u32,
    /// The `ConfigInfo` passed to the running `HwScsiFindAdapter`.
    find_cfg: usize,
    /// DMA-relevant `ConfigInfo` fields when the uncached extension was taken.
    uncached_snapshot: Option<[u64; 9]>,
    bus_data: Vec<u8>,
    lus: BTreeMap<LuAddr, Lu>,
    lu_cursor: Option<LuAddr>,
    priority: VecDeque<PortReq>,
    active: BTreeMap<usize, ActiveSrb>,
    quarantine: VecDeque<Quarantined>,
    pool: Vec<Pooled>,
    data_pool: Vec<DmaRegion>,
    ready: bool,
    connected: bool,
    defer: Defer,
    /// Deterministic schedule: when the pending enable callback becomes eligible (DPC latency).
    dpc_due_ns: u64,
    enable_request: Option<usize>,
    disable_request: Option<usize>,
    disable_requests: u32,
    timer: Option<(usize, u64)>,
    hold: Option<Hold>,
    /// Port-initiated bus resets the upper edge asked for (`Machine::reset_bus`) whose
    /// `HwScsiResetBus` has not returned yet, oldest first: (ticket, path).
    reset_requests: VecDeque<(u64, u8)>,
    /// The last ticket handed to a requested reset.
    reset_tickets: u64,
    stalled_since: Option<u64>,
    storm: u32,
    unclear: u32,
    supported: [bool; 5],
    next_poll_ns: u64,
    in_running_config: bool,
    rescan: BTreeSet<u8>,
    pub(crate) stats: Stats,
    line_level: bool,
}

impl AdapterSt {
    fn new() -> Self {
        Self {
            phase: Phase::Idle,
            hw: None,
            devext: None,
            config: None,
            arg_string: None,
            caps: Caps::default(),
            mappings: Vec::new(),
            uncached: None,
            uncached_calls: 0,
            find_cfg: 0,
            uncached_snapshot: None,
            bus_data: Vec::new(),
            lus: BTreeMap::new(),
            lu_cursor: None,
            priority: VecDeque::new(),
            active: BTreeMap::new(),
            quarantine: VecDeque::new(),
            pool: Vec::new(),
            data_pool: Vec::new(),
            ready: false,
            connected: false,
            defer: Defer::None,
            dpc_due_ns: 0,
            enable_request: None,
            disable_request: None,
            disable_requests: 0,
            timer: None,
            hold: None,
            reset_requests: VecDeque::new(),
            reset_tickets: 0,
            stalled_since: None,
            storm: 0,
            unclear: 0,
            supported: [false; 5],
            next_poll_ns: 0,
            in_running_config: false,
            rescan: BTreeSet::new(),
            stats: Stats::default(),
            line_level: false,
        }
    }

    fn deferred(&self) -> bool {
        self.defer != Defer::None
    }

    /// Whether the port may call `HwScsiResetBus` now (the interrupt lock held): the adapter runs
    /// and no deferred-interrupt window is open (contract §4.3: no `HwScsiResetBus` from
    /// `CallEnableInterrupts` to the disable callback's return).
    fn may_reset(&self) -> bool {
        self.phase == Phase::Running && !self.deferred()
    }

    pub(crate) fn lu_list(&self) -> Vec<LuAddr> {
        self.lus.iter().filter(|(_, l)| l.exists).map(|(k, _)| *k).collect()
    }

    pub(crate) fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    fn queued(&self) -> usize {
        self.priority.len() + self.lus.values().map(|l| l.queue.len()).sum::<usize>()
    }
}

/// One HBA and the port's state for it.
pub(crate) struct Adapter {
    pub(crate) index: usize,
    pub(crate) hba: Arc<dyn Hba>,
    pub(crate) dma: Arc<dyn DmaSpace>,
    pub(crate) line: u32,
    /// This adapter's own `ArgumentString`, overriding the machine's.
    pub(crate) args: Option<String>,
    pub(crate) intlock: Mutex<()>,
    pub(crate) st: Mutex<AdapterSt>,
    /// The current device extension address (for the cross-check of every service call).
    pub(crate) devext: AtomicUsize,
    /// Signalled (with `st`) each time a requested bus reset has run.
    reset_cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One step of xorshift64 (the state must not be 0).
fn xorshift(r: &mut u64) -> u64 {
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    *r
}

impl Adapter {
    pub(crate) fn new(index: usize, hba: Arc<dyn Hba>, dma: Arc<dyn DmaSpace>, line: u32, args: Option<String>) -> Self {
        Self {
            index,
            hba,
            dma,
            line,
            args,
            intlock: Mutex::new(()),
            st: Mutex::new(AdapterSt::new()),
            devext: AtomicUsize::new(0),
            reset_cv: Condvar::new(),
        }
    }

    pub(crate) fn st(&self) -> MutexGuard<'_, AdapterSt> {
        lock(&self.st)
    }

    fn intlock(&self) -> MutexGuard<'_, ()> {
        lock(&self.intlock)
    }

    fn devext_ptr(&self) -> PVOID {
        self.devext.load(Ordering::Acquire) as PVOID
    }

    /// Where a requested reset stands.
    pub(crate) fn reset_state(&self, ticket: u64) -> ResetState {
        Self::reset_state_of(&self.st(), ticket)
    }

    fn reset_state_of(st: &AdapterSt, ticket: u64) -> ResetState {
        if !st.reset_requests.iter().any(|(t, _)| *t == ticket) {
            ResetState::Done
        } else if st.phase == Phase::Running {
            ResetState::Pending
        } else {
            ResetState::Dead(st.phase)
        }
    }

    /// Withdraws a requested reset that has not run (its caller gave up).
    pub(crate) fn cancel_reset(&self, ticket: u64) {
        self.st().reset_requests.retain(|(t, _)| *t != ticket);
    }

    /// Concurrent schedule: sleeps until a requested reset has run, the adapter left the running
    /// phase, or `max` passed; returns where it stands.
    pub(crate) fn wait_reset(&self, ticket: u64, max: std::time::Duration) -> ResetState {
        let st = self.st();
        let state = Self::reset_state_of(&st, ticket);
        if state != ResetState::Pending {
            return state;
        }
        let (st, _) = self.reset_cv.wait_timeout(st, max).unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::reset_state_of(&st, ticket)
    }
}

// ---------------------------------------------------------------------------------------------
// The machine core
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
pub(crate) struct DriverState {
    pub(crate) in_entry: bool,
    pub(crate) args: (usize, usize),
    pub(crate) registrations: Vec<HwInit>,
    pub(crate) statuses: Vec<u32>,
}

/// The virtual clock of the deterministic schedule.
#[derive(Debug, Default)]
pub struct VirtualClock {
    ns: AtomicU64,
}

impl VirtualClock {
    /// Moves the clock forward to `ns` (never back).
    pub fn advance_to(&self, ns: u64) {
        self.ns.fetch_max(ns, Ordering::AcqRel);
    }
}

impl Clock for VirtualClock {
    fn now_ns(&self) -> u64 {
        self.ns.load(Ordering::Acquire)
    }
}

/// Real time since the machine was built (concurrent schedule).
#[derive(Debug)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    /// Starts now.
    #[must_use]
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

pub(crate) struct MachineCore {
    pub(crate) owner: u64,
    pub(crate) cfg: PortConfig,
    pub(crate) verifier: VerifierConfig,
    pub(crate) deterministic: bool,
    pub(crate) vclock: Option<Arc<VirtualClock>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tracer: Tracer,
    pub(crate) adapters: Vec<Arc<Adapter>>,
    pub(crate) violations: Mutex<Vec<BugCheck>>,
    pub(crate) bugcheck: Mutex<Option<BugCheck>>,
    pub(crate) halted: AtomicBool,
    pub(crate) driver: Mutex<DriverState>,
    pub(crate) completions: Mutex<BTreeMap<u64, Completion>>,
    pub(crate) done_cv: Condvar,
    pub(crate) next_id: AtomicU64,
    /// Wake-ups of the concurrent schedule's threads: device, interrupt dispatch, DPC.
    pub(crate) chans: [Chan; 3],
    pub(crate) rng: Mutex<u64>,
    /// The latency model's draws (deterministic schedule), apart from the event choice.
    pub(crate) latency_rng: Mutex<u64>,
    /// Deterministic schedule: for each line that wants service, when its ISR dispatch becomes
    /// eligible (interrupt latency, drawn when the port first saw it asserted).
    pub(crate) irq_due: Mutex<BTreeMap<u32, u64>>,
    pub(crate) stop: AtomicBool,
    pub(crate) faults_seen: AtomicU64,
    pub(crate) loaded: AtomicBool,
    pub(crate) arg_tokens: Box<[u64; 2]>,
    /// The loaded `.sys`, when the driver is one (`Machine::load_image`): its code accesses
    /// registers directly, as on Windows x64, and those accesses are emulated (`mmio.rs`).
    pub(crate) image: Mutex<Option<Arc<crate::pe::DriverImage>>>,
    pub(crate) direct_registers: AtomicBool,
}

pub(crate) const CHAN_DEVICE: usize = 0;
pub(crate) const CHAN_IRQ: usize = 1;
pub(crate) const CHAN_DPC: usize = 2;

/// A wake-up channel: a counter and a condition variable. Waiting threads only sleep while the
/// counter is unchanged, so a kick between two waits is never lost.
#[derive(Default)]
pub(crate) struct Chan {
    n: Mutex<u64>,
    cv: Condvar,
}

impl Chan {
    pub(crate) fn kick(&self) {
        let mut g = lock(&self.n);
        *g = g.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Sleeps until kicked since `last` was taken, or `max` passed.
    pub(crate) fn wait(&self, last: &mut u64, max: std::time::Duration) {
        let g = lock(&self.n);
        if *g == *last {
            let (g2, _) = self.cv.wait_timeout(g, max).unwrap_or_else(std::sync::PoisonError::into_inner);
            *last = *g2;
        } else {
            *last = *g;
        }
    }
}

/// A miniport's `HwScsiResetBus`.
type HwResetBusFn = unsafe extern "win64" fn(PVOID, sys::ULONG) -> BOOLEAN;

/// Why the port resets a bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResetReason {
    /// A request timed out (contract §7.3).
    Timeout,
    /// The upper edge asked for it (`Machine::reset_bus`).
    Request,
}

/// Where a bus reset asked for with `Machine::reset_bus` stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResetState {
    /// Not run yet.
    Pending,
    /// `HwScsiResetBus` has returned (or the request was withdrawn).
    Done,
    /// Not run, and the adapter left the running phase: it never will be.
    Dead(Phase),
}

/// What a deterministic step did.
pub(crate) enum Step {
    Progress,
    Idle,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Device(usize),
    Isr(u32),
    Poll(usize),
    Dpc(usize),
    Start(usize),
    Timer(usize),
    Timeout(usize),
    HoldEnd(usize),
    Rescan(usize),
}

impl MachineCore {
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    pub(crate) fn halt_error(&self) -> Option<Error> {
        if self.is_halted() { lock(&self.bugcheck).clone().map(Error::BugCheck) } else { None }
    }

    pub(crate) fn kick(&self) {
        for c in &self.chans {
            c.kick();
        }
    }

    /// Wakes the DPC thread (readiness, completions, deferrals, timers).
    pub(crate) fn kick_dpc(&self) {
        self.chans[CHAN_DPC].kick();
    }

    /// Wakes the interrupt-dispatch thread (a line or a deferral changed).
    pub(crate) fn kick_irq(&self) {
        self.chans[CHAN_IRQ].kick();
    }

    pub(crate) fn trace(&self, adapter: Option<usize>, ev: &'static str, fields: &[(&'static str, J)]) {
        self.tracer.emit(self.now(), adapter, ev, fields);
    }

    fn rand(&self) -> u64 {
        xorshift(&mut lock(&self.rng))
    }

    /// A draw of the latency model: uniform in `range` (ns), 0 outside the deterministic
    /// schedule. A reversed range counts as its ends swapped.
    fn draw(&self, range: &RangeInclusive<u64>) -> u64 {
        if !self.deterministic {
            return 0;
        }
        let (lo, hi) = ((*range.start()).min(*range.end()), (*range.start()).max(*range.end()));
        if lo == hi {
            return lo;
        }
        let r = xorshift(&mut lock(&self.latency_rng));
        match (hi - lo).checked_add(1) {
            Some(n) => lo + r % n,
            None => r,
        }
    }

    /// Moves the virtual clock on by a draw from `range` (deterministic schedule only).
    fn spend(&self, range: &RangeInclusive<u64>) -> u64 {
        let ns = self.draw(range);
        if ns > 0
            && let Some(c) = &self.vclock
        {
            c.advance_to(c.now_ns().saturating_add(ns));
        }
        ns
    }

    /// Records a rule break. Fatal rules halt the machine: the first one becomes the bug check,
    /// later miniport calls are not made, and every API call returns it.
    pub(crate) fn violation(&self, adapter: Option<usize>, rule: Rule, params: [u64; 3], message: String) {
        if !self.verifier.checks(rule) {
            return;
        }
        let routine = with_ctx(|c| c.map(|c| c.routine.name()));
        let v = BugCheck {
            code: rule.code(),
            params,
            rule,
            doc: rule.doc(),
            message,
            adapter,
            routine,
            t_ns: self.now(),
        };
        self.trace(
            adapter,
            "violation",
            &[
                ("code", J::Str(format!("{:#x}", v.code))),
                ("rule", J::Str(format!("{rule:?}"))),
                ("fatal", J::B(rule.fatal())),
                ("doc", J::Static(rule.doc())),
                ("message", J::Str(v.message.clone())),
                ("p1", J::Str(format!("{:#x}", params[0]))),
                ("p2", J::Str(format!("{:#x}", params[1]))),
                ("p3", J::Str(format!("{:#x}", params[2]))),
            ],
        );
        let fatal = rule.fatal() || self.verifier.warnings_fatal;
        if let Some(a) = adapter.and_then(|a| self.adapters.get(a))
            && let Ok(mut st) = a.st.try_lock()
        {
            if fatal {
                st.stats.violations += 1;
            } else {
                st.stats.warnings += 1;
            }
        }
        lock(&self.violations).push(v.clone());
        if fatal {
            let mut b = lock(&self.bugcheck);
            if b.is_none() {
                *b = Some(v);
            }
            drop(b);
            self.halted.store(true, Ordering::Release);
            self.done_cv.notify_all();
            self.kick();
        }
    }

    // -----------------------------------------------------------------------------------------
    // Calling the miniport
    // -----------------------------------------------------------------------------------------

    /// Calls a miniport routine with the thread-local context set, traced, timed and followed by
    /// the memory monitor's fault check.
    pub(crate) fn call<R: Copy + Into<i64>>(
        self: &Arc<Self>,
        ad: Option<&Arc<Adapter>>,
        routine: Routine,
        extra: &[(&'static str, J)],
        f: impl FnOnce() -> R,
    ) -> R {
        let idx = ad.map(|a| a.index);
        if self.tracer.enabled() {
            let mut fields = vec![("routine", J::Static(routine.name()))];
            fields.extend_from_slice(extra);
            self.trace(idx, "call", &fields);
        }
        if self.direct_registers.load(Ordering::Relaxed) {
            guard::ensure_altstack();
        }
        CTX.with(|c| {
            if let Ok(mut v) = c.try_borrow_mut() {
                v.push(CallCtx {
                    machine: Arc::clone(self),
                    adapter: ad.cloned(),
                    routine,
                    stall_ns: 0,
                    stall_total_us: 0,
                });
            }
        });
        let start = Instant::now();
        let r = f();
        let real = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let ctx = CTX.with(|c| c.try_borrow_mut().ok().and_then(|mut v| v.pop()));
        let (stall_ns, stall_total_us) = ctx.map_or((0, 0), |c| (c.stall_ns, c.stall_total_us));
        // The latency model: the call took this long (virtual time; device events that fell due
        // meanwhile run in the scheduler's next steps).
        let cost = routine.cost(&self.cfg).map_or(0, |r| self.spend(r));
        let value: i64 = r.into();
        self.trace(idx, "ret", &[("routine", J::Static(routine.name())), ("value", J::I(value))]);
        self.check_faults(idx);
        if stall_total_us > 1000 {
            self.violation(
                idx,
                Rule::StallOverMillisecond,
                [stall_total_us, 0, 0],
                format!("{} stalled {stall_total_us} µs in total", routine.name()),
            );
        }
        // How long the call took in the machine's time: in the deterministic schedule that is
        // virtual (the call cost of the latency model and the virtual stalls); the host's own
        // time spent there depends on the host's load (and on valgrind, or a signal per emulated
        // register access) and is none of the driver's doing. In the concurrent schedule the
        // machine's time is real time.
        let took = if self.deterministic { stall_ns.saturating_add(cost) } else { real.saturating_add(stall_ns).saturating_add(cost) };
        if routine == Routine::Interrupt && took > 50_000 {
            self.violation(idx, Rule::IsrOver50us, [took / 1000, 0, 0], format!("HwScsiInterrupt ran {} µs", took / 1000));
        }
        if let Some(limit) = routine.limit_ns() {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let scaled = (limit as f64 * self.verifier.time_scale.max(0.0)) as u64;
            if took > scaled {
                let devext = ad.map_or(0, |a| a.devext.load(Ordering::Relaxed) as u64);
                self.violation(
                    idx,
                    Rule::RoutineTooLong,
                    [0, devext, took / 1000],
                    format!("{} took {} ms (limit {} ms)", routine.name(), took / 1_000_000, scaled / 1_000_000),
                );
            }
        }
        r
    }

    /// Turns faults the SIGSEGV handler recorded for this machine into violations.
    pub(crate) fn check_faults(&self, adapter: Option<usize>) {
        let n = guard::fault_count();
        if self.faults_seen.swap(n, Ordering::AcqRel) == n {
            return;
        }
        for f in guard::take_faults(self.owner) {
            let (rule, what) = match f.kind {
                GuardKind::Srb => (Rule::TouchedAfterCompletion, "a completed SRB"),
                GuardKind::SrbExtension => (Rule::TouchedAfterCompletion, "the SRB extension of a completed SRB"),
                GuardKind::DataBuffer => (Rule::DataBufferNotMapped, "Srb->DataBuffer with MapBuffers FALSE"),
                GuardKind::Mmio => (Rule::DirectRegisterAccess, "a mapped register address directly"),
                GuardKind::MmioDirect => (Rule::DirectRegisterAccess, "a mapped register with an instruction the emulator cannot perform (not a plain 1-, 2- or 4-byte mov)"),
            };
            self.violation(
                adapter,
                rule,
                [f.addr as u64, 2, u64::from(f.write)],
                format!(
                    "the miniport {} {what} at {:#x} (srb {})",
                    if f.write { "wrote" } else { "read" },
                    f.addr,
                    f.tag
                ),
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // Load: DriverEntry, PnP start
    // -----------------------------------------------------------------------------------------

    pub(crate) fn run_driver_entry(self: &Arc<Self>, entry: crate::DriverEntryFn) -> Result<(), Error> {
        let (a1, a2) = if self.cfg.dump_mode {
            (0usize, 0usize)
        } else {
            (self.arg_tokens.as_ptr() as usize, self.arg_tokens.as_ptr() as usize + 8)
        };
        {
            let mut d = lock(&self.driver);
            d.in_entry = true;
            d.args = (a1, a2);
        }
        let status = self.call(None, Routine::DriverEntry, &[], || {
            // SAFETY: the entry point is the miniport's DriverEntry; the arguments are opaque
            // tokens it must only pass on to ScsiPortInitialize.
            let s = unsafe { entry(a1 as PVOID, a2 as PVOID) };
            i64::from(s)
        });
        let mut d = lock(&self.driver);
        d.in_entry = false;
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if let Some(&lowest) = d.statuses.iter().min() {
            if u64::try_from(status).unwrap_or(u64::MAX) != u64::from(lowest) {
                drop(d);
                self.violation(
                    None,
                    Rule::DriverEntryReturn,
                    [u64::try_from(status).unwrap_or(0), u64::from(lowest), 0],
                    format!("DriverEntry returned {status:#x}, but the lowest ScsiPortInitialize status was {lowest:#x}"),
                );
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("DriverEntry".into())));
            }
        } else {
            return Err(Error::Load("DriverEntry never called ScsiPortInitialize".into()));
        }
        Ok(())
    }

    /// `ScsiPortInitialize` (contract §1.2): validate, and for `PCIBus` (listed under
    /// `PnpInterface`) store the data for PnP start. Other bus types have no HBAs here.
    pub(crate) fn scsi_port_initialize(&self, a1: PVOID, a2: PVOID, hw: *const HW_INITIALIZATION_DATA) -> u32 {
        const STATUS_SUCCESS: u32 = 0;
        const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;
        const STATUS_NO_SUCH_DEVICE: u32 = 0xC000_000E;
        let mut d = lock(&self.driver);
        let in_entry = d.in_entry;
        let args = d.args;
        let bad = |m: &Self, d: &mut MutexGuard<'_, DriverState>, why: String| {
            d.statuses.push(STATUS_INVALID_PARAMETER);
            m.violation(None, Rule::InitializeArguments, [a1 as u64, a2 as u64, 0], why);
            STATUS_INVALID_PARAMETER
        };
        if !in_entry {
            return bad(self, &mut d, "ScsiPortInitialize called outside DriverEntry".into());
        }
        if (a1 as usize, a2 as usize) != args {
            return bad(self, &mut d, "ScsiPortInitialize did not get DriverEntry's two arguments".into());
        }
        if hw.is_null() {
            return bad(self, &mut d, "HwInitializationData is NULL".into());
        }
        // SAFETY: non-NULL; the miniport passes a pointer to its HW_INITIALIZATION_DATA. Its size
        // field is read first and the full structure only when it claims at least our size.
        let size_ptr = unsafe { std::ptr::addr_of!((*hw).HwInitializationDataSize) };
        // SAFETY: as above.
        let size = unsafe { size_ptr.read_unaligned() };
        if (size as usize) < std::mem::size_of::<HW_INITIALIZATION_DATA>() {
            return bad(self, &mut d, format!("HwInitializationDataSize is {size}, expected {}", std::mem::size_of::<HW_INITIALIZATION_DATA>()));
        }
        // SAFETY: as above; the structure is at least our size.
        let data = unsafe { hw.read_unaligned() };
        let mut missing = Vec::new();
        if data.HwFindAdapter.is_none() {
            missing.push("HwFindAdapter");
        }
        if data.HwInitialize.is_none() {
            missing.push("HwInitialize");
        }
        if data.HwStartIo.is_none() {
            missing.push("HwStartIo");
        }
        if data.HwResetBus.is_none() {
            missing.push("HwResetBus");
        }
        if !missing.is_empty() {
            return bad(self, &mut d, format!("required entry points missing: {}", missing.join(", ")));
        }
        let status = if data.AdapterInterfaceType == sys::PCIBus {
            d.registrations.push(HwInit(data));
            STATUS_SUCCESS
        } else {
            STATUS_NO_SUCH_DEVICE
        };
        d.statuses.push(status);
        status
    }

    /// PnP start of one adapter: `HwScsiFindAdapter` with resources from the HBA's BARs, extensions,
    /// interrupt, `HwScsiInitialize`, `ScsiQuerySupportedControlTypes`, bus scan (contract §1.2, §2,
    /// §2.7).
    pub(crate) fn start_adapter(self: &Arc<Self>, ad: &Arc<Adapter>, scan: bool) -> Result<(), Error> {
        let hw = lock(&self.driver).registrations.first().copied().ok_or_else(|| Error::Load("no PCIBus registration".into()))?;
        self.find_adapter(ad, hw)?;
        self.initialize(ad)?;
        self.query_controls(ad)?;
        if scan {
            self.scan(ad)?;
        }
        Ok(())
    }

    #[allow(clippy::unused_self)]
    fn build_config(&self, ad: &Adapter, hw: &HW_INITIALIZATION_DATA) -> ConfigBox {
        let bars = ad.hba.bars();
        let n = (hw.NumberOfAccessRanges as usize).max(bars.len());
        let mut ranges = vec![ACCESS_RANGE::default(); n].into_boxed_slice();
        for (r, b) in ranges.iter_mut().zip(&bars) {
            r.RangeStart = sys::LARGE_INTEGER { QuadPart: i64::try_from(b.base).unwrap_or(0) };
            r.RangeLength = u32::try_from(b.len).unwrap_or(u32::MAX);
            r.RangeInMemory = BOOLEAN::from(b.kind == BarKind::Memory);
        }
        let mut irq = [0u8; 1];
        ad.hba.config_read(0x3C, &mut irq);
        let level = if irq[0] == 0 || irq[0] == 0xFF { 10 + ad.line } else { u32::from(irq[0]) };
        // SAFETY: PORT_CONFIGURATION_INFORMATION is plain data (integers, booleans, pointers);
        // all-zero is a valid value, and every field the port presets is set below.
        let mut info: Box<PORT_CONFIGURATION_INFORMATION> = Box::new(unsafe { std::mem::zeroed() });
        info.Length = sys::CONFIG_INFO_VERSION_2;
        info.SystemIoBusNumber = 0;
        info.AdapterInterfaceType = hw.AdapterInterfaceType;
        info.BusInterruptLevel = level;
        info.BusInterruptVector = level;
        info.InterruptMode = sys::LevelSensitive;
        info.MaximumTransferLength = sys::SP_UNINITIALIZED_VALUE;
        info.NumberOfPhysicalBreaks = sys::SP_UNINITIALIZED_VALUE;
        info.DmaChannel = sys::SP_UNINITIALIZED_VALUE;
        info.DmaPort = sys::SP_UNINITIALIZED_VALUE;
        info.NumberOfAccessRanges = hw.NumberOfAccessRanges;
        info.InitiatorBusId = [7; 8];
        info.MapBuffers = hw.MapBuffers;
        info.NeedPhysicalAddresses = hw.NeedPhysicalAddresses;
        info.TaggedQueuing = hw.TaggedQueuing;
        info.AutoRequestSense = hw.AutoRequestSense;
        info.MultipleRequestPerLu = hw.MultipleRequestPerLu;
        info.ReceiveEvent = hw.ReceiveEvent;
        info.MaximumNumberOfTargets = u8::try_from(sys::SCSI_MAXIMUM_TARGETS).unwrap_or(8);
        info.MaximumNumberOfLogicalUnits = u8::try_from(sys::SCSI_MAXIMUM_LOGICAL_UNITS).unwrap_or(8);
        info.SlotNumber = ad.line;
        info.DeviceExtensionSize = hw.DeviceExtensionSize;
        info.SpecificLuExtensionSize = hw.SpecificLuExtensionSize;
        info.SrbExtensionSize = hw.SrbExtensionSize;
        info.Dma64BitAddresses = sys::SCSI_DMA64_SYSTEM_SUPPORTED;
        let mut cb = ConfigBox { info, ranges };
        cb.info.AccessRanges = cb.ranges.as_mut_ptr();
        cb
    }

    #[allow(clippy::too_many_lines)]
    fn find_adapter(self: &Arc<Self>, ad: &Arc<Adapter>, hw: HwInit) -> Result<(), Error> {
        let data = hw.0;
        let find = data.HwFindAdapter.ok_or_else(|| Error::Load("no HwFindAdapter".into()))?;
        let devext = ExtBlock::zeroed(data.DeviceExtensionSize as usize);
        let devext_ptr = devext.ptr();
        let mut arg = String::new();
        if self.cfg.dump_mode {
            arg.push_str("dump=1");
        }
        if let Some(a) = ad.args.as_ref().or(self.cfg.argument_string.as_ref()) {
            if !arg.is_empty() {
                arg.push(' ');
            }
            arg.push_str(a);
        }
        let arg_c = if arg.is_empty() { None } else { CString::new(arg).ok() };
        let arg_ptr = arg_c.as_ref().map_or(std::ptr::null_mut(), |c| c.as_ptr().cast_mut());
        let mut config = self.build_config(ad, &data);
        let cfg_ptr: *mut PORT_CONFIGURATION_INFORMATION = &raw mut *config.info;
        {
            let mut st = ad.st();
            st.hw = Some(hw);
            st.phase = Phase::FindAdapter;
            st.mappings.clear();
            st.uncached_calls = 0;
            st.uncached_snapshot = None;
            st.find_cfg = cfg_ptr as usize;
            st.devext = Some(devext);
            st.arg_string = arg_c;
            st.config = None;
        }
        ad.devext.store(devext_ptr as usize, Ordering::Release);
        let mut again: BOOLEAN = 0xCC;
        let again_ptr: *mut BOOLEAN = &raw mut again;
        let ret = self.call(Some(ad), Routine::FindAdapter, &[], || {
            // SAFETY: the miniport's HwScsiFindAdapter with a zeroed device extension of the size
            // it asked for, a NUL-terminated argument string or NULL, and a ConfigInfo and Again
            // that outlive the call.
            unsafe { find(devext_ptr, std::ptr::null_mut(), std::ptr::null_mut(), arg_ptr, cfg_ptr, again_ptr) }
        });
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if ret > sys::SP_RETURN_BAD_CONFIG || (again != TRUE && again != FALSE) {
            self.violation(
                Some(ad.index),
                Rule::FindAdapterResult,
                [u64::from(ret), u64::from(again), 0],
                format!("HwScsiFindAdapter returned {ret} with *Again = {again:#x}"),
            );
            return Err(self.halt_error().unwrap_or_else(|| Error::Load("HwScsiFindAdapter".into())));
        }
        if ret != sys::SP_RETURN_FOUND {
            let mut st = ad.st();
            st.phase = Phase::Failed;
            let left = st.mappings.len();
            drop(st);
            if left > 0 {
                self.violation(
                    Some(ad.index),
                    Rule::FindAdapterConfig,
                    [u64::from(ret), left as u64, 0],
                    format!("HwScsiFindAdapter returned {ret} without ScsiPortFreeDeviceBase of its {left} mapping(s)"),
                );
            }
            return Err(self.halt_error().unwrap_or_else(|| Error::Load(format!("HwScsiFindAdapter returned {ret}"))));
        }
        let info = &*config.info;
        let snapshot = ad.st().uncached_snapshot;
        if let Some(before) = snapshot {
            let after = dma_fields(info);
            if before != after {
                let names = DMA_FIELD_NAMES
                    .iter()
                    .zip(before.iter().zip(after.iter()))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ");
                self.violation(
                    Some(ad.index),
                    Rule::UncachedExtension,
                    [0, 0, 0],
                    format!("ConfigInfo changed after ScsiPortGetUncachedExtension ({names}); it must be final before the call"),
                );
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
            }
        }
        let mut problems = Vec::new();
        if u32::from(info.MaximumNumberOfTargets) > sys::SCSI_MAXIMUM_TARGETS_PER_BUS {
            problems.push(format!("MaximumNumberOfTargets {} > 128", info.MaximumNumberOfTargets));
        }
        if u32::from(info.NumberOfBuses) > sys::SCSI_MAXIMUM_BUSES {
            problems.push(format!("NumberOfBuses {} > 8", info.NumberOfBuses));
        }
        if info.Dma64BitAddresses & (sys::SCSI_DMA64_MINIPORT_SUPPORTED | sys::SCSI_DMA64_MINIPORT_FULL64BIT_SUPPORTED) != 0
            && info.Dma32BitAddresses != FALSE
        {
            problems.push("Dma64BitAddresses set by the miniport with Dma32BitAddresses TRUE".to_string());
        }
        if !std::ptr::eq(info.AccessRanges, config.ranges.as_ptr()) {
            problems.push("AccessRanges pointer replaced".to_string());
        }
        if !problems.is_empty() {
            self.violation(Some(ad.index), Rule::FindAdapterConfig, [0, 0, 0], problems.join("; "));
            return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
        }
        let caps = Caps {
            tagged: info.TaggedQueuing != FALSE,
            multi: info.MultipleRequestPerLu != FALSE,
            map_buffers: info.MapBuffers != FALSE,
            need_phys: info.NeedPhysicalAddresses != FALSE,
            caches_data: info.CachesData != FALSE,
            buses: info.NumberOfBuses.max(1),
            targets: info.MaximumNumberOfTargets.max(1),
            luns: info.MaximumNumberOfLogicalUnits.max(1),
            initiator: info.InitiatorBusId,
            srb_ext: info.SrbExtensionSize as usize,
            lu_ext: info.SpecificLuExtensionSize as usize,
        };
        let mut st = ad.st();
        st.caps = caps;
        st.config = Some(config);
        st.phase = Phase::Initializing;
        // Interrupt connection (PnP: before HwScsiInitialize; none in dump mode or for polling
        // miniports without HwInterrupt).
        st.connected = !self.cfg.dump_mode && data.HwInterrupt.is_some();
        Ok(())
    }

    fn initialize(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let Some(hw) = ad.st().hw else { return Err(Error::Usage("adapter not found".into())) };
        let init = hw.0.HwInitialize.ok_or_else(|| Error::Load("no HwInitialize".into()))?;
        let devext = ad.devext_ptr();
        let ok = {
            let _g = ad.intlock();
            self.call(Some(ad), Routine::Initialize, &[], || {
                // SAFETY: the miniport's HwScsiInitialize with its device extension, under the
                // interrupt lock.
                unsafe { init(devext) }
            })
        };
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if ok == FALSE {
            ad.st().phase = Phase::Failed;
            return Err(Error::Load("HwScsiInitialize returned FALSE".into()));
        }
        let mut st = ad.st();
        st.phase = Phase::Running;
        st.ready = true;
        drop(st);
        self.kick();
        Ok(())
    }

    fn query_controls(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let Some(hw) = ad.st().hw else { return Ok(()) };
        let Some(control) = hw.0.HwAdapterControl else {
            ad.st().supported = [false; 5];
            // Required for a PnP miniport (`REF:HwScsiAdapterControl`); PCIBus is PnP here.
            self.violation(Some(ad.index), Rule::ControlStopUnsupported, [0, 0, 0], "no HwAdapterControl (required for a PnP miniport)".into());
            return self.halt_error().map_or(Ok(()), Err);
        };
        let max = sys::ScsiAdapterControlMax as usize;
        // ULONG MaxControlType; BOOLEAN SupportedTypeList[max]; then canary bytes.
        let mut buf = vec![0u32; 8];
        let bytes: *mut u8 = buf.as_mut_ptr().cast();
        // SAFETY: `buf` holds 32 bytes: the ULONG, `max` booleans and canaries after them.
        unsafe {
            bytes.cast::<u32>().write_unaligned(sys::ScsiAdapterControlMax.cast_unsigned());
        }
        for i in 0..(32 - 4) {
            let v = if i < max { 0 } else { CANARY };
            let p = bytes.wrapping_add(4 + i);
            // SAFETY: 4 + i < 32, inside `buf`.
            unsafe { p.write(v) };
        }
        let devext = ad.devext_ptr();
        let r = self.call(Some(ad), Routine::AdapterControl, &[("control", J::Static("ScsiQuerySupportedControlTypes"))], || {
            // SAFETY: the miniport's HwScsiAdapterControl with a port-allocated list.
            unsafe { control(devext, sys::ScsiQuerySupportedControlTypes, bytes.cast()) }
        });
        let mut supported = [false; 5];
        let mut overrun = None;
        for i in 0..(32 - 4) {
            let p = bytes.wrapping_add(4 + i);
            // SAFETY: as above.
            let v = unsafe { p.read() };
            if i < max {
                if let Some(s) = supported.get_mut(i) {
                    *s = v != 0;
                }
            } else if v != CANARY && overrun.is_none() {
                overrun = Some(i);
            }
        }
        drop(buf);
        if let Some(i) = overrun {
            self.violation(
                Some(ad.index),
                Rule::ControlListOverrun,
                [i as u64, max as u64, 0],
                format!("ScsiQuerySupportedControlTypes wrote SupportedTypeList[{i}], past MaxControlType {max}"),
            );
        }
        if r != sys::ScsiAdapterControlSuccess {
            self.violation(Some(ad.index), Rule::ControlNotSuccess, [u64::from(r.cast_unsigned()), 0, 0], format!("ScsiQuerySupportedControlTypes returned {r}"));
        }
        if !supported[1] {
            self.violation(Some(ad.index), Rule::ControlStopUnsupported, [0, 0, 0], "ScsiStopAdapter is not supported".into());
        }
        ad.st().supported = supported;
        self.halt_error().map_or(Ok(()), Err)
    }

    /// The INQUIRY scan of `NT4:A.4.4` (contract §2.7): every bus, target (but the initiator) and
    /// LUN; a target whose LUN 0 is absent is not probed further.
    fn scan(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let caps = ad.st().caps;
        for path in 0..caps.buses {
            let initiator = caps.initiator.get(path as usize).copied().unwrap_or(7);
            for target in 0..caps.targets {
                if target == initiator {
                    continue;
                }
                for lun in 0..caps.luns {
                    let req = Request::inquiry(target)
                        .with_path(path)
                        .with_lun(lun)
                        .untagged()
                        .with_flags(sys::SRB_FLAGS_NO_QUEUE_FREEZE | sys::SRB_FLAGS_DISABLE_SYNCH_TRANSFER);
                    let t = self.submit(ad.index, req, Scan::Wait)?;
                    let c = self.wait_det_or_conc(t)?;
                    if !inquiry_found(&c) && lun == 0 {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Re-enumerates the buses a `BusChangeDetected` named: INQUIRY of LUN 0 of every target and
    /// of the LUNs already known (their completions update the LU table; nobody waits for them).
    pub(crate) fn run_rescan(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let (paths, caps, known) = {
            let mut st = ad.st();
            if st.rescan.is_empty() || st.phase != Phase::Running {
                return false;
            }
            let paths = std::mem::take(&mut st.rescan);
            (paths, st.caps, st.lu_list())
        };
        for path in paths.into_iter().filter(|p| *p < caps.buses) {
            let initiator = caps.initiator.get(path as usize).copied().unwrap_or(7);
            for target in (0..caps.targets).filter(|t| *t != initiator) {
                let mut luns = vec![0u8];
                luns.extend(known.iter().filter(|(p, t, l)| *p == path && *t == target && *l != 0).map(|k| k.2));
                for lun in luns {
                    let req = Request::inquiry(target)
                        .with_path(path)
                        .with_lun(lun)
                        .untagged()
                        .with_flags(sys::SRB_FLAGS_NO_QUEUE_FREEZE | sys::SRB_FLAGS_DISABLE_SYNCH_TRANSFER);
                    let _ = self.submit(ad.index, req, Scan::Background);
                }
            }
        }
        true
    }

    pub(crate) fn wait_det_or_conc(self: &Arc<Self>, t: Ticket) -> Result<Completion, Error> {
        crate::machine::wait_ticket(self, t, None)
    }

    // -----------------------------------------------------------------------------------------
    // Upper edge
    // -----------------------------------------------------------------------------------------

    pub(crate) fn submit(self: &Arc<Self>, adapter: usize, req: Request, scan: Scan) -> Result<Ticket, Error> {
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        let ad = self.adapters.get(adapter).ok_or_else(|| Error::Usage(format!("no adapter {adapter}")))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        self.trace(
            Some(adapter),
            "srb",
            &[
                ("id", J::U(id)),
                ("function", J::Str(hex8(req.function))),
                ("opcode", J::Str(hex8(req.opcode()))),
                ("path", J::from(req.path)),
                ("target", J::from(req.target)),
                ("lun", J::from(req.lun)),
                ("tagged", J::B(!req.untagged)),
                ("length", J::from(req.data.len())),
            ],
        );
        let preq = PortReq { id, req, submitted_ns: now, not_before_ns: 0, retries: 0, scan };
        let mut st = ad.st();
        if !matches!(st.phase, Phase::Running | Phase::Initializing) {
            return Err(Error::Usage(format!("adapter {adapter} is not running ({:?})", st.phase)));
        }
        match preq.req.function {
            sys::SRB_FUNCTION_FLUSH | sys::SRB_FUNCTION_SHUTDOWN if !st.caps.caches_data => {
                // Sent only when CachesData (contract §5.3); otherwise the port answers.
                drop(st);
                self.finish_at_port(ad, preq, sys::SRB_STATUS_SUCCESS);
                return Ok(Ticket(id));
            }
            sys::SRB_FUNCTION_ABORT_COMMAND => {
                let target = preq.req.abort_target.map_or(0, |t| t.0);
                // Still queued at the port: the port drops it itself.
                let mut found = None;
                for l in st.lus.values_mut() {
                    if let Some(pos) = l.queue.iter().position(|q| q.id == target) {
                        found = l.queue.remove(pos);
                        break;
                    }
                }
                let active = st.active.values().any(|a| a.preq.id == target);
                if let Some(q) = found {
                    drop(st);
                    self.finish_at_port(ad, q, sys::SRB_STATUS_ABORTED);
                    self.finish_at_port(ad, preq, sys::SRB_STATUS_SUCCESS);
                    return Ok(Ticket(id));
                }
                if !active {
                    drop(st);
                    self.finish_at_port(ad, preq, sys::SRB_STATUS_ABORT_FAILED);
                    return Ok(Ticket(id));
                }
                st.priority.push_back(preq);
            }
            sys::SRB_FUNCTION_RESET_BUS => st.priority.push_back(preq),
            _ => {
                let lu = st.lus.entry(preq.lu()).or_default();
                // A new request to a frozen LU: the class driver has released the queue.
                lu.frozen = false;
                lu.queue.push_back(preq);
            }
        }
        drop(st);
        self.kick_dpc();
        if !self.deterministic {
            self.try_start(ad);
        }
        Ok(Ticket(id))
    }

    fn finish_at_port(&self, ad: &Adapter, preq: PortReq, status: u8) {
        let c = Completion {
            ticket: Ticket(preq.id),
            srb_status: status,
            scsi_status: 0,
            data_transfer_length: 0,
            data: preq.req.data,
            sense: Vec::new(),
            latency_ns: self.now().saturating_sub(preq.submitted_ns),
            busy_retries: preq.retries,
            timed_out: false,
            reached_miniport: false,
        };
        self.deliver(ad, c, preq.scan);
    }

    fn deliver(&self, ad: &Adapter, c: Completion, scan: Scan) {
        // Never called with `st` held.
        if scan == Scan::Background {
            return;
        }
        if scan == Scan::No {
            let mut st = ad.st();
            st.stats.ios += 1;
            if c.status() != sys::SRB_STATUS_SUCCESS {
                st.stats.errors += 1;
            }
            st.stats.latency.record(c.latency_ns);
        }
        lock(&self.completions).insert(c.ticket.0, c);
        self.done_cv.notify_all();
    }

    /// Releases every frozen LU queue (what the class driver does after handling the error).
    pub(crate) fn release_frozen(&self) -> bool {
        let mut any = false;
        for ad in &self.adapters {
            for l in ad.st().lus.values_mut() {
                if l.frozen {
                    l.frozen = false;
                    any = true;
                }
            }
        }
        if any {
            self.kick_dpc();
        }
        any
    }

    /// Whether any request is still queued or outstanding anywhere.
    pub(crate) fn busy(&self) -> bool {
        self.adapters.iter().any(|a| {
            let st = a.st();
            // A pending deferral may still complete requests or need the interrupt lock.
            !st.active.is_empty() || st.queued() > 0 || st.deferred()
        })
    }

    // -----------------------------------------------------------------------------------------
    // StartIo
    // -----------------------------------------------------------------------------------------

    #[allow(clippy::unused_self)]
    fn startable(&self, st: &AdapterSt, now: u64, ignore_ready: bool) -> bool {
        if !(st.phase == Phase::Running && (st.ready || ignore_ready) && !st.deferred() && st.hold.is_none()) {
            return false;
        }
        if st.priority.front().is_some_and(|p| p.not_before_ns <= now) {
            return true;
        }
        st.lus.values().any(|l| Self::lu_startable(st, l, now))
    }

    fn lu_startable(st: &AdapterSt, l: &Lu, now: u64) -> bool {
        let Some(front) = l.queue.front() else { return false };
        if front.not_before_ns > now || (l.frozen && front.req.extra_flags & sys::SRB_FLAGS_BYPASS_FROZEN_QUEUE == 0) {
            return false;
        }
        let tagged = Self::is_tagged(st, front);
        if l.active.is_empty() {
            return true;
        }
        tagged && l.ready_for_more && !l.active.contains_key(&sys::SP_UNTAGGED) && l.active.len() < 250
    }

    fn is_tagged(st: &AdapterSt, p: &PortReq) -> bool {
        (st.caps.tagged || st.caps.multi) && !p.req.untagged
    }

    /// Starts one request if the adapter is ready for it. Returns whether `StartIo` ran.
    pub(crate) fn try_start(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        if self.is_halted() {
            return false;
        }
        let _g = ad.intlock();
        self.start_locked(ad)
    }

    fn start_locked(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let now = self.now();
        let (srb, start, id, fields) = {
            let mut st = ad.st();
            if !self.startable(&st, now, false) {
                return false;
            }
            let Some(start) = st.hw.and_then(|h| h.0.HwStartIo) else { return false };
            let preq = if st.priority.front().is_some_and(|p| p.not_before_ns <= now) {
                st.priority.pop_front()
            } else {
                // Round-robin over the LUs, from the one after the last served.
                let keys: Vec<LuAddr> = st.lus.keys().copied().collect();
                let cur = st.lu_cursor;
                let first = cur.and_then(|c| keys.iter().position(|k| *k > c)).unwrap_or(0);
                let mut chosen = None;
                for i in 0..keys.len() {
                    let Some(k) = keys.get((first + i) % keys.len()) else { continue };
                    if st.lus.get(k).is_some_and(|l| Self::lu_startable(&st, l, now)) {
                        chosen = Some(*k);
                        break;
                    }
                }
                let Some(k) = chosen else { return false };
                st.lu_cursor = Some(k);
                st.lus.get_mut(&k).and_then(|l| l.queue.pop_front())
            };
            let Some(preq) = preq else { return false };
            match self.build_srb(ad, &mut st, preq) {
                Ok((srb, id, fields)) => (srb, start, id, fields),
                Err(msg) => {
                    drop(st);
                    self.trace(Some(ad.index), "port", &[("fn", J::Static("emulator")), ("error", J::Str(msg))]);
                    return false;
                }
            }
        };
        let devext = ad.devext_ptr();
        let r = self.call(Some(ad), Routine::StartIo, &fields, || {
            // SAFETY: the miniport's HwScsiStartIo with its device extension and an SRB the port
            // built, under the interrupt lock.
            unsafe { start(devext, srb) }
        });
        ad.st().stats.start_io_calls += 1;
        if r == FALSE {
            self.violation(Some(ad.index), Rule::StartIoReturnedFalse, [srb as u64, 0, 0], format!("HwScsiStartIo returned FALSE for srb {id}"));
        }
        // Whatever StartIo signalled kicked the scheduler already.
        true
    }

    fn alloc(ad: &Adapter, len: usize) -> Result<DmaRegion, String> {
        ad.dma.alloc(len.max(1), Layout::Scattered).map_err(|e| e.to_string())
    }

    #[allow(clippy::too_many_lines)]
    fn build_srb(
        &self,
        ad: &Adapter,
        st: &mut AdapterSt,
        preq: PortReq,
    ) -> Result<Built, String> {
        let caps = st.caps;
        let now = self.now();
        let sense_len = usize::from(self.cfg.sense_len.max(1));
        let fits = |p: &Pooled| {
            p.1.as_ref().map_or(0, DmaRegion::len) == caps.srb_ext && p.2.as_ref().is_none_or(|s| s.len() == sense_len)
        };
        let pooled = st.pool.iter().rposition(fits).map(|i| st.pool.swap_remove(i));
        let (srb_region, ext, pooled_sense) = if let Some(p) = pooled {
            p
        } else {
            let ext = if caps.srb_ext > 0 { Some(Self::alloc(ad, caps.srb_ext)?) } else { None };
            (Self::alloc(ad, PAGE_SIZE)?, ext, None)
        };
        if let Some(e) = &ext {
            // SAFETY: the port's region, CPU-accessible, not visible to the miniport yet.
            unsafe { e.as_mut_slice().fill(SRB_EXTENSION_GARBAGE) };
        }
        let execute = preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI;
        let sense = if execute {
            match pooled_sense {
                Some(s) => {
                    // SAFETY: as above.
                    unsafe { s.as_mut_slice().fill(0) };
                    Some(s)
                }
                None => Some(Self::alloc(ad, sense_len)?),
            }
        } else {
            None
        };
        let data = if preq.req.data.is_empty() {
            None
        } else {
            // The buffer starts `buffer_offset` bytes into its first page.
            let off = preq.req.buffer_offset % PAGE_SIZE;
            let want = off + preq.req.data.len();
            let d = match st.data_pool.iter().rposition(|d| d.len() == want) {
                Some(i) => {
                    let d = st.data_pool.swap_remove(i);
                    // SAFETY: the port's region, CPU-accessible, not visible to the miniport yet.
                    unsafe { d.as_mut_slice().fill(0) };
                    d
                }
                None => Self::alloc(ad, want)?,
            };
            if preq.req.direction == Direction::Out {
                // SAFETY: as above.
                let dst = unsafe { d.as_mut_slice() };
                if let Some(dst) = dst.get_mut(off..) {
                    dst.copy_from_slice(&preq.req.data);
                }
            }
            Some(d)
        };
        let data_off = preq.req.buffer_offset % PAGE_SIZE;
        let mut block = SrbBlock { guards: Vec::new(), data_guard: None, srb: srb_region, ext, sense, data };
        let map_exempt = matches!(preq.req.function, sys::SRB_FUNCTION_IO_CONTROL | sys::SRB_FUNCTION_WMI);
        let data_va = match &block.data {
            None => std::ptr::null_mut(),
            Some(d) if caps.map_buffers || map_exempt || !self.verifier.memory_monitor => d.va().wrapping_add(data_off),
            Some(d) => match guard::reserve(d.len()) {
                Some(base) => {
                    let g = guard::register(self.owner, base, d.len(), GuardKind::DataBuffer, preq.id);
                    block.data_guard = Some(Reservation { guard: g, base, len: d.len() });
                    (base + data_off) as *mut u8
                }
                None => d.va().wrapping_add(data_off),
            },
        };
        let lu_addr = preq.lu();
        let tagged = Self::is_tagged(st, &preq) && execute;
        let mut tag = sys::SP_UNTAGGED;
        if tagged {
            let lu = st.lus.entry(lu_addr).or_default();
            for _ in 0..255 {
                lu.next_tag = lu.next_tag.wrapping_add(1);
                if lu.next_tag != 0 && lu.next_tag != sys::SP_UNTAGGED && !lu.active.contains_key(&lu.next_tag) {
                    break;
                }
            }
            tag = lu.next_tag;
        }
        let mut flags = preq.req.extra_flags
            | match preq.req.direction {
                Direction::None => sys::SRB_FLAGS_NO_DATA_TRANSFER,
                Direction::In => sys::SRB_FLAGS_DATA_IN,
                Direction::Out => sys::SRB_FLAGS_DATA_OUT,
            };
        let mut queue_action = 0;
        if tagged && caps.tagged {
            flags |= sys::SRB_FLAGS_QUEUE_ACTION_ENABLE;
            queue_action = preq.req.queue_action;
        }
        let next_srb = preq
            .req
            .abort_target
            .and_then(|t| st.active.iter().find(|(_, a)| a.preq.id == t.0).map(|(p, _)| *p))
            .unwrap_or(0);
        let mut cdb = [0u8; 16];
        for (d, s) in cdb.iter_mut().zip(&preq.req.cdb) {
            *d = *s;
        }
        let (path, target, lun) = if preq.req.function == sys::SRB_FUNCTION_ABORT_COMMAND {
            st.active.get(&next_srb).map_or(lu_addr, |a| a.preq.lu())
        } else {
            lu_addr
        };
        let srb_val = SCSI_REQUEST_BLOCK {
            Length: sys::SCSI_REQUEST_BLOCK_SIZE,
            Function: preq.req.function,
            SrbStatus: sys::SRB_STATUS_PENDING,
            ScsiStatus: 0,
            PathId: path,
            TargetId: target,
            Lun: lun,
            QueueTag: tag,
            QueueAction: queue_action,
            CdbLength: u8::try_from(preq.req.cdb.len()).unwrap_or(16),
            SenseInfoBufferLength: if block.sense.is_some() { self.cfg.sense_len } else { 0 },
            SrbFlags: flags,
            DataTransferLength: u32::try_from(preq.req.data.len()).unwrap_or(u32::MAX),
            TimeOutValue: preq.req.timeout_s,
            DataBuffer: data_va.cast(),
            SenseInfoBuffer: block.sense.as_ref().map_or(std::ptr::null_mut(), |s| s.va().cast()),
            NextSrb: next_srb as *mut SCSI_REQUEST_BLOCK,
            OriginalRequest: std::ptr::null_mut(),
            SrbExtension: block.ext.as_ref().map_or(std::ptr::null_mut(), |e| e.va().cast()),
            u: sys::SCSI_REQUEST_BLOCK_0 { InternalStatus: 0 },
            Reserved: 0,
            Cdb: cdb,
        };
        let srb = block.srb_ptr();
        // SAFETY: the SRB page is ours, CPU-accessible, page-aligned and large enough.
        unsafe { srb.write(srb_val) };
        let id = preq.id;
        let deadline = now.saturating_add(u64::from(preq.req.timeout_s.max(1)) * 1_000_000_000);
        {
            let lu = st.lus.entry((path, target, lun)).or_default();
            lu.active.insert(tag, srb as usize);
            lu.ready_for_more = false;
            if lu.ext.is_none() && caps.lu_ext > 0 {
                lu.ext = Some(ExtBlock::zeroed(caps.lu_ext));
            }
        }
        st.ready = false;
        let fields = vec![
            ("srb", J::U(id)),
            ("function", J::Str(hex8(preq.req.function))),
            ("opcode", J::Str(hex8(preq.req.opcode()))),
            ("target", J::from(target)),
            ("lun", J::from(lun)),
            ("tag", J::from(tag)),
        ];
        st.active.insert(srb as usize, ActiveSrb { preq, block, snapshot: srb_val, deadline_ns: deadline, tag, timed_out: false });
        Ok((srb, id, fields))
    }

    // -----------------------------------------------------------------------------------------
    // Completion
    // -----------------------------------------------------------------------------------------

    fn valid_status(status: u8) -> bool {
        if status & sys::SRB_STATUS_QUEUE_FROZEN != 0 {
            return false;
        }
        matches!(sys::SRB_STATUS(status), 0x01..=0x0B | 0x0D..=0x16 | 0x20..=0x27)
    }

    /// `RequestComplete` (and each SRB `ScsiPortCompleteRequest` covers): verify, hand the result
    /// to the upper edge, poison and guard the SRB (contract §4.1, §5.2, §5.4, §8).
    #[allow(clippy::too_many_lines)]
    pub(crate) fn complete_srb(self: &Arc<Self>, ad: &Arc<Adapter>, srb: usize, forced_status: Option<u8>, routine: Option<Routine>) {
        let mut st = ad.st();
        let Some(mut a) = st.active.remove(&srb) else {
            let twice = st.quarantine.iter().any(|q| q.srb == srb);
            drop(st);
            let devext = ad.devext.load(Ordering::Relaxed) as u64;
            if twice {
                self.violation(Some(ad.index), Rule::CompletedTwice, [devext, srb as u64, 0], format!("SRB {srb:#x} completed again after its completion"));
            } else {
                self.violation(Some(ad.index), Rule::CompletedNotOutstanding, [devext, srb as u64, 0], format!("RequestComplete for {srb:#x}, which is not an outstanding SRB"));
            }
            return;
        };
        let p = srb as *mut SCSI_REQUEST_BLOCK;
        if let Some(s) = forced_status {
            // SAFETY: an active SRB: ours, mapped and accessible.
            unsafe { (*p).SrbStatus = s };
        }
        // SAFETY: as above.
        let now_srb = unsafe { p.read() };
        let lu_addr = (a.snapshot.PathId, a.snapshot.TargetId, a.snapshot.Lun);
        if let Some(l) = st.lus.get_mut(&lu_addr) {
            l.active.remove(&a.tag);
        }
        st.stats.completions += 1;
        if matches!(routine, Some(Routine::Interrupt | Routine::EnableCallback)) {
            st.stats.completions_in_interrupt += 1;
        }
        let status = now_srb.SrbStatus;
        let id = a.preq.id;
        let mut problems: Vec<(Rule, String)> = Vec::new();
        let autosense = status & sys::SRB_STATUS_AUTOSENSE_VALID != 0;
        if !Self::valid_status(status)
            || (autosense
                && (a.snapshot.SenseInfoBuffer.is_null()
                    || a.snapshot.SenseInfoBufferLength == 0
                    || a.snapshot.SrbFlags & sys::SRB_FLAGS_DISABLE_AUTOSENSE != 0))
        {
            problems.push((Rule::InvalidSrbStatus, format!("srb {id} completed with SrbStatus {status:#04x}")));
        }
        let ro = Self::read_only_diff(&a.snapshot, &now_srb, st.caps.luns > 8);
        if !ro.is_empty() {
            problems.push((Rule::ReadOnlySrbField, format!("srb {id}: the miniport changed {}", ro.join(", "))));
        }
        if now_srb.DataTransferLength > a.snapshot.DataTransferLength {
            problems.push((
                Rule::TransferLengthGrown,
                format!("srb {id}: DataTransferLength grew from {} to {}", a.snapshot.DataTransferLength, now_srb.DataTransferLength),
            ));
        } else if now_srb.DataTransferLength < a.snapshot.DataTransferLength && sys::SRB_STATUS(status) == sys::SRB_STATUS_SUCCESS {
            problems.push((
                Rule::UnderrunStatus,
                format!("srb {id}: DataTransferLength reduced to {} with SRB_STATUS_SUCCESS", now_srb.DataTransferLength),
            ));
        }
        if now_srb.SenseInfoBufferLength > a.snapshot.SenseInfoBufferLength {
            problems.push((Rule::ReadOnlySrbField, format!("srb {id}: SenseInfoBufferLength grew")));
        }
        // Results for the submitter.
        let mut data = std::mem::take(&mut a.preq.req.data);
        if a.preq.req.direction == Direction::In
            && let Some(d) = &a.block.data
        {
            {
                let off = a.preq.req.buffer_offset % PAGE_SIZE;
                let n = (now_srb.DataTransferLength as usize).min(d.len().saturating_sub(off)).min(data.len());
                // SAFETY: the data region is the port's; the miniport has completed the request.
                let src = unsafe { d.as_slice() };
                if let (Some(dst), Some(s)) = (data.get_mut(..n), src.get(off..off + n)) {
                    dst.copy_from_slice(s);
                }
            }
        }
        let mut sense = Vec::new();
        if autosense
            && let Some(s) = &a.block.sense
        {
            {
                let n = usize::from(now_srb.SenseInfoBufferLength).min(s.len());
                // SAFETY: as above.
                sense = unsafe { s.as_slice() }.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
            }
        }
        // Poison and guard.
        // SAFETY: the SRB page and extension are the port's again; nobody else holds a slice.
        unsafe {
            a.block.srb.as_mut_slice().fill(POISON);
        }
        if let Some(e) = &a.block.ext {
            // SAFETY: as above.
            unsafe { e.as_mut_slice().fill(POISON) };
        }
        // The `DataBuffer` stand-in stays reserved (and guarded) while the block is quarantined.
        if self.verifier.enabled && self.verifier.memory_monitor {
            if let Some(g) = guard::register(self.owner, a.block.srb.va() as usize, PAGE_SIZE, GuardKind::Srb, id) {
                a.block.guards.push(g);
                a.block.srb.set_cpu_access(false);
            }
            if let Some(e) = &a.block.ext
                && let Some(g) = guard::register(self.owner, e.va() as usize, e.len(), GuardKind::SrbExtension, id)
            {
                a.block.guards.push(g);
                e.set_cpu_access(false);
            }
        }
        if let Some(d) = a.block.data.take()
            && st.data_pool.len() < 64
        {
            st.data_pool.push(d);
        }
                if let Some(h) = st.hold.as_mut() {
            h.ids.remove(&id);
        }
        let now = self.now();
        let base = sys::SRB_STATUS(status);
        let busy = base == sys::SRB_STATUS_BUSY && !a.timed_out;
        let mut deliver = None;
        if busy && a.preq.retries < self.cfg.max_busy_retries && a.preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI {
            // SRB_STATUS_BUSY: the port requeues the request (contract §3.3).
            let mut preq = a.preq;
            preq.retries += 1;
            preq.not_before_ns = now.saturating_add(self.cfg.busy_retry_delay_ns);
            preq.req.data = data;
            st.stats.busy_retries += 1;
            let lu = preq.lu();
            st.lus.entry(lu).or_default().queue.push_front(preq);
        } else {
            let error = !matches!(base, sys::SRB_STATUS_SUCCESS);
            let freeze = error
                && a.preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI
                && a.preq.req.extra_flags & sys::SRB_FLAGS_NO_QUEUE_FREEZE == 0
                && !matches!(base, sys::SRB_STATUS_DATA_OVERRUN);
            let mut out_status = status;
            if freeze {
                // Freeze the LU queue and tell the submitter (contract §5.6).
                if let Some(l) = st.lus.get_mut(&lu_addr) {
                    l.frozen = true;
                }
                out_status |= sys::SRB_STATUS_QUEUE_FROZEN;
            }
            // The LU table follows INQUIRY answers (scan or not) and any other success.
            let inquiry = a.preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI
                && a.preq.req.opcode() == 0x12
                && a.preq.req.cdb.get(1).is_some_and(|b| b & 1 == 0);
            let ok = base == sys::SRB_STATUS_SUCCESS || base == sys::SRB_STATUS_DATA_OVERRUN;
            let exists = if inquiry { ok && inquiry_data_found(&data) } else { ok };
            if exists {
                st.lus.entry(lu_addr).or_default().exists = true;
            } else if inquiry || a.preq.scan != Scan::No {
                let gone = st.lus.get(&lu_addr).is_some_and(|l| l.active.is_empty() && l.queue.is_empty());
                if gone {
                    st.lus.remove(&lu_addr);
                }
            }
            deliver = Some((
                Completion {
                    ticket: Ticket(id),
                    srb_status: out_status,
                    scsi_status: now_srb.ScsiStatus,
                    data_transfer_length: now_srb.DataTransferLength,
                    data,
                    sense,
                    latency_ns: now.saturating_sub(a.preq.submitted_ns),
                    busy_retries: a.preq.retries,
                    timed_out: a.timed_out,
                    reached_miniport: true,
                },
                a.preq.scan,
            ));
        }
        st.quarantine.push_back(Quarantined { srb, block: a.block });
        while st.quarantine.len() > QUARANTINE {
            if let Some(q) = st.quarantine.pop_front() {
                q.block.recycle(&mut st.pool);
            }
        }
        drop(st);
        self.trace(
            Some(ad.index),
            "port",
            &[
                ("fn", J::Static("ScsiPortNotification")),
                ("type", J::Static("RequestComplete")),
                ("srb", J::U(id)),
                ("status", J::Str(hex8(status))),
                ("scsi_status", J::Str(hex8(now_srb.ScsiStatus))),
                ("length", J::from(now_srb.DataTransferLength)),
            ],
        );
        let devext = ad.devext.load(Ordering::Relaxed) as u64;
        for (rule, msg) in problems {
            let params = if rule == Rule::InvalidSrbStatus { [srb as u64, devext, u64::from(status)] } else { [srb as u64, devext, 0] };
            self.violation(Some(ad.index), rule, params, msg);
        }
        if let Some((c, scan)) = deliver {
            self.deliver(ad, c, scan);
        }
        self.kick_dpc();
    }

    fn read_only_diff(a: &SCSI_REQUEST_BLOCK, b: &SCSI_REQUEST_BLOCK, lun_writable: bool) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! cmp {
            ($($f:ident),*) => {$( if a.$f != b.$f { v.push(stringify!($f)); } )*};
        }
        cmp!(Length, Function, PathId, TargetId, QueueTag, QueueAction, CdbLength, SrbFlags, TimeOutValue, Cdb);
        if !lun_writable && a.Lun != b.Lun {
            v.push("Lun");
        }
        if a.DataBuffer != b.DataBuffer {
            v.push("DataBuffer");
        }
        if a.SenseInfoBuffer != b.SenseInfoBuffer {
            v.push("SenseInfoBuffer");
        }
        if a.NextSrb != b.NextSrb {
            v.push("NextSrb");
        }
        if a.OriginalRequest != b.OriginalRequest {
            v.push("OriginalRequest");
        }
        if a.SrbExtension != b.SrbExtension {
            v.push("SrbExtension");
        }
        // SAFETY: the union's members are all ULONGs over the same bytes.
        let ia = unsafe { a.u.InternalStatus };
        // SAFETY: as above.
        let ib = unsafe { b.u.InternalStatus };
        if ia != ib {
            v.push("InternalStatus");
        }
        v
    }

    // -----------------------------------------------------------------------------------------
    // Notifications (from the C shim)
    // -----------------------------------------------------------------------------------------

    #[allow(clippy::too_many_lines)]
    pub(crate) fn notification(self: &Arc<Self>, ad: &Arc<Adapter>, routine: Routine, ty: i32, args: [usize; 4]) {
        let idx = Some(ad.index);
        let name = match ty {
            sys::RequestComplete => "RequestComplete",
            sys::NextRequest => "NextRequest",
            sys::NextLuRequest => "NextLuRequest",
            sys::ResetDetected => "ResetDetected",
            sys::CallDisableInterrupts => "CallDisableInterrupts",
            sys::CallEnableInterrupts => "CallEnableInterrupts",
            sys::RequestTimerCall => "RequestTimerCall",
            sys::BusChangeDetected => "BusChangeDetected",
            sys::WMIEvent => "WMIEvent",
            sys::WMIReregister => "WMIReregister",
            _ => "unsupported",
        };
        if routine == Routine::FindAdapter {
            self.violation(idx, Rule::NotificationInFindAdapter, [u64::from(ty.cast_unsigned()), 0, 0], format!("{name} from HwScsiFindAdapter"));
        }
        match ty {
            sys::RequestComplete => self.complete_srb(ad, args[0], None, Some(routine)),
            sys::NextRequest => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                st.ready = true;
                drop(st);
                self.kick_dpc();
            }
            sys::NextLuRequest => {
                #[allow(clippy::cast_possible_truncation)]
                let lu = (args[0] as u8, args[1] as u8, args[2] as u8);
                self.trace(
                    idx,
                    "port",
                    &[
                        ("fn", J::Static("ScsiPortNotification")),
                        ("type", J::Static(name)),
                        ("path", J::from(lu.0)),
                        ("target", J::from(lu.1)),
                        ("lun", J::from(lu.2)),
                    ],
                );
                let mut st = ad.st();
                let allowed = st.caps.tagged || st.caps.multi;
                let untagged_active = st.lus.get(&lu).is_some_and(|l| l.active.contains_key(&sys::SP_UNTAGGED));
                st.ready = true;
                if let Some(l) = st.lus.get_mut(&lu) {
                    l.ready_for_more = true;
                }
                drop(st);
                let devext = ad.devext.load(Ordering::Relaxed) as u64;
                if !allowed {
                    self.violation(idx, Rule::NextLuNotAllowed, [devext, 0, 0], "NextLuRequest without TaggedQueuing or MultipleRequestPerLu".into());
                } else if untagged_active {
                    self.violation(
                        idx,
                        Rule::NextLuWithUntaggedActive,
                        [devext, u64::from(lu.0) << 16 | u64::from(lu.1) << 8 | u64::from(lu.2), 0],
                        format!("NextLuRequest({}, {}, {}) while an untagged request is active there", lu.0, lu.1, lu.2),
                    );
                }
                self.kick_dpc();
            }
            sys::ResetDetected => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                st.stats.resets_detected += 1;
                self.begin_hold(&mut st, None);
            }
            sys::CallEnableInterrupts => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                let problem = if args[0] == 0 {
                    Some("CallEnableInterrupts with a NULL callback")
                } else if routine != Routine::Interrupt {
                    Some("CallEnableInterrupts outside HwScsiInterrupt")
                } else if self.cfg.dump_mode {
                    Some("CallEnableInterrupts in dump mode (no deferral is possible)")
                } else if st.enable_request.is_some() || st.deferred() {
                    Some("CallEnableInterrupts while one is already pending")
                } else {
                    st.enable_request = Some(args[0]);
                    None
                };
                drop(st);
                if let Some(p) = problem {
                    self.violation(idx, Rule::CallEnableOutsideIsr, [args[0] as u64, 0, 0], p.into());
                }
            }
            sys::CallDisableInterrupts => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                st.disable_requests += 1;
                let problem = if args[0] == 0 {
                    Some("CallDisableInterrupts with a NULL callback")
                } else if routine != Routine::EnableCallback {
                    Some("CallDisableInterrupts outside HwScsiEnableInterruptsCallback")
                } else if st.disable_requests > 1 {
                    Some("CallDisableInterrupts twice in one enable callback")
                } else {
                    st.disable_request = Some(args[0]);
                    None
                };
                drop(st);
                if let Some(p) = problem {
                    self.violation(idx, Rule::CallDisableOutsideEnable, [args[0] as u64, 0, 0], p.into());
                }
            }
            sys::RequestTimerCall => {
                let us = args[1] as u64;
                self.trace(
                    idx,
                    "port",
                    &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name)), ("us", J::U(us))],
                );
                if args[0] == 0 && us != 0 {
                    self.violation(idx, Rule::TimerMisuse, [0, us, 0], "RequestTimerCall without a HwScsiTimer routine".into());
                    return;
                }
                let mut st = ad.st();
                st.timer = if us == 0 { None } else { Some((args[0], self.now().saturating_add(us * 1000))) };
                drop(st);
                self.kick_dpc();
            }
            sys::BusChangeDetected => {
                self.trace(
                    idx,
                    "port",
                    &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name)), ("path", J::U(args[0] as u64))],
                );
                // The port re-enumerates that bus (`DDI:nf-srb-scsiportnotification`).
                #[allow(clippy::cast_possible_truncation)]
                ad.st().rescan.insert(args[0] as u8);
                self.kick_dpc();
            }
            sys::WMIEvent | sys::WMIReregister => {
                self.trace(
                    idx,
                    "port",
                    &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name)), ("arg", J::U(args[0] as u64))],
                );
            }
            _ => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::I(i64::from(ty)))]);
                self.violation(idx, Rule::UnsupportedNotification, [u64::from(ty.cast_unsigned()), 0, 0], format!("ScsiPortNotification type {ty} is not a SCSI Port notification"));
            }
        }
    }

    /// Starts the reset hold: `StartIo` pauses; when it ends every request outstanding now must be
    /// complete (0x1007, contract §7.2).
    fn begin_hold(&self, st: &mut AdapterSt, path: Option<u8>) {
        let ids: BTreeSet<u64> =
            st.active.values().filter(|a| path.is_none_or(|p| a.snapshot.PathId == p)).map(|a| a.preq.id).collect();
        let until = self.now().saturating_add(self.cfg.reset_hold_ns);
        match st.hold.as_mut() {
            Some(h) => {
                h.until_ns = until;
                h.ids.extend(ids);
            }
            None => st.hold = Some(Hold { until_ns: until, ids }),
        }
        self.kick_dpc();
    }

    /// `ScsiPortCompleteRequest`: completes every active request matching the address
    /// (`DDI:nf-srb-scsiportcompleterequest`).
    pub(crate) fn complete_matching(self: &Arc<Self>, ad: &Arc<Adapter>, routine: Routine, p: u8, t: u8, l: u8, status: u8) {
        let mut srbs: Vec<(u64, usize)> = ad
            .st()
            .active
            .iter()
            .filter(|(_, a)| {
                (p == sys::SP_UNTAGGED || a.snapshot.PathId == p)
                    && (t == sys::SP_UNTAGGED || a.snapshot.TargetId == t)
                    && (l == sys::SP_UNTAGGED || a.snapshot.Lun == l)
            })
            .map(|(s, a)| (a.preq.id, *s))
            .collect();
        // In request order, not address order: SRB addresses differ from run to run, and the
        // deterministic schedule's trace must not.
        srbs.sort_unstable();
        for (_, s) in srbs {
            self.complete_srb(ad, s, Some(status), Some(routine));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Interrupts
    // -----------------------------------------------------------------------------------------

    pub(crate) fn note_line(&self, ad: &Adapter) {
        let level = ad.hba.irq_asserted();
        let mut st = ad.st();
        if st.line_level != level {
            st.line_level = level;
            drop(st);
            self.trace(Some(ad.index), "irq", &[("level", J::B(level)), ("line", J::U(u64::from(ad.line)))]);
        }
    }

    /// Whether the line needs service: some connected, non-deferred adapter on it asserts.
    pub(crate) fn line_wants_service(&self, line: u32) -> bool {
        self.adapters.iter().any(|a| {
            if a.line != line {
                return false;
            }
            let st = a.st();
            st.connected && !st.deferred() && !st.in_running_config && a.hba.irq_asserted()
        })
    }

    /// Dispatches one interrupt on a (possibly shared) line: each connected adapter's ISR in turn
    /// until one claims it, as a chained level-triggered dispatch does.
    pub(crate) fn dispatch_line(self: &Arc<Self>, line: u32) -> bool {
        let mut order: Vec<Arc<Adapter>> = self.adapters.iter().filter(|a| a.line == line).cloned().collect();
        if self.deterministic && order.len() > 1 {
            let k = usize::try_from(self.rand() % order.len() as u64).unwrap_or(0);
            order.rotate_left(k);
        }
        let mut any = false;
        for ad in order {
            if self.is_halted() {
                return any;
            }
            self.note_line(&ad);
            let Some(isr) = ({
                let st = ad.st();
                if st.connected && !st.deferred() && !st.in_running_config { st.hw.and_then(|h| h.0.HwInterrupt) } else { None }
            }) else {
                continue;
            };
            any = true;
            if self.run_isr(&ad, isr, false) {
                break;
            }
        }
        any
    }

    /// Calls one adapter's ISR and applies the interrupt rules. Returns whether it claimed.
    fn run_isr(self: &Arc<Self>, ad: &Arc<Adapter>, isr: unsafe extern "win64" fn(PVOID) -> BOOLEAN, polled: bool) -> bool {
        let idx = Some(ad.index);
        let _g = ad.intlock();
        if ad.st().deferred() {
            return false;
        }
        let asserted_before = ad.hba.irq_asserted();
        let quiet_before = ad.hba.next_event_ns().is_none();
        let devext = ad.devext_ptr();
        let r = self.call(Some(ad), Routine::Interrupt, &[], || {
            // SAFETY: the miniport's HwScsiInterrupt with its device extension, under the
            // interrupt lock.
            unsafe { isr(devext) }
        });
        ad.hba.end_of_interrupt();
        let asserted_after = ad.hba.irq_asserted();
        let mut st = ad.st();
        let enable = st.enable_request.take();
        let threshold = self.verifier.storm_threshold;
        let mut problem: Option<(Rule, String)> = None;
        if r == FALSE {
            st.stats.spurious_interrupts += 1;
            if enable.is_some() {
                problem = Some((Rule::EnableWithoutMask, "HwScsiInterrupt requested CallEnableInterrupts and returned FALSE".into()));
            } else if asserted_before && asserted_after && !polled {
                st.storm += 1;
                if st.storm >= threshold {
                    problem = Some((Rule::InterruptStorm, format!("HwScsiInterrupt returned FALSE {} times while its line stayed asserted", st.storm)));
                }
            }
        } else {
            st.stats.interrupts += 1;
            st.storm = 0;
            if !asserted_before && !polled && (self.deterministic || quiet_before) {
                problem = Some((Rule::IsrClaimedForeign, "HwScsiInterrupt returned TRUE but its HBA's line was not asserted".into()));
            }
            if let Some(cb) = enable {
                if asserted_after && !polled {
                    problem = Some((
                        Rule::EnableWithoutMask,
                        "HwScsiInterrupt requested CallEnableInterrupts but the HBA's interrupt line is still asserted".into(),
                    ));
                } else {
                    st.defer = Defer::EnablePending(cb);
                    // The DPC is queued now; it runs once the CPU drops below DISPATCH_LEVEL and
                    // the DPCs ahead of it ran (the latency model).
                    st.dpc_due_ns = self.now().saturating_add(self.draw(&self.cfg.dpc_latency_ns));
                }
            } else if asserted_after && !polled {
                st.unclear += 1;
                // Deterministic: a device completion during a stall in the ISR can re-assert the
                // line legitimately once; a stuck line is re-dispatched at once and counts up.
                if (self.deterministic && st.unclear >= 3) || st.unclear >= threshold {
                    problem = Some((Rule::IsrDidNotClear, "HwScsiInterrupt returned TRUE but the HBA's line is still asserted".into()));
                }
            } else {
                st.unclear = 0;
            }
        }
        drop(st);
        if let Some((rule, msg)) = problem {
            self.violation(idx, rule, [devext as u64, 0, 0], msg);
        }
        self.note_line(ad);
        self.kick_dpc();
        r != FALSE
    }

    /// Dump mode: the port polls `HwScsiInterrupt`.
    pub(crate) fn poll(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let Some(isr) = ad.st().hw.and_then(|h| h.0.HwInterrupt) else { return false };
        self.run_isr(ad, isr, true)
    }

    /// The deferred half of the interrupt protocol (contract §4.3): the enable callback outside
    /// the interrupt lock "as a DPC", then the disable callback under it.
    pub(crate) fn run_dpc(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let idx = Some(ad.index);
        let cb = {
            let mut st = ad.st();
            match st.defer {
                Defer::EnablePending(cb) => {
                    st.defer = Defer::EnableRunning;
                    st.disable_request = None;
                    st.disable_requests = 0;
                    cb
                }
                _ => return false,
            }
        };
        // SAFETY: `cb` is the non-NULL PHW_INTERRUPT the miniport passed with CallEnableInterrupts.
        let enable: unsafe extern "win64" fn(PVOID) -> BOOLEAN = unsafe { std::mem::transmute(cb) };
        let devext = ad.devext_ptr();
        if ad.hba.irq_asserted() {
            // The ISR dismissed the interrupt instead of masking the HBA, and it fired again
            // inside the deferral window (contract §4.3: interrupts must stay off until the
            // disable callback).
            self.violation(
                Some(ad.index),
                Rule::EnableWithoutMask,
                [devext as u64, 0, 0],
                "the HBA interrupted again before HwScsiEnableInterruptsCallback ran: its interrupts were not masked".into(),
            );
            return true;
        }
        let adversarial = self.cfg.adversarial;
        let running = AtomicBool::new(true);
        std::thread::scope(|s| {
            if adversarial {
                let me = Arc::clone(self);
                let ad2 = Arc::clone(ad);
                let running = &running;
                s.spawn(move || {
                    // Keep trying while the enable callback runs.
                    while running.load(Ordering::Acquire) && !me.is_halted() {
                        me.adversarial_start(&ad2);
                        std::thread::yield_now();
                    }
                });
            }
            self.call(Some(ad), Routine::EnableCallback, &[], || {
                // SAFETY: the miniport's enable callback with its device extension, outside the
                // interrupt lock, as a DPC would run it.
                unsafe { enable(devext) }
            });
            running.store(false, Ordering::Release);
        });
        let disable = {
            let mut st = ad.st();
            st.stats.enable_callbacks += 1;
            st.disable_request.take()
        };
        let Some(dcb) = disable else {
            ad.st().defer = Defer::None;
            self.violation(idx, Rule::EnableWithoutDisable, [devext as u64, 0, 0], "HwScsiEnableInterruptsCallback returned without CallDisableInterrupts".into());
            return true;
        };
        ad.st().defer = Defer::DisablePending(dcb);
        // SAFETY: the non-NULL PHW_INTERRUPT passed with CallDisableInterrupts.
        let disable_fn: unsafe extern "win64" fn(PVOID) -> BOOLEAN = unsafe { std::mem::transmute(dcb) };
        {
            let _g = ad.intlock();
            self.call(Some(ad), Routine::DisableCallback, &[], || {
                // SAFETY: the miniport's disable callback under the interrupt lock.
                unsafe { disable_fn(devext) }
            });
            // Still under the lock: no ISR can have masked the HBA again since.
            let masked = ad.hba.interrupts_unmasked() == Some(false);
            let mut st = ad.st();
            st.stats.disable_callbacks += 1;
            st.defer = Defer::None;
            drop(st);
            if masked {
                self.violation(idx, Rule::DisableLeftMasked, [devext as u64, 0, 0], "HwScsiDisableInterruptsCallback left the HBA's interrupts masked".into());
            }
            if !self.deterministic {
                // The window has closed and the interrupt lock is still held: a bus reset asked
                // for meanwhile runs now, before the interrupt thread can open the next window
                // (the deterministic loop runs it as its next event instead).
                self.requested_resets_locked(ad);
            }
        }
        self.note_line(ad);
        self.kick_irq();
        self.kick_dpc();
        true
    }

    /// Adversarial mode: `StartIo` on another thread while the enable callback runs.
    fn adversarial_start(self: &Arc<Self>, ad: &Arc<Adapter>) {
        let _g = ad.intlock();
        let now = self.now();
        let saved = {
            let mut st = ad.st();
            let saved = st.defer;
            st.defer = Defer::None;
            if !self.startable(&st, now, false) {
                st.defer = saved;
                return;
            }
            saved
        };
        self.start_locked(ad);
        let mut st = ad.st();
        if st.defer == Defer::None {
            st.defer = saved;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Timers, timeouts, reset hold, hang detection
    // -----------------------------------------------------------------------------------------

    pub(crate) fn run_timer(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let _g = ad.intlock();
        let now = self.now();
        let t = {
            let mut st = ad.st();
            if st.deferred() || st.phase != Phase::Running {
                return false;
            }
            match st.timer {
                Some((f, due)) if due <= now => {
                    st.timer = None;
                    st.stats.timer_calls += 1;
                    f
                }
                _ => return false,
            }
        };
        // SAFETY: the non-NULL PHW_TIMER the miniport passed with RequestTimerCall.
        let f: unsafe extern "win64" fn(PVOID) = unsafe { std::mem::transmute(t) };
        let devext = ad.devext_ptr();
        self.call(Some(ad), Routine::Timer, &[], || {
            // SAFETY: the miniport's HwScsiTimer under the interrupt lock.
            unsafe { f(devext) };
            0i32
        });
        self.kick_dpc();
        true
    }

    /// SRB timeouts (contract §7.3, inferred model): `HwScsiResetBus(PathId)` under the interrupt
    /// lock, then the reset hold ([`Self::port_reset_bus`], once per bus with a request that
    /// timed out).
    pub(crate) fn run_timeouts(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let _g = ad.intlock();
        let now = self.now();
        let (paths, reset) = {
            let mut st = ad.st();
            if !st.may_reset() {
                return false;
            }
            let mut paths = BTreeSet::new();
            let mut n = 0;
            for a in st.active.values_mut() {
                if !a.timed_out && a.deadline_ns <= now {
                    a.timed_out = true;
                    paths.insert(a.snapshot.PathId);
                    n += 1;
                }
            }
            st.stats.timeouts += n;
            (paths, st.hw.and_then(|h| h.0.HwResetBus))
        };
        if paths.is_empty() {
            return false;
        }
        let Some(reset) = reset else { return false };
        for p in paths {
            self.port_reset_bus(ad, reset, p, ResetReason::Timeout);
        }
        self.kick_dpc();
        true
    }

    /// A port-initiated bus reset, the interrupt lock held and outside the deferred-interrupt
    /// window ([`AdapterSt::may_reset`]); the one path for SRB timeouts and for
    /// `Machine::reset_bus`. The trace event, `stats.bus_resets`, the reset hold for the requests
    /// outstanding on the bus now (0x1007 when it ends, contract §7.2), then
    /// `HwScsiResetBus(PathId)`, which must complete them all (contract §3.5).
    fn port_reset_bus(self: &Arc<Self>, ad: &Arc<Adapter>, reset: HwResetBusFn, path: u8, reason: ResetReason) {
        let outstanding = {
            let mut st = ad.st();
            st.stats.bus_resets += 1;
            let n = st.active.values().filter(|a| a.snapshot.PathId == path).count();
            self.begin_hold(&mut st, Some(path));
            n
        };
        match reason {
            ResetReason::Timeout => self.trace(Some(ad.index), "port", &[("fn", J::Static("timeout")), ("path", J::from(path))]),
            ResetReason::Request => self.trace(
                Some(ad.index),
                "port",
                &[("fn", J::Static("reset_bus")), ("path", J::from(path)), ("outstanding", J::from(outstanding))],
            ),
        }
        let devext = ad.devext_ptr();
        self.call(Some(ad), Routine::ResetBus, &[("path", J::from(path))], || {
            // SAFETY: the miniport's HwScsiResetBus under the interrupt lock.
            unsafe { reset(devext, u32::from(path)) }
        });
    }

    /// Queues a port-initiated bus reset for `Machine::reset_bus`; returns its ticket for
    /// [`Adapter::reset_state`].
    pub(crate) fn request_reset(&self, ad: &Adapter, path: u8) -> Result<u64, Error> {
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        let mut st = ad.st();
        if st.phase != Phase::Running {
            return Err(Error::Usage(format!("adapter {} is not running ({:?})", ad.index, st.phase)));
        }
        if path >= st.caps.buses {
            return Err(Error::Usage(format!("adapter {} has {} bus(es), no bus {path}", ad.index, st.caps.buses)));
        }
        st.reset_tickets += 1;
        let ticket = st.reset_tickets;
        st.reset_requests.push_back((ticket, path));
        drop(st);
        self.kick_dpc();
        Ok(ticket)
    }

    /// Runs the bus resets the upper edge asked for, if the port may reset now.
    pub(crate) fn run_requested_resets(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        if ad.st().reset_requests.is_empty() {
            return false;
        }
        let _g = ad.intlock();
        self.requested_resets_locked(ad)
    }

    /// As [`Self::run_requested_resets`], the interrupt lock held.
    fn requested_resets_locked(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let mut ran = false;
        while !self.is_halted() {
            let (ticket, path, reset) = {
                let st = ad.st();
                if !st.may_reset() {
                    break;
                }
                // When the miniport holds nothing but the port can start a request right now, the
                // reset waits for that StartIo (and runs as soon as it has returned). Otherwise it
                // would land on exactly the moment a callback has just emptied the miniport, or
                // before the port started anything that was just submitted; a reset after a
                // timeout on a busy bus meets the requests the miniport holds.
                if !st.has_active() && self.startable(&st, self.now(), false) {
                    break;
                }
                let Some(reset) = st.hw.and_then(|h| h.0.HwResetBus) else { break };
                let Some(&(ticket, path)) = st.reset_requests.front() else { break };
                (ticket, path, reset)
            };
            self.port_reset_bus(ad, reset, path, ResetReason::Request);
            // Done once `HwScsiResetBus` has returned: off the queue (by ticket, in case its
            // caller gave up meanwhile).
            ad.st().reset_requests.retain(|(t, _)| *t != ticket);
            ad.reset_cv.notify_all();
            ran = true;
        }
        if ran {
            self.kick_dpc();
        }
        ran
    }

    pub(crate) fn run_hold_end(&self, ad: &Adapter) -> bool {
        let now = self.now();
        let mut st = ad.st();
        let Some(h) = st.hold.as_ref() else { return false };
        if h.until_ns > now {
            return false;
        }
        let left: Vec<u64> = h.ids.iter().copied().filter(|id| st.active.values().any(|a| a.preq.id == *id)).collect();
        st.hold = None;
        drop(st);
        if !left.is_empty() {
            let devext = ad.devext.load(Ordering::Relaxed) as u64;
            self.violation(
                Some(ad.index),
                Rule::ResetHoldOutstanding,
                [ad.index as u64, devext, 0],
                format!("the reset hold ended with {} request(s) still outstanding (srb {:?})", left.len(), left),
            );
        }
        self.kick_dpc();
        true
    }

    /// Hang detection for a missing `NextRequest` (contract §10 line 15).
    pub(crate) fn hang_check(&self, ad: &Adapter) -> Option<u64> {
        let now = self.now();
        let mut st = ad.st();
        let waiting = st.phase == Phase::Running
            && !st.ready
            && st.active.is_empty()
            && !st.deferred()
            && st.hold.is_none()
            && st.timer.is_none()
            && self.startable(&st, now, true);
        if !waiting {
            st.stalled_since = None;
            return None;
        }
        let since = *st.stalled_since.get_or_insert(now);
        let deadline = since.saturating_add(self.verifier.hang_threshold_ns);
        if now >= deadline && self.verifier.checks(Rule::MissingNextRequest) {
            let q = st.queued();
            drop(st);
            self.violation(
                Some(ad.index),
                Rule::MissingNextRequest,
                [q as u64, (now - since) / 1000, 0],
                format!("{q} request(s) waiting, none outstanding, and no NextRequest for {} ms", (now - since) / 1_000_000),
            );
            return None;
        }
        Some(deadline)
    }

    // -----------------------------------------------------------------------------------------
    // The deterministic schedule
    // -----------------------------------------------------------------------------------------

    /// One step of the deterministic event loop: pick one runnable action (seeded), or advance
    /// the virtual clock to the next event.
    pub(crate) fn det_step(self: &Arc<Self>) -> Step {
        self.det_step_until(u64::MAX)
    }

    /// As [`Self::det_step`], but the clock never moves past `limit`.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn det_step_until(self: &Arc<Self>, limit: u64) -> Step {
        if self.is_halted() {
            return Step::Idle;
        }
        // A bus reset the upper edge asked for (`Machine::reset_bus`) is the next event wherever
        // the port may reset: at once, or right after the deferred-interrupt window closes.
        for ad in &self.adapters {
            if self.run_requested_resets(ad) {
                return Step::Progress;
            }
        }
        let now = self.now();
        let mut actions = Vec::new();
        let mut next: Option<u64> = None;
        let at = |t: u64, next: &mut Option<u64>| {
            if t > now {
                *next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        let mut lines = BTreeSet::new();
        for ad in &self.adapters {
            if let Some(t) = ad.hba.next_event_ns() {
                if t <= now {
                    actions.push(Action::Device(ad.index));
                } else {
                    at(t, &mut next);
                }
            }
            self.note_line(ad);
            let st = ad.st();
            if self.cfg.dump_mode && st.phase == Phase::Running && !st.active.is_empty() {
                if st.next_poll_ns <= now {
                    actions.push(Action::Poll(ad.index));
                } else {
                    at(st.next_poll_ns, &mut next);
                }
            }
            if st.connected && !st.deferred() && ad.hba.irq_asserted() {
                lines.insert(ad.line);
            }
            if matches!(st.defer, Defer::EnablePending(_)) {
                if st.dpc_due_ns <= now {
                    actions.push(Action::Dpc(ad.index));
                } else {
                    at(st.dpc_due_ns, &mut next);
                }
            }
            if self.startable(&st, now, false) {
                actions.push(Action::Start(ad.index));
            } else if st.phase == Phase::Running && st.ready && !st.deferred() && st.hold.is_none() {
                for l in st.lus.values() {
                    if let Some(f) = l.queue.front() {
                        at(f.not_before_ns, &mut next);
                    }
                }
            }
            if let Some((_, due)) = st.timer {
                if due <= now && !st.deferred() {
                    actions.push(Action::Timer(ad.index));
                } else {
                    at(due, &mut next);
                }
            }
            if st.phase == Phase::Running {
                for a in st.active.values() {
                    if !a.timed_out {
                        if a.deadline_ns <= now && !st.deferred() {
                            actions.push(Action::Timeout(ad.index));
                            break;
                        }
                        at(a.deadline_ns, &mut next);
                    }
                }
            }
            if !st.rescan.is_empty() && st.phase == Phase::Running {
                actions.push(Action::Rescan(ad.index));
            }
            if let Some(h) = &st.hold {
                if h.until_ns <= now {
                    actions.push(Action::HoldEnd(ad.index));
                } else {
                    at(h.until_ns, &mut next);
                }
            }
        }
        {
            // Interrupt latency: a line is dispatched once it has wanted service for its draw.
            // A line that stopped wanting service (cleared, masked, deferred) forgets its draw.
            let mut due = lock(&self.irq_due);
            due.retain(|l, _| lines.contains(l));
            for l in lines {
                let t = *due.entry(l).or_insert_with(|| now.saturating_add(self.draw(&self.cfg.interrupt_latency_ns)));
                if t <= now {
                    actions.push(Action::Isr(l));
                } else {
                    at(t, &mut next);
                }
            }
        }
        if actions.is_empty() {
            for ad in &self.adapters {
                if let Some(d) = self.hang_check(ad) {
                    at(d.max(now + 1), &mut next);
                }
            }
            if self.is_halted() {
                return Step::Idle;
            }
            return match (next, &self.vclock) {
                (Some(t), Some(c)) if now < limit => {
                    c.advance_to(t.min(limit));
                    Step::Progress
                }
                _ => Step::Idle,
            };
        }
        for ad in &self.adapters {
            ad.st().stalled_since = None;
        }
        let pick = usize::try_from(self.rand() % actions.len() as u64).unwrap_or(0);
        let Some(action) = actions.get(pick).copied() else { return Step::Idle };
        if let Action::Isr(l) = action {
            // Still asserted afterwards (not ours, a storm): a new dispatch, a new latency.
            lock(&self.irq_due).remove(&l);
            self.dispatch_line(l);
            return Step::Progress;
        }
        let (Action::Device(i) | Action::Poll(i) | Action::Dpc(i) | Action::Start(i) | Action::Timer(i)
        | Action::Timeout(i) | Action::HoldEnd(i) | Action::Rescan(i)) = action
        else {
            return Step::Progress;
        };
        let Some(ad) = self.adapters.get(i) else { return Step::Progress };
        match action {
            Action::Device(_) => {
                ad.hba.run_due(now);
                self.note_line(ad);
            }
            Action::Poll(_) => {
                ad.st().next_poll_ns = now + self.cfg.dump_poll_ns;
                self.poll(ad);
            }
            Action::Dpc(_) => {
                self.run_dpc(ad);
            }
            Action::Start(_) => {
                self.try_start(ad);
            }
            Action::Timer(_) => {
                self.run_timer(ad);
            }
            Action::Timeout(_) => {
                self.run_timeouts(ad);
            }
            Action::HoldEnd(_) => {
                self.run_hold_end(ad);
            }
            Action::Rescan(_) => {
                self.run_rescan(ad);
            }
            Action::Isr(_) => {}
        }
        Step::Progress
    }

    // -----------------------------------------------------------------------------------------
    // Services the miniport calls (ffi.rs forwards here)
    // -----------------------------------------------------------------------------------------

    pub(crate) fn stall(&self, ad: Option<&Arc<Adapter>>, us: u32) {
        let idx = ad.map(|a| a.index);
        self.trace(idx, "port", &[("fn", J::Static("ScsiPortStallExecution")), ("us", J::from(us))]);
        with_ctx(|c| {
            if let Some(c) = c {
                c.stall_total_us = c.stall_total_us.saturating_add(u64::from(us));
                if self.deterministic {
                    c.stall_ns = c.stall_ns.saturating_add(u64::from(us) * 1000);
                }
            }
        });
        if us > 100_000 {
            self.violation(idx, Rule::StallTooLong, [u64::from(us), 0, 0], format!("ScsiPortStallExecution({us}) stalls longer than 0.1 s"));
            return;
        }
        if us > 1000 {
            self.violation(idx, Rule::StallOverMillisecond, [u64::from(us), 0, 0], format!("ScsiPortStallExecution({us}) stalls longer than 1 ms"));
        }
        if let Some(c) = &self.vclock {
            c.advance_to(c.now_ns().saturating_add(u64::from(us) * 1000));
            // The device keeps working while the CPU spins.
            if let Some(a) = ad {
                a.hba.run_due(c.now_ns());
            }
        } else if us >= 1000 {
            std::thread::sleep(std::time::Duration::from_micros(u64::from(us)));
        } else {
            let t = Instant::now();
            while t.elapsed() < std::time::Duration::from_micros(u64::from(us)) {
                std::hint::spin_loop();
            }
        }
    }

    pub(crate) fn get_uncached_extension(&self, ad: &Adapter, routine: Routine, config: *mut PORT_CONFIGURATION_INFORMATION, bytes: u32) -> PVOID {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("ScsiPortGetUncachedExtension")), ("bytes", J::from(bytes))]);
        let mut st = ad.st();
        let ours = st.find_cfg as *mut PORT_CONFIGURATION_INFORMATION;
        let master = if config.is_null() {
            false
        } else {
            // SAFETY: a non-NULL ConfigInfo pointer from the miniport; it must be the one the
            // port passed to HwScsiFindAdapter (checked below before any other use).
            let master = unsafe { std::ptr::addr_of!((*config).Master) };
            // SAFETY: as above.
            unsafe { master.read_unaligned() != FALSE }
        };
        st.uncached_calls += 1;
        let problem = if routine != Routine::FindAdapter {
            Some(format!("called from {}", routine.name()))
        } else if st.uncached_calls > 1 {
            Some("called twice for one HBA".to_string())
        } else if config.is_null() || (!ours.is_null() && config != ours) {
            Some("ConfigInfo is not the one passed to HwScsiFindAdapter".to_string())
        } else if !master {
            Some("ConfigInfo->Master is FALSE (bus-master HBAs only)".to_string())
        } else if self.cfg.dump_mode && bytes >= 32 * 1024 {
            Some(format!("{bytes} bytes in dump mode (must stay under 32 KiB)"))
        } else {
            None
        };
        if let Some(p) = problem {
            drop(st);
            self.violation(idx, Rule::UncachedExtension, [u64::from(bytes), 0, 0], format!("ScsiPortGetUncachedExtension: {p}"));
            return std::ptr::null_mut();
        }
        if let Some(u) = &st.uncached {
            // A repeated FindAdapter after a stop: the port kept the common buffer.
            if u.len() >= bytes as usize {
                // SAFETY: the region is the port's and CPU-accessible.
                unsafe { u.as_mut_slice().fill(0) };
                return u.va().cast();
            }
        }
        // SAFETY: the ConfigInfo the port passed to the running HwScsiFindAdapter (checked above).
        st.uncached_snapshot = Some(dma_fields(unsafe { &*config }));
        match ad.dma.alloc(bytes as usize, Layout::Contiguous) {
            Ok(r) => {
                let p = r.va();
                st.uncached = Some(r);
                p.cast()
            }
            Err(_) => std::ptr::null_mut(),
        }
    }

    pub(crate) fn get_physical_address(&self, ad: &Adapter, srb: usize, va: usize, len_out: *mut u32) -> i64 {
        let idx = Some(ad.index);
        let st = ad.st();
        let mut result: Option<(u64, usize)> = None;
        let mut problem: Option<(Rule, String)> = None;
        if srb != 0 {
            match st.active.get(&srb) {
                None => {
                    let twice = st.quarantine.iter().any(|q| q.srb == srb);
                    problem = Some(if twice {
                        (Rule::CompletedSrbPassed, format!("ScsiPortGetPhysicalAddress with the completed SRB {srb:#x}"))
                    } else {
                        (Rule::BadPhysicalAddressQuery, format!("ScsiPortGetPhysicalAddress with {srb:#x}, which is not an outstanding SRB"))
                    });
                }
                Some(a) => {
                    let dtl = a.snapshot.DataTransferLength as usize;
                    let data_base = a.snapshot.DataBuffer as usize;
                    let sense_base = a.snapshot.SenseInfoBuffer as usize;
                    let off = a.preq.req.buffer_offset % PAGE_SIZE;
                    let data_len = a.block.data.as_ref().map_or(0, |d| d.len().saturating_sub(off));
                    if let Some(d) = a.block.data.as_ref().filter(|_| va >= data_base && va - data_base < dtl.min(data_len)) {
                        result = d.phys(off + va - data_base).map(|(pa, run)| (pa, run.min(dtl - (va - data_base))));
                    } else if let Some(s) = a.block.sense.as_ref().filter(|s| sense_base != 0 && va >= sense_base && va - sense_base < s.len()) {
                        result = s.phys(va - sense_base);
                    } else {
                        problem = Some((Rule::BadPhysicalAddressQuery, format!("VA {va:#x} is not in srb {}'s data or sense buffer", a.preq.id)));
                    }
                }
            }
        } else if let Some(u) = st.uncached.as_ref().filter(|u| u.contains(va)) {
            result = u.phys(va - u.va() as usize);
        } else {
            for a in st.active.values() {
                if let Some(e) = a.block.ext.as_ref().filter(|e| e.contains(va)) {
                    if !st.caps.need_phys {
                        problem = Some((Rule::ExtensionNeedsPhysical, "SRB extension translated without NeedPhysicalAddresses".into()));
                    }
                    result = e.phys(va - e.va() as usize);
                    break;
                }
                if let Some(s) = a.block.sense.as_ref().filter(|s| s.contains(va)) {
                    result = s.phys(va - s.va() as usize);
                    break;
                }
            }
            if result.is_none() && problem.is_none() {
                problem = Some((Rule::BadPhysicalAddressQuery, format!("VA {va:#x} is in neither the uncached extension, an SRB extension nor a sense buffer")));
            }
        }
        drop(st);
        let (pa, len) = result.unwrap_or((0, 0));
        if !len_out.is_null() {
            // SAFETY: the miniport's ULONG out-parameter.
            unsafe { len_out.write_unaligned(u32::try_from(len).unwrap_or(u32::MAX)) };
        }
        if self.tracer.enabled() {
            self.trace(
                idx,
                "port",
                &[("fn", J::Static("ScsiPortGetPhysicalAddress")), ("pa", J::Str(format!("{pa:#x}"))), ("length", J::from(len))],
            );
        }
        if let Some((rule, msg)) = problem {
            let devext = ad.devext.load(Ordering::Relaxed) as u64;
            self.violation(idx, rule, [devext, va as u64, 0], msg);
        }
        i64::try_from(pa).unwrap_or(0)
    }

    pub(crate) fn get_virtual_address(&self, ad: &Adapter, pa: u64) -> PVOID {
        let idx = Some(ad.index);
        let st = ad.st();
        let find = |r: &DmaRegion| -> Option<usize> {
            r.pages().iter().enumerate().find_map(|(i, p)| {
                (pa >= *p && pa - p < PAGE_SIZE as u64).then(|| i * PAGE_SIZE + usize::try_from(pa - p).unwrap_or(0))
            }).filter(|off| *off < r.len()).map(|off| r.va() as usize + off)
        };
        let mut va = st.uncached.as_ref().and_then(find);
        if va.is_none() {
            va = st.active.values().find_map(|a| a.block.ext.as_ref().and_then(find));
        }
        drop(st);
        self.trace(idx, "port", &[("fn", J::Static("ScsiPortGetVirtualAddress")), ("pa", J::Str(format!("{pa:#x}")))]);
        if let Some(v) = va {
            v as PVOID
        } else {
            self.violation(idx, Rule::BadVirtualAddressQuery, [pa, 0, 0], format!("ScsiPortGetVirtualAddress({pa:#x}): not in the uncached or an SRB extension"));
            std::ptr::null_mut()
        }
    }

    pub(crate) fn get_device_base(&self, ad: &Adapter, routine: Routine, io_address: u64, bytes: u32, in_io: bool) -> PVOID {
        let idx = Some(ad.index);
        self.trace(
            idx,
            "port",
            &[
                ("fn", J::Static("ScsiPortGetDeviceBase")),
                ("address", J::Str(format!("{io_address:#x}"))),
                ("bytes", J::from(bytes)),
                ("io", J::B(in_io)),
            ],
        );
        let in_running = ad.st().in_running_config;
        if routine != Routine::FindAdapter && !(routine == Routine::AdapterControl && in_running) {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortGetDeviceBase from {}", routine.name()));
            return std::ptr::null_mut();
        }
        let want = if in_io { BarKind::Io } else { BarKind::Memory };
        let bar = ad.hba.bars().into_iter().find(|b| {
            b.kind == want && io_address >= b.base && io_address.saturating_add(u64::from(bytes)) <= b.base.saturating_add(b.len)
        });
        let Some(bar) = bar else {
            self.violation(idx, Rule::UnassignedRange, [io_address, u64::from(bytes), u64::from(in_io)], format!("ScsiPortGetDeviceBase({io_address:#x}, {bytes}, InIoSpace={in_io}) is not an assigned range"));
            return std::ptr::null_mut();
        };
        let len = (bytes as usize).max(1);
        let Some(va) = guard::reserve(len) else { return std::ptr::null_mut() };
        // A loaded image touches memory-space registers directly (x64): every access faults and
        // is emulated. The linked-in driver must use the accessor routines; a direct access is
        // the memory monitor's violation.
        let (g, direct) = if self.direct_registers.load(Ordering::Relaxed) && !in_io {
            let Some(d) = guard::register_direct(self.owner, va, len) else {
                guard::unreserve(va, len);
                return std::ptr::null_mut();
            };
            (None, Some(d))
        } else if self.verifier.enabled && self.verifier.memory_monitor {
            (guard::register(self.owner, va, len, GuardKind::Mmio, 0), None)
        } else {
            (None, None)
        };
        ad.st().mappings.push(Mapping { va, len, bar: bar.index, bar_off: io_address - bar.base, io: in_io, guard: g, direct });
        va as PVOID
    }

    pub(crate) fn free_device_base(&self, ad: &Adapter, routine: Routine, va: usize) {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("ScsiPortFreeDeviceBase"))]);
        if routine != Routine::FindAdapter {
            self.violation(idx, Rule::FindAdapterOnlyService, [va as u64, 0, 0], format!("ScsiPortFreeDeviceBase from {}", routine.name()));
            return;
        }
        let mut st = ad.st();
        if let Some(pos) = st.mappings.iter().position(|m| m.va == va) {
            st.mappings.remove(pos);
        } else {
            drop(st);
            self.violation(idx, Rule::BadServiceArgument, [va as u64, 0, 0], "ScsiPortFreeDeviceBase of an address GetDeviceBase did not return".into());
        }
    }

    /// Decodes a register/port address and checks kind and range (contract §6 last bullet,
    /// §10 line 21). Returns (BAR, offset).
    pub(crate) fn decode_register(&self, ad: &Adapter, addr: usize, size: u8, port: bool, count: u32, fname: &'static str) -> Option<(u8, u64)> {
        let st = ad.st();
        let span = if port { usize::from(size) } else { usize::from(size) * (count.max(1) as usize) };
        let m = st.mappings.iter().find(|m| addr >= m.va && addr - m.va < m.len);
        let problem = match m {
            None => Some(format!("{fname} at {addr:#x}: not inside any range mapped by ScsiPortGetDeviceBase")),
            Some(m) if m.io != port => Some(format!(
                "{fname} on a {} range: use ScsiPort{}",
                if m.io { "I/O-space" } else { "memory-space" },
                if m.io { "Read/WritePort*" } else { "Read/WriteRegister*" }
            )),
            Some(m) if addr - m.va + span > m.len => Some(format!("{fname} at offset {:#x} ({span} bytes) runs past the mapped length {:#x}", addr - m.va, m.len)),
            Some(m) if !(addr - m.va).is_multiple_of(usize::from(size)) => Some(format!("{fname} at offset {:#x} is misaligned", addr - m.va)),
            Some(_) => None,
        };
        let decoded = m.map(|m| (m.bar, m.bar_off + (addr - m.va) as u64));
        drop(st);
        if let Some(p) = problem {
            self.violation(Some(ad.index), Rule::RegisterAccess, [addr as u64, u64::from(size), 0], p);
            return None;
        }
        decoded
    }

    /// One register read of `size` bytes at `addr`, the way every path performs it (the accessor
    /// routines of `ffi.rs`, and a loaded image's direct access emulated by `mmio.rs`): checked,
    /// forwarded to the HBA, traced, counted.
    pub(crate) fn register_read(&self, ad: &Adapter, fname: &'static str, addr: usize, size: u8, port: bool) -> Option<u32> {
        let (bar, off) = self.decode_register(ad, addr, size, port, 1, fname)?;
        let v = ad.hba.read(bar, off, size);
        self.trace_register(ad, fname, bar, off, v);
        ad.st().stats.register_accesses += 1;
        Some(v)
    }

    /// One register write; see [`Self::register_read`].
    pub(crate) fn register_write(&self, ad: &Adapter, fname: &'static str, addr: usize, size: u8, port: bool, value: u32) -> Option<()> {
        let (bar, off) = self.decode_register(ad, addr, size, port, 1, fname)?;
        self.trace_register(ad, fname, bar, off, value);
        ad.hba.write(bar, off, size, value);
        ad.st().stats.register_accesses += 1;
        self.note_line(ad);
        Some(())
    }

    /// Why the last direct access of a loaded image could not be emulated, for the violation the
    /// memory monitor reports when the routine returns.
    pub(crate) fn note_emulation_failure(&self, ad: &Adapter, addr: usize, why: String) {
        self.trace(Some(ad.index), "port", &[("fn", J::Static("mmio")), ("address", J::Str(format!("{addr:#x}"))), ("error", J::Str(why)),]);
    }

    pub(crate) fn trace_register(&self, ad: &Adapter, fname: &'static str, bar: u8, off: u64, value: u32) {
        if self.cfg.trace_registers && self.tracer.enabled() {
            self.trace(
                Some(ad.index),
                "port",
                &[("fn", J::Static(fname)), ("bar", J::from(bar)), ("offset", J::Str(format!("{off:#x}"))), ("value", J::Str(format!("{value:#x}")))],
            );
        }
    }

    pub(crate) fn get_bus_data(&self, ad: &Adapter, routine: Routine, ty: u32, buf: PVOID, len: u32) -> u32 {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("ScsiPortGetBusData")), ("type", J::from(ty)), ("length", J::from(len))]);
        let in_running = ad.st().in_running_config;
        if routine != Routine::FindAdapter && !(routine == Routine::AdapterControl && in_running) {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortGetBusData from {}", routine.name()));
            return 0;
        }
        if ty != sys::PCIConfiguration as u32 || buf.is_null() {
            return 0;
        }
        let mut data = vec![0u8; 256];
        let n = ad.hba.config_read(0, &mut data);
        if len == 0 {
            // Length 0: the port allocates and returns the buffer through `Buffer`.
            let mut st = ad.st();
            st.bus_data = data;
            let p = st.bus_data.as_mut_ptr();
            // SAFETY: with Length 0, `Buffer` is a PVOID* the miniport supplied.
            unsafe { buf.cast::<*mut u8>().write_unaligned(p) };
            return u32::try_from(n).unwrap_or(0);
        }
        let n = n.min(len as usize);
        // SAFETY: the miniport's buffer of `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.cast::<u8>(), n) };
        u32::try_from(n).unwrap_or(0)
    }

    pub(crate) fn set_bus_data(&self, ad: &Adapter, routine: Routine, ty: u32, buf: PVOID, offset: u32, len: u32) -> u32 {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("ScsiPortSetBusDataByOffset")), ("offset", J::from(offset)), ("length", J::from(len))]);
        let in_running = ad.st().in_running_config;
        if routine != Routine::FindAdapter && !(routine == Routine::AdapterControl && in_running) {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortSetBusDataByOffset from {}", routine.name()));
            return 0;
        }
        if ty != sys::PCIConfiguration as u32 || buf.is_null() {
            return 0;
        }
        // SAFETY: the miniport's buffer of `len` bytes.
        let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len as usize) };
        u32::try_from(ad.hba.config_write(offset, data)).unwrap_or(0)
    }

    pub(crate) fn validate_range(&self, ad: &Adapter, routine: Routine, addr: u64, bytes: u32, in_io: bool) -> BOOLEAN {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("ScsiPortValidateRange")), ("address", J::Str(format!("{addr:#x}")))]);
        if routine != Routine::FindAdapter {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortValidateRange from {}", routine.name()));
            return FALSE;
        }
        let want = if in_io { BarKind::Io } else { BarKind::Memory };
        BOOLEAN::from(ad.hba.bars().iter().any(|b| {
            b.kind == want && addr >= b.base && addr.saturating_add(u64::from(bytes)) <= b.base.saturating_add(b.len)
        }))
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn get_logical_unit(&self, ad: &Adapter, p: u8, t: u8, l: u8) -> PVOID {
        let mut st = ad.st();
        let size = st.caps.lu_ext;
        let Some(lu) = st.lus.get_mut(&(p, t, l)) else { return std::ptr::null_mut() };
        if size == 0 || (!lu.exists && lu.active.is_empty()) {
            return std::ptr::null_mut();
        }
        lu.ext.get_or_insert_with(|| ExtBlock::zeroed(size)).ptr()
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn get_srb(&self, ad: &Adapter, p: u8, t: u8, l: u8, tag: i32) -> usize {
        let st = ad.st();
        let key = if tag == i32::from(sys::SP_UNTAGGED) || tag == -1 { sys::SP_UNTAGGED } else { u8::try_from(tag).unwrap_or(0) };
        st.lus.get(&(p, t, l)).and_then(|lu| lu.active.get(&key).copied()).unwrap_or(0)
    }

    pub(crate) fn log_error(&self, ad: &Adapter, srb: usize, code: u32, unique: u32) {
        let idx = Some(ad.index);
        let st = ad.st();
        let completed = srb != 0 && !st.active.contains_key(&srb) && st.quarantine.iter().any(|q| q.srb == srb);
        let id = st.active.get(&srb).map(|a| a.preq.id);
        drop(st);
        self.trace(
            idx,
            "port",
            &[("fn", J::Static("ScsiPortLogError")), ("srb", J::from(id)), ("code", J::Str(format!("{code:#x}"))), ("unique", J::from(unique))],
        );
        if completed {
            self.violation(idx, Rule::CompletedSrbPassed, [srb as u64, u64::from(code), 0], "ScsiPortLogError with an SRB that was already completed".into());
        }
    }

    // -----------------------------------------------------------------------------------------
    // PnP / power: stop and restart
    // -----------------------------------------------------------------------------------------

    pub(crate) fn adapter_control(self: &Arc<Self>, ad: &Arc<Adapter>, ty: i32, locked: bool) -> Result<(), Error> {
        let Some(control) = ad.st().hw.and_then(|h| h.0.HwAdapterControl) else { return Ok(()) };
        let name = match ty {
            sys::ScsiStopAdapter => "ScsiStopAdapter",
            sys::ScsiRestartAdapter => "ScsiRestartAdapter",
            sys::ScsiSetBootConfig => "ScsiSetBootConfig",
            sys::ScsiSetRunningConfig => "ScsiSetRunningConfig",
            _ => "ScsiQuerySupportedControlTypes",
        };
        let devext = ad.devext_ptr();
        let g = if locked { Some(ad.intlock()) } else { None };
        let r = self.call(Some(ad), Routine::AdapterControl, &[("control", J::Static(name))], || {
            // SAFETY: the miniport's HwScsiAdapterControl; Parameters is NULL for these types.
            unsafe { control(devext, ty, std::ptr::null_mut()) }
        });
        drop(g);
        if r != sys::ScsiAdapterControlSuccess {
            self.violation(Some(ad.index), Rule::ControlNotSuccess, [u64::from(r.cast_unsigned()), u64::from(ty.cast_unsigned()), 0], format!("{name} returned {r}"));
        }
        self.halt_error().map_or(Ok(()), Err)
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn supports(&self, ad: &Adapter, ty: i32) -> bool {
        ad.st().supported.get(usize::try_from(ty).unwrap_or(99)).copied().unwrap_or(false)
    }

    /// `ScsiStopAdapter` (contract §3.7): no outstanding requests, a FLUSH first when `CachesData`,
    /// then the call under the interrupt lock, then the interrupt is disconnected.
    pub(crate) fn stop(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        if !self.supports(ad, sys::ScsiStopAdapter) {
            return Err(Error::Usage("the miniport does not support ScsiStopAdapter".into()));
        }
        let (caches, luns) = {
            let st = ad.st();
            (st.caps.caches_data, st.lus.iter().filter(|(_, l)| l.exists).map(|(k, _)| *k).collect::<Vec<_>>())
        };
        if caches {
            for (p, t, l) in luns {
                let tk = self.submit(ad.index, Request::flush(t).with_path(p).with_lun(l), Scan::Wait)?;
                self.wait_det_or_conc(tk)?;
            }
        }
        crate::machine::wait_idle(self)?;
        self.adapter_control(ad, sys::ScsiStopAdapter, true)?;
        let mut st = ad.st();
        st.phase = Phase::Stopped;
        st.connected = false;
        st.timer = None;
        Ok(())
    }

    /// Restart after a power-management stop (contract §3.7): `ScsiSetRunningConfig` with the
    /// interrupt disconnected, then `ScsiRestartAdapter`, or `HwScsiFindAdapter` + `HwScsiInitialize`
    /// when the miniport has no restart.
    pub(crate) fn restart(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        if ad.st().phase != Phase::Stopped {
            return Err(Error::Usage("adapter is not stopped".into()));
        }
        if self.supports(ad, sys::ScsiSetRunningConfig) {
            ad.st().in_running_config = true;
            let r = self.adapter_control(ad, sys::ScsiSetRunningConfig, false);
            ad.st().in_running_config = false;
            r?;
            if ad.hba.irq_asserted() {
                self.violation(
                    Some(ad.index),
                    Rule::InterruptWhileDisconnected,
                    [0, 0, 0],
                    "the HBA asserted its interrupt during ScsiSetRunningConfig (interrupt not connected)".into(),
                );
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("SetRunningConfig".into())));
            }
        }
        if self.supports(ad, sys::ScsiRestartAdapter) {
            {
                let mut st = ad.st();
                st.connected = self.adapter_connects(&st);
                st.phase = Phase::Initializing;
            }
            self.adapter_control(ad, sys::ScsiRestartAdapter, true)?;
            let mut st = ad.st();
            st.phase = Phase::Running;
            st.ready = true;
            drop(st);
            self.kick();
            Ok(())
        } else {
            self.reinit(ad)
        }
    }

    fn adapter_connects(&self, st: &AdapterSt) -> bool {
        !self.cfg.dump_mode && st.hw.is_some_and(|h| h.0.HwInterrupt.is_some())
    }

    /// A full PnP stop/start: stop, then `HwScsiFindAdapter`, `HwScsiInitialize` and the control
    /// query again with a fresh device extension.
    pub(crate) fn reinit(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let hw = ad.st().hw.ok_or_else(|| Error::Usage("not loaded".into()))?;
        {
            let mut st = ad.st();
            for l in st.lus.values_mut() {
                l.ext = None;
            }
        }
        self.find_adapter(ad, hw)?;
        self.initialize(ad)?;
        self.query_controls(ad)
    }
}


/// The SIGSEGV handler's hook for a loaded image's direct register access (`guard.rs`): emulates
/// the faulting instruction against the HBA of the running routine, as the accessor routine of
/// the same width would have performed it. `false` leaves the fault to the memory monitor.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn emulate_direct_access(ctx: *mut libc::c_void, fault_addr: usize) -> bool {
    use crate::mmio::Access;
    let Some((m, Some(ad), _)) = current() else { return false };
    let emulated = crate::mmio::emulate_in_context(ctx, fault_addr, |access| match *access {
        Access::Load { address, size, .. } => {
            let fname = match size {
                1 => "ScsiPortReadRegisterUchar",
                2 => "ScsiPortReadRegisterUshort",
                _ => "ScsiPortReadRegisterUlong",
            };
            m.register_read(&ad, fname, usize::try_from(address).ok()?, size, false)
        }
        Access::Store { address, size, value } => {
            let fname = match size {
                1 => "ScsiPortWriteRegisterUchar",
                2 => "ScsiPortWriteRegisterUshort",
                _ => "ScsiPortWriteRegisterUlong",
            };
            m.register_write(&ad, fname, usize::try_from(address).ok()?, size, false, value).map(|()| 0)
        }
    });
    match emulated {
        Ok(()) => {
            ad.st().stats.registers_emulated += 1;
            true
        }
        Err(why) => {
            m.note_emulation_failure(&ad, fault_addr, why);
            false
        }
    }
}
