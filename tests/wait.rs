//! `Wait`: every `wait_*` method, first-value semantics, `skip_current`, the lost-update
//! scenario, the finishers on every executor, predicate panics, polling after completion and
//! deregistration on drop.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use keepwatch::{Error, Transition, ValueWatcher};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    A,
    B,
    C,
}

// ---------------------------------------------------------------------------------------
// First-value semantics of each wait_* method
// ---------------------------------------------------------------------------------------

#[test]
fn wait_for_completes_at_once_when_the_current_value_matches() {
    watchdog(|| {
        let v = ValueWatcher::new(4u32);
        let (counter, waker) = counting_waker();
        let mut w = v.wait_for(4);
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(4)));
        assert_eq!(counter.count(), 0);
    });
}

#[test]
fn wait_for_completes_with_first_match_even_after_value_moved_on() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(1);
        assert!(v.set(1));
        assert!(v.set(2));
        assert!(v.set(3));
        assert_eq!(w.blocking_timeout(LONG), Ok(1));
    });
}

#[test]
fn wait_for_ignores_values_that_do_not_match() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(3);
        for i in 1..=5 {
            assert!(v.set(i));
        }
        assert_eq!(w.blocking_timeout(LONG), Ok(3));
    });
}

#[test]
fn wait_for_not_completes_with_the_current_value_when_it_differs() {
    watchdog(|| {
        let v = ValueWatcher::new(2u32);
        let mut w = v.wait_for_not(0);
        let (_, waker) = counting_waker();
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(2)));
    });
}

#[test]
fn wait_for_not_completes_with_the_first_different_value_even_after_it_changed_back() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for_not(0);
        assert!(v.set(5));
        assert!(v.set(0));
        assert_eq!(w.blocking_timeout(LONG), Ok(5));
    });
}

#[test]
fn wait_until_completes_with_the_current_value_when_the_predicate_holds() {
    watchdog(|| {
        let v = ValueWatcher::new(8u32);
        let mut w = v.wait_until(|x| x % 2 == 0);
        let (_, waker) = counting_waker();
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(8)));
    });
}

#[test]
fn wait_until_completes_with_the_first_value_for_which_the_predicate_holds() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        let w = v.wait_until(|x| x % 2 == 0);
        for i in [3, 5, 6, 7, 8] {
            assert!(v.set(i));
        }
        assert_eq!(w.blocking_timeout(LONG), Ok(6));
    });
}

#[test]
fn wait_map_completes_with_the_first_some_even_after_value_moved_on() {
    watchdog(|| {
        let v = ValueWatcher::new(String::from("idle"));
        let w = v.wait_map(|s| s.strip_prefix("job:").map(str::to_owned));
        assert!(v.set("busy".into()));
        assert!(v.set("job:first".into()));
        assert!(v.set("job:second".into()));
        assert!(v.set("idle".into()));
        assert_eq!(w.blocking_timeout(LONG), Ok(String::from("first")));
    });
}

#[test]
fn wait_map_completes_at_once_when_the_current_value_maps_to_some() {
    watchdog(|| {
        let v = ValueWatcher::new(21u32);
        let mut w = v.wait_map(|x| if *x > 20 { Some(x * 2) } else { None });
        let (_, waker) = counting_waker();
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(42)));
    });
}

#[test]
fn wait_transition_returns_the_first_matching_transition_with_its_version() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert!(v.set(9)); // version 1, before the wait: does not count
        let w = v.wait_transition(|old, new| new > old);
        assert!(v.set(4)); // 2: 9 -> 4, no
        assert!(v.set(6)); // 3: 4 -> 6, yes
        assert!(v.set(7)); // 4
        assert_eq!(
            w.blocking_timeout(LONG),
            Ok(Transition {
                old: 4,
                new: 6,
                version: 3
            })
        );
    });
}

#[test]
fn wait_transition_never_counts_the_current_value() {
    watchdog(|| {
        let v = ValueWatcher::new(2u32);
        let mut w = v.wait_transition(|_, new| *new == 2);
        let (_, waker) = counting_waker();
        assert!(poll_once(&mut w, &waker).is_pending());
        assert!(v.set(1));
        assert!(poll_once(&mut w, &waker).is_pending());
        assert!(v.set(2));
        let t = w.blocking_timeout(LONG).unwrap();
        assert_eq!((t.old, t.new, t.version), (1, 2, 2));
    });
}

