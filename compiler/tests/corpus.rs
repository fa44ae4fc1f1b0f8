//! The front end against the real configs in `../shared/corpus/cfg` (relative to
//! the workspace root; `SERC_CORPUS_DIR` overrides it): every config parses, the
//! five genuinely broken ones fail exactly where OpenSER fails them, each is read as
//! the right dialect, damaged copies are reported at the line of the damage without
//! losing the rest of the file, and no prefix of a config makes the parser panic.
//!
//! The corpus is data, not code: the tests read it in place and fail (never skip)
//! when it is missing.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serc::diag::{render, Diagnostic};
use serc::source::Span;
use serc::syntax::ast::{Block, Config, Item, ItemKind, Stmt, StmtKind};
use serc::syntax::dump::dump;
use serc::syntax::{parse_file, parse_str, Dialect, Parse, ParseOptions};

// ------------------------------------------------------------------ the corpus

fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("SERC_CORPUS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cfg"),
    };
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "the config corpus is missing: expected {} with MANIFEST.tsv and the *.cfg files \
         (the workspace's ../shared/corpus/cfg; set SERC_CORPUS_DIR to read it from elsewhere). \
         These tests read the real configs and do not skip without them.",
        dir.display()
    );
    dir
}

/// The file names of every corpus config, sorted.
fn corpus_names() -> Vec<String> {
    let dir = corpus_dir();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cfg"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "only {} configs in {}; the corpus looks incomplete", names.len(), dir.display());
    names
}

fn read(name: &str) -> String {
    let path = corpus_dir().join(name);
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn parse_text(name: &str, text: &str) -> Parse {
    parse_str(name, text, &ParseOptions::default())
}

/// 1-based line of the start of `span`.
fn line(parse: &Parse, span: Span) -> usize {
    parse.sources.get(span.file).line_col(span.start).0
}

fn errors(parse: &Parse) -> impl Iterator<Item = &Diagnostic> {
    parse.diagnostics.iter().filter(|d| d.is_error())
}

/// Every error as `LINE kind: message` (for assertion messages).
fn error_lines(parse: &Parse) -> Vec<String> {
    errors(parse)
        .map(|d| match d.span {
            Some(span) => format!("{} {}: {}", line(parse, span), d.kind.as_str(), d.message),
            None => format!("- {}: {}", d.kind.as_str(), d.message),
        })
        .collect()
}

fn rendered_errors(parse: &Parse) -> String {
    errors(parse).map(|d| render::plain(d, &parse.sources)).collect::<Vec<_>>().join("\n")
}

// ------------------------------------------------- every config parses cleanly

/// An error a broken config must report: its kind, its line, and a piece of its
/// message.
struct Expected {
    kind: &'static str,
    line: usize,
    message: &'static str,
}

const fn err(kind: &'static str, line: usize, message: &'static str) -> Expected {
    Expected { kind, line, message }
}

/// The corpus configs OpenSER itself rejects, and every error serc reports in them.
fn broken() -> BTreeMap<&'static str, Vec<Expected>> {
    BTreeMap::from([
        // Line 170: `if(is_method("BYE") {`: the `(` of the `if` is never closed.
        ("opensips__openser1.2__ex-acc-mysql.cfg", vec![err("syntax", 170, "expected `)` before `{`")]),
        // Line 33: `if (method=="INVITE") route(1)` and the `else` on the next line.
        ("opensips__openser1.2__ex-exec_s5.cfg", vec![err("syntax", 33, "expected `;` after")]),
        // Line 64 opens `if (uri==myself) {` and line 65 a second `{`; the extra
        // block leaves the `route{` of line 56 open until `failure_route[1]`
        // (line 129).
        ("opensips__openser1.2__msilo-doc.cfg", vec![err("syntax", 56, "this block is never closed")]),
        // route[2] (presence) was commented out with `##` line by line, all but
        // its last two lines: `exit;` (line 375) and `}` stand at the top level
        // (one error: the stray text runs to the next item).
        ("opensips__openser1.3__default.cfg", vec![err("syntax", 375, "found `exit`")]),
        // Not a routing script: the LDAP module's INI file (`[session]` headers,
        // `ldap_*` settings that are no global parameter of any dialect).
        (
            "opensips__openser1.3__ldap.cfg",
            vec![
                err("syntax", 10, "found `[`"),
                err("unknown-global", 11, "`ldap_server_url`"),
                err("unknown-global", 12, "`ldap_bind_dn`"),
                err("unknown-global", 13, "`ldap_bind_password`"),
                err("unknown-global", 14, "`ldap_network_timeout`"),
                // Line 15's `ldap_client_bind_timeout = 500` runs on into
                // `[campus]`: one error for both, at the `[`.
                err("syntax", 23, "found `[`"),
                err("unknown-global", 24, "`ldap_version`"),
                err("unknown-global", 25, "`ldap_server_url`"),
                err("unknown-global", 26, "`ldap_network_timeout`"),
                err("unknown-global", 27, "`ldap_client_bind_timeout`"),
            ],
        ),
    ])
}

