//! Models 1, 2, 4 and 5: a one-shot wait racing the setter that completes it.

#![cfg(keepwatch_loom)]

use std::task::Poll;

use keepwatch::{Transition, ValueWatcher};
use loom::thread;
use loom_tests::{drive, model, poll_once, CountingWaker};

/// Model 1: a thread blocked in `Wait::blocking` always gets the value a concurrent `set`
/// stored: the registration and the set's check of it happen under one lock, and the park
/// after it never misses the unpark.
#[test]
fn m01_set_vs_blocking_wait_never_loses_the_wake_up() {
    model("m01 set vs blocking wait", || {
        let value = ValueWatcher::new(0u8);
        let wait = value.wait_for(1);
        let setter = value.clone();
        let t = thread::spawn(move || assert!(setter.set(1)));
        assert_eq!(wait.blocking(), Ok(1));
        t.join().unwrap();
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 1, for a subscription: a thread blocked in `Recv::blocking` gets the transition.
#[test]
fn m01_set_vs_blocking_recv_never_loses_the_wake_up() {
    model("m01 set vs blocking recv", || {
        let value = ValueWatcher::new(0u8);
        let mut sub = value.subscribe();
        let setter = value.clone();
        let t = thread::spawn(move || assert!(setter.set(1)));
        let got = sub.recv().blocking();
        assert_eq!(
            got,
            Ok(Transition {
                old: 0,
                new: 1,
                version: 1
            })
        );
        t.join().unwrap();
        drop(sub);
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 2: an async wait polled by hand with one waker, then (the task moved) with another,
/// racing a `set`: it completes with the value, and the waker registered last is the one
/// woken — parking until *that* waker fires deadlocks if only the stale one is woken.
#[test]
fn m02_set_vs_async_wait_with_a_waker_that_changes_between_polls() {
    model("m02 set vs async wait, waker changes", || {
        let value = ValueWatcher::new(0u8);
        let mut wait = value.wait_for(1);
        let setter = value.clone();
        let t = thread::spawn(move || assert!(setter.set(1)));
        let (first, first_waker) = CountingWaker::new();
        match poll_once(&mut wait, &first_waker) {
            Poll::Ready(result) => assert_eq!(result, Ok(1)),
            Poll::Pending => {
                let (second, second_waker) = CountingWaker::new();
                assert_eq!(drive(&mut wait, &second, &second_waker), Ok(1));
                assert!(second.wakes() <= 1, "woken {} times", second.wakes());
            }
        }
        assert!(first.wakes() <= 1, "woken {} times", first.wakes());
        t.join().unwrap();
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 2, on loom's executor: a task awaiting the wait on another thread, the setter on
/// this one.
#[test]
fn m02_set_vs_async_wait_under_block_on() {
    model("m02 set vs async wait, block_on", || {
        let value = ValueWatcher::new(0u8);
        let wait = value.wait_for(1);
        let t = thread::spawn(move || loom::future::block_on(wait));
        assert!(value.set(1));
        assert_eq!(t.join().unwrap(), Ok(1));
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 4: the lost update. A waiter for `B`, blocking and async, while another thread sets
/// `B` then `C`: both waiters get `B`, though the value has moved on by the time they run.
#[test]
fn m04_a_waiter_for_b_gets_b_though_the_value_moved_on_to_c() {
    model("m04 lost update", || {
        let value = ValueWatcher::new('A');
        let blocking = value.wait_for('B');
        let task = value.wait_until(|c| *c == 'B');
        let setter = value.clone();
        let t = thread::spawn(move || {
            assert!(setter.set('B'));
            assert!(setter.set('C'));
        });
        let async_waiter = thread::spawn(move || loom::future::block_on(task));
        assert_eq!(blocking.blocking(), Ok('B'));
        t.join().unwrap();
        assert_eq!(async_waiter.join().unwrap(), Ok('B'));
        assert_eq!(value.get(), 'C');
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 5: registration vs set. Waits and a subscription created while another thread sets
/// see either the old value and then the transition, or the new value — never neither.
#[test]
fn m05_a_wait_created_during_a_set_sees_the_old_value_then_the_transition_or_the_new_value() {
    model("m05 registration vs set", || {
        let value = ValueWatcher::new(0u8);
        let setter = value.clone();
        let t = thread::spawn(move || assert!(setter.set(1)));
        let wait = value.wait_for(1);
        let change = value.wait_for_change();
        let mut sub = value.subscribe();
        t.join().unwrap();
        // Created before the set or after it, `wait_for(1)` completes with 1.
        assert_eq!(wait.blocking(), Ok(1));
        // The subscription saw the old value and gets the transition, or saw the new value.
        let subscribed_before = *sub.initial() == 0;
        if subscribed_before {
            let first = sub.try_recv();
            assert_eq!(
                first,
                Ok(Some(Transition {
                    old: 0,
                    new: 1,
                    version: 1
                }))
            );
        } else {
            assert_eq!(*sub.initial(), 1);
        }
        assert_eq!(sub.try_recv(), Ok(None));
        // `wait_for_change` was created before the subscription: if the subscription came
        // before the set, so did it, and it must have the transition; otherwise it ends with
        // the close (or has the transition, if it came first).
        value.close();
        let changed = change.blocking();
        if subscribed_before {
            assert_eq!(changed, Ok(1));
        } else {
            assert!(matches!(changed, Ok(1) | Err(keepwatch::Error::Closed)));
        }
        drop(sub);
        assert_eq!(value.watcher_count(), 0);
    });
}
