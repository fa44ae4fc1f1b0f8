//! Starting and stopping a server, and sending.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use std::{fmt, io};

use tokio::sync::{watch, Notify, Semaphore};

use super::tcp::{self, Registry};
use super::udp::{self, UdpOut};
use super::{Handler, Incoming, Listen, Outgoing, Transport};

/// How the workers of a UDP listen share it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UdpLayout {
    /// One socket per worker, all bound to the listen's address with
    /// `SO_REUSEPORT`: the kernel spreads datagrams over them by a hash of the
    /// source and destination (so a few busy peers may land on one worker).
    /// Linux and Android only; elsewhere the server falls back to
    /// [`UdpLayout::SharedSocket`] with a warning.
    #[default]
    SocketPerWorker,
    /// One socket per listen, every worker receiving from it.
    SharedSocket,
}

/// TCP settings.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Open connections, accepted and opened together; beyond it new ones are
    /// closed at once (accepted) or not opened (the message is dropped).
    pub max_connections: usize,
    /// A connection with nothing read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Opening a connection.
    pub connect_timeout: Duration,
    /// Writing one message; a peer that does not read is closed after it.
    pub send_timeout: Duration,
    /// A message (head and body) larger than this closes the connection.
    pub max_message_size: usize,
    /// Messages waiting to be written on one connection; beyond it they are dropped.
    pub send_queue: usize,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            max_connections: 2048,
            idle_timeout: Duration::from_secs(180),
            connect_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            max_message_size: 64 * 1024,
            send_queue: 128,
        }
    }
}

/// What to listen on and how many workers (`listen=`, `children=`).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listens: Vec<Listen>,
    /// Receive tasks per UDP listen.
    pub workers: usize,
    pub udp_layout: UdpLayout,
    /// `SO_RCVBUF` the UDP sockets are raised to (never lowered; the kernel
    /// caps it at `net.core.rmem_max`, and Linux doubles it); `None`: the
    /// system's default.
    pub udp_recv_buffer: Option<usize>,
    /// Datagrams a UDP worker receives per system call (`recvmmsg`), the
    /// replies that leave from its own socket then sent together (`sendmmsg`).
    /// 1 (or 0): one `recvfrom` and one `sendto` per datagram. Capped at 64;
    /// Linux and Android only, elsewhere always 1. Each worker keeps a receive
    /// area of `udp_batch` × 64 KiB. Default 32: less server CPU per datagram
    /// and as much or more throughput than 1 in every measurement (the figures
    /// are in `transport/udp.rs`).
    pub udp_batch: usize,
    pub tcp: TcpConfig,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listens: Vec::new(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            udp_layout: UdpLayout::default(),
            udp_recv_buffer: None,
            udp_batch: 32,
            tcp: TcpConfig::default(),
        }
    }
}

