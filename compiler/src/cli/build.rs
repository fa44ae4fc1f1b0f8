//! `serc build` and `serc run`: a config → a proxy binary (see `serc::build`), and
//! running it.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serc::build::{self, Event, Failure, Profile};
use serc::diag::{render, Diagnostic};

use crate::cli::args::ReadArgs;
use crate::cli::check::Format;
use crate::cli::{report, Color, Status, Stderr, Stdout};

const BUILD_LONG_ABOUT: &str = "\
Build a config into a native SIP proxy: one binary per config.

The config is checked as `serc check` checks it (a config with errors, or one \
using functions the runtime does not implement yet, is refused), translated to \
Rust, and compiled with cargo against the serc runtime. The binary is written to \
OUT.";

const BUILD_AFTER_LONG_HELP: &str = "\
Exit status:
  0  the binary was built
  1  the config has errors, or uses what the runtime does not implement
     (`serc modules` marks those functions `(not implemented)`)
  2  the command line is wrong, a file could not be read or written, or cargo
     failed

How it builds:
  serc writes a small cargo project for each config in its cache directory and
  runs `cargo build --offline` there; one target directory is shared by every
  config, so the runtime and its dependencies compile once (a few minutes) and a
  changed config rebuilds in under a minute (release: link-time optimized) or in
  seconds (--profile dev). Files are rewritten only when they change.

    $SERC_CACHE_DIR, else $XDG_CACHE_HOME/serc, else ~/.cache/serc:
      projects/<name>-<hash>/   the project of one config (Cargo.toml, Cargo.lock,
                                src/main.rs: what `serc emit` prints, plus main)
      target/                   cargo's target directory, shared
      target-pgo-generate/, target-pgo-use/, pgo/
                                the same for --pgo-generate and --pgo-use builds,
                                and the profiles merged for --pgo-use

  The project depends on the runtime's sources: $SERC_RUNTIME_DIR, else the
  `runtime/` directory of the checkout serc was built from (also after
  `cargo install --path compiler`). Set SERC_RUNTIME_DIR when that checkout has
  moved. Building needs cargo (`$CARGO` or the one on the PATH) and, since it is
  offline, the runtime's dependencies in cargo's cache (`cargo fetch` in the
  checkout downloads them).

  If the generated code does not compile, that is a serc bug: the errors are shown
  at the config lines the code came from.

Profile-guided optimization (PGO):
  A proxy built with --pgo-use is laid out and inlined for the paths a recorded
  load took: 5-12 % less CPU per call for OpenSER 1.3's default config (the
  most at 1,000 calls/s, where the caches run cold) and 7-9 % for a stateful
  relay (serc's BENCHMARKS.md, \"Profile-guided optimization\").
    serc build --pgo-generate pgo/ -o trainee openser.cfg
    ./trainee ...     under a load like production's (SIPp, say), then stop it:
                      it writes pgo/default_*.profraw as it exits
    serc build --pgo-use pgo/ -o openser openser.cfg
  The trainee does extra work: not for production. Merging profiles needs the
  llvm-profdata of rustc's LLVM: `rustup component add llvm-tools`. Each kind
  of build has its own target directory in the cache (target-pgo-generate/,
  target-pgo-use/): the first of each compiles everything, as do new profiles.
  Train a proxy that --pgo-generate built: a profile applies only to code built
  the way its recorder was. Profiles of an older config still apply; code
  changed since is optimized as if it never ran.

Output:
  Progress goes to standard error. --format json or github prints the config's
  diagnostics on standard output as `serc check` does.

Examples:
  serc build openser.cfg                    writes ./openser
  serc build -o /usr/local/sbin/sip-proxy openser.cfg
  serc build --profile dev openser.cfg      faster to compile, slower to run
  serc build --format github openser.cfg    (in a GitHub Actions step)
  ./openser --listen udp:127.0.0.1:5060 --workers 4 --log-level info
                                            runs it (`./openser --help`)";

const BUILD_AFTER_HELP: &str = "\
Exit status: 0 built, 1 config errors, 2 I/O or cargo failure.
Example:     serc build openser.cfg && ./openser --listen udp:127.0.0.1:5060
See `serc build --help` for the cache directory and SERC_RUNTIME_DIR.";

const RUN_LONG_ABOUT: &str = "\
Build a config (as `serc build` does) and run the proxy.

ARGS after `--` go to the proxy. The binary is run from serc's cache, not copied \
to the current directory unless -o says where. The exit status is the proxy's, \
or serc build's when the build fails.";

const RUN_AFTER_HELP: &str = "\
The proxy's options (`serc run FILE -- --help` lists them):
  --listen PROTO:IP:PORT  a socket to serve instead of the config's listen= (repeatable;
                          PROTO udp or tcp, PORT 0 picks a free port)
  --workers N             worker threads (instead of children=)
  --log-level LEVEL       error, warn, info, debug, trace, or OpenSER's -3 to 4 (instead of debug=)
  --version               the config's name and digest, and serc's version

