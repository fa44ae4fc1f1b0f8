//! An `openser.cfg` compiled into a Rust crate: [`proxy`] is the config's
//! proxy, ready to be configured and started on the caller's tokio runtime.
//! The config calls a Rust function of this crate, [`fraud::fraud_check`].
//!
//! `src/main.rs` runs it as a program; `tests/embed.rs` starts it in-process.

pub mod fraud;

use serc_runtime::app::Script;
use serc_runtime::launch::Launch;

/// The proxy `openser.cfg` describes, not started yet: set where it listens
/// ([`Launch::listen`]), how many workers it runs ([`Launch::workers`]), then
/// [`Launch::start`] it.
///
/// The config is compiled with the crate: an error in it is a compile error
/// here, pointing at its line in `openser.cfg`, and changing it rebuilds the
/// crate.
pub fn proxy() -> Launch<impl Script> {
    serc_macros::include_cfg!("openser.cfg", functions = [crate::fraud::fraud_check(Format, Int)])
}