/// Why a server did not start. Nothing is left bound or running.
#[derive(Debug)]
pub enum StartError {
    NoListens,
    NoWorkers,
    /// A `tls:` listen: TLS is not implemented yet.
    Unsupported(Listen),
    Bind {
        listen: Listen,
        source: io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoListens => f.write_str("nothing to listen on"),
            StartError::NoWorkers => f.write_str("the number of workers must be at least 1"),
            StartError::Unsupported(listen) => {
                write!(f, "cannot listen on {listen}: {} is not supported yet", listen.transport)
            }
            StartError::Bind { listen, source } => write!(f, "cannot listen on {listen}: {source}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Starts servers.
pub struct Server;

impl Server {
    /// Binds every listen and starts the workers on the current tokio runtime
    /// (a multi-threaded one spreads the workers over its threads). Fails, with
    /// nothing left bound, if a listen cannot be bound. The same as
    /// [`Server::bind`] then [`Bound::start`].
    pub async fn start(config: ServerConfig, handler: Arc<dyn Handler>) -> Result<ServerHandle, StartError> {
        Ok(Server::bind(config).await?.start(handler).await)
    }

    /// Binds every listen, starting nothing yet: the ports chosen for port 0
    /// are known ([`Bound::listens`]) before the handler is built, so that it
    /// can know its own sockets. Fails, with nothing left bound, if a listen
    /// cannot be bound. The sockets are registered with the current tokio
    /// runtime.
    pub async fn bind(config: ServerConfig) -> Result<Bound, StartError> {
        if config.listens.is_empty() {
            return Err(StartError::NoListens);
        }
        if config.workers == 0 {
            return Err(StartError::NoWorkers);
        }
        if let Some(listen) = config.listens.iter().find(|l| matches!(l.transport, Transport::Tls | Transport::Sctp)) {
            return Err(StartError::Unsupported(*listen));
        }
        let layout = udp::effective_layout(config.udp_layout);
        let mut bound = Vec::with_capacity(config.listens.len());
        let mut udp_groups = Vec::new();
        let mut tcp_listeners = Vec::new();
        for listen in &config.listens {
            let error = |source| StartError::Bind { listen: *listen, source };
            let local = match listen.transport {
                Transport::Udp => {
                    let (local, sockets) =
                        udp::bind(listen.addr, config.workers, layout, config.udp_recv_buffer).map_err(error)?;
                    udp_groups.push((local, sockets));
                    local
                }
                Transport::Tcp => {
                    let listener = tcp::bind(listen.addr).map_err(error)?;
                    let local = listener.local_addr().map_err(error)?;
                    tcp_listeners.push((local, listener));
                    local
                }
                Transport::Tls | Transport::Sctp => unreachable!("refused above"),
            };
            bound.push(Listen { transport: listen.transport, addr: local });
        }
        Ok(Bound { config, layout, listens: bound, udp_groups, tcp_listeners })
    }
}

/// A server's sockets, bound, with nothing running yet ([`Server::bind`]).
/// Dropping it closes them.
pub struct Bound {
    config: ServerConfig,
    layout: UdpLayout,
    listens: Vec<Listen>,
    udp_groups: Vec<(SocketAddr, Vec<Arc<udp::UdpSock>>)>,
    tcp_listeners: Vec<(SocketAddr, tokio::net::TcpListener)>,
}

impl Bound {
    /// The listens as bound (port 0 replaced by the port chosen), in the order
    /// of the configuration.
    pub fn listens(&self) -> &[Listen] {
        &self.listens
    }

    /// Starts the workers on the current tokio runtime, with `handler`.
    pub async fn start(self, handler: Arc<dyn Handler>) -> ServerHandle {
        let Bound { config, layout, listens: bound, udp_groups, tcp_listeners } = self;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            handler,
            udp: udp_groups
                .iter()
                .map(|(local, sockets)| UdpOut { local: *local, socket: sockets[0].clone() })
                .collect(),
            tcp_listens: tcp_listeners.iter().map(|(local, _)| *local).collect(),
            conns: Registry::default(),
            conn_slots: Arc::new(Semaphore::new(config.tcp.max_connections.min(Semaphore::MAX_PERMITS))),
            refused: Throttle::default(),
            tcp: config.tcp,
            shutdown: shutdown_rx,
            tasks: Tracker::default(),
        });
        shared.handler.clone().started(Sender(Arc::downgrade(&shared)));
        for (local, sockets) in udp_groups {
            for w in 0..config.workers {
                let socket = sockets[w % sockets.len()].clone();
                shared.tasks.spawn(udp::worker(shared.clone(), UdpOut { local, socket }, config.udp_batch));
            }
        }
        for (local, listener) in tcp_listeners {
            shared.tasks.spawn(tcp::accept_loop(shared.clone(), listener, local));
        }
        tracing::info!(
            listens = %bound.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
            workers = config.workers,
            udp_layout = ?layout,
            udp_batch = udp::effective_batch(config.udp_batch),
            "SIP server started"
        );
        ServerHandle { shared, listens: bound, shutdown: shutdown_tx }
    }
}

/// A running server. Dropping it stops the tasks without waiting for them;
/// [`ServerHandle::shutdown`] waits.
pub struct ServerHandle {
    shared: Arc<Shared>,
    listens: Vec<Listen>,
    shutdown: watch::Sender<bool>,
}

impl ServerHandle {
    /// The listens as bound (port 0 replaced by the port chosen), in the order
    /// of the configuration.
    pub fn listens(&self) -> &[Listen] {
        &self.listens
    }

    /// The first bound address of a transport.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.listens.iter().find(|l| l.transport == transport).map(|l| l.addr)
    }

    /// Sends from outside the handler (timers, retransmissions).
    pub fn sender(&self) -> Sender {
        Sender(Arc::downgrade(&self.shared))
    }

    /// Open TCP connections, including those being opened.
    pub fn tcp_connections(&self) -> usize {
        self.shared.conns.len()
    }

    /// Stops receiving, accepting and connecting, closes every connection and
    /// socket, and returns once every task of the server has ended.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        tracing::info!("SIP server stopped");
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        self.shared.tasks.close();
    }
}

