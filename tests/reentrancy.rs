//! User code that runs while the order is decided: the closures of `with`, `set_if` and
//! `update` and the predicates of `wait_until`, `wait_map` and `wait_transition` get a clear
//! panic (never a deadlock) when they call back into the same value; calls into another value
//! work; and a panicking `set_if`/`update` closure leaves the value unchanged and usable.
//!
//! Every (closure kind, inner call) pair runs under its own watchdog, so a deadlock shows up
//! as a named failure instead of hanging the suite.

mod common;

use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use keepwatch::{Error, ValueWatcher};

/// One call into a value, made from inside a closure that runs under the value's lock.
type Call = (&'static str, fn(&ValueWatcher<u32>));

/// The value every test starts from, and what the inner calls try to store.
const START: u32 = 0;
const TRIGGER: u32 = 1;
const INNER: u32 = 99;

const CALLS: &[Call] = &[
    ("get", |v| {
        let _ = v.get();
    }),
    ("version", |v| {
        let _ = v.version();
    }),
    ("set", |v| {
        let _ = v.set(INNER);
    }),
    ("set_if", |v| {
        let _ = v.set_if(INNER, |_| true);
    }),
    ("update", |v| {
        let _ = v.update(|_| Some(INNER));
    }),
    ("with", |v| {
        let _ = v.with(|x| *x);
    }),
    ("is_closed", |v| {
        let _ = v.is_closed();
    }),
    ("watcher_count", |v| {
        let _ = v.watcher_count();
    }),
    ("subscribe", |v| drop(v.subscribe())),
    ("wait_for", |v| drop(v.wait_for(INNER))),
    ("on_change", |v| v.on_change(|_, _| {}).cancel()),
    ("close", |v| v.close()),
];

/// Runs `check` for every inner call, each under its own watchdog, and fails listing every
/// call that did not behave.
fn for_every_call(outer: &'static str, check: fn(Call) -> Result<(), String>) {
    let mut failures = Vec::new();
    for &call in CALLS {
        let result = catch(move || with_watchdog(5, move || check(call)))
            .unwrap_or_else(|panic| Err(format!("panicked: {panic}")));
        if let Err(why) = result {
            failures.push(format!("{outer} calling {}: {why}", call.0));
        }
    }
    assert!(
        failures.is_empty(),
        "re-entrant calls that did not get a clear re-entrancy panic:\n  {}",
        failures.join("\n  ")
    );
}

/// `result` must be a panic whose message mentions re-entrancy.
fn expect_reentrancy_panic<R: std::fmt::Debug>(result: Result<R, String>) -> Result<(), String> {
    match result {
        Ok(r) => Err(format!("no panic: the call returned {r:?}")),
        Err(message) if mentions_reentrancy(&message) => Ok(()),
        Err(message) => Err(format!("panic does not mention re-entrancy: {message:?}")),
    }
}

/// After a re-entrancy panic the value is unchanged, open and usable from this thread.
fn expect_usable(v: &ValueWatcher<u32>, expected: u32) -> Result<(), String> {
    let got = catch(|| (v.get(), v.is_closed(), v.with(|x| *x)))
        .map_err(|p| format!("value unusable afterwards: {p}"))?;
    if got != (expected, false, expected) {
        return Err(format!(
            "value changed by the rejected call: (get, is_closed, with) = {got:?}, expected ({expected}, false, {expected})"
        ));
    }
    let set =
        catch(|| v.set(expected + 1000)).map_err(|p| format!("set panicked afterwards: {p}"))?;
    if !set {
        return Err("set returned false afterwards".into());
    }
    Ok(())
}

/// Sets `TRIGGER` on another thread; that set must return `true` without panicking.
fn set_trigger_from_a_thread(v: &ValueWatcher<u32>) -> Result<(), String> {
    let setter = v.clone();
    match thread::spawn(move || catch(|| setter.set(TRIGGER))).join() {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err("the triggering set returned false".into()),
        Ok(Err(p)) => Err(format!("the setter got the predicate's panic: {p}")),
        Err(_) => Err("the setter thread died".into()),
    }
}

// ---------------------------------------------------------------------------------------
// Re-entrant calls from each kind of closure
// ---------------------------------------------------------------------------------------

#[test]
fn with_closure_calling_into_the_same_value_panics_with_a_reentrancy_message() {
    for_every_call("with", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        expect_reentrancy_panic(catch(|| v.with(move |_| call(&inner))))?;
        expect_usable(&v, START)
    });
}

#[test]
fn set_if_condition_calling_into_the_same_value_panics_with_a_reentrancy_message() {
    for_every_call("set_if", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        expect_reentrancy_panic(catch(|| {
            v.set_if(TRIGGER, move |_| {
                call(&inner);
                true
            })
        }))?;
        expect_usable(&v, START)
    });
}

