//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state): the core of
//! OpenSER's `tm`, sans-IO and deterministic.
//!
//! Nothing here reads a clock, opens a socket or spawns a task. In the style of
//! quinn-proto, the caller feeds what happens with the current time and takes
//! out what to send and when to wake up:
//!
//! ```text
//! received request  ──▶ Table::handle_request(now, &msg) ─▶ RequestOutcome
//!   NoMatch → run the script; t_newtran/t_relay → Table::create_server(&msg, reply_to)
//!   a CANCEL → Table::find_cancelled(&cancel) → the INVITE server transaction
//! script's reply     ──▶ Table::send_response(now, id, bytes)
//! t_relay's branch   ──▶ Table::start_built(now, Built, dest, &ClientConfig) ─▶ TxnId
//! received response ──▶ Table::handle_response(now, &msg) ─▶ ResponseOutcome (pass up or not)
//! after each call    ──▶ while let Some(t) = Table::poll_transmit() { send t.bytes to t.dest }
//! timers             ──▶ sleep until Table::next_wake(); Table::handle_timeout(now) ─▶ Vec<Event>
//! ```
//!
//! Time is [`std::time::Instant`], always passed in (tests use a fixed origin
//! plus offsets; tokio's `Instant::into_std` converts).
//!
//! # The API
//!
//! - [`Table::new`]`(`[`TableConfig`]`)`: `shards` shards (by the keyed hash of
//!   the transaction key, which the shard's index keeps in place of the key),
//!   each a `Mutex` holding its transactions, indexes, timers and outgoing
//!   queue; all methods
//!   take `&self`, so one table is shared by every worker (`Arc<Table>`). At
//!   most `max_transactions` exist: creating one more is
//!   [`CreateError::Full`] (answer 503).
//! - [`Table::handle_request`]`(now, &Message) -> `[`RequestOutcome`]: matching
//!   by §17.2.3 (top Via branch with the magic cookie + sent-by + method, ACK
//!   matching its INVITE) or the RFC 2543 fallback (Request-URI, To tag — the
//!   response's for an ACK —, From tag, Call-ID, CSeq number, top Via);
//!   retransmissions get the last response resent, an ACK of a non-2xx final
//!   is absorbed, an ACK of a 2xx is the caller's to route end to end.
//! - [`Table::create_server`]`(&Message, `[`Dest`]`) -> Result<`[`TxnId`]`, `[`CreateError`]`>`.
//! - [`Table::find_cancelled`]`(&Message) -> Option<TxnId>`: the INVITE server
//!   transaction a CANCEL cancels (the CANCEL is a transaction of its own).
//! - [`Table::send_response`]`(now, TxnId, Bytes) -> Result<(), `[`SendError`]`>`.
//! - [`Table::start_client`]`(now, Bytes, Dest, &`[`ClientConfig`]`) -> Result<TxnId, CreateError>`;
//!   [`Table::start_built`]`(now, `[`Built`]`, Dest, &ClientConfig)` for a
//!   request the caller built and knows the key of (its branch and method),
//!   which is then not parsed again unless an ACK or a CANCEL of it is built;
//!   [`Table::build_cancel`]`(TxnId) -> Option<Bytes>` builds the CANCEL of a
//!   client INVITE (start it as a client transaction of its own).
//! - [`Table::handle_response`]`(now, &Message) -> `[`ResponseOutcome`]: matching
//!   by §17.1.3 (top Via branch + CSeq method); each provisional and the first
//!   final pass up, INVITE 2xx always pass (end to end), duplicates are
//!   absorbed (a repeated non-2xx final of an INVITE gets its ACK again).
//! - [`Table::poll_transmit`]`() -> Option<`[`Transmit`]`>` (or all at once:
//!   [`Table::drain_transmits`], [`Table::drain_transmits_with`]),
//!   [`Table::poll_timeout`]`() -> Option<Instant>` (the earliest deadline;
//!   [`Table::next_wake`] rounds it up to a [`TIMER_TICK`], so that one
//!   wake-up fires every timer due within a tick),
//!   [`Table::handle_timeout`]`(now) -> Vec<`[`Event`]`>`:
//!   [`Event::ClientTimeout`] (timer B/F: the caller makes the 408 and runs the
//!   failure_route), [`Event::AckTimeout`] (timer H), [`Event::Terminated`].
//! - [`Table::terminate`], and for inspection [`Table::state`],
//!   [`Table::kind`], [`Table::status`], [`Table::request`], [`Table::dest`].
//!
//! # The state machines
//!
//! | kind | states | timers |
//! |---|---|---|
//! | INVITE server | Proceeding → Completed → Confirmed → Terminated; Proceeding → Accepted → Terminated (2xx) | G, H, I; L |
//! | non-INVITE server | Trying → Proceeding → Completed → Terminated | J |
//! | INVITE client | Calling → Proceeding → Completed → Terminated; → Accepted → Terminated (2xx) | A, B, D; M |
//! | non-INVITE client | Trying → Proceeding → Completed → Terminated | E, F, K |
//!
//! Timer values come from tm's modparams: see [`TmTimers`] for the mapping.
//! Over reliable transports (TCP, TLS, SCTP) nothing is retransmitted (no A, E,
//! G) and D, I, J, K are zero.
//!
//! What is the caller's (tm's functions, in the proxy pipeline): the 100
//! Trying of an INVITE (send it with `send_response`), building responses
//! (408 at a timeout, 487 after a CANCEL), choosing the best response among
//! branches (§16.7), CANCELling branches, and answering or terminating every
//! server transaction it creates (no timer runs before its first response).
//!
//! A transaction whose wait (D, I, J, K, L, M) ends is freed at once: the
//! wait was there to absorb what could still come, as in OpenSER 1.3, whose
//! wait handler takes the cell out of the hash table. One ended any other way
//! (timers B, F, H, `t_release`) was given no wait: it lingers `delete_timer`
//! before it is freed, still matching (see [`TmTimers`]). [`Event::Terminated`]
//! is reported when it enters Terminated, or is freed at the end of its wait.

