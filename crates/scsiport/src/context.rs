//! Per-routine contexts: what each miniport routine may ask of the port.
//!
//! Each routine receives its own context type, and each type offers only the port services the
//! documentation allows in that routine (contract §2.5, §3, §4). What is missing from a type
//! cannot be called there: there is no way to reach `ScsiPortGetUncachedExtension` outside
//! [`FindAdapterCtx`], to request `CallEnableInterrupts` outside [`InterruptCtx`], or to
//! complete a request from [`DisableInterruptsCtx`].

use core::ffi::{c_uint, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;

use scsiport_sys as sys;

use crate::config::{AccessRange, ConfigInfo};
use crate::hw::{CommonBuffer, PhysicalAddress, Registers, Space};
use crate::miniport::{hw_disable_interrupts_callback, hw_enable_interrupts_callback, hw_timer};
use crate::srb::{LuAddress, Srb, SrbStatus};
use crate::Miniport;

mod sealed {
    /// Gives the wrapper the device extension pointer to pass to the port; sealed so that no
    /// other crate can make a context with a forged pointer.
    pub trait Sealed {
        fn device_extension(&self) -> *mut core::ffi::c_void;
    }
}

/// Port services every routine may use: stalls, error logging, the system time and address
/// translation of a request's data buffer (contract §2.5, "generic helpers usable anywhere").
pub trait Port<M: Miniport>: sealed::Sealed {
    /// `ScsiPortStallExecution`: busy-wait. Keep each call and each routine's total under
    /// 1 ms (`DDI:nf-srb-scsiportstallexecution`); Driver Verifier bug-checks at 0.1 s.
    fn stall(&self, microseconds: u32) {
        // SAFETY: no pointer arguments; callable at any IRQL a miniport routine runs at.
        unsafe { sys::ScsiPortStallExecution(microseconds) };
    }

    /// `ScsiPortLogError`. `srb` names a request the miniport still owns; a completed one
    /// cannot be passed, as the DDI requires (`DDI:nf-srb-scsiportlogerror`).
    fn log_error(&self, srb: Option<&Srb<M>>, address: LuAddress, error_code: u32, unique_id: u32) {
        let raw = srb.map_or(core::ptr::null_mut(), Srb::as_raw);
        // SAFETY: the extension pointer is the port's; `raw` is null or an active request.
        unsafe {
            sys::ScsiPortLogError(
                self.device_extension(),
                raw,
                address.path_id,
                address.target_id,
                address.lun,
                error_code,
                unique_id,
            );
        }
    }

    /// `ScsiPortQuerySystemTime`: 100 ns units since 1601, about 10 ms granularity.
    fn system_time(&self) -> i64 {
        let mut time = sys::LARGE_INTEGER::default();
        // SAFETY: `time` is a valid out parameter.
        unsafe { sys::ScsiPortQuerySystemTime(&raw mut time) };
        time.QuadPart
    }

    /// The physically contiguous pieces of `srb`'s data buffer, for a scatter/gather list:
    /// a `ScsiPortGetPhysicalAddress` walk over `DataBuffer`, each piece clamped to what
    /// remains of `DataTransferLength` (the port may report more: `DDI:nf-srb-scsiportgetphysicaladdress`).
    fn data_segments<'s>(&self, srb: &'s Srb<M>) -> PhysicalSegments<'s, M> {
        PhysicalSegments {
            extension: self.device_extension(),
            srb,
            offset: 0,
            total: srb.data_transfer_length(),
            failed: false,
        }
    }
}

/// One physically contiguous piece of a data buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysicalSegment {
    /// Bus address.
    pub address: PhysicalAddress,
    /// Length in bytes (never 0).
    pub length: u32,
}

/// Iterator over a request's physical segments; see [`Port::data_segments`]. Yields `Err(())`
/// once, and then ends, if the port cannot translate an address (it returned 0).
pub struct PhysicalSegments<'s, M> {
    extension: *mut c_void,
    srb: &'s Srb<M>,
    offset: u32,
    total: u32,
    failed: bool,
}

