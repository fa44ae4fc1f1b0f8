//! Fuzzes whole proxies, compiled with `include_cfg!`, each fed the same
//! sequence of messages from a caller, a callee and a stranger, with tm's
//! timers fired as the clock moves:
//!
//! - OpenSER 1.3's default config, as `cargo xtask bench` runs it (registrar,
//!   record-route, tm with branch, reply and failure routes, acc);
//! - examples/stateful.cfg (record-route, loose_route, uri and textops tests,
//!   t_relay with a failure route);
//! - tests/cfg/accounting_fork.cfg (a branch per registered contact: parallel
//!   forking, acc);
//! - tests/cfg/registrar_nat.cfg (Path, a received AVP, branch flags).
//!
//! Whatever comes in:
//!
//! - nothing panics (neither the route nor tm's timers);
//! - everything the proxy sends parses as a SIP message: what it forwards,
//!   what it answers, what it retransmits.
//!
//! The input is a list of frames, each ended by a NUL byte (a NUL inside a
//! SIP message is refused anyway). A frame's first byte says what it is (its
//! low 3 bits) and how many seconds pass before it (the high 5 bits, 0–31);
//! the rest is its text:
//!
//! - 0, 1, 2: a datagram from the caller (127.0.0.1:5061), the callee
//!   (127.0.0.1:5070) or a stranger (192.0.2.7:5060);
//! - 3: a stream (TCP framing) from the caller;
//! - 4: the callee's response to the last request the proxy sent it: the
//!   text's first three digits are the status code (`200` when there are
//!   none), the rest extra header lines. Its Vias, Record-Routes, From, To
//!   (with a tag), Call-ID and CSeq are the request's, so it matches the
//!   proxy's client transaction, which a mutated message rarely would;
//! - 5–7: only the clock moves (tm's timers fire).

#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::launch::Launch;
use serc_runtime::proxy::{Local, Source, Target, Transport};
use serc_runtime::script::{Config, Send};
use serc_runtime::sip::{Framing, HeaderName, Message};

const PROXY: &str = "127.0.0.1:5060";
const CALLER: &str = "127.0.0.1:5061";
const CALLEE: &str = "127.0.0.1:5070";
const STRANGER: &str = "192.0.2.7:5060";

fn source(transport: Transport, addr: &str) -> Source {
    Source { transport, addr: addr.parse().expect("an address"), local: PROXY.parse().expect("an address") }
}

/// Asserts that each message the proxy sent parses, and keeps the last
/// request it sent to the callee in `last_to_callee` (for a frame of kind 4).
fn check(sent: &[Send], last_to_callee: &mut Option<Message>) {
    let callee: SocketAddr = CALLEE.parse().expect("an address");
    for send in sent {
        let framing = match send.target {
            Target::Addr { transport: Transport::Udp, .. } => Framing::Datagram,
            _ => Framing::Stream,
        };
        let msg = match Message::parse(send.bytes.clone(), framing) {
            Ok(msg) => msg,
            // The answer to a request that did not parse copies what it could
            // of it (RFC 4475 §3.3.1: a request missing From still gets a
            // 400): it need not parse, but it is a SIP response of whole lines.
            Err(_) if is_rejection_reply(&send.bytes) => continue,
            Err(e) => panic!("the proxy sent a message that does not parse ({e:?}):\n{:?}", send.bytes),
        };
        if msg.is_request() && matches!(send.target, Target::Addr { addr, .. } if addr == callee) {
            *last_to_callee = Some(msg);
        }
    }
}

/// The answer to a request the parser refused (`400`, `501` or `505`): its
/// status line, then header lines `Name: value` (white space allowed before
/// the colon, the value as the request had it, folded or not, its line ends
/// as they came: CRLF or LF), then the empty line and no body.
fn is_rejection_reply(bytes: &[u8]) -> bool {
    let Some(head) = bytes.strip_suffix(b"\r\n\r\n") else { return false };
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines.next().unwrap_or_default();
    let header = |line: &[u8]| {
        let name = line.iter().take_while(|b| b.is_ascii_graphic() && **b != b':').count();
        let colon = line[name..].iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b':');
        (name > 0 && colon) || line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
    };
    [&b"SIP/2.0 400 "[..], b"SIP/2.0 501 ", b"SIP/2.0 505 "].iter().any(|s| status.starts_with(s)) && lines.all(header)
}

/// The callee's response to `req`: `text` starts with the status code (else
/// 200), the rest is extra header lines.
fn response_to(req: &Message, text: &[u8]) -> Bytes {
    let digits = text.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
    let (code, extra) = if digits == 3 { (&text[..3], &text[3..]) } else { (&b"200"[..], text) };
    let mut out = Vec::with_capacity(req.bytes().len() + extra.len() + 64);
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(code);
    out.extend_from_slice(b" Fuzz\r\n");
    for h in &req.headers {
        let keep = matches!(
            h.name,
            HeaderName::Via | HeaderName::RecordRoute | HeaderName::From | HeaderName::CallId | HeaderName::CSeq
        );
        let line = &req.bytes()[h.line.range()];
        if keep {
            out.extend_from_slice(line);
        } else if h.name == HeaderName::To {
            let line = line.strip_suffix(b"\r\n").unwrap_or(line);
            out.extend_from_slice(line);
            if req.to_tag.is_none() {
                out.extend_from_slice(b";tag=callee");
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(extra);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Bytes::from(out)
}

/// A proxy of `launch` listening on [`PROXY`] (UDP).
fn proxy<S: Script>(launch: Launch<S>) -> Proxy<S> {
    let local: SocketAddr = PROXY.parse().expect("an address");
    Proxy::new(launch.script, Config { locals: vec![Local::new(Transport::Udp, local)], ..launch.settings.config })
}

/// Feeds `data`'s frames to `proxy`.
fn run<S: Script>(proxy: &Proxy<S>, data: &[u8]) {
    let mut now = Instant::now();
    let mut last_to_callee = None;
    for frame in data.split(|&b| b == 0) {
        let Some((&head, text)) = frame.split_first() else { continue };
        now += Duration::from_secs(u64::from(head >> 3));
        check(&proxy.tm_timeout(now), &mut last_to_callee);
        let (bytes, src, framing) = match head & 7 {
            0 => (Bytes::copy_from_slice(text), source(Transport::Udp, CALLER), Framing::Datagram),
            1 => (Bytes::copy_from_slice(text), source(Transport::Udp, CALLEE), Framing::Datagram),
            2 => (Bytes::copy_from_slice(text), source(Transport::Udp, STRANGER), Framing::Datagram),
            3 => (Bytes::copy_from_slice(text), source(Transport::Tcp, CALLER), Framing::Stream),
            4 => match &last_to_callee {
                Some(req) => (response_to(req, text), source(Transport::Udp, CALLEE), Framing::Datagram),
                None => continue,
            },
            _ => continue,
        };
        check(&proxy.route_at(now, bytes, src, framing), &mut last_to_callee);
    }
}

fuzz_target!(|data: &[u8]| {
    run(&proxy(serc_macros::include_cfg!("../bench/configs/openser-openser-default.cfg")), data);
    run(&proxy(serc_macros::include_cfg!("../examples/stateful.cfg")), data);
    run(&proxy(serc_macros::include_cfg!("../tests/cfg/accounting_fork.cfg")), data);
    run(&proxy(serc_macros::include_cfg!("../tests/cfg/registrar_nat.cfg")), data);
});
