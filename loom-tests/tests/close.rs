//! Model 7: close against waits, sets and subscriptions, and the last handle's drop against a
//! wait.

#![cfg(keepwatch_loom)]

use keepwatch::{Error, Transition, ValueWatcher};
use loom::thread;
use loom_tests::model;

/// Model 7: `close` racing a `set` and a blocked waiter. If the set came first the waiter has
/// the value and the subscription the transition, then `Closed`; otherwise the waiter and the
/// subscription end with `Closed` and the value never changed.
#[test]
fn m07_close_vs_set_vs_wait_ends_every_wait_with_its_value_or_closed() {
    model("m07 close vs set vs wait", || {
        let value = ValueWatcher::new(0u8);
        let wait = value.wait_for(1);
        let mut sub = value.subscribe();
        let setter = value.clone();
        let waiter = thread::spawn(move || wait.blocking());
        let t = thread::spawn(move || setter.set(1));
        value.close();
        let first = sub.recv().blocking();
        let set = t.join().unwrap();
        let waited = waiter.join().unwrap();
        if set {
            assert_eq!(value.get(), 1);
            assert_eq!(waited, Ok(1));
            let logged = Transition {
                old: 0,
                new: 1,
                version: 1,
            };
            assert_eq!(first, Ok(logged));
            assert_eq!(sub.recv().blocking(), Err(Error::Closed));
        } else {
            assert_eq!(value.get(), 0);
            assert_eq!(waited, Err(Error::Closed));
            assert_eq!(first, Err(Error::Closed));
        }
        assert_eq!(value.watcher_count(), 1);
        drop(sub);
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 7: the last two handles dropped on two threads while a thread waits: exactly one drop
/// is the last, it closes the value, and the waiter and the subscription end with `Closed`.
#[test]
fn m07_last_handle_drop_vs_wait_ends_the_wait_with_closed() {
    model("m07 last-handle drop vs wait", || {
        let value = ValueWatcher::new(0u8);
        let weak = value.downgrade();
        let wait = value.wait_for(1);
        let mut sub = value.subscribe();
        let other = value.clone();
        let waiter = thread::spawn(move || wait.blocking());
        let dropper = thread::spawn(move || drop(other));
        drop(value);
        dropper.join().unwrap();
        assert_eq!(waiter.join().unwrap(), Err(Error::Closed));
        assert_eq!(sub.recv().blocking(), Err(Error::Closed));
        assert!(weak.upgrade().is_none());
    });
}
