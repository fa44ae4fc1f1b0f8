//! The stateless proxy's message work (`serc_runtime::proxy`): RFC 3261 §16/§18
//! and RFC 3581, byte for byte where the RFCs fix the output, and every edited
//! message parsed again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serc_runtime::proxy::{
    add_via, mark_received, next_hop, rejection_reply, reply_target, route_response, stateless_branch, stateless_reply,
    stateless_to_tag, Local, Source, Target, Transport,
};
use serc_runtime::sip::{Edits, Framing, HeaderName, Message, StartLine};

// ---------------------------------------------------------------------------------------------
// Helpers

fn parse(text: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(text.as_bytes()), Framing::Datagram)
        .unwrap_or_else(|r| panic!("{}: {text}", r.detail))
}

/// The message with the edits applied, parsed again.
fn edited(msg: &Message, edits: &Edits) -> (String, Message) {
    let out = edits.apply(msg.bytes()).expect("edits apply");
    let text = String::from_utf8(out.to_vec()).unwrap();
    let again = Message::parse(out.freeze(), Framing::Datagram)
        .unwrap_or_else(|r| panic!("the edited message does not parse: {}\n{text}", r.detail));
    (text, again)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn udp_from(addr: &str) -> Source {
    Source { transport: Transport::Udp, addr: sa(addr), local: sa("192.0.2.10:5060") }
}

fn crlf(lines: &[&str]) -> String {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

fn request(via: &str) -> String {
    crlf(&[
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        via,
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:alice@pc33.atlanta.example.com>",
        "Content-Length: 0",
        "",
    ])
}

fn top_via_param(msg: &Message, which: &str) -> Option<String> {
    let v = msg.via;
    let span = match which {
        "received" => v.received,
        "rport" => v.rport.flatten(),
        "branch" => v.branch,
        _ => unreachable!(),
    };
    span.map(|s| msg.text(s).to_string())
}

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/sip-torture");
    assert!(dir.is_dir(), "the torture corpus is missing: {}", dir.display());
    dir
}

fn torture(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join(format!("{name}.dat"))).expect("a torture message")
}

// ---------------------------------------------------------------------------------------------
// mark_received (RFC 3261 §18.2.1, RFC 3581 §4)

