//! `serc check`: reads configs and reports every problem in them, without
//! building anything.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serc::diag::render;

use crate::cli::args::ReadArgs;
use crate::cli::{report, Color, Status, Stderr, Stdout};

const LONG_ABOUT: &str = "\
Read configs and report every problem in them, without building anything.

Each FILE is read with the files it includes. Every problem is reported, not \
only the first, with its file, line and column.";

const AFTER_LONG_HELP: &str = "\
Exit status:
  0  no FILE has errors (warnings and notes are allowed)
  1  at least one FILE has errors
  2  the command line is wrong, or a FILE could not be read (the other files are
     still checked)

Dialects:
  serc reads four dialects of the cfg language: ser-0.9 (SER and OpenSER 0.9),
  openser-1.3 (OpenSER 1.x, Kamailio 1.x), opensips (OpenSIPS 1.x) and kamailio
  (Kamailio 3.0 and later). The same text can mean different things in each, e.g.
  whether `&&` binds tighter than `||`. A file is read as the first of:
    1. the dialect given with --dialect;
    2. the one it declares on a `#!KAMAILIO` or `#!OPENSIPS` line;
    3. the one its content shows (syntax only one dialect has);
    4. OpenSER 1.3.

Output:
  human   rustc-style messages with the source lines, on standard error, then a
          summary line; nothing is printed for a clean file
  json    one JSON object per error or warning on standard output (JSON Lines):
          file, line, column, end_line, end_column (1-based), severity, kind,
          message, label, notes, help, secondary
  github  GitHub Actions workflow commands on standard output, which show up as
          annotations on the lines of a pull request

Examples:
  serc check openser.cfg
  serc check --format github openser.cfg        (in a GitHub Actions step)
  serc check --format json cfg/*.cfg | jq -r .message
  serc check --dialect kamailio -D WITH_NAT -D DBURL=mysql://db/ser kamailio.cfg";

const AFTER_HELP: &str = "\
Exit status: 0 no errors, 1 errors, 2 bad command line or unreadable FILE.
In CI:       serc check --format github openser.cfg
See `serc check --help` for the dialects and the output formats.";

/// Read configs and report every problem in them, without building anything
#[derive(Debug, Args)]
#[command(long_about = LONG_ABOUT, after_help = AFTER_HELP, after_long_help = AFTER_LONG_HELP)]
pub struct CheckArgs {
    /// How to report problems
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    pub format: Format,

    #[command(flatten)]
    pub read: ReadArgs,

    /// When to colour the human format
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Color::Auto)]
    pub color: Color,

    /// The configs to check
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Messages like rustc's, with source snippets, on standard error
    Human,
    /// One JSON object per error or warning, on standard output
    Json,
    /// GitHub Actions annotations, on standard output
    Github,
}

pub fn run(args: &CheckArgs) -> Status {
    let opts = args.read.parse_options();
    let mut stderr = Stderr::new(args.color);
    let mut stdout = Stdout::new();
    let mut status = Status::Ok;
    let mut all = Vec::new();
    for path in &args.files {
        match serc::check_file(path, &opts) {
            Ok(parse) => {
                if parse.has_errors() {
                    status = status.max(Status::Errors);
                }
                report(args.format, &parse.diagnostics, &parse.sources, &mut stderr, &mut stdout);
                all.extend(parse.diagnostics);
            }
            Err(err) => {
                stderr.line(&format!("error: cannot read {}: {err}", path.display()));
                if args.format == Format::Human {
                    stderr.line("");
                }
                status = Status::Failure;
            }
        }
    }
    if args.format == Format::Human {
        if let Some(line) = render::summary(&all) {
            stderr.line(&line);
        }
    }
    status
}
