//! A small PVSCSI miniport written directly on `scsiport_sys::storport`, for the emulator's
//! Storport tests, with knobs that break one rule each — rules the safe `storport` wrapper
//! refuses to compile, which is why this one is raw.
//!
//! It is a full-duplex Storport miniport in the shape Microsoft's pages describe: `HwStorBuildIo`
//! translates `StorPortGetScatterGatherList` into PVSCSI's scatter/gather format in the SRB
//! extension (which the device reads); `HwStorStartIo` takes a slot, copies the descriptor into
//! the request ring and rings the doorbell under the `StartIo` lock; `HwStorInterrupt` acknowledges
//! the interrupt, saves the status for the DPC and issues it; the DPC takes the saved status with
//! `StorPortSynchronizeAccess`, then the `StartIo` lock, drains the completion ring and completes.
//! Rings as pvscsi-facts.md §9: one request page (32 slots), one completion page. Knobs come
//! from `ArgumentString`, e.g. `"qd=16 break=complete_twice"`:
//!
//! | key | meaning |
//! | --- | --- |
//! | `qd=N` | the queue depth Storport is told (`MaxNumberOfIO`, `MaxIOsPerLun`, `InitialLunQueueDepth`; 1..=32, default 8) |
//! | `slots=N` | requests the miniport keeps at the device (1..=32, default `qd`): fewer than `qd` makes it answer BUSY |
//! | `map=0/2/3` | `MapBuffers`: `STOR_MAP_NO_BUFFERS` (default), `..._NON_READ_WRITE_...`, `..._ALL_..._INCLUDING_READ_WRITE` |
//! | `buildio=0` | no `HwStorBuildIo`: `HwStorStartIo` builds the descriptor itself |
//! | `direct=1` | touch the registers directly, as `storport.h`'s x64 macros do |
//! | `timer=1` | a 10 ms `HwStorTimer` that re-arms itself |
//! | `caches=1` | `CachesData` TRUE (the port then sends FLUSH) |
//! | `abort=1` | `STOR_ADAPTER_FEATURE_ABORT_COMMAND` |
//! | `busy=1` | all slots taken: `StorPortBusy(1)` and complete with `SRB_STATUS_BUSY` (Storport retries) |
//! | `pause=S` | the first READ's `HwStorStartIo` pauses the adapter for S seconds (`StorPortPause`); with `resume=1` the DPC resumes it at its first completion |
//! | `buildio_stall=US` | `HwStorBuildIo` stalls US µs for each request (a legal wait, where Storport wants it) |
//! | `resetsrb=0` | the reset SRBs succeed without resetting anything: only `HwStorResetBus` does |
//!
//! Each `HwStorFindAdapter` prints `generation N` with `StorPortDebugPrint`: N counts the calls
//! in this device extension, which Storport keeps across PnP restarts.
//! | `break=NAME` | break one rule (see [`Break`]) |
#![allow(
    non_snake_case,
    clippy::missing_safety_doc,
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    clippy::struct_excessive_bools,
    clippy::cast_ptr_alignment,
    clippy::cast_sign_loss
)]

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{BOOLEAN, FALSE, PCHAR, PULONG, PVOID, SCSI_ADAPTER_CONTROL_STATUS, SCSI_ADAPTER_CONTROL_TYPE, SCSI_REQUEST_BLOCK, TRUE, ULONG};

use crate::raw_miniport::{self as raw, CMD_ABORT_CMD, CMD_ADAPTER_RESET, CMD_SETUP_RINGS, FLAG_DIR_NONE, FLAG_DIR_TODEVICE, FLAG_DIR_TOHOST, FLAG_SG, INTR_ALL, INTR_CMPL_MASK, PAGE, REG_COMMAND, REG_COMMAND_DATA, REG_COMMAND_STATUS, REG_INTR_MASK, REG_INTR_STATUS, REG_KICK_NON_RW, REG_KICK_RW};

/// One request page: 32 descriptors of 128 bytes.
const MAX_SLOTS: usize = 32;
const UNCACHED_BYTES: u32 = (3 * PAGE) as u32;
/// Scatter/gather elements per request (`NumberOfPhysicalBreaks`).
const MAX_SG: usize = 64;

