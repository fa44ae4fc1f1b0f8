//! `examples/stateful.cfg` built and run: a user registers, an INVITE to
//! its address of record reaches its contact through `lookup` and tm, the
//! 200 comes back; an unknown user gets 404 through tm's `t_reply`.

use serc_e2e::{build_proxy, workspace_root, Proxy, Ua, Uas};

#[test]
fn the_stateful_example_registers_and_relays_through_tm() {
    let proxy = Proxy::start(&build_proxy(&workspace_root().join("examples/stateful.cfg")), &[]);
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());

    let mut register = uac.request("REGISTER", &proxy.uri());
    register.headers.set("To", "<sip:bob@localhost>");
    register.headers.set("From", "<sip:bob@localhost>;tag=reg");
    register.headers.set("Contact", format!("<{}>;expires=600", uas.uri("bob")));
    let ok = uac.transaction(&register);
    assert_eq!(ok.status(), Some(200), "REGISTER:\n{ok}");

    let invite = uac.invite(&format!("sip:bob@{}", proxy.udp()));
    uac.send(&invite);
    let at_uas = uas.expect_request("INVITE");
    assert_eq!(at_uas.request_uri(), Some(uas.uri("bob").as_str()), "{at_uas}");
    let (provisional, answer) = uac.expect_final(&invite);
    assert!(provisional.iter().any(|r| r.status() == Some(100)), "tm's 100 Trying");
    assert_eq!(answer.status(), Some(200), "{answer}");

    let nobody = uac.invite(&format!("sip:nobody@{}", proxy.udp()));
    uac.send(&nobody);
    let (_, not_found) = uac.expect_final(&nobody);
    assert_eq!(not_found.status(), Some(404), "{not_found}");
}
