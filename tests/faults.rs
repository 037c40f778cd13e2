//! Fault injection: user code that panics (once, and every time) or calls back into the same
//! value, at every point where keepwatch runs it (the fault matrix in TESTING.md), checked
//! against what must hold afterwards: every other watcher sees every transition (gap-free
//! versions, `old` = previous `new`), every other waiter is woken, callbacks keep running in
//! order, `watcher_count()` is exact, the value stays usable, the process does not abort, and
//! memory returns to its level.
//!
//! Each test runs its scenario in a child process (this binary, re-executed with
//! `KEEPWATCH_FAULT_CHILD=1` and an exact filter), under a watchdog: an abort or a hang fails
//! that one test, with the child's panic messages in the failure. "Woken" is bounded by a
//! timeout on a channel, never decided by a sleep.
//!
//! CI size by default; `KEEPWATCH_STRESS=full cargo test --release --test faults` runs the
//! bursts at 100,000.

mod common;
mod hostile;
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Barrier, Mutex};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use common::{counting_waker, mentions_reentrancy, poll_once, LONG};
use futures::StreamExt;
use hostile::{
    caught, evil_waker, isolated, Evil, OnDrop, PanickyPayload, Plan, WakerPlan, ALWAYS, ANY, TAG,
};
use keepwatch::{Error, Subscription, Transition, ValueWatcher, Wait};
use support::{env_is, human, live_bytes, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// The budget of one scenario.
const BUDGET: u64 = 20;

/// How long a waiter that must be woken may take before the test calls it asleep.
const WOKEN: Duration = Duration::from_secs(3);

macro_rules! fault_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            isolated(stringify!($name), BUDGET, || $body);
        }
    };
}

/// The number of waits (subscriptions, callbacks) in a burst.
fn burst() -> usize {
    if env_is("KEEPWATCH_STRESS", "full") {
        100_000
    } else {
        20_000
    }
}

/// Lets a thread that was just started reach its park. Only makes a scenario sharper: no
/// outcome depends on it.
fn settle() {
    thread::sleep(Duration::from_millis(20));
}

/// Finishes `wait` on its own blocked thread; the result arrives on the channel.
fn on_thread<O: Send + 'static>(wait: Wait<O>) -> Receiver<Result<O, String>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(
            caught(|| wait.blocking_timeout(LONG)).and_then(|r| r.map_err(|e| e.to_string())),
        );
    });
    rx
}

/// Awaits `wait` in a task (a `futures` executor on its own thread).
fn on_task<O: Send + 'static>(wait: Wait<O>) -> Receiver<Result<O, String>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = caught(|| futures::executor::block_on(wait.timeout(LONG)));
        let _ = tx.send(r.and_then(|r| r.map_err(|e| e.to_string())));
    });
    rx
}

/// Receives `sub`'s next transition on its own blocked thread.
fn recv_on_thread<T: Clone + PartialEq + Send + 'static>(
    mut sub: Subscription<T>,
) -> Receiver<Result<u64, String>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = caught(|| sub.recv().blocking_timeout(LONG).map(|t| t.version));
        // Gone before the result is reported: the caller may count watchers next.
        drop(sub);
        let _ = tx.send(r.and_then(|r| r.map_err(|e| e.to_string())));
    });
    rx
}

#[track_caller]
fn woken<O: std::fmt::Debug>(rx: &Receiver<Result<O, String>>, who: &str) -> Result<O, String> {
    match rx.recv_timeout(WOKEN) {
        Ok(r) => r,
        Err(_) => panic!("{who} was not woken within {WOKEN:?}: a lost wake-up"),
    }
}

/// An `on_change` callback that records `(old, new)`.
fn recorder(v: &ValueWatcher<u64>) -> Arc<Mutex<Vec<(u64, u64)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let _ = v.on_change(move |o, n| log.lock().unwrap().push((*o, *n)));
    seen
}

/// An `on_change` callback on an `Evil` value that records `(old.n, new.n)`.
fn evil_recorder(v: &ValueWatcher<Evil>) -> Arc<Mutex<Vec<(u64, u64)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let _ = v.on_change(move |o, n| log.lock().unwrap().push((o.n, n.n)));
    seen
}

/// Checks that `seen` is the chain `start → ... → end` with no gap.
#[track_caller]
fn assert_chain(seen: &[(u64, u64)], expected: &[u64]) {
    let want: Vec<(u64, u64)> = expected.windows(2).map(|w| (w[0], w[1])).collect();
    assert_eq!(
        seen, want,
        "callbacks lost, repeated or reordered transitions"
    );
}

/// Drains what `sub` has queued and checks it is gap-free from `first` to `last`, each `old`
/// the previous `new`. Returns the `new`s.
#[track_caller]
fn drain_gap_free<T: Clone + PartialEq + Send + std::fmt::Debug + 'static>(
    sub: &mut Subscription<T>,
    first: u64,
    last: u64,
) -> Vec<T> {
    let mut got: Vec<Transition<T>> = Vec::new();
    while let Some(t) = sub.try_recv().expect("no error while draining") {
        got.push(t);
    }
    check_gap_free(&got, sub.initial(), first, last);
    got.into_iter().map(|t| t.new).collect()
}

#[track_caller]
fn check_gap_free<T: PartialEq + std::fmt::Debug>(
    got: &[Transition<T>],
    initial: &T,
    first: u64,
    last: u64,
) {
    let versions: Vec<u64> = got.iter().map(|t| t.version).collect();
    let want: Vec<u64> = (first..=last).collect();
    assert_eq!(
        versions, want,
        "a subscription lost or repeated a transition"
    );
    if first == 1 {
        if let Some(t) = got.first() {
            assert_eq!(
                &t.old, initial,
                "the first old is not the subscription's initial"
            );
        }
    }
    for w in got.windows(2) {
        assert_eq!(
            w[1].old, w[0].new,
            "old is not the previous new at version {}",
            w[1].version
        );
    }
}

fn noop_waker() -> std::task::Waker {
    counting_waker().1
}

// ---------------------------------------------------------------------------------------------
// Waker::wake / wake_by_ref
// ---------------------------------------------------------------------------------------------

fault_test! {
    /// Issue 8 (a), `set`: two wakers that panic every time, collected first.
    fn a_panicking_wake_during_set_still_wakes_every_other_waiter_and_callbacks_keep_running() {
        let v = ValueWatcher::new(0u64);
        let seen = recorder(&v);
        let mut sub = v.subscribe();
        let wp = WakerPlan::new();
        wp.wake.panic(ANY, 0, ALWAYS);
        let evil = evil_waker(&wp);
        let mut bad: Vec<Wait<u64>> = (0..2).map(|_| v.wait_for(1)).collect();
        for w in &mut bad {
            assert!(poll_once(w, &evil).is_pending());
        }
        let mut counted = Vec::new();
        for _ in 0..3 {
            let mut w = v.wait_for_change();
            let (count, waker) = counting_waker();
            assert!(poll_once(&mut w, &waker).is_pending());
            counted.push((w, count));
        }
        let thread_rx = on_thread(v.wait_for(1));
        let task_rx = on_task(v.wait_until(|n| *n >= 1));
        settle();
        let r = caught(|| v.set(1));
        assert!(
            matches!(&r, Ok(true)) || r.as_ref().unwrap_err().contains("hostile wake"),
            "set: {r:?}"
        );
        for (i, (_, count)) in counted.iter().enumerate() {
            assert_eq!(count.count(), 1, "waiter {i} collected with the panicking wakers was not woken");
        }
        assert_eq!(woken(&thread_rx, "the blocked thread"), Ok(1));
        assert_eq!(woken(&task_rx, "the task"), Ok(1));
        assert_eq!(wp.wakes(), 2, "each panicking waker is called once");
        assert!(v.set(2), "the value stays usable");
        assert_chain(&seen.lock().unwrap(), &[0, 1, 2]);
        for (w, _) in counted {
            assert_eq!(w.blocking_timeout(LONG), Ok(1));
        }
        for w in bad {
            assert_eq!(w.blocking_timeout(LONG), Ok(1), "the panicking waker's own wait matched");
        }
        drain_gap_free(&mut sub, 1, 2);
        assert_eq!(v.watcher_count(), 1);
    }
}

