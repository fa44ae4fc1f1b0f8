//! usrloc: the location table — for each address of record (AOR) its
//! contacts, with their expiry, q-value, Call-ID and CSeq, user agent,
//! socket, methods, received address, Path and flags, as OpenSER 1.3's
//! usrloc keeps them. The module has no script functions: registrar's `save`
//! and `lookup` work on this table.
//!
//! The table is shared by every worker: sharded by AOR, each shard behind its
//! own mutex, held only while one AOR's contacts are read or changed. Expired
//! contacts are never returned; they are removed when their AOR is next
//! touched, and a sweep of one shard every [`SWEEP_EVERY`] changes bounds the
//! memory held by AORs nobody touches again.
//!
//! Persistence (`db_mode`, [`DbMode`]), on OpenSER 1.3's `location` table
//! (version 1004) through [`crate::db`]; [`Location::attach`] at start:
//! - 1, write-through: the table is loaded at start (bindings and their
//!   expiries survive a restart); every change of an AOR is written, in one
//!   transaction, before [`Location::update`] returns. A failed write leaves
//!   the AOR as it was and is an error (registrar answers 500; OpenSER 1.3
//!   logged it and answered 200, losing the binding at the next restart).
//! - 2, write-back: loaded at start; changed AORs are written every
//!   `timer_interval` seconds (and at [`Location::flush`]); a failed flush is
//!   retried at the next.
//! - 3, database only: nothing is kept in memory; every lookup reads the
//!   database and every change writes it, so several proxies share one table.
//!
//! In every mode a timer deletes expired rows every `timer_interval` seconds.
//! An AOR's rows are written by deleting them and inserting its contacts, in
//! one transaction: the shard's lock is held meanwhile (as 1.3 held its
//! slot's), so writes of one AOR never interleave within a proxy. Between
//! proxies sharing a table (mode 3) two changes of the same AOR at the same
//! moment can overwrite each other, as in 1.3.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hashbrown::HashTable;

use crate::db::{self, Db, DbError, Stmt, Value};
use crate::mi::{Arity, MiNode, MiReply};
use crate::proxy::Transport;
use crate::script::ModParams;

/// One binding of an AOR.
#[derive(Clone, Debug, PartialEq)]
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
    /// The local socket the REGISTER came in on, and its transport.
    pub socket: SocketAddr,
    pub transport: Transport,
    /// When it was last written (Unix seconds), for retransmission detection.
    pub last_modified: i64,
    /// The methods it accepts ([`crate::modules::registrar::method_bit`]
    /// bits; all when the REGISTER did not say), for `method_filtering`.
    pub methods: u32,
    /// Where requests for it really go, when the contact is behind a NAT:
    /// the contact's `received` parameter, registrar's `received_avp` or the
    /// first Path URI's `received` (`path_use_received`). `lookup` makes it `$du`.
    pub received: Option<String>,
    /// The REGISTER's Path headers, joined by commas (registrar's
    /// `use_path`, RFC 3327): `lookup` sends requests along it, as Route headers.
    pub path: Option<String>,
    /// `save`'s flags argument, kept as 1.3 kept it.
    pub flags: u32,
    /// The branch flags of the REGISTER (`setbflag`), given back to the
    /// branch `lookup` makes for the contact (nathelper's NAT flag …).
    pub cflags: u32,
}

/// A contact's `flags` bit kept out of the database (`save`'s flag 0x01):
/// with any `db_mode` it lives in memory only, and is lost at a restart (with
/// `db_mode` 3, which keeps nothing in memory, it is not stored at all), as in 1.3.
pub const FL_MEM: u32 = 0x01;

const SHARDS: usize = 64;

/// Changes between sweeps of one shard.
pub const SWEEP_EVERY: usize = 256;

type Shard = Mutex<Aors>;

/// One shard's AORs. Each entry keeps its key's hash, so a growing shard
/// moves its entries without hashing any key again (in a registrar taking
/// new AORs, rehashing was the table's largest cost).
#[derive(Default)]
struct Aors(HashTable<Aor>);

/// An AOR in a shard: its key ([`key`]), the key's hash ([`Location::hash`]), its contacts.
struct Aor {
    hash: u64,
    key: String,
    contacts: Vec<Contact>,
    /// The earliest `expires` of `contacts` (`i64::MAX` without any),
    /// restored by [`Aor::settle`] after every change: a sweep passes the
    /// AORs with nothing expired without reading their contacts.
    first_expiry: i64,
}

impl Aor {
    /// Drops the contacts expired at `now`.
    fn expire(&mut self, now: i64) {
        if self.first_expiry <= now {
            self.contacts.retain(|c| c.expires > now);
            self.settle();
        }
    }

    /// Restores `first_expiry` after `contacts` changed.
    fn settle(&mut self) {
        self.first_expiry = self.contacts.iter().map(|c| c.expires).min().unwrap_or(i64::MAX);
    }
}

impl Aors {
    fn get(&self, hash: u64, key: &str) -> Option<&Vec<Contact>> {
        self.0.find(hash, |a| a.hash == hash && a.key == key).map(|a| &a.contacts)
    }

    /// The AOR, inserted without contacts if absent.
    fn get_or_insert(&mut self, hash: u64, key: &str) -> &mut Aor {
        let entry = self.0.entry(hash, |a| a.hash == hash && a.key == key, |a| a.hash);
        entry
            .or_insert_with(|| Aor { hash, key: key.to_string(), contacts: Vec::new(), first_expiry: i64::MAX })
            .into_mut()
    }

