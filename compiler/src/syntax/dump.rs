//! A readable, stable text dump of an [`ast::Config`](super::ast::Config), for snapshot tests.
//!
//! Reviewers read these dumps to check the parser, above all the precedence of
//! `!`, `&&`/`||`, comparisons and arithmetic, so every expression is printed as
//! a fully parenthesised S-expression. The format:
//!
//! ```text
//! dialect openser-1.3
//! global debug = 3 @1:1
//! loadmodule "tm.so" @2:1
//! route request @3:1
//!   if @4:5
//!     cond (or
//!            (and
//!              (not (call is_method "INVITE"))
//!              (== uri myself))
//!            (=~ $rU "^1"))
//!     then
//!       call t_relay() @5:9
//!     else
//!       call sl_send_reply("404", "Not here") @7:9
//!       exit @8:9
//! ```
//!
//! # Layout
//!
//! - The first line is `dialect ID` ([`Dialect::id`](super::dialect::Dialect::id)).
//! - One line per item and per statement; what a node contains is indented two
//!   spaces below it.
//! - Items and statements (and switch cases and TLS domain settings) end their
//!   first line with their position `@LINE:COL` (1-based; the column counts
//!   characters). Outside the main file (`FileId(0)`) the file's name comes first:
//!   `@inc.cfg:3:1`. Expressions carry no positions.
//!
//! # Items
//!
//! `global NAME = VALUE [desc "…"]`, `loadmodule "tm.so"`,
//! `modparam "tm" "fr_timer" 30`, `route TYPE[NAME] [every N]`,
//! `tls_domain KEYWORD` (its settings below it as `setting NAME = VALUE`),
//! `error-item`.
//!
//! Global and modparam values: integers in decimal, strings quoted with Rust
//! escapes, bare words as `word:LOG_LOCAL0`, sockets as
//! `sockets [udp:1.2.3.4:5060, tcp:[::1]:5061]` (IPv6 hosts always in brackets;
//! host names that are not plain words are quoted), values serc does not model as
//! `raw "source text"`.
//!
//! Route types are `request`, `failure`, `onreply`, `branch`, `error`, `event`,
//! `onsend`, `startup`, `timer`, `local`, whatever keyword the source used; a name
//! or number follows in brackets (`route failure[2]`, `route request[RELAY]`,
//! `route timer[name] every 60`); the main block has none (`route request`).
//!
//! # Statements
//!
//! - `call t_relay()`, `call sl_send_reply("404", "Not here")`: arguments in the
//!   compact expression form, always on one line; a call written without
//!   parentheses prints without them (`call t_relay`).
//! - `route-call 2`, `route-call RELAY`.
//! - `assign $var(i) += (+ $var(i) 1)`, `return`, `return 1`, `switch $rU`:
//!   the expression goes on the statement's line when it ends by column 60;
//!   else the line ends after the keyword and target (and the position), and the
//!   expression follows on its own lines, indented two spaces.
//! - `if`: a `cond EXPR` line, a `then` line with the statements below it and,
//!   when there is one, an `else` line with its statements.
//! - `while`: a `cond EXPR` line and a `body` line with the statements below it.
//! - `switch SUBJECT`: its cases below it as `case LABEL` (label placed like an
//!   assigned value) or `default`, each with its statements below it.
//! - `block` (a bare `{ … }`) with its statements below it.
//! - `exit`, `drop`, `break`, `ser09-break` (SER 0.9's `break` that returns from
//!   the route), `error-stmt`.
//!
//! # Expressions
//!
//! Leaves: integers in decimal, strings quoted with Rust escapes (`"a\"b"`),
//! pseudo-variables in their source form (`$ru`, `$avp(s:x)`, and bracketed when
//! they have an index or transformations: `$(hdr(Via)[1]{s.len})`, `[*]`,
//! `[$var(i)]`), core operands by name (`uri`, `msg:len`), `myself`, `null`, IP
//! addresses, networks (`10.0.0.0/8`, `10.0.0.0/255.0.0.0`), bare words as
//! `word:sip.example.com`, `(route 2)`, `error-expr`.
//!
//! Nodes: `(call NAME ARG…)`, `(not X)` (`!`), `(~ X)`, `(neg X)` (unary `-`),
//! `(and L R)` (`&&`), `(or L R)` (`||`), `(OP L R)` for the other binary
//! operators as written (`==`, `!=`, `=~`, `<`, `+`, `&`, `<<` …), and `(paren X)`
//! for the author's own parentheses. The logical operators are words so that they
//! stand out from the bitwise `&` and `|`.
//!
//! A node is printed on one line when that line, the closing parentheses after it
//! included, ends by column 60. Otherwise its head (`(and`, `(call f`) stays on
//! the line and each operand goes on a line of its own, indented two spaces more
//! than the node's `(`, the node's `)` closing its last operand's line. The same
//! rule then applies to each operand. A leaf is never broken, even if too long.

use std::fmt::{self, Write};
use std::net::IpAddr;

use super::ast::{
    BinaryOp, Block, Call, Case, Config, Expr, ExprKind, Global, GlobalValue, Host, Item, ItemKind, ModParamValue,
    NetMask, PVar, PVarIndex, Route, RouteName, RouteType, Socket, Stmt, StmtKind, UnaryOp,
};
use crate::source::{SourceMap, Span};

