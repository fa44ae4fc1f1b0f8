//! `examples/openser.cfg`, the README's example, built and run: it answers an
//! OPTIONS to itself and relays an INVITE to another address. Kept generic: the
//! example is a classic config that changes with what the runtime supports.

use serc_e2e::{build_proxy, workspace_root, Proxy, Ua, Uas};

#[test]
fn the_example_answers_options_and_relays_an_invite() {
    let proxy = Proxy::start(&build_proxy(&workspace_root().join("examples/openser.cfg")), &["--log-level", "debug"]);
    let mut uac = Ua::udp(proxy.udp());

    let options = uac.options(&proxy.uri());
    let ok = uac.transaction(&options);
    assert_eq!(ok.status(), Some(200), "OPTIONS to the proxy itself:\n{ok}");

    let uas = Uas::start();
    let invite = uac.invite(&uas.uri("bob"));
    uac.send(&invite);
    let at_uas = uas.expect_request("INVITE");
    let top_via = at_uas.top_via();
    assert!(top_via.contains(&proxy.udp().to_string()), "the proxy's Via on top:\n{at_uas}");
    let (_, answer) = uac.expect_final(&invite);
    assert_eq!(answer.status(), Some(200), "the UAS's 200 relayed back:\n{answer}");
}