    fn remove(&mut self, hash: u64, key: &str) {
        if let Ok(entry) = self.0.find_entry(hash, |a| a.hash == hash && a.key == key) {
            entry.remove();
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Vec<Contact>)> {
        self.0.iter().map(|a| (a.key.as_str(), &a.contacts))
    }
}

/// usrloc's `db_mode`s beyond 0 (memory only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbMode {
    /// 1: every change written before it is acknowledged.
    WriteThrough,
    /// 2: changes written every `timer_interval`.
    WriteBack,
    /// 3: the database only.
    DbOnly,
}

impl DbMode {
    /// `db_mode` 1, 2, 3; `None` for 0; an error for anything else.
    pub fn from_param(mode: i64) -> Result<Option<DbMode>, String> {
        match mode {
            0 => Ok(None),
            1 => Ok(Some(DbMode::WriteThrough)),
            2 => Ok(Some(DbMode::WriteBack)),
            3 => Ok(Some(DbMode::DbOnly)),
            n => Err(format!("usrloc's db_mode {n}: expected 0, 1, 2 or 3")),
        }
    }
}

/// The `location` table's column names (usrloc's `*_column` modparams).
#[derive(Clone, Debug)]
pub struct Columns {
    pub user: String,
    pub domain: String,
    pub contact: String,
    pub expires: String,
    pub q: String,
    pub callid: String,
    pub cseq: String,
    pub flags: String,
    pub cflags: String,
    pub user_agent: String,
    pub socket: String,
    pub last_modified: String,
    pub methods: String,
    pub received: String,
    pub path: String,
}

impl Default for Columns {
    fn default() -> Columns {
        Columns::from_params(&ModParams::default()).unwrap_or_else(|_| unreachable!("the defaults are identifiers"))
    }
}

impl Columns {
    /// From usrloc's modparams; an error names a column that is not an identifier.
    pub fn from_params(params: &ModParams) -> Result<Columns, DbError> {
        let c = |p: &str| -> Result<String, DbError> {
            let v = params.get("usrloc", p);
            let name = v.as_text();
            Ok(db::ident(name.trim())?.to_string())
        };
        Ok(Columns {
            user: c("user_column")?,
            domain: c("domain_column")?,
            contact: c("contact_column")?,
            expires: c("expires_column")?,
            q: c("q_column")?,
            callid: c("callid_column")?,
            cseq: c("cseq_column")?,
            flags: c("flags_column")?,
            cflags: c("cflags_column")?,
            user_agent: c("user_agent_column")?,
            socket: c("socket_column")?,
            // 1.3 has no parameter for it.
            last_modified: "last_modified".to_string(),
            methods: c("methods_column")?,
            received: c("received_column")?,
            path: c("path_column")?,
        })
    }
}

/// What the location table is persisted to.
#[derive(Clone, Debug)]
pub struct DbSettings {
    pub mode: DbMode,
    pub columns: Columns,
    /// usrloc's `use_domain`: AORs are user@domain, rows matched by both.
    pub use_domain: bool,
    /// `timer_interval`: write-back and expired rows' deletion.
    pub timer_interval: Duration,
    /// The tables loaded at start (modes 1 and 2) and checked.
    pub tables: Vec<String>,
}

struct Persist {
    db: Db,
    settings: DbSettings,
    /// Write-back: keys changed since the last flush.
    dirty: Mutex<HashSet<String>>,
}

/// The location table (usrloc's `location`), cheap to clone (shared).
#[derive(Clone)]
pub struct Location {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Shard>,
    /// The keyed hash of AOR keys (std's SipHash with random keys: AORs
    /// come from the network, so their placement must not be predictable).
    keys: RandomState,
    changes: AtomicUsize,
    persist: OnceLock<Persist>,
}

impl Default for Location {
    fn default() -> Location {
        Location {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                keys: RandomState::new(),
                changes: AtomicUsize::new(0),
                persist: OnceLock::new(),
            }),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("aors", &self.aors()).finish()
    }
}

/// The shard of a key's hash: bits 32 and up. Within a shard the table
/// places entries by the hash's low bits and tags them with its top 7, so the
/// shard takes neither (a shard this size never has 2^32 buckets).
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

/// The key of an AOR in a table: usrloc keeps a table (`location`,
/// `aliases` …) per name, each AOR within its own.
pub fn key(table: &str, aor: &str) -> String {
    let mut k = key_start(table, aor.len());
    k.push_str(aor);
    k
}

/// The start of a [`key`]: its table part, with room for an AOR of
/// `aor_len` bytes, which the caller appends.
pub fn key_start(table: &str, aor_len: usize) -> String {
    let mut k = String::with_capacity(table.len() + 1 + aor_len);
    k.push_str(table);
    k.push('\0');
    k
}

