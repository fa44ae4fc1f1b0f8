//! The transaction table: shards of transactions, their indexes, timers
//! and outgoing queues, and the four state machines of RFC 3261 §17 (with RFC
//! 6026's Accepted state).

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::HashTable;

use super::config::{ClientConfig, TableConfig, TmTimers};
use super::key::{ClientKey, KeptKey, ServerKey};
use super::slots::Slots;
use super::{
    local, Built, CreateError, Dest, Event, Kind, RequestOutcome, ResponseOutcome, SendError, State, Transmit, TxnId,
};
use crate::sip::{Framing, Interest, Message, Method};

/// Timer slots of a transaction: at most one pending deadline each.
const RETRANSMIT: usize = 0; // A, E, G
const TIMEOUT: usize = 1; // B (fr / fr_inv), F (fr), H
const WAIT: usize = 2; // D, I, J, K, L, M: then freed
const DELETE: usize = 3; // delete_timer (after a timeout or t_release): then freed

struct Txn {
    kind: Kind,
    state: State,
    /// Server: where responses go. Client: where the request went.
    dest: Dest,
    /// The hash of the transaction's key ([`ServerKey`] or [`ClientKey`] of
    /// `request`), under which its index holds it.
    key_hash: u64,
    /// Server: the request received, as its bytes and key
    /// ([`Held::Unparsed`]). Client: the request sent. An INVITE answered
    /// with a 2xx, a non-INVITE with any final, keep only the key
    /// ([`Held::Key`]), unless the caller still reads the request.
    request: Held,
    /// Server: the last response sent (what a retransmission gets).
    response: Option<Bytes>,
    /// The status of the last response sent (server) or received (client); 0: none.
    status: u16,
    /// What few transactions keep (see [`Rare`]).
    rare: Option<Box<Rare>>,
    /// The current retransmission interval (A, E, G).
    interval: Millis,
    /// The deadline of each timer slot ([`RETRANSMIT`] …) that is set.
    timers: [Deadline; 4],
    /// Client INVITE: the final-response timeout once a provisional arrived.
    fr_inv: Millis,
    /// Client: a provisional was received.
    provisional: bool,
    /// Client: `timers[TIMEOUT]` is set but not queued yet (see
    /// [`Io::defer_timeout`]).
    timeout_deferred: bool,
    /// Client: the server transaction it is a branch of ([`NO_UPLINK`]: none).
    uplink: u64,
}

/// [`Txn::uplink`] of a transaction that is no branch (a server one, a
/// request the proxy originated). No id reaches it: ids stay below 2^62.
const NO_UPLINK: u64 = u64::MAX;

/// What few transactions keep, boxed so that the others do not carry its
/// room: a transaction lives for 32 s after a 2xx, and its size is memory
/// walked again when it ends.
#[derive(Default)]
struct Rare {
    /// Server INVITE matched the RFC 2543 way: the To tag of the final
    /// response sent (its ACK's).
    response_to_tag: Option<Box<[u8]>>,
    /// Client INVITE: the ACK sent for the non-2xx final.
    ack: Option<Bytes>,
}

/// A duration in whole milliseconds, as tm's timers are given (`T1_timer`
/// in ms, the others in s), in the room of a `u32` (49 days; saturating).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Millis(u32);

impl Millis {
    fn of(d: Duration) -> Millis {
        Millis(u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
    }

    fn get(self) -> Duration {
        Duration::from_millis(u64::from(self.0))
    }
}

/// A transaction's deadline for one timer slot: nanoseconds after the
/// table's epoch, plus one, so that an unset timer takes no room of its own.
type Deadline = Option<std::num::NonZeroU64>;

fn deadline(epoch: Instant, at: Instant) -> Deadline {
    Some(nanos_after(epoch, at))
}

/// A set [`Deadline`]: nanoseconds from `epoch` to `at` (0 if `at` is
/// earlier), plus one.
fn nanos_after(epoch: Instant, at: Instant) -> std::num::NonZeroU64 {
    let nanos = u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
    std::num::NonZeroU64::MIN.saturating_add(nanos)
}

/// The instant a [`Deadline`] was made from (one at or after `epoch`).
fn deadline_at(epoch: Instant, deadline: std::num::NonZeroU64) -> Instant {
    epoch + Duration::from_nanos(deadline.get() - 1)
}

/// What a transaction keeps of its request.
enum Held {
    /// All of it: a client request handed in parsed ([`Table::start_client`]).
    /// Boxed, so that a transaction that keeps only its key gives back the
    /// parsed message's own room too.
    Request(Box<Message>),
    /// Its bytes and its key, the request parsed again only when it is read:
    /// a server request, as received (most are never read again: a relayed
    /// request is answered by a reply relayed back; a local reply, a failure
    /// route or acc's record parses it), or a client request tm built, as it
    /// was sent (tm knew its key; it is parsed to build an ACK or a CANCEL of
    /// it, [`Table::start_built`]). Its parsed form (some 800 bytes of an
    /// INVITE, and three allocations) is not copied for a request that
    /// nothing reads again.
    Unparsed { bytes: Bytes, key: KeptKey },
    /// Its key alone: RFC 6026's Accepted state (32 s after a 2xx), and a
    /// non-INVITE server's Completed state (timer J, 32 s over UDP), only
    /// match retransmissions; nothing sends or reads the request again. A
    /// call's INVITE transactions and its BYE's server transaction then keep
    /// about 100 bytes each instead of their requests.
    Key(KeptKey),
}

impl Built<'_> {
    /// What a client transaction keeps of it, and whether it is an INVITE.
    fn held(self) -> Result<(Held, bool), CreateError> {
        let Built { bytes, method, method_text, branch } = self;
        if method == Method::Ack {
            return Err(CreateError::Ack);
        }
        let key = KeptKey::client_of(branch.as_bytes(), method, method_text).ok_or(CreateError::NoBranch)?;
        debug_assert!(
            Message::parse_with(bytes.clone(), Framing::Datagram, Interest::NONE)
                .is_ok_and(|msg| ClientKey::of(&msg) == key.as_client() && msg.method() == Some(method)),
            "a built request carries the key it is started with"
        );
        Ok((Held::Unparsed { bytes, key }, method == Method::Invite))
    }
}

impl Held {
    fn client_key(&self) -> Option<ClientKey<'_>> {
        match self {
            Held::Request(msg) => ClientKey::of(msg),
            Held::Unparsed { key, .. } | Held::Key(key) => key.as_client(),
        }
    }

    /// The request's bytes (what a retransmission sends), unless only its
    /// key is kept.
    fn bytes(&self) -> Option<&Bytes> {
        match self {
            Held::Request(msg) => Some(msg.bytes()),
            Held::Unparsed { bytes, .. } => Some(bytes),
            Held::Key(_) => None,
        }
    }
}

impl Txn {
    fn reliable(&self) -> bool {
        self.dest.transport.is_reliable()
    }

