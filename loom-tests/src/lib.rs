//! Helpers for the loom models of keepwatch in `tests/`: a model runner that reports how many
//! interleavings it explored and how long it took, and a counting waker for polling futures by
//! hand under loom.
//!
//! Everything here, and every model, exists only under `--cfg keepwatch_loom`; a plain build
//! of this package is empty. See `README.md` for the command.

#![cfg(keepwatch_loom)]
#![warn(missing_docs, rust_2018_idioms)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Notify;

/// Runs `model` under every interleaving loom explores (bounded by `LOOM_MAX_PREEMPTIONS` if
/// set), counting the executions, and prints `loom: <name>: <n> iterations in <t>s`.
pub fn model<F>(name: &str, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let iterations = Arc::new(StdAtomicUsize::new(0));
    let counter = iterations.clone();
    let start = Instant::now();
    loom::model::Builder::new().check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        model();
    });
    eprintln!(
        "loom: {name}: {} iterations in {:.2}s (LOOM_MAX_PREEMPTIONS={})",
        iterations.load(StdOrdering::Relaxed),
        start.elapsed().as_secs_f64(),
        std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "unbounded".into()),
    );
}

/// A waker that counts its wakes and signals a loom `Notify`, so a model can poll a future by
/// hand with a waker of its own, then block until *that* waker is woken.
///
/// It does not `unpark` a thread: loom treats an `unpark` of a thread blocked in `join` or on a
/// mutex as a bug (it wakes it there), while a real waker may be woken late, at any time.
#[derive(Debug)]
pub struct CountingWaker {
    wakes: AtomicUsize,
    notify: Notify,
}

impl CountingWaker {
    /// A new waker, and the handle to read its count.
    pub fn new() -> (Arc<CountingWaker>, Waker) {
        let inner = Arc::new(CountingWaker {
            wakes: AtomicUsize::new(0),
            notify: Notify::new(),
        });
        let waker = Waker::from(inner.clone());
        (inner, waker)
    }

    /// How many times it has been woken.
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.notify.notify();
    }
}

/// Polls `fut` once with `waker`.
pub fn poll_once<F: std::future::Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    std::pin::Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// Polls `fut` with the waker of `counter` until it is ready, blocking between polls until that
/// waker has been woken since the last poll. A wake that never comes is a loom deadlock.
pub fn drive<F: std::future::Future + Unpin>(
    fut: &mut F,
    counter: &CountingWaker,
    waker: &Waker,
) -> F::Output {
    loop {
        let seen = counter.wakes();
        if let Poll::Ready(out) = poll_once(fut, waker) {
            return out;
        }
        // Only a wake of *this* waker lets us poll again: a wake of an older waker of the
        // same thread (a stale registration) does not count.
        while counter.wakes() == seen {
            counter.notify.wait();
        }
    }
}

/// The prefix of every panic a model raises on purpose (a hostile waker or predicate).
pub const INTENDED: &str = "loom-tests: intended panic";

/// Installs (once per process) a panic hook that stays silent for the panics a model raises on
/// purpose (their message starts with [`INTENDED`]) and reports every other panic as the
/// default hook does, so a real failure is still explained.
pub fn quiet_intended_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !message.is_some_and(|m| m.starts_with(INTENDED)) {
                default(info);
            }
        }));
    });
}

/// A waker whose `wake` panics (after counting the call): a hostile task's waker.
#[derive(Debug)]
pub struct PanickingWaker {
    wakes: AtomicUsize,
}

impl PanickingWaker {
    /// A new waker, and the handle to read how many times it was called.
    pub fn new() -> (Arc<PanickingWaker>, Waker) {
        let inner = Arc::new(PanickingWaker {
            wakes: AtomicUsize::new(0),
        });
        let waker = Waker::from(inner.clone());
        (inner, waker)
    }

    /// How many times `wake` was called.
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        panic!("{INTENDED}: a waker");
    }
}
