//! tm: stateful proxying (OpenSER 1.3's `tm` module) on the sans-IO transaction
//! table of [`crate::tm`].
//!
//! # Where things live
//!
//! - One [`Tm`] per proxy: the [`Table`] and what links its transactions — for
//!   each server transaction a `Cell` (its client branches, the best negative
//!   final so far, whether a final went upstream, where the request came from)
//!   and for each client transaction the server transaction it belongs to. It
//!   hangs off [`Config::tm`](crate::script::Config) ([`TmSlot`]), built on
//!   first use from tm's modparams (`fr_timer`, `fr_inv_timer`, `wt_timer`,
//!   `delete_timer` in seconds, `T1_timer`, `T2_timer` in ms,
//!   `restart_fr_on_each_reply`, `noisy_ctimer`), so every function reaches it
//!   through `ctx.config` and clones of a `Config` share it.
//! - Per message, [`TxnCtx`] (`ctx.tm`): the time the pipeline read for the
//!   message, the table's answer for the request (asked once per message, so a
//!   retransmission gets the last reply resent once), the server transaction
//!   once created.
//! - Everything the table queues (responses, branch requests, ACKs of non-2xx,
//!   retransmissions) is drained by the pipeline (`app.rs`) after each message
//!   and by its timer task, which also hands timer events to [`Tm::on_event`].
//!
//! # What the script functions do (OpenSER 1.3's behaviour)
//!
//! - `t_relay()` / `t_relay("proto:ip:port")`: creates the server transaction
//!   (a retransmission: the last reply is resent and it returns 0, so the
//!   script stops); an ACK has no transaction of its own and is forwarded
//!   statelessly (as `forward()`); an INVITE gets `100 Giving a try`; then a
//!   branch to `$du`, the Request-URI or the given socket, and one per
//!   appended branch (`append_branch`, `lookup`'s further contacts) at once
//!   (parallel forking; the first 2xx CANCELs the others, §16.7 step 10), built as `forward()`
//!   builds it (received/rport on the top Via, our Via, Record-Route as rr
//!   left it) with a branch of its own per client transaction. A destination
//!   that is a host name: the client transaction starts unsent (its `fr_timer`
//!   runs) and the pipeline resolves the name (RFC 3263; from the cache at
//!   once, else in a task — a worker never waits for the DNS) and sends it
//!   ([`Tm::resolved`]); a name that does not resolve ends the branch with
//!   tm's own `478 Unresolvable destination` (OpenSER's reply for
//!   `E_BAD_ADDRESS`), a negative final like any other. With no branch
//!   possible at all (no destination), the transaction is answered 478 and
//!   `t_relay` returns 0 (the script stops).
//! - Per-branch timers: `fr_timer_avp` / `fr_inv_timer_avp` name AVPs whose
//!   value (seconds) replaces `fr_timer` / `fr_inv_timer` for the branches a
//!   `t_relay` starts, read from the transaction's AVPs then.
//! - `t_relay()` of a CANCEL whose INVITE transaction exists (RFC 3261
//!   §16.10): `200 canceling` to the CANCEL through its own transaction, and a
//!   CANCEL (built by the table, with the branch of the INVITE it cancels) down
//!   every branch without a final — at once where a provisional arrived, else
//!   when one does (§9.1); the branches' 487s end the INVITE as any negative
//!   final. A CANCEL matching nothing is relayed as any request.
//! - Responses (`Tm::on_response`): a 100 stops at the proxy; other
//!   provisionals and a 2xx go upstream at once through the server
//!   transaction (our Via removed, the bare `onreply_route`'s edits applied);
//!   negative finals are kept until every branch is final, then the best
//!   (6xx first, else the lowest code) goes upstream — a 503 as a 500 of our
//!   own (RFC 3261 §16.7 step 6; OpenSER 1.3 relays the 503). Reply routes
//!   see the transaction's AVPs with `onreply_avp_mode` 1, else none.
//! - Timeouts (`Tm::on_event`): a branch without a final gets a local `408
//!   Request Timeout` as its final. As OpenSER with `noisy_ctimer` 0 (the
//!   default), an INVITE that got a provisional, has a single branch and no
//!   failure_route is ended silently instead: nothing goes upstream.
//! - `t_newtran`, `t_reply`, `t_check_trans`, `t_release`, `t_flush_flags`,
//!   `t_local_replied`, `t_replicate` (a copy whose replies stay here): see each. `t_write_req`/`t_write_unix` are refused by
//!   the compiler (the manifest's `WONT_IMPLEMENT` says why).
//! - acc ([`super::acc`]) hooks in here: a cell remembers whether its
//!   transaction is accounted; each reply sent upstream, each failure before
//!   its failure route, and the end-to-end ACK of an accounted 2xx (found by
//!   Call-ID, CSeq and From tag, as 1.3's dialog matching) make records,
//!   logged by [`Tm::drain`] outside the locks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proxy::{self, Local, Source, Target};
use crate::script::args::{Format, ReplyCode, RouteId, SocketSpec};
use crate::script::{Config, Ctx, ModParams, Send};
use crate::sip::{Edits, Interest, Message, Method};
use crate::tm::{
    Built, ClientConfig, CreateError, Dest, Event, IdHash, RequestOutcome, ResponseOutcome, Table, TableConfig,
    TmTimers, TxnId,
};

/// The seed of the To-tags of the replies tm makes itself (`t_reply`, 408).
const TAG_SEED: &[u8] = b"serc-tm";

/// A proxy's [`Tm`], built on first use (see the module documentation). Clones
/// share it.
#[derive(Clone, Default)]
pub struct TmSlot(Arc<OnceLock<Arc<Tm>>>, Arc<tokio::sync::Notify>);

impl std::fmt::Debug for TmSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.get() {
            Some(tm) => write!(f, "TmSlot({} transactions)", tm.table.len()),
            None => f.write_str("TmSlot(not built)"),
        }
    }
}

impl TmSlot {
    /// The proxy's tm, built now from `config`'s modparams if it was not yet.
    pub fn get_or_init(&self, config: &Config) -> &Arc<Tm> {
        self.0.get_or_init(|| Arc::new(Tm::new(config)))
    }

    /// The proxy's tm if anything built it (no transaction exists otherwise).
    pub fn get(&self) -> Option<&Arc<Tm>> {
        self.0.get()
    }

    /// Wakes the task that fires tm's timers and sends what its table queued
    /// outside a message's handling (MI's `t_uac_dlg`, a new earlier deadline).
    pub fn wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.1
    }
}

/// What one message's route knows about its transaction (`ctx.tm`).
#[derive(Clone, Debug)]
pub struct TxnCtx {
    /// The time of the message, as the pipeline read it (tests set it).
    pub now: Instant,
    /// The table's answer for this request, once asked.
    pub lookup: Option<RequestOutcome>,
    /// The hash of this request's server-transaction key, from the lookup
    /// (reused to create the transaction).
    pub key_hash: Option<crate::tm::KeyHash>,
    /// The server transaction of this request, once created (or found).
    pub server: Option<TxnId>,
    /// `t_on_failure`'s route, armed for the transaction this request creates.
    pub failure_route: Option<RouteId>,
    /// In a failure route: the status of the reply that ended the branches.
    pub failure_status: Option<u16>,
    /// `t_on_reply`'s route, armed for the transaction this request creates.
    pub reply_route: Option<RouteId>,
    /// `t_on_branch`'s route, run for each branch the next `t_relay` sends.
    pub branch_route: Option<RouteId>,
}

impl TxnCtx {
    pub fn new(now: Instant) -> TxnCtx {
        TxnCtx {
            now,
            lookup: None,
            key_hash: None,
            server: None,
            failure_route: None,
            failure_status: None,
            reply_route: None,
            branch_route: None,
        }
    }
}

/// The request as the route that relayed it left it (OpenSER keeps the
/// transaction's copy of the message, its lumps, AVPs and flags): what a
/// failure route starts from.
#[derive(Clone, Debug)]
pub struct RequestState {
    pub src: Source,
    edits: Edits,
    ruri: Option<String>,
    dst_uri: Option<String>,
    path: Option<String>,
    avps: crate::script::Avps,
    rr: super::rr::RrState,
    flags: u32,
    branch_flags: u32,
    force_rport: bool,
    force_local_rport: bool,
}

impl RequestState {
    fn capture(ctx: &Ctx) -> RequestState {
        RequestState {
            src: ctx.src,
            edits: ctx.edits.clone(),
            ruri: ctx.ruri.clone(),
            dst_uri: ctx.dst_uri.clone(),
            path: ctx.path.clone(),
            avps: ctx.avps.clone(),
            rr: ctx.rr.clone(),
            flags: ctx.flags,
            branch_flags: ctx.branch_flags,
            force_rport: ctx.force_rport,
            force_local_rport: ctx.force_local_rport,
        }
    }

    /// Puts the state back on a context made for the transaction's request.
    pub fn restore(&self, ctx: &mut Ctx) {
        ctx.edits = self.edits.clone();
        ctx.ruri = self.ruri.clone();
        ctx.dst_uri = self.dst_uri.clone();
        ctx.path = self.path.clone();
        ctx.avps = self.avps.clone();
        ctx.rr = self.rr.clone();
        ctx.flags = self.flags;
        ctx.branch_flags = self.branch_flags;
        ctx.force_rport = self.force_rport;
        ctx.force_local_rport = self.force_local_rport;
    }
}

/// A failure route to run (the pipeline runs them: it has the script).
#[derive(Debug)]
pub struct FailureRun {
    pub server: TxnId,
    pub route: RouteId,
    /// The best negative final's status.
    pub status: u16,
    pub state: RequestState,
}

