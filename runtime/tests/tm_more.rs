//! tm on real UDP sockets (127.0.0.1, ephemeral ports): a 503 from the only
//! branch goes upstream as a 500 (RFC 3261 §16.7 step 6), `fr_timer_avp`
//! shortens the final-response timer of one transaction, `t_local_replied`
//! in a failure route, `onreply_avp_mode`, host names as destinations, and
//! `t_replicate` (REGISTERs). The route, as the code generator writes
//!
//! ```text
//! modparam("tm", "fr_timer", 30)  modparam("tm", "fr_timer_avp", "$avp(i:24)")
//! route {
//!     if ($hdr(X-Fr) != null) $avp(i:24) = $hdr(X-Fr);
//!     if (method == "REGISTER") { if (!t_replicate("sip:UAS")) exit; sl_send_reply("200", "Saved"); exit; }
//!     t_on_failure("1"); t_on_reply("2"); $du = "sip:UAS"; t_relay(); exit;
//! }
//! onreply_route[2] { (records $avp(i:24)) }
//! failure_route[1] { t_local_replied("all"); t_local_replied("branch"); t_local_replied("last"); }
//! ```

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{answer, reason, recv_within};
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{sl, tm};
use serc_runtime::proxy::{Local, Transport as ProxyTransport};
use serc_runtime::script::args::{Format, ReplyCode, SocketSpec};
use serc_runtime::script::{AvpName, Config, Ctx, Flow, Value};
use serc_runtime::sip::{Message, Method};
use serc_runtime::transport::{Listen, Server, ServerConfig};
use tokio::net::UdpSocket;

struct Probe {
    uas: SocketAddr,
    /// `$du` instead of the UAS's address (a host name).
    du: Option<String>,
    /// What `t_local_replied("all"|"branch"|"last")` returned in each failure route.
    local_replied: Arc<Mutex<Vec<[i32; 3]>>>,
    /// `$avp(i:24)` as each `onreply_route[2]` saw it.
    reply_avps: Arc<Mutex<Vec<Option<String>>>>,
}

impl Script for Probe {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        // REGISTER: `t_replicate("sip:UAS"); sl_send_reply("200", "Saved");`
        // (as a registrar replicating to another, `save` answering).
        if ctx.msg.method() == Some(Method::Register) {
            let to = Format::literal(&format!("sip:{}", self.uas));
            let rc = tm::t_replicate_1(ctx, &to);
            if ctx.ret(rc) == 0 {
                return Flow::Exit;
            }
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(200), &Format::literal("Saved"));
            return Flow::Exit;
        }
        if let Some(h) = ctx.msg.headers_by_text("X-Fr").next() {
            let secs = ctx.msg.text(h.value).trim().to_string();
            ctx.avps.push(AvpName::Int(24), Value::Str(secs));
        }
        tm::t_on_failure(ctx, 1);
        tm::t_on_reply(ctx, 2);
        ctx.dst_uri = Some(self.du.clone().unwrap_or_else(|| format!("sip:{}", self.uas)));
        // `X-Relay: 2:FLAGS` → t_relay("udp:UAS", FLAGS); `X-Relay: 1:FLAGS` →
        // t_relay("FLAGS") (a bare number: flags, to $du).
        let relay = ctx.msg.headers_by_text("X-Relay").next().map(|h| ctx.msg.text(h.value).to_string());
        match relay.as_deref().and_then(|r| r.split_once(':')) {
            Some(("2", flags)) => {
                let to = SocketSpec::parse(&format!("udp:{}", self.uas)).unwrap();
                tm::t_relay_2(ctx, &to, flags.parse().unwrap());
            }
            Some(("1", flags)) => {
                tm::t_relay_1(ctx, &SocketSpec::parse(flags).unwrap());
            }
            _ => {
                tm::t_relay_0(ctx);
            }
        }
        Flow::Exit
    }

    fn onreply_route(&self, _id: u32, ctx: &mut Ctx) -> Flow {
        let avp = ctx.avps.get(&AvpName::Int(24)).map(|v| v.as_text().to_string());
        self.reply_avps.lock().unwrap().push(avp);
        Flow::Return(1)
    }

    fn failure_route(&self, _id: u32, ctx: &mut Ctx) -> Flow {
        let got = ["all", "branch", "last"].map(|w| tm::t_local_replied(ctx, w));
        self.local_replied.lock().unwrap().push(got);
        Flow::Exit
    }
}

