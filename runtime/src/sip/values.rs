//! Header values: list splitting, Via, name-addr (From, To, Contact, Route …),
//! and the checks the parser makes on receipt. Everything borrows the message
//! buffer through spans; nothing is copied.

use super::message::Span;

/// RFC 3261's `token` characters, as a table (the hot loops test one byte at a time).
pub(crate) static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        i += 1;
    }
    t
};

#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// The index of the first `needle` in `hay`. SIP lines and values are short
/// (tens of bytes): an inline scan sixteen bytes at a time (SSE2, which every
/// x86-64 has) or eight at a time in a word beats a call into `memchr`, whose
/// dispatch and set-up cost more than such a scan.
#[inline]
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if hay.len() >= 16 {
        return sse2::find_byte(hay, needle);
    }
    find_byte_words(hay, needle)
}

/// `find_byte` eight bytes at a time.
#[inline]
fn find_byte_words(hay: &[u8], needle: u8) -> Option<usize> {
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default()) ^ pattern;
        // A zero byte of `x` is a match; the lowest flagged byte is always a true one.
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| at + i)
}

/// Sixteen bytes at a time with SSE2 (part of x86-64, so always there). Each
/// function takes a haystack of at least 16 bytes: its last block is read
/// overlapping the one before, never past the end.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};

    /// The 16 bytes of `hay` at `at` (`at + 16 <= hay.len()`, checked).
    #[inline(always)]
    fn load(hay: &[u8], at: usize) -> __m128i {
        let block: &[u8; 16] = hay[at..at + 16].try_into().expect("16 bytes");
        // SAFETY: `block` is 16 readable bytes; `loadu` needs no alignment.
        unsafe { _mm_loadu_si128(block.as_ptr().cast()) }
    }

    /// The first position in `hay` (`len >= 16`) whose bit `mask` sets.
    #[inline(always)]
    fn first(hay: &[u8], mask: impl Fn(__m128i) -> i32) -> Option<usize> {
        debug_assert!(hay.len() >= 16);
        let mut at = 0;
        while at + 16 < hay.len() {
            let m = mask(load(hay, at));
            if m != 0 {
                return Some(at + m.trailing_zeros() as usize);
            }
            at += 16;
        }
        // The last 16 bytes: those before `at` are known not to match.
        let last = hay.len() - 16;
        let m = mask(load(hay, last));
        (m != 0).then(|| last + m.trailing_zeros() as usize)
    }

    // SAFETY (every `unsafe` below): these intrinsics only need SSE2, which
    // the x86-64 baseline (and so this module's `cfg`) guarantees.

    #[inline]
    pub(super) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
        let n = unsafe { _mm_set1_epi8(needle as i8) };
        first(hay, |v| unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, n)) })
    }

    /// The first byte that `class(b, NOT_URI)` flags: LWS (SP, HT, CR, LF) or `<`, `>`, `"`.
    #[inline]
    pub(super) fn find_not_uri(hay: &[u8]) -> Option<usize> {
        let set = [b' ', b'\t', b'\r', b'\n', b'<', b'>', b'"'].map(|b| unsafe { _mm_set1_epi8(b as i8) });
        first(hay, |v| unsafe {
            let eq = set.map(|b| _mm_cmpeq_epi8(v, b));
            let any = _mm_or_si128(
                _mm_or_si128(_mm_or_si128(eq[0], eq[1]), _mm_or_si128(eq[2], eq[3])),
                _mm_or_si128(_mm_or_si128(eq[4], eq[5]), eq[6]),
            );
            _mm_movemask_epi8(any)
        })
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Words of eight bytes and the rest of `hay`, for the word-at-a-time filters below.
#[inline(always)]
fn words(hay: &[u8]) -> (impl Iterator<Item = (usize, u64)> + '_, usize) {
    let whole = hay.len() / 8 * 8;
    let iter = hay[..whole]
        .chunks_exact(8)
        .enumerate()
        .map(|(k, c)| (k * 8, u64::from_le_bytes(c.try_into().unwrap_or_default())));
    (iter, whole)
}

/// Whether some byte of `w` is below `n` (`n <= 128`): exact as a yes/no.
#[inline(always)]
fn has_less(w: u64, n: u8) -> bool {
    w.wrapping_sub(LO * u64::from(n)) & !w & HI != 0
}

/// Whether some byte of `w` is `b`: exact as a yes/no.
#[inline(always)]
fn has_byte(w: u64, b: u8) -> bool {
    let x = w ^ (LO * u64::from(b));
    x.wrapping_sub(LO) & !x & HI != 0
}

/// The index of the first byte of `hay` that a URI cannot hold (LWS, `<`, `>`,
/// `"`), or its length. Words with no byte below 0x21 and none of `<>"` are
/// skipped whole; the others are looked at a byte at a time.
#[inline]
fn find_not_uri(hay: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if hay.len() >= 16 {
        return sse2::find_not_uri(hay).unwrap_or(hay.len());
    }
    let (iter, whole) = words(hay);
    for (at, w) in iter {
        if has_less(w, 0x21) || has_byte(w, b'<') || has_byte(w, b'>') || has_byte(w, b'"') {
            if let Some(i) = hay[at..at + 8].iter().position(|&b| class(b, NOT_URI)) {
                return at + i;
            }
        }
    }
    whole + hay[whole..].iter().position(|&b| class(b, NOT_URI)).unwrap_or(hay.len() - whole)
}

/// Whether `hay` holds ASCII white space (`u8::is_ascii_whitespace`: all below 0x21).
#[inline]
pub(crate) fn has_ascii_whitespace(hay: &[u8]) -> bool {
    let (mut iter, whole) = words(hay);
    iter.any(|(at, w)| has_less(w, 0x21) && hay[at..at + 8].iter().any(u8::is_ascii_whitespace))
        || hay[whole..].iter().any(u8::is_ascii_whitespace)
}

/// Character classes for the scans below, one table lookup a byte.
const LWS: u8 = 1;
/// `token` or LWS (a display name without quotes).
const DISPLAY: u8 = 2;
/// A Via host: alphanumeric, `.`, `-`.
const HOST: u8 = 4;
/// An unquoted parameter value: `token` or `:`.
const PVALUE: u8 = 8;
/// A URI scheme after its first letter: alphanumeric, `+`, `-`, `.`.
const SCHEME: u8 = 16;
/// What a URI cannot hold: LWS, `<`, `>`, `"`.
const NOT_URI: u8 = 32;
/// RFC 3261's `token` (the same as `TOKEN`).
const TOK: u8 = 64;
/// What an addr-spec's URI (a From, To or Contact value without `<>`) holds
/// after its scheme: anything but LWS, the `;` of a header parameter, the `?`
/// and `,` it may not hold, and `<`, `>`, `"`.
const ADDR: u8 = 128;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let lws = matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let mut c = 0;
        if lws {
            c |= LWS | NOT_URI;
        }
        if TOKEN[i] || lws {
            c |= DISPLAY;
        }
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            c |= HOST;
        }
        if TOKEN[i] || b == b':' {
            c |= PVALUE;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') {
            c |= SCHEME;
        }
        if matches!(b, b'<' | b'>' | b'"') {
            c |= NOT_URI;
        }
        if TOKEN[i] {
            c |= TOK;
        }
        if !lws && !matches!(b, b';' | b'?' | b',' | b'<' | b'>' | b'"') {
            c |= ADDR;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[inline(always)]
fn class(b: u8, c: u8) -> bool {
    CLASS[b as usize] & c != 0
}

/// The end of the run of bytes of class `c` (one bit) from `i` (at most `end`). Four
/// bytes a step while all four are in the class (one branch for four table
/// lookups), then a byte at a time.
#[inline(always)]
fn scan_class(buf: &[u8], mut i: usize, end: usize, c: u8) -> usize {
    let end = end.min(buf.len());
    while i + 4 <= end {
        let w = &buf[i..i + 4];
        let all = CLASS[w[0] as usize] & CLASS[w[1] as usize] & CLASS[w[2] as usize] & CLASS[w[3] as usize];
        if all & c == 0 {
            break;
        }
        i += 4;
    }
    while i < end && class(buf[i], c) {
        i += 1;
    }
    i
}

#[inline(always)]
fn is_lws(b: u8) -> bool {
    class(b, LWS)
}

#[inline(always)]
fn skip_lws(buf: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && is_lws(buf[i]) {
        i += 1;
    }
    i
}

fn trimmed(buf: &[u8], mut s: usize, mut e: usize) -> Span {
    while s < e && is_lws(buf[s]) {
        s += 1;
    }
    while e > s && is_lws(buf[e - 1]) {
        e -= 1;
    }
    Span { start: s as u32, end: e as u32 }
}

/// The end of the quoted string starting at `i` (at its `"`): the index after
/// the closing quote.
fn quoted_end(buf: &[u8], i: usize, end: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < end {
        match buf[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Splits a list header's value at the commas that are not inside a quoted
/// string or `<…>`; each element trimmed. Empty elements are skipped (see
/// `has_empty_list_element`).
pub fn split_list(buf: &[u8], value: Span) -> impl Iterator<Item = Span> + '_ {
    let end = value.end as usize;
    let mut pos = value.start as usize;
    // Most values hold one element: no comma, nothing to split.
    let single = find_byte(&buf[value.range()], b',').is_none();
    std::iter::from_fn(move || loop {
        if single {
            if pos >= end || value.is_empty() {
                return None;
            }
            pos = end;
            return Some(value);
        }
        if pos >= end {
            return None;
        }
        let start = pos;
        let mut in_angle = false;
        while pos < end {
            match buf[pos] {
                b'"' => pos = quoted_end(buf, pos, end).unwrap_or(end),
                b'<' => {
                    in_angle = true;
                    pos += 1;
                }
                b'>' => {
                    in_angle = false;
                    pos += 1;
                }
                b',' if !in_angle => break,
                _ => pos += 1,
            }
        }
        let span = trimmed(buf, start, pos);
        pos += 1;
        if !span.is_empty() {
            return Some(span);
        }
    })
}

/// `a, , b` or a trailing comma.
pub fn has_empty_list_element(buf: &[u8], value: Span) -> bool {
    let (start, end) = (value.start as usize, value.end as usize);
    if find_byte(&buf[start..end], b',').is_none() {
        return false; // a trimmed value with no comma has one element
    }
    let mut pos = start;
    let mut seen = false;
    let mut in_angle = false;
    while pos < end {
        match buf[pos] {
            b'"' => {
                seen = true;
                pos = quoted_end(buf, pos, end).unwrap_or(end);
                continue;
            }
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b',' if !in_angle => {
                if !seen {
                    return true;
                }
                seen = false;
            }
            b if !is_lws(b) => seen = true,
            _ => {}
        }
        pos += 1;
    }
    !seen && end > start
}

/// `;name[=value]` parameters from `i` to `end`: calls `f(name, value)` for each.
/// Fails on an empty parameter (`;;`) or a malformed value.
fn params(buf: &[u8], mut i: usize, end: usize, mut f: impl FnMut(Span, Option<Span>)) -> Result<(), &'static str> {
    loop {
        i = skip_lws(buf, i, end);
        if i >= end {
            return Ok(());
        }
        if buf[i] != b';' {
            return Err("expected `;` before a parameter");
        }
        i = skip_lws(buf, i + 1, end);
        let ns = i;
        i = scan_class(buf, i, end, TOK);
        if i == ns {
            return Err("an empty parameter");
        }
        let name = Span { start: ns as u32, end: i as u32 };
        let j = skip_lws(buf, i, end);
        if j < end && buf[j] == b'=' {
            i = skip_lws(buf, j + 1, end);
            let vs = i;
            if i < end && buf[i] == b'"' {
                i = quoted_end(buf, i, end).ok_or("an unterminated quoted parameter value")?;
            } else if i < end && buf[i] == b'[' {
                while i < end && buf[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(end);
            } else {
                i = scan_class(buf, i, end, PVALUE);
            }
            if i == vs {
                return Err("a parameter with `=` and no value");
            }
            f(name, Some(Span { start: vs as u32, end: i as u32 }));
        } else {
            i = j;
            f(name, None);
        }
    }
}

fn eq(buf: &[u8], s: Span, name: &str) -> bool {
    buf[s.range()].eq_ignore_ascii_case(name.as_bytes())
}

/// `eq` for a lower-case name known at compile time: compared a word at a time.
#[inline(always)]
fn is_named<const N: usize>(buf: &[u8], s: Span, lower: &[u8; N]) -> bool {
    super::header::eq_lower(&buf[s.range()], lower)
}

/// A parsed Via value: `SIP/2.0/UDP host:port;branch=…;received=…;rport`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Via {
    pub value: Span,
    pub transport: Span,
    pub host: Span,
    pub port: Option<u16>,
    /// From the first `;` to the end of the value.
    pub params: Span,
    pub branch: Option<Span>,
    pub received: Option<Span>,
    /// `rport` present (`Some(None)`), with a value (`Some(Some(_))`).
    pub rport: Option<Option<Span>>,
    pub maddr: Option<Span>,
    pub ttl: Option<Span>,
}

impl Via {
    pub fn parse(buf: &[u8], value: Span) -> Result<Via, &'static str> {
        let end = value.end as usize;
        let mut i = value.start as usize;
        // sent-protocol: name SLASH version SLASH transport (LWS allowed around SLASH)
        let mut parts = [Span::default(); 3];
        // Nearly always written `SIP/2.0/`: those two parts without a scan.
        let mut known = 0;
        if i + 8 <= end && buf[i..i + 4].eq_ignore_ascii_case(b"SIP/") && &buf[i + 4..i + 8] == b"2.0/" {
            parts[0] = Span { start: i as u32, end: (i + 3) as u32 };
            parts[1] = Span { start: (i + 4) as u32, end: (i + 7) as u32 };
            i += 8;
            known = 2;
        }
        for (n, part) in parts.iter_mut().enumerate().skip(known) {
            i = skip_lws(buf, i, end);
            let s = i;
            while i < end && is_token(buf[i]) {
                i += 1;
            }
            if i == s {
                return Err("malformed sent-protocol");
            }
            *part = Span { start: s as u32, end: i as u32 };
            if n < 2 {
                i = skip_lws(buf, i, end);
                if i >= end || buf[i] != b'/' {
                    return Err("malformed sent-protocol");
                }
                i += 1;
            }
        }
        if !eq(buf, parts[0], "SIP") || &buf[parts[1].range()] != b"2.0" {
            return Err("not SIP/2.0");
        }
        // sent-by: host [ : port ]
        let after = skip_lws(buf, i, end);
        if after == i {
            return Err("no white space before sent-by");
        }
        i = after;
        let hs = i;
        if i < end && buf[i] == b'[' {
            while i < end && buf[i] != b']' {
                i += 1;
            }
            if i >= end {
                return Err("unterminated IPv6 reference");
            }
            i += 1;
            std::str::from_utf8(&buf[hs + 1..i - 1])
                .ok()
                .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
                .ok_or("bad IPv6 reference")?;
        } else {
            i = scan_class(buf, i, end, HOST);
        }
        if i == hs {
            return Err("no sent-by host");
        }
        let host = Span { start: hs as u32, end: i as u32 };
        let mut port = None;
        let j = skip_lws(buf, i, end);
        if j < end && buf[j] == b':' {
            i = skip_lws(buf, j + 1, end);
            let ps = i;
            while i < end && buf[i].is_ascii_digit() {
                i += 1;
            }
            // 1 to 65535 in decimal digits (leading zeros allowed).
            let p = buf[ps..i]
                .iter()
                .try_fold(0u32, |n, &d| Some(n * 10 + u32::from(d - b'0')).filter(|n| *n <= u32::from(u16::MAX)))
                .filter(|p| i > ps && *p > 0);
            port = Some(p.ok_or("bad port")? as u16);
        }
        let params_start = skip_lws(buf, i, end);
        let mut via = Via {
            value,
            transport: parts[2],
            host,
            port,
            params: Span { start: params_start as u32, end: end as u32 },
            ..Via::default()
        };
        params(buf, i, end, |name, val| {
            if is_named(buf, name, b"branch") {
                via.branch = val;
            } else if is_named(buf, name, b"received") {
                via.received = val;
            } else if is_named(buf, name, b"rport") {
                via.rport = Some(val);
            } else if is_named(buf, name, b"maddr") {
                via.maddr = val;
            } else if is_named(buf, name, b"ttl") {
                via.ttl = val;
            }
        })?;
        Ok(via)
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route …
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameAddr {
    pub value: Span,
    /// The display name as written (quoted or tokens).
    pub display: Option<Span>,
    /// The URI, without `<>`.
    pub uri: Span,
    /// Whether the URI was enclosed in `<>`.
    pub angle: bool,
    /// From the first `;` after the URI to the end of the value.
    pub params: Span,
    pub tag: Option<Span>,
}

impl NameAddr {
    pub fn parse(buf: &[u8], value: Span) -> Result<NameAddr, &'static str> {
        let end = value.end as usize;
        let mut i = skip_lws(buf, value.start as usize, end);
        let mut display = None;
        let ds = i;
        if i < end && buf[i] == b'"' {
            i = quoted_end(buf, i, end).ok_or("unterminated quoted display name")?;
            display = Some(Span { start: ds as u32, end: i as u32 });
            i = skip_lws(buf, i, end);
            if i >= end || buf[i] != b'<' {
                return Err("expected `<` after the display name");
            }
        } else {
            // One scan: tokens and LWS up to `<` are a display name; a `:` first
            // means an addr-spec (`sip:…` with no `<>`).
            let j = scan_class(buf, i, end, DISPLAY);
            if j < end && buf[j] == b'<' {
                if j > i {
                    display = Some(trimmed(buf, i, j));
                }
                i = j;
            } else if !((j < end && buf[j] == b':') || (j == end && j > i)) {
                return Err("the display name has characters that need quotes");
            }
        }
        let (uri, angle);
        if i < end && buf[i] == b'<' {
            // One pass for the common case: a scheme, `:`, URI characters up to
            // `>`; anything else takes the slow path for its exact error.
            let close = match uri_to_angle(buf, i + 1, end) {
                Some(close) => close,
                None => {
                    let close = find_byte(&buf[i..end], b'>').map(|p| i + p).ok_or("no `>`")?;
                    check_uri(&buf[i + 1..close])?;
                    close
                }
            };
            uri = Span { start: (i + 1) as u32, end: close as u32 };
            angle = true;
            i = close + 1;
        } else if let Some(e) = addr_spec_end(buf, i, end) {
            // The common addr-spec (a Contact `sip:user@host`) in one scan.
            uri = Span { start: i as u32, end: e as u32 };
            angle = false;
            i = e;
        } else {
            // addr-spec: up to `;` (header parameters) — it may not contain `,` `?`.
            let s = i;
            while i < end && !is_lws(buf[i]) && buf[i] != b';' {
                if matches!(buf[i], b'?' | b',') {
                    return Err("a URI with `?` or `,` must be enclosed in `<>`");
                }
                i += 1;
            }
            check_uri(&buf[s..i])?;
            uri = Span { start: s as u32, end: i as u32 };
            angle = false;
        }
        let ps = skip_lws(buf, i, end);
        let mut na =
            NameAddr { value, display, uri, angle, params: Span { start: ps as u32, end: end as u32 }, tag: None };
        if ps < end {
            params(buf, i, end, |name, val| {
                if is_named(buf, name, b"tag") {
                    na.tag = val;
                }
            })?;
        }
        Ok(na)
    }

    /// A header parameter's value (`expires`, `q` …); `Some("")` when present
    /// without a value.
    pub fn param<'b>(&self, buf: &'b [u8], name: &str) -> Option<&'b str> {
        let mut found = None;
        let _ = params(buf, self.params.start as usize, self.params.end as usize, |n, v| {
            if found.is_none() && eq(buf, n, name) {
                found = Some(v.map_or("", |v| std::str::from_utf8(&buf[v.range()]).unwrap_or("")));
            }
        });
        found
    }
}

