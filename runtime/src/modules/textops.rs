//! textops: searching and editing the message text (OpenSER 1.3's `textops` module).
//!
//! # What the functions look at
//!
//! As in OpenSER 1.3, the regular expressions run over the message **as it was
//! received** (edits made earlier in the script are not seen), in one of three
//! regions of it:
//! - `search` — the whole message, start line included;
//! - `search_append`, `replace`, `replace_all`, `subst` — the message after its
//!   start line: the headers *and the body* (1.3 starts after the first line so that
//!   the Request-URI is never edited, and runs to the end of the buffer);
//! - the `_body` forms — the body only (false when it is empty).
//!
//! The message ends with its body: the bytes a datagram carries past
//! Content-Length are not searched (nor sent). The text searched also stops at the
//! first NUL byte (1.3's C strings end there) or at the first byte that is not
//! UTF-8 (the `Regex` argument matches `str`s), so a binary body is searched up to
//! its first such byte only.
//!
//! # Edits
//!
//! Every change is an [`Edits`] splice against the received
//! bytes. Matches respect the edits already made: a match lying in text already
//! removed (`remove_hf`, an earlier edit) is skipped — that text will not be sent,
//! so there is nothing to replace or append to. The other way round, a removal
//! covering text replaced earlier takes the replacement with it: `remove_hf("From")`
//! after `subst('/^(From:.*)x/\1y/')` sends the message without the From header.
//! An edit that would overlap another one in a way `Edits` refuses (e.g. a
//! replacement inside a header value another module rewrote, a removal of a header
//! line that text was inserted into, or cutting into the Content-Length value that
//! `Message::write` rewrites) is not recorded: the function logs it and returns -1.
//! A function records all of its edits or none.
//!
//! # Regular expressions
//!
//! OpenSER compiles a `Regex` argument with `REG_EXTENDED|REG_ICASE|REG_NEWLINE`
//! (case-insensitive; `^`/`$` match at line ends; `.` and `[^…]` never match a
//! newline), and a `Subst` with `REG_EXTENDED|REG_NEWLINE`, plus `REG_ICASE` for the
//! `i` flag and without `REG_NEWLINE` for the `s` flag. [`compile_regex`](crate::script::args::compile_regex) and [`Subst::parse`] build
//! the arguments that way; the functions here use a regex as it was compiled. The
//! patterns are Rust `regex` syntax, which reads most POSIX extended expressions the
//! same way, but:
//! - a match is the leftmost-*first* alternative, not POSIX's leftmost-*longest*
//!   (`a|ab` matches `a` of `ab`; write `ab|a`);
//! - there are no back references in a pattern (`\1` is an error; replacements
//!   still use `\1`);
//! - inside brackets a backslash escapes (POSIX: `[\.]` is a backslash or a dot;
//!   here a dot), and `\d \w \s \b` are Perl classes (glibc reads `\d` as `d`);
//! - a `{` that does not start a repetition is an error (POSIX: a literal);
//! - matching is by character (Unicode), not by byte.

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

#[cfg(test)]
use crate::script::args::compile_regex;
use crate::script::args::{Format, HdrName, Methods, Regex, Subst};
use crate::script::pv::{rewrite, Part};
use crate::script::Ctx;
use crate::sip::{uri, Edits, Header, HeaderName, Message};

// ------------------------------------------------------------------ arguments

// ------------------------------------------------------------------ regions and edits

/// Where the headers start: just after the start line.
fn head_start(msg: &Message) -> usize {
    match msg.headers.first() {
        Some(h) => h.line.start as usize,
        None => memchr::memchr(b'\n', msg.bytes()).map_or(0, |i| i + 1).min(msg.body.start as usize),
    }
}

/// The message after its start line: headers and body (1.3's `get_header()` to the end).
fn after_start_line(msg: &Message) -> Range<usize> {
    head_start(msg)..msg.body.end as usize
}

/// The text of `range` a regex can search: up to its first NUL or non-UTF-8 byte.
fn searchable(msg: &Message, range: Range<usize>) -> &str {
    let bytes = &msg.bytes()[range];
    let bytes = &bytes[..memchr::memchr(0, bytes).unwrap_or(bytes.len())];
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// Whether `range` of the received message is text already removed: a range fully
/// deleted, or a position strictly inside deleted text.
fn removed(edits: &Edits, range: Range<usize>) -> bool {
    if range.is_empty() {
        range.start > 0 && edits.deletes(range.start - 1..range.start + 1)
    } else {
        edits.deletes(range)
    }
}

/// Whether an edit of `range` (an insert when empty) touches the Content-Length
/// value, which `Message::write` rewrites.
fn touches_content_length(msg: &Message, range: &Range<usize>) -> bool {
    let Some(cl) = msg.content_length_span.map(|s| s.range()) else { return false };
    if range.is_empty() {
        cl.start < range.start && range.start < cl.end
    } else {
        range.start < cl.end && cl.start < range.end
    }
}

/// Records `splices` (`range` → text; an empty range inserts, an empty text
/// deletes) all or none: if they clash with the edits already made, they are
/// dropped, the clash is logged, and it returns false. Splices found by one pass
/// over the message are disjoint and in order, so the message is written to check
/// them only when other edits exist or one touches the Content-Length value.
fn record(ctx: &mut Ctx, what: &str, splices: Vec<(Range<usize>, Bytes)>) -> bool {
    let check = !ctx.edits.is_empty() || splices.iter().any(|(r, _)| touches_content_length(ctx.msg, r));
    let mark = ctx.edits.checkpoint();
    for (range, text) in splices {
        ctx.edits.replace(range, text);
    }
    if check {
        if let Err(e) = ctx.msg.write(&ctx.edits) {
            ctx.edits.rollback(mark);
            tracing::error!(error = %e, "{what}: the change clashes with an earlier edit of the message; not made");
            return false;
        }
    }
    true
}

fn code(ok: bool) -> i32 {
    if ok {
        1
    } else {
        -1
    }
}

// ------------------------------------------------------------------ search and replace

/// The matches of `re` in `region` (offsets in the message) that are not in text
/// already removed: the first one, or all.
fn find(ctx: &Ctx, re: &Regex, region: Range<usize>, all: bool) -> Vec<Range<usize>> {
    let base = region.start;
    let text = searchable(ctx.msg, region);
    let found =
        re.find_iter(text).map(|m| base + m.start()..base + m.end()).filter(|r| !removed(&ctx.edits, r.clone()));
    if all {
        found.collect()
    } else {
        found.take(1).collect()
    }
}

/// `search(re)`: whether `re` matches somewhere in the message as received (start
/// line, headers and body).
pub fn search(ctx: &mut Ctx, re: &Regex) -> i32 {
    let text = searchable(ctx.msg, 0..ctx.msg.body.end as usize);
    code(re.is_match(text))
}

/// `search_body(re)`: whether `re` matches in the body (false when it is empty).
pub fn search_body(ctx: &mut Ctx, re: &Regex) -> i32 {
    code(!ctx.msg.body.is_empty() && re.is_match(searchable(ctx.msg, ctx.msg.body.range())))
}

fn append_after_match(ctx: &mut Ctx, what: &str, re: &Regex, text: &str, region: Range<usize>) -> i32 {
    if region.is_empty() {
        return -1; // an empty body (1.3: "message body has zero length")
    }
    let Some(m) = find(ctx, re, region, false).pop() else { return -1 };
    code(record(ctx, what, vec![(m.end..m.end, Bytes::copy_from_slice(text.as_bytes()))]))
}

/// `search_append(re, txt)`: inserts `txt` after the first match of `re` past the
/// start line (headers or body, as in 1.3). -1: no match, or the insert clashes
/// with an earlier edit.
pub fn search_append(ctx: &mut Ctx, re: &Regex, text: &str) -> i32 {
    let region = after_start_line(ctx.msg);
    append_after_match(ctx, "search_append", re, text, region)
}

/// `search_append_body(re, txt)`: inserts `txt` after the first match of `re` in the body.
pub fn search_append_body(ctx: &mut Ctx, re: &Regex, text: &str) -> i32 {
    let region = ctx.msg.body.range();
    append_after_match(ctx, "search_append_body", re, text, region)
}

fn replace_matches(ctx: &mut Ctx, what: &str, re: &Regex, text: &str, region: Range<usize>, all: bool) -> i32 {
    if region.is_empty() {
        return -1;
    }
    let found = find(ctx, re, region, all);
    if found.is_empty() {
        return -1;
    }
    if all && found.iter().any(Range::is_empty) {
        // 1.3 stops at an empty match ("invalid regexp?"); here nothing is changed.
        tracing::error!(re = re.as_str(), "{what}: the regex matches an empty string; nothing replaced");
        return -1;
    }
    let text = Bytes::copy_from_slice(text.as_bytes());
    let splices = found.into_iter().map(|r| (r, text.clone())).collect();
    code(record(ctx, what, splices))
}

/// `replace(re, txt)`: replaces the first match of `re` past the start line by
/// `txt` (an empty match inserts `txt` there, as in 1.3).
pub fn replace(ctx: &mut Ctx, re: &Regex, text: &str) -> i32 {
    let region = after_start_line(ctx.msg);
    replace_matches(ctx, "replace", re, text, region, false)
}

/// `replace_all(re, txt)`: replaces every match of `re` past the start line. -1:
/// no match, an empty match (1.3 gives up there, keeping the earlier
/// replacements; here none is made), or a clash with an earlier edit.
pub fn replace_all(ctx: &mut Ctx, re: &Regex, text: &str) -> i32 {
    let region = after_start_line(ctx.msg);
    replace_matches(ctx, "replace_all", re, text, region, true)
}

/// `replace_body(re, txt)`: replaces the first match of `re` in the body.
pub fn replace_body(ctx: &mut Ctx, re: &Regex, text: &str) -> i32 {
    let region = ctx.msg.body.range();
    replace_matches(ctx, "replace_body", re, text, region, false)
}

/// `replace_body_all(re, txt)`: replaces every match of `re` in the body.
pub fn replace_body_all(ctx: &mut Ctx, re: &Regex, text: &str) -> i32 {
    let region = ctx.msg.body.range();
    replace_matches(ctx, "replace_body_all", re, text, region, true)
}

// ------------------------------------------------------------------ subst

/// A piece of a substitution's replacement.
enum Piece {
    Text(String),
    /// `\0` … `\9`: a group of the match (nothing if it did not take part).
    Group(usize),
    /// `\u`: the Request-URI now (nothing in a reply).
    Uri,
    /// Text with pseudo-variables, evaluated per match.
    Pvs(Format),
}

/// A replacement as 1.3's `parse_repl` reads it: `\\ \n \r \t \$` are those
/// characters, `\u` the Request-URI, `\0`–`\9` groups, any other `\c` is `c`, and
/// `$…` a pseudo-variable.
struct Template(Vec<Piece>);

impl Template {
    fn of(subst: &Subst) -> Result<Template, String> {
        // Undo the encoding of `Subst::replacement` (`$$` → `$`, `${N}` → `\N`).
        let mut source = String::with_capacity(subst.replacement.len());
        let mut chars = subst.replacement.chars();
        while let Some(c) = chars.next() {
            if c != '$' {
                source.push(c);
                continue;
            }
            let rest = chars.as_str();
            if let Some(r) = rest.strip_prefix('$') {
                source.push('$');
                chars = r.chars();
            } else if let Some((n, r)) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
                source.push('\\');
                source.push_str(n);
                chars = r.chars();
            } else {
                source.push('$');
            }
        }
        let mut pieces = Vec::new();
        let mut run = String::new();
        let flush = |run: &mut String, pieces: &mut Vec<Piece>| -> Result<(), String> {
            if run.is_empty() {
                return Ok(());
            }
            let text = std::mem::take(run);
            pieces.push(if text.contains('$') { Piece::Pvs(Format::parse(&text)?) } else { Piece::Text(text) });
            Ok(())
        };
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                run.push(c);
                continue;
            }
            let Some(e) = chars.next() else { break };
            flush(&mut run, &mut pieces)?;
            pieces.push(match e {
                'n' => Piece::Text("\n".into()),
                'r' => Piece::Text("\r".into()),
                't' => Piece::Text("\t".into()),
                'u' => Piece::Uri,
                d @ '0'..='9' => Piece::Group(usize::from(d as u8 - b'0')),
                other => Piece::Text(other.to_string()),
            });
        }
        flush(&mut run, &mut pieces)?;
        Ok(Template(pieces))
    }

    fn expand(&self, ctx: &Ctx, caps: &regex::Captures, out: &mut String) {
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
                Piece::Uri => {
                    if ctx.msg.is_request() {
                        out.push_str(ctx.request_uri());
                    }
                }
                Piece::Pvs(f) => out.push_str(&f.eval(ctx)),
            }
        }
    }
}

