//! Memory, counted by a global allocator: bytes per idle subscription and per queued
//! transition, for keepwatch and `tokio::sync::broadcast`, with 1,000 subscriptions and 10,000
//! queued `u64` transitions; then a check that memory returns to its starting level once every
//! subscription has drained.
//!
//! Run: `CARGO_TARGET_DIR=target/bench cargo bench --bench memory`. It prints a table and
//! writes `target/bench/criterion/memory/estimates.json` for `benches/report.py`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use keepwatch::ValueWatcher;

/// Counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as documented for `GlobalAlloc::alloc`; the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const SUBS: usize = 1000;
const QUEUED: u64 = 10_000;

/// Bytes of one shape: the handles' own size counts (they live in a `Vec` allocated before
/// the start), the value or channel itself counts as part of the queue.
struct Shape {
    name: &'static str,
    per_subscription: f64,
    per_transition: f64,
    total: isize,
    /// Live bytes after draining, minus live bytes before the transitions were made.
    after_drain: isize,
    /// Live bytes after dropping everything, minus the start.
    after_drop: isize,
}

fn keepwatch_shape() -> Shape {
    let mut subs = Vec::with_capacity(SUBS);
    let start = live();
    let value = ValueWatcher::new(0u64);
    let created = live();
    for _ in 0..SUBS {
        subs.push(value.subscribe());
    }
    let subscribed = live();
    for i in 1..=QUEUED {
        value.set(i);
    }
    let queued = live();
    for sub in &mut subs {
        while sub.try_recv().unwrap().is_some() {}
    }
    let drained = live();
    subs.clear();
    drop(value);
    let dropped = live();
    let handle = std::mem::size_of::<keepwatch::Subscription<u64>>() as f64;
    Shape {
        name: "keepwatch",
        per_subscription: (subscribed - created) as f64 / SUBS as f64 + handle,
        per_transition: ((queued - subscribed) + (created - start)) as f64 / QUEUED as f64,
        total: queued - start + (SUBS as f64 * handle) as isize,
        after_drain: drained - subscribed,
        after_drop: dropped - start,
    }
}

fn broadcast_shape() -> Shape {
    let mut rxs = Vec::with_capacity(SUBS);
    let start = live();
    // Lossless for 10,000 queued transitions: the ring must hold them all.
    let (tx, rx0) = tokio::sync::broadcast::channel(QUEUED as usize);
    let created = live();
    rxs.push(rx0);
    for _ in 1..SUBS {
        rxs.push(tx.subscribe());
    }
    let subscribed = live();
    for i in 1..=QUEUED {
        tx.send(i).unwrap();
    }
    let queued = live();
    for rx in &mut rxs {
        while rx.try_recv().is_ok() {}
    }
    let drained = live();
    rxs.clear();
    drop(tx);
    let dropped = live();
    let handle = std::mem::size_of::<tokio::sync::broadcast::Receiver<u64>>() as f64;
    Shape {
        name: "tokio-broadcast",
        per_subscription: (subscribed - created) as f64 / SUBS as f64 + handle,
        per_transition: ((queued - subscribed) + (created - start)) as f64 / QUEUED as f64,
        total: queued - start + (SUBS as f64 * handle) as isize,
        after_drain: drained - subscribed,
        after_drop: dropped - start,
    }
}

fn main() {
    let shapes = [keepwatch_shape(), broadcast_shape()];
    println!(
        "memory: {SUBS} subscriptions, {QUEUED} queued u64 transitions (bytes; handles included)"
    );
    println!(
        "{:<16} {:>14} {:>14} {:>12} {:>12} {:>12}",
        "", "per sub", "per queued", "total", "after drain", "after drop"
    );
    for s in &shapes {
        println!(
            "{:<16} {:>14.1} {:>14.1} {:>12} {:>12} {:>12}",
            s.name, s.per_subscription, s.per_transition, s.total, s.after_drain, s.after_drop
        );
    }
    let json = shapes
        .iter()
        .map(|s| {
            format!(
                "\"{}\": {{\"per_subscription\": {:.1}, \"per_transition\": {:.1}, \
                 \"total\": {}, \"after_drain\": {}, \"after_drop\": {}}}",
                s.name, s.per_subscription, s.per_transition, s.total, s.after_drain, s.after_drop
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let dir = std::path::Path::new(
        &std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
    )
    .join("criterion/memory");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("estimates.json"), format!("{{{json}}}\n"));
    }
}
