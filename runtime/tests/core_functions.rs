//! The core functions of the cfg language on a real message: what the next hop
//! sees after them (the message written and parsed again).

use bytes::Bytes;
use serc_runtime::modules::core;
use serc_runtime::proxy::{Local, Source, Target, Transport};
use serc_runtime::script::args::{Format, HostPort, PvRef, SocketSpec};
use serc_runtime::script::{AvpName, Config, Ctx, RouteKind, Value, Vars};
use serc_runtime::sip::{Framing, HeaderName, Message};

const INVITE: &str = "INVITE sip:+15551234@proxy.example.com:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKabc;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+15551234@proxy.example.com>\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
Call-ID: core-functions@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

fn setup() -> (Message, Config, Source) {
    let msg = Message::parse(Bytes::from_static(INVITE.as_bytes()), Framing::Datagram).unwrap();
    let local: std::net::SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let config = Config {
        locals: vec![Local::new(Transport::Udp, local), Local::new(Transport::Udp, "127.0.0.2:5060".parse().unwrap())],
        ..Config::default()
    };
    let src = Source { transport: Transport::Udp, addr: "192.0.2.10:5062".parse().unwrap(), local };
    (msg, config, src)
}

#[test]
fn uri_rewriting_functions() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(core::strip(&mut ctx, 2), 1);
    assert_eq!(ctx.request_uri(), "sip:5551234@proxy.example.com:5060;user=phone");
    assert_eq!(core::prefix(&mut ctx, "00"), 1);
    assert_eq!(core::strip_tail(&mut ctx, 4), 1);
    assert_eq!(ctx.request_uri(), "sip:00555@proxy.example.com:5060;user=phone");
    assert_eq!(core::strip(&mut ctx, 99), -1, "more than the user part");
    assert_eq!(core::rewritehost(&mut ctx, "gw.example.net"), 1);
    assert_eq!(core::rewriteport(&mut ctx, 5080), 1);
    assert_eq!(ctx.request_uri(), "sip:00555@gw.example.net:5080;user=phone");
    assert_eq!(core::rewritehostport(&mut ctx, &HostPort { host: "10.0.0.1".into(), port: None }), 1);
    assert_eq!(ctx.request_uri(), "sip:00555@10.0.0.1;user=phone");
    assert_eq!(core::rewriteuser(&mut ctx, "bob"), 1);
    assert_eq!(core::rewriteuri(&mut ctx, &Format::literal("sip:carol@example.org")), 1);
    assert_eq!(core::rewriteuri(&mut ctx, &Format::literal("not a uri")), -1);
    assert_eq!(ctx.request_uri(), "sip:carol@example.org");
    // What the next hop sees.
    let out = msg.write(&ctx.request_edits()).unwrap().freeze();
    let again = Message::parse(out, Framing::Datagram).unwrap();
    assert_eq!(again.request_uri(), Some("sip:carol@example.org"));
    assert_eq!(core::revert_uri(&mut ctx), 1);
    assert_eq!(ctx.request_uri(), "sip:+15551234@proxy.example.com:5060;user=phone");
}

#[test]
fn flags_branches_and_destination() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(core::isflagset(&mut ctx, 3), -1);
    core::setflag(&mut ctx, 3);
    assert_eq!(core::isflagset(&mut ctx, 3), 1);
    core::resetflag(&mut ctx, 3);
    assert_eq!(core::isflagset(&mut ctx, 3), -1);
    core::setsflag(&mut ctx, 31);
    assert_eq!(core::issflagset(&mut ctx, 31), 1);
    assert_eq!(core::append_branch_2(&mut ctx, &Format::literal("sip:b@example.net"), "0.5"), 1);
    assert_eq!(core::append_branch_2(&mut ctx, &Format::literal("sip:c@example.net"), "1.5"), -1);
    assert_eq!(ctx.branches[0].q, Some(500));
    assert_eq!(core::setbflag_2(&mut ctx, 1, 4), 1);
    assert_eq!(core::isbflagset_2(&mut ctx, 1, 4), 1);
    assert_eq!(core::isbflagset_2(&mut ctx, 2, 4), -1, "no such branch");
    assert_eq!(core::isdsturiset(&mut ctx), -1);
    assert_eq!(core::setdsturi(&mut ctx, &Format::literal("sip:127.0.0.1:5070")), 1);
    assert_eq!(core::isdsturiset(&mut ctx), 1);
    core::resetdsturi(&mut ctx);
    assert_eq!(ctx.dst_uri, None);
    let target = PvRef::parse("$avp(s:who)").unwrap();
    assert_eq!(core::pv_printf(&mut ctx, &target, &Format::parse("$fU from $si").unwrap()), 1);
    assert_eq!(target.get(&ctx), Value::str("alice from 192.0.2.10"));
}

