//! Route blocks: the table of defined routes, references to them (`route(N)`,
//! `t_on_failure("N")` …), and the route types each sub-route is reached from.

use std::collections::{HashMap, HashSet};

use serc_manifest::Routes;

use super::{CallSite, RouteRef};
use crate::diag::{Diagnostic, Kind};
use crate::source::Span;
use crate::syntax::ast::*;
use crate::syntax::{did_you_mean, Dialect};

/// A route's identity within its type: `route {}` and `route[0]` are both `Main`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteKey {
    Main,
    Num(i64),
    Name(String),
}

impl RouteKey {
    pub fn of(route: &Route) -> RouteKey {
        Self::of_name(route.rtype, route.name.as_ref())
    }

    pub fn of_name(rtype: RouteType, name: Option<&RouteName>) -> RouteKey {
        match name {
            None => RouteKey::Main,
            Some(RouteName::Number(0, _)) if matches!(rtype, RouteType::Request | RouteType::OnReply) => RouteKey::Main,
            Some(RouteName::Number(n, _)) => RouteKey::Num(*n),
            Some(RouteName::Name(s, _)) => match s.parse::<i64>() {
                Ok(0) if matches!(rtype, RouteType::Request | RouteType::OnReply) => RouteKey::Main,
                Ok(n) => RouteKey::Num(n),
                Err(_) => RouteKey::Name(s.clone()),
            },
        }
    }

    /// `route[2]`, `failure_route[RELAY]`, `route`.
    pub fn display(&self, rtype: RouteType) -> String {
        match self {
            RouteKey::Main => rtype.keyword().to_string(),
            RouteKey::Num(n) => format!("{}[{n}]", rtype.keyword()),
            RouteKey::Name(s) => format!("{}[{s}]", rtype.keyword()),
        }
    }
}

/// The route types a block's code runs in, as OpenSER checks them: `route[N]`
/// counts as a request route (OpenSER cannot know where it is called from).
pub fn block_routes(rtype: RouteType) -> Routes {
    match rtype {
        RouteType::Failure => Routes::FAILURE,
        RouteType::OnReply => Routes::ONREPLY,
        RouteType::Branch => Routes::BRANCH,
        RouteType::Error => Routes::ERROR,
        _ => Routes::REQUEST,
    }
}

pub fn describe_block(rtype: RouteType) -> &'static str {
    match rtype {
        RouteType::Failure => "a `failure_route`",
        RouteType::OnReply => "an `onreply_route`",
        RouteType::Branch => "a `branch_route`",
        RouteType::Error => "the `error_route`",
        _ => "a request route",
    }
}

/// Every defined route, by type and key.
pub struct RouteTable {
    pub defined: HashMap<(RouteType, RouteKey), Span>,
}

impl RouteTable {
    pub fn build(config: &Config, diags: &mut Vec<Diagnostic>) -> RouteTable {
        let mut defined: HashMap<(RouteType, RouteKey), Span> = HashMap::new();
        for r in config.routes() {
            let key = RouteKey::of(r);
            let head = r.name.as_ref().map_or(r.keyword.span, |n| r.keyword.span.to(n.span()));
            match defined.get(&(r.rtype, key.clone())) {
                Some(first) => {
                    let mut d = Diagnostic::error(
                        Kind::DuplicateRoute,
                        head,
                        format!("`{}` is defined twice", key.display(r.rtype)),
                    )
                    .with_label("defined again here")
                    .with_secondary(*first, "first defined here");
                    if key == RouteKey::Main && r.rtype == RouteType::Request {
                        d = d.with_note("`route { … }` and `route[0] { … }` are the same block");
                    }
                    diags.push(d);
                }
                None => {
                    defined.insert((r.rtype, key), head);
                }
            }
        }
        RouteTable { defined }
    }

    pub fn has(&self, rtype: RouteType, key: &RouteKey) -> bool {
        self.defined.contains_key(&(rtype, key.clone()))
    }
}