fault_test! {
    /// Issue 8 (a), `close`.
    fn a_panicking_wake_during_close_still_wakes_every_other_waiter() {
        let v = ValueWatcher::new(0u64);
        let wp = WakerPlan::new();
        wp.wake.panic(ANY, 0, ALWAYS);
        let evil = evil_waker(&wp);
        let mut bad = v.wait_for(9);
        assert!(poll_once(&mut bad, &evil).is_pending());
        let mut bad_sub = v.subscribe();
        let mut bad_recv_first = v.subscribe();
        let mut first_recv = bad_recv_first.recv();
        assert!(poll_once(&mut first_recv, &evil).is_pending());
        let mut bad_recv = bad_sub.recv();
        assert!(poll_once(&mut bad_recv, &evil).is_pending());
        let mut w = v.wait_for(9);
        let (count, waker) = counting_waker();
        assert!(poll_once(&mut w, &waker).is_pending());
        let thread_rx = on_thread(v.wait_for(9));
        let task_rx = on_task(v.wait_for_change());
        let recv_rx = recv_on_thread(v.subscribe());
        let mut bad_last = v.wait_for(9);
        assert!(poll_once(&mut bad_last, &evil).is_pending());
        settle();
        let r = caught(|| v.close());
        assert!(r.is_ok() || r.as_ref().unwrap_err().contains("hostile wake"), "close: {r:?}");
        assert!(v.is_closed());
        assert_eq!(count.count(), 1, "a waiter collected with the panicking one was not woken");
        let closed = Error::Closed.to_string();
        assert_eq!(woken(&thread_rx, "the blocked thread"), Err(closed.clone()));
        assert_eq!(woken(&task_rx, "the task"), Err(closed.clone()));
        assert_eq!(woken(&recv_rx, "the blocked receiver"), Err(closed));
        assert_eq!(w.blocking_timeout(LONG), Err(Error::Closed));
        drop(bad_recv);
        assert_eq!(bad_sub.try_recv(), Err(Error::Closed));
        assert_eq!(bad.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(bad_last.blocking_timeout(LONG), Err(Error::Closed));
        drop(bad_sub);
        drop(first_recv);
        drop(bad_recv_first);
        assert_eq!(v.watcher_count(), 0);
    }
}

fault_test! {
    /// Issue 8 (a), the close by the last handle's drop.
    fn a_panicking_wake_at_the_last_handle_drop_still_wakes_every_other_waiter() {
        let v = ValueWatcher::new(0u64);
        let weak = v.downgrade();
        let wp = WakerPlan::new();
        wp.wake.panic(ANY, 0, ALWAYS);
        let evil = evil_waker(&wp);
        let mut bad = v.wait_for(9);
        assert!(poll_once(&mut bad, &evil).is_pending());
        let thread_rx = on_thread(v.wait_for(9));
        let task_rx = on_task(v.wait_for(9));
        let mut bad_last = v.wait_for(9);
        assert!(poll_once(&mut bad_last, &evil).is_pending());
        settle();
        let r = caught(move || drop(v));
        assert!(r.is_ok() || r.as_ref().unwrap_err().contains("hostile wake"), "drop: {r:?}");
        assert!(weak.upgrade().is_none());
        let closed = Error::Closed.to_string();
        assert_eq!(woken(&thread_rx, "the blocked thread"), Err(closed.clone()));
        assert_eq!(woken(&task_rx, "the task"), Err(closed));
        assert_eq!(bad.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(bad_last.blocking_timeout(LONG), Err(Error::Closed));
    }
}

fault_test! {
    /// Issue 8 (a), subscriptions woken by an append.
    fn a_panicking_wake_of_a_subscription_still_wakes_the_other_subscriptions() {
        let v = ValueWatcher::new(0u64);
        let seen = recorder(&v);
        let wp = WakerPlan::new();
        wp.wake.panic(ANY, 0, ALWAYS);
        let evil = evil_waker(&wp);
        let mut bad_sub = v.subscribe();
        let mut bad_recv = bad_sub.recv();
        assert!(poll_once(&mut bad_recv, &evil).is_pending());
        let mut sub = v.subscribe();
        let mut recv = sub.recv();
        let (count, waker) = counting_waker();
        assert!(poll_once(&mut recv, &waker).is_pending());
        let recv_rx = recv_on_thread(v.subscribe());
        settle();
        let r = caught(|| v.set(1));
        assert!(matches!(&r, Ok(true)) || r.as_ref().unwrap_err().contains("hostile wake"), "set: {r:?}");
        assert_eq!(count.count(), 1, "a subscription woken with the panicking one was not woken");
        assert_eq!(woken(&recv_rx, "the blocked receiver"), Ok(1));
        assert!(v.set(2));
        assert_chain(&seen.lock().unwrap(), &[0, 1, 2]);
        assert_eq!(poll_once(&mut recv, &waker).map(|r| r.map(|t| t.version)), Poll::Ready(Ok(1)));
        drop(recv);
        drain_gap_free(&mut sub, 2, 2);
        drop(bad_recv);
        drain_gap_free(&mut bad_sub, 1, 2);
        assert_eq!(v.watcher_count(), 2);
    }
}

fault_test! {
    fn a_wake_that_calls_set_on_the_same_value_is_served_in_order() {
        let v = ValueWatcher::new(0u64);
        let seen = recorder(&v);
        let mut sub = v.subscribe();
        let wp = WakerPlan::new();
        let results = Arc::new(Mutex::new(Vec::new()));
        let (weak, res) = (v.downgrade(), Arc::clone(&results));
        wp.wake.hook(ANY, 0, ALWAYS, move |_| {
            let r = caught(|| weak.upgrade().map(|v| v.set(100)));
            res.lock().unwrap().push(r);
        });
        let evil = evil_waker(&wp);
        let mut w = v.wait_for(1);
        assert!(poll_once(&mut w, &evil).is_pending());
        assert_eq!(caught(|| v.set(1)), Ok(true));
        assert_eq!(*results.lock().unwrap(), [Ok(Some(true))], "the wake's own set");
        assert_eq!(v.get(), 100);
        assert_chain(&seen.lock().unwrap(), &[0, 1, 100]);
        assert_eq!(drain_gap_free(&mut sub, 1, 2), [1, 100]);
        assert_eq!(w.blocking_timeout(LONG), Ok(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Waker::clone / drop
// ---------------------------------------------------------------------------------------------

fault_test! {
    /// Issue 8 (j).
    fn a_waker_whose_clone_calls_set_on_the_same_value_gets_a_clear_panic_and_never_deadlocks() {
        let v = ValueWatcher::new(0u64);
        let wp = WakerPlan::new();
        let weak = v.downgrade();
        wp.clone.hook(ANY, 0, ALWAYS, move |_| {
            if let Some(v) = weak.upgrade() {
                v.set(7);
            }
        });
        let evil = evil_waker(&wp);
        let mut w = v.wait_for(1);
        match caught(|| poll_once(&mut w, &evil)) {
            Ok(p) => assert!(p.is_pending() || v.get() == 7),
            Err(msg) => assert!(mentions_reentrancy(&msg), "not a clear panic: {msg}"),
        }
        let mut sub = v.subscribe();
        let version = v.version();
        {
            let mut recv = sub.recv();
            match caught(|| poll_once(&mut recv, &evil)) {
                Ok(_) => {}
                Err(msg) => assert!(mentions_reentrancy(&msg), "not a clear panic: {msg}"),
            }
        }
        wp.clone.disarm();
        let (count, waker) = counting_waker();
        assert!(poll_once(&mut w, &waker).is_pending() || v.get() == 1);
        assert!(v.set(1));
        assert_eq!(w.blocking_timeout(LONG), Ok(1));
        assert!(count.count() <= 1);
        drain_gap_free(&mut sub, version + 1, v.version());
        assert_eq!(v.watcher_count(), 1);
    }
}

fault_test! {
    fn a_panicking_waker_clone_leaves_the_registration_usable() {
        let v = ValueWatcher::new(0u64);
        let wp = WakerPlan::new();
        wp.clone.panic(ANY, 0, ALWAYS);
        let evil = evil_waker(&wp);
        let mut w = v.wait_for(1);
        let mut sub = v.subscribe();
        assert!(caught(|| poll_once(&mut w, &evil)).is_err(), "the clone panics in the poll");
        {
            let mut recv = sub.recv();
            assert!(caught(|| poll_once(&mut recv, &evil)).is_err());
        }
        assert_eq!(v.watcher_count(), 2);
        let (count, waker) = counting_waker();
        assert!(poll_once(&mut w, &waker).is_pending());
        let mut recv = sub.recv();
        let (rcount, rwaker) = counting_waker();
        assert!(poll_once(&mut recv, &rwaker).is_pending());
        assert!(v.set(1));
        assert_eq!((count.count(), rcount.count()), (1, 1), "woken after a panicking clone");
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(1)));
        assert_eq!(poll_once(&mut recv, &rwaker).map(|r| r.map(|t| t.version)), Poll::Ready(Ok(1)));
        drop(recv);
        drop(w);
        assert_eq!(v.watcher_count(), 1);
    }
}

fault_test! {
    fn a_panicking_waker_drop_when_replaced_or_cancelled_leaks_no_registration() {
        let v = ValueWatcher::new(0u64);
        let wp = WakerPlan::new();
        let evil = evil_waker(&wp);
        let mut replaced = v.wait_for(1);
        let mut cancelled = v.wait_for(1);
        let mut sub = v.subscribe();
        let mut recv = sub.recv();
        assert!(poll_once(&mut replaced, &evil).is_pending());
        assert!(poll_once(&mut cancelled, &evil).is_pending());
        assert!(poll_once(&mut recv, &evil).is_pending());
        wp.drop.panic(ANY, 0, ALWAYS);
        let (count, waker) = counting_waker();
        let r = caught(|| poll_once(&mut replaced, &waker));
        assert!(r.is_err() || r == Ok(Poll::Pending), "{r:?}");
        let _ = caught(move || drop(cancelled));
        let _ = caught(move || drop(recv));
        assert_eq!(v.watcher_count(), 2, "the cancelled wait is gone, the other two stay");
        assert!(poll_once(&mut replaced, &waker).is_pending() || count.count() > 0);
        assert!(v.set(1));
        assert_eq!(count.count(), 1);
        assert_eq!(replaced.blocking_timeout(LONG), Ok(1));
        drain_gap_free(&mut sub, 1, 1);
        let _ = caught(move || drop(evil));
        wp.drop.disarm();
        assert_eq!(v.watcher_count(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// T::clone
// ---------------------------------------------------------------------------------------------

/// A value of `Evil`s at 0 with a subscription, the transitions 1..=5 queued.
fn five_queued(plan: &Arc<Plan>, subs: usize) -> (ValueWatcher<Evil>, Vec<Subscription<Evil>>) {
    let v = ValueWatcher::new(plan.evil(0));
    let subs = (0..subs).map(|_| v.subscribe()).collect();
    for n in 1..=5 {
        assert!(v.set(plan.evil(n)));
    }
    (v, subs)
}

fault_test! {
    /// Issue 8 (b): the second clone of a batch panics, once.
    fn a_subscription_batch_whose_second_clone_panics_loses_no_transition() {
        let plan = Plan::new();
        let (v, mut subs) = five_queued(&plan, 2);
        plan.clone.panic(2, 0, 1);
        let mut got = Vec::new();
        let mut panics = 0;
        for _ in 0..10 {
            match caught(|| subs[0].try_recv()) {
                Ok(Ok(Some(t))) => got.push(t),
                Ok(Ok(None)) => break,
                Ok(Err(e)) => panic!("unexpected {e}"),
                Err(msg) => {
                    assert!(msg.contains("hostile clone"), "{msg}");
                    panics += 1;
                }
            }
        }
        assert!(panics <= 1, "the panicking clone is raised at most once");
        let initial = plan.evil(0);
        check_gap_free(&got, &initial, 1, 5);
        let other: Vec<u64> = drain_gap_free(&mut subs[1], 1, 5).iter().map(|e| e.n).collect();
        assert_eq!(other, [1, 2, 3, 4, 5], "the other subscription");
        assert_eq!(v.watcher_count(), 2);
    }
}

fault_test! {
    /// Issue 8 (b), through the `Stream`, with a clone that panics every time until it stops.
    fn a_subscription_stream_whose_clone_panics_every_time_loses_no_transition_once_it_stops() {
        let plan = Plan::new();
        let (v, mut subs) = five_queued(&plan, 1);
        v.close();
        plan.clone.panic(2, 0, ALWAYS);
        let mut sub = subs.pop().unwrap();
        let mut got = Vec::new();
        let mut panics = 0;
        for _ in 0..20 {
            match caught(|| futures::executor::block_on(sub.next())) {
                Ok(Some(t)) => got.push(t),
                Ok(None) => break,
                Err(_) => {
                    panics += 1;
                    if panics == 3 {
                        plan.clone.disarm();
                    }
                }
            }
        }
        let initial = plan.evil(0);
        check_gap_free(&got, &initial, 1, 5);
    }
}

fault_test! {
    /// Issue 8 (f).
    fn a_subscribe_whose_clone_panics_leaks_no_registration() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let _w = v.wait_for(plan.evil(9));
        assert_eq!(v.watcher_count(), 1);
        plan.clone.panic(ANY, 0, ALWAYS);
        let _ = caught(|| drop(v.subscribe()));
        let _ = caught(|| drop(v.subscribe_bounded(4)));
        plan.clone.disarm();
        assert_eq!(v.watcher_count(), 1, "a subscribe that panicked left a registration");
        plan.clone.panic(ANY, 0, 1);
        let _ = caught(|| drop(v.subscribe()));
        plan.clone.disarm();
        let mut sub = v.subscribe();
        assert!(v.set(plan.evil(1)));
        assert_eq!(v.watcher_count(), 2);
        let got: Vec<u64> = drain_gap_free(&mut sub, 1, 1).iter().map(|e| e.n).collect();
        assert_eq!(got, [1]);
    }
}

fault_test! {
    fn a_clone_panicking_during_set_leaves_the_value_unchanged_and_every_watcher_consistent() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let seen = evil_recorder(&v);
        let mut sub = v.subscribe();
        let change = v.wait_for_change();
        // The values the value took: a call that panicked must have changed nothing.
        let mut took = vec![0u64];
        let apply = |r: Result<bool, String>, n: u64, took: &mut Vec<u64>| match r {
            Ok(true) => took.push(n),
            Ok(false) => panic!("set of a new value refused"),
            Err(msg) => {
                assert!(msg.contains("hostile clone"), "{msg}");
                assert_eq!(v.version() as usize, took.len() - 1, "a panicking set changed the value");
            }
        };
        plan.clone.panic(ANY, 0, 1);
        apply(caught(|| v.set(plan.evil(1))), 1, &mut took);
        plan.clone.panic(ANY, 0, ALWAYS);
        for n in [2, 3, 4] {
            apply(caught(|| v.set(plan.evil(n * 10))), n * 10, &mut took);
            let e = plan.evil(n * 10 + 1);
            apply(caught(|| v.set_if(e, |_| true)), n * 10 + 1, &mut took);
            apply(caught(|| v.update(|_| Some(plan.evil(n * 10 + 2)))), n * 10 + 2, &mut took);
        }
        plan.clone.disarm();
        assert_eq!(v.get().n, *took.last().unwrap());
        assert!(v.set(plan.evil(100)));
        took.push(100);
        assert_chain(&seen.lock().unwrap(), &took);
        assert_eq!(change.blocking_timeout(LONG).map(|e| e.n), Ok(took[1]));
        let last = v.version();
        let got: Vec<u64> = drain_gap_free(&mut sub, 1, last).iter().map(|e| e.n).collect();
        assert_eq!(got, took[1..]);
        assert_eq!(v.watcher_count(), 1);
    }
}

fault_test! {
    fn a_clone_panicking_for_a_matching_wait_reaches_only_that_wait() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let a = on_thread(v.wait_for(plan.evil(2)));
        let b = on_thread(v.wait_for_change());
        let c = on_task(v.wait_until(|e| e.n == 2));
        settle();
        // At creation: the match on the current value is cloned.
        plan.clone.panic(ANY, 0, 1);
        let at_creation = v.wait_for(plan.evil(0));
        plan.clone.disarm();
        let r = caught(|| at_creation.blocking_timeout(LONG));
        assert!(r.is_err_and(|m| m.contains("hostile clone")), "the finisher raises it");
        assert_eq!(v.watcher_count(), 3);
        plan.clone.panic(2, 0, 1);
        assert_eq!(caught(|| v.set(plan.evil(2))).map_err(|_| ()), Ok(true), "the setter is not hit");
        plan.clone.disarm();
        let results: Vec<Result<u64, String>> = [a, b, c]
            .iter()
            .map(|rx| woken(rx, "a waiter").map(|e| e.n))
            .collect();
        let panicked = results.iter().filter(|r| r.as_ref().is_err_and(|m| m.contains("hostile clone"))).count();
        assert_eq!(panicked, 1, "exactly the wait whose clone panicked: {results:?}");
        assert_eq!(results.iter().filter(|r| **r == Ok(2)).count(), 2, "{results:?}");
        assert_eq!(v.watcher_count(), 0);
    }
}

fault_test! {
    fn a_clone_that_calls_into_the_same_value_gets_a_clear_reentrancy_panic_or_works() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (weak, log) = (v.downgrade(), Arc::clone(&calls));
        plan.clone.hook(ANY, 0, ALWAYS, move |_| {
            let r = caught(|| weak.upgrade().map(|v| v.version()));
            log.lock().unwrap().push(r);
        });
        let seen = evil_recorder(&v);
        let mut sub = v.subscribe();
        let change = v.wait_transition(|_, _| true);
        let _ = v.get();
        assert!(v.set(plan.evil(1)));
        let mut late = v.subscribe();
        assert!(v.set(plan.evil(2)));
        let t = sub.try_recv().unwrap().unwrap();
        assert_eq!(t.version, 1);
        let _ = late.try_recv();
        plan.clone.disarm();
        let calls = calls.lock().unwrap().clone();
        assert!(!calls.is_empty());
        for c in &calls {
            if let Err(msg) = c {
                assert!(mentions_reentrancy(msg), "not a clear panic: {msg}");
            }
        }
        assert_eq!(change.blocking_timeout(LONG).map(|t| (t.old.n, t.new.n)), Ok((0, 1)));
        assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 2)]);
        drain_gap_free(&mut sub, 2, 2);
        assert_eq!(v.watcher_count(), 2);
    }
}

// ---------------------------------------------------------------------------------------------
// T::eq
// ---------------------------------------------------------------------------------------------

/// Arms `plan.drop` to record, for each drop of `#n`, whether the value could be read from
/// inside that `Drop` (it cannot under the value's lock: a re-entrancy panic).
fn record_drops(plan: &Arc<Plan>, n: u64, v: &ValueWatcher<Evil>) -> Records {
    let out = Arc::new(Mutex::new(Vec::new()));
    let (weak, log) = (v.downgrade(), Arc::clone(&out));
    plan.drop.hook(n, 0, ALWAYS, move |_| {
        let r = caught(|| weak.upgrade().map_or(u64::MAX, |v| v.version()));
        log.lock().unwrap().push(r);
    });
    out
}

#[track_caller]
fn assert_outside_lock(records: &Mutex<Vec<Result<u64, String>>>, what: &str) {
    let records = records.lock().unwrap();
    assert!(!records.is_empty(), "{what}: the drop was not seen");
    for r in records.iter() {
        assert!(
            r.is_ok(),
            "{what}: dropped under the value's lock ({})",
            r.as_ref().unwrap_err()
        );
    }
}

fault_test! {
    fn a_panicking_eq_in_set_drops_the_rejected_value_outside_the_lock() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let drops = record_drops(&plan, 7, &v);
        plan.eq.panic(7, 0, 1);
        assert!(caught(|| v.set(plan.evil(7))).is_err(), "nobody watching");
        assert_outside_lock(&drops, "set with nobody watching");
        drops.lock().unwrap().clear();
        let mut sub = v.subscribe();
        plan.eq.panic(7, 0, ALWAYS);
        assert!(caught(|| v.set(plan.evil(7))).is_err(), "watched");
        assert_outside_lock(&drops, "set with a subscription");
        drops.lock().unwrap().clear();
        assert!(caught(|| v.set_if(plan.evil(7), |_| true)).is_err(), "set_if");
        assert_outside_lock(&drops, "set_if's value");
        drops.lock().unwrap().clear();
        assert!(caught(|| v.update(|_| Some(plan.evil(7)))).is_err(), "update");
        assert_outside_lock(&drops, "update's value");
        plan.disarm_all();
        assert_eq!(v.version(), 0);
        assert!(v.set(plan.evil(1)));
        assert_eq!(drain_gap_free(&mut sub, 1, 1)[0].n, 1);
    }
}

