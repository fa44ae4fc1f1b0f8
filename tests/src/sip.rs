//! SIP messages for the tests: requests and responses to send (plain header
//! lists, written with a computed Content-Length), and received messages parsed
//! by the runtime's parser ([`Sip`]).

use std::fmt;

use bytes::Bytes;
use serc_runtime::sip::values::split_list;
use serc_runtime::sip::{Framing, HeaderName, Message, StartLine};

/// Header lines in order. Names compare case-insensitively; Content-Length is
/// never stored (it is computed when the message is written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Adds a header line at the end.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        if !name.eq_ignore_ascii_case("content-length") {
            self.0.push((name.to_string(), value.into()));
        }
    }

    /// Replaces the header lines named `name` by one, where the first was (at
    /// the end if there was none).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        match self.0.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(i) => {
                self.0[i].1 = value.into();
                let mut seen = 0;
                self.0.retain(|(n, _)| {
                    let same = n.eq_ignore_ascii_case(name);
                    seen += usize::from(same);
                    !same || seen == 1
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every header line named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The value of the first header line named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn write(&self, out: &mut String, body_len: usize) {
        for (name, value) in &self.0 {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {body_len}\r\n\r\n"));
    }
}

/// A request to send. [`crate::Ua`] fills in a new transaction's or dialog's
/// headers; tests change them through `headers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub headers: Headers,
    pub body: String,
}

impl Request {
    pub fn new(method: &str, uri: &str) -> Request {
        Request { method: method.to_string(), uri: uri.to_string(), headers: Headers::default(), body: String::new() }
    }

    /// Adds a header line (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push(name, value);
        self
    }

    /// Sets a header (replacing those of the same name), builder style.
    pub fn with_set(mut self, name: &str, value: &str) -> Request {
        self.headers.set(name, value);
        self
    }

    /// Sets the body and its Content-Type.
    pub fn with_body(mut self, content_type: &str, body: &str) -> Request {
        self.headers.set("Content-Type", content_type);
        self.body = body.to_string();
        self
    }

    /// The branch of the top Via.
    pub fn branch(&self) -> Option<&str> {
        via_param(self.headers.get("Via")?, "branch")
    }

    /// The number of the CSeq.
    pub fn cseq(&self) -> u32 {
        self.headers.get("CSeq").and_then(|c| c.split_whitespace().next()?.parse().ok()).unwrap_or(0)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        self.headers.write(&mut out, self.body.len());
        out.push_str(&self.body);
        out.into_bytes()
    }
}

/// A response to send (see [`Sip::reply`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: String,
}

impl Response {
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push(name, value);
        self
    }

    pub fn with_body(mut self, content_type: &str, body: &str) -> Response {
        self.headers.set("Content-Type", content_type);
        self.body = body.to_string();
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        self.headers.write(&mut out, self.body.len());
        out.push_str(&self.body);
        out.into_bytes()
    }
}

/// A parameter of a Via value (`branch`, `received`, `rport`; `Some("")` for a
/// parameter without value).
fn via_param<'a>(via: &'a str, name: &str) -> Option<&'a str> {
    via.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A received message, parsed by the runtime's parser (so it is also checked to
/// be valid SIP). Displays as its text.
#[derive(Clone)]
pub struct Sip {
    msg: Message,
}

impl Sip {
    /// Parses a message; an error tells why the runtime's parser refused it.
    pub fn parse(bytes: &[u8], framing: Framing) -> Result<Sip, String> {
        Message::parse(Bytes::copy_from_slice(bytes), framing)
            .map(|msg| Sip { msg })
            .map_err(|r| format!("{} {} ({})", r.status.map_or("drop".into(), |s| s.to_string()), r.reason, r.detail))
    }