mod config;
mod key;
mod local;
mod slots;
mod table;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

pub use config::{ClientConfig, TableConfig, TmTimers, DEFAULT_MAX_TRANSACTIONS};
pub(crate) use table::IdHash;
pub use table::{KeyHash, Table, TIMER_TICK};

use crate::proxy::Transport;

/// A transaction of a [`Table`]: unique for the table's lifetime (never
/// reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn#{}", self.0)
    }
}

/// A request the caller built for a client transaction, with the key it
/// carries ([`Table::start_built`]): t_relay writes the branch of the Via it
/// puts on top and keeps the method of the request it relays, so the table
/// need not parse the result to find them.
#[derive(Clone, Debug)]
pub struct Built<'a> {
    /// The request as it goes out.
    pub bytes: Bytes,
    /// Its method (an ACK starts no transaction) …
    pub method: crate::sip::Method,
    /// … and the method's text (an extension method is compared by it).
    pub method_text: &'a str,
    /// The branch of its top Via (RFC 3261: with the magic cookie).
    pub branch: &'a str,
}

/// Which of the four state machines a transaction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    ServerInvite,
    ServerNonInvite,
    ClientInvite,
    ClientNonInvite,
}

impl Kind {
    pub fn is_server(self) -> bool {
        matches!(self, Kind::ServerInvite | Kind::ServerNonInvite)
    }
}

/// A transaction state (RFC 3261 §17; Accepted: RFC 6026).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Non-INVITE, client or server: no response yet.
    Trying,
    /// INVITE client: no response yet.
    Calling,
    /// A provisional response was received (client) or sent (server); an
    /// INVITE server transaction starts here.
    Proceeding,
    /// A final response (a non-2xx one for INVITE) was received or sent.
    Completed,
    /// INVITE server: the ACK of the non-2xx final arrived.
    Confirmed,
    /// INVITE: a 2xx was sent or received (RFC 6026).
    Accepted,
    /// Done after a timeout or `t_release`: lingering `delete_timer`, then
    /// freed. (A wait's end frees at once, without this state.)
    Terminated,
}

/// Where a message goes: compatible with what the transport layer sends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// The local socket to send from (`None`: the transport layer chooses).
    pub local: Option<SocketAddr>,
}

