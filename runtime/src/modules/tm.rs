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
//!   that is a host name is not resolved in this slice: the transaction is
//!   answered `478 Unresolvable destination` (OpenSER's reply for
//!   `E_BAD_ADDRESS`) and it returns 0 (OpenSER: an error reply was sent, the
//!   script stops).
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
//!   (6xx first, else the lowest code) goes upstream.
//! - Timeouts (`Tm::on_event`): a branch without a final gets a local `408
//!   Request Timeout` as its final. As OpenSER with `noisy_ctimer` 0 (the
//!   default), an INVITE that got a provisional, has a single branch and no
//!   failure_route is ended silently instead: nothing goes upstream.
//! - `t_newtran`, `t_reply`, `t_check_trans`, `t_release`: see each.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proxy::{self, Local, Source, Target};
use crate::script::args::{Format, ReplyCode, RouteId, SocketSpec};
use crate::script::{Config, Ctx, ModParams, Send};
use crate::sip::{Edits, Message, Method};
use crate::tm::{
    ClientConfig, CreateError, Dest, Event, RequestOutcome, ResponseOutcome, Table, TableConfig, TmTimers, TxnId,
};

/// The seed of the To-tags of the replies tm makes itself (`t_reply`, 408).
const TAG_SEED: &[u8] = b"serc-tm";

/// A proxy's [`Tm`], built on first use (see the module documentation). Clones
/// share it.
#[derive(Clone, Default)]
pub struct TmSlot(Arc<OnceLock<Arc<Tm>>>);

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
        self.0.get_or_init(|| Arc::new(Tm::new(&config.params, config.server_header.line())))
    }

    /// The proxy's tm if anything built it (no transaction exists otherwise).
    pub fn get(&self) -> Option<&Arc<Tm>> {
        self.0.get()
    }
}

/// What one message's route knows about its transaction (`ctx.tm`).
#[derive(Clone, Debug)]
pub struct TxnCtx {
    /// The time of the message, as the pipeline read it (tests set it).
    pub now: Instant,
    /// The table's answer for this request, once asked.
    pub lookup: Option<RequestOutcome>,
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
    avps: crate::script::Avps,
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
            avps: ctx.avps.clone(),
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
        ctx.avps = self.avps.clone();
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
    /// `append_to_reply` lines and the `Server:` line, for local replies.
    reply_headers: String,
    branches: Vec<BranchState>,
    /// The best negative final so far: status and the bytes to send upstream.
    best: Option<(u16, Bytes)>,
    /// A final response went upstream.
    final_sent: bool,
    /// A CANCEL for the request arrived (`t_was_cancelled`).
    cancelled: bool,
    /// The request as the last `t_relay` left it (for a failure route).
    state: Option<RequestState>,
    failure_route: Option<RouteId>,
    /// `onreply_route[N]` for the replies of its branches (`t_on_reply`).
    reply_route: Option<RouteId>,
}

/// tm's state in a proxy: see the module documentation.
pub struct Tm {
    pub table: Table,
    noisy_ctimer: bool,
    server_header: String,
    cells: Mutex<HashMap<TxnId, Cell>>,
    /// Client transaction → its server transaction.
    uplinks: Mutex<HashMap<TxnId, TxnId>>,
    /// Failure routes to run.
    failures: Mutex<Vec<FailureRun>>,
}

fn secs(params: &ModParams, name: &str) -> Duration {
    Duration::from_secs(params.int("tm", name).max(0) as u64)
}

