//! The parser driver: splits the token stream into top-level items, parses each
//! with the LALRPOP grammar, and recovers from errors.
//!
//! Recovery works at three levels, so that one mistake gives one diagnostic at
//! the line of the damage and the rest of the file is still read:
//! 1. items are found by their leading keyword and matching braces before any
//!    grammar runs, so a broken item never swallows the next one (a block whose
//!    `}` is missing ends where the next route block or `modparam` starts);
//! 2. common slips are repaired and the item parsed again: a missing `;` at the
//!    end of a line, a missing `)` before `{`, a token the lexer rejected;
//! 3. anything else falls back on the grammar's `!` productions (statement and
//!    item level).

use std::cell::RefCell;

use lalrpop_util::{ErrorRecovery, ParseError};

use super::ast::*;
use super::token::{Tok, Token, KEYWORDS};
use crate::diag::{Diagnostic, Kind};
use crate::source::{SourceMap, Span};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_parens, unused_imports, dead_code, unused_variables)]
    grammar,
    "/syntax/grammar.rs"
);

/// One `:`-separated part of a socket.
pub enum SockPart {
    Host(Host),
    Port(IntLit),
    /// `{ … }` (the body of a `dst_blacklist`).
    Block,
}

const RAW_BLOCK: &str = "{…}";

/// Repairs per item before giving up on repairing.
const MAX_REPAIRS: usize = 32;

/// Parses the whole token stream into items (dialect-neutral; see `lower`).
pub fn parse(tokens: &[Token], sources: &SourceMap, diags: &mut Vec<Diagnostic>) -> Vec<Item> {
    let tokens = mark_settings(tokens.to_vec());
    let mut items = Vec::new();
    let mut prev_block_end: Option<Span> = None;
    for range in split_items(&tokens) {
        let slice = &tokens[range.start..range.end];
        if let Some(open) = range.unclosed {
            let open_span = tokens[open].span;
            let mut d = Diagnostic::error(Kind::Syntax, open_span, "this block is never closed")
                .with_label("this `{` has no matching `}`");
            if range.end < tokens.len() {
                d = d
                    .with_secondary(tokens[range.end].span, "the next top-level item starts here")
                    .with_help("add `}` before this item");
            } else {
                d = d.with_help("add `}` at the end of the block");
            }
            diags.push(d);
        }
        if !starts_item(&tokens, range.start) {
            diags.push(junk_item(slice, prev_block_end));
            items.push(Item { kind: ItemKind::Error, span: slice[0].span.to(slice[slice.len() - 1].span) });
            prev_block_end = None;
            continue;
        }
        if let Some(d) = too_complex(slice) {
            diags.push(d);
            items.push(Item { kind: ItemKind::Error, span: slice[0].span.to(slice[slice.len() - 1].span) });
            prev_block_end = None;
            continue;
        }
        let mut toks = slice.to_vec();
        if range.unclosed.is_some() {
            let end = toks[toks.len() - 1].span.end_point();
            toks.push(Token { tok: Tok::RBrace, span: end });
        }
        let is_block = toks.last().is_some_and(|t| t.tok == Tok::RBrace);
        let mut item = parse_item(toks, sources, diags);
        if let ItemKind::Route(r) = &item.kind {
            if depth(&r.body) > MAX_DEPTH {
                diags.push(
                    Diagnostic::error(
                        Kind::Syntax,
                        r.keyword.span,
                        format!("statements nested more than {MAX_DEPTH} deep"),
                    )
                    .with_help("a long `else if` chain reads better as a `switch`"),
                );
                item.kind = ItemKind::Error;
            }
        }
        items.push(item);
        prev_block_end = if is_block { Some(slice[slice.len() - 1].span) } else { None };
    }
    items
}

/// Deepest nesting of statements in a route (an `else if` counts as a level):
/// bounds every recursive pass over the tree.
pub const MAX_DEPTH: usize = 1000;

/// Deepest nesting of `(`, `[` and `{` an item may have.
pub const MAX_NESTING: usize = 128;
/// Most operators one statement may have.
pub const MAX_OPERATORS: usize = 256;