/// The matches of `subst` in `text` with their replacements: the first (or, with
/// `g`, every) match for which `keep` holds. `Err` for an empty match (1.3:
/// "matched string is empty") or a replacement that cannot be read.
fn subst_matches(
    ctx: &Ctx,
    what: &str,
    subst: &Subst,
    text: &str,
    keep: impl Fn(Range<usize>) -> bool,
) -> Result<Vec<(Range<usize>, String)>, ()> {
    let template = Template::of(subst).map_err(|e| tracing::error!(error = e, "{what}: bad replacement"))?;
    let mut out = Vec::new();
    for caps in subst.re.captures_iter(text) {
        let m = caps.get(0).expect("group 0 is the match");
        if m.is_empty() {
            tracing::error!(re = subst.re.as_str(), "{what}: the regex matches an empty string; nothing replaced");
            return Err(());
        }
        if !keep(m.range()) {
            continue;
        }
        let mut replacement = String::new();
        template.expand(ctx, &caps, &mut replacement);
        out.push((m.range(), replacement));
        if !subst.global {
            break;
        }
    }
    Ok(out)
}

fn subst_region(ctx: &mut Ctx, what: &str, subst: &Subst, region: Range<usize>) -> i32 {
    if region.is_empty() {
        return -1;
    }
    let base = region.start;
    let text = searchable(ctx.msg, region);
    let Ok(found) = subst_matches(ctx, what, subst, text, |r| !removed(&ctx.edits, base + r.start..base + r.end))
    else {
        return -1;
    };
    if found.is_empty() {
        return -1;
    }
    let splices = found.into_iter().map(|(r, t)| (base + r.start..base + r.end, Bytes::from(t))).collect();
    code(record(ctx, what, splices))
}

/// `subst('/re/repl/flags')`: sed-like substitution past the start line (headers and
/// body, as in 1.3). The replacement may hold `\0`–`\9`, `\u` (the Request-URI),
/// `\n \r \t` and pseudo-variables. -1: no match, an empty match, or a clash with
/// an earlier edit.
pub fn subst(ctx: &mut Ctx, subst: &Subst) -> i32 {
    let region = after_start_line(ctx.msg);
    subst_region(ctx, "subst", subst, region)
}

/// `subst_body('/re/repl/flags')`: sed-like substitution in the body.
pub fn subst_body(ctx: &mut Ctx, subst: &Subst) -> i32 {
    let region = ctx.msg.body.range();
    subst_region(ctx, "subst_body", subst, region)
}

/// `text` with the substitution applied; `None` if it does not match (or fails).
fn subst_string(ctx: &Ctx, what: &str, subst: &Subst, text: &str) -> Option<String> {
    let found = subst_matches(ctx, what, subst, text, |_| true).ok()?;
    if found.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (r, t) in found {
        out.push_str(&text[pos..r.start]);
        out.push_str(&t);
        pos = r.end;
    }
    out.push_str(&text[pos..]);
    Some(out)
}

/// `subst_uri('/re/repl/flags')`: sed-like substitution over the Request-URI as it
/// is now (`$ru`), which becomes the result. -1: a reply, no match, or a result
/// that is not a URI (1.3 takes any text; a Request-URI must be a URI).
pub fn subst_uri(ctx: &mut Ctx, subst: &Subst) -> i32 {
    if !ctx.msg.is_request() {
        tracing::error!("subst_uri: a reply has no Request-URI");
        return -1;
    }
    let Some(new) = subst_string(ctx, "subst_uri", subst, ctx.request_uri()) else { return -1 };
    if uri::parse(&new).is_err() {
        tracing::error!(uri = new, "subst_uri: the result is not a URI; the Request-URI is left as it was");
        return -1;
    }
    ctx.ruri = Some(new);
    1
}

/// `subst_user('/re/repl/flags')`: sed-like substitution over the user part of the
/// Request-URI (as written, escapes included; `""` when there is none), which then
/// becomes the user (an empty result removes it; a password is kept).
pub fn subst_user(ctx: &mut Ctx, subst: &Subst) -> i32 {
    if !ctx.msg.is_request() {
        tracing::error!("subst_user: a reply has no Request-URI");
        return -1;
    }
    let Ok(u) = uri::parse(ctx.request_uri()) else {
        tracing::error!("subst_user: the Request-URI is not a URI");
        return -1;
    };
    let user = u.user.unwrap_or("");
    let Some(new_user) = subst_string(ctx, "subst_user", subst, user) else { return -1 };
    let new = match rewrite(ctx.request_uri(), Part::User, &new_user) {
        Ok(new) if uri::parse(&new).is_ok() => new,
        _ => {
            tracing::error!(user = new_user, "subst_user: the result does not make a URI; left as it was");
            return -1;
        }
    };
    ctx.ruri = Some(new);
    1
}

// ------------------------------------------------------------------ headers

/// The compact forms RFC 3261 and later RFCs register for names `HeaderName` does
/// not know (IANA "Header Fields", compact column): `(compact, full)`.
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("j", "Reject-Contact"),
    ("n", "Identity-Info"),
    ("u", "Allow-Events"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Whether header `h` has the name `name` (case-insensitive, compact forms too).
fn is_named(msg: &Message, h: &Header, name: &HdrName) -> bool {
    if msg.is_named(h, name.name, &name.text) {
        return true;
    }
    // Beyond the core's names: the compact forms of the other RFCs' headers.
    if name.name != HeaderName::Other || h.name != HeaderName::Other {
        return false;
    }
    let text = &msg.bytes()[h.name_span.range()];
    COMPACT.iter().any(|(compact, full)| {
        let is = |a: &str, b: &[u8]| a.as_bytes().eq_ignore_ascii_case(b);
        (is(compact, name.text.as_bytes()) && is(full, text)) || (is(full, name.text.as_bytes()) && is(compact, text))
    })
}

/// The header lines named `name` that the edits have not removed.
fn present<'a, 'm: 'a>(ctx: &'a Ctx<'m>, name: &'a HdrName) -> impl Iterator<Item = &'a Header> + 'a {
    let msg: &'a Message = ctx.msg;
    msg.headers.iter().filter(move |h| is_named(msg, h, name) && !ctx.edits.deletes(h.line.range()))
}

