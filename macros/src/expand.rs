//! From the parsed input to the expansion: read and check the config, generate
//! its items, and wrap them in a block whose value is `launch()`.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use serc::codegen::{self, UserFunction};
use serc::diag::{render, Diagnostic};
use serc::source::SourceMap;
use serc::syntax::{FileLoader, FsLoader, ParseOptions};
use serc_manifest::ArgKind;

use crate::input::{Input, UserFn};

pub fn expand(input: &Input) -> syn::Result<TokenStream> {
    let span = input.path.span();
    let written = input.path.value();
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
        syn::Error::new(span, "CARGO_MANIFEST_DIR is not set: include_cfg! is meant to be built by cargo")
    })?;
    let path = PathBuf::from(dir).join(&written);
    let text = FsLoader.load(&path).map_err(|e| {
        syn::Error::new(span, format!("cannot read `{written}` (paths are relative to the crate's directory): {e}"))
    })?;

    // Named as written (not by its absolute path), so messages read `--> openser.cfg:3:5`.
    let opts = ParseOptions { dialect: input.dialect, defines: Vec::new() };
    let mut parse = serc::syntax::parse_source(&written, &path, &text, &opts, &FsLoader);
    let user_functions: Vec<UserFunction> = input.functions.iter().map(user_function).collect();
    serc::check_parse_with(&mut parse, &user_functions);

    let options = codegen::Options {
        user_functions,
        line_markers: false,
        cfg_name: written.clone(),
        cfg_hash: parse.sources.digest(),
    };
    let out = codegen::generate(&parse, &options)
        .map_err(|errors| syn::Error::new(span, message(&written, &errors, &parse.sources)))?;

    let mut tracked = Vec::new();
    for (_, file) in parse.sources.files() {
        match file.path.to_str() {
            Some(p) => tracked.push(p.to_owned()),
            None => {
                let shown = file.path.display();
                return Err(syn::Error::new(
                    span,
                    format!("`{shown}` is not valid UTF-8: include_cfg! cannot track it"),
                ));
            }
        }
    }
    let assertions = input.functions.iter().map(signature_assertion);
    let items = out.tokens;
    Ok(quote! {
        {
            #(const _: &[u8] = ::core::include_bytes!(#tracked);)*
            #(#assertions)*
            #items
            launch()
        }
    })
}

fn user_function(f: &UserFn) -> UserFunction {
    let path = f.path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::");
    let path = if f.path.leading_colon.is_some() { format!("::{path}") } else { path };
    UserFunction { name: f.name.to_string(), args: f.args.iter().map(|a| a.0).collect(), path }
}

/// `const _: fn(&mut Ctx<'_>, &Format, i64) -> i32 = crate::fraud::check;` — a
/// function whose Rust signature disagrees with its declared kinds does not
/// compile, and rustc points at its path in the macro call.
fn signature_assertion(f: &UserFn) -> TokenStream {
    let types = f.args.iter().map(|(kind, span)| {
        let ty = rust_type(*kind);
        quote_spanned!(*span=> #ty)
    });
    let path = &f.path;
    quote! {
        const _: fn(&mut ::serc_runtime::script::Ctx<'_> #(, #types)*) -> i32 = #path;
    }
}

/// `ArgKind::rust_type` as tokens: its names are relative to
/// `serc_runtime::script::args`, or Rust primitives.
fn rust_type(kind: ArgKind) -> TokenStream {
    let text = kind.rust_type();
    let (reference, name) = match text.strip_prefix('&') {
        Some(name) => (true, name),
        None => (false, text),
    };
    let ident = format_ident!("{}", name);
    let ty = if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        quote!(#ident)
    } else {
        quote!(::serc_runtime::script::args::#ident)
    };
    if reference {
        quote!(&#ty)
    } else {
        ty
    }
}

/// The text of the compile error: a count, then every error as `serc check`
/// shows it without colours. (Not "could not compile …": trybuild drops such
/// lines, taking them for cargo's.)
fn message(cfg: &str, errors: &[Diagnostic], sources: &SourceMap) -> String {
    let errors: Vec<&Diagnostic> = errors.iter().filter(|d| d.is_error()).collect();
    let count = if errors.len() == 1 { "1 error".to_owned() } else { format!("{} errors", errors.len()) };
    let mut out = format!("`{cfg}` has {count}");
    for d in errors {
        out.push_str("\n\n");
        out.push_str(&render::plain(d, sources));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_types_are_paths_into_the_runtime() {
        let shown = |k| rust_type(k).to_string().replace(' ', "");
        assert_eq!(shown(ArgKind::Str), "&str");
        assert_eq!(shown(ArgKind::Int), "i64");
        assert_eq!(shown(ArgKind::Regex), "&::serc_runtime::script::args::Regex");
        assert_eq!(shown(ArgKind::FailureRoute), "::serc_runtime::script::args::RouteId");
    }
}
