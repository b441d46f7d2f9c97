//! The [`Miniport`] trait, the `extern "win64"` trampolines SCSI Port calls, and
//! [`initialize`], which hands them to `ScsiPortInitialize`.

use core::ffi::c_void;
use core::mem::size_of;

use scsiport_sys as sys;
use sys::{BOOLEAN, FALSE, TRUE};

use crate::context::{
    AdapterControlCtx, DisableInterruptsCtx, DisableInterruptsRequested, EnableInterruptsCtx, FindAdapterCtx,
    InitializeCtx, InterruptCtx, InterruptResult, Notify, ResetBusCtx, StartIoCtx, TimerCtx, call_disable_interrupts,
};
use crate::extension::{Extension, Guard};
use crate::srb::{Srb, SrbFunction, SrbStatus};
use crate::{AnyBitPattern, Zeroable};

/// The bus type a miniport registers for (`INTERFACE_TYPE`).
pub type InterfaceType = sys::INTERFACE_TYPE;

/// The fixed part of `HW_INITIALIZATION_DATA` (`DDI:ns-srb-_hw_initialization_data`). The entry
/// points and the extension sizes are not here: they come from the [`Miniport`] type.
#[derive(Clone, Copy, Debug)]
#[allow(clippy::struct_excessive_bools)] // mirrors the BOOLEAN fields of HW_INITIALIZATION_DATA
pub struct HwInitData {
    /// `AdapterInterfaceType`, e.g. [`sys::PCIBus`].
    pub adapter_interface_type: InterfaceType,
    /// `VendorId` as ASCII hex ("15AD"); used for legacy detection only.
    pub vendor_id: &'static [u8],
    /// `DeviceId` as ASCII hex ("07C0"); used for legacy detection only.
    pub device_id: &'static [u8],
    /// `NumberOfAccessRanges` the HBA decodes.
    pub number_of_access_ranges: u32,
    /// `MapBuffers`: data buffers get system virtual addresses the miniport may dereference.
    pub map_buffers: bool,
    /// `NeedPhysicalAddresses`.
    pub need_physical_addresses: bool,
    /// `TaggedQueuing`.
    pub tagged_queuing: bool,
    /// `AutoRequestSense`.
    pub auto_request_sense: bool,
    /// `MultipleRequestPerLu`.
    pub multiple_request_per_lu: bool,
    /// `ReceiveEvent`.
    pub receive_event: bool,
}

/// Which `HwScsiAdapterControl` operations the miniport implements, beyond
/// `ScsiQuerySupportedControlTypes` (always supported: the wrapper answers it). A `PnP` miniport
/// must support at least `ScsiStopAdapter` (`REF:HwScsiAdapterControl`).
#[derive(Clone, Copy, Debug, Default)]
#[allow(clippy::struct_excessive_bools)] // mirrors the BOOLEAN list the port fills in
pub struct ControlTypes {
    /// `ScsiStopAdapter`.
    pub stop: bool,
    /// `ScsiRestartAdapter`; without it the port calls `HwScsiFindAdapter` and
    /// `HwScsiInitialize` again after a power-management stop.
    pub restart: bool,
    /// `ScsiSetBootConfig`.
    pub set_boot_config: bool,
    /// `ScsiSetRunningConfig`.
    pub set_running_config: bool,
}

impl ControlTypes {
    fn supports(self, control: sys::SCSI_ADAPTER_CONTROL_TYPE) -> bool {
        match control {
            sys::ScsiQuerySupportedControlTypes => true,
            sys::ScsiStopAdapter => self.stop,
            sys::ScsiRestartAdapter => self.restart,
            sys::ScsiSetBootConfig => self.set_boot_config,
            sys::ScsiSetRunningConfig => self.set_running_config,
            _ => false,
        }
    }
}

/// A `HwScsiAdapterControl` operation other than the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterControl {
    /// `ScsiStopAdapter`: no requests are outstanding; disable interrupts, stop all work, leave
    /// the HBA re-initialisable; the hardware may already be gone.
    Stop,
    /// `ScsiRestartAdapter`: do what `HwScsiInitialize` does, with the same resources.
    Restart,
    /// `ScsiSetBootConfig`: restore what the BIOS needs.
    SetBootConfig,
    /// `ScsiSetRunningConfig`: restore running settings; the interrupt is not connected.
    SetRunningConfig,
}