impl<M: Miniport> Iterator for PhysicalSegments<'_, M> {
    type Item = Result<PhysicalSegment, ()>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.total {
            return None;
        }
        let remaining = self.total.wrapping_sub(self.offset);
        // Only an address is formed here, never dereferenced: with MapBuffers FALSE the data
        // buffer is merely a handle the port translates.
        let va = (self.srb.data_buffer_va() as usize).wrapping_add(self.offset as usize) as *mut c_void;
        let mut length: u32 = 0;
        // SAFETY: `va` lies inside this request's data buffer (`offset < DataTransferLength`)
        // and the request is active, which is what the DDI permits for a non-NULL Srb.
        let pa = unsafe { sys::ScsiPortGetPhysicalAddress(self.extension, self.srb.as_raw(), va, &raw mut length) };
        if pa.QuadPart == 0 || length == 0 {
            self.failed = true;
            return Some(Err(()));
        }
        let length = length.min(remaining);
        self.offset = self.offset.wrapping_add(length);
        Some(Ok(PhysicalSegment { address: pa.QuadPart.cast_unsigned(), length }))
    }
}

/// Completion and readiness notifications, for the routines that may send them: `HwScsiStartIo`,
/// `HwScsiInterrupt`, `HwScsiEnableInterruptsCallback`, `HwScsiTimer`, `HwScsiResetBus`
/// (`DDI:nf-srb-scsiportnotification`).
pub trait Notify<M: Miniport>: Port<M> {
    /// `RequestComplete`: sets `SrbStatus` (keeping the autosense flag) and hands the request
    /// back to the port. The handle is consumed: the request cannot be completed again or
    /// touched afterwards (Driver Verifier 0xF1/0x1003, contract §8).
    fn complete(&mut self, mut srb: Srb<M>, status: SrbStatus) {
        srb.set_status(status);
        // SAFETY: `srb` is an active request owned by this miniport; after this call the port
        // owns it again and the handle no longer exists.
        unsafe { sys::ScsiPortNotification(sys::RequestComplete, self.device_extension(), srb.into_raw()) };
    }

    /// `NextRequest`: ready for another request to a target that is not busy.
    fn next_request(&mut self) {
        // SAFETY: NextRequest takes no further arguments.
        unsafe { sys::ScsiPortNotification(sys::NextRequest, self.device_extension()) };
    }

    /// `NextLuRequest`: ready for another request to this LU. Only for tagged / multiple-request
    /// miniports, and never while an untagged request is active on the LU (0xF1/0x1005).
    #[inline]
    fn next_lu_request(&mut self, address: LuAddress) {
        // SAFETY: NextLuRequest takes PathId, TargetId, Lun, each promoted to int by the
        // variadic call, as the C prototype's default promotions require.
        unsafe {
            sys::ScsiPortNotification(
                sys::NextLuRequest,
                self.device_extension(),
                c_uint::from(address.path_id),
                c_uint::from(address.target_id),
                c_uint::from(address.lun),
            );
        }
    }
}

fn request_timer<M: Miniport>(extension: *mut c_void, microseconds: u32) {
    let timer: sys::PHW_TIMER = Some(hw_timer::<M>);
    // SAFETY: RequestTimerCall takes the HwScsiTimer routine and a ULONG interval.
    unsafe { sys::ScsiPortNotification(sys::RequestTimerCall, extension, timer, microseconds) };
}

/// `ScsiPortNotification(CallDisableInterrupts, HwScsiDisableInterruptsCallback)`, the enable
/// callback's last step, made by its trampoline.
pub(crate) fn call_disable_interrupts<M: Miniport>(extension: *mut c_void) {
    let callback: sys::PHW_INTERRUPT = Some(hw_disable_interrupts_callback::<M>);
    // SAFETY: CallDisableInterrupts takes the HwScsiDisableInterruptsCallback routine.
    unsafe { sys::ScsiPortNotification(sys::CallDisableInterrupts, extension, callback) };
}

fn reset_detected(extension: *mut c_void) {
    // SAFETY: ResetDetected takes no further arguments.
    unsafe { sys::ScsiPortNotification(sys::ResetDetected, extension) };
}

fn bus_change_detected(extension: *mut c_void, path_id: u8) {
    // SAFETY: BusChangeDetected takes a PathId, promoted to int.
    unsafe { sys::ScsiPortNotification(sys::BusChangeDetected, extension, c_uint::from(path_id)) };
}

macro_rules! context {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'a, M> {
            extension: *mut c_void,
            _routine: PhantomData<(&'a mut (), fn() -> M)>,
        }

        impl<M> $name<'_, M> {
            pub(crate) fn new(extension: *mut c_void) -> Self {
                Self { extension, _routine: PhantomData }
            }
        }

        impl<M> sealed::Sealed for $name<'_, M> {
            fn device_extension(&self) -> *mut c_void {
                self.extension
            }
        }

        impl<M: Miniport> Port<M> for $name<'_, M> {}
    };
}

