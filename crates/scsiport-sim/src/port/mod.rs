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
//!
//! This module holds the types and the machine core (calling the miniport, the verifier's record,
//! the latency model); the port's behaviour is in its children, one concern each: `load`
//! (`DriverEntry` and the PnP start), `upper` (the upper edge), `start_io`, `complete`, `notify`,
//! `interrupt`, `recovery` (timers, timeouts, resets), `schedule` (the deterministic event loop),
//! `services` (what the miniport calls) and `control` (stop and restart).

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::ffi::CString;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::Arc;
use std::time::Instant;

use scsiport_sys as sys;
use sys::{
    ACCESS_RANGE, BOOLEAN, FALSE, HW_INITIALIZATION_DATA, PORT_CONFIGURATION_INFORMATION, PVOID,
    SCSI_REQUEST_BLOCK, TRUE,
};

use crate::guard::{self, DirectHandle, GuardHandle, GuardKind};
use crate::hba::{BarKind, Clock, Hba};
use crate::mem::{DmaRegion, DmaSpace, Layout, PAGE_SIZE};
use crate::request::{Completion, Direction, PortBuffer, Request, Ticket};
use crate::stats::Stats;
use crate::trace::{J, Tracer};
use crate::verifier::{BugCheck, QUARANTINE_ALL_CAP, Rule, VerifierConfig};

mod arena;
mod complete;
mod control;
mod interrupt;
mod load;
mod lock;
mod notify;
mod recovery;
mod schedule;
mod services;
pub(crate) use services::Via;
pub(crate) mod sorted;
use crate::state_lock;
mod start_io;
pub(crate) mod stor;
mod upper;

pub(crate) use lock::{PortLock, PortLockGuard};

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use services::emulate_direct_access;

/// Garbage the port writes into SRB extensions before `StartIo`: the port does not initialise them
/// (`DDI:ns-srb-_hw_initialization_data`), and a miniport that assumes zero should fail.
pub(crate) const SRB_EXTENSION_GARBAGE: u8 = 0xCD;
/// What a completed SRB and its extension are overwritten with before they are guarded.
pub(crate) const POISON: u8 = 0xDB;
/// Canary bytes the port puts after the `ScsiQuerySupportedControlTypes` list.
const CANARY: u8 = 0xA7;
/// Completed SRBs kept guarded per adapter before their memory is reused.
const QUARANTINE: usize = 48;
/// Released device extensions the full quarantine keeps guarded per adapter; past it the oldest
/// is unmapped.
const RELEASED_DEVEXTS: usize = 64;

/// The port driver a machine emulates: which `HW_INITIALIZATION_DATA` and
/// `PORT_CONFIGURATION_INFORMATION` it reads, which routines it calls under which lock, and
/// which rules its verifier checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Port {
    /// `scsiport.sys`: half duplex, the deferred-interrupt callbacks, `NextRequest`
    /// (`shared/reference/scsiport-contract.md`).
    #[default]
    ScsiPort,
    /// `storport.sys`: `HwStorBuildIo` without a lock, `HwStorStartIo` under the `StartIo` lock and
    /// `HwStorInterrupt` under the interrupt lock on other processors at once (full duplex), DPCs,
    /// queue management by the miniport (`StorPortPause`, `StorPortBusy`, ...).
    Storport,
}

impl Port {
    /// The module a miniport of this port imports from, as the PE loader names it.
    #[must_use]
    pub const fn module(self) -> &'static str {
        match self {
            Port::ScsiPort => "SCSIPORT.SYS",
            Port::Storport => "STORPORT.SYS",
        }
    }

    /// The name of a service or event in this port's vocabulary.
    pub(crate) const fn pick(self, scsi: &'static str, stor: &'static str) -> &'static str {
        match self {
            Port::ScsiPort => scsi,
            Port::Storport => stor,
        }
    }
}

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
    /// `HwStorBuildIo`.
    BuildIo,
    /// `HwStorPassiveInitializeRoutine`.
    PassiveInitialize,
    /// `HwStorDpcRoutine`.
    Dpc,
    /// The `STOR_SYNCHRONIZED_ACCESS` routine passed to `StorPortSynchronizeAccess`.
    SynchronizedAccess,
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
            Routine::BuildIo => "HwStorBuildIo",
            Routine::PassiveInitialize => "HwStorPassiveInitializeRoutine",
            Routine::Dpc => "HwStorDpcRoutine",
            Routine::SynchronizedAccess => "SynchronizedAccessRoutine",
        }
    }

    /// The routine's name in the documentation of `port`.
    pub(crate) const fn name_in(self, port: Port) -> &'static str {
        match (port, self) {
            (Port::ScsiPort, _)
            | (_, Routine::DriverEntry | Routine::EnableCallback | Routine::DisableCallback)
            | (Port::Storport, Routine::BuildIo | Routine::PassiveInitialize | Routine::Dpc | Routine::SynchronizedAccess) => self.name(),
            (Port::Storport, Routine::FindAdapter) => "HwStorFindAdapter",
            (Port::Storport, Routine::Initialize) => "HwStorInitialize",
            (Port::Storport, Routine::StartIo) => "HwStorStartIo",
            (Port::Storport, Routine::Interrupt) => "HwStorInterrupt",
            (Port::Storport, Routine::ResetBus) => "HwStorResetBus",
            (Port::Storport, Routine::AdapterControl) => "HwStorAdapterControl",
            (Port::Storport, Routine::Timer) => "HwStorTimer",
        }
    }

    /// What a call costs in the latency model: `HwScsiStartIo` [`PortConfig::start_io_cost_ns`],
    /// the other run-time routines [`PortConfig::call_cost_ns`]. Load, initialisation and
    /// adapter control cost nothing; their waits are the `ScsiPortStallExecution` calls they
    /// make.
    ///
    /// Storport's `HwStorBuildIo` is part of the submission path, like `StartIo`; its DPC
    /// routine costs what the deferred callbacks cost; a `StorPortSynchronizeAccess` routine is
    /// part of its caller's call.
    fn cost(self, cfg: &PortConfig) -> Option<&RangeInclusive<u64>> {
        match self {
            Routine::StartIo | Routine::BuildIo => Some(&cfg.start_io_cost_ns),
            Routine::Interrupt | Routine::EnableCallback | Routine::DisableCallback | Routine::Timer | Routine::ResetBus | Routine::Dpc => {
                Some(&cfg.call_cost_ns)
            }
            Routine::DriverEntry
            | Routine::FindAdapter
            | Routine::Initialize
            | Routine::AdapterControl
            | Routine::PassiveInitialize
            | Routine::SynchronizedAccess => None,
        }
    }

    /// Driver Verifier's time limit (0x1002), in ns; `None` = exempt (`DT:scsi-verification`).
    /// Storport's passive initialisation routine runs at `PASSIVE_LEVEL` like `FindAdapter` and is
    /// exempt as it is.
    const fn limit_ns(self) -> Option<u64> {
        match self {
            Routine::DriverEntry | Routine::FindAdapter | Routine::PassiveInitialize => None,
            Routine::Initialize => Some(5_000_000_000),
            _ => Some(500_000_000),
        }
    }
}

