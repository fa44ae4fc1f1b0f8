//! The harness checked on its own, without a built proxy: the Rust UA against
//! the Rust UAS, SIPp against SIPp and against the Rust UAS, and `Proxy`'s
//! start, port discovery and stop on a stand-in program. When an end-to-end
//! test fails, these say whether the harness or the proxy is to blame.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serc_e2e::sipp::{Options, Sipp};
use serc_e2e::{scenario, Dialog, InviteAnswer, Proxy, Transport, Ua, Uas, QUIET, SDP_ANSWER};

#[test]
fn the_ua_calls_the_uas_directly() {
    let uas = Uas::start();
    let mut uac = Ua::udp(uas.addr());
    assert_eq!(uac.transport(), Transport::Udp);

    let options = uac.options(&uas.uri("bob"));
    assert_eq!(uac.transaction(&options).status(), Some(200));
    uas.expect_request("OPTIONS");

    let invite = uac.invite(&uas.uri("bob"));
    uac.send(&invite);
    uas.expect_request("INVITE");
    let (provisional, ok) = uac.expect_final(&invite);
    assert_eq!(provisional.iter().filter_map(|r| r.status()).collect::<Vec<_>>(), [180]);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.body(), SDP_ANSWER.as_bytes());
    let mut dialog = Dialog::from_uac(&invite, &ok);
    assert!(dialog.route_set.is_empty());
    uac.send(&uac.ack(&dialog));
    uas.expect_request("ACK");
    let bye = uac.in_dialog(&mut dialog, "BYE");
    uac.send(&bye);
    uas.expect_request("BYE");
    assert_eq!(uac.expect_response(&bye).status(), Some(200));
    uac.expect_nothing(Duration::from_millis(100));
}

#[test]
fn the_uas_answers_cancel_with_200_and_487() {
    let uas = Uas::start_with(InviteAnswer::RingOnly);
    let mut uac = Ua::udp(uas.addr());
    let invite = uac.invite(&uas.uri("bob"));
    uac.send(&invite);
    assert_eq!(uac.expect_response(&invite).status(), Some(180));
    let cancel = uac.cancel(&invite);
    uac.send(&cancel);
    assert_eq!(uac.expect_response(&cancel).status(), Some(200));
    let terminated = uac.expect_response(&invite);
    assert_eq!(terminated.status(), Some(487));
    let ack = uac.ack_non2xx(&invite, &terminated);
    uac.send(&ack);
    for method in ["INVITE", "CANCEL", "ACK"] {
        uas.expect_request(method);
    }
    uas.expect_nothing(Duration::from_millis(100));
}

/// A shell script that behaves like a proxy's command line: prints its
/// `listening on` lines (ports made up) and exits 0 on SIGTERM.
fn stand_in(name: &str, body: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.sh", std::process::id()));
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn proxy_start_learns_the_ports_and_stop_sends_sigterm() {
    let script = stand_in(
        "stand-in-proxy",
        "trap 'echo stopping >&2; exit 0' TERM\n\
         echo \"args: $*\" >&2\n\
         echo 'listening on udp:127.0.0.1:40001'\n\
         echo 'listening on tcp:127.0.0.1:40002'\n\
         while :; do sleep 0.05; done\n",
    );
    let mut proxy = Proxy::start(&script, &["--workers", "1"]);
    assert_eq!(proxy.udp(), "127.0.0.1:40001".parse().unwrap());
    assert_eq!(proxy.tcp(), "127.0.0.1:40002".parse().unwrap());
    assert!(proxy.is_running());
    let status = proxy.stop();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_file(script);
}

#[test]
fn proxy_start_reports_an_early_exit_with_the_log() {
    let script = stand_in("stand-in-failing", "echo 'error: cannot bind' >&2\nexit 3\n");
    let panic = std::panic::catch_unwind(|| Proxy::start(&script, &[])).err().expect("start fails");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("closed its stdout before reporting its ports"), "{message}");
    assert!(message.contains("error: cannot bind") && message.contains("exit status: 3"), "{message}");
    let _ = std::fs::remove_file(script);
}

#[test]
fn sipp_calls_sipp_directly() {
    let Some(sipp) = Sipp::find() else { return };
    let opts = Options::default().calls(5, 10);
    let uas = sipp.uas(&scenario("uas_call.xml"), &opts);
    let uac = sipp.uac(&scenario("uac_call.xml"), uas.addr(), &opts.clone().key("uas", uas.addr()));
    let uas = uas.finish();
    uac.assert_all_successful(5);
    uas.assert_all_successful(5);
}

#[test]
fn sipp_calls_the_rust_uas() {
    let Some(sipp) = Sipp::find() else { return };
    let uas = Uas::start();
    let opts = Options::default().calls(3, 10).key("uas", uas.addr());
    sipp.uac(&scenario("uac_call.xml"), uas.addr(), &opts).assert_all_successful(3);
    // Calls overlap (10 per second, each 200 ms long): count, in any order.
    let mut methods: Vec<String> =
        (0..9).map(|_| uas.next_message(QUIET).expect("the UAS saw every request").method().to_string()).collect();
    methods.sort();
    assert_eq!(methods, ["ACK", "ACK", "ACK", "BYE", "BYE", "BYE", "INVITE", "INVITE", "INVITE"]);
    uas.expect_nothing(QUIET);
}

#[test]
fn sipp_pings_the_rust_uas() {
    let Some(sipp) = Sipp::find() else { return };
    let uas = Uas::start();
    sipp.uac(&scenario("uac_options.xml"), uas.addr(), &Options::default().calls(5, 20)).assert_all_successful(5);
}

#[test]
fn a_failing_sipp_run_is_reported() {
    let Some(sipp) = Sipp::find() else { return };
    // Nobody answers: the global timeout ends the run as a failure.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let opts = Options { timeout: Duration::from_secs(2), ..Options::default() }.calls(1, 10);
    let outcome = sipp.uac(&scenario("uac_options.xml"), silent.local_addr().unwrap(), &opts);
    assert!(!outcome.success(), "{outcome}");
    assert!(outcome.dir.is_dir(), "the files of a failed run are kept: {outcome}");
    let _ = std::fs::remove_dir_all(&outcome.dir);
}
