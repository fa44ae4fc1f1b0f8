//! registrar: `save`, `lookup`, `registered` over the location table
//! ([`super::usrloc`]), as OpenSER 1.3's registrar does and RFC 3261 §10.3 asks.
//!
//! `save` answers the REGISTER itself (statelessly, like 1.3's registrar
//! through sl): 200 with the AOR's current bindings and their expires, or the
//! error 1.3 gives (its codes and its `P-Registrar-Error` header). Where 1.3
//! breaks the RFC serc follows the RFC (README, "Deliberate differences"): an
//! expires below `min_expires` gets 423 with `Min-Expires` instead of being
//! raised silently.
//!
//! Each contact is stored with what `lookup` needs to reach it: its
//! `received` address (the contact's parameter, registrar's `received_avp`,
//! or the first Path URI's with `path_use_received`), the REGISTER's Path
//! (`use_path`, RFC 3327), the branch flags, the socket, its methods (its
//! `methods` parameter, else the Allow headers).
//!
//! The AOR is the To URI's user for `save` and the Request-URI's for `lookup`
//! (user@host with usrloc's `use_domain`), lower-cased unless registrar's
//! `case_sensitive` is set. Contacts match by URI (usrloc `matching_mode` 0).
//!
//! With usrloc's `db_mode` 1 or 3 a REGISTER is answered only once its change
//! is in the database: a write that fails (database down, slow beyond the
//! timeout) is answered 500 and logged, and the bindings stay as they were
//! (1.3 answered 200 anyway). `lookup` and `registered` on a database that
//! does not answer (mode 3) return -3 (internal error) and log it.

use smallvec::SmallVec;

use super::usrloc::Contact;
use crate::script::{AvpName, Ctx, ModParams};
use crate::sip::values::NameAddr;
use crate::sip::{uri, HeaderName, Method};

/// registrar's modparams (and usrloc's that `save` and `lookup` read), read
/// once per proxy ([`crate::script::ModuleSettings`]).
pub struct Settings {
    /// `aor_avp`, when it names an AVP.
    aor_avp: Option<AvpName>,
    /// usrloc's `use_domain`.
    use_domain: bool,
    realm_prefix: String,
    case_sensitive: bool,
    default_expires: i64,
    min_expires: i64,
    max_expires: i64,
    max_contacts: usize,
    /// usrloc's `cseq_delay`.
    cseq_delay: i64,
    /// usrloc's `nat_bflag` as a branch-flag bit (0: none).
    nat_bflag: u32,
    /// `received_avp`, when it names an AVP.
    received_avp: Option<AvpName>,
    received_param: String,
    use_path: bool,
    path_mode: i64,
    path_use_received: bool,
    sock_flag: i64,
    sock_hdr_name: Option<String>,
    method_filtering: bool,
    append_branches: bool,
}

impl Settings {
    fn read(params: &ModParams) -> Settings {
        let int = |module: &str, name: &str| params.int(module, name);
        let avp =
            |name: &str| params.explicit("registrar", name).and_then(|spec| AvpName::parse(spec.as_text().trim()));
        let nat_bflag = int("usrloc", "nat_bflag");
        Settings {
            aor_avp: avp("aor_avp"),
            use_domain: int("usrloc", "use_domain") != 0,
            realm_prefix: params.get("registrar", "realm_prefix").as_text().into_owned(),
            case_sensitive: int("registrar", "case_sensitive") != 0,
            default_expires: int("registrar", "default_expires"),
            min_expires: int("registrar", "min_expires"),
            max_expires: int("registrar", "max_expires"),
            max_contacts: usize::try_from(int("registrar", "max_contacts")).unwrap_or(0),
            cseq_delay: int("usrloc", "cseq_delay"),
            nat_bflag: if (0..32).contains(&nat_bflag) { 1 << nat_bflag } else { 0 },
            received_avp: avp("received_avp"),
            received_param: params.get("registrar", "received_param").as_text().into_owned(),
            use_path: int("registrar", "use_path") != 0,
            path_mode: int("registrar", "path_mode"),
            path_use_received: int("registrar", "path_use_received") != 0,
            sock_flag: int("registrar", "sock_flag"),
            sock_hdr_name: params.explicit("registrar", "sock_hdr_name").map(|v| v.as_text().trim().to_string()),
            method_filtering: int("registrar", "method_filtering") != 0,
            append_branches: int("registrar", "append_branches") != 0,
        }
    }
}

