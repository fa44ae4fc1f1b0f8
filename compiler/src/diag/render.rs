//! Renders [`Diagnostic`]s for the places they end up: a terminal ([`human`]),
//! a `compile_error!` message ([`plain`]), JSON Lines for tools ([`json_line`]) and
//! GitHub Actions annotations ([`github`]).
//!
//! Every renderer resolves a span the same way (clamped to its file, see `Located`),
//! so the line and column in `--> file:LINE:COL` are the ones in the JSON and in the
//! annotation.
//! Lines are 1-based; columns are 1-based and count characters (a tab or `é` is one
//! column), as rustc's do.

use std::ops::Range;

use annotate_snippets::{Annotation, AnnotationKind, Group, Level, Renderer, Snippet};
use serde_json::Value;

use crate::diag::{Diagnostic, Severity};
use crate::source::{FileId, SourceFile, SourceMap, Span};

/// Renders diagnostics as rustc does: `error[kind]: message`, `--> file:line:col`,
/// the source lines with the span underlined and labelled, then `= note: …` and
/// `= help: …`. Each diagnostic is followed by a blank line. ANSI colours only when
/// `color` is set.
pub fn human(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let renderer = renderer(color);
    let mut out = String::new();
    for diag in diags {
        out.push_str(&render_one(diag, sources, &renderer));
        out.push_str("\n\n");
    }
    out
}

/// One diagnostic as [`human`] renders it without colour and without the trailing
/// blank line: the text of a `compile_error!`.
pub fn plain(diag: &Diagnostic, sources: &SourceMap) -> String {
    render_one(diag, sources, &renderer(false))
}

/// One JSON object on one line:
///
/// ```json
/// {"file":"openser.cfg","line":3,"column":14,"end_line":3,"end_column":14,
///  "severity":"error","kind":"syntax","message":"…","label":"…","notes":[],"help":[],
///  "secondary":[{"file":…,"line":…,"column":…,"end_line":…,"end_column":…,"message":…}]}
/// ```
///
/// Positions are 1-based; `end_*` is the position of the end of the span (just
/// after its last character). A diagnostic without a span has `null` for `file`
/// and the positions.
pub fn json_line(diag: &Diagnostic, sources: &SourceMap) -> String {
    let loc = diag.span.and_then(|span| Located::new(sources, span));
    let secondary: Vec<String> = diag
        .secondary
        .iter()
        .filter_map(|label| {
            let loc = Located::new(sources, label.span)?;
            Some(position_fields(JsonObject::new(), Some(&loc)).field("message", label.message.as_str()).finish())
        })
        .collect();
    position_fields(JsonObject::new(), loc.as_ref())
        .field("severity", diag.severity.as_str())
        .field("kind", diag.kind.as_str())
        .field("message", diag.message.as_str())
        .field("label", diag.label.as_deref())
        .field("notes", diag.notes.as_slice())
        .field("help", diag.help.as_slice())
        .raw("secondary", &format!("[{}]", secondary.join(",")))
        .finish()
}

/// A GitHub Actions workflow command that annotates the span in the pull request:
/// `::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=serc [kind]::message`
/// (`::warning` for warnings, `::notice` for notes). Notes and help follow the
/// message, one per line.
pub fn github(diag: &Diagnostic, sources: &SourceMap) -> String {
    let command = match diag.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    };
    let mut props = Vec::new();
    if let Some(loc) = diag.span.and_then(|span| Located::new(sources, span)) {
        let (line, col) = loc.start();
        let (end_line, end_col) = loc.end();
        props.push(format!("file={}", escape_property(&loc.file.name)));
        props.push(format!("line={line},col={col},endLine={end_line},endColumn={end_col}"));
    }
    props.push(format!("title={}", escape_property(&format!("serc [{}]", diag.kind.as_str()))));

    let mut message = diag.message.clone();
    for note in &diag.notes {
        message.push_str("\nnote: ");
        message.push_str(note);
    }
    for help in &diag.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!("::{command} {}::{}", props.join(","), escape_data(&message))
}

