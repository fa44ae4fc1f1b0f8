//! The transport layer over real sockets on the loopback (port 0 everywhere).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serc_runtime::transport::{
    Handler, Incoming, Listen, Outgoing, Server, ServerConfig, ServerHandle, StartError, TcpConfig, Transport,
    UdpLayout,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

const WAIT: Duration = Duration::from_secs(3);

fn any_v4() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn config(listens: Vec<Listen>) -> ServerConfig {
    ServerConfig {
        listens,
        workers: 2,
        tcp: TcpConfig { idle_timeout: Duration::from_secs(5), ..TcpConfig::default() },
        ..ServerConfig::default()
    }
}

/// A request with a body and a correct Content-Length.
fn message(method: &str, body: &str) -> String {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP client.example.com;branch=z9hG4bK1\r\n\
         Max-Forwards: 70\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Echoes every message back where it came from.
fn echo() -> Arc<dyn Handler> {
    Arc::new(|incoming: Incoming| vec![incoming.reply(incoming.bytes.clone())])
}

/// Echoes, and hands every message to the test.
fn recording() -> (Arc<dyn Handler>, mpsc::UnboundedReceiver<Incoming>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |incoming: Incoming| {
        let _ = tx.send(incoming.clone());
        vec![incoming.reply(incoming.bytes.clone())]
    };
    (Arc::new(handler), rx)
}

async fn start(config: ServerConfig, handler: Arc<dyn Handler>) -> ServerHandle {
    Server::start(config, handler).await.expect("the server starts")
}

async fn udp_round_trip(client: &UdpSocket, server: SocketAddr, payload: &[u8]) -> (Vec<u8>, SocketAddr) {
    client.send_to(payload, server).await.unwrap();
    let mut buf = vec![0; 70_000];
    let (n, from) = timeout(WAIT, client.recv_from(&mut buf)).await.expect("a reply in time").unwrap();
    buf.truncate(n);
    (buf, from)
}

/// Reads exactly `len` bytes.
async fn read_n(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    timeout(WAIT, stream.read_exact(&mut buf)).await.expect("data in time").unwrap();
    buf
}

/// Waits until the server closes the connection (EOF or reset), discarding data.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0; 1024];
    let result = timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    result.is_ok()
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..300 {
        if condition() {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_echo_in_both_layouts() {
    // Both receive loops: one datagram per system call, and batches (the default).
    let layouts = [UdpLayout::SocketPerWorker, UdpLayout::SharedSocket];
    for (layout, udp_batch) in layouts.into_iter().flat_map(|l| [(l, 1), (l, ServerConfig::default().udp_batch)]) {
        let config = ServerConfig { udp_layout: layout, udp_batch, ..config(vec![Listen::udp(any_v4())]) };
        let server = start(config, echo()).await;
        let layout = (layout, udp_batch);
        let addr = server.local_addr(Transport::Udp).unwrap();
        assert_ne!(addr.port(), 0);
        // Several clients (several source ports) so that every socket of the
        // per-worker layout is likely to be hit.
        for i in 0..8 {
            let client = UdpSocket::bind(any_v4()).await.unwrap();
            let payload = message("OPTIONS", &format!("n={i}"));
            let (reply, from) = udp_round_trip(&client, addr, payload.as_bytes()).await;
            assert_eq!(reply, payload.as_bytes(), "{layout:?}");
            assert_eq!(from, addr, "the reply leaves from the listen ({layout:?})");
        }
        // One client, one datagram at a time: each lands on the same socket
        // after a batch of one drained it, and must still wake its worker.
        let client = UdpSocket::bind(any_v4()).await.unwrap();
        for i in 0..20 {
            let payload = message("OPTIONS", &format!("again={i}"));
            let (reply, _) = udp_round_trip(&client, addr, payload.as_bytes()).await;
            assert_eq!(reply, payload.as_bytes(), "{layout:?}");
        }
        // The largest datagram the loopback carries over IPv4.
        let client = UdpSocket::bind(any_v4()).await.unwrap();
        let big = vec![b'x'; 65_507];
        let (reply, _) = udp_round_trip(&client, addr, &big).await;
        assert_eq!(reply.len(), big.len(), "{layout:?}");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_batched_receive_and_send() {
    // recvmmsg/sendmmsg (udp_batch > 1; elsewhere than Linux the usual loop):
    // a burst of distinct datagrams from several clients, each handled exactly
    // once and answered exactly once from the right address; every tenth
    // answered from a second listen (not the worker's socket: not in the
    // sendmmsg batch); the largest IPv4 datagram amid small ones, whole.
    const CLIENTS: usize = 4;
    const EACH: usize = 50;
    for layout in [UdpLayout::SocketPerWorker, UdpLayout::SharedSocket] {
        let (tx, mut seen) = mpsc::unbounded_channel();
        let second = Arc::new(std::sync::OnceLock::<SocketAddr>::new());
        let handler = {
            let second = second.clone();
            move |incoming: Incoming| {
                let _ = tx.send((incoming.src, incoming.local, incoming.bytes.clone()));
                let mut out = incoming.reply(incoming.bytes.clone());
                if incoming.bytes.starts_with(b"FROM-SECOND") {
                    out.from_local = second.get().copied();
                }
                vec![out]
            }
        };
        let config = ServerConfig {
            udp_layout: layout,
            udp_batch: 16,
            udp_recv_buffer: Some(1 << 20),
            ..config(vec![Listen::udp(any_v4()), Listen::udp(any_v4())])
        };
        let server = start(config, Arc::new(handler)).await;
        let (addr, second_addr) = (server.listens()[0].addr, server.listens()[1].addr);
        second.set(second_addr).unwrap();

        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let socket = UdpSocket::bind(any_v4()).await.unwrap();
            let payloads: Vec<String> = (0..EACH)
                .map(|i| {
                    let kind = if i % 10 == 3 { "FROM-SECOND" } else { "OPTIONS" };
                    format!("{kind} client={c} n={i}")
                })
                .collect();
            clients.push((socket, payloads));
        }
        // Every client's burst at once, without waiting for answers.
        burst(&clients, addr).await;
        let mut expected_seen = Vec::new();
        for (socket, payloads) in &clients {
            let src = socket.local_addr().unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0; 2048];
            for _ in 0..payloads.len() {
                let (n, from) = timeout(WAIT, socket.recv_from(&mut buf)).await.expect("every answer").unwrap();
                let reply = String::from_utf8(buf[..n].to_vec()).unwrap();
                let want = if reply.starts_with("FROM-SECOND") { second_addr } else { addr };
                assert_eq!(from, want, "{layout:?}: {reply} from the wrong address");
                got.push(reply);
            }
            got.sort();
            let mut want = payloads.clone();
            want.sort();
            assert_eq!(got, want, "{layout:?}: every answer once, nothing else");
            expected_seen.extend(payloads.iter().map(|p| (src, p.clone())));
        }
        let mut handled = Vec::new();
        while let Ok(Some((src, local, bytes))) = timeout(Duration::from_millis(200), seen.recv()).await {
            assert_eq!(local, addr, "{layout:?}");
            handled.push((src, String::from_utf8(bytes.to_vec()).unwrap()));
        }
        handled.sort();
        expected_seen.sort();
        assert_eq!(handled, expected_seen, "{layout:?}: every datagram handled exactly once, with its source");
        for (socket, _) in &clients {
            let mut buf = [0; 64];
            assert!(socket.try_recv_from(&mut buf).is_err(), "{layout:?}: no duplicate answer");
        }

        // The largest datagram IPv4 carries, between two small ones sent at once.
        let client = UdpSocket::bind(any_v4()).await.unwrap();
        let big: Vec<u8> = (0..65_507u32).map(|i| b'a' + (i % 26) as u8).collect();
        client.send_to(b"OPTIONS before", addr).await.unwrap();
        client.send_to(&big, addr).await.unwrap();
        client.send_to(b"OPTIONS after", addr).await.unwrap();
        let mut replies = Vec::new();
        let mut buf = vec![0; 70_000];
        for _ in 0..3 {
            let (n, from) = timeout(WAIT, client.recv_from(&mut buf)).await.expect("every answer").unwrap();
            assert_eq!(from, addr);
            replies.push(buf[..n].to_vec());
        }
        replies.sort_by_key(Vec::len);
        assert_eq!(replies, [b"OPTIONS after".to_vec(), b"OPTIONS before".to_vec(), big.clone()], "{layout:?}");
        let mut sizes = Vec::new();
        for _ in 0..3 {
            sizes.push(timeout(WAIT, seen.recv()).await.unwrap().unwrap().2.len());
        }
        sizes.sort();
        assert_eq!(sizes, [13, 14, 65_507], "{layout:?}: the handler got each whole");
        server.shutdown().await;
    }
}

/// Sends every client's payloads to `server`, the clients concurrently.
async fn burst(clients: &[(UdpSocket, Vec<String>)], server: SocketAddr) {
    let sends = clients.iter().map(|(socket, payloads)| async move {
        for payload in payloads {
            socket.send_to(payload.as_bytes(), server).await.unwrap();
        }
    });
    futures_util::future::join_all(sends).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_listens_and_from_local() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let second = Arc::new(std::sync::OnceLock::<SocketAddr>::new());
    let handler = {
        let second = second.clone();
        move |incoming: Incoming| {
            let _ = tx.send((incoming.transport, incoming.local));
            let mut out = incoming.reply(incoming.bytes.clone());
            if incoming.bytes.starts_with(b"FROM-SECOND") {
                out.from_local = second.get().copied();
            }
            vec![out]
        }
    };
    let listens = vec![Listen::udp(any_v4()), Listen::udp(any_v4()), Listen::tcp(any_v4())];
    let server = start(config(listens), Arc::new(handler)).await;
    let bound = server.listens().to_vec();
    assert_eq!(bound.len(), 3);
    assert_eq!(bound.iter().map(|l| l.transport).collect::<Vec<_>>(), [Transport::Udp, Transport::Udp, Transport::Tcp]);
    assert!(bound.iter().all(|l| l.addr.port() != 0));
    second.set(bound[1].addr).unwrap();

    let client = UdpSocket::bind(any_v4()).await.unwrap();
    for listen in &bound[..2] {
        let (_, from) = udp_round_trip(&client, listen.addr, b"HELLO").await;
        assert_eq!(from, listen.addr);
        assert_eq!(seen.recv().await.unwrap(), (Transport::Udp, listen.addr));
    }
    // Received on the first listen, sent from the second.
    let (_, from) = udp_round_trip(&client, bound[0].addr, b"FROM-SECOND").await;
    assert_eq!(from, bound[1].addr);
    assert_eq!(seen.recv().await.unwrap(), (Transport::Udp, bound[0].addr));

    let mut stream = TcpStream::connect(bound[2].addr).await.unwrap();
    let msg = message("OPTIONS", "");
    stream.write_all(msg.as_bytes()).await.unwrap();
    assert_eq!(read_n(&mut stream, msg.len()).await, msg.as_bytes());
    assert_eq!(seen.recv().await.unwrap(), (Transport::Tcp, bound[2].addr));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_two_messages_in_one_write() {
    let (handler, mut seen) = recording();
    let server = start(config(vec![Listen::tcp(any_v4())]), handler).await;
    let mut stream = TcpStream::connect(server.local_addr(Transport::Tcp).unwrap()).await.unwrap();
    let (a, b) = (message("OPTIONS", ""), message("MESSAGE", "hello"));
    stream.write_all(format!("{a}{b}").as_bytes()).await.unwrap();
    let first = seen.recv().await.unwrap();
    let second = seen.recv().await.unwrap();
    assert_eq!(first.bytes, a.as_bytes());
    assert_eq!(second.bytes, b.as_bytes());
    assert_eq!(first.transport, Transport::Tcp);
    assert_eq!(first.src, stream.local_addr().unwrap());
    assert!(first.conn.is_some());
    assert_eq!(first.conn, second.conn);
    // Both replies on the same connection, in order.
    assert_eq!(read_n(&mut stream, a.len() + b.len()).await, format!("{a}{b}").as_bytes());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_split_message_with_body_and_keep_alives() {
    let (handler, mut seen) = recording();
    let server = start(config(vec![Listen::tcp(any_v4())]), handler).await;
    let mut stream = TcpStream::connect(server.local_addr(Transport::Tcp).unwrap()).await.unwrap();
    let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n";
    let msg = message("INVITE", body);
    // Keep-alives first (RFC 5626's double CRLF), then the message in pieces
    // cut inside the start line, the empty line and the body.
    let input = format!("\r\n\r\n{msg}\r\n\r\n").into_bytes();
    let head_end = 4 + msg.find("\r\n\r\n").unwrap();
    let last = input.len() - 10;
    for piece in [&input[..4], &input[4..10], &input[10..head_end + 2], &input[head_end + 2..last]] {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.try_recv().is_err(), "nothing before the whole body");
    stream.write_all(&input[last..]).await.unwrap();
    let got = timeout(WAIT, seen.recv()).await.unwrap().unwrap();
    assert_eq!(got.bytes, msg.as_bytes(), "exactly the message: no keep-alives, the whole body");
    assert_eq!(read_n(&mut stream, msg.len()).await, msg.as_bytes());
    // Keep-alives after it are not a message, and the connection stays open.
    let next = message("OPTIONS", "");
    stream.write_all(next.as_bytes()).await.unwrap();
    assert_eq!(timeout(WAIT, seen.recv()).await.unwrap().unwrap().bytes, next.as_bytes());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_bad_framing_closes_the_connection() {
    let (handler, mut seen) = recording();
    let mut config = config(vec![Listen::tcp(any_v4())]);
    config.tcp.max_message_size = 2000;
    let server = start(config, handler).await;
    let addr = server.local_addr(Transport::Tcp).unwrap();
    let cases = [
        // RFC 4475 §3.1.2.3
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP c\r\nContent-Length: -999\r\n\r\nbody".to_string(),
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP c\r\nl: 12abc\r\n\r\nbody".to_string(),
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP c\r\n\r\n".to_string(),
        // Larger than the limit: a head without an end, and a large Content-Length.
        format!("INVITE sip:a@b SIP/2.0\r\nSubject: {}", "x".repeat(3000)),
        "INVITE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n".to_string(),
    ];
    for case in &cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(case.as_bytes()).await.unwrap();
        assert!(closed_by_server(&mut stream, WAIT).await, "not closed after {case:?}");
    }
    assert!(seen.try_recv().is_err(), "nothing reached the handler");
    eventually("every connection is gone", || server.tcp_connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_idle_timeout_closes() {
    let mut config = config(vec![Listen::tcp(any_v4())]);
    config.tcp.idle_timeout = Duration::from_millis(300);
    let server = start(config, echo()).await;
    let mut stream = TcpStream::connect(server.local_addr(Transport::Tcp).unwrap()).await.unwrap();
    // Activity keeps it open…
    for _ in 0..3 {
        sleep(Duration::from_millis(150)).await;
        let msg = message("OPTIONS", "");
        stream.write_all(msg.as_bytes()).await.unwrap();
        read_n(&mut stream, msg.len()).await;
    }
    // …silence closes it.
    let started = tokio::time::Instant::now();
    assert!(closed_by_server(&mut stream, WAIT).await);
    assert!(started.elapsed() >= Duration::from_millis(250), "closed too early: {:?}", started.elapsed());
    eventually("the connection is unregistered", || server.tcp_connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_cap() {
    let mut config = config(vec![Listen::tcp(any_v4())]);
    config.tcp.max_connections = 2;
    let server = start(config, echo()).await;
    let addr = server.local_addr(Transport::Tcp).unwrap();
    let msg = message("OPTIONS", "");
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(msg.as_bytes()).await.unwrap();
        read_n(&mut stream, msg.len()).await;
        open.push(stream);
    }
    assert_eq!(server.tcp_connections(), 2);
    for _ in 0..3 {
        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert!(closed_by_server(&mut refused, WAIT).await, "a third connection is closed");
    }
    // The first two still work; closing one makes room.
    for stream in &mut open {
        stream.write_all(msg.as_bytes()).await.unwrap();
        read_n(stream, msg.len()).await;
    }
    drop(open.pop());
    eventually("a slot is free", || server.tcp_connections() == 1).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(msg.as_bytes()).await.unwrap();
    assert_eq!(read_n(&mut stream, msg.len()).await, msg.as_bytes());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_requests_reuse_the_connection_to_the_destination() {
    // A new request (no ConnId) to the address a client connected from goes on
    // that connection (RFC 3261 §18.2.2).
    let handler = |incoming: Incoming| vec![Outgoing::new(Transport::Tcp, incoming.src, message("NOTIFY", "").into())];
    let server = start(config(vec![Listen::tcp(any_v4())]), Arc::new(handler)).await;
    let mut stream = TcpStream::connect(server.local_addr(Transport::Tcp).unwrap()).await.unwrap();
    stream.write_all(message("SUBSCRIBE", "").as_bytes()).await.unwrap();
    let notify = message("NOTIFY", "");
    assert_eq!(read_n(&mut stream, notify.len()).await, notify.as_bytes());
    assert_eq!(server.tcp_connections(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connects_out_and_reads_the_answer() {
    // A UDP request forwarded over TCP to a peer: the server connects, and the
    // peer's answer on that connection reaches the handler.
    let peer = TcpListener::bind(any_v4()).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let handler = move |incoming: Incoming| {
        let _ = tx.send(incoming.clone());
        match incoming.transport {
            Transport::Udp => vec![Outgoing::new(Transport::Tcp, peer_addr, incoming.bytes.clone())],
            _ => Vec::new(),
        }
    };
    let server = start(config(vec![Listen::udp(any_v4()), Listen::tcp(any_v4())]), Arc::new(handler)).await;
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    let request = message("INVITE", "sdp");
    client.send_to(request.as_bytes(), server.local_addr(Transport::Udp).unwrap()).await.unwrap();
    let (mut accepted, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
    assert_eq!(read_n(&mut accepted, request.len()).await, request.as_bytes());
    assert_eq!(seen.recv().await.unwrap().transport, Transport::Udp);
    let answer = "SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n";
    accepted.write_all(answer.as_bytes()).await.unwrap();
    let got = timeout(WAIT, seen.recv()).await.unwrap().unwrap();
    assert_eq!(got.bytes, answer.as_bytes());
    assert_eq!((got.transport, got.src), (Transport::Tcp, peer_addr));
    assert_eq!(got.local, server.local_addr(Transport::Tcp).unwrap(), "the listen it was opened from");
    assert!(got.conn.is_some());
    // A second request reuses the connection.
    client.send_to(request.as_bytes(), server.local_addr(Transport::Udp).unwrap()).await.unwrap();
    assert_eq!(read_n(&mut accepted, request.len()).await, request.as_bytes());
    assert_eq!(server.tcp_connections(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connect_failure_is_dropped_quietly() {
    // Nobody listens on the destination: the message is dropped, nothing panics,
    // nothing stays registered.
    let unused = TcpListener::bind(any_v4()).await.unwrap().local_addr().unwrap();
    let handler = move |incoming: Incoming| vec![Outgoing::new(Transport::Tcp, unused, incoming.bytes.clone())];
    let server = start(config(vec![Listen::udp(any_v4())]), Arc::new(handler)).await;
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    client.send_to(b"OPTIONS", server.local_addr(Transport::Udp).unwrap()).await.unwrap();
    sleep(Duration::from_millis(50)).await;
    eventually("the failed connection is unregistered", || server.tcp_connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_tcp_client_is_cleaned_up() {
    let server = start(config(vec![Listen::tcp(any_v4())]), echo()).await;
    let mut stream = TcpStream::connect(server.local_addr(Transport::Tcp).unwrap()).await.unwrap();
    let msg = message("OPTIONS", "");
    stream.write_all(msg.as_bytes()).await.unwrap();
    read_n(&mut stream, msg.len()).await;
    assert_eq!(server.tcp_connections(), 1);
    // Gone with a request half sent.
    stream.write_all(b"INVITE sip:x SIP/2.0\r\n").await.unwrap();
    drop(stream);
    eventually("the connection is unregistered", || server.tcp_connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_does_not_stop_the_worker() {
    let handler = |incoming: Incoming| {
        assert!(!incoming.bytes.starts_with(b"PANIC"), "the script failed");
        vec![incoming.reply(incoming.bytes.clone())]
    };
    let server = start(ServerConfig { workers: 1, ..config(vec![Listen::udp(any_v4())]) }, Arc::new(handler)).await;
    let addr = server.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    client.send_to(b"PANIC", addr).await.unwrap();
    let (reply, _) = udp_round_trip(&client, addr, b"OPTIONS").await;
    assert_eq!(reply, b"OPTIONS");
    server.shutdown().await;
}

/// Appends its answer to the worker's vector (`handle_into`, as the proxy does):
/// a message it first answers, then panics on.
struct HalfThenPanic;

impl Handler for HalfThenPanic {
    fn handle(&self, incoming: Incoming) -> Vec<Outgoing> {
        let mut out = Vec::new();
        self.handle_into(incoming, &mut out);
        out
    }

    fn handle_into(&self, incoming: Incoming, out: &mut Vec<Outgoing>) {
        out.push(incoming.reply(Bytes::from_static(b"half")));
        assert!(!incoming.bytes.starts_with(b"PANIC"), "the script failed");
        out.pop();
        out.push(incoming.reply(incoming.bytes.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_panicking_handler_queued_is_sent() {
    for listen in [Listen::udp(any_v4()), Listen::tcp(any_v4())] {
        let transport = listen.transport;
        let server = start(ServerConfig { workers: 1, ..config(vec![listen]) }, Arc::new(HalfThenPanic)).await;
        let addr = server.local_addr(transport).unwrap();
        let answer = match transport {
            Transport::Udp => {
                let client = UdpSocket::bind(any_v4()).await.unwrap();
                client.send_to(b"PANIC", addr).await.unwrap();
                udp_round_trip(&client, addr, b"OPTIONS").await.0
            }
            _ => {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let (panic, options) = (message("PANIC", ""), message("OPTIONS", ""));
                stream.write_all(format!("{panic}{options}").as_bytes()).await.unwrap();
                read_n(&mut stream, options.len()).await
            }
        };
        // The first thing back answers the second message: the "half" answer
        // queued before the panic never left.
        let expected =
            if transport == Transport::Udp { b"OPTIONS".to_vec() } else { message("OPTIONS", "").into_bytes() };
        assert_eq!(String::from_utf8_lossy(&answer), String::from_utf8_lossy(&expected), "{transport}");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_joins_everything_and_frees_the_sockets() {
    struct Counting(AtomicUsize);
    impl Handler for Counting {
        fn handle(&self, incoming: Incoming) -> Vec<Outgoing> {
            self.0.fetch_add(1, Ordering::Relaxed);
            vec![incoming.reply(incoming.bytes.clone())]
        }
    }
    let handler = Arc::new(Counting(AtomicUsize::new(0)));
    let server = start(config(vec![Listen::udp(any_v4()), Listen::tcp(any_v4())]), handler.clone()).await;
    let (udp, tcp) = (server.local_addr(Transport::Udp).unwrap(), server.local_addr(Transport::Tcp).unwrap());
    let sender = server.sender();
    // An open connection, idle, and one with a message half sent.
    let mut idle = TcpStream::connect(tcp).await.unwrap();
    let msg = message("OPTIONS", "");
    idle.write_all(msg.as_bytes()).await.unwrap();
    read_n(&mut idle, msg.len()).await;
    let mut partial = TcpStream::connect(tcp).await.unwrap();
    partial.write_all(b"INVITE sip:a SIP/2.0\r\n").await.unwrap();
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    udp_round_trip(&client, udp, b"OPTIONS").await;
    assert_eq!(handler.0.load(Ordering::Relaxed), 2);

    timeout(Duration::from_secs(2), server.shutdown()).await.expect("shutdown is prompt");
    // Every task has ended: nothing holds the handler any more.
    assert_eq!(Arc::strong_count(&handler), 1);
    assert!(closed_by_server(&mut idle, WAIT).await);
    assert!(closed_by_server(&mut partial, WAIT).await);
    assert!(TcpStream::connect(tcp).await.is_err(), "nothing listens any more");
    // The ports are free again.
    drop(std::net::UdpSocket::bind(udp).expect("the UDP port is free"));
    drop(std::net::TcpListener::bind(tcp).expect("the TCP port is free"));
    // Sending after shutdown is a logged no-op.
    sender.send(Outgoing::new(Transport::Udp, client.local_addr().unwrap(), Bytes::from_static(b"late"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_sends_from_outside_the_handler() {
    let server = start(config(vec![Listen::udp(any_v4())]), echo()).await;
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    let out = Outgoing::new(Transport::Udp, client.local_addr().unwrap(), Bytes::from_static(b"retransmission"));
    server.sender().send(out).await;
    let mut buf = [0; 100];
    let (n, from) = timeout(WAIT, client.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"retransmission");
    assert_eq!(from, server.local_addr(Transport::Udp).unwrap());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback() {
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    if let Err(error) = std::net::UdpSocket::bind(v6) {
        println!("skipped: cannot bind [::1] ({error})");
        return;
    }
    let server = start(config(vec![Listen::udp(v6), Listen::tcp(v6), Listen::udp(any_v4())]), echo()).await;
    let udp = server.local_addr(Transport::Udp).unwrap();
    assert!(udp.is_ipv6());
    let client = UdpSocket::bind(v6).await.unwrap();
    let (reply, from) = udp_round_trip(&client, udp, b"OPTIONS").await;
    assert_eq!((reply.as_slice(), from), (&b"OPTIONS"[..], udp));
    // An IPv4 destination leaves from the IPv4 listen, whatever from_local says.
    let v4_client = UdpSocket::bind(any_v4()).await.unwrap();
    let mut out = Outgoing::new(Transport::Udp, v4_client.local_addr().unwrap(), Bytes::from_static(b"hi"));
    out.from_local = Some(udp);
    server.sender().send(out).await;
    let mut buf = [0; 10];
    let (_, from) = timeout(WAIT, v4_client.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(from, server.listens()[2].addr);

    let mut stream = TcpStream::connect(server.local_addr(Transport::Tcp).unwrap()).await.unwrap();
    let msg = message("OPTIONS", "");
    stream.write_all(msg.as_bytes()).await.unwrap();
    assert_eq!(read_n(&mut stream, msg.len()).await, msg.as_bytes());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_errors_are_reported() {
    let tls = Listen { transport: Transport::Tls, addr: any_v4() };
    let error = Server::start(config(vec![Listen::udp(any_v4()), tls]), echo()).await.err().unwrap();
    assert!(matches!(error, StartError::Unsupported(_)));
    assert_eq!(error.to_string(), "cannot listen on tls:127.0.0.1:0: TLS is not supported yet");

    assert!(matches!(Server::start(config(vec![]), echo()).await.err().unwrap(), StartError::NoListens));

    // A port taken by someone else (without SO_REUSEPORT) cannot be bound, and
    // nothing is left bound by the listens before it.
    let taken = std::net::UdpSocket::bind(any_v4()).unwrap();
    let first = std::net::UdpSocket::bind(any_v4()).unwrap().local_addr().unwrap();
    let listens = vec![Listen::udp(first), Listen::udp(taken.local_addr().unwrap())];
    let error = Server::start(config(listens), echo()).await.err().unwrap();
    assert!(matches!(error, StartError::Bind { .. }), "{error}");
    drop(std::net::UdpSocket::bind(first).expect("the first listen was released"));
}