struct Setup {
    handle: serc_runtime::transport::ServerHandle,
    proxy: SocketAddr,
    uac: UdpSocket,
    uas: UdpSocket,
    local_replied: Arc<Mutex<Vec<[i32; 3]>>>,
    reply_avps: Arc<Mutex<Vec<Option<String>>>>,
}

async fn start() -> Setup {
    start_to(None, None).await
}

async fn start_to(du: Option<String>, resolver: Option<serc_runtime::resolve::Resolver>) -> Setup {
    start_with(du, resolver, &[]).await
}

/// With `$du` = `du`, resolving with `resolver`, with more tm modparams.
async fn start_with(
    du: Option<String>,
    resolver: Option<serc_runtime::resolve::Resolver>,
    params: &[(&str, i64)],
) -> Setup {
    let uac = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let uas_addr = uas.local_addr().unwrap();
    let du = du.map(|d| d.replace("PORT", &uas_addr.port().to_string()));
    let script = Probe { uas: uas_addr, du, local_replied: Arc::default(), reply_avps: Arc::default() };
    let (local_replied, reply_avps) = (script.local_replied.clone(), script.reply_avps.clone());
    let mut config = Config { locals: vec![Local::new(ProxyTransport::Udp, addr)], ..Config::default() };
    config.params.set("tm", "fr_timer", Value::Int(30));
    config.params.set("tm", "fr_timer_avp", Value::str("$avp(i:24)"));
    for (p, v) in params {
        match *p {
            // Not a modparam: the built proxy's --max-transactions.
            "max_transactions" => config.max_transactions = Some(*v as usize),
            p => config.params.set("tm", p, Value::Int(*v)),
        }
    }
    let mut proxy = Proxy::new(script, config);
    if let Some(r) = resolver {
        proxy = proxy.with_resolver(Arc::new(r));
    }
    let proxy = Arc::new(proxy);
    let server = ServerConfig { listens: vec![Listen::udp(addr)], workers: 2, ..ServerConfig::default() };
    let handle = Server::start(server, proxy).await.expect("the proxy starts");
    Setup { handle, proxy: addr, uac, uas, local_replied, reply_avps }
}

fn invite(client: SocketAddr, branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: {branch}@{client}\r\n\
         CSeq: 1 INVITE\r\n\
         {extra}Contact: <sip:alice@{client}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The next message within `wait` that is not a 100.
async fn next(sock: &UdpSocket, wait: Duration) -> Option<Message> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = recv_within(sock, left).await?;
        if m.status() == Some(100) {
            continue;
        }
        return Some(m);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_goes_upstream_as_500() {
    let s = start().await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bK503", "").as_bytes(), s.proxy).await.unwrap();
    let inv = next(&s.uas, Duration::from_secs(5)).await.expect("the INVITE");
    assert_eq!(inv.method(), Some(Method::Invite));
    s.uas.send_to(answer(&inv, 503, "Service Unavailable").as_bytes(), s.proxy).await.unwrap();
    let last = next(&s.uac, Duration::from_secs(5)).await.expect("a final");
    assert_eq!((last.status(), reason(&last)), (Some(500), "Server Internal Error"));
    assert!(last.to_tag.is_some());
    // The failure route saw a branch that replied, a reply that was not ours.
    assert_eq!(*s.local_replied.lock().unwrap(), [[-1, -1, -1]]);
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fr_timer_avp_sets_the_timer_of_one_transaction() {
    let s = start().await;
    let uac = s.uac.local_addr().unwrap();
    // With $avp(i:24) = 1: 408 after a second, not after fr_timer's 30.
    let sent = Instant::now();
    s.uac.send_to(invite(uac, "z9hG4bKfravp", "X-Fr: 1\r\n").as_bytes(), s.proxy).await.unwrap();
    assert!(next(&s.uas, Duration::from_secs(5)).await.is_some_and(|m| m.method() == Some(Method::Invite)));
    let last = next(&s.uac, Duration::from_secs(5)).await.expect("a final");
    assert_eq!(last.status(), Some(408));
    let elapsed = sent.elapsed();
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3), "408 after {elapsed:?}");
    // tm's own 408, no reply from the branch: local on every count.
    assert_eq!(*s.local_replied.lock().unwrap(), [[1, 1, 1]]);

    // Without the AVP: fr_timer (30 s), nothing within 2.5 s (a UAC of its
    // own: the first still gets the unacknowledged 408 again).
    let uac2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr2 = uac2.local_addr().unwrap();
    uac2.send_to(invite(addr2, "z9hG4bKnoavp", "").as_bytes(), s.proxy).await.unwrap();
    let inv = loop {
        let m = next(&s.uas, Duration::from_secs(5)).await.expect("the second INVITE");
        if m.text(m.call_id).starts_with("z9hG4bKnoavp") {
            break m;
        }
    };
    assert_eq!(inv.method(), Some(Method::Invite));
    assert!(next(&uac2, Duration::from_millis(2500)).await.is_none(), "no final before fr_timer");
    s.handle.shutdown().await;
}

