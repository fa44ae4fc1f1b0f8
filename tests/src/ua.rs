//! A SIP user agent client over UDP or TCP on 127.0.0.1: builds requests with
//! what RFC 3261 §8.1.1 asks (Via with a fresh branch and rport, From-tag,
//! Call-ID, CSeq, Max-Forwards, Contact), sends them to one next hop (the
//! proxy), and receives responses with a timeout.

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serc_runtime::sip::Framing;

use crate::net::read_stream_message;
use crate::sip::{Dialog, Request, Sip};

/// The transport a [`Ua`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, buf: Vec<u8> },
}

/// A unique token for branches, tags and Call-IDs: this process, the time, a counter.
pub(crate) fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{:x}{:x}{n:x}", std::process::id(), nanos)
}

/// The SDP offer of [`Ua::invite`].
pub const SDP_OFFER: &str = "v=0\r\n\
    o=serc 1 1 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    c=IN IP4 127.0.0.1\r\n\
    t=0 0\r\n\
    m=audio 49170 RTP/AVP 0\r\n\
    a=rtpmap:0 PCMU/8000\r\n";

/// A user agent client with one socket (a UDP socket, or a TCP connection to
/// its next hop), sending every request to its next hop.
pub struct Ua {
    user: String,
    transport: Transport,
    next_hop: SocketAddr,
    local: SocketAddr,
    conn: Conn,
}

impl Ua {
    /// A UA on a UDP socket of 127.0.0.1, sending to `next_hop`.
    pub fn udp(next_hop: SocketAddr) -> Ua {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
        let local = socket.local_addr().expect("local address");
        Ua { user: "alice".into(), transport: Transport::Udp, next_hop, local, conn: Conn::Udp(socket) }
    }