fault_test! {
    /// Issue 8 (i), at registration: the callback and the value are dropped outside the lock.
    fn an_on_value_whose_eq_panics_at_registration_drops_its_callback_outside_the_lock() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let seen = evil_recorder(&v);
        let drops = record_drops(&plan, 5, &v);
        let closure_drops = Arc::new(Mutex::new(Vec::new()));
        let (weak, log) = (v.downgrade(), Arc::clone(&closure_drops));
        let probe = OnDrop(move || {
            let r = caught(|| weak.upgrade().map_or(u64::MAX, |v| v.version()));
            log.lock().unwrap().push(r);
        });
        plan.eq.panic(5, 0, 1);
        let r = caught(|| v.on_value(plan.evil(5), move || drop(probe)));
        assert!(r.is_err(), "the eq panic reaches the caller");
        assert_outside_lock(&closure_drops, "the on_value callback");
        assert_outside_lock(&drops, "the on_value target");
        plan.disarm_all();
        assert!(v.set(plan.evil(1)));
        assert!(v.set(plan.evil(5)));
        assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 5)]);
        assert_eq!(v.watcher_count(), 0);
    }
}

fault_test! {
    /// Issue 8 (i), at dispatch.
    fn an_on_value_whose_eq_panics_at_dispatch_stops_no_other_callback() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let fired = Arc::new(AtomicUsize::new(0));
        let f = Arc::clone(&fired);
        let _h = v.on_value(plan.tagged(3), move || {
            f.fetch_add(1, Ordering::SeqCst);
        });
        let seen = evil_recorder(&v);
        // Only the callback's comparisons (with its tagged target) panic.
        plan.eq.panic(TAG + 3, 0, ALWAYS);
        let r = caught(|| v.set(plan.evil(3)));
        assert!(matches!(r, Ok(true)) || r.is_err());
        plan.eq.disarm();
        assert!(v.set(plan.evil(4)));
        assert!(v.set(plan.evil(3)));
        assert_eq!(*seen.lock().unwrap(), [(0, 3), (3, 4), (4, 3)]);
        assert!(fired.load(Ordering::SeqCst) <= 1, "an on_value fires at most once");
    }
}