/// A resolver reading `hosts` (if any) and then a name server that never
/// answers (200 ms timeout).
async fn resolver(hosts: Option<&std::path::Path>) -> (serc_runtime::resolve::Resolver, UdpSocket) {
    use serc_runtime::resolve::{Config as DnsConfig, Families, HostsFile, Resolver};
    let silent_dns = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dns = DnsConfig {
        hosts: hosts.map_or(HostsFile::None, |h| HostsFile::Path(h.to_path_buf())),
        families: Families::Ipv4,
        timeout: Some(Duration::from_millis(200)),
        attempts: Some(1),
        ..DnsConfig::default()
    };
    (Resolver::with_name_servers(&[silent_dns.local_addr().unwrap()], dns).unwrap(), silent_dns)
}

/// `$du = "sip:uas.serc.test:PORT"; t_relay();` — the branch waits for the
/// resolver (a task: the worker does not), then goes; the next call finds the
/// answer cached. A name nobody resolves ends the branch with tm's 478.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_is_resolved_for_a_stateful_branch() {
    let hosts = std::env::temp_dir().join(format!("serc-tm-hosts-{}", std::process::id()));
    std::fs::write(&hosts, "127.0.0.1 uas.serc.test\n").unwrap();
    let (r, _dns) = resolver(Some(&hosts)).await;
    let s = start_to(Some("sip:uas.serc.test:PORT".into()), Some(r)).await;
    let uac = s.uac.local_addr().unwrap();
    for branch in ["z9hG4bKbyname1", "z9hG4bKbyname2"] {
        s.uac.send_to(invite(uac, branch, "").as_bytes(), s.proxy).await.unwrap();
        let inv = next(&s.uas, Duration::from_secs(5)).await.expect("the INVITE");
        assert_eq!(inv.method(), Some(Method::Invite));
        assert!(inv.text(inv.call_id).starts_with(branch));
        s.uas.send_to(answer(&inv, 200, "OK").as_bytes(), s.proxy).await.unwrap();
        let ok = next(&s.uac, Duration::from_secs(5)).await.expect("the 200");
        assert_eq!(ok.status(), Some(200));
    }
    s.handle.shutdown().await;
    let _ = std::fs::remove_file(hosts);

    let (r, _dns) = resolver(None).await;
    let s = start_to(Some("sip:nowhere.serc.test:PORT".into()), Some(r)).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKnowhere", "").as_bytes(), s.proxy).await.unwrap();
    let last = next(&s.uac, Duration::from_secs(5)).await.expect("a final");
    assert_eq!((last.status(), reason(&last)), (Some(478), "Unresolvable destination"));
    // The branch never got a reply: the failure route saw it as local.
    assert_eq!(*s.local_replied.lock().unwrap(), [[1, 1, 1]]);
    assert!(next(&s.uas, Duration::from_millis(200)).await.is_none(), "nothing was sent");
    s.handle.shutdown().await;
}

