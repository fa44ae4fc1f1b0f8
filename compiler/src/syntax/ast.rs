//! The syntax tree of a cfg file. Every node carries the span of the text it was
//! read from. The tree is dialect-resolved: `&&`/`||` trees follow the precedence
//! of [`Config::dialect`], `status` is already what that dialect makes of it.

use std::net::IpAddr;

use super::dialect::Dialect;
use crate::source::Span;

/// A whole config: its top-level items in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub dialect: Dialect,
    pub items: Vec<Item>,
}

impl Config {
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.items.iter().filter_map(|i| match &i.kind {
            ItemKind::Route(r) => Some(r),
            _ => None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    /// `name = value` (`debug=3`, `listen=udp:1.2.3.4:5060`); Kamailio's
    /// `group.name = value desc "text"` has a dotted name.
    Global(Global),
    /// `loadmodule "tm.so"`
    LoadModule(StrLit),
    /// `modparam("tm", "fr_timer", 30)`
    ModParam(ModParam),
    /// A route block of any type.
    Route(Route),
    /// OpenSER's TLS domain blocks: `tls_server_domain[1.2.3.4:5061] { … }`.
    TlsDomain(TlsDomain),
    /// Text that could not be read as an item (already reported).
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    pub name: Ident,
    pub value: GlobalValue,
    /// Kamailio's `desc "…"` after a custom cfg variable.
    pub desc: Option<StrLit>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GlobalValue {
    Int(IntLit),
    Str(StrLit),
    /// A bare word or dotted name: `LOG_LOCAL0`, `yes`, `sip.example.com`.
    Word(Ident),
    /// One or more sockets: `udp:1.2.3.4:5060 tcp:[::1]:5060`.
    Sockets(Vec<Socket>),
    /// Anything else a dialect accepts but serc does not model (`dst_blacklist`).
    Raw(Span),
}

impl GlobalValue {
    pub fn span(&self) -> Span {
        match self {
            GlobalValue::Int(i) => i.span,
            GlobalValue::Str(s) => s.span,
            GlobalValue::Word(w) => w.span,
            GlobalValue::Sockets(s) => s[0].span.to(s[s.len() - 1].span),
            GlobalValue::Raw(span) => *span,
        }
    }
}

/// `[proto:]host[:port]`, as in `listen=` and `force_send_socket()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Socket {
    pub proto: Option<Ident>,
    pub host: Host,
    pub port: Option<IntLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Host {
    Ip(IpAddr, Span),
    /// A host name, an interface name, `*`, or a quoted string.
    Name(String, Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModParam {
    pub module: StrLit,
    pub param: StrLit,
    pub value: ModParamValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ModParamValue {
    Int(IntLit),
    Str(StrLit),
    /// A bare word (`yes`, a `#!define`d name that was not defined).
    Word(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TlsDomain {
    pub keyword: Ident,
    pub settings: Vec<Global>,
}

/// Which table a route block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteType {
    /// `route`, `route[N]`, Kamailio's `request_route`.
    Request,
    /// `failure_route[N]`
    Failure,
    /// `onreply_route`, `onreply_route[N]`, Kamailio's `reply_route`.
    OnReply,
    /// `branch_route[N]`
    Branch,
    /// `error_route`
    Error,
    /// `event_route[name]` (Kamailio, OpenSIPS).
    Event,
    /// `onsend_route` (Kamailio).
    OnSend,
    /// `startup_route` (OpenSIPS).
    Startup,
    /// `timer_route[name, interval]` (OpenSIPS).
    Timer,
    /// `local_route` (OpenSIPS).
    Local,
}

impl RouteType {
    pub fn keyword(self) -> &'static str {
        match self {
            RouteType::Request => "route",
            RouteType::Failure => "failure_route",
            RouteType::OnReply => "onreply_route",
            RouteType::Branch => "branch_route",
            RouteType::Error => "error_route",
            RouteType::Event => "event_route",
            RouteType::OnSend => "onsend_route",
            RouteType::Startup => "startup_route",
            RouteType::Timer => "timer_route",
            RouteType::Local => "local_route",
        }
    }
}

/// A route block: `failure_route[2] { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub rtype: RouteType,
    /// The keyword as written (`route`, `request_route`, `reply_route` …).
    pub keyword: Ident,
    /// `None` for the main/default block (`route {}`, `route[0]`, `onreply_route {}`).
    pub name: Option<RouteName>,
    /// OpenSIPS `timer_route[name, 60]`: the interval.
    pub interval: Option<IntLit>,
    pub body: Block,
    pub span: Span,
}

/// A route's number or name: `route[2]`, `route[RELAY]`, `route("RELAY")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteName {
    Number(i64, Span),
    Name(String, Span),
}

impl RouteName {
    pub fn span(&self) -> Span {
        match self {
            RouteName::Number(_, s) | RouteName::Name(_, s) => *s,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// A function call used as a statement: `t_relay();`, `sl_send_reply("404", "x");`.
    Call(Call),
    /// `route(N);` / `route(NAME);`
    RouteCall(RouteName),
    /// `$avp(s:x) = "a";`, `$var(i) += 1;`
    Assign {
        target: PVar,
        op: AssignOp,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Block,
        otherwise: Option<Block>,
    },
    Switch {
        subject: Expr,
        cases: Vec<Case>,
    },
    While {
        cond: Expr,
        body: Block,
    },
    /// `{ … }`
    Block(Block),
    /// `return`, `return()`, `return(N)`, `return N`.
    Return(Option<Expr>),
    Exit,
    Drop,
    /// `break` (or OpenSER's `esac`) inside a `switch` case or a `while`.
    Break,
    /// SER/OpenSER 0.9's `break` in a route: it returns from the route (1).
    Ser09Break,
    /// A statement that could not be read (already reported).
    Error,
    /// `;` alone. Never in a finished tree: blocks drop it.
    Null,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// `None` for `default:`.
    pub label: Option<Expr>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `:=` (replace all values of an AVP)
    SetAll,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
}

impl AssignOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignOp::Set => "=",
            AssignOp::SetAll => ":=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
            AssignOp::Mod => "%=",
            AssignOp::BitAnd => "&=",
            AssignOp::BitOr => "|=",
            AssignOp::BitXor => "^=",
        }
    }
}

/// A call of a core or module function: `name(arg, …)` or bare `name`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Expr>,
    /// Written with parentheses (`f()` rather than `f`).
    pub parens: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Str(String),
    /// A pseudo-variable: `$ru`, `$avp(s:x)`, `$(hdr(Via)[1]{s.len})`.
    PVar(PVar),
    /// A core operand of conditions: `method`, `uri`, `src_ip` …
    Operand(Operand),
    /// `myself`
    Myself,
    /// `null` / `$null`
    Null,
    Ip(IpAddr),
    /// `10.0.0.0/8`, `10.0.0.0/255.0.0.0`
    Net {
        addr: IpAddr,
        mask: NetMask,
    },
    /// A bare word the dialect gives no meaning of its own: a host name
    /// (`sip.example.com`), `udp`, `INET6`, a method name.
    Word(String),
    Call(Call),
    /// `route(N)` inside a condition (OpenSER evaluates the route's return code).
    RouteCall(RouteName),
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// A SER/Kamailio select: `@ruri.user`, `@hf_value.contact[1]` (its text).
    Select(String),
    /// `( … )`: kept so that dumps and checks can see what the author grouped.
    Paren(Box<Expr>),
    /// Could not be read (already reported).
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMask {
    Bits(u8),
    Addr(IpAddr),
}

/// The core operands of OpenSER conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Method,
    /// The Request-URI (`uri`; also `status` in OpenSER 1.3, which lexes it as `uri`).
    Uri,
    /// The reply status (`status` in dialects that give it its own meaning).
    Status,
    FromUri,
    ToUri,
    SrcIp,
    SrcPort,
    DstIp,
    DstPort,
    Proto,
    Af,
    MsgLen,
    MaxLen,
    /// Kamailio/OpenSIPS: `snd_ip`, `snd_port`, `to_ip`, `to_port`, `snd_proto`, `snd_af`.
    SndIp,
    SndPort,
    ToIp,
    ToPort,
    SndProto,
    SndAf,
}

impl Operand {
    pub fn from_word(word: &str) -> Option<Operand> {
        Some(match word {
            "method" => Operand::Method,
            "uri" => Operand::Uri,
            "status" => Operand::Status,
            "from_uri" => Operand::FromUri,
            "to_uri" => Operand::ToUri,
            "src_ip" => Operand::SrcIp,
            "src_port" => Operand::SrcPort,
            "dst_ip" => Operand::DstIp,
            "dst_port" => Operand::DstPort,
            "proto" => Operand::Proto,
            "af" => Operand::Af,
            "max_len" => Operand::MaxLen,
            "snd_ip" => Operand::SndIp,
            "snd_port" => Operand::SndPort,
            "to_ip" => Operand::ToIp,
            "to_port" => Operand::ToPort,
            "snd_proto" => Operand::SndProto,
            "snd_af" => Operand::SndAf,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operand::Method => "method",
            Operand::Uri => "uri",
            Operand::Status => "status",
            Operand::FromUri => "from_uri",
            Operand::ToUri => "to_uri",
            Operand::SrcIp => "src_ip",
            Operand::SrcPort => "src_port",
            Operand::DstIp => "dst_ip",
            Operand::DstPort => "dst_port",
            Operand::Proto => "proto",
            Operand::Af => "af",
            Operand::MsgLen => "msg:len",
            Operand::MaxLen => "max_len",
            Operand::SndIp => "snd_ip",
            Operand::SndPort => "snd_port",
            Operand::ToIp => "to_ip",
            Operand::ToPort => "to_port",
            Operand::SndProto => "snd_proto",
            Operand::SndAf => "snd_af",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`, `not`
    Not,
    /// `~`
    BitNot,
    /// `-`
    Neg,
    /// Kamailio's `(int)` cast.
    IntCast,
    /// Kamailio's `(str)` cast.
    StrCast,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    And,
    Or,
    Eq,
    Ne,
    /// `=~` (regular expression match)
    Match,
    /// `!~`
    NotMatch,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Match => "=~",
            BinaryOp::NotMatch => "!~",
            BinaryOp::Lt => "<",
            BinaryOp::Gt => ">",
            BinaryOp::Le => "<=",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitOr => "|",
            BinaryOp::BitXor => "^",
            BinaryOp::Shl => "<<",
            BinaryOp::Shr => ">>",
        }
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or)
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Match
                | BinaryOp::NotMatch
                | BinaryOp::Lt
                | BinaryOp::Gt
                | BinaryOp::Le
                | BinaryOp::Ge
        )
    }
}

/// A pseudo-variable reference, with its parts already split.
///
/// `$(avp(s:x)[2]{s.len})` → name `avp`, inner `Some("s:x")`, index `Some(At(2))`,
/// transformations `["s.len"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PVar {
    pub name: String,
    /// The text inside the parentheses: `s:x` of `$avp(s:x)`, `Via` of `$hdr(Via)`.
    pub inner: Option<String>,
    pub index: Option<PVarIndex>,
    /// `{uri.user}`, `{s.int}`, `{param.value,expires}` — the text between braces.
    pub transforms: Vec<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PVarIndex {
    /// `[N]` (negative counts from the end in later dialects).
    At(i64),
    /// `[*]`
    All,
    /// `[$var(i)]` and other non-literal indexes: the text between brackets.
    Dynamic(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrLit {
    /// The value with escapes resolved.
    pub value: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntLit {
    pub value: i64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}
