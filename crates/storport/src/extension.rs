//! The device extension as the wrapper lays it out: Storport's DPC object and the wrapper's
//! bookkeeping, then the miniport's state, one cell per lock that owns a part of it.
//!
//! | Cell | Owned by | Reached from |
//! | --- | --- | --- |
//! | `miniport: M` | nobody: written only in `HwStorFindAdapter`, read (`&M`, `M: Sync`) everywhere else | every routine |
//! | `start_io: M::StartIoState` | the StartIo lock | `HwStorStartIo`, `HwStorResetBus`, `HwStorTimer` (Storport holds the lock), the DPC inside `StorPortAcquireSpinLock(StartIoLock)` |
//! | `interrupt: M::InterruptState` | the interrupt lock | `HwStorInterrupt`, `HwStorInitialize`, `ScsiStopAdapter`/`ScsiRestartAdapter` (Storport holds the lock), `StorPortSynchronizeAccess` callbacks |
//! | `dpc_state: M::DpcState` | the DPC | `HwStorDpcRoutine`, guarded by `dpc_running` |
//!
//! Which lock Storport holds around which routine is its table in
//! `DDI-storport:nf-storport-storportacquirespinlock` (full-duplex rows), with
//! `DDI-storport:nc-storport-hw_adapter_control` for the two control types.
//! `HwStorFindAdapter` has all of it: Storport calls it before anything else of the adapter
//! and, on a later Plug and Play start, only with the adapter stopped
//! (`DDI-storport:nc-storport-hw_find_adapter`).

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use scsiport_sys::storport as sys;

use crate::Miniport;

/// What `StorPortGetUncachedExtension` returned, so that a later `HwStorFindAdapter` (Storport
/// keeps the device extension and returns the same buffer, `DDI-storport:nf-storport-storportgetuncachedextension`)
/// never gets a longer view of it than was allocated. Touched only in `HwStorFindAdapter`.
#[derive(Default)]
pub(crate) struct UncachedRecord {
    pub(crate) va: usize,
    pub(crate) len: u32,
}

/// What `DeviceExtensionSize` covers. Public only so the sealed context trait can name it; the
/// module is private, so no other crate can.
#[repr(C)]
pub struct Extension<M: Miniport> {
    /// Storport's DPC object: written by Storport (`StorPortInitializeDpc`, `KeInsertQueueDpc`),
    /// never read or referenced by Rust code.
    dpc: UnsafeCell<sys::STOR_DPC>,
    /// Set once `StorPortInitializeDpc` has run (in `HwStorPassiveInitializeRoutine`); before
    /// that the DPC object is zeros and must not be queued.
    dpc_ready: AtomicBool,
    /// A DPC was asked for before `dpc_ready`; `HwStorPassiveInitializeRoutine` issues it.
    dpc_pending: AtomicBool,
    /// Held while `HwStorDpcRoutine` has `&mut M::DpcState`.
    dpc_running: AtomicBool,
    uncached: UnsafeCell<UncachedRecord>,
    miniport: UnsafeCell<M>,
    start_io: UnsafeCell<M::StartIoState>,
    interrupt: UnsafeCell<M::InterruptState>,
    dpc_state: UnsafeCell<M::DpcState>,
}

// SAFETY: the cells are reached only as the module documentation says, each under the lock that
// owns it (`M::StartIoState`, `M::InterruptState`, `M::DpcState: Send`), or shared (`M: Sync`).
unsafe impl<M: Miniport> Sync for Extension<M> {}

impl<M: Miniport> Extension<M> {
    /// The size Storport must allocate; checked at compile time to fit a `ULONG`.
    pub(crate) const SIZE: u32 = {
        let size = core::mem::size_of::<Self>();
        assert!(size <= u32::MAX as usize, "device extension too large");
        // Pool allocations are 16-byte aligned on x64; a stricter type could be misplaced.
        assert!(core::mem::align_of::<Self>() <= 16, "device extension alignment above 16");
        #[allow(clippy::cast_possible_truncation)]
        {
            size as u32
        }
    };

