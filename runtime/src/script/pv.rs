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
    Hdr(super::args::HdrName),
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
    /// `$mF`, `$sF`, `$bF`: the same flags as 8 lowercase hex digits.
    MsgFlagsHex,
    ScriptFlagsHex,
    BranchFlagsHex,
    /// `$br`: the first extra branch's URI (assigning appends a branch);
    /// `$bR`: every extra branch, `, `-separated, `<uri>;q=…` when q is set.
    Branch,
    Branches,
    /// `$ds`: the destination set as a Contact header line without its CRLF
    /// (the Request-URI in it only once rewritten).
    DestSet,
    /// `$dP`: the transport parameter of `$du` as written (`UDP` without
    /// one; null without `$du`); `$oP`: of the original Request-URI, in
    /// capitals as `$rP`.
    DstProto,
    OProto,
    /// `$mi`: the message's number ([`super::next_msg_id`]).
    MsgId,
    /// `$Ts`: the Unix time of the message (read once per message).
    TimeSecs,
    /// `$Tf`: the same instant as `$Ts`, as `ctime` prints it, in UTC
    /// (OpenSER 1.3 printed local time).
    TimeFormatted,
    /// `$null` (Kamailio).
    Null,
    /// `$fs`: the forced send socket (`proto:ip:port`).
    ForcedSocket,
    /// `$pp`: the process id.
    Pid,
    /// `$rP`: the Request-URI's transport as written (`UDP` unless it says otherwise).
    RProto,
    /// `$rt`: the Refer-To URI; `$pu`/`$pU`: P-Preferred-Identity URI and user;
    /// `$ai`: P-Asserted-Identity URI; `$di`: Diversion URI; `$re`: Remote-Party-ID URI.
    ReferTo,
    PPreferredUri,
    PPreferredUser,
    /// `$pd`, `$pn`: P-Preferred-Identity domain and display name (without
    /// its quotes, as `$fn`).
    PPreferredDomain,
    PPreferredName,
    PAssertedUri,
    DiversionUri,
    RpidUri,
    /// `$au`, `$aU`, `$ar`, `$adu`: of the digest credentials a request carries
    /// (Proxy-Authorization, else Authorization; verified or not): the user part
    /// of the username, the whole username, the realm, the digest URI.
    AuthUser,
    AuthUsername,
    AuthRealm,
    AuthUri,
    /// `$Au`: the user to account: `user@realm` of the credentials the auth
    /// module verified, else `user@host` of the From URI.
    AccUser,
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
            ("mF", None) => Pv::MsgFlagsHex,
            ("sF", None) => Pv::ScriptFlagsHex,
            ("bF", None) => Pv::BranchFlagsHex,
            ("br", None) => Pv::Branch,
            ("bR", None) => Pv::Branches,
            ("ds", None) => Pv::DestSet,
            ("dP", None) => Pv::DstProto,
            ("oP", None) => Pv::OProto,
            ("mi", None) => Pv::MsgId,
            ("Tf", None) => Pv::TimeFormatted,
            ("pd", None) => Pv::PPreferredDomain,
            ("pn", None) => Pv::PPreferredName,
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
            ("au", None) => Pv::AuthUser,
            ("aU", None) => Pv::AuthUsername,
            ("ar", None) => Pv::AuthRealm,
            ("adu", None) => Pv::AuthUri,
            ("Au", None) => Pv::AccUser,
            ("hdr", Some(h)) if !h.is_empty() => Pv::Hdr(super::args::HdrName::new(h)),
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
                // The name was recognised when the config was prepared.
                let lines = || msg.headers_named_as(name.name, &name.text);
                let i = index.unwrap_or(0);
                let pick = if i >= 0 {
                    lines().nth(i as usize)
                } else {
                    lines().count().checked_sub(i.unsigned_abs() as usize).and_then(|k| lines().nth(k))
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
            Pv::MsgFlagsHex => hex_flags(ctx.flags),
            Pv::ScriptFlagsHex => hex_flags(ctx.script_flags),
            Pv::BranchFlagsHex => hex_flags(ctx.branch_flags),
            Pv::Branch if is_reply(msg) => Value::Null,
            Pv::Branch => ctx.branches.first().map_or(Value::Null, |b| text(&b.uri)),
            Pv::Branches if is_reply(msg) || ctx.branches.is_empty() => Value::Null,
            Pv::Branches => {
                let mut out = String::new();
                for (i, b) in ctx.branches.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    push_contact(&mut out, &b.uri, b.q);
                }
                Value::Str(out)
            }
            Pv::DestSet => dest_set(ctx),
            Pv::DstProto => ctx.dst_uri.as_deref().map_or(Value::Null, uri_proto),
            Pv::OProto => uri_proto(ctx.original_uri()),
            Pv::MsgId => Value::Int(i64::from(ctx.msg_id)),
            Pv::TimeSecs => Value::Int(ctx.time()),
            Pv::TimeFormatted => Value::Str(ctime_utc(ctx.time())),
            Pv::Null => Value::Null,
            Pv::Color => Value::Str(String::new()),
            Pv::ForcedSocket => ctx.send_socket.map_or(Value::Null, |a| {
                let proto = ctx.locals.iter().find(|l| l.addr == a).map_or("udp", |l| l.transport.as_str());
                Value::Str(format!("{}:{a}", proto.to_ascii_lowercase()))
            }),
            Pv::Pid => Value::Int(i64::from(std::process::id())),
            Pv::RProto => uri_proto(ctx.request_uri()),
            Pv::ReferTo => header_uri(msg, "Refer-To"),
            Pv::PPreferredUri => header_uri(msg, "P-Preferred-Identity"),
            Pv::PPreferredUser => match header_uri(msg, "P-Preferred-Identity") {
                Value::Str(u) => uri_part(&u, Part::User),
                v => v,
            },
            Pv::PPreferredDomain => match header_uri(msg, "P-Preferred-Identity") {
                Value::Str(u) => match uri_part(&u, Part::Host) {
                    Value::Str(h) if h.is_empty() => Value::Null,
                    h => h,
                },
                v => v,
            },
            Pv::PPreferredName => header_name_addr(msg, "P-Preferred-Identity")
                .and_then(|na| na.display)
                .map(|d| msg.text(d).trim_matches('"'))
                .filter(|d| !d.is_empty())
                .map_or(Value::Null, text),
            Pv::PAssertedUri => header_uri(msg, "P-Asserted-Identity"),
            Pv::DiversionUri => header_uri(msg, "Diversion"),
            Pv::RpidUri => header_uri(msg, "Remote-Party-ID"),
            Pv::AuthUser | Pv::AuthUsername | Pv::AuthRealm | Pv::AuthUri => credentials_part(msg, self),
            Pv::AccUser => acc_user(ctx),
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
            Pv::MsgFlagsHex => ctx.flags = flags_from(&value),
            Pv::ScriptFlagsHex => ctx.script_flags = flags_from(&value),
            Pv::BranchFlagsHex => ctx.branch_flags = flags_from(&value),
            Pv::Branch => {
                let Value::Str(uri) = value else { return Err("$br takes a string") };
                if uri.is_empty() {
                    return Err("$br takes a non-empty URI");
                }
                if ctx.branches.len() >= crate::modules::core::MAX_BRANCHES - 1 {
                    return Err("too many branches");
                }
                let send_socket = ctx.send_socket;
                ctx.branches.push(super::Branch { uri, dst_uri: None, q: None, flags: 0, send_socket, path: None });
            }
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

