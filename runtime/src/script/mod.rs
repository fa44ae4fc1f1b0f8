//! The script context: what the code generated from a cfg — and the core and
//! module functions it calls — works on while one message goes through a
//! route. Sans-IO: messages to send are collected in [`Ctx::out`]; the
//! transport layer sends them.
//!
//! Conventions every function follows (OpenSER's): a function returns an
//! `i32` — greater than 0 is true, less than 0 false, 0 ends the script (as
//! `exit` does). `$retcode` is the last function's code.

pub mod args;
pub mod pv;
pub mod rt;
pub mod value;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

pub use value::{AvpName, Avps, Value, Vars};

use crate::proxy::{Local, Source, Target};
use crate::sip::{Edits, Message, StartLine};

/// The route type the code runs in (what the manifests call `Routes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Request,
    Failure,
    OnReply,
    Branch,
    Error,
}

/// How a route's code ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// It returned (or fell off its end) with this code.
    Return(i32),
    /// `exit`, or a function returned 0: the script ends.
    Exit,
    /// `drop`: the script ends; in a branch route the branch is dropped, in a
    /// reply route a provisional reply is.
    Drop,
}

/// An extra branch (`append_branch`, registrar lookups with several contacts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branch {
    pub uri: String,
    pub dst_uri: Option<String>,
    /// q-value in thousandths (1000 = 1.0).
    pub q: Option<u16>,
    pub flags: u32,
    pub send_socket: Option<SocketAddr>,
    /// The Path the branch follows (registrar's `use_path`): sent as a Route
    /// header at the top of the request.
    pub path: Option<String>,
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub bytes: Bytes,
    pub target: Target,
    /// The local socket to send from (`force_send_socket`), if chosen.
    pub from: Option<SocketAddr>,
}

/// OpenSER's error classes (`$err.class`).
pub const ERR_CLASS_PARSER: i64 = 1;

/// `$err.*` in the error route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrInfo {
    pub class: i64,
    pub level: i64,
    pub info: String,
    pub rcode: i64,
    pub rreason: String,
}

/// What a proxy is configured with, shared by every message: its sockets,
/// aliases, and module parameters.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The local sockets, for `myself` and for our Via.
    pub locals: Vec<Local>,
    /// Host names that are `myself` besides the local addresses (`alias=`).
    pub aliases: Vec<String>,
    /// `modparam` values (a parameter not set has its manifest default).
    pub params: ModParams,
    /// The `Server:` header of the replies the proxy makes itself.
    pub server_header: ServerHeader,
    /// usrloc's location table (shared by every worker; empty when the config
    /// does not load usrloc).
    pub usrloc: crate::modules::usrloc::Location,
    /// tm's transaction table and what links its transactions, built on first
    /// use from tm's modparams (see [`crate::modules::tm`]); shared by clones.
    pub tm: crate::modules::tm::TmSlot,
    /// The most transactions tm keeps at once (`--max-transactions`); `None`:
    /// [`crate::tm::DEFAULT_MAX_TRANSACTIONS`].
    pub max_transactions: Option<usize>,
    /// acc's database (`db_url`; see [`crate::modules::acc`]).
    pub acc_db: crate::modules::acc::AccDbSlot,
    /// auth's nonces and auth_db's database (see [`crate::modules::auth`]).
    pub auth: crate::modules::auth::AuthSlot,
    /// The domain module's table (see [`crate::modules::domain`]).
    pub domain: crate::modules::domain::DomainSlot,
    /// uri_db's database (see [`crate::modules::uri_db`]).
    pub uri_db: crate::modules::uri_db::UriDbSlot,
    /// avpops' database (see [`crate::modules::avpops`]).
    pub avpops: crate::modules::avpops::AvpopsSlot,
    /// registrar's modparams, read on first use (see [`crate::modules::registrar`]).
    pub registrar: ModuleSettings<crate::modules::registrar::Settings>,
    /// rr's modparams, read on first use (see [`crate::modules::rr`]).
    pub rr: ModuleSettings<crate::modules::rr::Settings>,
    /// maxfwd's `max_limit`, read on first use.
    pub maxfwd_limit: ModuleSettings<i64>,
    /// xlog's `buf_size`, read on first use.
    pub xlog_buf_size: ModuleSettings<i64>,
    /// auth_db's modparams, read on first use (see [`crate::modules::auth_db`]).
    pub auth_db: ModuleSettings<crate::modules::auth_db::Settings>,
    /// The management interface: MI commands and statistics, shared by
    /// clones (see [`crate::mi`]). Modules register their commands and take
    /// their counters from it in their `start`.
    pub mi: crate::mi::Mi,
}

