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

mod common;

use common::read_case;
use serc::diag::{render, Severity};
use serc::syntax::Parse;

#[test]
fn ok() {
    let mut failures = Vec::new();
    insta::glob!("../../tests/data/check/ok", "*.cfg", |path| {
        let (name, _, parse) = read_case(path);
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
        let (name, expected, parse) = read_case(path);
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

fn render_all(parse: &Parse, keep: impl Fn(Severity) -> bool) -> String {
    parse
        .diagnostics
        .iter()
        .filter(|d| keep(d.severity))
        .map(|d| render::plain(d, &parse.sources))
        .collect::<Vec<_>>()
        .join("\n")
}