/// Why `HwScsiFindAdapter` did not find a usable HBA (`DDI:nc-srb-phw_find_adapter`).
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

/// A SCSI Port miniport: its device extension type and its routines.
///
/// The implementing type *is* the device extension. SCSI Port allocates it zero-filled and
/// passes it to every routine (`DDI:ns-srb-_hw_initialization_data`), hence the [`Zeroable`]
/// bound; its destructor never runs. Routine names follow the documentation so a C engineer
/// finds each with one search.
pub trait Miniport: Zeroable + 'static {
    /// Per-request memory (`SrbExtensionSize`). Not initialised by the port, so it must accept
    /// any bit pattern; `()` for none.
    type SrbExtension: AnyBitPattern;
    /// Per-LU memory (`SpecificLuExtensionSize`), zero-filled; `()` for none.
    type LuExtension: Zeroable;

    /// The fixed part of `HW_INITIALIZATION_DATA`.
    const HW_INIT: HwInitData;
    /// The `HwScsiAdapterControl` operations implemented.
    const CONTROL_TYPES: ControlTypes;

    /// `HwScsiFindAdapter`: claim the HBA, fill in the configuration, map registers, get the
    /// uncached extension (`REF:HwScsiFindAdapter`).
    ///
    /// # Errors
    /// The `SP_RETURN_*` code for an HBA that cannot be used.
    fn hw_find_adapter(&mut self, ctx: &mut FindAdapterCtx<'_, Self>) -> Result<(), FindAdapterError>;

    /// `HwScsiInitialize`: make the HBA ready for I/O; `false` on failure (log first).
    fn hw_initialize(&mut self, ctx: &mut InitializeCtx<'_, Self>) -> bool;

    /// `HwScsiStartIo`: take ownership of `srb`. The wrapper returns TRUE to the port, as the
    /// routine must (`KG:return-from-hwscsistartio`).
    fn hw_start_io(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>);

    /// `HwScsiStartIo` for a request the wrapper parked because `HwScsiStartIo` found its lock
    /// held (extension.rs): never `SRB_FUNCTION_EXECUTE_SCSI`, which is answered BUSY instead.
    /// [`Self::hw_start_io`] unless the miniport overrides it; one that has
    /// [`Self::hw_start_io`] inlined into the wrapper's trampoline starts these functions here
    /// without it, so that the trampoline holds its only copy.
    fn hw_start_io_parked(&mut self, ctx: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        self.hw_start_io(ctx, srb);
    }

    /// `HwScsiInterrupt`.
    fn hw_interrupt(&mut self, ctx: InterruptCtx<'_, Self>) -> InterruptResult;

    /// `HwScsiEnableInterruptsCallback`: runs after the ISR deferred; must end by requesting
    /// `CallDisableInterrupts`, which is the only way to produce its return value.
    fn hw_enable_interrupts_callback(&mut self, ctx: EnableInterruptsCtx<'_, Self>) -> DisableInterruptsRequested;

    /// `HwScsiDisableInterruptsCallback`: re-enable the HBA's interrupts; `false` on failure.
    fn hw_disable_interrupts_callback(&mut self, ctx: &mut DisableInterruptsCtx<'_, Self>) -> bool;

    /// `HwScsiResetBus`: reset bus `path_id` and complete all its outstanding requests with
    /// `SRB_STATUS_BUS_RESET`; `false` if the reset failed.
    fn hw_reset_bus(&mut self, ctx: &mut ResetBusCtx<'_, Self>, path_id: u8) -> bool;

    /// `HwScsiTimer`, after a `RequestTimerCall`.
    fn hw_timer(&mut self, ctx: &mut TimerCtx<'_, Self>) {
        let _ = ctx;
    }

    /// `HwScsiAdapterControl` for the operations in [`Self::CONTROL_TYPES`].
    fn hw_adapter_control(&mut self, ctx: &mut AdapterControlCtx<'_, Self>, control: AdapterControl) {
        let _ = (ctx, control);
    }
}

fn boolean(value: bool) -> BOOLEAN {
    if value { TRUE } else { FALSE }
}

fn size_u32<T>() -> u32 {
    u32::try_from(size_of::<T>()).unwrap_or(u32::MAX)
}

/// Calls `ScsiPortInitialize` for `M` and returns its status, which `DriverEntry` returns
/// (`DDI:nf-srb-scsiportinitialize`).
///
/// # Safety
/// Call only from `DriverEntry`, passing its two arguments unchanged (`KG:calling-scsiportinitialize`).
pub unsafe fn initialize<M: Miniport>(argument1: *mut c_void, argument2: *mut c_void) -> u32 {
    // SAFETY: all-zero is a valid HW_INITIALIZATION_DATA (integers, NULL pointers, `None`
    // entry points), and the documentation requires zeroing it entirely first.
    let mut data: sys::HW_INITIALIZATION_DATA = unsafe { core::mem::zeroed() };
    let init = M::HW_INIT;
    data.HwInitializationDataSize = size_u32::<sys::HW_INITIALIZATION_DATA>();
    data.AdapterInterfaceType = init.adapter_interface_type;
    data.HwInitialize = Some(hw_initialize::<M>);
    data.HwStartIo = Some(hw_start_io::<M>);
    data.HwInterrupt = Some(hw_interrupt::<M>);
    data.HwFindAdapter = Some(hw_find_adapter::<M>);
    data.HwResetBus = Some(hw_reset_bus::<M>);
    data.HwAdapterControl = Some(hw_adapter_control::<M>);
    data.DeviceExtensionSize = Extension::<M>::SIZE;
    data.SpecificLuExtensionSize = size_u32::<M::LuExtension>();
    data.SrbExtensionSize = size_u32::<M::SrbExtension>();
    data.NumberOfAccessRanges = init.number_of_access_ranges;
    data.MapBuffers = boolean(init.map_buffers);
    data.NeedPhysicalAddresses = boolean(init.need_physical_addresses);
    data.TaggedQueuing = boolean(init.tagged_queuing);
    data.AutoRequestSense = boolean(init.auto_request_sense);
    data.MultipleRequestPerLu = boolean(init.multiple_request_per_lu);
    data.ReceiveEvent = boolean(init.receive_event);
    data.VendorIdLength = u16::try_from(init.vendor_id.len()).unwrap_or(0);
    data.VendorId = init.vendor_id.as_ptr().cast_mut().cast();
    data.DeviceIdLength = u16::try_from(init.device_id.len()).unwrap_or(0);
    data.DeviceId = init.device_id.as_ptr().cast_mut().cast();
    // SAFETY: the arguments are DriverEntry's, per this function's contract; the port copies
    // what it needs from `data` (the ID strings are 'static and only read).
    unsafe { sys::ScsiPortInitialize(argument1, argument2, &raw mut data, core::ptr::null_mut()) }
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
    config_info: sys::PPORT_CONFIGURATION_INFORMATION,
    again: sys::PBOOLEAN,
) -> u32 {
    // SAFETY: `again` is NULL or the port's out parameter.
    if let Some(again) = unsafe { again.as_mut() } {
        *again = FALSE;
    }
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else {
        return sys::SP_RETURN_ERROR;
    };
    // SAFETY: `config_info` is NULL or the port's ConfigInfo for this call.
    let Some(config) = (unsafe { config_info.as_mut() }) else { return sys::SP_RETURN_BAD_CONFIG };
    // The first thing to check, so that no field past the port's structure is touched
    // (`DDI:ns-srb-_port_configuration_information`, `Length`).
    if (config.Length as usize) < size_of::<sys::PORT_CONFIGURATION_INFORMATION>() {
        return sys::SP_RETURN_BAD_CONFIG;
    }
    // SAFETY: the port passes NULL or a NUL-terminated string.
    let argument = unsafe { argument_bytes(argument_string) };
    let mut guard = extension.lock();
    let mut ctx = FindAdapterCtx::new(device_extension, config, argument);
    let result = guard.miniport().hw_find_adapter(&mut ctx);
    if ctx.again() {
        // SAFETY: as above.
        if let Some(again) = unsafe { again.as_mut() } {
            *again = TRUE;
        }
    }
    match result {
        Ok(()) => sys::SP_RETURN_FOUND,
        Err(error) => error.code(),
    }
}

unsafe extern "win64" fn hw_initialize<M: Miniport>(device_extension: *mut c_void) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    let mut guard = extension.lock();
    boolean(guard.miniport().hw_initialize(&mut InitializeCtx::new(device_extension)))
}

unsafe extern "win64" fn hw_start_io<M: Miniport>(
    device_extension: *mut c_void,
    srb: sys::PSCSI_REQUEST_BLOCK,
) -> BOOLEAN {
    // SAFETY: the port hands over a request it has just given to the miniport.
    let Some(srb) = (unsafe { Srb::<M>::from_raw(srb) }) else { return TRUE };
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return TRUE };
    let mut ctx = StartIoCtx::new(device_extension);
    if let Some(mut guard) = extension.try_lock() {
        guard.miniport().hw_start_io(&mut ctx, srb);
        run_parked(guard, extension, device_extension);
        return TRUE;
    }
    // Only the enable callback on another processor can hold the lock here (see extension.rs).
    // Waiting for it could deadlock: this routine holds the interrupt lock the callback's
    // notifications may need. So each request gets what the port will act on.
    if srb.function() == SrbFunction::ExecuteScsi {
        // The port requeues it and tries again (`KG:return-from-hwscsistartio`).
        ctx.complete(srb, SrbStatus::Busy);
        ctx.next_request();
        return TRUE;
    }
    // Any other function the port would not retry: hand it to the lock holder, which starts it
    // as it lets go. Looking again afterwards closes the race with a holder that let go
    // meanwhile: then this routine takes the lock and starts it itself.
    let raw = srb.into_raw();
    if extension.park(raw) {
        if extension.has_parked() {
            start_parked(extension, device_extension);
        }
    } else {
        // No room: more requests were handed over in one callback than any miniport that
        // signals readiness once per callback can cause (extension.rs). The port's own
        // recovery (timeouts, then HwScsiResetBus) remains.
        // SAFETY: `raw` came from the handle just given up, so this is again the only one.
        if let Some(srb) = unsafe { Srb::<M>::from_raw(raw) } {
            ctx.complete(srb, SrbStatus::Busy);
            ctx.next_request();
        }
    }
    TRUE
}

/// Starts the requests `HwScsiStartIo` parked while the lock was held, for as long as there are
/// any and the lock can be had. Called by the routines that may hold the lock when the port
/// calls `HwScsiStartIo` (the enable callback), and by those that may find one parked, after
/// they let go. If the lock is taken meanwhile, its holder does the same when it lets go.
/// Lets go of `guard` first, in the order the look needs (extension.rs). Inlined: the look is
/// one load, and the work is out of line ([`start_parked`]).
#[inline]
fn run_parked<M: Miniport>(guard: Guard<'_, M>, extension: &Extension<M>, device_extension: *mut c_void) {
    guard.unlock();
    if extension.has_parked() {
        start_parked(extension, device_extension);
    }
}

/// [`run_parked`]'s work, rarely done (only when the port runs `HwScsiStartIo` beside the enable
/// callback). Out of line, and `extern "win64"`, the convention of the trampolines that call
/// it, so that in the emulator's Linux build their prologues need not save xmm6–xmm15 for it
/// (callee-saved in the Windows x64 convention only); on Windows both conventions are one.
#[cold]
#[inline(never)]
extern "win64" fn start_parked<M: Miniport>(extension: &Extension<M>, device_extension: *mut c_void) {
    while extension.has_parked() {
        let Some(mut guard) = extension.try_lock() else { return };
        // Cleared before the slots are emptied: a request parked from here on marks again and
        // is found by the next look (extension.rs).
        extension.take_parked_mark();
        while let Some(raw) = extension.unpark() {
            // SAFETY: a request the port handed to `HwScsiStartIo`, which gave up its handle to
            // park it; taking it out of the slot makes this the only handle again.
            if let Some(srb) = unsafe { Srb::<M>::from_raw(raw) } {
                guard.miniport().hw_start_io_parked(&mut StartIoCtx::new(device_extension), srb);
            }
        }
        guard.unlock();
    }
}

unsafe extern "win64" fn hw_interrupt<M: Miniport>(device_extension: *mut c_void) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    // Held only by the enable callback, during which this HBA's interrupts are masked: the
    // interrupt belongs to another device on the line.
    let Some(mut guard) = extension.try_lock() else { return FALSE };
    match guard.miniport().hw_interrupt(InterruptCtx::new(device_extension)) {
        InterruptResult::NotMine => FALSE,
        InterruptResult::Handled | InterruptResult::Deferred(_) => TRUE,
    }
}

pub(crate) unsafe extern "win64" fn hw_enable_interrupts_callback<M: Miniport>(device_extension: *mut c_void) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return TRUE };
    let mut guard = extension.lock();
    let _requested: DisableInterruptsRequested =
        guard.miniport().hw_enable_interrupts_callback(EnableInterruptsCtx::new(device_extension));
    // Requests StartIo handed over while the callback ran are started before its last step, so
    // that the callback still ends with CallDisableInterrupts
    // (`KG:scsi-miniport-driver-s-hwscsienableinterruptscallback-routine`). The lock is free by
    // then, so a port that ran the disable callback at once could take it.
    run_parked(guard, extension, device_extension);
    call_disable_interrupts::<M>(device_extension);
    TRUE
}

