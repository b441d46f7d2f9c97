//! A mutex whose owning thread may take it again, for the state the deterministic schedule looks
//! at many times per request: each adapter's state (`port::AdapterSt`), the interrupt-latency
//! table and the PVSCSI model's state.
//!
//! The port looks at an adapter's state many times per request: the step's scan, the register
//! decode, `ScsiPortGetPhysicalAddress`, `NextLuRequest`, the completion, each in its own short
//! critical section, because the miniport routine it calls in between may call back into the
//! port. Each look at a plain mutex is two locked instructions, each a full barrier (the bench's
//! `locked` figure). The deterministic schedule runs its steps on one thread, so
//! `Machine::run_until` holds these locks across its steps ([`HeldAll`], [`StateLock::hold`])
//! and every look inside is a nested acquisition by the owning thread: a relaxed load of the
//! owner and a flag, no barrier.
//!
//! A look still hands out the state to one guard at a time. A second guard on the thread that
//! has one out would be a second `&mut` to the same state; with a plain mutex it was a deadlock,
//! here it is a reported bug ([`StateLock::lock`]). Other threads wait for the whole hold, as
//! they waited for each look before.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RawMutex;
use parking_lot::lock_api::RawMutex as _;

/// This thread's identity: the address of a thread-local, unique among live threads and never 0.
/// (`const`-initialised, so reading it is an address computation, not a lazy initialisation.)
#[inline]
fn this_thread() -> usize {
    thread_local!(static KEY: u8 = const { 0 });
    KEY.with(|k| std::ptr::from_ref(k) as usize)
}

/// A mutex over `T` whose owning thread may take it again (see the module).
pub(crate) struct StateLock<T> {
    mutex: RawMutex,
    /// The thread that holds `mutex` ([`this_thread`]), 0 when none. Only that thread stores its
    /// own identity here, so a thread that reads it back holds the mutex (a relaxed load is
    /// enough: another thread's value is never this one's).
    owner: AtomicUsize,
    /// The owner's holds ([`HeldAll`]; steps nest). Reached only by the owner.
    holds: Cell<usize>,
    /// Whether a [`StateGuard`] is out. Reached only by the owner.
    lent: Cell<bool>,
    data: UnsafeCell<T>,
}

// SAFETY: `data`, `holds` and `lent` are reached only by the thread that holds `mutex` (every
// accessor takes it first, or finds it already this thread's), so sharing the lock between
// threads shares `T` the way a `Mutex<T>` does.
unsafe impl<T: Send> Sync for StateLock<T> {}

impl<T> StateLock<T> {
    pub(crate) fn new(v: T) -> Self {
        Self { mutex: RawMutex::INIT, owner: AtomicUsize::new(0), holds: Cell::new(0), lent: Cell::new(false), data: UnsafeCell::new(v) }
    }

    /// Makes this thread (`me`) the owner, taking the mutex unless it is this thread's already.
    #[inline]
    fn own(&self, me: usize) {
        if self.owner.load(Ordering::Relaxed) != me {
            self.mutex.lock();
            self.owner.store(me, Ordering::Relaxed);
        }
    }

    /// Releases the mutex once this thread, the owner, has neither a hold nor a guard left.
    #[inline]
    fn disown_if_unused(&self) {
        if self.holds.get() == 0 && !self.lent.get() {
            self.owner.store(0, Ordering::Relaxed);
            // SAFETY: this thread owns the mutex (taken in `own`; only the owner gets here).
            unsafe { self.mutex.unlock() };
        }
    }

    /// The state, waiting while another thread has it.
    ///
    /// # Panics
    /// When this thread already has a guard out: the port locking the same state twice, a bug
    /// (a deadlock with a plain mutex).
    #[inline]
    pub(crate) fn lock(&self) -> StateGuard<'_, T> {
        self.own(this_thread());
        assert!(!self.lent.replace(true), "a StateLock's state locked twice by one thread (a second guard)");
        StateGuard { lock: self, _thread: PhantomData }
    }

    /// Holds the lock for this thread until [`Self::release`] (what [`HeldAll`] does, for a
    /// caller that cannot keep a borrow: `Hba::hold`). Holds nest.
    pub(crate) fn hold(&self) {
        self.own(this_thread());
        self.holds.set(self.holds.get() + 1);
    }

    /// Ends this thread's latest [`Self::hold`]; nothing if this thread does not own the lock.
    pub(crate) fn release(&self) {
        if self.owner.load(Ordering::Relaxed) == this_thread() && self.holds.get() > 0 {
            self.holds.set(self.holds.get() - 1);
            self.disown_if_unused();
        }
    }

    /// Whether this thread holds the lock ([`HeldAll`]), not only a guard.
    #[inline]
    pub(crate) fn held_here(&self) -> bool {
        // `holds` is read only once the owner is known to be this thread.
        self.owner.load(Ordering::Relaxed) == this_thread() && self.holds.get() > 0
    }

    /// The state if no other thread has it and this one has no guard out.
    pub(crate) fn try_lock(&self) -> Option<StateGuard<'_, T>> {
        let me = this_thread();
        if self.owner.load(Ordering::Relaxed) != me {
            if !self.mutex.try_lock() {
                return None;
            }
            self.owner.store(me, Ordering::Relaxed);
        } else if self.lent.get() {
            return None;
        }
        self.lent.set(true);
        Some(StateGuard { lock: self, _thread: PhantomData })
    }
}