/// Lines of expressions end by this column when they can.
const WIDTH: usize = 60;
/// Indentation of each level.
const INDENT: usize = 2;

/// The text dump of `config`; `sources` gives the line and column of each item
/// and statement.
pub fn dump(config: &Config, sources: &SourceMap) -> String {
    let mut d = Dumper { out: String::new(), sources };
    d.out.push_str("dialect ");
    d.out.push_str(config.dialect.id());
    d.out.push('\n');
    for item in &config.items {
        d.item(item);
    }
    d.out
}

struct Dumper<'a> {
    out: String,
    sources: &'a SourceMap,
}

impl Dumper<'_> {
    // ---- lines and positions

    fn indent(&mut self, indent: usize) {
        self.out.extend(std::iter::repeat_n(' ', indent));
    }

    /// A whole line: `text`, then ` @pos` if there is a span.
    fn line(&mut self, indent: usize, text: &str, span: Option<Span>) {
        self.indent(indent);
        self.out.push_str(text);
        if let Some(span) = span {
            self.pos(span);
        }
        self.out.push('\n');
    }

    /// ` @LINE:COL`, or ` @NAME:LINE:COL` outside the main file.
    fn pos(&mut self, span: Span) {
        // A span from a file the map does not hold would be a bug elsewhere; print
        // its raw form rather than panic in a test helper.
        let Some((_, file)) = self.sources.files().nth(span.file.0 as usize) else {
            let _ = write!(self.out, " @#{}:{}..{}", span.file.0, span.start, span.end);
            return;
        };
        let (line, col) = file.line_col(span.start);
        self.out.push_str(" @");
        if span.file.0 != 0 {
            self.out.push_str(&file.name);
            self.out.push(':');
        }
        let _ = write!(self.out, "{line}:{col}");
    }

    fn snippet(&self, span: Span) -> &str {
        match self.sources.files().nth(span.file.0 as usize) {
            Some((_, file)) => file.text.get(span.range()).unwrap_or(""),
            None => "",
        }
    }

    // ---- items

    fn item(&mut self, item: &Item) {
        let span = Some(item.span);
        match &item.kind {
            ItemKind::Global(g) => {
                let text = format!("global {}", self.global(g));
                self.line(0, &text, span);
            }
            ItemKind::LoadModule(s) => self.line(0, &format!("loadmodule {:?}", s.value), span),
            ItemKind::ModParam(m) => {
                let value = match &m.value {
                    ModParamValue::Int(i) => i.value.to_string(),
                    ModParamValue::Str(s) => format!("{:?}", s.value),
                    ModParamValue::Word(w) => format!("word:{}", w.name),
                };
                let text = format!("modparam {:?} {:?} {value}", m.module.value, m.param.value);
                self.line(0, &text, span);
            }
            ItemKind::Route(r) => self.route(r, item.span),
            ItemKind::TlsDomain(t) => {
                self.line(0, &format!("tls_domain {}", t.keyword.name), span);
                for g in &t.settings {
                    let text = format!("setting {}", self.global(g));
                    self.line(INDENT, &text, Some(g.name.span));
                }
            }
            ItemKind::Error => self.line(0, "error-item", span),
        }
    }

    /// `NAME = VALUE [desc "…"]`
    fn global(&self, g: &Global) -> String {
        let mut s = format!("{} = ", g.name.name);
        match &g.value {
            GlobalValue::Int(i) => {
                let _ = write!(s, "{}", i.value);
            }
            GlobalValue::Str(v) => {
                let _ = write!(s, "{:?}", v.value);
            }
            GlobalValue::Word(w) => {
                let _ = write!(s, "word:{}", w.name);
            }
            GlobalValue::Sockets(socks) => {
                s.push_str("sockets [");
                for (i, sock) in socks.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    write_socket(&mut s, sock);
                }
                s.push(']');
            }
            GlobalValue::Raw(span) => {
                let _ = write!(s, "raw {:?}", self.snippet(*span));
            }
        }
        if let Some(desc) = &g.desc {
            let _ = write!(s, " desc {:?}", desc.value);
        }
        s
    }

    fn route(&mut self, r: &Route, span: Span) {
        let mut text = format!("route {}", route_type(r.rtype));
        if let Some(name) = &r.name {
            text.push('[');
            let _ = write_route_name(&mut text, name);
            text.push(']');
        }
        if let Some(every) = &r.interval {
            let _ = write!(text, " every {}", every.value);
        }
        self.line(0, &text, Some(span));
        self.stmts(&r.body.stmts, INDENT);
    }

    // ---- statements

    fn stmts(&mut self, stmts: &[Stmt], indent: usize) {
        for s in stmts {
            self.stmt(s, indent);
        }
    }

    /// `label` on a line of its own, the block's statements below it.
    fn labelled_block(&mut self, indent: usize, label: &str, block: &Block) {
        self.line(indent, label, None);
        self.stmts(&block.stmts, indent + INDENT);
    }

    fn stmt(&mut self, s: &Stmt, indent: usize) {
        let span = Some(s.span);
        match &s.kind {
            StmtKind::Call(c) => {
                let mut text = String::from("call ");
                write_call_stmt(&mut text, c);
                self.line(indent, &text, span);
            }
            StmtKind::RouteCall(name) => {
                let mut text = String::from("route-call ");
                let _ = write_route_name(&mut text, name);
                self.line(indent, &text, span);
            }
            StmtKind::Assign { target, op, value } => {
                let mut head = String::from("assign ");
                let _ = write_pvar(&mut head, target);
                head.push(' ');
                head.push_str(op.as_str());
                self.headed_expr(indent, &head, value, s.span);
            }
            StmtKind::If { cond, then, otherwise } => {
                self.line(indent, "if", span);
                self.cond(indent + INDENT, cond);
                self.labelled_block(indent + INDENT, "then", then);
                if let Some(otherwise) = otherwise {
                    self.labelled_block(indent + INDENT, "else", otherwise);
                }
            }
            StmtKind::Switch { subject, cases } => {
                self.headed_expr(indent, "switch", subject, s.span);
                for case in cases {
                    self.case(case, indent + INDENT);
                }
            }
            StmtKind::While { cond, body } => {
                self.line(indent, "while", span);
                self.cond(indent + INDENT, cond);
                self.labelled_block(indent + INDENT, "body", body);
            }
            StmtKind::Block(b) => {
                self.line(indent, "block", span);
                self.stmts(&b.stmts, indent + INDENT);
            }
            StmtKind::Return(None) => self.line(indent, "return", span),
            StmtKind::Return(Some(e)) => self.headed_expr(indent, "return", e, s.span),
            StmtKind::Exit => self.line(indent, "exit", span),
            StmtKind::Drop => self.line(indent, "drop", span),
            StmtKind::Break => self.line(indent, "break", span),
            StmtKind::Ser09Break => self.line(indent, "ser09-break", span),
            StmtKind::Error => self.line(indent, "error-stmt", span),
            StmtKind::Null => self.line(indent, "null-stmt", span),
        }
    }

    fn case(&mut self, case: &Case, indent: usize) {
        match &case.label {
            Some(label) => self.headed_expr(indent, "case", label, case.span),
            None => self.line(indent, "default", Some(case.span)),
        }
        self.stmts(&case.body, indent + INDENT);
    }

    /// `cond EXPR`: the expression hangs after the label.
    fn cond(&mut self, indent: usize, cond: &Expr) {
        self.indent(indent);
        self.out.push_str("cond ");
        self.expr(cond, indent + "cond ".len(), 0);
        self.out.push('\n');
    }

    /// `head EXPR @pos` when the expression fits on the line, else `head @pos`
    /// with the expression on the lines below.
    fn headed_expr(&mut self, indent: usize, head: &str, e: &Expr, span: Span) {
        let col = indent + head.chars().count() + 1;
        if let Some(text) = compact_within(e, WIDTH.saturating_sub(col)) {
            self.line(indent, &format!("{head} {text}"), Some(span));
        } else {
            self.line(indent, head, Some(span));
            self.indent(indent + INDENT);
            self.expr(e, indent + INDENT, 0);
            self.out.push('\n');
        }
    }

    // ---- expressions

    /// Writes `e` starting at column `col`, followed on its last line by
    /// `trailing` closing parentheses of the nodes around it. No final newline.
    fn expr(&mut self, e: &Expr, col: usize, trailing: usize) {
        if let Some(text) = compact_within(e, WIDTH.saturating_sub(col + trailing)) {
            self.out.push_str(&text);
            return;
        }
        let (head, operands): (String, Vec<&Expr>) = match &e.kind {
            ExprKind::Call(c) if !c.args.is_empty() => (format!("call {}", c.name.name), c.args.iter().collect()),
            ExprKind::Unary { op, expr } => (unary_op(*op).to_string(), vec![&**expr]),
            ExprKind::Binary { op, lhs, rhs } => (binary_op(*op).to_string(), vec![&**lhs, &**rhs]),
            ExprKind::Paren(inner) => ("paren".to_string(), vec![&**inner]),
            _ => {
                // A leaf: never broken.
                let _ = write_compact(&mut self.out, e);
                return;
            }
        };
        self.out.push('(');
        self.out.push_str(&head);
        let last = operands.len() - 1;
        for (i, operand) in operands.into_iter().enumerate() {
            self.out.push('\n');
            self.indent(col + INDENT);
            self.expr(operand, col + INDENT, if i == last { trailing + 1 } else { 0 });
        }
        self.out.push(')');
    }
}