impl Dest {
    pub fn new(transport: Transport, addr: SocketAddr) -> Dest {
        Dest { transport, addr, local: None }
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The transaction it belongs to.
    pub txn: TxnId,
    pub bytes: Bytes,
    pub dest: Dest,
}

/// What a timer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Timer B or F (tm's `fr_timer`, or `fr_inv_timer` after a provisional)
    /// fired before a final response: the caller acts as if a 408 came
    /// (failure_route). `provisional`: one had arrived (the caller may CANCEL).
    /// The transaction is Terminated (a late final is still ACKed while it
    /// lingers).
    ClientTimeout { id: TxnId, provisional: bool },
    /// Timer H fired: the ACK of an INVITE's non-2xx final never came.
    AckTimeout(TxnId),
    /// The transaction entered Terminated.
    Terminated(TxnId),
}

/// What [`Table::handle_request`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// No server transaction: a new request for the script (or an ACK of a 2xx
    /// with a branch of its own, to route end to end).
    NoMatch,
    /// A retransmission, absorbed; `resent`: the last response was queued
    /// again.
    Retransmission { id: TxnId, resent: bool },
    /// The ACK of a non-2xx final (or a repeated ACK), absorbed.
    AckAbsorbed { id: TxnId },
    /// An ACK matching an INVITE transaction that sent a 2xx: not the
    /// transaction's; route it end to end.
    Ack2xx { id: TxnId },
}

/// What [`Table::handle_response`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// No client transaction: forward it statelessly (§16.7 step 2).
    NoMatch,
    /// A provisional before any final: pass it up (a proxy does not forward
    /// a 100 upstream, §16.7 step 5: the caller checks `status`). `first`:
    /// the first one.
    Provisional { id: TxnId, status: u16, first: bool },
    /// The first final response: pass it up (the non-2xx of an INVITE was
    /// ACKed already).
    Final { id: TxnId, status: u16 },
    /// A 2xx of an INVITE after the first final (a retransmission, or another
    /// UAS's 2xx of a forked call): pass it up, to forward end to end.
    Extra2xx { id: TxnId },
    /// Late or duplicate: do not pass it up (a repeated non-2xx final of an
    /// INVITE got its ACK again).
    Absorbed { id: TxnId, status: u16 },
}

impl ResponseOutcome {
    /// Whether the response goes up to the proxy core (reply routes, §16.7).
    pub fn pass_up(&self) -> bool {
        matches!(
            self,
            ResponseOutcome::Provisional { .. } | ResponseOutcome::Final { .. } | ResponseOutcome::Extra2xx { .. }
        )
    }

    pub fn id(&self) -> Option<TxnId> {
        match *self {
            ResponseOutcome::NoMatch => None,
            ResponseOutcome::Provisional { id, .. }
            | ResponseOutcome::Final { id, .. }
            | ResponseOutcome::Extra2xx { id }
            | ResponseOutcome::Absorbed { id, .. } => Some(id),
        }
    }
}

/// Why a transaction was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateError {
    /// The table holds `max_transactions`: answer 503.
    Full,
    /// It exists already (a retransmission, or the same branch twice).
    Exists(TxnId),
    /// An ACK is never a transaction of its own.
    Ack,
    NotARequest,
    /// The request to send does not parse.
    Malformed,
    /// The request to send has no RFC 3261 branch on its top Via.
    NoBranch,
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::Full => f.write_str("the transaction table is full"),
            CreateError::Exists(id) => write!(f, "the transaction exists already ({id})"),
            CreateError::Ack => f.write_str("an ACK does not start a transaction"),
            CreateError::NotARequest => f.write_str("not a request"),
            CreateError::Malformed => f.write_str("the request does not parse"),
            CreateError::NoBranch => f.write_str("the top Via has no RFC 3261 branch"),
        }
    }
}

impl std::error::Error for CreateError {}

/// Why [`Table::send_response`] refused a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    NoTransaction,
    NotServer,
    /// Not a response, or a final response that does not parse (of a
    /// provisional only the status line is read: the caller built it).
    Malformed,
    /// The transaction's state does not take this response (a final after a
    /// final, a provisional after a final).
    State(State),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoTransaction => f.write_str("no such transaction"),
            SendError::NotServer => f.write_str("not a server transaction"),
            SendError::Malformed => f.write_str("not a well-formed response"),
            SendError::State(s) => write!(f, "the transaction is {s:?}: it takes no such response"),
        }
    }
}

impl std::error::Error for SendError {}