    /// Reinterprets the port's device extension pointer.
    ///
    /// # Safety
    /// `raw` must be the device extension Storport allocated for this miniport (zero-filled when
    /// first allocated, `SIZE` bytes, suitably aligned), valid for the rest of the adapter's life.
    pub(crate) unsafe fn from_raw<'a>(raw: *mut c_void) -> Option<&'a Self> {
        // SAFETY: per the caller; only a shared reference is created, and every field is a cell
        // or an atomic. The types are `Zeroable`, so the zero-filled bytes are a valid `Self`.
        unsafe { raw.cast::<Self>().as_ref() }
    }

    /// The pointer Storport knows the extension by.
    pub(crate) fn as_raw(&self) -> *mut c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The shared part.
    ///
    /// # Safety
    /// No `&mut M` may exist: call outside `HwStorFindAdapter` only.
    pub(crate) unsafe fn miniport(&self) -> &M {
        // SAFETY: per the caller, nobody writes the cell meanwhile.
        unsafe { &*self.miniport.get() }
    }

    /// Everything, for `HwStorFindAdapter`.
    ///
    /// # Safety
    /// Call only from `HwStorFindAdapter`, when no other routine of the adapter runs.
    #[allow(clippy::mut_from_ref)] // the cells are the point
    pub(crate) unsafe fn all(&self) -> (&mut M, &mut M::StartIoState, &mut M::InterruptState, &mut M::DpcState) {
        // SAFETY: per the caller, these are the only references to the four cells.
        let miniport = unsafe { &mut *self.miniport.get() };
        // SAFETY: as above.
        let start_io = unsafe { &mut *self.start_io.get() };
        // SAFETY: as above.
        let interrupt = unsafe { &mut *self.interrupt.get() };
        // SAFETY: as above.
        let dpc = unsafe { &mut *self.dpc_state.get() };
        (miniport, start_io, interrupt, dpc)
    }

