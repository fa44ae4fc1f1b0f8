//! `serc build`: a config → a small cargo project in a cache directory → a
//! proxy binary.
//!
//! Layout of the cache (`$SERC_CACHE_DIR`, else `$XDG_CACHE_HOME/serc`, else
//! `~/.cache/serc`):
//!
//! ```text
//! projects/<stem>-<hash>/Cargo.toml   one project per config (hash: of its canonical path)
//! projects/<stem>-<hash>/Cargo.lock   the serc workspace's lock, so versions are the ones tested
//! projects/<stem>-<hash>/src/main.rs  codegen::binary_source
//! target/                             one target directory for every project: the runtime
//!                                     and its dependencies compile once
//! target/serc-crates-<profile>        how many crates the last build had (for progress)
//! target-pgo-generate/, target-pgo-use/  the same for `--pgo-generate` and `--pgo-use`
//!                                     builds (other compiler flags: kept apart, so that
//!                                     neither kind of build invalidates the other's crates)
//! pgo/<project>-<hash>.profdata       profiles merged for `--pgo-use` (hash: of the content)
//! ```
//!
//! Files are written only when their content changes, so cargo's fingerprints stay
//! warm. Nothing here prints: what happens is told through [`Event`]s, which the
//! command line renders.

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::codegen;
use crate::diag::{Diagnostic, Kind, Severity};
use crate::source::{fnv1a, SourceMap, Span};
use crate::syntax::{Parse, ParseOptions};

/// The serc workspace's `Cargo.lock`, copied into every project: the runtime's
/// dependencies resolve to the versions serc was tested with, and offline.
pub const WORKSPACE_LOCK: &str = include_str!("../../Cargo.lock");

/// The runtime's sources as this serc was built from them (a checkout, or what
/// `cargo install --path compiler` built from).
const BAKED_RUNTIME_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime");

/// Cargo's profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// Optimized (`cargo build --release`), with thin link-time optimization
    /// across all crates.
    #[default]
    Release,
    /// Fast to compile, slow to run (`cargo build`).
    Dev,
}

impl Profile {
    /// The name cargo uses (`--profile NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "dev",
        }
    }
}

/// The cache directory: `$SERC_CACHE_DIR`, else `$XDG_CACHE_HOME/serc`, else
/// `~/.cache/serc`. `None` when none of them is set.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = env_path("SERC_CACHE_DIR") {
        return Some(dir);
    }
    // The XDG spec: a relative path is invalid and ignored.
    if let Some(dir) = env_path("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return Some(dir.join("serc"));
    }
    std::env::home_dir().filter(|h| !h.as_os_str().is_empty()).map(|home| home.join(".cache").join("serc"))
}

