//! The [`Miniport`] trait, the `extern "win64"` trampolines Storport calls, and [`initialize`],
//! which hands them to `StorPortInitialize`.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::NonNull;

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{BOOLEAN, FALSE, TRUE};

use crate::config;
use crate::context::{
    AdapterControlCtx, BuildIo, BuildIoCtx, DpcCtx, FindAdapterCtx, InitializeCtx, InterruptCtx, PassiveInitializeCtx,
    ResetBusCtx, StartIoCtx, TimerCtx, TransferLimits,
};
use crate::extension::Extension;
use crate::srb::{self, Srb, SrbStatus};
use crate::{AnyBitPattern, Zeroable};

/// The bus type a miniport registers for (`INTERFACE_TYPE`).
pub type InterfaceType = sys::INTERFACE_TYPE;

/// `MapBuffers`: which data buffers Storport maps to system addresses the miniport may
/// dereference (`DDI-storport:ns-storport-_hw_initialization_data~r1`). A DMA miniport wants
/// none: it gets the scatter/gather list instead
/// (`KG:use-of-mapping-buffers-in-the-storport-i-o-model`). `IO_CONTROL` and `WMI` buffers are
/// mapped in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapBuffers {
    /// `STOR_MAP_NO_BUFFERS`.
    None,
    /// `STOR_MAP_NON_READ_WRITE_BUFFERS`: every buffer but those of READ and WRITE requests, for
    /// a DMA miniport that reads what a few other commands return (READ CAPACITY's block size).
    NonReadWrite,
    /// `STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE` (Windows 8 and later).
    AllIncludingReadWrite,
}

impl MapBuffers {
    pub(crate) const fn raw(self) -> u8 {
        match self {
            Self::None => stor::STOR_MAP_NO_BUFFERS,
            Self::NonReadWrite => stor::STOR_MAP_NON_READ_WRITE_BUFFERS,
            Self::AllIncludingReadWrite => stor::STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE,
        }
    }
}

/// What the miniport decides of `HW_INITIALIZATION_DATA`
/// (`DDI-storport:ns-storport-_hw_initialization_data~r1`). The rest the wrapper fills in:
/// the entry points, the extension sizes (from the types), `NeedPhysicalAddresses`,
/// `TaggedQueuing`, `AutoRequestSense` and `MultipleRequestPerLu` (all "must be TRUE"),
/// `HwDmaStarted` and `HwAdapterState` (must be NULL), `SrbTypeFlags` (`SCSI_REQUEST_BLOCK`s)
/// and `AddressTypeFlags` (`ADDRESS_TYPE_FLAG_BTL8`, the only scheme). The vendor and device
/// IDs are not asked for: Storport ignores them.
#[derive(Clone, Copy, Debug)]
pub struct HwInitData {
    /// `AdapterInterfaceType`, e.g. [`sys::PCIBus`]; Storport supports no legacy buses.
    pub adapter_interface_type: InterfaceType,
    /// `NumberOfAccessRanges` the HBA decodes.
    pub number_of_access_ranges: u32,
    /// `MapBuffers`.
    pub map_buffers: MapBuffers,
}

/// Why `HwStorFindAdapter` did not find a usable HBA (`DDI-storport:nc-storport-hw_find_adapter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindAdapterError {
    /// `SP_RETURN_NOT_FOUND`: no supported HBA for this configuration.
    NotFound,
    /// `SP_RETURN_ERROR`: an HBA, but its configuration could not be obtained (log why).
    Error,
    /// `SP_RETURN_BAD_CONFIG`: the supplied configuration is invalid for the HBA.
    BadConfig,
}

impl FindAdapterError {
    const fn code(self) -> u32 {
        match self {
            Self::NotFound => sys::SP_RETURN_NOT_FOUND,
            Self::Error => sys::SP_RETURN_ERROR,
            Self::BadConfig => sys::SP_RETURN_BAD_CONFIG,
        }
    }
}

