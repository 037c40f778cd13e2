//! Cancellation storm: waits and receives on one value, cancelled at random points in every
//! way a caller can cancel (dropped unpolled or after a poll, an async `timeout`, the losing
//! branch of a `select!`, a thread's `blocking_timeout`), on tokio, smol and plain threads,
//! while a setter keeps matching some of them. Afterwards no registration is left
//! (`watcher_count() == 0`), nothing panicked, and the heap is back to its starting level
//! (measured with a counting global allocator in this test binary).
//!
//! CI size by default; `KEEPWATCH_STRESS=full cargo test --release --test cancellation --
//! --nocapture` for 100,000 waits.

mod common;
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{counting_waker, poll_once, with_watchdog};
use futures::future::{select, Either};
use keepwatch::{Error, ValueWatcher};
use support::{human, live_bytes, peak_bytes, reset_peak, serial, Counting, Rng};

#[global_allocator]
static ALLOC: Counting = Counting;

/// A wait for a random value: some match while they are pending, some never do.
fn some_wait(value: &ValueWatcher<u64>, rng: &mut Rng) -> keepwatch::Wait<u64> {
    let target = rng.below(12); // 8..12 never match: those are always cancelled
    match rng.below(4) {
        0 => value.wait_for(target),
        1 => value.wait_for(target).skip_current(),
        2 => value.wait_until(move |v| *v == target),
        _ => value.wait_for_change(),
    }
}

/// A random short time: 0 to 300 µs.
fn some_time(rng: &mut Rng) -> Duration {
    Duration::from_micros(rng.below(300))
}

#[derive(Default)]
struct Tally {
    completed: AtomicU64,
    cancelled: AtomicU64,
}

impl Tally {
    fn count<T>(&self, r: &Result<T, Error>) {
        match r {
            Ok(_) => self.completed.fetch_add(1, Ordering::Relaxed),
            Err(Error::TimedOut) => self.cancelled.fetch_add(1, Ordering::Relaxed),
            Err(e) => panic!("unexpected {e}"),
        };
    }
}

