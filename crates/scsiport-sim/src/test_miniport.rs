//! A small PVSCSI miniport written directly on `scsiport-sys`, for the emulator's own tests and the
//! CLI, with knobs that break one rule each.
//!
//! It follows pvscsi-facts.md §9: reset, `SETUP_RINGS`, one request page and one completion page
//! (queue depth ≤ 8), scatter/gather lists in the uncached extension, kicks after each request, and
//! by default the "ISR masks, enable callback drains, disable callback unmasks" protocol of
//! contract §4.3. Knobs come from `ArgumentString` (per machine, so many machines can run it at
//! once), e.g. `"qd=4 defer=1 tagged=1 break=complete_twice"`:
//!
//! | key | meaning |
//! | --- | --- |
//! | `qd=N` | requests outstanding at the device (1..=8, default 4) |
//! | `defer=0/1` | 1 (default): the `CallEnableInterrupts` protocol; 0: drain in the ISR |
//! | `tagged=1` | `TaggedQueuing` + `MultipleRequestPerLu`, `NextLuRequest` for tagged requests |
//! | `map=1` | `MapBuffers` TRUE |
//! | `nophys=1` | `NeedPhysicalAddresses` FALSE |
//! | `timer=1` | a 10 ms `HwScsiTimer` that re-arms itself |
//! | `caches=1` | `CachesData` TRUE (the port then sends FLUSH) |
//! | `break=NAME` | break one rule on the first request that is not an INQUIRY (see [`Break`]) |
//!
//! The broken behaviours are deliberate: each one exists so that a test can prove the verifier
//! catches it.
#![allow(
    non_snake_case,
    clippy::missing_safety_doc,
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    clippy::struct_excessive_bools,
    clippy::many_single_char_names,
    // The uncached extension is page-aligned and every descriptor field is naturally aligned.
    clippy::cast_ptr_alignment,
    // Physical addresses travel as LARGE_INTEGER.QuadPart.
    clippy::cast_sign_loss
)]

use core::ffi::c_void;
use core::ptr;

use scsiport_sys as sys;
use sys::{
    BOOLEAN, FALSE, HW_INITIALIZATION_DATA, PBOOLEAN, PCHAR, PORT_CONFIGURATION_INFORMATION, PULONG, PVOID,
    SCSI_ADAPTER_CONTROL_STATUS, SCSI_ADAPTER_CONTROL_TYPE, SCSI_REQUEST_BLOCK, TRUE, ULONG,
};

use crate::raw_miniport::{self as raw, CMD_ABORT_CMD, CMD_ADAPTER_RESET, CMD_SETUP_RINGS, FLAG_DIR_NONE, FLAG_DIR_TODEVICE, FLAG_DIR_TOHOST, FLAG_SG, INTR_ALL, INTR_CMPL_MASK, PAGE, REG_COMMAND, REG_COMMAND_DATA, REG_COMMAND_STATUS, REG_INTR_MASK, REG_INTR_STATUS, REG_KICK_NON_RW, REG_KICK_RW};

const MAX_SLOTS: usize = 8;
/// Uncached extension: rings state, one request page, one completion page, 8 × 2 KiB S/G lists.
const UNCACHED_BYTES: u32 = (7 * PAGE) as u32;
const SG_OFF: usize = 3 * PAGE;
const SG_PER_SLOT: usize = 2048;