/// Bounds what later passes walk recursively: a real config nests a few levels
/// and has a handful of operators per condition; fuzzed text can have 100,000.
fn too_complex(toks: &[Token]) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut operators = 0usize;
    for t in toks {
        match t.tok {
            Tok::LParen | Tok::LBrack | Tok::LBrace => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(
                        Diagnostic::error(Kind::Syntax, t.span, format!("nested more than {MAX_NESTING} levels deep"))
                            .with_note("serc does not read an item nested this deeply; split it into sub-routes"),
                    );
                }
            }
            Tok::RParen | Tok::RBrack | Tok::RBrace => depth = depth.saturating_sub(1),
            Tok::Semi => operators = 0,
            Tok::And
            | Tok::Or
            | Tok::Not
            | Tok::Minus
            | Tok::Plus
            | Tok::Star
            | Tok::Slash
            | Tok::Percent
            | Tok::Amp
            | Tok::Pipe
            | Tok::Caret
            | Tok::Tilde
            | Tok::Shl
            | Tok::Shr
            | Tok::EqEq
            | Tok::Ne
            | Tok::Match
            | Tok::NotMatch
            | Tok::Lt
            | Tok::Gt
            | Tok::Le
            | Tok::Ge
            | Tok::Comma => {
                operators += 1;
                if operators > MAX_OPERATORS {
                    return Some(
                        Diagnostic::error(
                            Kind::Syntax,
                            t.span,
                            format!("more than {MAX_OPERATORS} operators in one statement"),
                        )
                        .with_note("serc does not read expressions this long; split the condition"),
                    );
                }
            }
            _ => {}
        }
    }
    None
}

/// The deepest statement nesting of a block, computed without recursion.
fn depth(block: &Block) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&[Stmt], usize)> = vec![(&block.stmts, 1)];
    while let Some((stmts, d)) = stack.pop() {
        max = max.max(d);
        if max > MAX_DEPTH {
            break;
        }
        for s in stmts {
            match &s.kind {
                StmtKind::If { then, otherwise, .. } => {
                    stack.push((&then.stmts, d + 1));
                    if let Some(o) = otherwise {
                        stack.push((&o.stmts, d + 1));
                    }
                }
                StmtKind::While { body, .. } => stack.push((&body.stmts, d + 1)),
                StmtKind::Block(inner) => stack.push((&inner.stmts, d + 1)),
                StmtKind::Switch { cases, .. } => stack.extend(cases.iter().map(|c| (c.body.as_slice(), d + 1))),
                _ => {}
            }
        }
    }
    max
}

