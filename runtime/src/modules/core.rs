//! The core functions of the cfg language (OpenSER 1.3's `cmd` actions): what
//! the manifest `core` lists as implemented. Each returns OpenSER's code:
//! > 0 true, < 0 false (0 would end the script; none returns it).

use crate::proxy::{self, Local, Target};
use crate::script::args::{Format, HostPort, Level, SocketSpec};
use crate::script::pv::{rewrite, Part};
use crate::script::{AvpName, Branch, Ctx, RouteKind, Send, Value};
use crate::sip::uri;

// ------------------------------------------------------------------ forwarding

/// `forward()`: statelessly forwards the request to `$du` or the Request-URI.
pub fn forward_0(ctx: &mut Ctx) -> i32 {
    let uri = ctx.dst_uri.clone().unwrap_or_else(|| ctx.request_uri().to_string());
    match proxy::next_hop(&uri) {
        Ok(target) => {
            let hop_is_ruri = ctx.dst_uri.is_none();
            forward_to(ctx, target, hop_is_ruri)
        }
        Err(why) => {
            tracing::error!(uri, why, "forward: no next hop");
            -1
        }
    }
}

/// `forward("udp:host:port")`: statelessly forwards the request there.
pub fn forward_1(ctx: &mut Ctx, to: &SocketSpec) -> i32 {
    forward_to(ctx, socket_target(to), false)
}

/// `send("udp:host:port")`: sends the message as it is (no Via added).
pub fn send(ctx: &mut Ctx, to: &SocketSpec) -> i32 {
    let edits = ctx.request_edits();
    match ctx.msg.write(&edits) {
        Ok(bytes) => {
            ctx.out.push(Send { bytes: bytes.freeze(), target: socket_target(to), from: ctx.send_socket });
            1
        }
        Err(e) => {
            tracing::error!(error = %e, "send: the message edits conflict");
            -1
        }
    }
}

fn socket_target(to: &SocketSpec) -> Target {
    let transport = to.transport.unwrap_or(proxy::Transport::Udp);
    match to.ip() {
        Some(ip) => {
            Target::Addr { transport, addr: std::net::SocketAddr::new(ip, to.port.unwrap_or(transport.default_port())) }
        }
        None => Target::Name { transport: to.transport, host: to.host.clone(), port: to.port },
    }
}

/// The local socket a message to `target` leaves from: the forced one, else
/// the first of the right transport and address family.
pub fn local_for<'a>(ctx: &Ctx<'a>, target: &Target) -> Option<&'a Local> {
    let locals = ctx.locals;
    if let Some(forced) = ctx.send_socket {
        if let Some(l) = locals.iter().find(|l| l.addr == forced) {
            return Some(l);
        }
    }
    let transport = target.transport().unwrap_or(proxy::Transport::Udp);
    let v6 = matches!(target, Target::Addr { addr, .. } if addr.is_ipv6());
    locals
        .iter()
        .find(|l| l.transport == transport && l.addr.is_ipv6() == v6)
        .or_else(|| locals.iter().find(|l| l.transport == transport))
        .or_else(|| locals.first())
}

/// OpenSER's stateless forward: `received`/`rport` on the received top Via
/// (RFC 3581), our Via with a branch that retransmissions share (RFC 3261
/// §16.11), the Request-URI as rewritten.
/// `hop_is_ruri`: `target` is the Request-URI's next hop (already parsed).
fn forward_to(ctx: &mut Ctx, target: Target, hop_is_ruri: bool) -> i32 {
    if !ctx.msg.is_request() {
        tracing::error!("forward: only requests are forwarded by the script");
        return -1;
    }
    // Counted as 1.3's forward_request counts: sent, or dropped.
    let rc = match check_new_request_uri(ctx, hop_is_ruri) {
        Ok(()) => forward_request(ctx, target),
        Err(why) => {
            tracing::error!(uri = ctx.request_uri(), why, "forward: the Request-URI is malformed");
            -1
        }
    };
    let stats = ctx.config.mi.core();
    if rc > 0 { &stats.fwd_requests } else { &stats.drop_requests }.inc();
    rc
}

