//! `Subscription`: `initial`, `recv` and its finishers, `try_recv`, the `Stream` and the
//! blocking iterator, behaviour around close, and deregistration on drop.

mod common;

use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use keepwatch::{Error, Transition, ValueWatcher};

fn triple(t: &Transition<u32>) -> (u32, u32, u64) {
    (t.old, t.new, t.version)
}

#[test]
fn initial_is_the_value_at_subscribing_and_does_not_move_with_recv() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        assert!(v.set(2));
        let mut sub = v.subscribe();
        assert_eq!(*sub.initial(), 2);
        assert!(v.set(3));
        assert!(v.set(4));
        assert_eq!(*sub.initial(), 2, "initial is fixed");
        let first = sub.recv().blocking_timeout(LONG).unwrap();
        assert_eq!(
            first.old,
            *sub.initial(),
            "initial is the old of the first transition"
        );
        let _ = sub.recv().blocking_timeout(LONG).unwrap();
        assert_eq!(*sub.initial(), 2);
    });
}

#[test]
fn recv_delivers_every_transition_in_order_with_old_new_and_version() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        for i in 1..=3 {
            assert!(v.set(i));
        }
        let got: Vec<_> = (0..3)
            .map(|_| triple(&sub.recv().blocking_timeout(LONG).unwrap()))
            .collect();
        assert_eq!(got, vec![(0, 1, 1), (1, 2, 2), (2, 3, 3)]);
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

#[test]
fn versions_continue_gap_free_from_the_values_version_at_subscribing() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert!(v.set(10));
        assert!(v.set(20));
        let mut sub = v.subscribe();
        assert!(!v.set(20)); // no transition
        assert!(v.set(30));
        assert!(v.update(|x| Some(x + 1)));
        assert!(v.set_if(5, |x| *x == 31));
        let versions: Vec<u64> = (0..3)
            .map(|_| sub.try_recv().unwrap().unwrap().version)
            .collect();
        assert_eq!(versions, vec![3, 4, 5]);
        assert_eq!(v.version(), 5);
    });
}

#[test]
fn sets_of_equal_values_produce_no_transition() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        assert!(!v.set(0));
        assert!(v.set_if(0, |_| true));
        assert!(!v.update(|x| Some(*x)));
        assert!(!v.update(|_| None));
        assert_eq!(sub.try_recv(), Ok(None));
        assert_eq!(sub.recv().blocking_timeout(SHORT), Err(Error::TimedOut));
    });
}

#[test]
fn try_recv_returns_ok_none_when_nothing_is_pending() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        assert_eq!(sub.try_recv(), Ok(None));
        assert!(v.set(1));
        assert_eq!(
            sub.try_recv(),
            Ok(Some(Transition {
                old: 0,
                new: 1,
                version: 1
            }))
        );
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

#[test]
fn try_recv_and_recv_share_one_ordered_queue() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        for i in 1..=4 {
            assert!(v.set(i));
        }
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(1));
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(2));
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(3));
        let next = futures::executor::block_on(sub.recv().timeout(LONG));
        assert_eq!(next.map(|t| t.new), Ok(4));
        assert_eq!(sub.try_recv(), Ok(None));
    });
}

#[test]
fn a_subscription_sees_only_transitions_made_after_it_was_created() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert!(v.set(1));
        let mut early = v.subscribe();
        assert!(v.set(2));
        let mut late = v.subscribe();
        assert!(v.set(3));
        assert_eq!(triple(&early.try_recv().unwrap().unwrap()), (1, 2, 2));
        assert_eq!(triple(&early.try_recv().unwrap().unwrap()), (2, 3, 3));
        assert_eq!(*late.initial(), 2);
        assert_eq!(triple(&late.try_recv().unwrap().unwrap()), (2, 3, 3));
        assert_eq!(late.try_recv(), Ok(None));
    });
}

#[test]
fn stream_yields_every_transition_and_ends_after_close_and_drain_on_every_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let sub = v.subscribe();
            for i in 1..=5 {
                assert!(v.set(i));
            }
            v.close();
            let got: Vec<_> = exec.block_on(sub.collect::<Vec<_>>());
            let got: Vec<_> = got.iter().map(triple).collect();
            assert_eq!(
                got,
                vec![(0, 1, 1), (1, 2, 2), (2, 3, 3), (3, 4, 4), (4, 5, 5)],
                "on {exec:?}"
            );
        }
    });
}