#[test]
fn wait_for_change_completes_with_the_next_transition_not_the_current_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for_change();
        assert!(v.set(1));
        assert!(v.set(2));
        assert_eq!(w.blocking_timeout(LONG), Ok(1));
    });
}

#[test]
fn wait_for_change_stays_pending_while_only_equal_values_are_set() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for_change();
        assert!(!v.set(0));
        assert!(v.set_if(0, |_| true));
        assert!(!v.update(|x| Some(*x)));
        assert_eq!(w.blocking_timeout(SHORT), Err(Error::TimedOut));
    });
}

#[test]
fn wait_for_not_none_completes_with_the_inner_value_of_the_first_some() {
    watchdog(|| {
        let v: ValueWatcher<Option<u32>> = ValueWatcher::new(None);
        let w = v.wait_for_not_none();
        assert!(v.set(Some(4)));
        assert!(v.set(None));
        assert!(v.set(Some(5)));
        assert_eq!(w.blocking_timeout(LONG), Ok(4));
    });
}

#[test]
fn wait_for_not_none_completes_at_once_when_the_value_is_some() {
    watchdog(|| {
        let v = ValueWatcher::new(Some(String::from("ready")));
        let mut w = v.wait_for_not_none();
        let (_, waker) = counting_waker();
        assert_eq!(
            poll_once(&mut w, &waker),
            Poll::Ready(Ok(String::from("ready")))
        );
    });
}

// ---------------------------------------------------------------------------------------
// skip_current
// ---------------------------------------------------------------------------------------

#[test]
fn skip_current_ignores_a_matching_current_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut w = v.wait_for(0).skip_current();
        let (_, waker) = counting_waker();
        assert!(poll_once(&mut w, &waker).is_pending());
        assert!(v.set(1));
        assert!(poll_once(&mut w, &waker).is_pending());
        assert!(v.set(0));
        assert_eq!(w.blocking_timeout(LONG), Ok(0));
    });
}

#[test]
fn skip_current_still_counts_transitions_made_between_creation_and_the_call() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(0);
        assert!(v.set(1));
        assert!(v.set(0));
        assert!(v.set(1));
        // The transition 1 -> 0 happened after creation: it counts.
        assert_eq!(w.skip_current().blocking_timeout(LONG), Ok(0));

        let v = ValueWatcher::new(0u32);
        let w = v.wait_until(|x| x % 2 == 0);
        assert!(v.set(1));
        assert!(v.set(2));
        assert!(v.set(4));
        assert_eq!(w.skip_current().blocking_timeout(LONG), Ok(2));
    });
}

#[test]
fn skip_current_ignores_a_predicate_panic_on_the_current_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v
            .wait_until(|x| {
                if *x == 0 {
                    panic!("predicate panicked on the current value");
                }
                *x == 2
            })
            .skip_current();
        assert!(v.set(1));
        assert!(v.set(2));
        assert_eq!(w.blocking_timeout(LONG), Ok(2));
    });
}

#[test]
fn skip_current_works_for_wait_map_and_wait_for_not_none() {
    watchdog(|| {
        let v = ValueWatcher::new(Some(3u32));
        let w = v.wait_for_not_none().skip_current();
        let m = v.wait_map(|x| x.map(|n| n * 10)).skip_current();
        assert!(v.set(None));
        assert!(v.set(Some(4)));
        assert_eq!(w.blocking_timeout(LONG), Ok(4));
        assert_eq!(m.blocking_timeout(LONG), Ok(40));
    });
}

// ---------------------------------------------------------------------------------------
// Counting waker: pending -> set -> woken -> ready
// ---------------------------------------------------------------------------------------

