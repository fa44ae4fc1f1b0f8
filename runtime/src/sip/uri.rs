//! SIP, SIPS and tel URIs: a zero-copy parser and the RFC 3261 §19.1.4 comparison.
//!
//! [`parse`] validates a URI against the grammar of RFC 3261 §25.1 (`SIP-URI`, `SIPS-URI`),
//! RFC 3966 §3 (`telephone-uri`) or, for any other scheme, RFC 3261's `absoluteURI`, and
//! returns a [`Uri`] whose parts borrow from the input: parsing never allocates. Parts stay
//! as written (still `%`-escaped); [`unescape`] and [`Uri::user_unescaped`] decode on
//! demand, and [`equivalent`] compares URIs by the rules of RFC 3261 §19.1.4 (SIP, SIPS) and
//! RFC 3966 §4 (tel) without decoding into buffers.
//!
//! The parser is strict and total: it never panics, and any whitespace or `<`/`>` anywhere in
//! the text is an error (RFC 4475 §3.1.2.7 and §3.1.2.8). Where a URI may stand matters to
//! the caller, not here: a Request-URI must not carry headers (RFC 3261 §19.1.1, RFC 4475
//! §3.1.2.11), so the request-line parser checks [`Uri::headers`] is empty.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::values::find_byte;

/// The scheme of a URI. Scheme names are case-insensitive; `Other` keeps the name as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme<'a> {
    Sip,
    Sips,
    Tel,
    Other(&'a str),
}

impl<'a> Scheme<'a> {
    /// The scheme name: lower case for the known schemes, as written for `Other`.
    pub fn as_str(&self) -> &'a str {
        match *self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(name) => name,
        }
    }
}

/// The host of a SIP or SIPS URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A host name as written (any case, with its trailing `.` if it had one).
    Name(&'a str),
    Ipv4(Ipv4Addr),
    /// From an `IPv6reference` (`[...]`); the brackets are in [`Uri::host_text`].
    Ipv6(Ipv6Addr),
}

/// A parsed URI, borrowing from the text it was parsed from.
///
/// The fields are a view of that text: [`Display`](fmt::Display) writes the text back as it
/// was, whatever is done to the fields afterwards. `==` compares the texts exactly; use
/// [`equivalent`] for the RFC comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uri<'a> {
    pub scheme: Scheme<'a>,
    /// SIP/SIPS: the user part, still `%`-escaped (it may hold `;`, `?`, `/`: RFC 4475
    /// §3.1.1.9). tel: the number, with its `+` and visual separators. Other schemes:
    /// everything after the `:`.
    pub user: Option<&'a str>,
    /// The password, still `%`-escaped (`Some("")` for `sip:user:@host`).
    pub password: Option<&'a str>,
    /// `None` for tel and other schemes.
    pub host: Option<Host<'a>>,
    /// The host as written, with the brackets of an IPv6 reference; `""` without a host.
    pub host_text: &'a str,
    pub port: Option<u16>,
    /// The parameters as written, each with its leading `;`, or `""`. tel: the parameters
    /// after the number.
    pub params: &'a str,
    /// The headers as written, after the `?` (which is not included), or `""`.
    pub headers: &'a str,
    raw: &'a str,
}

/// Why a text is not a URI.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum UriError {
    Empty,
    NoScheme,
    BadScheme,
    /// The user part or the password of a SIP URI, the number of a tel URI, or the
    /// scheme-specific part of another scheme.
    BadUser,
    BadHost,
    BadPort,
    BadParam,
    BadHeader,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// Whitespace anywhere in the URI.
    Whitespace,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::Empty => "empty URI",
            UriError::NoScheme => "URI without a scheme",
            UriError::BadScheme => "malformed URI scheme",
            UriError::BadUser => "malformed user part in URI",
            UriError::BadHost => "malformed host in URI",
            UriError::BadPort => "malformed port in URI",
            UriError::BadParam => "malformed URI parameter",
            UriError::BadHeader => "malformed URI header",
            UriError::BadEscape => "'%' not followed by two hex digits in URI",
            UriError::Whitespace => "whitespace in URI",
        })
    }
}

impl std::error::Error for UriError {}

// ---------------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1, RFC 3966 §3), one table lookup per byte.

const ALPHA: u16 = 1 << 0;
const DIGIT: u16 = 1 << 1;
const MARK: u16 = 1 << 2; // - _ . ! ~ * ' ( )
const USER_UNRES: u16 = 1 << 3; // user-unreserved: & = + $ , ; ? /
const PASS_UNRES: u16 = 1 << 4; // password's extras: & = + $ ,
const PARAM_UNRES: u16 = 1 << 5; // param-unreserved: [ ] / : & + $ (the same in RFC 3966)
const HNV_UNRES: u16 = 1 << 6; // hnv-unreserved: [ ] / ? : + $
const RESERVED: u16 = 1 << 7; // RFC 2396 reserved: ; / ? : @ & = + $ ,
const SCHEME_EXTRA: u16 = 1 << 8; // + - .
const HYPHEN: u16 = 1 << 9;
const DOT: u16 = 1 << 10;

const ALNUM: u16 = ALPHA | DIGIT;
const UNRESERVED: u16 = ALNUM | MARK;
const USER: u16 = UNRESERVED | USER_UNRES;
const PASSWORD: u16 = UNRESERVED | PASS_UNRES;
const PARAMCHAR: u16 = UNRESERVED | PARAM_UNRES;
const HNV: u16 = UNRESERVED | HNV_UNRES;
/// `uric` (RFC 2396) and the brackets of RFC 2732: the scheme-specific part of other schemes.
const URIC: u16 = UNRESERVED | RESERVED | PARAM_UNRES;
const SCHEME: u16 = ALNUM | SCHEME_EXTRA;
const HOSTCHAR: u16 = ALNUM | HYPHEN | DOT;