fn millis(params: &ModParams, name: &str) -> Duration {
    Duration::from_millis(params.int("tm", name).max(1) as u64)
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
    /// tm with the timers of `params`; `server_header` is the `Server:` line
    /// (with CRLF, or empty) of the replies tm makes.
    pub fn new(params: &ModParams, server_header: &str) -> Tm {
        let config = TableConfig { timers: timers(params), ..TableConfig::default() };
        Tm {
            table: Table::new(config),
            noisy_ctimer: params.int("tm", "noisy_ctimer") != 0,
            server_header: server_header.to_string(),
            cells: Mutex::new(HashMap::new()),
            uplinks: Mutex::new(HashMap::new()),
            failures: Mutex::new(Vec::new()),
        }
    }

    /// The `onreply_route[N]` armed for the transaction of client transaction
    /// `client`, with the transaction's AVPs.
    pub fn reply_route(&self, client: TxnId) -> Option<(RouteId, crate::script::Avps)> {
        let server = self.uplinks().get(&client).copied()?;
        let cells = self.cells();
        let cell = cells.get(&server)?;
        let avps = cell.state.as_ref().map(|s| s.avps.clone()).unwrap_or_default();
        Some((cell.reply_route?, avps))
    }

    /// The next failure route to run, if any.
    pub fn take_failure(&self) -> Option<FailureRun> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        (!f.is_empty()).then(|| f.remove(0))
    }

    /// After a failure route: when it started no new branch and sent no final,
    /// the best reply goes upstream.
    pub fn after_failure(&self, now: Instant, server: TxnId) {
        let send = {
            let mut cells = self.cells();
            let Some(cell) = cells.get_mut(&server) else { return };
            if cell.final_sent || cell.branches.iter().any(|b| b.status == 0) {
                None
            } else {
                cell.final_sent = true;
                cell.best.as_ref().map(|(_, b)| b.clone())
            }
        };
        if let Some(bytes) = send {
            self.send_upstream(now, server, bytes);
        }
    }

    fn cells(&self) -> std::sync::MutexGuard<'_, HashMap<TxnId, Cell>> {
        self.cells.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn uplinks(&self) -> std::sync::MutexGuard<'_, HashMap<TxnId, TxnId>> {
        self.uplinks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the table queued, as messages to send.
    pub fn drain(&self, out: &mut Vec<Send>) {
        while let Some(t) = self.table.poll_transmit() {
            out.push(Send {
                bytes: t.bytes,
                target: Target::Addr { transport: t.dest.transport, addr: t.dest.addr },
                from: t.dest.local,
            });
        }
    }

    /// A received response the table matched (not `NoMatch`): relays what goes
    /// upstream. `edits`: the bare `onreply_route`'s; `locals`: our sockets
    /// (to recognise and remove our Via).
    pub fn on_response(&self, now: Instant, outcome: ResponseOutcome, msg: &Message, edits: &Edits, locals: &[Local]) {
        let relayed = || -> Option<Bytes> {
            let mut edits = edits.clone();
            if let Err(why) = proxy::route_response(msg, locals, &mut edits) {
                tracing::debug!(why, "tm: a reply cannot be relayed");
                return None;
            }
            match msg.write(&edits) {
                Ok(b) => Some(b.freeze()),
                Err(e) => {
                    tracing::error!(error = %e, "tm: a reply's edits conflict");
                    None
                }
            }
        };
        match outcome {
            ResponseOutcome::NoMatch | ResponseOutcome::Absorbed { .. } => {}
            ResponseOutcome::Provisional { id, status, .. } => {
                let Some(server) = self.uplinks().get(&id).copied() else { return };
                self.cancel_if_pending(now, server, id);
                if status == 100 {
                    return;
                }
                if let Some(bytes) = relayed() {
                    self.send_upstream(now, server, bytes);
                }
            }
            ResponseOutcome::Final { id, status } => {
                let Some(bytes) = relayed() else { return };
                self.branch_final(now, id, status, bytes);
            }
            ResponseOutcome::Extra2xx { id } => {
                // A 2xx retransmission or another fork's 2xx: end to end, by
                // the Via (the server transaction is Accepted and passes it).
                let server = self.uplinks().get(&id).copied();
                if let (Some(server), Some(bytes)) = (server, relayed()) {
                    self.send_upstream(now, server, bytes);
                }
            }
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
            let mut cells = self.cells();
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
            let mut cells = self.cells();
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

    fn send_upstream(&self, now: Instant, server: TxnId, bytes: Bytes) {
        if let Err(e) = self.table.send_response(now, server, bytes) {
            tracing::debug!(error = %e, %server, "tm: a reply was not sent upstream");
        }
    }

    /// A branch got its final response (received, or the local 408): a 2xx
    /// goes upstream at once; a negative one is kept, and once every branch is
    /// final the best goes upstream.
    fn branch_final(&self, now: Instant, client: TxnId, status: u16, bytes: Bytes) {
        let Some(server) = self.uplinks().get(&client).copied() else { return };
        let send = {
            let mut cells = self.cells();
            let Some(cell) = cells.get_mut(&server) else { return };
            if let Some(b) = cell.branches.iter_mut().find(|b| b.client == client) {
                b.status = status;
            }
            if (200..300).contains(&status) {
                cell.final_sent = true;
                Some(bytes)
            } else if cell.final_sent {
                None
            } else {
                let better = match &cell.best {
                    None => true,
                    Some((best, _)) => better_negative(status, *best),
                };
                if better {
                    cell.best = Some((status, bytes));
                }
                if !cell.branches.iter().all(|b| b.status >= 200) {
                    None
                } else if let (Some(route), Some(state)) = (cell.failure_route, cell.state.clone()) {
                    // t_on_failure armed: the failure route decides (one
                    // shot: it re-arms with t_on_failure if it relays again).
                    cell.failure_route = None;
                    let status = cell.best.as_ref().map_or(status, |(s, _)| *s);
                    self.failures.lock().unwrap_or_else(|e| e.into_inner()).push(FailureRun {
                        server,
                        route,
                        status,
                        state,
                    });
                    None
                } else {
                    cell.final_sent = true;
                    cell.best.as_ref().map(|(_, b)| b.clone())
                }
            }
        };
        if let Some(bytes) = send {
            self.send_upstream(now, server, bytes);
        }
        // RFC 3261 §16.7 step 10: a 2xx ends the other branches of an INVITE.
        if (200..300).contains(&status) {
            self.cancel_pending(now, server, false);
        }
    }

    /// A timer event of the table (the pipeline's timer task calls this).
    pub fn on_event(&self, now: Instant, event: Event) {
        match event {
            Event::ClientTimeout { id, provisional } => self.client_timeout(now, id, provisional),
            Event::AckTimeout(_) => {}
            Event::Terminated(id) => {
                if self.cells().remove(&id).is_none() {
                    self.uplinks().remove(&id);
                }
            }
        }
    }

    fn client_timeout(&self, now: Instant, client: TxnId, provisional: bool) {
        let Some(server) = self.uplinks().get(&client).copied() else { return };
        let reply = {
            let cells = self.cells();
            let Some(cell) = cells.get(&server) else { return };
            let silent = cell.invite
                && provisional
                && !self.noisy_ctimer
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
                        &cell.reply_headers,
                        &cell.src,
                        cell.force_rport,
                    )
                })
            }
        };
        match reply {
            Some(bytes) => self.branch_final(now, client, 408, bytes),
            None => {
                // noisy_ctimer 0: the transaction ends, nothing goes upstream.
                tracing::debug!(%server, "tm: INVITE timed out after a provisional: dropped silently");
                if let Some(cell) = self.cells().get_mut(&server) {
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
    let o = tm.table.handle_request(ctx.tm.now, ctx.msg);
    ctx.tm.lookup = Some(o);
    o
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
    match tm.table.create_server(ctx.msg, dest) {
        Ok(id) => {
            let reply_headers = format!("{}{}", ctx.reply_headers, tm.server_header);
            tm.cells().insert(
                id,
                Cell {
                    invite: ctx.msg.method() == Some(Method::Invite),
                    src: ctx.src,
                    force_rport: ctx.force_rport,
                    reply_headers,
                    branches: Vec::new(),
                    best: None,
                    final_sent: false,
                    cancelled: false,
                    state: None,
                    reply_route: ctx.tm.reply_route,
                    failure_route: ctx.tm.failure_route,
                },
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
    let extra = format!("{}{}", ctx.reply_headers, tm.server_header);
    let bytes = proxy::stateless_reply(ctx.msg, code, reason, TAG_SEED, &extra, &ctx.src, ctx.force_rport);
    if code >= 200 {
        if let Some(cell) = tm.cells().get_mut(&server) {
            cell.final_sent = true;
        }
    }
    match tm.table.send_response(ctx.tm.now, server, bytes) {
        Ok(()) => 1,
        Err(e) => {
            tracing::error!(error = %e, code, "tm: the reply was not sent");
            -1
        }
    }
}

/// Where a branch goes: `$du`, else the Request-URI (the socket of
/// `t_relay("…")` when given).
fn destination(ctx: &Ctx, to: Option<&SocketSpec>) -> Result<Dest, &'static str> {
    let target = match to {
        Some(spec) => {
            let transport = spec.transport.unwrap_or(proxy::Transport::Udp);
            match spec.ip() {
                Some(ip) => {
                    Target::Addr { transport, addr: SocketAddr::new(ip, spec.port.unwrap_or(transport.default_port())) }
                }
                None => return Err("a host name (not resolved by tm yet)"),
            }
        }
        None => {
            let uri = ctx.dst_uri.clone().unwrap_or_else(|| ctx.request_uri().to_string());
            proxy::next_hop(&uri)?
        }
    };
    match target {
        Target::Addr { transport, addr } => Ok(Dest { transport, addr, local: None }),
        Target::Name { .. } => Err("a host name (not resolved by tm yet)"),
    }
}

/// Builds and starts one branch of `server` to `dest`: the request as
/// `forward()` builds it, with a branch unique to the client transaction.
fn start_branch(ctx: &mut Ctx, tm: &Tm, server: TxnId, mut dest: Dest) -> i32 {
    let target = Target::Addr { transport: dest.transport, addr: dest.addr };
    let Some(mut local) = super::core::local_for(ctx, &target).cloned() else {
        tracing::error!("t_relay: no local socket");
        return -1;
    };
    if ctx.advertised_address.is_some() || ctx.advertised_port.is_some() {
        let (host, port) = local.advertised.clone().unwrap_or_else(|| (local.addr.ip().to_string(), local.addr.port()));
        local.advertised = Some((ctx.advertised_address.clone().unwrap_or(host), ctx.advertised_port.unwrap_or(port)));
    }
    let index = tm.cells().get(&server).map_or(0, |c| c.branches.len());
    let mut edits = ctx.request_edits();
    proxy::mark_received(ctx.msg, &ctx.src, ctx.force_rport, &mut edits);
    let branch = format!("{}.{index}", proxy::stateless_branch(ctx.msg));
    proxy::add_via(ctx.msg, &local, &branch, ctx.force_local_rport, &mut edits);
    super::rr::double_record_route(ctx, &local, &mut edits);
    let bytes = match ctx.msg.write(&edits) {
        Ok(b) => b.freeze(),
        Err(e) => {
            tracing::error!(error = %e, "t_relay: the message edits conflict");
            return -1;
        }
    };
    dest.local = Some(local.addr);
    match tm.table.start_client(ctx.tm.now, bytes, dest, &ClientConfig::default()) {
        Ok(client) => {
            tm.uplinks().insert(client, server);
            if let Some(cell) = tm.cells().get_mut(&server) {
                cell.branches.push(BranchState { client, status: 0, cancel: Cancel::No });
            }
            1
        }
        Err(e) => {
            tracing::error!(error = %e, "t_relay: the branch was not started");
            -1
        }
    }
}

fn relay(ctx: &mut Ctx, to: Option<&SocketSpec>) -> i32 {
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
    if let Some(cell) = tm.cells().get_mut(&server) {
        cell.failure_route = ctx.tm.failure_route;
        cell.reply_route = ctx.tm.reply_route.or(cell.reply_route);
        cell.state = Some(RequestState::capture(ctx));
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
    let extra = if to.is_some() { Vec::new() } else { std::mem::take(&mut ctx.branches) };
    let mut candidates: Vec<(Option<String>, Option<String>)> = vec![(None, None)];
    candidates.extend(extra.into_iter().map(|b| (Some(b.uri), b.dst_uri)));
    let (ruri, du) = (ctx.ruri.clone(), ctx.dst_uri.clone());
    let mut rc = None;
    for (uri, dst_uri) in candidates {
        if let Some(uri) = uri {
            ctx.ruri = Some(uri);
            ctx.dst_uri = dst_uri;
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
                Ok(dest) => {
                    // 100 Trying before the first branch goes (none when no branch can).
                    if ctx.msg.method() == Some(Method::Invite) && tm.table.status(server) == Some(0) {
                        local_reply(ctx, &tm, server, 100, "Giving a try");
                    }
                    rc = Some(rc.unwrap_or(-1).max(start_branch(ctx, &tm, server, dest)));
                }
                Err(why) => tracing::warn!(why, uri = ctx.request_uri(), "t_relay: a branch has no destination"),
            }
        }
        ctx.edits.rollback(mark);
        ctx.ruri.clone_from(&ruri);
        ctx.dst_uri.clone_from(&du);
    }
    match rc {
        Some(rc) => rc,
        None => {
            tracing::warn!("t_relay: no branch can be sent: 478");
            local_reply(ctx, &tm, server, 478, "Unresolvable destination");
            0
        }
    }
}

/// `t_relay()`: statefully to `$du` or the Request-URI.
pub fn t_relay_0(ctx: &mut Ctx) -> i32 {
    relay(ctx, None)
}

/// `t_relay("proto:ip:port")`: statefully to that socket.
pub fn t_relay_1(ctx: &mut Ctx, to: &SocketSpec) -> i32 {
    relay(ctx, Some(to))
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
        if let Some(cell) = tm.cells().get_mut(&server) {
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
        if let Some(cell) = tm.cells().get_mut(&server) {
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
        .and_then(|s| ctx.config.tm.get().and_then(|tm| tm.cells().get(&s).map(|c| c.cancelled)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Value;

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
