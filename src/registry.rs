//! The pending one-shot waits of a value: what each waits for, tested against every
//! transition under the value's lock, and the slot each is delivered into.
//!
//! Equality waits (`wait_for`), the common case, are kept apart: their targets sit densely in
//! one vector that a `set` scans with plain comparisons. Every other wait is a boxed matcher
//! that knows its own output type, so a result goes typed from the matcher into its slot.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::loom::{Arc, Weak};
use crate::sink::Wakes;
use crate::slab::{shrink_if_sparse, Bin, Slab};
use crate::slot::{Outcome, Slot, WaitHost};

/// Makes the weak reference to the value a new slot holds (called only for a new slot).
pub(crate) type Host<'a> = &'a dyn Fn() -> Weak<dyn WaitHost>;

/// A wait that is not an equality wait, with its output type erased: what the registry needs
/// to test it, end it, and find it again.
pub(crate) trait Pending<T>: Send {
    /// Tests the transition `old → new` (to `version`). On a match or a panic, fills the slot,
    /// collects the waiter's sink and returns `true`: the registry lets go of it.
    fn offer(&mut self, old: &T, new: &T, version: u64, wakes: &mut Wakes) -> bool;
    /// The value closed: fills the slot with this wait's close outcome.
    fn close(&mut self, wakes: &mut Wakes);
}

/// A matcher: `old` is `None` when it is tested on the current value at creation.
pub(crate) trait Matcher<T, O>: FnMut(Option<&T>, &T, u64) -> Option<O> + Send {}
impl<T, O, F: FnMut(Option<&T>, &T, u64) -> Option<O> + Send> Matcher<T, O> for F {}

/// A non-equality wait, typed.
struct Entry<O, F> {
    matcher: F,
    slot: Arc<Slot<O>>,
    /// What the wait ends with when the value closes (`Closed`, or `Ok(())` for `closed()`).
    on_close: fn() -> Outcome<O>,
}

impl<T, O, F> Pending<T> for Entry<O, F>
where
    O: Send + 'static,
    F: Matcher<T, O> + 'static,
{
    fn offer(&mut self, old: &T, new: &T, version: u64, wakes: &mut Wakes) -> bool {
        let tested = catch_unwind(AssertUnwindSafe(|| (self.matcher)(Some(old), new, version)));
        let outcome = match tested {
            Ok(None) => return false,
            Ok(Some(output)) => Outcome::Value(output),
            Err(payload) => Outcome::Panicked(payload),
        };
        self.slot.fill(outcome, wakes);
        true
    }

    fn close(&mut self, wakes: &mut Wakes) {
        self.slot.fill((self.on_close)(), wakes);
    }
}

/// What the registry let go of, dropped by the caller after releasing the lock (each holds
/// user values or closures). Never read: held only to be dropped in the right place.
#[allow(dead_code)]
pub(crate) enum Gone<T> {
    /// An equality wait: its target and its slot.
    Eq(T, Arc<Slot<T>>),
    /// Any other wait.
    Other(Box<dyn Pending<T>>),
    /// A target: of a wait let go of, or never registered (the value was closed).
    Value(T),
    /// A slot not kept for reuse.
    Slot(Arc<Slot<T>>),
}

/// Where a registered wait is.
#[derive(Debug)]
struct Place {
    /// In `eq` (true) or `others`.
    eq: bool,
    pos: usize,
    /// It matched on the current value at creation and that still stands.
    first: bool,
    slot_id: usize,
}

/// The registry of pending waits.
pub(crate) struct Registry<T> {
    /// The targets of the equality waits, densely, for the scan.
    eq_targets: Vec<T>,
    /// Beside each target: its slot and its key.
    eq_waits: Vec<(Arc<Slot<T>>, usize)>,
    /// Every other wait, with its key.
    others: Vec<(Box<dyn Pending<T>>, usize)>,
    /// Key → place.
    places: Slab<Place>,
    /// Registered waits whose match at creation stands (not pending, for `watcher_count`).
    first_matches: usize,
    /// Slots of equality waits the registry let go of, kept for reuse once their `Wait` is
    /// gone too (a hand-off then allocates nothing); at most `SPARE_SLOTS`.
    spare: Vec<Arc<Slot<T>>>,
}

/// How many let-go equality-wait slots a registry keeps for reuse.
const SPARE_SLOTS: usize = 4;

fn outcome_of<O>(tested: std::thread::Result<Option<O>>) -> Option<Outcome<O>> {
    match tested {
        Ok(found) => found.map(Outcome::Value),
        Err(payload) => Some(Outcome::Panicked(payload)),
    }
}

fn slot_id<O>(slot: &Arc<Slot<O>>) -> usize {
    Arc::as_ptr(slot) as *const () as usize
}

impl<T> Registry<T> {
    pub(crate) fn new() -> Self {
        Registry {
            eq_targets: Vec::new(),
            eq_waits: Vec::new(),
            others: Vec::new(),
            places: Slab::default(),
            first_matches: 0,
            spare: Vec::new(),
        }
    }

