//! `serc emit`, `serc build` and `serc run`: the generated Rust parses, config
//! errors stop a build before cargo, rustc errors are traced back to the config,
//! the project writer keeps unchanged files, and one real build (dev profile,
//! with a cache under target/ shared between runs) gives a binary that runs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Run, TempDir};

use serc::build::{self, Project};
use serc::diag::Severity;
use serc::syntax::{parse_str, ParseOptions};

const MINIMAL: &str = "loadmodule \"sl.so\"\nroute { sl_send_reply(\"200\", \"OK\"); }\n";
/// `forward()` (a core function) without its `;`.
const MISSING_SEMICOLON: &str = "route { forward() }\n";

/// Runs `serc ARGS…` in `dir` with `SERC_CACHE_DIR=cache` and `envs`, no colour settings inherited.
fn serc(dir: &Path, cache: &Path, envs: &[(&str, &Path)], args: &[&str]) -> Run {
    let mut all = vec![("SERC_CACHE_DIR", cache)];
    all.extend_from_slice(envs);
    common::serc(dir, &all, args)
}

#[test]
fn emit_prints_rust_that_parses() {
    let dir = TempDir::new().with("minimal.cfg", MINIMAL);
    let run = serc(&dir.0, &dir.0.join("cache"), &[], &["emit", "minimal.cfg"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let file = syn::parse_file(&run.stdout).unwrap_or_else(|e| panic!("not Rust ({e}):\n{}", run.stdout));
    assert!(!file.items.is_empty(), "stdout:\n{}", run.stdout);
    assert!(run.stdout.contains("CfgScript"), "stdout:\n{}", run.stdout);
}

#[test]
fn maxbuffer_reaches_the_launch_settings_without_a_warning() {
    let dir = TempDir::new().with("buffer.cfg", &format!("maxbuffer=1048576\n{MINIMAL}"));
    let run = serc(&dir.0, &dir.0.join("cache"), &[], &["emit", "buffer.cfg"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let compact: String = run.stdout.split_whitespace().collect();
    assert!(
        compact.contains("settings.maxbuffer=::core::option::Option::Some(1048576usize);"),
        "stdout:\n{}",
        run.stdout
    );
    assert!(!run.stderr.contains("maxbuffer"), "stderr:\n{}", run.stderr);
}

#[test]
fn emit_of_a_broken_config_exits_1() {
    let dir = TempDir::new().with("bad.cfg", MISSING_SEMICOLON);
    let run = serc(&dir.0, &dir.0.join("cache"), &[], &["emit", "bad.cfg"]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("error[syntax]: "), "stderr:\n{}", run.stderr);
}

#[test]
fn build_of_a_config_with_a_syntax_error_exits_1_before_cargo() {
    let dir = TempDir::new().with("bad.cfg", MISSING_SEMICOLON);
    let cache = dir.0.join("cache");
    let run = serc(&dir.0, &cache, &[], &["build", "bad.cfg"]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("error[syntax]: "), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("--> bad.cfg:1:"), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("error: found 1 error"), "stderr:\n{}", run.stderr);
    assert!(!run.stderr.contains("Compiling"), "cargo is not run:\n{}", run.stderr);
    assert!(!cache.exists(), "nothing is generated");
    assert!(!dir.0.join("bad").exists());

    let run = serc(&dir.0, &cache, &[], &["build", "--format", "json", "bad.cfg"]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let line: serde_json::Value = serde_json::from_str(run.stdout.lines().next().expect("a JSON line")).unwrap();
    assert_eq!(line["kind"], "syntax");
    assert_eq!(line["line"], 1);
}

#[test]
fn build_without_a_runtime_exits_2_naming_serc_runtime_dir() {
    let dir = TempDir::new().with("minimal.cfg", MINIMAL);
    let missing = dir.0.join("no-runtime");
    let run = serc(&dir.0, &dir.0.join("cache"), &[("SERC_RUNTIME_DIR", missing.as_path())], &["build", "minimal.cfg"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("SERC_RUNTIME_DIR"), "stderr:\n{}", run.stderr);
}

#[test]
fn markers_are_parsed() {
    assert_eq!(build::parse_marker("    // openser.cfg:12:5"), Some(("openser.cfg", 12, 5)));
    assert_eq!(build::parse_marker("// dir/a b.cfg:1:2"), None, "not a marker: a space in the name");
    assert_eq!(build::parse_marker("// C:\\cfg\\x.cfg:3:4"), Some(("C:\\cfg\\x.cfg", 3, 4)));
    assert_eq!(build::parse_marker("// see note: 1:2"), None);
    assert_eq!(build::parse_marker("let x = 1; // a.cfg:1:2"), None);
    assert_eq!(build::parse_marker("// :1:2"), None);
}

/// A rustc error at line 9 of the generated source: the marker above it says
/// `t.cfg:3:5`, so the diagnostic is there.
#[test]
fn rustc_errors_in_generated_code_are_shown_at_the_config_line() {
    let cfg = "loadmodule \"sl.so\"\nroute {\n    sl_send_reply(\"200\", \"OK\");\n    exit;\n}\n";
    let parse = parse_str("t.cfg", cfg, &ParseOptions::default());
    let main_rs = "\
pub struct CfgScript;
impl Script for CfgScript {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        // t.cfg:2:1
        let x = 1;
        // not a marker
        // t.cfg:3:5
        let y: u32 =
            \"200\";
        // t.cfg:4:5
        return Flow::Exit;
    }
}
";
    let message = serde_json::json!({
        "$message_type": "diagnostic",
        "message": "mismatched types",
        "code": { "code": "E0308", "explanation": null },
        "level": "error",
        "spans": [
            {
                "file_name": "src/main.rs", "byte_start": 0, "byte_end": 0,
                "line_start": 8, "line_end": 8, "column_start": 16, "column_end": 19,
                "is_primary": false, "label": "expected due to this", "expansion": null,
                "suggested_replacement": null, "suggestion_applicability": null, "text": []
            },
            {
                "file_name": "src/main.rs", "byte_start": 0, "byte_end": 0,
                "line_start": 9, "line_end": 9, "column_start": 13, "column_end": 18,
                "is_primary": true, "label": "expected `u32`, found `&str`", "expansion": null,
                "suggested_replacement": null, "suggestion_applicability": null, "text": []
            }
        ],
        "children": [],
        "rendered": "error[E0308]: mismatched types\n --> src/main.rs:9:13\n"
    });
    let diag = build::translate(&message, main_rs, &parse.sources).expect("located in main.rs");
    assert_eq!(diag.severity, Severity::Error);
    assert!(diag.message.contains("generated code failed to compile; this is a serc bug"), "{diag:?}");
    let span = diag.span.expect("a location in the config");
    let file = parse.sources.get(span.file);
    assert_eq!(file.name, "t.cfg");
    assert_eq!(file.line_col(span.start), (3, 5));
    assert_eq!(parse.sources.snippet(span), "sl_send_reply(\"200\", \"OK\");");
    let text = format!("{:?} {:?}", diag.label, diag.notes);
    assert!(text.contains("mismatched types"), "rustc's message is kept: {text}");
    assert!(text.contains("E0308"), "{text}");

    // The rendered form names the config line.
    let human = serc::diag::render::human(std::slice::from_ref(&diag), &parse.sources, false);
    assert!(human.contains("--> t.cfg:3:5"), "{human}");

    // Through a macro expansion: the span in main.rs is the expansion's.
    let mut in_macro = message.clone();
    in_macro["spans"][1]["file_name"] = "/home/u/.cargo/registry/src/x/tokio/src/macros.rs".into();
    in_macro["spans"][1]["expansion"] = serde_json::json!({
        "span": { "file_name": "src/main.rs", "line_start": 11, "column_start": 9, "expansion": null },
        "macro_decl_name": "m!", "def_site_span": null
    });
    in_macro["spans"][0]["file_name"] = "elsewhere.rs".into();
    let diag = build::translate(&in_macro, main_rs, &parse.sources).expect("located in main.rs");
    let span = diag.span.unwrap();
    assert_eq!(parse.sources.get(span.file).line_col(span.start), (4, 5));

    // An error elsewhere (the runtime) is not translated.
    let mut elsewhere = message.clone();
    for span in elsewhere["spans"].as_array_mut().unwrap() {
        span["file_name"] = "/src/serc/runtime/src/app.rs".into();
    }
    assert!(build::translate(&elsewhere, main_rs, &parse.sources).is_none());

    // Above the first marker: no config location, still reported.
    let mut early = message;
    early["spans"][1]["line_start"] = 2.into();
    early["spans"][0]["line_start"] = 2.into();
    let diag = build::translate(&early, main_rs, &parse.sources).unwrap();
    assert!(diag.span.is_none());
}

#[test]
fn the_project_writer_keeps_unchanged_files() {
    let dir = TempDir::new().with("minimal.cfg", MINIMAL);
    let cache = dir.0.join("cache");
    let runtime = dir.0.join("runtime");
    let project = Project::for_config(&cache, &dir.0.join("minimal.cfg")).unwrap();
    assert!(project.dir.starts_with(cache.join("projects")));
    assert!(project.name.starts_with("minimal-"), "{}", project.name);
    let again = Project::for_config(&cache, &dir.0.join(".").join("minimal.cfg")).unwrap();
    assert_eq!(again.dir, project.dir, "the same config, the same project");

    assert!(project.write("fn main() {}\n", &runtime).unwrap(), "a new project is written");
    let files = ["Cargo.toml", "Cargo.lock", "src/main.rs"].map(|f| project.dir.join(f));
    let manifest = fs::read_to_string(&files[0]).unwrap();
    assert!(manifest.contains("serc-runtime = { path = "), "{manifest}");
    assert!(manifest.contains("[workspace]"), "{manifest}");
    assert_eq!(fs::read_to_string(&files[1]).unwrap(), build::WORKSPACE_LOCK);
    let mtimes = |files: &[PathBuf]| files.iter().map(|f| fs::metadata(f).unwrap().modified().unwrap()).collect();
    let before: Vec<_> = mtimes(&files);

    std::thread::sleep(Duration::from_millis(50));
    assert!(!project.write("fn main() {}\n", &runtime).unwrap(), "nothing changed");
    assert_eq!(mtimes(&files), before, "unchanged files keep their mtime");

    // Cargo rewrites its lock; that is not a change either.
    fs::write(&files[1], "# rewritten by cargo\n").unwrap();
    let lock_mtime = fs::metadata(&files[1]).unwrap().modified().unwrap();
    assert!(!project.write("fn main() {}\n", &runtime).unwrap());
    assert_eq!(fs::metadata(&files[1]).unwrap().modified().unwrap(), lock_mtime);

    std::thread::sleep(Duration::from_millis(50));
    assert!(project.write("fn main() { }\n", &runtime).unwrap(), "main.rs changed");
    let after: Vec<_> = mtimes(&files);
    assert_eq!(after[0], before[0], "Cargo.toml kept");
    assert_ne!(after[2], before[2], "main.rs rewritten");
}

/// target/serc-cache: the cache the end-to-end tests (tests/) share.
fn shared_cache() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR is target/tmp");
    target.join("serc-cache")
}

/// A real build, with the dev profile and the cache under target/ that the
/// end-to-end tests (tests/) share: the runtime and its dependencies compile
/// once for every run of both.
#[test]
fn build_and_run_a_minimal_config() {
    let dir = TempDir::new().with("minimal.cfg", MINIMAL);
    let cache = shared_cache();
    let out = dir.0.join("proxy-bin");
    let run = serc(&dir.0, &cache, &[], &["build", "--profile", "dev", "-o", "proxy-bin", "minimal.cfg"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    for stage in ["Checking minimal.cfg", "Generating", "Finished dev profile in", "Wrote proxy-bin"] {
        assert!(run.stderr.contains(stage), "`{stage}` in the progress:\n{}", run.stderr);
    }
    assert!(out.is_file(), "the binary is written to -o");

    let version = Command::new(&out).arg("--version").output().expect("run the proxy");
    let stdout = String::from_utf8_lossy(&version.stdout);
    assert!(version.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&version.stderr));
    // `<cfg_name> (config <hash>) built by serc <version>`. The generator fills
    // cfg_name from the config (codegen::Options::cfg_name); while it did not
    // (the placeholder generator), the line still names serc.
    assert!(stdout.contains("serc"), "{stdout}");
    if !stdout.starts_with(' ') {
        assert!(stdout.contains("minimal.cfg"), "{stdout}");
    }

    // `serc run` reuses the build and passes the arguments after `--`.
    let run = serc(&dir.0, &cache, &[], &["run", "--profile", "dev", "minimal.cfg", "--", "--version"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, stdout, "the same binary, the same version line");
    assert!(run.stderr.contains("Running"), "stderr:\n{}", run.stderr);
}

/// Profile-guided optimization, both steps, with the dev profile and the
/// shared cache: `--pgo-generate` gives a proxy that answers SIP and writes its
/// profile when it stops; `--pgo-use` merges the profiles and builds with them.
/// Merging needs the llvm-profdata of rustc's LLVM (rustup's `llvm-tools`,
/// which `cargo xtask test` installs); without it the build must say so.
#[test]
fn pgo_generate_then_use() {
    let dir = TempDir::new().with("minimal.cfg", MINIMAL);
    let cache = shared_cache();
    let profiles = dir.0.join("pgo");

    // No profiles yet: refused before cargo runs, saying what to do.
    fs::create_dir(&profiles).unwrap();
    let run = serc(&dir.0, &cache, &[], &["build", "--profile", "dev", "--pgo-use", "pgo", "minimal.cfg"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("no .profraw files in pgo") && run.stderr.contains("--pgo-generate"), "{}", run.stderr);

    // Both builds compile every crate (their own flags, their own target
    // directories): without debug information, which nothing here reads,
    // they take less time and room.
    let no_debug: &[(&str, &Path)] = &[("CARGO_PROFILE_DEV_DEBUG", Path::new("0"))];
    let run = serc(
        &dir.0,
        &cache,
        no_debug,
        &["build", "--profile", "dev", "--pgo-generate", "pgo", "-o", "trainee", "minimal.cfg"],
    );
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(cache.join("target-pgo-generate").is_dir(), "an instrumented build has its own target directory");

    // A SIP request through the instrumented proxy, then SIGTERM.
    let mut proxy = Command::new(dir.0.join("trainee"))
        .args(["--listen", "udp:127.0.0.1:0", "--workers", "1", "--log-level", "error"])
        .current_dir(&dir.0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the instrumented proxy");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(proxy.stdout.take().unwrap()), &mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on udp:").unwrap_or_else(|| panic!("first line: {line:?}"));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKpgo1\r\nMax-Forwards: 70\r\n\
         From: <sip:a@{me}>;tag=1\r\nTo: <sip:b@{addr}>\r\nCall-ID: pgo-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(options.as_bytes(), addr).unwrap();
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("a reply from the instrumented proxy");
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK\r\n"), "{}", String::from_utf8_lossy(&buf[..n]));
    let killed = Command::new("kill").args(["-TERM", &proxy.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = proxy.wait().unwrap();
    assert!(status.success(), "the proxy stops cleanly on SIGTERM: {status}");
    let raw: Vec<_> = fs::read_dir(&profiles)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
        .collect();
    assert_eq!(raw.len(), 1, "one profile written at exit: {raw:?}");

    let run = serc(
        &dir.0,
        &cache,
        no_debug,
        &["build", "--profile", "dev", "--pgo-use", "pgo", "-o", "tuned", "minimal.cfg"],
    );
    if llvm_profdata_installed() {
        assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
        assert!(run.stderr.contains("Merging 1 profile into"), "{}", run.stderr);
        let merged: Vec<_> = fs::read_dir(cache.join("pgo")).unwrap().filter_map(|e| e.ok()).collect();
        assert!(!merged.is_empty(), "the merged profile is kept in the cache");
        let version = Command::new(dir.0.join("tuned")).arg("--version").output().unwrap();
        assert!(version.status.success() && String::from_utf8_lossy(&version.stdout).contains("minimal.cfg"));
    } else {
        assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
        assert!(run.stderr.contains("rustup component add llvm-tools"), "{}", run.stderr);
    }
}

/// Whether rustup's llvm-tools (the llvm-profdata of rustc's LLVM) are installed.
fn llvm_profdata_installed() -> bool {
    let out = |args: &[&str]| {
        let out = Command::new("rustc").args(args).output().expect("rustc");
        String::from_utf8(out.stdout).unwrap()
    };
    let sysroot = out(&["--print", "sysroot"]);
    let vv = out(&["-vV"]);
    let host = vv.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc -vV names the host");
    Path::new(sysroot.trim()).join("lib/rustlib").join(host).join("bin/llvm-profdata").is_file()
}
