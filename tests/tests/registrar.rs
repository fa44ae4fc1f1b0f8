//! A stateless registrar built by `serc build` (tests/cfg/registrar.cfg): a UAS
//! registers its address, an INVITE to its address of record reaches it
//! through `lookup`, its 200 comes back; unregistered users get 404; the
//! registrar's own replies (423, 503) come from the built proxy.

use serc_e2e::{build_proxy, cfg, Proxy, Ua, Uas};

fn register(ua: &mut Ua, proxy: &Proxy, user: &str, contact: &str, cseq: u32, expires: Option<u32>) -> serc_e2e::Sip {
    let mut req = ua.request("REGISTER", &proxy.uri());
    req.headers.set("To", format!("<sip:{user}@example.com>"));
    req.headers.set("From", format!("<sip:{user}@example.com>;tag=reg-{user}"));
    req.headers.set("Call-ID", format!("reg-{user}@test"));
    req.headers.set("CSeq", format!("{cseq} REGISTER"));
    let contact = match expires {
        Some(e) => format!("<{contact}>;expires={e}"),
        None => format!("<{contact}>"),
    };
    req.headers.set("Contact", contact);
    ua.transaction(&req)
}

#[test]
fn a_registered_user_is_reached_through_lookup() {
    let proxy = Proxy::start(&build_proxy(&cfg("registrar.cfg")), &[]);
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());

    let ok = register(&mut uac, &proxy, "bob", &uas.uri("bob"), 1, Some(600));
    assert_eq!(ok.status(), Some(200), "REGISTER:\n{ok}");
    let contact = ok.header("Contact").unwrap_or_default().to_string();
    assert!(contact.contains(&uas.addr().to_string()) && contact.contains("expires=600"), "bindings listed:\n{ok}");

    let invite = uac.invite(&format!("sip:bob@{}", proxy.udp()));
    uac.send(&invite);
    let at_uas = uas.expect_request("INVITE");
    assert_eq!(
        at_uas.request_uri(),
        Some(uas.uri("bob").as_str()),
        "the Request-URI is the registered contact:\n{at_uas}"
    );
    let (_, answer) = uac.expect_final(&invite);
    assert_eq!(answer.status(), Some(200), "the UAS's 200 relayed back:\n{answer}");

    let nobody = uac.invite(&format!("sip:nobody@{}", proxy.udp()));
    assert_eq!(uac.transaction(&nobody).status(), Some(404));
}

#[test]
fn registrar_refusals_come_from_the_proxy() {
    let proxy = Proxy::start(&build_proxy(&cfg("registrar.cfg")), &[]);
    let mut uac = Ua::udp(proxy.udp());
    let brief = register(&mut uac, &proxy, "carol", "sip:carol@127.0.0.1:5999", 1, Some(10));
    assert_eq!(brief.status(), Some(423), "{brief}");
    assert_eq!(brief.header("Min-Expires"), Some("60"), "{brief}");
    // max_contacts is 2.
    for (i, port) in [5997, 5998].into_iter().enumerate() {
        let contact = format!("sip:carol@127.0.0.1:{port}");
        assert_eq!(register(&mut uac, &proxy, "carol", &contact, 2 + i as u32, None).status(), Some(200));
    }
    let third = register(&mut uac, &proxy, "carol", "sip:carol@127.0.0.1:5996", 9, None);
    assert_eq!(third.status(), Some(503), "{third}");
}

/// SIPp registers 10,000 distinct users (their contact: a SIPp UAS), then 100
/// calls to the first 100 of them go through `lookup`, all successful on both
/// sides. Skipped without SIPp unless `SERC_REQUIRE_PEERS` is set.
#[test]
fn sipp_registers_ten_thousand_users_and_calls_reach_them() {
    use serc_e2e::scenario;
    use serc_e2e::sipp::{Options, Sipp};

    let Some(sipp) = Sipp::find() else { return };
    let proxy = Proxy::start(&build_proxy(&cfg("registrar.cfg")), &["--workers", "2"]);
    let calls = Options::default().calls(100, 20);
    let uas = sipp.uas(&scenario("uas_call.xml"), &calls);
    let registered = sipp.uac(
        &scenario("uac_register.xml"),
        proxy.udp(),
        &Options::default().calls(10_000, 1000).key("uas", uas.addr()),
    );
    registered.assert_all_successful(10_000);
    let called = sipp.uac(&scenario("uac_call_aor.xml"), proxy.udp(), &calls);
    let uas = uas.finish();
    called.assert_all_successful(100);
    uas.assert_all_successful(100);
}
