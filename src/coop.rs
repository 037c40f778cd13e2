//! Cooperative scheduling: with the `tokio` feature, a wait or a receive that is ready at once
//! spends a unit of the tokio task's budget, so a loop over a long queue yields to the task's
//! siblings as tokio's own primitives do. Without the feature (or outside a tokio runtime) it
//! costs nothing and never yields.

use std::task::{Context, Poll};

/// Permission to make progress in this poll; tell it when progress was made.
#[derive(Debug)]
pub(crate) struct Budget {
    #[cfg(feature = "tokio")]
    restore: tokio::task::coop::RestoreOnPending,
}

impl Budget {
    /// The poll completed: the unit of budget stays spent.
    #[inline]
    pub(crate) fn made_progress(&self) {
        #[cfg(feature = "tokio")]
        self.restore.made_progress();
    }
}

/// Takes a unit of the task's budget, or `Pending` (with the task woken to run again later) if
/// it has used up its budget.
#[inline]
pub(crate) fn poll_budget(cx: &mut Context<'_>) -> Poll<Budget> {
    #[cfg(feature = "tokio")]
    {
        tokio::task::coop::poll_proceed(cx).map(|restore| Budget { restore })
    }
    #[cfg(not(feature = "tokio"))]
    {
        let _ = cx;
        Poll::Ready(Budget {})
    }
}
