//! A stateful OpenSER 1.3-style config built by `serc build`
//! (tests/cfg/stateful.cfg): 200 SIPp calls through tm, failover from a busy destination through
//! failure_route, CANCEL during ringing, 483 from the script; and
//! tests/cfg/timeout.cfg: 408 after fr_timer for an INVITE nobody answers.

use std::time::{Duration, Instant};

use serc_e2e::sipp::{Options, Sipp};
use serc_e2e::{build_proxy, cfg, scenario, InviteAnswer, Proxy, Ua, Uas};

fn stateful_proxy() -> Proxy {
    Proxy::start(&build_proxy(&cfg("stateful.cfg")), &["--workers", "2"])
}

/// 200 calls SIPp → proxy → SIPp through tm: every INVITE, ACK and BYE
/// relayed statefully (the ACK statelessly, as OpenSER does), all successful
/// on both sides.
#[test]
fn two_hundred_calls_through_tm() {
    let Some(sipp) = Sipp::find() else { return };
    let proxy = stateful_proxy();
    let opts = Options::default().calls(200, 40);
    let uas = sipp.uas(&scenario("uas_call.xml"), &opts);
    let uac = sipp.uac(&scenario("uac_call.xml"), proxy.udp(), &opts.clone().key("uas", uas.addr()));
    let uas = uas.finish();
    uac.assert_all_successful(200);
    uas.assert_all_successful(200);
}

#[test]
fn a_busy_destination_fails_over_through_the_failure_route() {
    let proxy = stateful_proxy();
    let busy = Uas::start_with(InviteAnswer::Reject(486));
    let other = Uas::start();
    let mut uac = Ua::udp(proxy.udp());
    let invite = uac.invite(&busy.uri("bob")).with_header("X-Failover", &other.uri("bob"));
    uac.send(&invite);
    busy.expect_request("INVITE");
    let ack = busy.expect_request("ACK");
    assert!(ack.header("Via").is_some(), "the busy UAS gets the ACK of its 486 from the proxy:\n{ack}");
    other.expect_request("INVITE");
    let (_, answer) = uac.expect_final(&invite);
    assert_eq!(answer.status(), Some(200), "the second destination's 200, not the 486:\n{answer}");
}

#[test]
fn cancel_during_ringing_reaches_the_uas_and_the_uac_gets_487() {
    let proxy = stateful_proxy();
    let uas = Uas::start_with(InviteAnswer::RingOnly);
    let mut uac = Ua::udp(proxy.udp());
    let invite = uac.invite(&uas.uri("bob"));
    uac.send(&invite);
    uas.expect_request("INVITE");
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
    uas.expect_request("CANCEL");
    let terminated = uac.expect_response(&invite);
    assert_eq!(terminated.status(), Some(487), "{terminated}");
}

#[test]
fn max_forwards_0_gets_483_from_the_script() {
    let proxy = stateful_proxy();
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());
    let invite = uac.invite(&uas.uri("bob")).with_set("Max-Forwards", "0");
    let reply = uac.transaction(&invite);
    assert_eq!(reply.status(), Some(483), "{reply}");
    uas.expect_nothing(Duration::from_millis(300));
}

#[test]
fn an_invite_nobody_answers_gets_408_after_fr_timer() {
    let proxy = Proxy::start(&build_proxy(&cfg("timeout.cfg")), &[]);
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut uac = Ua::udp(proxy.udp());
    let invite = uac.invite(&format!("sip:bob@{}", silent.local_addr().unwrap()));
    let sent = Instant::now();
    uac.send(&invite);
    let (_, last) = uac.expect_final(&invite);
    let elapsed = sent.elapsed();
    assert_eq!(last.status(), Some(408), "{last}");
    // fr_timer is 2 s: within a second of it.
    assert!(elapsed >= Duration::from_secs(1) && elapsed <= Duration::from_secs(3), "408 after {elapsed:?}");
}
