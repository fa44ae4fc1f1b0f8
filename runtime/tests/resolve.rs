//! RFC 3263 server location against a real DNS server: hickory-server with an
//! in-memory zone, on 127.0.0.1 at an ephemeral UDP port, in the test process.
//! The server logs every query it receives, so the tests see what the resolver
//! asked, and what its cache spared. Cache expiry is tested on tokio's paused
//! clock (paused only between resolutions: the DNS exchanges run on real time).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use serc_runtime::proxy::{Target, Transport};
use serc_runtime::resolve::{Config, Families, HostsFile, ResolveError, Resolver};

const ZONE: &str = r#"
$ORIGIN example.test.
$TTL 300
@        IN SOA ns.example.test. admin.example.test. ( 1 3600 600 86400 10 )
@        IN NS  ns
ns       IN A   127.0.0.1

; NAPTR -> SRV -> A/AAAA
naptr            IN NAPTR 10 50 "s" "SIPS+D2T" "" _sips._tcp.naptr
naptr            IN NAPTR 20 10 "s" "SIP+D2T"  "" _sip._tcp.naptr
naptr            IN NAPTR 20 20 "s" "SIP+D2U"  "" _sip._udp.naptr
naptr            IN NAPTR 30 10 "u" "E2U+sip"  "!^.*$!sip:info@example.test!" .
_sips._tcp.naptr IN SRV 0 0 5061 tls.naptr
_sip._tcp.naptr  IN SRV 10 0 5070 tcp1.naptr
_sip._tcp.naptr  IN SRV 20 0 5071 tcp2.naptr
_sip._udp.naptr  IN SRV 10 0 5080 udp.naptr
tls.naptr        IN A    192.0.2.1
tcp1.naptr       IN A    192.0.2.10
tcp1.naptr       IN AAAA 2001:db8::10
tcp2.naptr       IN A    192.0.2.11
udp.naptr        IN A    192.0.2.20

; SRV without NAPTR
_sip._udp.srv    IN SRV 10 60 5060 a.srv
_sip._udp.srv    IN SRV 10 30 5060 b.srv
_sip._udp.srv    IN SRV 10 10 5060 c.srv
_sip._udp.srv    IN SRV 20 0  5062 backup.srv
_sip._tcp.srv    IN SRV 10 0  5060 a.srv
_sips._tcp.srv   IN SRV 10 0  5061 a.srv
srv              IN A    192.0.2.99
a.srv            IN A    192.0.2.31
b.srv            IN A    192.0.2.32
c.srv            IN A    192.0.2.33
backup.srv       IN A    192.0.2.34

; addresses only
aonly            IN A    192.0.2.40
aonly            IN AAAA 2001:db8::40
short         60 IN A    192.0.2.50

; the service is decidedly not here
_sip._udp.gone   IN SRV 0 0 0 .

; NAPTR to an SRV name without records: SRV as if there were no NAPTR
badnaptr         IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.nowhere
_sip._tcp.badnaptr IN SRV 10 0 5090 a.srv

; answered after 100 ms
slow             IN A    192.0.2.60
"#;

/// The catalog, logging each query ("A aonly.example.test.") and delaying
/// answers for names starting with "slow.".
struct Logging {
    catalog: Catalog,
    log: Arc<Mutex<Vec<String>>>,
}

// `RequestHandler` is an async_trait: its method, desugared.
impl RequestHandler for Logging {
    fn handle_request<'a, 'b, 'async_trait, R, T>(
        &'a self,
        request: &'b Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let mut slow = false;
            if let Ok(info) = request.request_info() {
                let name = info.query.name().to_string().to_ascii_lowercase();
                slow = name.starts_with("slow.");
                self.log.lock().unwrap().push(format!("{} {name}", info.query.query_type()));
            }
            if slow {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.catalog.handle_request::<R, T>(request, response_handle).await
        })
    }
}

/// A DNS server for example.test on 127.0.0.1, and what it was asked.
struct Dns {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _server: Server<Logging>,
}

impl Dns {
    async fn start() -> Dns {
        let origin = Name::from_str("example.test.").unwrap();
        let (_, records) = Parser::new(ZONE, None, Some(origin.clone())).parse().expect("the test zone parses");
        let zone = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
            origin.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .unwrap();
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut server = Server::new(Logging { catalog, log: log.clone() });
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        server.register_socket(socket);
        Dns { addr, log, _server: server }
    }

