//! The Storport personality of the port: `storport.sys`'s side of every interaction with a
//! Storport miniport, on the machinery the SCSI Port side uses (requests, SRBs and their memory,
//! completion, interrupt dispatch, the schedules, the memory monitor, the trace).
//!
//! What differs from SCSI Port, and where it lives here:
//!
//! | Storport | module | page |
//! | --- | --- | --- |
//! | `StorPortInitialize` with Storport's `HW_INITIALIZATION_DATA`; `HwStorFindAdapter` alone, with Storport's `PORT_CONFIGURATION_INFORMATION`; `HwStorInitialize` under the interrupt lock; the passive routine; the control query | `load` | `DDI-storport:nf-storport-storportinitialize`, `DDI-storport:nc-storport-hw_find_adapter`, `DDI-storport:nc-storport-hw_initialize`, `DDI-storport:nc-storport-hw_adapter_control` |
//! | `HwStorBuildIo` with no lock, then `HwStorStartIo` under the `StartIo` lock, per-LU and per-adapter queue depths instead of `NextRequest` | `io` | `DDI-storport:nc-storport-hw_buildio`, `DDI-storport:nc-storport-hw_startio`, `KG:storport-queue-management` |
//! | `StorPortNotification`: completion, DPCs, the spin locks, `StorPortSynchronizeAccess` | `notify` | `DDI-storport:nf-storport-storportnotification`, `DDI-storport:nf-storport-storportacquirespinlock` |
//! | timeouts (the multi-tier reset), `HwStorResetBus` under the `StartIo` lock, pause, busy | `recovery` | `KG:multi-tier-reset-in-storport`, `DDI-storport:nc-storport-hw_reset_bus` |
//! | the services with Storport semantics (uncached extension, scatter/gather lists) | `services` | `DDI-storport:nf-storport-storportgetuncachedextension`, `DDI-storport:nf-storport-storportgetscattergatherlist` |
//!
//! The locks: Storport's interrupt lock is the adapter's `intlock`, the same lock SCSI Port's
//! routines run under; the `StartIo` lock is `Adapter::startio_lock`; each `STOR_DPC` has its
//! own. The port takes them around its calls as `DDI-storport:nf-storport-storportacquirespinlock`
//! tabulates for a full-duplex miniport; what a routine holds is recorded in its `CallCtx::held`,
//! what the miniport itself takes in a thread-local list, so every acquisition can be checked
//! against the table and the lock order before it is made.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use scsiport_sys as sys;
use smallvec::SmallVec;
use sys::storport as stor;

use super::{Adapter, LuAddr, MachineCore, PortLock, PortLockGuard, Routine};
use crate::mem::{DmaRegion, Layout};
use crate::request::Request;
use crate::verifier::Rule;

mod io;
mod load;
mod notify;
mod recovery;
mod services;

pub(crate) use services::service_name;

/// `CallCtx::held` bit: the port holds the interrupt lock around the call.
pub(crate) const HELD_INTERRUPT: u8 = 1;
/// `CallCtx::held` bit: the port holds the `StartIo` lock around the call.
pub(crate) const HELD_START_IO: u8 = 2;

/// How many `SCSI_ADAPTER_CONTROL_TYPE`s Storport's query offers: the types of
/// `DDI-storport:nc-storport-hw_adapter_control`'s table, `ScsiQuerySupportedControlTypes`
/// through `ScsiAdapterSetEventLogging`.
pub(crate) const STOR_CONTROL_TYPES: usize = 21;

/// Where a request is between Storport and the miniport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// In `HwStorBuildIo`, or between it and `HwStorStartIo`.
    Building,
    /// `HwStorBuildIo` returned FALSE without completing it: the miniport owns it and must
    /// complete it before its timeout (`DDI-storport:nc-storport-hw_buildio`).
    Kept,
    /// Handed to `HwStorStartIo` (and every SCSI Port request).
    Started,
}

/// Storport's `HW_INITIALIZATION_DATA` as registered (a copy).
#[derive(Clone, Copy)]
pub(crate) struct StorHwInit(pub(crate) stor::HW_INITIALIZATION_DATA);
// SAFETY: the raw pointers in it are entry points and ID strings of the miniport image, valid for
// the life of the process and never written through.
unsafe impl Send for StorHwInit {}
// SAFETY: as above.
unsafe impl Sync for StorHwInit {}

