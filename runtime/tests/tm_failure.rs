//! tm's failure routes on real UDP sockets (127.0.0.1, ephemeral ports): a
//! route written the way the code generator writes
//!
//! ```text
//! route { t_on_failure("1"); record_route(); $du = "sip:UAS1"; t_relay(); exit; }
//! failure_route[1] {
//!     if (t_was_cancelled()) { exit; }
//!     if (t_check_status("486|408")) { record_route(); $du = "sip:UAS2"; t_relay(); exit; }
//!     t_reply("480", "Nobody Home");
//! }
//! ```
//!
//! A 486 from the first UAS runs the failure route, which relays to the second
//! (serial forking): its 200 reaches the UAC and the first UAS got its ACK; a
//! first UAS that never answers times out (408) into the same route; another
//! negative final gets the route's own reply; with the route not armed the
//! best reply goes upstream as it is. The failure route knows the request is
//! record-routed already: its `record_route()` adds no second Record-Route.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{answer, reason, recv_within, top_via};
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{core, rr, textops, tm};
use serc_runtime::proxy::{Local, Transport as ProxyTransport};
use serc_runtime::script::args::{compile_regex, Format, Regex, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow, Value};
use serc_runtime::sip::{HeaderName, Message, Method};
use serc_runtime::transport::{Listen, Server, ServerConfig};
use tokio::net::UdpSocket;

struct Failover {
    first: SocketAddr,
    second: SocketAddr,
    /// Whether the request route arms `failure_route[1]`.
    arm: bool,
    /// Whether it arms `onreply_route[2]` (drops 180s, marks the others).
    on_reply: bool,
    /// Whether it forks to both destinations at once (`append_branch`).
    fork: bool,
    /// Whether it arms `branch_route[3]` (drops the branch to the second,
    /// marks the others).
    branch_route: bool,
    busy_or_timeout: Regex,
}