/// One branch of a server transaction.
#[derive(Clone, Debug)]
struct BranchState {
    client: TxnId,
    /// Its final status (0: none yet).
    status: u16,
    /// The request was cancelled: a CANCEL goes to this branch once it has
    /// had a provisional response (RFC 3261 §9.1), if it has not yet.
    cancel: Cancel,
    /// Its Request-URI (`$ru` of acc's records).
    uri: String,
    /// It received a reply (any, a 100 too): `t_local_replied`.
    got_reply: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cancel {
    No,
    /// Waiting for a provisional response.
    Pending,
    Sent,
}

/// What tm keeps for a server transaction (OpenSER's cell, beyond the table).
#[derive(Debug)]
struct Cell {
    invite: bool,
    src: Source,
    force_rport: bool,
    /// `append_to_reply` lines, for local replies (tm adds its `Server:` line).
    reply_headers: String,
    branches: Vec<BranchState>,
    /// The best negative final so far: status, the bytes to send upstream,
    /// and whether tm made it (a local 408).
    best: Option<(u16, Bytes, bool)>,
    /// The branch the best negative final came from.
    best_client: Option<TxnId>,
    /// The first branch of the last `t_relay` (`t_local_replied("all")`).
    first_branch: usize,
    /// The last reply sent upstream was tm's own (`t_local_replied("last")`).
    last_local: bool,
    /// A final response went upstream.
    final_sent: bool,
    /// A CANCEL for the request arrived (`t_was_cancelled`).
    cancelled: bool,
    /// What it keeps of the request's state (see [`Kept`]).
    state: Kept,
    failure_route: Option<RouteId>,
    /// `onreply_route[N]` for the replies of its branches (`t_on_reply`).
    reply_route: Option<RouteId>,
    /// acc's state when the transaction is accounted.
    acc: Option<super::acc::TxnAcc>,
    /// Its key's hash in `Tm::dialogs`, once acc accounted a 2xx of it
    /// with `report_ack` on (its ACK is then accounted too).
    ack_hash: Option<u64>,
    /// Made by `t_replicate`: its replies stay here (none goes upstream) and
    /// it ends when its branch does.
    replicate: bool,
}

/// What a cell keeps of its request's state.
#[derive(Debug)]
enum Kept {
    /// As the last `t_relay` left it, for a failure route (boxed: a cell
    /// keeps it only until its final response).
    Relayed(Box<RequestState>),
    /// No failure route can run (no `t_relay` yet, or a final went upstream,
    /// see [`Tm::send_response`]): only what acc and the reply routes read,
    /// the Request-URI (acc's `$ru` when no branch gives one) and the
    /// transaction's AVPs.
    Read { ruri: Option<String>, avps: crate::script::Avps },
}

impl Default for Kept {
    fn default() -> Self {
        Kept::Read { ruri: None, avps: Default::default() }
    }
}

impl Kept {
    /// The state for a failure route, until the final response.
    fn relayed(&self) -> Option<&RequestState> {
        match self {
            Kept::Relayed(state) => Some(state),
            _ => None,
        }
    }

    fn relayed_mut(&mut self) -> Option<&mut RequestState> {
        match self {
            Kept::Relayed(state) => Some(state),
            _ => None,
        }
    }

    /// A final went upstream: keeps of the relayed state what is still read.
    fn answered(&mut self) {
        if let Kept::Relayed(state) = std::mem::take(self) {
            let RequestState { ruri, avps, .. } = *state;
            *self = Kept::Read { ruri, avps };
        }
    }
}

impl Cell {
    /// The transaction's AVPs, before or after its final response.
    fn avps(&self) -> &crate::script::Avps {
        match &self.state {
            Kept::Relayed(state) => &state.avps,
            Kept::Read { avps, .. } => avps,
        }
    }

    /// The Request-URI `t_relay` left, before or after the final response.
    fn ruri(&self) -> Option<&String> {
        match &self.state {
            Kept::Relayed(state) => state.ruri.as_ref(),
            Kept::Read { ruri, .. } => ruri.as_ref(),
        }
    }
}

/// tm's state in a proxy: see the module documentation.
pub struct Tm {
    pub table: Table,
    /// tm's statistics (`tm:UAS_transactions` …, see [`crate::mi::counters`]).
    stats: crate::mi::counters::TmCounters,
    /// Requests the proxy originated (MI's `t_uac_dlg`) waiting for their final reply.
    local_uacs: Mutex<HashMap<TxnId, LocalUac>>,
    noisy_ctimer: bool,
    /// `fr_timer_avp`, `fr_inv_timer_avp`: AVPs whose value (seconds)
    /// overrides `fr_timer`/`fr_inv_timer` for the branches a `t_relay` starts.
    fr_avp: Option<crate::script::AvpName>,
    fr_inv_avp: Option<crate::script::AvpName>,
    /// `onreply_avp_mode` 1: `onreply_route[N]` sees the transaction's AVPs
    /// (0, the default: the reply's own, none).
    onreply_avps: bool,
    server_header: String,
    /// Per server transaction. Boxed: the map grows under its lock, shared by
    /// the workers, and a move then costs a pointer, not a cell; a cell lasts
    /// as long as its transaction (32 s after a 2xx).
    cells: ByTxn<Box<Cell>>,
    /// Failure routes to run.
    failures: Queue<FailureRun>,
    /// acc, when the config accounts anything.
    acc: Option<super::acc::Acc>,
    /// acc's lines, logged by [`Tm::drain`] (outside the locks).
    acc_records: Queue<super::acc::Record>,
    /// Accounted INVITEs whose 2xx acc accounted, by (Call-ID, CSeq number,
    /// From tag), to find the transaction of an end-to-end ACK (`report_ack`;
    /// 1.3's dialog matching; an ACK is accounted only for an accounted 2xx).
    dialogs: Dialogs,
    /// Branches to host names waiting for the resolver.
    lookups: Queue<Lookup>,
}

/// An accounted INVITE's (Call-ID, CSeq number, From tag), the two texts
/// in one allocation.
#[derive(Debug)]
struct AckKey {
    /// The Call-ID, then the From tag.
    text: Box<str>,
    /// Where the From tag begins in `text`.
    split: u32,
    cseq: u32,
}

impl AckKey {
    fn new((call_id, cseq, from_tag): AckKeyRef<'_>) -> AckKey {
        let text = [call_id, from_tag].concat().into_boxed_str();
        // A message's texts fit in u32 (it is at most 64 KiB).
        AckKey { text, split: call_id.len() as u32, cseq }
    }

    fn is(&self, (call_id, cseq, from_tag): AckKeyRef<'_>) -> bool {
        let (c, f) = self.text.split_at(self.split as usize);
        self.cseq == cseq && c == call_id && f == from_tag
    }
}

/// A map keyed by transaction, in shards: the workers look into tm's cells
/// several times a message, nearly always for different transactions, and
/// one lock (and its cache line) for all would be shared by every lookup.
/// The shard is picked from bits of the id's hash that neither the bucket
/// (low bits) nor the tag (top seven) of a shard's map uses.
struct ByTxn<V> {
    shards: Box<[Mutex<HashMap<TxnId, V, IdHash>>]>,
}

/// Shards of a [`ByTxn`].
const BY_TXN_SHARDS: usize = 16;

impl<V> Default for ByTxn<V> {
    fn default() -> Self {
        ByTxn { shards: (0..BY_TXN_SHARDS).map(|_| Mutex::new(HashMap::default())).collect() }
    }
}

impl<V> ByTxn<V> {
    fn lock(&self, id: TxnId) -> std::sync::MutexGuard<'_, HashMap<TxnId, V, IdHash>> {
        use std::hash::BuildHasher;
        let shard = (IdHash.hash_one(id) >> 32) as usize % BY_TXN_SHARDS;
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }

    /// The ids whose value passes `keep`.
    fn ids_where(&self, keep: impl Fn(&V) -> bool) -> Vec<TxnId> {
        let mut ids = Vec::new();
        for shard in &self.shards {
            let map = shard.lock().unwrap_or_else(|e| e.into_inner());
            ids.extend(map.iter().filter(|(_, v)| keep(v)).map(|(id, _)| *id));
        }
        ids
    }
}

/// Work a worker queues while it handles a message and that the pipeline
/// takes after each one (acc's lines, failure routes, DNS lookups). Both
/// workers look after every message, mostly at an empty queue: `queued`
/// tells them so without the lock, whose cache line would otherwise travel
/// between the cores. It is set under the lock with each push and cleared
/// under it when the queue empties; a worker always sees its own pushes, so
/// what it queued is taken after its message.
struct Queue<T> {
    items: Mutex<Vec<T>>,
    queued: AtomicBool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue { items: Mutex::new(Vec::new()), queued: AtomicBool::new(false) }
    }
}

impl<T> Queue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn extend(&self, items: impl IntoIterator<Item = T>) {
        let mut queue = self.lock();
        queue.extend(items);
        if !queue.is_empty() {
            self.queued.store(true, Ordering::Release);
        }
    }

    fn take_all(&self) -> Vec<T> {
        if !self.queued.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut queue = self.lock();
        self.queued.store(false, Ordering::Release);
        std::mem::take(&mut *queue)
    }

    /// The oldest item queued.
    fn take_first(&self) -> Option<T> {
        if !self.queued.load(Ordering::Acquire) {
            return None;
        }
        let mut queue = self.lock();
        let first = (!queue.is_empty()).then(|| queue.remove(0));
        if queue.is_empty() {
            self.queued.store(false, Ordering::Release);
        }
        first
    }
}

/// An [`AckKey`] borrowed from a message.
type AckKeyRef<'m> = (&'m str, u32, &'m str);

/// A message's (Call-ID, CSeq number, From tag), borrowed.
fn ack_key(msg: &Message) -> AckKeyRef<'_> {
    let from_tag = msg.from_tag.map_or("", |t| msg.text(t));
    (msg.text(msg.call_id).trim(), msg.cseq, from_tag)
}

/// [`Tm::dialogs`]: the key of each accounted INVITE, found from an ACK's
/// own (borrowed: an ACK looked up copies nothing).
struct Dialogs {
    keys: std::hash::RandomState,
    /// (hash, key, transaction).
    table: Mutex<hashbrown::HashTable<(u64, AckKey, TxnId)>>,
}

