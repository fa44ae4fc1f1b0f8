//! Transaction identification (RFC 3261 §17.1.3, §17.2.3): the keys of the
//! table's indexes, read from parsed messages.
//!
//! A key borrows the message it is read from, so a lookup allocates nothing,
//! and a transaction does not keep its key: the table reads it again from the
//! request the transaction keeps (the request received for a server
//! transaction, the request sent for a client one) when it compares. An
//! INVITE answered with a 2xx keeps only a copy of its key ([`KeptKey`])
//! for the 32 s of RFC 6026's Accepted state, in which nothing else of its
//! request is read.

use std::hash::{Hash, Hasher};

use crate::proxy::{hash_case_folded, Packed, Transport, BRANCH_COOKIE};
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
    is_rfc3261_branch(b).then_some(b)
}

/// The magic cookie and something after it.
fn is_rfc3261_branch(branch: &[u8]) -> bool {
    branch.len() > BRANCH_COOKIE.len() && branch.starts_with(BRANCH_COOKIE.as_bytes())
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

impl Packed {
    fn push_method(&mut self, method: MethodKey<'_>) -> Option<()> {
        match method {
            MethodKey::Known(m) => self.push(&[1, m as u8]).map(drop),
            MethodKey::Other(name) => {
                self.push(&[2])?;
                self.push_counted(name).map(drop)
            }
        }
    }
}

impl Hash for ServerKey<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match *self {
            ServerKey::Branch { branch, host, port, method } => {
                let mut packed = Packed::new();
                let fits = (|| {
                    packed.push(&[0])?;
                    packed.push_counted(branch)?;
                    packed.push_counted(host)?.make_ascii_lowercase();
                    packed.push(&port.to_le_bytes())?;
                    packed.push_method(method)
                })();
                if fits.is_some() {
                    h.write(packed.bytes());
                    return;
                }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientKey<'a> {
    pub branch: &'a [u8],
    pub method: MethodKey<'a>,
}

impl Hash for ClientKey<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let mut packed = Packed::new();
        if packed.push_counted(self.branch).is_some() && packed.push_method(self.method).is_some() {
            h.write(packed.bytes());
        } else {
            self.branch.hash(h);
            self.method.hash(h);
        }
    }
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

/// A key that owns its bytes: what a transaction keeps of its request once
/// nothing else of it can be needed (an INVITE answered with a 2xx waits 32 s
/// in RFC 6026's Accepted state only to match retransmissions). Its strings
/// are copied into one buffer; [`as_server`](KeptKey::as_server) and
/// [`as_client`](KeptKey::as_client) give the key back as it was read.
#[derive(Debug)]
pub(crate) struct KeptKey {
    /// The key's byte strings, one after the other (see [`Shape`]).
    text: Box<[u8]>,
    /// Where each string of `text` ends.
    ends: [u32; 6],
    shape: Shape,
}

/// Which key, and its strings in `text`, in order.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A server key with an RFC 3261 branch: branch, sent-by host, method.
    Branch { port: u16, method: Method },
    /// An RFC 2543 server key: Request-URI, From tag, Call-ID, top Via,
    /// method, To tag (present or not: `to_tag`).
    Legacy { cseq: u32, method: Method, to_tag: bool },
    /// A client key: branch, method.
    Client { method: Method },
}

impl<'a> MethodKey<'a> {
    /// The method and the text an extension method keeps.
    fn split(self) -> (Method, &'a [u8]) {
        match self {
            MethodKey::Known(m) => (m, &[]),
            MethodKey::Other(text) => (Method::Other, text),
        }
    }

    fn join(method: Method, text: &'a [u8]) -> MethodKey<'a> {
        match method {
            Method::Other => MethodKey::Other(text),
            m => MethodKey::Known(m),
        }
    }
}

impl KeptKey {
    fn new(parts: &[&[u8]], shape: Shape) -> KeptKey {
        let mut text = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0; 6];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.extend_from_slice(part);
            // A message is at most 64 KiB, far below u32's range.
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        KeptKey { text: text.into_boxed_slice(), ends, shape }
    }

    fn part(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The server key of a request (as [`ServerKey::of`]`(msg, false)`),
    /// with its To tag for RFC 2543 matching.
    pub(crate) fn server(msg: &Message) -> KeptKey {
        match ServerKey::of(msg, false) {
            ServerKey::Branch { branch, host, port, method } => {
                let (method, text) = method.split();
                KeptKey::new(&[branch, host, text], Shape::Branch { port, method })
            }
            ServerKey::Legacy { ruri, from_tag, call_id, cseq, via, method } => {
                let (method, text) = method.split();
                let to_tag = msg.to_tag.map(|s| &msg.bytes()[s.range()]);
                KeptKey::new(
                    &[ruri, from_tag, call_id, via, text, to_tag.unwrap_or_default()],
                    Shape::Legacy { cseq, method, to_tag: to_tag.is_some() },
                )
            }
        }
    }

    /// The client key of a request, `None` where [`ClientKey::of`] has none.
    pub(crate) fn client(msg: &Message) -> Option<KeptKey> {
        let ClientKey { branch, method } = ClientKey::of(msg)?;
        let (method, text) = method.split();
        Some(KeptKey::new(&[branch, text], Shape::Client { method }))
    }

    /// A key of nothing, allocating nothing: a placeholder while a key moves.
    pub(crate) fn empty() -> KeptKey {
        KeptKey { text: Box::default(), ends: [0; 6], shape: Shape::Client { method: Method::Invite } }
    }

    /// The client key of a request we built with our Via's `branch` on top
    /// (RFC 3261: the magic cookie and more) and `method` (its text read for
    /// an extension method); `None` for a branch without the cookie.
    pub(crate) fn client_of(branch: &[u8], method: Method, method_text: &str) -> Option<KeptKey> {
        if !is_rfc3261_branch(branch) {
            return None;
        }
        let (method, text) = MethodKey::of(method, method_text).split();
        Some(KeptKey::new(&[branch, text], Shape::Client { method }))
    }

    /// The server key it keeps (`None` for a client key).
    pub(crate) fn as_server(&self) -> Option<ServerKey<'_>> {
        match self.shape {
            Shape::Branch { port, method } => Some(ServerKey::Branch {
                branch: self.part(0),
                host: self.part(1),
                port,
                method: MethodKey::join(method, self.part(2)),
            }),
            Shape::Legacy { cseq, method, .. } => Some(ServerKey::Legacy {
                ruri: self.part(0),
                from_tag: self.part(1),
                call_id: self.part(2),
                cseq,
                via: self.part(3),
                method: MethodKey::join(method, self.part(4)),
            }),
            Shape::Client { .. } => None,
        }
    }

