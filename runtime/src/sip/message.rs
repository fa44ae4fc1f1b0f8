//! SIP messages: a zero-copy parser over `bytes::Bytes` (RFC 3261 §7, §25).
//!
//! Parsing a message finds the start line and every header line (names
//! recognised once, values kept as byte ranges of the buffer), and parses and
//! validates on receipt what every transaction needs — the Request-URI's form,
//! Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length. Date, Contact
//! and Expires, whose malformed forms RFC 4475 asks to refuse, are validated
//! on receipt when the [`Interest`] says a reader needs them: every one of them
//! for [`Message::parse`]; in a built proxy only those its script's functions
//! parse (a stateless relay never looks at a Contact, as OpenSER's lazy parser
//! never did). Everything else is parsed when asked for. An invalid message gets
//! the answer RFC 3261 gives (400, or 505 for a bad version; a malformed
//! response is dropped) and never reaches the script.

use std::ops::Range;

use bytes::Bytes;

use super::header::HeaderName;
use super::values::{self, NameAddr, Via};

/// A byte range of the message buffer (u32: messages are at most 64 KiB over UDP,
/// and the TCP framing caps them too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// A SIP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Prack,
    Update,
    Subscribe,
    Notify,
    Message,
    Refer,
    Publish,
    /// An extension method: its name is in the message.
    Other,
}

impl Method {
    /// Methods are case-sensitive (RFC 3261 §7.1).
    pub fn parse(m: &[u8]) -> Method {
        match m {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"INFO" => Method::Info,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"MESSAGE" => Method::Message,
            b"REFER" => Method::Refer,
            b"PUBLISH" => Method::Publish,
            _ => Method::Other,
        }
    }

    /// The name of a known method as it is written (methods are
    /// case-sensitive, so a parsed one was written so); `None` for
    /// [`Method::Other`], whose name is in the message.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Other => return None,
        })
    }
}

/// The first line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, method_span: Span, uri: Span },
    Response { code: u16, reason: Span },
}

/// One header line: `name: value` (a folded value spans several lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub name_span: Span,
    /// The value, without leading and trailing white space.
    pub value: Span,
    /// The whole line(s), from the name to the end of the line end.
    pub line: Span,
}

/// How the message arrived: a datagram carries one message (trailing bytes
/// after Content-Length are ignored, a missing Content-Length means "the rest");
/// a stream transport has framed it by Content-Length already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Datagram,
    Stream,
}

/// Why a message was refused, and what to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 400, 505 or 501 for a request; `None`: drop it (a malformed response,
    /// or a request that cannot be answered because it has no usable Via).
    pub status: Option<u16>,
    pub reason: &'static str,
    /// What is wrong, for the log.
    pub detail: String,
    /// The raw Via, From, To, Call-ID and CSeq lines a reply copies (RFC 3261 §8.2.6.2).
    pub reply_headers: Vec<Span>,
}

/// Room for the headers of a typical message in a new index (allocated at
/// once: a `reserve` on an empty vector takes the slower growth path).
const HEADER_ROOM: usize = 20;

/// The largest index a thread keeps for its next parse (a message with more
/// headers gives its own back to the allocator).
const MAX_KEPT_HEADERS: usize = 256;

thread_local! {
    /// The header index of the last message the thread dropped, emptied, for
    /// its next parse: a worker parses and drops message after message.
    static SPARE_HEADERS: std::cell::Cell<Vec<Header>> = const { std::cell::Cell::new(Vec::new()) };
}

/// An empty header index: the thread's spare one, or a new one.
fn header_index() -> Vec<Header> {
    match SPARE_HEADERS.try_with(std::cell::Cell::take) {
        Ok(spare) if spare.capacity() >= HEADER_ROOM => spare,
        _ => Vec::with_capacity(HEADER_ROOM),
    }
}

/// A parsed SIP message.
#[derive(Clone, Debug)]
pub struct Message {
    buf: Bytes,
    /// The bytes of `buf` before this offset are ASCII (the start line and
    /// the headers, unless one has a byte above 127; then 0): checked once
    /// when parsed, so that [`text`](Message::text) needs not check the
    /// UTF-8 of each span it gives (a message's headers are read a dozen
    /// times). `buf` never changes (private, and `Bytes`).
    ascii_to: u32,
    pub start: StartLine,
    pub headers: Vec<Header>,
    /// Where the body starts (after the empty line) and its extent.
    pub body: Span,
    pub call_id: Span,
    pub cseq: u32,
    pub cseq_method: Method,
    pub cseq_method_span: Span,
    pub from_tag: Option<Span>,
    pub to_tag: Option<Span>,
    pub max_forwards: Option<u32>,
    pub content_length: Option<u32>,
    /// The Content-Length header's value (for rewriting it).
    pub content_length_span: Option<Span>,
    /// The top Via, parsed.
    pub via: Via,
}

