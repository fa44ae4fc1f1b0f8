//! The text format the FIFO and datagram transports share: a request's
//! argument lines and a reply's lines, as OpenSER 1.3's `mi_fifo`
//! (`mi_parser.c`, `mi_writer.c`) and `mi_datagram` (`mi_datagram_parser.c`,
//! `mi_datagram_writer.c`) read and write them. Sans-IO: bytes in, values out.
//!
//! A request is a first line naming the command (`:which:reply_fifo` on the
//! FIFO, `:which:` in a datagram), then one argument per line, ended by an
//! empty line. An argument line is a node: `value`, `name::value`, or either
//! with the value in double quotes (`"a value"`, where `\"` is a quote and the
//! value may go on over several lines, the line breaks kept). Spaces around
//! names and unquoted values are dropped; lines of spaces only are skipped; a
//! quote inside an unquoted name or value, or text after a closing quote, is a
//! parse error.
//!
//! A reply is `CODE REASON\n`, then one line per node, depth first, each
//! indented by `reply_indent` once per level: `name:: value` (or `value`
//! alone for a node without a name), then ` attr=value` for each attribute.
//! On the FIFO an empty line ends the reply; a datagram ends without it (1.3's
//! datagram writer overwrites that last line feed with the string's end).

use super::tree::MiReply;

/// One argument of a request: `name::value`, either part optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgNode {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// Why a request's arguments do not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A quote where none may be (byte offset within its line).
    StrayQuote,
    /// Text after a closing quote.
    AfterQuote,
    /// A quoted value still open at the end of the request.
    Unterminated,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ParseError::StrayQuote => "a quote inside an unquoted name or value",
            ParseError::AfterQuote => "text after a closing quote",
            ParseError::Unterminated => "a quoted value is not closed",
        })
    }
}

fn is_space(b: u8) -> bool {
    // C's isspace in the "C" locale.
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The end of `s` without trailing spaces.
fn trim_end(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|b| !is_space(*b)).map_or(0, |i| i + 1);
    &s[..end]
}

/// Parses the argument lines of a request (each without its line feed, the
/// terminating empty line not included).
pub fn parse_args(lines: &[&[u8]]) -> Result<Vec<ArgNode>, ParseError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let start = line.iter().position(|b| !is_space(*b));
        let Some(start) = start else { continue };
        let rest = &line[start..];
        if rest[0] == b'"' {
            let value = quoted(&rest[1..], lines, &mut i)?;
            out.push(ArgNode { name: None, value: Some(value) });
            continue;
        }
        let sep = rest.windows(2).position(|w| w == b"::");
        let (name_part, value_part) = match sep {
            Some(at) => (Some(&rest[..at]), &rest[at + 2..]),
            None => (None, rest),
        };
        let name = match name_part {
            Some(n) => {
                if n.contains(&b'"') {
                    return Err(ParseError::StrayQuote);
                }
                let n = trim_end(n);
                (!n.is_empty()).then(|| text(n))
            }
            None => None,
        };
        let v = match value_part.iter().position(|b| !is_space(*b)) {
            Some(p) => &value_part[p..],
            None => {
                out.push(ArgNode { name, value: None });
                continue;
            }
        };
        let value = if v[0] == b'"' && sep.is_some() {
            quoted(&v[1..], lines, &mut i)?
        } else {
            if v.contains(&b'"') {
                return Err(ParseError::StrayQuote);
            }
            text(trim_end(v))
        };
        out.push(ArgNode { name, value: Some(value) });
    }
    Ok(out)
}

/// A quoted value starting after its opening quote in `first`; it may go on
/// over the next lines (`*next` is the index of the next unread line).
fn quoted(first: &[u8], lines: &[&[u8]], next: &mut usize) -> Result<String, ParseError> {
    let mut value: Vec<u8> = Vec::new();
    let mut line = first;
    loop {
        let mut j = 0;
        while j < line.len() {
            let b = line[j];
            if b == b'"' {
                // `\"` is a quote, except right after the opening one (1.3).
                if !value.is_empty() && value.last() == Some(&b'\\') {
                    value.pop();
                    value.push(b'"');
                    j += 1;
                    continue;
                }
                if !line[j + 1..].iter().all(|b| is_space(*b)) {
                    return Err(ParseError::AfterQuote);
                }
                return Ok(text(&value));
            }
            value.push(b);
            j += 1;
        }
        let Some(more) = lines.get(*next) else { return Err(ParseError::Unterminated) };
        *next += 1;
        value.push(b'\n');
        line = more;
    }
}

/// Writes `reply` in the text format: `CODE REASON\n` and the nodes, each
/// level indented by `indent` (empty: no indentation). `end_line`: add the
/// empty line that ends a FIFO reply.
pub fn write_reply(reply: &MiReply, indent: &str, end_line: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(reply.code.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reply.reason.as_bytes());
    out.push(b'\n');
    write_nodes(&reply.nodes, indent, 0, &mut out);
    if end_line {
        out.push(b'\n');
    }
    out
}

