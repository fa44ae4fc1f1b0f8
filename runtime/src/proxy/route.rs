//! Where messages go: the next hop of a request, and the way back of a response.

use std::net::{IpAddr, SocketAddr};

use super::{parse_ip, Local, Source, Target, Transport};
use crate::sip::uri::{self, Host, Scheme};
use crate::sip::values::{split_list, Via};
use crate::sip::{Edits, HeaderName, Message};

/// Addresses nothing is sent to: unspecified (`0.0.0.0`, `::`) and the limited
/// broadcast `255.255.255.255` (RFC 4475 §3.3.10: a response must not be sent to
/// a broadcast address). A subnet's directed broadcast cannot be told from a host
/// without its netmask: the socket layer refuses it (no `SO_BROADCAST`).
fn check_addr(ip: IpAddr) -> Result<IpAddr, &'static str> {
    let ip = ip.to_canonical();
    match ip {
        IpAddr::V4(v4) if v4.is_broadcast() => Err("a broadcast address"),
        _ if ip.is_unspecified() => Err("an unspecified address (0.0.0.0 or ::)"),
        _ => Ok(ip),
    }
}

fn addr(transport: Transport, ip: IpAddr, port: u16) -> Result<Target, &'static str> {
    if port == 0 {
        return Err("port 0");
    }
    Ok(Target::Addr { transport, addr: SocketAddr::new(check_addr(ip)?, port) })
}

/// A host name as a URI or Via writes it (letters, digits, `-`, `.`).
fn is_host_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The next hop of a request (RFC 3263 §4.1–4.2 up to the DNS): `uri_text` is the
/// destination URI (`$du`) when the script set one, else the Request-URI as
/// edited.
///
/// - `sip:` and `sips:` only: a `tel:` URI names no host (a script routes it to a
///   gateway by rewriting the Request-URI or setting `$du`), other schemes are
///   refused.
/// - The host is the `maddr` parameter when there is one, else the URI's host.
/// - The transport is the `transport` parameter (`udp`, `tcp`, `tls`, `sctp`;
///   others are refused). A `sips:` URI is TLS (`transport=tcp` means TLS over
///   TCP; UDP and SCTP are refused). Without a parameter, an IP address or an
///   explicit port means UDP (TLS for `sips:`), §4.1; a bare name leaves it to
///   NAPTR (`transport: None`).
/// - An IP address gives [`Target::Addr`], with the URI's port or the
///   transport's default (5060, 5061 for TLS); a name gives [`Target::Name`]
///   with the port only if the URI has one (without one, SRV applies, §4.2).
/// - Broadcast and unspecified addresses, and port 0, are refused.
pub fn next_hop(uri_text: &str) -> Result<Target, &'static str> {
    let uri = uri::parse(uri_text).map_err(|_| "a malformed URI")?;
    let sips = match uri.scheme {
        Scheme::Sip => false,
        Scheme::Sips => true,
        Scheme::Tel => return Err("a tel: URI names no host to send to"),
        Scheme::Other(_) => return Err("an unsupported URI scheme"),
    };
    let transport = match uri.transport() {
        None => None,
        Some(t) => Some(Transport::parse(t).ok_or("an unsupported transport parameter")?),
    };
    let transport = match (sips, transport) {
        (false, t) => t,
        (true, None | Some(Transport::Tcp | Transport::Tls)) => Some(Transport::Tls),
        (true, Some(Transport::Udp | Transport::Sctp)) => return Err("a sips: URI over UDP or SCTP"),
    };
    let (ip, name) = match uri.maddr() {
        Some(m) => match parse_ip(m) {
            Some(ip) => (Some(ip), None),
            None if is_host_name(m) => (None, Some(m)),
            None => return Err("a malformed maddr parameter"),
        },
        None => match uri.host {
            Some(Host::Ipv4(v4)) => (Some(IpAddr::V4(v4)), None),
            Some(Host::Ipv6(v6)) => (Some(IpAddr::V6(v6)), None),
            Some(Host::Name(n)) => (None, Some(n)),
            None => return Err("a URI without a host"),
        },
    };
    let default = if sips { Transport::Tls } else { Transport::Udp };
    match (ip, name) {
        (Some(ip), _) => {
            let t = transport.unwrap_or(default);
            addr(t, ip, uri.port.unwrap_or(t.default_port()))
        }
        (None, Some(name)) => Ok(Target::Name {
            transport: transport.or(uri.port.map(|_| default)),
            host: name.to_string(),
            port: uri.port,
        }),
        (None, None) => Err("a URI without a host"),
    }
}

/// What §18.2.2 reads in a Via to send a response.
struct Hop<'a> {
    transport: Transport,
    host: &'a str,
    port: Option<u16>,
    maddr: Option<&'a str>,
    received: Option<IpAddr>,
    /// The `rport` value.
    rport: Option<u16>,
}

