//! What registrar stores with a contact so that `lookup` can reach it again:
//! the received address (the contact's `received` parameter, `received_avp`,
//! the first Path URI's with `path_use_received`), the Path (RFC 3327,
//! `use_path`, `path_mode`), the branch flags (usrloc's `nat_bflag` too), the
//! `methods` parameter, `save`'s flags — in memory and through a database
//! (SQLite file, `db_mode` 1, a restart), where flag 0x01 keeps a contact out
//! of it; `aor_avp` and `realm_prefix`. Through the pipeline (`Proxy::route`, no sockets). The route:
//!
//! ```text
//! route {
//!     if (method == "REGISTER") {
//!         if ($hdr(X-Bflag) != null) setbflag(3);
//!         if ($hdr(X-Aor) != null) $avp(s:aor) = $hdr(X-Aor);
//!         if ($hdr(X-Rcv) != null) $avp(s:rcv) = $hdr(X-Rcv);
//!         if ($hdr(X-Mem) != null) save("location", "0x01"); else save("location");
//!         exit;
//!     }
//!     lookup("location");
//!     if ($hdr(X-Forward) != null) { forward(); exit; }
//!     sl_send_reply("299", "<what lookup left>");
//! }
//! ```

mod db_support;

use std::net::SocketAddr;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::modules::{core, registrar, sl, usrloc};
use serc_runtime::proxy::{Local, Source, Target, Transport};
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{AvpName, Config, Ctx, Flow, Value};
use serc_runtime::sip::{Framing, HeaderName, Message, Method, StartLine};

struct Route;

fn header(ctx: &Ctx, name: &str) -> Option<String> {
    ctx.msg.headers_by_text(name).next().map(|h| ctx.msg.text(h.value).to_string())
}

impl Script for Route {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if ctx.msg.method() == Some(Method::Register) {
            if header(ctx, "X-Bflag").is_some() {
                core::setbflag_1(ctx, 3);
            }
            if let Some(aor) = header(ctx, "X-Aor") {
                ctx.avps.push(AvpName::parse("s:aor").unwrap(), Value::str(aor));
            }
            if let Some(rcv) = header(ctx, "X-Rcv") {
                ctx.avps.push(AvpName::parse("s:rcv").unwrap(), Value::str(rcv));
            }
            if header(ctx, "X-Mem").is_some() {
                registrar::save_2(ctx, "location", 0x01);
            } else {
                registrar::save_1(ctx, "location");
            }
            return Flow::Exit;
        }
        let rc = registrar::lookup(ctx, "location");
        if header(ctx, "X-Forward").is_some() {
            core::forward_0(ctx);
            return Flow::Exit;
        }
        let branches: Vec<String> = ctx
            .branches
            .iter()
            .map(|b| format!("[{} du={:?} path={:?} flags={}]", b.uri, b.dst_uri, b.path, b.flags))
            .collect();
        let text = format!(
            "rc={rc} ru={} du={:?} path={:?} bflags={} branches={}",
            ctx.request_uri(),
            ctx.dst_uri,
            ctx.path,
            ctx.branch_flags,
            branches.join("")
        );
        sl::sl_send_reply(ctx, &ReplyCode::Fixed(299), &Format::literal(&text));
        Flow::Exit
    }
}

const PROXY: &str = "127.0.0.1:5060";
const CLIENT: &str = "127.0.0.1:40000";

fn config(registrar: &[(&str, Value)], usrloc: &[(&str, Value)]) -> Config {
    let local: SocketAddr = PROXY.parse().unwrap();
    let mut config = Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() };
    config.params.set("registrar", "received_avp", Value::str("$avp(s:rcv)"));
    config.params.set("usrloc", "nat_bflag", Value::Int(6));
    for (p, v) in registrar {
        config.params.set("registrar", p, v.clone());
    }
    for (p, v) in usrloc {
        config.params.set("usrloc", p, v.clone());
    }
    config
}

fn source() -> Source {
    Source { transport: Transport::Udp, addr: CLIENT.parse().unwrap(), local: PROXY.parse().unwrap() }
}

fn request(method: &str, user: &str, cseq: u32, extra: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-{method}-{user}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:{user}@example.com>;tag=1\r\n\
         Call-ID: {method}-{user}\r\n\
         CSeq: {cseq} {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    ))
}

