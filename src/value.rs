//! `ValueWatcher`, the handle to an observable value, and `WeakValueWatcher`.

use std::fmt;

use crate::callback::{CallbackHandle, CallbackHost};
use crate::loom::{Arc, AtomicBool, Ordering, Weak};
use crate::state::{Effects, Shared};
use crate::subscription::Subscription;
use crate::wait::Wait;
use crate::waits::{Cond, Outcome};
use crate::Transition;

/// A value that threads and async tasks can set, read and wait on, where no transition is
/// ever lost.
///
/// Cloning a `ValueWatcher` gives another handle to the same value; any handle can read, set
/// and wait. The value closes when [`close`](ValueWatcher::close) is called or its last
/// `ValueWatcher` is dropped (see [Close](crate#close)).
///
/// `T` needs `Clone` (readers and waiters get clones), `PartialEq` (a `set` of an equal value
/// is not a transition) and `Send + 'static` (values move between threads).
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
pub struct ValueWatcher<T: Clone + PartialEq + Send + 'static> {
    shared: Arc<Shared<T>>,
}

/// A handle to a value that does not keep it open, from
/// [`ValueWatcher::downgrade`]. Callbacks that need their own value capture this.
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
pub struct WeakValueWatcher<T: Clone + PartialEq + Send + 'static> {
    shared: Weak<Shared<T>>,
}

