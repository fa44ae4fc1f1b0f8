//! A tiny UAS on a UDP socket of 127.0.0.1, answering on its own thread and
//! handing every message it receives to the test.
//!
//! It answers INVITE with 180 then 200 (SDP answer) — or only 180, or a final
//! error, as [`InviteAnswer`] says — copying the Record-Route and adding its
//! Contact; ACK is swallowed; CANCEL gets 200, and the INVITE it cancels 487;
//! every other request (BYE, OPTIONS …) gets 200. Responses go where the top Via
//! says (RFC 3261 §18.2.2 with RFC 3581's rport).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serc_runtime::sip::Framing;

use crate::sip::{Response, Sip};
use crate::ua::unique;

/// What the UAS answers to an INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteAnswer {
    /// 180 Ringing, then 200 OK with an SDP answer.
    Accept,
    /// 180 Ringing only, until a CANCEL (then 487).
    RingOnly,
    /// This final status at once (e.g. 486).
    Reject(u16),
}

/// The SDP answer of the 200.
pub const SDP_ANSWER: &str = "v=0\r\n\
    o=uas 1 1 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    c=IN IP4 127.0.0.1\r\n\
    t=0 0\r\n\
    m=audio 49172 RTP/AVP 0\r\n\
    a=rtpmap:0 PCMU/8000\r\n";

/// The running UAS; stopped on drop.
pub struct Uas {
    addr: SocketAddr,
    received: Receiver<Result<Sip, String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Uas {
    /// A UAS that accepts INVITEs.
    pub fn start() -> Uas {
        Uas::start_with(InviteAnswer::Accept)
    }

    pub fn start_with(answer: InviteAnswer) -> Uas {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("set a read timeout");
        let addr = socket.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, received) = mpsc::channel();
        let server = Server { socket, addr, answer, pending: HashMap::new(), tx };
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || server.run(&stop))
        };
        Uas { addr, received, stop, thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `sip:USER@IP:PORT`: a Request-URI the proxy forwards to this UAS.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    /// The next message received within `timeout` (already answered). Panics on
    /// a message the runtime's parser refuses.
    pub fn next_message(&self, timeout: Duration) -> Option<Sip> {
        match self.received.recv_timeout(timeout) {
            Ok(Ok(sip)) => Some(sip),
            Ok(Err(refused)) => panic!("the UAS received a message the parser refuses: {refused}"),
            Err(_) => None,
        }
    }

    /// The next request received: it must be a `method` and come within
    /// [`crate::TIMEOUT`].
    pub fn expect_request(&self, method: &str) -> Sip {
        let sip = self
            .next_message(crate::TIMEOUT)
            .unwrap_or_else(|| panic!("the UAS received no {method} within {:?}", crate::TIMEOUT));
        assert!(sip.is_request() && sip.method() == method, "the UAS expected a {method}, received:\n{sip}");
        sip
    }

    /// Asserts that nothing arrives for `wait`.
    pub fn expect_nothing(&self, wait: Duration) {
        if let Some(sip) = self.next_message(wait) {
            panic!("the UAS expected nothing, received:\n{sip}");
        }
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a response to `req` goes: the top Via's `received` (else its host) and
/// `rport` value (else its port, else 5060); the source when the host is a name.
fn response_destination(req: &Sip, source: SocketAddr) -> SocketAddr {
    let msg = req.message();
    let via = &msg.via;
    let host = via.received.unwrap_or(via.host);
    let host = msg.text(host).trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = host.parse::<IpAddr>() else { return source };
    let port = match via.rport {
        Some(Some(rport)) => msg.text(rport).parse().ok(),
        _ => None,
    }
    .or(via.port)
    .unwrap_or(5060);
    SocketAddr::new(ip, port)
}

struct Server {
    socket: UdpSocket,
    addr: SocketAddr,
    answer: InviteAnswer,
    /// INVITEs answered 180 only, by Call-ID, and their To-tag.
    pending: HashMap<String, (Sip, String)>,
    tx: Sender<Result<Sip, String>>,
}

impl Server {
    fn run(mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65535];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, source)) = self.socket.recv_from(&mut buf) else { continue };
            match Sip::parse(&buf[..n], Framing::Datagram) {
                Ok(sip) => {
                    if sip.is_request() {
                        self.answer(&sip, source);
                    }
                    let _ = self.tx.send(Ok(sip));
                }
                Err(why) => {
                    let _ = self.tx.send(Err(format!("{why}:\n{}", String::from_utf8_lossy(&buf[..n]))));
                }
            }
        }
    }

    fn send(&self, req: &Sip, source: SocketAddr, response: &Response) {
        let _ = self.socket.send_to(&response.to_bytes(), response_destination(req, source));
    }

    fn contact(&self) -> String {
        format!("<sip:uas@{}>", self.addr)
    }

    fn answer(&mut self, req: &Sip, source: SocketAddr) {
        match req.method() {
            "ACK" => {}
            "INVITE" => {
                let tag = unique();
                if let InviteAnswer::Reject(status) = self.answer {
                    self.send(req, source, &req.reply(status, "Rejected", Some(&tag)));
                    return;
                }
                let ringing = req.reply(180, "Ringing", Some(&tag)).with_header("Contact", &self.contact());
                self.send(req, source, &ringing);
                if self.answer == InviteAnswer::RingOnly {
                    self.pending.insert(req.call_id().to_string(), (req.clone(), tag));
                    return;
                }
                let ok = req
                    .reply(200, "OK", Some(&tag))
                    .with_header("Contact", &self.contact())
                    .with_body("application/sdp", SDP_ANSWER);
                self.send(req, source, &ok);
            }
            "CANCEL" => {
                self.send(req, source, &req.reply(200, "OK", Some(&unique())));
                if let Some((invite, tag)) = self.pending.remove(req.call_id()) {
                    self.send(&invite, source, &invite.reply(487, "Request Terminated", Some(&tag)));
                }
            }
            _ => {
                let ok = req.reply(200, "OK", Some(&unique())).with_header("Contact", &self.contact());
                self.send(req, source, &ok);
            }
        }
    }
}