/// The runtime crate's directory: `$SERC_RUNTIME_DIR`, else the `runtime/` beside
/// the sources serc was built from. Fails, saying what to do, when it has no
/// `Cargo.toml`.
pub fn runtime_dir() -> Result<PathBuf, String> {
    let (dir, from) = match env_path("SERC_RUNTIME_DIR") {
        Some(dir) => (dir, "SERC_RUNTIME_DIR"),
        None => (PathBuf::from(BAKED_RUNTIME_DIR), "the sources serc was built from"),
    };
    match fs::canonicalize(&dir) {
        Ok(dir) if dir.join("Cargo.toml").is_file() => Ok(dir),
        _ => Err(format!(
            "the serc runtime is not at {} ({from}); set SERC_RUNTIME_DIR to the `runtime` directory of a serc \
             checkout",
            dir.display()
        )),
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The options the generator gets from `serc build` and `serc emit`: line
/// markers, and the config's name and digest for `--version`.
pub fn codegen_options(parse: &Parse, cfg: &Path) -> codegen::Options {
    let cfg_name = cfg.file_name().map_or_else(|| cfg.display().to_string(), |n| n.to_string_lossy().into_owned());
    codegen::Options { line_markers: true, cfg_name, cfg_hash: parse.sources.digest(), ..Default::default() }
}

/// One config's cargo project in the cache.
#[derive(Clone, Debug)]
pub struct Project {
    /// `<cache>/projects/<name>`.
    pub dir: PathBuf,
    /// `<stem>-<hash>`: the package and binary name, unique per config so that
    /// binaries do not overwrite each other in the shared target directory.
    pub name: String,
    /// The config's canonical path.
    pub cfg: PathBuf,
}

impl Project {
    /// The project of the config at `cfg` (which must exist) in `cache`.
    pub fn for_config(cache: &Path, cfg: &Path) -> io::Result<Project> {
        let cfg = fs::canonicalize(cfg)?;
        let stem = cfg.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut clean: String =
            stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
        // A package name starts with a letter (and a crate name cannot start with `-`).
        if !clean.starts_with(|c: char| c.is_ascii_alphabetic()) {
            clean.insert_str(0, "cfg-");
        }
        let hash = fnv1a(&[cfg.as_os_str().as_encoded_bytes()]);
        let name = format!("{clean}-{:012x}", hash >> 16);
        Ok(Project { dir: cache.join("projects").join(&name), name, cfg })
    }

    /// The project's `Cargo.toml`.
    pub fn manifest(&self, runtime_dir: &Path) -> String {
        let cfg = toml_string(&self.cfg.display().to_string());
        let runtime = toml_string(&runtime_dir.display().to_string());
        let name = &self.name;
        format!(
            "# Generated by `serc build` for {cfg}; rewritten by every build.\n\
             [package]\n\
             name = \"{name}\"\n\
             version = \"0.1.0\"\n\
             edition = \"2021\"\n\
             publish = false\n\
             \n\
             [[bin]]\n\
             name = \"{name}\"\n\
             path = \"src/main.rs\"\n\
             \n\
             [dependencies]\n\
             serc-runtime = {{ path = {runtime} }}\n\
             \n\
             # As in the serc workspace, so the runtime is built as it is tested.\n\
             [profile.dev]\n\
             debug = \"line-tables-only\"\n\
             \n\
             [profile.dev.package.\"*\"]\n\
             opt-level = 1\n\
             debug = false\n\
             \n\
             [profile.release]\n\
             debug = \"line-tables-only\"\n\
             # Inlining across the route, the runtime and their dependencies: less\n\
             # CPU per message (serc's BENCHMARKS.md, \"A sixth pass\"), a slower\n\
             # build after a config change (--profile dev builds fast).\n\
             lto = \"thin\"\n\
             # One unit per crate: a fifth less code, less memory at rest and a\n\
             # faster link after a config change, the same CPU per message\n\
             # (serc's BENCHMARKS.md, \"Compiler options for the proxies\").\n\
             codegen-units = 1\n\
             \n\
             # Not part of any workspace around the cache directory.\n\
             [workspace]\n"
        )
    }

    /// Writes the project's files, each only when its content changed (an
    /// unchanged file keeps its mtime, so cargo's fingerprints stay fresh).
    /// Returns whether anything was written.
    pub fn write(&self, main_rs: &str, runtime_dir: &Path) -> io::Result<bool> {
        fs::create_dir_all(self.dir.join("src"))?;
        let mut changed = write_if_changed(&self.dir.join("Cargo.toml"), &self.manifest(runtime_dir))?;
        changed |= write_if_changed(&self.dir.join("src").join("main.rs"), main_rs)?;
        // Cargo rewrites Cargo.lock (it adds this package and drops the workspace's
        // others), so it is compared with the workspace lock through a stamp.
        let stamp = format!("{:016x}\n", fnv1a(&[WORKSPACE_LOCK.as_bytes()]));
        let stamp_path = self.dir.join(".serc-lock-stamp");
        let lock_path = self.dir.join("Cargo.lock");
        if !lock_path.is_file() || fs::read_to_string(&stamp_path).ok().as_deref() != Some(stamp.as_str()) {
            fs::write(&lock_path, WORKSPACE_LOCK)?;
            fs::write(&stamp_path, stamp)?;
            changed = true;
        }
        Ok(changed)
    }
}

/// Writes `contents` to `path` unless the file already holds exactly that.
/// Returns whether it wrote.
pub fn write_if_changed(path: &Path, contents: &str) -> io::Result<bool> {
    match fs::read(path) {
        Ok(old) if old == contents.as_bytes() => Ok(false),
        _ => fs::write(path, contents).map(|()| true),
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What a build tells while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// Reading and checking the config.
    Checking(&'a Path),
    /// Diagnostics about the config (warnings as well as errors), or the
    /// translation of a failure of the generated code.
    Diagnostics(&'a [Diagnostic], &'a SourceMap),
    /// Generating the project in this directory.
    Generating(&'a Path),
    /// Cargo is working: `done` of `total` crates are ready (`total`: when cargo
    /// could tell), the last one `name`, which was compiled now (not `fresh`).
    Compiling { done: usize, total: Option<usize>, name: &'a str, fresh: bool },
    /// Merging `files` recorded profiles into one, for `--pgo-use`.
    Merging { files: usize, into: &'a Path },
    /// Cargo finished.
    Finished { profile: Profile, secs: f64 },
    /// Output of cargo or rustc to show as it is (errors not located in the
    /// generated code).
    Verbatim(&'a str),
    /// The binary was written here.
    Wrote(&'a Path),
}

/// Why a build failed. What the user needs to know was told through events,
/// except an [`Failure::Io`]'s message.
#[derive(Debug)]
pub enum Failure {
    /// The config has errors, or uses what the runtime does not implement.
    Config,
    /// A file could not be read or written, or cargo could not be run.
    Io(String),
    /// Cargo failed (a serc bug when the generated code is at fault).
    Cargo(String),
}

/// Profile-guided optimization: a proxy instrumented to record which code runs
/// and how often, or one optimized with what such a proxy recorded (rustc's
/// `-Cprofile-generate` and `-Cprofile-use`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pgo {
    /// Instrument the proxy: each run writes a `.profraw` file into this
    /// directory when it stops.
    Generate(PathBuf),
    /// Optimize with these profiles: a directory of `.profraw` files (merged
    /// with llvm-profdata), one `.profraw`, or one merged `.profdata` file.
    Use(PathBuf),
}

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub cfg: PathBuf,
    pub parse: ParseOptions,
    pub profile: Profile,
    /// Where to copy the binary; `None`: leave it in the target directory.
    pub out: Option<PathBuf>,
    /// `None`: [`cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// `None`: [`runtime_dir`].
    pub runtime_dir: Option<PathBuf>,
    /// Colour the rustc messages shown verbatim.
    pub color: bool,
    /// Profile-guided optimization: `None` for a plain build.
    pub pgo: Option<Pgo>,
}

/// Checks the config, generates its project, runs cargo and copies the binary.
/// Returns where the binary is (`out` when given).
pub fn build(req: &Request, on: &mut dyn FnMut(Event<'_>)) -> Result<PathBuf, Failure> {
    on(Event::Checking(&req.cfg));
    let parse = crate::check_file(&req.cfg, &req.parse)
        .map_err(|e| Failure::Io(format!("cannot read {}: {e}", req.cfg.display())))?;
    if !parse.diagnostics.is_empty() {
        on(Event::Diagnostics(&parse.diagnostics, &parse.sources));
    }
    if parse.has_errors() {
        return Err(Failure::Config);
    }

    let cache = match &req.cache_dir {
        Some(dir) => dir.clone(),
        None => cache_dir().ok_or_else(|| {
            Failure::Io("no cache directory: set SERC_CACHE_DIR (or XDG_CACHE_HOME, or HOME)".to_owned())
        })?,
    };
    let runtime = match &req.runtime_dir {
        Some(dir) => dir.clone(),
        None => runtime_dir().map_err(Failure::Io)?,
    };
    let project = Project::for_config(&cache, &req.cfg)
        .map_err(|e| Failure::Io(format!("cannot read {}: {e}", req.cfg.display())))?;
    if let Some(out) = &req.out {
        if fs::canonicalize(out).is_ok_and(|out| out == project.cfg) {
            return Err(Failure::Io(format!(
                "the binary would overwrite the config {}; name it with -o",
                out.display()
            )));
        }
    }

    on(Event::Generating(&project.dir));
    let output = codegen::generate(&parse, &codegen_options(&parse, &req.cfg)).map_err(|errors| {
        on(Event::Diagnostics(&errors, &parse.sources));
        Failure::Config
    })?;
    if !output.warnings.is_empty() {
        on(Event::Diagnostics(&output.warnings, &parse.sources));
    }
    let main_rs = codegen::binary_source(&output);
    project
        .write(&main_rs, &runtime)
        .map_err(|e| Failure::Io(format!("cannot write the project in {}: {e}", project.dir.display())))?;

    let (target, flag) = match &req.pgo {
        None => (cache.join("target"), None),
        Some(Pgo::Generate(dir)) => {
            let dir = fs::create_dir_all(dir)
                .and_then(|()| fs::canonicalize(dir))
                .map_err(|e| Failure::Io(format!("cannot create the profile directory {}: {e}", dir.display())))?;
            (cache.join("target-pgo-generate"), Some(pgo_flag("-Cprofile-generate=", &dir)?))
        }
        Some(Pgo::Use(path)) => {
            let profdata = merged_profile(path, &cache, &project.name, on)?;
            (cache.join("target-pgo-use"), Some(pgo_flag("-Cprofile-use=", &profdata)?))
        }
    };
    let build = CargoBuild { profile: req.profile, color: req.color, rustflag: flag.as_deref() };
    let mut built = cargo_build(&project, &target, &build, on);
    // A first build on a machine whose cargo cache lacks the runtime's
    // dependencies (a fresh clone where only serc was built): fetch them once
    // (the network is needed this time only) and build again.
    if let Err(CargoError::Failed(failure)) = &built {
        if failure.errors.is_empty() && failure.stderr.contains("offline") {
            on(Event::Verbatim("    Fetching the runtime's dependencies (once per machine)\n"));
            if fetch(&project) {
                built = cargo_build(&project, &target, &build, on);
            }
        }
    }
    let executable = match built {
        Ok(built) => {
            on(Event::Finished { profile: req.profile, secs: built.secs });
            built.executable
        }
        Err(CargoError::Spawn(msg)) => return Err(Failure::Io(msg)),
        Err(CargoError::Failed(failure)) => {
            let mut translated = Vec::new();
            for message in &failure.errors {
                match translate(message, &main_rs, &parse.sources) {
                    Some(diag) => translated.push(diag),
                    None => {
                        if let Some(text) = message.get("rendered").and_then(Value::as_str) {
                            on(Event::Verbatim(text));
                        }
                    }
                }
            }
            if !translated.is_empty() {
                on(Event::Diagnostics(&translated, &parse.sources));
            }
            if !failure.stderr.trim().is_empty() {
                on(Event::Verbatim(&failure.stderr));
            }
            let mut msg = format!("could not build the proxy (cargo in {})", project.dir.display());
            if failure.stderr.contains("offline") {
                msg.push_str(&format!(
                    "; the crates the runtime needs are not in cargo's cache and could not be downloaded: `cargo \
                     fetch --manifest-path {}` with network access gets them",
                    project.dir.join("Cargo.toml").display()
                ));
            }
            return Err(Failure::Cargo(msg));
        }
    };

    let Some(out) = &req.out else { return Ok(executable) };
    copy_binary(&executable, out).map_err(|e| Failure::Io(format!("cannot write {}: {e}", out.display())))?;
    on(Event::Wrote(out));
    Ok(out.clone())
}

/// Copies through a temporary file and a rename, so a running copy of the old
/// binary is not disturbed ("text file busy") and readers never see half a file.
fn copy_binary(from: &Path, to: &Path) -> io::Result<()> {
    let name = to.file_name().ok_or_else(|| io::Error::other("not a file name"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".serc-{}", std::process::id()));
    let tmp = to.with_file_name(tmp_name);
    fs::copy(from, &tmp)?;
    fs::rename(&tmp, to).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// A successful cargo run.
#[derive(Debug)]
pub struct Compiled {
    pub executable: PathBuf,
    pub secs: f64,
}

/// A failed cargo run.
#[derive(Debug)]
pub enum CargoError {
    /// Cargo could not be started, or its output read.
    Spawn(String),
    /// Cargo ran and failed.
    Failed(CargoFailure),
}

#[derive(Debug, Default)]
pub struct CargoFailure {
    /// rustc's error diagnostics (the `message` of cargo's `compiler-message`s).
    pub errors: Vec<Value>,
    /// Cargo's standard error (with `--quiet`: its errors and warnings only).
    pub stderr: String,
}

/// `cargo fetch` for the project: downloads what the runtime needs
/// (the versions of serc's own Cargo.lock). Whether it succeeded.
fn fetch(project: &Project) -> bool {
    cargo_command()
        .args(["fetch", "--quiet", "--manifest-path"])
        .arg(project.dir.join("Cargo.toml"))
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The cargo to run: `$CARGO` (set when serc itself runs under cargo), else
/// `cargo` from the PATH.
fn cargo_command() -> Command {
    Command::new(std::env::var_os("CARGO").filter(|c| !c.is_empty()).unwrap_or_else(|| "cargo".into()))
}

/// How [`cargo_build`] runs cargo.
#[derive(Clone, Copy, Debug)]
pub struct CargoBuild<'a> {
    pub profile: Profile,
    /// Colour the rustc messages.
    pub color: bool,
    /// A rustc flag for the proxy and the crates it links (not for build
    /// scripts and proc macros, which run on this host while building: cargo
    /// is given `--target` with the host's triple for that), after the user's
    /// own RUSTFLAGS.
    pub rustflag: Option<&'a str>,
}

/// Runs `cargo build --offline` in the project with `target` as its target
/// directory, reporting each crate built or found fresh ([`Event::Compiling`]).
pub fn cargo_build(
    project: &Project,
    target: &Path,
    build: &CargoBuild<'_>,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<Compiled, CargoError> {
    let CargoBuild { profile, color, rustflag } = *build;
    let start = Instant::now();
    let manifest = project.dir.join("Cargo.toml");
    // Every project builds the same crates but its own: the count of the last
    // build is exact; the first build asks cargo.
    let count_file = target.join(format!("serc-crates-{}", profile.name()));
    let total = fs::read_to_string(&count_file)
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .or_else(|| count_units(&manifest, target));
    on(Event::Compiling { done: 0, total, name: "", fresh: true });

    let format = if color { "json-diagnostic-rendered-ansi" } else { "json" };
    let mut cmd = cargo_command();
    cmd.arg("build")
        .arg("--offline")
        .arg("--quiet")
        .arg("--profile")
        .arg(profile.name())
        .arg(format!("--message-format={format}"))
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target)
        .current_dir(&project.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(flag) = rustflag {
        let host =
            host_triple().ok_or_else(|| CargoError::Spawn("cannot run rustc -vV (for the host's triple)".into()))?;
        cmd.arg("--target").arg(host).env("CARGO_ENCODED_RUSTFLAGS", encoded_rustflags(flag));
    }
    let mut child = cmd.spawn().map_err(|e| CargoError::Spawn(format!("cannot run cargo: {e}")))?;
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let stderr_thread = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });

    let mut done = 0;
    let mut executable = None;
    let mut errors = Vec::new();
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
        match msg.get("reason").and_then(Value::as_str) {
            Some("compiler-artifact") => {
                let kinds = msg.pointer("/target/kind").and_then(Value::as_array);
                if kinds.is_some_and(|k| k.iter().any(|k| k == "custom-build")) {
                    continue;
                }
                done += 1;
                let name = msg.pointer("/target/name").and_then(Value::as_str).unwrap_or("");
                let fresh = msg.get("fresh").and_then(Value::as_bool).unwrap_or(false);
                let mut name = name;
                if name == project.name {
                    executable = msg.get("executable").and_then(Value::as_str).map(PathBuf::from);
                    // The config's proxy: shown by the config's name.
                    name = project.cfg.file_name().and_then(|n| n.to_str()).unwrap_or(name);
                }
                on(Event::Compiling { done, total: total.map(|t| t.max(done)), name, fresh });
            }
            Some("compiler-message") => {
                if let Some(message) = msg.get("message") {
                    if message.get("level").and_then(Value::as_str) == Some("error") {
                        errors.push(message.clone());
                    }
                }
            }
            _ => {}
        }
    }
    let status = child.wait().map_err(|e| CargoError::Spawn(format!("cannot run cargo: {e}")))?;
    let stderr = stderr_thread.join().unwrap_or_default();
    match executable {
        Some(executable) if status.success() => {
            // Only a hint for the next progress display.
            let _ = write_if_changed(&count_file, &format!("{done}\n"));
            Ok(Compiled { executable, secs: start.elapsed().as_secs_f64() })
        }
        _ => {
            let mut stderr = stderr;
            if status.success() {
                stderr.push_str("cargo reported no executable\n");
            }
            Err(CargoError::Failed(CargoFailure { errors, stderr }))
        }
    }
}

/// The user's RUSTFLAGS (cargo's `CARGO_ENCODED_RUSTFLAGS`, else `RUSTFLAGS`),
/// then `flag`, in cargo's encoding (separated by 0x1f).
fn encoded_rustflags(flag: &str) -> String {
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(encoded) if !encoded.is_empty() => encoded.split('\x1f').map(str::to_owned).collect(),
        _ => std::env::var("RUSTFLAGS").unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
    };
    flags.push(flag.to_owned());
    flags.join("\x1f")
}

/// `-Cprofile-…=PATH`, for a path cargo can pass on (UTF-8, no 0x1f).
fn pgo_flag(option: &str, path: &Path) -> Result<String, Failure> {
    match path.to_str() {
        Some(p) if !p.contains('\x1f') => Ok(format!("{option}{p}")),
        _ => Err(Failure::Io(format!(
            "the profile path {} cannot be given to rustc (not UTF-8, or with a 0x1f byte)",
            path.display()
        ))),
    }
}

/// The merged profile `--pgo-use PATH` builds with: PATH itself when it is a
/// `.profdata` file; else PATH's `.profraw` files (PATH a directory, or one such
/// file) merged by llvm-profdata into the cache. Named by its content, so
/// that new profiles change rustc's flags and cargo rebuilds.
fn merged_profile(path: &Path, cache: &Path, name: &str, on: &mut dyn FnMut(Event<'_>)) -> Result<PathBuf, Failure> {
    let meta =
        fs::metadata(path).map_err(|e| Failure::Io(format!("cannot read the profiles {}: {e}", path.display())))?;
    let ext = |p: &Path, e: &str| p.extension().is_some_and(|x| x == e);
    let dir = cache.join("pgo");
    fs::create_dir_all(&dir).map_err(|e| Failure::Io(format!("cannot create {}: {e}", dir.display())))?;
    let merged = if meta.is_file() && ext(path, "profdata") {
        fs::read(path).map_err(|e| Failure::Io(format!("cannot read {}: {e}", path.display())))?
    } else {
        let raw: Vec<PathBuf> = if meta.is_dir() {
            let entries =
                fs::read_dir(path).map_err(|e| Failure::Io(format!("cannot read {}: {e}", path.display())))?;
            let mut raw: Vec<PathBuf> =
                entries.filter_map(|e| Some(e.ok()?.path())).filter(|p| ext(p, "profraw")).collect();
            raw.sort();
            raw
        } else if ext(path, "profraw") {
            vec![path.to_path_buf()]
        } else {
            return Err(Failure::Io(format!(
                "{} is neither a directory of .profraw files nor a .profraw or .profdata file",
                path.display()
            )));
        };
        if raw.is_empty() {
            return Err(Failure::Io(format!(
                "no .profraw files in {}: build with --pgo-generate {0}, run that proxy under a load like \
                 production's and stop it (it writes its profile when it stops)",
                path.display()
            )));
        }
        let profdata = llvm_profdata().ok_or_else(|| {
            Failure::Io(
                "llvm-profdata, which merges the profiles, was not found: `rustup component add llvm-tools` installs \
                 the one that matches rustc's LLVM"
                    .to_owned(),
            )
        })?;
        on(Event::Merging { files: raw.len(), into: &dir });
        let tmp = dir.join(format!(".{name}-{}.profdata", std::process::id()));
        let out = Command::new(&profdata)
            .arg("merge")
            .arg("-o")
            .arg(&tmp)
            .args(&raw)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failure::Io(format!("cannot run {}: {e}", profdata.display())))?;
        if !out.status.success() {
            let _ = fs::remove_file(&tmp);
            return Err(Failure::Io(format!(
                "{} could not merge the profiles ({}); it must be the one of rustc's LLVM (`rustc -vV`; `rustup \
                 component add llvm-tools` installs it), and the profiles must come from a proxy built by this rustc",
                profdata.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let merged = fs::read(&tmp).map_err(|e| Failure::Io(format!("cannot read {}: {e}", tmp.display())));
        let _ = fs::remove_file(&tmp);
        merged?
    };
    let file_name = format!("{name}-{:016x}.profdata", fnv1a(&[&merged]));
    let file = dir.join(&file_name);
    (if file.is_file() { Ok(()) } else { fs::write(&file, &merged) })
        .map_err(|e| Failure::Io(format!("cannot write {}: {e}", file.display())))?;
    // The project's profiles merged before are not used again.
    if let Ok(entries) = fs::read_dir(&dir) {
        for old in entries.filter_map(|e| e.ok()).map(|e| e.file_name()) {
            let old = old.to_string_lossy();
            let stale = old
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|rest| rest.len() == "0123456789abcdef.profdata".len() && rest.ends_with(".profdata"));
            if stale && old != file_name {
                let _ = fs::remove_file(dir.join(&*old));
            }
        }
    }
    Ok(file)
}

/// The llvm-profdata of rustc's own LLVM (rustup's `llvm-tools` component), else
/// the one on the PATH.
fn llvm_profdata() -> Option<PathBuf> {
    let exe = format!("llvm-profdata{}", std::env::consts::EXE_SUFFIX);
    let sysroot = Command::new(rustc())
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok());
    if let (Some(sysroot), Some(host)) = (sysroot, host_triple()) {
        let tool = Path::new(sysroot.trim()).join("lib/rustlib").join(host).join("bin").join(&exe);
        if tool.is_file() {
            return Some(tool);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(&exe)).find(|p| p.is_file())
}

/// About how many crates (lib, proc-macro and bin units, build scripts left out)
/// the project builds: the packages cargo resolves for this host (a few are
/// resolved and never built). `None` when cargo cannot tell (progress then shows
/// no total).
fn count_units(manifest: &Path, target: &Path) -> Option<usize> {
    let host = host_triple()?;
    let out = cargo_command()
        .args(["metadata", "--offline", "--format-version", "1", "--filter-platform", &host, "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let meta: Value = serde_json::from_slice(&out.stdout).ok()?;
    meta.pointer("/resolve/nodes").and_then(Value::as_array).map(Vec::len)
}

/// The rustc cargo runs: `$RUSTC`, else `rustc` from the PATH.
fn rustc() -> OsString {
    std::env::var_os("RUSTC").filter(|r| !r.is_empty()).unwrap_or_else(|| "rustc".into())
}

fn host_triple() -> Option<String> {
    let out = Command::new(rustc()).arg("-vV").stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_owned)
}

/// A `// file:line:col` line of generated code: the config location of the code
/// below it.
pub fn parse_marker(line: &str) -> Option<(&str, usize, usize)> {
    let rest = line.trim().strip_prefix("//")?.trim();
    let mut parts = rest.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line_no = parts.next()?.parse().ok()?;
    let file = parts.next().filter(|f| !f.is_empty() && !f.contains(char::is_whitespace))?;
    Some((file, line_no, col))
}

/// The config location of 1-based `line` of generated source: the nearest
/// `// file:line:col` marker above it.
pub fn marker_before(source: &str, line: usize) -> Option<(&str, usize, usize)> {
    source.lines().take(line.saturating_sub(1)).filter_map(parse_marker).last()
}

/// Translates a rustc error (the `message` of a cargo `compiler-message`) located
/// in the generated `src/main.rs` (whose text is `main_rs`) into a diagnostic at
/// the config location of the code at fault. `None` when the error is not in
/// the generated code (it is then shown as rustc rendered it).
pub fn translate(message: &Value, main_rs: &str, sources: &SourceMap) -> Option<Diagnostic> {
    let (line, col) = main_rs_location(message)?;
    let rustc_msg = message.get("message").and_then(Value::as_str).unwrap_or("error");
    let code = message.pointer("/code/code").and_then(Value::as_str);
    let rustc_head = match code {
        Some(code) => format!("error[{code}]: {rustc_msg}"),
        None => format!("error: {rustc_msg}"),
    };
    let mut diag =
        Diagnostic::new(Severity::Error, Kind::Internal, "generated code failed to compile; this is a serc bug");
    match marker_before(main_rs, line) {
        Some((file, cfg_line, cfg_col)) => match cfg_span(sources, file, cfg_line, cfg_col) {
            Some(span) => {
                diag = diag.at(span).with_label(format!("rustc: {rustc_msg}"));
            }
            None => diag = diag.with_note(format!("at {file}:{cfg_line}:{cfg_col}")),
        },
        None => diag = diag.with_note("before the first statement of the config (no location marker above it)"),
    }
    let label = primary_label(message).map(|l| format!(": {l}")).unwrap_or_default();
    diag = diag.with_note(format!("rustc: {rustc_head} (at src/main.rs:{line}:{col}{label})"));
    Some(diag.with_help("please report it with the config; `serc emit FILE` prints the generated Rust"))
}

/// The 1-based line and column in `src/main.rs` an error is about: its primary
/// span there (through macro expansions), else any span or child span there.
fn main_rs_location(message: &Value) -> Option<(usize, usize)> {
    let spans = message.get("spans").and_then(Value::as_array)?;
    let primary = spans.iter().filter(|s| s.get("is_primary").and_then(Value::as_bool) == Some(true));
    let in_main = |span: &Value| -> Option<(usize, usize)> {
        let mut span = span;
        loop {
            let file = span.get("file_name").and_then(Value::as_str).unwrap_or("");
            if is_main_rs(file) {
                let line = span.get("line_start").and_then(Value::as_u64)? as usize;
                let col = span.get("column_start").and_then(Value::as_u64)? as usize;
                return Some((line, col));
            }
            span = span.pointer("/expansion/span")?;
        }
    };
    primary.clone().find_map(in_main).or_else(|| spans.iter().find_map(in_main)).or_else(|| {
        let children = message.get("children").and_then(Value::as_array)?;
        children.iter().filter_map(|c| c.get("spans").and_then(Value::as_array)).flatten().find_map(in_main)
    })
}

fn is_main_rs(file: &str) -> bool {
    let file = file.replace('\\', "/");
    file == "src/main.rs" || file.ends_with("/src/main.rs") && !file.contains("/registry/")
}

fn primary_label(message: &Value) -> Option<&str> {
    let spans = message.get("spans").and_then(Value::as_array)?;
    spans
        .iter()
        .find(|s| s.get("is_primary").and_then(Value::as_bool) == Some(true))
        .and_then(|s| s.get("label").and_then(Value::as_str))
        .filter(|l| !l.is_empty())
}

/// The span in `sources` at 1-based `line` and `col` (characters) of the file
/// named `file`, to the end of that line.
fn cfg_span(sources: &SourceMap, file: &str, line: usize, col: usize) -> Option<Span> {
    let (id, source) = sources
        .files()
        .find(|(_, f)| f.name == file)
        .or_else(|| sources.files().find(|(_, f)| f.path.ends_with(file) || Path::new(file).ends_with(&f.path)))?;
    let text: &str = &source.text;
    let mut line_start = 0;
    for _ in 1..line {
        line_start += text[line_start..].find('\n')? + 1;
    }
    let line_text = text[line_start..].split('\n').next().unwrap_or("");
    let offset = line_text.char_indices().nth(col.saturating_sub(1)).map_or(line_text.len(), |(i, _)| i);
    let end = line_text.trim_end().len().max(offset);
    Some(Span::new(id, line_start + offset, line_start + end))
}
