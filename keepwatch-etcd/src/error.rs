//! The crate's one error type.

use std::fmt;

/// What went wrong in opening a mirror or writing through it.
///
/// Reading and waiting never return this type: they are keepwatch's own methods and return
/// [`keepwatch::Error`] (`Closed`, `TimedOut`, `Lagged`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The mirror is closed (by [`Mirror::close`](crate::Mirror::close) or by dropping its
    /// last handle): nothing was sent to etcd. (A write already in flight when the mirror
    /// closed also ends with `Closed`; its transaction may or may not have committed.)
    Closed,
    /// etcd could not be reached, or did not answer, within the request timeout
    /// ([`Options::timeout`](crate::Options::timeout)). For a write this means the outcome is
    /// unknown: etcd may have applied it, and if it did the mirror shows it once connected.
    Unavailable(String),
    /// etcd answered with an error (for example a request it rejects).
    Etcd(String),
    /// The new value could not be encoded as JSON.
    Encode(String),
    /// A conditional write lost the race to other writers this many times in a row and gave
    /// up (see [`Options::max_attempts`](crate::Options::max_attempts)). Nothing was written.
    Contention {
        /// How many guarded transactions were tried.
        attempts: u32,
    },
    /// The write was committed at `revision`, but the mirror did not receive that revision
    /// within the request timeout (the watch is reconnecting). The write is durable; the
    /// mirror will show it once the watch resumes.
    Unmirrored {
        /// The etcd revision of the committed write.
        revision: i64,
    },
    /// An argument was unusable: an empty key, no endpoint, or a malformed endpoint URL.
    InvalidArgument(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => f.write_str("the etcd mirror is closed"),
            Error::Unavailable(why) => write!(f, "etcd is unavailable: {why}"),
            Error::Etcd(why) => write!(f, "etcd rejected the request: {why}"),
            Error::Encode(why) => write!(f, "the value could not be encoded: {why}"),
            Error::Contention { attempts } => {
                write!(f, "gave up after {attempts} conflicting transactions")
            }
            Error::Unmirrored { revision } => write!(
                f,
                "the write was committed at revision {revision} but the mirror has not seen it yet"
            ),
            Error::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Whether this is [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }

    /// Whether this is [`Error::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    pub(crate) fn from_etcd(e: etcd_client::Error) -> Error {
        use etcd_client::Error as E;
        match e {
            E::GRpcStatus(status) => {
                use tonic_code::*;
                let code = status.code() as i32;
                if code == UNAVAILABLE || code == DEADLINE_EXCEEDED || code == UNKNOWN_TRANSPORT {
                    Error::Unavailable(status.message().to_string())
                } else {
                    Error::Etcd(format!("{:?}: {}", status.code(), status.message()))
                }
            }
            E::TransportError(t) => Error::Unavailable(t.to_string()),
            E::IoError(io) => Error::Unavailable(io.to_string()),
            E::InvalidUri(u) => Error::InvalidArgument(u.to_string()),
            E::InvalidArgs(a) => Error::InvalidArgument(a),
            other => Error::Etcd(other.to_string()),
        }
    }

    pub(crate) fn timed_out(what: &str) -> Error {
        Error::Unavailable(format!("{what} timed out"))
    }
}

/// gRPC status codes, by number (tonic is not a direct dependency).
mod tonic_code {
    pub const UNKNOWN_TRANSPORT: i32 = 2; // Unknown: what a broken transport shows as
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const UNAVAILABLE: i32 = 14;
}
