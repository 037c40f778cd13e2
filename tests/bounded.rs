//! The opt-in memory bound of `subscribe_bounded`: a subscriber that falls behind is told once
//! with `Error::Lagged(n)` and resumes with the oldest kept transition, never a silent skip;
//! memory stays flat under a fast setter and a stuck subscriber.
//!
//! The soak runs for `KEEPWATCH_SOAK_SECS` seconds (2 by default; 600 for the 10-minute soak):
//! `KEEPWATCH_SOAK_SECS=600 cargo test --release --test bounded -- --nocapture soak`.

mod common;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{expect_panic, watchdog, with_watchdog, LONG};
use futures::StreamExt;
use keepwatch::{Error, ValueWatcher};
use support::{human, live_bytes, peak_bytes, reset_peak, serial, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Drains everything `try_recv` gives right now.
fn drain<T: Clone + PartialEq + Send + 'static>(
    sub: &mut keepwatch::Subscription<T>,
) -> Vec<Result<(T, T, u64), Error>> {
    let mut out = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(Some(t)) => out.push(Ok((t.old, t.new, t.version))),
            Ok(None) => return out,
            Err(Error::Closed) => return out,
            Err(e) => out.push(Err(e)),
        }
    }
}

#[test]
fn a_lagging_subscriber_gets_lagged_once_then_resumes_from_the_oldest_kept_transition() {
    let _serial = serial();
    let value = ValueWatcher::new(0u32);
    let mut sub = value.subscribe_bounded(3);
    for n in 1..=10 {
        value.set(n);
    }
    assert_eq!(
        drain(&mut sub),
        [
            Err(Error::Lagged(7)),
            Ok((7, 8, 8)),
            Ok((8, 9, 9)),
            Ok((9, 10, 10))
        ]
    );
    // Caught up: no further lag, nothing pending.
    assert_eq!(sub.try_recv(), Ok(None));
    value.set(11);
    assert_eq!(drain(&mut sub), [Ok((10, 11, 11))]);
}

#[test]
fn a_bounded_subscriber_that_keeps_up_never_lags() {
    let _serial = serial();
    let value = ValueWatcher::new(0u32);
    let mut sub = value.subscribe_bounded(1);
    for n in 1..=1000 {
        value.set(n);
        let t = sub.try_recv().unwrap().unwrap();
        assert_eq!((t.old, t.new, t.version), (n - 1, n, u64::from(n)));
    }
    assert_eq!(sub.try_recv(), Ok(None));
}

#[test]
fn every_gap_is_reported_once_with_the_number_dropped_since_the_last_report() {
    let _serial = serial();
    let value = ValueWatcher::new(0u64);
    let mut sub = value.subscribe_bounded(2);
    let mut version_seen = 0;
    let mut dropped = 0;
    for round in 1..=50u64 {
        for _ in 0..round {
            value.update(|n| Some(n + 1));
        }
        for item in drain(&mut sub) {
            match item {
                Ok((old, new, version)) => {
                    assert_eq!(version, version_seen + 1, "a silent skip");
                    assert_eq!((old + 1, new), (version - 1 + 1, version));
                    version_seen = version;
                }
                Err(Error::Lagged(n)) => {
                    assert!(n > 0);
                    version_seen += n;
                    dropped += n;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(version_seen, value.version());
    }
    let total = value.version();
    assert_eq!(
        dropped,
        (1..=50u64).map(|r| r.saturating_sub(2)).sum::<u64>()
    );
    assert_eq!(total, (1..=50u64).sum::<u64>());
}

#[test]
fn unbounded_and_bounded_subscribers_share_the_log_and_the_unbounded_one_keeps_everything() {
    let _serial = serial();
    let value = ValueWatcher::new(0u32);
    let mut all = value.subscribe();
    let mut small = value.subscribe_bounded(1);
    let mut medium = value.subscribe_bounded(4);
    for n in 1..=20 {
        value.set(n);
    }
    let all_items = drain(&mut all);
    assert_eq!(all_items.len(), 20);
    assert!(all_items.iter().all(Result::is_ok));
    assert_eq!(
        drain(&mut small),
        [Err(Error::Lagged(19)), Ok((19, 20, 20))]
    );
    let medium_items = drain(&mut medium);
    assert_eq!(medium_items[0], Err(Error::Lagged(16)));
    assert_eq!(medium_items[1..], all_items[16..]);
    assert_eq!(value.watcher_count(), 3);
    drop((all, small, medium));
    assert_eq!(value.watcher_count(), 0);
}

#[test]
fn recv_reports_the_lag_blocking_and_async_and_then_resumes() {
    let _serial = serial();
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let mut sub = value.subscribe_bounded(2);
        for n in 1..=5 {
            value.set(n);
        }
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Lagged(3)));
        assert_eq!(sub.recv().blocking_timeout(LONG).unwrap().version, 4);
        for n in 6..=9 {
            value.set(n);
        }
        let (lag, next) = futures::executor::block_on(async {
            let lag = sub.recv().timeout(LONG).await;
            let next = sub.recv().timeout(LONG).await.map(|t| (t.old, t.new));
            (lag, next)
        });
        assert_eq!(lag, Err(Error::Lagged(3)));
        assert_eq!(next, Ok((7, 8)));
    });
}

