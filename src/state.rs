//! The locked state of a value, where the one global order is decided: every transition is
//! stored, numbered, logged for subscriptions, tested against pending waits and queued for
//! callbacks in one critical section. Waking and user callbacks happen after it, outside.

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::callback::{self, Callback, Callbacks};
use crate::log::Log;
use crate::loom::{self, AtomicUsize, Mutex, Ordering};
use crate::sink::Wakes;
use crate::waits::{Cond, Outcome, Payload, Waits};
use crate::Transition;

/// What every handle of a value points to.
pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    /// Live `ValueWatcher` handles: the value closes when the last one goes.
    pub(crate) handles: AtomicUsize,
    /// Bumped (after the lock is released, before the wakes) by every critical section that
    /// woke someone: a thread about to park spins on it briefly instead of taking the lock
    /// (see `blocking::block_on`). A hint only: readiness is always decided under the lock.
    epoch: AtomicUsize,
}

/// The value and everything that watches it.
pub(crate) struct State<T> {
    pub(crate) value: T,
    pub(crate) version: u64,
    pub(crate) closed: bool,
    pub(crate) log: Log<T>,
    pub(crate) waits: Waits<T>,
    pub(crate) callbacks: Callbacks<T>,
}

/// What a critical section leaves to do once the lock is released: wake, drop, dispatch.
pub(crate) struct Effects<T> {
    pub(crate) wakes: Wakes,
    /// Values the state let go of, dropped outside the lock (their `Drop` is user code).
    pub(crate) spare: [Option<T>; 2],
    /// Callbacks let go of by a close.
    pub(crate) callbacks: Option<Vec<Callback<T>>>,
    /// Whether this thread must run the callback dispatch.
    pub(crate) dispatch: bool,
    /// MUTANT (loom-tests/mutants.sh): a transition to log after the lock is released.
    #[cfg(keepwatch_mutant = "log_outside_lock")]
    pub(crate) late_log: Option<(T, T, u64)>,
}

impl<T> Default for Effects<T> {
    fn default() -> Self {
        Effects {
            wakes: Wakes::None,
            spare: [None, None],
            callbacks: None,
            dispatch: false,
            #[cfg(keepwatch_mutant = "log_outside_lock")]
            late_log: None,
        }
    }
}

const REENTRANT: &str = "keepwatch: re-entrant call into a ValueWatcher from code that runs \
     under its lock (a `with`, `set_if` or `update` closure, a wait predicate, or T's \
     `Clone`/`PartialEq`); such code must not call into the same value";

impl<T: Clone + PartialEq + Send + 'static> Shared<T> {
    pub(crate) fn new(value: T) -> Self {
        Shared {
            state: Mutex::new(State {
                value,
                version: 0,
                closed: false,
                log: Log::new(),
                waits: Waits::new(),
                callbacks: Callbacks::new(),
            }),
            handles: AtomicUsize::new(1),
            epoch: AtomicUsize::new(0),
        }
    }

    /// Runs `f` under the lock. A call from code that already runs under this value's lock
    /// (a predicate calling back into its own value) panics with a clear message instead of
    /// deadlocking.
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> R {
        let me = self as *const Self as usize;
        let outer = loom::held();
        // The innermost lock is checked on every call; the enclosing ones only when this call
        // comes from another value's closure (A's closure calls B, whose closure calls A).
        if outer == me || (outer != 0 && loom::enclosing_holds(me)) {
            panic!("{REENTRANT}");
        }
        let mut state = self.state.lock();
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
        f(&mut state)
    }

    /// The wake counter a blocked thread spins on before it parks.
    pub(crate) fn epoch(&self) -> usize {
        self.epoch.load(Ordering::Acquire)
    }

    /// Runs `f` under the lock with a fresh [`Effects`], then carries them out after
    /// releasing it.
    #[inline]
    pub(crate) fn act<R>(&self, f: impl FnOnce(&mut State<T>, &mut Effects<T>) -> R) -> R {
        let mut effects = Effects::default();
        let result = self.locked(|st| f(st, &mut effects));
        effects.finish(self);
        result
    }
}

impl<T: Clone + PartialEq + Send + 'static> Effects<T> {
    /// Wakes the collected sinks, drops what the state let go of, then runs the callback
    /// dispatch if this thread became the dispatcher. Call only after releasing the lock.
    ///
    /// A panic from a `Drop` of the user's is resumed only once everything else is done.
    #[inline]
    pub(crate) fn finish(self, shared: &Shared<T>) {
        let Effects {
            wakes,
            spare,
            callbacks,
            dispatch,
            #[cfg(keepwatch_mutant = "log_outside_lock")]
            late_log,
        } = self;
        // Before the wakes, the wake counter moves: a spinning thread sees it and polls without
        // parking. Matched arm by arm so that the common `None` costs no drop call.
        match wakes {
            // Nothing to drop: forgetting `None` skips the drop call the compiler would
            // otherwise emit for a value it does not know is empty.
            Wakes::None => std::mem::forget(wakes),
            wakes => {
                shared.epoch.fetch_add(1, Ordering::Release);
                wakes.wake_all();
            }
        }
        #[cfg(keepwatch_mutant = "log_outside_lock")]
        if let Some((old, new, version)) = late_log {
            let mut wakes = Wakes::None;
            let spare = shared.locked(|st| st.log.append(old, new, version, &mut wakes));
            wakes.wake_all();
            drop(spare);
        }
        // The common case (a `T` without drop glue, no callbacks let go of) has nothing to drop:
        // skip the unwind frame and the empty `Vec`'s drop on the `set` fast path.
        let dropped = match callbacks {
            None if !std::mem::needs_drop::<T>() => Ok(()),
            callbacks => catch_unwind(AssertUnwindSafe(move || {
                drop(spare);
                drop(callbacks);
            })),
        };
        if dispatch {
            callback::dispatch(shared);
        }
        if let Err(payload) = dropped {
            resume_unwind(payload);
        }
    }
}

