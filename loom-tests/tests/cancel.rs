//! Models 6 and 10: dropping a wait or a subscription, or giving up on a timed wait, while a
//! set runs.

#![cfg(keepwatch_loom)]

use std::task::Poll;
use std::time::Duration;

use keepwatch::{Error, ValueWatcher};
use loom::thread;
use loom_tests::{model, poll_once, CountingWaker};

/// Model 6: waits (one that the set completes, one that nothing completes) and a receive that
/// registered a waker, then were dropped (cancelled), and a subscription dropped, while another
/// thread sets: no panic, no registration left behind,
/// and a waker the setter had already taken is woken harmlessly.
#[test]
fn m06_dropping_waits_and_subscriptions_during_a_set_leaks_nothing() {
    model("m06 drop/cancel vs set", || {
        let value = ValueWatcher::new(0u8);
        let mut wait = value.wait_for(1);
        let mut never = value.wait_for(9);
        let mut sub = value.subscribe();
        let setter = value.clone();
        let t = thread::spawn(move || assert!(setter.set(1)));
        let (counter, waker) = CountingWaker::new();
        assert!(poll_once(&mut never, &waker).is_pending());
        drop(never);
        if let Poll::Ready(result) = poll_once(&mut wait, &waker) {
            assert_eq!(result, Ok(1));
        } else {
            drop(wait);
        }
        {
            let mut recv = sub.recv();
            if let Poll::Ready(result) = poll_once(&mut recv, &waker) {
                assert_eq!(result.unwrap().new, 1);
            }
        }
        drop(sub);
        t.join().unwrap();
        assert!(counter.wakes() <= 2, "woken {} times", counter.wakes());
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 10: giving up. A timed blocking wait whose deadline has passed (loom has no timed
/// park: the shim's `park_timeout` returns at once, so this is the give-up path), racing a
/// matching set: it gets the value or `TimedOut`, leaves no registration, and a late unpark
/// meant for it does not confuse the next blocking wait on the same thread (it re-checks).
#[test]
fn m10_a_timed_blocking_wait_gives_up_cleanly_while_a_set_races_it() {
    model("m10 blocking give-up vs set", || {
        let value = ValueWatcher::new(0u8);
        let first = value.wait_for(1);
        let second = value.wait_for(2);
        let waiter = thread::spawn(move || {
            let gave_up = first.blocking_timeout(Duration::ZERO);
            assert!(
                matches!(gave_up, Ok(1) | Err(Error::TimedOut)),
                "{gave_up:?}"
            );
            second.blocking()
        });
        assert!(value.set(1));
        assert!(value.set(2));
        assert_eq!(waiter.join().unwrap(), Ok(2));
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 10, async: a task polls a wait once and abandons it (as a `timeout` future does when
/// its timer fires first), racing a matching set: value or abandoned, nothing left behind.
#[test]
fn m10_an_async_wait_abandoned_after_one_poll_leaves_nothing_behind() {
    model("m10 async give-up vs set", || {
        let value = ValueWatcher::new(0u8);
        let mut wait = value.wait_for(1);
        let setter = value.clone();
        let t = thread::spawn(move || assert!(setter.set(1)));
        let (counter, waker) = CountingWaker::new();
        match poll_once(&mut wait, &waker) {
            Poll::Ready(result) => assert_eq!(result, Ok(1)),
            Poll::Pending => drop(wait),
        }
        t.join().unwrap();
        assert!(counter.wakes() <= 1);
        assert_eq!(value.watcher_count(), 0);
    });
}
