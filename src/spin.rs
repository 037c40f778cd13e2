//! The lock of a wait's slot: a spin lock, for critical sections of a few instructions that run
//! no user code (move an outcome in or out, swap a waker). Its release is a plain store, where
//! a general mutex's is a read-modify-write: a wait takes its slot's lock three times (first
//! poll, fill, poll after the wake), so on the async hand-off that is three atomic
//! read-modify-writes fewer per wait (`benches/compare.rs`, `pingpong-async`:
//! docs/PERFORMANCE.md has the figures).
//!
//! The only `unsafe` in keepwatch is here: the guard's access to the cell, which the lock word
//! makes exclusive (an `Acquire` swap takes it, a `Release` store gives it back). Under
//! `cfg(keepwatch_loom)` the lock is loom's mutex instead, as tokio does for its own spin
//! locks: loom gives a spinning read-modify-write a branch per attempt and cannot bound them,
//! so the models check every use of the lock (who holds it when, what it orders) through the
//! mutex, and the tests below check the spin lock itself.

#![allow(unsafe_code)]

#[cfg(not(keepwatch_loom))]
pub(crate) use imp::SpinLock;

#[cfg(keepwatch_loom)]
pub(crate) use modelled::SpinLock;

#[cfg(not(keepwatch_loom))]
mod imp {
    use std::cell::UnsafeCell;
    use std::ops::{Deref, DerefMut};

    use crate::loom::{spin_loop, yield_now, AtomicBool, Ordering};

    /// How many times a waiting thread re-reads the lock word with a pause hint before it
    /// starts yielding its core to the holder (which may have been preempted).
    const SPINS: u32 = 64;

    /// A spin lock around a `T`. Hold it only for a few instructions and never around user
    /// code.
    pub(crate) struct SpinLock<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: the lock hands out access to `value` to one thread at a time (a guard exists
    // only while its thread holds `locked`: taken with an `Acquire` swap, given back with a
    // `Release` store), so sharing a `SpinLock<T>` between threads only ever moves a `T`
    // between them: `T: Send` is what that needs, as for `std::sync::Mutex`.
    unsafe impl<T: Send> Sync for SpinLock<T> {}
    // SAFETY: as above; sending the lock sends the `T` it owns.
    unsafe impl<T: Send> Send for SpinLock<T> {}

    /// Access to a [`SpinLock`]'s value; released when dropped (also while unwinding).
    pub(crate) struct SpinGuard<'a, T> {
        lock: &'a SpinLock<T>,
    }

    impl<T> SpinLock<T> {
        pub(crate) fn new(value: T) -> Self {
            SpinLock {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }

        /// Takes the lock, spinning (then yielding) while another thread holds it.
        #[inline]
        pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
            if self.locked.swap(true, Ordering::Acquire) {
                self.lock_contended();
            }
            SpinGuard { lock: self }
        }

        /// The slow path: wait for the lock word to read free (loads only, so that waiting
        /// threads do not take the line from the holder), then try again.
        #[cold]
        fn lock_contended(&self) {
            let mut spins = 0;
            loop {
                while self.locked.load(Ordering::Relaxed) {
                    if spins < SPINS {
                        spins += 1;
                        spin_loop();
                    } else {
                        yield_now();
                    }
                }
                if !self.locked.swap(true, Ordering::Acquire) {
                    return;
                }
            }
        }

        /// Runs `f` on the value through the exclusive borrow: no lock needed.
        pub(crate) fn with_mut<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
            f(self.value.get_mut())
        }
    }

    impl<T> Deref for SpinGuard<'_, T> {
        type Target = T;

        #[inline]
        fn deref(&self) -> &T {
            // SAFETY: this guard holds the lock, so no other reference to the value exists;
            // the reference does not outlive the guard.
            unsafe { &*self.lock.value.get() }
        }
    }

    impl<T> DerefMut for SpinGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: this guard holds the lock, so no other reference to the value exists;
            // the reference does not outlive the (mutably borrowed) guard.
            unsafe { &mut *self.lock.value.get() }
        }
    }

    impl<T> Drop for SpinGuard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::SpinLock;
        use std::sync::Arc;

        /// Mutual exclusion, and the release publishing the holder's writes: threads that
        /// increment a plain (non-atomic) counter under the lock lose no increment.
        #[test]
        fn threads_incrementing_under_the_lock_lose_nothing() {
            const THREADS: usize = 4;
            const EACH: usize = 50_000;
            let lock = Arc::new(SpinLock::new(0usize));
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let lock = lock.clone();
                    std::thread::spawn(move || {
                        for _ in 0..EACH {
                            *lock.lock() += 1;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
            assert_eq!(*lock.lock(), THREADS * EACH);
        }

        /// A value too big to be written in one instruction is never seen half-written: each
        /// writer stores the same number in every word.
        #[test]
        fn a_reader_never_sees_a_half_written_value() {
            let lock = Arc::new(SpinLock::new([0u64; 8]));
            let writer = {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for i in 1..=100_000u64 {
                        *lock.lock() = [i; 8];
                    }
                })
            };
            let mut last = 0;
            while last < 100_000 {
                let seen = *lock.lock();
                assert!(seen.iter().all(|&w| w == seen[0]), "torn: {seen:?}");
                assert!(seen[0] >= last, "went back: {} after {last}", seen[0]);
                last = seen[0];
            }
            writer.join().unwrap();
        }

        /// A panic while the lock is held releases it (the guard's drop runs while unwinding).
        #[test]
        fn a_panic_under_the_lock_releases_it() {
            let lock = SpinLock::new(vec![1]);
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut held = lock.lock();
                held.push(2);
                panic!("inside");
            }));
            assert!(caught.is_err());
            assert_eq!(*lock.lock(), [1, 2]);
        }

        /// `with_mut` reaches the value through `&mut` without the lock.
        #[test]
        fn with_mut_reaches_the_value() {
            let mut lock = SpinLock::new(1);
            lock.with_mut(|v| *v += 1);
            assert_eq!(*lock.lock(), 2);
        }
    }
}

/// Under loom: the same interface over loom's mutex.
#[cfg(keepwatch_loom)]
mod modelled {
    /// A spin lock, modelled as a mutex.
    #[derive(Debug)]
    pub(crate) struct SpinLock<T>(crate::loom::Mutex<T>);

    impl<T> SpinLock<T> {
        pub(crate) fn new(value: T) -> Self {
            SpinLock(crate::loom::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> crate::loom::MutexGuard<'_, T> {
            self.0.lock()
        }

        pub(crate) fn with_mut<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
            f(&mut self.0.lock())
        }
    }
}
