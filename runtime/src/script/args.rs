//! Function arguments prepared when the config is compiled: one type per
//! manifest `ArgKind` (see `ArgKind::rust_type`). The code generator builds
//! them from the cfg's literals once; functions receive them by reference.

use std::fmt::Write as _;
use std::net::IpAddr;

pub use regex::Regex;

use super::pv::{Pv, Transform};
pub use super::value::AvpName;
use super::value::Value;
use super::Ctx;
use crate::proxy::Transport;
use crate::sip::{HeaderName, Method};

/// A pseudo-variable with its index and transformations: `$(hdr(Via)[1]{s.len})`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvRef {
    pub pv: Pv,
    pub index: Option<i64>,
    pub transforms: Vec<Transform>,
}

impl PvRef {
    pub fn new(pv: Pv) -> PvRef {
        PvRef { pv, index: None, transforms: Vec::new() }
    }

    /// Reads `$name`, `$name(inner)`, `$(name(inner)[i]{t}…)`.
    pub fn parse(text: &str) -> Option<PvRef> {
        let (name, inner, index, transforms) = split_pvar(text)?;
        let pv = Pv::parse(name, inner)?;
        let transforms = transforms.iter().map(|t| Transform::parse(t)).collect::<Option<Vec<_>>>()?;
        Some(PvRef { pv, index, transforms })
    }

    pub fn get(&self, ctx: &Ctx) -> Value {
        let v = self.pv.get(ctx, self.index);
        self.transforms.iter().fold(v, |v, t| t.apply(v))
    }
}

/// The parts of a pseudo-variable's text: name, inner, index, transformations.
type PvarParts<'a> = (&'a str, Option<&'a str>, Option<i64>, Vec<&'a str>);

/// `$name…` → its parts; the text must be exactly one pvar.
fn split_pvar(text: &str) -> Option<PvarParts<'_>> {
    let body = text.strip_prefix('$')?;
    let (body, bracketed) = match body.strip_prefix('(') {
        Some(b) => (b.strip_suffix(')')?, true),
        None => (body, false),
    };
    let name_end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(body.len());
    let name = &body[..name_end];
    let mut rest = &body[name_end..];
    let mut inner = None;
    if let Some(r) = rest.strip_prefix('(') {
        let close = matching(r, '(', ')')?;
        inner = Some(&r[..close]);
        rest = &r[close + 1..];
    }
    let mut index = None;
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']')?;
        let i = &r[..close];
        index = Some(if i == "*" { 0 } else { i.trim().parse().ok()? });
        rest = &r[close + 1..];
    }
    let mut transforms = Vec::new();
    while let (true, Some(r)) = (bracketed, rest.strip_prefix('{')) {
        let close = matching(r, '{', '}')?;
        transforms.push(&r[..close]);
        rest = &r[close + 1..];
    }
    (rest.is_empty() && !name.is_empty()).then_some((name, inner, index, transforms))
}

fn matching(s: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// A format string: text with pseudo-variables (`"$ru from $si\n"`), split
/// once into pieces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Pv(PvRef),
}

impl Format {
    /// Splits `text`; fails on a pseudo-variable the runtime does not know.
    pub fn parse(text: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            lit.push_str(&rest[..at]);
            let after = &rest[at..];
            let len = pvar_len(after);
            if len == 0 {
                lit.push('$');
                rest = &after[1..];
                continue;
            }
            let pv =
                PvRef::parse(&after[..len]).ok_or_else(|| format!("unknown pseudo-variable `{}`", &after[..len]))?;
            if !lit.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Pv(pv));
            rest = &after[len..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Format { pieces })
    }

    /// The text of a format without pseudo-variables.
    pub fn literal(text: &str) -> Format {
        Format { pieces: vec![Piece::Text(text.to_string())] }
    }

    /// Whether it has no pseudo-variable (its text is fixed).
    pub fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }

    pub fn eval(&self, ctx: &Ctx) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Pv(pv) => {
                    let v = pv.get(ctx);
                    // OpenSER prints a null value as `<null>`.
                    if v.is_null() {
                        out.push_str("<null>");
                    } else {
                        let _ = write!(out, "{v}");
                    }
                }
            }
        }
        out
    }
}