#[test]
fn pending_wait_is_woken_by_a_matching_set_and_then_ready() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (counter, waker) = counting_waker();
        let mut w = v.wait_for(2);
        assert!(poll_once(&mut w, &waker).is_pending());
        assert_eq!(counter.count(), 0);
        assert!(v.set(1));
        assert!(poll_once(&mut w, &waker).is_pending());
        let before = counter.count();
        assert!(v.set(2));
        assert!(counter.count() > before, "a matching set wakes the waiter");
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(2)));
    });
}

#[test]
fn pending_wait_woken_from_another_thread_is_ready() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (counter, waker) = counting_waker();
        let mut w = v.wait_for_change();
        assert!(poll_once(&mut w, &waker).is_pending());
        let setter = v.clone();
        thread::spawn(move || assert!(setter.set(7)))
            .join()
            .unwrap();
        assert!(counter.count() >= 1);
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(7)));
    });
}

#[test]
fn wait_wakes_the_waker_of_the_latest_poll() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (_first, first_waker) = counting_waker();
        let (second, second_waker) = counting_waker();
        let mut w = v.wait_for(1);
        assert!(poll_once(&mut w, &first_waker).is_pending());
        assert!(poll_once(&mut w, &second_waker).is_pending());
        assert!(v.set(1));
        assert!(second.count() >= 1, "the latest waker is woken");
        assert_eq!(poll_once(&mut w, &second_waker), Poll::Ready(Ok(1)));
    });
}

#[test]
fn a_wait_matched_before_its_first_poll_is_ready_on_the_first_poll() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut w = v.wait_for(1);
        assert!(v.set(1));
        assert!(v.set(2));
        let (_, waker) = counting_waker();
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(1)));
    });
}

// ---------------------------------------------------------------------------------------
// The lost update: A -> B -> C before the waiter runs
// ---------------------------------------------------------------------------------------

#[test]
fn lost_update_a_b_c_from_a_thread_is_never_lost_by_a_blocking_waiter() {
    watchdog(|| {
        for _ in 0..50 {
            let v = ValueWatcher::new(Step::A);
            let w = v.wait_for(Step::B);
            let barrier = Arc::new(Barrier::new(2));
            let setter = {
                let v = v.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    assert!(v.set(Step::B));
                    assert!(v.set(Step::C));
                })
            };
            let waiter = thread::spawn(move || {
                barrier.wait();
                w.blocking_timeout(LONG)
            });
            assert_eq!(waiter.join().unwrap(), Ok(Step::B));
            setter.join().unwrap();
            assert_eq!(v.get(), Step::C);
        }
    });
}

#[test]
fn lost_update_a_b_c_from_a_thread_is_never_lost_on_any_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            for _ in 0..10 {
                let v = ValueWatcher::new(Step::A);
                let w = v.wait_for(Step::B);
                let setter = {
                    let v = v.clone();
                    thread::spawn(move || {
                        assert!(v.set(Step::B));
                        assert!(v.set(Step::C));
                    })
                };
                let got = exec.block_on(async move { w.timeout(LONG).await });
                assert_eq!(got, Ok(Step::B), "on {exec:?}");
                setter.join().unwrap();
            }
        }
    });
}

#[test]
fn lost_update_a_b_c_from_a_task_on_the_same_executor_is_never_lost() {
    watchdog(|| {
        for exec in Exec::ALL {
            for round in 0..10 {
                let v = ValueWatcher::new(Step::A);
                let w = v.wait_for(Step::B);
                let setter = v.clone();
                let results = exec.run_tasks(vec![
                    task(async move { w.timeout(LONG).await }),
                    task(async move {
                        for _ in 0..round % 3 {
                            yield_now().await;
                        }
                        assert!(setter.set(Step::B));
                        assert!(setter.set(Step::C));
                        Ok(Step::C)
                    }),
                ]);
                assert_eq!(results[0], Ok(Step::B), "on {exec:?}");
                assert_eq!(v.get(), Step::C);
            }
        }
    });
}

#[test]
fn lost_update_through_wait_until_and_wait_map_keeps_the_first_match() {
    watchdog(|| {
        let v = ValueWatcher::new(Step::A);
        let until = v.wait_until(|s| *s != Step::A);
        let map = v.wait_map(|s| (*s == Step::B).then_some("b"));
        let setter = v.clone();
        thread::spawn(move || {
            assert!(setter.set(Step::B));
            assert!(setter.set(Step::C));
        })
        .join()
        .unwrap();
        assert_eq!(until.blocking_timeout(LONG), Ok(Step::B));
        assert_eq!(map.blocking_timeout(LONG), Ok("b"));
    });
}

