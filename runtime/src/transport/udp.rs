//! UDP: binding the sockets of a listen, the receive loops, sending.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};

use super::server::{Shared, UdpLayout};
use super::{Incoming, Outgoing, Transport};

/// The receive buffer: the largest UDP payload fits (65,507 bytes over IPv4,
/// 65,527 over IPv6).
const MAX_DATAGRAM: usize = 65_536;

/// A UDP socket and the address of its listen.
pub(crate) struct UdpOut {
    pub(crate) local: SocketAddr,
    pub(crate) socket: Arc<UdpSock>,
}

mod sock;
pub(crate) use sock::UdpSock;

/// The layout this platform can do.
pub(crate) fn effective_layout(wanted: UdpLayout) -> UdpLayout {
    if wanted == UdpLayout::SocketPerWorker && !cfg!(any(target_os = "linux", target_os = "android")) {
        tracing::warn!("SO_REUSEPORT does not spread datagrams over sockets here: one shared UDP socket per listen");
        return UdpLayout::SharedSocket;
    }
    wanted
}

/// The datagrams per receive call this platform does (`ServerConfig::udp_batch`).
pub(crate) fn effective_batch(wanted: usize) -> usize {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        wanted.clamp(1, MAX_BATCH)
    } else {
        1
    }
}

/// Binds a UDP listen: one socket, or one per worker on the same address.
/// Returns the address bound (port 0 resolved) and the sockets.
pub(crate) fn bind(
    addr: SocketAddr,
    workers: usize,
    layout: UdpLayout,
    recv_buffer: Option<usize>,
) -> io::Result<(SocketAddr, Vec<Arc<UdpSock>>)> {
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

fn socket(addr: SocketAddr, reuse_port: bool, recv_buffer: Option<usize>) -> io::Result<UdpSock> {
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
        // Raised, never lowered (as OpenSER's probe): a larger system default stays.
        if socket.recv_buffer_size()? < size {
            socket.set_recv_buffer_size(size)?;
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSock::new(socket.into())
}

/// A worker: receive, handle, send, until shutdown. `batch` is
/// [`super::ServerConfig::udp_batch`]: above 1 (Linux and Android), datagrams
/// are received `batch` at a time with `recvmmsg` and the replies leaving from
/// the worker's own socket are sent together with `sendmmsg`.
pub(crate) async fn worker(shared: Arc<Shared>, own: UdpOut, batch: usize) {
    tokio::select! {
        () = shared.stopped() => {}
        () = receive(&shared, &own, batch) => {}
    }
}

async fn receive(shared: &Arc<Shared>, own: &UdpOut, batch: usize) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if effective_batch(batch) > 1 {
        return mmsg::receive(shared, own, effective_batch(batch)).await;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = batch;
    // One buffer for the worker's life; each datagram is copied out of it into
    // the Bytes the handler gets, its only allocation.
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut outs = Vec::new();
    loop {
        let (len, src) = match own.socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(local = %own.local, %error, "UDP receive error");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let Some(incoming) = incoming(&buf[..len], src, own) else { continue };
        shared.handle(incoming, &mut outs);
        for out in outs.drain(..) {
            shared.send(out, Some(own)).await;
        }
    }
}

/// The message a datagram carries; `None` for empty datagrams and keep-alives
/// (CRLFs), which are not messages.
fn incoming(datagram: &[u8], src: SocketAddr, own: &UdpOut) -> Option<Incoming> {
    if datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0)) {
        return None;
    }
    Some(Incoming {
        bytes: Bytes::copy_from_slice(datagram),
        transport: Transport::Udp,
        src,
        local: own.local,
        conn: None,
    })
}

/// The listen a datagram leaves from: the one `from_local` names, or else the
/// first UDP listen of the destination's family.
fn source<'a>(shared: &'a Shared, out: &Outgoing) -> Option<&'a UdpOut> {
    let same_family = |u: &&UdpOut| u.local.is_ipv4() == out.dst.is_ipv4();
    out.from_local
        .and_then(|local| shared.udp.iter().filter(same_family).find(|u| u.local == local))
        .or_else(|| shared.udp.iter().find(same_family))
}