/// A key's table and AOR.
fn split_key(key: &str) -> (&str, &str) {
    key.split_once('\0').unwrap_or(("location", key))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Location {
    /// The hash of a key, computed once per operation: it picks the shard
    /// and places the key within it.
    fn hash(&self, key: &str) -> u64 {
        self.inner.keys.hash_one(key)
    }

    /// The shard of a key's hash, locked.
    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Aors> {
        // A panic while a shard was held leaves whole contacts: keep serving.
        self.inner.shards[shard_of(hash)].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The database mode, if the table is persisted.
    pub fn db_mode(&self) -> Option<DbMode> {
        self.inner.persist.get().map(|p| p.settings.mode)
    }

    /// Persists the table to `db` (see the module's documentation): checks
    /// the tables' layout, loads them (modes 1 and 2) and starts the timer
    /// on the database's runtime. Once only.
    pub async fn attach(&self, db: Db, settings: DbSettings) -> Result<(), DbError> {
        for t in &settings.tables {
            db::ident(t)?;
        }
        let tables: Vec<&str> = settings.tables.iter().map(String::as_str).collect();
        db::schema::check(&db, &tables).await?;
        let persist = Persist { db, settings, dirty: Mutex::new(HashSet::new()) };
        if persist.settings.mode != DbMode::DbOnly {
            let now = now_secs();
            for table in &persist.settings.tables {
                let loaded = persist.db.query(persist.select_sql(table, false), vec![Value::Time(now)]).await?;
                let mut n = 0;
                for row in &loaded {
                    let Some((aor, c)) = persist.contact_of(row, true) else { continue };
                    let k = key(table, &aor);
                    let h = self.hash(&k);
                    let mut shard = self.shard(h);
                    let aor = shard.get_or_insert(h, &k);
                    aor.contacts.push(c);
                    aor.settle();
                    n += 1;
                }
                tracing::info!(table = %table, contacts = n, "usrloc: loaded from {}", persist.db.url());
            }
        }
        if self.inner.persist.set(persist).is_err() {
            return Err(DbError::Query("usrloc's database is attached already".into()));
        }
        let weak = Arc::downgrade(&self.inner);
        let p = self.inner.persist.get().unwrap_or_else(|| unreachable!());
        let interval = p.settings.timer_interval.max(Duration::from_secs(1));
        p.db.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let loc = Location { inner };
                if let Err(e) = loc.timer().await {
                    tracing::error!("usrloc timer: {e}");
                }
            }
        });
        Ok(())
    }

    /// What the timer does: write-back of changed AORs, deletion of expired rows.
    async fn timer(&self) -> Result<(), DbError> {
        let Some(p) = self.inner.persist.get() else { return Ok(()) };
        let flushed = self.flush().await;
        let now = now_secs();
        for table in &p.settings.tables {
            let sql = format!("DELETE FROM {table} WHERE {} <= ?", p.settings.columns.expires);
            p.db.execute(sql, vec![Value::Time(now)]).await?;
        }
        flushed
    }

    /// Write-back: writes every AOR changed since the last flush (a failed
    /// one stays to be written at the next). Does nothing in other modes.
    pub async fn flush(&self) -> Result<(), DbError> {
        let Some(p) = self.inner.persist.get() else { return Ok(()) };
        if p.settings.mode != DbMode::WriteBack {
            return Ok(());
        }
        let keys: Vec<String> = p.dirty.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        let now = now_secs();
        let mut first_error = None;
        for k in keys {
            let h = self.hash(&k);
            let contacts = self.shard(h).get(h, &k).map(|cs| cs.iter().filter(|c| c.expires > now).cloned().collect());
            let contacts: Vec<Contact> = contacts.unwrap_or_default();
            if let Err(e) = p.db.transaction(p.write_stmts(&k, &contacts)).await {
                p.dirty.lock().unwrap_or_else(PoisonError::into_inner).insert(k);
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The contacts of the AOR `key` ([`key`]) that have not expired at
    /// `now`, in the order they were first registered ([`Location::find`]);
    /// none when the database of `db_mode` 3 does not answer.
    pub fn contacts(&self, key: &str, now: i64) -> Vec<Contact> {
        self.find(key, now).unwrap_or_default()
    }

    /// The contacts of the AOR `key` ([`key`]) that have not expired at
    /// `now`, in the order they were first registered. With `db_mode` 3, read
    /// from the database (an error when it does not answer).
    pub fn find(&self, key: &str, now: i64) -> Result<Vec<Contact>, DbError> {
        self.with_live(key, now, |live| live.cloned().collect())
    }

    /// Runs `f` on the live contacts of the AOR `key` (none when it has none),
    /// without copying them: in memory under the AOR's shard lock (so `f` must
    /// be quick), with `db_mode` 3 on those the database gave.
    pub fn with_live<R>(
        &self,
        key: &str,
        now: i64,
        f: impl FnOnce(&mut dyn Iterator<Item = &Contact>) -> R,
    ) -> Result<R, DbError> {
        if let Some(p) = self.inner.persist.get().filter(|p| p.settings.mode == DbMode::DbOnly) {
            let loaded = p.load(key, now)?;
            return Ok(f(&mut loaded.iter()));
        }
        let h = self.hash(key);
        let shard = self.shard(h);
        let contacts = shard.get(h, key).map_or(&[][..], Vec::as_slice);
        Ok(f(&mut contacts.iter().filter(|c| c.expires > now)))
    }

    /// Runs `f` on the live contacts of the AOR `key` (expired ones removed
    /// first), holding the AOR's shard; an AOR left with no contacts is
    /// removed. When `f` returns `Ok` and changed the contacts, the change is
    /// persisted as `db_mode` says; with modes 1 and 3 a failed write is an
    /// `Err` and nothing changed. When `f` returns `Err` it must not have
    /// changed anything (its changes are dropped when the table is persisted).
    pub fn update<R, E>(
        &self,
        key: &str,
        now: i64,
        f: impl FnOnce(&mut Vec<Contact>) -> Result<R, E>,
    ) -> Result<Result<R, E>, DbError> {
        let persist = self.inner.persist.get();
        let r = {
            let h = self.hash(key);
            let mut shard = self.shard(h);
            match persist {
                Some(p) if p.settings.mode == DbMode::DbOnly => {
                    // The shard's lock orders this proxy's changes of the AOR.
                    let mut contacts = p.load(key, now)?;
                    let before = contacts.clone();
                    let r = f(&mut contacts);
                    if r.is_ok() && contacts != before {
                        p.db.transaction_now(p.write_stmts(key, &contacts))?;
                    }
                    r
                }
                Some(p) => {
                    let current = shard.get_or_insert(h, key);
                    current.expire(now);
                    let mut contacts = current.contacts.clone();
                    let r = f(&mut contacts);
                    if r.is_ok() && contacts != current.contacts {
                        if p.settings.mode == DbMode::WriteThrough {
                            if let Err(e) = p.db.transaction_now(p.write_stmts(key, &contacts)) {
                                if current.contacts.is_empty() {
                                    shard.remove(h, key);
                                }
                                return Err(e);
                            }
                        } else {
                            p.dirty.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_string());
                        }
                        current.contacts = contacts;
                        current.settle();
                    }
                    if current.contacts.is_empty() {
                        shard.remove(h, key);
                    }
                    r
                }
                None => {
                    let aor = shard.get_or_insert(h, key);
                    aor.expire(now);
                    let r = f(&mut aor.contacts);
                    aor.settle();
                    if aor.contacts.is_empty() {
                        shard.remove(h, key);
                    }
                    r
                }
            }
        };
        let n = self.inner.changes.fetch_add(1, Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep((n / SWEEP_EVERY) % SHARDS, now);
        }
        Ok(r)
    }

    /// Removes the expired contacts of one shard.
    fn sweep(&self, shard: usize, now: i64) {
        let mut shard = self.inner.shards[shard].lock().unwrap_or_else(PoisonError::into_inner);
        shard.0.retain(|a| {
            a.expire(now);
            !a.contacts.is_empty()
        });
    }

    /// How many AORs the table holds in memory (expired ones not yet swept included).
    pub fn aors(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    /// Every AOR of `table` held in memory with its live contacts at `now`,
    /// sorted by AOR (what MI's `ul_dump` lists; with `db_mode` 3 the memory
    /// holds nothing), and the most AORs one shard holds.
    pub fn dump(&self, table: &str, now: i64) -> (Vec<(String, Vec<Contact>)>, usize) {
        let mut out = Vec::new();
        let mut max_slot = 0;
        for shard in &self.inner.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let mut n = 0;
            for (k, cs) in shard.iter() {
                let (t, aor) = split_key(k);
                let live: Vec<Contact> = cs.iter().filter(|c| c.expires > now).cloned().collect();
                if t == table && !live.is_empty() {
                    out.push((aor.to_string(), live));
                    n += 1;
                }
            }
            max_slot = max_slot.max(n);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        (out, max_slot)
    }

    /// (AORs, contacts) with a live contact at `now`, over every table in memory.
    pub fn counts(&self, now: i64) -> (u64, u64) {
        let mut aors = 0;
        let mut contacts = 0;
        for shard in &self.inner.shards {
            for (_, cs) in shard.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                let live = cs.iter().filter(|c| c.expires > now).count() as u64;
                aors += u64::from(live > 0);
                contacts += live;
            }
        }
        (aors, contacts)
    }
}

impl Persist {
    fn cols(&self) -> &Columns {
        &self.settings.columns
    }

    /// The username and domain of an AOR (`user` or `user@domain`).
    fn user_domain<'a>(&self, aor: &'a str) -> (&'a str, Option<&'a str>) {
        if self.settings.use_domain {
            match aor.rsplit_once('@') {
                Some((u, d)) => (u, Some(d)),
                None => (aor, Some("")),
            }
        } else {
            (aor, None)
        }
    }

    /// `SELECT` of live contacts: of one AOR (`by_aor`: user [and domain]
    /// and expires parameters) or of the whole table (expires only).
    fn select_sql(&self, table: &str, by_aor: bool) -> String {
        let c = self.cols();
        let mut sql = format!(
            "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM {table} WHERE ",
            c.user,
            c.domain,
            c.contact,
            c.expires,
            c.q,
            c.callid,
            c.cseq,
            c.user_agent,
            c.socket,
            c.last_modified,
            c.methods,
            c.received,
            c.path,
            c.flags,
            c.cflags
        );
        if by_aor {
            sql.push_str(&format!("{} = ? AND ", c.user));
            if self.settings.use_domain {
                sql.push_str(&format!("{} = ? AND ", c.domain));
            }
        }
        sql.push_str(&format!("{} > ? ORDER BY id", c.expires));
        sql
    }

    /// A row of [`Persist::select_sql`] as (AOR, contact); `None` when it
    /// cannot be one (no contact URI).
    fn contact_of(&self, row: &db::Row, with_aor: bool) -> Option<(String, Contact)> {
        let user = row.text(0).unwrap_or_default();
        let aor = match (with_aor && self.settings.use_domain, row.text(1)) {
            (true, Some(d)) if !d.is_empty() => format!("{user}@{d}"),
            _ => user,
        };
        let uri = row.text(2).filter(|u| !u.is_empty())?;
        let q = row.float(4).filter(|q| (0.0..=1.0).contains(q)).map(|q| (q * 1000.0).round() as u16);
        let (transport, socket) = parse_socket(&row.text(8).unwrap_or_default());
        // Whatever a row holds, times stay within years 0 to 9999 (no overflow later).
        let time = |i| row.time(i).unwrap_or(0).clamp(-62_167_219_200, 253_402_300_799);
        Some((
            aor,
            Contact {
                uri,
                expires: time(3),
                q,
                callid: row.text(5).unwrap_or_default(),
                cseq: row.int(6).and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
                user_agent: row.text(7).unwrap_or_default(),
                socket,
                transport,
                last_modified: time(9),
                // NULL (or a row 1.3 wrote without methods): every method.
                // (A 32-bit INT column: stored as 1.3 did, the bits as a signed int.)
                methods: row.int(10).map_or(u32::MAX, |m| m as i32 as u32),
                received: row.text(11).filter(|r| !r.is_empty()),
                path: row.text(12).filter(|p| !p.is_empty()),
                flags: row.int(13).map_or(0, |f| f as i32 as u32),
                cflags: row.int(14).map_or(0, |f| f as i32 as u32),
            },
        ))
    }

    /// The live contacts of `key`, from the database (blocking).
    fn load(&self, key: &str, now: i64) -> Result<Vec<Contact>, DbError> {
        let (table, aor) = split_key(key);
        let (user, domain) = self.user_domain(aor);
        let mut params = vec![Value::from(user)];
        if let Some(d) = domain {
            params.push(d.into());
        }
        params.push(Value::Time(now));
        let rows = self.db.query_now(self.select_sql(table, true), params)?;
        Ok(rows.iter().filter_map(|r| self.contact_of(r, false)).map(|(_, c)| c).collect())
    }

    /// The statements that make the AOR's rows `contacts`.
    fn write_stmts(&self, key: &str, contacts: &[Contact]) -> Vec<Stmt> {
        let (table, aor) = split_key(key);
        let (user, domain) = self.user_domain(aor);
        let c = self.cols();
        let mut key_params = vec![Value::from(user)];
        let mut delete = format!("DELETE FROM {table} WHERE {} = ?", c.user);
        if let Some(d) = domain {
            delete.push_str(&format!(" AND {} = ?", c.domain));
            key_params.push(d.into());
        }
        let mut stmts = vec![Stmt::new(delete, key_params)];
        let insert = format!(
            "INSERT INTO {table} ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            c.user,
            c.domain,
            c.contact,
            c.expires,
            c.q,
            c.callid,
            c.cseq,
            c.last_modified,
            c.flags,
            c.cflags,
            c.user_agent,
            c.socket,
            c.methods,
            c.received,
            c.path
        );
        for k in contacts.iter().filter(|k| k.flags & FL_MEM == 0) {
            stmts.push(Stmt::new(
                insert.clone(),
                vec![
                    user.into(),
                    domain.map_or(Value::Null, Value::from),
                    k.uri.as_str().into(),
                    Value::Time(k.expires),
                    // 1.3 stores an unspecified q as -1.
                    Value::Float(k.q.map_or(-1.0, |q| f64::from(q) / 1000.0)),
                    k.callid.as_str().into(),
                    Value::Int(k.cseq.into()),
                    Value::Time(k.last_modified),
                    // 32-bit INT columns: the bits as a signed int, as 1.3 stored them.
                    Value::Int(i64::from(k.flags as i32)),
                    Value::Int(i64::from(k.cflags as i32)),
                    k.user_agent.as_str().into(),
                    format!("{}:{}", k.transport.name().to_ascii_lowercase(), k.socket).into(),
                    Value::Int(i64::from(k.methods as i32)),
                    k.received.as_deref().map_or(Value::Null, Value::from),
                    k.path.as_deref().map_or(Value::Null, Value::from),
                ],
            ));
        }
        stmts
    }
}

