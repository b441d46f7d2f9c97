//! The port's spin locks: the interrupt lock of every adapter, Storport's `StartIo` lock and the
//! lock of each `STOR_DPC`.
//!
//! A lock here is taken either around a miniport routine (a guard, dropped when the routine
//! returns) or by the miniport itself through `StorPortAcquireSpinLock` and given back by a later,
//! separate `StorPortReleaseSpinLock` call, so it cannot be a `MutexGuard` held across the two.
//! It is a three-state lock word (free, held, held with waiters) with a mutex and condition
//! variable for the waiters only: taking and releasing a free lock are one atomic operation each,
//! as a spin lock's are, and a waiter sleeps instead of spinning on the shared cores.

use std::sync::atomic::{AtomicU32, Ordering};
use parking_lot::{Condvar, Mutex};

const FREE: u32 = 0;
const HELD: u32 = 1;
const CONTENDED: u32 = 2;

/// A lock that can be taken in one call and released in another.
#[derive(Default)]
pub(crate) struct PortLock {
    state: AtomicU32,
    waiters: Mutex<()>,
    wake: Condvar,
}

impl PortLock {
    /// Takes the lock, sleeping while another holder has it.
    pub(crate) fn acquire(&self) {
        if self.state.compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        let mut g = self.waiters.lock();
        // Marking the word contended before sleeping makes the holder's release wake us; the
        // mutex makes that wake-up come after we are waiting.
        while self.state.swap(CONTENDED, Ordering::Acquire) != FREE {
            self.wake.wait(&mut g);
        }
    }

    /// Releases the lock taken by [`Self::acquire`].
    pub(crate) fn release(&self) {
        if self.state.swap(FREE, Ordering::Release) == CONTENDED {
            let _g = self.waiters.lock();
            self.wake.notify_all();
        }
    }

    /// Takes the lock until the guard is dropped.
    pub(crate) fn lock(&self) -> PortLockGuard<'_> {
        self.acquire();
        PortLockGuard(self)
    }
}

/// The lock, held until dropped.
pub(crate) struct PortLockGuard<'a>(&'a PortLock);

impl Drop for PortLockGuard<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn excludes_across_threads_and_across_calls() {
        let lock = Arc::new(PortLock::default());
        let counter = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (lock, counter) = (Arc::clone(&lock), Arc::clone(&counter));
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        lock.acquire();
                        // A non-atomic read-modify-write: lost updates if two threads were inside.
                        let v = counter.load(Ordering::Relaxed);
                        std::hint::spin_loop();
                        counter.store(v + 1, Ordering::Relaxed);
                        lock.release();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), 8000);
        // Free again: a guard takes it at once.
        drop(lock.lock());
        assert_eq!(lock.state.load(Ordering::Relaxed), FREE);
    }
}
