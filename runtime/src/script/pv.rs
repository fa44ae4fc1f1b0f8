//! Pseudo-variables (`$ru`, `$avp(s:x)`, `$hdr(Via)` …) and their
//! transformations (`{uri.user}`, `{s.len}` …): prepared once when the code is
//! generated ([`Pv::parse`], [`Transform::parse`]), read and written per
//! message ([`Pv::get`], [`Pv::set`]).

use std::fmt::Write as _;

use super::value::{AvpName, Value};
use super::Ctx;
use crate::sip::uri;
use crate::sip::{HeaderName, Message};

/// A pseudo-variable of OpenSER 1.3 that the runtime implements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pv {
    /// `$ru` / `$ruri`: the Request-URI.
    RUri,
    /// `$rU` / `$ruri.user`
    RUser,
    /// `$rd` / `$ruri.domain`
    RDomain,
    /// `$rp`
    RPort,
    /// `$ou` / `$ouri`, `$oU`, `$od`, `$op`: the original Request-URI.
    OUri,
    OUser,
    ODomain,
    OPort,
    /// `$du` / `$duri`
    DstUri,
    /// `$dd`, `$dp`: host and port of `$du`.
    DstDomain,
    DstPort,
    /// `$fu` / `$from`, `$fU` / `$from.user`, `$fd` / `$from.domain`, `$fn`, `$ft`
    FromUri,
    FromUser,
    FromDomain,
    FromName,
    FromTag,
    /// `$tu` / `$to`, `$tU` / `$to.user`, `$td` / `$to.domain`, `$tn`, `$tt`
    ToUri,
    ToUser,
    ToDomain,
    ToName,
    ToTag,
    /// `$ci`
    CallId,
    /// `$cs`: the CSeq number.
    CSeq,
    /// `$rm`: the method.
    Method,
    /// `$rs`, `$rr`: a reply's status and reason.
    Status,
    Reason,
    /// `$si`, `$sp`: source address and port; `$Ri`, `$Rp`: where it was received.
    SrcIp,
    SrcPort,
    RcvIp,
    RcvPort,
    /// `$pr` / `$proto`: the transport it came over.
    Proto,
    /// `$ua`: User-Agent; `$ct`: Contact; `$cT`: Content-Type; `$cl`: Content-Length.
    UserAgent,
    Contact,
    ContentType,
    ContentLength,
    /// `$rb`: the body; `$ml`: the message length; `$mb`: the whole message.
    Body,
    MsgLen,
    MsgBuf,
    /// `$mf`, `$sf`, `$bf`: message, script and branch flags (decimal).
    MsgFlags,
    ScriptFlags,
    BranchFlags,
    /// `$retcode` / `$rc`
    RetCode,
    /// `$hdr(Name)`: the header's value (the first; `[N]` for another).
    Hdr(String),
    /// `$avp(…)`
    Avp(AvpName),
    /// `$var(x)`
    Var(String),
    /// `$err.class`, `$err.level`, `$err.info`, `$err.rcode`, `$err.rreason`
    ErrClass,
    ErrLevel,
    ErrInfo,
    ErrRcode,
    ErrReason,
    /// `$Ts`: the current Unix time.
    TimeSecs,
    /// `$null` (Kamailio).
    Null,
    /// `$fs`: the forced send socket (`proto:ip:port`).
    ForcedSocket,
    /// `$pp`: the process id.
    Pid,
    /// `$rP`: the Request-URI's transport (`UDP` unless it says otherwise).
    RProto,
    /// `$rt`: the Refer-To URI; `$pu`/`$pU`: P-Preferred-Identity URI and user;
    /// `$ai`: P-Asserted-Identity URI; `$di`: Diversion URI; `$re`: Remote-Party-ID URI.
    ReferTo,
    PPreferredUri,
    PPreferredUser,
    PAssertedUri,
    DiversionUri,
    RpidUri,
    /// xlog's `$C(xy)` colours: serc writes no colour codes, so it reads `""`.
    Color,
}