#[test]
fn forward_to_a_socket_adds_our_via_and_marks_the_received_one() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(core::force_send_socket(&mut ctx, &SocketSpec::parse("udp:127.0.0.2:5060").unwrap()), 1);
    assert_eq!(core::force_send_socket(&mut ctx, &SocketSpec::parse("udp:10.9.9.9:5060").unwrap()), -1);
    assert_eq!(core::forward_1(&mut ctx, &SocketSpec::parse("udp:192.0.2.20:5070").unwrap()), 1);
    let send = ctx.out.pop().unwrap();
    assert_eq!(send.target, Target::Addr { transport: Transport::Udp, addr: "192.0.2.20:5070".parse().unwrap() });
    assert_eq!(send.from, Some("127.0.0.2:5060".parse().unwrap()), "from the forced socket");
    let fwd = Message::parse(send.bytes, Framing::Datagram).unwrap();
    let vias: Vec<&str> = fwd.values(HeaderName::Via).map(|v| fwd.text(v)).collect();
    assert!(vias[0].starts_with("SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK"), "{}", vias[0]);
    // RFC 3581 §4: with rport, `received` is added even when it equals the sent-by.
    assert_eq!(vias[1], "SIP/2.0/UDP 192.0.2.10:5062;received=192.0.2.10;branch=z9hG4bKabc;rport=5062");
    // A retransmission gets the same branch (RFC 3261 §16.11).
    let mut vars2 = Vars::default();
    let mut again = Ctx::new(&msg, src, &config, &mut vars2);
    core::forward_1(&mut again, &SocketSpec::parse("udp:192.0.2.20:5070").unwrap());
    let second = Message::parse(again.out.pop().unwrap().bytes, Framing::Datagram).unwrap();
    assert_eq!(second.text(second.via.branch.unwrap()), fwd.text(fwd.via.branch.unwrap()));
}

/// The error route runs after an action that recorded an error, as OpenSER
/// 1.3 runs it; `exit` there ends the script, anything else clears the error.
#[test]
fn the_error_route_runs_after_an_action_that_met_an_error() {
    use serc_runtime::app::{after_action, Script};
    use serc_runtime::modules::sl;
    use serc_runtime::script::args::ReplyCode;
    use serc_runtime::script::{Flow, RouteKind, ERR_CLASS_PARSER};

    struct WithErrorRoute {
        exits: bool,
    }
    impl Script for WithErrorRoute {
        fn request(&self, _ctx: &mut Ctx) -> Flow {
            Flow::Return(1)
        }
        fn error(&self, ctx: &mut Ctx) -> Option<Flow> {
            assert_eq!(ctx.route, RouteKind::Error);
            // error_route { sl_send_reply("$err.rcode", "$err.rreason"); exit; }
            let code = ReplyCode::Dynamic(Format::parse("$err.rcode").unwrap());
            sl::sl_send_reply(ctx, &code, &Format::parse("$err.rreason").unwrap());
            Some(if self.exits { Flow::Exit } else { Flow::Return(1) })
        }
    }
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(after_action(&WithErrorRoute { exits: true }, &mut ctx), None, "no error: nothing runs");
    ctx.set_error(ERR_CLASS_PARSER, 1, "bad Contact", 400, "Bad Contact");
    assert_eq!(after_action(&WithErrorRoute { exits: true }, &mut ctx), Some(Flow::Exit));
    let reply = Message::parse(ctx.out.pop().unwrap().bytes, Framing::Datagram).unwrap();
    assert_eq!(reply.status(), Some(400));
    assert_eq!(ctx.route, RouteKind::Request, "back in the request route");
    assert_eq!(after_action(&WithErrorRoute { exits: false }, &mut ctx), None);
    assert_eq!(ctx.err.class, 0, "the error is cleared when the error route does not exit");
}

