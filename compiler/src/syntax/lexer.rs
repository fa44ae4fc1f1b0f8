//! The lexer: the text of one file → tokens and preprocessor directives.
//!
//! It follows OpenSER 1.3's cfg.lex where the dialects agree: `#` comments to the
//! end of the line, nested `/* */` comments, `"…"` strings with C escapes (an
//! unknown escape keeps its backslash, so regexes survive), `'…'` strings with
//! none, pseudo-variables read as one token up to their closing parenthesis.
//! Lexer modes are local: a pseudo-variable, a string or an address is read by
//! its own small routine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ast::{NetMask, PVar, PVarIndex};
use super::token::{keyword, Tok, Token};
use crate::diag::{Diagnostic, Kind};
use crate::source::{FileId, Span};

/// What the lexer hands to the preprocessor.
#[derive(Debug)]
pub enum Lexed {
    Token(Token),
    /// `#!name rest…` or `!!name rest…`: `name` and the rest of the line (with
    /// `\`-continued lines joined).
    Directive {
        name: String,
        name_span: Span,
        rest: String,
        rest_span: Span,
        span: Span,
    },
}

pub struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    file: FileId,
    pos: usize,
    /// Read `#!…` lines as directives (else they are comments, as in OpenSER).
    pub directives: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str, file: FileId) -> Self {
        Lexer { text, bytes: text.as_bytes(), file, pos: 0, directives: true }
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    fn peek(&self) -> u8 {
        self.bytes.get(self.pos).copied().unwrap_or(0)
    }

    fn peek_at(&self, n: usize) -> u8 {
        self.bytes.get(self.pos + n).copied().unwrap_or(0)
    }

    fn bang_directive(&self) -> bool {
        let rest = &self.text[self.pos + 2..];
        let word_len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        BANG_DIRECTIVES.contains(&&rest[..word_len])
    }

    /// Skips to the next directive line (for text in a false `#!ifdef` branch):
    /// returns it, or `None` at the end of the file.
    pub fn next_directive_line(&mut self, diags: &mut Vec<Diagnostic>) -> Option<Lexed> {
        loop {
            if self.pos >= self.bytes.len() {
                return None;
            }
            let line_end = memchr_nl(self.bytes, self.pos);
            let line = &self.text[self.pos..line_end];
            let trimmed = line.trim_start();
            let start = self.pos + (line.len() - trimmed.len());
            if trimmed.starts_with("#!") || trimmed.starts_with("!!") {
                self.pos = start;
                return Some(self.directive(diags));
            }
            self.pos = (line_end + 1).min(self.bytes.len());
        }
    }

    /// The next token or directive; `None` at the end of the file.
    pub fn next(&mut self, diags: &mut Vec<Diagnostic>) -> Option<Lexed> {
        loop {
            self.skip_trivia(diags);
            if self.pos >= self.bytes.len() {
                return None;
            }
            let start = self.pos;
            let c = self.peek();
            // Directives: `#!` anywhere a token may start; `!!name` when a word follows.
            if self.directives
                && ((c == b'#' && self.peek_at(1) == b'!')
                    || (c == b'!' && self.peek_at(1) == b'!' && self.bang_directive()))
            {
                return Some(self.directive(diags));
            }
            // `#` comments; Kamailio's `//` too (never valid text in any dialect).
            if c == b'#' || (c == b'/' && self.peek_at(1) == b'/') {
                self.pos = memchr_nl(self.bytes, self.pos);
                continue;
            }
            let tok = self.token(diags);
            return Some(Lexed::Token(Token { tok, span: self.span(start, self.pos) }));
        }
    }

    fn skip_trivia(&mut self, diags: &mut Vec<Diagnostic>) {
        loop {
            match self.peek() {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0x08 if self.pos < self.bytes.len() => self.pos += 1,
                // A backslash before a line end continues the line.
                b'\\' if self.peek_at(1) == b'\n' => self.pos += 2,
                b'\\' if self.peek_at(1) == b'\r' && self.peek_at(2) == b'\n' => self.pos += 3,
                b'/' if self.peek_at(1) == b'*' => self.block_comment(diags),
                _ => return,
            }
        }
    }

    fn block_comment(&mut self, diags: &mut Vec<Diagnostic>) {
        let start = self.pos;
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            if self.peek() == b'/' && self.peek_at(1) == b'*' {
                depth += 1;
                self.pos += 2;
            } else if self.peek() == b'*' && self.peek_at(1) == b'/' {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        diags.push(
            Diagnostic::error(Kind::Syntax, self.span(start, start + 2), "unterminated comment")
                .with_label("this `/*` is never closed")
                .with_note("comments nest: each `/*` needs its own `*/`"),
        );
    }

    fn directive(&mut self, _diags: &mut Vec<Diagnostic>) -> Lexed {
        let start = self.pos;
        self.pos += 2;
        let name_start = self.pos;
        while self.peek().is_ascii_alphanumeric() || self.peek() == b'_' {
            self.pos += 1;
        }
        let name = self.text[name_start..self.pos].to_string();
        let name_span = self.span(name_start, self.pos);
        // The rest of the line, joining lines that end in a backslash.
        let rest_start = self.pos;
        let mut rest = String::new();
        loop {
            let end = memchr_nl(self.bytes, self.pos);
            let mut line = &self.text[self.pos..end];
            let line = {
                if let Some(l) = line.strip_suffix('\r') {
                    line = l;
                }
                line
            };
            if let Some(cont) = line.strip_suffix('\\') {
                rest.push_str(cont);
                rest.push(' ');
                self.pos = (end + 1).min(self.bytes.len());
                if self.pos >= self.bytes.len() {
                    break;
                }
            } else {
                rest.push_str(line);
                self.pos = end;
                break;
            }
        }
        let rest_span = self.span(rest_start, self.pos);
        Lexed::Directive { name, name_span, rest, rest_span, span: self.span(start, self.pos) }
    }

    fn token(&mut self, diags: &mut Vec<Diagnostic>) -> Tok {
        let c = self.peek();
        if let Some(tok) = self.address() {
            return tok;
        }
        match c {
            b'"' => return self.dq_string(diags),
            b'\'' => return self.sq_string(diags),
            b'$' => return self.pvar(diags),
            b'@' if self.peek_at(1).is_ascii_alphabetic() => return self.select(),
            b'(' => {
                if let Some(tok) = self.cast() {
                    return tok;
                }
            }
            b'0'..=b'9' => return self.number(diags),
            c if c.is_ascii_alphabetic() || c == b'_' => return self.word(),
            _ => {}
        }
        let two = [c, self.peek_at(1)];
        let tok2 = match &two {
            b"&&" => Some(Tok::And),
            b"||" => Some(Tok::Or),
            b"==" => Some(Tok::EqEq),
            b"!=" => Some(Tok::Ne),
            b"=~" => Some(Tok::Match),
            b"!~" => Some(Tok::NotMatch),
            b"<=" => Some(Tok::Le),
            b">=" => Some(Tok::Ge),
            b"<<" => Some(Tok::Shl),
            b">>" => Some(Tok::Shr),
            b":=" => Some(Tok::ColonEq),
            b"+=" => Some(Tok::PlusEq),
            b"-=" => Some(Tok::MinusEq),
            b"*=" => Some(Tok::StarEq),
            b"/=" => Some(Tok::SlashEq),
            b"%=" => Some(Tok::PercentEq),
            b"&=" => Some(Tok::AmpEq),
            b"|=" => Some(Tok::PipeEq),
            b"^=" => Some(Tok::CaretEq),
            _ => None,
        };
        if let Some(t) = tok2 {
            self.pos += 2;
            return t;
        }
        let tok1 = match c {
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'{' => Tok::LBrace,
            b'}' => Tok::RBrace,
            b'[' => Tok::LBrack,
            b']' => Tok::RBrack,
            b',' => Tok::Comma,
            b';' => Tok::Semi,
            b':' => Tok::Colon,
            b'.' => Tok::Dot,
            b'/' => Tok::Slash,
            b'-' => Tok::Minus,
            b'+' => Tok::Plus,
            b'*' => Tok::Star,
            b'%' => Tok::Percent,
            b'&' => Tok::Amp,
            b'|' => Tok::Pipe,
            b'^' => Tok::Caret,
            b'~' => Tok::Tilde,
            b'=' => Tok::Assign,
            b'<' => Tok::Lt,
            b'>' => Tok::Gt,
            b'!' => Tok::Not,
            _ => {
                // One diagnostic for a run of characters the language has no use for (`@@@`).
                let start = self.pos;
                let ch = self.text[self.pos..].chars().next().unwrap_or('\u{fffd}');
                let mut chars = 0;
                while let Some(c) = self.text[self.pos..].chars().next() {
                    if chars > 0 && !is_stray(c) {
                        break;
                    }
                    self.pos += c.len_utf8();
                    chars += 1;
                }
                let shown = if ch.is_control() { format!("{:?}", ch) } else { format!("`{ch}`") };
                let message = if chars > 1 {
                    format!("unexpected characters, starting with {shown}")
                } else {
                    format!("unexpected character {shown}")
                };
                diags.push(
                    Diagnostic::error(Kind::Syntax, self.span(start, self.pos), message)
                        .with_label("not part of the cfg language"),
                );
                return Tok::Error;
            }
        };
        self.pos += 1;
        tok1
    }

    fn word(&mut self) -> Tok {
        let start = self.pos;
        while self.peek().is_ascii_alphanumeric() || self.peek() == b'_' {
            self.pos += 1;
        }
        let word = &self.text[start..self.pos];
        // OpenSER's two-part words: `msg:len`, `uri:host`, `uri:port`.
        for (head, tail) in [("msg", ":len"), ("uri", ":host"), ("uri", ":port")] {
            if word == head && self.text[self.pos..].starts_with(tail) {
                let after = self.bytes.get(self.pos + tail.len()).copied().unwrap_or(0);
                if !(after.is_ascii_alphanumeric() || after == b'_') {
                    self.pos += tail.len();
                    return Tok::Ident(self.text[start..self.pos].to_string());
                }
            }
        }
        if word == "mod" {
            return Tok::Percent; // Kamailio's spelling of `%`
        }
        keyword(word).unwrap_or_else(|| Tok::Ident(word.to_string()))
    }

    /// `@ruri.user`, `@hf_value["contact"][1].uri`: a select, up to the first
    /// character that cannot be part of one.
    fn select(&mut self) -> Tok {
        self.pos += 1;
        let start = self.pos;
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            let c = self.peek();
            match c {
                b'[' => depth += 1,
                b']' if depth > 0 => depth -= 1,
                b'"' if depth > 0 => {}
                _ if depth > 0 => {}
                _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' => {}
                _ => break,
            }
            self.pos += 1;
        }
        Tok::Select(self.text[start..self.pos].to_string())
    }

    /// Kamailio's `(int)` / `(str)` casts.
    fn cast(&mut self) -> Option<Tok> {
        let rest = &self.text[self.pos + 1..];
        let inner = rest.trim_start_matches([' ', '\t']);
        for (word, tok) in [("int", Tok::CastInt), ("str", Tok::CastStr)] {
            if let Some(after) = inner.strip_prefix(word) {
                let after_ws = after.trim_start_matches([' ', '\t']);
                if after_ws.starts_with(')') {
                    self.pos = self.text.len() - after_ws.len() + 1;
                    return Some(tok);
                }
            }
        }
        None
    }

    fn number(&mut self, diags: &mut Vec<Diagnostic>) -> Tok {
        let start = self.pos;
        let (digits_start, radix) = if self.peek() == b'0' && matches!(self.peek_at(1), b'x' | b'X') {
            self.pos += 2;
            (self.pos, 16)
        } else if self.peek() == b'0' && self.peek_at(1).is_ascii_digit() {
            (self.pos + 1, 8)
        } else {
            (self.pos, 10)
        };
        while self.peek().is_ascii_alphanumeric() {
            self.pos += 1;
        }
        let digits = &self.text[digits_start..self.pos];
        match i64::from_str_radix(digits, radix) {
            Ok(v) if v <= i32::MAX as i64 => Tok::Int(v),
            Ok(_) => {
                diags.push(
                    Diagnostic::error(Kind::Syntax, self.span(start, self.pos), "number out of range")
                        .with_label("larger than 2147483647"),
                );
                Tok::Error
            }
            Err(_) => {
                let what = match radix {
                    16 => "hexadecimal",
                    8 => "octal",
                    _ => "decimal",
                };
                diags.push(
                    Diagnostic::error(Kind::Syntax, self.span(start, self.pos), format!("invalid {what} number"))
                        .with_label("not a number")
                        .with_help("a name cannot start with a digit; quote it if it is a host name or text"),
                );
                Tok::Error
            }
        }
    }

    /// IPv4/IPv6 addresses and networks, read as single tokens so that `/` in
    /// `10.0.0.0/8` is never a division.
    fn address(&mut self) -> Option<Tok> {
        let c = self.peek();
        if !(c.is_ascii_hexdigit() || c == b':') {
            return None;
        }
        let start = self.pos;
        let mut end = start;
        while end < self.bytes.len() && (self.bytes[end].is_ascii_hexdigit() || matches!(self.bytes[end], b':' | b'.'))
        {
            end += 1;
        }
        let after = self.bytes.get(end).copied().unwrap_or(0);
        if after.is_ascii_alphanumeric() || after == b'_' {
            return None;
        }
        let run = &self.text[start..end];
        let colons = run.bytes().filter(|&b| b == b':').count();
        let ip: IpAddr = if colons >= 2 {
            // Try the longest prefix that is an IPv6 address (a trailing `:port`
            // cannot follow a bare IPv6 address, so the whole run must parse).
            run.parse::<Ipv6Addr>().ok()?.into()
        } else {
            // IPv4: exactly four dotted decimal parts, then possibly `:port`.
            let v4_end = run.find(':').unwrap_or(run.len());
            let v4 = &run[..v4_end];
            if v4.bytes().filter(|&b| b == b'.').count() != 3 || !v4.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            let addr = v4.parse::<Ipv4Addr>().ok()?;
            end = start + v4_end;
            addr.into()
        };
        self.pos = end;
        // A network: `/bits` or `/mask`.
        if self.peek() == b'/' && self.peek_at(1).is_ascii_hexdigit() {
            let mask_start = self.pos + 1;
            let mut mask_end = mask_start;
            while mask_end < self.bytes.len()
                && (self.bytes[mask_end].is_ascii_hexdigit() || matches!(self.bytes[mask_end], b'.' | b':'))
            {
                mask_end += 1;
            }
            let mask_text = &self.text[mask_start..mask_end];
            let max_bits = if ip.is_ipv4() { 32 } else { 128 };
            let mask = match mask_text.parse::<u8>() {
                Ok(bits) if bits <= max_bits => Some(NetMask::Bits(bits)),
                Ok(_) => None,
                Err(_) => mask_text.parse::<IpAddr>().ok().filter(|m| m.is_ipv4() == ip.is_ipv4()).map(NetMask::Addr),
            };
            if let Some(mask) = mask {
                self.pos = mask_end;
                return Some(Tok::Net(ip, mask));
            }
        }
        Some(Tok::Ip(ip))
    }

    fn dq_string(&mut self, diags: &mut Vec<Diagnostic>) -> Tok {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chunk = self.pos;
        while self.pos < self.bytes.len() {
            match self.peek() {
                b'"' => {
                    out.push_str(&self.text[chunk..self.pos]);
                    self.pos += 1;
                    return Tok::Str(out);
                }
                b'\\' => {
                    out.push_str(&self.text[chunk..self.pos]);
                    let n = self.peek_at(1);
                    let (ch, len) = match n {
                        b'n' => (Some('\n'), 2),
                        b'r' => (Some('\r'), 2),
                        b'a' => (Some('\x07'), 2),
                        b't' => (Some('\t'), 2),
                        b'"' => (Some('"'), 2),
                        b'\\' => (Some('\\'), 2),
                        b'\n' => (None, 2),
                        b'x' if self.peek_at(2).is_ascii_hexdigit() => {
                            let len = if self.peek_at(3).is_ascii_hexdigit() { 4 } else { 3 };
                            let v = u8::from_str_radix(&self.text[self.pos + 2..self.pos + len], 16).unwrap_or(0);
                            (Some(v as char), len)
                        }
                        b'0'..=b'7' if matches!(self.peek_at(2), b'0'..=b'7') => {
                            let len = if matches!(self.peek_at(3), b'0'..=b'7') { 4 } else { 3 };
                            let v = u32::from_str_radix(&self.text[self.pos + 1..self.pos + len], 8).unwrap_or(0);
                            (char::from_u32(v & 0xff), len)
                        }
                        // Unknown escapes keep the backslash (`"\d+"` stays a regex).
                        _ => (Some('\\'), 1),
                    };
                    if let Some(ch) = ch {
                        out.push(ch);
                    }
                    self.pos += len;
                    chunk = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        self.unterminated(start, diags)
    }

    fn sq_string(&mut self, diags: &mut Vec<Diagnostic>) -> Tok {
        let start = self.pos;
        match self.text[start + 1..].find('\'') {
            Some(len) => {
                self.pos = start + 1 + len + 1;
                Tok::Str(self.text[start + 1..start + 1 + len].to_string())
            }
            None => self.unterminated(start, diags),
        }
    }

    /// An unterminated string: reported at its opening quote; lexing resumes on the
    /// next line so one missing quote does not swallow the rest of the file.
    fn unterminated(&mut self, start: usize, diags: &mut Vec<Diagnostic>) -> Tok {
        let line_end = memchr_nl(self.bytes, start);
        diags.push(
            Diagnostic::error(Kind::Syntax, self.span(start, start + 1), "unterminated string")
                .with_label("this quote is never closed")
                .with_help("close the string with a quote; a quote inside a string is written `\\\"`"),
        );
        self.pos = line_end;
        Tok::Error
    }

    /// A pseudo-variable: `$name`, `$name(inner)`, `$name(inner)[index]`, or the
    /// bracketed form `$(name(inner)[index]{transformation}…)`.
    fn pvar(&mut self, diags: &mut Vec<Diagnostic>) -> Tok {
        let start = self.pos;
        self.pos += 1;
        let bracketed = self.peek() == b'(';
        if bracketed {
            self.pos += 1;
        }
        let name_start = self.pos;
        while self.peek().is_ascii_alphanumeric() || matches!(self.peek(), b'_' | b'.') {
            self.pos += 1;
        }
        // A trailing dot belongs to what follows (`$ru.` is `$ru` then `.`).
        while self.pos > name_start && self.bytes[self.pos - 1] == b'.' {
            self.pos -= 1;
        }
        let name = self.text[name_start..self.pos].to_string();
        if name.is_empty() {
            return self.bad_pvar(start, "expected a pseudo-variable name after `$`", diags);
        }
        let mut inner = None;
        if self.peek() == b'(' {
            match self.balanced(b'(', b')') {
                Some(text) => inner = Some(text),
                None => return self.bad_pvar(start, "unclosed `(` in pseudo-variable", diags),
            }
        }
        let mut index = None;
        if self.peek() == b'[' {
            match self.balanced(b'[', b']') {
                Some(text) => {
                    let t = text.trim();
                    index = Some(if t == "*" {
                        PVarIndex::All
                    } else if let Ok(n) = t.parse::<i64>() {
                        PVarIndex::At(n)
                    } else {
                        PVarIndex::Dynamic(t.to_string())
                    });
                }
                None => return self.bad_pvar(start, "unclosed `[` in pseudo-variable", diags),
            }
        }
        let mut transforms = Vec::new();
        if bracketed {
            while self.peek() == b'{' {
                match self.balanced(b'{', b'}') {
                    Some(text) => transforms.push(text),
                    None => return self.bad_pvar(start, "unclosed `{` in a transformation", diags),
                }
            }
            if self.peek() != b')' {
                return self.bad_pvar(start, "expected `)` to close `$(`", diags);
            }
            self.pos += 1;
        }
        Tok::PVar(Box::new(PVar { name, inner, index, transforms, span: self.span(start, self.pos) }))
    }

    /// Reads `open … close` with nesting (quotes inside are taken as they are);
    /// returns the text between them.
    fn balanced(&mut self, open: u8, close: u8) -> Option<String> {
        let start = self.pos;
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            let c = self.peek();
            if c == b'\n' {
                break;
            }
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    self.pos += 1;
                    return Some(self.text[start + 1..self.pos - 1].to_string());
                }
            }
            self.pos += 1;
        }
        self.pos = start;
        None
    }

    fn bad_pvar(&mut self, start: usize, message: &str, diags: &mut Vec<Diagnostic>) -> Tok {
        // Skip what looks like the rest of the pseudo-variable.
        while self.pos < self.bytes.len() && !matches!(self.peek(), b' ' | b'\t' | b'\n' | b';' | b',' | b'"') {
            self.pos += 1;
        }
        diags.push(
            Diagnostic::error(Kind::Syntax, self.span(start, self.pos.max(start + 1)), message)
                .with_help("pseudo-variables look like `$ru`, `$avp(s:name)`, `$hdr(Via)` or `$(hdr(Via)[1])`"),
        );
        Tok::Error
    }
}

