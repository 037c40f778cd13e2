//! `ValueReader`, the read-only handle to a value: every method that reads, waits, subscribes
//! or derives. A `ValueWatcher` dereferences to one, so these are its methods too.

use std::fmt;

use crate::callback::{CallbackHandle, CallbackHost, ChangeFn};
use crate::derive;
use crate::loom::{Arc, AtomicBool, Weak};
use crate::registry::Matcher;
use crate::slot::{Outcome, WaitHost};
use crate::state::Shared;
use crate::subscription::Subscription;
use crate::wait::Wait;
use crate::Transition;

/// A read-only handle to a value: it reads, waits, subscribes and derives, and never changes
/// the value. From [`ValueWatcher::reader`](crate::ValueWatcher::reader), or returned by
/// [`map`](ValueReader::map) and [`zip`](ValueReader::zip) for a derived value.
///
/// A `ValueReader` does not keep the value open: a value closes when its last
/// [`ValueWatcher`](crate::ValueWatcher) goes (a derived value, which has none, closes with its
/// sources). It keeps the last value readable: `get` works after the close, also once every
/// `ValueWatcher` is gone.
///
/// Every [`ValueWatcher`](crate::ValueWatcher) dereferences to a `ValueReader`, so the methods
/// below are the watcher's too, and a `&ValueWatcher<T>` goes wherever a `&ValueReader<T>` is
/// asked for.
///
/// # Examples
///
/// ```
/// use keepwatch::{ValueReader, ValueWatcher};
///
/// fn report(phase: &ValueReader<&'static str>) -> String {
///     format!("{} (v{})", phase.get(), phase.version())
/// }
///
/// let phase = ValueWatcher::new("starting");
/// let reader = phase.reader(); // hand this out: it cannot set
/// phase.set("running");
/// assert_eq!(report(&reader), "running (v1)");
/// assert_eq!(report(&phase), "running (v1)"); // a watcher is a reader too
/// ```
pub struct ValueReader<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

impl<T> ValueReader<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        ValueReader { shared }
    }

    /// Reads the value without cloning it.
    ///
    /// `f` runs under the value's lock: it must be quick and must not call into the same
    /// value. Calls into another value are fine (see
    /// [User code under the lock](crate#user-code-under-the-lock)).
    ///
    /// # Panics
    ///
    /// If `f` calls into the same value (a clear panic, never a deadlock), or if `f` panics.
    ///
    /// # Examples
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
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
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

    /// Whether the value is closed.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// assert!(!value.is_closed());
    /// value.close();
    /// assert!(value.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.locked(|st| st.closed)
    }

    /// Subscriptions not yet dropped, plus waits still pending (not matched, not ended by
    /// close, not dropped). Callbacks and derived values do not count.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
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
}

impl<T: Clone> ValueReader<T> {
    /// A clone of the current value. After a close, the last value.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock (see
    /// [User code under the lock](crate#user-code-under-the-lock)); if `T`'s `Clone` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(String::from("a"));
    /// assert_eq!(value.get(), "a");
    /// ```
    pub fn get(&self) -> T {
        self.shared.locked(|st| st.value.clone())
    }