    /// The request, unless only its key is kept; one kept unparsed
    /// ([`Held::Unparsed`]) is parsed now (`None` if tm built something that
    /// does not parse). Parsed as on receipt with nothing optional validated
    /// ([`Interest::NONE`]): a header no one read was relayed as it came, and
    /// may be malformed; whoever reads it parses it then.
    fn request(&self) -> Option<Cow<'_, Message>> {
        match &self.request {
            Held::Request(msg) => Some(Cow::Borrowed(&**msg)),
            Held::Unparsed { bytes, .. } => {
                Message::parse_with(bytes.clone(), Framing::Datagram, Interest::NONE).ok().map(Cow::Owned)
            }
            Held::Key(_) => None,
        }
    }

    fn request_bytes(&self) -> Option<&Bytes> {
        self.request.bytes()
    }

    fn server_key(&self) -> Option<ServerKey<'_>> {
        match &self.request {
            Held::Request(msg) => Some(ServerKey::of(msg, false)),
            Held::Unparsed { key, .. } | Held::Key(key) => key.as_server(),
        }
    }

    fn client_key(&self) -> Option<ClientKey<'_>> {
        self.request.client_key()
    }

    /// The To tag of the request (RFC 2543 matching).
    fn request_to_tag(&self) -> Option<&[u8]> {
        match &self.request {
            Held::Request(msg) => msg.to_tag.map(|s| &msg.bytes()[s.range()]),
            Held::Unparsed { key, .. } | Held::Key(key) => key.to_tag(),
        }
    }

    /// Keeps only the request's key (see [`Held::Key`]).
    fn keep_key_only(&mut self) {
        let key = match &mut self.request {
            Held::Request(msg) if self.kind.is_server() => Some(KeptKey::server(msg)),
            // A client transaction always has a key (it was created with it).
            Held::Request(msg) => KeptKey::client(msg),
            Held::Unparsed { key, .. } => Some(std::mem::replace(key, KeptKey::empty())),
            Held::Key(_) => None,
        };
        if let Some(key) = key {
            self.request = Held::Key(key);
        }
    }
}

