//! Checks of literal arguments by their manifest kind, the way OpenSER's fixups
//! check them at start-up — but before anything runs.

use serc_manifest::ArgKind;

use super::pvars;
use crate::diag::{Diagnostic, Kind};
use crate::source::{SourceMap, Span};
use crate::syntax::ast::StrLit;

/// Checks the string `lit` as an argument of kind `kind`; `what` names the
/// argument in messages (`` the reply code of `sl_send_reply` ``).
pub fn check_str(kind: ArgKind, lit: &StrLit, what: &str, sources: &SourceMap, strict_pvars: bool) -> Vec<Diagnostic> {
    let v = lit.value.as_str();
    let mut out = Vec::new();
    let mut bad = |msg: String, label: &str| {
        out.push(Diagnostic::error(Kind::Argument, lit.span, msg).with_label(label.to_string()));
    };
    let dynamic = v.contains('$');
    match kind {
        ArgKind::Str | ArgKind::Opaque | ArgKind::Table => {}
        ArgKind::Format => return pvars::check_format(lit, sources, strict_pvars),
        ArgKind::Int => {
            if !dynamic && parse_int(v).is_none() {
                bad(format!("{what} must be a number, found \"{v}\""), "not a number");
            }
        }
        ArgKind::Flag => match parse_int(v) {
            Some(n) if (0..=31).contains(&n) => {}
            Some(n) => bad(format!("{what} must be a flag number from 0 to 31, found {n}"), "no such flag"),
            None if dynamic => {}
            None => bad(format!("{what} must be a flag number, found \"{v}\""), "not a number"),
        },
        ArgKind::ReplyCode => {
            if dynamic {
                return pvars::check_format(lit, sources, strict_pvars);
            }
            match parse_int(v) {
                Some(n) if (100..=699).contains(&n) => {}
                Some(n) => {
                    bad(format!("{what} must be a SIP reply code from 100 to 699, found {n}"), "not a reply code")
                }
                None => bad(format!("{what} must be a SIP reply code, found \"{v}\""), "not a number"),
            }
        }
        ArgKind::Regex => return check_regex(lit, what, sources),
        ArgKind::Subst => return check_subst(lit, what, sources),
        ArgKind::PVar | ArgKind::Avp => {
            let name = v.trim();
            let ok = if kind == ArgKind::Avp && !name.starts_with('$') {
                // `s:name`, `i:3`, or an alias name.
                !name.is_empty()
            } else {
                pvars::parse_one(name).is_some_and(|p| !strict_pvars || pvars::known(&p.name))
            };
            if !ok {
                let expected = if kind == ArgKind::Avp { "an AVP (`$avp(s:name)`)" } else { "a pseudo-variable" };
                bad(format!("{what} must be {expected}, found \"{v}\""), "not a pseudo-variable");
            }
        }
        ArgKind::Uri => {
            if dynamic {
                return pvars::check_format(lit, sources, strict_pvars);
            }
            let lower = v.to_ascii_lowercase();
            if !(lower.starts_with("sip:") || lower.starts_with("sips:") || lower.starts_with("tel:")) || v.len() < 5 {
                bad(format!("{what} must be a SIP URI (`sip:user@host`), found \"{v}\""), "not a SIP URI");
            }
        }
        ArgKind::HostPort => {
            if !dynamic && !valid_hostport(v) {
                bad(format!("{what} must be `host[:port]`, found \"{v}\""), "not host:port");
            }
        }
        ArgKind::Socket => {
            // (tm's `t_relay("0x01")` reads a number as flags.)
            if !dynamic && !valid_socket(v) && parse_int(v).is_none() {
                bad(format!("{what} must be `[proto:]host[:port]`, found \"{v}\""), "not a socket");
            }
        }
        ArgKind::HeaderName => {
            if !dynamic && (v.is_empty() || !v.bytes().all(is_token_char)) {
                bad(format!("{what} must be a header name, found \"{v}\""), "not a header name");
            }
        }
        ArgKind::HeaderField => {
            let name = v.split(':').next().unwrap_or("");
            if !v.contains(':') || name.is_empty() || !name.trim().bytes().all(is_token_char) {
                bad(
                    format!("{what} must be a header field `Name: value\\r\\n`, found \"{}\"", v.escape_default()),
                    "not a header field",
                );
            } else if !v.ends_with("\r\n") {
                out.push(
                    Diagnostic::warning(Kind::Argument, lit.span, format!("{what} does not end with `\\r\\n`"))
                        .with_label("the header runs into the next one")
                        .with_help("end the header with `\\r\\n`, as OpenSER inserts the text as it is"),
                );
            }
        }
        ArgKind::FailureRoute | ArgKind::ReplyRoute | ArgKind::BranchRoute => {} // resolved by the route checks
        ArgKind::Methods => {
            if !dynamic && v.split('|').any(|m| m.is_empty() || !m.bytes().all(is_token_char)) {
                bad(format!("{what} must be method names separated by `|`, found \"{v}\""), "not a method list");
            }
        }
        ArgKind::LogLevel => {
            // OpenSER 1.3's xlog reads the third letter only: `L_E…` is L_ERR.
            const LEVELS: &[&str] = &["L_ALERT", "L_CRIT", "L_ERR", "L_WARN", "L_NOTICE", "L_INFO", "L_DBG"];
            let third = v.as_bytes().get(2).copied();
            let canonical = LEVELS.iter().find(|l| l.as_bytes()[2] == third.unwrap_or(0)).copied();
            match canonical {
                _ if dynamic || !strict_pvars => {}
                Some(level) if v.len() >= 3 => {
                    if v != level {
                        out.push(
                            Diagnostic::warning(Kind::Argument, lit.span, format!("{what} `{v}` is read as `{level}`"))
                                .with_label(format!("OpenSER looks at the third letter only: `{level}`"))
                                .with_help(format!("write `{level}`")),
                        );
                    }
                }
                _ => {
                    let mut d = Diagnostic::error(
                        Kind::Argument,
                        lit.span,
                        format!("{what} must be a log level, found \"{v}\""),
                    )
                    .with_label("not a log level")
                    .with_note(format!("levels are {}", LEVELS.join(", ")));
                    if let Some(s) = crate::syntax::suggest(v, LEVELS) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    out.push(d);
                }
            }
        }
    }
    out
}

