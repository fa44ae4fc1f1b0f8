//! The checker on real configs: the OpenSER 1.2–1.3 configs of the corpus
//! check without error (but those OpenSER itself refuses), and corrupted copies
//! of them get the right diagnostic kind at the line of the damage.
//!
//! The corpus is `../shared/corpus/cfg` beside the repository (CI has it).

use std::path::{Path, PathBuf};

use regex::Regex;
use serc::diag::Severity;
use serc::syntax::{parse_str, Parse, ParseOptions};

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cfg");
    assert!(
        dir.is_dir(),
        "the corpus is missing: {} (a checkout of the shared data beside the repository)",
        dir.display()
    );
    dir
}

fn check(name: &str, text: &str) -> Parse {
    let mut parse = parse_str(name, text, &ParseOptions::default());
    serc::check_parse(&mut parse);
    parse
}

fn line(parse: &Parse, d: &serc::diag::Diagnostic) -> usize {
    let span = d.span.expect("a located diagnostic");
    parse.sources.get(span.file).line_col(span.start).0
}

fn errors(parse: &Parse) -> Vec<String> {
    parse
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            format!(
                "{}:{} [{}] {}",
                parse.sources.get(d.span.unwrap().file).name,
                line(parse, d),
                d.kind.as_str(),
                d.message
            )
        })
        .collect()
}

/// Configs OpenSER 1.3 itself refuses, and why (checked by `broken_configs_are_refused`).
const REFUSED: &[(&str, &str)] = &[
    ("opensips__openser1.2__ex-acc-mysql.cfg", "syntax"), // `if(is_method("BYE") {`
    ("opensips__openser1.2__ex-exec_s3.cfg", "argument"), // shell variables in a format
    ("opensips__openser1.2__ex-exec_s5.cfg", "syntax"),   // `route(1)` without `;`
    ("opensips__openser1.2__jabberx.cfg", "unknown-param"), // registrar's `use_domain`, gone before 1.2
    ("opensips__openser1.2__msilo-doc.cfg", "syntax"),    // an extra `{`
    ("opensips__openser1.3__default.cfg", "syntax"),      // `exit; }` outside any route
    ("opensips__openser1.3__ldap.cfg", "syntax"),         // an LDAP module INI file
    ("opensips__openser1.3__mediaproxy.cfg", "module-not-loaded"), // a fragment: sl, maxfwd … not loaded
];

#[test]
fn corpus_configs_check_without_error() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(corpus()).expect("the corpus directory") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".cfg") || REFUSED.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a readable config");
        let parse = check(&name, &text);
        failures.extend(errors(&parse));
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} configs checked");
    assert!(failures.is_empty(), "errors in real configs:\n{}", failures.join("\n"));
}

#[test]
fn broken_configs_are_refused() {
    for (name, kind) in REFUSED {
        let text = std::fs::read_to_string(corpus().join(name)).expect("a readable config");
        let parse = check(name, &text);
        assert!(
            parse.diagnostics.iter().any(|d| d.severity == Severity::Error && d.kind.as_str() == *kind),
            "{name}: expected a `{kind}` error, got:\n{}",
            errors(&parse).join("\n")
        );
    }
}

/// A damage: the first line matching `find` (after `after`, if given) is
/// rewritten by `replace` (`$0` is the match); the diagnostic `kind` is
/// expected on that line.
struct Damage {
    what: &'static str,
    after: Option<&'static str>,
    find: &'static str,
    replace: &'static str,
    kind: &'static str,
}

