//! The locked state of a value, where the one global order is decided: every transition is
//! stored, numbered, logged for subscriptions, tested against pending waits and queued for
//! callbacks in one critical section. `Effects` carries out the rest after the lock is
//! released — wakes, drops of user values, the callback dispatch — on every path, unwinding
//! included.

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::callback::{Callback, CallbackHost, Callbacks, SourceLink, Step};
use crate::fault::{self, Panics};
use crate::lock::ValueLock;
use crate::log::Log;
use crate::loom::{AtomicUsize, Ordering};
use crate::registry::{Gone, Registry};
use crate::sink::Wakes;
use crate::slab::Bin;
use crate::Transition;

/// What every handle of a value points to.
pub(crate) struct Shared<T> {
    state: ValueLock<State<T>>,
    /// Live `ValueWatcher` handles: the value closes when the last one goes. A derived value
    /// has none and never closes this way.
    pub(crate) handles: AtomicUsize,
    /// Counts transitions and the close, written under the lock (by its holder only), read
    /// without it: a thread about to park on a subscription spins on it briefly instead of
    /// taking the lock. A hint only: readiness is always decided under the lock.
    events: AtomicUsize,
    /// A derived value's registrations with its sources, unregistered when it is dropped.
    sources: Vec<SourceLink>,
    /// A derived value's sources that have not closed yet: it closes when none is left.
    pub(crate) open_sources: AtomicUsize,
}

/// The value and everything that watches it.
pub(crate) struct State<T> {
    pub(crate) value: T,
    pub(crate) version: u64,
    pub(crate) closed: bool,
    pub(crate) log: Log<T>,
    pub(crate) waits: Registry<T>,
    pub(crate) callbacks: Callbacks<T>,
}

/// Clones a transition needs before the value changes, held here so that a panicking `Clone`
/// leaves the earlier clones to be dropped outside the lock.
struct Prepared<T> {
    /// `new`, for the subscription log.
    logged: Option<T>,
    /// `(old, new)`, for the callbacks.
    queued_old: Option<T>,
    queued_new: Option<T>,
}

impl<T> Default for Prepared<T> {
    fn default() -> Self {
        Prepared {
            logged: None,
            queued_old: None,
            queued_new: None,
        }
    }
}

/// The callback dispatch loop, given its first step.
type Dispatch<T> = fn(&Shared<T>, Step<T>);

/// What a critical section leaves to do once the lock is released: wake, drop, dispatch. It
/// carries them out in [`finish`](Effects::finish), or in its `Drop` if the critical section
/// unwound (a user closure panicked), so no wake-up is ever lost and no user value is dropped
/// under the lock.
pub(crate) struct Effects<'a, T> {
    shared: &'a Shared<T>,
    pub(crate) wakes: Wakes,
    /// User values let go of: dropped outside the lock.
    pub(crate) values: Bin<T>,
    /// Waits let go of.
    pub(crate) gone: Bin<Gone<T>>,
    /// Callbacks let go of (by a close).
    pub(crate) callbacks: Vec<Callback<T>>,
    prepared: Prepared<T>,
    /// The callback dispatch, if this thread became the dispatcher (a function pointer, so
    /// that `Effects` needs no bounds on `T`).
    dispatch: Option<Dispatch<T>>,
    /// The dispatcher's first step, taken in the critical section that made it the dispatcher
    /// (one lock round fewer per transition for a single setter).
    first: Step<T>,
    done: bool,
}

impl<'a, T> Effects<'a, T> {
    pub(crate) fn new(shared: &'a Shared<T>) -> Self {
        Effects {
            shared,
            wakes: Wakes::default(),
            values: Bin::default(),
            gone: Bin::default(),
            callbacks: Vec::new(),
            prepared: Prepared::default(),
            dispatch: None,
            first: None,
            done: false,
        }
    }