#[test]
fn an_advertised_address_goes_into_our_via() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(core::set_advertised_address(&mut ctx, &HostPort { host: "203.0.113.7".into(), port: None }), 1);
    assert_eq!(core::set_advertised_port(&mut ctx, 5099), 1);
    assert_eq!(core::set_advertised_port(&mut ctx, 70000), -1);
    core::forward_1(&mut ctx, &SocketSpec::parse("udp:192.0.2.20:5070").unwrap());
    let fwd = Message::parse(ctx.out.pop().unwrap().bytes, Framing::Datagram).unwrap();
    assert!(fwd.text(fwd.via.value).starts_with("SIP/2.0/UDP 203.0.113.7:5099;branch="), "{}", fwd.text(fwd.via.value));
}

#[test]
fn pseudo_variables_read_the_message() {
    let text = INVITE.replace(
        "Content-Length: 0\r\n",
        "Refer-To: <sip:carol@example.org?Replaces=x>\r\nP-Asserted-Identity: \"A\" <sip:+1555@example.com>\r\n\
         P-Preferred-Identity: <sip:pref@example.com>\r\nUser-Agent: test-ua/1.0\r\nContent-Length: 0\r\n",
    );
    let msg = Message::parse(Bytes::from(text), Framing::Datagram).unwrap();
    let (_, config, src) = setup();
    let mut vars = Vars::default();
    let ctx = Ctx::new(&msg, src, &config, &mut vars);
    let get = |name: &str| PvRef::parse(name).unwrap_or_else(|| panic!("{name}")).get(&ctx);
    assert_eq!(get("$rt"), Value::str("sip:carol@example.org?Replaces=x"));
    assert_eq!(get("$ai"), Value::str("sip:+1555@example.com"));
    assert_eq!(get("$pU"), Value::str("pref"));
    assert_eq!(get("$ua"), Value::str("test-ua/1.0"));
    assert_eq!(get("$rU"), Value::str("+15551234"));
    assert_eq!(get("$rd"), Value::str("proxy.example.com"));
    assert_eq!(get("$rp"), Value::Int(5060));
    assert_eq!(get("$rP"), Value::str("UDP"));
    assert_eq!(get("$fU"), Value::str("alice"));
    assert_eq!(get("$ft"), Value::str("1"));
    assert_eq!(get("$tt"), Value::Null);
    assert_eq!(get("$rm"), Value::str("INVITE"));
    assert_eq!(get("$cs"), Value::Int(1));
    assert_eq!(get("$si"), Value::str("192.0.2.10"));
    assert_eq!(get("$(ru{uri.param,user})"), Value::str("phone"));
    assert_eq!(get("$(hdr(Via){param.value,branch})"), Value::str("z9hG4bKabc"));
    assert_eq!(get("$(ci{s.select,0,@})"), Value::str("core-functions"));
    assert_eq!(get("$(ci{s.len})"), Value::Int("core-functions@192.0.2.10".len() as i64));
}

/// The serial AVP's values, the one `next_branches` takes first first.
fn serial(ctx: &Ctx) -> Vec<String> {
    ctx.avps.all(&AvpName::Int(core::SERIAL_AVP)).map(|v| v.as_text().into_owned()).collect()
}

fn uris<'a>(ctx: &'a Ctx) -> Vec<&'a str> {
    ctx.branches.iter().map(|b| b.uri.as_str()).collect()
}

fn add(ctx: &mut Ctx, uri: &str, q: &str) {
    assert_eq!(core::append_branch_2(ctx, &Format::literal(uri), q), 1);
}

const RURI: &str = "sip:+15551234@proxy.example.com:5060;user=phone";

