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
//!
//! ```no_run
//! use keepwatch_etcd::Mirror;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let round: Mirror<u32> = Mirror::open(&["http://127.0.0.1:2379"], "/app/round").await?;
//! let third = round.wait_for_value(3); // a keepwatch wait, registered now
//! round.set(1).await?; // Some(revision): written, and the mirror shows it
//! round.update(|s| s.value().map(|n| n + 1)).await?; // guarded, retried on conflict
//! let won = round.set_if(3, |s| s.value() == Some(&2)).await?.is_some();
//! if won {
//!     assert_eq!(third.await?.value(), Some(&3));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! See the crate's README for what is guaranteed and what is not.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod connection;
mod error;
mod mirror;
mod runtime;
mod state;
mod watch;

pub use connection::Options;
pub use error::Error;
pub use mirror::Mirror;
pub use state::{Entry, Gap, KeyState, Status, Undecodable};

pub use keepwatch;
