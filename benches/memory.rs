//! Memory, counted by a global allocator: bytes per idle subscription and per queued
//! transition, for keepwatch, `tokio::sync::broadcast` and (reference) `async-broadcast`, with
//! 1,000 subscriptions and 10,000 queued `u64` transitions; then a check that memory returns
//! to its starting level once every subscription has drained. Then the memory curves: bytes
//! per pending wait (equality and predicate) and per idle subscription, for 1 to 100,000 of
//! them.
//!
//! Run: `CARGO_TARGET_DIR=target/bench cargo bench --bench memory`. It prints a table and
//! writes `target/bench/criterion/memory/estimates.json` and
//! `target/bench/criterion/curves/memory-*.json` for `benches/report.py`.

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

fn async_broadcast_shape() -> Shape {
    let mut rxs = Vec::with_capacity(SUBS);
    let start = live();
    // Lossless: a full channel refuses (`try_broadcast` errs) rather than overwrites.
    let (tx, rx0) = async_broadcast::broadcast(QUEUED as usize);
    let created = live();
    for _ in 1..SUBS {
        rxs.push(rx0.new_receiver());
    }
    rxs.push(rx0);
    let subscribed = live();
    for i in 1..=QUEUED {
        tx.try_broadcast(i).unwrap();
    }
    let queued = live();
    for rx in &mut rxs {
        while rx.try_recv().is_ok() {}
    }
    let drained = live();
    rxs.clear();
    drop(tx);
    let dropped = live();
    let handle = std::mem::size_of::<async_broadcast::Receiver<u64>>() as f64;
    Shape {
        name: "async-broadcast",
        per_subscription: (subscribed - created) as f64 / SUBS as f64 + handle,
        per_transition: ((queued - subscribed) + (created - start)) as f64 / QUEUED as f64,
        total: queued - start + (SUBS as f64 * handle) as isize,
        after_drain: drained - subscribed,
        after_drop: dropped - start,
    }
}

// ---------------------------------------------------------------------------------------
// Memory curves: bytes per item (heap bytes it added, plus its handle) for 1 to 100,000 items.

const LOADS: [usize; 6] = [1, 10, 100, 1_000, 10_000, 100_000];

/// Bytes per item for `n` items made by `make` on a fresh value or channel `ctx` (its own
/// bytes not counted); `H` is the handle kept for each item.
fn per_item<C, H>(n: usize, ctx: impl FnOnce() -> C, make: impl Fn(&C, usize) -> H) -> f64 {
    let c = ctx();
    let mut items = Vec::with_capacity(n);
    let start = live();
    for i in 0..n {
        items.push(make(&c, i));
    }
    let grown = live() - start;
    drop(items);
    drop(c);
    grown as f64 / n as f64 + std::mem::size_of::<H>() as f64
}

/// Writes one curve as `benches/curves.rs` does (points: `[x, bytes, bytes, 1]`).
fn write_curve(id: &str, title: &str, x: &str, series: &[(&str, Vec<(usize, f64)>)]) {
    println!("{id} — {title}");
    let mut parts = Vec::new();
    for (name, points) in series {
        let shown = points
            .iter()
            .map(|(n, b)| format!("{n}: {b:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("  {name:<24} {shown}");
        let pts = points
            .iter()
            .map(|(n, b)| format!("[{n}, {b:.2}, {b:.2}, 1]"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!("{{\"name\": \"{name}\", \"points\": [{pts}]}}"));
    }
    let json = format!(
        "{{\"id\": \"{id}\", \"title\": \"{title}\", \"x\": \"{x}\", \
         \"y\": \"bytes per item (heap + handle)\", \"points\": \"[x, bytes, bytes, 1]\", \
         \"series\": [\n  {}\n]}}\n",
        parts.join(",\n  ")
    );
    let dir = std::path::Path::new(
        &std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
    )
    .join("criterion/curves");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{id}.json")), json);
    }
}

fn memory_curves() {
    println!(
        "handles: Wait<u64> {} B, Subscription<u64> {} B, broadcast::Receiver<u64> {} B",
        std::mem::size_of::<keepwatch::Wait<u64>>(),
        std::mem::size_of::<keepwatch::Subscription<u64>>(),
        std::mem::size_of::<tokio::sync::broadcast::Receiver<u64>>()
    );
    let curve = |make: &dyn Fn(usize) -> f64| LOADS.iter().map(|&n| (n, make(n))).collect();
    let eq: Vec<_> = curve(&|n| {
        per_item(
            n,
            || ValueWatcher::new(0u64),
            |v, i| v.wait_for(1_000_000 + i as u64),
        )
    });
    let pred: Vec<_> = curve(&|n| {
        per_item(
            n,
            || ValueWatcher::new(0u64),
            |v, i| {
                let t = 1_000_000 + i as u64;
                v.wait_until(move |x| *x == t)
            },
        )
    });
    write_curve(
        "memory-waits",
        "memory per pending wait (u64 value)",
        "pending waits",
        &[("keepwatch wait_for", eq), ("keepwatch wait_until", pred)],
    );
    let kw: Vec<_> = curve(&|n| per_item(n, || ValueWatcher::new(0u64), |v, _| v.subscribe()));
    let bc: Vec<_> = curve(&|n| {
        per_item(
            n,
            || tokio::sync::broadcast::channel::<u64>(16).0,
            |tx, _| tx.subscribe(),
        )
    });
    let ab: Vec<_> = curve(&|n| {
        per_item(
            n,
            || async_broadcast::broadcast::<u64>(16).1,
            |rx, _| rx.new_receiver(),
        )
    });
    write_curve(
        "memory-subs",
        "memory per idle subscription (u64 value, nothing queued)",
        "idle subscriptions",
        &[
            ("keepwatch", kw),
            ("tokio-broadcast", bc),
            ("async-broadcast", ab),
        ],
    );
}

fn main() {
    let shapes = [
        keepwatch_shape(),
        broadcast_shape(),
        async_broadcast_shape(),
    ];
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
    memory_curves();
}
