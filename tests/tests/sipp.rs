//! SIPp through the stateless proxy (`cfg/stateless.cfg`): a SIPp UAC calls a
//! SIPp UAS (INVITE, ACK and BYE, the last two loose-routed), and OPTIONS pings
//! to the proxy itself. Skipped when SIPp is not installed, unless
//! `SERC_REQUIRE_PEERS` is set (`cargo xtask test` installs the Debian package
//! sip-tester).

use serc_e2e::sipp::{Options, Sipp};
use serc_e2e::{build_proxy, cfg, scenario, Proxy};

fn stateless_proxy() -> Proxy {
    Proxy::start(&build_proxy(&cfg("stateless.cfg")), &["--workers", "2"])
}

#[test]
fn twenty_calls_from_sipp_to_sipp_through_the_proxy() {
    let Some(sipp) = Sipp::find() else { return };
    let proxy = stateless_proxy();
    let opts = Options::default().calls(20, 10);
    let uas = sipp.uas(&scenario("uas_call.xml"), &opts);
    let uac = sipp.uac(&scenario("uac_call.xml"), proxy.udp(), &opts.clone().key("uas", uas.addr()));
    let uas = uas.finish();
    uac.assert_all_successful(20);
    uas.assert_all_successful(20);
}

#[test]
fn twenty_options_pings_get_200_from_the_proxy() {
    let Some(sipp) = Sipp::find() else { return };
    let proxy = stateless_proxy();
    let uac = sipp.uac(&scenario("uac_options.xml"), proxy.udp(), &Options::default().calls(20, 10));
    uac.assert_all_successful(20);
}
