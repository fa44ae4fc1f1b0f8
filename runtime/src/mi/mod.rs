//! The management interface (MI) of OpenSER 1.3: commands an operator runs
//! on a live proxy (`openserctl fifo ps`, `get_statistics all` …), their
//! replies, the statistics they read, and the transports that carry them.
//!
//! - [`tree`]: a reply — code, reason and a tree of nodes — and its JSON form;
//! - [`text`]: the text format of requests and replies the FIFO and the
//!   datagram socket share (sans-IO);
//! - [`stats`]: counters and gauges under 1.3's names;
//! - [`core`]: 1.3's core commands (`which`, `ps`, `uptime`, `version`,
//!   `pwd`, `arg`, `kill`, `debug`, `get_statistics`, `reset_statistics`);
//! - [`fifo`] and [`datagram`]: the `mi_fifo` and `mi_datagram` modules.
//!
//! [`Mi`] is the registry: commands by name, in registration order (as
//! `which` lists them), and the statistics. It lives in
//! [`crate::script::Config`] (`config.mi`), so every module's `start` can
//! register its commands and take its counters, and the launcher starts the
//! transports with it.
//!
//! A command is a name, how many arguments it takes, and an async handler
//! (commands such as tm's `t_uac_dlg` wait for the network) that receives the
//! argument values and returns a [`MiReply`]. The registry answers for the
//! commands themselves what 1.3's commands answer: an unknown name, `500
//! command 'NAME' not available`; a wrong number of arguments, `400 Too few or
//! too many arguments`. A command registered with [`Arity::NoInput`] ignores
//! its arguments, as 1.3's `MI_NO_INPUT_FLAG` commands do.
//!
//! A handler is not handed the [`crate::script::Config`]: it captures what it
//! needs when it is registered (a clone of the location table, of tm's slot,
//! a [`Counter`] …), in the module's `start`, which has the config and reaches
//! the registry as `config.mi`.
//!
//! Registering a command (from a module's `start`):
//!
//! ```
//! use serc_runtime::mi::{Arity, Mi, MiNode, MiReply};
//! # async fn demo() {
//! let mi = Mi::new();
//! let hits = mi.stats().counter("mymod", "hits");
//! let h = hits.clone();
//! mi.register("my_hits", Arity::Exactly(0), move |_args| {
//!     MiReply::ok().node(MiNode::new("hits", h.get().to_string()))
//! });
//! hits.inc();
//! let reply = mi.run("my_hits", vec![]).await;
//! assert_eq!(reply.nodes[0].value.as_deref(), Some("1"));
//! # }
//! ```

pub mod core;
pub mod counters;
#[cfg(unix)]
pub mod datagram;
#[cfg(unix)]
pub mod fifo;
pub mod histogram;
pub mod http;
pub mod stats;
pub mod text;
pub mod tree;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::SystemTime;

use futures_util::future::BoxFuture;

pub use stats::{Counter, StatValue, Stats};
pub use tree::{MiNode, MiReply};

/// How many arguments a command takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Arguments are ignored (1.3's `MI_NO_INPUT_FLAG`: the transport reads
    /// and drops them).
    NoInput,
    Exactly(usize),
    /// From `min` to `max` (inclusive).
    Between(usize, usize),
    AtLeast(usize),
}

impl Arity {
    fn accepts(&self, n: usize) -> bool {
        match *self {
            Arity::NoInput => true,
            Arity::Exactly(k) => n == k,
            Arity::Between(lo, hi) => (lo..=hi).contains(&n),
            Arity::AtLeast(lo) => n >= lo,
        }
    }
}

/// A command's handler: the argument values in, the reply out. `None` is
/// 1.3's failed command (the transports write `500 command 'NAME' failed`).
pub type Handler = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, Option<MiReply>> + Send + Sync>;

#[derive(Clone)]
struct Command {
    name: String,
    arity: Arity,
    handler: Handler,
}

/// What running a command came to (the transports need the difference
/// between an unknown command, a failed one and a reply, which 1.3 writes
/// differently).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Reply(MiReply),
    /// No such command.
    NotAvailable,
    /// The command ran and failed without a reply.
    Failed,
}

/// A hook called with OpenSER's log level when `debug` changes it.
pub type DebugHook = Arc<dyn Fn(i64) + Send + Sync>;
/// A hook called by `kill` instead of sending SIGTERM to the process.
pub type KillHook = Arc<dyn Fn() + Send + Sync>;

