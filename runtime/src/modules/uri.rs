//! uri: tests on URIs (OpenSER 1.3's `uri` module).
//!
//! Every function works on the Request-URI as the script has rewritten it so
//! far ([`Ctx::request_uri`]), as 1.3's do (`GET_RURI`, `parse_sip_msg_uri`),
//! except `has_totag` (the To header) and `is_uri_user_e164` (any URI in a
//! pseudo-variable). They return 1 (true) or -1 (false, or an error, which is
//! also logged); never 0.
//!
//! Where serc differs from 1.3 (each function says why):
//! - parameter names match case-insensitively, and values by RFC 3261
//!   §19.1.4, where 1.3 compares bytes;
//! - a Request-URI is only ever replaced by one that parses, so a parameter or
//!   a tel: URI that would make a malformed one fails (-1) instead;
//! - `add_uri_param` keeps a `sips:` scheme;
//! - `tel2sip` builds the user part as RFC 3261 §19.1.6 recommends;
//! - `is_uri_user_e164` checks the digits (1.3's loop never rejects any);
//! - `is_user` reads only credentials the auth module verified (`ctx.authorized`).

use std::borrow::Cow;

use crate::script::args::PvRef;
use crate::script::{Ctx, Value};
use crate::sip::uri::{self, Scheme, Uri};

/// The longest Request-URI `add_uri_param` and `tel2sip` make (1.3's
/// `MAX_URI_SIZE`).
pub const MAX_URI_SIZE: usize = 1024;

fn truth(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

/// `is_user(user)`: whether the user part of the username of the verified
/// credentials — those `proxy_authorize` accepted, else those `www_authorize`
/// accepted — is `user`, byte for byte. -1 (and an error: the script calls it
/// before authenticating) when no credentials were verified, and when they
/// carry no username.
pub fn is_user(ctx: &mut Ctx, user: &str) -> i32 {
    let Some(credentials) = ctx.authorized.credentials(ctx.msg) else {
        tracing::error!("is_user: no authorized credentials (authenticate before calling it)");
        return -1;
    };
    match digest_user(credentials) {
        Some(name) => truth(name == user),
        None => -1,
    }
}

/// `has_totag()`: whether the To header has a non-empty `tag` — the request
/// is within a dialog (RFC 3261 §12.2).
pub fn has_totag(ctx: &mut Ctx) -> i32 {
    truth(ctx.msg.to_tag.is_some_and(|t| !t.is_empty()))
}

/// The user part of the `username` of digest credentials (the value of an
/// Authorization or Proxy-Authorization header): what 1.3's `is_user`
/// compares, byte for byte, with its argument (`username="alice@example.com"`
/// gives `alice`). `None` without a username.
///
/// [`is_user`] compares it for the credentials `proxy_authorize` or
/// `www_authorize` verified, never for credentials nobody verified.
pub fn digest_user(credentials: &str) -> Option<Cow<'_, str>> {
    Some(match digest_param(credentials, "username")? {
        Cow::Borrowed(v) => Cow::Borrowed(v.split('@').next().unwrap_or(v)),
        Cow::Owned(v) => Cow::Owned(v.split('@').next().unwrap_or(&v).to_string()),
    })
}

/// The value of the parameter `name` (`username`, `realm`, `uri` …) of digest
/// credentials, unquoted. `None` when they are not `Digest` credentials or
/// lack it.
pub fn digest_param<'a>(credentials: &'a str, name: &str) -> Option<Cow<'a, str>> {
    digest_params(credentials)?.find(|(param, _)| param.eq_ignore_ascii_case(name)).map(|(_, value)| value)
}

/// The parameters of digest credentials, in order: (name, value unquoted).
/// `None` when they are not `Digest` credentials. The iteration ends at the
/// end of the text or where it stops making sense (no `=`, an unclosed quote).
pub fn digest_params(credentials: &str) -> Option<impl Iterator<Item = (&str, Cow<'_, str>)>> {
    let rest = credentials.trim_start();
    let scheme_end = rest.find(|c: char| c.is_ascii_whitespace())?;
    if !rest[..scheme_end].eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut rest = &rest[scheme_end..];
    Some(std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let param = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let (value, next): (Cow<str>, &str) = if let Some(q) = after.strip_prefix('"') {
            let (v, end) = quoted(q)?;
            (v, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (Cow::Borrowed(after[..end].trim_end()), &after[end..])
        };
        rest = next;
        Some((param, value))
    }))
}

