//! The front end is total: whatever the bytes, `parse_str` returns, every
//! diagnostic points into its file, and the dump and the renderers cope with the
//! result.
//!
//! Two kinds of input: deterministic pseudo-random mutants of every corpus config
//! (`../shared/corpus/cfg`, or `SERC_CORPUS_DIR`), and adversarial texts built to
//! exhaust the stack or the time of a careless parser (100,000 nested `(`, 10,000
//! nested `if`s …). Each adversarial text is parsed in a child process, on a 2 MiB
//! stack (the default test thread's), so that a stack overflow fails that case by
//! name instead of aborting the whole test binary.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serc::diag::render;
use serc::source::Span;
use serc::syntax::dump::dump;
use serc::syntax::{parse_str, Parse, ParseOptions};

// ------------------------------------------------------------------ helpers

/// xorshift64* (Vigna): small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Never zero (xorshift stays at zero); spread small seeds.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("SERC_CORPUS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cfg"),
    };
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "the config corpus is missing: expected {} with MANIFEST.tsv and the *.cfg files \
         (the workspace's ../shared/corpus/cfg; set SERC_CORPUS_DIR to read it from elsewhere)",
        dir.display()
    );
    dir
}

/// Every corpus config: (file name, bytes), sorted by name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "cfg"))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path.file_name().unwrap_or_default().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} configs in {}", files.len(), dir.display());
    files
}

/// Everything a parse result must satisfy whatever the input; the first
/// violation, if any.
fn check_parse(parse: &Parse) -> Result<(), String> {
    let span_ok = |span: Span| -> Result<(), String> {
        let files = parse.sources.files().count();
        if span.file.0 as usize >= files {
            return Err(format!("span {span:?} names file {} of {files}", span.file.0));
        }
        let text = &parse.sources.get(span.file).text;
        let (start, end) = (span.start as usize, span.end as usize);
        if start > end || end > text.len() {
            return Err(format!("span {span:?} is not within its file ({} bytes)", text.len()));
        }
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            return Err(format!("span {span:?} splits a character"));
        }
        Ok(())
    };
    for d in &parse.diagnostics {
        let what = |e: String| format!("{e}, in diagnostic `{}`", d.message);
        if let Some(span) = d.span {
            span_ok(span).map_err(what)?;
        }
        for label in &d.secondary {
            span_ok(label.span).map_err(what)?;
        }
    }
    for item in &parse.config.items {
        span_ok(item.span).map_err(|e| format!("{e}, in an item"))?;
    }
    let _ = dump(&parse.config, &parse.sources);
    for d in &parse.diagnostics {
        let _ = render::plain(d, &parse.sources);
    }
    Ok(())
}

/// Parses `text` and checks the result; a panic is an error too.
fn parse_and_check(name: &str, text: &str) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| check_parse(&parse_str(name, text, &ParseOptions::default())))) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Err(format!("panicked: {msg}"))
        }
    }
}

// ------------------------------------------------------------------- mutants

const MUTANTS_PER_CONFIG: usize = 200;

/// Text that breaks lexers: openers without closers, string and pseudo-variable
/// starts, comments, preprocessor lines, line continuations.
const SPRINKLES: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "$",
    "$(",
    "$avp(",
    "#!",
    "#!ifdef X\n",
    "#!else\n",
    "#!endif\n",
    "#!define A B\n",
    "!!",
    "/*",
    "*/",
    "#",
    "\\",
    "\\\n",
    "\n",
    ";",
    "=~",
    "&&",
    "||",
    "!",
    ":",
    ",",
    "route[",
    "if (",
    "else",
    "0x",
    "1.2.3.",
    "udp:",
    "[::",
    "{s.len}",
    "\r",
    "\t",
];

/// Byte sequences that are not UTF-8 (lossily converted to U+FFFD).
const INVALID_UTF8: &[&[u8]] =
    &[&[0xff], &[0xc3], &[0xe2, 0x82], &[0xf0, 0x9f, 0x98], &[0xed, 0xa0, 0x80], &[0x80, 0x80]];