static CLASS: [u16; 256] = {
    const fn mark(mut t: [u16; 256], chars: &[u8], bit: u16) -> [u16; 256] {
        let mut i = 0;
        while i < chars.len() {
            t[chars[i] as usize] |= bit;
            i += 1;
        }
        t
    }
    let mut t = [0u16; 256];
    t = mark(t, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", ALPHA);
    t = mark(t, b"0123456789", DIGIT);
    t = mark(t, b"-_.!~*'()", MARK);
    t = mark(t, b"&=+$,;?/", USER_UNRES);
    t = mark(t, b"&=+$,", PASS_UNRES);
    t = mark(t, b"[]/:&+$", PARAM_UNRES);
    t = mark(t, b"[]/?:+$", HNV_UNRES);
    t = mark(t, b";/?:@&=+$,", RESERVED);
    t = mark(t, b"+-.", SCHEME_EXTRA);
    t = mark(t, b"-", HYPHEN);
    t = mark(t, b".", DOT);
    t
};

#[inline(always)]
fn is(b: u8, class: u16) -> bool {
    CLASS[b as usize] & class != 0
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[inline]
fn is_visual_separator(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')')
}

/// The error for the byte at `i` (or the end of the text): whitespace wins over `e`.
#[inline]
fn fail(b: &[u8], i: usize, e: UriError) -> UriError {
    match b.get(i) {
        Some(&c) if is_ws(c) => UriError::Whitespace,
        _ => e,
    }
}

/// Checks the escape at `i` (`b[i] == b'%'`); returns where it ends.
#[inline]
fn escape(b: &[u8], i: usize) -> Result<usize, UriError> {
    match (b.get(i + 1), b.get(i + 2)) {
        (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => Ok(i + 3),
        _ => Err(UriError::BadEscape),
    }
}

/// Skips bytes of `class` and valid escapes from `i`; returns where they end.
#[inline(always)]
fn scan(b: &[u8], mut i: usize, class: u16) -> Result<usize, UriError> {
    while let Some(&c) = b.get(i) {
        if is(c, class) {
            i += 1;
        } else if c == b'%' {
            i = escape(b, i)?;
        } else {
            break;
        }
    }
    Ok(i)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses a SIP, SIPS, tel or other absolute URI. Never allocates.
///
/// A proxy parses the same URI several times while it routes one message (the
/// Request-URI on receipt, then for `uri == myself`, `lookup`, `loose_route`, the
/// next hop …), often from a copy of the text. The last two URIs of up to
/// [`MEMO_MAX`] bytes parsed on a thread are kept as offsets into their text
/// (with a copy of it), and a text equal to one of them is made into its [`Uri`]
/// from those offsets. The result is the same by construction: parsing depends on
/// the bytes alone.
pub fn parse(s: &str) -> Result<Uri<'_>, UriError> {
    if s.len() > MEMO_MAX {
        return parse_text(s);
    }
    MEMO.with_borrow_mut(|memo| {
        if let Some(parts) = memo.find(s.as_bytes()) {
            let uri = parts.uri(s);
            // Every debug build (the tests, the fuzz targets) checks the memo.
            debug_assert_eq!(Ok(uri), parse_text(s), "the URI memo");
            return Ok(uri);
        }
        let parsed = parse_text(s);
        if let Ok(uri) = &parsed {
            if let Some(parts) = Parts::of(uri) {
                memo.keep(s.as_bytes(), parts);
            }
        }
        parsed
    })
}

/// The longest text [`parse`] remembers.
const MEMO_MAX: usize = 96;

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = const { std::cell::RefCell::new(Memo::new()) };
}

/// The last two URIs parsed on a thread (see [`parse`]).
struct Memo {
    entries: [MemoEntry; 2],
    /// The entry the next URI replaces.
    next: usize,
}

#[derive(Clone, Copy)]
struct MemoEntry {
    /// 0: vacant (an empty text is no URI).
    len: usize,
    text: [u8; MEMO_MAX],
    parts: Parts,
}

impl Memo {
    const fn new() -> Memo {
        let vacant = MemoEntry { len: 0, text: [0; MEMO_MAX], parts: Parts::EMPTY };
        Memo { entries: [vacant; 2], next: 0 }
    }

    fn find(&self, text: &[u8]) -> Option<Parts> {
        let vacant = text.is_empty();
        self.entries.iter().find(|e| !vacant && e.len == text.len() && &e.text[..e.len] == text).map(|e| e.parts)
    }

    fn keep(&mut self, text: &[u8], parts: Parts) {
        let entry = &mut self.entries[self.next];
        entry.len = text.len();
        entry.text[..text.len()].copy_from_slice(text);
        entry.parts = parts;
        self.next ^= 1;
    }
}

/// A text range of a URI of at most [`MEMO_MAX`] bytes.
type Range8 = (u8, u8);

/// A parsed URI as offsets into its text: what [`Memo`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parts {
    /// 0 sip, 1 sips, 2 tel, 3 another (its name is `text[..scheme_len]`).
    scheme: u8,
    scheme_len: u8,
    user: Option<Range8>,
    password: Option<Range8>,
    host: PartHost,
    host_text: Range8,
    port: Option<u16>,
    params: Range8,
    headers: Range8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PartHost {
    None,
    Name(Range8),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl Parts {
    const EMPTY: Parts = Parts {
        scheme: 0,
        scheme_len: 0,
        user: None,
        password: None,
        host: PartHost::None,
        host_text: (0, 0),
        port: None,
        params: (0, 0),
        headers: (0, 0),
    };

    /// The offsets of `uri`'s parts in its text (`None` if one is not in it, or
    /// the text is longer than [`MEMO_MAX`]).
    fn of(uri: &Uri<'_>) -> Option<Parts> {
        let raw = uri.raw;
        if raw.len() > MEMO_MAX {
            return None;
        }
        // Every part the parser returns is a slice of the text; an empty one may
        // be a literal `""`.
        let range = |part: &str| -> Option<Range8> {
            if part.is_empty() {
                return Some((0, 0));
            }
            let start = (part.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
            let end = start + part.len();
            (end <= raw.len()).then_some((start as u8, end as u8))
        };
        let optional = |part: Option<&str>| match part {
            Some(part) => range(part).map(Some),
            None => Some(None),
        };
        let (scheme, scheme_len) = match uri.scheme {
            Scheme::Sip => (0, 0),
            Scheme::Sips => (1, 0),
            Scheme::Tel => (2, 0),
            Scheme::Other(name) => (3, range(name)?.1),
        };
        Some(Parts {
            scheme,
            scheme_len,
            user: optional(uri.user)?,
            password: optional(uri.password)?,
            host: match uri.host {
                None => PartHost::None,
                Some(Host::Name(name)) => PartHost::Name(range(name)?),
                Some(Host::Ipv4(a)) => PartHost::Ipv4(a),
                Some(Host::Ipv6(a)) => PartHost::Ipv6(a),
            },
            host_text: range(uri.host_text)?,
            port: uri.port,
            params: range(uri.params)?,
            headers: range(uri.headers)?,
        })
    }

    /// The URI of `text`, which is equal to the text these offsets were taken from.
    fn uri<'a>(&self, text: &'a str) -> Uri<'a> {
        let at = |(start, end): Range8| text.get(usize::from(start)..usize::from(end)).unwrap_or_default();
        Uri {
            scheme: match self.scheme {
                0 => Scheme::Sip,
                1 => Scheme::Sips,
                2 => Scheme::Tel,
                _ => Scheme::Other(at((0, self.scheme_len))),
            },
            user: self.user.map(at),
            password: self.password.map(at),
            host: match self.host {
                PartHost::None => None,
                PartHost::Name(range) => Some(Host::Name(at(range))),
                PartHost::Ipv4(a) => Some(Host::Ipv4(a)),
                PartHost::Ipv6(a) => Some(Host::Ipv6(a)),
            },
            host_text: at(self.host_text),
            port: self.port,
            params: at(self.params),
            headers: at(self.headers),
            raw: text,
        }
    }
}

/// [`parse`] without the memo.
fn parse_text(s: &str) -> Result<Uri<'_>, UriError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(UriError::Empty);
    }
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let mut i = 0;
    while i < b.len() && is(b[i], SCHEME) {
        i += 1;
    }
    if i == b.len() || b[i] != b':' {
        if i < b.len() && is_ws(b[i]) {
            return Err(UriError::Whitespace);
        }
        return Err(if b[i..].contains(&b':') { UriError::BadScheme } else { UriError::NoScheme });
    }
    if i == 0 || !b[0].is_ascii_alphabetic() {
        return Err(UriError::BadScheme);
    }
    let name = &s[..i];
    let scheme = match name.len() {
        3 if name.eq_ignore_ascii_case("sip") => Scheme::Sip,
        4 if name.eq_ignore_ascii_case("sips") => Scheme::Sips,
        3 if name.eq_ignore_ascii_case("tel") => Scheme::Tel,
        _ => Scheme::Other(name),
    };
    match scheme {
        Scheme::Sip | Scheme::Sips => parse_sip(s, scheme, i + 1),
        Scheme::Tel => parse_tel(s, i + 1),
        Scheme::Other(_) => parse_other(s, scheme, i + 1),
    }
}

impl<'a> TryFrom<&'a str> for Uri<'a> {
    type Error = UriError;
    fn try_from(s: &'a str) -> Result<Self, UriError> {
        parse(s)
    }
}

/// `SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]` (and `sips:`).
#[inline]
fn parse_sip<'a>(s: &'a str, scheme: Scheme<'a>, start: usize) -> Result<Uri<'a>, UriError> {
    let b = s.as_bytes();
    let len = b.len();
    if start == len {
        return Err(UriError::BadHost);
    }

    // userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
    // An unescaped '@' can stand nowhere after the userinfo, so the userinfo is whatever
    // precedes the first '@'. One scan over user characters and ':' finds it, or finds a
    // byte that no userinfo can hold, which means there is none: the host starts here.
    let mut user = None;
    let mut password = None;
    let mut h = start;
    let mut i = start;
    let mut colon = None;
    loop {
        i = scan(b, i, USER)?;
        match b.get(i) {
            Some(b':') => {
                colon = colon.or(Some(i));
                i += 1;
            }
            Some(b'@') => {
                let user_end = colon.unwrap_or(i);
                if user_end == start {
                    return Err(UriError::BadUser);
                }
                user = Some(&s[start..user_end]);
                if let Some(c) = colon {
                    // password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
                    if scan(b, c + 1, PASSWORD)? != i {
                        return Err(UriError::BadUser);
                    }
                    password = Some(&s[c + 1..i]);
                }
                h = i + 1;
                break;
            }
            Some(&c) if is_ws(c) => return Err(UriError::Whitespace),
            // A byte no userinfo holds, but an '@' after it: the userinfo is what is bad.
            Some(_) if b[i..].contains(&b'@') => return Err(UriError::BadUser),
            _ => break,
        }
    }

    // hostport = host [ ":" port ]
    let (host, host_end) = parse_host(s, h)?;
    let host_text = &s[h..host_end];
    let mut i = host_end;
    let mut port = None;
    if b.get(i) == Some(&b':') {
        i += 1;
        let digits = i;
        let mut value: u32 = 0;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            value = (value * 10 + u32::from(c - b'0')).min(65_536);
            i += 1;
        }
        if i == digits || value == 0 || value > 65_535 {
            return Err(fail(b, i, UriError::BadPort));
        }
        port = Some(value as u16);
    }
    match b.get(i) {
        None | Some(b';') | Some(b'?') => {}
        Some(_) => return Err(fail(b, i, if port.is_some() { UriError::BadPort } else { UriError::BadHost })),
    }

    // uri-parameters = *( ";" uri-parameter ); other-param = pname [ "=" pvalue ]
    let params_start = i;
    while b.get(i) == Some(&b';') {
        i += 1;
        let name_end = scan(b, i, PARAMCHAR)?;
        if name_end == i {
            return Err(fail(b, i, UriError::BadParam));
        }
        i = name_end;
        if b.get(i) == Some(&b'=') {
            i += 1;
            let value_end = scan(b, i, PARAMCHAR)?;
            if value_end == i {
                return Err(fail(b, i, UriError::BadParam));
            }
            i = value_end;
        }
    }
    let params = &s[params_start..i];

    // headers = "?" header *( "&" header ); header = hname "=" hvalue
    let mut headers = "";
    match b.get(i) {
        None => {}
        Some(b'?') => {
            i += 1;
            let headers_start = i;
            loop {
                let name_end = scan(b, i, HNV)?;
                if name_end == i || b.get(name_end) != Some(&b'=') {
                    return Err(fail(b, name_end, UriError::BadHeader));
                }
                i = scan(b, name_end + 1, HNV)?;
                match b.get(i) {
                    None => break,
                    Some(b'&') => i += 1,
                    Some(_) => return Err(fail(b, i, UriError::BadHeader)),
                }
            }
            headers = &s[headers_start..];
        }
        Some(_) => return Err(fail(b, i, UriError::BadParam)),
    }

    Ok(Uri { scheme, user, password, host: Some(host), host_text, port, params, headers, raw: s })
}

