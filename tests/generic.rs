//! API.md, "Generic code": the public types carry no bounds in their definitions, and each
//! method asks only for what it needs. These helpers are written with the *minimal* bounds
//! and must compile (that is most of the test); each is also exercised.

mod common;

use std::fmt::Debug;

use common::*;
use keepwatch::{Error, Recv, Subscription, Transition, ValueReader, ValueWatcher, Wait};

/// Reading a subscription needs only `T: Clone` (API.md's example, verbatim in meaning).
fn drain<T: Clone>(sub: &mut Subscription<T>) -> Vec<Transition<T>> {
    std::iter::from_fn(|| sub.try_recv().unwrap()).collect()
}

/// Every finisher of a wait needs nothing of `O`.
fn finish<O>(w: Wait<O>) -> Result<O, Error> {
    w.blocking_timeout(LONG)
}

/// Awaiting a wait needs nothing of `O` either.
async fn finish_async<O>(w: Wait<O>) -> Result<O, Error> {
    w.timeout(LONG).await
}

/// A receive's finishers need `T: Clone` (a transition is cloned out of the shared log).
fn next_new<T: Clone>(sub: &mut Subscription<T>) -> Result<T, Error> {
    sub.recv().blocking_timeout(LONG).map(|t| t.new)
}

/// A `Recv` named in a signature, with only `T: Clone`.
fn receive<'a, T: Clone>(sub: &'a mut Subscription<T>) -> Recv<'a, T> {
    sub.recv()
}

/// The subscription's queue and close state need nothing of `T`.
fn backlog<T>(sub: &Subscription<T>) -> (usize, bool) {
    (sub.len(), sub.is_closed())
}

/// `initial` needs nothing of `T`.
fn first_old<T>(sub: &Subscription<T>) -> &T {
    sub.initial()
}

/// A struct holding a `ValueWatcher<T>` with no bounds at all.
struct Holder<T> {
    value: ValueWatcher<T>,
    name: &'static str,
}

impl<T> Holder<T> {
    fn new(initial: T, name: &'static str) -> Self {
        Holder {
            value: ValueWatcher::new(initial),
            name,
        }
    }

    /// Reading, closing and counting need nothing of `T`.
    fn status(&self) -> (u64, bool, usize) {
        (
            self.value.version(),
            self.value.is_closed(),
            self.value.watcher_count(),
        )
    }

    fn shut(&self) {
        self.value.close();
    }

    fn read_side(&self) -> ValueReader<T> {
        self.value.reader()
    }

    fn len_with(&self, f: impl FnOnce(&T) -> usize) -> usize {
        self.value.with(f)
    }
}

impl<T: Clone> Holder<T> {
    /// `get` and `subscribe` need only `Clone`.
    fn snapshot(&self) -> (T, Subscription<T>) {
        (self.value.get(), self.value.subscribe())
    }
}

impl<T: Clone + PartialEq + Send + 'static> Holder<T> {
    /// Setting and waiting need `Clone + PartialEq + Send + 'static`.
    fn bump(&self, v: T) -> bool {
        self.value.set(v)
    }
}

/// A struct holding the read side, with no bounds, and a wait.
struct Watching<T, O> {
    reader: ValueReader<T>,
    pending: Option<Wait<O>>,
}

impl<T, O> Watching<T, O> {
    fn ended(&mut self) -> Option<Result<O, Error>> {
        self.pending.take().map(finish)
    }

    fn is_closed(&self) -> bool {
        self.reader.is_closed()
    }
}

/// Generic over the reader: `get` with `T: Clone`.
fn read_twice<T: Clone + Debug>(r: &ValueReader<T>) -> String {
    format!("{:?}/{:?}", r.get(), r.get())
}

/// A type that is neither `Clone`, `PartialEq`, `Send` nor `Debug`.
struct Opaque(std::rc::Rc<Vec<u8>>);

#[test]
fn drain_with_only_clone_collects_every_queued_transition() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        v.set(1);
        v.set(2);
        let got = drain(&mut sub);
        assert_eq!(got.iter().map(|t| t.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(*first_old(&sub), 0);
        assert_eq!(backlog(&sub), (0, false));
        v.set(3);
        assert_eq!(next_new(&mut sub), Ok(3));
        v.set(4);
        assert_eq!(
            receive(&mut sub).blocking_timeout(LONG).map(|t| t.new),
            Ok(4)
        );
    });
}

#[test]
fn finish_with_no_bounds_works_for_every_output_type() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let unit = v.closed();
        let value = v.wait_for(1);
        let transition = v.wait_transition(|o, n| n > o);
        let mapped = v.wait_map(|x| (*x == 1).then(|| String::from("one")));
        v.set(1);
        assert_eq!(finish(value), Ok(1));
        assert_eq!(finish(transition).map(|t| t.version), Ok(1));
        assert_eq!(finish(mapped), Ok("one".to_owned()));
        let timed = v.wait_for(9);
        v.close();
        assert_eq!(finish(unit), Ok(()));
        assert_eq!(
            futures::executor::block_on(finish_async(timed)),
            Err(Error::Closed)
        );
    });
}

#[test]
fn a_struct_holding_a_value_watcher_needs_no_bounds_and_its_methods_ask_only_what_they_need() {
    watchdog(|| {
        // `Opaque` is not `Clone`, `PartialEq`, `Send` or `Debug`: the holder still works.
        let opaque = Holder::new(Opaque(std::rc::Rc::new(vec![1, 2, 3])), "opaque");
        assert_eq!(opaque.status(), (0, false, 0));
        assert_eq!(opaque.len_with(|o| o.0.len()), 3);
        let reader = opaque.read_side();
        opaque.shut();
        assert!(reader.is_closed());
        assert_eq!(opaque.name, "opaque");

        let plain = Holder::new(String::from("a"), "plain");
        let (now, mut sub) = plain.snapshot();
        assert_eq!(now, "a");
        assert!(plain.bump("b".to_owned()));
        assert_eq!(drain(&mut sub).len(), 1);
        assert_eq!(read_twice(&plain.read_side()), "\"b\"/\"b\"");

        let mut watching = Watching {
            reader: plain.read_side(),
            pending: Some(plain.value.wait_for("c".to_owned())),
        };
        assert!(plain.bump("c".to_owned()));
        assert_eq!(watching.ended(), Some(Ok("c".to_owned())));
        assert_eq!(watching.ended(), None);
        assert!(!watching.is_closed());
    });
}