#[test]
fn every_config_parses_except_the_broken_ones() {
    let broken = broken();
    let dir = corpus_dir();
    let names = corpus_names();
    for name in broken.keys() {
        assert!(names.iter().any(|n| n == name), "{name} is listed as broken but is not in the corpus");
    }
    let mut failures = Vec::new();
    for name in &names {
        let parse =
            parse_file(&dir.join(name), &ParseOptions::default()).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
        match broken.get(name.as_str()) {
            None => {
                if parse.has_errors() {
                    failures.push(format!("{name} has errors:\n{}", rendered_errors(&parse)));
                }
            }
            Some(expected) => {
                // One entry per (line, kind): a second error on the same line is
                // not what these expectations are about.
                let mut found: Vec<&Diagnostic> = errors(&parse).collect();
                found.dedup_by_key(|d| (d.span.map(|s| line(&parse, s)), d.kind));
                let matches = found.len() == expected.len()
                    && found.iter().zip(expected).all(|(d, e)| {
                        d.kind.as_str() == e.kind
                            && d.span.is_some_and(|s| line(&parse, s) == e.line)
                            && d.message.contains(e.message)
                    });
                if !matches {
                    let want: Vec<String> =
                        expected.iter().map(|e| format!("{} {}: …{}…", e.line, e.kind, e.message)).collect();
                    failures.push(format!(
                        "{name}: expected exactly these errors\n  {}\nfound\n  {}",
                        want.join("\n  "),
                        error_lines(&parse).join("\n  ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The broken configs are broken where the comments above say: check the text
/// itself, so that the expectations cannot drift from the files.
#[test]
fn the_broken_configs_are_broken_where_we_say() {
    let line_of = |name: &str, n: usize| read(name).lines().nth(n - 1).unwrap_or_default().trim().to_owned();
    assert_eq!(line_of("opensips__openser1.2__ex-acc-mysql.cfg", 170), "if(is_method(\"BYE\") {");
    assert_eq!(line_of("opensips__openser1.2__ex-exec_s5.cfg", 33), "if (method==\"INVITE\") route(1)");
    assert_eq!(line_of("opensips__openser1.2__ex-exec_s5.cfg", 34), "else sl_send_reply(\"404\", \"Not Found\");");
    assert_eq!(line_of("opensips__openser1.2__msilo-doc.cfg", 56), "route{");
    assert_eq!(line_of("opensips__openser1.2__msilo-doc.cfg", 64), "if (uri==myself) {");
    assert_eq!(line_of("opensips__openser1.2__msilo-doc.cfg", 65), "{");
    assert_eq!(line_of("opensips__openser1.2__msilo-doc.cfg", 129), "failure_route[1] {");
    assert_eq!(line_of("opensips__openser1.3__default.cfg", 355), "##route[2]");
    assert_eq!(line_of("opensips__openser1.3__default.cfg", 375), "exit;");
    assert_eq!(line_of("opensips__openser1.3__default.cfg", 376), "}");
    assert_eq!(line_of("opensips__openser1.3__ldap.cfg", 10), "[sipaccounts]");
    // Braces outside `#` comment lines.
    let braces = |name: &str| {
        let text = read(name);
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        (code.matches('{').count(), code.matches('}').count())
    };
    // One `{` too many in msilo.cfg, one `}` too many in 1.3's default.cfg.
    let (open, close) = braces("opensips__openser1.2__msilo-doc.cfg");
    assert_eq!(open, close + 1);
    let (open, close) = braces("opensips__openser1.3__default.cfg");
    assert_eq!(open + 1, close);
}

// ------------------------------------------------------------------- dialects

/// The dialect each config is read as when nobody says. `why` explains a reading
/// other than the one its release (MANIFEST.tsv) suggests.
struct Reading {
    dialect: &'static str,
    why: Option<&'static str>,
}

const fn as_release(dialect: &'static str) -> Reading {
    Reading { dialect, why: None }
}

const fn because(dialect: &'static str, why: &'static str) -> Reading {
    Reading { dialect, why: Some(why) }
}

fn readings() -> BTreeMap<&'static str, Reading> {
    BTreeMap::from([
        ("kamailio__k1.5__default.cfg", as_release("openser-1.3")),
        ("kamailio__k3.0__default.cfg", as_release("kamailio")),
        ("kamailio__ser0.9__default.cfg", as_release("ser-0.9")),
        ("openser-xmlrpc__xmlrpc_usrloc.cfg", as_release("openser-1.3")),
        ("opensips__openser0.9__default.cfg", as_release("ser-0.9")),
        ("opensips__openser0.9__nathelper-mod.cfg", as_release("ser-0.9")),
        ("opensips__openser0.9__nh-alg.cfg", as_release("ser-0.9")),
        ("opensips__openser0.9__profile.cfg", as_release("ser-0.9")),
        ("opensips__openser1.0__default.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__default.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-acc-mysql.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-exec_s3.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-exec_s5.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-flag_reply.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-logging.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-nathelper.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-redirect.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__ex-replicate.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__imc.cfg", as_release("openser-1.3")),
        (
            "opensips__openser1.2__jabberx.cfg",
            because("ser-0.9", "a stale 0.9 example: `break` leaves the route, which 1.2's grammar rejects"),
        ),
        ("opensips__openser1.2__mi_xmlrpc.cfg", as_release("openser-1.3")),
        (
            "opensips__openser1.2__msilo-doc.cfg",
            because("ser-0.9", "a stale 0.9 example: `break` leaves the route, which 1.2's grammar rejects"),
        ),
        ("opensips__openser1.2__pdt.cfg", as_release("openser-1.3")),
        ("opensips__openser1.2__xmpp.cfg", as_release("openser-1.3")),
        ("opensips__openser1.3__dbtext.cfg", as_release("openser-1.3")),
        ("opensips__openser1.3__default.cfg", as_release("openser-1.3")),
        ("opensips__openser1.3__ldap.cfg", as_release("openser-1.3")),
        (
            "opensips__openser1.3__mediaproxy.cfg",
            because("ser-0.9", "`break` leaves the route, which 1.3's grammar rejects (only `case … break;`)"),
        ),
        ("opensips__openser1.3__osp.cfg", as_release("openser-1.3")),
        ("opensips__openser1.3__test12.cfg", as_release("openser-1.3")),
        ("opensips__openser1.3__test2.cfg", as_release("openser-1.3")),
        ("opensips__openser1.3__test7.cfg", as_release("openser-1.3")),
        ("opensips__openser1.4dev__test-presence.cfg", as_release("openser-1.3")),
        ("opensips__openser1.4dev__test21.cfg", as_release("openser-1.3")),
        (
            "opensips__openser1.4dev__test26.cfg",
            because(
                "opensips",
                "1.4-dev is the trunk that became OpenSIPS 1.4; its carrierroute calls take up to 6 arguments, \
                 1.3's grammar at most 2",
            ),
        ),
        ("opensips__ops1.4__default.cfg", as_release("opensips")),
        ("opensips__ops1.8__default.cfg", as_release("opensips")),
    ])
}

/// The dialect a release named in MANIFEST.tsv's note belongs to.
fn release_dialect(note: &str) -> &'static str {
    let families = [
        ("OpenSER 0.9", "ser-0.9"),
        ("SER 0.9", "ser-0.9"),
        ("OpenSER 1.", "openser-1.3"),
        ("Kamailio 1.", "openser-1.3"),
        ("OpenSIPS 1.", "opensips"),
        ("Kamailio 3.", "kamailio"),
    ];
    // The note names the release first ("OpenSER 1.2.0 (trunk …"), after an
    // optional `LABEL ` or a `third-party, ` prefix.
    let release = note.trim_start_matches("LABEL ").trim_start_matches("third-party, ");
    families
        .iter()
        .filter_map(|(prefix, dialect)| release.find(prefix).map(|at| (at, *dialect)))
        .min()
        .map(|(_, dialect)| dialect)
        .unwrap_or_else(|| panic!("no release in MANIFEST note {note:?}"))
}

/// MANIFEST.tsv: file name → note.
fn manifest() -> BTreeMap<String, String> {
    let text = fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no `{name}` column"));
    let (file, note) = (col("file"), col("note"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields[file].to_owned(), fields[note].to_owned())
        })
        .collect()
}

#[test]
fn each_config_is_read_as_its_dialect() {
    let readings = readings();
    let manifest = manifest();
    let names = corpus_names();
    let listed: Vec<&str> = readings.keys().copied().collect();
    assert_eq!(names.iter().map(String::as_str).collect::<Vec<_>>(), listed, "the table must list every config");
    assert_eq!(manifest.keys().map(String::as_str).collect::<Vec<_>>(), listed, "MANIFEST.tsv must list every config");
    let mut wrong = Vec::new();
    for (name, reading) in &readings {
        let parse = parse_text(name, &read(name));
        let read_as = parse.config.dialect.id();
        if read_as != reading.dialect {
            wrong.push(format!("{name}: read as {read_as}, expected {}", reading.dialect));
        }
        let release = release_dialect(&manifest[*name]);
        match reading.why {
            None if release != reading.dialect => {
                wrong.push(format!("{name}: its release ({release}) and the table ({}) disagree", reading.dialect))
            }
            Some(why) if release == reading.dialect => wrong.push(format!("{name}: needs no reason ({why})")),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The readings that differ from the release are the right ones: read as their
/// release's dialect, the 1.x files that leave routes with `break` and the
/// 1.4-dev file that passes 6 arguments are rejected (as OpenSER 1.2/1.3 rejects
/// them). And the one 0.9 file without a `break` is recognised by its
/// `forward(host, port)`, which 1.2 and 1.3 no longer accept.
#[test]
fn readings_other_than_the_release_are_justified() {
    let forced = |name: &str, dialect: Dialect| {
        parse_str(name, &read(name), &ParseOptions { dialect: Some(dialect), ..ParseOptions::default() })
    };
    let rejected = |name: &str, why: &str| {
        let parse = forced(name, Dialect::OpenSer13);
        assert!(
            errors(&parse).any(|d| d.message.contains(why)),
            "{name} read as OpenSER 1.3 should be rejected ({why}):\n{}",
            error_lines(&parse).join("\n")
        );
    };
    for name in [
        "opensips__openser1.2__jabberx.cfg",
        "opensips__openser1.2__msilo-doc.cfg",
        "opensips__openser1.3__mediaproxy.cfg",
    ] {
        rejected(name, "`break` outside a `switch`");
    }
    rejected("opensips__openser1.4dev__test26.cfg", "OpenSER 1.3 passes at most 2");
    // The parser reads any call; the checker knows `forward`'s forms.
    let name = "opensips__openser0.9__profile.cfg";
    let mut parse = forced(name, Dialect::OpenSer13);
    serc::check_parse(&mut parse);
    assert!(
        errors(&parse).any(|d| d.message.contains("`forward` takes 0 or 1 arguments")),
        "{name} read as OpenSER 1.3 should be rejected:\n{}",
        error_lines(&parse).join("\n")
    );
}

// -------------------------------------------------------- damaged configs

/// The configs the damage tests break: OpenSER 1.3's largest test config, the
/// 1.2 and SER 0.9 defaults, Kamailio 1.5 and 3.0 (with `#!ifdef`s) and OpenSIPS 1.4.
const DAMAGED: &[&str] = &[
    "opensips__openser1.3__test7.cfg",
    "opensips__openser1.2__default.cfg",
    "kamailio__k3.0__default.cfg",
    "kamailio__k1.5__default.cfg",
    "opensips__ops1.4__default.cfg",
    "opensips__openser0.9__default.cfg",
];

/// How many places in each config get each damage.
const SITES_PER_DAMAGE: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    /// Remove the `;` that ends a statement line.
    MissingSemicolon,
    /// Remove the `)` before `{` in an `if (…) {` line.
    MissingParen,
    /// `failure_route[1]` → `failure_rute[1]` (any block keyword loses the `o` of
    /// `route`).
    MisspelledKeyword,
    /// A line `@@@` after a statement line.
    StrayAt,
    /// A line `foo bar` after a statement line.
    StrayWords,
    /// A line `garbage` before a route block.
    TopLevelGarbage,
    /// Delete the `}` that closes a route block.
    MissingRouteBrace,
}

const DAMAGES: &[Damage] = &[
    Damage::MissingSemicolon,
    Damage::MissingParen,
    Damage::MisspelledKeyword,
    Damage::StrayAt,
    Damage::StrayWords,
    Damage::TopLevelGarbage,
    Damage::MissingRouteBrace,
];

impl Damage {
    /// The damage repairs to the original tree (serc re-inserts the token).
    fn is_repaired(self) -> bool {
        matches!(self, Damage::MissingSemicolon | Damage::MissingParen)
    }
}

/// One damage at one place: replace `range` of the original text with `insert`.
#[derive(Clone, Debug)]
struct Edit {
    range: Range<usize>,
    insert: &'static str,
    /// The top-level item the damage is in (or, for a line inserted before an
    /// item, that item): items after it must survive.
    item: usize,
    /// For a deleted `}`: the offset of the `{` it closed.
    opens: Option<usize>,
}

/// Every place in `original` where `damage` can be done, in source order. Only
/// text the parser read is damaged (not comments, not `#!ifdef`'d-out sections):
/// the places come from the tree.
fn sites(original: &Parse, damage: Damage) -> Vec<Edit> {
    let text: &str = &original.sources.get(serc::source::FileId(0)).text;
    let mut edits = Vec::new();
    for (index, item) in original.config.items.iter().enumerate() {
        if item.span.file.0 != 0 {
            continue;
        }
        let ItemKind::Route(route) = &item.kind else { continue };
        let edit = |range: Range<usize>, insert| Edit { range, insert, item: index, opens: None };
        match damage {
            Damage::MissingSemicolon | Damage::StrayAt | Damage::StrayWords => {
                for stmt in statements(&route.body) {
                    let end = stmt.span.end as usize;
                    if !is_simple(stmt) || !text[..end].ends_with(';') || !rest_of_line_is_blank(text, end) {
                        continue;
                    }
                    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
                    edits.push(match damage {
                        Damage::MissingSemicolon => edit(end - 1..end, ""),
                        Damage::StrayAt => edit(line_end..line_end, "\t@@@\n"),
                        _ => edit(line_end..line_end, "\tfoo bar\n"),
                    });
                }
            }
            Damage::MissingParen => {
                for stmt in statements(&route.body) {
                    let StmtKind::If { then, .. } = &stmt.kind else { continue };
                    // `if (…) {` or `if (…)` ⏎ `{`: the `)` before the `{`.
                    let brace = then.span.start as usize;
                    if !text[brace..].starts_with('{') {
                        continue;
                    }
                    let head = text[stmt.span.start as usize..brace].trim_end();
                    if head.ends_with(')') {
                        let at = stmt.span.start as usize + head.len() - 1;
                        edits.push(edit(at..at + 1, ""));
                    }
                }
            }
            Damage::MisspelledKeyword => {
                let kw = route.keyword.span;
                if text[kw.range()].ends_with("route") {
                    // Drop the `o` of `route`.
                    let o = kw.end as usize - 4;
                    edits.push(edit(o..o + 1, ""));
                }
            }
            Damage::TopLevelGarbage => {
                let start = item.span.start as usize;
                if text[..start].ends_with('\n') && index > 0 {
                    edits.push(edit(start..start, "garbage\n"));
                }
            }
            Damage::MissingRouteBrace => {
                let end = item.span.end as usize;
                if text[..end].ends_with('}') {
                    edits.push(Edit { opens: Some(route.body.span.start as usize), ..edit(end - 1..end, "") });
                }
            }
        }
    }
    edits
}

/// Every statement in `block`, nested ones included, in source order.
fn statements(block: &Block) -> Vec<&Stmt> {
    fn walk<'a>(stmts: &'a [Stmt], out: &mut Vec<&'a Stmt>) {
        for stmt in stmts {
            out.push(stmt);
            match &stmt.kind {
                StmtKind::If { then, otherwise, .. } => {
                    walk(&then.stmts, out);
                    if let Some(otherwise) = otherwise {
                        walk(&otherwise.stmts, out);
                    }
                }
                StmtKind::While { body, .. } | StmtKind::Block(body) => walk(&body.stmts, out),
                StmtKind::Switch { cases, .. } => {
                    for case in cases {
                        walk(&case.body, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&block.stmts, &mut out);
    out
}

/// A statement that ends with its own `;`.
fn is_simple(stmt: &Stmt) -> bool {
    matches!(
        stmt.kind,
        StmtKind::Call(_)
            | StmtKind::RouteCall(_)
            | StmtKind::Assign { .. }
            | StmtKind::Return(_)
            | StmtKind::Exit
            | StmtKind::Drop
            | StmtKind::Break
            | StmtKind::Ser09Break
    )
}

/// Nothing but spaces or a `#` comment from `at` to the end of its line.
fn rest_of_line_is_blank(text: &str, at: usize) -> bool {
    let rest = text[at..].split('\n').next().unwrap_or_default().trim();
    rest.is_empty() || rest.starts_with('#')
}

/// Up to `n` of `all`, evenly spread.
fn spread<T: Clone>(all: &[T], n: usize) -> Vec<T> {
    if all.len() <= n {
        return all.to_vec();
    }
    (0..n).map(|i| all[i * (all.len() - 1) / (n - 1)].clone()).collect()
}

/// Applies `edits` (sorted, not overlapping) to `text`; returns the damaged text and,
/// for each edit, the byte offset where it lands in it.
fn apply(text: &str, edits: &[&Edit]) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    let mut landed = Vec::new();
    for edit in edits {
        assert!(edit.range.start >= at, "edits overlap");
        out.push_str(&text[at..edit.range.start]);
        landed.push(out.len());
        out.push_str(edit.insert);
        at = edit.range.end;
    }
    out.push_str(&text[at..]);
    (out, landed)
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// The line of the first token at or after `offset` (skipping spaces, `#` and
/// `/* */` comments).
fn next_token_line(text: &str, mut offset: usize) -> usize {
    let bytes = text.as_bytes();
    while offset < bytes.len() {
        match bytes[offset] {
            b' ' | b'\t' | b'\r' | b'\n' => offset += 1,
            b'#' if !text[offset..].starts_with("#!") => {
                offset = text[offset..].find('\n').map_or(bytes.len(), |i| offset + i);
            }
            b'/' if text[offset..].starts_with("/*") => {
                offset = text[offset..].find("*/").map_or(bytes.len(), |i| offset + i + 2);
            }
            _ => break,
        }
    }
    line_at(text, offset.min(text.len()))
}

/// Is the damage `edit` to `original`, now at `landed` in `damaged`, reported
/// where it is?
fn reported(
    parse: &Parse,
    damage: Damage,
    edit: &Edit,
    original: &str,
    damaged: &str,
    landed: usize,
) -> Result<(), String> {
    let here = line_at(damaged, landed);
    let next = next_token_line(damaged, landed);
    let on = |span: Span, line_no: usize| line(parse, span) == line_no;
    let found = match (damage, edit.opens) {
        // The `{` that is never closed, and the item that shows it (unless the
        // file ends first). The deleted `}` removes no line: the `{` is on the
        // same line as in the original text.
        (Damage::MissingRouteBrace, Some(open)) => {
            let open_line = line_at(original, open);
            let at_eof = damaged[landed..].trim().is_empty();
            let found = errors(parse).any(|d| {
                d.message.contains("never closed")
                    && d.span.is_some_and(|s| on(s, open_line))
                    && (at_eof || d.secondary.iter().any(|l| on(l.span, next)))
            });
            if found {
                return Ok(());
            }
            format!("no `never closed` error at line {open_line} pointing at line {next}")
        }
        // The statement that lacks its `;`, or the token that shows it is missing.
        (Damage::MissingSemicolon, _) => {
            if errors(parse).any(|d| d.span.is_some_and(|s| on(s, here) || on(s, next))) {
                return Ok(());
            }
            format!("no error on line {here} or {next}")
        }
        _ => {
            if errors(parse).any(|d| d.span.is_some_and(|s| on(s, here))) {
                return Ok(());
            }
            format!("no error on line {here}")
        }
    };
    Err(found)
}

/// The dump of each item, without positions (damage moves lines) and without the
/// dialect.
fn item_dumps(items: &[Item], parse: &Parse) -> Vec<String> {
    items
        .iter()
        .map(|item| {
            let config = Config { dialect: parse.config.dialect, items: vec![item.clone()] };
            let dump = dump(&config, &parse.sources);
            // Without the `dialect …` line.
            strip_positions(dump.split_once('\n').map_or("", |(_, items)| items))
        })
        .collect()
}

/// `route request @3:1` → `route request`.
fn strip_positions(dump: &str) -> String {
    dump.lines()
        .map(|l| match l.rfind(" @") {
            Some(at) if l[at + 2..].chars().all(|c| c.is_ascii_digit() || c == ':') => &l[..at],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What went wrong with one damaged copy, if anything.
fn check_damaged(name: &str, text: &str, original: &Parse, damage: Damage, edits: &[&Edit]) -> Option<String> {
    let (damaged, landed) = apply(text, edits);
    let parse = parse_text(name, &damaged);
    let mut problems = Vec::new();
    for (edit, &at) in edits.iter().zip(&landed) {
        if let Err(problem) = reported(&parse, damage, edit, text, &damaged, at) {
            problems.push(problem);
        }
    }
    // Everything after the last damaged item reads as before (a line inserted
    // before an item leaves that item whole too).
    let last = edits.iter().map(|e| e.item).max().unwrap_or(0);
    let first_intact = if damage == Damage::TopLevelGarbage { last } else { last + 1 };
    let now = item_dumps(&parse.config.items, &parse);
    for (i, item) in item_dumps(&original.config.items[first_intact..], original).iter().enumerate() {
        if !now.contains(item) {
            let first_line = item.lines().next().unwrap_or_default();
            problems.push(format!("item {} after the damage (`{first_line}`) was lost or changed", first_intact + i));
        }
    }
    if damage.is_repaired() && item_dumps(&parse.config.items, &parse) != item_dumps(&original.config.items, original) {
        problems.push("the repaired tree differs from the original".to_owned());
    }
    if problems.is_empty() {
        return None;
    }
    let at: Vec<String> = landed.iter().map(|&o| format!("line {}", line_at(&damaged, o))).collect();
    Some(format!(
        "{name}, {damage:?} at {}: {}\n  errors:\n    {}",
        at.join(" and "),
        problems.join("; "),
        error_lines(&parse).join("\n    ")
    ))
}

/// The Done-when: for each damage at several places in several real
/// configs, the error is at the line of the damage and the rest of the file is
/// still read — including a second damage further down, also reported.
#[test]
fn damaged_configs_are_reported_at_the_damage_and_the_rest_is_read() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for name in DAMAGED {
        let text = read(name);
        let original = parse_text(name, &text);
        assert!(!original.has_errors(), "{name} must be clean before it is damaged:\n{}", rendered_errors(&original));
        for &damage in DAMAGES {
            let all = sites(&original, damage);
            assert!(all.len() >= 2, "{name}: fewer than 2 places for {damage:?}");
            // Every block keyword is misspelled once (`failure_route`,
            // `onreply_route`, `branch_route` … not only `route`).
            let chosen = if damage == Damage::MisspelledKeyword { all.clone() } else { spread(&all, SITES_PER_DAMAGE) };
            for site in chosen {
                checked += 1;
                if let Some(f) = check_damaged(name, &text, &original, damage, &[&site]) {
                    failures.push(f);
                }
                // A second damage of the same kind in a later item.
                if let Some(second) = all.iter().rev().find(|e| e.item > site.item + 1) {
                    checked += 1;
                    if let Some(f) = check_damaged(name, &text, &original, damage, &[&site, second]) {
                        failures.push(f);
                    }
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} damaged copies");
    assert!(failures.is_empty(), "{} of {checked} damaged copies failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// A damage gives one error, not a cascade: each damaged copy has exactly as many
/// errors as it has damages.
#[test]
fn one_damage_gives_one_error() {
    let mut failures = Vec::new();
    for name in DAMAGED {
        let text = read(name);
        let original = parse_text(name, &text);
        for &damage in DAMAGES {
            for site in spread(&sites(&original, damage), SITES_PER_DAMAGE) {
                let (damaged, landed) = apply(&text, &[&site]);
                let parse = parse_text(name, &damaged);
                let n = errors(&parse).count();
                if n != 1 {
                    failures.push(format!(
                        "{name}, {damage:?} at line {}: {n} errors\n    {}",
                        line_at(&damaged, landed[0]),
                        error_lines(&parse).join("\n    ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----------------------------------------------------------------- prefixes

/// Cutting a config anywhere (an editor saving half a file) gives errors, never a
/// panic.
#[test]
fn every_prefix_parses_without_panicking() {
    const CUTS: usize = 50;
    for name in corpus_names() {
        let text = read(&name);
        for i in 0..=CUTS {
            let mut cut = i * text.len() / CUTS;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let prefix = &text[..cut];
            let result = std::panic::catch_unwind(|| parse_text(&name, prefix));
            assert!(result.is_ok(), "{name} cut at byte {cut} (line {}) panics", line_at(&text, cut));
        }
    }
}