    /// A UA with a TCP connection to `next_hop`.
    pub fn tcp(next_hop: SocketAddr) -> Ua {
        let stream = TcpStream::connect_timeout(&next_hop, crate::TIMEOUT)
            .unwrap_or_else(|e| panic!("TCP connection to {next_hop}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let local = stream.local_addr().expect("local address");
        Ua {
            user: "alice".into(),
            transport: Transport::Tcp,
            next_hop,
            local,
            conn: Conn::Tcp { stream, buf: Vec::new() },
        }
    }

    /// A UA over `transport` to `next_hop`.
    pub fn new(transport: Transport, next_hop: SocketAddr) -> Ua {
        match transport {
            Transport::Udp => Ua::udp(next_hop),
            Transport::Tcp => Ua::tcp(next_hop),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Our Contact URI.
    pub fn contact_uri(&self) -> String {
        match self.transport {
            Transport::Udp => format!("sip:{}@{}", self.user, self.local),
            Transport::Tcp => format!("sip:{}@{};transport=tcp", self.user, self.local),
        }
    }

    /// A Via for a new client transaction.
    fn via(&self) -> String {
        format!("SIP/2.0/{} {};branch=z9hG4bK{};rport", self.transport, self.local, unique())
    }

    /// A request starting a new call: a new Call-ID, From-tag and branch, CSeq 1,
    /// To = the Request-URI without tag, Max-Forwards 70, our Contact.
    pub fn request(&self, method: &str, uri: &str) -> Request {
        Request::new(method, uri)
            .with_header("Via", &self.via())
            .with_header("Max-Forwards", "70")
            .with_header("From", &format!("<sip:{}@127.0.0.1>;tag={}", self.user, unique()))
            .with_header("To", &format!("<{uri}>"))
            .with_header("Call-ID", &format!("{}@127.0.0.1", unique()))
            .with_header("CSeq", &format!("1 {method}"))
            .with_header("Contact", &format!("<{}>", self.contact_uri()))
            .with_header("User-Agent", "serc-e2e")
    }

    /// A REGISTER to `registrar` (a URI) binding `contact` to `aor` for
    /// 600 s, with the address of record's own Call-ID (so that a second
    /// contact adds a binding): the registrar's answer.
    pub fn register(&mut self, registrar: &str, aor: &str, contact: &str, cseq: u32) -> Sip {
        let user = aor.trim_start_matches("sip:").split('@').next().unwrap_or(aor);
        let mut req = self.request("REGISTER", registrar);
        req.headers.set("To", format!("<{aor}>"));
        req.headers.set("From", format!("<{aor}>;tag=reg-{user}"));
        req.headers.set("Call-ID", format!("reg-{user}@test"));
        req.headers.set("CSeq", format!("{cseq} REGISTER"));
        req.headers.set("Contact", format!("<{contact}>;expires=600"));
        self.transaction(&req)
    }

    pub fn options(&self, uri: &str) -> Request {
        self.request("OPTIONS", uri).with_header("Accept", "application/sdp")
    }

    /// An INVITE with an SDP offer.
    pub fn invite(&self, uri: &str) -> Request {
        self.request("INVITE", uri).with_body("application/sdp", SDP_OFFER)
    }

    /// A request inside `dialog` (RFC 3261 §12.2.1.1): the next CSeq, the remote
    /// target as Request-URI, the route set as Route, a new branch.
    pub fn in_dialog(&self, dialog: &mut Dialog, method: &str) -> Request {
        dialog.cseq += 1;
        let cseq = dialog.cseq;
        self.dialog_request(dialog, method, cseq)
    }

    /// The ACK of a 2xx (RFC 3261 §13.2.2.4): in the dialog, with the INVITE's
    /// CSeq number and a new branch.
    pub fn ack(&self, dialog: &Dialog) -> Request {
        self.dialog_request(dialog, "ACK", dialog.invite_cseq)
    }

    fn dialog_request(&self, dialog: &Dialog, method: &str, cseq: u32) -> Request {
        let mut req = Request::new(method, &dialog.remote_target)
            .with_header("Via", &self.via())
            .with_header("Max-Forwards", "70");
        for route in &dialog.route_set {
            req.headers.push("Route", route.clone());
        }
        req.with_header("From", &dialog.local)
            .with_header("To", &dialog.remote)
            .with_header("Call-ID", &dialog.call_id)
            .with_header("CSeq", &format!("{cseq} {method}"))
            .with_header("Contact", &format!("<{}>", self.contact_uri()))
    }

    /// The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's
    /// Request-URI, top Via (same branch), Route, From, Call-ID and CSeq number;
    /// the response's To.
    pub fn ack_non2xx(&self, invite: &Request, response: &Sip) -> Request {
        let mut ack = Request::new("ACK", &invite.uri);
        ack.headers.push("Via", invite.headers.get("Via").expect("the INVITE has a Via"));
        ack.headers.push("Max-Forwards", "70");
        for (name, value) in invite.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Route")) {
            ack.headers.push(name, value);
        }
        ack.headers.push("From", invite.headers.get("From").expect("the INVITE has a From"));
        ack.headers.push("To", response.header("To").expect("validated on receipt"));
        ack.headers.push("Call-ID", invite.headers.get("Call-ID").expect("the INVITE has a Call-ID"));
        ack.headers.push("CSeq", format!("{} ACK", invite.cseq()));
        ack
    }

    /// The CANCEL of a pending INVITE (RFC 3261 §9.1): its Request-URI, top Via,
    /// Route, From, To, Call-ID and CSeq number.
    pub fn cancel(&self, invite: &Request) -> Request {
        let mut cancel = Request::new("CANCEL", &invite.uri);
        for name in ["Via", "Max-Forwards"] {
            cancel.headers.push(name, invite.headers.get(name).unwrap_or("70"));
        }
        for (name, value) in invite.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Route")) {
            cancel.headers.push(name, value);
        }
        for name in ["From", "To", "Call-ID"] {
            cancel.headers.push(name, invite.headers.get(name).unwrap_or_default());
        }
        cancel.headers.push("CSeq", format!("{} CANCEL", invite.cseq()));
        cancel
    }

    /// Sends a request to the next hop.
    pub fn send(&mut self, req: &Request) {
        self.send_raw(&req.to_bytes());
    }

    /// Sends bytes as they are to the next hop.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.conn {
            Conn::Udp(socket) => {
                socket.send_to(bytes, self.next_hop).unwrap_or_else(|e| panic!("send to {}: {e}", self.next_hop));
            }
            Conn::Tcp { stream, .. } => {
                stream.write_all(bytes).unwrap_or_else(|e| panic!("send to {}: {e}", self.next_hop))
            }
        }
    }

