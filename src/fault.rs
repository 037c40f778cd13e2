//! Panics in user code: catching them, keeping the first of a series, and getting rid of
//! payloads without letting a second panic escape.
//!
//! The rule keepwatch follows: a series of user calls that must all happen (wakes, drops,
//! callbacks) runs every call even when one panics; afterwards the first panic is re-raised to
//! the caller where the documentation says so, or discarded, and never re-raised on a thread
//! that is already unwinding (a second panic would abort the process).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// A panic's payload, as `catch_unwind` hands it over.
pub(crate) type Payload = Box<dyn std::any::Any + Send + 'static>;

/// Gets rid of a payload that will not be re-raised. Its own `Drop` is user code too: if that
/// panics, the second payload is forgotten (leaked) rather than dropped, so nothing escapes.
pub(crate) fn discard(payload: Payload) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Runs `f`, containing a panic: it is reported by the panic hook, as every panic is, and goes
/// no further.
pub(crate) fn contain(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        discard(payload);
    }
}

/// The first panic of a series of user calls that must all run.
#[derive(Default)]
pub(crate) struct Panics(Option<Payload>);

impl Panics {
    /// Runs `f`; if it panics, keeps the payload (the first) or discards it (a later one).
    pub(crate) fn run(&mut self, f: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            self.keep(payload);
        }
    }

    /// Keeps `payload` if it is the first.
    pub(crate) fn keep(&mut self, payload: Payload) {
        match self.0 {
            None => self.0 = Some(payload),
            Some(_) => discard(payload),
        }
    }

    /// Discards the panic kept, if any (a more important one is on its way).
    pub(crate) fn discard(self) {
        if let Some(payload) = self.0 {
            discard(payload);
        }
    }

    /// Re-raises the first panic, unless this thread is already unwinding: then it is
    /// discarded, as a second panic would abort.
    #[inline]
    pub(crate) fn raise(self) {
        if let Some(payload) = self.0 {
            raise_or_discard(payload);
        }
    }
}

/// [`Panics::raise`]'s rare path, kept out of line.
#[cold]
fn raise_or_discard(payload: Payload) {
    if std::thread::panicking() {
        discard(payload);
    } else {
        resume_unwind(payload);
    }
}

/// Drops `value` (user code may run), then re-raises its panic, if any, unless this thread is
/// already unwinding. For the leftovers a handle drops on its way out.
pub(crate) fn drop_then_raise<V>(value: V) {
    let mut panics = Panics::default();
    panics.run(move || drop(value));
    panics.raise();
}
