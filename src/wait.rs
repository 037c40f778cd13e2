//! `Wait`, the one-shot wait every `wait_*` method returns, and its finishers: await it, or
//! block a thread on it, with or without a time limit.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::blocking::{block_on, deadline_after, Pollable};
use crate::loom::Arc;
use crate::sink::Waiter;
use crate::state::{Delivery, Shared};
use crate::timeout::Timeout;
use crate::Error;

/// The value side of a [`Wait`], with the value's type erased (a `Wait<O>` does not name the
/// value's type: `wait_map` gives a `Wait<U>` on a `ValueWatcher<T>`).
pub(crate) trait WaitHost: Send + Sync {
    /// If wait `key` has finished, frees it and delivers its outcome (writing a value into
    /// `out`, the waiter's `Option<O>`); otherwise registers `waiter`.
    fn poll_wait(&self, key: usize, waiter: Waiter<'_>, out: &mut dyn Any) -> Poll<Delivery>;
    /// Drops the match on the current value at creation.
    fn skip_current(&self, key: usize);
    /// Deregisters a wait that was dropped before it finished.
    fn cancel(&self, key: usize);
    /// The value's wake counter, which a blocked thread spins on before parking.
    fn epoch(&self) -> usize;
}

impl<T: Clone + PartialEq + Send + 'static> WaitHost for Shared<T> {
    fn poll_wait(&self, key: usize, waiter: Waiter<'_>, out: &mut dyn Any) -> Poll<Delivery> {
        #[cfg(not(keepwatch_mutant = "poll_check_then_register"))]
        let polled = self.locked(|st| st.waits.poll(key, waiter));
        // MUTANT (loom-tests/mutants.sh): checks under one lock, registers under another; a
        // set in between completes the wait while no sink is registered: a lost wake-up.
        #[cfg(keepwatch_mutant = "poll_check_then_register")]
        let polled = self
            .locked(|st| st.waits.poll(key, Waiter::Nobody))
            .map_err(|_| self.locked(|st| st.waits.register_only(key, waiter)));
        match polled {
            Ok(finished) => {
                let delivery = finished.outcome.deliver(out);
                drop(finished.rest);
                Poll::Ready(delivery)
            }
            Err(replaced) => {
                drop(replaced);
                Poll::Pending
            }
        }
    }

    fn skip_current(&self, key: usize) {
        let dropped = self.locked(|st| st.waits.skip_current(key));
        drop(dropped);
    }

    fn cancel(&self, key: usize) {
        let dropped = self.locked(|st| st.waits.cancel(key));
        drop(dropped);
    }

    fn epoch(&self) -> usize {
        Shared::epoch(self)
    }
}

/// A registered wait for the first value (or transition) that matches, returned by every
/// `wait_*` method of [`ValueWatcher`](crate::ValueWatcher).
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
/// `Wait` again after it has completed panics.
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
    /// `None` once the wait has completed.
    host: Option<Arc<dyn WaitHost>>,
    key: usize,
    _output: PhantomData<fn() -> O>,
}

impl<O: Send + 'static> Wait<O> {
    pub(crate) fn new(host: Arc<dyn WaitHost>, key: usize) -> Self {
        Wait {
            host: Some(host),
            key,
            _output: PhantomData,
        }
    }

    /// The current value at creation does not count: only later transitions do. Transitions
    /// made between the wait's creation and this call still count.
    ///
    /// The predicate may already have run on the current value at creation; that result, or
    /// its panic, is then ignored.
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
        if let Some(host) = &self.host {
            host.skip_current(self.key);
        }
        self
    }

    /// Blocks this thread until the wait completes.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the value closes before a match.
    ///
    /// # Panics
    ///
    /// With the predicate's payload, if it panicked.
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new("a");
    /// assert_eq!(value.wait_for("a").blocking(), Ok("a"));
    /// ```
    pub fn blocking(mut self) -> Result<O, Error> {
        block_on(&mut self, None).expect("no deadline")
    }

    /// As [`blocking`](Wait::blocking), giving up with [`Error::TimedOut`] after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let wait = value.wait_for(1);
    /// assert_eq!(
    ///     wait.blocking_timeout(Duration::from_millis(5)),
    ///     Err(keepwatch::Error::TimedOut)
    /// );
    /// assert_eq!(value.watcher_count(), 0);
    /// ```
    pub fn blocking_timeout(self, timeout: Duration) -> Result<O, Error> {
        match deadline_after(timeout) {
            Some(deadline) => self.blocking_deadline(deadline),
            None => self.blocking(),
        }
    }

    /// As [`blocking`](Wait::blocking), giving up with [`Error::TimedOut`] at `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let soon = Instant::now() + Duration::from_millis(5);
    /// assert!(value.wait_for(1).blocking_deadline(soon).unwrap_err().is_timed_out());
    /// ```
    pub fn blocking_deadline(mut self, deadline: Instant) -> Result<O, Error> {
        block_on(&mut self, Some(deadline)).unwrap_or(Err(Error::TimedOut))
    }

    /// The wait with a time limit, as a future that works on any executor: it completes with
    /// [`Error::TimedOut`] after `timeout` (see [`Timeout`]).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let wait = value.wait_for(0).timeout(Duration::from_secs(1));
    /// assert_eq!(futures::executor::block_on(wait), Ok(0));
    /// ```
    pub fn timeout(self, timeout: Duration) -> Timeout<Self> {
        Timeout::new(self, timeout)
    }
}

impl<O: Send + 'static> Pollable for Wait<O> {
    type Output = Result<O, Error>;

    fn epoch(&self) -> Option<usize> {
        self.host.as_ref().map(|host| host.epoch())
    }

    fn poll_as(&mut self, waiter: Waiter<'_>) -> Poll<Self::Output> {
        let host = self
            .host
            .as_ref()
            .expect("keepwatch: `Wait` polled after it completed");
        let mut out: Option<O> = None;
        let delivery = match host.poll_wait(self.key, waiter, &mut out) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(delivery) => delivery,
        };
        // The registration is gone: this wait has completed.
        self.host = None;
        Poll::Ready(match delivery {
            Delivery::Filled => Ok(out.expect("keepwatch: internal error: empty delivery")),
            Delivery::Boxed(boxed) => Ok(*boxed
                .downcast::<O>()
                .expect("keepwatch: internal error: wait output of the wrong type")),
            Delivery::Closed => Err(Error::Closed),
            Delivery::Panicked(payload) => resume_unwind(payload),
        })
    }
}

impl<O: Send + 'static> Future for Wait<O> {
    type Output = Result<O, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_as(Waiter::Task(cx.waker()))
    }
}

impl<O> Drop for Wait<O> {
    fn drop(&mut self) {
        // MUTANT (loom-tests/mutants.sh): forgets to deregister a dropped wait.
        #[cfg(not(keepwatch_mutant = "no_deregister_on_drop"))]
        if let Some(host) = self.host.take() {
            host.cancel(self.key);
        }
    }
}

impl<O> fmt::Debug for Wait<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("completed", &self.host.is_none())
            .finish_non_exhaustive()
    }
}