/// The text of a quoted-string whose opening quote was before `s`, and where
/// it ends in `s` (after its closing quote).
fn quoted(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let b = s.as_bytes();
    // Most values have no escape: borrowed up to the closing quote.
    let stop = memchr::memchr2(b'"', b'\\', b)?;
    if b[stop] == b'"' {
        return Some((Cow::Borrowed(&s[..stop]), stop + 1));
    }
    let mut owned = s[..stop].to_string();
    let mut i = stop;
    while i < b.len() {
        match b[i] {
            b'"' => return Some((Cow::Owned(owned), i + 1)),
            b'\\' if i + 1 < b.len() => {
                let c = s[i + 1..].chars().next()?;
                owned.push(c);
                i += 1 + c.len_utf8();
            }
            _ => {
                let c = s[i..].chars().next()?;
                owned.push(c);
                i += c.len_utf8();
            }
        }
    }
    None
}

/// The Request-URI, parsed; logs why not.
fn request_uri<'a>(ctx: &'a Ctx, function: &str) -> Option<Uri<'a>> {
    match uri::parse(ctx.request_uri()) {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::error!(uri = ctx.request_uri(), error = %e, "{function}: the Request-URI does not parse");
            None
        }
    }
}

/// `uri_param(name)`: whether the Request-URI has the parameter `name`
/// without a value (`;name`; 1.3 also counts `;name=`, which RFC 3261's
/// grammar does not allow and [`uri::parse`] refuses).
///
/// Only the first parameter of that name counts, as in 1.3. The name matches
/// case-insensitively (and `%`-escapes decoded), as RFC 3261 §19.1.4 compares
/// URI parameters; 1.3 compares bytes.
pub fn uri_param_1(ctx: &mut Ctx, name: &str) -> i32 {
    uri_param(ctx, name, None)
}

/// `uri_param(name, value)`: whether the Request-URI's first parameter
/// `name` has the value `value` (`""` matches a parameter without one).
///
/// RFC 3261 §19.1.4: names and values compare case-insensitively, escapes of
/// characters decoded (`;transport=TCP` has the value `tcp`); 1.3 compares
/// bytes.
pub fn uri_param_2(ctx: &mut Ctx, name: &str, value: &str) -> i32 {
    uri_param(ctx, name, Some(value))
}

fn uri_param(ctx: &Ctx, name: &str, value: Option<&str>) -> i32 {
    let Some(u) = request_uri(ctx, "uri_param") else { return -1 };
    let Some(found) = u.param(name) else { return -1 };
    let found = found.unwrap_or("");
    truth(match value {
        None => found.is_empty(),
        Some(v) => uri::unescape(found).eq_ignore_ascii_case(&uri::unescape(v)),
    })
}

/// `add_uri_param(param)`: appends `;param` to the Request-URI's parameters
/// (before its headers, if it has any). An empty `param` changes nothing.
///
/// -1 when the Request-URI does not parse, or would not with the parameter
/// (`param` must be `name` or `name=value` in URI syntax), or would be longer
/// than [`MAX_URI_SIZE`]. 1.3 appends anything, and writes `sip:` for the
/// scheme when the URI has headers (losing `sips:`, and the user's password,
/// which it overwrites); serc keeps the URI as it was.
pub fn add_uri_param(ctx: &mut Ctx, param: &str) -> i32 {
    if param.is_empty() {
        return 1;
    }
    let Some(u) = request_uri(ctx, "add_uri_param") else { return -1 };
    let current = u.as_str();
    // The headers end the text, after a '?'.
    let base = match u.headers.len() {
        0 => current,
        n => &current[..current.len() - n - 1],
    };
    let mut new = String::with_capacity(current.len() + param.len() + 1);
    new.push_str(base);
    new.push(';');
    new.push_str(param);
    if !u.headers.is_empty() {
        new.push('?');
        new.push_str(u.headers);
    }
    set_request_uri(ctx, new, "add_uri_param")
}