    /// The queries received since the last call, sorted.
    fn take(&self) -> Vec<String> {
        let mut log = std::mem::take(&mut *self.log.lock().unwrap());
        log.sort();
        log
    }

    fn resolver(&self, config: Config) -> Resolver {
        Resolver::with_name_servers(&[self.addr], config).unwrap()
    }
}

fn config() -> Config {
    Config { hosts: HostsFile::None, seed: Some(1), ..Config::default() }
}

fn name(transport: Option<Transport>, host: &str, port: Option<u16>) -> Target {
    Target::Name { transport, host: host.into(), port }
}

fn hops(list: &[(Transport, &str)]) -> Vec<(Transport, SocketAddr)> {
    list.iter().map(|(t, a)| (*t, a.parse().unwrap())).collect()
}

/// Moves tokio's clock forward by `secs` (paused only for the move).
async fn later(secs: u64) {
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(secs)).await;
    tokio::time::resume();
}

use Transport::{Tcp, Tls, Udp};

#[tokio::test]
async fn ip_literals_need_no_dns() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let addr = Target::Addr { transport: Tcp, addr: "192.0.2.7:5070".parse().unwrap() };
    assert_eq!(r.resolve(&addr).await.unwrap(), hops(&[(Tcp, "192.0.2.7:5070")]));
    assert_eq!(r.resolve(&name(None, "192.0.2.7", None)).await.unwrap(), hops(&[(Udp, "192.0.2.7:5060")]));
    assert_eq!(r.resolve(&name(Some(Tls), "192.0.2.7", None)).await.unwrap(), hops(&[(Tls, "192.0.2.7:5061")]));
    assert_eq!(
        r.resolve(&name(Some(Tcp), "[2001:db8::7]", Some(5080))).await.unwrap(),
        hops(&[(Tcp, "[2001:db8::7]:5080")])
    );
    assert!(dns.take().is_empty());
}

#[tokio::test]
async fn a_name_with_a_port_is_looked_up_in_a_and_aaaa_only() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let got = r.resolve(&name(None, "aonly.example.test", Some(5070))).await.unwrap();
    assert_eq!(got, hops(&[(Udp, "192.0.2.40:5070"), (Udp, "[2001:db8::40]:5070")]));
    assert_eq!(dns.take(), ["A aonly.example.test.", "AAAA aonly.example.test."]);
    // The target's transport; case and a trailing dot do not matter (and the
    // answers are cached).
    let got = r.resolve(&name(Some(Tcp), "AOnly.Example.Test.", Some(5070))).await.unwrap();
    assert_eq!(got, hops(&[(Tcp, "192.0.2.40:5070"), (Tcp, "[2001:db8::40]:5070")]));
    assert!(dns.take().is_empty());

    let v6_first = dns.resolver(Config { families: Families::Ipv6ThenIpv4, ..config() });
    let got = v6_first.resolve(&name(Some(Udp), "aonly.example.test", Some(5060))).await.unwrap();
    assert_eq!(got, hops(&[(Udp, "[2001:db8::40]:5060"), (Udp, "192.0.2.40:5060")]));
    let v4 = dns.resolver(Config { families: Families::Ipv4, ..config() });
    let got = v4.resolve(&name(Some(Udp), "aonly.example.test", Some(5060))).await.unwrap();
    assert_eq!(got, hops(&[(Udp, "192.0.2.40:5060")]));
}

#[tokio::test]
async fn naptr_then_srv_then_addresses() {
    let dns = Dns::start().await;
    // UDP and TCP only: SIPS+D2T is left out; order 20: D2T (preference 10)
    // before D2U (20); the E2U record is not for SIP.
    let r = dns.resolver(config());
    let got = r.resolve(&name(None, "naptr.example.test", None)).await.unwrap();
    assert_eq!(
        got,
        hops(&[
            (Tcp, "192.0.2.10:5070"),
            (Tcp, "[2001:db8::10]:5070"),
            (Tcp, "192.0.2.11:5071"),
            (Udp, "192.0.2.20:5080"),
        ])
    );
    let mut asked = dns.take();
    asked.dedup();
    assert_eq!(
        asked,
        [
            "A tcp1.naptr.example.test.",
            "A tcp2.naptr.example.test.",
            "A udp.naptr.example.test.",
            "AAAA tcp1.naptr.example.test.",
            "AAAA tcp2.naptr.example.test.",
            "AAAA udp.naptr.example.test.",
            "NAPTR naptr.example.test.",
            "SRV _sip._tcp.naptr.example.test.",
            "SRV _sip._udp.naptr.example.test.",
        ]
    );

    // A proxy that speaks TLS takes SIPS+D2T first (order 10).
    let tls = dns.resolver(Config { transports: vec![Udp, Tcp, Tls], ..config() });
    let got = tls.resolve(&name(None, "naptr.example.test", None)).await.unwrap();
    assert_eq!(got[0], (Tls, "192.0.2.1:5061".parse().unwrap()));
    assert_eq!(got.len(), 5);
}

