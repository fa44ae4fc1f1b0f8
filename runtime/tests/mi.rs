//! The management interface on a running proxy (`serc_runtime::mi`): a
//! hand-written script started through `Launch::start` on 127.0.0.1
//! (ephemeral port) with `mi_fifo` (a FIFO in a temporary directory) and
//! `mi_datagram` (a Unix socket there, or UDP on 127.0.0.1), driven by real
//! clients in OpenSER 1.3's text format: good commands, an unknown one,
//! garbage, a request over the size limit, a client that never opens its
//! reply FIFO — while SIP requests keep being answered.
#![cfg(unix)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serc_runtime::app::Script;
use serc_runtime::launch::{Launch, LaunchError, Running, Settings};
use serc_runtime::modules::sl;
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Ctx, Flow, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::net::{UdpSocket, UnixDatagram};

/// `route { sl_send_reply("200", "OK"); exit; }`
struct Answer;

impl Script for Answer {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        sl::sl_send_reply(ctx, &ReplyCode::Fixed(200), &Format::literal("OK"));
        Flow::Exit
    }
}

const WAIT: Duration = Duration::from_secs(5);

fn settings(dir: &Path, datagram: &str) -> Settings {
    let mut s = Settings { cfg_name: "mi.cfg".into(), ..Settings::default() };
    let p = &mut s.config.params;
    p.load("mi_fifo");
    p.set("mi_fifo", "fifo_name", Value::Str(dir.join("openser_fifo").to_string_lossy().into_owned()));
    // Without the final slash: serc adds it.
    p.set("mi_fifo", "reply_dir", Value::Str(dir.to_string_lossy().into_owned()));
    p.load("mi_datagram");
    p.set("mi_datagram", "socket_name", Value::Str(datagram.to_string()));
    s
}

async fn start(settings: Settings) -> Running {
    Launch::new(Answer, settings)
        .listen("udp:127.0.0.1:0".parse().expect("a listen"))
        .workers(2)
        .start()
        .await
        .expect("the proxy starts")
}