#[test]
fn stream_receives_transitions_made_later_by_another_thread_and_ends_on_close() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let sub = v.subscribe();
            let setter = thread::spawn(move || {
                for i in 1..=20 {
                    assert!(v.set(i));
                    if i % 5 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                // dropping the last handle closes the value
            });
            let got = exec.block_on(sub.map(|t| t.new).collect::<Vec<_>>());
            assert_eq!(got, (1..=20).collect::<Vec<_>>(), "on {exec:?}");
            setter.join().unwrap();
        }
    });
}

#[test]
fn iter_yields_every_transition_and_ends_after_close_and_drain() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let setter = {
            let v = v.clone();
            thread::spawn(move || {
                for i in 1..=10 {
                    assert!(v.set(i));
                    thread::sleep(Duration::from_millis(1));
                }
                v.close();
            })
        };
        let got: Vec<_> = sub.iter().map(|t| (t.old, t.new, t.version)).collect();
        let want: Vec<_> = (1..=10u32).map(|i| (i - 1, i, u64::from(i))).collect();
        assert_eq!(got, want);
        setter.join().unwrap();
        assert_eq!(sub.iter().count(), 0, "the iterator stays ended");
    });
}

#[test]
fn recv_gives_closed_after_the_queued_transitions_are_drained() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        assert!(v.set(1));
        assert!(v.set(2));
        v.close();
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(1));
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(2));
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(
            futures::executor::block_on(sub.recv().timeout(LONG)),
            Err(Error::Closed)
        );
        assert_eq!(sub.try_recv(), Err(Error::Closed));
    });
}

#[test]
fn a_subscription_created_after_close_is_empty() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert!(v.set(7));
        v.close();
        let mut sub = v.subscribe();
        assert_eq!(*sub.initial(), 7);
        let (_, waker) = counting_waker();
        {
            let mut recv = sub.recv();
            assert_eq!(
                poll_once(&mut recv, &waker),
                Poll::Ready(Err(Error::Closed))
            );
        }
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(sub.iter().count(), 0);
        assert_eq!(futures::executor::block_on(sub.collect::<Vec<_>>()), vec![]);
    });
}

#[test]
fn dropping_a_subscription_deregisters_it() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let a = v.subscribe();
        let mut b = v.subscribe();
        assert_eq!(v.watcher_count(), 2);
        drop(a);
        assert_eq!(v.watcher_count(), 1);
        assert!(v.set(1));
        assert_eq!(b.try_recv().unwrap().map(|t| t.new), Some(1));
        drop(b);
        assert_eq!(v.watcher_count(), 0);
        assert!(v.set(2));
    });
}

#[test]
fn dropping_a_subscription_frees_its_queued_transitions() {
    watchdog(|| {
        let first = Arc::new(1u32);
        let v = ValueWatcher::new(Arc::new(0u32));
        let sub = v.subscribe();
        assert!(v.set(Arc::clone(&first)));
        assert!(v.set(Arc::new(2)));
        assert!(
            Arc::strong_count(&first) > 1,
            "the queued transitions hold the value"
        );
        drop(sub);
        assert_eq!(
            Arc::strong_count(&first),
            1,
            "queued transitions are freed on drop"
        );
    });
}

#[test]
fn without_subscriptions_old_values_are_not_retained() {
    watchdog(|| {
        let first = Arc::new(1u32);
        let v = ValueWatcher::new(Arc::new(0u32));
        assert!(v.set(Arc::clone(&first)));
        assert!(v.set(Arc::new(2)));
        assert_eq!(Arc::strong_count(&first), 1);
    });
}

