//! `Subscription`, the lossless ordered feed of a value's transitions, and the ways to read
//! it: `Recv` (await or block), `try_recv`, `Stream`, and a blocking iterator.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::blocking::{block_on, finishers, Pollable};
use crate::coop;
use crate::fault::Panics;
use crate::log::Read;
use crate::loom::Arc;
use crate::sink::{Registrar, Waiter};
use crate::slab::Bin;
use crate::state::Shared;
use crate::{Error, Transition};

/// A lossless, ordered feed of every transition of a value made after it was created, from
/// [`ValueReader::subscribe`](crate::ValueReader::subscribe).
///
/// Every subscription sees every transition made after it was created, each exactly once, in
/// the one global order in which the value changed: two subscriptions never disagree on
/// order, whatever threads the setters ran on. Transitions are numbered without gaps
/// ([`Transition::version`]), and the first one's `old` is [`initial`](Subscription::initial).
///
/// Read it with [`recv`](Subscription::recv) (await it, or finish it with `blocking*`),
/// [`try_recv`](Subscription::try_recv), as a [`Stream`], or with the blocking
/// [`iter`](Subscription::iter). A subscription from
/// [`subscribe_bounded`](crate::ValueReader::subscribe_bounded) may lag: `recv` and
/// `try_recv` then give [`Error::Lagged`] once, and [`results`](Subscription::results) and
/// [`iter_results`](Subscription::iter_results) yield it as an item. After the value closes, the transitions queued before the
/// close are delivered, then `recv` gives [`Error::Closed`] and the stream and the iterator
/// end. Dropping the subscription deregisters it and frees its queued transitions; it does
/// not keep the value open.
///
/// # Examples
///
/// ```
/// use keepwatch::ValueWatcher;
///
/// let value = ValueWatcher::new('a');
/// let mut sub = value.subscribe();
/// value.set('b');
/// value.set('c');
/// value.close();
/// let seen: Vec<(char, char)> = sub.iter().map(|t| (t.old, t.new)).collect();
/// assert_eq!(seen, [('a', 'b'), ('b', 'c')]);
/// ```
pub struct Subscription<T> {
    shared: Arc<Shared<T>>,
    key: usize,
    initial: T,
    /// Transitions already taken from the log, in order, not yet handed out.
    buffer: VecDeque<Transition<T>>,
}

/// How many transitions a subscription takes from the log under one lock.
const BATCH: usize = 32;

impl<T> Subscription<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>, key: usize, initial: T) -> Self {
        Subscription {
            shared,
            key,
            initial,
            buffer: VecDeque::new(),
        }
    }

    /// How many transitions are queued for this subscription right now: received by the value
    /// and not yet read here. For a bounded subscription, at most its bound.
    ///
    /// # Panics
    ///
    /// If called from code that runs under the value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let mut sub = value.subscribe();
    /// value.set(1);
    /// value.set(2);
    /// assert_eq!(sub.len(), 2);
    /// sub.try_recv().unwrap();
    /// assert_eq!(sub.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let key = self.key;
        self.buffer.len() + self.shared.locked(|st| st.log.unread(key))
    }

    /// Whether nothing is queued for this subscription right now (see
    /// [`len`](Subscription::len)).
    ///
    /// # Panics
    ///
    /// If called from code that runs under the value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let sub = value.subscribe();
    /// assert!(sub.is_empty());
    /// value.set(1);
    /// assert!(!sub.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the value is closed. Transitions queued before the close may remain to be read:
    /// the subscription ends once they are.
    ///
    /// # Panics
    ///
    /// If called from code that runs under the value's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let mut sub = value.subscribe();
    /// value.set(1);
    /// value.close();
    /// assert!(sub.is_closed());
    /// assert_eq!(sub.try_recv().unwrap().unwrap().new, 1);
    /// assert_eq!(sub.try_recv(), Err(keepwatch::Error::Closed));
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.locked(|st| st.closed)
    }

    /// The value at the moment of subscribing: the `old` of the first transition this
    /// subscription receives. Fixed; it does not move with `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(3);
    /// let sub = value.subscribe();
    /// value.set(4);
    /// assert_eq!(*sub.initial(), 3);
    /// ```
    pub fn initial(&self) -> &T {
        &self.initial
    }
}

