//! Panicking user code: a callback, a `wait_until` predicate, a `Drop` of the value inside
//! `set`, and `set_if`/`update` closures. The value stays usable, the other waiters and
//! callbacks still run, and a predicate's panic reaches the task or thread that supplied it and
//! no one else.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{expect_panic, join_tokio, panic_message, tokio_multi_thread, watchdog, LONG};
use keepwatch::ValueWatcher;

#[test]
fn a_panicking_callback_stops_nothing_and_stays_registered() {
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let _bad = value.on_change(move |_, new| {
            c.fetch_add(1, Ordering::SeqCst);
            panic!("callback panic at {new}");
        });
        let s = seen.clone();
        let _good = value.on_change(move |old, new| s.lock().unwrap().push((*old, *new)));
        let wait = value.wait_for(3);
        for n in 1..=3 {
            assert!(value.set(n), "the setter is not stopped");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "still registered after panicking"
        );
        assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(wait.blocking_timeout(LONG), Ok(3));
        assert_eq!(value.get(), 3);
        assert!(value.update(|n| Some(n + 1)));
    });
}

#[test]
fn a_panicking_wait_until_predicate_reaches_only_the_thread_that_supplied_it() {
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let bad = value.wait_until(|v| {
            if *v == 2 {
                panic!("predicate panic")
            } else {
                false
            }
        });
        let good = value.wait_for(2);
        let other = value.wait_until(|v| *v >= 2);
        let bad_thread =
            thread::spawn(move || catch_unwind(AssertUnwindSafe(|| bad.blocking_timeout(LONG))));
        let good_thread = thread::spawn(move || good.blocking_timeout(LONG));
        value.set(1);
        assert!(
            value.set(2),
            "the setter does not see the predicate's panic"
        );
        let payload = bad_thread
            .join()
            .unwrap()
            .expect_err("the waiter's finisher panics");
        assert_eq!(panic_message(&*payload), "predicate panic");
        assert_eq!(good_thread.join().unwrap(), Ok(2));
        assert_eq!(other.blocking_timeout(LONG), Ok(2));
        assert_eq!(value.get(), 2);
        assert!(value.set(3));
        assert_eq!(value.watcher_count(), 0);
    });
}

#[test]
fn a_panicking_wait_until_predicate_reaches_the_task_that_awaits_it() {
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let rt = tokio_multi_thread();
        let bad = value.wait_until(|v| {
            if *v == 1 {
                panic!("async predicate panic")
            } else {
                false
            }
        });
        let good = value.wait_for(1);
        let bad_task = rt.spawn(bad);
        let good_task = rt.spawn(good);
        value.set(1);
        let err = rt.block_on(bad_task).expect_err("the task panicked");
        assert!(err.is_panic());
        assert_eq!(panic_message(&*err.into_panic()), "async predicate panic");
        assert_eq!(rt.block_on(join_tokio(good_task)), Ok(1));
        assert!(value.set(2));
    });
}

#[test]
fn a_predicate_that_panics_on_the_current_value_panics_only_in_its_finisher() {
    let value = ValueWatcher::new(5u32);
    // Creating it does not panic, even though the predicate runs (and panics) now.
    let wait = value.wait_until(|_| panic!("at creation"));
    assert_eq!(expect_panic(|| wait.blocking_timeout(LONG)), "at creation");
    assert_eq!(value.watcher_count(), 0);
    assert!(value.set(6));
}

static ARMED: AtomicBool = AtomicBool::new(false);
static ARMED_ALONE: AtomicBool = AtomicBool::new(false);

/// A value whose `Drop` panics once, for the id 13 while `ARMED` (31 while `ARMED_ALONE`).
#[derive(Clone, Debug, PartialEq)]
struct Bomb(u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        let armed = match self.0 {
            13 => &ARMED,
            31 => &ARMED_ALONE,
            _ => return,
        };
        if armed.swap(false, Ordering::SeqCst) && !thread::panicking() {
            panic!("drop panic");
        }
    }
}

#[test]
fn a_panicking_drop_of_the_replaced_value_reaches_the_setter_after_the_transition_took_effect() {
    watchdog(|| {
        let value = ValueWatcher::new(Bomb(13));
        let mut sub = value.subscribe();
        let wait = value.wait_for(Bomb(14));
        let waiter = thread::spawn(move || wait.blocking_timeout(LONG));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let _cb = value.on_change(move |old, new| s.lock().unwrap().push((old.0, new.0)));
        ARMED.store(true, Ordering::SeqCst);
        let message = expect_panic(|| value.set(Bomb(14)));
        assert_eq!(message, "drop panic");
        assert!(!ARMED.load(Ordering::SeqCst), "the drop ran inside set");
        // The transition took full effect: stored, logged, waiter woken, callbacks run.
        assert_eq!(value.get(), Bomb(14));
        assert_eq!(value.version(), 1);
        assert_eq!(waiter.join().unwrap(), Ok(Bomb(14)));
        let t = sub.try_recv().unwrap().unwrap();
        assert_eq!((t.old.0, t.new.0, t.version), (13, 14, 1));
        assert_eq!(*seen.lock().unwrap(), [(13, 14)]);
        // And the value is still usable.
        assert!(value.set(Bomb(15)));
        assert_eq!(sub.try_recv().unwrap().unwrap().new, Bomb(15));
        assert_eq!(*seen.lock().unwrap(), [(13, 14), (14, 15)]);
    });
}

#[test]
fn a_panicking_drop_with_nobody_watching_leaves_the_value_set_and_usable() {
    let value = ValueWatcher::new(Bomb(31));
    ARMED_ALONE.store(true, Ordering::SeqCst);
    assert_eq!(expect_panic(|| value.set(Bomb(1))), "drop panic");
    assert!(!ARMED_ALONE.load(Ordering::SeqCst));
    assert_eq!(value.get(), Bomb(1));
    assert!(value.set(Bomb(2)));
    assert_eq!(value.version(), 2);
}

#[test]
fn a_panicking_set_if_or_update_closure_leaves_the_value_unchanged_and_usable() {
    let value = ValueWatcher::new(1u32);
    let wait = value.wait_for(2);
    assert_eq!(
        expect_panic(|| value.set_if(2, |_| panic!("cond panic"))),
        "cond panic"
    );
    assert_eq!(
        expect_panic(|| value.update(|_| panic!("update panic"))),
        "update panic"
    );
    assert_eq!(value.get(), 1);
    assert_eq!(value.version(), 0);
    assert!(value.set(2));
    assert_eq!(wait.blocking_timeout(LONG), Ok(2));
}
