//! acc's log accounting through tm, on real UDP sockets (127.0.0.1,
//! ephemeral ports), with the log lines captured from `tracing`. The route,
//! as the code generator writes
//!
//! ```text
//! modparam("acc", "log_flag", 1)  modparam("acc", "log_missed_flag", 2)
//! modparam("acc", "failed_transaction_flag", 3)  modparam("acc", "report_ack", 1)
//! modparam("acc", "log_extra", "src_user=$fU;ru=$ru")
//! route { setflag(…); [t_on_failure("1");] $du = "sip:UAS1"; t_relay(); exit; }
//! failure_route[1] { [setflag(2);] $du = "sip:UAS2"; t_relay(); }
//! ```

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{answer, recv_within};
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{acc, core, tm};
use serc_runtime::proxy::{Local, Source, Transport as ProxyTransport};
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow, Value, Vars};
use serc_runtime::sip::{Framing, Message, Method};
use serc_runtime::transport::{Listen, Server, ServerConfig};
use tokio::net::UdpSocket;

/// Every `ACC: …` line logged in this test binary (one global subscriber;
/// each test picks its own by Call-ID).
fn lines() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        lines
    })
}

struct Sink(Arc<Mutex<Vec<String>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        for line in text.lines() {
            if let Some(at) = line.find("ACC: ") {
                self.0.lock().unwrap().push(line[at..].to_string());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines of call `call_id`, with the timestamp checked (now, ±5 s) and
/// replaced by `T`.
fn lines_of(call_id: &str) -> Vec<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let all = lines().lock().unwrap().clone();
    all.into_iter()
        .filter(|l| l.contains(&format!(";call_id={call_id};")))
        .map(|l| {
            let start = l.find("timestamp=").expect("a timestamp") + "timestamp=".len();
            let end = start + l[start..].find(';').unwrap();
            let ts: u64 = l[start..end].parse().expect("a number");
            assert!(ts.abs_diff(now) <= 5, "timestamp {ts} is now ({now})");
            format!("{}T{}", &l[..start], &l[end..])
        })
        .collect()
}

struct Accounted {
    first: SocketAddr,
    second: SocketAddr,
    /// The flags the request route sets.
    flags: &'static [u32],
    /// Whether it arms `failure_route[1]`.
    arm: bool,
    /// Whether the failure route sets `log_missed_flag` again.
    again: bool,
}

impl Script for Accounted {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        // MESSAGE: `setflag(1); t_newtran(); setflag(3); [t_flush_flags();]
        // t_reply("404", "Nope");` — log_flag makes the transaction of
        // interest as it is created; failed_transaction_flag, set later,
        // counts only once flushed.
        if ctx.msg.method() == Some(Method::Message) {
            core::setflag(ctx, 1);
            tm::t_newtran(ctx);
            core::setflag(ctx, 3);
            if ctx.msg.headers_by_text("X-Flush").next().is_some() {
                assert_eq!(tm::t_flush_flags(ctx), 1);
            }
            tm::t_reply(ctx, &ReplyCode::Fixed(404), &Format::literal("Nope"));
            return Flow::Exit;
        }
        for f in self.flags {
            core::setflag(ctx, *f);
        }
        if self.arm {
            tm::t_on_failure(ctx, 1);
        }
        ctx.dst_uri = Some(format!("sip:{}", self.first));
        tm::t_relay_0(ctx);
        Flow::Exit
    }

    fn failure_route(&self, _id: u32, ctx: &mut Ctx) -> Flow {
        assert!(!ctx.flag(2), "the failure route starts with log_missed_flag cleared");
        if self.again {
            core::setflag(ctx, 2);
        }
        ctx.dst_uri = Some(format!("sip:{}", self.second));
        tm::t_relay_0(ctx);
        Flow::Exit
    }
}

struct Setup {
    handle: serc_runtime::transport::ServerHandle,
    proxy: SocketAddr,
    uac: UdpSocket,
    first: UdpSocket,
    second: UdpSocket,
}

fn acc_config(addr: SocketAddr) -> Config {
    let mut config = Config { locals: vec![Local::new(ProxyTransport::Udp, addr)], ..Config::default() };
    for (p, v) in [("log_flag", 1), ("log_missed_flag", 2), ("failed_transaction_flag", 3), ("report_ack", 1)] {
        config.params.set("acc", p, Value::Int(v));
    }
    config.params.set("acc", "log_extra", Value::str("src_user=$fU;ru=$ru"));
    config.params.set("tm", "fr_timer", Value::Int(1));
    config.params.set("tm", "fr_inv_timer", Value::Int(1));
    config
}

async fn start(flags: &'static [u32], arm: bool, again: bool) -> Setup {
    lines();
    let uac = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let script =
        Accounted { first: first.local_addr().unwrap(), second: second.local_addr().unwrap(), flags, arm, again };
    let proxy = Arc::new(Proxy::new(script, acc_config(addr)));
    let server = ServerConfig { listens: vec![Listen::udp(addr)], workers: 2, ..ServerConfig::default() };
    let handle = Server::start(server, proxy).await.expect("the proxy starts");
    Setup { handle, proxy: addr, uac, first, second }
}

fn invite(client: SocketAddr, call_id: &str) -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{client}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn ack(client: SocketAddr, call_id: &str) -> String {
    format!(
        "ACK sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client};branch=z9hG4bK{call_id}ack;rport\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>;tag=uas1\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The next message that is not a 100 nor a retransmitted INVITE.
async fn next(sock: &UdpSocket) -> Message {
    loop {
        let m = recv_within(sock, Duration::from_secs(5)).await.expect("a message within 5 s");
        if m.status() == Some(100) || m.method() == Some(Method::Invite) && m.to_tag.is_some() {
            continue;
        }
        return m;
    }
}

async fn invite_to(s: &Setup, call_id: &str) -> Message {
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, call_id).as_bytes(), s.proxy).await.unwrap();
    let m = next(&s.first).await;
    assert_eq!(m.method(), Some(Method::Invite));
    m
}

/// The line acc logs for call `call_id`: `text`, the fields, the extras.
fn expect(text: &str, method: &str, to_tag: &str, call_id: &str, code: &str) -> String {
    format!(
        "ACC: {text}: timestamp=T;method={method};from_tag=1928301774;to_tag={to_tag};call_id={call_id};\
         code={code};src_user=alice;ru=sip:bob@biloxi.example.com"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_is_logged_once_and_its_ack_too() {
    let s = start(&[1], false, false).await;
    let call = "acc-answered";
    let inv = invite_to(&s, call).await;
    // The 200 and a retransmission of it: both reach the UAC, one line.
    s.first.send_to(answer(&inv, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac).await.status(), Some(200));
    s.first.send_to(answer(&inv, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac).await.status(), Some(200));
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(ack(uac, call).as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.first).await.method(), Some(Method::Ack));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        lines_of(call),
        [
            expect("transaction answered", "INVITE", "uas1", call, "200;reason=OK"),
            expect("request acknowledged", "ACK", "uas1", call, "200;reason=OK"),
        ]
    );
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_of_another_dialog_is_logged_too() {
    // A forking proxy downstream answers the one branch twice, with two To
    // tags: each 2xx goes upstream and is logged, which reads the request
    // again after the first (tm keeps it while acc records).
    let s = start(&[1], false, false).await;
    let call = "acc-forked";
    let inv = invite_to(&s, call).await;
    let first = answer(&inv, 200, "OK");
    s.first.send_to(first.as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac).await.status(), Some(200));
    let second = first.replace(";tag=uas1", ";tag=uas2");
    s.first.send_to(second.as_bytes(), s.proxy).await.unwrap();
    let relayed = next(&s.uac).await;
    assert_eq!((relayed.status(), relayed.to_tag.map(|t| relayed.text(t))), (Some(200), Some("uas2")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        lines_of(call),
        [
            expect("transaction answered", "INVITE", "uas1", call, "200;reason=OK"),
            expect("transaction answered", "INVITE", "uas2", call, "200;reason=OK"),
        ]
    );
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_callee_is_a_missed_call_and_a_failed_transaction_only_with_its_flag() {
    // log_flag and log_missed_flag: the missed call only.
    let s = start(&[1, 2], false, false).await;
    let call = "acc-missed";
    let inv = invite_to(&s, call).await;
    s.first.send_to(answer(&inv, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac).await.status(), Some(486));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lines_of(call), [expect("call missed", "INVITE", "uas1", call, "486;reason=Busy Here")]);
    s.handle.shutdown().await;

    // log_flag and failed_transaction_flag: the failed transaction.
    let s = start(&[1, 3], false, false).await;
    let call = "acc-failed";
    let inv = invite_to(&s, call).await;
    s.first.send_to(answer(&inv, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac).await.status(), Some(486));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lines_of(call), [expect("transaction answered", "INVITE", "uas1", call, "486;reason=Busy Here")]);
    s.handle.shutdown().await;

    // No flag: nothing.
    let s = start(&[], false, false).await;
    let call = "acc-none";
    let inv = invite_to(&s, call).await;
    s.first.send_to(answer(&inv, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac).await.status(), Some(486));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(lines_of(call).is_empty());
    s.handle.shutdown().await;
}

/// Serial forking: each failure is a missed call only when the flag is set
/// again for the next attempt (1.3 clears it once reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_route_sees_the_missed_call_logged_once_per_flagged_attempt() {
    for again in [false, true] {
        let s = start(&[2], true, again).await;
        let call = if again { "acc-serial-again" } else { "acc-serial" };
        let inv = invite_to(&s, call).await;
        s.first.send_to(answer(&inv, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
        let inv2 = next(&s.second).await;
        assert_eq!(inv2.method(), Some(Method::Invite));
        s.second.send_to(answer(&inv2, 603, "Decline").as_bytes(), s.proxy).await.unwrap();
        assert_eq!(next(&s.uac).await.status(), Some(603));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut want = vec![expect("call missed", "INVITE", "uas1", call, "486;reason=Busy Here")];
        if again {
            want.push(expect("call missed", "INVITE", "uas1", call, "603;reason=Decline"));
        }
        assert_eq!(lines_of(call), want, "flag set again: {again}");
        s.handle.shutdown().await;
    }
}

/// An accounted INVITE never times out silently (as noisy_ctimer): the UAC
/// gets the 408 and the missed call is logged with the request's To tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounted_invite_that_rings_out_gets_a_408() {
    let s = start(&[2], false, false).await;
    let call = "acc-timeout";
    let inv = invite_to(&s, call).await;
    s.first.send_to(answer(&inv, 180, "Ringing").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac).await.status(), Some(180));
    let started = std::time::Instant::now();
    let timeout = next(&s.uac).await;
    assert_eq!(timeout.status(), Some(408));
    assert!(started.elapsed() < Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lines_of(call), [expect("call missed", "INVITE", "", call, "408;reason=Request Timeout")]);
    s.handle.shutdown().await;
}

