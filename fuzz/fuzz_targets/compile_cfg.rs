//! The whole compiler on any text: the front end, the checker, and the
//! generator for what the checker accepts.
//!
//! - nothing panics;
//! - every diagnostic's spans point into the file read (as `parse_cfg`
//!   asserts of the front end's alone);
//! - a config without errors generates, or fails only with `unsupported`
//!   (a module function or parameter serc does not implement), never with a
//!   generator error of another kind: whatever the checker accepts the
//!   generator can build;
//! - the generated code parses as a Rust file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serc::codegen::{self, Options};
use serc::syntax::{parse_str, ParseOptions};

#[path = "../common/spans.rs"]
mod spans;
use spans::check_spans;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parse = parse_str("fuzz.cfg", &text, &ParseOptions::default());
    serc::check_parse(&mut parse);
    for diag in &parse.diagnostics {
        check_spans(&parse, diag);
    }
    if parse.has_errors() {
        return;
    }
    match codegen::generate(&parse, &Options { cfg_hash: "0".into(), ..Options::default() }) {
        Ok(out) => {
            if let Err(e) = syn::parse2::<syn::File>(out.tokens.clone()) {
                panic!("the generated code does not parse: {e}\n{text}");
            }
        }
        Err(errors) => {
            for diag in &errors {
                check_spans(&parse, diag);
                assert_eq!(
                    diag.kind.as_str(),
                    "unsupported",
                    "the checker accepted it, the generator did not: {diag:?}\n{text}"
                );
            }
        }
    }
});
