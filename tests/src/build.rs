//! Building proxies: the `serc` CLI (built once per test process with the
//! workspace's cargo), then `serc build CFG -o BIN --profile dev`.
//!
//! Builds are serialized: within a process by a mutex, across processes (test
//! binaries, or several `cargo test` run at once in the same tree) by an flock
//! on `<target>/serc-e2e/build.lock`. The runtime is compiled once into
//! `SERC_CACHE_DIR=<target>/serc-cache`, shared by every run.

use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::workspace_root;

/// The cargo that runs the tests (`CARGO` in the environment of `cargo test`),
/// else the one that built this crate.
fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let output = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}): {cmd:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    output
}

/// The workspace's target directory (`cargo metadata`: honours `CARGO_TARGET_DIR`
/// and `.cargo/config.toml`).
pub fn target_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = run(cargo().args(["metadata", "--format-version", "1", "--no-deps"]), "cargo metadata");
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
        PathBuf::from(meta["target_directory"].as_str().expect("cargo metadata has target_directory"))
    })
}

/// The `serc` CLI, built once per process (`cargo build -p serc --bin serc`); its
/// path as cargo reports it.
pub fn serc_binary() -> &'static Path {
    static SERC: OnceLock<PathBuf> = OnceLock::new();
    SERC.get_or_init(|| {
        let started = Instant::now();
        let out = run(
            cargo().args(["build", "-p", "serc", "--bin", "serc", "--message-format", "json-render-diagnostics"]),
            "building the serc CLI",
        );
        let exe = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "serc")
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the serc executable");
        eprintln!("serc-e2e: serc CLI ready in {:.1?}: {}", started.elapsed(), exe.display());
        exe
    })
}

/// An exclusive flock on a file, released on drop.
struct FileLock(File);

impl FileLock {
    fn acquire(path: &Path) -> FileLock {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open the lock file {}: {e}", path.display()));
        // SAFETY: flock(2) on a descriptor we own; no memory is touched.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}: {}", path.display(), std::io::Error::last_os_error());
        FileLock(file)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: as above. Closing the file would release it too.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Builds the proxy for `cfg` (`serc build CFG -o BIN --profile dev`) and returns
/// the binary's path, `<target>/serc-e2e/bin/<cfg stem>-<path digest>`. Each config is built
/// once per test process; panics with serc's whole output when the build fails.
///
/// The binary is written beside its final path and renamed into place, so a
/// proxy another test process is running from the old file keeps running.
pub fn build_proxy(cfg: &Path) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<PathBuf, PathBuf>>> = Mutex::new(None);
    let cfg = cfg.canonicalize().unwrap_or_else(|e| panic!("config {}: {e}", cfg.display()));
    // Holding the mutex through the build serializes this process's builds.
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(bin) = built.get(&cfg) {
        return bin.clone();
    }
    let serc = serc_binary();
    let dir = target_dir().join("serc-e2e");
    let bin_dir = dir.join("bin");
    fs::create_dir_all(&bin_dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", bin_dir.display()));
    // The stem for the reader, a digest of the path so configs of the same name
    // in different directories do not share a binary.
    let stem = cfg.file_stem().expect("a config file name").to_string_lossy();
    let mut digest = DefaultHasher::new();
    cfg.hash(&mut digest);
    let name = format!("{stem}-{:08x}", digest.finish() as u32);
    let bin = bin_dir.join(&name);
    let partial = bin_dir.join(format!("{name}.partial"));

    let _lock = FileLock::acquire(&dir.join("build.lock"));
    let started = Instant::now();
    let _ = fs::remove_file(&partial);
    let mut cmd = Command::new(serc);
    cmd.arg("build")
        .arg(&cfg)
        .arg("-o")
        .arg(&partial)
        .args(["--profile", "dev"])
        .env("SERC_CACHE_DIR", target_dir().join("serc-cache"))
        .current_dir(workspace_root());
    let out = run(&mut cmd, &format!("serc build {}", cfg.display()));
    assert!(
        partial.is_file(),
        "serc build {} succeeded but wrote no {}\n--- stderr ---\n{}",
        cfg.display(),
        partial.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::rename(&partial, &bin).unwrap_or_else(|e| panic!("rename {} → {}: {e}", partial.display(), bin.display()));
    eprintln!("serc-e2e: built {} in {:.1?}: {}", cfg.display(), started.elapsed(), bin.display());
    built.insert(cfg, bin.clone());
    bin
}