Examples:
  serc run openser.cfg
  serc run openser.cfg -- --listen udp:127.0.0.1:5080 --log-level debug
  serc run --profile dev -D WITH_NAT kamailio.cfg -- --workers 1
See `serc build --help` for how the binary is built.";

/// Build a config into a native SIP proxy binary
#[derive(Debug, Args)]
#[command(long_about = BUILD_LONG_ABOUT, after_help = BUILD_AFTER_HELP, after_long_help = BUILD_AFTER_LONG_HELP)]
pub struct BuildArgs {
    /// Where to write the binary [default: the config's name without extension, in the current directory]
    #[arg(short, long, value_name = "OUT")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildOptions,
}

/// Build a config and run the proxy
#[derive(Debug, Args)]
#[command(long_about = RUN_LONG_ABOUT, after_help = RUN_AFTER_HELP)]
pub struct RunArgs {
    /// Also copy the binary here
    #[arg(short, long, value_name = "OUT")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildOptions,

    /// Arguments for the proxy (after `--`)
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

/// What `serc build` and `serc run` share.
#[derive(Debug, Args)]
pub struct BuildOptions {
    /// Cargo profile: release (optimized, link-time optimized; under a minute
    /// to rebuild after a config change on 2 cores) or dev (seconds to
    /// rebuild, slower to run)
    #[arg(long, value_enum, value_name = "PROFILE", default_value_t = ProfileArg::Release)]
    pub profile: ProfileArg,

    /// Build a proxy that records which code runs, for --pgo-use: each run
    /// writes a .profraw file into DIR when it stops (slower; for training
    /// under a load like production's, not for production)
    #[arg(long, value_name = "DIR", conflicts_with = "pgo_use")]
    pub pgo_generate: Option<PathBuf>,

    /// Optimize with the profiles a --pgo-generate proxy recorded: DIR's
    /// .profraw files (merged with llvm-profdata), or a .profraw or .profdata file
    #[arg(long, value_name = "DIR|FILE")]
    pub pgo_use: Option<PathBuf>,

    #[command(flatten)]
    pub read: ReadArgs,

    /// How to report problems in the config
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    pub format: Format,

    /// When to colour messages
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Color::Auto)]
    pub color: Color,

    /// The config
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// Optimized
    Release,
    /// Unoptimized, with debug assertions
    Dev,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::Release => Profile::Release,
            ProfileArg::Dev => Profile::Dev,
        }
    }
}

pub fn run_build(args: &BuildArgs) -> Status {
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.build.file));
    build_with(&args.build, Some(out)).map_or_else(|status| status, |_| Status::Ok)
}

pub fn run_run(args: &RunArgs) -> ExitCode {
    let binary = match build_with(&args.build, args.out.clone()) {
        Ok(binary) => binary,
        Err(status) => return status.into(),
    };
    let mut stderr = Stderr::new(args.build.color);
    let shown: Vec<String> = args.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    status_line(
        &mut stderr,
        "Running",
        &format!("`{}{}`", binary.display(), shown.iter().map(|a| format!(" {a}")).collect::<String>()),
    );
    let _ = stderr.stream.flush();
    let mut command = std::process::Command::new(&binary);
    command.args(&args.args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = command.exec();
        stderr.line(&format!("error: cannot run {}: {err}", binary.display()));
        Status::Failure.into()
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => match status.code() {
            Some(code) => ExitCode::from(code as u8),
            None => Status::Failure.into(),
        },
        Err(err) => {
            stderr.line(&format!("error: cannot run {}: {err}", binary.display()));
            Status::Failure.into()
        }
    }
}

