//! A stateful registrar built by `serc build` (tests/cfg/registrar_nat.cfg) for
//! clients behind NATs and edge proxies: a client registering a contact it
//! cannot be reached at (a private address) is reached at the address its
//! REGISTER came from (`received_avp`, the NAT branch flag given back by
//! `lookup`); a REGISTER carrying a Path (RFC 3327) makes requests to the user
//! go through the edge proxy the Path names, with the Path as their Route.

use std::time::Duration;

use serc_e2e::{build_proxy, cfg, Proxy, Ua, Uas};

fn register(ua: &mut Ua, proxy: &Proxy, user: &str, contact: &str, path: Option<&str>) -> serc_e2e::Sip {
    let mut req = ua.request("REGISTER", &proxy.uri());
    req.headers.set("To", format!("<sip:{user}@example.com>"));
    req.headers.set("From", format!("<sip:{user}@example.com>;tag=reg-{user}"));
    req.headers.set("Call-ID", format!("reg-{user}@test"));
    req.headers.set("CSeq", "1 REGISTER");
    req.headers.set("Contact", format!("<{contact}>;expires=600"));
    if let Some(path) = path {
        req.headers.set("Path", path);
        req.headers.set("Supported", "path");
    }
    ua.transaction(&req)
}

#[test]
fn a_nated_client_is_reached_where_it_registered_from() {
    let proxy = Proxy::start(&build_proxy(&cfg("registrar_nat.cfg")), &[]);
    // The device says it is at 10.255.255.1 (its private address); its
    // REGISTER comes from its socket, where it really is.
    let mut device = Ua::udp(proxy.udp());
    let ok = register(&mut device, &proxy, "alice", "sip:alice@10.255.255.1:5060", None);
    assert_eq!(ok.status(), Some(200), "{ok}");
    let received = format!("received=\"sip:{}\"", device.local_addr());
    assert!(ok.header("Contact").unwrap_or_default().contains(&received), "the 200 names the received address:\n{ok}");

    let mut caller = Ua::udp(proxy.udp());
    let invite = caller.invite(&format!("sip:alice@{}", proxy.udp()));
    caller.send(&invite);
    let at_device =
        device.recv(Duration::from_secs(5)).expect("the INVITE reaches the device where it registered from");
    assert_eq!(at_device.method(), "INVITE", "{at_device}");
    assert_eq!(at_device.request_uri(), Some("sip:alice@10.255.255.1:5060"), "{at_device}");
    assert_eq!(
        at_device.header("X-Nated"),
        Some("yes"),
        "the NAT branch flag came back with the contact:\n{at_device}"
    );
}

#[test]
fn requests_follow_the_path_a_register_came_through() {
    let proxy = Proxy::start(&build_proxy(&cfg("registrar_nat.cfg")), &[]);
    let edge = Uas::start();
    let mut client = Ua::udp(proxy.udp());
    let path = format!("<sip:{};lr>", edge.addr());
    let ok = register(&mut client, &proxy, "bob", "sip:bob@10.255.255.2:5060", Some(&path));
    assert_eq!(ok.status(), Some(200), "{ok}");
    assert_eq!(ok.header("Path"), Some(path.as_str()), "Path echoed to a client supporting it:\n{ok}");

    let mut caller = Ua::udp(proxy.udp());
    let invite = caller.invite(&format!("sip:bob@{}", proxy.udp()));
    caller.send(&invite);
    let at_edge = edge.expect_request("INVITE");
    assert_eq!(at_edge.request_uri(), Some("sip:bob@10.255.255.2:5060"), "{at_edge}");
    assert_eq!(at_edge.headers("Route"), [path.as_str()], "the Path became the Route:\n{at_edge}");
    assert_eq!(at_edge.header("X-Nated"), None, "{at_edge}");
    let (_, answer) = caller.expect_final(&invite);
    assert_eq!(answer.status(), Some(200), "{answer}");
}