fn settings<'c>(ctx: &Ctx<'c>) -> &'c Settings {
    ctx.config.registrar.get_or_read(&ctx.config.params, Settings::read)
}

/// `save(table, flags)`: 0x02 no reply (0x01, memory only, is usrloc's
/// [`super::usrloc::FL_MEM`]).
const NO_REPLY: i64 = 0x02;

/// What a REGISTER that `save` accepted is answered with.
struct Saved {
    /// The 200's Contact header line (`Contact: …` CRLF): the bindings now;
    /// empty when there are none.
    contact_line: String,
    /// The Path to echo (RFC 3327 §5.3: only to a client that supports it).
    path_in_reply: Option<String>,
}

/// Why a REGISTER is refused: code, reason phrase, OpenSER 1.3's error text.
struct Refusal {
    code: u16,
    reason: &'static str,
    info: &'static str,
    extra: String,
}

fn refuse(code: u16, info: &'static str) -> Refusal {
    let reason = match code {
        400 => "Bad Request",
        420 => "Bad Extension",
        503 => "Service Unavailable",
        _ => "Server Internal Error",
    };
    Refusal { code, reason, info, extra: String::new() }
}

/// `save("location")`
pub fn save_1(ctx: &mut Ctx, table: &str) -> i32 {
    save_2(ctx, table, 0)
}

/// `save("location", "flags")`: 0x01 keeps the contacts out of the database
/// (usrloc's `FL_MEM`), 0x02 sends no reply; the flags are stored with the
/// contacts, as 1.3 stored them.
pub fn save_2(ctx: &mut Ctx, table: &str, flags: i64) -> i32 {
    let outcome = register(ctx, table, flags as u32);
    let stats = ctx.config.mi.registrar(&ctx.config.params);
    if outcome.is_ok() { &stats.accepted_regs } else { &stats.rejected_regs }.inc();
    if flags & NO_REPLY != 0 {
        return if outcome.is_ok() { 1 } else { -1 };
    }
    match outcome {
        Ok(ok) => {
            let mut headers = ok.contact_line;
            if let Some(path) = ok.path_in_reply {
                headers.push_str("Path: ");
                headers.push_str(&path);
                headers.push_str("\r\n");
            }
            if super::sl::reply_with(ctx, 200, "OK", &headers) > 0 {
                1
            } else {
                -1
            }
        }
        Err(r) => {
            let headers = format!("{}P-Registrar-Error: {}\r\n", r.extra, r.info);
            super::sl::reply_with(ctx, r.code, r.reason, &headers);
            -1
        }
    }
}

/// `add_sock_hdr(name)`: adds `name: proto:ip:port` — the socket the request
/// came in on — to the request (a registrar relaying REGISTERs to another
/// tells it where the client's flow ends, for that one's `sock_hdr_name`).
pub fn add_sock_hdr(ctx: &mut Ctx, name: &crate::script::args::HdrName) -> i32 {
    if ctx.msg.method() != Some(Method::Register) {
        tracing::error!("add_sock_hdr: not a REGISTER");
        return -1;
    }
    let proto = ctx.src.transport.name().to_ascii_lowercase();
    let line = format!("{}: {proto}:{}\r\n", name.text, ctx.src.local);
    super::textops::append_hf_1(ctx, &crate::script::args::Format::literal(&line))
}

/// The bit of a request method in a contact's `methods` (OpenSER 1.3's
/// `METHOD_*` order; other methods share one bit).
pub fn method_bit(m: Method) -> u32 {
    1 << match m {
        Method::Invite => 0,
        Method::Cancel => 1,
        Method::Ack => 2,
        Method::Bye => 3,
        Method::Info => 4,
        Method::Options => 5,
        Method::Update => 6,
        Method::Register => 7,
        Method::Message => 8,
        Method::Subscribe => 9,
        Method::Notify => 10,
        Method::Prack => 11,
        Method::Refer => 12,
        _ => 31,
    }
}

