//! The script semantics of the generated code, run in-process: configs
//! compiled by `include_cfg!` (tests/semantics/*.cfg), requests handed to the
//! proxy pipeline (`Proxy::route`, no sockets), and the replies the routes
//! send read back. Each scenario is an OpenSER 1.3 rule (action.c, route.c):
//! `exit`, `drop`, `return(0)`, return codes in statements and conditions,
//! `$retcode`, `&&`/`||` precedence and short circuits, `switch`
//! fall-through, `max_while_loops`, the `route()` depth limit, and the
//! dialects where Kamailio differs.

use std::net::SocketAddr;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::proxy::{Local, Source, Transport};
use serc_runtime::script::{Config, Ctx};
use serc_runtime::sip::{Framing, Message, StartLine};

/// A function the configs call: returns its argument.
pub fn ret_code(_ctx: &mut Ctx, n: i64) -> i32 {
    n as i32
}

const PROXY: &str = "127.0.0.1:5060";
const CLIENT: &str = "127.0.0.1:40000";

fn proxy<S: Script>(script: S) -> Proxy<S> {
    let local: SocketAddr = PROXY.parse().unwrap();
    let config = Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() };
    Proxy::new(script, config)
}

fn openser() -> Proxy<impl Script> {
    proxy(serc_macros::include_cfg!("tests/semantics/openser.cfg", functions = [crate::ret_code(Int)]).script)
}

fn kamailio() -> Proxy<impl Script> {
    proxy(serc_macros::include_cfg!("tests/semantics/kamailio.cfg", functions = [crate::ret_code(Int)]).script)
}

fn source() -> Source {
    Source { transport: Transport::Udp, addr: CLIENT.parse().unwrap(), local: PROXY.parse().unwrap() }
}

fn request(user: &str) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:{user}@{PROXY} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-{user}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@{PROXY}>\r\n\
         From: <sip:test@{CLIENT}>;tag=1\r\n\
         Call-ID: {user}@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// The replies the route sent for a request to `user`, as `"CODE reason"`.
fn replies<S: Script>(proxy: &Proxy<S>, user: &str) -> Vec<String> {
    proxy
        .route(request(user), source(), Framing::Datagram)
        .into_iter()
        .map(|send| {
            let msg = Message::parse(send.bytes.clone(), Framing::Datagram).expect("a reply serc wrote parses");
            match msg.start {
                StartLine::Response { code, reason, .. } => format!("{code} {}", msg.text(reason)),
                StartLine::Request { .. } => panic!("a request was sent for {user}"),
            }
        })
        .collect()
}

#[test]
fn exit_and_drop_end_the_script() {
    let p = openser();
    assert_eq!(replies(&p, "exit"), ["200 before"]);
    assert_eq!(replies(&p, "drop"), ["200 before"]);
}

#[test]
fn return_zero_ends_the_script() {
    assert_eq!(replies(&openser(), "return0"), Vec::<String>::new());
}

#[test]
fn a_route_return_code_is_retcode() {
    assert_eq!(replies(&openser(), "retcode"), ["200 rc=-2"]);
}

#[test]
fn a_function_returning_zero_ends_the_script() {
    let p = openser();
    assert_eq!(replies(&p, "zero-in-condition"), Vec::<String>::new());
    assert_eq!(replies(&p, "zero-as-statement"), Vec::<String>::new());
    assert_eq!(replies(&p, "negative-statement"), ["200 went on rc=-4"]);
}

#[test]
fn and_or_have_one_precedence_in_openser_and_c_precedence_in_kamailio() {
    assert_eq!(replies(&openser(), "precedence"), ["200 false"]);
    assert_eq!(replies(&kamailio(), "precedence"), ["200 true"]);
}

#[test]
fn conditions_short_circuit() {
    // `ret_code("0")` would end the script if it ran.
    assert_eq!(replies(&openser(), "short-circuit"), ["200 not evaluated"]);
}

#[test]
fn retcode_after_if_and_not() {
    let p = openser();
    // An `if` without `else` whose condition is false leaves the condition's value (0).
    assert_eq!(replies(&p, "if-retcode"), ["200 rc=0"]);
    // Inside the branch, `$retcode` is the function's code.
    assert_eq!(replies(&p, "not-retcode"), ["200 rc=-2"]);
}

#[test]
fn while_stops_at_max_while_loops() {
    assert_eq!(replies(&openser(), "while"), ["200 i=5"]);
}

#[test]
fn route_recursion_stops_at_100_levels() {
    // The main route is level 1; route[4] runs at levels 2..=100, the call at 101 returns -1.
    assert_eq!(replies(&openser(), "recursion"), ["200 d=99 rc=-1"]);
}

