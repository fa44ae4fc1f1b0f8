//! Starting a compiled config: what the config's globals say ([`Settings`]),
//! what the command line or the embedding program overrides, and the process
//! around the server (logging, signals). Generated code builds a [`Launch`];
//! `serc build`'s `main` calls [`Launch::main`], an embedding program
//! configures it and calls [`Launch::start`] on its own tokio runtime.
//!
//! What overrides what: `--listen` (or [`Launch::listen`]) replaces every
//! `listen=`; `--workers` ([`Launch::workers`]) replaces `children=`;
//! `--log-level` replaces `debug=`.
//!
//! Listens ([`ListenSpec`]): without a protocol, UDP and TCP (UDP only with
//! `disable_tcp=yes`); a host name is resolved once, at start, to its first
//! address; no listen at all is OpenSER's default, every interface on port
//! 5060. A wildcard (`*`, `0.0.0.0`, `::`) is bound as such, but what the
//! proxy writes in its Via and Record-Route and recognises as `myself` must be
//! a real address: the address of the interface the default route leaves from
//! (found by connecting a UDP socket to a documentation address, which sends
//! nothing), or the loopback address when there is no route. That socket's
//! [`Local`] keeps the wildcard as its address and that real address as its
//! advertised one. Interface names (`eth0`) are refused for now.
//!
//! Log levels: OpenSER's `debug=N` prints a line whose level number is at most
//! N (`L_ALERT` -3, `L_CRIT` -2, `L_ERR` -1, `L_WARN` 1, `L_NOTICE` 2,
//! `L_INFO` 3, `L_DBG` 4), and [`crate::modules::core::emit`] maps those
//! levels to `tracing`'s (`L_ERR` and above ERROR, `L_WARN` WARN, `L_NOTICE`
//! and `L_INFO` INFO, `L_DBG` DEBUG). [`level_for_debug`] is the filter that
//! keeps exactly what `debug=N` prints, as finely as `tracing`'s levels allow:
//! N ≤ 0 ERROR, 1 WARN, 2 and 3 INFO, 4 or more DEBUG. Without `debug=`, 1.3's
//! default is `L_NOTICE` (2): INFO. `setdebug(n)` then hides more of the
//! script's own lines in a worker, never shows what this filter hides.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use tracing::level_filters::LevelFilter;

use crate::app::{Proxy, Script};
use crate::proxy::{Local, Transport};
use crate::resolve::Resolver;
use crate::script::Config;
use crate::transport::{Listen, Server, ServerConfig, ServerHandle, StartError, UdpLayout};

/// What a config's global parameters say about running it.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The config's file name, for `--version` and the first log line.
    pub cfg_name: String,
    /// A digest of the config's sources (hex), for `--version`.
    pub cfg_hash: String,
    /// `listen=` sockets in order; empty: OpenSER's default (every interface, port 5060).
    pub listens: Vec<ListenSpec>,
    /// `children=`: workers.
    pub children: Option<usize>,
    /// `debug=`: OpenSER's log level (-3 alert … 4 debug).
    pub debug: Option<i64>,
    /// `fork=yes` (accepted and ignored with a warning: a service manager daemonizes).
    pub fork: bool,
    /// `disable_tcp=yes`: a `listen=` without protocol is UDP only.
    pub disable_tcp: bool,
    /// `maxbuffer=`: the size the UDP sockets' receive buffers are raised to
    /// (bytes, brought into [`MAXBUFFER_RANGE`]); `None`: serc's default,
    /// [`DEFAULT_MAXBUFFER`].
    pub maxbuffer: Option<usize>,
    /// What the routes run with: aliases, modparams, the `Server:` header
    /// (`locals` are filled in once the sockets are bound).
    pub config: Config,
}

/// serc's `maxbuffer` default: 2 MiB, eight times OpenSER's 256 KiB
/// (`MAX_RECV_BUFFER_SIZE`, which OpenSER probes `SO_RCVBUF` up to). serc asks
/// for it in one call; Linux doubles what is asked and caps it at
/// `net.core.rmem_max`, and a larger system default is kept. Why larger: with a
/// socket per worker (`SO_REUSEPORT`) one busy peer's datagrams all reach one
/// worker's socket, which must absorb their bursts alone. Measured with the
/// stateful relay at 6,000 calls/s (bench/harness, 10 s steps): 256 KiB lost
/// 67–166 datagrams per step to the full buffer and failed on SIPp's
/// retransmissions; 1 and 2 MiB lost none in four steps and passed. The
/// memory is only used while datagrams wait.
pub const DEFAULT_MAXBUFFER: usize = 2 * 1024 * 1024;

