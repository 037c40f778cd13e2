//! `Wait`, the one-shot wait every `wait_*` method (and `closed`) returns: its slot, its
//! registration with the value, and the ways to finish it.

use std::fmt;
use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::blocking::{finishers, Pollable};
use crate::coop;
use crate::loom::Arc;
use crate::sink::{Registrar, Waiter};
use crate::slot::{Outcome, Slot, WaitHost};
use crate::state::{Effects, Shared};
use crate::Error;

impl<T: Send> WaitHost for Shared<T> {
    fn cancel(&self, key: usize, id: usize) {
        self.act(|st, fx: &mut Effects<'_, T>| st.waits.cancel(key, id, &mut fx.gone));
    }

    fn skip_first(&self, key: usize, id: usize) {
        self.locked(|st| st.waits.skip_first(key, id));
    }
}

/// A registered wait for the first value (or transition) that matches, returned by every
/// `wait_*` method of [`ValueReader`](crate::ValueReader) (and so of
/// [`ValueWatcher`](crate::ValueWatcher)), and by `closed`.
///
/// It is registered when it is created, so nothing that happens before it is awaited is
/// missed, and it completes with the first match **even if the value has moved on** by then.
/// It is deregistered when it completes or is dropped: dropping it (cancelling, timing out)
/// never leaks a registration. It does not keep the value open.
///
/// Finish it in one of two ways:
/// - `.await` it (it is a [`Future`]) on any executor, or with a limit:
///   [`timeout`](Wait::timeout);
/// - block an OS thread on it: [`blocking`](Wait::blocking),
///   [`blocking_timeout`](Wait::blocking_timeout), [`blocking_deadline`](Wait::blocking_deadline).
///   Don't block an async runtime's worker thread this way.
///
/// A wait that matched the current value at creation keeps being tested against later
/// transitions until [`skip_current`](Wait::skip_current) can no longer matter — its first
/// later match, its first poll, or its drop — since `skip_current` would make a later match
/// count. Until then its predicate runs on every `set`; finish or drop such a wait promptly.
///
/// # Errors
///
/// [`Error::Closed`] if the value closes before a match; [`Error::TimedOut`] from the timed
/// finishers.
///
/// # Cancel safety
///
/// Dropping a `Wait` at any point (unpolled, after a poll, as the losing branch of a
/// `select!`) deregisters it; if it had matched, the value is dropped with it.
///
/// # Panics
///
/// If the wait's predicate panicked, the finisher panics with the original payload. Polling a
/// `Wait` again after it has completed panics. A panic in the `Drop` of a user value the wait
/// lets go of (its target, its predicate) reaches the call that let go of it: the finisher,
/// or the wait's `Drop` (unless the thread is already unwinding).
///
/// # Examples
///
/// ```
/// use keepwatch::ValueWatcher;
///
/// let value = ValueWatcher::new(0);
/// let wait = value.wait_for(2);
/// let setter = value.clone();
/// std::thread::spawn(move || {
///     setter.set(1);
///     setter.set(2);
///     setter.set(3);
/// });
/// assert_eq!(futures::executor::block_on(wait), Ok(2));
/// ```
#[must_use = "a wait does nothing unless awaited or finished with `blocking`"]
pub struct Wait<O> {
    slot: Arc<Slot<O>>,
    /// This wait's key in the value's registry, while the registry may hold it (the slot knows
    /// the value).
    key: Option<usize>,
    /// A derived value, kept alive while the wait is (a plain value is kept by its
    /// `ValueWatcher`s: once they are gone it is closed and no wait is pending).
    _derived: Option<Arc<dyn WaitHost>>,
    /// Completed: polling again panics.
    done: bool,
    /// Polled by a task before: its waker is likely registered already.
    polled: bool,
}

impl<O> Wait<O> {
    pub(crate) fn new(
        slot: Arc<Slot<O>>,
        key: Option<usize>,
        derived: Option<Arc<dyn WaitHost>>,
    ) -> Self {
        Wait {
            slot,
            key,
            _derived: derived,
            done: false,
            polled: false,
        }
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.slot) as *const () as usize
    }

    /// Deregisters the wait under `key`, if its value is still there.
    fn cancel(&self, key: usize) {
        if let Some(host) = self.slot.host() {
            host.cancel(key, self.id());
        }
    }