/// The rule an instance breaks (`break=NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Break {
    /// Nothing.
    None = 0,
    /// `StorPortStallExecution(200 ms)` in `HwStorBuildIo` (0x2001).
    Stall200ms,
    /// `StorPortGetUncachedExtension` from `HwStorInitialize` (0x2002).
    UncachedInInit,
    /// `SrbExtensionSize` changed after `StorPortGetUncachedExtension` (0x2002).
    SizeAfterUncached,
    /// `StorPortGetDeviceBase` of an address PnP did not assign (0x2003).
    UnassignedRange,
    /// `RequestComplete` twice (0x2004).
    CompleteTwice,
    /// A register read past the mapped range (0x2005).
    RegisterOutOfRange,
    /// `StorPortReadPortUlong` on the memory range (0x2005).
    WrongRegisterKind,
    /// Read the SRB after completing it (0xD1).
    TouchSrbAfter,
    /// Write the SRB extension after completing it (0xD1).
    TouchExtAfter,
    /// Read the scatter/gather list after completing the request (0xD1).
    TouchSgAfter,
    /// Dereference `DataBuffer` of a READ with `STOR_MAP_NO_BUFFERS` (0xD1).
    DerefDataBuffer,
    /// `StorPortInitialize` from `HwStorInitialize` (0x1200).
    InitializeOutside,
    /// `HwStorFindAdapter` returns 7 (0x1203).
    BadFindResult,
    /// `MaximumTransferLength` and `NumberOfPhysicalBreaks` left unset (0x1204).
    NoLimits,
    /// Half duplex (0x1205).
    HalfDuplex,
    /// `BusInterruptLevel` modified (0x1206).
    ModifyConfig,
    /// `NumberOfPhysicalBreaks` 8, under Storport's 16 (0x1206).
    FewBreaks,
    /// `StorPortFreeDeviceBase` from `HwStorInitialize` (0x1207).
    FreeBaseOutside,
    /// `StorPortEnablePassiveInitialization` from `HwStorStartIo` (0x1208).
    PassiveOutside,
    /// `ScsiRestartAdapter` calls `HwStorInitialize`, which enables the passive routine (0x1209).
    PassiveFromControl,
    /// `StorPortInitializeDpc` from `HwStorInitialize` (0x120A).
    DpcOutsidePassive,
    /// `StorPortIssueDpc` of a DPC object never initialised (0x120B).
    IssueUninitialized,
    /// The passive routine takes the interrupt lock (0x120C).
    LockInPassive,
    /// The DPC takes the interrupt lock, then the `StartIo` lock (0x120D).
    LockOrder,
    /// The DPC takes the `StartIo` lock twice (0x120D).
    LockTwice,
    /// `StorPortSynchronizeAccess` from the ISR (0x120D).
    SyncInIsr,
    /// The DPC releases a handle it never acquired (0x120E).
    ReleaseUnheld,
    /// The DPC returns holding the `StartIo` lock (0x120F).
    LockLeak,
    /// `StorPortStallExecution(10)` in `HwStorStartIo` (0x1210).
    StallInStartIo,
    /// `StorPortStallExecution(2000)` in `HwStorBuildIo` (0x1211).
    Stall2ms,
    /// `HwStorBuildIo` completes the request and returns TRUE (0x1212).
    BuildIoCompleteTrue,
    /// `HwStorBuildIo` returns FALSE without ever completing the request (0x1213).
    BuildIoKeep,
    /// `RequestComplete` of a pointer that is no SRB (0x1214).
    CompleteBogus,
    /// Complete with `SRB_STATUS_PENDING` (0x1215).
    StatusPending,
    /// `StorPortLogError` with a completed SRB (0x1216).
    LogErrorAfter,
    /// Write `Srb->TargetId` (0x1217).
    WriteReadOnly,
    /// Grow `DataTransferLength` (0x1218).
    GrowLength,
    /// Halve `DataTransferLength` and report success (0x1219).
    UnderrunSuccess,
    /// Write into the scatter/gather list in `HwStorBuildIo` (0x121A).
    ModifySg,
    /// `RequestTimerCall` with a NULL routine (0x121B).
    TimerNull,
    /// `StorPortNotification(5)`, SCSI Port's `CallEnableInterrupts` (0x121C).
    UnsupportedNotification,
    /// `NextRequest` after each `HwStorStartIo` (warning 0x121D).
    NextRequest,
    /// `ScsiQuerySupportedControlTypes` returns unsuccessful (0x121E).
    ControlFail,
    /// `ScsiRestartAdapter` not supported (0x121F).
    NoRestart,
    /// Write past the control-type list (0x1220).
    ControlOverrun,
    /// `HwStorResetBus` completes nothing (0x1221 when requests are outstanding).
    IgnoreReset,
    /// `StorPortGetPhysicalAddress` of a stack address (0x1222).
    BadPhysical,
    /// `StorPortGetVirtualAddress` of a bogus PA (0x1223).
    BadVirtual,
    /// `StorPortNotification` with another device extension (0x1224).
    WrongExtension,
    /// `HwStorBuildIo` stalls 600 × 999 µs (0x1225).
    SlowBuildIo,
    /// The ISR claims every call (0x1226).
    ClaimForeign,
    /// The ISR never claims (0x1227).
    Storm,
    /// The ISR claims without acknowledging (0x1228).
    NoClear,
    /// The ISR stalls 100 µs (warning 0x1229 when enabled).
    SlowIsr,
    /// `HwStorResetBus` completes with `StorPortCompleteRequest` (warning 0x122A).
    CompleteRequestCall,
    /// `StorPortAcquireSpinLock` of lock 9 (0x122B).
    BadLockKind,
    /// Swallow the first READ (never posted): it times out and Storport's reset tiers run.
    DropIo,
    /// Swallow the first READ and ignore every reset: `HwStorResetBus` leaves it outstanding (0x1221).
    DropIoIgnoreResets,
    /// Not a rule break: `BusChangeDetected(0)` once, so the port re-enumerates.
    BusChange,
    /// `StorPortValidateRange` of its memory range in `HwStorFindAdapter` (warning 0x122C).
    ValidateRange,
}

const BREAKS: &[(&str, Break)] = &[
    ("stall_200ms", Break::Stall200ms),
    ("uncached_in_init", Break::UncachedInInit),
    ("size_after_uncached", Break::SizeAfterUncached),
    ("unassigned_range", Break::UnassignedRange),
    ("complete_twice", Break::CompleteTwice),
    ("register_out_of_range", Break::RegisterOutOfRange),
    ("wrong_register_kind", Break::WrongRegisterKind),
    ("touch_srb_after", Break::TouchSrbAfter),
    ("touch_ext_after", Break::TouchExtAfter),
    ("touch_sg_after", Break::TouchSgAfter),
    ("deref_databuffer", Break::DerefDataBuffer),
    ("initialize_outside", Break::InitializeOutside),
    ("bad_find_result", Break::BadFindResult),
    ("no_limits", Break::NoLimits),
    ("half_duplex", Break::HalfDuplex),
    ("modify_config", Break::ModifyConfig),
    ("few_breaks", Break::FewBreaks),
    ("free_base_outside", Break::FreeBaseOutside),
    ("passive_outside", Break::PassiveOutside),
    ("passive_from_control", Break::PassiveFromControl),
    ("dpc_outside_passive", Break::DpcOutsidePassive),
    ("issue_uninitialized", Break::IssueUninitialized),
    ("lock_in_passive", Break::LockInPassive),
    ("lock_order", Break::LockOrder),
    ("lock_twice", Break::LockTwice),
    ("sync_in_isr", Break::SyncInIsr),
    ("release_unheld", Break::ReleaseUnheld),
    ("lock_leak", Break::LockLeak),
    ("stall_in_startio", Break::StallInStartIo),
    ("stall_2ms", Break::Stall2ms),
    ("buildio_complete_true", Break::BuildIoCompleteTrue),
    ("buildio_keep", Break::BuildIoKeep),
    ("complete_bogus", Break::CompleteBogus),
    ("status_pending", Break::StatusPending),
    ("log_error_after", Break::LogErrorAfter),
    ("write_read_only", Break::WriteReadOnly),
    ("grow_length", Break::GrowLength),
    ("underrun_success", Break::UnderrunSuccess),
    ("modify_sg", Break::ModifySg),
    ("timer_null", Break::TimerNull),
    ("unsupported_notification", Break::UnsupportedNotification),
    ("next_request", Break::NextRequest),
    ("control_fail", Break::ControlFail),
    ("no_restart", Break::NoRestart),
    ("control_overrun", Break::ControlOverrun),
    ("ignore_reset", Break::IgnoreReset),
    ("bad_physical", Break::BadPhysical),
    ("bad_virtual", Break::BadVirtual),
    ("wrong_extension", Break::WrongExtension),
    ("slow_buildio", Break::SlowBuildIo),
    ("claim_foreign", Break::ClaimForeign),
    ("storm", Break::Storm),
    ("no_clear", Break::NoClear),
    ("slow_isr", Break::SlowIsr),
    ("complete_request_call", Break::CompleteRequestCall),
    ("bad_lock_kind", Break::BadLockKind),
    ("drop_io", Break::DropIo),
    ("drop_io_ignore_resets", Break::DropIoIgnoreResets),
    ("bus_change", Break::BusChange),
    ("validate_range", Break::ValidateRange),
];

impl Break {
    /// The knob name (`break=NAME`).
    #[must_use]
    pub fn name(self) -> &'static str {
        BREAKS.iter().find(|(_, b)| *b == self).map_or("none", |(n, _)| n)
    }
}

/// Parses a `break=` name.
#[must_use]
pub fn parse_break(name: &str) -> Option<Break> {
    BREAKS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Every break knob, with its name.
#[must_use]
pub fn breaks() -> &'static [(&'static str, Break)] {
    BREAKS
}

/// What `HwStorBuildIo` prepares for `HwStorStartIo`, in the SRB extension the device can read:
/// the descriptor fields and PVSCSI's scatter/gather list.
#[repr(C)]
struct SrbExt {
    data_addr: u64,
    data_len: u64,
    sense_addr: u64,
    sense_len: u32,
    flags: u32,
    built: u32,
    elements: u32,
    sg: [[u64; 2]; MAX_SG],
}