/// The `maxbuffer` sizes serc asks for: `--maxbuffer` outside it is refused,
/// a config's `maxbuffer=` brought to its nearer end.
pub const MAXBUFFER_RANGE: std::ops::RangeInclusive<usize> = 1024..=1 << 30;

/// One `listen=` value: `[proto:]host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// `None`: every protocol the proxy serves (UDP and TCP).
    pub transport: Option<Transport>,
    /// An IP address (IPv6 in brackets), a host name, an interface name or `*`.
    pub host: String,
    /// `None`: 5060.
    pub port: Option<u16>,
}

impl ListenSpec {
    /// `proto:ip:port` (`ip` an IPv4 address or an IPv6 one, without brackets).
    pub fn new(transport: Option<Transport>, ip: IpAddr, port: Option<u16>) -> ListenSpec {
        let host = match ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        ListenSpec { transport, host, port }
    }
}

/// `[proto:]host[:port]`, as `listen=` and `--listen` write it: `proto` one of
/// `udp`, `tcp`, `tls`, `sctp` (only UDP and TCP can be served for now);
/// `host` an IPv4 address, an IPv6 address (in brackets when a port follows),
/// a host name or `*`; `port` 0 to 65535 (0: a free port chosen when binding).
impl FromStr for ListenSpec {
    type Err = ListenParseError;

    fn from_str(text: &str) -> Result<ListenSpec, ListenParseError> {
        let error = |why: &str| ListenParseError(format!("`{text}`: {why} (expected [udp:|tcp:]HOST[:PORT])"));
        let text = text.trim();
        let (transport, rest) = match text.split_once(':') {
            Some((proto, rest)) if !rest.is_empty() => match Transport::parse(proto) {
                Some(t) => (Some(t), rest),
                None => (None, text),
            },
            _ => (None, text),
        };
        let port = |p: &str| p.parse::<u16>().map_err(|_| error(&format!("`{p}` is not a port (0 to 65535)")));
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (ip, tail) = inner.split_once(']').ok_or_else(|| error("a `[` without `]`"))?;
            let ip: Ipv6Addr = ip.parse().map_err(|_| error(&format!("`{ip}` is not an IPv6 address")))?;
            let port = match tail {
                "" => None,
                _ => Some(port(tail.strip_prefix(':').ok_or_else(|| error("`:` expected after `]`"))?)?),
            };
            (format!("[{ip}]"), port)
        } else if rest.matches(':').count() > 1 {
            let ip: Ipv6Addr = rest
                .parse()
                .map_err(|_| error("an IPv6 address followed by a port must be in brackets: [::1]:5060"))?;
            (format!("[{ip}]"), None)
        } else {
            match rest.split_once(':') {
                Some((host, p)) => (host.to_string(), Some(port(p)?)),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(error("no host"));
        }
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':');
        if host != "*" && !host.chars().all(name_char) {
            return Err(error(&format!("`{host}` is not an address or a host name")));
        }
        Ok(ListenSpec { transport, host, port })
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.transport {
            write!(f, "{}:", t.name())?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// A listen that does not parse ([`ListenSpec`]'s `FromStr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenParseError(String);

impl fmt::Display for ListenParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ListenParseError {}

/// Why a proxy did not start. Nothing is left bound or running.
#[derive(Debug)]
pub enum LaunchError {
    /// A listen names nothing that can be bound: a host name that does not
    /// resolve, an interface name.
    Listen { spec: ListenSpec, reason: String },
    /// The server did not start (a socket cannot be bound, no listens, no workers …).
    Server(StartError),
    /// A module's database cannot be used (bad `db_url`, unreachable, wrong
    /// table versions …).
    Database(String),
    /// A management interface transport (`mi_fifo`, `mi_datagram`) cannot
    /// start (no `fifo_name`, a socket that cannot be bound …).
    Mi(String),
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::Listen { spec, reason } => write!(f, "cannot listen on {spec}: {reason}"),
            LaunchError::Server(e) => e.fmt(f),
            LaunchError::Database(e) | LaunchError::Mi(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for LaunchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LaunchError::Listen { .. } | LaunchError::Database(_) | LaunchError::Mi(_) => None,
            LaunchError::Server(e) => Some(e),
        }
    }
}

impl From<StartError> for LaunchError {
    fn from(e: StartError) -> LaunchError {
        LaunchError::Server(e)
    }
}

/// OpenSER 1.3's `debug` when a config does not set it (`L_NOTICE`).
pub const DEFAULT_DEBUG: i64 = 2;

/// The `tracing` filter that keeps what OpenSER's `debug=N` prints (see the
/// module's documentation): N ≤ 0 ERROR, 1 WARN, 2 and 3 INFO, 4 or more DEBUG.
pub fn level_for_debug(debug: i64) -> LevelFilter {
    match debug {
        i64::MIN..=0 => LevelFilter::ERROR,
        1 => LevelFilter::WARN,
        2 | 3 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    }
}

/// `--log-level`: a `tracing` level name or an OpenSER number.
fn parse_log_level(text: &str) -> Result<LevelFilter, String> {
    match text.to_ascii_lowercase().as_str() {
        "error" => Ok(LevelFilter::ERROR),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "info" => Ok(LevelFilter::INFO),
        "debug" => Ok(LevelFilter::DEBUG),
        "trace" => Ok(LevelFilter::TRACE),
        other => match other.parse::<i64>() {
            Ok(n) if (-3..=4).contains(&n) => Ok(level_for_debug(n)),
            _ => Err("expected error, warn, info, debug, trace, or OpenSER's number -3 to 4".to_string()),
        },
    }
}

fn at_least_one(text: &str, what: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a number of {what}, at least 1")),
    }
}

