//! Stateful proxying through tm: a route written the way the code generator
//! writes them (`t_relay`, `t_newtran`, `t_reply`, `t_check_trans`), on real
//! UDP sockets on 127.0.0.1 (a UAC and a UAS socket around the proxy), and
//! in-process through `Proxy::route_at` with a fake clock where timing is what
//! is checked.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{answer, recv_within, top_via};
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::tm;
use serc_runtime::proxy::{Local, Source, Target, Transport as ProxyTransport};
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow, Send, Value};
use serc_runtime::sip::{Framing, HeaderName, Message, Method};
use serc_runtime::transport::{Listen, Server, ServerConfig};
use tokio::net::UdpSocket;

/// ```text
/// route {
///     if (method == "MESSAGE") { if (!t_newtran()) exit; t_reply("404", "Not Here"); exit; }
///     if (method == "OPTIONS") { t_check_trans(); if (!t_newtran()) exit; t_check_trans(); t_release(); exit; }
///     $du = "sip:UAS"; t_relay(); exit;
/// }
/// onreply_route { }   # counts the replies it sees
/// ```
struct Stateful {
    uas: SocketAddr,
    replies_seen: Arc<AtomicUsize>,
    /// `$retcode` of the last `t_check_trans()` (OPTIONS), for the tests.
    check_trans: Arc<std::sync::Mutex<Vec<i32>>>,
}

impl Script for Stateful {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if ctx.msg.method() == Some(Method::Message) {
            let rc = tm::t_newtran(ctx);
            if ctx.ret(rc) <= 0 {
                return Flow::Exit;
            }
            let rc = tm::t_reply(ctx, &ReplyCode::Fixed(404), &Format::literal("Not Here"));
            ctx.ret(rc);
            return Flow::Exit;
        }
        if ctx.msg.method() == Some(Method::Options) {
            let before = tm::t_check_trans(ctx);
            let rc = tm::t_newtran(ctx);
            let after = tm::t_check_trans(ctx);
            self.check_trans.lock().unwrap().extend([before, rc, after]);
            if rc == 0 {
                return Flow::Exit;
            }
            tm::t_release(ctx);
            return Flow::Exit;
        }
        ctx.dst_uri = Some(format!("sip:{}", self.uas));
        let rc = tm::t_relay_0(ctx);
        if ctx.ret(rc) == 0 {
            return Flow::Exit;
        }
        Flow::Exit
    }

    fn reply(&self, _ctx: &mut Ctx) -> Flow {
        self.replies_seen.fetch_add(1, Ordering::Relaxed);
        Flow::Return(1)
    }
}

fn script(uas: SocketAddr) -> Stateful {
    Stateful { uas, replies_seen: Arc::default(), check_trans: Arc::default() }
}

fn config(local: SocketAddr, params: &[(&str, i64)]) -> Config {
    let mut config = Config { locals: vec![Local::new(ProxyTransport::Udp, local)], ..Config::default() };
    for (p, v) in params {
        config.params.set("tm", p, Value::Int(*v));
    }
    config
}

fn request(method: &str, client: SocketAddr, branch: &str, cseq: u32) -> String {
    format!(
        "{method} sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@{client}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@{client}>\r\n\
         Content-Length: 0\r\n\r\n",
    )
}

async fn recv(sock: &UdpSocket) -> Message {
    recv_within(sock, Duration::from_secs(5)).await.expect("a message within 5 s")
}

struct Setup {
    handle: serc_runtime::transport::ServerHandle,
    udp: SocketAddr,
    uac: UdpSocket,
    uas: UdpSocket,
    replies_seen: Arc<AtomicUsize>,
}

