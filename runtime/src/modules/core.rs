//! The core functions of the cfg language (OpenSER 1.3's `cmd` actions): what
//! the manifest `core` lists as implemented. Each returns OpenSER's code:
//! > 0 true, < 0 false (0 would end the script; none returns it).

use crate::proxy::{self, Local, Target};
use crate::script::args::{Format, HostPort, Level, SocketSpec};
use crate::script::pv::{rewrite, Part};
use crate::script::{Branch, Ctx, Send};
use crate::sip::uri;

// ------------------------------------------------------------------ forwarding

/// `forward()`: statelessly forwards the request to `$du` or the Request-URI.
pub fn forward_0(ctx: &mut Ctx) -> i32 {
    let uri = ctx.dst_uri.clone().unwrap_or_else(|| ctx.request_uri().to_string());
    match proxy::next_hop(&uri) {
        Ok(target) => forward_to(ctx, target),
        Err(why) => {
            tracing::error!(uri, why, "forward: no next hop");
            -1
        }
    }
}

/// `forward("udp:host:port")`: statelessly forwards the request there.
pub fn forward_1(ctx: &mut Ctx, to: &SocketSpec) -> i32 {
    forward_to(ctx, socket_target(to))
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
fn forward_to(ctx: &mut Ctx, target: Target) -> i32 {
    if !ctx.msg.is_request() {
        tracing::error!("forward: only requests are forwarded by the script");
        return -1;
    }
    let Some(mut local) = local_for(ctx, &target).cloned() else {
        tracing::error!("forward: no local socket");
        return -1;
    };
    if ctx.advertised_address.is_some() || ctx.advertised_port.is_some() {
        let (host, port) = local.advertised.clone().unwrap_or_else(|| (local.addr.ip().to_string(), local.addr.port()));
        local.advertised = Some((ctx.advertised_address.clone().unwrap_or(host), ctx.advertised_port.unwrap_or(port)));
    }
    let mut edits = ctx.request_edits();
    proxy::mark_received(ctx.msg, &ctx.src, ctx.force_rport, &mut edits);
    let branch = proxy::stateless_branch(ctx.msg);
    proxy::add_via(ctx.msg, &local, &branch, false, &mut edits);
    match ctx.msg.write(&edits) {
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

// ------------------------------------------------------------------ logging

/// `log("text")`: logs at OpenSER's default level for `log` (debug).
pub fn log_1(_ctx: &mut Ctx, text: &str) -> i32 {
    tracing::debug!(target: "script", "{}", text.trim_end_matches('\n'));
    1
}

/// `log(level, "text")`.
pub fn log_2(_ctx: &mut Ctx, level: Level, text: &str) -> i32 {
    emit(level, text);
    1
}

/// Logs `text` at an OpenSER level (through `tracing`).
pub fn emit(level: Level, text: &str) {
    let text = text.trim_end_matches('\n');
    match level {
        Level::Alert | Level::Crit | Level::Err => tracing::error!(target: "script", "{text}"),
        Level::Warn => tracing::warn!(target: "script", "{text}"),
        Level::Notice | Level::Info => tracing::info!(target: "script", "{text}"),
        Level::Dbg => tracing::debug!(target: "script", "{text}"),
    }
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

/// `append_branch()`: a new branch to the current Request-URI (and `$du`).
pub fn append_branch_0(ctx: &mut Ctx) -> i32 {
    let branch = Branch {
        uri: ctx.request_uri().to_string(),
        dst_uri: ctx.dst_uri.clone(),
        q: None,
        flags: ctx.branch_flags,
        send_socket: ctx.send_socket,
    };
    ctx.branches.push(branch);
    1
}

/// `append_branch("sip:…")`
pub fn append_branch_1(ctx: &mut Ctx, to: &Format) -> i32 {
    append_branch_2(ctx, to, "")
}

/// `append_branch("sip:…", "0.5")`: with a q-value.
pub fn append_branch_2(ctx: &mut Ctx, to: &Format, q: &str) -> i32 {
    let uri = to.eval(ctx);
    if uri::parse(&uri).is_err() {
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
    ctx.branches.push(Branch { uri, dst_uri: None, q, flags: 0, send_socket: ctx.send_socket });
    1
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
