//! registrar's `method_filtering` (contacts that accept the request's method,
//! from the REGISTER's Allow headers; -2 when none does) and `add_sock_hdr`,
//! through the pipeline (`Proxy::route`, no sockets). The route, as the
//! code generator writes
//!
//! ```text
//! modparam("registrar", "method_filtering", 1)
//! route {
//!     if (method == "REGISTER") {
//!         if ($hdr(X-Relay) != null) { add_sock_hdr("Sock-Info"); forward("192.0.2.9:5060"); exit; }
//!         save("location"); exit;
//!     }
//!     if (method == "OPTIONS") { registered("location"); sl_send_reply("299", "rc=$retcode ru=$ru"); exit; }
//!     lookup("location");  sl_send_reply("299", "rc=$retcode ru=$ru");
//! }
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{core, registrar, sl};
use serc_runtime::proxy::{Local, Source, Transport};
use serc_runtime::script::args::{Format, HdrName, ReplyCode, SocketSpec};
use serc_runtime::script::{Config, Ctx, Flow, Value};
use serc_runtime::sip::{Framing, Message, Method, StartLine};

struct Route;

impl Script for Route {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if ctx.msg.method() == Some(Method::Register) {
            if ctx.msg.headers_by_text("X-Relay").next().is_some() {
                registrar::add_sock_hdr(ctx, &HdrName::new("Sock-Info"));
                core::forward_1(ctx, &SocketSpec::parse("192.0.2.9:5060").unwrap());
                return Flow::Exit;
            }
            registrar::save_1(ctx, "location");
            return Flow::Exit;
        }
        let rc = if ctx.msg.method() == Some(Method::Options) {
            registrar::registered(ctx, "location")
        } else {
            registrar::lookup(ctx, "location")
        };
        let text = format!("rc={rc} ru={}", ctx.request_uri());
        sl::sl_send_reply(ctx, &ReplyCode::Fixed(299), &Format::literal(&text));
        Flow::Exit
    }
}

const PROXY: &str = "127.0.0.1:5060";
const CLIENT: &str = "127.0.0.1:40000";

fn proxy(filtering: i64) -> Proxy<Route> {
    let local: SocketAddr = PROXY.parse().unwrap();
    let mut config = Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() };
    config.params.set("registrar", "method_filtering", Value::Int(filtering));
    Proxy::new(Route, config)
}

fn source() -> Source {
    Source { transport: Transport::Udp, addr: CLIENT.parse().unwrap(), local: PROXY.parse().unwrap() }
}

fn request(method: &str, user: &str, extra: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-{method}-{user}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:{user}@example.com>;tag=1\r\n\
         Call-ID: {method}-{user}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    ))
}

/// The messages the proxy sent for `bytes`, parsed.
fn send(p: &Proxy<Route>, bytes: Bytes) -> Vec<Message> {
    p.route(bytes, source(), Framing::Datagram)
        .into_iter()
        .map(|s| Message::parse(s.bytes.clone(), Framing::Datagram).expect("what serc sends parses"))
        .collect()
}

fn answer(p: &Proxy<Route>, method: &str, user: &str) -> String {
    let out = send(p, request(method, user, ""));
    assert_eq!(out.len(), 1);
    match out[0].start {
        StartLine::Response { code, reason, .. } => format!("{code} {}", out[0].text(reason)),
        StartLine::Request { .. } => panic!("a request was sent"),
    }
}

#[test]
fn method_filtering_keeps_the_contacts_that_accept_the_method() {
    let p = proxy(1);
    let contact = "Contact: <sip:alice@192.0.2.1:5070>\r\n";
    // One device allows INVITE but not MESSAGE (Allow on two lines), another
    // says nothing (every method).
    let allow = format!("{contact}Allow: INVITE, ACK, CANCEL\r\nAllow: BYE\r\n");
    assert!(send(&p, request("REGISTER", "alice", &allow)).iter().all(|m| m.status() == Some(200)));
    assert_eq!(answer(&p, "INVITE", "alice"), "299 rc=1 ru=sip:alice@192.0.2.1:5070");
    assert_eq!(answer(&p, "MESSAGE", "alice"), "299 rc=-2 ru=sip:alice@example.com");
    assert!(send(&p, request("REGISTER", "bob", "Contact: <sip:bob@192.0.2.2>\r\n"))
        .iter()
        .all(|m| m.status() == Some(200)));
    assert_eq!(answer(&p, "MESSAGE", "bob"), "299 rc=1 ru=sip:bob@192.0.2.2");
    assert_eq!(answer(&p, "MESSAGE", "nobody"), "299 rc=-1 ru=sip:nobody@example.com");

    // Without method_filtering every contact counts.
    let p = proxy(0);
    assert!(send(&p, request("REGISTER", "alice", &allow)).iter().all(|m| m.status() == Some(200)));
    assert_eq!(answer(&p, "MESSAGE", "alice"), "299 rc=1 ru=sip:alice@192.0.2.1:5070");
}

#[test]
fn registered_says_whether_the_aor_has_a_live_contact() {
    let p = proxy(0);
    assert_eq!(answer(&p, "OPTIONS", "carol"), "299 rc=-1 ru=sip:carol@example.com");
    let contact = "Contact: <sip:carol@192.0.2.3>\r\n";
    assert!(send(&p, request("REGISTER", "carol", contact)).iter().all(|m| m.status() == Some(200)));
    // registered() leaves the Request-URI alone.
    assert_eq!(answer(&p, "OPTIONS", "carol"), "299 rc=1 ru=sip:carol@example.com");
    let gone = "Contact: <sip:carol@192.0.2.3>;expires=0\r\n";
    let unregister = request("REGISTER", "carol", gone);
    let unregister = Bytes::from(String::from_utf8(unregister.to_vec()).unwrap().replace("CSeq: 1 ", "CSeq: 2 "));
    assert!(send(&p, unregister).iter().all(|m| m.status() == Some(200)));
    assert_eq!(answer(&p, "OPTIONS", "carol"), "299 rc=-1 ru=sip:carol@example.com");
}

#[test]
fn add_sock_hdr_names_the_receiving_socket() {
    let p = proxy(0);
    let out = send(&p, request("REGISTER", "alice", "Contact: <sip:alice@192.0.2.1>\r\nX-Relay: yes\r\n"));
    assert_eq!(out.len(), 1);
    assert!(out[0].is_request(), "the REGISTER is relayed");
    let sock = out[0].headers_by_text("Sock-Info").map(|h| out[0].text(h.value).to_string()).collect::<Vec<_>>();
    assert_eq!(sock, [format!("udp:{PROXY}")]);
}
