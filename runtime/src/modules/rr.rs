//! rr: Record-Route and Route processing (OpenSER 1.3's `rr` module; RFC 3261 §16.4, §16.6, §16.12).
//!
//! - [`record_route_0`], [`record_route_1`], [`record_route_preset`], [`add_rr_param`]: our
//!   Record-Route, `Record-Route: <sip:HOST[:PORT][;transport=…];lr[;ftag=…][params]>`, written
//!   as the first header line of the request (RFC 3261 §16.6 step 4: "before any existing
//!   Record-Route header field values").
//! - [`loose_route`]: the Route set of a received request (§16.4), including the recovery from
//!   a strict router upstream and the translation for a strict router downstream (§16.6 step 6,
//!   §16.12.1).
//! - [`check_route_param`], [`is_direction`]: what the Route URI that `loose_route` consumed
//!   (ours) carried.
//!
//! "Ours" is [`is_ours`]: a SIP URI whose host and port (the scheme's default when absent) are
//! one of our sockets (`ctx.locals`, by address or advertised address), or whose host is one
//! of `ctx.aliases`.
//!
//! Per-message state (whether this request was record-routed, the parameters `add_rr_param`
//! queued before `record_route`, the parameters of the Route URI `loose_route` consumed) is
//! what OpenSER keeps in static variables tagged with the message id: here [`RrState`], in
//! `ctx.rr`, which tm keeps with the rest of the request's state for a failure route.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use bytes::Bytes;

use crate::proxy::{parse_ip, uri_ip, Local, Transport};
use crate::script::args::{Format, Regex};
use crate::script::{Ctx, Value};
use crate::sip::uri::{self, Scheme, Uri};
use crate::sip::values::{split_list, NameAddr};
use crate::sip::{edit, HeaderName, Message, Span};

/// OpenSER keeps parameters queued before `record_route` in a buffer of this size.
const MAX_PENDING_PARAMS: usize = 512;

// ------------------------------------------------------------------ state

/// rr's state for one request (`ctx.rr`). OpenSER keeps it beside the message being
/// routed; a failure route gets it back with the rest of the request's state.
#[derive(Clone, Debug, Default)]
pub struct RrState {
    /// Set once the request has our Record-Route.
    done: Option<Done>,
    /// Parameters `add_rr_param` queued before `record_route`.
    pending: String,
    /// The parameters (with their leading `;`) of our Route URI that `loose_route` consumed.
    routed: Option<String>,
    /// With `enable_double_rr`, what [`double_record_route`] needs when the request is sent.
    double: Option<Box<DoubleRr>>,
}

/// Who wrote our Record-Route: `record_route` (then `add_rr_param` can still add to it) or
/// `record_route_preset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Done {
    Rr,
    Preset,
}

/// The text `record_route` inserted, where its address ends in it, and the two parts of the
/// outbound Record-Route around its address (the suffix grows with `add_rr_param`).
#[derive(Clone, Debug)]
struct DoubleRr {
    inbound: String,
    addr_end: usize,
    prefix: String,
    suffix: String,
}

// ------------------------------------------------------------------ ours

/// Whether a URI names this proxy, as OpenSER's `check_self` for the rr module sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mine {
    No,
    Yes,
    /// Ours by host and port, but its user is the `ignore_user` parameter (OpenSER builds
    /// with `ENABLE_USER_CHECK`): treated as someone else's.
    IgnoredUser,
}

/// Whether `uri` is ours: a SIP or SIPS URI whose host is one of our addresses (or advertised
/// addresses) and whose port — 5060, or 5061 for `sips:` and `transport=tls`, when absent — is
/// that socket's; or whose host is one of `ctx.aliases` (any port, unless the alias is written
/// `host:port`). The transport is not compared (OpenSER matches all protocols).
pub fn is_ours(ctx: &Ctx, uri: &Uri) -> bool {
    mine(ctx, uri) == Mine::Yes
}

fn mine(ctx: &Ctx, uri: &Uri) -> Mine {
    if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips) || uri.host_text.is_empty() {
        return Mine::No;
    }
    let tls = uri.scheme == Scheme::Sips || uri.transport().is_some_and(|t| t.eq_ignore_ascii_case("tls"));
    let port = uri.port.unwrap_or(if tls { 5061 } else { 5060 });
    if !host_port_is_ours(ctx.locals, ctx.aliases, uri.host_text, uri_ip(uri), port) {
        return Mine::No;
    }
    let ignored = ignore_user(ctx);
    match (ignored, uri.user) {
        (Some(ignored), Some(user)) if !ignored.is_empty() && ignored == user => Mine::IgnoredUser,
        _ => Mine::Yes,
    }
}

/// rr's modparams, read once per proxy ([`crate::script::ModuleSettings`]).
pub struct Settings {
    /// `ignore_user`, when set to a string.
    ignore_user: Option<String>,
    add_username: bool,
    append_fromtag: bool,
    enable_full_lr: bool,
    enable_double_rr: bool,
}

impl Settings {
    fn read(params: &crate::script::ModParams) -> Settings {
        Settings {
            ignore_user: match params.get("rr", "ignore_user") {
                Value::Str(s) => Some(s),
                _ => None,
            },
            add_username: params.int("rr", "add_username") != 0,
            append_fromtag: params.int("rr", "append_fromtag") != 0,
            enable_full_lr: params.int("rr", "enable_full_lr") != 0,
            enable_double_rr: params.int("rr", "enable_double_rr") != 0,
        }
    }
}

fn settings<'c>(ctx: &Ctx<'c>) -> &'c Settings {
    ctx.config.rr.get_or_read(&ctx.config.params, Settings::read)
}

fn ignore_user<'c>(ctx: &Ctx<'c>) -> Option<&'c str> {
    settings(ctx).ignore_user.as_deref()
}

/// `host` (a name, an IPv4 address or a bracketed IPv6 reference; `ip`, what `parse_ip` makes
/// of it) and `port` are one of our sockets or aliases.
fn host_port_is_ours(locals: &[Local], aliases: &[String], host: &str, ip: Option<IpAddr>, port: u16) -> bool {
    let ip = ip.map(|ip| ip.to_canonical());
    let same_name = |a: &str, b: &str| a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'));
    let same_host = |ours: &str| match (ip, parse_ip(ours)) {
        (Some(a), Some(b)) => a == b.to_canonical(),
        (None, None) => same_name(host, ours),
        _ => false,
    };
    let by_socket = locals.iter().any(|l| {
        let by_addr = ip == Some(l.addr.ip().to_canonical()) && port == l.addr.port();
        let by_advertised = l.advertised.as_ref().is_some_and(|(h, p)| *p == port && same_host(h));
        by_addr || by_advertised
    });
    by_socket
        || aliases.iter().any(|a| match a.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u16>().is_ok_and(|p| p == port) && same_host(h)
            }
            _ => same_host(a),
        })
}

/// The local socket a URI of ours names (for the second Record-Route of a pair): its host and
/// port, and its `transport` parameter when it has one.
fn local_named_by(ctx: &Ctx, uri: &Uri) -> Option<std::net::SocketAddr> {
    let tls = uri.scheme == Scheme::Sips;
    let transport = match uri.transport() {
        Some(t) => Some(Transport::parse(t)?),
        None => tls.then_some(Transport::Tls),
    };
    let port = uri.port.unwrap_or(if transport == Some(Transport::Tls) { 5061 } else { 5060 });
    let ip = uri_ip(uri);
    ctx.locals
        .iter()
        .filter(|l| transport.is_none_or(|t| t == l.transport))
        .find(|l| host_port_is_ours(std::slice::from_ref(l), &[], uri.host_text, ip, port))
        .map(|l| l.addr)
}

// ------------------------------------------------------------------ Record-Route

