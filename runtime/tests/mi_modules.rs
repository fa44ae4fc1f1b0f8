//! The MI commands of usrloc (`ul_show_contact`, `ul_dump`, `ul_add`, `ul_rm`,
//! `ul_rm_contact`, `ul_flush`) and the statistics the SIP path moves (core,
//! sl, tm, registrar, usrloc), through the pipeline (`Proxy::route`, no
//! sockets) with tm's table driven by the messages. The route:
//!
//! ```text
//! route {
//!     if (method == "REGISTER") { save("location"); exit; }
//!     if ($hdr(X-Drop) != null) drop;
//!     if ($hdr(X-Forward) != null) { forward("127.0.0.1:5099"); exit; }
//!     if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
//!     t_relay();
//! }
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::mi::{Mi, MiReply};
use serc_runtime::modules::{core, registrar, sl, tm};
use serc_runtime::proxy::{Local, Source, Transport};
use serc_runtime::script::args::{Format, ReplyCode, SocketSpec};
use serc_runtime::script::{Config, Ctx, Flow, Value};
use serc_runtime::sip::{Framing, Message, Method};

struct Route;

impl Script for Route {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if ctx.msg.method() == Some(Method::Register) {
            registrar::save_1(ctx, "location");
            return Flow::Exit;
        }
        if ctx.msg.headers_by_text("X-Drop").next().is_some() {
            return Flow::Drop;
        }
        if ctx.msg.headers_by_text("X-Forward").next().is_some() {
            core::forward_1(ctx, &SocketSpec::parse("127.0.0.1:5099").unwrap());
            return Flow::Exit;
        }
        if registrar::lookup(ctx, "location") != 1 {
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(404), &Format::literal("Not Found"));
            return Flow::Exit;
        }
        tm::t_relay_0(ctx);
        Flow::Exit
    }
}

const PROXY: &str = "127.0.0.1:5060";
const CLIENT: &str = "127.0.0.1:40000";
const UAS: &str = "127.0.0.1:5070";

fn proxy() -> Proxy<Route> {
    let local: SocketAddr = PROXY.parse().unwrap();
    let mut config = Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() };
    for m in ["sl", "tm", "usrloc", "registrar"] {
        config.params.load(m);
    }
    config.params.set("registrar", "max_contacts", Value::Int(5));
    serc_runtime::mi::counters::register_loaded(&config);
    Proxy::new(Route, config)
}

fn source(addr: &str) -> Source {
    Source { transport: Transport::Udp, addr: addr.parse().unwrap(), local: PROXY.parse().unwrap() }
}

fn request(method: &str, user: &str, tag: &str, extra: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-{tag}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:caller@example.com>;tag=1\r\n\
         Call-ID: {tag}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    ))
}

fn route(p: &Proxy<Route>, from: &str, bytes: Bytes) -> Vec<Message> {
    p.route(bytes, source(from), Framing::Datagram)
        .into_iter()
        .map(|s| Message::parse(s.bytes, Framing::Datagram).expect("what serc sends parses"))
        .collect()
}

fn run(mi: &Mi, command: &str, args: &[&str]) -> MiReply {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(mi.run(command, args.iter().map(|a| a.to_string()).collect()))
}

fn stat(mi: &Mi, name: &str) -> u64 {
    mi.stats().value(name).unwrap_or_else(|| panic!("{name} is registered"))
}

#[test]
fn usrloc_commands_show_add_and_remove_bindings() {
    let p = proxy();
    let mi = p.config.mi.clone();
    let reg = |user: &str, contact: &str, tag: &str| {
        let extra = format!("Contact: <{contact}>;q=0.5\r\nUser-Agent: phone/1\r\n");
        let out = route(&p, CLIENT, request("REGISTER", user, tag, &extra));
        assert_eq!(out[0].status(), Some(200));
    };
    reg("alice", "sip:alice@192.0.2.1:5062", "r1");
    reg("bob", "sip:bob@192.0.2.2", "r2");

    let shown = run(&mi, "ul_show_contact", &["location", "Alice@example.com"]);
    assert_eq!(shown.code, 200, "{shown:?}");
    assert_eq!(shown.nodes.len(), 1);
    let line = shown.nodes[0].value.clone().unwrap();
    assert!(
        line.starts_with("<sip:alice@192.0.2.1:5062>;q=0.5;expires=3600;flags=0x0;cflags=0x0;socket=<udp:127.0.0.1:5060>;methods=0xFFFFFFFF;user_agent=<phone/1>"),
        "{line}"
    );
    assert_eq!(run(&mi, "ul_show_contact", &["location", "nobody"]).code, 404);
    assert_eq!(run(&mi, "ul_show_contact", &["nowhere", "alice"]).code, 404);
    assert_eq!(run(&mi, "ul_show_contact", &["location"]).code, 400);

    // ul_add: a permanent contact (expires 0) that lookup finds.
    let added = run(&mi, "ul_add", &["location", "carol", "sip:carol@192.0.2.3", "0", "1", "0", "2", "64", "1"]);
    assert_eq!(added.code, 200, "{added:?}");
    let out = route(&p, CLIENT, request("OPTIONS", "carol", "o1", ""));
    assert!(out.iter().any(|m| m.is_request()), "carol is reached through tm");
    assert_eq!(run(&mi, "ul_add", &["location", "carol", "sip:c@x", "60", "2.5", "0", "0", "0", "0"]).code, 400);

    let dump = run(&mi, "ul_dump", &[]);
    let domain = &dump.nodes[0];
    assert_eq!(domain.value.as_deref(), Some("location"));
    let aors: Vec<_> = domain.children.iter().map(|n| n.value.clone().unwrap()).collect();
    assert_eq!(aors, ["alice", "bob", "carol"]);
    assert!(domain.attributes.contains(&(Some("records".into()), Some("3".into()))), "{domain:?}");
    let carol = &domain.children[2].children[0];
    assert_eq!(carol.children[0].value.as_deref(), Some("permanent"));
    let brief = run(&mi, "ul_dump", &["brief"]);
    assert!(brief.nodes[0].children.iter().all(|n| n.children.is_empty()));

    // ul_rm_contact then ul_rm: lookup fails afterwards.
    assert_eq!(run(&mi, "ul_rm_contact", &["location", "alice", "sip:nope@x"]).code, 404);
    assert_eq!(run(&mi, "ul_rm_contact", &["location", "alice", "sip:alice@192.0.2.1:5062"]).code, 200);
    assert_eq!(run(&mi, "ul_show_contact", &["location", "alice"]).code, 404);
    assert_eq!(run(&mi, "ul_rm", &["location", "bob"]).code, 200);
    let out = route(&p, CLIENT, request("OPTIONS", "bob", "o2", ""));
    assert_eq!(out[0].status(), Some(404));
    assert_eq!(stat(&mi, "usrloc:registered_users"), 1);
    assert_eq!(stat(&mi, "location-contacts"), 1);
    assert_eq!(run(&mi, "ul_flush", &[]).code, 200);
}

