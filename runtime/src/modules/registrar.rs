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
//! The AOR is the To URI's user for `save` and the Request-URI's for `lookup`
//! (user@host with usrloc's `use_domain`), lower-cased unless registrar's
//! `case_sensitive` is set. Contacts match by URI (usrloc `matching_mode` 0).
//!
//! With usrloc's `db_mode` 1 or 3 a REGISTER is answered only once its change
//! is in the database: a write that fails (database down, slow beyond the
//! timeout) is answered 500 and logged, and the bindings stay as they were
//! (1.3 answered 200 anyway). `lookup` and `registered` on a database that
//! does not answer (mode 3) return -3 (internal error) and log it.

use super::usrloc::Contact;
use crate::script::Ctx;
use crate::sip::values::NameAddr;
use crate::sip::{uri, HeaderName, Method};

/// `save(table, flags)`: 0x01 memory only (what serc does anyway), 0x02 no reply.
const NO_REPLY: i64 = 0x02;

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

/// `save("location", "flags")`
pub fn save_2(ctx: &mut Ctx, table: &str, flags: i64) -> i32 {
    let outcome = register(ctx, table);
    if flags & NO_REPLY != 0 {
        return if outcome.is_ok() { 1 } else { -1 };
    }
    match outcome {
        Ok(contacts) => {
            let headers = if contacts.is_empty() { String::new() } else { format!("Contact: {contacts}\r\n") };
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

/// The AOR of `uri_text`: user (unescaped) [@host], lower-cased unless
/// `case_sensitive`; `None` without a user part.
fn aor(ctx: &Ctx, uri_text: &str) -> Option<String> {
    let u = uri::parse(uri_text).ok()?;
    let user = u.user_unescaped();
    if user.is_empty() {
        return None;
    }
    let mut aor = user.into_owned();
    if ctx.config.params.int("usrloc", "use_domain") != 0 {
        aor.push('@');
        aor.push_str(u.host_text);
    }
    if ctx.config.params.int("registrar", "case_sensitive") == 0 {
        aor.make_ascii_lowercase();
    }
    Some(aor)
}

/// The location table's key ([`super::usrloc::key`]).
fn key(table: &str, aor: Option<String>) -> Option<String> {
    aor.map(|aor| super::usrloc::key(table, &aor))
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
    Some(ctx.config.params.int("registrar", "default_expires"))
}

/// A q-value as thousandths.
fn q_of(text: &str) -> Option<u16> {
    let v: f32 = text.trim().parse().ok()?;
    (0.0..=1.0).contains(&v).then(|| (v * 1000.0).round() as u16)
}

/// RFC 3261 §10.3 steps 4–8 on the location table; the Contact header value
/// of the 200 (the bindings now) or the refusal.
fn register(ctx: &mut Ctx, table: &str) -> Result<String, Refusal> {
    let to = ctx.msg.to();
    let to_uri = ctx.msg.text(to.uri).to_string();
    let Some(aor) = key(table, aor(ctx, &to_uri)) else {
        return Err(refuse(400, "No username in To URI"));
    };
    let now = ctx.time();
    let buf = ctx.msg.bytes().clone();
    let mut star = false;
    let mut given: Vec<(String, i64, Option<u16>)> = Vec::new();
    for na in ctx.msg.values(HeaderName::Contact) {
        if ctx.msg.text(na).trim() == "*" {
            star = true;
            continue;
        }
        let Ok(na) = NameAddr::parse(&buf, na) else { return Err(refuse(400, "Error while parsing Contact")) };
        let Some(expires) = expires_of(ctx, &na) else { return Err(refuse(400, "Invalid expires param in contact")) };
        let q = match na.param(&buf, "q") {
            Some(text) => Some(q_of(text).ok_or_else(|| refuse(400, "Invalid q param in contact"))?),
            None => None,
        };
        given.push((ctx.msg.text(na.uri).to_string(), expires, q));
    }
    let callid = ctx.msg.text(ctx.msg.call_id).to_string();
    let cseq = ctx.msg.cseq;
    let min = ctx.config.params.int("registrar", "min_expires");
    let max = ctx.config.params.int("registrar", "max_expires");
    let max_contacts = usize::try_from(ctx.config.params.int("registrar", "max_contacts")).unwrap_or(0);
    let cseq_delay = ctx.config.params.int("usrloc", "cseq_delay");
    let user_agent =
        ctx.msg.header(HeaderName::UserAgent).map(|h| ctx.msg.text(h.value).to_string()).unwrap_or_default();
    let socket = ctx.src.local;
    // The methods the contacts accept: the REGISTER's Allow headers (1.3
    // also read a contact's `methods` parameter; serc does not), else all.
    let methods = allowed_methods(ctx.msg);

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
            Ok(_) => Ok(String::new()),
            Err(e) => Err(db_failed(&aor, &e)),
        };
    }
    // RFC 3261 §10.3 step 6: too brief an interval is refused with the minimum.
    if let Some(&(_, e, _)) = given.iter().find(|(_, e, _)| *e != 0 && *e < min) {
        let _ = e;
        let mut r = refuse(423, "Interval too brief");
        r.reason = "Interval Too Brief";
        r.extra = format!("Min-Expires: {min}\r\n");
        return Err(r);
    }
    let transport = ctx.src.transport;
    let updated = ctx.config.usrloc.update(&aor, now, |contacts| {
        // Check every contact before changing any (the update is all or nothing).
        let mut count = contacts.len();
        let mut apply = Vec::with_capacity(given.len());
        for (uri_text, expires, q) in &given {
            let expires = if max > 0 { (*expires).min(max) } else { *expires };
            match contacts.iter().find(|c| same_contact(&c.uri, uri_text)) {
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
            apply.push((uri_text.clone(), expires, *q));
        }
        if max_contacts > 0 && count > max_contacts {
            return Err(refuse(503, "Too many registered contacts"));
        }
        for (uri_text, expires, q) in apply {
            let pos = contacts.iter().position(|c| same_contact(&c.uri, &uri_text));
            match (pos, expires) {
                (Some(i), 0) => {
                    contacts.remove(i);
                }
                (Some(i), e) => {
                    let c = &mut contacts[i];
                    c.uri = uri_text;
                    c.expires = now + e;
                    c.q = q;
                    c.callid = callid.clone();
                    c.cseq = cseq;
                    c.user_agent = user_agent.clone();
                    c.socket = socket;
                    c.transport = transport;
                    c.last_modified = now;
                    c.methods = methods;
                }
                (None, e) => contacts.push(Contact {
                    uri: uri_text,
                    expires: now + e,
                    q,
                    callid: callid.clone(),
                    cseq,
                    user_agent: user_agent.clone(),
                    socket,
                    transport,
                    last_modified: now,
                    methods,
                }),
            }
        }
        Ok(contacts
            .iter()
            .map(|c| {
                let q = c.q.map(|q| format!(";q={}", crate::script::pv::q_text(q))).unwrap_or_default();
                format!("<{}>{q};expires={}", c.uri, c.expires - now)
            })
            .collect::<Vec<_>>()
            .join(", "))
    });
    updated.unwrap_or_else(|e| Err(db_failed(&aor, &e)))
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
    let Some(aor) = key(table, aor(ctx, ctx.request_uri())) else { return -3 };
    let now = ctx.time();
    let mut contacts = match ctx.config.usrloc.find(&aor, now) {
        Ok(c) => c,
        Err(e) => {
            db_failed(&aor, &e);
            return -3;
        }
    };
    if contacts.is_empty() {
        return -1;
    }
    // method_filtering: only contacts that accept the request's method
    // (-2 when none does).
    if ctx.config.params.int("registrar", "method_filtering") != 0 {
        if let Some(m) = ctx.msg.method() {
            let bit = method_bit(m);
            contacts.retain(|c| c.methods & bit != 0);
            if contacts.is_empty() {
                return -2;
            }
        }
    }
    // Highest q first (unspecified below q=0, as 1.3's -1); among equals the
    // most recently registered first.
    contacts.sort_by(|a, b| {
        let qa = a.q.map_or(-1, i32::from);
        let qb = b.q.map_or(-1, i32::from);
        qb.cmp(&qa).then(b.last_modified.cmp(&a.last_modified))
    });
    let first = contacts.remove(0);
    ctx.ruri = Some(first.uri);
    ctx.ruri_q = first.q;
    if ctx.config.params.int("registrar", "append_branches") != 0 {
        for c in contacts {
            if ctx.branches.len() >= super::core::MAX_BRANCHES - 1 {
                break;
            }
            let send_socket = ctx.send_socket;
            ctx.branches.push(crate::script::Branch { uri: c.uri, dst_uri: None, q: c.q, flags: 0, send_socket });
        }
    }
    1
}

/// `registered("location")`: 1 when the Request-URI's AOR has a live
/// contact, else -1.
pub fn registered(ctx: &mut Ctx, table: &str) -> i32 {
    let Some(aor) = key(table, aor(ctx, ctx.request_uri())) else { return -1 };
    match ctx.config.usrloc.find(&aor, ctx.time()) {
        Ok(c) if c.is_empty() => -1,
        Ok(_) => 1,
        Err(e) => {
            db_failed(&aor, &e);
            -3
        }
    }
}