/// The methods a REGISTER's Allow headers list, or all when it has none.
fn allowed_methods(msg: &crate::sip::Message) -> u32 {
    let mut any = false;
    let mut bits = 0;
    for v in msg.values(HeaderName::Allow) {
        any = true;
        let name = msg.text(v).trim();
        if !name.is_empty() {
            bits |= method_bit(Method::parse(name.as_bytes()));
        }
    }
    if any {
        bits
    } else {
        u32::MAX
    }
}

/// The location table's key ([`super::usrloc::key`]) of the AOR of
/// `uri_text` in `table`. The AOR is user (unescaped) [@host], lower-cased
/// unless `case_sensitive`; `None` without a user part.
///
/// As 1.3's `extract_aor`: registrar's `aor_avp`, when it names an AVP the
/// script set to a string, replaces `uri_text`; `realm_prefix` is taken off
/// the host (`sip.example.com` → `example.com`).
fn aor_key(ctx: &Ctx, table: &str, uri_text: &str) -> Option<String> {
    let settings = settings(ctx);
    let from_avp = settings.aor_avp.as_ref().and_then(|name| match ctx.avps.get(name)? {
        crate::script::Value::Str(s) => Some(s.clone()),
        _ => None,
    });
    let uri_text = from_avp.as_deref().unwrap_or(uri_text);
    let u = uri::parse(uri_text).ok()?;
    let user = u.user_unescaped();
    if user.is_empty() {
        return None;
    }
    let host = settings.use_domain.then(|| {
        let prefix = settings.realm_prefix.as_str();
        let host = u.host_text;
        match host.get(..prefix.len()) {
            Some(p) if !prefix.is_empty() && p.eq_ignore_ascii_case(prefix) => &host[prefix.len()..],
            _ => host,
        }
    });
    // The key's table part, then the AOR, in one string.
    let mut key = super::usrloc::key_start(table, user.len() + host.map_or(0, |h| 1 + h.len()));
    let table_part = key.len();
    key.push_str(&user);
    if let Some(host) = host {
        key.push('@');
        key.push_str(host);
    }
    if !settings.case_sensitive {
        key[table_part..].make_ascii_lowercase();
    }
    Some(key)
}

/// A database error of usrloc: logged, and the 500 of a REGISTER.
fn db_failed(aor: &str, e: &crate::db::DbError) -> Refusal {
    let aor = aor.replace('\0', ":");
    tracing::error!(aor = %aor, "usrloc: {e}");
    refuse(500, "Error while accessing the location database")
}

/// A Contact value's expires: its parameter, else the Expires header, else
/// `default_expires`; `None` when one is not a number.
fn expires_of(ctx: &Ctx, na: &NameAddr) -> Option<i64> {
    let buf = ctx.msg.bytes();
    if let Some(v) = na.param(buf, "expires") {
        return v.trim().parse::<u32>().ok().map(i64::from);
    }
    if let Some(h) = ctx.msg.header(HeaderName::Expires) {
        return ctx.msg.text(h.value).trim().parse::<u32>().ok().map(i64::from);
    }
    Some(settings(ctx).default_expires)
}

/// A q-value as thousandths.
fn q_of(text: &str) -> Option<u16> {
    let v: f32 = text.trim().parse().ok()?;
    (0.0..=1.0).contains(&v).then(|| (v * 1000.0).round() as u16)
}

/// One Contact of a REGISTER, read.
struct Given {
    uri: String,
    expires: i64,
    q: Option<u16>,
    /// Its `methods` parameter (RFC 3840), if it has one.
    methods: Option<u32>,
    /// Its `received` parameter, if it has one.
    received: Option<String>,
}

/// The value of registrar's `received_avp`, when the modparam names an AVP
/// that the script set (nathelper's `fix_nated_register`, or the script itself).
fn received_avp(ctx: &Ctx) -> Option<String> {
    let name = settings(ctx).received_avp.as_ref()?;
    let v = ctx.avps.get(name)?.as_text().into_owned();
    (!v.is_empty()).then_some(v)
}