/// Checks and completes header lines to add: the text must end in CRLF (added if
/// missing, or completed when it ends in a bare LF or CR), must not be empty, begin
/// with white space or a line end, or hold an empty line — any of which would join
/// it to another header or end the header section — and its first line must have a
/// colon (`name: value`).
fn header_lines(mut text: String, what: &str) -> Option<String> {
    if !text.ends_with("\r\n") {
        if text.ends_with('\n') {
            text.insert(text.len() - 1, '\r');
        } else if text.ends_with('\r') {
            text.push('\n');
        } else {
            text.push_str("\r\n");
        }
    }
    let first_line = &text[..text.find(['\r', '\n']).unwrap_or(text.len())];
    let bad = text.starts_with([' ', '\t', '\r', '\n'])
        || text.contains("\r\n\r\n")
        || text.contains("\n\n")
        || text.contains("\n\r\n")
        || !first_line.contains(':');
    if bad {
        tracing::error!(text, "{what}: not header lines (`Name: value` ending in CRLF); nothing added");
        return None;
    }
    Some(text)
}

/// Adds header lines at `at`.
fn add_header(ctx: &mut Ctx, what: &str, text: String, at: usize) -> i32 {
    let Some(text) = header_lines(text, what) else { return -1 };
    code(record(ctx, what, vec![(at..at, Bytes::from(text))]))
}

/// `append_hf(txt)`: adds header lines after the last header. The text, with its
/// pseudo-variables expanded, should end in CRLF; if it does not, CRLF is added
/// (1.3 inserts it as it is and the next header line joins it). -1: the text is not
/// header lines (see `header_lines`).
pub fn append_hf_1(ctx: &mut Ctx, header: &Format) -> i32 {
    let text = header.eval(ctx);
    let at = ctx.msg.head_end();
    add_header(ctx, "append_hf", text, at)
}

/// `append_hf(txt, hdr)`: adds header lines after the first `hdr` header — or, as
/// in 1.3, after the last header when there is none. CRLF is added to the text if
/// missing.
pub fn append_hf_2(ctx: &mut Ctx, header: &Format, after: &HdrName) -> i32 {
    let text = header.eval(ctx);
    let msg = ctx.msg;
    let at = msg.headers.iter().find(|h| is_named(msg, h, after)).map_or(msg.head_end(), |h| h.line.end as usize);
    add_header(ctx, "append_hf", text, at)
}

/// `insert_hf(txt)`: adds header lines before the first header. CRLF is added to
/// the text if missing.
pub fn insert_hf_1(ctx: &mut Ctx, header: &Format) -> i32 {
    let text = header.eval(ctx);
    let at = head_start(ctx.msg);
    add_header(ctx, "insert_hf", text, at)
}

/// `insert_hf(txt, hdr)`: adds header lines before the first `hdr` header — or, as
/// in 1.3, before the first header when there is none. CRLF is added to the text
/// if missing.
pub fn insert_hf_2(ctx: &mut Ctx, header: &Format, before: &HdrName) -> i32 {
    let text = header.eval(ctx);
    let msg = ctx.msg;
    let at = msg.headers.iter().find(|h| is_named(msg, h, before)).map_or(head_start(msg), |h| h.line.start as usize);
    add_header(ctx, "insert_hf", text, at)
}

/// `append_urihf(prefix, suffix)`: adds `prefix` + the Request-URI as received +
/// `suffix` after the last header (`append_urihf("CC-Diversion: ", "\r\n")`). CRLF
/// is added if the suffix does not end the line.
pub fn append_urihf(ctx: &mut Ctx, prefix: &str, suffix: &str) -> i32 {
    let Some(ruri) = ctx.msg.request_uri() else {
        tracing::error!("append_urihf: a reply has no Request-URI");
        return -1;
    };
    let text = format!("{prefix}{ruri}{suffix}");
    let at = ctx.msg.head_end();
    add_header(ctx, "append_urihf", text, at)
}

/// `remove_hf(hname)`: removes every header line named `hname` (compact forms
/// too), with what earlier edits replaced inside them (a value `subst` rewrote).
/// Returns how many lines it removed; -1 if none was there (or all were removed
/// already), or if removing them clashes with an earlier edit (text inserted inside
/// a line, a replacement running past its end) — then none is removed.
pub fn remove_hf(ctx: &mut Ctx, name: &HdrName) -> i32 {
    let lines: Vec<(Range<usize>, Bytes)> = present(ctx, name).map(|h| (h.line.range(), Bytes::new())).collect();
    let count = lines.len();
    if count == 0 {
        return -1;
    }
    if record(ctx, "remove_hf", lines) {
        i32::try_from(count).unwrap_or(i32::MAX)
    } else {
        -1
    }
}

/// `is_present_hf(hname)`: whether a header line named `hname` (compact forms
/// too) is in the message. Lines removed by the script no longer count; lines it
/// added are not seen (1.3 sees neither change).
pub fn is_present_hf(ctx: &mut Ctx, name: &HdrName) -> i32 {
    code(present(ctx, name).next().is_some())
}

// ------------------------------------------------------------------ replies

/// `append_to_reply(txt)`: adds header lines to the replies this proxy sends for
/// the request (`ctx.reply_headers`). CRLF is added to the text if missing.
pub fn append_to_reply(ctx: &mut Ctx, header: &Format) -> i32 {
    let text = header.eval(ctx);
    let Some(text) = header_lines(text, "append_to_reply") else { return -1 };
    ctx.reply_headers.push_str(&text);
    1
}

/// `append_time()`: adds a `Date:` header with the time now (RFC 3261 §20.17: an
/// RFC 1123 date in GMT) to the replies this proxy sends for the request.
pub fn append_time(ctx: &mut Ctx) -> i32 {
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        tracing::error!("append_time: the clock is before 1970");
        return -1;
    };
    ctx.reply_headers.push_str(&format!("Date: {}\r\n", rfc1123(now.as_secs())));
    1
}

/// `secs` after 1970-01-01 00:00:00 UTC as RFC 1123 writes it:
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn rfc1123(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs / 86_400;
    let time = secs % 86_400;
    // Days to a civil date (proleptic Gregorian), counted from 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3_600,
        time % 3_600 / 60,
        time % 60
    )
}

// ------------------------------------------------------------------ method, body, privacy

/// `is_method(list)`: whether the method of a request — or the CSeq method of a
/// reply — is one of `list` (`"INVITE|BYE"`). Names of known methods are read
/// regardless of case (as 1.3 does: `is_method("invite")` is INVITE); a message's
/// method is case-sensitive (RFC 3261 §7.1: a request `invite` is an extension
/// method); an extension method is compared ignoring case, as 1.3 compares it
/// (`is_method("foo")` is true of a `FOO` request).
pub fn is_method(ctx: &mut Ctx, methods: &Methods) -> i32 {
    let msg = ctx.msg;
    let method = msg.method().unwrap_or(msg.cseq_method);
    let text = msg.method_text();
    code(methods.contains(method, text))
}

/// The media type of a Content-Type value, without parameters: `type/subtype`.
fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

fn same_media(a: &str, b: &str) -> bool {
    let parts = |m: &str| {
        let (t, s) = m.split_once('/').unwrap_or((m, ""));
        (t.trim().to_string(), s.trim().to_string())
    };
    let ((at, asub), (bt, bsub)) = (parts(media_type(a)), parts(media_type(b)));
    at.eq_ignore_ascii_case(&bt) && asub.eq_ignore_ascii_case(&bsub)
}

/// `has_body()`: whether the message has a non-empty body. 1.3 also wants a
/// Content-Length header; RFC 3261 §18.3 lets a datagram go without one (the body
/// is the rest of it), so here the body decides.
pub fn has_body_0(ctx: &mut Ctx) -> i32 {
    code(!ctx.msg.body.is_empty())
}

/// `has_body(mime)`: a non-empty body whose Content-Type is `mime` (type/subtype,
/// any case, parameters ignored). Without a Content-Type the body counts as
/// `application/sdp` (1.3's reading); an empty `mime` checks only the body.
pub fn has_body_1(ctx: &mut Ctx, mime: &str) -> i32 {
    let msg = ctx.msg;
    if msg.body.is_empty() {
        return -1;
    }
    if mime.trim().is_empty() {
        return 1;
    }
    let ct = msg.header(HeaderName::ContentType).map_or("application/sdp", |h| msg.text(h.value));
    code(same_media(ct, mime))
}

/// `is_privacy(value)`: whether a Privacy header holds `value` among its
/// priv-values (RFC 3323 §4.2: `header`, `session`, `user`, `none`, `critical`,
/// RFC 3325's `id`, RFC 4244's `history`, or any token), any case. RFC 3323
/// separates them with `;`; 1.3 reads `,` — both are accepted. 1.3 also refuses the
/// whole header when one value is unknown; an extension token is valid here.
pub fn is_privacy(ctx: &mut Ctx, value: &str) -> i32 {
    let name = HdrName::new("Privacy");
    let msg = ctx.msg;
    let want = value.trim();
    let hit =
        present(ctx, &name).any(|h| msg.text(h.value).split([';', ',']).any(|v| v.trim().eq_ignore_ascii_case(want)));
    code(hit)
}

// ------------------------------------------------------------------ filter_body

/// The value of parameter `name` of a Content-Type value (quoted or not).
fn mime_param(value: &str, name: &str) -> Option<String> {
    let mut rest = value.split_once(';')?.1;
    loop {
        let (pname, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (pvalue, next) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            v.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            let next = q[end..].split_once(';').map(|(_, n)| n);
            (v, next)
        } else {
            let (v, next) = after.split_once(';').map_or((after, None), |(v, n)| (v, Some(n)));
            (v.trim().to_string(), next)
        };
        // A parameter without a value before it: `; x; boundary=…`.
        let pname = pname.rsplit(';').next().unwrap_or(pname);
        if pname.trim().eq_ignore_ascii_case(name) {
            return Some(pvalue);
        }
        rest = next?;
    }
}