impl<T: Clone + PartialEq + Send + 'static> ValueWatcher<T> {
    /// A new open value.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(7);
    /// assert_eq!(value.get(), 7);
    /// assert_eq!(value.version(), 0);
    /// ```
    pub fn new(initial: T) -> Self {
        ValueWatcher {
            shared: Arc::new(Shared::new(initial)),
        }
    }

    /// A clone of the current value. After a close, the last value.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock (see
    /// [User code under the lock](crate#user-code-under-the-lock)).
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(String::from("a"));
    /// assert_eq!(value.get(), "a");
    /// ```
    pub fn get(&self) -> T {
        self.shared.locked(|st| st.value.clone())
    }

    /// Reads the value without cloning it.
    ///
    /// `f` runs under the value's lock: it must be quick and must not call into the same
    /// value.
    ///
    /// # Panics
    ///
    /// If `f` calls into the same value (a clear panic, never a deadlock), or if `f` panics.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(vec![1, 2, 3]);
    /// assert_eq!(value.with(|v| v.len()), 3);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.shared.locked(|st| f(&st.value))
    }

    /// How many transitions the value has made: 0 for a new value. The `version` of the last
    /// [`Transition`].
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// value.set(1);
    /// value.set(1); // equal: not a transition
    /// value.set(2);
    /// assert_eq!(value.version(), 2);
    /// ```
    pub fn version(&self) -> u64 {
        self.shared.locked(|st| st.version)
    }

    /// Sets the value. If `value` equals the current value nothing happens and it returns
    /// `false`; otherwise it stores `value`, records the transition `(old, new)` and returns
    /// `true`. On a closed value nothing happens and it returns `false`.
    ///
    /// `set` never blocks on a waiter and may be called from inside an async task or a
    /// callback. Waiters are woken, and callbacks run (in order, see [`on_change`]), after the
    /// value's lock is released.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock. A panic in `T`'s `Drop` of a
    /// replaced value reaches the caller after the transition has fully taken effect.
    ///
    /// [`on_change`]: ValueWatcher::on_change
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
        // With nothing watching, a transition is a store and a count: skip the `Effects`
        // machinery, and drop the value let go of after the lock, as always.
        let (changed, spare, effects) = self.shared.locked(|st| {
            if st.watched() {
                let mut fx = Effects::default();
                (st.set(value, &mut fx), None, Some(fx))
            } else if st.changes_to(&value) {
                (true, Some(st.store(value)), None)
            } else {
                (false, Some(value), None)
            }
        });
        drop(spare);
        if let Some(fx) = effects {
            fx.finish(&self.shared);
        }
        changed
    }

    /// Atomically: if `cond(&current)` is false, nothing happens and it returns `false`;
    /// otherwise sets `value` as [`set`](ValueWatcher::set) does and returns `true`, even when
    /// `value` equals the current value (the condition held). On a closed value: `false`.
    ///
    /// `cond` runs under the value's lock: it must be quick and must not call into the same
    /// value.
    ///
    /// # Panics
    ///
    /// If `cond` calls into the same value (a clear panic, never a deadlock). If `cond`
    /// panics, the panic reaches the caller and the value is unchanged and usable.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new("connecting");
    /// assert!(value.set_if("connected", |v| *v == "connecting"));
    /// assert!(!value.set_if("connected", |v| *v == "connecting"));
    /// assert_eq!(value.get(), "connected");
    /// ```
    pub fn set_if(&self, value: T, cond: impl FnOnce(&T) -> bool) -> bool {
        // MUTANT (loom-tests/mutants.sh): tests the condition under one lock, sets under
        // another, so two exclusive conditions can both hold.
        #[cfg(keepwatch_mutant = "set_if_check_then_act")]
        let cond = {
            let held = self.shared.locked(|st| cond(&st.value));
            move |_: &T| held
        };
        self.shared.act(|st, fx| {
            if st.closed {
                fx.spare[0] = Some(value);
                return false;
            }
            if !cond(&st.value) {
                fx.spare[0] = Some(value);
                return false;
            }
            st.set(value, fx);
            true
        })
    }

    /// Atomically: calls `f(&current)`; `Some(v)` with `v` different from the current value is
    /// set as by [`set`](ValueWatcher::set) and gives `true`; `None` or an equal value changes
    /// nothing and gives `false`. On a closed value `f` is not called: `false`.
    ///
    /// `f` runs under the value's lock: it must be quick and must not call into the same
    /// value.
    ///
    /// # Panics
    ///
    /// If `f` calls into the same value (a clear panic, never a deadlock). If `f` panics, the
    /// panic reaches the caller and the value is unchanged and usable.
    ///
    /// ```
    /// let counter = keepwatch::ValueWatcher::new(0);
    /// assert!(counter.update(|n| Some(n + 1)));
    /// assert!(!counter.update(|n| (*n > 5).then(|| 0)));
    /// assert_eq!(counter.get(), 1);
    /// ```
    pub fn update(&self, f: impl FnOnce(&T) -> Option<T>) -> bool {
        self.shared.act(|st, fx| {
            if st.closed {
                return false;
            }
            match f(&st.value) {
                Some(value) => st.set(value, fx),
                None => false,
            }
        })
    }

    /// A lossless, ordered feed of every transition made after this call.
    ///
    /// Each transition is stored once in a log shared by all subscriptions and freed when the
    /// last of them has read it, so an idle subscription costs a `set` nothing and the
    /// unbounded default keeps every transition until it is read. On a closed value the
    /// subscription is empty.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let mut sub = value.subscribe();
    /// value.set(1);
    /// value.set(2);
    /// let versions: Vec<u64> = std::iter::from_fn(|| sub.try_recv().unwrap())
    ///     .map(|t| t.version)
    ///     .collect();
    /// assert_eq!(versions, [1, 2]);
    /// ```
    pub fn subscribe(&self) -> Subscription<T> {
        let (key, initial) = self
            .shared
            .locked(|st| (st.log.subscribe(st.version, None), st.value.clone()));
        Subscription::new(self.shared.clone(), key, initial)
    }

    /// A subscription that keeps at most `max_unread` transitions it has not read yet: the
    /// opt-in memory bound for a consumer that may fall behind.
    ///
    /// It is ordered and gap-free like [`subscribe`](ValueWatcher::subscribe)'s as long as it
    /// keeps up. When a transition arrives while `max_unread` are already waiting for it, the
    /// oldest of them is dropped for this subscription (other subscriptions still get it). It
    /// is never a silent skip: the next [`recv`](Subscription::recv) or
    /// [`try_recv`](Subscription::try_recv) gives `Err(Error::Lagged(n))` once, `n` being
    /// how many transitions were dropped since it was last told, and the following ones resume
    /// with the oldest transition still kept (whose [`version`](Transition::version) is that
    /// many past the last one received, and whose `old` is its true previous value).
    ///
    /// The [`Stream`](futures_core::Stream) and [`iter`](Subscription::iter) of a subscription
    /// yield bare transitions; for a bounded one they go on after a gap (they neither end nor
    /// panic) and the gap shows only as a jump in `version`. To be told of a lag as an item,
    /// read it with [`results`](Subscription::results) (a `Stream` of
    /// `Result<Transition<T>, Error>`) or [`iter_results`](Subscription::iter_results).
    ///
    /// Memory: a setter never holds more than `max_unread` transitions for this subscription,
    /// however long it goes unread.
    ///
    /// # Panics
    ///
    /// If `max_unread` is 0 (a subscription that could never hold a transition), or if called
    /// from code that runs under this value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use keepwatch::{Error, ValueWatcher};
    ///
    /// let value = ValueWatcher::new(0);
    /// let mut sub = value.subscribe_bounded(2);
    /// for n in 1..=5 {
    ///     value.set(n); // nobody reads: transitions 1, 2 and 3 are dropped for `sub`
    /// }
    /// assert_eq!(sub.try_recv(), Err(Error::Lagged(3)));
    /// let t = sub.try_recv().unwrap().unwrap();
    /// assert_eq!((t.old, t.new, t.version), (3, 4, 4));
    /// assert_eq!(sub.try_recv().unwrap().unwrap().version, 5);
    /// assert_eq!(sub.try_recv(), Ok(None));
    /// ```
    pub fn subscribe_bounded(&self, max_unread: usize) -> Subscription<T> {
        assert!(
            max_unread > 0,
            "keepwatch: `subscribe_bounded(0)`: a bounded subscription must keep at least one \
             unread transition"
        );
        let (key, initial) = self.shared.locked(|st| {
            (
                st.log.subscribe(st.version, Some(max_unread)),
                st.value.clone(),
            )
        });
        Subscription::new(self.shared.clone(), key, initial)
    }

    /// Calls `f(old, new)` for every transition after this call, in the global order.
    ///
    /// Callbacks run after the value is stored, outside any internal lock, on a thread that
    /// set the value. With a single setter, a transition's callbacks have run when `set`
    /// returns; when another thread is already running callbacks (or `set` is called from
    /// inside a callback), `set` may return first and that thread runs them, still in order.
    ///
    /// A callback may call `get`, `set` and every other method on the same value. A callback
    /// that panics does not poison anything, does not stop the other callbacks or the setter,
    /// and stays registered. A callback that captures a `ValueWatcher` keeps the value open:
    /// capture a [`WeakValueWatcher`] instead. On a closed value the callback is dropped at
    /// once and never runs.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let _handle = value.on_change(move |old, new| log.lock().unwrap().push((*old, *new)));
    /// value.set(1);
    /// value.set(2);
    /// assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 2)]);
    /// ```
    pub fn on_change(&self, f: impl FnMut(&T, &T) + Send + 'static) -> CallbackHandle {
        let f = Box::new(f);
        let registered = self.shared.locked(|st| {
            if st.closed {
                Err(f)
            } else {
                Ok(st.callbacks.add_change(f, st.version))
            }
        });
        match registered {
            Ok((id, flag)) => CallbackHandle::new(self.callback_host(), id, flag),
            Err(f) => {
                drop(f);
                CallbackHandle::inert()
            }
        }
    }

    /// Calls `f()` once: now, on the caller's thread, if the value equals `value`; otherwise
    /// at the first transition to `value` (run like an [`on_change`](ValueWatcher::on_change)
    /// callback). On a closed value it runs now if the value equals `value`, and otherwise
    /// never.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let value = keepwatch::ValueWatcher::new("starting");
    /// let fired = Arc::new(AtomicUsize::new(0));
    /// let count = fired.clone();
    /// let _handle = value.on_value("ready", move || {
    ///     count.fetch_add(1, Ordering::SeqCst);
    /// });
    /// value.set("ready");
    /// value.set("busy");
    /// value.set("ready");
    /// assert_eq!(fired.load(Ordering::SeqCst), 1);
    /// ```
    pub fn on_value(&self, value: T, f: impl FnOnce() + Send + 'static) -> CallbackHandle {
        let f: Box<dyn FnOnce() + Send> = Box::new(f);
        // Decided under the lock; `f` runs (or is dropped) and `value` is dropped after it.
        enum Decision<V> {
            Now(Box<dyn FnOnce() + Send>, V),
            Never(Box<dyn FnOnce() + Send>, V),
            Later(u64, Arc<AtomicBool>),
        }
        let decision = self.shared.locked(|st| {
            if st.value == value {
                Decision::Now(f, value)
            } else if st.closed {
                Decision::Never(f, value)
            } else {
                let (id, flag) = st.callbacks.add_value(value, f, st.version);
                Decision::Later(id, flag)
            }
        });
        match decision {
            Decision::Now(f, _) => {
                f();
                CallbackHandle::inert()
            }
            Decision::Never(f, value) => {
                drop((f, value));
                CallbackHandle::inert()
            }
            Decision::Later(id, flag) => CallbackHandle::new(self.callback_host(), id, flag),
        }
    }

    fn callback_host(&self) -> Weak<dyn CallbackHost> {
        let host: Arc<dyn CallbackHost> = self.shared.clone();
        Arc::downgrade(&host)
    }

    fn wait(&self, cond: Cond<T>) -> Wait<T> {
        #[cfg(not(keepwatch_mutant = "wait_register_after_check"))]
        let key = self.shared.locked(|st| st.add_wait(cond));
        // MUTANT (loom-tests/mutants.sh): tests the current value under one lock, registers
        // under another; a transition in between is missed.
        #[cfg(keepwatch_mutant = "wait_register_after_check")]
        let key = {
            let (now, version) = self.shared.locked(|st| (st.value.clone(), st.version));
            self.shared
                .locked(|st| st.waits.add(cond, &now, version, st.closed))
        };
        Wait::new(self.shared.clone(), key)
    }

    fn wait_custom<O: Send + 'static>(
        &self,
        matcher: impl FnMut(Option<&T>, &T, u64) -> Option<Outcome<T>> + Send + 'static,
    ) -> Wait<O> {
        let key = self
            .shared
            .locked(|st| st.add_wait(Cond::Custom(Box::new(matcher))));
        Wait::new(self.shared.clone(), key)
    }

    /// Completes with the first value equal to `value`: the current value (unless
    /// [`skip_current`](Wait::skip_current)), then the new value of each later transition, in
    /// order, even if the value has moved on by the time the waiter runs.
    ///
    /// The wait is registered now: nothing between this call and the `.await` (or
    /// `.blocking()`) is missed.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let wait = value.wait_for(1);
    /// value.set(1);
    /// value.set(2);
    /// assert_eq!(wait.blocking(), Ok(1));
    /// ```
    pub fn wait_for(&self, value: T) -> Wait<T> {
        self.wait(Cond::Eq(value))
    }

    /// Completes with the first value not equal to `value` (see
    /// [`wait_for`](ValueWatcher::wait_for) for "first").
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new("idle");
    /// let wait = value.wait_for_not("idle");
    /// value.set("busy");
    /// value.set("idle");
    /// assert_eq!(wait.blocking(), Ok("busy"));
    /// ```
    pub fn wait_for_not(&self, value: T) -> Wait<T> {
        self.wait(Cond::Ne(value))
    }

    /// Completes with the first value for which `pred` holds (see
    /// [`wait_for`](ValueWatcher::wait_for) for "first").
    ///
    /// `pred` runs under the value's lock, on the thread that sets the value (and on this one,
    /// for the current value): it must be quick and must not call into the same value.
    ///
    /// # Panics
    ///
    /// Never here. If `pred` panics (or calls into the same value), the panic reaches this
    /// wait's finisher (`.await`, `.blocking*`) and no one else.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let wait = value.wait_until(|n| n % 2 == 1);
    /// value.set(2);
    /// value.set(3);
    /// value.set(4);
    /// assert_eq!(wait.blocking(), Ok(3));
    /// ```
    pub fn wait_until(&self, pred: impl Fn(&T) -> bool + Send + 'static) -> Wait<T> {
        self.wait_custom(move |_, new, _| pred(new).then(|| Outcome::Value(new.clone())))
    }

    /// Completes with the first `Some(u)` that `f` returns for a value (see
    /// [`wait_for`](ValueWatcher::wait_for) for "first").
    ///
    /// `f` runs under the value's lock, like [`wait_until`](ValueWatcher::wait_until)'s
    /// predicate, with the same rules and the same handling of panics.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(Err::<u32, &str>("not yet"));
    /// let port = value.wait_map(|r| r.ok());
    /// value.set(Ok(8080));
    /// assert_eq!(port.blocking(), Ok(8080));
    /// ```
    pub fn wait_map<U: Send + 'static>(
        &self,
        f: impl Fn(&T) -> Option<U> + Send + 'static,
    ) -> Wait<U> {
        self.wait_custom(move |_, new, _| {
            f(new).map(|u| Outcome::Mapped(Box::new(u) as Box<dyn std::any::Any + Send>))
        })
    }

    /// Completes with the first transition `(old, new)` after this call for which
    /// `pred(old, new)` holds. The current value never counts.
    ///
    /// `pred` runs under the value's lock, like [`wait_until`](ValueWatcher::wait_until)'s
    /// predicate, with the same rules and the same handling of panics.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(10);
    /// let drop = value.wait_transition(|old, new| new < old);
    /// value.set(20);
    /// value.set(15);
    /// let t = drop.blocking().unwrap();
    /// assert_eq!((t.old, t.new, t.version), (20, 15, 2));
    /// ```
    pub fn wait_transition(
        &self,
        pred: impl Fn(&T, &T) -> bool + Send + 'static,
    ) -> Wait<Transition<T>> {
        self.wait_custom(move |old, new, version| {
            let old = old?;
            pred(old, new).then(|| {
                Outcome::Transition(Transition {
                    old: old.clone(),
                    new: new.clone(),
                    version,
                })
            })
        })
    }

    /// Completes with the new value of the next transition. The current value never counts.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let change = value.wait_for_change();
    /// value.set(5);
    /// value.set(6);
    /// assert_eq!(change.blocking(), Ok(5));
    /// ```
    pub fn wait_for_change(&self) -> Wait<T> {
        self.wait(Cond::Change)
    }

    /// Closes the value: pending waits that have not matched end with
    /// [`Error::Closed`](crate::Error::Closed), subscriptions deliver what was queued and then
    /// end, and `set`, `set_if` and `update` change nothing from now on. Closing twice does
    /// nothing. See [Close](crate#close).
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// value.close();
    /// assert!(value.is_closed());
    /// assert!(!value.set(1));
    /// ```
    pub fn close(&self) {
        self.shared.act(|st, fx| st.close(fx))
    }

    /// Whether the value is closed.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// assert!(!value.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.locked(|st| st.closed)
    }

    /// Subscriptions not yet dropped, plus waits still pending (not matched, not ended by
    /// close, not dropped). Callbacks do not count.
    ///
    /// Counting pending waits takes time in proportion to their number: meant for
    /// diagnostics and tests.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let wait = value.wait_for(1);
    /// let sub = value.subscribe();
    /// assert_eq!(value.watcher_count(), 2);
    /// drop(wait);
    /// drop(sub);
    /// assert_eq!(value.watcher_count(), 0);
    /// ```
    pub fn watcher_count(&self) -> usize {
        self.shared
            .locked(|st| st.log.readers() + st.waits.pending())
    }

    /// A handle that does not keep the value open.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let weak = value.downgrade();
    /// weak.upgrade().unwrap().set(1);
    /// assert_eq!(value.get(), 1);
    /// ```
    pub fn downgrade(&self) -> WeakValueWatcher<T> {
        WeakValueWatcher {
            shared: Arc::downgrade(&self.shared),
        }
    }
}