#[tokio::test]
async fn srv_without_naptr() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let got = r.resolve(&name(None, "srv.example.test", None)).await.unwrap();
    // _sip._udp (priority 10: a, b, c by weight; then 20: backup), then
    // _sip._tcp; the name's own A record is not used.
    assert_eq!(got.len(), 5, "{got:?}");
    let mut first_three: Vec<String> = got[..3].iter().map(|(t, a)| format!("{t} {a}")).collect();
    first_three.sort();
    assert_eq!(first_three, ["UDP 192.0.2.31:5060", "UDP 192.0.2.32:5060", "UDP 192.0.2.33:5060"]);
    assert_eq!(got[3..], hops(&[(Udp, "192.0.2.34:5062"), (Tcp, "192.0.2.31:5060")]));
    assert_eq!(
        dns.take(),
        [
            "A a.srv.example.test.",
            "A b.srv.example.test.",
            "A backup.srv.example.test.",
            "A c.srv.example.test.",
            "AAAA a.srv.example.test.",
            "AAAA b.srv.example.test.",
            "AAAA backup.srv.example.test.",
            "AAAA c.srv.example.test.",
            "NAPTR srv.example.test.",
            "SRV _sip._tcp.srv.example.test.",
            "SRV _sip._udp.srv.example.test.",
        ]
    );

    // The same seed gives the same order; over many seeds the first choice
    // follows the weights 60/30/10 (RFC 2782).
    let again = dns.resolver(config());
    assert_eq!(again.resolve(&name(None, "srv.example.test", None)).await.unwrap(), got);
    assert_eq!(dns.take().len(), 11);
    let target = name(None, "srv.example.test", None);
    assert_eq!(r.resolve_seeded(&target, 7).await.unwrap(), r.resolve_seeded(&target, 7).await.unwrap());
    let mut firsts = [0u32; 3];
    for seed in 0..2000 {
        let got = r.resolve_seeded(&target, seed).await.unwrap();
        match got[0].1.ip().to_string().as_str() {
            "192.0.2.31" => firsts[0] += 1,
            "192.0.2.32" => firsts[1] += 1,
            "192.0.2.33" => firsts[2] += 1,
            other => panic!("{other} first"),
        }
    }
    let share = |n: u32| f64::from(n) / 2000.0;
    assert!((share(firsts[0]) - 0.6).abs() < 0.05, "{firsts:?}");
    assert!((share(firsts[1]) - 0.3).abs() < 0.05, "{firsts:?}");
    assert!((share(firsts[2]) - 0.1).abs() < 0.04, "{firsts:?}");
    // All of that from the cache.
    assert!(dns.take().is_empty());
}

#[tokio::test]
async fn no_naptr_no_srv_means_addresses_on_the_default_port() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let got = r.resolve(&name(None, "aonly.example.test", None)).await.unwrap();
    assert_eq!(got, hops(&[(Udp, "192.0.2.40:5060"), (Udp, "[2001:db8::40]:5060")]));
    assert_eq!(
        dns.take(),
        [
            "A aonly.example.test.",
            "AAAA aonly.example.test.",
            "NAPTR aonly.example.test.",
            "SRV _sip._tcp.aonly.example.test.",
            "SRV _sip._udp.aonly.example.test.",
        ]
    );
}

#[tokio::test]
async fn a_known_transport_without_port_is_srv_then_addresses() {
    // RFC 3263 §4.2 (a transport parameter, sips:) and §5 (a Via's sent-by name
    // without port): SRV for that transport only, no NAPTR.
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    assert_eq!(r.resolve(&name(Some(Tcp), "srv.example.test", None)).await.unwrap(), hops(&[(Tcp, "192.0.2.31:5060")]));
    assert_eq!(r.resolve(&name(Some(Tls), "srv.example.test", None)).await.unwrap(), hops(&[(Tls, "192.0.2.31:5061")]));
    let asked = dns.take();
    assert!(asked.contains(&"SRV _sips._tcp.srv.example.test.".to_string()), "{asked:?}");
    assert!(!asked.iter().any(|q| q.starts_with("NAPTR")), "{asked:?}");
    assert_eq!(
        r.resolve(&name(Some(Udp), "aonly.example.test", None)).await.unwrap(),
        hops(&[(Udp, "192.0.2.40:5060"), (Udp, "[2001:db8::40]:5060")])
    );
    assert_eq!(
        r.resolve(&name(Some(Tls), "aonly.example.test", None)).await.unwrap(),
        hops(&[(Tls, "192.0.2.40:5061"), (Tls, "[2001:db8::40]:5061")])
    );
}