/// The device extension: the DPC object first, then the configuration (written in
/// `HwStorFindAdapter`), the `StartIo`-lock state (slots, ring producer), the interrupt-lock state
/// (what the ISR saved).
#[repr(C)]
struct DevExt {
    dpc: stor::STOR_DPC,
    regs: usize,
    uc: *mut u8,
    uc_pa: u64,
    // Configuration.
    qd: u32,
    slots_used: u32,
    map: u8,
    buildio: bool,
    direct: bool,
    timer: bool,
    caches: bool,
    abort: bool,
    busy: bool,
    pause_s: u32,
    resume: bool,
    buildio_stall: u32,
    resetsrb: bool,
    generation: u64,
    brk: Break,
    // `StartIo` lock.
    slots: [*mut SCSI_REQUEST_BLOCK; MAX_SLOTS],
    aborting: [bool; MAX_SLOTS],
    outstanding: u32,
    armed: bool,
    broke: bool,
    paused: bool,
    dropped: *mut SCSI_REQUEST_BLOCK,
    // Interrupt lock.
    saved_status: AtomicU32,
    timer_calls: u32,
    restarts: u32,
}

/// The `HW_INITIALIZATION_DATA` the normal `DriverEntry` registers.
fn init_data() -> stor::HW_INITIALIZATION_DATA {
    // SAFETY: all-zero is a valid HW_INITIALIZATION_DATA (integers, NULL pointers, `None`), and
    // the miniport must zero it first (`DDI-storport:ns-storport-_hw_initialization_data~r1`).
    let mut h: stor::HW_INITIALIZATION_DATA = unsafe { core::mem::zeroed() };
    h.HwInitializationDataSize = core::mem::size_of::<stor::HW_INITIALIZATION_DATA>() as ULONG;
    h.AdapterInterfaceType = sys::PCIBus;
    h.HwInitialize = Some(hw_initialize);
    h.HwStartIo = Some(hw_start_io);
    h.HwInterrupt = Some(hw_interrupt);
    h.HwFindAdapter = Some(hw_find_adapter);
    h.HwResetBus = Some(hw_reset_bus);
    h.HwAdapterControl = Some(hw_adapter_control);
    h.HwBuildIo = Some(hw_build_io);
    h.DeviceExtensionSize = core::mem::size_of::<DevExt>() as ULONG;
    h.SpecificLuExtensionSize = 16;
    h.SrbExtensionSize = core::mem::size_of::<SrbExt>() as ULONG;
    h.NumberOfAccessRanges = 2;
    h.MapBuffers = stor::STOR_MAP_NO_BUFFERS;
    h.NeedPhysicalAddresses = TRUE;
    h.TaggedQueuing = TRUE;
    h.AutoRequestSense = TRUE;
    h.MultipleRequestPerLu = TRUE;
    h.SrbTypeFlags = stor::SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK;
    h.AddressTypeFlags = stor::ADDRESS_TYPE_FLAG_BTL8;
    h
}