/// The `Server:` header line of the replies the proxy makes (`sl_send_reply` …):
/// OpenSER's `server_signature` (on by default; off: no header) and
/// `server_header` (its text). serc's default names serc and its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHeader(Option<String>);

impl ServerHeader {
    /// `server_signature=no`.
    pub fn none() -> ServerHeader {
        ServerHeader(None)
    }

    /// `server_header="Server: …"`: the whole header, name included, as
    /// OpenSER takes it (CR and LF removed).
    pub fn text(header: &str) -> ServerHeader {
        let clean: String = header.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        ServerHeader(Some(format!("{clean}\r\n")))
    }

    /// The line with its CRLF, or "" for none.
    pub fn line(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

impl Default for ServerHeader {
    fn default() -> Self {
        ServerHeader::text(concat!("Server: serc ", env!("CARGO_PKG_VERSION")))
    }
}

/// Which credentials of a request were verified: the index in `msg.headers` of
/// the Proxy-Authorization line `proxy_authorize` accepted and of the
/// Authorization line `www_authorize` accepted (OpenSER 1.3 marks the parsed
/// header `authorized`). Only the auth module sets them; `is_user` and the
/// other readers of "the authenticated user" trust nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Authorized {
    pub proxy: Option<usize>,
    pub www: Option<usize>,
    /// The last `www_authorize`/`proxy_authorize` found the right response
    /// with an expired (or replayed) nonce: the next challenge says
    /// `stale=true`, so the client retries without asking its user again.
    pub stale: bool,
}

impl Authorized {
    /// The verified credentials (the header value) — proxy credentials first,
    /// as OpenSER 1.3's `get_authorized_cred` looks — if any.
    pub fn credentials<'m>(&self, msg: &'m crate::sip::Message) -> Option<&'m str> {
        let header = msg.headers.get(self.proxy.or(self.www)?)?;
        Some(msg.text(header.value))
    }
}

/// `modparam` values by (module, parameter).
#[derive(Clone, Debug, Default)]
pub struct ModParams {
    values: Vec<(String, String, Value)>,
    /// The modules the config loads (`loadmodule`), in order.
    loaded: Vec<String>,
}

/// A module's modparams read once per proxy, when the first message needs
/// them, as OpenSER reads a module's parameters at its start: a message then
/// reads fields, not the parameter list. Shared by clones of the config.
pub struct ModuleSettings<T>(Arc<OnceLock<T>>);

impl<T> ModuleSettings<T> {
    /// The settings, read from `params` by `read` the first time.
    pub fn get_or_read(&self, params: &ModParams, read: impl FnOnce(&ModParams) -> T) -> &T {
        self.0.get_or_init(|| read(params))
    }
}

impl<T> Clone for ModuleSettings<T> {
    fn clone(&self) -> Self {
        ModuleSettings(self.0.clone())
    }
}

impl<T> Default for ModuleSettings<T> {
    fn default() -> Self {
        ModuleSettings(Arc::default())
    }
}

impl<T> std::fmt::Debug for ModuleSettings<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "ModuleSettings(read)" } else { "ModuleSettings(not read)" })
    }
}

impl ModParams {
    /// Records `loadmodule "NAME.so"` (the code generator calls it for each).
    pub fn load(&mut self, module: &str) {
        if !self.is_loaded(module) {
            self.loaded.push(module.to_string());
        }
    }

    /// Whether the config loads `module`.
    pub fn is_loaded(&self, module: &str) -> bool {
        self.loaded.iter().any(|m| m == module)
    }

    pub fn set(&mut self, module: &str, param: &str, value: Value) {
        self.values.retain(|(m, p, _)| !(m == module && p == param));
        self.values.push((module.to_string(), param.to_string(), value));
    }

    /// The value of `module`'s `param`: as set, else the manifest's default.
    pub fn get(&self, module: &str, param: &str) -> Value {
        if let Some((_, _, v)) = self.values.iter().find(|(m, p, _)| m == module && p == param) {
            return v.clone();
        }
        let default = crate::manifest::module(module).and_then(|m| m.param(param)).map(|p| p.default);
        match default {
            Some(crate::manifest::Default::Int(i)) => Value::Int(i),
            Some(crate::manifest::Default::Str(s)) => Value::Str(s.to_string()),
            _ => Value::Null,
        }
    }

    pub fn int(&self, module: &str, param: &str) -> i64 {
        self.get(module, param).as_int()
    }