    /// A lossless, ordered feed of every transition made after this call.
    ///
    /// Each transition is stored once in a log shared by all subscriptions and freed when the
    /// last of them has read it, so an idle subscription costs a `set` nothing and the
    /// unbounded default keeps every transition until it is read. On a closed value the
    /// subscription is empty.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock; if `T`'s `Clone` panics (nothing
    /// is registered then).
    ///
    /// # Examples
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
        self.subscribe_with(None)
    }

    /// A subscription that keeps at most `max_unread` transitions it has not read yet: the
    /// opt-in memory bound for a consumer that may fall behind.
    ///
    /// It is ordered and gap-free like [`subscribe`](ValueReader::subscribe)'s as long as it
    /// keeps up. When a transition arrives while `max_unread` are already waiting for it, the
    /// oldest of them is dropped for this subscription (other subscriptions still get it). It
    /// is never a silent skip: the next [`recv`](Subscription::recv) or
    /// [`try_recv`](Subscription::try_recv) gives `Err(Error::Lagged(n))` once, `n` being
    /// how many transitions were dropped since it was last told, and the following ones resume
    /// with the oldest transition still kept (whose [`version`](Transition::version) is that
    /// many past the last one received, and whose `old` is its true previous value).
    ///
    /// The `Stream` and [`iter`](Subscription::iter) of a subscription yield bare transitions;
    /// for a bounded one they go on after a gap (they neither end nor panic) and the gap shows
    /// only as a jump in `version`. To be told of a lag as an item, read it with
    /// [`results`](Subscription::results) or [`iter_results`](Subscription::iter_results).
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
        self.subscribe_with(Some(max_unread))
    }

    fn subscribe_with(&self, bound: Option<usize>) -> Subscription<T> {
        // Clone first: a panicking `Clone` leaves nothing registered.
        let (key, initial) = self.shared.locked(|st| {
            let initial = st.value.clone();
            (st.log.subscribe(st.version, bound), initial)
        });
        Subscription::new(self.shared.clone(), key, initial)
    }
}

