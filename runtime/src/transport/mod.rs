//! The transport layer: the only part of the runtime that knows tokio.
//!
//! A [`Server`] binds every [`Listen`] of a [`ServerConfig`] (OpenSER's several
//! `listen=`), runs `workers` tasks per UDP listen (`children=`), an accept loop
//! per TCP listen and a task per TCP connection, and hands every message received
//! to a [`Handler`] — the generated script code — as an [`Incoming`]. What the
//! handler returns ([`Outgoing`]) is sent here too: over UDP from the listening
//! socket the message names, over TCP on the connection it names, or on an open
//! connection to the destination, or on a new one (RFC 3261 §18.2.2).
//!
//! Layout, after mini-redis: a listener per socket, a handler task per
//! connection, a cap on connections, one shutdown signal watched by every task,
//! and [`ServerHandle::shutdown`] waits until all of them have ended.
//!
//! - `server.rs` — configuration, binding ([`Server::bind`], so the ports chosen
//!   for port 0 are known before the handler is built) and start, the handle,
//!   sending ([`Sender`]);
//! - `udp.rs` — sockets (one per worker with `SO_REUSEPORT`, or one shared) and
//!   the receive loops (on Linux, batches of datagrams with `recvmmsg` and their
//!   replies with `sendmmsg`: [`ServerConfig::udp_batch`]);
//! - `tcp.rs` — accept loops, connections and their registry, connecting;
//! - `framing.rs` — sans-IO Content-Length framing of a byte stream.
//!
//! Nothing here parses SIP beyond the stream framing: the handler gets the
//! bytes and parses them with [`crate::sip::Message::parse`] and
//! [`Incoming::framing`].

mod framing;
mod server;
mod tcp;
mod udp;

use std::fmt;
use std::net::SocketAddr;

use std::sync::Arc;

use bytes::Bytes;

use crate::sip::Framing;

pub use server::{Bound, Sender, Server, ServerConfig, ServerHandle, StartError, TcpConfig, UdpLayout};

/// The transport of a message: the proxy's own enum, so one name is used from
/// the Via to the socket. TLS and SCTP are not implemented yet: listening on them
/// fails at start ([`StartError::Unsupported`]), sending over them is logged and
/// the message dropped.
pub use crate::proxy::Transport;

/// A socket to listen on (`listen=udp:127.0.0.1:5060`). Port 0 picks a free
/// port; [`ServerHandle::listens`] tells which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Listen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Listen {
    pub fn udp(addr: SocketAddr) -> Listen {
        Listen { transport: Transport::Udp, addr }
    }

    pub fn tcp(addr: SocketAddr) -> Listen {
        Listen { transport: Transport::Tcp, addr }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.name(), self.addr)
    }
}

/// A TCP connection, as long as it is open. Ids are never reused within a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// One message received: a whole datagram, or one message framed from a stream
/// (leading keep-alive CRLFs removed, exactly Content-Length bytes of body).
#[derive(Clone, Debug)]
pub struct Incoming {
    pub bytes: Bytes,
    pub transport: Transport,
    /// The peer's address.
    pub src: SocketAddr,
    /// The listen it arrived on (its address as bound, so `0.0.0.0:5060` for a
    /// wildcard listen); for a TCP connection this server opened, the listen it
    /// was opened from, or the connection's own address when none matched.
    pub local: SocketAddr,
    /// The TCP connection it arrived on.
    pub conn: Option<ConnId>,
}

impl Incoming {
    /// How to parse [`Incoming::bytes`] ([`crate::sip::Message::parse`]).
    pub fn framing(&self) -> Framing {
        self.transport.framing()
    }

    /// A message back to the sender: same transport, same connection, from the
    /// same listen.
    pub fn reply(&self, bytes: Bytes) -> Outgoing {
        Outgoing { bytes, transport: self.transport, dst: self.src, from_local: Some(self.local), conn: self.conn }
    }
}

/// One message to send.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub bytes: Bytes,
    pub transport: Transport,
    pub dst: SocketAddr,
    /// UDP: the listen to send from (else the first UDP listen of `dst`'s
    /// family). TCP: the listen whose address a new connection is opened from.
    pub from_local: Option<SocketAddr>,
    /// TCP: the connection to send on; when it has closed, or with `None`, an
    /// open connection to `dst` is used, or a new one opened.
    pub conn: Option<ConnId>,
}

impl Outgoing {
    pub fn new(transport: Transport, dst: SocketAddr, bytes: Bytes) -> Outgoing {
        Outgoing { bytes, transport, dst, from_local: None, conn: None }
    }
}

/// The code that runs for each message received: the generated script. It runs
/// on the transport's tasks, so it must be quick and must not block; it returns
/// the messages to send. A panic in it is caught and logged, and the message
/// dropped.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, incoming: Incoming) -> Vec<Outgoing>;

    /// [`handle`](Handler::handle), appending the messages to send to `out`.
    /// The transport's tasks call this one, each with one vector it empties and
    /// reuses, so a handler that overrides it allocates no vector per message.
    fn handle_into(&self, incoming: Incoming, out: &mut Vec<Outgoing>) {
        out.append(&mut self.handle(incoming));
    }

    /// Called once by [`Server::start`] ([`Bound::start`]), before the first message, with a
    /// [`Sender`] for messages sent later, outside `handle` (after a DNS lookup,
    /// a timer …), and the handler itself shared, for the tasks that need it.
    /// Nothing by default.
    fn started(self: Arc<Self>, sender: Sender) {
        let _ = sender;
    }
}

impl<F> Handler for F
where
    F: Fn(Incoming) -> Vec<Outgoing> + Send + Sync + 'static,
{
    fn handle(&self, incoming: Incoming) -> Vec<Outgoing> {
        self(incoming)
    }
}
