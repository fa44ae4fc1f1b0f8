//! RFC 3263 server location: where a [`Target::Name`] is, as an ordered list of
//! (transport, address) to try, through NAPTR, SRV, A and AAAA records, with a
//! cache on tokio's clock.
//!
//! Unlike the sans-IO layers, this one does IO: DNS queries go through
//! `hickory-resolver` (its own cache turned off, so TTLs are counted here, on
//! tokio's clock), configured from `/etc/resolv.conf` ([`Resolver::system`]) or
//! given name servers ([`Resolver::with_name_servers`]), with `/etc/hosts` (or
//! another hosts file) answering A and AAAA queries first.
//!
//! What a [`Target`] resolves to (RFC 3263 §4 for requests, §5 for responses):
//!
//! - an address, or a name that is an IP literal: itself (the transport's default
//!   port when none is given; UDP when no transport is);
//! - a name with a port: its A/AAAA records at that port, over the target's
//!   transport (UDP when none; `next_hop` already says TLS for `sips:`), §4.2;
//! - a name with a transport and no port — a URI's `transport` parameter, a
//!   `sips:` URI, or a response's Via sent-by name (§5): the SRV records of
//!   `_sip._udp`, `_sip._tcp`, `_sip._sctp` or `_sips._tcp` (TLS) at the name; if
//!   there are none, its A/AAAA records at the transport's default port;
//! - a name with neither (a `sip:` URI, §4.1): its NAPTR records with the `S`
//!   flag and a service the proxy speaks (`SIP+D2U`, `SIP+D2T`, `SIP+D2S`,
//!   `SIPS+D2T`; [`Config::transports`]), by order then preference, each
//!   followed to its SRV records; without any, the SRV records of each
//!   transport in [`Config::transports`] order; without any, its A/AAAA records
//!   at port 5060 over UDP.
//!
//! SRV records are ordered by priority and, within one priority, by RFC 2782's
//! weighted random choice; each target's addresses follow in
//! [`Config::families`] order. The list has no duplicates; its first element is
//! where to send, the rest are for failover (§4.3). Records whose target is `.`
//! (service not available), port 0, and unspecified or broadcast addresses are
//! left out.
//!
//! Randomness: [`Resolver::resolve`] draws from a sequence seeded by
//! [`Config::seed`] (random when `None`); [`Resolver::resolve_seeded`] takes the
//! seed, so a stateless proxy can pick the same server for every retransmission
//! of a request by seeding with a hash of it (§4.4).

mod cache;
mod select;

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::future::join_all;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, ResolverBuilder, TokioResolver};
use tokio::time::Instant;

use self::cache::{Answer, Cache, Entry, Key, Kind, Records};
use self::select::{order_srv, srv_name, usable_naptrs, Naptr, Rng, Srv};
use crate::proxy::{parse_ip, Target, Transport};

/// At most this many usable NAPTR records are followed for one name.
const MAX_NAPTR: usize = 8;
/// At most this many SRV targets are looked up for one resolution.
const MAX_SRV_TARGETS: usize = 16;

/// Which address families a name's addresses are taken from, and in what order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Families {
    /// A records only.
    Ipv4,
    /// AAAA records only.
    Ipv6,
    /// A, then AAAA (both asked at once).
    #[default]
    Ipv4ThenIpv6,
    /// AAAA, then A.
    Ipv6ThenIpv4,
}

/// The hosts file that answers A and AAAA queries before the DNS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HostsFile {
    /// The system's (`/etc/hosts`); none if it cannot be read.
    #[default]
    System,
    /// This file (an error if it cannot be read).
    Path(PathBuf),
    /// None.
    None,
}

