//! The parser must accept any text: it may report diagnostics, never panic, and
//! every span it reports must point into a file it read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serc::syntax::{parse_str, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parse = parse_str("fuzz.cfg", &text, &ParseOptions::default());
    for diag in &parse.diagnostics {
        let secondary = diag.secondary.iter().map(|label| label.span);
        for span in diag.span.into_iter().chain(secondary) {
            // What rendering a diagnostic does: find the file, then line and column.
            let file = parse.sources.get(span.file);
            assert!(span.start <= span.end, "inverted span {span:?}");
            assert!(span.end as usize <= file.text.len(), "span {span:?} past the end");
            let (line, col) = file.line_col(span.start);
            let (end_line, _) = file.line_col(span.end);
            assert!(line >= 1 && col >= 1 && line <= end_line && end_line <= file.line_count());
        }
    }
});