    /// The client key it keeps (`None` for a server key).
    pub(crate) fn as_client(&self) -> Option<ClientKey<'_>> {
        match self.shape {
            Shape::Client { method } => {
                Some(ClientKey { branch: self.part(0), method: MethodKey::join(method, self.part(1)) })
            }
            _ => None,
        }
    }

    /// The To tag of the request of an RFC 2543 server key (`None` for the
    /// others, or when the request had none).
    pub(crate) fn to_tag(&self) -> Option<&[u8]> {
        match self.shape {
            Shape::Legacy { to_tag: true, .. } => Some(self.part(5)),
            _ => None,
        }
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
    fn keys_too_long_to_pack_hash_as_equal_keys_too() {
        let state = std::hash::RandomState::new();
        // Parts packed into one write up to 160 bytes, hashed one by one past it.
        for len in [1, 100, 140, 150, 160, 300] {
            let branch = format!("z9hG4bK{}", "b".repeat(len));
            let host = format!("H{}.example.com", "o".repeat(len / 2));
            let invite = request("INVITE", &format!("SIP/2.0/UDP {host};branch={branch}"));
            let ack = request("ACK", &format!("SIP/2.0/UDP {}:5060;branch={branch}", host.to_lowercase()));
            let (k, a) = (ServerKey::of(&invite, false), ServerKey::of(&ack, false));
            assert_eq!(k, a, "{len}");
            assert_eq!(state.hash_one(k), state.hash_one(a), "{len}");
            for method in ["INVITE", "FOO"] {
                let sent = request(method, &format!("SIP/2.0/UDP {host};branch={branch}"));
                let reply = parse(&format!(
                    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch={branch}\r\nFrom: <sip:a@example.com>;tag=1\r\n\
                     To: <sip:bob@example.com>;tag=2\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\nContent-Length: 0\r\n\r\n"
                ));
                let (c, r) = (ClientKey::of(&sent).expect("a branch"), ClientKey::of(&reply).expect("a branch"));
                assert_eq!(c, r, "{len} {method}");
                assert_eq!(state.hash_one(c), state.hash_one(r), "{len} {method}");
            }
        }
    }

    #[test]
    fn a_kept_key_is_the_key_it_was_read_as() {
        let state = std::hash::RandomState::new();
        let with_to_tag = |m: Message| {
            let text = String::from_utf8(m.bytes().to_vec()).expect("text");
            parse(&text.replace("To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=t9"))
        };
        let requests = [
            request("INVITE", "SIP/2.0/UDP Host.example.com:5070;branch=z9hG4bKabc"),
            request("FOO", "SIP/2.0/TCP host.example.com;branch=z9hG4bKx"),
            request("INVITE", "SIP/2.0/UDP host.example.com;branch=1"),
            request("FOO", "SIP/2.0/UDP host.example.com"),
            with_to_tag(request("BYE", "SIP/2.0/UDP host.example.com;branch=2")),
            with_to_tag(request("BYE", "SIP/2.0/UDP host.example.com;branch=z9hG4bKy")),
        ];
        for msg in &requests {
            let key = ServerKey::of(msg, false);
            let kept = KeptKey::server(msg);
            let back = kept.as_server().expect("a server key");
            assert_eq!(back, key, "{kept:?}");
            assert_eq!(state.hash_one(back), state.hash_one(key));
            assert!(kept.as_client().is_none());
            // The To tag is kept where RFC 2543 matching compares it.
            let to_tag = msg.to_tag.map(|s| &msg.bytes()[s.range()]).filter(|_| key.is_legacy());
            assert_eq!(kept.to_tag(), to_tag);

            let client = ClientKey::of(msg);
            let kept = KeptKey::client(msg);
            assert_eq!(kept.as_ref().and_then(KeptKey::as_client), client);
            assert!(kept.as_ref().is_none_or(|k| k.as_server().is_none() && k.to_tag().is_none()));
        }
        // The legacy BYE's To tag, and an extension method's name, survive.
        assert_eq!(KeptKey::server(&requests[4]).to_tag(), Some(&b"t9"[..]));
        let foo = KeptKey::client(&requests[1]).expect("a branch");
        assert_eq!(foo.as_client().map(|k| k.method), Some(MethodKey::Other(b"FOO")));
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
