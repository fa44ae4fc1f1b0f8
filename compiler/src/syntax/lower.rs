//! Dialect resolution: turns the dialect-neutral parse into the tree of one
//! dialect, and reports what that dialect does not accept.
//!
//! - `&&`/`||` chains and arithmetic chains are rebuilt with the dialect's
//!   precedence (OpenSER: one level each, left-associative; Kamailio: C-like);
//! - words become what the dialect makes of them (`myself`, `null`, `yes` → 1,
//!   core operands, `status` → `uri` in OpenSER 1.3);
//! - route numbers and names, `return N`, `break` outside `switch`, the number of
//!   call arguments, global parameters and their values are checked.

use super::ast::*;
use super::dialect::Dialect;
use super::globals::{self, ValueKind};
use super::parse::did_you_mean;
use crate::diag::{Diagnostic, Kind};
use crate::source::Span;

/// The highest route number of OpenSER 1.3 (`RT_NO` is 40).
pub const OPENSER_ROUTE_MAX: i64 = 39;

pub fn lower(items: Vec<Item>, dialect: Dialect, diags: &mut Vec<Diagnostic>) -> Config {
    let mut lw = Lower { dialect, diags };
    let items = items.into_iter().map(|i| lw.item(i)).collect();
    Config { dialect, items }
}

struct Lower<'d> {
    dialect: Dialect,
    diags: &'d mut Vec<Diagnostic>,
}

/// Where a statement sits, for `break`.
#[derive(Clone, Copy, Default)]
struct Ctx {
    /// Directly in a `case` body, as its last statement.
    last_in_case: bool,
    /// Somewhere inside a `switch` case (possibly nested in `if`).
    in_switch: bool,
    in_while: bool,
}

fn is_openser(d: Dialect) -> bool {
    matches!(d, Dialect::OpenSer13 | Dialect::Ser09)
}

fn boolean_word(w: &str) -> Option<i64> {
    match w {
        "yes" | "true" | "on" | "enable" => Some(1),
        "no" | "false" | "off" | "disable" => Some(0),
        _ => None,
    }
}

