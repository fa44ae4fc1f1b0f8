//! usrloc: the location table — for each address of record (AOR) its
//! contacts, with their expiry, q-value, Call-ID and CSeq, as OpenSER 1.3's
//! usrloc keeps them in memory (`db_mode` 0; the database modes come with the
//! database layer). The module has no script functions: registrar's `save`
//! and `lookup` work on this table.
//!
//! The table is shared by every worker: sharded by AOR, each shard behind its
//! own mutex, held only while one AOR's contacts are read or changed. Expired
//! contacts are never returned; they are removed when their AOR is next
//! touched, and a sweep of one shard every [`SWEEP_EVERY`] changes bounds the
//! memory held by AORs nobody touches again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One binding of an AOR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The Contact URI, as registered.
    pub uri: String,
    /// When it expires (Unix seconds).
    pub expires: i64,
    /// q-value in thousandths (`None`: unspecified).
    pub q: Option<u16>,
    pub callid: String,
    pub cseq: u32,
    pub user_agent: String,
    /// The local socket the REGISTER came in on.
    pub socket: SocketAddr,
    /// When it was last written (Unix seconds), for retransmission detection.
    pub last_modified: i64,
}

const SHARDS: usize = 64;

/// Changes between sweeps of one shard.
pub const SWEEP_EVERY: usize = 256;

type Shard = Mutex<HashMap<String, Vec<Contact>>>;

/// The location table (usrloc's `location`), cheap to clone (shared).
#[derive(Clone)]
pub struct Location {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Shard>,
    changes: AtomicUsize,
}

impl Default for Location {
    fn default() -> Location {
        Location {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                changes: AtomicUsize::new(0),
            }),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("aors", &self.aors()).finish()
    }
}

fn shard_of(aor: &str) -> usize {
    // FNV-1a: stable and quick for short keys.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in aor.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

impl Location {
    fn shard(&self, aor: &str) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Contact>>> {
        // A panic while a shard was held leaves whole contacts: keep serving.
        self.inner.shards[shard_of(aor)].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The contacts of `aor` that have not expired at `now`, in the order
    /// they were first registered.
    pub fn contacts(&self, aor: &str, now: i64) -> Vec<Contact> {
        let shard = self.shard(aor);
        shard.get(aor).map(|cs| cs.iter().filter(|c| c.expires > now).cloned().collect()).unwrap_or_default()
    }

    /// Runs `f` on the live contacts of `aor` (expired ones removed first),
    /// holding the AOR's shard; an AOR left with no contacts is removed.
    pub fn update<R>(&self, aor: &str, now: i64, f: impl FnOnce(&mut Vec<Contact>) -> R) -> R {
        let r = {
            let mut shard = self.shard(aor);
            let contacts = shard.entry(aor.to_string()).or_default();
            contacts.retain(|c| c.expires > now);
            let r = f(contacts);
            if contacts.is_empty() {
                shard.remove(aor);
            }
            r
        };
        let n = self.inner.changes.fetch_add(1, Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep((n / SWEEP_EVERY) % SHARDS, now);
        }
        r
    }

    /// Removes the expired contacts of one shard.
    fn sweep(&self, shard: usize, now: i64) {
        let mut shard = self.inner.shards[shard].lock().unwrap_or_else(PoisonError::into_inner);
        shard.retain(|_, cs| {
            cs.retain(|c| c.expires > now);
            !cs.is_empty()
        });
    }

    /// How many AORs the table holds (expired ones not yet swept included).
    pub fn aors(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(uri: &str, expires: i64) -> Contact {
        Contact {
            uri: uri.into(),
            expires,
            q: None,
            callid: "c".into(),
            cseq: 1,
            user_agent: String::new(),
            socket: "127.0.0.1:5060".parse().unwrap(),
            last_modified: 0,
        }
    }

    #[test]
    fn expired_contacts_are_never_returned_and_empty_aors_go() {
        let loc = Location::default();
        loc.update("alice", 100, |cs| {
            cs.push(contact("sip:a@1", 150));
            cs.push(contact("sip:a@2", 300));
        });
        assert_eq!(loc.contacts("alice", 100).len(), 2);
        assert_eq!(loc.contacts("alice", 200).len(), 1);
        loc.update("alice", 400, |cs| assert!(cs.is_empty()));
        assert_eq!(loc.aors(), 0);
    }

    #[test]
    fn sweeps_bound_what_nobody_touches_again() {
        let loc = Location::default();
        for i in 0..SWEEP_EVERY * SHARDS {
            loc.update(&format!("user{i}"), 0, |cs| cs.push(contact("sip:x@1", 10)));
        }
        let before = loc.aors();
        for i in 0..SWEEP_EVERY * SHARDS {
            loc.update("someone-else", 20, |_| ());
            let _ = i;
        }
        assert!(loc.aors() < before / 2, "{} of {before} left", loc.aors());
    }
}
