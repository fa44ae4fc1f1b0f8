//! `serc`, the command line: reads OpenSER routing scripts and reports what is
//! wrong with them (later: builds them into SIP proxies).
//!
//! Each subcommand is one variant of [`Command`] with its arguments and its `run`
//! in a module of `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::check::CheckArgs;
use crate::cli::modules::ModulesArgs;

const ABOUT: &str = "Compiles OpenSER routing scripts (openser.cfg) into native SIP proxies";

const LONG_ABOUT: &str = "\
Compiles OpenSER routing scripts (openser.cfg) into native SIP proxies.

serc reads the cfg language of SER/OpenSER 0.9, OpenSER 1.x, OpenSIPS and Kamailio, \
reports every problem it finds with the file, line and column (like rustc), and \
follows OpenSER 1.3's behaviour where the dialects disagree.";

const AFTER_HELP: &str = "\
Start with `serc check openser.cfg`; `serc modules tm` shows what a module offers; `serc help check` tells the exit status, the \
dialects and the output formats (JSON Lines, GitHub annotations).";

#[derive(Debug, Parser)]
#[command(name = "serc", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(propagate_version = true, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(CheckArgs),
    Modules(ModulesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Check(args) => cli::check::run(&args),
        Command::Modules(args) => cli::modules::run(&args),
    };
    status.into()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