/// Reads `name =` at the top level (and inside TLS domain blocks) as one
/// `Setting` token, and `tls_server_domain[` as a `TlsDomain` token.
fn mark_settings(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut depth = 0usize;
    let mut tls_depth: Option<usize> = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if depth > 0 && is_top_level_only(&tokens, i) {
            depth = 0;
            tls_depth = None;
        }
        match &t.tok {
            Tok::LBrace => depth += 1,
            Tok::RBrace => {
                depth = depth.saturating_sub(1);
                if tls_depth.is_some_and(|d| depth < d) {
                    tls_depth = None;
                }
            }
            Tok::Ident(name) if depth == 0 && (name == "tls_server_domain" || name == "tls_client_domain") => {
                if matches!(tokens.get(i + 1).map(|t| &t.tok), Some(Tok::LBrack)) {
                    out.push(Token { tok: Tok::TlsDomain(name.clone()), span: t.span });
                    tls_depth = Some(1);
                    i += 1;
                    continue;
                }
            }
            Tok::Ident(first) if depth == 0 || tls_depth == Some(depth) => {
                // name ( . name )* =
                let mut name = first.clone();
                let mut j = i + 1;
                while let (Some(Tok::Dot), Some(Tok::Ident(next))) =
                    (tokens.get(j).map(|t| &t.tok), tokens.get(j + 1).map(|t| &t.tok))
                {
                    name.push('.');
                    name.push_str(next);
                    j += 2;
                }
                // Kamailio's `loadpath "dir"` / `mpath "dir"` (no `=`).
                if j == i + 1
                    && depth == 0
                    && matches!(name.as_str(), "loadpath" | "mpath" | "cfgengine")
                    && matches!(tokens.get(j).map(|t| &t.tok), Some(Tok::Str(_)))
                {
                    out.push(Token { tok: Tok::Setting(name), span: t.span });
                    out.push(Token { tok: Tok::Assign, span: t.span.end_point() });
                    i = j;
                    continue;
                }
                if matches!(tokens.get(j).map(|t| &t.tok), Some(Tok::Assign)) {
                    out.push(Token { tok: Tok::Setting(name), span: t.span.to(tokens[j - 1].span) });
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// Tokens that can only start a top-level item: where one shows up inside a
/// block, that block was not closed.
fn is_top_level_only(tokens: &[Token], i: usize) -> bool {
    let next = tokens.get(i + 1).map(|t| &t.tok);
    match &tokens[i].tok {
        Tok::LoadModule | Tok::ModParam | Tok::Setting(_) | Tok::TlsDomain(_) => true,
        Tok::RouteKw(_) => matches!(next, Some(Tok::LBrace | Tok::LBrack)),
        _ => false,
    }
}

fn starts_item(tokens: &[Token], i: usize) -> bool {
    let next = tokens.get(i + 1).map(|t| &t.tok);
    match &tokens[i].tok {
        Tok::Ident(_) => matches!(next, Some(Tok::LBrace | Tok::LBrack)),
        _ => is_top_level_only(tokens, i),
    }
}

struct ItemRange {
    start: usize,
    end: usize,
    /// The `{` of a block that the item's tokens do not close.
    unclosed: Option<usize>,
}

fn split_items(tokens: &[Token]) -> Vec<ItemRange> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let start = i;
        let block_like = match &tokens[i].tok {
            Tok::RouteKw(_) | Tok::TlsDomain(_) | Tok::Ident(_) => starts_item(tokens, i),
            _ => false,
        };
        if block_like {
            // Find the body's `{` (after an optional `[…]`).
            let mut j = i + 1;
            if tokens.get(j).is_some_and(|t| t.tok == Tok::LBrack) {
                while j < tokens.len() && !matches!(tokens[j].tok, Tok::RBrack | Tok::LBrace) {
                    j += 1;
                }
                if tokens.get(j).is_some_and(|t| t.tok == Tok::RBrack) {
                    j += 1;
                }
            }
            if tokens.get(j).is_some_and(|t| t.tok == Tok::LBrace) {
                let open = j;
                let mut depth = 0usize;
                let mut end = None;
                while j < tokens.len() {
                    if j > open && is_top_level_only(tokens, j) {
                        break;
                    }
                    match tokens[j].tok {
                        Tok::LBrace => depth += 1,
                        Tok::RBrace => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j + 1);
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                match end {
                    Some(end) => ranges.push(ItemRange { start, end, unclosed: None }),
                    None => ranges.push(ItemRange { start, end: j, unclosed: Some(open) }),
                }
                i = ranges.last().map_or(j, |r| r.end);
                continue;
            }
        }
        // A global parameter's value ends with its line (outside brackets);
        // any other item runs to the next token that starts one.
        let setting = matches!(tokens[i].tok, Tok::Setting(_));
        let (file, line) = (tokens[i].span.file, line_of(tokens[i].span));
        let mut depth = 0i32;
        i += 1;
        while i < tokens.len() && !starts_item(tokens, i) {
            match tokens[i].tok {
                Tok::LBrace | Tok::LParen | Tok::LBrack => depth += 1,
                Tok::RBrace | Tok::RParen | Tok::RBrack => depth -= 1,
                _ => {}
            }
            let new_line = tokens[i].span.file != file || line_of(tokens[i].span) > line;
            if setting && depth <= 0 && new_line && tokens[i].tok != Tok::RBrace {
                break;
            }
            i += 1;
        }
        ranges.push(ItemRange { start, end: i, unclosed: None });
    }
    ranges
}

fn junk_item(slice: &[Token], prev_block_end: Option<Span>) -> Diagnostic {
    let first = &slice[0];
    let mut d = Diagnostic::error(
        Kind::Syntax,
        first.span,
        format!("expected a global parameter, `loadmodule`, `modparam` or a route block, found {}", first.tok),
    )
    .with_label("not valid at the top level");
    if let Tok::Ident(word) = &first.tok {
        if let Some(kw) = did_you_mean(word, KEYWORDS) {
            d = d.with_help(format!("did you mean `{kw}`?"));
        } else if matches!(slice.get(1).map(|t| &t.tok), Some(Tok::LParen | Tok::Semi)) {
            d = d.with_help("statements go inside a route block: `route { … }`");
        } else if slice.len() > 1 {
            d = d.with_help(format!("a global parameter is written `{word} = value`"));
        }
    }
    if let Some(end) = prev_block_end {
        if matches!(first.tok, Tok::Ident(_) | Tok::PVar(_) | Tok::If | Tok::Exit | Tok::Return | Tok::Drop) {
            d = d.with_secondary(end, "the block above ends here; is this `}` one too many?");
        }
    }
    d
}

/// "Did you mean" among `candidates`: the closest within a small edit distance.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .filter(|c| **c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).clamp(1, 3))
        .min()
        .map(|(_, c)| c)
}

// ---------------------------------------------------------------- one item

type Recovery = ErrorRecovery<usize, Tok, ()>;
type Error = ParseError<usize, Tok, ()>;

fn parse_item(toks: Vec<Token>, sources: &SourceMap, diags: &mut Vec<Diagnostic>) -> Item {
    let (item, found, ok) = attempt(toks.clone(), sources);
    if !ok && toks.iter().any(|t| matches!(t.tok, Tok::Pipe | Tok::Amp)) {
        // SER and OpenSER 0.9–1.1 read `|` and `&` as `||` and `&&`.
        let mut logical = toks.clone();
        let mut first = None;
        for t in logical.iter_mut() {
            let new = match t.tok {
                Tok::Pipe => Tok::Or,
                Tok::Amp => Tok::And,
                _ => continue,
            };
            first.get_or_insert((t.span, t.tok.text()));
            t.tok = new;
        }
        let (item2, found2, ok2) = attempt(logical, sources);
        if ok2 {
            if let Some((span, op)) = first {
                let logical_op = if op == "|" { "||" } else { "&&" };
                diags.push(
                    Diagnostic::warning(
                        Kind::DialectAmbiguity,
                        span,
                        format!("`{op}` is read as `{logical_op}` here, as SER and OpenSER 0.9–1.1 read it"),
                    )
                    .with_label(format!("logical, not bitwise `{op}`"))
                    .with_note(format!("OpenSER 1.2 and later read `{op}` as a bitwise operator, which makes this a syntax error there"))
                    .with_help(format!("write `{logical_op}`")),
                );
            }
            diags.extend(found2);
            return item2;
        }
    }
    diags.extend(found);
    item
}

/// Parses one item, repairing common slips; returns the item, its
/// diagnostics, and whether it read without error.
fn attempt(mut toks: Vec<Token>, sources: &SourceMap) -> (Item, Vec<Diagnostic>, bool) {
    let parser = grammar::ItemParser::new();
    let mut diags = Vec::new();
    let mut repairs = 0;
    // Lines where the lexer rejected text: a parse error there or on the next
    // line is most likely the same mistake, already reported.
    let lexer_errors: Vec<(crate::source::FileId, u32)> =
        toks.iter().filter(|t| t.tok == Tok::Error).map(|t| (t.span.file, line_of(t.span))).collect();
    let after_lexer_error = |d: &Diagnostic| {
        d.span.is_some_and(|s| lexer_errors.iter().any(|(f, l)| *f == s.file && (*l..=*l + 1).contains(&line_of(s))))
    };
    loop {
        let cx = Cx::new(&toks, sources);
        let result = parser.parse(&cx, toks.iter().enumerate().map(|(i, t)| Ok((i, t.tok.clone(), i + 1))));
        let recoveries = cx.recoveries.take();
        let first = recoveries.first().map(|r| &r.error).or(result.as_ref().err());
        if let Some(error) = first {
            if repairs < MAX_REPAIRS {
                if let Some(repair) = Repair::find(&toks, error) {
                    repairs += 1;
                    if let Some(d) = repair.diagnostic(&toks, sources) {
                        diags.push(d);
                    }
                    repair.apply(&mut toks);
                    continue;
                }
            }
        }
        for r in &recoveries {
            if let Some(d) = error_diagnostic(&toks, &r.error, sources) {
                if !after_lexer_error(&d) {
                    diags.push(d);
                }
            }
        }
        diags.extend(cx.diags.into_inner());
        let clean = repairs == 0 && recoveries.is_empty() && result.is_ok() && !diags.iter().any(Diagnostic::is_error);
        let item = match result {
            Ok(item) => item,
            Err(e) => {
                if let Some(d) = error_diagnostic(&toks, &e, sources) {
                    if !after_lexer_error(&d) {
                        diags.push(d);
                    }
                }
                Item { kind: ItemKind::Error, span: toks[0].span.to(toks[toks.len() - 1].span) }
            }
        };
        return (item, diags, clean);
    }
}

/// A small edit that turns a common slip into valid text.
enum Repair {
    /// Insert `tok` before token `at` (after token `at - 1`).
    Insert { at: usize, tok: Tok },
    /// Remove a token the lexer already reported.
    Remove { at: usize },
    /// Remove a line that is not a statement (`from..to`).
    RemoveLine { from: usize, to: usize },
}

impl Repair {
    fn find(toks: &[Token], error: &Error) -> Option<Repair> {
        let (at, found, expected) = match error {
            ParseError::UnrecognizedToken { token: (l, tok, _), expected } => (*l, Some(tok), expected),
            ParseError::UnrecognizedEof { expected, .. } => (toks.len(), None, expected),
            _ => return None,
        };
        if found == Some(&Tok::Error) {
            return Some(Repair::Remove { at });
        }
        let expects = |name: &str| expected.iter().any(|e| e.trim_matches('"') == name);
        if at == 0 {
            return None;
        }
        let prev = &toks[at - 1];
        let next_line = match toks.get(at) {
            Some(t) => t.span.file != prev.span.file || line_of(t.span) > line_of(prev.span),
            None => true,
        };
        let in_block = brace_depth(toks, at) > 0;
        // `t_relay()` ⏎ `exit;` or `t_relay() }`
        let ends_statement = matches!(
            prev.tok,
            Tok::RParen
                | Tok::Ident(_)
                | Tok::Int(_)
                | Tok::Str(_)
                | Tok::PVar(_)
                | Tok::Ip(_)
                | Tok::Net(..)
                | Tok::Select(_)
                | Tok::Exit
                | Tok::Drop
                | Tok::Return
                | Tok::Break
        );
        if in_block && ends_statement && expects(";") && (next_line || matches!(found, Some(Tok::RBrace))) {
            return Some(Repair::Insert { at, tok: Tok::Semi });
        }
        // `if (a == b {`, `f("x";`
        if expects(")") && matches!(found, Some(Tok::LBrace | Tok::Semi)) {
            return Some(Repair::Insert { at, tok: Tok::RParen });
        }
        // A line of stray words inside a block (`foo bar`): drop the line.
        if in_block && found.is_some() {
            let start = toks[..at]
                .iter()
                .rposition(|t| matches!(t.tok, Tok::Semi | Tok::LBrace | Tok::RBrace))
                .map_or(0, |i| i + 1);
            let line = line_of(toks[start].span);
            let same_line = |t: &Token| t.span.file == toks[start].span.file && line_of(t.span) == line;
            let end = (at..toks.len()).find(|&i| !same_line(&toks[i])).unwrap_or(toks.len());
            let plain = toks[start..end].iter().all(|t| !matches!(t.tok, Tok::Semi | Tok::LBrace | Tok::RBrace));
            let starts_line = start == 0 || !same_line(&toks[start - 1]);
            if start < at && same_line(&toks[at]) && plain && starts_line && end < toks.len() {
                return Some(Repair::RemoveLine { from: start, to: end });
            }
        }
        None
    }

    fn apply(self, toks: &mut Vec<Token>) {
        match self {
            Repair::Insert { at, tok } => {
                let span = toks[at - 1].span.end_point();
                toks.insert(at, Token { tok, span });
            }
            Repair::Remove { at } => {
                toks.remove(at);
            }
            Repair::RemoveLine { from, to } => {
                toks.drain(from..to);
            }
        }
    }

    fn diagnostic(&self, toks: &[Token], sources: &SourceMap) -> Option<Diagnostic> {
        match self {
            Repair::Remove { .. } => None, // the lexer reported it
            Repair::RemoveLine { from, to } => {
                let span = toks[*from].span.to(toks[to - 1].span);
                let text = sources.snippet(span);
                let mut d = Diagnostic::error(Kind::Syntax, span, format!("`{text}` is not a statement"))
                    .with_label("expected a function call, an assignment or a keyword statement");
                if let Tok::Ident(word) = &toks[*from].tok {
                    if let Some(kw) = did_you_mean(word, KEYWORDS) {
                        d = d.with_help(format!("did you mean `{kw}`?"));
                    }
                }
                Some(d)
            }
            Repair::Insert { at, tok: Tok::Semi } => {
                let prev = &toks[at - 1];
                let what = statement_text(toks, at - 1, sources);
                let mut d =
                    Diagnostic::error(Kind::Syntax, prev.span.end_point(), format!("expected `;` after {what}"))
                        .with_label("add `;` here");
                if let Some(next) = toks.get(*at) {
                    if line_of(next.span) == line_of(prev.span) {
                        d = d.with_secondary(next.span, format!("found {}", next.tok));
                    }
                }
                Some(d.with_note("every statement in a route ends with `;`"))
            }
            Repair::Insert { at, tok: Tok::RParen } => {
                let next = &toks[*at];
                let mut d = Diagnostic::error(
                    Kind::Syntax,
                    toks[at - 1].span.end_point(),
                    format!("expected `)` before {}", next.tok),
                )
                .with_label("add `)` here");
                if let Some(open) = unmatched_open_paren(toks, *at) {
                    d = d.with_secondary(toks[open].span, "to close this `(`");
                }
                Some(d)
            }
            Repair::Insert { .. } => None,
        }
    }
}

fn line_of(span: Span) -> u32 {
    // Only compared within one file: the byte offset of the line is enough, but we
    // have no SourceMap here; count on tokens' starts being ordered. Lines are
    // compared through the newline count up to the span.
    LINE_CACHE.with(|c| c.borrow().line(span))
}

thread_local! {
    static LINE_CACHE: RefCell<LineCache> = RefCell::new(LineCache::default());
}

/// Line starts of the files being parsed (set by `with_lines`).
#[derive(Default)]
struct LineCache {
    files: Vec<Vec<u32>>,
}

impl LineCache {
    fn line(&self, span: Span) -> u32 {
        match self.files.get(span.file.0 as usize) {
            Some(starts) => starts.partition_point(|&s| s <= span.start) as u32,
            None => 0,
        }
    }
}

/// Runs `f` with the line starts of every file in `sources` available to `line_of`.
pub fn with_lines<R>(sources: &SourceMap, f: impl FnOnce() -> R) -> R {
    let files = sources
        .files()
        .map(|(_, file)| {
            let mut starts = vec![0u32];
            starts.extend(file.text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i as u32 + 1));
            starts
        })
        .collect();
    let old = LINE_CACHE.with(|c| std::mem::replace(&mut *c.borrow_mut(), LineCache { files }));
    let r = f();
    LINE_CACHE.with(|c| *c.borrow_mut() = old);
    r
}

/// How to name the statement ending at token `end` in a message: `` `t_relay()` ``.
fn statement_text(toks: &[Token], end: usize, sources: &SourceMap) -> String {
    let mut start = toks[..end]
        .iter()
        .rposition(|t| matches!(t.tok, Tok::Semi | Tok::LBrace | Tok::RBrace | Tok::Colon | Tok::Else))
        .map_or(0, |i| i + 1);
    // A call ending the statement: name it alone (`if (x) route(1)` → `route(1)`).
    if toks[end].tok == Tok::RParen {
        if let Some(open) = unmatched_open_paren(toks, end) {
            if open > start && matches!(toks[open - 1].tok, Tok::Ident(_) | Tok::RouteKw(_)) {
                start = open - 1;
            }
        }
    }
    let span = toks[start].span.to(toks[end].span);
    let text = sources.snippet(span);
    if text.len() <= 40 && !text.contains('\n') && span.file == toks[end].span.file {
        format!("`{text}`")
    } else {
        toks[end].tok.describe()
    }
}

fn unmatched_open_paren(toks: &[Token], before: usize) -> Option<usize> {
    let mut depth = 0i32;
    for j in (0..before).rev() {
        match toks[j].tok {
            Tok::RParen => depth += 1,
            Tok::LParen if depth == 0 => return Some(j),
            Tok::LParen => depth -= 1,
            Tok::LBrace | Tok::RBrace | Tok::Semi => return None,
            _ => {}
        }
    }
    None
}

fn brace_depth(toks: &[Token], at: usize) -> i32 {
    toks[..at.min(toks.len())].iter().fold(0i32, |d, t| match t.tok {
        Tok::LBrace => d + 1,
        Tok::RBrace => d - 1,
        _ => d,
    })
}

fn error_diagnostic(toks: &[Token], error: &Error, _sources: &SourceMap) -> Option<Diagnostic> {
    let (span, found, expected) = match error {
        ParseError::UnrecognizedToken { token: (l, tok, _), expected } => {
            if *tok == Tok::Error {
                return None;
            }
            // Text after a complete top-level item, on a new line: say what may come next.
            if *l > 0 && brace_depth(toks, *l) == 0 && line_of(toks[*l].span) > line_of(toks[*l - 1].span) {
                return Some(junk_item(&toks[*l..], None));
            }
            (toks[*l].span, tok.describe(), expected)
        }
        ParseError::UnrecognizedEof { expected, .. } => {
            (toks[toks.len() - 1].span.end_point(), "the end of the item".to_string(), expected)
        }
        ParseError::InvalidToken { location } => (toks[*location].span, "invalid text".to_string(), &Vec::new()),
        ParseError::ExtraToken { token: (l, tok, _) } => (toks[*l].span, tok.describe(), &Vec::new()),
        ParseError::User { .. } => return None,
    };
    let mut d =
        Diagnostic::error(Kind::Syntax, span, format!("expected {}, found {found}", describe_expected(expected)));
    if let Some(Tok::Ident(word)) = toks.iter().find(|t| t.span == span).map(|t| &t.tok) {
        if let Some(kw) = did_you_mean(word, KEYWORDS) {
            d = d.with_help(format!("did you mean `{kw}`?"));
        }
    }
    Some(d.with_label("unexpected here"))
}

/// Names what the grammar expected in words a config author knows.
fn describe_expected(expected: &[String]) -> String {
    let names: Vec<&str> = expected.iter().map(|e| e.trim_matches('"')).filter(|e| *e != "error_token").collect();
    let has = |n: &str| names.contains(&n);
    if has("if") && has("pvar") {
        return "a statement".to_string();
    }
    if has("pvar") && has("(") && has("int") {
        return "an expression".to_string();
    }
    if has("setting") && has("loadmodule") {
        return "a global parameter, `loadmodule`, `modparam` or a route block".to_string();
    }
    let words: Vec<String> = names
        .iter()
        .map(|n| match *n {
            "ident" => "a name".to_string(),
            "string" => "a string".to_string(),
            "int" => "a number".to_string(),
            "pvar" => "a pseudo-variable".to_string(),
            "ip" => "an IP address".to_string(),
            "net" => "a network".to_string(),
            "setting" => "a global parameter".to_string(),
            "route_kw" => "`route`".to_string(),
            "tls_domain" => "a TLS domain".to_string(),
            other => format!("`{other}`"),
        })
        .collect();
    match words.len() {
        0 => "something else".to_string(),
        1 => words[0].clone(),
        2 => format!("{} or {}", words[0], words[1]),
        n if n <= 6 => format!("one of {}", words.join(", ")),
        _ => format!("one of {}, …", words[..5].join(", ")),
    }
}

// ---------------------------------------------------------------- grammar context

/// What the grammar's actions see: the item's tokens (locations index them) and
/// a place for the diagnostics they raise.
pub struct Cx<'t> {
    toks: &'t [Token],
    sources: &'t SourceMap,
    diags: RefCell<Vec<Diagnostic>>,
    recoveries: RefCell<Vec<Recovery>>,
}