impl<T: Clone> Subscription<T> {
    /// The next transition, as a future that can also be finished by blocking a thread (see
    /// [`Recv`]).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the value is closed and every transition queued before the close
    /// has been received.
    /// [`Error::Lagged(n)`](Error::Lagged), once per gap, on a
    /// [bounded](crate::ValueReader::subscribe_bounded) subscription that fell behind; the
    /// next receive resumes with the oldest transition still kept.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping a `Recv` before it completes loses nothing; the transition it
    /// would have received is the next one received.
    ///
    /// # Panics
    ///
    /// Polling the `Recv` from code that runs under the value's lock; polling it again after
    /// it completed; if `T`'s `Clone` panics while a transition is read (the transitions
    /// already taken stay queued for the next receive).
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let mut sub = value.subscribe();
    /// value.set(1);
    /// let t = futures::executor::block_on(sub.recv()).unwrap();
    /// assert_eq!((t.old, t.new, t.version), (0, 1, 1));
    /// ```
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv {
            sub: Some(self),
            registered: false,
        }
    }

    /// The next transition if one is queued: `Ok(None)` when nothing is pending right now.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the value is closed and everything queued has been received;
    /// [`Error::Lagged`] as for [`recv`](Subscription::recv).
    ///
    /// # Panics
    ///
    /// As [`recv`](Subscription::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let mut sub = value.subscribe();
    /// assert_eq!(sub.try_recv(), Ok(None));
    /// value.set(1);
    /// assert_eq!(sub.try_recv().unwrap().unwrap().new, 1);
    /// ```
    pub fn try_recv(&mut self) -> Result<Option<Transition<T>>, Error> {
        match self.poll_as(Waiter::Nobody) {
            Poll::Ready(result) => result.map(Some),
            Poll::Pending => Ok(None),
        }
    }

    /// A blocking iterator over the transitions; it ends once the value is closed and
    /// everything queued has been received. Don't use it on an async runtime's worker thread.
    ///
    /// # Panics
    ///
    /// As [`recv`](Subscription::recv), from `next`.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let mut sub = value.subscribe();
    /// value.set(1);
    /// value.close();
    /// assert_eq!(sub.iter().count(), 1);
    /// ```
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter { sub: self }
    }

    /// The transitions as a [`Stream`] of `Result`s that reports a lag as an item: for a
    /// [bounded](crate::ValueReader::subscribe_bounded) subscription that fell behind, it
    /// yields `Err(Error::Lagged(n))` where the `n` dropped transitions would have been, then
    /// goes on with the oldest one still kept. It ends, like the plain stream, once the value
    /// is closed and everything queued has been received; `Lagged` is the only error it
    /// yields. On an unbounded subscription it yields only `Ok`s.
    ///
    /// # Cancel safety
    ///
    /// Dropping a pending `next()` loses nothing.
    ///
    /// # Panics
    ///
    /// As [`recv`](Subscription::recv), from `poll_next`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use keepwatch::{Error, ValueWatcher};
    ///
    /// let value = ValueWatcher::new(0);
    /// let mut sub = value.subscribe_bounded(1);
    /// value.set(1);
    /// value.set(2); // 1 is dropped for `sub`
    /// value.close();
    /// let items: Vec<Result<u64, Error>> = futures::executor::block_on(
    ///     sub.results().map(|r| r.map(|t| t.version)).collect(),
    /// );
    /// assert_eq!(items, [Err(Error::Lagged(1)), Ok(2)]);
    /// ```
    pub fn results(&mut self) -> Results<'_, T> {
        Results { sub: self }
    }

    /// A blocking iterator with the items of [`results`](Subscription::results): the
    /// transitions, with `Err(Error::Lagged(n))` where a bounded subscription dropped `n`. It
    /// ends once the value is closed and everything queued has been received. Don't use it on
    /// an async runtime's worker thread.
    ///
    /// # Panics
    ///
    /// As [`recv`](Subscription::recv), from `next`.
    ///
    /// # Examples
    ///
    /// ```
    /// use keepwatch::{Error, ValueWatcher};
    ///
    /// let value = ValueWatcher::new('a');
    /// let mut sub = value.subscribe_bounded(2);
    /// for c in ['b', 'c', 'd', 'e'] {
    ///     value.set(c);
    /// }
    /// value.close();
    /// let items: Vec<_> = sub.iter_results().map(|r| r.map(|t| (t.old, t.new))).collect();
    /// assert_eq!(items, [Err(Error::Lagged(2)), Ok(('c', 'd')), Ok(('d', 'e'))]);
    /// ```
    pub fn iter_results(&mut self) -> IterResults<'_, T> {
        IterResults { sub: self }
    }
}

impl<T: Clone> Pollable for Subscription<T> {
    type Output = Result<Transition<T>, Error>;

    fn hint(&self) -> Option<usize> {
        Some(self.shared.events())
    }