/// OpenSER 1.3's `serialize_branches`/`next_branches` (serialize.c): the
/// Request-URI and the branches go into AVP 0xff3434 by q classes, highest
/// first; `next_branches` takes one class per call.
#[test]
fn serial_forking_takes_one_q_class_at_a_time() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    // Nothing to do without branches: still true, nothing stored.
    assert_eq!(core::serialize_branches(&mut ctx, 1), 1);
    assert!(serial(&ctx).is_empty());
    // 1.3's own list insertion lost b1 of this set; the order is by q.
    add(&mut ctx, "sip:b1@example.net", "0.5");
    add(&mut ctx, "sip:b2@example.net", "0.5");
    add(&mut ctx, "sip:b3@example.net", "0.7");
    add(&mut ctx, "sip:b4@example.net", "");
    add(&mut ctx, "sip:b5@example.net", "1");
    ctx.branch_flags = 0b100;
    ctx.dst_uri = Some("sip:192.0.2.99".into());
    assert_eq!(core::serialize_branches(&mut ctx, 0), 1);
    assert_eq!(
        serial(&ctx),
        [
            "sip:b5@example.net",
            "sip:b3@example.net",
            "sip:b1@example.net",
            "sip:b2@example.net",
            RURI,
            "sip:b4@example.net"
        ]
    );
    // The branch set is cleared with the branch-0 flags; `$du` stays.
    assert!(ctx.branches.is_empty());
    assert_eq!((ctx.branch_flags, ctx.ruri_q), (0, None));
    assert_eq!(ctx.dst_uri.as_deref(), Some("sip:192.0.2.99"));

    // Request route: the top class (one URI) becomes the Request-URI.
    assert_eq!(core::next_branches(&mut ctx), 1);
    assert_eq!(ctx.request_uri(), "sip:b5@example.net");
    assert!(ctx.branches.is_empty());
    // Failure route: every URI of the next class is appended, with q=0 and
    // the current `$du`, branch flags and forced socket.
    ctx.route = RouteKind::Failure;
    ctx.branch_flags = 0b10;
    assert_eq!(core::next_branches(&mut ctx), 1);
    assert_eq!(uris(&ctx), ["sip:b3@example.net"]);
    let b = &ctx.branches[0];
    assert_eq!((b.q, b.flags, b.dst_uri.as_deref()), (Some(0), 0b10, Some("sip:192.0.2.99")));
    ctx.branches.clear();
    assert_eq!(core::next_branches(&mut ctx), 1);
    assert_eq!(uris(&ctx), ["sip:b1@example.net", "sip:b2@example.net"]);
    ctx.branches.clear();
    // The Request-URI and b4 (unspecified q, below 0.5) are the last class.
    assert_eq!(core::next_branches(&mut ctx), 1);
    assert_eq!(uris(&ctx), [RURI, "sip:b4@example.net"]);
    assert!(serial(&ctx).is_empty());
    assert_eq!(core::next_branches(&mut ctx), -1, "nothing left");
    assert_eq!(ctx.request_uri(), "sip:b5@example.net");
}