/// The index of the `>` closing a URI that starts at `i`, when the URI passes
/// `check_uri` (a scheme, `:`, at least one byte, none that a URI cannot hold,
/// then `>`); `None` when it does not or there is no `>` (the caller then
/// finds out why).
#[inline]
fn uri_to_angle(buf: &[u8], start: usize, end: usize) -> Option<usize> {
    let u = buf.get(start..end)?;
    let colon = scheme_colon(u)?;
    let close = colon + 1 + find_not_uri(&u[colon + 1..]);
    if close >= u.len() {
        return None;
    }
    (close > colon + 1 && u[close] == b'>').then_some(start + close)
}

/// The index of the `:` after the scheme `u` starts with (a letter, then
/// letters, digits, `+`, `-`, `.`), as `check_uri` finds it.
#[inline(always)]
fn scheme_colon(u: &[u8]) -> Option<usize> {
    let (&first, rest) = u.split_first()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let colon = 1 + rest.iter().position(|&b| !class(b, SCHEME))?;
    (u[colon] == b':').then_some(colon)
}

/// The end of an addr-spec's URI that starts at `start`, when it is well
/// formed and ends at LWS, `;` or `end`: a scheme, `:`, at least one byte,
/// none of `?` `,` `<` `>` `"` (what the byte loop of `NameAddr::parse` and
/// `check_uri` accept). `None` otherwise: the caller finds out why.
#[inline]
fn addr_spec_end(buf: &[u8], start: usize, end: usize) -> Option<usize> {
    let colon = start + scheme_colon(buf.get(start..end)?)?;
    let e = scan_class(buf, colon + 1, end, ADDR);
    (e > colon + 1 && (e == end || is_lws(buf[e]) || buf[e] == b';')).then_some(e)
}