fn forward_request(ctx: &mut Ctx, target: Target) -> i32 {
    let Some(local) = sending_local(ctx, &target) else {
        tracing::error!("forward: no local socket");
        return -1;
    };
    let branch = proxy::stateless_branch(ctx.msg);
    match outgoing_request(ctx, &local, &branch) {
        Ok(bytes) => {
            ctx.out.push(Send { bytes: bytes.freeze(), target, from: Some(local.addr) });
            1
        }
        Err(e) => {
            tracing::error!(error = %e, "forward: the message edits conflict");
            -1
        }
    }
}

/// Checks the Request-URI a relayed request is to carry as the parser checks a
/// received one: the route may have set `$ru` (or `lookup` a registered
/// contact) to text that is no URI, and a request that would not parse is
/// not sent (RFC 3261 §16.6 builds on a valid request). OpenSER 1.3 sends it
/// when `$du` names the next hop (it parses only the URI it sends to); serc
/// refuses the branch, as 1.3 does when that URI is the Request-URI.
/// `hop_is_ruri`: the next hop was found by parsing the Request-URI
/// ([`proxy::next_hop`]), so only a SIP URI's headers are left to refuse.
pub(crate) fn check_new_request_uri(ctx: &Ctx, hop_is_ruri: bool) -> Result<(), &'static str> {
    match &ctx.ruri {
        Some(uri) if hop_is_ruri && !uri.contains('?') => Ok(()),
        Some(uri) => crate::sip::values::check_request_uri(uri.as_bytes()),
        None => Ok(()),
    }
}

/// The socket a request to `target` leaves by, with the address and port
/// `set_advertised_address`/`set_advertised_port` gave this message.
pub fn sending_local(ctx: &Ctx, target: &Target) -> Option<Local> {
    let mut local = local_for(ctx, target).cloned()?;
    if ctx.advertised_address.is_some() || ctx.advertised_port.is_some() {
        let (host, port) = local.advertised.clone().unwrap_or_else(|| (local.addr.ip().to_string(), local.addr.port()));
        local.advertised = Some((ctx.advertised_address.clone().unwrap_or(host), ctx.advertised_port.unwrap_or(port)));
    }
    Some(local)
}

/// The request as it leaves by `local` with our Via of branch `branch`: the
/// route's edits, the new Request-URI and Path, `received`/`rport` on the
/// sender's Via, our Via, and a double Record-Route (see
/// [`super::rr::double_record_route`]).
///
/// These edits go on top of the route's own and are taken off again once the
/// request is written, so the route's list is not copied for each request
/// sent (a double Record-Route rewrites one of the route's edits: that case
/// works on a copy).
pub fn outgoing_request(ctx: &mut Ctx, local: &Local, branch: &str) -> Result<bytes::BytesMut, crate::sip::EditError> {
    let mut edits = std::mem::take(&mut ctx.edits);
    let mark = edits.checkpoint();
    ctx.add_request_edits(&mut edits);
    proxy::mark_received(ctx.msg, &ctx.src, ctx.force_rport, &mut edits);
    proxy::add_via(ctx.msg, local, branch, ctx.force_local_rport, &mut edits);
    let written = if super::rr::double_record_route_due(ctx, local) {
        let mut copy = edits.clone();
        super::rr::double_record_route(ctx, local, &mut copy);
        ctx.msg.write(&copy)
    } else {
        ctx.msg.write(&edits)
    };
    edits.rollback(mark);
    ctx.edits = edits;
    written
}

// ------------------------------------------------------------------ logging

/// `log("text")`: logs at OpenSER's default level for `log` (debug).
pub fn log_1(_ctx: &mut Ctx, text: &str) -> i32 {
    emit(Level::Dbg, text);
    1
}

