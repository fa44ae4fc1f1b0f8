//! Control-flow warnings: statements that can never run, and request-route paths
//! that end without relaying, replying or dropping the request.

use std::collections::{HashMap, HashSet};

use super::routes::{RouteKey, RouteTable};
use crate::diag::{Diagnostic, Kind};
use crate::source::Span;
use crate::syntax::ast::*;

/// Functions after which a request has an answer or a next hop.
const HANDLERS: &[&str] = &[
    "t_relay",
    "t_relay_to_udp",
    "t_relay_to_tcp",
    "t_relay_to_tls",
    "forward",
    "forward_udp",
    "forward_tcp",
    "send",
    "sl_send_reply",
    "sl_reply_error",
    "t_reply",
    "t_reply_error",
    "save",
    "save_noreply",
    "www_challenge",
    "proxy_challenge",
    "t_newtran",
    "send_reply",
    "append_to_reply",
];

pub fn check(config: &Config, _table: &RouteTable, diags: &mut Vec<Diagnostic>) {
    for r in config.routes() {
        unreachable(&r.body.stmts, diags);
    }
    let subs: HashMap<RouteKey, &Route> =
        config.routes().filter(|r| r.rtype == RouteType::Request).map(|r| (RouteKey::of(r), r)).collect();
    if let Some(main) = subs.get(&RouteKey::Main) {
        let mut f = Flow { subs: &subs, warned: HashSet::new(), visiting: Vec::new(), diags };
        if let Some(false) = f.stmts(&main.body.stmts, false) {
            let end = main.body.span.end_point();
            let end = Span { start: end.start.saturating_sub(1), ..end };
            f.warn(end, "the main route can end here");
        }
    }
}

/// Warns once per statement list about the first statement after one that
/// always ends it.
fn unreachable(stmts: &[Stmt], diags: &mut Vec<Diagnostic>) {
    let mut ended: Option<&Stmt> = None;
    for s in stmts {
        if let Some(end) = ended {
            diags.push(
                Diagnostic::warning(Kind::Unreachable, s.span, "this statement is never reached")
                    .with_label("unreachable")
                    .with_secondary(end.span, "every path ends here"),
            );
            break;
        }
        match &s.kind {
            StmtKind::If { then, otherwise, .. } => {
                unreachable(&then.stmts, diags);
                if let Some(o) = otherwise {
                    unreachable(&o.stmts, diags);
                }
            }
            StmtKind::While { body, .. } => unreachable(&body.stmts, diags),
            StmtKind::Block(b) => unreachable(&b.stmts, diags),
            StmtKind::Switch { cases, .. } => cases.iter().for_each(|c| unreachable(&c.body, diags)),
            _ => {}
        }
        if ends(s) {
            ended = Some(s);
        }
    }
}

/// Whether every path through `s` leaves the enclosing statement list.
fn ends(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Exit | StmtKind::Drop | StmtKind::Return(_) | StmtKind::Ser09Break | StmtKind::Break => true,
        StmtKind::If { then, otherwise: Some(o), .. } => then.stmts.iter().any(ends) && o.stmts.iter().any(ends),
        StmtKind::Block(b) => b.stmts.iter().any(ends),
        _ => false,
    }
}

struct Flow<'a, 'd> {
    subs: &'a HashMap<RouteKey, &'a Route>,
    warned: HashSet<Span>,
    visiting: Vec<RouteKey>,
    diags: &'d mut Vec<Diagnostic>,
}

impl Flow<'_, '_> {
    fn warn(&mut self, span: Span, what: &str) {
        if self.warned.insert(span) {
            self.diags.push(
                Diagnostic::warning(
                    Kind::UnhandledRequest,
                    span,
                    "a request can get here without being relayed, replied to or dropped",
                )
                .with_label(what.to_string())
                .with_note("the request is then dropped silently and the client retransmits it until it times out")
                .with_help("reply (`sl_send_reply`), relay (`t_relay`) or `drop` on this path"),
            );
        }
    }

