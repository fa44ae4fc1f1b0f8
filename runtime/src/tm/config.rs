//! Timer values: OpenSER 1.3's tm modparams and how they map onto RFC 3261's
//! timers.

use std::time::Duration;

use crate::proxy::Transport;

/// The transaction timers, from tm's modparams (OpenSER 1.3 units: `T1_timer`
/// and `T2_timer` in milliseconds, the others in seconds; the fields are
/// `Duration`s, so whoever reads the modparams converts).
///
/// | RFC timer | what | serc's value (UDP) | reliable transports |
/// |---|---|---|---|
/// | A | INVITE request retransmission (client) | `t1`, doubling without a cap | not used |
/// | B | INVITE final-response timeout (client) | `fr` until a provisional arrives, then `fr_inv` (tm's behaviour; RFC: 64·T1 in Calling, nothing in Proceeding) | same |
/// | D | wait for response retransmissions (INVITE client, Completed) | `wt` (RFC: > 32 s) | 0 |
/// | E | non-INVITE request retransmission (client) | `t1` doubling up to `t2`; `t2` once a provisional arrived | not used |
/// | F | non-INVITE final-response timeout (client) | `fr` (RFC: 64·T1) | same |
/// | G | INVITE final response retransmission (server) | `t1` doubling up to `t2` | not used |
/// | H | wait for the ACK (INVITE server, Completed) | 64·`t1` (as the RFC) | same |
/// | I | absorb ACK retransmissions (INVITE server, Confirmed) | `wt` (RFC: T4 = 5 s) | 0 |
/// | J | absorb request retransmissions (non-INVITE server, Completed) | `wt` (RFC: 64·T1) | 0 |
/// | K | absorb response retransmissions (non-INVITE client, Completed) | `wt` (RFC: T4 = 5 s) | 0 |
/// | L | RFC 6026 Accepted (INVITE server after a 2xx) | 64·`t1` | same |
/// | M | RFC 6026 Accepted (INVITE client after a 2xx) | 64·`t1` | same |
///
/// `wt` is tm's single "wait" state (`wt_timer`), used for every timer that
/// keeps a finished transaction around to absorb retransmissions (D, I, J, K)
/// as OpenSER 1.3 does; its default (5 s) is shorter than the RFC's D and J
/// (32 s): set `wt_timer` to 32 for the RFC's values.
///
/// `delete` (`delete_timer`) has no RFC counterpart: in OpenSER it is how long
/// tm retries to free a transaction still referenced. Here it is how long a
/// transaction ended by a timeout (B, F, H) or `t_release` lingers in the table
/// before it is freed, as it had no wait: it still matches, so that late
/// retransmissions and responses are absorbed (a late non-2xx final of an
/// INVITE gets its ACK, a late 2xx still passes end to end) instead of being
/// taken for new messages. A transaction whose wait ends is freed at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmTimers {
    /// `T1_timer` (ms, default 500): the round-trip estimate.
    pub t1: Duration,
    /// `T2_timer` (ms, default 4000): the cap of non-INVITE retransmission intervals.
    pub t2: Duration,
    /// `fr_timer` (s, default 30): the final-response timeout of a client
    /// transaction (timer F; timer B until a provisional arrives).
    pub fr: Duration,
    /// `fr_inv_timer` (s, default 120): the final-response timeout of an
    /// INVITE client transaction once a provisional arrived.
    pub fr_inv: Duration,
    /// `wt_timer` (s, default 5): how long a transaction waits after its final
    /// response to absorb retransmissions (timers D, I, J, K).
    pub wt: Duration,
    /// `delete_timer` (s, default 2): how long a Terminated transaction lingers.
    pub delete: Duration,
    /// `restart_fr_on_each_reply` (default 1): `fr_inv` restarts on each
    /// provisional of an INVITE, not only on the first.
    pub restart_fr_on_each_reply: bool,
}

impl Default for TmTimers {
    fn default() -> TmTimers {
        TmTimers {
            t1: Duration::from_millis(500),
            t2: Duration::from_millis(4000),
            fr: Duration::from_secs(30),
            fr_inv: Duration::from_secs(120),
            wt: Duration::from_secs(5),
            delete: Duration::from_secs(2),
            restart_fr_on_each_reply: true,
        }
    }
}

impl TmTimers {
    /// 64·T1: timers H, L and M.
    pub fn t1_64(&self) -> Duration {
        self.t1 * 64
    }

    /// The wait of a transaction after its final response (D, I, J, K): `wt`,
    /// or zero over a reliable transport.
    pub fn wait(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            self.wt
        }
    }
}

/// How a client transaction starts: per-transaction overrides of the
/// final-response timers (tm's `fr_timer_avp` and `fr_inv_timer_avp`; `None`
/// takes the table's [`TmTimers`]), and the server transaction it is a
/// branch of, if any ([`Table::uplink`](super::Table::uplink)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientConfig {
    pub fr: Option<Duration>,
    pub fr_inv: Option<Duration>,
    pub uplink: Option<super::TxnId>,
}

/// The table's shape and timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Shards (each a lock, a map and its timers); at least 1.
    pub shards: usize,
    /// At most this many transactions (server and client, lingering ones
    /// included) exist at once; creating one more fails with
    /// [`Full`](super::CreateError::Full), which the caller answers with 503.
    pub max_transactions: usize,
    pub timers: TmTimers,
}

/// The default bound on transactions: at about 1.5 KB each (BENCHMARKS.md:
/// 1.45 KB measured, everything held for them included), at most about
/// 750 MB. A call makes four (INVITE and BYE, server and client), and a
/// 2xx-answered INVITE lingers 32 s (RFC 6026's Accepted state): room for
/// about 3,500 calls per second sustained. A built proxy's
/// `--max-transactions` changes it.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 500_000;

impl Default for TableConfig {
    fn default() -> TableConfig {
        TableConfig { shards: 16, max_transactions: DEFAULT_MAX_TRANSACTIONS, timers: TmTimers::default() }
    }
}
