//! Cost curves: how keepwatch's costs grow with load.
//!
//! - `set` cost against the number of pending equality waits, of pending predicate waits, of
//!   idle subscriptions (with tokio broadcast beside it) and of queued (unread) transitions;
//! - wake-to-run latency of a blocked OS thread and of a tokio task (from just before `set` to
//!   the waiter running), median and p99, against how long the waiter had been waiting (short:
//!   it is still spinning; long: it is parked), with crossbeam / tokio watch beside it.
//!
//! Memory per pending wait and per idle subscription is in `benches/memory.rs` (it needs a
//! counting allocator, which would perturb the timings here).
//!
//! Not criterion: each point is a fixed wall-time budget of short samples, so that the whole
//! suite stays within a few minutes on 2 cores however slow the largest points are. A sample is
//! the mean over a batch of `set`s; a point reports the median and p99 of its samples.
//!
//! Run: `CARGO_TARGET_DIR=target/bench cargo bench --bench curves [-- FILTER]`. It prints each
//! curve and writes `$CARGO_TARGET_DIR/criterion/curves/<id>.json` for `benches/report.py`.
//! `KEEPWATCH_BENCH_SCALE=0.3` shortens every budget (default 1.0).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use keepwatch::ValueWatcher;

/// The loads of the `set` cost curves.
const LOADS: [usize; 6] = [1, 10, 100, 1_000, 10_000, 100_000];

/// How long the waiter has been waiting before the `set`, in µs, for the latency curves.
const DELAYS_US: [u64; 6] = [0, 2, 10, 50, 200, 1000];

fn scale() -> f64 {
    std::env::var("KEEPWATCH_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// The wall-time budget of one point, scaled.
fn budget(ms: u64) -> Duration {
    Duration::from_secs_f64(ms as f64 / 1000.0 * scale())
}

/// One point of a curve: x, median and p99 of the samples, and the sample count.
struct Point {
    x: f64,
    median: f64,
    p99: f64,
    samples: usize,
}

struct Series {
    name: String,
    points: Vec<Point>,
}

struct Curve {
    id: &'static str,
    title: &'static str,
    x_label: &'static str,
    y_label: &'static str,
    series: Vec<Series>,
}

fn point(x: f64, mut samples: Vec<f64>) -> Point {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Point {
        x,
        median: at(0.5),
        p99: at(0.99),
        samples: samples.len(),
    }
}

/// Runs `sample` (which returns one sample) until `budget` of wall time has passed, at least
/// 5 and at most 100,000 times.
fn sampled(budget: Duration, mut sample: impl FnMut() -> f64) -> Vec<f64> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < 5 || (start.elapsed() < budget && out.len() < 100_000) {
        out.push(sample());
    }
    out
}

/// `set`s per sample: about 200 µs of work at 1 ns per pending item, at least one.
fn batch(n: usize) -> usize {
    (200_000 / n).clamp(1, 2000)
}

/// Mean ns per `set` over `batch` sets alternating 0 and 1 (neither is any wait's target).
fn time_sets(v: &ValueWatcher<u64>, batch: usize, x: &mut u64) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        *x ^= 1;
        black_box(v.set(black_box(*x)));
    }
    start.elapsed().as_nanos() as f64 / batch as f64
}

/// `set` cost with `n` pending waits made by `make(i)`, never matched.
fn set_with_waits(
    n: usize,
    make: impl Fn(&ValueWatcher<u64>, u64) -> keepwatch::Wait<u64>,
) -> Point {
    let v = ValueWatcher::new(0u64);
    let waits: Vec<_> = (0..n as u64).map(|i| make(&v, 1_000_000 + i)).collect();
    let b = batch(n);
    let mut x = 0;
    time_sets(&v, b, &mut x); // warm-up
    let samples = sampled(budget(300), || time_sets(&v, b, &mut x));
    drop(waits);
    point(n as f64, samples)
}