/// The rule a miniport instance breaks (`break=NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Break {
    /// Nothing.
    None = 0,
    /// `RequestComplete` twice for the same SRB (0x1003).
    CompleteTwice,
    /// `RequestComplete` of a pointer that is no SRB (0x1003).
    CompleteBogus,
    /// Never signal readiness again (0x1115).
    SkipNextRequest,
    /// Enable callback returns without `CallDisableInterrupts` (0x1135).
    NoDisable,
    /// Disable callback does not unmask (0x1137).
    LeaveMasked,
    /// Write the SRB extension after completion (0xD1).
    TouchExtAfter,
    /// Read the SRB after completion (0xD1).
    TouchSrbAfter,
    /// Dereference `DataBuffer` with `MapBuffers` FALSE (0xD1).
    DerefDataBuffer,
    /// Complete with `SRB_STATUS_PENDING` (0x1004).
    StatusPending,
    /// Complete with `SRB_STATUS_QUEUE_FROZEN` set (0x1004).
    StatusFrozen,
    /// Set `AUTOSENSE_VALID` on a request with `DISABLE_AUTOSENSE` (0x1004).
    AutosenseDisabled,
    /// `ScsiPortGetUncachedExtension` twice in `FindAdapter` (0x1104).
    UncachedTwice,
    /// `ScsiPortGetUncachedExtension` from `HwScsiInitialize` (0x1104).
    UncachedInInit,
    /// Stall 200 ms in `StartIo` (0x1001).
    Stall200ms,
    /// Stall 6 × 90 ms in `StartIo` (0x1002; each stall also warns 0x1138).
    SlowStartIo,
    /// Stall 2 ms in `StartIo` (warning 0x1138 only).
    Stall2ms,
    /// Lose 600 ms of wall-clock time in `StartIo` without running, as when a loaded host gives
    /// the thread's CPU to others: nothing in either schedule, since a routine is not preempted
    /// on Windows and the time is none of the driver's doing.
    HostSlowStartIo,
    /// Run 600 ms of CPU time in `StartIo` without stalling: 0x1002 in the concurrent schedule,
    /// whose machine time is the routine's CPU time; nothing in the deterministic one, whose
    /// machine time is virtual (valgrind or a loaded host would make any routine that slow).
    BusyStartIo,
    /// Write Srb->`TargetId` (0x1112).
    WriteReadOnly,
    /// Grow `DataTransferLength` (0x1113).
    GrowLength,
    /// Reduce `DataTransferLength` with `SRB_STATUS_SUCCESS` (0x1114).
    UnderrunSuccess,
    /// `NextLuRequest` while the untagged request is active (0x1005; needs `tagged=1`).
    NextLuUntagged,
    /// `NextLuRequest` without tagged queuing (0x1116).
    NextLuNotAllowed,
    /// `ScsiPortGetPhysicalAddress` of a stack address (0x1006).
    BadPhysical,
    /// Translate the SRB extension with `NeedPhysicalAddresses` FALSE (0x1117; needs `nophys=1`).
    ExtensionPhysical,
    /// `ScsiPortGetVirtualAddress` of a bogus PA (0x1118).
    BadVirtual,
    /// ISR claims every call, even for another HBA (0x1130).
    ClaimForeign,
    /// ISR never claims nor clears (0x1131).
    Storm,
    /// ISR claims without clearing (0x1132; `defer=0`).
    NoClear,
    /// `CallEnableInterrupts` from `StartIo` (0x1133).
    EnableOutsideIsr,
    /// ISR requests `CallEnableInterrupts` without masking the HBA (0x1134).
    EnableNoMask,
    /// `CallDisableInterrupts` from the ISR (0x1136).
    DisableOutsideEnable,
    /// `StartIo` returns FALSE (0x1110).
    StartIoFalse,
    /// `ScsiPortNotification(LinkUp)` (0x1160).
    UnsupportedNotification,
    /// `ScsiPortReadPortUlong` on the memory range (0x1120).
    WrongRegisterKind,
    /// Register read past the mapped range (0x1120).
    RegisterOutOfRange,
    /// Dereference the mapped register address directly (0xD1).
    DirectMmio,
    /// Write past the control-type list (0x1150).
    ControlOverrun,
    /// Return `ScsiAdapterControlUnsuccessful` (0x1151).
    ControlFail,
    /// Do not support `ScsiStopAdapter` (0x1152).
    NoStop,
    /// Leave a pending completion unmasked during `ScsiSetRunningConfig` (0x1153).
    IrqInRunningConfig,
    /// Swallow the request: never post it (times out → `HwScsiResetBus`).
    DropIo,
    /// Swallow the request and make `HwScsiResetBus` complete nothing (0x1007).
    DropIoIgnoreReset,
    /// Return `SP_RETURN_FOUND` with *Again untouched... set to 7 (0x1102).
    BadAgain,
    /// `Dma64BitAddresses` (miniport) with `Dma32BitAddresses` TRUE (0x1103).
    BadConfig,
    /// `ScsiPortGetDeviceBase` of an address the port did not assign (0x1106).
    UnassignedRange,
    /// `ScsiPortValidateRange` from `HwScsiInitialize` (0x1105).
    ValidateOutside,
    /// `RequestTimerCall` with a NULL routine (0x113A).
    TimerNull,
    /// `ScsiPortNotification` with another device extension (0x1121).
    WrongExtension,
    /// `ScsiPortLogError` with a completed SRB (0x1111).
    LogErrorAfter,
    /// `ScsiPortInitialize` from `HwScsiInitialize` (0x1000).
    InitializeOutside,
    /// Complete every request with `SRB_STATUS_BUSY` (the port's retry cap).
    AlwaysBusy,
    /// Stall 100 µs in the ISR (warning 0x1139 when enabled).
    SlowIsr,
    /// `ScsiPortNotification(NextRequest)` from `HwScsiFindAdapter` (warning 0x113B).
    NotifyInFindAdapter,
    /// `ScsiPortFreeDeviceBase` of an address `GetDeviceBase` never returned (0x1161).
    FreeBogusBase,
    /// Keep the `CallEnableInterrupts` protocol in dump mode (0x1133).
    DeferInDump,
    /// Return `SP_RETURN_NOT_FOUND` without freeing the register mapping (0x1103).
    NotFoundKeepMapping,
    /// Enlarge `SrbExtensionSize` after `ScsiPortGetUncachedExtension` (0x1104).
    SizeAfterUncached,
    /// Not a rule break: announce `BusChangeDetected(0)` once, so the port re-enumerates.
    BusChange,
    /// The ISR dismisses (W1C) instead of masking before `CallEnableInterrupts` (0x1134 when the
    /// HBA interrupts again inside the deferral window).
    EnableDismissOnly,
    /// `HwScsiResetBus` does nothing and returns TRUE: the requests outstanding at a
    /// port-initiated reset stay with the device (0x1007 if one is still outstanding when the
    /// hold ends). I/O is not affected.
    IgnoreReset,
}

const BREAKS: &[(&str, Break)] = &[
    ("complete_twice", Break::CompleteTwice),
    ("complete_bogus", Break::CompleteBogus),
    ("skip_next_request", Break::SkipNextRequest),
    ("no_disable", Break::NoDisable),
    ("leave_masked", Break::LeaveMasked),
    ("touch_ext_after", Break::TouchExtAfter),
    ("touch_srb_after", Break::TouchSrbAfter),
    ("deref_databuffer", Break::DerefDataBuffer),
    ("status_pending", Break::StatusPending),
    ("status_frozen", Break::StatusFrozen),
    ("autosense_disabled", Break::AutosenseDisabled),
    ("uncached_twice", Break::UncachedTwice),
    ("uncached_in_init", Break::UncachedInInit),
    ("stall_200ms", Break::Stall200ms),
    ("slow_startio", Break::SlowStartIo),
    ("stall_2ms", Break::Stall2ms),
    ("host_slow_startio", Break::HostSlowStartIo),
    ("busy_startio", Break::BusyStartIo),
    ("write_read_only", Break::WriteReadOnly),
    ("grow_length", Break::GrowLength),
    ("underrun_success", Break::UnderrunSuccess),
    ("next_lu_untagged", Break::NextLuUntagged),
    ("next_lu_not_allowed", Break::NextLuNotAllowed),
    ("bad_physical", Break::BadPhysical),
    ("extension_physical", Break::ExtensionPhysical),
    ("bad_virtual", Break::BadVirtual),
    ("claim_foreign", Break::ClaimForeign),
    ("storm", Break::Storm),
    ("no_clear", Break::NoClear),
    ("enable_outside_isr", Break::EnableOutsideIsr),
    ("enable_no_mask", Break::EnableNoMask),
    ("disable_outside_enable", Break::DisableOutsideEnable),
    ("startio_false", Break::StartIoFalse),
    ("unsupported_notification", Break::UnsupportedNotification),
    ("wrong_register_kind", Break::WrongRegisterKind),
    ("register_out_of_range", Break::RegisterOutOfRange),
    ("direct_mmio", Break::DirectMmio),
    ("control_overrun", Break::ControlOverrun),
    ("control_fail", Break::ControlFail),
    ("no_stop", Break::NoStop),
    ("irq_in_running_config", Break::IrqInRunningConfig),
    ("drop_io", Break::DropIo),
    ("drop_io_ignore_reset", Break::DropIoIgnoreReset),
    ("bad_again", Break::BadAgain),
    ("bad_config", Break::BadConfig),
    ("unassigned_range", Break::UnassignedRange),
    ("validate_outside", Break::ValidateOutside),
    ("timer_null", Break::TimerNull),
    ("wrong_extension", Break::WrongExtension),
    ("log_error_after", Break::LogErrorAfter),
    ("initialize_outside", Break::InitializeOutside),
    ("always_busy", Break::AlwaysBusy),
    ("slow_isr", Break::SlowIsr),
    ("notify_in_find_adapter", Break::NotifyInFindAdapter),
    ("free_bogus_base", Break::FreeBogusBase),
    ("defer_in_dump", Break::DeferInDump),
    ("not_found_keep_mapping", Break::NotFoundKeepMapping),
    ("size_after_uncached", Break::SizeAfterUncached),
    ("bus_change", Break::BusChange),
    ("enable_dismiss_only", Break::EnableDismissOnly),
    ("ignore_reset", Break::IgnoreReset),
];