/// Where our Record-Route goes: the request line's line end (`at`, and the terminator
/// itself), so that the header comes out first whatever else is inserted at the first header.
///
/// `record_route` inserts `<terminator>Record-Route: <sip:…;lr…` at `at` and replaces the
/// terminator's first byte by `>` and that byte: the original terminator ends our line. An
/// `add_rr_param` after it inserts at `at` too, which the edits put after the earlier insert
/// and before the replacement — inside the `<…>`.
fn rr_anchor(msg: &Message) -> Option<(usize, &'static str)> {
    let p = msg.headers.first()?.line.start as usize;
    let b = msg.bytes();
    if p >= 2 && &b[p - 2..p] == b"\r\n" {
        Some((p - 2, "\r\n"))
    } else if p >= 1 && b[p - 1] == b'\n' {
        Some((p - 1, "\n"))
    } else {
        None
    }
}

/// The user part for our Record-Route when `add_username` is set: the original Request-URI's,
/// else (none there) the rewritten one's. With `ignore_user` set and equal to it, its first
/// character is changed (`x`↔`y`) so that `loose_route` still treats the Route as ours.
fn rr_user(ctx: &Ctx) -> Result<String, ()> {
    if !settings(ctx).add_username {
        return Ok(String::new());
    }
    let original = uri::parse(ctx.original_uri()).map_err(|_| ())?;
    let mut user = original.user.unwrap_or("").to_string();
    if user.is_empty() && ctx.ruri.is_some() {
        user = uri::parse(ctx.request_uri()).map_err(|_| ())?.user.unwrap_or("").to_string();
    }
    if let Some(ignored) = ignore_user(ctx) {
        if !ignored.is_empty() && ignored == user {
            let first = if user.starts_with('x') { "y" } else { "x" };
            user.replace_range(..1, first);
        }
    }
    Ok(user)
}

/// `;ftag=<From tag>` when `append_fromtag` is set and the From has a tag. A tag is a token,
/// which may hold `%` and `` ` ``; a URI parameter may not (raw), so those two are escaped.
/// (OpenSER copies the tag as it is, which makes an invalid URI of such a tag.)
fn ftag_param<'c>(ctx: &'c Ctx) -> FtagParam<'c> {
    let tag = if settings(ctx).append_fromtag { ctx.msg.from_tag.map_or("", |t| ctx.msg.text(t)) } else { "" };
    FtagParam(tag)
}

/// [`ftag_param`], written where it is formatted.
struct FtagParam<'a>(&'a str);

impl FtagParam<'_> {
    fn push_to(&self, line: &mut edit::Line) {
        if self.0.is_empty() {
            return;
        }
        line.push(b";ftag=");
        let mut rest = self.0.as_bytes();
        while let Some(at) = rest.iter().position(|&b| b == b'%' || b == b'`') {
            line.push(&rest[..at]).push(if rest[at] == b'%' { b"%25" } else { b"%60" });
            rest = &rest[at + 1..];
        }
        line.push(rest);
    }
}

impl fmt::Display for FtagParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = edit::Line::new();
        self.push_to(&mut line);
        line.write_to(f)
    }
}

fn lr_param(ctx: &Ctx) -> &'static str {
    if settings(ctx).enable_full_lr {
        ";lr=on"
    } else {
        ";lr"
    }
}

/// `host[:port][;transport=…]` of the socket the request came in on: its advertised address
/// when it has one; the port left out when it is 5060 and the transport when it is UDP, as
/// OpenSER writes them.
///
/// OpenSER 1.3 writes the socket's real address even when `advertised_address` is set (it
/// advertises only in Via); serc writes the advertised one, which is where the other side can
/// reach us (a Record-Route behind a NAT would otherwise carry a private address).
fn our_address<'c>(ctx: &'c Ctx) -> AddressText<'c> {
    let local = ctx
        .locals
        .iter()
        .find(|l| l.addr == ctx.src.local && l.transport == ctx.src.transport)
        .or_else(|| ctx.locals.iter().find(|l| l.addr == ctx.src.local));
    address_text(local, ctx.src.local, ctx.src.transport)
}

/// `host[:port][;transport=…]` of a socket (`local`, else `addr` over `transport`), as
/// [`our_address`] writes it.
fn address_text(local: Option<&Local>, addr: std::net::SocketAddr, transport: Transport) -> AddressText<'_> {
    let (host, port) = match local.and_then(|l| l.advertised.as_ref()) {
        Some((host, port)) => (Host::Name(host), *port),
        None => (Host::Ip(addr.ip()), addr.port()),
    };
    AddressText { host, port, transport: local.map_or(transport, |l| l.transport) }
}

/// [`address_text`], written where it is formatted.
struct AddressText<'a> {
    host: Host<'a>,
    port: u16,
    transport: Transport,
}

enum Host<'a> {
    Name(&'a str),
    Ip(std::net::IpAddr),
}

impl AddressText<'_> {
    fn push_to(&self, line: &mut edit::Line) {
        match self.host {
            Host::Name(host) => {
                line.push_host(host);
            }
            Host::Ip(ip) if ip.is_ipv6() => {
                line.push(b"[").push_ip(ip).push(b"]");
            }
            Host::Ip(ip) => {
                line.push_ip(ip);
            }
        }
        if self.port != 5060 {
            line.push(b":").push_decimal(usize::from(self.port));
        }
        if self.transport != Transport::Udp {
            line.push(b";transport=").push(self.transport.name().as_bytes());
        }
    }
}

impl fmt::Display for AddressText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = edit::Line::new();
        self.push_to(&mut line);
        line.write_to(f)
    }
}

/// The checks both insertions make: a request, not record-routed yet, with a place for it.
fn may_record_route(ctx: &Ctx, what: &str) -> Option<(usize, &'static str)> {
    if !ctx.msg.is_request() {
        tracing::error!("{what}: a reply cannot be record-routed");
        return None;
    }
    if ctx.rr.done.is_some() {
        tracing::error!("{what}: double attempt to record-route");
        return None;
    }
    let anchor = rr_anchor(ctx.msg);
    if anchor.is_none() {
        tracing::error!("{what}: no header to insert the Record-Route before");
    }
    anchor
}

fn insert_record_route(ctx: &mut Ctx, params: Option<&str>) -> i32 {
    let Some((at, term)) = may_record_route(ctx, "record_route") else { return -1 };
    let Ok(user) = rr_user(ctx) else {
        tracing::error!("record_route: the Request-URI cannot be parsed for its user");
        return -1;
    };
    let pending = std::mem::take(&mut ctx.rr.pending);
    let at_sign = if user.is_empty() { "" } else { "@" };
    let (lr, ftag, params) = (lr_param(ctx), ftag_param(ctx), params.unwrap_or(""));
    let address = our_address(ctx);
    let mut line = edit::Line::new();
    line.push(term.as_bytes()).push(b"Record-Route: <sip:").push(user.as_bytes()).push(at_sign.as_bytes());
    address.push_to(&mut line);
    line.push(lr.as_bytes());
    ftag.push_to(&mut line);
    line.push(params.as_bytes()).push(pending.as_bytes());
    let text = line.bytes();
    // What the double Record-Route needs is kept only when the request may
    // leave by another socket (address or transport) than it came in on:
    // with one socket it never does, and nothing is stored.
    let other_realm = ctx.locals.iter().any(|l| l.addr != ctx.src.local || l.transport != ctx.src.transport);
    if settings(ctx).enable_double_rr && other_realm {
        let prefix = format!("{term}Record-Route: <sip:{user}{at_sign}");
        let suffix = format!("{lr}{ftag}{params}{pending}");
        let inbound = format!("{prefix}{address}{suffix}");
        let addr_end = inbound.len() - suffix.len();
        ctx.rr.double = Some(Box::new(DoubleRr { inbound, addr_end, prefix, suffix }));
    }
    // The `>` goes in by replacing the first byte of the next line with itself after it:
    // what `add_rr_param` inserts at `at` later lands inside the brackets.
    let close = ctx.msg.bytes()[at];
    ctx.edits.insert(at, text);
    ctx.edits.replace(at..at + 1, Bytes::from_static(&CLOSE[usize::from(close)]));
    ctx.rr.done = Some(Done::Rr);
    1
}

