//! Route blocks → Rust functions, with OpenSER 1.3's rules for statements
//! (`action.c`) and conditions (`route.c`); the evaluation helpers are the
//! runtime's (`serc_runtime::script::rt`).
//!
//! Every route becomes `fn NAME(&self, ctx: &mut Ctx<'_>, depth: u32) -> Flow`
//! keeping OpenSER's "last action's code" in a local `ret`; `$retcode` is
//! `ctx.retcode`, set where `action.c` sets `return_code`.

use std::collections::HashMap;

use proc_macro2::{Ident, Literal, Span as PmSpan, TokenStream};
use quote::{format_ident, quote};
use serc_manifest::{ArgKind, Function, Module};

use super::prepare::{Prep, Prepared};
use crate::check::RouteKey;
use crate::diag::{Diagnostic, Kind};
use crate::source::{SourceMap, Span};
use crate::syntax::ast::*;
use crate::syntax::Dialect;

/// Ids of named tm routes start here (numbered ones keep their number).
pub const NAMED_ROUTE_IDS: u32 = 1_000_000;

/// The name of the Rust function generated for a route block.
pub fn route_fn(rtype: RouteType, key: &RouteKey) -> Ident {
    let prefix = match rtype {
        RouteType::Request => "route",
        RouteType::Failure => "failure_route",
        RouteType::OnReply => "onreply_route",
        RouteType::Branch => "branch_route",
        RouteType::Error => "error_route",
        _ => "other_route",
    };
    match key {
        RouteKey::Main => format_ident!("{prefix}_main"),
        RouteKey::Num(n) => format_ident!("{prefix}_{n}"),
        RouteKey::Name(s) => {
            let clean: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            format_ident!("{prefix}_n_{clean}")
        }
    }
}

/// A function the config may call: where it comes from and its Rust path.
#[derive(Clone, Copy)]
pub struct Resolved {
    pub module: &'static Module,
    pub function: &'static Function,
}

/// Lowers statements and expressions of one config.
pub struct Lower<'a> {
    pub sources: &'a SourceMap,
    pub dialect: Dialect,
    /// Modules in load order (core first), then the user's functions.
    pub modules: Vec<&'static Module>,
    /// Rust paths of the user's functions by name.
    pub user_paths: HashMap<String, String>,
    /// Request routes that exist (for `route(N)`).
    pub request_routes: HashMap<RouteKey, Ident>,
    pub has_error_route: bool,
    pub max_while_loops: i64,
    pub line_markers: bool,
    pub prepared: Prepared,
    /// Errors (`unsupported`) met while lowering.
    pub diags: Vec<Diagnostic>,
    /// Request routes called (to generate them).
    pub called: Vec<RouteKey>,
    /// Routes tm arms (`t_on_failure` …): type, key, the id the runtime gets.
    pub tm_routes: Vec<(RouteType, RouteKey, u32)>,
    /// The optional headers the functions called read (their manifests'
    /// `reads`): the built proxy validates those on receipt, not the others.
    pub reads: std::collections::BTreeSet<&'static str>,
    /// Those of `reads` that a function allowed in `onreply_route` reads:
    /// only these are validated in responses too (the others only run on
    /// requests).
    pub reply_reads: std::collections::BTreeSet<&'static str>,
    labels: Vec<proc_macro2::TokenStream>,
    next_label: usize,
}

type Tokens = TokenStream;

impl<'a> Lower<'a> {
    pub fn new(sources: &'a SourceMap, dialect: Dialect) -> Self {
        Lower {
            sources,
            dialect,
            modules: Vec::new(),
            user_paths: HashMap::new(),
            request_routes: HashMap::new(),
            has_error_route: false,
            max_while_loops: 100,
            line_markers: false,
            prepared: Prepared::default(),
            diags: Vec::new(),
            called: Vec::new(),
            tm_routes: Vec::new(),
            reads: std::collections::BTreeSet::new(),
            reply_reads: std::collections::BTreeSet::new(),
            labels: Vec::new(),
            next_label: 0,
        }
    }

    fn unsupported(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(
            Diagnostic::error(Kind::Unsupported, span, message)
                .with_label("not implemented by serc's runtime yet")
                .with_note("`serc build` refuses configs using it; `serc check` accepts them"),
        );
    }

    /// The body of a route function.
    pub fn route_body(&mut self, body: &Block) -> Tokens {
        let stmts = self.stmts(&body.stmts);
        quote! {
            if let ::core::option::Option::Some(f) = ::serc_runtime::script::rt::too_deep(depth) {
                return f;
            }
            let mut ret: i32 = 1;
            #stmts
            ::serc_runtime::script::Flow::Return(ret)
        }
    }