#[test]
fn rfc_3581_example_fills_rport_and_adds_received() {
    // RFC 3581 §4: the client behind a NAT sends from 10.1.1.1:4540; the proxy sees
    // 192.0.2.1:9988.
    let msg = parse(&crlf(&[
        "INVITE sip:user@domain SIP/2.0",
        "Via: SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
        "To: <sip:user@domain>",
        "From: <sip:caller@domain>;tag=1",
        "Call-ID: 3581",
        "CSeq: 1 INVITE",
        "Content-Length: 0",
        "",
    ]));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.1:9988"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert_eq!(
        text,
        crlf(&[
            "INVITE sip:user@domain SIP/2.0",
            "Via: SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff",
            "To: <sip:user@domain>",
            "From: <sip:caller@domain>;tag=1",
            "Call-ID: 3581",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ])
    );
    assert_eq!(top_via_param(&again, "received").as_deref(), Some("192.0.2.1"));
    assert_eq!(top_via_param(&again, "rport").as_deref(), Some("9988"));
    assert_eq!(top_via_param(&again, "branch").as_deref(), Some("z9hG4bKkjshdyff"));
    // RFC 3581: received even when identical to the sent-by.
    let msg = parse(&request("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.1:5060"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert!(text.contains("Via: SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;branch=z9hG4bK1;rport=5060\r\n"));
    assert_eq!(top_via_param(&again, "rport").as_deref(), Some("5060"));
}

#[test]
fn received_only_when_the_host_differs() {
    // RFC 3261 §18.2.1's example: a name in sent-by always gets received.
    let msg = parse(&request("Via: SIP/2.0/UDP bobspc.biloxi.com:5060"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.4:5060"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert_eq!(text, request("Via: SIP/2.0/UDP bobspc.biloxi.com:5060;received=192.0.2.4"));
    assert_eq!(top_via_param(&again, "received").as_deref(), Some("192.0.2.4"));

    // The same address: nothing, whatever the port (received is about the host).
    let msg = parse(&request("Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8"));
    for from in ["192.0.2.4:5060", "192.0.2.4:6000"] {
        let mut edits = Edits::new();
        mark_received(&msg, &udp_from(from), false, &mut edits);
        assert!(edits.is_empty(), "{from}");
    }
    // An IPv4-mapped source on a dual-stack socket is the same address.
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("[::ffff:192.0.2.4]:5060"), false, &mut edits);
    assert!(edits.is_empty());
    // Another address: right after the sent-by, where OpenSER 1.3 (and Kamailio) put it.
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("198.51.100.7:5060"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert_eq!(text, request("Via: SIP/2.0/UDP 192.0.2.4:5060;received=198.51.100.7;branch=z9hG4bKnashds8"));
    assert_eq!(again.via.rport, None);
}

#[test]
fn force_rport_adds_both_parameters() {
    let msg = parse(&request("Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.4:61000"), true, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert_eq!(text, request("Via: SIP/2.0/UDP 192.0.2.4:5060;received=192.0.2.4;rport=61000;branch=z9hG4bKnashds8"));
    assert_eq!(top_via_param(&again, "received").as_deref(), Some("192.0.2.4"));
    assert_eq!(top_via_param(&again, "rport").as_deref(), Some("61000"));
}

#[test]
fn existing_received_and_rport_values_are_overwritten_not_doubled() {
    let msg = parse(&request("Via: SIP/2.0/UDP h.example.com;received=10.0.0.1;rport=1;branch=z9hG4bKx"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.1:9988"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert!(text.contains("Via: SIP/2.0/UDP h.example.com;received=192.0.2.1;rport=9988;branch=z9hG4bKx\r\n"));
    assert_eq!(text.matches("received").count(), 1);
    assert_eq!(top_via_param(&again, "received").as_deref(), Some("192.0.2.1"));
    // Already true: no edit.
    let msg = parse(&request("Via: SIP/2.0/UDP h.example.com;received=192.0.2.1;rport=9988;branch=z9hG4bKx"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.1:9988"), false, &mut edits);
    assert!(edits.is_empty());
    // Parameter names are case-insensitive, spaces around `;` and `=` are kept.
    let msg = parse(&request("Via: SIP/2.0/UDP h.example.com ; RPORT ; branch = z9hG4bKx"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.1:9988"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert!(text.contains("Via: SIP/2.0/UDP h.example.com ;received=192.0.2.1; RPORT=9988 ; branch = z9hG4bKx\r\n"));
    assert_eq!(top_via_param(&again, "rport").as_deref(), Some("9988"));
}

#[test]
fn ipv6_sent_by_and_received_without_brackets() {
    let via = "Via: SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3-111;rport";
    let msg = parse(&request(via));
    // The same address written differently is still the same address.
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("[2001:db8:0::9:1]:5060"), false, &mut edits);
    let (text, _) = edited(&msg, &edits);
    assert!(text
        .contains("Via: SIP/2.0/UDP [2001:db8::9:1]:5060;received=2001:db8::9:1;branch=z9hG4bKas3-111;rport=5060\r\n"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("[2001:db8::9:255]:5070"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert!(text.contains(
        "Via: SIP/2.0/UDP [2001:db8::9:1]:5060;received=2001:db8::9:255;branch=z9hG4bKas3-111;rport=5070\r\n"
    ));
    assert_eq!(top_via_param(&again, "received").as_deref(), Some("2001:db8::9:255"));
    // Without rport: nothing when the address is the source's.
    let msg = parse(&request("Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("[2001:db8::9:1]:5060"), false, &mut edits);
    assert!(edits.is_empty());
}

#[test]
fn only_the_top_via_is_marked_whatever_its_layout() {
    // Two values in one line: the first gets the parameters.
    let msg = parse(&request("Via: SIP/2.0/UDP a.example.com;rport;branch=z9hG4bK1, SIP/2.0/UDP b.example.com"));
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.1:9988"), false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert!(text.contains(
        "Via: SIP/2.0/UDP a.example.com;received=192.0.2.1;rport=9988;branch=z9hG4bK1, SIP/2.0/UDP b.example.com\r\n"
    ));
    assert_eq!(again.vias().count(), 2);
    assert!(again.vias().nth(1).unwrap().unwrap().received.is_none());
    // RFC 4475 §3.1.1.1: a folded Via in odd case; the parameters go after the sent-by.
    let wsinv = Message::parse(Bytes::from(torture("wsinv")), Framing::Datagram).unwrap();
    let mut edits = Edits::new();
    mark_received(&wsinv, &udp_from("198.51.100.1:5060"), true, &mut edits);
    let (text, again) = edited(&wsinv, &edits);
    assert!(text.contains("192.0.2.2;received=198.51.100.1;rport=5060;branch=390skdjuw\r\n"), "{text}");
    assert_eq!(top_via_param(&again, "received").as_deref(), Some("198.51.100.1"));
    assert_eq!(again.body_bytes(), wsinv.body_bytes());
    // A response is not touched.
    let resp = parse(&crlf(&[
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP h.example.com;rport;branch=z9hG4bKx",
        "To: <sip:a@b>;tag=2",
        "From: <sip:c@d>;tag=1",
        "Call-ID: x",
        "CSeq: 1 INVITE",
        "Content-Length: 0",
        "",
    ]));
    let mut edits = Edits::new();
    mark_received(&resp, &udp_from("192.0.2.1:9988"), true, &mut edits);
    assert!(edits.is_empty());
}

// ---------------------------------------------------------------------------------------------
// stateless_branch (RFC 3261 §16.11)

fn with(base: &str, from: &str, to: &str) -> String {
    base.replacen(from, to, 1)
}

#[test]
fn branches_are_stable_for_retransmissions_and_differ_across_requests() {
    let invite = request("Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds");
    let b = stateless_branch(&parse(&invite));
    assert!(b.starts_with("z9hG4bK") && b.len() == 7 + 16, "{b}");
    assert!(b[7..].bytes().all(|c| c.is_ascii_hexdigit()));
    // A retransmission (a fresh parse of the same bytes) gets the same branch.
    assert_eq!(stateless_branch(&parse(&invite)), b);
    // The CANCEL of that INVITE and the ACK of a non-2xx reply carry its Via, Call-ID,
    // From, CSeq number (and the ACK the To tag of the reply): same branch (§9.1, §17.1.1.3).
    let cancel = with(&with(&invite, "INVITE sip", "CANCEL sip"), "314159 INVITE", "314159 CANCEL");
    assert_eq!(stateless_branch(&parse(&cancel)), b);
    let ack = with(&with(&invite, "INVITE sip", "ACK sip"), "314159 INVITE", "314159 ACK");
    let ack = with(&ack, "biloxi.example.com>\r\n", "biloxi.example.com>;tag=a6c85cf\r\n");
    assert_eq!(stateless_branch(&parse(&ack)), b);
    // Another transaction: another branch id, or the same id from another sent-by.
    let others = [
        with(&invite, "z9hG4bK776asdhds", "z9hG4bK776asdhdt"),
        with(&invite, "pc33.atlanta.example.com;", "pc34.atlanta.example.com;"),
        with(&invite, "pc33.atlanta.example.com;", "pc33.atlanta.example.com:5070;"),
    ];
    for other in &others {
        assert_ne!(stateless_branch(&parse(other)), b, "{other}");
    }
    // The sent-by host is case-insensitive.
    let upper = with(&invite, "pc33.atlanta.example.com;", "PC33.atlanta.example.com;");
    assert_eq!(stateless_branch(&parse(&upper)), b);
    // A branch too long to hash in one piece: the same rules.
    let long = with(&invite, "z9hG4bK776asdhds", &format!("z9hG4bK{}", "7".repeat(200)));
    let b = stateless_branch(&parse(&long));
    assert_eq!(stateless_branch(&parse(&long)), b);
    let upper = with(&long, "pc33.atlanta.example.com;", "PC33.atlanta.example.com;");
    assert_eq!(stateless_branch(&parse(&upper)), b);
    assert_ne!(stateless_branch(&parse(&with(&long, "z9hG4bK7", "z9hG4bK8"))), b);
    let cancel = with(&with(&long, "INVITE sip", "CANCEL sip"), "314159 INVITE", "314159 CANCEL");
    assert_eq!(stateless_branch(&parse(&cancel)), b);
}

#[test]
fn a_stateful_branch_appends_its_index() {
    let invite = request("Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds");
    let b = stateless_branch(&parse(&invite));
    for index in [0, 7, 10, 4_294_967_296, usize::MAX] {
        let indexed = b.with_index(index);
        assert_eq!(&*indexed, format!("{b}.{index}"));
        assert_eq!(format!("{indexed:?}"), format!("{:?}", format!("{b}.{index}")));
    }
    assert_ne!(b.with_index(1), b.with_index(2));
    // A second index takes the place of the first.
    assert_eq!(b.with_index(usize::MAX).with_index(3), b.with_index(3));
}

#[test]
fn rfc_2543_requests_hash_their_transaction_fields() {
    // RFC 4475 §3.4.1: no branch, no tags.
    let raw = String::from_utf8(torture("inv2543")).unwrap();
    let b = stateless_branch(&parse(&raw));
    assert!(b.starts_with("z9hG4bK"));
    assert_eq!(stateless_branch(&parse(&raw)), b);
    let variants = [
        ("sip:UserB@example.com SIP", "sip:UserC@example.com SIP"), // Request-URI
        ("Via: SIP/2.0/UDP iftgw.example.com", "Via: SIP/2.0/UDP iftgw2.example.com"), // top Via
        ("user=phone>", "user=phone>;tag=77"),                      // From tag
        ("ss1.example.net;user=phone", "ss1.example.net;user=phone;tag=99"), // To tag
        ("inv2543.1717@", "inv2543.1718@"),                         // Call-ID
        ("CSeq: 56 INVITE", "CSeq: 57 INVITE"),                     // CSeq number
    ];
    for (from, to) in variants {
        let changed = with(&raw, from, to);
        assert_ne!(changed, raw, "{from}");
        assert_ne!(stateless_branch(&parse(&changed)), b, "{from} -> {to}");
    }
    // The non-2xx ACK (To tag of the reply) maps to the INVITE's branch.
    let ack = with(&with(&raw, "INVITE sip", "ACK sip"), "56 INVITE", "56 ACK");
    let ack = with(&ack, "ss1.example.net;user=phone", "ss1.example.net;user=phone;tag=99");
    assert_eq!(stateless_branch(&parse(&ack)), b);
    // RFC 4475 §3.2.1: a bare cookie is no transaction id: hashed as RFC 2543.
    let bare = String::from_utf8(torture("badbranch")).unwrap();
    let b1 = stateless_branch(&parse(&bare));
    assert_ne!(stateless_branch(&parse(&with(&bare, "CSeq: 8 OPTIONS", "CSeq: 9 OPTIONS"))), b1);
}

// ---------------------------------------------------------------------------------------------
// add_via (RFC 3261 §16.6 step 8)

#[test]
fn add_via_inserts_our_via_first() {
    let original = request("Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds");
    let msg = parse(&original);
    let branch = stateless_branch(&msg);
    let local = Local::new(Transport::Udp, sa("192.0.2.10:5060"));
    let mut edits = Edits::new();
    add_via(&msg, &local, &branch, false, &mut edits);
    let (text, again) = edited(&msg, &edits);
    let expected = original.replacen(
        "Via: SIP/2.0/UDP pc33",
        &format!("Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\nVia: SIP/2.0/UDP pc33"),
        1,
    );
    assert_eq!(text, expected);
    assert_eq!(again.text(again.via.host), "192.0.2.10");
    assert_eq!(again.via.port, Some(5060));
    assert_eq!(top_via_param(&again, "branch"), Some(branch.to_string()));
    let vias: Vec<_> = again.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(again.text(vias[1].host), "pc33.atlanta.example.com");

    // IPv6 in brackets, TLS, rport; advertised address and port.
    let v6 = Local::new(Transport::Tls, sa("[2001:db8::10]:5061"));
    let mut edits = Edits::new();
    add_via(&msg, &v6, "z9hG4bKabc", true, &mut edits);
    let (text, again) = edited(&msg, &edits);
    assert!(text.contains("\r\nVia: SIP/2.0/TLS [2001:db8::10]:5061;branch=z9hG4bKabc;rport\r\nVia: SIP/2.0/UDP pc33"));
    assert_eq!(again.via.rport, Some(None));
    let behind_nat = Local {
        transport: Transport::Tcp,
        addr: sa("10.0.0.2:5060"),
        advertised: Some(("sip.example.com".to_string(), 5080)),
    };
    let mut edits = Edits::new();
    add_via(&msg, &behind_nat, "z9hG4bKabc", false, &mut edits);
    let (text, _) = edited(&msg, &edits);
    assert!(text.contains("\r\nVia: SIP/2.0/TCP sip.example.com:5080;branch=z9hG4bKabc\r\n"));
    let adv_v6 = Local { advertised: Some(("2001:db8::1".to_string(), 5060)), ..behind_nat };
    assert_eq!(adv_v6.sent_by(), "[2001:db8::1]:5060");
}

#[test]
fn a_stateless_forward_combines_the_edits() {
    // mark_received + add_via + a new Request-URI, applied once; compact `v:` Via.
    let original = crlf(&[
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        "Max-Forwards: 70",
        "v: SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
        "To: <sip:bob@biloxi.example.com>",
        "From: <sip:alice@atlanta.example.com>;tag=1",
        "Call-ID: fwd",
        "CSeq: 1 INVITE",
        "Content-Length: 4",
        "",
        "body",
    ])
    .trim_end_matches("\r\n")
    .to_string();
    let msg = parse(&original);
    let mut edits = Edits::new();
    mark_received(&msg, &udp_from("192.0.2.1:9988"), false, &mut edits);
    let branch = stateless_branch(&msg);
    add_via(&msg, &Local::new(Transport::Udp, sa("192.0.2.10:5060")), &branch, false, &mut edits);
    edits.replace(request_uri_range(&msg), "sip:bob@192.0.2.4");
    let (text, again) = edited(&msg, &edits);
    assert_eq!(
        text,
        format!(
            "INVITE sip:bob@192.0.2.4 SIP/2.0\r\nMax-Forwards: 70\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\n\
v: SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff\r\n\
To: <sip:bob@biloxi.example.com>\r\nFrom: <sip:alice@atlanta.example.com>;tag=1\r\nCall-ID: fwd\r\nCSeq: 1 INVITE\r\n\
Content-Length: 4\r\n\r\nbody"
        )
    );
    assert_eq!(again.request_uri(), Some("sip:bob@192.0.2.4"));
    assert_eq!(
        next_hop(again.request_uri().unwrap()),
        Ok(Target::Addr { transport: Transport::Udp, addr: sa("192.0.2.4:5060") })
    );
    let second = again.vias().nth(1).unwrap().unwrap();
    assert_eq!(second.received.map(|r| again.text(r)), Some("192.0.2.1"));
    assert_eq!(again.body_bytes(), Bytes::from_static(b"body"));
}

fn request_uri_range(msg: &Message) -> std::ops::Range<usize> {
    match msg.start {
        StartLine::Request { uri, .. } => uri.range(),
        StartLine::Response { .. } => panic!("not a request"),
    }
}

// ---------------------------------------------------------------------------------------------
// next_hop (RFC 3263 §4)

#[test]
fn next_hop_of_uris() {
    let a = |t, s: &str| Ok(Target::Addr { transport: t, addr: sa(s) });
    let n = |t, h: &str, p| Ok(Target::Name { transport: t, host: h.to_string(), port: p });
    use Transport::*;
    let cases: Vec<(&str, Result<Target, &str>)> = vec![
        ("sip:bob@192.0.2.4", a(Udp, "192.0.2.4:5060")),
        ("sip:192.0.2.4:5070;transport=tcp", a(Tcp, "192.0.2.4:5070")),
        ("sip:bob@192.0.2.4;transport=TLS", a(Tls, "192.0.2.4:5061")),
        ("sip:bob@192.0.2.4;transport=sctp;lr", a(Sctp, "192.0.2.4:5060")),
        ("sips:bob@192.0.2.4", a(Tls, "192.0.2.4:5061")),
        ("sips:bob@192.0.2.4:5071;transport=tcp", a(Tls, "192.0.2.4:5071")),
        ("sip:bob@[2001:db8::1]", a(Udp, "[2001:db8::1]:5060")),
        ("sip:bob@[2001:db8::1]:5080;transport=tcp", a(Tcp, "[2001:db8::1]:5080")),
        ("sip:bob@biloxi.example.com", n(None, "biloxi.example.com", None)),
        ("SIP:bob@Biloxi.Example.COM", n(None, "Biloxi.Example.COM", None)),
        ("sip:bob@biloxi.example.com:5070", n(Some(Udp), "biloxi.example.com", Some(5070))),
        ("sip:bob@biloxi.example.com;transport=tcp", n(Some(Tcp), "biloxi.example.com", None)),
        ("sips:bob@biloxi.example.com", n(Some(Tls), "biloxi.example.com", None)),
        ("sips:bob@biloxi.example.com:5071", n(Some(Tls), "biloxi.example.com", Some(5071))),
        // maddr overrides the host (RFC 3263 §4), the port stays the URI's.
        ("sip:bob@biloxi.example.com;maddr=192.0.2.9", a(Udp, "192.0.2.9:5060")),
        ("sip:bob@biloxi.example.com:5080;maddr=239.255.255.1;transport=udp", a(Udp, "239.255.255.1:5080")),
        ("sip:bob@192.0.2.4;maddr=proxy.example.net", n(None, "proxy.example.net", None)),
        ("sip:bob@biloxi.example.com;maddr=[2001:db8::2]", a(Udp, "[2001:db8::2]:5060")),
        // Refused.
        ("tel:+16505550100", Err("a tel: URI names no host to send to")),
        ("soap.beep://192.0.2.103:3002", Err("an unsupported URI scheme")),
        ("sips:bob@biloxi.example.com;transport=udp", Err("a sips: URI over UDP or SCTP")),
        ("sip:bob@192.0.2.4;transport=ws", Err("an unsupported transport parameter")),
        ("sip:bob@255.255.255.255", Err("a broadcast address")),
        ("sip:bob@0.0.0.0", Err("an unspecified address (0.0.0.0 or ::)")),
        ("sip:bob@[::]", Err("an unspecified address (0.0.0.0 or ::)")),
        ("sip:bob@192.0.2.4:0", Err("a malformed URI")),
        ("sip:bob@192.0.2.4;maddr=a_b", Err("a malformed maddr parameter")),
        ("<sip:bob@192.0.2.4>", Err("a malformed URI")),
        ("sip:bob@192.0.2.4 ", Err("a malformed URI")),
    ];
    for (uri, expected) in cases {
        assert_eq!(next_hop(uri), expected, "{uri}");
    }
}

// ---------------------------------------------------------------------------------------------
// route_response (RFC 3261 §16.7 step 3, §18.2.2, RFC 3581)

fn ours() -> Vec<Local> {
    vec![
        Local::new(Transport::Udp, sa("192.0.2.10:5060")),
        Local::new(Transport::Tcp, sa("192.0.2.10:5060")),
        Local {
            transport: Transport::Udp,
            addr: sa("10.0.0.2:5060"),
            advertised: Some(("Proxy.Example.com".to_string(), 5060)),
        },
    ]
}

fn response(vias: &[&str]) -> String {
    let mut lines = vec!["SIP/2.0 180 Ringing"];
    lines.extend_from_slice(vias);
    lines.extend_from_slice(&[
        "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710",
        "CSeq: 314159 INVITE",
        "Content-Length: 0",
        "",
    ]);
    crlf(&lines)
}

const OUR_VIA: &str = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK2d4790";
const CLIENT_VIA: &str = "SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff";

#[test]
fn route_response_removes_our_via_in_both_layouts() {
    let expected = response(&[&format!("Via: {CLIENT_VIA}")]);
    let udp = Ok(Target::Addr { transport: Transport::Udp, addr: sa("192.0.2.1:9988") });
    // Two Via lines: our line goes.
    for layout in [
        response(&[&format!("Via: {OUR_VIA}"), &format!("Via: {CLIENT_VIA}")]),
        response(&[&format!("v: {OUR_VIA}"), &format!("Via: {CLIENT_VIA}")]),
        // One line, two values: our value and its comma go.
        response(&[&format!("Via: {OUR_VIA}, {CLIENT_VIA}")]),
        response(&[&format!("Via: {OUR_VIA} ,\r\n {CLIENT_VIA}")]),
    ] {
        let msg = parse(&layout);
        let mut edits = Edits::new();
        assert_eq!(route_response(&msg, &ours(), &mut edits), udp, "{layout}");
        let (text, again) = edited(&msg, &edits);
        assert_eq!(text, expected, "{layout}");
        assert_eq!(again.vias().count(), 1);
        assert_eq!(top_via_param(&again, "branch").as_deref(), Some("z9hG4bKkjshdyff"));
        assert_eq!(again.status(), Some(180));
    }
    // Three values: the other two stay in the line; the third line is untouched.
    let msg = parse(&response(&[
        &format!("Via: {OUR_VIA},{CLIENT_VIA}, SIP/2.0/UDP c.example.com"),
        "Via: SIP/2.0/UDP d.example.com",
    ]));
    let mut edits = Edits::new();
    assert_eq!(route_response(&msg, &ours(), &mut edits), udp);
    let (text, again) = edited(&msg, &edits);
    assert!(text.starts_with(&format!(
        "SIP/2.0 180 Ringing\r\nVia: {CLIENT_VIA}, SIP/2.0/UDP c.example.com\r\nVia: SIP/2.0/UDP d.example.com\r\n"
    )));
    assert_eq!(again.vias().count(), 3);
}

#[test]
fn route_response_recognises_our_sent_by() {
    let client = format!("Via: {CLIENT_VIA}");
    let is_ours = |via: &str| {
        let msg = parse(&response(&[via, &client]));
        let mut edits = Edits::new();
        let r = route_response(&msg, &ours(), &mut edits);
        assert_eq!(r.is_ok(), !edits.is_empty(), "edits only when routed");
        r.is_ok()
    };
    assert!(is_ours("Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1"), "no port is 5060");
    assert!(is_ours("Via: SIP/2.0/tcp 192.0.2.10:5060;branch=z9hG4bK1"));
    assert!(is_ours("Via: SIP/2.0/UDP proxy.example.COM.;branch=z9hG4bK1"), "the advertised name");
    assert!(is_ours("Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1"), "the real address behind it");
    assert!(!is_ours("Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK1"), "another port");
    assert!(!is_ours("Via: SIP/2.0/TLS 192.0.2.10:5060;branch=z9hG4bK1"), "a transport we do not listen on");
    assert!(!is_ours("Via: SIP/2.0/UDP 192.0.2.11:5060;branch=z9hG4bK1"), "another host");
    assert!(!is_ours("Via: SIP/2.0/UDP other.example.com;branch=z9hG4bK1"), "another name");
    // No second Via: the response was for us.
    let msg = parse(&response(&[&format!("Via: {OUR_VIA}")]));
    let mut edits = Edits::new();
    assert_eq!(route_response(&msg, &ours(), &mut edits), Err("no second Via: the response is for this element"));
    assert!(edits.is_empty());
    // A request is not routed as a response.
    let msg = parse(&request(&format!("Via: {OUR_VIA}")));
    assert_eq!(route_response(&msg, &ours(), &mut edits), Err("not a response"));
    // RFC 4475 §3.3.10: a second Via with a broadcast address is not followed.
    let bcast = Message::parse(Bytes::from(torture("bcast")), Framing::Datagram).unwrap();
    let at_198 = [Local::new(Transport::Udp, sa("192.0.2.198:5060"))];
    assert_eq!(route_response(&bcast, &at_198, &mut edits), Err("a broadcast address"));
    assert_eq!(route_response(&bcast, &ours(), &mut edits), Err("the top Via is not ours"));
    assert!(edits.is_empty());
}

#[test]
fn route_response_follows_the_next_via() {
    let route = |next: &str| {
        let msg = parse(&response(&[&format!("Via: {OUR_VIA}"), next]));
        let mut edits = Edits::new();
        route_response(&msg, &ours(), &mut edits)
    };
    let a = |t, s: &str| Ok(Target::Addr { transport: t, addr: sa(s) });
    let n = |t, h: &str, p| Ok(Target::Name { transport: Some(t), host: h.to_string(), port: p });
    use Transport::*;
    let cases: Vec<(&str, Result<Target, &str>)> = vec![
        // received: at the sent-by port, or 5060 (§18.2.2); rport wins (RFC 3581).
        ("Via: SIP/2.0/UDP pc33.example.com:5070;received=192.0.2.1", a(Udp, "192.0.2.1:5070")),
        ("Via: SIP/2.0/UDP pc33.example.com;received=192.0.2.1", a(Udp, "192.0.2.1:5060")),
        ("Via: SIP/2.0/UDP pc33.example.com;received=192.0.2.1;rport=9988", a(Udp, "192.0.2.1:9988")),
        ("Via: SIP/2.0/UDP pc33.example.com:5070;received=192.0.2.1;rport", a(Udp, "192.0.2.1:5070")),
        ("Via: SIP/2.0/UDP [2001:db8::1];received=2001:db8::9", a(Udp, "[2001:db8::9]:5060")),
        ("Via: SIP/2.0/UDP [2001:db8::1];received=[2001:db8::9]", a(Udp, "[2001:db8::9]:5060")),
        // maddr first on UDP, at the sent-by port; not on a reliable transport.
        (
            "Via: SIP/2.0/UDP h.example.com:5080;maddr=239.255.255.1;ttl=16;received=192.0.2.1",
            a(Udp, "239.255.255.1:5080"),
        ),
        ("Via: SIP/2.0/UDP h.example.com;maddr=relay.example.com", n(Udp, "relay.example.com", Some(5060))),
        ("Via: SIP/2.0/TCP h.example.com;maddr=239.255.255.1;received=192.0.2.1", a(Tcp, "192.0.2.1:5060")),
        // The sent-by itself: an address, or a name for RFC 3263 §5.
        ("Via: SIP/2.0/UDP 192.0.2.4", a(Udp, "192.0.2.4:5060")),
        ("Via: SIP/2.0/TLS 192.0.2.4", a(Tls, "192.0.2.4:5061")),
        ("Via: SIP/2.0/SCTP [2001:db8::4]:5090", a(Sctp, "[2001:db8::4]:5090")),
        ("Via: SIP/2.0/UDP pc33.example.com", n(Udp, "pc33.example.com", None)),
        ("Via: SIP/2.0/TCP pc33.example.com:5070", n(Tcp, "pc33.example.com", Some(5070))),
        // Dropped.
        ("Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en", Err("an unsupported transport in the Via")),
        ("Via: SIP/2.0/UDP h.example.com;received=nowhere", Err("a malformed received parameter in the Via")),
        (
            "Via: SIP/2.0/UDP h.example.com;received=192.0.2.1;rport=99999",
            Err("a malformed rport parameter in the Via"),
        ),
        ("Via: SIP/2.0/UDP 0.0.0.0", Err("an unspecified address (0.0.0.0 or ::)")),
        ("Via: SIP/3.0/UDP h.example.com", Err("a malformed second Via")),
    ];
    for (next, expected) in cases {
        assert_eq!(route(next), expected, "{next}");
    }
}

#[test]
fn reply_target_reads_the_top_via_as_marked() {
    let msg = parse(&request("Via: SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff"));
    let from = udp_from("192.0.2.1:9988");
    let at = |s: &str| Ok(Target::Addr { transport: Transport::Udp, addr: sa(s) });
    assert_eq!(reply_target(&msg, &from, false), at("192.0.2.1:9988"));
    let msg = parse(&request("Via: SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bKkjshdyff"));
    assert_eq!(reply_target(&msg, &from, false), at("192.0.2.1:4540"), "received, sent-by port");
    assert_eq!(reply_target(&msg, &from, true), at("192.0.2.1:9988"), "force_rport");
    let msg = parse(&request("Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKkjshdyff"));
    assert_eq!(reply_target(&msg, &from, false), at("192.0.2.1:5060"));
    let tcp = Source { transport: Transport::Tcp, ..from };
    assert_eq!(
        reply_target(&msg, &tcp, false),
        Ok(Target::Addr { transport: Transport::Tcp, addr: sa("192.0.2.1:9988") })
    );
}

// ---------------------------------------------------------------------------------------------
// stateless_reply (RFC 3261 §8.2.6)

const SEED: &[u8] = b"serc-test";

#[test]
fn reply_483_to_max_forwards_zero() {
    // RFC 4475 §3.3.11.
    let raw = torture("zeromf");
    let msg = Message::parse(Bytes::from(raw), Framing::Datagram).unwrap();
    let src = udp_from("192.0.2.1:5060");
    let reply = stateless_reply(&msg, 483, "Too Many Hops", SEED, &["Server: serc\r\n"], &src, false);
    let tag = stateless_to_tag(&msg, SEED);
    let expected = crlf(&[
        "SIP/2.0 483 Too Many Hops",
        &format!("To: sip:user@example.com;tag={tag}"),
        "From: sip:caller@example.net;tag=3ghsd41",
        "Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas",
        "CSeq: 39234321 OPTIONS",
        "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i;received=192.0.2.1",
        "Server: serc",
        "Content-Length: 0",
        "",
    ]);
    assert_eq!(String::from_utf8(reply.to_vec()).unwrap(), expected);
    let r = Message::parse(reply.clone(), Framing::Datagram).unwrap();
    assert_eq!(r.status(), Some(483));
    assert_eq!(r.to_tag.map(|t| r.text(t)), Some(tag.as_str()));
    assert_eq!(r.from_tag.map(|t| r.text(t)), Some("3ghsd41"));
    assert_eq!(r.cseq, 39234321);
    assert_eq!(r.text(r.call_id), "zeromf.jfasdlfnm2o2l43r5u0asdfas");
    assert_eq!(top_via_param(&r, "received").as_deref(), Some("192.0.2.1"));
    assert_eq!(r.content_length, Some(0));
    assert_eq!(r.header(HeaderName::Server).map(|h| r.text(h.value)), Some("serc"));
    // A retransmission gets the same reply, byte for byte; another seed another tag.
    let again = Message::parse(Bytes::from(torture("zeromf")), Framing::Datagram).unwrap();
    assert_eq!(stateless_reply(&again, 483, "Too Many Hops", SEED, &["Server: serc\r\n"], &src, false), reply);
    assert_ne!(stateless_to_tag(&msg, b"another"), tag);
    // A missing CRLF after the extra headers is added.
    let r2 = stateless_reply(&msg, 483, "Too Many Hops", SEED, &["Server: serc"], &src, false);
    assert_eq!(r2, reply);
    // The parts follow one another; the last one that is not empty gets the CRLF.
    let parts = stateless_reply(&msg, 483, "Too Many Hops", SEED, &["", "Server: ", "serc", ""], &src, false);
    assert_eq!(parts, reply);
}

#[test]
fn reply_404_keeps_or_adds_the_to_tag_and_marks_the_via() {
    let via = "Via: SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff";
    let extra = "Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK0";
    let original = crlf(&[
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        via,
        extra,
        "Max-Forwards: 70",
        "Record-Route: <sip:edge.example.com;lr>",
        "To: Bob <sip:bob@biloxi.example.com>",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710",
        "CSeq: 314159 INVITE",
        "Timestamp: 54",
        "Content-Length: 0",
        "",
    ]);
    let msg = parse(&original);
    let src = udp_from("192.0.2.1:9988");
    let reply = stateless_reply(&msg, 404, "Not Found", SEED, &[], &src, false);
    let tag = stateless_to_tag(&msg, SEED);
    assert_eq!(
        String::from_utf8(reply.to_vec()).unwrap(),
        crlf(&[
            "SIP/2.0 404 Not Found",
            // As OpenSER 1.3 and Kamailio build a reply: rport filled in place,
            // received appended to the Via.
            "Via: SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1",
            extra,
            &format!("To: Bob <sip:bob@biloxi.example.com>;tag={tag}"),
            "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
            "Call-ID: a84b4c76e66710",
            "CSeq: 314159 INVITE",
            "Content-Length: 0",
            "",
        ])
    );
    let r = Message::parse(reply, Framing::Datagram).unwrap();
    assert_eq!((r.status(), r.vias().count()), (Some(404), 2));
    assert_eq!(top_via_param(&r, "rport").as_deref(), Some("9988"));
    // The ACK of that 404 computes the same tag: `sl` can recognise it.
    let ack = with(&with(&original, "INVITE sip", "ACK sip"), "314159 INVITE", "314159 ACK");
    let ack = with(&ack, "biloxi.example.com>\r\n", &format!("biloxi.example.com>;tag={tag}\r\n"));
    let ack = parse(&ack);
    assert_eq!(ack.to_tag.map(|t| ack.text(t)), Some(stateless_to_tag(&ack, SEED).as_str()));

    // A To tag already there stays as it is.
    let in_dialog = with(&original, "biloxi.example.com>\r\n", "biloxi.example.com>;tag=x9\r\n");
    let msg = parse(&in_dialog);
    let reply = stateless_reply(&msg, 404, "Not Found", SEED, &[], &src, false);
    let r = Message::parse(reply.clone(), Framing::Datagram).unwrap();
    assert_eq!(r.to_tag.map(|t| r.text(t)), Some("x9"));
    assert!(String::from_utf8(reply.to_vec()).unwrap().contains("\r\nTo: Bob <sip:bob@biloxi.example.com>;tag=x9\r\n"));

    // 100: no tag, Timestamp copied; 180: Record-Route copied.
    let msg = parse(&original);
    let trying = stateless_reply(&msg, 100, "Trying", SEED, &[], &src, false);
    let r = Message::parse(trying.clone(), Framing::Datagram).unwrap();
    assert_eq!(r.to_tag, None);
    assert_eq!(r.headers_by_text("Timestamp").count(), 1);
    assert_eq!(r.header(HeaderName::RecordRoute), None);
    let ringing = stateless_reply(&msg, 180, "Ringing", SEED, &[], &src, false);
    let r = Message::parse(ringing, Framing::Datagram).unwrap();
    assert_eq!(r.header(HeaderName::RecordRoute).map(|h| r.text(h.value)), Some("<sip:edge.example.com;lr>"));
    assert_eq!(r.headers_by_text("Timestamp").count(), 0);
    // CR and LF never reach the status line.
    let odd = stateless_reply(&msg, 404, "Not\r\nFound", SEED, &[], &src, false);
    assert!(odd.starts_with(b"SIP/2.0 404 NotFound\r\nVia: "));
}

#[test]
fn reply_404_to_an_rfc_2543_request() {
    // RFC 4475 §3.4.1: no branch, no tags; its Content-Length is missing.
    let msg = Message::parse(Bytes::from(torture("inv2543")), Framing::Datagram).unwrap();
    let src = udp_from("192.0.2.77:5060");
    let reply = stateless_reply(&msg, 404, "Not Found", SEED, &[], &src, true);
    let text = String::from_utf8(reply.to_vec()).unwrap();
    assert!(text
        .starts_with("SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP iftgw.example.com;rport=5060;received=192.0.2.77\r\n"));
    let r = Message::parse(reply, Framing::Datagram).unwrap();
    assert_eq!(r.to_tag.map(|t| r.text(t).to_string()), Some(stateless_to_tag(&msg, SEED)));
    assert_eq!(r.from_tag, None);
    assert_eq!(r.header(HeaderName::RecordRoute), None);
    assert_eq!(r.cseq, 56);
}

// ---------------------------------------------------------------------------------------------
// rejection_reply (RFC 4475 invalid messages)

/// Requests whose own Via, From, To, Call-ID or CSeq are malformed or missing: the
/// reply echoes them as they came (RFC 3261 §8.2.6.2), so our strict parser refuses
/// the reply for that header, as it refused the request.
const ECHOES_A_BROKEN_HEADER: [(&str, &str); 7] = [
    ("badinv01", "Via"),
    ("badvers", "Via"),
    ("scalar02", "CSeq"),
    ("quotbal", "To"),
    ("badaspec", "To"),
    ("baddn", "From"),
    ("insuf", "From"),
];

#[test]
fn rejection_replies_for_the_torture_messages() {
    let manifest = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).unwrap();
    let mut answered = Vec::new();
    let mut parsed = 0;
    for line in manifest.lines().skip(1) {
        let name = line.split('\t').next().unwrap();
        let raw = torture(name);
        let Err(rejected) = Message::parse(Bytes::from(raw.clone()), Framing::Datagram) else { continue };
        let reply = rejection_reply(&raw, &rejected);
        let Some(status) = rejected.status else {
            assert_eq!(reply, None, "{name}: dropped");
            continue;
        };
        answered.push(name);
        let reply = reply.unwrap_or_else(|| panic!("{name}: no reply"));
        let text = String::from_utf8_lossy(&reply).into_owned();
        assert!(text.starts_with(&format!("SIP/2.0 {status} {}\r\n", rejected.reason)), "{name}: {text}");
        assert!(text.ends_with("\r\nContent-Length: 0\r\n\r\n"), "{name}");
        // Every Via line of the request, once, in order; the single headers once.
        let request = String::from_utf8_lossy(&raw).into_owned();
        let copied: Vec<&str> = text.split("\r\n").skip(1).take_while(|l| !l.starts_with("Content-Length")).collect();
        for l in &copied {
            assert!(request.contains(l.split(";tag=").next().unwrap()), "{name}: {l:?} is not the request's");
            assert_eq!(copied.iter().filter(|m| *m == l).count(), 1, "{name}: {l:?} twice");
        }
        let name_of = |l: &str| HeaderName::parse(l.split(':').next().unwrap().trim().as_bytes());
        for h in [HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            assert!(copied.iter().filter(|l| name_of(l) == h).count() <= 1, "{name}: two {h:?}");
        }
        let request_vias = request.split("\r\n").filter(|l| name_of(l) == HeaderName::Via).count();
        assert_eq!(copied.iter().filter(|l| name_of(l) == HeaderName::Via).count(), request_vias, "{name}");
        // A retransmission gets the same reply.
        assert_eq!(rejection_reply(&raw, &rejected).unwrap(), reply);

        match Message::parse(reply.clone(), Framing::Datagram) {
            Ok(r) => {
                assert!(
                    !ECHOES_A_BROKEN_HEADER.iter().any(|(n, _)| *n == name),
                    "{name}: expected a reply our parser refuses"
                );
                parsed += 1;
                assert_eq!(r.status(), Some(status), "{name}");
                assert!(r.to_tag.is_some(), "{name}: a To tag is added");
                // The same transaction fields as the request's lines.
                let first = |h: HeaderName| {
                    request.split("\r\n").find(|l| name_of(l) == h).map(|l| l.split_once(':').unwrap().1.trim())
                };
                assert_eq!(Some(r.text(r.call_id)), first(HeaderName::CallId), "{name}");
                assert_eq!(r.header(HeaderName::CSeq).map(|h| r.text(h.value)), first(HeaderName::CSeq), "{name}");
                assert_eq!(r.header(HeaderName::From).map(|h| r.text(h.value)), first(HeaderName::From), "{name}");
                assert_eq!(r.text(r.via.value), first(HeaderName::Via).unwrap(), "{name}");
            }
            Err(e) => {
                let (_, header) = ECHOES_A_BROKEN_HEADER
                    .iter()
                    .find(|(n, _)| *n == name)
                    .unwrap_or_else(|| panic!("{name}: the reply does not parse: {}\n{text}", e.detail));
                assert!(e.detail.contains(header), "{name}: {} (expected {header})", e.detail);
            }
        }
    }
    // All the requests RFC 4475 wants answered: 20 of them.
    assert_eq!(answered.len(), 20, "{answered:?}");
    assert_eq!(parsed, 20 - ECHOES_A_BROKEN_HEADER.len());
    for (name, _) in ECHOES_A_BROKEN_HEADER {
        assert!(answered.contains(&name), "{name}");
    }
}

#[test]
fn rejection_reply_details() {
    // multi01 (RFC 4475 §3.3.8): the first of each duplicated header.
    let raw = torture("multi01");
    let rejected = Message::parse(Bytes::from(raw.clone()), Framing::Datagram).unwrap_err();
    let reply = rejection_reply(&raw, &rejected).unwrap();
    let r = Message::parse(reply, Framing::Datagram).unwrap();
    assert_eq!((r.cseq, r.text(r.call_id)), (5, "multi01.98asdh@192.0.2.1"));
    assert_eq!(r.from_tag.map(|t| r.text(t)), Some("3413415"));
    assert_eq!(r.text(r.to().uri), "sip:user@example.com");
    // badvers (RFC 4475 §3.1.2.16): 505, the Via as it came.
    let raw = torture("badvers");
    let rejected = Message::parse(Bytes::from(raw.clone()), Framing::Datagram).unwrap_err();
    let text = String::from_utf8(rejection_reply(&raw, &rejected).unwrap().to_vec()).unwrap();
    assert!(text.starts_with(
        "SIP/2.0 505 Version Not Supported\r\nVia:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n"
    ));
    // A folded Via is copied whole, once, whether the request line or a header was
    // refused (the parser lists a folded line twice then, once cut at its first line end).
    for (start_line, bad) in [
        ("OPTIONS <sip:user@example.com> SIP/2.0", "Max-Forwards: 70"),
        ("OPTIONS sip:user@example.com SIP/2.0", "Date: Fri, 01 Jan 2010 16:00:00 EST"),
    ] {
        let folded = crlf(&[
            start_line,
            "Via: SIP/2.0/UDP a.example.com;",
            " branch=z9hG4bK1",
            bad,
            "To: <sip:user@example.com>",
            "From: <sip:c@example.com>;tag=1",
            "Call-ID: f",
            "CSeq: 1 OPTIONS",
            "",
        ]);
        let rejected = Message::parse(Bytes::from(folded.clone()), Framing::Datagram).unwrap_err();
        let reply = rejection_reply(folded.as_bytes(), &rejected).unwrap();
        let text = String::from_utf8(reply.to_vec()).unwrap();
        assert!(text.contains("\r\nVia: SIP/2.0/UDP a.example.com;\r\n branch=z9hG4bK1\r\nTo: "), "{text}");
        let r = Message::parse(reply, Framing::Datagram).unwrap();
        assert_eq!(r.via.branch.map(|b| r.text(b)), Some("z9hG4bK1"));
        assert_eq!(r.vias().count(), 1);
        assert_eq!(r.status(), Some(400));
    }
    // A request refused at its first line: only header lines are copied (found
    // by `cargo xtask fuzz route_sip`: a line `To; lr` was echoed as the To).
    let raw = crlf(&[
        "NVITE sip:user@example.com; lr SIP/2.0",
        "To; lr SIP/2.0",
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=1",
        "Call-ID: c",
        "CSeq: 1 INVITE",
        "Via  : SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2",
        "",
    ]);
    let rejected = Message::parse(Bytes::from(raw.clone()), Framing::Datagram).unwrap_err();
    let reply = rejection_reply(raw.as_bytes(), &rejected).unwrap();
    let r = Message::parse(reply.clone(), Framing::Datagram).unwrap_or_else(|e| panic!("{e:?}: {reply:?}"));
    assert_eq!(r.text(r.to().uri), "sip:user@example.com");
    assert_eq!(r.via.branch.map(|b| r.text(b)), Some("z9hG4bK2"));
    // A response is dropped, never answered.
    let raw = torture("bigcode");
    let rejected = Message::parse(Bytes::from(raw.clone()), Framing::Datagram).unwrap_err();
    assert_eq!(rejection_reply(&raw, &rejected), None);
}
