//! Transaction identification (RFC 3261 §17.1.3, §17.2.3): the keys of the
//! table's indexes, read from parsed messages.
//!
//! A key borrows the message it is read from, so a lookup allocates nothing,
//! and a transaction does not keep its key: the table reads it again from the
//! request the transaction keeps (the request received for a server
//! transaction, the request sent for a client one) when it compares.

use std::hash::{Hash, Hasher};

use crate::proxy::{hash_case_folded, Transport, BRANCH_COOKIE};
use crate::sip::{Message, Method};

/// A method as transactions compare it: known methods by variant, extension
/// methods by their (case-sensitive) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MethodKey<'a> {
    Known(Method),
    Other(&'a [u8]),
}

impl<'a> MethodKey<'a> {
    fn of(method: Method, text: &'a str) -> MethodKey<'a> {
        match method {
            Method::Other => MethodKey::Other(text.as_bytes()),
            m => MethodKey::Known(m),
        }
    }

    /// The request's method, ACK counted as INVITE (it belongs to the INVITE's
    /// transaction, §17.2.3).
    fn of_request(msg: &'a Message) -> MethodKey<'a> {
        match msg.method() {
            Some(Method::Ack) => MethodKey::Known(Method::Invite),
            Some(m) => MethodKey::of(m, msg.method_text()),
            None => MethodKey::of(msg.cseq_method, msg.method_text()),
        }
    }
}

/// The branch of the top Via when it is an RFC 3261 one: the magic cookie and
/// something after it (a bare `z9hG4bK` is treated as RFC 2543, as
/// [`stateless_branch`](crate::proxy::stateless_branch) does).
pub(crate) fn rfc3261_branch(msg: &Message) -> Option<&[u8]> {
    let b = &msg.bytes()[msg.via.branch?.range()];
    (b.len() > BRANCH_COOKIE.len() && b.starts_with(BRANCH_COOKIE.as_bytes())).then_some(b)
}

/// What a server transaction is found by.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ServerKey<'a> {
    /// RFC 3261: the top Via's branch and sent-by (host compared without
    /// case, port with the transport's default filled in), and the method.
    Branch { branch: &'a [u8], host: &'a [u8], port: u16, method: MethodKey<'a> },
    /// RFC 2543 (no magic cookie): Request-URI, From tag, Call-ID, CSeq number,
    /// the top Via as written, and the method. The To tag is compared apart
    /// (an ACK carries the tag of the response, not of the request).
    Legacy { ruri: &'a [u8], from_tag: &'a [u8], call_id: &'a [u8], cseq: u32, via: &'a [u8], method: MethodKey<'a> },
}

impl<'a> ServerKey<'a> {
    /// The key of the transaction `msg` (a request) belongs to; `as_invite`
    /// gives the key of the INVITE transaction instead (for a CANCEL).
    pub(crate) fn of(msg: &'a Message, as_invite: bool) -> ServerKey<'a> {
        let method = if as_invite { MethodKey::Known(Method::Invite) } else { MethodKey::of_request(msg) };
        let buf = &msg.bytes()[..];
        let via = &msg.via;
        match rfc3261_branch(msg) {
            Some(branch) => {
                let default_port = Transport::parse(msg.text(via.transport)).map_or(5060, Transport::default_port);
                ServerKey::Branch {
                    branch,
                    host: &buf[via.host.range()],
                    port: via.port.unwrap_or(default_port),
                    method,
                }
            }
            None => ServerKey::Legacy {
                ruri: msg.request_uri().unwrap_or("").as_bytes(),
                from_tag: msg.from_tag.map_or(&[][..], |t| &buf[t.range()]),
                call_id: &buf[msg.call_id.range()],
                cseq: msg.cseq,
                via: &buf[via.value.range()],
                method,
            },
        }
    }

    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self, ServerKey::Legacy { .. })
    }
}

impl PartialEq for ServerKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                ServerKey::Branch { branch, host, port, method },
                ServerKey::Branch { branch: b, host: h, port: p, method: m },
            ) => branch == b && port == p && method == m && host.eq_ignore_ascii_case(h),
            (
                ServerKey::Legacy { ruri, from_tag, call_id, cseq, via, method },
                ServerKey::Legacy { ruri: r, from_tag: f, call_id: c, cseq: n, via: v, method: m },
            ) => cseq == n && method == m && call_id == c && from_tag == f && ruri == r && via == v,
            _ => false,
        }
    }
}