#[test]
fn switch_falls_through_until_break() {
    let p = openser();
    assert_eq!(replies(&p, "fallthrough"), ["200 two", "200 three"]);
    assert_eq!(replies(&p, "default-only"), ["200 default"]);
    // Kamailio falls into `default` and past it.
    assert_eq!(replies(&kamailio(), "fallthrough-default"), ["200 default", "200 five"]);
}

#[test]
fn pseudo_variable_comparisons() {
    assert_eq!(replies(&openser(), "pvar-compare"), ["200 match"]);
}

#[test]
fn from_and_to_operands() {
    assert_eq!(replies(&openser(), "from-uri"), ["200 from ok"]);
}

#[test]
fn the_main_route_ends_at_its_last_statement() {
    assert_eq!(replies(&openser(), "nobody"), ["404 no scenario nobody"]);
}

/// A reply through the bare `onreply_route`: `drop` drops a provisional reply,
/// a final one goes back along its Via stack.
#[test]
fn drop_in_a_reply_route_drops_provisional_replies() {
    let p = openser();
    let reply = |code: u16| {
        Bytes::from(format!(
            "SIP/2.0 {code} Whatever\r\n\
             Via: SIP/2.0/UDP {PROXY};branch=z9hG4bK-ours\r\n\
             Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-theirs\r\n\
             To: <sip:bob@{PROXY}>;tag=2\r\n\
             From: <sip:test@{CLIENT}>;tag=1\r\n\
             Call-ID: reply@test\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    };
    let from_uas =
        Source { transport: Transport::Udp, addr: "127.0.0.1:40001".parse().unwrap(), local: PROXY.parse().unwrap() };
    assert!(p.route(reply(180), from_uas, Framing::Datagram).is_empty());
    let sent = p.route(reply(200), from_uas, Framing::Datagram);
    assert_eq!(sent.len(), 1, "the 200 is relayed");
    assert!(std::str::from_utf8(&sent[0].bytes)
        .unwrap()
        .starts_with("SIP/2.0 200 Whatever\r\nVia: SIP/2.0/UDP 127.0.0.1:40000"));
}

/// An OPTIONS with one extra header line.
fn request_with(extra: &str) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:bob@{PROXY} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-interest\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:bob@{PROXY}>\r\n\
         From: <sip:test@{CLIENT}>;tag=1\r\n\
         Call-ID: interest@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         {extra}\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

fn answer<S: Script>(proxy: &Proxy<S>, extra: &str) -> String {
    let sent = proxy.route(request_with(extra), source(), Framing::Datagram);
    assert_eq!(sent.len(), 1, "one reply to the request with {extra:?}");
    let msg = Message::parse(sent[0].bytes.clone(), Framing::Datagram).expect("a reply serc wrote parses");
    match msg.start {
        StartLine::Response { code, reason, .. } => format!("{code} {}", msg.text(reason)),
        StartLine::Request { .. } => panic!("a request was sent"),
    }
}

const BAD_CONTACT: &str = "Contact: <sip:alice@example.com>;expires=soon";
const BAD_EXPIRES: &str = "Expires: soon";
const BAD_DATE: &str = "Date: yesterday";

/// The generated script tells the runtime which optional headers its
/// functions read; the parser validates those on receipt and leaves the
/// others to whoever reads them (issue 5: "parses only those").
#[test]
fn only_the_headers_the_script_reads_are_validated_on_receipt() {
    use serc_runtime::sip::Interest;

    let relay = proxy(serc_macros::include_cfg!("tests/semantics/interest_relay.cfg").script);
    assert_eq!(relay.script.interest(), Interest::NONE);
    for bad in [BAD_CONTACT, BAD_EXPIRES, BAD_DATE] {
        assert_eq!(answer(&relay, bad), "200 script ran", "{bad}");
    }

    let registrar = proxy(serc_macros::include_cfg!("tests/semantics/interest_registrar.cfg").script);
    // `save` runs on requests only: a response's Contact and Expires are
    // relayed unvalidated (see `an_interest_in_requests_only_validates_no_response`).
    assert_eq!(registrar.script.interest(), Interest::CONTACT.union(Interest::EXPIRES).requests_only());
    assert_eq!(answer(&registrar, BAD_CONTACT), "400 Bad Request");
    assert_eq!(answer(&registrar, BAD_EXPIRES), "400 Bad Request");
    assert_eq!(answer(&registrar, BAD_DATE), "200 script ran");
    assert_eq!(answer(&registrar, "Date: Sat, 13 Nov 2010 23:29:00 GMT"), "200 script ran");

    // A script given Rust functions may read anything: every header is validated.
    let with_functions = openser();
    assert_eq!(with_functions.script.interest(), Interest::ALL);
    assert_eq!(answer(&with_functions, BAD_DATE), "400 Bad Request");
}
