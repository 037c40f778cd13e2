//! `ValueWatcher` reads and writes: `new`, `get`, `with`, `version`, `set`, `set_if`, `update`.

mod common;

use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use common::*;
use keepwatch::{Error, ValueWatcher};

#[test]
fn new_value_holds_the_initial_value_at_version_zero_and_is_open() {
    watchdog(|| {
        let v = ValueWatcher::new(7u32);
        assert_eq!(v.get(), 7);
        assert_eq!(v.version(), 0);
        assert!(!v.is_closed());
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn clones_are_handles_to_the_same_value() {
    watchdog(|| {
        let a = ValueWatcher::new(String::from("a"));
        let b = a.clone();
        assert!(b.set(String::from("b")));
        assert_eq!(a.get(), "b");
        assert_eq!(a.version(), 1);
        assert_eq!(b.version(), 1);
        assert!(
            !a.set(String::from("b")),
            "b already holds the value through another handle"
        );
    });
}

#[test]
fn a_set_on_one_thread_is_visible_to_clones_on_other_threads() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let setter = v.clone();
        thread::spawn(move || assert!(setter.set(5)))
            .join()
            .unwrap();
        let reader = v.clone();
        let seen = thread::spawn(move || (reader.get(), reader.version()))
            .join()
            .unwrap();
        assert_eq!(seen, (5, 1));
    });
}

#[test]
fn with_reads_the_current_value_by_reference_and_returns_the_closure_result() {
    watchdog(|| {
        let v = ValueWatcher::new(vec![1u32, 2, 3]);
        assert_eq!(v.with(|xs| xs.len()), 3);
        assert!(v.set(vec![4, 5]));
        assert_eq!(v.with(|xs| xs.iter().sum::<u32>()), 9);
        assert_eq!(v.version(), 1, "with never changes the value");
    });
}

#[test]
fn set_of_a_different_value_stores_it_records_a_transition_and_returns_true() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        assert!(v.set(1));
        assert_eq!(v.get(), 1);
        assert_eq!(v.version(), 1);
        let t = sub.try_recv().unwrap().expect("a transition was recorded");
        assert_eq!((t.old, t.new, t.version), (0, 1, 1));
    });
}

#[test]
fn set_of_an_equal_value_changes_nothing_and_returns_false() {
    watchdog(|| {
        let v = ValueWatcher::new(3u32);
        let mut sub = v.subscribe();
        let change = v.wait_for_change();
        assert!(!v.set(3));
        assert_eq!(v.get(), 3);
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None));
        assert_eq!(change.blocking_timeout(SHORT), Err(Error::TimedOut));
    });
}

#[test]
fn set_if_with_a_false_condition_changes_nothing_and_returns_false() {
    watchdog(|| {
        let v = ValueWatcher::new(10u32);
        let mut sub = v.subscribe();
        let seen = Arc::new(Mutex::new(None));
        let seen2 = Arc::clone(&seen);
        let changed = v.set_if(11, move |cur| {
            *seen2.lock().unwrap() = Some(*cur);
            false
        });
        assert!(!changed);
        assert_eq!(
            *seen.lock().unwrap(),
            Some(10),
            "the condition sees the current value"
        );
        assert_eq!(v.get(), 10);
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

#[test]
fn set_if_with_a_true_condition_sets_like_set_and_returns_true() {
    watchdog(|| {
        let v = ValueWatcher::new(10u32);
        let mut sub = v.subscribe();
        assert!(v.set_if(11, |cur| *cur == 10));
        assert_eq!(v.get(), 11);
        assert_eq!(v.version(), 1);
        let t = sub.try_recv().unwrap().unwrap();
        assert_eq!((t.old, t.new, t.version), (10, 11, 1));
    });
}

#[test]
fn set_if_returns_true_when_the_condition_holds_even_if_the_value_is_equal() {
    watchdog(|| {
        let v = ValueWatcher::new(10u32);
        let mut sub = v.subscribe();
        let change = v.wait_for_change();
        assert!(v.set_if(10, |_| true));
        assert_eq!(v.get(), 10);
        assert_eq!(v.version(), 0, "an equal value is no transition");
        assert_eq!(sub.try_recv(), Ok(None));
        assert_eq!(change.blocking_timeout(SHORT), Err(Error::TimedOut));
    });
}

#[test]
fn update_with_a_different_value_sets_it_and_returns_true() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        let mut sub = v.subscribe();
        assert!(v.update(|cur| Some(cur * 10)));
        assert_eq!(v.get(), 10);
        assert_eq!(v.version(), 1);
        let t = sub.try_recv().unwrap().unwrap();
        assert_eq!((t.old, t.new, t.version), (1, 10, 1));
    });
}

