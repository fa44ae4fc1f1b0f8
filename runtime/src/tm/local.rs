//! Requests a client transaction builds itself: the ACK of a non-2xx final
//! response (RFC 3261 §17.1.1.3) and a CANCEL (§9.1).

use bytes::{BufMut, Bytes, BytesMut};

use crate::sip::{Header, HeaderName, Message};

fn header_line(out: &mut BytesMut, msg: &Message, h: &Header) {
    out.put_slice(&msg.bytes()[h.name_span.range()]);
    out.put_slice(b": ");
    out.put_slice(&msg.bytes()[h.value.range()]);
    out.put_slice(b"\r\n");
}

/// `method` with the Request-URI, top Via, Route set, From, Call-ID and CSeq
/// number of `req`, the To of `to_from` (the response, for an ACK; the request
/// itself, for a CANCEL), its Max-Forwards (70 when it had none) and no body.
fn build(req: &Message, method: &str, to_from: &Message) -> Bytes {
    let mut out = BytesMut::with_capacity(req.body.start as usize + 64);
    out.put_slice(method.as_bytes());
    out.put_u8(b' ');
    out.put_slice(req.request_uri().unwrap_or("").as_bytes());
    out.put_slice(b" SIP/2.0\r\nVia: ");
    out.put_slice(&req.bytes()[req.via.value.range()]);
    out.put_slice(b"\r\n");
    for h in req.headers_named(HeaderName::Route) {
        header_line(&mut out, req, h);
    }
    for (m, name) in [(req, HeaderName::From), (to_from, HeaderName::To), (req, HeaderName::CallId)] {
        if let Some(h) = m.header(name) {
            header_line(&mut out, m, h);
        }
    }
    let max_forwards = req.max_forwards.unwrap_or(70);
    out.put_slice(
        format!("CSeq: {} {method}\r\nMax-Forwards: {max_forwards}\r\nContent-Length: 0\r\n\r\n", req.cseq).as_bytes(),
    );
    out.freeze()
}

/// The ACK of a non-2xx final `response` to the INVITE `req` (§17.1.1.3): sent
/// hop by hop, to where the INVITE went, with the INVITE's branch.
pub(crate) fn ack(req: &Message, response: &Message) -> Bytes {
    build(req, "ACK", response)
}

/// A CANCEL of `req` (§9.1): same Request-URI, Call-ID, From, To, CSeq number,
/// top Via (so its branch) and Route set.
pub(crate) fn cancel(req: &Message) -> Bytes {
    build(req, "CANCEL", req)
}