/// RFC 3327 §5.3: the REGISTER's Path header values joined by commas, and
/// with `path_use_received` the `received` parameter of the first Path URI;
/// `None` without Path headers. The first Path URI must be a loose router
/// (1.3 refuses the others: 400 "Path parse error").
fn path_of(ctx: &Ctx) -> Result<Option<(String, Option<String>)>, Refusal> {
    let buf = ctx.msg.bytes();
    let mut joined = String::new();
    let mut first_received = None;
    for (i, v) in ctx.msg.values(HeaderName::Path).enumerate() {
        let na = NameAddr::parse(buf, v).map_err(|_| refuse(400, "Path parse error"))?;
        if i == 0 {
            let u = uri::parse(ctx.msg.text(na.uri)).map_err(|_| refuse(400, "Path parse error"))?;
            if !u.lr() {
                return Err(refuse(400, "Path parse error"));
            }
            if settings(ctx).path_use_received {
                first_received = u.param("received").flatten().map(|r| unquote(r).to_string());
            }
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(ctx.msg.text(v).trim());
    }
    Ok((!joined.is_empty()).then_some((joined, first_received.filter(|r| !r.is_empty()))))
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// A contact's `methods` parameter (`methods="INVITE,BYE"`) as method bits.
fn methods_param(text: &str) -> u32 {
    unquote(text)
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .fold(0, |bits, m| bits | method_bit(Method::parse(m.as_bytes())))
}

/// Whether the request's Supported headers list `option-tag`.
fn supports(msg: &crate::sip::Message, tag: &str) -> bool {
    msg.values(HeaderName::Supported).any(|v| msg.text(v).trim().eq_ignore_ascii_case(tag))
}

/// The socket a REGISTER's contacts are bound to: where it came in, or, when
/// the message has registrar's `sock_flag` set, the local socket named by its
/// `sock_hdr_name` header (what another proxy's `add_sock_hdr` wrote); one
/// that is not ours is logged and ignored, as in 1.3.
fn socket_of(ctx: &Ctx) -> (std::net::SocketAddr, crate::proxy::Transport) {
    let own = (ctx.src.local, ctx.src.transport);
    let settings = settings(ctx);
    let flag = settings.sock_flag;
    if !(0..32).contains(&flag) || !ctx.flag(flag as u32) {
        return own;
    }
    let Some(name) = settings.sock_hdr_name.as_deref() else { return own };
    let Some(h) = ctx.msg.headers.iter().find(|h| ctx.msg.text(h.name_span).eq_ignore_ascii_case(name)) else {
        return own;
    };
    let text = ctx.msg.text(h.value).trim();
    let (proto, addr) = match text.split_once(':') {
        Some((p, rest)) if crate::proxy::Transport::parse(p).is_some() => (crate::proxy::Transport::parse(p), rest),
        _ => (None, text),
    };
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) if ctx.locals.iter().any(|l| l.addr == a && proto.is_none_or(|p| p == l.transport)) => {
            (a, proto.unwrap_or(crate::proxy::Transport::Udp))
        }
        _ => {
            tracing::error!(socket = text, "save: the {name} header names no local socket");
            own
        }
    }
}

