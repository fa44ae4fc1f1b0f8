//! The parser must accept any text: it may report diagnostics, never panic, and
//! every span it reports must point into a file it read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serc::syntax::{parse_str, ParseOptions};

#[path = "../common/spans.rs"]
mod spans;
use spans::check_spans;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parse = parse_str("fuzz.cfg", &text, &ParseOptions::default());
    for diag in &parse.diagnostics {
        check_spans(&parse, diag);
    }
});
