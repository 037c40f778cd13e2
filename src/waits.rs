//! The pending one-shot waits of a value: what each waits for, and the slot the setter fills
//! when it matches. Everything here runs under the value's lock.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::sink::{Sink, Waiter, Wakes};
use crate::Transition;

/// A panic payload, carried to the wait whose predicate raised it.
pub(crate) type Payload = Box<dyn Any + Send>;

/// A user predicate, boxed with what it turns a match into. `old` is `None` when it is tested
/// on the current value at creation.
pub(crate) type Matcher<T> = Box<dyn FnMut(Option<&T>, &T, u64) -> Option<Outcome<T>> + Send>;

/// What a wait waits for. Equality waits are compared in place, without a boxed call: they are
/// the common case, and every `set` tests every pending wait.
pub(crate) enum Cond<T> {
    /// The first value equal to this one.
    Eq(T),
    /// The first value not equal to this one.
    Ne(T),
    /// The next transition, whatever it is.
    Change,
    /// A user predicate.
    Custom(Matcher<T>),
}

/// How a wait ended, as the setter (or the close) decided it.
pub(crate) enum Outcome<T> {
    /// The matching value.
    Value(T),
    /// The matching transition.
    Transition(Transition<T>),
    /// What a `wait_map` function returned, boxed because its type is not `T`.
    Mapped(Box<dyn Any + Send>),
    /// The predicate panicked; the payload goes to the wait's finisher.
    Panicked(Payload),
    /// The value closed before a match.
    Closed,
}

impl<T: Clone + PartialEq> Cond<T> {
    /// Tests `new` (reached from `old`, or the current value when `old` is `None`).
    fn test(&mut self, old: Option<&T>, new: &T, version: u64) -> Option<Outcome<T>> {
        match self {
            Cond::Eq(want) => (new == want).then(|| Outcome::Value(new.clone())),
            Cond::Ne(want) => (new != want).then(|| Outcome::Value(new.clone())),
            Cond::Change => old.map(|_| Outcome::Value(new.clone())),
            Cond::Custom(matcher) => matcher(old, new, version),
        }
    }
}

/// Marks a slot that is no longer tested against transitions.
const INACTIVE: usize = usize::MAX;

/// One registered wait.
struct Slot<T> {
    /// Index in `Waits::active`, or `INACTIVE`.
    pos: usize,
    /// The match (or panic) on the current value at creation, until `skip_current` drops it.
    at_creation: Option<Outcome<T>>,
    /// The first later match, or `Closed`.
    outcome: Option<Outcome<T>>,
    /// The condition once it no longer runs, left for the waiter to drop outside the lock.
    spent: Option<Cond<T>>,
    /// Whom to wake when `outcome` is set.
    sink: Option<Sink>,
}

/// What a finished wait leaves behind: its result and the parts to drop outside the lock.
pub(crate) struct Finished<T> {
    /// The result (a match at creation wins over a later one).
    pub(crate) outcome: Outcome<T>,
    /// Everything else the slot held; dropped by the caller after releasing the lock.
    pub(crate) rest: Leftovers<T>,
}

/// Parts of a wait that may run user code when dropped (values, predicates, wakers).
pub(crate) type Leftovers<T> = (Option<Outcome<T>>, Option<Cond<T>>, Option<Sink>);

/// The registry of waits.
pub(crate) struct Waits<T> {
    /// Storage, indexed by key; `None` for free keys.
    slots: Vec<Option<Slot<T>>>,
    /// Free keys, reused before `slots` grows.
    free: Vec<usize>,
    /// The waits every transition is tested against, packed for a fast scan.
    active: Vec<(Cond<T>, usize)>,
}

impl<T: Clone + PartialEq> Waits<T> {
    pub(crate) fn new() -> Self {
        Waits {
            slots: Vec::new(),
            free: Vec::new(),
            active: Vec::new(),
        }
    }