impl Break {
    /// The knob name (`break=NAME`).
    #[must_use]
    pub fn name(self) -> &'static str {
        BREAKS.iter().find(|(_, b)| *b == self).map_or("none", |(n, _)| n)
    }
}

#[repr(C)]
struct Slot {
    srb: *mut SCSI_REQUEST_BLOCK,
    aborting: bool,
}

/// The device extension.
#[repr(C)]
struct DevExt {
    regs: usize,
    uc: *mut u8,
    uc_pa: u64,
    slots: [Slot; MAX_SLOTS],
    outstanding: u32,
    qd: u32,
    need_next: bool,
    need_next_lu: Option<(u8, u8, u8)>,
    defer: bool,
    tagged: bool,
    map: bool,
    nophys: bool,
    timer: bool,
    caches: bool,
    dump: bool,
    brk: Break,
    armed: bool,
    broke: bool,
    saved_status: u32,
    timer_calls: u32,
    dropped: *mut SCSI_REQUEST_BLOCK,
    last_completed: *mut SCSI_REQUEST_BLOCK,
    last_ext: *mut u8,
}

/// The `HW_INITIALIZATION_DATA` the normal `DriverEntry` registers.
fn init_data() -> HW_INITIALIZATION_DATA {
    // SAFETY: HW_INITIALIZATION_DATA is plain data; all-zero is what DriverEntry must start from
    // (`DDI:ns-srb-_hw_initialization_data`).
    let mut h: HW_INITIALIZATION_DATA = unsafe { core::mem::zeroed() };
    h.HwInitializationDataSize = core::mem::size_of::<HW_INITIALIZATION_DATA>() as ULONG;
    h.AdapterInterfaceType = sys::PCIBus;
    h.HwInitialize = Some(hw_initialize);
    h.HwStartIo = Some(hw_start_io);
    h.HwInterrupt = Some(hw_interrupt);
    h.HwFindAdapter = Some(hw_find_adapter);
    h.HwResetBus = Some(hw_reset_bus);
    h.HwAdapterControl = Some(hw_adapter_control);
    h.DeviceExtensionSize = core::mem::size_of::<DevExt>() as ULONG;
    h.SpecificLuExtensionSize = 16;
    h.SrbExtensionSize = 64;
    h.NumberOfAccessRanges = 2;
    h.NeedPhysicalAddresses = TRUE;
    h.AutoRequestSense = TRUE;
    h
}

