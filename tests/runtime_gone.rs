//! A runtime shut down while one of its tasks has a wait or a receive registered: the next
//! `set` neither panics nor leaks, and a future that outlives its runtime can still finish on
//! another executor. Memory is measured with a counting global allocator.

mod common;
mod support;

use std::time::Duration;

use common::{counting_waker, poll_once, watchdog, yield_now, LONG};
use keepwatch::ValueWatcher;
use support::{human, live_bytes, serial, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Builds and drops one runtime of each kind, so their one-time globals are allocated before
/// a measurement starts.
fn warm_up() {
    for _ in 0..2 {
        let rt = common::tokio_current_thread();
        rt.block_on(yield_now());
        drop(rt);
        let rt = common::tokio_multi_thread();
        rt.block_on(yield_now());
        rt.shutdown_timeout(LONG);
    }
}

fn assert_no_leak(before: usize) {
    let mut after = live_bytes();
    for _ in 0..100 {
        if after <= before + (8 << 10) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
        after = live_bytes();
    }
    panic!("leaked: {} before, {} after", human(before), human(after));
}

#[test]
fn a_tokio_runtime_shut_down_with_tasks_waiting_leaves_nothing_registered_and_set_works() {
    let _serial = serial();
    watchdog(|| {
        warm_up();
        let value = ValueWatcher::new(0u32);
        let before = live_bytes();
        for multi in [false, true] {
            let rt = if multi {
                common::tokio_multi_thread()
            } else {
                common::tokio_current_thread()
            };
            for _ in 0..10 {
                let wait = value.wait_for(1);
                let mut sub = value.subscribe();
                rt.spawn(wait);
                rt.spawn(async move { sub.recv().await.map(|t| t.new) });
                rt.spawn(
                    value
                        .wait_until(|v| *v > 100)
                        .timeout(Duration::from_secs(3600)),
                );
            }
            // Let every task run until it is registered and pending.
            rt.block_on(async {
                for _ in 0..10 {
                    yield_now().await;
                }
            });
            if multi {
                let deadline = std::time::Instant::now() + LONG;
                while value.watcher_count() < 30 && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            assert_eq!(value.watcher_count(), 30);
            rt.shutdown_timeout(LONG);
            assert_eq!(value.watcher_count(), 0, "the dropped tasks deregistered");
            assert!(value.set(1), "set after the runtime is gone");
            assert!(value.set(0));
        }
        assert_no_leak(before);
    });
}

#[test]
fn a_wait_that_outlives_its_runtime_does_not_break_set_and_finishes_elsewhere() {
    let _serial = serial();
    watchdog(|| {
        warm_up();
        let value = ValueWatcher::new(0u32);
        let before = live_bytes();
        let mut wait = value.wait_for(1);
        let mut sub = value.subscribe();
        {
            let rt = common::tokio_current_thread();
            // Registered with this runtime's waker, then the runtime goes away.
            let (w, s) = rt.block_on(async {
                let w = futures::poll!(&mut wait);
                let s = futures::poll!(sub.recv());
                (w.is_pending(), s.is_pending())
            });
            assert!(w && s);
            drop(rt);
        }
        assert_eq!(value.watcher_count(), 2);
        // The stale waker is woken (a no-op for a dead runtime): no panic.
        assert!(value.set(1));
        assert_eq!(futures::executor::block_on(wait), Ok(1));
        assert_eq!(sub.try_recv().unwrap().map(|t| t.new), Some(1));
        drop(sub);
        assert_eq!(value.watcher_count(), 0);
        assert_no_leak(before);
    });
}

#[test]
fn an_async_executor_dropped_with_pending_tasks_leaves_nothing_registered() {
    let _serial = serial();
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let before = live_bytes();
        {
            let ex = async_executor::Executor::new();
            let mut tasks = Vec::new();
            for _ in 0..10 {
                let mut sub = value.subscribe();
                tasks.push(ex.spawn(value.wait_for(1)));
                tasks.push(ex.spawn(async move { sub.recv().await.map(|t| t.new) }));
            }
            for t in tasks {
                t.detach();
            }
            while ex.try_tick() {}
            assert_eq!(value.watcher_count(), 20);
            drop(ex);
        }
        assert_eq!(value.watcher_count(), 0);
        assert!(value.set(1));
        assert_no_leak(before);
    });
}

#[test]
fn a_registered_waker_is_woken_once_by_the_set_that_matches() {
    let _serial = serial();
    // A counting waker stands in for a runtime's: one wake for the matching set, none more.
    let value = ValueWatcher::new(0u32);
    let (counter, waker) = counting_waker();
    let mut wait = value.wait_for(1);
    assert!(poll_once(&mut wait, &waker).is_pending());
    assert!(value.set(1));
    assert_eq!(counter.count(), 1);
    assert!(poll_once(&mut wait, &waker).is_ready());
}