// ---------------------------------------------------------------------------------------
// Finishers
// ---------------------------------------------------------------------------------------

#[test]
fn blocking_returns_when_another_thread_sets_the_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(3);
        let setter = v.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            for i in 1..=4 {
                assert!(setter.set(i));
            }
        });
        assert_eq!(w.blocking(), Ok(3));
        handle.join().unwrap();
    });
}

#[test]
fn blocking_finishers_survive_spurious_unparks_of_their_thread() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let started = Arc::new(Barrier::new(4));
        let wait = {
            let w = v.wait_for(2);
            let started = Arc::clone(&started);
            thread::spawn(move || {
                started.wait();
                w.blocking()
            })
        };
        let wait_timeout = {
            let w = v.wait_for(2);
            let started = Arc::clone(&started);
            thread::spawn(move || {
                started.wait();
                w.blocking_timeout(LONG)
            })
        };
        let recv = {
            let mut sub = v.subscribe();
            let started = Arc::clone(&started);
            thread::spawn(move || {
                started.wait();
                sub.recv().blocking().map(|t| t.new)
            })
        };
        started.wait();
        let threads = [wait.thread(), wait_timeout.thread(), recv.thread()];
        for _ in 0..20 {
            for t in threads {
                t.unpark();
            }
            thread::sleep(Duration::from_millis(1));
        }
        assert!(v.set(1)); // completes the recv, not the waits
        for _ in 0..10 {
            for t in [wait.thread(), wait_timeout.thread()] {
                t.unpark();
            }
            thread::sleep(Duration::from_millis(1));
        }
        assert!(v.set(2));
        assert_eq!(wait.join().unwrap(), Ok(2));
        assert_eq!(wait_timeout.join().unwrap(), Ok(2));
        assert_eq!(recv.join().unwrap(), Ok(1));
    });
}

#[test]
fn a_wait_created_while_another_thread_sets_the_value_never_misses_that_transition() {
    // Ping-pong with a spinning partner: right after this thread sets an even value, it
    // creates the wait for the next odd one while the partner, spinning on `get`, sets it.
    // A wait that tested the current value and registered in two steps would miss it.
    watchdog(|| {
        const ROUNDS: u32 = 2_000;
        let v = ValueWatcher::new(0u32);
        let partner = {
            let v = v.clone();
            thread::spawn(move || {
                let mut x = 0;
                while x < 2 * ROUNDS {
                    let deadline = Instant::now() + LONG;
                    while v.get() != x {
                        assert!(Instant::now() < deadline, "partner stuck waiting for {x}");
                        std::hint::spin_loop();
                    }
                    assert!(v.set(x + 1));
                    x += 2;
                }
            })
        };
        let mut x = 1;
        while x < 2 * ROUNDS {
            assert_eq!(
                v.wait_for(x).blocking_timeout(Duration::from_secs(2)),
                Ok(x),
                "the transition to {x} was missed"
            );
            assert!(v.set(x + 1));
            x += 2;
        }
        partner.join().unwrap();
        assert_eq!(v.version(), u64::from(2 * ROUNDS));
    });
}

#[test]
fn blocking_returns_at_once_when_the_current_value_matches() {
    watchdog(|| {
        let v = ValueWatcher::new(3u32);
        assert_eq!(v.wait_for(3).blocking(), Ok(3));
    });
}

#[test]
fn blocking_timeout_times_out_when_nothing_matches() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let start = Instant::now();
        assert_eq!(v.wait_for(1).blocking_timeout(SHORT), Err(Error::TimedOut));
        assert!(
            start.elapsed() >= SHORT,
            "timed out early: {:?}",
            start.elapsed()
        );
    });
}

#[test]
fn blocking_timeout_returns_a_match_made_before_the_timeout() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(1);
        let setter = v.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            assert!(setter.set(1));
        });
        assert_eq!(w.blocking_timeout(LONG), Ok(1));
        handle.join().unwrap();
    });
}