/// `log(level, "text")`.
pub fn log_2(_ctx: &mut Ctx, level: Level, text: &str) -> i32 {
    emit(level, text);
    1
}

/// Logs `text` at an OpenSER level (through `tracing`), unless `setdebug(n)`
/// set this worker's level below it.
pub fn emit(level: Level, text: &str) {
    if proc_debug_level().is_some_and(|max| number_of(level) > max) {
        return;
    }
    log_at!("script", level, text.trim_end_matches('\n'));
}

/// Logs `$text` for `$target` at an OpenSER [`Level`], mapped onto
/// `tracing`'s: `L_ALERT`, `L_CRIT` and `L_ERR` are errors, `L_NOTICE` and
/// `L_INFO` info. A macro: `tracing` wants each call site's target and level
/// known at compile time.
macro_rules! log_at {
    ($target:literal, $level:expr, $text:expr) => {{
        use $crate::script::args::Level;
        match $level {
            Level::Alert | Level::Crit | Level::Err => tracing::error!(target: $target, "{}", $text),
            Level::Warn => tracing::warn!(target: $target, "{}", $text),
            Level::Notice | Level::Info => tracing::info!(target: $target, "{}", $text),
            Level::Dbg => tracing::debug!(target: $target, "{}", $text),
        }
    }};
}

/// Whether a line [`log_at!`] would log for `$target` at `$level` would be
/// written now (the subscriber's filter, which `--log-level` and the MI
/// set): callers skip building lines that would not be.
macro_rules! enabled_at {
    ($target:literal, $level:expr) => {{
        use $crate::script::args::Level;
        match $level {
            Level::Alert | Level::Crit | Level::Err => tracing::enabled!(target: $target, tracing::Level::ERROR),
            Level::Warn => tracing::enabled!(target: $target, tracing::Level::WARN),
            Level::Notice | Level::Info => tracing::enabled!(target: $target, tracing::Level::INFO),
            Level::Dbg => tracing::enabled!(target: $target, tracing::Level::DEBUG),
        }
    }};
}

pub(crate) use {enabled_at, log_at};

/// OpenSER's number for a level (`L_ALERT` -3 … `L_DBG` 4): a message is
/// printed when its number is at most the debug level.
pub fn number_of(level: Level) -> i64 {
    match level {
        Level::Alert => -3,
        Level::Crit => -2,
        Level::Err => -1,
        Level::Warn => 1,
        Level::Notice => 2,
        Level::Info => 3,
        Level::Dbg => 4,
    }
}