#[test]
fn results_yields_the_lag_as_an_item_and_ends_after_close() {
    let _serial = serial();
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let mut sub = value.subscribe_bounded(2);
        for n in 1..=6 {
            value.set(n);
        }
        value.close();
        let items: Vec<Result<u64, Error>> =
            futures::executor::block_on(sub.results().map(|r| r.map(|t| t.version)).collect());
        assert_eq!(items, [Err(Error::Lagged(4)), Ok(5), Ok(6)]);
        assert_eq!(sub.try_recv(), Err(Error::Closed));
    });
}

#[test]
fn iter_results_yields_the_lag_as_an_item_and_ends_after_close() {
    let _serial = serial();
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let mut sub = value.subscribe_bounded(1);
        value.set(1);
        value.set(2);
        value.close();
        let items: Vec<_> = sub.iter_results().map(|r| r.map(|t| t.version)).collect();
        assert_eq!(items, [Err(Error::Lagged(1)), Ok(2)]);
    });
}

#[test]
fn the_plain_stream_and_iterator_of_a_bounded_subscription_go_on_after_a_gap_instead_of_ending() {
    let _serial = serial();
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let mut by_stream = value.subscribe_bounded(2);
        let mut by_iter = value.subscribe_bounded(2);
        for n in 1..=6 {
            value.set(n);
        }
        value.close();
        let streamed: Vec<u64> =
            futures::executor::block_on(by_stream.by_ref().map(|t| t.version).collect());
        let iterated: Vec<u64> = by_iter.iter().map(|t| t.version).collect();
        // The gap shows as the jump from 0 (initial) to version 5.
        assert_eq!(streamed, [5, 6]);
        assert_eq!(iterated, [5, 6]);
    });
}

#[test]
fn a_lagged_subscriber_still_gets_what_was_kept_before_a_close_then_closed() {
    let _serial = serial();
    let value = ValueWatcher::new(0u32);
    let mut sub = value.subscribe_bounded(2);
    for n in 1..=4 {
        value.set(n);
    }
    value.close();
    assert_eq!(sub.try_recv(), Err(Error::Lagged(2)));
    assert_eq!(sub.try_recv().unwrap().unwrap().new, 3);
    assert_eq!(sub.try_recv().unwrap().unwrap().new, 4);
    assert_eq!(sub.try_recv(), Err(Error::Closed));
}

#[test]
fn a_bounded_subscription_created_after_close_is_empty() {
    let _serial = serial();
    let value = ValueWatcher::new(0u32);
    value.close();
    let mut sub = value.subscribe_bounded(4);
    assert_eq!(sub.try_recv(), Err(Error::Closed));
}

#[test]
fn subscribe_bounded_with_zero_panics_with_a_clear_message() {
    let _serial = serial();
    let value = ValueWatcher::new(0u32);
    let message = expect_panic(|| value.subscribe_bounded(0));
    assert!(message.contains("subscribe_bounded(0)"), "{message}");
    assert_eq!(value.watcher_count(), 0);
}

#[test]
fn a_blocked_bounded_receiver_is_woken_and_sees_the_lag_first() {
    let _serial = serial();
    watchdog(|| {
        let value = ValueWatcher::new(0u32);
        let mut sub = value.subscribe_bounded(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let setter = value.clone();
        let reader = thread::spawn(move || {
            // First receive blocks until the setter runs, then lags behind it.
            tx.send(()).unwrap();
            let first = sub.recv().blocking_timeout(LONG);
            (first, sub)
        });
        rx.recv().unwrap();
        setter.set(1);
        let (first, mut sub) = reader.join().unwrap();
        // It may have woken before or after further sets; with a single set it gets it.
        assert_eq!(first.map(|t| t.new), Ok(1));
        setter.set(2);
        setter.set(3);
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Lagged(1)));
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(3));
    });
}

#[test]
fn dropping_a_lagging_bounded_subscriber_frees_what_it_kept() {
    let _serial = serial();
    let payload = |n: u32| vec![n as u8; 4096];
    let value = ValueWatcher::new(payload(0));
    let before = live_bytes();
    let sub = value.subscribe_bounded(64);
    for n in 1..=1000 {
        value.set(payload(n));
    }
    let held = live_bytes() - before;
    assert!(held >= 64 * 4096, "the bound keeps 64 transitions: {held}");
    assert!(held < 80 * 4096, "and not many more: {}", human(held));
    drop(sub);
    let after = live_bytes();
    assert!(
        after <= before + 4096,
        "memory back to its level: before {before}, after {after}"
    );
}