async fn start(params: &[(&str, i64)]) -> Setup {
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uac = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = probe.local_addr().unwrap();
    drop(probe);
    let script = script(uas.local_addr().unwrap());
    let replies_seen = script.replies_seen.clone();
    let proxy = Arc::new(Proxy::new(script, config(udp, params)));
    let server_config = ServerConfig { listens: vec![Listen::udp(udp)], workers: 2, ..ServerConfig::default() };
    let handle = Server::start(server_config, proxy).await.expect("the proxy starts");
    Setup { handle, udp, uac, uas, replies_seen }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_is_relayed_statefully_and_its_replies_come_back() {
    let s = start(&[]).await;
    let uac_addr = s.uac.local_addr().unwrap();
    s.uac.send_to(request("INVITE", uac_addr, "z9hG4bKinv1", 1).as_bytes(), s.udp).await.unwrap();

    // The proxy answers 100 itself (hop by hop, no To-tag) …
    let trying = recv(&s.uac).await;
    assert_eq!(trying.status(), Some(100));
    assert_eq!(trying.values(HeaderName::Via).count(), 1);
    assert!(trying.to_tag.is_none(), "a 100 gets no To-tag");
    // … and relays the INVITE: our Via with a branch of its own, Max-Forwards
    // decremented only if the script did (it did not).
    let inv = recv(&s.uas).await;
    let ours = top_via(&inv);
    assert!(ours.starts_with(&format!("SIP/2.0/UDP {};branch=z9hG4bK", s.udp)), "{ours}");
    assert!(ours.ends_with(".0"), "the first branch of the transaction: {ours}");
    assert_eq!(inv.values(HeaderName::Via).count(), 2);
    assert_eq!(inv.max_forwards, Some(70));

    // A 100 from the UAS stops at the proxy; a 180 and the 200 come back
    // without our Via.
    for (code, reason) in [(100, "Trying"), (180, "Ringing"), (200, "OK")] {
        s.uas.send_to(answer(&inv, code, reason).as_bytes(), s.udp).await.unwrap();
        if code == 100 {
            continue;
        }
        let r = recv(&s.uac).await;
        assert_eq!(r.status(), Some(code));
        assert_eq!(r.values(HeaderName::Via).count(), 1, "our Via removed");
        assert!(top_via(&r).contains("branch=z9hG4bKinv1"));
    }
    assert_eq!(s.replies_seen.load(Ordering::Relaxed), 3, "the bare onreply_route saw every reply");

    // The ACK of the 2xx is a new request: through the script, forwarded.
    let ack = request("ACK", uac_addr, "z9hG4bKack1", 1)
        .replace("To: Bob <sip:bob@biloxi.example.com>", "To: Bob <sip:bob@biloxi.example.com>;tag=uas1");
    s.uac.send_to(ack.as_bytes(), s.udp).await.unwrap();
    let fwd = recv(&s.uas).await;
    assert_eq!(fwd.method(), Some(Method::Ack));
    assert_eq!(fwd.values(HeaderName::Via).count(), 2);
    // Nothing else reaches the UAC (no retransmission of the 100 or the 200).
    assert!(recv_within(&s.uac, Duration::from_millis(300)).await.is_none());
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_invite_gets_408_after_fr_timer() {
    let s = start(&[("fr_timer", 1), ("fr_inv_timer", 3)]).await;
    let uac_addr = s.uac.local_addr().unwrap();
    let sent = std::time::Instant::now();
    s.uac.send_to(request("INVITE", uac_addr, "z9hG4bKlost", 1).as_bytes(), s.udp).await.unwrap();
    assert_eq!(recv(&s.uac).await.status(), Some(100));
    let r = recv(&s.uac).await;
    let elapsed = sent.elapsed();
    assert_eq!(r.status(), Some(408));
    assert!(r.to_tag.is_some(), "a local final gets a To-tag");
    assert!(elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2500), "{elapsed:?}");
    // The UAS saw the INVITE and its timer A retransmission (at T1 = 0.5 s),
    // then nothing once timer B fired at 1 s.
    let first = recv(&s.uas).await;
    let again = recv(&s.uas).await;
    assert_eq!(first.bytes(), again.bytes(), "timer A resends the same request");
    assert!(recv_within(&s.uas, Duration::from_millis(500)).await.is_none());
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmitted_invite_is_absorbed_and_a_negative_final_is_acked_hop_by_hop() {
    let s = start(&[]).await;
    let uac_addr = s.uac.local_addr().unwrap();
    let invite = request("INVITE", uac_addr, "z9hG4bKre1", 7);
    s.uac.send_to(invite.as_bytes(), s.udp).await.unwrap();
    let first = recv(&s.uas).await;
    let t0 = std::time::Instant::now();
    assert_eq!(recv(&s.uac).await.status(), Some(100));
    // The UAC retransmits: the proxy resends its 100 (§17.2.1) and does not
    // relay it; the UAS sees a copy only when timer A fires (T1 = 500 ms).
    s.uac.send_to(invite.as_bytes(), s.udp).await.unwrap();
    assert_eq!(recv(&s.uac).await.status(), Some(100), "the last reply resent");
    let again = recv(&s.uas).await;
    assert!(t0.elapsed() >= Duration::from_millis(350), "only timer A's copy: {:?}", t0.elapsed());
    assert_eq!(first.bytes(), again.bytes());

    // A 486: the proxy ACKs it itself and relays it; the UAC's ACK is absorbed.
    s.uas.send_to(answer(&first, 486, "Busy Here").as_bytes(), s.udp).await.unwrap();
    let ack = recv(&s.uas).await;
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(top_via(&ack), top_via(&first), "the ACK of a non-2xx has the INVITE's branch (§17.1.1.3)");
    let busy = recv(&s.uac).await;
    assert_eq!(busy.status(), Some(486));
    let uac_ack = request("ACK", uac_addr, "z9hG4bKre1", 7)
        .replace("To: Bob <sip:bob@biloxi.example.com>", "To: Bob <sip:bob@biloxi.example.com>;tag=uas1");
    s.uac.send_to(uac_ack.as_bytes(), s.udp).await.unwrap();
    assert!(recv_within(&s.uas, Duration::from_millis(700)).await.is_none(), "the UAC's ACK stops at the proxy");
    s.handle.shutdown().await;
}

/// The next message the UAS gets that is not a timer-A copy of the INVITE.
async fn recv_skipping_invites(sock: &UdpSocket) -> Message {
    loop {
        let m = recv(sock).await;
        if m.method() != Some(Method::Invite) {
            return m;
        }
    }
}

/// RFC 3261 §16.10: the CANCEL is answered 200 by the proxy and sent down the
/// pending branch (with the branch of the INVITE it cancels); the UAS's 487
/// ends the INVITE, ACKed by the proxy and relayed to the UAC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_ringing_reaches_the_uas_and_the_487_comes_back() {
    let s = start(&[]).await;
    let uac_addr = s.uac.local_addr().unwrap();
    s.uac.send_to(request("INVITE", uac_addr, "z9hG4bKcan1", 1).as_bytes(), s.udp).await.unwrap();
    assert_eq!(recv(&s.uac).await.status(), Some(100));
    let inv = recv(&s.uas).await;
    s.uas.send_to(answer(&inv, 180, "Ringing").as_bytes(), s.udp).await.unwrap();
    assert_eq!(recv(&s.uac).await.status(), Some(180));

    let cancel = request("CANCEL", uac_addr, "z9hG4bKcan1", 1).replace("Contact: <sip:alice@", "X-No: <sip:alice@");
    s.uac.send_to(cancel.as_bytes(), s.udp).await.unwrap();
    let ok = recv(&s.uac).await;
    assert_eq!((ok.status(), ok.cseq_method), (Some(200), Method::Cancel), "the proxy answers the CANCEL");
    let down = recv_skipping_invites(&s.uas).await;
    assert_eq!(down.method(), Some(Method::Cancel));
    assert_eq!(top_via(&down), top_via(&inv), "a CANCEL has the branch of the request it cancels (§9.1)");
    assert_eq!(down.cseq, inv.cseq);

    s.uas.send_to(answer(&down, 200, "OK").as_bytes(), s.udp).await.unwrap();
    s.uas.send_to(answer(&inv, 487, "Request Terminated").as_bytes(), s.udp).await.unwrap();
    let ack = recv_skipping_invites(&s.uas).await;
    assert_eq!(ack.method(), Some(Method::Ack), "the proxy ACKs the 487 hop by hop");
    let terminated = recv(&s.uac).await;
    assert_eq!(terminated.status(), Some(487));
    s.handle.shutdown().await;
}

/// §9.1: a branch that had no provisional response gets its CANCEL only once
/// one arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_before_any_provisional_waits_for_one() {
    let s = start(&[]).await;
    let uac_addr = s.uac.local_addr().unwrap();
    s.uac.send_to(request("INVITE", uac_addr, "z9hG4bKcan2", 1).as_bytes(), s.udp).await.unwrap();
    assert_eq!(recv(&s.uac).await.status(), Some(100));
    let inv = recv(&s.uas).await;
    let cancel = request("CANCEL", uac_addr, "z9hG4bKcan2", 1);
    s.uac.send_to(cancel.as_bytes(), s.udp).await.unwrap();
    assert_eq!(recv(&s.uac).await.status(), Some(200));
    // Nothing but timer A's copy of the INVITE reaches the UAS meanwhile.
    while let Some(m) = recv_within(&s.uas, Duration::from_millis(300)).await {
        assert_eq!(m.method(), Some(Method::Invite), "no CANCEL before a provisional");
    }
    s.uas.send_to(answer(&inv, 180, "Ringing").as_bytes(), s.udp).await.unwrap();
    let down = recv_skipping_invites(&s.uas).await;
    assert_eq!(down.method(), Some(Method::Cancel));
    assert_eq!(top_via(&down), top_via(&inv));
    s.handle.shutdown().await;
}

