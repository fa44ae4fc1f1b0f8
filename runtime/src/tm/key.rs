//! Transaction identification (RFC 3261 §17.1.3, §17.2.3): the keys of the
//! table's indexes, read from parsed messages.

use std::hash::Hasher;

use crate::proxy::{Transport, BRANCH_COOKIE};
use crate::sip::{Message, Method};

/// A method as transactions compare it: known methods by variant, extension
/// methods by their (case-sensitive) name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MethodKey {
    Known(Method),
    Other(Box<[u8]>),
}

impl MethodKey {
    fn of(method: Method, text: &str) -> MethodKey {
        match method {
            Method::Other => MethodKey::Other(text.as_bytes().into()),
            m => MethodKey::Known(m),
        }
    }

    /// The request's method, ACK counted as INVITE (it belongs to the INVITE's
    /// transaction, §17.2.3).
    fn of_request(msg: &Message) -> MethodKey {
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261: the top Via's branch and sent-by (host case-folded, port with
    /// the transport's default filled in), and the method.
    Branch { branch: Box<[u8]>, host: Box<[u8]>, port: u16, method: MethodKey },
    /// RFC 2543 (no magic cookie): Request-URI, From tag, Call-ID, CSeq number,
    /// the top Via as written, and the method. The To tag is compared apart
    /// (an ACK carries the tag of the response, not of the request).
    Legacy { ruri: Box<[u8]>, from_tag: Box<[u8]>, call_id: Box<[u8]>, cseq: u32, via: Box<[u8]>, method: MethodKey },
}

impl ServerKey {
    /// The key of the transaction `msg` (a request) belongs to; `as_invite`
    /// gives the key of the INVITE transaction instead (for a CANCEL).
    pub(crate) fn of(msg: &Message, as_invite: bool) -> ServerKey {
        let method = if as_invite { MethodKey::Known(Method::Invite) } else { MethodKey::of_request(msg) };
        let buf = &msg.bytes()[..];
        let via = &msg.via;
        match rfc3261_branch(msg) {
            Some(branch) => {
                let default_port = Transport::parse(msg.text(via.transport)).map_or(5060, Transport::default_port);
                ServerKey::Branch {
                    branch: branch.into(),
                    host: buf[via.host.range()].to_ascii_lowercase().into(),
                    port: via.port.unwrap_or(default_port),
                    method,
                }
            }
            None => ServerKey::Legacy {
                ruri: msg.request_uri().unwrap_or("").as_bytes().into(),
                from_tag: msg.from_tag.map_or(&[][..], |t| &buf[t.range()]).into(),
                call_id: buf[msg.call_id.range()].into(),
                cseq: msg.cseq,
                via: buf[via.value.range()].into(),
                method,
            },
        }
    }

    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self, ServerKey::Legacy { .. })
    }

    /// The hash that picks the shard: the branch, or the Call-ID for RFC 2543
    /// keys, so that a CANCEL and an ACK land where their INVITE is.
    pub(crate) fn shard_hash(&self) -> u64 {
        match self {
            ServerKey::Branch { branch, .. } => shard_hash(branch),
            ServerKey::Legacy { call_id, .. } => shard_hash(call_id),
        }
    }
}

/// What a client transaction is found by: the branch of the Via we put on top
/// of the request, and the method (the CSeq method in a response).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub branch: Box<[u8]>,
    pub method: MethodKey,
}

impl ClientKey {
    /// The key of a request we send (it must carry an RFC 3261 branch), or of a
    /// response to one.
    pub(crate) fn of(msg: &Message) -> Option<ClientKey> {
        let branch = rfc3261_branch(msg)?;
        let method = match msg.method() {
            Some(m) => MethodKey::of(m, msg.method_text()),
            None => MethodKey::of(msg.cseq_method, msg.method_text()),
        };
        Some(ClientKey { branch: branch.into(), method })
    }
}

/// A hash fixed for the build (std's SipHash with fixed keys), to pick shards.
pub(crate) fn shard_hash(bytes: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}