macro_rules! timer_service {
    ($name:ident) => {
        impl<M: Miniport> $name<'_, M> {
            /// `RequestTimerCall`: call `HwScsiTimer` once after `microseconds` (0 cancels). Only
            /// one timer is outstanding; a new request replaces it (contract §7.1).
            pub fn request_timer(&mut self, microseconds: u32) {
                request_timer::<M>(self.extension, microseconds);
            }
        }
    };
}

context!(
    /// `HwScsiInitialize` (`REF:HwScsiInitialize`): set up the HBA; interrupts may arrive as soon
    /// as the miniport enables them. If initialisation reset the bus, say so with
    /// [`Self::reset_detected`].
    InitializeCtx
);
timer_service!(InitializeCtx);
impl<M: Miniport> InitializeCtx<'_, M> {
    /// `ResetDetected`: initialisation caused a SCSI bus reset (`REF:HwScsiInitialize`).
    pub fn reset_detected(&mut self) {
        reset_detected(self.extension);
    }
}

context!(
    /// `HwScsiStartIo` (`REF:HwScsiStartIo`): runs with the interrupt lock held. The request it
    /// was given must eventually be completed, and readiness signalled with `NextRequest` or
    /// `NextLuRequest` (`KG:return-from-hwscsistartio`).
    StartIoCtx
);
timer_service!(StartIoCtx);
impl<M: Miniport> Notify<M> for StartIoCtx<'_, M> {}

context!(
    /// `HwScsiTimer` (`REF:HwScsiTimer`): synchronised with the ISR.
    TimerCtx
);
timer_service!(TimerCtx);
impl<M: Miniport> Notify<M> for TimerCtx<'_, M> {}
impl<M: Miniport> TimerCtx<'_, M> {
    /// `BusChangeDetected`: a target may have come or gone on `path_id`.
    pub fn bus_change_detected(&mut self, path_id: u8) {
        bus_change_detected(self.extension, path_id);
    }
}

context!(
    /// `HwScsiResetBus` (`REF:HwScsiResetBus`): every outstanding request on the bus must be
    /// completed with [`SrbStatus::BusReset`], then readiness signalled.
    ResetBusCtx
);
timer_service!(ResetBusCtx);
impl<M: Miniport> Notify<M> for ResetBusCtx<'_, M> {}

context!(
    /// `HwScsiDisableInterruptsCallback`: re-enable the HBA's interrupts and return; nothing
    /// else is allowed there (`REF:HwScsiDisableInterruptsCallback`), so this context offers
    /// nothing else.
    DisableInterruptsCtx
);

context!(
    /// `HwScsiAdapterControl` for stop, restart and the boot/running configuration
    /// (`REF:HwScsiAdapterControl`).
    AdapterControlCtx
);

context!(
    /// `HwScsiInterrupt` (`REF:HwScsiInterrupt`). Decide whether the HBA interrupted; if it did,
    /// either finish the work here ([`InterruptResult::Handled`]) or, as Microsoft documents
    /// for HBAs that need more than a few microseconds, mask the HBA's interrupts, save what
    /// the callback needs and defer with [`Self::call_enable_interrupts`].
    InterruptCtx
);
timer_service!(InterruptCtx);
impl<M: Miniport> Notify<M> for InterruptCtx<'_, M> {}

/// Proof that the ISR requested `CallEnableInterrupts`; only [`InterruptCtx::call_enable_interrupts`]
/// makes one.
#[derive(Debug)]
pub struct EnableInterruptsRequested(());

/// What `HwScsiInterrupt` decided.
#[derive(Debug)]
pub enum InterruptResult {
    /// Not this HBA's interrupt (the line may be shared): return FALSE at once.
    NotMine,
    /// This HBA's interrupt, dismissed and handled in the ISR: return TRUE.
    Handled,
    /// This HBA's interrupt, HBA interrupts masked, the rest deferred to
    /// `HwScsiEnableInterruptsCallback`: return TRUE.
    Deferred(EnableInterruptsRequested),
}