#[test]
fn update_closure_calling_into_the_same_value_panics_with_a_reentrancy_message() {
    for_every_call("update", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        expect_reentrancy_panic(catch(|| {
            v.update(move |_| {
                call(&inner);
                Some(TRIGGER)
            })
        }))?;
        expect_usable(&v, START)
    });
}

#[test]
fn wait_until_predicate_calling_into_the_same_value_at_creation_panics_only_at_the_finisher() {
    for_every_call("wait_until (at creation)", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        let w = catch(|| {
            v.wait_until(move |_| {
                call(&inner);
                true
            })
        })
        .map_err(|p| format!("wait_until itself panicked: {p}"))?;
        expect_reentrancy_panic(catch(move || w.blocking_timeout(LONG)))?;
        expect_usable(&v, START)
    });
}

#[test]
fn wait_until_predicate_calling_into_the_same_value_at_a_transition_panics_only_at_the_finisher() {
    for_every_call("wait_until (at a transition)", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        let w = v.wait_until(move |x| {
            if *x == TRIGGER {
                call(&inner);
            }
            *x == TRIGGER
        });
        set_trigger_from_a_thread(&v)?;
        expect_reentrancy_panic(catch(move || w.blocking_timeout(LONG)))?;
        expect_usable(&v, TRIGGER)
    });
}

#[test]
fn wait_map_predicate_calling_into_the_same_value_at_creation_panics_only_at_the_finisher() {
    for_every_call("wait_map (at creation)", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        let w = catch(|| {
            v.wait_map(move |x| {
                call(&inner);
                Some(*x)
            })
        })
        .map_err(|p| format!("wait_map itself panicked: {p}"))?;
        expect_reentrancy_panic(catch(move || w.blocking_timeout(LONG)))?;
        expect_usable(&v, START)
    });
}

#[test]
fn wait_map_predicate_calling_into_the_same_value_at_a_transition_panics_only_at_the_finisher() {
    for_every_call("wait_map (at a transition)", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        let w = v.wait_map(move |x| {
            if *x == TRIGGER {
                call(&inner);
                Some(*x)
            } else {
                None
            }
        });
        set_trigger_from_a_thread(&v)?;
        expect_reentrancy_panic(catch(move || w.blocking_timeout(LONG)))?;
        expect_usable(&v, TRIGGER)
    });
}

#[test]
fn wait_transition_predicate_calling_into_the_same_value_panics_only_at_the_finisher() {
    for_every_call("wait_transition", |(_, call)| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        let w = catch(|| {
            v.wait_transition(move |_, _| {
                call(&inner);
                true
            })
        })
        .map_err(|p| format!("wait_transition itself panicked: {p}"))?;
        set_trigger_from_a_thread(&v)?;
        expect_reentrancy_panic(catch(move || w.blocking_timeout(LONG)))?;
        expect_usable(&v, TRIGGER)
    });
}

#[test]
fn a_reentrant_predicate_awaited_on_an_executor_panics_with_the_reentrancy_message() {
    watchdog(|| {
        let v = ValueWatcher::new(START);
        let inner = v.clone();
        let w = v.wait_until(move |x| {
            if *x == TRIGGER {
                let _ = inner.get();
            }
            *x == TRIGGER
        });
        let rt = tokio_multi_thread();
        let handle = rt.spawn(w.timeout(LONG));
        assert!(v.set(TRIGGER));
        let err = rt.block_on(handle).expect_err("the awaiting task panics");
        assert!(err.is_panic());
        let message = panic_message(&*err.into_panic());
        assert!(mentions_reentrancy(&message), "{message:?}");
        assert!(v.set(2));
    });
}

// ---------------------------------------------------------------------------------------
// Calls into another value
// ---------------------------------------------------------------------------------------

#[test]
fn closures_may_call_into_another_value() {
    watchdog(|| {
        let a = ValueWatcher::new(1u32);
        let b = ValueWatcher::new(10u32);
        let mut b_sub = b.subscribe();

        let b2 = b.clone();
        assert_eq!(
            a.with(move |x| {
                assert!(b2.set(b2.get() + x));
                b2.with(|y| *y)
            }),
            11
        );
        let b2 = b.clone();
        assert!(a.set_if(2, move |x| {
            let x = *x;
            b2.update(move |y| Some(y + x))
        }));
        let b2 = b.clone();
        assert!(a.update(move |x| {
            let _ = b2.version();
            let _ = b2.watcher_count();
            drop(b2.wait_for(0));
            Some(x + b2.get())
        }));
        assert_eq!(a.get(), 14);
        assert_eq!(b.get(), 12);

        let b2 = b.clone();
        let w = a.wait_until(move |x| *x == b2.get() + 100);
        let b2 = b.clone();
        let m = a.wait_map(move |x| (*x > 100).then(|| x + b2.get()));
        let b2 = b.clone();
        let t = a.wait_transition(move |_, new| *new == b2.get() + 100);
        assert!(a.set(112));
        assert_eq!(w.blocking_timeout(LONG), Ok(112));
        assert_eq!(m.blocking_timeout(LONG), Ok(124));
        assert_eq!(t.blocking_timeout(LONG).map(|t| t.new), Ok(112));

        let news: Vec<u32> = std::iter::from_fn(|| b_sub.try_recv().unwrap())
            .map(|t| t.new)
            .collect();
        assert_eq!(news, vec![11, 12]);
    });
}

