//! serc: compiles OpenSER routing scripts (`openser.cfg`) into native Rust SIP
//! proxies.
//!
//! The pipeline (see ARCHITECTURE.md):
//! [`syntax`] reads a config into an AST with spans and diagnostics (it knows
//! nothing about modules); later stages check it against module manifests and
//! generate Rust.

pub mod build;
pub mod check;
pub mod codegen;
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

/// A config read, checked and turned into Rust: the whole of `serc build`'s
/// front half and of `include_cfg!`.
pub struct Compiled {
    /// The config as read, with every diagnostic (warnings included).
    pub parse: syntax::Parse,
    /// The generated items, or the errors that prevent them (the parse's
    /// errors, and what the runtime does not implement).
    pub output: Result<codegen::Output, Vec<diag::Diagnostic>>,
}

/// Reads, checks and generates the config at `path`. Fails only when the main
/// file cannot be read.
pub fn compile_file(path: &Path, opts: &syntax::ParseOptions, gen: &codegen::Options) -> io::Result<Compiled> {
    let mut parse = syntax::parse_file(path, opts)?;
    check_parse_with(&mut parse, &gen.user_functions);
    let output = codegen::generate(&parse, gen);
    Ok(Compiled { parse, output })
}

/// Adds the checker's diagnostics to a parse.
pub fn check_parse(parse: &mut syntax::Parse) {
    check_parse_with(parse, &[]);
}

/// [`check_parse`] with the user's Rust functions callable (`include_cfg!`).
pub fn check_parse_with(parse: &mut syntax::Parse, user_functions: &[codegen::UserFunction]) {
    let syntax_ok = !parse.has_errors();
    let extra: Vec<&'static serc_manifest::Module> = codegen::user_module(user_functions).into_iter().collect();
    let mut diags = on_big_stack(|| check::check_with(&parse.config, &parse.sources, syntax_ok, &extra));
    parse.diagnostics.append(&mut diags);
    diag::sort(&mut parse.diagnostics);
}

/// Stack for the passes that walk the tree recursively: the tree is bounded
/// (`syntax::MAX_DEPTH`), but callers' threads may have small stacks (2 MiB for
/// test threads, less in some embedders). The memory is reserved, not used.
const STACK_SIZE: usize = 256 << 20;

/// Runs `f` on a thread with a large stack (inline if no thread can be made).
pub(crate) fn on_big_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let slot = std::sync::Mutex::new(Some(f));
    let take = || slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let spawned = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("serc-front-end".into())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, || take().map(|f| f()))
            .ok()?;
        Some(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    match spawned.flatten() {
        Some(r) => r,
        None => take().map(|f| f()).expect("the closure runs exactly once"),
    }
}
