//! A stateless relay on real sockets (127.0.0.1, ephemeral ports): a route
//! written the way the code generator writes them (maxfwd, sl, forward),
//! driven by UDP and TCP clients and a UDP "UAS", checking what comes out the
//! other side — byte for byte where the RFCs fix it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{core, maxfwd, sl};
use serc_runtime::proxy::{Local, Transport as ProxyTransport};
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow};
use serc_runtime::sip::{Framing, HeaderName, Message, Method};
use serc_runtime::transport::{Listen, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// `route { if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
///          if (method == "OPTIONS" && uri == myself) { sl_send_reply("200", "OK"); exit; }
///          $du = "sip:UAS"; forward(); }`
struct Relay {
    uas: SocketAddr,
}

impl Script for Relay {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        let rc = maxfwd::mf_process_maxfwd_header(ctx, 10);
        if ctx.ret(rc) < 0 {
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(483), &Format::literal("Too Many Hops"));
            return Flow::Exit;
        }
        let to_me = serc_runtime::sip::uri::parse(ctx.request_uri()).is_ok_and(|u| ctx.is_myself(u.host_text, u.port));
        if ctx.msg.method() == Some(Method::Options) && to_me {
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(200), &Format::literal("OK"));
            return Flow::Exit;
        }
        ctx.dst_uri = Some(format!("sip:{}", self.uas));
        core::forward_0(ctx);
        Flow::Exit
    }
}

struct Setup {
    handle: serc_runtime::transport::ServerHandle,
    udp: SocketAddr,
    tcp: SocketAddr,
    uas: UdpSocket,
}

async fn start() -> Setup {
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    // Bind first to learn the ports, then describe them to the proxy.
    let probe_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let probe_tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (udp, tcp) = (probe_udp.local_addr().unwrap(), probe_tcp.local_addr().unwrap());
    drop((probe_udp, probe_tcp));
    let config = Config {
        locals: vec![Local::new(ProxyTransport::Udp, udp), Local::new(ProxyTransport::Tcp, tcp)],
        ..Config::default()
    };
    let proxy = Arc::new(Proxy::new(Relay { uas: uas_addr }, config));
    let server_config =
        ServerConfig { listens: vec![Listen::udp(udp), Listen::tcp(tcp)], workers: 2, ..ServerConfig::default() };
    let handle = Server::start(server_config, proxy).await.expect("the proxy starts");
    Setup { handle, udp, tcp, uas }
}

fn invite(client: SocketAddr, max_forwards: u32, branch: &str) -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP client.atlanta.example.com:{port};branch={branch};rport\r\n\
         Max-Forwards: {max_forwards}\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@{client}\r\n\
         CSeq: 314159 INVITE\r\n\
         Contact: <sip:alice@{client}>\r\n\
         Content-Length: 0\r\n\r\n",
        port = client.port(),
    )
}