/// OpenSER's `proto:address:port` socket text (`udp:` when it has no protocol).
fn parse_socket(text: &str) -> (Transport, SocketAddr) {
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let (transport, rest) = match text.split_once(':') {
        Some((p, rest)) => match Transport::parse(p) {
            Some(t) => (t, rest),
            None => (Transport::Udp, text),
        },
        None => (Transport::Udp, text),
    };
    let addr = rest.parse::<SocketAddr>().ok().or_else(|| {
        let (host, port) = rest.rsplit_once(':')?;
        let ip = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
        Some(SocketAddr::new(ip, port.parse().ok()?))
    });
    (transport, addr.unwrap_or(unknown))
}

/// The settings of `db_mode` from usrloc's modparams (`None`: `db_mode` 0),
/// with the database URL: `db_url` when the config set it, else the
/// embedded SQLite default (the flag is true then).
pub fn db_settings(params: &ModParams) -> Result<Option<(DbSettings, db::DbUrl, bool)>, String> {
    let Some(mode) = DbMode::from_param(params.int("usrloc", "db_mode"))? else { return Ok(None) };
    let columns = Columns::from_params(params).map_err(|e| format!("usrloc: {e}"))?;
    let explicit = params.explicit("usrloc", "db_url").map(|v| v.as_text().into_owned());
    let (url, embedded) = db::DbUrl::for_module(explicit.as_deref()).map_err(|e| format!("usrloc: {e}"))?;
    let interval = params.int("usrloc", "timer_interval").clamp(1, 86_400) as u64;
    Ok(Some((
        DbSettings {
            mode,
            columns,
            use_domain: params.int("usrloc", "use_domain") != 0,
            timer_interval: Duration::from_secs(interval),
            tables: vec!["location".to_string()],
        },
        url,
        embedded,
    )))
}