#[test]
fn pending_recv_is_woken_by_a_set_and_then_ready() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let (counter, waker) = counting_waker();
        let mut recv = sub.recv();
        assert!(poll_once(&mut recv, &waker).is_pending());
        assert_eq!(counter.count(), 0);
        assert!(v.set(1));
        assert!(counter.count() >= 1, "the set wakes the pending recv");
        assert_eq!(
            poll_once(&mut recv, &waker).map(|r| r.map(|t| triple(&t))),
            Poll::Ready(Ok((0, 1, 1)))
        );
    });
}

#[test]
fn pending_recv_is_woken_by_a_set_from_another_thread() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let (counter, waker) = counting_waker();
        let mut recv = sub.recv();
        assert!(poll_once(&mut recv, &waker).is_pending());
        let setter = v.clone();
        thread::spawn(move || assert!(setter.set(3)))
            .join()
            .unwrap();
        assert!(counter.count() >= 1);
        assert_eq!(
            poll_once(&mut recv, &waker).map(|r| r.map(|t| t.new)),
            Poll::Ready(Ok(3))
        );
    });
}

#[test]
fn dropping_a_woken_recv_before_polling_it_loses_no_transition() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let (counter, waker) = counting_waker();
        let mut recv = sub.recv();
        assert!(poll_once(&mut recv, &waker).is_pending());
        assert!(v.set(1));
        assert!(counter.count() >= 1);
        drop(recv);
        assert_eq!(sub.try_recv().unwrap().map(|t| triple(&t)), Some((0, 1, 1)));
    });
}

#[test]
fn a_recv_that_timed_out_loses_no_transition() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        assert_eq!(sub.recv().blocking_timeout(SHORT), Err(Error::TimedOut));
        assert_eq!(
            futures::executor::block_on(sub.recv().timeout(SHORT)),
            Err(Error::TimedOut)
        );
        assert!(v.set(1));
        assert!(v.set(2));
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(1));
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(2));
    });
}

#[test]
fn recv_finishers_time_out_when_nothing_happens() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let start = Instant::now();
        assert_eq!(sub.recv().blocking_timeout(SHORT), Err(Error::TimedOut));
        assert!(start.elapsed() >= SHORT);
        let deadline = Instant::now() + SHORT;
        assert_eq!(sub.recv().blocking_deadline(deadline), Err(Error::TimedOut));
        assert!(Instant::now() >= deadline);
        for exec in Exec::ALL {
            let mut sub = v.subscribe();
            let start = Instant::now();
            let got = exec.block_on(async move { sub.recv().timeout(SHORT).await });
            assert_eq!(got, Err(Error::TimedOut), "on {exec:?}");
            assert!(start.elapsed() >= SHORT, "timed out early on {exec:?}");
        }
    });
}

#[test]
fn recv_blocking_returns_a_transition_made_by_another_thread() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let setter = v.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            assert!(setter.set(1));
            thread::sleep(Duration::from_millis(10));
            assert!(setter.set(2));
        });
        assert_eq!(sub.recv().blocking().map(|t| t.new), Ok(1));
        assert_eq!(
            sub.recv()
                .blocking_deadline(Instant::now() + LONG)
                .map(|t| t.new),
            Ok(2)
        );
        handle.join().unwrap();
    });
}

#[test]
fn recv_on_every_executor_receives_transitions_from_a_thread_in_order() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let mut sub = v.subscribe();
            let setter = v.clone();
            let handle = thread::spawn(move || {
                for i in 1..=10 {
                    assert!(setter.set(i));
                }
            });
            let got = exec.block_on(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    got.push(sub.recv().timeout(LONG).await.map(|t| triple(&t)));
                }
                got
            });
            let want: Vec<_> = (1..=10u32).map(|i| Ok((i - 1, i, u64::from(i)))).collect();
            assert_eq!(got, want, "on {exec:?}");
            handle.join().unwrap();
        }
    });
}

#[test]
fn polling_a_recv_after_it_completed_panics() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        assert!(v.set(1));
        let (_, waker) = counting_waker();
        {
            let mut recv = sub.recv();
            assert!(poll_once(&mut recv, &waker).is_ready());
            expect_panic(|| poll_once(&mut recv, &waker));
        }
        {
            assert!(v.set(2));
            let mut recv = sub.recv().timeout(LONG);
            assert!(poll_once(&mut recv, &waker).is_ready());
            expect_panic(|| poll_once(&mut recv, &waker));
        }
    });
}

