//! The floor of `cargo xtask bench`: a UDP program that does nothing but one
//! `recv_from` and one `send_to` per datagram, with no SIP processing worth
//! the name, to show what the kernel alone costs per call or registration on
//! loopback.
//!
//! It binds 127.0.0.1:5060 (where the harness's SIPp clients send) and runs
//! two threads (Kamailio's children=2, serc's `--workers 2`) on clones of that
//! one socket. Per datagram:
//!
//! - a REGISTER is answered to where it came from: `200 OK` carrying its Via,
//!   From, To, Call-ID and CSeq lines copied as they are; with `--challenge`,
//!   a REGISTER without an `Authorization` line gets `401 Unauthorized` and a
//!   fixed `WWW-Authenticate` digest challenge instead (the registrar
//!   scenarios: SIPp checks neither tags nor nonces);
//! - anything else is relayed: from the SIPp UAS (source port 5070) to the
//!   UAC (127.0.0.1:5061), from anywhere else to the UAS (127.0.0.1:5070). The
//!   UAS answers to the address it received from, this relay, so calls
//!   complete through it (the relay scenarios, and the calls of the default
//!   config's scenario, whose UAS registers first).
//!
//! It runs until killed.

use std::net::{SocketAddr, UdpSocket};
use std::thread;

const LISTEN: &str = "127.0.0.1:5060";
const UAC: &str = "127.0.0.1:5061";
const UAS: &str = "127.0.0.1:5070";
const THREADS: usize = 2;

/// The headers an answer copies from its REGISTER (full and compact forms,
/// lower case, with the colon; a line is compared ignoring ASCII case).
const COPIED: [&[u8]; 9] = [b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:", b"cseq:"];

const CHALLENGE: &[u8] =
    b"WWW-Authenticate: Digest realm=\"bench.example\", nonce=\"00000000000000000123456789abcdef0123456789abcdef\"\r\n";

/// What one datagram gets.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// The answer in `out`, for the sender.
    Answer,
    /// Relay the datagram as it is.
    Relay,
}

/// Whether `line` starts with `name` (lower case), ignoring ASCII case.
fn named(line: &[u8], name: &[u8]) -> bool {
    line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name)
}

/// The header lines of a request, up to the empty line (continuation lines
/// are not followed: SIPp writes none).
fn header_lines(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    datagram
        .split(|&b| b == b'\n')
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
}

/// A REGISTER's answer into `out` (see the module's documentation); anything
/// else is relayed.
fn answer(datagram: &[u8], challenge: bool, out: &mut Vec<u8>) -> Verdict {
    if !datagram.starts_with(b"REGISTER ") {
        return Verdict::Relay;
    }
    let challenged = challenge && !header_lines(datagram).any(|line| named(line, b"authorization:"));
    out.clear();
    out.extend_from_slice(if challenged { b"SIP/2.0 401 Unauthorized\r\n" } else { b"SIP/2.0 200 OK\r\n" });
    for line in header_lines(datagram).filter(|line| COPIED.iter().any(|name| named(line, name))) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if challenged {
        out.extend_from_slice(CHALLENGE);
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Verdict::Answer
}

fn serve(socket: &UdpSocket, uac: SocketAddr, uas: SocketAddr, challenge: bool) -> ! {
    let mut buf = [0u8; 65_535];
    let mut out = Vec::with_capacity(1024);
    loop {
        // Errors (an ICMP unreachable reported on the socket) drop the datagram, as UDP does.
        let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
        let _ = match answer(&buf[..len], challenge, &mut out) {
            Verdict::Answer => socket.send_to(&out, from),
            Verdict::Relay => socket.send_to(&buf[..len], if from.port() == uas.port() { uac } else { uas }),
        };
    }
}

fn main() {
    let mut challenge = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--challenge" => challenge = true,
            "-h" | "--help" => {
                println!(
                    "udp-floor [--challenge]: the floor of `cargo xtask bench` on udp:{LISTEN}: REGISTERs answered \
                     200 (--challenge: 401 without Authorization), anything else relayed (from :5070 to {UAC}, \
                     else to {UAS})"
                );
                return;
            }
            other => {
                eprintln!("udp-floor: unknown argument {other:?} (udp-floor --help)");
                std::process::exit(2)
            }
        }
    }
    let uac: SocketAddr = UAC.parse().expect("a socket address");
    let uas: SocketAddr = UAS.parse().expect("a socket address");
    let socket = UdpSocket::bind(LISTEN).unwrap_or_else(|e| {
        eprintln!("udp-floor: cannot bind udp {LISTEN}: {e}");
        std::process::exit(1)
    });
    eprintln!(
        "udp-floor: listening on udp:{LISTEN}, {THREADS} threads; REGISTER answered ({}), else from :{} to {UAC}, \
         else to {UAS}",
        if challenge { "401 without credentials, then 200" } else { "200" },
        uas.port()
    );
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let socket = socket.try_clone().expect("a clone of the socket");
            thread::spawn(move || serve(&socket, uac, uas, challenge))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:bench.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n\
        From: <sip:u1@bench.example>;tag=9R1\r\n\
        To: <sip:u1@bench.example>\r\n\
        Call-ID: 1-9@127.0.0.1\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:u1@127.0.0.1:5061>\r\n\
        Content-Length: 0\r\n\r\n";

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn a_register_is_answered_with_its_transaction_headers() {
        let mut out = Vec::new();
        assert_eq!(answer(REGISTER.as_bytes(), false, &mut out), Verdict::Answer);
        assert_eq!(
            text(&out),
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n\
             From: <sip:u1@bench.example>;tag=9R1\r\n\
             To: <sip:u1@bench.example>\r\n\
             Call-ID: 1-9@127.0.0.1\r\n\
             CSeq: 1 REGISTER\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn with_challenge_credentials_decide_between_401_and_200() {
        let mut out = Vec::new();
        assert_eq!(answer(REGISTER.as_bytes(), true, &mut out), Verdict::Answer);
        let first = text(&out);
        assert!(first.starts_with("SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP"), "{first}");
        assert!(first.contains("\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"bench.example\", nonce="));
        assert!(first.ends_with("\r\nContent-Length: 0\r\n\r\n"));

        let again = REGISTER.replace("CSeq: 1", "CSeq: 2").replace(
            "Content-Length",
            "authorization: Digest username=\"u1\", realm=\"bench.example\"\r\nContent-Length",
        );
        assert_eq!(answer(again.as_bytes(), true, &mut out), Verdict::Answer);
        let second = text(&out);
        assert!(second.starts_with("SIP/2.0 200 OK\r\n") && second.contains("CSeq: 2 REGISTER\r\n"), "{second}");
        assert!(!second.contains("WWW-Authenticate") && !second.contains("Digest"));
    }

    #[test]
    fn compact_headers_are_copied_and_the_body_is_not_read() {
        let mut out = Vec::new();
        let compact = "REGISTER sip:a SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bKx\ni: c1\nX: y\n\nVia: body\n";
        assert_eq!(answer(compact.as_bytes(), false, &mut out), Verdict::Answer);
        assert_eq!(
            text(&out),
            "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\ni: c1\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn everything_else_is_relayed() {
        let mut out = Vec::new();
        for datagram in
            ["INVITE sip:service@127.0.0.1 SIP/2.0\r\n\r\n", "SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\n\r\n", ""]
        {
            assert_eq!(answer(datagram.as_bytes(), true, &mut out), Verdict::Relay, "{datagram:?}");
        }
    }
}
