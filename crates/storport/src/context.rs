//! Per-routine contexts: what each miniport routine may ask of Storport.
//!
//! Each routine receives its own context type, and each type offers only the services the
//! documentation allows there, grouped in traits:
//!
//! | Trait | Services | Implemented by |
//! | --- | --- | --- |
//! | [`Port`] | `StorPortLogError`, `StorPortGetScatterGatherList`, `StorPortGetPhysicalAddress` of a request's sense buffer or SRB extension | every context |
//! | [`Stall`] | `StorPortStallExecution` | every context but [`StartIoCtx`] (Static Driver Verifier's `StorPortStartIo` rule, `DT:storport-storportstartio`), [`StartIoLockedCtx`] (the same lock), [`InterruptCtx`] and [`SynchronizedCtx`] (the ISR must return within 50 µs, `DDI-storport:nc-storport-hw_interrupt`) |
//! | [`Notify`] | `RequestComplete`, `ResetDetected`, `BusChangeDetected`, `RequestTimerCall`, `StorPortIssueDpc` | the I/O path: [`StartIoCtx`], [`InterruptCtx`], [`DpcCtx`], [`StartIoLockedCtx`], [`SynchronizedCtx`], [`ResetBusCtx`], [`TimerCtx`] |
//! | [`Synchronize`] | `StorPortSynchronizeAccess`: the interrupt lock and [`Miniport::InterruptState`] | routines that do not hold the interrupt lock and may take it: [`StartIoCtx`], [`DpcCtx`], [`StartIoLockedCtx`], [`ResetBusCtx`], [`TimerCtx`] |
//! | [`QueueControl`] | `StorPortPause`, `StorPortResume`, `StorPortBusy`, `StorPortReady` | the same five, which run at or below `DISPATCH_LEVEL` |
//!
//! What is missing from a type cannot be called there: `HwStorBuildIo` can only complete the
//! request it was given ([`BuildIoCtx::complete`]), the ISR cannot take the interrupt lock it
//! already holds, a `StorPortSynchronizeAccess` callback cannot take the StartIo lock (lock
//! order: StartIo before interrupt, `DDI-storport:nf-storport-storportacquirespinlock`), only
//! [`DpcCtx`] can take the StartIo lock, and only [`FindAdapterCtx`] can map registers or get
//! the uncached extension. `NextRequest` and `NextLuRequest` are not offered: Storport ignores
//! them (`KG:storport-queue-management`).