impl<T: Clone + PartialEq + Send + 'static> ValueReader<T> {
    /// A handle for `CallbackHandle` to cancel through.
    fn callback_host(&self) -> Weak<dyn CallbackHost> {
        let host: Arc<dyn CallbackHost> = self.shared.clone();
        Arc::downgrade(&host)
    }

    /// What keeps a derived value alive for its callbacks (it has no other owner they could
    /// capture); `None` for a plain value.
    fn keep_alive(&self) -> Option<Arc<dyn Send + Sync>> {
        let shared: Arc<dyn Send + Sync> = self.shared.clone();
        self.shared.is_derived().then_some(shared)
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
    /// capture a [`WeakValueWatcher`](crate::WeakValueWatcher) instead. A callback on a
    /// derived value keeps that value alive until it is cancelled or the value closes. On a
    /// closed value the callback is dropped at once and never runs.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
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
        // Held out here: whatever is not registered is dropped after the lock.
        let mut f: Option<ChangeFn<T>> = Some(Box::new(f));
        let mut keep = self.keep_alive();
        let registered = self.shared.locked(|st| {
            (!st.closed).then(|| {
                let f = f.take().expect("not taken yet");
                st.callbacks.add_change(f, st.version, keep.take())
            })
        });
        crate::fault::drop_then_raise((f, keep));
        match registered {
            Some((id, flag)) => CallbackHandle::new(self.callback_host(), id, flag),
            None => CallbackHandle::inert(),
        }
    }

    /// Calls `f()` once: now, on the caller's thread, if the value equals `value`; otherwise
    /// at the first transition to `value` (run like an [`on_change`](ValueReader::on_change)
    /// callback). On a closed value it runs now if the value equals `value`, and otherwise
    /// never.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock; if `f` panics when it runs now
    /// (later, its panic is contained like any callback's); if `T`'s `PartialEq` panics.
    ///
    /// # Examples
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
        enum Decision {
            Now,
            Never,
            Later(u64, Arc<AtomicBool>),
        }
        // Held out here: the parts not registered run or drop after the lock.
        let mut held: Option<(T, Box<dyn FnOnce() + Send>)> = Some((value, Box::new(f)));
        let mut keep = self.keep_alive();
        let decision = self.shared.locked(|st| {
            let (want, _) = held.as_ref().expect("not taken yet");
            if st.value == *want {
                Decision::Now
            } else if st.closed {
                Decision::Never
            } else {
                let (want, f) = held.take().expect("not taken yet");
                let (id, flag) = st.callbacks.add_value(want, f, st.version, keep.take());
                Decision::Later(id, flag)
            }
        });
        match decision {
            Decision::Now => {
                let (want, f) = held.take().expect("not registered");
                drop(keep);
                f();
                drop(want);
                CallbackHandle::inert()
            }
            Decision::Never => {
                crate::fault::drop_then_raise((held, keep));
                CallbackHandle::inert()
            }
            Decision::Later(id, flag) => {
                crate::fault::drop_then_raise(keep);
                CallbackHandle::new(self.callback_host(), id, flag)
            }
        }
    }

    /// Registers a wait with a matcher (see `Registry::add`).
    fn wait_matching<O: Send + 'static>(
        &self,
        matcher: impl Matcher<T, O> + 'static,
        on_close: fn() -> Outcome<O>,
    ) -> Wait<O> {
        let (slot, key) = self.shared.act(|st, fx| {
            st.waits.add(
                matcher,
                (&st.value, st.version, st.closed),
                on_close,
                &|| self.weak_host(),
                &mut fx.gone,
            )
        });
        self.wait_on(slot, key)
    }

    /// What a new wait slot holds to deregister through (see `Slot::host`).
    fn weak_host(&self) -> Weak<dyn WaitHost> {
        let weak: Weak<Shared<T>> = Arc::downgrade(&self.shared);
        weak
    }

    fn wait_on<O>(&self, slot: Arc<crate::slot::Slot<O>>, key: Option<usize>) -> Wait<O> {
        let derived = (key.is_some() && self.shared.is_derived()).then(|| {
            let host: Arc<dyn WaitHost> = self.shared.clone();
            host
        });
        Wait::new(slot, key, derived)
    }

    /// Completes with the first value equal to `value`: the current value (unless
    /// [`skip_current`](Wait::skip_current)), then the new value of each later transition, in
    /// order, even if the value has moved on by the time the waiter runs.
    ///
    /// The wait is registered now: nothing between this call and the `.await` (or
    /// `.blocking()`) is missed. Equality waits are compared in place on every `set`, densely
    /// packed: the cheapest kind of wait.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock. A panic of `T`'s `PartialEq` or
    /// `Clone` while this wait is tested reaches this wait's finisher and no one else.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let wait = value.wait_for(1);
    /// value.set(1);
    /// value.set(2);
    /// assert_eq!(wait.blocking(), Ok(1));
    /// ```
    pub fn wait_for(&self, value: T) -> Wait<T> {
        let (slot, key) = self.shared.act(|st, fx| {
            let host = &|| self.weak_host();
            st.waits
                .add_eq(value, &st.value, st.closed, host, &mut fx.gone)
        });
        self.wait_on(slot, key)
    }

    /// Completes with the first value not equal to `value` (see
    /// [`wait_for`](ValueReader::wait_for) for "first").
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new("idle");
    /// let wait = value.wait_for_not("idle");
    /// value.set("busy");
    /// value.set("idle");
    /// assert_eq!(wait.blocking(), Ok("busy"));
    /// ```
    pub fn wait_for_not(&self, value: T) -> Wait<T> {
        self.wait_matching(
            move |_: Option<&T>, new: &T, _| (*new != value).then(|| new.clone()),
            || Outcome::Closed,
        )
    }

    /// Completes with the first value for which `pred` holds (see
    /// [`wait_for`](ValueReader::wait_for) for "first").
    ///
    /// `pred` runs under the value's lock, on the thread that sets the value (and on this one,
    /// for the current value): it must be quick and must not call into the same value.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock; never because of `pred`: if
    /// `pred` panics (or calls into the same value), the panic reaches this wait's finisher
    /// (`.await`, `.blocking*`) and no one else.
    ///
    /// # Examples
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
        self.wait_matching(
            move |_: Option<&T>, new: &T, _| pred(new).then(|| new.clone()),
            || Outcome::Closed,
        )
    }

    /// Completes with the first `Some(u)` that `f` returns for a value (see
    /// [`wait_for`](ValueReader::wait_for) for "first").
    ///
    /// `f` runs under the value's lock, like [`wait_until`](ValueReader::wait_until)'s
    /// predicate, with the same rules and the same handling of panics. Its result goes typed
    /// into the wait: nothing is boxed.
    ///
    /// # Panics
    ///
    /// As [`wait_until`](ValueReader::wait_until).
    ///
    /// # Examples
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
        self.wait_matching(move |_: Option<&T>, new: &T, _| f(new), || Outcome::Closed)
    }

    /// Completes with the first transition `(old, new)` after this call for which
    /// `pred(old, new)` holds. The current value never counts.
    ///
    /// `pred` runs under the value's lock, like [`wait_until`](ValueReader::wait_until)'s
    /// predicate, with the same rules and the same handling of panics.
    ///
    /// # Panics
    ///
    /// As [`wait_until`](ValueReader::wait_until).
    ///
    /// # Examples
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
        self.wait_matching(
            move |old: Option<&T>, new: &T, version| {
                let old = old?;
                pred(old, new).then(|| Transition {
                    old: old.clone(),
                    new: new.clone(),
                    version,
                })
            },
            || Outcome::Closed,
        )
    }

    /// Completes with the new value of the next transition. The current value never counts.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let change = value.wait_for_change();
    /// value.set(5);
    /// value.set(6);
    /// assert_eq!(change.blocking(), Ok(5));
    /// ```
    pub fn wait_for_change(&self) -> Wait<T> {
        self.wait_matching(
            |old: Option<&T>, new: &T, _| old.map(|_| new.clone()),
            || Outcome::Closed,
        )
    }

    /// Completes with `Ok(())` once the value is closed (at once if it already is): close as an
    /// event. A [`Wait`] like the others — every finisher, cancel-safe, counted by
    /// [`watcher_count`](ValueReader::watcher_count) while pending — that no transition
    /// completes.
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let ended = value.closed();
    /// value.set(1);
    /// assert!(!ended.is_ready());
    /// drop(value); // the last handle: closes the value
    /// assert_eq!(ended.blocking(), Ok(()));
    /// ```
    pub fn closed(&self) -> Wait<()> {
        self.wait_matching(|_: Option<&T>, _: &T, _| None, || Outcome::Value(()))
    }

    /// A derived value: `f` of this value, kept up to date, losing nothing.
    ///
    /// It starts as `f(&current)`, taken atomically with its registration (no transition of
    /// this value falls between). Then, for every transition of this value, in this value's
    /// order, `f(&new)` is offered to the derived value: a transition of its own when it
    /// differs from the derived value's current value, nothing when equal. Waits,
    /// subscriptions and callbacks on the derived value see every value it took, in order,
    /// with the same guarantees as on any value — a wait for a projected state this value
    /// passed through only briefly still completes.
    ///
    /// With a single setter, the derived value's transitions (and its own callbacks, and the
    /// values derived from it) have been made when this value's `set` returns, as callbacks
    /// have. It closes when this value closes. It lives while anything can observe it (a
    /// reader, a wait, a subscription or a callback on it, or a value derived from it); when
    /// the last goes it is unregistered and `f` stops running. It does not count in this
    /// value's [`watcher_count`](ValueReader::watcher_count).
    ///
    /// `f` is user code that runs on a setter's thread, after this value's lock is released
    /// but under the derived value's own, with the rules of a wait predicate: quick, and not
    /// calling into the derived value.
    ///
    /// # Panics
    ///
    /// If `f` panics on the current value here: the panic reaches this call and nothing is
    /// registered. A panic of `f` for a later transition does not reach the setter: the
    /// derived value closes (its waits end with [`Error::Closed`](crate::Error::Closed)).
    ///
    /// # Examples
    ///
    /// ```
    /// use keepwatch::ValueWatcher;
    ///
    /// let bytes = ValueWatcher::new(0u64);
    /// let full = bytes.map(|n| *n >= 100);
    /// let was_full = full.wait_for(true);
    /// bytes.set(150); // full for a moment…
    /// bytes.set(20); // …and drained at once
    /// assert_eq!(was_full.blocking(), Ok(true)); // still seen
    /// assert_eq!(full.get(), false);
    /// ```
    pub fn map<U, F>(&self, f: F) -> ValueReader<U>
    where
        U: Clone + PartialEq + Send + 'static,
        F: Fn(&T) -> U + Send + Sync + 'static,
    {
        ValueReader::from_shared(derive::map(&self.shared, f))
    }

    /// A derived pair of this value and `other`.
    ///
    /// It starts as both current values. Then every transition of either source offers the
    /// pair of that source's new value and the other source's latest value as the derived
    /// value has seen it. The derived history is a merge of the two sources' histories that
    /// keeps each source's own order; each source transition offers exactly one pair (a
    /// transition of the pair unless it equals the pair's current value).
    ///
    /// What a pair can and cannot promise about two values that change independently on
    /// different threads: each component goes through exactly its source's values, in its
    /// source's order, none skipped; but there is no global clock between two values, so a
    /// pair `(a, b)` says that the derived value took `a` while its latest `b` was `b` — not
    /// that `a` and `b` were ever current at the same instant. Two pairs derived from the same
    /// sources on different threads may interleave the sources' histories differently.
    ///
    /// It closes when both sources have closed. Otherwise it is like [`map`](ValueReader::map):
    /// lossless, ordered, alive while observable. `T` and `U` are cloned under the pair's
    /// lock; a panicking `Clone` there closes the pair.
    ///
    /// # Panics
    ///
    /// If `other` is this very value (zip it with a [`map`](ValueReader::map) of itself
    /// instead); if a `Clone` of either current value panics here (nothing is registered).
    ///
    /// # Examples
    ///
    /// ```
    /// use keepwatch::ValueWatcher;
    ///
    /// let link = ValueWatcher::new("down");
    /// let config = ValueWatcher::new(1);
    /// let both = link.zip(&config.reader());
    /// let ready = both.wait_for(("up", 2));
    /// link.set("up");
    /// config.set(2);
    /// assert_eq!(ready.blocking(), Ok(("up", 2)));
    /// ```
    pub fn zip<U>(&self, other: &ValueReader<U>) -> ValueReader<(T, U)>
    where
        U: Clone + PartialEq + Send + 'static,
    {
        ValueReader::from_shared(derive::zip(&self.shared, &other.shared))
    }
}

