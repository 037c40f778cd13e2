//! `ValueWatcher`, the handle that can change a value (and close it), and
//! `WeakValueWatcher`. Everything that reads or waits is on `ValueReader`, which a
//! `ValueWatcher` dereferences to.

use std::fmt;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::loom::{Arc, Ordering, Weak};
use crate::reader::{debug_fields, ValueReader};
use crate::state::{Effects, Shared};

/// A value that threads and async tasks can set, read and wait on, where no transition is
/// ever lost.
///
/// Cloning a `ValueWatcher` gives another handle to the same value; any handle can read, set
/// and wait. The value closes when [`close`](ValueWatcher::close) is called or its last
/// `ValueWatcher` is dropped (see [Close](crate#close)).
///
/// A `ValueWatcher` dereferences to a [`ValueReader`], which has every method that reads,
/// waits, subscribes or derives (`get`, `with`, `wait_for`, `subscribe`, `map`, …); this type
/// adds those that change the value. Hand out a [`reader`](ValueWatcher::reader) where only
/// reading is wanted.
///
/// The methods ask of `T` only what they need: reading a clone needs `Clone`; setting and
/// waiting need `Clone + PartialEq + Send + 'static` (a `set` of an equal value is not a
/// transition; values move between threads).
///
/// # Examples
///
/// ```
/// use keepwatch::ValueWatcher;
///
/// #[derive(Clone, Debug, PartialEq)]
/// enum Conn { Connecting, Connected, Closing, Closed }
///
/// let state = ValueWatcher::new(Conn::Connecting);
/// let drain = state.wait_for(Conn::Closing); // registered now
///
/// state.set(Conn::Connected);
/// state.set(Conn::Closing);
/// state.set(Conn::Closed); // moved on before the waiter ran
///
/// assert_eq!(drain.blocking(), Ok(Conn::Closing));
/// ```
pub struct ValueWatcher<T> {
    reader: ValueReader<T>,
}

/// A handle to a value that does not keep it open, from [`ValueWatcher::downgrade`].
/// Callbacks that need their own value capture this.
///
/// # Examples
///
/// ```
/// use keepwatch::ValueWatcher;
///
/// let value = ValueWatcher::new(0);
/// let weak = value.downgrade();
/// assert!(weak.upgrade().is_some());
/// drop(value);
/// assert!(weak.upgrade().is_none());
/// ```
pub struct WeakValueWatcher<T> {
    shared: Weak<Shared<T>>,
}

impl<T> ValueWatcher<T> {
    /// A new open value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(7);
    /// assert_eq!(value.get(), 7);
    /// assert_eq!(value.version(), 0);
    /// ```
    pub fn new(initial: T) -> Self {
        ValueWatcher {
            reader: ValueReader::from_shared(Arc::new(Shared::new(initial))),
        }
    }

    fn shared(&self) -> &Arc<Shared<T>> {
        &self.reader.shared
    }

    /// A read-only handle to the same value: it reads, waits, subscribes and derives, and
    /// cannot set or close. It does not keep the value open.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(1);
    /// let reader = value.reader();
    /// value.set(2);
    /// assert_eq!(reader.get(), 2);
    /// drop(value); // the last watcher: the value closes
    /// assert!(reader.is_closed());
    /// assert_eq!(reader.get(), 2); // still readable
    /// ```
    pub fn reader(&self) -> ValueReader<T> {
        self.reader.clone()
    }

    /// Closes the value: pending waits that have not matched end with
    /// [`Error::Closed`](crate::Error::Closed), subscriptions deliver what was queued and then
    /// end, and `set`, `set_if`, `update` and `modify` change nothing from now on. Closing
    /// twice does nothing. See [Close](crate#close).
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock. A panic in the `Drop` of a user
    /// value or callback let go of reaches the caller once everything else is done.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// value.close();
    /// assert!(value.is_closed());
    /// assert!(!value.set(1));
    /// ```
    pub fn close(&self) {
        self.shared().close()
    }

    /// A handle that does not keep the value open.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let weak = value.downgrade();
    /// weak.upgrade().unwrap().set(1);
    /// assert_eq!(value.get(), 1);
    /// ```
    pub fn downgrade(&self) -> WeakValueWatcher<T> {
        WeakValueWatcher {
            shared: Arc::downgrade(self.shared()),
        }
    }
}