/// RFC 3261 §10.3 steps 4–8 on the location table; the 200's Contact
/// header line (the bindings now) and Path, or the refusal.
fn register(ctx: &mut Ctx, table: &str, save_flags: u32) -> Result<Saved, Refusal> {
    let to_uri = ctx.msg.text(ctx.msg.to().uri);
    let Some(aor) = aor_key(ctx, table, to_uri) else {
        return Err(refuse(400, "No username in To URI"));
    };
    let now = ctx.time();
    let buf = ctx.msg.bytes().clone();
    let mut star = false;
    let mut given: Vec<Given> = Vec::new();
    for na in ctx.msg.values(HeaderName::Contact) {
        if ctx.msg.text(na).trim() == "*" {
            star = true;
            continue;
        }
        let Ok(na) = NameAddr::parse(&buf, na) else { return Err(refuse(400, "Error while parsing Contact")) };
        // usrloc keeps text: a URI that is not UTF-8 could not be kept as it
        // came (1.3 keeps the bytes), so it is refused rather than mangled.
        let Ok(uri) = std::str::from_utf8(&buf[na.uri.range()]) else {
            return Err(refuse(400, "Contact parse error"));
        };
        let Some(expires) = expires_of(ctx, &na) else { return Err(refuse(400, "Invalid expires param in contact")) };
        let q = match na.param(&buf, "q") {
            Some(text) => Some(q_of(text).ok_or_else(|| refuse(400, "Invalid q param in contact"))?),
            None => None,
        };
        let methods = na.param(&buf, "methods").map(methods_param);
        let received = na.param(&buf, "received").map(|r| unquote(r).to_string()).filter(|r| !r.is_empty());
        given.push(Given { uri: uri.to_string(), expires, q, methods, received });
    }
    let callid = ctx.msg.text(ctx.msg.call_id).to_string();
    let cseq = ctx.msg.cseq;
    let settings = settings(ctx);
    let (min, max, max_contacts, cseq_delay) =
        (settings.min_expires, settings.max_expires, settings.max_contacts, settings.cseq_delay);
    let user_agent =
        ctx.msg.header(HeaderName::UserAgent).map(|h| ctx.msg.text(h.value).to_string()).unwrap_or_default();
    let (socket, transport) = socket_of(ctx);
    // The methods of contacts without a `methods` parameter: the REGISTER's
    // Allow headers, else all.
    let allowed = allowed_methods(ctx.msg);
    let mut cflags = ctx.branch_flags;
    // use_path (RFC 3327): the Path is stored with each contact; with
    // path_mode 2 (strict) a client that does not support path is refused
    // before anything is stored (1.3 stored the bindings, then answered 420).
    let mut path = None;
    let mut path_in_reply = None;
    let mut default_received = None;
    if settings.use_path {
        if let Some((p, received)) = path_of(ctx)? {
            let mode = settings.path_mode;
            let supported = supports(ctx.msg, "path");
            if mode == 2 && !supported {
                let mut r = refuse(420, "No support for found Path indicated");
                r.extra = format!("Unsupported: path\r\nPath: {p}\r\n");
                return Err(r);
            }
            if mode != 0 && supported {
                path_in_reply = Some(p.clone());
            }
            if received.is_some() {
                cflags |= settings.nat_bflag;
                default_received = received;
            }
            path = Some(p);
        }
    }
    // A contact's own `received` comes first, then Path's, then received_avp.
    let default_received = default_received.or_else(|| received_avp(ctx));

    if star {
        // `*`: only with Expires: 0 and alone (RFC 3261 §10.3 step 6).
        let expires_zero = ctx.msg.header(HeaderName::Expires).is_some_and(|h| ctx.msg.text(h.value).trim() == "0");
        if !expires_zero {
            return Err(refuse(400, "star and expires not zero"));
        }
        if !given.is_empty() {
            return Err(refuse(400, "star and more contacts"));
        }
        let cleared = ctx.config.usrloc.update(&aor, now, |contacts| {
            contacts.clear();
            Ok::<(), Refusal>(())
        });
        return match cleared {
            Ok(_) => Ok(Saved { contact_line: String::new(), path_in_reply }),
            Err(e) => Err(db_failed(&aor, &e)),
        };
    }
    // RFC 3261 §10.3 step 6: too brief an interval is refused with the minimum.
    if given.iter().any(|g| g.expires != 0 && g.expires < min) {
        let mut r = refuse(423, "Interval too brief");
        r.reason = "Interval Too Brief";
        r.extra = format!("Min-Expires: {min}\r\n");
        return Err(r);
    }
    let received_param = settings.received_param.as_str();
    let updated = ctx.config.usrloc.update(&aor, now, |contacts| {
        // Check every contact before changing any (the update is all or nothing).
        let mut count = contacts.len();
        let mut apply = Vec::with_capacity(given.len());
        for g in given {
            let expires = if max > 0 { g.expires.min(max) } else { g.expires };
            match contacts.iter().find(|c| same_contact(&c.uri, &g.uri)) {
                Some(c) if c.callid == callid && cseq < c.cseq => return Err(refuse(400, "Invalid CSeq number")),
                Some(c) if c.callid == callid && cseq == c.cseq => {
                    if c.last_modified + cseq_delay > now {
                        continue; // a retransmission: nothing to change
                    }
                    return Err(refuse(400, "Invalid CSeq number"));
                }
                Some(_) if expires == 0 => count -= 1,
                Some(_) => {}
                None if expires == 0 => continue,
                None => count += 1,
            }
            apply.push(Given { expires, ..g });
        }
        if max_contacts > 0 && count > max_contacts {
            return Err(refuse(503, "Too many registered contacts"));
        }
        // The last binding takes the strings the others copy.
        let (mut callid, mut user_agent, mut path, mut default_received) = (callid, user_agent, path, default_received);
        let n = apply.len();
        for (i, g) in apply.into_iter().enumerate() {
            let last = i + 1 == n;
            let pos = contacts.iter().position(|c| same_contact(&c.uri, &g.uri));
            if g.expires == 0 {
                if let Some(i) = pos {
                    contacts.remove(i);
                }
                continue;
            }
            let binding = Contact {
                uri: g.uri,
                expires: now + g.expires,
                q: g.q,
                callid: take_if(&mut callid, last),
                cseq,
                user_agent: take_if(&mut user_agent, last),
                socket,
                transport,
                last_modified: now,
                methods: g.methods.unwrap_or(allowed),
                received: g.received.or_else(|| take_if(&mut default_received, last)),
                path: take_if(&mut path, last),
                flags: save_flags,
                cflags,
            };
            match pos {
                Some(i) => contacts[i] = binding,
                None => contacts.push(binding),
            }
        }
        Ok(contact_line(contacts, now, received_param))
    });
    match updated {
        Ok(Ok(contact_line)) => Ok(Saved { contact_line, path_in_reply }),
        Ok(Err(r)) => Err(r),
        Err(e) => Err(db_failed(&aor, &e)),
    }
}

