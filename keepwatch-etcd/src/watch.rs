//! The watch loop: turns every revision of the key into one transition of the mirror, and
//! resumes from the last revision seen after a lost connection.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions, WatchStream};
use keepwatch::ValueWatcher;
use serde::de::DeserializeOwned;

use crate::connection::Shared;
use crate::{Entry, Error, Gap, KeyState, Status, Undecodable};

/// Decodes one stored value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Entry<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Entry::Value(v),
        Err(e) => Entry::Undecodable(Undecodable {
            bytes: bytes.to_vec(),
            error: e.to_string(),
        }),
    }
}

/// The state of the key as read by a range request at `read_revision`.
pub(crate) fn state_from_read<T: DeserializeOwned>(
    kv: Option<&KeyValue>,
    read_revision: i64,
) -> KeyState<T> {
    match kv {
        Some(kv) => KeyState {
            revision: kv.mod_revision(),
            create_revision: kv.create_revision(),
            version: kv.version(),
            entry: decode(kv.value()),
            gap: None,
        },
        None => absent(read_revision),
    }
}

fn absent<T>(revision: i64) -> KeyState<T> {
    KeyState {
        revision,
        create_revision: 0,
        version: 0,
        entry: Entry::Absent,
        gap: None,
    }
}

/// Opens a watch on `key` from `start` and waits for etcd to confirm it.
pub(crate) async fn establish(
    client: &mut Client,
    key: &[u8],
    start: i64,
    timeout: Duration,
) -> Result<WatchStream, Error> {
    let options = WatchOptions::new().with_start_revision(start);
    // The first response confirms the watch (`created`); a start revision that was compacted
    // is reported in a response with `compact_revision`. The loop handles both.
    tokio::time::timeout(timeout, client.watch(key.to_vec(), Some(options)))
        .await
        .map_err(|_| Error::timed_out("opening the watch"))?
        .map_err(Error::from_etcd)
}

pub(crate) struct Loop<T: Clone + PartialEq + Send + 'static> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) value: ValueWatcher<KeyState<T>>,
    pub(crate) status: ValueWatcher<Status>,
    pub(crate) key: Vec<u8>,
    /// The next revision the watch must deliver.
    pub(crate) next: i64,
}

enum Ended {
    /// The connection (or the watch) was lost: resume from `next`.
    Lost(String),
    /// etcd compacted past `next`: resync at this revision.
    Compacted(i64),
}

impl<T> Loop<T>
where
    T: DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    /// Runs until the mirror closes (the runtime is stopped and drops this future).
    pub(crate) async fn run(mut self, mut stream: WatchStream) {
        loop {
            let ended = self.drain(&mut stream).await;
            if self.value.is_closed() {
                return;
            }
            let mut attempts = 0u32;
            let mut backoff = self.shared.options.backoff_min;
            let mut error = match ended {
                Ended::Lost(why) => why,
                Ended::Compacted(compacted) => match self.resync(compacted).await {
                    Ok(()) => String::from("resumed after a compaction"),
                    Err(e) => {
                        // Not resynced: the next watch reports the compaction again.
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.shared.options.backoff_max);
                        e.to_string()
                    }
                },
            };
            self.status.set(Status::Reconnecting {
                attempts,
                error: error.clone(),
            });
            stream = loop {
                if self.value.is_closed() {
                    return;
                }
                let mut client = self.shared.client();
                match establish(
                    &mut client,
                    &self.key,
                    self.next,
                    self.shared.options.timeout,
                )
                .await
                {
                    Ok(stream) => break stream,
                    Err(e) => {
                        attempts += 1;
                        error = e.to_string();
                        self.status.set(Status::Reconnecting {
                            attempts,
                            error: error.clone(),
                        });
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.shared.options.backoff_max);
                        if attempts % 3 == 0 {
                            // A fresh channel, in case the old one is wedged.
                            if let Ok(fresh) = self.shared.connect().await {
                                self.shared.replace_client(fresh);
                            }
                        }
                    }
                }
            };
        }
    }

    /// Applies responses until the stream ends.
    async fn drain(&mut self, stream: &mut WatchStream) -> Ended {
        loop {
            let response = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return Ended::Lost(String::from("the watch stream ended")),
                Err(e) => return Ended::Lost(Error::from_etcd(e).to_string()),
            };
            if response.compact_revision() > 0 {
                return Ended::Compacted(response.compact_revision());
            }
            if response.created() {
                self.status.set(Status::Live);
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let revision = kv.mod_revision();
                if revision < self.next {
                    continue; // never repeat a revision already applied
                }
                let state = match event.event_type() {
                    EventType::Put => state_from_read(Some(kv), revision),
                    EventType::Delete => absent(revision),
                };
                self.next = revision + 1;
                self.value.set(state);
            }
            if response.canceled() {
                return Ended::Lost(format!(
                    "the watch was canceled: {}",
                    response.cancel_reason()
                ));
            }
        }
    }

    /// After etcd compacted revisions the mirror had not seen: read the key at the compaction
    /// revision (or, if that is gone too, at the latest one), make that one transition
    /// flagged with a [`Gap`] unless it provably skipped nothing, and resume after it.
    async fn resync(&mut self, compacted: i64) -> Result<(), Error> {
        let timeout = self.shared.options.timeout;
        let mut client = self.shared.client();
        let mut at = compacted;
        let response = loop {
            let options = GetOptions::new().with_revision(at);
            match tokio::time::timeout(timeout, client.get(self.key.clone(), Some(options))).await {
                Err(_) => return Err(Error::timed_out("reading the key after a compaction")),
                Ok(Ok(r)) => break r,
                Ok(Err(e)) if at != 0 && e.to_string().contains("compacted") => at = 0,
                Ok(Err(e)) => return Err(Error::from_etcd(e)),
            }
        };
        let read_revision = response.header().map(|h| h.revision()).unwrap_or(compacted);
        let read_revision = if at == 0 { read_revision } else { at };
        let previous = self.value.get();
        let mut state: KeyState<T> = state_from_read(response.kvs().first(), read_revision);
        self.next = read_revision + 1;
        let missed = match (&previous.entry, &state.entry) {
            (Entry::Absent, Entry::Absent) => None,
            (Entry::Absent, _) | (_, Entry::Absent) => None,
            _ if state.create_revision == previous.create_revision => {
                Some((state.version - previous.version).max(1) as u64 - 1)
            }
            _ => None,
        };
        if state.revision == previous.revision && !state.is_absent() {
            return Ok(()); // the key did not change in the compacted range
        }
        if missed != Some(0) {
            state.gap = Some(Gap {
                after: previous.revision,
                compacted,
                missed,
            });
            self.shared.count_gap();
        }
        if state.revision <= previous.revision {
            state.revision = previous.revision.max(read_revision);
        }
        self.value.set(state);
        Ok(())
    }
}