    /// The next message received within `timeout`. Panics on a message the
    /// runtime's parser refuses (with its text).
    pub fn recv(&mut self, timeout: Duration) -> Option<Sip> {
        let (bytes, framing) = match &mut self.conn {
            Conn::Udp(socket) => {
                let mut buf = vec![0u8; 65535];
                let deadline = Instant::now() + timeout;
                loop {
                    let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
                    socket.set_read_timeout(Some(left)).expect("set a read timeout");
                    match socket.recv_from(&mut buf) {
                        Ok((n, _)) => {
                            buf.truncate(n);
                            break (buf, Framing::Datagram);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return None,
                    }
                }
            }
            Conn::Tcp { stream, buf } => (read_stream_message(stream, buf, timeout)?, Framing::Stream),
        };
        match Sip::parse(&bytes, framing) {
            Ok(sip) => Some(sip),
            Err(why) => panic!("received a message the parser refuses ({why}):\n{}", String::from_utf8_lossy(&bytes)),
        }
    }

    /// The next response to `req` (same branch, Call-ID and CSeq), skipping
    /// anything else received meanwhile; `None` after `timeout`.
    pub fn response_to(&mut self, req: &Request, timeout: Duration) -> Option<Sip> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let msg = self.recv(left)?;
            if matches_request(&msg, req) {
                return Some(msg);
            }
            eprintln!("serc-e2e ua: skipped (not a response to {} {}):\n{msg}", req.method, req.uri);
        }
    }

    /// The next response to `req`; panics after [`crate::TIMEOUT`].
    pub fn expect_response(&mut self, req: &Request) -> Sip {
        self.response_to(req, crate::TIMEOUT).unwrap_or_else(|| {
            panic!("no response to {} {} within {:?} over {}", req.method, req.uri, crate::TIMEOUT, self.transport)
        })
    }

    /// The final response to `req`, after the provisional ones (returned too).
    pub fn expect_final(&mut self, req: &Request) -> (Vec<Sip>, Sip) {
        let mut provisional = Vec::new();
        loop {
            let response = self.expect_response(req);
            if response.status().is_some_and(|s| s >= 200) {
                return (provisional, response);
            }
            provisional.push(response);
        }
    }

    /// Sends `req` and returns its final response (provisional ones skipped).
    pub fn transaction(&mut self, req: &Request) -> Sip {
        self.send(req);
        self.expect_final(req).1
    }

    /// Asserts that nothing arrives for `wait`.
    pub fn expect_nothing(&mut self, wait: Duration) {
        if let Some(msg) = self.recv(wait) {
            panic!("expected nothing, received:\n{msg}");
        }
    }
}

/// Whether `msg` is a response to `req`: its top Via's branch, Call-ID and CSeq.
fn matches_request(msg: &Sip, req: &Request) -> bool {
    let cseq = format!("{} {}", msg.cseq(), msg.method());
    let req_cseq = req.headers.get("CSeq").map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "));
    !msg.is_request()
        && msg.branch() == req.branch()
        && Some(msg.call_id()) == req.headers.get("Call-ID")
        && Some(cseq) == req_cseq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_what_rfc_3261_asks() {
        let ua = Ua::udp("127.0.0.1:5060".parse().unwrap());
        let invite = ua.invite("sip:bob@127.0.0.1:6000");
        let text = String::from_utf8(invite.to_bytes()).unwrap();
        let sip = Sip::parse(text.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(sip.request_uri(), Some("sip:bob@127.0.0.1:6000"));
        assert!(sip.branch().unwrap().starts_with("z9hG4bK"));
        assert!(sip.from_tag().is_some() && sip.to_tag().is_none());
        assert_eq!(sip.max_forwards(), Some(70));
        assert_eq!(sip.body(), SDP_OFFER.as_bytes());
        assert_ne!(ua.invite("sip:x@h").branch(), invite.branch());

        let cancel = ua.cancel(&invite);
        assert_eq!(cancel.branch(), invite.branch());
        assert_eq!(cancel.headers.get("CSeq"), Some("1 CANCEL"));
    }

    #[test]
    fn in_dialog_requests_follow_the_route_set() {
        let ua = Ua::udp("127.0.0.1:5060".parse().unwrap());
        let invite = ua.invite("sip:bob@127.0.0.1:6000");
        let ok = String::from_utf8(
            Sip::parse(&invite.to_bytes(), Framing::Datagram)
                .unwrap()
                .reply(200, "OK", Some("b"))
                .with_header("Record-Route", "<sip:127.0.0.1:5060;lr>")
                .with_header("Contact", "<sip:bob@127.0.0.1:6000>")
                .to_bytes(),
        )
        .unwrap();
        let ok = Sip::parse(ok.as_bytes(), Framing::Datagram).unwrap();
        let mut dialog = Dialog::from_uac(&invite, &ok);
        let ack = ua.ack(&dialog);
        assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
        assert_eq!(ack.headers.get("Route"), Some("<sip:127.0.0.1:5060;lr>"));
        assert_eq!(ack.uri, "sip:bob@127.0.0.1:6000");
        let bye = ua.in_dialog(&mut dialog, "BYE");
        assert_eq!(bye.headers.get("CSeq"), Some("2 BYE"));
        assert!(bye.headers.get("To").unwrap().ends_with(";tag=b"));
        assert!(matches_request(&ok, &invite));
        assert!(!matches_request(&ok, &bye));
    }
}