thread_local! {
    /// The debug level `setdebug(n)` gave this worker (OpenSER: this
    /// process); `None` follows the global one.
    static PROC_DEBUG: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// The level `setdebug(n)` set for this worker, if any. [`emit`] (so `log`
/// and `xlog`) leaves out what is above it; a `tracing` subscriber may read
/// it too to filter every event of the worker as OpenSER does.
pub fn proc_debug_level() -> Option<i64> {
    PROC_DEBUG.with(|l| l.get())
}

/// `setdebug(n)`: from now on this worker logs at level `n` (-3 `L_ALERT` …
/// 4 `L_DBG`), for the next messages too, until `setdebug()`. 1.3 applied it
/// to every line of the process; serc applies it to the script's lines
/// (`log`, `xlog`), and it can only hide more than the `tracing`
/// subscriber's filter does, never show what that filter hides. Always 1.
pub fn setdebug_1(_ctx: &mut Ctx, level: i64) -> i32 {
    PROC_DEBUG.with(|l| l.set(Some(level)));
    1
}

/// `setdebug()`: this worker follows the global level again. Always 1. (In
/// 1.3, calling it before any `setdebug(n)` left the process without a level
/// and crashed at the next log line; here it is a no-op.)
pub fn setdebug_0(_ctx: &mut Ctx) -> i32 {
    PROC_DEBUG.with(|l| l.set(None));
    1
}

/// `error("class", "reason")`: a placeholder in 1.3, which only logs a warning
/// that it is not implemented and returns 1. serc does the same.
pub fn error(_ctx: &mut Ctx, class: &str, reason: &str) -> i32 {
    tracing::warn!(target: "script", "error(\"{class}\", \"{reason}\") not implemented yet");
    1
}

// ------------------------------------------------------------------ flags

fn bit(flag: u32) -> u32 {
    1u32.checked_shl(flag).unwrap_or(0)
}

fn test(set: bool) -> i32 {
    if set {
        1
    } else {
        -1
    }
}

pub fn setflag(ctx: &mut Ctx, flag: u32) -> i32 {
    ctx.flags |= bit(flag);
    1
}

pub fn resetflag(ctx: &mut Ctx, flag: u32) -> i32 {
    ctx.flags &= !bit(flag);
    1
}

pub fn isflagset(ctx: &mut Ctx, flag: u32) -> i32 {
    test(ctx.flags & bit(flag) != 0)
}

pub fn setsflag(ctx: &mut Ctx, flag: u32) -> i32 {
    ctx.script_flags |= bit(flag);
    1
}

pub fn resetsflag(ctx: &mut Ctx, flag: u32) -> i32 {
    ctx.script_flags &= !bit(flag);
    1
}

pub fn issflagset(ctx: &mut Ctx, flag: u32) -> i32 {
    test(ctx.script_flags & bit(flag) != 0)
}

pub use issflagset as isscriptflagset;
pub use resetsflag as resetscriptflag;
pub use setsflag as setscriptflag;

/// The flags of branch `index` (0: the Request-URI's).
fn branch_flags<'c>(ctx: &'c mut Ctx, index: i64) -> Option<&'c mut u32> {
    match index {
        0 => Some(&mut ctx.branch_flags),
        i if i > 0 => ctx.branches.get_mut(i as usize - 1).map(|b| &mut b.flags),
        _ => None,
    }
}

pub fn setbflag_1(ctx: &mut Ctx, flag: u32) -> i32 {
    setbflag_2(ctx, 0, flag)
}

pub fn setbflag_2(ctx: &mut Ctx, branch: i64, flag: u32) -> i32 {
    branch_flags(ctx, branch).map_or(-1, |f| {
        *f |= bit(flag);
        1
    })
}

pub fn resetbflag_1(ctx: &mut Ctx, flag: u32) -> i32 {
    resetbflag_2(ctx, 0, flag)
}

pub fn resetbflag_2(ctx: &mut Ctx, branch: i64, flag: u32) -> i32 {
    branch_flags(ctx, branch).map_or(-1, |f| {
        *f &= !bit(flag);
        1
    })
}

pub fn isbflagset_1(ctx: &mut Ctx, flag: u32) -> i32 {
    isbflagset_2(ctx, 0, flag)
}

pub fn isbflagset_2(ctx: &mut Ctx, branch: i64, flag: u32) -> i32 {
    branch_flags(ctx, branch).map_or(-1, |f| test(*f & bit(flag) != 0))
}

pub use isbflagset_1 as isbranchflagset_1;
pub use isbflagset_2 as isbranchflagset_2;
pub use resetbflag_1 as resetbranchflag_1;
pub use resetbflag_2 as resetbranchflag_2;
pub use setbflag_1 as setbranchflag_1;
pub use setbflag_2 as setbranchflag_2;

// ------------------------------------------------------------------ the Request-URI

fn set_ruri(ctx: &mut Ctx, new: Result<String, &'static str>, what: &str) -> i32 {
    match new {
        Ok(uri) => {
            ctx.ruri = Some(uri);
            1
        }
        Err(why) => {
            tracing::error!(why, "{what}: cannot rewrite the Request-URI");
            -1
        }
    }
}