impl Dialogs {
    fn new() -> Dialogs {
        Dialogs { keys: std::hash::RandomState::new(), table: Mutex::new(hashbrown::HashTable::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, hashbrown::HashTable<(u64, AckKey, TxnId)>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `msg`'s key, its hash, and a test for the entry holding that key.
    fn key_of<'m>(&self, msg: &'m Message) -> (AckKeyRef<'m>, u64, impl Fn(&(u64, AckKey, TxnId)) -> bool + 'm) {
        use std::hash::BuildHasher;
        let key = ack_key(msg);
        let hash = self.keys.hash_one(key);
        (key, hash, move |e: &(u64, AckKey, TxnId)| e.0 == hash && e.1.is(key))
    }

    /// Records `id` as the INVITE of `msg`'s key (a later one with the same
    /// key takes its place); the hash to remove it by.
    fn insert(&self, msg: &Message, id: TxnId) -> u64 {
        let (key, hash, same) = self.key_of(msg);
        match self.lock().entry(hash, same, |e| e.0) {
            hashbrown::hash_table::Entry::Occupied(mut e) => e.get_mut().2 = id,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert((hash, AckKey::new(key), id));
            }
        }
        hash
    }

    /// The accounted INVITE an ACK (`msg`) belongs to.
    fn find(&self, msg: &Message) -> Option<TxnId> {
        let (_, hash, same) = self.key_of(msg);
        self.lock().find(hash, same).map(|e| e.2)
    }

    /// Forgets `id` (recorded under `hash`), unless a later INVITE took its key.
    fn remove(&self, hash: u64, id: TxnId) {
        if let Ok(e) = self.lock().find_entry(hash, |e| e.0 == hash && e.2 == id) {
            e.remove();
        }
    }
}

fn secs(params: &ModParams, name: &str) -> Duration {
    Duration::from_secs(params.int("tm", name).max(0) as u64)
}

fn millis(params: &ModParams, name: &str) -> Duration {
    Duration::from_millis(params.int("tm", name).max(1) as u64)
}

/// An AVP named by a modparam (`$avp(i:24)`, `i:24`, `s:name`); `None` when
/// unset or unreadable.
fn avp_param(params: &ModParams, name: &str) -> Option<crate::script::AvpName> {
    let v = params.get("tm", name);
    let text = v.as_text();
    if text.trim().is_empty() {
        return None;
    }
    let avp = crate::script::AvpName::parse(&text);
    if avp.is_none() {
        tracing::error!(param = name, value = %text, "tm: not an AVP name; ignored");
    }
    avp
}

/// A timer from an AVP (seconds, an integer or a decimal string, as 1.3's
/// `avp2timer`); `None` when the AVP is not set or not a number.
fn avp_timer(avps: &crate::script::Avps, name: Option<&crate::script::AvpName>) -> Option<Duration> {
    let v = avps.get(name?)?;
    let secs = match v {
        crate::script::Value::Int(i) => *i,
        crate::script::Value::Str(s) => s.trim().parse().ok()?,
        crate::script::Value::Null => return None,
    };
    u64::try_from(secs).ok().map(Duration::from_secs)
}

/// The timers tm's modparams give (OpenSER 1.3 units).
pub fn timers(params: &ModParams) -> TmTimers {
    TmTimers {
        t1: millis(params, "T1_timer"),
        t2: millis(params, "T2_timer"),
        fr: secs(params, "fr_timer"),
        fr_inv: secs(params, "fr_inv_timer"),
        wt: secs(params, "wt_timer"),
        delete: secs(params, "delete_timer"),
        restart_fr_on_each_reply: params.int("tm", "restart_fr_on_each_reply") != 0,
    }
}

impl Tm {
    /// tm with the timers of `config`'s modparams, the `Server:` line of its
    /// replies, and acc when the config accounts.
    pub fn new(config: &Config) -> Tm {
        let params = &config.params;
        let mut table = TableConfig { timers: timers(params), ..TableConfig::default() };
        if let Some(max) = config.max_transactions {
            table.max_transactions = max.max(1);
        }
        Tm {
            table: Table::new(table),
            stats: config.mi.tm().clone(),
            local_uacs: Mutex::new(HashMap::new()),
            noisy_ctimer: params.int("tm", "noisy_ctimer") != 0,
            fr_avp: avp_param(params, "fr_timer_avp"),
            fr_inv_avp: avp_param(params, "fr_inv_timer_avp"),
            onreply_avps: params.int("tm", "onreply_avp_mode") != 0,
            server_header: config.server_header.line().to_string(),
            cells: ByTxn::default(),
            failures: Queue::default(),
            acc: super::acc::Acc::new(config),
            acc_records: Queue::default(),
            dialogs: Dialogs::new(),
            lookups: Queue::default(),
        }
    }

    /// Transactions in progress: the server transactions tm keeps a cell
    /// for (a transaction and its branches count once, as 1.3's
    /// `inuse_transactions` counts cells).
    pub fn in_use(&self) -> usize {
        self.cells.len()
    }

    /// The `onreply_route[N]` armed for the transaction of client transaction
    /// `client`, with the AVPs it sees: the transaction's with
    /// `onreply_avp_mode` 1, else none (OpenSER 1.3: the reply's own list).
    pub fn reply_route(&self, client: TxnId) -> Option<(RouteId, crate::script::Avps)> {
        let server = self.table.uplink(client)?;
        let cells = self.cells(server);
        let cell = cells.get(&server)?;
        let avps = if self.onreply_avps { cell.avps().clone() } else { Default::default() };
        Some((cell.reply_route?, avps))
    }

    /// The next failure route to run, if any.
    pub fn take_failure(&self) -> Option<FailureRun> {
        self.failures.take_first()
    }

    /// After a failure route: when it started no new branch and sent no final,
    /// the best reply goes upstream.
    pub fn after_failure(&self, now: Instant, server: TxnId) {
        let send = {
            let mut cells = self.cells(server);
            let Some(cell) = cells.get_mut(&server) else { return };
            if cell.final_sent || cell.branches.iter().any(|b| b.status == 0) {
                None
            } else {
                cell.final_sent = true;
                cell.best.clone()
            }
        };
        if let Some((status, bytes, local)) = send {
            self.send_best(now, server, status, bytes, local);
        }
    }

    /// The flags a failure route left on the request become the
    /// transaction's (as OpenSER copies them back after the route).
    pub fn set_flags(&self, server: TxnId, flags: u32) {
        if let Some(cell) = self.cells(server).get_mut(&server) {
            if let Some(state) = cell.state.relayed_mut() {
                state.flags = flags;
            }
            if let Some(acc) = cell.acc.as_mut() {
                acc.flags = flags;
            }
        }
    }

    /// Sends the best negative final upstream; a 503 becomes a 500 of our own
    /// (RFC 3261 §16.7 step 6, where OpenSER 1.3 relays the 503).
    fn send_best(&self, now: Instant, server: TxnId, status: u16, bytes: Bytes, local: bool) {
        if status == 503 {
            let made = {
                let cells = self.cells(server);
                let request = self.table.request(server);
                match (cells.get(&server), request) {
                    (Some(cell), Some(req)) => Some(proxy::stateless_reply(
                        &req,
                        500,
                        "Server Internal Error",
                        TAG_SEED,
                        &[&cell.reply_headers, &self.server_header],
                        &cell.src,
                        cell.force_rport,
                    )),
                    _ => None,
                }
            };
            if let Some(b) = made {
                return self.send_upstream_as(now, server, b, true, None);
            }
        }
        self.send_upstream_as(now, server, bytes, local, None);
    }

    /// The cells of `server`'s shard (see [`ByTxn`]).
    fn cells(&self, server: TxnId) -> std::sync::MutexGuard<'_, HashMap<TxnId, Box<Cell>, IdHash>> {
        self.cells.lock(server)
    }

    /// What the table queued, as messages to send (and acc's lines logged).
    pub fn drain(&self, out: &mut Vec<Send>) {
        if let Some(acc) = &self.acc {
            let records = self.acc_records.take_all();
            for r in records {
                acc.emit(r);
            }
        }
        self.table.drain_transmits_with(|t| {
            out.push(Send {
                bytes: t.bytes,
                target: Target::Addr { transport: t.dest.transport, addr: t.dest.addr },
                from: t.dest.local,
            })
        });
    }

    /// A received response the table matched (not `NoMatch`): relays what goes
    /// upstream. `edits`: the `onreply_route`s' (our Via's removal is added to
    /// them); `locals`: our sockets (to recognise and remove our Via).
    pub fn on_response(
        &self,
        now: Instant,
        outcome: ResponseOutcome,
        msg: &Message,
        edits: &mut Edits,
        locals: &[Local],
    ) {
        // Called once at most, whatever the outcome.
        let mut relayed = || -> Option<Bytes> {
            if let Err(why) = proxy::route_response(msg, locals, edits) {
                tracing::debug!(why, "tm: a reply cannot be relayed");
                return None;
            }
            match msg.write(edits) {
                Ok(b) => Some(b.freeze()),
                Err(e) => {
                    tracing::error!(error = %e, "tm: a reply's edits conflict");
                    None
                }
            }
        };
        if let Some(id) = outcome.id() {
            self.stats.received_replies.inc();
            if self.answer_local_uac(id, &outcome, msg) {
                return;
            }
            // An absorbed reply is a duplicate, or a late one to a branch
            // that already ended: it marks nothing.
            if !matches!(outcome, ResponseOutcome::Absorbed { .. }) {
                self.mark_replied(id);
            }
        }
        match outcome {
            ResponseOutcome::NoMatch | ResponseOutcome::Absorbed { .. } => {}
            ResponseOutcome::Provisional { id, status, .. } => {
                let Some(server) = self.table.uplink(id) else { return };
                self.cancel_if_pending(now, server, id);
                if status == 100 {
                    return;
                }
                if let Some(bytes) = relayed() {
                    self.send_upstream_as(now, server, bytes, false, Some(id));
                }
            }
            ResponseOutcome::Final { id, status } => {
                let Some(bytes) = relayed() else { return };
                self.branch_final(now, id, status, bytes, false);
            }
            ResponseOutcome::Extra2xx { id } => {
                // A 2xx retransmission or another fork's 2xx: end to end, by
                // the Via (the server transaction is Accepted and passes it).
                let server = self.table.uplink(id);
                if let (Some(server), Some(bytes)) = (server, relayed()) {
                    self.send_upstream_as(now, server, bytes, false, Some(id));
                }
            }
        }
    }

    /// Client transaction `client` received a reply.
    fn mark_replied(&self, client: TxnId) {
        let Some(server) = self.table.uplink(client) else { return };
        if let Some(b) =
            self.cells(server).get_mut(&server).and_then(|c| c.branches.iter_mut().find(|b| b.client == client))
        {
            b.got_reply = true;
        }
    }

    /// Cancels the pending branches of the INVITE server transaction `invite`
    /// (RFC 3261 §16.10): at once those that had a provisional response, the
    /// others when they get one (§9.1: no CANCEL before a provisional).
    fn cancel_branches(&self, now: Instant, invite: TxnId) {
        self.cancel_pending(now, invite, true);
    }

    /// CANCELs the branches of `invite` without a final (see
    /// [`Tm::cancel_branches`]); `by_request`: a CANCEL asked for it (what
    /// `t_was_cancelled` tells), rather than a 2xx on another branch.
    fn cancel_pending(&self, now: Instant, invite: TxnId, by_request: bool) {
        let ready: Vec<TxnId> = {
            let mut cells = self.cells(invite);
            let Some(cell) = cells.get_mut(&invite) else { return };
            if by_request {
                cell.cancelled = true;
            }
            let mut ready = Vec::new();
            for b in cell.branches.iter_mut().filter(|b| b.status == 0 && b.cancel == Cancel::No) {
                if self.table.state(b.client) == Some(crate::tm::State::Proceeding) {
                    b.cancel = Cancel::Sent;
                    ready.push(b.client);
                } else {
                    b.cancel = Cancel::Pending;
                }
            }
            ready
        };
        for client in ready {
            self.send_cancel(now, client);
        }
    }

    /// A branch waiting to be cancelled got a provisional: cancel it now.
    fn cancel_if_pending(&self, now: Instant, server: TxnId, client: TxnId) {
        let due = {
            let mut cells = self.cells(server);
            let branch = cells.get_mut(&server).and_then(|c| c.branches.iter_mut().find(|b| b.client == client));
            match branch {
                Some(b) if b.cancel == Cancel::Pending => {
                    b.cancel = Cancel::Sent;
                    true
                }
                _ => false,
            }
        };
        if due {
            self.send_cancel(now, client);
        }
    }

    /// Starts the CANCEL of a client INVITE transaction, a client transaction
    /// of its own (its 200 stays here: no server transaction is linked).
    fn send_cancel(&self, now: Instant, client: TxnId) {
        let (Some(bytes), Some(dest)) = (self.table.build_cancel(client), self.table.dest(client)) else { return };
        if let Err(e) = self.table.start_client(now, bytes, dest, &ClientConfig::default()) {
            tracing::error!(error = %e, "tm: a CANCEL was not sent");
        }
    }

