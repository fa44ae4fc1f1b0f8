//! Global parameters and `modparam`s → the code that fills
//! `serc_runtime::launch::Settings`. A global serc does not act on is said
//! (a warning), never silently dropped; the ones whose OpenSER meaning is what
//! serc does anyway (`fork=no`, `log_stderror=yes` …) pass quietly.

use proc_macro2::TokenStream;
use quote::quote;

use super::routes::Lower;
use super::Options;
use crate::diag::{Diagnostic, Kind};
use crate::syntax::ast::*;
use crate::syntax::Parse;

pub struct SettingsOut {
    pub cfg_name: String,
    /// Statements defining `let mut settings = Settings { … }`.
    pub tokens: TokenStream,
}

/// Globals with no effect in serc, because serc does what they ask for anyway
/// or because they only concern how OpenSER itself was run.
const QUIET: &[&str] = &[
    "log_stderror",
    "log_facility",
    "log_name",
    "mpath",
    "check_via",
    "dns",
    "rev_dns",
    "memlog",
    "memdbg",
    "sip_warning",
    "user",
    "group",
    "uid",
    "gid",
    "wdir",
    "chroot",
    "mhomed",
];

pub fn settings(parse: &Parse, opts: &Options, lower: &mut Lower, warnings: &mut Vec<Diagnostic>) -> SettingsOut {
    let config = &parse.config;
    let cfg_name = if opts.cfg_name.is_empty() {
        parse.sources.get(crate::source::FileId(0)).name.clone()
    } else {
        opts.cfg_name.clone()
    };
    let cfg_hash = if opts.cfg_hash.is_empty() { parse.sources.digest() } else { opts.cfg_hash.clone() };
    let launch = quote!(::serc_runtime::launch);
    let mut body = TokenStream::new();
    // `port=`: the port of the `listen=` that give none (and of the default listen).
    let default_port: Option<u16> = config.items.iter().rev().find_map(|item| match &item.kind {
        ItemKind::Global(g) if g.name.name == "port" => match &g.value {
            GlobalValue::Int(i) => u16::try_from(i.value).ok(),
            _ => None,
        },
        _ => None,
    });
    let mut any_listen = false;
    for item in &config.items {
        let ItemKind::Global(g) = &item.kind else { continue };
        let name = g.name.name.as_str();
        match (name, &g.value) {
            ("listen", GlobalValue::Sockets(socks)) => {
                for s in socks {
                    let transport = match s.proto.as_ref().map(|p| p.name.to_ascii_lowercase()) {
                        None => quote!(::core::option::Option::None),
                        Some(p) if p == "udp" => {
                            quote!(::core::option::Option::Some(::serc_runtime::proxy::Transport::Udp))
                        }
                        Some(p) if p == "tcp" => {
                            quote!(::core::option::Option::Some(::serc_runtime::proxy::Transport::Tcp))
                        }
                        Some(p) => {
                            lower.diags.push(
                                Diagnostic::error(Kind::Unsupported, s.span, format!("listening on {p}"))
                                    .with_label("serc's runtime serves UDP and TCP so far"),
                            );
                            continue;
                        }
                    };
                    let host = host_text(&s.host);
                    let port = match s.port.map(|p| u16::try_from(p.value)) {
                        Some(Ok(p)) => quote!(::core::option::Option::Some(#p)),
                        _ => match default_port {
                            Some(p) => quote!(::core::option::Option::Some(#p)),
                            None => quote!(::core::option::Option::None),
                        },
                    };
                    any_listen = true;
                    body.extend(quote! {
                        settings.listens.push(#launch::ListenSpec {
                            transport: #transport,
                            host: ::std::string::String::from(#host),
                            port: #port,
                        });
                    });
                }
            }
            ("alias", GlobalValue::Sockets(socks)) => {
                for s in socks {
                    let host = host_text(&s.host);
                    body.extend(quote! { settings.config.aliases.push(::std::string::String::from(#host)); });
                }
            }
            ("alias", GlobalValue::Str(s)) => {
                let host = &s.value;
                body.extend(quote! { settings.config.aliases.push(::std::string::String::from(#host)); });
            }
            ("children", GlobalValue::Int(i)) => {
                let n = usize::try_from(i.value.max(1)).unwrap_or(1);
                body.extend(quote! { settings.children = ::core::option::Option::Some(#n); });
            }
            ("debug", GlobalValue::Int(i)) => {
                let n = i.value;
                body.extend(quote! { settings.debug = ::core::option::Option::Some(#n); });
            }
            ("fork", v) => {
                let on = truth(v);
                body.extend(quote! { settings.fork = #on; });
            }
            ("disable_tcp", v) => {
                let on = truth(v);
                body.extend(quote! { settings.disable_tcp = #on; });
            }
            ("server_signature", v) => {
                if !truth(v) {
                    body.extend(quote! {
                        settings.config.server_header = ::serc_runtime::script::ServerHeader::none();
                    });
                }
            }
            ("server_header", GlobalValue::Str(s)) => {
                let text = &s.value;
                body.extend(quote! {
                    settings.config.server_header = ::serc_runtime::script::ServerHeader::text(#text);
                });
            }
            ("max_while_loops", GlobalValue::Int(i)) => lower.max_while_loops = i.value.max(0),
            ("port", GlobalValue::Int(_)) => {}
            (n, _) if QUIET.contains(&n) => {}
            _ => warnings.push(
                Diagnostic::warning(Kind::Unsupported, g.name.span, format!("`{name}` has no effect in serc yet"))
                    .with_label("ignored"),
            ),
        }
    }
    if let (false, Some(p)) = (any_listen, default_port) {
        body.extend(quote! {
            settings.listens.push(#launch::ListenSpec {
                transport: ::core::option::Option::None,
                host: ::std::string::String::from("*"),
                port: ::core::option::Option::Some(#p),
            });
        });
    }
    // modparams, in order, for the modules loaded before each.
    let mut loaded: Vec<String> = Vec::new();
    for item in &config.items {
        match &item.kind {
            ItemKind::LoadModule(path) => loaded.push(crate::check::module_name(&path.value).to_string()),
            ItemKind::ModParam(p) => {
                let pattern = format!("(?i)^(?:{})$", p.module.value);
                let Ok(re) = regex::Regex::new(&pattern) else { continue };
                let value = match &p.value {
                    ModParamValue::Int(i) => {
                        let n = i.value;
                        quote!(::serc_runtime::script::Value::Int(#n))
                    }
                    ModParamValue::Str(s) => {
                        let s = &s.value;
                        quote!(::serc_runtime::script::Value::Str(::std::string::String::from(#s)))
                    }
                    ModParamValue::Word(w) => {
                        let s = &w.name;
                        quote!(::serc_runtime::script::Value::Str(::std::string::String::from(#s)))
                    }
                };
                let param = &p.param.value;
                if let Some(d) = unsupported_param(&loaded, &re, param, &p.value) {
                    lower.diags.push(d);
                }
                for m in loaded.iter().filter(|m| re.is_match(m)) {
                    body.extend(quote! { settings.config.params.set(#m, #param, #value); });
                }
            }
            _ => {}
        }
    }
    let tokens = quote! {
        let mut settings = #launch::Settings::default();
        settings.cfg_name = ::std::string::String::from(#cfg_name);
        settings.cfg_hash = ::std::string::String::from(#cfg_hash);
        #body
    };
    SettingsOut { cfg_name, tokens }
}

/// A module parameter whose value asks for what the runtime does not do yet.
fn unsupported_param(loaded: &[String], re: &regex::Regex, param: &str, value: &ModParamValue) -> Option<Diagnostic> {
    let usrloc = loaded.iter().any(|m| m == "usrloc" && re.is_match(m));
    match (usrloc, param, value) {
        (true, "db_mode", ModParamValue::Int(i)) if i.value != 0 => Some(
            Diagnostic::error(Kind::Unsupported, i.span, format!("usrloc's `db_mode` {}", i.value))
                .with_label("serc keeps the location table in memory only (db_mode 0) so far")
                .with_note("the database modes come with serc's database layer"),
        ),
        _ => None,
    }
}

fn host_text(h: &Host) -> String {
    match h {
        Host::Ip(std::net::IpAddr::V6(a), _) => format!("[{a}]"),
        Host::Ip(ip, _) => ip.to_string(),
        Host::Name(n, _) => n.clone(),
    }
}

/// `yes`/`on`/`true`/non-zero.
fn truth(v: &GlobalValue) -> bool {
    match v {
        GlobalValue::Int(i) => i.value != 0,
        GlobalValue::Word(w) => matches!(w.name.to_ascii_lowercase().as_str(), "yes" | "on" | "true"),
        GlobalValue::Str(s) => matches!(s.value.to_ascii_lowercase().as_str(), "yes" | "on" | "true" | "1"),
        _ => false,
    }
}
