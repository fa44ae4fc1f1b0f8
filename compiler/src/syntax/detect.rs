//! Which dialect a file is written in, when nobody said: what it declares, else
//! what its content shows.

use super::ast::*;
use super::dialect::Dialect;
use super::preproc::Tokens;
use crate::diag::{Diagnostic, Kind};
use crate::source::Span;

/// Modules that exist only in Kamailio ≥ 3.0.
const KAMAILIO_MODULES: &[&str] = &[
    "kex",
    "tmx",
    "sanity",
    "ctl",
    "mi_rpc",
    "htable",
    "jsonrpcs",
    "corex",
    "xhttp",
    "app_lua",
    "app_python",
    "ims_usrloc_scscf",
    "rtpengine",
    "ndb_redis",
    "sqlops",
    "secfilter",
    "tcpops",
    "topoh",
    "kemix",
    "rtimer",
];

/// Modules that exist only in OpenSIPS.
const OPENSIPS_MODULES: &[&str] = &[
    "signaling",
    "sipmsgops",
    "proto_udp",
    "proto_tcp",
    "proto_tls",
    "cachedb_local",
    "db_default",
    "mi_json",
    "mi_http",
    "httpd",
    "event_route",
    "drouting",
    "b2b_entities",
    "b2b_logic",
    "clusterer",
    "dialplan_ng",
];

