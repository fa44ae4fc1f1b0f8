//! Data-driven tests of the front end: every case is a file under
//! `tests/data/parse/` (at the workspace root), its expected output an insta
//! snapshot in `tests/snapshots/`.
//!
//! - `ok/*.cfg` must read without an error: the snapshot is the AST dump, then
//!   every warning and note rendered as the terminal shows them (no colour).
//! - `err/*.cfg` must give at least one error: the snapshot is every
//!   diagnostic rendered the same way.
//! - `ok/include/CASE/main.cfg` and `err/include/CASE/main.cfg` are cases that
//!   include other files of their directory (read from disk).
//!
//! A case chooses its dialect with a first line `# dialect: ID` (an id of
//! `serc::syntax::Dialect`, e.g. `kamailio`, `openser-1.3`, `ser-0.9`);
//! without one the dialect is detected, as the command line does.
//!
//! Files are read through `FsLoader` under a path relative to the crate
//! directory (where cargo runs tests), so the names in the snapshots, included
//! files' too, are the same on every machine: `../tests/data/parse/ok/x.cfg`.
//!
//! To add a case, add a file and run `cargo insta test -p serc --test parse`,
//! then review the new snapshot with `cargo insta review`.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serc::diag::render;
use serc::diag::Severity;
use serc::syntax::{dump, parse_source, Dialect, FsLoader, Parse, ParseOptions};

/// The cases' directory as the tests name it (relative to the crate directory).
const DATA: &str = "../tests/data/parse";

/// `glob!` counts failed snapshots on one process-wide stack: two globs running
/// at once in two test threads would count each other's failures.
static GLOB: Mutex<()> = Mutex::new(());

fn one_glob_at_a_time() -> MutexGuard<'static, ()> {
    GLOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn ok() {
    let _glob = one_glob_at_a_time();
    let mut failures = Vec::new();
    insta::glob!("../../tests/data/parse/ok", "{*.cfg,include/*/main.cfg}", |path| {
        let (name, parse) = read(path);
        let errors = render_all(&parse, |s| s == Severity::Error);
        if !errors.is_empty() {
            // Printed now too: `glob!` panics first when a snapshot differs.
            eprintln!("{name} should read without errors, got:\n{errors}");
            failures.push(name);
        }
        let mut out = dump::dump(&parse.config, &parse.sources);
        let rest = render_all(&parse, |_| true);
        if !rest.is_empty() {
            out.push_str("\n--- diagnostics ---\n");
            out.push_str(&rest);
        }
        insta::assert_snapshot!(out);
    });
    assert!(failures.is_empty(), "cases that failed (see above): {failures:?}");
}

#[test]
fn err() {
    let _glob = one_glob_at_a_time();
    let mut failures = Vec::new();
    insta::glob!("../../tests/data/parse/err", "{*.cfg,include/*/main.cfg}", |path| {
        let (name, parse) = read(path);
        let all = render_all(&parse, |_| true);
        if !parse.has_errors() {
            eprintln!("{name} should give an error, got:\n{all}");
            failures.push(name);
        }
        insta::assert_snapshot!(all);
    });
    assert!(failures.is_empty(), "cases that failed (see above): {failures:?}");
}

/// Reads the case at `path` (absolute, from `glob!`) from disk under its
/// relative name, with the dialect its header names.
fn read(path: &Path) -> (String, Parse) {
    let rel = relative_name(path);
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let opts = ParseOptions { dialect: header_dialect(&text, &rel), ..ParseOptions::default() };
    let parse = parse_source(&rel, Path::new(&rel), &text, &opts, &FsLoader);
    (rel, parse)
}

/// `path` relative to the crate directory, which is the working directory of
/// cargo's tests: `../tests/data/parse/ok/x.cfg`.
fn relative_name(path: &Path) -> String {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA);
    let data = data.canonicalize().unwrap_or(data);
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cwd = std::env::current_dir().expect("a working directory");
    assert!(
        same_dir(&cwd, &manifest),
        "run the tests from the crate directory ({}), as cargo does; the working directory is {}",
        manifest.display(),
        cwd.display()
    );
    let inner =
        path.strip_prefix(&data).unwrap_or_else(|_| panic!("{} is not under {}", path.display(), data.display()));
    // Always `/`. (Included files are named by the preprocessor, which joins
    // paths with the platform's separator: their names would differ on Windows.)
    let inner: Vec<String> = inner.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    format!("{DATA}/{}", inner.join("/"))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The dialect named by a first line `# dialect: ID`, if there is one.
fn header_dialect(text: &str, name: &str) -> Option<Dialect> {
    let first = text.lines().next()?;
    let id = first.strip_prefix('#')?.trim().strip_prefix("dialect:")?.trim();
    Some(id.parse().unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// The diagnostics whose severity `keep` accepts, each rendered as on a
/// terminal without colour and followed by a blank line.
fn render_all(parse: &Parse, keep: impl Fn(Severity) -> bool) -> String {
    let mut out = String::new();
    for d in parse.diagnostics.iter().filter(|d| keep(d.severity)) {
        let _ = writeln!(out, "{}\n", render::plain(d, &parse.sources));
    }
    out
}
