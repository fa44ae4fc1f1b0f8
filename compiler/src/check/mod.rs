//! The semantic checker: resolves every module function, parameter, route and
//! flag of a parsed config against the module manifests (`serc-manifest`), and
//! reports what OpenSER would only find at start-up — and what it never finds.
//!
//! It knows modules only through their manifests; it never does IO.

mod args;
mod flow;
mod pvars;
mod routes;

use std::collections::HashMap;

use serc_manifest::{self as manifest, ArgKind, Function, Module, ParamType, Routes};

use crate::diag::{Diagnostic, Kind};
use crate::source::{SourceMap, Span};
use crate::syntax::ast::*;
use crate::syntax::{did_you_mean, Dialect};

pub use args::parse_int as args_parse_int;
pub use pvars::OPENSER_PVARS;
pub use routes::RouteKey;

/// Checks `config`; returns the diagnostics found (unsorted). When the parse had
/// syntax errors (`syntax_ok` false), checks that a missing block would make
/// wrong (undefined and unused routes, flow) are left out.
pub fn check(config: &Config, sources: &SourceMap, syntax_ok: bool) -> Vec<Diagnostic> {
    check_with(config, sources, syntax_ok, &[])
}

/// [`check`], with more modules always loaded after the config's own: the
/// Rust functions an embedding crate gives `include_cfg!`.
pub fn check_with(config: &Config, sources: &SourceMap, syntax_ok: bool, extra: &[&'static Module]) -> Vec<Diagnostic> {
    let mut cx = Checker::new(config, sources);
    cx.modules(config);
    for m in extra {
        cx.loaded.push(Loaded { name: m.name.to_string(), module: Some(m) });
    }
    let table = routes::RouteTable::build(config, &mut cx.diags);
    for route in config.routes() {
        let rt = routes::block_routes(route.rtype);
        let key = RouteKey::of(route);
        cx.current = Some((route.rtype, key));
        cx.block(&route.body.stmts, rt);
    }
    cx.current = None;
    if syntax_ok {
        routes::check_references(&table, &cx.refs, &cx.calls, config.dialect, &mut cx.diags);
        cx.flags();
        flow::check(config, &table, &mut cx.diags);
    }
    if !cx.strict() {
        surface_warnings(config.dialect, &mut cx.diags);
    }
    cx.diags
}

/// The manifests describe OpenSER 1.3's modules. Kamailio and OpenSIPS grew
/// their own versions of them (functions renamed, moved or added, parameters
/// changed), so in those dialects what only the manifests can tell is a warning.
fn surface_warnings(dialect: Dialect, diags: &mut [Diagnostic]) {
    for d in diags.iter_mut().filter(|d| d.is_error()) {
        let surface = match d.kind {
            Kind::UnknownFunction | Kind::UnknownParam | Kind::Arity | Kind::ParamType | Kind::RouteType => true,
            Kind::ModuleNotLoaded => true,
            Kind::Argument => !d.message.contains("regular expression"),
            _ => false,
        };
        if surface {
            d.severity = crate::diag::Severity::Warning;
            d.notes.push(format!(
                "serc checks modules against OpenSER 1.3's; {}'s version of this module may differ",
                dialect.display_name()
            ));
        }
    }
}

/// The route-type bit of a block type.
fn route_bit(rtype: RouteType) -> Routes {
    routes::block_routes(rtype)
}

/// A module the config loads: its manifest, or `None` for one serc does not know.
struct Loaded {
    name: String,
    module: Option<&'static Module>,
}

/// A call of a module function, for the route-type checks through `route(N)`.
pub struct CallSite {
    pub function: &'static Function,
    pub module: &'static str,
    pub span: Span,
    /// The block it is in.
    pub route: (RouteType, RouteKey),
}

/// A reference from one route to another: `route(2)`, `t_on_failure("1")`.
pub struct RouteRef {
    pub from: (RouteType, RouteKey),
    pub target_type: RouteType,
    pub target: RouteKey,
    pub span: Span,
    /// `route(N)` (a call) rather than arming a tm route.
    pub is_call: bool,
}

struct Checker<'a> {
    dialect: Dialect,
    sources: &'a SourceMap,
    loaded: Vec<Loaded>,
    diags: Vec<Diagnostic>,
    current: Option<(RouteType, RouteKey)>,
    refs: Vec<RouteRef>,
    calls: Vec<CallSite>,
    flags_set: HashMap<i64, Span>,
    flags_tested: Vec<(i64, Span)>,
    /// Integer `modparam`s that type-checked, by (module, parameter): the last
    /// value and where it is set (OpenSER applies them in order).
    int_params: HashMap<(&'static str, String), (i64, Span)>,
}

fn is_openser(d: Dialect) -> bool {
    matches!(d, Dialect::OpenSer13 | Dialect::Ser09)
}

/// `"/usr/lib/openser/modules/tm.so"` → `tm`.
pub fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".so").unwrap_or(file)
}

