//! The slot one wait's outcome is delivered into, typed by what the wait returns: the setter
//! fills it (under the value's lock) and the waiter takes from it under the slot's own small
//! lock, never the value's. A thread that waits spins on the slot's `ready` flag before it
//! parks.

use std::task::Poll;

use crate::fault::Payload;
use crate::loom::{Arc, AtomicBool, Ordering, Weak};
use crate::sink::{NeedsClone, Registrar, Sink, Wakes};
use crate::spin::SpinLock;

/// The value side of a wait, with the value's type erased (a `Wait<O>` does not name the
/// value's type: `wait_map` gives a `Wait<U>` on a value of `T`). The result never passes
/// through here: it goes typed into the wait's slot.
pub(crate) trait WaitHost: Send + Sync {
    /// Deregisters the wait under `key` whose slot is `id` (no-op if it is gone).
    fn cancel(&self, key: usize, id: usize);
    /// The match at creation of the wait under `key` (slot `id`) no longer stands.
    fn skip_first(&self, key: usize, id: usize);
}

/// How a wait ended, as the setter (or the close) decided it.
pub(crate) enum Outcome<O> {
    /// The wait's output: the matching value, transition or mapped result.
    Value(O),
    /// The value closed before a match.
    Closed,
    /// The predicate panicked; the payload goes to the wait's finisher.
    Panicked(Payload),
}

/// What the slot holds.
struct Held<O> {
    /// The outcome on the current value at creation, until the waiter or `skip_current` takes
    /// it.
    first: Option<Outcome<O>>,
    /// The first outcome after creation (a later match, a panic, or the close). Filled only as
    /// the value's registry lets go of the wait.
    later: Option<Outcome<O>>,
    /// Whom to wake when `later` is filled.
    sink: Option<Sink>,
}

/// One wait's slot, shared by the value's registry and the `Wait`.
pub(crate) struct Slot<O> {
    /// Set (release) when an outcome is there to take: what a blocked thread spins on.
    ready: AtomicBool,
    held: SpinLock<Held<O>>,
    /// The value whose registry the slot belongs to, for the wait to deregister through. Weak,
    /// so that the spare slots a registry keeps do not keep their own value alive; made once
    /// per slot, so a reused slot costs no reference count (a `Wait` on a derived value holds
    /// a strong one besides: nothing else keeps a derived value alive).
    host: Weak<dyn WaitHost>,
}

/// What a poll took: the outcome to deliver, whether the registry still holds the wait, and
/// what to drop outside every lock.
pub(crate) struct Taken<O> {
    pub(crate) outcome: Outcome<O>,
    /// The registry let go of the wait already (it filled `later`).
    pub(crate) released: bool,
    /// A later outcome not delivered (the match at creation won), and a sink no longer needed.
    pub(crate) rest: (Option<Outcome<O>>, Option<Sink>),
}

impl<O> Slot<O> {
    /// A slot with the outcome on the current value at creation (if it matched).
    pub(crate) fn new(
        first: Option<Outcome<O>>,
        later: Option<Outcome<O>>,
        host: Weak<dyn WaitHost>,
    ) -> Self {
        let ready = first.is_some() || later.is_some();
        Slot {
            ready: AtomicBool::new(ready),
            held: SpinLock::new(Held {
                first,
                later,
                sink: None,
            }),
            host,
        }
    }

    /// The value the slot's wait is registered with, if it is still there.
    pub(crate) fn host(&self) -> Option<Arc<dyn WaitHost>> {
        self.host.upgrade()
    }

    /// Readies the slot for a new wait whose outcome at creation is `first`, if it holds
    /// nothing (no outcome, no sink: reusing it drops nothing of the user's); otherwise gives
    /// `first` back. `&mut`: only for a slot nobody else references, so no lock is taken.
    pub(crate) fn reuse(&mut self, first: Option<Outcome<O>>) -> Result<(), Option<Outcome<O>>> {
        let ready = first.is_some();
        self.held.with_mut(|held| {
            if held.first.is_some() || held.later.is_some() || held.sink.is_some() {
                return Err(first);
            }
            held.first = first;
            Ok(())
        })?;
        self.ready.store(ready, Ordering::Release);
        Ok(())
    }

    /// Whether an outcome is there (a hint: the lock decides).
    #[inline]
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The registry lets go of the wait with `outcome`; collects the waiter's sink.
    pub(crate) fn fill(&self, outcome: Outcome<O>, wakes: &mut Wakes) {
        let mut held = self.held.lock();
        held.later = Some(outcome);
        self.ready.store(true, Ordering::Release);
        wakes.take_from(&mut held.sink);
    }

    /// `skip_current`: drops the match at creation; returns it, to drop outside the locks.
    pub(crate) fn skip_first(&self) -> Option<Outcome<O>> {
        let mut held = self.held.lock();
        let first = held.first.take();
        self.ready.store(held.later.is_some(), Ordering::Release);
        first
    }

    /// Takes the outcome if there is one (the match at creation first); otherwise registers
    /// the waiter and returns the sink it replaced, to drop outside the lock.
    pub(crate) fn poll(&self, registrar: &mut Registrar<'_>) -> Poll<Taken<O>> {
        loop {
            let mut held = self.held.lock();
            if held.first.is_some() || held.later.is_some() {
                let released = held.later.is_some();
                let (outcome, rest) = match held.first.take() {
                    Some(first) => (first, held.later.take()),
                    None => (held.later.take().expect("checked above"), None),
                };
                let sink = held.sink.take();
                drop(held);
                return Poll::Ready(Taken {
                    outcome,
                    released,
                    rest: (rest, sink),
                });
            }
            match registrar.install(&mut held.sink) {
                Ok(replaced) => {
                    drop(held);
                    drop(replaced);
                    return Poll::Pending;
                }
                Err(NeedsClone) => {
                    drop(held);
                    registrar.prepare();
                }
            }
        }
    }
}
