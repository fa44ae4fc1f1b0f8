//! Replies built from a request: `sl_send_reply` and the core's answer to a
//! request the parser refused.

use std::hash::Hasher;
use std::ops::Range;

use bytes::Bytes;

use super::via::{received_splices, Placement};
use super::{hash64, Source};
use crate::sip::message::Span;
use crate::sip::values::{is_token, NameAddr};
use crate::sip::{HeaderName, Message, Rejected};

/// `SIP/2.0 code reason CRLF`; CR and LF are left out of the reason phrase.
fn status_line(out: &mut Vec<u8>, code: u16, reason: &str) {
    debug_assert!((100..=699).contains(&code), "a status code is three digits, 100 to 699");
    let code = code.min(999);
    let digits = [b'0' + (code / 100) as u8, b'0' + (code / 10 % 10) as u8, b'0' + (code % 10) as u8];
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend(reason.bytes().filter(|b| !matches!(b, b'\r' | b'\n')));
    out.extend_from_slice(b"\r\n");
}

/// Copies the header line `line` of `buf` with `splices` (sorted, inside the
/// line before its line end) applied, ending it with CRLF whatever it ended with.
fn copy_line(out: &mut Vec<u8>, buf: &[u8], line: Range<usize>, splices: &[(Range<usize>, &str)]) {
    let mut end = line.end;
    if end > line.start && buf[end - 1] == b'\n' {
        end -= 1;
    }
    if end > line.start && buf[end - 1] == b'\r' {
        end -= 1;
    }
    let mut pos = line.start;
    for (range, text) in splices {
        out.extend_from_slice(&buf[pos..range.start]);
        out.extend_from_slice(text.as_bytes());
        pos = range.end;
    }
    out.extend_from_slice(&buf[pos..end]);
    out.extend_from_slice(b"\r\n");
}

