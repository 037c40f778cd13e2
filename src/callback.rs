//! Callbacks, run outside the lock and in the global order: transitions queue up under the
//! lock, and the setter that finds no dispatch in progress drains the queue, running them.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::loom::{Arc, AtomicBool, Ordering, Weak};
use crate::state::Shared;
use crate::waits::Payload;
use crate::Transition;

/// An `on_change` callback.
pub(crate) type ChangeFn<T> = Box<dyn FnMut(&T, &T) + Send>;

/// The dispatcher's next step: the transition to run with the list of callbacks, if any.
type Step<T> = Option<(Transition<T>, Vec<Callback<T>>)>;

/// What a registered callback does.
enum Kind<T> {
    /// `on_change`: called with `(old, new)` for every transition.
    Change(ChangeFn<T>),
    /// `on_value`: called once, at the first transition to the value.
    Value(T, Option<Box<dyn FnOnce() + Send>>),
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
}

impl<T: PartialEq> Callback<T> {
    fn is_spent(&self) -> bool {
        self.cancelled.load(Ordering::Acquire) || matches!(self.kind, Kind::Value(_, None))
    }

    /// Runs the callback for `transition` if it applies, containing a panic.
    fn run(&mut self, transition: &Transition<T>) {
        if transition.version <= self.since || self.is_spent() {
            return;
        }
        // A panicking callback stays registered and stops nothing else: the panic is
        // contained here and, like any panic, reported by the panic hook.
        let _ = catch_unwind(AssertUnwindSafe(|| match &mut self.kind {
            Kind::Change(f) => f(&transition.old, &transition.new),
            Kind::Value(want, f) => {
                if transition.new == *want {
                    if let Some(f) = f.take() {
                        self.cancelled.store(true, Ordering::Release);
                        f();
                    }
                }
            }
        }));
    }
}

/// The callbacks of a value and the transitions waiting for them.
pub(crate) struct Callbacks<T> {
    /// The callbacks, while no dispatcher has them out.
    list: Vec<Callback<T>>,
    /// How many callbacks a dispatcher has out.
    out: usize,
    /// Transitions not yet dispatched, in order.
    queue: VecDeque<Transition<T>>,
    /// Whether a dispatcher is draining `queue`.
    dispatching: bool,
    next_id: u64,
}

impl<T: Clone + PartialEq> Callbacks<T> {
    pub(crate) fn new() -> Self {
        Callbacks {
            list: Vec::new(),
            out: 0,
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
    pub(crate) fn add_change(&mut self, f: ChangeFn<T>, version: u64) -> (u64, Arc<AtomicBool>) {
        self.add(Kind::Change(f), version)
    }

    /// Registers an `on_value` callback for transitions after `version`.
    pub(crate) fn add_value(
        &mut self,
        want: T,
        f: Box<dyn FnOnce() + Send>,
        version: u64,
    ) -> (u64, Arc<AtomicBool>) {
        self.add(Kind::Value(want, Some(f)), version)
    }

    fn add(&mut self, kind: Kind<T>, since: u64) -> (u64, Arc<AtomicBool>) {
        let id = self.next_id;
        self.next_id += 1;
        let cancelled = Arc::new(AtomicBool::new(false));
        self.list.push(Callback {
            id,
            since,
            cancelled: cancelled.clone(),
            kind,
        });
        (id, cancelled)
    }

    /// Removes callback `id` if the list is here; a dispatcher that has it out skips it by its
    /// flag and drops it when it puts the list back. Returns it, to drop outside the lock.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Callback<T>> {
        let index = self.list.iter().position(|cb| cb.id == id)?;
        Some(self.list.swap_remove(index))
    }

    /// Queues a transition. Returns `true` if the caller must become the dispatcher.
    pub(crate) fn enqueue(&mut self, transition: Transition<T>) -> bool {
        self.queue.push_back(transition);
        // MUTANT (loom-tests/mutants.sh): forgets that a dispatch is running: every setter
        // dispatches.
        #[cfg(keepwatch_mutant = "dispatch_without_flag")]
        let _ = std::mem::take(&mut self.dispatching);
        !std::mem::replace(&mut self.dispatching, true)
    }

    /// Drops every callback (the value closed and nothing is left to dispatch). Returns them,
    /// to drop outside the lock.
    pub(crate) fn clear_if_idle(&mut self) -> Vec<Callback<T>> {
        if self.dispatching {
            return Vec::new();
        }
        std::mem::take(&mut self.list)
    }

    /// The dispatcher's step: takes back the list it ran (pruning spent callbacks) and hands
    /// out the next transition with the list, or ends the dispatch. Returns, too, what to drop
    /// outside the lock.
    fn step(&mut self, ran: Vec<Callback<T>>, closed: bool) -> (Step<T>, Vec<Callback<T>>) {
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

/// Runs the queued callbacks until the queue is empty. Called, outside the lock, by the setter
/// that became the dispatcher.
///
/// Callbacks' panics are contained where they run. A panic while dropping a dispatched
/// transition or a spent callback (a `Drop` impl of the user's) is held until the queue is
/// drained, then resumed, so the dispatch never stops half-way.
pub(crate) fn dispatch<T: Clone + PartialEq + Send + 'static>(shared: &Shared<T>) {
    let mut list = Vec::new();
    let mut panic = None;
    loop {
        let ran = std::mem::take(&mut list);
        let (next, spent) = shared.locked(|st| {
            let closed = st.closed;
            st.callbacks.step(ran, closed)
        });
        drop_contained(spent, &mut panic);
        let Some((transition, taken)) = next else {
            break;
        };
        list = taken;
        for callback in &mut list {
            callback.run(&transition);
        }
        drop_contained(transition, &mut panic);
    }
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

/// Drops `value`, keeping the first panic its `Drop` raises in `panic`.
fn drop_contained<V>(value: V, panic: &mut Option<Payload>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(value))) {
        panic.get_or_insert(payload);
    }
}

/// The value side of a [`CallbackHandle`], with the value's type erased.
pub(crate) trait CallbackHost: Send + Sync {
    /// Removes callback `id`.
    fn cancel(&self, id: u64);
}

/// A registered callback, returned by [`on_change`](crate::ValueWatcher::on_change) and
/// [`on_value`](crate::ValueWatcher::on_value).
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
    /// returns; a call already running on another thread finishes.
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
