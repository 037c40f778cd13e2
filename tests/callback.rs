//! Callbacks: `on_change`, `on_value`, `CallbackHandle`, ordering, re-entry from a callback,
//! panicking callbacks and closed values.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use keepwatch::{Error, ValueWatcher};

type Log = Arc<Mutex<Vec<(u32, u32)>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<(u32, u32)> {
    log.lock().unwrap().clone()
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn on_change_sees_every_transition_in_order_with_old_and_new() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let seen = log();
        let seen2 = Arc::clone(&seen);
        let _handle = v.on_change(move |old, new| seen2.lock().unwrap().push((*old, *new)));
        for i in [1, 2, 5, 3] {
            assert!(v.set(i));
        }
        assert!(v.update(|x| Some(x * 2)));
        assert!(v.set_if(7, |x| *x == 6));
        assert_eq!(
            entries(&seen),
            vec![(0, 1), (1, 2), (2, 5), (5, 3), (3, 6), (6, 7)]
        );
    });
}

#[test]
fn on_change_is_not_called_for_the_current_value_or_for_equal_sets() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let calls = counter();
        let calls2 = Arc::clone(&calls);
        let _handle = v.on_change(move |_, _| {
            calls2.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(!v.set(0));
        assert!(v.set_if(0, |_| true));
        assert!(!v.update(|_| None));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn with_a_single_setter_callbacks_have_run_when_set_returns() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let seen = log();
        let seen2 = Arc::clone(&seen);
        let _handle = v.on_change(move |old, new| seen2.lock().unwrap().push((*old, *new)));
        assert!(v.set(1));
        assert_eq!(entries(&seen), vec![(0, 1)]);
        assert!(v.set_if(2, |_| true));
        assert_eq!(entries(&seen), vec![(0, 1), (1, 2)]);
        assert!(v.update(|_| Some(3)));
        assert_eq!(entries(&seen), vec![(0, 1), (1, 2), (2, 3)]);
    });
}

#[test]
fn on_change_runs_on_the_setting_thread_after_the_value_is_stored() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let _handle = v.on_change(move |_, new| {
            let stored = weak.upgrade().map(|v| v.get());
            seen2
                .lock()
                .unwrap()
                .push((thread::current().id(), *new, stored));
        });
        let setter = v.clone();
        let setter_id = thread::spawn(move || {
            assert!(setter.set(4));
            thread::current().id()
        })
        .join()
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![(setter_id, 4, Some(4))]);
    });
}

#[test]
fn a_callback_may_call_set_on_the_same_value_without_deadlock_and_order_is_kept() {
    // Both registration orders: the logger before and after the callback that sets.
    for logger_first in [true, false] {
        watchdog(move || {
            let v = ValueWatcher::new(0u32);
            let seen = log();
            let register_logger = |v: &ValueWatcher<u32>| {
                let seen2 = Arc::clone(&seen);
                v.on_change(move |old, new| seen2.lock().unwrap().push((*old, *new)))
            };
            let mut handles = Vec::new();
            if logger_first {
                handles.push(register_logger(&v));
            }
            let weak = v.downgrade();
            handles.push(v.on_change(move |_, new| {
                if *new < 3 {
                    let v = weak.upgrade().expect("still open");
                    assert!(v.set(new + 1));
                }
            }));
            if !logger_first {
                handles.push(register_logger(&v));
            }
            assert!(v.set(1));
            assert_eq!(v.get(), 3);
            assert_eq!(v.version(), 3);
            assert_eq!(
                entries(&seen),
                vec![(0, 1), (1, 2), (2, 3)],
                "callbacks run in the global transition order (logger_first = {logger_first})"
            );
        });
    }
}

