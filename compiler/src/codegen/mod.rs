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

use proc_macro2::TokenStream;
use quote::quote;
use serc_manifest::ArgKind;

use crate::diag::Diagnostic;
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

/// Generates the items for a parsed and checked config. Fails with the errors
/// that prevent it: any error already in `parse.diagnostics`, and what the
/// runtime does not implement (kind `unsupported`).
pub fn generate(parse: &Parse, opts: &Options) -> Result<Output, Vec<Diagnostic>> {
    if parse.has_errors() {
        return Err(parse.diagnostics.iter().filter(|d| d.is_error()).cloned().collect());
    }
    let _ = opts;
    // Placeholder until the generator lands: a script that ends every request.
    let tokens = quote! {
        pub struct CfgScript;
        impl ::serc_runtime::app::Script for CfgScript {
            fn request(&self, _ctx: &mut ::serc_runtime::script::Ctx) -> ::serc_runtime::script::Flow {
                ::serc_runtime::script::Flow::Exit
            }
        }
        pub fn launch() -> ::serc_runtime::launch::Launch<CfgScript> {
            ::serc_runtime::launch::Launch::new(CfgScript, ::serc_runtime::launch::Settings::default())
        }
    };
    Ok(Output { tokens, warnings: Vec::new() })
}

/// Formats generated items (prettyplease), turning line markers into comments.
pub fn pretty(tokens: &TokenStream) -> String {
    let file: syn::File = match syn::parse2(tokens.clone()) {
        Ok(f) => f,
        // Generated code always parses; if it ever does not, show it unformatted.
        Err(_) => return tokens.to_string(),
    };
    let text = prettyplease::unparse(&file);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(at) = trimmed.strip_prefix("__serc_at!(\"").and_then(|r| r.strip_suffix("\");")) {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(indent);
            out.push_str("// ");
            out.push_str(at);
        } else {
            out.push_str(line);
        }
        out.push('\n');
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