/// The optional headers a parse validates on receipt (beyond Via, From, To,
/// Call-ID, CSeq, Max-Forwards and Content-Length, which every message has
/// validated), in requests and in responses apart. The code generator
/// computes a script's interest from the manifests of the functions it calls
/// (`Function::reads`): a function that runs only on requests (no
/// `onreply_route`) asks for them in requests only. A header outside it is
/// still found and kept, only not validated until something reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interest(u8);

/// The bits of [`Interest`] for requests; the same shifted by three for
/// responses.
const REQUEST_BITS: u8 = 0b111;
const RESPONSE_SHIFT: u32 = 3;

impl Interest {
    /// Validate none of the optional headers.
    pub const NONE: Interest = Interest(0);
    /// Contact values: `*` or name-addr/addr-spec, a numeric `expires` param.
    pub const CONTACT: Interest = Interest(1 | 1 << RESPONSE_SHIFT);
    /// Expires: a number below 2^32.
    pub const EXPIRES: Interest = Interest(2 | 2 << RESPONSE_SHIFT);
    /// Date: an RFC 1123 date in GMT.
    pub const DATE: Interest = Interest(4 | 4 << RESPONSE_SHIFT);
    /// Every optional header (what RFC 4475 asks of a strict element).
    pub const ALL: Interest = Interest(REQUEST_BITS | REQUEST_BITS << RESPONSE_SHIFT);

    /// This interest in requests only (responses validate none of it).
    pub const fn requests_only(self) -> Interest {
        Interest(self.0 & REQUEST_BITS)
    }

    /// Whether a message (a request or not) has `what` validated: each of its
    /// headers, for that kind of message.
    const fn wants(self, what: Interest, request: bool) -> bool {
        let shift = if request { 0 } else { RESPONSE_SHIFT };
        let bits = (what.0 >> shift) & REQUEST_BITS;
        bits != 0 && (self.0 >> shift) & bits == bits
    }

    pub const fn union(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    pub const fn contains(self, other: Interest) -> bool {
        self.0 & other.0 == other.0
    }

    /// What reading the header `name` (a manifest's `reads` entry: a full or
    /// compact name, any case; `*` for any header) asks to validate.
    pub fn of_header(name: &str) -> Interest {
        if name == "*" {
            return Interest::ALL;
        }
        match HeaderName::parse(name.as_bytes()) {
            HeaderName::Contact => Interest::CONTACT,
            HeaderName::Expires => Interest::EXPIRES,
            HeaderName::Date => Interest::DATE,
            _ => Interest::NONE,
        }
    }

    /// The bits, for generated code (`Interest::from_bits(…)` in a const).
    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn from_bits(bits: u8) -> Interest {
        Interest(bits & Interest::ALL.0)
    }
}

impl Default for Interest {
    fn default() -> Interest {
        Interest::ALL
    }
}

/// Largest CSeq number (RFC 3261 §8.1.1.5: less than 2^31).
const MAX_CSEQ: u64 = (1 << 31) - 1;

impl Drop for Message {
    /// The header index goes back to the thread for its next parse.
    fn drop(&mut self) {
        let mut headers = std::mem::take(&mut self.headers);
        if (HEADER_ROOM..=MAX_KEPT_HEADERS).contains(&headers.capacity()) {
            headers.clear();
            // After the thread's locals are gone (a message dropped as the
            // thread ends), the index is simply freed.
            let _ = SPARE_HEADERS.try_with(|spare| spare.set(headers));
        }
    }
}

impl Message {
    /// Parses and validates a message, the optional headers too ([`Interest::ALL`]).
    pub fn parse(buf: Bytes, framing: Framing) -> Result<Message, Rejected> {
        Message::parse_with(buf, framing, Interest::ALL)
    }

    /// Parses and validates a message, of the optional headers only those
    /// `interest` names.
    pub fn parse_with(buf: Bytes, framing: Framing, interest: Interest) -> Result<Message, Rejected> {
        Message::parse_or_return(buf, framing, interest).map_err(|(rejected, _)| rejected)
    }

    /// [`parse_with`](Message::parse_with), handing the buffer back with a
    /// refusal: whoever answers it (a 400 copies its Via, From, To, Call-ID
    /// and CSeq) needs no copy of its own, which for a `Bytes` made from a
    /// `Vec` (a received datagram) would cost an allocation per message.
    pub fn parse_or_return(buf: Bytes, framing: Framing, interest: Interest) -> Result<Message, (Rejected, Bytes)> {
        let headers = header_index();
        let parsed =
            Parser { buf: &buf, reply_headers: Vec::new(), headers, is_request: true, interest }.parse(framing);
        let p = match parsed {
            Ok(p) => p,
            Err(rejected) => return Err((rejected, buf)),
        };
        let ascii_head = buf.get(..p.body.start as usize).is_some_and(<[u8]>::is_ascii);
        let ascii_to = if ascii_head { p.body.start } else { 0 };
        // The buffer moves into the message (no reference count taken and dropped).
        Ok(Message {
            buf,
            ascii_to,
            start: p.start,
            headers: p.headers,
            body: p.body,
            call_id: p.call_id,
            cseq: p.cseq,
            cseq_method: p.cseq_method,
            cseq_method_span: p.cseq_method_span,
            from_tag: p.from_tag,
            to_tag: p.to_tag,
            max_forwards: p.max_forwards,
            content_length: p.content_length,
            content_length_span: p.content_length_span,
            via: p.via,
        })
    }

