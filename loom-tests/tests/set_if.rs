//! Model 8: conditional sets from two threads.

#![cfg(keepwatch_loom)]

use keepwatch::{Transition, ValueWatcher};
use loom::thread;
use loom_tests::model;

/// Model 8: `set_if` from two threads with exclusive conditions (both require the initial
/// value): exactly one succeeds, and the value and the log show only its transition.
#[test]
fn m08_set_if_with_exclusive_conditions_lets_exactly_one_win() {
    model("m08 set_if vs set_if", || {
        let value = ValueWatcher::new(0u8);
        let mut sub = value.subscribe();
        let other = value.clone();
        let t = thread::spawn(move || other.set_if(1, |v| *v == 0));
        let here = value.set_if(2, |v| *v == 0);
        let there = t.join().unwrap();
        assert!(here ^ there, "here: {here}, there: {there}");
        let winner = if here { 2 } else { 1 };
        assert_eq!(value.get(), winner);
        assert_eq!(value.version(), 1);
        assert_eq!(
            sub.try_recv(),
            Ok(Some(Transition {
                old: 0,
                new: winner,
                version: 1
            }))
        );
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

/// Model 8, read-modify-write: two concurrent `update` increments both land.
#[test]
fn m08_two_updates_both_land() {
    model("m08 update vs update", || {
        let value = ValueWatcher::new(0u8);
        let other = value.clone();
        let t = thread::spawn(move || assert!(other.update(|n| Some(n + 1))));
        assert!(value.update(|n| Some(n + 1)));
        t.join().unwrap();
        assert_eq!(value.get(), 2);
        assert_eq!(value.version(), 2);
    });
}