    /// The value of `module`'s `param` when the config set it (`None`: the
    /// manifest's default applies) — for defaults that serc replaces, such
    /// as OpenSER's implicit `db_url`.
    pub fn explicit(&self, module: &str, param: &str) -> Option<Value> {
        self.values.iter().find(|(m, p, _)| m == module && p == param).map(|(_, _, v)| v.clone())
    }
}

/// Everything about the message being routed.
pub struct Ctx<'m> {
    pub msg: &'m Message,
    pub src: Source,
    pub config: &'m Config,
    /// The local sockets (`config.locals`).
    pub locals: &'m [Local],
    /// `config.aliases`.
    pub aliases: &'m [String],
    pub route: RouteKind,
    /// Changes to the message, applied once when it is sent.
    pub edits: Edits,
    /// The Request-URI as rewritten (`None`: as received).
    pub ruri: Option<String>,
    /// `$du`: where to send instead of the Request-URI.
    pub dst_uri: Option<String>,
    /// The Path vector of branch 0 (registrar's `lookup` with `use_path`):
    /// written as a `Route:` header before the first header of the request
    /// sent, as OpenSER 1.3 inserts it.
    pub path: Option<String>,
    /// Message flags (`setflag`), script flags (`setsflag`), and the flags of
    /// branch 0 (`setbflag`).
    pub flags: u32,
    pub script_flags: u32,
    pub branch_flags: u32,
    /// Branches beyond the Request-URI.
    pub branches: Vec<Branch>,
    /// The q-value of the Request-URI branch, in thousandths (`None`:
    /// unspecified, as OpenSER's `Q_UNSPECIFIED`).
    pub ruri_q: Option<u16>,
    /// Whether each value of the serial-forking AVP (`serialize_branches`)
    /// ends its q-value class, oldest value first (OpenSER keeps this as a
    /// flag on the AVP itself).
    pub serial_marks: Vec<bool>,
    pub retcode: i32,
    pub avps: Avps,
    pub vars: &'m mut Vars,
    pub force_rport: bool,
    /// `force_local_rport`: our own Via asks for `rport` (RFC 3581).
    pub force_local_rport: bool,
    /// The credentials the auth module verified for this message.
    pub authorized: Authorized,
    pub send_socket: Option<SocketAddr>,
    /// `set_advertised_address` / `set_advertised_port`: what our Via (and
    /// Record-Route) say for this message instead of the socket's address.
    pub advertised_address: Option<String>,
    pub advertised_port: Option<u16>,
    /// Messages to send, in order.
    pub out: Vec<Send>,
    /// Header lines (each ending in CRLF) added to the replies this proxy
    /// sends for the request (`append_to_reply`).
    pub reply_headers: String,
    pub err: ErrInfo,
    /// `$mi`: the message's number, from [`next_msg_id`] (0 when the context
    /// was not made by the pipeline, as in tests).
    pub msg_id: u32,
    /// The script running, for what a module must run itself (tm's
    /// `branch_route`); set by the pipeline, `None` in contexts made elsewhere.
    pub script: Option<&'m dyn crate::app::Script>,
    /// The clock as `$Ts`/`$Tf` first read it for this message (Unix
    /// seconds): every later read in the same message gives that instant.
    time: Cell<Option<i64>>,
    /// tm: the message's time and its transaction (see [`crate::modules::tm`]).
    pub tm: crate::modules::tm::TxnCtx,
    /// rr: whether the request is record-routed, what `loose_route` consumed
    /// (see [`crate::modules::rr::RrState`]).
    pub rr: crate::modules::rr::RrState,
}