/// `rewritehost("host")`
pub fn rewritehost(ctx: &mut Ctx, host: &str) -> i32 {
    let new = rewrite(ctx.request_uri(), Part::Host, host);
    set_ruri(ctx, new, "rewritehost")
}

/// `rewritehostport("host:port")`
pub fn rewritehostport(ctx: &mut Ctx, to: &HostPort) -> i32 {
    let with_host = rewrite(ctx.request_uri(), Part::Host, &to.host);
    let port = to.port.map(|p| p.to_string()).unwrap_or_default();
    let new = with_host.and_then(|u| rewrite(&u, Part::Port, &port));
    set_ruri(ctx, new, "rewritehostport")
}

/// `rewriteuser("user")`
pub fn rewriteuser(ctx: &mut Ctx, user: &str) -> i32 {
    let new = rewrite(ctx.request_uri(), Part::User, user);
    set_ruri(ctx, new, "rewriteuser")
}

/// `rewriteuserpass("user:password")`
pub fn rewriteuserpass(ctx: &mut Ctx, userpass: &str) -> i32 {
    let new = rewrite(ctx.request_uri(), Part::User, userpass);
    set_ruri(ctx, new, "rewriteuserpass")
}

/// `rewriteport("5060")`
pub fn rewriteport(ctx: &mut Ctx, port: i64) -> i32 {
    let port = if port > 0 { port.to_string() } else { String::new() };
    let new = rewrite(ctx.request_uri(), Part::Port, &port);
    set_ruri(ctx, new, "rewriteport")
}

/// `rewriteuri("sip:…")`
pub fn rewriteuri(ctx: &mut Ctx, to: &Format) -> i32 {
    let text = to.eval(ctx);
    match uri::parse(&text) {
        Ok(_) => {
            ctx.ruri = Some(text);
            1
        }
        Err(_) => {
            tracing::error!(uri = text, "rewriteuri: not a URI");
            -1
        }
    }
}

pub use rewritehost as sethost;
pub use rewritehost as seth;
pub use rewritehostport as sethostport;
pub use rewritehostport as sethp;
pub use rewriteport as setport;
pub use rewriteport as setp;
pub use rewriteuri as seturi;
pub use rewriteuser as setuser;
pub use rewriteuser as setu;
pub use rewriteuserpass as setuserpass;
pub use rewriteuserpass as setup;

/// `revert_uri()`: back to the Request-URI as received.
pub fn revert_uri(ctx: &mut Ctx) -> i32 {
    ctx.ruri = None;
    1
}

fn user_of(ctx: &Ctx) -> Option<String> {
    uri::parse(ctx.request_uri()).ok().and_then(|u| u.user.map(str::to_string))
}

/// `prefix("00")`: prepends to the user part.
pub fn prefix(ctx: &mut Ctx, text: &str) -> i32 {
    let user = format!("{text}{}", user_of(ctx).unwrap_or_default());
    let new = rewrite(ctx.request_uri(), Part::User, &user);
    set_ruri(ctx, new, "prefix")
}

/// `strip(n)`: removes the first `n` characters of the user part.
pub fn strip(ctx: &mut Ctx, n: i64) -> i32 {
    let Some(user) = user_of(ctx) else { return -1 };
    let n = n.max(0) as usize;
    if n > user.len() || !user.is_char_boundary(n) {
        return -1;
    }
    let new = rewrite(ctx.request_uri(), Part::User, &user[n..]);
    set_ruri(ctx, new, "strip")
}

/// `strip_tail(n)`: removes the last `n` characters of the user part.
pub fn strip_tail(ctx: &mut Ctx, n: i64) -> i32 {
    let Some(user) = user_of(ctx) else { return -1 };
    let n = n.max(0) as usize;
    if n > user.len() || !user.is_char_boundary(user.len() - n) {
        return -1;
    }
    let new = rewrite(ctx.request_uri(), Part::User, &user[..user.len() - n]);
    set_ruri(ctx, new, "strip_tail")
}

