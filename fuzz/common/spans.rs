//! What rendering a diagnostic does, checked: each span's file is found,
//! the span is inside it, and its line and column exist (shared by the
//! fuzz targets of the compiler).

use serc::diag::Diagnostic;
use serc::syntax::Parse;

/// Asserts that `diag`'s spans are inside the file they name.
pub fn check_spans(parse: &Parse, diag: &Diagnostic) {
    let secondary = diag.secondary.iter().map(|label| label.span);
    for span in diag.span.into_iter().chain(secondary) {
        let file = parse.sources.get(span.file);
        assert!(span.start <= span.end, "inverted span {span:?}: {diag:?}");
        assert!(span.end as usize <= file.text.len(), "span {span:?} past the end: {diag:?}");
        let (line, col) = file.line_col(span.start);
        let (end_line, _) = file.line_col(span.end);
        assert!(line >= 1 && col >= 1 && line <= end_line && end_line <= file.line_count());
    }
}