/// `host = hostname / IPv4address / IPv6reference`, from `h`; returns the host and its end.
#[inline]
fn parse_host(s: &str, h: usize) -> Result<(Host<'_>, usize), UriError> {
    let b = s.as_bytes();
    if b.get(h) == Some(&b'[') {
        let mut i = h + 1;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b':' || b[i] == b'.') {
            i += 1;
        }
        if b.get(i) != Some(&b']') {
            return Err(fail(b, i, UriError::BadHost));
        }
        let addr = s[h + 1..i].parse::<Ipv6Addr>().map_err(|_| UriError::BadHost)?;
        return Ok((Host::Ipv6(addr), i + 1));
    }
    let (end, kind) = scan_host(b, h);
    match kind {
        HostKind::Name => Ok((Host::Name(&s[h..end]), end)),
        HostKind::Digits => parse_ipv4(&b[h..end]).map(|a| (Host::Ipv4(a), end)).ok_or(UriError::BadHost),
        HostKind::Bad if end == h => Err(fail(b, end, UriError::BadHost)),
        HostKind::Bad => Err(UriError::BadHost),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostKind {
    /// A valid `hostname`.
    Name,
    /// Digits and dots: an `IPv4address` or nothing (a hostname's last label starts with a
    /// letter).
    Digits,
    Bad,
}

/// Scans alphanumerics, `-` and `.` from `h` and tells whether they make
/// `hostname = *( domainlabel "." ) toplabel [ "." ]`, labels of alphanumerics and inner
/// `-`, the last one starting with a letter (RFC 3966's `domainname` is the same).
#[inline]
fn scan_host(b: &[u8], h: usize) -> (usize, HostKind) {
    let mut i = h;
    let mut label = h; // where the current label starts
    let mut previous = h; // where the label before it starts
    let mut seen = 0; // the classes of every byte
    let mut valid = true; // every label so far is non-empty, without '-' at its ends
    while let Some(&c) = b.get(i) {
        let class = CLASS[c as usize];
        if class & HOSTCHAR == 0 {
            break;
        }
        seen |= class;
        if c == b'.' {
            valid &= i != label && b[label] != b'-' && b[i - 1] != b'-';
            previous = label;
            label = i + 1;
        }
        i += 1;
    }
    let kind = if i == h {
        HostKind::Bad
    } else if seen & (ALPHA | HYPHEN) == 0 {
        HostKind::Digits
    } else {
        // A trailing '.' ends the top label, already checked; otherwise check the last label.
        let (top, last_ok) = if label == i { (previous, true) } else { (label, b[label] != b'-' && b[i - 1] != b'-') };
        if valid && last_ok && is(b[top], ALPHA) {
            HostKind::Name
        } else {
            HostKind::Bad
        }
    };
    (i, kind)
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each at most 255
/// (leading zeros are decimal, as the grammar allows them).
fn parse_ipv4(t: &[u8]) -> Option<Ipv4Addr> {
    ipv4(t, true)
}

/// Four octets in decimal, each of one to three digits and at most 255; with
/// `leading_zeros` false, an octet of more than one digit may not start with `0`
/// (what std's `Ipv4Addr::from_str` accepts).
pub(crate) fn ipv4(t: &[u8], leading_zeros: bool) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    // The current octet's value and digits.
    let (mut value, mut digits) = (0u16, 0);
    for &c in t {
        if c == b'.' {
            if digits == 0 || n == 3 {
                return None;
            }
            octets[n] = u8::try_from(value).ok()?;
            n += 1;
            (value, digits) = (0, 0);
        } else if c.is_ascii_digit() && digits < 3 && (leading_zeros || digits == 0 || value != 0) {
            value = value * 10 + u16::from(c - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    if n != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// `telephone-uri = "tel:" telephone-subscriber` (RFC 3966 §3).
fn parse_tel(s: &str, start: usize) -> Result<Uri<'_>, UriError> {
    let b = s.as_bytes();
    let len = b.len();
    // global-number-digits = "+" *phonedigit DIGIT *phonedigit
    // local-number-digits  = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
    let global = b.get(start) == Some(&b'+');
    let mut i = start + usize::from(global);
    let mut digits = 0;
    while let Some(&c) = b.get(i) {
        if if global { c.is_ascii_digit() } else { c.is_ascii_hexdigit() || c == b'*' || c == b'#' } {
            digits += 1;
        } else if !is_visual_separator(c) {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return Err(fail(b, i, UriError::BadUser));
    }
    match b.get(i) {
        None | Some(b';') => {}
        Some(b'?') => return Err(UriError::BadHeader),
        Some(_) => return Err(fail(b, i, UriError::BadUser)),
    }
    let user = &s[start..i];

    // par = parameter / extension / isdn-subaddress; parameter = ";" pname ["=" pvalue ]
    // A local number needs a context: ";phone-context=" descriptor.
    let params_start = i;
    let mut context = false;
    while i < len {
        // b[i] == ';'
        i += 1;
        let name_start = i;
        while i < len && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        if i == name_start {
            return Err(fail(b, i, UriError::BadParam));
        }
        let name = &s[name_start..i];
        if b.get(i) == Some(&b'=') {
            i += 1;
            let value_start = i;
            if name.eq_ignore_ascii_case("isub") {
                // isdn-subaddress = ";isub=" 1*uric, up to the next ';' (which uric holds)
                while let Some(&c) = b.get(i) {
                    if c != b';' && is(c, URIC) {
                        i += 1;
                    } else if c == b'%' {
                        i = escape(b, i)?;
                    } else {
                        break;
                    }
                }
            } else {
                i = scan(b, i, PARAMCHAR)?;
            }
            if i == value_start {
                return Err(fail(b, i, UriError::BadParam));
            }
            if name.eq_ignore_ascii_case("phone-context") && is_descriptor(&b[value_start..i]) {
                context = true;
            }
        }
        match b.get(i) {
            None | Some(b';') => {}
            Some(b'?') => return Err(UriError::BadHeader),
            Some(_) => return Err(fail(b, i, UriError::BadParam)),
        }
    }
    if !global && !context {
        return Err(UriError::BadParam);
    }
    Ok(Uri {
        scheme: Scheme::Tel,
        user: Some(user),
        password: None,
        host: None,
        host_text: "",
        port: None,
        params: &s[params_start..],
        headers: "",
        raw: s,
    })
}

/// `descriptor = domainname / global-number-digits` (RFC 3966).
fn is_descriptor(v: &[u8]) -> bool {
    match v.split_first() {
        Some((b'+', rest)) => {
            rest.iter().all(|&c| c.is_ascii_digit() || is_visual_separator(c)) && rest.iter().any(u8::is_ascii_digit)
        }
        _ => scan_host(v, 0) == (v.len(), HostKind::Name),
    }
}

/// Any other scheme: `absoluteURI = scheme ":" ( hier-part / opaque-part )`, kept whole in
/// `user`. Checked for its character set (`uric`, and RFC 2732's brackets) and escapes only.
fn parse_other<'a>(s: &'a str, scheme: Scheme<'a>, start: usize) -> Result<Uri<'a>, UriError> {
    let b = s.as_bytes();
    if start == b.len() {
        return Err(UriError::BadUser);
    }
    let end = scan(b, start, URIC)?;
    if end != b.len() {
        return Err(fail(b, end, UriError::BadUser));
    }
    Ok(Uri {
        scheme,
        user: Some(&s[start..]),
        password: None,
        host: None,
        host_text: "",
        port: None,
        params: "",
        headers: "",
        raw: s,
    })
}

// ---------------------------------------------------------------------------------------------
// Accessors

/// The parameters of a URI: `(name, value)` as written, in order.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        // Byte searches: `str::find` and `split_once` set up a general pattern
        // search, dearer than these short texts.
        let r = self.rest.strip_prefix(';')?;
        let end = find_byte(r.as_bytes(), b';').unwrap_or(r.len());
        let (item, rest) = r.split_at(end);
        self.rest = rest;
        Some(match find_byte(item.as_bytes(), b'=') {
            Some(eq) => (&item[..eq], Some(&item[eq + 1..])),
            None => (item, None),
        })
    }
}

/// The headers of a URI: `(name, value)` as written, in order.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.rest?;
        let (item, rest) = match r.split_once('&') {
            Some((item, rest)) => (item, Some(rest)),
            None => (r, None),
        };
        self.rest = rest;
        Some(item.split_once('=').unwrap_or((item, "")))
    }
}

impl<'a> Uri<'a> {
    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The parameters, `(name, value)` as written (`None` for a parameter without `=`).
    pub fn params(&self) -> Params<'a> {
        Params { rest: self.params }
    }

    /// The value of the first parameter called `name` (case-insensitive; an escaped name
    /// matches its unescaped form: `;%6C%72` is `lr`). `Some(None)` for one without a value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params().find(|&(n, _)| same_text(n, name, true)).map(|(_, v)| v)
    }

    /// The headers, `(name, value)` as written.
    pub fn headers(&self) -> Headers<'a> {
        Headers { rest: if self.headers.is_empty() { None } else { Some(self.headers) } }
    }

    /// The `transport` parameter's value, as written (compare it case-insensitively).
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// Whether the URI has an `lr` parameter (with or without a value).
    pub fn lr(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The `maddr` parameter's value, as written.
    pub fn maddr(&self) -> Option<&'a str> {
        self.param("maddr").flatten()
    }

    /// The user part with its `%HH` escapes decoded; bytes that are not UTF-8 become U+FFFD.
    /// `%00` decodes to a NUL character (nothing is truncated). `""` without a user part.
    pub fn user_unescaped(&self) -> Cow<'a, str> {
        unescape(self.user.unwrap_or(""))
    }

    /// The port to use when none is given: 5061 for sips, 5060 otherwise.
    pub fn default_port(&self) -> u16 {
        match self.scheme {
            Scheme::Sips => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Decodes `%HH` escapes; borrows when there are none. Decoded bytes that are not UTF-8
/// become U+FFFD. A `%` without two hex digits after it is kept as it is.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.as_bytes().contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let bytes: Vec<u8> = Units::new(s).map(Unit::byte).collect();
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// One character of escaped text: a `%HH` escape of a reserved character stays distinct from
/// the character itself; any other escape is the character it encodes (RFC 3261 §19.1.4:
/// "Characters other than those in the 'reserved' set are equivalent to their '%' HEX HEX
/// encoding").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Char(u8),
    EscapedReserved(u8),
}

impl Unit {
    fn byte(self) -> u8 {
        match self {
            Unit::Char(b) | Unit::EscapedReserved(b) => b,
        }
    }

    fn matches(self, other: Unit, ignore_case: bool) -> bool {
        match (self, other) {
            (Unit::Char(a), Unit::Char(b)) => a == b || (ignore_case && a.eq_ignore_ascii_case(&b)),
            (Unit::EscapedReserved(a), Unit::EscapedReserved(b)) => a == b,
            _ => false,
        }
    }
}

struct Units<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Units<'a> {
    fn new(s: &'a str) -> Self {
        Units { b: s.as_bytes(), i: 0 }
    }
}

