//! The device extension as the wrapper lays it out: a small lock, then the miniport's own type.
//!
//! SCSI Port serialises nearly every miniport routine with the interrupt spin lock, but the
//! documentation leaves one window open: whether `HwScsiStartIo` or `HwScsiTimer` can run on
//! another processor while `HwScsiEnableInterruptsCallback` runs at `DISPATCH_LEVEL` outside that
//! lock (contract §4.3, "[NOT DOCUMENTED]"). Handing out `&mut` to the miniport in both at once
//! would be undefined behaviour in Rust. So every trampoline takes this lock before it creates
//! the `&mut`; it is never contended when the port behaves as documented, so its cost is one
//! uncontended atomic exchange per routine.
//!
//! Contention is handled without waiting wherever waiting could deadlock against the port's own
//! interrupt lock (the routines below hold it, and the enable callback may need it for its
//! notifications): the ISR answers "not mine" (the lock can only be held by the enable
//! callback, during which the miniport has masked its HBA), and `HwScsiTimer` re-arms itself.
//! `HwScsiStartIo` treats each request the way the port will treat its status: SCSI Port
//! requeues an `SRB_FUNCTION_EXECUTE_SCSI` request completed with `SRB_STATUS_BUSY`
//! (`KG:return-from-hwscsistartio`), so that one is answered BUSY; it does not retry any other
//! function, and an abort or a bus reset answered BUSY would simply not be done. Those are
//! parked here instead, and whoever holds the lock starts them as it lets go
//! ([`crate::miniport`]'s `run_parked`).
//!
//! `HwScsiResetBus` and `HwScsiAdapterControl` do wait for the lock. A bus reset cannot be
//! answered busy, and its outstanding requests are to be completed before the routine returns
//! (`REF:HwScsiResetBus`); adapter control is not documented to hold the interrupt lock at all
//! (contract §3.7), and then waiting cannot deadlock. The one case left open: SCSI Port calling
//! `HwScsiResetBus` on one processor while the enable callback runs on another, with a
//! notification of that callback needing the interrupt lock the reset's caller holds. The
//! documentation says neither (§4.3), the emulator does not do it, and if it ever proves real the
//! way out is the one `HwScsiStartIo` takes: the reset parked for the lock's holder to run as it
//! lets go, within the port's reset hold.
//!
//! That hand-over is the store-buffering pattern: `HwScsiStartIo` parks (a store) and then tries
//! the lock (a load); the holder lets go (a store) and then looks for parked requests (a load).
//! With acquire and release alone both loads may miss the other side's store, each leaving the
//! request to the other, and it would never start (on x86-64 a plain store may pass a later
//! load). So every operation of the hand-over is sequentially consistent: in their single total
//! order either the holder's look comes after the park, or its letting go comes before the
//! parker's attempt at the lock. On x86-64 that costs no instruction: the letting go is an `xchg`
//! instead of a `mov`, the loads are plain loads.
//!
//! Whether anything is parked is one flag beside the lock, so that the holder looks at one byte
//! as it lets go, not at every slot. A parker sets it after filling a slot; a holder clears it
//! before it empties the slots, so that a request parked meanwhile sets it again and is seen on
//! the holder's next look.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use core::sync::atomic::Ordering::SeqCst;

use scsiport_sys::SCSI_REQUEST_BLOCK;

use crate::Miniport;

/// Requests `HwScsiStartIo` can park while the lock is held. The port calls `HwScsiStartIo`
/// again only after the miniport signals readiness, and a parked request has not done so: every
/// request parked during one enable callback but the first needs a `NextRequest` from that
/// callback (or from an `EXECUTE_SCSI` request answered BUSY in between), so a few slots cover any
/// miniport that signals readiness once per callback, as Microsoft's steps have it
/// (`KG:scsi-miniport-driver-s-hwscsienableinterruptscallback-routine`).
const PARKED: usize = 4;

/// What `DeviceExtensionSize` covers.
#[repr(C)]
pub(crate) struct Extension<M> {
    locked: AtomicBool,
    /// Set when a request is parked, cleared by the lock holder before it takes the parked
    /// requests out ([`Self::take_parked_mark`]).
    parked_mark: AtomicBool,
    /// Requests `HwScsiStartIo` received while the lock was held; null when free.
    parked: [AtomicPtr<SCSI_REQUEST_BLOCK>; PARKED],
    miniport: UnsafeCell<M>,
}

