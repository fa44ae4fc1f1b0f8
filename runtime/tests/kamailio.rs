//! Side by side with Kamailio 5.6: the same stateless relay route run by Kamailio
//! and by serc's runtime, the same messages sent to both on 127.0.0.1, and what
//! comes out compared byte for byte — after masking what is each proxy's own by
//! right (its address, its Via branch, the To-tag it makes up).
//!
//! The route, as both run it:
//!
//! ```text
//! route {
//!     if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
//!     if (is_method("INVITE")) record_route();
//!     $du = "sip:127.0.0.1:UAS";
//!     forward();
//! }
//! ```
//!
//! Kamailio comes from the Debian package `kamailio`, which `cargo xtask test`
//! installs. Without it the test says so and passes, unless
//! `SERC_REQUIRE_PEERS=1` (set by `cargo xtask test`), where it fails.

// Kamailio is a Unix program, and its workers are stopped as a process group.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{core, maxfwd, rr, sl, textops};
use serc_runtime::proxy::{Local, Transport};
use serc_runtime::script::args::{Format, Methods, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow, ServerHeader};
use serc_runtime::transport::{Listen, Server, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

struct Relay {
    uas: SocketAddr,
    invite: Methods,
}

impl Script for Relay {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        let rc = maxfwd::mf_process_maxfwd_header(ctx, 10);
        if ctx.ret(rc) < 0 {
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(483), &Format::literal("Too Many Hops"));
            return Flow::Exit;
        }
        if textops::is_method(ctx, &self.invite) > 0 {
            rr::record_route_0(ctx);
        }
        ctx.dst_uri = Some(format!("sip:{}", self.uas));
        core::forward_0(ctx);
        Flow::Exit
    }
}

fn kamailio_binary() -> Option<PathBuf> {
    ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A port on 127.0.0.1 free for both UDP and TCP, for Kamailio, which needs a
/// number in its config (and for serc, listening the same way).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Kamailio running the route, in a process group of its own; stopped on
/// drop, its workers with it.
struct Kamailio {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // Kamailio forks its workers: a SIGKILL to the main process alone left
        // them running after the test. SIGTERM to the group (the main process
        // then stops its children), then SIGKILL to whatever of it remains.
        let group = -i32::try_from(self.child.id()).expect("a pid fits an i32");
        // SAFETY: kill(2) with a negative pid signals the process group the
        // test created for Kamailio (`process_group(0)` below); no memory is
        // involved.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; ESRCH once the whole group is gone.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_kamailio(binary: &PathBuf, uas: SocketAddr) -> Kamailio {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = std::env::temp_dir().join(format!("serc-kamailio-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "#!KAMAILIO\n\
         debug=1\n\
         children=1\n\
         auto_aliases=no\n\
         server_signature=no\n\
         listen=udp:{addr}\n\
         listen=tcp:{addr}\n\
         loadmodule \"pv.so\"\n\
         loadmodule \"sl.so\"\n\
         loadmodule \"maxfwd.so\"\n\
         loadmodule \"textops.so\"\n\
         loadmodule \"rr.so\"\n\
         route {{\n\
         \tif (!mf_process_maxfwd_header(\"10\")) {{ sl_send_reply(\"483\", \"Too Many Hops\"); exit; }}\n\
         \tif (is_method(\"INVITE\")) record_route();\n\
         \t$du = \"sip:{uas}\";\n\
         \tforward();\n\
         }}\n"
    );
    let cfg_path = dir.join("kamailio.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut child = Command::new(binary)
        .process_group(0)
        .arg("-f")
        .arg(&cfg_path)
        .args(["-DD", "-E", "-m", "32", "-M", "4", "-Y"])
        .arg(&dir)
        .arg("-w")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kamailio starts");
    // Its log goes to our stderr (shown when the test fails).
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("kamailio: {line}");
        }
    });
    Kamailio { child, addr, dir }
}