impl Pv {
    /// The pseudo-variable named `name` with inner text `inner` (`avp`, `s:x`).
    pub fn parse(name: &str, inner: Option<&str>) -> Option<Pv> {
        Some(match (name, inner) {
            ("ru" | "ruri", None) => Pv::RUri,
            ("rU" | "ruri.user", None) => Pv::RUser,
            ("rd" | "ruri.domain", None) => Pv::RDomain,
            ("rp", None) => Pv::RPort,
            ("ou" | "ouri", None) => Pv::OUri,
            ("oU", None) => Pv::OUser,
            ("od", None) => Pv::ODomain,
            ("op", None) => Pv::OPort,
            ("du" | "duri", None) => Pv::DstUri,
            ("dd", None) => Pv::DstDomain,
            ("dp", None) => Pv::DstPort,
            ("fu" | "from", None) => Pv::FromUri,
            ("fU" | "from.user", None) => Pv::FromUser,
            ("fd" | "from.domain", None) => Pv::FromDomain,
            ("fn", None) => Pv::FromName,
            ("ft", None) => Pv::FromTag,
            ("tu" | "to", None) => Pv::ToUri,
            ("tU" | "to.user", None) => Pv::ToUser,
            ("td" | "to.domain", None) => Pv::ToDomain,
            ("tn", None) => Pv::ToName,
            ("tt", None) => Pv::ToTag,
            ("ci", None) => Pv::CallId,
            ("cs", None) => Pv::CSeq,
            ("rm", None) => Pv::Method,
            ("rs", None) => Pv::Status,
            ("rr", None) => Pv::Reason,
            ("si" | "src_ip", None) => Pv::SrcIp,
            ("sp", None) => Pv::SrcPort,
            ("Ri", None) => Pv::RcvIp,
            ("Rp", None) => Pv::RcvPort,
            ("pr" | "proto", None) => Pv::Proto,
            ("ua", None) => Pv::UserAgent,
            ("ct", None) => Pv::Contact,
            ("cT", None) => Pv::ContentType,
            ("cl", None) => Pv::ContentLength,
            ("rb", None) => Pv::Body,
            ("ml", None) => Pv::MsgLen,
            ("mb", None) => Pv::MsgBuf,
            ("mf", None) => Pv::MsgFlags,
            ("sf", None) => Pv::ScriptFlags,
            ("bf", None) => Pv::BranchFlags,
            ("retcode" | "rc", None) => Pv::RetCode,
            ("err.class", None) => Pv::ErrClass,
            ("err.level", None) => Pv::ErrLevel,
            ("err.info", None) => Pv::ErrInfo,
            ("err.rcode", None) => Pv::ErrRcode,
            ("err.rreason", None) => Pv::ErrReason,
            ("Ts", None) => Pv::TimeSecs,
            ("null", None) => Pv::Null,
            ("C", Some(_)) => Pv::Color,
            ("fs", None) => Pv::ForcedSocket,
            ("pp", None) => Pv::Pid,
            ("rP", None) => Pv::RProto,
            ("rt", None) => Pv::ReferTo,
            ("pu", None) => Pv::PPreferredUri,
            ("pU", None) => Pv::PPreferredUser,
            ("ai", None) => Pv::PAssertedUri,
            ("di", None) => Pv::DiversionUri,
            ("re", None) => Pv::RpidUri,
            ("hdr", Some(h)) if !h.is_empty() => Pv::Hdr(h.to_string()),
            ("avp", Some(a)) => Pv::Avp(AvpName::parse(a)?),
            ("var", Some(v)) if !v.is_empty() => Pv::Var(v.to_string()),
            _ => return None,
        })
    }

