//! Closing a value: `close()`, dropping the last handle, `WeakValueWatcher`, and what waits,
//! subscriptions and setters do around it.

mod common;

use std::sync::{mpsc, Arc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use keepwatch::{Error, ValueWatcher};

#[test]
fn close_marks_the_value_closed_and_is_idempotent() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let other = v.clone();
        assert!(!v.is_closed());
        v.close();
        assert!(v.is_closed());
        assert!(other.is_closed(), "closed for every handle");
        v.close();
        other.close();
        assert!(v.is_closed());
    });
}

#[test]
fn after_close_setters_change_nothing_and_get_returns_the_last_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert!(v.set(5));
        let mut sub = v.subscribe();
        v.close();
        assert!(!v.set(6));
        assert!(!v.set_if(6, |_| true));
        assert!(!v.update(|_| Some(6)));
        assert_eq!(v.get(), 5);
        assert_eq!(v.version(), 1);
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
    });
}

#[test]
fn dropping_the_last_handle_closes_the_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let w = v.wait_for(1);
        let mut sub = v.subscribe();
        assert!(v.set(2));
        drop(v);
        assert!(weak.upgrade().is_none());
        assert_eq!(w.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(2));
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
    });
}

#[test]
fn dropping_one_of_two_handles_keeps_the_value_open() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let other = v.clone();
        let w = v.wait_for(1);
        drop(v);
        assert!(!other.is_closed());
        assert!(other.set(1));
        assert_eq!(w.blocking_timeout(LONG), Ok(1));
    });
}

#[test]
fn handles_moved_to_other_threads_keep_the_value_open_until_the_last_is_dropped() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let w = v.wait_for(99);
        let clones: Vec<_> = (0..3).map(|_| v.clone()).collect();
        drop(v);
        let handles: Vec<_> = clones
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(5 * i as u64));
                    drop(v);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(weak.upgrade().is_none());
        assert_eq!(w.blocking_timeout(LONG), Err(Error::Closed));
    });
}

#[test]
fn the_last_two_handles_dropped_at_the_same_time_on_two_threads_close_the_value() {
    watchdog(|| {
        const ROUNDS: usize = 2_000;
        let barrier = Arc::new(Barrier::new(3));
        let (senders, workers): (Vec<_>, Vec<_>) = (0..2)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<ValueWatcher<u32>>();
                let barrier = Arc::clone(&barrier);
                let worker = thread::spawn(move || {
                    for v in rx {
                        barrier.wait();
                        drop(v);
                        barrier.wait();
                    }
                });
                (tx, worker)
            })
            .unzip();
        let (_, waker) = counting_waker();
        for round in 0..ROUNDS {
            let v = ValueWatcher::new(0u32);
            let weak = v.downgrade();
            let mut w = v.wait_for(1);
            for tx in &senders {
                tx.send(v.clone()).unwrap();
            }
            drop(v);
            barrier.wait(); // both workers drop their handle now
            barrier.wait(); // both have dropped it
            assert_eq!(
                poll_once(&mut w, &waker),
                Poll::Ready(Err(Error::Closed)),
                "round {round}: the value did not close"
            );
            assert!(weak.upgrade().is_none(), "round {round}");
        }
        drop(senders);
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

#[test]
fn subscriptions_waits_and_callback_handles_do_not_keep_the_value_open() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let w = v.wait_for(1);
        let change = v.wait_for_change();
        let mut sub = v.subscribe();
        let on_change = v.on_change(|_, _| {});
        let on_value = v.on_value(1, || {});
        drop(v);
        assert!(
            weak.upgrade().is_none(),
            "nothing but ValueWatcher keeps the value open"
        );
        assert_eq!(w.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(change.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
        on_change.cancel();
        on_value.cancel();
    });
}

#[test]
fn weak_upgrade_returns_a_handle_to_the_same_value_while_one_is_alive() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let weak2 = weak.clone();
        let up = weak.upgrade().expect("alive");
        assert!(up.set(3));
        assert_eq!(v.get(), 3);
        assert_eq!(weak2.upgrade().map(|v| v.get()), Some(3));
    });
}

#[test]
fn weak_upgrade_still_works_after_an_explicit_close_with_handles_alive() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        v.close();
        let up = weak
            .upgrade()
            .expect("an explicit close with handles alive still upgrades");
        assert!(up.is_closed());
        assert_eq!(up.get(), 0);
        assert!(!up.set(1));
    });
}