impl Lower<'_> {
    fn error(&mut self, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(Kind::Syntax, span, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn dialect_error(&mut self, span: Span, what: &str, others: &str) -> &mut Diagnostic {
        let name = self.dialect.display_name();
        let d = Diagnostic::error(Kind::Syntax, span, format!("{what} is not {name} syntax"))
            .with_note(format!("{others}; this file is read as {name}"))
            .with_help("pass `--dialect` to read the file as another dialect");
        self.diags.push(d);
        self.diags.last_mut().expect("just pushed")
    }

    // ------------------------------------------------------------ items

    fn item(&mut self, item: Item) -> Item {
        let kind = match item.kind {
            ItemKind::Global(g) => ItemKind::Global(self.global(g)),
            ItemKind::ModParam(mut p) => {
                if let ModParamValue::Word(w) = &p.value {
                    match boolean_word(&w.name) {
                        Some(v) => p.value = ModParamValue::Int(IntLit { value: v, span: w.span }),
                        None => {
                            let span = w.span;
                            let word = w.name.clone();
                            let e = self.error(span, format!("expected a number or a string, found `{word}`"));
                            e.help.push(format!("quote it (`\"{word}\"`) if it is text"));
                            if word.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) {
                                e.notes.push(format!("`{word}` looks like a `#!define` name that is not defined"));
                            }
                        }
                    }
                }
                ItemKind::ModParam(p)
            }
            ItemKind::Route(r) => ItemKind::Route(self.route(r)),
            ItemKind::TlsDomain(mut t) => {
                t.settings = t.settings.into_iter().map(|g| self.global(g)).collect();
                ItemKind::TlsDomain(t)
            }
            other => other,
        };
        Item { kind, span: item.span }
    }

    fn global(&mut self, mut g: Global) -> Global {
        let name = g.name.name.clone();
        if name.contains('.') && !name.starts_with("kemi.") {
            if self.dialect != Dialect::Kamailio {
                self.dialect_error(
                    g.name.span,
                    "a dotted parameter name",
                    "custom parameters `group.name = value` are Kamailio's",
                );
            }
            return g;
        }
        // SER/OpenSER 0.9 files often carry 1.x parameters (`mpath`): read both.
        let found = globals::lookup(&name, self.dialect).or_else(|| match self.dialect {
            Dialect::Ser09 => globals::lookup(&name, Dialect::OpenSer13),
            _ => None,
        });
        if found.is_none() && self.dialect == Dialect::OpenSer13 && globals::lookup(&name, Dialect::Ser09).is_some() {
            self.diags.push(
                Diagnostic::warning(Kind::Deprecated, g.name.span, format!("`{name}` is an OpenSER 0.9–1.1 parameter; it is ignored"))
                    .with_note("OpenSER 1.2 removed it (the FIFO and UNIX socket servers became the `mi_fifo` and `mi_datagram` modules)")
                    .with_help("delete the line; load `mi_fifo` for a management FIFO"),
            );
            return g;
        }
        let Some(def) = found else {
            let mut d =
                Diagnostic::error(Kind::UnknownGlobal, g.name.span, format!("unknown global parameter `{name}`"))
                    .with_label(format!("not a global parameter of {}", self.dialect.display_name()));
            let names: Vec<&str> = globals::names(self.dialect).collect();
            if let Some(other) = globals::lookup_any(&name) {
                let ds: Vec<&str> = other.dialects.iter().map(Dialect::display_name).collect();
                d = d.with_note(format!("`{name}` is a global parameter of {}", ds.join(", ")));
            } else if let Some(s) = did_you_mean(&name, &names) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            self.diags.push(d);
            return g;
        };
        let span = g.value.span();
        // A lone word read as a socket is a word.
        if def.kind != ValueKind::Sockets {
            if let GlobalValue::Sockets(s) = &g.value {
                if let [Socket { proto: None, host: Host::Name(n, hs), port: None, .. }] = s.as_slice() {
                    g.value = GlobalValue::Word(Ident { name: n.clone(), span: *hs });
                }
            }
        }
        if matches!(def.kind, ValueKind::Int | ValueKind::Bool | ValueKind::IntOrId) {
            if let GlobalValue::Word(w) = &g.value {
                if let Some(v) = boolean_word(&w.name) {
                    g.value = GlobalValue::Int(IntLit { value: v, span: w.span });
                }
            }
        }
        if let GlobalValue::Int(IntLit { value, span }) = &g.value {
            if *value < 0 && is_openser(self.dialect) {
                self.dialect_error(
                    *span,
                    "a negative value",
                    "OpenSER 1.3 global parameters take unsigned numbers; Kamailio and OpenSIPS accept a sign",
                );
            }
        }
        let ok = match (def.kind, &g.value) {
            (ValueKind::Any, _) => true,
            (ValueKind::Int | ValueKind::Bool, GlobalValue::Int(_)) => true,
            (ValueKind::IntOrId, GlobalValue::Int(_) | GlobalValue::Word(_)) => true,
            (ValueKind::Str, GlobalValue::Str(_)) => true,
            (ValueKind::StrOrId | ValueKind::Id, GlobalValue::Str(_) | GlobalValue::Word(_)) => true,
            (ValueKind::Sockets, GlobalValue::Sockets(_) | GlobalValue::Str(_)) => true,
            (ValueKind::Host, GlobalValue::Sockets(s)) => s.len() == 1,
            (ValueKind::Host, GlobalValue::Str(_) | GlobalValue::Word(_)) => true,
            _ => false,
        };
        if !ok {
            let want = match def.kind {
                ValueKind::Int => "a number",
                ValueKind::Bool => "a boolean (`yes`/`no` or a number)",
                ValueKind::Str => "a quoted string",
                ValueKind::StrOrId => "a string or a name",
                ValueKind::Id => "a name",
                ValueKind::Sockets => "one or more sockets (`[proto:]host[:port]`)",
                ValueKind::Host => "an address or a host name",
                ValueKind::IntOrId => "a number or a name",
                ValueKind::Any => "a value",
            };
            self.diags.push(
                Diagnostic::error(Kind::GlobalValue, span, format!("`{name}` takes {want}"))
                    .with_label("wrong kind of value"),
            );
        }
        g
    }

    fn route(&mut self, mut r: Route) -> Route {
        let d = self.dialect;
        let kw = r.keyword.name.as_str();
        let kamailio_only = matches!(kw, "request_route" | "reply_route" | "onsend_route");
        let opensips_only = matches!(r.rtype, RouteType::Startup | RouteType::Timer | RouteType::Local);
        if kamailio_only && d != Dialect::Kamailio {
            self.dialect_error(
                r.keyword.span,
                &format!("`{kw}`"),
                &format!("`{kw}` is Kamailio (3.0 and later) syntax"),
            );
        } else if opensips_only && d != Dialect::OpenSips {
            self.dialect_error(r.keyword.span, &format!("`{kw}`"), &format!("`{kw}` is OpenSIPS syntax"));
        } else if r.rtype == RouteType::Event && is_openser(d) {
            self.dialect_error(r.keyword.span, "`event_route`", "`event_route` is Kamailio and OpenSIPS syntax");
        }
        let numbered = matches!(r.rtype, RouteType::Failure | RouteType::Branch);
        match &r.name {
            None if numbered || matches!(r.rtype, RouteType::Event | RouteType::Timer) => {
                let k = r.keyword.name.clone();
                self.error(r.keyword.span, format!("`{k}` needs a number or name: `{k}[1] {{ … }}`"));
            }
            Some(RouteName::Number(n, span)) if is_openser(d) => {
                let (min, max) = match r.rtype {
                    RouteType::Request => (0, OPENSER_ROUTE_MAX),
                    RouteType::Error => {
                        self.error(*span, "`error_route` takes no number");
                        (0, 0)
                    }
                    _ => (1, OPENSER_ROUTE_MAX),
                };
                if *n < min || *n > max {
                    let k = r.keyword.name.clone();
                    let e = self.error(*span, format!("invalid `{k}` number {n}"));
                    e.label = Some(format!("{} numbers these blocks {min} to {max}", d.display_name()));
                    e.notes.push(format!(
                        "{} has {} route tables of each type; Kamailio and OpenSIPS also accept names",
                        d.display_name(),
                        OPENSER_ROUTE_MAX + 1
                    ));
                    if r.rtype != RouteType::Request && *n == 0 {
                        e.help.push(format!("the default `{k}` has no number: `{k} {{ … }}`"));
                    }
                }
            }
            Some(RouteName::Name(_, span)) if is_openser(d) && r.rtype != RouteType::Event => {
                self.dialect_error(*span, "a named route", "named routes (`route[RELAY]`) are Kamailio and OpenSIPS syntax; OpenSER 1.3 numbers its routes 0 to 39");
            }
            _ => {}
        }
        if r.interval.is_some() && r.rtype != RouteType::Timer {
            let span = r.interval.as_ref().map(|i| i.span).unwrap_or(r.span);
            self.error(span, "only `timer_route` takes an interval");
        }
        // `route[0]` and `onreply_route[0]` are the main blocks: `route {}`.
        if matches!(r.rtype, RouteType::Request | RouteType::OnReply) && matches!(r.name, Some(RouteName::Number(0, _)))
        {
            r.name = None;
        }
        r.body = self.block(r.body, Ctx::default());
        r
    }

    // ------------------------------------------------------------ statements

    fn block(&mut self, b: Block, ctx: Ctx) -> Block {
        let n = b.stmts.len();
        let stmts = b
            .stmts
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let mut c = ctx;
                c.last_in_case = ctx.last_in_case && i + 1 == n;
                self.stmt(s, c)
            })
            .collect();
        Block { stmts, span: b.span }
    }

    fn nested(&mut self, b: Block, ctx: Ctx) -> Block {
        self.block(b, Ctx { last_in_case: false, ..ctx })
    }

    fn stmt(&mut self, s: Stmt, ctx: Ctx) -> Stmt {
        let span = s.span;
        let kind = match s.kind {
            StmtKind::Call(c) => StmtKind::Call(self.call(c)),
            StmtKind::RouteCall(name) => {
                self.route_ref(&name);
                StmtKind::RouteCall(name)
            }
            StmtKind::Assign { target, op, value } => StmtKind::Assign { target, op, value: self.expr(value) },
            StmtKind::If { cond, then, otherwise } => StmtKind::If {
                cond: self.expr(cond),
                then: self.nested(then, ctx),
                otherwise: otherwise.map(|b| self.nested(b, ctx)),
            },
            StmtKind::Switch { subject, cases } => {
                if is_openser(self.dialect) && !matches!(subject.kind, ExprKind::PVar(_)) {
                    self.dialect_error(subject.span, "a `switch` on anything but a pseudo-variable", "OpenSER 1.3 switches on a pseudo-variable (`switch($rU)`); Kamailio and OpenSIPS accept expressions");
                }
                let subject = self.expr(subject);
                let cases = cases
                    .into_iter()
                    .map(|c| {
                        if let Some(Expr { kind: ExprKind::Word(w), span }) = &c.label {
                            let e = self.error(*span, format!("a `case` label is a number or a string, found `{w}`"));
                            e.help.push(format!("quote it (`case \"{w}\":`) or define it with `#!define`"));
                        }
                        let label = c.label.map(|l| self.expr(l));
                        // OpenSER 1.3: `default: actions` takes no `break`.
                        let last_in_case = label.is_some() || self.dialect != Dialect::OpenSer13;
                        let inner = Ctx { last_in_case, in_switch: true, in_while: ctx.in_while };
                        let body = self.block(Block { stmts: c.body, span: c.span }, inner).stmts;
                        Case { label, body, span: c.span }
                    })
                    .collect();
                StmtKind::Switch { subject, cases }
            }
            StmtKind::While { cond, body } => {
                StmtKind::While { cond: self.expr(cond), body: self.nested(body, Ctx { in_while: true, ..ctx }) }
            }
            StmtKind::Block(b) => StmtKind::Block(self.nested(b, ctx)),
            StmtKind::Return(value) => StmtKind::Return(value.map(|v| self.return_value(v))),
            StmtKind::Break => self.brk(span, ctx),
            other => other,
        };
        Stmt { kind, span }
    }

    fn brk(&mut self, span: Span, ctx: Ctx) -> StmtKind {
        match self.dialect {
            Dialect::Ser09 if !ctx.in_switch => {
                self.diags.push(
                    Diagnostic::warning(Kind::Deprecated, span, "`break` in a route returns from it (SER/OpenSER 0.9)")
                        .with_note("OpenSER 1.x and every later dialect reject `break` outside a `switch`")
                        .with_help("write `return;` — it means the same and reads the same everywhere"),
                );
                StmtKind::Ser09Break
            }
            Dialect::OpenSer13 if ctx.last_in_case => StmtKind::Break,
            Dialect::OpenSer13 if ctx.in_switch => {
                self.dialect_error(span, "`break` here", "OpenSER 1.3 accepts `break` only as the last statement of a `case`; Kamailio and OpenSIPS also accept it nested in a case or in a `while`");
                StmtKind::Break
            }
            Dialect::Kamailio | Dialect::OpenSips if ctx.in_switch || ctx.in_while => StmtKind::Break,
            Dialect::Kamailio => {
                self.diags.push(
                    Diagnostic::warning(
                        Kind::Deprecated,
                        span,
                        "`break` outside a `switch` or `while` leaves the route",
                    )
                    .with_note("Kamailio ends the current route here, as `return` does")
                    .with_help("write `return;`"),
                );
                StmtKind::Return(None)
            }
            _ => {
                let name = self.dialect.display_name();
                let e = self.error(span, "`break` outside a `switch`");
                e.label = Some("nothing to break out of".to_string());
                e.notes.push(format!(
                    "{name} uses `break` to end a `case`; in SER/OpenSER 0.9 `break` in a route returned from it"
                ));
                e.help
                    .push("write `return;` to leave the route, or read the file with `--dialect ser-0.9`".to_string());
                StmtKind::Break
            }
        }
    }

    fn return_value(&mut self, v: Expr) -> Expr {
        match v.kind {
            ExprKind::Paren(inner) => {
                let inner = self.expr(*inner);
                if is_openser(self.dialect) && !matches!(inner.kind, ExprKind::Int(_)) {
                    self.dialect_error(
                        inner.span,
                        "returning anything but a number",
                        "OpenSER 1.3 returns a number (`return(-1)`); Kamailio and OpenSIPS return expressions",
                    );
                }
                inner
            }
            _ => {
                let v = self.expr(v);
                if is_openser(self.dialect) {
                    let text = match &v.kind {
                        ExprKind::Int(n) => format!("return({n});"),
                        _ => "return(N);".to_string(),
                    };
                    self.dialect_error(
                        v.span,
                        "`return` without parentheses",
                        "OpenSER 1.3 writes `return(N)`; `return N` is Kamailio (3.0 and later) and OpenSIPS syntax",
                    )
                    .help
                    .insert(0, format!("write `{text}`"));
                }
                v
            }
        }
    }

    fn route_ref(&mut self, name: &RouteName) {
        if !is_openser(self.dialect) {
            return;
        }
        match name {
            RouteName::Number(n, span) if !(0..=OPENSER_ROUTE_MAX).contains(n) => {
                let name = self.dialect.display_name();
                let e = self.error(*span, format!("invalid route number {n}"));
                e.label = Some(format!("{name} numbers routes 0 to {OPENSER_ROUTE_MAX}"));
            }
            RouteName::Name(_, span) => {
                self.dialect_error(
                    *span,
                    "calling a route by name",
                    "named routes (`route(RELAY)`) are Kamailio and OpenSIPS syntax; OpenSER 1.3 calls `route(N)`",
                );
            }
            _ => {}
        }
    }

    fn call(&mut self, mut c: Call) -> Call {
        let max = if is_openser(self.dialect) { 2 } else { 6 };
        if c.args.len() > max {
            let span = c.args[max].span.to(c.args[c.args.len() - 1].span);
            let n = c.args.len();
            let name = self.dialect.display_name();
            let msg = format!("`{}` is called with {n} arguments; {name} passes at most {max}", c.name.name);
            let mut d = Diagnostic::error(Kind::Syntax, span, msg).with_label("too many arguments");
            if is_openser(self.dialect) {
                d = d.with_note("Kamailio and OpenSIPS pass up to 6 arguments; this file is read as OpenSER 1.3");
            }
            self.diags.push(d);
        }
        c.args = c.args.into_iter().map(|a| self.expr(a)).collect();
        c
    }

    // ------------------------------------------------------------ expressions

    fn expr(&mut self, e: Expr) -> Expr {
        if self.dialect == Dialect::Kamailio {
            return self.kamailio_comparison(e);
        }
        self.expr_default(e)
    }

    fn expr_default(&mut self, e: Expr) -> Expr {
        let span = e.span;
        let kind = match e.kind {
            ExprKind::Binary { op, .. } if op.is_logical() => return self.chain(e, Chain::Logic),
            ExprKind::Binary { op, .. } if is_arith(op) => return self.chain(e, Chain::Arith),
            ExprKind::Binary { op, .. } if is_bit(op) => return self.chain(e, Chain::Bit),
            ExprKind::Binary { op, lhs, rhs } => {
                ExprKind::Binary { op, lhs: Box::new(self.expr(*lhs)), rhs: Box::new(self.expr(*rhs)) }
            }
            ExprKind::Unary { op: UnaryOp::Neg, expr } => {
                let inner = self.expr(*expr);
                match inner.kind {
                    ExprKind::Int(n) => ExprKind::Int(-n),
                    _ => ExprKind::Unary { op: UnaryOp::Neg, expr: Box::new(inner) },
                }
            }
            ExprKind::Unary { op, expr } => ExprKind::Unary { op, expr: Box::new(self.expr(*expr)) },
            ExprKind::Paren(inner) => ExprKind::Paren(Box::new(self.expr(*inner))),
            ExprKind::Word(w) => self.word(w, span),
            ExprKind::PVar(p) if p.name == "null" && p.inner.is_none() => ExprKind::Null,
            ExprKind::Call(c) => ExprKind::Call(self.call(c)),
            ExprKind::RouteCall(name) => {
                self.route_ref(&name);
                ExprKind::RouteCall(name)
            }
            other => other,
        };
        Expr { kind, span }
    }

    fn word(&mut self, w: String, span: Span) -> ExprKind {
        if let Some(v) = boolean_word(&w) {
            return ExprKind::Int(v);
        }
        match w.as_str() {
            "myself" => return ExprKind::Myself,
            "null" | "NULL" => return ExprKind::Null,
            "msg:len" => return ExprKind::Operand(Operand::MsgLen),
            "status" if is_openser(self.dialect) => {
                self.diags.push(
                    Diagnostic::warning(Kind::DialectAmbiguity, span, "OpenSER 1.3 reads `status` as `uri`")
                        .with_label("this is the Request-URI here")
                        .with_note("OpenSER 1.3's lexer makes `status` a synonym of `uri`; Kamailio and OpenSIPS read it as the reply status")
                        .with_help("write `uri` if the Request-URI is meant; test a reply's status with `t_check_status()` or `$rs`"),
                );
                return ExprKind::Operand(Operand::Uri);
            }
            _ => {}
        }
        match Operand::from_word(&w) {
            Some(op) => ExprKind::Operand(op),
            None => ExprKind::Word(w),
        }
    }

    /// Rebuilds a chain of same-family binary operators with the dialect's
    /// precedence, warning where dialects would read it differently.
    fn chain(&mut self, e: Expr, family: Chain) -> Expr {
        let mut operands = Vec::new();
        let mut ops = Vec::new();
        flatten(e, family, &mut operands, &mut ops);
        let operands: Vec<Expr> = operands.into_iter().map(|o| self.expr(o)).collect();
        // Kamailio's levels (cfg.y: `||` < `&&`; `|` < `&` < `^` < shifts;
        // `+ -` < `* / %`); OpenSER and OpenSIPS read each family at one level.
        let prec: fn(BinaryOp) -> u8 = |op| match op {
            BinaryOp::And | BinaryOp::BitAnd | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 1,
            BinaryOp::BitXor => 2,
            BinaryOp::Shl | BinaryOp::Shr => 3,
            _ => 0,
        };
        let c_like = match family {
            Chain::Logic => self.dialect.and_binds_tighter(),
            Chain::Arith | Chain::Bit => self.dialect == Dialect::Kamailio,
        };
        // The readings differ only where a tighter operator follows a looser one.
        let differs = ops
            .iter()
            .enumerate()
            .find_map(|(i, (op, _))| ops[..i].iter().find(|(o, _)| prec(*o) < prec(*op)).map(|(o, _)| (*o, *op)));
        if let Some((loose, tight)) = differs {
            let span = operands[0].span.to(operands[operands.len() - 1].span);
            let (same, c) = match family {
                Chain::Logic => ("`&&` and `||` at one level, left to right", "`&&` before `||`"),
                Chain::Arith => ("`+ - * / %` at one level, left to right", "`* / %` before `+ -`"),
                Chain::Bit => ("`| & ^` at one level, left to right", "`^` before `&` before `|`"),
            };
            let (here, other) = if c_like {
                (c, format!("OpenSER and OpenSIPS read {same}"))
            } else {
                (same, format!("Kamailio (3.0 and later) reads {c}"))
            };
            self.diags.push(
                Diagnostic::warning(
                    Kind::DialectAmbiguity,
                    span,
                    format!(
                        "this mix of operators reads differently across dialects (`{}` after `{}`)",
                        tight.as_str(),
                        loose.as_str()
                    ),
                )
                .with_note(format!("{} reads {here}; {other}", self.dialect.display_name()))
                .with_help("add parentheses to say which is meant"),
            );
        }
        if c_like {
            build_prec(operands, ops, prec)
        } else {
            build_prec(operands, ops, |_| 0)
        }
    }

    /// Kamailio reads `!` before a comparison (`!$a == 1` is `(!$a) == 1`), and
    /// comparisons before bitwise operators (`$a & 1 == 1` is `$a & (1 == 1)`);
    /// OpenSER reads the comparison as one element. Rebuilds the Kamailio tree.
    fn kamailio_comparison(&mut self, e: Expr) -> Expr {
        let span = e.span;
        match e.kind {
            // (`!uri == myself` stays `!(uri == myself)`: core operands are not values in Kamailio.)
            ExprKind::Unary { op: UnaryOp::Not, expr }
                if matches!(&expr.kind, ExprKind::Binary { op, lhs, .. }
                    if op.is_comparison() && !matches!(lhs.kind, ExprKind::Operand(_) | ExprKind::Myself | ExprKind::Word(_))) =>
            {
                let ExprKind::Binary { op, lhs, rhs } = expr.kind else { unreachable!("matched above") };
                self.diags.push(
                    Diagnostic::warning(Kind::DialectAmbiguity, span, "`!` before a comparison reads differently across dialects")
                        .with_note("Kamailio (3.0 and later) applies `!` to the left operand; OpenSER and OpenSIPS negate the comparison")
                        .with_help("write `!(a == b)` or `(!a) == b`"),
                );
                let not = Expr { span: lhs.span, kind: ExprKind::Unary { op: UnaryOp::Not, expr: lhs } };
                let e = Expr { span, kind: ExprKind::Binary { op, lhs: Box::new(not), rhs } };
                self.expr_default(e)
            }
            ExprKind::Binary { op, lhs, rhs } if op.is_comparison() && (is_bit_chain(&lhs) || is_bit_chain(&rhs)) => {
                let mut operands = Vec::new();
                let mut ops = Vec::new();
                flatten(*lhs, Chain::Bit, &mut operands, &mut ops);
                let mut right = Vec::new();
                let mut right_ops = Vec::new();
                flatten(*rhs, Chain::Bit, &mut right, &mut right_ops);
                let last = operands.pop().expect("a chain has an operand");
                let mut right = right.into_iter();
                let first = right.next().expect("a chain has an operand");
                let cmp_span = last.span.to(first.span);
                operands.push(Expr {
                    span: cmp_span,
                    kind: ExprKind::Binary { op, lhs: Box::new(last), rhs: Box::new(first) },
                });
                operands.extend(right);
                ops.extend(right_ops);
                self.diags.push(
                    Diagnostic::warning(Kind::DialectAmbiguity, span, "a comparison next to a bitwise operator reads differently across dialects")
                        .with_note("Kamailio (3.0 and later) compares before applying `| & ^`; OpenSER and OpenSIPS apply them first")
                        .with_help("add parentheses to say which is meant"),
                );
                let operands: Vec<Expr> = operands.into_iter().map(|o| self.expr(o)).collect();
                build_prec(operands, ops, |op| match op {
                    BinaryOp::BitAnd => 1,
                    BinaryOp::BitXor => 2,
                    BinaryOp::Shl | BinaryOp::Shr => 3,
                    _ => 0,
                })
            }
            kind => self.expr_default(Expr { kind, span }),
        }
    }
}