    fn poll_as(&mut self, waiter: Waiter<'_>) -> Poll<Self::Output> {
        if let Some(transition) = self.buffer.pop_front() {
            if self.buffer.is_empty() {
                // Give the batch's storage back: a drained subscription holds no memory.
                self.buffer = VecDeque::new();
            }
            return Poll::Ready(Ok(transition));
        }
        let key = self.key;
        let mut registrar = Registrar::new(waiter);
        // A clone made under the lock while a later one panicked: dropped after the lock.
        let mut spill = None;
        loop {
            let buffer = &mut self.buffer;
            let (read, closed) = self.shared.locked(|st| {
                let read = st.log.read(key, &mut registrar, buffer, BATCH, &mut spill);
                (read, st.closed)
            });
            return match read {
                Read::Taken => Poll::Ready(Ok(self.buffer.pop_front().expect("taken"))),
                Read::Lagged(skipped) => Poll::Ready(Err(Error::Lagged(skipped))),
                Read::Empty(replaced) => {
                    drop(replaced);
                    if closed {
                        Poll::Ready(Err(Error::Closed))
                    } else {
                        Poll::Pending
                    }
                }
                Read::NeedsClone => {
                    registrar.prepare();
                    continue;
                }
            };
        }
    }
}

/// A read as an item of the plain `Stream` and `iter`: a bounded subscription's lag is no item
/// (`Continue`: read on), the end is `None`.
fn plain_item<T>(
    read: Result<Transition<T>, Error>,
) -> std::ops::ControlFlow<Option<Transition<T>>> {
    match read {
        Ok(transition) => std::ops::ControlFlow::Break(Some(transition)),
        Err(Error::Lagged(_)) => std::ops::ControlFlow::Continue(()),
        Err(_) => std::ops::ControlFlow::Break(None),
    }
}

/// A read as an item of `results` and `iter_results`: `Closed` ends the sequence, any other
/// error is an item.
fn result_item<T>(read: Result<Transition<T>, Error>) -> Option<Result<Transition<T>, Error>> {
    match read {
        Err(Error::Closed) => None,
        item => Some(item),
    }
}

/// Polls `sub` for a task, spending the tokio budget (with the `tokio` feature) on a read that
/// is ready at once.
fn poll_task<T: Clone>(
    sub: &mut Subscription<T>,
    cx: &mut Context<'_>,
) -> Poll<Result<Transition<T>, Error>> {
    let budget = std::task::ready!(coop::poll_budget(cx));
    let poll = sub.poll_as(Waiter::Task(cx.waker()));
    if poll.is_ready() {
        budget.made_progress();
    }
    poll
}

// Nothing is ever pinned through a `Subscription`: `initial` is only read by reference.
impl<T> Unpin for Subscription<T> {}

impl<T: Clone> Stream for Subscription<T> {
    type Item = Transition<T>;

    /// The next transition; `None` once the value is closed and everything queued has been
    /// received. A bounded subscription's lag is not an item here: the stream goes on with the
    /// oldest transition still kept (see [`Subscription::results`] to be told).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let sub = self.get_mut();
        loop {
            if let std::ops::ControlFlow::Break(item) =
                plain_item(std::task::ready!(poll_task(sub, cx)))
            {
                return Poll::Ready(item);
            }
        }
    }
}

impl<T> Drop for Subscription<T> {
    /// Deregisters the subscription; its queued transitions are freed after the lock is
    /// released. A panic in `T`'s `Drop` there reaches the caller, unless the thread is already
    /// unwinding.
    fn drop(&mut self) {
        let key = self.key;
        let mut spare = Bin::default();
        let sink = self.shared.locked(|st| st.log.unsubscribe(key, &mut spare));
        let mut panics = Panics::default();
        panics.run(move || drop(sink));
        spare.drop_all(&mut panics);
        let buffer = std::mem::take(&mut self.buffer);
        panics.run(move || drop(buffer));
        panics.raise();
    }
}

impl<T: fmt::Debug> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("initial", &self.initial)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

/// The next transition of a [`Subscription`], from [`Subscription::recv`].
///
/// Await it on any executor, or finish it on an OS thread with
/// [`blocking`](Recv::blocking), [`blocking_timeout`](Recv::blocking_timeout) or
/// [`blocking_deadline`](Recv::blocking_deadline); [`timeout`](Recv::timeout) limits the
/// async wait. Dropping it before it completes loses nothing.
///
/// # Errors
///
/// [`Error::Closed`] once the value is closed and everything queued has been received;
/// [`Error::Lagged`] on a bounded subscription that fell behind; [`Error::TimedOut`] from the
/// timed finishers.
///
/// # Cancel safety
///
/// Cancel safe: dropping a `Recv` before it completes loses nothing; the transition it would
/// have received is the next one received.
///
/// # Panics
///
/// Polling it again after it has completed panics.
///
/// # Examples
///
/// ```
/// let value = keepwatch::ValueWatcher::new(0);
/// let mut sub = value.subscribe();
/// value.set(1);
/// let t = futures::executor::block_on(sub.recv()).unwrap();
/// assert_eq!(t.new, 1);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, T> {
    /// `None` once it has completed.
    sub: Option<&'a mut Subscription<T>>,
    /// Whether a task's waker may be registered for it.
    registered: bool,
}