/// Runs `n` waits, a quarter for each way of cancelling. Returns (completed, cancelled).
fn storm(n: u64, seed: u64) -> (u64, u64) {
    let value = ValueWatcher::new(0u64);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let quarter = n / 4;

    let setter = {
        let value = value.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut rng = Rng::new(seed ^ 0x5e77e5);
            while !stop.load(Ordering::Relaxed) {
                value.set(rng.below(8));
                if rng.below(16) == 0 {
                    thread::yield_now();
                }
            }
        })
    };

    // 1. Dropped unpolled, or after one poll (a wait, or a subscription's receive).
    let dropper = {
        let value = value.clone();
        let tally = tally.clone();
        thread::spawn(move || {
            let mut rng = Rng::new(seed ^ 1);
            let (_, waker) = counting_waker();
            for i in 0..quarter {
                if i % 8 == 7 {
                    let mut sub = value.subscribe();
                    let mut recv = sub.recv();
                    if rng.below(2) == 0 {
                        let _ = poll_once(&mut recv, &waker);
                    }
                    drop(recv);
                    drop(sub);
                } else {
                    let mut wait = some_wait(&value, &mut rng);
                    if rng.below(2) == 0 {
                        let _ = poll_once(&mut wait, &waker);
                    }
                    drop(wait);
                }
                tally.cancelled.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // 2. Async `timeout` on a multi-thread tokio runtime, and 3a. `tokio::select!` losers.
    let tokio_side = {
        let value = value.clone();
        let tally = tally.clone();
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut rng = Rng::new(seed ^ 2);
                let mut done = 0;
                while done < quarter + quarter / 2 {
                    let batch = (quarter + quarter / 2 - done).min(500);
                    let mut handles = Vec::with_capacity(batch as usize);
                    for j in 0..batch {
                        let wait = some_wait(&value, &mut rng);
                        let time = some_time(&mut rng);
                        let tally = tally.clone();
                        let as_select = (done + j) % 3 == 2;
                        handles.push(tokio::spawn(async move {
                            if as_select {
                                tokio::select! {
                                    r = wait => tally.count(&r),
                                    _ = tokio::time::sleep(time) => {
                                        tally.cancelled.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            } else {
                                tally.count(&wait.timeout(time).await);
                            }
                        }));
                    }
                    for h in handles {
                        h.await.expect("no task panics");
                    }
                    done += batch;
                }
            });
            drop(rt);
        })
    };

    // 3b. `futures::select` losers on smol.
    let smol_side = {
        let value = value.clone();
        let tally = tally.clone();
        thread::spawn(move || {
            let mut rng = Rng::new(seed ^ 3);
            let count = quarter / 2;
            smol::block_on(async {
                let mut done = 0;
                while done < count {
                    let batch = (count - done).min(500);
                    let mut tasks = Vec::with_capacity(batch as usize);
                    for _ in 0..batch {
                        let wait = some_wait(&value, &mut rng);
                        let time = some_time(&mut rng);
                        let tally = tally.clone();
                        tasks.push(smol::spawn(async move {
                            match select(wait, smol::Timer::after(time)).await {
                                Either::Left((r, _timer)) => tally.count(&r),
                                Either::Right((_, _loser)) => {
                                    tally.cancelled.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }));
                    }
                    for t in tasks {
                        t.await;
                    }
                    done += batch;
                }
            });
        })
    };

    // 4. `blocking_timeout` on plain threads.
    let blockers: Vec<_> = (0..4)
        .map(|t| {
            let value = value.clone();
            let tally = tally.clone();
            thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (10 + t));
                for _ in 0..quarter / 4 {
                    let wait = some_wait(&value, &mut rng);
                    tally.count(&wait.blocking_timeout(some_time(&mut rng)));
                }
            })
        })
        .collect();

    dropper.join().unwrap();
    tokio_side.join().unwrap();
    smol_side.join().unwrap();
    for b in blockers {
        b.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    setter.join().unwrap();
    assert_eq!(value.watcher_count(), 0, "a registration leaked");
    let completed = tally.completed.load(Ordering::Relaxed);
    let cancelled = tally.cancelled.load(Ordering::Relaxed);
    let expected = quarter + (quarter + quarter / 2) + quarter / 2 + 4 * (quarter / 4);
    assert_eq!(
        completed + cancelled,
        expected,
        "every wait ended exactly once"
    );
    (completed, cancelled)
}

#[test]
fn a_storm_of_cancelled_waits_leaves_no_registration_and_no_memory_behind() {
    let _serial = serial();
    let full = support::env_is("KEEPWATCH_STRESS", "full");
    let n: u64 = if full { 100_000 } else { 8_000 };
    let report = with_watchdog(if full { 1200 } else { 60 }, move || {
        // Warm-up: the timer threads, smol's executor and tokio's globals allocate once.
        storm(400, 7);
        let start = live_bytes();
        reset_peak();
        let began = Instant::now();
        let (completed, cancelled) = storm(n, 42);
        let elapsed = began.elapsed();
        let peak = peak_bytes();
        // Memory the runtimes' helper threads give back a moment later.
        let mut end = live_bytes();
        for _ in 0..50 {
            if end <= start + (64 << 10) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
            end = live_bytes();
        }
        assert!(
            end <= start + (64 << 10),
            "memory not back to its level: {} at start, {} at end",
            human(start),
            human(end)
        );
        format!(
            "cancellation storm: {n} waits ({completed} matched first, {cancelled} cancelled: \
             unpolled/polled drop, async timeout and tokio::select! on tokio (2 workers), \
             futures select on smol, blocking_timeout on 4 threads) in {:.2}s; \
             watcher_count 0, leaked 0; heap {} at start, peak {}, {} at end",
            elapsed.as_secs_f64(),
            human(start),
            human(peak),
            human(end)
        )
    });
    println!("{report}");
}

#[test]
fn a_receive_cancelled_at_every_step_loses_no_transition() {
    let _serial = serial();
    with_watchdog(60, || {
        let value = ValueWatcher::new(0u64);
        let mut sub = value.subscribe();
        let (_, waker) = counting_waker();
        let mut rng = Rng::new(99);
        let mut next = 1;
        for n in 1..=2_000u64 {
            // A receive polled (and so registered) or not, then dropped, around each set.
            let mut recv = sub.recv();
            if rng.below(2) == 0 {
                if let std::task::Poll::Ready(r) = poll_once(&mut recv, &waker) {
                    assert_eq!(r.unwrap().version, next);
                    next += 1;
                }
            }
            drop(recv);
            value.set(n);
            if rng.below(3) == 0 {
                while let Some(t) = sub.try_recv().unwrap() {
                    assert_eq!(t.version, next);
                    next += 1;
                }
            }
        }
        while let Some(t) = sub.try_recv().unwrap() {
            assert_eq!(t.version, next);
            next += 1;
        }
        assert_eq!(next, 2_001);
    });
}
