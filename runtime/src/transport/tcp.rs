//! TCP: accept loops, connections (one task each, reading and writing), the
//! registry of open connections, and opening new ones.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::{sleep, timeout, Instant};

use super::framing::{Framed, StreamFramer};
use super::server::Shared;
use super::{ConnId, Incoming, Outgoing, Transport};

/// Free space kept in a connection's read buffer before each read.
const READ_CHUNK: usize = 4096;

/// Binds and listens.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Restarting while old connections linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// The open connections, by id (replies) and by peer address (new requests,
/// RFC 3261 §18.2.2).
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    next: u64,
    by_id: HashMap<ConnId, mpsc::Sender<Bytes>>,
    by_addr: HashMap<SocketAddr, ConnId>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, RegistryInner> {
        // Nothing panics while holding it; a poisoned registry is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

impl RegistryInner {
    fn insert(&mut self, peer: SocketAddr, queue: usize) -> (ConnId, mpsc::Receiver<Bytes>) {
        self.next += 1;
        let id = ConnId(self.next);
        let (tx, rx) = mpsc::channel(queue.max(1));
        self.by_id.insert(id, tx);
        self.by_addr.insert(peer, id);
        (id, rx)
    }

    fn remove(&mut self, id: ConnId, peer: SocketAddr) {
        self.by_id.remove(&id);
        if self.by_addr.get(&peer) == Some(&id) {
            self.by_addr.remove(&peer);
        }
    }
}

/// One connection as the handler sees it.
#[derive(Clone, Copy)]
struct Conn {
    id: ConnId,
    peer: SocketAddr,
    local: SocketAddr,
}

/// Unregisters a connection when its task ends, however it ends.
struct Registered<'a> {
    shared: &'a Shared,
    id: ConnId,
    peer: SocketAddr,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.conns.lock().remove(self.id, self.peer);
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, local: SocketAddr) {
    tokio::select! {
        () = shared.stopped() => {}
        () = accept(&shared, &listener, local) => {}
    }
}

async fn accept(shared: &Arc<Shared>, listener: &TcpListener, local: SocketAddr) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: let connections close.
                tracing::warn!(%local, %error, "TCP accept failed");
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = shared.conn_slots.clone().try_acquire_owned() else {
            drop(stream);
            shared.refused(peer, "connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (id, rx) = shared.conns.lock().insert(peer, shared.tcp.send_queue);
        tracing::debug!(%id, %peer, %local, "TCP connection accepted");
        let conn = Conn { id, peer, local };
        let task = run(shared.clone(), conn, Ok(stream), rx, permit);
        if !shared.tasks.spawn(task) {
            shared.conns.lock().remove(id, peer);
        }
    }
}

/// Queues a message on a connection: the one named, or an open one to the
/// destination, or a new one.
pub(crate) fn send(shared: &Arc<Shared>, out: Outgoing) {
    let Outgoing { bytes, dst, from_local, conn, .. } = out;
    let mut conns = shared.conns.lock();
    let open = conn.filter(|id| conns.by_id.contains_key(id)).or_else(|| conns.by_addr.get(&dst).copied());
    if let Some(id) = open {
        let queued = conns.by_id.get(&id).map(|tx| tx.try_send(bytes));
        drop(conns);
        match queued {
            Some(Ok(())) => {}
            Some(Err(mpsc::error::TrySendError::Full(_))) => {
                tracing::warn!(%id, %dst, "TCP send queue full: message dropped");
            }
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => {
                tracing::debug!(%id, %dst, "TCP connection closing: message dropped");
            }
        }
        return;
    }
    if shared.is_stopping() {
        return;
    }
    let Ok(permit) = shared.conn_slots.clone().try_acquire_owned() else {
        drop(conns);
        shared.refused(dst, "new connection (message dropped)");
        return;
    };
    let (id, rx) = conns.insert(dst, shared.tcp.send_queue);
    if let Some(tx) = conns.by_id.get(&id) {
        let _ = tx.try_send(bytes);
    }
    drop(conns);
    // The listen the connection belongs to: the one named, or the first of the family.
    let same_family = |a: &&SocketAddr| a.is_ipv4() == dst.is_ipv4();
    let listen = from_local
        .and_then(|local| shared.tcp_listens.iter().filter(same_family).find(|a| **a == local))
        .or_else(|| shared.tcp_listens.iter().find(same_family))
        .copied();
    tracing::debug!(%id, %dst, "opening a TCP connection");
    let task = {
        let shared = shared.clone();
        async move {
            let stream = connect(&shared, dst, listen).await;
            let local = match (listen, &stream) {
                (Some(listen), _) => listen,
                (None, Ok(stream)) => stream.local_addr().unwrap_or(dst),
                (None, Err(_)) => dst,
            };
            run(shared.clone(), Conn { id, peer: dst, local }, stream, rx, permit).await;
        }
    };
    if !shared.tasks.spawn(task) {
        shared.conns.lock().remove(id, dst);
    }
}