/// One routine call on this thread's context stack. It names its machine and adapter without
/// holding a count on them ([`CallArc`]): the call that put it there ([`MachineCore::call_held`])
/// borrows both `Arc`s throughout and takes it off the stack before it returns, or as it unwinds
/// ([`PopOnUnwind`]).
pub(crate) struct CallCtx {
    pub(crate) machine: CallArc<MachineCore>,
    pub(crate) adapter: Option<CallArc<Adapter>>,
    pub(crate) routine: Routine,
    /// The routine's stalls that its CPU time does not show: virtual (deterministic schedule),
    /// or slept (concurrent schedule, `ScsiPortStallExecution` of a millisecond or more); and
    /// the total stall it asked for (µs).
    pub(crate) stall_ns: u64,
    pub(crate) stall_total_us: u64,
    /// The locks the port holds around this call (Storport: `stor::HELD_*` bits).
    pub(crate) held: u8,
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
pub(crate) fn current() -> Option<(CallArc<MachineCore>, Option<CallArc<Adapter>>, Routine)> {
    with_ctx(|c| {
        c.map(|c| {
            // SAFETY: a handle made here serves one service call, which returns before the
            // routine that made it does, and so before this `CallCtx` leaves the stack; the
            // `CallCtx`'s own handles name objects its routine's caller keeps alive until then
            // (`call_held`).
            let machine = unsafe { CallArc::of(&c.machine) };
            // SAFETY: as for `machine`.
            let adapter = c.adapter.as_deref().map(|a| unsafe { CallArc::of(a) });
            (machine, adapter, c.routine)
        })
    })
}

/// An `Arc` of the current call's context (its machine or adapter): a handle to the same object
/// that leaves the reference count alone. Every routine call (one or two per I/O) and every
/// service call the miniport makes (several per I/O) would otherwise pay an atomic increment and
/// decrement for each of the two, each a full barrier. Two places make one, and neither lets it
/// outlive an `Arc` that someone holds throughout: [`MachineCore::call_held`], for the `CallCtx` of
/// a routine call, from the `Arc`s it borrows for the whole call, and [`current`], for a service
/// call, from that `CallCtx`, which stays on the stack until the routine returns. A handle is
/// neither `Send` nor stored anywhere else.
pub(crate) struct CallArc<T>(std::mem::ManuallyDrop<Arc<T>>, std::marker::PhantomData<*const ()>);

impl<T> CallArc<T> {
    /// # Safety
    /// The allocation `a` points to must outlive the handle (see the type's doc).
    unsafe fn of(a: &Arc<T>) -> Self {
        // SAFETY: `Arc::from_raw` of `Arc::as_ptr` of a live `Arc` names the same allocation;
        // the handle is never dropped (`ManuallyDrop`), so the count it did not take is never
        // given back; the caller keeps the allocation alive for the handle's life (a nested call
        // may move the handle when the stack grows, never the object it points to).
        Self(std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(Arc::as_ptr(a)) }), std::marker::PhantomData)
    }
}

impl<T> std::ops::Deref for CallArc<T> {
    type Target = Arc<T>;
    fn deref(&self) -> &Arc<T> {
        &self.0
    }
}

/// Takes a routine call's `CallCtx` off this thread's context stack if the call unwinds
/// instead of returning (a call that returns takes it off itself, and forgets this guard): the
/// entry's handles hold no count ([`CallArc`]), so it must not outlive the call that borrows the
/// `Arc`s they name.
struct PopOnUnwind;

impl Drop for PopOnUnwind {
    fn drop(&mut self) {
        CTX.with(|c| {
            if let Ok(mut v) = c.try_borrow_mut() {
                v.pop();
            }
        });
    }
}