/// `DriverEntry` of the Storport test miniport.
pub unsafe extern "win64" fn driver_entry(a1: PVOID, a2: PVOID) -> ULONG {
    let mut h = init_data();
    // SAFETY: the port's StorPortInitialize with our arguments and init data.
    unsafe { stor::StorPortInitialize(a1, a2, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` that passes NULL for `HwInitializationData` (0x1200).
pub unsafe extern "win64" fn driver_entry_null_data(a1: PVOID, a2: PVOID) -> ULONG {
    // SAFETY: deliberately broken: a NULL structure.
    unsafe { stor::StorPortInitialize(a1, a2, ptr::null_mut(), ptr::null_mut()) }
}

/// A `DriverEntry` with SCSI Port's `HwInitializationDataSize` (0x1201).
pub unsafe extern "win64" fn driver_entry_bad_size(a1: PVOID, a2: PVOID) -> ULONG {
    let mut h = init_data();
    h.HwInitializationDataSize = core::mem::size_of::<sys::HW_INITIALIZATION_DATA>() as ULONG;
    // SAFETY: as in `driver_entry`.
    unsafe { stor::StorPortInitialize(a1, a2, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` without `HwAdapterControl` (0x1201).
pub unsafe extern "win64" fn driver_entry_no_adapter_control(a1: PVOID, a2: PVOID) -> ULONG {
    let mut h = init_data();
    h.HwAdapterControl = None;
    // SAFETY: as in `driver_entry`.
    unsafe { stor::StorPortInitialize(a1, a2, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` with `TaggedQueuing` FALSE (0x1201).
pub unsafe extern "win64" fn driver_entry_untagged(a1: PVOID, a2: PVOID) -> ULONG {
    let mut h = init_data();
    h.TaggedQueuing = FALSE;
    // SAFETY: as in `driver_entry`.
    unsafe { stor::StorPortInitialize(a1, a2, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` that returns something else than `StorPortInitialize` did (0x1202).
pub unsafe extern "win64" fn driver_entry_wrong_return(a1: PVOID, a2: PVOID) -> ULONG {
    // SAFETY: forwarded.
    let s = unsafe { driver_entry(a1, a2) };
    s.wrapping_add(0x42)
}

fn ext(p: PVOID) -> &'static mut DevExt {
    // SAFETY: the port passes our device extension, sized for DevExt and zeroed when first
    // allocated.
    unsafe { &mut *p.cast::<DevExt>() }
}

fn rd(p: PVOID, e: &DevExt, off: usize) -> u32 {
    let at = (e.regs + off) as PULONG;
    if e.direct {
        // SAFETY: inside the 32 KiB the port mapped; storport.h's x64 READ_REGISTER_ULONG.
        return unsafe { at.read_volatile() };
    }
    // SAFETY: `regs` is the base StorPortGetDeviceBase returned for the 32 KiB window.
    unsafe { stor::StorPortReadRegisterUlong(p, at) }
}

fn wr(p: PVOID, e: &DevExt, off: usize, v: u32) {
    let at = (e.regs + off) as PULONG;
    if e.direct {
        // SAFETY: as in `rd`; storport.h's x64 WRITE_REGISTER_ULONG.
        unsafe { at.write_volatile(v) };
        return;
    }
    // SAFETY: as in `rd`.
    unsafe { stor::StorPortWriteRegisterUlong(p, at, v) };
}

fn uc32(e: &DevExt, off: usize) -> u32 {
    // SAFETY: `off` lies in the uncached extension.
    unsafe { e.uc.wrapping_add(off).cast::<u32>().read_volatile() }
}

fn set_uc32(e: &DevExt, off: usize, v: u32) {
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(off).cast::<u32>().write_volatile(v) };
}

fn uc64(e: &DevExt, off: usize) -> u64 {
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(off).cast::<u64>().read_volatile() }
}

fn set_uc64(e: &DevExt, off: usize, v: u64) {
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(off).cast::<u64>().write_volatile(v) };
}

fn complete(p: PVOID, srb: *mut SCSI_REQUEST_BLOCK) {
    // SAFETY: RequestComplete takes the SRB.
    unsafe { stor::StorPortNotification(stor::RequestComplete, p, srb) };
}

fn stall(us: u32) {
    // SAFETY: no pointer arguments.
    unsafe { stor::StorPortStallExecution(us) };
}

fn physical(p: PVOID, srb: *mut SCSI_REQUEST_BLOCK, va: PVOID) -> (u64, u32) {
    let mut len: ULONG = 0;
    // SAFETY: an address the port can translate (with its SRB for data and sense buffers).
    let pa = unsafe { stor::StorPortGetPhysicalAddress(p, srb, va, &raw mut len) };
    (pa.QuadPart as u64, len)
}

fn parse_args(e: &mut DevExt, arg: PCHAR) {
    e.qd = 8;
    e.slots_used = 0;
    e.buildio = true;
    e.resetsrb = true;
    e.buildio_stall = 0;
    // SAFETY: the port passes NULL or a NUL-terminated ASCII string, alive for this call.
    for (k, v, on) in unsafe { raw::knobs(arg) } {
        match k {
            "qd" => e.qd = v.parse::<u32>().unwrap_or(8).clamp(1, MAX_SLOTS as u32),
            "slots" => e.slots_used = v.parse::<u32>().unwrap_or(8).clamp(1, MAX_SLOTS as u32),
            "map" => e.map = v.parse::<u8>().unwrap_or(0),
            "buildio" => e.buildio = on,
            "direct" => e.direct = on,
            "timer" => e.timer = on,
            "caches" => e.caches = on,
            "abort" => e.abort = on,
            "busy" => e.busy = on,
            "pause" => e.pause_s = v.parse::<u32>().unwrap_or(1),
            "resume" => e.resume = on,
            "buildio_stall" => e.buildio_stall = v.parse::<u32>().unwrap_or(0).min(999),
            "resetsrb" => e.resetsrb = on,
            "break" => e.brk = parse_break(v).unwrap_or(Break::None),
            _ => {}
        }
    }
}

/// Reset, `SETUP_RINGS`, unmask (pvscsi-facts.md §9): the HBA as `HwStorInitialize` and
/// `ScsiRestartAdapter` leave it, and as a bus reset starts it again.
fn setup_device(p: PVOID, e: &mut DevExt) {
    wr(p, e, REG_INTR_MASK, 0);
    wr(p, e, REG_COMMAND, CMD_ADAPTER_RESET);
    wr(p, e, REG_INTR_STATUS, INTR_ALL);
    for off in (0..3 * PAGE).step_by(4) {
        set_uc32(e, off, 0);
    }
    let words = raw::setup_rings_words(e.uc_pa);
    wr(p, e, REG_COMMAND, CMD_SETUP_RINGS);
    for w in words {
        wr(p, e, REG_COMMAND_DATA, w);
    }
    let _ = rd(p, e, REG_COMMAND_STATUS);
    e.slots = [ptr::null_mut(); MAX_SLOTS];
    e.aborting = [false; MAX_SLOTS];
    e.outstanding = 0;
    wr(p, e, REG_INTR_MASK, INTR_CMPL_MASK);
}

unsafe extern "win64" fn hw_find_adapter(
    p: PVOID,
    _ctx: PVOID,
    _bus: PVOID,
    arg: PCHAR,
    cfg: stor::PPORT_CONFIGURATION_INFORMATION,
    _reserved: sys::PBOOLEAN,
) -> ULONG {
    let e = ext(p);
    parse_args(e, arg);
    e.generation += 1;
    // SAFETY: a NUL-terminated format with one unsigned long long, which follows.
    unsafe { stor::StorPortDebugPrint(1, c"generation %llu".as_ptr().cast_mut(), e.generation) };
    // SAFETY: the port's ConfigInfo, valid for this call.
    let c = unsafe { &mut *cfg };
    // SAFETY: the port's access-range array of NumberOfAccessRanges entries.
    let ranges = unsafe { core::slice::from_raw_parts(c.AccessRanges, c.NumberOfAccessRanges as usize) };
    let Some(r) = ranges.iter().find(|r| r.RangeInMemory != FALSE && r.RangeLength >= 0x8000) else {
        return sys::SP_RETURN_NOT_FOUND;
    };
    let mut start = r.RangeStart;
    if e.brk == Break::UnassignedRange {
        start.QuadPart += 0x1000_0000;
    }
    if e.brk == Break::ValidateRange {
        // SAFETY: deprecated but harmless: asks whether the range is free.
        let _ = unsafe { stor::StorPortValidateRange(p, c.AdapterInterfaceType, c.SystemIoBusNumber, start, 0x8000, FALSE) };
    }
    // SAFETY: a supplied memory range (InIoSpace is the inverse of RangeInMemory).
    let base = unsafe { stor::StorPortGetDeviceBase(p, c.AdapterInterfaceType, c.SystemIoBusNumber, start, 0x8000, FALSE) };
    if base.is_null() {
        return sys::SP_RETURN_ERROR;
    }
    e.regs = base as usize;
    if e.brk == Break::BadFindResult {
        return 7;
    }
    if e.brk != Break::NoLimits {
        c.MaximumTransferLength = 256 * 1024;
        c.NumberOfPhysicalBreaks = if e.brk == Break::FewBreaks { 8 } else { MAX_SG as u32 };
    }
    if e.brk != Break::HalfDuplex {
        c.SynchronizationModel = stor::StorSynchronizeFullDuplex;
    }
    if e.brk == Break::ModifyConfig {
        c.BusInterruptLevel += 1;
    }
    c.NumberOfBuses = 1;
    c.InitiatorBusId[0] = 7;
    c.MaximumNumberOfTargets = 16;
    c.MaximumNumberOfLogicalUnits = 1;
    c.AlignmentMask = 3;
    c.Dma64BitAddresses = sys::SCSI_DMA64_MINIPORT_SUPPORTED;
    c.MapBuffers = e.map;
    c.CachesData = BOOLEAN::from(e.caches);
    c.MaxNumberOfIO = e.qd;
    c.MaxIOsPerLun = e.qd;
    c.InitialLunQueueDepth = e.qd;
    c.BusResetHoldTime = 0;
    if e.abort {
        c.FeatureSupport |= stor::STOR_ADAPTER_FEATURE_ABORT_COMMAND;
    }
    // SAFETY: the port's ConfigInfo; HwStorFindAdapter is the place for the uncached extension.
    let uc = unsafe { stor::StorPortGetUncachedExtension(p, cfg, UNCACHED_BYTES) };
    if uc.is_null() {
        return sys::SP_RETURN_ERROR;
    }
    e.uc = uc.cast();
    if e.brk == Break::SizeAfterUncached {
        c.SrbExtensionSize += 64;
    }
    e.uc_pa = physical(p, ptr::null_mut(), uc).0;
    sys::SP_RETURN_FOUND
}

unsafe extern "win64" fn hw_initialize(p: PVOID) -> BOOLEAN {
    let e = ext(p);
    if e.brk == Break::UncachedInInit {
        // SAFETY: deliberately broken: outside HwStorFindAdapter.
        let _ = unsafe { stor::StorPortGetUncachedExtension(p, ptr::null_mut(), 4096) };
    }
    if e.brk == Break::InitializeOutside {
        let mut h = init_data();
        // SAFETY: deliberately broken: outside DriverEntry.
        let _ = unsafe { stor::StorPortInitialize(p, p, &raw mut h, ptr::null_mut()) };
    }
    if e.brk == Break::FreeBaseOutside {
        // SAFETY: deliberately broken: a mapping freed outside HwStorFindAdapter.
        unsafe { stor::StorPortFreeDeviceBase(p, e.regs as PVOID) };
    }
    if e.brk == Break::DpcOutsidePassive {
        // SAFETY: deliberately broken: the DPC belongs in the passive routine.
        unsafe { stor::StorPortInitializeDpc(p, &raw mut e.dpc, Some(hw_dpc)) };
    }
    setup_device(p, e);
    if e.timer {
        // SAFETY: RequestTimerCall takes the timer routine and microseconds.
        unsafe { stor::StorPortNotification(stor::RequestTimerCall, p, Some(hw_timer as unsafe extern "win64" fn(PVOID)), 10_000u32) };
    }
    if e.brk == Break::TimerNull {
        // SAFETY: deliberately broken: a NULL routine.
        unsafe { stor::StorPortNotification(stor::RequestTimerCall, p, ptr::null_mut::<c_void>(), 10_000u32) };
    }
    // SAFETY: from HwStorInitialize, as the rule wants.
    let _ = unsafe { stor::StorPortEnablePassiveInitialization(p, Some(hw_passive_initialize)) };
    TRUE
}

unsafe extern "win64" fn hw_passive_initialize(p: PVOID) -> BOOLEAN {
    let e = ext(p);
    // SAFETY: the DPC object lives in the device extension.
    unsafe { stor::StorPortInitializeDpc(p, &raw mut e.dpc, Some(hw_dpc)) };
    if e.brk == Break::LockInPassive {
        let mut h = stor::STOR_LOCK_HANDLE::zeroed();
        // SAFETY: deliberately broken: the passive routine may take no lock.
        unsafe { stor::StorPortAcquireSpinLock(p, stor::InterruptLock, ptr::null_mut(), &raw mut h) };
        // SAFETY: releases what was (not) taken.
        unsafe { stor::StorPortReleaseSpinLock(p, &raw mut h) };
    }
    TRUE
}

unsafe extern "win64" fn hw_timer(p: PVOID) {
    let e = ext(p);
    e.timer_calls += 1;
    // SAFETY: re-arm.
    unsafe { stor::StorPortNotification(stor::RequestTimerCall, p, Some(hw_timer as unsafe extern "win64" fn(PVOID)), 10_000u32) };
}

fn is_rw(opcode: u8) -> bool {
    matches!(opcode, 0x08 | 0x0A | 0x28 | 0x2A | 0xA8 | 0xAA | 0x88 | 0x8A)
}

/// Prepares the descriptor fields and the scatter/gather list in the SRB extension: what
/// `HwStorBuildIo` does, or `HwStorStartIo` without one. Returns FALSE when the list does not fit.
fn build(p: PVOID, e: &DevExt, srb_p: *mut SCSI_REQUEST_BLOCK) -> bool {
    // SAFETY: the port's SRB, ours until completion.
    let srb = unsafe { &mut *srb_p };
    // SAFETY: the SRB extension, sized for SrbExt, ours until completion.
    let x = unsafe { &mut *srb.SrbExtension.cast::<SrbExt>() };
    x.flags = match srb.SrbFlags & sys::SRB_FLAGS_UNSPECIFIED_DIRECTION {
        sys::SRB_FLAGS_DATA_IN => FLAG_DIR_TOHOST,
        sys::SRB_FLAGS_DATA_OUT => FLAG_DIR_TODEVICE,
        0 => FLAG_DIR_NONE,
        _ => 0,
    };
    x.data_addr = 0;
    x.data_len = u64::from(srb.DataTransferLength);
    x.elements = 0;
    // SAFETY: the request is outstanding.
    let list = unsafe { stor::StorPortGetScatterGatherList(p, srb_p) };
    if !list.is_null() {
        // SAFETY: the port's list, valid until completion.
        let n = unsafe { (*list).NumberOfElements } as usize;
        if n > MAX_SG {
            return false;
        }
        // SAFETY: `List` holds `n` elements.
        let first = unsafe { (&raw const (*list).List).cast::<stor::STOR_SCATTER_GATHER_ELEMENT>() };
        // SAFETY: `List` holds `n` elements.
        let elements = unsafe { core::slice::from_raw_parts(first, n) };
        for (i, el) in elements.iter().enumerate() {
            x.sg[i] = [el.PhysicalAddress.QuadPart as u64, u64::from(el.Length)];
        }
        x.elements = n as u32;
        if n == 1 {
            x.data_addr = x.sg[0][0];
        } else if n > 1 {
            x.data_addr = physical(p, ptr::null_mut(), x.sg.as_mut_ptr().cast()).0;
            x.flags |= FLAG_SG;
        }
        if e.brk == Break::ModifySg && e.armed && !e.broke {
            // SAFETY: deliberately broken: the miniport must not modify the list.
            unsafe { (*list).NumberOfElements = 0 };
        }
    }
    x.sense_addr = 0;
    x.sense_len = 0;
    if !srb.SenseInfoBuffer.is_null() && srb.SenseInfoBufferLength > 0 {
        x.sense_addr = physical(p, srb_p, srb.SenseInfoBuffer).0;
        x.sense_len = u32::from(srb.SenseInfoBufferLength);
    }
    x.built = 1;
    true
}

unsafe extern "win64" fn hw_build_io(p: PVOID, srb_p: *mut SCSI_REQUEST_BLOCK) -> BOOLEAN {
    let e = ext(p);
    // SAFETY: the port's SRB.
    let srb = unsafe { &mut *srb_p };
    if srb.SrbExtension.is_null() {
        return TRUE;
    }
    // SAFETY: as in `build`.
    unsafe { (*srb.SrbExtension.cast::<SrbExt>()).built = 0 };
    if !e.buildio || srb.Function != sys::SRB_FUNCTION_EXECUTE_SCSI {
        return TRUE;
    }
    if e.buildio_stall > 0 {
        stall(e.buildio_stall);
    }
    let rw = is_rw(srb.Cdb[0]);
    // BuildIo runs unsynchronised: the break fires on the first READ or WRITE it sees. `armed`
    // and `broke` are only a test's bookkeeping.
    let fire = rw && !e.broke && e.brk != Break::None;
    if rw {
        e.armed = true;
    }
    if fire {
        match e.brk {
            Break::Stall200ms => stall(200_000),
            Break::Stall2ms => stall(2_000),
            Break::SlowBuildIo => {
                for _ in 0..600 {
                    stall(999);
                }
            }
            Break::BuildIoCompleteTrue => {
                e.broke = true;
                srb.SrbStatus = sys::SRB_STATUS_SUCCESS;
                complete(p, srb_p);
                return TRUE;
            }
            Break::BuildIoKeep => {
                e.broke = true;
                return FALSE;
            }
            Break::DerefDataBuffer if !srb.DataBuffer.is_null() => {
                e.broke = true;
                // SAFETY: deliberately broken: Storport does not map READ buffers here.
                let _ = unsafe { srb.DataBuffer.cast::<u8>().read_volatile() };
            }
            Break::BadPhysical => {
                e.broke = true;
                let local = 0u64;
                let _ = physical(p, ptr::null_mut(), (&raw const local).cast_mut().cast());
            }
            _ => {}
        }
    }
    if !build(p, e, srb_p) {
        srb.SrbStatus = sys::SRB_STATUS_INVALID_REQUEST;
        complete(p, srb_p);
        return FALSE;
    }
    if fire && e.brk == Break::ModifySg {
        e.broke = true;
    }
    TRUE
}

fn free_slot(e: &DevExt) -> Option<usize> {
    let n = if e.slots_used == 0 { e.qd } else { e.slots_used };
    e.slots.iter().take(n as usize).position(|s| s.is_null())
}

unsafe extern "win64" fn hw_start_io(p: PVOID, srb_p: *mut SCSI_REQUEST_BLOCK) -> BOOLEAN {
    let e = ext(p);
    // SAFETY: the port's SRB, ours until completion.
    let srb = unsafe { &mut *srb_p };
    if srb.Function == sys::SRB_FUNCTION_EXECUTE_SCSI && is_rw(srb.Cdb[0]) {
        e.armed = true;
    }
    let fire = e.armed && !e.broke && e.brk != Break::None;
    if fire {
        let mut fired = true;
        match e.brk {
            Break::StallInStartIo => stall(10),
            Break::PassiveOutside => {
                // SAFETY: deliberately broken: not from HwStorInitialize.
                let _ = unsafe { stor::StorPortEnablePassiveInitialization(p, Some(hw_passive_initialize)) };
            }
            Break::UnsupportedNotification => {
                // SAFETY: deliberately broken: SCSI Port's CallEnableInterrupts is no Storport type.
                unsafe { stor::StorPortNotification(5, p, Some(hw_interrupt as unsafe extern "win64" fn(PVOID) -> BOOLEAN)) };
            }
            Break::WrongRegisterKind => {
                // SAFETY: deliberately broken: a Port accessor on a memory range.
                let _ = unsafe { stor::StorPortReadPortUlong(p, (e.regs + REG_INTR_STATUS) as PULONG) };
            }
            Break::RegisterOutOfRange => {
                let _ = rd(p, e, 0x8000);
            }
            Break::BadVirtual => {
                // SAFETY: deliberately broken: a PA nobody returned.
                let _ = unsafe { stor::StorPortGetVirtualAddress(p, sys::LARGE_INTEGER { QuadPart: 0x1234_5000 }) };
            }
            Break::WrongExtension => {
                let mut other = [0u8; 16];
                // SAFETY: deliberately broken: another device extension.
                unsafe { stor::StorPortNotification(stor::ResetDetected, other.as_mut_ptr().cast::<c_void>()) };
            }
            Break::BadLockKind => {
                let mut h = stor::STOR_LOCK_HANDLE::zeroed();
                // SAFETY: deliberately broken: no such lock.
                unsafe { stor::StorPortAcquireSpinLock(p, 9, ptr::null_mut(), &raw mut h) };
            }
            Break::IssueUninitialized => {
                let mut other = stor::STOR_DPC::zeroed();
                // SAFETY: deliberately broken: a DPC object never initialised.
                let _ = unsafe { stor::StorPortIssueDpc(p, &raw mut other, ptr::null_mut(), ptr::null_mut()) };
            }
            // SAFETY: BusChangeDetected takes the PathId.
            Break::BusChange => unsafe { stor::StorPortNotification(stor::BusChangeDetected, p, 0u32) },
            _ => fired = false,
        }
        if fired {
            e.broke = true;
        }
    }
    if e.brk == Break::NextRequest {
        // SAFETY: NextRequest takes no arguments (Storport ignores it).
        unsafe { stor::StorPortNotification(stor::NextRequest, p) };
    }
    match srb.Function {
        sys::SRB_FUNCTION_EXECUTE_SCSI => start_scsi(p, e, srb_p),
        sys::SRB_FUNCTION_ABORT_COMMAND => {
            let victim = srb.NextSrb;
            let found = e.slots.iter().position(|s| *s == victim && !victim.is_null());
            if let Some(i) = found {
                e.aborting[i] = true;
                wr(p, e, REG_COMMAND, CMD_ABORT_CMD);
                wr(p, e, REG_COMMAND_DATA, (i + 1) as u32);
                wr(p, e, REG_COMMAND_DATA, 0);
                wr(p, e, REG_COMMAND_DATA, u32::from(srb.TargetId));
                wr(p, e, REG_COMMAND_DATA, 0);
            }
            srb.SrbStatus = if found.is_some() { sys::SRB_STATUS_SUCCESS } else { sys::SRB_STATUS_ABORT_FAILED };
            complete(p, srb_p);
        }
        sys::SRB_FUNCTION_RESET_BUS | sys::SRB_FUNCTION_RESET_DEVICE | sys::SRB_FUNCTION_RESET_LOGICAL_UNIT => {
            if e.brk != Break::DropIoIgnoreResets && (e.resetsrb || srb.Function == sys::SRB_FUNCTION_RESET_BUS) {
                reset_all(p, e, sys::SRB_STATUS_BUS_RESET);
            }
            srb.SrbStatus = if e.brk == Break::DropIoIgnoreResets { sys::SRB_STATUS_ERROR } else { sys::SRB_STATUS_SUCCESS };
            complete(p, srb_p);
        }
        sys::SRB_FUNCTION_FLUSH | sys::SRB_FUNCTION_SHUTDOWN => {
            srb.SrbStatus = sys::SRB_STATUS_SUCCESS;
            complete(p, srb_p);
        }
        _ => {
            srb.SrbStatus = sys::SRB_STATUS_INVALID_REQUEST;
            complete(p, srb_p);
        }
    }
    TRUE
}

fn start_scsi(p: PVOID, e: &mut DevExt, srb_p: *mut SCSI_REQUEST_BLOCK) {
    // SAFETY: the port's SRB.
    let srb = unsafe { &mut *srb_p };
    let Some(slot) = free_slot(e) else {
        if e.busy {
            // SAFETY: no pointer arguments but the extension.
            let _ = unsafe { stor::StorPortBusy(p, 1) };
        }
        srb.SrbStatus = sys::SRB_STATUS_BUSY;
        complete(p, srb_p);
        return;
    };
    // SAFETY: the SRB extension.
    let built = !srb.SrbExtension.is_null() && unsafe { (*srb.SrbExtension.cast::<SrbExt>()).built } == 1;
    if !built && !build(p, e, srb_p) {
        srb.SrbStatus = sys::SRB_STATUS_INVALID_REQUEST;
        complete(p, srb_p);
        return;
    }
    if e.pause_s > 0 && !e.paused && srb.Cdb[0] == 0x28 {
        e.paused = true;
        // SAFETY: no pointer arguments but the extension.
        let _ = unsafe { stor::StorPortPause(p, e.pause_s) };
    }
    e.slots[slot] = srb_p;
    e.aborting[slot] = false;
    e.outstanding += 1;
    let drop_it = matches!(e.brk, Break::DropIo | Break::DropIoIgnoreResets) && !e.broke && is_rw(srb.Cdb[0]);
    if drop_it {
        e.broke = true;
        e.dropped = srb_p;
        return;
    }
    post(p, e, slot, srb_p);
}

fn post(p: PVOID, e: &DevExt, slot: usize, srb_p: *mut SCSI_REQUEST_BLOCK) {
    // SAFETY: the port's SRB and its extension, prepared by `build`.
    let srb = unsafe { &*srb_p };
    // SAFETY: as above.
    let x = unsafe { &*srb.SrbExtension.cast::<SrbExt>() };
    let prod = uc32(e, 0);
    let entries = 1u32 << uc32(e, 8).min(10);
    let d = PAGE + ((prod & (entries - 1)) as usize) * 128;
    for off in (0..128).step_by(8) {
        set_uc64(e, d + off, 0);
    }
    set_uc64(e, d, slot as u64 + 1);
    set_uc64(e, d + 8, x.data_addr);
    set_uc64(e, d + 0x10, x.data_len);
    set_uc64(e, d + 0x18, x.sense_addr);
    set_uc32(e, d + 0x20, x.sense_len);
    set_uc32(e, d + 0x24, x.flags);
    for (i, b) in srb.Cdb.iter().enumerate() {
        // SAFETY: inside the 128-byte descriptor.
        unsafe { e.uc.wrapping_add(d + 0x28 + i).write_volatile(*b) };
    }
    // SAFETY: descriptor bytes at 0x38 (cdbLen), 0x3A (lun[1]), 0x41 (tag), 0x43 (target).
    unsafe { e.uc.wrapping_add(d + 0x38).write_volatile(srb.CdbLength) };
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(d + 0x3A).write_volatile(srb.Lun) };
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(d + 0x41).write_volatile(0x20) };
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(d + 0x43).write_volatile(srb.TargetId) };
    core::sync::atomic::fence(Ordering::SeqCst);
    set_uc32(e, 0, prod.wrapping_add(1));
    wr(p, e, if is_rw(srb.Cdb[0]) { REG_KICK_RW } else { REG_KICK_NON_RW }, 0);
}

