//! An observable value that OS threads and async tasks (on any executor) can set, read and
//! wait on, where **no transition is ever lost**.
//!
//! A condition variable, or `tokio::sync::watch`, tells a waiter "something changed, look at
//! the current value". When the value moves `Closing → Closed` before the waiter runs, a
//! waiter for `Closing` only ever sees `Closed` and sleeps forever. keepwatch remembers
//! transitions: a wait completes with the first value that matched, even if the value has
//! moved on, and every subscription and callback sees every transition, in one global order.
//!
//! ```
//! use keepwatch::ValueWatcher;
//!
//! #[derive(Clone, Debug, PartialEq)]
//! enum Conn { Connecting, Connected, Closing, Closed }
//!
//! let state = ValueWatcher::new(Conn::Connecting);
//! let drain = state.wait_for(Conn::Closing); // registered now: nothing below is missed
//!
//! state.set(Conn::Closing);
//! state.set(Conn::Closed); // changed again before the waiter ran
//!
//! # futures::executor::block_on(async {
//! assert_eq!(drain.await, Ok(Conn::Closing)); // async, on any executor
//! # });
//! // or, on a plain OS thread: drain.blocking()
//! ```
//!
//! # Guarantees
//!
//! - **Nothing lost.** A wait completes with the first match among the current value at its
//!   creation and every later transition, in order, even if the value has moved on by the time
//!   the waiter runs. A subscription receives every transition made after it was created,
//!   each exactly once.
//! - **One global order.** Every transition gets its place, and its gap-free
//!   [`version`](Transition::version), under the value's lock. Two subscriptions, or a
//!   subscription and the callbacks, never see transitions in different orders, whatever
//!   threads the setters run on.
//! - **Exactly once.** An [`on_value`](ValueReader::on_value) callback fires once; a wait
//!   completes once; a subscription gets each transition once.
//! - **Cancellation.** Dropping a [`Wait`], [`Subscription`] or [`Recv`] at any point
//!   deregisters it; [`watcher_count`](ValueReader::watcher_count) goes back down.
//! - **Close.** See [below](#close).
//! - **Threads and tasks, mixed.** Every wait is a [`Future`](std::future::Future) for any
//!   executor (tokio, smol, `futures::executor`, …) and can also block an OS thread
//!   (`blocking`, `blocking_timeout`, `blocking_deadline`). `set` never blocks on a waiter and
//!   is safe to call from inside an async task. Don't call the `blocking*` finishers on an
//!   async runtime's worker thread: they block it.
//!
//! # Costs
//!
//! - `set` with nobody watching: one short lock, one store.
//! - `set` with pending waits: equality waits are compared in place over a dense array of
//!   their targets; other waits run their predicate. O(number of pending waits), no
//!   allocation; a matched wait's result goes straight into its own slot, which its waiter
//!   reads without taking the value's lock.
//! - `set` with idle subscriptions: O(1). Transitions go into one log shared by every
//!   subscription, each read with its own cursor, and are freed once all have read them.
//! - A one-shot wait is a slot, not a queue: the setter tests it and fills it, so a waiter is
//!   woken once, when its condition holds, not on every change.
//!
//! # User code under the lock
//!
//! The closures of [`with`](ValueReader::with), [`set_if`](ValueWatcher::set_if),
//! [`update`](ValueWatcher::update) and [`modify`](ValueWatcher::modify), the predicates of
//! [`wait_until`](ValueReader::wait_until), [`wait_map`](ValueReader::wait_map) and
//! [`wait_transition`](ValueReader::wait_transition), and `T`'s `Clone` and `PartialEq` run
//! while the value's lock is held, so that their answer is part of the global order. They must
//! be quick and must not call into the same value: if they do, they get a panic with a clear
//! message, never a deadlock. A panic in a `set_if`, `update` or `modify` closure reaches its
//! caller and leaves the value unchanged and usable; a panic in a wait's predicate reaches that
//! wait's finisher and no one else. The functions of [`map`](ValueReader::map) and
//! [`zip`](ValueReader::zip) follow the rules of predicates.
//!
//! Calls into *another* value are fine, with one rule: two threads must not, each from code
//! under one value's lock, call into the other's value at the same time (A's closure reads B
//! while B's closure reads A). That would be a lock-order cycle; keepwatch detects it on the
//! slow path of the nested call and panics with a clear message in one of the two threads
//! instead of hanging both.
//!
//! Callbacks ([`on_change`](ValueReader::on_change), [`on_value`](ValueReader::on_value))
//! run outside the lock, on a thread that set the value, in the global order; they may call
//! anything on the same value. A callback that panics stays registered and stops nothing.
//!
//! # Panics in user code
//!
//! Everything keepwatch runs that it did not write — `T`'s `Clone`, `PartialEq` and `Drop`,
//! closures and predicates and what they captured, callbacks, wakers — may panic without
//! losing a transition, leaving a waiter asleep or aborting the process:
//! - a panic in code the caller handed to the call (a closure, a predicate at creation, `T`'s
//!   `Clone`/`PartialEq` while deciding) reaches that caller, with the value unchanged;
//! - a wait's predicate panicking on a later transition reaches that wait's finisher only;
//! - wakers and callbacks belong to other parties: their panics are contained (reported by the
//!   panic hook, raised nowhere), and every other waiter is still woken, every other callback
//!   still runs, in order;
//! - user values and closures are always dropped after the lock is released; the first panic
//!   of such a `Drop` reaches the call that let go of the value once everything else it had to
//!   do is done (a `set` has then fully taken effect), and is discarded if the thread is
//!   already unwinding — so a panicking `Drop` never aborts the process;
//! - a panic payload whose own `Drop` panics is forgotten, not dropped.
//!
//! # Derived values and read-only handles
//!
//! [`ValueReader`] is a handle that reads, waits and derives but cannot set: hand it out with
//! [`ValueWatcher::reader`]. [`map`](ValueReader::map) and [`zip`](ValueReader::zip) make
//! derived values, first-class values that lose nothing: a wait on `conn.map(|c| c.phase())`
//! for a phase the connection passed through for a microsecond still completes.
//!
//! # Close
//!
//! A value is closed by [`close`](ValueWatcher::close) or when its last [`ValueWatcher`] is
//! dropped (subscriptions, waits, weak handles and callback handles do not keep it open).
//! Then:
//! - pending waits that have not matched complete with [`Error::Closed`]; a wait that already
//!   matched still returns its value;
//! - subscriptions deliver every transition queued before the close, then `recv` gives
//!   [`Error::Closed`] and the stream and the iterator end;
//! - a wait created after the close completes at once: `Ok` if the current value matches (and
//!   `skip_current` was not used), else [`Error::Closed`] (always, for `wait_transition` and
//!   `wait_for_change`);
//! - a subscription created after the close is empty;
//! - `set`, `set_if` and `update` change nothing and return `false`; `get` still returns the
//!   last value.
//!
//! # Features
//!
//! - `tokio` (off by default): a wait or a receive that is ready at once spends a unit of the
//!   tokio task's cooperative budget when polled inside a tokio runtime, so a loop such as
//!   `while let Ok(t) = sub.recv().await { … }` over a long queue, or over ready waits on a
//!   closed value, yields to sibling tasks as tokio's own primitives do. Without the feature
//!   keepwatch depends on no runtime.
//!
//! # keepwatch versus `tokio::sync::watch`
//!
//! `watch` keeps only the latest value: a receiver that is slow to look sees the last one, and
//! its `wait_for` tests only values it happens to observe. That is right for "the latest
//! config", wrong for a state machine whose intermediate states matter. keepwatch delivers
//! every transition, works from plain threads as well as tasks, and wakes a waiter only when
//! its condition holds. `tokio::sync::broadcast` delivers every message but drops the oldest
//! for a slow receiver (`Lagged`) and has no notion of a current value or a condition to wait
//! for; keepwatch's subscriptions are unbounded and lossless.