struct Inner {
    commands: RwLock<Vec<Command>>,
    stats: Stats,
    /// The handles of the statistics the SIP path bumps ([`counters`]).
    core: counters::CoreCounters,
    sl: OnceLock<counters::SlCounters>,
    tm: OnceLock<counters::TmCounters>,
    registrar: OnceLock<counters::RegistrarCounters>,
    /// The processing-time histogram, once the HTTP door turns it on.
    histogram: OnceLock<Arc<histogram::Histogram>>,
    started: RwLock<SystemTime>,
    /// OpenSER's `debug` level (−3 … 4), as `debug` reads and sets it.
    debug: AtomicI64,
    debug_hook: RwLock<Option<DebugHook>>,
    kill_hook: RwLock<Option<KillHook>>,
    /// What `ps` lists besides the main process (the MI transports, the SIP sockets).
    processes: RwLock<Vec<String>>,
    /// Where the transports listen (`fifo:/tmp/openser_fifo`, `udp:127.0.0.1:8080` …).
    endpoints: RwLock<Vec<String>>,
}

/// The MI registry: commands and statistics, shared by clones.
#[derive(Clone)]
pub struct Mi(Arc<Inner>);

impl Default for Mi {
    fn default() -> Self {
        Mi::new()
    }
}

impl fmt::Debug for Mi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mi").field("commands", &self.commands()).field("stats", &self.0.stats).finish()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, f: impl FnOnce(&mut T)) {
    f(&mut lock.write().unwrap_or_else(|e| e.into_inner()))
}

impl Mi {
    /// A registry with 1.3's core statistics and core commands.
    pub fn new() -> Mi {
        let stats = Stats::new();
        let mi = Mi(Arc::new(Inner {
            commands: RwLock::new(Vec::new()),
            core: counters::CoreCounters::new(&stats),
            sl: OnceLock::new(),
            tm: OnceLock::new(),
            registrar: OnceLock::new(),
            histogram: OnceLock::new(),
            stats,
            started: RwLock::new(SystemTime::now()),
            debug: AtomicI64::new(2),
            debug_hook: RwLock::new(None),
            kill_hook: RwLock::new(None),
            processes: RwLock::new(Vec::new()),
            endpoints: RwLock::new(Vec::new()),
        }));
        core::register(&mi);
        mi
    }

    /// The statistics.
    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// The processing-time histogram, when on (the pipeline times each
    /// message only then: off, it costs one atomic load per message).
    #[inline]
    pub fn histogram(&self) -> Option<&Arc<histogram::Histogram>> {
        self.0.histogram.get()
    }

    /// Turns the processing-time histogram on (what `/metrics` shows).
    pub fn enable_histogram(&self) -> Arc<histogram::Histogram> {
        self.0.histogram.get_or_init(|| Arc::new(histogram::Histogram::new())).clone()
    }

    /// The core's statistics.
    #[inline]
    pub fn core(&self) -> &counters::CoreCounters {
        &self.0.core
    }

    /// sl's statistics (registered on first use).
    #[inline]
    pub fn sl(&self) -> &counters::SlCounters {
        self.0.sl.get_or_init(|| counters::SlCounters::new(&self.0.stats))
    }

    /// tm's statistics (registered on first use).
    #[inline]
    pub fn tm(&self) -> &counters::TmCounters {
        self.0.tm.get_or_init(|| counters::TmCounters::new(&self.0.stats))
    }

    /// registrar's statistics (registered on first use, its settings from `params`).
    #[inline]
    pub fn registrar(&self, params: &crate::script::ModParams) -> &counters::RegistrarCounters {
        self.0.registrar.get_or_init(|| counters::RegistrarCounters::new(&self.0.stats, params))
    }

    /// Registers `name` with a synchronous handler (replaces a command of
    /// the same name).
    pub fn register(&self, name: &str, arity: Arity, handler: impl Fn(Vec<String>) -> MiReply + Send + Sync + 'static) {
        self.register_async(name, arity, move |args| std::future::ready(Some(handler(args))));
    }