/// The `HwStorAdapterControl` operations a physical Storport miniport must support besides the
/// query, which the wrapper answers: "miniports must support the `ScsiStopAdapter` and
/// `ScsiRestartAdapter` control types" (`DDI-storport:nc-storport-hw_adapter_control`). Both run
/// at DIRQL with the interrupt lock held. The wrapper reports no other type, so Storport sends
/// no other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterControl {
    /// `ScsiStopAdapter`: no request is outstanding; disable the HBA's interrupts, halt all
    /// processing and leave the HBA restartable; keep the resources. The hardware may already
    /// be gone (`DDI-storport:ne-storport-scsi_adapter_control_type`).
    Stop,
    /// `ScsiRestartAdapter`: power-up after a stop; do what `HwStorInitialize` does, with the
    /// same resources and the device extension intact.
    Restart,
}

/// The lock-owned state, all of it, for `HwStorFindAdapter`, which Storport calls when no
/// other routine of the adapter runs.
pub struct States<'a, M: Miniport> {
    /// Owned by the StartIo lock.
    pub start_io: &'a mut M::StartIoState,
    /// Owned by the interrupt lock.
    pub interrupt: &'a mut M::InterruptState,
    /// Owned by the DPC.
    pub dpc: &'a mut M::DpcState,
}