pub fn parse_int(v: &str) -> Option<i64> {
    let t = v.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    t.parse().ok()
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn valid_host(h: &str) -> bool {
    if let Some(v6) = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' || b == b'*')
}

fn valid_port(p: &str) -> bool {
    p.parse::<u16>().is_ok_and(|p| p > 0)
}

fn split_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        match s.find("]:") {
            Some(i) => (&s[..i + 1], Some(&s[i + 2..])),
            None => (s, None),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    }
}

fn valid_hostport(v: &str) -> bool {
    let (h, p) = split_port(v);
    valid_host(h) && p.is_none_or(valid_port)
}

fn valid_socket(v: &str) -> bool {
    let rest = match v.split_once(':') {
        Some((proto, rest)) if ["udp", "tcp", "tls", "sctp", "any"].contains(&proto.to_ascii_lowercase().as_str()) => {
            rest
        }
        _ => v,
    };
    valid_hostport(rest)
}

/// The span of bytes `range` of a string literal's value in the source, read
/// through the literal's escapes; the whole literal when the value was built
/// from several pieces (adjacent strings, a `#!define`).
pub fn inner_span(lit: &StrLit, range: std::ops::Range<usize>, sources: &SourceMap) -> Span {
    let src = sources.snippet(lit.span);
    let Some(map) = value_offsets(src) else { return lit.span };
    if map.len() != lit.value.len() + 1 {
        return lit.span;
    }
    let at = |i: usize| map[i.min(map.len() - 1)];
    let start = at(range.start);
    let end = at(range.end.max(range.start + 1)).max(start + 1).min(src.len() - 1);
    Span::new(lit.span.file, lit.span.start as usize + start, lit.span.start as usize + end)
}

