//! The management interface of a built proxy: the OpenSER 1.3 default config
//! (it loads `mi_fifo`; tests/src `openser13_default_cfg`) built by `serc build`
//! and started with its FIFO in a temporary directory (`--mi-fifo`), an
//! `mi_datagram` unix socket (`--mi-datagram`) and the HTTP door (`--http`),
//! driven by `serc ctl` over each door:
//!
//! - a registration is visible with `ul show` (`ul_show_contact`) and gone
//!   after `ul rm` (`ul_rm`): the next INVITE gets the config's 404;
//! - the statistics move by exactly what a SIPp run caused (registrations,
//!   calls, their retransmissions), read over the FIFO and scraped from
//!   `/metrics` with a Prometheus text-format parser.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use serc_e2e::sipp::{Options, Sipp};
use serc_e2e::{build_proxy, openser13_default_cfg, scenario, serc_binary, Proxy, TempDir, Ua, Uas};

struct Managed {
    proxy: Proxy,
    dir: TempDir,
    /// `IP:PORT` of the HTTP door.
    http: String,
}

impl Managed {
    fn start() -> Managed {
        let dir = TempDir::new("management");
        let fifo = dir.path().join("openser_fifo").to_str().expect("a UTF-8 path").to_string();
        let socket = format!("unix:{}", dir.path().join("mi.sock").display());
        let args = ["--workers", "2", "--mi-fifo", &fifo, "--mi-datagram", &socket, "--http", "127.0.0.1:0"];
        let proxy = Proxy::start(&build_proxy(&openser13_default_cfg()), &args);
        let http = proxy
            .stdout_line("management on http:")
            .unwrap_or_else(|| panic!("the HTTP door is announced:\n{}\n{}", proxy.stdout(), proxy.stderr()));
        assert!(
            proxy.stdout().contains(&format!("management on fifo:{fifo}")),
            "the FIFO is announced:\n{}",
            proxy.stdout()
        );
        Managed { proxy, dir, http }
    }

    fn fifo(&self) -> PathBuf {
        self.dir.path().join("openser_fifo")
    }

    /// `serc ctl DOOR… ARGS…`.
    fn ctl(&self, door: &[&str], args: &[&str]) -> Output {
        std::process::Command::new(serc_binary()).arg("ctl").args(door).args(args).output().expect("serc ctl runs")
    }

    /// `serc ctl` over the FIFO (its reply FIFO, uniquely named, in /tmp/: the
    /// default config's reply_dir).
    fn over_fifo(&self, args: &[&str]) -> Output {
        let fifo = self.fifo();
        self.ctl(&["--fifo", fifo.to_str().expect("UTF-8")], args)
    }

    fn over_datagram(&self, args: &[&str]) -> Output {
        let socket = format!("unix:{}", self.dir.path().join("mi.sock").display());
        let dir = self.dir.path().to_str().expect("a UTF-8 path").to_string();
        self.ctl(&["--datagram", &socket, "--reply-dir", &dir], args)
    }

    fn over_http(&self, args: &[&str]) -> Output {
        self.ctl(&["--http", &format!("http://{}", self.http)], args)
    }