/// The closing line after a list of diagnostics, as rustc writes
/// `error: aborting due to 2 previous errors`: `error: found 2 errors and 1 warning`,
/// or `warning: found 1 warning`. `None` when there is neither (notes do not count).
pub fn summary(diags: &[Diagnostic]) -> Option<String> {
    let count = |severity| diags.iter().filter(|d| d.severity == severity).count();
    let errors = count(Severity::Error);
    let warnings = count(Severity::Warning);
    match (errors, warnings) {
        (0, 0) => None,
        (0, w) => Some(format!("warning: found {}", plural(w, "warning"))),
        (e, 0) => Some(format!("error: found {}", plural(e, "error"))),
        (e, w) => Some(format!("error: found {} and {}", plural(e, "error"), plural(w, "warning"))),
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

// ---------------------------------------------------------------------------
// Spans

/// A span resolved against its file, made safe to slice and to show: clamped to the
/// text, widened to character boundaries, and with `start <= end`. A zero-width
/// span at the very end of a file that ends with a newline is moved onto that
/// newline, so it points just after the last line's text (as rustc does for "end
/// of file") instead of at a line that does not exist.
struct Located<'a> {
    file: &'a SourceFile,
    range: Range<usize>,
}

impl<'a> Located<'a> {
    /// `None` when the span names a file that is not in `sources`.
    fn new(sources: &'a SourceMap, span: Span) -> Option<Located<'a>> {
        let file = file(sources, span.file)?;
        let text: &str = &file.text;
        let mut start = floor_char_boundary(text, span.start as usize);
        let mut end = ceil_char_boundary(text, (span.end as usize).max(start));
        if start == end && start == text.len() && text.ends_with('\n') {
            start = text.len() - if text.ends_with("\r\n") { 2 } else { 1 };
            end = start;
        }
        Some(Located { file, range: start..end })
    }

    /// 1-based line and column of the start.
    fn start(&self) -> (usize, usize) {
        self.file.line_col(self.range.start as u32)
    }

    /// 1-based line and column of the end (just after the last character).
    fn end(&self) -> (usize, usize) {
        self.file.line_col(self.range.end as u32)
    }
}

fn file(sources: &SourceMap, id: FileId) -> Option<&SourceFile> {
    sources.files().nth(id.0 as usize).map(|(_, f)| f)
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

// ---------------------------------------------------------------------------
// Human

fn renderer(color: bool) -> Renderer {
    if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    }
}

fn level(severity: Severity) -> Level<'static> {
    match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
        Severity::Note => Level::NOTE,
    }
}

fn render_one(diag: &Diagnostic, sources: &SourceMap, renderer: &Renderer) -> String {
    let title = level(diag.severity).primary_title(diag.message.as_str()).id(diag.kind.as_str());
    let mut group = Group::with_title(title);
    for snippet in snippets(diag, sources) {
        group = group.element(snippet);
    }
    for note in &diag.notes {
        group = group.element(Level::NOTE.message(note.as_str()));
    }
    for help in &diag.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    renderer.render(&[group])
}

/// One marked-up span before it becomes an annotation.
struct Mark<'a> {
    loc: Located<'a>,
    kind: AnnotationKind,
    label: Option<&'a str>,
}

/// One snippet per file the diagnostic points into, the primary span's file first.
/// Each snippet holds only the lines its spans touch (the renderer would otherwise
/// walk the whole file for every diagnostic).
fn snippets<'a>(diag: &'a Diagnostic, sources: &'a SourceMap) -> Vec<Snippet<'a, Annotation<'a>>> {
    let primary = diag.span.and_then(|span| Located::new(sources, span)).map(|loc| Mark {
        loc,
        kind: AnnotationKind::Primary,
        label: diag.label.as_deref(),
    });
    let secondary = diag.secondary.iter().filter_map(|label| {
        let loc = Located::new(sources, label.span)?;
        Some(Mark { loc, kind: AnnotationKind::Context, label: Some(label.message.as_str()) })
    });
    let marks: Vec<Mark<'a>> = primary.into_iter().chain(secondary).collect();

    let mut files: Vec<&'a SourceFile> = Vec::new();
    for mark in &marks {
        if !files.iter().any(|f| std::ptr::eq(*f, mark.loc.file)) {
            files.push(mark.loc.file);
        }
    }
    files
        .into_iter()
        .map(|file| {
            let in_file: Vec<&Mark<'a>> = marks.iter().filter(|m| std::ptr::eq(m.loc.file, file)).collect();
            snippet(file, &in_file)
        })
        .collect()
}