impl Iterator for Units<'_> {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        let c = *self.b.get(self.i)?;
        if c == b'%' {
            if let (Some(h), Some(l)) =
                (self.b.get(self.i + 1).and_then(|&h| hex_val(h)), self.b.get(self.i + 2).and_then(|&l| hex_val(l)))
            {
                self.i += 3;
                let d = h << 4 | l;
                return Some(if is(d, RESERVED) { Unit::EscapedReserved(d) } else { Unit::Char(d) });
            }
        }
        self.i += 1;
        Some(Unit::Char(c))
    }
}

/// Whether two escaped texts are the same, escapes of unreserved characters decoded.
fn same_text(a: &str, b: &str, ignore_case: bool) -> bool {
    // Equal as written is the same decoded; unequal without escapes is not.
    if if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b } {
        return true;
    }
    if !a.as_bytes().contains(&b'%') && !b.as_bytes().contains(&b'%') {
        return false;
    }
    let (mut x, mut y) = (Units::new(a), Units::new(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.matches(q, ignore_case) => {}
            _ => return false,
        }
    }
}

fn same_opt(a: Option<&str>, b: Option<&str>, ignore_case: bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_text(a, b, ignore_case),
        _ => false,
    }
}

/// Whether `a` and `b` are equivalent URIs: RFC 3261 §19.1.4 for SIP and SIPS, RFC 3966 §4
/// for tel; other schemes are equal when their scheme names match (case-insensitively) and
/// their scheme-specific parts match (case-sensitively, escapes of unreserved characters
/// decoded). A SIP URI and a SIPS URI are never equivalent.
pub fn equivalent(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    match (a.scheme, b.scheme) {
        (Scheme::Sip, Scheme::Sip) | (Scheme::Sips, Scheme::Sips) => sip_equivalent(a, b),
        (Scheme::Tel, Scheme::Tel) => tel_equivalent(a, b),
        (Scheme::Other(x), Scheme::Other(y)) => x.eq_ignore_ascii_case(y) && same_opt(a.user, b.user, false),
        _ => false,
    }
}

fn sip_equivalent(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    // "Comparison of the userinfo of SIP and SIPS URIs is case-sensitive"; a URI without a
    // user (password) does not match one with a user (password).
    if !same_opt(a.user, b.user, false) || !same_opt(a.password, b.password, false) {
        return false;
    }
    // Host names case-insensitively; an address never matches a name.
    let same_host = match (a.host, b.host) {
        (Some(Host::Name(x)), Some(Host::Name(y))) => x.eq_ignore_ascii_case(y),
        (x, y) => x == y,
    };
    // A URI without a port does not match one with the default port.
    if !same_host || a.port != b.port {
        return false;
    }
    // transport, user, ttl and method in only one URI never match ("even if it contains the
    // default value"), nor does maddr.
    if special_params(a) != special_params(b) {
        return false;
    }
    // "Any uri-parameter appearing in both URIs must match"; others are ignored.
    let params_agree = |x: &Uri<'_>, y: &Uri<'_>| {
        x.params().all(|(name, value)| {
            let mut in_y = y.params().filter(|&(n, _)| same_text(n, name, true)).peekable();
            in_y.peek().is_none() || in_y.any(|(_, v)| same_opt(value, v, true))
        })
    };
    if !params_agree(a, b) || !params_agree(b, a) {
        return false;
    }
    // "URI header components are never ignored": the same headers on both sides, as
    // multisets (a name may repeat). Names case-insensitively, values case-sensitively.
    let same_header = |(n, v): (&str, &str), (m, w): (&str, &str)| same_text(n, m, true) && same_text(v, w, false);
    a.headers().count() == b.headers().count()
        && a.headers().all(|h| {
            a.headers().filter(|&g| same_header(h, g)).count() == b.headers().filter(|&g| same_header(h, g)).count()
        })
}

/// Which of transport, user, ttl, method and maddr a URI has, as a bit set.
fn special_params(u: &Uri<'_>) -> u8 {
    let mut set = 0;
    for (name, _) in u.params() {
        for (bit, special) in ["transport", "user", "ttl", "method", "maddr"].into_iter().enumerate() {
            if same_text(name, special, true) {
                set |= 1 << bit;
            }
        }
    }
    set
}

/// Two phone numbers (or extensions, or phone-context numbers) without their visual
/// separators, case-insensitively (local numbers may hold hex digits).
fn same_digits(a: &str, b: &str) -> bool {
    let mut x = a.bytes().filter(|&c| !is_visual_separator(c));
    let mut y = b.bytes().filter(|&c| !is_visual_separator(c));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(&q) => {}
            _ => return false,
        }
    }
}