/// Completes every request the device holds with `status` and starts the HBA again: what a bus
/// reset, and the reset SRBs, do (pvscsi-facts.md §7). Under the `StartIo` lock.
fn reset_all(p: PVOID, e: &mut DevExt, status: u8) {
    if e.brk == Break::CompleteRequestCall {
        // SAFETY: deliberately discouraged: every request of the bus at once.
        unsafe { stor::StorPortCompleteRequest(p, 0, sys::SP_UNTAGGED, sys::SP_UNTAGGED, status) };
        e.slots = [ptr::null_mut(); MAX_SLOTS];
    }
    for i in 0..MAX_SLOTS {
        let s = e.slots[i];
        if !s.is_null() {
            e.slots[i] = ptr::null_mut();
            // SAFETY: an SRB we own.
            unsafe { (*s).SrbStatus = status };
            complete(p, s);
        }
    }
    e.dropped = ptr::null_mut();
    setup_device(p, e);
}

/// Drains the completion ring, completing each request (the DPC, under the `StartIo` lock).
fn drain(p: PVOID, e: &mut DevExt) -> u32 {
    let mut n = 0;
    let cmp_entries = 1u32 << uc32(e, 0x14).min(12);
    loop {
        let prod = uc32(e, 0xC);
        let cons = uc32(e, 0x10);
        if prod == cons {
            break;
        }
        let d = 2 * PAGE + ((cons & (cmp_entries - 1)) as usize) * 32;
        let ctx = uc64(e, d);
        let data_len = uc64(e, d + 8);
        let sense_len = uc32(e, d + 0x10);
        let hs = uc32(e, d + 0x14);
        let host = hs as u16;
        let scsi = (hs >> 16) as u8;
        set_uc32(e, 0x10, cons.wrapping_add(1));
        let slot = (ctx as usize).wrapping_sub(1);
        let Some(srb_p) = e.slots.get(slot).copied() else { continue };
        if srb_p.is_null() {
            continue;
        }
        let aborting = e.aborting[slot];
        e.slots[slot] = ptr::null_mut();
        e.aborting[slot] = false;
        e.outstanding -= 1;
        // SAFETY: the SRB in that slot is still ours.
        let srb = unsafe { &mut *srb_p };
        srb.ScsiStatus = scsi;
        let mut status = raw::srb_status(srb, host, scsi, data_len, sense_len, aborting);
        let fire = e.armed && !e.broke && is_rw(srb.Cdb[0]);
        match e.brk {
            Break::StatusPending if fire => status = sys::SRB_STATUS_PENDING,
            Break::WriteReadOnly if fire => srb.TargetId ^= 0x40,
            Break::GrowLength if fire => srb.DataTransferLength += 512,
            Break::UnderrunSuccess if fire && srb.DataTransferLength > 0 => {
                srb.DataTransferLength /= 2;
                status = sys::SRB_STATUS_SUCCESS;
            }
            _ => {}
        }
        srb.SrbStatus = status;
        let ext_p = srb.SrbExtension.cast::<u8>();
        let (path, target, lun) = (srb.PathId, srb.TargetId, srb.Lun);
        // The list, for the break that touches it after completion (read before completing).
        // SAFETY: the request is outstanding.
        let list = if fire && e.brk == Break::TouchSgAfter { unsafe { stor::StorPortGetScatterGatherList(p, srb_p) } } else { ptr::null_mut() };
        complete(p, srb_p);
        n += 1;
        if fire {
            let mut fired = true;
            match e.brk {
                Break::CompleteTwice => complete(p, srb_p),
                Break::CompleteBogus => complete(p, e.uc.cast()),
                Break::TouchExtAfter if !ext_p.is_null() => {
                    // SAFETY: deliberately broken: the extension belongs to the port again.
                    unsafe { ext_p.write_volatile(0x55) };
                }
                Break::TouchSrbAfter => {
                    // SAFETY: deliberately broken: the SRB belongs to the port again.
                    let status = unsafe { core::ptr::addr_of!((*srb_p).SrbStatus) };
                    // SAFETY: as above.
                    let _ = unsafe { status.read_volatile() };
                }
                Break::TouchSgAfter if !list.is_null() => {
                    // SAFETY: deliberately broken: the list is valid only until completion.
                    let count = unsafe { core::ptr::addr_of!((*list).NumberOfElements) };
                    // SAFETY: as above.
                    let _ = unsafe { count.read_volatile() };
                }
                Break::LogErrorAfter => {
                    // SAFETY: deliberately broken: a completed SRB passed on.
                    unsafe { stor::StorPortLogError(p, srb_p, path, target, lun, sys::SP_INTERNAL_ADAPTER_ERROR, 1) };
                }
                Break::StatusPending | Break::WriteReadOnly | Break::GrowLength | Break::UnderrunSuccess => {}
                _ => fired = false,
            }
            if fired {
                e.broke = true;
            }
        }
        if e.resume && e.paused {
            e.paused = false;
            // SAFETY: no pointer arguments but the extension.
            let _ = unsafe { stor::StorPortResume(p) };
        }
    }
    n
}

