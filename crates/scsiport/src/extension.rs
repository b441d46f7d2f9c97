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
//! interrupt lock: the ISR answers "not mine" (the lock can only be held by the enable callback,
//! during which the miniport has masked its HBA), `HwScsiStartIo` completes the request with
//! `SRB_STATUS_BUSY` (the port retries it), and `HwScsiTimer` re-arms itself.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::Miniport;

/// What `DeviceExtensionSize` covers.
#[repr(C)]
pub(crate) struct Extension<M> {
    locked: AtomicBool,
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

    /// Takes the lock if it is free.
    pub(crate) fn try_lock(&self) -> Option<Guard<'_, M>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(Guard { ext: self })
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

impl<M> Drop for Guard<'_, M> {
    fn drop(&mut self) {
        self.ext.locked.store(false, Ordering::Release);
    }
}