/// The first value of the first `name` header, read as a name-addr.
fn header_name_addr(msg: &Message, name: &str) -> Option<crate::sip::values::NameAddr> {
    let h = msg.headers_by_text(name).next()?;
    let first = crate::sip::values::split_list(msg.bytes(), h.value).next()?;
    crate::sip::values::NameAddr::parse(msg.bytes(), first).ok()
}

/// The URI of the first value of a name-addr header (`<sip:…>;params`).
fn header_uri(msg: &Message, name: &str) -> Value {
    header_name_addr(msg, name).map_or(Value::Null, |na| Value::Str(msg.text(na.uri).to_string()))
}

/// `$au` `$aU` `$ar` `$adu`: from the first Proxy-Authorization header, else
/// the first Authorization header, of a request other than ACK and CANCEL
/// (OpenSER 1.3's `pv_get_authattr`); null without digest credentials, and
/// for a parameter they lack.
fn credentials_part(msg: &Message, which: &Pv) -> Value {
    use crate::modules::uri::digest_param;
    use crate::sip::Method;
    if is_reply(msg) || matches!(msg.method(), Some(Method::Ack | Method::Cancel)) {
        return Value::Null;
    }
    let Some(h) = msg.header(HeaderName::ProxyAuthorization).or_else(|| msg.header(HeaderName::Authorization)) else {
        return Value::Null;
    };
    let credentials = msg.text(h.value);
    let value = match which {
        Pv::AuthUser => crate::modules::uri::digest_user(credentials),
        Pv::AuthUsername => digest_param(credentials, "username"),
        Pv::AuthRealm => digest_param(credentials, "realm"),
        _ => digest_param(credentials, "uri").filter(|u| !u.is_empty()),
    };
    value.map_or(Value::Null, |v| Value::Str(v.into_owned()))
}