impl<U: Clone + PartialEq + Send + 'static> ValueWatcher<Option<U>> {
    /// On a `ValueWatcher<Option<U>>`: completes with the first `Some(u)`, as `u` (see
    /// [`wait_for`](ValueWatcher::wait_for) for "first").
    ///
    /// ```
    /// let peer = keepwatch::ValueWatcher::new(None);
    /// let wait = peer.wait_for_not_none();
    /// peer.set(Some("10.0.0.7"));
    /// assert_eq!(wait.blocking(), Ok("10.0.0.7"));
    /// ```
    pub fn wait_for_not_none(&self) -> Wait<U> {
        self.wait_map(|value: &Option<U>| value.clone())
    }
}

impl<T: Clone + PartialEq + Send + 'static> Clone for ValueWatcher<T> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        ValueWatcher {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Clone + PartialEq + Send + 'static> Drop for ValueWatcher<T> {
    /// Dropping the last handle closes the value.
    fn drop(&mut self) {
        #[cfg(not(keepwatch_mutant = "handle_count_load_then_store"))]
        let last = self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1;
        // MUTANT (loom-tests/mutants.sh): a load and a store instead of one read-modify-write;
        // two last handles dropped at once can both see 2, and nobody closes.
        #[cfg(keepwatch_mutant = "handle_count_load_then_store")]
        let last = {
            let handles = self.shared.handles.load(Ordering::Acquire);
            self.shared.handles.store(handles - 1, Ordering::Release);
            handles == 1
        };
        if last {
            self.close();
        }
    }
}

