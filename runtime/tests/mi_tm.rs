//! tm's MI commands on a running proxy (127.0.0.1, ephemeral ports): the
//! proxy originates requests with `t_uac_dlg` (a real UAS socket answers),
//! learns the dialog a 2xx to an INVITE confirms, cancels a ringing INVITE
//! with `t_uac_cancel`, answers 408 itself when nobody answers, and lists its
//! table with `t_hash`.

use std::net::SocketAddr;
use std::time::Duration;

use serc_runtime::app::Script;
use serc_runtime::launch::{Launch, Running, Settings};
use serc_runtime::mi::MiReply;
use serc_runtime::modules::tm;
use serc_runtime::script::{Ctx, Flow, Value};
use serc_runtime::sip::{Framing, Message};
use tokio::net::UdpSocket;

/// `route { t_relay(); }`
struct Relay;

impl Script for Relay {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        tm::t_relay_0(ctx);
        Flow::Exit
    }
}

const WAIT: Duration = Duration::from_secs(5);

async fn start() -> Running {
    let mut settings = Settings { cfg_name: "mi-tm.cfg".into(), ..Settings::default() };
    settings.config.params.load("tm");
    settings.config.params.set("tm", "fr_timer", Value::Int(1));
    Launch::new(Relay, settings)
        .listen("udp:127.0.0.1:0".parse().expect("a listen"))
        .workers(2)
        .start()
        .await
        .expect("the proxy starts")
}

async fn recv(sock: &UdpSocket) -> (Message, SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) =
        tokio::time::timeout(WAIT, sock.recv_from(&mut buf)).await.expect("a message in time").expect("received");
    (Message::parse(bytes::Bytes::copy_from_slice(&buf[..n]), Framing::Datagram).expect("it parses"), from)
}

/// A reply to `req` with `code`, copying its Vias, From, To (tagged), Call-ID, CSeq.
fn reply(req: &Message, code: u16, reason: &str, extra: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(req.bytes()).into_owned();
    let mut r = format!("SIP/2.0 {code} {reason}\r\n");
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("via:")
            || lower.starts_with("from:")
            || lower.starts_with("call-id:")
            || lower.starts_with("cseq:")
        {
            r.push_str(line);
            r.push_str("\r\n");
        } else if lower.starts_with("to:") {
            r.push_str(line);
            r.push_str(";tag=uas\r\n");
        }
    }
    r.push_str(extra);
    r.push_str("Content-Length: 0\r\n\r\n");
    r.into_bytes()
}

fn run(running: &Running, command: &str, args: &[&str]) -> tokio::task::JoinHandle<MiReply> {
    let mi = running.mi().clone();
    let (command, args) = (command.to_string(), args.iter().map(|a| a.to_string()).collect());
    tokio::spawn(async move { mi.run(&command, args).await })
}