/// The compact (one-line) form of `e` if it has at most `room` characters.
/// Stops rendering as soon as it is too long, so deciding the layout of a big
/// expression costs little.
fn compact_within(e: &Expr, room: usize) -> Option<String> {
    let mut w = Bounded { buf: String::new(), room };
    write_compact(&mut w, e).ok()?;
    Some(w.buf)
}

/// A `fmt::Write` that fails once more than `room` characters are written.
struct Bounded {
    buf: String,
    room: usize,
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.chars().count();
        if n > self.room {
            return Err(fmt::Error);
        }
        self.room -= n;
        self.buf.push_str(s);
        Ok(())
    }
}

fn write_compact(w: &mut impl Write, e: &Expr) -> fmt::Result {
    match &e.kind {
        ExprKind::Int(i) => write!(w, "{i}"),
        ExprKind::Str(s) => write!(w, "{s:?}"),
        ExprKind::PVar(p) => write_pvar(w, p),
        ExprKind::Operand(o) => w.write_str(o.as_str()),
        ExprKind::Myself => w.write_str("myself"),
        ExprKind::Null => w.write_str("null"),
        ExprKind::Ip(ip) => write!(w, "{ip}"),
        ExprKind::Net { addr, mask } => match mask {
            NetMask::Bits(bits) => write!(w, "{addr}/{bits}"),
            NetMask::Addr(mask) => write!(w, "{addr}/{mask}"),
        },
        ExprKind::Word(word) => write!(w, "word:{word}"),
        ExprKind::Select(sel) => write!(w, "@{sel}"),
        ExprKind::Call(c) => {
            write!(w, "(call {}", c.name.name)?;
            for arg in &c.args {
                w.write_char(' ')?;
                write_compact(w, arg)?;
            }
            w.write_char(')')
        }
        ExprKind::RouteCall(name) => {
            w.write_str("(route ")?;
            write_route_name(w, name)?;
            w.write_char(')')
        }
        ExprKind::Unary { op, expr } => {
            write!(w, "({} ", unary_op(*op))?;
            write_compact(w, expr)?;
            w.write_char(')')
        }
        ExprKind::Binary { op, lhs, rhs } => {
            write!(w, "({} ", binary_op(*op))?;
            write_compact(w, lhs)?;
            w.write_char(' ')?;
            write_compact(w, rhs)?;
            w.write_char(')')
        }
        ExprKind::Paren(inner) => {
            w.write_str("(paren ")?;
            write_compact(w, inner)?;
            w.write_char(')')
        }
        ExprKind::Error => w.write_str("error-expr"),
    }
}