impl<T: Clone + PartialEq> State<T> {
    /// Makes `new` the value: numbers the transition, logs it for the subscriptions, completes
    /// the waits it matches and queues it for the callbacks. The caller has checked that the
    /// value is open and that `new` differs from it.
    pub(crate) fn transition(&mut self, new: T, fx: &mut Effects<T>) {
        // Clone first: a panicking `Clone` must leave the value as it was.
        let logged = self.log.has_readers().then(|| new.clone());
        let queued = self
            .callbacks
            .any()
            .then(|| (self.value.clone(), new.clone()));
        let old = self.store(new);
        let version = self.version;
        self.waits
            .on_transition(&old, &self.value, version, &mut fx.wakes);
        if let Some((old, new)) = queued {
            fx.dispatch |= self.callbacks.enqueue(Transition { old, new, version });
        }
        // MUTANT (loom-tests/mutants.sh): logs the transition in a second critical section,
        // after the lock is released, as the Python reference does.
        #[cfg(keepwatch_mutant = "log_outside_lock")]
        let logged: Option<T> = logged.and_then(|new| {
            fx.late_log = Some((old.clone(), new, version));
            None
        });
        fx.spare = match logged {
            Some(new) => self.log.append(old, new, version, &mut fx.wakes),
            None => [Some(old), None],
        };
    }

    /// Whether anything watches the value: a subscription, a pending wait or a callback.
    #[inline]
    pub(crate) fn watched(&self) -> bool {
        self.log.has_readers() || self.waits.any() || self.callbacks.any()
    }

    /// Whether setting `new` is a transition: the value is open and `new` differs.
    #[inline]
    pub(crate) fn changes_to(&self, new: &T) -> bool {
        !self.closed && self.value != *new
    }

    /// Stores `new` and counts the transition; returns the value it replaced. The caller has
    /// checked [`changes_to`](State::changes_to) and does whatever else the transition needs.
    #[inline]
    pub(crate) fn store(&mut self, new: T) -> T {
        self.version += 1;
        std::mem::replace(&mut self.value, new)
    }

    /// `set`: the transition to `new` if the value is open and `new` differs.
    pub(crate) fn set(&mut self, new: T, fx: &mut Effects<T>) -> bool {
        if !self.changes_to(&new) {
            fx.spare[0] = Some(new);
            return false;
        }
        self.transition(new, fx);
        true
    }

    /// Closes the value: ends every pending wait with `Closed`, wakes every subscription so it
    /// sees the end, and drops the callbacks unless a dispatch is still running.
    pub(crate) fn close(&mut self, fx: &mut Effects<T>) {
        if self.closed {
            return;
        }
        self.closed = true;
        #[cfg(not(keepwatch_mutant = "close_no_wake"))]
        self.waits.close(&mut fx.wakes);
        // MUTANT (loom-tests/mutants.sh): ends the pending waits but drops their sinks unwoken.
        #[cfg(keepwatch_mutant = "close_no_wake")]
        self.waits.close(&mut Wakes::None);
        self.log.wake_all(&mut fx.wakes);
        fx.callbacks = Some(self.callbacks.clear_if_idle());
    }

    /// Registers a wait for `cond`.
    pub(crate) fn add_wait(&mut self, cond: Cond<T>) -> usize {
        self.waits.add(cond, &self.value, self.version, self.closed)
    }
}

/// How a finished wait's outcome reaches its `Wait<O>`, with `O` erased.
pub(crate) enum Delivery {
    /// The value was written into the waiter's slot.
    Filled,
    /// A `wait_map` result, boxed.
    Boxed(Box<dyn std::any::Any + Send>),
    /// The value closed first.
    Closed,
    /// The predicate panicked: resume this in the waiter.
    Panicked(Payload),
}

impl<T: Send + 'static> Outcome<T> {
    /// Moves the outcome into `out`, which is the waiter's `Option<O>`.
    pub(crate) fn deliver(self, out: &mut dyn std::any::Any) -> Delivery {
        match self {
            Outcome::Value(value) => fill(out, value),
            Outcome::Transition(transition) => fill(out, transition),
            Outcome::Mapped(boxed) => Delivery::Boxed(boxed),
            Outcome::Panicked(payload) => Delivery::Panicked(payload),
            Outcome::Closed => Delivery::Closed,
        }
    }
}

fn fill<V: Send + 'static>(out: &mut dyn std::any::Any, value: V) -> Delivery {
    match out.downcast_mut::<Option<V>>() {
        Some(slot) => {
            *slot = Some(value);
            Delivery::Filled
        }
        None => Delivery::Boxed(Box::new(value)),
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}