fn values(reply: &MiReply) -> Vec<String> {
    reply.nodes.iter().map(|n| n.value.clone().unwrap_or_default()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t_uac_dlg_sends_a_request_and_returns_its_final_reply() {
    let running = start().await;
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ruri = format!("sip:bob@{}", uas.local_addr().unwrap());
    let headers = "From: <sip:mi@example.com>\r\nTo: <sip:bob@example.com>\r\nX-Origin: mi\r\n";

    // OPTIONS: the UAS's 200 comes back as the command's reply.
    let pending = run(&running, "t_uac_dlg", &["OPTIONS", &ruri, ".", ".", headers]);
    let (req, from) = recv(&uas).await;
    assert_eq!(from, running.local_addrs()[0].1, "sent from the proxy's socket");
    assert_eq!(req.method(), Some(serc_runtime::sip::Method::Options));
    assert!(req.headers_by_text("X-Origin").next().is_some(), "the headers given are sent");
    let from_tag = req.from_tag.map(|t| req.text(t).to_string());
    assert!(from_tag.is_some_and(|t| !t.is_empty()), "a From tag is added");
    assert_eq!(req.cseq, 1);
    uas.send_to(&reply(&req, 200, "OK", ""), from).await.unwrap();
    let answer = tokio::time::timeout(WAIT, pending).await.expect("the command ends").unwrap();
    let lines = values(&answer);
    assert_eq!(answer.code, 200, "{answer:?}");
    assert_eq!(&lines[..4], ["200 OK", ".", ".", "."], "no dialog for an OPTIONS");
    assert!(lines[4].contains("To: <sip:bob@example.com>;tag=uas"), "{}", lines[4]);

    // INVITE answered 200 with a Contact and a Record-Route: the dialog's target, next hop, route set.
    let invite_headers =
        "From: <sip:mi@example.com>;tag=abc\r\nTo: <sip:bob@example.com>\r\nCall-ID: mi-call-1\r\nCSeq: 7 INVITE\r\n";
    let pending = run(&running, "t_uac_dlg", &["INVITE", &ruri, ".", ".", invite_headers]);
    let (req, from) = recv(&uas).await;
    assert_eq!(req.cseq, 7);
    assert_eq!(req.text(req.call_id), "mi-call-1");
    let extra = "Contact: <sip:bob@192.0.2.20:5060>\r\nRecord-Route: <sip:p1.example.net;lr>\r\n";
    uas.send_to(&reply(&req, 200, "OK", extra), from).await.unwrap();
    let answer = tokio::time::timeout(WAIT, pending).await.expect("the command ends").unwrap();
    let lines = values(&answer);
    assert_eq!(
        &lines[..4],
        ["200 OK", "sip:bob@192.0.2.20:5060", "sip:p1.example.net;lr", "Route: <sip:p1.example.net;lr>"]
    );

    // Bad input: MI errors, nothing sent.
    assert_eq!(
        running
            .mi()
            .run("t_uac_dlg", vec!["OPTIONS".into(), ruri.clone(), ".".into(), ".".into(), "To: <sip:x@y>".into()])
            .await
            .code,
        400
    );
    assert_eq!(
        running
            .mi()
            .run("t_uac_dlg", vec!["OPTIONS".into(), "nonsense".into(), ".".into(), ".".into(), headers.into()])
            .await
            .code,
        400
    );
    let stats = running.mi().stats();
    assert_eq!(stats.value("tm:UAC_transactions"), Some(2));

    // t_hash lists the shards, with the transactions ever made.
    let hash = running.mi().run("t_hash", vec![]).await;
    let total: u64 = hash
        .nodes
        .iter()
        .flat_map(|n| n.attributes.iter())
        .filter(|(k, _)| k.as_deref() == Some("Total"))
        .map(|(_, v)| v.as_deref().unwrap_or("0").parse::<u64>().unwrap())
        .sum();
    assert!(total >= 2, "{hash:?}");
    // t_reply says why it is not served.
    let refused = running.mi().run("t_reply", vec!["404".into(), "Not Found".into(), "1:2".into()]).await;
    assert_eq!(refused.code, 500);
    assert!(refused.reason.contains("t_write_fifo"), "{refused:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t_uac_cancel_cancels_a_ringing_invite_and_silence_gets_408() {
    let running = start().await;
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ruri = format!("sip:carol@{}", uas.local_addr().unwrap());
    let headers = "From: <sip:mi@example.com>\r\nTo: <sip:carol@example.com>\r\nCall-ID: mi-cancel-1\r\n";
    let pending = run(&running, "t_uac_dlg", &["INVITE", &ruri, ".", ".", headers]);
    let (invite, from) = recv(&uas).await;
    uas.send_to(&reply(&invite, 180, "Ringing", ""), from).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running.mi().run("t_uac_cancel", vec!["no-such-call".into(), "1".into()]).await.code, 481);
    let cancelled = running.mi().run("t_uac_cancel", vec!["mi-cancel-1".into(), "1".into()]).await;
    assert_eq!(cancelled.code, 200, "{cancelled:?}");
    let (cancel, from) = recv(&uas).await;
    assert_eq!(cancel.method(), Some(serc_runtime::sip::Method::Cancel));
    uas.send_to(&reply(&cancel, 200, "OK", ""), from).await.unwrap();
    uas.send_to(&reply(&invite, 487, "Request Terminated", ""), from).await.unwrap();
    let answer = tokio::time::timeout(WAIT, pending).await.expect("the command ends").unwrap();
    assert_eq!(values(&answer)[0], "487 Request Terminated");

    // Nobody answers a MESSAGE: tm's 408 after fr_timer (1 s).
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ruri = format!("sip:dave@{}", silent.local_addr().unwrap());
    let answer =
        running.mi().run("t_uac_dlg", vec!["MESSAGE".into(), ruri, ".".into(), ".".into(), headers.into()]).await;
    assert_eq!(values(&answer)[..2], ["408 Request Timeout".to_string(), ".".to_string()]);
    running.shutdown().await;
}
