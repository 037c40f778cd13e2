//! The connection a mirror's watch loop and its writers share: the options, the etcd client
//! (replaced after a reconnect) and the counters of gaps and conflicts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::Error;

/// How a mirror talks to etcd.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) keep_alive: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(5),
            max_attempts: 64,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            keep_alive: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// The defaults: 5 s timeout, 64 attempts, reconnect backoff 50 ms to 1 s, keep-alive 5 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bound on every request to etcd (connecting, reading, each transaction, opening a
    /// watch) and on a write's wait for the mirror to show it. Default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many guarded transactions a conditional write tries before it gives up with
    /// [`Error::Contention`]. Default 64; at least 1.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay between attempts to re-establish a lost watch: doubles from `min` up to
    /// `max`. Default 50 ms to 1 s.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// HTTP/2 keep-alive interval and timeout, which detect a connection that died silently.
    /// Default 5 s.
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }
}

/// What the watch loop and the writers share.
pub(crate) struct Shared {
    pub(crate) options: Options,
    endpoints: Vec<String>,
    client: Mutex<Client>,
    gaps: AtomicU64,
    conflicts: AtomicU64,
}

impl Shared {
    pub(crate) fn new(options: Options, endpoints: Vec<String>, client: Client) -> Self {
        Shared {
            options,
            endpoints,
            client: Mutex::new(client),
            gaps: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        }
    }

    pub(crate) fn client(&self) -> Client {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn replace_client(&self, client: Client) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = client;
    }

    pub(crate) async fn connect(&self) -> Result<Client, Error> {
        connect(&self.endpoints, &self.options).await
    }

    pub(crate) fn count_gap(&self) {
        self.gaps.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn gaps(&self) -> u64 {
        self.gaps.load(Ordering::Relaxed)
    }

    pub(crate) fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
}

pub(crate) async fn connect(endpoints: &[String], options: &Options) -> Result<Client, Error> {
    // No request timeout on the channel: it would also cut the long-lived watch stream.
    // Unary requests are bounded one by one instead.
    let connect = ConnectOptions::new()
        .with_connect_timeout(options.timeout)
        .with_keep_alive(options.keep_alive, options.keep_alive)
        .with_keep_alive_while_idle(true);
    tokio::time::timeout(options.timeout, Client::connect(endpoints, Some(connect)))
        .await
        .map_err(|_| Error::timed_out("connecting"))?
        .map_err(Error::from_etcd)
}
