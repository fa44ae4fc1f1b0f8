//! Header names: the ones the core and the modules use get an enum variant,
//! recognised once per header line (compact forms included); the rest are
//! `Other` and compared by text when a script asks for them.

/// A header field name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    MaxForwards,
    Route,
    RecordRoute,
    Expires,
    MinExpires,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    Allow,
    Accept,
    Date,
    UserAgent,
    Server,
    Subject,
    Event,
    ReferTo,
    Path,
    Other,
}

impl HeaderName {
    /// Recognises a header name (case-insensitive; compact forms `v f t i m l c k s o r`).
    pub fn parse(name: &[u8]) -> HeaderName {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'v' => HeaderName::Via,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'i' => HeaderName::CallId,
                b'm' => HeaderName::Contact,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'k' => HeaderName::Supported,
                b's' => HeaderName::Subject,
                b'o' => HeaderName::Event,
                b'r' => HeaderName::ReferTo,
                _ => HeaderName::Other,
            };
        }
        let eq = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        // Dispatch on length first: one comparison for most names.
        match name.len() {
            2 if eq("to") => HeaderName::To,
            3 if eq("via") => HeaderName::Via,
            4 if eq("from") => HeaderName::From,
            4 if eq("cseq") => HeaderName::CSeq,
            4 if eq("date") => HeaderName::Date,
            4 if eq("path") => HeaderName::Path,
            5 if eq("route") => HeaderName::Route,
            5 if eq("allow") => HeaderName::Allow,
            5 if eq("event") => HeaderName::Event,
            6 if eq("accept") => HeaderName::Accept,
            6 if eq("server") => HeaderName::Server,
            7 if eq("call-id") => HeaderName::CallId,
            7 if eq("contact") => HeaderName::Contact,
            7 if eq("expires") => HeaderName::Expires,
            7 if eq("require") => HeaderName::Require,
            7 if eq("subject") => HeaderName::Subject,
            8 if eq("refer-to") => HeaderName::ReferTo,
            9 if eq("supported") => HeaderName::Supported,
            10 if eq("user-agent") => HeaderName::UserAgent,
            11 if eq("min-expires") => HeaderName::MinExpires,
            11 if eq("unsupported") => HeaderName::Unsupported,
            12 if eq("max-forwards") => HeaderName::MaxForwards,
            12 if eq("record-route") => HeaderName::RecordRoute,
            12 if eq("content-type") => HeaderName::ContentType,
            13 if eq("authorization") => HeaderName::Authorization,
            13 if eq("proxy-require") => HeaderName::ProxyRequire,
            14 if eq("content-length") => HeaderName::ContentLength,
            16 if eq("www-authenticate") => HeaderName::WwwAuthenticate,
            18 if eq("proxy-authenticate") => HeaderName::ProxyAuthenticate,
            19 if eq("proxy-authorization") => HeaderName::ProxyAuthorization,
            _ => HeaderName::Other,
        }
    }

    /// The header name at the start of `buf`, when it is one of the common
    /// ones: the name and its length, found without scanning the name byte by
    /// byte first. `None` means "scan the token and call `parse`" (an unknown
    /// name or a compact form may still be there); `Some` is exactly what
    /// `parse` would say of the longest token at the start of `buf`.
    #[inline]
    pub(crate) fn recognise(buf: &[u8]) -> Option<(HeaderName, usize)> {
        let first = *buf.first()?;
        // Each candidate a literal, so its words are constants.
        macro_rules! try_names {
            ($($lower:literal => $name:ident),+) => {{
                $(
                    if let Some(n) = starts_with_name(buf, $lower) {
                        return Some((HeaderName::$name, n));
                    }
                )+
                None
            }};
        }
        match first | 0x20 {
            b'v' => try_names!(b"via" => Via),
            b'f' => try_names!(b"from" => From),
            b't' => try_names!(b"to" => To),
            b'c' => try_names!(
                b"call-id" => CallId,
                b"cseq" => CSeq,
                b"contact" => Contact,
                b"content-length" => ContentLength,
                b"content-type" => ContentType
            ),
            b'm' => try_names!(b"max-forwards" => MaxForwards),
            b'r' => try_names!(b"route" => Route, b"record-route" => RecordRoute),
            b'a' => try_names!(b"allow" => Allow, b"authorization" => Authorization),
            b'u' => try_names!(b"user-agent" => UserAgent),
            b'e' => try_names!(b"expires" => Expires, b"event" => Event),
            b's' => try_names!(b"supported" => Supported, b"server" => Server),
            _ => None,
        }
    }

    /// The full name as messages write it.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Allow => "Allow",
            HeaderName::Accept => "Accept",
            HeaderName::Date => "Date",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Subject => "Subject",
            HeaderName::Event => "Event",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::Path => "Path",
            HeaderName::Other => "",
        }
    }

    /// Headers whose value is a comma-separated list (RFC 3261 §7.3.1).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::Allow
                | HeaderName::Accept
                | HeaderName::Path
        )
    }
}