impl<T: Clone + PartialEq + Send + Default + 'static> Default for ValueWatcher<T> {
    /// A new open value holding `T::default()`.
    fn default() -> Self {
        ValueWatcher::new(T::default())
    }
}

impl<T: Clone + PartialEq + Send + 'static> From<T> for ValueWatcher<T> {
    /// A new open value holding `value`.
    fn from(value: T) -> Self {
        ValueWatcher::new(value)
    }
}

impl<T: Clone + PartialEq + Send + fmt::Debug + 'static> fmt::Debug for ValueWatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (value, version, closed) = self
            .shared
            .locked(|st| (st.value.clone(), st.version, st.closed));
        f.debug_struct("ValueWatcher")
            .field("value", &value)
            .field("version", &version)
            .field("closed", &closed)
            .finish()
    }
}

impl<T: Clone + PartialEq + Send + 'static> WeakValueWatcher<T> {
    /// A `ValueWatcher` for the same value, or `None` once its last `ValueWatcher` has been
    /// dropped. A value closed by [`close`](ValueWatcher::close) while handles are alive still
    /// upgrades.
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
                Ok(_) => return Some(ValueWatcher { shared }),
                Err(now) => handles = now,
            }
        }
    }
}

impl<T: Clone + PartialEq + Send + 'static> Clone for WeakValueWatcher<T> {
    fn clone(&self) -> Self {
        WeakValueWatcher {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Clone + PartialEq + Send + 'static> fmt::Debug for WeakValueWatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakValueWatcher").finish_non_exhaustive()
    }
}

impl<T: Clone + PartialEq + Send + 'static> CallbackHost for Shared<T> {
    fn cancel(&self, id: u64) {
        let removed = self.locked(|st| st.callbacks.remove(id));
        drop(removed);
    }
}