/// A Storport miniport: its device extension, split by the lock that owns each part, and its
/// routines.
///
/// The implementing type is the part every routine reads at once: configuration decided in
/// `HwStorFindAdapter` (the only routine that gets `&mut self`), read-only afterwards, hence
/// `Sync`. `HwStorBuildIo` gets nothing else of the device extension. The rest lives in three
/// associated types, each reachable only where its owner is held:
///
/// | State | Owner | Routines |
/// | --- | --- | --- |
/// | [`Self::StartIoState`] | the StartIo lock | [`Self::hw_start_io`], [`Self::hw_reset_bus`], [`Self::hw_timer`]; the DPC through [`DpcCtx::with_start_io_lock`] |
/// | [`Self::InterruptState`] | the interrupt lock | [`Self::hw_interrupt`], [`Self::hw_initialize`], [`Self::hw_adapter_control`]; others through [`crate::Synchronize::synchronize`] |
/// | [`Self::DpcState`] | the DPC | [`Self::hw_dpc`] |
///
/// Hardware handles ([`crate::Registers`], [`crate::CommonBuffer`]) are `Send` but not `Sync`:
/// they can live in any of the three states, never in `Self`, so `HwStorBuildIo` cannot reach
/// them. Storport zero-fills the device extension once and keeps it across stops and restarts
/// (`DDI-storport:ns-storport-_hw_initialization_data~r1`), hence [`Zeroable`]; destructors
/// never run. Routine names follow the documentation so a C engineer finds each with one search.
pub trait Miniport: Zeroable + Sync + 'static {
    /// State owned by the StartIo lock, e.g. the request ring's producer side and the table of
    /// outstanding requests.
    type StartIoState: Zeroable + Send;
    /// State owned by the interrupt lock, e.g. what the ISR saved for the DPC.
    type InterruptState: Zeroable + Send;
    /// State only the DPC routine touches, e.g. the completion ring's consumer index when it is
    /// drained outside the StartIo lock.
    type DpcState: Zeroable + Send;
    /// Per-request memory (`SrbExtensionSize`): what `HwStorBuildIo` prepares for
    /// `HwStorStartIo`. Not initialised by Storport, so it must accept any bit pattern; `()` for
    /// none.
    type SrbExtension: AnyBitPattern;

    /// The fixed part of `HW_INITIALIZATION_DATA`.
    const HW_INIT: HwInitData;

    /// `HwStorFindAdapter` (`DDI-storport:nc-storport-hw_find_adapter`): check the HBA, map its
    /// registers, fill in the configuration, get the uncached extension, and set up all state.
    /// Success needs the proof that the transfer limits were set.
    ///
    /// # Errors
    /// The `SP_RETURN_*` code for an HBA that cannot be used.
    fn hw_find_adapter<'a>(
        &mut self,
        state: States<'_, Self>,
        ctx: &mut FindAdapterCtx<'a, Self>,
    ) -> Result<TransferLimits<'a>, FindAdapterError>;

    /// `HwStorInitialize` (`DDI-storport:nc-storport-hw_initialize`): make the HBA ready, at
    /// DIRQL under the interrupt lock; `false` on failure (log first).
    fn hw_initialize(&self, interrupt: &mut Self::InterruptState, ctx: &mut InitializeCtx<'_, Self>) -> bool;

    /// `HwStorPassiveInitializeRoutine` (`DDI-storport:nc-storport-hw_passive_initialize_routine`),
    /// after the wrapper has initialised the DPC there; `false` on failure.
    fn hw_passive_initialize(&self, ctx: &mut PassiveInitializeCtx<'_, Self>) -> bool {
        let _ = ctx;
        true
    }

    /// `HwStorBuildIo` (`DDI-storport:nc-storport-hw_buildio`): prepare `srb` for
    /// `HwStorStartIo` in its SRB extension, with no lock held. Return
    /// [`BuildIo::StartIo`] to have Storport start it, or complete it here and return
    /// [`BuildIo::Completed`].
    fn hw_build_io<'a>(&self, ctx: &mut BuildIoCtx<'a, Self>, srb: Srb<Self>) -> BuildIo<'a, Self>;

    /// `HwStorStartIo` (`DDI-storport:nc-storport-hw_startio`): take ownership of `srb` under
    /// the StartIo lock: hand it to the hardware and keep the handle, or complete it. The
    /// wrapper returns TRUE to Storport.
    fn hw_start_io(&self, start_io: &mut Self::StartIoState, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>);

    /// `HwStorInterrupt` (`DDI-storport:nc-storport-hw_interrupt`): whether this HBA interrupted
    /// (the line may be shared); under the interrupt lock, concurrent with `HwStorStartIo`.
    fn hw_interrupt(&self, interrupt: &mut Self::InterruptState, ctx: &mut InterruptCtx<'_, Self>) -> bool;

    /// `HwStorDpcRoutine` (`DDI-storport:nc-storport-hw_dpc_routine`), queued with
    /// [`crate::Notify::issue_dpc`]: the deferred part of the interrupt, with no lock held.
    fn hw_dpc(&self, dpc: &mut Self::DpcState, ctx: &mut DpcCtx<'_, Self>);

    /// `HwStorResetBus` (`DDI-storport:nc-storport-hw_reset_bus`): reset bus `path_id` and
    /// complete the requests it held, under the StartIo lock; `false` if the reset failed.
    fn hw_reset_bus(&self, start_io: &mut Self::StartIoState, ctx: &mut ResetBusCtx<'_, Self>, path_id: u8) -> bool;

    /// `HwStorTimer` (`DDI-storport:nc-storport-hw_timer`), after a
    /// [`crate::Notify::request_timer`], under the StartIo lock.
    fn hw_timer(&self, start_io: &mut Self::StartIoState, ctx: &mut TimerCtx<'_, Self>) {
        let _ = (start_io, ctx);
    }

    /// `HwStorAdapterControl` (`DDI-storport:nc-storport-hw_adapter_control`) for
    /// `ScsiStopAdapter` and `ScsiRestartAdapter`, under the interrupt lock. The wrapper answers
    /// `ScsiQuerySupportedControlTypes` and returns `ScsiAdapterControlSuccess`, which it must
    /// for every type.
    fn hw_adapter_control(&self, interrupt: &mut Self::InterruptState, ctx: &mut AdapterControlCtx<'_, Self>, control: AdapterControl);
}

fn boolean(value: bool) -> BOOLEAN {
    if value { TRUE } else { FALSE }
}

fn size_u32<T>() -> u32 {
    u32::try_from(size_of::<T>()).unwrap_or(u32::MAX)
}

/// The `HW_INITIALIZATION_DATA` for `M`.
pub(crate) fn hw_initialization_data<M: Miniport>() -> stor::HW_INITIALIZATION_DATA {
    // SAFETY: all-zero is a valid HW_INITIALIZATION_DATA (integers, NULL pointers, `None`
    // entry points), and the miniport must zero it before filling it
    // (`DDI-storport:ns-storport-_hw_initialization_data~r1`, remarks).
    let mut data: stor::HW_INITIALIZATION_DATA = unsafe { core::mem::zeroed() };
    let init = M::HW_INIT;
    data.HwInitializationDataSize = size_u32::<stor::HW_INITIALIZATION_DATA>();
    data.AdapterInterfaceType = init.adapter_interface_type;
    data.HwInitialize = Some(hw_initialize::<M>);
    data.HwStartIo = Some(hw_start_io::<M>);
    data.HwInterrupt = Some(hw_interrupt::<M>);
    data.HwFindAdapter = Some(hw_find_adapter::<M>);
    data.HwResetBus = Some(hw_reset_bus::<M>);
    data.HwAdapterControl = Some(hw_adapter_control::<M>);
    data.HwBuildIo = Some(hw_build_io::<M>);
    data.DeviceExtensionSize = Extension::<M>::SIZE;
    // No per-LU extension: nothing in this wrapper reaches one.
    data.SpecificLuExtensionSize = 0;
    data.SrbExtensionSize = size_u32::<M::SrbExtension>();
    data.NumberOfAccessRanges = init.number_of_access_ranges;
    data.MapBuffers = init.map_buffers.raw();
    data.NeedPhysicalAddresses = TRUE;
    data.TaggedQueuing = TRUE;
    data.AutoRequestSense = TRUE;
    data.MultipleRequestPerLu = TRUE;
    data.SrbTypeFlags = stor::SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK;
    data.AddressTypeFlags = stor::ADDRESS_TYPE_FLAG_BTL8;
    data
}

/// Calls `StorPortInitialize` for `M` and returns its status, which `DriverEntry` returns
/// (`DDI-storport:nf-storport-storportinitialize`).
///
/// # Safety
/// Call only from `DriverEntry`, passing its two arguments unchanged.
pub unsafe fn initialize<M: Miniport>(argument1: *mut c_void, argument2: *mut c_void) -> u32 {
    let mut data = hw_initialization_data::<M>();
    // SAFETY: the arguments are DriverEntry's, per this function's contract; Storport copies
    // what it needs from `data`.
    unsafe { stor::StorPortInitialize(argument1, argument2, &raw mut data, core::ptr::null_mut()) }
}

/// `ArgumentString` up to its NUL, bounded so a malformed string cannot run away.
///
/// # Safety
/// `raw` is NULL or points to a NUL-terminated string.
unsafe fn argument_bytes<'a>(raw: sys::PCHAR) -> Option<&'a [u8]> {
    const LIMIT: usize = 4096;
    if raw.is_null() {
        return None;
    }
    let bytes = raw.cast::<u8>();
    let mut len: usize = 0;
    // SAFETY: the string is NUL-terminated; the scan stops at the NUL or at LIMIT.
    while len < LIMIT && unsafe { bytes.wrapping_add(len).read() } != 0 {
        len = len.wrapping_add(1); // bounded by LIMIT
    }
    // SAFETY: the `len` bytes before the NUL were just read.
    Some(unsafe { core::slice::from_raw_parts(bytes, len) })
}

pub(crate) unsafe extern "win64" fn hw_find_adapter<M: Miniport>(
    device_extension: *mut c_void,
    _hw_context: *mut c_void,
    _bus_information: *mut c_void,
    argument_string: sys::PCHAR,
    config_info: stor::PPORT_CONFIGURATION_INFORMATION,
    _reserved3: sys::PBOOLEAN,
) -> u32 {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else {
        return sys::SP_RETURN_ERROR;
    };
    // SAFETY: `config_info` is NULL or Storport's ConfigInfo for this call.
    let Some(config) = (unsafe { config_info.as_mut() }) else { return sys::SP_RETURN_BAD_CONFIG };
    // The first check, so that no field past Storport's structure is touched: the Windows 8
    // layout or later (`DDI-storport:ns-storport-_port_configuration_information`, `Length`).
    if (config.Length as usize) < size_of::<stor::PORT_CONFIGURATION_INFORMATION>() {
        return sys::SP_RETURN_BAD_CONFIG;
    }
    config::prepare(config, M::HW_INIT.map_buffers);
    // SAFETY: the port passes NULL or a NUL-terminated string.
    let argument = unsafe { argument_bytes(argument_string) };
    // A DPC issued before a stop may still be running: it is waited for, and none starts until
    // this routine returns.
    let _dpc = extension.exclude_dpc();
    // SAFETY: Storport calls HwStorFindAdapter before any other routine of the adapter and, on a
    // later Plug and Play start, with the adapter stopped (`DDI-storport:nc-storport-hw_find_adapter`),
    // and no DPC routine runs (`_dpc`): nothing else holds a reference into the device extension.
    let (miniport, start_io, interrupt, dpc) = unsafe { extension.all() };
    let mut ctx = FindAdapterCtx::new(extension, config, argument);
    match miniport.hw_find_adapter(States { start_io, interrupt, dpc }, &mut ctx) {
        Ok(_limits) => sys::SP_RETURN_FOUND,
        Err(error) => error.code(),
    }
}

pub(crate) unsafe extern "win64" fn hw_initialize<M: Miniport>(device_extension: *mut c_void) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    extension.dpc_reinitializing();
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    // SAFETY: Storport holds the interrupt lock around HwStorInitialize of a physical miniport
    // (`DDI-storport:nf-storport-storportacquirespinlock`), which every holder of the state takes.
    let interrupt = unsafe { extension.interrupt() };
    let ok = miniport.hw_initialize(interrupt, &mut InitializeCtx::new(extension));
    if ok {
        // Only from HwStorInitialize (`DDI-storport:nf-storport-storportenablepassiveinitialization`;
        // Static Driver Verifier's StorPortEnablePassive rule), and HwStorInitialize is never
        // called from HwStorAdapterControl here (StorPortPassiveFromHwInit rule). FALSE means
        // no DPCs (an old system): then the DPC is never issued.
        let routine: stor::PHW_PASSIVE_INITIALIZE_ROUTINE = Some(hw_passive_initialize::<M>);
        // SAFETY: the extension is Storport's; the routine is this crate's trampoline.
        let _enabled = unsafe { stor::StorPortEnablePassiveInitialization(device_extension, routine) };
    }
    boolean(ok)
}

pub(crate) unsafe extern "win64" fn hw_passive_initialize<M: Miniport>(device_extension: *mut c_void) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    let routine: stor::PHW_DPC_ROUTINE = Some(hw_dpc::<M>);
    // SAFETY: DPCs are initialised here (`DDI-storport:nf-storport-storportinitializedpc`), in
    // storage inside the device extension, which lives as long as the adapter.
    unsafe { stor::StorPortInitializeDpc(device_extension, extension.dpc_object(), routine) };
    extension.dpc_initialized();
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    boolean(miniport.hw_passive_initialize(&mut PassiveInitializeCtx::new(extension)))
}

pub(crate) unsafe extern "win64" fn hw_build_io<M: Miniport>(
    device_extension: *mut c_void,
    srb: sys::PSCSI_REQUEST_BLOCK,
) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    let Some(raw) = NonNull::new(srb) else { return FALSE };
    // SAFETY: a request block Storport just passed to HwStorBuildIo.
    if unsafe { srb::is_storage_request_block(raw) } {
        // Not asked for (SrbTypeFlags), and not readable as a SCSI_REQUEST_BLOCK.
        // SAFETY: as above; completing it is what returning FALSE requires.
        unsafe { srb::complete_raw(device_extension, raw, SrbStatus::InvalidRequest) };
        return FALSE;
    }
    // SAFETY: Storport handed this request to the miniport; this is its only handle.
    let srb = unsafe { Srb::<M>::from_raw(raw) };
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    match miniport.hw_build_io(&mut BuildIoCtx::new(extension), srb) {
        BuildIo::StartIo(srb) => {
            // The handle ends here; Storport passes the request to HwStorStartIo.
            let _ = srb.into_raw();
            TRUE
        }
        BuildIo::Completed(_) => FALSE,
    }
}

