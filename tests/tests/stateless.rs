//! `cfg/stateless.cfg` built by `serc build`, run, and driven by the Rust UA
//! and UAS over real sockets: what a stateless OpenSER 1.3 proxy puts on the
//! wire (Via, Max-Forwards, Record-Route, loose routing, stateless replies) and
//! the script's control flow (drop, exit in a sub-route, return).

use serc_e2e::{build_proxy, cfg, Dialog, InviteAnswer, Proxy, Sip, Transport, Ua, Uas, QUIET, SDP_ANSWER};

/// The stateless proxy, started with two workers and its debug log kept.
fn stateless_proxy() -> Proxy {
    Proxy::start(&build_proxy(&cfg("stateless.cfg")), &["--workers", "2", "--log-level", "debug"])
}

fn next_hop(proxy: &Proxy, transport: Transport) -> std::net::SocketAddr {
    match transport {
        Transport::Udp => proxy.udp(),
        Transport::Tcp => proxy.tcp(),
    }
}

fn statuses(responses: &[Sip]) -> Vec<u16> {
    responses.iter().filter_map(Sip::status).collect()
}

/// A request the proxy relayed to the UAS: its own Via on top (UDP, its UDP
/// socket, a branch of its own), the sender's Via below it.
fn assert_relayed(proxy: &Proxy, at_uas: &Sip, sent_branch: &str) {
    let vias = at_uas.headers("Via");
    assert_eq!(vias.len(), 2, "the proxy's Via above the UAC's:\n{at_uas}");
    let ours = format!("SIP/2.0/UDP {};branch=z9hG4bK", proxy.udp());
    assert!(vias[0].starts_with(&ours), "the proxy's Via on top ({ours}…):\n{at_uas}");
    assert_ne!(at_uas.branch(), Some(sent_branch), "the proxy's own branch:\n{at_uas}");
    assert!(vias[1].contains(&format!("branch={sent_branch}")), "the UAC's Via second:\n{at_uas}");
}

/// INVITE → 180, 200 → ACK → BYE → 200 between the UA (over `transport`) and
/// the UAS, through the proxy.
fn call_through_the_proxy(transport: Transport) {
    let proxy = stateless_proxy();
    let uas = Uas::start();
    let mut uac = Ua::new(transport, next_hop(&proxy, transport));

    let invite = uac.invite(&uas.uri("bob"));
    uac.send(&invite);
    let at_uas = uas.expect_request("INVITE");
    assert_relayed(&proxy, &at_uas, invite.branch().unwrap());
    assert_eq!(at_uas.request_uri(), Some(invite.uri.as_str()), "the Request-URI unchanged");
    assert_eq!(at_uas.max_forwards(), Some(69), "Max-Forwards decremented:\n{at_uas}");
    assert_eq!(at_uas.body(), invite.body.as_bytes(), "the SDP unchanged");
    let record_route = at_uas.headers("Record-Route");
    assert!(!record_route.is_empty(), "record_route() on the INVITE:\n{at_uas}");
    assert!(record_route.iter().all(|rr| rr.contains(";lr")), "loose-routing Record-Route:\n{at_uas}");
    assert!(
        record_route[0].contains(&proxy.udp().to_string()),
        "the top Record-Route names the socket toward the UAS ({}):\n{at_uas}",
        proxy.udp()
    );
    if transport == Transport::Udp {
        assert_eq!(record_route.len(), 1, "one Record-Route when in and out sockets are the same:\n{at_uas}");
    }

    let (provisional, ok) = uac.expect_final(&invite);
    assert_eq!(statuses(&provisional), [180], "the 180 relayed back");
    assert_eq!(ok.status(), Some(200), "the 200 relayed back:\n{ok}");
    for response in provisional.iter().chain([&ok]) {
        let vias = response.headers("Via");
        assert_eq!(vias.len(), 1, "the proxy removed its Via:\n{response}");
        assert!(vias[0].contains(invite.branch().unwrap()), "the UAC's Via:\n{response}");
    }
    assert_eq!(ok.headers("Record-Route"), record_route, "the Record-Route the UAS copied");
    assert_eq!(ok.body(), SDP_ANSWER.as_bytes());

    let mut dialog = Dialog::from_uac(&invite, &ok);
    assert_eq!(dialog.remote_target, format!("sip:uas@{}", uas.addr()));
    let ack = uac.ack(&dialog);
    assert!(ack.headers.get("Route").is_some(), "the ACK carries the route set");
    uac.send(&ack);
    let at_uas = uas.expect_request("ACK");
    assert_relayed(&proxy, &at_uas, ack.branch().unwrap());
    assert_eq!(at_uas.request_uri(), Some(dialog.remote_target.as_str()), "loose_route keeps the Request-URI");
    assert!(at_uas.headers("Route").is_empty(), "loose_route removed the proxy's Route:\n{at_uas}");
    assert_eq!(at_uas.max_forwards(), Some(69));

    let bye = uac.in_dialog(&mut dialog, "BYE");
    uac.send(&bye);
    let at_uas = uas.expect_request("BYE");
    assert_relayed(&proxy, &at_uas, bye.branch().unwrap());
    assert!(at_uas.headers("Route").is_empty(), "loose_route removed the proxy's Route:\n{at_uas}");
    assert_eq!(at_uas.header("CSeq"), Some("2 BYE"));
    let bye_ok = uac.expect_response(&bye);
    assert_eq!(bye_ok.status(), Some(200), "the BYE's 200 relayed back:\n{bye_ok}");
    uas.expect_nothing(QUIET);
}