/// The dialect `tokens`/`items` show, with a note saying why; `None` when nothing
/// tells (the caller then reads OpenSER 1.3).
pub fn detect(tokens: &Tokens, items: &[Item]) -> Option<(Dialect, Diagnostic)> {
    let note = |d: Dialect, span: Span, why: String| {
        (
            d,
            Diagnostic::note_at(Kind::Dialect, span, format!("read as {}: {why}", d.display_name()))
                .with_help("pass `--dialect` to read the file as another dialect"),
        )
    };
    if let Some((d, span)) = tokens.declared {
        return Some(note(d, span, "the file declares it".to_string()));
    }
    if let Some(span) = tokens.first_directive {
        return Some(note(Dialect::Kamailio, span, "the file uses Kamailio's preprocessor".to_string()));
    }
    for item in items {
        match &item.kind {
            ItemKind::Route(r) => match r.keyword.name.as_str() {
                kw @ ("request_route" | "reply_route" | "onsend_route") => {
                    return Some(note(Dialect::Kamailio, r.keyword.span, format!("the file has a `{kw}` block")));
                }
                kw @ ("startup_route" | "timer_route" | "local_route") => {
                    return Some(note(Dialect::OpenSips, r.keyword.span, format!("the file has a `{kw}` block")));
                }
                _ => {}
            },
            ItemKind::LoadModule(path) => {
                let file = path.value.rsplit('/').next().unwrap_or("");
                let name = file.strip_suffix(".so").unwrap_or(file);
                if KAMAILIO_MODULES.contains(&name) {
                    return Some(note(Dialect::Kamailio, path.span, format!("it loads `{name}`, a Kamailio module")));
                }
                if OPENSIPS_MODULES.contains(&name) {
                    return Some(note(Dialect::OpenSips, path.span, format!("it loads `{name}`, an OpenSIPS module")));
                }
            }
            ItemKind::Global(g) if g.name.name == "mpath" => {
                if let GlobalValue::Str(s) = &g.value {
                    // (Kamailio 1.5 is an OpenSER 1.x: a Kamailio path alone says nothing.)
                    if s.value.contains("opensips") {
                        return Some(note(Dialect::OpenSips, s.span, "its module path names OpenSIPS".to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    // Named routes: Kamailio and OpenSIPS; nothing above said OpenSIPS.
    for r in items.iter().filter_map(|i| match &i.kind {
        ItemKind::Route(r) => Some(r),
        _ => None,
    }) {
        if let Some(RouteName::Name(n, span)) = &r.name {
            if r.rtype != RouteType::Event {
                return Some(note(Dialect::Kamailio, *span, format!("it names a route (`{n}`)")));
            }
        }
    }
    // `forward(host, port)`: SER/OpenSER 0.9 (1.x takes one "proto:host:port").
    let mut old_forward = None;
    for r in items.iter().filter_map(|i| match &i.kind {
        ItemKind::Route(r) => Some(r),
        _ => None,
    }) {
        visit_calls(&r.body.stmts, &mut |c: &Call| {
            let forwards =
                matches!(c.name.name.as_str(), "forward" | "forward_udp" | "forward_tcp" | "send" | "send_tcp");
            if forwards && c.args.len() == 2 && old_forward.is_none() {
                old_forward = Some((c.name.name.clone(), c.span));
            }
        });
    }
    if let Some((name, span)) = old_forward {
        return Some(note(Dialect::Ser09, span, format!("`{name}(host, port)` is SER/OpenSER 0.9 syntax")));
    }
    // More than two call arguments: OpenSER 1.4 and OpenSIPS (same precedence as OpenSER).
    let mut many_args = None;
    for r in items.iter().filter_map(|i| match &i.kind {
        ItemKind::Route(r) => Some(r),
        _ => None,
    }) {
        visit_calls(&r.body.stmts, &mut |c: &Call| {
            if c.args.len() > 2 && many_args.is_none() {
                many_args = Some((c.name.name.clone(), c.args.len(), c.span));
            }
        });
    }
    if let Some((name, n, span)) = many_args {
        return Some(note(
            Dialect::OpenSips,
            span,
            format!(
                "`{name}` is called with {n} arguments, which OpenSER 1.4 and OpenSIPS allow (OpenSER 1.3: at most 2)"
            ),
        ));
    }
    // SER/OpenSER 0.9: `break` in a route, and no `switch` anywhere.
    let mut route_break = None;
    let mut has_switch = false;
    for r in items.iter().filter_map(|i| match &i.kind {
        ItemKind::Route(r) => Some(r),
        _ => None,
    }) {
        scan(&r.body.stmts, false, &mut route_break, &mut has_switch);
    }
    match route_break {
        Some(span) if !has_switch => Some(note(
            Dialect::Ser09,
            span,
            "`break` ends a route here, which only SER/OpenSER 0.9 allowed".to_string(),
        )),
        _ => None,
    }
}

fn scan(stmts: &[Stmt], in_switch: bool, route_break: &mut Option<Span>, has_switch: &mut bool) {
    for s in stmts {
        match &s.kind {
            StmtKind::Break if !in_switch => {
                route_break.get_or_insert(s.span);
            }
            StmtKind::If { then, otherwise, .. } => {
                scan(&then.stmts, in_switch, route_break, has_switch);
                if let Some(o) = otherwise {
                    scan(&o.stmts, in_switch, route_break, has_switch);
                }
            }
            StmtKind::While { body, .. } => scan(&body.stmts, true, route_break, has_switch),
            StmtKind::Block(b) => scan(&b.stmts, in_switch, route_break, has_switch),
            StmtKind::Switch { cases, .. } => {
                *has_switch = true;
                for c in cases {
                    scan(&c.body, true, route_break, has_switch);
                }
            }
            _ => {}
        }
    }
}

fn visit_calls(stmts: &[Stmt], f: &mut impl FnMut(&Call)) {
    fn expr(e: &Expr, f: &mut impl FnMut(&Call)) {
        match &e.kind {
            ExprKind::Call(c) => {
                f(c);
                c.args.iter().for_each(|a| expr(a, f));
            }
            ExprKind::Unary { expr: inner, .. } | ExprKind::Paren(inner) => expr(inner, f),
            ExprKind::Binary { lhs, rhs, .. } => {
                expr(lhs, f);
                expr(rhs, f);
            }
            _ => {}
        }
    }
    for s in stmts {
        match &s.kind {
            StmtKind::Call(c) => {
                f(c);
                c.args.iter().for_each(|a| expr(a, f));
            }
            StmtKind::Assign { value, .. } => expr(value, f),
            StmtKind::If { cond, then, otherwise } => {
                expr(cond, f);
                visit_calls(&then.stmts, f);
                if let Some(o) = otherwise {
                    visit_calls(&o.stmts, f);
                }
            }
            StmtKind::While { cond, body } => {
                expr(cond, f);
                visit_calls(&body.stmts, f);
            }
            StmtKind::Block(b) => visit_calls(&b.stmts, f),
            StmtKind::Switch { subject, cases } => {
                expr(subject, f);
                cases.iter().for_each(|c| visit_calls(&c.body, f));
            }
            StmtKind::Return(Some(e)) => expr(e, f),
            _ => {}
        }
    }
}
