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

/// The same 200 calls with SIPp losing 10 % of what it sends and receives,
/// on both sides (`-lost 10`): retransmissions (SIPp's, and tm's towards the
/// UAS) and the last response resent to a retransmitted request make every
/// call complete (tests/sipp/*_lossy.xml say what the scenarios must do for
/// that).
#[test]
fn two_hundred_calls_through_tm_with_packet_loss() {
    let Some(sipp) = Sipp::find() else { return };
    let proxy = stateful_proxy();
    let mut opts = Options::default().calls(200, 40);
    opts.timeout = Duration::from_secs(90);
    opts.extra = ["-lost", "10", "-rtcheck", "loose"].map(String::from).to_vec();
    let uas = sipp.uas(&scenario("uas_call_lossy.xml"), &opts);
    let uac = sipp.uac(&scenario("uac_call_lossy.xml"), proxy.udp(), &opts.clone().key("uas", uas.addr()));
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

/// The `ACC:` lines of a proxy's log for call `call_id`, with the
/// timestamp replaced by `T` (after checking it is a number).
fn acc_lines(proxy: &Proxy, call_id: &str) -> Vec<String> {
    proxy
        .stderr()
        .lines()
        .filter_map(|l| l.find("ACC: ").map(|at| l[at..].to_string()))
        .filter(|l| l.contains(&format!(";call_id={call_id};")))
        .map(|l| {
            let start = l.find("timestamp=").expect("a timestamp") + "timestamp=".len();
            let end = start + l[start..].find(';').unwrap();
            assert!(l[start..end].parse::<u64>().is_ok(), "{l}");
            format!("{}T{}", &l[..start], &l[end..])
        })
        .collect()
}

/// Waits until the proxy logged `n` acc lines for the call (they follow the
/// messages that cause them).
fn wait_acc(proxy: &Proxy, call_id: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let lines = acc_lines(proxy, call_id);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// tests/cfg/accounting_fork.cfg: an INVITE forked to the two contacts of a
/// user, both answering: both 2xx go upstream (RFC 3261 §16.7 step 5) and
/// acc logs each, by its To tag, the second one after the transaction
/// entered RFC 6026's Accepted state.
#[test]
fn a_forked_invite_answered_twice_is_accounted_twice() {
    let proxy = Proxy::start(&build_proxy(&cfg("accounting_fork.cfg")), &["--workers", "2"]);
    let (first, second) = (Uas::start(), Uas::start());
    let mut uac = Ua::udp(proxy.udp());
    let aor = format!("sip:bob@{}", proxy.udp());
    for (cseq, uas) in [(1, &first), (2, &second)] {
        let ok = uac.register(&proxy.uri(), &aor, &uas.uri("bob"), cseq);
        assert_eq!(ok.status(), Some(200), "{ok}");
    }
    let invite = uac.invite(&aor);
    uac.send(&invite);
    first.expect_request("INVITE");
    second.expect_request("INVITE");
    let mut tags = Vec::new();
    while tags.len() < 2 {
        let answer = uac.expect_response(&invite);
        if answer.status() == Some(200) {
            tags.push(answer.header("To").unwrap().split("tag=").nth(1).unwrap().to_string());
        }
    }
    assert_ne!(tags[0], tags[1]);
    let call = invite.headers.get("Call-ID").unwrap().to_string();
    let lines = wait_acc(&proxy, &call, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    // One line per 2xx, in either order (two workers may take the two
    // answers at once).
    for line in &lines {
        assert!(line.starts_with("ACC: transaction answered: timestamp=T;method=INVITE;"), "{line}");
    }
    for tag in &tags {
        let with_tag = lines.iter().filter(|l| l.contains(&format!(";to_tag={tag};"))).count();
        assert_eq!(with_tag, 1, "{tag}: {lines:?}");
    }
}

/// tests/cfg/accounting.cfg (OpenSER 1.3's default accounting, uri_db loaded
/// with no database): an answered call logs its INVITE, its ACK and its BYE;
/// a busy callee is a missed call; `acc_log_request` logs the request.
#[test]
fn accounting_logs_answered_and_missed_calls() {
    let proxy = Proxy::start(&build_proxy(&cfg("accounting.cfg")), &["--workers", "2"]);
    let uas = Uas::start();
    let mut uac = Ua::udp(proxy.udp());
    let invite = uac.invite(&uas.uri("bob"));
    uac.send(&invite);
    uas.expect_request("INVITE");
    let (_, ok) = uac.expect_final(&invite);
    assert_eq!(ok.status(), Some(200), "{ok}");
    let mut dialog = serc_e2e::Dialog::from_uac(&invite, &ok);
    uac.send(&uac.ack(&dialog));
    uas.expect_request("ACK");
    let bye = uac.in_dialog(&mut dialog, "BYE");
    uac.send(&bye);
    uas.expect_request("BYE");
    assert_eq!(uac.expect_response(&bye).status(), Some(200));
    let call = invite.headers.get("Call-ID").unwrap().to_string();
    let from_tag = invite.headers.get("From").unwrap().split("tag=").nth(1).unwrap().to_string();
    let to_tag = ok.header("To").unwrap().split("tag=").nth(1).unwrap().to_string();
    // log_extra: $fU, and $rU (bob, then the UAS's Contact user in the dialog).
    let line = |text: &str, method: &str, ruser: &str| {
        format!(
            "ACC: {text}: timestamp=T;method={method};from_tag={from_tag};to_tag={to_tag};call_id={call};\
             code=200;reason=OK;src_user={};dst_user={ruser}",
            invite.headers.get("From").unwrap().split("sip:").nth(1).unwrap().split('@').next().unwrap()
        )
    };
    assert_eq!(
        wait_acc(&proxy, &call, 3),
        [
            line("transaction answered", "INVITE", "bob"),
            line("request acknowledged", "ACK", "uas"),
            line("transaction answered", "BYE", "uas"),
        ],
        "{}",
        proxy.stderr()
    );

    // A busy callee: a missed call (and, failed_transaction_flag not set on
    // the INVITE, no failed transaction).
    let busy = Uas::start_with(InviteAnswer::Reject(486));
    let invite = uac.invite(&busy.uri("bob"));
    uac.send(&invite);
    busy.expect_request("INVITE");
    let (_, answer) = uac.expect_final(&invite);
    assert_eq!(answer.status(), Some(486));
    let call = invite.headers.get("Call-ID").unwrap().to_string();
    let lines = wait_acc(&proxy, &call, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ACC: call missed: timestamp=T;method=INVITE;"), "{lines:?}");
    assert!(lines[0].ends_with(";code=486;reason=Rejected;src_user=alice;dst_user=bob"), "{lines:?}");

    // acc_log_request: the OPTIONS itself, code and reason from the comment.
    let options = uac.options(&uas.uri("bob"));
    uac.transaction(&options);
    let call = options.headers.get("Call-ID").unwrap().to_string();
    let lines = wait_acc(&proxy, &call, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ACC: request accounted: timestamp=T;method=OPTIONS;"), "{lines:?}");
    assert!(
        lines[0].contains(";to_tag=;") && lines[0].contains(";code=200;reason=options seen;src_user="),
        "{lines:?}"
    );
}