fn is_bit_chain(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Binary { op, .. } if is_bit(*op))
}

fn is_bit(op: BinaryOp) -> bool {
    matches!(op, BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor | BinaryOp::Shl | BinaryOp::Shr)
}

#[derive(Clone, Copy, PartialEq)]
enum Chain {
    Logic,
    Arith,
    Bit,
}

fn is_arith(op: BinaryOp) -> bool {
    matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod)
}

fn in_family(op: BinaryOp, family: Chain) -> bool {
    match family {
        Chain::Logic => op.is_logical(),
        Chain::Arith => is_arith(op),
        Chain::Bit => is_bit(op),
    }
}

/// The parser builds chains left-deep: `((a op b) op c)`. Collects the operands
/// and operators (with the operator's span) without crossing parentheses.
fn flatten(e: Expr, family: Chain, operands: &mut Vec<Expr>, ops: &mut Vec<(BinaryOp, Span)>) {
    // Walk the left spine iteratively (chains can be long).
    let mut spine = Vec::new();
    let mut cur = e;
    loop {
        match cur.kind {
            ExprKind::Binary { op, lhs, rhs } if in_family(op, family) => {
                spine.push((op, *rhs, cur.span));
                cur = *lhs;
            }
            kind => {
                operands.push(Expr { kind, span: cur.span });
                break;
            }
        }
    }
    while let Some((op, rhs, span)) = spine.pop() {
        ops.push((op, span));
        operands.push(rhs);
    }
}

