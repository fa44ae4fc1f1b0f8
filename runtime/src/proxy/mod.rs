//! What a stateless proxy does to messages (OpenSER's core `forward()`), as pure
//! functions: RFC 3261 §16 (proxy behaviour), §18 (transport) and RFC 3581 (rport).
//!
//! Sans-IO like the rest of the SIP core: nothing here opens a socket, reads a
//! clock or resolves a name. Edits to a received message are recorded in an
//! [`Edits`](crate::sip::Edits) list (applied once at send time); where a message
//! goes is returned as a [`Target`] — an address, or a name for the caller to
//! resolve with RFC 3263.
//!
//! - [`mark_received`]: `received` / `rport` on the top Via of a received request
//!   (§18.2.1, RFC 3581 §4);
//! - [`stateless_branch`], [`add_via`]: the Via a stateless forward inserts (§16.6
//!   step 8, §16.11);
//! - [`next_hop`]: where a request goes, from `$du` or the Request-URI (RFC 3263 §4
//!   up to the DNS);
//! - [`route_response`]: a received response — ours? strip our Via, and where the
//!   next Via says it goes (§16.7 step 3, §18.2.2, RFC 3581 §4);
//! - [`reply_target`]: where a reply to a received request goes (§18.2.2);
//! - [`stateless_reply`], [`stateless_to_tag`], [`rejection_reply`]: replies built
//!   from a request (§8.2.6; OpenSER's `sl_send_reply` and the core's 400).

mod reply;
mod route;
mod via;

use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::net::{IpAddr, SocketAddr};

pub use reply::{rejection_reply, stateless_reply, stateless_to_tag};
pub use route::{next_hop, reply_target, route_response};
pub use via::{add_via, mark_received, stateless_branch, BRANCH_COOKIE};

/// A SIP transport (the ones OpenSER 1.3 listens on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
}

impl Transport {
    /// Recognises a transport as a Via writes it (`UDP`) or a URI's `transport`
    /// parameter does (`udp`): case-insensitive. Other transports (`WS`,
    /// unknown tokens) give `None`.
    pub fn parse(name: &str) -> Option<Transport> {
        [Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Sctp]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// The name as a Via writes it: `UDP`, `TCP`, `TLS`, `SCTP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
        }
    }

    /// The port used when none is given: 5061 for TLS, 5060 otherwise (RFC 3261
    /// §18.1.1, §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }

    /// Whether the transport is reliable (connection or association based).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The lower-case name, as `listen=udp:…` and a URI's `transport=` write it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Sctp => "sctp",
        }
    }

    /// How messages are delimited on this transport: SCTP, like UDP, carries
    /// one message per datagram.
    pub fn framing(self) -> crate::sip::Framing {
        match self {
            Transport::Udp | Transport::Sctp => crate::sip::Framing::Datagram,
            Transport::Tcp | Transport::Tls => crate::sip::Framing::Stream,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the proxy's own listening sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    pub transport: Transport,
    /// The socket's address. It must be a real address (not `0.0.0.0`) unless
    /// `advertised` is set: it is what the Via says and what responses are
    /// recognised by.
    pub addr: SocketAddr,
    /// `advertised_address` / `advertised_port` (OpenSER globals): the host
    /// (name or IP; an IPv6 literal with or without brackets) and port written in
    /// our Via instead of `addr`, e.g. behind a NAT.
    pub advertised: Option<(String, u16)>,
}

impl Local {
    pub fn new(transport: Transport, addr: SocketAddr) -> Local {
        Local { transport, addr, advertised: None }
    }

    /// The sent-by our Via carries: `host:port`, an IPv6 address in brackets.
    pub fn sent_by(&self) -> String {
        self.sent_by_display().to_string()
    }

    /// [`sent_by`](Local::sent_by), written where it is formatted (no string
    /// of its own).
    pub fn sent_by_display(&self) -> impl std::fmt::Display + '_ {
        SentBy(self)
    }

    /// [`sent_by`](Local::sent_by), written into `line` (without `fmt` but
    /// for an IPv6 socket address, as `SocketAddrV6` writes it).
    pub(crate) fn push_sent_by(&self, line: &mut crate::sip::edit::Line) {
        match (&self.advertised, self.addr) {
            (Some((host, port)), _) => {
                line.push_host(host).push(b":").push_decimal(usize::from(*port));
            }
            (None, SocketAddr::V4(v4)) => {
                line.push_ip(IpAddr::V4(*v4.ip())).push(b":").push_decimal(usize::from(v4.port()));
            }
            (None, v6) => {
                // `Line` as a `fmt::Write` never fails.
                let _ = std::fmt::Write::write_fmt(line, format_args!("{v6}"));
            }
        }
    }

    /// Whether a Via with this sent-by and transport is one this socket wrote:
    /// the host is our address (compared as an address) or our advertised host
    /// (names compared case-insensitively, a trailing dot ignored), and the port
    /// (the transport's default when absent) is the one that goes with it.
    pub fn is_sent_by(&self, transport: Transport, host: &str, port: Option<u16>) -> bool {
        if transport != self.transport {
            return false;
        }
        let port = port.unwrap_or(transport.default_port());
        let ip = parse_ip(host);
        let same_host = |ours: &str| match (ip, parse_ip(ours)) {
            (Some(a), Some(b)) => a.to_canonical() == b.to_canonical(),
            (None, None) => host.trim_end_matches('.').eq_ignore_ascii_case(ours.trim_end_matches('.')),
            _ => false,
        };
        let by_addr =
            port == self.addr.port() && ip.is_some_and(|ip| ip.to_canonical() == self.addr.ip().to_canonical());
        let by_advertised = self.advertised.as_ref().is_some_and(|(h, p)| port == *p && same_host(h));
        by_addr || by_advertised
    }
}