    /// Sends a reply upstream through the server transaction; acc sees it
    /// (`local`: tm made it; `branch`: the client transaction it came from).
    fn send_upstream_as(&self, now: Instant, server: TxnId, bytes: Bytes, local: bool, branch: Option<TxnId>) {
        let (replicate, accounted) = match self.cells(server).get_mut(&server) {
            Some(cell) => {
                cell.last_local = local;
                (cell.replicate, cell.acc.is_some())
            }
            None => (false, false),
        };
        if replicate {
            // t_replicate: nothing goes upstream; a final ends the transaction.
            let provisional = bytes.get(8) == Some(&b'1');
            if !provisional {
                if let Some(event) = self.table.terminate(now, server) {
                    self.on_event(now, event);
                }
            }
            return;
        }
        self.acc_reply_out(server, &bytes, local, branch);
        let code = reply_code(&bytes);
        match self.send_response(now, server, bytes, accounted) {
            Ok(()) => self.count_reply(code, local),
            Err(e) => tracing::debug!(error = %e, %server, "tm: a reply was not sent upstream"),
        }
    }

    /// Sends a response on the server transaction. An accounted one keeps
    /// its request after a 2xx while acc records (a line its level lets
    /// through, or a row): acc reads it for each 2xx of another To tag. One
    /// answered while acc records nothing keeps only its key, as it would
    /// unaccounted: its first 2xx was not recorded, nor will the others be.
    fn send_response(
        &self,
        now: Instant,
        server: TxnId,
        bytes: Bytes,
        accounted: bool,
    ) -> Result<(), crate::tm::SendError> {
        let is_final = reply_code(&bytes) >= 200;
        let sent = if accounted && self.acc.as_ref().is_some_and(|acc| acc.records()) {
            self.table.send_response_keeping_request(now, server, bytes)
        } else {
            self.table.send_response(now, server, bytes)
        };
        // Once a final went upstream no failure route can run: the request
        // state it would start from (the edits, $du, Path, rr's state) is not
        // kept for the transaction's remaining 32 s, only what acc and the
        // reply routes read.
        if sent.is_ok() && is_final {
            if let Some(cell) = self.cells(server).get_mut(&server) {
                cell.state.answered();
            }
        }
        sent
    }

    /// A reply sent upstream, as 1.3's `stats_trans_rpl` counts it: relayed
    /// or local, and a final one completes the transaction with its class.
    fn count_reply(&self, code: u16, local: bool) {
        if local { &self.stats.local_replies } else { &self.stats.relayed_replies }.inc();
        if code >= 200 {
            self.stats.completed(code);
        }
    }

    /// acc's view of a reply going upstream (1.3's `TMCB_RESPONSE_OUT`).
    fn acc_reply_out(&self, server: TxnId, bytes: &Bytes, local: bool, branch: Option<TxnId>) {
        let Some(acc) = self.acc.as_ref().filter(|a| a.records()) else { return };
        if self.cells(server).get(&server).is_none_or(|c| c.acc.is_none()) {
            return;
        }
        let Some(request) = self.table.request(server) else { return };
        let Ok(reply) = Message::parse_with(bytes.clone(), crate::sip::Framing::Datagram, Interest::NONE) else {
            return;
        };
        let fields = super::acc::ReplyFields::of(&reply, &request, local);
        let records = {
            let mut cells = self.cells(server);
            let Some(cell) = cells.get_mut(&server) else { return };
            let base = AccBase::of(cell, branch, request, &fields);
            let invite = cell.invite;
            let Some(txn) = cell.acc.as_mut() else { return };
            let records = acc.on_reply_out(txn, invite, &fields, |text, flags| base.record(text, flags));
            // report_ack: the ACK of an accounted 2xx is found by its
            // Call-ID, CSeq and From tag (it has a branch of its own); the
            // key is kept from the first 2xx accounted, not for every INVITE.
            if invite && cell.ack_hash.is_none() && txn.answered_any() && acc.reports_acks() {
                cell.ack_hash = Some(self.dialogs.insert(&base.msg, server));
            }
            records
        };
        self.acc_records.extend(records);
    }

    /// A branch got its final response (received, or the local 408): a 2xx
    /// goes upstream at once; a negative one is kept, and once every branch is
    /// final the best goes upstream.
    fn branch_final(&self, now: Instant, client: TxnId, status: u16, bytes: Bytes, local: bool) {
        let Some(server) = self.table.uplink(client) else { return };
        let mut failure = None;
        let send = {
            let mut cells = self.cells(server);
            let Some(cell) = cells.get_mut(&server) else { return };
            if let Some(b) = cell.branches.iter_mut().find(|b| b.client == client) {
                b.status = status;
            }
            if (200..300).contains(&status) {
                cell.final_sent = true;
                Some((status, bytes, local, true))
            } else if cell.final_sent {
                None
            } else {
                let better = match &cell.best {
                    None => true,
                    Some((best, _, _)) => better_negative(status, *best),
                };
                if better {
                    cell.best = Some((status, bytes, local));
                    cell.best_client = Some(client);
                }
                if !cell.branches.iter().all(|b| b.status >= 200) {
                    None
                } else if let (Some(route), Some(state)) = (cell.failure_route, cell.state.relayed().cloned()) {
                    // t_on_failure armed: the failure route decides (one
                    // shot: it re-arms with t_on_failure if it relays again).
                    cell.failure_route = None;
                    let status = cell.best.as_ref().map_or(status, |(s, _, _)| *s);
                    failure = Some(FailureRun { server, route, status, state });
                    None
                } else {
                    cell.final_sent = true;
                    cell.best.clone().map(|(s, b, l)| (s, b, l, false))
                }
            }
        };
        if let Some(mut run) = failure {
            // acc: the missed call is logged before the failure route runs,
            // which starts with log_missed_flag cleared.
            if let Some(acc) = &self.acc {
                if let Some(flags) = self.acc_on_failure(acc, server) {
                    run.state.flags = flags;
                }
            }
            self.failures.extend([run]);
        }
        match send {
            Some((_, bytes, local, true)) => self.send_upstream_as(now, server, bytes, local, Some(client)),
            Some((status, bytes, local, false)) => self.send_best(now, server, status, bytes, local),
            None => {}
        }
        // RFC 3261 §16.7 step 10: a 2xx ends the other branches of an INVITE.
        if (200..300).contains(&status) {
            self.cancel_pending(now, server, false);
        }
    }

    /// acc at a failure (1.3's `TMCB_ON_FAILURE`): the missed call with the
    /// best reply; the flags the failure route starts with.
    fn acc_on_failure(&self, acc: &super::acc::Acc, server: TxnId) -> Option<u32> {
        let request = self.table.request(server)?;
        let mut cells = self.cells(server);
        let cell = cells.get_mut(&server)?;
        cell.acc.as_ref()?;
        let (bytes, local) = cell.best.as_ref().map(|(_, b, l)| (b.clone(), *l))?;
        let reply = Message::parse_with(bytes, crate::sip::Framing::Datagram, Interest::NONE).ok()?;
        let fields = super::acc::ReplyFields::of(&reply, &request, local);
        let base = AccBase::of(cell, None, request, &fields);
        let invite = cell.invite;
        let txn = cell.acc.as_mut()?;
        let record = acc.on_failure(txn, invite, |text, flags| base.record(text, flags));
        if record.is_some() {
            if let Some(state) = cell.state.relayed_mut() {
                state.flags = acc.clear_missed(state.flags);
            }
        }
        let state_flags = cell.state.relayed().map_or(txn.flags, |s| s.flags);
        drop(cells);
        self.acc_records.extend(record);
        Some(state_flags)
    }

    /// The ACK of a 2xx of transaction `server` (1.3's `TMCB_E2EACK_IN`):
    /// with `report_ack`, logged with the ACK's own tags and the transaction's
    /// status.
    fn acc_ack(&self, acc: &super::acc::Acc, ctx: &Ctx, server: TxnId) {
        let record = {
            let cells = self.cells(server);
            let Some(cell) = cells.get(&server) else { return };
            let to_tag = ctx.msg.to_tag.map_or("", |t| ctx.msg.text(t));
            let Some(txn) = cell.acc.as_ref().filter(|t| acc.on_ack(t) != (false, false) && t.answered(to_tag)) else {
                return;
            };
            let (log, db) = acc.on_ack(txn);
            let code = self.table.status(server).unwrap_or(200);
            super::acc::Record {
                text: super::acc::ACKED,
                msg: ctx.msg.clone(),
                src: ctx.src,
                ruri: None,
                avps: cell.avps().clone(),
                flags: txn.flags,
                code: code.to_string(),
                reason: if code == 200 { "OK".to_string() } else { String::new() },
                to_tag: ctx.msg.to_tag.map_or("", |t| ctx.msg.text(t)).to_string(),
                upstream: false,
                log,
                db,
            }
        };
        self.acc_records.extend([record]);
    }

    /// The branches to host names `t_relay` started since the last call: the
    /// pipeline resolves each (from the resolver's cache at once, else in a
    /// task) and hands the answer to [`Tm::resolved`].
    pub fn take_lookups(&self) -> Vec<Lookup> {
        self.lookups.take_all()
    }

    /// The resolver's answer for a branch: it is sent to the first hop on its
    /// Via's transport; without one, the branch ends with tm's own `478
    /// Unresolvable destination` (OpenSER's reply for an address it cannot
    /// resolve), a negative final like any other (failure routes run).
    pub fn resolved(&self, now: Instant, lookup: Lookup, hops: Result<Vec<crate::resolve::Hop>, String>) {
        let hop = match &hops {
            Ok(hops) => hops.iter().find(|(t, _)| *t == lookup.transport).copied(),
            Err(_) => None,
        };
        match hop {
            Some((transport, addr)) => {
                let dest = Dest { transport, addr, local: Some(lookup.local) };
                if !self.table.send_client(now, lookup.client, dest) {
                    tracing::debug!(client = %lookup.client, "tm: a resolved branch had ended meanwhile");
                }
            }
            None => {
                let why = hops.err().unwrap_or_else(|| format!("no {:?} hop", lookup.transport));
                tracing::warn!(target = ?lookup.target, why, "tm: a branch's destination cannot be resolved: 478");
                let Some(server) = self.table.uplink(lookup.client) else { return };
                let reply = {
                    let cells = self.cells(server);
                    let (Some(cell), Some(req)) = (cells.get(&server), self.table.request(server)) else { return };
                    proxy::stateless_reply(
                        &req,
                        478,
                        "Unresolvable destination",
                        TAG_SEED,
                        &[&cell.reply_headers, &self.server_header],
                        &cell.src,
                        cell.force_rport,
                    )
                };
                self.branch_final(now, lookup.client, 478, reply, true);
                if let Some(event) = self.table.terminate(now, lookup.client) {
                    self.on_event(now, event);
                }
            }
        }
    }

    /// A timer event of the table (the pipeline's timer task calls this).
    pub fn on_event(&self, now: Instant, event: Event) {
        match event {
            Event::ClientTimeout { id, provisional } => self.client_timeout(now, id, provisional),
            Event::AckTimeout(_) => {}
            Event::Terminated(id) => {
                // A server transaction's cell goes (a client one's link to
                // its server transaction goes with it, in the table).
                if let Some(hash) = self.cells(id).remove(&id).and_then(|cell| cell.ack_hash) {
                    self.dialogs.remove(hash, id);
                }
            }
        }
    }

