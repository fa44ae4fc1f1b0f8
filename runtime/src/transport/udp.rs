//! UDP: binding the sockets of a listen, the receive loops, sending.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::server::{Shared, UdpLayout};
use super::{Incoming, Outgoing, Transport};

/// The receive buffer: the largest UDP payload fits (65,507 bytes over IPv4,
/// 65,527 over IPv6).
const MAX_DATAGRAM: usize = 65_536;

/// A UDP socket and the address of its listen.
pub(crate) struct UdpOut {
    pub(crate) local: SocketAddr,
    pub(crate) socket: Arc<UdpSocket>,
}

/// The layout this platform can do.
pub(crate) fn effective_layout(wanted: UdpLayout) -> UdpLayout {
    if wanted == UdpLayout::SocketPerWorker && !cfg!(any(target_os = "linux", target_os = "android")) {
        tracing::warn!("SO_REUSEPORT does not spread datagrams over sockets here: one shared UDP socket per listen");
        return UdpLayout::SharedSocket;
    }
    wanted
}

/// Binds a UDP listen: one socket, or one per worker on the same address.
/// Returns the address bound (port 0 resolved) and the sockets.
pub(crate) fn bind(
    addr: SocketAddr,
    workers: usize,
    layout: UdpLayout,
    recv_buffer: Option<usize>,
) -> io::Result<(SocketAddr, Vec<Arc<UdpSocket>>)> {
    let per_worker = layout == UdpLayout::SocketPerWorker;
    let first = socket(addr, per_worker, recv_buffer)?;
    let local = first.local_addr()?;
    let mut sockets = vec![Arc::new(first)];
    if per_worker {
        for _ in 1..workers {
            sockets.push(Arc::new(socket(local, true, recv_buffer)?));
        }
    }
    Ok((local, sockets))
}

fn socket(addr: SocketAddr, reuse_port: bool, recv_buffer: Option<usize>) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = reuse_port;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// A worker: receive, handle, send, until shutdown.
pub(crate) async fn worker(shared: Arc<Shared>, own: UdpOut) {
    tokio::select! {
        () = shared.stopped() => {}
        () = receive(&shared, &own) => {}
    }
}

async fn receive(shared: &Arc<Shared>, own: &UdpOut) {
    // One buffer for the worker's life; each datagram is copied out of it into
    // the Bytes the handler gets, its only allocation.
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, src) = match own.socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(local = %own.local, %error, "UDP receive error");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let datagram = &buf[..len];
        // Empty datagrams and keep-alives (CRLFs) are not messages.
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0)) {
            continue;
        }
        let incoming = Incoming {
            bytes: Bytes::copy_from_slice(datagram),
            transport: Transport::Udp,
            src,
            local: own.local,
            conn: None,
        };
        for out in shared.handle(incoming) {
            shared.send(out, Some(own)).await;
        }
    }
}

/// Sends a datagram from the listen `from_local` names, or else from the first
/// UDP listen of the destination's family.
pub(crate) async fn send(shared: &Shared, out: Outgoing, own: Option<&UdpOut>) {
    let same_family = |u: &&UdpOut| u.local.is_ipv4() == out.dst.is_ipv4();
    let from = out
        .from_local
        .and_then(|local| shared.udp.iter().filter(same_family).find(|u| u.local == local))
        .or_else(|| shared.udp.iter().find(same_family));
    let Some(from) = from else {
        tracing::warn!(dst = %out.dst, "no UDP listen of the destination's address family: message dropped");
        return;
    };
    let socket = match own {
        Some(own) if own.local == from.local => &own.socket,
        _ => &from.socket,
    };
    if let Err(error) = socket.send_to(&out.bytes, out.dst).await {
        tracing::warn!(local = %from.local, dst = %out.dst, %error, "UDP send failed: message dropped");
    }
}