/// A URI as the grammar's `absoluteURI`/`SIP-URI` need it: a scheme, a colon,
/// something after it, no white space and no `<` `>` `"` (one pass).
fn check_uri(u: &[u8]) -> Result<(), &'static str> {
    if u.is_empty() || !u[0].is_ascii_alphabetic() {
        return Err("not a URI (no scheme)");
    }
    let mut colon = 0;
    for (k, &b) in u.iter().enumerate() {
        if colon == 0 {
            if b == b':' {
                colon = k;
                continue;
            }
            if !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
                return Err("not a URI (no scheme)");
            }
        } else if is_lws(b) || matches!(b, b'<' | b'>' | b'"') {
            return Err("a URI with white space, `<`, `>` or `\"`");
        }
    }
    if colon == 0 {
        return Err("not a URI (no scheme)");
    }
    if colon + 1 >= u.len() {
        return Err("a URI with nothing after its scheme");
    }
    Ok(())
}

/// The Request-URI: a URI (RFC 4475 §3.1.2.7: not in `<>`, no white space);
/// a SIP or SIPS Request-URI carries no headers (§3.1.2.11).
pub fn check_request_uri(u: &[u8]) -> Result<(), &'static str> {
    // URIs are ASCII: checking that is cheaper than validating UTF-8, and
    // anything else takes the UTF-8 check for its exact error.
    let text = if u.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(u) }
    } else {
        std::str::from_utf8(u).map_err(|_| "a Request-URI that is not UTF-8")?
    };
    let uri = super::uri::parse(text).map_err(|_| "malformed")?;
    if matches!(uri.scheme, super::uri::Scheme::Sip | super::uri::Scheme::Sips) && !uri.headers.is_empty() {
        return Err("escaped headers in a SIP Request-URI");
    }
    Ok(())
}