    fn client_timeout(&self, now: Instant, client: TxnId, provisional: bool) {
        if let Some(uac) = self.local_uacs().remove(&client) {
            let _ = uac.reply.send(UacReply::Local(408, "Request Timeout"));
            return;
        }
        let Some(server) = self.table.uplink(client) else { return };
        let reply = {
            let cells = self.cells(server);
            let Some(cell) = cells.get(&server) else { return };
            let silent = cell.invite
                && provisional
                && !self.noisy_ctimer
                && cell.acc.is_none()
                && cell.failure_route.is_none()
                && cell.branches.len() == 1;
            if silent {
                None
            } else {
                let request = self.table.request(server);
                request.map(|req| {
                    proxy::stateless_reply(
                        &req,
                        408,
                        "Request Timeout",
                        TAG_SEED,
                        &[&cell.reply_headers, &self.server_header],
                        &cell.src,
                        cell.force_rport,
                    )
                })
            }
        };
        match reply {
            Some(bytes) => self.branch_final(now, client, 408, bytes, true),
            None => {
                // noisy_ctimer 0: the transaction ends, nothing goes upstream.
                tracing::debug!(%server, "tm: INVITE timed out after a provisional: dropped silently");
                if let Some(cell) = self.cells(server).get_mut(&server) {
                    cell.final_sent = true;
                }
                let _ = self.table.terminate(now, server);
            }
        }
    }
}

/// RFC 3261 §16.7 step 6 (as OpenSER 1.3 picks): a 6xx beats everything, else
/// the lower code wins.
fn better_negative(new: u16, best: u16) -> bool {
    match (new >= 600, best >= 600) {
        (true, false) => true,
        (false, true) => false,
        _ => new < best,
    }
}

/// The table's answer for the request of `ctx`, asked once per message.
fn lookup(ctx: &mut Ctx, tm: &Tm) -> RequestOutcome {
    if let Some(o) = ctx.tm.lookup {
        return o;
    }
    let (o, hash) = tm.table.handle_request_keyed(ctx.tm.now, ctx.msg);
    ctx.tm.lookup = Some(o);
    ctx.tm.key_hash = hash;
    if let Some(acc) = &tm.acc {
        match o {
            RequestOutcome::Ack2xx { id } => tm.acc_ack(acc, ctx, id),
            RequestOutcome::NoMatch if ctx.msg.method() == Some(Method::Ack) => {
                if let Some(id) = tm.dialogs.find(ctx.msg) {
                    tm.acc_ack(acc, ctx, id);
                }
            }
            _ => {}
        }
    }
    o
}

/// What acc's records of a transaction share: the request, where it came
/// from, its state (AVPs, flags), the reply's fields.
struct AccBase {
    msg: Message,
    src: Source,
    ruri: Option<String>,
    avps: crate::script::Avps,
    code: String,
    reason: String,
    to_tag: String,
    upstream: bool,
}

impl AccBase {
    /// `branch`: the client transaction the reply came from (its Request-URI
    /// is `$ru`), else the last branch's (1.3 sets the winning, or for a
    /// missed call the last, branch's URI).
    fn of(cell: &Cell, branch: Option<TxnId>, msg: Message, fields: &super::acc::ReplyFields) -> AccBase {
        let uri = match branch {
            Some(id) => cell.branches.iter().find(|b| b.client == id),
            None => cell.branches.last(),
        }
        .map(|b| b.uri.clone());
        AccBase {
            msg,
            src: cell.src,
            ruri: uri.or_else(|| cell.ruri().cloned()),
            avps: cell.avps().clone(),
            code: fields.code.to_string(),
            reason: fields.reason.clone(),
            to_tag: fields.to_tag.clone(),
            upstream: cell.acc.as_ref().is_some_and(|a| a.upstream),
        }
    }

    fn record(&self, text: &'static str, flags: u32) -> super::acc::Record {
        super::acc::Record {
            text,
            msg: self.msg.clone(),
            src: self.src,
            ruri: self.ruri.clone(),
            avps: self.avps.clone(),
            flags,
            code: self.code.clone(),
            reason: self.reason.clone(),
            to_tag: self.to_tag.clone(),
            upstream: self.upstream,
            // acc decides (log and database flags).
            log: true,
            db: false,
        }
    }
}

/// Where the replies of `ctx`'s request go, as a table destination.
fn reply_dest(ctx: &Ctx) -> Option<Dest> {
    match proxy::reply_target(ctx.msg, &ctx.src, ctx.force_rport) {
        Ok(Target::Addr { transport, addr }) => Some(Dest { transport, addr, local: Some(ctx.src.local) }),
        Ok(Target::Name { .. }) => None,
        Err(why) => {
            tracing::error!(why, "tm: nowhere to send replies");
            None
        }
    }
}

/// What creating the server transaction gave.
enum NewTran {
    /// Created now (or by an earlier call in this message).
    Created(TxnId),
    /// A retransmission (the last reply was resent), an ACK absorbed, or an
    /// error already answered: the function returns 0.
    Stop,
    /// An ACK to pass on statelessly (no transaction of its own).
    Ack,
    /// The function returns this code.
    Fail(i32),
}

/// tm's `t_newtran` logic.
fn new_tran(ctx: &mut Ctx, tm: &Tm) -> NewTran {
    if let Some(id) = ctx.tm.server {
        return NewTran::Created(id);
    }
    if !ctx.msg.is_request() {
        return NewTran::Fail(-1);
    }
    match lookup(ctx, tm) {
        RequestOutcome::Retransmission { .. } | RequestOutcome::AckAbsorbed { .. } => return NewTran::Stop,
        RequestOutcome::Ack2xx { .. } => return NewTran::Ack,
        RequestOutcome::NoMatch if ctx.msg.method() == Some(Method::Ack) => return NewTran::Ack,
        RequestOutcome::NoMatch => {}
    }
    let Some(dest) = reply_dest(ctx) else { return NewTran::Fail(-8) };
    match tm.table.create_server_hashed(ctx.msg, dest, ctx.tm.key_hash) {
        Ok(id) => {
            tm.stats.uas_transactions.inc();
            let acc = tm.acc.as_ref().and_then(|acc| acc.interested(ctx));
            let reply_headers = ctx.reply_headers.clone();
            tm.cells(id).insert(
                id,
                Box::new(Cell {
                    invite: ctx.msg.method() == Some(Method::Invite),
                    src: ctx.src,
                    force_rport: ctx.force_rport,
                    reply_headers,
                    branches: Vec::new(),
                    best: None,
                    final_sent: false,
                    cancelled: false,
                    best_client: None,
                    first_branch: 0,
                    last_local: false,
                    state: Kept::default(),
                    reply_route: ctx.tm.reply_route,
                    failure_route: ctx.tm.failure_route,
                    acc,
                    ack_hash: None,
                    replicate: false,
                }),
            );
            ctx.tm.server = Some(id);
            NewTran::Created(id)
        }
        Err(CreateError::Exists(id)) => {
            // Another worker created it since the lookup: a retransmission.
            tracing::debug!(%id, "tm: the transaction exists already");
            NewTran::Stop
        }
        Err(CreateError::Full) => {
            tracing::warn!("tm: the transaction table is full: 503");
            super::sl::reply(ctx, 503, "Service Unavailable");
            NewTran::Stop
        }
        Err(e) => {
            tracing::error!(error = %e, "tm: no transaction");
            NewTran::Fail(-1)
        }
    }
}

/// A reply made by tm for the transaction's request, through the server
/// transaction (the To-tag added as sl adds it, from tm's own seed).
fn local_reply(ctx: &Ctx, tm: &Tm, server: TxnId, code: u16, reason: &str) -> i32 {
    let extra = [ctx.reply_headers.as_str(), tm.server_header.as_str()];
    let bytes = proxy::stateless_reply(ctx.msg, code, reason, TAG_SEED, &extra, &ctx.src, ctx.force_rport);
    let accounted = match tm.cells(server).get_mut(&server) {
        Some(cell) => {
            cell.last_local = true;
            cell.final_sent |= code >= 200;
            cell.acc.is_some()
        }
        None => false,
    };
    if code >= 200 {
        // acc sees tm's own finals (1.3: TMCB_RESPONSE_OUT of _reply_light).
        tm.acc_reply_out(server, &bytes, true, None);
    }
    match tm.send_response(ctx.tm.now, server, bytes, accounted) {
        Ok(()) => {
            tm.count_reply(code, true);
            1
        }
        Err(e) => {
            tracing::error!(error = %e, code, "tm: the reply was not sent");
            -1
        }
    }
}

/// The status code of a reply's bytes (`SIP/2.0 NNN …`); 0 when unreadable.
fn reply_code(bytes: &[u8]) -> u16 {
    match bytes.get(8..11) {
        Some(&[a, b, c]) if [a, b, c].iter().all(u8::is_ascii_digit) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => 0,
    }
}

/// Where a branch goes: `$du`, else the Request-URI (the socket of
/// `t_relay("…")` when given); none when the Request-URI it would carry is
/// malformed ([`super::core::check_new_request_uri`]).
fn destination(ctx: &Ctx, to: Option<&SocketSpec>) -> Result<Target, &'static str> {
    match to {
        Some(spec) => {
            let transport = spec.transport.unwrap_or(proxy::Transport::Udp);
            Ok(match spec.ip() {
                Some(ip) => {
                    Target::Addr { transport, addr: SocketAddr::new(ip, spec.port.unwrap_or(transport.default_port())) }
                }
                None => Target::Name { transport: spec.transport, host: spec.host.clone(), port: spec.port },
            })
        }
        None => {
            let uri = ctx.dst_uri.clone().unwrap_or_else(|| ctx.request_uri().to_string());
            proxy::next_hop(&uri)
        }
    }
    .and_then(|target| {
        let hop_is_ruri = to.is_none() && ctx.dst_uri.is_none();
        super::core::check_new_request_uri(ctx, hop_is_ruri).map(|()| target)
    })
}

/// A branch to a host name waiting for the resolver (the pipeline resolves
/// it, never on a worker: see [`Tm::take_lookups`]).
#[derive(Clone, Debug)]
pub struct Lookup {
    pub client: TxnId,
    pub target: Target,
    /// The transport of the Via the branch carries: the hop must use it.
    pub transport: proxy::Transport,
    pub local: SocketAddr,
    /// Seeds the SRV choice (RFC 2782), so the same request goes the same way.
    pub seed: u64,
}