    /// The whole message as received.
    pub fn bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The text of a span (SIP is UTF-8 where it is text; bytes that are not
    /// give `""`).
    pub fn text(&self, span: Span) -> &str {
        let bytes = &self.buf[span.range()];
        if span.end <= self.ascii_to {
            // SAFETY: the bytes before `ascii_to` are ASCII (checked when the
            // message was parsed; the buffer never changes), and ASCII is UTF-8.
            return unsafe { std::str::from_utf8_unchecked(bytes) };
        }
        std::str::from_utf8(bytes).unwrap_or("")
    }

    pub fn slice(&self, span: Span) -> Bytes {
        self.buf.slice(span.range())
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<Method> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The method's name as written (for extension methods).
    pub fn method_text(&self) -> &str {
        let (method, span) = match self.start {
            StartLine::Request { method, method_span, .. } => (method, method_span),
            StartLine::Response { .. } => (self.cseq_method, self.cseq_method_span),
        };
        // A known method's text is its name: no UTF-8 check of the span.
        method.name().unwrap_or_else(|| self.text(span))
    }

    pub fn request_uri(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(self.text(uri)),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Every header line with this name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &Header> {
        self.headers.iter().filter(move |h| h.name == name)
    }

    /// The first header with this name.
    pub fn header(&self, name: HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.name == name)
    }

    /// Every header whose name is `name` (case-insensitive, compact forms included).
    pub fn headers_by_text<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.headers_named_as(HeaderName::parse(name.as_bytes()), name)
    }

    /// The header lines named `name`, recognised beforehand (`text`: the name as
    /// written, compared case-insensitively when `name` is `Other`).
    pub fn headers_named_as<'a>(&'a self, name: HeaderName, text: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.headers.iter().filter(move |h| self.is_named(h, name, text))
    }

    /// Whether header line `h` is named `name` (`text` when `name` is `Other`);
    /// compact forms count, as they were recognised on receipt.
    pub fn is_named(&self, h: &Header, name: HeaderName, text: &str) -> bool {
        if name != HeaderName::Other {
            return h.name == name;
        }
        h.name == HeaderName::Other && self.buf[h.name_span.range()].eq_ignore_ascii_case(text.as_bytes())
    }

    /// The values of list headers with this name (`Via: a, b` + `Via: c` → a, b, c).
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = Span> + '_ {
        self.headers_named(name).flat_map(move |h| values::split_list(&self.buf, h.value))
    }

    /// The Via values, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via, &'static str>> + '_ {
        self.values(HeaderName::Via).map(move |v| Via::parse(&self.buf, v))
    }

    pub fn from(&self) -> NameAddr {
        let h = self.header(HeaderName::From).expect("validated on receipt");
        NameAddr::parse(&self.buf, h.value).expect("validated on receipt")
    }

    pub fn to(&self) -> NameAddr {
        let h = self.header(HeaderName::To).expect("validated on receipt");
        NameAddr::parse(&self.buf, h.value).expect("validated on receipt")
    }

    /// The Contact values (`*` is a value of its own).
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr, &'static str>> + '_ {
        self.values(HeaderName::Contact).map(move |v| NameAddr::parse(&self.buf, v))
    }

    pub fn body_bytes(&self) -> Bytes {
        self.slice(self.body)
    }

    /// Writes the message with `edits` applied: bytes after the body (a UDP
    /// datagram's trailing octets) are left out, and the Content-Length is
    /// rewritten to the edited body's length — or added when the message had
    /// none, `0` for no body: a message received over UDP without one may be
    /// sent on over a stream, where it is required (RFC 3261 §18.3; OpenSER
    /// 1.3 adds it for TCP).
    pub fn write(&self, edits: &super::Edits) -> Result<bytes::BytesMut, super::EditError> {
        let msg = &self.buf[..self.body.end as usize];
        let body_start = self.body.start as usize;
        if let Some(cl) = self.content_length_span {
            return edits.apply_with_content_length(msg, Some(cl.range()), body_start);
        }
        // The header goes where the empty line starts, found by the parse, not by
        // looking for CRLF CRLF in the text: a body may hold one, and a head
        // ended by a bare LF (a line end the parser accepts) has none.
        let body_len = edits.body_len_after(msg.len(), body_start)?;
        let mut with = edits.clone();
        with.insert(self.head_end(), format!("Content-Length: {body_len}\r\n"));
        with.apply(msg)
    }

    /// Where the empty line after the headers starts: the end of the last
    /// header line (with its continuation lines).
    pub fn head_end(&self) -> usize {
        self.headers.last().map_or(self.body.start as usize, |h| h.line.end as usize)
    }
}