/// `$Au` (OpenSER 1.3's `pv_get_acc_username`): `user@realm` (or `user`
/// without a realm) of the credentials the auth module verified — proxy
/// credentials first — else `user@host` of the From URI, else "".
fn acc_user(ctx: &Ctx) -> Value {
    use crate::modules::uri::{digest_param, digest_user};
    let msg = ctx.msg;
    if let Some(credentials) = ctx.authorized.credentials(msg) {
        if let Some(user) = digest_user(credentials) {
            return Value::Str(match digest_param(credentials, "realm") {
                Some(realm) => format!("{user}@{realm}"),
                None => user.into_owned(),
            });
        }
    }
    let from = msg.text(msg.from().uri).to_string();
    match uri::parse(&from) {
        Ok(u) => Value::Str(format!("{}@{}", u.user.unwrap_or(""), u.host_text)),
        Err(_) if from.is_empty() => Value::Str(String::new()),
        Err(_) => Value::Null,
    }
}

fn is_reply(msg: &Message) -> bool {
    matches!(msg.start, crate::sip::StartLine::Response { .. })
}

/// `$rP`/`$oP`/`$dP`: a URI's `transport` parameter as written (`tcp`), `UDP`
/// when it has none, as 1.3 reads `$dP` (its `$rP`/`$oP` gave the whole
/// `transport=tcp` parameter, a slip Kamailio fixed by doing as `$dP` does);
/// null when the text is not a URI.
fn uri_proto(text: &str) -> Value {
    match uri::parse(text) {
        Ok(u) => Value::Str(u.transport().unwrap_or("UDP").to_string()),
        Err(_) => Value::Null,
    }
}

/// `$mF`, `$sF`, `$bF`: eight hex digits, lowercase, zero-padded.
fn hex_flags(flags: u32) -> Value {
    Value::Str(format!("{flags:08x}"))
}

/// The flags assigned to `$mF`, `$sF` or `$bF`. OpenSER 1.3 takes the
/// number of the value; here a number is taken as is, null clears, and a
/// string of exactly eight hex digits (what these variables read) is read as
/// hex, so `$bF = $mF` copies the flags; any other string is read as decimal,
/// as for `$bf`.
fn flags_from(value: &Value) -> u32 {
    match value {
        Value::Str(s) if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(s, 16).unwrap_or(0)
        }
        v => v.as_int() as u32,
    }
}

/// A q-value in thousandths as OpenSER 1.3 prints it: `1`, `0`, or `0.` and
/// up to three digits without trailing zeros (`0.5`, `0.25`, `0.005`).
pub fn q_text(q: u16) -> String {
    match q {
        1000.. => "1".to_string(),
        0 => "0".to_string(),
        _ => {
            let digits = format!("{q:03}");
            format!("0.{}", digits.trim_end_matches('0'))
        }
    }
}

/// One destination as a Contact value: the bare URI, or `<uri>;q=…` when
/// its q-value is set.
fn push_contact(out: &mut String, uri: &str, q: Option<u16>) {
    match q {
        Some(q) => {
            let _ = write!(out, "<{uri}>;q={}", q_text(q));
        }
        None => out.push_str(uri),
    }
}

