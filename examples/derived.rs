//! Derived values that lose nothing.
//!
//! A connection's detailed state is mapped to a coarse `Phase`, and the phase is zipped with a
//! config value. A blocked OS thread waits for the phase `Serving`; an async task waits for
//! "serving with at least 100 streams allowed". The connection is serving for only an instant:
//! it moves on to draining and closed before either waiter runs. Both still wake, with the
//! value they waited for.
//!
//! Nothing here sleeps to order events: the waits are registered before the first `set`, and
//! that is all keepwatch needs.
//!
//! ```sh
//! cargo run --example derived
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keepwatch::{ValueReader, ValueWatcher};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Conn {
    Connecting,
    Handshaking,
    Ready,
    Draining,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Starting,
    Serving,
    Stopping,
}

impl Conn {
    fn phase(&self) -> Phase {
        match self {
            Conn::Connecting | Conn::Handshaking => Phase::Starting,
            Conn::Ready => Phase::Serving,
            Conn::Draining | Conn::Closed => Phase::Stopping,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Config {
    max_streams: u32,
}

fn main() {
    let started = Instant::now();
    let conn = ValueWatcher::new(Conn::Connecting);
    let config = ValueWatcher::new(Config { max_streams: 10 });

    // Derived values: read-only, kept up to date by every `set` of their sources.
    let phase: ValueReader<Phase> = conn.map(Conn::phase);
    let limit: ValueReader<u32> = config.map(|c| c.max_streams);
    let serving: ValueReader<(Phase, u32)> = phase.zip(&limit);

    // A log of the derived pair, written by its callbacks as transitions happen.
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = log.clone();
    let _log = serving.on_change(move |old, new| {
        lines
            .lock()
            .unwrap()
            .push(format!("    {old:?} -> {new:?}"));
    });

    // Registered now: nothing from here on can be missed.
    let phase_serving = phase.wait_for(Phase::Serving);
    let big_and_serving = serving.wait_until(|(p, max)| *p == Phase::Serving && *max >= 100);

    // A plain OS thread blocks on the phase.
    let thread_waiter = std::thread::spawn(move || {
        let got = phase_serving.blocking_timeout(Duration::from_secs(5));
        format!("thread (blocking): phase became {got:?}")
    });

    // A tokio task awaits the zipped condition.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let task_waiter = std::thread::spawn(move || {
        runtime.block_on(async move {
            let task = tokio::spawn(async move {
                let got = big_and_serving.timeout(Duration::from_secs(5)).await;
                format!("task (tokio):      serving with >= 100 streams: {got:?}")
            });
            task.await.expect("the task")
        })
    });

    // The connection's whole life, set as fast as it goes, with a config change while it is
    // serving. Serving holds only between the two `set`s around the config change.
    conn.set(Conn::Handshaking);
    conn.set(Conn::Ready);
    config.set(Config { max_streams: 100 });
    conn.set(Conn::Draining);
    conn.set(Conn::Closed);
    drop(conn);
    drop(config);

    println!("The connection went Connecting -> Handshaking -> Ready -> Draining -> Closed,");
    println!("and max_streams 10 -> 100 while it was Ready: set in a row, waiting for no one.");
    println!();
    println!(
        "Now: phase = {:?}, serving = {:?}",
        phase.get(),
        serving.get()
    );
    println!("(a latest-value-only watch would show only that)");
    println!();
    println!("{}", thread_waiter.join().expect("the thread"));
    println!("{}", task_waiter.join().expect("the task's thread"));
    println!();
    println!("Every value the derived pair (phase, max_streams) took, in order:");
    for line in log.lock().unwrap().iter() {
        println!("{line}");
    }
    println!();
    println!(
        "The derived values closed with their sources: phase closed = {}, pair closed = {}.",
        phase.is_closed(),
        serving.is_closed()
    );
    println!("Done in {:.1} ms.", started.elapsed().as_secs_f64() * 1e3);
}