impl<'a> Checker<'a> {
    fn new(config: &Config, sources: &'a SourceMap) -> Self {
        Checker {
            dialect: config.dialect,
            sources,
            loaded: Vec::new(),
            diags: Vec::new(),
            current: None,
            refs: Vec::new(),
            calls: Vec::new(),
            flags_set: HashMap::new(),
            flags_tested: Vec::new(),
            int_params: HashMap::new(),
        }
    }

    fn strict(&self) -> bool {
        is_openser(self.dialect)
    }

    // ------------------------------------------------------------ modules

    /// `loadmodule` and `modparam`, in order: a modparam applies to the modules
    /// loaded before it.
    fn modules(&mut self, config: &Config) {
        for item in &config.items {
            match &item.kind {
                ItemKind::LoadModule(path) => self.loadmodule(path),
                ItemKind::ModParam(p) => self.modparam(p),
                _ => {}
            }
        }
    }

    fn loadmodule(&mut self, path: &StrLit) {
        let name = module_name(&path.value).to_string();
        if let Some(prev) = self.loaded.iter().find(|l| l.name == name) {
            let _ = prev;
            self.diags.push(
                Diagnostic::warning(Kind::UnknownModule, path.span, format!("`{name}` is loaded twice"))
                    .with_help("delete one of the `loadmodule` lines"),
            );
            return;
        }
        let module = manifest::module(&name).filter(|m| m.name != "core");
        if module.is_none() {
            self.unknown_module(&name, path.span);
        }
        self.loaded.push(Loaded { name, module });
    }

    /// A module OpenSER 1.3 does not have: a warning when another version or
    /// descendant has it (or nobody we know does), an error when it looks like a
    /// misspelt 1.3 module.
    fn unknown_module(&mut self, name: &str, span: Span) {
        let known: Vec<&str> = manifest::all().iter().map(|m| m.name).filter(|n| *n != "core").collect();
        if let Some((_, where_)) = manifest::modules::elsewhere::ELSEWHERE.iter().find(|(n, _)| *n == name) {
            self.diags.push(
                Diagnostic::warning(Kind::UnknownModule, span, format!("`{name}` is not an OpenSER 1.3 module"))
                    .with_label(format!("found in {where_}"))
                    .with_note("serc knows OpenSER 1.3's modules: the functions and parameters of this one are not checked, and `serc build` cannot provide it"),
            );
            return;
        }
        match did_you_mean(name, &known) {
            Some(s) => self.diags.push(
                Diagnostic::error(Kind::UnknownModule, span, format!("unknown module `{name}`"))
                    .with_label("no such module")
                    .with_help(format!("did you mean `{s}`?")),
            ),
            None => self.diags.push(
                Diagnostic::warning(Kind::UnknownModule, span, format!("serc does not know the module `{name}`"))
                    .with_label("not a module of OpenSER 1.3 or of its descendants")
                    .with_note("its functions and parameters are not checked, and `serc build` cannot provide it"),
            ),
        }
    }

