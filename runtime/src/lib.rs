//! serc-runtime: the SIP core (parser, transports, transactions, modules) that
//! every proxy compiled by serc links against.
//!
//! Layers (see ARCHITECTURE.md): [`sip`] (messages, sans-IO), [`proxy`]
//! (stateless proxying, sans-IO), [`script`] (the context routes run on),
//! [`modules`] (the functions scripts call), [`app`] (the pipeline around the
//! routes), [`transport`] (tokio sockets).

pub mod app;
pub mod db;
pub mod launch;
pub mod log;
pub mod mi;
pub mod modules;
pub mod proxy;
pub mod resolve;
pub mod script;
pub mod sip;
pub mod tm;
pub mod transport;

/// The module manifests (functions and parameters of every module), shared with
/// the compiler: the one source of truth for the script-visible surface.
pub use serc_manifest as manifest;