/// RFC 3261 §18.2.2 and RFC 3581 §4: where a response goes by its Via.
///
/// - Unreliable transport with `maddr`: the maddr, at the sent-by port (or the
///   default port); the multicast TTL (`ttl`, 1 by default) is the sender's.
/// - Otherwise `received` if present, else the sent-by host; at the `rport`
///   value if present, else the sent-by port, else the default port.
/// - A sent-by name (no `received`) is for the caller to resolve (RFC 3263 §5:
///   no port means SRV).
///
/// For a reliable transport §18.2.2 first wants the connection the request came
/// on, while it is open: a stateless proxy knows it only by its address, which
/// this is when the Via has `received` and `rport`; otherwise it is where
/// §18.2.2 says to open a new connection.
fn hop_destination(hop: &Hop<'_>) -> Result<Target, &'static str> {
    let t = hop.transport;
    let sent_by_port = hop.port.unwrap_or(t.default_port());
    if let (false, Some(maddr)) = (t.is_reliable(), hop.maddr) {
        return match parse_ip(maddr) {
            Some(ip) => addr(t, ip, sent_by_port),
            None if is_host_name(maddr) => {
                Ok(Target::Name { transport: Some(t), host: maddr.to_string(), port: Some(sent_by_port) })
            }
            None => Err("a malformed maddr parameter in the Via"),
        };
    }
    let port = hop.rport.unwrap_or(sent_by_port);
    if let Some(ip) = hop.received {
        return addr(t, ip, port);
    }
    match parse_ip(hop.host) {
        Some(ip) => addr(t, ip, port),
        None => Ok(Target::Name { transport: Some(t), host: hop.host.to_string(), port: hop.rport.or(hop.port) }),
    }
}

/// The parts of a parsed Via that [`hop_destination`] reads.
fn hop_of<'m>(msg: &'m Message, via: &Via) -> Result<Hop<'m>, &'static str> {
    let transport = Transport::parse(msg.text(via.transport)).ok_or("an unsupported transport in the Via")?;
    let received = match via.received {
        None => None,
        Some(r) => Some(parse_ip(msg.text(r)).ok_or("a malformed received parameter in the Via")?),
    };
    let rport = match via.rport {
        Some(Some(p)) => {
            Some(msg.text(p).parse::<u16>().ok().filter(|p| *p > 0).ok_or("a malformed rport parameter in the Via")?)
        }
        _ => None,
    };
    Ok(Hop {
        transport,
        host: msg.text(via.host),
        port: via.port,
        maddr: via.maddr.map(|m| msg.text(m)),
        received,
        rport,
    })
}

/// A received response (RFC 3261 §16.7 step 3, §18.2.2; RFC 3581 §4): checks that
/// the top Via is ours (its transport and sent-by match one of `ours`, see
/// [`Local::is_sent_by`]), records its removal — the value and the comma after it
/// when others follow in the same header line (`Via: ours, next`), else the whole
/// line — and returns where the response goes by the next Via: on UDP its `maddr`
/// at the sent-by port; else its `received` (or sent-by) host at its `rport`
/// value, its sent-by port or the transport's default port; a sent-by name is
/// returned as [`Target::Name`] for the caller to resolve (RFC 3263 §5).
///
/// Errors (the response is dropped; the text says why): a request; a top Via that
/// is not ours; no second Via (the response was for this element); a second Via
/// that is malformed, has a transport we do not speak, or leads to a broadcast or
/// unspecified address (RFC 4475 §3.3.10). Nothing is recorded in `edits` on
/// error.
pub fn route_response(msg: &Message, ours: &[Local], edits: &mut Edits) -> Result<Target, &'static str> {
    if msg.is_request() {
        return Err("not a response");
    }
    let top = &msg.via;
    let transport = Transport::parse(msg.text(top.transport));
    let host = msg.text(top.host);
    if !transport.is_some_and(|t| ours.iter().any(|l| l.is_sent_by(t, host, top.port))) {
        return Err("the top Via is not ours");
    }
    let buf = &msg.bytes()[..];
    let first = msg.header(HeaderName::Via).ok_or("no Via")?;
    let mut in_line = split_list(buf, first.value);
    let ours_span = in_line.next().ok_or("no Via")?;
    let next_in_line = in_line.next();
    let next = match next_in_line {
        Some(s) => Some(s),
        None => msg.headers_named(HeaderName::Via).nth(1).and_then(|h| split_list(buf, h.value).next()),
    };
    let next = next.ok_or("no second Via: the response is for this element")?;
    let next = Via::parse(buf, next).map_err(|_| "a malformed second Via")?;
    let target = hop_destination(&hop_of(msg, &next)?)?;
    match next_in_line {
        Some(s) => edits.delete(ours_span.start as usize..s.start as usize),
        None => edits.delete(first.line.range()),
    }
    Ok(target)
}

/// Where a reply to a received request goes (RFC 3261 §18.2.2, RFC 3581 §4),
/// reading the top Via as [`mark_received`](super::mark_received) leaves it:
///
/// - reliable transports: back over the connection the request came on
///   (`src.addr`);
/// - UDP with `maddr` in the Via: the maddr, at the sent-by port (or 5060);
/// - UDP with `rport` (or `force_rport`): the source address and port;
/// - UDP otherwise: the source IP (the `received` value) at the sent-by port
///   (or 5060).
///
/// Errors: a response; a broadcast or unspecified address; a malformed maddr.
pub fn reply_target(msg: &Message, src: &Source, force_rport: bool) -> Result<Target, &'static str> {
    if !msg.is_request() {
        return Err("not a request");
    }
    if src.transport.is_reliable() {
        return addr(src.transport, src.addr.ip(), src.addr.port());
    }
    let via = &msg.via;
    let has_rport = force_rport || via.rport.is_some();
    hop_destination(&Hop {
        transport: src.transport,
        host: msg.text(via.host),
        port: via.port,
        maddr: via.maddr.map(|m| msg.text(m)),
        received: Some(src.addr.ip()),
        rport: has_rport.then_some(src.addr.port()),
    })
}