fn parse_maxbuffer(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if MAXBUFFER_RANGE.contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a buffer size: bytes, from {} to {}",
            MAXBUFFER_RANGE.start(),
            MAXBUFFER_RANGE.end()
        )),
    }
}

fn parse_max_transactions(text: &str) -> Result<usize, String> {
    at_least_one(text, "transactions")
}

fn parse_udp_layout(text: &str) -> Result<UdpLayout, String> {
    match text {
        "per-worker" => Ok(UdpLayout::SocketPerWorker),
        "shared" => Ok(UdpLayout::SharedSocket),
        _ => Err("expected per-worker or shared".to_string()),
    }
}

fn parse_workers(text: &str) -> Result<usize, String> {
    at_least_one(text, "workers")
}

const AFTER_HELP: &str = "\
Overrides: --listen replaces every listen= of the config (repeat it for several sockets),
--workers replaces children=, --log-level replaces debug=. Without any listen, the proxy
listens on every interface on port 5060 (UDP and TCP, or UDP only with disable_tcp=yes).

Output: logs go to stderr only. Once every socket is bound, stdout gets one line per
socket, e.g. `listening on udp:192.0.2.10:5060` (the port chosen for port 0 included).
Log levels: error, warn, info, debug, trace, or OpenSER's debug= numbers (0 or less:
error, 1: warn, 2-3: info, 4: debug); the default is info (OpenSER's default debug=2).

Management: --mi-fifo, --mi-datagram and --http open the management interface (MI) even
when the config loads no MI module; each listening door is announced on stdout like the
SIP sockets (`management on fifo:/tmp/openser_fifo`, `management on http:127.0.0.1:8080`).
Drive it with `serc ctl` (e.g. `serc ctl --fifo /tmp/openser_fifo ps`) or OpenSER's tools.

Signals: SIGTERM or SIGINT stop the proxy cleanly (exit status 0); SIGHUP is logged and
ignored (restart the proxy to load a changed config). The proxy stays in the foreground
(fork=yes is ignored): let a service manager run it.

Exit status: 0 after a clean stop, 1 when the proxy cannot start (a socket cannot be
bound, a host name does not resolve …), 2 for a bad command line.";

/// The command line of a built proxy ([`Launch::main`]).
#[derive(Clone, Debug, Parser)]
#[command(disable_version_flag = true, after_help = AFTER_HELP)]
pub struct Cli {
    /// Listen on this socket instead of the config's listen= (repeat for several).
    /// PROTO: udp or tcp (left out: both); IP: an address (IPv6 in brackets), a host
    /// name or * (every interface); PORT: 5060 when left out, 0 for a free port
    #[arg(long = "listen", value_name = "PROTO:IP:PORT")]
    pub listen: Vec<ListenSpec>,

    /// Worker threads, and receive tasks per UDP socket (overrides children=;
    /// default: children=, else one per CPU)
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// How the workers share a UDP listen: per-worker (a socket per worker with
    /// SO_REUSEPORT; the kernel spreads peers over them by address, so one busy peer
    /// lands on one worker) or shared (one socket all workers read) [default: per-worker]
    #[arg(long, value_name = "LAYOUT", value_parser = parse_udp_layout)]
    pub udp_layout: Option<UdpLayout>,

    /// The size UDP receive buffers are raised to, in bytes (overrides maxbuffer=;
    /// default 2097152; OpenSER's is 262144; Linux doubles it and caps it at
    /// net.core.rmem_max). What arrives while the buffer is full is dropped
    #[arg(long, value_name = "BYTES", value_parser = parse_maxbuffer)]
    pub maxbuffer: Option<usize>,

    /// The most transactions tm keeps at once; beyond them new requests get 503
    /// (default 500000, about 3 KB each)
    #[arg(long, value_name = "N", value_parser = parse_max_transactions)]
    pub max_transactions: Option<usize>,

    /// error, warn, info, debug, trace, or OpenSER's number -3 to 4 (overrides debug=;
    /// without either: info)
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level, allow_negative_numbers = true)]
    pub log_level: Option<LevelFilter>,

    /// Serve the management interface (MI) on this FIFO, as mi_fifo does: replaces the
    /// config's fifo_name, and loads mi_fifo when the config does not
    #[arg(long, value_name = "PATH")]
    pub mi_fifo: Option<std::path::PathBuf>,

    /// Serve the MI on this datagram socket, as mi_datagram does: a unix socket path
    /// (unix:PATH or PATH) or udp:IP:PORT on a local address (port 0: a free one)
    #[arg(long, value_name = "SOCKET")]
    pub mi_datagram: Option<String>,

    /// Serve JSON-RPC 2.0 (POST /rpc: any MI command) and Prometheus metrics (GET /metrics,
    /// with a processing-time histogram) over HTTP on this loopback address (port 0: a
    /// free one). Off by default
    #[arg(long, value_name = "IP:PORT")]
    pub http: Option<SocketAddr>,

    /// Print the config's name and digest and serc's version
    #[arg(short = 'V', long)]
    pub version: bool,
}