/// What the proxy sent for `bytes`: (the message, where to).
fn send(p: &Proxy<Route>, bytes: Bytes) -> Vec<(Message, Target)> {
    p.route(bytes, source(), Framing::Datagram)
        .into_iter()
        .map(|s| (Message::parse(s.bytes.clone(), Framing::Datagram).expect("what serc sends parses"), s.target))
        .collect()
}

/// The one reply to `bytes`: "CODE REASON".
fn reply(p: &Proxy<Route>, bytes: Bytes) -> (String, Message) {
    let mut out = send(p, bytes);
    assert_eq!(out.len(), 1, "one message sent");
    let (m, _) = out.remove(0);
    match m.start {
        StartLine::Response { code, reason, .. } => (format!("{code} {}", m.text(reason)), m),
        StartLine::Request { .. } => panic!("a request was sent"),
    }
}

fn values(m: &Message, name: &str) -> Vec<String> {
    m.headers_by_text(name).map(|h| m.text(h.value).to_string()).collect()
}

#[test]
fn received_comes_from_the_contact_then_received_avp_and_becomes_du() {
    let p = Proxy::new(Route, config(&[], &[]));
    let (status, ok) = reply(
        &p,
        request(
            "REGISTER",
            "alice",
            1,
            "Contact: <sip:alice@10.0.0.5:5060>;received=\"sip:203.0.113.9:1024\"\r\nX-Rcv: sip:198.51.100.1:9\r\n",
        ),
    );
    assert_eq!(status, "200 OK");
    // 1.3's 200 lists the received address in registrar's received_param.
    assert_eq!(values(&ok, "Contact"), ["<sip:alice@10.0.0.5:5060>;expires=3600;received=\"sip:203.0.113.9:1024\""]);
    let (status, _) =
        reply(&p, request("REGISTER", "bob", 1, "Contact: <sip:bob@10.0.0.6>\r\nX-Rcv: sip:198.51.100.1:2048\r\n"));
    assert_eq!(status, "200 OK");
    reply(&p, request("REGISTER", "carol", 1, "Contact: <sip:carol@192.0.2.7>\r\n"));

    let (text, _) = reply(&p, request("INVITE", "alice", 1, ""));
    assert!(
        text.starts_with("299 rc=1 ru=sip:alice@10.0.0.5:5060 du=Some(\"sip:203.0.113.9:1024\") path=None"),
        "{text}"
    );
    let (text, _) = reply(&p, request("INVITE", "bob", 1, ""));
    assert!(text.starts_with("299 rc=1 ru=sip:bob@10.0.0.6 du=Some(\"sip:198.51.100.1:2048\")"), "{text}");
    let (text, _) = reply(&p, request("INVITE", "carol", 1, ""));
    assert!(text.starts_with("299 rc=1 ru=sip:carol@192.0.2.7 du=None"), "{text}");

    // Forwarded statelessly: to the received address, with the contact as the Request-URI.
    let out = send(&p, request("INVITE", "alice", 2, "X-Forward: yes\r\n"));
    assert_eq!(out.len(), 1);
    let (m, target) = &out[0];
    assert!(m.is_request());
    assert_eq!(target, &Target::Addr { transport: Transport::Udp, addr: "203.0.113.9:1024".parse().unwrap() });
    let StartLine::Request { uri, .. } = m.start else { unreachable!() };
    assert_eq!(m.text(uri), "sip:alice@10.0.0.5:5060");
}

#[test]
fn branch_flags_of_the_register_come_back_on_lookup() {
    let p = Proxy::new(Route, config(&[("append_branches", Value::Int(1))], &[]));
    let contact = "Contact: <sip:dave@10.0.0.1>;q=0.9\r\nX-Bflag: yes\r\n";
    assert_eq!(reply(&p, request("REGISTER", "dave", 1, contact)).0, "200 OK");
    // A second device, registered without the flag, becomes a branch with its own (none).
    let second = "Contact: <sip:dave@10.0.0.2>;q=0.5;received=\"sip:203.0.113.2:7000\"\r\n";
    assert_eq!(reply(&p, request("REGISTER", "dave", 2, second)).0, "200 OK");
    let (text, _) = reply(&p, request("INVITE", "dave", 1, ""));
    assert_eq!(
        text,
        format!(
            "299 rc=1 ru=sip:dave@10.0.0.1 du=None path=None bflags={} branches=[sip:dave@10.0.0.2 du=Some(\"sip:203.0.113.2:7000\") path=None flags=0]",
            1 << 3
        )
    );
}