/// `./<stem>` (with the platform's executable suffix).
fn default_out(cfg: &std::path::Path) -> PathBuf {
    let stem = cfg.file_stem().map_or_else(|| "proxy".into(), |s| s.to_os_string());
    let mut name = stem;
    name.push(std::env::consts::EXE_SUFFIX);
    PathBuf::from(name)
}

/// Builds, rendering the events; the binary's path, or the exit status.
fn build_with(opts: &BuildOptions, out: Option<PathBuf>) -> Result<PathBuf, Status> {
    let mut stderr = Stderr::new(opts.color);
    let mut stdout = Stdout::new();
    let tty = std::io::stderr().is_terminal();
    let req = build::Request {
        cfg: opts.file.clone(),
        parse: opts.read.parse_options(),
        profile: opts.profile.into(),
        out,
        cache_dir: None,
        runtime_dir: None,
        color: stderr.color,
        pgo: match (&opts.pgo_generate, &opts.pgo_use) {
            (Some(dir), _) => Some(build::Pgo::Generate(dir.clone())),
            (None, Some(path)) => Some(build::Pgo::Use(path.clone())),
            (None, None) => None,
        },
    };
    let cfg_name = opts.file.display().to_string();
    let mut shown: Vec<Diagnostic> = Vec::new();
    let mut line_open = false;
    let result = build::build(&req, &mut |event| {
        if line_open && !matches!(event, Event::Compiling { .. }) {
            let _ = write!(stderr.stream, "\r\x1b[K");
            line_open = false;
        }
        match event {
            Event::Checking(_) => status_line(&mut stderr, "Checking", &cfg_name),
            Event::Diagnostics(diags, sources) => {
                report(opts.format, diags, sources, &mut stderr, &mut stdout);
                shown.extend(diags.iter().cloned());
            }
            Event::Generating(dir) => status_line(&mut stderr, "Generating", &dir.display().to_string()),
            Event::Compiling { done, total, name, fresh } => {
                let count = match total {
                    Some(total) => format!("{done}/{total} crates"),
                    None => format!("{done} crates"),
                };
                let text = if name.is_empty() { count } else { format!("{count} ({name})") };
                if tty {
                    let _ = write!(stderr.stream, "\r\x1b[K{}", status_text(stderr.color, "Compiling", &text));
                    let _ = stderr.stream.flush();
                    line_open = true;
                } else if !fresh {
                    status_line(&mut stderr, "Compiling", &text);
                }
            }
            Event::Merging { files, into } => status_line(
                &mut stderr,
                "Merging",
                &format!("{files} profile{} into {}", if files == 1 { "" } else { "s" }, into.display()),
            ),
            Event::Finished { profile, secs } => {
                status_line(&mut stderr, "Finished", &format!("{} profile in {secs:.1} s", profile.name()))
            }
            Event::Verbatim(text) => {
                let _ = stderr.stream.write_all(text.as_bytes());
                if !text.ends_with('\n') {
                    let _ = writeln!(stderr.stream);
                }
            }
            Event::Wrote(path) => status_line(&mut stderr, "Wrote", &path.display().to_string()),
        }
    });
    if line_open {
        let _ = write!(stderr.stream, "\r\x1b[K");
    }
    if opts.format == Format::Human {
        if let Some(line) = render::summary(&shown) {
            stderr.line(&line);
        }
    }
    result.map_err(|failure| match failure {
        Failure::Config => Status::Errors,
        Failure::Io(msg) | Failure::Cargo(msg) => {
            stderr.line(&format!("error: {msg}"));
            Status::Failure
        }
    })
}

/// A cargo-style status line: the verb right-aligned in bold green.
fn status_line(stderr: &mut Stderr, verb: &str, text: &str) {
    let line = status_text(stderr.color, verb, text);
    let _ = writeln!(stderr.stream, "{line}");
}

fn status_text(color: bool, verb: &str, text: &str) -> String {
    if color {
        format!("\x1b[1m\x1b[32m{verb:>12}\x1b[0m {text}")
    } else {
        format!("{verb:>12} {text}")
    }
}