finishers!(
    [impl<T: Clone> Recv<'_, T>],
    Result<Transition<T>, Error>,
    "receive",
    "```\nlet value = keepwatch::ValueWatcher::new(0);\nlet mut sub = value.subscribe();\nvalue.set(1);\nassert_eq!(sub.recv().blocking().unwrap().new, 1);\n```",
    "```\nuse std::time::Duration;\n\nlet value = keepwatch::ValueWatcher::new(0);\nlet mut sub = value.subscribe();\nlet r = sub.recv().blocking_timeout(Duration::from_millis(5));\nassert_eq!(r, Err(keepwatch::Error::TimedOut));\n```",
    "```\nuse std::time::{Duration, Instant};\n\nlet value = keepwatch::ValueWatcher::new(0);\nlet mut sub = value.subscribe();\nlet soon = Instant::now() + Duration::from_millis(5);\nassert!(sub.recv().blocking_deadline(soon).unwrap_err().is_timed_out());\n```",
    "```\nuse std::time::Duration;\n\nlet value = keepwatch::ValueWatcher::new(0);\nlet mut sub = value.subscribe();\nlet r = futures::executor::block_on(sub.recv().timeout(Duration::from_millis(5)));\nassert_eq!(r, Err(keepwatch::Error::TimedOut));\n```"
);

impl<T: Clone> Pollable for Recv<'_, T> {
    type Output = Result<Transition<T>, Error>;

    fn hint(&self) -> Option<usize> {
        self.sub.as_ref().and_then(|sub| sub.hint())
    }

    fn poll_as(&mut self, waiter: Waiter<'_>) -> Poll<Self::Output> {
        let sub = self
            .sub
            .as_mut()
            .expect("keepwatch: `Recv` polled after it completed");
        let poll = sub.poll_as(waiter);
        match poll {
            Poll::Ready(_) => self.sub = None,
            Poll::Pending => self.registered |= matches!(waiter, Waiter::Task(_)),
        }
        poll
    }
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<Transition<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let budget = std::task::ready!(coop::poll_budget(cx));
        let poll = self.get_mut().poll_as(Waiter::Task(cx.waker()));
        if poll.is_ready() {
            budget.made_progress();
        }
        poll
    }
}

impl<T> Drop for Recv<'_, T> {
    /// Forgets the waker of a receive dropped while waiting, so no stale task is woken.
    fn drop(&mut self) {
        if let (Some(sub), true) = (self.sub.as_mut(), self.registered) {
            let key = sub.key;
            let sink = sub.shared.locked(|st| st.log.clear_sink(key));
            crate::fault::drop_then_raise(sink);
        }
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("completed", &self.sub.is_none())
            .finish_non_exhaustive()
    }
}

/// A blocking iterator over a [`Subscription`]'s transitions, from
/// [`Subscription::iter`]; it ends once the value is closed and everything queued has been
/// received.
pub struct Iter<'a, T> {
    sub: &'a mut Subscription<T>,
}

impl<T: Clone> Iterator for Iter<'_, T> {
    type Item = Transition<T>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let read = block_on(self.sub, None).expect("no deadline");
            if let std::ops::ControlFlow::Break(item) = plain_item(read) {
                return item;
            }
        }
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

/// A [`Stream`] of a [`Subscription`]'s transitions that reports a bounded subscription's lag
/// as `Err(Error::Lagged(n))`, from [`Subscription::results`]. It ends once the value is
/// closed and everything queued has been received.
#[must_use = "streams do nothing unless polled"]
pub struct Results<'a, T> {
    sub: &'a mut Subscription<T>,
}

impl<T: Clone> Stream for Results<'_, T> {
    type Item = Result<Transition<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_task(self.get_mut().sub, cx).map(result_item)
    }
}

impl<T> fmt::Debug for Results<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Results").finish_non_exhaustive()
    }
}

/// A blocking iterator over a [`Subscription`]'s transitions that reports a bounded
/// subscription's lag as `Err(Error::Lagged(n))`, from [`Subscription::iter_results`]. It ends
/// once the value is closed and everything queued has been received.
pub struct IterResults<'a, T> {
    sub: &'a mut Subscription<T>,
}

impl<T: Clone> Iterator for IterResults<'_, T> {
    type Item = Result<Transition<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        result_item(block_on(self.sub, None).expect("no deadline"))
    }
}

impl<T> fmt::Debug for IterResults<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterResults").finish_non_exhaustive()
    }
}