    /// Registers `name` with an async handler; `None` from it is a failed
    /// command (1.3's handler returning no tree).
    pub fn register_async<F>(
        &self,
        name: &str,
        arity: Arity,
        handler: impl Fn(Vec<String>) -> F + Send + Sync + 'static,
    ) where
        F: Future<Output = Option<MiReply>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |args| Box::pin(handler(args)));
        let command = Command { name: name.to_string(), arity, handler };
        write(&self.0.commands, |cmds| match cmds.iter_mut().find(|c| c.name == name) {
            Some(c) => *c = command,
            None => cmds.push(command),
        });
    }

    /// The command names, in registration order.
    pub fn commands(&self) -> Vec<String> {
        self.0.commands.read().unwrap_or_else(|e| e.into_inner()).iter().map(|c| c.name.clone()).collect()
    }

    fn lookup(&self, name: &str) -> Option<Command> {
        self.0.commands.read().unwrap_or_else(|e| e.into_inner()).iter().find(|c| c.name == name).cloned()
    }

    /// Whether `name` is a command.
    pub fn has(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// Whether `name` is a command that ignores its input (the transports
    /// skip parsing its arguments, as 1.3 does).
    pub fn ignores_input(&self, name: &str) -> bool {
        self.lookup(name).is_some_and(|c| c.arity == Arity::NoInput)
    }

    /// Runs `command` with `args`: what the transports call.
    pub async fn dispatch(&self, command: &str, args: Vec<String>) -> Outcome {
        let Some(cmd) = self.lookup(command) else { return Outcome::NotAvailable };
        let args = if cmd.arity == Arity::NoInput { Vec::new() } else { args };
        if !cmd.arity.accepts(args.len()) {
            return Outcome::Reply(MiReply::missing_param());
        }
        match (cmd.handler)(args).await {
            Some(reply) => Outcome::Reply(reply),
            None => Outcome::Failed,
        }
    }

    /// Runs `command` with `args` and always answers: an unknown command is
    /// `500 command 'NAME' not available`, a failed one `500 command 'NAME'
    /// failed` (the lines 1.3's FIFO writes).
    pub async fn run(&self, command: &str, args: Vec<String>) -> MiReply {
        match self.dispatch(command, args).await {
            Outcome::Reply(r) => r,
            Outcome::NotAvailable => MiReply::new(500, format!("command '{command}' not available")),
            Outcome::Failed => MiReply::new(500, format!("command '{command}' failed")),
        }
    }

    /// Restarts `uptime`'s clock (the launcher calls it when the proxy starts).
    pub fn mark_started(&self) {
        write(&self.0.started, |t| *t = SystemTime::now());
    }

    /// When the proxy started.
    pub fn started(&self) -> SystemTime {
        read(&self.0.started)
    }

    /// OpenSER's log level as `debug` reports it.
    pub fn debug_level(&self) -> i64 {
        self.0.debug.load(Ordering::Relaxed)
    }

    /// Records the log level without calling the hook (the launcher, at start).
    pub fn set_debug_level(&self, level: i64) {
        self.0.debug.store(level, Ordering::Relaxed);
    }

    /// Sets the hook `debug N` calls with N (the launcher's logger reload).
    /// Without one, `debug N` records N and changes nothing else.
    pub fn set_debug_hook(&self, hook: impl Fn(i64) + Send + Sync + 'static) {
        write(&self.0.debug_hook, |h| *h = Some(Arc::new(hook)));
    }

    /// Sets what `kill` does instead of sending SIGTERM to the process.
    pub fn set_kill_hook(&self, hook: impl Fn() + Send + Sync + 'static) {
        write(&self.0.kill_hook, |h| *h = Some(Arc::new(hook)));
    }

    /// Adds a line to what `ps` lists (a transport, a socket …).
    pub fn add_process(&self, description: impl Into<String>) {
        let d = description.into();
        write(&self.0.processes, |p| p.push(d));
    }

    /// What `ps` lists besides the main process.
    pub fn processes(&self) -> Vec<String> {
        read(&self.0.processes)
    }

    /// Records where a transport listens (see [`Mi::endpoints`]).
    pub fn add_endpoint(&self, endpoint: impl Into<String>) {
        let e = endpoint.into();
        write(&self.0.endpoints, |p| p.push(e));
    }

    /// Where the MI transports listen: `fifo:PATH`, `unix:PATH`, `udp:IP:PORT`
    /// (the port as bound, for `udp:…:0`).
    pub fn endpoints(&self) -> Vec<String> {
        read(&self.0.endpoints)
    }

    fn debug_hook(&self) -> Option<DebugHook> {
        read(&self.0.debug_hook)
    }

    fn kill_hook(&self) -> Option<KillHook> {
        read(&self.0.kill_hook)
    }
}

/// A started transport ([`fifo::start`], [`datagram::start`]): its task
/// ends when [`Transport::stop`] is awaited or the handle is dropped.
pub struct Transport {
    name: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Transport {
    fn new(name: String, stop: tokio::sync::watch::Sender<bool>, task: tokio::task::JoinHandle<()>) -> Transport {
        Transport { name, stop, task: Some(task) }
    }

    /// What it serves (`fifo:/tmp/openser_fifo` …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the transport and waits for its task (which removes its FIFO or
    /// socket file).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").field("name", &self.name).finish()
    }
}

/// Starts the transports the config loads (`mi_fifo`, `mi_datagram`) on the
/// config's registry. A transport that cannot start is an error: 1.3 refuses
/// to start without its FIFO.
pub async fn start(config: &crate::script::Config) -> Result<Vec<Transport>, String> {
    counters::register_loaded(config);
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        if let Some(t) = fifo::start(config, &config.mi).await? {
            out.push(t);
        }
        if let Some(t) = datagram::start(config, &config.mi).await? {
            out.push(t);
        }
    }
    #[cfg(not(unix))]
    {
        for m in ["mi_fifo", "mi_datagram"] {
            if config.params.is_loaded(m) {
                return Err(format!("{m} needs a Unix system"));
            }
        }
    }
    Ok(out)
}

/// How many requests a transport runs at once; more wait (backpressure on
/// the FIFO or the socket, never on SIP).
const MAX_IN_FLIGHT: usize = 16;
