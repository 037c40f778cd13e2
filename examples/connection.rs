//! A connection state machine watched three ways at once: a drain handler on an async task
//! (tokio), a monitor on a plain OS thread, and a logger callback.
//!
//! The connection goes `Closing` and `Closed` in the same instant (two sets back to back), and
//! still every handler sees what it waits for: no transition is ever lost.
//!
//! Run with `cargo run --example connection`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use keepwatch::{Error, ValueWatcher};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    Disconnected,
    Connecting,
    Connected,
    Closing,
    Closed,
}

/// Every wait in this example is bounded: if something were lost, it would fail, not hang.
const LIMIT: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let state = ValueWatcher::new(Conn::Disconnected);

    // The logger: a callback, run on the setting thread, in transition order. It counts
    // versions itself: each call is exactly the next transition.
    let logged = Arc::new(AtomicUsize::new(0));
    let _logger = {
        let logged = Arc::clone(&logged);
        let mut version = state.version();
        state.on_change(move |old, new| {
            version += 1;
            logged.fetch_add(1, Ordering::SeqCst);
            println!("[logger]  {old:?} -> {new:?} (v{version})");
        })
    };

    // The monitor: a plain OS thread reading a subscription, which sees every transition made
    // after `subscribe()`, in order, and ends once the value is closed and drained.
    let mut feed = state.subscribe();
    println!("[monitor] watching, starting from {:?}", feed.initial());
    let monitor = thread::spawn(move || -> Result<usize, Error> {
        let mut seen = 0;
        loop {
            match feed.recv().blocking_timeout(LIMIT) {
                Ok(t) => {
                    seen += 1;
                    println!("[monitor] v{}: {:?} -> {:?}", t.version, t.old, t.new);
                }
                Err(Error::Closed) => {
                    println!("[monitor] the connection is gone; saw {seen} transitions");
                    return Ok(seen);
                }
                Err(other) => return Err(other),
            }
        }
    });

    // The drain handler: an async task waiting for `Closing`. The wait is registered here,
    // when it is created, so nothing between now and its first poll is missed.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let closing = state.wait_for(Conn::Closing);
    let weak = state.downgrade(); // a handle that does not keep the value open
    let drain = runtime.spawn(async move {
        let seen = closing.timeout(LIMIT).await?;
        let now = weak.upgrade().map(|state| state.get());
        let now = now.map_or_else(|| "gone".to_owned(), |s| format!("{s:?}"));
        println!("[drain]   saw {seen:?} (the state is {now} by now): flushing 3 queued writes");
        Ok::<_, Error>(seen)
    });

    // The connection's life, from this thread.
    assert!(state.set(Conn::Connecting));
    assert!(state.set(Conn::Connected));
    println!("[main]    connected; now shutting down in one go");
    assert!(state.set(Conn::Closing)); // the same instant:
    assert!(state.set(Conn::Closed)); // Closing is already history

    let drained = runtime.block_on(drain)??;
    let (last, version) = (state.get(), state.version());
    drop(state); // the last handle: the value closes and the monitor's feed ends
    let monitored = monitor
        .join()
        .map_err(|_| "the monitor thread panicked")??;

    println!(
        "summary: {version} transitions ending in {last:?}; logger saw {}, monitor saw {monitored}, \
         drain saw {drained:?} although the state had moved on",
        logged.load(Ordering::SeqCst),
    );
    Ok(())
}
