//! registrar and usrloc in memory, through the proxy pipeline (no sockets):
//! REGISTER processing as RFC 3261 §10.3 asks (bindings, expires, `*`, CSeq
//! ordering per Call-ID, retransmissions, `min_expires` → 423, `max_expires`,
//! `max_contacts` → 503, queries), OpenSER 1.3's error replies, and `lookup`
//! turning the Request-URI into the best contact with the others as branches.
//!
//! The route is the one the code generator writes for
//! `route { if (is_method("REGISTER")) { save("location"); exit; }
//!          if (lookup("location")) { forward(); exit; }
//!          sl_send_reply("404", "Not Found"); }`

use std::net::SocketAddr;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{core, registrar, sl};
use serc_runtime::proxy::{Local, Source, Target, Transport};
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow, Value};
use serc_runtime::sip::{Framing, HeaderName, Message, Method, StartLine};

struct Registrar;

impl Script for Registrar {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if ctx.msg.method() == Some(Method::Register) {
            registrar::save_1(ctx, "location");
            return Flow::Exit;
        }
        if registrar::lookup(ctx, "location") > 0 {
            // What forward() would send to, and the branches lookup added, as a reply text.
            let branches: Vec<String> = ctx.branches.iter().map(|b| b.uri.clone()).collect();
            let ruri = ctx.request_uri().to_string();
            core::forward_0(ctx);
            let text = format!("to {ruri} then {}", branches.join(" "));
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(299), &Format::literal(&text));
            return Flow::Exit;
        }
        sl::sl_send_reply(ctx, &ReplyCode::Fixed(404), &Format::literal("Not Found"));
        Flow::Exit
    }
}

const PROXY: &str = "127.0.0.1:5060";
const CLIENT: &str = "127.0.0.1:40000";

fn proxy(params: &[(&str, &str, i64)]) -> Proxy<Registrar> {
    let local: SocketAddr = PROXY.parse().unwrap();
    let mut config = Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() };
    for (m, p, v) in params {
        config.params.set(m, p, Value::Int(*v));
    }
    Proxy::new(Registrar, config)
}

fn source() -> Source {
    Source { transport: Transport::Udp, addr: CLIENT.parse().unwrap(), local: PROXY.parse().unwrap() }
}

/// A REGISTER for `user` with `contacts` (whole header lines' values) and extra header lines.
fn register(user: &str, callid: &str, cseq: u32, contacts: &[&str], extra: &str) -> Bytes {
    let contact_lines: String = contacts.iter().map(|c| format!("Contact: {c}\r\n")).collect();
    Bytes::from(format!(
        "REGISTER sip:{PROXY} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-{callid}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:{user}@example.com>;tag=reg\r\n\
         Call-ID: {callid}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {contact_lines}{extra}Content-Length: 0\r\n\r\n"
    ))
}

