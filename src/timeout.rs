//! `Timeout`, the async time limit on a wait or a receive, with a timer that belongs to no
//! runtime so it works on every executor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_timer::Delay;

use crate::Error;

/// A [`Wait`](crate::Wait) or [`Recv`](crate::Recv) with a time limit, from their `timeout`
/// methods: completes with the inner result, or with [`Error::TimedOut`] once the duration has
/// passed. Dropping it (or timing out) deregisters the inner wait.
///
/// The timer is `futures-timer`'s, driven by one helper thread of its own, so this works on
/// any executor (tokio, smol, `futures::executor`, …) and needs no runtime's timer.
///
/// # Panics
///
/// Polling it again after it has completed panics.
///
/// # Examples
///
/// ```
/// use keepwatch::{Error, ValueWatcher};
/// use std::time::Duration;
///
/// let value = ValueWatcher::new(0);
/// let wait = value.wait_for(1).timeout(Duration::from_millis(10));
/// assert_eq!(futures::executor::block_on(wait), Err(Error::TimedOut));
/// assert_eq!(value.watcher_count(), 0);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    inner: Option<F>,
    delay: Delay,
}

impl<F> Timeout<F> {
    pub(crate) fn new(inner: F, after: Duration) -> Self {
        Timeout {
            inner: Some(inner),
            delay: Delay::new(after),
        }
    }
}

impl<F, O> Future for Timeout<F>
where
    F: Future<Output = Result<O, Error>> + Unpin,
{
    type Output = Result<O, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let inner = this
            .inner
            .as_mut()
            .expect("keepwatch: `Timeout` polled after it completed");
        if let Poll::Ready(result) = Pin::new(inner).poll(cx) {
            this.inner = None;
            return Poll::Ready(result);
        }
        match Pin::new(&mut this.delay).poll(cx) {
            Poll::Ready(()) => {
                // Dropping the inner future deregisters it.
                this.inner = None;
                Poll::Ready(Err(Error::TimedOut))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}
