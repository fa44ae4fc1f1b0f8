//! Runs the `serc` binary on small configs and checks what a user and a CI job
//! see: exit codes, the JSON Lines and GitHub formats, and usage errors.

mod common;

use common::{Run, TempDir};

const VALID: &str = "route { drop; }\n";
/// `forward()` (a core function) without its `;`.
const MISSING_SEMICOLON: &str = "route { forward() }\n";
/// A `}` where only items may stand: the error is at line 3, column 1.
const ERROR_ON_LINE_3: &str = "# a comment\n# another\n}\nroute { exit; }\n";

/// Runs `serc ARGS…` in `dir`, with no colour settings inherited.
fn serc(dir: &TempDir, args: &[&str]) -> Run {
    common::serc(&dir.0, &[], args)
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))).collect()
}

#[test]
fn valid_config_exits_0_and_prints_nothing() {
    let dir = TempDir::new().with("ok.cfg", VALID);
    let run = serc(&dir, &["check", "ok.cfg"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains("error"), "stderr:\n{}", run.stderr);
}

#[test]
fn syntax_error_exits_1_with_a_rustc_style_message() {
    let dir = TempDir::new().with("bad.cfg", MISSING_SEMICOLON);
    let run = serc(&dir, &["check", "bad.cfg"]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, "", "human diagnostics go to stderr");
    assert!(run.stderr.contains("error[syntax]: "), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("--> bad.cfg:1:"), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("route { forward() }"), "the source line is shown:\n{}", run.stderr);
    assert!(run.stderr.contains("error: found "), "a summary line ends the output:\n{}", run.stderr);
    assert!(!run.stderr.contains('\x1b'), "no colour when stderr is not a terminal");
}

#[test]
fn missing_file_exits_2_and_the_other_files_are_still_checked() {
    let dir = TempDir::new().with("bad.cfg", MISSING_SEMICOLON);
    let run = serc(&dir, &["check", "missing.cfg", "bad.cfg"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("error: cannot read missing.cfg: "), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("--> bad.cfg:"), "bad.cfg is still checked:\n{}", run.stderr);
}

#[test]
fn bad_flag_exits_2() {
    let dir = TempDir::new().with("ok.cfg", VALID);
    let run = serc(&dir, &["check", "--frobnicate", "ok.cfg"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    let run = serc(&dir, &["check"]);
    assert_eq!(run.code, Some(2), "FILE is required; stderr:\n{}", run.stderr);
    let run = serc(&dir, &["check", "--format", "xml", "ok.cfg"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
}

#[test]
fn unknown_dialect_exits_2() {
    let dir = TempDir::new().with("ok.cfg", VALID);
    let run = serc(&dir, &["check", "--dialect", "asterisk", "ok.cfg"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("openser-1.3"), "the valid names are listed:\n{}", run.stderr);
    for dialect in ["ser-0.9", "openser-1.3", "opensips", "kamailio"] {
        let run = serc(&dir, &["check", "--dialect", dialect, "ok.cfg"]);
        assert_eq!(run.code, Some(0), "--dialect {dialect}; stderr:\n{}", run.stderr);
    }
}

#[test]
fn defines_are_accepted() {
    let dir = TempDir::new().with("ok.cfg", VALID);
    let run = serc(&dir, &["check", "-D", "WITH_NAT", "-D", "DBURL=mysql://db/ser", "ok.cfg"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let run = serc(&dir, &["check", "-D", "=1", "ok.cfg"]);
    assert_eq!(run.code, Some(2), "a define needs a name; stderr:\n{}", run.stderr);
}

#[test]
fn json_reports_1_based_positions() {
    let dir = TempDir::new().with("line3.cfg", ERROR_ON_LINE_3);
    let run = serc(&dir, &["check", "--format", "json", "line3.cfg"]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let diags = json_lines(&run.stdout);
    let first = diags.iter().find(|d| d["severity"] == "error").expect("an error");
    assert_eq!(first["file"], "line3.cfg");
    assert_eq!(first["line"], 3, "{first}");
    assert_eq!(first["column"], 1, "{first}");
    assert_eq!(first["end_line"], 3, "{first}");
    assert!(first["end_column"].as_u64() >= Some(1), "{first}");
    assert_eq!(first["kind"], "syntax");
    assert!(first["message"].as_str().is_some_and(|m| !m.is_empty()), "{first}");
    assert!(first["notes"].is_array() && first["help"].is_array(), "{first}");
    assert!(first.get("label").is_some(), "{first}");
    for diag in &diags {
        assert!(diag["severity"] == "error" || diag["severity"] == "warning", "no notes in JSON: {diag}");
    }
}

#[test]
fn json_is_empty_for_a_valid_config() {
    let dir = TempDir::new().with("ok.cfg", VALID).with("k.cfg", "#!KAMAILIO\nroute { drop; }\n");
    let run = serc(&dir, &["check", "--format", "json", "ok.cfg", "k.cfg"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[test]
fn json_matches_the_human_position() {
    let dir = TempDir::new().with("bad.cfg", MISSING_SEMICOLON);
    let json = serc(&dir, &["check", "--format", "json", "bad.cfg"]);
    let human = serc(&dir, &["check", "bad.cfg"]);
    let diags = json_lines(&json.stdout);
    let first = diags.first().expect("a diagnostic");
    let origin = format!("--> bad.cfg:{}:{}\n", first["line"], first["column"]);
    assert!(human.stderr.contains(&origin), "{origin} in\n{}", human.stderr);
}

#[test]
fn github_format_is_workflow_commands() {
    let dir = TempDir::new().with("bad.cfg", MISSING_SEMICOLON);
    let run = serc(&dir, &["check", "--format", "github", "bad.cfg"]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let line = run.stdout.lines().next().expect("an annotation");
    let rest = line.strip_prefix("::error ").unwrap_or_else(|| panic!("{line}"));
    let (props, message) = rest.split_once("::").unwrap_or_else(|| panic!("{line}"));
    let props: Vec<(&str, &str)> = props.split(',').filter_map(|p| p.split_once('=')).collect();
    let keys: Vec<&str> = props.iter().map(|p| p.0).collect();
    assert_eq!(keys, ["file", "line", "col", "endLine", "endColumn", "title"], "{line}");
    assert_eq!(props[0].1, "bad.cfg");
    assert_eq!(props[1].1, "1");
    assert!(props[2..5].iter().all(|p| p.1.parse::<u32>().is_ok_and(|n| n >= 1)), "{line}");
    assert_eq!(props[5].1, "serc [syntax]");
    assert!(!message.is_empty() && !message.contains('\n'), "{line}");
    for line in run.stdout.lines() {
        assert!(line.starts_with("::error ") || line.starts_with("::warning "), "{line}");
    }
}

#[test]
fn colour_on_request() {
    let dir = TempDir::new().with("bad.cfg", MISSING_SEMICOLON);
    let run = serc(&dir, &["check", "--color", "always", "bad.cfg"]);
    assert!(run.stderr.contains('\x1b'), "stderr:\n{}", run.stderr);
    let run = serc(&dir, &["check", "--color", "never", "bad.cfg"]);
    assert!(!run.stderr.contains('\x1b'), "stderr:\n{}", run.stderr);
}

#[test]
fn help_and_version() {
    let dir = TempDir::new();
    let run = serc(&dir, &["--version"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.stdout.trim(), format!("serc {}", env!("CARGO_PKG_VERSION")));
    let run = serc(&dir, &["check", "--help"]);
    assert_eq!(run.code, Some(0));
    for needle in ["serc check --format github openser.cfg", "Exit status", "#!KAMAILIO", "openser-1.3"] {
        assert!(run.stdout.contains(needle), "`{needle}` in check --help:\n{}", run.stdout);
    }
}

#[test]
fn modules_lists_functions_and_parameters_from_the_manifests() {
    let dir = TempDir::new();
    let run = serc(&dir, &["modules", "tm"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(run.stdout.contains("t_relay(destination: socket)"), "{}", run.stdout);
    assert!(run.stdout.contains("fr_timer: int = 30"), "{}", run.stdout);
    let json = serc(&dir, &["modules", "--json", "sl"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value[0]["name"], "sl");
    assert!(value[0]["functions"].as_array().is_some_and(|f| f.iter().any(|f| f["name"] == "sl_send_reply")));
    let all = serc(&dir, &["modules"]);
    assert!(all.stdout.contains("registrar —") && all.stdout.contains("core —"));
    let unknown = serc(&dir, &["modules", "tmm"]);
    assert_eq!(unknown.code, Some(2));
    assert!(unknown.stderr.contains("did you mean `tm`?"), "{}", unknown.stderr);
}