/// Ends a reply: the `extra_headers` parts, one after the other (a missing
/// final CRLF added), then `Content-Length: 0` and the empty line.
fn finish(mut out: Vec<u8>, extra_headers: &[&str]) -> Bytes {
    for part in extra_headers {
        out.extend_from_slice(part.as_bytes());
    }
    if extra_headers.iter().rev().find(|p| !p.is_empty()).is_some_and(|last| !last.ends_with('\n')) {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Bytes::from(out)
}

/// The To-tag [`stateless_reply`] adds to a request without one: a hash of
/// `seed` (a per-proxy secret or constant, OpenSER's `sl` tag prefix) and what
/// identifies the request's transaction — the top Via's branch (its whole
/// value when it has none) and sent-by, the Call-ID, the From tag and the CSeq
/// number. Retransmissions get the same tag, and so does the ACK of a non-2xx
/// reply (its Via, Call-ID, From and CSeq number are the INVITE's, §17.1.1.3):
/// `ack.to_tag == stateless_to_tag(&ack, seed)` tells an ACK for one of our
/// stateless replies.
pub fn stateless_to_tag(msg: &Message, seed: &[u8]) -> String {
    TagParam::new(msg, seed).digits().to_string()
}

/// The hash [`stateless_to_tag`] writes in hexadecimal.
fn to_tag_hash(msg: &Message, seed: &[u8]) -> u64 {
    let via = &msg.via;
    let host = msg.text(via.host).as_bytes();
    hash64(|h| {
        h.write_u8(3);
        for part in [seed, msg.text(via.branch.unwrap_or(via.value)).as_bytes()] {
            h.write_usize(part.len());
            h.write(part);
        }
        // The sent-by host compares without case.
        super::hash_case_folded(host, h);
        for part in [msg.text(msg.call_id).as_bytes(), msg.from_tag.map_or("", |t| msg.text(t)).as_bytes()] {
            h.write_usize(part.len());
            h.write(part);
        }
        h.write_u32(u32::from(via.port.unwrap_or(0)));
        h.write_u32(msg.cseq);
    })
}

/// `;tag=` and the 16 hexadecimal digits of [`stateless_to_tag`], on the stack.
struct TagParam([u8; 21]);

impl TagParam {
    fn new(msg: &Message, seed: &[u8]) -> TagParam {
        let mut b = *b";tag=0000000000000000";
        super::hex_to(&mut b[5..], &to_tag_hash(msg, seed).to_be_bytes());
        TagParam(b)
    }

    fn as_str(&self) -> &str {
        // ASCII only: `;tag=` and hexadecimal digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The tag itself, without `;tag=`.
    fn digits(&self) -> &str {
        &self.as_str()[5..]
    }
}

/// The stateless reply to a request (RFC 3261 §8.2.6; OpenSER's `sl_send_reply`,
/// and the core's replies): `SIP/2.0 code reason`, then, in the request's order,
///
/// - every Via line, the top one with `received` / `rport` as
///   [`mark_received`](super::mark_received) writes them for `src` and
///   `force_rport` (§18.2.1: the server transport adds them on receipt);
/// - From, Call-ID and CSeq as received;
/// - To as received, with `;tag=` [`stateless_to_tag`] added when the request had
///   no tag and `code > 100` (§8.2.6.2);
/// - Record-Route for `101..=299` (§12.1.1: a reply that may create a dialog);
/// - Timestamp for a 100 (§8.2.6.1);
///
/// then the `extra_headers` parts, one after the other (complete header lines,
/// e.g. `["Server: serc\r\n"]`; a missing final CRLF is added) and `Content-Length: 0`.
/// Header lines are copied whole (names as written, folding kept) and end in
/// CRLF. `msg` is a request; `code` is 100..=699 (the checker validates reply
/// codes); CR and LF are removed from `reason`. Where the reply goes:
/// [`reply_target`](super::reply_target).
pub fn stateless_reply(
    msg: &Message,
    code: u16,
    reason: &str,
    to_tag_seed: &[u8],
    extra_headers: &[&str],
    src: &Source,
    force_rport: bool,
) -> Bytes {
    debug_assert!(msg.is_request(), "a reply answers a request");
    let buf = &msg.bytes()[..];
    let received = received_splices(msg, src, force_rport, Placement::Reply);
    let tag = (code > 100 && msg.to_tag.is_none()).then(|| TagParam::new(msg, to_tag_seed));
    let extra_len: usize = extra_headers.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(buf.len().min(2048) + extra_len + 128);
    status_line(&mut out, code, reason);
    let top_via = msg.via.value.range();
    for h in &msg.headers {
        let copy = match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq => true,
            HeaderName::RecordRoute => (101..=299).contains(&code),
            HeaderName::Other => code == 100 && msg.text(h.name_span).eq_ignore_ascii_case("Timestamp"),
            _ => false,
        };
        if !copy {
            continue;
        }
        let line = h.line.range();
        if h.name == HeaderName::Via && line.start <= top_via.start && top_via.end <= line.end {
            let splices: Vec<(Range<usize>, &str)> = received.iter().map(|(r, t)| (r.clone(), t.as_str())).collect();
            copy_line(&mut out, buf, line, &splices);
        } else if let (HeaderName::To, Some(tag)) = (h.name, &tag) {
            let end = h.value.end as usize;
            copy_line(&mut out, buf, line, &[(end..end, tag.as_str())]);
        } else {
            copy_line(&mut out, buf, line, &[]);
        }
    }
    finish(out, extra_headers)
}

/// The answer to a request the parser refused ([`Rejected`] with a status: 400,
/// 505, 501), from the raw bytes it was given: `SIP/2.0 status reason`, the Via,
/// From, To, Call-ID and CSeq lines of `rejected.reply_headers` copied as they
/// are (§8.2.6.2: they must equal the request's), and `Content-Length: 0`.
/// `None` when the parser says to drop the message (no status).
///
/// - Lines are copied in the request's order, each once (the parser may list a
///   line twice, or a folded one also cut at its first line end: the longest
///   span at each start is kept); every Via line is kept, but only the first
///   From, To, Call-ID and CSeq (a reply with two is itself invalid — RFC 4475
///   §3.3.8).
/// - A To that parses and has no tag gets one (§8.2.6.2), a hash of the copied
///   lines, the same for retransmissions.
/// - Lines are not repaired: a malformed Via, From, To or CSeq of the request is
///   echoed as it came (the sender's parser made it, and matches replies by it),
///   so such a reply does not pass our own strict parser; a missing From, To or
///   Call-ID stays missing (RFC 4475 §3.3.1 still asks for the 400).
/// - No `received`/`rport`: the caller sends the reply to the source address.
pub fn rejection_reply(raw: &[u8], rejected: &Rejected) -> Option<Bytes> {
    let status = rejected.status?;
    let mut spans: Vec<Span> =
        rejected.reply_headers.iter().copied().filter(|s| s.start < s.end && s.end as usize <= raw.len()).collect();
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    spans.dedup_by_key(|s| s.start);
    let mut single_seen = [false; 4];
    let mut lines: Vec<(HeaderName, Range<usize>)> = Vec::with_capacity(spans.len());
    let mut covered = 0;
    for s in spans {
        let line = s.range();
        if line.start < covered {
            continue; // inside a line already taken
        }
        let name_end = raw[line.clone()].iter().position(|&b| !is_token(b)).map_or(line.end, |i| line.start + i);
        let name = HeaderName::parse(&raw[line.start..name_end]);
        let slot = match name {
            HeaderName::Via => None,
            HeaderName::From => Some(0),
            HeaderName::To => Some(1),
            HeaderName::CallId => Some(2),
            HeaderName::CSeq => Some(3),
            _ => continue,
        };
        if let Some(k) = slot {
            if std::mem::replace(&mut single_seen[k], true) {
                continue;
            }
        }
        covered = line.end;
        lines.push((name, line));
    }
    let tag = hash64(|h| {
        h.write_u8(4);
        for (_, line) in &lines {
            h.write_usize(line.len());
            h.write(&raw[line.clone()]);
        }
    });
    let tag = format!(";tag={tag:016x}");
    let mut out = Vec::with_capacity(lines.iter().map(|(_, l)| l.len() + 2).sum::<usize>() + tag.len() + 64);
    status_line(&mut out, status, rejected.reason);
    for (name, line) in lines {
        let mut splices: Vec<(Range<usize>, &str)> = Vec::new();
        if name == HeaderName::To {
            if let Some(end) = untagged_to_value_end(raw, line.clone()) {
                splices.push((end..end, tag.as_str()));
            }
        }
        copy_line(&mut out, raw, line, &splices);
    }
    Some(finish(out, &[]))
}

/// Where the value of a To line ends, if the value parses as a name-addr
/// without a tag.
fn untagged_to_value_end(raw: &[u8], line: Range<usize>) -> Option<usize> {
    let colon = line.start + raw[line.clone()].iter().position(|&b| b == b':')?;
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = colon + 1 + raw[colon + 1..line.end].iter().position(|b| !ws(b))?;
    let end = line.end - raw[start..line.end].iter().rev().position(|b| !ws(b))?;
    let value = Span { start: start as u32, end: end as u32 };
    let to = NameAddr::parse(raw, value).ok()?;
    to.tag.is_none().then_some(end)
}
