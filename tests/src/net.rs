//! Sockets: free ports and SIP's stream framing.

use std::io::{ErrorKind, Read};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A UDP port on 127.0.0.1 that was free a moment ago (bound to port 0, then
/// released). Another process may take it before it is used: callers retry on
/// bind failures.
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket.local_addr().expect("local address").port()
}

/// Whether a UDP port on 127.0.0.1 is bound by someone (SIPp, when it is ready).
pub(crate) fn udp_port_taken(port: u16) -> bool {
    matches!(UdpSocket::bind(("127.0.0.1", port)), Err(e) if e.kind() == ErrorKind::AddrInUse)
}

/// Where the message at the start of `buf` ends: after its header, the empty line,
/// and Content-Length bytes of body (`l:` is its compact form; absent is 0, as
/// on a stream). `None` while incomplete. Leading CRLFs (keep-alives) are part of
/// the returned length and are skipped by [`split_message`].
fn message_end(buf: &[u8]) -> Option<usize> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let head_len = buf[start..].windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[start..start + head_len]);
    let body_len = head
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| {
            let name = name.trim();
            name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")
        })
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let end = start + head_len + body_len;
    (buf.len() >= end).then_some(end)
}

/// Takes the first complete message out of `buf` (without leading CRLFs).
pub(crate) fn split_message(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = message_end(buf)?;
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(end);
    let msg = buf[start..end].to_vec();
    buf.drain(..end);
    Some(msg)
}

/// Reads one SIP message from a stream, keeping what follows it in `buf` for the
/// next call. `None` on timeout or when the peer closes the connection.
pub fn read_stream_message(stream: &mut TcpStream, buf: &mut Vec<u8>, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(msg) = split_message(buf) {
            return Some(msg);
        }
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        stream.set_read_timeout(Some(left)).ok()?;
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_framing_by_content_length() {
        let mut buf =
            b"\r\n\r\nSIP/2.0 200 OK\r\nl: 3\r\n\r\nabcSIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\nSIP/2.0"
                .to_vec();
        assert_eq!(split_message(&mut buf).unwrap(), b"SIP/2.0 200 OK\r\nl: 3\r\n\r\nabc");
        assert_eq!(split_message(&mut buf).unwrap(), b"SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(split_message(&mut buf), None);
        assert_eq!(buf, b"SIP/2.0");
        let mut partial = b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec();
        assert_eq!(split_message(&mut partial), None);
    }

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_udp_port();
        let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        assert!(udp_port_taken(port));
        drop(socket);
    }
}