// ------------------------------------------------------------------ branches, destination

/// OpenSER 1.3's `MAX_BRANCHES`: the Request-URI and at most 11 more.
pub const MAX_BRANCHES: usize = 12;

/// OpenSER's `append_branch`: a branch to `uri` (empty: the current
/// Request-URI) with the current `$du`, branch-0 flags and forced socket.
/// -1 when the branch set is full.
fn add_branch(ctx: &mut Ctx, uri: String, q: Option<u16>) -> i32 {
    if ctx.branches.len() >= MAX_BRANCHES - 1 {
        tracing::error!(uri, "append_branch: too many branches");
        return -1;
    }
    let uri = if uri.is_empty() { ctx.request_uri().to_string() } else { uri };
    let branch = Branch {
        uri,
        dst_uri: ctx.dst_uri.clone(),
        q,
        flags: ctx.branch_flags,
        send_socket: ctx.send_socket,
        path: ctx.path.clone(),
    };
    ctx.branches.push(branch);
    1
}

/// `append_branch()`: a new branch to the current Request-URI with `$du`,
/// the branch flags and the forced socket (q unspecified); then `$du`, the
/// branch-0 flags and the forced socket are cleared, even when the branch
/// set was full.
pub fn append_branch_0(ctx: &mut Ctx) -> i32 {
    let code = add_branch(ctx, String::new(), None);
    ctx.send_socket = None;
    ctx.branch_flags = 0;
    ctx.dst_uri = None;
    code
}

/// `append_branch("sip:…")`: with `$du`, the branch flags and the forced
/// socket of the moment (which stay).
pub fn append_branch_1(ctx: &mut Ctx, to: &Format) -> i32 {
    append_branch_2(ctx, to, "")
}

/// `append_branch("sip:…", "0.5")`: with a q-value.
pub fn append_branch_2(ctx: &mut Ctx, to: &Format, q: &str) -> i32 {
    let uri = to.eval(ctx);
    if !uri.is_empty() && uri::parse(&uri).is_err() {
        tracing::error!(uri, "append_branch: not a URI");
        return -1;
    }
    let q = match q.trim() {
        "" => None,
        text => match text.parse::<f32>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Some((v * 1000.0).round() as u16),
            _ => {
                tracing::error!(q = text, "append_branch: bad q-value");
                return -1;
            }
        },
    };
    add_branch(ctx, uri, q)
}

/// OpenSER's `clear_branches`: no extra branches, the Request-URI's q-value
/// unspecified and its branch flags cleared (`$du` and the forced socket stay).
fn clear_branches(ctx: &mut Ctx) {
    ctx.branches.clear();
    ctx.ruri_q = None;
    ctx.branch_flags = 0;
}

// ------------------------------------------------------------------ serial forking

/// The AVP `serialize_branches` fills: OpenSER 1.3's integer name 0xff3434,
/// which 1.3 also calls by the global alias `serial_branch`.
pub const SERIAL_AVP: u32 = 0xff3434;

/// The serial AVP's values, oldest first, with whether each ends its q class
/// (a value the script added itself does not, as in 1.3, where it lacks the
/// flag).
fn serial_entries(ctx: &mut Ctx) -> Vec<(String, bool)> {
    let name = AvpName::Int(SERIAL_AVP);
    let mut values: Vec<String> = ctx.avps.all(&name).map(|v| v.as_text().into_owned()).collect();
    values.reverse();
    ctx.serial_marks.truncate(values.len());
    let marks = &ctx.serial_marks;
    values.into_iter().enumerate().map(|(i, v)| (v, marks.get(i).copied().unwrap_or(false))).collect()
}

