//! serc: compiles OpenSER routing scripts (`openser.cfg`) into native Rust SIP
//! proxies.
//!
//! The pipeline (see ARCHITECTURE.md):
//! [`syntax`] reads a config into an AST with spans and diagnostics (it knows
//! nothing about modules); later stages check it against module manifests and
//! generate Rust.

pub mod check;
pub mod diag;
pub mod source;
pub mod syntax;

use std::io;
use std::path::Path;

/// Reads the config at `path` (and what it includes) and checks it against the
/// module manifests: the whole of `serc check`. Fails only when the main file
/// cannot be read.
pub fn check_file(path: &Path, opts: &syntax::ParseOptions) -> io::Result<syntax::Parse> {
    let mut parse = syntax::parse_file(path, opts)?;
    check_parse(&mut parse);
    Ok(parse)
}

/// Adds the checker's diagnostics to a parse.
pub fn check_parse(parse: &mut syntax::Parse) {
    let syntax_ok = !parse.has_errors();
    let mut diags = check::check(&parse.config, &parse.sources, syntax_ok);
    parse.diagnostics.append(&mut diags);
    diag::sort(&mut parse.diagnostics);
}