/// A route block: its type and key.
type Block = (RouteType, RouteKey);

/// `undefined-route`, `unused-route`, and route-type warnings for calls in
/// sub-routes reached from route types that forbid them.
pub fn check_references(
    table: &RouteTable,
    refs: &[RouteRef],
    calls: &[CallSite],
    _dialect: Dialect,
    diags: &mut Vec<Diagnostic>,
) {
    for r in refs {
        if table.has(r.target_type, &r.target) {
            continue;
        }
        let target = r.target.display(r.target_type);
        let names: Vec<String> =
            table.defined.keys().filter(|(t, _)| *t == r.target_type).map(|(t, k)| k.display(*t)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut d = Diagnostic::error(Kind::UndefinedRoute, r.span, format!("`{target}` is not defined"))
            .with_label(if r.is_call { "called here" } else { "armed here" });
        if let Some(s) = did_you_mean(&target, &names) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else {
            d = d.with_help(format!("define it: `{target} {{ … }}`"));
        }
        diags.push(d);
    }
    let referenced: HashSet<(RouteType, &RouteKey)> = refs.iter().map(|r| (r.target_type, &r.target)).collect();
    for ((rtype, key), span) in &table.defined {
        let entry = *key == RouteKey::Main
            || !matches!(rtype, RouteType::Request | RouteType::Failure | RouteType::OnReply | RouteType::Branch);
        if !entry && !referenced.contains(&(*rtype, key)) {
            let how = match rtype {
                RouteType::Request => "no `route(…)` calls it",
                RouteType::Failure => "no `t_on_failure(…)` arms it",
                RouteType::OnReply => "no `t_on_reply(…)` arms it",
                _ => "no `t_on_branch(…)` arms it",
            };
            diags.push(
                Diagnostic::warning(Kind::UnusedRoute, *span, format!("`{}` is never used", key.display(*rtype)))
                    .with_label(how),
            );
        }
    }
    // Which block types reach each sub-route through `route(N)`, and from where.
    let mut reached: HashMap<RouteKey, Vec<(Routes, Block, Span)>> = HashMap::new();
    let mut queue: Vec<(Block, Routes, Block, Span)> = Vec::new();
    for r in refs.iter().filter(|r| r.is_call && r.from.0 != RouteType::Request) {
        queue.push((r.from.clone(), super::route_bit(r.from.0), r.from.clone(), r.span));
    }
    let mut seen = HashSet::new();
    while let Some((from, bits, origin, span)) = queue.pop() {
        for r in refs.iter().filter(|r| r.is_call && r.from == from) {
            if seen.insert((r.target.clone(), bits.0)) {
                reached.entry(r.target.clone()).or_default().push((bits, origin.clone(), span));
                queue.push(((RouteType::Request, r.target.clone()), bits, origin.clone(), span));
            }
        }
    }
    for c in calls.iter().filter(|c| c.route.0 == RouteType::Request && c.route.1 != RouteKey::Main) {
        let Some(paths) = reached.get(&c.route.1) else { continue };
        for (bits, origin, via) in paths {
            if !c.function.routes.contains(*bits) {
                let name = c.function.name;
                diags.push(
                    Diagnostic::warning(
                        Kind::RouteType,
                        c.span,
                        format!(
                            "`{name}` cannot be used in {}, and `{}` is called from `{}`",
                            describe_block(origin.0),
                            c.route.1.display(RouteType::Request),
                            origin.1.display(origin.0)
                        ),
                    )
                    .with_label(format!("reached from `{}`", origin.0.keyword()))
                    .with_secondary(*via, "called from there")
                    .with_note(format!("`{name}` may be called in: {}", c.function.routes.names().join(", ")))
                    .with_note("OpenSER 1.3 never checked this path: it fails when it runs"),
                );
                break;
            }
        }
    }
}