impl<'t> Cx<'t> {
    fn new(toks: &'t [Token], sources: &'t SourceMap) -> Self {
        Cx { toks, sources, diags: RefCell::new(Vec::new()), recoveries: RefCell::new(Vec::new()) }
    }

    fn report(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }

    pub fn recovered(&self, e: Recovery) {
        self.recoveries.borrow_mut().push(e);
    }

    /// The span of tokens `l..r`.
    pub fn span(&self, l: usize, r: usize) -> Span {
        let n = self.toks.len();
        if n == 0 {
            return Span::new(crate::source::FileId(0), 0, 0);
        }
        if r > l {
            self.toks[l.min(n - 1)].span.to(self.toks[(r - 1).min(n - 1)].span)
        } else if l < n {
            let s = self.toks[l].span;
            Span { end: s.start, ..s }
        } else {
            self.toks[n - 1].span.end_point()
        }
    }

    /// A block without its null statements.
    pub fn block(&self, l: usize, r: usize, mut stmts: Vec<Stmt>) -> Block {
        stmts.retain(|s| s.kind != StmtKind::Null);
        Block { stmts, span: self.span(l, r) }
    }

    pub fn item(&self, l: usize, r: usize, kind: ItemKind) -> Item {
        Item { kind, span: self.span(l, r) }
    }