/// Storport's `PORT_CONFIGURATION_INFORMATION` and the access ranges it points to.
pub(crate) struct StorConfigBox {
    pub(crate) info: Box<stor::PORT_CONFIGURATION_INFORMATION>,
    pub(crate) ranges: Box<[sys::ACCESS_RANGE]>,
}
// SAFETY: owned heap blocks; the pointer inside `info` points into `ranges`, which lives as long.
unsafe impl Send for StorConfigBox {}

/// A `STOR_DPC` the miniport initialised with `StorPortInitializeDpc`.
pub(crate) struct DpcObj {
    /// The `HwStorDpcRoutine`.
    pub(crate) routine: usize,
    /// Queued by `StorPortIssueDpc` with these system arguments, not yet run.
    pub(crate) queued: Option<(usize, usize)>,
    /// Deterministic schedule: when the queued DPC may run (the DPC latency).
    pub(crate) due_ns: u64,
    /// An instance is running (Storport runs one at a time, `DDI-storport:nc-storport-hw_dpc_routine`).
    pub(crate) running: bool,
    /// The DPC's own lock (`DpcLock` with this object as `LockContext`).
    pub(crate) lock: Arc<PortLock>,
}

/// A step of the multi-tier reset (`KG:multi-tier-reset-in-storport`): the logical unit, then
/// the target, then the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    LogicalUnit,
    Device,
}

/// The next step of a multi-tier reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Escalation {
    /// Send the reset SRB of this tier for this unit (the device tier uses path and target).
    Send(Tier, LuAddr),
    /// `HwStorResetBus` for this bus.
    ResetBus(u8),
}

/// Storport's state for one adapter.
pub(crate) struct StorSt {
    pub(crate) hw: StorHwInit,
    pub(crate) config: Option<StorConfigBox>,
    /// `SynchronizationModel` is `StorSynchronizeFullDuplex`.
    pub(crate) full_duplex: bool,
    /// `MapBuffers` as `HwStorFindAdapter` left it.
    pub(crate) map_buffers: u8,
    /// `MaxNumberOfIO`: requests outstanding at the adapter.
    pub(crate) max_io: u32,
    /// Requests outstanding per logical unit (`InitialLunQueueDepth`, at most `MaxIOsPerLun`).
    pub(crate) lu_depth: u32,
    /// Scatter/gather elements per request (`NumberOfPhysicalBreaks`).
    pub(crate) max_breaks: u32,
    /// `MaximumTransferLength`.
    pub(crate) max_transfer: u32,
    /// `BusResetHoldTime` (µs): how long the adapter is paused after a reset.
    pub(crate) bus_reset_hold_us: u32,
    /// `STOR_ADAPTER_FEATURE_ABORT_COMMAND`: the miniport handles `SRB_FUNCTION_ABORT_COMMAND`.
    pub(crate) abort_command: bool,
    /// The `HwStorPassiveInitializeRoutine` `HwStorInitialize` enabled.
    pub(crate) passive: Option<usize>,
    /// The `ConfigInfo` passed to the running `HwStorFindAdapter`.
    pub(crate) find_cfg: usize,
    /// The `ConfigInfo` fields `StorPortGetUncachedExtension` depends on, when it was called.
    pub(crate) uncached_snapshot: Option<[u64; UNCACHED_FIELDS]>,
    /// DPC objects by address.
    pub(crate) dpcs: BTreeMap<usize, DpcObj>,
    /// `StorPortPause`: held until this time (or `StorPortResume`).
    pub(crate) paused_until: Option<u64>,
    /// `LinkDown` notified, `LinkUp` not yet.
    pub(crate) link_down: bool,
    /// `StorPortBusy`: completions to wait for before sending more.
    pub(crate) busy_left: Option<u32>,
    /// `StorPortPauseDevice`, per logical unit.
    pub(crate) lu_paused: BTreeMap<LuAddr, u64>,
    /// `StorPortDeviceBusy`, per logical unit.
    pub(crate) lu_busy: BTreeMap<LuAddr, u32>,
    /// The pause after a reset (`BusResetHoldTime`).
    pub(crate) reset_pause_until: Option<u64>,
    /// The multi-tier reset under way per logical unit: the tier sent, and the reset request.
    pub(crate) tiers: BTreeMap<LuAddr, (Tier, u64)>,
    /// Steps of the multi-tier reset decided at a completion, made by the next timeout check
    /// (never from inside the miniport routine that completed the reset request).
    pub(crate) escalations: Vec<Escalation>,
    /// Which control types the query reported.
    pub(crate) supported: [bool; STOR_CONTROL_TYPES],
}