/// Sends messages through a server, from outside its handler. It does not
/// keep the server alive: once the server has shut down, messages are dropped.
#[derive(Clone)]
pub struct Sender(Weak<Shared>);

impl Sender {
    /// Sends (UDP), or queues on a connection (TCP). Errors are logged.
    pub async fn send(&self, out: Outgoing) {
        match self.0.upgrade() {
            Some(shared) if !shared.is_stopping() => shared.send(out, None).await,
            _ => tracing::debug!(dst = %out.dst, "server stopped: message dropped"),
        }
    }
}

/// What every task of a server shares.
pub(crate) struct Shared {
    handler: Arc<dyn Handler>,
    /// One sending socket per UDP listen.
    pub(crate) udp: Vec<UdpOut>,
    pub(crate) tcp_listens: Vec<SocketAddr>,
    pub(crate) tcp: TcpConfig,
    pub(crate) conns: Registry,
    pub(crate) conn_slots: Arc<Semaphore>,
    refused: Throttle,
    shutdown: watch::Receiver<bool>,
    pub(crate) tasks: Tracker,
}

impl Shared {
    /// Runs the handler, appending what to send to `out`; a panic in it is
    /// logged and nothing of that message is sent.
    pub(crate) fn handle(&self, incoming: Incoming, out: &mut Vec<Outgoing>) {
        let (transport, src) = (incoming.transport, incoming.src);
        let before = out.len();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.handler.handle_into(incoming, out))) {
            out.truncate(before);
            let what = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("?");
            tracing::error!(%transport, %src, "the handler panicked: {what}; message dropped");
        }
    }

    /// Sends one message; `own` is the calling UDP worker's socket, used when
    /// the message leaves from its listen.
    pub(crate) async fn send(self: &Arc<Self>, out: Outgoing, own: Option<&UdpOut>) {
        match out.transport {
            Transport::Udp => udp::send(self, out, own).await,
            Transport::Tcp => tcp::send(self, out),
            Transport::Tls | Transport::Sctp => {
                tracing::error!(dst = %out.dst, transport = %out.transport, "not supported yet: message dropped")
            }
        }
    }

    /// Completes when the server is shutting down.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.clone();
        async move {
            // An error means the handle is gone: stop too.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A connection refused at the limit: logged at most once a second.
    pub(crate) fn refused(&self, peer: SocketAddr, what: &str) {
        if let Some(more) = self.refused.hit(Instant::now()) {
            tracing::warn!(
                %peer,
                limit = self.tcp.max_connections,
                "TCP connection limit reached: {what} refused ({more} more in the last second)"
            );
        }
    }
}

/// Counts a server's tasks, so that shutdown can wait for all of them, those
/// started after it included (connections are spawned as they come).
#[derive(Default)]
pub(crate) struct Tracker {
    inner: Arc<TrackerInner>,
}

#[derive(Default)]
struct TrackerInner {
    active: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

struct TaskGuard(Arc<TrackerInner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tracker {
    /// Spawns a task on the current runtime, unless the server is stopping
    /// (then returns false and drops the future).
    pub(crate) fn spawn<F>(&self, future: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.inner.closed.load(Ordering::Acquire) {
            return false;
        }
        self.inner.active.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(self.inner.clone());
        tokio::spawn(async move {
            let _guard = guard;
            future.await;
        });
        true
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Waits until no task is running.
    async fn wait(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.inner.active.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// At most one event a second gets through; the others are counted.
#[derive(Default)]
pub(crate) struct Throttle {
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// Whether to log this event, and how many were suppressed since the last one logged.
    pub(crate) fn hit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (last, suppressed) = &mut *state;
        match last {
            Some(at) if now.saturating_duration_since(*at) < Duration::from_secs(1) => {
                *suppressed += 1;
                None
            }
            _ => {
                *last = Some(now);
                Some(std::mem::take(suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_a_second_through() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(throttle.hit(t0), Some(0));
        assert_eq!(throttle.hit(t0 + Duration::from_millis(10)), None);
        assert_eq!(throttle.hit(t0 + Duration::from_millis(999)), None);
        assert_eq!(throttle.hit(t0 + Duration::from_millis(1000)), Some(2));
        assert_eq!(throttle.hit(t0 + Duration::from_millis(1500)), None);
        assert_eq!(throttle.hit(t0 + Duration::from_millis(2500)), Some(1));
    }
}
