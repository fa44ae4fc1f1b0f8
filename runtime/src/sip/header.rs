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
        for h in [HeaderName::Via, HeaderName::ProxyAuthorization, HeaderName::WwwAuthenticate, HeaderName::Path] {
            assert_eq!(HeaderName::parse(h.as_str().as_bytes()), h);
        }
    }
}
