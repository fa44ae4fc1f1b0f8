//! The code generator: a checked config → Rust tokens that call the runtime
//! (`serc_runtime`). It never does IO.
//!
//! What it produces (the same items for `serc build` and `include_cfg!`):
//! - `pub struct CfgScript` — the routes, with every literal argument prepared
//!   once (regexes, formats, URIs …) — implementing `serc_runtime::app::Script`;
//! - `pub fn launch() -> ::serc_runtime::launch::Launch<CfgScript>` — the
//!   script with the settings the config's globals and modparams give.
//!
//! `serc build` adds `fn main() -> ExitCode { launch().main() }`
//! ([`binary_source`]); `include_cfg!` wraps the items in a block whose value is
//! `launch()`.

mod prepare;
mod routes;
mod settings;

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::quote;
use serc_manifest::{Arg, ArgKind, Function, Module, Routes};

use crate::check::RouteKey;
use crate::diag::{Diagnostic, Kind};
use crate::syntax::ast::{ItemKind, Route, RouteType};
use crate::syntax::Parse;

/// What to generate.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Rust functions the script may call besides the modules' (`include_cfg!`'s
    /// `functions = [...]`): checked like module functions.
    pub user_functions: Vec<UserFunction>,
    /// Put a `__serc_at!("file:line:col")` statement before each statement's code;
    /// [`pretty`] turns them into `// file:line:col` comments, so errors in the
    /// generated source can be traced back to the config. Off for `include_cfg!`.
    pub line_markers: bool,
    /// The config's name, as `--version` prints it.
    pub cfg_name: String,
    /// A digest of the config's sources, as `--version` prints it.
    pub cfg_hash: String,
}

/// A Rust function callable from the config by `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFunction {
    /// The name the config calls it by.
    pub name: String,
    /// Its arguments (after `&mut Ctx`), as module functions' are described.
    pub args: Vec<ArgKind>,
    /// Its Rust path (`crate::fraud::check`).
    pub path: String,
}

/// The generated items, and warnings met on the way.
#[derive(Debug)]
pub struct Output {
    pub tokens: TokenStream,
    pub warnings: Vec<Diagnostic>,
}

/// The module name the user's functions are listed under.
pub const USER_MODULE: &str = "rust";

/// The user's functions as a module the checker and the generator resolve
/// calls against (leaked: a compiler run makes a handful).
pub fn user_module(functions: &[UserFunction]) -> Option<&'static Module> {
    if functions.is_empty() {
        return None;
    }
    let fs: Vec<Function> = functions
        .iter()
        .map(|u| {
            let args: Vec<Arg> = u
                .args
                .iter()
                .enumerate()
                .map(|(i, k)| Arg { name: Box::leak(format!("arg{}", i + 1).into_boxed_str()), kind: *k })
                .collect();
            Function {
                name: Box::leak(u.name.clone().into_boxed_str()),
                args: Box::leak(args.into_boxed_slice()),
                routes: Routes::ANY,
                returns: &[],
                implemented: true,
                reads: &["*"],
                summary: "a Rust function of the embedding crate",
            }
        })
        .collect();
    Some(Box::leak(Box::new(Module {
        name: USER_MODULE,
        summary: "Rust functions given to include_cfg!",
        functions: Box::leak(fs.into_boxed_slice()),
        params: &[],
    })))
}

/// Generates the items for a parsed and checked config. Fails with the errors
/// that prevent it: any error already in `parse.diagnostics`, and what the
/// runtime does not implement (kind `unsupported`).
pub fn generate(parse: &Parse, opts: &Options) -> Result<Output, Vec<Diagnostic>> {
    if parse.has_errors() {
        return Err(parse.diagnostics.iter().filter(|d| d.is_error()).cloned().collect());
    }
    // The generator recurses as deep as the tree (bounded by the front end), so
    // it runs on a thread with a big stack. Tokens backed by the compiler
    // (inside `include_cfg!`) cannot cross threads: that thread uses
    // proc-macro2's own implementation and hands back text, read here.
    proc_macro2::fallback::force();
    let made = crate::on_big_stack(|| generate_here(parse, opts).map(|o| (o.tokens.to_string(), o.warnings)));
    proc_macro2::fallback::unforce();
    let (text, warnings) = made?;
    match text.parse::<TokenStream>() {
        Ok(tokens) => Ok(Output { tokens, warnings }),
        Err(e) => Err(vec![Diagnostic::error(
            Kind::Internal,
            crate::source::Span::new(crate::source::FileId(0), 0, 0),
            format!("serc bug: the generated code does not read back as Rust tokens: {e}"),
        )]),
    }
}

