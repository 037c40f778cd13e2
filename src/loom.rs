//! The one place that names `std::sync`, `parking_lot` or `loom`: every primitive keepwatch
//! synchronises with comes from here, so the loom models explore the real code.
//!
//! Under `cfg(keepwatch_loom)` everything maps to `loom`; otherwise to `parking_lot` and `std`.
//! The cfg is prefixed with the crate name because `RUSTFLAGS` reach every crate in the graph,
//! and a plain `cfg(loom)` would switch other crates too.

#[cfg(not(keepwatch_loom))]
mod imp {
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread};

    /// A mutex without poisoning: a panic while it is held leaves the data as it was.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    /// The guard of [`Mutex`].
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }

        #[inline]
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }

    std::thread_local! {
        static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// The address of the value whose lock this thread holds (0 for none, also while the
    /// thread's locals are being destroyed: a handle dropped then still works).
    #[inline]
    pub(crate) fn held() -> usize {
        HELD.try_with(|h| h.get()).unwrap_or(0)
    }

    /// Records that this thread now holds the lock of the value at `addr` (0: none).
    #[inline]
    pub(crate) fn set_held(addr: usize) {
        let _ = HELD.try_with(|h| h.set(addr));
    }
}

#[cfg(keepwatch_loom)]
mod imp {
    pub(crate) use loom::hint::spin_loop;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use loom::thread::yield_now;

    /// A thread's park token, modelled with a `loom::sync::Notify` rather than loom's own
    /// `park`/`unpark`: loom's `unpark` wakes a thread blocked in `join` or on a mutex (and
    /// fails the model there), while std's only sets the token. A waker may unpark a thread
    /// late, after it has moved on (a stale wake-up), which std allows. The `Notify` also
    /// wakes spuriously, once, as a real park may.
    #[derive(Clone, Debug)]
    pub(crate) struct Thread {
        id: loom::thread::ThreadId,
        token: std::sync::Arc<loom::sync::Notify>,
    }

    impl Thread {
        pub(crate) fn id(&self) -> loom::thread::ThreadId {
            self.id
        }

        pub(crate) fn unpark(&self) {
            self.token.notify();
        }
    }

    loom::thread_local! {
        static TOKEN: std::sync::Arc<loom::sync::Notify> =
            std::sync::Arc::new(loom::sync::Notify::new());
    }

    /// The calling thread.
    pub(crate) fn current() -> Thread {
        Thread {
            id: loom::thread::current().id(),
            token: TOKEN.with(|token| token.clone()),
        }
    }

    /// Blocks until the calling thread's token is set (or spuriously), consuming it.
    pub(crate) fn park() {
        TOKEN.with(|token| token.clone()).wait();
    }

    /// Loom has no timed park: a timed park returns at once, as a park that timed out (or woke
    /// spuriously) would, and the caller's loop checks its deadline. This models the give-up
    /// path of a timed wait; real timeouts are tested in `tests/`.
    pub(crate) fn park_timeout(_: std::time::Duration) {
        loom::thread::yield_now()
    }

    /// A mutex without poisoning, over `loom::sync::Mutex`.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`].
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    loom::thread_local! {
        static HELD: std::cell::Cell<usize> = std::cell::Cell::new(0);
    }

    /// The address of the value whose lock this thread holds (0 for none).
    pub(crate) fn held() -> usize {
        HELD.with(|h| h.get())
    }

    /// Records that this thread now holds the lock of the value at `addr` (0: none).
    pub(crate) fn set_held(addr: usize) {
        HELD.with(|h| h.set(addr))
    }
}

pub(crate) use imp::*;

#[cfg(not(keepwatch_loom))]
std::thread_local! {
    /// The values whose locks this thread holds, outside the innermost one (`held`): only
    /// touched when one value's closure calls into another.
    static ENCLOSING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(keepwatch_loom)]
loom::thread_local! {
    /// As without loom, per loom thread.
    static ENCLOSING: std::cell::RefCell<Vec<usize>> = std::cell::RefCell::new(Vec::new());
}

/// Whether this thread holds the lock of the value at `addr` outside the innermost one.
pub(crate) fn enclosing_holds(addr: usize) -> bool {
    ENCLOSING
        .try_with(|held| held.borrow().contains(&addr))
        .unwrap_or(false)
}

/// Every value lock this thread holds, innermost last.
pub(crate) fn held_all() -> Vec<usize> {
    let mut all = ENCLOSING
        .try_with(|held| held.borrow().clone())
        .unwrap_or_default();
    all.push(held());
    all
}

/// Records that the innermost lock, at `addr`, now encloses another.
pub(crate) fn push_enclosing(addr: usize) {
    let _ = ENCLOSING.try_with(|held| held.borrow_mut().push(addr));
}

/// Undoes [`push_enclosing`].
pub(crate) fn pop_enclosing() {
    let _ = ENCLOSING.try_with(|held| held.borrow_mut().pop());
}

/// A plain `std` mutex for bookkeeping that loom does not model: the table of threads blocked
/// on a nested value lock (see `lock.rs`), touched only on that slow path, which no model
/// takes.
pub(crate) use std::sync::Mutex as UnmodelledMutex;

/// The reference count that keeps the shared state in memory stays `std`'s under loom too: the
/// handles erase the value's type (`Arc<dyn ...>`), a coercion loom's `Arc` cannot make, and
/// nothing keepwatch promises rests on it — whether the value is open is decided by a separate
/// handle count, which is a loom atomic.
pub(crate) use std::sync::{Arc, Weak};

/// A number for the calling thread, unique for the life of the process (never reused, unlike
/// an address), for the table of blocked threads.
pub(crate) fn thread_token() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    std::thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Relaxed);
    }
    TOKEN.try_with(|t| *t).unwrap_or(0)
}