pub(crate) unsafe extern "win64" fn hw_start_io<M: Miniport>(
    device_extension: *mut c_void,
    srb: sys::PSCSI_REQUEST_BLOCK,
) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return TRUE };
    let Some(raw) = NonNull::new(srb) else { return TRUE };
    // SAFETY: a request block Storport just passed to HwStorStartIo.
    if unsafe { srb::is_storage_request_block(raw) } {
        // SAFETY: as above; the miniport owns it and completes it here.
        unsafe { srb::complete_raw(device_extension, raw, SrbStatus::InvalidRequest) };
        return TRUE;
    }
    // SAFETY: Storport handed this request to the miniport; this is its only handle.
    let srb = unsafe { Srb::<M>::from_raw(raw) };
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    // SAFETY: in full duplex Storport calls HwStorStartIo holding the StartIo lock
    // (`DDI-storport:nc-storport-hw_startio`; the wrapper never asks for concurrent channels).
    let start_io = unsafe { extension.start_io() };
    miniport.hw_start_io(start_io, &mut StartIoCtx::new(extension), srb);
    TRUE
}

pub(crate) unsafe extern "win64" fn hw_interrupt<M: Miniport>(device_extension: *mut c_void) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    // SAFETY: Storport holds the interrupt lock around HwStorInterrupt
    // (`DDI-storport:nf-storport-storportacquirespinlock`).
    let interrupt = unsafe { extension.interrupt() };
    boolean(miniport.hw_interrupt(interrupt, &mut InterruptCtx::new(extension)))
}