    /// Follows `stmts` from a state where the request is (`handled`) or is not
    /// yet answered. Returns the state of the paths that fall through, or `None`
    /// when none does.
    fn stmts(&mut self, stmts: &[Stmt], mut handled: bool) -> Option<bool> {
        for s in stmts {
            handled = self.stmt(s, handled)?;
        }
        Some(handled)
    }

    fn stmt(&mut self, s: &Stmt, handled: bool) -> Option<bool> {
        match &s.kind {
            StmtKind::Call(c) => Some(handled || handles(c)),
            StmtKind::Drop => None,
            StmtKind::Exit | StmtKind::Ser09Break => {
                if !handled {
                    self.warn(s.span, "the script ends here");
                }
                None
            }
            StmtKind::Return(_) => {
                // In the main route a return ends the script; in a sub-route it
                // goes back to the caller, which `route_call` follows.
                Some(handled).filter(|_| self.visiting.last().is_some()).or_else(|| {
                    if !handled {
                        self.warn(s.span, "the script ends here");
                    }
                    None
                })
            }
            StmtKind::RouteCall(name) => self.route_call(name, handled),
            StmtKind::Assign { value, .. } => Some(handled || expr_handles(value)),
            StmtKind::If { cond, then, otherwise } => {
                let h = handled || expr_handles(cond);
                let then_h = if tests_ack(cond) { true } else { h };
                let a = self.stmts(&then.stmts, then_h);
                let b = match otherwise {
                    Some(o) => self.stmts(&o.stmts, h),
                    None => Some(h),
                };
                match (a, b) {
                    (Some(x), Some(y)) => Some(x && y),
                    (Some(x), None) | (None, Some(x)) => Some(x),
                    (None, None) => None,
                }
            }
            StmtKind::Switch { cases, .. } => {
                let mut out = if cases.iter().any(|c| c.label.is_none()) { None } else { Some(handled) };
                for c in cases {
                    let body: Vec<&Stmt> = c.body.iter().take_while(|s| !matches!(s.kind, StmtKind::Break)).collect();
                    let mut h = Some(handled);
                    for s in body {
                        h = match h {
                            Some(x) => self.stmt(s, x),
                            None => None,
                        };
                    }
                    out = match (out, h) {
                        (Some(x), Some(y)) => Some(x && y),
                        (x, None) => x,
                        (None, y) => y,
                    };
                }
                out
            }
            StmtKind::While { body, .. } => {
                let _ = self.stmts(&body.stmts, handled);
                Some(handled)
            }
            StmtKind::Block(b) => self.stmts(&b.stmts, handled),
            _ => Some(handled),
        }
    }

    fn route_call(&mut self, name: &RouteName, handled: bool) -> Option<bool> {
        let key = RouteKey::of_name(RouteType::Request, Some(name));
        if key == RouteKey::Main || self.visiting.contains(&key) || self.visiting.len() > 32 {
            return Some(true);
        }
        let Some(route) = self.subs.get(&key).copied() else { return Some(true) };
        self.visiting.push(key);
        let out = self.stmts(&route.body.stmts, handled);
        self.visiting.pop();
        out
    }
}

fn handles(c: &Call) -> bool {
    HANDLERS.contains(&c.name.name.as_str()) || c.args.iter().any(expr_handles)
}

fn expr_handles(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Call(c) => handles(c),
        ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => expr_handles(expr),
        ExprKind::Binary { lhs, rhs, .. } => expr_handles(lhs) || expr_handles(rhs),
        _ => false,
    }
}

/// `is_method("ACK")` / `method == "ACK"`: an ACK needs no answer.
fn tests_ack(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Call(c) if c.name.name == "is_method" => {
            c.args.iter().any(|a| matches!(&a.kind, ExprKind::Str(s) if s.split('|').any(|m| m == "ACK")))
        }
        ExprKind::Binary { op: BinaryOp::Eq, lhs, rhs } => {
            matches!(lhs.kind, ExprKind::Operand(Operand::Method))
                && matches!(&rhs.kind, ExprKind::Str(s) if s == "ACK")
        }
        ExprKind::Binary { op: BinaryOp::And, lhs, rhs } => tests_ack(lhs) || tests_ack(rhs),
        ExprKind::Paren(inner) => tests_ack(inner),
        _ => false,
    }
}