fn write_nodes(nodes: &[super::tree::MiNode], indent: &str, level: usize, out: &mut Vec<u8>) {
    for node in nodes {
        for _ in 0..level {
            out.extend_from_slice(indent.as_bytes());
        }
        if let Some(name) = &node.name {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b":: ");
        }
        if let Some(value) = &node.value {
            out.extend_from_slice(value.as_bytes());
        }
        for (name, value) in &node.attributes {
            if let Some(name) = name {
                out.push(b' ');
                out.extend_from_slice(name.as_bytes());
                out.push(b'=');
            }
            if let Some(value) = value {
                out.extend_from_slice(value.as_bytes());
            }
        }
        out.push(b'\n');
        write_nodes(&node.children, indent, level + 1, out);
    }
}

/// The first line of a FIFO request, `:command:reply_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FifoCommand {
    pub command: String,
    /// The reply FIFO's file name (in `reply_dir`); `None`: no reply wanted.
    pub reply_file: Option<String>,
}

/// Why a FIFO request's first line is refused (1.3 logs and answers nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandLineError {
    Empty,
    TooShort,
    NoLeadingColon,
    NoSeparator,
    EmptyCommand,
    /// The reply file name has `.`, `/` or `\` (it must stay in `reply_dir`).
    ForbiddenFileName,
    /// `reply_dir` and the file name are longer than 1.3's 127 bytes.
    FileNameTooLong,
}

impl std::fmt::Display for CommandLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CommandLineError::Empty => "empty command line",
            CommandLineError::TooShort => "a command line has at least 3 characters",
            CommandLineError::NoLeadingColon => "a command line begins with ':'",
            CommandLineError::NoSeparator => "no ':' after the command name",
            CommandLineError::EmptyCommand => "empty command name",
            CommandLineError::ForbiddenFileName => "forbidden reply file name (it has '.', '/' or '\\')",
            CommandLineError::FileNameTooLong => "reply file name too long",
        })
    }
}

/// 1.3's `MAX_MI_FILENAME`: `reply_dir` + the file name + its NUL.
pub const MAX_REPLY_PATH: usize = 128;

/// Parses a FIFO request's first line (with or without its line end).
/// `reply_dir_len`: the length of `reply_dir`, for 1.3's path length limit.
pub fn parse_fifo_command(line: &[u8], reply_dir_len: usize) -> Result<FifoCommand, CommandLineError> {
    let line = {
        let end = line.iter().rposition(|b| !matches!(b, b'\n' | b'\r' | b' ' | b'\t')).map_or(0, |i| i + 1);
        &line[..end]
    };
    if line.is_empty() {
        return Err(CommandLineError::Empty);
    }
    if line.len() < 3 {
        return Err(CommandLineError::TooShort);
    }
    if line[0] != b':' {
        return Err(CommandLineError::NoLeadingColon);
    }
    let rest = &line[1..];
    let sep = rest.iter().position(|b| *b == b':').ok_or(CommandLineError::NoSeparator)?;
    if sep == 0 {
        return Err(CommandLineError::EmptyCommand);
    }
    let command = text(&rest[..sep]);
    let file = &rest[sep + 1..];
    let reply_file = if file.is_empty() {
        None
    } else {
        if file.iter().any(|b| matches!(b, b'.' | b'/' | b'\\' | 0)) {
            return Err(CommandLineError::ForbiddenFileName);
        }
        if reply_dir_len + file.len() + 1 > MAX_REPLY_PATH {
            return Err(CommandLineError::FileNameTooLong);
        }
        Some(text(file))
    };
    Ok(FifoCommand { command, reply_file })
}

/// Splits a datagram request into its command and argument lines: the first
/// line must be `:command:` exactly (1.3: anything else is "command not
/// available"); the arguments end at the first empty line or the datagram's end.
pub fn parse_datagram(datagram: &[u8]) -> Option<(String, Vec<&[u8]>)> {
    let rest = datagram.strip_prefix(b":")?;
    let sep = rest.iter().position(|b| *b == b':')?;
    if rest.get(sep + 1) != Some(&b'\n') {
        return None;
    }
    let command = text(&rest[..sep]);
    let body = &rest[sep + 2..];
    let mut lines = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    Some((command, lines))
}

#[cfg(test)]
mod tests {
    use super::super::tree::MiNode;
    use super::*;

    fn args(text: &str) -> Result<Vec<ArgNode>, ParseError> {
        let lines: Vec<&[u8]> = text.split('\n').map(str::as_bytes).collect();
        parse_args(&lines)
    }

    fn v(value: &str) -> ArgNode {
        ArgNode { name: None, value: Some(value.to_string()) }
    }

