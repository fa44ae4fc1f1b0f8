//! The pipeline of a proxy: what happens to each received message, around the
//! routes the code generator writes. It is the transport layer's [`Handler`]:
//!
//! - a message the parser refuses gets the RFC's answer (400, 505, 501) when it
//!   is a request, and is dropped when it is a response;
//! - a request goes through the script's main route (`route {}`); what the
//!   route sends (`forward`, `sl_send_reply` …) is sent; the route ending —
//!   `exit`, `drop`, `return`, or its last statement — ends the work;
//! - a response goes through the bare `onreply_route {}` (if any), then back
//!   along its Via stack (stateless; tm takes over later);
//! - a message to a host name is located by RFC 3263 ([`crate::resolve`]): sent
//!   at once when the cache has the answer, else by a task once the lookup
//!   ends — the worker never waits for the DNS.
//!
//! Stateful proxying ([`crate::modules::tm`]): the transaction table hangs off
//! [`Config::tm`], built on first use. After every message, what the table
//! queued (replies, branch requests, ACKs, retransmissions) joins what the
//! route sends; a response is matched against the client transactions after
//! the bare `onreply_route` and before the stateless path. A tokio task,
//! started in [`Handler::started`], sleeps until the table's next deadline
//! (woken early after each message that may have set an earlier one), fires
//! its timers ([`Proxy::tm_timeout`]) and sends what they queue through the
//! [`transport::Sender`].

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::proxy::{self, Source, Target};
use crate::resolve::{self, Resolver};
use crate::script::{Config, Ctx, Flow, RouteKind, Send, Vars};
use crate::sip::{Message, StartLine};
use crate::transport::{self, Handler, Incoming, Outgoing};

/// The routes of a compiled config (what the code generator implements).
pub trait Script: std::marker::Send + Sync + 'static {
    /// The main request route.
    fn request(&self, ctx: &mut Ctx) -> Flow;

    /// The bare `onreply_route {}`, run for every received reply before it is
    /// relayed; `Flow::Drop` drops a provisional reply. None by default.
    fn reply(&self, ctx: &mut Ctx) -> Flow {
        let _ = ctx;
        Flow::Return(1)
    }

    /// The `error_route`, if the config has one.
    fn error(&self, ctx: &mut Ctx) -> Option<Flow> {
        let _ = ctx;
        None
    }

    /// `failure_route[id]`, armed by `t_on_failure` (ids: a numbered route's
    /// number; the generator numbers named ones). An id the config has no
    /// route for does nothing.
    fn failure_route(&self, id: crate::script::args::RouteId, ctx: &mut Ctx) -> Flow {
        let _ = (id, ctx);
        Flow::Return(1)
    }

    /// `onreply_route[id]`, armed by `t_on_reply`.
    fn onreply_route(&self, id: crate::script::args::RouteId, ctx: &mut Ctx) -> Flow {
        let _ = (id, ctx);
        Flow::Return(1)
    }

    /// `branch_route[id]`, armed by `t_on_branch`, run for each branch.
    fn branch_route(&self, id: crate::script::args::RouteId, ctx: &mut Ctx) -> Flow {
        let _ = (id, ctx);
        Flow::Return(1)
    }

    /// The optional headers received messages get validated on receipt: those
    /// the script's functions parse (the generator derives it from their
    /// manifests). Every one by default, for scripts written by hand.
    fn interest(&self) -> crate::sip::Interest {
        crate::sip::Interest::ALL
    }
}

/// What generated code calls after each action, as OpenSER 1.3's
/// `run_action_list` does: when the action recorded an error (`$err.class`)
/// and the config has an `error_route`, that route runs now; if it ends the
/// script (`exit`, `drop`) so does this, else the error is cleared and the
/// script goes on. `None`: go on.
pub fn after_action<S: Script + ?Sized>(script: &S, ctx: &mut Ctx) -> Option<Flow> {
    if !ctx.error_pending() {
        return None;
    }
    let back = ctx.route;
    ctx.route = RouteKind::Error;
    let flow = script.error(ctx);
    ctx.route = back;
    match flow {
        None => None,
        Some(Flow::Exit) => Some(Flow::Exit),
        Some(Flow::Drop) => Some(Flow::Drop),
        Some(Flow::Return(_)) => {
            ctx.err = crate::script::ErrInfo::default();
            None
        }
    }
}

