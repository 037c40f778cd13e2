//! The optional `tokio` feature: a wait or a receive that is ready at once spends a unit of
//! the tokio task's cooperative budget, so a loop over ready results yields to sibling tasks
//! on a current-thread runtime instead of starving them. Run with
//! `cargo test --features tokio --test coop`.

#![cfg(feature = "tokio")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use futures::StreamExt;
use keepwatch::{Error, ValueWatcher};

/// Queued transitions: far more than tokio's budget per scheduling turn (128).
const QUEUED: u32 = 5_000;

/// Runs `looping` (given a flag the sibling sets when it runs) as a spawned task on a
/// current-thread runtime, with a sibling spawned right after it; returns the iteration at
/// which `looping` first saw that the sibling had run (`None`: never, before it finished).
fn sibling_runs_during<F, Fut>(looping: F) -> Option<usize>
where
    F: FnOnce(Arc<AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = Option<usize>> + Send + 'static,
{
    let rt = tokio_current_thread();
    let ran = Arc::new(AtomicBool::new(false));
    let fut = looping(ran.clone());
    rt.block_on(async move {
        let looper = tokio::spawn(fut);
        let sibling = tokio::spawn(async move { ran.store(true, Ordering::SeqCst) });
        let seen = join_tokio(looper).await;
        join_tokio(sibling).await;
        seen
    })
}

#[test]
fn a_recv_loop_over_a_long_queue_yields_to_a_sibling_task_on_a_current_thread_runtime() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        for i in 1..=QUEUED {
            v.set(i);
        }
        let seen = sibling_runs_during(move |ran| async move {
            let mut seen = None;
            for i in 0..QUEUED as usize {
                let t = sub.recv().await.expect("queued");
                assert_eq!(t.version, i as u64 + 1);
                if seen.is_none() && ran.load(Ordering::SeqCst) {
                    seen = Some(i);
                }
            }
            seen
        });
        let at = seen.expect("the sibling never ran before the loop finished: starved");
        assert!(
            at < QUEUED as usize / 2,
            "the sibling ran only at iteration {at}"
        );
    });
}

#[test]
fn a_stream_loop_over_a_long_queue_yields_to_a_sibling_task() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        for i in 1..=QUEUED {
            v.set(i);
        }
        drop(v);
        let seen = sibling_runs_during(move |ran| async move {
            let mut seen = None;
            let mut i = 0;
            while let Some(t) = sub.next().await {
                assert_eq!(t.new, i as u32 + 1);
                if seen.is_none() && ran.load(Ordering::SeqCst) {
                    seen = Some(i);
                }
                i += 1;
            }
            assert_eq!(i, QUEUED as usize);
            seen
        });
        assert!(
            seen.is_some(),
            "the sibling never ran before the stream ended"
        );
    });
}

#[test]
fn a_loop_of_ready_waits_on_a_closed_value_yields_to_a_sibling_task() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let reader = v.reader();
        drop(v);
        let seen = sibling_runs_during(move |ran| async move {
            let mut seen = None;
            for i in 0..QUEUED as usize {
                assert_eq!(reader.wait_for_change().await, Err(Error::Closed));
                assert_eq!(reader.closed().await, Ok(()));
                assert_eq!(reader.wait_for(0).await, Ok(0));
                if seen.is_none() && ran.load(Ordering::SeqCst) {
                    seen = Some(i);
                }
            }
            seen
        });
        assert!(
            seen.is_some(),
            "the sibling never ran: ready waits starve it"
        );
    });
}

#[test]
fn a_recv_loop_on_a_derived_value_yields_to_a_sibling_task() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let doubled = v.map(|x| x * 2);
        let mut sub = doubled.subscribe();
        for i in 1..=QUEUED {
            v.set(i);
        }
        let seen = sibling_runs_during(move |ran| async move {
            let mut seen = None;
            for i in 0..QUEUED as usize {
                sub.recv().await.expect("queued");
                if seen.is_none() && ran.load(Ordering::SeqCst) {
                    seen = Some(i);
                }
            }
            seen
        });
        assert!(seen.is_some(), "the sibling never ran: starved");
    });
}

#[test]
fn outside_a_tokio_runtime_the_same_loops_run_to_the_end_without_the_budget() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        for i in 1..=QUEUED {
            v.set(i);
        }
        let reader = v.reader();
        drop(v);
        let counted = Arc::new(AtomicUsize::new(0));
        let c = counted.clone();
        futures::executor::block_on(async move {
            while sub.recv().await.is_ok() {
                c.fetch_add(1, Ordering::SeqCst);
            }
            for _ in 0..QUEUED {
                assert_eq!(reader.closed().await, Ok(()));
            }
        });
        assert_eq!(counted.load(Ordering::SeqCst), QUEUED as usize);
        let v = ValueWatcher::new(0u32);
        let mut sub = v.subscribe();
        for i in 1..=QUEUED {
            v.set(i);
        }
        drop(v);
        let n = smol::block_on(async move {
            let mut n = 0;
            while sub.recv().await.is_ok() {
                n += 1;
            }
            n
        });
        assert_eq!(n, QUEUED);
    });
}