async fn start_serc(uas: SocketAddr) -> (ServerHandle, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Kamailio runs with server_signature=no.
    let config = Config {
        locals: vec![Local::new(Transport::Udp, addr), Local::new(Transport::Tcp, addr)],
        server_header: ServerHeader::none(),
        ..Config::default()
    };
    let proxy = Arc::new(Proxy::new(Relay { uas, invite: Methods::parse("INVITE") }, config));
    let listens = vec![Listen::udp(addr), Listen::tcp(addr)];
    let handle = Server::start(ServerConfig { listens, workers: 1, ..ServerConfig::default() }, proxy)
        .await
        .expect("the serc proxy starts");
    (handle, addr)
}

async fn recv(sock: &UdpSocket, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn request(method: &str, client: SocketAddr, max_forwards: u32, branch: &str) -> String {
    format!(
        "{method} sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP client.atlanta.example.com:{port};branch={branch};rport\r\n\
         Max-Forwards: {max_forwards}\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@atlanta.example.com\r\n\
         CSeq: 314159 {method}\r\n\
         Contact: <sip:alice@{client}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 4\r\n\r\nv=0\n",
        port = client.port(),
    )
}

/// What is each proxy's own: its address and port, the value of its Via branch,
/// the To-tag of its stateless replies.
fn mask(msg: &str, proxy: SocketAddr) -> String {
    let msg = msg.replace(&proxy.to_string(), "PROXY");
    let mut out = String::with_capacity(msg.len());
    for (i, line) in msg.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let mut line = line.to_string();
        if line.starts_with("Via: SIP/2.0/UDP PROXY;branch=") {
            line = "Via: SIP/2.0/UDP PROXY;branch=BRANCH".to_string();
        }
        if line.starts_with("To: ") {
            if let Some(at) = line.find(";tag=") {
                line.truncate(at + 5);
                line.push_str("TAG");
            }
        }
        out.push_str(&line);
    }
    out
}

/// Runs one exchange against a proxy: a request from `client`; what the UAS
/// receives (if anything), and what the client receives after the UAS answers
/// `answer` to what it received (or directly, for the proxy's own replies).
struct Seen {
    at_uas: Option<String>,
    at_client: Option<String>,
}

/// The UAS's `status` reply to the request it received: its Vias and
/// Record-Routes copied, as a UAS does.
fn uas_answer(forwarded: &str, status: &str) -> String {
    let copied = |name: &str| -> String {
        forwarded.split("\r\n").filter(|l| l.starts_with(name)).map(|l| format!("{l}\r\n")).collect()
    };
    format!(
        "SIP/2.0 {status}\r\n{}{}To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\
         Contact: <sip:bob@192.0.2.4>\r\nContent-Length: 0\r\n\r\n",
        copied("Via:"),
        copied("Record-Route:")
    )
}