impl Cli {
    /// Parses a command line (`args[0]` the program's name) as [`Launch::main`]
    /// does, the help naming the config. `--help` is an `Err` too
    /// ([`clap::Error::print`] shows it).
    pub fn parse_for<I, T>(settings: &Settings, args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let about = match settings.cfg_name.as_str() {
            "" => "A SIP proxy compiled by serc".to_string(),
            name => format!("The SIP proxy serc compiled from {name}"),
        };
        let matches = Cli::command().about(about).try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    /// The log level: `--log-level`, else the config's `debug=`, else
    /// OpenSER's default ([`DEFAULT_DEBUG`]: INFO).
    pub fn log_level(&self, settings: &Settings) -> LevelFilter {
        self.log_level.unwrap_or_else(|| level_for_debug(settings.debug.unwrap_or(DEFAULT_DEBUG)))
    }
}

/// `--version`: `<cfg_name> (config <cfg_hash>) built by serc <version>`.
pub fn version_line(settings: &Settings) -> String {
    format!("{} (config {}) built by serc {}", settings.cfg_name, settings.cfg_hash, env!("CARGO_PKG_VERSION"))
}

/// A compiled config ready to start.
pub struct Launch<S> {
    pub script: S,
    pub settings: Settings,
    /// `--listen` / [`Launch::listen`]: replaces `settings.listens`.
    listens: Option<Vec<ListenSpec>>,
    /// `--workers` / [`Launch::workers`]: replaces `settings.children`.
    workers: Option<usize>,
    resolver: Option<Arc<Resolver>>,
    /// `--http` / [`Launch::http`]: the HTTP door of the MI.
    http: Option<SocketAddr>,
    /// `--udp-layout` / [`Launch::udp_layout`].
    udp_layout: Option<UdpLayout>,
}

impl<S: Script> Launch<S> {
    pub fn new(script: S, settings: Settings) -> Launch<S> {
        Launch { script, settings, listens: None, workers: None, resolver: None, http: None, udp_layout: None }
    }

    /// How the workers share each UDP listen ([`UdpLayout`]; default: a
    /// socket per worker).
    pub fn udp_layout(mut self, layout: UdpLayout) -> Self {
        self.udp_layout = Some(layout);
        self
    }

    /// Serves the MI's HTTP door (JSON-RPC and `/metrics`, see
    /// [`crate::mi::http`]) on `addr`, a loopback address; turns the
    /// processing-time histogram on.
    pub fn http(mut self, addr: SocketAddr) -> Self {
        self.http = Some(addr);
        self
    }

    /// Listens on `spec`: the first call replaces the config's `listen=`,
    /// later calls add to it.
    pub fn listen(mut self, spec: ListenSpec) -> Self {
        self.listens.get_or_insert_with(Vec::new).push(spec);
        self
    }

