//! A tokio runtime on a thread of its own, so that the mirror works from any thread and any
//! executor: etcd-client needs tokio, the mirror's users need not.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::Error;

pub(crate) struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl RuntimeThread {
    pub(crate) fn start(name: &str) -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Etcd(format!("cannot start a runtime: {e}")))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                // Drives every task spawned on `handle` until asked to stop; dropping the
                // runtime then cancels what is left (pending writes end with `Closed`).
                let _ = rt.block_on(stopped);
                rt.shutdown_background();
            })
            .map_err(|e| Error::Etcd(format!("cannot start a thread: {e}")))?;
        Ok(RuntimeThread {
            handle,
            stop: Mutex::new(Some(stop)),
        })
    }

    /// Runs `f` on the runtime; the returned future can be awaited on any executor.
    pub(crate) async fn run<F>(&self, f: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f).await.map_err(|_| Error::Closed)
    }

    pub(crate) fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle.spawn(f));
    }

    pub(crate) fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a future to completion on the calling thread (for the `*_blocking` methods).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