/// A character no token starts with.
fn is_stray(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || c.is_whitespace() || "\"'$#_()[]{},;:./-+*%&|^~=<>!".contains(c))
}

/// Kamailio's `!!` directive prefix (`!!define`, `!!ifdef` …): only before a
/// directive name, so `!!is_method(…)` stays a double negation.
const BANG_DIRECTIVES: &[&str] = &[
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
    "substdefs",
    "include_file",
    "import_file",
    "KAMAILIO",
    "OPENSER",
    "SER",
    "ALL",
    "MAXCOMPAT",
];

fn memchr_nl(bytes: &[u8], from: usize) -> usize {
    bytes[from.min(bytes.len())..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| from + i)
}

/// Reads the pseudo-variable at the start of `text` (which starts with `$`):
/// its parts and its length in bytes; `None` when it is malformed.
pub fn parse_pvar(text: &str) -> Option<(PVar, usize)> {
    let mut lx = Lexer::new(text, FileId(0));
    let mut diags = Vec::new();
    match lx.pvar(&mut diags) {
        Tok::PVar(p) => Some((*p, lx.pos)),
        _ => None,
    }
}

/// Lexes a whole text with no preprocessing (for tests and define values).
pub fn lex_all(text: &str, file: FileId, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut lx = Lexer::new(text, file);
    lx.directives = false;
    let mut out = Vec::new();
    while let Some(item) = lx.next(diags) {
        if let Lexed::Token(t) = item {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> (Vec<Tok>, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let t = lex_all(text, FileId(0), &mut diags).into_iter().map(|t| t.tok).collect();
        (t, diags)
    }

    #[test]
    fn words_keywords_and_operators() {
        let (t, d) = toks("if (method==\"INVITE\" && !uri=~\"a\") { t_relay(); exit; }");
        assert!(d.is_empty());
        assert_eq!(t[0], Tok::If);
        assert_eq!(t[2], Tok::Ident("method".into()));
        assert_eq!(t[3], Tok::EqEq);
        assert_eq!(t[4], Tok::Str("INVITE".into()));
        assert_eq!(t[5], Tok::And);
        assert_eq!(t[6], Tok::Not);
        assert_eq!(t[8], Tok::Match);
        assert!(t.contains(&Tok::Exit));
    }

    #[test]
    fn string_escapes_follow_cfg_lex() {
        let (t, _) = toks(r#""a\tb\"c\\d\x41\101\d+" 'raw\n'"#);
        assert_eq!(t[0], Tok::Str("a\tb\"c\\dAA\\d+".into()));
        assert_eq!(t[1], Tok::Str("raw\\n".into()));
    }

    #[test]
    fn pseudo_variables() {
        let (t, d) = toks("$ru $avp(s:x) $(hdr(Via)[1]) $(ct{param.value,expires}{s.int}) $var(i)==1 $(avp(i:3)[*])");
        assert!(d.is_empty(), "{d:?}");
        let pv = |i: usize| match &t[i] {
            Tok::PVar(p) => (**p).clone(),
            other => panic!("not a pvar: {other:?}"),
        };
        assert_eq!(pv(0).name, "ru");
        assert_eq!(pv(1).inner.as_deref(), Some("s:x"));
        assert_eq!(pv(2).index, Some(PVarIndex::At(1)));
        assert_eq!(pv(3).transforms, vec!["param.value,expires".to_string(), "s.int".to_string()]);
        assert_eq!(pv(4).inner.as_deref(), Some("i"));
        assert_eq!(t[5], Tok::EqEq);
        assert_eq!(pv(7).index, Some(PVarIndex::All));
    }

    #[test]
    fn addresses_and_networks() {
        let (t, d) = toks("10.0.0.0/8 192.168.1.0/255.255.255.0 ::1 [2001:db8::1]:5060 udp:1.2.3.4:5060 fe80::/10");
        assert!(d.is_empty(), "{d:?}");
        assert!(matches!(t[0], Tok::Net(_, NetMask::Bits(8))));
        assert!(matches!(t[1], Tok::Net(_, NetMask::Addr(_))));
        assert_eq!(t[2], Tok::Ip("::1".parse().unwrap()));
        assert_eq!(t[4], Tok::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(t[5..8], [Tok::RBrack, Tok::Colon, Tok::Int(5060)]);
        assert_eq!(t[8], Tok::Ident("udp".into()));
        assert_eq!(t[9], Tok::Colon);
        assert_eq!(t[10], Tok::Ip("1.2.3.4".parse().unwrap()));
        assert_eq!(t[12], Tok::Int(5060));
        assert!(matches!(t[13], Tok::Net(_, NetMask::Bits(10))));
    }

    #[test]
    fn numbers_and_special_words() {
        let (t, _) = toks("0x1F 017 42 msg:len uri:host default: case 1:");
        assert_eq!(t[..3], [Tok::Int(31), Tok::Int(15), Tok::Int(42)]);
        assert_eq!(t[3], Tok::Ident("msg:len".into()));
        assert_eq!(t[4], Tok::Ident("uri:host".into()));
        assert_eq!(t[5], Tok::Default);
        assert_eq!(t[6], Tok::Colon);
    }

    #[test]
    fn comments_nest_and_unterminated_things_are_reported() {
        let (t, d) = toks("a /* x /* y */ z */ b # c\nd");
        assert!(d.is_empty());
        assert_eq!(t, vec![Tok::Ident("a".into()), Tok::Ident("b".into()), Tok::Ident("d".into())]);
        let (t, d) = toks("x(\"abc\nnext;");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].message, "unterminated string");
        assert_eq!(t.last(), Some(&Tok::Semi));
    }
}
