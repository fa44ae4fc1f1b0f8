//! Framing SIP messages on a byte stream (RFC 3261 §18.3), sans-IO.
//!
//! Leading CRLFs are keep-alives and skipped (RFC 3261 §7.5, RFC 5626 §3.5.1);
//! a message is its head (up to and including the empty line) and then exactly
//! Content-Length bytes of body. On a stream a missing or malformed
//! Content-Length leaves no way to find the next message, so it is an error that
//! closes the connection (RFC 3261 §18.3, RFC 4475 §3.1.2.3).

use std::fmt;

/// What the bytes buffered so far hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framed {
    /// Not a whole message yet; the first `skip` bytes are keep-alive CRLFs the
    /// caller must drop before reading more.
    Partial { skip: usize },
    /// A whole message is `buf[start..end]` (`start` skips the keep-alives); the
    /// caller drops `buf[..end]` before asking again.
    Complete { start: usize, end: usize },
}

/// Why a stream cannot be framed: the connection is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// No Content-Length header in the head.
    NoContentLength,
    /// A Content-Length that is not a decimal number, or several that disagree.
    BadContentLength(String),
    /// The message (or its head so far) is larger than the limit.
    TooLarge { limit: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NoContentLength => f.write_str("no Content-Length on a stream transport"),
            FrameError::BadContentLength(value) => write!(f, "malformed Content-Length {value:?}"),
            FrameError::TooLarge { limit } => write!(f, "message larger than {limit} bytes"),
        }
    }
}

/// Finds message boundaries in a stream's buffer. It keeps how far it has
/// searched, so a head arriving in many small reads is scanned once.
#[derive(Debug)]
pub(crate) struct StreamFramer {
    max_message: usize,
    /// Bytes of the current message (after the keep-alives) already searched
    /// for the end of the head.
    scanned: usize,
    /// Once the head is read: the message's total length.
    total: Option<usize>,
}

impl StreamFramer {
    pub(crate) fn new(max_message: usize) -> StreamFramer {
        StreamFramer { max_message, scanned: 0, total: None }
    }

    /// Looks at the buffered bytes (which start where the last complete message
    /// ended, with the skipped keep-alives dropped).
    pub(crate) fn next(&mut self, buf: &[u8]) -> Result<Framed, FrameError> {
        let start = if self.scanned == 0 && self.total.is_none() {
            buf.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count()
        } else {
            0
        };
        let msg = &buf[start..];
        let total = match self.total {
            Some(total) => total,
            None => {
                let from = self.scanned.saturating_sub(3);
                let Some(head_len) = head_len(msg, from) else {
                    if msg.len() > self.max_message {
                        return Err(FrameError::TooLarge { limit: self.max_message });
                    }
                    self.scanned = msg.len();
                    return Ok(Framed::Partial { skip: start });
                };
                let body_len = content_length(&msg[..head_len])?;
                let total = head_len.checked_add(body_len).filter(|t| *t <= self.max_message);
                let total = total.ok_or(FrameError::TooLarge { limit: self.max_message })?;
                self.total = Some(total);
                total
            }
        };
        if msg.len() < total {
            // The caller drops the keep-alives; what is kept here is relative to
            // the message already.
            return Ok(Framed::Partial { skip: start });
        }
        self.scanned = 0;
        self.total = None;
        Ok(Framed::Complete { start, end: start + total })
    }
}

/// The length of the head (its empty line included), searching `msg` from
/// `from`: up to the first line end followed by an empty line, a line ending
/// in LF with or without CR before it, as the parser reads lines (OpenSER's
/// TCP reader also takes a bare LF). Looking for CRLF CRLF alone took a head
/// ended by a bare LF on to a CRLF CRLF further on, in the body or the next
/// message.
fn head_len(msg: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'\n', msg.get(at..)?) {
        let lf = at + i;
        match &msg[lf + 1..] {
            [b'\n', ..] => return Some(lf + 2),
            [b'\r', b'\n', ..] => return Some(lf + 3),
            _ => at = lf + 1,
        }
    }
    None
}

/// The Content-Length of a message head (start line, header lines, empty line):
/// `Content-Length` or its compact form `l`, case-insensitive, white space allowed
/// before the colon and around the value, folded lines joined.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut found: Option<usize> = None;
    // Skip the start line; then each header line, with its continuation lines.
    let mut pos = line_end(head, 0);
    while pos < head.len() {
        let mut end = line_end(head, pos);
        while end < head.len() && matches!(head[end], b' ' | b'\t') {
            end = line_end(head, end);
        }
        let line = &head[pos..end];
        pos = end;
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = trim(&line[colon + 1..]);
        let bad = || FrameError::BadContentLength(String::from_utf8_lossy(value).into_owned());
        if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let n: usize = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        match found {
            Some(other) if other != n => return Err(bad()),
            _ => found = Some(n),
        }
    }
    found.ok_or(FrameError::NoContentLength)
}