/// `v` itself when `last` (leaving its default), else a copy.
fn take_if<T: Clone + Default>(v: &mut T, last: bool) -> T {
    if last {
        std::mem::take(v)
    } else {
        v.clone()
    }
}

/// The 200's Contact header line: every binding with its remaining
/// `expires`, its `q` and its `received` (as `received_param`); empty
/// without bindings.
fn contact_line(contacts: &[Contact], now: i64, received_param: &str) -> String {
    use std::fmt::Write;
    if contacts.is_empty() {
        return String::new();
    }
    let mut line = String::with_capacity(contacts.iter().map(|c| c.uri.len() + 48).sum::<usize>() + 16);
    line.push_str("Contact: ");
    for (i, c) in contacts.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = write!(line, "<{}>", c.uri);
        if let Some(q) = c.q {
            let _ = write!(line, ";q={}", crate::script::pv::q_text(q));
        }
        let _ = write!(line, ";expires={}", c.expires - now);
        if let Some(r) = &c.received {
            let _ = write!(line, ";{received_param}=\"{r}\"");
        }
    }
    line.push_str("\r\n");
    line
}

/// Contact URIs match as RFC 3261 §10.3 step 7 asks (URI comparison), or by
/// text when one does not parse.
fn same_contact(a: &str, b: &str) -> bool {
    match (uri::parse(a), uri::parse(b)) {
        (Ok(x), Ok(y)) => uri::equivalent(&x, &y),
        _ => a == b,
    }
}

