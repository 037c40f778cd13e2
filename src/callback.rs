//! The callbacks of a value and the transitions queued for them: transitions queue up under
//! the lock, and the setter that finds no dispatch in progress becomes the dispatcher and runs
//! them outside it (the loop itself is `Shared::dispatch`). Also `CallbackHandle`.

use std::collections::VecDeque;
use std::fmt;

use crate::fault;
use crate::loom::{Arc, AtomicBool, Ordering, Weak};
use crate::Transition;

/// An `on_change` callback.
pub(crate) type ChangeFn<T> = Box<dyn FnMut(&T, &T) + Send>;

/// What a removed callback held: its closure (or link), and what kept a derived value alive.
pub(crate) type Removed<T> = (Kind<T>, Option<Arc<dyn Send + Sync>>);

/// The dispatcher's next step: the transition to run with the list of callbacks, if any.
pub(crate) type Step<T> = Option<(Transition<T>, Vec<Callback<T>>)>;

/// A derived value's side of its link with a source: offered each of the source's transitions,
/// in the source's order, as a callback is (see `derive.rs`).
pub(crate) trait Link<T>: Send {
    /// Offers the source's transition to the derived value.
    fn offer(&mut self, transition: &Transition<T>);
    /// Whether the derived value can still be observed (otherwise the link is pruned).
    fn is_live(&self) -> bool;
}

/// What a registered callback does.
pub(crate) enum Kind<T> {
    /// `on_change`: called with `(old, new)` for every transition.
    Change(ChangeFn<T>),
    /// `on_value`: called once, at the first transition to the value.
    Value(T, Option<Box<dyn FnOnce() + Send>>),
    /// A derived value's link.
    Derived(Box<dyn Link<T>>),
    /// Cancelled: what it held was let go of; the entry goes at the next compaction.
    Removed,
}

/// One registered callback.
pub(crate) struct Callback<T> {
    id: u64,
    /// The value's version when it was registered: it runs only for later transitions.
    since: u64,
    /// Set by `CallbackHandle::cancel` (or once an `on_value` has fired); checked before every
    /// call, so a cancel takes effect even while a dispatcher holds the list.
    cancelled: Arc<AtomicBool>,
    kind: Kind<T>,
    /// On a derived value, the value itself: a callback keeps a derived value alive (it has no
    /// other owner a callback could capture). Dropped with the callback, outside the lock.
    _keep: Option<Arc<dyn Send + Sync>>,
}

impl<T> Callback<T> {
    fn is_spent(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
            || match &self.kind {
                Kind::Change(_) => false,
                Kind::Value(_, f) => f.is_none(),
                Kind::Derived(link) => !link.is_live(),
                Kind::Removed => true,
            }
    }
}

impl<T: PartialEq> Callback<T> {
    /// Runs the callback for `transition` if it applies, containing a panic.
    pub(crate) fn run(&mut self, transition: &Transition<T>) {
        if transition.version <= self.since || self.is_spent() {
            return;
        }
        // A panicking callback stays registered and stops nothing else: the panic is
        // contained here and, like any panic, reported by the panic hook. Its payload is
        // discarded without letting a panicking `Drop` of the payload escape.
        fault::contain(|| match &mut self.kind {
            Kind::Change(f) => f(&transition.old, &transition.new),
            Kind::Value(want, f) => {
                if transition.new == *want {
                    if let Some(f) = f.take() {
                        self.cancelled.store(true, Ordering::Release);
                        f();
                    }
                }
            }
            Kind::Derived(link) => link.offer(transition),
            Kind::Removed => {}
        });
    }
}

/// The callbacks of a value and the transitions waiting for them.
pub(crate) struct Callbacks<T> {
    /// The callbacks, while no dispatcher has them out.
    list: Vec<Callback<T>>,
    /// How many callbacks a dispatcher has out.
    out: usize,
    /// Tombstones in `list` (see `remove`).
    removed: usize,
    /// Transitions not yet dispatched, in order.
    queue: VecDeque<Transition<T>>,
    /// Whether a dispatcher is draining `queue`.
    dispatching: bool,
    next_id: u64,
}

impl<T> Callbacks<T> {
    pub(crate) fn new() -> Self {
        Callbacks {
            list: Vec::new(),
            out: 0,
            removed: 0,
            queue: VecDeque::new(),
            dispatching: false,
            next_id: 0,
        }
    }