#[test]
fn serialize_branches_edge_cases() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    // Every branch has the Request-URI's q (both unspecified): nothing
    // happens, even with clear set.
    ctx.avps.push(AvpName::Int(core::SERIAL_AVP), Value::str("sip:old@example.org"));
    add(&mut ctx, "sip:a@example.net", "");
    assert_eq!(core::serialize_branches(&mut ctx, 1), 1);
    assert_eq!(uris(&ctx), ["sip:a@example.net"]);
    assert_eq!(serial(&ctx), ["sip:old@example.org"]);
    // The Request-URI's own q (a registrar's lookup sets it) ranks it; among
    // equal q the Request-URI comes first, then the branches in order.
    ctx.ruri_q = Some(800);
    add(&mut ctx, "sip:b@example.net", "0.8");
    // clear = 0: the new entries go on top of what was there.
    assert_eq!(core::serialize_branches(&mut ctx, 0), 1);
    assert_eq!(serial(&ctx), [RURI, "sip:b@example.net", "sip:a@example.net", "sip:old@example.org"]);
    // Request route: the Request-URI is the first of the class, the rest
    // are branches; the class ends at the q drop.
    assert_eq!(core::rewriteuser(&mut ctx, "changed"), 1);
    assert_eq!(core::next_branches(&mut ctx), 1);
    assert_eq!(ctx.request_uri(), RURI);
    assert_eq!(uris(&ctx), ["sip:b@example.net"]);
    // An entry the script pushed itself has no end-of-class mark, so it is
    // taken with the class below it (as in 1.3, where it lacks the flag).
    ctx.avps.push(AvpName::Int(core::SERIAL_AVP), Value::str("sip:pushed@example.org"));
    ctx.branches.clear();
    ctx.route = RouteKind::Failure;
    assert_eq!(core::next_branches(&mut ctx), 1);
    assert_eq!(uris(&ctx), ["sip:pushed@example.org", "sip:a@example.net"]);
    // clear = 1 drops the old entries first.
    ctx.branches.clear();
    add(&mut ctx, "sip:c@example.net", "0.1");
    ctx.ruri_q = None;
    assert_eq!(core::serialize_branches(&mut ctx, 1), 1);
    assert_eq!(serial(&ctx), ["sip:c@example.net", RURI]);
    // Only request and failure routes.
    ctx.route = RouteKind::Branch;
    assert_eq!(core::next_branches(&mut ctx), -1);
    ctx.route = RouteKind::OnReply;
    assert_eq!(core::next_branches(&mut ctx), -1);
    assert_eq!(serial(&ctx).len(), 2, "untouched");
    // A full branch set: -1, and the entry that did not fit is gone.
    ctx.route = RouteKind::Failure;
    for i in 0..core::MAX_BRANCHES - 1 {
        add(&mut ctx, &format!("sip:f{i}@example.net"), "");
    }
    assert_eq!(core::next_branches(&mut ctx), -1);
    assert_eq!(serial(&ctx), [RURI]);
}

/// 1.3's `append_branch`: a branch carries the `$du`, branch-0 flags and
/// forced socket of the moment; the form without argument clears them; at
/// most 11 branches besides the Request-URI.
#[test]
fn append_branch_carries_and_clears_the_branch_0_state() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(core::force_send_socket(&mut ctx, &SocketSpec::parse("udp:127.0.0.2:5060").unwrap()), 1);
    ctx.dst_uri = Some("sip:192.0.2.50".into());
    ctx.branch_flags = 0b1;
    assert_eq!(core::append_branch_1(&mut ctx, &Format::literal("sip:x@example.net")), 1);
    assert_eq!(core::append_branch_1(&mut ctx, &Format::literal("")), 1, "empty: the Request-URI");
    assert_eq!(core::append_branch_0(&mut ctx), 1);
    for b in &ctx.branches {
        assert_eq!((b.dst_uri.as_deref(), b.flags, b.q), (Some("sip:192.0.2.50"), 0b1, None));
        assert_eq!(b.send_socket, Some("127.0.0.2:5060".parse().unwrap()));
    }
    assert_eq!(uris(&ctx), ["sip:x@example.net", RURI, RURI]);
    assert_eq!((ctx.dst_uri.clone(), ctx.branch_flags, ctx.send_socket), (None, 0, None));
    while ctx.branches.len() < core::MAX_BRANCHES - 1 {
        assert_eq!(core::append_branch_0(&mut ctx), 1);
    }
    ctx.dst_uri = Some("sip:192.0.2.50".into());
    assert_eq!(core::append_branch_0(&mut ctx), -1, "full");
    assert_eq!(ctx.dst_uri, None, "cleared even so");
    assert_eq!(core::append_branch_1(&mut ctx, &Format::literal("sip:y@example.net")), -1);
    assert_eq!(ctx.branches.len(), 11);
}