use core::ffi::{c_uint, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{BOOLEAN, FALSE, TRUE};

use crate::config::{AccessRange, ConfigInfo};
use crate::extension::Extension;
use crate::hw::{CommonBuffer, PhysicalAddress, Registers, Space};
use crate::miniport::hw_timer;
use crate::srb::{LuAddress, ScatterGatherList, Srb, SrbStatus};
use crate::Miniport;

mod sealed {
    /// Gives the wrapper the device extension; sealed so that no other crate can make a context
    /// or implement the service traits for one.
    pub trait Sealed<M: crate::Miniport> {
        fn extension(&self) -> &crate::extension::Extension<M>;
    }
}

/// Services every routine may use.
pub trait Port<M: Miniport>: sealed::Sealed<M> {
    /// `StorPortLogError`. `srb` names a request the miniport still owns: a completed one cannot
    /// be passed (`DDI-storport:nf-storport-storportlogerror`, `KG:error-handling-in-storport-miniport-drivers`).
    fn log_error(&self, srb: Option<&Srb<M>>, address: LuAddress, error_code: u32, unique_id: u32) {
        let raw = srb.map_or(core::ptr::null_mut(), Srb::as_raw);
        // SAFETY: the extension pointer is the port's; `raw` is null or an active request.
        unsafe {
            stor::StorPortLogError(
                self.extension().as_raw(),
                raw,
                address.path_id,
                address.target_id,
                address.lun,
                error_code,
                unique_id,
            );
        }
    }

    /// `StorPortGetScatterGatherList`: the list Storport built for `srb`'s data buffer, best
    /// translated into the device's format in `HwStorBuildIo`
    /// (`KG:access-to-scatter-gather-lists-in-the-storport-i-o-model`). `None` when Storport
    /// has none (no data transfer). The list borrows the request, so it cannot outlive its
    /// completion.
    fn scatter_gather_list<'s>(&self, srb: &'s Srb<M>) -> Option<ScatterGatherList<'s>> {
        // SAFETY: `srb` is an active request of this adapter.
        let raw = unsafe { stor::StorPortGetScatterGatherList(self.extension().as_raw(), srb.as_raw()) };
        // SAFETY: Storport returned NULL or the request's list, valid until its completion,
        // which the borrow of `srb` outlasts.
        unsafe { ScatterGatherList::from_raw(raw) }
    }

    /// The bus address of `srb`'s SRB extension, which "can be safely accessed by the HBA
    /// hardware" (`DDI-storport:ns-storport-_hw_initialization_data~r1`, `SrbExtensionSize`):
    /// per-request memory the device may read, such as a scatter/gather list built in
    /// `HwStorBuildIo`. `None` if there is none or it is not physically contiguous.
    fn srb_extension_physical_address(&self, srb: &Srb<M>) -> Option<PhysicalAddress> {
        let va = srb.extension_ptr()?;
        let size = u32::try_from(core::mem::size_of::<M::SrbExtension>()).ok()?;
        let mut contiguous: u32 = 0;
        // SAFETY: an address that is not a data or sense buffer is passed with a NULL Srb
        // (`DDI-storport:nf-storport-storportgetphysicaladdress`); `contiguous` is a valid out
        // parameter.
        let pa = unsafe {
            stor::StorPortGetPhysicalAddress(self.extension().as_raw(), core::ptr::null_mut(), va.as_ptr().cast(), &raw mut contiguous)
        };
        (pa.QuadPart != 0 && contiguous >= size).then(|| pa.QuadPart.cast_unsigned())
    }

    /// The bus address of `srb`'s sense buffer, for a device that writes sense data itself
    /// (then record its length with [`Srb::set_sense_returned`]). `None` when there is no sense
    /// buffer or it is not physically contiguous.
    fn sense_physical_address(&self, srb: &Srb<M>) -> Option<PhysicalAddress> {
        let capacity = u32::from(srb.sense_capacity());
        if capacity == 0 {
            return None;
        }
        let mut contiguous: u32 = 0;
        // SAFETY: the sense buffer's address is passed with its Srb
        // (`DDI-storport:nf-storport-storportgetphysicaladdress`); the request is active.
        let pa = unsafe {
            stor::StorPortGetPhysicalAddress(self.extension().as_raw(), srb.as_raw(), srb.sense_buffer_va(), &raw mut contiguous)
        };
        (pa.QuadPart != 0 && contiguous >= capacity).then(|| pa.QuadPart.cast_unsigned())
    }
}

/// `StorPortStallExecution`, for the routines where busy-waiting is allowed.
pub trait Stall<M: Miniport>: Port<M> {
    /// Busy-waits. Storport Verification bug-checks a stall above 0.1 s
    /// (`DT:dv-storport-verification`); keep each well under 1 ms.
    fn stall(&self, microseconds: u32) {
        // SAFETY: no pointer arguments.
        unsafe { stor::StorPortStallExecution(microseconds) };
    }
}

/// Notifications of the I/O path (`DDI-storport:nf-storport-storportnotification`) and
/// `StorPortIssueDpc`.
pub trait Notify<M: Miniport>: Port<M> {
    /// `RequestComplete`: sets `SrbStatus` (keeping the autosense flag) and hands the request
    /// back to Storport. The handle is consumed: the request cannot be completed again or
    /// touched afterwards.
    fn complete(&mut self, mut srb: Srb<M>, status: SrbStatus) {
        srb.set_status(status);
        // SAFETY: `srb` is an active request owned by this miniport; after this call the port
        // owns it again and the handle no longer exists.
        unsafe { stor::StorPortNotification(stor::RequestComplete, self.extension().as_raw(), srb.into_raw()) };
    }

    /// `ResetDetected`: the HBA saw a bus reset. Active requests must still be completed;
    /// Storport handles the reset delays (`BusResetHoldTime`).
    fn reset_detected(&mut self) {
        // SAFETY: ResetDetected takes no further arguments.
        unsafe { stor::StorPortNotification(stor::ResetDetected, self.extension().as_raw()) };
    }