async fn recv(sock: &UdpSocket) -> (Message, SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("a message within 5 s")
        .unwrap();
    (Message::parse(Bytes::copy_from_slice(&buf[..n]), Framing::Datagram).expect("it parses"), from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_invite_is_relayed_and_its_reply_comes_back() {
    let s = start().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    client.send_to(invite(client_addr, 70, "z9hG4bK776asdhds").as_bytes(), s.udp).await.unwrap();

    // What the UAS gets: our Via on top, the client's with received/rport (RFC 3581),
    // Max-Forwards decremented, everything else as sent.
    let (req, from) = recv(&s.uas).await;
    assert_eq!(from, s.udp, "sent from the proxy's socket");
    let vias: Vec<String> = req.values(HeaderName::Via).map(|v| req.text(v).to_string()).collect();
    assert_eq!(vias.len(), 2);
    assert!(vias[0].starts_with(&format!("SIP/2.0/UDP {};branch=z9hG4bK", s.udp)), "{}", vias[0]);
    assert_eq!(
        vias[1],
        format!(
            "SIP/2.0/UDP client.atlanta.example.com:{};received=127.0.0.1;branch=z9hG4bK776asdhds;rport={}",
            client_addr.port(),
            client_addr.port()
        )
    );
    assert_eq!(req.max_forwards, Some(69));
    assert_eq!(req.request_uri(), Some("sip:bob@biloxi.example.com"));

    // The UAS answers 200 to the proxy (its top Via); the client gets it
    // without our Via, at received/rport.
    let raw = String::from_utf8_lossy(req.bytes()).to_string();
    let via_lines: String = raw.split("\r\n").filter(|l| l.starts_with("Via:")).map(|l| format!("{l}\r\n")).collect();
    let ok = format!(
        "SIP/2.0 200 OK\r\n{via_lines}To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@{client_addr}\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    s.uas.send_to(ok.as_bytes(), s.udp).await.unwrap();
    let (reply, _) = recv(&client).await;
    assert_eq!(reply.status(), Some(200));
    let our_via_line = format!("{}\r\n", via_lines.split("\r\n").next().unwrap());
    let expected = ok.replacen(&our_via_line, "", 1);
    assert_eq!(String::from_utf8_lossy(reply.bytes()), expected, "the reply minus our Via, byte for byte");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_answers_483_and_200_statelessly_and_the_core_answers_505() {
    let s = start().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();

    client.send_to(invite(client_addr, 0, "z9hG4bKmf0").as_bytes(), s.udp).await.unwrap();
    let (reply, _) = recv(&client).await;
    assert_eq!(reply.status(), Some(483));
    assert!(reply.to_tag.is_some(), "a To-tag on a final reply");
    assert_eq!(reply.text(reply.via.received.unwrap()), "127.0.0.1");
    let server = reply.headers_by_text("Server").next().map(|h| reply.text(h.value).to_string());
    assert_eq!(
        server.as_deref(),
        Some(concat!("serc ", env!("CARGO_PKG_VERSION"))),
        "server_signature is on by default"
    );

    let options = invite(client_addr, 70, "z9hG4bKopt")
        .replace("INVITE sip:bob@biloxi.example.com", &format!("OPTIONS sip:{}", s.udp))
        .replace("314159 INVITE", "1 OPTIONS");
    client.send_to(options.as_bytes(), s.udp).await.unwrap();
    let (reply, _) = recv(&client).await;
    assert_eq!((reply.status(), reply.method_text()), (Some(200), "OPTIONS"));

    let badvers = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/sip-torture/badvers.dat"),
    )
    .expect("the torture corpus");
    client.send_to(&badvers, s.udp).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.unwrap().unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 505 "), "{}", String::from_utf8_lossy(&buf[..n]));
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_invite_is_relayed_and_the_reply_returns_on_the_connection() {
    let s = start().await;
    let mut client = TcpStream::connect(s.tcp).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let req = invite(client_addr, 70, "z9hG4bKtcp1").replace("SIP/2.0/UDP client", "SIP/2.0/TCP client");
    client.write_all(req.as_bytes()).await.unwrap();

    let (fwd, _) = recv(&s.uas).await;
    let vias: Vec<String> = fwd.values(HeaderName::Via).map(|v| fwd.text(v).to_string()).collect();
    let expected =
        format!("client.atlanta.example.com:{0};received=127.0.0.1;branch=z9hG4bKtcp1;rport={0}", client_addr.port());
    assert!(vias[1].ends_with(&expected), "{}", vias[1]);

    let raw = String::from_utf8_lossy(fwd.bytes()).to_string();
    let via_lines: String = raw.split("\r\n").filter(|l| l.starts_with("Via:")).map(|l| format!("{l}\r\n")).collect();
    let ok = format!(
        "SIP/2.0 200 OK\r\n{via_lines}To: <sip:bob@biloxi.example.com>;tag=x\r\n\
         From: <sip:alice@atlanta.example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710@{client_addr}\r\n\
         CSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    s.uas.send_to(ok.as_bytes(), s.udp).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.expect("a reply").unwrap();
    let reply = Message::parse(Bytes::copy_from_slice(&buf[..n]), Framing::Stream).expect("a framed reply");
    assert_eq!(reply.status(), Some(200));
    assert_eq!(reply.values(HeaderName::Via).count(), 1, "our Via removed");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_invite_is_relayed() {
    let Ok(uas) = UdpSocket::bind("[::1]:0").await else {
        eprintln!("skipped: cannot bind [::1] on this machine");
        return;
    };
    let uas_addr = uas.local_addr().unwrap();
    let probe = std::net::UdpSocket::bind("[::1]:0").unwrap();
    let udp = probe.local_addr().unwrap();
    drop(probe);
    let config = Config { locals: vec![Local::new(ProxyTransport::Udp, udp)], ..Config::default() };
    let proxy = Arc::new(Proxy::new(Relay { uas: uas_addr }, config));
    let handle =
        Server::start(ServerConfig { listens: vec![Listen::udp(udp)], workers: 1, ..ServerConfig::default() }, proxy)
            .await
            .expect("the proxy starts on [::1]");
    let client = UdpSocket::bind("[::1]:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let req = invite(client_addr, 70, "z9hG4bKv6").replace(&client_addr.to_string(), "client-v6");
    client.send_to(req.as_bytes(), udp).await.unwrap();
    let (fwd, _) = recv(&uas).await;
    let vias: Vec<String> = fwd.values(HeaderName::Via).map(|v| fwd.text(v).to_string()).collect();
    assert!(vias[0].starts_with(&format!("SIP/2.0/UDP [::1]:{};branch=z9hG4bK", udp.port())), "{}", vias[0]);
    assert!(
        vias[1].ends_with(&format!(":{0};received=::1;branch=z9hG4bKv6;rport={0}", client_addr.port())),
        "{}",
        vias[1]
    );
    handle.shutdown().await;
}

/// `$du = "sip:uas.serc.test:PORT"; forward();` — a host name, resolved (RFC 3263
/// §4.2: a port, so A records only) through a hosts file; the name server is a
/// socket that never answers, so anything asked of the DNS would time out.
struct RelayByName {
    du: String,
}

impl Script for RelayByName {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        ctx.dst_uri = Some(self.du.clone());
        core::forward_0(ctx);
        Flow::Exit
    }
}

/// A relay to `du` on one UDP socket, resolving through `hosts` and then a name
/// server that never answers (the returned socket: it sees what the DNS is asked).
async fn start_by_name(
    du: String,
    hosts: serc_runtime::resolve::HostsFile,
    dns_timeout: Duration,
    max_pending_lookups: usize,
) -> (serc_runtime::transport::ServerHandle, SocketAddr, Arc<Proxy<RelayByName>>, UdpSocket) {
    use serc_runtime::resolve::{Config as DnsConfig, Families, Resolver};
    let silent_dns = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dns = DnsConfig {
        hosts,
        families: Families::Ipv4,
        timeout: Some(dns_timeout),
        attempts: Some(1),
        ..DnsConfig::default()
    };
    let resolver = Resolver::with_name_servers(&[silent_dns.local_addr().unwrap()], dns).unwrap();
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = probe.local_addr().unwrap();
    drop(probe);
    let config = Config { locals: vec![Local::new(ProxyTransport::Udp, udp)], ..Config::default() };
    let proxy = Arc::new(
        Proxy::new(RelayByName { du }, config)
            .with_resolver(Arc::new(resolver))
            .with_max_pending_lookups(max_pending_lookups),
    );
    let listens = vec![Listen::udp(udp)];
    let handle = Server::start(ServerConfig { listens, workers: 1, ..ServerConfig::default() }, proxy.clone())
        .await
        .expect("the proxy starts");
    (handle, udp, proxy, silent_dns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_host_name_is_sent_after_the_lookup_and_then_from_the_cache() {
    use serc_runtime::resolve::HostsFile;
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let hosts = std::env::temp_dir().join(format!("serc-relay-hosts-{}", std::process::id()));
    std::fs::write(&hosts, "127.0.0.1 uas.serc.test\n").unwrap();
    let du = format!("sip:uas.serc.test:{}", uas_addr.port());
    let (handle, udp, _proxy, silent_dns) =
        start_by_name(du, HostsFile::Path(hosts.clone()), Duration::from_millis(200), 4096).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    // The first request waits for the lookup; the second finds it cached.
    for branch in ["z9hG4bKname1", "z9hG4bKname2"] {
        client.send_to(invite(client_addr, 70, branch).as_bytes(), udp).await.unwrap();
        let (req, from) = recv(&uas).await;
        assert_eq!(from, udp);
        let client_via = req.values(HeaderName::Via).nth(1).map(|v| req.text(v).to_string()).unwrap();
        assert!(client_via.contains(branch), "{client_via}");
        assert_eq!(req.request_uri(), Some("sip:bob@biloxi.example.com"), "$du changes the next hop only");
    }
    let mut buf = [0u8; 512];
    let asked = tokio::time::timeout(Duration::from_millis(300), silent_dns.recv_from(&mut buf)).await;
    assert!(asked.is_err(), "the hosts file answered: the DNS was not asked");
    handle.shutdown().await;
    let _ = std::fs::remove_file(hosts);
}

/// Requests to names the DNS never answers wait for their lookups, at most
/// `max_pending_lookups` of them; the others are dropped at once, and the
/// waiting ones are let go when their lookups fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_waiting_for_dns_are_capped_and_let_go() {
    // A port: A records only, one query per name. The DNS timeout is long
    // enough that the lookups are surely still waiting when counted.
    let du = "sip:nowhere.serc.test:5060".to_string();
    let (handle, udp, proxy, silent_dns) =
        start_by_name(du, serc_runtime::resolve::HostsFile::None, Duration::from_secs(2), 2).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    for branch in ["z9hG4bKdns1", "z9hG4bKdns2", "z9hG4bKdns3", "z9hG4bKdns4"] {
        client.send_to(invite(client_addr, 70, branch).as_bytes(), udp).await.unwrap();
    }
    // The DNS is asked (once: the lookups of one name share a query).
    let mut buf = [0u8; 512];
    tokio::time::timeout(Duration::from_secs(2), silent_dns.recv_from(&mut buf)).await.expect("a DNS query").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(proxy.lookups_waiting(), 2, "two wait, the others were dropped");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while proxy.lookups_waiting() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.lookups_waiting(), 0, "let go when the lookups fail");
    handle.shutdown().await;
}

/// `Proxy::route_into`, as a transport's worker calls it: what each message
/// sends is appended to the one vector, after what it held; one message's edits
/// (the Via and Max-Forwards of a relayed INVITE) are not the next one's; a
/// reply relayed statelessly sends only itself.
#[test]
fn route_into_appends_and_each_message_starts_without_edits() {
    let (proxy_addr, uas) = (SocketAddr::from(([127, 0, 0, 1], 5060)), SocketAddr::from(([127, 0, 0, 1], 5070)));
    let config = Config { locals: vec![Local::new(ProxyTransport::Udp, proxy_addr)], ..Config::default() };
    let proxy = Proxy::new(Relay { uas }, config);
    let client = SocketAddr::from(([127, 0, 0, 1], 5061));
    let src = serc_runtime::proxy::Source { transport: ProxyTransport::Udp, addr: client, local: proxy_addr };
    let marker = serc_runtime::script::Send {
        bytes: Bytes::from_static(b"queued before"),
        target: serc_runtime::proxy::Target::Addr { transport: ProxyTransport::Udp, addr: client },
        from: None,
    };
    let mut out = vec![marker];
    let now = std::time::Instant::now();
    let sent = |out: &[serc_runtime::script::Send], i: usize| {
        Message::parse(out[i].bytes.clone(), Framing::Datagram).expect("what the proxy sends parses")
    };
    for (n, max_forwards) in [(1, 70), (2, 9), (3, 5)] {
        let text = invite(client, max_forwards, &format!("z9hG4bK-{n}"));
        proxy.route_into(now, Bytes::from(text), src, Framing::Datagram, &mut out);
        assert_eq!(out.len(), 1 + n, "one more message sent");
        assert_eq!(&out[0].bytes[..], b"queued before", "what the vector held stays");
        let req = sent(&out, n);
        assert_eq!(req.values(HeaderName::Via).count(), 2, "our Via and the client's, once each");
        assert_eq!(req.max_forwards, Some(max_forwards - 1));
    }
    // The UAS's 200 to the last INVITE, relayed statelessly: itself only, our Via gone.
    let last = sent(&out, 3);
    let text = String::from_utf8(last.bytes().to_vec()).unwrap().replacen(
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        "SIP/2.0 200 OK",
        1,
    );
    proxy.route_into(now, Bytes::from(text), src, Framing::Datagram, &mut out);
    assert_eq!(out.len(), 5);
    assert_eq!(&out[0].bytes[..], b"queued before");
    let reply = sent(&out, 4);
    assert_eq!(reply.status(), Some(200));
    assert_eq!(reply.values(HeaderName::Via).count(), 1, "our Via removed");
}