/// At start: persists `config.usrloc` as usrloc's modparams say (nothing
/// for `db_mode` 0). Without a `db_url` the embedded SQLite file is used,
/// with a warning, and its tables are created when missing; a database named
/// by `db_url` must have them (`serc db init`).
pub async fn start(config: &crate::script::Config) -> Result<(), String> {
    let Some((settings, url, embedded)) = db_settings(&config.params)? else { return Ok(()) };
    if embedded {
        tracing::warn!(
            "usrloc: db_mode {} without db_url: serc uses the embedded SQLite file {url} \
             (OpenSER 1.3 would use {})",
            params_mode(settings.mode),
            db::redact(db::OPENSER_DEFAULT_URL)
        );
    }
    let database = Db::shared(&url, db::DEFAULT_TIMEOUT).map_err(|e| format!("usrloc: {e}"))?;
    if embedded {
        db::schema::init(&database).await.map_err(|e| format!("usrloc: {e}"))?;
    }
    config.usrloc.attach(database, settings).await.map_err(|e| format!("usrloc: {e}"))
}

// ------------------------------------------------------------------ MI

/// 1.3's `PERMANENT` contacts of `ul_add` with expires 0: kept until removed
/// (the last second of year 9999, so that the database can store it).
pub const PERMANENT: i64 = 253_402_300_799;

