//! Derived values: `map` and `zip`. A derived value is a value whose only setter is its
//! sources' order: each source offers it every transition, in that source's order, through a
//! link registered among the source's callbacks.
//!
//! - Registration reads the sources' current values and installs the links in one critical
//!   section (both sources' locks for a `zip`), so no transition falls between.
//! - The links run like callbacks: after the source's lock is released, in the source's global
//!   order, on a setter's thread. A derived value takes each offer under its own lock, so its
//!   own waits, subscriptions and callbacks see every value it took.
//! - Sources hold their links to a derived value weakly; the derived value holds its sources
//!   strongly and unregisters from them when it is dropped. When a source closes, its links
//!   are dropped, and a derived value whose sources have all closed closes.

use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::callback::{CallbackHost, Link, SourceLink};
use crate::fault;
use crate::loom::{Arc, AtomicBool, Ordering, Weak};
use crate::state::{Shared, State};
use crate::Transition;

/// A derived value lost one source: it closes once it has none open.
fn source_closed<U>(target: &Shared<U>) {
    if target.open_sources.fetch_sub(1, Ordering::AcqRel) == 1 {
        target.close();
    }
}

/// A `map`'s link: `f` of each of the source's new values.
struct MapLink<T, U, F> {
    target: Weak<Shared<U>>,
    f: Arc<F>,
    /// `f` panicked: the derived value is closed and this link offers nothing more.
    dead: bool,
    _source: PhantomData<fn(&T)>,
}

impl<T, U, F> Link<T> for MapLink<T, U, F>
where
    U: Clone + PartialEq + Send + 'static,
    F: Fn(&T) -> U + Send + Sync + 'static,
{
    fn offer(&mut self, transition: &Transition<T>) {
        let Some(target) = self.target.upgrade().filter(|_| !self.dead) else {
            return;
        };
        match catch_unwind(AssertUnwindSafe(|| (self.f)(&transition.new))) {
            Ok(mapped) => target.act(|st, fx| {
                st.set(mapped, fx);
            }),
            Err(payload) => {
                // Not the setter's panic: the derived value closes, and its waits end.
                fault::discard(payload);
                self.dead = true;
                target.close();
            }
        }
    }

    fn is_live(&self) -> bool {
        !self.dead && self.target.strong_count() > 0
    }
}

impl<T, U, F> Drop for MapLink<T, U, F> {
    /// The source will offer nothing more (it closed, or the link was pruned).
    fn drop(&mut self) {
        if let Some(target) = self.target.upgrade() {
            source_closed(&target);
        }
    }
}

/// A `zip`'s link for one source (`LEFT`: the pair's first component, else the second):
/// pairs the source's new value with the other side as the pair last saw it.
struct ZipLink<A, B, const LEFT: bool> {
    target: Weak<Shared<(A, B)>>,
    dead: bool,
}

impl<A, B, const LEFT: bool> ZipLink<A, B, LEFT>
where
    A: Clone + PartialEq + Send + 'static,
    B: Clone + PartialEq + Send + 'static,
{
    /// Offers the pair `make` builds from the pair's current value, under the pair's lock (the
    /// clones are user code: a panic there closes the pair).
    fn offer_pair(&mut self, make: impl FnOnce(&(A, B)) -> (A, B)) {
        let Some(target) = self.target.upgrade().filter(|_| !self.dead) else {
            return;
        };
        let offered = catch_unwind(AssertUnwindSafe(|| {
            target.act(|st, fx| {
                let pair = make(&st.value);
                st.set(pair, fx);
            })
        }));
        if let Err(payload) = offered {
            fault::discard(payload);
            self.dead = true;
            target.close();
        }
    }

    fn live(&self) -> bool {
        !self.dead && self.target.strong_count() > 0
    }
}

impl<A, B> Link<A> for ZipLink<A, B, true>
where
    A: Clone + PartialEq + Send + 'static,
    B: Clone + PartialEq + Send + 'static,
{
    fn offer(&mut self, transition: &Transition<A>) {
        self.offer_pair(|pair| (transition.new.clone(), pair.1.clone()));
    }

    fn is_live(&self) -> bool {
        self.live()
    }
}

