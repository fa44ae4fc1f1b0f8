//! `include_cfg!`: compiles an `openser.cfg` into the user's crate.
//!
//! ```text
//! let proxy = serc_macros::include_cfg!(
//!     "openser.cfg",                     // relative to the crate's Cargo.toml
//!     dialect = "kamailio",              // optional: as `serc check --dialect`
//!     functions = [crate::fraud::check(Str, Int)], // optional: Rust functions the cfg may call
//! );
//! // `proxy` is a `serc_runtime::launch::Launch<_>`: configure it and start it.
//! ```
//!
//! A thin shell over the `serc` library: this crate reads the macro's input,
//! hands the config to `serc` (front end, checker, code generator) and wraps
//! what comes back; everything about the config itself is the library's.

use proc_macro::TokenStream;

mod expand;
mod input;

/// Compiles a routing script into the calling crate; the value is the
/// `serc_runtime::launch::Launch` of the generated script.
///
/// `include_cfg!("PATH" [, dialect = "DIALECT"] [, functions = [PATH(KIND, ...), ...]])`
///
/// - `PATH` is relative to the crate's directory (`CARGO_MANIFEST_DIR`); the
///   crate is rebuilt when the config or a file it includes changes.
/// - `dialect`: one of `openser-1.3` (the default unless the file says otherwise),
///   `ser-0.9`, `opensips`, `kamailio`.
/// - `functions`: Rust functions the config may call by their last path segment,
///   checked like module functions. Each names its argument kinds (the variants
///   of `serc_manifest::ArgKind`: `Str`, `Format`, `Int`, …) and must be a
///   `fn(&mut serc_runtime::script::Ctx, <ArgKind::rust_type>...) -> i32`.
///
/// Errors in the config (syntax, checks, what the runtime does not implement)
/// become one compile error at the path, each with its `--> file:LINE:COL` and
/// the lines it is about.
#[proc_macro]
pub fn include_cfg(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as input::Input);
    expand::expand(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}