/// `t_replicate`: the copy reaches the other destination with the
/// Request-URI unchanged; its reply stays at the proxy (the client gets only
/// the script's own answer); a retransmission of the request is absorbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t_replicate_sends_a_copy_and_keeps_its_replies() {
    let s = start().await;
    let uac = s.uac.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:registrar.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {uac};branch=z9hG4bKrepl;rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:alice@registrar.example.com>\r\n\
         From: <sip:alice@registrar.example.com>;tag=r1\r\n\
         Call-ID: repl@{uac}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:alice@{uac}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    s.uac.send_to(register.as_bytes(), s.proxy).await.unwrap();
    let answer_ = next(&s.uac, Duration::from_secs(5)).await.expect("the script's answer");
    assert_eq!((answer_.status(), reason(&answer_)), (Some(200), "Saved"));
    let copy = next(&s.uas, Duration::from_secs(5)).await.expect("the copy");
    assert_eq!(copy.method(), Some(Method::Register));
    assert_eq!(copy.request_uri(), Some("sip:registrar.example.com"));
    s.uas.send_to(answer(&copy, 200, "Replicated").as_bytes(), s.proxy).await.unwrap();
    // The retransmission of the REGISTER is absorbed (no second copy, no answer).
    s.uac.send_to(register.as_bytes(), s.proxy).await.unwrap();
    assert!(next(&s.uac, Duration::from_millis(500)).await.is_none(), "the copy's 200 stays at the proxy");
    assert!(next(&s.uas, Duration::from_millis(200)).await.is_none(), "one copy");
    s.handle.shutdown().await;
}

/// `onreply_avp_mode`: 0 (the default) — a reply route sees the reply's own
/// AVPs (none); 1 — the transaction's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onreply_avp_mode_chooses_the_avps_a_reply_route_sees() {
    for mode in [0, 1] {
        let s = start_with(None, None, &[("onreply_avp_mode", mode)]).await;
        let uac = s.uac.local_addr().unwrap();
        s.uac.send_to(invite(uac, &format!("z9hG4bKavpmode{mode}"), "X-Fr: 30\r\n").as_bytes(), s.proxy).await.unwrap();
        let inv = next(&s.uas, Duration::from_secs(5)).await.expect("the INVITE");
        s.uas.send_to(answer(&inv, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
        assert_eq!(next(&s.uac, Duration::from_secs(5)).await.and_then(|m| m.status()), Some(486));
        let want = if mode == 1 { Some("30".to_string()) } else { None };
        assert_eq!(*s.reply_avps.lock().unwrap(), [want], "onreply_avp_mode {mode}");
        s.handle.shutdown().await;
    }
}

/// The table is bounded: with room for two transactions, the first INVITE
/// (a server and a client transaction) is relayed and the next gets 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_transactions_new_requests_get_503() {
    let s = start_with(None, None, &[("max_transactions", 2)]).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKfirst", "").as_bytes(), s.proxy).await.unwrap();
    let inv = next(&s.uas, Duration::from_secs(5)).await.expect("the first INVITE is relayed");
    assert_eq!(inv.method(), Some(Method::Invite));
    s.uac.send_to(invite(uac, "z9hG4bKsecond", "").as_bytes(), s.proxy).await.unwrap();
    let full = next(&s.uac, Duration::from_secs(5)).await.expect("an answer to the second");
    assert_eq!(full.status(), Some(503), "{}", String::from_utf8_lossy(full.bytes()));
    assert!(next(&s.uas, Duration::from_millis(300)).await.is_none(), "the second is not relayed");
    s.handle.shutdown().await;
}