/// The lines of `file` that `marks` (all in `file`, at least one) touch, annotated.
fn snippet<'a>(file: &'a SourceFile, marks: &[&Mark<'a>]) -> Snippet<'a, Annotation<'a>> {
    let text: &'a str = &file.text;
    let lo = marks.iter().map(|m| m.loc.range.start).min().unwrap_or(0);
    let hi = marks.iter().map(|m| m.loc.range.end).max().unwrap_or(0);
    let window = line_start(text, lo)..line_end(text, hi);
    let (first_line, _) = file.line_col(window.start as u32);
    let base = window.start;
    let annotations = marks.iter().map(|m| {
        let range = without_line_end(text, m.loc.range.clone());
        m.kind.span(range.start - base..range.end - base).label(m.label)
    });
    Snippet::source(&text[window]).line_start(first_line).path(file.name.as_str()).annotations(annotations)
}

/// A span that ends with a line's newline is shown as ending on that line, not
/// as running into the next one.
fn without_line_end(text: &str, range: Range<usize>) -> Range<usize> {
    let covered = &text[range.clone()];
    let trimmed = covered.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s));
    match trimmed {
        Some(rest) if !rest.is_empty() => range.start..range.start + rest.len(),
        _ => range,
    }
}

/// The start of the line `at` is on.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The end of the line `at` is on, after its newline (a position on the newline
/// itself belongs to the line).
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

// ---------------------------------------------------------------------------
// JSON and GitHub

/// A JSON object written field by field, so the fields keep a readable order.
struct JsonObject(String);

impl JsonObject {
    fn new() -> JsonObject {
        JsonObject(String::from("{"))
    }

    fn field(self, key: &str, value: impl Into<Value>) -> JsonObject {
        let value: Value = value.into();
        self.raw(key, &value.to_string())
    }

    fn raw(mut self, key: &str, json: &str) -> JsonObject {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&Value::from(key).to_string());
        self.0.push(':');
        self.0.push_str(json);
        self
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn position_fields(obj: JsonObject, loc: Option<&Located<'_>>) -> JsonObject {
    let (file, start, end) = match loc {
        Some(loc) => (Some(loc.file.name.as_str()), Some(loc.start()), Some(loc.end())),
        None => (None, None, None),
    };
    obj.field("file", file)
        .field("line", start.map(|p| p.0))
        .field("column", start.map(|p| p.1))
        .field("end_line", end.map(|p| p.0))
        .field("end_column", end.map(|p| p.1))
}

/// GitHub's escaping for the message of a workflow command.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// GitHub's escaping for a `key=value` property of a workflow command.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use insta::assert_snapshot;

    use super::*;
    use crate::diag::Kind;

    fn sources(files: &[(&str, &str)]) -> SourceMap {
        let mut map = SourceMap::new();
        for (name, text) in files {
            map.add(SourceFile::new(*name, *name, *text));
        }
        map
    }

    fn at(file: u32, start: usize, end: usize) -> Span {
        Span::new(FileId(file), start, end)
    }

    /// The byte range of the first `needle` in `haystack` (test data is ours).
    fn find(haystack: &str, needle: &str) -> Range<usize> {
        let start = haystack.find(needle).expect("needle in test text");
        start..start + needle.len()
    }

    const CFG: &str = "# serc test\nroute {\n\tt_relay()\n}\n";

    fn missing_semicolon() -> Diagnostic {
        let p = find(CFG, "()").end;
        Diagnostic::error(Kind::Syntax, at(0, p, p), "expected `;` after a statement")
            .with_label("expected `;` here")
            .with_note("in OpenSER 1.3 every statement ends with `;`")
            .with_help("add `;` after `t_relay()`")
    }

