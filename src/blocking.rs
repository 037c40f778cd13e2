//! The one loop that blocks an OS thread on a registration, shared by `Wait` and `Recv`: the
//! blocking finishers and the async ones end in the same poll, with a different sink.

use std::task::Poll;
use std::time::Instant;

use crate::loom::{park, park_timeout, spin_loop};
use crate::sink::Waiter;

/// A registration that can be polled for a thread or for a task.
pub(crate) trait Pollable {
    type Output;

    /// Returns the result if ready; otherwise registers `waiter` to be woken when it may be.
    fn poll_as(&mut self, waiter: Waiter<'_>) -> Poll<Self::Output>;

    /// The value's wake counter (`Shared::epoch`), if a blocked thread may spin on it before
    /// parking. It changes after every critical section that woke someone.
    fn epoch(&self) -> Option<usize> {
        None
    }
}

/// Steps of the bounded spin before a park: step `s` spins `2^s` times (127 `spin_loop`
/// hints in all, about 0.1 to 3 µs depending on the CPU's pause latency), reading one atomic
/// (never the lock) after each step. Like the spin half of crossbeam's `Backoff`, for the same
/// reason: a park and unpark costs about 5 to 10 µs, while the partner a ping-pong waits for is
/// often done within a microsecond. No `yield_now` steps: on a busy machine a yield hands the
/// core to another process for a whole time slice (measured: 2.5× slower round trips under
/// load), so the spin stays short and then parks. Under loom: one step, so the models see
/// the spin path without exploring 127 loads.
const SPIN_STEPS: u32 = if cfg!(keepwatch_loom) { 1 } else { 7 };

/// Spins (bounded) until the wake counter moves from `seen`: `true` if it did.
fn spin_until_changed<P: Pollable>(registration: &P, seen: usize) -> bool {
    for step in 0..SPIN_STEPS {
        for _ in 0..1u32 << step {
            spin_loop();
        }
        if registration.epoch() != Some(seen) {
            return true;
        }
    }
    false
}

/// Blocks this thread until `registration` is ready, or until `deadline`: `None` then.
pub(crate) fn block_on<P: Pollable>(
    registration: &mut P,
    deadline: Option<Instant>,
) -> Option<P::Output> {
    loop {
        // Read before the poll: a wake that completes this registration after the poll moves
        // the counter after this read.
        let seen = registration.epoch();
        // Register first (inside `poll_as`, under the lock), then park: a wake that comes in
        // between leaves the unpark token set, so the park returns at once.
        if let Poll::Ready(output) = registration.poll_as(Waiter::Thread) {
            return Some(output);
        }
        // Spin briefly on the counter before parking; on a change, poll once more (the lock
        // decides). At most one spin per park, so a deadline is still checked below. A wake
        // that lands during the spin leaves an unpark token: a later park returns at once and
        // this loop (or the next blocking call's) polls again, as after any spurious wake-up.
        if let Some(seen) = seen {
            if spin_until_changed(registration, seen) {
                if let Poll::Ready(output) = registration.poll_as(Waiter::Thread) {
                    return Some(output);
                }
            }
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
        // MUTANT (loom-tests/mutants.sh): trusts the wake-up instead of polling again in the
        // loop; a stale unpark then ends a blocking wait with nothing.
        #[cfg(keepwatch_mutant = "skip_recheck_after_park")]
        if deadline.is_none() {
            return match registration.poll_as(Waiter::Nobody) {
                Poll::Ready(output) => Some(output),
                Poll::Pending => None,
            };
        }
        // Parks can end spuriously, or for an earlier registration's wake: poll again.
    }
}

/// The deadline `timeout` from now; `None` (no deadline) if it is too far to represent.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
