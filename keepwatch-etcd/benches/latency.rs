//! Set-to-mirror latency across two clients, against a bare etcd-client watch doing the
//! same, and throughput of transitions per second through one key.
//!
//! ```sh
//! scripts/etcd.sh start
//! cargo bench -p keepwatch-etcd            # about 10 s; KW_BENCH_N=… to change the sample count
//! ```
//!
//! Each figure is measured against the same etcd on loopback, one after the other.
use std::time::{Duration, Instant};

use etcd_client::{Client, WatchOptions};
use keepwatch_etcd::{Mirror, Options, Status};

#[path = "../tests/common/mod.rs"]
mod common;

const BOUND: Duration = Duration::from_secs(30);

fn endpoint() -> String {
    let e = std::env::var("KEEPWATCH_ETCD_ENDPOINT")
        .ok()
        .or_else(|| std::fs::read_to_string("/tmp/keepwatch-etcd/endpoint").ok())
        .map(|s| s.trim().to_string());
    e.expect("NO ETCD: set KEEPWATCH_ETCD_ENDPOINT or run `scripts/etcd.sh start`")
}

fn key(name: &str) -> String {
    format!("/keepwatch-bench/{name}/{}", std::process::id())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    println!(
        "{what:<58} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    (p50, p99)
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("bench step timed out")
}

/// keepwatch-etcd: client A's `set`, until client B's mirror has the value.
async fn mirror_latency(endpoint: &str, n: u64) -> Vec<Duration> {
    let key = key("latency-mirror");
    let a: Mirror<u64> = Mirror::open_with(&[endpoint], key.as_str(), Options::new())
        .await
        .unwrap();
    let b: Mirror<u64> = Mirror::open_with(&[endpoint], key.as_str(), Options::new())
        .await
        .unwrap();
    let mut samples = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let seen = b.wait_for_value(i);
        let start = Instant::now();
        let arrived = async {
            seen.await.unwrap();
            start.elapsed()
        };
        let (latency, written) = bounded(async { tokio::join!(arrived, a.set(i)) }).await;
        written.unwrap();
        samples.push(latency);
    }
    samples
}

/// keepwatch-etcd: how long `set` takes to return (a guarded transaction, then the writer's
/// own mirror showing the write).
async fn set_round_trip(endpoint: &str, n: u64) -> Vec<Duration> {
    let a: Mirror<u64> = Mirror::open(&[endpoint], key("set-rtt")).await.unwrap();
    let mut samples = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let start = Instant::now();
        bounded(a.set(i)).await.unwrap();
        samples.push(start.elapsed());
    }
    samples
}

/// Bare etcd-client: client A's `put`, until client B's watch stream delivers the event.
async fn bare_latency(endpoint: &str, n: u64) -> Vec<Duration> {
    let key = key("latency-bare");
    let mut a = Client::connect([endpoint], None).await.unwrap();
    let mut b = Client::connect([endpoint], None).await.unwrap();
    let mut stream = b.watch(key.as_str(), None).await.unwrap();
    let created = bounded(stream.message()).await.unwrap().unwrap();
    assert!(created.created());
    let mut samples = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let start = Instant::now();
        let arrived = async {
            loop {
                let r = stream.message().await.unwrap().unwrap();
                if r.events().iter().any(|e| {
                    e.kv()
                        .is_some_and(|kv| kv.value() == i.to_string().as_bytes())
                }) {
                    return start.elapsed();
                }
            }
        };
        let (latency, put) =
            bounded(async { tokio::join!(arrived, a.put(key.as_str(), i.to_string(), None)) })
                .await;
        put.unwrap();
        samples.push(latency);
    }
    samples
}

/// `writers` raw clients put `total` values into one key as fast as they can, while a bare
/// watch and a mirror observe the same key side by side; returns how long each observer took
/// to have every value (from the first put), and how long the puts took alone.
async fn throughput(endpoint: &str, writers: u64, total: u64) -> (Duration, Duration, Duration) {
    let key = key("throughput");
    let observer: Mirror<u64> = Mirror::open(&[endpoint], key.as_str()).await.unwrap();
    let mut sub = observer.subscribe();
    let mut b = Client::connect([endpoint], None).await.unwrap();
    let mut stream = b
        .watch(key.as_str(), Some(WatchOptions::new()))
        .await
        .unwrap();
    bounded(stream.message()).await.unwrap().unwrap();
    let start = Instant::now();
    let writing = spawn_writers(endpoint, &key, writers, total).await;
    let mirror = tokio::spawn(async move {
        for _ in 0..total {
            sub.recv().timeout(BOUND).await.unwrap();
        }
        start.elapsed()
    });
    let bare = tokio::spawn(async move {
        let mut got = 0;
        while got < total {
            let r = bounded(stream.message()).await.unwrap().unwrap();
            got += r.events().len() as u64;
        }
        start.elapsed()
    });
    let puts = bounded(writing).await.unwrap();
    (
        bounded(bare).await.unwrap(),
        bounded(mirror).await.unwrap(),
        puts,
    )
}