/// `Sat, 13 Nov 2010 23:29:00 GMT` (RFC 1123 in GMT, RFC 3261 §20.17).
pub fn valid_date(d: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(d) else { return false };
    let parts: Vec<&str> = s.split_whitespace().collect();
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    parts.len() == 6
        && DAYS.contains(&parts[0])
        && parts[1].len() == 2
        && parts[1].bytes().all(|b| b.is_ascii_digit())
        && MONTHS.contains(&parts[2])
        && parts[3].len() == 4
        && parts[3].bytes().all(|b| b.is_ascii_digit())
        && parts[4].len() == 8
        && parts[4].bytes().enumerate().all(|(i, b)| if i == 2 || i == 5 { b == b':' } else { b.is_ascii_digit() })
        && parts[5] == "GMT"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(s: &str) -> Span {
        Span { start: 0, end: s.len() as u32 }
    }

    #[test]
    fn via_with_folding_and_params() {
        let v = "SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw ; rport;received=1.2.3.4";
        let via = Via::parse(v.as_bytes(), span(v)).unwrap();
        assert_eq!(&v[via.transport.range()], "UDP");
        assert_eq!(&v[via.host.range()], "192.0.2.2");
        assert_eq!(via.branch.map(|b| &v[b.range()]), Some("390skdjuw"));
        assert_eq!(via.rport, Some(None));
        assert_eq!(via.received.map(|b| &v[b.range()]), Some("1.2.3.4"));
        let v6 = "SIP/2.0/TCP [2001:db8::10]:5070;branch=z9hG4bK1";
        assert_eq!(Via::parse(v6.as_bytes(), span(v6)).unwrap().port, Some(5070));
        for bad in
            ["SIP/2.0/UDP 192.0.2.15;;", "SIP/2.0/UDP", "SIP/3.0/UDP h", "SIP/2.0/UDP h:0", "SIP/2.0/UDP h;branch="]
        {
            assert!(Via::parse(bad.as_bytes(), span(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_split_outside_quotes_and_angles() {
        let v = r#""a, b" <sip:x@y>;q=1, sip:z@w , <sip:u,v@w>"#;
        let parts: Vec<&str> = split_list(v.as_bytes(), span(v)).map(|s| &v[s.range()]).collect();
        assert_eq!(parts, vec![r#""a, b" <sip:x@y>;q=1"#, "sip:z@w", "<sip:u,v@w>"]);
        assert!(has_empty_list_element(b"a,,b", span("a,,b")));
        assert!(has_empty_list_element(b"a, ", span("a, ")));
        assert!(!has_empty_list_element(b"a, b", span("a, b")));
    }

    #[test]
    fn name_addr_forms() {
        let ok = [
            (r#""Joe" <sip:joe@example.org>;tag=1"#, Some("1")),
            (r#""caller"<sip:caller@example.com>;tag=323"#, Some("323")),
            ("sip:caller@example.net;tag=134", Some("134")),
            ("Bob <sip:bob@biloxi.example.com>", None),
            ("<isbn:2983792873>", None),
            ("<http://www.example.com>;tag=x", Some("x")),
        ];
        for (v, tag) in ok {
            let na = NameAddr::parse(v.as_bytes(), span(v)).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(na.tag.map(|t| &v[t.range()]), tag, "{v}");
        }
        let bad = [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            r#""Watson, Thomas" < sip:t.watson@example.org >"#,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            r#""Joe" <sip:joe@example.org>;;;;"#,
        ];
        for v in bad {
            assert!(NameAddr::parse(v.as_bytes(), span(v)).is_err(), "{v}");
        }
    }

    #[test]
    fn word_scans_agree_with_byte_scans() {
        // Every length up to 40 and every position of a few bytes of interest.
        let bytes = [b'a', b'\n', b' ', b'\t', b'<', b'>', b'"', 0x0c, 0x01, 0x80, 0xff, b':', b'\r'];
        for len in 0..72 {
            for at in 0..len.max(1) {
                for &x in &bytes {
                    for &y in &[b'a', 0xa0, b'\n'] {
                        let mut v = vec![b'x'; len];
                        if at < len {
                            v[at] = x;
                        }
                        if len > 0 {
                            v[len - 1 - at / 2] = y;
                        }
                        assert_eq!(find_byte(&v, b'\n'), v.iter().position(|&b| b == b'\n'), "{v:?}");
                        assert_eq!(
                            find_not_uri(&v),
                            v.iter().position(|&b| class(b, NOT_URI)).unwrap_or(v.len()),
                            "{v:?}"
                        );
                        assert_eq!(has_ascii_whitespace(&v), v.iter().any(u8::is_ascii_whitespace), "{v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn class_scans_agree_with_byte_scans() {
        let bytes = [b'a', b'Z', b'0', b'-', b'.', b':', b' ', b'\t', b'<', b';', b'"', 0x80, 0x00];
        for len in 0..20 {
            for at in 0..len.max(1) {
                for &x in &bytes {
                    let mut v = vec![b'x'; len];
                    if at < len {
                        v[at] = x;
                    }
                    for c in [TOK, PVALUE, HOST, DISPLAY, ADDR] {
                        for start in 0..=len.min(3) {
                            for end in start..=len {
                                let slow = (start..end).find(|&k| !class(v[k], c)).unwrap_or(end);
                                assert_eq!(scan_class(&v, start, end, c), slow, "{v:?} {c} {start}..{end}");
                            }
                        }
                    }
                }
            }
        }
        for b in 0..=255u8 {
            assert_eq!(class(b, TOK), is_token(b));
        }
    }

    #[test]
    fn uri_to_angle_is_check_uri_up_to_the_angle() {
        for u in [
            "sip:a@b>",
            "sip:>",
            "s:x>",
            "1s:x>",
            "sip a>",
            "sip:a b>",
            "sip:a<b>",
            "sip:a\"b>",
            "sip:a",
            "",
            "sip:a@b;x=y>z",
        ] {
            let fast = uri_to_angle(u.as_bytes(), 0, u.len());
            let slow = u.find('>').filter(|&close| check_uri(&u.as_bytes()[..close]).is_ok());
            assert_eq!(fast, slow, "{u:?}");
        }
    }

    #[test]
    fn addr_spec_end_is_the_byte_loop_and_check_uri() {
        // What `NameAddr::parse` did before the fast path: up to LWS or `;`, an
        // error at `?` or `,`, then `check_uri`.
        fn slow(v: &[u8]) -> Option<usize> {
            let mut i = 0;
            while i < v.len() && !is_lws(v[i]) && v[i] != b';' {
                if matches!(v[i], b'?' | b',') {
                    return None;
                }
                i += 1;
            }
            check_uri(&v[..i]).ok().map(|()| i)
        }
        let alphabet = b"s:a1+.-;?, \t<>\"\x80@";
        let mut v = Vec::new();
        // Every text of up to five bytes of the alphabet, then longer ones
        // with one byte of it at each place.
        let mut texts = vec![Vec::new()];
        texts.extend(crate::sip::uri::every_text(alphabet, 5));
        for base in ["sip:alice@example.com:5060", "tel:+1-555", "s:x"] {
            for at in 0..=base.len() {
                for &b in alphabet {
                    v.clear();
                    v.extend_from_slice(base.as_bytes());
                    v.insert(at, b);
                    texts.push(v.clone());
                }
            }
        }
        for t in &texts {
            assert_eq!(addr_spec_end(t, 0, t.len()), slow(t), "{:?}", String::from_utf8_lossy(t));
        }
    }

    #[test]
    fn request_uris_and_dates() {
        assert!(check_request_uri(b"sip:user@example.com").is_ok());
        assert!(check_request_uri(b"soap.beep://192.0.2.103:3002").is_ok());
        assert!(check_request_uri(b"<sip:user@example.com>").is_err());
        assert!(check_request_uri(b"sip:user@example.com?Route=%3Csip:example.com%3E").is_err());
        assert!(valid_date(b"Sat, 13 Nov 2010 23:29:00 GMT"));
        assert!(!valid_date(b"Fri, 01 Jan 2010 16:00:00 EST"));
    }
}
