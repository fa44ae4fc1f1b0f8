//! The OpenSER 1.3 default config from the corpus, unchanged but for the
//! `exit; }` left outside any route when `route[2]` was commented out (OpenSER
//! 1.3's own parser refuses those two lines): `mi_fifo` included, its FIFO put
//! in a temporary directory with `--mi-fifo`. Built by `serc build`, it serves
//! REGISTER, INVITE between registered users (lookup, record_route, t_relay),
//! BYE through loose_route, CANCEL during ringing (487), and 404 for unknown
//! users — through SIPp and a Rust UA. (tests/tests/management.rs drives its
//! management interface.)

use std::thread::sleep;
use std::time::{Duration, Instant};

use serc_e2e::{build_proxy, openser13_default_cfg, InviteAnswer, Proxy, TempDir, Ua, Uas};

fn start(dir: &TempDir) -> Proxy {
    let fifo = dir.path().join("openser_fifo");
    let fifo = fifo.to_str().expect("a UTF-8 path");
    Proxy::start(&build_proxy(&openser13_default_cfg()), &["--workers", "2", "--mi-fifo", fifo])
}

fn register(ua: &mut Ua, proxy: &Proxy, user: &str, contact: &str) -> serc_e2e::Sip {
    ua.register(&proxy.uri(), &format!("sip:{user}@127.0.0.1"), contact, 1)
}

#[test]
fn sipp_registers_users_and_calls_them_through_the_default_config() {
    use serc_e2e::scenario;
    use serc_e2e::sipp::{Options, Sipp};

    let Some(sipp) = Sipp::find() else { return };
    let dir = TempDir::new("default-config");
    let proxy = start(&dir);
    let calls = Options::default().calls(100, 25);
    let uas = sipp.uas(&scenario("uas_call.xml"), &calls);
    let registered = sipp.uac(
        &scenario("uac_register.xml"),
        proxy.udp(),
        &Options::default().calls(200, 100).key("uas", uas.addr()),
    );
    registered.assert_all_successful(200);
    let called = sipp.uac(&scenario("uac_call_aor.xml"), proxy.udp(), &calls);
    let uas = uas.finish();
    called.assert_all_successful(100);
    uas.assert_all_successful(100);

    // branch_route[2] logs each INVITE's one branch (tm absorbs the
    // retransmissions), onreply_route[2] each reply to it, acc each BYE's
    // transaction, the last of a call. The workers write a batch's lines
    // together (runtime/src/log.rs): each must come whole, once, and none
    // may stay behind.
    let count = |log: &str, what: &str| log.lines().filter(|l| l.contains(what)).count();
    let (branch, bye) = ("script: new branch at sip:", ";method=BYE;");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut log = proxy.stderr();
    while (count(&log, branch) < 100 || count(&log, bye) < 100) && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
        log = proxy.stderr();
    }
    assert_eq!((count(&log, branch), count(&log, bye)), (100, 100), "{log}");
    assert!(count(&log, "script: incoming reply") >= 200, "{log}");
    for line in log.lines() {
        let time = line.get(..28).unwrap_or_default();
        assert!(time.len() == 28 && time.starts_with("20") && time.ends_with("Z "), "a broken line: {line:?}");
    }
}

#[test]
fn cancel_unknown_users_and_record_routing_through_the_default_config() {
    let dir = TempDir::new("default-config");
    let proxy = start(&dir);
    let mut uac = Ua::udp(proxy.udp());

    // A registered user that only rings: CANCEL reaches it, the caller gets 487.
    let ringing = Uas::start_with(InviteAnswer::RingOnly);
    assert_eq!(register(&mut uac, &proxy, "carol", &ringing.uri("carol")).status(), Some(200));
    let invite = uac.invite(&format!("sip:carol@{}", proxy.udp()));
    uac.send(&invite);
    let at_uas = ringing.expect_request("INVITE");
    assert!(
        at_uas.header("Record-Route").is_some_and(|rr| rr.contains(&proxy.udp().ip().to_string())),
        "record_route():\n{at_uas}"
    );
    assert!(at_uas.header("P-hint").is_none(), "to myself: no outbound hint\n{at_uas}");
    loop {
        let r = uac.expect_response(&invite);
        if r.status() == Some(180) {
            break;
        }
        assert_eq!(r.status(), Some(100), "{r}");
    }
    let cancel = uac.cancel(&invite);
    uac.send(&cancel);
    assert_eq!(uac.expect_response(&cancel).status(), Some(200), "the proxy answers the CANCEL");
    ringing.expect_request("CANCEL");
    assert_eq!(uac.expect_response(&invite).status(), Some(487));

    // Nobody registered: t_reply's 404.
    let nobody = uac.invite(&format!("sip:nobody@{}", proxy.udp()));
    uac.send(&nobody);
    let (_, reply) = uac.expect_final(&nobody);
    assert_eq!(reply.status(), Some(404), "{reply}");
    // PUBLISH: 503 from the script.
    let publish = uac.request("PUBLISH", &format!("sip:carol@{}", proxy.udp()));
    assert_eq!(uac.transaction(&publish).status(), Some(503));
}