#[test]
fn blocking_timeout_of_zero_returns_an_already_matched_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(1);
        assert!(v.set(1));
        assert_eq!(w.blocking_timeout(Duration::ZERO), Ok(1));
        assert_eq!(v.wait_for(1).blocking_timeout(Duration::ZERO), Ok(1));
        assert_eq!(
            v.wait_for(2).blocking_timeout(Duration::ZERO),
            Err(Error::TimedOut)
        );
    });
}

#[test]
fn blocking_deadline_times_out_at_the_instant() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let deadline = Instant::now() + SHORT;
        assert_eq!(
            v.wait_for(1).blocking_deadline(deadline),
            Err(Error::TimedOut)
        );
        assert!(Instant::now() >= deadline);
    });
}

#[test]
fn blocking_deadline_returns_a_match_made_before_the_instant() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for_change();
        let setter = v.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            assert!(setter.set(5));
        });
        assert_eq!(w.blocking_deadline(Instant::now() + LONG), Ok(5));
        handle.join().unwrap();
    });
}

#[test]
fn blocking_deadline_in_the_past_still_returns_an_already_matched_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let past = Instant::now();
        thread::sleep(Duration::from_millis(2));
        assert_eq!(v.wait_for(0).blocking_deadline(past), Ok(0));
        assert_eq!(v.wait_for(1).blocking_deadline(past), Err(Error::TimedOut));
    });
}

#[test]
fn timeout_future_times_out_on_every_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let w = v.wait_for(1);
            let start = Instant::now();
            let got = exec.block_on(async move { w.timeout(SHORT).await });
            assert_eq!(got, Err(Error::TimedOut), "on {exec:?}");
            assert!(start.elapsed() >= SHORT, "timed out early on {exec:?}");
            assert_eq!(v.watcher_count(), 0, "on {exec:?}");
        }
    });
}

#[test]
fn timeout_future_completes_with_a_match_from_another_thread_on_every_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let w = v.wait_until(|x| *x >= 2);
            let setter = v.clone();
            let handle = thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                for i in 1..=3 {
                    assert!(setter.set(i));
                }
            });
            let got = exec.block_on(async move { w.timeout(LONG).await });
            assert_eq!(got, Ok(2), "on {exec:?}");
            handle.join().unwrap();
        }
    });
}

#[test]
fn timeout_future_of_a_wait_that_already_matched_is_ready_at_once() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut t = v.wait_for(0).timeout(Duration::ZERO);
        let (_, waker) = counting_waker();
        assert_eq!(poll_once(&mut t, &waker), Poll::Ready(Ok(0)));
    });
}

#[test]
fn awaiting_a_wait_on_every_executor_completes_with_a_set_from_another_thread() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let w = v.wait_for_change();
            let setter = v.clone();
            let handle = thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                assert!(setter.set(9));
            });
            let got = exec.block_on(w);
            assert_eq!(got, Ok(9), "on {exec:?}");
            handle.join().unwrap();
        }
    });
}

#[test]
fn a_wait_can_be_spawned_as_a_tokio_task() {
    watchdog(|| {
        let rt = tokio_multi_thread();
        let v = ValueWatcher::new(0u32);
        let handle = rt.spawn(v.wait_for(2));
        assert!(v.set(1));
        assert!(v.set(2));
        let got = rt.block_on(async { tokio::time::timeout(LONG, handle).await });
        assert_eq!(got.expect("no timeout").expect("no panic"), Ok(2));
    });
}

// ---------------------------------------------------------------------------------------
// Predicate panics
// ---------------------------------------------------------------------------------------

#[test]
fn a_wait_call_never_raises_its_predicates_panic_only_the_finisher_does() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let until = catch(|| v.wait_until(|_| panic!("boom in wait_until")))
            .expect("wait_until itself must not panic");
        let map = catch(|| v.wait_map(|_| -> Option<u32> { panic!("boom in wait_map") }))
            .expect("wait_map itself must not panic");
        assert_eq!(
            expect_panic(move || until.blocking_timeout(LONG)),
            "boom in wait_until"
        );
        assert_eq!(
            expect_panic(move || map.blocking_timeout(LONG)),
            "boom in wait_map"
        );
        // The value is untouched and usable.
        assert!(v.set(1));
        assert_eq!(v.wait_for(1).blocking_timeout(LONG), Ok(1));
    });
}