/// Builds and starts one branch of `server` to `target`: the request as
/// `forward()` builds it, with a branch unique to the client transaction. A
/// host name: the client transaction waits (unsent) for the resolver.
fn start_branch(ctx: &mut Ctx, tm: &Tm, server: TxnId, target: Target) -> i32 {
    let Some(local) = super::core::sending_local(ctx, &target) else {
        tracing::error!("t_relay: no local socket");
        return -1;
    };
    let index = tm.cells(server).get(&server).map_or(0, |c| c.branches.len());
    let branch = proxy::stateless_branch(ctx.msg).with_index(index);
    let bytes = match super::core::outgoing_request(ctx, &local, &branch) {
        Ok(b) => b.freeze(),
        Err(e) => {
            tracing::error!(error = %e, "t_relay: the message edits conflict");
            return -1;
        }
    };
    // fr_timer_avp / fr_inv_timer_avp: the transaction's AVPs as t_relay
    // sees them (OpenSER reads fr_inv's when a provisional arrives; the
    // AVPs of a transaction change only in its routes).
    let timers = ClientConfig {
        fr: avp_timer(&ctx.avps, tm.fr_avp.as_ref()),
        fr_inv: avp_timer(&ctx.avps, tm.fr_inv_avp.as_ref()),
        uplink: Some(server),
    };
    // Its key, as it was written: the Via's branch above and the method of
    // the request relayed (t_relay forwards an ACK statelessly: no branch).
    let Some(method) = ctx.msg.method() else {
        tracing::error!("t_relay: not a request");
        return -1;
    };
    let built = |bytes| Built { bytes, method, method_text: ctx.msg.method_text(), branch: &branch };
    let started = match &target {
        Target::Addr { transport, addr } => {
            let dest = Dest { transport: *transport, addr: *addr, local: Some(local.addr) };
            tm.table.start_built(ctx.tm.now, built(bytes), dest, &timers)
        }
        Target::Name { .. } => {
            let unspecified = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
            let dest = Dest { transport: local.transport, addr: unspecified, local: Some(local.addr) };
            let seed = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                h.finish()
            };
            let started = tm.table.start_built_unsent(ctx.tm.now, built(bytes), dest, &timers);
            if let Ok(client) = started {
                tm.lookups.extend([Lookup {
                    client,
                    target: target.clone(),
                    transport: local.transport,
                    local: local.addr,
                    seed,
                }]);
            }
            started
        }
    };
    match started {
        Ok(client) => {
            if let Some(cell) = tm.cells(server).get_mut(&server) {
                // Room for one at first: most requests go one way (a vector
                // grows from nothing to four), and a cell lives up to 32 s.
                if cell.branches.capacity() == 0 {
                    cell.branches.reserve_exact(1);
                }
                cell.branches.push(BranchState {
                    client,
                    status: 0,
                    cancel: Cancel::No,
                    uri: ctx.request_uri().to_string(),
                    got_reply: false,
                });
            }
            1
        }
        Err(e) => {
            tracing::error!(error = %e, "t_relay: the branch was not started");
            -1
        }
    }
}

/// `t_relay`'s flags (OpenSER 1.3): no 100 Trying for an INVITE.
const RELAY_NO_TRYING: i64 = 0x1;
/// No error reply when no branch can be sent (the script decides).
const RELAY_NO_ERROR_REPLY: i64 = 0x2;

fn relay(ctx: &mut Ctx, to: Option<&SocketSpec>, flags: i64) -> i32 {
    if !matches!(ctx.route, crate::script::RouteKind::Request | crate::script::RouteKind::Failure) {
        tracing::error!("t_relay: only in request and failure routes");
        return -1;
    }
    let tm = ctx.config.tm.get_or_init(ctx.config).clone();
    let server = match new_tran(ctx, &tm) {
        NewTran::Created(id) => id,
        NewTran::Stop => return 0,
        NewTran::Fail(code) => return code,
        NewTran::Ack => {
            // An ACK is forwarded statelessly, as OpenSER's t_relay does.
            let rc = match to {
                Some(spec) => super::core::forward_1(ctx, spec),
                None => super::core::forward_0(ctx),
            };
            return if rc >= 0 { 1 } else { rc };
        }
    };
    // What a failure route will start from, and which one is armed (as
    // OpenSER's t_relay copies t_on_failure's choice into the transaction).
    if let Some(cell) = tm.cells(server).get_mut(&server) {
        cell.failure_route = ctx.tm.failure_route;
        cell.reply_route = ctx.tm.reply_route.or(cell.reply_route);
        cell.state = Kept::Relayed(Box::new(RequestState::capture(ctx)));
        // t_relay updates the transaction's flags (acc reads them).
        if let Some(acc) = cell.acc.as_mut() {
            acc.flags = ctx.flags;
        }
    }
    // A CANCEL of a pending INVITE (RFC 3261 §16.10): 200 to it here, a
    // CANCEL down each pending branch; their 487s end the INVITE.
    if ctx.msg.method() == Some(Method::Cancel) {
        if let Some(invite) = tm.table.find_cancelled(ctx.msg) {
            local_reply(ctx, &tm, server, 200, "canceling");
            tm.cancel_branches(ctx.tm.now, invite);
            return 1;
        }
    }
    // The branches, forked in parallel (RFC 3261 §16.6): the Request-URI
    // (with $du), then each appended one (append_branch, lookup's further
    // contacts), as OpenSER's t_relay forks them; with an explicit socket,
    // the Request-URI's alone. They are used up (a failure route starts anew).
    // Each runs the armed branch_route first (with its own Request-URI and
    // $du; its changes stay with that branch; `drop` there drops the branch).
    if let Some(cell) = tm.cells(server).get_mut(&server) {
        cell.first_branch = cell.branches.len();
    }
    let extra = if to.is_some() { Vec::new() } else { std::mem::take(&mut ctx.branches) };
    let candidates = std::iter::once(None).chain(extra.into_iter().map(Some));
    let (ruri, du, path) = (ctx.ruri.clone(), ctx.dst_uri.clone(), ctx.path.clone());
    let mut rc = None;
    for branch in candidates {
        if let Some(b) = branch {
            ctx.ruri = Some(b.uri);
            ctx.dst_uri = b.dst_uri;
            ctx.path = b.path;
        }
        let mark = ctx.edits.checkpoint();
        let dropped = match (ctx.tm.branch_route, ctx.script) {
            (Some(route), Some(script)) => {
                let back = ctx.route;
                ctx.route = crate::script::RouteKind::Branch;
                let flow = script.branch_route(route, ctx);
                ctx.route = back;
                flow == crate::script::Flow::Drop
            }
            _ => false,
        };
        if !dropped {
            match destination(ctx, to) {
                Ok(target) => {
                    // 100 Trying before the first branch goes (none when no branch can).
                    if ctx.msg.method() == Some(Method::Invite)
                        && flags & RELAY_NO_TRYING == 0
                        && tm.table.status(server) == Some(0)
                    {
                        local_reply(ctx, &tm, server, 100, "Giving a try");
                    }
                    rc = Some(rc.unwrap_or(-1).max(start_branch(ctx, &tm, server, target)));
                }
                Err(why) => tracing::warn!(why, uri = ctx.request_uri(), "t_relay: a branch has no destination"),
            }
        }
        ctx.edits.rollback(mark);
        ctx.ruri.clone_from(&ruri);
        ctx.dst_uri.clone_from(&du);
        ctx.path.clone_from(&path);
    }
    match rc {
        Some(rc) => rc,
        None if flags & RELAY_NO_ERROR_REPLY != 0 => {
            tracing::warn!("t_relay: no branch can be sent (flag 0x2: no reply)");
            -4
        }
        None => {
            tracing::warn!("t_relay: no branch can be sent: 478");
            local_reply(ctx, &tm, server, 478, "Unresolvable destination");
            0
        }
    }
}

/// `t_relay()`: statefully to `$du` or the Request-URI.
pub fn t_relay_0(ctx: &mut Ctx) -> i32 {
    relay(ctx, None, 0)
}

/// `t_relay("proto:ip:port")`: statefully to that socket; a bare number
/// (`t_relay("0x01")`) is the flags instead, as OpenSER 1.3's fixup reads it.
pub fn t_relay_1(ctx: &mut Ctx, to: &SocketSpec) -> i32 {
    match flags_only(to) {
        Some(flags) => relay(ctx, None, flags),
        None => relay(ctx, Some(to), 0),
    }
}

/// `t_relay("proto:ip:port", flags)`: 0x1 no 100 Trying, 0x2 no error reply
/// when no branch can be sent, 0x4 no DNS fail-over (serc tries one address
/// per branch, so it changes nothing).
pub fn t_relay_2(ctx: &mut Ctx, to: &SocketSpec, flags: i64) -> i32 {
    relay(ctx, Some(to), flags)
}

/// A socket argument that is a number (decimal or `0x` hex): flags.
fn flags_only(spec: &SocketSpec) -> Option<i64> {
    if spec.transport.is_some() || spec.port.is_some() {
        return None;
    }
    let h = spec.host.as_str();
    match h.strip_prefix("0x").or_else(|| h.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => h.parse().ok(),
    }
}

/// `t_newtran()`: creates the transaction (1); a retransmission gets the last
/// reply again (0); -10 when this message made it already; -8 when the top
/// Via gives nowhere to reply to. An ACK is left alone (1), or absorbed (0)
/// when it acknowledges a negative final of ours.
pub fn t_newtran(ctx: &mut Ctx) -> i32 {
    if ctx.tm.server.is_some() {
        tracing::error!("t_newtran: the transaction exists already");
        return -10;
    }
    let tm = ctx.config.tm.get_or_init(ctx.config).clone();
    match new_tran(ctx, &tm) {
        NewTran::Created(_) | NewTran::Ack => 1,
        NewTran::Stop => 0,
        NewTran::Fail(code) => code,
    }
}

/// `t_reply(code, reason)`: replies through the request's transaction
/// (made by `t_newtran` or `t_relay`); -1 without one.
pub fn t_reply(ctx: &mut Ctx, code: &ReplyCode, reason: &Format) -> i32 {
    let Some(code) = code.eval(ctx) else {
        tracing::error!("t_reply: the code is not a SIP reply code");
        return -1;
    };
    let reason = reason.eval(ctx);
    let tm = ctx.config.tm.get_or_init(ctx.config).clone();
    let Some(server) = ctx.tm.server else {
        tracing::error!("t_reply: no transaction for this request (t_newtran first)");
        return -1;
    };
    local_reply(ctx, &tm, server, code, &reason)
}

/// `t_check_trans()`: a CANCEL → 1 when the INVITE it cancels exists, else -1;
/// an ACK → 1 for the end-to-end ACK of a 2xx of ours, 0 (absorbed) for the
/// ACK of a negative final; another request → 0 for a retransmission (the last
/// reply resent; the script stops), 1 when this message made its transaction,
/// -1 when it has none.
pub fn t_check_trans(ctx: &mut Ctx) -> i32 {
    let tm = ctx.config.tm.get_or_init(ctx.config).clone();
    if ctx.msg.method() == Some(Method::Cancel) {
        return if tm.table.find_cancelled(ctx.msg).is_some() { 1 } else { -1 };
    }
    if ctx.tm.server.is_some() {
        return 1;
    }
    match lookup(ctx, &tm) {
        RequestOutcome::NoMatch => -1,
        RequestOutcome::Retransmission { .. } | RequestOutcome::AckAbsorbed { .. } => 0,
        RequestOutcome::Ack2xx { .. } => 1,
    }
}