impl<M: Miniport> Extension<M> {
    /// The size SCSI Port must allocate; checked at compile time to fit a `ULONG`.
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
    /// `raw` must be the device extension SCSI Port allocated for this miniport (zero-filled,
    /// `SIZE` bytes, suitably aligned), valid for the rest of the adapter's life.
    pub(crate) unsafe fn from_raw<'a>(raw: *mut c_void) -> Option<&'a Self> {
        if raw.is_null() {
            return None;
        }
        // SAFETY: per the caller; only a shared reference is created here, and the lock field
        // is an atomic. `M: Zeroable`, so the zero-filled bytes are a valid `Self`.
        Some(unsafe { &*raw.cast::<Self>() })
    }

    /// Parks a request for the lock holder to start, and marks that one is parked. `false` when
    /// every slot is taken.
    pub(crate) fn park(&self, srb: *mut SCSI_REQUEST_BLOCK) -> bool {
        let parked = self.parked.iter().any(|slot| slot.compare_exchange(ptr::null_mut(), srb, SeqCst, SeqCst).is_ok());
        if parked {
            self.parked_mark.store(true, SeqCst);
        }
        parked
    }

    /// Takes one parked request out, if there is one.
    pub(crate) fn unpark(&self) -> Option<*mut SCSI_REQUEST_BLOCK> {
        self.parked.iter().find_map(|slot| {
            let srb = slot.swap(ptr::null_mut(), SeqCst);
            (!srb.is_null()).then_some(srb)
        })
    }

    /// Whether a request was parked since the last [`Self::take_parked_mark`]: one load, made
    /// by every routine that may find one as it lets go of the lock.
    pub(crate) fn has_parked(&self) -> bool {
        self.parked_mark.load(SeqCst)
    }

    /// Clears the mark, before the lock holder takes the parked requests out: a request parked
    /// after this marks again.
    pub(crate) fn take_parked_mark(&self) {
        self.parked_mark.store(false, SeqCst);
    }

    /// Takes the lock if it is free.
    pub(crate) fn try_lock(&self) -> Option<Guard<'_, M>> {
        // The guard is made only once the lock is ours: dropping one releases the lock, so a
        // guard built for a failed attempt (as `bool::then_some` would build it) would free the
        // holder's lock.
        // Sequentially consistent for the hand-over of parked requests (the module's doc); a
        // `lock cmpxchg` either way on x86-64.
        if self.locked.compare_exchange(false, true, SeqCst, SeqCst).is_ok() {
            Some(Guard { ext: self })
        } else {
            None
        }
    }

    /// Takes the lock, spinning while another processor holds it. Used only by routines the
    /// port runs where the lock holder is not waiting on them.
    pub(crate) fn lock(&self) -> Guard<'_, M> {
        loop {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
    }
}

/// Exclusive access to the miniport's state while held.
pub(crate) struct Guard<'a, M> {
    ext: &'a Extension<M>,
}

impl<M> Guard<'_, M> {
    /// The miniport value.
    pub(crate) fn miniport(&mut self) -> &mut M {
        // SAFETY: the lock is held, so no other reference to the cell's contents exists; the
        // memory is the port's device extension, valid and writable for the adapter's life. The
        // `&mut` borrows `self`, so it cannot outlive the guard.
        unsafe { &mut *self.ext.miniport.get() }
    }
}

impl<M> Guard<'_, M> {
    /// Lets go of the lock before a look for parked requests ([`Extension::has_parked`]):
    /// sequentially consistent, so that the store is ordered before that load (the module's
    /// doc); an `xchg` on x86-64.
    pub(crate) fn unlock(self) {
        self.ext.locked.store(false, SeqCst);
        core::mem::forget(self);
    }
}

/// Lets go of the lock in a routine that does not look for parked requests afterwards (the ISR,
/// whose port runs no `HwScsiStartIo` beside it; a request parked meanwhile stays marked for the
/// next routine that looks): a release store, a plain `mov` on x86-64.
impl<M> Drop for Guard<'_, M> {
    fn drop(&mut self) {
        self.ext.locked.store(false, Ordering::Release);
    }
}
