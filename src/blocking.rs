//! The one loop that blocks an OS thread on a registration, and the finishers written once for
//! every kind of wait: `Wait` and `Recv` both end in the same poll, with a thread or a task as
//! the sink, and get their `blocking*` and `timeout` methods from one macro.

use std::task::Poll;
#[cfg(not(keepwatch_loom))]
use std::time::Duration;
use std::time::Instant;

use crate::loom::{park, park_timeout, spin_loop, yield_now};
use crate::sink::Waiter;

/// A registration that can be polled for a thread or for a task.
pub(crate) trait Pollable {
    type Output;

    /// Returns the result if ready; otherwise registers `waiter` to be woken when it may be.
    fn poll_as(&mut self, waiter: Waiter<'_>) -> Poll<Self::Output>;

    /// A number that changes when the registration may have become ready (the wait's ready
    /// flag, or the value's wake counter), read without a lock; `None` if there is none. A
    /// blocked thread spins on it before parking.
    fn hint(&self) -> Option<usize>;
}

/// How long a blocked thread spins (on the hint, with growing runs of `spin_loop`) before it
/// starts yielding. Measured in time, not iterations: a pause takes from a few to 150 cycles
/// depending on the CPU, so an iteration budget that suits one starves the other.
#[cfg(not(keepwatch_loom))]
const SPIN_FOR: Duration = Duration::from_micros(4);

/// How long a blocked thread backs off in all (spinning, then yielding the core, reading the
/// hint after each yield) before it registers and parks. A park and an unpark cost several
/// microseconds each, and tens on a virtual machine, while the partner of a hand-off is often
/// done within a few; yielding rather than spinning keeps the core for other work meanwhile.
#[cfg(not(keepwatch_loom))]
const BACKOFF_FOR: Duration = Duration::from_micros(20);

/// Waits (bounded) for the hint to move from `seen`: `true` if it did.
#[cfg(not(keepwatch_loom))]
fn backoff<P: Pollable>(registration: &P, seen: usize) -> bool {
    let start = Instant::now();
    let mut run = 1u32;
    loop {
        for _ in 0..run {
            spin_loop();
        }
        if registration.hint() != Some(seen) {
            return true;
        }
        run = (run * 2).min(64);
        if start.elapsed() >= SPIN_FOR {
            break;
        }
    }
    loop {
        yield_now();
        if registration.hint() != Some(seen) {
            return true;
        }
        if start.elapsed() >= BACKOFF_FOR {
            return false;
        }
    }
}

/// Under loom: one spin and one look (time means nothing to a model, and each load is a
/// branch to explore), so the models see the backoff path without exploring every iteration.
#[cfg(keepwatch_loom)]
fn backoff<P: Pollable>(registration: &P, seen: usize) -> bool {
    spin_loop();
    yield_now();
    registration.hint() != Some(seen)
}

/// Blocks this thread until `registration` is ready, or until `deadline`: `None` then.
pub(crate) fn block_on<P: Pollable>(
    registration: &mut P,
    deadline: Option<Instant>,
) -> Option<P::Output> {
    loop {
        // Read before the poll: a wake that completes this registration after the poll moves
        // the hint after this read.
        let seen = registration.hint();
        // First a look without registering: a thread that catches the result while spinning
        // never needs an unpark (and leaves no stale unpark token behind).
        if let Poll::Ready(output) = registration.poll_as(Waiter::Nobody) {
            return Some(output);
        }
        // Back off briefly on the hint; on a change, look again (the lock decides). At most one
        // backoff per park, so a deadline is still checked below.
        if let Some(seen) = seen {
            if backoff(registration, seen) {
                if let Poll::Ready(output) = registration.poll_as(Waiter::Nobody) {
                    return Some(output);
                }
            }
        }
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

/// The finishers of a wait-like type, written once: `blocking`, `blocking_timeout`,
/// `blocking_deadline` and `timeout`, all over its `Pollable` impl.
///
/// Arguments: the impl header in brackets, the output type, what one such wait is called in
/// the docs, then the four examples.
macro_rules! finishers {
    (
        [$($header:tt)*], $out:ty, $what:literal,
        $ex_blocking:literal, $ex_timeout:literal, $ex_deadline:literal, $ex_async:literal
    ) => {
        $($header)* {
            #[doc = concat!("Blocks this thread until the ", $what, " completes.")]
            ///
            /// Don't call it on an async runtime's worker thread: it blocks that thread.
            ///
            /// # Errors
            ///
            /// [`Error::Closed`](crate::Error::Closed) if the value closes first (see
            /// [Close](crate#close)).
            ///
            /// # Panics
            ///
            /// With the original payload, if the wait's predicate panicked; if it was already
            /// completed by a poll.
            ///
            /// # Examples
            ///
            #[doc = $ex_blocking]
            pub fn blocking(mut self) -> $out {
                $crate::blocking::block_on(&mut self, None).expect("no deadline")
            }

            #[doc = concat!("As `blocking`, giving up with [`Error::TimedOut`](crate::Error::TimedOut) after `timeout`; the ", $what, " is deregistered then.")]
            ///
            /// # Errors
            ///
            /// [`Error::TimedOut`](crate::Error::TimedOut) once `timeout` has passed, and as
            /// for `blocking`.
            ///
            /// # Panics
            ///
            /// As `blocking`.
            ///
            /// # Examples
            ///
            #[doc = $ex_timeout]
            pub fn blocking_timeout(self, timeout: std::time::Duration) -> $out {
                match $crate::blocking::deadline_after(timeout) {
                    Some(deadline) => self.blocking_deadline(deadline),
                    None => self.blocking(),
                }
            }

            #[doc = concat!("As `blocking`, giving up with [`Error::TimedOut`](crate::Error::TimedOut) at `deadline`; the ", $what, " is deregistered then.")]
            ///
            /// # Errors
            ///
            /// [`Error::TimedOut`](crate::Error::TimedOut) at `deadline`, and as for
            /// `blocking`.
            ///
            /// # Panics
            ///
            /// As `blocking`.
            ///
            /// # Examples
            ///
            #[doc = $ex_deadline]
            pub fn blocking_deadline(mut self, deadline: std::time::Instant) -> $out {
                $crate::blocking::block_on(&mut self, Some(deadline))
                    .unwrap_or(Err($crate::Error::TimedOut))
            }

            #[doc = concat!("The ", $what, " with a time limit, as a future that works on any executor: it completes with [`Error::TimedOut`](crate::Error::TimedOut) after `timeout` (see [`Timeout`](crate::Timeout)).")]
            ///
            /// # Cancel safety
            ///
            /// Dropping the returned future deregisters the inner one, as dropping it would.
            ///
            /// # Examples
            ///
            #[doc = $ex_async]
            pub fn timeout(self, timeout: std::time::Duration) -> $crate::Timeout<Self> {
                $crate::Timeout::new(self, timeout)
            }
        }
    };
}

pub(crate) use finishers;