/// Sends an OPTIONS to the proxy and waits for its 200.
async fn sip_answers(proxy: SocketAddr) -> Duration {
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("a client socket");
    let me = client.local_addr().expect("its address");
    let options = format!(
        "OPTIONS sip:{proxy} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-mi-{}\r\nMax-Forwards: 70\r\n\
         To: <sip:{proxy}>\r\nFrom: <sip:t@{me}>;tag=1\r\nCall-ID: mi-{}@{me}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        me.port(),
        me.port()
    );
    let sent = Instant::now();
    client.send_to(options.as_bytes(), proxy).await.expect("sent");
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(WAIT, client.recv_from(&mut buf)).await.expect("a SIP reply").expect("received");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    sent.elapsed()
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("a path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// A FIFO client as `openserctl` is: its own reply FIFO, opened for reading
/// before the request is written.
struct FifoClient {
    server: PathBuf,
    dir: PathBuf,
}

impl FifoClient {
    async fn write(&self, request: &[u8]) {
        let mut sender = pipe::OpenOptions::new().open_sender(&self.server).expect("the server's FIFO is open");
        tokio::time::timeout(WAIT, sender.write_all(request)).await.expect("written in time").expect("written");
    }

    /// Sends `command` with `args` and returns the whole reply.
    async fn run(&self, reply_name: &str, command: &str, args: &[&str]) -> String {
        let mut request = format!(":{command}:{reply_name}\n");
        for a in args {
            request.push_str(a);
            request.push('\n');
        }
        request.push('\n');
        self.run_raw(reply_name, request.as_bytes()).await
    }

    async fn run_raw(&self, reply_name: &str, request: &[u8]) -> String {
        let reply_path = self.dir.join(reply_name);
        mkfifo(&reply_path);
        let mut reply = pipe::OpenOptions::new().open_receiver(&reply_path).expect("the reply FIFO opens");
        self.write(request).await;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 8192];
        tokio::time::timeout(WAIT, async {
            loop {
                match reply.read(&mut buf).await {
                    Ok(0) if got.is_empty() => tokio::time::sleep(Duration::from_millis(5)).await,
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => panic!("reading the reply: {e}"),
                }
            }
        })
        .await
        .expect("a reply in time");
        let _ = std::fs::remove_file(&reply_path);
        String::from_utf8(got).expect("a text reply")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_and_unix_datagram_serve_while_sip_goes_on() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sock_path = dir.path().join("openser.sock");
    let fifo_path = dir.path().join("openser_fifo");
    // A FIFO left by an earlier run is replaced.
    mkfifo(&fifo_path);
    let running = start(settings(dir.path(), &sock_path.to_string_lossy())).await;
    let proxy = running.local_addrs()[0].1;
    let endpoints = running.mi().endpoints();
    assert_eq!(endpoints, [format!("fifo:{}", fifo_path.display()), format!("unix:{}", sock_path.display())]);
    let fifo = FifoClient { server: fifo_path.clone(), dir: dir.path().to_path_buf() };

    // which: every command, one bare value a line, ended by an empty line.
    let which = fifo.run("reply_which", "which", &[]).await;
    assert!(which.starts_with("200 OK\nuptime\nversion\npwd\narg\nwhich\nps\nkill\ndebug\n"), "{which}");
    assert!(which.ends_with("get_statistics\nreset_statistics\n\n"), "{which}");

    let uptime = fifo.run("reply_uptime", "uptime", &["ignored argument"]).await;
    let lines: Vec<&str> = uptime.lines().collect();
    assert_eq!(lines[0], "200 OK");
    assert!(lines[1].starts_with("Now:: ") && lines[2].starts_with("Up since:: "), "{uptime}");
    assert!(lines[3].starts_with("Up time:: ") && lines[3].ends_with(" [sec]"), "{uptime}");

    let ps = fifo.run("reply_ps", "ps", &[]).await;
    let pid = std::process::id();
    assert!(ps.starts_with(&format!("200 OK\nProcess::  ID=0 PID={pid} Type=attendant\n")), "{ps}");
    assert!(ps.contains("Type=MI FIFO\n") && ps.contains("Type=MI Datagram\n"), "{ps}");

    let stats = fifo.run("reply_stats", "get_statistics", &["all"]).await;
    assert!(stats.starts_with("200 OK\ncore:rcv_requests = "), "{stats}");
    assert!(stats.contains("\ncore:bad_msg_hdr = 0\n"), "{stats}");
    let one = fifo.run("reply_one", "get_statistics", &["unsupported_methods", "nope:"]).await;
    assert_eq!(one, "200 OK\ncore:unsupported_methods = 0\n\n");
    assert_eq!(fifo.run("reply_none", "get_statistics", &["zzz"]).await, "404 Statistics Not Found\n\n");
    assert_eq!(fifo.run("reply_noargs", "get_statistics", &[]).await, "400 Too few or too many arguments\n\n");
    assert_eq!(fifo.run("reply_debug", "debug", &["3"]).await, "200 OK\nDEBUG:: 3\n\n");

    // An unknown command: 1.3's single line.
    assert_eq!(
        fifo.run("reply_unknown", "no_such_command", &[]).await,
        "500 command 'no_such_command' not available\n"
    );
    // Arguments that do not parse.
    assert_eq!(
        fifo.run("reply_bad", "get_statistics", &["a\"b"]).await,
        "400 parse error in command 'get_statistics'\n"
    );

    // Garbage (no reply: there is nowhere to send one), then a good request.
    fifo.write(b"this is not a command\nnor this\n\n").await;
    fifo.write(b"\n\n:which\n\n").await;
    assert!(fifo.run("reply_after_garbage", "version", &[]).await.starts_with("200 OK\nServer:: serc "));

    // A request over 64 KB: refused as a parse error, and the FIFO goes on.
    let mut huge = b":get_statistics:reply_huge\n".to_vec();
    for _ in 0..100 {
        huge.extend_from_slice(&[b'x'; 1000]);
        huge.push(b'\n');
    }
    huge.push(b'\n');
    assert_eq!(fifo.run_raw("reply_huge", &huge).await, "400 parse error in command 'get_statistics'\n");
    // One line over 64 KB, without its request line being readable.
    let mut long_line = vec![b':'; 70 * 1024];
    long_line.extend_from_slice(b"\n\n");
    fifo.write(&long_line).await;
    assert!(fifo.run("reply_after_huge", "pwd", &[]).await.starts_with("200 OK\nWD:: "));

    // A client whose reply FIFO nobody opens: the server gives up on it
    // (1.3's retries, 4 × 80 ms), and meanwhile SIP and MI are answered.
    mkfifo(&dir.path().join("ghost"));
    fifo.write(b":which:ghost\n\n").await;
    fifo.write(b":which:missing_file\n\n").await;
    let rtt = sip_answers(proxy).await;
    assert!(rtt < Duration::from_millis(250), "SIP waited for MI: {rtt:?}");
    assert!(fifo.run("reply_during_ghost", "version", &[]).await.starts_with("200 OK\n"));

    // A client that vanishes mid-request: its lines do not swallow the next request.
    fifo.write(b":get_statistics:reply_vanished\nall\n").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(fifo.run("reply_after_vanished", "version", &[]).await.starts_with("200 OK\nServer:: "));

    // The datagram socket, from a client with its own bound socket.
    let client_path = dir.path().join("client.sock");
    let client = UnixDatagram::bind(&client_path).expect("a client socket");
    let ask = |req: &'static [u8]| {
        let client = &client;
        let sock_path = &sock_path;
        async move {
            client.send_to(req, sock_path).await.expect("sent");
            let mut buf = vec![0u8; 70_000];
            let n = tokio::time::timeout(WAIT, client.recv(&mut buf)).await.expect("a reply").expect("received");
            String::from_utf8(buf[..n].to_vec()).expect("text")
        }
    };
    let which = ask(b":which:\n").await;
    assert!(which.starts_with("200 OK\nuptime\n") && which.ends_with("reset_statistics\n"), "{which}");
    assert!(!which.ends_with("\n\n"), "no empty line at the end of a datagram reply");
    assert_eq!(ask(b":get_statistics:\ncore:err_requests\n\n").await, "200 OK\ncore:err_requests = 0\n");
    assert_eq!(ask(b":no_such_command:\n").await, "500 command not available\n");
    assert_eq!(ask(b"garbage").await, "500 command not available\n");
    assert_eq!(ask(b":get_statistics:\n\"open\n").await, "400 parse error in command\n");
    let mut huge = b":which:\n".to_vec();
    huge.resize(66_000, b'x');
    client.send_to(&huge, &sock_path).await.expect("a big datagram is sent");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, client.recv(&mut buf)).await.expect("a reply").expect("received");
    assert_eq!(&buf[..n], b"400 request too long\n");
    // A client without an address: nothing to answer, nothing disturbed.
    let anonymous = UnixDatagram::unbound().expect("an unbound socket");
    anonymous.send_to(b":which:\n", &sock_path).await.expect("sent");
    assert!(ask(b":version:\n").await.starts_with("200 OK\nServer:: "));

    sip_answers(proxy).await;
    tokio::time::timeout(WAIT, running.shutdown()).await.expect("shutdown completes");
    assert!(!fifo_path.exists(), "the FIFO is removed at shutdown");
    assert!(!sock_path.exists(), "the socket is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagram_on_an_ephemeral_port() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let running = start(settings(dir.path(), "udp:127.0.0.1:0")).await;
    let endpoint = running.mi().endpoints().into_iter().find(|e| e.starts_with("udp:")).expect("a UDP endpoint");
    let addr: SocketAddr = endpoint["udp:".len()..].parse().expect("an address");
    assert_ne!(addr.port(), 0);
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("a client");
    let mut buf = vec![0u8; 65536];
    for (req, want) in [
        (&b":uptime:\n"[..], "200 OK\nNow:: "),
        (b":get_statistics:\nall\n", "200 OK\ncore:rcv_requests = "),
        (b":kil:\n", "500 command not available\n"),
        (b"\x00\xff\n\n", "500 command not available\n"),
    ] {
        client.send_to(req, addr).await.expect("sent");
        let (n, from) =
            tokio::time::timeout(WAIT, client.recv_from(&mut buf)).await.expect("a reply").expect("received");
        assert_eq!(from, addr);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with(want), "{text}");
    }
    sip_answers(running.local_addrs()[0].1).await;
    tokio::time::timeout(WAIT, running.shutdown()).await.expect("shutdown completes");
}

/// Why a proxy with settings `s` does not start.
async fn start_error(s: Settings) -> LaunchError {
    Launch::new(Answer, s)
        .listen("udp:127.0.0.1:0".parse().expect("a listen"))
        .workers(1)
        .start()
        .await
        .err()
        .expect("no start")
}

#[tokio::test]
async fn a_fifo_without_a_name_stops_the_start() {
    let mut s = Settings::default();
    s.config.params.load("mi_fifo");
    let error = start_error(s).await;
    assert!(matches!(&error, LaunchError::Mi(e) if e.contains("fifo_name")), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_socket_off_loopback_stops_the_start() {
    let mut s = Settings::default();
    s.config.params.load("mi_datagram");
    s.config.params.set("mi_datagram", "socket_name", Value::Str("udp:0.0.0.0:0".into()));
    let error = start_error(s).await;
    assert!(matches!(&error, LaunchError::Mi(e) if e.contains("not a loopback address")), "{error:?}");
}