    /// Carries out the effects (call after releasing the lock), then re-raises the first panic
    /// of a user `Drop`, if any (see [`carry_out`](Effects::carry_out)). Takes `&mut self`, not
    /// `self`: `Effects` is a few hundred bytes, and moving it would copy them on every `set`.
    #[inline]
    pub(crate) fn finish(&mut self) {
        self.done = true;
        if !self.is_idle() {
            self.carry_out().raise();
        }
    }

    /// Whether there is nothing to carry out (the common `set` with nobody woken).
    #[inline]
    fn is_idle(&self) -> bool {
        self.wakes.is_empty()
            && self.values.is_empty()
            && self.gone.is_empty()
            && self.callbacks.capacity() == 0
            && self.dispatch.is_none()
            && self.prepared.logged.is_none()
            && self.prepared.queued_old.is_none()
            && self.prepared.queued_new.is_none()
    }

    /// Wakes the collected sinks, drops what the state let go of, then runs the callback
    /// dispatch if this thread became the dispatcher. Every step runs even if one panics: a
    /// waker's or a callback's panic is contained (they belong to other parties); the first
    /// panic of a `Drop` is returned.
    fn carry_out(&mut self) -> Panics {
        let mut panics = Panics::default();
        self.wakes.wake_all();
        self.values.drop_all(&mut panics);
        self.gone.drop_all(&mut panics);
        let prepared = &mut self.prepared;
        if prepared.logged.is_some()
            || prepared.queued_old.is_some()
            || prepared.queued_new.is_some()
        {
            let prepared = std::mem::take(prepared);
            panics.run(move || drop(prepared));
        }
        if self.callbacks.capacity() != 0 {
            for callback in std::mem::take(&mut self.callbacks) {
                panics.run(move || drop(callback));
            }
        }
        if let Some(dispatch) = self.dispatch.take() {
            let first = self.first.take();
            panics.run(|| dispatch(self.shared, first));
        }
        panics
    }

    /// Runs user code `f` on `value` under the lock. If it panics, `value` is put with what to
    /// drop after the lock, and the panic goes on.
    #[inline]
    pub(crate) fn guard<R>(&mut self, value: T, f: impl FnOnce(&T) -> R) -> (T, R) {
        match catch_unwind(AssertUnwindSafe(|| f(&value))) {
            Ok(r) => (value, r),
            Err(payload) => {
                self.values.push(value);
                resume_unwind(payload)
            }
        }
    }
}

impl<T> Drop for Effects<'_, T> {
    /// The critical section unwound: carry out what it collected, containing everything (this
    /// thread is already unwinding).
    fn drop(&mut self) {
        if !self.done {
            let panics = self.carry_out();
            panics.raise();
        }
    }
}

impl<T> Shared<T> {
    pub(crate) fn new(value: T) -> Self {
        Shared::with_sources(value, 1, Vec::new(), false)
    }

    /// A value with `handles` `ValueWatcher`s and the given source links (a derived value).
    pub(crate) fn with_sources(
        value: T,
        handles: usize,
        sources: Vec<SourceLink>,
        closed: bool,
    ) -> Self {
        let open = sources.len();
        Shared {
            state: ValueLock::new(State {
                value,
                version: 0,
                closed,
                log: Log::new(),
                waits: Registry::new(),
                callbacks: Callbacks::new(),
            }),
            handles: AtomicUsize::new(handles),
            events: AtomicUsize::new(0),
            sources,
            open_sources: AtomicUsize::new(open),
        }
    }

    /// Runs `f` under the lock (see [`ValueLock::with`] for the panics that replace deadlocks).
    #[inline]
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> R {
        self.state.with(f)
    }

    /// Whether this thread holds the value's lock.
    pub(crate) fn held_here(&self) -> bool {
        self.state.held_here()
    }

    /// Whether this is a derived value.
    pub(crate) fn is_derived(&self) -> bool {
        !self.sources.is_empty()
    }

    /// The event counter a thread blocked on a subscription spins on before it parks.
    pub(crate) fn events(&self) -> usize {
        self.events.load(Ordering::Acquire)
    }