    fn modparam(&mut self, p: &ModParam) {
        let pattern = &p.module.value;
        // OpenSER: a case-insensitive regex anchored at both ends, over the modules
        // loaded so far. Most patterns are a plain name: no regex needed.
        let plain = pattern.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let matched: Vec<usize> = if plain {
            (0..self.loaded.len()).filter(|&i| self.loaded[i].name.eq_ignore_ascii_case(pattern)).collect()
        } else {
            let re = match regex::RegexBuilder::new(&format!("^(?:{pattern})$")).case_insensitive(true).build() {
                Ok(re) => re,
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error(
                            Kind::Argument,
                            p.module.span,
                            "the module of a `modparam` is not a valid regular expression",
                        )
                        .with_note(
                            "OpenSER reads it as a case-insensitive regular expression matched against module names",
                        ),
                    );
                    return;
                }
            };
            (0..self.loaded.len()).filter(|&i| re.is_match(&self.loaded[i].name)).collect()
        };
        if matched.is_empty() {
            let d = match manifest::module(pattern).filter(|_| plain) {
                Some(_) => Diagnostic::error(
                    Kind::ModuleNotLoaded,
                    p.module.span,
                    format!("`modparam` for `{pattern}`, which is not loaded before it"),
                )
                .with_label("no module loaded so far has this name")
                .with_help(format!("add `loadmodule \"{pattern}.so\"` before this line")),
                None if plain && !self.strict() => return, // a module of another dialect: not ours to judge
                None if plain => {
                    let names: Vec<&str> = self.loaded.iter().map(|l| l.name.as_str()).collect();
                    let mut d =
                        Diagnostic::error(Kind::UnknownModule, p.module.span, format!("unknown module `{pattern}`"))
                            .with_label("no such module is loaded");
                    if let Some(s) = did_you_mean(pattern, &names) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    d
                }
                None => Diagnostic::error(
                    Kind::ModuleNotLoaded,
                    p.module.span,
                    format!("the pattern `{pattern}` matches no module loaded before this `modparam`"),
                )
                .with_note("the module argument of `modparam` is a regular expression over the modules loaded so far"),
            };
            self.diags.push(d);
            return;
        }
        for i in matched {
            let Some(module) = self.loaded[i].module else { continue };
            let name = &p.param.value;
            let forms: Vec<&serc_manifest::Param> = module.params.iter().filter(|q| q.name == name.as_str()).collect();
            if forms.is_empty() && manifest::modules::removed_in_1_3::PARAMS.contains(&(module.name, name.as_str())) {
                self.diags.push(
                    Diagnostic::warning(
                        Kind::UnknownParam,
                        p.param.span,
                        format!("`{name}` is an OpenSER 1.2 parameter of `{}` that 1.3 removed", module.name),
                    )
                    .with_label("ignored")
                    .with_help("delete the line"),
                );
                continue;
            }
            if forms.is_empty() {
                let names: Vec<&str> = module.params.iter().map(|p| p.name).collect();
                let mut d = Diagnostic::error(
                    Kind::UnknownParam,
                    p.param.span,
                    format!("module `{}` has no parameter `{name}`", module.name),
                )
                .with_label("unknown parameter");
                if let Some(s) = did_you_mean(name, &names) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.diags.push(d);
                continue;
            }
            let (given, span) = match &p.value {
                ModParamValue::Int(i) => (ParamType::Int, i.span),
                ModParamValue::Str(s) => (ParamType::Str, s.span),
                ModParamValue::Word(w) => (ParamType::Str, w.span),
            };
            if let (ModParamValue::Int(i), true) = (&p.value, forms.iter().any(|f| f.ty == ParamType::Int)) {
                self.int_params.insert((module.name, name.clone()), (i.value, i.span));
            }
            // Some parameters take either type (mi_fifo's `fifo_user`: a uid or a name).
            if !forms.iter().any(|f| f.ty == given) {
                let param = forms[0];
                let (want, fix) = match (&param.ty, &p.value) {
                    (ParamType::Int, ModParamValue::Str(s)) => {
                        ("a number", format!("write it without quotes: `{}`", s.value))
                    }
                    (ParamType::Str, ModParamValue::Int(i)) => ("a string", format!("quote it: `\"{}\"`", i.value)),
                    (ParamType::Int, _) => ("a number", "give a number".to_string()),
                    (ParamType::Str, _) => ("a string", "give a quoted string".to_string()),
                };
                self.diags.push(
                    Diagnostic::error(
                        Kind::ParamType,
                        span,
                        format!("`{}` of module `{}` takes {want}", param.name, module.name),
                    )
                    .with_label("wrong type")
                    .with_note("OpenSER matches the type of a module parameter exactly: a number in quotes is a string")
                    .with_help(fix),
                );
            }
        }
    }

    // ------------------------------------------------------------ statements

    fn block(&mut self, stmts: &[Stmt], rt: Routes) {
        for s in stmts {
            self.stmt(s, rt);
        }
    }

    fn stmt(&mut self, s: &Stmt, rt: Routes) {
        match &s.kind {
            StmtKind::Call(c) => self.call(c, rt),
            StmtKind::RouteCall(name) => self.route_call(name, s.span),
            StmtKind::Assign { target, value, .. } => {
                self.pvar(target);
                self.expr(value, rt);
            }
            StmtKind::If { cond, then, otherwise } => {
                self.expr(cond, rt);
                self.block(&then.stmts, rt);
                if let Some(o) = otherwise {
                    self.block(&o.stmts, rt);
                }
            }
            StmtKind::Switch { subject, cases } => {
                self.expr(subject, rt);
                for c in cases {
                    self.block(&c.body, rt);
                }
            }
            StmtKind::While { cond, body } => {
                self.expr(cond, rt);
                self.block(&body.stmts, rt);
            }
            StmtKind::Block(b) => self.block(&b.stmts, rt),
            StmtKind::Return(Some(e)) => self.expr(e, rt),
            _ => {}
        }
    }

    fn expr(&mut self, e: &Expr, rt: Routes) {
        match &e.kind {
            ExprKind::Call(c) => self.call(c, rt),
            ExprKind::RouteCall(name) => self.route_call(name, e.span),
            ExprKind::PVar(p) => self.pvar(p),
            ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => self.expr(expr, rt),
            ExprKind::Binary { op, lhs, rhs } => {
                self.expr(lhs, rt);
                self.expr(rhs, rt);
                if matches!(op, BinaryOp::Match | BinaryOp::NotMatch) {
                    if let ExprKind::Str(s) = &rhs.kind {
                        let lit = StrLit { value: s.clone(), span: rhs.span };
                        self.diags.extend(args::check_regex(&lit, "the right side of `=~`", self.sources));
                    }
                }
            }
            _ => {}
        }
    }

    fn pvar(&mut self, p: &PVar) {
        if self.strict() && !pvars::known(&p.name) {
            let mut d = Diagnostic::error(Kind::Argument, p.span, format!("unknown pseudo-variable `${}`", p.name))
                .with_label("OpenSER 1.3 has no such pseudo-variable");
            if let Some(s) = did_you_mean(&p.name, OPENSER_PVARS) {
                d = d.with_help(format!("did you mean `${s}`?"));
            }
            self.diags.push(d);
        }
    }

    fn route_call(&mut self, name: &RouteName, span: Span) {
        if let Some(from) = self.current.clone() {
            self.refs.push(RouteRef {
                from,
                target_type: RouteType::Request,
                target: RouteKey::of_name(RouteType::Request, Some(name)),
                span,
                is_call: true,
            });
        }
    }

    /// Resolves a call to a function form of the core or a loaded module.
    fn call(&mut self, c: &Call, rt: Routes) {
        for a in &c.args {
            self.expr(a, rt);
        }
        let name = c.name.name.as_str();
        let modules = manifest::module("core").into_iter().chain(self.loaded.iter().filter_map(|l| l.module));
        let candidates: Vec<(&'static str, &'static Function)> =
            forms(modules, name).into_iter().map(|(m, f)| (m.name, f)).collect();
        if candidates.is_empty() {
            self.unresolved(c);
            return;
        }
        let arity = c.args.len();
        // SER/OpenSER 0.9: `forward(host, port)` and its relatives.
        if self.dialect == Dialect::Ser09
            && arity == 2
            && matches!(name, "forward" | "forward_udp" | "forward_tcp" | "send" | "send_tcp")
        {
            return;
        }
        let Some(&(module, function)) = candidates.iter().find(|(_, f)| f.args.len() == arity) else {
            let mut arities: Vec<usize> = candidates.iter().map(|(_, f)| f.args.len()).collect();
            arities.sort_unstable();
            arities.dedup();
            let accepted = arities.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" or ");
            let forms: Vec<String> = candidates.iter().map(|(_, f)| signature(f)).collect();
            self.diags.push(
                Diagnostic::error(
                    Kind::Arity,
                    c.span,
                    format!(
                        "`{name}` takes {accepted} argument{}, not {arity}",
                        if accepted == "1" { "" } else { "s" }
                    ),
                )
                .with_label(format!("called with {arity}"))
                .with_note(format!("accepted forms: {}", forms.join(", "))),
            );
            return;
        };
        // Route types: an error where the block itself is of a forbidden type.
        if !function.routes.contains(rt) {
            let allowed = function.routes.names().join(", ");
            let (rtype, _) = self.current.clone().expect("calls are inside routes");
            self.diags.push(
                Diagnostic::error(
                    Kind::RouteType,
                    c.name.span,
                    format!("`{name}` cannot be used in {}", routes::describe_block(rtype)),
                )
                .with_label(format!("not allowed in `{}`", rtype.keyword()))
                .with_note(format!("`{name}` may be called in: {allowed}")),
            );
        }
        if let Some(route) = self.current.clone() {
            self.calls.push(CallSite { function, module, span: c.name.span, route });
        }
        self.needs_params(c, module, function);
        self.arguments(c, module, function);
    }

    /// Functions whose fixup refuses to start under some module parameters.
    fn needs_params(&mut self, c: &Call, module: &str, function: &'static Function) {
        // rr: is_direction compares the From tag that append_fromtag puts in the
        // Record-Route; OpenSER 1.3's fixup refuses it when that is off.
        if module == "rr" && function.name == "is_direction" {
            if let Some(&(0, set_at)) = self.int_params.get(&("rr", "append_fromtag".to_string())) {
                let d = Diagnostic::error(
                    Kind::Argument,
                    c.name.span,
                    "`is_direction` needs the From tag in the Record-Route, and `append_fromtag` is 0",
                )
                .with_label("cannot tell the direction")
                .with_secondary(set_at, "`append_fromtag` turned off here")
                .with_note("OpenSER 1.3 refuses to start with this combination")
                .with_help("set `modparam(\"rr\", \"append_fromtag\", 1)` (the default) or remove `is_direction`");
                self.diags.push(d);
            }
        }
    }

    fn arguments(&mut self, c: &Call, module: &str, function: &'static Function) {
        for (i, (arg, spec)) in c.args.iter().zip(function.args).enumerate() {
            let what = format!("argument {} (`{}`) of `{}`", i + 1, spec.name, c.name.name);
            match &arg.kind {
                ExprKind::Str(s) => {
                    let lit = StrLit { value: s.clone(), span: arg.span };
                    match spec.kind {
                        ArgKind::FailureRoute | ArgKind::ReplyRoute | ArgKind::BranchRoute => {
                            self.tm_route_ref(spec.kind, &lit);
                        }
                        ArgKind::Flag => {
                            if let Some(n) = args::parse_int(s) {
                                self.flag_use(&c.name.name, n, arg.span);
                            }
                        }
                        _ => {}
                    }
                    let diags = args::check_str(spec.kind, &lit, &what, self.sources, self.strict());
                    self.diags.extend(diags);
                }
                ExprKind::Int(n) => {
                    if module != "core" && self.strict() {
                        self.diags.push(
                            Diagnostic::error(
                                Kind::Argument,
                                arg.span,
                                format!("{what} must be a quoted string in {}", self.dialect.display_name()),
                            )
                            .with_label("not a string")
                            .with_help(format!("write `\"{n}\"`"))
                            .with_note("OpenSER 1.3 passes module functions string literals only; Kamailio and OpenSIPS also take numbers"),
                        );
                    }
                    match spec.kind {
                        ArgKind::Flag => {
                            if !(0..=31).contains(n) {
                                self.diags.push(
                                    Diagnostic::error(
                                        Kind::Argument,
                                        arg.span,
                                        format!("{what} must be a flag number from 0 to 31, found {n}"),
                                    )
                                    .with_label("no such flag"),
                                );
                            }
                            self.flag_use(&c.name.name, *n, arg.span);
                        }
                        ArgKind::FailureRoute | ArgKind::ReplyRoute | ArgKind::BranchRoute => {
                            let lit = StrLit { value: n.to_string(), span: arg.span };
                            self.tm_route_ref(spec.kind, &lit);
                        }
                        ArgKind::ReplyCode if !(100..=699).contains(n) => {
                            self.diags.push(
                                Diagnostic::error(
                                    Kind::Argument,
                                    arg.span,
                                    format!("{what} must be a SIP reply code from 100 to 699, found {n}"),
                                )
                                .with_label("not a reply code"),
                            );
                        }
                        _ => {}
                    }
                }
                ExprKind::Word(_) | ExprKind::Ip(_) if matches!(spec.kind, ArgKind::Socket | ArgKind::HostPort) => {}
                _ if module != "core" && self.strict() => {
                    self.diags.push(
                        Diagnostic::error(
                            Kind::Argument,
                            arg.span,
                            format!("{what} must be a quoted string in {}", self.dialect.display_name()),
                        )
                        .with_label("not a string literal")
                        .with_note("OpenSER 1.3 passes module functions string literals only; pseudo-variables go inside the string"),
                    );
                }
                _ => {}
            }
        }
    }

    fn tm_route_ref(&mut self, kind: ArgKind, lit: &StrLit) {
        let target_type = match kind {
            ArgKind::FailureRoute => RouteType::Failure,
            ArgKind::ReplyRoute => RouteType::OnReply,
            _ => RouteType::Branch,
        };
        let name = match lit.value.trim().parse::<i64>() {
            // `t_on_failure("0")` disarms the route: tm's route 0 means none.
            Ok(0) => return,
            Ok(n) => RouteName::Number(n, lit.span),
            Err(_) => RouteName::Name(lit.value.trim().to_string(), lit.span),
        };
        if let Some(from) = self.current.clone() {
            self.refs.push(RouteRef {
                from,
                target_type,
                target: RouteKey::of_name(target_type, Some(&name)),
                span: lit.span,
                is_call: false,
            });
        }
    }

    fn flag_use(&mut self, function: &str, n: i64, span: Span) {
        if function.starts_with("is") {
            self.flags_tested.push((n, span));
        } else if function.starts_with("set") {
            self.flags_set.entry(n).or_insert(span);
        }
    }

    /// A flag tested but never set anywhere (modules set none of their own).
    fn flags(&mut self) {
        let mut seen = std::collections::HashSet::new();
        for (n, span) in std::mem::take(&mut self.flags_tested) {
            if !self.flags_set.contains_key(&n) && seen.insert(n) {
                self.diags.push(
                    Diagnostic::warning(Kind::FlagNeverSet, span, format!("flag {n} is tested but never set"))
                        .with_label("always false")
                        .with_help(format!("set it with `setflag({n})` where it applies, or test another flag")),
                );
            }
        }
    }

    fn unresolved(&mut self, c: &Call) {
        let name = c.name.name.as_str();
        if let Some((m, _, _)) = manifest::modules::removed_in_1_3::FUNCTIONS
            .iter()
            .find(|(m, f, _)| *f == name && self.loaded.iter().any(|l| l.name == *m))
        {
            self.diags.push(
                Diagnostic::warning(
                    Kind::UnknownFunction,
                    c.name.span,
                    format!("`{name}` is an OpenSER 1.2 function of `{m}` that 1.3 removed"),
                )
                .with_label("not in OpenSER 1.3")
                .with_note("serc cannot check or build it"),
            );
            return;
        }
        // A module serc does not know may provide it.
        if self.loaded.iter().any(|l| l.module.is_none()) {
            return;
        }
        // A function of a known module that is not loaded?
        if let Some(m) = manifest::all().iter().find(|m| m.name != "core" && m.function(name).next().is_some()) {
            self.diags.push(
                Diagnostic::error(
                    Kind::ModuleNotLoaded,
                    c.name.span,
                    format!("`{name}` is a function of module `{}`, which this config does not load", m.name),
                )
                .with_label("module not loaded")
                .with_help(format!("add `loadmodule \"{}.so\"`", m.name)),
            );
            return;
        }
        // A module serc does not know may provide it.
        if self.loaded.iter().any(|l| l.module.is_none()) {
            return;
        }
        let mut names: Vec<&str> =
            manifest::module("core").map(|m| m.functions.iter().map(|f| f.name).collect()).unwrap_or_default();
        for l in &self.loaded {
            if let Some(m) = l.module {
                names.extend(m.functions.iter().map(|f| f.name));
            }
        }
        let mut d = Diagnostic::error(Kind::UnknownFunction, c.name.span, format!("unknown function `{name}`"))
            .with_label("not a core function nor one of a loaded module");
        if let Some(s) = did_you_mean(name, &names) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else if let Some(s) = did_you_mean(name, crate::syntax::KEYWORDS) {
            d = d.with_help(format!("did you mean the keyword `{s}`?"));
        }
        self.diags.push(d);
    }
}