    /// `BusChangeDetected`: a target may have come or gone on `path_id`.
    fn bus_change_detected(&mut self, path_id: u8) {
        // SAFETY: BusChangeDetected takes a UCHAR PathId, promoted to int by the variadic call.
        unsafe { stor::StorPortNotification(stor::BusChangeDetected, self.extension().as_raw(), c_uint::from(path_id)) };
    }

    /// `RequestTimerCall`: call [`Miniport::hw_timer`] once after `microseconds` (0 cancels;
    /// resolution about 10 ms). One timer: a new request replaces the old.
    fn request_timer(&mut self, microseconds: u32) {
        let timer: stor::PHW_TIMER = Some(hw_timer::<M>);
        // SAFETY: RequestTimerCall takes the HwStorTimer routine and a ULONG interval.
        unsafe { stor::StorPortNotification(stor::RequestTimerCall, self.extension().as_raw(), timer, microseconds) };
    }

    /// `StorPortIssueDpc`: queue [`Miniport::hw_dpc`], the routine `HwStorInterrupt` defers its
    /// work to (`DDI-storport:nc-storport-hw_interrupt`). A DPC already queued is not queued
    /// twice (`DDI-storport:nf-storport-storportissuedpc`). Before the DPC object is initialised
    /// (in `HwStorPassiveInitializeRoutine`, after `HwStorInitialize`, during which interrupts
    /// may already arrive) the request is remembered and the DPC issued as soon as it exists.
    /// Returns `false` only if Storport refused to queue it.
    fn issue_dpc(&mut self) -> bool {
        self.extension().issue_dpc()
    }
}

/// `StorPortSynchronizeAccess`: run a closure under the interrupt lock, with the state it owns.
pub trait Synchronize<M: Miniport>: Port<M> {
    /// Runs `f` with the interrupt lock held, as a full-duplex miniport must to touch what it
    /// shares with `HwStorInterrupt` (`DDI-storport:nf-storport-storportsynchronizeaccess`,
    /// `KG:synchronized-access-within-unsynchronized-miniport-driver-routines`). Keep it short.
    /// Returns `f`'s result, or `None` only if the port did not call the routine.
    fn synchronize<R, F>(&mut self, f: F) -> Option<R>
    where
        F: FnOnce(&mut M::InterruptState, &mut SynchronizedCtx<'_, M>) -> R,
    {
        let mut call = SyncCall::<F, R> { f: Some(f), result: None };
        let routine: stor::PSTOR_SYNCHRONIZED_ACCESS = Some(synchronized_access::<M, F, R>);
        // SAFETY: the routine is this crate's trampoline for `F`; `call` outlives the call,
        // which runs the routine synchronously.
        unsafe { stor::StorPortSynchronizeAccess(self.extension().as_raw(), routine, (&raw mut call).cast()) };
        call.result
    }
}

/// Storport's queue management for the adapter (`KG:storport-queue-management`).
pub trait QueueControl<M: Miniport>: Port<M> {
    /// `StorPortPause`: hold all requests for up to `seconds` or until [`Self::resume`].
    fn pause(&mut self, seconds: u32) -> bool {
        // SAFETY: the extension pointer is the port's.
        unsafe { stor::StorPortPause(self.extension().as_raw(), seconds) != FALSE }
    }

    /// `StorPortResume`.
    fn resume(&mut self) -> bool {
        // SAFETY: the extension pointer is the port's.
        unsafe { stor::StorPortResume(self.extension().as_raw()) != FALSE }
    }

    /// `StorPortBusy`: send nothing until `requests` outstanding ones complete or [`Self::ready`].
    fn busy(&mut self, requests: u32) -> bool {
        // SAFETY: the extension pointer is the port's.
        unsafe { stor::StorPortBusy(self.extension().as_raw(), requests) != FALSE }
    }