fn curve_eq_waits() -> Curve {
    let points = LOADS
        .iter()
        .map(|&n| set_with_waits(n, |v, t| v.wait_for(t)))
        .collect();
    Curve {
        id: "set-eq-waits",
        title: "set cost against pending equality waits (wait_for, never matched)",
        x_label: "pending wait_for waits",
        y_label: "ns per set",
        series: vec![Series {
            name: "keepwatch".into(),
            points,
        }],
    }
}

fn curve_pred_waits() -> Curve {
    let points = LOADS
        .iter()
        .map(|&n| set_with_waits(n, |v, t| v.wait_until(move |x| *x == t)))
        .collect();
    Curve {
        id: "set-pred-waits",
        title: "set cost against pending predicate waits (wait_until, never matched)",
        x_label: "pending wait_until waits",
        y_label: "ns per set",
        series: vec![Series {
            name: "keepwatch".into(),
            points,
        }],
    }
}

/// `set` (or `send`) cost with `n` idle subscriptions, drained (untimed) after each batch so
/// that every batch starts from an empty queue. Same work for both.
fn curve_subs() -> Curve {
    let mut kw = Vec::new();
    let mut bc = Vec::new();
    for &n in &LOADS {
        // A fixed batch: a batch of one or two sets after draining 100,000 subscriptions would
        // measure a cache the drain has just evicted, not the cost of an idle subscription.
        let b = 256;
        {
            let v = ValueWatcher::new(0u64);
            let mut subs: Vec<_> = (0..n).map(|_| v.subscribe()).collect();
            let mut x = 0u64;
            let mut sample = || {
                let start = Instant::now();
                for _ in 0..b {
                    x += 1;
                    black_box(v.set(black_box(x)));
                }
                let t = start.elapsed().as_nanos() as f64 / b as f64;
                for s in subs.iter_mut() {
                    while let Ok(Some(t)) = s.try_recv() {
                        black_box(t);
                    }
                }
                t
            };
            sample();
            kw.push(point(n as f64, sampled(budget(300), sample)));
        }
        {
            let (tx, rx0) = tokio::sync::broadcast::channel(2048);
            let mut rxs: Vec<_> = (1..n).map(|_| tx.subscribe()).collect();
            rxs.push(rx0);
            let mut x = 0u64;
            let mut sample = || {
                let start = Instant::now();
                for _ in 0..b {
                    x += 1;
                    black_box(tx.send(black_box(x)).is_ok());
                }
                let t = start.elapsed().as_nanos() as f64 / b as f64;
                for rx in rxs.iter_mut() {
                    while let Ok(m) = rx.try_recv() {
                        black_box(m);
                    }
                }
                t
            };
            sample();
            bc.push(point(n as f64, sampled(budget(300), sample)));
        }
    }
    Curve {
        id: "set-subs",
        title: "set cost against idle subscriptions (drained after each batch, untimed)",
        x_label: "idle subscriptions",
        y_label: "ns per set",
        series: vec![
            Series {
                name: "keepwatch".into(),
                points: kw,
            },
            Series {
                name: "tokio-broadcast".into(),
                points: bc,
            },
        ],
    }
}

/// `set` cost with one subscription `q` transitions behind; after each batch it reads as many
/// as were added (untimed), so the queue stays at `q`.
fn curve_queued() -> Curve {
    let mut points = Vec::new();
    for q in [1usize, 10, 100, 1_000, 10_000, 100_000, 1_000_000] {
        let v = ValueWatcher::new(0u64);
        let mut sub = v.subscribe();
        let mut x = 0u64;
        for _ in 0..q {
            x += 1;
            v.set(x);
        }
        let b = 256;
        let mut sample = || {
            let start = Instant::now();
            for _ in 0..b {
                x += 1;
                black_box(v.set(black_box(x)));
            }
            let t = start.elapsed().as_nanos() as f64 / b as f64;
            for _ in 0..b {
                black_box(sub.try_recv().unwrap());
            }
            t
        };
        sample();
        points.push(point(q as f64, sampled(budget(300), sample)));
    }
    Curve {
        id: "set-queued",
        title: "set cost against queued (unread) transitions of one subscription",
        x_label: "queued transitions",
        y_label: "ns per set",
        series: vec![Series {
            name: "keepwatch".into(),
            points,
        }],
    }
}