/// How a [`Resolver`] works. `Config::default()` suits a proxy.
#[derive(Clone, Debug)]
pub struct Config {
    /// The transports the proxy can send over: NAPTR services of others are
    /// ignored, and without NAPTR, SRV records are asked for these, in this
    /// order (`_sip._udp`, `_sip._tcp`, `_sips._tcp` …). Default: UDP, TCP (what
    /// the transport layer sends today; add TLS when it does). An empty list
    /// means UDP.
    pub transports: Vec<Transport>,
    /// Address families, in order. Default: IPv4 then IPv6.
    pub families: Families,
    /// The hosts file. Default: the system's (also for
    /// [`Resolver::with_name_servers`]: use [`HostsFile::None`] in tests).
    pub hosts: HostsFile,
    /// The most answers (one per name and record type) kept. Default: 4096.
    pub cache_capacity: usize,
    /// The longest a positive answer is kept, whatever its TTL. Default: 1 h.
    pub max_ttl: Duration,
    /// The longest a negative answer (NXDOMAIN, no record of the type) is kept;
    /// the SOA's negative TTL when shorter. Default: 30 s.
    pub negative_ttl: Duration,
    /// How long a failed query (no answer in time, SERVFAIL, REFUSED …) is
    /// remembered before it is asked again. Default: 5 s.
    pub failure_ttl: Duration,
    /// The time one DNS request may take, per attempt. `None`: resolv.conf's
    /// (`options timeout:`), else 5 s.
    pub timeout: Option<Duration>,
    /// Attempts per name server. `None`: resolv.conf's (`options attempts:`),
    /// else 2.
    pub attempts: Option<usize>,
    /// The seed of the weighted random choices among SRV records of one
    /// priority; `None`: a random one.
    pub seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            transports: vec![Transport::Udp, Transport::Tcp],
            families: Families::default(),
            hosts: HostsFile::default(),
            cache_capacity: 4096,
            max_ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(30),
            failure_ttl: Duration::from_secs(5),
            timeout: None,
            attempts: None,
            seed: None,
        }
    }
}