/// `t_on_failure("N")`: the failure_route the transaction this request makes
/// (or made) runs when all its branches end negatively; `"0"` disarms.
pub fn t_on_failure(ctx: &mut Ctx, route: RouteId) -> i32 {
    ctx.tm.failure_route = (route != 0).then_some(route);
    if let (Some(server), Some(tm)) = (ctx.tm.server, ctx.config.tm.get()) {
        if let Some(cell) = tm.cells(server).get_mut(&server) {
            cell.failure_route = ctx.tm.failure_route;
        }
    }
    1
}

/// `t_on_branch("N")`: `branch_route[N]` runs for each branch the next
/// `t_relay` sends; `"0"` disarms.
pub fn t_on_branch(ctx: &mut Ctx, route: RouteId) -> i32 {
    ctx.tm.branch_route = (route != 0).then_some(route);
    1
}

/// `t_on_reply("N")`: `onreply_route[N]` runs for the replies of the
/// transaction this request makes (or made); `"0"` disarms.
pub fn t_on_reply(ctx: &mut Ctx, route: RouteId) -> i32 {
    ctx.tm.reply_route = (route != 0).then_some(route);
    if let (Some(server), Some(tm)) = (ctx.tm.server, ctx.config.tm.get()) {
        if let Some(cell) = tm.cells(server).get_mut(&server) {
            cell.reply_route = ctx.tm.reply_route;
        }
    }
    1
}

/// `t_check_status("re")`: whether the status matches — in a failure route the
/// reply that ended the branches, in a reply route the reply, elsewhere the
/// last reply the transaction sent. 1 / -1.
pub fn t_check_status(ctx: &mut Ctx, re: &crate::script::args::Regex) -> i32 {
    let status = match ctx.route {
        crate::script::RouteKind::Failure => ctx.tm.failure_status,
        crate::script::RouteKind::OnReply => ctx.msg.status(),
        _ => ctx.tm.server.and_then(|s| ctx.config.tm.get().and_then(|tm| tm.table.status(s))).filter(|s| *s != 0),
    };
    match status {
        Some(code) if re.is_match(&code.to_string()) => 1,
        _ => -1,
    }
}

/// `t_was_cancelled()`: in a failure route, whether a CANCEL for the request
/// arrived. 1 / -1.
pub fn t_was_cancelled(ctx: &mut Ctx) -> i32 {
    let cancelled = ctx
        .tm
        .server
        .and_then(|s| ctx.config.tm.get().and_then(|tm| tm.cells(s).get(&s).map(|c| c.cancelled)))
        .unwrap_or(false);
    if cancelled {
        1
    } else {
        -1
    }
}

/// `t_release()`: ends the request's transaction now (it lingers
/// `delete_timer` to absorb retransmissions); -1 when it has none.
pub fn t_release(ctx: &mut Ctx) -> i32 {
    let tm = ctx.config.tm.get_or_init(ctx.config).clone();
    let Some(server) = ctx.tm.server else { return -1 };
    match tm.table.terminate(ctx.tm.now, server) {
        Some(_) => 1,
        None => -1,
    }
}

/// `t_flush_flags()`: the request's flags become the transaction's now (they
/// are otherwise taken at `t_relay`); -1 without a transaction.
pub fn t_flush_flags(ctx: &mut Ctx) -> i32 {
    let (Some(server), Some(tm)) = (ctx.tm.server, ctx.config.tm.get()) else {
        tracing::error!("t_flush_flags: no transaction for this request");
        return -1;
    };
    tm.set_flags(server, ctx.flags);
    1
}

/// `t_local_replied("all"|"branch"|"last")` (OpenSER 1.3): `all` — no
/// branch of the last `t_relay` received any reply; `branch` — in a failure
/// route, the branch whose reply won received none (its final was tm's 408);
/// `last` — in a failure route, the winning reply was tm's own, elsewhere the
/// last reply sent upstream was. 1 / -1 (also without a transaction).
pub fn t_local_replied(ctx: &mut Ctx, which: &str) -> i32 {
    let (Some(server), Some(tm)) = (ctx.tm.server, ctx.config.tm.get()) else {
        tracing::error!("t_local_replied: no transaction for this request");
        return -1;
    };
    let cells = tm.cells(server);
    let Some(cell) = cells.get(&server) else { return -1 };
    let failure = ctx.route == crate::script::RouteKind::Failure;
    let winner = || cell.best_client.and_then(|c| cell.branches.iter().find(|b| b.client == c));
    let yes = match which.to_ascii_lowercase().as_str() {
        "all" => cell.branches.iter().skip(cell.first_branch).all(|b| !b.got_reply),
        "branch" => failure && winner().is_some_and(|b| !b.got_reply),
        "last" if failure => cell.best.as_ref().is_some_and(|(_, _, local)| *local),
        "last" => cell.last_local,
        _ => {
            tracing::error!(which, "t_local_replied: expected \"all\", \"branch\" or \"last\"");
            false
        }
    };
    if yes {
        1
    } else {
        -1
    }
}

/// `t_replicate("uri")`: a copy of the request to `uri` (its Request-URI
/// unchanged, `uri` as the next hop), statefully, its replies kept from the
/// client (OpenSER 1.3 marks the transaction local): for replicating
/// REGISTERs to another registrar, the script answering the client itself
/// (`save`). 1 when the copy went (or waits for the resolver), 0 for a
/// retransmission (the script stops), < 0 on errors.
pub fn t_replicate_1(ctx: &mut Ctx, uri: &Format) -> i32 {
    replicate(ctx, uri)
}

/// `t_replicate("uri", flags)`: as `t_replicate("uri")`; the flags are
/// `t_relay`'s (0x1 no 100 Trying — none is sent for a copy anyway; 0x2 no
/// error reply — none is sent; 0x4 no DNS failover — serc sends to the
/// first hop only).
pub fn t_replicate_2(ctx: &mut Ctx, uri: &Format, _flags: i64) -> i32 {
    replicate(ctx, uri)
}

fn replicate(ctx: &mut Ctx, uri: &Format) -> i32 {
    if ctx.route != crate::script::RouteKind::Request {
        tracing::error!("t_replicate: only in request routes");
        return -1;
    }
    let dst = uri.eval(ctx);
    let target = match proxy::next_hop(&dst) {
        Ok(t) => t,
        Err(why) => {
            tracing::error!(why, uri = dst, "t_replicate: not a destination");
            return -4;
        }
    };
    let tm = ctx.config.tm.get_or_init(ctx.config).clone();
    let server = match new_tran(ctx, &tm) {
        NewTran::Created(id) => id,
        NewTran::Stop => return 0,
        NewTran::Fail(code) => return code,
        NewTran::Ack => {
            tracing::error!("t_replicate: an ACK has no transaction to replicate");
            return -1;
        }
    };
    if let Some(cell) = tm.cells(server).get_mut(&server) {
        cell.replicate = true;
        cell.failure_route = None;
        cell.reply_route = None;
        cell.first_branch = cell.branches.len();
        cell.state = Kept::Relayed(Box::new(RequestState::capture(ctx)));
    }
    start_branch(ctx, &tm, server, target)
}

// ------------------------------------------------------------------ MI

/// A request the proxy originated (`t_uac_dlg`), waiting for its final reply.
struct LocalUac {
    call_id: String,
    cseq: u32,
    reply: tokio::sync::oneshot::Sender<UacReply>,
}

/// How a local request ended: a final reply received, or one tm made (408).
enum UacReply {
    Received(Box<Message>),
    Local(u16, &'static str),
}

impl Tm {
    fn local_uacs(&self) -> std::sync::MutexGuard<'_, HashMap<TxnId, LocalUac>> {
        self.local_uacs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reply to a request the proxy originated: the final one goes to the
    /// MI command waiting for it; none goes upstream. False for the others.
    fn answer_local_uac(&self, id: TxnId, outcome: &ResponseOutcome, msg: &Message) -> bool {
        let mut uacs = self.local_uacs();
        if !uacs.contains_key(&id) {
            return false;
        }
        if let ResponseOutcome::Final { .. } = outcome {
            if let Some(uac) = uacs.remove(&id) {
                let _ = uac.reply.send(UacReply::Received(Box::new(msg.clone())));
            }
        }
        true
    }
}

/// A value unlikely to repeat (Call-IDs, tags, branches of local requests):
/// a counter through the process's randomly keyed hasher.
fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = KEYS.get_or_init(Default::default).build_hasher();
    h.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.finish()
}

/// `t_uac_dlg`'s headers argument: `Name: value` lines (CRLF or LF).
fn header_lines(text: &str) -> Vec<(String, String)> {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string())))
        .filter(|(n, _)| !n.is_empty())
        .collect()
}

/// The compact and full names of a header, compared as SIP compares them.
fn is_header(name: &str, full: &str, compact: Option<&str>) -> bool {
    name.eq_ignore_ascii_case(full) || compact.is_some_and(|c| name.eq_ignore_ascii_case(c))
}