    pub fn stmt(&self, l: usize, r: usize, kind: StmtKind) -> Stmt {
        Stmt { kind, span: self.span(l, r) }
    }

    pub fn expr(&self, l: usize, r: usize, kind: ExprKind) -> Expr {
        Expr { kind, span: self.span(l, r) }
    }

    pub fn ident(&self, l: usize, r: usize, name: String) -> Ident {
        Ident { name, span: self.span(l, r) }
    }

    pub fn binary(&self, l: usize, r: usize, op: BinaryOp, a: Expr, b: Expr) -> Expr {
        self.expr(l, r, ExprKind::Binary { op, lhs: Box::new(a), rhs: Box::new(b) })
    }

    pub fn unary(&self, l: usize, r: usize, op: UnaryOp, e: Expr) -> Expr {
        self.expr(l, r, ExprKind::Unary { op, expr: Box::new(e) })
    }

    /// `if (x)`: the parentheses belong to the `if`, not to the condition.
    pub fn unparen(&self, e: Expr) -> Expr {
        match e.kind {
            ExprKind::Paren(inner) => *inner,
            _ => e,
        }
    }

    fn block_of(stmt: Stmt) -> Block {
        match stmt.kind {
            StmtKind::Block(b) => b,
            StmtKind::Null => Block { span: stmt.span, stmts: Vec::new() },
            _ => Block { span: stmt.span, stmts: vec![stmt] },
        }
    }

