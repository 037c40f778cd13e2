//! The value a mirror holds: the key's state at one revision.

use std::fmt;

/// The state of the key at one etcd revision: the value type of a mirror.
///
/// Every revision of the key is a distinct `KeyState` (its `revision` differs), so every
/// revision is one transition of the mirror, even when two revisions hold equal values.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyState<T> {
    /// The etcd revision of this state. For a value or undecodable bytes: the key's
    /// `mod_revision` (the revision of the write). For [`Entry::Absent`]: the revision of the
    /// delete, or, when the mirror found the key absent on opening or after a compaction, the
    /// revision it read at. Strictly increasing from one transition to the next.
    pub revision: i64,
    /// The key's `create_revision` (0 when absent).
    pub create_revision: i64,
    /// The key's `version`: how many writes since it was (re)created (0 when absent).
    pub version: i64,
    /// What the key holds.
    pub entry: Entry<T>,
    /// `Some` on the first state after revisions of the key were compacted away unseen (the
    /// mirror was disconnected while etcd compacted its history): the transition into this
    /// state may stand for several revisions. `None` on every ordinary transition.
    pub gap: Option<Gap>,
}

/// What the key holds at one revision.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<T> {
    /// The key holds JSON that decodes as `T`.
    Value(T),
    /// The key does not exist (never written, or deleted).
    Absent,
    /// The key holds bytes that do not decode as `T` (another writer wrote something else).
    /// The mirror goes on: the next revision that decodes is a transition as usual.
    Undecodable(Undecodable),
}

/// Bytes in the key that did not decode as the mirror's type.
#[derive(Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The raw bytes stored in etcd.
    pub bytes: Vec<u8>,
    /// Why they did not decode (serde_json's message).
    pub error: String,
}

impl fmt::Debug for Undecodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Undecodable")
            .field("bytes", &String::from_utf8_lossy(&self.bytes))
            .field("error", &self.error)
            .finish()
    }
}

/// Revisions of the key that etcd compacted before the mirror saw them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The revision of the last state the mirror saw before the gap.
    pub after: i64,
    /// The revision etcd had compacted up to when the mirror resumed: history of the key
    /// between `after` and this revision is gone.
    pub compacted: i64,
    /// How many writes of the key were missed, when it can be told exactly (the key was not
    /// deleted in between: its `version` counts them); `None` when unknown (at least one,
    /// unless both states are absent).
    pub missed: Option<u64>,
}

impl<T> KeyState<T> {
    /// The decoded value, if the key holds one.
    pub fn value(&self) -> Option<&T> {
        match &self.entry {
            Entry::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the key is absent at this revision.
    pub fn is_absent(&self) -> bool {
        matches!(self.entry, Entry::Absent)
    }

    /// Whether the key holds bytes that do not decode as `T`.
    pub fn is_undecodable(&self) -> bool {
        matches!(self.entry, Entry::Undecodable(_))
    }
}

/// The state of a mirror's connection to etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// The watch is established: revisions arrive as etcd commits them.
    Live,
    /// The watch was lost and is being re-established from the last revision seen.
    /// Nothing is lost meanwhile: the revisions in between arrive once it is back.
    Reconnecting {
        /// Failed attempts so far (0 right after the loss).
        attempts: u32,
        /// Why the watch was lost or the last attempt failed.
        error: String,
    },
    /// The mirror is closed: no more transitions.
    Closed,
}