#[test]
fn weak_upgrade_returns_none_once_the_last_handle_is_dropped() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let clone = weak.clone();
        drop(v);
        assert!(weak.upgrade().is_none());
        assert!(clone.upgrade().is_none());
        let weak_from_thread = thread::spawn(move || clone.upgrade().is_none())
            .join()
            .unwrap();
        assert!(weak_from_thread);
    });
}

#[test]
fn an_upgraded_handle_keeps_the_value_open() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let weak = v.downgrade();
        let up = weak.upgrade().unwrap();
        drop(v);
        assert!(!up.is_closed());
        assert!(weak.upgrade().is_some());
        assert!(up.set(1));
        drop(up);
        assert!(weak.upgrade().is_none());
    });
}

#[test]
fn every_kind_of_pending_wait_ends_with_closed_on_close() {
    watchdog(|| {
        let v = ValueWatcher::new(Some(0u32));
        let for_ = v.wait_for(Some(9));
        let not = v.wait_for_not(Some(0));
        let until = v.wait_until(|x| x.is_none());
        let map = v.wait_map(|x| x.filter(|n| *n > 5));
        let transition = v.wait_transition(|_, _| true);
        let change = v.wait_for_change();
        let skipped = v.wait_for(Some(0)).skip_current();

        let o: ValueWatcher<Option<u32>> = ValueWatcher::new(None);
        let not_none = o.wait_for_not_none();

        assert_eq!(v.watcher_count(), 7);
        v.close();
        o.close();
        assert_eq!(v.watcher_count(), 0, "waits ended by close no longer count");
        assert_eq!(for_.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(not.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(until.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(map.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(transition.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(change.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(skipped.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(not_none.blocking_timeout(LONG), Err(Error::Closed));
    });
}

#[test]
fn close_wakes_a_pending_wait() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let (counter, waker) = counting_waker();
        let mut w = v.wait_for(1);
        assert!(poll_once(&mut w, &waker).is_pending());
        v.close();
        assert!(counter.count() >= 1, "close wakes the waiter");
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Err(Error::Closed)));
    });
}

#[test]
fn close_wakes_a_pending_recv() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let (counter, waker) = counting_waker();
        let mut recv = sub.recv();
        assert!(poll_once(&mut recv, &waker).is_pending());
        drop(v);
        assert!(
            counter.count() >= 1,
            "dropping the last handle wakes the receiver"
        );
        assert_eq!(
            poll_once(&mut recv, &waker),
            Poll::Ready(Err(Error::Closed))
        );
    });
}

#[test]
fn pending_waits_end_with_closed_when_the_last_handle_is_dropped_on_another_thread() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let blocking = v.wait_for(1);
        let waiter = thread::spawn(move || blocking.blocking_timeout(LONG));
        let rt = tokio_multi_thread();
        let task = rt.spawn(v.wait_for(1).timeout(LONG));
        let smol_task = smol::spawn(v.wait_for(1).timeout(LONG));
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            drop(v);
        })
        .join()
        .unwrap();
        assert_eq!(waiter.join().unwrap(), Err(Error::Closed));
        assert_eq!(rt.block_on(join_tokio(task)), Err(Error::Closed));
        assert_eq!(smol::block_on(smol_task), Err(Error::Closed));
    });
}

#[test]
fn close_from_another_thread_ends_waits_on_every_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let w = v.wait_for(1);
            let closer = v.clone();
            let handle = thread::spawn(move || {
                thread::sleep(Duration::from_millis(5));
                closer.close();
            });
            assert_eq!(
                exec.block_on(w.timeout(LONG)),
                Err(Error::Closed),
                "on {exec:?}"
            );
            handle.join().unwrap();
        }
    });
}

#[test]
fn a_wait_that_matched_before_close_still_returns_its_value() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let at_creation = v.wait_for(0);
        let later = v.wait_for(1);
        let change = v.wait_for_change();
        let transition = v.wait_transition(|_, new| *new == 2);
        assert!(v.set(1));
        assert!(v.set(2));
        v.close();
        assert_eq!(at_creation.blocking_timeout(LONG), Ok(0));
        assert_eq!(later.blocking_timeout(LONG), Ok(1));
        assert_eq!(change.blocking_timeout(LONG), Ok(1));
        assert_eq!(
            transition
                .blocking_timeout(LONG)
                .map(|t| (t.old, t.new, t.version)),
            Ok((1, 2, 2))
        );
        // ... also when the last handle is dropped instead.
        let v = ValueWatcher::new(0u32);
        let w = v.wait_for(1);
        assert!(v.set(1));
        drop(v);
        assert_eq!(futures::executor::block_on(w.timeout(LONG)), Ok(1));
    });
}

