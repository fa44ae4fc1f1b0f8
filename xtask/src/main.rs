//! serc's project automation, in the matklad/cargo-xtask style: plain Rust and
//! std, run as `cargo xtask <TASK>` (an alias in `.cargo/config.toml`).
//!
//! Every external command goes through [`run`], which prints it first, so the log
//! of a run shows what to type to repeat one step by hand.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

mod bench;

/// Debian packages the tests need: (package, binary that shows it is installed,
/// why). `cargo xtask test` installs the ones whose binary is not found.
const DEBIAN_PACKAGES: &[(&str, &str, &str)] = &[
    ("kamailio", "kamailio", "the side-by-side wire test (runtime/tests/kamailio.rs)"),
    ("sip-tester", "sipp", "SIPp scenarios through built proxies (tests/tests/sipp.rs, tests/sipp/)"),
    // The tests start throwaway servers themselves (initdb/pg_ctl under
    // /usr/lib/postgresql/*/bin; pg_ctlcluster shows the package is there).
    ("postgresql", "pg_ctlcluster", "the PostgreSQL backend and usrloc db_mode 1/3 (runtime/tests/db_*.rs)"),
    ("mariadb-server", "mariadbd", "the MySQL/MariaDB backend (runtime/tests/db_backends.rs)"),
];

const HELP: &str = "\
cargo xtask: serc's project automation (plain Rust, in xtask/src/main.rs)

USAGE:
    cargo xtask <TASK> [OPTIONS] [-- ARGS]

TASKS:
    test     Run the whole test suite, installing what it needs (CI runs this)
    ci       Check formatting and clippy, then `test`: run it before committing
    fuzz     Fuzz the parser with cargo-fuzz (libFuzzer)
    bench    Run the benchmarks

`cargo xtask <TASK> --help` tells more about a task.
";

const TEST_HELP: &str = "\
cargo xtask test: run the whole test suite, as on a fresh machine

USAGE:
    cargo xtask test [-- CARGO_TEST_ARGS]

This is the test command of the README, and what CI runs (.ci/run). Stages:
  1. Debian packages: installs those the tests need and lack, with
     `apt-get install -y --no-install-recommends` (after `apt-get update`).
     The list is DEBIAN_PACKAGES in xtask/src/main.rs: a package, a binary
     whose presence shows it is installed, and why the tests need it.
     Installing needs root (else sudo is used).
  2. rustup components: `rustup component add llvm-tools` when missing (for
     serc build --pgo-use), bounded to 2 minutes; if it fails, a note says so
     and the PGO test checks the error that names it instead.
  3. Services: starts the services the tests need (none yet).
  4. Tests: `cargo test --workspace --all-targets --locked`, then
     `cargo test --workspace --doc` (--all-targets does not run doc tests).
     SERC_REQUIRE_PEERS=1 is set: a test that compares serc with a peer
     (Kamailio) fails when the peer is missing instead of skipping.
     Without a Cargo.lock, --locked is left out (and a note says so).
     When CI is set (CI=true), CARGO_INCREMENTAL=0 is set too: a clean
     clone builds once, and incremental state would only take disk.

Arguments after `--` are appended to both `cargo test` commands:
    cargo xtask test -- parse              only tests whose name has `parse`
    cargo xtask test -- -- --nocapture     show the output of passing tests
";

const CI_HELP: &str = "\
cargo xtask ci: what to run before committing

USAGE:
    cargo xtask ci [-- CARGO_TEST_ARGS]

Stages:
  1. cargo fmt --all -- --check        (fix: `cargo fmt --all`)
  2. cargo clippy --workspace --all-targets -- -D warnings
  3. cargo doc --workspace --no-deps, with RUSTDOCFLAGS=-D warnings
     (broken intra-doc links fail)
  4. everything `cargo xtask test` does; arguments after `--` go to cargo test
";

const FUZZ_HELP: &str = "\
cargo xtask fuzz: fuzz a target in fuzz/ with cargo-fuzz (libFuzzer)

USAGE:
    cargo xtask fuzz [TARGET] [--seconds N] [-- LIBFUZZER_ARGS]
    cargo xtask fuzz --list