pub(crate) unsafe extern "win64" fn hw_dpc<M: Miniport>(
    _dpc: stor::PSTOR_DPC,
    device_extension: *mut c_void,
    _system_argument1: *mut c_void,
    _system_argument2: *mut c_void,
) {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return };
    let Some(mut guard) = extension.try_dpc_state() else {
        // Another instance is running, which Storport promises cannot happen: come back later
        // rather than wait for it at DISPATCH_LEVEL.
        let _ = extension.issue_dpc();
        return;
    };
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    miniport.hw_dpc(guard.state(), &mut DpcCtx::new(extension));
}

pub(crate) unsafe extern "win64" fn hw_reset_bus<M: Miniport>(device_extension: *mut c_void, path_id: u32) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    let Ok(path_id) = u8::try_from(path_id) else { return FALSE };
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    // SAFETY: Storport calls HwStorResetBus "after acquiring the StartIo spin lock"
    // (`DDI-storport:nc-storport-hw_reset_bus`).
    let start_io = unsafe { extension.start_io() };
    boolean(miniport.hw_reset_bus(start_io, &mut ResetBusCtx::new(extension), path_id))
}

pub(crate) unsafe extern "win64" fn hw_timer<M: Miniport>(device_extension: *mut c_void) {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return };
    // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
    let miniport = unsafe { extension.miniport() };
    // SAFETY: Storport takes the StartIo lock around HwStorTimer (`DDI-storport:nc-storport-hw_timer`;
    // in full duplex the interrupt lock is the only one HwStorTimer may take,
    // `DDI-storport:nf-storport-storportacquirespinlock`).
    let start_io = unsafe { extension.start_io() };
    miniport.hw_timer(start_io, &mut TimerCtx::new(extension));
}

