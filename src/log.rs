//! The shared transition log that subscriptions read with their own cursors: each transition
//! is stored once, whatever the number of subscriptions, and freed once all have read it.
//! Everything here runs under the value's lock.

use std::collections::VecDeque;

use crate::sink::{Sink, Waiter, Wakes};
use crate::Transition;

/// The most entries' worth of storage an empty log keeps.
const DRAINED_KEEP: usize = 64;

/// One logged transition. Its `old` is the previous entry's `new` (or `Log::first_old`) and its
/// version is its position, so neither is stored.
struct Entry<T> {
    new: T,
    /// Subscriptions that have yet to read this entry.
    unread: usize,
}

/// One subscription's place in the log.
struct Cursor {
    /// The version of the next transition it reads.
    next: u64,
    /// For a bounded subscription, the most unread transitions kept for it.
    bound: Option<usize>,
    /// Transitions dropped for a bounded subscription since it last heard of it.
    lagged: u64,
    /// Whom to wake when a transition is appended.
    sink: Option<Sink>,
    /// Whether its key is in `Log::parked`.
    parked: bool,
}

/// The log and the cursors of the subscriptions that read it.
pub(crate) struct Log<T> {
    /// `entries[i]` is the transition to version `start + i`.
    entries: VecDeque<Entry<T>>,
    start: u64,
    /// The `old` of `entries[0]`. Kept (equal to the current value) when the log has drained.
    first_old: Option<T>,
    cursors: Vec<Option<Cursor>>,
    free: Vec<usize>,
    /// Live subscriptions.
    live: usize,
    /// Keys of subscriptions with a sink, woken by the next append: an append wakes only
    /// those, so it costs O(1) with any number of idle subscriptions.
    parked: Vec<usize>,
    /// Keys of bounded subscriptions, checked on every append.
    bounded: Vec<usize>,
}

/// What reading a subscription's next transitions gives.
pub(crate) enum Read<T> {
    /// The next transition (any more taken with it are in the reader's buffer).
    Next(Transition<T>),
    /// A bounded subscription fell behind: this many transitions were dropped for it.
    Lagged(u64),
    /// Nothing new.
    Empty,
}

impl<T: Clone> Log<T> {
    pub(crate) fn new() -> Self {
        Log {
            entries: VecDeque::new(),
            start: 1,
            first_old: None,
            cursors: Vec::new(),
            free: Vec::new(),
            live: 0,
            parked: Vec::new(),
            bounded: Vec::new(),
        }
    }

    /// Whether any subscription is live: only then does a transition need logging.
    #[inline]
    pub(crate) fn has_readers(&self) -> bool {
        self.live > 0
    }

    pub(crate) fn readers(&self) -> usize {
        self.live
    }

    /// Registers a subscription that reads every transition after `version`.
    pub(crate) fn subscribe(&mut self, version: u64, bound: Option<usize>) -> usize {
        let cursor = Cursor {
            next: version + 1,
            bound,
            lagged: 0,
            sink: None,
            parked: false,
        };
        let key = match self.free.pop() {
            Some(key) => {
                self.cursors[key] = Some(cursor);
                key
            }
            None => {
                self.cursors.push(Some(cursor));
                self.cursors.len() - 1
            }
        };
        if bound.is_some() {
            self.bounded.push(key);
        }
        self.live += 1;
        key
    }

    fn cursor(&mut self, key: usize) -> &mut Cursor {
        self.cursors[key]
            .as_mut()
            .expect("keepwatch: internal error: unknown subscription key")
    }

    /// Logs the transition `old → new` to `version` for every live subscription and collects
    /// the parked ones' sinks. Returns the values it no longer keeps (to drop outside the
    /// lock): at most two, as at most one entry is freed per append (see below).
    pub(crate) fn append(
        &mut self,
        old: T,
        new: T,
        version: u64,
        wakes: &mut Wakes,
    ) -> [Option<T>; 2] {
        let spare = if self.entries.is_empty() {
            self.start = version;
            self.first_old.replace(old)
        } else {
            Some(old)
        };
        self.entries.push_back(Entry {
            new,
            unread: self.live,
        });
        for key in self.parked.drain(..) {
            if let Some(cursor) = self.cursors[key].as_mut() {
                cursor.parked = false;
                wakes.take_from(&mut cursor.sink);
            }
        }
        // A bounded subscription that now has more unread entries than its bound skips its
        // oldest. Two subscriptions skipping can free only one entry: the oldest is freed by
        // the last of its readers to skip, who then still needs the next one.
        let mut freed = None;
        for i in 0..self.bounded.len() {
            let key = self.bounded[i];
            let cursor = self.cursor(key);
            let unread = version + 1 - cursor.next;
            if unread > cursor.bound.unwrap_or(usize::MAX) as u64 {
                let skipped = cursor.next;
                cursor.next += 1;
                cursor.lagged += 1;
                if let Some(dropped) = self.mark_read(skipped) {
                    debug_assert!(freed.is_none(), "one entry freed per append");
                    freed = Some(dropped);
                }
            }
        }
        [spare, freed]
    }

