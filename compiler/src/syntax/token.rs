//! Tokens, as the grammar sees them.

use std::fmt;
use std::net::IpAddr;

use super::ast::{NetMask, PVar, RouteType};
use crate::source::Span;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A word: `t_relay`, `udp`, `LOG_LOCAL0`, `msg:len`.
    Ident(String),
    /// A name followed by `=` at the top level: the start of a global parameter.
    /// Dotted for Kamailio's `group.var`.
    Setting(String),
    /// `tls_server_domain` / `tls_client_domain` starting a TLS domain block.
    TlsDomain(String),
    Int(i64),
    Ip(IpAddr),
    Net(IpAddr, NetMask),
    /// A string literal's value (escapes resolved).
    Str(String),
    PVar(Box<PVar>),
    /// `@ruri.user`: a select (its text without `@`).
    Select(String),
    /// Kamailio's `(int)` and `(str)` casts.
    CastInt,
    CastStr,

    If,
    Else,
    Switch,
    Case,
    Default,
    /// `break` or `esac`
    Break,
    While,
    Return,
    Exit,
    Drop,
    LoadModule,
    ModParam,
    /// A route block keyword, with the route type.
    RouteKw(RouteType),
    /// `&&` / `and`
    And,
    /// `||` / `or`
    Or,
    /// `!` / `not`
    Not,

    LParen,
    RParen,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Comma,
    Semi,
    Colon,
    Dot,
    Slash,
    Minus,
    Plus,
    Star,
    Percent,
    Amp,
    Pipe,
    Caret,
    Tilde,
    Shl,
    Shr,
    /// `=`
    Assign,
    EqEq,
    Ne,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    Lt,
    Gt,
    Le,
    Ge,
    ColonEq,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    PercentEq,
    AmpEq,
    PipeEq,
    CaretEq,

    /// Text the lexer could not read (already reported).
    Error,
}

/// A token with its place in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Tok {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Setting(s) => format!("`{s} =`"),
            Tok::TlsDomain(s) => format!("`{s}`"),
            Tok::Int(i) => format!("number `{i}`"),
            Tok::Ip(ip) => format!("address `{ip}`"),
            Tok::Net(ip, _) => format!("network `{ip}/…`"),
            Tok::Str(_) => "a string".to_string(),
            Tok::PVar(p) => format!("pseudo-variable `${}`", p.name),
            Tok::Select(s) => format!("select `@{s}`"),
            Tok::CastInt => "`(int)`".to_string(),
            Tok::CastStr => "`(str)`".to_string(),
            Tok::RouteKw(t) => format!("`{}`", t.keyword()),
            Tok::Error => "invalid text".to_string(),
            other => format!("`{}`", other.text()),
        }
    }

    /// The fixed spelling of keyword and punctuation tokens.
    pub fn text(&self) -> &'static str {
        match self {
            Tok::If => "if",
            Tok::Else => "else",
            Tok::Switch => "switch",
            Tok::Case => "case",
            Tok::Default => "default",
            Tok::Break => "break",
            Tok::While => "while",
            Tok::Return => "return",
            Tok::Exit => "exit",
            Tok::Drop => "drop",
            Tok::LoadModule => "loadmodule",
            Tok::ModParam => "modparam",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Not => "!",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LBrack => "[",
            Tok::RBrack => "]",
            Tok::Comma => ",",
            Tok::Semi => ";",
            Tok::Colon => ":",
            Tok::Dot => ".",
            Tok::Slash => "/",
            Tok::Minus => "-",
            Tok::Plus => "+",
            Tok::Star => "*",
            Tok::Percent => "%",
            Tok::Amp => "&",
            Tok::Pipe => "|",
            Tok::Caret => "^",
            Tok::Tilde => "~",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            Tok::Assign => "=",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Match => "=~",
            Tok::NotMatch => "!~",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Le => "<=",
            Tok::Ge => ">=",
            Tok::ColonEq => ":=",
            Tok::PlusEq => "+=",
            Tok::MinusEq => "-=",
            Tok::StarEq => "*=",
            Tok::SlashEq => "/=",
            Tok::PercentEq => "%=",
            Tok::AmpEq => "&=",
            Tok::PipeEq => "|=",
            Tok::CaretEq => "^=",
            _ => "",
        }
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Words that are keywords of the grammar in every dialect.
pub fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "if" => Tok::If,
        "else" => Tok::Else,
        "switch" => Tok::Switch,
        "case" => Tok::Case,
        "default" => Tok::Default,
        "break" | "esac" => Tok::Break,
        "while" => Tok::While,
        "return" => Tok::Return,
        "exit" => Tok::Exit,
        "drop" => Tok::Drop,
        "loadmodule" => Tok::LoadModule,
        "modparam" => Tok::ModParam,
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "route" | "request_route" => Tok::RouteKw(RouteType::Request),
        "failure_route" => Tok::RouteKw(RouteType::Failure),
        "onreply_route" | "reply_route" => Tok::RouteKw(RouteType::OnReply),
        "branch_route" => Tok::RouteKw(RouteType::Branch),
        "error_route" => Tok::RouteKw(RouteType::Error),
        "event_route" => Tok::RouteKw(RouteType::Event),
        "onsend_route" => Tok::RouteKw(RouteType::OnSend),
        "startup_route" => Tok::RouteKw(RouteType::Startup),
        "timer_route" => Tok::RouteKw(RouteType::Timer),
        "local_route" => Tok::RouteKw(RouteType::Local),
        _ => return None,
    })
}

/// Every keyword spelling (for "did you mean" hints).
pub const KEYWORDS: &[&str] = &[
    "if",
    "else",
    "switch",
    "case",
    "default",
    "break",
    "while",
    "return",
    "exit",
    "drop",
    "loadmodule",
    "modparam",
    "route",
    "request_route",
    "failure_route",
    "onreply_route",
    "reply_route",
    "branch_route",
    "error_route",
    "event_route",
    "onsend_route",
    "startup_route",
    "timer_route",
    "local_route",
];