/// `name(arg, …)`, or `name` when written without parentheses (and no arguments).
fn write_call_stmt(s: &mut String, c: &Call) {
    s.push_str(&c.name.name);
    if c.parens || !c.args.is_empty() {
        s.push('(');
        for (i, arg) in c.args.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write_compact(s, arg);
        }
        s.push(')');
    }
}

/// The source form: `$ru`, `$avp(s:x)`, `$(hdr(Via)[1]{s.len})`.
fn write_pvar(w: &mut impl Write, p: &PVar) -> fmt::Result {
    let bracketed = p.index.is_some() || !p.transforms.is_empty();
    w.write_char('$')?;
    if bracketed {
        w.write_char('(')?;
    }
    w.write_str(&p.name)?;
    if let Some(inner) = &p.inner {
        write!(w, "({inner})")?;
    }
    match &p.index {
        None => {}
        Some(PVarIndex::At(n)) => write!(w, "[{n}]")?,
        Some(PVarIndex::All) => w.write_str("[*]")?,
        Some(PVarIndex::Dynamic(text)) => write!(w, "[{text}]")?,
    }
    for t in &p.transforms {
        write!(w, "{{{t}}}")?;
    }
    if bracketed {
        w.write_char(')')?;
    }
    Ok(())
}

fn write_route_name(w: &mut impl Write, name: &RouteName) -> fmt::Result {
    match name {
        RouteName::Number(n, _) => write!(w, "{n}"),
        RouteName::Name(s, _) => w.write_str(s),
    }
}

/// `[proto:]host[:port]`
fn write_socket(s: &mut String, sock: &Socket) {
    if let Some(proto) = &sock.proto {
        s.push_str(&proto.name);
        s.push(':');
    }
    match &sock.host {
        Host::Ip(IpAddr::V4(ip), _) => {
            let _ = write!(s, "{ip}");
        }
        Host::Ip(IpAddr::V6(ip), _) => {
            let _ = write!(s, "[{ip}]");
        }
        Host::Name(name, _) => {
            let plain = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*'));
            if plain {
                s.push_str(name);
            } else {
                let _ = write!(s, "{name:?}");
            }
        }
    }
    if let Some(port) = &sock.port {
        let _ = write!(s, ":{}", port.value);
    }
}

fn route_type(t: RouteType) -> &'static str {
    match t {
        RouteType::Request => "request",
        RouteType::Failure => "failure",
        RouteType::OnReply => "onreply",
        RouteType::Branch => "branch",
        RouteType::Error => "error",
        RouteType::Event => "event",
        RouteType::OnSend => "onsend",
        RouteType::Startup => "startup",
        RouteType::Timer => "timer",
        RouteType::Local => "local",
    }
}

/// The logical operators as words (like `not`), the others as written.
fn binary_op(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::And => "and",
        BinaryOp::Or => "or",
        _ => op.as_str(),
    }
}

