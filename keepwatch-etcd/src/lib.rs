//! An etcd key as a lossless [`keepwatch`] value.
//!
//! [`Mirror::open`] reads a key and watches it: every revision of the key after that is one
//! transition of a local keepwatch value of type [`KeyState<T>`] (the decoded value, or
//! absence, or undecodable bytes, with the etcd revision), in revision order. Threads and
//! async tasks wait on it, subscribe to it and derive from it with keepwatch's API. Writes go
//! to etcd as transactions guarded by the key's `mod_revision` and retried on conflict, so two
//! processes racing [`Mirror::set_if`] never both win.
//!
//! A lost connection is resumed from the last revision seen: nothing lost, nothing repeated.
//! If etcd compacted revisions the mirror had not seen, the transition that skips them carries
//! a [`Gap`] ([`KeyState::gap`]): never a silent skip.
//!
//! Values are stored as JSON (serde_json).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod mirror;
mod runtime;
mod state;
mod watch;

pub use error::Error;
pub use mirror::{Mirror, Options};
pub use state::{Entry, Gap, KeyState, Status, Undecodable};

pub use keepwatch;