/// One body part: its MIME headers and its content (offsets in the body).
struct BodyPart {
    headers: Range<usize>,
    content: Range<usize>,
}

/// The parts of a multipart body (RFC 2046 §5.1.1): a delimiter is `--boundary`
/// at the start of the body or of a line, followed by white space and a line end,
/// or by `--` (the last one); the line end before a delimiter belongs to it, not
/// to the part. Without a closing delimiter the last part runs to the end.
fn body_parts(body: &[u8], boundary: &str) -> Vec<BodyPart> {
    let dash = format!("--{boundary}");
    let dash = dash.as_bytes();
    let mut parts = Vec::new();
    let mut open: Option<usize> = None; // where the current part starts
    for p in memchr::memmem::find_iter(body, dash) {
        if p > 0 && body[p - 1] != b'\n' {
            continue;
        }
        let after = &body[p + dash.len()..];
        let close = after.starts_with(b"--");
        let line_end = if close {
            Some(0)
        } else {
            let pad = after.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
            match &after[pad..] {
                [b'\r', b'\n', ..] => Some(pad + 2),
                [b'\n', ..] => Some(pad + 1),
                [] => Some(pad),
                _ => None,
            }
        };
        let Some(line_end) = line_end else { continue };
        let delim_start = if body[..p].ends_with(b"\r\n") { p - 2 } else { p.saturating_sub(1) };
        if let Some(start) = open.take() {
            parts.push(split_part(body, start..delim_start.max(start)));
        }
        if close {
            return parts;
        }
        open = Some(p + dash.len() + line_end);
    }
    if let Some(start) = open {
        parts.push(split_part(body, start..body.len()));
    }
    parts
}

/// A part's headers and content: they end at the first empty line.
fn split_part(body: &[u8], part: Range<usize>) -> BodyPart {
    let s = &body[part.clone()];
    let (head_len, content_start) = if s.starts_with(b"\r\n") {
        (0, 2)
    } else if s.starts_with(b"\n") {
        (0, 1)
    } else if let Some(i) = memchr::memmem::find(s, b"\r\n\r\n") {
        (i + 2, i + 4)
    } else if let Some(i) = memchr::memmem::find(s, b"\n\n") {
        (i + 1, i + 2)
    } else {
        (s.len(), s.len())
    };
    BodyPart { headers: part.start..part.start + head_len, content: part.start + content_start..part.end }
}

/// A part's Content-Type (its folded lines joined); `text/plain` when it has none
/// (RFC 2046 §5.1).
fn part_content_type(headers: &[u8]) -> String {
    let text = String::from_utf8_lossy(headers);
    let mut value: Option<String> = None;
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = value.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((name, v)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-type") {
                value = Some(v.trim().to_string());
            }
        }
    }
    value.unwrap_or_else(|| "text/plain".to_string())
}

/// The content of the first part of type `want` in a multipart body, looking into
/// nested multiparts (depth-first, in order).
fn find_part(body: &[u8], boundary: &str, want: &str, depth: u32) -> Option<Range<usize>> {
    for part in body_parts(body, boundary) {
        let ct = part_content_type(&body[part.headers.clone()]);
        if same_media(&ct, want) {
            return Some(part.content);
        }
        let is_multipart = media_type(&ct).get(..10).is_some_and(|t| t.eq_ignore_ascii_case("multipart/"));
        if is_multipart && depth < 4 {
            if let Some(inner) = mime_param(&ct, "boundary") {
                let c = part.content.clone();
                if let Some(r) = find_part(&body[c.clone()], &inner, want, depth + 1) {
                    return Some(c.start + r.start..c.start + r.end);
                }
            }
        }
    }
    None
}