// ------------------------------------------------------------ in-process, fake clock

const PROXY: &str = "127.0.0.1:5060";
const UAC: &str = "127.0.0.1:40000";
const UAS: &str = "127.0.0.1:40001";

fn in_process(params: &[(&str, i64)]) -> Proxy<Stateful> {
    Proxy::new(script(UAS.parse().unwrap()), config(PROXY.parse().unwrap(), params))
}

fn from(addr: &str) -> Source {
    Source { transport: ProxyTransport::Udp, addr: addr.parse().unwrap(), local: PROXY.parse().unwrap() }
}

fn to(send: &Send) -> SocketAddr {
    match send.target {
        Target::Addr { addr, .. } => addr,
        Target::Name { .. } => panic!("an address"),
    }
}

fn parse(send: &Send) -> Message {
    Message::parse(send.bytes.clone(), Framing::Datagram).unwrap()
}

#[test]
fn t_reply_answers_through_the_transaction_and_a_retransmission_gets_it_again() {
    let p = in_process(&[]);
    let now = Instant::now();
    let msg = Bytes::from(request("MESSAGE", UAC.parse().unwrap(), "z9hG4bKmsg1", 3));
    let out = p.route_at(now, msg.clone(), from(UAC), Framing::Datagram);
    assert_eq!(out.len(), 1);
    let reply = parse(&out[0]);
    assert_eq!((reply.status(), to(&out[0])), (Some(404), UAC.parse().unwrap()));
    assert!(reply.to_tag.is_some());
    assert!(reply.headers_by_text("Server").next().is_some());
    let again = p.route_at(now + Duration::from_millis(200), msg, from(UAC), Framing::Datagram);
    assert_eq!(again.len(), 1, "the retransmission is answered once, by the table");
    assert_eq!(again[0].bytes, out[0].bytes, "the same reply, byte for byte");
    // Timer J (wt_timer) lets the transaction go; no timer resends a non-INVITE reply.
    assert!(p.tm_timeout(now + Duration::from_secs(4)).is_empty());
}