/// The Call-ID, CSeq and User-Agent of contacts `ul_add` makes, as 1.3's.
const MI_CALLID: &str = "dfjrewr12386fd6-343@openser.mi";
const MI_CSEQ: u32 = 1;
const MI_USER_AGENT: &str = "OpenSER MI Server";

impl Location {
    /// The tables MI commands name: `location` (what `save`/`lookup` use
    /// unless the script names another) and every table holding AORs.
    fn has_table(&self, table: &str) -> bool {
        table == "location"
            || self.inner.persist.get().is_some_and(|p| p.settings.tables.iter().any(|t| t == table))
            || self
                .inner
                .shards
                .iter()
                .any(|s| s.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|(k, _)| split_key(k).0 == table))
    }

    /// 1.3's contact state in `ul_dump`: memory only (`CS_NEW`), written
    /// (`CS_SYNC`), or waiting for write-back (`CS_DIRTY`).
    fn state(&self, key: &str) -> &'static str {
        match self.inner.persist.get() {
            None => "CS_NEW",
            Some(p) if p.dirty.lock().unwrap_or_else(PoisonError::into_inner).contains(key) => "CS_DIRTY",
            Some(_) => "CS_SYNC",
        }
    }
}

/// The location key an MI command names (table, AOR), or the reply 1.3
/// gives: 404 for an unknown table, 400 for an AOR `mi_aor` refuses.
fn mi_key(loc: &Location, table: &str, aor: &str, use_domain: bool) -> Result<String, MiReply> {
    if !loc.has_table(table) {
        return Err(MiReply::new(404, "Table not found"));
    }
    Ok(key(table, &mi_aor(aor, use_domain)?))
}

/// An MI command's AOR as 1.3's `mi_fix_aor` makes it: lower-cased; with
/// `use_domain` it must have a domain, without it the domain is dropped.
fn mi_aor(aor: &str, use_domain: bool) -> Result<String, MiReply> {
    let aor = aor.to_ascii_lowercase();
    match (aor.split_once('@'), use_domain) {
        (None, true) => Err(MiReply::new(400, "Domain missing in AOR")),
        (Some((user, _)), false) => Ok(user.to_string()),
        _ => Ok(aor),
    }
}

/// The socket a contact was registered through, as 1.3 names sockets
/// (`udp:127.0.0.1:5060`); `NULL` for none (contacts `ul_add` made).
fn socket_text(c: &Contact) -> String {
    if c.socket.port() == 0 {
        return "NULL".to_string();
    }
    format!("{}:{}", c.transport.name().to_ascii_lowercase(), c.socket)
}

/// `ul_show_contact`'s line for a contact (1.3's format).
fn show_line(c: &Contact, now: i64) -> String {
    let mut line = format!(
        "<{}>;q={};expires={};flags=0x{:X};cflags=0x{:X};socket=<{}>;methods=0x{:X}",
        c.uri,
        c.q.map(crate::script::pv::q_text).unwrap_or_default(),
        c.expires - now,
        c.flags,
        c.cflags,
        socket_text(c),
        c.methods
    );
    for (name, value) in [("received", &c.received), ("path", &c.path)] {
        if let Some(v) = value {
            line.push_str(&format!(";{name}=<{v}>"));
        }
        if name == "received" && !c.user_agent.is_empty() {
            line.push_str(&format!(";user_agent=<{}>", c.user_agent));
        }
    }
    line
}