/// Replaces the Request-URI with `new` if it parses and is not too long.
fn set_request_uri(ctx: &mut Ctx, new: String, function: &str) -> i32 {
    if new.len() > MAX_URI_SIZE {
        tracing::error!(len = new.len(), "{function}: the new Request-URI is longer than {MAX_URI_SIZE} bytes");
        return -1;
    }
    if let Err(e) = uri::parse(&new) {
        tracing::error!(uri = new, error = %e, "{function}: the new Request-URI would not parse");
        return -1;
    }
    ctx.ruri = Some(new);
    1
}

/// `tel2sip()`: a `tel:` Request-URI becomes `sip:NUMBER@HOST;user=phone`,
/// where HOST is the host of the From URI (as in 1.3); any other
/// Request-URI is left alone (1).
///
/// RFC 3261 §19.1.6: the whole telephone-subscriber, parameters included,
/// goes into the user part (`tel:+358-555-1234567;isub=1411` →
/// `sip:+358-555-1234567;isub=1411@example.com;user=phone`), folded to lower
/// case where the tel URI is case-insensitive (the number's hex digits, the
/// parameter names, and the values of `isub`, `ext` and `phone-context`) and
/// with its parameters in the canonical order of RFC 3966 §3 (`isub` or
/// `ext`, then `phone-context`, then the others by name), so that equivalent
/// tel URIs give equal SIP URIs; characters a SIP user part may not hold
/// (`:`, `@`, `[`, `]`, `#` …) are `%`-escaped. 1.3 copies the text after
/// `tel:` as it is, and recognises the scheme only in lower case.
///
/// -1 when the tel URI does not parse (1.3 converts it anyway), when the
/// From URI has no host (a `tel:` From: 1.3 would write `sip:N@;user=phone`),
/// or when the result would be longer than [`MAX_URI_SIZE`].
pub fn tel2sip(ctx: &mut Ctx) -> i32 {
    let current = ctx.request_uri();
    if !current.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("tel:")) {
        return 1;
    }
    let Some(tel) = request_uri(ctx, "tel2sip") else { return -1 };
    if tel.scheme != Scheme::Tel {
        return 1;
    }
    let from = ctx.msg.from();
    let from_uri = ctx.msg.text(from.uri);
    let host = match uri::parse(from_uri) {
        Ok(f) if !f.host_text.is_empty() => f.host_text,
        Ok(_) => {
            tracing::error!(from = from_uri, "tel2sip: the From URI has no host");
            return -1;
        }
        Err(e) => {
            tracing::error!(from = from_uri, error = %e, "tel2sip: the From URI does not parse");
            return -1;
        }
    };
    let mut new = String::with_capacity(current.len() + host.len() + 16);
    new.push_str("sip:");
    telephone_subscriber(&tel, &mut new);
    new.push('@');
    new.push_str(host);
    new.push_str(";user=phone");
    set_request_uri(ctx, new, "tel2sip")
}

/// Writes a tel URI's telephone-subscriber as a SIP user part (see [`tel2sip`]).
fn telephone_subscriber(tel: &Uri, out: &mut String) {
    escape_user(&tel.user.unwrap_or("").to_ascii_lowercase(), out);
    let mut params: Vec<(String, Option<&str>)> =
        tel.params().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect();
    let rank = |name: &str| match name {
        "isub" | "ext" => 0,
        "phone-context" => 1,
        _ => 2,
    };
    params.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    for (name, value) in params {
        out.push(';');
        escape_user(&name, out);
        if let Some(value) = value {
            out.push('=');
            if rank(&name) < 2 {
                escape_user(&value.to_ascii_lowercase(), out);
            } else {
                escape_user(value, out);
            }
        }
    }
}