    /// The runtime's parsed message.
    pub fn message(&self) -> &Message {
        &self.msg
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.msg.bytes()).into_owned()
    }

    pub fn is_request(&self) -> bool {
        self.msg.is_request()
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.msg.status()
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<&str> {
        match self.msg.start {
            StartLine::Response { reason, .. } => Some(self.msg.text(reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// The method of a request, or of the CSeq of a response.
    pub fn method(&self) -> &str {
        self.msg.method_text()
    }

    pub fn request_uri(&self) -> Option<&str> {
        self.msg.request_uri()
    }

    /// The value of the first header line named `name` (full or compact form,
    /// any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.msg.headers_by_text(name).next().map(|h| self.msg.text(h.value))
    }

    /// Every value of the header `name` in order: list headers (Via, Route,
    /// Record-Route, Contact …) split at their commas, one value per element.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let buf = self.msg.bytes();
        self.msg
            .headers_by_text(name)
            .flat_map(|h| {
                let elements: Vec<_> =
                    if h.name.is_list() { split_list(buf, h.value).collect() } else { vec![h.value] };
                elements.into_iter().map(|span| self.msg.text(span))
            })
            .collect()
    }

    /// Whether a header named `name` is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.msg.headers_by_text(name).next().is_some()
    }

    pub fn call_id(&self) -> &str {
        self.msg.text(self.msg.call_id)
    }

    pub fn cseq(&self) -> u32 {
        self.msg.cseq
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.msg.from_tag.map(|t| self.msg.text(t))
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.msg.to_tag.map(|t| self.msg.text(t))
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.msg.max_forwards
    }

    /// The top Via value.
    pub fn top_via(&self) -> &str {
        self.msg.text(self.msg.via.value)
    }

    /// The branch of the top Via.
    pub fn branch(&self) -> Option<&str> {
        self.msg.via.branch.map(|b| self.msg.text(b))
    }

    /// The URI of the first Contact.
    pub fn contact_uri(&self) -> Option<&str> {
        self.msg.contacts().next()?.ok().map(|c| self.msg.text(c.uri))
    }

    pub fn body(&self) -> &[u8] {
        &self.msg.bytes()[self.msg.body.range()]
    }

    /// A response to this request, as a UAS makes it (RFC 3261 §8.2.6): its Vias,
    /// From, Call-ID and CSeq copied; its To, with `to_tag` added when it has
    /// none; the Record-Routes copied into responses that can make a dialog
    /// (101–299 to a request that has them).
    pub fn reply(&self, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for h in self.msg.headers_named(HeaderName::Via) {
            headers.push("Via", self.msg.text(h.value));
        }
        headers.push("From", self.header("From").unwrap_or_default());
        let mut to = self.header("To").unwrap_or_default().to_string();
        if let (None, Some(tag)) = (self.to_tag(), to_tag) {
            to.push_str(&format!(";tag={tag}"));
        }
        headers.push("To", to);
        headers.push("Call-ID", self.call_id());
        headers.push("CSeq", format!("{} {}", self.cseq(), self.method()));
        if (101..300).contains(&status) {
            for h in self.msg.headers_named(HeaderName::RecordRoute) {
                headers.push("Record-Route", self.msg.text(h.value));
            }
        }
        Response { status, reason: reason.to_string(), headers, body: String::new() }
    }
}

impl fmt::Display for Sip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Sip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text())
    }
}

/// The UAC's side of a dialog (RFC 3261 §12.1.2), from an INVITE and a response
/// with a To-tag: where in-dialog requests go and what they carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    /// The From of the INVITE (with our tag).
    pub local: String,
    /// The To of the response (with the remote tag).
    pub remote: String,
    /// The Contact of the response: the Request-URI of in-dialog requests.
    pub remote_target: String,
    /// The Record-Route of the response, reversed: the Route of in-dialog requests.
    pub route_set: Vec<String>,
    /// The CSeq number of the INVITE (its ACK has it too).
    pub invite_cseq: u32,
    /// The last CSeq number used.
    pub cseq: u32,
}

impl Dialog {
    /// The dialog `response` to `invite` establishes. Panics if the response has
    /// no To-tag or no Contact.
    pub fn from_uac(invite: &Request, response: &Sip) -> Dialog {
        assert!(response.to_tag().is_some(), "no To-tag: no dialog\n{response}");
        let remote_target = response.contact_uri().unwrap_or_else(|| panic!("no Contact: no dialog\n{response}"));
        let mut route_set: Vec<String> = response.headers("Record-Route").into_iter().map(String::from).collect();
        route_set.reverse();
        Dialog {
            call_id: response.call_id().to_string(),
            local: invite.headers.get("From").expect("the INVITE has a From").to_string(),
            remote: response.header("To").expect("validated on receipt").to_string(),
            remote_target: remote_target.to_string(),
            route_set,
            invite_cseq: invite.cseq(),
            cseq: invite.cseq(),
        }
    }