    /// Whether a transition must be queued for dispatch.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.out + self.list.len() > 0
    }

    /// Registers an `on_change` callback for transitions after `version`.
    pub(crate) fn add_change(
        &mut self,
        f: ChangeFn<T>,
        version: u64,
        keep: Option<Arc<dyn Send + Sync>>,
    ) -> (u64, Arc<AtomicBool>) {
        self.add(Kind::Change(f), version, keep)
    }

    /// Registers an `on_value` callback for transitions after `version`.
    pub(crate) fn add_value(
        &mut self,
        want: T,
        f: Box<dyn FnOnce() + Send>,
        version: u64,
        keep: Option<Arc<dyn Send + Sync>>,
    ) -> (u64, Arc<AtomicBool>) {
        self.add(Kind::Value(want, Some(f)), version, keep)
    }

    /// Reserves the id and cancel flag of a derived value's link, to be registered with
    /// [`insert_link`](Callbacks::insert_link) in the same critical section.
    pub(crate) fn reserve(&mut self) -> (u64, Arc<AtomicBool>) {
        let id = self.next_id;
        self.next_id += 1;
        (id, Arc::new(AtomicBool::new(false)))
    }

    /// Registers a derived value's link, reserved as `id`, for transitions after `version`.
    pub(crate) fn insert_link(
        &mut self,
        (id, cancelled): (u64, Arc<AtomicBool>),
        link: Box<dyn Link<T>>,
        version: u64,
    ) {
        self.list.push(Callback {
            id,
            since: version,
            cancelled,
            kind: Kind::Derived(link),
            _keep: None,
        });
    }

    fn add(
        &mut self,
        kind: Kind<T>,
        since: u64,
        keep: Option<Arc<dyn Send + Sync>>,
    ) -> (u64, Arc<AtomicBool>) {
        let (id, cancelled) = self.reserve();
        self.list.push(Callback {
            id,
            since,
            cancelled: cancelled.clone(),
            kind,
            _keep: keep,
        });
        (id, cancelled)
    }

    /// Removes callback `id` if the list is here; a dispatcher that has it out skips it by its
    /// flag and drops it when it puts the list back. Returns what it held, to drop outside the
    /// lock.
    ///
    /// The list is ordered by id (callbacks are added with growing ids and keep their order),
    /// so the callback is found by binary search. Its entry stays as a small tombstone, so
    /// that the others keep their order without a move; once tombstones are half the list,
    /// one pass removes them and gives back the storage. O(log n) amortised.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Removed<T>> {
        let index = self.list.binary_search_by_key(&id, |cb| cb.id).ok()?;
        let callback = &mut self.list[index];
        if matches!(callback.kind, Kind::Removed) {
            return None;
        }
        let held = (
            std::mem::replace(&mut callback.kind, Kind::Removed),
            callback._keep.take(),
        );
        self.removed += 1;
        if self.removed * 2 > self.list.len() {
            self.list.retain(|cb| !matches!(cb.kind, Kind::Removed));
            self.removed = 0;
            crate::slab::shrink_if_sparse(&mut self.list);
        }
        Some(held)
    }

    /// Queues a transition. Returns `true` if the caller must become the dispatcher.
    pub(crate) fn enqueue(&mut self, transition: Transition<T>) -> bool {
        self.queue.push_back(transition);
        !std::mem::replace(&mut self.dispatching, true)
    }

    /// Drops every callback (the value closed and nothing is left to dispatch). Returns them,
    /// to drop outside the lock.
    pub(crate) fn clear_if_idle(&mut self) -> Vec<Callback<T>> {
        if self.dispatching {
            return Vec::new();
        }
        self.removed = 0;
        std::mem::take(&mut self.list)
    }

    /// A dispatcher that stopped half-way (something unwound through it) gives back the list
    /// and the flag, so the next setter takes over the queue. Returns what to drop outside the
    /// lock.
    pub(crate) fn abandon(&mut self, ran: Vec<Callback<T>>, closed: bool) -> Vec<Callback<T>> {
        let (step, spent) = self.step(ran, closed);
        if let Some((transition, list)) = step {
            self.queue.push_front(transition);
            self.list = list;
            self.out = 0;
        }
        self.dispatching = false;
        spent
    }

    /// The dispatcher's step: takes back the list it ran (pruning spent callbacks) and hands
    /// out the next transition with the list, or ends the dispatch. Returns, too, what to drop
    /// outside the lock.
    pub(crate) fn step(
        &mut self,
        ran: Vec<Callback<T>>,
        closed: bool,
    ) -> (Step<T>, Vec<Callback<T>>) {
        self.out = 0;
        // Callbacks added while the list was out come after the ones that were out.
        let added = std::mem::replace(&mut self.list, ran);
        self.list.extend(added);
        let mut spent = Vec::new();
        if self.list.iter().any(Callback::is_spent) {
            let (keep, gone) = std::mem::take(&mut self.list)
                .into_iter()
                .partition(|cb| !cb.is_spent());
            self.list = keep;
            self.removed = 0;
            spent = gone;
        }
        match self.queue.pop_front() {
            Some(transition) => {
                let list = std::mem::take(&mut self.list);
                self.out = list.len();
                (Some((transition, list)), spent)
            }
            None => {
                self.dispatching = false;
                if closed {
                    spent.append(&mut self.list);
                }
                (None, spent)
            }
        }
    }
}