    /// The value now (`index`: the `[N]` of `$(hdr(Via)[1])` / `$(avp(x)[2])`).
    pub fn get(&self, ctx: &Ctx, index: Option<i64>) -> Value {
        let msg = ctx.msg;
        let text = |s: &str| Value::Str(s.to_string());
        let opt = |s: Option<&str>| s.map_or(Value::Null, text);
        match self {
            Pv::RUri => opt(Some(ctx.request_uri()).filter(|u| !u.is_empty())),
            Pv::RUser => uri_part(ctx.request_uri(), Part::User),
            Pv::RDomain => uri_part(ctx.request_uri(), Part::Host),
            Pv::RPort => uri_part(ctx.request_uri(), Part::Port),
            Pv::OUri => opt(msg.request_uri()),
            Pv::OUser => uri_part(ctx.original_uri(), Part::User),
            Pv::ODomain => uri_part(ctx.original_uri(), Part::Host),
            Pv::OPort => uri_part(ctx.original_uri(), Part::Port),
            Pv::DstUri => opt(ctx.dst_uri.as_deref()),
            Pv::DstDomain => ctx.dst_uri.as_deref().map_or(Value::Null, |u| uri_part(u, Part::Host)),
            Pv::DstPort => ctx.dst_uri.as_deref().map_or(Value::Null, |u| uri_part(u, Part::Port)),
            Pv::FromUri | Pv::FromUser | Pv::FromDomain | Pv::FromName | Pv::FromTag => {
                name_addr(msg, msg.from(), self)
            }
            Pv::ToUri | Pv::ToUser | Pv::ToDomain | Pv::ToName | Pv::ToTag => name_addr(msg, msg.to(), self),
            Pv::CallId => text(msg.text(msg.call_id)),
            Pv::CSeq => Value::Int(i64::from(msg.cseq)),
            Pv::Method => text(msg.method_text()),
            Pv::Status => msg.status().map_or(Value::Null, |s| Value::Int(i64::from(s))),
            Pv::Reason => match msg.start {
                crate::sip::StartLine::Response { reason, .. } => text(msg.text(reason)),
                _ => Value::Null,
            },
            Pv::SrcIp => text(&ctx.src.addr.ip().to_string()),
            Pv::SrcPort => Value::Int(i64::from(ctx.src.addr.port())),
            Pv::RcvIp => text(&ctx.src.local.ip().to_string()),
            Pv::RcvPort => Value::Int(i64::from(ctx.src.local.port())),
            Pv::Proto => text(&ctx.src.transport.as_str().to_ascii_lowercase()),
            Pv::UserAgent => header(msg, HeaderName::UserAgent, index),
            Pv::Contact => header(msg, HeaderName::Contact, index),
            Pv::ContentType => header(msg, HeaderName::ContentType, index),
            Pv::ContentLength => msg.content_length.map_or(Value::Null, |l| Value::Int(i64::from(l))),
            Pv::Body => text(std::str::from_utf8(&msg.body_bytes()).unwrap_or("")),
            Pv::MsgLen => Value::Int(msg.bytes().len() as i64),
            Pv::MsgBuf => text(&String::from_utf8_lossy(msg.bytes())),
            Pv::MsgFlags => Value::Int(i64::from(ctx.flags)),
            Pv::ScriptFlags => Value::Int(i64::from(ctx.script_flags)),
            Pv::BranchFlags => Value::Int(i64::from(ctx.branch_flags)),
            Pv::RetCode => Value::Int(i64::from(ctx.retcode)),
            Pv::Hdr(name) => {
                let values: Vec<_> = msg.headers_by_text(name).collect();
                let i = index.unwrap_or(0);
                let pick = if i >= 0 {
                    values.get(i as usize)
                } else {
                    values.len().checked_sub(i.unsigned_abs() as usize).and_then(|k| values.get(k))
                };
                pick.map_or(Value::Null, |h| text(msg.text(h.value)))
            }
            Pv::Avp(name) => match index {
                Some(i) => ctx.avps.get_index(name, i).cloned().unwrap_or_default(),
                None => ctx.avps.get(name).cloned().unwrap_or_default(),
            },
            Pv::Var(name) => ctx.vars.get(name).clone(),
            Pv::ErrClass => Value::Int(ctx.err.class),
            Pv::ErrLevel => Value::Int(ctx.err.level),
            Pv::ErrInfo => text(&ctx.err.info),
            Pv::ErrRcode => Value::Int(ctx.err.rcode),
            Pv::ErrReason => text(&ctx.err.rreason),
            Pv::TimeSecs => Value::Int(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
            ),
            Pv::Null => Value::Null,
            Pv::Color => Value::Str(String::new()),
            Pv::ForcedSocket => ctx.send_socket.map_or(Value::Null, |a| {
                let proto = ctx.locals.iter().find(|l| l.addr == a).map_or("udp", |l| l.transport.as_str());
                Value::Str(format!("{}:{a}", proto.to_ascii_lowercase()))
            }),
            Pv::Pid => Value::Int(i64::from(std::process::id())),
            Pv::RProto => match uri::parse(ctx.request_uri()) {
                Ok(u) => Value::Str(u.transport().map_or("UDP".to_string(), str::to_ascii_uppercase)),
                Err(_) => Value::Null,
            },
            Pv::ReferTo => header_uri(msg, "Refer-To"),
            Pv::PPreferredUri => header_uri(msg, "P-Preferred-Identity"),
            Pv::PPreferredUser => match header_uri(msg, "P-Preferred-Identity") {
                Value::Str(u) => uri_part(&u, Part::User),
                v => v,
            },
            Pv::PAssertedUri => header_uri(msg, "P-Asserted-Identity"),
            Pv::DiversionUri => header_uri(msg, "Diversion"),
            Pv::RpidUri => header_uri(msg, "Remote-Party-ID"),
        }
    }