    /// `StorPortReady`.
    fn ready(&mut self) -> bool {
        // SAFETY: the extension pointer is the port's.
        unsafe { stor::StorPortReady(self.extension().as_raw()) != FALSE }
    }
}

struct SyncCall<F, R> {
    f: Option<F>,
    result: Option<R>,
}

/// The `STOR_SYNCHRONIZED_ACCESS` routine for one closure type.
unsafe extern "win64" fn synchronized_access<M, F, R>(device_extension: *mut c_void, context: *mut c_void) -> BOOLEAN
where
    M: Miniport,
    F: FnOnce(&mut M::InterruptState, &mut SynchronizedCtx<'_, M>) -> R,
{
    // SAFETY: `context` is the `SyncCall<F, R>` `Synchronize::synchronize` passed, alive and
    // not otherwise referenced while the port runs this routine.
    let Some(call) = (unsafe { context.cast::<SyncCall<F, R>>().as_mut() }) else { return FALSE };
    let Some(f) = call.f.take() else { return FALSE };
    // SAFETY: the port passes the device extension the caller passed, this miniport's.
    let Some(extension) = (unsafe { Extension::<M>::from_raw(device_extension) }) else { return FALSE };
    // SAFETY: Storport runs the routine with the interrupt lock held
    // (`DDI-storport:nf-storport-storportsynchronizeaccess`), and the callers that can reach
    // here hold no other reference to the interrupt state (see the Synchronize implementors).
    let state = unsafe { extension.interrupt() };
    call.result = Some(f(state, &mut SynchronizedCtx::new(extension)));
    TRUE
}

macro_rules! context {
    ($(#[$doc:meta])* $name:ident: $($service:ident),*) => {
        $(#[$doc])*
        pub struct $name<'a, M: Miniport> {
            extension: &'a Extension<M>,
            // A context stands for locks held on this processor: it stays here.
            _processor: PhantomData<*const ()>,
        }

        impl<'a, M: Miniport> $name<'a, M> {
            pub(crate) fn new(extension: &'a Extension<M>) -> Self {
                Self { extension, _processor: PhantomData }
            }
        }

        impl<M: Miniport> sealed::Sealed<M> for $name<'_, M> {
            fn extension(&self) -> &Extension<M> {
                self.extension
            }
        }

        impl<M: Miniport> Port<M> for $name<'_, M> {}
        $(impl<M: Miniport> $service<M> for $name<'_, M> {})*
    };
}

context!(
    /// `HwStorInitialize` (`DDI-storport:nc-storport-hw_initialize`): runs at DIRQL with the
    /// interrupt lock held, so it gets the interrupt-lock state. Set up what `HwStorInterrupt`
    /// needs before enabling the HBA's interrupts: they may arrive at once. The wrapper then
    /// enables `HwStorPassiveInitializeRoutine`, where it initialises the DPC.
    InitializeCtx: Stall
);

context!(
    /// `HwStorPassiveInitializeRoutine` (`DDI-storport:nc-storport-hw_passive_initialize_routine`):
    /// `PASSIVE_LEVEL`, no lock held and none allowed
    /// (`DDI-storport:nf-storport-storportacquirespinlock`), after the wrapper initialised the DPC.
    PassiveInitializeCtx: Stall
);

context!(
    /// `HwStorStartIo` (`DDI-storport:nc-storport-hw_startio`): in full duplex Storport holds the
    /// StartIo lock, at `DISPATCH_LEVEL`, and `HwStorInterrupt` may run at the same time on
    /// another processor. It gets the StartIo-lock state; the interrupt-lock state only through
    /// [`Synchronize::synchronize`]. No stalling here (`DT:storport-storportstartio`).
    StartIoCtx: Notify, Synchronize, QueueControl
);

context!(
    /// `HwStorInterrupt` (`DDI-storport:nc-storport-hw_interrupt`): DIRQL, the interrupt lock
    /// held, concurrent with `HwStorStartIo`. Claim and dismiss the interrupt, save what the
    /// DPC needs in the interrupt-lock state, [`Notify::issue_dpc`], and return within 50 µs.
    InterruptCtx: Notify
);

context!(
    /// A `StorPortSynchronizeAccess` callback: DIRQL, the interrupt lock held. It has the
    /// interrupt-lock state, and whatever the closure captured from its caller.
    SynchronizedCtx: Notify
);

context!(
    /// `HwStorResetBus` (`DDI-storport:nc-storport-hw_reset_bus`): `DISPATCH_LEVEL`, the StartIo
    /// lock held, the device queues paused. Complete every request `HwStorStartIo` received for
    /// the bus, with [`SrbStatus::BusReset`] where fitting.
    ResetBusCtx: Stall, Notify, Synchronize, QueueControl
);

context!(
    /// `HwStorTimer` (`DDI-storport:nc-storport-hw_timer`), after [`Notify::request_timer`]: the
    /// StartIo lock held (`DDI-storport:nf-storport-storportacquirespinlock`; the interrupt lock
    /// may still be taken, so it is not held).
    TimerCtx: Stall, Notify, Synchronize, QueueControl
);

context!(
    /// `HwStorAdapterControl` for `ScsiStopAdapter` and `ScsiRestartAdapter`: DIRQL with the
    /// interrupt lock held (`DDI-storport:nc-storport-hw_adapter_control`), so it gets the
    /// interrupt-lock state. No request is outstanding at a stop
    /// (`DDI-storport:ne-storport-scsi_adapter_control_type`), so nothing is completed here.
    AdapterControlCtx: Stall
);

context!(
    /// `HwStorDpcRoutine` (`DDI-storport:nc-storport-hw_dpc_routine`): `DISPATCH_LEVEL`, no lock
    /// held, concurrent with `HwStorStartIo` and `HwStorInterrupt`, never with itself. It has
    /// the DPC's own state; the StartIo-lock state through [`Self::with_start_io_lock`] and the
    /// interrupt-lock state through [`Synchronize::synchronize`], the way full-duplex Storport
    /// miniports take those locks from their DPC.
    DpcCtx: Stall, Notify, Synchronize, QueueControl
);

context!(
    /// The part of `HwStorDpcRoutine` that holds the StartIo lock ([`DpcCtx::with_start_io_lock`]).
    /// It may still take the interrupt lock, which comes after the StartIo lock; it cannot take
    /// the StartIo lock again.
    StartIoLockedCtx: Notify, Synchronize, QueueControl
);

impl<M: Miniport> DpcCtx<'_, M> {
    /// `StorPortAcquireSpinLock(StartIoLock)`, `f` with the state that lock owns,
    /// `StorPortReleaseSpinLock`: the DPC routine may take the StartIo lock, before the
    /// interrupt lock if it needs both (`DDI-storport:nf-storport-storportacquirespinlock`,
    /// `DDI-storport:nc-storport-hw_dpc_routine`). The state cannot leave the closure, so it is
    /// never touched after the lock is released.
    pub fn with_start_io_lock<R>(&mut self, f: impl FnOnce(&mut M::StartIoState, &mut StartIoLockedCtx<'_, M>) -> R) -> R {
        let raw = self.extension.as_raw();
        let mut handle = stor::STOR_LOCK_HANDLE::zeroed();
        // SAFETY: the DPC routine holds no lock (this context exists only there, and takes this
        // lock only through `&mut self`), so the order is respected; `handle` lives until the
        // release below.
        unsafe { stor::StorPortAcquireSpinLock(raw, stor::StartIoLock, core::ptr::null_mut(), &raw mut handle) };
        // SAFETY: the StartIo lock is held; every other holder of the state (HwStorStartIo,
        // HwStorResetBus, HwStorTimer) runs under the same lock.
        let state = unsafe { self.extension.start_io() };
        let result = f(state, &mut StartIoLockedCtx::new(self.extension));
        // SAFETY: releases the lock acquired above with its handle; `state` is no longer used.
        unsafe { stor::StorPortReleaseSpinLock(raw, &raw mut handle) };
        result
    }
}

/// Proof that `HwStorBuildIo` completed its request: the only way to return FALSE from it
/// ([`BuildIo::Completed`]), since Storport then will not call `HwStorStartIo` and the miniport
/// must complete the request itself (`DDI-storport:nc-storport-hw_buildio`,
/// `DT:storport-storportbuildio`). Only [`BuildIoCtx::complete`] makes one, for the routine
/// call it belongs to.
#[derive(Debug)]
#[must_use]
pub struct RequestCompleted<'a>(PhantomData<fn(&'a ()) -> &'a ()>);

/// What `HwStorBuildIo` decided.
#[derive(Debug)]
#[must_use]
pub enum BuildIo<'a, M> {
    /// Return TRUE: Storport passes the request to `HwStorStartIo` when the LU is ready.
    StartIo(Srb<M>),
    /// Return FALSE: the request was completed here.
    Completed(RequestCompleted<'a>),
}

context!(
    /// `HwStorBuildIo` (`DDI-storport:nc-storport-hw_buildio`): `DISPATCH_LEVEL`, no lock held,
    /// possibly on several processors at once and concurrently with `HwStorStartIo`, the ISR and
    /// the DPC. It "should access no data other than that in the SRB and the SRB extension"
    /// (`KG:unsynchronized-hwstorbuildio-routine`): so it gets the request, the shared read-only
    /// part of the device extension and nothing that reaches the hardware or lock-owned state.
    /// Its one notification is completing the request it was given, which makes it return FALSE.
    BuildIoCtx: Stall
);

impl<'a, M: Miniport> BuildIoCtx<'a, M> {
    /// `RequestComplete` for the request `HwStorBuildIo` was given, with the proof it needs to
    /// return FALSE.
    pub fn complete(&mut self, mut srb: Srb<M>, status: SrbStatus) -> RequestCompleted<'a> {
        srb.set_status(status);
        // SAFETY: `srb` is the request Storport passed to this HwStorBuildIo; after this call
        // the port owns it again and the handle no longer exists.
        unsafe { stor::StorPortNotification(stor::RequestComplete, self.extension.as_raw(), srb.into_raw()) };
        RequestCompleted(PhantomData)
    }
}

/// Proof that `HwStorFindAdapter` set `MaximumTransferLength` and `NumberOfPhysicalBreaks`,
/// which it must (`DDI-storport:nc-storport-hw_find_adapter`; Static Driver Verifier's
/// `StorPortFindAdapter` rule, `DT:storport-storportfindadapter`): the routine cannot succeed
/// without it, and the uncached extension, which depends on them
/// (`DDI-storport:nf-storport-storportgetuncachedextension`), cannot be requested before.
#[derive(Debug)]
pub struct TransferLimits<'a> {
    maximum_transfer_length: u32,
    physical_breaks: u32,
    _call: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl TransferLimits<'_> {
    /// `MaximumTransferLength` as set.
    #[must_use]
    pub fn maximum_transfer_length(&self) -> u32 {
        self.maximum_transfer_length
    }