/// The value side of a [`CallbackHandle`], with the value's type erased.
pub(crate) trait CallbackHost: Send + Sync {
    /// Removes callback `id` (dropping it outside the lock), unless this thread holds the
    /// value's lock: then it stays flagged, and the next dispatch prunes it.
    fn cancel(&self, id: u64);
}

/// A derived value's registration with one of its sources: unregisters its link when the
/// derived value is dropped (held by the derived value's shared state).
pub(crate) struct SourceLink {
    pub(crate) host: Arc<dyn CallbackHost>,
    pub(crate) id: u64,
    pub(crate) cancelled: Arc<AtomicBool>,
}

impl Drop for SourceLink {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Release);
        self.host.cancel(self.id);
    }
}

impl fmt::Debug for SourceLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceLink").field("id", &self.id).finish()
    }
}

/// A registered callback, returned by [`on_change`](crate::ValueReader::on_change) and
/// [`on_value`](crate::ValueReader::on_value).
///
/// Dropping the handle leaves the callback registered; [`cancel`](CallbackHandle::cancel)
/// removes it. The handle does not keep the value open.
///
/// # Examples
///
/// ```
/// use keepwatch::ValueWatcher;
/// use std::sync::{Arc, Mutex};
///
/// let value = ValueWatcher::new(0);
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let handle = value.on_change(move |old, new| log.lock().unwrap().push((*old, *new)));
/// value.set(1);
/// handle.cancel();
/// value.set(2);
/// assert_eq!(*seen.lock().unwrap(), vec![(0, 1)]);
/// ```
#[must_use = "dropping a CallbackHandle leaves the callback registered; call `cancel` to remove it"]
pub struct CallbackHandle {
    host: Option<Weak<dyn CallbackHost>>,
    id: u64,
    cancelled: Arc<AtomicBool>,
}

impl CallbackHandle {
    pub(crate) fn new(host: Weak<dyn CallbackHost>, id: u64, cancelled: Arc<AtomicBool>) -> Self {
        CallbackHandle {
            host: Some(host),
            id,
            cancelled,
        }
    }

    /// A handle for a callback that was never registered (it already fired, or never will).
    pub(crate) fn inert() -> Self {
        CallbackHandle {
            host: None,
            id: 0,
            cancelled: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Removes the callback. It is not called for any transition dispatched after this
    /// returns; a call already running on another thread finishes. The callback (and what it
    /// captured) is dropped here, outside the value's lock — or, when a dispatch on another
    /// thread has it out, by that dispatcher once the running transition is done.
    ///
    /// # Panics
    ///
    /// If the callback's `Drop` (what it captured) panics: the panic reaches this call, after
    /// the callback is removed.
    ///
    /// # Examples
    ///
    /// ```
    /// use keepwatch::ValueWatcher;
    ///
    /// let value = ValueWatcher::new(0);
    /// let handle = value.on_change(|_, _| panic!("never called"));
    /// handle.cancel();
    /// value.set(1);
    /// ```
    pub fn cancel(self) {
        self.cancelled.store(true, Ordering::Release);
        if let Some(host) = self.host.as_ref().and_then(Weak::upgrade) {
            host.cancel(self.id);
        }
    }

    /// Whether the callback is done: cancelled, or an `on_value` callback that has fired (or
    /// never will, because the value was closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let value = keepwatch::ValueWatcher::new(0);
    /// let once = value.on_value(1, || {});
    /// assert!(!once.is_finished());
    /// value.set(1);
    /// assert!(once.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

impl fmt::Debug for CallbackHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}