unsafe extern "win64" fn hw_interrupt(p: PVOID) -> BOOLEAN {
    let e = ext(p);
    if e.brk == Break::SlowIsr {
        stall(100);
    }
    // Only what the HBA's mask lets through is its interrupt (the line is INTR_STATUS & INTR_MASK,
    // pvscsi-facts.md §3): while a bus reset or a stop holds the HBA masked, completions the reset
    // posts set status bits with the line low, and a dispatch decided before the mask must not
    // claim them (DDI-storport:nc-storport-hw_interrupt).
    let st = rd(p, e, REG_INTR_STATUS) & rd(p, e, REG_INTR_MASK);
    if e.broke || e.armed {
        match e.brk {
            Break::ClaimForeign if e.armed => {
                if st & INTR_ALL != 0 {
                    wr(p, e, REG_INTR_STATUS, st);
                    e.saved_status.fetch_or(st, Ordering::SeqCst);
                    // SAFETY: the DPC object initialised in the passive routine.
                    let _ = unsafe { stor::StorPortIssueDpc(p, &raw mut e.dpc, ptr::null_mut(), ptr::null_mut()) };
                }
                return TRUE;
            }
            Break::Storm if e.armed => return FALSE,
            Break::NoClear if e.armed && st & INTR_ALL != 0 => {
                e.broke = true;
                return TRUE;
            }
            Break::SyncInIsr if e.armed && !e.broke => {
                e.broke = true;
                // SAFETY: deliberately broken: the ISR holds the interrupt lock already.
                let _ = unsafe { stor::StorPortSynchronizeAccess(p, Some(take_status), ptr::null_mut()) };
            }
            _ => {}
        }
    }
    if st & INTR_ALL == 0 {
        return FALSE;
    }
    // Acknowledge (write 1 to clear): the line drops; what completed is in the ring for the DPC.
    wr(p, e, REG_INTR_STATUS, st);
    e.saved_status.fetch_or(st, Ordering::SeqCst);
    // SAFETY: the DPC object initialised in the passive routine.
    let _ = unsafe { stor::StorPortIssueDpc(p, &raw mut e.dpc, ptr::null_mut(), ptr::null_mut()) };
    TRUE
}