#[tokio::test]
async fn naptr_leading_nowhere_falls_back_to_srv() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    assert_eq!(r.resolve(&name(None, "badnaptr.example.test", None)).await.unwrap(), hops(&[(Tcp, "192.0.2.31:5090")]));
}

#[tokio::test]
async fn srv_target_dot_means_unavailable() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let err = r.resolve(&name(Some(Udp), "gone.example.test", None)).await.unwrap_err();
    assert_eq!(err, ResolveError::Unavailable { name: "_sip._udp.gone.example.test.".into() });
}

#[tokio::test]
async fn positive_answers_are_kept_for_their_ttl() {
    let dns = Dns::start().await;
    let r = dns.resolver(Config { families: Families::Ipv4, ..config() });
    let target = name(Some(Udp), "short.example.test", Some(5060));
    let expected = hops(&[(Udp, "192.0.2.50:5060")]);
    assert_eq!(r.resolve(&target).await.unwrap(), expected);
    assert_eq!(dns.take(), ["A short.example.test."]);
    // Within the TTL (60 s): no query.
    assert_eq!(r.resolve(&target).await.unwrap(), expected);
    later(59).await;
    assert_eq!(r.resolve(&target).await.unwrap(), expected);
    assert!(dns.take().is_empty());
    // Past it: asked again.
    later(2).await;
    assert_eq!(r.resolve(&target).await.unwrap(), expected);
    assert_eq!(dns.take(), ["A short.example.test."]);

    // max_ttl caps a long TTL (aonly: 300 s).
    let capped = dns.resolver(Config { families: Families::Ipv4, max_ttl: Duration::from_secs(20), ..config() });
    let target = name(Some(Udp), "aonly.example.test", Some(5060));
    capped.resolve(&target).await.unwrap();
    later(19).await;
    capped.resolve(&target).await.unwrap();
    assert_eq!(dns.take(), ["A aonly.example.test."]);
    later(2).await;
    capped.resolve(&target).await.unwrap();
    assert_eq!(dns.take(), ["A aonly.example.test."]);
}

#[tokio::test]
async fn negative_answers_are_kept_briefly() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let target = name(None, "missing.example.test", None);
    let err = r.resolve(&target).await.unwrap_err();
    assert_eq!(err, ResolveError::NotFound { name: "missing.example.test.".into() });
    assert_eq!(err.to_string(), "no SIP server found for missing.example.test.");
    let all = [
        "A missing.example.test.",
        "AAAA missing.example.test.",
        "NAPTR missing.example.test.",
        "SRV _sip._tcp.missing.example.test.",
        "SRV _sip._udp.missing.example.test.",
    ];
    assert_eq!(dns.take(), all);
    assert_eq!(r.resolve(&target).await.unwrap_err(), err);
    // The SOA's negative TTL (10 s) is below negative_ttl (30 s): it counts.
    later(9).await;
    assert_eq!(r.resolve(&target).await.unwrap_err(), err);
    assert!(dns.take().is_empty());
    later(2).await;
    assert_eq!(r.resolve(&target).await.unwrap_err(), err);
    assert_eq!(dns.take(), all);

    // negative_ttl caps the SOA's.
    let brief = dns.resolver(Config { negative_ttl: Duration::from_secs(5), ..config() });
    brief.resolve(&target).await.unwrap_err();
    assert_eq!(dns.take().len(), 5);
    later(4).await;
    brief.resolve(&target).await.unwrap_err();
    assert!(dns.take().is_empty());
    later(2).await;
    brief.resolve(&target).await.unwrap_err();
    assert_eq!(dns.take().len(), 5);
}

#[tokio::test]
async fn concurrent_resolutions_share_their_queries() {
    let dns = Dns::start().await;
    let r = Arc::new(dns.resolver(config()));
    let target = name(None, "slow.example.test", Some(5060));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (r, target) = (r.clone(), target.clone());
            tokio::spawn(async move { r.resolve(&target).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), hops(&[(Udp, "192.0.2.60:5060")]));
    }
    // One A and one AAAA query for fifty resolutions.
    assert_eq!(dns.take(), ["A slow.example.test.", "AAAA slow.example.test."]);
}