// ---------------------------------------------------------------------------------------
// Wake-to-run latency.

/// The two ends of one latency run. The waiter, for i = 1, 2, …: arms its wait for `i`,
/// publishes `ready = i`, waits, then stores the time it ran and `ran = i`. The setter sees
/// `ready = i`, lets `delay` pass (busy), takes the time and sets `i`, then reads the waiter's.
struct Clock {
    base: Instant,
    ready: AtomicU64,
    ran: AtomicU64,
    ran_at: AtomicU64,
}

impl Clock {
    fn new() -> Arc<Self> {
        Arc::new(Clock {
            base: Instant::now(),
            ready: AtomicU64::new(0),
            ran: AtomicU64::new(0),
            ran_at: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Waiter side, after its wait for `i` completed.
    fn record(&self, i: u64) {
        self.ran_at.store(self.now(), Ordering::Relaxed);
        self.ran.store(i, Ordering::Release);
    }

    /// Setter side: `samples` latencies in ns, one per `set(i)`.
    fn drive(&self, samples: u64, delay: Duration, set: impl Fn(u64)) -> Vec<f64> {
        let mut out = Vec::with_capacity(samples as usize);
        for i in 1..=samples {
            while self.ready.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            let armed = Instant::now();
            while armed.elapsed() < delay {
                std::hint::spin_loop();
            }
            let t0 = self.now();
            set(i);
            while self.ran.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            out.push(self.ran_at.load(Ordering::Relaxed).saturating_sub(t0) as f64);
        }
        out
    }
}

/// Samples per latency point: a fixed count, fewer for the long delays.
fn latency_samples(delay_us: u64) -> u64 {
    let wall = budget(600).as_secs_f64();
    let per = (delay_us as f64 * 1e-6 + 5e-6).max(1e-6);
    ((wall / per) as u64).clamp(50, 4000)
}

fn thread_latency_keepwatch(samples: u64, delay: Duration) -> Vec<f64> {
    let v = ValueWatcher::new(0u64);
    let clock = Clock::new();
    let (w, c) = (v.clone(), clock.clone());
    let waiter = thread::spawn(move || {
        for i in 1..=samples {
            let wait = w.wait_for(i);
            c.ready.store(i, Ordering::Release);
            wait.blocking().unwrap();
            c.record(i);
        }
    });
    let out = clock.drive(samples, delay, |i| {
        v.set(i);
    });
    waiter.join().unwrap();
    out
}

fn thread_latency_crossbeam(samples: u64, delay: Duration) -> Vec<f64> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let clock = Clock::new();
    let c = clock.clone();
    let waiter = thread::spawn(move || {
        for i in 1..=samples {
            c.ready.store(i, Ordering::Release);
            let got: u64 = rx.recv().unwrap();
            c.record(got);
        }
    });
    let out = clock.drive(samples, delay, |i| tx.send(i).unwrap());
    waiter.join().unwrap();
    out
}

fn task_latency_keepwatch(rt: &tokio::runtime::Runtime, samples: u64, delay: Duration) -> Vec<f64> {
    let v = ValueWatcher::new(0u64);
    let clock = Clock::new();
    let (w, c) = (v.clone(), clock.clone());
    let waiter = rt.spawn(async move {
        for i in 1..=samples {
            let wait = w.wait_for(i);
            c.ready.store(i, Ordering::Release);
            wait.await.unwrap();
            c.record(i);
        }
    });
    let out = clock.drive(samples, delay, |i| {
        v.set(i);
    });
    rt.block_on(waiter).unwrap();
    out
}

fn task_latency_watch(rt: &tokio::runtime::Runtime, samples: u64, delay: Duration) -> Vec<f64> {
    let (tx, mut rx) = tokio::sync::watch::channel(0u64);
    let clock = Clock::new();
    let c = clock.clone();
    let waiter = rt.spawn(async move {
        for i in 1..=samples {
            c.ready.store(i, Ordering::Release);
            rx.changed().await.unwrap();
            let got = *rx.borrow_and_update();
            c.record(got);
        }
    });
    let out = clock.drive(samples, delay, |i| {
        tx.send_replace(i);
    });
    rt.block_on(waiter).unwrap();
    out
}

fn latency_series(name: &'static str, run: impl Fn(u64, Duration) -> Vec<f64>) -> (Series, Series) {
    let mut median = Vec::new();
    let mut p99 = Vec::new();
    for &d in &DELAYS_US {
        let samples = run(latency_samples(d), Duration::from_micros(d));
        let p = point(d as f64, samples);
        p99.push(Point {
            x: p.x,
            median: p.p99,
            p99: p.p99,
            samples: p.samples,
        });
        median.push(p);
    }
    (
        Series {
            name: name.into(),
            points: median,
        },
        Series {
            name: format!("{name} p99"),
            points: p99,
        },
    )
}

fn curve_thread_latency() -> Curve {
    let (a, b) = latency_series("keepwatch", thread_latency_keepwatch);
    let (c, d) = latency_series("crossbeam-channel", thread_latency_crossbeam);
    Curve {
        id: "latency-thread",
        title: "wake-to-run latency of a blocked OS thread (set → waiter runs)",
        x_label: "µs the waiter waited before the set",
        y_label: "ns, median and p99",
        series: vec![a, b, c, d],
    }
}

fn curve_task_latency() -> Curve {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = latency_series("keepwatch", |n, d| task_latency_keepwatch(&rt, n, d));
    let (c, d) = latency_series("tokio-watch", |n, d| task_latency_watch(&rt, n, d));
    Curve {
        id: "latency-task",
        title: "wake-to-run latency of a tokio task (1 worker; set from another thread)",
        x_label: "µs the waiter waited before the set",
        y_label: "ns, median and p99",
        series: vec![a, b, c, d],
    }
}

// ---------------------------------------------------------------------------------------

fn json(c: &Curve) -> String {
    let series = |s: &Series| {
        let pts = s
            .points
            .iter()
            .map(|p| format!("[{}, {:.2}, {:.2}, {}]", p.x, p.median, p.p99, p.samples))
            .collect::<Vec<_>>()
            .join(", ");
        format!("{{\"name\": \"{}\", \"points\": [{pts}]}}", s.name)
    };
    format!(
        "{{\"id\": \"{}\", \"title\": \"{}\", \"x\": \"{}\", \"y\": \"{}\", \
         \"points\": \"[x, median, p99, samples]\", \"series\": [\n  {}\n]}}\n",
        c.id,
        c.title,
        c.x_label,
        c.y_label,
        c.series
            .iter()
            .map(series)
            .collect::<Vec<_>>()
            .join(",\n  ")
    )
}

/// Measures one curve.
type CurveFn = fn() -> Curve;

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters curves by id.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all: [(&str, CurveFn); 6] = [
        ("set-eq-waits", curve_eq_waits),
        ("set-pred-waits", curve_pred_waits),
        ("set-subs", curve_subs),
        ("set-queued", curve_queued),
        ("latency-thread", curve_thread_latency),
        ("latency-task", curve_task_latency),
    ];
    let started = Instant::now();
    let dir = std::path::Path::new(
        &std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
    )
    .join("criterion/curves");
    let _ = std::fs::create_dir_all(&dir);
    for (id, run) in all {
        if !filter.is_empty() && !filter.iter().any(|f| id.contains(f.as_str())) {
            continue;
        }
        let t = Instant::now();
        let c = run();
        println!(
            "{} — {} ({:.1} s)",
            c.id,
            c.title,
            t.elapsed().as_secs_f64()
        );
        for s in &c.series {
            let pts = s
                .points
                .iter()
                .map(|p| format!("{}: {:.0}", p.x, p.median))
                .collect::<Vec<_>>()
                .join(", ");
            println!("  {:<24} {pts}", s.name);
        }
        let _ = std::fs::write(dir.join(format!("{}.json", c.id)), json(&c));
    }
    println!("curves: {:.1} s", started.elapsed().as_secs_f64());
}