/// Hashes the table's own transaction ids (and maps keyed by [`TxnId`]
/// elsewhere, as tm's cells): the table makes them from slot numbers (see
/// [`Txns`]), peers do not choose them, so a multiplication spreads them
/// (the keys peers choose, branches and Call-IDs, keep std's keyed SipHash).
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing; the high bits folded down, for ids that step by
        // the shard count share their low bits.
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A timer entry, 16 bytes: its deadline as the transaction keeps it (a set
/// [`Deadline`]: compared, ordered and put in its tick without converting
/// an `Instant`), then the transaction's id and the timer slot in one word
/// (`id << 2 | slot`: ids stay below 2^62, see [`Txns::new`]). Ordered as
/// (deadline, id, slot). A stopped timer's entry stays until its tick comes
/// (a final response's `fr_inv_timer` entry, 120 s), hence the size.
type TimerEntry = (std::num::NonZeroU64, u64);

fn timer_entry(at: std::num::NonZeroU64, id: u64, slot: usize) -> TimerEntry {
    debug_assert!(id < 1 << 62 && slot < 4);
    (at, id << 2 | slot as u64)
}

/// The transaction and the timer slot of an entry.
fn entry_target(&(_, packed): &TimerEntry) -> (u64, usize) {
    (packed >> 2, (packed & 3) as usize)
}

/// The ticks ([`TIMER_TICK`]) the near wheel spans: 2.56 s. The
/// retransmission and delete timers (T1–T2, `delete_timer`) mostly fall in
/// it; the long ones (`fr_timer`, `fr_inv_timer`, `wt_timer`, 64·T1), most of
/// which are reset or ended before they are due, wait in per-second buckets
/// and move into the wheel — unless stale by then — once it reaches them.
const WHEEL: u64 = 256;

/// Ticks in a second (the far buckets' width).
const TICKS_PER_SEC: u64 = 1_000_000_000 / TIMER_TICK.as_nanos() as u64;

/// The tick (of [`TIMER_TICK`], counted from the epoch) a set [`Deadline`]
/// falls in.
fn tick_of_deadline(deadline: std::num::NonZeroU64) -> u64 {
    (deadline.get() - 1) / TIMER_TICK.as_nanos() as u64
}

/// When the timer task wakes for a set [`Deadline`]: the first tick boundary
/// at or after it, in nanoseconds after the epoch.
fn wake_nanos(deadline: std::num::NonZeroU64) -> u64 {
    let tick = TIMER_TICK.as_nanos() as u64;
    (deadline.get() - 1).div_ceil(tick).saturating_mul(tick)
}

/// Whether a timer entry is still what its transaction waits for (not reset,
/// the transaction not gone).
fn is_live(txns: &Txns, entry: &TimerEntry) -> bool {
    let (id, slot) = entry_target(entry);
    txns.get(id).is_some_and(|t| t.timers[slot] == Some(entry.0))
}

/// Timers, wheel and outgoing queue: borrowed apart from the transactions.
/// Each queued message is numbered from one process-wide counter, so what
/// several shards queued while handling one message leaves in the order it
/// was queued (a 100 Trying before the INVITE it answers is relayed).
///
/// Timers, two invariants:
/// - the wheel's slot `t % WHEEL` holds the deadlines of tick `t`, and every
///   entry of the wheel is in a tick from `cursor` to `cursor + WHEEL - 1`
///   (a deadline already past when set goes in `cursor`'s slot);
/// - every deadline in `far` (buckets of one second after `epoch`, numbered
///   from `horizon` up) is later than every deadline in the wheel (all before
///   second `horizon`), and `horizon · TICKS_PER_SEC ≤ cursor + WHEEL`.
///
/// So the first slot from `cursor` holding a live entry holds the earliest
/// deadline whenever the wheel is not empty. Setting a timer is a push on a
/// vector; firing walks the slots in order (sorting each one's entries).
struct Io {
    wheel: Box<[Vec<TimerEntry>]>,
    /// Entries in the wheel (stale ones included).
    wheel_len: usize,
    /// The first tick whose slot may hold entries: every earlier tick was fired.
    cursor: u64,
    /// A slot's entries are swapped in here while they are fired (its spare
    /// room is reused, not reallocated).
    firing: Vec<TimerEntry>,
    far: BTreeMap<u64, Vec<TimerEntry>>,
    epoch: Instant,
    horizon: u64,
    out: VecDeque<(u64, Transmit)>,
    /// The earliest deadline set since the table last looked (see
    /// [`Table::take_wake`]).
    earliest: Deadline,
}

static TRANSMIT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Io {
    fn new(epoch: Instant) -> Io {
        Io {
            wheel: (0..WHEEL).map(|_| Vec::new()).collect(),
            wheel_len: 0,
            cursor: 0,
            firing: Vec::new(),
            far: BTreeMap::new(),
            epoch,
            horizon: WHEEL / TICKS_PER_SEC,
            out: VecDeque::new(),
            earliest: None,
        }
    }

    /// The one-second bucket of a deadline (deadlines before `epoch` in the first).
    fn bucket_of(deadline: std::num::NonZeroU64) -> u64 {
        tick_of_deadline(deadline) / TICKS_PER_SEC
    }

    /// Puts an entry in the wheel (its deadline is before second `horizon`).
    fn wheel_push(&mut self, entry: TimerEntry) {
        let tick = tick_of_deadline(entry.0).max(self.cursor);
        debug_assert!(tick < self.cursor + WHEEL);
        self.wheel[(tick % WHEEL) as usize].push(entry);
        self.wheel_len += 1;
    }

    fn set(&mut self, txn: &mut Txn, id: u64, slot: usize, at: Instant) {
        self.set_deadline(txn, id, slot, nanos_after(self.epoch, at));
    }

    fn set_deadline(&mut self, txn: &mut Txn, id: u64, slot: usize, at: std::num::NonZeroU64) {
        txn.timers[slot] = Some(at);
        if slot == TIMEOUT {
            txn.timeout_deferred = false;
        }
        let bucket = Io::bucket_of(at);
        if bucket < self.horizon {
            self.wheel_push(timer_entry(at, id, slot));
        } else {
            self.far.entry(bucket).or_default().push(timer_entry(at, id, slot));
        }
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
    }

    /// Sets a client transaction's final-response timeout (B, F) at `at`
    /// without queueing it, while its retransmission timer (A, E), queued, is
    /// due first. Most transactions are answered before that fires, which
    /// stops both; a timeout queued at 30 s would then be walked as stale, its
    /// transaction long cold or gone. The first retransmission queues it
    /// ([`Io::queue_deferred_timeout`]); setting it again (a provisional's
    /// `fr_inv`) queues the new one, and a final or the end clears it.
    fn defer_timeout(&mut self, txn: &mut Txn, at: Instant) {
        txn.timers[TIMEOUT] = deadline(self.epoch, at);
        txn.timeout_deferred = true;
    }

    /// Queues the timeout [`Io::defer_timeout`] set, if it is still waiting.
    fn queue_deferred_timeout(&mut self, txn: &mut Txn, id: u64) {
        if !std::mem::take(&mut txn.timeout_deferred) {
            return;
        }
        if let Some(at) = txn.timers[TIMEOUT] {
            self.set_deadline(txn, id, TIMEOUT, at);
        }
    }

    fn send(&mut self, id: u64, bytes: Bytes, dest: Dest) {
        let seq = TRANSMIT_SEQ.fetch_add(1, Ordering::Relaxed);
        self.out.push_back((seq, Transmit { txn: TxnId(id), bytes, dest }));
    }

    fn terminate(&mut self, txn: &mut Txn, id: u64, now: Instant, t: &TmTimers, events: &mut Vec<Event>) {
        txn.state = State::Terminated;
        txn.timers = [None; 4];
        txn.timeout_deferred = false;
        self.set(txn, id, DELETE, now + t.delete);
        events.push(Event::Terminated(TxnId(id)));
    }
}

/// A shard's transactions by id: the id of a transaction is its key in the
/// shard's [`Slots`] times the number of shards, plus the shard's index.
struct Txns {
    slots: Slots<Txn>,
    shard: u64,
    ways: u64,
}

impl Txns {
    fn new(shard: usize, shards: usize) -> Txns {
        let ways = shards.max(1) as u64;
        // Ids stay below 2^62 (a timer entry packs one with its timer slot
        // in a word): keys below 2^32 · generations.
        let generations = u32::try_from(((u64::MAX >> 2) / ways) >> 32).unwrap_or(u32::MAX);
        Txns { slots: Slots::new(generations), shard: shard as u64, ways }
    }

    fn key(&self, id: u64) -> Option<u64> {
        (id % self.ways == self.shard).then_some(id / self.ways)
    }

    fn get(&self, id: u64) -> Option<&Txn> {
        self.slots.get(self.key(id)?)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Txn> {
        let key = self.key(id)?;
        self.slots.get_mut(key)
    }

    fn remove(&mut self, id: u64) -> Option<Txn> {
        let key = self.key(id)?;
        self.slots.remove(key)
    }

    /// Its id, or `None` when the shard has no slot left for it.
    fn insert(&mut self, txn: Txn) -> Option<u64> {
        Some(self.slots.insert(txn)? * self.ways + self.shard)
    }

    fn len(&self) -> usize {
        self.slots.len()
    }
}

struct Shard {
    txns: Txns,
    /// The indexes: (key hash, id) of the server and of the client
    /// transactions. The keys are not stored: they borrow the transactions'
    /// requests (see [`super::key`]).
    servers: HashTable<(u64, u64)>,
    clients: HashTable<(u64, u64)>,
    io: Io,
    /// Transactions this shard ever made.
    made: u64,
    /// Transactions freed since the table last looked (to keep its count).
    removed: usize,
}

/// The status of a response read from its status line (`SIP/2.0 NNN `, 100
/// to 699, as the parser takes them), without parsing the rest; `None` for
/// anything else.
fn status_of(bytes: &[u8]) -> Option<u16> {
    match bytes {
        [b'S', b'I', b'P', b'/', b'2', b'.', b'0', b' ', d0 @ b'1'..=b'6', d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', b' ', ..] => {
            Some(u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0'))
        }
        _ => None,
    }
}

/// Which To tag an RFC 2543 match compares: an ACK's is the one of the final
/// response sent, any other request's the one of the transaction's request.
fn legacy_to_tag_matches(txn: &Txn, msg: &Message) -> bool {
    let tag = msg.to_tag.map(|s| &msg.bytes()[s.range()]);
    let expected = if msg.method() == Some(Method::Ack) {
        txn.rare.as_ref().and_then(|r| r.response_to_tag.as_deref())
    } else {
        txn.request_to_tag()
    };
    tag == expected
}

impl Shard {
    /// The server transaction of `key` (the key of `msg`, hashed to `hash`).
    fn find_server(&self, hash: u64, key: &ServerKey, msg: &Message) -> Option<u64> {
        self.servers
            .find(hash, |&(h, id)| {
                h == hash
                    && self.txns.get(id).is_some_and(|txn| {
                        txn.server_key().is_some_and(|k| k == *key)
                            && (!key.is_legacy() || legacy_to_tag_matches(txn, msg))
                    })
            })
            .map(|&(_, id)| id)
    }

    /// The client transaction of `key`, hashed to `hash`.
    fn find_client(&self, hash: u64, key: &ClientKey) -> Option<u64> {
        self.clients
            .find(hash, |&(h, id)| h == hash && self.txns.get(id).is_some_and(|txn| txn.client_key() == Some(*key)))
            .map(|&(_, id)| id)
    }

    fn remove(&mut self, id: u64) {
        let Some(txn) = self.txns.remove(id) else { return };
        let index = if txn.kind.is_server() { &mut self.servers } else { &mut self.clients };
        if let Ok(entry) = index.find_entry(txn.key_hash, |&(_, i)| i == id) {
            entry.remove();
        }
        self.removed += 1;
    }

    fn new(epoch: Instant, index: usize, shards: usize) -> Shard {
        Shard {
            txns: Txns::new(index, shards),
            servers: HashTable::new(),
            clients: HashTable::new(),
            io: Io::new(epoch),
            made: 0,
            removed: 0,
        }
    }

    /// Whether a timer entry is still what its transaction waits for.
    fn live(&self, entry: TimerEntry) -> bool {
        is_live(&self.txns, &entry)
    }

    /// The earliest deadline still waited for; stale entries met on the way
    /// (transaction gone, timer reset) are dropped.
    fn next_deadline(&mut self) -> Option<std::num::NonZeroU64> {
        let Shard { txns, io, .. } = self;
        let live = |entry: &TimerEntry| is_live(txns, entry);
        let mut tick = io.cursor;
        while io.wheel_len > 0 && tick < io.cursor + WHEEL {
            let entries = &mut io.wheel[(tick % WHEEL) as usize];
            if !entries.is_empty() {
                let before = entries.len();
                entries.retain(live);
                io.wheel_len -= before - entries.len();
                if let Some(at) = entries.iter().map(|e| e.0).min() {
                    return Some(at);
                }
            }
            tick += 1;
        }
        debug_assert_eq!(io.wheel_len, 0);
        // The wheel is empty: the earliest is in the first bucket with a live entry.
        while let Some((bucket, mut entries)) = io.far.pop_first() {
            entries.retain(live);
            if let Some(at) = entries.iter().map(|e| e.0).min() {
                io.far.insert(bucket, entries);
                return Some(at);
            }
        }
        None
    }

    /// Moves the far buckets the wheel now reaches into it, dropping stale
    /// entries.
    fn bring_near(&mut self) {
        let horizon = (self.io.cursor + WHEEL) / TICKS_PER_SEC;
        if horizon <= self.io.horizon {
            return;
        }
        self.io.horizon = horizon;
        let later = self.io.far.split_off(&horizon);
        let near = std::mem::replace(&mut self.io.far, later);
        for entry in near.into_values().flatten() {
            if self.live(entry) {
                self.io.wheel_push(entry);
            }
        }
    }

    /// Fires every live timer due at `now`, in the order of their deadlines.
    /// `due`: `now` as a deadline (the table's epoch is the shard's).
    fn fire_due(&mut self, now: Instant, due: std::num::NonZeroU64, t: &TmTimers, events: &mut Vec<Event>) {
        let target = tick_of_deadline(due);
        loop {
            if self.io.wheel_len == 0 && self.io.cursor < target {
                // Nothing to walk through: skip to `now` (the far buckets it
                // reaches come in at its slot, all due).
                self.io.cursor = target;
            }
            self.bring_near();
            // Fire the cursor's slot until what its firings set is not due.
            loop {
                let slot = (self.io.cursor % WHEEL) as usize;
                let mut firing = std::mem::take(&mut self.io.firing);
                std::mem::swap(&mut self.io.wheel[slot], &mut firing);
                if firing.is_empty() {
                    self.io.firing = firing;
                    break;
                }
                self.io.wheel_len -= firing.len();
                // Most entries are stale (a retransmission timer stopped by
                // the response): dropped before the sort, not sorted.
                let Shard { txns, io, .. } = self;
                firing.retain(|entry| {
                    if entry.0 > due {
                        io.wheel[slot].push(*entry);
                        io.wheel_len += 1;
                        false
                    } else {
                        is_live(txns, entry)
                    }
                });
                firing.sort_unstable();
                let mut fired = false;
                for &entry in &firing {
                    // Live still, unless an earlier firing ended it.
                    if self.live(entry) {
                        let (id, slot) = entry_target(&entry);
                        self.fire(now, id, slot, t, events);
                        fired = true;
                    }
                }
                firing.clear();
                self.io.firing = firing;
                if !fired {
                    break;
                }
            }
            if self.io.cursor >= target {
                return;
            }
            self.io.cursor += 1;
        }
    }

    fn on_request(&mut self, now: Instant, hash: u64, key: &ServerKey, msg: &Message, t: &TmTimers) -> RequestOutcome {
        let Some(id) = self.find_server(hash, key, msg) else { return RequestOutcome::NoMatch };
        let txn = self.txns.get_mut(id).expect("indexed");
        let tid = TxnId(id);
        if msg.method() == Some(Method::Ack) {
            return match txn.state {
                State::Completed => {
                    // §17.2.1: Completed → Confirmed; G and H stop, I starts.
                    txn.state = State::Confirmed;
                    txn.timers[RETRANSMIT] = None;
                    txn.timers[TIMEOUT] = None;
                    let wait = t.wait(txn.dest.transport);
                    self.io.set(txn, id, WAIT, now + wait);
                    RequestOutcome::AckAbsorbed { id: tid }
                }
                State::Accepted => RequestOutcome::Ack2xx { id: tid },
                State::Terminated if (200..300).contains(&txn.status) => RequestOutcome::Ack2xx { id: tid },
                _ => RequestOutcome::AckAbsorbed { id: tid },
            };
        }
        // A retransmission: Proceeding and Completed resend the last response;
        // Trying, Accepted (RFC 6026 §8.7), Confirmed and Terminated absorb it.
        let resend = match txn.state {
            State::Proceeding | State::Completed => txn.response.clone(),
            _ => None,
        };
        let resent = resend.is_some();
        if let Some(bytes) = resend {
            self.io.send(id, bytes, txn.dest);
        }
        RequestOutcome::Retransmission { id: tid, resent }
    }

    fn on_response(
        &mut self,
        now: Instant,
        hash: u64,
        key: &ClientKey,
        msg: &Message,
        t: &TmTimers,
    ) -> ResponseOutcome {
        let Some(id) = self.find_client(hash, key) else { return ResponseOutcome::NoMatch };
        let Some(code) = msg.status() else { return ResponseOutcome::NoMatch };
        let txn = self.txns.get_mut(id).expect("indexed");
        let tid = TxnId(id);
        let live = matches!(txn.state, State::Calling | State::Trying | State::Proceeding);
        if live && code < 200 {
            let first = !txn.provisional;
            txn.provisional = true;
            txn.state = State::Proceeding;
            txn.status = code;
            if txn.kind == Kind::ClientInvite {
                // §17.1.1.2: A stops in Proceeding. tm: fr_inv replaces fr.
                txn.timers[RETRANSMIT] = None;
                if first || t.restart_fr_on_each_reply {
                    let at = now + txn.fr_inv.get();
                    self.io.set(txn, id, TIMEOUT, at);
                }
            }
            return ResponseOutcome::Provisional { id: tid, status: code, first };
        }
        if live {
            txn.status = code;
            txn.timers[RETRANSMIT] = None;
            txn.timers[TIMEOUT] = None;
            txn.timeout_deferred = false;
            let wait = match (txn.kind, code) {
                (Kind::ClientInvite, 200..=299) => {
                    // RFC 6026 §8.4: Accepted, timer M; 2xx retransmissions
                    // match it, nothing is sent again.
                    txn.state = State::Accepted;
                    txn.keep_key_only();
                    t.t1_64()
                }
                (Kind::ClientInvite, _) => {
                    // §17.1.1.2: Completed, ACK sent, timer D.
                    txn.state = State::Completed;
                    if let Some(ack) = txn.request().map(|req| local::ack(&req, msg)) {
                        txn.rare.get_or_insert_default().ack = Some(ack.clone());
                        self.io.send(id, ack, txn.dest);
                    }
                    t.wait(txn.dest.transport)
                }
                _ => {
                    // §17.1.2.2: Completed, timer K.
                    txn.state = State::Completed;
                    t.wait(txn.dest.transport)
                }
            };
            self.io.set(txn, id, WAIT, now + wait);
            return ResponseOutcome::Final { id: tid, status: code };
        }
        // After the first final (or the timeout): INVITE 2xx go end to end,
        // non-2xx finals of an INVITE are ACKed again, the rest is absorbed.
        if txn.kind == Kind::ClientInvite {
            match code {
                200..=299 => return ResponseOutcome::Extra2xx { id: tid },
                300.. if matches!(txn.state, State::Completed | State::Terminated) => {
                    // (After a 2xx only the key is kept: no ACK for a peer
                    // that answers both ways.)
                    if txn.rare.as_ref().is_none_or(|r| r.ack.is_none()) {
                        if let Some(ack) = txn.request().map(|req| local::ack(&req, msg)) {
                            txn.rare.get_or_insert_default().ack = Some(ack);
                        }
                    }
                    if let Some(ack) = txn.rare.as_ref().and_then(|r| r.ack.clone()) {
                        self.io.send(id, ack, txn.dest);
                    }
                }
                _ => {}
            }
        }
        ResponseOutcome::Absorbed { id: tid, status: code }
    }

    fn send_response(
        &mut self,
        now: Instant,
        id: u64,
        resp: Bytes,
        keep_request: bool,
        t: &TmTimers,
    ) -> Result<(), SendError> {
        // The status line is all the transaction reads of a response, but for
        // the To tag of an INVITE's final when its ACK is matched the RFC 2543
        // way: only then is the response parsed.
        let code = status_of(&resp).ok_or(SendError::Malformed)?;
        let txn = self.txns.get_mut(id).ok_or(SendError::NoTransaction)?;
        let (kind, state) = (txn.kind, txn.state);
        let legacy_ack = code >= 200 && kind == Kind::ServerInvite && txn.server_key().is_some_and(|k| k.is_legacy());
        let msg = if legacy_ack {
            // Only its To tag is read: the rest is checked no more than a
            // relayed response's is (see `Txn::request`).
            Some(
                Message::parse_with(resp.clone(), Framing::Datagram, Interest::NONE)
                    .map_err(|_| SendError::Malformed)?,
            )
        } else {
            None
        };
        let next = match (kind, state, code) {
            (Kind::ClientInvite | Kind::ClientNonInvite, ..) => return Err(SendError::NotServer),
            (Kind::ServerInvite, State::Proceeding, 100..=199) => State::Proceeding,
            (Kind::ServerInvite, State::Proceeding | State::Accepted, 200..=299) => State::Accepted,
            (Kind::ServerInvite, State::Proceeding, 300..) => State::Completed,
            (Kind::ServerNonInvite, State::Trying | State::Proceeding, 100..=199) => State::Proceeding,
            (Kind::ServerNonInvite, State::Trying | State::Proceeding, 200..) => State::Completed,
            _ => return Err(SendError::State(state)),
        };
        txn.state = next;
        txn.status = code;
        if let Some(msg) = msg {
            txn.rare.get_or_insert_default().response_to_tag = msg.to_tag.map(|s| msg.bytes()[s.range()].into());
        }
        // Kept for retransmissions, which Accepted does not make (RFC 6026
        // §8.7: a retransmitted INVITE is absorbed; a 2xx is resent by the
        // core, not the transaction): the transaction waits there for 32 s.
        txn.response = (next != State::Accepted).then(|| resp.clone());
        self.io.send(id, resp, txn.dest);
        if state == next {
            return Ok(()); // another provisional, or a 2xx retransmission in Accepted
        }
        match (kind, next) {
            // RFC 6026 §8.5: Accepted, timer L.
            (Kind::ServerInvite, State::Accepted) => {
                // The request is kept unparsed (see `Held::Unparsed`).
                if !keep_request {
                    txn.keep_key_only();
                }
                self.io.set(txn, id, WAIT, now + t.t1_64());
            }
            // §17.2.1: Completed: G over UDP, H always.
            (Kind::ServerInvite, State::Completed) => {
                if !txn.reliable() {
                    txn.interval = Millis::of(t.t1);
                    self.io.set(txn, id, RETRANSMIT, now + t.t1);
                }
                self.io.set(txn, id, TIMEOUT, now + t.t1_64());
            }
            // §17.2.2: Completed, timer J; the final is resent to a
            // retransmission, the request is not read again (a non-INVITE
            // has one final: nothing is left for acc to read it for).
            (Kind::ServerNonInvite, State::Completed) => {
                txn.keep_key_only();
                let wait = t.wait(txn.dest.transport);
                self.io.set(txn, id, WAIT, now + wait);
            }
            _ => {}
        }
        Ok(())
    }

    /// A timer fired (it was still current).
    fn fire(&mut self, now: Instant, id: u64, slot: usize, t: &TmTimers, events: &mut Vec<Event>) {
        if slot == DELETE {
            self.remove(id);
            return;
        }
        let Some(txn) = self.txns.get_mut(id) else { return };
        txn.timers[slot] = None;
        if slot == RETRANSMIT {
            self.io.queue_deferred_timeout(txn, id);
        }
        let tid = TxnId(id);
        match (slot, txn.kind, txn.state) {
            (RETRANSMIT, Kind::ClientInvite, State::Calling) => {
                // Timer A: doubles without a cap (B ends it).
                if let Some(req) = txn.request_bytes() {
                    self.io.send(id, req.clone(), txn.dest);
                }
                txn.interval = Millis(txn.interval.0.saturating_mul(2));
                self.io.set(txn, id, RETRANSMIT, now + txn.interval.get());
            }
            (RETRANSMIT, Kind::ClientNonInvite, State::Trying | State::Proceeding) => {
                // Timer E: doubles up to T2 in Trying, T2 in Proceeding.
                if let Some(req) = txn.request_bytes() {
                    self.io.send(id, req.clone(), txn.dest);
                }
                txn.interval =
                    Millis::of(if txn.state == State::Proceeding { t.t2 } else { (txn.interval.get() * 2).min(t.t2) });
                self.io.set(txn, id, RETRANSMIT, now + txn.interval.get());
            }
            (RETRANSMIT, Kind::ServerInvite, State::Completed) => {
                // Timer G: the final response again, doubling up to T2.
                if let Some(resp) = txn.response.clone() {
                    self.io.send(id, resp, txn.dest);
                }
                txn.interval = Millis::of((txn.interval.get() * 2).min(t.t2));
                self.io.set(txn, id, RETRANSMIT, now + txn.interval.get());
            }
            (
                TIMEOUT,
                Kind::ClientInvite | Kind::ClientNonInvite,
                State::Calling | State::Trying | State::Proceeding,
            ) => {
                // Timer B / F (fr_timer, fr_inv_timer): the caller answers 408.
                events.push(Event::ClientTimeout { id: tid, provisional: txn.provisional });
                self.io.terminate(txn, id, now, t, events);
            }
            (TIMEOUT, Kind::ServerInvite, State::Completed) => {
                // Timer H: no ACK came.
                events.push(Event::AckTimeout(tid));
                self.io.terminate(txn, id, now, t, events);
            }
            (WAIT, _, State::Completed | State::Confirmed | State::Accepted) => {
                // The wait absorbed what was to come: freed now, no longer
                // matching (OpenSER 1.3's wait_handler unhashes the cell).
                events.push(Event::Terminated(tid));
                self.remove(id);
            }
            _ => {}
        }
    }
}

/// The transaction table: see the [module documentation](super).
pub struct Table {
    shards: Box<[Mutex<Shard>]>,
    /// Transactions in the table (all shards).
    count: AtomicUsize,
    /// Which shards may have transmits queued: bit `shard % 64` (set by
    /// [`with`](Table::with) under the shard's lock when it queued some,
    /// cleared by [`drain_transmits`](Table::drain_transmits) before it
    /// locks them). A message's drain locks only the shards it wrote to,
    /// not all of them.
    pending: AtomicU64,
    max: usize,
    timers: TmTimers,
    /// What the timer task sleeps until, in nanoseconds after `epoch`
    /// ([`AWAKE`] while it is not asleep): a deadline set earlier than that
    /// raises `wake`.
    timer_sleep: AtomicU64,
    wake: AtomicBool,
    epoch: Instant,
    /// The hash of transaction keys (std's SipHash, keyed at random for the
    /// process: peers choose branches and Call-IDs).
    keys: RandomState,
}

/// The granularity of the timer task's wake-ups ([`Table::next_wake`]): a
/// timer fires up to this late, so that under load one wake-up fires every
/// timer of a tick instead of one wake-up per deadline. OpenSER 1.3 runs its
/// retransmission timers every 100 ms (tm's `utimer_routine`).
pub const TIMER_TICK: Duration = Duration::from_millis(10);

/// The hash of a request's server-transaction key in one [`Table`]
/// ([`Table::handle_request_keyed`]; each table keys its hash for the process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash(u64);

/// `timer_sleep` while the timer task is awake (or has not said): every
/// deadline set then raises `wake`, so none set meanwhile is missed.
const AWAKE: u64 = u64::MAX;

impl Table {
    pub fn new(config: TableConfig) -> Table {
        let epoch = Instant::now();
        let n = config.shards.max(1);
        let shards = (0..n).map(|i| Mutex::new(Shard::new(epoch, i, n))).collect();
        Table {
            shards,
            count: AtomicUsize::new(0),
            pending: AtomicU64::new(0),
            max: config.max_transactions,
            timers: config.timers,
            timer_sleep: AtomicU64::new(AWAKE),
            wake: AtomicBool::new(false),
            epoch,
            keys: RandomState::new(),
        }
    }

    fn since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(AWAKE - 1)
    }

    /// The timer task says it is awake: it will look at every deadline
    /// ([`poll_timeout`](Table::poll_timeout)) before sleeping again.
    pub fn timer_awake(&self) {
        self.timer_sleep.store(AWAKE, Ordering::SeqCst);
    }

    /// When the timer task should next wake up and call
    /// [`handle_timeout`](Table::handle_timeout): the earliest deadline
    /// ([`poll_timeout`](Table::poll_timeout)) rounded up to a [`TIMER_TICK`]
    /// boundary. Timers due within one tick are fired together.
    pub fn next_wake(&self) -> Option<Instant> {
        self.earliest_deadline().map(|at| self.epoch + Duration::from_nanos(wake_nanos(at)))
    }

    /// The timer task says it sleeps until `at` (it called
    /// [`timer_awake`](Table::timer_awake), then `poll_timeout`, since it
    /// last woke).
    pub fn timer_sleeps_until(&self, at: Instant) {
        self.timer_sleep.store(self.since_epoch(at), Ordering::SeqCst);
    }

    /// Whether a deadline earlier than the one the timer task sleeps until
    /// was set since the last call (then the caller wakes the task). A
    /// message that only sets later deadlines, the usual case, costs the task
    /// nothing: it is not woken once per message.
    pub fn take_wake(&self) -> bool {
        self.wake.load(Ordering::Relaxed) && self.wake.swap(false, Ordering::SeqCst)
    }

    pub fn timers(&self) -> &TmTimers {
        &self.timers
    }

    /// Per shard: the transactions it holds now and all it ever made (MI's
    /// `t_hash`, as 1.3 lists its hash entries' current and total counts).
    pub fn shard_counts(&self) -> Vec<(usize, u64)> {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                (s.txns.len(), s.made)
            })
            .collect()
    }

    /// Timer entries queued, stale ones included (tests: what the timers
    /// will walk).
    #[cfg(test)]
    pub(crate) fn queued_timers(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.io.wheel_len + s.io.far.values().map(Vec::len).sum::<usize>()
            })
            .sum()
    }

    /// Transactions in the table, lingering ones included.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hash of a transaction key, keyed for the process (the keys are
    /// chosen by peers).
    fn hash_key(&self, key: impl Hash) -> u64 {
        self.keys.hash_one(key)
    }

    /// The shard of a key hash. Bits 24 and up: the shard's index tables use
    /// the low bits (bucket) and the top seven (tag), which would all be
    /// alike in a shard picked by either.
    fn shard_of(&self, hash: u64) -> usize {
        ((hash >> 24) % self.shards.len() as u64) as usize
    }

    fn shard_of_id(&self, id: TxnId) -> usize {
        (id.0 % self.shards.len() as u64) as usize
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A panic while a shard was locked leaves consistent-enough state: go on.
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a shard, keeping the table's counts of queued transmits and
    /// transactions.
    fn with<R>(&self, shard: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut s = self.lock(shard);
        let before = s.io.out.len();
        let r = f(&mut s);
        if s.io.out.len() > before {
            self.pending.fetch_or(Table::pending_bit(shard), Ordering::AcqRel);
        }
        let removed = std::mem::take(&mut s.removed);
        if removed > 0 {
            self.count.fetch_sub(removed, Ordering::Relaxed);
        }
        if let Some(at) = s.io.earliest.take() {
            // Compared as the task would sleep for it: a deadline within the
            // tick it wakes at needs no earlier wake-up.
            if wake_nanos(at) < self.timer_sleep.load(Ordering::SeqCst) {
                self.wake.store(true, Ordering::SeqCst);
            }
        }
        r
    }

    /// Counts one more transaction, unless the table is full.
    fn reserve(&self) -> Result<(), CreateError> {
        self.count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.max).then_some(n + 1))
            .map(|_| ())
            .map_err(|_| CreateError::Full)
    }

    /// Puts a transaction counted by [`reserve`](Table::reserve) in its
    /// shard and index: its id, or `Full` (uncounted again) when the shard
    /// has no slot left.
    fn insert(&self, shard: &mut Shard, txn: Txn) -> Result<u64, CreateError> {
        let key_hash = txn.key_hash;
        let server = txn.kind.is_server();
        let Some(id) = shard.txns.insert(txn) else {
            self.count.fetch_sub(1, Ordering::Relaxed);
            return Err(CreateError::Full);
        };
        shard.made += 1;
        let index = if server { &mut shard.servers } else { &mut shard.clients };
        index.insert_unique(key_hash, (key_hash, id), |&(h, _)| h);
        Ok(id)
    }

    /// A received request: does it belong to a server transaction? A
    /// retransmission gets the last response queued again (Proceeding,
    /// Completed); an ACK of a non-2xx final is absorbed (Completed → Confirmed);
    /// an ACK matching an INVITE transaction that sent a 2xx is for the caller
    /// to pass on. `NoMatch`: a new request (run the script), or an ACK of a 2xx
    /// with its own branch (route it end to end).
    pub fn handle_request(&self, now: Instant, msg: &Message) -> RequestOutcome {
        self.handle_request_keyed(now, msg).0
    }

    /// [`handle_request`](Table::handle_request), with the hash its server
    /// transaction is indexed under (`None` for a response): the caller that
    /// then creates the transaction (tm's `t_relay`) passes it to
    /// [`create_server_hashed`](Table::create_server_hashed), and the key is
    /// hashed once.
    pub fn handle_request_keyed(&self, now: Instant, msg: &Message) -> (RequestOutcome, Option<KeyHash>) {
        if !msg.is_request() {
            return (RequestOutcome::NoMatch, None);
        }
        let key = ServerKey::of(msg, false);
        let hash = self.hash_key(key);
        (self.with(self.shard_of(hash), |s| s.on_request(now, hash, &key, msg, &self.timers)), Some(KeyHash(hash)))
    }

    /// Creates the server transaction of a received request (tm's
    /// `t_newtran`, which `t_relay` does too): INVITE in Proceeding, others in
    /// Trying. Responses will go to `reply_to` (see
    /// [`reply_target`](crate::proxy::reply_target)). No timer runs until a
    /// response is sent: the caller answers every transaction it creates (tm
    /// sends 500 when a script neither replies nor relays), or
    /// [`terminate`](Table::terminate)s it.
    pub fn create_server(&self, msg: &Message, reply_to: Dest) -> Result<TxnId, CreateError> {
        self.create_server_hashed(msg, reply_to, None)
    }

    /// [`create_server`](Table::create_server), with the hash
    /// [`handle_request_keyed`](Table::handle_request_keyed) gave for `msg`
    /// (computed here when `None`).
    pub fn create_server_hashed(
        &self,
        msg: &Message,
        reply_to: Dest,
        hash: Option<KeyHash>,
    ) -> Result<TxnId, CreateError> {
        match msg.method() {
            None => return Err(CreateError::NotARequest),
            Some(Method::Ack) => return Err(CreateError::Ack),
            Some(_) => {}
        }
        let key = ServerKey::of(msg, false);
        let key_hash = hash.map_or_else(|| self.hash_key(key), |h| h.0);
        self.with(self.shard_of(key_hash), |s| {
            if let Some(id) = s.find_server(key_hash, &key, msg) {
                return Err(CreateError::Exists(TxnId(id)));
            }
            self.reserve()?;
            let kind = if msg.method() == Some(Method::Invite) { Kind::ServerInvite } else { Kind::ServerNonInvite };
            let txn = Txn {
                kind,
                state: if kind == Kind::ServerInvite { State::Proceeding } else { State::Trying },
                dest: reply_to,
                key_hash,
                request: Held::Unparsed { bytes: msg.bytes().clone(), key: KeptKey::server(msg) },
                response: None,
                status: 0,
                rare: None,
                interval: Millis::of(self.timers.t1),
                timers: [None; 4],
                fr_inv: Millis::of(self.timers.fr_inv),
                provisional: false,
                timeout_deferred: false,
                uplink: NO_UPLINK,
            };
            self.insert(s, txn).map(TxnId)
        })
    }

    /// The INVITE server transaction a received CANCEL cancels (§9.2: same
    /// branch and sent-by, or for RFC 2543 the same Request-URI, From, To tag,
    /// Call-ID, CSeq number and top Via), whatever its state.
    pub fn find_cancelled(&self, cancel: &Message) -> Option<TxnId> {
        if cancel.method() != Some(Method::Cancel) {
            return None;
        }
        let key = ServerKey::of(cancel, true);
        let hash = self.hash_key(key);
        let s = self.lock(self.shard_of(hash));
        s.find_server(hash, &key, cancel).map(TxnId)
    }

    /// Sends a response on a server transaction: queues it, keeps it for
    /// retransmissions and moves the state (§17.2.1, §17.2.2, RFC 6026):
    /// INVITE 1xx stays Proceeding, 2xx → Accepted (timer L; further 2xx are
    /// sent too), 300–699 → Completed (G over UDP, H); non-INVITE 1xx →
    /// Proceeding, final → Completed (J). A final response is parsed (its To
    /// tag is kept for RFC 2543 ACK matching); of a provisional only the
    /// status line is read.
    ///
    /// An INVITE entering Accepted, and a non-INVITE entering Completed,
    /// keep only their key from then on (they match retransmissions, the
    /// non-INVITE resends its final): [`request`](Table::request) is `None`
    /// for them (see
    /// [`send_response_keeping_request`](Table::send_response_keeping_request)).
    /// The request is freed at the final, while it is still in the cache,
    /// not 32 s later.
    pub fn send_response(&self, now: Instant, id: TxnId, response: Bytes) -> Result<(), SendError> {
        self.with(self.shard_of_id(id), |s| s.send_response(now, id.0, response, false, &self.timers))
    }

    /// [`send_response`](Table::send_response), an INVITE's request kept in
    /// Accepted too (acc reads it for each 2xx of a forked INVITE).
    pub fn send_response_keeping_request(&self, now: Instant, id: TxnId, response: Bytes) -> Result<(), SendError> {
        self.with(self.shard_of_id(id), |s| s.send_response(now, id.0, response, true, &self.timers))
    }

    /// Starts a client transaction: `request` is the request as it goes out,
    /// our Via on top with an RFC 3261 branch (CANCEL: the INVITE's branch).
    /// Queues it, and over UDP schedules its retransmissions (A or E); the
    /// final-response timeout is `fr` (or `config.fr`).
    pub fn start_client(
        &self,
        now: Instant,
        request: Bytes,
        dest: Dest,
        config: &ClientConfig,
    ) -> Result<TxnId, CreateError> {
        self.start_client_as(now, request, dest, config, true)
    }

    /// Starts a client transaction whose destination is not known yet (a host
    /// name being resolved): nothing is sent and nothing retransmitted, only
    /// its final-response timer runs (a lookup slower than `fr` ends it as
    /// any silent destination). [`send_client`](Table::send_client) sends it
    /// once the address is known. `dest` says the transport (its address is
    /// a placeholder until then).
    pub fn start_client_unsent(
        &self,
        now: Instant,
        request: Bytes,
        dest: Dest,
        config: &ClientConfig,
    ) -> Result<TxnId, CreateError> {
        self.start_client_as(now, request, dest, config, false)
    }

    /// Sends a client transaction started with
    /// [`start_client_unsent`](Table::start_client_unsent) to `dest` and
    /// starts its retransmissions; `false` when it has ended meanwhile (timed
    /// out, terminated) or was sent already.
    pub fn send_client(&self, now: Instant, id: TxnId, dest: Dest) -> bool {
        self.with(self.shard_of_id(id), |s| {
            let Some(txn) = s.txns.get_mut(id.0) else { return false };
            let waiting = matches!(txn.state, State::Calling | State::Trying)
                && txn.timers[RETRANSMIT].is_none()
                && txn.dest.addr.port() == 0;
            if !waiting {
                return false;
            }
            txn.dest = dest;
            if let Some(req) = txn.request_bytes() {
                s.io.send(id.0, req.clone(), dest);
            }
            if !txn.reliable() {
                let t1 = txn.interval.get();
                s.io.set(txn, id.0, RETRANSMIT, now + t1);
            }
            true
        })
    }

    fn start_client_as(
        &self,
        now: Instant,
        request: Bytes,
        dest: Dest,
        config: &ClientConfig,
        send: bool,
    ) -> Result<TxnId, CreateError> {
        let mut msg = Message::parse(request, Framing::Datagram).map_err(|_| CreateError::Malformed)?;
        // The parser's room for a typical message's headers, given back: the
        // request stays as long as the transaction.
        msg.headers.shrink_to_fit();
        let invite = match msg.method() {
            None => return Err(CreateError::NotARequest),
            Some(Method::Ack) => return Err(CreateError::Ack),
            Some(m) => m == Method::Invite,
        };
        self.start_held(now, Held::Request(Box::new(msg)), invite, dest, config, send)
    }

    /// Starts a client transaction of a request tm built: as
    /// [`start_client`](Table::start_client), without parsing the request
    /// again (its key is `built`'s branch and method; it is parsed only if
    /// an ACK or a CANCEL of it is built).
    pub fn start_built(
        &self,
        now: Instant,
        built: Built<'_>,
        dest: Dest,
        config: &ClientConfig,
    ) -> Result<TxnId, CreateError> {
        let (request, invite) = built.held()?;
        self.start_held(now, request, invite, dest, config, true)
    }

    /// [`start_built`](Table::start_built) for a destination not known yet,
    /// as [`start_client_unsent`](Table::start_client_unsent).
    pub fn start_built_unsent(
        &self,
        now: Instant,
        built: Built<'_>,
        dest: Dest,
        config: &ClientConfig,
    ) -> Result<TxnId, CreateError> {
        let (request, invite) = built.held()?;
        self.start_held(now, request, invite, dest, config, false)
    }

    /// Creates a client transaction of `request` (which has a client key).
    fn start_held(
        &self,
        now: Instant,
        request: Held,
        invite: bool,
        dest: Dest,
        config: &ClientConfig,
        send: bool,
    ) -> Result<TxnId, CreateError> {
        let key_hash = self.hash_key(request.client_key().ok_or(CreateError::NoBranch)?);
        self.with(self.shard_of(key_hash), |s| {
            if let Some(id) = request.client_key().and_then(|key| s.find_client(key_hash, &key)) {
                return Err(CreateError::Exists(TxnId(id)));
            }
            self.reserve()?;
            let t = &self.timers;
            let bytes = request.bytes().cloned();
            let txn = Txn {
                kind: if invite { Kind::ClientInvite } else { Kind::ClientNonInvite },
                state: if invite { State::Calling } else { State::Trying },
                dest,
                key_hash,
                request,
                response: None,
                status: 0,
                rare: None,
                interval: Millis::of(t.t1),
                timers: [None; 4],
                fr_inv: Millis::of(config.fr_inv.unwrap_or(t.fr_inv)),
                provisional: false,
                timeout_deferred: false,
                uplink: config.uplink.map_or(NO_UPLINK, |u| u.0),
            };
            let reliable = txn.reliable();
            let fr = config.fr.unwrap_or(t.fr);
            let id = self.insert(s, txn)?;
            let Shard { txns, io, .. } = s;
            let txn = txns.get_mut(id).expect("just inserted");
            if let Some(bytes) = bytes.filter(|_| send) {
                io.send(id, bytes, dest);
                if !reliable {
                    io.set(txn, id, RETRANSMIT, now + t.t1);
                }
            }
            if txn.timers[RETRANSMIT].is_some() && t.t1 < fr {
                io.defer_timeout(txn, now + fr);
            } else {
                io.set(txn, id, TIMEOUT, now + fr);
            }
            Ok(TxnId(id))
        })
    }

    /// A received response: does it belong to a client transaction (§17.1.3:
    /// branch and CSeq method)? See [`ResponseOutcome`] for what passes up.
    /// `NoMatch`: forward it statelessly (§16.7 step 2).
    pub fn handle_response(&self, now: Instant, msg: &Message) -> ResponseOutcome {
        let Some(key) = ClientKey::of(msg).filter(|_| !msg.is_request()) else { return ResponseOutcome::NoMatch };
        let hash = self.hash_key(key);
        self.with(self.shard_of(hash), |s| s.on_response(now, hash, &key, msg, &self.timers))
    }

    /// The next message to send, if any. Everything the table sends comes out
    /// here: responses given to [`send_response`](Table::send_response),
    /// requests given to [`start_client`](Table::start_client), ACKs of non-2xx
    /// finals, and the retransmissions of all of them.
    /// Messages leave in the order they were queued, whatever their shards.
    pub fn poll_transmit(&self) -> Option<Transmit> {
        let pending = self.pending.load(Ordering::Acquire);
        if pending == 0 {
            return None;
        }
        let first = self
            .pending_shards(pending)
            .filter_map(|shard| self.lock(shard).io.out.front().map(|(seq, _)| (*seq, shard)))
            .min()?;
        let (_, t) = self.lock(first.1).io.out.pop_front()?;
        Some(t)
    }

    /// Every queued message, in the order queued (one lock per shard that
    /// queued some).
    pub fn drain_transmits(&self) -> Vec<Transmit> {
        let mut all = Vec::new();
        self.drain_transmits_with(|t| all.push(t));
        all
    }

    /// [`drain_transmits`](Table::drain_transmits), each message handed to
    /// `take` in the order queued, without a vector of its own. `take` may
    /// run under a shard's lock: it must not call into the table.
    pub fn drain_transmits_with(&self, mut take: impl FnMut(Transmit)) {
        if self.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        // Cleared before the shards are locked: what a shard queues meanwhile
        // sets its bit again and is drained now or next time, never lost.
        let pending = self.pending.swap(0, Ordering::AcqRel);
        if pending.count_ones() == 1 && self.shards.len() <= 64 {
            // One shard (the usual case): its queue is in order already.
            let mut s = self.lock(pending.trailing_zeros() as usize);
            s.io.out.drain(..).for_each(|(_, t)| take(t));
            return;
        }
        let mut all: Vec<(u64, Transmit)> = Vec::new();
        for shard in self.pending_shards(pending) {
            let mut s = self.lock(shard);
            all.extend(s.io.out.drain(..));
        }
        all.sort_unstable_by_key(|(seq, _)| *seq);
        all.into_iter().for_each(|(_, t)| take(t));
    }

    fn pending_bit(shard: usize) -> u64 {
        1 << (shard % 64)
    }

    /// The shards whose bit is set in `pending`.
    fn pending_shards(&self, pending: u64) -> impl Iterator<Item = usize> {
        (0..self.shards.len()).filter(move |&shard| pending & Table::pending_bit(shard) != 0)
    }

    /// When [`handle_timeout`](Table::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.earliest_deadline().map(|at| deadline_at(self.epoch, at))
    }

    /// The earliest deadline of all shards (their epoch is the table's).
    fn earliest_deadline(&self) -> Option<std::num::NonZeroU64> {
        (0..self.shards.len()).filter_map(|shard| self.lock(shard).next_deadline()).min()
    }

    /// Fires every timer due at `now`: retransmissions are queued (see
    /// [`poll_transmit`](Table::poll_transmit)); timeouts and terminations are
    /// returned, in the order they happened within each shard.
    pub fn handle_timeout(&self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        let due = nanos_after(self.epoch, now);
        for shard in 0..self.shards.len() {
            self.with(shard, |s| {
                s.fire_due(now, due, &self.timers, &mut events);
            });
        }
        events
    }

    /// Ends a transaction now (tm's `t_release`, or the caller giving up on
    /// it): Terminated, freed after `delete_timer`. Gives the `Terminated`
    /// event, or `None` when there is no such transaction or it ended already.
    pub fn terminate(&self, now: Instant, id: TxnId) -> Option<Event> {
        self.with(self.shard_of_id(id), |s| {
            let txn = s.txns.get_mut(id.0).filter(|t| t.state != State::Terminated)?;
            let mut events = Vec::new();
            s.io.terminate(txn, id.0, now, &self.timers, &mut events);
            events.pop()
        })
    }

    fn inspect<R>(&self, id: TxnId, f: impl FnOnce(&Txn) -> R) -> Option<R> {
        self.lock(self.shard_of_id(id)).txns.get(id.0).map(f)
    }

    /// The state of a transaction (`None`: freed, or never was).
    pub fn state(&self, id: TxnId) -> Option<State> {
        self.inspect(id, |t| t.state)
    }

    pub fn kind(&self, id: TxnId) -> Option<Kind> {
        self.inspect(id, |t| t.kind)
    }

    /// The status of the last response sent (server) or received (client); 0:
    /// none yet.
    pub fn status(&self, id: TxnId) -> Option<u16> {
        self.inspect(id, |t| t.status)
    }

    /// The request of a transaction: received (server) or sent (client).
    /// `None` once a server transaction's final keeps only its key (a 2xx of
    /// an INVITE, any final of a non-INVITE: [`send_response`](Table::send_response)).
    pub fn request(&self, id: TxnId) -> Option<Message> {
        self.inspect(id, |t| t.request().map(Cow::into_owned)).flatten()
    }

    /// A CANCEL of a client INVITE transaction's request (§9.1), for the caller
    /// to start as a client transaction of its own (to the same destination).
    /// `None` for other transactions. §9.1 says to send it only once a
    /// provisional arrived: [`state`](Table::state) is `Proceeding` then.
    pub fn build_cancel(&self, id: TxnId) -> Option<Bytes> {
        self.inspect(id, |t| t.request().filter(|_| t.kind == Kind::ClientInvite).map(|req| local::cancel(&req)))
            .flatten()
    }

    /// The server transaction a client one is a branch of
    /// ([`ClientConfig::uplink`]), until the client transaction is freed.
    pub fn uplink(&self, client: TxnId) -> Option<TxnId> {
        self.inspect(client, |t| (t.uplink != NO_UPLINK).then_some(TxnId(t.uplink))).flatten()
    }

    /// Where a transaction's messages go.
    pub fn dest(&self, id: TxnId) -> Option<Dest> {
        self.inspect(id, |t| t.dest)
    }
}