/// Opens a connection, from the listen's address when it has a specific one.
async fn connect(shared: &Shared, dst: SocketAddr, listen: Option<SocketAddr>) -> io::Result<TcpStream> {
    let socket = if dst.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = listen.map(|l| l.ip()).filter(|ip: &IpAddr| !ip.is_unspecified()) {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.set_nodelay(true)?;
    match timeout(shared.tcp.connect_timeout, socket.connect(dst)).await {
        Ok(stream) => stream,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// A connection's task: until shutdown, or until it closes.
async fn run(
    shared: Arc<Shared>,
    conn: Conn,
    stream: io::Result<TcpStream>,
    rx: mpsc::Receiver<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    let _registered = Registered { shared: &shared, id: conn.id, peer: conn.peer };
    let stream = match stream {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(id = %conn.id, dst = %conn.peer, %error, "TCP connect failed: queued messages dropped");
            return;
        }
    };
    tokio::select! {
        () = shared.stopped() => {}
        result = serve(&shared, conn, stream, rx) => match result {
            Ok(why) => tracing::debug!(id = %conn.id, peer = %conn.peer, "TCP connection closed: {why}"),
            Err(why) => tracing::warn!(id = %conn.id, peer = %conn.peer, "TCP connection closed: {why}"),
        }
    }
}

/// Reads and frames messages, handles them, writes what is queued. Returns
/// why the connection ends: `Ok` for ordinary ends, `Err` for faults worth a warning.
async fn serve(
    shared: &Arc<Shared>,
    conn: Conn,
    mut stream: TcpStream,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<String, String> {
    let config = &shared.tcp;
    let (mut reader, mut writer) = stream.split();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut framer = StreamFramer::new(config.max_message_size);
    let mut outs = Vec::new();
    let idle = sleep(config.idle_timeout);
    tokio::pin!(idle);
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => return Ok("closed by the peer".into()),
                    Ok(_) => {}
                    Err(error) => return Ok(format!("read error: {error}")),
                }
                idle.as_mut().reset(Instant::now() + config.idle_timeout);
                loop {
                    match framer.next(&buf) {
                        Ok(Framed::Partial { skip }) => {
                            buf.advance(skip);
                            break;
                        }
                        Ok(Framed::Complete { start, end }) => {
                            let bytes = Bytes::copy_from_slice(&buf[start..end]);
                            buf.advance(end);
                            let incoming = Incoming {
                                bytes,
                                transport: Transport::Tcp,
                                src: conn.peer,
                                local: conn.local,
                                conn: Some(conn.id),
                            };
                            shared.handle(incoming, &mut outs);
                            for out in outs.drain(..) {
                                shared.send(out, None).await;
                            }
                        }
                        Err(error) => return Err(error.to_string()),
                    }
                }
            }
            Some(bytes) = rx.recv() => {
                match timeout(config.send_timeout, writer.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(format!("write error: {error}")),
                    Err(_) => return Err("write timed out".into()),
                }
                idle.as_mut().reset(Instant::now() + config.idle_timeout);
            }
            () = &mut idle => return Ok("idle timeout".into()),
        }
    }
}