/// A Request-URI that is no URI (a script's `$ru`, a contact `lookup` set) is
/// not sent, even with `$du` naming the next hop: the request would not parse
/// (found by `cargo xtask fuzz route_sip`).
#[test]
fn forward_refuses_a_request_uri_that_would_not_parse() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    ctx.dst_uri = Some("sip:192.0.2.50".into());
    ctx.ruri = Some("sip:bob@192.0.2.1:50.0".into());
    assert_eq!(core::forward_0(&mut ctx), -1);
    assert_eq!(core::forward_1(&mut ctx, &SocketSpec::parse("udp:192.0.2.20:5070").unwrap()), -1);
    // A SIP URI with headers names a next hop, but is no Request-URI (RFC 4475 §3.1.2.11).
    ctx.dst_uri = None;
    ctx.ruri = Some("sip:bob@192.0.2.1?Subject=hi".into());
    assert_eq!(core::forward_0(&mut ctx), -1);
    assert!(ctx.out.is_empty());
    // The same request with a URI that parses goes.
    ctx.ruri = Some("sip:bob@192.0.2.1:5080".into());
    assert_eq!(core::forward_0(&mut ctx), 1);
    let fwd = Message::parse(ctx.out.pop().unwrap().bytes, Framing::Datagram).unwrap();
    assert_eq!(fwd.request_uri(), Some("sip:bob@192.0.2.1:5080"));
}

#[test]
fn force_local_rport_asks_for_rport_in_our_via() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    assert_eq!(core::add_local_rport(&mut ctx), 1);
    assert_eq!(core::forward_1(&mut ctx, &SocketSpec::parse("udp:192.0.2.20:5070").unwrap()), 1);
    let fwd = Message::parse(ctx.out.pop().unwrap().bytes, Framing::Datagram).unwrap();
    let ours = fwd.text(fwd.via.value);
    assert!(ours.starts_with("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK") && ours.ends_with(";rport"), "{ours}");
    // Without it, no rport in our Via.
    let mut vars2 = Vars::default();
    let mut plain = Ctx::new(&msg, src, &config, &mut vars2);
    core::forward_1(&mut plain, &SocketSpec::parse("udp:192.0.2.20:5070").unwrap());
    let fwd = Message::parse(plain.out.pop().unwrap().bytes, Framing::Datagram).unwrap();
    assert!(!fwd.text(fwd.via.value).contains("rport"));
}

/// Keeps the level and text of every event.
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<(tracing::Level, String)>>>);

struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Capture {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push((*event.metadata().level(), text.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn captured(f: impl FnOnce()) -> Vec<(tracing::Level, String)> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Capture(lines.clone()), f);
    let out = lines.lock().unwrap().clone();
    out
}

/// `setdebug(n)` sets this worker's level (kept across messages) until
/// `setdebug()`; a line is printed when its level number is at most n.
#[test]
fn setdebug_sets_the_workers_level_until_reset() {
    use serc_runtime::script::args::Level;
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    let lines = captured(|| {
        assert_eq!(core::setdebug_1(&mut ctx, 1), 1);
        assert_eq!(core::proc_debug_level(), Some(1));
        core::log_2(&mut ctx, Level::Info, "info hidden");
        core::log_2(&mut ctx, Level::Warn, "warn shown");
        core::log_1(&mut ctx, "debug hidden");
        assert_eq!(core::setdebug_1(&mut ctx, -3), 1);
        core::log_2(&mut ctx, Level::Err, "err hidden");
        core::log_2(&mut ctx, Level::Alert, "alert shown");
        assert_eq!(core::setdebug_0(&mut ctx), 1);
        assert_eq!(core::proc_debug_level(), None);
        core::log_1(&mut ctx, "debug shown");
        // setdebug() with nothing to reset is harmless (1.3 crashed).
        assert_eq!(core::setdebug_0(&mut ctx), 1);
    });
    let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["warn shown", "alert shown", "debug shown"]);
}

/// `error("class", "reason")` only warns, as in 1.3.
#[test]
fn error_only_warns() {
    let (msg, config, src) = setup();
    let mut vars = Vars::default();
    let mut ctx = Ctx::new(&msg, src, &config, &mut vars);
    let mut code = 0;
    let lines = captured(|| code = core::error(&mut ctx, "class", "reason"));
    assert_eq!(code, 1);
    assert_eq!(lines, [(tracing::Level::WARN, "error(\"class\", \"reason\") not implemented yet".to_string())]);
    assert!(ctx.out.is_empty() && ctx.ruri.is_none());
}