fn invite(user: &str) -> Bytes {
    Bytes::from(format!(
        "INVITE sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-inv-{user}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:caller@example.com>;tag=1\r\n\
         Call-ID: inv-{user}\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// What came back: the replies as (code, reason, the message), and the requests sent.
struct Out {
    replies: Vec<(u16, String, Message)>,
    requests: Vec<(Target, Message)>,
}

fn send(proxy: &Proxy<Registrar>, bytes: Bytes) -> Out {
    let mut out = Out { replies: Vec::new(), requests: Vec::new() };
    for s in proxy.route(bytes, source(), Framing::Datagram) {
        let msg = Message::parse(s.bytes.clone(), Framing::Datagram).expect("what serc sends parses");
        match msg.start {
            StartLine::Response { code, reason, .. } => {
                let reason = msg.text(reason).to_string();
                out.replies.push((code, reason, msg));
            }
            StartLine::Request { .. } => out.requests.push((s.target, msg)),
        }
    }
    out
}

/// The one reply to a REGISTER: code, reason, and the text of a header (all its lines joined).
fn reply(out: &Out) -> (u16, String, &Message) {
    assert_eq!(out.replies.len(), 1, "one reply");
    let (code, reason, msg) = &out.replies[0];
    (*code, reason.clone(), msg)
}

fn header(msg: &Message, name: HeaderName) -> String {
    msg.headers_named(name).map(|h| msg.text(h.value).to_string()).collect::<Vec<_>>().join(", ")
}

fn header_text(msg: &Message, name: &str) -> String {
    msg.headers_by_text(name).map(|h| msg.text(h.value).to_string()).collect::<Vec<_>>().join(", ")
}

#[test]
fn bindings_are_saved_listed_and_refreshed() {
    let p = proxy(&[]);
    let out = send(&p, register("alice", "c1", 1, &["<sip:alice@192.0.2.1:5070>;expires=3600"], ""));
    let (code, reason, msg) = reply(&out);
    assert_eq!((code, reason.as_str()), (200, "OK"));
    assert_eq!(header(msg, HeaderName::Contact), "<sip:alice@192.0.2.1:5070>;expires=3600");

    // A second device, with a q-value and the Expires header's interval.
    let out = send(&p, register("alice", "c2", 1, &["<sip:alice@192.0.2.2>;q=0.5"], "Expires: 1800\r\n"));
    let (code, _, msg) = reply(&out);
    assert_eq!(code, 200);
    assert_eq!(
        header(msg, HeaderName::Contact),
        "<sip:alice@192.0.2.1:5070>;expires=3600, <sip:alice@192.0.2.2>;q=0.5;expires=1800"
    );

    // A query (no Contact) lists the bindings and changes nothing.
    let out = send(&p, register("alice", "c3", 1, &[], ""));
    assert_eq!(header(reply(&out).2, HeaderName::Contact).matches("sip:alice@").count(), 2);

    // The AOR is the To user, case-insensitively (registrar's case_sensitive 0).
    let out = send(&p, register("ALICE", "c3", 2, &[], ""));
    assert_eq!(header(reply(&out).2, HeaderName::Contact).matches("sip:alice@").count(), 2);
}

#[test]
fn cseq_ordering_per_call_id() {
    let p = proxy(&[]);
    let contact = ["<sip:bob@192.0.2.3>"];
    assert_eq!(reply(&send(&p, register("bob", "same", 5, &contact, ""))).0, 200);
    // Lower CSeq on the same Call-ID: the update fails (RFC 3261 §10.3 step 7).
    let out = send(&p, register("bob", "same", 4, &contact, ""));
    let (code, reason, msg) = reply(&out);
    assert_eq!((code, reason.as_str()), (400, "Bad Request"));
    assert_eq!(header_text(msg, "P-Registrar-Error"), "Invalid CSeq number");
    // The same CSeq right away is a retransmission: 200, nothing changed.
    assert_eq!(reply(&send(&p, register("bob", "same", 5, &contact, ""))).0, 200);
    // Another Call-ID may update the binding whatever its CSeq.
    let out = send(&p, register("bob", "other", 1, &["<sip:bob@192.0.2.3>;expires=120"], ""));
    assert_eq!(header(reply(&out).2, HeaderName::Contact), "<sip:bob@192.0.2.3>;expires=120");
}

#[test]
fn expires_bounds() {
    let p = proxy(&[("registrar", "max_expires", 600)]);
    // Below min_expires (60): 423 with Min-Expires, as RFC 3261 §10.3 asks.
    let out = send(&p, register("carol", "c", 1, &["<sip:carol@192.0.2.4>;expires=30"], ""));
    let (code, reason, msg) = reply(&out);
    assert_eq!((code, reason.as_str()), (423, "Interval Too Brief"));
    assert_eq!(header(msg, HeaderName::MinExpires), "60");
    assert!(header(msg, HeaderName::Contact).is_empty());
    // Above max_expires: lowered.
    let out = send(&p, register("carol", "c", 2, &["<sip:carol@192.0.2.4>;expires=7200"], ""));
    assert_eq!(header(reply(&out).2, HeaderName::Contact), "<sip:carol@192.0.2.4>;expires=600");
    // expires=0 removes it.
    let out = send(&p, register("carol", "c", 3, &["<sip:carol@192.0.2.4>;expires=0"], ""));
    assert!(header(reply(&out).2, HeaderName::Contact).is_empty());
}

#[test]
fn star_removes_every_binding_only_with_expires_zero() {
    let p = proxy(&[]);
    send(&p, register("dave", "c", 1, &["<sip:dave@192.0.2.5>", "<sip:dave@192.0.2.6>"], ""));
    let out = send(&p, register("dave", "c", 2, &["*"], "Expires: 3600\r\n"));
    let (code, _, msg) = reply(&out);
    assert_eq!(code, 400);
    assert_eq!(header_text(msg, "P-Registrar-Error"), "star and expires not zero");
    let out = send(&p, register("dave", "c", 3, &["*"], "Expires: 0\r\n"));
    let (code, _, msg) = reply(&out);
    assert_eq!(code, 200);
    assert!(header(msg, HeaderName::Contact).is_empty());
    assert_eq!(reply(&send(&p, invite("dave"))).0, 404);
}

#[test]
fn max_contacts_refuses_with_503() {
    let p = proxy(&[("registrar", "max_contacts", 1)]);
    assert_eq!(reply(&send(&p, register("erin", "c", 1, &["<sip:erin@192.0.2.7>"], ""))).0, 200);
    let out = send(&p, register("erin", "c", 2, &["<sip:erin@192.0.2.8>"], ""));
    let (code, reason, msg) = reply(&out);
    assert_eq!((code, reason.as_str()), (503, "Service Unavailable"));
    assert_eq!(header_text(msg, "P-Registrar-Error"), "Too many registered contacts");
    // Replacing the one binding is fine.
    let out = send(&p, register("erin", "c", 3, &["<sip:erin@192.0.2.7>;expires=0", "<sip:erin@192.0.2.8>"], ""));
    assert_eq!(header(reply(&out).2, HeaderName::Contact), "<sip:erin@192.0.2.8>;expires=3600");
}

#[test]
fn a_to_uri_without_user_is_refused() {
    let p = proxy(&[]);
    let bytes = Bytes::from(
        String::from_utf8(register("x", "c", 1, &["<sip:x@192.0.2.9>"], "").to_vec())
            .unwrap()
            .replace("To: <sip:x@example.com>", "To: <sip:example.com>"),
    );
    let out = send(&p, bytes);
    let (code, _, msg) = reply(&out);
    assert_eq!(code, 400);
    assert_eq!(header_text(msg, "P-Registrar-Error"), "No username in To URI");
}

/// A Contact URI that is not UTF-8 is refused, not kept mangled (found by
/// `cargo xtask fuzz route_sip`: it was saved as an empty URI and listed as `<>`).
#[test]
fn a_contact_uri_that_is_not_utf8_is_refused_and_nothing_is_saved() {
    let p = proxy(&[]);
    let mut bytes = register("x", "c", 1, &["<sip:x@192.0.2.9>"], "").to_vec();
    let at = bytes.windows(7).position(|w| w == b"192.0.2").unwrap();
    bytes[at + 3] = 0xd2;
    let out = send(&p, Bytes::from(bytes));
    let (code, _, msg) = reply(&out);
    assert_eq!(code, 400);
    assert_eq!(header_text(msg, "P-Registrar-Error"), "Contact parse error");
    // Nothing was saved: a fetch lists no binding.
    let out = send(&p, register("x", "c", 2, &[], ""));
    let (code, _, msg) = reply(&out);
    assert_eq!(code, 200);
    assert_eq!(header(msg, HeaderName::Contact), "");
}

#[test]
fn lookup_forwards_to_the_best_contact_and_branches_the_others() {
    let p = proxy(&[]);
    send(&p, register("frank", "c1", 1, &["<sip:frank@127.0.0.1:5071>;q=0.2"], ""));
    send(&p, register("frank", "c2", 1, &["<sip:frank@127.0.0.1:5072>;q=0.9"], ""));
    send(&p, register("frank", "c3", 1, &["<sip:frank@127.0.0.1:5073>"], ""));
    let out = send(&p, invite("frank"));
    assert_eq!(out.requests.len(), 1, "the INVITE is forwarded");
    let (target, msg) = &out.requests[0];
    assert_eq!(*target, Target::Addr { transport: Transport::Udp, addr: "127.0.0.1:5072".parse().unwrap() });
    assert_eq!(msg.request_uri(), Some("sip:frank@127.0.0.1:5072"));
    let (code, reason, _) = &out.replies[0];
    assert_eq!(*code, 299);
    // By q: 0.9, then 0.2, then the unspecified one (below q=0, as OpenSER 1.3).
    assert_eq!(reason, "to sip:frank@127.0.0.1:5072 then sip:frank@127.0.0.1:5071 sip:frank@127.0.0.1:5073");
    assert_eq!(reply(&send(&p, invite("nobody"))).0, 404);
}

/// usrloc keeps one table per name: what `save("location")` stores,
/// `lookup("aliases")` does not find.
#[test]
fn tables_are_separate() {
    struct Aliases;
    impl Script for Aliases {
        fn request(&self, ctx: &mut Ctx) -> Flow {
            let rc = registrar::lookup(ctx, "aliases");
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(200), &Format::literal(&format!("rc={rc}")));
            Flow::Exit
        }
    }
    let p = proxy(&[]);
    send(&p, register("gina", "c", 1, &["<sip:gina@127.0.0.1:5074>"], ""));
    let aliases = Proxy::new(Aliases, p.config.clone());
    let out = aliases.route(invite("gina"), source(), Framing::Datagram);
    let msg = Message::parse(out[0].bytes.clone(), Framing::Datagram).unwrap();
    let StartLine::Response { reason, .. } = msg.start else { panic!("a reply") };
    assert_eq!(msg.text(reason), "rc=-1");
}