/// How many `ConfigInfo` fields the uncached extension depends on ([`uncached_fields`]).
pub(crate) const UNCACHED_FIELDS: usize = 13;
/// Their names, in the order [`uncached_fields`] gives them.
pub(crate) const UNCACHED_FIELD_NAMES: [&str; UNCACHED_FIELDS] = [
    "DmaChannel",
    "DmaPort",
    "DmaWidth",
    "DmaSpeed",
    "MaximumTransferLength",
    "ScatterGather",
    "Master",
    "NumberOfPhysicalBreaks",
    "AdapterInterfaceType",
    "Dma32BitAddresses",
    "Dma64BitAddresses",
    "AutoRequestSense",
    "SrbExtensionSize",
];

/// The `ConfigInfo` members "that must be filled in" before `StorPortGetUncachedExtension`
/// (`DDI-storport:nf-storport-storportgetuncachedextension`, *`ConfigInfo`*); Storport
/// Verification names `SrbExtensionSize` (`DT:dv-storport-verification`).
pub(crate) fn uncached_fields(c: &stor::PORT_CONFIGURATION_INFORMATION) -> [u64; UNCACHED_FIELDS] {
    [
        u64::from(c.DmaChannel),
        u64::from(c.DmaPort),
        u64::from(c.DmaWidth.cast_unsigned()),
        u64::from(c.DmaSpeed.cast_unsigned()),
        u64::from(c.MaximumTransferLength),
        u64::from(c.ScatterGather),
        u64::from(c.Master),
        u64::from(c.NumberOfPhysicalBreaks),
        u64::from(c.AdapterInterfaceType.cast_unsigned()),
        u64::from(c.Dma32BitAddresses),
        u64::from(c.Dma64BitAddresses),
        u64::from(c.AutoRequestSense),
        u64::from(c.SrbExtensionSize),
    ]
}

/// READ and WRITE, the "read or write requests" of `STOR_MAP_NON_READ_WRITE_BUFFERS`.
pub(crate) fn is_read_write(opcode: u8) -> bool {
    matches!(opcode, 0x08 | 0x0A | 0x28 | 0x2A | 0xA8 | 0xAA | 0x88 | 0x8A)
}

impl StorSt {
    pub(crate) fn new(hw: StorHwInit) -> Self {
        Self {
            hw,
            config: None,
            full_duplex: false,
            map_buffers: hw.0.MapBuffers,
            max_io: 1000,
            lu_depth: 20,
            max_breaks: 0x11,
            max_transfer: u32::MAX,
            bus_reset_hold_us: 0,
            abort_command: false,
            passive: None,
            find_cfg: 0,
            uncached_snapshot: None,
            dpcs: BTreeMap::new(),
            paused_until: None,
            link_down: false,
            busy_left: None,
            lu_paused: BTreeMap::new(),
            lu_busy: BTreeMap::new(),
            reset_pause_until: None,
            tiers: BTreeMap::new(),
            escalations: Vec::new(),
            supported: [false; STOR_CONTROL_TYPES],
        }
    }

    /// Whether Storport maps this request's data buffer to an address the miniport may touch
    /// (`DDI-storport:ns-storport-_hw_initialization_data~r1`, `MapBuffers`;
    /// `KG:use-of-mapping-buffers-in-the-storport-i-o-model`).
    pub(crate) fn maps(&self, req: &Request) -> bool {
        if matches!(req.function, sys::SRB_FUNCTION_IO_CONTROL | sys::SRB_FUNCTION_WMI) {
            return true;
        }
        let rw = req.function == sys::SRB_FUNCTION_EXECUTE_SCSI && is_read_write(req.opcode());
        match self.map_buffers {
            stor::STOR_MAP_ALL_BUFFERS | stor::STOR_MAP_NON_READ_WRITE_BUFFERS => !rw,
            stor::STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE => true,
            _ => false,
        }
    }