/// Runs `f` with this thread's stack of current calls, outermost first.
pub(crate) fn with_stack<R>(f: impl FnOnce(&[CallCtx]) -> R) -> R {
    CTX.with(|c| match c.try_borrow() {
        Ok(v) => f(&v),
        Err(_) => f(&[]),
    })
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
    /// callback runs. On Storport: `HwStorInterrupt` after every register access of a routine
    /// that does not hold the interrupt lock and after each of its `StorPortSynchronizeAccess`
    /// calls, again while the line stays up unclaimed (`MachineCore::interrupt_between_accesses`).
    pub adversarial: bool,
    /// Trace every register access too.
    pub trace_registers: bool,
    /// Trace the HBA's own accesses to memory too (`dma` events: descriptors, SG lists, data,
    /// sense, ring indexes and completions, each with its bus address, length and a digest of
    /// the bytes; `TRACE.md`). Off by default: a data transfer adds an event per segment. Only
    /// HBAs that see their own DMA (the device model) report it.
    pub trace_dma: bool,
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
            trace_dma: false,
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

/// A block with a stable address the miniport owns (device and LU extensions): from the heap,
/// or, for a device extension in the full quarantine, a mapping of its own ([`Self::mapped`]),
/// which the port guards and keeps when it releases it ([`Self::bury`]).
pub(crate) struct ExtBlock(ExtMem);

enum ExtMem {
    Heap(Box<[u128]>),
    Mapped { base: usize, len: usize, guard: Option<GuardHandle> },
}

impl ExtBlock {
    fn zeroed(bytes: usize) -> Self {
        Self(ExtMem::Heap(vec![0u128; bytes.div_ceil(16).max(1)].into_boxed_slice()))
    }

    /// `bytes` zeroed bytes on pages of their own; from the heap when no mapping can be had.
    fn mapped(bytes: usize) -> Self {
        let len = bytes.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
        // SAFETY: a fresh private anonymous mapping (zero-filled); no existing memory is affected.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return Self::zeroed(bytes);
        }
        Self(ExtMem::Mapped { base: p as usize, len, guard: None })
    }

    pub(crate) fn ptr(&self) -> PVOID {
        match &self.0 {
            ExtMem::Heap(b) => b.as_ptr().cast_mut().cast(),
            ExtMem::Mapped { base, .. } => *base as PVOID,
        }
    }

    /// The port releases the block: a mapped one is guarded (`PROT_NONE`) and registered, so that
    /// a late access by the miniport, or by anything else, faults and is reported instead of
    /// landing in memory someone else owns; the caller keeps it. `None`: a heap block, which goes.
    fn bury(mut self, owner: u64) -> Option<Self> {
        let ExtMem::Mapped { base, len, guard } = &mut self.0 else { return None };
        *guard = guard::register(owner, *base, *len, GuardKind::ReleasedExtension, 0);
        if guard.is_some() {
            // SAFETY: the block's own mapping; the miniport was given a new extension.
            unsafe { libc::mprotect(*base as *mut libc::c_void, *len, libc::PROT_NONE) };
        }
        Some(self)
    }
}

impl Drop for ExtBlock {
    fn drop(&mut self) {
        if let ExtMem::Mapped { base, len, guard } = &mut self.0 {
            // Unregistered before the memory goes, so that no fault can hit an unwatched page.
            guard.take();
            // SAFETY: the mapping `mapped` created with this length; nothing uses it any more.
            unsafe { libc::munmap(*base as *mut libc::c_void, *len) };
        }
    }
}

pub(crate) struct ConfigBox {
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
    /// A Storport list too long for the block's room, guarded on its own (the SRB page,
    /// extension, sense buffer and list room are guarded with their run, `arena.rs`).
    guards: Vec<GuardHandle>,
    /// The guarded stand-in handed out as `DataBuffer` when `MapBuffers` is FALSE.
    data_guard: Option<Reservation>,
    srb: DmaRegion,
    ext: Option<DmaRegion>,
    sense: Option<DmaRegion>,
    data: Option<DmaRegion>,
    /// Storport: the room in the block's slot for its `STOR_SCATTER_GATHER_LIST`, lent with the
    /// SRB page and guarded with its run.
    list: Option<Box<DmaRegion>>,
    /// Storport: a list too long for `list`, in memory of its own, guarded on its own.
    sg: Option<DmaRegion>,
    /// Whether the request's list is in `list`.
    sg_in_list: bool,
    /// Where the SRB page, extension, sense buffer and list came from.
    slot: arena::SlotRef,
}

impl SrbBlock {
    fn srb_ptr(&self) -> *mut SCSI_REQUEST_BLOCK {
        self.srb.va().cast()
    }

    /// Storport: the request's scatter/gather list, wherever it was built.
    fn sg_list(&self) -> Option<&DmaRegion> {
        if self.sg_in_list { self.list.as_deref() } else { self.sg.as_ref() }
    }