/// Where a received message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub transport: Transport,
    /// The address the message came from.
    pub addr: SocketAddr,
    /// The local address it was received on.
    pub local: SocketAddr,
}

/// Where to send a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An address: send there.
    Addr { transport: Transport, addr: SocketAddr },
    /// A host name for the caller to resolve (RFC 3263 §4 for requests, §5 for
    /// responses). `transport: None`: the URI did not say (NAPTR decides);
    /// `port: None`: none was given (SRV decides, else the transport's default).
    Name { transport: Option<Transport>, host: String, port: Option<u16> },
}

impl Target {
    /// The transport, when known.
    pub fn transport(&self) -> Option<Transport> {
        match self {
            Target::Addr { transport, .. } => Some(*transport),
            Target::Name { transport, .. } => *transport,
        }
    }
}

/// An IP address as a host is written: `192.0.2.1`, `[2001:db8::1]` or
/// `2001:db8::1` (a Via's `received` carries IPv6 without brackets).
pub(crate) fn parse_ip(host: &str) -> Option<IpAddr> {
    let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    match inner {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => match dotted_quad(host.as_bytes()) {
            Some(v4) => Some(IpAddr::V4(v4)),
            // A host name, or IPv6 (std refuses what `dotted_quad` refuses).
            None if host.contains(':') => host.parse().ok(),
            None => None,
        },
    }
}

/// What [`parse_ip`] gives for a URI's host text, taken from the host the URI
/// parse already read where it can: a dotted quad without a leading zero in
/// an octet is its address (the URI parse accepts leading zeros, std's rule,
/// which `parse_ip` keeps, does not); anything else is parsed.
pub(crate) fn uri_ip(uri: &crate::sip::uri::Uri) -> Option<IpAddr> {
    match uri.host {
        Some(crate::sip::uri::Host::Ipv4(a)) if !has_leading_zero(uri.host_text.as_bytes()) => Some(IpAddr::V4(a)),
        _ => parse_ip(uri.host_text),
    }
}