#[tokio::test]
async fn the_cache_answers_without_waiting() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let target = name(None, "naptr.example.test", None);
    assert_eq!(r.resolve_cached(&target), None);
    let resolved = r.resolve_seeded(&target, 3).await.unwrap();
    assert_eq!(r.resolve_cached_seeded(&target, 3), Some(Ok(resolved)));
    let missing = name(Some(Udp), "missing.example.test", Some(5060));
    assert_eq!(r.resolve_cached(&missing), None);
    let err = r.resolve(&missing).await.unwrap_err();
    assert_eq!(r.resolve_cached(&missing), Some(Err(err)));
    // Addresses need no cache.
    let addr = Target::Addr { transport: Udp, addr: "192.0.2.1:5060".parse().unwrap() };
    assert_eq!(r.resolve_cached(&addr), Some(Ok(hops(&[(Udp, "192.0.2.1:5060")]))));
}

#[tokio::test]
async fn dns_failures_are_errors_with_their_reason() {
    // A name outside the server's zones: REFUSED.
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    let err = r.resolve(&name(Some(Udp), "host.elsewhere.test", Some(5060))).await.unwrap_err();
    let ResolveError::Dns { query, reason } = &err else { panic!("{err:?}") };
    assert_eq!(query, "A host.elsewhere.test.");
    assert!(reason.to_ascii_lowercase().contains("refused"), "{reason}");

    // A server that never answers: a timeout, remembered for failure_ttl.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        timeout: Some(Duration::from_millis(200)),
        attempts: Some(1),
        failure_ttl: Duration::from_secs(5),
        ..config()
    };
    let r = Resolver::with_name_servers(&[silent.local_addr().unwrap()], config).unwrap();
    let target = name(None, "aonly.example.test", None);
    let start = std::time::Instant::now();
    let err = r.resolve(&target).await.unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(200));
    let ResolveError::Dns { query, reason } = &err else { panic!("{err:?}") };
    assert!(query.starts_with("SRV _sip._"), "{query}");
    assert!(reason.contains("timed out") || reason.contains("connection"), "{reason}");
    assert!(err.to_string().starts_with("DNS query SRV _sip._"), "{err}");
    let start = std::time::Instant::now();
    assert_eq!(r.resolve(&target).await.unwrap_err(), err);
    assert!(start.elapsed() < Duration::from_millis(100));
    assert_eq!(r.resolve_cached(&target), Some(Err(err)));
    later(6).await;
    assert_eq!(r.resolve_cached(&target), None);
}

#[tokio::test]
async fn invalid_targets_are_refused() {
    let dns = Dns::start().await;
    let r = dns.resolver(config());
    for target in [name(None, "bad host", None), name(None, "a..b", None), name(Some(Udp), "x.example.test", Some(0))] {
        assert!(matches!(r.resolve(&target).await, Err(ResolveError::InvalidTarget { .. })), "{target:?}");
    }
    assert!(dns.take().is_empty());
}

#[tokio::test]
async fn the_hosts_file_comes_first() {
    let dns = Dns::start().await;
    let path = std::env::temp_dir().join(format!("serc-resolve-hosts-{}", std::process::id()));
    std::fs::write(&path, "# test\n192.0.2.77 pbx.hosts.test pbx\n2001:db8::77 pbx.hosts.test\n").unwrap();
    let r = dns.resolver(Config { hosts: HostsFile::Path(path.clone()), ..config() });
    let got = r.resolve(&name(Some(Udp), "pbx.hosts.test", Some(5060))).await.unwrap();
    assert_eq!(got, hops(&[(Udp, "192.0.2.77:5060"), (Udp, "[2001:db8::77]:5060")]));
    assert!(dns.take().is_empty());
    std::fs::remove_file(&path).unwrap();
    let missing = Resolver::with_name_servers(&[dns.addr], Config { hosts: HostsFile::Path(path), ..config() });
    assert!(matches!(missing, Err(ResolveError::Config(_))));
}

#[tokio::test]
async fn the_system_configuration_is_read() {
    // Whatever this machine's resolv.conf says, building never panics; nothing
    // is asked.
    match Resolver::system() {
        Ok(r) => assert_eq!(r.config().transports, [Udp, Tcp]),
        Err(e) => assert!(matches!(e, ResolveError::Config(_)), "{e}"),
    }
}