    /// Counts entry `version` as read by one more subscription; frees it if it was the last
    /// reader of the oldest entry, returning the value the log no longer needs.
    fn mark_read(&mut self, version: u64) -> Option<T> {
        let index = (version - self.start) as usize;
        let entry = &mut self.entries[index];
        entry.unread -= 1;
        if index != 0 || entry.unread != 0 {
            return None;
        }
        // Unread entries form a suffix: the oldest goes first.
        let new = self.pop_oldest();
        self.first_old.replace(new)
    }

    /// Frees the oldest entry, read by all, returning its `new` (the next entry's `old`).
    fn pop_oldest(&mut self) -> T {
        let entry = self
            .entries
            .pop_front()
            .expect("keepwatch: internal error: freeing from an empty log");
        if self.entries.is_empty() && self.entries.capacity() > DRAINED_KEEP {
            // Drained after a burst: give its storage back, so memory returns to its level
            // before the burst. Small queues keep theirs (no allocation in the steady state).
            self.entries = VecDeque::new();
        }
        self.start += 1;
        entry.new
    }

    /// Reads up to `max` of subscription `key`'s next transitions, the first returned and the
    /// rest moved into `out` (one at a time for a bounded subscription, so its lag is told
    /// exactly where it happens), or registers
    /// `waiter` for the next append and returns the sink it replaced (drop it outside the
    /// lock). Taking a batch under one lock keeps a fast reader off the setter's lock.
    pub(crate) fn read(
        &mut self,
        key: usize,
        waiter: Waiter<'_>,
        out: &mut VecDeque<Transition<T>>,
        max: usize,
    ) -> (Read<T>, Option<Sink>) {
        let end = self.start + self.entries.len() as u64;
        let cursor = self.cursor(key);
        if cursor.lagged > 0 {
            return (Read::Lagged(std::mem::take(&mut cursor.lagged)), None);
        }
        let next = cursor.next;
        if next >= end {
            let replaced = Sink::register(&mut cursor.sink, waiter);
            if cursor.sink.is_some() && !cursor.parked {
                cursor.parked = true;
                self.parked.push(key);
            }
            return (Read::Empty, replaced);
        }
        let max = if cursor.bound.is_some() { 1 } else { max };
        let first = self.take(next);
        self.cursor(key).next = next + 1;
        // The cursor moves with each take: if a later `Clone` panics, what was taken stays
        // taken, in `out`, and the cursor agrees.
        for version in next + 1..end.min(next + max as u64) {
            let transition = self.take(version);
            self.cursor(key).next = version + 1;
            out.push_back(transition);
        }
        (Read::Next(first), None)
    }

    /// Reads the transition to `version` for one reader and counts it as read. The last reader
    /// of the oldest entry frees it and takes its `old` by move instead of a clone.
    fn take(&mut self, version: u64) -> Transition<T> {
        let index = (version - self.start) as usize;
        const NO_OLD: &str = "keepwatch: internal error: log entry without its old value";
        // Clone before changing anything: a panicking `Clone` leaves the log as it was.
        let new = self.entries[index].new.clone();
        if index == 0 && self.entries[0].unread == 1 {
            let freed = self.pop_oldest();
            let old = self.first_old.replace(freed).expect(NO_OLD);
            return Transition { old, new, version };
        }
        let old = match index {
            0 => self.first_old.as_ref(),
            _ => Some(&self.entries[index - 1].new),
        }
        .expect(NO_OLD)
        .clone();
        // Not the last reader of the oldest entry, so this entry stays: unread entries form a
        // suffix (see `mark_read`).
        self.entries[index].unread -= 1;
        Transition { old, new, version }
    }

    /// Forgets the sink of subscription `key` (its receive was dropped while waiting).
    pub(crate) fn clear_sink(&mut self, key: usize) -> Option<Sink> {
        self.cursor(key).sink.take()
    }

    /// Collects the sinks of every subscription (the value closed: all must look again).
    pub(crate) fn wake_all(&mut self, wakes: &mut Wakes) {
        for key in self.parked.drain(..) {
            if let Some(cursor) = self.cursors[key].as_mut() {
                cursor.parked = false;
                wakes.take_from(&mut cursor.sink);
            }
        }
    }

    /// Deregisters subscription `key`, freeing the entries only it still needed. Returns what
    /// to drop outside the lock.
    pub(crate) fn unsubscribe(&mut self, key: usize) -> (Vec<T>, Option<Sink>) {
        let cursor = self.cursors[key]
            .take()
            .expect("keepwatch: internal error: unknown subscription key");
        self.free.push(key);
        self.live -= 1;
        if cursor.parked {
            self.parked.retain(|&k| k != key);
        }
        if cursor.bound.is_some() {
            self.bounded.retain(|&k| k != key);
        }
        let mut spare = Vec::new();
        let end = self.start + self.entries.len() as u64;
        for version in cursor.next..end {
            spare.extend(self.mark_read(version));
        }
        if self.live == 0 {
            spare.extend(self.first_old.take());
            // Nobody reads: give back the storage a burst may have grown, so memory returns
            // to its level before the first subscription.
            self.entries = VecDeque::new();
            self.cursors = Vec::new();
            self.free = Vec::new();
        }
        (spare, cursor.sink)
    }
}