    /// The first Route's URI, when there is a route set: where a request goes
    /// (loose routing).
    pub fn first_route(&self) -> Option<&str> {
        let first = self.route_set.first()?;
        let start = first.find('<').map_or(0, |i| i + 1);
        let end = first[start..].find('>').map_or(first.len(), |i| start + i);
        Some(&first[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &str = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy, SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKua\r\n\
        Record-Route: <sip:127.0.0.1:5060;lr>\r\n\
        Record-Route: <sip:10.0.0.1;lr>, <sip:10.0.0.2;lr>\r\n\
        From: <sip:alice@example.com>;tag=a1\r\n\
        To: <sip:bob@example.com>;tag=b2\r\n\
        Call-ID: c1\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:bob@127.0.0.1:6000>\r\n\
        X-Multi: a, b\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parsed_values() {
        let sip = Sip::parse(RESPONSE.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(sip.status(), Some(200));
        assert_eq!(sip.method(), "INVITE");
        assert_eq!(sip.headers("via").len(), 2);
        assert_eq!(sip.branch(), Some("z9hG4bKproxy"));
        assert_eq!(sip.headers("Record-Route"), ["<sip:127.0.0.1:5060;lr>", "<sip:10.0.0.1;lr>", "<sip:10.0.0.2;lr>"]);
        assert_eq!(sip.headers("X-Multi"), ["a, b"]);
        assert_eq!(sip.to_tag(), Some("b2"));
        assert_eq!(sip.contact_uri(), Some("sip:bob@127.0.0.1:6000"));
        assert_eq!(sip.header("i"), Some("c1"));
    }

    #[test]
    fn dialog_route_set_is_reversed() {
        let sip = Sip::parse(RESPONSE.as_bytes(), Framing::Datagram).unwrap();
        let invite = Request::new("INVITE", "sip:bob@example.com")
            .with_header("From", "<sip:alice@example.com>;tag=a1")
            .with_header("CSeq", "7 INVITE");
        let dialog = Dialog::from_uac(&invite, &sip);
        assert_eq!(dialog.route_set[0], "<sip:10.0.0.2;lr>");
        assert_eq!(dialog.first_route(), Some("sip:10.0.0.2;lr"));
        assert_eq!(dialog.remote, "<sip:bob@example.com>;tag=b2");
        assert_eq!(dialog.invite_cseq, 7);
    }

    #[test]
    fn replies_copy_what_a_uas_copies() {
        let req = "INVITE sip:bob@127.0.0.1:6000 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKu;rport=4000;received=127.0.0.1\r\n\
            Record-Route: <sip:127.0.0.1:5060;lr>\r\n\
            From: <sip:alice@example.com>;tag=a1\r\n\
            To: <sip:bob@example.com>\r\n\
            Call-ID: c1\r\n\
            CSeq: 3 INVITE\r\n\
            Max-Forwards: 69\r\n\
            Content-Length: 0\r\n\r\n";
        let sip = Sip::parse(req.as_bytes(), Framing::Datagram).unwrap();
        let ok = sip.reply(200, "OK", Some("t9")).with_body("application/sdp", "v=0\r\n");
        let text = String::from_utf8(ok.to_bytes()).unwrap();
        let back = Sip::parse(text.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(back.headers("Via").len(), 2);
        assert_eq!(back.to_tag(), Some("t9"));
        assert_eq!(back.headers("Record-Route"), ["<sip:127.0.0.1:5060;lr>"]);
        assert_eq!(back.header("CSeq"), Some("3 INVITE"));
        assert_eq!(back.body(), b"v=0\r\n");
        let trying = String::from_utf8(sip.reply(100, "Trying", None).to_bytes()).unwrap();
        assert!(!trying.contains("Record-Route") && !trying.contains("tag=t9"), "{trying}");
    }

    #[test]
    fn headers_set_and_remove() {
        let mut h = Headers::default();
        h.push("Route", "<sip:a>");
        h.push("Max-Forwards", "70");
        h.push("route", "<sip:b>");
        h.push("Content-Length", "99");
        h.set("Route", "<sip:c>");
        assert_eq!(h.iter().collect::<Vec<_>>(), [("Route", "<sip:c>"), ("Max-Forwards", "70")]);
        h.remove("max-forwards");
        assert_eq!(h.get("Max-Forwards"), None);
        assert_eq!(via_param("SIP/2.0/UDP h;rport;branch=z9", "branch"), Some("z9"));
        assert_eq!(via_param("SIP/2.0/UDP h;rport;branch=z9", "rport"), Some(""));
    }
}