/// `DriverEntry` of the test miniport.
pub unsafe extern "win64" fn driver_entry(a1: PVOID, a2: PVOID) -> ULONG {
    let mut h = init_data();
    // SAFETY: the port's ScsiPortInitialize with our arguments and init data.
    unsafe { sys::ScsiPortInitialize(a1, a2, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` with a wrong `HwInitializationDataSize` (0x1000).
pub unsafe extern "win64" fn driver_entry_bad_size(a1: PVOID, a2: PVOID) -> ULONG {
    let mut h = init_data();
    h.HwInitializationDataSize = 16;
    // SAFETY: as in `driver_entry`.
    unsafe { sys::ScsiPortInitialize(a1, a2, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` without `HwStartIo` (0x1000).
pub unsafe extern "win64" fn driver_entry_no_start_io(a1: PVOID, a2: PVOID) -> ULONG {
    let mut h = init_data();
    h.HwStartIo = None;
    // SAFETY: as in `driver_entry`.
    unsafe { sys::ScsiPortInitialize(a1, a2, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` that passes other arguments than its own (0x1000).
pub unsafe extern "win64" fn driver_entry_wrong_args(_a1: PVOID, _a2: PVOID) -> ULONG {
    let mut h = init_data();
    let mut token = 0u64;
    let p: PVOID = (&raw mut token).cast();
    // SAFETY: as in `driver_entry`.
    unsafe { sys::ScsiPortInitialize(p, p, &raw mut h, ptr::null_mut()) }
}

/// A `DriverEntry` that returns something else than `ScsiPortInitialize`'s status (0x1101).
pub unsafe extern "win64" fn driver_entry_wrong_return(a1: PVOID, a2: PVOID) -> ULONG {
    // SAFETY: forwarded.
    let s = unsafe { driver_entry(a1, a2) };
    s.wrapping_add(0x42)
}

fn ext(p: PVOID) -> &'static mut DevExt {
    // SAFETY: the port passes our device extension, sized for DevExt and zeroed before FindAdapter.
    unsafe { &mut *p.cast::<DevExt>() }
}

fn rd(e: &DevExt, off: usize) -> u32 {
    // SAFETY: `regs` is the base ScsiPortGetDeviceBase returned for the 32 KiB window.
    unsafe { sys::ScsiPortReadRegisterUlong((e.regs + off) as PULONG) }
}

fn wr(e: &DevExt, off: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { sys::ScsiPortWriteRegisterUlong((e.regs + off) as PULONG, v) };
}

fn uc_read32(e: &DevExt, off: usize) -> u32 {
    // SAFETY: `off` lies in the uncached extension (UNCACHED_BYTES).
    unsafe { e.uc.wrapping_add(off).cast::<u32>().read_volatile() }
}

fn uc_write32(e: &DevExt, off: usize, v: u32) {
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(off).cast::<u32>().write_volatile(v) };
}

fn uc_write64(e: &DevExt, off: usize, v: u64) {
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(off).cast::<u64>().write_volatile(v) };
}

fn uc_read64(e: &DevExt, off: usize) -> u64 {
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(off).cast::<u64>().read_volatile() }
}

fn notify0(ty: i32, p: PVOID) {
    // SAFETY: ScsiPortNotification with a type that takes no further arguments.
    unsafe { sys::ScsiPortNotification(ty, p) };
}

fn complete(p: PVOID, srb: *mut SCSI_REQUEST_BLOCK) {
    // SAFETY: RequestComplete takes the SRB.
    unsafe { sys::ScsiPortNotification(sys::RequestComplete, p, srb) };
}

fn next_lu(p: PVOID, path: u8, target: u8, lun: u8) {
    // SAFETY: NextLuRequest takes three UCHARs, promoted to int.
    unsafe { sys::ScsiPortNotification(sys::NextLuRequest, p, u32::from(path), u32::from(target), u32::from(lun)) };
}

fn parse_args(e: &mut DevExt, arg: PCHAR) {
    e.qd = 4;
    e.defer = true;
    // SAFETY: the port passes NULL or a NUL-terminated ASCII string, alive for this call.
    for (k, v, on) in unsafe { raw::knobs(arg) } {
        match k {
            "qd" => e.qd = v.parse::<u32>().unwrap_or(4).clamp(1, MAX_SLOTS as u32),
            "defer" => e.defer = on,
            "tagged" => e.tagged = on,
            "map" => e.map = on,
            "nophys" => e.nophys = on,
            "timer" => e.timer = on,
            "caches" => e.caches = on,
            "dump" => e.dump = on,
            "break" => e.brk = BREAKS.iter().find(|(n, _)| *n == v).map_or(Break::None, |(_, b)| *b),
            _ => {}
        }
    }
    if e.dump && e.brk != Break::DeferInDump {
        e.defer = false;
    }
}

/// The rings: reset, `SETUP_RINGS`, unmask (pvscsi-facts.md §9 steps 2, 5, 6, 9).
fn setup_device(e: &mut DevExt) {
    wr(e, REG_INTR_MASK, 0);
    wr(e, REG_COMMAND, CMD_ADAPTER_RESET);
    wr(e, REG_INTR_STATUS, INTR_ALL);
    for off in (0..3 * PAGE).step_by(4) {
        uc_write32(e, off, 0);
    }
    let words = raw::setup_rings_words(e.uc_pa);
    wr(e, REG_COMMAND, CMD_SETUP_RINGS);
    for w in words {
        wr(e, REG_COMMAND_DATA, w);
    }
    let _ = rd(e, REG_COMMAND_STATUS);
    for s in &mut e.slots {
        s.srb = ptr::null_mut();
        s.aborting = false;
    }
    e.outstanding = 0;
    if !e.dump {
        wr(e, REG_INTR_MASK, INTR_CMPL_MASK);
    }
}

unsafe extern "win64" fn hw_find_adapter(
    p: PVOID,
    _ctx: PVOID,
    _bus: PVOID,
    arg: PCHAR,
    cfg: *mut PORT_CONFIGURATION_INFORMATION,
    again: PBOOLEAN,
) -> ULONG {
    let e = ext(p);
    parse_args(e, arg);
    // SAFETY: the port's ConfigInfo, valid for this call.
    let c = unsafe { &mut *cfg };
    // SAFETY: the port's access-range array of NumberOfAccessRanges entries.
    let ranges = unsafe { core::slice::from_raw_parts(c.AccessRanges, c.NumberOfAccessRanges as usize) };
    let Some(r) = ranges.iter().find(|r| r.RangeInMemory != FALSE && r.RangeLength >= 0x8000) else {
        // SAFETY: the port's Again.
        unsafe { again.write(FALSE) };
        return sys::SP_RETURN_NOT_FOUND;
    };
    let mut start = r.RangeStart;
    if e.brk == Break::UnassignedRange {
        start.QuadPart += 0x1000_0000;
    }
    // SAFETY: a supplied memory range.
    let base = unsafe { sys::ScsiPortGetDeviceBase(p, c.AdapterInterfaceType, c.SystemIoBusNumber, start, 0x8000, FALSE) };
    if base.is_null() {
        // SAFETY: as above.
        unsafe { again.write(FALSE) };
        return sys::SP_RETURN_ERROR;
    }
    e.regs = base as usize;
    if e.brk == Break::NotFoundKeepMapping {
        // SAFETY: the port's Again.
        unsafe { again.write(FALSE) };
        return sys::SP_RETURN_NOT_FOUND;
    }
    if e.brk == Break::NotifyInFindAdapter {
        notify0(sys::NextRequest, p);
    }
    if e.brk == Break::FreeBogusBase {
        // SAFETY: deliberately broken: an address GetDeviceBase did not return.
        unsafe { sys::ScsiPortFreeDeviceBase(p, 0x1234 as PVOID) };
    }
    c.NumberOfBuses = 1;
    c.InitiatorBusId[0] = 7;
    c.MaximumNumberOfTargets = 16;
    c.MaximumNumberOfLogicalUnits = 1;
    c.ScatterGather = TRUE;
    c.Master = TRUE;
    c.MaximumTransferLength = 256 * 1024;
    c.NumberOfPhysicalBreaks = 64;
    c.AlignmentMask = 3;
    c.Dma64BitAddresses = sys::SCSI_DMA64_MINIPORT_SUPPORTED;
    c.TaggedQueuing = BOOLEAN::from(e.tagged);
    c.MultipleRequestPerLu = BOOLEAN::from(e.tagged);
    c.MapBuffers = BOOLEAN::from(e.map);
    c.NeedPhysicalAddresses = BOOLEAN::from(!e.nophys);
    c.CachesData = BOOLEAN::from(e.caches);
    if e.brk == Break::BadConfig {
        c.Dma32BitAddresses = TRUE;
    }
    // SAFETY: the port's ConfigInfo; FindAdapter is the place for the uncached extension.
    let uc = unsafe { sys::ScsiPortGetUncachedExtension(p, cfg, UNCACHED_BYTES) };
    if e.brk == Break::UncachedTwice {
        // SAFETY: deliberately broken: a second call.
        let _ = unsafe { sys::ScsiPortGetUncachedExtension(p, cfg, UNCACHED_BYTES) };
    }
    if uc.is_null() {
        // SAFETY: as above.
        unsafe { again.write(FALSE) };
        return sys::SP_RETURN_ERROR;
    }
    e.uc = uc.cast();
    if e.brk == Break::SizeAfterUncached {
        c.SrbExtensionSize += 64;
    }
    let mut len: ULONG = 0;
    // SAFETY: the uncached extension's address, Srb NULL.
    let pa = unsafe { sys::ScsiPortGetPhysicalAddress(p, ptr::null_mut(), uc, &raw mut len) };
    e.uc_pa = pa.QuadPart as u64;
    if e.brk == Break::BadAgain {
        // SAFETY: deliberately broken: an undefined value.
        unsafe { again.write(7) };
    } else {
        // SAFETY: the port's Again.
        unsafe { again.write(FALSE) };
    }
    sys::SP_RETURN_FOUND
}

unsafe extern "win64" fn hw_initialize(p: PVOID) -> BOOLEAN {
    let e = ext(p);
    if e.brk == Break::UncachedInInit {
        // SAFETY: deliberately broken: outside HwScsiFindAdapter.
        let _ = unsafe { sys::ScsiPortGetUncachedExtension(p, ptr::null_mut(), 4096) };
    }
    if e.brk == Break::ValidateOutside {
        // SAFETY: deliberately broken: outside HwScsiFindAdapter.
        let _ = unsafe { sys::ScsiPortValidateRange(p, sys::PCIBus, 0, sys::LARGE_INTEGER { QuadPart: 0 }, 16, FALSE) };
    }
    if e.brk == Break::InitializeOutside {
        let mut h = init_data();
        // SAFETY: deliberately broken: outside DriverEntry.
        let _ = unsafe { sys::ScsiPortInitialize(ptr::null_mut(), ptr::null_mut(), &raw mut h, ptr::null_mut()) };
    }
    setup_device(e);
    if e.timer {
        // SAFETY: RequestTimerCall takes the timer routine and microseconds.
        unsafe { sys::ScsiPortNotification(sys::RequestTimerCall, p, Some(hw_timer as unsafe extern "win64" fn(PVOID)), 10_000u32) };
    }
    if e.brk == Break::TimerNull {
        // SAFETY: deliberately broken: a NULL routine.
        unsafe { sys::ScsiPortNotification(sys::RequestTimerCall, p, ptr::null_mut::<c_void>(), 10_000u32) };
    }
    TRUE
}

unsafe extern "win64" fn hw_timer(p: PVOID) {
    let e = ext(p);
    e.timer_calls += 1;
    if e.dump {
        drain(p, e, false);
    }
    // SAFETY: re-arm.
    unsafe { sys::ScsiPortNotification(sys::RequestTimerCall, p, Some(hw_timer as unsafe extern "win64" fn(PVOID)), 10_000u32) };
}

fn signal_ready(p: PVOID, e: &mut DevExt, srb: &SCSI_REQUEST_BLOCK) {
    if e.broke && e.brk == Break::SkipNextRequest {
        return;
    }
    if e.tagged && srb.QueueTag != sys::SP_UNTAGGED {
        next_lu(p, srb.PathId, srb.TargetId, srb.Lun);
    } else {
        notify0(sys::NextRequest, p);
    }
}

fn free_slot(e: &DevExt) -> Option<usize> {
    e.slots.iter().take(e.qd as usize).position(|s| s.srb.is_null())
}

unsafe extern "win64" fn hw_start_io(p: PVOID, srb_p: *mut SCSI_REQUEST_BLOCK) -> BOOLEAN {
    let e = ext(p);
    // SAFETY: the port's SRB, ours until completion.
    let srb = unsafe { &mut *srb_p };
    if srb.Function == sys::SRB_FUNCTION_EXECUTE_SCSI && srb.Cdb[0] != 0x12 {
        e.armed = true;
    }
    let fire = e.armed && !e.broke && e.brk != Break::None;
    if fire {
        e.broke = true;
    }
    if fire {
        match e.brk {
            Break::Stall200ms => {
                // SAFETY: deliberately broken.
                unsafe { sys::ScsiPortStallExecution(200_000) };
            }
            Break::SlowStartIo => {
                for _ in 0..6 {
                    // SAFETY: deliberately broken.
                    unsafe { sys::ScsiPortStallExecution(90_000) };
                }
            }
            Break::Stall2ms => {
                // SAFETY: a long but legal stall.
                unsafe { sys::ScsiPortStallExecution(2_000) };
            }
            Break::HostSlowStartIo => std::thread::sleep(std::time::Duration::from_millis(600)),
            Break::BusyStartIo => {
                let start = crate::port::thread_cpu_ns();
                while crate::port::thread_cpu_ns().saturating_sub(start) < 600_000_000 {
                    std::hint::spin_loop();
                }
            }
            Break::EnableOutsideIsr => {
                // SAFETY: deliberately broken: not from the ISR.
                unsafe { sys::ScsiPortNotification(sys::CallEnableInterrupts, p, Some(enable_cb as unsafe extern "win64" fn(PVOID) -> BOOLEAN)) };
            }
            Break::UnsupportedNotification => notify0(sys::LinkUp, p),
            // SAFETY: BusChangeDetected takes the PathId, promoted to int.
            Break::BusChange => unsafe { sys::ScsiPortNotification(sys::BusChangeDetected, p, 0u32) },
            Break::WrongRegisterKind => {
                // SAFETY: deliberately broken: a Port accessor on a memory range.
                let _ = unsafe { sys::ScsiPortReadPortUlong((e.regs + REG_INTR_STATUS) as PULONG) };
            }
            Break::RegisterOutOfRange => {
                let _ = rd(e, 0x8000);
            }
            Break::DirectMmio => {
                // SAFETY: deliberately broken: the mapped address is only for ScsiPortRead*.
                let _ = unsafe { ((e.regs + REG_INTR_STATUS) as *const u32).read_volatile() };
            }
            Break::BadPhysical => {
                let local = 0u64;
                let mut len: ULONG = 0;
                // SAFETY: deliberately broken: a stack address.
                let _ = unsafe { sys::ScsiPortGetPhysicalAddress(p, ptr::null_mut(), (&raw const local).cast_mut().cast(), &raw mut len) };
            }
            Break::ExtensionPhysical => {
                let mut len: ULONG = 0;
                // SAFETY: the SRB extension; broken only because NeedPhysicalAddresses is FALSE.
                let _ = unsafe { sys::ScsiPortGetPhysicalAddress(p, ptr::null_mut(), srb.SrbExtension, &raw mut len) };
            }
            Break::BadVirtual => {
                // SAFETY: deliberately broken: a PA nobody returned.
                let _ = unsafe { sys::ScsiPortGetVirtualAddress(p, sys::LARGE_INTEGER { QuadPart: 0x1234_5000 }) };
            }
            Break::WrongExtension => {
                let mut other = [0u8; 16];
                notify0(sys::NextRequest, other.as_mut_ptr().cast());
            }
            Break::DerefDataBuffer if !srb.DataBuffer.is_null() => {
                // SAFETY: deliberately broken: `MapBuffers` is FALSE.
                let _ = unsafe { srb.DataBuffer.cast::<u8>().read_volatile() };
            }
            Break::NextLuNotAllowed => next_lu(p, srb.PathId, srb.TargetId, srb.Lun),
            _ => {}
        }
    }
    if e.brk == Break::NextLuUntagged && e.armed && srb.QueueTag == sys::SP_UNTAGGED {
        next_lu(p, srb.PathId, srb.TargetId, srb.Lun);
    }
    if let Some(ext_p) = (!srb.SrbExtension.is_null()).then_some(srb.SrbExtension.cast::<u64>()) {
        // Per-request state lives in the SRB extension; the port leaves it uninitialised.
        // SAFETY: the SRB extension of 64 bytes.
        unsafe { ext_p.write(0) };
    }
    match srb.Function {
        sys::SRB_FUNCTION_EXECUTE_SCSI => start_scsi(p, e, srb_p, fire),
        sys::SRB_FUNCTION_ABORT_COMMAND => {
            // SAFETY: ScsiPortGetSrb for the untagged or tagged request of that LU.
            let victim = srb.NextSrb;
            let mut found = false;
            if let Some(i) = e.slots.iter().position(|s| s.srb == victim && !victim.is_null()) {
                found = true;
                e.slots[i].aborting = true;
                wr(e, REG_COMMAND, CMD_ABORT_CMD);
                wr(e, REG_COMMAND_DATA, (i + 1) as u32);
                wr(e, REG_COMMAND_DATA, 0);
                wr(e, REG_COMMAND_DATA, u32::from(srb.TargetId));
                wr(e, REG_COMMAND_DATA, 0);
            }
            srb.SrbStatus = if found { sys::SRB_STATUS_SUCCESS } else { sys::SRB_STATUS_ABORT_FAILED };
            complete(p, srb_p);
            notify0(sys::NextRequest, p);
        }
        sys::SRB_FUNCTION_RESET_BUS => {
            // ScsiPortCompleteRequest would complete this SRB too: complete the others one by one.
            for i in 0..MAX_SLOTS {
                let other = e.slots[i].srb;
                if !other.is_null() {
                    e.slots[i].srb = ptr::null_mut();
                    e.outstanding -= 1;
                    // SAFETY: an SRB we own.
                    unsafe { (*other).SrbStatus = sys::SRB_STATUS_BUS_RESET };
                    complete(p, other);
                }
            }
            setup_device(e);
            srb.SrbStatus = sys::SRB_STATUS_SUCCESS;
            complete(p, srb_p);
            notify0(sys::NextRequest, p);
        }
        sys::SRB_FUNCTION_FLUSH | sys::SRB_FUNCTION_SHUTDOWN => {
            srb.SrbStatus = sys::SRB_STATUS_SUCCESS;
            complete(p, srb_p);
            notify0(sys::NextRequest, p);
        }
        _ => {
            srb.SrbStatus = sys::SRB_STATUS_INVALID_REQUEST;
            complete(p, srb_p);
            notify0(sys::NextRequest, p);
        }
    }
    if fire && e.brk == Break::StartIoFalse {
        return FALSE;
    }
    TRUE
}

fn start_scsi(p: PVOID, e: &mut DevExt, srb_p: *mut SCSI_REQUEST_BLOCK, fire: bool) {
    // SAFETY: the port's SRB.
    let srb = unsafe { &mut *srb_p };
    if e.brk == Break::AlwaysBusy && e.armed {
        srb.SrbStatus = sys::SRB_STATUS_BUSY;
        complete(p, srb_p);
        notify0(sys::NextRequest, p);
        return;
    }
    let Some(slot) = free_slot(e) else {
        srb.SrbStatus = sys::SRB_STATUS_BUSY;
        complete(p, srb_p);
        notify0(sys::NextRequest, p);
        return;
    };
    e.slots[slot].srb = srb_p;
    e.slots[slot].aborting = false;
    e.outstanding += 1;
    if !srb.SrbExtension.is_null() {
        // SAFETY: the SRB extension.
        unsafe { srb.SrbExtension.cast::<u64>().write(slot as u64 + 1) };
    }
    let dropped = fire && matches!(e.brk, Break::DropIo | Break::DropIoIgnoreReset);
    if dropped {
        e.dropped = srb_p;
    } else {
        post(p, e, slot, srb_p);
    }
    if e.outstanding < e.qd {
        signal_ready(p, e, srb);
    } else {
        e.need_next = true;
        e.need_next_lu = (e.tagged && srb.QueueTag != sys::SP_UNTAGGED).then_some((srb.PathId, srb.TargetId, srb.Lun));
    }
}

fn post(p: PVOID, e: &mut DevExt, slot: usize, srb_p: *mut SCSI_REQUEST_BLOCK) {
    // SAFETY: the port's SRB.
    let srb = unsafe { &*srb_p };
    let prod = uc_read32(e, 0);
    let entries = 1u32 << uc_read32(e, 8).min(10);
    let d = PAGE + ((prod & (entries - 1)) as usize) * 128;
    for off in (0..128).step_by(8) {
        uc_write64(e, d + off, 0);
    }
    uc_write64(e, d, slot as u64 + 1);
    let len = srb.DataTransferLength;
    let mut flags = match srb.SrbFlags & sys::SRB_FLAGS_UNSPECIFIED_DIRECTION {
        sys::SRB_FLAGS_DATA_IN => FLAG_DIR_TOHOST,
        sys::SRB_FLAGS_DATA_OUT => FLAG_DIR_TODEVICE,
        0 => FLAG_DIR_NONE,
        _ => 0,
    };
    if len > 0 && !srb.DataBuffer.is_null() {
        let sg = SG_OFF + slot * SG_PER_SLOT;
        let mut off = 0u32;
        let mut n = 0usize;
        let mut first = (0u64, 0u32);
        while off < len && n < SG_PER_SLOT / 16 {
            let mut run: ULONG = 0;
            // SAFETY: an address inside the SRB's data buffer.
            let pa = unsafe { sys::ScsiPortGetPhysicalAddress(p, srb_p, srb.DataBuffer.cast::<u8>().wrapping_add(off as usize).cast(), &raw mut run) };
            let run = run.min(len - off);
            if run == 0 {
                break;
            }
            if n == 0 {
                first = (pa.QuadPart as u64, run);
            }
            uc_write64(e, sg + n * 16, pa.QuadPart as u64);
            uc_write64(e, sg + n * 16 + 8, u64::from(run));
            off += run;
            n += 1;
        }
        if n == 1 {
            uc_write64(e, d + 8, first.0);
        } else {
            uc_write64(e, d + 8, e.uc_pa + sg as u64);
            flags |= FLAG_SG;
        }
        uc_write64(e, d + 0x10, u64::from(len));
    }
    if !srb.SenseInfoBuffer.is_null() && srb.SenseInfoBufferLength > 0 {
        let mut run: ULONG = 0;
        // SAFETY: the SRB's sense buffer.
        let pa = unsafe { sys::ScsiPortGetPhysicalAddress(p, srb_p, srb.SenseInfoBuffer, &raw mut run) };
        uc_write64(e, d + 0x18, pa.QuadPart as u64);
        uc_write32(e, d + 0x20, u32::from(srb.SenseInfoBufferLength));
    }
    uc_write32(e, d + 0x24, flags);
    let mut cdb = [0u8; 16];
    cdb.copy_from_slice(&srb.Cdb);
    for (i, b) in cdb.iter().enumerate() {
        // SAFETY: inside the 128-byte descriptor.
        unsafe { e.uc.wrapping_add(d + 0x28 + i).write_volatile(*b) };
    }
    // SAFETY: descriptor bytes at 0x38 (cdbLen), 0x3A (lun[1]), 0x41 (tag), 0x42 (bus), 0x43 (target).
    unsafe {
        e.uc.wrapping_add(d + 0x38).write_volatile(srb.CdbLength);
    }
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(d + 0x3A).write_volatile(srb.Lun) };
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(d + 0x41).write_volatile(0x20) };
    // SAFETY: as above.
    unsafe { e.uc.wrapping_add(d + 0x43).write_volatile(srb.TargetId) };
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    uc_write32(e, 0, prod.wrapping_add(1));
    let rw = matches!(srb.Cdb[0], 0x08 | 0x0A | 0x28 | 0x2A | 0xA8 | 0xAA | 0x88 | 0x8A);
    wr(e, if rw { REG_KICK_RW } else { REG_KICK_NON_RW }, 0);
}

/// Drains the completion ring; `in_interrupt` only selects the statistics wording.
fn drain(p: PVOID, e: &mut DevExt, _in_interrupt: bool) -> u32 {
    let mut n = 0;
    let cmp_entries = 1u32 << uc_read32(e, 0x14).min(12);
    loop {
        let prod = uc_read32(e, 0xC);
        let cons = uc_read32(e, 0x10);
        if prod == cons {
            break;
        }
        let d = 2 * PAGE + ((cons & (cmp_entries - 1)) as usize) * 32;
        let ctx = uc_read64(e, d);
        let data_len = uc_read64(e, d + 8);
        let sense_len = uc_read32(e, d + 0x10);
        let hs = uc_read32(e, d + 0x14);
        let host = hs as u16;
        let scsi = (hs >> 16) as u8;
        uc_write32(e, 0x10, cons.wrapping_add(1));
        let slot = (ctx as usize).wrapping_sub(1);
        let Some(s) = e.slots.get_mut(slot) else { continue };
        let srb_p = s.srb;
        if srb_p.is_null() {
            continue;
        }
        let aborting = s.aborting;
        s.srb = ptr::null_mut();
        s.aborting = false;
        e.outstanding -= 1;
        // SAFETY: the SRB in that slot is still ours.
        let srb = unsafe { &mut *srb_p };
        srb.ScsiStatus = scsi;
        let mut status = raw::srb_status(srb, host, scsi, data_len, sense_len, aborting);
        let fire = e.broke || (e.armed && e.brk != Break::None);
        match e.brk {
            Break::StatusPending if fire => status = sys::SRB_STATUS_PENDING,
            Break::StatusFrozen if fire => status |= sys::SRB_STATUS_QUEUE_FROZEN,
            Break::AutosenseDisabled if fire => status |= sys::SRB_STATUS_AUTOSENSE_VALID,
            Break::WriteReadOnly if fire => srb.TargetId ^= 0x40,
            Break::GrowLength if fire => srb.DataTransferLength += 512,
            Break::UnderrunSuccess if fire && srb.DataTransferLength > 0 => {
                srb.DataTransferLength /= 2;
                status = sys::SRB_STATUS_SUCCESS;
            }
            _ => {}
        }
        srb.SrbStatus = status;
        let path = srb.PathId;
        let target = srb.TargetId;
        let lun = srb.Lun;
        let tagged = srb.QueueTag != sys::SP_UNTAGGED;
        let ext_p = srb.SrbExtension.cast::<u8>();
        complete(p, srb_p);
        n += 1;
        if fire {
            match e.brk {
                Break::CompleteTwice => complete(p, srb_p),
                Break::CompleteBogus => complete(p, (&raw mut e.saved_status).cast()),
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
                Break::LogErrorAfter => {
                    // SAFETY: deliberately broken: a completed SRB passed on.
                    unsafe { sys::ScsiPortLogError(p, srb_p, path, target, lun, sys::SP_INTERNAL_ADAPTER_ERROR, 1) };
                }
                _ => {}
            }
        }
        e.last_completed = srb_p;
        e.last_ext = ext_p;
        if e.need_next && !(e.broke && e.brk == Break::SkipNextRequest) {
            e.need_next = false;
            match e.need_next_lu.take() {
                Some((pp, tt, ll)) if tagged || e.tagged => next_lu(p, pp, tt, ll),
                _ => notify0(sys::NextRequest, p),
            }
        }
    }
    n
}

unsafe extern "win64" fn hw_interrupt(p: PVOID) -> BOOLEAN {
    let e = ext(p);
    let fire = e.broke;
    if e.brk == Break::SlowIsr {
        // SAFETY: a short stall, over the 50 µs ISR budget.
        unsafe { sys::ScsiPortStallExecution(100) };
    }
    if fire && e.brk == Break::ClaimForeign {
        let st = rd(e, REG_INTR_STATUS);
        if st & INTR_ALL != 0 {
            wr(e, REG_INTR_STATUS, st);
            drain(p, e, true);
        }
        return TRUE;
    }
    if fire && e.brk == Break::Storm {
        return FALSE;
    }
    let st = rd(e, REG_INTR_STATUS);
    if st & INTR_ALL == 0 {
        return FALSE;
    }
    if fire && e.brk == Break::NoClear {
        return TRUE;
    }
    if fire && e.brk == Break::DisableOutsideEnable {
        // SAFETY: deliberately broken: not from the enable callback.
        unsafe { sys::ScsiPortNotification(sys::CallDisableInterrupts, p, Some(disable_cb as unsafe extern "win64" fn(PVOID) -> BOOLEAN)) };
    }
    if e.defer {
        if fire && e.brk == Break::EnableDismissOnly {
            wr(e, REG_INTR_STATUS, st);
        } else if !(fire && e.brk == Break::EnableNoMask) {
            wr(e, REG_INTR_MASK, 0);
        }
        e.saved_status = st;
        // SAFETY: CallEnableInterrupts with our enable callback, from the ISR.
        unsafe { sys::ScsiPortNotification(sys::CallEnableInterrupts, p, Some(enable_cb as unsafe extern "win64" fn(PVOID) -> BOOLEAN)) };
        return TRUE;
    }
    wr(e, REG_INTR_STATUS, st);
    drain(p, e, true);
    TRUE
}

unsafe extern "win64" fn enable_cb(p: PVOID) -> BOOLEAN {
    let e = ext(p);
    let st = rd(e, REG_INTR_STATUS);
    wr(e, REG_INTR_STATUS, st | e.saved_status);
    drain(p, e, true);
    if e.broke && e.brk == Break::NoDisable {
        return TRUE;
    }
    // SAFETY: CallDisableInterrupts with our disable callback, the enable callback's last step.
    unsafe { sys::ScsiPortNotification(sys::CallDisableInterrupts, p, Some(disable_cb as unsafe extern "win64" fn(PVOID) -> BOOLEAN)) };
    TRUE
}

unsafe extern "win64" fn disable_cb(p: PVOID) -> BOOLEAN {
    let e = ext(p);
    if e.broke && e.brk == Break::LeaveMasked {
        return TRUE;
    }
    wr(e, REG_INTR_MASK, INTR_CMPL_MASK);
    TRUE
}

fn reset_bus(p: PVOID, e: &mut DevExt, path: u32) {
    if e.brk == Break::DropIoIgnoreReset {
        return;
    }
    // The Linux host-reset recipe (pvscsi-facts.md §7): complete everything, reset, new rings.
    // SAFETY: ScsiPortCompleteRequest for every active request on the bus.
    unsafe { sys::ScsiPortCompleteRequest(p, path as u8, sys::SP_UNTAGGED, sys::SP_UNTAGGED, sys::SRB_STATUS_BUS_RESET) };
    e.dropped = ptr::null_mut();
    setup_device(e);
    if e.need_next {
        e.need_next = false;
    }
}

unsafe extern "win64" fn hw_reset_bus(p: PVOID, path: ULONG) -> BOOLEAN {
    let e = ext(p);
    if e.brk == Break::IgnoreReset {
        return TRUE;
    }
    reset_bus(p, e, path);
    if e.brk != Break::DropIoIgnoreReset {
        notify0(sys::NextRequest, p);
    }
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
            let n = if e.brk == Break::ControlOverrun { max + 2 } else { max.min(5) };
            for i in 0..n {
                let on = !(i == sys::ScsiStopAdapter as usize && e.brk == Break::NoStop);
                // SAFETY: within the list, except for the deliberately broken overrun.
                unsafe { entries.wrapping_add(i).write(BOOLEAN::from(on)) };
            }
            if e.brk == Break::ControlFail {
                return sys::ScsiAdapterControlUnsuccessful;
            }
        }
        sys::ScsiStopAdapter => {
            wr(e, REG_INTR_MASK, 0);
            if e.brk == Break::IrqInRunningConfig {
                // A request posted with interrupts masked: its completion stays pending.
                let prod = uc_read32(e, 0);
                let d = PAGE + ((prod & 31) as usize) * 128;
                for off in (0..128).step_by(8) {
                    uc_write64(e, d + off, 0);
                }
                uc_write64(e, d, 0x99);
                uc_write32(e, d + 0x24, FLAG_DIR_NONE);
                // SAFETY: cdbLen at 0x38 (TEST UNIT READY, all-zero CDB).
                unsafe { e.uc.wrapping_add(d + 0x38).write_volatile(6) };
                uc_write32(e, 0, prod.wrapping_add(1));
                wr(e, REG_KICK_NON_RW, 0);
            }
        }
        sys::ScsiSetRunningConfig if e.brk == Break::IrqInRunningConfig => wr(e, REG_INTR_MASK, INTR_CMPL_MASK),
        sys::ScsiRestartAdapter => setup_device(e),
        _ => {}
    }
    sys::ScsiAdapterControlSuccess
}

/// Parses a `break=` name (for the CLI and tests).
#[must_use]
pub fn parse_break(name: &str) -> Option<Break> {
    BREAKS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Every break knob, with its name.
#[must_use]
pub fn breaks() -> &'static [(&'static str, Break)] {
    BREAKS
}
