//! Module manifests: for every module serc knows (OpenSER 1.3's, and the core),
//! the functions a script may call — each accepted arity, the kind of each
//! argument, the route types where it may be called, what its return codes mean —
//! and the module parameters with their types and defaults.
//!
//! This crate is the one source of truth: the compiler's checker reads it, the
//! runtime re-exports it beside its module code, and generated code calls module
//! functions through the same entries. It is plain `const` data with no
//! dependencies, so both sides share it at no cost.

pub mod modules;
pub mod pvars;

/// A set of route types, as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Routes(pub u8);

impl Routes {
    pub const REQUEST: Routes = Routes(1);
    pub const FAILURE: Routes = Routes(2);
    pub const ONREPLY: Routes = Routes(4);
    pub const BRANCH: Routes = Routes(8);
    pub const ERROR: Routes = Routes(16);
    /// Everywhere a script runs.
    pub const ANY: Routes = Routes(31);

    pub const fn or(self, other: Routes) -> Routes {
        Routes(self.0 | other.0)
    }

    pub const fn contains(self, other: Routes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the route types in the set, for messages.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Routes::REQUEST, "route"),
            (Routes::FAILURE, "failure_route"),
            (Routes::ONREPLY, "onreply_route"),
            (Routes::BRANCH, "branch_route"),
            (Routes::ERROR, "error_route"),
        ]
        .into_iter()
        .filter(|(r, _)| self.contains(*r))
        .map(|(_, n)| n)
        .collect()
    }
}

/// What an argument must be, checked at compile time the way OpenSER's fixups
/// check it at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// Any text, used as it is.
    Str,
    /// Text with pseudo-variables (`"$ru from $si"`), expanded per message.
    Format,
    /// A decimal integer (`"10"`).
    Int,
    /// A flag number, 0–31 in OpenSER 1.3.
    Flag,
    /// A SIP reply code, 100–699 (or a format that yields one).
    ReplyCode,
    /// A regular expression (POSIX extended in OpenSER), compiled at build time.
    Regex,
    /// A `sed`-like substitution: `/re/replacement/flags`.
    Subst,
    /// The name of a pseudo-variable: `$avp(s:x)`, `$ru`.
    PVar,
    /// An AVP name: `$avp(s:name)`, `$avp(i:3)`, `s:name`, `i:3`.
    Avp,
    /// A SIP URI (`sip:alice@example.com`), or a format that yields one.
    Uri,
    /// `host[:port]`.
    HostPort,
    /// `[proto:]host[:port]`, as in `listen=`.
    Socket,
    /// A header name (`Via`, `X-Foo`).
    HeaderName,
    /// A whole header field with its line end (`"P-hint: x\r\n"`).
    HeaderField,
    /// The number (or name) of a `failure_route`.
    FailureRoute,
    /// The number (or name) of an `onreply_route`.
    ReplyRoute,
    /// The number (or name) of a `branch_route`.
    BranchRoute,
    /// A database table name (`location`).
    Table,
    /// A list of method names: `"INVITE|BYE"`.
    Methods,
    /// A log level: `L_ERR`, `L_INFO`, … or a number.
    LogLevel,
    /// Module-specific syntax serc does not check yet (the module's own parser runs at start-up).
    Opaque,
}