fn join(op: BinaryOp, a: Expr, b: Expr) -> Expr {
    let span = a.span.to(b.span);
    Expr { kind: ExprKind::Binary { op, lhs: Box::new(a), rhs: Box::new(b) }, span }
}

/// Two levels: runs joined by tight operators first, then the loose ones, each
/// left-associative.
/// Builds a left-associative tree from a flat chain with operator levels
/// `prec` (higher binds tighter).
fn build_prec(operands: Vec<Expr>, ops: Vec<(BinaryOp, Span)>, prec: fn(BinaryOp) -> u8) -> Expr {
    let mut out: Vec<Expr> = Vec::with_capacity(operands.len());
    let mut pending: Vec<BinaryOp> = Vec::new();
    let reduce = |out: &mut Vec<Expr>, op: BinaryOp| {
        let b = out.pop().expect("an operand");
        let a = out.pop().expect("an operand");
        out.push(join(op, a, b));
    };
    let mut it = operands.into_iter();
    out.push(it.next().expect("a chain has an operand"));
    for ((op, _), rhs) in ops.into_iter().zip(it) {
        while let Some(&top) = pending.last() {
            if prec(top) < prec(op) {
                break;
            }
            pending.pop();
            reduce(&mut out, top);
        }
        pending.push(op);
        out.push(rhs);
    }
    while let Some(top) = pending.pop() {
        reduce(&mut out, top);
    }
    out.pop().expect("one tree")
}