    /// `NumberOfPhysicalBreaks` as set.
    #[must_use]
    pub fn physical_breaks(&self) -> u32 {
        self.physical_breaks
    }
}

/// `HwStorFindAdapter` (`DDI-storport:nc-storport-hw_find_adapter`): the only routine that may
/// map registers and get the uncached extension (`DT:dv-storport-verification`), and the one
/// that fills in the configuration.
pub struct FindAdapterCtx<'a, M: Miniport> {
    extension: &'a Extension<M>,
    config: &'a mut stor::PORT_CONFIGURATION_INFORMATION,
    argument: Option<&'a [u8]>,
    _processor: PhantomData<*const ()>,
}

impl<M: Miniport> sealed::Sealed<M> for FindAdapterCtx<'_, M> {
    fn extension(&self) -> &Extension<M> {
        self.extension
    }
}

impl<M: Miniport> Port<M> for FindAdapterCtx<'_, M> {}
impl<M: Miniport> Stall<M> for FindAdapterCtx<'_, M> {}

impl<'a, M: Miniport> FindAdapterCtx<'a, M> {
    pub(crate) fn new(
        extension: &'a Extension<M>,
        config: &'a mut stor::PORT_CONFIGURATION_INFORMATION,
        argument: Option<&'a [u8]>,
    ) -> Self {
        Self { extension, config, argument, _processor: PhantomData }
    }