pub(crate) unsafe extern "win64" fn hw_disable_interrupts_callback<M: Miniport>(device_extension: *mut c_void) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    let mut guard = extension.lock();
    boolean(guard.miniport().hw_disable_interrupts_callback(&mut DisableInterruptsCtx::new(device_extension)))
}

unsafe extern "win64" fn hw_reset_bus<M: Miniport>(device_extension: *mut c_void, path_id: u32) -> BOOLEAN {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    let Ok(path_id) = u8::try_from(path_id) else { return FALSE };
    let mut guard = extension.lock();
    let ok = guard.miniport().hw_reset_bus(&mut ResetBusCtx::new(device_extension), path_id);
    run_parked(guard, extension, device_extension);
    boolean(ok)
}

pub(crate) unsafe extern "win64" fn hw_timer<M: Miniport>(device_extension: *mut c_void) {
    // SAFETY: the port passes the device extension it allocated for this miniport.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return };
    let mut ctx = TimerCtx::new(device_extension);
    if let Some(mut guard) = extension.try_lock() {
        guard.miniport().hw_timer(&mut ctx);
        run_parked(guard, extension, device_extension);
    } else {
        // Busy in the enable callback on another processor: come back in a millisecond.
        ctx.request_timer(1000);
    }
}

unsafe extern "win64" fn hw_adapter_control<M: Miniport>(
    device_extension: *mut c_void,
    control_type: sys::SCSI_ADAPTER_CONTROL_TYPE,
    parameters: *mut c_void,
) -> sys::SCSI_ADAPTER_CONTROL_STATUS {
    let supported = M::CONTROL_TYPES;
    let control = match control_type {
        sys::ScsiQuerySupportedControlTypes => {
            let list = parameters.cast::<sys::SCSI_SUPPORTED_CONTROL_TYPE_LIST>();
            if !list.is_null() {
                // SAFETY: the port passes its SCSI_SUPPORTED_CONTROL_TYPE_LIST for this query.
                let max = unsafe { (*list).MaxControlType };
                // SAFETY: `SupportedTypeList` is the flexible array that follows `MaxControlType`.
                let entries = unsafe { (&raw mut (*list).SupportedTypeList).cast::<BOOLEAN>() };
                for control in 0..sys::ScsiAdapterControlMax {
                    // Never past SupportedTypeList[MaxControlType - 1] (`REF:HwScsiAdapterControl`).
                    let Ok(index) = u32::try_from(control) else { continue };
                    if index < max && supported.supports(control) {
                        // SAFETY: `index < MaxControlType`, the number of entries the port allocated.
                        unsafe { entries.wrapping_add(index as usize).write(TRUE) };
                    }
                }
            }
            return sys::ScsiAdapterControlSuccess;
        }
        sys::ScsiStopAdapter => AdapterControl::Stop,
        sys::ScsiRestartAdapter => AdapterControl::Restart,
        sys::ScsiSetBootConfig => AdapterControl::SetBootConfig,
        sys::ScsiSetRunningConfig => AdapterControl::SetRunningConfig,
        _ => return sys::ScsiAdapterControlSuccess,
    };
    if supported.supports(control_type) {
        // SAFETY: the port passes the device extension it allocated for this miniport.
        if let Some(extension) = unsafe { Extension::<M>::from_raw(device_extension) } {
            let mut guard = extension.lock();
            guard.miniport().hw_adapter_control(&mut AdapterControlCtx::new(device_extension), control);
        }
    }
    // Every type must report success (`REF:HwScsiAdapterControl`).
    sys::ScsiAdapterControlSuccess
}