    /// The `STOR_SCATTER_GATHER_LIST` of a data buffer (`len` bytes at `off` in `data`), built
    /// as the HAL builds one: one element per physically contiguous run. It goes into `room`
    /// (the block's room for it, `arena.rs`) when it fits, else into memory of its own, which is
    /// returned. Also returns a copy of its bytes, to tell at completion whether the miniport
    /// modified it.
    pub(crate) fn build_scatter_gather(
        ad: &Adapter,
        data: &DmaRegion,
        off: usize,
        len: usize,
        room: Option<&DmaRegion>,
    ) -> Result<(Option<DmaRegion>, Box<[u8]>), String> {
        let mut elements: SmallVec<[(u64, u32); 8]> = SmallVec::new();
        let mut pos = off;
        let end = off + len;
        while pos < end {
            let (pa, run) = data.phys(pos).ok_or_else(|| format!("no physical address at offset {pos:#x} of a data buffer"))?;
            let run = run.min(end - pos);
            elements.push((pa, u32::try_from(run).map_err(|_| "a scatter/gather element over 4 GiB".to_string())?));
            pos += run;
        }
        let bytes = SG_HEADER + SG_ELEMENT * elements.len();
        let own = match room {
            Some(r) if r.len() >= bytes => None,
            _ => Some(ad.dma.alloc(bytes, Layout::Contiguous).map_err(|e| e.to_string())?),
        };
        let region = own.as_ref().or(room).ok_or("scatter/gather list")?;
        // SAFETY: the port's region (fresh, or the block's room before the miniport sees the
        // block), not visible to the miniport yet.
        let out = unsafe { region.as_mut_slice() };
        // The reserved fields zero, as in fresh memory (the room holds the last list's poison).
        out.get_mut(..bytes).ok_or("scatter/gather list")?.fill(0);
        let count = u32::try_from(elements.len()).unwrap_or(u32::MAX);
        out.get_mut(..4).ok_or("scatter/gather list")?.copy_from_slice(&count.to_le_bytes());
        for (i, (pa, length)) in elements.iter().enumerate() {
            let at = SG_HEADER + i * SG_ELEMENT;
            out.get_mut(at..at + 8).ok_or("scatter/gather list")?.copy_from_slice(&pa.to_le_bytes());
            out.get_mut(at + 8..at + 12).ok_or("scatter/gather list")?.copy_from_slice(&length.to_le_bytes());
        }
        let copy = out.get(..bytes).unwrap_or(&[]).to_vec().into_boxed_slice();
        Ok((own, copy))
    }

    /// The deterministic schedule's next Storport event after `now`: a queued DPC falling due,
    /// a pause ending.
    pub(crate) fn next_events(&self, mut at: impl FnMut(u64)) {
        for d in self.dpcs.values() {
            if d.queued.is_some() && !d.running {
                at(d.due_ns);
            }
        }
        for t in [self.paused_until, self.reset_pause_until].into_iter().flatten() {
            at(t);
        }
        for t in self.lu_paused.values() {
            at(*t);
        }
    }

    /// A queued DPC whose time has come and that is not running, by object address.
    pub(crate) fn due_dpc(&self, now: u64) -> Option<usize> {
        self.dpcs.iter().find(|(_, d)| d.queued.is_some() && !d.running && d.due_ns <= now).map(|(a, _)| *a)
    }
}

/// `STOR_SCATTER_GATHER_LIST`: `NumberOfElements` and `Reserved` before `List` (x64).
pub(crate) const SG_HEADER: usize = 16;
/// `STOR_SCATTER_GATHER_ELEMENT`: `PhysicalAddress`, `Length`, `Reserved` (x64).
pub(crate) const SG_ELEMENT: usize = 24;

// ---------------------------------------------------------------------------------------------
// The locks
// ---------------------------------------------------------------------------------------------

/// One of Storport's spin locks (`DDI-storport:ne-storport-_stor_spinlock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StorLock {
    StartIo,
    Interrupt,
    /// The lock of the `STOR_DPC` at this address.
    Dpc(usize),
}

impl StorLock {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StorLock::StartIo => "StartIoLock",
            StorLock::Interrupt => "InterruptLock",
            StorLock::Dpc(_) => "DpcLock",
        }
    }
}

/// A lock the miniport took with `StorPortAcquireSpinLock` on this thread.
pub(crate) struct Acquired {
    owner: u64,
    adapter: Arc<Adapter>,
    lock: StorLock,
    handle: usize,
    /// The depth of the call stack (`CallCtx`s) when it was taken: the routine that must give it
    /// back before returning.
    depth: usize,
    /// The lock of a `DpcLock`, to release it.
    dpc_lock: Option<Arc<PortLock>>,
}

