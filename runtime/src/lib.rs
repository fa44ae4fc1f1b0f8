//! serc-runtime: the SIP core (parser, transports, transactions, modules) that
//! every proxy compiled by serc links against.
//!
//! Nothing is implemented yet: the runtime is built from issue 4 on (see
//! ARCHITECTURE.md). The crate exists so the workspace has its final shape.

/// The module manifests (functions and parameters of every module), shared with
/// the compiler: the one source of truth for the script-visible surface.
pub use serc_manifest as manifest;