#[test]
fn acc_log_request_logs_the_request_with_the_comments_code() {
    lines();
    let addr: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let config = acc_config(addr);
    let call = "acc-request";
    let msg = Message::parse(bytes::Bytes::from(invite(addr, call)), Framing::Datagram).unwrap();
    let src = Source { transport: ProxyTransport::Udp, addr, local: addr };
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(acc::acc_log_request(&mut ctx, "404 Not found here"), 1);
    assert_eq!(acc::acc_log_request(&mut ctx, "checked"), 1);
    assert_eq!(
        lines_of(call),
        [
            expect("request accounted", "INVITE", "", call, "404;reason=Not found here"),
            expect("request accounted", "INVITE", "", call, ";reason=checked"),
        ]
    );
}

/// Flags set after `t_newtran` reach the transaction only through
/// `t_flush_flags` (OpenSER copies them at `t_relay`); tm's own reply has the
/// request's To tag (none). (Whether acc looks at a transaction at all is
/// decided by the flags it was created with, as 1.3's `TMCB_REQUEST_IN`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t_flush_flags_makes_later_flags_count() {
    let s = start(&[], false, false).await;
    let uac = s.uac.local_addr().unwrap();
    for (call, flush) in [("acc-noflush", ""), ("acc-flush", "X-Flush: yes\r\n")] {
        let msg = format!(
            "MESSAGE sip:bob@biloxi.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP {uac};branch=z9hG4bK{call};rport\r\n\
             Max-Forwards: 70\r\n\
             To: Bob <sip:bob@biloxi.example.com>\r\n\
             From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
             Call-ID: {call}\r\n\
             CSeq: 1 MESSAGE\r\n\
             {flush}Content-Length: 0\r\n\r\n"
        );
        s.uac.send_to(msg.as_bytes(), s.proxy).await.unwrap();
        assert_eq!(next(&s.uac).await.status(), Some(404));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(lines_of("acc-noflush").is_empty());
    assert_eq!(
        lines_of("acc-flush"),
        ["ACC: transaction answered: timestamp=T;method=MESSAGE;from_tag=1928301774;to_tag=;call_id=acc-flush;\
          code=404;reason=Nope;src_user=alice;ru=sip:bob@biloxi.example.com"]
    );
    s.handle.shutdown().await;
}