/// Whether an octet of a dotted quad starts with `0` and has more digits.
fn has_leading_zero(quad: &[u8]) -> bool {
    quad.iter()
        .enumerate()
        .any(|(i, &b)| b == b'0' && (i == 0 || quad[i - 1] == b'.') && quad.get(i + 1).is_some_and(u8::is_ascii_digit))
}

/// An IPv4 address in dotted-quad form, accepting exactly what std's
/// `Ipv4Addr::from_str` accepts (four decimal octets of at most 255, no
/// leading zero), without its general parser: hosts are compared with our
/// addresses several times per message.
fn dotted_quad(text: &[u8]) -> Option<std::net::Ipv4Addr> {
    crate::sip::uri::ipv4(text, false)
}

/// A [`Local`]'s sent-by, as [`Local::sent_by`] writes it.
struct SentBy<'a>(&'a Local);

impl std::fmt::Display for SentBy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut line = crate::sip::edit::Line::new();
        self.0.push_sent_by(&mut line);
        line.write_to(f)
    }
}

/// Hashes `bytes` as their ASCII lower case would hash, without allocating
/// (equal under `eq_ignore_ascii_case` ⇒ equal hashes).
pub(crate) fn hash_case_folded<H: Hasher>(bytes: &[u8], h: &mut H) {
    h.write_usize(bytes.len());
    write_case_folded(bytes, h);
}

/// Writes `bytes` lower-cased, a chunk at a time (SipHash streams: as one
/// write of the lower-cased text), without their length.
pub(crate) fn write_case_folded<H: Hasher>(bytes: &[u8], h: &mut H) {
    let mut buf = [0u8; 32];
    for chunk in bytes.chunks(buf.len()) {
        let folded = &mut buf[..chunk.len()];
        folded.copy_from_slice(chunk);
        folded.make_ascii_lowercase();
        h.write(folded);
    }
}