impl<T: Clone + PartialEq + Send + 'static> ValueWatcher<T> {
    /// Sets the value. If `value` equals the current value nothing happens and it returns
    /// `false`; otherwise it stores `value`, records the transition `(old, new)` and returns
    /// `true`. On a closed value nothing happens and it returns `false`.
    ///
    /// `set` never blocks on a waiter and may be called from inside an async task or a
    /// callback. Waiters are woken, and callbacks run (in order, see
    /// [`on_change`](ValueReader::on_change)), after the value's lock is released.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock; if `T`'s `PartialEq` or `Clone`
    /// panics here (the value is then unchanged). A panic in `T`'s `Drop` of a value let go of
    /// reaches the caller after the transition has fully taken effect. Panics of wakers and
    /// callbacks are contained: they never reach the setter.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(1);
    /// assert!(value.set(2));
    /// assert!(!value.set(2));
    /// value.close();
    /// assert!(!value.set(3));
    /// assert_eq!(value.get(), 2);
    /// ```
    pub fn set(&self, value: T) -> bool {
        let shared = self.shared();
        // Only a watched value needs `Effects`; with nothing watching, a transition is a store
        // and a count, and the value let go of waits in `spare`, dropped after the lock.
        let mut fx = None;
        let mut spare = None;
        let changed = shared.locked(|st| {
            if st.watched() {
                return Ok(st.set(value, fx.insert(Effects::new(shared))));
            }
            let value = spare.insert(value);
            let changes = catch_unwind(AssertUnwindSafe(|| st.changes_to(value)))?;
            if changes {
                let value = spare.take().expect("just put there");
                spare = Some(st.store(value));
            }
            Ok(changes)
        });
        if std::mem::needs_drop::<T>() {
            crate::fault::drop_then_raise(spare.take());
        }
        if let Some(fx) = &mut fx {
            fx.finish();
        }
        // Everything is taken out of `fx` now: skip the drop glue.
        std::mem::forget(fx);
        changed.unwrap_or_else(|payload| resume_unwind(payload))
    }

    /// Atomically: if `cond(&current)` is false, nothing happens and it returns `false`;
    /// otherwise sets `value` as [`set`](ValueWatcher::set) does and returns `true`, even when
    /// `value` equals the current value (the condition held). On a closed value: `false`, and
    /// `cond` is not called.
    ///
    /// `cond` runs under the value's lock: it must be quick and must not call into the same
    /// value. Whatever is not used (`value`, or `cond` never called) is dropped after the lock.
    ///
    /// # Panics
    ///
    /// If `cond` calls into the same value (a clear panic, never a deadlock). If `cond`
    /// panics, the panic reaches the caller and the value is unchanged and usable.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new("connecting");
    /// assert!(value.set_if("connected", |v| *v == "connecting"));
    /// assert!(!value.set_if("connected", |v| *v == "connecting"));
    /// assert_eq!(value.get(), "connected");
    /// ```
    pub fn set_if(&self, value: T, cond: impl FnOnce(&T) -> bool) -> bool {
        let mut held = Some((value, cond));
        let set = self.shared().act(|st, fx| {
            if st.closed {
                return false;
            }
            let (value, cond) = held.take().expect("held");
            let (value, holds) = fx.guard(value, |_| cond(&st.value));
            if !holds {
                fx.values.push(value);
                return false;
            }
            st.set(value, fx);
            true
        });
        crate::fault::drop_then_raise(held);
        set
    }

    /// Atomically: calls `f(&current)`; `Some(v)` with `v` different from the current value is
    /// set as by [`set`](ValueWatcher::set) and gives `true`; `None` or an equal value changes
    /// nothing and gives `false`. On a closed value `f` is not called: `false`.
    ///
    /// `f` runs under the value's lock: it must be quick and must not call into the same
    /// value. A closure never called is dropped after the lock.
    ///
    /// # Panics
    ///
    /// If `f` calls into the same value (a clear panic, never a deadlock). If `f` panics, the
    /// panic reaches the caller and the value is unchanged and usable.
    ///
    /// # Examples
    ///
    /// ```
    /// let counter = keepwatch::ValueWatcher::new(0);
    /// assert!(counter.update(|n| Some(n + 1)));
    /// assert!(!counter.update(|n| (*n > 5).then(|| 0)));
    /// assert_eq!(counter.get(), 1);
    /// ```
    pub fn update(&self, f: impl FnOnce(&T) -> Option<T>) -> bool {
        let mut held = Some(f);
        let updated = self.shared().act(|st, fx| {
            if st.closed {
                return false;
            }
            let f = held.take().expect("held");
            match f(&st.value) {
                Some(value) => st.set(value, fx),
                None => false,
            }
        });
        crate::fault::drop_then_raise(held);
        updated
    }

    /// Atomically changes the value in place: runs `f` on the current value; if the value then
    /// differs from what it was, that is a transition exactly as by [`set`](ValueWatcher::set)
    /// (`true`); if not, nothing happened (`false`). On a closed value `f` is not called:
    /// `false`.
    ///
    /// For a large value changed in a small way: no second value is built by the caller.
    /// keepwatch still clones the value once (to restore it if `f` panics, and as the
    /// transition's `old`) and compares the two.
    ///
    /// `f` runs under the value's lock: it must be quick and must not call into the same
    /// value.
    ///
    /// # Panics
    ///
    /// If `f` panics (or calls into the same value), the value is restored as it was, the
    /// panic reaches the caller, and the value stays usable. Likewise if `T`'s `Clone` or
    /// `PartialEq` panics here.
    ///
    /// # Examples
    ///
    /// ```
    /// let peers = keepwatch::ValueWatcher::new(vec!["a"]);
    /// let mut changes = peers.subscribe();
    /// assert!(peers.modify(|v| v.push("b")));
    /// assert!(!peers.modify(|v| v.sort())); // already sorted: no transition
    /// let t = changes.try_recv().unwrap().unwrap();
    /// assert_eq!((t.old, t.new), (vec!["a"], vec!["a", "b"]));
    /// assert_eq!(changes.try_recv(), Ok(None));
    /// ```
    pub fn modify(&self, f: impl FnOnce(&mut T)) -> bool {
        let mut held = Some(f);
        let modified = self.shared().act(|st, fx| {
            if st.closed {
                return false;
            }
            st.modify(held.take().expect("held"), fx)
        });
        crate::fault::drop_then_raise(held);
        modified
    }
}