/// `ul_dump`'s node for an AOR.
fn dump_node(loc: &Location, table: &str, aor: &str, contacts: &[Contact], now: i64, brief: bool) -> MiNode {
    let mut node = MiNode::new("AOR", aor);
    if brief {
        return node;
    }
    let state = loc.state(&key(table, aor));
    for c in contacts {
        let expires = if c.expires >= PERMANENT { "permanent".to_string() } else { (c.expires - now).to_string() };
        let mut cn = MiNode::new("Contact", c.uri.as_str())
            .attr("Q", c.q.map(crate::script::pv::q_text).unwrap_or_default())
            .child(MiNode::new("Expires", expires))
            .child(MiNode::new("Callid", c.callid.as_str()))
            .child(MiNode::new("Cseq", c.cseq.to_string()));
        if !c.user_agent.is_empty() {
            cn = cn.child(MiNode::new("User-agent", c.user_agent.as_str()));
        }
        if let Some(r) = &c.received {
            cn = cn.child(MiNode::new("Received", r.as_str()));
        }
        if let Some(p) = &c.path {
            cn = cn.child(MiNode::new("Path", p.as_str()));
        }
        cn = cn
            .child(MiNode::new("State", state))
            .child(MiNode::new("Flags", c.flags.to_string()))
            .child(MiNode::new("Cflags", c.cflags.to_string()))
            .child(MiNode::new("Socket", socket_text(c)))
            .child(MiNode::new("Methods", c.methods.to_string()));
        node = node.child(cn);
    }
    node
}

/// Registers usrloc's MI commands (1.3's `ul_mi.c`) and statistics on the
/// config's registry: `ul_show_contact`, `ul_dump`, `ul_add`, `ul_rm`,
/// `ul_rm_contact`, `ul_flush`; `usrloc:registered_users` and the
/// `location-users`/`location-contacts` gauges (AORs and contacts live in
/// memory: with `db_mode` 3 they read 0, as the memory holds nothing).
pub fn register_mi(config: &crate::script::Config) {
    let mi = &config.mi;
    let use_domain = config.params.int("usrloc", "use_domain") != 0;
    let now = now_secs;

    let loc = config.usrloc.clone();
    mi.stats().gauge("usrloc", "registered_users", move || loc.counts(now()).0);
    let loc = config.usrloc.clone();
    mi.stats().gauge("usrloc", "location-users", move || loc.counts(now()).0);
    let loc = config.usrloc.clone();
    mi.stats().gauge("usrloc", "location-contacts", move || loc.counts(now()).1);

    let loc = config.usrloc.clone();
    mi.register("ul_show_contact", Arity::Exactly(2), move |args| {
        let (table, aor) = (&args[0], &args[1]);
        let k = match mi_key(&loc, table, aor, use_domain) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let t = now();
        match loc.find(&k, t) {
            Ok(cs) if cs.is_empty() => MiReply::new(404, "AOR not found"),
            Ok(cs) => cs.iter().fold(MiReply::ok(), |r, c| r.node(MiNode::new("Contact", show_line(c, t)))),
            Err(e) => {
                tracing::error!("ul_show_contact: {e}");
                MiReply::internal_error()
            }
        }
    });

    let loc = config.usrloc.clone();
    mi.register("ul_dump", Arity::Between(0, 1), move |args| {
        let brief = args.first().is_some_and(|a| a.eq_ignore_ascii_case("brief"));
        let t = now();
        let (aors, max_slot) = loc.dump("location", t);
        let mut domain = MiNode::new("Domain", "location").attr("table", SHARDS.to_string());
        for (aor, contacts) in &aors {
            domain = domain.child(dump_node(&loc, "location", aor, contacts, t, brief));
        }
        domain = domain.attr("records", aors.len().to_string()).attr("max_slot", max_slot.to_string());
        MiReply::ok().node(domain)
    });

    let loc = config.usrloc.clone();
    mi.register("ul_rm", Arity::Exactly(2), move |args| {
        let (table, aor) = (&args[0], &args[1]);
        let k = match mi_key(&loc, table, aor, use_domain) {
            Ok(k) => k,
            Err(r) => return r,
        };
        match loc.update(&k, now(), |cs| {
            cs.clear();
            Ok::<(), ()>(())
        }) {
            Ok(_) => MiReply::ok(),
            Err(e) => {
                tracing::error!("ul_rm: {e}");
                MiReply::new(500, "Failed to delete AOR")
            }
        }
    });

    let loc = config.usrloc.clone();
    mi.register("ul_rm_contact", Arity::Exactly(3), move |args| {
        let (table, aor, contact) = (&args[0], &args[1], &args[2]);
        let k = match mi_key(&loc, table, aor, use_domain) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let removed = loc.update(&k, now(), |cs| {
            if cs.is_empty() {
                return Err(MiReply::new(404, "AOR not found"));
            }
            let before = cs.len();
            cs.retain(|c| c.uri != *contact);
            if cs.len() == before {
                return Err(MiReply::new(404, "Contact not found"));
            }
            Ok(())
        });
        match removed {
            Ok(Ok(())) => MiReply::ok(),
            Ok(Err(r)) => r,
            Err(e) => {
                tracing::error!("ul_rm_contact: {e}");
                MiReply::internal_error()
            }
        }
    });

    let loc = config.usrloc.clone();
    mi.register_async("ul_flush", Arity::NoInput, move |_args| {
        let loc = loc.clone();
        async move {
            if let Err(e) = loc.flush().await {
                tracing::error!("ul_flush: {e}");
            }
            Some(MiReply::ok())
        }
    });

    let loc = config.usrloc.clone();
    mi.register("ul_add", Arity::Exactly(9), move |args| {
        // table, AOR, contact, expires, q, (unused), flags, cflags, methods
        let k = match mi_key(&loc, &args[0], &args[1], use_domain) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let uint = |i: usize| args[i].trim().parse::<u32>().ok();
        let q = match args[4].trim() {
            "" | "-1" => Some(None),
            t => t.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).map(|q| Some((q * 1000.0).round() as u16)),
        };
        let (Some(expires), Some(q), Some(flags), Some(cflags), Some(methods)) =
            (uint(3), q, uint(6), uint(7), uint(8))
        else {
            return MiReply::bad_param();
        };
        let uri = args[2].clone();
        let t = now();
        let contact = Contact {
            uri: uri.clone(),
            // 0: permanent, as in 1.3.
            expires: if expires == 0 { PERMANENT } else { t + i64::from(expires) },
            q,
            callid: MI_CALLID.to_string(),
            cseq: MI_CSEQ,
            user_agent: MI_USER_AGENT.to_string(),
            socket: SocketAddr::from(([0, 0, 0, 0], 0)),
            transport: Transport::Udp,
            last_modified: t,
            methods,
            received: None,
            path: None,
            flags,
            cflags,
        };
        match loc.update(&k, t, |cs| {
            match cs.iter_mut().find(|c| c.uri == uri) {
                Some(c) => *c = contact,
                None => cs.push(contact),
            }
            Ok::<(), ()>(())
        }) {
            Ok(_) => MiReply::ok(),
            Err(e) => {
                tracing::error!("ul_add: {e}");
                MiReply::internal_error()
            }
        }
    });
}

