//! The preprocessor: Kamailio's `#!define`/`#!ifdef` family, `#!subst`, and
//! `include_file`/`import_file`, applied while tokens are read, so the parser sees
//! one flat token stream whose spans still name the file each token came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::dialect::Dialect;
use super::lexer::{Lexed, Lexer};
use super::token::{Tok, Token};
use super::{FileLoader, ParseOptions};
use crate::diag::{Diagnostic, Kind};
use crate::source::{FileId, SourceFile, SourceMap, Span};

/// Includes nest at most this deep.
const MAX_INCLUDE_DEPTH: usize = 16;
/// A define's value is expanded again at most this deep (`#!define A B`, `#!define B 1`).
const MAX_DEFINE_DEPTH: usize = 8;

/// The token stream of a config and what the preprocessor learnt about it.
#[derive(Debug, Default)]
pub struct Tokens {
    pub toks: Vec<Token>,
    /// A dialect the file declares (`#!KAMAILIO`, `#!OPENSIPS`), where.
    pub declared: Option<(Dialect, Span)>,
    /// The first preprocessor directive used (it shows a Kamailio file).
    pub first_directive: Option<Span>,
}

struct Define {
    value: Option<String>,
}

struct Subst {
    re: Regex,
    replacement: String,
    global: bool,
}

struct CondFrame {
    /// This branch's text is read.
    active: bool,
    /// The enclosing text is read.
    parent_active: bool,
    seen_else: bool,
    span: Span,
}

struct Frame {
    file: FileId,
    /// `import_file` and `include_file` nest; this is the chain for cycle messages.
    path: PathBuf,
}

struct Pre<'a> {
    sources: &'a mut SourceMap,
    loader: &'a dyn FileLoader,
    diags: &'a mut Vec<Diagnostic>,
    /// Directives are read (else `#!` lines are comments, as in OpenSER and OpenSIPS).
    directives: bool,
    defines: HashMap<String, Define>,
    substs: Vec<Subst>,
    conds: Vec<CondFrame>,
    out: Tokens,
    warned_directives: bool,
}

/// Reads the main file and everything it includes into one token stream.
pub fn expand(
    main: FileId,
    sources: &mut SourceMap,
    opts: &ParseOptions,
    loader: &dyn FileLoader,
    diags: &mut Vec<Diagnostic>,
) -> Tokens {
    let directives = !matches!(opts.dialect, Some(Dialect::OpenSer13 | Dialect::Ser09 | Dialect::OpenSips));
    let mut pre = Pre {
        sources,
        loader,
        diags,
        directives,
        defines: HashMap::new(),
        substs: Vec::new(),
        conds: Vec::new(),
        out: Tokens::default(),
        warned_directives: false,
    };
    for (name, value) in &opts.defines {
        pre.defines.insert(name.clone(), Define { value: value.clone() });
    }
    let path = pre.sources.get(main).path.clone();
    pre.file(Frame { file: main, path }, &mut Vec::new());
    for frame in pre.conds.drain(..).rev() {
        pre.diags.push(
            Diagnostic::error(Kind::Preprocessor, frame.span, "this conditional block is never closed")
                .with_help("add `#!endif`"),
        );
    }
    pre.out
}