    pub fn if_stmt(&self, l: usize, r: usize, cond: Expr, then: Stmt, otherwise: Option<Stmt>) -> Stmt {
        self.stmt(
            l,
            r,
            StmtKind::If {
                cond: self.unparen(cond),
                then: Self::block_of(then),
                otherwise: otherwise.map(Self::block_of),
            },
        )
    }

    pub fn while_stmt(&self, l: usize, r: usize, cond: Expr, body: Stmt) -> Stmt {
        self.stmt(l, r, StmtKind::While { cond: self.unparen(cond), body: Self::block_of(body) })
    }

    fn keyword_text(&self, kw: usize) -> &str {
        self.sources.snippet(self.toks[kw].span)
    }

    pub fn route(&self, l: usize, r: usize, kw: usize, head: Option<(RouteName, Option<IntLit>)>, body: Block) -> Item {
        let Tok::RouteKw(rtype) = self.toks[kw].tok else { unreachable!("grammar: route_kw") };
        let keyword = Ident { name: self.keyword_text(kw).to_string(), span: self.toks[kw].span };
        let (name, interval) = match head {
            Some((name, interval)) => (Some(name), interval),
            None => (None, None),
        };
        let span = self.span(l, r);
        self.item(l, r, ItemKind::Route(Route { rtype, keyword, name, interval, body, span }))
    }