#[test]
fn a_contacts_methods_parameter_wins_over_allow() {
    let p = Proxy::new(Route, config(&[("method_filtering", Value::Int(1))], &[]));
    let contact = "Contact: <sip:erin@10.0.0.1>;methods=\"INVITE,BYE\"\r\nAllow: INVITE, MESSAGE\r\n";
    assert_eq!(reply(&p, request("REGISTER", "erin", 1, contact)).0, "200 OK");
    assert!(reply(&p, request("BYE", "erin", 1, "")).0.starts_with("299 rc=1 "));
    assert!(reply(&p, request("MESSAGE", "erin", 1, "")).0.starts_with("299 rc=-2 "));
}

const PATH: &str = "Path: <sip:192.0.2.50:5062;lr;received=sip:198.51.100.7:5062>\r\nPath: <sip:p2.example.net;lr>\r\n";

#[test]
fn path_is_stored_echoed_to_a_client_supporting_it_and_followed_by_lookup() {
    let p = Proxy::new(Route, config(&[("use_path", Value::Int(1)), ("path_use_received", Value::Int(1))], &[]));
    let extra = format!("Contact: <sip:frank@10.0.0.9>\r\nSupported: path\r\n{PATH}");
    let (status, ok) = reply(&p, request("REGISTER", "frank", 1, &extra));
    assert_eq!(status, "200 OK");
    assert_eq!(
        values(&ok, "Path"),
        ["<sip:192.0.2.50:5062;lr;received=sip:198.51.100.7:5062>,<sip:p2.example.net;lr>"]
    );
    // The first Path URI's received is the contact's received, and marks it NATed (nat_bflag 6).
    assert_eq!(values(&ok, "Contact"), ["<sip:frank@10.0.0.9>;expires=3600;received=\"sip:198.51.100.7:5062\""]);

    let (text, _) = reply(&p, request("INVITE", "frank", 1, ""));
    assert!(
        text.starts_with(&format!(
            "299 rc=1 ru=sip:frank@10.0.0.9 du=Some(\"sip:192.0.2.50:5062;lr;received=sip:198.51.100.7:5062\") \
             path=Some(\"<sip:192.0.2.50:5062;lr;received=sip:198.51.100.7:5062>,<sip:p2.example.net;lr>\") bflags={}",
            1 << 6
        )),
        "{text}"
    );
    // Relayed along the Path: to its first hop, with the Path as the first header (a Route).
    let out = send(&p, request("INVITE", "frank", 2, "X-Forward: yes\r\n"));
    let (m, target) = &out[0];
    assert!(m.is_request());
    assert_eq!(target, &Target::Addr { transport: Transport::Udp, addr: "192.0.2.50:5062".parse().unwrap() });
    assert_eq!(m.headers[0].name, HeaderName::Route);
    assert_eq!(values(m, "Route"), ["<sip:192.0.2.50:5062;lr;received=sip:198.51.100.7:5062>,<sip:p2.example.net;lr>"]);
}

