//! Data-driven tests of the checker: every case is a file under
//! `tests/data/check/` (at the workspace root), its expected output an insta
//! snapshot in `tests/snapshots/`.
//!
//! - `ok/*.cfg` must check without an error; the snapshot is every warning and
//!   note, rendered as the terminal shows them (no colour).
//! - `err/*.cfg` name the diagnostic kinds they are about in a header line
//!   `# expect: kind[, kind…]`; each must be reported. The snapshot is every
//!   diagnostic.
//!
//! A case may choose its dialect with a line `# dialect: ID`.
//! To add a case, add a file, run `cargo insta test -p serc --test check`, then
//! review the new snapshot.

use std::path::Path;

use serc::diag::{render, Severity};
use serc::syntax::{parse_source, FsLoader, Parse, ParseOptions};

#[test]
fn ok() {
    let mut failures = Vec::new();
    insta::glob!("../../tests/data/check/ok", "*.cfg", |path| {
        let (name, _, parse) = read(path);
        let errors = render_all(&parse, |s| s == Severity::Error);
        if !errors.is_empty() {
            eprintln!("{name} should check without errors, got:\n{errors}");
            failures.push(name);
        }
        insta::assert_snapshot!(render_all(&parse, |_| true));
    });
    assert!(failures.is_empty(), "cases that failed (see above): {failures:?}");
}

#[test]
fn err() {
    let mut failures = Vec::new();
    insta::glob!("../../tests/data/check/err", "*.cfg", |path| {
        let (name, expected, parse) = read(path);
        assert!(!expected.is_empty(), "{name}: an err case names the kinds it expects (`# expect: …`)");
        for kind in &expected {
            if !parse.diagnostics.iter().any(|d| d.kind.as_str() == kind && d.severity >= Severity::Warning) {
                eprintln!("{name}: expected a `{kind}` diagnostic, got:\n{}", render_all(&parse, |_| true));
                failures.push(format!("{name}: {kind}"));
            }
        }
        insta::assert_snapshot!(render_all(&parse, |_| true));
    });
    assert!(failures.is_empty(), "cases that failed (see above): {failures:?}");
}

/// Reads and checks the case at `path`; returns its relative name and the kinds
/// its header expects.
fn read(path: &Path) -> (String, Vec<String>, Parse) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rel = match path.strip_prefix(root.parent().expect("the workspace")) {
        Ok(p) => format!("../{}", p.display()),
        Err(_) => path.display().to_string(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
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

fn render_all(parse: &Parse, keep: impl Fn(Severity) -> bool) -> String {
    parse
        .diagnostics
        .iter()
        .filter(|d| keep(d.severity))
        .map(|d| render::plain(d, &parse.sources))
        .collect::<Vec<_>>()
        .join("\n")
}