/// OpenSER's double record-route (`enable_double_rr`, on by default), done when the
/// request is sent and the socket it leaves by is known: when that socket differs from
/// the one it came in on (address, port or transport — different "realms"), a second
/// Record-Route with the outbound socket's address goes above ours, and both get
/// `;r2=on`, so that each side of the proxy routes back through the socket it reaches.
/// Same socket: the one Record-Route `record_route` wrote, unchanged. `edits` are the
/// edits of the copy being sent; `out` is the socket it leaves by. Called by the core's
/// `forward` (and tm's relay); nothing to do unless `record_route` ran with the
/// parameter on.
pub fn double_record_route(ctx: &Ctx, out: &Local, edits: &mut crate::sip::Edits) {
    if !double_record_route_due(ctx, out) {
        return;
    }
    let Some(DoubleRr { inbound, addr_end, prefix, suffix }) = ctx.rr.double.as_deref() else { return };
    let Some((at, _)) = rr_anchor(ctx.msg) else { return };
    let addr_end = (*addr_end).min(inbound.len());
    if !inbound.is_char_boundary(addr_end) {
        return;
    }
    let marked = format!("{}{R2}{}", &inbound[..addr_end], &inbound[addr_end..]);
    if !edits.retext_insert(at, inbound.as_bytes(), Bytes::from(marked)) {
        tracing::error!("record_route: our Record-Route is not in the message any more; no double Record-Route");
        return;
    }
    let outbound = format!("{prefix}{}{R2}{suffix}>", address_text(Some(out), out.addr, out.transport));
    edits.insert_first(at, Bytes::from(outbound));
}

/// Whether [`double_record_route`] has anything to do for a request leaving by `out`:
/// `record_route` stored what it needs, and `out` is another socket than the one the
/// request came in on.
pub fn double_record_route_due(ctx: &Ctx, out: &Local) -> bool {
    let same_realm = out.addr == ctx.src.local && out.transport == ctx.src.transport;
    !same_realm && ctx.rr.double.is_some()
}

/// `>` followed by each possible byte: the text that closes our Record-Route in place of
/// the byte after it (see `insert_record_route`), without an allocation.
static CLOSE: [[u8; 2]; 256] = {
    let mut table = [[b'>', 0]; 256];
    let mut b = 0;
    while b < 256 {
        table[b][1] = b as u8;
        b += 1;
    }
    table
};

/// The parameter marking the two Record-Routes of a double record-route.
const R2: &str = ";r2=on";

/// `record_route()`: inserts our Record-Route as the first header line:
/// `Record-Route: <sip:HOST[:PORT][;transport=…];lr[;ftag=TAG]>` — the address of the socket
/// the request came in on, `;lr=on` with `enable_full_lr`, the From tag with `append_fromtag`
/// (the default), the R-URI's user with `add_username`, and the parameters `add_rr_param`
/// queued. 1, or -1 when the request already has our Record-Route (OpenSER: "double attempt
/// to record-route").
///
/// With `enable_double_rr` (the default) a second Record-Route, for the socket the request
/// leaves by, is added when it is sent by another socket than it came in on (both marked
/// `;r2=on`): see [`double_record_route`].
pub fn record_route_0(ctx: &mut Ctx) -> i32 {
    insert_record_route(ctx, None)
}

/// `record_route(params)`: as `record_route()`, with `params` (`";name=value"`, pseudo-variables
/// expanded) after the From tag.
pub fn record_route_1(ctx: &mut Ctx, params: &Format) -> i32 {
    let params = params.eval(ctx);
    insert_record_route(ctx, Some(&params))
}

/// `record_route_preset(address)`: inserts `Record-Route: <sip:[USER@]ADDRESS[;ftag=TAG];lr>`
/// as the first header line, `address` (`"1.2.3.4:5090"`, pseudo-variables expanded) as it is.
/// 1, or -1 when the request already has our Record-Route.
///
/// OpenSER always writes `sip:` before the address; an address that already starts with
/// `sip:` or `sips:` is taken as the whole URI here instead of becoming `sip:sip:…`.
pub fn record_route_preset(ctx: &mut Ctx, address: &Format) -> i32 {
    let address = address.eval(ctx);
    let Some((at, term)) = may_record_route(ctx, "record_route_preset") else { return -1 };
    let Ok(user) = rr_user(ctx) else {
        tracing::error!("record_route_preset: the Request-URI cannot be parsed for its user");
        return -1;
    };
    let lower = address.get(..5).unwrap_or(&address).to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("sip:") {
        address.split_at(4)
    } else if lower.starts_with("sips:") {
        address.split_at(5)
    } else {
        ("sip:", address.as_str())
    };
    let mut text = String::with_capacity(64 + address.len());
    text.push_str(term);
    text.push_str("Record-Route: <");
    text.push_str(scheme);
    if !user.is_empty() {
        text.push_str(&user);
        text.push('@');
    }
    text.push_str(rest);
    let _ = write!(text, "{}", ftag_param(ctx));
    text.push_str(lr_param(ctx));
    text.push('>');
    ctx.edits.insert(at, Bytes::from(text));
    ctx.rr.done = Some(Done::Preset);
    1
}

/// `add_rr_param(param)`: adds `param` (`";name=value"`, pseudo-variables expanded) to our
/// Record-Route URI — at its end if `record_route` already wrote it, else queued for the
/// `record_route` to come. 1; -1 when the queue would exceed OpenSER's 512 bytes.
///
/// After `record_route_preset` the parameter is not added (as in OpenSER, where it waits for
/// a `record_route` that can no longer happen): 1 and a warning.
pub fn add_rr_param(ctx: &mut Ctx, param: &Format) -> i32 {
    let param = param.eval(ctx);
    match ctx.rr.done {
        Some(Done::Rr) => {
            let Some((at, _)) = rr_anchor(ctx.msg) else { return -1 };
            if let Some(double) = ctx.rr.double.as_mut() {
                double.suffix.push_str(&param);
            }
            ctx.edits.insert(at, Bytes::from(param));
            1
        }
        Some(Done::Preset) => {
            tracing::warn!(param, "add_rr_param: the Record-Route was preset; the parameter is not added");
            1
        }
        None => {
            if ctx.rr.pending.len() + param.len() > MAX_PENDING_PARAMS {
                tracing::error!("add_rr_param: more than {MAX_PENDING_PARAMS} bytes of parameters");
                return -1;
            }
            ctx.rr.pending.push_str(&param);
            1
        }
    }
}

// ------------------------------------------------------------------ Route

/// A request's Route values, in order: one or two inline (ours, and the next hop's or the
/// other of a double Record-Route), more on the heap.
type RouteSet<'m> = smallvec::SmallVec<[RouteValue<'m>; 2]>;

/// One value of the Route set as received, its URI parsed, and whether
/// `loose_route` removes it.
#[derive(Clone, Debug)]
struct RouteValue<'m> {
    /// Index of its header line in `msg.headers`.
    header: usize,
    /// The value (`<sip:…>;params`).
    value: Span,
    /// The URI inside `<>`, as written.
    text: &'m str,
    uri: Uri<'m>,
    gone: bool,
}