#[test]
fn statistics_move_by_what_the_messages_did() {
    let p = proxy();
    let mi = p.config.mi.clone();
    assert_eq!(stat(&mi, "registrar:max_contacts"), 5);
    let before = |n| stat(&mi, n);
    assert_eq!(before("core:rcv_requests"), 0);

    // 3 REGISTERs accepted, 1 refused (no user in To).
    for (i, user) in ["u1", "u2", "u3"].iter().enumerate() {
        let extra = format!("Contact: <sip:{user}@{UAS}>\r\n");
        route(&p, CLIENT, request("REGISTER", user, &format!("reg{i}"), &extra));
    }
    let bad = String::from_utf8(request("REGISTER", "x", "regbad", "Contact: <sip:x@192.0.2.9>\r\n").to_vec())
        .unwrap()
        .replace("To: <sip:x@example.com>", "To: <sip:example.com>");
    route(&p, CLIENT, Bytes::from(bad));
    // 2 requests to nobody: sl 404s.
    route(&p, CLIENT, request("MESSAGE", "nobody", "m1", ""));
    route(&p, CLIENT, request("MESSAGE", "nobody", "m2", ""));
    // 1 dropped, 1 forwarded statelessly.
    route(&p, CLIENT, request("MESSAGE", "u1", "d1", "X-Drop: yes\r\n"));
    route(&p, CLIENT, request("MESSAGE", "u1", "f1", "X-Forward: yes\r\n"));
    // 1 INVITE through tm: 100 Trying (local), the UAS's 180 and 200 relayed.
    let out = route(&p, CLIENT, request("INVITE", "u2", "i1", ""));
    let relayed = out.iter().find(|m| m.is_request()).expect("the INVITE is relayed").clone();
    let reply = |code: u16, reason: &str| {
        let text = String::from_utf8(relayed.bytes().to_vec()).unwrap();
        let vias: Vec<&str> = text.lines().filter(|l| l.starts_with("Via:")).collect();
        let mut r = format!("SIP/2.0 {code} {reason}\r\n");
        for v in vias {
            r.push_str(v);
            r.push_str("\r\n");
        }
        r.push_str(
            "To: <sip:u2@example.com>;tag=uas\r\nFrom: <sip:caller@example.com>;tag=1\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        Bytes::from(r)
    };
    route(&p, UAS, reply(180, "Ringing"));
    route(&p, UAS, reply(200, "OK"));
    // A reply matching nothing goes back statelessly by its Via; one without a
    // Via of ours has nowhere to go.
    let stray = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-x\r\nVia: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK-y\r\n\
                 To: <sip:a@b>;tag=2\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: stray\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    route(&p, UAS, Bytes::from(stray));
    // And garbage.
    route(&p, CLIENT, Bytes::from_static(b"INVITE nothing\r\n\r\n"));

    let expect = [
        ("core:rcv_requests", 9),
        ("core:rcv_replies", 3),
        ("core:fwd_requests", 1),
        ("core:drop_requests", 1),
        ("core:fwd_replies", 1),
        ("core:bad_msg_hdr", 1),
        ("registrar:accepted_regs", 3),
        ("registrar:rejected_regs", 1),
        ("usrloc:registered_users", 3),
        // 3 200s and a 400 from save, 2 404s.
        ("sl:sent_replies", 6),
        ("sl:2xx_replies", 3),
        ("sl:4xx_replies", 3),
        ("tm:UAS_transactions", 1),
        ("tm:UAC_transactions", 0),
        ("tm:received_replies", 2),
        ("tm:relayed_replies", 2),
        ("tm:local_replies", 1),
        ("tm:2xx_transactions", 1),
        ("tm:inuse_transactions", 1),
    ];
    let got: Vec<(&str, u64)> = expect.iter().map(|(n, _)| (*n, stat(&mi, n))).collect();
    assert_eq!(got, expect);

    // get_statistics through MI, then reset: counters go to 0, settings and gauges stay.
    let all = run(&mi, "get_statistics", &["tm:"]);
    let lines: Vec<_> = all.nodes.iter().map(|n| n.value.clone().unwrap_or_default()).collect();
    assert!(lines.iter().any(|l| l == "tm:UAS_transactions = 1"), "{lines:?}");
    assert_eq!(run(&mi, "reset_statistics", &["rcv_requests", "max_contacts"]).code, 200);
    assert_eq!(stat(&mi, "core:rcv_requests"), 0);
    assert_eq!(stat(&mi, "registrar:max_contacts"), 5);
}