    /// Runs `n` workers (receive tasks per UDP socket), instead of `children=`.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Resolves host names with `resolver` instead of the system's
    /// ([`Proxy::with_resolver`]).
    pub fn with_resolver(mut self, resolver: Arc<Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Applies a command line's `--listen` and `--workers` ([`Launch::listen`],
    /// [`Launch::workers`]).
    pub fn with_args(mut self, cli: &Cli) -> Self {
        for spec in &cli.listen {
            self = self.listen(spec.clone());
        }
        if let Some(n) = cli.workers {
            self = self.workers(n);
        }
        if let Some(n) = cli.max_transactions {
            self.settings.config.max_transactions = Some(n);
        }
        if let Some(n) = cli.maxbuffer {
            self.settings.maxbuffer = Some(n);
        }
        let params = &mut self.settings.config.params;
        if let Some(path) = &cli.mi_fifo {
            params.load("mi_fifo");
            params.set("mi_fifo", "fifo_name", crate::script::Value::Str(path.to_string_lossy().into_owned()));
        }
        if let Some(socket) = &cli.mi_datagram {
            params.load("mi_datagram");
            params.set("mi_datagram", "socket_name", crate::script::Value::Str(socket.clone()));
        }
        if let Some(addr) = cli.http {
            self = self.http(addr);
        }
        if let Some(layout) = cli.udp_layout {
            self = self.udp_layout(layout);
        }
        self
    }

    /// The listens the proxy will bind: the overrides, else `listen=`, else
    /// OpenSER's default (`*`: every interface, port 5060).
    pub fn listen_specs(&self) -> Vec<ListenSpec> {
        let specs = self.listens.as_ref().unwrap_or(&self.settings.listens);
        if specs.is_empty() {
            vec![ListenSpec { transport: None, host: "*".to_string(), port: None }]
        } else {
            specs.clone()
        }
    }

    /// The number of workers: the override, else `children=`, else one per CPU.
    pub fn worker_count(&self) -> usize {
        self.workers.or(self.settings.children).unwrap_or_else(|| ServerConfig::default().workers)
    }

    /// Binds every listen and starts the proxy on the current tokio runtime
    /// (a multi-threaded one spreads the workers over its threads). Fails, with
    /// nothing left bound, when a listen cannot be resolved or bound.
    pub async fn start(self) -> Result<Running, LaunchError> {
        let listens = self.socket_list().await?;
        // Databases first: a proxy that cannot keep what it acknowledges does not start.
        let params = &self.settings.config.params;
        if params.is_loaded("dbtext") {
            crate::db::dbtext::set_db_mode(params.int("dbtext", "db_mode"));
        }
        crate::modules::usrloc::start(&self.settings.config).await.map_err(LaunchError::Database)?;
        crate::modules::acc::start(&self.settings.config).await.map_err(LaunchError::Database)?;
        crate::modules::auth_db::start(&self.settings.config).await.map_err(LaunchError::Database)?;
        crate::modules::domain::start(&self.settings.config).await.map_err(LaunchError::Database)?;
        crate::modules::uri_db::start(&self.settings.config).await.map_err(LaunchError::Database)?;
        crate::modules::avpops::start(&self.settings.config).await.map_err(LaunchError::Database)?;
        let workers = self.worker_count();
        let udp_layout = self.udp_layout.unwrap_or_default();
        let maxbuffer = self.settings.maxbuffer.unwrap_or(DEFAULT_MAXBUFFER);
        let udp_recv_buffer = Some(maxbuffer.clamp(*MAXBUFFER_RANGE.start(), *MAXBUFFER_RANGE.end()));
        let bound =
            Server::bind(ServerConfig { listens, workers, udp_layout, udp_recv_buffer, ..ServerConfig::default() })
                .await?;
        // MI (src/mi/): the transports the config loads, once the SIP sockets are bound.
        let mi = self.settings.config.mi.clone();
        mi.mark_started();
        mi.set_debug_level(self.settings.debug.unwrap_or(DEFAULT_DEBUG));
        for listen in bound.listens() {
            mi.add_process(format!("SIP receiver {listen}"));
        }
        let mut mi_transports = crate::mi::start(&self.settings.config).await.map_err(LaunchError::Mi)?;
        if let Some(addr) = self.http {
            let histogram = mi.enable_histogram();
            mi_transports
                .push(crate::mi::http::start(addr, mi.clone(), Some(histogram)).await.map_err(LaunchError::Mi)?);
        }
        // End of the MI start.
        let locals = locals_for(bound.listens());
        let Launch { script, settings, resolver, .. } = self;
        let config = Config { locals: locals.clone(), ..settings.config };
        // tm's MI commands send from the proxy's sockets: registered now.
        if config.params.is_loaded("tm") {
            crate::modules::tm::register_mi(&config);
        }
        let usrloc = config.usrloc.clone();
        let mut proxy = Proxy::new(script, config);
        if let Some(resolver) = resolver {
            proxy = proxy.with_resolver(resolver);
        }
        let server = bound.start(Arc::new(proxy)).await;
        Ok(Running { server, locals, usrloc, mi, mi_transports })
    }

    /// The sockets to bind, in order: each listen for each of its transports,
    /// its host resolved; duplicates left out.
    async fn socket_list(&self) -> Result<Vec<Listen>, LaunchError> {
        let mut out: Vec<Listen> = Vec::new();
        for spec in self.listen_specs() {
            let transports = match spec.transport {
                Some(Transport::Tcp) if self.settings.disable_tcp => {
                    tracing::warn!(listen = %spec, "a TCP listen with disable_tcp=yes: left out");
                    continue;
                }
                Some(t) => vec![t],
                None if self.settings.disable_tcp => vec![Transport::Udp],
                None => vec![Transport::Udp, Transport::Tcp],
            };
            let port = spec.port.unwrap_or(5060);
            let ip = bind_ip(&spec, port).await?;
            for transport in transports {
                let port = spec.port.unwrap_or(transport.default_port());
                let listen = Listen { transport, addr: SocketAddr::new(ip, port) };
                if port != 0 && out.contains(&listen) {
                    tracing::warn!(%listen, "listed twice: bound once");
                    continue;
                }
                out.push(listen);
            }
        }
        Ok(out)
    }

    /// Runs the proxy as a program: reads the command line, logs to stderr,
    /// serves until SIGTERM or SIGINT. See [`Cli`] and the module's
    /// documentation.
    pub fn main(self) -> ExitCode {
        one_malloc_arena();
        let cli = match Cli::parse_for(&self.settings, std::env::args_os()) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
        };
        if cli.version {
            println!("{}", version_line(&self.settings));
            return ExitCode::SUCCESS;
        }
        // The level is reloadable: MI's `debug N` changes it (src/mi/core.rs).
        {
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            let (level, handle) = tracing_subscriber::reload::Layer::new(cli.log_level(&self.settings));
            let logger = tracing_subscriber::fmt::layer()
                .event_format(crate::log::LineFormat)
                .with_writer(crate::log::Gathered::new(io::stderr));
            if tracing_subscriber::registry().with(level).with(logger).try_init().is_ok() {
                self.settings.config.mi.set_debug_hook(move |n| {
                    if let Err(e) = handle.reload(level_for_debug(n)) {
                        tracing::error!("MI debug: cannot change the log level: {e}");
                    }
                });
            }
        }
        tracing::info!("{}: starting", version_line(&self.settings));
        match self.with_args(&cli).serve() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// [`Launch::main`] once the command line is read and logging set up.
    fn serve(self) -> Result<(), String> {
        if self.settings.fork {
            tracing::warn!("fork=yes is ignored: serc runs in the foreground (let a service manager daemonize it)");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.worker_count().max(1))
            .thread_name("serc-worker")
            .enable_all()
            .build()
            .map_err(|e| format!("no tokio runtime: {e}"))?;
        let served = runtime.block_on(async move {
            // Before binding: a signal sent once the sockets are announced is handled.
            let mut stop = StopSignals::install().map_err(|e| format!("cannot handle signals: {e}"))?;
            let running = self.start().await.map_err(|e| e.to_string())?;
            trim_heap();
            announce(&running.listens(), &running.mi().endpoints());
            let signal = stop.wait().await;
            tracing::info!("{signal}: shutting down");
            running.shutdown().await;
            Ok(())
        });
        runtime.shutdown_timeout(Duration::from_secs(2));
        served
    }
}

/// Prints `listening on udp:127.0.0.1:5060` for each socket on stdout, then
/// `management on fifo:/tmp/openser_fifo` for each MI door.
fn announce(listens: &[Listen], mi: &[String]) {
    let mut out = io::stdout().lock();
    for listen in listens {
        let _ = writeln!(out, "listening on {listen}");
    }
    for door in mi {
        let _ = writeln!(out, "management on {door}");
    }
    let _ = out.flush();
}

/// The signals that stop the process (and SIGHUP, logged and ignored).
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    #[cfg(unix)]
    fn install() -> io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT; returns its name.
    #[cfg(unix)]
    async fn wait(&mut self) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => {
                    tracing::warn!("SIGHUP ignored: restart the proxy to load a changed config");
                }
            }
        }
    }

    #[cfg(not(unix))]
    fn install() -> io::Result<StopSignals> {
        Ok(StopSignals {})
    }

    #[cfg(not(unix))]
    async fn wait(&mut self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(e) => {
                tracing::error!("cannot wait for Ctrl-C: {e}");
                std::future::pending().await
            }
        }
    }
}