fn tel_equivalent(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    let (x, y) = (a.user.unwrap_or(""), b.user.unwrap_or(""));
    // Both global or both local, the same digits once visual separators are removed.
    if x.starts_with('+') != y.starts_with('+') || !same_digits(x, y) {
        return false;
    }
    // The same parameter names on both sides, in any order, with matching values;
    // everything case-insensitive.
    let same_value = |name: &str, v: Option<&str>, w: Option<&str>| match (v, w) {
        (Some(v), Some(w)) if name.eq_ignore_ascii_case("phone-context") => {
            if v.starts_with('+') || w.starts_with('+') {
                v.starts_with('+') == w.starts_with('+') && same_digits(v, w)
            } else {
                v.eq_ignore_ascii_case(w)
            }
        }
        (Some(v), Some(w)) if name.eq_ignore_ascii_case("ext") => same_digits(v, w),
        (v, w) => same_opt(v, w, true),
    };
    let params_match = |p: &Uri<'_>, q: &Uri<'_>| {
        p.params().all(|(name, v)| q.params().any(|(n, w)| n.eq_ignore_ascii_case(name) && same_value(name, v, w)))
    };
    params_match(a, b) && params_match(b, a)
}

// ---------------------------------------------------------------------------------------------

/// Every text of one to `max_len` bytes of `alphabet`, shortest first (tests
/// that hold a scanner to a plain reading of its grammar).
#[cfg(test)]
pub(crate) fn every_text(alphabet: &[u8], max_len: usize) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..max_len {
        texts = texts.iter().flat_map(|t| alphabet.iter().map(move |&c| [t.as_slice(), &[c]].concat())).collect();
        all.extend(texts.iter().cloned());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Uri<'_> {
        match parse(s) {
            Ok(u) => u,
            Err(e) => panic!("{s:?} should parse, got {e:?}"),
        }
    }

    fn err(s: &str) -> UriError {
        match parse(s) {
            Ok(u) => panic!("{s:?} should not parse, got {u:?}"),
            Err(e) => e,
        }
    }

    fn eqv(a: &str, b: &str) -> bool {
        let (a, b) = (ok(a), ok(b));
        let r = equivalent(&a, &b);
        assert_eq!(r, equivalent(&b, &a), "equivalence must be symmetric: {a} / {b}");
        r
    }

    fn name(s: &str) -> Option<Host<'_>> {
        Some(Host::Name(s))
    }

    // RFC 3261 §19.1.3, every example.
    #[test]
    fn rfc3261_examples() {
        let u = ok("sip:alice@atlanta.com");
        assert_eq!(
            (u.scheme, u.user, u.password, u.host, u.port),
            (Scheme::Sip, Some("alice"), None, name("atlanta.com"), None)
        );
        assert_eq!((u.params, u.headers), ("", ""));

        let u = ok("sip:alice:secretword@atlanta.com;transport=tcp");
        assert_eq!((u.user, u.password, u.host_text), (Some("alice"), Some("secretword"), "atlanta.com"));
        assert_eq!((u.params, u.transport()), (";transport=tcp", Some("tcp")));

        let u = ok("sips:alice@atlanta.com?subject=project%20x&priority=urgent");
        assert_eq!((u.scheme, u.user, u.params), (Scheme::Sips, Some("alice"), ""));
        assert_eq!(u.headers, "subject=project%20x&priority=urgent");
        assert_eq!(u.headers().collect::<Vec<_>>(), [("subject", "project%20x"), ("priority", "urgent")]);
        assert_eq!(u.default_port(), 5061);

        let u = ok("sip:+1-212-555-1212:1234@gateway.com;user=phone");
        assert_eq!((u.user, u.password, u.host), (Some("+1-212-555-1212"), Some("1234"), name("gateway.com")));
        assert_eq!(u.param("user"), Some(Some("phone")));
        assert_eq!(u.default_port(), 5060);

        let u = ok("sips:1212@gateway.com");
        assert_eq!((u.scheme, u.user, u.host), (Scheme::Sips, Some("1212"), name("gateway.com")));

        let u = ok("sip:alice@192.0.2.4");
        assert_eq!(
            (u.user, u.host, u.host_text),
            (Some("alice"), Some(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 4))), "192.0.2.4")
        );

        let u = ok("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com");
        assert_eq!(
            (u.user, u.host, u.params, u.headers),
            (None, name("atlanta.com"), ";method=REGISTER", "to=alice%40atlanta.com")
        );

        let u = ok("sip:alice;day=tuesday@atlanta.com");
        assert_eq!((u.user, u.host, u.params), (Some("alice;day=tuesday"), name("atlanta.com"), ""));
    }

    // RFC 3261 §19.1.4, the equivalent URIs.
    #[test]
    fn rfc3261_equivalent() {
        assert!(eqv("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
        assert!(eqv("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
        assert!(eqv("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"));
        assert!(eqv("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"));
        assert!(eqv(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eqv(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    // RFC 3261 §19.1.4, the URIs that are not equivalent.
    #[test]
    fn rfc3261_not_equivalent() {
        // different usernames
        assert!(!eqv("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
        // can resolve to different ports
        assert!(!eqv("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        // can resolve to different transports
        assert!(!eqv("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
        // can resolve to different port and transports
        assert!(!eqv("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"));
        // different header component
        assert!(!eqv("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"));
        // even though that's what phone21.boxesbybob.com resolves to
        assert!(!eqv("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        // "equality is not transitive"
        assert!(!eqv("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"));
        assert!(eqv("sip:carol@chicago.com", "sip:carol@chicago.com;security=off"));
    }

    #[test]
    fn equivalence_rules() {
        // SIP and SIPS never match; schemes are case-insensitive.
        assert!(!eqv("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
        assert!(eqv("SIP:alice@atlanta.com", "sip:alice@atlanta.com"));
        // user, password: present on one side only, or different case.
        assert!(!eqv("sip:atlanta.com", "sip:alice@atlanta.com"));
        assert!(!eqv("sip:alice@atlanta.com", "sip:alice:pw@atlanta.com"));
        assert!(!eqv("sip:alice:pw@atlanta.com", "sip:alice:PW@atlanta.com"));
        assert!(eqv("sip:alice:p%77@atlanta.com", "sip:alice:pw@atlanta.com"));
        // An escaped reserved character is not the character: a%3Bb is not a;b.
        assert!(!eqv("sip:a%3Bb@atlanta.com", "sip:a;b@atlanta.com"));
        assert!(eqv("sip:a%3bb@atlanta.com", "sip:a%3Bb@atlanta.com"));
        // user, ttl, method, maddr, transport on one side only never match.
        for p in [";user=ip", ";ttl=1", ";method=INVITE", ";maddr=239.255.255.1", ";transport=udp"] {
            assert!(!eqv("sip:alice@atlanta.com", &format!("sip:alice@atlanta.com{p}")), "{p}");
            assert!(eqv(&format!("sip:alice@atlanta.com{p}"), &format!("sip:alice@atlanta.com{p};x=1")), "{p}");
        }
        // A parameter in both must match (a value and no value do not); names may be escaped.
        assert!(!eqv("sip:alice@atlanta.com;lr", "sip:alice@atlanta.com;lr=on"));
        assert!(eqv("sip:alice@atlanta.com;lr;foo=Bar", "sip:alice@atlanta.com;%6C%72;FOO=bar"));
        // Addresses compare as addresses, names case-insensitively.
        assert!(eqv("sip:[2001:db8::1]", "sip:[2001:DB8:0:0:0:0:0:1]"));
        assert!(eqv("sip:alice@192.0.2.4", "sip:alice@192.000.002.004"));
        assert!(!eqv("sip:alice@[::ffff:192.0.2.4]", "sip:alice@192.0.2.4"));
        // Headers: the same multiset, values case-sensitive.
        assert!(eqv("sip:a@b?x=1&x=2", "sip:a@b?x=2&X=1"));
        assert!(!eqv("sip:a@b?x=1&x=1", "sip:a@b?x=1&y=1"));
        assert!(!eqv("sip:a@b?x=1", "sip:a@b?x=1&x=1"));
        assert!(!eqv("sip:a@b?subject=Hi", "sip:a@b?subject=hi"));
        // Repeated parameters: each must match some occurrence on the other side.
        assert!(eqv("sip:a@b;x=1;x=2", "sip:a@b;x=2;x=1"));
        assert!(!eqv("sip:a@b;x=1;x=2", "sip:a@b;x=1"));
        // Other schemes: the scheme-specific part, case-sensitively.
        assert!(eqv("ISBN:2983792873", "isbn:2983792873"));
        assert!(!eqv("name:John_Smith", "name:john_smith"));
        assert!(!eqv("sip:alice@atlanta.com", "tel:+1-201-555-0123"));
    }

    // RFC 4475 §3.1.1.3 (esc01.dat): every URI in the message.
    #[test]
    fn torture_esc01() {
        let u = ok("sip:sips%3Auser%40example.com@example.net");
        assert_eq!((u.scheme, u.user, u.host), (Scheme::Sip, Some("sips%3Auser%40example.com"), name("example.net")));
        assert_eq!(u.user_unescaped(), "sips:user@example.com");

        let to = ok("sip:%75se%72@example.com");
        assert_eq!(to.user_unescaped(), "user");
        assert!(equivalent(&to, &ok("sip:user@example.com")));

        let from = ok("sip:I%20have%20spaces@example.net");
        assert_eq!(from.user_unescaped(), "I have spaces");

        let contact = ok("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(contact.user_unescaped(), "caller");
        assert_eq!(contact.params().collect::<Vec<_>>(), [("%6C%72", None), ("n%61me", Some("v%61lue%25%34%31"))]);
        assert!(contact.lr());
        assert_eq!(contact.param("name"), Some(Some("v%61lue%25%34%31")));
        assert_eq!(unescape("v%61lue%25%34%31"), "value%41");
        assert!(equivalent(&contact, &ok("sip:caller@host5.example.net;lr;name=value%25%34%31")));
    }

    // RFC 4475 §3.1.1.4 (escnull.dat): %00 must not truncate.
    #[test]
    fn torture_escnull() {
        ok("sip:example.com");
        let u = ok("sip:null-%00-null@example.com");
        assert_eq!(u.user_unescaped(), "null-\0-null");
        assert_eq!(u.user_unescaped().len(), 11);
        assert_eq!(ok("sip:%00@host5.example.com").user_unescaped(), "\0");
        assert_eq!(ok("sip:%00%00@host5.example.com").user_unescaped(), "\0\0");
        assert!(!eqv("sip:%00@host5.example.com", "sip:%00%00@host5.example.com"));
        assert!(!eqv("sip:null-%00-null@example.com", "sip:null-@example.com"));
    }

    // RFC 4475 §3.1.1.5 (esc02.dat): '%' misuse is in the method and display name, not URIs.
    #[test]
    fn torture_esc02() {
        for s in [
            "sip:registrar.example.com",
            "sip:resource@example.com",
            "sip:alias1@host1.example.com",
            "sip:alias2@host2.example.com",
            "sip:alias3@host3.example.com",
        ] {
            ok(s);
        }
        // The same misuse inside a URI is an error.
        assert_eq!(err("sip:%Z%45@example.com"), UriError::BadEscape);
    }

    // RFC 4475 §3.1.1.9 (semiuri.dat): ';' in the user part belongs to the user.
    #[test]
    fn torture_semiuri() {
        let u = ok("sip:user;par=u%40example.net@example.com");
        assert_eq!((u.user, u.host, u.params), (Some("user;par=u%40example.net"), name("example.com"), ""));
        assert_eq!(u.param("par"), None);
        assert_eq!(u.user_unescaped(), "user;par=u@example.net");
        ok("sip:j_user@example.com");
        ok("sip:caller@example.org");
    }

    // RFC 4475 §3.1.2.8 (lwsruri.dat) and §3.1.2.7 (ltgtruri.dat): must be rejected.
    #[test]
    fn torture_lws_and_brackets() {
        assert_eq!(err("sip:user@example.com; lr"), UriError::Whitespace);
        // What a request-line splitter at spaces would hand over:
        assert_eq!(err("sip:user@example.com;"), UriError::BadParam);
        assert_eq!(err("<sip:user@example.com>"), UriError::BadScheme);
        assert_eq!(err("sip:user@example.com>"), UriError::BadHost);
        assert_eq!(err("sip:<user@example.com"), UriError::BadUser);
        for s in
            [" sip:a@b", "sip:a@b ", "sip :a@b", "sip: a@b", "sip:a @b", "sip:a@ b", "sip:a@b :5060", "sip:a@b: 5060"]
        {
            assert_eq!(err(s), UriError::Whitespace, "{s:?}");
        }
        for s in ["sip:a@b;x =1", "sip:a@b;x= 1", "sip:a@b?h= 1", "sip:a@b\r\n", "sip:a\t@b", "tel:+1 234", "foo:a b"] {
            assert_eq!(err(s), UriError::Whitespace, "{s:?}");
        }
        ok("sip:user@example.com;lr");
    }

    // RFC 4475 §3.1.2.11 (escruri.dat) and §3.3.14 (regescrt.dat): escaped headers are valid
    // URI syntax; the request-line parser must refuse a Request-URI with headers.
    #[test]
    fn torture_escaped_headers() {
        let u = ok("sip:user@example.com?Route=%3Csip:example.com%3E");
        assert_eq!(
            (u.user, u.host, u.params, u.headers),
            (Some("user"), name("example.com"), "", "Route=%3Csip:example.com%3E")
        );
        assert_eq!(u.headers().collect::<Vec<_>>(), [("Route", "%3Csip:example.com%3E")]);
        assert_eq!(unescape(u.headers().next().unwrap().1), "<sip:example.com>");

        let c = ok("sip:user@example.com?Route=%3Csip:sip.example.com%3E");
        assert_eq!(c.headers, "Route=%3Csip:sip.example.com%3E");
        assert!(!equivalent(&c, &ok("sip:user@example.com")));
    }

    // RFC 4475 §3.3.2 (unkscm.dat), §3.3.3 (novelsc.dat), §3.3.4 (unksm2.dat): other schemes.
    #[test]
    fn torture_other_schemes() {
        let u = ok("nobodyKnowsThisScheme:totallyopaquecontent");
        assert_eq!(
            (u.scheme, u.user, u.host),
            (Scheme::Other("nobodyKnowsThisScheme"), Some("totallyopaquecontent"), None)
        );
        let u = ok("soap.beep://192.0.2.103:3002");
        assert_eq!(
            (u.scheme, u.user, u.host, u.port),
            (Scheme::Other("soap.beep"), Some("//192.0.2.103:3002"), None, None)
        );
        let u = ok("isbn:2983792873");
        assert_eq!((u.scheme, u.user), (Scheme::Other("isbn"), Some("2983792873")));
        let u = ok("http://www.example.com");
        assert_eq!((u.scheme, u.user, u.params, u.headers), (Scheme::Other("http"), Some("//www.example.com"), "", ""));
        let u = ok("name:John_Smith");
        assert_eq!((u.scheme.as_str(), u.user), ("name", Some("John_Smith")));
        // The message's other URIs.
        ok("sip:example.com");
        ok("sip:user@example.com");
        ok("sip:caller@example.net");
        // Still a URI's characters.
        assert_eq!(err("foo:"), UriError::BadUser);
        assert_eq!(err("foo:a<b"), UriError::BadUser);
        assert_eq!(err("foo:a%"), UriError::BadEscape);
        assert_eq!(err("foo:a#frag"), UriError::BadUser);
    }

    // RFC 4475 §3.3.13 (cparam02.dat): a URI parameter inside <> belongs to the URI.
    #[test]
    fn torture_cparam02() {
        let u = ok("sip:+19725552222@gw1.example.net;unknownparam");
        assert_eq!((u.user, u.host, u.params), (Some("+19725552222"), name("gw1.example.net"), ";unknownparam"));
        assert_eq!(u.param("unknownparam"), Some(None));
        assert_eq!(u.param("UnknownParam"), Some(None));
        ok("sip:watson@example.com");
    }

    #[test]
    fn hosts() {
        assert_eq!(ok("sip:example.com.").host, name("example.com."));
        assert_eq!(ok("sip:a-b.c-d").host, name("a-b.c-d"));
        assert_eq!(ok("sip:123.example.com").host, name("123.example.com"));
        assert_eq!(ok("sip:x").host, name("x"));
        let u = ok("sip:[2001:db8::10]:5070;lr");
        assert_eq!(
            (u.host, u.host_text, u.port),
            (Some(Host::Ipv6("2001:db8::10".parse().unwrap())), "[2001:db8::10]", Some(5070))
        );
        assert_eq!(ok("sip:[::ffff:192.0.2.1]").host, Some(Host::Ipv6("::ffff:192.0.2.1".parse().unwrap())));
        assert_eq!(ok("sip:010.000.0.1").host, Some(Host::Ipv4(Ipv4Addr::new(10, 0, 0, 1))));
        for s in [
            "sip:",
            "sip:alice@",
            "sip:-a.com",
            "sip:a-.com",
            "sip:a..com",
            "sip:.com",
            "sip:example.com..",
            "sip:a.1com",
            "sip:123",
            "sip:1.2.3",
            "sip:1.2.3.4.",
            "sip:1.2.3.4.5",
            "sip:256.0.0.1",
            "sip:1111.0.0.1",
            "sip:a_b.com",
            "sip:2001:db8::1",
            "sip:[2001:db8::1",
            "sip:[2001:db8:::1]",
            "sip:[]",
            "sip:[fe80::1%25eth0]",
            "sip:alice@@atlanta.com",
        ] {
            assert_eq!(err(s), UriError::BadHost, "{s:?}");
        }
    }

    /// `parse_ipv4` against a plain reading of the `IPv4address` production.
    #[test]
    fn ipv4_parser_matches_grammar() {
        fn reference(t: &[u8]) -> Option<Ipv4Addr> {
            let parts: Vec<&[u8]> = t.split(|&c| c == b'.').collect();
            let octets: Vec<u8> = parts
                .iter()
                .map(|p| {
                    let digits = (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit);
                    std::str::from_utf8(p).ok().filter(|_| digits)?.parse::<u8>().ok()
                })
                .collect::<Option<_>>()?;
            <[u8; 4]>::try_from(octets).ok().map(Ipv4Addr::from)
        }
        for t in every_text(b"0259.", 8) {
            assert_eq!(parse_ipv4(&t), reference(&t), "{:?}", String::from_utf8_lossy(&t));
        }
        for t in ["192.0.2.1", "255.255.255.255", "256.1.1.1", "1.2.3.4.5", "001.002.003.004", "1.2.3.0255"] {
            assert_eq!(parse_ipv4(t.as_bytes()), reference(t.as_bytes()), "{t}");
        }
    }

    /// `scan_host` against a plain reading of the `hostname` production.
    #[test]
    fn host_scanner_matches_grammar() {
        fn reference(t: &[u8]) -> HostKind {
            if t.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
                return HostKind::Digits;
            }
            let t = t.strip_suffix(b".").unwrap_or(t);
            let labels: Vec<&[u8]> = t.split(|&c| c == b'.').collect();
            let label_ok = |l: &&[u8]| {
                l.first().is_some_and(u8::is_ascii_alphanumeric) && l.last().is_some_and(u8::is_ascii_alphanumeric)
            };
            let top_ok = labels.last().is_some_and(|l| l.first().is_some_and(u8::is_ascii_alphabetic));
            if labels.iter().all(label_ok) && top_ok {
                HostKind::Name
            } else {
                HostKind::Bad
            }
        }
        for t in every_text(b"a1-.", 6) {
            assert!(scan_host(&t, 0) == (t.len(), reference(&t)), "{:?}", String::from_utf8_lossy(&t));
        }
    }

    #[test]
    fn ports() {
        assert_eq!(ok("sip:a@b:1").port, Some(1));
        assert_eq!(ok("sip:a@b:65535").port, Some(65535));
        assert_eq!(ok("sip:a@b:05060").port, Some(5060));
        assert_eq!(ok("sip:a@b:5060;lr").port, Some(5060));
        assert_eq!(ok("sip:b:5060?h=v").port, Some(5060));
        for s in ["sip:a@b:", "sip:a@b:0", "sip:a@b:65536", "sip:a@b:99999999999999999999", "sip:a@b:50a", "sip:a@b:-1"]
        {
            assert_eq!(err(s), UriError::BadPort, "{s:?}");
        }
    }

    #[test]
    fn userinfo() {
        let u = ok("sip:alice:@atlanta.com");
        assert_eq!((u.user, u.password), (Some("alice"), Some("")));
        let u = ok("sip:a&=+$,;?/b-_.!~*'()%41:p&=+$,%42@h");
        assert_eq!((u.user, u.password), (Some("a&=+$,;?/b-_.!~*'()%41"), Some("p&=+$,%42")));
        // A password holds no ':', ';', '?' or '/'.
        assert_eq!(err("sips:alice:a:b@h"), UriError::BadUser);
    }

    #[test]
    fn errors() {
        let cases: &[(&str, UriError)] = &[
            ("", UriError::Empty),
            ("alice@atlanta.com", UriError::NoScheme),
            ("atlanta.com", UriError::NoScheme),
            (":alice@atlanta.com", UriError::BadScheme),
            ("1sip:alice@atlanta.com", UriError::BadScheme),
            ("s_p:alice", UriError::BadScheme),
            ("alice@atlanta.com:5060", UriError::BadScheme),
            ("sip:@atlanta.com", UriError::BadUser),
            ("sip::pw@atlanta.com", UriError::BadUser),
            ("sip:al[ice@atlanta.com", UriError::BadUser),
            ("sip:alice:p;w@atlanta.com", UriError::BadUser),
            ("sip:alice:p/w@atlanta.com", UriError::BadUser),
            ("sip:al%4@atlanta.com", UriError::BadEscape),
            ("sip:al%@atlanta.com", UriError::BadEscape),
            ("sip:alice@atlanta.com;p=%4g", UriError::BadEscape),
            ("sip:alice@atlanta.com?h=%", UriError::BadEscape),
            ("sip:alice@atlanta.com;", UriError::BadParam),
            ("sip:alice@atlanta.com;;lr", UriError::BadParam),
            ("sip:alice@atlanta.com;=1", UriError::BadParam),
            ("sip:alice@atlanta.com;a=", UriError::BadParam),
            ("sip:alice@atlanta.com;a=b=c", UriError::BadParam),
            ("sip:alice@atlanta.com;a=\"b\"", UriError::BadParam),
            ("sip:alice@atlanta.com;a=b#", UriError::BadParam),
            ("sip:alice@atlanta.com?", UriError::BadHeader),
            ("sip:alice@atlanta.com?subject", UriError::BadHeader),
            ("sip:alice@atlanta.com?=x", UriError::BadHeader),
            ("sip:alice@atlanta.com?a=b&", UriError::BadHeader),
            ("sip:alice@atlanta.com?a=b=c", UriError::BadHeader),
            ("sip:alice@atlanta.com?a=b;c", UriError::BadHeader),
        ];
        for &(s, e) in cases {
            assert_eq!(err(s), e, "{s:?}");
        }
        // Headers may be empty-valued and hold '?'; parameters may hold param-unreserved.
        assert_eq!(ok("sip:a@b?x=&y=a?b").headers().collect::<Vec<_>>(), [("x", ""), ("y", "a?b")]);
        assert_eq!(ok("sip:a@b;x=[a]/:&+$").param("x"), Some(Some("[a]/:&+$")));
        assert_eq!(ok("sip:a@b;maddr=239.255.255.1;ttl=15").maddr(), Some("239.255.255.1"));
        assert_eq!(err("sip:a@b;maddr=239.255.255.1;ttl=15 "), UriError::Whitespace);
    }

    // RFC 3966 §6 examples and grammar.
    #[test]
    fn tel() {
        let u = ok("tel:+1-201-555-0123");
        assert_eq!(
            (u.scheme, u.user, u.host, u.host_text, u.params),
            (Scheme::Tel, Some("+1-201-555-0123"), None, "", "")
        );
        let u = ok("tel:7042;phone-context=example.com");
        assert_eq!((u.user, u.params), (Some("7042"), ";phone-context=example.com"));
        assert_eq!(u.param("Phone-Context"), Some(Some("example.com")));
        let u = ok("tel:863-1234;phone-context=+1-914-555");
        assert_eq!(u.param("phone-context"), Some(Some("+1-914-555")));
        let u = ok("TEL:+1-201-555-0123;ext=1234;isub=a/b?c@d=e;foo=[x];bar");
        assert_eq!(
            u.params().collect::<Vec<_>>(),
            [("ext", Some("1234")), ("isub", Some("a/b?c@d=e")), ("foo", Some("[x]")), ("bar", None)]
        );
        ok("tel:*69#;phone-context=example.com");
        ok("tel:(0)800;phone-context=+44");
        for (s, e) in [
            ("tel:", UriError::BadUser),
            ("tel:+", UriError::BadUser),
            ("tel:+-.()", UriError::BadUser),
            ("tel:+1a", UriError::BadUser),
            ("tel:+1/2", UriError::BadUser),
            ("tel:7042", UriError::BadParam),
            ("tel:7042;phone-context=exa_mple.com", UriError::BadParam),
            ("tel:7042;phone-context=+", UriError::BadParam),
            ("tel:+1;", UriError::BadParam),
            ("tel:+1;a_b=1", UriError::BadParam),
            ("tel:+1;a=", UriError::BadParam),
            ("tel:+1;a=b@c", UriError::BadParam),
            ("tel:+1?h=v", UriError::BadHeader),
            ("tel:+1;a=b?h=v", UriError::BadHeader),
            ("tel:+1;a=%zz", UriError::BadEscape),
        ] {
            assert_eq!(err(s), e, "{s:?}");
        }
        // RFC 3966 §4.
        assert!(eqv("tel:+1-201-555-0123", "tel:+1.201.555.0123"));
        assert!(eqv("tel:+12015550123;EXT=1-2", "tel:+1(201)5550123;ext=12"));
        assert!(eqv("tel:7042;phone-context=EXAMPLE.com", "tel:7042;phone-context=example.com"));
        assert!(eqv("tel:863-1234;phone-context=+1-914-555", "tel:8631234;phone-context=+1914555"));
        assert!(eqv("tel:abc;phone-context=x.com;a=1;b=2", "tel:ABC;b=2;A=1;phone-context=x.com"));
        assert!(!eqv("tel:+1234", "tel:1234;phone-context=+1"));
        assert!(!eqv("tel:+1234", "tel:+1234;foo"));
        assert!(!eqv("tel:+1234;foo=1", "tel:+1234;foo=2"));
        assert!(!eqv("tel:7042;phone-context=example.com", "tel:7042;phone-context=example.net"));
        assert!(!eqv("tel:+12015550123", "sip:+12015550123@example.com;user=phone"));
    }

    #[test]
    fn unescaping() {
        assert!(matches!(ok("sip:alice@a.com").user_unescaped(), Cow::Borrowed("alice")));
        assert_eq!(ok("sip:a.com").user_unescaped(), "");
        assert_eq!(ok("sip:%E2%82%AC@a.com").user_unescaped(), "\u{20ac}");
        assert_eq!(ok("sip:x%FFy@a.com").user_unescaped(), "x\u{fffd}y");
        assert_eq!(ok("sip:%25%32%35@a.com").user_unescaped(), "%25");
        assert_eq!(unescape("50%"), "50%");
    }

    /// The URIs of the RFC 4475 messages named in the brief, as found in the .dat files
    /// (Request-URIs and the URIs of To, From, Contact), without header parameters.
    const TORTURE: &[&str] = &[
        "sip:sips%3Auser%40example.com@example.net",
        "sip:%75se%72@example.com",
        "sip:I%20have%20spaces@example.net",
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
        "sip:example.com",
        "sip:null-%00-null@example.com",
        "sip:%00@host5.example.com",
        "sip:%00%00@host5.example.com",
        "sip:registrar.example.com",
        "sip:resource@example.com",
        "sip:alias1@host1.example.com",
        "sip:alias2@host2.example.com",
        "sip:alias3@host3.example.com",
        "sip:user;par=u%40example.net@example.com",
        "sip:j_user@example.com",
        "sip:caller@example.org",
        "sip:user@example.com; lr",
        "sip:user@example.com",
        "sip:caller@example.net",
        "sip:caller@host1.example.net",
        "<sip:user@example.com>",
        "sip:caller@host5.example.net",
        "sip:user@example.com?Route=%3Csip:example.com%3E",
        "sip:caller@host39923.example.net",
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "soap.beep://192.0.2.103:3002",
        "isbn:2983792873",
        "http://www.example.com",
        "name:John_Smith",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "sip:+19725552222@gw1.example.net;unknownparam",
        "sip:watson@example.com",
    ];

    /// Everything else the tests above accept, for the round-trip and robustness checks.
    const MORE: &[&str] = &[
        "sip:alice:secretword@atlanta.com;transport=tcp",
        "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        "sip:alice;day=tuesday@atlanta.com",
        "SIP:ALICE@AtLanTa.CoM;Transport=udp",
        "sip:[2001:db8::10]:5070;lr",
        "sip:alice@192.0.2.4:05060;maddr=239.255.255.1;ttl=15",
        "tel:+1-201-555-0123;ext=1234;isub=a/b?c@d=e;foo=[x];bar",
        "tel:863-1234;phone-context=+1-914-555",
        "tel:7042;phone-context=example.com",
    ];

    #[test]
    fn round_trip() {
        for &s in TORTURE.iter().chain(MORE) {
            if let Ok(u) = parse(s) {
                assert_eq!(u.to_string(), s);
                assert_eq!(u.as_str(), s);
                assert_eq!(parse(&u.to_string()), Ok(u));
            }
        }
        let accepted = TORTURE.iter().filter(|s| parse(s).is_ok()).count();
        assert_eq!(accepted, TORTURE.len() - 2, "all but lwsruri and ltgtruri");
    }

    /// Checks what must hold of any accepted URI.
    fn check_invariants(s: &str) {
        // The memo (see `parse`): the text, and a copy of it, give what parsing gives.
        let fresh = parse_text(s);
        assert_eq!(parse(s), fresh, "{s:?}");
        let copy = s.to_string();
        assert_eq!(parse(&copy), fresh, "{s:?}: from the memo");
        if let Ok(u) = &fresh {
            assert!(s.len() > MEMO_MAX || Parts::of(u).is_some(), "{s:?}: not remembered");
        }
        let Ok(u) = parse(s) else { return };
        assert_eq!(u.to_string(), s);
        assert!(s.is_ascii() && !s.bytes().any(|c| is_ws(c) || c == b'<' || c == b'>'), "{s:?} accepted");
        assert!(equivalent(&u, &u), "{s:?} must be equivalent to itself");
        let _ = (u.user_unescaped(), u.transport(), u.lr(), u.maddr(), u.default_port());
        for (name, value) in u.params() {
            assert!(!name.is_empty() && value != Some(""), "{s:?}");
        }
        for (name, _) in u.headers() {
            assert!(!name.is_empty(), "{s:?}");
        }
        let pieces = [u.user, u.password, Some(u.host_text), Some(u.params), Some(u.headers)];
        let mut at = u.scheme.as_str().len();
        for piece in pieces.into_iter().flatten().filter(|p| !p.is_empty()) {
            let found = s[at..].find(piece).map(|i| at + i);
            assert!(found.is_some(), "{s:?}: {piece:?} out of order");
            at = found.unwrap() + piece.len();
        }
    }

    #[test]
    fn the_last_two_uris_parsed_are_remembered() {
        let remembered = |s: &str| MEMO.with_borrow(|m| m.find(s.as_bytes()));
        let [a, b, c] = ["sip:alice@192.0.2.1:5060;lr", "tel:+1-201-555-0123;ext=1", "sips:[2001:db8::1]?X=1"];
        for s in [a, b] {
            parse(s).unwrap();
        }
        assert!(remembered(a).is_some() && remembered(b).is_some());
        parse(c).unwrap();
        assert!(remembered(a).is_none(), "the older one makes room");
        assert!(remembered(b).is_some() && remembered(c).is_some());
        // Not remembered: a text that does not parse, one too long.
        assert!(parse("sip:a b").is_err() && remembered("sip:a b").is_none());
        let long = format!("sip:{}@example.com", "u".repeat(MEMO_MAX));
        assert_eq!(parse(&long), parse_text(&long));
        assert!(remembered(&long).is_none());
        // Every part comes back from the offsets, the other scheme's name included.
        for s in [a, b, c, "urn:service:sos", "sip:user:pass@host.example.com;transport=tcp?Subject=x"] {
            let u = parse_text(s).unwrap();
            let parts = Parts::of(&u).unwrap();
            let copy = s.to_string();
            assert_eq!(parts.uri(&copy), u, "{s}");
            assert_eq!(parts.uri(&copy).as_str().as_ptr(), copy.as_ptr());
        }
    }

    #[test]
    fn no_panic_on_prefixes_and_mutations() {
        let replacements: Vec<Vec<u8>> = (0u8..=127)
            .map(|b| vec![b])
            .chain(["\u{a0}", "\u{e9}", "\u{20ac}", "\u{1f600}"].iter().map(|c| c.as_bytes().to_vec()))
            .chain(std::iter::once(Vec::new())) // deletion
            .collect();
        let mut inputs = 0;
        for &s in TORTURE.iter().chain(MORE) {
            let b = s.as_bytes();
            for end in 0..=b.len() {
                check_invariants(&s[..end]);
                inputs += 1;
            }
            for i in 0..b.len() {
                for r in &replacements {
                    for insert in [false, true] {
                        let mut m = b[..i].to_vec();
                        m.extend_from_slice(r);
                        m.extend_from_slice(&b[i + usize::from(!insert)..]);
                        if let Ok(m) = std::str::from_utf8(&m) {
                            check_invariants(m);
                            inputs += 1;
                        }
                    }
                }
            }
        }
        assert!(inputs > 100_000, "{inputs}");
    }
}
