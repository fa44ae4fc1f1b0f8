//! serc-runtime: the SIP core (parser, transports, transactions, modules) that
//! every proxy compiled by serc links against.
//!
//! Built from issue 4 on (see ARCHITECTURE.md): so far the sans-IO SIP message
//! parser ([`sip`]).

pub mod modules;
pub mod proxy;
pub mod script;
pub mod sip;
pub mod transport;

/// The module manifests (functions and parameters of every module), shared with
/// the compiler: the one source of truth for the script-visible surface.
pub use serc_manifest as manifest;