/// A started proxy ([`Launch::start`]). Dropping it stops the server's tasks
/// without waiting for them; [`Running::shutdown`] waits.
pub struct Running {
    server: ServerHandle,
    locals: Vec<Local>,
    /// Flushed at shutdown (usrloc's write-back, `db_mode` 2).
    usrloc: crate::modules::usrloc::Location,
    /// The management interface and its transports (stopped at shutdown;
    /// dropping them stops them too).
    mi: crate::mi::Mi,
    mi_transports: Vec<crate::mi::Transport>,
}

impl Running {
    /// The sockets as bound (the port chosen for port 0, a wildcard address
    /// as such), in the order of the listens.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.server.listens().iter().map(|l| (l.transport, l.addr)).collect()
    }

    /// The same, as the transport layer's [`Listen`]s.
    pub fn listens(&self) -> Vec<Listen> {
        self.server.listens().to_vec()
    }

    /// The sockets as the routes see them (`myself`, our Via): for a wildcard,
    /// the address it advertises.
    pub fn locals(&self) -> &[Local] {
        &self.locals
    }

    /// The running server (to send from outside the routes, count connections …).
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// The management interface: its commands, statistics, and where its
    /// transports listen ([`crate::mi::Mi::endpoints`]).
    pub fn mi(&self) -> &crate::mi::Mi {
        &self.mi
    }

    /// Stops receiving, closes every socket and connection, and returns once
    /// every task of the server has ended and usrloc's changes waiting for
    /// write-back (`db_mode` 2) are written.
    pub async fn shutdown(self) {
        for transport in self.mi_transports {
            transport.stop().await;
        }
        self.server.shutdown().await;
        if let Err(e) = self.usrloc.flush().await {
            tracing::error!("usrloc: the last write-back failed: {e}");
        }
    }
}