ARGS:
    TARGET         a file of fuzz/fuzz_targets/ without `.rs` [default: parse_cfg]

OPTIONS:
    --seconds N    stop after N seconds of fuzzing [default: 60]
    --list         list the fuzz targets

Stages:
  1. cargo-fuzz: installed with `cargo install cargo-fuzz --locked` if
     `cargo fuzz --version` fails.
  2. Corpus: copies seed inputs into fuzz/corpus/TARGET/: for parse_cfg (the
     front end) and compile_cfg (front end, checker and generator) the
     shared config corpus ../shared/corpus/cfg/*.cfg (beside the repository;
     skipped when absent) and tests/data/parse/**/*.cfg; for parse_sip the
     RFC 4475 messages ../shared/corpus/sip-torture/*.dat; for route_sip
     (five proxies compiled from configs, OpenSER 1.3's default one first,
     fed messages) the calls of fuzz/seeds/route_sip/ and each RFC 4475
     message alone.
  3. Fuzzing: RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/corpus/TARGET -- -max_total_time=N
     cargo-fuzz passes nightly-only flags to rustc (-Zsanitizer=address, ...);
     RUSTC_BOOTSTRAP=1 makes the stable toolchain accept them. The first build
     compiles the compiler crate with instrumentation: a few minutes.

Arguments after `--` go to libFuzzer (e.g. `-- -only_ascii=1`). A crash is
saved in fuzz/artifacts/TARGET/. Replay and shrink it with
    RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...
    RUSTC_BOOTSTRAP=1 cargo fuzz tmin TARGET fuzz/artifacts/TARGET/crash-...
then add the shrunk input to tests/data/parse/ so it stays fixed.
";

const BENCH_HELP: &str = bench::HELP;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match try_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn try_main(args: &[String]) -> Result {
    // Our own arguments come before `--`; the rest is passed through.
    let (own, passthrough) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let Some((task, flags)) = own.split_first() else {
        print!("{HELP}");
        return Ok(());
    };
    if let "-h" | "--help" | "help" = task.as_str() {
        match flags.first() {
            Some(task) => print!("{}", task_help(task)?),
            None => print!("{HELP}"),
        }
        return Ok(());
    }
    if flags.iter().any(|f| f == "-h" || f == "--help") {
        print!("{}", task_help(task)?);
        return Ok(());
    }
    match task.as_str() {
        "test" => {
            no_flags(task, flags)?;
            let mut progress = Progress::new("test", 4);
            test_stages(&mut progress, passthrough)?;
            progress.done();
        }
        "ci" => {
            no_flags(task, flags)?;
            ci(passthrough)?;
        }
        "fuzz" => fuzz(&FuzzArgs::parse(flags)?, passthrough)?,
        "bench" => bench::bench(&bench::BenchArgs::parse(flags, passthrough)?, passthrough)?,
        _ => return Err(unknown_task(task)),
    }
    Ok(())
}

fn task_help(task: &str) -> Result<&'static str> {
    match task {
        "test" => Ok(TEST_HELP),
        "ci" => Ok(CI_HELP),
        "fuzz" => Ok(FUZZ_HELP),
        "bench" => Ok(BENCH_HELP),
        _ => Err(unknown_task(task)),
    }
}

fn unknown_task(task: &str) -> String {
    format!("unknown task `{task}`; `cargo xtask --help` lists the tasks")
}

fn no_flags(task: &str, flags: &[String]) -> Result {
    match flags.first() {
        None => Ok(()),
        Some(flag) => Err(format!(
            "unexpected argument `{flag}` (arguments for cargo go after `--`; see `cargo xtask {task} --help`)"
        )),
    }
}

// ---------------------------------------------------------------------------
// test, ci

fn ci(passthrough: &[String]) -> Result {
    let mut progress = Progress::new("ci", 7);
    progress.stage("formatting");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    progress.stage("clippy");
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    progress.stage("docs");
    run(cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    test_stages(&mut progress, passthrough)?;
    progress.done();
    Ok(())
}

/// The stages of `cargo xtask test` (also the end of `cargo xtask ci`).
fn test_stages(progress: &mut Progress, passthrough: &[String]) -> Result {
    progress.stage("Debian packages");
    install_debian_packages()?;
    progress.stage("rustup components");
    install_rustup_components();
    progress.stage("services");
    start_services()?;
    progress.stage("tests");
    cargo_test(passthrough)
}

fn install_debian_packages() -> Result {
    let missing: Vec<&(&str, &str, &str)> =
        DEBIAN_PACKAGES.iter().filter(|(_, binary, _)| find_binary(binary).is_none()).collect();
    if DEBIAN_PACKAGES.is_empty() {
        eprintln!("none needed yet");
        return Ok(());
    }
    if missing.is_empty() {
        let all: Vec<&str> = DEBIAN_PACKAGES.iter().map(|(package, _, _)| *package).collect();
        eprintln!("all present: {}", all.join(", "));
        return Ok(());
    }
    for (package, binary, why) in &missing {
        eprintln!("missing {package} (no `{binary}`), needed for {why}");
    }
    if find_binary("apt-get").is_none() {
        return Err("no apt-get on this machine: install the missing packages by hand".to_owned());
    }
    let packages: Vec<&str> = missing.iter().map(|(package, _, _)| *package).collect();
    run(apt_get().arg("update"))?;
    run(apt_get().args(["install", "-y", "--no-install-recommends"]).args(&packages))?;
    for (package, binary, _) in &missing {
        if find_binary(binary).is_none() {
            return Err(format!("{package} is installed but `{binary}` is still not found: fix DEBIAN_PACKAGES"));
        }
    }
    Ok(())
}

/// rustup components the tests use when present: `llvm-tools` (the
/// llvm-profdata of rustc's LLVM, for `serc build --pgo-use`). Best effort:
/// rustup's server may be out of reach (a machine with only package
/// registries), and the test that uses it then checks the error that says how
/// to install it instead.
fn install_rustup_components() {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().ok();
    let host = Command::new("rustc").arg("-vV").output().ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout).lines().find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
    });
    if let (Some(sysroot), Some(host)) = (sysroot, host) {
        let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
        if Path::new(&sysroot).join("lib/rustlib").join(host).join("bin/llvm-profdata").is_file() {
            eprintln!("all present: llvm-tools");
            return;
        }
    }
    if find_binary("rustup").is_none() {
        eprintln!("note: no rustup, so no llvm-tools: the PGO test checks the error instead");
        return;
    }
    eprintln!("missing llvm-tools (llvm-profdata), needed for serc build --pgo-use");
    // Bounded: a server out of reach must not hold the test run.
    let mut cmd = match find_binary("timeout") {
        Some(timeout) => {
            let mut cmd = Command::new(timeout);
            cmd.args(["120", "rustup"]);
            cmd
        }
        None => Command::new("rustup"),
    };
    let ok = cmd.args(["component", "add", "llvm-tools"]).stdin(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("note: `rustup component add llvm-tools` failed: the PGO test checks the error instead");
    }
}

/// `apt-get`, through sudo unless we are root, never asking questions.
fn apt_get() -> Command {
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null());
    cmd
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Looks for an executable on PATH, and in the sbin directories that a
/// non-root PATH lacks (daemons such as kamailio live there). A name with a
/// `/` is taken as a path.
fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Starts the services the tests need (databases, a reference Kamailio...),
/// each only if it is not running yet. None so far.
fn start_services() -> Result {
    eprintln!("none needed yet");
    Ok(())
}

fn cargo_test(passthrough: &[String]) -> Result {
    // A CI run builds once on a clean clone: incremental state would only
    // take disk (2.4 GB of it).
    let ci = env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let test = || {
        let mut cmd = cargo();
        cmd.arg("test");
        if ci {
            cmd.env("CARGO_INCREMENTAL", "0");
        }
        cmd
    };
    let mut all_targets = test();
    all_targets.args(["--workspace", "--all-targets"]);
    // `cargo xtask` is `cargo run`, which writes a missing or stale Cargo.lock
    // before we get here; so this guards only runs of the binary by hand.
    if project_root().join("Cargo.lock").exists() {
        all_targets.arg("--locked");
    } else {
        eprintln!("note: no Cargo.lock yet, so no --locked (commit Cargo.lock)");
    }
    // Tests that compare with a peer (Kamailio …) fail here rather than skip
    // when the peer is missing: the stage before installed it.
    all_targets.env("SERC_REQUIRE_PEERS", "1");
    run(all_targets.args(passthrough))?;
    run(test().args(["--workspace", "--doc"]).args(passthrough))
}

// ---------------------------------------------------------------------------
// fuzz

struct FuzzArgs {
    target: String,
    seconds: u64,
    list: bool,
}

impl FuzzArgs {
    fn parse(flags: &[String]) -> Result<FuzzArgs> {
        let mut args = FuzzArgs { target: "parse_cfg".to_owned(), seconds: 60, list: false };
        let mut target = None;
        let mut flags = flags.iter();
        while let Some(flag) = flags.next() {
            let seconds = match flag.strip_prefix("--seconds") {
                Some("") => Some(flags.next().ok_or("--seconds needs a value")?.as_str()),
                Some(value) => value.strip_prefix('='),
                None => None,
            };
            if let Some(seconds) = seconds {
                args.seconds =
                    seconds.parse().map_err(|_| format!("--seconds wants a whole number, not `{seconds}`"))?;
            } else if flag == "--list" {
                args.list = true;
            } else if flag.starts_with('-') || target.is_some() {
                return Err(format!("unexpected argument `{flag}` (see `cargo xtask fuzz --help`)"));
            } else {
                target = Some(flag.clone());
            }
        }
        if let Some(target) = target {
            args.target = target;
        }
        Ok(args)
    }
}

fn fuzz(args: &FuzzArgs, libfuzzer_args: &[String]) -> Result {
    let root = project_root();
    let targets = fuzz_targets(&root.join("fuzz"))?;
    if args.list {
        for target in &targets {
            println!("{target}");
        }
        return Ok(());
    }
    let target = &args.target;
    if !targets.contains(target) {
        return Err(format!("no fuzz target `{target}` (there are: {})", targets.join(", ")));
    }
    let mut progress = Progress::new("fuzz", 3);
    progress.stage("cargo-fuzz");
    ensure_cargo_fuzz()?;

    let corpus = format!("fuzz/corpus/{target}");
    progress.stage(&format!("seed corpus {corpus}/"));
    seed_corpus(&root, target, &root.join(&corpus))?;

    progress.stage(&format!("fuzz {target} for {} s", args.seconds));
    run(cargo()
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", target, &corpus, "--"])
        .arg(format!("-max_total_time={}", args.seconds))
        .args(libfuzzer_args))?;
    progress.done();
    Ok(())
}

/// The stems of `fuzz/fuzz_targets/*.rs`, sorted.
fn fuzz_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut targets: Vec<String> = read_dir(&dir)?
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    targets.sort();
    Ok(targets)
}

fn ensure_cargo_fuzz() -> Result {
    let version = cargo().args(["fuzz", "--version"]).stderr(Stdio::null()).output();
    match version {
        Ok(out) if out.status.success() => {
            eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
            Ok(())
        }
        _ => {
            eprintln!("cargo-fuzz is not installed: installing it (a few minutes)");
            run(cargo().args(["install", "cargo-fuzz", "--locked"]))
        }
    }
}

/// Copies the seeds of `target` into `corpus`: for the cfg parser the shared
/// config corpus beside the repository (if there is one) and the parser's test
/// cases; for the SIP parser the RFC 4475 torture messages; for the proxy
/// (`route_sip`) the calls of fuzz/seeds/route_sip/ and each torture message
/// as a one-frame input (a datagram from the caller: a byte 1 before it).
fn seed_corpus(root: &Path, target: &str, corpus: &Path) -> Result {
    fs::create_dir_all(corpus).map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let torture = root.join("../shared/corpus/sip-torture");
    let (shared, ext, tests) = match target {
        "parse_sip" | "route_sip" => (torture, "dat", None),
        _ => (root.join("../shared/corpus/cfg"), "cfg", Some(root.join("tests/data/parse"))),
    };
    let mut seeds = Vec::new();
    if shared.is_dir() {
        let shared = shared.canonicalize().unwrap_or(shared);
        collect_seeds(&shared, &shared, ext, false, &mut seeds)?;
    } else {
        eprintln!("{} absent: not used", shared.display());
    }
    if let Some(tests) = tests {
        collect_seeds(&tests, root, ext, true, &mut seeds)?;
    }
    // route_sip's frames: the torture messages as datagrams from the caller
    // (head 1: kind 1, no time passing; see fuzz/fuzz_targets/route_sip.rs).
    let frame = if target == "route_sip" { &[1u8][..] } else { &[][..] };
    let mut count = 0;
    for (src, name) in &seeds {
        let dst = corpus.join(format!("seed-{name}"));
        let bytes = fs::read(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        fs::write(&dst, [frame, &bytes].concat()).map_err(|e| format!("cannot write {}: {e}", dst.display()))?;
        count += 1;
    }
    if target == "route_sip" {
        let calls = root.join("fuzz/seeds/route_sip");
        for src in read_dir(&calls)? {
            let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let dst = corpus.join(format!("seed-call-{name}"));
            fs::copy(&src, &dst).map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), dst.display()))?;
            count += 1;
        }
    }
    eprintln!("{count} seeds copied");
    Ok(())
}

/// Adds the `*.EXT` files of `dir` (and of its subdirectories if `recursive`)
/// to `out`, each with a flat file name made of its path relative to `base`.
fn collect_seeds(dir: &Path, base: &Path, ext: &str, recursive: bool, out: &mut Vec<(PathBuf, String)>) -> Result {
    if !dir.is_dir() {
        return Ok(());
    }
    for path in read_dir(dir)? {
        if path.is_dir() {
            if recursive {
                collect_seeds(&path, base, ext, recursive, out)?;
            }
        } else if path.extension().is_some_and(|e| e == ext) {
            let relative = path.strip_prefix(base).unwrap_or(&path);
            let name = relative.to_string_lossy().replace('/', "__");
            out.push((path, name));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// bench: in bench.rs

// ---------------------------------------------------------------------------
// helpers

/// The workspace root: the parent of xtask/.
fn project_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().expect("xtask/ has a parent").to_path_buf()
}

/// `cargo`, run in the workspace root.
fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(project_root());
    cmd
}

/// Prints `cmd`, runs it, and fails unless it succeeds.
fn run(cmd: &mut Command) -> Result {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let status = cmd.status().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// A command as one would type it in a shell.
fn show(cmd: &Command) -> String {
    let envs = cmd.get_envs().filter_map(|(key, value)| Some(format!("{}={}", key.to_str()?, value?.to_str()?)));
    let program = cmd.get_program().to_string_lossy().into_owned();
    let args = cmd.get_args().map(|arg| arg.to_string_lossy().into_owned());
    envs.chain([program])
        .chain(args)
        .map(|word| if word.is_empty() || word.contains(char::is_whitespace) { format!("'{word}'") } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The entries of a directory, sorted.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths = entries
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

/// Prints `==> cargo xtask TASK [n/N] STAGE` headers and the total time.
struct Progress {
    task: &'static str,
    stage: usize,
    stages: usize,
    start: Instant,
}

impl Progress {
    fn new(task: &'static str, stages: usize) -> Progress {
        Progress { task, stage: 0, stages, start: Instant::now() }
    }

    fn stage(&mut self, what: &str) {
        self.stage += 1;
        let (task, stage, stages) = (self.task, self.stage, self.stages);
        eprintln!("\n==> cargo xtask {task} [{stage}/{stages}] {what}");
    }

    fn done(self) {
        let secs = self.start.elapsed().as_secs();
        eprintln!("\n==> cargo xtask {}: ok in {}m{:02}s", self.task, secs / 60, secs % 60);
    }
}