fn generate_here(parse: &Parse, opts: &Options) -> Result<Output, Vec<Diagnostic>> {
    let config = &parse.config;
    let mut lower = routes::Lower::new(&parse.sources, config.dialect);
    lower.line_markers = opts.line_markers;
    let mut warnings = Vec::new();

    // Modules: the core, those loaded (in order), the user's functions.
    lower.modules.extend(serc_manifest::module("core"));
    for item in &config.items {
        if let ItemKind::LoadModule(path) = &item.kind {
            let name = crate::check::module_name(&path.value);
            match serc_manifest::module(name).filter(|m| m.name != "core") {
                Some(m) if lower.modules.iter().any(|l| l.name == m.name) => {}
                Some(m) => {
                    if !module_provided(m) {
                        let d = Diagnostic::error(
                            Kind::Unsupported,
                            path.span,
                            format!("module `{}` is not implemented by serc's runtime yet", m.name),
                        )
                        .with_label("cannot be loaded into a serc proxy")
                        .with_note(format!("serc's runtime implements: {}", implemented_modules().join(", ")));
                        lower.diags.push(d);
                    }
                    lower.modules.push(m);
                }
                None => lower.diags.push(
                    Diagnostic::error(Kind::Unsupported, path.span, format!("serc cannot provide the module `{name}`"))
                        .with_label("not a module serc implements"),
                ),
            }
        }
    }
    let user = user_module(&opts.user_functions);
    if let Some(u) = user {
        lower.modules.push(u);
        for f in &opts.user_functions {
            lower.user_paths.insert(f.name.clone(), f.path.clone());
        }
    }

    let settings = settings::settings(parse, opts, &mut lower, &mut warnings);

    // Routes: the main request route, the bare reply route, the error route,
    // and every `route(N)` they reach. Other route types are armed by tm
    // (not implemented yet: its functions are refused above).
    let mut bodies: HashMap<(RouteType, RouteKey), &Route> = HashMap::new();
    for route in config.routes() {
        let key = RouteKey::of(route);
        if route.rtype == RouteType::Request {
            lower.request_routes.insert(key.clone(), routes::route_fn(RouteType::Request, &key));
        }
        bodies.entry((route.rtype, key)).or_insert(route);
        if !matches!(
            route.rtype,
            RouteType::Request | RouteType::OnReply | RouteType::Error | RouteType::Failure | RouteType::Branch
        ) {
            lower.diags.push(
                Diagnostic::error(Kind::Unsupported, route.keyword.span, format!("`{}` blocks", route.rtype.keyword()))
                    .with_label("not implemented by serc's runtime yet"),
            );
        }
    }
    lower.has_error_route = bodies.contains_key(&(RouteType::Error, RouteKey::Main));

    let mut fns = TokenStream::new();
    let mut script_impl = TokenStream::new();
    let mut emit = |lower: &mut routes::Lower, rtype: RouteType, key: &RouteKey, route: &Route| {
        let name = routes::route_fn(rtype, key);
        let body = lower.route_body(&route.body);
        let doc = format!(" `{}`", key.display(rtype));
        fns.extend(quote! {
            #[doc = #doc]
            fn #name(&self, ctx: &mut ::serc_runtime::script::Ctx<'_>, depth: u32) -> ::serc_runtime::script::Flow {
                #body
            }
        });
        name
    };
    let main_key = RouteKey::Main;
    match bodies.get(&(RouteType::Request, main_key.clone())) {
        Some(route) => {
            let name = emit(&mut lower, RouteType::Request, &main_key, route);
            script_impl.extend(quote! {
                fn request(&self, ctx: &mut ::serc_runtime::script::Ctx<'_>) -> ::serc_runtime::script::Flow {
                    self.#name(ctx, 1)
                }
            });
        }
        None => script_impl.extend(quote! {
            fn request(&self, _ctx: &mut ::serc_runtime::script::Ctx<'_>) -> ::serc_runtime::script::Flow {
                ::serc_runtime::script::Flow::Exit
            }
        }),
    }
    if let Some(route) = bodies.get(&(RouteType::OnReply, main_key.clone())) {
        let name = emit(&mut lower, RouteType::OnReply, &main_key, route);
        script_impl.extend(quote! {
            fn reply(&self, ctx: &mut ::serc_runtime::script::Ctx<'_>) -> ::serc_runtime::script::Flow {
                self.#name(ctx, 1)
            }
        });
    }
    if let Some(route) = bodies.get(&(RouteType::Error, main_key.clone())) {
        let name = emit(&mut lower, RouteType::Error, &main_key, route);
        script_impl.extend(quote! {
            fn error(
                &self,
                ctx: &mut ::serc_runtime::script::Ctx<'_>,
            ) -> ::core::option::Option<::serc_runtime::script::Flow> {
                ::core::option::Option::Some(self.#name(ctx, 1))
            }
        });
    }
    // Sub-routes and the routes tm arms, as they are found to be used (a
    // route emitted may use more).
    let (mut done, mut tm_done) = (0, 0);
    let mut tm_arms: HashMap<RouteType, TokenStream> = HashMap::new();
    while done < lower.called.len() || tm_done < lower.tm_routes.len() {
        if done < lower.called.len() {
            let key = lower.called[done].clone();
            done += 1;
            if key == RouteKey::Main {
                continue;
            }
            if let Some(route) = bodies.get(&(RouteType::Request, key.clone())) {
                emit(&mut lower, RouteType::Request, &key, route);
            }
        } else {
            let (rtype, key, id) = lower.tm_routes[tm_done].clone();
            tm_done += 1;
            if let Some(route) = bodies.get(&(rtype, key.clone())) {
                let name = emit(&mut lower, rtype, &key, route);
                let id = proc_macro2::Literal::u32_suffixed(id);
                tm_arms.entry(rtype).or_default().extend(quote! { #id => self.#name(ctx, 1), });
            }
        }
    }
    for (rtype, method) in [
        (RouteType::Failure, "failure_route"),
        (RouteType::OnReply, "onreply_route"),
        (RouteType::Branch, "branch_route"),
    ] {
        if let Some(arms) = tm_arms.remove(&rtype) {
            let method = quote::format_ident!("{method}");
            script_impl.extend(quote! {
                fn #method(
                    &self,
                    id: ::serc_runtime::script::args::RouteId,
                    ctx: &mut ::serc_runtime::script::Ctx<'_>,
                ) -> ::serc_runtime::script::Flow {
                    match id {
                        #arms
                        _ => ::serc_runtime::script::Flow::Return(1),
                    }
                }
            });
        }
    }

    // What received messages get validated of the optional headers (Contact,
    // Expires, Date): what the script's functions read, nothing else; in
    // responses only what a function that may run on one reads.
    let reads = lower.reads.iter();
    let reply_reads = lower.reply_reads.iter();
    script_impl.extend(quote! {
        fn interest(&self) -> ::serc_runtime::sip::Interest {
            ::serc_runtime::sip::Interest::NONE
                #( .union(::serc_runtime::sip::Interest::of_header(#reads).requests_only()) )*
                #( .union(::serc_runtime::sip::Interest::of_header(#reply_reads)) )*
        }
    });

    if lower.diags.iter().any(Diagnostic::is_error) {
        let mut errors = lower.diags;
        crate::diag::sort(&mut errors);
        return Err(errors);
    }
    warnings.append(&mut lower.diags);

    let decls = lower.prepared.field_decls();
    let inits = lower.prepared.field_inits();
    let doc = format!(" The routes of `{}`, compiled by serc {}.", settings.cfg_name, env!("CARGO_PKG_VERSION"));
    let settings_code = settings.tokens;
    let tokens = quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        pub struct CfgScript {
            #decls
        }

        #[allow(
            unused_mut,
            unused_variables,
            unused_assignments,
            unused_labels,
            unreachable_code,
            clippy::all
        )]
        impl CfgScript {
            /// Prepares the config's literals (regexes, formats, URIs …) once.
            pub fn new() -> ::core::result::Result<CfgScript, ::std::string::String> {
                ::core::result::Result::Ok(CfgScript { #inits })
            }

            #fns
        }

        impl ::serc_runtime::app::Script for CfgScript {
            #script_impl
        }

        /// The compiled config with the settings of its global parameters and
        /// `modparam`s, ready to configure and start.
        pub fn launch() -> ::serc_runtime::launch::Launch<CfgScript> {
            let script = match CfgScript::new() {
                ::core::result::Result::Ok(s) => s,
                ::core::result::Result::Err(e) => ::serc_runtime::script::rt::prepare_failed(&e),
            };
            #settings_code
            ::serc_runtime::launch::Launch::new(script, settings)
        }
    };
    crate::diag::sort(&mut warnings);
    Ok(Output { tokens, warnings })
}