fn unary_op(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Not => "not",
        UnaryOp::BitNot => "~",
        UnaryOp::Neg => "neg",
        UnaryOp::IntCast => "int",
        UnaryOp::StrCast => "str",
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::source::{FileId, SourceFile};
    use crate::syntax::ast::*;
    use crate::syntax::dialect::Dialect;

    /// Expressions carry no positions in the dump: any span will do.
    const NO: Span = Span { file: FileId(0), start: 0, end: 0 };

    fn sources(main: &str) -> SourceMap {
        let mut map = SourceMap::new();
        map.add(SourceFile::new("main.cfg", "main.cfg", main));
        map
    }

    /// The span of the first `needle` in `text` (file 0).
    fn at(text: &str, needle: &str) -> Span {
        let start = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the test text"));
        Span::new(FileId(0), start, start + needle.len())
    }

    fn ident(name: &str) -> Ident {
        Ident { name: name.to_string(), span: NO }
    }

    fn strlit(value: &str) -> StrLit {
        StrLit { value: value.to_string(), span: NO }
    }

    fn intlit(value: i64) -> IntLit {
        IntLit { value, span: NO }
    }

    fn ex(kind: ExprKind) -> Expr {
        Expr { kind, span: NO }
    }

    fn int(i: i64) -> Expr {
        ex(ExprKind::Int(i))
    }

    fn s(v: &str) -> Expr {
        ex(ExprKind::Str(v.to_string()))
    }

    fn pvar(name: &str, inner: Option<&str>) -> PVar {
        PVar { name: name.to_string(), inner: inner.map(str::to_string), index: None, transforms: vec![], span: NO }
    }

    fn pv(name: &str, inner: Option<&str>) -> Expr {
        ex(ExprKind::PVar(pvar(name, inner)))
    }

    fn call(name: &str, args: Vec<Expr>) -> Call {
        Call { name: ident(name), args, parens: true, span: NO }
    }

    fn call_e(name: &str, args: Vec<Expr>) -> Expr {
        ex(ExprKind::Call(call(name, args)))
    }

    fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        ex(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) })
    }

    fn un(op: UnaryOp, expr: Expr) -> Expr {
        ex(ExprKind::Unary { op, expr: Box::new(expr) })
    }

    fn block(stmts: Vec<Stmt>) -> Block {
        Block { stmts, span: NO }
    }

    fn stmt(kind: StmtKind, span: Span) -> Stmt {
        Stmt { kind, span }
    }

    fn item(kind: ItemKind, span: Span) -> Item {
        Item { kind, span }
    }

    fn route(rtype: RouteType, name: Option<RouteName>, stmts: Vec<Stmt>, span: Span) -> Item {
        let keyword = ident(rtype.keyword());
        let body = block(stmts);
        item(ItemKind::Route(Route { rtype, keyword, name, interval: None, body, span }), span)
    }

    fn global(name: &str, value: GlobalValue) -> Global {
        Global { name: ident(name), value, desc: None }
    }

    fn config(items: Vec<Item>) -> Config {
        Config { dialect: Dialect::OpenSer13, items }
    }

    fn compact(e: &Expr) -> String {
        compact_within(e, usize::MAX).unwrap()
    }

    #[test]
    fn nested_and_or() {
        let text = "\
debug=3
loadmodule \"tm.so\"
route {
    if (!is_method(\"INVITE\") && uri == myself || $rU =~ \"^1\") {
        t_relay();
    } else {
        sl_send_reply(\"404\", \"Not here\");
        exit;
    }
}
";
        let cond = bin(
            BinaryOp::Or,
            bin(
                BinaryOp::And,
                un(UnaryOp::Not, call_e("is_method", vec![s("INVITE")])),
                bin(BinaryOp::Eq, ex(ExprKind::Operand(Operand::Uri)), ex(ExprKind::Myself)),
            ),
            bin(BinaryOp::Match, pv("rU", None), s("^1")),
        );
        let config = config(vec![
            item(ItemKind::Global(global("debug", GlobalValue::Int(intlit(3)))), at(text, "debug")),
            item(ItemKind::LoadModule(strlit("tm.so")), at(text, "loadmodule")),
            route(
                RouteType::Request,
                None,
                vec![stmt(
                    StmtKind::If {
                        cond,
                        then: block(vec![stmt(StmtKind::Call(call("t_relay", vec![])), at(text, "t_relay"))]),
                        otherwise: Some(block(vec![
                            stmt(
                                StmtKind::Call(call("sl_send_reply", vec![s("404"), s("Not here")])),
                                at(text, "sl_send_reply"),
                            ),
                            stmt(StmtKind::Exit, at(text, "exit")),
                        ])),
                    },
                    at(text, "if"),
                )],
                at(text, "route"),
            ),
        ]);
        assert_eq!(
            dump(&config, &sources(text)),
            r#"dialect openser-1.3
global debug = 3 @1:1
loadmodule "tm.so" @2:1
route request @3:1
  if @4:5
    cond (or
           (and
             (not (call is_method "INVITE"))
             (== uri myself))
           (=~ $rU "^1"))
    then
      call t_relay() @5:9
    else
      call sl_send_reply("404", "Not here") @7:9
      exit @8:9
"#
        );
    }

    #[test]
    fn items() {
        let text = "\
debug=3
listen=udp:1.2.3.4:5060 tcp:[::1]:5061 eth0
log_facility=LOG_LOCAL0
alias=\"sip.example.com\"
dst_blacklist=gw:{( tcp , 10.0.0.1 , 5008 )}
my.var = 5 desc \"a custom var\"
loadmodule \"tm.so\"
modparam(\"tm\", \"fr_timer\", 30)
modparam(\"rr\", \"enable_full_lr\", yes)
modparam(\"usrloc\", \"db_url\", \"mysql://ser@localhost/ser\")
route { }
failure_route[2] { }
route[RELAY] { }
timer_route[tick, 60] { }
onreply_route { }
tls_server_domain[1.2.3.4:5061] {
    tls_method=TLSv1
    verify_cert=1
}
}}
";
        let raw = at(text, "gw:{( tcp , 10.0.0.1 , 5008 )}");
        let sockets = vec![
            Socket {
                proto: Some(ident("udp")),
                host: Host::Ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)), NO),
                port: Some(intlit(5060)),
                span: NO,
            },
            Socket {
                proto: Some(ident("tcp")),
                host: Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST), NO),
                port: Some(intlit(5061)),
                span: NO,
            },
            Socket { proto: None, host: Host::Name("eth0".into(), NO), port: None, span: NO },
        ];
        let mut timer =
            route(RouteType::Timer, Some(RouteName::Name("tick".into(), NO)), vec![], at(text, "timer_route"));
        if let ItemKind::Route(r) = &mut timer.kind {
            r.interval = Some(intlit(60));
        }
        let modparam = |module: &str, param: &str, value: ModParamValue, needle: &str| {
            item(ItemKind::ModParam(ModParam { module: strlit(module), param: strlit(param), value }), at(text, needle))
        };
        let config = config(vec![
            item(ItemKind::Global(global("debug", GlobalValue::Int(intlit(3)))), at(text, "debug")),
            item(ItemKind::Global(global("listen", GlobalValue::Sockets(sockets))), at(text, "listen")),
            item(ItemKind::Global(global("log_facility", GlobalValue::Word(ident("LOG_LOCAL0")))), at(text, "log_")),
            item(ItemKind::Global(global("alias", GlobalValue::Str(strlit("sip.example.com")))), at(text, "alias")),
            item(ItemKind::Global(global("dst_blacklist", GlobalValue::Raw(raw))), at(text, "dst_")),
            item(
                ItemKind::Global(Global {
                    desc: Some(strlit("a custom var")),
                    ..global("my.var", GlobalValue::Int(intlit(5)))
                }),
                at(text, "my.var"),
            ),
            item(ItemKind::LoadModule(strlit("tm.so")), at(text, "loadmodule")),
            modparam("tm", "fr_timer", ModParamValue::Int(intlit(30)), "modparam(\"tm\""),
            modparam("rr", "enable_full_lr", ModParamValue::Word(ident("yes")), "modparam(\"rr\""),
            modparam(
                "usrloc",
                "db_url",
                ModParamValue::Str(strlit("mysql://ser@localhost/ser")),
                "modparam(\"usrloc\"",
            ),
            route(RouteType::Request, None, vec![], at(text, "route {")),
            route(RouteType::Failure, Some(RouteName::Number(2, NO)), vec![], at(text, "failure_route")),
            route(RouteType::Request, Some(RouteName::Name("RELAY".into(), NO)), vec![], at(text, "route[RELAY]")),
            timer,
            route(RouteType::OnReply, None, vec![], at(text, "onreply_route")),
            item(
                ItemKind::TlsDomain(TlsDomain {
                    keyword: ident("tls_server_domain"),
                    settings: vec![
                        Global {
                            name: Ident { name: "tls_method".into(), span: at(text, "tls_method") },
                            ..global("", GlobalValue::Word(ident("TLSv1")))
                        },
                        Global {
                            name: Ident { name: "verify_cert".into(), span: at(text, "verify_cert") },
                            ..global("", GlobalValue::Int(intlit(1)))
                        },
                    ],
                }),
                at(text, "tls_server_domain"),
            ),
            item(ItemKind::Error, at(text, "}}")),
        ]);
        assert_eq!(
            dump(&config, &sources(text)),
            r#"dialect openser-1.3
global debug = 3 @1:1
global listen = sockets [udp:1.2.3.4:5060, tcp:[::1]:5061, eth0] @2:1
global log_facility = word:LOG_LOCAL0 @3:1
global alias = "sip.example.com" @4:1
global dst_blacklist = raw "gw:{( tcp , 10.0.0.1 , 5008 )}" @5:1
global my.var = 5 desc "a custom var" @6:1
loadmodule "tm.so" @7:1
modparam "tm" "fr_timer" 30 @8:1
modparam "rr" "enable_full_lr" word:yes @9:1
modparam "usrloc" "db_url" "mysql://ser@localhost/ser" @10:1
route request @11:1
route failure[2] @12:1
route request[RELAY] @13:1
route timer[tick] every 60 @14:1
route onreply @15:1
tls_domain tls_server_domain @16:1
  setting tls_method = word:TLSv1 @17:5
  setting verify_cert = 1 @18:5
error-item @20:1
"#
        );
    }

    #[test]
    fn statements() {
        let text = "\
route {
    route(2); route(RELAY);
    $var(i) += $var(i) + 1;
    $avp(s:x) := \"a\";
    switch ($rU) {
    case 1: drop;
    case \"abc\": break;
    default: t_relay;
    }
    while ($var(i) < 10) { $var(i) = $var(i) + 1; }
    { ser09_break; error; }
    if (route(3)) { return; } else { return -1; }
    exit;
}
";
        let stmts = vec![
            stmt(StmtKind::RouteCall(RouteName::Number(2, NO)), at(text, "route(2)")),
            stmt(StmtKind::RouteCall(RouteName::Name("RELAY".into(), NO)), at(text, "route(RELAY)")),
            stmt(
                StmtKind::Assign {
                    target: pvar("var", Some("i")),
                    op: AssignOp::Add,
                    value: bin(BinaryOp::Add, pv("var", Some("i")), int(1)),
                },
                at(text, "$var(i) +="),
            ),
            stmt(
                StmtKind::Assign { target: pvar("avp", Some("s:x")), op: AssignOp::SetAll, value: s("a") },
                at(text, "$avp"),
            ),
            stmt(
                StmtKind::Switch {
                    subject: pv("rU", None),
                    cases: vec![
                        Case {
                            label: Some(int(1)),
                            body: vec![stmt(StmtKind::Drop, at(text, "drop"))],
                            span: at(text, "case 1"),
                        },
                        Case {
                            label: Some(s("abc")),
                            body: vec![stmt(StmtKind::Break, at(text, "break"))],
                            span: at(text, "case \"abc\""),
                        },
                        Case {
                            label: None,
                            body: vec![stmt(
                                StmtKind::Call(Call { parens: false, ..call("t_relay", vec![]) }),
                                at(text, "t_relay"),
                            )],
                            span: at(text, "default"),
                        },
                    ],
                },
                at(text, "switch"),
            ),
            stmt(
                StmtKind::While {
                    cond: bin(BinaryOp::Lt, pv("var", Some("i")), int(10)),
                    body: block(vec![stmt(
                        StmtKind::Assign {
                            target: pvar("var", Some("i")),
                            op: AssignOp::Set,
                            value: bin(BinaryOp::Add, pv("var", Some("i")), int(1)),
                        },
                        at(text, "$var(i) ="),
                    )]),
                },
                at(text, "while"),
            ),
            stmt(
                StmtKind::Block(block(vec![
                    stmt(StmtKind::Ser09Break, at(text, "ser09_break")),
                    stmt(StmtKind::Error, at(text, "error")),
                ])),
                at(text, "{ ser09"),
            ),
            stmt(
                StmtKind::If {
                    cond: ex(ExprKind::RouteCall(RouteName::Number(3, NO))),
                    then: block(vec![stmt(StmtKind::Return(None), at(text, "return;"))]),
                    otherwise: Some(block(vec![stmt(
                        StmtKind::Return(Some(un(UnaryOp::Neg, int(1)))),
                        at(text, "return -1"),
                    )])),
                },
                at(text, "if"),
            ),
            stmt(StmtKind::Exit, at(text, "exit")),
        ];
        let config = config(vec![route(RouteType::Request, None, stmts, at(text, "route {"))]);
        assert_eq!(
            dump(&config, &sources(text)),
            r#"dialect openser-1.3
route request @1:1
  route-call 2 @2:5
  route-call RELAY @2:15
  assign $var(i) += (+ $var(i) 1) @3:5
  assign $avp(s:x) := "a" @4:5
  switch $rU @5:5
    case 1 @6:5
      drop @6:13
    case "abc" @7:5
      break @7:17
    default @8:5
      call t_relay @8:14
  while @10:5
    cond (< $var(i) 10)
    body
      assign $var(i) = (+ $var(i) 1) @10:28
  block @11:5
    ser09-break @11:7
    error-stmt @11:20
  if @12:5
    cond (route 3)
    then
      return @12:21
    else
      return (neg 1) @12:38
  exit @13:5
"#
        );
    }

    #[test]
    fn leaves() {
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        let mut hdr = pvar("hdr", Some("Via"));
        hdr.index = Some(PVarIndex::At(1));
        hdr.transforms = vec!["s.len".into()];
        let mut all = pvar("avp", Some("s:x"));
        all.index = Some(PVarIndex::All);
        let mut dynamic = pvar("avp", Some("i:3"));
        dynamic.index = Some(PVarIndex::Dynamic("$var(i)".into()));
        let mut transformed = pvar("ru", None);
        transformed.transforms = vec!["uri.user".into(), "param.value,expires".into()];
        let cases = [
            (int(42), "42"),
            (int(-7), "-7"),
            (s("a \"quoted\"\tline\n"), r#""a \"quoted\"\tline\n""#),
            (pv("ru", None), "$ru"),
            (pv("avp", Some("s:x")), "$avp(s:x)"),
            (ex(ExprKind::PVar(hdr)), "$(hdr(Via)[1]{s.len})"),
            (ex(ExprKind::PVar(all)), "$(avp(s:x)[*])"),
            (ex(ExprKind::PVar(dynamic)), "$(avp(i:3)[$var(i)])"),
            (ex(ExprKind::PVar(transformed)), "$(ru{uri.user}{param.value,expires})"),
            (ex(ExprKind::Operand(Operand::SrcIp)), "src_ip"),
            (ex(ExprKind::Operand(Operand::MsgLen)), "msg:len"),
            (ex(ExprKind::Myself), "myself"),
            (ex(ExprKind::Null), "null"),
            (ex(ExprKind::Ip(v4(192, 168, 0, 1))), "192.168.0.1"),
            (ex(ExprKind::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST))), "::1"),
            (ex(ExprKind::Net { addr: v4(10, 0, 0, 0), mask: NetMask::Bits(8) }), "10.0.0.0/8"),
            (ex(ExprKind::Net { addr: v4(10, 0, 0, 0), mask: NetMask::Addr(v4(255, 0, 0, 0)) }), "10.0.0.0/255.0.0.0"),
            (ex(ExprKind::Word("sip.example.com".into())), "word:sip.example.com"),
            (call_e("is_from_local", vec![]), "(call is_from_local)"),
            (call_e("f", vec![int(1), s("x"), pv("ru", None)]), r#"(call f 1 "x" $ru)"#),
            (ex(ExprKind::RouteCall(RouteName::Name("CHECK".into(), NO))), "(route CHECK)"),
            (un(UnaryOp::BitNot, int(1)), "(~ 1)"),
            (ex(ExprKind::Paren(Box::new(bin(BinaryOp::BitOr, int(1), int(2))))), "(paren (| 1 2))"),
            (bin(BinaryOp::NotMatch, pv("ua", None), s("^x")), r#"(!~ $ua "^x")"#),
            (bin(BinaryOp::Shl, int(1), int(4)), "(<< 1 4)"),
            (ex(ExprKind::Error), "error-expr"),
        ];
        for (e, want) in cases {
            assert_eq!(compact(&e), want);
        }
    }

    #[test]
    fn precedence_of_arithmetic_and_paren() {
        // `if (!($var(a) + 2 * $var(b) >= 10) || $var(c) & 1 == 1)`
        let text = "route {\n    if (x) { drop; }\n}\n";
        let cond = bin(
            BinaryOp::Or,
            un(
                UnaryOp::Not,
                ex(ExprKind::Paren(Box::new(bin(
                    BinaryOp::Ge,
                    bin(BinaryOp::Add, pv("var", Some("a")), bin(BinaryOp::Mul, int(2), pv("var", Some("b")))),
                    int(10),
                )))),
            ),
            bin(BinaryOp::BitAnd, pv("var", Some("c")), bin(BinaryOp::Eq, int(1), int(1))),
        );
        let if_ = StmtKind::If { cond, then: block(vec![stmt(StmtKind::Drop, at(text, "drop"))]), otherwise: None };
        let config = config(vec![route(RouteType::Request, None, vec![stmt(if_, at(text, "if"))], at(text, "route"))]);
        assert_eq!(
            dump(&config, &sources(text)),
            r#"dialect openser-1.3
route request @1:1
  if @2:5
    cond (or
           (not (paren (>= (+ $var(a) (* 2 $var(b))) 10)))
           (& $var(c) (== 1 1)))
    then
      drop @2:14
"#
        );
    }

    /// A node stays on one line when the line, closing parentheses included,
    /// ends by column 60; an assigned value that does not fit after the target
    /// moves below the statement.
    #[test]
    fn line_wrapping() {
        let text = "route {\n    $var(x) = 1;\n    $var(y) = 2;\n    if (x) { drop; }\n}\n";
        let sum = |n: usize| bin(BinaryOp::Add, pv("var", Some("a")), s(&"x".repeat(n)));
        // `  assign $var(x) = ` is 19 columns: 41 are left.
        assert_eq!(compact(&sum(27)).len(), 41);
        // Operands of `(and` start in column 11 (0-based); each call takes 49.
        let long_call = || call_e("f", vec![s(&"y".repeat(38))]);
        assert_eq!(compact(&long_call()).len(), 49);
        let stmts = vec![
            stmt(
                StmtKind::Assign { target: pvar("var", Some("x")), op: AssignOp::Set, value: sum(27) },
                at(text, "$var(x)"),
            ),
            stmt(
                StmtKind::Assign { target: pvar("var", Some("y")), op: AssignOp::Set, value: sum(28) },
                at(text, "$var(y)"),
            ),
            stmt(
                StmtKind::If {
                    // The first call fits (11 + 49 = 60); the second does not,
                    // because of the `)` of the `and` after it.
                    cond: bin(BinaryOp::And, long_call(), long_call()),
                    then: block(vec![stmt(StmtKind::Drop, at(text, "drop"))]),
                    otherwise: None,
                },
                at(text, "if"),
            ),
        ];
        let config = config(vec![route(RouteType::Request, None, stmts, at(text, "route"))]);
        let x27 = "x".repeat(27);
        let x28 = "x".repeat(28);
        let y38 = "y".repeat(38);
        assert_eq!(
            dump(&config, &sources(text)),
            format!(
                r#"dialect openser-1.3
route request @1:1
  assign $var(x) = (+ $var(a) "{x27}") @2:5
  assign $var(y) = @3:5
    (+ $var(a) "{x28}")
  if @4:5
    cond (and
           (call f "{y38}")
           (call f
             "{y38}"))
    then
      drop @4:14
"#
            )
        );
    }

    #[test]
    fn positions_in_included_files() {
        let main = "include_file \"inc.cfg\"\nroute { route(1); }\n";
        let inc = "# included\nroute[1] {\n  drop;\n}\n";
        let mut map = sources(main);
        let inc_id = map.add(SourceFile::new("inc.cfg", "inc.cfg", inc));
        let in_inc = |needle: &str| Span { file: inc_id, ..at(inc, needle) };
        let config = config(vec![
            route(
                RouteType::Request,
                Some(RouteName::Number(1, NO)),
                vec![stmt(StmtKind::Drop, in_inc("drop"))],
                in_inc("route"),
            ),
            route(
                RouteType::Request,
                None,
                vec![stmt(StmtKind::RouteCall(RouteName::Number(1, NO)), at(main, "route(1)"))],
                at(main, "route"),
            ),
        ]);
        assert_eq!(
            dump(&config, &map),
            "\
dialect openser-1.3
route request[1] @inc.cfg:2:1
  drop @inc.cfg:3:3
route request @2:1
  route-call 1 @2:9
"
        );
    }

    #[test]
    fn dialect_header_and_empty_config() {
        let config = Config { dialect: Dialect::Kamailio, items: vec![] };
        assert_eq!(dump(&config, &SourceMap::new()), "dialect kamailio\n");
    }
}