impl<T> Deref for ValueWatcher<T> {
    type Target = ValueReader<T>;

    /// The read side: every method that reads, waits, subscribes or derives.
    fn deref(&self) -> &ValueReader<T> {
        &self.reader
    }
}

impl<T> AsRef<ValueReader<T>> for ValueWatcher<T> {
    fn as_ref(&self) -> &ValueReader<T> {
        &self.reader
    }
}

impl<T> From<&ValueWatcher<T>> for ValueReader<T> {
    /// The same as [`ValueWatcher::reader`].
    fn from(watcher: &ValueWatcher<T>) -> Self {
        watcher.reader()
    }
}

impl<T> Clone for ValueWatcher<T> {
    fn clone(&self) -> Self {
        self.shared().handles.fetch_add(1, Ordering::Relaxed);
        ValueWatcher {
            reader: self.reader.clone(),
        }
    }
}

impl<T> Drop for ValueWatcher<T> {
    /// Dropping the last handle closes the value (see [`close`](ValueWatcher::close)).
    fn drop(&mut self) {
        if self.shared().handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared().close();
        }
    }
}

impl<T: Default> Default for ValueWatcher<T> {
    /// A new open value holding `T::default()`.
    fn default() -> Self {
        ValueWatcher::new(T::default())
    }
}

impl<T> From<T> for ValueWatcher<T> {
    /// A new open value holding `value`.
    fn from(value: T) -> Self {
        ValueWatcher::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueWatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(self.shared(), f.debug_struct("ValueWatcher"))
    }
}

impl<T> WeakValueWatcher<T> {
    /// A `ValueWatcher` for the same value, or `None` once its last `ValueWatcher` has been
    /// dropped. A value closed by [`close`](ValueWatcher::close) while handles are alive still
    /// upgrades.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let weak = value.downgrade();
    /// value.close();
    /// assert!(weak.upgrade().is_some());
    /// ```
    pub fn upgrade(&self) -> Option<ValueWatcher<T>> {
        let shared = self.shared.upgrade()?;
        let mut handles = shared.handles.load(Ordering::Relaxed);
        loop {
            if handles == 0 {
                return None;
            }
            match shared.handles.compare_exchange_weak(
                handles,
                handles + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(ValueWatcher {
                        reader: ValueReader::from_shared(shared),
                    })
                }
                Err(now) => handles = now,
            }
        }
    }
}

impl<T> Clone for WeakValueWatcher<T> {
    fn clone(&self) -> Self {
        WeakValueWatcher {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for WeakValueWatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakValueWatcher").finish_non_exhaustive()
    }
}