thread_local! {
    static ACQUIRED: RefCell<Vec<Acquired>> = const { RefCell::new(Vec::new()) };
}

/// The locks held on this thread for adapter `ad` of machine `owner`: the port's, from the
/// routines on the call stack, and the miniport's own.
pub(crate) fn held_here(owner: u64, ad: usize) -> (u8, Vec<StorLock>) {
    let port = super::with_stack(|stack| {
        stack.iter().filter(|c| c.machine.owner == owner && c.adapter.as_ref().is_some_and(|a| a.index == ad)).fold(0u8, |m, c| m | c.held)
    });
    let mine = ACQUIRED.with(|a| a.borrow().iter().filter(|x| x.owner == owner && x.adapter.index == ad).map(|x| x.lock).collect());
    (port, mine)
}

/// The port's guards around a routine: the `StartIo` lock, then the interrupt lock, in the order
/// `DDI-storport:nf-storport-storportacquirespinlock` requires; dropped in reverse.
pub(crate) struct Locks<'a> {
    pub(crate) _interrupt: Option<PortLockGuard<'a>>,
    pub(crate) _start_io: Option<PortLockGuard<'a>>,
    pub(crate) held: u8,
}

impl MachineCore {
    /// The locks the port takes around `routine`: SCSI Port's interrupt lock for every
    /// synchronised routine; Storport's per `DDI-storport:nf-storport-storportacquirespinlock`
    /// (`StartIo` lock for `HwStorStartIo`, `HwStorTimer`, `HwStorResetBus`, and the interrupt lock
    /// too in half duplex).
    pub(crate) fn routine_locks<'a>(&self, ad: &'a Adapter, routine: Routine) -> Locks<'a> {
        let held = self.port_held(ad, routine);
        let start_io = (held & HELD_START_IO != 0).then(|| ad.startio_lock.lock());
        let interrupt = (held & HELD_INTERRUPT != 0 || self.port == super::Port::ScsiPort).then(|| ad.intlock.lock());
        Locks { _interrupt: interrupt, _start_io: start_io, held }
    }

    /// What the port holds around `routine` on this machine (`CallCtx::held`); 0 for SCSI Port,
    /// whose checks do not look at it.
    pub(crate) fn port_held(&self, ad: &Adapter, routine: Routine) -> u8 {
        if self.port == super::Port::ScsiPort {
            return 0;
        }
        let half = ad.st().stor.as_ref().is_some_and(|s| !s.full_duplex);
        match routine {
            Routine::Interrupt | Routine::Initialize | Routine::SynchronizedAccess => HELD_INTERRUPT,
            Routine::StartIo | Routine::Timer | Routine::ResetBus => HELD_START_IO | if half { HELD_INTERRUPT } else { 0 },
            _ => 0,
        }
    }

    /// After a routine of adapter `ad` returned (the call stack now `depth` deep): the locks it
    /// took and did not release are a rule break (`DT:storport-storportspinlock`: "at the end of
    /// the dispatch or cancel routine, the driver should not hold any spin locks"); they are
    /// released so the machine does not deadlock on them (also after a bug check, when the
    /// services ignored the miniport's `ReleaseSpinLock`).
    pub(crate) fn stor_locks_left(&self, ad: Option<&Arc<Adapter>>, routine: Routine, depth: usize) {
        let owner = self.owner;
        let left: Vec<Acquired> = ACQUIRED.with(|a| {
            let mut v = a.borrow_mut();
            let (left, keep): (Vec<_>, Vec<_>) = v.drain(..).partition(|x| x.owner == owner && x.depth > depth);
            *v = keep;
            left
        });
        for l in left {
            l.release();
            // After a bug check the services ignore the miniport, its ReleaseSpinLock included:
            // the lock is released here and is no second violation.
            if self.is_halted() {
                continue;
            }
            self.violation_in(
                ad.map(|a| a.index).or(Some(l.adapter.index)),
                Rule::StorLockHeldAtReturn,
                [l.handle as u64, 0, 0],
                format!("{} returned holding the {} it took", routine.name_in(self.port), l.lock.name()),
                Some(routine.name_in(self.port)),
            );
        }
    }
}