impl ArgKind {
    /// The Rust type a function of the runtime takes for an argument of this
    /// kind, prepared when the config is compiled (paths relative to
    /// `serc_runtime::script::args`, or Rust primitives). The code generator and
    /// the runtime's signature checks both use it.
    pub fn rust_type(self) -> &'static str {
        match self {
            ArgKind::Str | ArgKind::Table | ArgKind::Opaque => "&str",
            ArgKind::Format | ArgKind::Uri | ArgKind::HeaderField => "&Format",
            ArgKind::Int => "i64",
            ArgKind::Flag => "u32",
            ArgKind::ReplyCode => "&ReplyCode",
            ArgKind::Regex => "&Regex",
            ArgKind::Subst => "&Subst",
            ArgKind::PVar => "&PvRef",
            ArgKind::Avp => "&AvpName",
            ArgKind::HostPort => "&HostPort",
            ArgKind::Socket => "&SocketSpec",
            ArgKind::HeaderName => "&HdrName",
            ArgKind::FailureRoute | ArgKind::ReplyRoute | ArgKind::BranchRoute => "RouteId",
            ArgKind::Methods => "&Methods",
            ArgKind::LogLevel => "Level",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
}

/// One accepted form of a script function: a name and an arity. A function with
/// several arities (`t_relay()`, `t_relay("udp:1.2.3.4:5060")`) has one entry each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub args: &'static [Arg],
    /// Where it may be called (OpenSER checks this at start-up).
    pub routes: Routes,
    /// What its return codes mean: `(code, meaning)`; empty when only the usual
    /// "> 0 success, < 0 failure" applies.
    pub returns: &'static [(i32, &'static str)],
    /// The runtime implements it (else `serc build` refuses it; `serc check` does not care).
    pub implemented: bool,
    /// The headers it reads beyond those every message has validated on
    /// receipt (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length),
    /// by their canonical names; `"*"` for any. A built proxy parses and
    /// validates on receipt only the optional headers its script reads
    /// (`serc_runtime::sip::Interest`).
    pub reads: &'static [&'static str],
    /// One line for `serc modules`.
    pub summary: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    Int,
    Str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    Int(i64),
    Str(&'static str),
    /// No default (unset, or computed at start-up).
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: Default,
    pub summary: &'static str,
}

#[derive(Debug)]
pub struct Module {
    /// As in `loadmodule "NAME.so"`.
    pub name: &'static str,
    pub summary: &'static str,
    pub functions: &'static [Function],
    pub params: &'static [Param],
}

impl Module {
    /// Every form of function `name`.
    pub fn function(&self, name: &str) -> impl Iterator<Item = &'static Function> + '_ {
        let functions: &'static [Function] = self.functions;
        let name = name.to_string();
        functions.iter().filter(move |f| f.name == name)
    }

    pub fn param(&self, name: &str) -> Option<&'static Param> {
        let params: &'static [Param] = self.params;
        params.iter().find(|p| p.name == name)
    }
}

/// The name of the runtime function implementing `f` of `module`:
/// `serc_runtime::modules::<module>::<function>` — with `_<arity>` when the
/// module has several forms of the function (`t_relay_0`, `t_relay_1`).
pub fn rust_fn_path(module: &Module, f: &Function) -> String {
    let forms = module.functions.iter().filter(|g| g.name == f.name).count();
    let module_ident = match module.name {
        "core" => "core".to_string(),
        "enum" => "r#enum".to_string(),
        m => m.replace('-', "_"),
    };
    if forms > 1 {
        format!("serc_runtime::modules::{module_ident}::{}_{}", f.name, f.args.len())
    } else {
        format!("serc_runtime::modules::{module_ident}::{}", f.name)
    }
}

/// Modules that have no script function of their own the runtime implements,
/// yet the runtime provides what they do, so a config may load them: usrloc
/// (the location table registrar's functions use, `db_mode` 0 to 3), and the
/// database drivers `mysql` and `postgres` (serc's database layer reaches
/// what a `db_url` names whether or not they are loaded), and the management
/// interface's transports `mi_fifo` and `mi_datagram` (serc-runtime's `mi`).
pub static PROVIDED_WITHOUT_FUNCTIONS: &[&str] = &["usrloc", "mysql", "postgres", "dbtext", "mi_fifo", "mi_datagram"];

/// Why serc will not implement `module`'s `function`, when it will not (the
/// compiler says so instead of "not implemented yet").
pub fn wont_implement(module: &str, function: &str) -> Option<&'static str> {
    let list = match module {
        "tm" => modules::tm::WONT_IMPLEMENT,
        _ => return None,
    };
    list.iter().find(|(f, _)| *f == function).map(|(_, why)| *why)
}

/// The module named `name` (`tm`, not `tm.so`).
pub fn module(name: &str) -> Option<&'static Module> {
    modules::ALL.iter().copied().find(|m| m.name == name)
}

/// Every module, the core first.
pub fn all() -> &'static [&'static Module] {
    modules::ALL
}