/// `t_uac_dlg method RURI next_hop socket headers [body]`: builds the
/// request as 1.3's `mi_tm_uac_dlg` does (From/To required; a From tag, a
/// Call-ID and CSeq 1 added when missing; Content-Length computed), sends it
/// statefully, and answers with its final reply: `CODE REASON`, then the
/// dialog's remote target, next hop and route set (`.` when the reply
/// confirms no dialog), then the reply's header lines and body (`.` for a
/// reply tm made itself).
async fn t_uac_dlg(mi: &MiTm, args: Vec<String>) -> crate::mi::MiReply {
    use crate::mi::{MiNode, MiReply};
    let dot = |s: &String| (s.trim() != ".").then(|| s.trim().to_string());
    let method = args[0].trim().to_string();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)) {
        return MiReply::new(400, "Invalid method");
    }
    let ruri = args[1].trim().to_string();
    if crate::sip::uri::parse(&ruri).is_err() {
        return MiReply::new(400, "Invalid request URI");
    }
    let next_hop = dot(&args[2]);
    let socket = dot(&args[3]);
    let headers = header_lines(&args[4]);
    let body = args.get(5).and_then(dot).unwrap_or_default();
    let find = |full: &str, compact: Option<&str>| headers.iter().find(|(n, _)| is_header(n, full, compact));
    let Some((_, to)) = find("To", Some("t")) else { return MiReply::new(400, "To missing") };
    let Some((_, from)) = find("From", Some("f")) else { return MiReply::new(400, "From missing") };
    if !body.is_empty() && find("Content-Type", Some("c")).is_none() {
        return MiReply::new(400, "Content-Type missing");
    }
    if !body.is_empty() && find("Content-Length", Some("l")).is_some() {
        return MiReply::new(400, "Content-Length disallowed");
    }
    let cseq = match find("CSeq", None) {
        Some((_, v)) => {
            let mut words = v.split_whitespace();
            let Some(n) = words.next().and_then(|n| n.parse::<u32>().ok()) else {
                return MiReply::new(400, "Bad CSeq number");
            };
            if words.next() != Some(method.as_str()) {
                return MiReply::new(400, "CSeq method mismatch");
            }
            n
        }
        None => 1,
    };
    // Where to: the next hop, else the Request-URI; a name is resolved here
    // (the MI task may wait; a SIP worker never does).
    let hop = next_hop.clone().unwrap_or_else(|| ruri.clone());
    let target = match proxy::next_hop(&hop) {
        Ok(t) => t,
        Err(why) => return MiReply::new(400, format!("Bad next hop: {why}")),
    };
    let (transport, addr) = match target {
        Target::Addr { transport, addr } => (transport, addr),
        Target::Name { transport, host, port } => {
            let transport = transport.unwrap_or(proxy::Transport::Udp);
            let port = port.unwrap_or(transport.default_port());
            match tokio::net::lookup_host((host.as_str(), port)).await.map(|mut a| a.next()) {
                Ok(Some(addr)) => (transport, addr),
                _ => return MiReply::new(478, "Unresolvable destination"),
            }
        }
    };
    let local = match &socket {
        Some(text) => {
            let spec = SocketSpec::parse(text);
            let found = spec.and_then(|spec| {
                mi.locals.iter().find(|l| {
                    spec.ip() == Some(l.addr.ip())
                        && spec.port.is_none_or(|p| p == l.addr.port())
                        && spec.transport.is_none_or(|t| t == l.transport)
                })
            });
            match found {
                Some(l) => l.clone(),
                None => return MiReply::new(400, "Invalid socket"),
            }
        }
        None => match mi.locals.iter().find(|l| l.transport == transport && l.addr.is_ipv4() == addr.is_ipv4()) {
            Some(l) => l.clone(),
            None => return MiReply::new(500, "No local socket for the destination"),
        },
    };
    let (host, port) = local.advertised.clone().unwrap_or_else(|| (local.addr.ip().to_string(), local.addr.port()));
    let call_id = match find("Call-ID", Some("i")) {
        Some((_, v)) => v.clone(),
        None => format!("{:016x}@{host}", unique()),
    };
    let from = if from.to_ascii_lowercase().contains(";tag=") {
        from.clone()
    } else {
        format!("{from};tag={:016x}", unique())
    };
    let mut text = format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {host}:{port};branch=z9hG4bK{:016x}\r\n\
         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n",
        transport.name(),
        unique()
    );
    for (name, value) in &headers {
        let skip = is_header(name, "From", Some("f"))
            || is_header(name, "To", Some("t"))
            || is_header(name, "Call-ID", Some("i"))
            || is_header(name, "CSeq", None)
            || is_header(name, "Content-Length", Some("l"));
        if !skip {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));

    let tm = &mi.tm;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let dest = Dest { transport, addr, local: Some(local.addr) };
    // The entry is in place before the request can be answered (the lock is
    // held from before it is queued).
    let started = {
        let mut uacs = tm.local_uacs();
        let started = tm.table.start_client(Instant::now(), Bytes::from(text), dest, &ClientConfig::default());
        if let Ok(id) = started {
            uacs.insert(id, LocalUac { call_id, cseq, reply: tx });
        }
        started
    };
    if let Err(e) = started {
        tracing::error!(error = %e, "t_uac_dlg: the request was not sent");
        return MiReply::new(500, "Failed to send the request");
    }
    tm.stats.uac_transactions.inc();
    mi.wake.notify_one();
    match rx.await {
        Ok(UacReply::Local(code, reason)) => MiReply::ok()
            .node(MiNode::value(format!("{code} {reason}")))
            .node(MiNode::value("."))
            .node(MiNode::value("."))
            .node(MiNode::value("."))
            .node(MiNode::value(".")),
        Ok(UacReply::Received(reply)) => {
            let mut out = MiReply::ok();
            let (code, reason) = match reply.start {
                crate::sip::StartLine::Response { code, reason, .. } => (code, reply.text(reason).to_string()),
                crate::sip::StartLine::Request { .. } => (0, String::new()),
            };
            out.push(MiNode::value(format!("{code} {reason}")));
            for line in dialog_lines(&reply, code, &method) {
                out.push(MiNode::value(line));
            }
            let bytes = reply.bytes();
            let start = reply.headers.first().map_or(bytes.len(), |h| h.line.start as usize);
            out.push(MiNode::value(String::from_utf8_lossy(&bytes[start..]).into_owned()));
            out
        }
        Err(_) => MiReply::new(500, "The transaction ended without a reply"),
    }
}

/// The dialog a final reply to a local request confirms (a 2xx to an
/// INVITE): remote target (its Contact), next hop (the first route, or the
/// target) and route set (`Route: …` from its Record-Route, reversed), as
/// 1.3's `mi_print_uris`; `.` three times otherwise.
fn dialog_lines(reply: &Message, code: u16, method: &str) -> [String; 3] {
    let none = || [".".to_string(), ".".to_string(), ".".to_string()];
    if !(200..300).contains(&code) || method != "INVITE" {
        return none();
    }
    let buf = reply.bytes();
    let uri_of = |span| crate::sip::values::NameAddr::parse(buf, span).ok().map(|na| reply.text(na.uri).to_string());
    let Some(target) = reply.values(crate::sip::HeaderName::Contact).next().and_then(uri_of) else { return none() };
    let mut routes: Vec<String> =
        reply.values(crate::sip::HeaderName::RecordRoute).map(|v| reply.text(v).trim().to_string()).collect();
    routes.reverse();
    let next_hop = routes
        .first()
        .and_then(|r| r.find('<').and_then(|l| r[l + 1..].find('>').map(|e| r[l + 1..l + 1 + e].to_string())))
        .unwrap_or_else(|| target.clone());
    let route = if routes.is_empty() { ".".to_string() } else { format!("Route: {}", routes.join(", ")) };
    [target, next_hop, route]
}

/// `t_uac_cancel callid cseq`: cancels the INVITE transaction with that
/// Call-ID and CSeq number — one the proxy originated, or one it relays
/// (its pending branches) — as 1.3's `mi_tm_cancel`.
fn t_uac_cancel(mi: &MiTm, call_id: &str, cseq: &str) -> crate::mi::MiReply {
    use crate::mi::MiReply;
    let Ok(cseq) = cseq.trim().parse::<u32>() else { return MiReply::new(481, "No such transaction") };
    let tm = &mi.tm;
    let now = Instant::now();
    let local = tm.local_uacs().iter().find(|(_, u)| u.call_id == call_id && u.cseq == cseq).map(|(id, _)| *id);
    if let Some(client) = local {
        tm.send_cancel(now, client);
        mi.wake.notify_one();
        return MiReply::ok();
    }
    let servers = tm.cells.ids_where(|c| c.invite);
    let found = servers
        .into_iter()
        .find(|id| tm.table.request(*id).is_some_and(|r| r.text(r.call_id) == call_id && r.cseq == cseq));
    match found {
        Some(server) => {
            tm.cancel_branches(now, server);
            mi.wake.notify_one();
            MiReply::ok()
        }
        None => MiReply::new(481, "No such transaction"),
    }
}

/// What tm's MI commands hold: tm itself, the task that sends what its
/// table queues, and the proxy's sockets (not the `Config`, which holds the
/// registry holding the commands).
#[derive(Clone)]
struct MiTm {
    tm: Arc<Tm>,
    wake: Arc<tokio::sync::Notify>,
    locals: Arc<[Local]>,
}

/// Registers tm's MI commands on the config's registry, once the proxy's
/// sockets are known (`config.locals`; tm is built now): `t_uac_dlg`,
/// `t_uac_cancel`, `t_hash`; `t_reply` answers why it is not served (1.3's
/// names a transaction by the hash and label that only `t_write_fifo` and
/// `t_write_unix` handed out, to an external application; serc refuses those).
pub fn register_mi(config: &Config) {
    use crate::mi::{Arity, MiNode, MiReply};
    let mi = MiTm {
        tm: config.tm.get_or_init(config).clone(),
        wake: config.tm.wake().clone(),
        locals: config.locals.clone().into(),
    };
    let m = mi.clone();
    config.mi.register_async("t_uac_dlg", Arity::Between(5, 6), move |args| {
        let m = m.clone();
        async move { Some(t_uac_dlg(&m, args).await) }
    });
    let m = mi.clone();
    config.mi.register("t_uac_cancel", Arity::Exactly(2), move |args| t_uac_cancel(&m, &args[0], &args[1]));
    config.mi.register("t_reply", Arity::NoInput, |_| {
        MiReply::new(
            500,
            "t_reply is not served by serc: it names a transaction by the hash:label that only \
             t_write_fifo/t_write_unix hand out, and serc does not implement those",
        )
    });
    config.mi.register("t_hash", Arity::NoInput, move |_| {
        mi.tm.table.shard_counts().into_iter().enumerate().fold(MiReply::ok(), |r, (i, (current, total))| {
            r.node(MiNode::value(i.to_string()).attr("Current", current.to_string()).attr("Total", total.to_string()))
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Value;

    #[test]
    fn a_reply_code_is_the_three_digits_of_its_status_line() {
        assert_eq!(reply_code(b"SIP/2.0 200 OK\r\n"), 200);
        assert_eq!(reply_code(b"SIP/2.0 487 Request Terminated\r\n"), 487);
        assert_eq!(reply_code(b"SIP/2.0 100"), 100);
        for unreadable in [&b"SIP/2.0 20"[..], b"SIP/2.0 2x0 OK", b"SIP/2.0 +20 OK", b""] {
            assert_eq!(reply_code(unreadable), 0, "{}", String::from_utf8_lossy(unreadable));
        }
    }

    /// An ACK's key matches only the same three parts, however the two
    /// texts split (they are kept end to end).
    #[test]
    fn an_ack_key_keeps_its_parts_apart() {
        let key = AckKey::new(("a84b4c76e66710@pc33", 314159, "1928301774"));
        assert!(key.is(("a84b4c76e66710@pc33", 314159, "1928301774")));
        assert!(!key.is(("a84b4c76e66710@pc33", 314160, "1928301774")), "another CSeq");
        assert!(!key.is(("a84b4c76e66710@pc331", 314159, "928301774")), "the same text split elsewhere");
        assert!(!key.is(("a84b4c76e66710@pc33", 314159, "")), "no From tag");
        let untagged = AckKey::new(("c", 1, ""));
        assert!(untagged.is(("c", 1, "")));
        assert!(!untagged.is(("", 1, "c")));
    }

    #[test]
    fn timers_from_modparams_in_openser_units() {
        let mut p = ModParams::default();
        assert_eq!(timers(&p), TmTimers::default());
        p.set("tm", "fr_timer", Value::Int(2));
        p.set("tm", "T1_timer", Value::Int(100));
        let t = timers(&p);
        assert_eq!(
            (t.fr, t.t1, t.fr_inv),
            (Duration::from_secs(2), Duration::from_millis(100), Duration::from_secs(120))
        );
    }

    #[test]
    fn best_negative_reply() {
        assert!(better_negative(404, 486));
        assert!(!better_negative(486, 404));
        assert!(better_negative(603, 404));
        assert!(!better_negative(404, 600));
    }
}