fault_test! {
    fn an_eq_panicking_in_a_wait_reaches_only_that_wait() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        // At creation.
        plan.eq.panic(ANY, 0, 1);
        let at_creation = v.wait_for(plan.evil(9));
        plan.eq.disarm();
        let r = caught(|| at_creation.blocking_timeout(LONG));
        assert!(r.is_err_and(|m| m.contains("hostile eq")), "the finisher raises it");
        assert_eq!(v.watcher_count(), 0);
        // At a transition: only the wait's comparisons (with its tagged target) panic.
        let bad = on_thread(v.wait_for(plan.tagged(2)));
        let good = on_thread(v.wait_for_change());
        let task = on_task(v.wait_until(|e| e.n == 2));
        let (count, waker) = counting_waker();
        let mut polled = v.wait_for_not(plan.evil(0));
        assert!(poll_once(&mut polled, &waker).is_pending());
        settle();
        plan.eq.panic(TAG + 2, 0, 1);
        assert_eq!(caught(|| v.set(plan.evil(2))).map_err(|_| ()), Ok(true));
        plan.eq.disarm();
        assert!(woken(&bad, "the panicking wait").is_err_and(|m| m.contains("hostile eq")));
        assert_eq!(woken(&good, "the blocked thread").map(|e| e.n), Ok(2));
        assert_eq!(woken(&task, "the task").map(|e| e.n), Ok(2));
        assert_eq!(count.count(), 1);
        assert_eq!(polled.blocking_timeout(LONG).map(|e| e.n), Ok(2));
        assert_eq!(v.watcher_count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// T::drop (and a predicate's captured state's drop)
// ---------------------------------------------------------------------------------------------

fault_test! {
    /// Issue 8 (c), blocking finisher: must not abort.
    fn a_panicking_drop_of_a_finished_waits_target_does_not_abort_a_blocking_finisher() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let w = v.wait_for(plan.evil(2));
        assert!(v.set(plan.evil(2)));
        plan.drop.panic(2, 0, 1);
        let r = caught(|| w.blocking_timeout(LONG).map(|e| e.n));
        assert!(r == Ok(Ok(2)) || r.as_ref().is_err_and(|m| m.contains("hostile drop")), "{r:?}");
        plan.drop.disarm();
        let again = v.wait_for(plan.evil(3));
        assert!(v.set(plan.evil(3)));
        assert_eq!(again.blocking_timeout(LONG).map(|e| e.n), Ok(3));
        assert_eq!(v.watcher_count(), 0);
    }
}

fault_test! {
    /// Issue 8 (c), caught: no other wait (reusing the key) is deregistered.
    fn a_panicking_drop_at_a_waits_finish_deregisters_no_other_wait() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let mut w = v.wait_for(plan.evil(2));
        assert!(v.set(plan.evil(2)));
        plan.drop.panic(2, 0, 1);
        let waker = noop_waker();
        let r = caught(|| poll_once(&mut w, &waker).map(|r| r.map(|e| e.n)));
        assert!(r == Ok(Poll::Ready(Ok(2))) || r.as_ref().is_err_and(|m| m.contains("hostile drop")), "{r:?}");
        plan.drop.disarm();
        let other = v.wait_for(plan.evil(3));
        let r = caught(move || drop(w));
        assert!(r.is_ok(), "dropping the finished wait: {r:?}");
        assert_eq!(v.watcher_count(), 1, "the other wait is still registered");
        assert!(v.set(plan.evil(3)));
        assert_eq!(caught(|| other.blocking_timeout(LONG).map(|e| e.n)), Ok(Ok(3)));
        assert_eq!(v.watcher_count(), 0);
    }
}