async fn exchange(proxy: SocketAddr, client: &UdpSocket, uas: &UdpSocket, req: &str, answer: Option<&str>) -> Seen {
    client.send_to(req.as_bytes(), proxy).await.unwrap();
    let at_uas = recv(uas, Duration::from_millis(1500)).await;
    if let (Some(forwarded), Some(status)) = (&at_uas, answer) {
        uas.send_to(uas_answer(forwarded, status).as_bytes(), proxy).await.unwrap();
    }
    let at_client = recv(client, Duration::from_millis(1500)).await;
    Seen { at_uas, at_client }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stateless_relay_puts_the_same_bytes_on_the_wire_as_kamailio() {
    let Some(binary) = kamailio_binary() else {
        assert!(
            std::env::var("SERC_REQUIRE_PEERS").is_err(),
            "kamailio is not installed (cargo xtask test installs the Debian package)"
        );
        eprintln!("SKIPPED: kamailio is not installed (cargo xtask test installs it)");
        return;
    };
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();

    let kamailio = start_kamailio(&binary, uas_addr);
    // Ready when it answers: an OPTIONS with Max-Forwards 0 gets its 483.
    let probe = request("OPTIONS", client_addr, 0, "z9hG4bKprobe");
    let mut ready = false;
    for _ in 0..50 {
        client.send_to(probe.as_bytes(), kamailio.addr).await.unwrap();
        if recv(&client, Duration::from_millis(200)).await.is_some() {
            ready = true;
            break;
        }
    }
    assert!(ready, "kamailio did not answer within 10 s (its log is above)");
    let (serc, serc_addr) = start_serc(uas_addr).await;

    let cases: [(&str, String, Option<&str>); 4] = [
        ("INVITE relayed, 180 back", request("INVITE", client_addr, 70, "z9hG4bK776asdhds"), Some("180 Ringing")),
        ("INVITE relayed, 200 back", request("INVITE", client_addr, 70, "z9hG4bK776asdhdt"), Some("200 OK")),
        ("MESSAGE relayed without Record-Route", request("MESSAGE", client_addr, 5, "z9hG4bKmsg1"), None),
        ("Max-Forwards 0: 483 from the proxy", request("INVITE", client_addr, 0, "z9hG4bKmf0"), None),
    ];
    let mut differences = Vec::new();
    let mut tcp_seen = Vec::new();
    for (what, req, answer) in &cases {
        let k = exchange(kamailio.addr, &client, &uas, req, *answer).await;
        let s = exchange(serc_addr, &client, &uas, req, *answer).await;
        let k_uas = k.at_uas.as_deref().map(|m| mask(m, kamailio.addr));
        let s_uas = s.at_uas.as_deref().map(|m| mask(m, serc_addr));
        let k_client = k.at_client.as_deref().map(|m| mask(m, kamailio.addr));
        let s_client = s.at_client.as_deref().map(|m| mask(m, serc_addr));
        if k_uas != s_uas {
            differences.push(format!("{what}: at the UAS\n  kamailio: {k_uas:?}\n  serc:     {s_uas:?}"));
        }
        if k_client != s_client {
            differences.push(format!("{what}: at the client\n  kamailio: {k_client:?}\n  serc:     {s_client:?}"));
        }
        assert!(k_uas.is_some() || k_client.is_some(), "{what}: kamailio sent nothing");
    }

    // Over TCP from the client, UDP to the UAS: the request leaves by another
    // socket than it came in on, so both record-route twice (`;r2=on`), and
    // the reply goes back on the client's connection.
    for proxy in [kamailio.addr, serc_addr] {
        let mut tcp = TcpStream::connect(proxy).await.unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        let req = request("INVITE", tcp_addr, 70, "z9hG4bKtcp1").replace("SIP/2.0/UDP client", "SIP/2.0/TCP client");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let at_uas = recv(&uas, Duration::from_secs(2)).await;
        let mut at_client = None;
        if let Some(forwarded) = &at_uas {
            uas.send_to(uas_answer(forwarded, "200 OK").as_bytes(), proxy).await.unwrap();
            at_client = read_message(&mut tcp, Duration::from_secs(2)).await;
        }
        tcp_seen.push((
            at_uas.map(|m| mask(&m, proxy).replace(&tcp_addr.port().to_string(), "CLIENT")),
            at_client.map(|m| mask(&m, proxy).replace(&tcp_addr.port().to_string(), "CLIENT")),
        ));
    }
    let (k, s) = (&tcp_seen[0], &tcp_seen[1]);
    assert!(
        k.0.as_deref().is_some_and(|m| m.matches(";r2=on").count() == 2),
        "kamailio record-routes twice: {:?}",
        k.0
    );
    assert!(k.1.as_deref().is_some_and(|m| m.starts_with("SIP/2.0 200 OK")), "kamailio relays the 200: {:?}", k.1);
    if k.0 != s.0 {
        differences.push(format!("INVITE over TCP: at the UAS\n  kamailio: {:?}\n  serc:     {:?}", k.0, s.0));
    }
    if k.1 != s.1 {
        differences.push(format!("INVITE over TCP: 200 at the client\n  kamailio: {:?}\n  serc:     {:?}", k.1, s.1));
    }
    serc.shutdown().await;
    drop(kamailio);
    assert!(differences.is_empty(), "serc and kamailio differ:\n{}", differences.join("\n"));
}

/// One SIP message from a stream: the header, then Content-Length bytes.
async fn read_message(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .split("\r\n")
                .find_map(|l| l.strip_prefix("Content-Length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned());
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
