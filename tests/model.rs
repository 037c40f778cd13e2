//! Model-based property test: random sequences of `set`, `set_if`, `update`, `subscribe`,
//! `subscribe_bounded`, dropping a subscription, `try_recv`, `wait_for`, `wait_for_not`,
//! `wait_for_change`, `wait_transition` (with and without `skip_current`), polling and dropping
//! waits, and `close`, checked step by step against a plain sequential model of the contract in
//! API.md. proptest shrinks a failure to a short, readable list of `Op`s.
//!
//! `PROPTEST_CASES=20000 cargo test --release --test model` for a longer run.

mod common;

use std::collections::VecDeque;
use std::task::Poll;

use common::poll_once;
use keepwatch::{Error, Subscription, Transition, ValueWatcher, Wait};
use proptest::prelude::*;

/// One step. Indices pick among the live subscriptions or waits, modulo their number.
#[derive(Clone, Debug)]
enum Op {
    Set(u8),
    SetIf { value: u8, if_current: u8 },
    Increment,
    Subscribe,
    SubscribeBounded(usize),
    DropSub(usize),
    TryRecv(usize),
    WaitFor { value: u8, skip: bool },
    WaitForNot { value: u8, skip: bool },
    WaitForChange,
    WaitRising,
    PollWait(usize),
    DropWait(usize),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4).prop_map(Op::Set),
        2 => (0u8..4, 0u8..4).prop_map(|(value, if_current)| Op::SetIf { value, if_current }),
        1 => Just(Op::Increment),
        2 => Just(Op::Subscribe),
        2 => (1usize..4).prop_map(Op::SubscribeBounded),
        1 => any::<usize>().prop_map(Op::DropSub),
        5 => any::<usize>().prop_map(Op::TryRecv),
        2 => (0u8..4, any::<bool>()).prop_map(|(value, skip)| Op::WaitFor { value, skip }),
        1 => (0u8..4, any::<bool>()).prop_map(|(value, skip)| Op::WaitForNot { value, skip }),
        1 => Just(Op::WaitForChange),
        1 => Just(Op::WaitRising),
        3 => any::<usize>().prop_map(Op::PollWait),
        1 => any::<usize>().prop_map(Op::DropWait),
        1 => Just(Op::Close),
    ]
}

/// What a wait waits for, in the model.
#[derive(Clone, Debug)]
enum Kind {
    Eq(u8),
    Ne(u8),
    Change,
    /// `wait_transition(|old, new| new > old)`.
    Rising,
}

/// The model's expected outcome of a wait.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    Value(u8),
    Transition(u8, u8, u64),
    Closed,
}

struct ModelSub {
    queue: VecDeque<(u8, u8, u64)>,
    bound: Option<usize>,
    lagged: u64,
}

struct ModelWait {
    kind: Kind,
    outcome: Option<Expect>,
}

/// The real wait under test, of either output type.
enum RealWait {
    Value(Wait<u8>),
    Transition(Wait<Transition<u8>>),
}

impl RealWait {
    fn poll(&mut self) -> Poll<Result<Expect, Error>> {
        let waker = futures::task::noop_waker();
        match self {
            RealWait::Value(w) => poll_once(w, &waker).map(|r| r.map(Expect::Value)),
            RealWait::Transition(w) => {
                poll_once(w, &waker).map(|r| r.map(|t| Expect::Transition(t.old, t.new, t.version)))
            }
        }
    }
}

struct Model {
    value: u8,
    version: u64,
    closed: bool,
    subs: Vec<ModelSub>,
    waits: Vec<ModelWait>,
}

impl Model {
    fn transition(&mut self, new: u8) {
        let old = std::mem::replace(&mut self.value, new);
        self.version += 1;
        let version = self.version;
        for sub in &mut self.subs {
            sub.queue.push_back((old, new, version));
            if sub.bound.is_some_and(|b| sub.queue.len() > b) {
                sub.queue.pop_front();
                sub.lagged += 1;
            }
        }
        for wait in self.waits.iter_mut().filter(|w| w.outcome.is_none()) {
            wait.outcome = match wait.kind {
                Kind::Eq(x) => (new == x).then_some(Expect::Value(new)),
                Kind::Ne(x) => (new != x).then_some(Expect::Value(new)),
                Kind::Change => Some(Expect::Value(new)),
                Kind::Rising => (new > old).then_some(Expect::Transition(old, new, version)),
            };
        }
    }

    fn set(&mut self, new: u8) -> bool {
        if self.closed || new == self.value {
            return false;
        }
        self.transition(new);
        true
    }

    /// A new wait's outcome at creation.
    fn created(&self, kind: &Kind, skip: bool) -> Option<Expect> {
        let at_creation = match kind {
            _ if skip => None,
            Kind::Eq(x) => (self.value == *x).then_some(Expect::Value(self.value)),
            Kind::Ne(x) => (self.value != *x).then_some(Expect::Value(self.value)),
            Kind::Change | Kind::Rising => None,
        };
        at_creation.or(self.closed.then_some(Expect::Closed))
    }

