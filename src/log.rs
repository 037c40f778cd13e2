//! The shared transition log that subscriptions read with their own cursors: each transition
//! is stored once, whatever the number of subscriptions, and freed once all have read it.
//! Everything here runs under the value's lock.

use std::collections::VecDeque;

use crate::sink::{NeedsClone, Registrar, Sink, Wakes};
use crate::slab::{Bin, Slab};
use crate::Transition;

/// The most storage, in bytes, a drained log keeps: a value set in bursts then reuses it
/// (no allocation, no regrowth per burst); a bigger burst's storage is given back down to it.
const DRAINED_KEEP_BYTES: usize = 16 * 1024;

/// [`DRAINED_KEEP_BYTES`] in entries of `T` (at least 64).
fn drained_keep<T>() -> usize {
    (DRAINED_KEEP_BYTES / std::mem::size_of::<Entry<T>>().max(1)).max(64)
}

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
    cursors: Slab<Cursor>,
    /// Keys of subscriptions with a sink, woken by the next append: an append wakes only
    /// those, so it costs O(1) with any number of idle subscriptions.
    parked: Vec<usize>,
    /// Keys of bounded subscriptions, checked on every append.
    bounded: Vec<usize>,
}

/// What reading a subscription's next transitions gives.
#[derive(Debug)]
pub(crate) enum Read {
    /// Transitions were moved into the reader's buffer.
    Taken,
    /// A bounded subscription fell behind: this many transitions were dropped for it.
    Lagged(u64),
    /// Nothing new; the reader's sink is registered (the one it replaced is returned).
    Empty(Option<Sink>),
    /// Nothing new, and registering needs a waker clone made outside the lock.
    NeedsClone,
}

impl<T> Log<T> {
    pub(crate) fn new() -> Self {
        Log {
            entries: VecDeque::new(),
            start: 1,
            first_old: None,
            cursors: Slab::default(),
            parked: Vec::new(),
            bounded: Vec::new(),
        }
    }

    /// Whether any subscription is live: only then does a transition need logging.
    #[inline]
    pub(crate) fn has_readers(&self) -> bool {
        self.cursors.len() > 0
    }

    pub(crate) fn readers(&self) -> usize {
        self.cursors.len()
    }

    /// How many transitions subscription `key` has yet to read from the log.
    pub(crate) fn unread(&self, key: usize) -> usize {
        let end = self.start + self.entries.len() as u64;
        self.cursors
            .get(key)
            .map_or(0, |cursor| end.saturating_sub(cursor.next) as usize)
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
        let key = self.cursors.insert(cursor);
        if bound.is_some() {
            self.bounded.push(key);
        }
        key
    }

    fn cursor(&mut self, key: usize) -> &mut Cursor {
        self.cursors
            .get_mut(key)
            .expect("keepwatch: internal error: unknown subscription key")
    }

    /// Logs the transition `old → new` to `version` for every live subscription and collects
    /// the parked ones' sinks. Puts the values it no longer keeps in `spare`, to drop outside
    /// the lock.
    pub(crate) fn append(
        &mut self,
        old: T,
        new: T,
        version: u64,
        wakes: &mut Wakes,
        spare: &mut Bin<T>,
    ) {
        let old = if self.entries.is_empty() {
            self.start = version;
            self.first_old.replace(old)
        } else {
            Some(old)
        };
        self.entries.push_back(Entry {
            new,
            unread: self.cursors.len(),
        });
        spare.extend(old);
        if !self.parked.is_empty() {
            self.wake_all(wakes);
        }
        // A bounded subscription that now has more unread entries than its bound skips its
        // oldest. Two subscriptions skipping can free only one entry: the oldest is freed by
        // the last of its readers to skip, who then still needs the next one.
        for i in 0..self.bounded.len() {
            let key = self.bounded[i];
            let cursor = self.cursor(key);
            let unread = version + 1 - cursor.next;
            if unread > cursor.bound.unwrap_or(usize::MAX) as u64 {
                let skipped = cursor.next;
                cursor.next += 1;
                cursor.lagged += 1;
                spare.extend(self.mark_read(skipped));
            }
        }
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
        if self.entries.is_empty() && self.entries.capacity() > drained_keep::<T>() {
            // Drained after a big burst: give its storage back down to the bound, so memory
            // returns to within 16 KiB of its level before the burst.
            self.entries.shrink_to(drained_keep::<T>());
        }
        self.start += 1;
        entry.new
    }

