//! A small slab: values under reusable integer keys, for the subscription cursors and the
//! pending waits. It gives its storage back when it empties, so a burst leaves no memory
//! behind.

/// Storage an empty slab keeps (in entries) rather than giving back.
const EMPTY_KEEP: usize = 64;

/// Values under reusable keys.
#[derive(Debug)]
pub(crate) struct Slab<V> {
    entries: Vec<Option<V>>,
    free: Vec<usize>,
    len: usize,
}

impl<V> Default for Slab<V> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<V> Slab<V> {
    /// Stores `value`, returning its key.
    pub(crate) fn insert(&mut self, value: V) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(key) => {
                self.entries[key] = Some(value);
                key
            }
            None => {
                self.entries.push(Some(value));
                self.entries.len() - 1
            }
        }
    }

    /// The value under `key`, if any.
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut V> {
        self.entries.get_mut(key).and_then(Option::as_mut)
    }

    /// The value under `key`, if any.
    pub(crate) fn get(&self, key: usize) -> Option<&V> {
        self.entries.get(key).and_then(Option::as_ref)
    }

    /// Removes and returns the value under `key`, if any. The last removal gives back a large
    /// slab's storage.
    pub(crate) fn remove(&mut self, key: usize) -> Option<V> {
        let value = self.entries.get_mut(key)?.take()?;
        self.len -= 1;
        if self.len == 0 {
            if self.entries.capacity() > EMPTY_KEEP {
                *self = Slab::default();
            } else {
                self.entries.clear();
                self.free.clear();
            }
        } else {
            self.free.push(key);
            self.compact();
        }
        Some(value)
    }

    /// After a burst, with at most a quarter of the entries in use: drops the free entries at
    /// the end and gives back the storage they took. (Keys in use never move, so a long-lived
    /// entry at the end keeps the storage below it; the next removal after it goes retries.)
    fn compact(&mut self) {
        let long = self.entries.len();
        if long <= EMPTY_KEEP || self.len * 4 > long || self.entries[long - 1].is_some() {
            return;
        }
        while let Some(None) = self.entries.last() {
            self.entries.pop();
        }
        let end = self.entries.len();
        self.free.retain(|&key| key < end);
        shrink_if_sparse(&mut self.entries);
        shrink_if_sparse(&mut self.free);
    }

    /// How many values are stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Gives back most of a vector's storage once it is three quarters unused after a burst (so
/// memory returns to its level, at an amortised O(1) per removal).
pub(crate) fn shrink_if_sparse<X>(v: &mut Vec<X>) {
    if v.capacity() > EMPTY_KEEP && v.len() * 4 <= v.capacity() {
        v.shrink_to((v.len() * 2).max(EMPTY_KEEP));
    }
}

/// Things to drop later (outside the lock), with room for one without allocating: the common
/// critical section lets go of at most one.
#[derive(Debug)]
pub(crate) struct Bin<X> {
    one: Option<X>,
    more: Vec<X>,
}

impl<X> Default for Bin<X> {
    fn default() -> Self {
        Bin {
            one: None,
            more: Vec::new(),
        }
    }
}

impl<X> Bin<X> {
    /// Adds `x` (a value without drop glue is simply dropped: there is nothing to defer).
    #[inline]
    pub(crate) fn push(&mut self, x: X) {
        if !std::mem::needs_drop::<X>() {
            return;
        }
        if self.one.is_none() {
            self.one = Some(x);
        } else {
            self.more.push(x);
        }
    }

    /// Adds every item of `xs`.
    pub(crate) fn extend(&mut self, xs: impl IntoIterator<Item = X>) {
        xs.into_iter().for_each(|x| self.push(x));
    }

    /// Whether it holds nothing.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.one.is_none()
    }

    /// Takes every item out, in order, and hands it to `f`.
    #[inline]
    pub(crate) fn for_each(&mut self, mut f: impl FnMut(X)) {
        if let Some(one) = self.one.take() {
            f(one);
            if !self.more.is_empty() {
                std::mem::take(&mut self.more).into_iter().for_each(f);
            }
        }
    }

    /// Drops every item, in place, each even if another's `Drop` panics (the first panic is
    /// kept in `panics`).
    #[inline]
    pub(crate) fn drop_all(&mut self, panics: &mut crate::fault::Panics) {
        self.for_each(|x| panics.run(move || drop(x)));
    }
}