/// The soak: a setter as fast as it can go, a stuck bounded subscriber that never reads and a
/// slow one that reads now and then. Memory is sampled throughout and must stay flat.
#[test]
fn soak_memory_stays_flat_with_a_fast_setter_and_a_stuck_bounded_subscriber() {
    let _serial = serial();
    let secs = support::env_u64("KEEPWATCH_SOAK_SECS", 2);
    let report = with_watchdog(secs + 120, move || soak(Duration::from_secs(secs)));
    println!("{report}");
}

const BOUND: usize = 1024;
const PAYLOAD: usize = 64;

fn soak(duration: Duration) -> String {
    let start_bytes = live_bytes();
    let value = ValueWatcher::new(vec![0u8; PAYLOAD]);
    let mut stuck = value.subscribe_bounded(BOUND);
    let mut slow = value.subscribe_bounded(BOUND);
    let stop = Arc::new(AtomicBool::new(false));

    let setter = {
        let value = value.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let mut v = vec![0u8; PAYLOAD];
                v[..8].copy_from_slice(&n.to_le_bytes());
                assert!(value.set(v));
            }
            n
        })
    };
    let slow_reader = {
        let stop = stop.clone();
        thread::spawn(move || {
            let (mut received, mut lagged, mut lags, mut last) = (0u64, 0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    match slow.recv().blocking_timeout(Duration::from_millis(100)) {
                        Ok(t) => {
                            assert_eq!(t.version, last + 1, "a silent skip");
                            let n = u64::from_le_bytes(t.new[..8].try_into().unwrap());
                            assert_eq!(n, t.version);
                            last = t.version;
                            received += 1;
                        }
                        Err(Error::Lagged(n)) => {
                            lagged += n;
                            lags += 1;
                            last += n;
                        }
                        Err(Error::TimedOut) => break,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
            (slow, received, lagged, lags, last)
        })
    };

    // Warm-up: the bound fills within the first milliseconds; take the baseline after it.
    let began = Instant::now();
    thread::sleep(Duration::from_millis(300).min(duration / 4));
    let baseline = live_bytes();
    reset_peak();
    let mut max_sample = baseline;
    let mut min_sample = baseline;
    let mut samples = 0u64;
    while began.elapsed() < duration {
        thread::sleep(Duration::from_millis(50));
        let now = live_bytes();
        max_sample = max_sample.max(now);
        min_sample = min_sample.min(now);
        samples += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let transitions = setter.join().unwrap();
    let (mut slow, received, lagged, lags, last) = slow_reader.join().unwrap();
    let elapsed = began.elapsed();
    let peak = peak_bytes();

    // The stuck subscriber: told once how many it missed, then exactly the last BOUND.
    let stuck_lag = stuck.try_recv();
    assert_eq!(stuck_lag, Err(Error::Lagged(transitions - BOUND as u64)));
    let mut kept = 0;
    while let Some(t) = stuck.try_recv().unwrap() {
        kept += 1;
        assert_eq!(t.version, transitions - BOUND as u64 + kept);
    }
    assert_eq!(kept, BOUND as u64);
    // The slow one: everything accounted for, received or reported as lagged.
    let mut last = last;
    loop {
        match slow.try_recv() {
            Ok(Some(t)) => {
                assert_eq!(t.version, last + 1);
                last += 1;
            }
            Ok(None) => break,
            Err(Error::Lagged(n)) => last += n,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(last, transitions, "lost = {}", transitions - last);

    // One entry costs its payload plus the log's bookkeeping; the bound caps the log at
    // BOUND entries, so the heap may swing by about that much, not grow with time.
    let per_entry = PAYLOAD + 64;
    let slack = 2 * BOUND * per_entry + (256 << 10);
    let growth = max_sample.saturating_sub(baseline);
    assert!(
        growth <= slack,
        "memory grew by {} during the soak (allowed {})",
        human(growth),
        human(slack)
    );
    drop((stuck, slow, value));
    let end_bytes = live_bytes();
    assert!(
        end_bytes <= start_bytes + (64 << 10),
        "leaked: {} at start, {} at end",
        human(start_bytes),
        human(end_bytes)
    );
    format!(
        "soak: {:.1}s, {} transitions ({:.2} M/s), bound {BOUND}, payload {PAYLOAD} B; \
         stuck subscriber lagged {} then got the last {kept}; slow subscriber received {received}, \
         told of {lagged} dropped in {lags} lags, lost 0; heap after warm-up {} \
         (samples {samples}: min {}, max {}, peak {}), growth {}; after drop {} vs {} at start",
        elapsed.as_secs_f64(),
        transitions,
        transitions as f64 / elapsed.as_secs_f64() / 1e6,
        transitions - BOUND as u64,
        human(baseline),
        human(min_sample),
        human(max_sample),
        human(peak),
        human(growth),
        human(end_bytes),
        human(start_bytes),
    )
}