    /// Gives the SRB page, extension, sense buffer and list room back to their slot (their run
    /// unguards them when it is reused), or, `release` (the full quarantine, whose blocks are out
    /// of the device's reach for good), releases them; a list of its own, the data buffer and its
    /// stand-in go.
    fn recycle(self, arena: Option<&mut arena::Arena>, release: bool) {
        let SrbBlock { guards, data_guard, srb, ext, sense, data, list, sg, sg_in_list: _, slot } = self;
        // The list is guarded on its own: accessible again before its guard goes, so that no
        // fault can hit a protected page nobody watches.
        if !guards.is_empty()
            && let Some(l) = &sg
        {
            l.set_cpu_access(true);
        }
        drop(guards);
        drop(data_guard);
        drop(data);
        drop(sg);
        if let Some(a) = arena {
            a.put_back(slot, (!release).then_some((srb, ext, sense, list)));
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
    /// A request the port makes for itself (Storport's reset SRBs): nobody waits for it, it
    /// counts nowhere and changes no LU table.
    Port,
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
    /// Storport: the scatter/gather list as built, which the miniport must not modify.
    sg_snapshot: Option<Box<[u8]>>,
    /// Storport: where the request is between the port and the miniport.
    stage: stor::Stage,
    /// The submitter's [`PortBuffer`] (its region is `block.data` while the request is out):
    /// where it came from and its length, to hand it back at completion.
    port_buffer: Option<(Arc<dyn DmaSpace>, usize)>,
}

// SAFETY: the snapshot's pointers are copies kept only for comparison, never dereferenced; the
// block's regions are Send.
unsafe impl Send for ActiveSrb {}

/// The allocation of a boxed [`ActiveSrb`] whose request has ended, empty.
type SpareBox = Box<std::mem::MaybeUninit<ActiveSrb>>;

/// Spare boxes kept at most: a queue depth's worth, beyond the quarantine's.
const SPARE_BOXES: usize = 256;

impl ActiveSrb {
    /// `a` in a box: a spare one if there is one (`spare_boxes`), else a new one.
    fn boxed(a: Self, spares: &mut Vec<SpareBox>) -> Box<Self> {
        match spares.pop() {
            Some(b) => Box::write(b, a),
            None => Box::new(a),
        }
    }

    /// The request's block, moved out of its box; the rest of the request is dropped in place
    /// and the emptied box kept in `spares` (up to [`SPARE_BOXES`]) for [`Self::boxed`]. Field
    /// by field, because the whole request (some 600 bytes) read out at once is a `memcpy` per
    /// request, which the bench would count as a payload copy.
    fn into_block(b: Box<Self>, spares: &mut Vec<SpareBox>) -> SrbBlock {
        fn no_drop<T: Copy>(_: &T) {}
        // Every field, named: a field added to `ActiveSrb` must be dropped below too.
        let Self { preq: _, block: _, snapshot: _, deadline_ns: _, tag: _, timed_out: _, sg_snapshot: _, stage: _, port_buffer: _ } = &*b;
        // SAFETY: the box's own allocation, retyped as `ManuallyDrop` (transparent): the request
        // is taken apart below, field by field, and never dropped whole.
        let mut whole = unsafe { Box::from_raw(Box::into_raw(b).cast::<std::mem::ManuallyDrop<Self>>()) };
        let this: &mut Self = &mut whole;
        // SAFETY: moved out once; the field is neither read nor dropped again.
        let block = unsafe { std::ptr::read(&raw const this.block) };
        // SAFETY: dropped once, never used again.
        unsafe { std::ptr::drop_in_place(&raw mut this.preq) };
        // SAFETY: as above.
        unsafe { std::ptr::drop_in_place(&raw mut this.sg_snapshot) };
        // SAFETY: as above.
        unsafe { std::ptr::drop_in_place(&raw mut this.port_buffer) };
        // The rest need no drop (a field that came to need one would not compile here).
        no_drop(&this.snapshot);
        no_drop(&this.deadline_ns);
        no_drop(&this.tag);
        no_drop(&this.timed_out);
        no_drop(&this.stage);
        // SAFETY: the same allocation, retyped as `MaybeUninit` (transparent too), whose drop
        // or reuse never touches the fields moved out or dropped above.
        let spare = unsafe { Box::from_raw(Box::into_raw(whole).cast::<std::mem::MaybeUninit<Self>>()) };
        if spares.len() < SPARE_BOXES {
            spares.push(spare);
        }
        block
    }
}

struct Quarantined {
    srb: usize,
    /// The completed request, whose `block` is kept (poisoned and guarded) until evicted, so a
    /// late access faults. Kept in its box: the block alone is some 360 bytes, which would move
    /// into the list and out again at every completion.
    done: Box<ActiveSrb>,
}

#[derive(Default)]
pub(crate) struct Lu {
    ext: Option<ExtBlock>,
    exists: bool,
    queue: VecDeque<PortReq>,
    /// Active SRB addresses by queue tag (`SP_UNTAGGED` for the untagged one).
    active: TagTable,
    ready_for_more: bool,
    frozen: bool,
    next_tag: u8,
}

/// A logical unit's active SRBs by queue tag: a slot per tag (0: free), so that a tag is taken,
/// looked up and ended with an index, as a request starts and completes (a map searched and
/// rebalanced twice per request cost more than the request's own port bookkeeping).
pub(crate) struct TagTable {
    srbs: Box<[usize; 256]>,
    len: usize,
}

impl Default for TagTable {
    fn default() -> Self {
        Self { srbs: Box::new([0; 256]), len: 0 }
    }
}

impl TagTable {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn contains_key(&self, tag: u8) -> bool {
        self.srbs[usize::from(tag)] != 0
    }

    pub(crate) fn get(&self, tag: u8) -> Option<usize> {
        Some(self.srbs[usize::from(tag)]).filter(|s| *s != 0)
    }

    /// Records `srb` (never 0: an address) under `tag`.
    pub(crate) fn insert(&mut self, tag: u8, srb: usize) {
        let slot = &mut self.srbs[usize::from(tag)];
        if *slot == 0 && srb != 0 {
            self.len += 1;
        }
        *slot = srb;
    }

    pub(crate) fn remove(&mut self, tag: u8) -> Option<usize> {
        let srb = std::mem::take(&mut self.srbs[usize::from(tag)]);
        if srb == 0 {
            return None;
        }
        self.len -= 1;
        Some(srb)
    }
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
    /// Device extensions released by a PnP stop/start, kept guarded (the full quarantine).
    released_devexts: VecDeque<ExtBlock>,
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
    lus: sorted::SortedMap<LuAddr, Lu>,
    lu_cursor: Option<LuAddr>,
    priority: VecDeque<PortReq>,
    /// The outstanding SRBs by address. Boxed: an `ActiveSrb` is some 600 bytes, and a map's
    /// nodes move their values on every insert and remove.
    active: sorted::SortedMap<usize, Box<ActiveSrb>>,
    /// (`deadline_ns`, request id) of every SRB in `active` that has not timed out: the
    /// scheduler's next timeout is the first, without a scan of `active` per step. The id, not
    /// the SRB's address, breaks ties: ids grow with every start, so a new entry goes at the end.
    deadlines: sorted::SortedSet<(u64, u64)>,
    quarantine: VecDeque<Quarantined>,
    /// The boxes of requests that left the quarantine, for the next ones to start
    /// ([`ActiveSrb::boxed`]): a malloc and a free per request less.
    spare_boxes: Vec<SpareBox>,
    /// The SRB blocks (`arena.rs`), made with the first request.
    pool: Option<arena::Arena>,
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
    /// Re-enumerations taken from `rescan` whose INQUIRYs are still being submitted: work the
    /// upper edge must wait for as it waits for queued requests (`MachineCore::busy`).
    rescanning: u32,
    pub(crate) stats: Stats,
    /// Storport's own state for the adapter (`None` on a SCSI Port machine).
    pub(crate) stor: Option<Box<stor::StorSt>>,
}

impl AdapterSt {
    fn new() -> Self {
        Self {
            phase: Phase::Idle,
            hw: None,
            devext: None,
            released_devexts: VecDeque::new(),
            config: None,
            arg_string: None,
            caps: Caps::default(),
            mappings: Vec::new(),
            uncached: None,
            uncached_calls: 0,
            find_cfg: 0,
            uncached_snapshot: None,
            bus_data: Vec::new(),
            lus: sorted::SortedMap::default(),
            lu_cursor: None,
            priority: VecDeque::new(),
            active: sorted::SortedMap::default(),
            deadlines: sorted::SortedSet::default(),
            quarantine: VecDeque::new(),
            spare_boxes: Vec::new(),
            pool: None,
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
            rescanning: 0,
            stats: Stats::default(),
            stor: None,
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

    /// The miniport's interrupt routine, whichever port registered it.
    pub(crate) fn isr(&self) -> sys::PHW_INTERRUPT {
        match &self.stor {
            Some(s) => s.hw.0.HwInterrupt,
            None => self.hw.and_then(|h| h.0.HwInterrupt),
        }
    }

    /// The interrupt routine to call when the adapter's line is dispatched: connected, outside
    /// a deferral window and not being configured.
    pub(crate) fn isr_to_dispatch(&self) -> sys::PHW_INTERRUPT {
        if self.connected && !self.deferred() && !self.in_running_config { self.isr() } else { None }
    }

    /// The miniport's `HwAdapterControl`, whichever port registered it.
    pub(crate) fn adapter_control_fn(&self) -> sys::PHW_ADAPTER_CONTROL {
        match &self.stor {
            Some(s) => s.hw.0.HwAdapterControl,
            None => self.hw.and_then(|h| h.0.HwAdapterControl),
        }
    }

    /// Whether the query reported control type `ty`.
    pub(crate) fn supports(&self, ty: i32) -> bool {
        let i = usize::try_from(ty).unwrap_or(usize::MAX);
        match &self.stor {
            Some(s) => s.supported.get(i).copied().unwrap_or(false),
            None => self.supported.get(i).copied().unwrap_or(false),
        }
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
    /// The interrupt lock (`InterruptLock` for Storport).
    pub(crate) intlock: PortLock,
    /// Storport's `StartIo` lock (`StartIoLock`); unused by SCSI Port.
    pub(crate) startio_lock: PortLock,
    /// Storport: threads inside `HwStorBuildIo` or `HwStorStartIo` now, to count the ISR and DPC
    /// calls that overlap them (full duplex, [`Stats::overlapped_submissions`]).
    pub(crate) submitting: AtomicUsize,
    /// The port's state of the adapter: a lock a deterministic step holds once for all its looks
    /// (`state_lock.rs`).
    pub(crate) st: state_lock::StateLock<AdapterSt>,
    /// The current device extension address (for the cross-check of every service call).
    pub(crate) devext: AtomicUsize,
    /// The requested bus resets that have run, counted, and signalled each time
    /// ([`Self::reset_ran`]); `wait_reset` sleeps on them.
    resets_run: Mutex<u64>,
    reset_cv: Condvar,
    /// Set (under `st`) when a bus reset is requested, cleared (under `st`) when the port finds
    /// none waiting: every scheduler step asks, and most steps need not lock `st` to learn
    /// that the answer is no.
    pub(crate) resets_wanted: std::sync::atomic::AtomicBool,
    /// The line level last noted and traced (`note_line_locked`): changed only under `st`, so
    /// that edges are traced in order, and read without it by `note_line` to see that the line
    /// has not moved.
    pub(crate) line_noted: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

/// One step of xorshift64 (the state must not be 0).
fn xorshift(r: &mut u64) -> u64 {
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    *r
}

/// The next draw of a deterministic-schedule generator: a load and a store, no lock. Only that
/// schedule draws, and its steps run one at a time (which is what makes it deterministic), so
/// nothing else moves the state between the two; a `Mutex` cost two locked instructions per
/// draw, each a full barrier (bench/locked.rs). Were two threads to step one machine at once
/// anyway, both could draw the same number: a repeat, never a torn or unsafe value.
fn draw_once(state: &AtomicU64) -> u64 {
    let mut s = state.load(Ordering::Relaxed);
    let r = xorshift(&mut s);
    state.store(s, Ordering::Relaxed);
    r
}

impl AsRef<state_lock::StateLock<AdapterSt>> for Arc<Adapter> {
    fn as_ref(&self) -> &state_lock::StateLock<AdapterSt> {
        &self.st
    }
}

impl Adapter {
    pub(crate) fn new(index: usize, hba: Arc<dyn Hba>, dma: Arc<dyn DmaSpace>, line: u32, args: Option<String>) -> Self {
        Self {
            index,
            hba,
            dma,
            line,
            args,
            intlock: PortLock::default(),
            startio_lock: PortLock::default(),
            submitting: AtomicUsize::new(0),
            st: state_lock::StateLock::new(AdapterSt::new()),
            devext: AtomicUsize::new(0),
            resets_run: Mutex::new(0),
            reset_cv: Condvar::new(),
            resets_wanted: std::sync::atomic::AtomicBool::new(false),
            line_noted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn st(&self) -> state_lock::StateGuard<'_, AdapterSt> {
        self.st.lock()
    }

    /// One turn of the device model (`Hba::run_due`) with the DMA map held for the whole turn
    /// (`DmaSpace::hold`), rather than locked for each of its accesses.
    pub(crate) fn run_device(&self, now_ns: u64) {
        self.dma.hold(&mut || {
            self.hba.run_due(now_ns);
        });
    }

    fn intlock(&self) -> PortLockGuard<'_> {
        self.intlock.lock()
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
        // Counted under the look that found it pending: a reset that runs after the look is
        // counted after `seen`, and its signal comes once this thread waits.
        let mut run = lock(&self.resets_run);
        let seen = *run;
        drop(st);
        self.reset_cv.wait_while_for(&mut run, |n| *n == seen, max);
        drop(run);
        Self::reset_state_of(&self.st(), ticket)
    }

    /// Wakes [`Self::wait_reset`]: a requested bus reset has run (and left the state's queue).
    pub(crate) fn reset_ran(&self) {
        *lock(&self.resets_run) += 1;
        self.reset_cv.notify_all();
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
    /// What `StorPortInitialize` registered.
    pub(crate) stor_registrations: Vec<stor::StorHwInit>,
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
    /// The port driver this machine emulates.
    pub(crate) port: Port,
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
    /// Completions not taken yet, by ticket. A hash map: a `Completion` is some 200 bytes, and
    /// a B-tree's nodes move their values on every insert and remove.
    pub(crate) completions: Mutex<rustc_hash::FxHashMap<u64, Completion>>,
    /// How many `completions` holds, stored under its lock after each change: the submitter
    /// asks after every scheduler step, and most of the time the answer is none.
    pub(crate) completions_waiting: AtomicUsize,
    pub(crate) done_cv: Signal,
    pub(crate) next_id: AtomicU64,
    /// Wake-ups of the concurrent schedule's threads: device, interrupt dispatch, DPC.
    pub(crate) chans: [Chan; 3],
    /// The event choice's draws (deterministic schedule, [`draw_once`]).
    pub(crate) rng: AtomicU64,
    /// The latency model's draws (deterministic schedule), apart from the event choice.
    pub(crate) latency_rng: AtomicU64,
    /// Deterministic schedule: for each line that wants service, when its ISR dispatch becomes
    /// eligible (interrupt latency, drawn when the port first saw it asserted). Held with the
    /// adapters' states ([`MachineCore::hold_adapters`]).
    pub(crate) irq_due: state_lock::StateLock<sorted::SortedMap<u32, u64>>,
    /// How many lines `irq_due` holds, stored under its lock after each change: every step
    /// asks, and most of the time the answer is none and no line is asserted.
    pub(crate) irq_due_lines: AtomicUsize,
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

/// A condition variable that knows whether anyone waits on it. std's `notify_all` makes a
/// futex system call every time, and most notifications have nobody to wake: every kick and
/// every completion in the deterministic schedule, where no thread ever waits.
///
/// The rule that makes skipping the call safe: a waiter counts itself while it holds the mutex
/// it checked its condition under (so before `wait_timeout` releases it), and a notifier changes
/// the condition under that mutex before it looks at the count. Either the waiter saw the change,
/// or the notifier sees the waiter.
#[derive(Default)]
pub(crate) struct Signal {
    cv: Condvar,
    waiters: AtomicUsize,
}

impl Signal {
    /// Wakes every waiter, if there is one.
    pub(crate) fn notify_all(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.cv.notify_all();
        }
    }

    /// `Condvar::wait_timeout`, counted; `g` guards the condition the caller checked.
    pub(crate) fn wait_timeout<'a, T>(&self, mut g: MutexGuard<'a, T>, max: std::time::Duration) -> MutexGuard<'a, T> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        self.cv.wait_for(&mut g, max);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        g
    }
}

/// A wake-up channel: a counter and a condition variable. Waiting threads only sleep while the
/// counter is unchanged, so a kick between two waits is never lost.
#[derive(Default)]
pub(crate) struct Chan {
    n: Mutex<u64>,
    cv: Signal,
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
            let g2 = self.cv.wait_timeout(g, max);
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
pub(crate) enum ResetReason {
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
pub(crate) enum Action {
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

    #[inline]
    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Inlined: every scheduler step asks, and the answer is almost always "not halted".
    #[inline]
    pub(crate) fn halt_error(&self) -> Option<Error> {
        if self.is_halted() { self.bugcheck_error() } else { None }
    }

    #[cold]
    fn bugcheck_error(&self) -> Option<Error> {
        lock(&self.bugcheck).clone().map(Error::BugCheck)
    }

    /// Wakes the concurrent schedule's threads. The deterministic schedule has none (its loop
    /// looks at everything each step), so a kick there is nothing: no lock, no counter.
    pub(crate) fn kick(&self) {
        if self.deterministic {
            return;
        }
        for c in &self.chans {
            c.kick();
        }
    }

    /// Wakes the DPC thread (readiness, completions, deferrals, timers); see [`Self::kick`].
    pub(crate) fn kick_dpc(&self) {
        if !self.deterministic {
            self.chans[CHAN_DPC].kick();
        }
    }

    /// Wakes the interrupt-dispatch thread (a line or a deferral changed); see [`Self::kick`].
    pub(crate) fn kick_irq(&self) {
        if !self.deterministic {
            self.chans[CHAN_IRQ].kick();
        }
    }

    /// A service's name on this machine's port: `ScsiPortX` on SCSI Port, `StorPortX` on Storport.
    pub(crate) fn svc(&self, scsi: &'static str) -> &'static str {
        if self.port == Port::ScsiPort {
            return scsi;
        }
        stor::service_name(scsi)
    }

    /// Inlined, so that with tracing off an event costs one load (the clock is not read).
    #[inline]
    pub(crate) fn trace(&self, adapter: Option<usize>, ev: &'static str, fields: &[(&'static str, J)]) {
        if self.tracer.enabled() {
            self.tracer.emit(self.now(), adapter, ev, fields);
        }
    }

    fn rand(&self) -> u64 {
        draw_once(&self.rng)
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
        let r = draw_once(&self.latency_rng);
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
    ///
    /// Checks shared by both ports name the SCSI Port rule; on a Storport machine it becomes the
    /// Storport rule that states the same thing ([`Rule::on_port`]).
    pub(crate) fn violation(&self, adapter: Option<usize>, rule: Rule, params: [u64; 3], message: String) {
        let routine = with_ctx(|c| c.map(|c| c.routine.name_in(self.port)));
        self.violation_in(adapter, rule, params, message, routine);
    }

    /// [`MachineCore::violation`] naming the miniport routine, for a check made after the
    /// routine returned.
    pub(crate) fn violation_in(&self, adapter: Option<usize>, rule: Rule, params: [u64; 3], message: String, routine: Option<&'static str>) {
        let rule = rule.on_port(self.port);
        if !self.verifier.checks(rule) {
            return;
        }
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
            && let Some(mut st) = a.st.try_lock()
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
        self.call_held(ad, routine, 0, extra, f)
    }

    /// [`Self::call`] for a routine around which the port holds the locks `held`
    /// (`stor::HELD_*`; what Storport's lock rules are checked against).
    pub(crate) fn call_held<R: Copy + Into<i64>>(
        self: &Arc<Self>,
        ad: Option<&Arc<Adapter>>,
        routine: Routine,
        held: u8,
        extra: &[(&'static str, J)],
        f: impl FnOnce() -> R,
    ) -> R {
        let idx = ad.map(|a| a.index);
        let name = routine.name_in(self.port);
        if self.tracer.enabled() {
            let mut fields = vec![("routine", J::Static(name))];
            fields.extend_from_slice(extra);
            self.trace(idx, "call", &fields);
        }
        if self.direct_registers.load(Ordering::Relaxed) {
            guard::ensure_altstack();
        }
        let pushed = CTX.with(|c| {
            let Ok(mut v) = c.try_borrow_mut() else { return false };
            v.push(CallCtx {
                // SAFETY: `self` and `ad` are borrowed for the whole of this call, and the entry
                // leaves the stack before it returns (below) or as it unwinds (`PopOnUnwind`).
                machine: unsafe { CallArc::of(self) },
                // SAFETY: as for `machine`.
                adapter: ad.map(|a| unsafe { CallArc::of(a) }),
                routine,
                stall_ns: 0,
                stall_total_us: 0,
                held,
            });
            true
        });
        let unwinding = pushed.then_some(PopOnUnwind);
        let cpu_start = if self.deterministic { 0 } else { thread_cpu_ns() };
        let r = f();
        let cpu = if self.deterministic { 0 } else { thread_cpu_ns().saturating_sub(cpu_start) };
        std::mem::forget(unwinding);
        let (ctx, depth) = CTX.with(|c| match c.try_borrow_mut() {
            Ok(mut v) => (if pushed { v.pop() } else { None }, v.len()),
            Err(_) => (None, 0),
        });
        if self.port == Port::Storport {
            // A lock the routine took and did not give back is released here, and reported.
            self.stor_locks_left(ad, routine, depth);
        }
        let (stall_ns, stall_total_us) = ctx.map_or((0, 0), |c| (c.stall_ns, c.stall_total_us));
        // The latency model: the call took this long (virtual time; device events that fell due
        // meanwhile run in the scheduler's next steps).
        let cost = routine.cost(&self.cfg).map_or(0, |r| self.spend(r));
        let value: i64 = r.into();
        if self.tracer.enabled() {
            // The call's request goes on its return too: in the concurrent schedule two calls of
            // one routine can end in either order, and a reader pairs each return with its call.
            match extra.iter().find(|(k, _)| *k == "srb") {
                Some(srb) => self.trace(idx, "ret", &[("routine", J::Static(name)), ("value", J::I(value)), srb.clone()]),
                None => self.trace(idx, "ret", &[("routine", J::Static(name)), ("value", J::I(value))]),
            }
        }
        self.check_faults(idx, name);
        // Storport states its limit per stall ("less than a full millisecond",
        // `DDI-storport:nf-storport-storportstallexecution`), not per routine.
        if stall_total_us > 1000 && self.port == Port::ScsiPort {
            self.violation(
                idx,
                Rule::StallOverMillisecond,
                [stall_total_us, 0, 0],
                format!("{name} stalled {stall_total_us} µs in total"),
            );
        }
        // How long the call took in the machine's time: in the deterministic schedule that is
        // virtual (the call cost of the latency model and the virtual stalls); the host's own
        // time spent there depends on the host's load (and on valgrind, or a signal per emulated
        // register access) and is none of the driver's doing. In the concurrent schedule it is
        // the CPU time the calling thread spent in the routine, plus what it slept in the port's
        // stall service: a routine runs at DISPATCH_LEVEL or above and is not preempted on
        // Windows, so the wall-clock time a loaded host takes the thread away for is no more the
        // driver's doing than valgrind's slowness is (it made 0x1002 a false bug check in soaks
        // at nice 19 on a loaded machine: "HwScsiStartIo took 686 ms").
        let took = if self.deterministic { stall_ns.saturating_add(cost) } else { cpu.saturating_add(stall_ns).saturating_add(cost) };
        if routine == Routine::Interrupt && took > 50_000 {
            self.violation(idx, Rule::IsrOver50us, [took / 1000, 0, 0], format!("{name} ran {} µs", took / 1000));
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
                    format!("{name} took {} ms (limit {} ms)", took / 1_000_000, scaled / 1_000_000),
                );
            }
        }
        r
    }

    /// Turns faults the SIGSEGV handler recorded for this machine into violations, naming
    /// `routine`, which has just returned, for those its thread made.
    pub(crate) fn check_faults(&self, adapter: Option<usize>, routine: &'static str) {
        let n = guard::fault_count();
        // Asked after every routine and nearly always answered no: a load says so without the
        // locked exchange (a full barrier) the swap below costs.
        if self.faults_seen.load(Ordering::Acquire) == n || self.faults_seen.swap(n, Ordering::AcqRel) == n {
            return;
        }
        for mut f in guard::take_faults(self.owner) {
            if f.kind == GuardKind::SrbRun {
                (f.kind, f.tag) = self.run_fault(f.addr);
            }
            let (rule, what) = match f.kind {
                GuardKind::ReleasedExtension => (Rule::ReleasedExtensionTouched, "a device extension the port released (PnP stop/start)"),
                GuardKind::Srb | GuardKind::SrbRun => (Rule::TouchedAfterCompletion, "a completed SRB"),
                GuardKind::SrbExtension => (Rule::TouchedAfterCompletion, "the SRB extension of a completed SRB"),
                GuardKind::SenseBuffer => (Rule::TouchedAfterCompletion, "the sense buffer of a completed SRB"),
                GuardKind::DataBuffer => (Rule::DataBufferNotMapped, "Srb->DataBuffer with MapBuffers FALSE"),
                GuardKind::Mmio => (Rule::DirectRegisterAccess, "a mapped register address directly"),
                GuardKind::MmioDirect => (Rule::DirectRegisterAccess, "a mapped register with an instruction the emulator cannot perform (not a plain 1-, 2- or 4-byte mov)"),
            };
            // Another thread's fault (the concurrent schedule) is its routine's, not this one's.
            let by = (f.tid == guard::thread_id()).then_some(routine);
            self.violation_in(
                adapter,
                rule,
                [f.addr as u64, 2, u64::from(f.write)],
                format!(
                    "the miniport {} {what} at {:#x} (srb {}){}",
                    if f.write { "wrote" } else { "read" },
                    f.addr,
                    f.tag,
                    by.map_or_else(String::new, |r| format!(" in {r}"))
                ),
                by,
            );
        }
    }
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), in ns: the time a miniport routine
/// ran, without the time the host's scheduler gave its CPU to others.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0))
}

/// The port's unit tests' machine: one PVSCSI model with a 1 MiB RAM disk at target 0, built
/// from `b` (schedule, port, verifier, arguments), the driver of `entry` loaded; with the model's
/// DMA space, for tests that count its regions.
#[cfg(test)]
pub(crate) fn test_rig(b: crate::MachineBuilder, device: crate::pvscsi::PvscsiConfig, entry: crate::DriverEntryFn) -> (crate::Machine, crate::mem::SimDma) {
    let dma = crate::mem::SimDma::default();
    let dev = crate::pvscsi::PvscsiDevice::new(device, Arc::new(dma.clone()), b.clock());
    dev.attach(0, crate::disk::Disk::ram(1 << 20).unwrap()).unwrap();
    let m = b.adapter(Arc::new(dev), Arc::new(dma.clone())).build();
    m.load_driver(entry).unwrap();
    (m, dma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvscsi::PvscsiConfig;
    use crate::{Machine, test_miniport};

    /// A routine call's context names its machine and adapter without counting them (`CallArc`),
    /// so it must never outlive the call: it leaves the stack when the call returns and when it
    /// unwinds (`PopOnUnwind`), and inside the call the port services find the right objects.
    #[test]
    fn a_routine_call_s_context_is_uncounted_and_leaves_the_stack_even_when_the_call_unwinds() {
        let b = Machine::builder().schedule(crate::Schedule::Deterministic { seed: 5 });
        let (m, _) = test_rig(b, PvscsiConfig::default(), test_miniport::driver_entry);
        let core = m.core();
        let ad = Arc::clone(&core.adapters[0]);
        let depth = || with_stack(<[_]>::len);
        assert_eq!(depth(), 0);
        let counts = (Arc::strong_count(core), Arc::strong_count(&ad));

        let found = core.call(Some(&ad), Routine::StartIo, &[], || {
            let same = current().is_some_and(|(mc, a, r)| {
                Arc::ptr_eq(&mc, core) && a.is_some_and(|a| Arc::ptr_eq(&a, &ad)) && r == Routine::StartIo
            });
            let uncounted = (Arc::strong_count(core), Arc::strong_count(&ad)) == counts;
            u8::from(same && uncounted && depth() == 1)
        });
        assert_eq!(found, 1, "inside the call: the context names this machine and adapter, counts untouched, one deep");
        assert_eq!(depth(), 0);

        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            core.call(Some(&ad), Routine::StartIo, &[], || -> u8 { panic!("the routine unwinds") })
        }));
        assert!(unwound.is_err());
        assert_eq!(depth(), 0, "an unwinding call left its uncounted context on the stack");
        assert_eq!((Arc::strong_count(core), Arc::strong_count(&ad)), counts);
    }

    /// `Machine::run_until` holds the adapters' states across deterministic steps, but lets go
    /// every few dozen: another thread's call gets in while the run goes on, not after it.
    #[test]
    fn another_thread_gets_at_the_adapter_during_a_long_deterministic_run() {
        let b = Machine::builder().schedule(crate::Schedule::Deterministic { seed: 5 }).argument_string("qd=8 tagged=1");
        let (m, _) = test_rig(b, PvscsiConfig::default(), test_miniport::driver_entry);
        // The disk's power-on UNIT ATTENTION first.
        let _ = m.execute(Request::read10(0, 0, 1, 512));
        for lba in 0..4000u32 {
            m.submit(Request::read10(0, lba % 2000, 1, 512)).unwrap();
        }
        let m = Arc::new(m);
        let (held, got_in) = (AtomicBool::new(false), AtomicBool::new(false));
        let done_when_it_got_in = std::thread::scope(|s| {
            let other = s.spawn(|| {
                while !held.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                let _ = m.stats_of(0);
                got_in.store(true, Ordering::Release);
            });
            m.run_until(|m| {
                held.store(true, Ordering::Release);
                got_in.load(Ordering::Acquire) || m.stats_of(0).completions == 4001
            })
            .unwrap();
            other.join().unwrap();
            m.stats_of(0).completions
        });
        assert!(done_when_it_got_in < 4001, "the other thread waited for the whole run ({done_when_it_got_in} completions)");
        m.run_until_idle().unwrap();
    }
}