#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

// The modules (alphabetical, as rustfmt keeps them). Their dependency order, bottom to top, is
// in README's "Design": loom, fault, error, transition, coop, timeout, slab, sink, lock, spin,
// slot, log, callback, registry, blocking, state, wait, subscription, derive, reader, value.
mod blocking; // the park loop and the finishers written once
mod callback; // callbacks and their queue; `CallbackHandle`
mod coop; // tokio's cooperative budget (the `tokio` feature)
mod derive; // `map` and `zip`
mod error;
mod fault; // containing panics of user code
mod lock; // a value's lock: re-entrancy and lock-order cycles become panics
mod log; // the transition log subscriptions read
mod loom; // the sync shim: std/parking_lot, or loom under `cfg(keepwatch_loom)`
mod reader; // `ValueReader`: every reading, waiting, deriving method
mod registry; // the pending waits of a value
mod sink; // whom to wake: a waker or a thread; registering without user code under a lock
mod slab; // small containers: a slab, a drop bin
mod slot; // one wait's outcome, filled by the setter, taken by the waiter
mod spin; // the spin lock of a wait's slot: the only `unsafe`
mod state; // the locked state and `Effects`: decide under the lock, act after it
mod subscription; // `Subscription`, `Recv`, iterators and streams
mod timeout; // `Timeout`: an async time limit that needs no runtime
mod transition;
mod value; // `ValueWatcher`: the methods that change the value; `WeakValueWatcher`
mod wait; // `Wait`

pub use callback::CallbackHandle;
pub use error::Error;
pub use reader::ValueReader;
pub use subscription::{Iter, IterResults, Recv, Results, Subscription};
pub use timeout::Timeout;
pub use transition::Transition;
pub use value::{ValueWatcher, WeakValueWatcher};
pub use wait::Wait;

/// Compile-time checks of the auto traits the documentation promises.
#[allow(dead_code)]
fn _assert_auto_traits() {
    fn send<X: Send>() {}
    fn sync<X: Sync>() {}
    fn unpin<X: Unpin>() {}
    fn all<T: Clone + PartialEq + Send + Unpin + 'static>() {
        send::<ValueWatcher<T>>();
        sync::<ValueWatcher<T>>();
        send::<ValueReader<T>>();
        sync::<ValueReader<T>>();
        send::<WeakValueWatcher<T>>();
        sync::<WeakValueWatcher<T>>();
        send::<Wait<T>>();
        unpin::<Wait<T>>();
        send::<Timeout<Wait<T>>>();
        unpin::<Timeout<Wait<T>>>();
        send::<Subscription<T>>();
        unpin::<Subscription<T>>();
        send::<Recv<'static, T>>();
        unpin::<Recv<'static, T>>();
        send::<Timeout<Recv<'static, T>>>();
        unpin::<Timeout<Recv<'static, T>>>();
        send::<CallbackHandle>();
        sync::<CallbackHandle>();
        send::<Error>();
        sync::<Error>();
    }
    all::<u64>();
}