/// `filter_body(content_type)`: keeps, of a multipart body, only the content of
/// its first part of type `content_type` (nested multiparts searched too). The
/// message's Content-Type is left as it is: the script sets it
/// (`remove_hf("Content-Type"); append_hf("Content-Type: application/sdp\r\n")`).
///
/// 1.3 looks for a line `Content-Type: <type>` (exact spelling, no parameters)
/// and cuts at the next line starting `--Boundary` — a fixed string, not the
/// message's boundary. Here the body is split as RFC 2046 §5.1.1 says, with the
/// `boundary` parameter of the message's Content-Type; the line end before the
/// next delimiter belongs to the delimiter, so it is not kept. -1: no body, not a
/// multipart with a boundary, no such part, or a clash with an earlier edit.
pub fn filter_body(ctx: &mut Ctx, content_type: &str) -> i32 {
    let msg = ctx.msg;
    if msg.body.is_empty() {
        return -1;
    }
    let Some(ct) = msg.header(HeaderName::ContentType).map(|h| msg.text(h.value)) else {
        tracing::debug!("filter_body: no Content-Type");
        return -1;
    };
    let Some(boundary) = mime_param(ct, "boundary").filter(|b| !b.is_empty()) else {
        tracing::debug!(content_type = ct, "filter_body: not a multipart body with a boundary");
        return -1;
    };
    let body = msg.body.range();
    let Some(keep) = find_part(&msg.bytes()[body.clone()], &boundary, content_type, 0) else { return -1 };
    let keep = body.start + keep.start..body.start + keep.end;
    let mut splices = Vec::new();
    if body.start < keep.start {
        splices.push((body.start..keep.start, Bytes::new()));
    }
    if keep.end < body.end {
        splices.push((keep.end..body.end, Bytes::new()));
    }
    code(record(ctx, "filter_body", splices))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::proxy::{Source, Transport};
    use crate::script::{Config, Vars};
    use crate::sip::Framing;

    fn src() -> Source {
        let addr: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        Source { transport: Transport::Udp, addr, local: "192.0.2.9:5060".parse().unwrap() }
    }

    /// A message from its start line and header lines (LF-separated here) and a
    /// body; Content-Length is added.
    fn message(head: &str, body: &str) -> Message {
        let mut text = head.trim_end().replace('\n', "\r\n");
        text.push_str(&format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
        Message::parse(Bytes::from(text), Framing::Datagram).expect("a valid message")
    }

    const INVITE: &str = "INVITE sip:alice@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Alice <sip:alice@example.com>
From: Bob <sip:bob@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
User-Agent: softphone/1.0
Contact: <sip:bob@192.0.2.1>
Content-Type: application/sdp";

    const SDP: &str = "v=0\r\no=bob 2890844526 2890844526 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";

    fn invite() -> Message {
        message(INVITE, SDP)
    }

    /// Runs `f` on a context for `msg` and returns the function's code and the
    /// message a next hop receives (parsed again), with the context's reply headers
    /// and Request-URI.
    fn run(msg: &Message, f: impl FnOnce(&mut Ctx) -> i32) -> (i32, String, Ctx<'static>) {
        let config: &'static Config = Box::leak(Box::default());
        let vars: &'static mut Vars = Box::leak(Box::default());
        let msg: &'static Message = Box::leak(Box::new(msg.clone()));
        let mut ctx = Ctx::new(msg, src(), config, vars);
        let rc = f(&mut ctx);
        let out = msg.write(&ctx.request_edits()).expect("edits apply");
        let reparsed = Message::parse(out.clone().freeze(), Framing::Datagram).expect("the result parses");
        assert_eq!(reparsed.body.len(), reparsed.content_length.unwrap_or(0) as usize);
        (rc, String::from_utf8_lossy(&out).into_owned(), ctx)
    }

    fn re(p: &str) -> Regex {
        compile_regex(p).unwrap()
    }

    fn sub(s: &str) -> Subst {
        Subst::parse(s).unwrap()
    }

    fn fmt(s: &str) -> Format {
        Format::parse(s).unwrap()
    }

    fn body_of(out: &str) -> &str {
        &out[out.find("\r\n\r\n").unwrap() + 4..]
    }

    // ---------------------------------------------------------------- arguments

    #[test]
    fn regex_arguments_have_openser_flags() {
        let r = re("^user-agent:.*$");
        assert!(r.is_match("Via: x\r\nUser-Agent: y\r\n"), "case-insensitive, multi-line");
        assert!(!re("^a[^x]*b").is_match("a\nb"), "a negated class stays on its line");
        assert!(re("^a[^x]*b").is_match("azzb"));
        assert_eq!(
            crate::script::args::exclude_newline(r"[^]a][[:alpha:]]\[^x[^[:digit:]]"),
            r"[^]a\n][[:alpha:]]\[^x[^[:digit:]\n]"
        );
        assert!(compile_regex("(unclosed").is_err());
    }

    #[test]
    fn subst_arguments_are_read_as_in_1_3() {
        let s = sub(r"/^To:(.*)$/t:\1/ig");
        assert!(s.global);
        assert_eq!(s.re.as_str(), "(?im)^To:(.*)$");
        assert_eq!(s.replacement, "t:${1}");
        assert_eq!(sub("/a/b/s").re.as_str(), "(?s)a");
        assert_eq!(sub(r"#a\#b#c#").re.as_str(), r"(?m)a\#b");
        assert_eq!(sub(r"/x/a\/b\\c$ru\$/").replacement, r"a\/b\\c$$ru\$$");
        assert!(Subst::parse(r"\a\b\").is_err());
        assert!(Subst::parse("/a/b").is_err());
        assert!(Subst::parse("/a/b/q").is_err());
        assert!(Subst::parse("/(/b/").is_err());
        assert!(Subst::parse("").is_err());
    }

    #[test]
    fn templates_read_escapes_groups_uri_and_pvs() {
        let msg = invite();
        let (rc, _, _) = run(&msg, |ctx| {
            let t = Template::of(&sub(r"/(b)(o)?(x)?/[\0|\2|\3|\\|\n\r\t|\$|\q|\u|$fU|$$]/")).unwrap();
            let caps = regex::Regex::new("(b)(o)?(x)?").unwrap().captures("bo").unwrap();
            let mut out = String::new();
            t.expand(ctx, &caps, &mut out);
            assert_eq!(out, "[bo|o||\\|\n\r\t|$|q|sip:alice@example.com|bob|$$]");
            1
        });
        assert_eq!(rc, 1);
        // Subst::parse's encoding of `\\1` decodes to the same source.
        let s = Subst::parse(r"/a/\\1/").unwrap();
        let (_, out, _) = run(&msg, |ctx| subst_body(ctx, &Subst { re: regex::Regex::new("audio").unwrap(), ..s }));
        assert!(body_of(&out).contains("m=\\1 49170"));
    }

    // ---------------------------------------------------------------- search

    #[test]
    fn search_looks_at_the_whole_message_as_received() {
        let msg = invite();
        assert_eq!(run(&msg, |ctx| search(ctx, &re("^invite sip:alice"))).0, 1);
        assert_eq!(run(&msg, |ctx| search(ctx, &re("m=audio"))).0, 1, "the body too");
        assert_eq!(run(&msg, |ctx| search(ctx, &re("^X-Nothing:"))).0, -1);
        assert_eq!(run(&msg, |ctx| search_body(ctx, &re("^c=IN IP4 192"))).0, 1);
        assert_eq!(run(&msg, |ctx| search_body(ctx, &re("^User-Agent"))).0, -1);
        let empty = message(INVITE, "");
        assert_eq!(run(&empty, |ctx| search_body(ctx, &re(".*"))).0, -1);
        // Edits made before are not seen (1.3: the search is on the received text).
        let (rc, _, _) = run(&msg, |ctx| {
            assert_eq!(remove_hf(ctx, &HdrName::new("User-Agent")), 1);
            search(ctx, &re("softphone"))
        });
        assert_eq!(rc, 1);
    }

    #[test]
    fn search_stops_at_nul_and_non_utf8_bytes() {
        let mut raw = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 9\r\n\r\nab"
            .to_vec();
        raw.extend_from_slice(b"\0cd\xffefg");
        let msg = Message::parse(Bytes::from(raw), Framing::Datagram).unwrap();
        assert_eq!(run(&msg, |ctx| search_body(ctx, &re("ab"))).0, 1);
        assert_eq!(run(&msg, |ctx| search_body(ctx, &re("cd"))).0, -1);
        assert_eq!(run(&msg, |ctx| search(ctx, &re("efg"))).0, -1);
    }

    #[test]
    fn search_append_inserts_after_the_first_match() {
        let msg = invite();
        let (rc, out, _) = run(&msg, |ctx| search_append(ctx, &re("softphone/[0-9.]+"), " (via serc)"));
        assert_eq!(rc, 1);
        assert!(out.contains("\r\nUser-Agent: softphone/1.0 (via serc)\r\n"));
        // Never in the start line.
        let (rc, out, _) = run(&msg, |ctx| search_append(ctx, &re("sip:alice@example.com"), ";x"));
        assert_eq!(rc, 1);
        assert!(out.starts_with("INVITE sip:alice@example.com SIP/2.0\r\n"));
        assert!(out.contains("To: Alice <sip:alice@example.com;x>"));
        assert_eq!(run(&msg, |ctx| search_append(ctx, &re("nothing here"), "x")).0, -1);

        let (rc, out, _) = run(&msg, |ctx| search_append_body(ctx, &re("^s=-"), "serc"));
        assert_eq!(rc, 1);
        assert!(body_of(&out).contains("\r\ns=-serc\r\n"));
        assert_eq!(run(&msg, |ctx| search_append_body(ctx, &re("^User-Agent"), "x")).0, -1);
        // Into the headers part, a match in the body counts (1.3).
        let (rc, out, _) = run(&msg, |ctx| search_append(ctx, &re("^t=0 0"), " 1"));
        assert_eq!(rc, 1);
        assert!(body_of(&out).contains("t=0 0 1\r\n"));
    }

    #[test]
    fn replace_first_and_all() {
        let msg = invite();
        let (rc, out, _) = run(&msg, |ctx| replace(ctx, &re("192\\.0\\.2\\.1"), "198.51.100.7"));
        assert_eq!(rc, 1);
        assert!(out.contains("Via: SIP/2.0/UDP 198.51.100.7:5060;"));
        assert!(out.contains("Contact: <sip:bob@192.0.2.1>"));

        let (rc, out, _) = run(&msg, |ctx| replace_all(ctx, &re("192\\.0\\.2\\.1"), "198.51.100.7"));
        assert_eq!(rc, 1);
        assert_eq!(out.matches("198.51.100.7").count(), 4, "Via, Contact and two in the SDP");
        assert!(!out.contains("192.0.2.1"));

        let (rc, out, _) = run(&msg, |ctx| replace_body(ctx, &re("192\\.0\\.2\\.1"), "203.0.113.5"));
        assert_eq!(rc, 1);
        assert!(out.contains("Via: SIP/2.0/UDP 192.0.2.1:5060"));
        assert!(
            body_of(&out).starts_with("v=0\r\no=bob 2890844526 2890844526 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 192")
        );

        let (rc, out, _) = run(&msg, |ctx| replace_body_all(ctx, &re("IN IP4 [0-9.]+"), "IN IP4 203.0.113.55"));
        assert_eq!(rc, 1);
        let body = body_of(&out);
        assert_eq!(body.matches("IN IP4 203.0.113.55").count(), 2);
        // Content-Length follows the body.
        let reparsed = Message::parse(Bytes::from(out.clone()), Framing::Datagram).unwrap();
        assert_eq!(reparsed.content_length, Some(SDP.len() as u32 + 6));

        for f in [replace, replace_all, replace_body, replace_body_all] {
            assert_eq!(run(&msg, |ctx| f(ctx, &re("no such text"), "x")).0, -1);
        }
        let empty = message(INVITE, "");
        for f in [replace_body, replace_body_all, search_append_body] {
            assert_eq!(run(&empty, |ctx| f(ctx, &re("x*"), "y")).0, -1);
        }
    }

    #[test]
    fn replace_all_refuses_an_empty_match_and_changes_nothing() {
        let msg = invite();
        let (rc, out, ctx) = run(&msg, |ctx| replace_all(ctx, &re("o*"), "0"));
        assert_eq!(rc, -1);
        assert!(ctx.edits.is_empty());
        assert_eq!(out.as_bytes(), &msg.bytes()[..]);
        assert_eq!(run(&msg, |ctx| replace_body_all(ctx, &re("z*"), "0")).0, -1);
        // A single replace of an empty match inserts (1.3).
        let (rc, out, _) = run(&msg, |ctx| replace_body(ctx, &re("^"), "x"));
        assert_eq!(rc, 1);
        assert!(body_of(&out).starts_with("xv=0"));
    }

    #[test]
    fn matches_respect_earlier_edits() {
        let msg = invite();
        // Text already removed is skipped: the next match is replaced.
        let (rc, out, _) = run(&msg, |ctx| {
            assert_eq!(remove_hf(ctx, &HdrName::new("User-Agent")), 1);
            replace(ctx, &re("soft|bob@192"), "X")
        });
        assert_eq!(rc, 1);
        assert!(out.contains("Contact: <sip:X.0.2.1>"));
        assert!(!out.contains("User-Agent"));
        // A match overlapping another edit is refused, and nothing of the call stays.
        let (rc, out, ctx) = run(&msg, |ctx| {
            assert_eq!(replace(ctx, &re("softphone"), "phone"), 1);
            replace_all(ctx, &re("(softphone|example)"), "x")
        });
        assert_eq!(rc, -1);
        assert_eq!(ctx.edits.len(), 1);
        assert!(out.contains("User-Agent: phone/1.0") && out.contains("example.com"));
        // The same for subst and search_append; remove_hf takes the replacement with
        // the line.
        let (rc, out, ctx) = run(&msg, |ctx| {
            assert_eq!(replace(ctx, &re("softphone/1.0"), "p"), 1);
            let a = subst(ctx, &sub("/ftph/X/"));
            let b = search_append(ctx, &re("soft"), "X");
            assert_eq!((a, b, ctx.edits.len()), (-1, -1, 1));
            remove_hf(ctx, &HdrName::new("User-Agent"))
        });
        assert_eq!((rc, ctx.edits.len()), (1, 2));
        assert!(!out.contains("User-Agent") && !out.contains(": p\r\n"));
        // Text inserted inside a line: removing the line is refused.
        let (rc, out, ctx) = run(&msg, |ctx| {
            assert_eq!(search_append(ctx, &re("soft"), "X"), 1);
            remove_hf(ctx, &HdrName::new("User-Agent"))
        });
        assert_eq!((rc, ctx.edits.len()), (-1, 1));
        assert!(out.contains("User-Agent: softXphone/1.0\r\n"));
    }

    #[test]
    fn remove_hf_after_subst_removes_the_header_with_the_substitution() {
        let msg = invite();
        // From the header's start (the same offset as the line) or inside it, with the
        // `g` flag or without.
        for re_ua in [r"/^(User-Agent:.*)1\.0/\1 2.0/", "/softphone/phone/", "/ft/FT/g"] {
            let (rc, out, ctx) = run(&msg, |ctx| {
                assert_eq!(subst(ctx, &sub(re_ua)), 1, "{re_ua}");
                remove_hf(ctx, &HdrName::new("User-Agent"))
            });
            assert_eq!(rc, 1, "{re_ua}");
            assert!(!out.contains("User-Agent") && !out.contains("phone"), "{re_ua}: {out}");
            assert!(out.contains("Contact: <sip:bob@192.0.2.1>\r\nContent-Type"), "{re_ua}");
            assert_eq!(ctx.edits.len(), 2);
            // The other way round: the subst finds nothing left to replace.
            let (rc, out, ctx) = run(&msg, |ctx| {
                assert_eq!(remove_hf(ctx, &HdrName::new("User-Agent")), 1);
                subst(ctx, &sub(re_ua))
            });
            assert_eq!((rc, ctx.edits.len()), (-1, 1), "{re_ua}");
            assert!(!out.contains("User-Agent") && !out.contains("phone"), "{re_ua}");
        }
        // A substitution in a header and the body: the body's stays, Content-Length follows.
        let (rc, out, _) = run(&msg, |ctx| {
            assert_eq!(subst(ctx, &sub("/192\\.0\\.2\\.1/198.51.100.77/g")), 1);
            remove_hf(ctx, &HdrName::new("Contact"))
        });
        assert_eq!(rc, 1);
        assert!(!out.contains("Contact:") && !out.contains("192.0.2.1"));
        assert!(out.contains(&format!("Content-Length: {}\r\n", SDP.len() + 8)));
        assert_eq!(body_of(&out).matches("198.51.100.77").count(), 2);

        // The From header, written without `run` (which parses the result again, and a
        // request without From is refused).
        let [from_first, subst_first] = [false, true].map(|subst_first| {
            let config: &'static Config = Box::leak(Box::default());
            let vars: &'static mut Vars = Box::leak(Box::default());
            let mut ctx = Ctx::new(&msg, src(), config, vars);
            let s = sub(r"/^(From:.*)4/\1X/");
            if subst_first {
                assert_eq!(subst(&mut ctx, &s), 1);
                assert_eq!(remove_hf(&mut ctx, &HdrName::new("From")), 1);
            } else {
                assert_eq!(remove_hf(&mut ctx, &HdrName::new("From")), 1);
                assert_eq!(subst(&mut ctx, &s), -1);
            }
            String::from_utf8(msg.write(&ctx.request_edits()).unwrap().to_vec()).unwrap()
        });
        assert_eq!(from_first, subst_first);
        assert!(!subst_first.contains("From:") && !subst_first.contains("1928301774"));
        assert!(subst_first.contains("\r\nTo: Alice <sip:alice@example.com>\r\nCall-ID: "));
    }

    #[test]
    fn edits_never_cut_into_the_content_length_value() {
        let msg = message(INVITE, "1234567890123");
        // "13" is the Content-Length value: replacing a part of it would be lost.
        let (rc, out, _) = run(&msg, |ctx| replace(ctx, &re("Content-Length: 1"), "Content-Length: 9"));
        assert_eq!(rc, -1);
        assert!(out.contains("Content-Length: 13\r\n"));
        // Replacing all of it is the script's choice, and the value is left alone.
        let (rc, out, _) = run(&msg, |ctx| replace(ctx, &re("Content-Length: 13"), "Content-Length: 13"));
        assert_eq!(rc, 1);
        assert!(out.contains("Content-Length: 13\r\n"));
        // In the body, digits are fine and the length follows.
        let (rc, out, _) = run(&msg, |ctx| replace_body_all(ctx, &re("[0-9]{3}"), "x"));
        assert_eq!(rc, 1);
        assert!(out.ends_with("Content-Length: 5\r\n\r\nxxxx3"));
    }

    // ---------------------------------------------------------------- subst

    #[test]
    fn subst_over_headers_and_body() {
        let msg = invite();
        // The README's example: the To URI becomes the Request-URI.
        let (rc, out, _) = run(&msg, |ctx| subst(ctx, &sub(r"/^To:(.*)sip:[^@]*@[a-zA-Z0-9.]+(.*)$/t:\1\u\2/ig")));
        assert_eq!(rc, 1);
        assert!(out.contains("\r\nt: Alice <sip:alice@example.com>\r\n"), "{out}");
        // Not global: only the first match.
        let (rc, out, _) = run(&msg, |ctx| subst(ctx, &sub("/(soft)?phone/$si-\\1/")));
        assert_eq!(rc, 1);
        assert!(out.contains("\r\nUser-Agent: 192.0.2.1-soft/1.0\r\n"));
        // Global, over headers and body.
        let (rc, out, _) = run(&msg, |ctx| subst(ctx, &sub(r"/(192\.0\.2)\.1/\1.2/g")));
        assert_eq!(rc, 1);
        assert_eq!(out.matches("192.0.2.2").count(), 4);
        // Case-sensitive without `i`.
        assert_eq!(run(&msg, |ctx| subst(ctx, &sub("/^to:/t:/"))).0, -1);
        // Body only.
        let (rc, out, _) = run(&msg, |ctx| subst_body(ctx, &sub("/^o=([a-z]+) /o=$fU-\\1 /")));
        assert_eq!(rc, 1);
        assert!(body_of(&out).contains("\r\no=bob-bob 2890844526"));
        assert_eq!(run(&msg, |ctx| subst_body(ctx, &sub("/^User-Agent/x/"))).0, -1);
        assert_eq!(run(&message(INVITE, ""), |ctx| subst_body(ctx, &sub("/a/b/"))).0, -1);
        // An empty match is an error (1.3), and nothing is changed.
        let (rc, _, ctx) = run(&msg, |ctx| subst(ctx, &sub("/x*/y/g")));
        assert_eq!((rc, ctx.edits.len()), (-1, 0));
        // A replacement naming an unknown pseudo-variable.
        let bad = Subst { re: regex::Regex::new("a").unwrap(), replacement: "$$nosuch".into(), global: false };
        assert_eq!(run(&msg, |ctx| subst(ctx, &bad)).0, -1);
    }

    #[test]
    fn subst_with_the_s_flag_crosses_lines() {
        let msg = invite();
        let (rc, out, _) =
            run(&msg, |ctx| subst(ctx, &sub(r"/Max-Forwards: 70.*Alice/Max-Forwards: 69\r\nTo: Alicia/s")));
        assert_eq!(rc, 1);
        assert!(out.contains("branch=z9hG4bK776asdhds\r\nMax-Forwards: 69\r\nTo: Alicia <sip:"));
        // Without it `.` stops at the line end.
        assert_eq!(run(&msg, |ctx| subst(ctx, &sub("/Max-Forwards: 70.*Alice/x/"))).0, -1);
    }

    #[test]
    fn subst_uri_and_subst_user() {
        let msg = invite();
        let (rc, out, ctx) = run(&msg, |ctx| subst_uri(ctx, &sub(r"/^sip:([a-z]+)@(.*)$/sip:3463\1@\2;orig=$rU/i")));
        assert_eq!(rc, 1);
        assert_eq!(ctx.ruri.as_deref(), Some("sip:3463alice@example.com;orig=alice"));
        assert!(out.starts_with("INVITE sip:3463alice@example.com;orig=alice SIP/2.0\r\n"));
        // The README's `;orig_uri=\0` puts an `@` in a parameter: not a SIP URI.
        assert_eq!(run(&msg, |ctx| subst_uri(ctx, &sub(r"/^sip:([a-z]+)@(.*)$/sip:3463\1@\2;orig_uri=\0/i"))).0, -1);
        assert_eq!(run(&msg, |ctx| subst_uri(ctx, &sub("/^tel:/sip:/"))).0, -1);
        assert_eq!(run(&msg, |ctx| subst_uri(ctx, &sub("/^sip:/not a uri /"))).0, -1);

        // The user part of the Request-URI as it is now.
        let (rc, _, ctx) = run(&msg, |ctx| {
            ctx.ruri = Some("sip:0049123:pw@example.com;user=phone".into());
            subst_user(ctx, &sub("/^00/+/"))
        });
        assert_eq!(rc, 1);
        assert_eq!(ctx.ruri.as_deref(), Some("sip:+49123:pw@example.com;user=phone"));
        let (rc, _, ctx) = run(&msg, |ctx| subst_user(ctx, &sub("/(.*)ce$/$fU\\1/")));
        assert_eq!(rc, 1);
        assert_eq!(ctx.ruri.as_deref(), Some("sip:bobali@example.com"));
        assert_eq!(run(&msg, |ctx| subst_user(ctx, &sub("/^bob$/x/"))).0, -1);
        // No user: matched against "", where an empty match fails.
        let (rc, _, ctx) = run(&msg, |ctx| {
            ctx.ruri = Some("sip:example.com".into());
            subst_user(ctx, &sub("/^$/x/"))
        });
        assert_eq!((rc, ctx.ruri.as_deref()), (-1, Some("sip:example.com")));
    }

    #[test]
    fn subst_uri_and_user_refuse_replies() {
        let reply = message(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nTo: <sip:a@b>;tag=2\nFrom: <sip:c@d>;tag=1\nCall-ID: x\nCSeq: 1 BYE",
            "",
        );
        assert_eq!(run(&reply, |ctx| subst_uri(ctx, &sub("/a/b/"))).0, -1);
        assert_eq!(run(&reply, |ctx| subst_user(ctx, &sub("/a/b/"))).0, -1);
        // `\u` is nothing in a reply.
        let (rc, out, _) = run(&reply, |ctx| subst(ctx, &sub(r"/^Call-ID: x/Call-ID: x\u/")));
        assert_eq!(rc, 1);
        assert!(out.contains("\r\nCall-ID: x\r\n"));
        assert_eq!(run(&reply, |ctx| append_urihf(ctx, "X: ", "\r\n")).0, -1);
    }

    // ---------------------------------------------------------------- headers

    #[test]
    fn append_and_insert_headers() {
        let msg = invite();
        let (rc, out, _) = run(&msg, |ctx| append_hf_1(ctx, &fmt("P-Hint: $fU\r\n")));
        assert_eq!(rc, 1);
        assert!(out.contains(&format!("Content-Length: {}\r\nP-Hint: bob\r\n\r\nv=0", SDP.len())), "{out}");

        let (rc, out, _) = run(&msg, |ctx| append_hf_2(ctx, &fmt("P-Hint: x\r\n"), &HdrName::new("Call-ID")));
        assert_eq!(rc, 1);
        assert!(out.contains("Call-ID: a84b4c76e66710@pc33.example.org\r\nP-Hint: x\r\nCSeq:"));
        // No such header: after the last one (1.3).
        let (rc, out, _) = run(&msg, |ctx| append_hf_2(ctx, &fmt("P-Hint: x\r\n"), &HdrName::new("X-None")));
        assert_eq!(rc, 1);
        assert!(out.contains("P-Hint: x\r\n\r\nv=0"));

        let (rc, out, _) = run(&msg, |ctx| insert_hf_1(ctx, &fmt("P-First: 1\r\n")));
        assert_eq!(rc, 1);
        assert!(out.starts_with("INVITE sip:alice@example.com SIP/2.0\r\nP-First: 1\r\nVia:"));
        let (rc, out, _) = run(&msg, |ctx| insert_hf_2(ctx, &fmt("P-Before: 1\r\n"), &HdrName::new("cseq")));
        assert_eq!(rc, 1);
        assert!(out.contains("\r\nP-Before: 1\r\nCSeq: 314159 INVITE\r\n"));
        let (rc, out, _) = run(&msg, |ctx| insert_hf_2(ctx, &fmt("P-Before: 1\r\n"), &HdrName::new("X-None")));
        assert_eq!(rc, 1);
        assert!(out.starts_with("INVITE sip:alice@example.com SIP/2.0\r\nP-Before: 1\r\nVia:"));

        // Several calls come out in call order.
        let (_, out, _) = run(&msg, |ctx| {
            append_hf_1(ctx, &fmt("A: 1\r\n"));
            append_hf_1(ctx, &fmt("B: 2\r\n"));
            insert_hf_1(ctx, &fmt("C: 3\r\n"));
            insert_hf_1(ctx, &fmt("D: 4\r\n"))
        });
        assert!(out.contains("A: 1\r\nB: 2\r\n\r\n"));
        assert!(out.contains("SIP/2.0\r\nC: 3\r\nD: 4\r\nVia"));
    }

    #[test]
    fn header_text_gets_its_crlf_and_bad_text_is_refused() {
        let msg = invite();
        for text in ["P-Hint: x", "P-Hint: x\n", "P-Hint: x\r"] {
            let (rc, out, _) = run(&msg, |ctx| append_hf_1(ctx, &fmt(text)));
            assert_eq!(rc, 1);
            let reparsed = Message::parse(Bytes::from(out.clone()), Framing::Datagram).unwrap();
            assert_eq!(reparsed.headers_by_text("P-Hint").map(|h| reparsed.text(h.value)).collect::<Vec<_>>(), ["x"]);
            assert_eq!(body_of(&out), SDP);
        }
        let (rc, out, _) = run(&msg, |ctx| append_hf_1(ctx, &fmt("A: 1\r\nB: 2")));
        assert_eq!(rc, 1);
        assert!(out.contains("A: 1\r\nB: 2\r\n\r\n"));
        for bad in ["", "\r\n", " folded: x\r\n", "A: 1\r\n\r\nB: 2\r\n", "no colon\r\n", "A: 1\n\n"] {
            let (rc, out, ctx) = run(&msg, |ctx| append_hf_1(ctx, &fmt(bad)));
            assert_eq!((rc, ctx.edits.len()), (-1, 0), "{bad:?}");
            assert_eq!(out.as_bytes(), &msg.bytes()[..]);
            assert_eq!(run(&msg, |ctx| insert_hf_1(ctx, &fmt(bad))).0, -1);
            assert_eq!(run(&msg, |ctx| append_to_reply(ctx, &fmt(bad))).0, -1);
        }
    }

    #[test]
    fn append_urihf_uses_the_request_uri_as_received() {
        let msg = invite();
        let (rc, out, _) = run(&msg, |ctx| {
            ctx.ruri = Some("sip:voicemail@example.net".into());
            append_urihf(ctx, "CC-Diversion: <", ">\r\n")
        });
        assert_eq!(rc, 1);
        assert!(out.contains("CC-Diversion: <sip:alice@example.com>\r\n\r\n"));
        let (rc, out, _) = run(&msg, |ctx| append_urihf(ctx, "X-Uri: ", ""));
        assert_eq!(rc, 1);
        assert!(out.contains("X-Uri: sip:alice@example.com\r\n\r\n"));
    }

    #[test]
    fn remove_hf_removes_every_line_and_counts_them() {
        let msg = message(
            "OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nv: SIP/2.0/UDP g;branch=z9hG4bK2\n\
Max-Forwards: 70\nTo: <sip:a@b>\nFrom: <sip:c@d>;tag=1\nCall-ID: x\nCSeq: 1 OPTIONS\nX-Foo: 1\n\
Session-Expires: 90\nx-foo: 2\nX-Foo-Bar: 3\nx: 120\nSubject:\n folded\ns: short",
            "",
        );
        let (rc, out, _) = run(&msg, |ctx| remove_hf(ctx, &HdrName::new("X-Foo")));
        assert_eq!(rc, 2);
        assert!(!out.contains("X-Foo: 1") && !out.contains("x-foo: 2") && out.contains("X-Foo-Bar: 3\r\n"));
        // Compact forms, known names or not, and folded lines.
        let (rc, out, _) = run(&msg, |ctx| remove_hf(ctx, &HdrName::new("Session-Expires")));
        assert_eq!(rc, 2);
        assert!(!out.contains("90") && !out.contains("x: 120"));
        let (rc, out, _) = run(&msg, |ctx| remove_hf(ctx, &HdrName::new("x")));
        assert_eq!(rc, 2);
        assert!(!out.contains("Session-Expires"));
        let (rc, out, _) = run(&msg, |ctx| remove_hf(ctx, &HdrName::new("Subject")));
        assert_eq!(rc, 2);
        assert!(!out.contains("folded") && !out.contains("short"));
        // None there, or already removed.
        assert_eq!(run(&msg, |ctx| remove_hf(ctx, &HdrName::new("X-None"))).0, -1);
        let (rc, _, _) = run(&msg, |ctx| {
            assert_eq!(remove_hf(ctx, &HdrName::new("X-Foo")), 2);
            remove_hf(ctx, &HdrName::new("X-Foo"))
        });
        assert_eq!(rc, -1);
    }

    #[test]
    fn is_present_hf_sees_removals() {
        let msg = invite();
        assert_eq!(run(&msg, |ctx| is_present_hf(ctx, &HdrName::new("user-agent"))).0, 1);
        assert_eq!(run(&msg, |ctx| is_present_hf(ctx, &HdrName::new("c"))).0, 1, "compact Content-Type");
        assert_eq!(run(&msg, |ctx| is_present_hf(ctx, &HdrName::new("f"))).0, 1);
        assert_eq!(run(&msg, |ctx| is_present_hf(ctx, &HdrName::new("Route"))).0, -1);
        assert_eq!(run(&msg, |ctx| is_present_hf(ctx, &HdrName::new("User"))).0, -1);
        let (rc, _, _) = run(&msg, |ctx| {
            remove_hf(ctx, &HdrName::new("User-Agent"));
            is_present_hf(ctx, &HdrName::new("User-Agent"))
        });
        assert_eq!(rc, -1);
    }

    // ---------------------------------------------------------------- replies

    #[test]
    fn append_to_reply_and_append_time() {
        let msg = invite();
        let (rc, out, ctx) = run(&msg, |ctx| {
            assert_eq!(append_to_reply(ctx, &fmt("X-Method: $rm")), 1);
            append_time(ctx)
        });
        assert_eq!(rc, 1);
        assert_eq!(out.as_bytes(), &msg.bytes()[..], "the request is not changed");
        let lines: Vec<&str> = ctx.reply_headers.split_terminator("\r\n").collect();
        assert_eq!(lines[0], "X-Method: INVITE");
        let date = lines[1].strip_prefix("Date: ").unwrap();
        assert!(crate::sip::values::valid_date(date.as_bytes()), "{date}");
        assert!(ctx.reply_headers.ends_with("GMT\r\n"));
    }

    #[test]
    fn rfc1123_dates() {
        assert_eq!(rfc1123(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc1123(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(rfc1123(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(rfc1123(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(rfc1123(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(rfc1123(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    // ---------------------------------------------------------------- method, body, privacy

    #[test]
    fn is_method_of_requests_and_replies() {
        let msg = invite();
        let m = |s: &str| Methods::parse(s);
        assert_eq!(run(&msg, |ctx| is_method(ctx, &m("INVITE"))).0, 1);
        assert_eq!(run(&msg, |ctx| is_method(ctx, &m("BYE|INVITE"))).0, 1);
        assert_eq!(run(&msg, |ctx| is_method(ctx, &m("invite"))).0, 1, "names of known methods ignore case");
        assert_eq!(run(&msg, |ctx| is_method(ctx, &m("BYE|CANCEL"))).0, -1);
        let reply = message(
            "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nTo: <sip:a@b>;tag=2\nFrom: <sip:c@d>;tag=1\nCall-ID: x\nCSeq: 1 BYE",
            "",
        );
        assert_eq!(run(&reply, |ctx| is_method(ctx, &m("BYE"))).0, 1);
        assert_eq!(run(&reply, |ctx| is_method(ctx, &m("INVITE"))).0, -1);
        let ext = message(
            "FOO sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nMax-Forwards: 70\nTo: <sip:a@b>\nFrom: <sip:c@d>;tag=1\nCall-ID: x\nCSeq: 1 FOO",
            "",
        );
        assert_eq!(run(&ext, |ctx| is_method(ctx, &m("FOO"))).0, 1);
        assert_eq!(run(&ext, |ctx| is_method(ctx, &m("foo"))).0, 1, "1.3 compares extension methods with strncasecmp");
        assert_eq!(run(&ext, |ctx| is_method(ctx, &m("INVITE|BAR"))).0, -1);
        let lower = message(
            "invite sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nMax-Forwards: 70\nTo: <sip:a@b>\nFrom: <sip:c@d>;tag=1\nCall-ID: x\nCSeq: 1 invite",
            "",
        );
        assert_eq!(run(&lower, |ctx| is_method(ctx, &m("INVITE"))).0, -1, "`invite` is not INVITE");
    }

    #[test]
    fn has_body_with_and_without_a_type() {
        let msg = invite();
        assert_eq!(run(&msg, has_body_0).0, 1);
        assert_eq!(run(&msg, |ctx| has_body_1(ctx, "application/sdp")).0, 1);
        assert_eq!(run(&msg, |ctx| has_body_1(ctx, "Application/SDP")).0, 1);
        assert_eq!(run(&msg, |ctx| has_body_1(ctx, "text/plain")).0, -1);
        assert_eq!(run(&msg, |ctx| has_body_1(ctx, "")).0, 1);
        let empty = message(INVITE, "");
        assert_eq!(run(&empty, has_body_0).0, -1);
        assert_eq!(run(&empty, |ctx| has_body_1(ctx, "application/sdp")).0, -1);
        // Parameters are ignored; no Content-Type means application/sdp.
        let with_params = message(&INVITE.replace("application/sdp", "text/plain ; charset=utf-8"), "hello");
        assert_eq!(run(&with_params, |ctx| has_body_1(ctx, "text/plain")).0, 1);
        let untyped = message(&INVITE.replace("\nContent-Type: application/sdp", ""), "v=0\r\n");
        assert_eq!(run(&untyped, |ctx| has_body_1(ctx, "application/sdp")).0, 1);
        // A datagram without Content-Length: the rest is the body (RFC 3261 §18.3).
        let raw = "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\r\nhi";
        let no_cl = Message::parse(Bytes::from(raw), Framing::Datagram).unwrap();
        assert_eq!(run(&no_cl, has_body_0).0, 1);
        assert_eq!(run(&no_cl, |ctx| has_body_1(ctx, "text/plain")).0, 1);
    }

    #[test]
    fn is_privacy_values() {
        let msg = message(&format!("{INVITE}\nPrivacy: id; header ;user"), SDP);
        for (v, rc) in [("id", 1), ("header", 1), ("user", 1), ("USER", 1), ("session", -1), ("none", -1)] {
            assert_eq!(run(&msg, |ctx| is_privacy(ctx, v)).0, rc, "{v}");
        }
        let commas = message(&format!("{INVITE}\nPrivacy: session, critical"), SDP);
        assert_eq!(run(&commas, |ctx| is_privacy(ctx, "critical")).0, 1);
        let ext = message(&format!("{INVITE}\nPrivacy: x-private;history"), SDP);
        assert_eq!(run(&ext, |ctx| is_privacy(ctx, "history")).0, 1);
        assert_eq!(run(&invite(), |ctx| is_privacy(ctx, "id")).0, -1);
        let (rc, _, _) = run(&msg, |ctx| {
            remove_hf(ctx, &HdrName::new("Privacy"));
            is_privacy(ctx, "id")
        });
        assert_eq!(rc, -1);
    }

    // ---------------------------------------------------------------- filter_body

    const MULTIPART: &str = "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b1\r\nContent-Type: application/sdp\r\nContent-Disposition: session\r\n\r\nv=0\r\ns=-\r\n\r\n\
--b1\r\nContent-Type: application/sdp\r\n\r\nv=1\r\n\r\n--b1--\r\n";

    fn multipart(ct: &str, body: &str) -> Message {
        message(&INVITE.replace("application/sdp", ct), body)
    }

    #[test]
    fn filter_body_keeps_the_first_part_of_the_type() {
        let msg = multipart("multipart/mixed;boundary=b1", MULTIPART);
        let (rc, out, _) = run(&msg, |ctx| {
            assert_eq!(filter_body(ctx, "application/sdp"), 1);
            assert_eq!(remove_hf(ctx, &HdrName::new("Content-Type")), 1);
            append_hf_1(ctx, &fmt("Content-Type: application/sdp\r\n"))
        });
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), "v=0\r\ns=-\r\n");
        assert!(out.contains("Content-Length: 10\r\nContent-Type: application/sdp\r\n\r\n"), "{out}");
        let (rc, out, _) = run(&msg, |ctx| filter_body(ctx, "TEXT/PLAIN"));
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), "hello");
        assert_eq!(run(&msg, |ctx| filter_body(ctx, "image/png")).0, -1);
        // Twice is the same as once.
        let (rc, out, _) = run(&msg, |ctx| {
            filter_body(ctx, "application/sdp");
            filter_body(ctx, "application/sdp")
        });
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), "v=0\r\ns=-\r\n");
    }

    #[test]
    fn filter_body_reads_boundaries_as_rfc_2046_does() {
        // A quoted boundary, a preamble and an epilogue, transport padding, LF-only
        // lines, and a boundary-like line that is not a delimiter.
        let body = "preamble\r\n--simple boundary  \r\nContent-type: text/plain\r\n\r\n--simple boundaryX\r\n\
--simple boundary\nContent-Type: application/sdp; x=1\n\nv=0\n--simple boundary--\r\nepilogue";
        let msg = multipart("multipart/alternative; boundary=\"simple boundary\"", body);
        let (rc, out, _) = run(&msg, |ctx| filter_body(ctx, "application/sdp"));
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), "v=0");
        let (rc, out, _) = run(&msg, |ctx| filter_body(ctx, "text/plain"));
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), "--simple boundaryX");
        // A part without headers is text/plain; no closing delimiter: to the end.
        let msg = multipart("multipart/mixed;boundary=zz", "--zz\r\n\r\nplain\r\n--zz\r\nContent-Type: a/b\r\n\r\nab");
        assert_eq!(body_of(&run(&msg, |ctx| filter_body(ctx, "text/plain")).1), "plain");
        assert_eq!(body_of(&run(&msg, |ctx| filter_body(ctx, "a/b")).1), "ab");
    }

    #[test]
    fn filter_body_looks_into_nested_multiparts() {
        let inner = "--in\r\nContent-Type: text/html\r\n\r\n<p>\r\n--in\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--in--";
        let body = format!(
            "--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n{inner}\r\n--out\r\nContent-Type: application/sdp\r\n\r\nv=9\r\n--out--\r\n"
        );
        let msg = multipart("multipart/mixed; boundary=out", &body);
        let (rc, out, _) = run(&msg, |ctx| filter_body(ctx, "application/sdp"));
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), "v=0\r\n");
        let (rc, out, _) = run(&msg, |ctx| filter_body(ctx, "multipart/alternative"));
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), inner);
    }

    #[test]
    fn filter_body_needs_a_multipart_body() {
        assert_eq!(run(&invite(), |ctx| filter_body(ctx, "application/sdp")).0, -1);
        assert_eq!(run(&multipart("multipart/mixed", MULTIPART), |ctx| filter_body(ctx, "text/plain")).0, -1);
        assert_eq!(run(&multipart("multipart/mixed;boundary=b1", ""), |ctx| filter_body(ctx, "text/plain")).0, -1);
        let untyped = message(&INVITE.replace("\nContent-Type: application/sdp", ""), MULTIPART);
        assert_eq!(run(&untyped, |ctx| filter_body(ctx, "text/plain")).0, -1);
        // A clash with an earlier edit of the body: text inserted in a part removed.
        let msg = multipart("multipart/mixed;boundary=b1", MULTIPART);
        let (rc, out, _) = run(&msg, |ctx| {
            assert_eq!(search_append_body(ctx, &re("hello"), ", world"), 1);
            filter_body(ctx, "application/sdp")
        });
        assert_eq!(rc, -1);
        assert!(body_of(&out).contains("hello, world\r\n--b1"));
        // Text replaced in a part removed goes with it.
        let (rc, out, _) = run(&msg, |ctx| {
            assert_eq!(replace_body(ctx, &re("hello"), "bye"), 1);
            filter_body(ctx, "application/sdp")
        });
        assert_eq!(rc, 1);
        assert_eq!(body_of(&out), "v=0\r\ns=-\r\n");
    }

    #[test]
    fn mime_params() {
        assert_eq!(mime_param("multipart/mixed;boundary=abc", "boundary").as_deref(), Some("abc"));
        assert_eq!(
            mime_param("multipart/mixed; x=1 ; Boundary = \"a;b\\\"c\"; y=2", "boundary").as_deref(),
            Some("a;b\"c")
        );
        assert_eq!(mime_param("multipart/mixed; x=\"q;r\"; boundary=z", "boundary").as_deref(), Some("z"));
        assert_eq!(mime_param("multipart/mixed", "boundary"), None);
        assert_eq!(mime_param("multipart/mixed; x", "boundary"), None);
    }
}
