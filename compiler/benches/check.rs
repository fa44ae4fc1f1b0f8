//! How fast the front end reads configs: `cargo bench -p serc --bench check`.
//!
//! - `parse/test7`: parse and lower OpenSER 1.3's largest test config
//!   (`opensips__openser1.3__test7.cfg`, 34 KB, 68 route blocks), from memory;
//! - `parse/generated-5000`: the same for a generated 5,000-line config
//!   (globals, modules, modparams, 156 route blocks with `if`/`else`, `switch`,
//!   `while`, `xlog` with pseudo-variables, regex matches, assignments);
//! - `check/*`: what `serc check --color never` does for one file
//!   (`serc::check_file`): read it from disk, parse, lower, check it against the
//!   module manifests, render every diagnostic as rustc does and the summary line; on test7 (one warning) and on the generated config with one damage
//!   every 50 lines (about 100 errors to render).
//!
//! The corpus is read from `../shared/corpus/cfg` relative to the workspace root
//! (or `SERC_CORPUS_DIR`).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serc::diag::{render, Severity};
use serc::syntax::{parse_str, ParseOptions};

const TEST7: &str = "opensips__openser1.3__test7.cfg";

fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("SERC_CORPUS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cfg"),
    };
    assert!(
        dir.join(TEST7).is_file(),
        "the config corpus is missing: expected {} in {} (the workspace's ../shared/corpus/cfg; \
         set SERC_CORPUS_DIR to read it from elsewhere)",
        TEST7,
        dir.display()
    );
    dir
}

// ------------------------------------------------------ the generated config

const MODULES: &[&str] = &[
    "sl",
    "tm",
    "rr",
    "maxfwd",
    "usrloc",
    "registrar",
    "textops",
    "mi_fifo",
    "uri",
    "uri_db",
    "xlog",
    "acc",
    "auth",
    "auth_db",
    "avpops",
    "nathelper",
    "mysql",
    "domain",
    "permissions",
    "dialog",
    "uac",
    "options",
];

/// Real OpenSER 1.3 module parameters (reference/openser-1.3/params.tsv) and
/// values of their types.
const MODPARAMS: &[(&str, &str, &str)] = &[
    ("sl", "enable_stats", "1"),
    ("tm", "fr_timer", "30"),
    ("tm", "fr_inv_timer", "120"),
    ("tm", "wt_timer", "5"),
    ("tm", "T1_timer", "500"),
    ("rr", "enable_full_lr", "1"),
    ("rr", "append_fromtag", "1"),
    ("maxfwd", "max_limit", "70"),
    ("usrloc", "db_mode", "2"),
    ("usrloc", "db_url", "\"mysql://openser:openserrw@localhost/openser\""),
    ("usrloc", "timer_interval", "60"),
    ("registrar", "default_expires", "3600"),
    ("registrar", "max_contacts", "10"),
    ("registrar", "append_branches", "1"),
    ("mi_fifo", "fifo_name", "\"/tmp/openser_fifo\""),
    ("mi_fifo", "fifo_mode", "0666"),
    ("uri_db", "db_url", "\"mysql://openser:openserrw@localhost/openser\""),
    ("uri_db", "use_uri_table", "0"),
    ("xlog", "buf_size", "8192"),
    ("acc", "log_flag", "1"),
    ("acc", "failed_transaction_flag", "3"),
    ("acc", "log_extra", "\"src_user=$fU;src_domain=$fd;dst_ouser=$tU\""),
    ("acc", "db_url", "\"mysql://openser:openserrw@localhost/openser\""),
    ("auth", "nonce_expire", "300"),
    ("auth", "secret", "\"0123456789abcdef\""),
    ("auth_db", "calculate_ha1", "1"),
    ("auth_db", "password_column", "\"password\""),
    ("auth_db", "db_url", "\"mysql://openser:openserrw@localhost/openser\""),
    ("avpops", "avp_table", "\"usr_preferences\""),
    ("avpops", "db_url", "\"mysql://openser:openserrw@localhost/openser\""),
    ("nathelper", "natping_interval", "30"),
    ("nathelper", "rtpproxy_sock", "\"udp:127.0.0.1:7890\""),
    ("mysql", "ping_interval", "300"),
    ("domain", "db_mode", "1"),
    ("domain", "db_url", "\"mysql://openser:openserrw@localhost/openser\""),
    ("permissions", "check_all_branches", "1"),
    ("dialog", "db_mode", "0"),
    ("dialog", "dlg_flag", "4"),
    ("uac", "from_restore_mode", "\"auto\""),
    ("uac", "rr_store_param", "\"vsf\""),
    ("options", "accept", "\"application/sdp\""),
];