/// `bytes` as lowercase hexadecimal digits into `out`, which is twice as long
/// (nonces, tags: written on the stack, without `format!`).
pub(crate) fn hex_to(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    debug_assert_eq!(out.len(), 2 * bytes.len());
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// Parts gathered for one `write` to a hasher: SipHash does its bookkeeping
/// per `write`, and a key hashed part by part made eight or nine of them
/// (tm's keys, the stateless branch). Equal keys have parts of equal
/// lengths, so they are packed (or found too long for the buffer, and hashed
/// part by part) alike.
pub(crate) struct Packed {
    buf: [u8; 160],
    len: usize,
}

impl Packed {
    pub(crate) fn new() -> Packed {
        Packed { buf: [0; 160], len: 0 }
    }

    /// Appends `bytes`; `None` when they do not fit.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<&mut [u8]> {
        let start = self.len;
        let room = self.buf.get_mut(start..start + bytes.len())?;
        room.copy_from_slice(bytes);
        self.len += bytes.len();
        Some(room)
    }

    /// Appends the length of `bytes` (two bytes), then `bytes`.
    pub(crate) fn push_counted(&mut self, bytes: &[u8]) -> Option<&mut [u8]> {
        let len = u16::try_from(bytes.len()).ok()?;
        self.push(&len.to_le_bytes())?;
        self.push(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A 64-bit SipHash-1-3 of what `feed` writes, with std's fixed keys: the same in
/// every thread and process of one build (unlike `RandomState`), so that all
/// workers compute the same branch and To-tag for a retransmission.
pub(crate) fn hash64(feed: impl FnOnce(&mut DefaultHasher)) -> u64 {
    let mut h = DefaultHasher::new();
    feed(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `uri_ip` is `parse_ip` of the host text, for every dotted quad of these
    /// octets (leading zeros, too many digits, too large) and other hosts.
    #[test]
    fn the_ip_of_a_uri_is_parse_ip_of_its_host() {
        let octets = ["0", "00", "01", "1", "10", "100", "255", "256", "000", "010", "0255"];
        let mut hosts: Vec<String> = Vec::new();
        for a in octets {
            for b in octets {
                for c in octets {
                    for d in ["0", "01", "9", "255", "256"] {
                        hosts.push(format!("{a}.{b}.{c}.{d}"));
                    }
                }
            }
        }
        hosts.extend(
            ["[::1]", "[2001:db8::1]", "[::ffff:192.0.2.1]", "host.example", "a1.example.", "1.2.3"].map(String::from),
        );
        let mut ips = 0;
        for host in &hosts {
            let text = format!("sip:user@{host}:5060;lr");
            let Ok(uri) = crate::sip::uri::parse(&text) else { continue };
            assert_eq!(uri_ip(&uri), parse_ip(uri.host_text), "{text}");
            ips += usize::from(uri_ip(&uri).is_some());
        }
        assert!(ips > 100, "the hosts hold addresses: {ips}");
    }

    #[test]
    fn transports() {
        for t in [Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Sctp] {
            assert_eq!(Transport::parse(t.as_str()), Some(t));
            assert_eq!(Transport::parse(&t.as_str().to_ascii_lowercase()), Some(t));
        }
        assert_eq!(Transport::parse("WS"), None);
        assert_eq!(Transport::parse("UNKNOWN"), None);
        assert_eq!((Transport::Tls.default_port(), Transport::Sctp.default_port()), (5061, 5060));
        assert!(!Transport::Udp.is_reliable() && Transport::Sctp.is_reliable());
        assert_eq!(Transport::Tcp.to_string(), "TCP");
    }

    #[test]
    fn dotted_quads_are_what_std_accepts() {
        let mut texts: Vec<String> = [
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.0",
            "1..3.4",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.1000",
            "0001.2.3.4",
            "",
            ".",
            "a.b.c.d",
            "1.2.3.4:5060",
            "::1",
            "1.2.3.٣",
            "999.999.999.999",
            "1.2.3.255",
            "1.2.3.256",
        ]
        .map(String::from)
        .to_vec();
        // Every text of up to four octets from a few dozen pieces.
        let pieces = ["0", "00", "1", "01", "9", "10", "99", "100", "199", "255", "256", "300", "0255", "", "x"];
        for a in pieces {
            for b in ["0", "25", "255", "", "07"] {
                texts.push(format!("{a}.{b}.1.{a}"));
                texts.push(format!("{b}.{a}.{a}"));
            }
        }
        // And every text of up to eight bytes of these.
        texts.extend(crate::sip::uri::every_text(b"0259.", 8).into_iter().map(|t| String::from_utf8(t).unwrap()));
        for text in texts {
            assert_eq!(dotted_quad(text.as_bytes()), text.parse::<std::net::Ipv4Addr>().ok(), "{text:?}");
            assert_eq!(parse_ip(&text), text.parse::<IpAddr>().ok(), "{text:?}");
        }
    }

    #[test]
    fn sent_by_and_ips() {
        let l = Local::new(Transport::Udp, "[2001:db8::1]:5060".parse().unwrap());
        assert_eq!(l.sent_by(), "[2001:db8::1]:5060");
        assert!(l.is_sent_by(Transport::Udp, "[2001:DB8:0::1]", None));
        assert!(!l.is_sent_by(Transport::Udp, "2001:db8::1", Some(5061)));
        let adv = Local { advertised: Some(("[2001:db8::2]".into(), 5070)), ..l };
        assert_eq!(adv.sent_by(), "[2001:db8::2]:5070");
        assert!(adv.is_sent_by(Transport::Udp, "[2001:db8::2]", Some(5070)));
        assert_eq!(parse_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("::1"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("[192.0.2.1]"), None);
        assert_eq!(parse_ip("host.example.com"), None);
    }
}