impl<M: Miniport> InterruptCtx<'_, M> {
    /// `ScsiPortNotification(CallEnableInterrupts, HwScsiEnableInterruptsCallback)`.
    ///
    /// Call it only after masking the HBA's interrupts: the port will not call the ISR again
    /// until the disable callback has run, and the enable callback runs with every other
    /// interrupt enabled (contract §4.3, `REF:HwScsiInterrupt`). Consumes the context: nothing
    /// else may happen in the ISR after deferring.
    #[must_use]
    pub fn call_enable_interrupts(self) -> InterruptResult {
        let callback: sys::PHW_INTERRUPT = Some(hw_enable_interrupts_callback::<M>);
        // SAFETY: CallEnableInterrupts takes the HwScsiEnableInterruptsCallback routine.
        unsafe { sys::ScsiPortNotification(sys::CallEnableInterrupts, self.extension, callback) };
        InterruptResult::Deferred(EnableInterruptsRequested(()))
    }

    /// `ResetDetected`: the HBA saw a SCSI bus reset. Active requests must still be completed.
    pub fn reset_detected(&mut self) {
        reset_detected(self.extension);
    }

    /// `BusChangeDetected`: a target may have come or gone on `path_id`.
    pub fn bus_change_detected(&mut self, path_id: u8) {
        bus_change_detected(self.extension, path_id);
    }
}

context!(
    /// `HwScsiEnableInterruptsCallback` (`REF:HwScsiEnableInterruptsCallback`): runs as a DPC
    /// with the HBA's interrupts masked, so the ISR cannot run meanwhile. Finish the work the
    /// ISR saved, complete requests, signal readiness; the routine can only end with
    /// [`Self::call_disable_interrupts`], whose result is what it must return.
    EnableInterruptsCtx
);
timer_service!(EnableInterruptsCtx);
impl<M: Miniport> Notify<M> for EnableInterruptsCtx<'_, M> {}

/// Proof that `HwScsiEnableInterruptsCallback` requested `CallDisableInterrupts`, its mandatory
/// last step (`KG:scsi-miniport-driver-s-hwscsienableinterruptscallback-routine`). Only
/// [`EnableInterruptsCtx::call_disable_interrupts`] makes one, so the callback cannot return
/// without having asked for its HBA's interrupts to be re-enabled.
#[derive(Debug)]
#[must_use]
pub struct DisableInterruptsRequested(());

impl<M: Miniport> EnableInterruptsCtx<'_, M> {
    /// Requests `ScsiPortNotification(CallDisableInterrupts, HwScsiDisableInterruptsCallback)`:
    /// the port runs the disable callback, which re-enables the HBA's interrupts, after this
    /// routine returns. Consumes the context. The wrapper makes the notification itself once
    /// the routine has returned and it has started any request `HwScsiStartIo` handed over
    /// meanwhile (extension.rs), so it is still the callback's last step.
    pub fn call_disable_interrupts(self) -> DisableInterruptsRequested {
        DisableInterruptsRequested(())
    }

    /// `ResetDetected`.
    pub fn reset_detected(&mut self) {
        reset_detected(self.extension);
    }

    /// `BusChangeDetected`: a target may have come or gone on `path_id`.
    pub fn bus_change_detected(&mut self, path_id: u8) {
        bus_change_detected(self.extension, path_id);
    }
}

/// `HwScsiFindAdapter` (`REF:HwScsiFindAdapter`, contract §2): the only routine that may map
/// registers from scratch, free mappings and get the uncached extension.
pub struct FindAdapterCtx<'a, M> {
    extension: *mut c_void,
    config: &'a mut sys::PORT_CONFIGURATION_INFORMATION,
    argument: Option<&'a [u8]>,
    again: bool,
    uncached_taken: bool,
    _miniport: PhantomData<fn() -> M>,
}

impl<M> sealed::Sealed for FindAdapterCtx<'_, M> {
    fn device_extension(&self) -> *mut c_void {
        self.extension
    }
}

impl<M: Miniport> Port<M> for FindAdapterCtx<'_, M> {}

impl<'a, M: Miniport> FindAdapterCtx<'a, M> {
    pub(crate) fn new(
        extension: *mut c_void,
        config: &'a mut sys::PORT_CONFIGURATION_INFORMATION,
        argument: Option<&'a [u8]>,
    ) -> Self {
        Self { extension, config, argument, again: false, uncached_taken: false, _miniport: PhantomData }
    }

    pub(crate) fn again(&self) -> bool {
        self.again
    }

