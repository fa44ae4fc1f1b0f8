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
            ("maxbuffer", GlobalValue::Int(i)) => {
                // The runtime brings it into its range (`launch::MAXBUFFER_RANGE`).
                let n = usize::try_from(i.value.max(0)).unwrap_or(usize::MAX);
                body.extend(quote! { settings.maxbuffer = ::core::option::Option::Some(#n); });
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
            ItemKind::LoadModule(path) => {
                let name = crate::check::module_name(&path.value).to_string();
                body.extend(quote! { settings.config.params.load(#name); });
                loaded.push(name);
            }
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
    usrloc_db_warning(config, warnings);
    db_module_warnings(config, warnings);
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
    let acc = loaded.iter().any(|m| m == "acc" && re.is_match(m));
    if let (true, "db_url", ModParamValue::Str(url)) = (acc, param, value) {
        // Without a db_url acc does no database accounting (as OpenSER).
        if !url.value.is_empty() {
            return db_url_problem(&url.value).map(|why| {
                Diagnostic::error(Kind::Unsupported, url.span, format!("acc's `db_url`: {why}"))
                    .with_label("serc reaches sqlite://PATH, postgres://…, mysql://… and dbtext://DIR databases")
            });
        }
    }
    match (usrloc, param, value) {
        (true, "db_mode", ModParamValue::Int(i)) if !(0..=3).contains(&i.value) => Some(
            Diagnostic::error(Kind::Unsupported, i.span, format!("usrloc's `db_mode` {}", i.value))
                .with_label("usrloc's modes are 0 (memory), 1 (write-through), 2 (write-back), 3 (database only)"),
        ),
        (true, "db_url", ModParamValue::Str(url)) => db_url_problem(&url.value).map(|why| {
            Diagnostic::error(Kind::Unsupported, url.span, format!("usrloc's `db_url`: {why}"))
                .with_label("serc reaches sqlite://PATH, postgres://…, mysql://… and dbtext://DIR databases")
        }),
        _ => None,
    }
}

/// What serc cannot use in a `db_url` (its scheme; the rest is checked when
/// the proxy starts).
fn db_url_problem(url: &str) -> Option<String> {
    let scheme = url.trim().split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite" | "sqlite3" | "postgres" | "postgresql" | "mysql" | "mariadb" | "text" | "dbtext") => None,
        Some(other) => Some(format!("`{other}` databases are not supported")),
        None => Some(format!("`{url}` is not a database URL")),
    }
}

/// auth_db, domain and uri_db loaded without a `db_url`: OpenSER 1.3 used its
/// default MySQL URL; serc uses the embedded SQLite file, and says so.
fn db_module_warnings(config: &Config, warnings: &mut Vec<Diagnostic>) {
    for item in &config.items {
        let ItemKind::LoadModule(path) = &item.kind else { continue };
        let name = crate::check::module_name(&path.value);
        let default = match name {
            "auth_db" => "mysql://openser:openserrw@localhost/openser",
            "domain" | "uri_db" => "mysql://openserro:openserro@localhost/openser",
            _ => continue,
        };
        let names_it =
            |module: &str| regex::Regex::new(&format!("(?i)^(?:{module})$")).is_ok_and(|re| re.is_match(name));
        let has_url = config.items.iter().any(|item| {
            matches!(&item.kind, ItemKind::ModParam(p) if p.param.value == "db_url" && names_it(&p.module.value))
        });
        if has_url {
            continue;
        }
        warnings.push(
            Diagnostic::warning(Kind::Unsupported, path.span, format!("`{name}` without a `db_url`"))
                .with_label("its tables are read from the embedded SQLite file openser.sqlite")
                .with_note(format!(
                    "OpenSER 1.3 used {default}; serc uses the file openser.sqlite in the proxy's working \
                     directory (its tables are created at start; `serc db add-user` fills them)"
                ))
                .with_help(format!("set modparam(\"{name}\", \"db_url\", \"…\") to use a database server")),
        );
    }
}

/// usrloc with a database mode and no `db_url`: OpenSER 1.3 used its
/// default MySQL URL; serc uses an embedded SQLite file, and says so.
fn usrloc_db_warning(config: &Config, warnings: &mut Vec<Diagnostic>) {
    let names_usrloc =
        |module: &str| regex::Regex::new(&format!("(?i)^(?:{module})$")).is_ok_and(|re| re.is_match("usrloc"));
    let last = |name: &str| {
        config.items.iter().rev().find_map(|item| match &item.kind {
            ItemKind::ModParam(p) if p.param.value == name && names_usrloc(&p.module.value) => Some(p),
            _ => None,
        })
    };
    let Some(mode) = last("db_mode") else { return };
    let ModParamValue::Int(i) = &mode.value else { return };
    if i.value == 0 || last("db_url").is_some() {
        return;
    }
    warnings.push(
        Diagnostic::warning(Kind::Unsupported, i.span, format!("usrloc's `db_mode` {} without a `db_url`", i.value))
            .with_label("the location table goes to the embedded SQLite file openser.sqlite")
            .with_note(
                "OpenSER 1.3 used mysql://openser:openserrw@localhost/openser; serc uses the file openser.sqlite \
                 in the proxy's working directory (its tables are created at start)",
            )
            .with_help("set modparam(\"usrloc\", \"db_url\", \"…\") to use a database server"),
    );
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