impl<A, B> Link<B> for ZipLink<A, B, false>
where
    A: Clone + PartialEq + Send + 'static,
    B: Clone + PartialEq + Send + 'static,
{
    fn offer(&mut self, transition: &Transition<B>) {
        self.offer_pair(|pair| (pair.0.clone(), transition.new.clone()));
    }

    fn is_live(&self) -> bool {
        self.live()
    }
}

impl<A, B, const LEFT: bool> Drop for ZipLink<A, B, LEFT> {
    /// The source will offer nothing more (it closed, or the link was pruned).
    fn drop(&mut self) {
        if let Some(target) = self.target.upgrade() {
            source_closed(&target);
        }
    }
}

/// A link reserved with an open source: its id and cancel flag there, to register once the
/// derived value exists (`Callbacks::insert_link`, in the same critical section).
type Reserved = (u64, Arc<AtomicBool>);

/// Reserves a link with `source` (whose locked state is `st`), unless it is closed: the
/// reservation, and the derived value's side of it.
fn reserve<S: Send + 'static>(
    source: &Arc<Shared<S>>,
    st: &mut State<S>,
) -> Option<(Reserved, SourceLink)> {
    if st.closed {
        return None;
    }
    let (id, cancelled) = st.callbacks.reserve();
    let host: Arc<dyn CallbackHost> = source.clone();
    let link = SourceLink {
        host,
        id,
        cancelled: cancelled.clone(),
    };
    Some(((id, cancelled), link))
}

/// `map`: the derived value `f(&source)`.
pub(crate) fn map<T, U, F>(source: &Arc<Shared<T>>, f: F) -> Arc<Shared<U>>
where
    T: Clone + PartialEq + Send + 'static,
    U: Clone + PartialEq + Send + 'static,
    F: Fn(&T) -> U + Send + Sync + 'static,
{
    // Held out here, so that a panic of `f` drops it after the lock.
    let f = Arc::new(f);
    source.locked(|st| {
        let initial = f(&st.value);
        let (reserved, link) = reserve(source, st).unzip();
        let closed = reserved.is_none();
        let derived = Arc::new(Shared::with_sources(
            initial,
            0,
            link.into_iter().collect(),
            closed,
        ));
        if let Some(reserved) = reserved {
            let link = MapLink {
                target: Arc::downgrade(&derived),
                f: f.clone(),
                dead: false,
                _source: PhantomData,
            };
            st.callbacks
                .insert_link(reserved, Box::new(link), st.version);
        }
        derived
    })
}

/// `zip`: the derived pair `(a, b)`.
pub(crate) fn zip<A, B>(a: &Arc<Shared<A>>, b: &Arc<Shared<B>>) -> Arc<Shared<(A, B)>>
where
    A: Clone + PartialEq + Send + 'static,
    B: Clone + PartialEq + Send + 'static,
{
    let a_addr = Arc::as_ptr(a) as *const () as usize;
    let b_addr = Arc::as_ptr(b) as *const () as usize;
    assert!(
        a_addr != b_addr,
        "keepwatch: `zip` of a value with itself; use `map(|v| (v.clone(), v.clone()))`"
    );
    let register = |sa: &mut State<A>, sb: &mut State<B>| {
        // Clone first: a panicking `Clone` registers nothing.
        let initial = (sa.value.clone(), sb.value.clone());
        let (reserved_a, link_a) = reserve(a, sa).unzip();
        let (reserved_b, link_b) = reserve(b, sb).unzip();
        let links: Vec<SourceLink> = link_a.into_iter().chain(link_b).collect();
        let closed = links.is_empty();
        let derived = Arc::new(Shared::with_sources(initial, 0, links, closed));
        let target = Arc::downgrade(&derived);
        if let Some(reserved) = reserved_a {
            let link: ZipLink<A, B, true> = ZipLink {
                target: target.clone(),
                dead: false,
            };
            sa.callbacks
                .insert_link(reserved, Box::new(link), sa.version);
        }
        if let Some(reserved) = reserved_b {
            let link: ZipLink<A, B, false> = ZipLink {
                target,
                dead: false,
            };
            sb.callbacks
                .insert_link(reserved, Box::new(link), sb.version);
        }
        derived
    };
    // Both locks at once, the lower address first, so that two `zip`s of the same values
    // never take them in opposite orders.
    if a_addr < b_addr {
        a.locked(|sa| b.locked(|sb| register(sa, sb)))
    } else {
        b.locked(|sb| a.locked(|sa| register(sa, sb)))
    }
}