#[test]
fn options_to_the_proxy_itself_gets_its_200() {
    let proxy = stateless_proxy();
    let mut uac = Ua::udp(proxy.udp());
    let options = uac.options(&proxy.uri());
    uac.send(&options);
    let ok = uac.expect_response(&options);
    assert_eq!(ok.status(), Some(200), "{ok}");
    assert!(ok.to_tag().is_some_and(|t| !t.is_empty()), "the proxy's To-tag:\n{ok}");
    assert_eq!(ok.header("Call-ID"), options.headers.get("Call-ID"));
    assert_eq!(ok.header("CSeq"), Some("1 OPTIONS"));
    uac.expect_nothing(QUIET);
}

#[test]
fn a_call_over_udp_follows_via_and_record_route() {
    call_through_the_proxy(Transport::Udp);
}

#[test]
fn a_call_over_tcp_follows_via_and_record_route() {
    call_through_the_proxy(Transport::Tcp);
}

#[test]
fn max_forwards_0_gets_483_and_nothing_is_relayed() {
    let proxy = stateless_proxy();
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());
    let options = uac.options(&uas.uri("bob")).with_set("Max-Forwards", "0");
    let reply = uac.transaction(&options);
    assert_eq!(reply.status(), Some(483), "{reply}");
    assert_eq!(reply.reason(), Some("Too Many Hops"));
    uas.expect_nothing(QUIET);
}

#[test]
fn a_dropped_request_gets_nothing_and_the_next_one_is_relayed() {
    let proxy = stateless_proxy();
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());
    let dropped = uac.options(&uas.uri("bob")).with_header("X-Drop", "yes");
    uac.send(&dropped);
    uac.expect_nothing(QUIET);
    uas.expect_nothing(std::time::Duration::from_millis(100));

    let options = uac.options(&uas.uri("bob"));
    uac.send(&options);
    let at_uas = uas.expect_request("OPTIONS");
    assert_relayed(&proxy, &at_uas, options.branch().unwrap());
    assert!(at_uas.headers("Record-Route").is_empty(), "no record_route() for OPTIONS:\n{at_uas}");
    let ok = uac.expect_response(&options);
    assert_eq!(ok.status(), Some(200), "the UAS's 200 relayed back:\n{ok}");
}

#[test]
fn exit_in_a_sub_route_ends_the_script() {
    let proxy = stateless_proxy();
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());
    let options = uac.options(&uas.uri("exit-me"));
    uac.send(&options);
    let reply = uac.expect_response(&options);
    assert_eq!((reply.status(), reply.reason()), (Some(404), Some("Exit Here")), "route[2]'s reply:\n{reply}");
    assert!(!reply.has_header("X-After-Exit"), "{reply}");
    // Neither the second reply nor the forward() after route(2) happened.
    uac.expect_nothing(QUIET);
    uas.expect_nothing(std::time::Duration::from_millis(100));
}

#[test]
fn return_in_a_sub_route_continues_the_caller() {
    let proxy = stateless_proxy();
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());
    let options = uac.options(&uas.uri("return-me"));
    uac.send(&options);
    let at_uas = uas.expect_request("OPTIONS");
    assert_eq!(at_uas.header("X-Returned"), Some("yes"), "route[3]'s append_hf:\n{at_uas}");
    assert_eq!(uac.expect_response(&options).status(), Some(200));
}

#[test]
fn cancel_follows_the_invite_and_the_487_is_acknowledged() {
    let proxy = stateless_proxy();
    let uas = Uas::start_with(InviteAnswer::RingOnly);
    let mut uac = Ua::udp(proxy.udp());
    let invite = uac.invite(&uas.uri("bob"));
    uac.send(&invite);
    let invite_at_uas = uas.expect_request("INVITE");
    assert_eq!(uac.expect_response(&invite).status(), Some(180));

    let cancel = uac.cancel(&invite);
    uac.send(&cancel);
    let cancel_at_uas = uas.expect_request("CANCEL");
    assert_relayed(&proxy, &cancel_at_uas, cancel.branch().unwrap());
    assert_eq!(
        cancel_at_uas.branch(),
        invite_at_uas.branch(),
        "a stateless proxy gives the CANCEL its INVITE's branch (RFC 3261 §16.11)"
    );
    assert_eq!(uac.expect_response(&cancel).status(), Some(200), "the CANCEL's 200 relayed back");
    let terminated = uac.expect_response(&invite);
    assert_eq!(terminated.status(), Some(487), "{terminated}");

    let ack = uac.ack_non2xx(&invite, &terminated);
    uac.send(&ack);
    let ack_at_uas = uas.expect_request("ACK");
    assert_eq!(ack_at_uas.request_uri(), Some(invite.uri.as_str()), "the ACK goes where the INVITE went");
}

#[test]
fn sigterm_stops_the_proxy_cleanly() {
    let proxy = stateless_proxy();
    let mut uac = Ua::udp(proxy.udp());
    let options = uac.options(&proxy.uri());
    assert_eq!(uac.transaction(&options).status(), Some(200));
    let status = proxy.stop();
    assert!(status.success(), "SIGTERM: exit 0, not {status}");
}
