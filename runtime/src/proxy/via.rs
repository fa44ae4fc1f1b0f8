//! The top Via of a received request (`received`, `rport`) and the Via a
//! stateless forward inserts.

use std::hash::Hasher;
use std::ops::Range;

use super::{hash64, parse_ip, write_case_folded, Local, Packed, Source};
use crate::sip::message::{Message, Method};
use crate::sip::values::is_token;
use crate::sip::{Edits, HeaderName};

/// The magic cookie that starts every RFC 3261 branch (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// One `;name[=value]` parameter: byte ranges of the message.
#[derive(Clone, Debug)]
pub(crate) struct Param {
    pub name: Range<usize>,
    pub value: Option<Range<usize>>,
}

fn skip_lws(buf: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && matches!(buf[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// The parameters in `buf[start..end]` (a Via's params span), in order. Stops at
/// anything that is not a parameter (the parser validated the top Via already).
pub(crate) fn params(buf: &[u8], start: usize, end: usize) -> impl Iterator<Item = Param> + '_ {
    let mut i = start;
    std::iter::from_fn(move || {
        i = skip_lws(buf, i, end);
        if i >= end || buf[i] != b';' {
            return None;
        }
        i = skip_lws(buf, i + 1, end);
        let ns = i;
        while i < end && is_token(buf[i]) {
            i += 1;
        }
        if i == ns {
            return None;
        }
        let name = ns..i;
        let j = skip_lws(buf, i, end);
        if j >= end || buf[j] != b'=' {
            return Some(Param { name, value: None });
        }
        i = skip_lws(buf, j + 1, end);
        let vs = i;
        if i < end && buf[i] == b'"' {
            i += 1;
            while i < end && buf[i] != b'"' {
                i += if buf[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(end);
        } else if i < end && buf[i] == b'[' {
            while i < end && buf[i] != b']' {
                i += 1;
            }
            i = (i + 1).min(end);
        } else {
            while i < end && (is_token(buf[i]) || buf[i] == b':') {
                i += 1;
            }
        }
        Some(Param { name, value: Some(vs..i) })
    })
}

/// Where [`received_splices`] puts parameters the Via lacks, as OpenSER 1.3 does
/// (and Kamailio still does; `runtime/tests/kamailio.rs` compares the bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// In a forwarded request: right after the sent-by, `received` then `rport`
    /// (`Via: SIP/2.0/UDP h:5060;received=IP;branch=…;rport=PORT` when `rport`
    /// was there already).
    Forward,
    /// In a reply the proxy builds: at the end of the Via, `rport` then
    /// `received` (`…;branch=…;rport=PORT;received=IP`).
    Reply,
}

/// The splices [`mark_received`] makes, in message order (absolute offsets of the
/// message): each replaces a range (empty for an insert) by a text. At most two.
pub(crate) fn received_splices(
    msg: &Message,
    src: &Source,
    force_rport: bool,
    placement: Placement,
) -> Vec<(Range<usize>, String)> {
    if !msg.is_request() || nothing_to_splice(msg, src, force_rport) {
        return Vec::new();
    }
    read_splices(msg, src, force_rport, placement)
}

/// Most requests: neither `received` nor `rport`, and a sent-by that is the
/// source address as `Display` writes it. Then [`read_splices`] would find
/// nothing, and this tells so without reading the parameters or parsing the
/// host.
fn nothing_to_splice(msg: &Message, src: &Source, force_rport: bool) -> bool {
    let buf = &msg.bytes()[..];
    let via = &msg.via;
    !force_rport
        && via.rport.is_none()
        && via.received.is_none()
        && is_written_as(&buf[via.host.range()], src.addr.ip().to_canonical())
        && !names_received(&buf[via.params.range()])
}

/// [`received_splices`] of a request, its Via's parameters read one by one.
fn read_splices(msg: &Message, src: &Source, force_rport: bool, placement: Placement) -> Vec<(Range<usize>, String)> {
    let mut out = Vec::new();
    let buf = &msg.bytes()[..];
    let via = &msg.via;
    let ip = src.addr.ip().to_canonical();
    let (mut received, mut rport) = (None, None);
    for p in params(buf, via.params.start as usize, via.value.end as usize) {
        let name = &buf[p.name.clone()];
        if received.is_none() && name.eq_ignore_ascii_case(b"received") {
            received = Some(p);
        } else if rport.is_none() && name.eq_ignore_ascii_case(b"rport") {
            rport = Some(p);
        }
    }
    // IPv6 without brackets: `via-received = "received" EQUAL (IPv4address / IPv6address)`.
    // Written only when a splice needs them (most requests need none).
    let ip_text = || ip.to_string();
    let port_text = || src.addr.port().to_string();
    let want_rport = rport.is_some() || force_rport;
    let host_differs = parse_ip(msg.text(via.host)).is_none_or(|h| h.to_canonical() != ip);
    // Where a missing parameter goes: after the sent-by (at the `;` of the first
    // parameter, or the end of the value), or at the end of the value.
    let at = match placement {
        Placement::Forward => via.params.start as usize,
        Placement::Reply => via.value.end as usize,
    };
    // received: an existing one is made true; else added when the host differs
    // or rport is asked for (RFC 3581 §4: "even if it is identical").
    let received_splice = match &received {
        Some(Param { value: Some(v), .. }) if buf[v.clone()] != *ip_text().as_bytes() => Some((v.clone(), ip_text())),
        Some(Param { name, value: None }) => Some((name.end..name.end, format!("={}", ip_text()))),
        Some(_) => None, // already the source address
        None if host_differs || want_rport => Some((at..at, format!(";received={}", ip_text()))),
        None => None,
    };
    // rport: an existing one gets the source port in its place.
    let rport_splice = match &rport {
        Some(Param { name, value: None }) => Some((name.end..name.end, format!("={}", port_text()))),
        Some(Param { value: Some(v), .. }) if buf[v.clone()] != *port_text().as_bytes() => {
            Some((v.clone(), port_text()))
        }
        Some(_) => None, // already the source port
        None if force_rport => Some((at..at, format!(";rport={}", port_text()))),
        None => None,
    };
    let both = match placement {
        Placement::Forward => [received_splice, rport_splice],
        Placement::Reply => [rport_splice, received_splice],
    };
    out.extend(both.into_iter().flatten());
    // Message order; inserts at one position keep the order above.
    out.sort_by_key(|(r, _)| r.start);
    out
}

/// Whether `host` is `ip` (IPv4) as `Display` writes it.
fn is_written_as(host: &[u8], ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let (text, len) = crate::sip::edit::ipv4_text(v4);
            host == &text[..len]
        }
        std::net::IpAddr::V6(_) => false,
    }
}

/// Whether a parameter of `params` (`;name[=value]…`) may be `received`
/// (any case; a bare one has no value the parsed Via would show): a name
/// that starts with it, or a `;` inside a quoted value followed by it, says
/// yes, and the parameters are then read one by one.
fn names_received(params: &[u8]) -> bool {
    params
        .split(|&b| b == b';')
        .skip(1)
        .any(|p| p.trim_ascii_start().get(..8).is_some_and(|n| n.eq_ignore_ascii_case(b"received")))
}

/// RFC 3261 §18.2.1 and RFC 3581 §4, on a received request: adds
/// `received=<source IP>` to the top Via when its sent-by host is a name or an
/// address other than the source's, and always when the Via has `rport`; fills
/// an empty `rport` with the source port. `force_rport` (OpenSER's
/// `force_rport()`) treats the Via as if it had `rport`: both parameters are
/// appended.
///
/// Where the parameters go, as OpenSER 1.3 puts them (Kamailio too): a missing
/// `received` (and a forced `rport` the Via lacks) right after the sent-by,
/// before the other parameters; an `rport` present gets the port in its place.
/// A `received` already present is overwritten with the source address, and an
/// `rport` that already has a value with the source port (as OpenSER does), so
/// that the Via never carries two of either. IPv6 goes without brackets
/// (RFC 3261's `via-received` is an `IPv6address`). Responses are left alone.
pub fn mark_received(msg: &Message, src: &Source, force_rport: bool, edits: &mut Edits) {
    for (range, text) in received_splices(msg, src, force_rport, Placement::Forward) {
        edits.replace(range, text);
    }
}

/// A branch for a stateless forward (RFC 3261 §16.11): the magic cookie and a
/// hash that is the same for retransmissions of a request and differs between
/// transactions.
///
/// - The top Via's branch starts with the cookie (and has more after it): the
///   hash of that branch and the sent-by (host, case-folded, and port) — the
///   RFC 3261 transaction id (§17.2.3), without the method, so that a CANCEL and
///   the ACK of a non-2xx get the branch the INVITE got, as the next hop's
///   matching needs (§9.1, §17.1.1.3).
/// - Otherwise (RFC 2543, or a bare `z9hG4bK` as in RFC 4475 §3.2.1): the hash
///   of the Request-URI, the top Via, the From tag, the To tag, the Call-ID and
///   the CSeq number (§16.11). An ACK's To tag is left out: the ACK of a non-2xx
///   carries the tag of the response and must still map to its INVITE's branch.
///
/// The hash is SipHash over std's fixed keys (see `hash64`): 64 bits as 16 hex
/// digits.
pub fn stateless_branch(msg: &Message) -> BranchId {
    let via = &msg.via;
    let branch = via.branch.map(|b| msg.text(b)).filter(|b| b.len() > BRANCH_COOKIE.len());
    let h = match branch.filter(|b| b.starts_with(BRANCH_COOKIE)) {
        Some(branch) => {
            let host = msg.text(via.host).as_bytes();
            let port = u32::from(via.port.unwrap_or(0));
            let mut packed = Packed::new();
            let fits = (|| {
                packed.push(&[1])?;
                packed.push_counted(branch.as_bytes())?;
                packed.push_counted(host)?.make_ascii_lowercase();
                packed.push(&port.to_le_bytes()).map(drop)
            })();
            hash64(|h| match fits {
                Some(()) => h.write(packed.bytes()),
                None => {
                    h.write_u8(1);
                    h.write(branch.as_bytes());
                    h.write_u8(0xff);
                    write_case_folded(host, h);
                    h.write_u8(0xff);
                    h.write_u32(port);
                }
            })
        }
        None => hash64(|h| {
            h.write_u8(2);
            for part in [
                msg.request_uri().unwrap_or(""),
                msg.text(via.value),
                msg.from_tag.map_or("", |t| msg.text(t)),
                if msg.method() == Some(Method::Ack) { "" } else { msg.to_tag.map_or("", |t| msg.text(t)) },
                msg.text(msg.call_id),
            ] {
                h.write_usize(part.len());
                h.write(part.as_bytes());
            }
            h.write_u32(msg.cseq);
        }),
    };
    let mut branch = BranchId { text: [0; BranchId::ROOM], len: BranchId::HASHED };
    branch.text[..BRANCH_COOKIE.len()].copy_from_slice(BRANCH_COOKIE.as_bytes());
    super::hex_to(&mut branch.text[BRANCH_COOKIE.len()..BranchId::HASHED], &h.to_be_bytes());
    branch
}

/// A branch [`stateless_branch`] made, kept inline (it is written into one
/// Via and a transaction's key, then dropped): the cookie, 16 hexadecimal
/// digits and, for a stateful branch, `.` and its index.
#[derive(Clone, Copy)]
pub struct BranchId {
    text: [u8; BranchId::ROOM],
    len: usize,
}

impl BranchId {
    /// The cookie and the hash (16 hexadecimal digits).
    const HASHED: usize = BRANCH_COOKIE.len() + 16;
    /// Those, `.` and an index of up to 20 digits (`usize::MAX`).
    const ROOM: usize = BranchId::HASHED + 1 + 20;

    /// The branch with `.index` after the hash (t_relay's branches of one
    /// transaction), in place of an index it had.
    pub fn with_index(mut self, index: usize) -> BranchId {
        let mut digits = [0; 20];
        let digits = crate::sip::edit::format_decimal(index, &mut digits);
        let at = BranchId::HASHED;
        self.text[at] = b'.';
        self.text[at + 1..at + 1 + digits.len()].copy_from_slice(digits);
        self.len = at + 1 + digits.len();
        self
    }

    pub fn as_str(&self) -> &str {
        let text = &self.text[..self.len];
        debug_assert!(text.is_ascii());
        // SAFETY: `text` is private, and only `stateless_branch` and
        // `with_index` write it: the cookie, hexadecimal digits, `.` and
        // decimal digits, all ASCII, which is UTF-8.
        unsafe { std::str::from_utf8_unchecked(text) }
    }
}

impl PartialEq for BranchId {
    fn eq(&self, other: &BranchId) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for BranchId {}

impl std::ops::Deref for BranchId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for BranchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for BranchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Inserts our Via before the first one (RFC 3261 §16.6 step 8):
/// `Via: SIP/2.0/UDP host:port;branch=…` (`;rport` after it when `rport`, as
/// OpenSER's `add_rport` asks). The sent-by is `local.advertised` or
/// `local.addr`, an IPv6 address in brackets; the port is always written.
pub fn add_via(msg: &Message, local: &Local, branch: &str, rport: bool, edits: &mut Edits) {
    // A parsed message always has a Via (the parser refuses one without).
    let at = msg.header(HeaderName::Via).map_or(0, |h| h.line.start as usize);
    let mut line = crate::sip::edit::Line::new();
    line.push(b"Via: SIP/2.0/").push(local.transport.as_str().as_bytes()).push(b" ");
    local.push_sent_by(&mut line);
    line.push(b";branch=").push(branch.as_bytes());
    if rport {
        line.push(b";rport");
    }
    line.push(b"\r\n");
    edits.insert(at, line.bytes());
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proxy::Transport;
    use crate::sip::Framing;

    fn request(via: &str) -> Message {
        let text = format!(
            "OPTIONS sip:b@example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@example.com>;tag=1\r\n\
             To: <sip:b@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text), Framing::Datagram).expect("parses")
    }

    /// Where the shortcut says there is nothing to splice, reading the
    /// parameters finds nothing either; and it does say so for the usual Via.
    #[test]
    fn the_shortcut_agrees_with_reading_the_parameters() {
        let vias = [
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
            "SIP/2.0/UDP 192.0.2.1:5060",
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;received",
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1; ReCeIvEd",
            "SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;branch=z9hG4bK1",
            "SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.9",
            "SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP 192.0.2.1:5060;rport=5060",
            "SIP/2.0/UDP 192.0.2.1:5060;receivedx=1;branch=z9hG4bK1",
            "SIP/2.0/UDP 192.000.2.1:5060;branch=z9hG4bK1",
            "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1",
            "SIP/2.0/UDP host.example.com;branch=z9hG4bK1",
            "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1",
        ];
        let sources = ["192.0.2.1:5060", "192.0.2.1:5099", "192.0.2.10:5060", "[2001:db8::1]:5060"];
        let mut shortcuts = 0;
        for via in vias {
            let msg = request(via);
            for src in sources {
                let addr = src.parse().expect("an address");
                let src = Source { transport: Transport::Udp, addr, local: "192.0.2.99:5060".parse().expect("ok") };
                for force_rport in [false, true] {
                    if nothing_to_splice(&msg, &src, force_rport) {
                        shortcuts += 1;
                        for placement in [Placement::Forward, Placement::Reply] {
                            let read = read_splices(&msg, &src, force_rport, placement);
                            assert!(read.is_empty(), "{via} from {src:?}: {read:?}");
                        }
                    }
                }
            }
        }
        // Without force_rport: the first three Vias from 192.0.2.1 (either
        // port), and 192.0.2.10's from itself.
        assert_eq!(shortcuts, 7);
        let usual = request(vias[0]);
        let src = Source {
            transport: Transport::Udp,
            addr: "192.0.2.1:5060".parse().expect("ok"),
            local: "192.0.2.99:5060".parse().expect("ok"),
        };
        assert!(received_splices(&usual, &src, false, Placement::Forward).is_empty());
        let named = request("SIP/2.0/UDP host.example.com;branch=z9hG4bK1");
        assert_eq!(received_splices(&named, &src, false, Placement::Forward).len(), 1, "received= added");
    }
}