/// Replaces the serial AVP's values (oldest first) and their marks.
fn set_serial_entries(ctx: &mut Ctx, entries: &[(String, bool)]) {
    let name = AvpName::Int(SERIAL_AVP);
    ctx.avps.delete(&name);
    for (uri, _) in entries {
        ctx.avps.push(name.clone(), Value::Str(uri.clone()));
    }
    ctx.serial_marks = entries.iter().map(|(_, last)| *last).collect();
}

/// `serialize_branches(clear)`: for serial forking, moves the Request-URI and
/// the branches into the `serial_branch` AVP, highest q first (the
/// Request-URI first among equals, then the branches in the order they were
/// added), marks where each q class ends, and clears the branch set (with
/// the Request-URI's q and branch flags). `clear` non-zero first drops what
/// an earlier call left in the AVP; else the new entries go on top of it.
/// Nothing happens (and it is still 1) when there is no branch, or when every
/// branch has the Request-URI's q. Only the URIs are kept: `$du`, flags and
/// sockets of the branches are lost, as in 1.3. Always 1.
///
/// 1.3's list insertion could misorder or drop contacts (fixed in later
/// OpenSIPS); serc sorts as 1.3's own description says. An unspecified q
/// ranks below q=0, as 1.3's -1 does.
pub fn serialize_branches(ctx: &mut Ctx, clear: i64) -> i32 {
    if ctx.branches.is_empty() || ctx.branches.iter().all(|b| b.q == ctx.ruri_q) {
        return 1;
    }
    let rank = |q: Option<u16>| q.map_or(-1, i32::from);
    let mut contacts: Vec<(String, i32)> = vec![(ctx.request_uri().to_string(), rank(ctx.ruri_q))];
    contacts.extend(ctx.branches.iter().map(|b| (b.uri.clone(), rank(b.q))));
    // The order next_branches reads them in: highest q first, stable.
    contacts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let mut entries = if clear != 0 { Vec::new() } else { serial_entries(ctx) };
    // Pushed lowest q first, so the highest ends on top of the AVP stack.
    for (i, (uri, q)) in contacts.iter().enumerate().rev() {
        let ends_class = contacts.get(i + 1).is_none_or(|next| next.1 < *q);
        entries.push((uri.clone(), ends_class));
    }
    set_serial_entries(ctx, &entries);
    clear_branches(ctx);
    1
}

/// `next_branches()`: takes the highest-q class left in the `serial_branch`
/// AVP. In a request route its first URI becomes the Request-URI and the rest
/// are appended as branches; in a failure route all are appended. The
/// entries used are removed from the AVP. Appended branches get q=0 and the
/// current `$du`, branch flags and forced socket (as 1.3's
/// `append_branch(uri, 0)`); the Request-URI keeps `$du`. -1 when the AVP is
/// empty, outside a request or failure route, or when the branch set is full
/// (the entry that did not fit is dropped); else 1.
///
/// 1.3 left the entry it put in the Request-URI in the AVP when its class
/// had more members, so the next call tried it again; serc removes every
/// entry it uses, as 1.3 describes the function (and later OpenSIPS does).
pub fn next_branches(ctx: &mut Ctx) -> i32 {
    if !matches!(ctx.route, RouteKind::Request | RouteKind::Failure) {
        tracing::error!(route = ?ctx.route, "next_branches: called from an unsupported route type");
        return -1;
    }
    let mut entries = serial_entries(ctx);
    if entries.is_empty() {
        tracing::debug!("next_branches: no serial AVPs left");
        return -1;
    }
    let mut code = 1;
    let mut first = ctx.route == RouteKind::Request;
    while let Some((uri, ends_class)) = entries.pop() {
        if first {
            ctx.ruri = Some(uri);
            first = false;
        } else if add_branch(ctx, uri, Some(0)) != 1 {
            code = -1;
            break;
        }
        if ends_class {
            break;
        }
    }
    set_serial_entries(ctx, &entries);
    code
}