/// The address to bind for a listen: its IP, `*` the IPv4 wildcard, a host
/// name's first address.
async fn bind_ip(spec: &ListenSpec, port: u16) -> Result<IpAddr, LaunchError> {
    let fail = |reason: String| LaunchError::Listen { spec: spec.clone(), reason };
    let host = spec.host.as_str();
    if host == "*" {
        return Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    if is_interface(host) {
        return Err(fail(format!(
            "`{host}` is a network interface: interface names are not supported yet, listen on its address"
        )));
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => {
                tracing::info!(listen = %spec, address = %addr.ip(), "host name resolved");
                Ok(addr.ip())
            }
            None => Err(fail(format!("the host name `{host}` has no address"))),
        },
        Err(e) => Err(fail(format!("cannot resolve the host name `{host}`: {e}"))),
    }
}

/// Whether `name` is a network interface of this host (Linux only; elsewhere
/// it is looked up as a host name and fails as one).
fn is_interface(name: &str) -> bool {
    !name.contains(['/', '.']) && std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The proxy's view of its sockets: a wildcard keeps its bound address and
/// advertises the address of the default route's interface.
fn locals_for(listens: &[Listen]) -> Vec<Local> {
    let mut routed: [Option<IpAddr>; 2] = [None, None];
    listens
        .iter()
        .map(|l| {
            if !l.addr.ip().is_unspecified() {
                return Local::new(l.transport, l.addr);
            }
            let v6 = l.addr.is_ipv6();
            let ip = *routed[usize::from(v6)].get_or_insert_with(|| default_route_ip(v6));
            tracing::info!(
                listen = %l,
                address = %ip,
                "every interface: our Via and `myself` use the address of the default route's interface"
            );
            Local { advertised: Some((ip.to_string(), l.addr.port())), ..Local::new(l.transport, l.addr) }
        })
        .collect()
}

/// The local address of the interface the default route leaves from: a UDP
/// socket "connected" to a documentation address (nothing is sent) reads it.
/// The loopback address when there is no route.
fn default_route_ip(v6: bool) -> IpAddr {
    let (any, probe, fallback): (SocketAddr, SocketAddr, IpAddr) = if v6 {
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
            Ipv6Addr::LOCALHOST.into(),
        )
    } else {
        ((Ipv4Addr::UNSPECIFIED, 0).into(), (Ipv4Addr::new(192, 0, 2, 1), 9).into(), Ipv4Addr::LOCALHOST.into())
    };
    std::net::UdpSocket::bind(any)
        .and_then(|s| {
            s.connect(probe)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(fallback)
}

/// One malloc arena for the whole proxy (glibc), unless the environment's
/// `MALLOC_ARENA_MAX` says otherwise; called before any thread starts.
///
/// glibc gives each thread that finds the main arena busy an arena of its
/// own, and such an arena grows one `mprotect` at a time, a page or so
/// each: a proxy whose tables fill (transactions lingering 32 s, new
/// registrations) made over 20,000 of them in 5 s. The main arena grows by
/// `brk`, 128 KiB at a time. The workers allocate mostly from their
/// per-thread caches (tcache), so the arena's one lock costs little.
/// Measured with the bench harness, three interleaved pairs each (ms of
/// proxy CPU per 1,000 calls or registrations, default → one arena):
/// registrar at 8,000/s 7.5/6.5/6.6 → 6.2/6.0/6.5, at 2,000/s 9.0/9.0/8.5 →
/// 9.0/8.0/8.0; stateful relay at 3,000/s 64.7/62.3/61.7 → 59.3/62.7/56.3,
/// at 2,000/s 81.0/74.0/71.0 → 71.0/67.0/59.5. Within the noise: the
/// stateless relay at 4,000/s (31.5/28.0/33.0 → 27.5/33.0/33.0), the
/// registrar with auth at 4,000/s (22.2/18.2/17.5 → 22.5/18.8/18.0), the
/// default config at 3,000/s (66.3/66.7/68.7 → 66.0/74.0/62.3). Idle PSS
/// 0.3–0.6 MB higher.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt takes two integers and changes only malloc's own
        // settings; no thread of the proxy has started yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Gives the kernel back the heap pages start-up used and freed (tables
/// loaded, statements prepared, the config's settings read), called once the
/// proxy serves: glibc returns only the top of its heap by itself and keeps
/// free pages in the middle, which count in the idle proxy's memory. Measured
/// on the register-auth proxy (dbtext: its tables loaded into SQLite at
/// start), `malloc_trim(0)` called into the running proxy took its idle PSS
/// from 9.46 to 8.75 MB (anonymous 2.01 → 1.30 MB).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes an integer and only releases free memory
    // of malloc's own heaps (under its locks); it is safe from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_specs_parse_and_print() {
        let cases = [
            ("udp:127.0.0.1:5060", Some(Transport::Udp), "127.0.0.1", Some(5060)),
            ("TCP:10.0.0.1", Some(Transport::Tcp), "10.0.0.1", None),
            ("127.0.0.1:0", None, "127.0.0.1", Some(0)),
            ("udp:[::1]:5070", Some(Transport::Udp), "[::1]", Some(5070)),
            ("[::1]", None, "[::1]", None),
            ("::", None, "[::]", None),
            ("tcp:*:5060", Some(Transport::Tcp), "*", Some(5060)),
            ("sip.example.com", None, "sip.example.com", None),
            ("eth0", None, "eth0", None),
        ];
        for (text, transport, host, port) in cases {
            let spec: ListenSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec, ListenSpec { transport, host: host.to_string(), port }, "{text}");
            assert_eq!(spec.to_string().parse::<ListenSpec>().unwrap(), spec, "{text} round trip");
        }
        for bad in ["", "udp:", "udp:127.0.0.1:70000", "udp:[::1", "[::1]5060", "::1:x:5060", "a b", "host:"] {
            assert!(bad.parse::<ListenSpec>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn debug_levels_follow_openser() {
        assert_eq!(level_for_debug(-5), LevelFilter::ERROR);
        assert_eq!(level_for_debug(0), LevelFilter::ERROR);
        assert_eq!(level_for_debug(1), LevelFilter::WARN);
        assert_eq!(level_for_debug(DEFAULT_DEBUG), LevelFilter::INFO);
        assert_eq!(level_for_debug(3), LevelFilter::INFO);
        assert_eq!(level_for_debug(4), LevelFilter::DEBUG);
        assert_eq!(level_for_debug(9), LevelFilter::DEBUG);
        assert_eq!(parse_log_level("-3"), Ok(LevelFilter::ERROR));
        assert_eq!(parse_log_level("TRACE"), Ok(LevelFilter::TRACE));
        assert!(parse_log_level("5").is_err());
        assert!(parse_log_level("loud").is_err());
    }

    #[test]
    fn a_wildcard_advertises_a_real_address() {
        let listens = [Listen::udp("0.0.0.0:5060".parse().unwrap()), Listen::tcp("127.0.0.1:5070".parse().unwrap())];
        let locals = locals_for(&listens);
        assert_eq!(locals[0].addr, listens[0].addr);
        let (host, port) = locals[0].advertised.clone().expect("advertised");
        let ip: IpAddr = host.parse().expect("an address");
        assert!(!ip.is_unspecified() && ip.is_ipv4());
        assert_eq!(port, 5060);
        assert_eq!(locals[1], Local::new(Transport::Tcp, listens[1].addr));
    }
}