/// The control types the wrapper reports: the query, stop and restart, the ones a physical
/// Storport miniport must support (`DDI-storport:nc-storport-hw_adapter_control`).
const SUPPORTED_CONTROL_TYPES: [sys::SCSI_ADAPTER_CONTROL_TYPE; 3] =
    [sys::ScsiQuerySupportedControlTypes, sys::ScsiStopAdapter, sys::ScsiRestartAdapter];

/// Answers `ScsiQuerySupportedControlTypes`, never writing past
/// `SupportedTypeList[MaxControlType - 1]` (`DDI-storport:ns-storport-scsi_supported_control_type_list`).
///
/// # Safety
/// `list` is NULL or the port's `SCSI_SUPPORTED_CONTROL_TYPE_LIST` with `MaxControlType` entries.
pub(crate) unsafe fn report_supported_control_types(list: *mut sys::SCSI_SUPPORTED_CONTROL_TYPE_LIST) {
    if list.is_null() {
        return;
    }
    // SAFETY: per the caller.
    let max = unsafe { (*list).MaxControlType };
    // SAFETY: `SupportedTypeList` is the flexible array that follows `MaxControlType`.
    let entries = unsafe { (&raw mut (*list).SupportedTypeList).cast::<BOOLEAN>() };
    for control in SUPPORTED_CONTROL_TYPES {
        let Ok(index) = u32::try_from(control) else { continue };
        if index < max {
            // SAFETY: `index < MaxControlType`, the number of entries the port allocated.
            unsafe { entries.wrapping_add(index as usize).write(TRUE) };
        }
    }
}