/// The length of the pseudo-variable at the start of `s` (0: a plain `$`).
fn pvar_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.len() < 2 {
        return 0;
    }
    if b[1] == b'(' {
        return matching(&s[2..], '(', ')').map_or(0, |i| i + 3);
    }
    if !(b[1].is_ascii_alphabetic() || b[1] == b'_') {
        return 0;
    }
    let mut i = 1;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    while b[i - 1] == b'.' {
        i -= 1;
    }
    if i < b.len() && b[i] == b'(' {
        if let Some(close) = matching(&s[i + 1..], '(', ')') {
            i += close + 2;
        }
    }
    i
}

/// A reply code: fixed, or computed from a format (`"$avp(s:code)"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyCode {
    Fixed(u16),
    Dynamic(Format),
}

impl ReplyCode {
    /// The code now: 100..=699, else `None`.
    pub fn eval(&self, ctx: &Ctx) -> Option<u16> {
        match self {
            ReplyCode::Fixed(c) => Some(*c),
            ReplyCode::Dynamic(f) => f.eval(ctx).trim().parse::<u16>().ok().filter(|c| (100..=699).contains(c)),
        }
    }
}

/// A `Regex` argument compiled as OpenSER's `fixup_str2regexp` does
/// (`REG_EXTENDED|REG_ICASE|REG_NEWLINE`): case-insensitive, `^`/`$` at every line,
/// and no negated bracket expression matching a newline (`[^@]*` stays on its line).
pub fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("(?im){}", exclude_newline(pattern)))
}