    /// Counts a transition or the close. Call only under the lock: its holder is the only
    /// writer, so a load and a store do (no read-modify-write on the `set` path).
    fn note_event(&self) {
        let n = self.events.load(Ordering::Relaxed);
        self.events.store(n.wrapping_add(1), Ordering::Release);
    }

    /// Runs `f` under the lock with fresh [`Effects`], then carries them out after releasing
    /// it (also if `f` unwinds).
    #[inline]
    pub(crate) fn act<R>(&self, f: impl FnOnce(&mut State<T>, &mut Effects<'_, T>) -> R) -> R {
        let mut fx = Effects::new(self);
        let result = self.state.with(|st| f(st, &mut fx));
        fx.finish();
        // Everything is taken out now, storage included: skip the drop glue (it costs a few
        // percent of a `set`).
        std::mem::forget(fx);
        result
    }

    /// Closes the value (idempotent).
    pub(crate) fn close(&self) {
        self.act(|st, fx| st.close(fx))
    }
}

impl<T> State<T> {
    /// Closes the value: ends every pending wait with `Closed`, wakes every subscription so it
    /// sees the end, and lets go of the callbacks unless a dispatch is still running (the
    /// dispatcher drops them when it has delivered what was queued).
    pub(crate) fn close(&mut self, fx: &mut Effects<'_, T>) {
        if self.closed {
            return;
        }
        self.closed = true;
        fx.shared.note_event();
        self.waits.close(&mut fx.wakes, &mut fx.gone);
        self.log.wake_all(&mut fx.wakes);
        fx.callbacks = self.callbacks.clear_if_idle();
    }

    /// Whether anything watches the value: a subscription, a pending wait or a callback.
    #[inline]
    pub(crate) fn watched(&self) -> bool {
        self.log.has_readers() || self.waits.any() || self.callbacks.any()
    }

    /// Stores `new` and counts the transition; returns the value it replaced.
    #[inline]
    pub(crate) fn store(&mut self, new: T) -> T {
        self.version += 1;
        std::mem::replace(&mut self.value, new)
    }
}

impl<T: Clone + PartialEq + Send + 'static> State<T> {
    /// Whether setting `new` is a transition: the value is open and `new` differs.
    #[inline]
    pub(crate) fn changes_to(&self, new: &T) -> bool {
        !self.closed && self.value != *new
    }

    /// `set`: the transition to `new` if the value is open and `new` differs.
    pub(crate) fn set(&mut self, new: T, fx: &mut Effects<'_, T>) -> bool {
        let (new, changes) = fx.guard(new, |new| self.changes_to(new));
        if !changes {
            fx.values.push(new);
            return false;
        }
        self.transition(new, fx);
        true
    }

    /// Makes `new` the value; the caller has checked that it is a transition.
    pub(crate) fn transition(&mut self, new: T, fx: &mut Effects<'_, T>) {
        // Clone first: a panicking `Clone` leaves the value as it was, and the clones made
        // before it are dropped after the lock.
        let mut prepared = Prepared::default();
        let ready = catch_unwind(AssertUnwindSafe(|| {
            self.prepare(&self.value, &new, &mut prepared)
        }));
        fx.prepared = prepared;
        if let Err(payload) = ready {
            fx.values.push(new);
            resume_unwind(payload);
        }
        let old = self.store(new);
        self.commit(old, fx);
    }

    /// Changes the value in place with `f`: a transition if it then differs. A panic in `f`
    /// (or in `T`'s `Clone` or `PartialEq` here) restores the value and goes on to the caller.
    pub(crate) fn modify(&mut self, f: impl FnOnce(&mut T), fx: &mut Effects<'_, T>) -> bool {
        let before = self.value.clone();
        let changed = catch_unwind(AssertUnwindSafe(|| {
            f(&mut self.value);
            self.value != before
        }));
        match changed {
            Ok(false) => {
                fx.values.push(before);
                false
            }
            Ok(true) => {
                let mut prepared = Prepared::default();
                let ready = catch_unwind(AssertUnwindSafe(|| {
                    self.prepare(&before, &self.value, &mut prepared)
                }));
                fx.prepared = prepared;
                if let Err(payload) = ready {
                    fx.values.push(std::mem::replace(&mut self.value, before));
                    resume_unwind(payload);
                }
                self.version += 1;
                self.commit(before, fx);
                true
            }
            Err(payload) => {
                fx.values.push(std::mem::replace(&mut self.value, before));
                resume_unwind(payload)
            }
        }
    }

