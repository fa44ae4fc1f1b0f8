//! serc: compiles OpenSER routing scripts (`openser.cfg`) into native Rust SIP
//! proxies.
//!
//! The pipeline (see ARCHITECTURE.md):
//! [`syntax`] reads a config into an AST with spans and diagnostics (it knows
//! nothing about modules); later stages check it against module manifests and
//! generate Rust.

pub mod diag;
pub mod source;
pub mod syntax;
