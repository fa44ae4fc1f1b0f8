//! Helpers the compiler's integration tests share (each test file that needs
//! them has `mod common;`; not every file uses every helper).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serc::syntax::{parse_source, FsLoader, Parse, ParseOptions};

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("serc-test-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn with(self, name: &str, text: &str) -> TempDir {
        fs::write(self.0.join(name), text).expect("write a test config");
        self
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// How a run of the `serc` binary ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `serc ARGS…` in `dir` with `envs`, no colour settings inherited.
pub fn serc(dir: &Path, envs: &[(&str, &Path)], args: &[&str]) -> Run {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_serc"))
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("run serc");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Reads and checks a data-driven case at `path` (`tests/data/…`); returns its
/// name relative to the compiler crate and the kinds its header expects
/// (`# expect: kind, …`); `# dialect: ID` chooses its dialect.
pub fn read_case(path: &Path) -> (String, Vec<String>, Parse) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rel = match path.strip_prefix(root.parent().expect("the workspace")) {
        Ok(p) => format!("../{}", p.display()),
        Err(_) => path.display().to_string(),
    };
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut opts = ParseOptions::default();
    let mut expected = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(d) = line.strip_prefix("# dialect:") {
            opts.dialect = Some(d.trim().parse().unwrap_or_else(|e| panic!("{rel}: {e}")));
        }
        if let Some(k) = line.strip_prefix("# expect:") {
            expected.extend(k.split(',').map(|k| k.trim().to_string()));
        }
    }
    let mut parse = parse_source(&rel, Path::new(&rel), &text, &opts, &FsLoader);
    serc::check_parse(&mut parse);
    (rel, expected, parse)
}