    /// Assigns (`$ru = "sip:…"`, `$avp(s:x) = 1`); `all` for `:=` (AVPs).
    /// Fails for the read-only ones.
    pub fn set(&self, ctx: &mut Ctx, value: Value, all: bool) -> Result<(), &'static str> {
        match self {
            Pv::RUri => ctx.ruri = (!value.is_null()).then(|| value.as_text().into_owned()),
            Pv::RUser => ctx.ruri = Some(rewrite(ctx.request_uri(), Part::User, &value.as_text())?),
            Pv::RDomain => ctx.ruri = Some(rewrite(ctx.request_uri(), Part::Host, &value.as_text())?),
            Pv::RPort => ctx.ruri = Some(rewrite(ctx.request_uri(), Part::Port, &value.as_text())?),
            Pv::DstUri => ctx.dst_uri = (!value.is_null()).then(|| value.as_text().into_owned()),
            Pv::MsgFlags => ctx.flags = value.as_int() as u32,
            Pv::ScriptFlags => ctx.script_flags = value.as_int() as u32,
            Pv::BranchFlags => ctx.branch_flags = value.as_int() as u32,
            Pv::Avp(name) => match (value.is_null(), all) {
                (true, _) => ctx.avps.delete(name),
                (false, true) => ctx.avps.set_all(name.clone(), value),
                (false, false) => ctx.avps.push(name.clone(), value),
            },
            Pv::Var(name) => ctx.vars.set(name, value),
            _ => return Err("this pseudo-variable cannot be assigned"),
        }
        Ok(())
    }
}

/// A transformation: `{s.len}`, `{uri.user}`, `{param.value,expires}` …
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transform {
    Len,
    Int,
    Lower,
    Upper,
    Substr(i64, i64),
    Select(i64, char),
    UriUser,
    UriHost,
    UriPort,
    UriParams,
    UriParam(String),
    UriTransport,
    ParamValue(String, char),
    ParamCount(char),
}

impl Transform {
    /// Reads the text between the braces.
    pub fn parse(text: &str) -> Option<Transform> {
        let mut parts = text.split(',');
        let name = parts.next()?.trim();
        let args: Vec<&str> = parts.collect();
        let num = |i: usize| args.get(i).and_then(|a| a.trim().parse::<i64>().ok());
        let sep = |i: usize, default: char| args.get(i).map_or(Some(default), |a| a.chars().next());
        Some(match name {
            "s.len" => Transform::Len,
            "s.int" => Transform::Int,
            "s.tolower" => Transform::Lower,
            "s.toupper" => Transform::Upper,
            "s.substr" => Transform::Substr(num(0)?, num(1)?),
            "s.select" => Transform::Select(num(0)?, sep(1, ',')?),
            "uri.user" => Transform::UriUser,
            "uri.host" => Transform::UriHost,
            "uri.port" => Transform::UriPort,
            "uri.params" => Transform::UriParams,
            "uri.param" => Transform::UriParam(args.first()?.trim().to_string()),
            "uri.transport" => Transform::UriTransport,
            "param.value" => Transform::ParamValue(args.first()?.trim().to_string(), sep(1, ';')?),
            "param.count" => Transform::ParamCount(sep(0, ';')?),
            _ => return None,
        })
    }