#[cfg(test)]
mod tests {
    /// A transaction's room is walked again when it ends, up to 32 s after it
    /// began (RFC 6026's Accepted): what it carries inline is kept small.
    #[test]
    fn a_transaction_stays_small() {
        let size = std::mem::size_of::<super::Txn>();
        eprintln!("Txn: {size} bytes");
        assert!(size <= 256, "Txn is {size} bytes");
    }

    /// A timer entry packs the transaction's id with the timer slot: every id
    /// a shard can hand out fits, whatever the number of shards, and entries
    /// order as (deadline, id, slot).
    #[test]
    fn timer_entries_hold_every_id_and_order_by_deadline() {
        use super::{entry_target, timer_entry, Txns};
        use std::num::NonZeroU64;
        for shards in [1usize, 2, 3, 16, 64, 1000] {
            let txns = Txns::new(shards - 1, shards);
            let keys = (1u64 << 32) * u64::from(txns.slots.generations());
            let last = (keys - 1) * txns.ways + txns.shard;
            assert!(last < 1 << 62, "{shards} shards: id {last}");
            for slot in 0..4 {
                assert_eq!(entry_target(&timer_entry(NonZeroU64::MIN, last, slot)), (last, slot));
            }
        }
        let at = |n: u64| NonZeroU64::new(n).unwrap();
        let mut entries = [timer_entry(at(9), 1, 0), timer_entry(at(5), 7, 3), timer_entry(at(5), 7, 1)];
        entries.sort_unstable();
        let order: Vec<_> = entries.iter().map(|e| (e.0.get(), entry_target(e))).collect();
        assert_eq!(order, [(5, (7, 1)), (5, (7, 3)), (9, (1, 0))]);
    }
}