const DAMAGES: &[Damage] = &[
    Damage {
        what: "a misspelt function",
        after: None,
        find: r"\bsl_send_reply\(",
        replace: "sl_send_rpely(",
        kind: "unknown-function",
    },
    Damage {
        what: "an extra argument",
        after: None,
        find: r"\bloose_route\(\)",
        replace: "loose_route(\"x\")",
        kind: "arity",
    },
    Damage {
        what: "route(N) with no route[N]",
        after: None,
        find: r"\broute\(\d+\)",
        replace: "route({free:route})",
        kind: "undefined-route",
    },
    Damage {
        what: "t_on_failure to a missing failure_route",
        after: None,
        find: r#"\bt_on_failure\("\d+"\)"#,
        replace: "t_on_failure(\"{free:failure_route}\")",
        kind: "undefined-route",
    },
    Damage {
        what: "a misspelt modparam",
        after: None,
        find: r#"^modparam\("(\w+)", *"(\w+)""#,
        replace: "modparam(\"$1\", \"$2x\"",
        kind: "unknown-param",
    },
    Damage {
        what: "a request-only function in a failure route",
        after: Some(r"^failure_route\["),
        find: r"^\s*\S.*;\s*$",
        replace: "\tsave(\"location\"); $0",
        kind: "route-type",
    },
    Damage {
        what: "a request-only function in a reply route",
        after: Some(r"^onreply_route"),
        find: r"^\s*\S.*;\s*$",
        replace: "\tsl_reply_error(); $0",
        kind: "route-type",
    },
    Damage {
        what: "a non-numeric reply code",
        after: None,
        find: r#"\bsl_send_reply\("\d+""#,
        replace: "sl_send_reply(\"4o4\"",
        kind: "argument",
    },
    Damage { what: "an invalid regex", after: None, find: r#"=~ *""#, replace: "=~ \"([", kind: "argument" },
    Damage {
        what: "a function of a module that is not loaded",
        after: Some(r"^route *\{|^route\[0\]"),
        find: r"^\s*\S.*;\s*$",
        replace: "\tpike_check_req(); $0",
        kind: "module-not-loaded",
    },
];

const DAMAGED: &[&str] = &[
    "opensips__openser1.3__test7.cfg",
    "opensips__openser1.2__default.cfg",
    "opensips__openser1.3__osp.cfg",
    "opensips__openser1.2__ex-nathelper.cfg",
    "opensips__openser1.3__test12.cfg",
];

#[test]
fn corrupted_copies_are_reported_at_the_damage() {
    let mut applied = vec![0; DAMAGES.len()];
    let mut failures = Vec::new();
    for name in DAMAGED {
        let text = std::fs::read_to_string(corpus().join(name)).expect("a readable config");
        assert!(errors(&check(name, &text)).is_empty(), "{name} must check clean before it is damaged");
        for (i, damage) in DAMAGES.iter().enumerate() {
            let Some((damaged, at)) = apply(&text, damage) else { continue };
            applied[i] += 1;
            let parse = check(name, &damaged);
            let found = parse
                .diagnostics
                .iter()
                .any(|d| d.severity >= Severity::Warning && d.kind.as_str() == damage.kind && line(&parse, d) == at);
            if !found {
                failures.push(format!(
                    "{name}: {} at line {at}: no `{}` there; got:\n  {}",
                    damage.what,
                    damage.kind,
                    errors(&parse).join("\n  ")
                ));
            }
        }
    }
    for (damage, n) in DAMAGES.iter().zip(&applied) {
        assert!(*n > 0, "`{}` found no place to apply in any config", damage.what);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Applies `damage` to the first matching line; returns the text and the
/// 1-based line. `{free:KIND}` in the replacement is a number no `KIND[N]`
/// block of the config has.
fn apply(text: &str, damage: &Damage) -> Option<(String, usize)> {
    let mut replace = damage.replace.to_string();
    for kind in ["route", "failure_route"] {
        let hole = format!("{{free:{kind}}}");
        if replace.contains(&hole) {
            let defined = Regex::new(&format!(r"(?m)^{kind}\[(\d+)\]")).expect("a valid pattern");
            let used: Vec<u32> = defined.captures_iter(text).filter_map(|c| c[1].parse().ok()).collect();
            let free = (2..40).find(|n| !used.contains(n)).expect("a free route number");
            replace = replace.replace(&hole, &free.to_string());
        }
    }
    let find = Regex::new(damage.find).expect("a valid pattern");
    let after = damage.after.map(|a| Regex::new(a).expect("a valid pattern"));
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut armed = after.is_none();
    for (i, l) in lines.iter_mut().enumerate() {
        if !armed {
            armed = after.as_ref().is_some_and(|a| a.is_match(l));
            continue;
        }
        let trimmed = l.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with("/*") || trimmed.starts_with('*') {
            continue;
        }
        if find.is_match(l) {
            *l = find.replace(l, replace.as_str()).into_owned();
            return Some((lines.join("\n") + "\n", i + 1));
        }
    }
    None
}