#[test]
fn path_modes_strict_refuses_a_client_without_path_support_and_stores_nothing() {
    let strict = Proxy::new(Route, config(&[("use_path", Value::Int(1))], &[]));
    let extra = format!("Contact: <sip:gina@10.0.0.9>\r\n{PATH}");
    let (status, refusal) = reply(&strict, request("REGISTER", "gina", 1, &extra));
    assert_eq!(status, "420 Bad Extension");
    assert_eq!(values(&refusal, "Unsupported"), ["path"]);
    assert!(reply(&strict, request("INVITE", "gina", 1, "")).0.starts_with("299 rc=-1 "));

    // Lazy (1): stored, but no Path in the reply to a client that does not support it.
    let lazy = Proxy::new(Route, config(&[("use_path", Value::Int(1)), ("path_mode", Value::Int(1))], &[]));
    let (status, ok) = reply(&lazy, request("REGISTER", "gina", 1, &extra));
    assert_eq!(status, "200 OK");
    assert!(values(&ok, "Path").is_empty());
    assert!(reply(&lazy, request("INVITE", "gina", 1, "")).0.contains("path=Some("));

    // Without use_path, Path headers are ignored.
    let off = Proxy::new(Route, config(&[], &[]));
    assert_eq!(reply(&off, request("REGISTER", "gina", 1, &extra)).0, "200 OK");
    assert!(reply(&off, request("INVITE", "gina", 1, "")).0.contains("du=None path=None"));

    // A first Path URI that is not a loose router: 400, as 1.3.
    let bad = "Contact: <sip:gina@10.0.0.9>\r\nSupported: path\r\nPath: <sip:192.0.2.50>\r\n";
    let (status, refusal) = reply(&strict, request("REGISTER", "gina", 2, bad));
    assert_eq!(status, "400 Bad Request");
    assert_eq!(values(&refusal, "P-Registrar-Error"), ["Path parse error"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_path_and_flags_survive_a_restart_and_flag_0x01_stays_in_memory() {
    let dir = db_support::TempDir::new("registrar-nat");
    let url = dir.sqlite_url("loc.sqlite");
    let db =
        serc_runtime::db::Db::open(&serc_runtime::db::DbUrl::parse(&url).unwrap(), serc_runtime::db::DEFAULT_TIMEOUT)
            .unwrap();
    serc_runtime::db::schema::init(&db).await.unwrap();
    let usrloc_params = [("db_mode", Value::Int(1)), ("db_url", Value::str(url.clone()))];
    let registrar_params =
        [("use_path", Value::Int(1)), ("path_use_received", Value::Int(1)), ("path_mode", Value::Int(1))];
    let start = || async {
        let config = config(&registrar_params, &usrloc_params);
        usrloc::start(&config).await.unwrap();
        Proxy::new(Route, config)
    };
    let p = start().await;
    let extra = format!("Contact: <sip:hank@10.0.0.9>\r\nX-Bflag: yes\r\n{PATH}");
    assert_eq!(reply(&p, request("REGISTER", "hank", 1, &extra)).0, "200 OK");
    assert_eq!(reply(&p, request("REGISTER", "ivy", 1, "Contact: <sip:ivy@10.0.0.3>\r\nX-Mem: yes\r\n")).0, "200 OK");
    let before = reply(&p, request("INVITE", "hank", 1, "")).0;
    assert!(before.contains("path=Some(") && before.contains(&format!("bflags={}", (1 << 3) | (1 << 6))), "{before}");
    assert!(reply(&p, request("INVITE", "ivy", 1, "")).0.starts_with("299 rc=1 "));

    let rows = db
        .query("SELECT received, path, flags, cflags FROM location WHERE username = ?", vec!["hank".into()])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text(0).as_deref(), Some("sip:198.51.100.7:5062"));
    assert_eq!(
        rows[0].text(1).as_deref(),
        Some("<sip:192.0.2.50:5062;lr;received=sip:198.51.100.7:5062>,<sip:p2.example.net;lr>")
    );
    assert_eq!(rows[0].int(2), Some(0));
    assert_eq!(rows[0].int(3), Some((1 << 3) | (1 << 6)));
    let mem = db.query("SELECT id FROM location WHERE username = ?", vec!["ivy".into()]).await.unwrap();
    assert!(mem.is_empty(), "save's flag 0x01 keeps the contact out of the database");
    drop(p);

    // A restart: hank is found as he was; ivy, kept in memory only, is gone (as in 1.3).
    let p = start().await;
    assert_eq!(reply(&p, request("INVITE", "hank", 1, "")).0, before);
    assert!(reply(&p, request("INVITE", "ivy", 1, "")).0.starts_with("299 rc=-1 "));
}

#[test]
fn aor_avp_names_the_aor_and_realm_prefix_leaves_the_domain() {
    let registrar = [("aor_avp", Value::str("$avp(s:aor)")), ("realm_prefix", Value::str("sip."))];
    let p = Proxy::new(Route, config(&registrar, &[("use_domain", Value::Int(1))]));
    // The To says jack@example.com; the AVP says the AOR is kim@sip.example.org.
    let extra = "Contact: <sip:kim@10.0.0.4>\r\nX-Aor: sip:kim@sip.example.org\r\n";
    assert_eq!(reply(&p, request("REGISTER", "jack", 1, extra)).0, "200 OK");
    let invite = |user: &str, host: &str| {
        let text = String::from_utf8(request("INVITE", user, 1, "").to_vec()).unwrap();
        Bytes::from(text.replacen(&format!("sip:{user}@example.com SIP"), &format!("sip:{user}@{host} SIP"), 1))
    };
    assert!(reply(&p, invite("kim", "example.org")).0.starts_with("299 rc=1 ru=sip:kim@10.0.0.4 "));
    assert!(
        reply(&p, invite("kim", "sip.example.org")).0.starts_with("299 rc=1 "),
        "the prefix is not part of the AOR"
    );
    assert!(reply(&p, invite("jack", "example.com")).0.starts_with("299 rc=-1 "));
}
