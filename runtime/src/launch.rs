//! Starting a compiled config: what the config's globals say ([`Settings`]),
//! what the command line or the embedding program overrides, and the process
//! around the server (logging, signals). Generated code builds a [`Launch`];
//! `serc build`'s `main` calls [`Launch::main`], an embedding program
//! configures it and calls [`Launch::start`] on its own tokio runtime.

use crate::app::Script;
use crate::proxy::Transport;
use crate::script::Config;

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
    /// What the routes run with: aliases, modparams, the `Server:` header
    /// (`locals` are filled in once the sockets are bound).
    pub config: Config,
}

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

/// A compiled config ready to start.
pub struct Launch<S> {
    pub script: S,
    pub settings: Settings,
}

impl<S: Script> Launch<S> {
    pub fn new(script: S, settings: Settings) -> Launch<S> {
        Launch { script, settings }
    }

    /// Runs the proxy as a program: reads the command line, logs to stderr,
    /// serves until SIGTERM or SIGINT.
    pub fn main(self) -> std::process::ExitCode {
        std::process::ExitCode::FAILURE
    }
}