    pub fn apply(&self, v: Value) -> Value {
        if v.is_null() {
            return Value::Null;
        }
        let s = v.as_text();
        match self {
            Transform::Len => Value::Int(s.len() as i64),
            Transform::Int => Value::Int(v.as_int()),
            Transform::Lower => Value::Str(s.to_lowercase()),
            Transform::Upper => Value::Str(s.to_uppercase()),
            Transform::Substr(off, len) => {
                let chars: Vec<char> = s.chars().collect();
                let n = chars.len() as i64;
                let start = if *off < 0 { (n + off).max(0) } else { (*off).min(n) };
                let end = if *len <= 0 { n } else { (start + len).min(n) };
                Value::Str(chars[start as usize..end.max(start) as usize].iter().collect())
            }
            Transform::Select(i, sep) => {
                let fields: Vec<&str> = s.split(*sep).collect();
                let k = if *i < 0 { fields.len() as i64 + i } else { *i };
                fields.get(k as usize).filter(|_| k >= 0).map_or(Value::Null, |f| Value::Str(f.to_string()))
            }
            Transform::UriUser => uri_part(&s, Part::User),
            Transform::UriHost => uri_part(&s, Part::Host),
            Transform::UriPort => uri_part(&s, Part::Port),
            Transform::UriParams => uri::parse(&s).map_or(Value::Null, |u| Value::Str(u.params.to_string())),
            Transform::UriParam(name) => uri::parse(&s)
                .ok()
                .and_then(|u| u.param(name))
                .map_or(Value::Null, |v| Value::Str(v.unwrap_or("").to_string())),
            Transform::UriTransport => {
                uri::parse(&s).ok().and_then(|u| u.transport()).map_or(Value::Null, |t| Value::Str(t.to_string()))
            }
            Transform::ParamValue(name, sep) => s
                .split(*sep)
                .map(str::trim)
                .find_map(|p| {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .map_or(Value::Null, Value::Str),
            Transform::ParamCount(sep) => Value::Int(s.split(*sep).filter(|p| !p.trim().is_empty()).count() as i64),
        }
    }
}

/// A part of a URI that [`rewrite`] can replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    User,
    Host,
    Port,
}

fn uri_part(text: &str, part: Part) -> Value {
    let Ok(u) = uri::parse(text) else { return Value::Null };
    match part {
        Part::User => u.user.map_or(Value::Null, |s| Value::Str(s.to_string())),
        Part::Host => Value::Str(u.host_text.to_string()),
        Part::Port => Value::Int(i64::from(u.port.unwrap_or_else(|| u.default_port()))),
    }
}

/// `text` with its user, host or port replaced (OpenSER's `rewriteuser`,
/// `rewritehost`, `rewriteport`); an empty user or port removes it.
pub fn rewrite(text: &str, part: Part, value: &str) -> Result<String, &'static str> {
    let u = uri::parse(text).map_err(|_| "the Request-URI is not a URI")?;
    let scheme = u.scheme.as_str();
    let mut out = String::with_capacity(text.len() + value.len());
    out.push_str(scheme);
    out.push(':');
    let (user, host, port) = match part {
        Part::User => (Some(value).filter(|v| !v.is_empty()), u.host_text, u.port.map(|p| p.to_string())),
        Part::Host => (u.user, value, u.port.map(|p| p.to_string())),
        Part::Port => (u.user, u.host_text, Some(value.to_string()).filter(|v| !v.is_empty())),
    };
    if let Some(user) = user {
        out.push_str(user);
        if let Some(pw) = u.password {
            out.push(':');
            out.push_str(pw);
        }
        out.push('@');
    }
    out.push_str(host);
    if let Some(port) = port {
        let _ = write!(out, ":{port}");
    }
    out.push_str(u.params);
    if !u.headers.is_empty() {
        out.push('?');
        out.push_str(u.headers);
    }
    Ok(out)
}

fn name_addr(msg: &Message, na: crate::sip::values::NameAddr, which: &Pv) -> Value {
    let uri = msg.text(na.uri);
    match which {
        Pv::FromUri | Pv::ToUri => Value::Str(uri.to_string()),
        Pv::FromUser | Pv::ToUser => uri_part(uri, Part::User),
        Pv::FromDomain | Pv::ToDomain => uri_part(uri, Part::Host),
        Pv::FromName | Pv::ToName => {
            na.display.map_or(Value::Null, |d| Value::Str(msg.text(d).trim_matches('"').to_string()))
        }
        _ => na.tag.map_or(Value::Null, |t| Value::Str(msg.text(t).to_string())),
    }
}

/// The URI of the first value of a name-addr header (`<sip:…>;params`).
fn header_uri(msg: &Message, name: &str) -> Value {
    let Some(h) = msg.headers_by_text(name).next() else { return Value::Null };
    let first = crate::sip::values::split_list(msg.bytes(), h.value).next();
    match first.and_then(|v| crate::sip::values::NameAddr::parse(msg.bytes(), v).ok()) {
        Some(na) => Value::Str(msg.text(na.uri).to_string()),
        None => Value::Null,
    }
}

fn header(msg: &Message, name: HeaderName, index: Option<i64>) -> Value {
    msg.headers_named(name)
        .nth(index.unwrap_or(0).max(0) as usize)
        .map_or(Value::Null, |h| Value::Str(msg.text(h.value).to_string()))
}