    #[test]
    fn argument_lines() {
        assert_eq!(args("  all  \ncore:").unwrap(), vec![v("all"), v("core:")]);
        assert_eq!(
            args("name:: value x \n::v\nn::\n   \n").unwrap(),
            vec![
                ArgNode { name: Some("name".into()), value: Some("value x".into()) },
                v("v"),
                ArgNode { name: Some("n".into()), value: None },
            ]
        );
        assert_eq!(args("\"a b\"  ").unwrap(), vec![v("a b")]);
        assert_eq!(args(r#""say \"hi\"""#).unwrap(), vec![v("say \"hi\"")]);
        assert_eq!(args("\"two\nlines\"").unwrap(), vec![v("two\nlines")]);
        assert_eq!(
            args("n:: \"quoted\"").unwrap(),
            vec![ArgNode { name: Some("n".into()), value: Some("quoted".into()) }]
        );
        assert_eq!(args("sip:alice@example.com").unwrap(), vec![v("sip:alice@example.com")]);
        assert_eq!(args("a\r").unwrap(), vec![v("a")]);
    }

    #[test]
    fn malformed_arguments() {
        assert_eq!(args("a\"b"), Err(ParseError::StrayQuote));
        assert_eq!(args("na\"me::v"), Err(ParseError::StrayQuote));
        assert_eq!(args("\"open"), Err(ParseError::Unterminated));
        assert_eq!(args("\"x\" y"), Err(ParseError::AfterQuote));
        assert_eq!(args("\u{0}\u{ff}"), Ok(vec![v("\u{0}\u{ff}")]));
    }

    #[test]
    fn reply_text_as_1_3_writes_it() {
        let r = MiReply::ok()
            .node(MiNode::new("Now", "Thu Nov 26 22:00:00 2026"))
            .node(MiNode::named("Process").attr("ID", "0").attr("PID", "42").attr("Type", "attendant"))
            .node(MiNode::value("core:rcv_requests = 3"))
            .node(MiNode::new("AOR", "alice").child(MiNode::new("Contact", "<sip:a@b>").attr("q", "")));
        let fifo = write_reply(&r, "\t", true);
        assert_eq!(
            String::from_utf8(fifo).unwrap(),
            "200 OK\nNow:: Thu Nov 26 22:00:00 2026\nProcess::  ID=0 PID=42 Type=attendant\n\
             core:rcv_requests = 3\nAOR:: alice\n\tContact:: <sip:a@b> q=\n\n"
        );
        let dgram = write_reply(&r, "  ", false);
        assert!(String::from_utf8(dgram).unwrap().ends_with("\n  Contact:: <sip:a@b> q=\n"));
        assert_eq!(write_reply(&MiReply::new(404, ""), "\t", true), b"404 \n\n");
    }

    #[test]
    fn fifo_command_lines() {
        let ok = |c: &str, f: Option<&str>| FifoCommand { command: c.into(), reply_file: f.map(Into::into) };
        assert_eq!(parse_fifo_command(b":which:reply_1\n", 5), Ok(ok("which", Some("reply_1"))));
        assert_eq!(parse_fifo_command(b":ps:\r\n", 5), Ok(ok("ps", None)));
        assert_eq!(parse_fifo_command(b"\n", 5), Err(CommandLineError::Empty));
        assert_eq!(parse_fifo_command(b":a", 5), Err(CommandLineError::TooShort));
        assert_eq!(parse_fifo_command(b"which:x", 5), Err(CommandLineError::NoLeadingColon));
        assert_eq!(parse_fifo_command(b":which", 5), Err(CommandLineError::NoSeparator));
        assert_eq!(parse_fifo_command(b"::file", 5), Err(CommandLineError::EmptyCommand));
        assert_eq!(parse_fifo_command(b":ps:../etc", 5), Err(CommandLineError::ForbiddenFileName));
        assert_eq!(parse_fifo_command(b":ps:a/b", 5), Err(CommandLineError::ForbiddenFileName));
        let long = format!(":ps:{}", "x".repeat(123));
        assert_eq!(parse_fifo_command(long.as_bytes(), 5), Err(CommandLineError::FileNameTooLong));
        let fits = format!(":ps:{}", "x".repeat(122));
        assert!(parse_fifo_command(fits.as_bytes(), 5).is_ok());
    }

    #[test]
    fn datagram_requests() {
        let (c, lines) = parse_datagram(b":get_statistics:\nall\ncore:\n\nignored\n").unwrap();
        assert_eq!(c, "get_statistics");
        assert_eq!(lines, vec![&b"all"[..], &b"core:"[..]]);
        let (c, lines) = parse_datagram(b":uptime:\n").unwrap();
        assert_eq!((c.as_str(), lines.len()), ("uptime", 0));
        assert_eq!(parse_datagram(b":which:").map(|(c, _)| c), None);
        assert_eq!(parse_datagram(b"which\n").map(|(c, _)| c), None);
        assert_eq!(parse_datagram(b":which:x\n").map(|(c, _)| c), None);
        assert_eq!(parse_datagram(b"").map(|(c, _)| c), None);
    }
}