const METHODS: &[&str] = &["INVITE", "REGISTER", "BYE", "CANCEL", "ACK", "OPTIONS", "SUBSCRIBE", "NOTIFY", "MESSAGE"];

/// A realistic OpenSER 1.3 config of about `lines` lines: every block differs (its
/// numbers, methods, patterns and the order of its parts).
fn generated_config(lines: usize) -> String {
    let mut s = String::with_capacity(lines * 40);
    s.push_str("#\n# generated for the serc benchmarks: OpenSER 1.3 syntax\n#\n\n");
    s.push_str("####### Global Parameters #########\n\n");
    for g in [
        "debug=3",
        "log_stderror=no",
        "log_facility=LOG_LOCAL0",
        "fork=yes",
        "children=8",
        "check_via=no",
        "dns=no",
        "rev_dns=no",
        "port=5060",
        "listen=udp:10.0.0.10:5060",
        "listen=tcp:10.0.0.10:5060",
        "alias=sip.example.com",
        "disable_tcp=no",
        "tcp_children=4",
        "mpath=\"/usr/local/lib/openser/modules/\"",
    ] {
        s.push_str(g);
        s.push('\n');
    }
    s.push_str("\n####### Modules Section ########\n\n");
    for m in MODULES {
        let _ = writeln!(s, "loadmodule \"{m}.so\"");
    }
    s.push_str("\n# ----------------- setting module-specific parameters ---------------\n\n");
    for (module, param, value) in MODPARAMS {
        let _ = writeln!(s, "modparam(\"{module}\", \"{param}\", {value})");
    }
    s.push('\n');
    let blocks: Vec<(Block, usize)> = (0..40)
        .map(|n| (Block::Request, n))
        .chain((1..40).map(|n| (Block::Failure, n)))
        .chain((1..40).map(|n| (Block::OnReply, n)))
        .chain((1..40).map(|n| (Block::Branch, n)))
        .collect();
    // Each block ends where its share of the remaining lines ends.
    let first = s.matches('\n').count();
    let mut count = first;
    let push = |s: &mut String, count: &mut usize, text: &str| {
        s.push_str(text);
        *count += text.matches('\n').count();
    };
    for (b, &(block, n)) in blocks.iter().enumerate() {
        let end = first + (b + 1) * lines.saturating_sub(first) / blocks.len();
        let keyword = block.keyword();
        push(&mut s, &mut count, &format!("\n# {keyword} {n}: generated\n{keyword}[{n}] {{\n"));
        if block == Block::Request && n < 39 {
            // Every block is used: route[n] calls route[n+1] and arms the
            // failure, reply and branch routes n+1.
            let next = n + 1;
            let arm = format!(
                "\tt_on_failure(\"{next}\");\n\tt_on_reply(\"{next}\");\n\tt_on_branch(\"{next}\");\n\troute({next});\n"
            );
            push(&mut s, &mut count, &arm);
        }
        let mut part = b;
        // A part is at most 14 lines, the block's end 2.
        while count + 2 + 7 < end {
            let mut text = String::new();
            block_part(&mut text, part, b, block);
            push(&mut s, &mut count, &text);
            part += 7;
        }
        push(&mut s, &mut count, if block == Block::Request { "\treturn;\n}\n" } else { "\texit;\n}\n" });
    }
    s
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Request,
    Failure,
    OnReply,
    Branch,
}

impl Block {
    fn keyword(self) -> &'static str {
        match self {
            Block::Request => "route",
            Block::Failure => "failure_route",
            Block::OnReply => "onreply_route",
            Block::Branch => "branch_route",
        }
    }
}