    /// The current value at creation does not count: only later transitions do. Transitions
    /// made between the wait's creation and this call still count.
    ///
    /// The predicate may already have run on the current value at creation; that result, or
    /// its panic, is then ignored — so a `wait_*` call never raises its predicate's panic
    /// itself.
    ///
    /// # Panics
    ///
    /// If called from code that runs under the value's lock; if the `Drop` of the match it
    /// lets go of (a user value) panics.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(1);
    /// let again = value.wait_for(1).skip_current();
    /// value.set(2);
    /// value.set(1);
    /// assert_eq!(value.version(), 2);
    /// assert_eq!(again.blocking(), Ok(1));
    /// ```
    pub fn skip_current(self) -> Self {
        if let (Some(key), Some(host)) = (self.key, self.slot.host()) {
            host.skip_first(key, self.id());
        }
        // Later outcomes are filled beside it, never in its place: taking it here races with
        // no setter. Dropped outside every lock.
        crate::fault::drop_then_raise(self.slot.skip_first());
        self
    }

    /// Whether the wait has an outcome ready, so that a finisher would return at once. A hint
    /// for diagnostics: it may turn `true` right after it returned `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let wait = value.wait_for(1);
    /// assert!(!wait.is_ready());
    /// value.set(1);
    /// assert!(wait.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.slot.is_ready()
    }
}

finishers!(
    [impl<O> Wait<O>],
    Result<O, Error>,
    "wait",
    "```\nlet value = keepwatch::ValueWatcher::new(\"a\");\nassert_eq!(value.wait_for(\"a\").blocking(), Ok(\"a\"));\n```",
    "```\nuse std::time::Duration;\n\nlet value = keepwatch::ValueWatcher::new(0);\nlet wait = value.wait_for(1);\nassert_eq!(\n    wait.blocking_timeout(Duration::from_millis(5)),\n    Err(keepwatch::Error::TimedOut)\n);\nassert_eq!(value.watcher_count(), 0);\n```",
    "```\nuse std::time::{Duration, Instant};\n\nlet value = keepwatch::ValueWatcher::new(0);\nlet soon = Instant::now() + Duration::from_millis(5);\nassert!(value.wait_for(1).blocking_deadline(soon).unwrap_err().is_timed_out());\n```",
    "```\nuse std::time::Duration;\n\nlet value = keepwatch::ValueWatcher::new(0);\nlet wait = value.wait_for(0).timeout(Duration::from_secs(1));\nassert_eq!(futures::executor::block_on(wait), Ok(0));\n```"
);

impl<O> Pollable for Wait<O> {
    type Output = Result<O, Error>;

    #[inline]
    fn hint(&self) -> Option<usize> {
        Some(self.slot.is_ready() as usize)
    }

    fn poll_as(&mut self, waiter: Waiter<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "keepwatch: `Wait` polled after it completed");
        let mut registrar = Registrar::new(waiter);
        if !std::mem::replace(&mut self.polled, true) && !self.slot.is_ready() {
            // A task's first poll registers its waker, unless the wait is ready already: clone
            // it before taking the slot's lock rather than after a first look (one lock round
            // instead of two).
            registrar.prepare();
        }
        let taken = match self.slot.poll(&mut registrar) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(taken) => taken,
        };
        // Completed: from here on neither a poll nor the drop touches the registration again,
        // whatever the user code below does.
        self.done = true;
        let key = self.key.take();
        let result = match taken.outcome {
            Outcome::Value(output) => Ok(output),
            Outcome::Closed => Err(Error::Closed),
            Outcome::Panicked(payload) => {
                // The registration and the leftovers go first; then the predicate's panic.
                let mut panics = crate::fault::Panics::default();
                panics.run(|| {
                    if let (false, Some(key)) = (taken.released, key) {
                        self.cancel(key);
                    }
                });
                panics.run(move || drop(taken.rest));
                panics.discard();
                resume_unwind(payload)
            }
        };
        // The match at creation won while the registry still holds the wait: deregister.
        if let (false, Some(key)) = (taken.released, key) {
            self.cancel(key);
        }
        drop(taken.rest);
        Poll::Ready(result)
    }
}

impl<O> Future for Wait<O> {
    type Output = Result<O, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let budget = std::task::ready!(coop::poll_budget(cx));
        let this = self.get_mut();
        let poll = this.poll_as(Waiter::Task(cx.waker()));
        if poll.is_ready() {
            budget.made_progress();
        }
        poll
    }
}

impl<O> Drop for Wait<O> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.cancel(key);
        }
    }
}

impl<O> fmt::Debug for Wait<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("ready", &self.slot.is_ready())
            .field("completed", &self.done)
            .finish_non_exhaustive()
    }
}
