//! `ValueWatcher::modify`: an in-place change that is a transition only if the value differs,
//! a panic that restores the value and reaches the caller, nothing called on a closed value,
//! and the same effects as `set` on subscriptions, waits, callbacks and derived values — from
//! threads and from tasks on every executor.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use keepwatch::{Error, ValueWatcher};

#[test]
fn modify_changes_the_value_in_place_and_records_the_transition_as_set_does() {
    watchdog(|| {
        let v = ValueWatcher::new(vec![1u32, 2]);
        let mut sub = v.subscribe();
        assert!(v.modify(|xs| xs.push(3)));
        assert_eq!(v.get(), vec![1, 2, 3]);
        assert_eq!(v.version(), 1);
        let t = sub.try_recv().unwrap().expect("a transition");
        assert_eq!((t.old, t.new, t.version), (vec![1, 2], vec![1, 2, 3], 1));
        assert!(v.modify(|xs| xs[0] = 9));
        let t = sub.try_recv().unwrap().expect("a second transition");
        assert_eq!((t.old, t.new, t.version), (vec![1, 2, 3], vec![9, 2, 3], 2));
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

#[test]
fn modify_that_leaves_the_value_equal_is_no_transition_and_returns_false() {
    watchdog(|| {
        let v = ValueWatcher::new(vec![1u32, 2, 3]);
        let mut sub = v.subscribe();
        let change = v.wait_for_change();
        let calls = Arc::new(AtomicUsize::new(0));
        let count = calls.clone();
        let _cb = v.on_change(move |_, _| {
            count.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!v.modify(|xs| xs.sort()), "already sorted: unchanged");
        assert!(!v.modify(|xs| {
            xs.push(4);
            xs.pop();
        }));
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(change.blocking_timeout(SHORT), Err(Error::TimedOut));
    });
}

#[test]
fn a_panic_in_modify_restores_the_value_reaches_the_caller_and_leaves_it_usable() {
    watchdog(|| {
        let v = ValueWatcher::new(vec![1u32, 2]);
        let mut sub = v.subscribe();
        let wait = v.wait_for(vec![]);
        let message = expect_panic(|| {
            v.modify(|xs| {
                xs.clear();
                panic!("half-way through");
            })
        });
        assert_eq!(message, "half-way through", "the original payload");
        assert_eq!(v.get(), vec![1, 2], "restored as it was");
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None), "no transition");
        assert!(!wait.is_ready(), "the cleared state was never visible");
        assert!(v.modify(|xs| xs.clear()), "still usable");
        assert_eq!(wait.blocking_timeout(LONG), Ok(vec![]));
        assert_eq!(sub.try_recv().unwrap().unwrap().version, 1);
    });
}

#[test]
fn modify_on_a_closed_value_does_not_call_f_and_returns_false() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        v.close();
        let called = AtomicUsize::new(0);
        assert!(!v.modify(|x| {
            called.fetch_add(1, Ordering::SeqCst);
            *x = 2;
        }));
        assert_eq!(called.load(Ordering::SeqCst), 0);
        assert_eq!(v.get(), 1);
        assert_eq!(v.version(), 0);
    });
}

#[test]
fn modify_calling_back_into_the_same_value_gets_a_clear_panic_and_the_value_is_restored() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        let inner = v.clone();
        let message = expect_panic(|| {
            v.modify(|x| {
                *x = 5;
                let _ = inner.get();
            })
        });
        assert!(mentions_reentrancy(&message), "unclear message: {message}");
        assert_eq!(v.get(), 1);
        assert!(v.modify(|x| *x = 2));
    });
}

#[test]
fn with_a_single_setter_modify_returns_after_its_callbacks_and_waits_are_done() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let _cb = v.on_change(move |o, n| log.lock().unwrap().push((*o, *n)));
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let _once = v.on_value(2, move || {
            f.fetch_add(1, Ordering::SeqCst);
        });
        let two = v.wait_for(2);
        assert!(v.modify(|x| *x += 1));
        assert!(v.modify(|x| *x += 1));
        assert!(v.modify(|x| *x += 1));
        assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert!(two.is_ready(), "matched by the second modify");
        assert_eq!(two.blocking_timeout(LONG), Ok(2));
    });
}

#[test]
fn modify_from_many_threads_loses_no_increment_and_every_subscriber_sees_each_once() {
    watchdog(|| {
        const THREADS: u64 = 4;
        const EACH: u64 = 500;
        let v = ValueWatcher::new(0u64);
        let mut sub = v.subscribe();
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let v = v.clone();
                thread::spawn(move || {
                    for _ in 0..EACH {
                        assert!(v.modify(|x| *x += 1));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(v.get(), THREADS * EACH);
        let got: Vec<_> = std::iter::from_fn(|| sub.try_recv().unwrap()).collect();
        assert_eq!(got.len() as u64, THREADS * EACH);
        for (i, t) in got.iter().enumerate() {
            let i = i as u64;
            assert_eq!((t.old, t.new, t.version), (i, i + 1, i + 1));
        }
    });
}

#[test]
fn a_task_on_every_executor_sees_a_state_that_modify_passed_through_only_briefly() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new((0u32, "idle"));
            let busy = v.wait_until(|(_, s)| *s == "busy");
            let mut sub = v.subscribe();
            let setter = v.clone();
            let results = exec.run_tasks(vec![
                task(async move {
                    let got = busy.timeout(LONG).await.expect("woken");
                    let t1 = sub.recv().timeout(LONG).await.expect("first");
                    let t2 = sub.recv().timeout(LONG).await.expect("second");
                    vec![got, t1.new, t2.new]
                }),
                task(async move {
                    yield_now().await;
                    assert!(setter.modify(|(n, s)| {
                        *n += 1;
                        *s = "busy";
                    }));
                    assert!(setter.modify(|(_, s)| *s = "idle"));
                    Vec::new()
                }),
            ]);
            assert_eq!(
                results[0],
                vec![(1, "busy"), (1, "busy"), (1, "idle")],
                "on {exec:?}"
            );
        }
    });
}

#[test]
fn a_blocked_thread_and_a_task_both_see_a_modify_from_a_third_thread() {
    watchdog(|| {
        for exec in [Exec::TokioMultiThread, Exec::Smol, Exec::Futures] {
            let v = ValueWatcher::new(0u32);
            let on_thread = v.wait_for(7);
            let on_task = v.wait_for(7);
            let blocked = thread::spawn(move || on_thread.blocking_timeout(LONG));
            let setter = {
                let v = v.clone();
                thread::spawn(move || {
                    assert!(v.modify(|x| *x = 7));
                    assert!(v.modify(|x| *x = 8));
                })
            };
            assert_eq!(
                exec.block_on(async move { on_task.timeout(LONG).await }),
                Ok(7),
                "on {exec:?}"
            );
            assert_eq!(blocked.join().unwrap(), Ok(7));
            setter.join().unwrap();
        }
    });
}

#[test]
fn values_derived_from_a_modified_value_follow_it() {
    watchdog(|| {
        let v = ValueWatcher::new(vec![0u32]);
        let len = v.map(|xs| xs.len());
        let mut sub = len.subscribe();
        assert!(v.modify(|xs| xs.push(1)));
        assert!(v.modify(|xs| xs[0] = 5), "a change the projection ignores");
        assert!(v.modify(|xs| xs.truncate(1)));
        assert_eq!(len.get(), 1);
        let lens: Vec<_> = std::iter::from_fn(|| sub.try_recv().unwrap())
            .map(|t| (t.old, t.new, t.version))
            .collect();
        assert_eq!(lens, [(1, 2, 1), (2, 1, 2)]);
    });
}
