//! The UDP socket a listen receives and sends on, registered with the
//! runtime for readability only.
//!
//! tokio's `UdpSocket` asks epoll for both directions. A UDP socket reports
//! an edge of writability each time the kernel lets go of a datagram it
//! sent (on loopback within the send itself, on a network device once the
//! datagram is transmitted): every datagram a proxy sent could wake its
//! worker once more, for an epoll round with nothing to do. A datagram
//! socket is writable unless its send buffer is full, so sends are simply
//! tried; only one the kernel refuses with `EAGAIN` waits, through a
//! duplicate of the descriptor registered for writability while it waits,
//! as a blocking socket would wait in the kernel.
//!
//! Measured (`perf stat` of the proxy over 8 s of a harness step, the same
//! step before and after, 2026-11-29): the stateful relay at 3,000 calls/s
//! made 19,539 → 11,063 `epoll_wait` calls and 66,344 → 55,996 system calls
//! in all, the stateless relay at 1,000 calls/s 24,463 → 12,951 and
//! 67,483 → 54,209 (BENCHMARKS.md, "Fewer wake-ups").

use std::io;
use std::net::SocketAddr;

/// A bound UDP socket, non-blocking, registered with the current runtime.
#[cfg(unix)]
pub(crate) struct UdpSock {
    io: tokio::io::unix::AsyncFd<std::net::UdpSocket>,
}

#[cfg(unix)]
impl UdpSock {
    /// Registers `socket` (bound, non-blocking) with the current runtime.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<UdpSock> {
        Ok(UdpSock { io: register(socket, tokio::io::Interest::READABLE)? })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    #[cfg(test)]
    pub(crate) fn sock_ref(&self) -> socket2::SockRef<'_> {
        socket2::SockRef::from(self.io.get_ref())
    }

    /// Receives one datagram, waiting for it.
    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_with(|socket| socket.recv_from(buf)).await
    }

    /// Waits until a datagram is waiting, then calls `recv` (a non-blocking
    /// receive on the socket); while it says `WouldBlock`, waits again.
    pub(crate) async fn recv_with<T>(
        &self,
        mut recv: impl FnMut(&std::net::UdpSocket) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            let mut ready = self.io.readable().await?;
            if let Ok(result) = ready.try_io(|io| recv(io.get_ref())) {
                return result;
            }
        }
    }

    /// Sends one datagram to `dst`.
    pub(crate) async fn send_to(&self, bytes: &[u8], dst: SocketAddr) -> io::Result<usize> {
        self.send_with(|socket| socket.send_to(bytes, dst)).await
    }

    /// Calls `send` (a non-blocking send on the socket) until it does not
    /// say `WouldBlock`, waiting for room in the send buffer between tries.
    pub(crate) async fn send_with<T>(
        &self,
        mut send: impl FnMut(&std::net::UdpSocket) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match send(self.io.get_ref()) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                result => return result,
            }
        }
    }

    /// Waits until the send buffer has room, through a duplicate of the
    /// descriptor registered for writability (epoll reports at once a
    /// descriptor already writable when it is added): the socket's own
    /// registration stays readable-only.
    async fn writable(&self) -> io::Result<()> {
        let waiter = register(self.io.get_ref().try_clone()?, tokio::io::Interest::WRITABLE)?;
        let _ready = waiter.writable().await?;
        Ok(())
    }
}