/// One statement group of a block; `part` picks which, `b` varies its data. Only
/// what OpenSER 1.3 allows in the block's type (`sl_send_reply` and
/// `mf_process_maxfwd_header` in request routes, `t_relay` in request and
/// failure routes …).
fn block_part(s: &mut String, part: usize, b: usize, block: Block) {
    let method = METHODS[(part + b) % METHODS.len()];
    let other = METHODS[(part + b + 3) % METHODS.len()];
    let request = block == Block::Request;
    match part % 8 {
        1 if request => {
            let _ = writeln!(s, "\tif (is_method(\"{method}\") && !has_totag()) {{");
            let _ = writeln!(s, "\t\tsetflag({});", part % 31);
            let _ = writeln!(s, "\t\t$avp(s:count{b}) = {part};");
            let _ = writeln!(s, "\t}} else if (is_method(\"{other}\") || $rU=~\"^\\+?1[0-9]{{10}}$\") {{");
            let _ = writeln!(s, "\t\tsl_send_reply(\"404\", \"Not Here {part}\");");
            s.push_str("\t\texit;\n\t} else {\n");
            let _ = writeln!(s, "\t\tappend_hf(\"X-Part: {b}-{part}\\r\\n\");");
            s.push_str("\t};\n");
        }
        1 => {
            let _ = writeln!(s, "\tif (is_method(\"{method}\") && t_check_status(\"{}[0-9][0-9]\")) {{", 3 + part % 4);
            let _ = writeln!(s, "\t\tsetflag({});", part % 31);
            let _ = writeln!(s, "\t\t$avp(s:count{b}) = {part};");
            let _ = writeln!(s, "\t}} else if (is_present_hf(\"X-{other}\")) {{");
            let _ = writeln!(s, "\t\tappend_hf(\"X-Part: {b}-{part}\\r\\n\");");
            s.push_str("\t};\n");
        }
        2 => {
            s.push_str("\tswitch($rU) {\n");
            for k in 0..3 {
                let _ = writeln!(s, "\t\tcase \"{}\":", 100 * k + part);
                let _ = writeln!(s, "\t\t\t$var(route{k}) = \"{method}-{k}\";");
                let _ = writeln!(s, "\t\t\txlog(\"L_DBG\", \"case {k} for $rU at $Ts\\n\");");
                s.push_str("\t\tbreak;\n");
            }
            s.push_str("\t\tdefault:\n\t\t\t$var(route0) = \"none\";\n\t}\n");
        }
        3 if request || block == Block::Failure => {
            let _ = writeln!(
                s,
                "\tif (uri=~\"^sip:[0-9]{{3,{}}}@sip\\.example\\.com\" && src_ip!=10.{b}.0.0/16) {{",
                4 + part % 8
            );
            let _ = writeln!(s, "\t\trewritehostport(\"10.0.{}.{}:5060\");", b % 250, part % 250);
            let reply = if request { "sl_reply_error()" } else { "t_reply(\"500\", \"Relay Failed\")" };
            let _ = writeln!(s, "\t\tif (!t_relay()) {{\n\t\t\t{reply};\n\t\t}};\n\t\texit;\n\t}};");
        }
        4 => {
            let _ = writeln!(s, "\t$var(i) = {};", part % 5);
            s.push_str("\twhile ($var(i) < 10) {\n");
            let _ = writeln!(s, "\t\t$var(sum) = $var(sum) + ($var(i) * {});", part % 7 + 1);
            s.push_str("\t\t$var(i) = $var(i) + 1;\n\t}\n");
        }
        5 => {
            let _ = writeln!(
                s,
                "\tif ($hdr(User-Agent)=~\"^(Asterisk|FreeSWITCH)/{}\" || $(hdr(Via)[1])!=null) {{",
                part % 10
            );
            let _ = writeln!(s, "\t\tremove_hf(\"P-Asserted-Identity\");\n\t\t$avp(s:ua{b}) = $ua;");
            s.push_str("\t};\n");
        }
        6 if request => {
            let _ = writeln!(s, "\tif (!mf_process_maxfwd_header(\"{}\")) {{", 10 + part % 60);
            s.push_str("\t\tsl_send_reply(\"483\", \"Too Many Hops\");\n\t\texit;\n\t};\n");
            let _ = writeln!(s, "\tif (method==\"{method}\" && $(fu{{uri.user}})==\"user{part}\") {{");
            s.push_str("\t\trecord_route();\n\t};\n");
        }
        7 => {
            let _ = writeln!(s, "\tif (avp_check(\"$avp(s:flag{b})\", \"eq/i:{part}\")) {{");
            let _ = writeln!(s, "\t\tavp_delete(\"$avp(s:flag{b})\");");
            let _ = writeln!(s, "\t\tsearch(\"^Contact: .*;expires={}\");", part % 3600);
            s.push_str("\t};\n");
        }
        _ => {
            let _ = writeln!(
                s,
                "\txlog(\"L_INFO\", \"[{b}.{part}] $rm from $fu (ip $si:$sp) to $ru, call $ci, avp $avp(s:caller{b})\\n\");"
            );
        }
    }
}