    /// Whether any wait is tested against transitions.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.places.len() > 0
    }

    /// Waits that have not matched and have not ended.
    pub(crate) fn pending(&self) -> usize {
        self.places.len() - self.first_matches
    }

    fn insert(&mut self, eq: bool, pos: usize, first: bool, slot_id: usize) -> usize {
        if first {
            self.first_matches += 1;
        }
        self.places.insert(Place {
            eq,
            pos,
            first,
            slot_id,
        })
    }

    /// A slot for a new equality wait: a spare whose `Wait` is gone (the registry holds the
    /// only reference, so nobody else can see it) and which holds nothing, or a new one. A
    /// spare whose `Wait` went without taking its outcome is let go of here (into `gone`), so
    /// that no user value waits in a spare.
    fn reuse(
        &mut self,
        mut first: Option<Outcome<T>>,
        host: Host<'_>,
        gone: &mut Bin<Gone<T>>,
    ) -> Arc<Slot<T>> {
        let mut i = 0;
        while i < self.spare.len() {
            let Some(spare) = Arc::get_mut(&mut self.spare[i]) else {
                i += 1;
                continue;
            };
            match spare.reuse(first) {
                Ok(()) => return self.spare.swap_remove(i),
                Err(back) => {
                    first = back;
                    gone.push(Gone::Slot(self.spare.swap_remove(i)));
                }
            }
        }
        Arc::new(Slot::new(first, None, host()))
    }

    /// Ends every wait: the value closed.
    pub(crate) fn close(&mut self, wakes: &mut Wakes, gone: &mut Bin<Gone<T>>) {
        for (target, (slot, _)) in self.eq_targets.drain(..).zip(self.eq_waits.drain(..)) {
            slot.fill(Outcome::Closed, wakes);
            gone.push(Gone::Eq(target, slot));
        }
        for (mut wait, _) in self.others.drain(..) {
            wait.close(wakes);
            gone.push(Gone::Other(wait));
        }
        for slot in std::mem::take(&mut self.spare) {
            gone.push(Gone::Slot(slot));
        }
        *self = Registry::new();
    }

    /// Removes the wait at `pos` of its list; returns its key's place.
    ///
    /// The slot of an equality wait that `completed` (filled; its sink already taken) is kept
    /// for reuse; a cancelled one (whose sink may still hold a waker) is let go of.
    fn take(&mut self, eq: bool, pos: usize, completed: bool, gone: &mut Bin<Gone<T>>) {
        let key = if eq {
            let target = self.eq_targets.swap_remove(pos);
            let (slot, key) = self.eq_waits.swap_remove(pos);
            if let Some((_, moved)) = self.eq_waits.get(pos) {
                let moved = *moved;
                self.places.get_mut(moved).expect("registered").pos = pos;
            }
            if std::mem::needs_drop::<T>() {
                gone.push(Gone::Value(target));
            }
            if completed && self.spare.len() < SPARE_SLOTS {
                self.spare.push(slot);
            } else {
                gone.push(Gone::Slot(slot));
            }
            shrink_if_sparse(&mut self.eq_targets);
            shrink_if_sparse(&mut self.eq_waits);
            key
        } else {
            let (wait, key) = self.others.swap_remove(pos);
            if let Some((_, moved)) = self.others.get(pos) {
                let moved = *moved;
                self.places.get_mut(moved).expect("registered").pos = pos;
            }
            gone.push(Gone::Other(wait));
            shrink_if_sparse(&mut self.others);
            key
        };
        if self.places.remove(key).is_some_and(|place| place.first) {
            self.first_matches -= 1;
        }
    }

    /// Deregisters the wait under `key`, if it is still the one with slot `id` there (a wait
    /// that finished and whose key was reused is left alone).
    pub(crate) fn cancel(&mut self, key: usize, id: usize, gone: &mut Bin<Gone<T>>) {
        if let Some(place) = self.places.get(key).filter(|p| p.slot_id == id) {
            let (eq, pos) = (place.eq, place.pos);
            self.take(eq, pos, false, gone);
        }
    }

    /// `skip_current` on the wait under `key` (slot `id`): its match at creation no longer
    /// stands (the wait drops it from its slot itself).
    pub(crate) fn skip_first(&mut self, key: usize, id: usize) {
        let place = self.places.get_mut(key).filter(|p| p.slot_id == id);
        if let Some(place) = place {
            if std::mem::take(&mut place.first) {
                self.first_matches -= 1;
            }
        }
    }
}