/// Registers `socket` with the current runtime for `interest`.
#[cfg(unix)]
fn register(
    socket: std::net::UdpSocket,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<std::net::UdpSocket>> {
    // SAFETY: the socket owns its descriptor, which stays open and the same
    // for as long as the `AsyncFd` owning the socket lives: nothing here
    // takes the socket out of it or replaces it (only `get_ref` is used).
    Ok(unsafe { tokio::io::unix::AsyncFd::register_with_interest(socket, interest) }?)
}

/// Elsewhere, tokio's socket.
#[cfg(not(unix))]
pub(crate) struct UdpSock {
    io: tokio::net::UdpSocket,
}

#[cfg(not(unix))]
impl UdpSock {
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<UdpSock> {
        Ok(UdpSock { io: tokio::net::UdpSocket::from_std(socket)? })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    #[cfg(test)]
    pub(crate) fn sock_ref(&self) -> socket2::SockRef<'_> {
        socket2::SockRef::from(&self.io)
    }

    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.recv_from(buf).await
    }

    pub(crate) async fn send_to(&self, bytes: &[u8], dst: SocketAddr) -> io::Result<usize> {
        self.io.send_to(bytes, dst).await
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::os::fd::RawFd;
    use std::time::Duration;

    use super::*;

    fn bound() -> UdpSock {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("non-blocking");
        UdpSock::new(socket).expect("register")
    }

    /// A non-blocking receive of up to `asked` datagrams, one `recv` each
    /// (what `recvmmsg` does, without its headers): how many came.
    fn drain(fd: RawFd, asked: usize, into: &mut Vec<Vec<u8>>) -> io::Result<usize> {
        use std::os::fd::BorrowedFd;
        // SAFETY: `fd` is the socket's, open for the whole call.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let mut got = 0;
        while got < asked {
            let mut buf = [std::mem::MaybeUninit::new(0u8); 64];
            match socket.recv(&mut buf) {
                Ok(len) => {
                    // SAFETY: `recv` initialized the first `len` bytes.
                    into.push(buf[..len].iter().map(|b| unsafe { b.assume_init() }).collect());
                    got += 1;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock && got > 0 => break,
                Err(error) => return Err(error),
            }
        }
        Ok(got)
    }

    /// The events the runtime's epoll instances watch on `fd`, from
    /// `/proc/self/fdinfo` (one line per registration: `tfd: FD events: MASK`).
    fn registrations(fd: RawFd) -> Vec<u32> {
        let mut masks = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").flatten() {
            let is_epoll =
                std::fs::read_link(entry.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:[eventpoll]");
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy()));
            let (true, Ok(info)) = (is_epoll, info) else { continue };
            for line in info.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("tfd:")
                    && words.next() == Some(&fd.to_string())
                    && words.next() == Some("events:")
                {
                    masks.push(u32::from_str_radix(words.next().expect("mask"), 16).expect("hex mask"));
                }
            }
        }
        masks
    }

    /// The socket is watched for reading only, never for writing; a
    /// receive after a burst gets every datagram of it, in order.
    #[tokio::test]
    async fn the_socket_is_watched_for_reading_only() {
        use std::os::fd::AsRawFd;
        let receiver = bound();
        let fd = receiver.io.as_raw_fd();
        // (An epoll instance open under two descriptors lists each
        // registration twice, as tokio's does here.)
        let masks = registrations(fd);
        assert!(!masks.is_empty());
        for mask in masks {
            assert_ne!(mask & libc::EPOLLIN as u32, 0, "{mask:x}");
            assert_eq!(mask & libc::EPOLLOUT as u32, 0, "{mask:x}");
        }

        let to = receiver.local_addr().expect("address");
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut received = Vec::new();
        for burst in 1..=7u32 {
            let first = received.len() as u32;
            for n in first..first + burst {
                sender.send_to(&n.to_be_bytes(), to).expect("send");
            }
            let receive = receiver.recv_with(|socket| drain(socket.as_raw_fd(), 64, &mut received));
            let got = tokio::time::timeout(Duration::from_secs(5), receive).await.expect("in time").expect("receive");
            assert_eq!(got, burst as usize);
        }
        let numbers: Vec<u32> =
            received.iter().map(|d| u32::from_be_bytes(d[..].try_into().expect("4 bytes"))).collect();
        assert_eq!(numbers, (0..28).collect::<Vec<_>>());
    }

    /// A send the kernel refuses with `EAGAIN` waits for room (here at once:
    /// the buffer is empty) and is tried again; other errors and successes
    /// are returned as they are.
    #[tokio::test]
    async fn a_send_that_would_block_is_tried_again_once_writable() {
        let socket = bound();
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = receiver.local_addr().expect("address");
        let mut tries = 0;
        let sent = socket
            .send_with(|s| {
                tries += 1;
                if tries == 1 {
                    Err(io::Error::from(io::ErrorKind::WouldBlock))
                } else {
                    s.send_to(b"again", to)
                }
            })
            .await
            .expect("sent");
        assert_eq!((sent, tries), (5, 2));
        let mut buf = [0u8; 16];
        assert_eq!(receiver.recv(&mut buf).expect("received"), 5);
        assert_eq!(&buf[..5], b"again");

        // The socket itself is still watched for reading only (the wait was
        // the duplicate's).
        {
            use std::os::fd::AsRawFd;
            let masks = registrations(socket.io.as_raw_fd());
            assert!(!masks.is_empty() && masks.iter().all(|m| m & libc::EPOLLOUT as u32 == 0), "{masks:x?}");
        }

        let refused = socket.send_with(|_| Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied))).await;
        assert_eq!(refused.expect_err("refused").kind(), io::ErrorKind::PermissionDenied);
        // The socket still receives: its own registration was not touched.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        peer.send_to(b"in", socket.local_addr().expect("address")).expect("send");
        let (len, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .expect("in time")
            .expect("received");
        assert_eq!((&buf[..len], from), (&b"in"[..], peer.local_addr().expect("address")));
    }
}