/// `setdsturi("sip:…")`: sets `$du`.
pub fn setdsturi(ctx: &mut Ctx, to: &Format) -> i32 {
    let text = to.eval(ctx);
    if uri::parse(&text).is_err() {
        tracing::error!(uri = text, "setdsturi: not a URI");
        return -1;
    }
    ctx.dst_uri = Some(text);
    1
}

/// `resetdsturi()`
pub fn resetdsturi(ctx: &mut Ctx) -> i32 {
    ctx.dst_uri = None;
    1
}

/// `isdsturiset()`
pub fn isdsturiset(ctx: &mut Ctx) -> i32 {
    test(ctx.dst_uri.is_some())
}

pub use isdsturiset as isduriset;
pub use resetdsturi as resetduri;
pub use setdsturi as setduri;

// ------------------------------------------------------------------ transport

/// `force_rport()`: answer to the source port as if the client had asked (RFC 3581).
pub fn force_rport(ctx: &mut Ctx) -> i32 {
    ctx.force_rport = true;
    1
}

pub use force_rport as add_rport;

/// `force_local_rport()`: the Via this proxy adds when it forwards the
/// message asks for `rport` (`;rport` after the branch). Always 1.
pub fn force_local_rport(ctx: &mut Ctx) -> i32 {
    ctx.force_local_rport = true;
    1
}

pub use force_local_rport as add_local_rport;

/// `force_send_socket("udp:1.2.3.4:5060")`: send from this local socket.
pub fn force_send_socket(ctx: &mut Ctx, socket: &SocketSpec) -> i32 {
    let found = ctx.locals.iter().find(|l| {
        socket.ip() == Some(l.addr.ip())
            && socket.port.is_none_or(|p| p == l.addr.port())
            && socket.transport.is_none_or(|t| t == l.transport)
    });
    match found {
        Some(l) => {
            ctx.send_socket = Some(l.addr);
            1
        }
        None => {
            tracing::error!(socket = socket.host, "force_send_socket: not one of our sockets");
            -1
        }
    }
}

/// `force_tcp_alias()`: OpenSER keeps the TCP connection a request came on
/// as an alias of its Via's sent-by, so requests to that address reuse it.
/// The transport layer already reuses connections by address and by the
/// connection a message came on, so this only reports success.
pub fn force_tcp_alias_0(ctx: &mut Ctx) -> i32 {
    test(ctx.src.transport.is_reliable())
}

/// `force_tcp_alias(port)`
pub fn force_tcp_alias_1(ctx: &mut Ctx, _port: i64) -> i32 {
    force_tcp_alias_0(ctx)
}

pub use force_tcp_alias_0 as add_tcp_alias_0;
pub use force_tcp_alias_1 as add_tcp_alias_1;

// ------------------------------------------------------------------ pseudo-variables

/// `pv_printf("$avp(s:x)", "format")`: assigns the evaluated format.
pub fn pv_printf(ctx: &mut Ctx, target: &crate::script::args::PvRef, format: &Format) -> i32 {
    let value = crate::script::Value::Str(format.eval(ctx));
    match target.pv.set(ctx, value, false) {
        Ok(()) => 1,
        Err(why) => {
            tracing::error!(why, "pv_printf");
            -1
        }
    }
}

pub use pv_printf as avp_printf;

// ------------------------------------------------------------------ advertised address

/// `set_advertised_address("host")`: our Via and Record-Route for this message
/// say this host instead of the socket's address (behind a NAT).
pub fn set_advertised_address(ctx: &mut Ctx, to: &HostPort) -> i32 {
    ctx.advertised_address = Some(to.host.clone());
    if let Some(port) = to.port {
        ctx.advertised_port = Some(port);
    }
    1
}

/// `set_advertised_port(5080)`
pub fn set_advertised_port(ctx: &mut Ctx, port: i64) -> i32 {
    match u16::try_from(port) {
        Ok(p) if p > 0 => {
            ctx.advertised_port = Some(p);
            1
        }
        _ => -1,
    }
}
