//! Starting a compiled config (`serc_runtime::launch`): a hand-written script
//! started through `Launch::start` on 127.0.0.1 (ephemeral ports), answered over
//! real UDP and TCP, then shut down; and the built proxy's command line (what
//! overrides what), parsed as `Launch::main` parses it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serc_runtime::app::Script;
use serc_runtime::launch::{level_for_debug, Cli, Launch, LaunchError, ListenSpec, Settings};
use serc_runtime::modules::sl;
use serc_runtime::proxy::Transport;
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Ctx, Flow};
use serc_runtime::sip::{Framing, Message, StartLine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tracing::level_filters::LevelFilter;

/// `route { if (uri == myself) sl_send_reply("200", "OK"); else sl_send_reply("404", "Not Here"); exit; }`
struct Answer;

impl Script for Answer {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        let to_me = serc_runtime::sip::uri::parse(ctx.request_uri()).is_ok_and(|u| ctx.is_myself(u.host_text, u.port));
        if to_me {
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(200), &Format::literal("OK"));
        } else {
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(404), &Format::literal("Not Here"));
        }
        Flow::Exit
    }
}

fn options(to: SocketAddr, transport: &str, client: SocketAddr) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {client};branch=z9hG4bK-launch-1\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{to}>\r\n\
         From: <sip:tester@{client}>;tag=42\r\n\
         Call-ID: launch-test@{client}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn status(bytes: &[u8], framing: Framing) -> u16 {
    let msg = Message::parse(Bytes::copy_from_slice(bytes), framing).expect("the reply parses");
    match msg.start {
        StartLine::Response { code, .. } => code,
        StartLine::Request { .. } => panic!("a request came back"),
    }
}

fn settings(listens: &[&str]) -> Settings {
    Settings {
        cfg_name: "test.cfg".into(),
        cfg_hash: "0123abcd".into(),
        listens: listens.iter().map(|l| l.parse().unwrap()).collect(),
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answers_over_udp_and_tcp_then_shuts_down() {
    // The config's own listen (port 5060, maybe taken) is replaced by the embedder's.
    let running = Launch::new(Answer, settings(&["udp:127.0.0.1:5060"]))
        .listen("127.0.0.1:0".parse().unwrap())
        .workers(2)
        .start()
        .await
        .expect("the proxy starts");

    // One listen without protocol: UDP and TCP, each on a real port.
    let addrs = running.local_addrs();
    assert_eq!(addrs.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [Transport::Udp, Transport::Tcp]);
    for (_, addr) in &addrs {
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0, "the port chosen is reported");
    }
    assert_eq!(running.listens().len(), 2);
    // The routes know the sockets as bound (so `myself` and our Via are right).
    assert_eq!(running.locals().iter().map(|l| (l.transport, l.addr)).collect::<Vec<_>>(), addrs);
    let (udp, tcp) = (addrs[0].1, addrs[1].1);

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    client.send_to(options(udp, "UDP", client_addr).as_bytes(), udp).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) =
        tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.expect("a reply").unwrap();
    assert_eq!(from, udp);
    assert_eq!(status(&buf[..n], Framing::Datagram), 200, "{}", String::from_utf8_lossy(&buf[..n]));

    let mut stream = TcpStream::connect(tcp).await.unwrap();
    let stream_addr = stream.local_addr().unwrap();
    stream.write_all(options(tcp, "TCP", stream_addr).as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "the connection closed before the reply");
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                return got;
            }
        }
    })
    .await
    .expect("a reply over TCP");
    assert_eq!(status(&reply, Framing::Stream), 200, "{}", String::from_utf8_lossy(&reply));

    tokio::time::timeout(Duration::from_secs(5), running.shutdown()).await.expect("shutdown completes");
    // The ports are free again.
    std::net::UdpSocket::bind(udp).expect("the UDP port was released");
    std::net::TcpListener::bind(tcp).expect("the TCP port was released");
}

#[tokio::test]
async fn explicit_protocols_and_disable_tcp() {
    let mut s = settings(&["udp:127.0.0.1:0", "127.0.0.1:0", "tcp:127.0.0.1:0"]);
    s.disable_tcp = true;
    let running = Launch::new(Answer, s).workers(1).start().await.expect("the proxy starts");
    // Without a protocol: UDP only; the explicit TCP listen is left out.
    let transports: Vec<Transport> = running.local_addrs().iter().map(|(t, _)| *t).collect();
    assert_eq!(transports, [Transport::Udp, Transport::Udp]);
    running.shutdown().await;
}

#[tokio::test]
async fn start_errors_are_clear() {
    // A port already taken.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let spec: ListenSpec = format!("udp:{}", taken.local_addr().unwrap()).parse().unwrap();
    let error = Launch::new(Answer, Settings::default()).listen(spec).workers(1).start().await.err().unwrap();
    assert!(matches!(error, LaunchError::Server(_)), "{error:?}");
    assert!(error.to_string().starts_with("cannot listen on udp:127.0.0.1:"), "{error}");

    // An interface name (refused for now, without asking the DNS).
    if cfg!(target_os = "linux") && std::path::Path::new("/sys/class/net/lo").exists() {
        let spec: ListenSpec = "udp:lo:0".parse().unwrap();
        let error = Launch::new(Answer, Settings::default()).listen(spec).workers(1).start().await.err().unwrap();
        assert!(matches!(error, LaunchError::Listen { .. }), "{error:?}");
        assert!(error.to_string().contains("interface names are not supported"), "{error}");
    }

    // Zero workers.
    let error = Launch::new(Answer, settings(&["udp:127.0.0.1:0"])).workers(0).start().await.err().unwrap();
    assert_eq!(error.to_string(), "the number of workers must be at least 1");
}