/// Sends a datagram from the listen [`source`] picks: from the calling
/// worker's own socket when it is that listen's, else from the listen's first.
pub(crate) async fn send(shared: &Shared, out: Outgoing, own: Option<&UdpOut>) {
    let Some(from) = source(shared, &out) else {
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

/// The most datagrams one `recvmmsg` or `sendmmsg` call handles; a larger
/// [`super::ServerConfig::udp_batch`] is capped to it.
pub(crate) const MAX_BATCH: usize = 64;

/// The batched worker loop (`ServerConfig::udp_batch` > 1): after tokio says
/// the socket is readable, one `recvmmsg` takes up to `batch` datagrams, each
/// into its own 64 KiB slot; they are handled in order, and the replies that
/// leave from the worker's own socket go out together with `sendmmsg` once the
/// whole batch is handled, after the others (TCP, another listen). The lines
/// the batch's handling logs are written together before the replies leave
/// ([`crate::log::gather`]). Under load the first reply of a batch thus waits
/// for the batch's handling (32 × a few µs).
///
/// Measured (`cargo run --release -p serc-runtime --example udp_echo_load --
/// --batch …`, 400,000 datagrams of 563 bytes per run, 2 workers, 4 client
/// threads × 32 in flight in the same process, 2 shared and noisy CPUs, 2026-11;
/// rounds alternate every layout and batch size; median datagrams/s and server
/// CPU µs per datagram for batch 1 → 32, and the median of the per-round
/// ratios 32 / 1). Three runs: A `--rounds 7 --batch 1,8,32`, B `--rounds 9
/// --batch 1,8,16,32`, C `--rounds 15 --batch 1,32`, each without and with
/// `--parse`:
///
/// | layout, handler      | run | datagrams/s           | CPU µs/datagram     |
/// |----------------------|-----|-----------------------|---------------------|
/// | per-worker, echo     | A   | 131 k → 148 k  ×1.24  | 5.70 → 4.97  ×0.88  |
/// |                      | B   | 177 k → 162 k  ×0.98  | 4.58 → 4.57  ×0.88  |
/// |                      | C   | 147 k → 158 k  ×1.14  | 4.93 → 4.15  ×0.83  |
/// | per-worker, parse    | A   | 127 k → 133 k  ×1.10  | 7.55 → 5.11  ×0.62  |
/// |                      | B   | 132 k → 161 k  ×1.22  | 6.00 → 4.86  ×0.81  |
/// |                      | C   | 118 k → 150 k  ×1.32  | 7.89 → 4.79  ×0.63  |
/// | shared, echo         | A   | 124 k → 137 k  ×0.99  | 4.62 → 4.46  ×0.98  |
/// |                      | B   | 148 k → 153 k  ×1.04  | 4.59 → 4.10  ×0.91  |
/// |                      | C   | 141 k → 167 k  ×1.05  | 4.64 → 4.20  ×0.94  |
/// | shared, parse        | A   | 119 k → 123 k  ×1.17  | 6.02 → 5.42  ×0.88  |
/// |                      | B   | 116 k → 128 k  ×1.07  | 5.77 → 5.02  ×0.88  |
/// |                      | C   | 131 k → 130 k  ×0.99  | 5.93 → 5.23  ×0.88  |
///
/// Batch 32 cost less server CPU per datagram in all twelve (×0.62–0.98) and
/// never lost throughput beyond the noise (×0.98–1.32; single runs range
/// from 90 k to 230 k datagrams/s): hence the default, 32. The clients share
/// the two CPUs and make one system call per datagram, so the throughput
/// figures understate what the server saves. Batches of 8 and 16 were less
/// consistent (run B, per-worker echo: ×0.94 and ×0.86 datagrams/s, ×1.20 and
/// ×1.04 CPU). No datagram was lost in any run.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod mmsg {
    use std::os::fd::AsRawFd;

    use super::*;

    pub(super) async fn receive(shared: &Arc<Shared>, own: &UdpOut, batch: usize) {
        // One slot of the largest datagram per message of a batch, for the
        // worker's life (batch × 64 KiB, allocated zeroed: the pages are only
        // mapped as datagrams are written into them), so nothing is truncated.
        let mut area = vec![0u8; batch * MAX_DATAGRAM];
        let mut received = Vec::with_capacity(batch);
        let mut replies = Vec::new();
        let mut others = Vec::new();
        let mut outs = Vec::new();
        let mut calls = sys::Calls::new();
        loop {
            let result = own
                .socket
                .recv_with(|socket| sys::recv(socket.as_raw_fd(), &mut calls, &mut area, &mut received))
                .await;
            if let Err(error) = result {
                tracing::debug!(local = %own.local, %error, "UDP receive error");
                tokio::task::yield_now().await;
                continue;
            }
            {
                // The lines the batch logs are written together (crate::log::gather).
                let _lines = crate::log::gather();
                for (datagram, slot) in received.iter().zip(area.chunks_exact(MAX_DATAGRAM)) {
                    let Some(src) = datagram.src else { continue };
                    if datagram.truncated {
                        tracing::warn!(local = %own.local, %src, "UDP datagram larger than the receive buffer: dropped");
                        continue;
                    }
                    let Some(incoming) = incoming(&slot[..datagram.len], src, own) else { continue };
                    shared.handle(incoming, &mut outs);
                    for out in outs.drain(..) {
                        if out.transport == Transport::Udp && source(shared, &out).is_some_and(|f| f.local == own.local)
                        {
                            replies.push((out.bytes, out.dst));
                        } else {
                            others.push(out);
                        }
                    }
                }
            }
            for out in others.drain(..) {
                shared.send(out, Some(own)).await;
            }
            send_all(own, &mut calls, &mut replies).await;
        }
    }

    /// Sends `replies` from the worker's own socket, `MAX_BATCH` per
    /// `sendmmsg`, and empties it. A datagram the kernel refuses is logged and
    /// dropped; the others still go.
    async fn send_all(own: &UdpOut, calls: &mut sys::Calls, replies: &mut Vec<(Bytes, SocketAddr)>) {
        let mut next = 0;
        while next < replies.len() {
            let chunk = &replies[next..replies.len().min(next + MAX_BATCH)];
            match own.socket.send_with(|socket| sys::send(socket.as_raw_fd(), calls, chunk)).await {
                Ok(sent) if sent > 0 => next += sent,
                result => {
                    let error = result.err().map_or_else(|| "nothing sent".to_string(), |e| e.to_string());
                    let dst = replies[next].1;
                    tracing::warn!(local = %own.local, %dst, %error, "UDP send failed: message dropped");
                    next += 1;
                }
            }
        }
        replies.clear();
    }

    /// The unsafe code of the UDP transport: the two system calls, the
    /// headers a worker keeps for them ([`sys::Calls`]), and reading back the
    /// senders' addresses.
    /// (`MSG_DONTWAIT as _`: the flags are a `c_uint` for musl, a `c_int` elsewhere.)
    mod sys {
        use std::io;
        use std::net::SocketAddr;
        use std::os::fd::RawFd;
        use std::{mem, ptr};

        use bytes::Bytes;
        use socket2::{SockAddr, SockAddrStorage};

        use super::{MAX_BATCH, MAX_DATAGRAM};

        /// One datagram received into its slot.
        pub(crate) struct Received {
            pub(crate) len: usize,
            /// `None` if the kernel gave no IPv4 or IPv6 address (never on a UDP socket).
            pub(crate) src: Option<SocketAddr>,
            /// Larger than the slot (`MSG_TRUNC`): the slot holds only its beginning.
            pub(crate) truncated: bool,
        }

        /// The headers, buffers and addresses of `recvmmsg` and `sendmmsg`,
        /// kept for a worker's life: a call fills in only the entries it
        /// uses, so nothing is zeroed per call (fresh arrays of `MAX_BATCH`
        /// entries zeroed about 13 KB of stack per receive and 8 KB per send,
        /// however few datagrams the call carried).
        pub(crate) struct Calls {
            headers: [libc::mmsghdr; MAX_BATCH],
            iovecs: [libc::iovec; MAX_BATCH],
            /// Where `recvmmsg` writes the senders' addresses.
            senders: [SockAddrStorage; MAX_BATCH],
            /// The destinations of a `sendmmsg`, converted.
            dsts: Vec<SockAddr>,
        }

        // SAFETY: the raw pointers in `headers` and `iovecs` are written by
        // `recv` and `send` just before their system call, to memory that
        // call borrows, and never read otherwise: nothing they point to is
        // shared by moving a `Calls` to another thread.
        unsafe impl Send for Calls {}

        impl Calls {
            pub(crate) fn new() -> Box<Calls> {
                Box::new(Calls {
                    // SAFETY: mmsghdr is a plain C struct of integers and raw
                    // pointers, for which all-zero bytes are a valid value.
                    headers: unsafe { mem::zeroed() },
                    iovecs: std::array::from_fn(|_| libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 }),
                    senders: std::array::from_fn(|_| SockAddrStorage::zeroed()),
                    dsts: Vec::with_capacity(MAX_BATCH),
                })
            }
        }

        /// Points `header` at one address (`namelen` bytes at `name`) and one
        /// buffer, with no control data and no flags: all a call reads of the
        /// headers it was given, whatever an earlier call left in them.
        fn aim(header: &mut libc::mmsghdr, name: *mut libc::c_void, namelen: libc::socklen_t, iovec: &mut libc::iovec) {
            let msg = &mut header.msg_hdr;
            msg.msg_name = name;
            msg.msg_namelen = namelen;
            msg.msg_iov = iovec;
            msg.msg_iovlen = 1;
            msg.msg_control = ptr::null_mut();
            msg.msg_controllen = 0;
            msg.msg_flags = 0;
        }

        /// Receives what is waiting on `fd`, without blocking: up to one
        /// datagram per `MAX_DATAGRAM`-byte slot of `area` (at most
        /// `MAX_BATCH`), the i-th into the i-th slot. `received` is replaced
        /// by what came; `WouldBlock` when nothing had.
        pub(crate) fn recv(
            fd: RawFd,
            calls: &mut Calls,
            area: &mut [u8],
            received: &mut Vec<Received>,
        ) -> io::Result<()> {
            received.clear();
            let Calls { headers, iovecs, senders, .. } = calls;
            let mut count = 0;
            for ((slot, (sender, iovec)), header) in area
                .chunks_exact_mut(MAX_DATAGRAM)
                .zip(senders.iter_mut().zip(iovecs.iter_mut()))
                .zip(headers.iter_mut())
            {
                *iovec = libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: slot.len() };
                aim(header, ptr::from_mut(sender).cast(), sender.size_of(), iovec);
                count += 1;
            }
            // SAFETY: the first `count` headers each point to one iovec over a
            // distinct slot of `area` (writable, `iov_len` bytes), to one
            // distinct, writable SockAddrStorage of `msg_namelen` bytes and to
            // no control data; all of them outlive the call, which only
            // writes within those bounds. A null timeout is allowed.
            let got = unsafe {
                libc::recvmmsg(
                    fd,
                    headers.as_mut_ptr(),
                    count as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                    ptr::null_mut(),
                )
            };
            let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
            for (sender, header) in senders.iter_mut().zip(&headers[..got]) {
                // `SockAddr` owns its storage: the slot takes a zeroed one,
                // which the next call points the kernel at again.
                let sender = mem::replace(sender, SockAddrStorage::zeroed());
                // SAFETY: the kernel wrote the sender's address into `sender`,
                // of `msg_namelen` bytes (at most the storage's size).
                let src = unsafe { SockAddr::new(sender, header.msg_hdr.msg_namelen) }.as_socket();
                received.push(Received {
                    len: (header.msg_len as usize).min(MAX_DATAGRAM),
                    src,
                    truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                });
            }
            Ok(())
        }

        /// Sends the first `MAX_BATCH` datagrams of `datagrams`, each to its
        /// address, without blocking; returns how many the kernel took (from
        /// the first). An error means the first was not sent.
        pub(crate) fn send(fd: RawFd, calls: &mut Calls, datagrams: &[(Bytes, SocketAddr)]) -> io::Result<usize> {
            let datagrams = &datagrams[..datagrams.len().min(MAX_BATCH)];
            let Calls { headers, iovecs, dsts, .. } = calls;
            dsts.clear();
            dsts.extend(datagrams.iter().map(|(_, dst)| SockAddr::from(*dst)));
            for (((bytes, _), dst), (iovec, header)) in
                datagrams.iter().zip(dsts.iter()).zip(iovecs.iter_mut().zip(headers.iter_mut()))
            {
                // The kernel only reads through these pointers (sendmmsg).
                *iovec = libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() };
                aim(header, dst.as_ptr().cast_mut().cast(), dst.len(), iovec);
            }
            // SAFETY: the first `datagrams.len()` headers each point to one
            // iovec over a datagram's bytes, to its destination's address
            // (`msg_namelen` bytes) and to no control data, all alive for the
            // call; sendmmsg only reads them, and writes nothing but the
            // headers' `msg_len`.
            let sent = unsafe {
                libc::sendmmsg(fd, headers.as_mut_ptr(), datagrams.len() as libc::c_uint, libc::MSG_DONTWAIT as _)
            };
            usize::try_from(sent).map_err(|_| io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rmem_max() -> Option<usize> {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok()?.trim().parse().ok()
    }

    fn recv_buffer(socket: &UdpSock) -> usize {
        socket.sock_ref().recv_buffer_size().expect("SO_RCVBUF")
    }

    #[tokio::test]
    async fn the_receive_buffer_is_raised_never_lowered() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let (_, default) = bind(loopback, 1, UdpLayout::SharedSocket, None).expect("bind");
        let system = recv_buffer(&default[0]);

        // Smaller than the system's default: left as it is.
        let (_, small) = bind(loopback, 1, UdpLayout::SharedSocket, Some(1024)).expect("bind");
        assert_eq!(recv_buffer(&small[0]), system);

        // Larger: raised on every socket of a per-worker listen, as far as the
        // kernel allows (Linux doubles what is asked, capped at rmem_max).
        let want = 1 << 20;
        let (_, raised) = bind(loopback, 2, UdpLayout::SocketPerWorker, Some(want)).expect("bind");
        assert_eq!(raised.len(), 2);
        for socket in &raised {
            let got = recv_buffer(socket);
            if cfg!(target_os = "linux") {
                let expected = (2 * want.min(rmem_max().expect("rmem_max"))).max(system);
                assert_eq!(got, expected);
            } else {
                assert!(got >= system, "{got} < {system}");
            }
        }
    }
}