fn params_mode(mode: DbMode) -> i64 {
    match mode {
        DbMode::WriteThrough => 1,
        DbMode::WriteBack => 2,
        DbMode::DbOnly => 3,
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
            transport: Transport::Udp,
            last_modified: 0,
            methods: u32::MAX,
            received: None,
            path: None,
            flags: 0,
            cflags: 0,
        }
    }

    fn update(loc: &Location, aor: &str, now: i64, f: impl FnOnce(&mut Vec<Contact>)) {
        loc.update(aor, now, |cs| {
            f(cs);
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
    }

    #[test]
    fn expired_contacts_are_never_returned_and_empty_aors_go() {
        let loc = Location::default();
        update(&loc, "alice", 100, |cs| {
            cs.push(contact("sip:a@1", 150));
            cs.push(contact("sip:a@2", 300));
        });
        assert_eq!(loc.contacts("alice", 100).len(), 2);
        assert_eq!(loc.contacts("alice", 200).len(), 1);
        update(&loc, "alice", 400, |cs| assert!(cs.is_empty()));
        assert_eq!(loc.aors(), 0);
    }

    #[test]
    fn a_growing_table_keeps_every_aor_and_spreads_them_over_the_shards() {
        let loc = Location::default();
        let n = 20_000;
        for i in 0..n {
            update(&loc, &key("location", &format!("user{i}")), 0, |cs| cs.push(contact(&format!("sip:u{i}@h"), 100)));
        }
        assert_eq!(loc.aors(), n);
        for i in (0..n).step_by(997) {
            let cs = loc.contacts(&key("location", &format!("user{i}")), 0);
            assert_eq!(cs.iter().map(|c| c.uri.as_str()).collect::<Vec<_>>(), [format!("sip:u{i}@h")]);
        }
        // Half the AORs removed: the others stay, each found by its key.
        for i in (0..n).filter(|i| i % 2 == 0) {
            update(&loc, &key("location", &format!("user{i}")), 0, |cs| cs.clear());
        }
        assert_eq!(loc.aors(), n / 2);
        assert!(loc.contacts(&key("location", "user2"), 0).is_empty());
        assert_eq!(loc.contacts(&key("location", "user3"), 0).len(), 1);
        // The shards share the AORs: none holds twice its share.
        let (live, max_slot) = loc.dump("location", 0);
        assert_eq!(live.len(), n / 2);
        assert!(max_slot < 2 * n / 2 / SHARDS, "{max_slot} AORs in one shard of {SHARDS}");
    }

    #[test]
    fn sweeps_bound_what_nobody_touches_again() {
        let loc = Location::default();
        for i in 0..SWEEP_EVERY * SHARDS {
            update(&loc, &format!("user{i}"), 0, |cs| cs.push(contact("sip:x@1", 10)));
        }
        let before = loc.aors();
        for _ in 0..SWEEP_EVERY * SHARDS {
            update(&loc, "someone-else", 20, |_| ());
        }
        assert!(loc.aors() < before / 2, "{} of {before} left", loc.aors());
    }

    #[test]
    fn sockets_read_as_openser_wrote_them() {
        assert_eq!(parse_socket("udp:10.0.0.1:5060"), (Transport::Udp, "10.0.0.1:5060".parse().unwrap()));
        assert_eq!(parse_socket("tcp:[::1]:5070"), (Transport::Tcp, "[::1]:5070".parse().unwrap()));
        assert_eq!(parse_socket("10.0.0.1:5060").1, "10.0.0.1:5060".parse().unwrap());
        assert_eq!(parse_socket("garbage").1.port(), 0);
    }
}