fn parse(settings: &Settings, args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::parse_for(settings, std::iter::once("proxy").chain(args.iter().copied()))
}

#[test]
fn command_line_overrides_the_config() {
    let mut cfg = settings(&["udp:10.0.0.1:5060", "tcp:10.0.0.1:5060"]);
    cfg.children = Some(8);
    cfg.debug = Some(4);

    // Nothing on the command line: the config.
    let cli = parse(&cfg, &[]).unwrap();
    let launch = Launch::new(Answer, cfg.clone()).with_args(&cli);
    assert_eq!(launch.listen_specs(), cfg.listens);
    assert_eq!(launch.worker_count(), 8);
    assert_eq!(cli.log_level(&cfg), LevelFilter::DEBUG);

    // --listen replaces every listen=, --workers children=, --log-level debug=.
    let cli = parse(
        &cfg,
        &["--listen", "udp:127.0.0.1:0", "--listen", "tcp:[::1]:5070", "--workers", "3", "--log-level", "warn"],
    )
    .unwrap();
    let launch = Launch::new(Answer, cfg.clone()).with_args(&cli);
    assert_eq!(
        launch.listen_specs(),
        [
            ListenSpec { transport: Some(Transport::Udp), host: "127.0.0.1".into(), port: Some(0) },
            ListenSpec { transport: Some(Transport::Tcp), host: "[::1]".into(), port: Some(5070) },
        ]
    );
    assert_eq!(launch.worker_count(), 3);
    assert_eq!(cli.log_level(&cfg), LevelFilter::WARN);
    assert_eq!(launch.settings.config.max_transactions, None);

    // --max-transactions bounds tm's table.
    let cli = parse(&cfg, &["--max-transactions", "1000"]).unwrap();
    let launch = Launch::new(Answer, cfg.clone()).with_args(&cli);
    assert_eq!(launch.settings.config.max_transactions, Some(1000));

    // OpenSER numbers, negative ones included.
    assert_eq!(parse(&cfg, &["--log-level", "-1"]).unwrap().log_level(&cfg), LevelFilter::ERROR);
    assert_eq!(parse(&cfg, &["--log-level=3"]).unwrap().log_level(&cfg), LevelFilter::INFO);
    assert_eq!(parse(&cfg, &["--log-level", "trace"]).unwrap().log_level(&cfg), LevelFilter::TRACE);

    // --version is a flag of its own (main prints the line).
    assert!(parse(&cfg, &["--version"]).unwrap().version);
    assert_eq!(
        serc_runtime::launch::version_line(&cfg),
        format!("test.cfg (config 0123abcd) built by serc {}", env!("CARGO_PKG_VERSION"))
    );

    // Bad values are usage errors (exit status 2).
    for bad in [
        &["--workers", "0"][..],
        &["--max-transactions", "0"],
        &["--log-level", "5"],
        &["--udp-layout", "everywhere"],
        &["--listen", "udp:1.2.3.4:99999"],
        &["--bogus"],
    ] {
        let error = parse(&cfg, bad).err().unwrap_or_else(|| panic!("{bad:?} should be refused"));
        assert_eq!(error.exit_code(), 2, "{bad:?}");
    }

    // --help teaches: overrides, where output goes, signals; exit status 0.
    let help = parse(&cfg, &["--help"]).err().unwrap();
    assert_eq!(help.exit_code(), 0);
    let text = help.to_string();
    for needle in ["test.cfg", "--listen", "replaces every listen=", "stderr", "listening on", "SIGTERM", "SIGHUP"] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}

#[test]
fn no_listen_is_every_interface_on_5060() {
    let launch = Launch::new(Answer, Settings::default());
    assert_eq!(launch.listen_specs(), [ListenSpec { transport: None, host: "*".into(), port: None }]);
    // The first --listen replaces, later ones add.
    let launch = launch.listen("udp:127.0.0.1:0".parse().unwrap()).listen("tcp:127.0.0.1:0".parse().unwrap());
    assert_eq!(launch.listen_specs().len(), 2);
}

#[test]
fn debug_maps_to_tracing_levels_as_openser_prints() {
    // debug=N prints levels numbered at most N: L_ERR -1, L_WARN 1, L_NOTICE 2, L_INFO 3, L_DBG 4.
    let expected = [
        (-3, LevelFilter::ERROR),
        (-1, LevelFilter::ERROR),
        (0, LevelFilter::ERROR),
        (1, LevelFilter::WARN),
        (2, LevelFilter::INFO),
        (3, LevelFilter::INFO),
        (4, LevelFilter::DEBUG),
    ];
    for (debug, level) in expected {
        assert_eq!(level_for_debug(debug), level, "debug={debug}");
    }
    // Without debug=: OpenSER's default (L_NOTICE), INFO.
    let cfg = Settings::default();
    assert_eq!(parse(&cfg, &[]).unwrap().log_level(&cfg), LevelFilter::INFO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_can_read_one_shared_udp_socket() {
    // `--udp-layout shared`: one socket per UDP listen, every worker reading it.
    let cli =
        parse(&settings(&[]), &["--udp-layout", "shared", "--listen", "udp:127.0.0.1:0", "--workers", "2"]).unwrap();
    let running = Launch::new(Answer, settings(&[])).with_args(&cli).start().await.expect("the proxy starts");
    let udp = running.local_addrs()[0].1;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let mut buf = vec![0u8; 65536];
    for _ in 0..4 {
        client.send_to(options(udp, "UDP", client_addr).as_bytes(), udp).await.unwrap();
        let (n, from) =
            tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.expect("a reply").unwrap();
        assert_eq!(from, udp, "answered from the shared socket");
        assert_eq!(status(&buf[..n], Framing::Datagram), 200);
    }
    running.shutdown().await;
}