/// Why a target could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The target cannot be looked up as given (a malformed host name, port 0).
    InvalidTarget { host: String, reason: &'static str },
    /// The DNS knows no SIP server at this name: it does not exist, or none of
    /// its NAPTR, SRV, A and AAAA records leads to an address.
    NotFound { name: String },
    /// SRV records say the service is not available at this name (target `.`).
    Unavailable { name: String },
    /// A DNS query failed: no answer in time, SERVFAIL, REFUSED, a network error.
    Dns { query: String, reason: String },
    /// The resolver could not be set up (resolv.conf, the hosts file).
    Config(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::InvalidTarget { host, reason } => write!(f, "cannot resolve {host:?}: {reason}"),
            ResolveError::NotFound { name } => write!(f, "no SIP server found for {name}"),
            ResolveError::Unavailable { name } => write!(f, "SIP service not available at {name} (SRV target \".\")"),
            ResolveError::Dns { query, reason } => write!(f, "DNS query {query} failed: {reason}"),
            ResolveError::Config(why) => write!(f, "DNS resolver configuration: {why}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// One place to send: a transport and an address.
pub type Hop = (Transport, SocketAddr);

/// The SRV records found at one SRV name, and the transport they are for.
type SrvSet = (Transport, String, Vec<Srv>);

/// Why a resolution stopped early: an error, or (cache-only) an answer that is
/// not in the cache.
#[derive(Clone, Debug)]
enum Stop {
    Miss,
    Error(ResolveError),
}

impl From<ResolveError> for Stop {
    fn from(e: ResolveError) -> Stop {
        Stop::Error(e)
    }
}

/// Whether a resolution may query the DNS or reads only the cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Query,
    CacheOnly,
}

/// An RFC 3263 resolver with its cache. Share one (`Arc<Resolver>`) among all
/// workers: concurrent resolutions of one name share their queries.
pub struct Resolver {
    dns: TokioResolver,
    cache: Cache,
    config: Config,
    seed: u64,
    calls: AtomicU64,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver using the system's configuration (`/etc/resolv.conf`: name
    /// servers, search list, `options timeout:`/`attempts:`) and `/etc/hosts`,
    /// with [`Config::default`].
    pub fn system() -> Result<Resolver, ResolveError> {
        Resolver::system_with(Config::default())
    }

    /// A resolver using the system's name servers, with `config`.
    pub fn system_with(config: Config) -> Result<Resolver, ResolveError> {
        let builder = TokioResolver::builder_tokio()
            .map_err(|e| ResolveError::Config(format!("cannot read the system's resolver configuration: {e}")))?;
        Resolver::build(builder, config)
    }

    /// A resolver asking these name servers (UDP, and TCP for truncated
    /// answers), with `config`.
    pub fn with_name_servers(servers: &[SocketAddr], config: Config) -> Result<Resolver, ResolveError> {
        if servers.is_empty() {
            return Err(ResolveError::Config("no name server".into()));
        }
        let servers = servers
            .iter()
            .map(|s| {
                let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                for c in &mut ns.connections {
                    c.port = s.port();
                }
                ns
            })
            .collect();
        let builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        );
        Resolver::build(builder, config)
    }

    fn build(mut builder: ResolverBuilder<TokioRuntimeProvider>, mut config: Config) -> Result<Resolver, ResolveError> {
        if config.transports.is_empty() {
            config.transports.push(Transport::Udp);
        }
        let hosts = match &config.hosts {
            HostsFile::System => Hosts::from_system().unwrap_or_default(),
            HostsFile::Path(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| ResolveError::Config(format!("cannot open {}: {e}", path.display())))?;
                let mut hosts = Hosts::default();
                hosts
                    .read_hosts_conf(file)
                    .map_err(|e| ResolveError::Config(format!("cannot read {}: {e}", path.display())))?;
                hosts
            }
            HostsFile::None => Hosts::default(),
        };
        let opts = builder.options_mut();
        // TTLs are counted by our cache, on tokio's clock; hickory's cache (on
        // the system clock) is off, and every miss of ours is cleared from it
        // anyway before asking.
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        if let Some(t) = config.timeout {
            opts.timeout = t;
        }
        if let Some(a) = config.attempts {
            opts.attempts = a.max(1);
        }
        let mut dns = builder.build().map_err(|e| ResolveError::Config(e.to_string()))?;
        dns.set_hosts(Arc::new(hosts));
        let seed = config.seed.unwrap_or_else(|| RandomState::new().hash_one(0x5e5c_u64));
        Ok(Resolver { dns, cache: Cache::new(config.cache_capacity), config, seed, calls: AtomicU64::new(0) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where `target` is: the (transport, address) pairs to try, in order
    /// (RFC 3263 §4, §5; see the module's documentation). Never empty when `Ok`.
    pub async fn resolve(&self, target: &Target) -> Result<Vec<Hop>, ResolveError> {
        self.resolve_seeded(target, self.next_seed()).await
    }

    /// [`resolve`](Self::resolve) with the seed of the weighted random choices
    /// among SRV records given: the same seed and the same records give the
    /// same order.
    pub async fn resolve_seeded(&self, target: &Target, seed: u64) -> Result<Vec<Hop>, ResolveError> {
        match self.run(target, &mut Rng::new(seed), Mode::Query).await {
            Ok(hops) => Ok(hops),
            Err(Stop::Error(e)) => Err(e),
            // Only the cache-only mode misses.
            Err(Stop::Miss) => Err(ResolveError::Config("internal: a cache miss while querying".into())),
        }
    }

    /// [`resolve`](Self::resolve) from the cache alone, without waiting: `None`
    /// when an answer it needs is not cached (or has expired). A cached failure
    /// or negative answer is `Some(Err(_))`. For a synchronous caller: send at
    /// once on a hit, resolve asynchronously on `None`.
    pub fn resolve_cached(&self, target: &Target) -> Option<Result<Vec<Hop>, ResolveError>> {
        self.resolve_cached_seeded(target, self.next_seed())
    }

    /// [`resolve_cached`](Self::resolve_cached) with a given seed.
    pub fn resolve_cached_seeded(&self, target: &Target, seed: u64) -> Option<Result<Vec<Hop>, ResolveError>> {
        let mut rng = Rng::new(seed);
        let mut fut = pin!(self.run(target, &mut rng, Mode::CacheOnly));
        // In cache-only mode nothing waits: one poll finishes it.
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(hops)) => Some(Ok(hops)),
            Poll::Ready(Err(Stop::Error(e))) => Some(Err(e)),
            Poll::Ready(Err(Stop::Miss)) | Poll::Pending => None,
        }
    }

    fn next_seed(&self) -> u64 {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        Rng::new(self.seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F)).next_u64()
    }

    async fn run(&self, target: &Target, rng: &mut Rng, mode: Mode) -> Result<Vec<Hop>, Stop> {
        let (transport, host, port) = match target {
            Target::Addr { transport, addr } => return Ok(vec![(*transport, *addr)]),
            Target::Name { transport, host, port } => (*transport, host.as_str(), *port),
        };
        if port == Some(0) {
            return Err(ResolveError::InvalidTarget { host: host.into(), reason: "port 0" }.into());
        }
        if let Some(ip) = parse_ip(host) {
            let t = transport.unwrap_or(Transport::Udp);
            return Ok(vec![(t, SocketAddr::new(ip, port.unwrap_or(t.default_port())))]);
        }
        let name = dns_name(host)?;
        let hops = match (transport, port) {
            // §4.2: a port means A/AAAA only (§5 likewise for a Via's sent-by).
            (t, Some(port)) => {
                let t = t.unwrap_or(Transport::Udp);
                self.addresses(&name, mode).await?.into_iter().map(|ip| (t, SocketAddr::new(ip, port))).collect()
            }
            // §4.2 with a known transport, §5: SRV for it, else A/AAAA.
            (Some(t), None) => {
                let (sets, failure) = self.srv_sets(&[(t, srv_name(t, &name))], mode).await?;
                if !sets.is_empty() {
                    self.expand(sets, rng, mode).await?
                } else if let Some(e) = failure {
                    return Err(e.into());
                } else {
                    self.on_default_port(&name, t, mode).await?
                }
            }
            // §4.1: NAPTR, else SRV per transport, else A/AAAA.
            (None, None) => self.discover(&name, rng, mode).await?,
        };
        Ok(dedup(hops))
    }

    /// §4.1 for a name without transport or port.
    async fn discover(&self, name: &str, rng: &mut Rng, mode: Mode) -> Result<Vec<Hop>, Stop> {
        let naptr = self.lookup(name, Kind::Naptr, mode).await?;
        match &naptr.answer {
            Answer::Records(Records::Naptr(records)) => {
                let mut usable = usable_naptrs(records, &self.config.transports);
                usable.truncate(MAX_NAPTR);
                let (sets, failure) = self.srv_sets(&usable, mode).await?;
                // NAPTR records leading to SRV records decide. Otherwise (none for
                // us, or their SRV names have no record) go on as without NAPTR.
                if !sets.is_empty() {
                    return self.expand(sets, rng, mode).await;
                }
                if let Some(e) = failure {
                    tracing::debug!(name, error = %e, "NAPTR records led to no SRV record; trying SRV");
                }
            }
            // A server failing NAPTR queries (some do) must not hide the rest.
            Answer::Failed(why) => tracing::debug!(name, why, "NAPTR query failed; trying SRV"),
            _ => {}
        }
        let wanted: Vec<(Transport, String)> = self.config.transports.iter().map(|&t| (t, srv_name(t, name))).collect();
        let (sets, failure) = self.srv_sets(&wanted, mode).await?;
        if !sets.is_empty() {
            return self.expand(sets, rng, mode).await;
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        // No SRV: UDP for a sip: URI (TCP would be for sips:, which next_hop has
        // already made TLS), unless the proxy does not speak UDP.
        let t =
            if self.config.transports.contains(&Transport::Udp) { Transport::Udp } else { self.config.transports[0] };
        self.on_default_port(name, t, mode).await
    }

    async fn on_default_port(&self, name: &str, t: Transport, mode: Mode) -> Result<Vec<Hop>, Stop> {
        let port = t.default_port();
        Ok(self.addresses(name, mode).await?.into_iter().map(|ip| (t, SocketAddr::new(ip, port))).collect())
    }

    /// The SRV records of each `(transport, SRV name)`, asked at once: the sets
    /// found (in the order asked) and the first failure.
    async fn srv_sets(
        &self,
        wanted: &[(Transport, String)],
        mode: Mode,
    ) -> Result<(Vec<SrvSet>, Option<ResolveError>), Stop> {
        let answers = join_all(wanted.iter().map(|(_, srv)| self.lookup(srv, Kind::Srv, mode))).await;
        let mut sets = Vec::new();
        let mut failure = None;
        for ((t, srv), answer) in wanted.iter().zip(answers) {
            match &answer?.answer {
                Answer::Records(Records::Srv(records)) => sets.push((*t, srv.clone(), records.clone())),
                Answer::Failed(why) => {
                    failure.get_or_insert(ResolveError::Dns { query: format!("SRV {srv}"), reason: why.clone() });
                }
                _ => {}
            }
        }
        Ok((sets, failure))
    }

    /// SRV sets to hops: each set ordered (RFC 2782), then each target's
    /// addresses (asked at once).
    async fn expand(&self, sets: Vec<SrvSet>, rng: &mut Rng, mode: Mode) -> Result<Vec<Hop>, Stop> {
        let mut plan: Vec<(Transport, u16, String)> = Vec::new();
        for (t, _, records) in &sets {
            plan.extend(order_srv(records, rng).into_iter().filter(|r| r.port != 0).map(|r| (*t, r.port, r.target)));
        }
        if plan.is_empty() {
            let names: Vec<&str> = sets.iter().map(|(_, name, _)| name.as_str()).collect();
            return Err(ResolveError::Unavailable { name: names.join(", ") }.into());
        }
        plan.truncate(MAX_SRV_TARGETS);
        let mut targets: Vec<&str> = Vec::new();
        for (_, _, target) in &plan {
            if !targets.contains(&target.as_str()) {
                targets.push(target);
            }
        }
        let found = join_all(targets.iter().map(|t| self.addresses(t, mode))).await;
        let mut hops = Vec::new();
        let mut failure = None;
        for (t, port, target) in &plan {
            let i = targets.iter().position(|x| x == target).unwrap_or(0);
            match &found[i] {
                Ok(ips) => hops.extend(ips.iter().map(|ip| (*t, SocketAddr::new(*ip, *port)))),
                Err(Stop::Miss) => return Err(Stop::Miss),
                Err(Stop::Error(e)) => {
                    failure.get_or_insert_with(|| e.clone());
                }
            }
        }
        if hops.is_empty() {
            return Err(failure.unwrap_or(ResolveError::NotFound { name: targets.join(", ") }).into());
        }
        Ok(hops)
    }

    /// A name's addresses, in [`Config::families`] order (A and AAAA asked at
    /// once).
    async fn addresses(&self, name: &str, mode: Mode) -> Result<Vec<IpAddr>, Stop> {
        let kinds: &[Kind] = match self.config.families {
            Families::Ipv4 => &[Kind::A],
            Families::Ipv6 => &[Kind::Aaaa],
            Families::Ipv4ThenIpv6 => &[Kind::A, Kind::Aaaa],
            Families::Ipv6ThenIpv4 => &[Kind::Aaaa, Kind::A],
        };
        let answers = join_all(kinds.iter().map(|&k| self.lookup(name, k, mode))).await;
        let mut ips = Vec::new();
        let mut failure = None;
        for (kind, answer) in kinds.iter().zip(answers) {
            match &answer?.answer {
                Answer::Records(Records::Addrs(a)) => ips.extend_from_slice(a),
                Answer::Failed(why) => {
                    failure.get_or_insert(ResolveError::Dns {
                        query: format!("{} {name}", kind_name(*kind)),
                        reason: why.clone(),
                    });
                }
                _ => {}
            }
        }
        if !ips.is_empty() {
            return Ok(ips);
        }
        Err(failure.unwrap_or_else(|| ResolveError::NotFound { name: name.to_string() }).into())
    }

    /// One answer: from the cache, or asked (once for all concurrent askers).
    async fn lookup(&self, name: &str, kind: Kind, mode: Mode) -> Result<Arc<Entry>, Stop> {
        let key = Key { name: name.to_string(), kind };
        match mode {
            Mode::CacheOnly => self.cache.fresh(&key).ok_or(Stop::Miss),
            Mode::Query => Ok(self.cache.get_or_fetch(&key, || self.query(&key)).await),
        }
    }

    /// Asks the DNS (or the hosts file).
    async fn query(&self, key: &Key) -> Entry {
        let rtype = match key.kind {
            Kind::Naptr => RecordType::NAPTR,
            Kind::Srv => RecordType::SRV,
            Kind::A => RecordType::A,
            Kind::Aaaa => RecordType::AAAA,
        };
        let failed =
            |why: String| Entry { answer: Answer::Failed(why), expires: Instant::now() + self.config.failure_ttl };
        let name = match Name::from_ascii(&key.name) {
            Ok(name) => name,
            Err(e) => return failed(format!("not a DNS name: {e}")),
        };
        self.dns.clear_lookup_cache(name.clone(), rtype);
        let result = self.dns.lookup(name, rtype).await;
        let now = Instant::now();
        match result {
            Ok(lookup) => {
                let mut ttl = u32::MAX;
                let mut records = match key.kind {
                    Kind::Naptr => Records::Naptr(Vec::new()),
                    Kind::Srv => Records::Srv(Vec::new()),
                    Kind::A | Kind::Aaaa => Records::Addrs(Vec::new()),
                };
                for record in lookup.answers().iter().filter(|r| r.record_type() == rtype) {
                    let taken = match (&mut records, &record.data) {
                        (Records::Naptr(v), RData::NAPTR(n)) => {
                            v.push(Naptr {
                                order: n.order,
                                preference: n.preference,
                                flags: String::from_utf8_lossy(&n.flags).to_ascii_lowercase(),
                                services: String::from_utf8_lossy(&n.services).to_ascii_uppercase(),
                                has_regexp: !n.regexp.is_empty(),
                                replacement: fqdn(&n.replacement),
                            });
                            true
                        }
                        (Records::Srv(v), RData::SRV(s)) => {
                            v.push(Srv {
                                priority: s.priority,
                                weight: s.weight,
                                port: s.port,
                                target: fqdn(&s.target),
                            });
                            true
                        }
                        (Records::Addrs(v), data) => match data.ip_addr() {
                            Some(ip) if usable_ip(ip) => {
                                v.push(ip);
                                true
                            }
                            _ => false,
                        },
                        _ => false,
                    };
                    if taken {
                        ttl = ttl.min(record.ttl);
                    }
                }
                let empty = match &records {
                    Records::Naptr(v) => v.is_empty(),
                    Records::Srv(v) => v.is_empty(),
                    Records::Addrs(v) => v.is_empty(),
                };
                tracing::debug!(name = key.name, kind = kind_name(key.kind), ?records, ttl, "DNS answer");
                if empty {
                    return Entry { answer: Answer::NoRecords, expires: now + self.config.negative_ttl };
                }
                let ttl = Duration::from_secs(u64::from(ttl)).min(self.config.max_ttl);
                Entry { answer: Answer::Records(records), expires: now + ttl }
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(no))) => {
                tracing::debug!(name = key.name, kind = kind_name(key.kind), code = %no.response_code, "no record");
                let ttl = no.negative_ttl.map_or(self.config.negative_ttl, |t| {
                    Duration::from_secs(u64::from(t)).min(self.config.negative_ttl)
                });
                Entry { answer: Answer::NoRecords, expires: now + ttl }
            }
            Err(e) => {
                tracing::debug!(name = key.name, kind = kind_name(key.kind), error = %e, "DNS query failed");
                failed(e.to_string())
            }
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Naptr => "NAPTR",
        Kind::Srv => "SRV",
        Kind::A => "A",
        Kind::Aaaa => "AAAA",
    }
}

/// A name as the cache keys it: lower-case, with its trailing dot.
fn fqdn(name: &Name) -> String {
    let mut s = name.to_lowercase().to_ascii();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// A target's host as a DNS name: lower-case; a name with a dot is absolute (a
/// trailing dot added, so the search list never applies), a single label is
/// left relative (the search list of resolv.conf applies, as it does for
/// OpenSER's resolver).
fn dns_name(host: &str) -> Result<String, ResolveError> {
    let invalid = |reason| ResolveError::InvalidTarget { host: host.to_string(), reason };
    let bare = host.strip_suffix('.').unwrap_or(host);
    if bare.is_empty() || bare.len() > 253 {
        return Err(invalid("not a host name (empty or too long)"));
    }
    if !bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return Err(invalid("not a host name (a character other than letters, digits, '-', '_', '.')"));
    }
    if bare.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(invalid("not a host name (an empty label or one over 63 characters)"));
    }
    let mut name = bare.to_ascii_lowercase();
    if name.contains('.') {
        name.push('.');
    }
    Ok(name)
}