impl<U: Clone + PartialEq + Send + 'static> ValueReader<Option<U>> {
    /// On a value of `Option<U>`: completes with the first `Some(u)`, as `u` (see
    /// [`wait_for`](ValueReader::wait_for) for "first").
    ///
    /// # Panics
    ///
    /// If called from code that runs under this value's lock.
    ///
    /// # Examples
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

impl<T> Clone for ValueReader<T> {
    fn clone(&self) -> Self {
        ValueReader {
            shared: self.shared.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(&self.shared, f.debug_struct("ValueReader"))
    }
}

/// The fields `Debug` shows for a value's handle: the value, its version, whether it is
/// closed. `T`'s `Debug` runs under the value's lock; formatting a handle from code that already
/// runs under that lock (a `T` whose `Debug` prints a handle to its own value) shows the value
/// as locked instead of panicking.
pub(crate) fn debug_fields<T: fmt::Debug>(
    shared: &Shared<T>,
    mut out: fmt::DebugStruct<'_, '_>,
) -> fmt::Result {
    if shared.held_here() {
        return out
            .field("value", &format_args!("<locked>"))
            .finish_non_exhaustive();
    }
    shared.locked(|st| {
        out.field("value", &st.value)
            .field("version", &st.version)
            .field("closed", &st.closed)
            .finish()
    })
}