/// Why the Route set cannot be read.
enum BadRoute<'m> {
    /// A value that is not a name-addr.
    NameAddr(&'static str),
    /// A URI that does not parse.
    Uri(&'m str, uri::UriError),
}

/// The Route set: every value of every Route header line, in order, leaving out lines and
/// values the edits already removed, each URI parsed.
fn route_set<'m>(ctx: &Ctx<'m>, set: &mut RouteSet<'m>) -> Result<(), BadRoute<'m>> {
    let msg: &'m Message = ctx.msg;
    let buf = msg.bytes();
    for (i, h) in msg.headers.iter().enumerate() {
        if h.name != HeaderName::Route || ctx.edits.deletes(h.line.range()) {
            continue;
        }
        for v in split_list(buf, h.value) {
            if ctx.edits.deletes(v.range()) {
                continue;
            }
            let na = NameAddr::parse(buf, v).map_err(BadRoute::NameAddr)?;
            let text = msg.text(na.uri);
            let uri = uri::parse(text).map_err(|e| BadRoute::Uri(text, e))?;
            set.push(RouteValue { header: i, value: v, text, uri, gone: false });
        }
    }
    Ok(())
}

/// Records the removal of the Route values marked `gone`: a header line whose values all go
/// is removed whole; otherwise each run of values goes with the separator after it (or,
/// ending the line, the one before it).
fn remove_routes(ctx: &mut Ctx, set: &[RouteValue]) {
    let mut start = 0;
    while start < set.len() {
        let header = set[start].header;
        let end = set[start..].iter().position(|r| r.header != header).map_or(set.len(), |n| start + n);
        let values = &set[start..end];
        if values.iter().all(|v| v.gone) {
            ctx.edits.delete(ctx.msg.headers[header].line.range());
        } else {
            let mut a = 0;
            while a < values.len() {
                if !values[a].gone {
                    a += 1;
                    continue;
                }
                let b = (a..values.len()).take_while(|&k| values[k].gone).last().unwrap_or(a);
                let range = if b + 1 == values.len() {
                    values[a - 1].value.end as usize..values[b].value.end as usize
                } else {
                    values[a].value.start as usize..values[b + 1].value.start as usize
                };
                ctx.edits.delete(range);
                a = b + 1;
            }
        }
        start = end;
    }
}

/// Whether the URI carries OpenSER's `r2` parameter (one of a pair of Record-Routes).
fn is_double(ctx: &Ctx, uri: &Uri) -> bool {
    settings(ctx).enable_double_rr && uri.param("r2").is_some()
}

/// `loose_route()`: routes a request by its Route set (RFC 3261 §16.4, §16.6 step 6).
///
/// - No Route header: -1.
/// - In-dialog (a To tag) with a Request-URI of ours: the previous hop was a strict router,
///   which put our Record-Route URI in the Request-URI. The Request-URI becomes the last Route
///   value, which is removed; then as below for the Route values left (§16.4).
/// - The first Route value, if ours, is removed (and the second of an OpenSER pair marked
///   `;r2`, whose socket becomes the sending socket). Its parameters are kept for
///   [`check_route_param`] and [`is_direction`].
/// - The next Route value is the next hop. A loose router (`;lr`) becomes `$du`, the
///   Request-URI stays. A strict router becomes the Request-URI and is removed, and the old
///   Request-URI goes to the end of the Route set (§16.6 step 6).
///
/// 1 when the next hop comes from the Route set — or when our own Route was the only one in an
/// in-dialog request (the Request-URI is the next hop); -1 when there was no Route, for an
/// out-of-dialog request whose only Route was ours (removed: routing continues as for a new
/// request, OpenSER's one exception), or on a malformed Route or Request-URI.
///
/// Differences from OpenSER 1.3, following the RFC:
/// - after a strict router, our first Route value is removed whenever it is ours (§16.4); 1.3
///   removed it only when it was the second of an `;r2` pair;
/// - a `maddr` stays in the URI (the next hop is found by it when sending); 1.3 replaced the
///   URI by `sip:MADDR:PORT`, losing its user, transport and other parameters;
/// - the Request-URI appended for a strict router is the current one (rewritten by the script
///   if it was); 1.3 appended the received one;
/// - the partner of an `;r2` Route of ours is removed only if it is ours too; 1.3 removed the
///   next value whatever it was.
pub fn loose_route(ctx: &mut Ctx) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let mut set = RouteSet::new();
    match route_set(ctx, &mut set) {
        Ok(()) => {}
        Err(BadRoute::NameAddr(why)) => {
            tracing::error!(why, "loose_route: a malformed Route header");
            return -1;
        }
        Err(BadRoute::Uri(text, e)) => {
            tracing::error!(uri = text, error = %e, "loose_route: a malformed Route URI");
            return -1;
        }
    };
    if set.is_empty() {
        return -1;
    }
    // The Request-URI: the received one is borrowed from the message, one the
    // script rewrote is copied (the context changes below).
    let msg: &Message = ctx.msg;
    let ruri_text: std::borrow::Cow<'_, str> = match &ctx.ruri {
        Some(r) => r.clone().into(),
        None => msg.request_uri().unwrap_or("").into(),
    };
    let Ok(ruri) = uri::parse(&ruri_text) else {
        tracing::error!(uri = %ruri_text, "loose_route: a malformed Request-URI");
        return -1;
    };
    let preloaded = msg.to_tag.is_none_or(|t| t.is_empty());
    if !preloaded && mine(ctx, &ruri) == Mine::Yes {
        // §16.4: the previous hop was a strict router.
        let routed = ruri.params.to_string();
        let last = set.len() - 1;
        let mut new_ruri = set[last].text;
        set[last].gone = true;
        let mut next = 0;
        if next < last && mine(ctx, &set[0].uri) == Mine::Yes {
            if is_double(ctx, &set[0].uri) {
                ctx.send_socket = local_named_by(ctx, &set[0].uri).or(ctx.send_socket);
            }
            set[0].gone = true;
            next = 1;
        }
        if next < last {
            if set[next].uri.lr() {
                ctx.dst_uri = Some(set[next].text.to_string());
            } else {
                // A strict router next: it becomes the Request-URI, and the Request-URI just
                // recovered goes back to the end of the Route set — where it is.
                new_ruri = set[next].text;
                set[next].gone = true;
                set[last].gone = false;
            }
        }
        ctx.ruri = Some(new_ruri.to_string());
        remove_routes(ctx, &set);
        ctx.rr.routed = Some(routed);
        return 1;
    }
    let mut next = 0;
    match mine(ctx, &set[0].uri) {
        Mine::IgnoredUser => return -1,
        Mine::No => {}
        Mine::Yes => {
            ctx.rr.routed = Some(set[0].uri.params.to_string());
            set[0].gone = true;
            next = 1;
            if is_double(ctx, &set[0].uri) && next < set.len() && mine(ctx, &set[1].uri) == Mine::Yes {
                ctx.send_socket = local_named_by(ctx, &set[1].uri).or(ctx.send_socket);
                set[1].gone = true;
                next = 2;
            }
            if next == set.len() {
                remove_routes(ctx, &set);
                return if preloaded { -1 } else { 1 };
            }
        }
    }
    if set[next].uri.lr() {
        ctx.dst_uri = Some(set[next].text.to_string());
    } else {
        // §16.6 step 6: a strict router next. The Request-URI goes to the end of the Route
        // set, the router's URI becomes the Request-URI.
        let Some(last_header) = msg.headers.last() else { return -1 };
        let at = last_header.line.end as usize;
        ctx.edits.insert(at, Bytes::from(format!("Route: <{ruri_text}>\r\n")));
        ctx.ruri = Some(set[next].text.to_string());
        set[next].gone = true;
    }
    remove_routes(ctx, &set);
    1
}

/// The parameters of our Route URI that `loose_route` consumed (with their leading `;`).
fn routed_params<'c>(ctx: &'c Ctx) -> Option<&'c str> {
    ctx.rr.routed.as_deref().filter(|s| !s.is_empty())
}