    fn stmts(&mut self, stmts: &[Stmt]) -> Tokens {
        let mut out = TokenStream::new();
        for s in stmts {
            if self.line_markers && !matches!(s.kind, StmtKind::Null | StmtKind::Error) {
                let at = self.location(s.span);
                out.extend(quote! { __serc_at!(#at); });
            }
            out.extend(self.stmt(s));
        }
        out
    }

    fn location(&self, span: Span) -> String {
        let file = self.sources.get(span.file);
        let (line, col) = file.line_col(span.start);
        format!("{}:{line}:{col}", file.name)
    }

    /// `if let Some(f) = after_action(..) { return f; }` when the config has an
    /// error route (OpenSER runs it after the action that recorded an error).
    fn after(&self) -> Tokens {
        if self.has_error_route {
            quote! {
                if let ::core::option::Option::Some(f) = ::serc_runtime::app::after_action(self, ctx) {
                    return f;
                }
            }
        } else {
            TokenStream::new()
        }
    }

    fn stmt(&mut self, s: &Stmt) -> Tokens {
        match &s.kind {
            StmtKind::Call(c) => {
                let Some(call) = self.call(c) else { return TokenStream::new() };
                let after = self.after();
                quote! {
                    ret = #call;
                    ctx.retcode = ret;
                    #after
                    if ret == 0 {
                        return ::serc_runtime::script::Flow::Exit;
                    }
                }
            }
            StmtKind::RouteCall(name) => {
                let Some(f) = self.route_ref(name, s.span) else { return TokenStream::new() };
                quote! {
                    match self.#f(ctx, depth + 1) {
                        ::serc_runtime::script::Flow::Return(r) => {
                            ret = r;
                            ctx.retcode = r;
                            if r == 0 {
                                return ::serc_runtime::script::Flow::Exit;
                            }
                        }
                        f => return f,
                    }
                }
            }
            StmtKind::Assign { target, op, value } => {
                let Some(p) = self.pvar(target) else { return TokenStream::new() };
                let v = self.value(value);
                let (arith, all) = match op {
                    AssignOp::Set => (quote!(::core::option::Option::None), false),
                    AssignOp::SetAll => (quote!(::core::option::Option::None), true),
                    other => {
                        let a = arith_of_assign(*other);
                        (quote!(::core::option::Option::Some(::serc_runtime::script::rt::Arith::#a)), false)
                    }
                };
                let after = self.after();
                quote! {
                    {
                        let v = #v;
                        ret = ::serc_runtime::script::rt::assign(ctx, &self.#p, #arith, #all, v);
                    }
                    ctx.retcode = ret;
                    #after
                }
            }
            StmtKind::If { cond, then, otherwise } => {
                let c = self.cond(cond);
                let then_code = self.branch(&then.stmts);
                let else_code = match otherwise {
                    Some(b) => self.branch(&b.stmts),
                    None => quote! { ctx.retcode = v; },
                };
                quote! {
                    {
                        let v: i32 = #c;
                        if v == ::serc_runtime::script::rt::DROP {
                            return ::serc_runtime::script::Flow::Exit;
                        }
                        ret = 1;
                        if v > 0 {
                            #then_code
                        } else {
                            #else_code
                        }
                    }
                }
            }
            StmtKind::Switch { subject, cases } => self.switch(subject, cases),
            StmtKind::While { cond, body } => {
                let label = self.label("w");
                let c = self.cond(cond);
                self.labels.push(label.clone());
                let body_code = self.stmts(&body.stmts);
                self.labels.pop();
                let max = Literal::i64_suffixed(self.max_while_loops);
                quote! {
                    {
                        let mut n: i64 = 0;
                        #label: loop {
                            if n >= #max {
                                ::serc_runtime::script::rt::while_limit(#max);
                                break;
                            }
                            n += 1;
                            let v: i32 = #c;
                            if v == ::serc_runtime::script::rt::DROP {
                                return ::serc_runtime::script::Flow::Exit;
                            }
                            ret = 1;
                            if v > 0 {
                                #body_code
                                ctx.retcode = ret;
                            } else {
                                ctx.retcode = v;
                                break;
                            }
                        }
                    }
                }
            }
            StmtKind::Block(b) => {
                let code = self.stmts(&b.stmts);
                quote! { { #code } }
            }
            StmtKind::Return(None) | StmtKind::Ser09Break => {
                quote! { return ::serc_runtime::script::Flow::Return(1); }
            }
            StmtKind::Return(Some(e)) => match &e.kind {
                ExprKind::Int(n) => {
                    let n = Literal::i32_suffixed(clamp_i32(*n));
                    quote! { return ::serc_runtime::script::rt::ret(#n); }
                }
                _ => {
                    let v = self.value(e);
                    quote! {
                        return ::serc_runtime::script::rt::ret(
                            ::serc_runtime::script::rt::int_of(&#v)
                        );
                    }
                }
            },
            StmtKind::Exit => quote! { return ::serc_runtime::script::Flow::Exit; },
            StmtKind::Drop => quote! { return ::serc_runtime::script::Flow::Drop; },
            StmtKind::Break => match self.labels.last() {
                Some(label) => quote! { { ctx.retcode = ret; break #label; } },
                None => TokenStream::new(),
            },
            StmtKind::Error | StmtKind::Null => TokenStream::new(),
        }
    }

    /// The statements of an `if` branch: `$retcode` is the branch's last code.
    fn branch(&mut self, stmts: &[Stmt]) -> Tokens {
        if stmts.is_empty() {
            return quote! { ctx.retcode = v; };
        }
        let code = self.stmts(stmts);
        quote! { #code ctx.retcode = ret; }
    }

    fn label(&mut self, prefix: &str) -> Tokens {
        self.next_label += 1;
        let lt = syn::Lifetime::new(&format!("'{prefix}{}", self.next_label), PmSpan::call_site());
        quote!(#lt)
    }

    /// `switch`: the first matching `case` (or `default`) is where the code
    /// starts; it falls through the next cases until a `break`. In OpenSER 1.3
    /// a `default` runs only when no case matched (falling into it skips its
    /// body); Kamailio falls into it as into any case.
    fn switch(&mut self, subject: &Expr, cases: &[Case]) -> Tokens {
        let label = self.label("s");
        let v = self.value(subject);
        let mut choose = TokenStream::new();
        let mut default_index = None;
        for (i, case) in cases.iter().enumerate() {
            let idx = Literal::usize_unsuffixed(i);
            match &case.label {
                None => default_index = Some(i),
                Some(e) => {
                    let test = match &e.kind {
                        ExprKind::Int(n) => {
                            let n = Literal::i64_suffixed(*n);
                            quote!(::serc_runtime::script::rt::case_int(&val, #n))
                        }
                        ExprKind::Str(s) => quote!(::serc_runtime::script::rt::case_str(&val, #s)),
                        ExprKind::Unary { op: UnaryOp::Neg, expr } if matches!(expr.kind, ExprKind::Int(_)) => {
                            let ExprKind::Int(n) = expr.kind else { unreachable!() };
                            let n = Literal::i64_suffixed(-n);
                            quote!(::serc_runtime::script::rt::case_int(&val, #n))
                        }
                        _ => {
                            self.unsupported(e.span, "a `case` label that is not a number or a string");
                            quote!(false)
                        }
                    };
                    choose.extend(quote! { else if #test { #idx } });
                }
            }
        }
        let none = Literal::usize_unsuffixed(cases.len());
        let fallback = match default_index {
            Some(d) => Literal::usize_unsuffixed(d),
            None => none.clone(),
        };
        self.labels.push(label.clone());
        let mut bodies = TokenStream::new();
        let openser = !matches!(self.dialect, Dialect::Kamailio);
        for (i, case) in cases.iter().enumerate() {
            let idx = Literal::usize_unsuffixed(i);
            let code = self.stmts(&case.body);
            let guard = if case.label.is_none() && openser { quote!(start == #idx) } else { quote!(start <= #idx) };
            bodies.extend(quote! {
                if #guard {
                    ret = 1;
                    #code
                    ctx.retcode = ret;
                }
            });
        }
        self.labels.pop();
        quote! {
            #label: {
                let val: ::serc_runtime::script::Value = #v;
                ctx.retcode = 1;
                let start: usize = if false { #none } #choose else { #fallback };
                #bodies
            }
            ret = ctx.retcode;
        }
    }

    fn route_ref(&mut self, name: &RouteName, span: Span) -> Option<Ident> {
        let key = RouteKey::of_name(RouteType::Request, Some(name));
        match self.request_routes.get(&key) {
            Some(f) => {
                let f = f.clone();
                if !self.called.contains(&key) {
                    self.called.push(key);
                }
                Some(f)
            }
            None => {
                self.diags.push(Diagnostic::error(
                    Kind::UndefinedRoute,
                    span,
                    format!("`{}` is not defined", key.display(RouteType::Request)),
                ));
                None
            }
        }
    }

    // ------------------------------------------------------------ calls

    /// Finds the function a call resolves to: the core first, then the loaded
    /// modules in load order, then the user's functions; the first with the
    /// call's arity.
    pub fn resolve(&self, name: &str, arity: usize) -> Option<Resolved> {
        crate::check::resolve(self.modules.iter().copied(), name, arity)
            .map(|(module, function)| Resolved { module, function })
    }

    /// A call: an `i32` expression (its return code).
    fn call(&mut self, c: &Call) -> Option<Tokens> {
        let name = c.name.name.as_str();
        // SER/OpenSER 0.9: `forward(host, port)` is `forward("host:port")`.
        if self.dialect == Dialect::Ser09 && name == "forward" && c.args.len() == 2 {
            let (Some(host), Some(port)) = (self.arg_text(&c.args[0]), self.arg_text(&c.args[1])) else {
                self.unsupported(c.span, "`forward` with arguments that are not literals");
                return None;
            };
            let to = self.prepared_ref(Prep::Socket, &format!("{host}:{port}"));
            return Some(quote! { ::serc_runtime::modules::core::forward_1(ctx, #to) });
        }
        let Some(r) = self.resolve(name, c.args.len()) else {
            // The checker reported it (unknown function, arity) unless a module
            // serc does not know may provide it.
            self.unsupported(
                c.name.span,
                format!("`{name}` with {} argument(s) is not a function serc knows", c.args.len()),
            );
            return None;
        };
        if !r.function.implemented {
            match serc_manifest::wont_implement(r.module.name, name) {
                Some(why) => self.diags.push(
                    Diagnostic::error(
                        Kind::Unsupported,
                        c.name.span,
                        format!("`{name}` of module `{}` is not supported by serc", r.module.name),
                    )
                    .with_label("serc does not implement it")
                    .with_note(format!("why: {why}")),
                ),
                None => self.unsupported(
                    c.name.span,
                    format!("`{name}` of module `{}` is not implemented by serc's runtime yet", r.module.name),
                ),
            }
            return None;
        }
        self.reads.extend(r.function.reads.iter().copied());
        if r.function.routes.contains(serc_manifest::Routes::ONREPLY) {
            self.reply_reads.extend(r.function.reads.iter().copied());
        }
        let path_text = match self.user_paths.get(name).filter(|_| r.module.name == super::USER_MODULE) {
            Some(p) => p.clone(),
            None => format!("::{}", serc_manifest::rust_fn_path(r.module, r.function)),
        };
        let path: syn::Path = match syn::parse_str(&path_text) {
            Ok(p) => p,
            Err(_) => {
                self.unsupported(c.name.span, format!("`{path_text}` is not a Rust path"));
                return None;
            }
        };
        let mut args = Vec::new();
        for (arg, spec) in c.args.iter().zip(r.function.args) {
            args.push(self.argument(arg, spec.kind, name)?);
        }
        Some(quote! { #path(ctx #(, #args)*) })
    }

    /// The text of a literal argument.
    fn arg_text(&self, e: &Expr) -> Option<String> {
        Some(match &e.kind {
            ExprKind::Str(s) => s.clone(),
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Word(w) => w.clone(),
            ExprKind::Ip(ip) => ip.to_string(),
            ExprKind::PVar(_) | ExprKind::Select(_) => self.sources.snippet(e.span).to_string(),
            ExprKind::Unary { op: UnaryOp::Neg, expr } => match expr.kind {
                ExprKind::Int(n) => (-n).to_string(),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// One argument, prepared as its kind asks.
    fn argument(&mut self, e: &Expr, kind: ArgKind, function: &str) -> Option<Tokens> {
        let Some(text) = self.arg_text(e) else {
            self.unsupported(e.span, format!("an argument of `{function}` that is not a literal"));
            return None;
        };
        // A number of the width the runtime takes, written suffixed (`10i64`).
        let number = |bits: fn(i64) -> Option<Literal>| crate::check::args_parse_int(&text).and_then(bits);
        let int = number(|n| Some(Literal::i64_suffixed(n)));
        let flag = number(|n| u32::try_from(n).ok().map(Literal::u32_suffixed));
        let code = number(|n| u16::try_from(n).ok().map(Literal::u16_suffixed));
        Some(match kind {
            ArgKind::Str | ArgKind::Table | ArgKind::Opaque => quote!(#text),
            ArgKind::Int | ArgKind::Flag => match if kind == ArgKind::Int { int } else { flag } {
                Some(n) => quote!(#n),
                None => {
                    let what = if kind == ArgKind::Int { "a number" } else { "a flag number" };
                    self.unsupported(e.span, format!("`{text}` is not {what}"));
                    return None;
                }
            },
            ArgKind::ReplyCode => match code {
                Some(n) => quote!(&::serc_runtime::script::args::ReplyCode::Fixed(#n)),
                None => self.prepared_ref(Prep::ReplyCode, &text),
            },
            ArgKind::Format | ArgKind::Uri | ArgKind::HeaderField => self.prepared_ref(Prep::Format, &text),
            ArgKind::Regex => self.prepared_ref(Prep::Regex, &text),
            ArgKind::Subst => self.prepared_ref(Prep::Subst, &text),
            ArgKind::PVar => self.prepared_ref(Prep::PvRef, &text),
            ArgKind::Avp => self.prepared_ref(Prep::Avp, &text),
            ArgKind::HostPort => self.prepared_ref(Prep::HostPort, &text),
            ArgKind::Socket => self.prepared_ref(Prep::Socket, &text),
            ArgKind::HeaderName => self.prepared_ref(Prep::HdrName, &text),
            ArgKind::Methods => self.prepared_ref(Prep::Methods, &text),
            ArgKind::LogLevel => {
                let level = log_level(&text);
                quote!(::serc_runtime::script::args::Level::#level)
            }
            ArgKind::FailureRoute | ArgKind::ReplyRoute | ArgKind::BranchRoute => {
                let rtype = match kind {
                    ArgKind::FailureRoute => RouteType::Failure,
                    ArgKind::ReplyRoute => RouteType::OnReply,
                    _ => RouteType::Branch,
                };
                let id = self.tm_route(rtype, &text);
                let id = Literal::u32_suffixed(id);
                quote!(#id)
            }
        })
    }

    /// The id a tm route is armed with (`t_on_failure("2")`): its number, or
    /// for a named route one given here; 0 disarms. Records the route as used.
    fn tm_route(&mut self, rtype: RouteType, text: &str) -> u32 {
        let key = match text.trim().parse::<i64>() {
            Ok(0) => return 0,
            Ok(n) => RouteKey::Num(n),
            Err(_) => RouteKey::Name(text.trim().to_string()),
        };
        if let Some((_, _, id)) = self.tm_routes.iter().find(|(t, k, _)| *t == rtype && *k == key) {
            return *id;
        }
        let id = match &key {
            RouteKey::Num(n) => u32::try_from(*n).unwrap_or(u32::MAX),
            _ => NAMED_ROUTE_IDS + self.tm_routes.len() as u32,
        };
        self.tm_routes.push((rtype, key, id));
        id
    }

    fn prepared_ref(&mut self, kind: Prep, text: &str) -> Tokens {
        let id = self.prepared.add(kind, text);
        quote!(&self.#id)
    }

    /// A pseudo-variable, prepared once; `None` (reported) when the runtime
    /// does not implement it.
    fn pvar(&mut self, p: &PVar) -> Option<Ident> {
        if !serc_manifest::pvars::implemented(&p.name, p.inner.is_some()) {
            self.unsupported(p.span, format!("the pseudo-variable `${}`", p.name));
            return None;
        }
        if let Some(t) = p.transforms.iter().find(|t| !serc_manifest::pvars::transform_implemented(t)) {
            self.unsupported(p.span, format!("the transformation `{{{t}}}`"));
            return None;
        }
        if let Some(PVarIndex::Dynamic(_)) = p.index {
            self.unsupported(p.span, "a pseudo-variable index that is not a number");
            return None;
        }
        let text = self.sources.snippet(p.span).to_string();
        Some(self.prepared.add(Prep::PvRef, &text))
    }

    // ------------------------------------------------------------ values

    /// An expression as a `Value`.
    fn value(&mut self, e: &Expr) -> Tokens {
        let v = quote!(::serc_runtime::script::Value);
        match &e.kind {
            ExprKind::Int(n) => {
                let n = Literal::i64_suffixed(*n);
                quote!(#v::Int(#n))
            }
            ExprKind::Str(s) => quote!(#v::Str(::std::string::String::from(#s))),
            ExprKind::Word(w) => quote!(#v::Str(::std::string::String::from(#w))),
            ExprKind::Ip(ip) => {
                let s = ip.to_string();
                quote!(#v::Str(::std::string::String::from(#s)))
            }
            ExprKind::Null => quote!(#v::Null),
            ExprKind::PVar(p) => match self.pvar(p) {
                Some(id) => quote!(self.#id.get(ctx)),
                None => quote!(#v::Null),
            },
            ExprKind::Paren(x) => self.value(x),
            ExprKind::Unary { op, expr } => {
                let x = self.value(expr);
                match op {
                    UnaryOp::Neg => quote!(::serc_runtime::script::rt::arith(
                        ::serc_runtime::script::rt::Arith::Sub, #v::Int(0), #x)),
                    UnaryOp::BitNot => quote!(#v::Int(!(#x).as_int())),
                    UnaryOp::IntCast => quote!(#v::Int((#x).as_int())),
                    UnaryOp::StrCast => quote!(#v::Str((#x).as_text().into_owned())),
                    UnaryOp::Not => {
                        let c = self.cond(e);
                        bool_value(c)
                    }
                }
            }
            ExprKind::Binary { op, lhs, rhs } => match arith_of(*op) {
                Some(a) => {
                    let l = self.value(lhs);
                    let r = self.value(rhs);
                    quote!(::serc_runtime::script::rt::arith(::serc_runtime::script::rt::Arith::#a, #l, #r))
                }
                None => {
                    let c = self.cond(e);
                    bool_value(c)
                }
            },
            ExprKind::Call(c) => match self.call(c) {
                Some(call) => {
                    let after = self.after();
                    quote! {{
                        let rc: i32 = #call;
                        ctx.retcode = rc;
                        #after
                        if rc == 0 {
                            return ::serc_runtime::script::Flow::Exit;
                        }
                        #v::Int(i64::from(rc))
                    }}
                }
                None => quote!(#v::Null),
            },
            ExprKind::RouteCall(_) => {
                let c = self.cond(e);
                quote! {{ let _ = #c; #v::Int(i64::from(ctx.retcode)) }}
            }
            _ => {
                self.unsupported(e.span, "this expression as a value");
                quote!(#v::Null)
            }
        }
    }

    // ------------------------------------------------------------ conditions

    /// A condition: an `i32` expression (1, 0, -1, or DROP).
    fn cond(&mut self, e: &Expr) -> Tokens {
        let rt = quote!(::serc_runtime::script::rt);
        match &e.kind {
            ExprKind::Paren(x) => self.cond(x),
            ExprKind::Unary { op: UnaryOp::Not, expr } => {
                let c = self.cond(expr);
                quote!(#rt::not(#c))
            }
            ExprKind::Binary { op: BinaryOp::And, lhs, rhs } => {
                let (l, r) = (self.cond(lhs), self.cond(rhs));
                quote! {{ let l: i32 = #l; if l != 1 { l } else { #r } }}
            }
            ExprKind::Binary { op: BinaryOp::Or, lhs, rhs } => {
                let (l, r) = (self.cond(lhs), self.cond(rhs));
                quote! {{ let l: i32 = #l; if l != 0 { l } else { #r } }}
            }
            ExprKind::Binary { op, lhs, rhs } if op.is_comparison() => self.comparison(*op, lhs, rhs, e.span),
            ExprKind::Call(c) => match self.call(c) {
                Some(call) => {
                    let after = self.after();
                    quote! {{
                        let rc: i32 = #call;
                        ctx.retcode = rc;
                        #after
                        #rt::cond_of_rc(rc)
                    }}
                }
                None => quote!(0i32),
            },
            ExprKind::RouteCall(name) => match self.route_ref(name, e.span) {
                Some(f) => quote! {
                    match self.#f(ctx, depth + 1) {
                        ::serc_runtime::script::Flow::Return(r) => {
                            ctx.retcode = r;
                            #rt::cond_of_rc(r)
                        }
                        f => return f,
                    }
                },
                None => quote!(0i32),
            },
            ExprKind::Int(n) => {
                let b = i32::from(*n != 0);
                quote!(#b)
            }
            ExprKind::Str(s) => {
                let b = i32::from(!s.is_empty());
                quote!(#b)
            }
            ExprKind::PVar(_) | ExprKind::Binary { .. } | ExprKind::Unary { .. } => {
                let v = self.value(e);
                quote!(#rt::pv_truth(&#v))
            }
            _ => {
                self.unsupported(e.span, "this expression as a condition");
                quote!(0i32)
            }
        }
    }

    fn comparison(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: Span) -> Tokens {
        let rt = quote!(::serc_runtime::script::rt);
        let matching = match op {
            BinaryOp::Match => Some(false),
            BinaryOp::NotMatch => Some(true),
            _ => None,
        };
        let cop = cmp_op(op);
        let lhs = strip_parens(lhs);
        let rhs = strip_parens(rhs);
        match &lhs.kind {
            ExprKind::Operand(operand) => match operand {
                Operand::Method => self.strval(quote!(ctx.msg.method_text()), op, rhs, span),
                Operand::Uri => {
                    if matches!(rhs.kind, ExprKind::Myself) {
                        quote!(#rt::myself_cond(ctx, ctx.request_uri(), #rt::Op::#cop))
                    } else {
                        self.strval(quote!(ctx.request_uri()), op, rhs, span)
                    }
                }
                Operand::FromUri | Operand::ToUri => {
                    let get = if *operand == Operand::FromUri { quote!(from_uri) } else { quote!(to_uri) };
                    let body = if matches!(rhs.kind, ExprKind::Myself) {
                        quote!(#rt::myself_cond(ctx, u, #rt::Op::#cop))
                    } else {
                        self.strval(quote!(u), op, rhs, span)
                    };
                    quote! {
                        match #rt::#get(ctx) {
                            ::core::option::Option::Some(u) => #body,
                            ::core::option::Option::None => -1i32,
                        }
                    }
                }
                Operand::SrcIp => self.ip_cmp(quote!(ctx.src.addr.ip()), op, rhs, span),
                Operand::DstIp => self.ip_cmp(quote!(ctx.src.local.ip()), op, rhs, span),
                Operand::SrcPort => self.int_cmp(quote!(i64::from(ctx.src.addr.port())), op, rhs, span),
                Operand::DstPort => self.int_cmp(quote!(i64::from(ctx.src.local.port())), op, rhs, span),
                Operand::MsgLen => self.int_cmp(quote!(ctx.msg.bytes().len() as i64), op, rhs, span),
                Operand::Status => self.int_cmp(quote!(ctx.msg.status().map_or(0i64, i64::from)), op, rhs, span),
                Operand::Proto => {
                    let rhs_n = match &rhs.kind {
                        ExprKind::Word(w) | ExprKind::Str(w) => match w.to_ascii_lowercase().as_str() {
                            "udp" => Some(1),
                            "tcp" => Some(2),
                            "tls" => Some(3),
                            "sctp" => Some(4),
                            _ => None,
                        },
                        ExprKind::Int(n) => Some(*n),
                        _ => None,
                    };
                    self.int_const(quote!(#rt::proto_number(ctx.src.transport)), op, rhs_n, rhs.span)
                }
                Operand::Af => {
                    let rhs_n = match &rhs.kind {
                        ExprKind::Word(w) | ExprKind::Str(w) => match w.to_ascii_uppercase().as_str() {
                            "INET" => Some(2),
                            "INET6" => Some(10),
                            _ => None,
                        },
                        ExprKind::Int(n) => Some(*n),
                        _ => None,
                    };
                    self.int_const(quote!(#rt::af_number(ctx.src.addr.ip())), op, rhs_n, rhs.span)
                }
                other => {
                    self.unsupported(lhs.span, format!("the operand `{}`", other.as_str()));
                    quote!(0i32)
                }
            },
            ExprKind::PVar(p) => {
                let Some(id) = self.pvar(p) else { return quote!(0i32) };
                let negate = match matching {
                    Some(n) => quote!(::core::option::Option::Some(#n)),
                    None => quote!(::core::option::Option::None),
                };
                let r = match (&rhs.kind, matching) {
                    (ExprKind::Null, _) => quote!(#rt::Rhs::Null),
                    (ExprKind::Int(n), None) => {
                        let n = Literal::i64_suffixed(*n);
                        quote!(#rt::Rhs::Int(#n))
                    }
                    (ExprKind::Str(s), Some(_)) => {
                        let re = self.prepared.add(Prep::CondRegex, s);
                        quote!(#rt::Rhs::Regex(&self.#re))
                    }
                    (ExprKind::Str(s), None) => quote!(#rt::Rhs::Str(#s)),
                    _ => {
                        let v = self.value(rhs);
                        quote!(#rt::Rhs::Value(#v))
                    }
                };
                quote! {{
                    let l = self.#id.get(ctx);
                    #rt::cmp_value(#rt::Op::#cop, &l, #r, #negate)
                }}
            }
            _ => {
                // Kamailio: any two values.
                let negate = match matching {
                    Some(n) => quote!(::core::option::Option::Some(#n)),
                    None => quote!(::core::option::Option::None),
                };
                let l = self.value(lhs);
                let r = self.value(rhs);
                quote! {{
                    let l = #l;
                    #rt::cmp_value(#rt::Op::#cop, &l, #rt::Rhs::Value(#r), #negate)
                }}
            }
        }
    }

    /// `comp_strval`: a string operand against a string, a number, a regex or
    /// a pseudo-variable.
    fn strval(&mut self, left: Tokens, op: BinaryOp, rhs: &Expr, span: Span) -> Tokens {
        let rt = quote!(::serc_runtime::script::rt);
        let cop = cmp_op(op);
        match (op, &rhs.kind) {
            (BinaryOp::Match | BinaryOp::NotMatch, ExprKind::Str(s)) => {
                let re = self.prepared.add(Prep::CondRegex, s);
                let negate = op == BinaryOp::NotMatch;
                quote!(#rt::re_match(#left, &self.#re, #negate))
            }
            (BinaryOp::Match | BinaryOp::NotMatch, ExprKind::PVar(_)) => {
                let negate = op == BinaryOp::NotMatch;
                let v = self.value(rhs);
                quote! {{ let r = #v; #rt::re_match_dynamic(#left, &r.as_text(), #negate) }}
            }
            (_, ExprKind::Str(s)) => quote!(#rt::str_eq(#rt::Op::#cop, #left, #s)),
            (_, ExprKind::Int(n)) => {
                let s = n.to_string();
                quote!(#rt::str_eq(#rt::Op::#cop, #left, #s))
            }
            (_, ExprKind::PVar(_)) => {
                let v = self.value(rhs);
                quote! {{ let r = #v; #rt::str_eq(#rt::Op::#cop, #left, &r.as_text()) }}
            }
            _ => {
                self.unsupported(span, "this comparison");
                quote!(0i32)
            }
        }
    }

    fn int_cmp(&mut self, left: Tokens, op: BinaryOp, rhs: &Expr, span: Span) -> Tokens {
        let n = match &rhs.kind {
            ExprKind::Int(n) => Some(*n),
            ExprKind::Str(s) => s.trim().parse().ok(),
            // `msg:len >= max_len`: OpenSER 1.3's BUF_SIZE, the largest message it reads.
            ExprKind::Operand(Operand::MaxLen) => Some(65535),
            _ => None,
        };
        if n.is_none() {
            self.unsupported(span, "a comparison of a number with something that is not one");
        }
        self.int_const(left, op, n, rhs.span)
    }

    fn int_const(&mut self, left: Tokens, op: BinaryOp, n: Option<i64>, span: Span) -> Tokens {
        let rt = quote!(::serc_runtime::script::rt);
        let Some(n) = n else {
            self.unsupported(span, "this right-hand side");
            return quote!(0i32);
        };
        if matches!(op, BinaryOp::Match | BinaryOp::NotMatch) {
            self.unsupported(span, "`=~` on a number");
            return quote!(0i32);
        }
        let cop = cmp_op(op);
        let n = Literal::i64_suffixed(n);
        quote!(#rt::int_cmp(#rt::Op::#cop, #left, #n))
    }

    fn ip_cmp(&mut self, ip: Tokens, op: BinaryOp, rhs: &Expr, span: Span) -> Tokens {
        let rt = quote!(::serc_runtime::script::rt);
        let cop = cmp_op(op);
        match (&rhs.kind, op) {
            (ExprKind::Net { addr, mask }, _) => {
                let bits = match mask {
                    NetMask::Bits(b) => *b,
                    NetMask::Addr(m) => mask_bits(*m),
                };
                let a = ip_tokens(*addr);
                quote!(#rt::ip_net(#rt::Op::#cop, #ip, #a, #bits))
            }
            (ExprKind::Ip(addr), BinaryOp::Eq | BinaryOp::Ne) => {
                let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
                let a = ip_tokens(*addr);
                quote!(#rt::ip_net(#rt::Op::#cop, #ip, #a, #bits))
            }
            (ExprKind::Myself, _) => quote!(#rt::ip_myself(#rt::Op::#cop, ctx, #ip)),
            (ExprKind::Str(s), BinaryOp::Match | BinaryOp::NotMatch) => {
                let re = self.prepared.add(Prep::CondRegex, s);
                let negate = op == BinaryOp::NotMatch;
                quote!(#rt::re_match(&(#ip).to_string(), &self.#re, #negate))
            }
            (ExprKind::Str(s) | ExprKind::Word(s), _) => quote!(#rt::ip_str(#rt::Op::#cop, #ip, #s)),
            _ => {
                self.unsupported(span, "this comparison of an address");
                quote!(0i32)
            }
        }
    }
}

fn strip_parens(e: &Expr) -> &Expr {
    match &e.kind {
        ExprKind::Paren(x) => strip_parens(x),
        _ => e,
    }
}

fn cmp_op(op: BinaryOp) -> Ident {
    format_ident!(
        "{}",
        match op {
            BinaryOp::Ne | BinaryOp::NotMatch => "Ne",
            BinaryOp::Lt => "Lt",
            BinaryOp::Gt => "Gt",
            BinaryOp::Le => "Le",
            BinaryOp::Ge => "Ge",
            _ => "Eq",
        }
    )
}

fn arith_of(op: BinaryOp) -> Option<Ident> {
    Some(format_ident!(
        "{}",
        match op {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
            BinaryOp::Mod => "Mod",
            BinaryOp::BitAnd => "And",
            BinaryOp::BitOr => "Or",
            BinaryOp::BitXor => "Xor",
            BinaryOp::Shl => "Shl",
            BinaryOp::Shr => "Shr",
            _ => return None,
        }
    ))
}

fn arith_of_assign(op: AssignOp) -> Ident {
    format_ident!(
        "{}",
        match op {
            AssignOp::Add => "Add",
            AssignOp::Sub => "Sub",
            AssignOp::Mul => "Mul",
            AssignOp::Div => "Div",
            AssignOp::Mod => "Mod",
            AssignOp::BitAnd => "And",
            AssignOp::BitOr => "Or",
            AssignOp::BitXor => "Xor",
            AssignOp::Set | AssignOp::SetAll => unreachable!("plain assignments have no operator"),
        }
    )
}

/// A condition used as a value: 1 or 0 (a function returning 0 in it ends the script).
fn bool_value(c: Tokens) -> Tokens {
    quote! {{
        let c: i32 = #c;
        if c == ::serc_runtime::script::rt::DROP {
            return ::serc_runtime::script::Flow::Exit;
        }
        ::serc_runtime::script::Value::Int(i64::from(c > 0))
    }}
}

fn clamp_i32(n: i64) -> i32 {
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn mask_bits(m: std::net::IpAddr) -> u8 {
    match m {
        std::net::IpAddr::V4(a) => u32::from(a).count_ones() as u8,
        std::net::IpAddr::V6(a) => u128::from(a).count_ones() as u8,
    }
}

fn ip_tokens(ip: std::net::IpAddr) -> Tokens {
    match ip {
        std::net::IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            quote!(::std::net::IpAddr::V4(::std::net::Ipv4Addr::new(#a, #b, #c, #d)))
        }
        std::net::IpAddr::V6(a) => {
            let segs = a.segments();
            quote!(::std::net::IpAddr::V6(::std::net::Ipv6Addr::new(#(#segs),*)))
        }
    }
}

/// `L_ERR`, `"-1"` … → the variant of `Level`.
fn log_level(text: &str) -> Ident {
    let name = match text.trim().parse::<i64>() {
        Ok(n) => match n {
            i64::MIN..=-3 => "Alert",
            -2 => "Crit",
            -1 | 0 => "Err",
            1 => "Warn",
            2 => "Notice",
            3 => "Info",
            _ => "Dbg",
        },
        Err(_) => match text.trim().as_bytes().get(2) {
            Some(b'A') => "Alert",
            Some(b'C') => "Crit",
            Some(b'E') => "Err",
            Some(b'W') => "Warn",
            Some(b'N') => "Notice",
            Some(b'I') => "Info",
            _ => "Dbg",
        },
    };
    format_ident!("{name}")
}