#[test]
fn predicate_panic_at_a_later_transition_reaches_only_that_wait_and_only_at_the_finisher() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let bad = v.wait_until(|x| {
            if *x == 1 {
                panic!("boom at 1");
            }
            false
        });
        let good = v.wait_for(1);
        let mut sub = v.subscribe();
        let calls = Arc::new(AtomicUsize::new(0));
        let calls2 = Arc::clone(&calls);
        let _cb = v.on_change(move |_, _| {
            calls2.fetch_add(1, Ordering::SeqCst);
        });
        let setter = v.clone();
        let set_result = thread::spawn(move || catch(|| setter.set(1)))
            .join()
            .unwrap();
        assert_eq!(set_result, Ok(true), "the setter never sees a wait's panic");
        assert_eq!(good.blocking_timeout(LONG), Ok(1));
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            expect_panic(move || bad.blocking_timeout(LONG)),
            "boom at 1"
        );
        assert!(v.set(2));
        assert_eq!(v.get(), 2);
    });
}

#[test]
fn predicate_panic_reaches_the_await_of_that_wait_with_the_original_payload() {
    watchdog(|| {
        // tokio: the spawned task panics with the original payload.
        let rt = tokio_multi_thread();
        let v = ValueWatcher::new(0u32);
        let w = v.wait_until(|x| {
            if *x == 1 {
                panic!("async boom");
            }
            false
        });
        let handle = rt.spawn(w);
        assert!(v.set(1));
        let err = rt
            .block_on(async { tokio::time::timeout(LONG, handle).await })
            .expect("no timeout")
            .expect_err("the task panicked");
        assert!(err.is_panic());
        assert_eq!(panic_message(&*err.into_panic()), "async boom");

        // futures::executor: .await panics in place.
        let w = v.wait_map(|_| -> Option<u32> { panic!("async boom 2") });
        assert_eq!(
            expect_panic(move || futures::executor::block_on(w.timeout(LONG))),
            "async boom 2"
        );
        assert!(v.set(2));
    });
}

#[test]
fn wait_transition_predicate_panic_reaches_only_its_finisher() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let bad = v.wait_transition(|_, _| panic!("transition boom"));
        let good = v.wait_transition(|old, new| *old == 0 && *new == 1);
        assert_eq!(catch(|| v.set(1)), Ok(true));
        assert_eq!(
            good.blocking_timeout(LONG)
                .map(|t| (t.old, t.new, t.version)),
            Ok((0, 1, 1))
        );
        assert_eq!(
            expect_panic(move || bad.blocking_timeout(LONG)),
            "transition boom"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Polling after completion
// ---------------------------------------------------------------------------------------

#[test]
fn polling_a_wait_after_it_completed_panics() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (_, waker) = counting_waker();
        let mut w = v.wait_for(0);
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(0)));
        expect_panic(|| poll_once(&mut w, &waker));

        let mut closed = v.wait_for(5);
        v.close();
        assert_eq!(
            poll_once(&mut closed, &waker),
            Poll::Ready(Err(Error::Closed))
        );
        expect_panic(|| poll_once(&mut closed, &waker));
    });
}

#[test]
fn polling_a_timeout_future_after_it_completed_panics() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (_, waker) = counting_waker();
        let mut t = v.wait_for(0).timeout(LONG);
        assert_eq!(poll_once(&mut t, &waker), Poll::Ready(Ok(0)));
        expect_panic(|| poll_once(&mut t, &waker));

        let mut t = v.wait_for(1).timeout(Duration::from_millis(1));
        let got = futures::executor::block_on(&mut t);
        assert_eq!(got, Err(Error::TimedOut));
        expect_panic(|| poll_once(&mut t, &waker));
    });
}

// ---------------------------------------------------------------------------------------
// Deregistration: watcher_count goes back to 0
// ---------------------------------------------------------------------------------------