fault_test! {
    /// Issue 8 (c), the predicate's captured state: blocking finisher, then key reuse.
    fn a_panicking_drop_of_a_predicates_state_at_finish_neither_aborts_nor_deregisters_another_wait() {
        let v = ValueWatcher::new(0u64);
        let armed = Arc::new(AtomicBool::new(false));
        let a = Arc::clone(&armed);
        let state = OnDrop(move || {
            if a.swap(false, Ordering::SeqCst) {
                panic!("hostile drop of a predicate's state");
            }
        });
        let w = v.wait_until(move |n| {
            let _ = &state;
            *n == 2
        });
        assert!(v.set(2));
        armed.store(true, Ordering::SeqCst);
        let r = caught(|| w.blocking_timeout(LONG));
        assert!(r == Ok(Ok(2)) || r.as_ref().is_err_and(|m| m.contains("hostile drop")), "{r:?}");
        // The same through a poll, then a wait that reuses the key.
        let armed = Arc::new(AtomicBool::new(false));
        let a = Arc::clone(&armed);
        let state = OnDrop(move || {
            if a.swap(false, Ordering::SeqCst) {
                panic!("hostile drop of a wait_map function's state");
            }
        });
        let mut w = v.wait_map(move |n| {
            let _ = &state;
            (*n == 3).then_some(*n)
        });
        assert!(v.set(3));
        armed.store(true, Ordering::SeqCst);
        let waker = noop_waker();
        let _ = caught(|| poll_once(&mut w, &waker));
        let other = v.wait_for(4);
        assert!(caught(move || drop(w)).is_ok());
        assert_eq!(v.watcher_count(), 1, "the other wait is still registered");
        assert!(v.set(4));
        assert_eq!(caught(|| other.blocking_timeout(LONG)), Ok(Ok(4)));
    }
}

fault_test! {
    fn a_panicking_drop_of_a_replaced_or_queued_value_every_time_keeps_every_watcher_consistent() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let seen = evil_recorder(&v);
        let mut sub = v.subscribe();
        let w = v.wait_for(plan.evil(3));
        plan.drop.panic(ANY, 0, ALWAYS);
        for n in 1..=3 {
            let r = caught(|| v.set(plan.evil(n)));
            assert!(matches!(r, Ok(true)) || r.is_err_and(|m| m.contains("hostile drop")));
        }
        plan.drop.disarm();
        assert_eq!((v.version(), v.get().n), (3, 3), "every set took full effect");
        assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(w.blocking_timeout(LONG).map(|e| e.n), Ok(3));
        let got: Vec<u64> = drain_gap_free(&mut sub, 1, 3).iter().map(|e| e.n).collect();
        assert_eq!(got, [1, 2, 3]);
        // Queued transitions dropped with their subscription.
        assert!(v.set(plan.evil(4)));
        plan.drop.panic(ANY, 0, ALWAYS);
        let _ = caught(move || drop(sub));
        plan.drop.disarm();
        assert_eq!(v.watcher_count(), 0);
        assert!(v.set(plan.evil(5)));
    }
}

fault_test! {
    fn a_panicking_drop_of_a_skipped_match_at_creation_leaks_no_registration() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(1));
        let w = v.wait_for(plan.evil(1));
        plan.drop.panic(1, 0, 1);
        let r = caught(move || w.skip_current());
        plan.drop.disarm();
        match r {
            Ok(w) => {
                assert_eq!(v.watcher_count(), 1);
                assert!(v.set(plan.evil(2)));
                assert!(v.set(plan.evil(1)));
                assert_eq!(w.blocking_timeout(LONG).map(|e| e.n), Ok(1));
            }
            Err(msg) => assert!(msg.contains("hostile drop"), "{msg}"),
        }
        assert_eq!(v.watcher_count(), 0);
    }
}

fault_test! {
    fn drops_of_values_the_value_lets_go_of_run_outside_its_lock() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let drops = record_drops(&plan, ANY, &v);
        assert!(v.set(plan.evil(1)), "replaced, nobody watching");
        assert!(!v.set(plan.evil(1)), "rejected as equal");
        let seen = evil_recorder(&v);
        let mut sub = v.subscribe();
        let w = v.wait_for(plan.evil(2));
        let cancelled = v.wait_for(plan.evil(9));
        assert!(v.set(plan.evil(2)), "replaced, watched");
        assert!(!v.set_if(plan.evil(5), |_| false), "set_if refused");
        assert!(!v.update(|_| None));
        assert_eq!(w.blocking_timeout(LONG).map(|e| e.n), Ok(2));
        drop(cancelled);
        let _ = sub.try_recv();
        let pending = v.wait_for(plan.evil(9));
        v.close();
        assert!(!v.set(plan.evil(6)), "rejected after close");
        assert_eq!(pending.blocking_timeout(LONG).map(|e| e.n), Err(Error::Closed));
        drop(sub);
        assert_outside_lock(&drops, "a value dropped by keepwatch");
        plan.drop.disarm();
        assert_eq!(*seen.lock().unwrap(), [(1, 2)]);
    }
}

// ---------------------------------------------------------------------------------------------
// with / set_if / update closures
// ---------------------------------------------------------------------------------------------

/// What each probed `Drop` saw when it read the value.
type Records = Arc<Mutex<Vec<Result<u64, String>>>>;

/// A probe whose `Drop` records whether `v` could be read from inside it.
fn drop_probe(v: &ValueWatcher<u64>) -> (OnDrop<impl FnMut()>, Records) {
    let out = Arc::new(Mutex::new(Vec::new()));
    let (weak, log) = (v.downgrade(), Arc::clone(&out));
    let probe = OnDrop(move || {
        let r = caught(|| weak.upgrade().map_or(u64::MAX, |v| v.version()));
        log.lock().unwrap().push(r);
    });
    (probe, out)
}

fault_test! {
    /// Issue 8 (g).
    fn update_and_set_if_on_a_closed_value_drop_their_closures_outside_the_lock() {
        let v = ValueWatcher::new(0u64);
        v.close();
        let (probe, drops) = drop_probe(&v);
        let r = caught(|| {
            v.update(move |_| {
                let _ = &probe;
                panic!("never called on a closed value")
            })
        });
        assert_eq!(r, Ok(false));
        assert_outside_lock(&drops, "update's closure on a closed value");
        let (probe, drops) = drop_probe(&v);
        let r = caught(|| {
            v.set_if(1, move |_| {
                let _ = &probe;
                panic!("never called on a closed value")
            })
        });
        assert_eq!(r, Ok(false));
        assert_outside_lock(&drops, "set_if's condition on a closed value");
    }
}

