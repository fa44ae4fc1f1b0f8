//! The embedded proxy started in-process on 127.0.0.1 (a free port), driven
//! over real UDP: an OPTIONS from a blocked user is refused by the config's
//! call of the crate's own Rust function, one from anyone else is answered.

use std::net::SocketAddr;
use std::time::Duration;

use serc_runtime::launch::Running;
use serc_runtime::proxy::Transport;
use tokio::net::UdpSocket;

async fn start() -> (Running, SocketAddr) {
    let listen = "udp:127.0.0.1:0".parse().expect("a listen");
    let running = serc_embed_example::proxy().listen(listen).workers(1).start().await.expect("the proxy starts");
    let addr = running
        .local_addrs()
        .into_iter()
        .find_map(|(t, addr)| (t == Transport::Udp).then_some(addr))
        .expect("a UDP socket");
    (running, addr)
}

/// Sends an OPTIONS from `user` and returns the status line of the answer.
async fn options(proxy: SocketAddr, user: &str, n: u32) -> String {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = client.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:{proxy} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-embed-{user}-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{proxy}>\r\n\
         From: <sip:{user}@example.com>;tag=embed-{n}\r\n\
         Call-ID: embed-{user}-{n}@{me}\r\n\
         CSeq: {n} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    client.send_to(request.as_bytes(), proxy).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let (len, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no answer to the OPTIONS from {user}"))
        .unwrap();
    assert_eq!(from, proxy, "the answer comes from the proxy's socket");
    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_check_decides_the_answer() {
    let (running, proxy) = start().await;
    assert_eq!(options(proxy, "mallory", 1).await, "SIP/2.0 403 Fraud suspected");
    assert_eq!(options(proxy, "alice", 1).await, "SIP/2.0 200 OK");
    // The config's limit is 10 requests per user: the 11th is refused.
    for n in 1..=10 {
        assert_eq!(options(proxy, "bob", n).await, "SIP/2.0 200 OK", "request {n} of bob");
    }
    assert_eq!(options(proxy, "bob", 11).await, "SIP/2.0 403 Fraud suspected");
    running.shutdown().await;
}