    /// Forgets the sink of subscription `key` (its receive was dropped while waiting).
    pub(crate) fn clear_sink(&mut self, key: usize) -> Option<Sink> {
        self.cursor(key).sink.take()
    }

    /// Collects the sinks of every subscription (the value closed: all must look again).
    pub(crate) fn wake_all(&mut self, wakes: &mut Wakes) {
        for key in self.parked.drain(..) {
            if let Some(cursor) = self.cursors.get_mut(key) {
                cursor.parked = false;
                wakes.take_from(&mut cursor.sink);
            }
        }
    }

    /// Deregisters subscription `key`, freeing the entries only it still needed. Puts what to
    /// drop outside the lock in `spare`; returns its sink.
    pub(crate) fn unsubscribe(&mut self, key: usize, spare: &mut Bin<T>) -> Option<Sink> {
        let cursor = self
            .cursors
            .remove(key)
            .expect("keepwatch: internal error: unknown subscription key");
        if cursor.parked {
            self.parked.retain(|&k| k != key);
        }
        if cursor.bound.is_some() {
            self.bounded.retain(|&k| k != key);
        }
        let end = self.start + self.entries.len() as u64;
        for version in cursor.next..end {
            spare.extend(self.mark_read(version));
        }
        if self.cursors.len() == 0 {
            spare.extend(self.first_old.take());
            // Nobody reads: give back the storage a burst may have grown, so memory returns
            // to its level before the first subscription.
            spare.extend(std::mem::take(&mut self.entries).into_iter().map(|e| e.new));
            self.parked = Vec::new();
            self.bounded = Vec::new();
        }
        cursor.sink
    }
}

impl<T: Clone> Log<T> {
    /// Reads up to `max` of subscription `key`'s next transitions into `out` (one at a time
    /// for a bounded subscription, so its lag is told exactly where it happens), or registers
    /// the reader for the next append. Taking a batch under one lock keeps a fast reader off
    /// the setter's lock.
    ///
    /// Every transition taken goes straight into `out` and the cursor moves with it: if a
    /// later `Clone` panics, what was taken stays taken, in the subscription's buffer.
    pub(crate) fn read(
        &mut self,
        key: usize,
        registrar: &mut Registrar<'_>,
        out: &mut VecDeque<Transition<T>>,
        max: usize,
        spill: &mut Option<T>,
    ) -> Read {
        let end = self.start + self.entries.len() as u64;
        let cursor = self.cursor(key);
        if cursor.lagged > 0 {
            return Read::Lagged(std::mem::take(&mut cursor.lagged));
        }
        let next = cursor.next;
        if next >= end {
            let replaced = match registrar.install(&mut cursor.sink) {
                Ok(replaced) => replaced,
                Err(NeedsClone) => return Read::NeedsClone,
            };
            if cursor.sink.is_some() && !cursor.parked {
                cursor.parked = true;
                self.parked.push(key);
            }
            return Read::Empty(replaced);
        }
        let max = if cursor.bound.is_some() { 1 } else { max };
        let last = end.min(next + max as u64);
        // One allocation for the batch, not a growth step per transition.
        out.reserve_exact((last - next) as usize);
        for version in next..last {
            let transition = self.take(version, spill);
            self.cursor(key).next = version + 1;
            out.push_back(transition);
        }
        Read::Taken
    }

    /// Reads the transition to `version` for one reader and counts it as read. The last reader
    /// of the oldest entry frees it and takes its `old` by move instead of a clone.
    fn take(&mut self, version: u64, spill: &mut Option<T>) -> Transition<T> {
        let index = (version - self.start) as usize;
        const NO_OLD: &str = "keepwatch: internal error: log entry without its old value";
        // Clone before changing anything: a panicking `Clone` leaves the log as it was. The
        // first clone waits in `spill` (outside the lock) while the second is made, so a panic
        // there does not drop it under the lock.
        *spill = Some(self.entries[index].new.clone());
        if index == 0 && self.entries[0].unread == 1 {
            let freed = self.pop_oldest();
            let old = self.first_old.replace(freed).expect(NO_OLD);
            let new = spill.take().expect("just cloned");
            return Transition { old, new, version };
        }
        let old = match index {
            0 => self.first_old.as_ref(),
            _ => Some(&self.entries[index - 1].new),
        }
        .expect(NO_OLD)
        .clone();
        let new = spill.take().expect("just cloned");
        // Not the last reader of the oldest entry, so this entry stays: unread entries form a
        // suffix (see `mark_read`).
        self.entries[index].unread -= 1;
        Transition { old, new, version }
    }
}
