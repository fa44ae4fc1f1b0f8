//! Data-driven tests of the code generator: every case is a file under
//! `tests/data/codegen/` (at the workspace root), its expected output an insta
//! snapshot in `tests/snapshots/`.
//!
//! - `ok/*.cfg` must generate; the snapshot is the generated Rust, formatted as
//!   `serc emit` prints it (line markers on), and it must parse as a Rust file.
//! - `err/*.cfg` name the diagnostic kinds they are about in a header line
//!   `# expect: kind[, kind…]`; generation must fail with each. The snapshot is
//!   every error, rendered.
//!
//! A case may choose its dialect with a line `# dialect: ID`.
//! To add a case, add a file, run `cargo insta test -p serc --test codegen`,
//! then review the new snapshot (the whole generated code: it is what proxies run).

mod common;

use std::path::Path;

use common::read_case;
use serc::codegen::{self, Options};
use serc::diag::render;
use serc::syntax::{parse_source, FsLoader, ParseOptions};

#[test]
fn ok() {
    let mut failures = Vec::new();
    insta::glob!("../../tests/data/codegen/ok", "*.cfg", |path| {
        let (name, _, parse) = read_case(path);
        let opts = Options { line_markers: true, cfg_hash: "0".into(), ..Options::default() };
        match codegen::generate(&parse, &opts) {
            Ok(out) => {
                let text = codegen::pretty(&out.tokens);
                if let Err(e) = syn::parse_file(&text) {
                    failures.push(format!("{name}: the generated code does not parse: {e}"));
                }
                insta::assert_snapshot!(text);
            }
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(|d| render::plain(d, &parse.sources)).collect();
                failures.push(format!("{name}: generation failed:\n{}", text.join("\n")));
            }
        }
    });
    assert!(failures.is_empty(), "cases that failed:\n{}", failures.join("\n"));
}

#[test]
fn err() {
    let mut failures = Vec::new();
    insta::glob!("../../tests/data/codegen/err", "*.cfg", |path| {
        let (name, expected, parse) = read_case(path);
        assert!(!expected.is_empty(), "{name}: an err case names the kinds it expects (`# expect: …`)");
        match codegen::generate(&parse, &Options::default()) {
            Ok(_) => failures.push(format!("{name}: generated, but should have failed")),
            Err(errors) => {
                for kind in &expected {
                    if !errors.iter().any(|d| d.kind.as_str() == kind) {
                        failures.push(format!("{name}: no `{kind}` error"));
                    }
                }
                let text: Vec<String> = errors.iter().map(|d| render::plain(d, &parse.sources)).collect();
                insta::assert_snapshot!(text.join("\n"));
            }
        }
    });
    assert!(failures.is_empty(), "cases that failed:\n{}", failures.join("\n"));
}

/// The `*.cfg` files of `dir`, sorted.
fn cfg_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
        .collect();
    names.sort();
    names
}

/// The configs of the corpus (`../shared/corpus/cfg`): those the runtime
/// supports generate (their Rust is snapshotted, and parses); the others fail
/// only with `unsupported` errors — never a generator error of another kind —
/// but for the configs OpenSER itself refuses (see tests/check_corpus.rs).
#[test]
fn corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cfg");
    assert!(dir.is_dir(), "the corpus is missing: {}", dir.display());
    let names = cfg_files(&dir);
    let mut generated = Vec::new();
    let mut failures = Vec::new();
    for path in &names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).expect("a corpus file");
        let mut parse = parse_source(&name, Path::new(&name), &text, &ParseOptions::default(), &FsLoader);
        serc::check_parse(&mut parse);
        if parse.has_errors() {
            continue; // refused by the checker: tests/check_corpus.rs says which and why
        }
        match codegen::generate(&parse, &Options { cfg_hash: "0".into(), ..Options::default() }) {
            Ok(out) => {
                let text = codegen::pretty(&out.tokens);
                if let Err(e) = syn::parse_file(&text) {
                    failures.push(format!("{name}: the generated code does not parse: {e}"));
                }
                insta::assert_snapshot!(format!("corpus__{name}"), text);
                generated.push(name);
            }
            Err(errors) => {
                for d in errors.iter().filter(|d| d.kind.as_str() != "unsupported") {
                    failures.push(format!("{name}: {}", render::plain(d, &parse.sources)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The configs the runtime builds today; a change here is a capability won or lost.
    assert_eq!(
        generated,
        [
            "kamailio__ser0.9__default.cfg",
            "opensips__openser0.9__default.cfg",
            "opensips__openser0.9__profile.cfg",
            "opensips__openser1.0__default.cfg",
            "opensips__openser1.2__default.cfg",
            "opensips__openser1.2__ex-flag_reply.cfg",
            "opensips__openser1.2__ex-logging.cfg",
            "opensips__openser1.2__ex-redirect.cfg",
            "opensips__openser1.2__ex-replicate.cfg",
            "opensips__openser1.3__dbtext.cfg",
            "opensips__ops1.4__default.cfg",
        ]
    );
}

/// The configs the proxy fuzz target compiles with `include_cfg!`
/// (fuzz/cfg/*.cfg, outside the workspace: nothing else builds them) check
/// without an error or a warning and generate.
#[test]
fn fuzz_configs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/cfg");
    let names = cfg_files(&dir);
    assert!(!names.is_empty(), "no config in {}", dir.display());
    for path in &names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).expect("a fuzz config");
        let mut parse = parse_source(&name, path, &text, &ParseOptions::default(), &FsLoader);
        serc::check_parse(&mut parse);
        let diags: Vec<String> = parse.diagnostics.iter().map(|d| render::plain(d, &parse.sources)).collect();
        assert!(diags.is_empty(), "{name}:\n{}", diags.join("\n"));
        let generated = codegen::generate(&parse, &Options { cfg_hash: "0".into(), ..Options::default() });
        assert!(generated.is_ok(), "{name} does not generate");
    }
}