/// The length of `lower` when `buf` starts with it (ignoring ASCII case) and
/// no other token character follows.
#[inline(always)]
fn starts_with_name<const N: usize>(buf: &[u8], lower: &[u8; N]) -> Option<usize> {
    let head = buf.get(..N)?;
    (eq_lower(head, lower) && buf.get(N).is_none_or(|&b| !super::values::is_token(b))).then_some(N)
}

/// `s` equals `lower` (lower-case letters and `-`, same length) ignoring
/// ASCII case, compared a word at a time: a letter's byte of the target has
/// bit 0x40 set, so `(t & 0x40) >> 1` is the case bit to force in `s` (`-` and
/// digits are compared exactly). Words overlap when the length is not a multiple.
#[inline(always)]
pub(crate) fn eq_lower<const N: usize>(s: &[u8], lower: &[u8; N]) -> bool {
    #[inline(always)]
    fn w64(b: &[u8], at: usize) -> u64 {
        b.get(at..at + 8).map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
    }
    #[inline(always)]
    fn w32(b: &[u8], at: usize) -> u64 {
        b.get(at..at + 4).map_or(0, |w| u64::from(u32::from_le_bytes(w.try_into().unwrap_or_default())))
    }
    #[inline(always)]
    fn w16(b: &[u8], at: usize) -> u64 {
        b.get(at..at + 2).map_or(0, |w| u64::from(u16::from_le_bytes(w.try_into().unwrap_or_default())))
    }
    #[inline(always)]
    fn same(a: u64, t: u64) -> bool {
        (a | ((t & 0x4040_4040_4040_4040) >> 1)) == t
    }
    if s.len() != N {
        return false;
    }
    match N {
        0 => true,
        1 => same(u64::from(s[0]), u64::from(lower[0])),
        2..=3 => same(w16(s, 0), w16(lower, 0)) && same(w16(s, N - 2), w16(lower, N - 2)),
        4..=7 => same(w32(s, 0), w32(lower, 0)) && same(w32(s, N - 4), w32(lower, N - 4)),
        _ => {
            let mut at = 0;
            while at + 8 < N {
                if !same(w64(s, at), w64(lower, at)) {
                    return false;
                }
                at += 8;
            }
            same(w64(s, N - 8), w64(lower, N - 8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compact_forms_and_case() {
        assert_eq!(HeaderName::parse(b"vIa"), HeaderName::Via);
        assert_eq!(HeaderName::parse(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::parse(b"I"), HeaderName::CallId);
        assert_eq!(HeaderName::parse(b"CALL-ID"), HeaderName::CallId);
        assert_eq!(HeaderName::parse(b"l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::parse(b"Record-Route"), HeaderName::RecordRoute);
        assert_eq!(HeaderName::parse(b"X-Foo"), HeaderName::Other);
        assert!(eq_lower(b"Content-LENGTH", b"content-length"));
        assert!(!eq_lower(b"Content\rlength", b"content-length"));
        assert!(!eq_lower(b"Contact", b"content"));
        for h in [HeaderName::Via, HeaderName::ProxyAuthorization, HeaderName::WwwAuthenticate, HeaderName::Path] {
            assert_eq!(HeaderName::parse(h.as_str().as_bytes()), h);
        }
    }

    #[test]
    fn recognised_names_are_what_parse_says() {
        let mut names: Vec<String> = Vec::new();
        for h in [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Content-Length",
            "Content-Type",
            "Max-Forwards",
            "Route",
            "Record-Route",
            "Allow",
            "Authorization",
            "User-Agent",
            "Expires",
            "Event",
            "Supported",
            "Server",
            "X-Foo",
            "v",
            "f",
            "c",
            "Tox",
            "Contacts",
            "content-lengt",
            "Vi",
            "VIA",
            "cALL-iD",
            "Call_ID",
        ] {
            names.push(h.to_string());
            names.push(h.to_ascii_uppercase());
            names.push(h.to_ascii_lowercase());
        }
        for name in &names {
            for rest in ["", ":", " :", "x", "-", "\r", "@"] {
                let line = format!("{name}{rest}");
                let b = line.as_bytes();
                let end = b.iter().position(|&c| !crate::sip::values::is_token(c)).unwrap_or(b.len());
                if let Some((h, n)) = HeaderName::recognise(b) {
                    assert_eq!((h, n), (HeaderName::parse(&b[..end]), end), "{line:?}");
                }
            }
        }
        assert_eq!(HeaderName::recognise(b"call-id:"), Some((HeaderName::CallId, 7)));
        assert_eq!(HeaderName::recognise(b"CONTENT-LENGTH"), Some((HeaderName::ContentLength, 14)));
    }
}
