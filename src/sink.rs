//! Where a wake-up goes: an async task's waker or a blocked thread, and the list of them a
//! setter collects under the lock and pokes after releasing it.

use std::task::Waker;

use crate::loom::{current, Thread};

/// Whom to wake when a registration becomes ready.
#[derive(Debug)]
pub(crate) enum Sink {
    /// An async task, woken through its waker.
    Task(Waker),
    /// A thread parked in `blocking*`, woken by unparking it.
    Thread(Thread),
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

impl Sink {
    /// Wakes the task or unparks the thread.
    pub(crate) fn wake(self) {
        match self {
            Sink::Task(waker) => waker.wake(),
            Sink::Thread(thread) => thread.unpark(),
        }
    }

    /// Stores in `slot` a sink for `waiter`, keeping the one already there if it would wake the
    /// same task or thread (so a poll does not clone a waker it already holds). Returns the sink
    /// it replaced, which the caller drops after releasing the lock: dropping a waker can run
    /// arbitrary code.
    #[must_use]
    pub(crate) fn register(slot: &mut Option<Sink>, waiter: Waiter<'_>) -> Option<Sink> {
        let new = match (waiter, &*slot) {
            (Waiter::Nobody, _) => return None,
            (Waiter::Task(w), Some(Sink::Task(old))) if old.will_wake(w) => return None,
            (Waiter::Thread, Some(Sink::Thread(t))) if t.id() == current().id() => return None,
            (Waiter::Task(w), _) => Sink::Task(w.clone()),
            (Waiter::Thread, _) => Sink::Thread(current()),
        };
        slot.replace(new)
    }
}

/// The sinks a setter collected under the lock, woken once the lock is released.
///
/// A single wake (the common case: one waiter matched) needs no allocation.
#[derive(Debug, Default)]
pub(crate) enum Wakes {
    /// Nothing to wake.
    #[default]
    None,
    /// One sink.
    One(Sink),
    /// Several sinks.
    Many(Vec<Sink>),
}

impl Wakes {
    /// Adds a sink to wake.
    pub(crate) fn push(&mut self, sink: Sink) {
        match std::mem::take(self) {
            Wakes::None => *self = Wakes::One(sink),
            Wakes::One(first) => *self = Wakes::Many(vec![first, sink]),
            Wakes::Many(mut all) => {
                all.push(sink);
                *self = Wakes::Many(all);
            }
        }
    }

    /// Adds the sink in `slot`, if there is one.
    pub(crate) fn take_from(&mut self, slot: &mut Option<Sink>) {
        if let Some(sink) = slot.take() {
            self.push(sink);
        }
    }

    /// Wakes every sink. Call only after releasing the lock.
    #[inline]
    pub(crate) fn wake_all(self) {
        match self {
            Wakes::None => {}
            Wakes::One(sink) => sink.wake(),
            Wakes::Many(all) => all.into_iter().for_each(Sink::wake),
        }
    }
}