impl Script for Failover {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if self.arm {
            tm::t_on_failure(ctx, 1);
        }
        if self.on_reply {
            tm::t_on_reply(ctx, 2);
        }
        if self.branch_route {
            tm::t_on_branch(ctx, 3);
        }
        rr::record_route_0(ctx);
        if self.fork {
            ctx.ruri = Some(format!("sip:bob@{}", self.first));
            core::append_branch_1(ctx, &Format::literal(&format!("sip:bob@{}", self.second)));
        } else {
            ctx.dst_uri = Some(format!("sip:{}", self.first));
        }
        tm::t_relay_0(ctx);
        Flow::Exit
    }

    fn branch_route(&self, id: u32, ctx: &mut Ctx) -> Flow {
        assert_eq!(id, 3);
        if ctx.request_uri().ends_with(&self.second.to_string()) {
            return Flow::Drop;
        }
        let mark = format!("X-Branch: {}\r\n", ctx.request_uri());
        textops::append_hf_1(ctx, &Format::literal(&mark));
        Flow::Return(1)
    }

    fn onreply_route(&self, id: u32, ctx: &mut Ctx) -> Flow {
        assert_eq!(id, 2);
        if ctx.msg.status() == Some(180) {
            return Flow::Drop;
        }
        textops::append_hf_1(ctx, &Format::literal("X-Seen: onreply_route[2]\r\n"));
        Flow::Return(1)
    }

    fn failure_route(&self, id: u32, ctx: &mut Ctx) -> Flow {
        assert_eq!(id, 1);
        if tm::t_was_cancelled(ctx) > 0 {
            return Flow::Exit;
        }
        if tm::t_check_status(ctx, &self.busy_or_timeout) > 0 {
            // -1 ("double attempt to record-route"): the request route's is kept.
            rr::record_route_0(ctx);
            ctx.dst_uri = Some(format!("sip:{}", self.second));
            tm::t_relay_0(ctx);
            return Flow::Exit;
        }
        tm::t_reply(ctx, &ReplyCode::Fixed(480), &Format::literal("Nobody Home"));
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

async fn start(arm: bool, fr_timer: i64) -> Setup {
    start_with(arm, false, false, fr_timer).await
}

async fn start_with(arm: bool, on_reply: bool, fork: bool, fr_timer: i64) -> Setup {
    start_full(arm, on_reply, fork, false, fr_timer).await
}

async fn start_full(arm: bool, on_reply: bool, fork: bool, branch_route: bool, fr_timer: i64) -> Setup {
    let uac = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let script = Failover {
        first: first.local_addr().unwrap(),
        second: second.local_addr().unwrap(),
        arm,
        on_reply,
        fork,
        branch_route,
        busy_or_timeout: compile_regex("486|408").unwrap(),
    };
    let mut config = Config { locals: vec![Local::new(ProxyTransport::Udp, addr)], ..Config::default() };
    config.params.set("tm", "fr_timer", Value::Int(fr_timer));
    let proxy = Arc::new(Proxy::new(script, config));
    let server = ServerConfig { listens: vec![Listen::udp(addr)], workers: 2, ..ServerConfig::default() };
    let handle = Server::start(server, proxy).await.expect("the proxy starts");
    Setup { handle, proxy: addr, uac, first, second }
}

fn invite(client: SocketAddr, branch: &str) -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: {branch}@{client}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{client}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The next message that is not a 100 (UAC side) or a timer-A copy of an
/// INVITE already seen (UAS side).
async fn next(sock: &UdpSocket, skip_invites: bool) -> Message {
    loop {
        let m = recv_within(sock, Duration::from_secs(5)).await.expect("a message within 5 s");
        if m.status() == Some(100) || (skip_invites && m.method() == Some(Method::Invite)) {
            continue;
        }
        return m;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_first_destination_fails_over_to_the_second() {
    let s = start(true, 30).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKfo1").as_bytes(), s.proxy).await.unwrap();
    let to_first = next(&s.first, false).await;
    assert_eq!(to_first.method(), Some(Method::Invite));
    s.first.send_to(answer(&to_first, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
    // The first UAS gets the ACK of its 486 (hop by hop) …
    let ack = next(&s.first, true).await;
    assert_eq!(ack.method(), Some(Method::Ack));
    // … and the failure route relays the INVITE to the second: a new branch
    // of the same transaction, with the request as the request route left it.
    let to_second = next(&s.second, false).await;
    assert_eq!(to_second.method(), Some(Method::Invite));
    assert_ne!(top_via(&to_second), top_via(&to_first), "a branch of its own");
    assert!(top_via(&to_second).ends_with(".1"), "the second branch: {}", top_via(&to_second));
    let record_routes = |m: &Message| m.headers.iter().filter(|h| h.name == HeaderName::RecordRoute).count();
    assert_eq!(record_routes(&to_first), 1);
    assert_eq!(record_routes(&to_second), 1, "the failure route's record_route() adds nothing");
    s.second.send_to(answer(&to_second, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    let ok = next(&s.uac, false).await;
    assert_eq!(ok.status(), Some(200), "the UAC gets the second destination's 200, not the 486");
    assert!(recv_within(&s.uac, Duration::from_millis(300)).await.is_none(), "and nothing else");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_runs_the_failure_route_too() {
    let s = start(true, 1).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKfo2").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.first, false).await.method(), Some(Method::Invite));
    // The first never answers: after fr_timer (1 s) the 408 runs the route.
    let to_second = next(&s.second, false).await;
    assert_eq!(to_second.method(), Some(Method::Invite));
    s.second.send_to(answer(&to_second, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, false).await.status(), Some(200));
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_failures_get_the_routes_reply_and_unarmed_ones_the_best_reply() {
    let s = start(true, 30).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKfo3").as_bytes(), s.proxy).await.unwrap();
    let to_first = next(&s.first, false).await;
    s.first.send_to(answer(&to_first, 404, "Not Found").as_bytes(), s.proxy).await.unwrap();
    let r = next(&s.uac, false).await;
    assert_eq!((r.status(), reason(&r)), (Some(480), "Nobody Home"));
    assert!(recv_within(&s.second, Duration::from_millis(200)).await.is_none());
    s.handle.shutdown().await;

    let s = start(false, 30).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKfo4").as_bytes(), s.proxy).await.unwrap();
    let to_first = next(&s.first, false).await;
    s.first.send_to(answer(&to_first, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, false).await.status(), Some(486), "no failure route armed: the reply as it is");
    s.handle.shutdown().await;
}

/// `t_on_reply("2")`: `onreply_route[2]` sees the transaction's replies;
/// `drop` there drops a provisional, its edits go with the reply relayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_armed_reply_route_drops_provisionals_and_edits_replies() {
    let s = start_with(false, true, false, 30).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKor1").as_bytes(), s.proxy).await.unwrap();
    let to_first = next(&s.first, false).await;
    s.first.send_to(answer(&to_first, 180, "Ringing").as_bytes(), s.proxy).await.unwrap();
    s.first.send_to(answer(&to_first, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    let r = next(&s.uac, false).await;
    assert_eq!(r.status(), Some(200), "the 180 was dropped by the reply route");
    let seen: Vec<&str> = r.headers_by_text("X-Seen").map(|h| r.text(h.value)).collect();
    assert_eq!(seen, ["onreply_route[2]"]);
    s.handle.shutdown().await;
}

/// Parallel forking (RFC 3261 §16.6): the Request-URI and an appended branch
/// get the INVITE at once; the first 2xx goes upstream and the other branch,
/// which is ringing, is CANCELled (§16.7 step 10); its 487 stays at the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_branches_and_the_first_2xx_cancels_the_others() {
    let s = start_with(false, false, true, 30).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKfork1").as_bytes(), s.proxy).await.unwrap();
    let at_first = next(&s.first, false).await;
    let at_second = next(&s.second, false).await;
    assert_eq!((at_first.method(), at_second.method()), (Some(Method::Invite), Some(Method::Invite)));
    assert!(top_via(&at_first).ends_with(".0") && top_via(&at_second).ends_with(".1"), "two branches");
    assert_eq!(at_second.request_uri(), Some(format!("sip:bob@{}", s.second.local_addr().unwrap()).as_str()));
    s.first.send_to(answer(&at_first, 180, "Ringing").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, false).await.status(), Some(180));
    s.second.send_to(answer(&at_second, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, false).await.status(), Some(200));
    let cancel = next(&s.first, true).await;
    assert_eq!(cancel.method(), Some(Method::Cancel), "the ringing branch is cancelled");
    assert_eq!(top_via(&cancel), top_via(&at_first));
    s.first.send_to(answer(&cancel, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    s.first.send_to(answer(&at_first, 487, "Request Terminated").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.first, true).await.method(), Some(Method::Ack), "its 487 is ACKed by the proxy");
    assert!(recv_within(&s.uac, Duration::from_millis(300)).await.is_none(), "the 487 stays at the proxy");
    s.handle.shutdown().await;
}

/// `t_on_branch("3")`: `branch_route[3]` runs for each branch with its own
/// Request-URI; what it adds goes with that branch only, `drop` drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_route_runs_per_branch() {
    let s = start_full(false, false, true, true, 30).await;
    let uac = s.uac.local_addr().unwrap();
    s.uac.send_to(invite(uac, "z9hG4bKbr1").as_bytes(), s.proxy).await.unwrap();
    let at_first = next(&s.first, false).await;
    let marks: Vec<&str> = at_first.headers_by_text("X-Branch").map(|h| at_first.text(h.value)).collect();
    assert_eq!(marks, [format!("sip:bob@{}", s.first.local_addr().unwrap()).as_str()]);
    assert!(recv_within(&s.second, Duration::from_millis(300)).await.is_none(), "the second branch was dropped");
    s.first.send_to(answer(&at_first, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, false).await.status(), Some(200));
    s.handle.shutdown().await;
}