/// Whether the runtime provides a module: some of its functions are
/// implemented, or it is one that works through its parameters alone.
fn module_provided(m: &Module) -> bool {
    m.functions.iter().any(|f| f.implemented) || serc_manifest::PROVIDED_WITHOUT_FUNCTIONS.contains(&m.name)
}

fn implemented_modules() -> Vec<&'static str> {
    serc_manifest::all().iter().filter(|m| m.name != "core" && module_provided(m)).map(|m| m.name).collect()
}

/// Formats generated items (prettyplease), turning line markers into comments.
pub fn pretty(tokens: &TokenStream) -> String {
    let file: syn::File = match syn::parse2(tokens.clone()) {
        Ok(f) => f,
        // Generated code always parses; if it ever does not, show it unformatted.
        Err(_) => return tokens.to_string(),
    };
    let text = prettyplease::unparse(&file);
    markers_to_comments(&text)
}

/// `__serc_at!("file:line:col");` → `// file:line:col`, also where
/// prettyplease broke a long marker over three lines (`__serc_at!(`, the
/// string, `);`).
fn markers_to_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let one_line = trimmed.strip_prefix("__serc_at!(\"").and_then(|r| r.strip_suffix("\");"));
        let broken = (trimmed == "__serc_at!(" && i + 2 < lines.len() && lines[i + 2].trim() == ");")
            .then(|| lines[i + 1].trim().trim_end_matches(','))
            .and_then(|s| s.strip_prefix('"')?.strip_suffix('"'));
        match (one_line, broken) {
            (Some(at), _) => {
                out.push_str(indent);
                out.push_str("// ");
                out.push_str(at);
            }
            (None, Some(at)) => {
                out.push_str(indent);
                out.push_str("// ");
                out.push_str(at);
                i += 2;
            }
            (None, None) => out.push_str(line),
        }
        out.push('\n');
        i += 1;
    }
    out
}

/// The whole `main.rs` of a proxy built by `serc build`.
pub fn binary_source(out: &Output) -> String {
    let items = &out.tokens;
    pretty(&quote! {
        #items
        fn main() -> ::std::process::ExitCode {
            launch().main()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_comments_even_when_broken_over_lines() {
        let long = format!("/a/very/long/path/{}/openser.cfg:12:3", "x".repeat(80));
        let tokens = quote! {
            fn route(ctx: &mut Ctx) {
                __serc_at!("short.cfg:1:1");
                a();
                __serc_at!(#long);
                b();
            }
        };
        let text = pretty(&tokens);
        assert!(!text.contains("__serc_at"), "{text}");
        assert!(text.contains("    // short.cfg:1:1\n    a();\n"), "{text}");
        assert!(text.contains(&format!("    // {long}\n    b();\n")), "{text}");
    }
}
