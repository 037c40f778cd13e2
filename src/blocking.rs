//! The one loop that blocks an OS thread on a registration, and the finishers written once for
//! every kind of wait: `Wait` and `Recv` both end in the same poll, with a thread or a task as
//! the sink, and get their `blocking*` and `timeout` methods from one macro.

use std::task::Poll;
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

/// Spin steps before a park: step `s` spins `2^s` times, reading the hint after each step.
/// Under loom: one step, so the models see the spin path without exploring every load.
const SPIN_STEPS: u32 = if cfg!(keepwatch_loom) { 1 } else { 7 };

/// Yield steps after the spin, before the park: each gives the core away once and reads the
/// hint. A partner that runs on the same core (or was descheduled) gets to finish its half of
/// a hand-off; a park and an unpark cost several microseconds, a yield well under one.
const YIELD_STEPS: u32 = if cfg!(keepwatch_loom) { 0 } else { 4 };

/// Waits (bounded) for the hint to move from `seen`: `true` if it did.
#[cfg_attr(keepwatch_loom, allow(clippy::reversed_empty_ranges))] // no yield steps under loom
fn backoff<P: Pollable>(registration: &P, seen: usize) -> bool {
    for step in 0..SPIN_STEPS {
        for _ in 0..1u32 << step {
            spin_loop();
        }
        if registration.hint() != Some(seen) {
            return true;
        }
    }
    for _ in 0..YIELD_STEPS {
        yield_now();
        if registration.hint() != Some(seen) {
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