#[test]
fn a_callback_may_call_every_other_method_on_the_same_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let results = Arc::new(Mutex::new(Vec::new()));
        let results2 = Arc::clone(&results);
        let nested_calls = counter();
        let nested_calls2 = Arc::clone(&nested_calls);
        let _handle = v.on_change(move |_, new| {
            if *new != 1 {
                return;
            }
            let v = weak.upgrade().expect("open");
            let mut r = results2.lock().unwrap();
            r.push(format!("get={}", v.get()));
            r.push(format!("version={}", v.version()));
            r.push(format!("with={}", v.with(|x| x + 100)));
            r.push(format!("closed={}", v.is_closed()));
            r.push(format!("update={}", v.update(|_| None)));
            r.push(format!("set_if={}", v.set_if(9, |_| false)));
            let mut sub = v.subscribe();
            r.push(format!("try_recv={:?}", sub.try_recv()));
            drop(sub);
            r.push(format!(
                "wait={:?}",
                v.wait_for(1).blocking_timeout(Duration::ZERO)
            ));
            r.push(format!("watchers={}", v.watcher_count()));
            let calls = Arc::clone(&nested_calls2);
            let nested = v.on_change(move |_, _| {
                calls.fetch_add(1, Ordering::SeqCst);
            });
            nested.cancel();
            let calls = Arc::clone(&nested_calls2);
            drop(v.on_value(1, move || {
                calls.fetch_add(1, Ordering::SeqCst);
            }));
        });
        assert!(v.set(1));
        assert_eq!(
            *results.lock().unwrap(),
            vec![
                "get=1",
                "version=1",
                "with=101",
                "closed=false",
                "update=false",
                "set_if=false",
                "try_recv=Ok(None)",
                "wait=Ok(1)",
                "watchers=0",
            ]
        );
        assert_eq!(
            nested_calls.load(Ordering::SeqCst),
            1,
            "the nested on_value fired at once"
        );
        assert!(v.set(2));
        assert_eq!(
            nested_calls.load(Ordering::SeqCst),
            1,
            "the nested on_change was cancelled"
        );
    });
}

#[test]
fn a_panicking_callback_does_not_stop_other_callbacks_or_the_setter_and_stays_registered() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let panics = counter();
        let panics2 = Arc::clone(&panics);
        let before = log();
        let before2 = Arc::clone(&before);
        let after = log();
        let after2 = Arc::clone(&after);
        let _a = v.on_change(move |old, new| before2.lock().unwrap().push((*old, *new)));
        let _b = v.on_change(move |_, _| {
            panics2.fetch_add(1, Ordering::SeqCst);
            panic!("callback boom");
        });
        let _c = v.on_change(move |old, new| after2.lock().unwrap().push((*old, *new)));
        assert_eq!(
            catch(|| v.set(1)),
            Ok(true),
            "the setter is not hit by the panic"
        );
        let setter = v.clone();
        let from_thread = thread::spawn(move || catch(|| setter.set(2)))
            .join()
            .unwrap();
        assert_eq!(from_thread, Ok(true));
        assert_eq!(
            panics.load(Ordering::SeqCst),
            2,
            "the panicking callback stays registered"
        );
        assert_eq!(entries(&before), vec![(0, 1), (1, 2)]);
        assert_eq!(entries(&after), vec![(0, 1), (1, 2)]);
    });
}

#[test]
fn a_panicking_callback_does_not_poison_the_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let _handle = v.on_change(|_, _| panic!("callback boom"));
        let mut sub = v.subscribe();
        let w = v.wait_for(2);
        assert_eq!(catch(|| v.set(1)), Ok(true));
        assert_eq!(v.get(), 1);
        assert_eq!(v.with(|x| *x), 1);
        assert!(v.update(|x| Some(x + 1)));
        assert_eq!(w.blocking_timeout(LONG), Ok(2));
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(1));
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(2));
        assert_eq!(v.wait_for(2).blocking_timeout(LONG), Ok(2));
    });
}

#[test]
fn cancel_removes_the_callback() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let seen = log();
        let seen2 = Arc::clone(&seen);
        let handle = v.on_change(move |old, new| seen2.lock().unwrap().push((*old, *new)));
        assert!(v.set(1));
        handle.cancel();
        assert!(v.set(2));
        assert!(v.set(3));
        assert_eq!(entries(&seen), vec![(0, 1)]);
    });
}

#[test]
fn dropping_the_handle_keeps_the_callback_registered() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let seen = log();
        let seen2 = Arc::clone(&seen);
        drop(v.on_change(move |old, new| seen2.lock().unwrap().push((*old, *new))));
        assert!(v.set(1));
        assert!(v.set(2));
        assert_eq!(entries(&seen), vec![(0, 1), (1, 2)]);
    });
}

#[test]
fn callbacks_do_not_count_as_watchers() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let _a = v.on_change(|_, _| {});
        let _b = v.on_value(5, || {});
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn on_value_fires_at_once_on_the_callers_thread_when_the_value_already_equals() {
    watchdog(|| {
        let v = ValueWatcher::new(3u32);
        let fired_on = Arc::new(Mutex::new(Vec::new()));
        let fired_on2 = Arc::clone(&fired_on);
        let _handle = v.on_value(3, move || {
            fired_on2.lock().unwrap().push(thread::current().id())
        });
        assert_eq!(
            *fired_on.lock().unwrap(),
            vec![thread::current().id()],
            "fired before on_value returned, on this thread"
        );
        assert!(v.set(4));
        assert!(v.set(3));
        assert_eq!(fired_on.lock().unwrap().len(), 1, "fires exactly once");
    });
}