#[test]
fn dropping_an_unpolled_wait_deregisters_it() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(1);
        let x = v.wait_transition(|_, _| true);
        assert_eq!(v.watcher_count(), 2);
        drop(w);
        assert_eq!(v.watcher_count(), 1);
        drop(x);
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn dropping_a_wait_after_one_poll_deregisters_it() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (counter, waker) = counting_waker();
        let mut w = v.wait_until(|x| *x > 10);
        assert!(poll_once(&mut w, &waker).is_pending());
        assert_eq!(v.watcher_count(), 1);
        drop(w);
        assert_eq!(v.watcher_count(), 0);
        assert!(v.set(11));
        assert_eq!(counter.count(), 0, "a dropped wait is never woken");
    });
}

#[test]
fn a_wait_dropped_by_tokio_select_deregisters_it() {
    watchdog(|| {
        let rt = tokio_current_thread();
        let v = ValueWatcher::new(0u32);
        let v2 = v.clone();
        rt.block_on(async move {
            let w = v2.wait_for(1);
            assert_eq!(v2.watcher_count(), 1);
            tokio::select! {
                r = w => panic!("the wait cannot complete: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
            assert_eq!(v2.watcher_count(), 0);
        });
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn a_wait_that_timed_out_deregisters_it() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert_eq!(v.wait_for(1).blocking_timeout(SHORT), Err(Error::TimedOut));
        assert_eq!(v.watcher_count(), 0);
        assert_eq!(
            v.wait_for(1).blocking_deadline(Instant::now() + SHORT),
            Err(Error::TimedOut)
        );
        assert_eq!(v.watcher_count(), 0);
        for exec in Exec::ALL {
            let w = v.wait_for_change();
            assert_eq!(v.watcher_count(), 1);
            assert_eq!(exec.block_on(w.timeout(SHORT)), Err(Error::TimedOut));
            assert_eq!(v.watcher_count(), 0, "on {exec:?}");
        }
        // A pending timeout future dropped before it fires deregisters too.
        let (_, waker) = counting_waker();
        let mut t = v.wait_for(1).timeout(LONG);
        assert!(poll_once(&mut t, &waker).is_pending());
        assert_eq!(v.watcher_count(), 1);
        drop(t);
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn a_matched_wait_no_longer_counts_as_pending() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let now = v.wait_for(0);
        assert_eq!(v.watcher_count(), 0, "matched at creation");
        let later = v.wait_for(1);
        assert_eq!(v.watcher_count(), 1);
        assert!(v.set(1));
        assert_eq!(v.watcher_count(), 0, "matched, though not yet polled");
        assert_eq!(now.blocking_timeout(LONG), Ok(0));
        assert_eq!(later.blocking_timeout(LONG), Ok(1));
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn many_dropped_waits_leave_no_registration_behind() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (_, waker) = counting_waker();
        let mut waits: Vec<_> = (0..100).map(|i| v.wait_for(1_000 + i)).collect();
        for w in waits.iter_mut().step_by(2) {
            assert!(poll_once(w, &waker).is_pending());
        }
        assert_eq!(v.watcher_count(), 100);
        drop(waits);
        assert_eq!(v.watcher_count(), 0);
        assert!(v.set(1_000));
    });
}

/// A wait does not keep a plain value alive (its `ValueWatcher`s do): after the last handle
/// goes, a pending wait has ended with `Closed`, and it can be dropped, polled or finished
/// after the value's memory is gone.
#[test]
fn a_wait_outlives_its_value() {
    common::watchdog(|| {
        let value = keepwatch::ValueWatcher::new(0u8);
        let finished = value.wait_for(1);
        let dropped = value.wait_for(2);
        let skipped = value.wait_for(0);
        drop(value);
        assert_eq!(
            finished.blocking_timeout(common::LONG),
            Err(keepwatch::Error::Closed)
        );
        drop(dropped);
        // The match at creation still stands; `skip_current` on a gone value only drops it.
        assert_eq!(
            skipped.skip_current().blocking(),
            Err(keepwatch::Error::Closed)
        );
    });
}
