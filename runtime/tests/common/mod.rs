//! What the transaction tests (tm_proxy.rs, tm_failure.rs) share: a UAS's
//! answer to a request, receiving with a deadline, reading a message's parts.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use serc_runtime::sip::{Framing, HeaderName, Message, StartLine};
use tokio::net::UdpSocket;

/// The response of a UAS to `req`: its Via lines, From, Call-ID, CSeq, and
/// To with the tag `uas1`.
pub fn answer(req: &Message, code: u16, reason: &str) -> String {
    let raw = String::from_utf8_lossy(req.bytes()).to_string();
    let keep = |l: &&str| ["Via:", "From:", "Call-ID:", "CSeq:"].iter().any(|p| l.starts_with(p));
    let lines: String = raw.split("\r\n").filter(keep).map(|l| format!("{l}\r\n")).collect();
    format!(
        "SIP/2.0 {code} {reason}\r\n{lines}To: Bob <sip:bob@biloxi.example.com>;tag=uas1\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The next datagram on `sock` within `wait`, parsed.
pub async fn recv_within(sock: &UdpSocket, wait: Duration) -> Option<Message> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await.ok()?.unwrap();
    Some(Message::parse(Bytes::copy_from_slice(&buf[..n]), Framing::Datagram).expect("it parses"))
}

/// The text of the top Via value.
pub fn top_via(msg: &Message) -> String {
    msg.values(HeaderName::Via).next().map(|v| msg.text(v).to_string()).unwrap()
}

/// A response's reason phrase (`""` for a request).
pub fn reason(msg: &Message) -> &str {
    match msg.start {
        StartLine::Response { reason, .. } => msg.text(reason),
        StartLine::Request { .. } => "",
    }
}
