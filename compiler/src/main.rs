//! `serc`, the command line: reads OpenSER routing scripts, reports what is
//! wrong with them, and builds them into SIP proxies.
//!
//! Each subcommand is one variant of [`Command`] with its arguments and its `run`
//! in a module of `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::build::{BuildArgs, RunArgs};
use crate::cli::check::CheckArgs;
use crate::cli::ctl::CtlArgs;
use crate::cli::db::DbArgs;
use crate::cli::emit::EmitArgs;
use crate::cli::modules::ModulesArgs;

const ABOUT: &str = "Compiles OpenSER routing scripts (openser.cfg) into native SIP proxies";

const LONG_ABOUT: &str = "\
Compiles OpenSER routing scripts (openser.cfg) into native SIP proxies.

serc reads the cfg language of SER/OpenSER 0.9, OpenSER 1.x, OpenSIPS and Kamailio, \
reports every problem it finds with the file, line and column (like rustc), and \
follows OpenSER 1.3's behaviour where the dialects disagree.";

const AFTER_HELP: &str = "\
Examples:
  serc check openser.cfg       report every problem in a config
  serc build openser.cfg       compile it into ./openser, a SIP proxy
  serc run openser.cfg -- --listen udp:127.0.0.1:5060
  serc emit openser.cfg        show the Rust it compiles to
  serc modules tm              what a module offers
  serc db init --db-url URL    create OpenSER 1.3's tables (serc help db)
  serc ctl ps                  ask a running proxy over its MI FIFO (serc help ctl)
`serc help check` tells the exit status, the dialects and the output formats (JSON Lines, GitHub annotations); \
`serc help build` where builds happen.";

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
    Build(BuildArgs),
    Run(RunArgs),
    Emit(EmitArgs),
    Modules(ModulesArgs),
    Db(DbArgs),
    Ctl(CtlArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Check(args) => cli::check::run(&args),
        Command::Build(args) => cli::build::run_build(&args),
        Command::Run(args) => return cli::build::run_run(&args),
        Command::Emit(args) => cli::emit::run(&args),
        Command::Modules(args) => cli::modules::run(&args),
        Command::Db(args) => cli::db::run(&args),
        Command::Ctl(args) => cli::ctl::run(&args),
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