/// Addresses nothing is sent to (as the proxy layer refuses them).
fn usable_ip(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    !ip.is_unspecified() && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

fn dedup(hops: Vec<Hop>) -> Vec<Hop> {
    let mut out: Vec<Hop> = Vec::with_capacity(hops.len());
    for h in hops {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert_eq!(dns_name("Example.TEST").unwrap(), "example.test.");
        assert_eq!(dns_name("example.test.").unwrap(), "example.test.");
        assert_eq!(dns_name("sipserver").unwrap(), "sipserver");
        assert!(dns_name("").is_err());
        assert!(dns_name("a..b").is_err());
        assert!(dns_name("a b").is_err());
        assert!(dns_name(&"a".repeat(64)).is_err());
        assert!(matches!(dns_name("x y"), Err(ResolveError::InvalidTarget { .. })));
    }

    #[test]
    fn unusable_addresses() {
        assert!(!usable_ip("0.0.0.0".parse().unwrap()));
        assert!(!usable_ip("255.255.255.255".parse().unwrap()));
        assert!(!usable_ip("::".parse().unwrap()));
        assert!(usable_ip("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn errors_say_why() {
        let e = ResolveError::Dns { query: "SRV _sip._udp.example.test.".into(), reason: "request timed out".into() };
        assert_eq!(e.to_string(), "DNS query SRV _sip._udp.example.test. failed: request timed out");
    }
}
