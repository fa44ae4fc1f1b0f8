//! The core functions of the cfg language on a real message: what the next hop
//! sees after them (the message written and parsed again).

use bytes::Bytes;
use serc_runtime::modules::core;
use serc_runtime::proxy::{Local, Source, Target, Transport};
use serc_runtime::script::args::{Format, HostPort, PvRef, SocketSpec};
use serc_runtime::script::{Config, Ctx, Value, Vars};
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
