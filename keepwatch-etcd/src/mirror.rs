//! `Mirror<T>`: opening a key, reading it through keepwatch, writing it through etcd.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use keepwatch::{ValueReader, ValueWatcher, Wait};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::connection::{connect, Options, Shared};
use crate::runtime::{block_on, RuntimeThread};
use crate::watch::{establish, state_from_read, Loop};
use crate::{Entry, Error, KeyState, Status};

/// An etcd key mirrored as a keepwatch value.
///
/// Every revision of the key after the mirror opened is one transition of the local value,
/// in revision order; threads and tasks read, wait on and subscribe to it with keepwatch's
/// API. Writes (`set`, `set_if`, `update`, `modify`, `delete`) are etcd transactions guarded
/// by the key's `mod_revision` and retried on conflict; each returns once the mirror shows
/// its revision.
///
/// `Clone` gives another handle to the same mirror. The mirror closes when [`close`] is
/// called or its last handle is dropped: the watch stops, pending waits end with
/// [`keepwatch::Error::Closed`] and writes return [`Error::Closed`].
///
/// [`close`]: Mirror::close
pub struct Mirror<T: Clone + PartialEq + Send + 'static> {
    inner: Arc<Inner<T>>,
}

struct Inner<T: Clone + PartialEq + Send + 'static> {
    key: Vec<u8>,
    value: ValueWatcher<KeyState<T>>,
    reader: ValueReader<KeyState<T>>,
    status: ValueWatcher<Status>,
    shared: Arc<Shared>,
    runtime: RuntimeThread,
}

impl<T: Clone + PartialEq + Send + 'static> Inner<T> {
    fn shut(&self) {
        self.value.close();
        self.status.set(Status::Closed);
        self.status.close();
        self.runtime.stop();
    }
}

impl<T: Clone + PartialEq + Send + 'static> Drop for Inner<T> {
    fn drop(&mut self) {
        self.shut();
    }
}

impl<T: Clone + PartialEq + Send + 'static> Clone for Mirror<T> {
    fn clone(&self) -> Self {
        Mirror {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Mirror<T>
where
    T: Clone + PartialEq + Send + fmt::Debug + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("key", &String::from_utf8_lossy(&self.inner.key))
            .field("state", &self.inner.value.get())
            .field("status", &self.inner.status.get())
            .finish()
    }
}

impl<T> Mirror<T>
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    /// Opens `key` on the etcd cluster at `endpoints` (URLs such as `http://127.0.0.1:2379`)
    /// with the default [`Options`].
    ///
    /// Reads the key (the mirror's initial state) and starts watching it from the next
    /// revision. Fails with [`Error::Unavailable`] if etcd does not answer within the timeout,
    /// [`Error::InvalidArgument`] for an empty key or no endpoint. Can be awaited on any
    /// executor: the mirror runs its own tokio runtime on a thread of its own.
    pub async fn open<E: AsRef<str>>(
        endpoints: &[E],
        key: impl Into<Vec<u8>>,
    ) -> Result<Self, Error> {
        Self::open_with(endpoints, key, Options::default()).await
    }

    /// [`open`](Mirror::open) with explicit [`Options`].
    pub async fn open_with<E: AsRef<str>>(
        endpoints: &[E],
        key: impl Into<Vec<u8>>,
        options: Options,
    ) -> Result<Self, Error> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::InvalidArgument(String::from("the key is empty")));
        }
        let endpoints: Vec<String> = endpoints.iter().map(|e| e.as_ref().to_string()).collect();
        if endpoints.is_empty() {
            return Err(Error::InvalidArgument(String::from("no endpoint")));
        }
        let runtime = RuntimeThread::start("keepwatch-etcd")?;
        let (opened, key) = {
            let endpoints = endpoints.clone();
            let options = options.clone();
            runtime
                .run(async move {
                    let r = opening::<T>(&endpoints, &key, &options).await;
                    (r, key)
                })
                .await?
        };
        let (client, initial, stream) = opened?;
        let next = initial.1 + 1;
        let value = ValueWatcher::new(initial.0);
        let status = ValueWatcher::new(Status::Live);
        let shared = Arc::new(Shared::new(options, endpoints, client));
        let watch = Loop {
            shared: shared.clone(),
            value: value.clone(),
            status: status.clone(),
            key: key.clone(),
            next,
        };
        runtime.spawn(watch.run(stream));
        let reader = value.reader();
        Ok(Mirror {
            inner: Arc::new(Inner {
                key,
                value,
                reader,
                status,
                shared,
                runtime,
            }),
        })
    }

    /// [`open`](Mirror::open) from a plain thread (blocks it until the mirror is open).
    /// Must not be called from inside an async task.
    pub fn open_blocking<E: AsRef<str>>(
        endpoints: &[E],
        key: impl Into<Vec<u8>>,
    ) -> Result<Self, Error> {
        block_on(Self::open(endpoints, key))
    }
}