    /// The state the StartIo lock owns.
    ///
    /// # Safety
    /// The StartIo lock must be held (by Storport around the routine, or by the caller through
    /// `StorPortAcquireSpinLock`), and no other reference to the state may exist.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn start_io(&self) -> &mut M::StartIoState {
        // SAFETY: per the caller, the lock makes this the only reference.
        unsafe { &mut *self.start_io.get() }
    }

    /// The state the interrupt lock owns.
    ///
    /// # Safety
    /// The interrupt lock must be held, and no other reference to the state may exist.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn interrupt(&self) -> &mut M::InterruptState {
        // SAFETY: per the caller, the lock makes this the only reference.
        unsafe { &mut *self.interrupt.get() }
    }

    /// `HwStorFindAdapter`'s record of the uncached extension.
    ///
    /// # Safety
    /// Call only from `HwStorFindAdapter`, and hold no other reference to the record.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn uncached(&self) -> &mut UncachedRecord {
        // SAFETY: per the caller.
        unsafe { &mut *self.uncached.get() }
    }

    /// The DPC object, for `StorPortInitializeDpc` / `StorPortIssueDpc`.
    pub(crate) fn dpc_object(&self) -> *mut sys::STOR_DPC {
        self.dpc.get()
    }

    /// Forgets the DPC object until `StorPortInitializeDpc` runs again: called as
    /// `HwStorInitialize` starts, which on a Plug and Play restart is followed by the passive
    /// routine re-initialising the object, which must not be queued meanwhile.
    pub(crate) fn dpc_reinitializing(&self) {
        self.dpc_ready.store(false, Ordering::SeqCst);
    }

    /// Records that `StorPortInitializeDpc` ran, and issues the DPC if an interrupt asked for
    /// it before (`HwStorInitialize` runs, and interrupts may arrive, before
    /// `HwStorPassiveInitializeRoutine`, `DDI-storport:nc-storport-hw_initialize`).
    pub(crate) fn dpc_initialized(&self) {
        self.dpc_ready.store(true, Ordering::SeqCst);
        if self.dpc_pending.swap(false, Ordering::SeqCst) {
            self.queue_dpc();
        }
    }

    /// `StorPortIssueDpc`, or a note to issue it once the DPC object is initialised. Returns
    /// whether the DPC is queued or will be; `false` only if Storport refused it.
    pub(crate) fn issue_dpc(&self) -> bool {
        if self.dpc_ready.load(Ordering::SeqCst) {
            return self.queue_dpc();
        }
        self.dpc_pending.store(true, Ordering::SeqCst);
        // Initialised meanwhile: whoever takes the note back issues the DPC (issuing twice is
        // harmless: a queued DPC is not queued again, `DDI-storport:nf-storport-storportissuedpc`).
        if self.dpc_ready.load(Ordering::SeqCst) && self.dpc_pending.swap(false, Ordering::SeqCst) {
            return self.queue_dpc();
        }
        true
    }

    /// Takes the DPC state for `HwStorFindAdapter`, waiting (it runs at `PASSIVE_LEVEL`) while
    /// an instance of the DPC routine has it. Storport stops an adapter with no request
    /// outstanding (`DDI-storport:ne-storport-scsi_adapter_control_type`), but the DPC that
    /// completed the last ones may still be finishing on another processor, and a Plug and Play
    /// start calls `HwStorFindAdapter` without a lock (`DDI-storport:nc-storport-hw_find_adapter`),
    /// which then writes everything the DPC is using. While the guard is held, a DPC that starts
    /// queues itself again ([`Self::try_dpc_state`]) and runs on the state found afresh.
    pub(crate) fn exclude_dpc(&self) -> DpcStateGuard<'_, M> {
        loop {
            if let Some(guard) = self.try_dpc_state() {
                return guard;
            }
            core::hint::spin_loop();
        }
    }

    /// (`dpc_ready`, `dpc_pending`), for the tests.
    #[cfg(test)]
    pub(crate) fn dpc_flags(&self) -> (bool, bool) {
        (self.dpc_ready.load(Ordering::SeqCst), self.dpc_pending.load(Ordering::SeqCst))
    }

    fn queue_dpc(&self) -> bool {
        // SAFETY: the DPC object was initialised by StorPortInitializeDpc (`dpc_ready`) for this
        // extension; no system arguments are passed.
        let queued = unsafe {
            sys::StorPortIssueDpc(self.as_raw(), self.dpc_object(), core::ptr::null_mut(), core::ptr::null_mut())
        };
        queued != scsiport_sys::FALSE
    }

    /// Takes the DPC state, unless another instance of the DPC routine has it. Storport
    /// guarantees a DPC routine is "synchronized with other instances" of itself
    /// (`DDI-storport:nc-storport-hw_dpc_routine`), so this never fails when the port keeps
    /// its word; if it does not, the loser re-queues the DPC rather than wait, so that no
    /// `&mut` is ever made twice and no work is lost.
    pub(crate) fn try_dpc_state(&self) -> Option<DpcStateGuard<'_, M>> {
        // Built only on success (`then`, not `then_some`): a guard made for a failed attempt
        // would, when dropped, release the flag its holder still has.
        self.dpc_running
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then(|| DpcStateGuard { extension: self })
    }
}

/// Exclusive access to the DPC state while held.
pub(crate) struct DpcStateGuard<'a, M: Miniport> {
    extension: &'a Extension<M>,
}

impl<M: Miniport> DpcStateGuard<'_, M> {
    /// The DPC state.
    pub(crate) fn state(&mut self) -> &mut M::DpcState {
        // SAFETY: `dpc_running` is held, so no other reference to the cell's contents exists;
        // the `&mut` borrows the guard, so it cannot outlive it.
        unsafe { &mut *self.extension.dpc_state.get() }
    }
}

impl<M: Miniport> Drop for DpcStateGuard<'_, M> {
    fn drop(&mut self) {
        self.extension.dpc_running.store(false, Ordering::Release);
    }
}