#[test]
fn t_check_trans_and_t_newtran_codes() {
    let p = in_process(&[]);
    let now = Instant::now();
    let opt = Bytes::from(request("OPTIONS", UAC.parse().unwrap(), "z9hG4bKopt1", 1));
    assert!(p.route_at(now, opt.clone(), from(UAC), Framing::Datagram).is_empty());
    // Unanswered and released: its retransmission matches (absorbed, nothing resent).
    assert!(p.route_at(now, opt, from(UAC), Framing::Datagram).is_empty());
    let codes = p.script.check_trans.lock().unwrap().clone();
    assert_eq!(codes, vec![-1, 1, 1, 0, 0, 0], "new: none, created, found; then a retransmission: 0");
}

#[test]
fn a_non_invite_without_answer_gets_408_and_an_invite_after_a_provisional_is_dropped_silently() {
    let p = in_process(&[("fr_timer", 2), ("fr_inv_timer", 3)]);
    let now = Instant::now();
    // A BYE nobody answers: timer E retransmits it, timer F (fr_timer) → 408 upstream.
    let bye = Bytes::from(request("BYE", UAC.parse().unwrap(), "z9hG4bKbye1", 2));
    let out = p.route_at(now, bye, from(UAC), Framing::Datagram);
    assert_eq!(out.len(), 1, "no 100 for a non-INVITE");
    assert_eq!(to(&out[0]), UAS.parse().unwrap());
    let retrans = p.tm_timeout(now + Duration::from_millis(500));
    assert_eq!(retrans.len(), 1);
    assert_eq!(retrans[0].bytes, out[0].bytes);
    let mut at = now + Duration::from_millis(500);
    let mut got_408 = false;
    while at < now + Duration::from_secs(3) {
        at += Duration::from_millis(100);
        for s in p.tm_timeout(at) {
            if to(&s) == UAC.parse().unwrap() {
                assert_eq!(parse(&s).status(), Some(408));
                assert!(at >= now + Duration::from_secs(2), "fr_timer");
                got_408 = true;
            }
        }
    }
    assert!(got_408);

    // An INVITE that got a 180 and nothing more: noisy_ctimer 0 ends it silently.
    let inv = Bytes::from(request("INVITE", UAC.parse().unwrap(), "z9hG4bKinv9", 1));
    let out = p.route_at(now, inv, from(UAC), Framing::Datagram);
    assert_eq!(out.iter().map(to).collect::<Vec<_>>(), vec![UAC.parse().unwrap(), UAS.parse().unwrap()]);
    let ringing = answer(&parse(&out[1]), 180, "Ringing");
    let relayed = p.route_at(now, Bytes::from(ringing), from(UAS), Framing::Datagram);
    assert_eq!(relayed.len(), 1);
    assert_eq!(parse(&relayed[0]).status(), Some(180));
    let mut at = now;
    while at < now + Duration::from_secs(6) {
        at += Duration::from_millis(250);
        assert!(p.tm_timeout(at).iter().all(|s| to(s) != UAC.parse().unwrap()), "nothing goes upstream");
    }

    // With noisy_ctimer 1 the UAC gets the 408.
    let p = in_process(&[("fr_timer", 2), ("fr_inv_timer", 3), ("noisy_ctimer", 1)]);
    let inv = Bytes::from(request("INVITE", UAC.parse().unwrap(), "z9hG4bKinv10", 1));
    let out = p.route_at(now, inv, from(UAC), Framing::Datagram);
    let ringing = answer(&parse(&out[1]), 180, "Ringing");
    p.route_at(now, Bytes::from(ringing), from(UAS), Framing::Datagram);
    let up: Vec<u16> = p
        .tm_timeout(now + Duration::from_secs(4))
        .iter()
        .filter(|s| to(s) == UAC.parse().unwrap())
        .filter_map(|s| parse(s).status())
        .collect();
    assert_eq!(up, vec![408]);
}