/// Numbers the messages for `$mi`: 1, 2, 3 … across the whole proxy, wrapping
/// after `u32::MAX`. OpenSER 1.3 counted in each process (and counted
/// messages its parser refused, which never reach a route here).
pub fn next_msg_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<'m> Ctx<'m> {
    pub fn new(msg: &'m Message, src: Source, config: &'m Config, vars: &'m mut Vars) -> Self {
        Ctx::at(std::time::Instant::now(), msg, src, config, vars)
    }

    /// [`new`](Ctx::new), for a message handled at `now` (tm's clock: the
    /// pipeline reads the clock once per message).
    pub fn at(now: std::time::Instant, msg: &'m Message, src: Source, config: &'m Config, vars: &'m mut Vars) -> Self {
        Ctx {
            msg,
            src,
            config,
            locals: &config.locals,
            aliases: &config.aliases,
            route: RouteKind::Request,
            edits: Edits::new(),
            ruri: None,
            dst_uri: None,
            path: None,
            flags: 0,
            script_flags: 0,
            branch_flags: 0,
            branches: Vec::new(),
            ruri_q: None,
            serial_marks: Vec::new(),
            retcode: 0,
            avps: Avps::default(),
            vars,
            force_rport: false,
            force_local_rport: false,
            authorized: Authorized::default(),
            send_socket: None,
            advertised_address: None,
            advertised_port: None,
            out: Vec::new(),
            reply_headers: String::new(),
            err: ErrInfo::default(),
            msg_id: 0,
            script: None,
            time: Cell::new(None),
            tm: crate::modules::tm::TxnCtx::new(now),
            rr: Default::default(),
        }
    }

    /// The time of this message for `$Ts` and `$Tf` (Unix seconds): the
    /// clock read once, when first asked, as OpenSER 1.3 keeps it per message.
    pub fn time(&self) -> i64 {
        if let Some(t) = self.time.get() {
            return t;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.time.set(Some(now));
        now
    }

    /// The Request-URI now (rewritten or as received; `""` for a reply).
    pub fn request_uri(&self) -> &str {
        match &self.ruri {
            Some(u) => u,
            None => self.msg.request_uri().unwrap_or(""),
        }
    }

    /// The original Request-URI (`$ou`).
    pub fn original_uri(&self) -> &str {
        self.msg.request_uri().unwrap_or("")
    }

    /// Records `code` as `$retcode` and gives it back (for generated code).
    pub fn ret(&mut self, code: i32) -> i32 {
        self.retcode = code;
        code
    }

    /// Whether `host[:port]` is this proxy: a local address or an alias
    /// (OpenSER's `myself`; the port must match when given).
    pub fn is_myself(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.is_myself_at(host, crate::proxy::parse_ip(host), port)
    }

    /// [`is_myself`](Self::is_myself) of a URI's host and `port`, its address
    /// taken from the URI's parse where it can ([`crate::proxy::uri_ip`]).
    pub(crate) fn is_myself_uri(&self, uri: &crate::sip::uri::Uri, port: Option<u16>) -> bool {
        let host = uri.host_text.trim_start_matches('[').trim_end_matches(']');
        self.is_myself_at(host, crate::proxy::uri_ip(uri), port)
    }

    /// `host` without brackets, `ip` what `parse_ip` makes of it.
    fn is_myself_at(&self, host: &str, ip: Option<std::net::IpAddr>, port: Option<u16>) -> bool {
        let by_addr = self.locals.iter().any(|l| {
            let ip_match = ip.is_some_and(|ip| ip == l.addr.ip());
            let adv_match = l.advertised.as_ref().is_some_and(|(h, _)| h.eq_ignore_ascii_case(host));
            (ip_match || adv_match)
                && port.is_none_or(|p| p == l.addr.port() || l.advertised.as_ref().is_some_and(|(_, ap)| *ap == p))
        });
        by_addr || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(host))
    }

    /// The edits with the Request-URI rewrite added, for sending a request.
    pub fn request_edits(&self) -> Edits {
        let mut edits = self.edits.clone();
        self.add_request_edits(&mut edits);
        edits
    }

    /// Adds to `edits` what [`request_edits`](Self::request_edits) adds to the
    /// route's edits.
    pub fn add_request_edits(&self, edits: &mut Edits) {
        if let (Some(new), StartLine::Request { uri, .. }) = (&self.ruri, self.msg.start) {
            edits.replace(uri.range(), Bytes::copy_from_slice(new.as_bytes()));
        }
        if let (Some(path), Some(first)) = (&self.path, self.msg.headers.first()) {
            edits.insert(first.line.start as usize, crate::sip::edit::text(format_args!("Route: {path}\r\n")));
        }
    }

    /// Records an error met while processing the message (OpenSER's
    /// `set_err_info` + `set_err_reply`: a header that fails to parse when a
    /// function reads it): the error route runs after the current action.
    pub fn set_error(&mut self, class: i64, level: i64, info: &str, rcode: i64, rreason: &str) {
        self.err = ErrInfo { class, level, info: info.to_string(), rcode, rreason: rreason.to_string() };
    }

    /// Whether the error route is due: an error is recorded and the code is not
    /// already in the error route or a reply route (OpenSER 1.3's rule).
    pub fn error_pending(&self) -> bool {
        self.err.class != 0 && !matches!(self.route, RouteKind::Error | RouteKind::OnReply)
    }

    pub fn flag(&self, n: u32) -> bool {
        n < 32 && self.flags & (1 << n) != 0
    }
}