impl<T> AsRef<StateLock<T>> for StateLock<T> {
    fn as_ref(&self) -> &StateLock<T> {
        self
    }
}

/// Every lock of a slice held ([`StateLock::hold`]), taken in the slice's order, until dropped.
/// Without a guard: this thread's [`StateLock::lock`]s meanwhile are nested and cost no barrier.
pub(crate) struct HeldAll<'a, T, L: AsRef<StateLock<T>>> {
    locks: &'a [L],
    /// As [`StateGuard`]'s.
    _thread: PhantomData<(*const (), T)>,
}

impl<'a, T, L: AsRef<StateLock<T>>> HeldAll<'a, T, L> {
    pub(crate) fn new(locks: &'a [L]) -> Self {
        for l in locks {
            l.as_ref().hold();
        }
        Self { locks, _thread: PhantomData }
    }
}

impl<T, L: AsRef<StateLock<T>>> Drop for HeldAll<'_, T, L> {
    fn drop(&mut self) {
        for l in self.locks.iter().rev() {
            l.as_ref().release();
        }
    }
}

/// The state, lent by [`StateLock::lock`].
pub(crate) struct StateGuard<'a, T> {
    lock: &'a StateLock<T>,
    /// Released by the thread that took it: not `Send`.
    _thread: PhantomData<*const ()>,
}

impl<T> Deref for StateGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this thread owns the lock and this is the one guard it has out.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for StateGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for StateGuard<'_, T> {
    fn drop(&mut self) {
        // This thread's (guards are not `Send`), so it owns the lock.
        self.lock.lent.set(false);
        self.lock.disown_if_unused();
    }
}

#[cfg(test)]
mod tests {
    use super::{HeldAll, StateLock};
    use std::sync::Arc;

    /// Whether another thread could take the lock now.
    fn free_for_others(l: &Arc<StateLock<u32>>) -> bool {
        let l = Arc::clone(l);
        std::thread::spawn(move || l.try_lock().is_some()).join().unwrap()
    }

    #[test]
    fn a_hold_keeps_other_threads_out_across_the_looks_inside_it() {
        let locks = [Arc::new(StateLock::new(0u32)), Arc::new(StateLock::new(0u32))];
        assert!(!locks[0].held_here());
        let held = HeldAll::new(&locks);
        assert!(locks.iter().all(|l| l.held_here()));
        for l in &locks {
            *l.lock() += 1;
            // The look ended, the hold did not: a plain mutex would be free again here.
            assert!(!free_for_others(l));
        }
        {
            // Steps nest: an inner hold ends without ending the outer one.
            let _inner = HeldAll::new(&locks);
            *locks[0].lock() += 1;
        }
        assert!(!free_for_others(&locks[0]));
        drop(held);
        assert!(!locks[0].held_here());
        assert!(locks.iter().all(free_for_others));
        assert_eq!((*locks[0].lock(), *locks[1].lock()), (2, 1));
    }

    #[test]
    fn a_look_outside_a_hold_is_a_plain_mutex() {
        let l = Arc::new(StateLock::new(7u32));
        let g = l.lock();
        assert!(!l.held_here(), "a guard is not a hold");
        assert!(!free_for_others(&l));
        drop(g);
        assert!(free_for_others(&l));
        let other = Arc::clone(&l);
        let g = l.lock();
        let t = std::thread::spawn(move || *other.lock() += 1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(*g, 7, "the other thread waits for the guard");
        drop(g);
        t.join().unwrap();
        assert_eq!(*l.lock(), 8);
    }

    #[test]
    fn a_second_guard_on_one_thread_is_refused_not_aliased() {
        let l = Arc::new(StateLock::new(0u32));
        let locks = [Arc::clone(&l)];
        let held = HeldAll::new(&locks);
        {
            let _g = l.lock();
            assert!(l.try_lock().is_none(), "a guard is out");
            let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(l.lock())));
            assert!(twice.is_err(), "a second guard is a reported bug");
        }
        assert!(l.try_lock().is_some(), "inside the hold, with no guard out");
        drop(held);
        assert!(free_for_others(&l), "nothing stays taken after the refused guard");
    }
}