    /// The HBA's configuration, to read resources and fill in capabilities.
    pub fn config(&mut self) -> ConfigInfo<'_> {
        ConfigInfo::new(self.config)
    }

    /// `ArgumentString`, without its terminating NUL.
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

    /// Sets `MaximumTransferLength` (bytes per request) and `NumberOfPhysicalBreaks` (the most
    /// physical pages, that is scatter/gather elements, per request; Storport miniports must
    /// manage at least 16, `KG:requirements-for-using-storport-with-an-adapter`) and returns
    /// the proof `HwStorFindAdapter` needs to succeed.
    pub fn set_transfer_limits(&mut self, maximum_transfer_length: u32, physical_breaks: u32) -> TransferLimits<'a> {
        ConfigInfo::new(self.config).set_transfer_limits(maximum_transfer_length, physical_breaks);
        TransferLimits { maximum_transfer_length, physical_breaks, _call: PhantomData }
    }

    /// `StorPortGetDeviceBase` for one of the ranges Storport assigned: maps it and returns the
    /// accessor for it, or `None` if Storport refuses. Only assigned ranges can be passed
    /// (an [`AccessRange`] comes only from [`ConfigInfo::access_ranges`]), which Storport
    /// Verification checks (`DDI-storport:nf-storport-storportgetdevicebase`,
    /// `DT:dv-storport-verification`). There is no unmapping: Storport releases the adapter's
    /// resources itself (`DDI-storport:ne-storport-scsi_adapter_control_type`, `ScsiStopAdapter`).
    pub fn map_registers(&mut self, range: &AccessRange) -> Option<Registers> {
        let address = sys::LARGE_INTEGER { QuadPart: range.start().cast_signed() };
        let in_io_space = if range.in_memory() { FALSE } else { TRUE };
        let raw = self.extension.as_raw();
        // SAFETY: the interface type and bus number are Storport's own; the range comes from
        // Storport's ConfigInfo; no pointer is passed but the extension.
        let base = unsafe {
            stor::StorPortGetDeviceBase(
                raw,
                self.config.AdapterInterfaceType,
                self.config.SystemIoBusNumber,
                address,
                range.length(),
                in_io_space,
            )
        };
        let base = NonNull::new(base.cast::<u8>())?;
        let space = if range.in_memory() { Space::Memory } else { Space::Io };
        // SAFETY: `base` is what StorPortGetDeviceBase returned for `range.length()` bytes.
        Some(unsafe { Registers::new(raw, base, range.length(), space) })
    }

    /// `StorPortGetUncachedExtension`: the HBA's common buffer, physically contiguous and shared
    /// with the device. Only here, only once the transfer limits it depends on are set (the
    /// `limits` proof; bus mastering and the SRB extension size are the wrapper's, already
    /// final). Storport keeps the buffer across Plug and Play restarts and returns the same one
    /// to a later `HwStorFindAdapter`, so a later call can never get a longer view of it than
    /// the first allocated. `None` when Storport fails, the buffer is not contiguous, or `len`
    /// is 0 or longer than the buffer already allocated.
    pub fn uncached_extension(&mut self, limits: &TransferLimits<'a>, len: u32) -> Option<CommonBuffer> {
        let _ = limits;
        if len == 0 {
            return None;
        }
        let raw = self.extension.as_raw();
        // SAFETY: called from HwStorFindAdapter with Storport's own ConfigInfo.
        let va = unsafe { stor::StorPortGetUncachedExtension(raw, &raw mut *self.config, len) };
        let va = NonNull::new(va.cast::<u8>())?;
        // SAFETY: this is HwStorFindAdapter, the only user of the record; no other reference.
        let record = unsafe { self.extension.uncached() };
        if record.va == 0 {
            record.va = va.as_ptr() as usize;
            record.len = len;
        } else if record.va != va.as_ptr() as usize || len > record.len {
            return None;
        }
        let mut contiguous: u32 = 0;
        // SAFETY: an address in the uncached extension is passed with a NULL Srb
        // (`DDI-storport:nf-storport-storportgetphysicaladdress`).
        let pa = unsafe { stor::StorPortGetPhysicalAddress(raw, core::ptr::null_mut(), va.as_ptr().cast(), &raw mut contiguous) };
        if pa.QuadPart == 0 || contiguous < len {
            return None;
        }
        // SAFETY: Storport returned at least `len` bytes of common buffer at `va` (the first
        // allocation was `record.len >= len`), physically contiguous from `pa` (checked above),
        // valid until the adapter is removed.
        Some(unsafe { CommonBuffer::new(va, pa.QuadPart.cast_unsigned(), len) })
    }
}