/// The `STOR_SYNCHRONIZED_ACCESS` routine: takes what the ISR saved.
unsafe extern "win64" fn take_status(p: PVOID, out: PVOID) -> BOOLEAN {
    let e = ext(p);
    let st = e.saved_status.swap(0, Ordering::SeqCst);
    if !out.is_null() {
        // SAFETY: the caller's u32.
        unsafe { out.cast::<u32>().write(st) };
    }
    TRUE
}

unsafe extern "win64" fn hw_dpc(_dpc: stor::PSTOR_DPC, p: PVOID, _a1: PVOID, _a2: PVOID) {
    let e = ext(p);
    let mut saved = 0u32;
    // SAFETY: our routine and a u32 for it, under the interrupt lock.
    let _ = unsafe { stor::StorPortSynchronizeAccess(p, Some(take_status), (&raw mut saved).cast()) };
    let mut h = stor::STOR_LOCK_HANDLE::zeroed();
    let fire = e.armed && !e.broke;
    if fire && e.brk == Break::LockOrder {
        e.broke = true;
        let mut i = stor::STOR_LOCK_HANDLE::zeroed();
        // SAFETY: deliberately broken: the interrupt lock, then the `StartIo` lock.
        unsafe { stor::StorPortAcquireSpinLock(p, stor::InterruptLock, ptr::null_mut(), &raw mut i) };
        // SAFETY: as above.
        unsafe { stor::StorPortAcquireSpinLock(p, stor::StartIoLock, ptr::null_mut(), &raw mut h) };
        // SAFETY: releases the interrupt lock taken above.
        unsafe { stor::StorPortReleaseSpinLock(p, &raw mut i) };
        return;
    }
    if fire && e.brk == Break::ReleaseUnheld {
        e.broke = true;
        let mut other = stor::STOR_LOCK_HANDLE::zeroed();
        // SAFETY: deliberately broken: a handle that holds nothing.
        unsafe { stor::StorPortReleaseSpinLock(p, &raw mut other) };
        return;
    }
    // SAFETY: the DPC takes the `StartIo` lock around the rings and slots it shares with
    // HwStorStartIo (DDI-storport:nf-storport-storportacquirespinlock).
    unsafe { stor::StorPortAcquireSpinLock(p, stor::StartIoLock, ptr::null_mut(), &raw mut h) };
    if fire && e.brk == Break::LockTwice {
        e.broke = true;
        let mut again = stor::STOR_LOCK_HANDLE::zeroed();
        // SAFETY: deliberately broken: the `StartIo` lock is held.
        unsafe { stor::StorPortAcquireSpinLock(p, stor::StartIoLock, ptr::null_mut(), &raw mut again) };
    }
    drain(p, e);
    if fire && e.brk == Break::LockLeak {
        e.broke = true;
        return;
    }
    // SAFETY: releases the lock taken above with its handle.
    unsafe { stor::StorPortReleaseSpinLock(p, &raw mut h) };
}