impl<T: Clone + PartialEq + Send + 'static> Registry<T> {
    /// Registers an equality wait for `target`, first tested on `current`. On a closed value
    /// the wait is born finished and not registered (no key).
    pub(crate) fn add_eq(
        &mut self,
        target: T,
        current: &T,
        closed: bool,
        host: Host<'_>,
        gone: &mut Bin<Gone<T>>,
    ) -> (Arc<Slot<T>>, Option<usize>) {
        let tested = catch_unwind(AssertUnwindSafe(|| {
            (*current == target).then(|| current.clone())
        }));
        let first = outcome_of(tested);
        if closed {
            gone.push(Gone::Value(target));
            let slot = Slot::new(first, Some(Outcome::Closed), host());
            return (Arc::new(slot), None);
        }
        let matched = first.is_some();
        let slot = self.reuse(first, host, gone);
        let key = self.insert(true, self.eq_targets.len(), matched, slot_id(&slot));
        self.eq_targets.push(target);
        self.eq_waits.push((slot.clone(), key));
        (slot, Some(key))
    }

    /// Registers a wait with a matcher, first tested on the value `now` (as `old = None`):
    /// `(current, version, closed)`. On a closed value the wait is born finished and not
    /// registered.
    pub(crate) fn add<O, F>(
        &mut self,
        mut matcher: F,
        (current, version, closed): (&T, u64, bool),
        on_close: fn() -> Outcome<O>,
        host: Host<'_>,
        gone: &mut Bin<Gone<T>>,
    ) -> (Arc<Slot<O>>, Option<usize>)
    where
        O: Send + 'static,
        F: Matcher<T, O> + 'static,
    {
        let first = outcome_of(catch_unwind(AssertUnwindSafe(|| {
            matcher(None, current, version)
        })));
        let matched = first.is_some();
        let later = closed.then(on_close);
        let slot = Arc::new(Slot::new(first, later, host()));
        let entry = Box::new(Entry {
            matcher,
            slot: slot.clone(),
            on_close,
        });
        if closed {
            gone.push(Gone::Other(entry));
            return (slot, None);
        }
        let key = self.insert(false, self.others.len(), matched, slot_id(&slot));
        self.others.push((entry, key));
        (slot, Some(key))
    }

    /// Tests every wait against the transition `old → new` (to `version`), completes the ones
    /// that match (or whose predicate panics) and collects their sinks.
    #[inline]
    pub(crate) fn offer(
        &mut self,
        old: &T,
        new: &T,
        version: u64,
        wakes: &mut Wakes,
        gone: &mut Bin<Gone<T>>,
    ) {
        if !self.eq_targets.is_empty() {
            self.scan_eq(new, wakes, gone);
        }
        let mut i = 0;
        while i < self.others.len() {
            if self.others[i].0.offer(old, new, version, wakes) {
                self.take(false, i, true, gone);
            } else {
                i += 1;
            }
        }
    }

    /// The equality scan over the dense targets: a match, or a panicking `PartialEq`, completes
    /// that wait (with the value, or the panic), and the scan goes on after it.
    fn scan_eq(&mut self, new: &T, wakes: &mut Wakes, gone: &mut Bin<Gone<T>>) {
        let mut from = 0;
        while let Some((at, outcome)) = find_eq(&self.eq_targets, from, new) {
            self.eq_waits[at].0.fill(outcome, wakes);
            self.take(true, at, true, gone);
            // The last target moved to `at`: test it next.
            from = at;
        }
    }
}

/// Targets compared per step of the scan: every comparison of a chunk is made, without
/// stopping at the first match, so that the compiler can compare a chunk at once (SIMD for
/// plain data); only a chunk with a match is looked at one by one.
const CHUNK: usize = 32;

/// The first target at or after `from` equal to `new`, with what its wait completes with: a
/// clone of `new`, or the panic of `T`'s `PartialEq` or `Clone` — which goes to the wait whose
/// target was being compared (`cursor` follows the comparisons; for a `PartialEq` that cannot
/// unwind, the compiler keeps it out of the loop).
fn find_eq<T: Clone + PartialEq>(
    targets: &[T],
    from: usize,
    new: &T,
) -> Option<(usize, Outcome<T>)> {
    let mut cursor = from;
    let found = catch_unwind(AssertUnwindSafe(|| {
        if targets.len() - from < CHUNK {
            // A few targets: one by one (the chunked scan's set-up costs more than it saves).
            for target in &targets[from..] {
                let equal = target == new;
                if equal {
                    return Some(cursor);
                }
                cursor += 1;
            }
            return None;
        }
        for chunk in targets[from..].chunks(CHUNK) {
            let start = cursor;
            let hit = chunk.iter().fold(false, |hit, target| {
                let equal = target == new;
                cursor += 1;
                hit | equal
            });
            if hit {
                cursor = start;
                let at = chunk.iter().position(|target| {
                    let equal = target == new;
                    cursor += 1;
                    equal
                });
                // `None`: a `PartialEq` that is not a function of its inputs; go on.
                if let Some(k) = at {
                    return Some(start + k);
                }
                cursor = start + chunk.len();
            }
        }
        None
    }));
    match found {
        Ok(None) => None,
        Ok(Some(at)) => {
            let cloned = catch_unwind(AssertUnwindSafe(|| Some(new.clone())));
            Some((at, outcome_of(cloned).expect("a clone or a panic")))
        }
        Err(payload) => Some((cursor, Outcome::Panicked(payload))),
    }
}
