//! The answers of DNS queries, by name and record type, on tokio's clock.
//!
//! - A positive answer is kept for the smallest TTL of its records (capped by the
//!   resolver's `max_ttl`); a negative one (NXDOMAIN, no record of the type) for
//!   the SOA's negative TTL capped by `negative_ttl`; a failure (timeout,
//!   SERVFAIL, REFUSED …) for `failure_ttl`, so that a DNS outage costs one
//!   timeout per name and period rather than one per message.
//! - At most `capacity` answers are kept; when full, the CLOCK algorithm (an
//!   approximation of LRU: a ring of entries with a "used since the hand last
//!   passed" bit) picks the one replaced, preferring expired entries.
//! - Concurrent lookups of one key share one query: the first caller runs it,
//!   the others wait for its answer (if the first caller is dropped, a waiting
//!   one takes over the query).
//!
//! Time is `tokio::time::Instant`, so tests pause and advance it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::select::{Naptr, Srv};

/// The record types RFC 3263 asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Naptr,
    Srv,
    A,
    Aaaa,
}

/// What is cached: a name (lower-case, as queried) and a record type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub name: String,
    pub kind: Kind,
}

/// The records of one answer, of the queried type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Records {
    Naptr(Vec<Naptr>),
    Srv(Vec<Srv>),
    Addrs(Vec<IpAddr>),
}

/// The outcome of one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// At least one record of the type.
    Records(Records),
    /// NXDOMAIN, or the name has no record of the type.
    NoRecords,
    /// The query failed; the text says why.
    Failed(String),
}

/// An answer and when it stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub answer: Answer,
    pub expires: Instant,
}

struct Slot {
    key: Key,
    entry: Arc<Entry>,
    /// Used since the clock hand last passed.
    referenced: bool,
}

#[derive(Default)]
struct Inner {
    index: HashMap<Key, usize>,
    slots: Vec<Slot>,
    hand: usize,
    /// Queries under way, shared by everyone asking for the same key.
    inflight: HashMap<Key, Arc<OnceCell<Arc<Entry>>>>,
}

pub(crate) struct Cache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache { capacity, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if something ever did, the map is
        // still consistent enough to keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached answer for `key` if it is still valid (no query).
    pub fn fresh(&self, key: &Key) -> Option<Arc<Entry>> {
        self.lock().fresh(key, Instant::now())
    }

    /// The number of answers kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// The cached answer for `key`, or the answer of `fetch` — shared with every
    /// concurrent caller asking for the same key — which is then kept until it
    /// expires.
    pub async fn get_or_fetch<F, Fut>(&self, key: &Key, fetch: F) -> Arc<Entry>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Entry>,
    {
        let cell = {
            let mut inner = self.lock();
            if let Some(entry) = inner.fresh(key, Instant::now()) {
                return entry;
            }
            inner.inflight.entry(key.clone()).or_insert_with(|| Arc::new(OnceCell::new())).clone()
        };
        let entry = cell.get_or_init(|| async { Arc::new(fetch().await) }).await.clone();
        let mut inner = self.lock();
        // The first caller back moves the answer from "under way" to the cache.
        if inner.inflight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inner.inflight.remove(key);
            if entry.expires > Instant::now() {
                inner.insert(self.capacity, key.clone(), entry.clone());
            }
        }
        entry
    }
}

impl Inner {
    fn fresh(&mut self, key: &Key, now: Instant) -> Option<Arc<Entry>> {
        let slot = &mut self.slots[*self.index.get(key)?];
        if slot.entry.expires > now {
            slot.referenced = true;
            Some(slot.entry.clone())
        } else {
            None
        }
    }