/// `check_route_param(re)`: 1 when the parameters of our Route URI that `loose_route`
/// consumed (`;lr;ftag=…;foo=bar`, with the first `;`) match `re` (anywhere, as `regexec`
/// does); -1 when they do not, or `loose_route` consumed no Route of ours.
pub fn check_route_param(ctx: &mut Ctx, re: &Regex) -> i32 {
    match routed_params(ctx) {
        Some(params) if re.is_match(params) => 1,
        _ => -1,
    }
}

/// `is_direction("downstream" | "upstream")`: whether the request flows the way the dialog's
/// initial request did (downstream: its From tag is the `ftag` of our Route URI) or the other
/// way (upstream: the tags differ). Without an `ftag` (no `loose_route`, no Route of ours,
/// `append_fromtag` off when the dialog began) or without a From tag the request counts as
/// downstream, as in OpenSER. 1 when `direction` is the flow, else -1 (also for a direction
/// that is neither word; OpenSER refuses it at start-up).
pub fn is_direction(ctx: &mut Ctx, direction: &str) -> i32 {
    let want_upstream = if direction.eq_ignore_ascii_case("upstream") {
        true
    } else if direction.eq_ignore_ascii_case("downstream") {
        false
    } else {
        tracing::error!(direction, "is_direction: the direction is \"upstream\" or \"downstream\"");
        return -1;
    };
    let ftag = routed_params(ctx).and_then(|p| {
        p.split(';').find_map(|param| {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            name.trim().eq_ignore_ascii_case("ftag").then(|| uri::unescape(value.trim()).into_owned())
        })
    });
    let from_tag = ctx.msg.from_tag.map_or("", |t| ctx.msg.text(t));
    let upstream = match ftag {
        Some(ftag) if !ftag.is_empty() && !from_tag.is_empty() => ftag != from_tag,
        _ => false,
    };
    if upstream == want_upstream {
        1
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::modules::maxfwd::mf_process_maxfwd_header;
    use crate::proxy::{self, Source};
    use crate::script::{Config, Vars};
    use crate::sip::Framing;

    const US: &str = "192.0.2.10";
    const FROM_TAG: &str = "9fxced76sl";

    fn invite() -> String {
        format!(
            "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9\r\n\
             Max-Forwards: 70\r\n\
             From: Alice <sip:alice@atlanta.example.com>;tag={FROM_TAG}\r\n\
             To: Bob <sip:bob@biloxi.example.com>\r\n\
             Call-ID: 3848276298220188511@atlanta.example.com\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:alice@192.0.2.1>\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    /// An in-dialog BYE (a To tag unless `preloaded`) to `ruri` with these Route lines,
    /// from the caller (From tag `FROM_TAG`) or, `upstream`, from the callee.
    fn bye(ruri: &str, routes: &[&str], preloaded: bool, upstream: bool) -> String {
        let (from, to) = (
            format!("<sip:alice@atlanta.example.com>;tag={FROM_TAG}"),
            format!("<sip:bob@biloxi.example.com>{}", if preloaded { "" } else { ";tag=314159" }),
        );
        let (from, to) = if upstream { (to, from) } else { (from, to) };
        let mut text = format!(
            "BYE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds7\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: {to}\r\n\
             Call-ID: 3848276298220188511@atlanta.example.com\r\n\
             CSeq: 2 BYE\r\n"
        );
        for r in routes {
            text.push_str(&format!("Route: {r}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }

    /// Our sockets: UDP and TCP on `US:5060`, UDP on a second interface at
    /// 198.51.100.10:5070, TLS on `US:5061`; alias `proxy.example.com`.
    fn config(params: &[(&str, i64)]) -> Config {
        let mut config = Config {
            locals: vec![
                Local::new(Transport::Udp, format!("{US}:5060").parse().unwrap()),
                Local::new(Transport::Tcp, format!("{US}:5060").parse().unwrap()),
                Local::new(Transport::Udp, "198.51.100.10:5070".parse().unwrap()),
                Local::new(Transport::Tls, format!("{US}:5061").parse().unwrap()),
            ],
            aliases: vec!["proxy.example.com".to_string()],
            ..Config::default()
        };
        for (name, value) in params {
            config.params.set("rr", name, Value::Int(*value));
        }
        config
    }

    fn src(transport: Transport, local: &str) -> Source {
        Source { transport, addr: "192.0.2.1:5060".parse().unwrap(), local: local.parse().unwrap() }
    }

    fn udp() -> Source {
        src(Transport::Udp, &format!("{US}:5060"))
    }

    /// What a call left: its code, the message as the next hop receives it, `$du`, the
    /// sending socket, and the rr state.
    struct Out {
        code: i32,
        sent: String,
        next: Message,
        du: Option<String>,
        send_socket: Option<SocketAddr>,
    }

    impl Out {
        fn ruri(&self) -> &str {
            self.next.request_uri().unwrap()
        }

        /// Every Route value the next hop sees, in order.
        fn routes(&self) -> Vec<String> {
            self.next.values(HeaderName::Route).map(|v| self.next.text(v).to_string()).collect()
        }

        /// The first header line.
        fn first_header(&self) -> &str {
            self.sent.split("\r\n").nth(1).unwrap()
        }
    }

    fn run_with(text: &str, config: &Config, src: Source, f: impl FnOnce(&mut Ctx) -> i32) -> Out {
        let msg = Message::parse(Bytes::from(text.to_string()), Framing::Datagram).expect("a valid request");
        let mut vars = Vars::default();
        let mut ctx = Ctx::new(&msg, src, config, &mut vars);
        let code = f(&mut ctx);
        let bytes = msg.write(&ctx.request_edits()).expect("the edits apply");
        let sent = String::from_utf8(bytes.to_vec()).unwrap();
        let next = Message::parse(bytes.freeze(), Framing::Datagram).expect("the next hop can parse it");
        Out { code, sent, next, du: ctx.dst_uri.clone(), send_socket: ctx.send_socket }
    }

    fn run(text: &str, f: impl FnOnce(&mut Ctx) -> i32) -> Out {
        run_with(text, &config(&[]), udp(), f)
    }

    fn fmt(text: &str) -> Format {
        Format::parse(text).unwrap()
    }

    // ------------------------------------------------------------ record_route

    #[test]
    fn record_route_writes_the_first_header_line_byte_for_byte() {
        let out = run(&invite(), record_route_0);
        assert_eq!(out.code, 1);
        let expected =
            invite().replacen("SIP/2.0\r\n", &format!("SIP/2.0\r\nRecord-Route: <sip:{US};lr;ftag={FROM_TAG}>\r\n"), 1);
        assert_eq!(out.sent, expected);
        let rr: Vec<String> = out.next.values(HeaderName::RecordRoute).map(|v| out.next.text(v).to_string()).collect();
        assert_eq!(rr, vec![format!("<sip:{US};lr;ftag={FROM_TAG}>")]);
    }

    #[test]
    fn double_record_route_when_the_request_leaves_by_another_socket() {
        use crate::modules::core;
        use crate::script::args::SocketSpec;
        let msg = Message::parse(Bytes::from(invite()), Framing::Datagram).unwrap();
        // record_route, add_rr_param, then forward to `to` (from `socket` if given).
        let send = |params: &[(&str, i64)], to: &str, socket: Option<&str>| -> Vec<String> {
            let config = config(params);
            let mut vars = Vars::default();
            let mut ctx = Ctx::new(&msg, udp(), &config, &mut vars);
            assert_eq!(record_route_0(&mut ctx), 1);
            assert_eq!(add_rr_param(&mut ctx, &fmt(";nat=yes")), 1);
            ctx.send_socket = socket.map(|s| s.parse().unwrap());
            assert_eq!(core::forward_1(&mut ctx, &SocketSpec::parse(to).unwrap()), 1);
            let sent = String::from_utf8(ctx.out[0].bytes.to_vec()).unwrap();
            let next = Message::parse(ctx.out[0].bytes.clone(), Framing::Datagram).expect("it parses");
            assert_eq!(next.values(HeaderName::RecordRoute).count(), sent.matches("Record-Route:").count());
            sent.lines().filter(|l| l.starts_with("Record-Route:")).map(str::to_string).collect()
        };
        // In by UDP, out by TCP: the outbound socket's Record-Route above ours, both r2.
        assert_eq!(
            send(&[], "tcp:192.0.2.99:5060", None),
            vec![
                format!("Record-Route: <sip:{US};transport=tcp;r2=on;lr;ftag={FROM_TAG};nat=yes>"),
                format!("Record-Route: <sip:{US};r2=on;lr;ftag={FROM_TAG};nat=yes>"),
            ]
        );
        // Out by the other interface (another address and port).
        assert_eq!(
            send(&[], "udp:192.0.2.99:5060", Some("198.51.100.10:5070")),
            vec![
                format!("Record-Route: <sip:198.51.100.10:5070;r2=on;lr;ftag={FROM_TAG};nat=yes>"),
                format!("Record-Route: <sip:{US};r2=on;lr;ftag={FROM_TAG};nat=yes>"),
            ]
        );
        // Out by the socket it came in on: one Record-Route, no r2.
        let single = vec![format!("Record-Route: <sip:{US};lr;ftag={FROM_TAG};nat=yes>")];
        assert_eq!(send(&[], "udp:192.0.2.99:5060", None), single);
        // enable_double_rr off: one, whatever the socket.
        assert_eq!(send(&[("enable_double_rr", 0)], "tcp:192.0.2.99:5060", None), single);
        // A proxy with one socket stores nothing for a second Record-Route.
        let mut one = config(&[]);
        one.locals.truncate(1);
        let mut vars = Vars::default();
        let mut ctx = Ctx::new(&msg, udp(), &one, &mut vars);
        assert_eq!(record_route_0(&mut ctx), 1);
        assert!(ctx.rr.double.is_none());
        assert_eq!(ctx.rr.done, Some(Done::Rr));
    }

    #[test]
    fn record_route_names_the_inbound_socket_with_its_port_and_transport() {
        let out = run_with(&invite(), &config(&[]), src(Transport::Tcp, &format!("{US}:5060")), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:{US};transport=tcp;lr;ftag={FROM_TAG}>"));
        let out = run_with(&invite(), &config(&[]), src(Transport::Udp, "198.51.100.10:5070"), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:198.51.100.10:5070;lr;ftag={FROM_TAG}>"));
        let out = run_with(&invite(), &config(&[]), src(Transport::Tls, &format!("{US}:5061")), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:{US}:5061;transport=tls;lr;ftag={FROM_TAG}>"));
        // IPv6, and an advertised address.
        let mut v6 = config(&[]);
        v6.locals.push(Local::new(Transport::Udp, "[2001:db8::10]:5060".parse().unwrap()));
        let out = run_with(&invite(), &v6, src(Transport::Udp, "[2001:db8::10]:5060"), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:[2001:db8::10];lr;ftag={FROM_TAG}>"));
        let mut nat = config(&[]);
        nat.locals[0].advertised = Some(("203.0.113.7".to_string(), 5080));
        let out = run_with(&invite(), &nat, udp(), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:203.0.113.7:5080;lr;ftag={FROM_TAG}>"));
    }

    #[test]
    fn record_route_follows_the_module_parameters() {
        let out = run_with(&invite(), &config(&[("enable_full_lr", 1)]), udp(), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:{US};lr=on;ftag={FROM_TAG}>"));
        let out = run_with(&invite(), &config(&[("append_fromtag", 0)]), udp(), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:{US};lr>"));
        let out = run_with(&invite(), &config(&[("add_username", 1)]), udp(), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:bob@{US};lr;ftag={FROM_TAG}>"));
        // No user in the received R-URI: the rewritten one's.
        let text = invite().replacen("INVITE sip:bob@biloxi.example.com", "INVITE sip:biloxi.example.com", 1);
        let out = run_with(&text, &config(&[("add_username", 1)]), udp(), |ctx| {
            ctx.ruri = Some("sip:carol@biloxi.example.com".into());
            record_route_0(ctx)
        });
        assert_eq!(out.first_header(), format!("Record-Route: <sip:carol@{US};lr;ftag={FROM_TAG}>"));
        // ignore_user: the user is altered so that the Route stays ours.
        let mut ignoring = config(&[("add_username", 1)]);
        ignoring.params.set("rr", "ignore_user", Value::str("bob"));
        let out = run_with(&invite(), &ignoring, udp(), record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:xob@{US};lr;ftag={FROM_TAG}>"));
    }

    #[test]
    fn record_route_with_parameters_and_add_rr_param_before_and_after() {
        let out = run(&invite(), |ctx| {
            assert_eq!(add_rr_param(ctx, &fmt(";nat=yes")), 1);
            assert_eq!(add_rr_param(ctx, &fmt(";cs=$cs")), 1);
            assert_eq!(record_route_1(ctx, &fmt(";m=$rm")), 1);
            assert_eq!(add_rr_param(ctx, &fmt(";late=1")), 1);
            add_rr_param(ctx, &fmt(";later=2"))
        });
        assert_eq!(out.code, 1);
        assert_eq!(
            out.first_header(),
            format!("Record-Route: <sip:{US};lr;ftag={FROM_TAG};m=INVITE;nat=yes;cs=1;late=1;later=2>")
        );
        // The queue is OpenSER's 512 bytes.
        let out = run(&invite(), |ctx| {
            let long = fmt(&format!(";p={}", "x".repeat(300)));
            assert_eq!(add_rr_param(ctx, &long), 1);
            add_rr_param(ctx, &long)
        });
        assert_eq!(out.code, -1);
    }

    #[test]
    fn record_route_stays_first_among_other_inserted_headers() {
        let text = invite().replace("Max-Forwards: 70\r\n", "");
        let out = run(&text, |ctx| {
            assert_eq!(mf_process_maxfwd_header(ctx, 70), 2);
            let code = record_route_0(ctx);
            let local = ctx.locals[0].clone();
            proxy::add_via(ctx.msg, &local, "z9hG4bKx", false, &mut ctx.edits);
            assert_eq!(add_rr_param(ctx, &fmt(";a=b")), 1);
            code
        });
        let lines: Vec<&str> = out.sent.split("\r\n").take(4).collect();
        assert_eq!(
            lines,
            vec![
                "INVITE sip:bob@biloxi.example.com SIP/2.0",
                &format!("Record-Route: <sip:{US};lr;ftag={FROM_TAG};a=b>"),
                "Max-Forwards: 70",
                &format!("Via: SIP/2.0/UDP {US}:5060;branch=z9hG4bKx"),
            ]
        );
    }

    #[test]
    fn record_route_keeps_a_bare_lf_message_consistent() {
        let text = invite().replace("\r\n", "\n");
        let out = run(&text, |ctx| {
            record_route_0(ctx);
            add_rr_param(ctx, &fmt(";x=1"))
        });
        assert!(out.sent.starts_with(&format!(
            "INVITE sip:bob@biloxi.example.com SIP/2.0\nRecord-Route: <sip:{US};lr;ftag={FROM_TAG};x=1>\nVia:"
        )));
    }

    #[test]
    fn record_route_twice_is_refused() {
        let out = run(&invite(), |ctx| {
            assert_eq!(record_route_0(ctx), 1);
            assert_eq!(record_route_preset(ctx, &fmt("1.2.3.4")), -1);
            record_route_1(ctx, &fmt(";a=1"))
        });
        assert_eq!(out.code, -1);
        assert_eq!(out.next.values(HeaderName::RecordRoute).count(), 1);
    }

    #[test]
    fn record_route_preset_writes_the_address_given() {
        let out = run(&invite(), |ctx| record_route_preset(ctx, &fmt("1.2.3.4:5090")));
        assert_eq!(out.code, 1);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:1.2.3.4:5090;ftag={FROM_TAG};lr>"));
        let out = run_with(&invite(), &config(&[("enable_full_lr", 1), ("add_username", 1)]), udp(), |ctx| {
            record_route_preset(ctx, &fmt("sip:$Ri;foo=1"))
        });
        assert_eq!(out.first_header(), format!("Record-Route: <sip:bob@{US};foo=1;ftag={FROM_TAG};lr=on>"));
        // add_rr_param after a preset adds nothing.
        let out = run(&invite(), |ctx| {
            record_route_preset(ctx, &fmt("1.2.3.4"));
            add_rr_param(ctx, &fmt(";x=1"))
        });
        assert_eq!(
            (out.code, out.first_header()),
            (1, format!("Record-Route: <sip:1.2.3.4;ftag={FROM_TAG};lr>").as_str())
        );
    }

    #[test]
    fn a_from_tag_with_characters_uris_escape_is_escaped() {
        let text = invite().replace(FROM_TAG, "a`b%c");
        let out = run(&text, record_route_0);
        assert_eq!(out.first_header(), format!("Record-Route: <sip:{US};lr;ftag=a%60b%25c>"));
        // … and is_direction unescapes it.
        let route = format!("<sip:{US};lr;ftag=a%60b%25c>");
        let text = bye("sip:bob@192.0.2.20", &[&route], false, false).replace(FROM_TAG, "a`b%c");
        let out = run(&text, |ctx| {
            assert_eq!(loose_route(ctx), 1);
            is_direction(ctx, "downstream")
        });
        assert_eq!(out.code, 1);
    }

    // ------------------------------------------------------------ ours

    #[test]
    fn ours_is_host_and_port_of_a_socket_or_an_alias() {
        let config = config(&[]);
        let msg = Message::parse(Bytes::from(invite()), Framing::Datagram).unwrap();
        let mut vars = Vars::default();
        let ctx = Ctx::new(&msg, udp(), &config, &mut vars);
        let ours = |ctx: &Ctx, u: &str| is_ours(ctx, &uri::parse(u).unwrap());
        for yes in [
            "sip:192.0.2.10",
            "sip:192.0.2.10:5060;lr",
            "sip:x@192.0.2.10;transport=tcp",
            "sip:198.51.100.10:5070;lr",
            "sips:192.0.2.10",
            "sip:192.0.2.10;transport=tls",
            "sip:proxy.example.com;lr",
            "sip:PROXY.example.com.:5999",
        ] {
            assert!(ours(&ctx, yes), "{yes}");
        }
        for no in [
            "sip:192.0.2.10:5070",
            "sip:198.51.100.10",
            "sips:198.51.100.10",
            "sip:192.0.2.11",
            "sip:example.com",
            "tel:+15551234",
        ] {
            assert!(!ours(&ctx, no), "{no}");
        }
        let mut with_port = config.clone();
        with_port.aliases = vec!["proxy.example.com:5080".into()];
        with_port.locals[0].advertised = Some(("sip.example.net".into(), 5090));
        let ctx = Ctx::new(&msg, udp(), &with_port, &mut vars);
        assert!(ours(&ctx, "sip:proxy.example.com:5080"));
        assert!(!ours(&ctx, "sip:proxy.example.com"));
        assert!(ours(&ctx, "sip:sip.example.net:5090"));
        assert!(!ours(&ctx, "sip:sip.example.net"));
    }

    // ------------------------------------------------------------ loose_route

    const P2: &str = "<sip:p2.example.com;lr>";
    const UA: &str = "sip:bob@192.0.2.20";

    fn ours_route(params: &str) -> String {
        format!("<sip:{US};lr;ftag={FROM_TAG}{params}>")
    }

    #[test]
    fn no_route_is_false() {
        let out = run(&bye(UA, &[], false, false), loose_route);
        assert_eq!((out.code, out.du), (-1, None));
        assert_eq!(out.sent, bye(UA, &[], false, false));
    }

    #[test]
    fn our_route_is_removed_and_the_next_loose_router_is_the_destination() {
        let ours = ours_route("");
        let out = run(&bye(UA, &[&ours, P2], false, false), loose_route);
        assert_eq!(out.code, 1);
        assert_eq!(out.du.as_deref(), Some("sip:p2.example.com;lr"));
        assert_eq!(out.ruri(), UA);
        assert_eq!(out.routes(), vec![P2]);
        assert_eq!(out.sent, bye(UA, &[P2], false, false));
        // The same in one header line, and with a third value after it.
        let line = format!("{ours}, {P2}");
        let out = run(&bye(UA, &[&line], false, false), loose_route);
        assert_eq!(out.sent, bye(UA, &[P2], false, false));
        let line = format!("{ours} ,{P2}, <sip:p3.example.com;lr>");
        let out = run(&bye(UA, &[&line], false, false), loose_route);
        assert_eq!(out.sent, bye(UA, &[&format!("{P2}, <sip:p3.example.com;lr>")], false, false));
    }

    #[test]
    fn a_route_not_ours_is_the_destination_and_stays() {
        let out = run(&bye(UA, &[P2, "<sip:p3.example.com;lr>"], true, false), loose_route);
        assert_eq!((out.code, out.du.as_deref()), (1, Some("sip:p2.example.com;lr")));
        assert_eq!(out.routes(), vec![P2, "<sip:p3.example.com;lr>"]);
        assert_eq!(out.ruri(), UA);
    }

    #[test]
    fn our_route_alone_in_dialog_is_true_and_preloaded_is_false() {
        let ours = ours_route("");
        let out = run(&bye(UA, &[&ours], false, false), loose_route);
        assert_eq!((out.code, out.du.clone(), out.routes().len()), (1, None, 0));
        assert_eq!(out.sent, bye(UA, &[], false, false));
        let out = run(&bye(UA, &[&ours], true, false), loose_route);
        assert_eq!((out.code, out.du.clone(), out.routes().len()), (-1, None, 0));
    }

    #[test]
    fn a_strict_router_next_gets_the_request_uri_and_the_old_one_goes_last() {
        let ours = ours_route("");
        let out =
            run(&bye(UA, &[&ours, "<sip:strict.example.com>", "<sip:p3.example.com;lr>"], false, false), loose_route);
        assert_eq!(out.code, 1);
        assert_eq!(out.du, None);
        assert_eq!(out.ruri(), "sip:strict.example.com");
        assert_eq!(out.routes(), vec!["<sip:p3.example.com;lr>".to_string(), format!("<{UA}>")]);
        // Preloaded, not ours at all.
        let out = run(&bye(UA, &["<sip:strict.example.com;maddr=192.0.2.99>"], true, false), loose_route);
        assert_eq!(out.code, 1);
        assert_eq!(out.ruri(), "sip:strict.example.com;maddr=192.0.2.99");
        assert_eq!(out.routes(), vec![format!("<{UA}>")]);
    }

    #[test]
    fn after_a_strict_router_the_request_uri_comes_from_the_last_route() {
        // The strict router upstream put our Record-Route URI in the Request-URI.
        let ruri = format!("sip:{US};lr;ftag={FROM_TAG};nat=yes");
        let out = run(&bye(&ruri, &[P2, &format!("<{UA}>")], false, false), |ctx| {
            let code = loose_route(ctx);
            assert_eq!(check_route_param(ctx, &Regex::new("nat=yes").unwrap()), 1);
            code
        });
        assert_eq!(out.code, 1);
        assert_eq!(out.ruri(), UA);
        assert_eq!(out.du.as_deref(), Some("sip:p2.example.com;lr"));
        assert_eq!(out.routes(), vec![P2]);
        // The next hop a strict router too: it gets the Request-URI; the remote target stays last.
        let out = run(&bye(&ruri, &["<sip:strict.example.com>", &format!("<{UA}>")], false, false), loose_route);
        assert_eq!((out.code, out.ruri(), out.du.clone()), (1, "sip:strict.example.com", None));
        assert_eq!(out.routes(), vec![format!("<{UA}>")]);
        // Only the remote target left.
        let out = run(&bye(&ruri, &[&format!("<{UA}>")], false, false), loose_route);
        assert_eq!((out.code, out.ruri(), out.routes().len()), (1, UA, 0));
        // Our own second Route value is removed too (§16.4).
        let pair = format!("<sip:198.51.100.10:5070;r2=on;lr>, <{UA}>");
        let out = run(&bye(&ruri, &[&pair], false, false), loose_route);
        assert_eq!((out.code, out.ruri(), out.routes().len()), (1, UA, 0));
        // It was the second of an OpenSER pair: the request leaves by its socket.
        assert_eq!(out.send_socket, Some("198.51.100.10:5070".parse().unwrap()));
        let single = format!("<sip:198.51.100.10:5070;lr>, <{UA}>");
        let out = run(&bye(&ruri, &[&single], false, false), loose_route);
        assert_eq!((out.code, out.ruri(), out.routes().len(), out.send_socket), (1, UA, 0, None));
        // A Request-URI of ours in a request without a To tag is not a strict router's doing.
        let out = run(&bye(&ruri, &[P2], true, false), loose_route);
        assert_eq!((out.ruri(), out.du.as_deref()), (ruri.as_str(), Some("sip:p2.example.com;lr")));
    }

    #[test]
    fn an_openser_double_record_route_is_removed_whole() {
        let first = format!("<sip:{US};r2=on;lr;ftag={FROM_TAG}>");
        let second = "<sip:192.0.2.10;transport=tcp;r2=on;lr>";
        let out = run(&bye(UA, &[&first, second, P2], false, false), loose_route);
        assert_eq!(out.code, 1);
        assert_eq!(out.routes(), vec![P2]);
        assert_eq!(out.du.as_deref(), Some("sip:p2.example.com;lr"));
        assert_eq!(out.send_socket, Some(format!("{US}:5060").parse().unwrap()));
        // Without enable_double_rr the second is the next hop (it loops back to us).
        let out = run_with(
            &bye(UA, &[&first, second, P2], false, false),
            &config(&[("enable_double_rr", 0)]),
            udp(),
            loose_route,
        );
        assert_eq!(out.du.as_deref(), Some("sip:192.0.2.10;transport=tcp;r2=on;lr"));
        assert_eq!(out.routes().len(), 2);
        // The pair alone: in dialog the Request-URI is the next hop.
        let out = run(&bye(UA, &[&format!("{first},{second}")], false, false), loose_route);
        assert_eq!((out.code, out.routes().len(), out.du), (1, 0, None));
    }

    #[test]
    fn the_ignored_user_is_not_ours() {
        let mut config = config(&[]);
        config.params.set("rr", "ignore_user", Value::str("voicemail"));
        let route = format!("<sip:voicemail@{US};lr>");
        let out = run_with(&bye(UA, &[&route, P2], false, false), &config, udp(), loose_route);
        assert_eq!((out.code, out.routes().len()), (-1, 2));
    }

    #[test]
    fn route_lines_already_removed_do_not_count_and_malformed_ones_fail() {
        let ours = ours_route("");
        let text = bye(UA, &[&ours, P2], false, false);
        let out = run(&text, |ctx| {
            let line = ctx.msg.headers_named(HeaderName::Route).next().unwrap().line;
            ctx.edits.delete(line.range());
            loose_route(ctx)
        });
        assert_eq!((out.code, out.du.as_deref()), (1, Some("sip:p2.example.com;lr")));
        assert_eq!(out.routes(), vec![P2]);
        let out = run(&bye(UA, &["<sip:bad host>"], false, false), loose_route);
        assert_eq!(out.code, -1);
        let out = run(&bye(UA, &["<sip:p2.example.com;lr"], false, false), loose_route);
        assert_eq!(out.code, -1);
    }

    // ------------------------------------------------------------ Route parameters

    #[test]
    fn check_route_param_reads_our_consumed_route() {
        let re = Regex::new(";nat=yes").unwrap();
        let ours = ours_route(";nat=yes");
        let out = run(&bye(UA, &[&ours, P2], false, false), |ctx| {
            assert_eq!(check_route_param(ctx, &re), -1, "before loose_route");
            assert_eq!(loose_route(ctx), 1);
            assert_eq!(check_route_param(ctx, &Regex::new("^;lr;ftag=").unwrap()), 1);
            assert_eq!(check_route_param(ctx, &Regex::new("nat=no").unwrap()), -1);
            check_route_param(ctx, &re)
        });
        assert_eq!(out.code, 1);
        // A Route set that is not ours gives nothing to check.
        let out = run(&bye(UA, &["<sip:p2.example.com;lr;nat=yes>"], false, false), |ctx| {
            loose_route(ctx);
            check_route_param(ctx, &re)
        });
        assert_eq!(out.code, -1);
    }

    #[test]
    fn is_direction_compares_the_ftag_with_the_from_tag() {
        let ours = ours_route("");
        let downstream = run(&bye(UA, &[&ours, P2], false, false), |ctx| {
            assert_eq!(loose_route(ctx), 1);
            assert_eq!(is_direction(ctx, "upstream"), -1);
            is_direction(ctx, "downstream")
        });
        assert_eq!(downstream.code, 1);
        let upstream = run(&bye(UA, &[&ours, P2], false, true), |ctx| {
            assert_eq!(loose_route(ctx), 1);
            assert_eq!(is_direction(ctx, "Downstream"), -1);
            is_direction(ctx, "UPSTREAM")
        });
        assert_eq!(upstream.code, 1);
        // No ftag (no loose_route yet, or none in our Route): downstream.
        let out = run(&bye(UA, &[&ours, P2], false, true), |ctx| is_direction(ctx, "downstream"));
        assert_eq!(out.code, 1);
        let out = run(&bye(UA, &[&format!("<sip:{US};lr>"), P2], false, true), |ctx| {
            loose_route(ctx);
            is_direction(ctx, "downstream")
        });
        assert_eq!(out.code, 1);
        let out = run(&bye(UA, &[&ours], false, false), |ctx| is_direction(ctx, "sideways"));
        assert_eq!(out.code, -1);
    }

    // ------------------------------------------------------------ a whole dialog

    /// The INVITE is record-routed; the callee's BYE carries the Record-Route back as its
    /// Route set (RFC 3261 §12.1.1), and loose_route consumes it.
    #[test]
    fn a_dialog_round_trip() {
        let invite = run(&invite(), |ctx| {
            add_rr_param(ctx, &fmt(";nat=yes"));
            record_route_0(ctx)
        });
        let rr: Vec<String> =
            invite.next.values(HeaderName::RecordRoute).map(|v| invite.next.text(v).to_string()).collect();
        let bye_from_callee = bye("sip:alice@192.0.2.1", &[&rr[0]], false, true);
        let out = run(&bye_from_callee, |ctx| {
            assert_eq!(loose_route(ctx), 1);
            assert_eq!(check_route_param(ctx, &Regex::new("nat=yes").unwrap()), 1);
            is_direction(ctx, "upstream")
        });
        assert_eq!(out.code, 1);
        assert_eq!(out.routes().len(), 0);
        assert_eq!(out.ruri(), "sip:alice@192.0.2.1");
        assert_eq!(out.du, None);
    }
}