    /// The clones the transition `old → new` needs, made before anything changes.
    fn prepare(&self, old: &T, new: &T, prepared: &mut Prepared<T>) {
        if self.log.has_readers() {
            prepared.logged = Some(new.clone());
        }
        if self.callbacks.any() {
            prepared.queued_old = Some(old.clone());
            prepared.queued_new = Some(new.clone());
        }
    }

    /// The rest of a transition, once the new value is stored and counted: logs it, completes
    /// the waits it matches, queues it for the callbacks. No user code runs here but the wait
    /// predicates, whose panics go to their own waits.
    fn commit(&mut self, old: T, fx: &mut Effects<'_, T>) {
        let version = self.version;
        let prepared = std::mem::take(&mut fx.prepared);
        self.waits
            .offer(&old, &self.value, version, &mut fx.wakes, &mut fx.gone);
        if let (Some(old), Some(new)) = (prepared.queued_old, prepared.queued_new) {
            if self.callbacks.enqueue(Transition { old, new, version }) {
                // This thread dispatches: take the first step now, under this lock.
                let (first, spent) = self.callbacks.step(Vec::new(), self.closed);
                fx.callbacks.extend(spent);
                fx.first = first;
                fx.dispatch = Some(Shared::<T>::dispatch);
            }
        }
        match prepared.logged {
            Some(new) => {
                self.log
                    .append(old, new, version, &mut fx.wakes, &mut fx.values);
                fx.shared.note_event();
            }
            None => fx.values.push(old),
        }
    }
}

impl<T: Clone + PartialEq + Send + 'static> Shared<T> {
    /// Runs the queued callbacks until the queue is empty, starting with `first` (taken when
    /// this thread became the dispatcher). Called, outside the lock, by that setter.
    ///
    /// Callbacks' panics are contained where they run. A panic while dropping a dispatched
    /// transition or a spent callback (a `Drop` impl of the user's) is held until the queue is
    /// drained, then re-raised. If anything unwinds through the loop, a guard gives the list
    /// and the dispatch flag back, so the next setter takes over: the flag is always released.
    pub(crate) fn dispatch(&self, first: Step<T>) {
        struct Dispatching<'a, T> {
            shared: &'a Shared<T>,
            list: Vec<Callback<T>>,
            armed: bool,
        }
        impl<T> Drop for Dispatching<'_, T> {
            fn drop(&mut self) {
                if self.armed {
                    let list = std::mem::take(&mut self.list);
                    let spent = self
                        .shared
                        .locked(|st| st.callbacks.abandon(list, st.closed));
                    fault::contain(move || drop(spent));
                }
            }
        }
        let mut run = Dispatching {
            shared: self,
            list: Vec::new(),
            armed: true,
        };
        let mut panics = Panics::default();
        let mut next = first;
        while let Some((transition, list)) = next {
            run.list = list;
            for callback in &mut run.list {
                callback.run(&transition);
            }
            panics.run(move || drop(transition));
            let ran = std::mem::take(&mut run.list);
            let (step, spent) = self.locked(|st| st.callbacks.step(ran, st.closed));
            for callback in spent {
                panics.run(move || drop(callback));
            }
            next = step;
        }
        run.armed = false;
        panics.raise();
    }
}

impl<T: Send> CallbackHost for Shared<T> {
    fn cancel(&self, id: u64) {
        // From code under this value's lock (a derived value dropped inside a predicate),
        // removing would re-enter: the callback is flagged and the next dispatch prunes it.
        if self.held_here() {
            return;
        }
        let removed = self.locked(|st| st.callbacks.remove(id));
        fault::drop_then_raise(removed);
    }
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}