/// Where the line starting at `pos` ends, past its CRLF (or LF).
fn line_end(buf: &[u8], pos: usize) -> usize {
    memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i + 1)
}

fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1000;

    /// Feeds `input` in pieces of `step` bytes, like a stream, and returns the
    /// messages framed (or the error).
    fn frame(input: &[u8], step: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut framer = StreamFramer::new(MAX);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            loop {
                match framer.next(&buf)? {
                    Framed::Partial { skip } => {
                        buf.drain(..skip);
                        break;
                    }
                    Framed::Complete { start, end } => {
                        out.push(buf[start..end].to_vec());
                        buf.drain(..end);
                    }
                }
            }
        }
        assert!(buf.is_empty(), "bytes left over: {buf:?}");
        Ok(out)
    }

    const A: &[u8] = b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nContent-Length: 0\r\n\r\n";
    const B: &[u8] = b"MESSAGE sip:b SIP/2.0\r\nl : 5\r\nVia: x\r\n\r\nhello";

    #[test]
    fn whole_messages_in_any_pieces() {
        let mut input = b"\r\n\r\n".to_vec();
        input.extend_from_slice(A);
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(B);
        input.extend_from_slice(A);
        for step in [1, 2, 3, 5, 7, 64, input.len()] {
            let got = frame(&input, step).unwrap();
            assert_eq!(got, vec![A.to_vec(), B.to_vec(), A.to_vec()], "step {step}");
        }
    }

    #[test]
    fn a_head_may_end_with_bare_line_feeds() {
        // Each head ends at its first empty line however its lines end; the
        // bodies hold CRLF CRLF, which is not where the heads end.
        let lf = b"OPTIONS sip:a SIP/2.0\nVia: SIP/2.0/TCP h\nContent-Length: 4\n\nab\r\n".to_vec();
        let mixed = b"OPTIONS sip:b SIP/2.0\r\nContent-Length: 6\r\n\nx\r\n\r\ny".to_vec();
        let cr_lf_after_lf = b"OPTIONS sip:c SIP/2.0\nl: 0\n\r\n".to_vec();
        let input = [lf.clone(), mixed.clone(), cr_lf_after_lf.clone(), A.to_vec()].concat();
        for step in 1..=input.len() {
            let framed = frame(&input, step).unwrap();
            assert_eq!(framed, [lf.clone(), mixed.clone(), cr_lf_after_lf.clone(), A.to_vec()], "{step}");
        }
    }

    #[test]
    fn keep_alives_alone_are_dropped() {
        let mut framer = StreamFramer::new(MAX);
        assert_eq!(framer.next(b"\r\n\r\n"), Ok(Framed::Partial { skip: 4 }));
        assert_eq!(framer.next(b""), Ok(Framed::Partial { skip: 0 }));
    }

    #[test]
    fn content_length_forms() {
        let cl = |h: &str| content_length(h.as_bytes());
        assert_eq!(cl("X\r\nContent-Length: 12\r\n\r\n"), Ok(12));
        assert_eq!(cl("X\r\ncontent-length:3\r\n\r\n"), Ok(3));
        assert_eq!(cl("X\r\nL\t:\t7 \r\n\r\n"), Ok(7));
        assert_eq!(cl("X\r\nContent-Length:\r\n  9\r\n\r\n"), Ok(9), "folded");
        assert_eq!(cl("X\r\nl: 4\r\nContent-Length: 4\r\n\r\n"), Ok(4), "repeated, same value");
        assert_eq!(cl("X\r\nContent-Type: a\r\n\r\n"), Err(FrameError::NoContentLength));
        assert_eq!(cl("Content-Length: 5\r\n\r\n"), Err(FrameError::NoContentLength), "the start line is no header");
        for bad in ["-999", "", "12a", "1 2", "99999999999", "0x10"] {
            let head = format!("X\r\nContent-Length: {bad}\r\n\r\n");
            assert!(matches!(cl(&head), Err(FrameError::BadContentLength(_))), "{bad:?}");
        }
        assert!(matches!(cl("X\r\nl: 4\r\nl: 5\r\n\r\n"), Err(FrameError::BadContentLength(_))));
    }

    #[test]
    fn limits() {
        let mut framer = StreamFramer::new(MAX);
        assert_eq!(framer.next(&[b'a'; MAX + 1]), Err(FrameError::TooLarge { limit: MAX }));
        let mut framer = StreamFramer::new(MAX);
        let head = format!("X\r\nContent-Length: {MAX}\r\n\r\n");
        assert_eq!(framer.next(head.as_bytes()), Err(FrameError::TooLarge { limit: MAX }));
        let mut framer = StreamFramer::new(MAX);
        assert!(matches!(framer.next(b"X\r\nl: -1\r\n\r\n"), Err(FrameError::BadContentLength(_))));
    }
}