#[test]
fn update_returning_none_changes_nothing_and_returns_false() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        let mut sub = v.subscribe();
        assert!(!v.update(|_| None));
        assert_eq!(v.get(), 1);
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

#[test]
fn update_returning_an_equal_value_changes_nothing_and_returns_false() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        let mut sub = v.subscribe();
        assert!(!v.update(|cur| Some(*cur)));
        assert_eq!(v.get(), 1);
        assert_eq!(v.version(), 0);
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

#[test]
fn update_passes_the_current_value_to_the_closure() {
    watchdog(|| {
        let v = ValueWatcher::new(String::from("abc"));
        assert!(v.set(String::from("abcd")));
        let seen = Arc::new(Mutex::new(String::new()));
        let seen2 = Arc::clone(&seen);
        assert!(!v.update(move |cur| {
            seen2.lock().unwrap().push_str(cur);
            None
        }));
        assert_eq!(*seen.lock().unwrap(), "abcd");
    });
}

#[test]
fn version_counts_only_real_transitions() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert!(v.set(1)); // 1
        assert!(!v.set(1));
        assert!(!v.set_if(2, |_| false));
        assert!(v.set_if(1, |_| true)); // equal: no transition
        assert!(!v.update(|_| None));
        assert!(v.update(|x| Some(x + 1))); // 2
        assert!(v.set_if(0, |x| *x == 2)); // 3
        assert_eq!(v.version(), 3);
        assert_eq!(v.get(), 0);
    });
}

#[test]
fn concurrent_updates_from_threads_are_atomic() {
    watchdog(|| {
        const THREADS: u64 = 2;
        const PER: u64 = 500;
        let v = ValueWatcher::new(0u64);
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let v = v.clone();
                thread::spawn(move || {
                    for _ in 0..PER {
                        assert!(v.update(|x| Some(x + 1)));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(v.get(), THREADS * PER);
        assert_eq!(v.version(), THREADS * PER);
    });
}

#[test]
fn concurrent_set_if_compare_and_set_loops_never_lose_an_increment() {
    watchdog(|| {
        const THREADS: usize = 2;
        const PER: usize = 300;
        let v = ValueWatcher::new(0usize);
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let v = v.clone();
                thread::spawn(move || {
                    let mut done = 0;
                    while done < PER {
                        let cur = v.get();
                        if v.set_if(cur + 1, move |now| *now == cur) {
                            done += 1;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(v.get(), THREADS * PER);
        assert_eq!(v.version(), (THREADS * PER) as u64);
    });
}

#[test]
fn racing_set_ifs_on_the_same_expected_value_have_exactly_one_winner() {
    watchdog(|| {
        const ROUNDS: u64 = 2_000;
        let v = ValueWatcher::new((0u64, usize::MAX));
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|id| {
                let v = v.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let mut wins = 0u64;
                    for round in 1..=ROUNDS {
                        barrier.wait();
                        if v.set_if((round, id), move |cur| cur.0 == round - 1) {
                            wins += 1;
                        }
                        barrier.wait();
                    }
                    wins
                })
            })
            .collect();
        let wins: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(wins, ROUNDS, "exactly one set_if wins each round");
        assert_eq!(v.version(), ROUNDS);
        assert_eq!(v.get().0, ROUNDS);
    });
}

#[test]
fn set_never_blocks_on_waiters_and_subscriptions_that_are_never_polled() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let waits: Vec<_> = (0..50).map(|i| v.wait_for(1_000 + i)).collect();
        let subs: Vec<_> = (0..10).map(|_| v.subscribe()).collect();
        for i in 1..=500 {
            assert!(v.set(i));
        }
        assert_eq!(v.version(), 500);
        assert_eq!(v.watcher_count(), 60);
        drop(waits);
        drop(subs);
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn set_set_if_and_update_on_a_closed_value_change_nothing_and_return_false() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        assert!(v.set(2));
        v.close();
        assert!(v.is_closed());
        assert!(!v.set(3));
        assert!(!v.set_if(3, |_| true));
        assert!(
            !v.set_if(2, |_| true),
            "set_if on a closed value is false even for an equal value"
        );
        assert!(!v.update(|_| Some(3)));
        assert_eq!(v.get(), 2);
        assert_eq!(v.with(|x| *x), 2);
        assert_eq!(v.version(), 1);
    });
}