/// One mutant of `original`: 1 to 4 random edits, described in `log`.
fn mutate(original: &[u8], rng: &mut Rng, log: &mut String) -> String {
    let mut bytes = original.to_vec();
    for _ in 0..rng.between(1, 4) {
        let len = bytes.len();
        let at = rng.below(len + 1);
        match rng.below(8) {
            0 if len > 0 => {
                let at = at.min(len - 1);
                let n = rng.between(1, 64).min(len - at);
                let _ = write!(log, " delete {at}+{n};");
                bytes.drain(at..at + n);
            }
            1 => {
                let n = rng.between(1, 8);
                let random: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                let _ = write!(log, " insert {random:?} at {at};");
                bytes.splice(at..at, random);
            }
            2 if len > 0 => {
                let from = rng.below(len);
                let n = rng.between(1, 128).min(len - from);
                let copy = bytes[from..from + n].to_vec();
                let _ = write!(log, " duplicate {from}+{n} at {at};");
                bytes.splice(at..at, copy);
            }
            3 if len > 2 => {
                // Swap two ranges a..b and c..d (a < b <= c < d).
                let mut cuts = [rng.below(len), rng.below(len), rng.below(len), rng.below(len + 1)];
                cuts.sort_unstable();
                let [a, b, c, d] = cuts;
                let _ = write!(log, " swap {a}..{b} and {c}..{d};");
                let mut out = bytes[..a].to_vec();
                out.extend_from_slice(&bytes[c..d]);
                out.extend_from_slice(&bytes[b..c]);
                out.extend_from_slice(&bytes[a..b]);
                out.extend_from_slice(&bytes[d..]);
                bytes = out;
            }
            4 | 5 => {
                for _ in 0..rng.between(1, 5) {
                    let at = rng.below(bytes.len() + 1);
                    let s = rng.pick(SPRINKLES);
                    let _ = write!(log, " sprinkle {s:?} at {at};");
                    bytes.splice(at..at, s.bytes());
                }
            }
            6 => {
                let s = rng.pick(INVALID_UTF8);
                let _ = write!(log, " invalid UTF-8 {s:?} at {at};");
                bytes.splice(at..at, s.iter().copied());
            }
            _ => {
                let _ = write!(log, " NUL at {at};");
                bytes.insert(at, 0);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Writes a failing mutant where a developer can find it.
fn save(name: &str, index: usize, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("robustness-{name}-{index}.cfg"));
    let _ = std::fs::write(&path, text);
    path
}

#[test]
fn mutants_of_every_config_parse_without_panicking() {
    let corpus = corpus();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let corpus = &corpus;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (file_index, (name, original)) in corpus.iter().enumerate().skip(t).step_by(threads) {
                        let mut rng = Rng::new(0x5E4C_0000 + file_index as u64);
                        for i in 0..MUTANTS_PER_CONFIG {
                            let mut log = String::new();
                            let text = mutate(original, &mut rng, &mut log);
                            if let Err(e) = parse_and_check(name, &text) {
                                let path = save(name, i, &text);
                                failures.push(format!("{name} mutant {i} ({log} ) → {}: {e}", path.display()));
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a worker thread")).collect()
    });
    assert!(failures.is_empty(), "{} mutants failed:\n{}", failures.len(), failures.join("\n"));
}

/// The generator really produces what the test claims: NULs, replacement
/// characters, unbalanced brackets.
#[test]
fn mutants_are_varied() {
    let original = b"route {\n\tif (is_method(\"INVITE\")) { t_relay(); exit; }\n}\n";
    let mut rng = Rng::new(7);
    let (mut nul, mut replacement, mut unbalanced, mut distinct) = (0, 0, 0, std::collections::HashSet::new());
    for _ in 0..500 {
        let text = mutate(original, &mut rng, &mut String::new());
        nul += usize::from(text.contains('\0'));
        replacement += usize::from(text.contains('\u{fffd}'));
        unbalanced += usize::from(text.matches('{').count() != text.matches('}').count());
        distinct.insert(text);
    }
    assert!(
        nul > 20 && replacement > 20 && unbalanced > 50 && distinct.len() > 450,
        "{nul} {replacement} {unbalanced}"
    );
}

// -------------------------------------------------------- adversarial inputs

/// Texts that are deep, long or repetitive. Each must parse (errors allowed) on a
/// 2 MiB stack.
fn adversarial(case: &str) -> Option<String> {
    const MB: usize = 1 << 20;
    let text = match case {
        "nested-parens" => {
            format!("route {{\n\tif {}$rU{} {{ exit; }}\n}}\n", "(".repeat(100_000), ")".repeat(100_000))
        }
        "open-parens-top-level" => "(".repeat(100_000),
        "open-parens-in-route" => format!("route {{\n\tif {}\n}}\n", "(".repeat(100_000)),
        "nots" => format!("route {{\n\tif ({}is_method(\"INVITE\")) {{ exit; }}\n}}\n", "!".repeat(100_000)),
        "spaced-nots" => format!("route {{\n\tif ({}is_method(\"INVITE\")) {{ exit; }}\n}}\n", "! ".repeat(100_000)),
        "minuses" => format!("route {{\n\t$var(x) = {}1;\n}}\n", "- ".repeat(100_000)),
        "one-mb-string-line" => format!("route {{ xlog(\"L_INFO\", \"{}\\n\"); }}\n", "a".repeat(MB)),
        "one-mb-statement-line" => {
            let stmt = "$var(i) = $var(i) + 1; ";
            format!("route {{ {} exit; }}\n", stmt.repeat(MB / stmt.len()))
        }
        "one-mb-comment-line" => format!("# {}\nroute {{ exit; }}\n", "x".repeat(MB)),
        "one-mb-word" => format!("route {{ {}(); }}\n", "a".repeat(MB)),
        "or-chain" => {
            let terms: Vec<String> = (0..50_000).map(|i| format!("$rU==\"{i}\"")).collect();
            format!("route {{\n\tif ({}) {{ exit; }}\n}}\n", terms.join(" || "))
        }
        "and-or-chain" => {
            let terms: Vec<String> = (0..50_000).map(|i| format!("is_method(\"M{i}\")")).collect();
            format!("route {{\n\tif ({}) {{ exit; }}\n}}\n", terms.join(" && ").replacen(" && ", " || ", 25_000))
        }
        "nested-braced-ifs" => {
            format!("route {{\n{} exit;\n{}\n}}\n", "if ($rU) {\n".repeat(10_000), "}\n".repeat(10_000))
        }
        "nested-bare-ifs" => format!("route {{\n{} exit;\n}}\n", "if ($rU)\n".repeat(10_000)),
        "else-if-chain" => {
            format!(
                "route {{\n\tif ($rU==\"0\") {{ exit; }}\n{}}}\n",
                "\telse if ($rU==\"1\") { exit; }\n".repeat(10_000)
            )
        }
        // A generated dial plan: 300 prefixes, one `else if` each.
        "else-if-chain-300" => {
            let arms: String = (0..300).map(|i| format!("\telse if ($rU=~\"^{i:03}\") {{ route(2); }}\n")).collect();
            format!("route {{\n\tif ($rU==\"0\") {{ exit; }}\n{arms}}}\n")
        }
        "nested-whiles" => format!("route {{\n{} exit;\n}}\n", "while ($var(i))\n".repeat(10_000)),
        "nested-blocks" => format!("route {{ {} exit; {} }}\n", "{".repeat(100_000), "}".repeat(100_000)),
        "open-braces" => format!("route {}", "{".repeat(100_000)),
        "close-braces" => "}".repeat(100_000),
        "open-brackets" => format!("route{}", "[".repeat(100_000)),
        "nested-pvars" => format!("route {{ $var(x) = {}; }}\n", "$(".repeat(100_000)),
        "long-argument-list" => format!("route {{ f({}); }}\n", vec!["\"a\""; 50_000].join(", ")),
        "nested-ifdefs" => format!("{}route {{ exit; }}\n{}", "#!ifdef A\n".repeat(10_000), "#!endif\n".repeat(10_000)),
        "unclosed-ifdefs" => "#!ifndef A\n".repeat(10_000),
        "many-routes" => (0..20_000).map(|i| format!("route[{i}] {{ exit; }}\n")).collect(),
        "unterminated-string" => format!("route {{ xlog(\"{}", "\\\"".repeat(100_000)),
        "unterminated-comment" => format!("route {{ /*{}", "/*".repeat(100_000)),
        _ => return None,
    };
    Some(text)
}

const ADVERSARIAL: &[&str] = &[
    "nested-parens",
    "open-parens-top-level",
    "open-parens-in-route",
    "nots",
    "spaced-nots",
    "minuses",
    "one-mb-string-line",
    "one-mb-statement-line",
    "one-mb-comment-line",
    "one-mb-word",
    "or-chain",
    "and-or-chain",
    "nested-braced-ifs",
    "nested-bare-ifs",
    "else-if-chain",
    "else-if-chain-300",
    "nested-whiles",
    "nested-blocks",
    "open-braces",
    "close-braces",
    "open-brackets",
    "nested-pvars",
    "long-argument-list",
    "nested-ifdefs",
    "unclosed-ifdefs",
    "many-routes",
    "unterminated-string",
    "unterminated-comment",
];

/// The stack of a test thread when `RUST_MIN_STACK` is not set.
const TEST_THREAD_STACK: usize = 2 << 20;

/// The environment variable that makes [`adversarial_case`] run one case.
const CASE_VAR: &str = "SERC_ROBUSTNESS_CASE";

/// Parses one adversarial text in a child process (this test binary, running
/// [`adversarial_case`]): a stack overflow aborts the child, not this test.
#[test]
fn adversarial_inputs_return_without_overflowing_the_stack() {
    let exe = std::env::current_exe().expect("the test binary");
    let mut failures = Vec::new();
    for case in ADVERSARIAL {
        let start = Instant::now();
        let out = Command::new(&exe)
            .args(["adversarial_case", "--exact", "--nocapture", "--test-threads=1"])
            .env(CASE_VAR, case)
            .env_remove("RUST_MIN_STACK")
            .output()
            .expect("run the test binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let why = if stderr.contains("overflowed its stack") {
                "stack overflow".to_owned()
            } else {
                let tail: Vec<&str> = stdout.lines().chain(stderr.lines()).filter(|l| !l.trim().is_empty()).collect();
                format!("{}: {}", out.status, tail[tail.len().saturating_sub(8)..].join("\n    "))
            };
            failures.push(format!("{case}: {why}"));
        } else if !stdout.contains(&format!("case {case} ok:")) {
            failures.push(format!("{case}: the child did not run the case:\n{stdout}"));
        }
        // Generous: a debug build on a slow CI machine. A case near this is a
        // quadratic somewhere.
        let took = start.elapsed();
        let ok = format!("case {case} ok");
        let report = stdout.lines().find_map(|l| l.find(&ok).map(|at| &l[at..]));
        println!("{case}: {took:?} ({})", report.unwrap_or("failed"));
        if took > Duration::from_secs(20) {
            failures.push(format!("{case}: took {took:?}"));
        }
    }
    assert!(failures.is_empty(), "{} adversarial inputs failed:\n  {}", failures.len(), failures.join("\n  "));
}

/// Runs the adversarial case named by `SERC_ROBUSTNESS_CASE` on a thread with
/// the default test stack; does nothing without it (it is the child side of
/// [`adversarial_inputs_return_without_overflowing_the_stack`]).
#[test]
fn adversarial_case() {
    let Ok(case) = std::env::var(CASE_VAR) else { return };
    let text = adversarial(&case).unwrap_or_else(|| panic!("no adversarial case `{case}`"));
    let result = std::thread::Builder::new()
        .name(format!("adversarial {case}"))
        .stack_size(TEST_THREAD_STACK)
        .spawn(move || {
            let start = Instant::now();
            let parse = parse_str("adversarial.cfg", &text, &ParseOptions::default());
            let parsed = start.elapsed();
            check_parse(&parse).map(|()| (parsed, parse.diagnostics.len()))
        })
        .expect("spawn a thread")
        .join()
        .expect("the parse thread");
    match result {
        Ok((took, diags)) => println!("case {case} ok: parsed in {took:?}, {diags} diagnostics"),
        Err(e) => panic!("case {case}: {e}"),
    }
}

/// Every adversarial case exists and is as big as it claims.
#[test]
fn adversarial_cases_are_what_they_say() {
    for case in ADVERSARIAL {
        let text = adversarial(case).unwrap_or_else(|| panic!("no adversarial case `{case}`"));
        assert!(text.len() > 10_000, "{case} is only {} bytes", text.len());
    }
    let line = adversarial("one-mb-statement-line").expect("a case");
    assert!(line.len() >= 1_000_000 && line.trim_end().lines().count() == 1);
    assert_eq!(adversarial("nested-bare-ifs").expect("a case").matches("if (").count(), 10_000);
    assert_eq!(adversarial("or-chain").expect("a case").matches("||").count(), 49_999);
}

// ------------------------------------------------------ found along the way

/// `!!` followed by a word is a double negation, not a preprocessor line: Kamailio
/// reads `!!` as a directive only before a directive name (`!!define`, `!!ifdef`
/// …; its cfg.lex: `PREP_START "#!"|"!!"` then `DEFINE`, `IFDEF` …), and OpenSER
/// 1.3 has no `!!` directives at all.
#[test]
fn double_negation_is_not_a_directive() {
    let text = "route {\n\tif (!!is_method(\"INVITE\")) { exit; }\n\tif (!!has_totag()) { t_relay(); }\n}\n";
    for dialect in [None, Some(serc::syntax::Dialect::Kamailio)] {
        let parse = parse_str("t.cfg", text, &ParseOptions { dialect, ..ParseOptions::default() });
        let dumped = dump(&parse.config, &parse.sources);
        let diags: Vec<String> = parse.diagnostics.iter().map(|d| render::plain(d, &parse.sources)).collect();
        assert!(
            parse.diagnostics.is_empty() && dumped.matches("(not (not (call").count() == 2,
            "read as {dialect:?}:\n{dumped}\n{}",
            diags.join("\n")
        );
    }
}