/// The generated config with one damage every `every` lines (on the first
/// statement line ending in `);` from there): a missing `;`, an extra `(`, a
/// stray line, by turns.
fn damaged(text: &str, every: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut n, mut pending) = (0, false);
    for (i, line) in text.lines().enumerate() {
        pending |= i % every == every - 1;
        if pending && line.starts_with('\t') && line.ends_with(");") {
            pending = false;
            n += 1;
            match n % 3 {
                0 => out.push_str(&line[..line.len() - 1]),
                1 => {
                    out.push_str(line);
                    out.push_str("\n\tbogus word");
                }
                _ => out.push_str(&line.replacen('(', "((", 1)),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------- benchmarks

/// `serc check FILE --color never`, minus the process: everything it prints.
fn check(path: &Path) -> String {
    let parse = serc::check_file(path, &ParseOptions::default()).expect("read the config");
    let mut out = render::human(&parse.diagnostics, &parse.sources, false);
    if let Some(line) = render::summary(&parse.diagnostics) {
        out.push_str(&line);
    }
    out
}

fn benches(c: &mut Criterion) {
    let opts = ParseOptions::default();
    let test7_path = corpus_dir().join(TEST7);
    let test7 = std::fs::read_to_string(&test7_path).expect("read test7.cfg");
    let generated = generated_config(5_000);
    let lines = generated.lines().count();
    assert!((4_900..=5_100).contains(&lines), "the generated config has {lines} lines");
    let parse = parse_str("generated.cfg", &generated, &opts);
    assert!(
        parse.diagnostics.iter().all(|d| d.severity == Severity::Note),
        "the generated config must be clean:\n{}",
        render::human(&parse.diagnostics, &parse.sources, false)
    );
    let broken = damaged(&generated, 50);
    let errors = parse_str("broken.cfg", &broken, &opts).diagnostics.iter().filter(|d| d.is_error()).count();
    assert!(errors >= 80, "the damaged config has only {errors} errors");

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let generated_path = dir.join("bench-generated-5000.cfg");
    let broken_path = dir.join("bench-generated-5000-broken.cfg");
    std::fs::write(&generated_path, &generated).expect("write the generated config");
    std::fs::write(&broken_path, &broken).expect("write the damaged config");
    let report = check(&generated_path);
    assert!(report.is_empty(), "`serc check` must pass the generated config:\n{report}");

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(test7.len() as u64));
    group.bench_function("test7", |b| b.iter(|| parse_str(TEST7, black_box(&test7), &opts)));
    group.throughput(Throughput::Bytes(generated.len() as u64));
    group.bench_function("generated-5000", |b| b.iter(|| parse_str("generated.cfg", black_box(&generated), &opts)));
    group.finish();

    let mut group = c.benchmark_group("check");
    group.bench_function("test7", |b| b.iter(|| check(black_box(&test7_path))));
    group.bench_function("generated-5000", |b| b.iter(|| check(black_box(&generated_path))));
    group.bench_function("generated-5000-100-errors", |b| b.iter(|| check(black_box(&broken_path))));
    group.finish();
}

criterion_group!(check_benches, benches);
criterion_main!(check_benches);