unsafe extern "win64" fn hw_reset_bus(p: PVOID, _path: ULONG) -> BOOLEAN {
    let e = ext(p);
    if matches!(e.brk, Break::IgnoreReset | Break::DropIoIgnoreResets) {
        return TRUE;
    }
    reset_all(p, e, sys::SRB_STATUS_BUS_RESET);
    TRUE
}

unsafe extern "win64" fn hw_adapter_control(p: PVOID, ty: SCSI_ADAPTER_CONTROL_TYPE, params: PVOID) -> SCSI_ADAPTER_CONTROL_STATUS {
    let e = ext(p);
    match ty {
        sys::ScsiQuerySupportedControlTypes => {
            let list = params.cast::<sys::SCSI_SUPPORTED_CONTROL_TYPE_LIST>();
            // SAFETY: the port's list: MaxControlType then that many BOOLEANs.
            let max = unsafe { (*list).MaxControlType } as usize;
            // SAFETY: as above.
            let entries = unsafe { core::ptr::addr_of_mut!((*list).SupportedTypeList).cast::<BOOLEAN>() };
            let n = if e.brk == Break::ControlOverrun { max + 2 } else { max.min(3) };
            for i in 0..n {
                let on = !(i == sys::ScsiRestartAdapter as usize && e.brk == Break::NoRestart);
                // SAFETY: within the list, but for the deliberately broken overrun.
                unsafe { entries.wrapping_add(i).write(BOOLEAN::from(on)) };
            }
            if e.brk == Break::ControlFail {
                return sys::ScsiAdapterControlUnsuccessful;
            }
        }
        sys::ScsiStopAdapter => wr(p, e, REG_INTR_MASK, 0),
        sys::ScsiRestartAdapter => {
            e.restarts += 1;
            if e.brk == Break::PassiveFromControl {
                // SAFETY: deliberately broken: HwStorInitialize called directly from here.
                let _ = unsafe { hw_initialize(p) };
            } else {
                setup_device(p, e);
            }
        }
        _ => {}
    }
    sys::ScsiAdapterControlSuccess
}
