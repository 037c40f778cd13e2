//! keepwatch side by side with its peers: one criterion group per workload of issue 10's table
//! (set, get, fanout, pingpong-thread, pingpong-async, bridge, herd; memory is
//! `benches/memory.rs`), each peer in the same group as keepwatch, so every ratio comes from
//! one run. `benches/report.py` turns the results into the table and chart of
//! `docs/PERFORMANCE.md`; `scripts/bench.sh` runs everything.
//!
//! Run: `CARGO_TARGET_DIR=target/bench cargo bench --bench compare` (a filter such as
//! `-- pingpong` runs one group). `KEEPWATCH_BENCH_SCALE=0.3` shortens every measurement.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use keepwatch::ValueWatcher;

mod common;
use common::{config, ms};

// ---------------------------------------------------------------------------------------
// set: alternating two u64s, nobody watching.

fn set(c: &mut Criterion) {
    let mut g = c.benchmark_group("set");
    {
        let v = ValueWatcher::new(0u64);
        let mut x = 0u64;
        g.bench_function("keepwatch", |b| {
            b.iter(|| {
                x ^= 1;
                black_box(v.set(black_box(x)))
            })
        });
    }
    {
        let (tx, _rx) = tokio::sync::watch::channel(0u64);
        let mut x = 0u64;
        g.bench_function("tokio-watch", |b| {
            b.iter(|| {
                x ^= 1;
                black_box(tx.send_replace(black_box(x)))
            })
        });
    }
    {
        let w = watchable::Watchable::new(0u64);
        let mut x = 0u64;
        g.bench_function("watchable", |b| {
            b.iter(|| {
                x ^= 1;
                black_box(w.replace(black_box(x)))
            })
        });
    }
    {
        let m = parking_lot::Mutex::new(0u64);
        let mut x = 0u64;
        g.bench_function("parking_lot-mutex", |b| {
            b.iter(|| {
                x ^= 1;
                *m.lock() = black_box(x);
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------
// get: a read of a u64.

fn get(c: &mut Criterion) {
    let mut g = c.benchmark_group("get");
    let v = ValueWatcher::new(7u64);
    g.bench_function("keepwatch", |b| b.iter(|| black_box(v.get())));
    let (_tx, rx) = tokio::sync::watch::channel(7u64);
    g.bench_function("tokio-watch", |b| b.iter(|| black_box(*rx.borrow())));
    let m = parking_lot::Mutex::new(7u64);
    g.bench_function("parking_lot-mutex", |b| b.iter(|| black_box(*m.lock())));
    let rw = std::sync::RwLock::new(7u64);
    g.bench_function("std-rwlock", |b| b.iter(|| black_box(*rw.read().unwrap())));
    g.finish();
}

// ---------------------------------------------------------------------------------------
// fanout/N: the cost per set with N idle subscriptions (subscribed, not parked), the issue's
// definition. Sets are timed in batches; after each batch every subscription drains what it
// missed, untimed, so each batch starts from empty queues. Same work for every peer: the
// subscriptions are made once, the drain reads every message (tokio watch: marks the latest
// seen), and the broadcast ring holds a whole batch, so it never lags or overwrites.

/// Sets per timed batch; also the broadcast ring's capacity.
const FANOUT_BATCH: u64 = 1024;

/// Times `iters` calls of `send`, `FANOUT_BATCH` at a time, running `drain` (untimed) after
/// each batch.
fn fanout_batches(iters: u64, mut send: impl FnMut(), mut drain: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(FANOUT_BATCH);
        let start = Instant::now();
        for _ in 0..batch {
            send();
        }
        total += start.elapsed();
        drain();
        left -= batch;
    }
    total
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    g.warm_up_time(ms(300));
    g.measurement_time(ms(1000));
    for n in [1usize, 100, 1000] {
        g.bench_with_input(BenchmarkId::new("keepwatch", n), &n, |b, &n| {
            let v = ValueWatcher::new(0u64);
            let mut subs: Vec<_> = (0..n).map(|_| v.subscribe()).collect();
            let mut x = 0u64;
            b.iter_custom(|iters| {
                fanout_batches(
                    iters,
                    || {
                        x += 1;
                        black_box(v.set(black_box(x)));
                    },
                    || {
                        for s in subs.iter_mut() {
                            while let Ok(Some(t)) = s.try_recv() {
                                black_box(t);
                            }
                        }
                    },
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("tokio-broadcast", n), &n, |b, &n| {
            let (tx, rx0) = tokio::sync::broadcast::channel(FANOUT_BATCH as usize);
            let mut rxs: Vec<_> = (1..n).map(|_| tx.subscribe()).collect();
            rxs.push(rx0);
            let mut x = 0u64;
            b.iter_custom(|iters| {
                fanout_batches(
                    iters,
                    || {
                        x += 1;
                        black_box(tx.send(black_box(x)).is_ok());
                    },
                    || {
                        for rx in rxs.iter_mut() {
                            while let Ok(m) = rx.try_recv() {
                                black_box(m);
                            }
                        }
                    },
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("tokio-watch", n), &n, |b, &n| {
            let (tx, rx) = tokio::sync::watch::channel(0u64);
            let mut rxs: Vec<_> = (0..n).map(|_| rx.clone()).collect();
            let mut x = 0u64;
            b.iter_custom(|iters| {
                fanout_batches(
                    iters,
                    || {
                        x += 1;
                        black_box(tx.send(black_box(x)).is_ok());
                    },
                    || {
                        for rx in rxs.iter_mut() {
                            black_box(*rx.borrow_and_update());
                        }
                    },
                )
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------
// pingpong-thread: a round trip between two OS threads, each blocking.

/// Runs `iters` round trips: `responder` on a new thread, `caller` here (timed).
fn round_trips(
    iters: u64,
    caller: impl FnOnce(u64),
    responder: impl FnOnce(u64) + Send + 'static,
) -> Duration {
    let t = thread::spawn(move || responder(iters));
    let start = Instant::now();
    caller(iters);
    let elapsed = start.elapsed();
    t.join().unwrap();
    elapsed
}

fn pingpong_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong-thread");
    g.bench_function("keepwatch", |b| {
        b.iter_custom(|iters| {
            let v = ValueWatcher::new(0u64);
            let w = v.clone();
            round_trips(
                iters,
                move |n| {
                    for i in 0..n {
                        v.set(2 * i + 1);
                        v.wait_for(2 * i + 2).blocking().unwrap();
                    }
                },
                move |n| {
                    for i in 0..n {
                        w.wait_for(2 * i + 1).blocking().unwrap();
                        w.set(2 * i + 2);
                    }
                },
            )
        })
    });
    g.bench_function("crossbeam-channel", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = crossbeam_channel::bounded(1);
            let (pong_tx, pong_rx) = crossbeam_channel::bounded(1);
            round_trips(
                iters,
                move |n| {
                    for i in 0..n {
                        ping_tx.send(i).unwrap();
                        pong_rx.recv().unwrap();
                    }
                },
                move |n| {
                    for _ in 0..n {
                        let i = ping_rx.recv().unwrap();
                        pong_tx.send(i).unwrap();
                    }
                },
            )
        })
    });
    g.bench_function("std-mpsc", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = std::sync::mpsc::sync_channel(1);
            let (pong_tx, pong_rx) = std::sync::mpsc::sync_channel(1);
            round_trips(
                iters,
                move |n| {
                    for i in 0..n {
                        ping_tx.send(i).unwrap();
                        pong_rx.recv().unwrap();
                    }
                },
                move |n| {
                    for _ in 0..n {
                        let i = ping_rx.recv().unwrap();
                        pong_tx.send(i).unwrap();
                    }
                },
            )
        })
    });
    g.bench_function("flume", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = flume::bounded(1);
            let (pong_tx, pong_rx) = flume::bounded(1);
            round_trips(
                iters,
                move |n| {
                    for i in 0..n {
                        ping_tx.send(i).unwrap();
                        pong_rx.recv().unwrap();
                    }
                },
                move |n| {
                    for _ in 0..n {
                        let i = ping_rx.recv().unwrap();
                        pong_tx.send(i).unwrap();
                    }
                },
            )
        })
    });
    g.bench_function("mutex-condvar", |b| {
        b.iter_custom(|iters| {
            let pair = Arc::new((Mutex::new(0u64), Condvar::new()));
            let other = pair.clone();
            round_trips(
                iters,
                move |n| {
                    let (m, cv) = &*pair;
                    for i in 0..n {
                        let mut v = m.lock().unwrap();
                        *v = 2 * i + 1;
                        cv.notify_all();
                        let _v = cv.wait_while(v, |v| *v != 2 * i + 2).unwrap();
                    }
                },
                move |n| {
                    let (m, cv) = &*other;
                    for i in 0..n {
                        let mut v = cv
                            .wait_while(m.lock().unwrap(), |v| *v != 2 * i + 1)
                            .unwrap();
                        *v = 2 * i + 2;
                        cv.notify_all();
                    }
                },
            )
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// pingpong-async: a round trip between two tasks on a 2-worker tokio runtime.

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `iters` round trips between two spawned tasks; the caller task times itself.
fn async_round_trips<C, R>(rt: &tokio::runtime::Runtime, caller: C, responder: R) -> Duration
where
    C: std::future::Future<Output = ()> + Send + 'static,
    R: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        let r = tokio::spawn(responder);
        let c = tokio::spawn(async move {
            let start = Instant::now();
            caller.await;
            start.elapsed()
        });
        let elapsed = c.await.unwrap();
        r.await.unwrap();
        elapsed
    })
}

fn pingpong_async(c: &mut Criterion) {
    let rt = runtime(2);
    let mut g = c.benchmark_group("pingpong-async");
    g.bench_function("keepwatch", |b| {
        b.iter_custom(|iters| {
            let v = ValueWatcher::new(0u64);
            let w = v.clone();
            async_round_trips(
                &rt,
                async move {
                    for i in 0..iters {
                        v.set(2 * i + 1);
                        v.wait_for(2 * i + 2).await.unwrap();
                    }
                },
                async move {
                    for i in 0..iters {
                        w.wait_for(2 * i + 1).await.unwrap();
                        w.set(2 * i + 2);
                    }
                },
            )
        })
    });
    g.bench_function("tokio-watch", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, mut ping_rx) = tokio::sync::watch::channel(0u64);
            let (pong_tx, mut pong_rx) = tokio::sync::watch::channel(0u64);
            async_round_trips(
                &rt,
                async move {
                    for i in 0..iters {
                        ping_tx.send(i + 1).unwrap();
                        pong_rx.changed().await.unwrap();
                    }
                },
                async move {
                    for _ in 0..iters {
                        ping_rx.changed().await.unwrap();
                        let i = *ping_rx.borrow_and_update();
                        pong_tx.send(i).unwrap();
                    }
                },
            )
        })
    });
    // Reference: the bare wake-up, no value carried (a permit is stored if nobody waits yet).
    g.bench_function("tokio-notify", |b| {
        b.iter_custom(|iters| {
            let ping = Arc::new(tokio::sync::Notify::new());
            let pong = Arc::new(tokio::sync::Notify::new());
            let (ping2, pong2) = (ping.clone(), pong.clone());
            async_round_trips(
                &rt,
                async move {
                    for _ in 0..iters {
                        ping.notify_one();
                        pong.notified().await;
                    }
                },
                async move {
                    for _ in 0..iters {
                        ping2.notified().await;
                        pong2.notify_one();
                    }
                },
            )
        })
    });
    g.bench_function("tokio-mpsc", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel(1);
            let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel(1);
            async_round_trips(
                &rt,
                async move {
                    for i in 0..iters {
                        ping_tx.send(i).await.unwrap();
                        pong_rx.recv().await.unwrap();
                    }
                },
                async move {
                    for _ in 0..iters {
                        let i = ping_rx.recv().await.unwrap();
                        pong_tx.send(i).await.unwrap();
                    }
                },
            )
        })
    });
    g.bench_function("flume", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = flume::bounded(1);
            let (pong_tx, pong_rx) = flume::bounded(1);
            async_round_trips(
                &rt,
                async move {
                    for i in 0..iters {
                        ping_tx.send_async(i).await.unwrap();
                        pong_rx.recv_async().await.unwrap();
                    }
                },
                async move {
                    for _ in 0..iters {
                        let i = ping_rx.recv_async().await.unwrap();
                        pong_tx.send_async(i).await.unwrap();
                    }
                },
            )
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// bridge: a blocking thread makes 1,000,000 transitions, one async task receives each.

const BRIDGE: u64 = 1_000_000;

fn bridge(c: &mut Criterion) {
    let rt = runtime(1);
    let mut g = c.benchmark_group("bridge");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(ms(200));
    g.measurement_time(ms(2000));
    g.bench_function("keepwatch", |b| {
        b.iter(|| {
            let v = ValueWatcher::new(0u64);
            let mut sub = v.subscribe();
            let consumer = rt.spawn(async move {
                let mut last = 0;
                while last < BRIDGE {
                    last = sub.recv().await.unwrap().new;
                }
            });
            let producer = thread::spawn(move || {
                for i in 1..=BRIDGE {
                    v.set(i);
                }
            });
            producer.join().unwrap();
            rt.block_on(consumer).unwrap();
        })
    });
    g.bench_function("flume", |b| {
        b.iter(|| {
            let (tx, rx) = flume::unbounded();
            let consumer = rt.spawn(async move {
                let mut last = 0;
                while last < BRIDGE {
                    last = rx.recv_async().await.unwrap();
                }
            });
            let producer = thread::spawn(move || {
                for i in 1..=BRIDGE {
                    tx.send(i).unwrap();
                }
            });
            producer.join().unwrap();
            rt.block_on(consumer).unwrap();
        })
    });
    g.bench_function("tokio-mpsc", |b| {
        b.iter(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let consumer = rt.spawn(async move {
                let mut last = 0;
                while last < BRIDGE {
                    last = rx.recv().await.unwrap();
                }
            });
            let producer = thread::spawn(move || {
                for i in 1..=BRIDGE {
                    tx.send(i).unwrap();
                }
            });
            producer.join().unwrap();
            rt.block_on(consumer).unwrap();
        })
    });
    g.bench_function("crossbeam-channel", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            let consumer = thread::spawn(move || {
                let mut last = 0;
                while last < BRIDGE {
                    last = rx.recv().unwrap();
                }
            });
            for i in 1..=BRIDGE {
                tx.send(i).unwrap();
            }
            consumer.join().unwrap();
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// herd: 1,000 waiters, each for a different value; the value steps through all 1,000.

const HERD: u64 = 1000;

/// One herd episode on the runtime: `waiters[i]` completes when the value reaches `i + 1`
/// and reports it on the ack channel; `step(i)` sets the value. Lockstep: each step waits for
/// its waiter's ack; burst: all steps, then all acks. Only the steps and acks are timed.
fn herd_tasks<W, F>(
    rt: &tokio::runtime::Runtime,
    waiters: Vec<W>,
    ready: Arc<AtomicUsize>,
    lockstep: bool,
    step: impl Fn(u64),
) -> Duration
where
    W: FnOnce() -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
    let n = waiters.len();
    for (i, make) in waiters.into_iter().enumerate() {
        let ack = ack_tx.clone();
        let fut = make();
        rt.spawn(async move {
            fut.await;
            ack.send(i).unwrap();
        });
    }
    while ready.load(Ordering::Acquire) < n {
        thread::yield_now();
    }
    let start = Instant::now();
    if lockstep {
        for i in 1..=n as u64 {
            step(i);
            ack_rx.recv().unwrap();
        }
    } else {
        for i in 1..=n as u64 {
            step(i);
        }
        for _ in 0..n {
            ack_rx.recv().unwrap();
        }
    }
    start.elapsed()
}

/// The Mutex + Condvar peer: one OS thread per waiter, `notify_all` on every step.
fn herd_condvar(iters: u64, lockstep: bool) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let pair = Arc::new((Mutex::new(0u64), Condvar::new()));
        let ready = Arc::new(AtomicUsize::new(0));
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let threads: Vec<_> = (1..=HERD)
            .map(|i| {
                let pair = pair.clone();
                let ready = ready.clone();
                let ack = ack_tx.clone();
                thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let (m, cv) = &*pair;
                        let guard = m.lock().unwrap();
                        ready.fetch_add(1, Ordering::Release);
                        drop(cv.wait_while(guard, |v| *v < i).unwrap());
                        ack.send(i).unwrap();
                    })
                    .unwrap()
            })
            .collect();
        // Every thread has taken the lock once; the last one may not be waiting yet, but the
        // condition is checked under the lock, so nothing is missed.
        while ready.load(Ordering::Acquire) < HERD as usize {
            thread::yield_now();
        }
        let (m, cv) = &*pair;
        let step = |i: u64| {
            *m.lock().unwrap() = i;
            cv.notify_all();
        };
        let start = Instant::now();
        if lockstep {
            for i in 1..=HERD {
                step(i);
                ack_rx.recv().unwrap();
            }
        } else {
            for i in 1..=HERD {
                step(i);
            }
            for _ in 0..HERD {
                ack_rx.recv().unwrap();
            }
        }
        total += start.elapsed();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }
    total
}

fn herd(c: &mut Criterion) {
    let rt = runtime(2);
    let mut g = c.benchmark_group("herd");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(ms(200));
    g.measurement_time(ms(2000));
    for (mode, lockstep) in [("lockstep", true), ("burst", false)] {
        g.bench_function(BenchmarkId::new("keepwatch", mode), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let v = ValueWatcher::new(0u64);
                    let ready = Arc::new(AtomicUsize::new(0));
                    let waiters: Vec<_> = (1..=HERD)
                        .map(|i| {
                            // Registered here, before the task runs: nothing can be missed.
                            let wait = v.wait_for(i);
                            let ready = ready.clone();
                            move || async move {
                                ready.fetch_add(1, Ordering::Release);
                                wait.await.unwrap();
                            }
                        })
                        .collect();
                    total += herd_tasks(&rt, waiters, ready, lockstep, |i| {
                        v.set(i);
                    });
                }
                total
            })
        });
        g.bench_function(BenchmarkId::new("tokio-watch", mode), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (tx, rx) = tokio::sync::watch::channel(0u64);
                    let ready = Arc::new(AtomicUsize::new(0));
                    let waiters: Vec<_> = (1..=HERD)
                        .map(|i| {
                            let mut rx = rx.clone();
                            let ready = ready.clone();
                            // `>=`: watch may skip values in a burst, so `==` could hang.
                            move || async move {
                                ready.fetch_add(1, Ordering::Release);
                                rx.wait_for(|v| *v >= i).await.unwrap();
                            }
                        })
                        .collect();
                    total += herd_tasks(&rt, waiters, ready, lockstep, |i| {
                        tx.send_replace(i);
                    });
                }
                total
            })
        });
        g.bench_function(BenchmarkId::new("mutex-condvar", mode), |b| {
            b.iter_custom(|iters| herd_condvar(iters, lockstep))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = set, get, fanout, pingpong_thread, pingpong_async, bridge, herd
}
criterion_main!(benches);