/// `$ds`: OpenSER 1.3's `print_dset` without the final CRLF — `Contact: `
/// and the destinations, `, `-separated: the Request-URI first, but only when
/// the script rewrote it, then the extra branches. Null when there is none.
fn dest_set(ctx: &Ctx) -> Value {
    if ctx.ruri.is_none() && ctx.branches.is_empty() {
        return Value::Null;
    }
    let mut out = String::from("Contact: ");
    let rewritten = ctx.ruri.as_deref().map(|u| (u, ctx.ruri_q));
    let branches = ctx.branches.iter().map(|b| (b.uri.as_str(), b.q));
    for (i, (uri, q)) in rewritten.into_iter().chain(branches).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_contact(&mut out, uri, q);
    }
    Value::Str(out)
}

/// Unix seconds as C's `ctime` prints them, without the newline, in UTC:
/// `Thu Nov 26 16:07:34 2026` (the day of the month padded with a space).
/// OpenSER 1.3's `$Tf` used the local time zone; a proxy's logs in UTC do
/// not depend on the host's settings.
pub fn ctime_utc(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs.div_euclid(86_400);
    let (year, month, day, hour, minute, second) = crate::db::civil(secs);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        hour,
        minute,
        second,
        year
    )
}

fn header(msg: &Message, name: HeaderName, index: Option<i64>) -> Value {
    msg.headers_named(name)
        .nth(index.unwrap_or(0).max(0) as usize)
        .map_or(Value::Null, |h| Value::Str(msg.text(h.value).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{Source, Transport};
    use crate::script::{Config, Vars};
    use crate::sip::Framing;
    use bytes::Bytes;

    const INVITE: &str = "INVITE sip:bob@example.com;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.10:5062;branch=z9hG4bKpv\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1\r\n\
Call-ID: pv-test@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
P-Preferred-Identity: \"Alice Smith\" <sip:+15551000@pref.example.com>, <tel:+15551000>\r\n\
Content-Length: 0\r\n\r\n";

    const REPLY: &str = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKpv\r\n\
To: <sip:bob@example.com>;tag=2\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
Call-ID: pv-test@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

    fn message(text: &str) -> Message {
        Message::parse(Bytes::from(text.to_string()), Framing::Datagram).unwrap()
    }

    fn source() -> Source {
        Source {
            transport: Transport::Udp,
            addr: "192.0.2.10:5062".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
        }
    }

    fn pv(name: &str) -> Pv {
        Pv::parse(name, None).unwrap_or_else(|| panic!("${name}"))
    }

    fn get(ctx: &Ctx, name: &str) -> Value {
        pv(name).get(ctx, None)
    }

    fn set(ctx: &mut Ctx, name: &str, value: Value) -> Result<(), &'static str> {
        pv(name).set(ctx, value, false)
    }

    #[test]
    fn credentials_and_the_user_to_account() {
        let with_auth = |headers: &str, method: &str| {
            message(
                &INVITE.replace("Content-Length: 0", &format!("{headers}Content-Length: 0")).replace("INVITE", method),
            )
        };
        let www = "Authorization: Digest username=\"alice@example.com\", realm=\"example.com\", nonce=\"n\", uri=\"sip:bob@example.com\", response=\"0\"\r\n";
        let proxy = "Proxy-Authorization: Digest username=\"carol\", realm=\"proxy.example.com\", nonce=\"n\", response=\"0\"\r\n";
        let (config, mut vars) = (Config::default(), Vars::default());

        let msg = with_auth(www, "INVITE");
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        let all = |ctx: &Ctx| ["au", "aU", "ar", "adu", "Au"].map(|n| get(ctx, n));
        assert_eq!(
            all(&ctx),
            [
                Value::str("alice"),
                Value::str("alice@example.com"),
                Value::str("example.com"),
                Value::str("sip:bob@example.com"),
                // Not verified: $Au is the From URI's user@host.
                Value::str("alice@example.com"),
            ]
        );
        ctx.authorized.www = msg.headers.iter().position(|h| h.name == HeaderName::Authorization);
        assert_eq!(get(&ctx, "Au"), Value::str("alice@example.com"), "user@realm of the verified credentials");
        drop(ctx);

        // Proxy-Authorization first; a missing uri is null.
        let msg = with_auth(&format!("{www}{proxy}"), "INVITE");
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        assert_eq!(
            all(&ctx)[..4],
            [Value::str("carol"), Value::str("carol"), Value::str("proxy.example.com"), Value::Null]
        );
        ctx.authorized.proxy = msg.headers.iter().position(|h| h.name == HeaderName::ProxyAuthorization);
        assert_eq!(get(&ctx, "Au"), Value::str("carol@proxy.example.com"));
        drop(ctx);

        // No credentials, ACK and CANCEL, Basic credentials, a reply: null.
        for msg in [message(INVITE), with_auth(www, "ACK"), with_auth(www, "CANCEL"), message(REPLY)] {
            let ctx = Ctx::new(&msg, source(), &config, &mut vars);
            assert_eq!(all(&ctx)[..4], [Value::Null, Value::Null, Value::Null, Value::Null], "{:?}", msg.method());
        }
        let msg = with_auth("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n", "INVITE");
        let ctx = Ctx::new(&msg, source(), &config, &mut vars);
        assert_eq!(get(&ctx, "au"), Value::Null);
    }

    #[test]
    fn hex_flags_read_and_assign() {
        let (msg, config, mut vars) = (message(INVITE), Config::default(), Vars::default());
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        for name in ["mF", "sF", "bF"] {
            assert_eq!(get(&ctx, name), Value::str("00000000"), "${name}");
        }
        set(&mut ctx, "mF", Value::Int(10)).unwrap();
        assert_eq!((ctx.flags, get(&ctx, "mF"), get(&ctx, "mf")), (10, Value::str("0000000a"), Value::Int(10)));
        set(&mut ctx, "sF", Value::Int(i64::from(u32::MAX))).unwrap();
        assert_eq!(get(&ctx, "sF"), Value::str("ffffffff"));
        // What the hex variables read is read back as hex: `$bF = $mF`.
        let m = get(&ctx, "mF");
        set(&mut ctx, "bF", m).unwrap();
        assert_eq!(ctx.branch_flags, 10);
        set(&mut ctx, "bF", Value::str("8000000F")).unwrap();
        assert_eq!((ctx.branch_flags, get(&ctx, "bF")), (0x8000_000f, Value::str("8000000f")));
        // Any other string is decimal, as for `$bf`; null clears.
        set(&mut ctx, "bF", Value::str("12")).unwrap();
        assert_eq!(get(&ctx, "bF"), Value::str("0000000c"));
        set(&mut ctx, "sF", Value::Null).unwrap();
        assert_eq!((ctx.script_flags, get(&ctx, "sF")), (0, Value::str("00000000")));
        // The decimal ones see the same flags.
        set(&mut ctx, "bf", Value::Int(255)).unwrap();
        assert_eq!(get(&ctx, "bF"), Value::str("000000ff"));
    }

    #[test]
    fn branches_and_the_destination_set() {
        let (msg, config, mut vars) = (message(INVITE), Config::default(), Vars::default());
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        for name in ["br", "bR", "ds"] {
            assert_eq!(get(&ctx, name), Value::Null, "${name} without branches");
        }
        // `$br = …` appends a branch: no `$du`, no flags, q unspecified, the forced socket.
        ctx.dst_uri = Some("sip:192.0.2.99".into());
        ctx.branch_flags = 4;
        ctx.send_socket = Some("127.0.0.1:5060".parse().unwrap());
        set(&mut ctx, "br", Value::str("sip:a@example.net")).unwrap();
        let first = &ctx.branches[0];
        assert_eq!((first.dst_uri.as_deref(), first.q, first.flags), (None, None, 0));
        assert_eq!(first.send_socket, ctx.send_socket);
        assert_eq!(get(&ctx, "br"), Value::str("sip:a@example.net"));
        assert_eq!(get(&ctx, "bR"), Value::str("sip:a@example.net"));
        // The R-URI is in `$ds` only once rewritten.
        assert_eq!(get(&ctx, "ds"), Value::str("Contact: sip:a@example.net"));
        for bad in [Value::Null, Value::str(""), Value::Int(1)] {
            assert!(set(&mut ctx, "br", bad).is_err());
        }
        for (uri, q) in [("sip:b@example.net", 500), ("sip:c@example.net", 1000), ("sip:d@example.net", 0)] {
            set(&mut ctx, "br", Value::str(uri)).unwrap();
            ctx.branches.last_mut().unwrap().q = Some(q);
        }
        set(&mut ctx, "br", Value::str("sip:e@example.net")).unwrap();
        ctx.branches.last_mut().unwrap().q = Some(5);
        assert_eq!(get(&ctx, "br"), Value::str("sip:a@example.net"), "the first branch");
        let all = "sip:a@example.net, <sip:b@example.net>;q=0.5, <sip:c@example.net>;q=1, \
                   <sip:d@example.net>;q=0, <sip:e@example.net>;q=0.005";
        assert_eq!(get(&ctx, "bR"), Value::str(all));
        assert_eq!(get(&ctx, "ds"), Value::str(format!("Contact: {all}")));
        set(&mut ctx, "ru", Value::str("sip:bob@192.0.2.20")).unwrap();
        assert_eq!(get(&ctx, "ds"), Value::str(format!("Contact: sip:bob@192.0.2.20, {all}")));
        ctx.ruri_q = Some(250);
        assert_eq!(get(&ctx, "ds"), Value::str(format!("Contact: <sip:bob@192.0.2.20>;q=0.25, {all}")));
        // Rewritten, even to the same URI, without branches.
        ctx.branches.clear();
        ctx.ruri_q = None;
        set(&mut ctx, "ru", Value::str("sip:bob@example.com;transport=tcp")).unwrap();
        assert_eq!(get(&ctx, "ds"), Value::str("Contact: sip:bob@example.com;transport=tcp"));
        // As many branches as OpenSER 1.3 keeps, and no more.
        let max = crate::modules::core::MAX_BRANCHES;
        for i in 1..max {
            set(&mut ctx, "br", Value::str(format!("sip:{i}@example.net"))).unwrap();
        }
        assert!(set(&mut ctx, "br", Value::str("sip:over@example.net")).is_err());
        assert_eq!(ctx.branches.len(), max - 1);
    }

    #[test]
    fn q_values_print_as_openser_does() {
        let cases = [(0, "0"), (1, "0.001"), (5, "0.005"), (50, "0.05"), (100, "0.1"), (250, "0.25")];
        for (q, text) in cases.into_iter().chain([(500, "0.5"), (999, "0.999"), (1000, "1"), (1500, "1")]) {
            assert_eq!(q_text(q), text, "q={q}");
        }
    }

    #[test]
    fn transports_of_du_and_the_original_uri() {
        let (msg, config, mut vars) = (message(INVITE), Config::default(), Vars::default());
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        assert_eq!(get(&ctx, "dP"), Value::Null, "no $du");
        for (du, proto) in [
            ("sip:192.0.2.99", Value::str("UDP")),
            ("sip:192.0.2.99:5070;transport=tcp", Value::str("tcp")),
            ("sips:192.0.2.99;transport=TLS", Value::str("TLS")),
            ("not a uri", Value::Null),
        ] {
            ctx.dst_uri = Some(du.into());
            assert_eq!(get(&ctx, "dP"), proto, "$du = {du}");
        }
        assert_eq!((get(&ctx, "oP"), get(&ctx, "rP")), (Value::str("tcp"), Value::str("tcp")));
        set(&mut ctx, "ru", Value::str("sip:bob@192.0.2.20;transport=SCTP")).unwrap();
        assert_eq!((get(&ctx, "oP"), get(&ctx, "rP")), (Value::str("tcp"), Value::str("SCTP")));
        set(&mut ctx, "ru", Value::str("sip:bob@192.0.2.20")).unwrap();
        assert_eq!((get(&ctx, "oP"), get(&ctx, "rP")), (Value::str("tcp"), Value::str("UDP")));
        assert!(set(&mut ctx, "oP", Value::str("UDP")).is_err(), "read-only");
        assert!(set(&mut ctx, "dP", Value::str("UDP")).is_err(), "read-only");
    }

    #[test]
    fn p_preferred_identity_parts() {
        let (msg, config, mut vars) = (message(INVITE), Config::default(), Vars::default());
        let ctx = Ctx::new(&msg, source(), &config, &mut vars);
        assert_eq!(get(&ctx, "pu"), Value::str("sip:+15551000@pref.example.com"));
        assert_eq!(get(&ctx, "pU"), Value::str("+15551000"));
        assert_eq!(get(&ctx, "pd"), Value::str("pref.example.com"));
        assert_eq!(get(&ctx, "pn"), Value::str("Alice Smith"));
        let bare = message(&INVITE.replace("\"Alice Smith\" <sip:+15551000@", "<sip:"));
        let mut vars = Vars::default();
        let ctx = Ctx::new(&bare, source(), &config, &mut vars);
        assert_eq!((get(&ctx, "pd"), get(&ctx, "pn")), (Value::str("pref.example.com"), Value::Null));
        let tel = message(&INVITE.replace("\"Alice Smith\" <sip:+15551000@pref.example.com>, ", ""));
        let mut vars = Vars::default();
        let ctx = Ctx::new(&tel, source(), &config, &mut vars);
        assert_eq!(get(&ctx, "pu"), Value::str("tel:+15551000"));
        // A TEL URI's number is its user; it has no domain.
        assert_eq!(get(&ctx, "pU"), Value::str("+15551000"));
        assert_eq!((get(&ctx, "pd"), get(&ctx, "pn")), (Value::Null, Value::Null));
        let reply = message(REPLY);
        let mut vars = Vars::default();
        let ctx = Ctx::new(&reply, source(), &config, &mut vars);
        assert_eq!((get(&ctx, "pd"), get(&ctx, "pn")), (Value::Null, Value::Null), "no header");
    }

    #[test]
    fn message_id_and_time() {
        let (msg, config, mut vars) = (message(INVITE), Config::default(), Vars::default());
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        assert_eq!(get(&ctx, "mi"), Value::Int(0), "not numbered outside the pipeline");
        let (a, b) = (crate::script::next_msg_id(), crate::script::next_msg_id());
        assert!(a >= 1 && b > a, "{a} then {b}");
        ctx.msg_id = b;
        assert_eq!(get(&ctx, "mi"), Value::Int(i64::from(b)));
        // `$Ts` and `$Tf` are one instant for the whole message.
        let secs = get(&ctx, "Ts");
        assert_eq!(get(&ctx, "Tf"), Value::Str(ctime_utc(secs.as_int())));
        assert_eq!(get(&ctx, "Ts"), secs);
        assert!(secs.as_int() > 1_700_000_000);
        for (t, text) in [
            (0, "Thu Jan  1 00:00:00 1970"),
            (-1, "Wed Dec 31 23:59:59 1969"),
            (951_782_400, "Tue Feb 29 00:00:00 2000"),
            (1_795_709_254, "Thu Nov 26 16:07:34 2026"),
            (253_402_300_799, "Fri Dec 31 23:59:59 9999"),
        ] {
            assert_eq!(ctime_utc(t), text, "{t}");
        }
        assert!(set(&mut ctx, "mi", Value::Int(1)).is_err() && set(&mut ctx, "Tf", Value::Int(1)).is_err());
    }

    #[test]
    fn in_a_reply() {
        let (msg, config, mut vars) = (message(REPLY), Config::default(), Vars::default());
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        ctx.branches.push(crate::script::Branch { uri: "sip:a@example.net".into(), ..Default::default() });
        assert_eq!((get(&ctx, "br"), get(&ctx, "bR")), (Value::Null, Value::Null), "no branches in a reply");
        assert_eq!((get(&ctx, "oP"), get(&ctx, "dP")), (Value::Null, Value::Null));
        assert_eq!(get(&ctx, "mF"), Value::str("00000000"));
        assert!(matches!(get(&ctx, "Tf"), Value::Str(s) if s.len() == 24));
    }
}

#[cfg(test)]
mod manifest_agrees {
    use super::{Pv, Transform};

    /// The list the code generator trusts (`serc_manifest::pvars`) is what this parser reads.
    #[test]
    fn every_listed_pvar_and_transform_parses() {
        for name in crate::manifest::pvars::PLAIN {
            assert!(Pv::parse(name, None).is_some(), "${name}");
        }
        for name in crate::manifest::pvars::WITH_INNER {
            assert!(Pv::parse(name, Some("s:x")).is_some(), "${name}(..)");
        }
        for name in crate::manifest::pvars::TRANSFORMS {
            let text = match *name {
                "s.substr" => "s.substr,1,2".to_string(),
                "s.select" => "s.select,1,;".to_string(),
                "uri.param" | "param.value" => format!("{name},x"),
                _ => name.to_string(),
            };
            assert!(Transform::parse(&text).is_some(), "{{{text}}}");
        }
        assert!(Pv::parse("T_reply_code", None).is_none());
    }
}
