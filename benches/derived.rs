//! What derived values cost (issue 11): the cost a `map` adds to its source's `set`, beside the
//! same source with nothing watching and with one `on_change` callback doing the same work; and
//! a wait on a derived value beside the same wait written by hand with `on_change`.
//!
//! Run: `CARGO_TARGET_DIR=target/bench cargo bench --bench derived`
//! (`KEEPWATCH_BENCH_SCALE=0.3` shortens every measurement).

use std::hint::black_box;
use std::sync::mpsc;

use criterion::{criterion_group, criterion_main, Criterion};
use keepwatch::ValueWatcher;

mod common;
use common::config;

/// The projection both sides compute: half the offers change it.
fn half(x: &u64) -> u64 {
    x / 2
}

/// `set` on a source: nothing watching, one `map` alive, one `on_change` doing the same work.
fn set_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("derived-set");
    {
        let v = ValueWatcher::new(0u64);
        let mut x = 0u64;
        g.bench_function("nothing-watching", |b| {
            b.iter(|| {
                x += 1;
                black_box(v.set(black_box(x)))
            })
        });
    }
    {
        let v = ValueWatcher::new(0u64);
        let _halves = v.map(half);
        let mut x = 0u64;
        g.bench_function("with-map", |b| {
            b.iter(|| {
                x += 1;
                black_box(v.set(black_box(x)))
            })
        });
    }
    {
        let v = ValueWatcher::new(0u64);
        let _cb = v.on_change(|_, new| {
            black_box(half(new));
        });
        let mut x = 0u64;
        g.bench_function("with-on_change", |b| {
            b.iter(|| {
                x += 1;
                black_box(v.set(black_box(x)))
            })
        });
    }
    g.finish();
}

/// How many sets one wait sees before the projected state it waits for comes up.
const SETS: u64 = 64;

/// A wait for a projected state (`x % 64 == 63`) that holds for one set only: per iteration, the
/// wait is created, 64 sets are made, and the wait is finished (it completed during the sets).
fn wait_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("derived-wait");
    {
        let v = ValueWatcher::new(0u64);
        let at_end = v.map(|x| x % SETS == SETS - 1);
        let mut x = 0u64;
        g.bench_function("map-wait_for", |b| {
            b.iter(|| {
                let wait = at_end.wait_for(true).skip_current();
                for _ in 0..SETS {
                    x += 1;
                    v.set(x);
                }
                black_box(wait.blocking().unwrap())
            })
        });
    }
    {
        let v = ValueWatcher::new(0u64);
        let mut x = 0u64;
        g.bench_function("hand-written-on_change", |b| {
            b.iter(|| {
                let (tx, rx) = mpsc::sync_channel(1);
                let handle = v.on_change(move |_, new| {
                    if new % SETS == SETS - 1 {
                        let _ = tx.try_send(true);
                    }
                });
                for _ in 0..SETS {
                    x += 1;
                    v.set(x);
                }
                let seen = rx.recv().unwrap();
                handle.cancel();
                black_box(seen)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = set_cost, wait_cost
}
criterion_main!(benches);
