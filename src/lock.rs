//! The lock of one value, and the two ways user code could otherwise turn it into a hang: a
//! re-entrant call into the same value, and a cycle of nested calls between values on several
//! threads. Both end in a clear panic instead.
//!
//! User code that runs under a value's lock (a `with` closure, a predicate, `T::clone`) may call
//! into *another* value: that nests the second lock inside the first. Two threads that nest in
//! opposite orders (A's closure calls B while B's closure calls A) would wait for each other
//! for ever. A nested acquisition first tries the lock; only if it is taken does it record, in
//! a process-wide table, which locks this thread holds and which one it waits for, and look for
//! a cycle through the other blocked threads. The table is touched on that slow path only.

use crate::loom::{self, Mutex, MutexGuard, UnmodelledMutex};

const REENTRANT: &str = "keepwatch: re-entrant call into a value from code that runs under its \
     lock (a `with`, `set_if`, `update` or `modify` closure, a wait predicate, a `map` function, \
     or T's `Clone`/`PartialEq`/`Drop`); such code must not call into the same value";

const CYCLE: &str = "keepwatch: lock-order cycle between values: code running under one \
     value's lock (a closure, a predicate, T's `Clone`/`PartialEq`) calls into a second value \
     whose lock is held by another thread that, from code under the second value's lock, is \
     calling into the first; one of the calls must move out of the closure";

/// A value's lock: a mutex, plus the checks that turn a would-be deadlock into a panic.
#[derive(Debug)]
pub(crate) struct ValueLock<S> {
    mutex: Mutex<S>,
}

impl<S> ValueLock<S> {
    pub(crate) fn new(state: S) -> Self {
        ValueLock {
            mutex: Mutex::new(state),
        }
    }

    /// This lock's identity in the per-thread markers and the blocked-thread table.
    #[inline]
    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether this thread holds this lock (innermost or enclosing).
    pub(crate) fn held_here(&self) -> bool {
        let me = self.id();
        let outer = loom::held();
        outer == me || (outer != 0 && loom::enclosing_holds(me))
    }

    /// Runs `f` under the lock.
    ///
    /// # Panics
    ///
    /// If this thread already holds the lock (code under it called back into the same value),
    /// or if taking it would close a cycle of threads each holding a value's lock while waiting
    /// for the next one's. Never deadlocks through keepwatch's own locks.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let me = self.id();
        let outer = loom::held();
        // The innermost lock is checked on every call; the enclosing ones only when this call
        // comes from another value's closure (A's closure calls B, whose closure calls A).
        if outer == me || (outer != 0 && loom::enclosing_holds(me)) {
            panic!("{REENTRANT}");
        }
        let mut guard = if outer == 0 {
            self.mutex.lock()
        } else {
            self.lock_nested(me)
        };
        if outer != 0 {
            loom::push_enclosing(outer);
        }
        loom::set_held(me);
        // Restores the markers even if `f` unwinds (a user closure panicked).
        struct Restore(usize);
        impl Drop for Restore {
            #[inline]
            fn drop(&mut self) {
                loom::set_held(self.0);
                if self.0 != 0 {
                    loom::pop_enclosing();
                }
            }
        }
        let _restore = Restore(outer);
        f(&mut guard)
    }

    /// The slow path of a nested acquisition: if the lock is taken, registers as blocked and
    /// checks for a cycle before blocking.
    #[cold]
    fn lock_nested(&self, me: usize) -> MutexGuard<'_, S> {
        if let Some(guard) = self.mutex.try_lock() {
            return guard;
        }
        let _blocked = Blocked::register(me);
        self.mutex.lock()
    }
}

/// One thread blocked on a nested acquisition.
struct Entry {
    thread: u64,
    holds: Vec<usize>,
    wants: usize,
}

/// Threads blocked on a nested acquisition, process-wide.
static BLOCKED: UnmodelledMutex<Vec<Entry>> = UnmodelledMutex::new(Vec::new());

/// This thread's entry in [`BLOCKED`], removed when dropped (once the lock is taken).
struct Blocked(u64);

impl Blocked {
    /// Registers this thread as blocked on `wants`, after checking that no chain of blocked
    /// threads leads from `wants` back to a lock this thread holds.
    ///
    /// Every thread in a cycle is blocked on a nested acquisition, so each registers here; the
    /// table's mutex orders the registrations, and the last thread of a cycle to register sees
    /// all the others and panics, releasing its locks as it unwinds.
    fn register(wants: usize) -> Blocked {
        let thread = loom::thread_token();
        let holds = loom::held_all();
        let mut table = BLOCKED.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = wants;
        // Each lock has one holder, so the chain is a path; it is no longer than the table.
        for _ in 0..=table.len() {
            let Some(holder) = table.iter().find(|e| e.holds.contains(&next)) else {
                break;
            };
            if holds.contains(&holder.wants) {
                drop(table);
                panic!("{CYCLE}");
            }
            next = holder.wants;
        }
        table.push(Entry {
            thread,
            holds,
            wants,
        });
        Blocked(thread)
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let mut table = BLOCKED.lock().unwrap_or_else(|e| e.into_inner());
        table.retain(|e| e.thread != self.0);
    }
}
