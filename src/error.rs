//! The errors a wait or a subscription can end with.

use std::fmt;

/// Why a wait or a receive ended without a value.
///
/// # Examples
///
/// ```
/// use keepwatch::{Error, ValueWatcher};
///
/// let value = ValueWatcher::new(0);
/// let wait = value.wait_for(1);
/// value.close();
/// assert_eq!(wait.blocking(), Err(Error::Closed));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The value was closed (by [`close`](crate::ValueWatcher::close) or by dropping its last
    /// handle) before the wait matched, or the subscription has delivered everything queued
    /// before the close.
    Closed,
    /// The time given to a `timeout`, `blocking_timeout` or `blocking_deadline` ran out first.
    TimedOut,
    /// A bounded subscription fell behind and this many transitions were dropped for it; it
    /// resumes with the oldest transition still kept. The unbounded default never lags.
    Lagged(u64),
}

impl Error {
    /// `true` for [`Error::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(keepwatch::Error::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }

    /// `true` for [`Error::TimedOut`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(keepwatch::Error::TimedOut.is_timed_out());
    /// ```
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Error::TimedOut)
    }

    /// `true` for [`Error::Lagged`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(keepwatch::Error::Lagged(3).is_lagged());
    /// ```
    pub fn is_lagged(&self) -> bool {
        matches!(self, Error::Lagged(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => f.write_str("value closed"),
            Error::TimedOut => f.write_str("timed out"),
            Error::Lagged(n) => write!(f, "subscription lagged behind by {n} transitions"),
        }
    }
}

impl std::error::Error for Error {}