/// A proxy: a script and its configuration.
pub struct Proxy<S> {
    pub script: S,
    pub config: Config,
    /// RFC 3263 lookups of the host names messages are sent to; the system's
    /// resolver unless [`Proxy::with_resolver`] gave one.
    resolver: OnceLock<Option<Arc<Resolver>>>,
    /// For messages sent after a lookup; given by the server when it starts.
    sender: OnceLock<transport::Sender>,
    /// Messages waiting for a DNS lookup; beyond `max_pending_lookups` new
    /// ones are dropped, so that requests to names that never resolve cannot
    /// pile up while the DNS times out.
    pending_lookups: Arc<AtomicUsize>,
    max_pending_lookups: usize,
    /// Wakes the tm timer task: a message may have set an earlier deadline, MI
    /// may have queued a request (`config.tm`'s, shared).
    tm_wake: Arc<tokio::sync::Notify>,
    /// The script's [`Script::interest`], asked once.
    interest: crate::sip::Interest,
}

/// The most messages waiting for DNS lookups at once (a few seconds of
/// lookups at a high rate; each holds one message).
pub const MAX_PENDING_LOOKUPS: usize = 4096;

thread_local! {
    /// `$var(x)` lives in the worker, as OpenSER's script variables live in
    /// the process.
    static VARS: RefCell<Vars> = RefCell::new(Vars::default());
    /// What routing a message sends, before it becomes the transport's
    /// [`Outgoing`]s ([`Handler::handle_into`]).
    static SENDS: std::cell::Cell<Vec<Send>> = const { std::cell::Cell::new(Vec::new()) };
    /// The edits of the message the worker routes, their room kept for the next one.
    static EDITS: std::cell::Cell<crate::sip::Edits> = std::cell::Cell::new(crate::sip::Edits::new());
}

/// The room for edits a worker keeps between messages: a message with more
/// (a script that removes many headers) gives its vector back to the allocator.
const MAX_KEPT_EDITS: usize = 64;

impl<S: Script> Proxy<S> {
    pub fn new(script: S, config: Config) -> Self {
        let tm_wake = config.tm.wake().clone();
        Proxy {
            interest: script.interest(),
            script,
            config,
            resolver: OnceLock::new(),
            sender: OnceLock::new(),
            pending_lookups: Arc::new(AtomicUsize::new(0)),
            max_pending_lookups: MAX_PENDING_LOOKUPS,
            tm_wake,
        }
    }

    /// At most `max` messages wait for DNS lookups at once (default
    /// [`MAX_PENDING_LOOKUPS`]); more are dropped.
    pub fn with_max_pending_lookups(mut self, max: usize) -> Self {
        self.max_pending_lookups = max;
        self
    }

    /// How many messages wait for a DNS lookup now.
    pub fn lookups_waiting(&self) -> usize {
        self.pending_lookups.load(Ordering::Relaxed)
    }

    /// Resolves host names with `resolver` instead of the system's.
    pub fn with_resolver(self, resolver: Arc<Resolver>) -> Self {
        let _ = self.resolver.set(Some(resolver));
        self
    }