impl Pre<'_> {
    fn active(&self) -> bool {
        self.conds.last().is_none_or(|c| c.active)
    }

    /// Reads one file; `chain` holds the files that include it (for cycles).
    fn file(&mut self, frame: Frame, chain: &mut Vec<PathBuf>) {
        let text = self.sources.get(frame.file).text.clone();
        let mut lx = Lexer::new(&text, frame.file);
        lx.directives = true;
        chain.push(frame.path.clone());
        let mut pending: Option<Lexed> = None;
        loop {
            let item = match pending.take() {
                Some(item) => item,
                None if self.active() => match lx.next(self.diags) {
                    Some(item) => item,
                    None => break,
                },
                None => {
                    // In a false branch only directives matter; the text may be
                    // another dialect's and is not lexed.
                    let mut scratch = Vec::new();
                    match lx.next_directive_line(&mut scratch) {
                        Some(item) => item,
                        None => break,
                    }
                }
            };
            match item {
                Lexed::Directive { name, name_span, rest, rest_span, span } => {
                    self.directive(&name, name_span, &rest, rest_span, span, &frame, chain);
                }
                Lexed::Token(tok) => {
                    if let Tok::Ident(word) = &tok.tok {
                        if word == "include_file" || word == "import_file" {
                            let must_exist = word == "include_file";
                            match lx.next(self.diags) {
                                Some(Lexed::Token(Token { tok: Tok::Str(path), span: path_span })) => {
                                    self.include(&path, path_span, tok.span.to(path_span), must_exist, &frame, chain);
                                }
                                other => {
                                    self.diags.push(
                                        Diagnostic::error(
                                            Kind::Preprocessor,
                                            tok.span,
                                            format!("expected a quoted file name after `{word}`"),
                                        )
                                        .with_help(format!("write `{word} \"other.cfg\"`")),
                                    );
                                    pending = other;
                                }
                            }
                            continue;
                        }
                    }
                    self.emit(tok, 0);
                }
            }
        }
        chain.pop();
    }

    /// Appends a token, expanding defines and applying `#!subst` to strings.
    fn emit(&mut self, mut tok: Token, depth: usize) {
        match &mut tok.tok {
            Tok::Ident(word) if self.directives => {
                if let Some(Define { value: Some(value) }) = self.defines.get(word.as_str()) {
                    if depth >= MAX_DEFINE_DEPTH {
                        self.diags.push(
                            Diagnostic::error(Kind::Preprocessor, tok.span, format!("`{word}` expands into itself"))
                                .with_note(format!("defines are expanded at most {MAX_DEFINE_DEPTH} levels deep")),
                        );
                        return;
                    }
                    let value = value.clone();
                    let mut diags = Vec::new();
                    let toks = super::lexer::lex_all(&value, tok.span.file, &mut diags);
                    if !diags.is_empty() {
                        self.diags.push(
                            Diagnostic::error(
                                Kind::Preprocessor,
                                tok.span,
                                format!("the value of `{word}` is not valid cfg text: {}", diags[0].message),
                            )
                            .with_note(format!("`{word}` is defined as `{value}`")),
                        );
                    }
                    for mut t in toks {
                        t.span = tok.span;
                        self.emit(t, depth + 1);
                    }
                    return;
                }
            }
            Tok::Str(s) if !self.substs.is_empty() => {
                for sub in &self.substs {
                    let replaced = if sub.global {
                        sub.re.replace_all(s, sub.replacement.as_str())
                    } else {
                        sub.re.replace(s, sub.replacement.as_str())
                    };
                    if let std::borrow::Cow::Owned(r) = replaced {
                        *s = r;
                    }
                }
            }
            _ => {}
        }
        self.out.toks.push(tok);
    }

    #[allow(clippy::too_many_arguments)]
    fn directive(
        &mut self,
        name: &str,
        name_span: Span,
        rest: &str,
        rest_span: Span,
        span: Span,
        frame: &Frame,
        chain: &mut Vec<PathBuf>,
    ) {
        let declared = match name {
            "KAMAILIO" | "OPENSER" | "SER" | "ALL" | "MAXCOMPAT" => Some(Dialect::Kamailio),
            "OPENSIPS" => Some(Dialect::OpenSips),
            _ => None,
        };
        if let Some(d) = declared {
            if self.out.declared.is_none() {
                self.out.declared = Some((d, span));
            }
            return;
        }
        let known = matches!(
            name,
            "define"
                | "trydef"
                | "redefine"
                | "undef"
                | "ifdef"
                | "ifndef"
                | "else"
                | "endif"
                | "subst"
                | "substdef"
                | "substdefs"
                | "include_file"
                | "import_file"
                | "trydefenv"
                | "defenv"
                | "defenvs"
                | "ifexp"
                | "defexp"
                | "defexps"
        );
        if !known {
            if !name.is_empty() && self.active() && self.directives {
                let hint = strsim_best(name, DIRECTIVES);
                let mut d = Diagnostic::warning(
                    Kind::Preprocessor,
                    name_span,
                    format!("unknown preprocessor directive `#!{name}`; the line is read as a comment"),
                );
                if let Some(h) = hint {
                    d = d.with_help(format!("did you mean `#!{h}`?"));
                }
                self.diags.push(d);
            }
            return;
        }
        if !self.directives {
            if !self.warned_directives {
                self.warned_directives = true;
                self.diags.push(
                    Diagnostic::warning(
                        Kind::DialectAmbiguity,
                        span,
                        format!("`#!{name}` is a Kamailio preprocessor directive; this dialect reads it as a comment"),
                    )
                    .with_note("OpenSER and OpenSIPS 1.x have no preprocessor: every `#!` line is a comment there")
                    .with_help("use `--dialect kamailio` if this file is written for Kamailio"),
                );
            }
            return;
        }
        if self.out.first_directive.is_none() {
            self.out.first_directive = Some(span);
        }
        let mut words = rest.split_whitespace();
        let first = words.next();
        let arg_span = |w: &str| -> Span {
            let off = rest.find(w).unwrap_or(0);
            Span::new(rest_span.file, rest_span.start as usize + off, rest_span.start as usize + off + w.len())
        };
        match name {
            "ifdef" | "ifndef" => {
                let parent_active = self.active();
                let Some(id) = first else {
                    self.diags.push(Diagnostic::error(Kind::Preprocessor, span, format!("`#!{name}` needs a name")));
                    self.conds.push(CondFrame { active: false, parent_active, seen_else: false, span });
                    return;
                };
                let defined = self.defines.contains_key(id);
                let cond = if name == "ifdef" { defined } else { !defined };
                self.conds.push(CondFrame { active: parent_active && cond, parent_active, seen_else: false, span });
            }
            "else" => match self.conds.last_mut() {
                Some(frame) if !frame.seen_else => {
                    frame.seen_else = true;
                    frame.active = frame.parent_active && !frame.active;
                }
                Some(frame) => {
                    let open = frame.span;
                    self.diags.push(
                        Diagnostic::error(Kind::Preprocessor, span, "a second `#!else` for one conditional")
                            .with_secondary(open, "the conditional starts here"),
                    );
                }
                None => self.diags.push(Diagnostic::error(Kind::Preprocessor, span, "`#!else` without `#!ifdef`")),
            },
            "endif" => {
                if self.conds.pop().is_none() {
                    self.diags.push(Diagnostic::error(Kind::Preprocessor, span, "`#!endif` without `#!ifdef`"));
                }
            }
            _ if !self.active() => {}
            "define" | "trydef" | "redefine" => {
                let Some(id) = first else {
                    self.diags.push(Diagnostic::error(Kind::Preprocessor, span, format!("`#!{name}` needs a name")));
                    return;
                };
                if id.contains('(') {
                    self.diags.push(
                        Diagnostic::error(
                            Kind::Preprocessor,
                            arg_span(id),
                            "defines with parameters are not supported",
                        )
                        .with_help("define a plain value, or write the text out"),
                    );
                    return;
                }
                let value = rest.trim_start()[id.len()..].trim();
                let value = (!value.is_empty()).then(|| value.to_string());
                if name == "trydef" && self.defines.contains_key(id) {
                    return;
                }
                if name == "define" && self.defines.contains_key(id) {
                    self.diags.push(
                        Diagnostic::warning(Kind::Preprocessor, arg_span(id), format!("`{id}` is already defined"))
                            .with_help("use `#!redefine` to change a value, or `#!trydef` to keep the first one"),
                    );
                }
                self.defines.insert(id.to_string(), Define { value });
            }
            "undef" => {
                if let Some(id) = first {
                    self.defines.remove(id);
                }
            }
            "subst" | "substdef" | "substdefs" => self.subst(name, rest.trim(), rest_span),
            "include_file" | "import_file" => {
                let path = rest.trim().trim_matches(|c| c == '"' || c == '\'');
                self.include(path, rest_span, span, name == "include_file", frame, chain);
            }
            _ => self.diags.push(
                Diagnostic::warning(
                    Kind::Preprocessor,
                    name_span,
                    format!("`#!{name}` is not supported by serc; the line is ignored"),
                )
                .with_help("replace it with `#!define`"),
            ),
        }
    }

    /// `#!subst "/regex/replacement/flags"`; `#!substdef` also defines the matched
    /// text as a name whose value is the replacement.
    fn subst(&mut self, name: &str, arg: &str, span: Span) {
        let bad = |diags: &mut Vec<Diagnostic>, why: &str| {
            diags.push(
                Diagnostic::error(Kind::Preprocessor, span, format!("invalid `#!{name}`: {why}"))
                    .with_help(format!("write `#!{name} \"/regex/replacement/flags\"`")),
            );
        };
        let inner = arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')).unwrap_or(arg);
        let mut chars = inner.chars();
        let Some(delim) = chars.next() else {
            return bad(self.diags, "empty expression");
        };
        let parts: Vec<&str> = chars.as_str().split(delim).collect();
        if parts.len() < 3 {
            return bad(self.diags, "expected three parts separated by its first character");
        }
        let (pattern, replacement, flags) = (parts[0], parts[1], parts[2]);
        let re = match Regex::new(&if flags.contains('i') { format!("(?i){pattern}") } else { pattern.to_string() }) {
            Ok(re) => re,
            Err(e) => return bad(self.diags, &format!("bad regex: {}", e.to_string().lines().last().unwrap_or(""))),
        };
        if name != "subst" {
            self.defines.insert(pattern.to_string(), Define { value: Some(replacement.to_string()) });
        }
        // POSIX `\1` becomes the regex crate's `${1}`.
        let replacement =
            Regex::new(r"\\(\d)").map(|r| r.replace_all(replacement, "$${$1}").into_owned()).unwrap_or_default();
        self.substs.push(Subst { re, replacement, global: flags.contains('g') });
    }

    fn include(
        &mut self,
        path: &str,
        path_span: Span,
        span: Span,
        must_exist: bool,
        frame: &Frame,
        chain: &mut Vec<PathBuf>,
    ) {
        let resolved = resolve(&frame.path, path);
        if chain.iter().any(|p| same_file(p, &resolved)) {
            let cycle: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
            self.diags.push(
                Diagnostic::error(
                    Kind::Preprocessor,
                    path_span,
                    format!("`{path}` is already being read: an include cycle"),
                )
                .with_label("include cycle")
                .with_note(format!("include chain: {} → {}", cycle.join(" → "), resolved.display())),
            );
            return;
        }
        if chain.len() >= MAX_INCLUDE_DEPTH {
            self.diags.push(Diagnostic::error(
                Kind::Preprocessor,
                path_span,
                format!("includes nest more than {MAX_INCLUDE_DEPTH} deep"),
            ));
            return;
        }
        match self.loader.load(&resolved) {
            Ok(text) => {
                let id = self.sources.add(SourceFile::new(resolved.display().to_string(), resolved.clone(), text));
                self.file(Frame { file: id, path: resolved }, chain);
            }
            Err(e) if must_exist || e.kind() != std::io::ErrorKind::NotFound => {
                self.diags.push(
                    Diagnostic::error(Kind::Preprocessor, span, format!("cannot read `{}`: {e}", resolved.display()))
                        .with_note("included files are found relative to the file that includes them"),
                );
            }
            Err(_) => {}
        }
    }
}

const DIRECTIVES: &[&str] = &[
    "define",
    "trydef",
    "redefine",
    "undef",
    "ifdef",
    "ifndef",
    "else",
    "endif",
    "subst",
    "substdef",
    "include_file",
    "import_file",
];

fn strsim_best<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

fn resolve(including: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match including.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
