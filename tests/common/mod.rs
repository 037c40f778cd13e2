//! Shared helpers for the integration tests: a watchdog, a counting waker, panic helpers and
//! runners for every executor the tests exercise.
//!
//! Every test body runs under [`watchdog`], so a deadlock or a lost wake-up fails the test
//! instead of hanging the suite.

#![allow(dead_code, unreachable_pub)]

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

/// How long something that is expected to happen may take before the test calls it a hang.
pub const LONG: Duration = Duration::from_secs(10);

/// How long a wait that is expected to time out waits.
pub const SHORT: Duration = Duration::from_millis(30);

/// The default budget of a whole test body.
pub const WATCHDOG_SECS: u64 = 30;

/// Runs `f` on its own thread and returns its result; panics if `f` has not finished after
/// `secs` seconds (the thread is then leaked: the test has failed anyway). A panic in `f`
/// is resumed on the caller's thread with its original payload.
pub fn with_watchdog<R, F>(secs: u64, f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let name = thread::current().name().unwrap_or("test").to_owned();
    thread::Builder::new()
        .name(format!("{name} (watched)"))
        .spawn(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("failed to spawn the watched thread");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!(
            "watchdog: the test body did not finish within {secs}s (deadlock or lost wake-up?)"
        ),
    }
}

/// [`with_watchdog`] with the default budget.
pub fn watchdog<R, F>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    with_watchdog(WATCHDOG_SECS, f)
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Runs `f`, returning `Err(message)` if it panicked.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

/// Runs `f` and returns the message of the panic it must raise.
#[track_caller]
pub fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match catch(f) {
        Ok(_) => panic!("expected a panic, but the call returned normally"),
        Err(message) => message,
    }
}

/// Whether a panic message mentions re-entrancy (any spelling: re-entrant, reentrancy,
/// re-entered, recursive, …).
pub fn mentions_reentrancy(message: &str) -> bool {
    let m = message.to_lowercase().replace(['-', ' '], "");
    m.contains("reentr") || m.contains("reenter") || m.contains("recursi")
}

/// Counts how often its waker was woken.
#[derive(Debug, Default)]
pub struct WakeCounter {
    wakes: AtomicUsize,
}

impl WakeCounter {
    /// Wakes so far.
    pub fn count(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that counts its wakes, and the counter.
pub fn counting_waker() -> (Arc<WakeCounter>, Waker) {
    let counter = Arc::new(WakeCounter::default());
    let waker = Waker::from(Arc::clone(&counter));
    (counter, waker)
}

/// Polls `fut` once with `waker`.
pub fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// Yields to the executor once (executor-agnostic).
pub async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
    YieldNow(false).await
}

/// A boxed task for [`Exec::run_tasks`].
pub type Task<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Boxes a future as a [`Task`].
pub fn task<T>(fut: impl Future<Output = T> + Send + 'static) -> Task<T> {
    Box::pin(fut)
}

/// A tokio runtime with one thread (the caller's).
pub fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio current-thread runtime")
}

/// A tokio runtime with two worker threads.
pub fn tokio_multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio multi-thread runtime")
}

/// Awaits a tokio join handle, resuming a task's panic with its original payload.
pub async fn join_tokio<T>(handle: tokio::task::JoinHandle<T>) -> T {
    match handle.await {
        Ok(value) => value,
        Err(err) if err.is_panic() => panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("tokio task failed: {err}"),
    }
}

/// The executors the tests run futures on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exec {
    /// `tokio` current-thread runtime.
    TokioCurrentThread,
    /// `tokio` multi-thread runtime with 2 workers (futures run on the workers).
    TokioMultiThread,
    /// `futures::executor::block_on` / `LocalPool`.
    Futures,
    /// `smol::block_on` / `smol::spawn`.
    Smol,
    /// An `async_executor::Executor` run by the caller and one helper thread.
    AsyncExecutor,
}

impl Exec {
    /// Every executor.
    pub const ALL: [Exec; 5] = [
        Exec::TokioCurrentThread,
        Exec::TokioMultiThread,
        Exec::Futures,
        Exec::Smol,
        Exec::AsyncExecutor,
    ];

    /// Runs one future to completion on this executor.
    pub fn block_on<F>(self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Exec::TokioCurrentThread => tokio_current_thread().block_on(fut),
            Exec::TokioMultiThread => {
                let rt = tokio_multi_thread();
                let handle = rt.spawn(fut);
                rt.block_on(join_tokio(handle))
            }
            Exec::Futures => futures::executor::block_on(fut),
            Exec::Smol => smol::block_on(fut),
            Exec::AsyncExecutor => self.run_tasks(vec![task(fut)]).pop().expect("one result"),
        }
    }

    /// Runs every future as its own spawned task on this executor; returns their outputs in
    /// the order given. A task's panic is resumed on the caller's thread.
    pub fn run_tasks<T: Send + 'static>(self, tasks: Vec<Task<T>>) -> Vec<T> {
        match self {
            Exec::TokioCurrentThread | Exec::TokioMultiThread => {
                let rt = if self == Exec::TokioCurrentThread {
                    tokio_current_thread()
                } else {
                    tokio_multi_thread()
                };
                rt.block_on(async {
                    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
                    let mut out = Vec::with_capacity(handles.len());
                    for handle in handles {
                        out.push(join_tokio(handle).await);
                    }
                    out
                })
            }
            Exec::Futures => {
                use futures::task::LocalSpawnExt;
                let slots: Arc<Mutex<Vec<Option<T>>>> =
                    Arc::new(Mutex::new((0..tasks.len()).map(|_| None).collect()));
                let mut pool = futures::executor::LocalPool::new();
                let spawner = pool.spawner();
                for (i, t) in tasks.into_iter().enumerate() {
                    let slots = Arc::clone(&slots);
                    spawner
                        .spawn_local(async move {
                            let value = t.await;
                            slots.lock().unwrap()[i] = Some(value);
                        })
                        .expect("spawn on LocalPool");
                }
                pool.run();
                let mut slots = slots.lock().unwrap();
                slots
                    .iter_mut()
                    .map(|slot| slot.take().expect("every task completed"))
                    .collect()
            }
            Exec::Smol => smol::block_on(async {
                let handles: Vec<_> = tasks.into_iter().map(smol::spawn).collect();
                let mut out = Vec::with_capacity(handles.len());
                for handle in handles {
                    out.push(handle.await);
                }
                out
            }),
            Exec::AsyncExecutor => {
                let ex = async_executor::Executor::new();
                let (stop_tx, stop_rx) = smol::channel::unbounded::<()>();
                thread::scope(|s| {
                    s.spawn(|| smol::block_on(ex.run(stop_rx.recv())));
                    let handles: Vec<_> = tasks.into_iter().map(|t| ex.spawn(t)).collect();
                    let out = smol::block_on(ex.run(async {
                        let mut out = Vec::with_capacity(handles.len());
                        for handle in handles {
                            out.push(handle.await);
                        }
                        out
                    }));
                    drop(stop_tx);
                    out
                })
            }
        }
    }
}