#[test]
fn the_unbounded_default_never_lags() {
    watchdog(|| {
        const N: u32 = 10_000;
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        for i in 1..=N {
            assert!(v.set(i));
        }
        let mut expected = 1u32;
        loop {
            match sub.try_recv() {
                Ok(Some(t)) => {
                    assert_eq!(triple(&t), (expected - 1, expected, u64::from(expected)));
                    expected += 1;
                }
                Ok(None) => break,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(expected, N + 1, "every transition was delivered");
    });
}

#[test]
fn every_subscription_sees_each_transition_exactly_once() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut subs: Vec<_> = (0..5).map(|_| v.clone().subscribe()).collect();
        for i in 1..=50 {
            assert!(v.set(i));
        }
        v.close();
        for sub in &mut subs {
            let news: Vec<u32> = sub.iter().map(|t| t.new).collect();
            assert_eq!(news, (1..=50).collect::<Vec<_>>());
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 0.2: len, is_empty, is_closed
// ---------------------------------------------------------------------------------------------

#[test]
fn len_and_is_empty_count_what_is_queued_for_this_subscription_right_now() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let other = v.subscribe();
        assert_eq!((sub.len(), sub.is_empty()), (0, true));
        for i in 1..=40 {
            assert!(v.set(i));
        }
        assert!(!v.set(40), "no transition: not queued");
        assert_eq!((sub.len(), sub.is_empty()), (40, false));
        // One receive takes a batch from the log into the subscription: still counted.
        assert_eq!(sub.try_recv().unwrap().map(|t| t.version), Some(1));
        assert_eq!(sub.len(), 39);
        for _ in 0..39 {
            sub.recv().blocking_timeout(LONG).unwrap();
        }
        assert_eq!((sub.len(), sub.is_empty()), (0, true));
        assert_eq!(other.len(), 40, "each subscription has its own count");
    });
}

#[test]
fn len_of_a_bounded_subscription_never_exceeds_its_bound() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe_bounded(3);
        for i in 1..=10 {
            assert!(v.set(i));
            assert!(sub.len() <= 3, "len {} over the bound", sub.len());
        }
        assert_eq!(sub.len(), 3);
        assert_eq!(sub.try_recv(), Err(Error::Lagged(7)));
        assert_eq!(sub.len(), 3, "the lag report is not a queued transition");
        assert_eq!(sub.try_recv().unwrap().map(|t| t.version), Some(8));
        assert_eq!(sub.len(), 2);
        sub.try_recv().unwrap();
        sub.try_recv().unwrap();
        assert!(sub.is_empty());
    });
}

#[test]
fn is_closed_turns_true_at_the_close_while_queued_transitions_remain_to_be_read() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        assert!(!sub.is_closed());
        v.set(1);
        v.set(2);
        drop(v);
        assert!(sub.is_closed());
        assert_eq!(sub.len(), 2, "queued before the close: still to be read");
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(1));
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(2));
        assert!(sub.is_empty() && sub.is_closed());
        assert_eq!(sub.try_recv(), Err(Error::Closed));
    });
}

#[test]
fn a_subscription_made_after_the_close_is_empty_and_closed() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        v.close();
        let sub = v.subscribe();
        assert!(sub.is_closed());
        assert!(sub.is_empty());
        assert_eq!(sub.len(), 0);
    });
}

#[test]
fn len_is_empty_and_is_closed_work_on_a_derived_values_subscription_from_a_task() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let parity = v.map(|x| x % 2);
            let mut sub = parity.subscribe();
            for i in 1..=4 {
                v.set(i);
            }
            v.set(6); // parity unchanged: not queued
            assert_eq!(sub.len(), 4, "on {exec:?}");
            drop(v);
            let got = exec.block_on(async move {
                let closed = sub.is_closed();
                let mut lens = vec![sub.len()];
                while sub.recv().await.is_ok() {
                    lens.push(sub.len());
                }
                (closed, lens, sub.is_empty())
            });
            assert_eq!(got, (true, vec![4, 3, 2, 1, 0], true), "on {exec:?}");
        }
    });
}