/// `t_relay`'s flag 0x1: no 100 Trying (given as the second argument, or as
/// a bare number in the first); without it the 100 comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t_relay_flag_1_sends_no_100_trying() {
    let s = start().await;
    let uac = s.uac.local_addr().unwrap();
    for (branch, header, trying) in [
        ("z9hG4bKflags0", "", true),
        ("z9hG4bKflags2", "X-Relay: 2:1\r\n", false),
        ("z9hG4bKflags1", "X-Relay: 1:0x1\r\n", false),
    ] {
        s.uac.send_to(invite(uac, branch, header).as_bytes(), s.proxy).await.unwrap();
        let inv = next(&s.uas, Duration::from_secs(5)).await.expect("the INVITE is relayed");
        s.uas.send_to(answer(&inv, 200, "OK").as_bytes(), s.proxy).await.unwrap();
        let first = recv_within(&s.uac, Duration::from_secs(5)).await.expect("an answer");
        let expected = if trying { 100 } else { 200 };
        assert_eq!(first.status(), Some(expected), "{header:?}");
        if trying {
            assert_eq!(next(&s.uac, Duration::from_secs(5)).await.unwrap().status(), Some(200));
        }
    }
    s.handle.shutdown().await;
}

/// t_relay starts no branch whose Request-URI would not parse (a script's
/// `$ru`, a contact `lookup` set), even with `$du` naming the next hop: the
/// caller gets the 478 of a request no branch could take, no 100 (found by `cargo xtask fuzz route_sip`: the client
/// transaction was made of a request that does not parse).
#[test]
fn t_relay_starts_no_branch_whose_request_uri_would_not_parse() {
    struct BadRuri(Arc<Mutex<Vec<i32>>>);
    impl Script for BadRuri {
        fn request(&self, ctx: &mut Ctx) -> Flow {
            ctx.dst_uri = Some("sip:192.0.2.50".into());
            ctx.ruri =
                Some(ctx.msg.headers_by_text("X-Ruri").next().map(|h| ctx.msg.text(h.value).to_string()).unwrap());
            let rc = tm::t_relay_0(ctx);
            self.0.lock().unwrap().push(rc);
            Flow::Exit
        }
    }
    let rcs = Arc::new(Mutex::new(Vec::new()));
    let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let config = Config { locals: vec![Local::new(ProxyTransport::Udp, local)], ..Config::default() };
    let proxy = Proxy::new(BadRuri(rcs.clone()), config);
    let src =
        serc_runtime::proxy::Source { transport: ProxyTransport::Udp, addr: "127.0.0.1:5061".parse().unwrap(), local };
    let invite = |n: u32, ruri: &str| {
        bytes::Bytes::from(format!(
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-ruri-{n}\r\n\
             From: <sip:alice@127.0.0.1>;tag=a{n}\r\n\
             To: <sip:bob@127.0.0.1>\r\n\
             Call-ID: ruri-{n}\r\n\
             CSeq: 1 INVITE\r\n\
             Max-Forwards: 70\r\n\
             X-Ruri: {ruri}\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    };
    // No branch could start: the transaction ends with 1.3's answer for that.
    let sent = proxy.route(invite(1, "sip:bob@192.0.2.1:50.0"), src, serc_runtime::sip::Framing::Datagram);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].bytes.starts_with(b"SIP/2.0 478 "), "{sent:?}");
    let sent = proxy.route(invite(2, "sip:bob@192.0.2.1:5080"), src, serc_runtime::sip::Framing::Datagram);
    let relayed: Vec<Message> = sent
        .iter()
        .map(|s| Message::parse(s.bytes.clone(), serc_runtime::sip::Framing::Datagram).unwrap())
        .filter(|m| m.is_request())
        .collect();
    assert_eq!(relayed.len(), 1, "{sent:?}");
    assert_eq!(relayed[0].request_uri(), Some("sip:bob@192.0.2.1:5080"));
    let rcs = rcs.lock().unwrap();
    // 0: answered statefully, the script stops (1.3's t_relay_to).
    assert_eq!((rcs[0], rcs[1] > 0), (0, true), "{rcs:?}");
}