    pub fn unknown_block(
        &self,
        l: usize,
        r: usize,
        name: Ident,
        head: Option<(RouteName, Option<IntLit>)>,
        body: Block,
    ) -> Item {
        const BLOCKS: &[&str] = &[
            "route",
            "request_route",
            "failure_route",
            "onreply_route",
            "reply_route",
            "branch_route",
            "error_route",
            "event_route",
            "onsend_route",
            "startup_route",
            "timer_route",
            "local_route",
        ];
        let guess = did_you_mean(&name.name, BLOCKS);
        let mut d = Diagnostic::error(Kind::Syntax, name.span, format!("unknown block type `{}`", name.name))
            .with_label("not a route block keyword");
        match guess {
            Some(g) => d = d.with_help(format!("did you mean `{g}`?")),
            None => {
                d = d.with_note(
                    "route blocks are `route`, `failure_route`, `onreply_route`, `branch_route` and `error_route`",
                )
            }
        }
        self.report(d);
        match guess.and_then(super::token::keyword) {
            Some(Tok::RouteKw(rtype)) => {
                let (name_, interval) = match head {
                    Some((n, i)) => (Some(n), i),
                    None => (None, None),
                };
                let span = self.span(l, r);
                self.item(l, r, ItemKind::Route(Route { rtype, keyword: name, name: name_, interval, body, span }))
            }
            _ => self.item(l, r, ItemKind::Error),
        }
    }