#[test]
fn on_value_fires_exactly_once_at_the_first_transition_to_the_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let fired = Arc::new(Mutex::new(Vec::new()));
        let fired2 = Arc::clone(&fired);
        let weak = v.downgrade();
        let _handle = v.on_value(2, move || {
            let now = weak.upgrade().map(|v| (v.get(), v.version()));
            fired2.lock().unwrap().push(now);
        });
        assert!(fired.lock().unwrap().is_empty());
        assert!(v.set(1));
        assert!(fired.lock().unwrap().is_empty());
        assert!(v.set(2));
        assert_eq!(*fired.lock().unwrap(), vec![Some((2, 2))]);
        assert!(v.set(1));
        assert!(v.set(2));
        assert_eq!(fired.lock().unwrap().len(), 1, "fires exactly once");
    });
}

#[test]
fn on_value_fires_when_set_from_another_thread_even_after_the_handle_is_dropped() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let fired = counter();
        let fired2 = Arc::clone(&fired);
        drop(v.on_value(1, move || {
            fired2.fetch_add(1, Ordering::SeqCst);
        }));
        let setter = v.clone();
        thread::spawn(move || {
            assert!(setter.set(1));
            assert!(setter.set(0));
            assert!(setter.set(1));
        })
        .join()
        .unwrap();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn on_value_does_not_fire_after_cancel() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let fired = counter();
        let fired2 = Arc::clone(&fired);
        let handle = v.on_value(1, move || {
            fired2.fetch_add(1, Ordering::SeqCst);
        });
        handle.cancel();
        assert!(v.set(1));
        assert_eq!(fired.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn on_value_on_a_closed_value_fires_now_if_equal_and_otherwise_never() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        v.close();
        let equal = counter();
        let equal2 = Arc::clone(&equal);
        let _a = v.on_value(0, move || {
            equal2.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(equal.load(Ordering::SeqCst), 1, "fires now");
        let other = counter();
        let other2 = Arc::clone(&other);
        let _b = v.on_value(1, move || {
            other2.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!v.set(1));
        assert_eq!(other.load(Ordering::SeqCst), 0, "never fires");
        assert_eq!(equal.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn on_change_on_a_closed_value_registers_and_never_fires() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        v.close();
        let calls = counter();
        let calls2 = Arc::clone(&calls);
        let handle = v.on_change(move |_, _| {
            calls2.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!v.set(1));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        handle.cancel();
    });
}

#[test]
fn a_callback_capturing_a_weak_handle_does_not_keep_the_value_open() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let inner = v.downgrade();
        let _handle = v.on_change(move |_, _| {
            let _ = inner.upgrade();
        });
        let w = v.wait_for(1);
        drop(v);
        assert!(
            weak.upgrade().is_none(),
            "the value closed with its last handle"
        );
        assert_eq!(w.blocking_timeout(LONG), Err(Error::Closed));
    });
}

#[test]
fn a_callback_capturing_a_value_watcher_keeps_the_value_open() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let captured = v.clone();
        let _handle = v.on_change(move |_, _| {
            let _ = captured.version();
        });
        drop(v);
        let v = weak
            .upgrade()
            .expect("the callback's handle keeps the value alive");
        assert!(!v.is_closed());
        assert!(v.set(1));
    });
}

#[test]
fn a_slow_callback_on_one_setter_does_not_reorder_callbacks_of_another_setter() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let seen = log();
        let seen2 = Arc::clone(&seen);
        let in_first = Arc::new(AtomicBool::new(false));
        let in_first2 = Arc::clone(&in_first);
        let _handle = v.on_change(move |old, new| {
            if *new == 1 {
                in_first2.store(true, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(30));
            }
            seen2.lock().unwrap().push((*old, *new));
        });
        let first = {
            let v = v.clone();
            thread::spawn(move || assert!(v.set(1)))
        };
        while !in_first.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        let second = {
            let v = v.clone();
            thread::spawn(move || assert!(v.set(2)))
        };
        second.join().unwrap();
        first.join().unwrap();
        assert_eq!(entries(&seen), vec![(0, 1), (1, 2)]);
    });
}