/// `pattern` with `\n` added to each negated bracket expression (`[^@]` →
/// `[^@\n]`): POSIX's `REG_NEWLINE` keeps them off newlines, Rust's do not.
pub(crate) fn exclude_newline(pattern: &str) -> String {
    let cs: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut i = 0;
    while i < cs.len() {
        match cs[i] {
            '\\' => {
                out.extend(&cs[i..(i + 2).min(cs.len())]);
                i += 2;
            }
            '[' => match class_end(&cs, i) {
                Some(end) => {
                    out.extend(&cs[i..end]);
                    if cs.get(i + 1) == Some(&'^') {
                        out.push_str("\\n");
                    }
                    out.push(']');
                    i = end + 1;
                }
                None => {
                    // Unbalanced: the regex compiler reports it.
                    out.extend(&cs[i..]);
                    break;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The index of the `]` closing the bracket expression opened at `open` (nested
/// classes such as `[:alpha:]` included; a `]` first in a class is literal).
fn class_end(cs: &[char], open: usize) -> Option<usize> {
    let skip_head = |mut i: usize| {
        if cs.get(i) == Some(&'^') {
            i += 1;
        }
        if cs.get(i) == Some(&']') {
            i += 1;
        }
        i
    };
    let mut i = skip_head(open + 1);
    let mut depth = 1;
    while i < cs.len() {
        match cs[i] {
            '\\' => i += 2,
            '[' => {
                depth += 1;
                i = skip_head(i + 1);
            }
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// A `sed`-like substitution: `/re/replacement/flags`.
#[derive(Clone, Debug)]
pub struct Subst {
    pub re: Regex,
    /// With `\N` back references turned into `${N}`.
    pub replacement: String,
    pub global: bool,
}

impl Subst {
    /// A `Subst` argument read as OpenSER 1.3's `subst_parser` reads
    /// `/re/replacement/flags`: any delimiter but `\`; a delimiter preceded by `\` does
    /// not end the expression; flags `i` (ignore case), `g` (every match), `s` (`.` and
    /// `[^…]` match newlines, `^`/`$` only at the ends of the text; without it they
    /// match at every line, as `REG_NEWLINE` does). The replacement is kept in the
    /// encoding [`Subst::replacement`](Subst::replacement) documents (`\N` → `${N}`, `$` → `$$`), its other
    /// escapes and pseudo-variables as written; the `subst` functions read them.
    pub fn parse(text: &str) -> Result<Subst, String> {
        let mut chars = text.char_indices();
        let Some((_, delim)) = chars.next() else { return Err("an empty substitution".into()) };
        if delim == '\\' {
            return Err("`\\` cannot delimit a substitution".into());
        }
        let shape = || format!("`{text}` is not `{delim}re{delim}replacement{delim}flags`");
        // The expression: up to the first delimiter not preceded by a backslash.
        let re_start = delim.len_utf8();
        let mut prev = delim;
        let re_end = loop {
            let Some((i, c)) = chars.next() else { return Err(shape()) };
            if c == delim && prev != '\\' {
                break i;
            }
            prev = c;
        };
        // The replacement: escapes go by pairs, so `\<delim>` does not end it.
        let mut replacement = String::new();
        let flags_start = loop {
            let Some((i, c)) = chars.next() else { return Err(shape()) };
            match c {
                '\\' => match chars.next() {
                    Some((_, d)) if d.is_ascii_digit() => {
                        replacement.push_str("${");
                        replacement.push(d);
                        replacement.push('}');
                    }
                    Some((_, '$')) => replacement.push_str("\\$$"),
                    Some((_, d)) => {
                        replacement.push('\\');
                        replacement.push(d);
                    }
                    None => return Err(shape()),
                },
                '$' => replacement.push_str("$$"),
                c if c == delim => break i + c.len_utf8(),
                c => replacement.push(c),
            }
        };
        let (mut icase, mut dotall, mut global) = (false, false, false);
        for f in text[flags_start..].chars() {
            match f {
                'i' => icase = true,
                's' => dotall = true,
                'g' => global = true,
                other => return Err(format!("unknown flag `{other}` in `{text}` (the flags are g, i and s)")),
            }
        }
        let re = &text[re_start..re_end];
        let pattern = match (icase, dotall) {
            (false, false) => format!("(?m){}", exclude_newline(re)),
            (true, false) => format!("(?im){}", exclude_newline(re)),
            (false, true) => format!("(?s){re}"),
            (true, true) => format!("(?is){re}"),
        };
        let re = Regex::new(&pattern).map_err(|e| e.to_string())?;
        Ok(Subst { re, replacement, global })
    }
}

impl PartialEq for Subst {
    fn eq(&self, other: &Subst) -> bool {
        self.re.as_str() == other.re.as_str() && self.replacement == other.replacement && self.global == other.global
    }
}

/// `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

/// `[proto:]host[:port]`, as in `listen=` and `force_send_socket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketSpec {
    pub transport: Option<Transport>,
    pub host: String,
    pub port: Option<u16>,
}

impl SocketSpec {
    pub fn parse(text: &str) -> Option<SocketSpec> {
        let (transport, rest) = match text.split_once(':') {
            Some((p, rest)) if Transport::parse(p).is_some() => (Transport::parse(p), rest),
            _ => (None, text),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let close = v6.find(']')?;
            let port = v6[close + 1..].strip_prefix(':').map(|p| p.parse().ok()).unwrap_or(Some(0));
            (format!("[{}]", &v6[..close]), port.filter(|p| *p != 0))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
                None => (rest.to_string(), None),
            }
        };
        (!host.is_empty()).then_some(SocketSpec { transport, host, port })
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.host.trim_start_matches('[').trim_end_matches(']').parse().ok()
    }
}

/// A header name, recognised once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HdrName {
    pub name: HeaderName,
    pub text: String,
}

impl HdrName {
    pub fn new(text: &str) -> HdrName {
        HdrName { name: HeaderName::parse(text.as_bytes()), text: text.to_string() }
    }
}

/// A route that tm arms (`t_on_failure("2")`): the number the code generator gives it.
pub type RouteId = u32;

/// `"INVITE|BYE"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Methods {
    pub known: Vec<Method>,
    pub other: Vec<String>,
}

impl Methods {
    pub fn parse(text: &str) -> Methods {
        let mut m = Methods { known: Vec::new(), other: Vec::new() };
        // OpenSER 1.3 reads the names in the config case-insensitively.
        for name in text.split('|').map(str::trim).filter(|n| !n.is_empty()) {
            match Method::parse(name.to_ascii_uppercase().as_bytes()) {
                Method::Other => m.other.push(name.to_string()),
                known => m.known.push(known),
            }
        }
        m
    }

    /// Whether the method `text` (as written in the message) is in the set.
    pub fn contains(&self, method: Method, text: &str) -> bool {
        match method {
            Method::Other => self.other.iter().any(|o| o.eq_ignore_ascii_case(text)),
            known => self.known.contains(&known),
        }
    }
}

/// An xlog level (`L_ERR` …), as tracing levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Alert,
    Crit,
    Err,
    Warn,
    Notice,
    Info,
    Dbg,
}

impl Level {
    /// OpenSER's reading: the third letter of `L_…`.
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.as_bytes().get(2)? {
            b'A' => Level::Alert,
            b'C' => Level::Crit,
            b'E' => Level::Err,
            b'W' => Level::Warn,
            b'N' => Level::Notice,
            b'I' => Level::Info,
            b'D' => Level::Dbg,
            _ => return None,
        })
    }

    /// OpenSER's numeric log levels (`log(1, …)`: 1 is L_ERR … 4 is L_DBG).
    pub fn from_number(n: i64) -> Level {
        match n {
            i64::MIN..=-3 => Level::Alert,
            -2 => Level::Crit,
            -1 | 0 => Level::Err,
            1 => Level::Warn,
            2 => Level::Notice,
            3 => Level::Info,
            _ => Level::Dbg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvrefs_and_formats() {
        assert_eq!(PvRef::parse("$ru").unwrap().pv, Pv::RUri);
        let h = PvRef::parse("$(hdr(Via)[1]{s.len})").unwrap();
        assert_eq!((h.pv, h.index, h.transforms.len()), (Pv::Hdr(HdrName::new("Via")), Some(1), 1));
        assert!(PvRef::parse("$nosuch").is_none());
        let f = Format::parse("from $si:$sp cost $$ and $ done $(ru{uri.user})\n").unwrap();
        assert_eq!(f.pieces.len(), 7);
        assert!(Format::parse("$bogus").is_err());
        assert_eq!(Format::parse("plain").unwrap().as_literal(), Some("plain"));
    }

    #[test]
    fn prepared_arguments() {
        let s = Subst::parse(r"/^sip:(.*)@/sip:\1@x./").unwrap();
        assert_eq!(s.re.replace("sip:alice@y", s.replacement.as_str()), "sip:alice@x.y");
        let sock = SocketSpec::parse("udp:10.0.0.1:5060").unwrap();
        assert_eq!((sock.transport, sock.host.as_str(), sock.port), (Some(Transport::Udp), "10.0.0.1", Some(5060)));
        let v6 = SocketSpec::parse("tcp:[::1]:5070").unwrap();
        assert_eq!(v6.ip(), Some("::1".parse().unwrap()));
        let m = Methods::parse("INVITE|bye|Foo");
        assert!(m.contains(Method::Bye, "BYE") && m.contains(Method::Other, "FOO") && !m.contains(Method::Ack, "ACK"));
        assert!(!m.contains(Method::Other, "BAR"));
        assert_eq!(Level::parse("L_ERROR"), Some(Level::Err));
    }
}