pub(crate) unsafe extern "win64" fn hw_adapter_control<M: Miniport>(
    device_extension: *mut c_void,
    control_type: sys::SCSI_ADAPTER_CONTROL_TYPE,
    parameters: *mut c_void,
) -> sys::SCSI_ADAPTER_CONTROL_STATUS {
    let control = match control_type {
        sys::ScsiQuerySupportedControlTypes => {
            // SAFETY: for this type `Parameters` is the port's list
            // (`DDI-storport:ne-storport-scsi_adapter_control_type`).
            unsafe { report_supported_control_types(parameters.cast()) };
            return sys::ScsiAdapterControlSuccess;
        }
        sys::ScsiStopAdapter => AdapterControl::Stop,
        sys::ScsiRestartAdapter => AdapterControl::Restart,
        // Not reported, so not sent; success regardless, as for every type.
        _ => return sys::ScsiAdapterControlSuccess,
    };
    // SAFETY: the port passes the device extension it allocated for this miniport.
    if let Some(extension) = unsafe { Extension::<M>::from_raw(device_extension) } {
        // SAFETY: not HwStorFindAdapter, so no `&mut M` exists.
        let miniport = unsafe { extension.miniport() };
        // SAFETY: Storport issues ScsiStopAdapter and ScsiRestartAdapter at DIRQL holding the
        // interrupt lock: the routine's own table, per control type
        // (`DDI-storport:nc-storport-hw_adapter_control`). `StorPortAcquireSpinLock`'s table of
        // the locks the port holds says "None" for HwStorAdapterControl as a whole
        // (`DDI-storport:nf-storport-storportacquirespinlock`); the per-type table is the more
        // specific of the two and is the one followed here, since taking the interrupt lock
        // again from a routine that holds it would deadlock.
        let interrupt = unsafe { extension.interrupt() };
        miniport.hw_adapter_control(interrupt, &mut AdapterControlCtx::new(extension), control);
    }
    // "Currently, HwStorAdapterControl must return this value for all control types."
    sys::ScsiAdapterControlSuccess
}