    fn insert(&mut self, capacity: usize, key: Key, entry: Arc<Entry>) {
        if let Some(&i) = self.index.get(&key) {
            self.slots[i].entry = entry;
            self.slots[i].referenced = false;
            return;
        }
        if capacity == 0 {
            return;
        }
        if self.slots.len() < capacity {
            self.index.insert(key.clone(), self.slots.len());
            self.slots.push(Slot { key, entry, referenced: false });
            return;
        }
        // CLOCK: pass over (and clear) entries used since the last pass; take the
        // first unused or expired one. Two turns at most.
        let now = Instant::now();
        let victim = loop {
            let hand = self.hand % self.slots.len();
            self.hand = hand + 1;
            let slot = &mut self.slots[hand];
            if slot.referenced && slot.entry.expires > now {
                slot.referenced = false;
            } else {
                break hand;
            }
        };
        let old = std::mem::replace(&mut self.slots[victim], Slot { key: key.clone(), entry, referenced: false });
        self.index.remove(&old.key);
        self.index.insert(key, victim);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(name: &str) -> Key {
        Key { name: name.into(), kind: Kind::A }
    }

    fn entry(ip: [u8; 4], ttl: u64) -> Entry {
        Entry {
            answer: Answer::Records(Records::Addrs(vec![IpAddr::from(ip)])),
            expires: Instant::now() + Duration::from_secs(ttl),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_and_replacement() {
        let cache = Cache::new(8);
        let e = cache.get_or_fetch(&key("a."), || async { entry([192, 0, 2, 1], 60) }).await;
        assert_eq!(cache.fresh(&key("a.")), Some(e));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(cache.fresh(&key("a.")).is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(cache.fresh(&key("a.")).is_none());
        // Expired: fetched again, and the slot reused.
        let e2 = cache.get_or_fetch(&key("a."), || async { entry([192, 0, 2, 2], 60) }).await;
        assert_eq!(cache.fresh(&key("a.")), Some(e2));
        assert_eq!(cache.len(), 1);
        // A TTL of 0 is answered but not kept.
        cache.get_or_fetch(&key("z."), || async { entry([192, 0, 2, 3], 0) }).await;
        assert!(cache.fresh(&key("z.")).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn clock_keeps_what_is_used() {
        let cache = Cache::new(3);
        for name in ["a.", "b.", "c."] {
            cache.get_or_fetch(&key(name), || async { entry([192, 0, 2, 1], 600) }).await;
        }
        // a and c used; b not: b goes first.
        assert!(cache.fresh(&key("a.")).is_some());
        assert!(cache.fresh(&key("c.")).is_some());
        cache.get_or_fetch(&key("d."), || async { entry([192, 0, 2, 4], 600) }).await;
        assert_eq!(cache.len(), 3);
        assert!(cache.fresh(&key("b.")).is_none());
        for name in ["a.", "c.", "d."] {
            assert!(cache.fresh(&key(name)).is_some(), "{name}");
        }
        // An expired entry goes before a used one.
        cache.get_or_fetch(&key("short."), || async { entry([192, 0, 2, 5], 1) }).await;
        tokio::time::advance(Duration::from_secs(2)).await;
        for name in ["a.", "c.", "d."] {
            cache.fresh(&key(name));
        }
        cache.get_or_fetch(&key("e."), || async { entry([192, 0, 2, 6], 600) }).await;
        assert_eq!(cache.len(), 3);
        assert!(cache.fresh(&key("e.")).is_some());
        assert!(cache.fresh(&key("short.")).is_none());
        // Capacity 0 keeps nothing.
        let none = Cache::new(0);
        none.get_or_fetch(&key("a."), || async { entry([192, 0, 2, 1], 600) }).await;
        assert_eq!(none.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(Cache::new(8));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(&key("a."), || async {
                        fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        entry([192, 0, 2, 1], 60)
                    })
                    .await
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| Arc::ptr_eq(a, &answers[0])));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_first_caller_is_taken_over() {
        let cache = Arc::new(Cache::new(8));
        let first = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_fetch(&key("a."), || async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        entry([192, 0, 2, 1], 60)
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let second = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get_or_fetch(&key("a."), || async { entry([192, 0, 2, 2], 60) }).await })
        };
        tokio::task::yield_now().await;
        first.abort();
        let got = second.await.unwrap();
        assert_eq!(got.answer, Answer::Records(Records::Addrs(vec![IpAddr::from([192, 0, 2, 2])])));
        assert_eq!(cache.fresh(&key("a.")), Some(got));
    }
}