    /// Registers a wait for `cond`, testing it first on `current` unless `skip` (a wait on
    /// transitions only). On a closed value the wait is born finished.
    pub(crate) fn add(
        &mut self,
        mut cond: Cond<T>,
        current: &T,
        version: u64,
        closed: bool,
    ) -> usize {
        let at_creation = catch_unwind(AssertUnwindSafe(|| cond.test(None, current, version)))
            .unwrap_or_else(|payload| Some(Outcome::Panicked(payload)));
        let key = self.free.pop().unwrap_or(self.slots.len());
        let mut slot = Slot {
            pos: INACTIVE,
            at_creation,
            outcome: None,
            spent: None,
            sink: None,
        };
        if closed {
            slot.outcome = Some(Outcome::Closed);
            slot.spent = Some(cond);
        } else {
            slot.pos = self.active.len();
            self.active.push((cond, key));
        }
        if key == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[key] = Some(slot);
        }
        key
    }

    fn slot(&mut self, key: usize) -> &mut Slot<T> {
        self.slots[key]
            .as_mut()
            .expect("keepwatch: internal error: unknown wait key")
    }

    /// Whether any wait is tested against transitions.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        !self.active.is_empty()
    }

    /// Tests every active wait against the transition `old → new`; completes the ones that
    /// match and collects their sinks. A predicate that panics completes its own wait with
    /// the panic and the scan goes on with the others.
    #[inline]
    pub(crate) fn on_transition(&mut self, old: &T, new: &T, version: u64, wakes: &mut Wakes) {
        if self.any() {
            self.scan(old, new, version, wakes);
        }
    }

    /// The body of [`on_transition`](Waits::on_transition), out of line.
    fn scan(&mut self, old: &T, new: &T, version: u64, wakes: &mut Wakes) {
        let mut i = 0;
        while i < self.active.len() {
            // One `catch_unwind` around the whole scan, not one per wait: when a predicate
            // panics, `i` still points at its wait.
            let scan = catch_unwind(AssertUnwindSafe(|| {
                while i < self.active.len() {
                    match self.active[i].0.test(Some(old), new, version) {
                        Some(outcome) => self.complete(i, outcome, wakes),
                        None => i += 1,
                    }
                }
            }));
            if let Err(payload) = scan {
                self.complete(i, Outcome::Panicked(payload), wakes);
            }
        }
    }

    /// Completes the active wait at `pos` with `outcome` and stops testing it.
    fn complete(&mut self, pos: usize, outcome: Outcome<T>, wakes: &mut Wakes) {
        let (cond, key) = self.active.swap_remove(pos);
        if let Some((_, moved)) = self.active.get(pos) {
            let moved = *moved;
            self.slot(moved).pos = pos;
        }
        let slot = self.slot(key);
        slot.pos = INACTIVE;
        slot.outcome = Some(outcome);
        slot.spent = Some(cond);
        wakes.take_from(&mut slot.sink);
    }

    /// Ends every active wait with `Closed`.
    pub(crate) fn close(&mut self, wakes: &mut Wakes) {
        while let Some(last) = self.active.len().checked_sub(1) {
            self.complete(last, Outcome::Closed, wakes);
        }
    }

    /// Drops the match at creation: only later transitions count.
    pub(crate) fn skip_current(&mut self, key: usize) -> Option<Outcome<T>> {
        self.slot(key).at_creation.take()
    }

    /// If the wait has finished, frees its key and returns how it ended; otherwise registers
    /// `waiter` and returns the sink it replaced (to drop outside the lock).
    pub(crate) fn poll(
        &mut self,
        key: usize,
        waiter: Waiter<'_>,
    ) -> Result<Finished<T>, Option<Sink>> {
        let slot = self.slot(key);
        if slot.at_creation.is_none() && slot.outcome.is_none() {
            return Err(Sink::register(&mut slot.sink, waiter));
        }
        let (slot, cond) = self.remove(key);
        let (outcome, rest) = match (slot.at_creation, slot.outcome) {
            (Some(first), later) => (first, later),
            (None, Some(later)) => (later, None),
            (None, None) => unreachable!("checked above"),
        };
        Ok(Finished {
            outcome,
            rest: (rest, cond.or(slot.spent), slot.sink),
        })
    }

    /// MUTANT (loom-tests/mutants.sh): registers `waiter` without checking whether the wait
    /// has finished.
    #[cfg(keepwatch_mutant = "poll_check_then_register")]
    pub(crate) fn register_only(&mut self, key: usize, waiter: Waiter<'_>) -> Option<Sink> {
        Sink::register(&mut self.slot(key).sink, waiter)
    }

    /// Deregisters a wait that is dropped before it finished.
    pub(crate) fn cancel(&mut self, key: usize) -> (Leftovers<T>, Option<Outcome<T>>) {
        let (slot, cond) = self.remove(key);
        (
            (slot.outcome, cond.or(slot.spent), slot.sink),
            slot.at_creation,
        )
    }

    /// Frees `key`, taking its condition out of the active list if it is there.
    fn remove(&mut self, key: usize) -> (Slot<T>, Option<Cond<T>>) {
        let slot = self.slots[key]
            .take()
            .expect("keepwatch: internal error: unknown wait key");
        self.free.push(key);
        let mut cond = None;
        if slot.pos != INACTIVE {
            let (removed, _) = self.active.swap_remove(slot.pos);
            if let Some((_, moved)) = self.active.get(slot.pos) {
                let moved = *moved;
                self.slot(moved).pos = slot.pos;
            }
            cond = Some(removed);
        }
        (slot, cond)
    }

    /// Waits that have not matched and have not ended: those still tested on every transition
    /// with no match at creation standing. O(number of waits); a diagnostic.
    pub(crate) fn pending(&self) -> usize {
        self.active
            .iter()
            .filter(|(_, key)| {
                self.slots[*key]
                    .as_ref()
                    .is_some_and(|slot| slot.at_creation.is_none())
            })
            .count()
    }
}
