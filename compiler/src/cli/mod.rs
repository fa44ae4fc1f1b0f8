//! The pieces of the command line that subcommands share.

pub mod args;
pub mod build;
pub mod check;
pub mod ctl;
pub mod db;
pub mod emit;
pub mod modules;

use std::io::{self, Write};
use std::process::ExitCode;

use anstream::{AutoStream, ColorChoice};
use clap::ValueEnum;
use serc::diag::{render, Diagnostic, Severity};
use serc::source::SourceMap;

use crate::cli::check::Format;

/// How a run ended; the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Nothing that fails a check (warnings are allowed).
    Ok = 0,
    /// At least one file has errors.
    Errors = 1,
    /// The command could not do its work (a file could not be read); clap exits
    /// with 2 on usage errors too.
    Failure = 2,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status as u8)
    }
}

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Colour when the output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always colour (`CLICOLOR_FORCE=1` does the same for `auto`)
    Always,
    /// Never colour
    Never,
}

/// Standard error, with whether it takes ANSI colours: decided by `--color`, then
/// by `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`, `TERM` and whether it is a terminal.
pub struct Stderr {
    pub stream: AutoStream<io::Stderr>,
    pub color: bool,
}

impl Stderr {
    pub fn new(color: Color) -> Stderr {
        let choice = match color {
            Color::Auto => AutoStream::choice(&io::stderr()),
            Color::Always => ColorChoice::Always,
            Color::Never => ColorChoice::Never,
        };
        Stderr { stream: AutoStream::new(io::stderr(), choice), color: choice != ColorChoice::Never }
    }

    /// A rustc-style `error: …` line (the first word is the severity and is
    /// coloured like the diagnostics).
    pub fn line(&mut self, line: &str) {
        let styled = if self.color { paint_severity(line) } else { line.to_owned() };
        // Nothing useful can be done when standard error is gone.
        let _ = writeln!(self.stream, "{styled}");
    }
}

/// Colours the leading `error:` or `warning:` of a line as annotate-snippets
/// colours diagnostics, and the rest bold.
fn paint_severity(line: &str) -> String {
    const BOLD: &str = "\x1b[1m";
    const RESET: &str = "\x1b[0m";
    let (colour, rest) = if let Some(rest) = line.strip_prefix("error:") {
        ("\x1b[1m\x1b[91m", rest)
    } else if let Some(rest) = line.strip_prefix("warning:") {
        ("\x1b[1m\x1b[33m", rest)
    } else {
        return line.to_owned();
    };
    let word = &line[..line.len() - rest.len() - 1];
    format!("{colour}{word}{RESET}{BOLD}:{rest}{RESET}")
}

/// Reports diagnostics in a `--format`: human ones on standard error, machine
/// ones (errors and warnings only: notes are context for people) on standard
/// output.
pub fn report(format: Format, diags: &[Diagnostic], sources: &SourceMap, stderr: &mut Stderr, stdout: &mut Stdout) {
    match format {
        Format::Human => {
            let text = render::human(diags, sources, stderr.color);
            // Nothing useful can be done when standard error is gone.
            let _ = stderr.stream.write_all(text.as_bytes());
        }
        Format::Json | Format::Github => {
            for diag in diags.iter().filter(|d| matches!(d.severity, Severity::Error | Severity::Warning)) {
                let line = match format {
                    Format::Json => render::json_line(diag, sources),
                    _ => render::github(diag, sources),
                };
                stdout.line(&line);
            }
        }
    }
}

/// Standard output for machine-readable lines; stops writing quietly once the
/// reader has gone (`… --format json | head -1`).
pub struct Stdout {
    out: io::StdoutLock<'static>,
    closed: bool,
}

impl Default for Stdout {
    fn default() -> Stdout {
        Stdout::new()
    }
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout { out: io::stdout().lock(), closed: false }
    }

    pub fn line(&mut self, line: &str) {
        if !self.closed && writeln!(self.out, "{line}").is_err() {
            self.closed = true;
        }
    }
}