    #[test]
    fn human_error_with_label_note_and_help() {
        let map = sources(&[("openser.cfg", CFG)]);
        assert_snapshot!(human(&[missing_semicolon()], &map, false), @r#"
            error[syntax]: expected `;` after a statement
             --> openser.cfg:3:11
              |
            3 |     t_relay()
              |              ^ expected `;` here
              |
              = note: in OpenSER 1.3 every statement ends with `;`
              = help: add `;` after `t_relay()`
            "#);
    }

    #[test]
    fn caret_after_tab_and_multibyte() {
        let text = "\tavp_write(\"é日本\", \"$avp(s:x)\") foo;\n";
        let map = sources(&[("a.cfg", text)]);
        let foo = find(text, "foo");
        let diag = Diagnostic::error(Kind::Syntax, at(0, foo.start, foo.end), "unexpected `foo`").with_label("here");
        assert_snapshot!(plain(&diag, &map), @r#"
            error[syntax]: unexpected `foo`
             --> a.cfg:1:32
              |
            1 |     avp_write("é日本", "$avp(s:x)") foo;
              |                                     ^^^ here
            "#);
        assert_eq!(Located::new(&map, at(0, foo.start, foo.end)).map(|l| l.start()), Some((1, 32)));
    }

    #[test]
    fn zero_width_at_end_of_file() {
        let with_newline = "route {\n\texit;\n";
        let without = "route {\n\texit;";
        let map = sources(&[("nl.cfg", with_newline), ("no-nl.cfg", without), ("empty.cfg", "")]);
        let eof = |file: u32, len: usize| {
            Diagnostic::error(Kind::Syntax, at(file, len, len), "expected `}`, found end of file")
                .with_label("the block is not closed")
        };
        assert_snapshot!(plain(&eof(0, with_newline.len()), &map), @r#"
            error[syntax]: expected `}`, found end of file
             --> nl.cfg:2:7
              |
            2 |     exit;
              |          ^ the block is not closed
            "#);
        assert_snapshot!(plain(&eof(1, without.len()), &map), @r#"
            error[syntax]: expected `}`, found end of file
             --> no-nl.cfg:2:7
              |
            2 |     exit;
              |          ^ the block is not closed
            "#);
        assert_snapshot!(plain(&eof(2, 0), &map), @r#"
            error[syntax]: expected `}`, found end of file
             --> empty.cfg:1:1
              |
            1 |
              | ^ the block is not closed
            "#);
        assert_snapshot!(json_line(&eof(0, with_newline.len()), &map), @r#"{"file":"nl.cfg","line":2,"column":7,"end_line":2,"end_column":7,"severity":"error","kind":"syntax","message":"expected `}`, found end of file","label":"the block is not closed","notes":[],"help":[],"secondary":[]}"#);
    }

    #[test]
    fn span_across_two_lines() {
        let text = "route {\n\tif (is_method(\"INVITE\") &&\n\t    has_totag()) {\n\t\texit;\n\t}\n}\n";
        let map = sources(&[("openser.cfg", text)]);
        let cond = find(text, "is_method(\"INVITE\") &&\n\t    has_totag()");
        let diag = Diagnostic::warning(
            Kind::DialectAmbiguity,
            at(0, cond.start, cond.end),
            "this condition reads differently in Kamailio",
        )
        .with_label("this condition");
        assert_snapshot!(plain(&diag, &map), @r#"
            warning[dialect-ambiguity]: this condition reads differently in Kamailio
             --> openser.cfg:2:6
              |
            2 |       if (is_method("INVITE") &&
              |  _________^
            3 | |         has_totag()) {
              | |___________________^ this condition
            "#);
        assert_snapshot!(json_line(&diag, &map), @r#"{"file":"openser.cfg","line":2,"column":6,"end_line":3,"end_column":17,"severity":"warning","kind":"dialect-ambiguity","message":"this condition reads differently in Kamailio","label":"this condition","notes":[],"help":[],"secondary":[]}"#);
    }

    #[test]
    fn secondary_labels_in_same_and_other_file() {
        let main = "include_file \"b.cfg\"\nroute[1] {\n\texit;\n}\n";
        let other = "route[1] {\n\tdrop;\n}\n";
        let map = sources(&[("main.cfg", main), ("b.cfg", other)]);
        let first = find(main, "route[1]");
        let second = find(other, "route[1]");
        let include = find(main, "include_file \"b.cfg\"");
        let diag = Diagnostic::error(Kind::Syntax, at(1, second.start, second.end), "route[1] is defined twice")
            .with_label("defined again here")
            .with_secondary(at(0, first.start, first.end), "first defined here")
            .with_secondary(at(0, include.start, include.end), "included here");
        assert_snapshot!(plain(&diag, &map), @r#"
            error[syntax]: route[1] is defined twice
             --> b.cfg:1:1
              |
            1 | route[1] {
              | ^^^^^^^^ defined again here
              |
             ::: main.cfg:1:1
              |
            1 | include_file "b.cfg"
              | -------------------- included here
            2 | route[1] {
              | -------- first defined here
            "#);
        assert_snapshot!(json_line(&diag, &map), @r#"{"file":"b.cfg","line":1,"column":1,"end_line":1,"end_column":9,"severity":"error","kind":"syntax","message":"route[1] is defined twice","label":"defined again here","notes":[],"help":[],"secondary":[{"file":"main.cfg","line":2,"column":1,"end_line":2,"end_column":9,"message":"first defined here"},{"file":"main.cfg","line":1,"column":1,"end_line":1,"end_column":21,"message":"included here"}]}"#);
    }

    #[test]
    fn note_severity_and_no_span() {
        let text = "#!KAMAILIO\nroute { exit; }\n";
        let map = sources(&[("k.cfg", text)]);
        let decl = find(text, "#!KAMAILIO");
        let note = Diagnostic::note_at(Kind::Dialect, at(0, decl.start, decl.end), "read as Kamailio (3.0 and later)")
            .with_label("declared here");
        let global = Diagnostic::new(Severity::Error, Kind::Preprocessor, "-D 1X: not a valid name")
            .with_help("names start with a letter or `_`");
        assert_snapshot!(human(&[note, global.clone()], &map, false), @r#"
            note[dialect]: read as Kamailio (3.0 and later)
             --> k.cfg:1:1
              |
            1 | #!KAMAILIO
              | ^^^^^^^^^^ declared here

            error[preprocessor]: -D 1X: not a valid name
             |
             = help: names start with a letter or `_`
            "#);
        assert_snapshot!(json_line(&global, &map), @r#"{"file":null,"line":null,"column":null,"end_line":null,"end_column":null,"severity":"error","kind":"preprocessor","message":"-D 1X: not a valid name","label":null,"notes":[],"help":["names start with a letter or `_`"],"secondary":[]}"#);
        assert_snapshot!(github(&global, &map), @r#"::error title=serc [preprocessor]::-D 1X: not a valid name%0Ahelp: names start with a letter or `_`"#);
    }

    #[test]
    fn json_fields() {
        let map = sources(&[("conf/openser.cfg", CFG)]);
        let line = json_line(&missing_semicolon(), &map);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["file"], "conf/openser.cfg");
        assert_eq!((v["line"].as_u64(), v["column"].as_u64()), (Some(3), Some(11)));
        assert_eq!((v["end_line"].as_u64(), v["end_column"].as_u64()), (Some(3), Some(11)));
        assert_eq!(v["severity"], "error");
        assert_eq!(v["kind"], "syntax");
        assert_eq!(v["message"], "expected `;` after a statement");
        assert_eq!(v["label"], "expected `;` here");
        assert_eq!(v["notes"][0], "in OpenSER 1.3 every statement ends with `;`");
        assert_eq!(v["help"][0], "add `;` after `t_relay()`");
        assert_snapshot!(line, @r#"{"file":"conf/openser.cfg","line":3,"column":11,"end_line":3,"end_column":11,"severity":"error","kind":"syntax","message":"expected `;` after a statement","label":"expected `;` here","notes":["in OpenSER 1.3 every statement ends with `;`"],"help":["add `;` after `t_relay()`"],"secondary":[]}"#);
    }

    #[test]
    fn github_escaping() {
        let text = "x = 1\n";
        let map = sources(&[("dir,with:odd%name.cfg", text)]);
        let diag = Diagnostic::warning(Kind::UnknownGlobal, at(0, 0, 1), "unknown global `x`: 100% sure,\r\nreally")
            .with_note("a note")
            .with_help("a: help");
        assert_snapshot!(github(&diag, &map), @r#"::warning file=dir%2Cwith%3Aodd%25name.cfg,line=1,col=1,endLine=1,endColumn=2,title=serc [unknown-global]::unknown global `x`: 100%25 sure,%0D%0Areally%0Anote: a note%0Ahelp: a: help"#);
        let note = Diagnostic::note_at(Kind::Dialect, at(0, 0, 1), "n");
        assert!(github(&note, &map).starts_with("::notice file="));
    }

    #[test]
    fn summaries() {
        let e = Diagnostic::new(Severity::Error, Kind::Syntax, "e");
        let w = Diagnostic::new(Severity::Warning, Kind::Syntax, "w");
        let n = Diagnostic::new(Severity::Note, Kind::Dialect, "n");
        assert_eq!(summary(std::slice::from_ref(&n)), None);
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[w.clone(), n.clone()]).as_deref(), Some("warning: found 1 warning"));
        assert_eq!(summary(std::slice::from_ref(&e)).as_deref(), Some("error: found 1 error"));
        assert_eq!(summary(&[e.clone(), e.clone(), e, w, n]).as_deref(), Some("error: found 3 errors and 1 warning"));
    }

    #[test]
    fn colour_only_when_asked() {
        let map = sources(&[("openser.cfg", CFG)]);
        assert!(human(&[missing_semicolon()], &map, true).contains('\x1b'));
        assert!(!human(&[missing_semicolon()], &map, false).contains('\x1b'));
    }

    #[test]
    fn spans_past_line_end_and_out_of_range() {
        let text = "route {\r\n\texit;\r\n}\r\n";
        let map = sources(&[("crlf.cfg", text)]);
        let exit = find(text, "exit;\r\n");
        let with_newline = Diagnostic::error(Kind::Syntax, at(0, exit.start, exit.end), "covers the line end");
        assert_snapshot!(plain(&with_newline, &map), @r#"
            error[syntax]: covers the line end
             --> crlf.cfg:2:2
              |
            2 |     exit;
              |     ^^^^^
            "#);
        let past_eof = Diagnostic::error(Kind::Syntax, at(0, 500, 400), "out of range").with_label("clamped");
        assert_snapshot!(plain(&past_eof, &map), @r#"
            error[syntax]: out of range
             --> crlf.cfg:3:2
              |
            3 | }
              |  ^ clamped
            "#);
        let no_file = Diagnostic::error(Kind::Syntax, at(7, 0, 1), "names a file that is not in the map");
        assert_snapshot!(plain(&no_file, &map), @r#"error[syntax]: names a file that is not in the map"#);
    }

    /// Every span a file can hold, and some it cannot, renders without panicking,
    /// and the positions agree across renderers.
    #[test]
    fn any_span_renders() {
        let text = "a\té日\r\nb\n\n€x\r\0\u{202e}y\u{200d}z";
        let map = sources(&[("t.cfg", text), ("empty.cfg", "")]);
        for file in 0..3u32 {
            for start in 0..text.len() + 3 {
                for end in 0..text.len() + 3 {
                    let diag = Diagnostic::error(Kind::Syntax, at(file, start, end), "m")
                        .with_label("l")
                        .with_secondary(at(0, end, start), "s");
                    let human = plain(&diag, &map);
                    let json = json_line(&diag, &map);
                    let v: Value = serde_json::from_str(&json).expect("valid JSON");
                    if let (Some(line), Some(col)) = (v["line"].as_u64(), v["column"].as_u64()) {
                        let name = v["file"].as_str().unwrap_or_default();
                        let origin = format!("--> {name}:{line}:{col}\n");
                        assert!(human.contains(&origin), "{start}..{end} in {file}: {origin} not in\n{human}");
                        assert!(github(&diag, &map).contains(&format!(",line={line},col={col},")));
                    }
                }
            }
        }
    }
}