/// Appends `text`, `%`-escaping what RFC 3261's `user` may not hold (its
/// `%HH` escapes are kept).
fn escape_user(text: &str, out: &mut String) {
    for b in text.bytes() {
        let allowed = b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%".contains(&b);
        if allowed {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `is_uri_user_e164(pvar)`: whether the user part of the URI held by the
/// pseudo-variable is an E.164 number: `+` and 2 to 15 digits (ITU-T E.164
/// numbers have at most 15), as written — no visual separators.
///
/// 1.3 means the same, but its digit test can never fail, so it takes any
/// user of 3 to 16 characters starting with `+`. -1 also when the variable
/// holds no string (null, an integer) or no URI.
pub fn is_uri_user_e164(ctx: &mut Ctx, pvar: &PvRef) -> i32 {
    let value = pvar.get(ctx);
    let Value::Str(text) = value else {
        tracing::error!("is_uri_user_e164: the pseudo-variable does not hold a string");
        return -1;
    };
    match uri::parse(&text) {
        Ok(u) => truth(u.user.is_some_and(is_e164)),
        Err(e) => {
            tracing::error!(uri = text, error = %e, "is_uri_user_e164: not a URI");
            -1
        }
    }
}

/// `+` followed by 2 to 15 ASCII digits.
pub fn is_e164(user: &str) -> bool {
    user.strip_prefix('+').is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;

    use super::*;
    use crate::proxy::{Source, Transport};
    use crate::script::{Config, Vars};
    use crate::sip::{Framing, Message};

    fn request(ruri: &str, from: &str, to: &str) -> Message {
        let text = format!(
            "INVITE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: {to}\r\n\
             Call-ID: a84b4c76e66710@pc33.example.com\r\n\
             CSeq: 314159 INVITE\r\n\
             Authorization: Digest username=\"alice@example.com\", realm=\"example.com\", nonce=\"x\", uri=\"sip:b@example.com\", response=\"0\"\r\n\
             Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text), Framing::Datagram).expect("a valid request")
    }

    fn src() -> Source {
        let addr: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        Source { transport: Transport::Udp, addr, local: "192.0.2.9:5060".parse().unwrap() }
    }

    const FROM: &str = "<sip:alice@atlanta.example.com:5070>;tag=1928301774";
    const TO: &str = "<sip:bob@biloxi.example.com>";

    /// Runs `f` on a request to `ruri`; gives its code and the Request-URI a
    /// next hop sees (the message written with the edits, and parsed again).
    fn run(ruri: &str, from: &str, to: &str, f: impl FnOnce(&mut Ctx) -> i32) -> (i32, String) {
        let msg = request(ruri, from, to);
        let config = Config::default();
        let mut vars = Vars::default();
        let mut ctx = Ctx::new(&msg, src(), &config, &mut vars);
        let code = f(&mut ctx);
        let bytes = msg.write(&ctx.request_edits()).expect("edits apply");
        let next = Message::parse(bytes.freeze(), Framing::Datagram).expect("the next hop can parse it");
        (code, next.request_uri().unwrap().to_string())
    }

    fn on_ruri(ruri: &str, f: impl FnOnce(&mut Ctx) -> i32) -> (i32, String) {
        run(ruri, FROM, TO, f)
    }

    /// Runs `f` with the Request-URI rewritten to `rewritten` (which may not
    /// parse); gives its code and the Request-URI after it.
    fn on_rewritten(rewritten: &str, f: impl FnOnce(&mut Ctx) -> i32) -> (i32, String) {
        let msg = request("sip:b@example.com", FROM, TO);
        let config = Config::default();
        let mut vars = Vars::default();
        let mut ctx = Ctx::new(&msg, src(), &config, &mut vars);
        ctx.ruri = Some(rewritten.to_string());
        let code = f(&mut ctx);
        (code, ctx.request_uri().to_string())
    }

    #[test]
    fn has_totag_tells_in_dialog_requests() {
        assert_eq!(run("sip:b@example.com", FROM, TO, has_totag).0, -1);
        assert_eq!(run("sip:b@example.com", FROM, "<sip:bob@biloxi.example.com>;tag=a6c85cf", has_totag).0, 1);
        assert_eq!(run("sip:b@example.com", FROM, "sip:bob@biloxi.example.com;TAG=x", has_totag).0, 1);
    }

    #[test]
    fn uri_param_without_value() {
        let ruri = "sip:b@example.com;lr;transport=TCP;X-Flag";
        assert_eq!(on_ruri(ruri, |c| uri_param_1(c, "lr")).0, 1);
        assert_eq!(on_ruri(ruri, |c| uri_param_1(c, "LR")).0, 1);
        assert_eq!(on_ruri(ruri, |c| uri_param_1(c, "x-flag")).0, 1);
        assert_eq!(on_ruri(ruri, |c| uri_param_1(c, "transport")).0, -1, "it has a value");
        assert_eq!(on_ruri(ruri, |c| uri_param_1(c, "maddr")).0, -1);
        assert_eq!(on_ruri("sip:b@example.com", |c| uri_param_1(c, "lr")).0, -1);
    }

    #[test]
    fn uri_param_with_value() {
        let ruri = "sip:b@example.com;transport=TCP;user=phone;x=a%41;dup=1;dup=2";
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "transport", "tcp")).0, 1);
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "Transport", "TCP")).0, 1);
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "transport", "udp")).0, -1);
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "user", "phone")).0, 1);
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "x", "aa")).0, 1, "escapes decoded");
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "dup", "1")).0, 1);
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "dup", "2")).0, -1, "only the first counts, as in 1.3");
        assert_eq!(on_ruri(ruri, |c| uri_param_2(c, "ttl", "1")).0, -1);
        assert_eq!(on_ruri("sip:b@example.com;lr", |c| uri_param_2(c, "lr", "")).0, 1);
    }

    #[test]
    fn uri_param_reads_the_rewritten_request_uri() {
        let (code, _) = on_ruri("sip:b@example.com", |c| {
            c.ruri = Some("sip:b@example.net;lr".into());
            uri_param_1(c, "lr")
        });
        assert_eq!(code, 1);
        assert_eq!(on_rewritten("not a uri", |c| uri_param_1(c, "lr")).0, -1);
        assert_eq!(on_rewritten("not a uri", |c| uri_param_2(c, "lr", "")).0, -1);
    }

    #[test]
    fn add_uri_param_appends() {
        assert_eq!(
            on_ruri("sip:b@example.com:5080;lr", |c| add_uri_param(c, "user=phone")),
            (1, "sip:b@example.com:5080;lr;user=phone".into())
        );
        assert_eq!(on_ruri("sips:b@example.com", |c| add_uri_param(c, "ob")), (1, "sips:b@example.com;ob".into()));
        assert_eq!(
            on_ruri("tel:+1-201-555-0123", |c| add_uri_param(c, "npdi")),
            (1, "tel:+1-201-555-0123;npdi".into())
        );
        // An empty parameter changes nothing.
        assert_eq!(on_ruri("sip:b@example.com", |c| add_uri_param(c, "")), (1, "sip:b@example.com".into()));
        // Twice: the second sees the first.
        assert_eq!(
            on_ruri("sip:b@example.com", |c| add_uri_param(c, "a=1") + add_uri_param(c, "b")),
            (2, "sip:b@example.com;a=1;b".into())
        );
    }

    #[test]
    fn add_uri_param_goes_before_headers() {
        // A Request-URI may not carry headers, but a rewritten URI might; the
        // password and the scheme stay (1.3 loses both).
        let mut vars = Vars::default();
        let config = Config::default();
        let msg = request("sip:b@example.com", FROM, TO);
        let mut ctx = Ctx::new(&msg, src(), &config, &mut vars);
        ctx.ruri = Some("sips:b:pw@example.com;lr?Subject=hi&Priority=urgent".into());
        assert_eq!(add_uri_param(&mut ctx, "x=1"), 1);
        assert_eq!(ctx.request_uri(), "sips:b:pw@example.com;lr;x=1?Subject=hi&Priority=urgent");
    }

    #[test]
    fn add_uri_param_refuses_what_would_break_the_uri() {
        for bad in ["a b", ";x", "x;", "a=b@c", "<x>"] {
            assert_eq!(
                on_ruri("sip:b@example.com", |c| add_uri_param(c, bad)),
                (-1, "sip:b@example.com".into()),
                "{bad}"
            );
        }
        let long = format!("x={}", "a".repeat(MAX_URI_SIZE));
        assert_eq!(on_ruri("sip:b@example.com", |c| add_uri_param(c, &long)).0, -1);
        assert_eq!(on_rewritten("garbage", |c| add_uri_param(c, "lr")), (-1, "garbage".into()));
    }

    #[test]
    fn tel2sip_converts_tel_uris() {
        assert_eq!(
            on_ruri("tel:+1-201-555-0123", tel2sip),
            (1, "sip:+1-201-555-0123@atlanta.example.com;user=phone".into()),
            "the From host, without its port"
        );
        // RFC 3261 §19.1.6's example (with RFC 3966's isub): the parameters go
        // into the user part.
        assert_eq!(
            on_ruri("tel:+358-555-1234567;isub=1411", tel2sip),
            (1, "sip:+358-555-1234567;isub=1411@atlanta.example.com;user=phone".into())
        );
        // Case folded, parameters in RFC 3966 order, unknown values kept.
        assert_eq!(
            on_ruri("TEL:7042;Phone-Context=Example.COM;X-Y=AbC;EXT=22", tel2sip),
            (1, "sip:7042;ext=22;phone-context=example.com;x-y=AbC@atlanta.example.com;user=phone".into())
        );
        assert_eq!(
            on_ruri("tel:+49-30-1234;npdi;rn=+49-30-9", tel2sip),
            (1, "sip:+49-30-1234;npdi;rn=+49-30-9@atlanta.example.com;user=phone".into())
        );
    }

    #[test]
    fn tel2sip_escapes_what_a_user_part_cannot_hold() {
        let (code, ruri) = on_ruri("tel:+1234;isub=a:b", tel2sip);
        assert_eq!((code, ruri.as_str()), (1, "sip:+1234;isub=a%3Ab@atlanta.example.com;user=phone"));
        let u = uri::parse(&ruri).unwrap();
        assert_eq!(u.user, Some("+1234;isub=a%3Ab"));
        assert_eq!(u.param("user"), Some(Some("phone")));
    }

    #[test]
    fn tel2sip_leaves_other_uris() {
        assert_eq!(on_ruri("sip:+1234@example.com", tel2sip), (1, "sip:+1234@example.com".into()));
        assert_eq!(on_ruri("sips:b@example.com", tel2sip), (1, "sips:b@example.com".into()));
        // The rewritten Request-URI is the one converted.
        let (code, ruri) = on_ruri("sip:b@example.com", |c| {
            c.ruri = Some("tel:+4930123".into());
            tel2sip(c)
        });
        assert_eq!((code, ruri.as_str()), (1, "sip:+4930123@atlanta.example.com;user=phone"));
    }

    #[test]
    fn tel2sip_fails_without_a_host() {
        let (code, ruri) = run("tel:+1-201-555-0123", "<tel:+1-201-555-9999>;tag=1", TO, tel2sip);
        assert_eq!((code, ruri.as_str()), (-1, "tel:+1-201-555-0123"));
        assert_eq!(on_rewritten("tel:not-a-number", tel2sip), (-1, "tel:not-a-number".into()));
        assert_eq!(on_rewritten("tel", tel2sip), (1, "tel".into()), "not a tel: URI");
        // An IPv6 From host keeps its brackets.
        let (code, ruri) = run("tel:+12345", "<sip:a@[2001:db8::1]>;tag=1", TO, tel2sip);
        assert_eq!((code, ruri.as_str()), (1, "sip:+12345@[2001:db8::1];user=phone"));
    }

    #[test]
    fn is_uri_user_e164_checks_the_user() {
        let e164 = |ruri: &str, pv: &str| {
            let pv = PvRef::parse(pv).unwrap();
            on_ruri(ruri, |c| is_uri_user_e164(c, &pv)).0
        };
        assert_eq!(e164("sip:+4930123456@example.com", "$ru"), 1);
        assert_eq!(e164("sip:+12@example.com", "$ru"), 1);
        assert_eq!(e164("sip:+123456789012345@example.com", "$ru"), 1, "15 digits");
        assert_eq!(e164("sip:+1234567890123456@example.com", "$ru"), -1, "16 digits");
        assert_eq!(e164("sip:+1@example.com", "$ru"), -1);
        assert_eq!(e164("sip:+49abc@example.com", "$ru"), -1, "1.3 would say yes");
        assert_eq!(e164("sip:4930123@example.com", "$ru"), -1);
        assert_eq!(e164("sip:example.com", "$ru"), -1);
        assert_eq!(e164("tel:+4930123456", "$ru"), 1);
        assert_eq!(e164("tel:+49-30-123456", "$ru"), -1, "visual separators");
        // Another variable: the From URI, the To URI, an AVP, a number.
        assert_eq!(e164("sip:+4930123456@example.com", "$fu"), -1);
        let pv = PvRef::parse("$avp(s:caller)").unwrap();
        let (code, _) = on_ruri("sip:b@example.com", |c| {
            c.avps.push(crate::script::AvpName::parse("s:caller").unwrap(), Value::str("sip:+44207946@x.example"));
            is_uri_user_e164(c, &pv)
        });
        assert_eq!(code, 1);
        let (code, _) = on_ruri("sip:b@example.com", |c| {
            c.avps.push(crate::script::AvpName::parse("s:caller").unwrap(), Value::Int(4420));
            is_uri_user_e164(c, &pv)
        });
        assert_eq!(code, -1, "not a string");
        let (code, _) = on_ruri("sip:b@example.com", |c| is_uri_user_e164(c, &pv));
        assert_eq!(code, -1, "null");
        let (code, _) = on_ruri("sip:b@example.com", |c| {
            c.avps.push(crate::script::AvpName::parse("s:caller").unwrap(), Value::str("+4930123"));
            is_uri_user_e164(c, &pv)
        });
        assert_eq!(code, -1, "not a URI");
    }

    #[test]
    fn digest_user_reads_credentials() {
        let msg = request("sip:b@example.com", FROM, TO);
        let h = msg.header(crate::sip::HeaderName::Authorization).unwrap();
        assert_eq!(digest_user(msg.text(h.value)).as_deref(), Some("alice"));
        assert_eq!(digest_user("Digest realm=\"r\",username=bob").as_deref(), Some("bob"));
        assert_eq!(digest_user("digest  nonce=\"a,b\", username=\"a\\\"b@c\"").as_deref(), Some("a\"b"));
        assert_eq!(digest_user("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(digest_user("Digest realm=\"r\""), None);
        assert_eq!(digest_user("Digest username=\"unterminated"), None);
        let cred = "Digest username=\"alice@example.com\", realm=example.com, uri=\"sip:b@example.com\"";
        assert_eq!(digest_param(cred, "REALM").as_deref(), Some("example.com"));
        assert_eq!(digest_param(cred, "uri").as_deref(), Some("sip:b@example.com"));
        assert_eq!(digest_param(cred, "username").as_deref(), Some("alice@example.com"));
        assert_eq!(digest_param(cred, "nonce"), None);
    }

    #[test]
    fn is_user_reads_only_verified_credentials() {
        let auth = |authorized: crate::script::Authorized, user: &str| {
            run("sip:b@example.com", FROM, TO, |ctx| {
                ctx.authorized = authorized;
                is_user(ctx, user)
            })
            .0
        };
        let index = request("sip:b@example.com", FROM, TO)
            .headers
            .iter()
            .position(|h| h.name == crate::sip::HeaderName::Authorization)
            .unwrap();
        // The client says it is alice; nobody verified it.
        assert_eq!(auth(Default::default(), "alice"), -1);
        let www = crate::script::Authorized { www: Some(index), proxy: None, stale: false };
        assert_eq!(auth(www, "alice"), 1);
        assert_eq!(auth(www, "alic"), -1);
        assert_eq!(auth(www, "Alice"), -1, "byte for byte");
        assert_eq!(auth(www, "alice@example.com"), -1, "the user part of the username");
        // Proxy credentials first; a line that is not there is none.
        let proxy = crate::script::Authorized { www: Some(index), proxy: Some(index), stale: false };
        assert_eq!(auth(proxy, "alice"), 1);
        assert_eq!(auth(crate::script::Authorized { www: None, proxy: Some(999), stale: false }, "alice"), -1);
    }

    #[test]
    fn e164_numbers() {
        assert!(is_e164("+12") && is_e164("+123456789012345"));
        assert!(!is_e164("+1") && !is_e164("+1234567890123456") && !is_e164("12345") && !is_e164("+12a"));
        assert!(!is_e164("+") && !is_e164(""));
    }
}