/// A branch to a host name waits for the resolver (`t_relay` succeeds); in
/// process, with no runtime to resolve on, the answer is at once that it
/// cannot be resolved: the branch ends with tm's 478, which goes upstream.
/// (Resolved names: tm_more.rs.)
#[test]
fn a_destination_name_that_cannot_be_resolved_gets_478() {
    struct ByName;
    impl Script for ByName {
        fn request(&self, ctx: &mut Ctx) -> Flow {
            ctx.dst_uri = Some("sip:uas.example.com".into());
            let rc = tm::t_relay_0(ctx);
            assert_eq!(ctx.ret(rc), 1, "the branch waits for the resolver");
            Flow::Exit
        }
    }
    let p = Proxy::new(ByName, config(PROXY.parse().unwrap(), &[]));
    let inv = Bytes::from(request("INVITE", UAC.parse().unwrap(), "z9hG4bKname", 1));
    let out = p.route_at(Instant::now(), inv, from(UAC), Framing::Datagram);
    let codes: Vec<u16> = out.iter().filter_map(|s| parse(s).status()).collect();
    assert_eq!(codes, vec![100, 478]);
    assert!(out.iter().all(|s| parse(s).method().is_none()), "no request was sent");
}

#[test]
fn t_relay_to_a_socket_sends_the_branch_there() {
    struct ToSocket(serc_runtime::script::args::SocketSpec);
    impl Script for ToSocket {
        fn request(&self, ctx: &mut Ctx) -> Flow {
            let rc = tm::t_relay_1(ctx, &self.0);
            ctx.ret(rc);
            Flow::Exit
        }
    }
    let spec = serc_runtime::script::args::SocketSpec::parse("udp:127.0.0.1:40002").unwrap();
    let p = Proxy::new(ToSocket(spec), config(PROXY.parse().unwrap(), &[]));
    let bye = Bytes::from(request("BYE", UAC.parse().unwrap(), "z9hG4bKsock", 2));
    let out = p.route_at(Instant::now(), bye, from(UAC), Framing::Datagram);
    assert_eq!(out.len(), 1);
    assert_eq!(to(&out[0]), "127.0.0.1:40002".parse().unwrap());
    assert_eq!(out[0].from, Some(PROXY.parse().unwrap()), "sent from our socket");
    let sent = parse(&out[0]);
    assert_eq!(sent.method(), Some(Method::Bye));
    assert!(top_via(&sent).starts_with(&format!("SIP/2.0/UDP {PROXY};branch=z9hG4bK")));
}