/// `lookup("location")`: the Request-URI becomes the AOR's best contact (by
/// q, then the most recent), the others become branches (with
/// `append_branches`, as tm forks them). 1 found; -1 none; -3 an error
/// (no user in the Request-URI); -2 when `method_filtering` leaves no
/// contact accepting the request's method.
pub fn lookup(ctx: &mut Ctx, table: &str) -> i32 {
    let Some(aor) = aor_key(ctx, table, ctx.request_uri()) else { return -3 };
    let now = ctx.time();
    let settings = settings(ctx);
    // method_filtering: only contacts that accept the request's method.
    let method = ctx.msg.method().filter(|_| settings.method_filtering).map(method_bit);
    let room =
        if settings.append_branches { (super::core::MAX_BRANCHES - 1).saturating_sub(ctx.branches.len()) } else { 0 };
    let locals = ctx.locals;
    // Chosen under the AOR's lock, copying only what the request takes.
    let chosen = ctx.config.usrloc.with_live(&aor, now, |live| {
        let mut live: SmallVec<[&Contact; 4]> = live.collect();
        if live.is_empty() {
            return Err(-1);
        }
        if let Some(bit) = method {
            live.retain(|c| c.methods & bit != 0);
            if live.is_empty() {
                return Err(-2);
            }
        }
        // Highest q first (unspecified below q=0, as 1.3's -1); among equals the
        // most recently registered first.
        live.sort_by(|a, b| {
            let qa = a.q.map_or(-1, i32::from);
            let qb = b.q.map_or(-1, i32::from);
            qb.cmp(&qa).then(b.last_modified.cmp(&a.last_modified))
        });
        let first = branch_to(live[0], locals).map_err(|()| -3)?;
        let more: Vec<_> = live[1..].iter().filter_map(|c| branch_to(c, locals).ok()).take(room).collect();
        Ok((first, more))
    });
    let (first, more) = match chosen {
        Ok(Ok(chosen)) => chosen,
        Ok(Err(rc)) => return rc,
        Err(e) => {
            db_failed(&aor, &e);
            return -3;
        }
    };
    // As 1.3: the Request-URI becomes the contact; `$du` the first Path URI
    // (the request then follows the Path as Route headers) or the received
    // address; branch 0 gets the contact's branch flags and its socket.
    ctx.ruri = Some(first.uri);
    ctx.dst_uri = first.dst_uri;
    ctx.path = first.path;
    ctx.ruri_q = first.q;
    ctx.branch_flags |= first.flags;
    ctx.send_socket = first.send_socket.or(ctx.send_socket);
    ctx.branches.extend(more);
    1
}

/// The branch to the contact `c`: its URI, where it goes besides (see
/// [`destination_of`]), its q, its branch flags and its socket when it is one
/// of `locals`.
fn branch_to(c: &Contact, locals: &[crate::proxy::Local]) -> Result<crate::script::Branch, ()> {
    let (dst_uri, path) = destination_of(c)?;
    let send_socket = locals.iter().any(|l| l.addr == c.socket && l.transport == c.transport).then_some(c.socket);
    Ok(crate::script::Branch { uri: c.uri.clone(), dst_uri, q: c.q, flags: c.cflags, send_socket, path })
}

/// Where a contact's requests go besides its URI: (`$du`, the Path to
/// follow). With a Path, `$du` is its first URI; else the received address.
/// `Err` when the stored Path has no URI (logged).
fn destination_of(c: &Contact) -> Result<(Option<String>, Option<String>), ()> {
    let Some(path) = &c.path else { return Ok((c.received.clone(), None)) };
    let first = path.split(',').next().unwrap_or_default().trim();
    let uri = first.find('<').and_then(|l| first[l + 1..].find('>').map(|r| &first[l + 1..l + 1 + r])).unwrap_or(first);
    if uri::parse(uri).is_err() {
        tracing::error!(path = path.as_str(), "lookup: the stored Path has no first URI");
        return Err(());
    }
    Ok((Some(uri.to_string()), Some(path.clone())))
}

/// `registered("location")`: 1 when the Request-URI's AOR has a live
/// contact, else -1.
pub fn registered(ctx: &mut Ctx, table: &str) -> i32 {
    let Some(aor) = aor_key(ctx, table, ctx.request_uri()) else { return -1 };
    match ctx.config.usrloc.with_live(&aor, ctx.time(), |live| live.next().is_some()) {
        Ok(false) => -1,
        Ok(true) => 1,
        Err(e) => {
            db_failed(&aor, &e);
            -3
        }
    }
}