type Opened<T> = (Client, (KeyState<T>, i64), etcd_client::WatchStream);

async fn opening<T: DeserializeOwned>(
    endpoints: &[String],
    key: &[u8],
    options: &Options,
) -> Result<Opened<T>, Error> {
    let mut client = connect(endpoints, options).await?;
    let response = tokio::time::timeout(options.timeout, client.get(key.to_vec(), None))
        .await
        .map_err(|_| Error::timed_out("reading the key"))?
        .map_err(Error::from_etcd)?;
    let read_revision = response.header().map(|h| h.revision()).unwrap_or(0);
    let initial = state_from_read(response.kvs().first(), read_revision);
    let stream = establish(&mut client, key, read_revision + 1, options.timeout).await?;
    Ok((client, (initial, read_revision), stream))
}

/// The comparison that holds while the key is still in `state`.
fn guard<T>(key: &[u8], state: &KeyState<T>) -> Compare {
    match state.entry {
        Entry::Absent => Compare::create_revision(key.to_vec(), CompareOp::Equal, 0),
        _ => Compare::mod_revision(key.to_vec(), CompareOp::Equal, state.revision),
    }
}

enum Change {
    Put(Vec<u8>),
    Delete,
}

impl<T> Mirror<T>
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    /// Writes `value` unless the key already holds an equal value. `Ok(Some(revision))`: it
    /// was written at that etcd revision and the mirror shows it; `Ok(None)`: the key already
    /// held it, nothing was written (as keepwatch's `set` returns `false`).
    pub async fn set(&self, value: T) -> Result<Option<i64>, Error> {
        self.write(|state| match &state.entry {
            Entry::Value(current) if *current == value => None,
            _ => Some(encode(&value).map(Change::Put)),
        })
        .await
    }

    /// Writes `value` if `cond` holds for the key's current state, atomically: the write is a
    /// transaction guarded by the `mod_revision` `cond` saw. When another writer got there
    /// first, `cond` runs again on the newer state (so it may run several times).
    /// `Ok(Some(revision))`: written (also when equal to the current value: the condition
    /// held); `Ok(None)`: `cond` was false on the current state. Of two writers racing
    /// `set_if` on one state, at most one wins.
    pub async fn set_if(
        &self,
        value: T,
        mut cond: impl FnMut(&KeyState<T>) -> bool,
    ) -> Result<Option<i64>, Error> {
        let bytes = encode(&value)?;
        self.write(|state| cond(state).then(|| Ok(Change::Put(bytes.clone()))))
            .await
    }

    /// Atomically replaces the key's state with `f(&state)`: `Some(v)` different from the
    /// current value is written (guarded by the `mod_revision` `f` saw, retried with the
    /// newer state on conflict); `None`, or a value equal to the current one, writes nothing
    /// and gives `Ok(None)`.
    pub async fn update(
        &self,
        mut f: impl FnMut(&KeyState<T>) -> Option<T>,
    ) -> Result<Option<i64>, Error> {
        self.write(|state| match f(state) {
            Some(v) if state.value() != Some(&v) => Some(encode(&v).map(Change::Put)),
            _ => None,
        })
        .await
    }

    /// Atomically changes the decoded value in place: `f` runs on a copy of the current value
    /// and the result is written if it differs (guarded and retried as `update`). When the
    /// key is absent or undecodable `f` is not called and nothing is written: `Ok(None)`.
    pub async fn modify(&self, mut f: impl FnMut(&mut T)) -> Result<Option<i64>, Error> {
        self.write(|state| {
            let current = state.value()?;
            let mut next = current.clone();
            f(&mut next);
            (next != *current).then(|| encode(&next).map(Change::Put))
        })
        .await
    }

    /// Deletes the key if it exists (guarded like the other writes). `Ok(Some(revision))`:
    /// deleted at that revision; `Ok(None)`: it was already absent.
    pub async fn delete(&self) -> Result<Option<i64>, Error> {
        self.write(|state| (!state.is_absent()).then_some(Ok(Change::Delete)))
            .await
    }

    /// The write loop shared by every write: decide on the latest known state, commit with a
    /// guard on that state, and on conflict decide again on the state etcd returned.
    async fn write(
        &self,
        mut decide: impl FnMut(&KeyState<T>) -> Option<Result<Change, Error>>,
    ) -> Result<Option<i64>, Error> {
        let inner = &self.inner;
        if inner.value.is_closed() {
            return Err(Error::Closed);
        }
        let options = &inner.shared.options;
        // The mirror's state first: usually current, and a stale one only costs a retry.
        let mut state = inner.value.get();
        for _ in 0..options.max_attempts {
            let change = decide(&state).transpose()?;
            let mut txn = Txn::new().when([guard(&inner.key, &state)]);
            txn = match &change {
                Some(Change::Put(bytes)) => {
                    txn.and_then([TxnOp::put(inner.key.clone(), bytes.clone(), None)])
                }
                Some(Change::Delete) => txn.and_then([TxnOp::delete(inner.key.clone(), None)]),
                // Nothing to write on this state: confirm it is still the current one, so
                // that "nothing written" is true of etcd, not only of the mirror.
                None => txn,
            };
            let txn = txn.or_else([TxnOp::get(inner.key.clone(), None)]);
            let mut client = inner.shared.client();
            let timeout = options.timeout;
            let response = inner
                .runtime
                .run(async move { tokio::time::timeout(timeout, client.txn(txn)).await })
                .await?
                .map_err(|_| Error::timed_out("the transaction"))?
                .map_err(Error::from_etcd)?;
            let revision = response.header().map(|h| h.revision()).unwrap_or(0);
            if response.succeeded() {
                return match change {
                    None => Ok(None),
                    Some(_) => {
                        self.await_revision(revision).await?;
                        Ok(Some(revision))
                    }
                };
            }
            // Lost the race: etcd sent the key as it is now; decide again on that.
            inner.shared.count_conflict();
            let kv = response.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(get) => Some(get.kvs().first().cloned()),
                _ => None,
            });
            state = state_from_read(kv.flatten().as_ref(), revision);
        }
        Err(Error::Contention {
            attempts: options.max_attempts,
        })
    }

    /// Waits until the mirror has applied `revision` (bounded by the request timeout).
    async fn await_revision(&self, revision: i64) -> Result<(), Error> {
        let wait = self.inner.value.wait_until(move |s| s.revision >= revision);
        match wait.timeout(self.inner.shared.options.timeout).await {
            Ok(_) => Ok(()),
            // Closed while waiting: the write is committed all the same.
            Err(keepwatch::Error::Closed) => Ok(()),
            Err(_) => Err(Error::Unmirrored { revision }),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Reading, waiting, subscribing and deriving: every method of keepwatch's
/// [`ValueReader`] (`get`, `with`, `version`, `subscribe`, `subscribe_bounded`, `on_change`,
/// `on_value`, `wait_for`, `wait_until`, `wait_map`, `wait_transition`, `wait_for_change`,
/// `closed`, `is_closed`, `watcher_count`, `map`, `zip`), with keepwatch's guarantees, on the
/// mirror's local value. `version()` counts the mirror's transitions since it opened: one per
/// revision of the key, plus one per compaction [`Gap`](crate::Gap).
impl<T: Clone + PartialEq + Send + 'static> Deref for Mirror<T> {
    type Target = ValueReader<KeyState<T>>;

    fn deref(&self) -> &Self::Target {
        &self.inner.reader
    }
}

impl<T: Clone + PartialEq + Send + 'static> Mirror<T> {
    /// A read-only keepwatch handle to the mirror's value, to hand to code that only reads or
    /// waits. It does not keep the mirror open; it keeps the last state readable.
    pub fn reader(&self) -> ValueReader<KeyState<T>> {
        self.inner.reader.clone()
    }

    /// The connection's state as a keepwatch value: wait on it or subscribe to it to learn
    /// when the watch is lost and resumed.
    pub fn status_reader(&self) -> ValueReader<Status> {
        self.inner.status.reader()
    }

    /// Completes with the first state holding a value equal to `value` (the current one, or
    /// a later one even if the key has moved on since).
    pub fn wait_for_value(&self, value: T) -> Wait<KeyState<T>>
    where
        T: Sync,
    {
        self.inner
            .reader
            .wait_until(move |s| s.value() == Some(&value))
    }

    /// The key this mirror watches.
    pub fn key(&self) -> &[u8] {
        &self.inner.key
    }

    /// The current decoded value, if the key holds one.
    pub fn value(&self) -> Option<T> {
        self.inner.value.with(|s| s.value().cloned())
    }

    /// The etcd revision of the current state (see [`KeyState::revision`]).
    pub fn revision(&self) -> i64 {
        self.inner.value.with(|s| s.revision)
    }

    /// The state of the connection to etcd.
    pub fn status(&self) -> Status {
        self.inner.status.get()
    }

    /// How many times etcd's compaction made the mirror skip revisions it had not seen (each
    /// such skip is also flagged on its transition by [`KeyState::gap`]).
    pub fn gaps(&self) -> u64 {
        self.inner.shared.gaps()
    }

    /// How many of this mirror's guarded transactions found the key changed since the state
    /// they were decided on (another writer got there first) and were decided again.
    pub fn conflicts(&self) -> u64 {
        self.inner.shared.conflicts()
    }

    /// Closes the mirror: stops the watch; pending waits end with `Closed`, subscriptions
    /// deliver what they hold and end, later writes return [`Error::Closed`]. The last state
    /// stays readable.
    pub fn close(&self) {
        self.inner.shut();
    }
}