/// For a string literal's source text (with its quotes), the source offset of
/// each byte of its value, and one past the end — the escapes of cfg.lex.
fn value_offsets(src: &str) -> Option<Vec<usize>> {
    let b = src.as_bytes();
    let quote = *b.first()?;
    if !(quote == b'"' || quote == b'\'') || b.len() < 2 || b[b.len() - 1] != quote {
        return None;
    }
    let end = b.len() - 1;
    let mut map = Vec::with_capacity(end);
    let mut i = 1;
    while i < end {
        if quote == b'"' && b[i] == b'\\' && i + 1 < end {
            let n = b[i + 1];
            let len = match n {
                b'n' | b'r' | b'a' | b't' | b'"' | b'\\' => 2,
                b'\n' => {
                    i += 2; // an escaped line end adds nothing
                    continue;
                }
                b'x' if b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) => {
                    if b.get(i + 3).is_some_and(u8::is_ascii_hexdigit) {
                        4
                    } else {
                        3
                    }
                }
                b'0'..=b'7' if matches!(b.get(i + 2), Some(b'0'..=b'7')) => {
                    if matches!(b.get(i + 3), Some(b'0'..=b'7')) {
                        4
                    } else {
                        3
                    }
                }
                _ => {
                    map.push(i); // an unknown escape keeps its backslash
                    i += 1;
                    continue;
                }
            };
            // One value char (possibly two bytes when ≥ 0x80): all map to the escape.
            let ch_len = match n {
                b'x' | b'0'..=b'7' => {
                    let digits = &src[i + if n == b'x' { 2 } else { 1 }..i + len];
                    let v = u32::from_str_radix(digits, if n == b'x' { 16 } else { 8 }).unwrap_or(0) & 0xff;
                    char::from_u32(v).map_or(1, char::len_utf8)
                }
                _ => 1,
            };
            map.extend(std::iter::repeat_n(i, ch_len));
            i += len;
        } else {
            map.push(i);
            i += 1;
        }
    }
    map.push(end);
    Some(map)
}

/// Compiles a regular expression now, so a bad one is an error at build time
/// with the caret in the string (OpenSER compiles it with regcomp at start-up).
pub fn check_regex(lit: &StrLit, what: &str, sources: &SourceMap) -> Vec<Diagnostic> {
    check_pattern(&lit.value, 0, lit, what, sources)
}

fn check_pattern(pattern: &str, offset: usize, lit: &StrLit, what: &str, sources: &SourceMap) -> Vec<Diagnostic> {
    if pattern.contains('$') && pattern.contains("$(") {
        return Vec::new(); // a pseudo-variable inside: compiled per message
    }
    match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let s = e.span();
            let span = inner_span(lit, offset + s.start.offset..offset + s.end.offset, sources);
            vec![Diagnostic::error(Kind::Argument, span, format!("{what} is not a valid regular expression"))
                .with_label(e.kind().to_string())]
        }
    }
}

/// `/re/replacement/flags` (any delimiter).
pub fn check_subst(lit: &StrLit, what: &str, sources: &SourceMap) -> Vec<Diagnostic> {
    let v = &lit.value;
    let Some(delim) = v.chars().next() else {
        return vec![Diagnostic::error(Kind::Argument, lit.span, format!("{what} is empty"))
            .with_help("a substitution reads `/regex/replacement/flags`")];
    };
    let parts: Vec<&str> = v[delim.len_utf8()..].split(delim).collect();
    if parts.len() < 3 {
        return vec![Diagnostic::error(
            Kind::Argument,
            lit.span,
            format!("{what} must read `{delim}regex{delim}replacement{delim}flags`"),
        )
        .with_label("not a substitution")];
    }
    if let Some(bad) = parts[2].chars().find(|c| !"gis".contains(*c)) {
        return vec![Diagnostic::error(Kind::Argument, lit.span, format!("{what} has an unknown flag `{bad}`"))
            .with_note("the flags are `g` (all matches), `i` (ignore case) and `s` (match newlines)")];
    }
    check_pattern(parts[0], delim.len_utf8(), lit, what, sources)
}