    /// The HBA's configuration, to read resources and fill in capabilities.
    pub fn config(&mut self) -> ConfigInfo<'_> {
        ConfigInfo::new(self.config)
    }

    /// `ArgumentString`, without its terminating NUL; `"dump=1"` when loaded for crash dump or
    /// hibernation (`KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive`).
    #[must_use]
    pub fn argument_string(&self) -> Option<&[u8]> {
        self.argument
    }

    /// The value of `key` in `ArgumentString`, read as `key=value` items separated by `;`,
    /// `,` or blanks. Keys compare case-insensitively.
    #[must_use]
    pub fn argument(&self, key: &str) -> Option<&[u8]> {
        self.argument?
            .split(|b| matches!(b, b';' | b',' | b' ' | b'\t'))
            .filter_map(|item| {
                let eq = item.iter().position(|b| *b == b'=')?;
                Some((item.get(..eq)?, item.get(eq.checked_add(1)?..)?))
            })
            .find(|(k, _)| k.eq_ignore_ascii_case(key.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Asks to be called again for another HBA on the bus (`*Again = TRUE`); irrelevant under
    /// `PnP`, where the default is FALSE.
    pub fn set_again(&mut self, again: bool) {
        self.again = again;
    }

    /// `ScsiPortGetDeviceBase` for one of the supplied access ranges: maps it and returns the
    /// accessor for it, or `None` if the port refuses (`DDI:nf-srb-scsiportgetdevicebase`).
    pub fn map_registers(&mut self, range: &AccessRange) -> Option<Registers> {
        let address = sys::LARGE_INTEGER { QuadPart: range.start.cast_signed() };
        let in_io_space = if range.in_memory { sys::FALSE } else { sys::TRUE };
        // SAFETY: the interface type and bus number are the port's own; the range comes from
        // the port's ConfigInfo; no pointer is passed but the extension.
        let base = unsafe {
            sys::ScsiPortGetDeviceBase(
                self.extension,
                self.config.AdapterInterfaceType,
                self.config.SystemIoBusNumber,
                address,
                range.length,
                in_io_space,
            )
        };
        let base = NonNull::new(base.cast::<u8>())?;
        let space = if range.in_memory { Space::Memory } else { Space::Io };
        // SAFETY: `base` is what ScsiPortGetDeviceBase returned for `range.length` bytes.
        Some(unsafe { Registers::new(base, range.length, space) })
    }

    /// `ScsiPortFreeDeviceBase`: an HBA that turns out unusable must free its mappings before
    /// returning (`DDI:nf-srb-scsiportfreedevicebase`).
    #[allow(clippy::needless_pass_by_value)] // consumed so the mapping cannot be used afterwards
    pub fn unmap_registers(&mut self, registers: Registers) {
        // SAFETY: the address is exactly what ScsiPortGetDeviceBase returned; the accessor is
        // consumed, so nothing can use the mapping afterwards.
        unsafe { sys::ScsiPortFreeDeviceBase(self.extension, registers.base().as_ptr().cast()) };
    }

    /// `ScsiPortGetUncachedExtension`: the HBA's common buffer, physically contiguous and
    /// shared with the device. At most once per HBA, only here, only for a bus master, and only
    /// after every `ConfigInfo` field it depends on is final (`DDI:nf-srb-scsiportgetuncachedextension`):
    /// returns `None` on a second call, when `Master` is not set, or when the port fails.
    pub fn uncached_extension(&mut self, len: u32) -> Option<CommonBuffer> {
        if self.uncached_taken || self.config.Master == sys::FALSE || len == 0 {
            return None;
        }
        self.uncached_taken = true;
        // SAFETY: called from HwScsiFindAdapter with the port's own ConfigInfo.
        let va = unsafe { sys::ScsiPortGetUncachedExtension(self.extension, &raw mut *self.config, len) };
        let va = NonNull::new(va.cast::<u8>())?;
        let mut contiguous: u32 = 0;
        // SAFETY: Srb NULL with a virtual address inside the uncached extension is the documented
        // way to get its physical address (`DDI:nf-srb-scsiportgetphysicaladdress`).
        let pa = unsafe {
            sys::ScsiPortGetPhysicalAddress(self.extension, core::ptr::null_mut(), va.as_ptr().cast(), &raw mut contiguous)
        };
        if pa.QuadPart == 0 || contiguous < len {
            return None;
        }
        // SAFETY: the port returned `len` bytes of common buffer at `va`, physically contiguous
        // from `pa` (checked above), valid until the adapter is removed.
        Some(unsafe { CommonBuffer::new(va, pa.QuadPart.cast_unsigned(), len) })
    }
}