struct Parsed {
    start: StartLine,
    headers: Vec<Header>,
    body: Span,
    call_id: Span,
    cseq: u32,
    cseq_method: Method,
    cseq_method_span: Span,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
    max_forwards: Option<u32>,
    content_length: Option<u32>,
    content_length_span: Option<Span>,
    via: Via,
}

struct Parser<'b> {
    buf: &'b [u8],
    /// Found before the headers were read (a refused request line).
    reply_headers: Vec<Span>,
    headers: Vec<Header>,
    is_request: bool,
    interest: Interest,
}

use super::values::is_token;

fn trim(buf: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && matches!(buf[s], b' ' | b'\t' | b'\r' | b'\n') {
        s += 1;
    }
    while e > s && matches!(buf[e - 1], b' ' | b'\t' | b'\r' | b'\n') {
        e -= 1;
    }
    (s, e)
}

/// Decimal digits only, at least one, no overflow (one pass).
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

impl Parser<'_> {
    fn reject(&self, status: u16, reason: &'static str, detail: impl Into<String>) -> Rejected {
        let mut reply_headers = self.reply_headers.clone();
        reply_headers.extend(
            self.headers
                .iter()
                .filter(|h| {
                    matches!(
                        h.name,
                        HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq
                    )
                })
                .map(|h| h.line),
        );
        let can_answer = self.is_request
            && reply_headers.iter().any(|s| {
                HeaderName::parse(
                    &self.buf[s.range()][..self.buf[s.range()].iter().position(|&b| !is_token(b)).unwrap_or(0)],
                ) == HeaderName::Via
            });
        Rejected { status: can_answer.then_some(status), reason, detail: detail.into(), reply_headers }
    }

    fn bad(&self, detail: impl Into<String>) -> Rejected {
        self.reject(400, "Bad Request", detail)
    }

    /// The end of the line starting at `from` (the index of its `\n`, or the
    /// buffer's end), and where the next line starts.
    fn line_end(&self, from: usize) -> (usize, usize) {
        match values::find_byte(&self.buf[from..], b'\n') {
            Some(i) => {
                let nl = from + i;
                let end = if nl > from && self.buf[nl - 1] == b'\r' { nl - 1 } else { nl };
                (end, nl + 1)
            }
            None => (self.buf.len(), self.buf.len()),
        }
    }

    fn parse(&mut self, framing: Framing) -> Result<Parsed, Rejected> {
        let buf = self.buf;
        // Leading CRLFs (keep-alives on streams) are skipped (RFC 3261 §7.5).
        let mut pos = 0;
        while pos < buf.len() && matches!(buf[pos], b'\r' | b'\n') {
            pos += 1;
        }
        let (line_end, mut next) = self.line_end(pos);
        let line = &buf[pos..line_end];
        let start = if line.starts_with(b"SIP/") {
            self.is_request = false;
            self.status_line(pos, line)
        } else {
            self.request_line(pos, line)
        };
        let start = match start {
            Ok(start) => start,
            Err(rejected) => {
                // Still find the headers a reply copies.
                self.collect_reply_headers(next);
                return Err(Rejected {
                    status: rejected.status.or(self.reply_status(&rejected)),
                    reply_headers: self.reply_headers.clone(),
                    ..rejected
                });
            }
        };
        // Header lines, up to the empty line.
        let body_start;
        loop {
            if next >= buf.len() {
                return Err(self.bad("the message ends before the empty line after the headers"));
            }
            let first = buf[next];
            if is_token(first) {
                // `name [WSP] : value`: the name and the colon need no line end
                // (CR and LF are neither tokens nor white space), so the line is
                // searched for its end only from the value on.
                let (name, name_end) = match HeaderName::recognise(&buf[next..]) {
                    Some((name, len)) => (name, next + len),
                    None => {
                        let mut name_end = next + 1;
                        while name_end < buf.len() && is_token(buf[name_end]) {
                            name_end += 1;
                        }
                        (HeaderName::parse(&buf[next..name_end]), name_end)
                    }
                };
                let mut colon = name_end;
                while colon < buf.len() && matches!(buf[colon], b' ' | b'\t') {
                    colon += 1;
                }
                if colon >= buf.len() || buf[colon] != b':' {
                    return Err(self.bad(format!(
                        "expected `:` after the header name {:?}",
                        String::from_utf8_lossy(&buf[next..name_end])
                    )));
                }
                let (end, after) = self.line_end(colon + 1);
                let (vs, ve) = trim(buf, colon + 1, end);
                self.headers.push(Header {
                    name,
                    name_span: Span::new(next, name_end),
                    value: Span::new(vs, ve),
                    line: Span::new(next, after),
                });
                next = after;
                continue;
            }
            let (end, after) = self.line_end(next);
            if end == next {
                body_start = after;
                break;
            }
            if matches!(first, b' ' | b'\t') {
                // A continuation line (folding) of the previous header.
                match self.headers.last_mut() {
                    Some(h) => {
                        let (_, e) = trim(buf, h.value.start as usize, end);
                        if e > h.value.end as usize {
                            h.value.end = e as u32;
                        }
                        if h.value.is_empty() {
                            let (s, e) = trim(buf, next, end);
                            h.value = Span::new(s, e);
                        }
                        h.line.end = after as u32;
                    }
                    None => return Err(self.bad("a header line starts with white space")),
                }
                next = after;
                continue;
            }
            return Err(self.bad(format!("a header line has no name: {:?}", String::from_utf8_lossy(&buf[next..end]))));
        }
        self.validate(start, body_start, framing)
    }

    /// A Contact header: `*` or name-addr / addr-spec values.
    fn contact(&self, value: Span) -> Result<(), Rejected> {
        let buf = self.buf;
        if values::find_byte(&buf[value.range()], b',').is_none() {
            // One value (or none): nothing to split.
            return if value.is_empty() { Ok(()) } else { self.contact_value(value) };
        }
        if values::has_empty_list_element(buf, value) {
            return Err(self.bad("an empty value in a Contact list"));
        }
        for v in values::split_list(buf, value) {
            self.contact_value(v)?;
        }
        Ok(())
    }

    fn contact_value(&self, v: Span) -> Result<(), Rejected> {
        let buf = self.buf;
        if &buf[v.range()] == b"*" {
            return Ok(());
        }
        let c = NameAddr::parse(buf, v).map_err(|why| self.bad(format!("bad Contact: {why}")))?;
        if !c.params.is_empty() {
            if let Some(e) = c.param(buf, "expires") {
                parse_u64(e.as_bytes())
                    .filter(|n| *n <= u32::MAX as u64)
                    .ok_or_else(|| self.bad("bad Contact expires"))?;
            }
        }
        Ok(())
    }

    /// The status a request-line rejection gets once the reply headers are known.
    fn reply_status(&self, rejected: &Rejected) -> Option<u16> {
        if !self.is_request || self.reply_headers.is_empty() {
            return None;
        }
        Some(if rejected.reason == "Version Not Supported" { 505 } else { 400 })
    }

    /// Finds the Via, From, To, Call-ID and CSeq lines from `next` on, without
    /// validating anything (for the reply to a request refused at its first line).
    fn collect_reply_headers(&mut self, mut next: usize) {
        let buf = self.buf;
        while next < buf.len() {
            let (end, after) = self.line_end(next);
            if end == next {
                break;
            }
            let name_end = buf[next..end].iter().position(|&b| !is_token(b)).map_or(end, |i| next + i);
            let name = HeaderName::parse(&buf[next..name_end]);
            // A header line: the name, then the colon (white space before it allowed).
            let colon = buf[name_end..end].iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b':');
            if colon
                && matches!(
                    name,
                    HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq
                )
            {
                let mut line_end = after;
                while line_end < buf.len() && matches!(buf[line_end], b' ' | b'\t') {
                    line_end = self.line_end(line_end).1;
                }
                self.reply_headers.push(Span::new(next, line_end));
            }
            next = after;
        }
    }

    fn request_line(&self, pos: usize, line: &[u8]) -> Result<StartLine, Rejected> {
        // Method SP Request-URI SP SIP-Version, single spaces (RFC 4475 §3.1.2.9/10).
        let sp1 = values::find_byte(line, b' ').ok_or_else(|| self.bad("the request line has no Request-URI"))?;
        let method = &line[..sp1];
        if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
            return Err(self.bad("the method is not a token"));
        }
        let rest = &line[sp1 + 1..];
        let sp2 = values::find_byte(rest, b' ').ok_or_else(|| self.bad("the request line has no SIP version"))?;
        let uri = &rest[..sp2];
        let version = &rest[sp2 + 1..];
        if uri.is_empty() {
            return Err(self.bad("more than one space between request-line elements"));
        }
        if version.contains(&b' ') || version.contains(&b'\t') {
            return Err(self.bad("white space inside or after the SIP version"));
        }
        self.version(version)?;
        values::check_request_uri(uri).map_err(|why| self.bad(format!("bad Request-URI: {why}")))?;
        let method_span = Span::new(pos, pos + sp1);
        let uri_start = pos + sp1 + 1;
        Ok(StartLine::Request {
            method: Method::parse(method),
            method_span,
            uri: Span::new(uri_start, uri_start + sp2),
        })
    }

    fn version(&self, v: &[u8]) -> Result<(), Rejected> {
        if v.eq_ignore_ascii_case(b"SIP/2.0") {
            return Ok(());
        }
        let well_formed = v.len() > 4
            && v[..4].eq_ignore_ascii_case(b"SIP/")
            && v[4..].split(|&b| b == b'.').count() == 2
            && v[4..].iter().all(|&b| b.is_ascii_digit() || b == b'.');
        if well_formed {
            Err(self.reject(505, "Version Not Supported", format!("SIP version {}", String::from_utf8_lossy(v))))
        } else {
            Err(self.bad("malformed SIP version"))
        }
    }

    fn status_line(&self, _pos: usize, line: &[u8]) -> Result<StartLine, Rejected> {
        // SIP-Version SP Status-Code SP Reason-Phrase
        let sp1 = line.iter().position(|&b| b == b' ').ok_or_else(|| self.bad("no status code"))?;
        self.version(&line[..sp1]).map_err(|_| self.bad("bad SIP version in a response"))?;
        let rest = &line[sp1 + 1..];
        let code_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let code = &rest[..code_len];
        if code.len() != 3 {
            return Err(self.bad("the status code is not three digits"));
        }
        let code =
            parse_u64(code).filter(|c| (100..=699).contains(c)).ok_or_else(|| self.bad("status code out of range"))?;
        let reason_start = _pos + sp1 + 1 + (code_len + 1).min(rest.len());
        Ok(StartLine::Response { code: code as u16, reason: Span::new(reason_start, _pos + line.len()) })
    }

    fn validate(&mut self, start: StartLine, body_start: usize, framing: Framing) -> Result<Parsed, Rejected> {
        let buf = self.buf;
        let headers = &self.headers;
        // One pass: where the single-valued headers are (and that they are single).
        let mut slot = [usize::MAX; 6];
        const FROM: usize = 0;
        const TO: usize = 1;
        const CALL_ID: usize = 2;
        const CSEQ: usize = 3;
        const MAX_FORWARDS: usize = 4;
        const CONTENT_LENGTH: usize = 5;
        const NAMES: [&str; 6] = ["From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"];
        let mut top_via = None;
        for (k, h) in headers.iter().enumerate() {
            let which = match h.name {
                HeaderName::From => FROM,
                HeaderName::To => TO,
                HeaderName::CallId => CALL_ID,
                HeaderName::CSeq => CSEQ,
                HeaderName::MaxForwards => MAX_FORWARDS,
                HeaderName::ContentLength => CONTENT_LENGTH,
                HeaderName::Via => {
                    // Most Via lines hold one value: no comma, nothing to split.
                    let list = values::find_byte(&buf[h.value.range()], b',').is_some();
                    if list && values::has_empty_list_element(buf, h.value) {
                        return Err(self.bad("an empty value in a Via list"));
                    }
                    // The top Via is parsed now; the others when a reply is routed.
                    if top_via.is_none() {
                        let first = if list {
                            values::split_list(buf, h.value).next()
                        } else {
                            (!h.value.is_empty()).then_some(h.value)
                        };
                        let v = first.ok_or_else(|| self.bad("an empty Via"))?;
                        top_via = Some(Via::parse(buf, v).map_err(|why| self.bad(format!("bad Via: {why}")))?);
                    }
                    continue;
                }
                HeaderName::Expires if self.interest.wants(Interest::EXPIRES, self.is_request) => {
                    // A number below 2^32.
                    parse_u64(&buf[h.value.range()])
                        .filter(|n| *n <= u32::MAX as u64)
                        .ok_or_else(|| self.bad("bad Expires"))?;
                    continue;
                }
                HeaderName::Date if self.interest.wants(Interest::DATE, self.is_request) => {
                    // An RFC 1123 date in GMT (RFC 3261 §20.17).
                    if !values::valid_date(&buf[h.value.range()]) {
                        return Err(self.bad("bad Date (not an RFC 1123 date in GMT)"));
                    }
                    continue;
                }
                HeaderName::Contact if self.interest.wants(Interest::CONTACT, self.is_request) => {
                    self.contact(h.value)?;
                    continue;
                }
                _ => continue,
            };
            if slot[which] != usize::MAX {
                return Err(self.bad(format!("more than one {} header", NAMES[which])));
            }
            slot[which] = k;
        }
        let via = top_via.ok_or_else(|| self.bad("no Via header"))?;
        let required = |which: usize| -> Result<Header, Rejected> {
            headers.get(slot[which]).copied().ok_or_else(|| self.bad(format!("no {} header", NAMES[which])))
        };
        let optional = |which: usize| headers.get(slot[which]).copied();
        let from = required(FROM)?;
        let from = NameAddr::parse(buf, from.value).map_err(|why| self.bad(format!("bad From: {why}")))?;
        let to = required(TO)?;
        let to = NameAddr::parse(buf, to.value).map_err(|why| self.bad(format!("bad To: {why}")))?;
        let call_id = required(CALL_ID)?.value;
        let cid = &buf[call_id.range()];
        if cid.is_empty() || values::has_ascii_whitespace(cid) {
            return Err(self.bad("bad Call-ID"));
        }
        let cseq_h = required(CSEQ)?.value;
        // CSeq: number LWS method
        let cs = &buf[cseq_h.range()];
        let num_end = cs.iter().position(|b| !b.is_ascii_digit()).unwrap_or(cs.len());
        let cseq = parse_u64(&cs[..num_end]).filter(|n| *n <= MAX_CSEQ).ok_or_else(|| self.bad("bad CSeq number"))?;
        let (ms, me) = trim(buf, cseq_h.start as usize + num_end, cseq_h.end as usize);
        if ms == cseq_h.start as usize + num_end || ms == me || !buf[ms..me].iter().all(|&b| is_token(b)) {
            return Err(self.bad("bad CSeq method"));
        }
        let cseq_method = Method::parse(&buf[ms..me]);
        if let StartLine::Request { method, method_span, .. } = start {
            if buf[method_span.range()] != buf[ms..me] {
                return Err(if method == Method::Other {
                    self.reject(501, "Not Implemented", "the CSeq method differs from the request's unknown method")
                } else {
                    self.bad("the CSeq method differs from the request method")
                });
            }
        }
        // Max-Forwards: 0..=255
        let max_forwards = match optional(MAX_FORWARDS) {
            None => None,
            Some(h) => Some(
                parse_u64(&buf[h.value.range()]).filter(|n| *n <= 255).ok_or_else(|| self.bad("bad Max-Forwards"))?
                    as u32,
            ),
        };
        // Content-Length
        let (content_length, content_length_span) = match optional(CONTENT_LENGTH) {
            None => (None, None),
            Some(h) => {
                let n = parse_u64(&buf[h.value.range()])
                    .filter(|n| *n <= u32::MAX as u64)
                    .ok_or_else(|| self.bad("bad Content-Length"))?;
                (Some(n as u32), Some(h.value))
            }
        };
        let available = buf.len().saturating_sub(body_start);
        let body_len = match (content_length, framing) {
            (Some(n), _) if n as usize > available => {
                return Err(self.bad(format!("Content-Length {n} is larger than the {available} bytes of body")));
            }
            (Some(n), _) => n as usize,
            (None, Framing::Datagram) => available,
            (None, Framing::Stream) => return Err(self.bad("no Content-Length on a stream transport")),
        };
        Ok(Parsed {
            start,
            body: Span::new(body_start, body_start + body_len),
            call_id,
            cseq: cseq as u32,
            cseq_method,
            cseq_method_span: Span::new(ms, me),
            from_tag: from.tag,
            to_tag: to.tag,
            max_forwards,
            content_length,
            content_length_span,
            via,
            headers: std::mem::take(&mut self.headers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(extra: &str) -> Bytes {
        Bytes::from(format!(
            "OPTIONS sip:bob@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1\r\n\
             To: <sip:bob@example.com>\r\n\
             From: <sip:alice@example.com>;tag=1\r\n\
             Call-ID: interest\r\n\
             CSeq: 1 OPTIONS\r\n\
             {extra}\r\n\r\n"
        ))
    }

    /// A dropped message's header index is the next parse's on the thread,
    /// emptied: each message indexes its own headers only; a clone has its own.
    #[test]
    fn a_dropped_messages_header_index_serves_the_next_parse() {
        let long = options("X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\nX-E: 5");
        let first = Message::parse(long, Framing::Datagram).unwrap();
        assert_eq!(first.headers.len(), 10);
        let clone = first.clone();
        let room = first.headers.as_ptr();
        drop(first);
        let second = Message::parse(options("X-Z: last"), Framing::Datagram).unwrap();
        assert_eq!(second.headers.as_ptr(), room, "the same index");
        let names: Vec<_> = second.headers.iter().map(|h| second.text(h.name_span)).collect();
        assert_eq!(names, ["Via", "To", "From", "Call-ID", "CSeq", "X-Z"]);
        assert_eq!(clone.headers.len(), 10);
        assert_eq!(clone.headers_by_text("X-E").map(|h| clone.text(h.value)).collect::<Vec<_>>(), ["5"]);
    }

    /// `text` gives a span's text whether the headers are all ASCII (checked
    /// once), UTF-8 beyond it, or hold a byte that is not UTF-8 (that span
    /// gives `""`, the others their text); a body that is not UTF-8 changes
    /// nothing for the headers.
    #[test]
    fn text_of_ascii_utf8_and_other_bytes() {
        fn value<'m>(msg: &'m Message, name: &str) -> &'m str {
            msg.headers_by_text(name).next().map(|h| msg.text(h.value)).unwrap()
        }
        let ascii = Message::parse(options("X-A: plain"), Framing::Datagram).unwrap();
        assert_eq!((value(&ascii, "X-A"), value(&ascii, "Call-ID")), ("plain", "interest"));
        let utf8 = Message::parse(options("X-A: caf\u{e9} \u{263a}"), Framing::Datagram).unwrap();
        assert_eq!((value(&utf8, "X-A"), value(&utf8, "Call-ID")), ("caf\u{e9} \u{263a}", "interest"));
        let mut latin1 = options("X-A: caf").to_vec();
        let at = latin1.windows(3).position(|w| w == b"caf").unwrap() + 3;
        latin1.insert(at, 0xe9);
        let latin1 = Message::parse(Bytes::from(latin1), Framing::Datagram).unwrap();
        assert_eq!((value(&latin1, "X-A"), value(&latin1, "Call-ID")), ("", "interest"));
        let mut body = options("Content-Length: 2").to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        let body = Message::parse(Bytes::from(body), Framing::Datagram).unwrap();
        assert_eq!((value(&body, "Call-ID"), body.text(body.body)), ("interest", ""));
    }

    #[test]
    fn method_text_is_the_method_as_written() {
        let known = [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "REGISTER",
            "OPTIONS",
            "INFO",
            "PRACK",
            "UPDATE",
            "SUBSCRIBE",
            "NOTIFY",
            "MESSAGE",
            "REFER",
            "PUBLISH",
        ];
        for name in known {
            let method = Method::parse(name.as_bytes());
            assert_ne!(method, Method::Other, "{name}");
            assert_eq!(method.name(), Some(name));
        }
        for name in ["FOO", "invite", "Invite", "INVITEX"] {
            assert_eq!(Method::parse(name.as_bytes()).name(), None, "{name}");
            let text = String::from_utf8_lossy(&options(""))
                .replace("OPTIONS sip:", &format!("{name} sip:"))
                .replace("CSeq: 1 OPTIONS", &format!("CSeq: 1 {name}"));
            let msg = Message::parse(Bytes::from(text), Framing::Datagram).expect(name);
            assert_eq!(msg.method_text(), name);
        }
        let request = Message::parse(options(""), Framing::Datagram).unwrap();
        assert_eq!(request.method_text(), "OPTIONS");
        let reply = Message::parse(
            Bytes::from_static(
                b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1\r\nTo: <sip:b@x>;tag=2\r\n\
                  From: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 7 NOTIFY\r\nContent-Length: 0\r\n\r\n",
            ),
            Framing::Datagram,
        )
        .unwrap();
        assert_eq!(reply.method_text(), "NOTIFY");
    }

    #[test]
    fn interest_names_the_optional_headers_validated_on_receipt() {
        let cases = [
            ("Contact: <sip:alice@example.com>;expires=soon", Interest::CONTACT),
            ("m: <sip:alice@example.com>;expires=soon", Interest::CONTACT),
            ("Contact: <sip:a@example.com>, , <sip:b@example.com>", Interest::CONTACT),
            ("Expires: 4294967296", Interest::EXPIRES),
            ("Date: 13 Nov 2010", Interest::DATE),
        ];
        for (line, bit) in cases {
            let refused = Message::parse(options(line), Framing::Datagram).unwrap_err();
            assert_eq!(refused.status, Some(400), "{line}");
            for interest in [Interest::NONE, Interest::ALL] {
                let with = interest.union(bit);
                assert!(Message::parse_with(options(line), Framing::Datagram, with).is_err(), "{line} with {with:?}");
                // Without the bit the message is accepted and the header is
                // there, raw, for whoever reads it.
                let without = Interest::from_bits(Interest::ALL.bits() & !bit.bits());
                let msg = Message::parse_with(options(line), Framing::Datagram, without).expect(line);
                let h = msg.headers.last().expect("the header is kept");
                assert_eq!(msg.text(h.value), line.split_once(": ").unwrap().1);
            }
        }
    }

    /// An interest in requests only leaves responses' optional headers
    /// unvalidated (a response's Contact is relayed as it came when only
    /// `save` reads Contacts), and validates requests' as before.
    #[test]
    fn an_interest_in_requests_only_validates_no_response() {
        let bad = "Contact: <sip:alice@example.com>;expires=soon";
        let response = |extra: &str| {
            Bytes::from(format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1\r\nTo: <sip:bob@example.com>;tag=2\r\n\
                 From: <sip:alice@example.com>;tag=1\r\nCall-ID: interest\r\nCSeq: 1 OPTIONS\r\n{extra}\r\n\r\n"
            ))
        };
        let requests = Interest::CONTACT.requests_only();
        assert!(Message::parse_with(options(bad), Framing::Datagram, requests).is_err());
        let relayed = Message::parse_with(response(bad), Framing::Datagram, requests).expect("not validated");
        assert_eq!(relayed.status(), Some(200));
        assert!(Message::parse_with(response(bad), Framing::Datagram, Interest::CONTACT).is_err());
        assert!(
            Message::parse_with(response("Contact: <sip:a@example.com>"), Framing::Datagram, Interest::CONTACT).is_ok()
        );
        assert_eq!(requests.union(Interest::CONTACT), Interest::CONTACT);
        assert!(!requests.contains(Interest::CONTACT));
    }

    #[test]
    fn interest_of_a_manifest_header_name() {
        assert_eq!(Interest::of_header("Contact"), Interest::CONTACT);
        assert_eq!(Interest::of_header("m"), Interest::CONTACT);
        assert_eq!(Interest::of_header("expires"), Interest::EXPIRES);
        assert_eq!(Interest::of_header("Date"), Interest::DATE);
        assert_eq!(Interest::of_header("*"), Interest::ALL);
        assert_eq!(Interest::of_header("User-Agent"), Interest::NONE);
        assert_eq!(Interest::default(), Interest::ALL);
        assert!(Interest::ALL.contains(Interest::CONTACT.union(Interest::DATE)));
        assert!(!Interest::CONTACT.contains(Interest::DATE));
    }
}