impl Eq for ServerKey<'_> {}

impl Hash for ServerKey<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match *self {
            ServerKey::Branch { branch, host, port, method } => {
                h.write_u8(0);
                branch.hash(h);
                hash_case_folded(host, h);
                port.hash(h);
                method.hash(h);
            }
            ServerKey::Legacy { ruri, from_tag, call_id, cseq, via, method } => {
                h.write_u8(1);
                ruri.hash(h);
                from_tag.hash(h);
                call_id.hash(h);
                cseq.hash(h);
                via.hash(h);
                method.hash(h);
            }
        }
    }
}

/// What a client transaction is found by: the branch of the Via we put on top
/// of the request, and the method (the CSeq method in a response).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey<'a> {
    pub branch: &'a [u8],
    pub method: MethodKey<'a>,
}

impl<'a> ClientKey<'a> {
    /// The key of a request we send (it must carry an RFC 3261 branch), or of a
    /// response to one.
    pub(crate) fn of(msg: &'a Message) -> Option<ClientKey<'a>> {
        let branch = rfc3261_branch(msg)?;
        let method = match msg.method() {
            Some(m) => MethodKey::of(m, msg.method_text()),
            None => MethodKey::of(msg.cseq_method, msg.method_text()),
        };
        Some(ClientKey { branch, method })
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;
    use crate::sip::Framing;

    fn parse(text: &str) -> Message {
        Message::parse(bytes::Bytes::copy_from_slice(text.as_bytes()), Framing::Datagram).expect("parses")
    }

    fn request(method: &str, via: &str) -> Message {
        parse(&format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@example.com>;tag=1\r\n\
             To: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    }

    #[test]
    fn keys_equal_as_rfc_3261_compares_them_hash_equal() {
        let state = std::hash::RandomState::new();
        let invite = request("INVITE", "SIP/2.0/UDP Host.Example.COM;branch=z9hG4bKabc");
        // The sent-by host case-insensitively, the default port filled in;
        // the ACK and a CANCEL (as INVITE) find the INVITE's transaction.
        let ack = request("ACK", "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bKabc");
        let cancel = request("CANCEL", "SIP/2.0/UDP HOST.example.com;branch=z9hG4bKabc");
        let k = ServerKey::of(&invite, false);
        for (other, as_invite) in [(&ack, false), (&cancel, true)] {
            let o = ServerKey::of(other, as_invite);
            assert_eq!(k, o);
            assert_eq!(state.hash_one(k), state.hash_one(o));
        }
        // The CANCEL's own transaction is another one; so is another branch
        // (compared with case) or another port.
        assert_ne!(k, ServerKey::of(&cancel, false));
        for via in
            ["SIP/2.0/UDP host.example.com;branch=z9hG4bKABC", "SIP/2.0/UDP host.example.com:5061;branch=z9hG4bKabc"]
        {
            assert_ne!(k, ServerKey::of(&request("INVITE", via), false));
        }
        // RFC 2543: the branch without the cookie does not count.
        let legacy = request("INVITE", "SIP/2.0/UDP host.example.com;branch=1");
        let legacy_ack = request("ACK", "SIP/2.0/UDP host.example.com;branch=1");
        let (l, la) = (ServerKey::of(&legacy, false), ServerKey::of(&legacy_ack, false));
        assert!(l.is_legacy());
        assert_eq!(l, la);
        assert_eq!(state.hash_one(l), state.hash_one(la));
        assert_ne!(l, ServerKey::of(&request("INVITE", "SIP/2.0/UDP host.example.com;branch=2"), false));
    }

    #[test]
    fn a_long_host_hashes_the_same_in_any_case() {
        let state = std::hash::RandomState::new();
        let host = "a-rather-long-host-name.in-a-subdomain.of-example.com";
        let lower = request("OPTIONS", &format!("SIP/2.0/TCP {host};branch=z9hG4bKx"));
        let upper = request("OPTIONS", &format!("SIP/2.0/TCP {};branch=z9hG4bKx", host.to_ascii_uppercase()));
        let (a, b) = (ServerKey::of(&lower, false), ServerKey::of(&upper, false));
        assert_eq!(a, b);
        assert_eq!(state.hash_one(a), state.hash_one(b));
    }
}