#[test]
fn a_call_into_another_value_does_not_clear_the_reentrancy_guard_of_the_outer_value() {
    watchdog(|| {
        let a = ValueWatcher::new(0u32);
        let b = ValueWatcher::new(0u32);

        let (a2, b2) = (a.clone(), b.clone());
        let message = expect_panic(|| {
            a.with(move |_| {
                let _ = b2.get();
                let _ = b2.with(|x| *x);
                let _ = a2.get(); // back into `a`: still inside a's closure
            })
        });
        assert!(mentions_reentrancy(&message), "{message:?}");

        assert!(a.set(1));
        assert!(b.set(1));
        assert_eq!((a.get(), b.get()), (1, 1));
    });
}

#[test]
fn reentry_into_the_outer_value_from_a_nested_closure_of_another_value_panics_instead_of_deadlocking(
) {
    // a.with(|_| b.with(|_| a.get())): the inner call is still inside a's closure.
    with_watchdog(5, || {
        let a = ValueWatcher::new(0u32);
        let b = ValueWatcher::new(0u32);
        let (a2, b2) = (a.clone(), b.clone());
        let message = expect_panic(|| {
            a.with(move |_| {
                b2.with(move |_| {
                    let _ = a2.get();
                })
            })
        });
        assert!(mentions_reentrancy(&message), "{message:?}");

        let (a2, b2) = (a.clone(), b.clone());
        let w = a.wait_until(move |x| {
            if *x == 1 {
                b2.with(|_| {
                    let _ = a2.version();
                });
            }
            *x == 1
        });
        assert_eq!(catch(|| a.set(1)), Ok(true));
        let message = expect_panic(move || w.blocking_timeout(LONG));
        assert!(mentions_reentrancy(&message), "{message:?}");

        assert!(a.set(2));
        assert!(b.set(1));
    });
}

// ---------------------------------------------------------------------------------------
// Panics in set_if / update / with closures
// ---------------------------------------------------------------------------------------

#[test]
fn a_set_if_closure_panic_reaches_the_caller_and_leaves_the_value_unchanged_and_usable() {
    watchdog(|| {
        let v = ValueWatcher::new(5u32);
        let mut sub = v.subscribe();
        let pending = v.wait_for_change();
        let message = expect_panic(|| v.set_if(6, |_| panic!("set_if boom")));
        assert_eq!(message, "set_if boom");
        assert_eq!(v.get(), 5);
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None));
        assert!(v.set_if(6, |x| *x == 5));
        assert_eq!(v.get(), 6);
        assert_eq!(pending.blocking_timeout(LONG), Ok(6));
        assert_eq!(
            sub.try_recv().unwrap().map(|t| (t.old, t.new, t.version)),
            Some((5, 6, 1))
        );
    });
}

#[test]
fn an_update_closure_panic_reaches_the_caller_and_leaves_the_value_unchanged_and_usable() {
    watchdog(|| {
        let v = ValueWatcher::new(5u32);
        let mut sub = v.subscribe();
        let pending = v.wait_for_change();
        let message = expect_panic(|| v.update(|_| -> Option<u32> { panic!("update boom") }));
        assert_eq!(message, "update boom");
        assert_eq!(v.get(), 5);
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None));
        assert_eq!(
            v.wait_for_change().blocking_timeout(SHORT),
            Err(Error::TimedOut)
        );
        assert!(v.update(|x| Some(x + 1)));
        assert_eq!(pending.blocking_timeout(LONG), Ok(6));
        assert_eq!(
            sub.try_recv().unwrap().map(|t| (t.old, t.new, t.version)),
            Some((5, 6, 1))
        );
        // ... and from another thread after the panic.
        let other = v.clone();
        assert!(thread::spawn(move || other.update(|x| Some(x + 1)))
            .join()
            .unwrap());
        assert_eq!(v.get(), 7);
    });
}

#[test]
fn a_with_closure_panic_reaches_the_caller_and_leaves_the_value_usable() {
    watchdog(|| {
        let v = ValueWatcher::new(5u32);
        let message = expect_panic(|| v.with(|_| -> u32 { panic!("with boom") }));
        assert_eq!(message, "with boom");
        assert_eq!(v.get(), 5);
        assert!(v.set(6));
        let seen = Arc::new(Mutex::new(None));
        let seen2 = Arc::clone(&seen);
        v.with(move |x| *seen2.lock().unwrap() = Some(*x));
        assert_eq!(*seen.lock().unwrap(), Some(6));
    });
}