    /// Every statistic, read over the FIFO (`group:name = value` lines).
    fn stats(&self) -> BTreeMap<String, u64> {
        let out = self.over_fifo(&["stats"]);
        let text = ok(&out);
        text.lines()
            .filter_map(|l| {
                let (name, value) = l.trim().split_once(" = ")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// `/metrics`, parsed.
    fn metrics(&self) -> Scrape {
        let mut conn = TcpStream::connect(&self.http).expect("the HTTP door accepts");
        conn.set_read_timeout(Some(Duration::from_secs(5))).expect("a timeout");
        write!(conn, "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.http).expect("sent");
        let mut raw = String::new();
        conn.read_to_string(&mut raw).expect("the answer");
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "a plain body:\n{head}");
        Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
    }
}

/// The stdout of a `serc ctl` that succeeded.
fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "serc ctl failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn metric(scrape: &Scrape, name: &str) -> f64 {
    match scrape.samples.iter().find(|s| s.metric == name).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{name}: {other:?}"),
    }
}

fn register(ua: &mut Ua, proxy: &Proxy, user: &str, contact: &str) -> serc_e2e::Sip {
    ua.register(&proxy.uri(), &format!("sip:{user}@127.0.0.1"), contact, 1)
}

#[test]
fn registrations_are_shown_and_removed_through_every_door() {
    let m = Managed::start();
    let uas = Uas::start();
    let mut ua = Ua::udp(m.proxy.udp());
    assert_eq!(register(&mut ua, &m.proxy, "alice", &uas.uri("alice")).status(), Some(200));

    // The FIFO: ul_show_contact.
    let shown = ok(&m.over_fifo(&["ul", "show", "alice"]));
    assert!(shown.starts_with("200 OK\n"), "{shown}");
    assert!(shown.contains(&format!("<{}>", uas.uri("alice"))) && shown.contains(";expires="), "{shown}");
    // JSON over the datagram socket: the same contact.
    let json = ok(&m.over_datagram(&["--format", "json", "ul_show_contact", "location", "alice"]));
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(json.to_string().contains(&uas.uri("alice")), "{json}");
    // An unknown AOR and an unknown command: MI errors, exit status 1.
    let missing = m.over_datagram(&["ul", "show", "nobody"]);
    assert_eq!(missing.status.code(), Some(1), "{}", String::from_utf8_lossy(&missing.stdout));
    assert!(String::from_utf8_lossy(&missing.stdout).starts_with("404 AOR not found"));
    assert_eq!(m.over_http(&["no_such_command"]).status.code(), Some(1));

    // ul_rm over HTTP (JSON-RPC): the next INVITE finds nobody.
    ok(&m.over_http(&["ul", "rm", "alice"]));
    assert_eq!(m.over_fifo(&["ul", "show", "alice"]).status.code(), Some(1));
    let invite = ua.invite(&format!("sip:alice@{}", m.proxy.udp()));
    ua.send(&invite);
    let (_, reply) = ua.expect_final(&invite);
    assert_eq!(reply.status(), Some(404), "{reply}");
    uas.expect_nothing(Duration::from_millis(200));

    // The core commands answer on every door.
    assert!(ok(&m.over_fifo(&["which"])).contains("ul_show_contact"));
    assert!(ok(&m.over_datagram(&["uptime"])).contains("Up time"));
    assert!(ok(&m.over_http(&["ps"])).contains("MI HTTP"));
}

#[test]
fn statistics_move_by_exactly_what_a_sipp_run_caused() {
    let Some(sipp) = Sipp::find() else { return };
    let m = Managed::start();
    let before = m.stats();
    assert_eq!(before.get("core:rcv_requests"), Some(&0), "{before:?}");

    const USERS: u64 = 100;
    const CALLS: u64 = 50;
    let calls = Options::default().calls(CALLS as u32, 25);
    let uas = sipp.uas(&scenario("uas_call.xml"), &calls);
    let registered = sipp.uac(
        &scenario("uac_register.xml"),
        m.proxy.udp(),
        &Options::default().calls(USERS as u32, 100).key("uas", uas.addr()),
    );
    registered.assert_all_successful(USERS);
    let called = sipp.uac(&scenario("uac_call_aor.xml"), m.proxy.udp(), &calls);
    let uas = uas.finish();
    called.assert_all_successful(CALLS);
    uas.assert_all_successful(CALLS);
    let retrans = |o: &serc_e2e::sipp::Outcome| o.stats.get("Retransmissions(C)").unwrap_or(0);
    let (reg_retrans, uac_retrans, uas_retrans) = (retrans(&registered), retrans(&called), retrans(&uas));

    let after = m.stats();
    let moved = |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    // Per call the UAC sends INVITE, ACK, BYE; the UAS answers 180 and 200 to
    // the INVITE, 200 to the BYE. tm makes a transaction of the INVITE and of
    // the BYE (not of the ACK of the 2xx), answers 100 Trying to the INVITE.
    let expected = [
        ("core:rcv_requests", USERS + reg_retrans + 3 * CALLS + uac_retrans),
        ("core:rcv_replies", 3 * CALLS + uas_retrans),
        ("registrar:accepted_regs", USERS),
        ("registrar:rejected_regs", 0),
        ("sl:2xx_replies", USERS),
        ("tm:UAS_transactions", 2 * CALLS),
        ("tm:2xx_transactions", 2 * CALLS),
        ("tm:local_replies", CALLS),
        ("tm:received_replies", 3 * CALLS + uas_retrans),
        ("tm:relayed_replies", 3 * CALLS + uas_retrans),
    ];
    let got: Vec<(&str, u64)> = expected.iter().map(|(n, _)| (*n, moved(n))).collect();
    assert_eq!(got, expected, "retransmissions: REGISTER {reg_retrans}, UAC {uac_retrans}, UAS {uas_retrans}");
    assert_eq!(after.get("usrloc:registered_users"), Some(&USERS));

    // /metrics says the same.
    let scrape = m.metrics();
    assert_eq!(metric(&scrape, "serc_core_rcv_requests"), after["core:rcv_requests"] as f64);
    assert_eq!(metric(&scrape, "serc_tm_uas_transactions"), after["tm:UAS_transactions"] as f64);
    assert_eq!(metric(&scrape, "serc_usrloc_registered_users"), USERS as f64);
    // Every message the proxy routed is in the processing-time histogram.
    let routed = after["core:rcv_requests"] + after["core:rcv_replies"];
    let count = scrape
        .samples
        .iter()
        .find_map(|s| match (&s.metric[..], &s.value) {
            ("serc_request_processing_seconds", Value::Histogram(buckets)) => {
                buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count)
            }
            _ => None,
        })
        .expect("the processing-time histogram");
    // (Scraped after the stats: the FIFO requests are not SIP messages.)
    assert_eq!(count, routed as f64);
}