fault_test! {
    fn a_panicking_set_if_condition_drops_the_new_value_outside_the_lock() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let drops = record_drops(&plan, 5, &v);
        let r = caught(|| v.set_if(plan.evil(5), |_| panic!("hostile condition")));
        assert!(r.is_err_and(|m| m.contains("hostile condition")));
        assert_outside_lock(&drops, "set_if's value after its condition panicked");
        plan.drop.disarm();
        assert_eq!(v.version(), 0);
        assert!(v.set_if(plan.evil(5), |e| e.n == 0));
    }
}

fault_test! {
    fn closures_that_panic_once_or_every_time_leave_the_value_usable_and_watchers_consistent() {
        let v = ValueWatcher::new(0u64);
        let seen = recorder(&v);
        let mut sub = v.subscribe();
        let w = v.wait_for(3);
        for round in 0..3 {
            assert!(caught(|| v.with(|_| -> u64 { panic!("hostile with {round}") })).is_err());
            assert!(caught(|| v.set_if(9, |_| panic!("hostile set_if {round}"))).is_err());
            assert!(caught(|| v.update(|_| -> Option<u64> { panic!("hostile update {round}") })).is_err());
            assert!(v.update(|n| Some(n + 1)), "usable after round {round}");
        }
        assert_eq!(v.version(), 3);
        assert_chain(&seen.lock().unwrap(), &[0, 1, 2, 3]);
        assert_eq!(w.blocking_timeout(LONG), Ok(3));
        drain_gap_free(&mut sub, 1, 3);
        assert_eq!(v.watcher_count(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Predicates and wait_map functions
// ---------------------------------------------------------------------------------------------

fault_test! {
    fn wait_map_functions_that_panic_or_call_back_reach_only_their_wait_and_drop_outside_the_lock() {
        let v = ValueWatcher::new(0u64);
        let always = v.wait_map(|n| -> Option<u64> { panic!("hostile map of {n}") });
        let once_flag = Arc::new(AtomicBool::new(true));
        let f = Arc::clone(&once_flag);
        let once = v.wait_map(move |n| {
            if *n == 1 && f.swap(false, Ordering::SeqCst) {
                panic!("hostile map once");
            }
            (*n >= 1).then_some(*n)
        });
        let weak = v.downgrade();
        let calling = v.wait_map(move |n| {
            let r = caught(|| weak.upgrade().map(|v| v.version()));
            assert!(r.as_ref().map_or_else(|m| mentions_reentrancy(m), |_| true), "{r:?}");
            (*n == 2).then_some(*n)
        });
        let (probe, drops) = drop_probe(&v);
        let cancelled = v.wait_map(move |n| {
            let _ = &probe;
            (*n == 99).then_some(*n)
        });
        let good = on_thread(v.wait_map(|n| (*n == 2).then_some(*n * 10)));
        settle();
        assert!(v.set(1));
        assert!(v.set(2));
        assert!(caught(|| always.blocking_timeout(LONG)).is_err_and(|m| m.contains("hostile map of 0")));
        assert!(caught(|| once.blocking_timeout(LONG)).is_err_and(|m| m.contains("hostile map once")));
        assert_eq!(caught(|| calling.blocking_timeout(LONG)), Ok(Ok(2)));
        assert_eq!(woken(&good, "the blocked thread"), Ok(20));
        drop(cancelled);
        assert_outside_lock(&drops, "a cancelled wait_map's function");
        let (probe, drops) = drop_probe(&v);
        let at_close = v.wait_until(move |n| {
            let _ = &probe;
            *n == 99
        });
        v.close();
        assert_eq!(at_close.blocking_timeout(LONG), Err(Error::Closed));
        assert_outside_lock(&drops, "a predicate ended by close");
        assert_eq!(v.watcher_count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------------------------

fault_test! {
    /// Issue 8 (h).
    fn a_callback_panic_whose_payload_drop_panics_stops_no_later_callback() {
        let v = ValueWatcher::new(0u64);
        let drops = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let (d, c) = (Arc::clone(&drops), Arc::clone(&calls));
        let _bad = v.on_change(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            std::panic::panic_any(PanickyPayload { drops: Arc::clone(&d) });
        });
        let seen = recorder(&v);
        let w = v.wait_for(3);
        for n in 1..=3 {
            let r = caught(|| v.set(n));
            assert!(matches!(r, Ok(true)) || r.is_err(), "set {n}");
        }
        assert_eq!(v.version(), 3);
        assert_chain(&seen.lock().unwrap(), &[0, 1, 2, 3]);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "the panicking callback stays registered");
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        assert_eq!(w.blocking_timeout(LONG), Ok(3));
    }
}

fault_test! {
    fn callbacks_whose_drop_panics_on_cancel_or_close_leave_the_value_usable() {
        let v = ValueWatcher::new(0u64);
        let seen = recorder(&v);
        let bomb = || {
            OnDrop(|| {
                if !thread::panicking() {
                    panic!("hostile drop of a callback");
                }
            })
        };
        let b = bomb();
        let h = v.on_change(move |_, _| {
            let _ = &b;
        });
        assert!(v.set(1));
        let r = caught(move || h.cancel());
        assert!(r.is_ok() || r.is_err_and(|m| m.contains("hostile drop")));
        let b = bomb();
        let _h = v.on_change(move |_, _| {
            let _ = &b;
        });
        let b = bomb();
        let _once = v.on_value(2, move || drop(b));
        let r = caught(|| v.set(2));
        assert!(matches!(r, Ok(true)) || r.is_err());
        assert!(v.set(3));
        assert_chain(&seen.lock().unwrap(), &[0, 1, 2, 3]);
        let w = v.wait_for(9);
        let thread_rx = on_thread(v.wait_for(9));
        settle();
        let r = caught(|| v.close());
        assert!(r.is_ok() || r.is_err_and(|m| m.contains("hostile drop")));
        assert!(v.is_closed());
        assert_eq!(w.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(woken(&thread_rx, "the blocked thread"), Err(Error::Closed.to_string()));
        assert_eq!(v.get(), 3);
    }
}

// ---------------------------------------------------------------------------------------------
// Two values' closures that call into each other (a lock-order cycle)
// ---------------------------------------------------------------------------------------------

/// Runs `a_side` and `b_side` on two threads; each must end (with a result or a panic) within
/// the budget, and at least one way out must be taken.
fn cycle(a_side: impl FnOnce() + Send + 'static, b_side: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    thread::spawn(move || {
        let _ = tx.send(("A", caught(a_side)));
    });
    thread::spawn(move || {
        let _ = tx2.send(("B", caught(b_side)));
    });
    for _ in 0..2 {
        let (side, r) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a lock-order cycle between two values hung (deadlock)");
        if let Err(msg) = r {
            assert!(
                msg.contains("keepwatch"),
                "side {side}: not a clear keepwatch panic: {msg}"
            );
        }
    }
}

fault_test! {
    /// Issue 8 (d).
    fn two_values_whose_with_closures_read_each_other_never_hang() {
        let a = ValueWatcher::new(1u64);
        let b = ValueWatcher::new(2u64);
        let barrier = Arc::new(Barrier::new(2));
        let (a1, b1, bar1) = (a.clone(), b.clone(), Arc::clone(&barrier));
        let (a2, b2, bar2) = (a.clone(), b.clone(), barrier);
        cycle(
            move || {
                a1.with(|_| {
                    bar1.wait();
                    b1.get()
                });
            },
            move || {
                b2.with(|_| {
                    bar2.wait();
                    a2.get()
                });
            },
        );
        assert!(a.set(3) && b.set(4), "both values stay usable");
    }
}

fault_test! {
    fn a_predicate_and_an_update_closure_that_read_each_others_value_never_hang() {
        let a = ValueWatcher::new(0u64);
        let b = ValueWatcher::new(0u64);
        let barrier = Arc::new(Barrier::new(2));
        let armed = Arc::new(AtomicBool::new(false));
        let (b1, bar1, arm1) = (b.clone(), Arc::clone(&barrier), Arc::clone(&armed));
        // A's predicate reads B; it runs under A's lock when A is set.
        // Not dropped if the cycle hangs: its drop would wait for A's lock forever.
        let w = std::mem::ManuallyDrop::new(a.wait_until(move |n| {
            if arm1.swap(false, Ordering::SeqCst) {
                bar1.wait();
                let _ = b1.get();
            }
            *n == 1
        }));
        armed.store(true, Ordering::SeqCst);
        let (a1, a2, b2, bar2) = (a.clone(), a.clone(), b.clone(), barrier);
        cycle(
            move || {
                a1.set(1);
            },
            move || {
                b2.update(|n| {
                    bar2.wait();
                    let _ = a2.get();
                    Some(n + 1)
                });
            },
        );
        let _ = caught(|| std::mem::ManuallyDrop::into_inner(w).blocking_timeout(LONG));
        assert!(a.set(2) && b.set(7), "both values stay usable");
        assert_eq!(a.watcher_count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Memory after a burst
// ---------------------------------------------------------------------------------------------

/// How far above its idle level the heap may stay after a burst.
const SLACK: usize = 16 << 10;

#[track_caller]
fn assert_back(what: &str, before: usize, after: usize) {
    eprintln!(
        "{what}: heap {} before, {} after",
        human(before),
        human(after)
    );
    assert!(
        after <= before + SLACK,
        "{what}: {} stay allocated after the burst ({} before, {} after)",
        human(after.saturating_sub(before)),
        human(before),
        human(after)
    );
}

fault_test! {
    /// Issue 8 (e).
    fn the_storage_for_waits_returns_near_its_idle_size_after_a_burst() {
        let v = ValueWatcher::new(0u64);
        let n = burst();
        let before = live_bytes();
        let waits: Vec<Wait<u64>> = (0..n as u64).map(|i| v.wait_for(i + 1)).collect();
        assert_eq!(v.watcher_count(), n);
        drop(waits);
        assert_eq!(v.watcher_count(), 0);
        // Finished waits go the same way.
        let waits: Vec<Wait<u64>> = (0..n).map(|_| v.wait_for_change()).collect();
        assert!(v.set(1));
        for w in waits {
            assert_eq!(w.blocking_timeout(LONG), Ok(1));
        }
        assert_back(&format!("{n} waits"), before, live_bytes());
    }
}

fault_test! {
    fn the_storage_for_subscriptions_returns_near_its_idle_size_after_a_burst_while_one_stays() {
        let v = ValueWatcher::new(0u64);
        let mut stays = v.subscribe();
        let n = burst();
        let before = live_bytes();
        let subs: Vec<Subscription<u64>> = (0..n).map(|_| v.subscribe()).collect();
        assert_eq!(v.watcher_count(), n + 1);
        drop(subs);
        assert_eq!(v.watcher_count(), 1);
        assert_back(&format!("{n} subscriptions"), before, live_bytes());
        assert!(v.set(1));
        drain_gap_free(&mut stays, 1, 1);
    }
}

fault_test! {
    fn the_storage_for_callbacks_returns_near_its_idle_size_after_a_burst() {
        let v = ValueWatcher::new(0u64);
        let seen = recorder(&v);
        let n = burst();
        let before = live_bytes();
        let handles: Vec<_> = (0..n).map(|_| v.on_change(|_, _| {})).collect();
        // Newest first: the memory is what is measured here, not the cost of a cancel.
        for h in handles.into_iter().rev() {
            h.cancel();
        }
        assert_back(&format!("{n} callbacks"), before, live_bytes());
        assert!(v.set(1));
        assert_chain(&seen.lock().unwrap(), &[0, 1]);
    }
}

// ---------------------------------------------------------------------------------------------
// 0.2: `modify` closures
// ---------------------------------------------------------------------------------------------

fault_test! {
    /// F36.
    fn modify_closures_that_panic_once_or_every_time_restore_the_value_and_keep_watchers_consistent() {
        let v = ValueWatcher::new(0u64);
        let seen = recorder(&v);
        let mut sub = v.subscribe();
        let doubled = v.map(|n| n * 2);
        let mut derived_sub = doubled.subscribe();
        let never = v.wait_for(100);
        let w = on_thread(v.wait_for(3));
        settle();
        // Once: the first modify of each round panics after changing the value; then one that
        // works. Every time: three rounds in a row panic before the first success.
        for round in 0..3 {
            let r = caught(|| v.modify(|n| {
                *n += 50;
                panic!("hostile modify {round}");
            }));
            assert!(r.is_err_and(|m| m.contains(&format!("hostile modify {round}"))));
            assert_eq!(v.get(), round, "restored after round {round}");
            assert!(!never.is_ready(), "the half-made value was never seen");
            for _ in 0..round {
                assert!(caught(|| v.modify(|_| panic!("again"))).is_err());
            }
            assert!(v.modify(|n| *n += 1), "usable after round {round}");
        }
        assert_eq!(v.version(), 3);
        assert_chain(&seen.lock().unwrap(), &[0, 1, 2, 3]);
        assert_eq!(woken(&w, "the blocked thread"), Ok(3));
        drain_gap_free(&mut sub, 1, 3);
        assert_eq!(
            drain_gap_free(&mut derived_sub, 1, 3),
            [2, 4, 6],
            "the derived value saw no half-made value either"
        );
        assert_eq!(v.watcher_count(), 2, "the subscription and the pending wait");
        drop(never);
        assert_eq!(v.watcher_count(), 1);
    }
}

/// A call back into the value, made from inside a closure.
type CallInto = Box<dyn Fn(&ValueWatcher<u64>) + Send>;

fault_test! {
    /// F37.
    fn a_modify_closure_calling_back_into_the_same_value_gets_a_clear_panic_and_the_value_is_restored() {
        let v = ValueWatcher::new(0u64);
        let other = ValueWatcher::new(7u64);
        let mut sub = v.subscribe();
        let inner = v.clone();
        let calls: [(&str, CallInto); 5] = [
            ("get", Box::new(|v| {
                let _ = v.get();
            })),
            ("set", Box::new(|v| {
                let _ = v.set(9);
            })),
            ("version", Box::new(|v| {
                let _ = v.version();
            })),
            ("subscribe", Box::new(|v| drop(v.subscribe()))),
            ("map", Box::new(|v| drop(v.map(|n| n + 1)))),
        ];
        for (what, call) in &calls {
            let r = caught(|| v.modify(|n| {
                *n = 5;
                call(&inner);
            }));
            let m = r.expect_err(what);
            assert!(mentions_reentrancy(&m), "{what}: unclear panic: {m}");
            assert_eq!(v.get(), 0, "{what}: restored");
        }
        // Calls into another value are fine.
        assert!(v.modify(|n| *n = other.get()));
        assert_eq!(v.get(), 7);
        drain_gap_free(&mut sub, 1, 1);
        assert_eq!(v.watcher_count(), 1);
    }
}

fault_test! {
    /// F38.
    fn a_modify_closure_never_called_on_a_closed_value_is_dropped_outside_the_lock() {
        let v = ValueWatcher::new(0u64);
        v.close();
        let (probe, drops) = drop_probe(&v);
        let r = caught(|| {
            v.modify(move |_| {
                let _ = &probe;
                panic!("never called on a closed value")
            })
        });
        assert_eq!(r, Ok(false));
        assert_outside_lock(&drops, "modify's closure on a closed value");
    }
}

fault_test! {
    /// F39.
    fn a_modify_whose_clone_or_eq_panics_restores_the_value_and_drops_its_spare_outside_the_lock() {
        let plan = Plan::new();
        let v = ValueWatcher::new(plan.evil(0));
        let seen = evil_recorder(&v);
        let mut sub = v.subscribe();
        // `Clone` of the current value panics (the copy kept to restore and as `old`).
        plan.clone.panic(0, 0, 1);
        let r = caught(|| v.modify(|e| e.n = 1));
        assert!(r.is_err_and(|m| m.contains("hostile clone")));
        assert_eq!(v.with(|e| e.n), 0);
        // `PartialEq` panics while deciding whether the value changed.
        plan.eq.panic(ANY, 0, 1);
        let r = caught(|| v.modify(|e| e.n = 2));
        assert!(r.is_err_and(|m| m.contains("hostile eq")));
        plan.disarm_all();
        assert_eq!(v.with(|e| e.n), 0, "restored");
        assert_eq!(v.version(), 0);
        // An unchanged modify lets go of its spare copy: outside the lock.
        let drops = record_drops(&plan, 0, &v);
        assert!(!v.modify(|_| {}));
        assert_outside_lock(&drops, "modify's spare copy");
        plan.drop.disarm();
        assert!(v.modify(|e| e.n = 3));
        assert_eq!(drain_gap_free(&mut sub, 1, 1).iter().map(|e| e.n).collect::<Vec<_>>(), [3]);
        assert_chain(&seen.lock().unwrap(), &[0, 3]);
    }
}

// ---------------------------------------------------------------------------------------------
// 0.2: `map` / `zip` functions
// ---------------------------------------------------------------------------------------------

fault_test! {
    /// F40.
    fn a_map_function_panicking_at_creation_reaches_the_caller_registers_nothing_and_drops_outside_the_lock() {
        let v = ValueWatcher::new(0u64);
        let mut sub = v.subscribe();
        let (probe, drops) = drop_probe(&v);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let r = caught(|| {
            v.map(move |n| {
                let _ = &probe;
                c.fetch_add(1, Ordering::SeqCst);
                assert!(*n != 0, "hostile map at creation");
                *n
            })
        });
        assert!(r.is_err_and(|m| m.contains("hostile map at creation")));
        assert_outside_lock(&drops, "the map function after its panic at creation");
        assert!(v.set(1));
        assert!(v.set(2));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "nothing registered");
        drain_gap_free(&mut sub, 1, 2);
        assert_eq!(v.watcher_count(), 1);
        // Calling back into the source at creation: under its lock, so a clear panic.
        let weak = v.downgrade();
        let r = caught(|| v.map(move |n| weak.upgrade().map_or(*n, |v| v.get())));
        assert!(r.is_err_and(|m| mentions_reentrancy(&m)));
        assert!(v.set(3));
    }
}

fault_test! {
    /// F41.
    fn a_map_function_panicking_on_a_later_transition_closes_only_that_derived_value() {
        for every_time in [false, true] {
            let v = ValueWatcher::new(0u64);
            let seen = recorder(&v);
            let mut sub = v.subscribe();
            let source_wait = on_thread(v.wait_for(4));
            let sturdy = v.map(|n| n + 100);
            let pair = sturdy.zip(&v);
            let mut sturdy_sub = sturdy.subscribe();
            let (probe, drops) = drop_probe(&v);
            let fired = Arc::new(AtomicUsize::new(0));
            let f = Arc::clone(&fired);
            let fragile = v.map(move |n| {
                let _ = &probe;
                if *n >= 2 && (every_time || f.fetch_add(1, Ordering::SeqCst) == 0) {
                    panic!("hostile map of {n}");
                }
                *n
            });
            let fragile_blocked = on_thread(fragile.wait_for(50));
            let fragile_task = on_task(fragile.wait_until(|n| *n > 50));
            let chained = fragile.map(|n| n * 10);
            let mut fragile_sub = fragile.subscribe();
            settle();
            for n in 1..=4 {
                assert_eq!(caught(|| v.set(n)), Ok(true), "the setter is unaffected");
            }
            assert!(fragile.is_closed() && chained.is_closed());
            assert_eq!((fragile.get(), chained.get()), (1, 10));
            let ended = |r: Result<u64, String>| r.is_err_and(|m| m.contains("closed"));
            assert!(ended(woken(&fragile_blocked, "a thread on the derived value")));
            assert!(ended(woken(&fragile_task, "a task on the derived value")));
            assert_eq!(fragile_sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(1));
            assert_eq!(fragile_sub.recv().blocking_timeout(LONG), Err(Error::Closed));
            assert_outside_lock(&drops, "the map function of a closed derived value");
            // Everybody else saw everything.
            assert_eq!(woken(&source_wait, "a thread on the source"), Ok(4));
            assert_chain(&seen.lock().unwrap(), &[0, 1, 2, 3, 4]);
            drain_gap_free(&mut sub, 1, 4);
            assert_eq!(drain_gap_free(&mut sturdy_sub, 1, 4), [101, 102, 103, 104]);
            assert_eq!(pair.get(), (104, 4));
            assert!(!v.is_closed() && v.set(5));
            assert_eq!(sturdy.get(), 105);
            assert_eq!(v.watcher_count(), 1);
        }
    }
}

fault_test! {
    /// F42.
    fn a_map_function_calling_back_into_its_source_on_a_later_transition_never_hangs_or_reaches_the_setter() {
        let v = ValueWatcher::new(0u64);
        let mut sub = v.subscribe();
        let seen = recorder(&v);
        let weak = v.downgrade();
        let reads = v.map(move |n| {
            // Outside the source's lock: works, or a clear panic that closes the derived value.
            let r = caught(|| weak.upgrade().map_or(0, |v| v.version()));
            assert!(r.as_ref().map_or_else(|m| mentions_reentrancy(m), |_| true), "{r:?}");
            *n
        });
        let weak = v.downgrade();
        let sets = v.map(move |n| {
            if *n == 2 {
                let _ = weak.upgrade().map(|v| v.set(10));
            }
            *n
        });
        for n in 1..=3 {
            assert_eq!(caught(|| v.set(n)), Ok(true));
        }
        let last = v.get();
        assert!(last == 3 || last == 10, "{last}");
        assert!(reads.is_closed() || reads.get() == last, "reads: {:?}", reads.get());
        assert!(sets.is_closed() || sets.get() == last, "sets: {:?}", sets.get());
        let versions = v.version();
        drain_gap_free(&mut sub, 1, versions);
        let chain: Vec<u64> = seen.lock().unwrap().iter().map(|t| t.1).collect();
        assert_eq!(chain.len() as u64, versions, "callbacks went on in order");
        assert!(v.set(20));
    }
}

fault_test! {
    /// F43.
    fn a_clone_panicking_while_a_zip_pairs_closes_that_pair_and_nothing_else() {
        for every_time in [false, true] {
            let plan = Plan::new();
            let a = ValueWatcher::new(plan.evil(0));
            let b = ValueWatcher::new(plan.evil(77));
            let fragile = a.zip(&b);
            let second = a.zip(&b);
            let only_a = a.map(|e| e.n);
            let seen = evil_recorder(&a);
            let fragile_wait = on_thread(fragile.wait_until(|(x, _)| x.n == 9));
            settle();
            // A transition of `a` pairs its new value with a clone of `b`'s (#77).
            plan.clone.panic(77, 0, if every_time { ALWAYS } else { 1 });
            assert_eq!(caught(|| a.set(plan.evil(1))).map_err(|_| ()), Ok(true), "the setter is unaffected");
            assert!(fragile.is_closed(), "the pair whose clone panicked closed");
            assert!(woken(&fragile_wait, "a thread on the pair").is_err_and(|m| m.contains("closed")));
            assert_eq!(second.is_closed(), every_time, "the other pair only if its clone panicked too");
            plan.disarm_all();
            assert!(a.set(plan.evil(2)));
            assert!(b.set(plan.evil(3)));
            assert_eq!(only_a.get(), 2);
            if !every_time {
                assert_eq!(second.with(|(x, y)| (x.n, y.n)), (2, 3));
            }
            assert_eq!(fragile.with(|(x, y)| (x.n, y.n)), (0, 77), "the last pair it took");
            assert_chain(&seen.lock().unwrap(), &[0, 1, 2]);
            assert_eq!((a.watcher_count(), b.watcher_count()), (0, 0));
        }
    }
}

fault_test! {
    /// F44.
    fn a_map_functions_captured_state_is_dropped_outside_every_lock_when_unregistered_closed_or_its_source_goes() {
        // The derived value dropped: unregistered (at once, or at the source's next set).
        let v = ValueWatcher::new(0u64);
        let (probe, drops) = drop_probe(&v);
        let m = v.map(move |n| {
            let _ = &probe;
            *n
        });
        drop(m);
        assert!(v.set(1));
        assert_outside_lock(&drops, "a dropped map's function");
        // The source closed, then its last handle dropped.
        for by_drop in [false, true] {
            let v = ValueWatcher::new(0u64);
            let (probe, drops) = drop_probe(&v);
            let keep = v.downgrade();
            let m = v.map(move |n| {
                let _ = &probe;
                *n
            });
            if by_drop {
                let reader = v.reader();
                drop(v);
                assert!(reader.is_closed() && m.is_closed());
            } else {
                v.close();
                assert!(m.is_closed());
            }
            drop(m);
            let records = drops.lock().unwrap();
            assert_eq!(records.len(), 1, "dropped once (by_drop {by_drop})");
            // After a last-handle drop the probe cannot upgrade: `u64::MAX`, still no panic.
            assert!(records[0].is_ok(), "by_drop {by_drop}: {:?}", records[0]);
            drop(keep);
        }
    }
}