    /// The resolver; the system's is built on first use (a failure to read the
    /// system's configuration is logged once and names are not sent to).
    fn resolver(&self) -> Option<&Arc<Resolver>> {
        self.resolver
            .get_or_init(|| {
                // The default configuration asks for the transports the layer sends on.
                match Resolver::system() {
                    Ok(r) => Some(Arc::new(r)),
                    Err(e) => {
                        tracing::error!(error = %e, "no DNS resolver: messages to host names will be dropped");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Routes one message; returns what to send (sans-IO: the caller sends).
    pub fn route(&self, bytes: bytes::Bytes, src: Source, framing: crate::sip::Framing) -> Vec<Send> {
        self.route_at(std::time::Instant::now(), bytes, src, framing)
    }

    /// [`route`](Proxy::route) at the time `now` (for tm's timers; tests pass
    /// a fake clock), with what tm's table queued meanwhile appended.
    pub fn route_at(
        &self,
        now: std::time::Instant,
        bytes: bytes::Bytes,
        src: Source,
        framing: crate::sip::Framing,
    ) -> Vec<Send> {
        let mut out = Vec::new();
        self.route_into(now, bytes, src, framing, &mut out);
        out
    }

    /// [`route_at`](Proxy::route_at), appending what to send to `out`: a caller
    /// that routes message after message (a transport's worker) passes the same
    /// vector each time, emptied, and no vector of sends is allocated per message.
    pub fn route_into(
        &self,
        now: std::time::Instant,
        bytes: bytes::Bytes,
        src: Source,
        framing: crate::sip::Framing,
        out: &mut Vec<Send>,
    ) {
        let timer = self.config.mi.histogram().map(|h| (h, std::time::Instant::now()));
        self.route_message(now, bytes, src, framing, out);
        if let Some(tm) = self.config.tm.get() {
            self.tm_settle(now, tm, out);
            tm.drain(out);
            if tm.table.take_wake() {
                self.tm_wake.notify_one();
            }
        }
        if let Some((histogram, started)) = timer {
            histogram.observe(started.elapsed());
        }
    }

    /// Fires tm's timers due at `now` and handles their events (local 408s);
    /// returns what to send (the timer task sends it; tests call this with a
    /// fake clock). Nothing when no transaction was ever made.
    pub fn tm_timeout(&self, now: std::time::Instant) -> Vec<Send> {
        let mut out = Vec::new();
        if let Some(tm) = self.config.tm.get() {
            for event in tm.table.handle_timeout(now) {
                tm.on_event(now, event);
            }
            self.tm_settle(now, tm, &mut out);
            tm.drain(&mut out);
        }
        out
    }

    /// Runs the failure routes tm queued and resolves the host names its new
    /// branches go to (a negative answer ends a branch, which may run a
    /// failure route, which may start branches …; a few rounds at most here,
    /// the rest on the next message or timer).
    fn tm_settle(&self, now: std::time::Instant, tm: &Arc<crate::modules::tm::Tm>, out: &mut Vec<Send>) {
        for _ in 0..4 {
            self.run_failure_routes(now, tm, out);
            if !self.tm_lookups(now, tm) {
                break;
            }
        }
    }

    /// Resolves the host names of tm's waiting branches: from the cache at
    /// once (true when any was), else in a task that hands tm the answer and
    /// wakes the timer task to send the branch (a worker never waits for the
    /// DNS).
    fn tm_lookups(&self, now: std::time::Instant, tm: &Arc<crate::modules::tm::Tm>) -> bool {
        let mut answered = false;
        for lookup in tm.take_lookups() {
            let Some(resolver) = self.resolver() else {
                tm.resolved(now, lookup, Err("no DNS resolver".to_string()));
                answered = true;
                continue;
            };
            match resolver.resolve_cached_seeded(&lookup.target, lookup.seed) {
                Some(hops) => {
                    tm.resolved(now, lookup, hops.map_err(|e| e.to_string()));
                    answered = true;
                }
                None => {
                    let Ok(rt) = tokio::runtime::Handle::try_current() else {
                        tm.resolved(now, lookup, Err("no runtime to resolve on".to_string()));
                        answered = true;
                        continue;
                    };
                    let (resolver, tm, wake) = (resolver.clone(), tm.clone(), self.tm_wake.clone());
                    rt.spawn(async move {
                        let hops = resolver.resolve_seeded(&lookup.target, lookup.seed).await;
                        tm.resolved(std::time::Instant::now(), lookup, hops.map_err(|e| e.to_string()));
                        wake.notify_one();
                    });
                }
            }
        }
        answered
    }

    /// Runs the failure routes tm queued (a transaction whose branches all
    /// ended negatively, with `t_on_failure` armed): the route sees the
    /// request as the request route left it, with the transaction's AVPs and
    /// flags; `t_relay` in it starts a new branch (serial forking), `t_reply`
    /// answers; if it does neither, the best reply goes upstream.
    fn run_failure_routes(&self, now: std::time::Instant, tm: &crate::modules::tm::Tm, out: &mut Vec<Send>) {
        while let Some(run) = tm.take_failure() {
            let Some(request) = tm.table.request(run.server) else { continue };
            let flags = self.with_ctx(now, &request, run.state.src, |ctx| {
                ctx.route = RouteKind::Failure;
                run.state.restore(ctx);
                ctx.tm.server = Some(run.server);
                ctx.tm.failure_status = Some(run.status);
                let _flow = self.script.failure_route(run.route, ctx);
                out.append(&mut ctx.out);
                ctx.flags
            });
            // The route's flags become the transaction's (acc reads them).
            tm.set_flags(run.server, flags);
            tm.after_failure(now, run.server);
        }
    }

    /// Runs `f` on a new context for `msg` (numbered for `$mi`, with the
    /// worker's `$var`s, the time and the script).
    fn with_ctx<R>(&self, now: std::time::Instant, msg: &Message, src: Source, f: impl FnOnce(&mut Ctx) -> R) -> R {
        VARS.with(|vars| {
            let mut vars = vars.borrow_mut();
            let mut ctx = Ctx::at(now, msg, src, &self.config, &mut vars);
            ctx.msg_id = crate::script::next_msg_id();
            ctx.script = Some(&self.script);
            // The worker's edits vector, emptied, not a new one per message.
            ctx.edits = EDITS.take();
            let r = f(&mut ctx);
            let mut edits = std::mem::take(&mut ctx.edits);
            if edits.capacity() <= MAX_KEPT_EDITS {
                edits.clear();
                EDITS.set(edits);
            }
            r
        })
    }

    fn route_message(
        &self,
        now: std::time::Instant,
        bytes: bytes::Bytes,
        src: Source,
        framing: crate::sip::Framing,
        out: &mut Vec<Send>,
    ) {
        let msg = match Message::parse_or_return(bytes, framing, self.interest) {
            Ok(msg) => msg,
            Err((rejected, bytes)) => {
                self.config.mi.core().bad_msg_hdr.inc();
                tracing::debug!(from = %src.addr, reason = rejected.detail, "refused a message");
                let Some(reply) = proxy::rejection_reply(&bytes, &rejected) else { return };
                out.push(Send {
                    bytes: reply,
                    target: Target::Addr { transport: src.transport, addr: src.addr },
                    from: Some(src.local),
                });
                return;
            }
        };
        self.with_ctx(now, &msg, src, |ctx| {
            // The script's sends go straight into `out`, given back when it ends;
            // what was in it before stays.
            std::mem::swap(&mut ctx.out, out);
            let kept = ctx.out.len();
            if let Routed::Instead(only) = self.route_parsed(now, &msg, ctx) {
                ctx.out.truncate(kept);
                ctx.out.extend(only);
            }
            std::mem::swap(&mut ctx.out, out);
        })
    }

    /// The script and tm on a parsed message, what to send pushed to `ctx.out`,
    /// or what goes instead of it.
    fn route_parsed(&self, now: std::time::Instant, msg: &Message, ctx: &mut Ctx) -> Routed {
        match msg.start {
            StartLine::Request { .. } => {
                let stats = self.config.mi.core();
                stats.rcv_requests.inc();
                ctx.route = RouteKind::Request;
                if self.script.request(ctx) == Flow::Drop {
                    stats.drop_requests.inc();
                }
                Routed::Sends
            }
            StartLine::Response { code, .. } => {
                let stats = self.config.mi.core();
                stats.rcv_replies.inc();
                ctx.route = RouteKind::OnReply;
                if self.script.reply(ctx) == Flow::Drop && code < 200 {
                    stats.drop_replies.inc();
                    return Routed::Instead(None);
                }
                if let Some(tm) = self.config.tm.get() {
                    let outcome = tm.table.handle_response(now, msg);
                    if outcome != crate::tm::ResponseOutcome::NoMatch {
                        // The transaction's onreply_route[N] (t_on_reply), with
                        // its AVPs; `drop` there drops a provisional reply.
                        let armed =
                            if outcome.pass_up() { outcome.id().and_then(|id| tm.reply_route(id)) } else { None };
                        if let Some((route, avps)) = armed {
                            ctx.avps = avps;
                            if self.script.onreply_route(route, ctx) == Flow::Drop && code < 200 {
                                stats.drop_replies.inc();
                                return Routed::Sends;
                            }
                        }
                        tm.on_response(now, outcome, msg, &mut ctx.edits, &self.config.locals);
                        return Routed::Sends;
                    }
                }
                // Our Via's removal joins the reply route's edits (the context
                // ends here).
                let edits = &mut ctx.edits;
                let relayed = match proxy::route_response(msg, &self.config.locals, edits) {
                    Ok(target) => match msg.write(edits) {
                        Ok(bytes) => {
                            stats.fwd_replies.inc();
                            Some(Send { bytes: bytes.freeze(), target, from: None })
                        }
                        Err(e) => {
                            stats.drop_replies.inc();
                            tracing::error!(error = %e, "a reply's edits conflict");
                            None
                        }
                    },
                    Err(why) => {
                        // 1.3: a reply with nowhere to go back to is an error reply.
                        stats.err_replies.inc();
                        tracing::debug!(why, "dropped a reply");
                        None
                    }
                };
                Routed::Instead(relayed)
            }
        }
    }
}

/// What [`Proxy::route_parsed`] leaves to send.
enum Routed {
    /// What the script and tm pushed to the context's sends.
    Sends,
    /// Only this, if anything: a dropped provisional reply sends nothing, a
    /// reply relayed statelessly only itself.
    Instead(Option<Send>),
}

impl<S: Script> Handler for Proxy<S> {
    fn handle(&self, incoming: Incoming) -> Vec<Outgoing> {
        let mut out = Vec::new();
        self.handle_into(incoming, &mut out);
        out
    }

    fn handle_into(&self, incoming: Incoming, out: &mut Vec<Outgoing>) {
        let src = Source { transport: incoming.transport, addr: incoming.src, local: incoming.local };
        let framing = incoming.transport.framing();
        let conn = incoming.conn;
        // The thread's vector of sends, reused message after message (taken, so
        // a nested call would only start an empty one).
        let mut sends = SENDS.take();
        self.route_into(std::time::Instant::now(), incoming.bytes, src, framing, &mut sends);
        out.extend(sends.drain(..).filter_map(|send| {
            let (transport, addr) = match send.target {
                Target::Addr { transport, addr } => (transport, addr),
                Target::Name { .. } => return self.send_to_name(send),
            };
            // A reply to the peer goes back on its connection.
            let conn = (addr == incoming.src).then_some(conn).flatten();
            Some(Outgoing { bytes: send.bytes, transport, dst: addr, from_local: send.from, conn })
        }));
        SENDS.set(sends);
    }

    fn started(self: Arc<Self>, sender: transport::Sender) {
        let _ = self.sender.set(sender.clone());
        self.start_tm_timers(sender);
        // Read the system's resolver configuration now, not on the first message.
        let _ = self.resolver();
    }
}

impl<S: Script> Proxy<S> {
    /// Starts the task that drives tm's timers (when a tokio runtime runs):
    /// it sleeps until the table's next deadline (at most a second), or until
    /// a message sets an earlier one or MI queues a request (it ends when the
    /// proxy is gone); fires the timers; sends what they queued.
    fn start_tm_timers(self: &Arc<Self>, sender: transport::Sender) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        // tm itself is built by the first tm function a route calls: a config
        // without tm pays nothing per message (the task then sleeps a second
        // at a time).
        let proxy = Arc::downgrade(self);
        let wake = self.tm_wake.clone();
        rt.spawn(async move {
            loop {
                let at = {
                    let Some(proxy) = proxy.upgrade() else { return };
                    let cap = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
                    match proxy.config.tm.get() {
                        Some(tm) => {
                            // Awake first: a deadline set while it looks wakes it again.
                            tm.table.timer_awake();
                            let deadline = tm.table.next_wake();
                            let at = deadline.map_or(cap, |d| tokio::time::Instant::from_std(d).min(cap));
                            tm.table.timer_sleeps_until(at.into_std());
                            at
                        }
                        None => cap,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = wake.notified() => {}
                }
                let out = {
                    let Some(proxy) = proxy.upgrade() else { return };
                    proxy.tm_timeout(tokio::time::Instant::now().into_std())
                };
                for send in out {
                    if let Target::Addr { transport, addr } = send.target {
                        sender
                            .send(Outgoing {
                                bytes: send.bytes,
                                transport,
                                dst: addr,
                                from_local: send.from,
                                conn: None,
                            })
                            .await;
                    }
                }
            }
        });
    }

    /// A message to a host name (RFC 3263): sent now when the answer is cached,
    /// else once the lookup ends (the worker does not wait for the DNS). The
    /// SRV choice is seeded by the message, so a retransmission goes where the
    /// first copy went (§4.4); a stateless proxy uses the first hop only.
    fn send_to_name(&self, send: Send) -> Option<Outgoing> {
        let resolver = self.resolver()?;
        let seed = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            send.bytes.hash(&mut h);
            h.finish()
        };
        match resolver.resolve_cached_seeded(&send.target, seed) {
            Some(Ok(hops)) => first_hop(send, &hops),
            Some(Err(e)) => {
                tracing::warn!(target = ?send.target, error = %e, "cannot resolve: message dropped");
                None
            }
            None => {
                let (Some(sender), Ok(rt)) = (self.sender.get().cloned(), tokio::runtime::Handle::try_current()) else {
                    tracing::error!(target = ?send.target, "no runtime to resolve on: message dropped");
                    return None;
                };
                let waiting = Waiting(self.pending_lookups.clone());
                if waiting.0.fetch_add(1, Ordering::Relaxed) >= self.max_pending_lookups {
                    tracing::warn!(target = ?send.target, "too many messages waiting for DNS: message dropped");
                    return None;
                }
                let resolver = resolver.clone();
                rt.spawn(async move {
                    let resolved = resolver.resolve_seeded(&send.target, seed).await;
                    drop(waiting);
                    match resolved {
                        Ok(hops) => {
                            if let Some(out) = first_hop(send, &hops) {
                                sender.send(out).await;
                            }
                        }
                        Err(e) => tracing::warn!(target = ?send.target, error = %e, "cannot resolve: message dropped"),
                    }
                });
                None
            }
        }
    }
}

/// One message counted in `pending_lookups` while it lives.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The first hop the transport layer can send on.
fn first_hop(send: Send, hops: &[resolve::Hop]) -> Option<Outgoing> {
    let Some(&(transport, addr)) =
        hops.iter().find(|(t, _)| matches!(t, proxy::Transport::Udp | proxy::Transport::Tcp))
    else {
        tracing::warn!(target = ?send.target, ?hops, "no hop on a transport this proxy sends on: message dropped");
        return None;
    };
    Some(Outgoing { bytes: send.bytes, transport, dst: addr, from_local: send.from, conn: None })
}
