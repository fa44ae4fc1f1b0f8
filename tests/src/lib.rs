//! The end-to-end harness: configs compiled by `serc build`, run as processes,
//! and driven over real sockets on 127.0.0.1.
//!
//! - [`build_proxy`] — `serc build CFG -o BIN --profile dev`, once per config and
//!   test process, serialized across processes (the runtime compiles once into a
//!   cache shared by every run: `<target>/serc-cache`);
//! - [`Proxy`] — a built proxy started on ephemeral UDP and TCP ports, learned from
//!   the `listening on …` lines it prints; SIGTERM on drop;
//! - [`Ua`], [`Uas`] — a small SIP user agent client over UDP or TCP, and a UAS
//!   that answers what it receives on a thread (180 + 200 to INVITE, 200 to BYE,
//!   OPTIONS and CANCEL, ACK swallowed), recording every request;
//! - [`sipp`] — SIPp scenarios (`sipp/*.xml`) run as UAC and UAS.
//!
//! Tests that need a peer program (SIPp) call [`find_peer`]: without it they
//! print a `SKIPPED` notice and pass, unless `SERC_REQUIRE_PEERS` is set (by
//! `cargo xtask test`), where they fail.

mod build;
mod net;
mod proxy;
mod sip;
pub mod sipp;
mod ua;
mod uas;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use build::{build_proxy, serc_binary, target_dir};
pub use net::{free_udp_port, read_stream_message};
pub use proxy::{parse_listening_line, Proxy};
pub use sip::{Dialog, Headers, Request, Response, Sip};
pub use ua::{Transport, Ua, SDP_OFFER};
pub use uas::{InviteAnswer, Uas, SDP_ANSWER};

/// How long a reply or a relayed request may take on 127.0.0.1.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How long to listen before concluding that nothing comes (a dropped request).
pub const QUIET: Duration = Duration::from_millis(500);

/// The workspace's root directory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace")
}

/// A config of `tests/cfg/`.
pub fn cfg(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cfg").join(name)
}

/// The OpenSER 1.3 default config of the corpus (`../shared/corpus/cfg`),
/// written where builds can read it, with the two lines OpenSER 1.3 itself
/// refuses taken out: the `exit; }` left outside any route when `route[2]`
/// was commented out. Everything else is as distributed — `mi_fifo` and its
/// `fifo_name` `/tmp/openser_fifo` included (start it with `--mi-fifo` to
/// put the FIFO elsewhere). Same text each run, so `serc build`'s cache holds.
pub fn openser13_default_cfg() -> PathBuf {
    let corpus = workspace_root().join("../shared/corpus/cfg/opensips__openser1.3__default.cfg");
    let text = std::fs::read_to_string(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e} (the tests read ../shared beside the checkout)", corpus.display()));
    let orphan = "\n\texit;\n}\n\n\nbranch_route[2]";
    assert_eq!(text.matches(orphan).count(), 1, "the orphan `exit; }}` is where it was");
    let cfg = text.replace(orphan, "\n\n\nbranch_route[2]");
    let dir = target_dir().join("serc-e2e").join("default-config");
    std::fs::create_dir_all(&dir).expect("a directory in target/");
    let path = dir.join("openser-1.3-default.cfg");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(cfg.as_str()) {
        std::fs::write(&path, cfg).expect("the config written");
    }
    path
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("serc-e2e-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A SIPp scenario of `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp").join(name)
}

/// Whether a test must fail rather than skip when a peer program is missing
/// (`cargo xtask test` sets `SERC_REQUIRE_PEERS=1`).
pub fn peers_required() -> bool {
    std::env::var_os("SERC_REQUIRE_PEERS").is_some()
}

/// A peer program the tests run (`sipp`), looked for on PATH and in the sbin
/// directories. When it is missing: `None` after a `SKIPPED` notice on stderr,
/// or a panic when [`peers_required`] — the convention of
/// `runtime/tests/kamailio.rs`.
pub fn find_peer(binary: &str, debian_package: &str) -> Option<PathBuf> {
    let found = find_binary(binary);
    if found.is_none() {
        assert!(
            !peers_required(),
            "`{binary}` is not installed (SERC_REQUIRE_PEERS is set; `cargo xtask test` installs the Debian package \
             {debian_package})"
        );
        eprintln!(
            "SKIPPED: `{binary}` is not installed (`cargo xtask test` installs the Debian package {debian_package})"
        );
    }
    found
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Sends SIGTERM to a process we started.
fn sigterm(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory effects; the pid is that of a child we have
    // not reaped yet, so it cannot name another process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Waits for a child until `deadline`; `None` if it is still running.
fn wait_until(child: &mut std::process::Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Stops a child: SIGTERM, up to `grace` to exit, then SIGKILL. Returns how it
/// ended and whether SIGTERM was enough.
fn terminate(child: &mut std::process::Child, grace: Duration) -> (Option<std::process::ExitStatus>, bool) {
    if let Ok(Some(status)) = child.try_wait() {
        return (Some(status), true);
    }
    sigterm(child.id());
    if let Some(status) = wait_until(child, grace) {
        return (Some(status), true);
    }
    let _ = child.kill();
    (child.wait().ok(), false)
}

/// The last `max` bytes of a log, cut at a line start, for panic messages.
fn tail(log: &str, max: usize) -> &str {
    if log.len() <= max {
        return log;
    }
    let mut start = log.len() - max;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    match log[start..].find('\n') {
        Some(nl) => &log[start + nl + 1..],
        None => &log[start..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_cuts_at_a_line_start() {
        assert_eq!(tail("abc\ndef\nghi\n", 100), "abc\ndef\nghi\n");
        assert_eq!(tail("abc\ndef\nghi\n", 6), "ghi\n");
        assert_eq!(tail("é\néé\n", 4), "");
    }

    #[test]
    fn paths_point_into_the_crate() {
        assert!(cfg("stateless.cfg").is_file());
        assert!(workspace_root().join("Cargo.toml").is_file());
    }
}
