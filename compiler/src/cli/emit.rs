//! `serc emit`: prints the Rust that `serc build` compiles for a config.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serc::codegen;
use serc::diag::render;

use crate::cli::args::ReadArgs;
use crate::cli::check::Format;
use crate::cli::{report, Color, Status, Stderr, Stdout};

const LONG_ABOUT: &str = "\
Print the Rust code generated for a config, without building it.

This is the code `serc build` compiles (without its `fn main`): the routes as a \
`CfgScript` implementing the runtime's `Script`, and `launch()` with the settings \
the config's globals give. Each statement is preceded by a `// file:line:col` \
comment naming the config line it comes from. Problems in the config are reported \
on standard error, as `serc check` reports them.";

const AFTER_HELP: &str = "\
Exit status: 0 printed, 1 the config has errors or uses what the runtime does not
implement, 2 bad command line or unreadable FILE.

Examples:
  serc emit openser.cfg | less
  serc emit openser.cfg > proxy.rs
  serc emit --dialect kamailio -D WITH_NAT kamailio.cfg";

/// Print the Rust code generated for a config, without building it
#[derive(Debug, Args)]
#[command(long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct EmitArgs {
    #[command(flatten)]
    pub read: ReadArgs,

    /// When to colour the diagnostics
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Color::Auto)]
    pub color: Color,

    /// The config
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub fn run(args: &EmitArgs) -> Status {
    let mut stderr = Stderr::new(args.color);
    let mut stdout = Stdout::new();
    let parse = match serc::check_file(&args.file, &args.read.parse_options()) {
        Ok(parse) => parse,
        Err(err) => {
            stderr.line(&format!("error: cannot read {}: {err}", args.file.display()));
            return Status::Failure;
        }
    };
    let mut shown = parse.diagnostics.clone();
    report(Format::Human, &parse.diagnostics, &parse.sources, &mut stderr, &mut stdout);
    let status = if parse.has_errors() {
        Status::Errors
    } else {
        match codegen::generate(&parse, &serc::build::codegen_options(&parse, &args.file)) {
            Ok(output) => {
                report(Format::Human, &output.warnings, &parse.sources, &mut stderr, &mut stdout);
                shown.extend(output.warnings.iter().cloned());
                let text = codegen::pretty(&output.tokens);
                // A closed pipe (`serc emit … | head`) is not an error.
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                Status::Ok
            }
            Err(errors) => {
                report(Format::Human, &errors, &parse.sources, &mut stderr, &mut stdout);
                shown.extend(errors);
                Status::Errors
            }
        }
    };
    if let Some(line) = render::summary(&shown) {
        stderr.line(&line);
    }
    status
}
