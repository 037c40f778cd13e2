//! The one loop that blocks an OS thread on a registration, shared by `Wait` and `Recv`: the
//! blocking finishers and the async ones end in the same poll, with a different sink.

use std::task::Poll;
use std::time::Instant;

use crate::loom::{park, park_timeout};
use crate::sink::Waiter;

/// A registration that can be polled for a thread or for a task.
pub(crate) trait Pollable {
    type Output;

    /// Returns the result if ready; otherwise registers `waiter` to be woken when it may be.
    fn poll_as(&mut self, waiter: Waiter<'_>) -> Poll<Self::Output>;
}

/// Blocks this thread until `registration` is ready, or until `deadline`: `None` then.
pub(crate) fn block_on<P: Pollable>(
    registration: &mut P,
    deadline: Option<Instant>,
) -> Option<P::Output> {
    loop {
        // Register first (inside `poll_as`, under the lock), then park: a wake that comes in
        // between leaves the unpark token set, so the park returns at once.
        if let Poll::Ready(output) = registration.poll_as(Waiter::Thread) {
            return Some(output);
        }
        match deadline {
            None => park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                park_timeout(deadline - now);
            }
        }
        // Parks can end spuriously, or for an earlier registration's wake: poll again.
    }
}

/// The deadline `timeout` from now; `None` (no deadline) if it is too far to represent.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