    fn pending_waits(&self) -> usize {
        self.waits.iter().filter(|w| w.outcome.is_none()).count()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let value = ValueWatcher::new(0u8);
    let mut model = Model {
        value: 0,
        version: 0,
        closed: false,
        subs: Vec::new(),
        waits: Vec::new(),
    };
    let mut subs: Vec<Subscription<u8>> = Vec::new();
    let mut waits: Vec<RealWait> = Vec::new();

    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Set(v) => prop_assert_eq!(value.set(v), model.set(v), "step {}: set", step),
            Op::SetIf {
                value: v,
                if_current,
            } => {
                let expected = if model.closed || model.value != if_current {
                    false
                } else {
                    model.set(v);
                    true
                };
                prop_assert_eq!(value.set_if(v, |c| *c == if_current), expected);
            }
            Op::Increment => {
                let expected = model.set(model.value.wrapping_add(1) % 4);
                prop_assert_eq!(value.update(|c| Some(c.wrapping_add(1) % 4)), expected);
            }
            Op::Subscribe | Op::SubscribeBounded(_) => {
                let bound = match op {
                    Op::SubscribeBounded(b) => Some(b),
                    _ => None,
                };
                let sub = match bound {
                    Some(b) => value.subscribe_bounded(b),
                    None => value.subscribe(),
                };
                prop_assert_eq!(*sub.initial(), model.value);
                subs.push(sub);
                model.subs.push(ModelSub {
                    queue: VecDeque::new(),
                    bound,
                    lagged: 0,
                });
            }
            Op::DropSub(i) if !subs.is_empty() => {
                let i = i % subs.len();
                drop(subs.remove(i));
                model.subs.remove(i);
            }
            Op::TryRecv(i) if !subs.is_empty() => {
                let i = i % subs.len();
                let sub = &mut model.subs[i];
                let expected = if sub.lagged > 0 {
                    Err(Error::Lagged(std::mem::take(&mut sub.lagged)))
                } else if let Some(t) = sub.queue.pop_front() {
                    Ok(Some(t))
                } else if model.closed {
                    Err(Error::Closed)
                } else {
                    Ok(None)
                };
                let got = subs[i]
                    .try_recv()
                    .map(|t| t.map(|t| (t.old, t.new, t.version)));
                prop_assert_eq!(
                    got,
                    expected,
                    "step {}: try_recv on subscription {}",
                    step,
                    i
                );
            }
            Op::WaitFor { value: x, skip } | Op::WaitForNot { value: x, skip } => {
                let (kind, wait) = match op {
                    Op::WaitFor { .. } => (Kind::Eq(x), value.wait_for(x)),
                    _ => (Kind::Ne(x), value.wait_for_not(x)),
                };
                let wait = if skip { wait.skip_current() } else { wait };
                let outcome = model.created(&kind, skip);
                model.waits.push(ModelWait { kind, outcome });
                waits.push(RealWait::Value(wait));
            }
            Op::WaitForChange => {
                let outcome = model.created(&Kind::Change, false);
                model.waits.push(ModelWait {
                    kind: Kind::Change,
                    outcome,
                });
                waits.push(RealWait::Value(value.wait_for_change()));
            }
            Op::WaitRising => {
                let outcome = model.created(&Kind::Rising, false);
                model.waits.push(ModelWait {
                    kind: Kind::Rising,
                    outcome,
                });
                waits.push(RealWait::Transition(
                    value.wait_transition(|old, new| new > old),
                ));
            }
            Op::PollWait(i) if !waits.is_empty() => {
                let i = i % waits.len();
                let got = waits[i].poll();
                match model.waits[i].outcome.clone() {
                    None => prop_assert!(
                        got.is_pending(),
                        "step {}: wait {} ready: {:?}",
                        step,
                        i,
                        got
                    ),
                    Some(expected) => {
                        let expected = match expected {
                            Expect::Closed => Err(Error::Closed),
                            e => Ok(e),
                        };
                        prop_assert_eq!(got, Poll::Ready(expected), "step {}: wait {}", step, i);
                        waits.remove(i);
                        model.waits.remove(i);
                    }
                }
            }
            Op::DropWait(i) if !waits.is_empty() => {
                let i = i % waits.len();
                drop(waits.remove(i));
                model.waits.remove(i);
            }
            Op::Close => {
                value.close();
                model.closed = true;
                for wait in model.waits.iter_mut().filter(|w| w.outcome.is_none()) {
                    wait.outcome = Some(Expect::Closed);
                }
            }
            Op::DropSub(_) | Op::TryRecv(_) | Op::PollWait(_) | Op::DropWait(_) => {}
        }
        prop_assert_eq!(value.get(), model.value, "step {}: get", step);
        prop_assert_eq!(value.version(), model.version, "step {}: version", step);
        prop_assert_eq!(value.is_closed(), model.closed);
        prop_assert_eq!(
            value.watcher_count(),
            model.subs.len() + model.pending_waits(),
            "step {}: watcher_count",
            step
        );
    }
    drop(subs);
    drop(waits);
    prop_assert_eq!(value.watcher_count(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 10_000,
        .. ProptestConfig::default()
    })]

    #[test]
    fn every_operation_sequence_behaves_as_the_sequential_model(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        run(ops)?;
    }
}

#[test]
fn the_model_agrees_on_a_hand_written_sequence_with_a_lag_and_a_close() {
    run(vec![
        Op::SubscribeBounded(1),
        Op::Subscribe,
        Op::WaitFor {
            value: 2,
            skip: false,
        },
        Op::Set(1),
        Op::Set(2),
        Op::Set(3),
        Op::TryRecv(0),
        Op::TryRecv(0),
        Op::PollWait(0),
        Op::Close,
        Op::TryRecv(0),
        Op::TryRecv(1),
    ])
    .unwrap();
}