/// A header the script never reads is relayed as it came, even when it is
/// malformed: RFC 4475 §3.1.2.12's Date in EST ("acceptable to reject …
/// only if Date matters to processing"). tm then still works on the
/// request it keeps (found by `cargo xtask fuzz route_sip`: tm parsed a kept
/// request again with every optional header validated, and found none):
/// the callee's 486 is ACKed and goes upstream, a CANCEL reaches a branch
/// that rang, and a branch that never answers gets the caller a 408.
#[test]
fn tm_keeps_working_on_a_request_with_a_header_no_one_reads_malformed() {
    use serc_runtime::sip::{Framing, Interest};
    struct Relay;
    impl Script for Relay {
        fn interest(&self) -> Interest {
            Interest::NONE
        }
        fn request(&self, ctx: &mut Ctx) -> Flow {
            if ctx.msg.method() == Some(Method::Cancel) {
                if tm::t_check_trans(ctx) > 0 {
                    tm::t_relay_0(ctx);
                }
                return Flow::Exit;
            }
            ctx.dst_uri = Some("sip:192.0.2.50:5060".into());
            tm::t_relay_0(ctx);
            Flow::Exit
        }
    }
    let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let config = Config { locals: vec![Local::new(ProxyTransport::Udp, local)], ..Config::default() };
    let proxy = Proxy::new(Relay, config);
    let from =
        |addr: &str| serc_runtime::proxy::Source { transport: ProxyTransport::Udp, addr: addr.parse().unwrap(), local };
    let (uac, uas) = (from("127.0.0.1:5061"), from("192.0.2.50:5060"));
    let request = |method: &str, n: u32| {
        bytes::Bytes::from(format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-date-{n}\r\n\
             From: <sip:alice@127.0.0.1>;tag=a{n}\r\n\
             To: <sip:bob@127.0.0.1>\r\n\
             Call-ID: date-{n}\r\n\
             CSeq: 1 {method}\r\n\
             Max-Forwards: 70\r\n\
             Date: Fri, 01 Jan 2010 16:00:00 EST\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    };
    let parse = |sent: &[serc_runtime::script::Send]| -> Vec<Message> {
        sent.iter().map(|s| Message::parse_with(s.bytes.clone(), Framing::Datagram, Interest::NONE).unwrap()).collect()
    };
    let relayed = |sent: &[Message], method: Method| sent.iter().find(|m| m.method() == Some(method)).cloned();
    let statuses = |sent: &[Message]| sent.iter().filter_map(Message::status).collect::<Vec<_>>();
    let now = Instant::now();

    // A 486: ACKed to the callee, relayed to the caller.
    let sent = parse(&proxy.route_at(now, request("INVITE", 1), uac, Framing::Datagram));
    let invite = relayed(&sent, Method::Invite).expect("the INVITE is relayed");
    assert!(String::from_utf8_lossy(invite.bytes()).contains("Date: Fri, 01 Jan 2010 16:00:00 EST\r\n"));
    let busy = bytes::Bytes::from(answer(&invite, 486, "Busy Here"));
    let sent = parse(&proxy.route_at(now, busy, uas, Framing::Datagram));
    assert!(relayed(&sent, Method::Ack).is_some(), "the 486 is ACKed: {sent:?}");
    assert_eq!(statuses(&sent), [486]);

    // A CANCEL after a 180 reaches the branch.
    let sent = parse(&proxy.route_at(now, request("INVITE", 2), uac, Framing::Datagram));
    let invite = relayed(&sent, Method::Invite).expect("the INVITE is relayed");
    let ringing = bytes::Bytes::from(answer(&invite, 180, "Ringing"));
    assert_eq!(statuses(&parse(&proxy.route_at(now, ringing, uas, Framing::Datagram))), [180]);
    let cancel = request("INVITE", 2).slice(..).to_vec();
    let cancel = String::from_utf8(cancel).unwrap().replace("INVITE", "CANCEL");
    let sent = parse(&proxy.route_at(now, bytes::Bytes::from(cancel), uac, Framing::Datagram));
    assert!(relayed(&sent, Method::Cancel).is_some(), "the CANCEL goes to the branch: {sent:?}");

    // No answer at all: the caller gets a 408 once fr_timer (30 s) ran out.
    let sent = parse(&proxy.route_at(now, request("INVITE", 3), uac, Framing::Datagram));
    assert!(relayed(&sent, Method::Invite).is_some());
    let later = parse(&proxy.tm_timeout(now + Duration::from_secs(40)));
    assert!(statuses(&later).contains(&408), "{later:?}");
}