#[test]
fn subscriptions_deliver_every_transition_queued_before_close_then_closed() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut by_recv = v.subscribe();
        let by_stream = v.subscribe();
        let mut by_iter = v.subscribe();
        for i in 1..=3 {
            assert!(v.set(i));
        }
        v.close();
        assert!(!v.set(4));
        for i in 1..=3 {
            assert_eq!(by_recv.recv().blocking_timeout(LONG).map(|t| t.new), Ok(i));
        }
        assert_eq!(by_recv.recv().blocking_timeout(LONG), Err(Error::Closed));
        let streamed: Vec<u32> =
            futures::executor::block_on(by_stream.map(|t| t.new).collect::<Vec<_>>());
        assert_eq!(streamed, vec![1, 2, 3]);
        let iterated: Vec<u32> = by_iter.iter().map(|t| t.new).collect();
        assert_eq!(iterated, vec![1, 2, 3]);
    });
}

#[test]
fn a_blocking_iterator_on_another_thread_ends_when_the_last_handle_is_dropped() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        let reader = thread::spawn(move || sub.iter().map(|t| t.new).collect::<Vec<_>>());
        for i in 1..=3 {
            assert!(v.set(i));
        }
        thread::sleep(Duration::from_millis(5));
        drop(v);
        assert_eq!(reader.join().unwrap(), vec![1, 2, 3]);
    });
}

#[test]
fn a_wait_created_after_close_completes_at_once_with_a_matching_current_value() {
    watchdog(|| {
        let v = ValueWatcher::new(Some(3u32));
        v.close();
        let (_, waker) = counting_waker();
        let mut w = v.wait_for(Some(3));
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(Some(3))));
        let mut w = v.wait_for_not(None);
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(Some(3))));
        let mut w = v.wait_until(|x| x.is_some());
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(Some(3))));
        let mut w = v.wait_map(|x| x.map(|n| n + 1));
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(4)));
        let mut w = v.wait_for_not_none();
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Ok(3)));
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn a_wait_created_after_close_that_does_not_match_completes_at_once_with_closed() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        v.close();
        let (_, waker) = counting_waker();
        let mut w = v.wait_for(1);
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Err(Error::Closed)));
        let mut w = v.wait_until(|x| *x > 0);
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Err(Error::Closed)));
        let mut w = v.wait_map(|_| None::<u8>);
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Err(Error::Closed)));
        assert_eq!(v.wait_for(1).blocking(), Err(Error::Closed));
        assert_eq!(v.watcher_count(), 0);
    });
}

#[test]
fn a_wait_created_after_close_with_skip_current_completes_with_closed() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        v.close();
        let (_, waker) = counting_waker();
        let mut w = v.wait_for(0).skip_current();
        assert_eq!(poll_once(&mut w, &waker), Poll::Ready(Err(Error::Closed)));
        assert_eq!(
            v.wait_until(|_| true).skip_current().blocking(),
            Err(Error::Closed)
        );
    });
}

#[test]
fn wait_transition_and_wait_for_change_after_close_always_complete_with_closed() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        assert!(v.set(1));
        v.close();
        let (_, waker) = counting_waker();
        let mut t = v.wait_transition(|_, _| true);
        assert_eq!(poll_once(&mut t, &waker), Poll::Ready(Err(Error::Closed)));
        let mut c = v.wait_for_change();
        assert_eq!(poll_once(&mut c, &waker), Poll::Ready(Err(Error::Closed)));
        for exec in Exec::ALL {
            assert_eq!(
                exec.block_on(v.wait_for_change().timeout(LONG)),
                Err(Error::Closed),
                "on {exec:?}"
            );
        }
    });
}

#[test]
fn a_subscription_created_after_close_gives_closed_at_once() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        v.close();
        let mut sub = v.subscribe();
        let (_, waker) = counting_waker();
        let mut recv = sub.recv();
        assert_eq!(
            poll_once(&mut recv, &waker),
            Poll::Ready(Err(Error::Closed))
        );
        for exec in Exec::ALL {
            let mut sub = v.subscribe();
            assert_eq!(
                exec.block_on(async move { sub.recv().timeout(LONG).await }),
                Err(Error::Closed),
                "on {exec:?}"
            );
        }
    });
}

#[test]
fn watcher_count_after_close_counts_only_live_subscriptions() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let sub = v.subscribe();
        let w = v.wait_for(1);
        assert_eq!(v.watcher_count(), 2);
        v.close();
        assert_eq!(v.watcher_count(), 1, "the subscription is not yet dropped");
        drop(sub);
        assert_eq!(v.watcher_count(), 0);
        assert_eq!(w.blocking_timeout(LONG), Err(Error::Closed));
    });
}
