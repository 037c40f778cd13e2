//! Where a wake-up goes: an async task's waker or a blocked thread; how a poll registers one
//! without running user code under a lock; and the list a setter collects under the lock and
//! wakes after releasing it.

use std::task::Waker;

use crate::fault;
use crate::loom::{current, Thread};
use crate::slab::Bin;

/// Whom to wake when a registration becomes ready.
#[derive(Debug)]
pub(crate) enum Sink {
    /// An async task, woken through its waker.
    Task(Waker),
    /// A thread parked in `blocking*`, woken by unparking it.
    Thread(Thread),
}

impl Sink {
    /// Wakes the task or unparks the thread. A waker is user code: its panic is contained (see
    /// [`Wakes::wake_all`]).
    fn wake(self) {
        match self {
            Sink::Task(waker) => fault::contain(move || waker.wake()),
            Sink::Thread(thread) => thread.unpark(),
        }
    }
}

/// How the caller of a poll wants to be woken, if the registration is not ready yet.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Waiter<'a> {
    /// The polling task, through this waker.
    Task(&'a Waker),
    /// The calling thread, which parks next.
    Thread,
    /// Nobody: a non-blocking check such as `try_recv`.
    Nobody,
}

/// A waiter on its way to being registered. Cloning a waker is user code, so it never happens
/// under a lock: [`install`](Registrar::install) asks for a clone when it needs one, the caller
/// makes it with [`prepare`](Registrar::prepare) after releasing the lock, then tries again.
#[derive(Debug)]
pub(crate) struct Registrar<'a> {
    waiter: Waiter<'a>,
    /// A sink made outside the lock, not installed yet (dropped outside the lock if unused).
    made: Option<Sink>,
}

/// The registration needs a waker clone, to be made outside the lock.
#[derive(Debug)]
pub(crate) struct NeedsClone;

impl<'a> Registrar<'a> {
    pub(crate) fn new(waiter: Waiter<'a>) -> Self {
        Registrar { waiter, made: None }
    }

    /// Under the lock: makes sure `slot` holds a sink for this waiter. Keeps the one there if it
    /// wakes the same task or thread; otherwise installs a new one and returns the sink it
    /// replaced, for the caller to drop after releasing the lock.
    #[inline]
    pub(crate) fn install(&mut self, slot: &mut Option<Sink>) -> Result<Option<Sink>, NeedsClone> {
        match (self.waiter, &*slot) {
            (Waiter::Nobody, _) => Ok(None),
            (Waiter::Task(w), Some(Sink::Task(old))) if old.will_wake(w) => Ok(None),
            (Waiter::Thread, Some(Sink::Thread(t))) if t.id() == current().id() => Ok(None),
            (Waiter::Task(_), _) => match self.made.take() {
                Some(sink) => Ok(slot.replace(sink)),
                None => Err(NeedsClone),
            },
            (Waiter::Thread, _) => Ok(slot.replace(Sink::Thread(current()))),
        }
    }

    /// Outside the lock: clones the task's waker for the next [`install`](Registrar::install).
    #[inline]
    pub(crate) fn prepare(&mut self) {
        if let Waiter::Task(waker) = self.waiter {
            self.made = Some(Sink::Task(waker.clone()));
        }
    }
}

/// The sinks a setter collected under the lock, woken once the lock is released: a [`Bin`],
/// so a single wake (the common case: one waiter matched) needs no allocation.
#[derive(Debug, Default)]
pub(crate) struct Wakes(Bin<Sink>);

impl Wakes {
    /// Adds the sink in `slot`, if there is one.
    #[inline]
    pub(crate) fn take_from(&mut self, slot: &mut Option<Sink>) {
        if let Some(sink) = slot.take() {
            self.0.push(sink);
        }
    }

    /// Whether there is nothing to wake.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wakes every sink. Call only after releasing the lock. A waker that panics does not stop
    /// the others: its panic is contained (reported by the panic hook, raised nowhere), since
    /// the waker belongs to another task than the caller's.
    #[inline]
    pub(crate) fn wake_all(&mut self) {
        self.0.for_each(Sink::wake);
    }
}