    pub fn route_name(&self, l: usize, r: usize) -> RouteName {
        let span = self.span(l, r);
        if r == l + 1 {
            match &self.toks[l].tok {
                Tok::Int(n) => return RouteName::Number(*n, span),
                Tok::Str(s) => return RouteName::Name(s.clone(), span),
                _ => {}
            }
        }
        let text: String = self.sources.snippet(span).split_whitespace().collect();
        RouteName::Name(text, span)
    }

    pub fn route_call_stmt(&self, l: usize, r: usize, kw: usize, target: RouteName) -> Stmt {
        self.check_route_call(kw);
        self.stmt(l, r, StmtKind::RouteCall(target))
    }

    pub fn route_call_expr(&self, l: usize, r: usize, kw: usize, target: RouteName) -> Expr {
        self.check_route_call(kw);
        self.expr(l, r, ExprKind::RouteCall(target))
    }

    fn check_route_call(&self, kw: usize) {
        let text = self.keyword_text(kw);
        if text != "route" {
            self.report(
                Diagnostic::error(Kind::Syntax, self.toks[kw].span, format!("`{text}(…)` is not a statement"))
                    .with_help("sub-routes are called with `route(N)`; use `t_on_failure(\"N\")` and the like to arm the other route types"),
            );
        }
    }

    pub fn desc(&self, word: Ident, s: StrLit) -> StrLit {
        if word.name != "desc" {
            self.report(
                Diagnostic::error(
                    Kind::Syntax,
                    word.span,
                    format!("expected `desc` or a new line, found `{}`", word.name),
                )
                .with_note("a custom parameter reads `group.name = value desc \"description\"`"),
            );
        }
        s
    }

    pub fn socket(&self, l: usize, r: usize, first: Host, rest: Vec<SockPart>) -> Socket {
        let span = self.span(l, r);
        if rest.iter().any(|p| matches!(p, SockPart::Block)) {
            return Socket { proto: None, host: Host::Name(RAW_BLOCK.to_string(), span), port: None, span };
        }
        let rest: Vec<(Option<Host>, Option<IntLit>)> = rest
            .into_iter()
            .map(|p| match p {
                SockPart::Host(h) => (Some(h), None),
                SockPart::Port(i) => (None, Some(i)),
                SockPart::Block => (None, None),
            })
            .collect();
        let bad = |msg: &str| {
            self.report(
                Diagnostic::error(Kind::Syntax, span, msg.to_string())
                    .with_help("a socket is written `[proto:]host[:port]`, e.g. `udp:10.0.0.1:5060`"),
            );
        };
        let proto_of = |h: Host| -> Option<Ident> {
            match h {
                Host::Name(name, span) => {
                    let known = ["udp", "tcp", "tls", "sctp", "ws", "wss", "any"];
                    if !known.contains(&name.to_ascii_lowercase().as_str()) {
                        self.report(
                            Diagnostic::error(Kind::Syntax, span, format!("unknown transport `{name}`"))
                                .with_note("transports are `udp`, `tcp`, `tls` and `sctp`"),
                        );
                    }
                    Some(Ident { name, span })
                }
                Host::Ip(_, span) => {
                    self.report(Diagnostic::error(
                        Kind::Syntax,
                        span,
                        "expected a transport (`udp`, `tcp` …) before `:`",
                    ));
                    None
                }
            }
        };
        let mut rest = rest.into_iter();
        match (rest.next(), rest.next(), rest.next()) {
            (None, ..) => Socket { proto: None, host: first, port: None, span },
            (Some((None, port)), None, _) => Socket { proto: None, host: first, port, span },
            (Some((Some(host), _)), None, _) => Socket { proto: proto_of(first), host, port: None, span },
            (Some((Some(host), _)), Some((None, port)), None) => Socket { proto: proto_of(first), host, port, span },
            _ => {
                bad("this is not a socket");
                Socket { proto: None, host: first, port: None, span }
            }
        }
    }

    /// A global's value read as sockets; `name:{…}` lists stay raw.
    pub fn sockets_value(&self, l: usize, r: usize, sockets: Vec<Socket>) -> GlobalValue {
        if sockets.iter().any(|s| matches!(&s.host, Host::Name(n, _) if n == RAW_BLOCK)) {
            return GlobalValue::Raw(self.span(l, r));
        }
        GlobalValue::Sockets(sockets)
    }

    pub fn socket_arg(&self, l: usize, r: usize) -> Expr {
        let span = self.span(l, r);
        let text: String = self.sources.snippet(span).split_whitespace().collect();
        self.expr(l, r, ExprKind::Word(text))
    }
}