/// Every form of the function `name` a config can call, in the order OpenSER
/// resolves a call: the modules as given (the core, then the loaded ones in
/// load order). The checker and the generator both resolve through this.
pub fn forms(
    modules: impl IntoIterator<Item = &'static Module>,
    name: &str,
) -> Vec<(&'static Module, &'static Function)> {
    modules.into_iter().flat_map(|m| m.function(name).map(move |f| (m, f))).collect()
}

/// The form a call of `name` with `arity` arguments resolves to: the first
/// of [`forms`] with that arity.
pub fn resolve(
    modules: impl IntoIterator<Item = &'static Module>,
    name: &str,
    arity: usize,
) -> Option<(&'static Module, &'static Function)> {
    forms(modules, name).into_iter().find(|(_, f)| f.args.len() == arity)
}

/// `t_relay(destination: socket)`
pub fn signature(f: &Function) -> String {
    let args: Vec<String> = f.args.iter().map(|a| format!("{}: {}", a.name, kind_name(a.kind))).collect();
    format!("{}({})", f.name, args.join(", "))
}

pub fn kind_name(k: ArgKind) -> &'static str {
    match k {
        ArgKind::Str => "string",
        ArgKind::Format => "format",
        ArgKind::Int => "int",
        ArgKind::Flag => "flag",
        ArgKind::ReplyCode => "reply-code",
        ArgKind::Regex => "regex",
        ArgKind::Subst => "subst",
        ArgKind::PVar => "pvar",
        ArgKind::Avp => "avp",
        ArgKind::Uri => "uri",
        ArgKind::HostPort => "host:port",
        ArgKind::Socket => "socket",
        ArgKind::HeaderName => "header-name",
        ArgKind::HeaderField => "header-field",
        ArgKind::FailureRoute => "failure-route",
        ArgKind::ReplyRoute => "reply-route",
        ArgKind::BranchRoute => "branch-route",
        ArgKind::Table => "table",
        ArgKind::Methods => "methods",
        ArgKind::LogLevel => "log-level",
        ArgKind::Opaque => "text",
    }
}