/// Delivery without etcd's commit rate in the way: `total` revisions are already in etcd's
/// history, and each observer catches up on them. The bare watch starts from the first one;
/// the mirror, cut off by a loopback proxy while they were written, resumes from its last
/// revision when the proxy lets it through again. Returns the time each took from the start
/// of its catch-up (for the mirror: including re-establishing its connection).
async fn replay(endpoint: &str, writers: u64, total: u64) -> (Duration, Duration) {
    let key = key("replay");
    let proxy = common::Proxy::start(endpoint).await;
    let options =
        Options::new().reconnect_backoff(Duration::from_millis(1), Duration::from_millis(5));
    let mirror: Mirror<u64> = Mirror::open_with(&[proxy.endpoint.as_str()], key.as_str(), options)
        .await
        .unwrap();
    let mut sub = mirror.subscribe();
    proxy.cut();
    bounded(mirror.status_reader().wait_until(|s| *s != Status::Live))
        .await
        .unwrap();
    let first = {
        let mut c = Client::connect([endpoint], None).await.unwrap();
        c.put(key.as_str(), "0", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision()
    };
    bounded(spawn_writers(endpoint, &key, writers, total - 1).await)
        .await
        .unwrap();

    let mut b = Client::connect([endpoint], None).await.unwrap();
    let start = Instant::now();
    let mut stream = b
        .watch(
            key.as_str(),
            Some(WatchOptions::new().with_start_revision(first)),
        )
        .await
        .unwrap();
    let mut got = 0;
    while got < total {
        let r = bounded(stream.message()).await.unwrap().unwrap();
        got += r.events().len() as u64;
    }
    let bare = start.elapsed();

    let start = Instant::now();
    proxy.restore();
    for _ in 0..total {
        sub.recv().timeout(BOUND).await.unwrap();
    }
    (bare, start.elapsed())
}

async fn spawn_writers(
    endpoint: &str,
    key: &str,
    writers: u64,
    total: u64,
) -> tokio::task::JoinHandle<Duration> {
    let mut clients = Vec::new();
    for _ in 0..writers {
        clients.push(Client::connect([endpoint], None).await.unwrap());
    }
    let key = key.to_string();
    tokio::spawn(async move {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (w, mut client) in clients.into_iter().enumerate() {
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = w as u64;
                while i < total {
                    client
                        .put(key.as_str(), (i + 1).to_string(), None)
                        .await
                        .unwrap();
                    i += writers;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        start.elapsed()
    })
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("KW_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 20 } else { 500 });
    let total = if quick { 200 } else { 4000 };
    let writers = 8;
    let endpoint = endpoint();
    println!("keepwatch-etcd benchmark against etcd at {endpoint}");
    println!("set-to-mirror latency across two clients (A writes, B observes):");
    // Warm up both paths (connections, allocations) before measuring.
    mirror_latency(&endpoint, 20).await;
    bare_latency(&endpoint, 20).await;
    let bare = report(
        "  bare etcd-client: A put -> B watch event",
        bare_latency(&endpoint, n).await,
    );
    let mirror = report(
        "  keepwatch-etcd: A set -> B mirror has the value",
        mirror_latency(&endpoint, n).await,
    );
    report(
        "  keepwatch-etcd: A set returns (txn + A's mirror shows it)",
        set_round_trip(&endpoint, n).await,
    );
    println!(
        "  mirror overhead over the bare watch: p50 {:+.3} ms, p99 {:+.3} ms",
        (mirror.0.as_secs_f64() - bare.0.as_secs_f64()) * 1e3,
        (mirror.1.as_secs_f64() - bare.1.as_secs_f64()) * 1e3
    );
    println!("throughput through one key ({total} puts by {writers} concurrent raw clients, both observers at once):");
    let (bare, mirror, puts) = throughput(&endpoint, writers, total).await;
    println!("  puts committed by etcd:     {:>8.0}/s", rate(total, puts));
    println!(
        "  bare etcd-client watch:     {:>8.0} events/s delivered",
        rate(total, bare)
    );
    println!(
        "  keepwatch-etcd mirror:      {:>8.0} transitions/s delivered",
        rate(total, mirror)
    );
    let total = if quick { 500 } else { 10_000 };
    println!("catching up on {total} revisions already in etcd's history (delivery alone):");
    let (bare, mirror) = replay(&endpoint, writers, total).await;
    println!(
        "  bare etcd-client watch:     {:>8.0} events/s",
        rate(total, bare)
    );
    println!(
        "  keepwatch-etcd mirror:      {:>8.0} transitions/s (including its reconnect)",
        rate(total, mirror)
    );
}
