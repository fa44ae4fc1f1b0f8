//! `cargo xtask bench`: criterion micro-benchmarks, then serc's proxies and
//! Kamailio under the same SIPp load, in turn, in one run; the figures go to
//! BENCHMARKS.md and bench/results.svg.
//!
//! The SIPp steps run bench/harness/run.sh, serc's copy of the shared harness
//! (`../shared/bench`, beside the workspace) with one scenario added
//! (register-auth): it is the harness the Kamailio reference figures of
//! `../shared/bench/README.md` were measured with, so the same code measures
//! CPU (/proc utime+stime of the process tree), peak PSS, SIPp's
//! response-time percentiles and the PASS/FAIL verdict for both proxies and
//! for the reference. This module adds what the harness does not do: building
//! serc's proxies (and the floor, src/bin/udp-floor.rs), a private
//! network namespace per step (the harness uses fixed ports), interleaving the
//! proxies at each rate and repetition (`--repeat`: medians over the
//! repetitions), a time bound per step, idle PSS, the ratios, the report and
//! the chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use crate::{cargo, find_binary, project_root, run, show, Progress, Result};

pub const HELP: &str = "\
cargo xtask bench: serc against Kamailio, and micro-benchmarks

USAGE:
    cargo xtask bench [OPTIONS] [-- CARGO_BENCH_ARGS]

Stages:
  1. Criterion micro-benchmarks: `cargo bench -p serc -p serc-runtime
     --bench NAME` for each file of compiler/benches and runtime/benches:
     check.rs (parse and check configs), parse.rs (SIP parsing, serc and rsip
     in the same run), tm.rs (transaction lookup in tm's table), usrloc.rs
     (location lookup, registrar's lookup); then route.rs, the compiled main
     route of bench/configs/openser-relay-stateless.cfg and examples/
     openser.cfg on a prepared INVITE, and OpenSER 1.3's default config
     (bench/configs/openser-openser-default.cfg) through a whole call (INVITE,
     200, ACK, BYE, 200, without sockets): their code is emitted by `serc emit`
     into target/serc-bench/route/ and the bench is built with `cargo rustc
     ... -- --cfg serc_route_bench` (plain `cargo bench` skips it).
     Arguments after `--` go to cargo bench (`-- tm/` runs the benches whose
     name has `tm/`). Reports land in target/criterion/.
  2. SIPp scenarios: serc's proxies, built by `serc build` from
     bench/configs/openser-SCENARIO.cfg, and Kamailio 5.6 with the harness's
     configs (bench/harness/configs/kamailio-SCENARIO.cfg), in turn at each
     offered rate (serc, then Kamailio, at one rate before the next rate;
     with --repeat N, N rounds of serc, then Kamailio, at each rate).
     Each step is one call of the harness bench/harness/run.sh (serc's copy of
     the shared ../shared/bench, with register-auth added)
     (a fresh proxy, SIPp UAC 127.0.0.1:5061 -> proxy 127.0.0.1:5060 -> SIPp
     UAS 127.0.0.1:5070, RATE*SECONDS calls), inside a private network
     namespace (`unshare -n`, loopback up) so the fixed ports cannot collide
     with other tests on the machine. Per proxy: proxy CPU ms per 1,000 calls
     (utime+stime of the proxy's processes from /proc), SIPp's setup-time
     p50/p99, peak and idle PSS (/proc/PID/smaps_rollup over the proxy's
     processes), the highest rate passed (< 0.1 % failed calls and < 0.1 %
     retransmissions), and the ratio serc/Kamailio of each. A proxy's higher
     rates are skipped after its first failed rate (--keep-going runs them).
     With --repeat N, the summary and the chart show each figure's median
     over the N repetitions (CPU as median (min–max)), and a rate counts as
     passed only if every repetition passed it.
  3. Report: BENCHMARKS.md (between its `bench:begin`/`bench:end` markers; the
     rest of the file is kept) and bench/results.svg (CPU per call and p99
     against the offered rate). Raw data: target/serc-bench/runs/UTC-TIME/
     (SCENARIO/PROXY/rRATE/, with --repeat N SCENARIO/PROXY/repK/rRATE/).

OPTIONS:
    --quick                 2 rates per scenario, 5 s steps, short criterion
                            runs: about 5 minutes in all
    --no-criterion          skip stage 1
    --no-sipp               skip stage 2 (and the report)
    --scenarios A,B         among: relay-stateless, relay-stateful, register,
                            register-auth, register-auth-sqlite,
                            openser-default [default: all six]
    --rates R1,R2           offered rates (calls or registrations per second)
                            for every chosen scenario [default: per scenario,
                            listed below]
    --duration SECONDS      length of each step [default: 10; --quick: 5]
    --drain SECONDS         how long after the load the proxy's CPU is still
                            counted [default: 3]. serc ends an answered
                            INVITE's transactions 32 s after the 2xx (RFC
                            6026), Kamailio after wt_timer (5 s): with the
                            default, Kamailio's ending of most of a step's
                            transactions is counted and serc's is not;
                            --drain 40 counts both
    --proxies serc,kamailio which proxies to run [default: both]; add
                            serc-metrics (serc with --http: the MI's HTTP door
                            and its processing-time histogram on) to measure
                            what /metrics costs, e.g. --proxies
                            serc,serc-metrics,kamailio; add floor for what
                            the kernel alone costs (below), e.g. --proxies
                            serc,kamailio,floor
    --repeat N              run each (scenario, rate) step N times per proxy
                            (the proxies interleaved, a fresh proxy each
                            time); the summary and the chart give medians, a
                            rate passes only if all N passed [default: 1]
    --keep-going            run every rate even after a proxy failed one
    --pgo                   serc's proxies profile-guided: each built with
                            `serc build --pgo-generate`, run through its
                            scenario at 1,000 and 3,000/s for 10 s each (the
                            training, in the run's pgo-training/), then built
                            with `serc build --pgo-use` (needs rustup's
                            llvm-tools); the report says so
    --no-netns              run in the host's network namespace (ports 5060,
                            5061, 5070 must be free)

Default rates (full / --quick):
    relay-stateless   1000,2000,4000,6000,8000 / 1000,3000   calls/s
    relay-stateful    1000,2000,3000,4000,6000 / 1000,2000   calls/s
    register          2000,4000,8000,12000,16000 / 2000,8000 registrations/s
    register-auth     1000,2000,4000,8000,12000,16000 / 1000,4000 registrations/s
    register-auth-sqlite  2000,8000 / 1000,4000              registrations/s
    openser-default   1000,2000,3000,4000,6000,8000 / 1000,2000 calls/s

The floor (--proxies ...,floor): xtask/src/bin/udp-floor.rs, built with
`cargo build --release -p xtask --bin udp-floor`: no SIP processing, two
threads each looping one recv_from and one send_to on one UDP socket bound
to 127.0.0.1:5060. A REGISTER is answered to its sender with its Via, From,
To, Call-ID and CSeq lines copied: 200 OK (register-auth: `--challenge`, a
fixed 401 digest challenge when it has no Authorization line); anything else
is relayed (from the UAS's port 5070 to the UAC's 127.0.0.1:5061, anything
else to the UAS's 127.0.0.1:5070). That is what the kernel alone costs per
call or registration on loopback, in every scenario; the summary shows its
CPU per 1,000 calls and serc/floor, Kamailio/floor.

Bounds: every step sends exactly RATE*SECONDS calls, the harness stops SIPp
after SECONDS+100 s, and this task stops a step after SECONDS+240 s. A full run
takes 10 to 15 minutes, --quick about 5, both N times as long with --repeat N
(plus the first `serc build`, which compiles the runtime: 1 to 2 minutes;
with --pgo, per config an instrumented build, 20 s of training and an
optimized build, each build up to 3 minutes).

Needs: sipp and kamailio (apt-get install -y sip-tester kamailio), python3,
bc, /usr/bin/time, ss, pgrep, unshare and ip (util-linux, iproute2);
Kamailio in register-auth-sqlite: sqlite3 and its db_sqlite module and schema
(apt-get install -y sqlite3 kamailio-sqlite-modules).
SERC_BENCH_HARNESS names another harness than bench/harness (e.g. the shared
../shared/bench). SERC_RUNTIME_DIR and SERC_CACHE_DIR are passed to serc build.
register-auth writes its subscriber tables (serc: dbtext files through `serc
db`; Kamailio: db_text files; in register-auth-sqlite SQLite files, serc's
through `serc db`, Kamailio's from its schema) and its configs naming them to
target/serc-bench/.

Adding a scenario: a config bench/configs/openser-NAME.cfg, Kamailio's
bench/harness/configs/kamailio-NAME.cfg, and a line in SCENARIOS in
xtask/src/bench.rs (the harness's SIPp scenario it runs, its rates).

Examples:
    cargo xtask bench --quick
    cargo xtask bench --no-criterion --scenarios relay-stateless --rates 2000 --duration 20
    cargo xtask bench --no-criterion --scenarios relay-stateless,relay-stateful --repeat 3 \
        --proxies serc,kamailio,floor
    cargo xtask bench --no-sipp -- tm/
";

/// A SIPp scenario of the benchmark.
struct Scenario {
    /// Our name; the configs are bench/configs/openser-NAME.cfg and the
    /// harness's configs/kamailio-NAME.cfg.
    name: &'static str,
    /// What the harness's `run.sh -s` runs (its SIPp UAC/UAS pair).
    harness: &'static str,
    /// serc's proxy: bench/configs/openser-CONFIG.cfg (Kamailio's is
    /// configs/kamailio-NAME.cfg in the harness).
    config: &'static str,
    /// What one SIPp "call" is.
    unit: &'static str,
    rates: &'static [u32],
    quick_rates: &'static [u32],
    /// Why it cannot run yet.
    skip: Option<&'static str>,
    /// The floor's arguments (see `FLOOR`): `--challenge` where the SIPp
    /// client expects a 401 before its 200.
    floor_args: &'static [&'static str],
    what: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "relay-stateless",
        harness: "relay-stateless",
        config: "relay-stateless",
        unit: "calls",
        rates: &[1000, 2000, 4000, 6000, 8000],
        quick_rates: &[1000, 3000],
        skip: None,
        floor_args: &[],
        what: "maxfwd check, stateless `forward` to the UAS; replies by Via",
    },
    Scenario {
        name: "relay-stateful",
        harness: "relay-stateful",
        config: "relay-stateful",
        unit: "calls",
        rates: &[1000, 2000, 3000, 4000, 6000],
        quick_rates: &[1000, 2000],
        skip: None,
        floor_args: &[],
        what: "maxfwd, `record_route`, `loose_route` for ACK/BYE, `t_relay` to the UAS",
    },
    Scenario {
        name: "register",
        harness: "register",
        config: "register",
        unit: "registrations",
        rates: &[2000, 4000, 8000, 12000, 16000],
        quick_rates: &[2000, 8000],
        skip: None,
        floor_args: &[],
        what: "`save(\"location\")` in memory (usrloc db_mode 0), a new AOR per REGISTER",
    },
    Scenario {
        name: "register-auth",
        harness: "register-auth",
        config: "register-auth",
        unit: "registrations",
        rates: &[1000, 2000, 4000, 8000, 12000, 16000],
        quick_rates: &[1000, 4000],
        skip: None,
        floor_args: &["--challenge"],
        what: "REGISTER challenged (401, no qop), then `www_authorize` against the subscriber table \
               (dbtext files, kept in memory by both proxies; 1,000 users in turn) and `save` in memory",
    },
    Scenario {
        name: "register-auth-sqlite",
        harness: "register-auth",
        config: "register-auth-sqlite",
        unit: "registrations",
        rates: &[2000, 8000],
        quick_rates: &[1000, 4000],
        skip: None,
        floor_args: &["--challenge"],
        what: "register-auth with the subscriber table in an SQLite file (WAL) for both proxies \
               (Kamailio: db_sqlite) instead of dbtext",
    },
    Scenario {
        name: "openser-default",
        harness: "openser-default",
        config: "openser-default",
        unit: "calls",
        rates: &[1000, 2000, 3000, 4000, 6000, 8000],
        quick_rates: &[1000, 2000],
        skip: None,
        floor_args: &[],
        what: "OpenSER 1.3's default openser.cfg: calls to AOR `service` (the UAS, registered before \
               each step) through lookup, record_route and t_relay with branch, reply and failure \
               routes, acc to the log",
    },
];

const SERC: &str = "serc";
/// serc's proxy with the MI's HTTP door on (`--http`): the processing-time
/// histogram timing every message. Not run by default (`--proxies`).
const SERC_METRICS: &str = "serc-metrics";
const KAMAILIO: &str = "kamailio";
/// The floor: xtask/src/bin/udp-floor.rs, one `recv_from` and one `send_to`
/// per datagram (REGISTERs answered with their own headers copied, the rest
/// relayed), no SIP processing. Not run by default.
const FLOOR: &str = "floor";
/// Seconds after the load a step still counts the proxy's CPU, as
/// bench/harness/run.sh's `DRAIN` defaults (`--drain` changes it).
const DEFAULT_DRAIN: u32 = 3;

/// Every proxy `--proxies` takes, in the order they run at each rate.
const PROXIES: [&str; 4] = [SERC, SERC_METRICS, KAMAILIO, FLOOR];

pub struct BenchArgs {
    quick: bool,
    criterion: bool,
    sipp: bool,
    scenarios: Option<Vec<String>>,
    rates: Option<Vec<u32>>,
    duration: Option<u32>,
    /// Seconds after the load still counted (the harness's `-D`).
    drain: Option<u32>,
    proxies: Vec<String>,
    keep_going: bool,
    netns: bool,
    /// serc's proxies built with profile-guided optimization (see `train`).
    pgo: bool,
    /// How many times each (scenario, rate) step runs per proxy.
    repeat: u32,
    /// The command line, for the report.
    command: String,
}

impl BenchArgs {
    pub fn parse(flags: &[String], passthrough: &[String]) -> Result<BenchArgs> {
        let mut args = BenchArgs {
            quick: false,
            criterion: true,
            sipp: true,
            scenarios: None,
            rates: None,
            duration: None,
            drain: None,
            proxies: vec![SERC.to_owned(), KAMAILIO.to_owned()],
            keep_going: false,
            netns: true,
            pgo: false,
            repeat: 1,
            command: String::new(),
        };
        let mut flags = flags.iter();
        while let Some(flag) = flags.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (flag.as_str(), None),
            };
            let mut value = || -> Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => {
                        flags.next().cloned().ok_or(format!("{name} needs a value (see `cargo xtask bench --help`)"))
                    }
                }
            };
            match name {
                "--quick" => args.quick = true,
                "--no-criterion" => args.criterion = false,
                "--no-sipp" => args.sipp = false,
                "--keep-going" => args.keep_going = true,
                "--no-netns" => args.netns = false,
                "--pgo" => args.pgo = true,
                "--scenarios" => {
                    let list = split_list(&value()?);
                    for name in &list {
                        if !SCENARIOS.iter().any(|s| s.name == name) {
                            let all: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                            return Err(format!("no scenario `{name}` (there are: {})", all.join(", ")));
                        }
                    }
                    args.scenarios = Some(list);
                }
                "--rates" => {
                    let rates = split_list(&value()?)
                        .iter()
                        .map(|r| {
                            r.parse::<u32>().ok().filter(|&r| r > 0).ok_or(format!("--rates: `{r}` is not a rate"))
                        })
                        .collect::<Result<Vec<u32>>>()?;
                    args.rates = Some(rates);
                }
                "--duration" => {
                    let v = value()?;
                    let secs = v.parse::<u32>().ok().filter(|&s| (1..=600).contains(&s));
                    args.duration = Some(secs.ok_or(format!("--duration wants 1 to 600 seconds, not `{v}`"))?);
                }
                "--drain" => {
                    let v = value()?;
                    let secs = v.parse::<u32>().ok().filter(|&s| s <= 120);
                    args.drain = Some(secs.ok_or(format!("--drain wants 0 to 120 seconds, not `{v}`"))?);
                }
                "--proxies" => {
                    let list = split_list(&value()?);
                    if list.is_empty() || list.iter().any(|p| !PROXIES.contains(&p.as_str())) {
                        return Err("--proxies takes serc, serc-metrics (serc with --http), kamailio, floor".to_owned());
                    }
                    args.proxies =
                        PROXIES.into_iter().filter(|p| list.iter().any(|l| l == p)).map(String::from).collect();
                }
                "--repeat" => {
                    let v = value()?;
                    let n = v.parse::<u32>().ok().filter(|&n| (1..=100).contains(&n));
                    args.repeat = n.ok_or(format!("--repeat wants 1 to 100 repetitions, not `{v}`"))?;
                }
                _ => return Err(format!("unexpected argument `{flag}` (see `cargo xtask bench --help`)")),
            }
        }
        let mut words = vec!["cargo".to_owned(), "xtask".to_owned(), "bench".to_owned()];
        words.extend(env_args_before_dashdash());
        if !passthrough.is_empty() {
            words.push("--".to_owned());
            words.extend(passthrough.iter().cloned());
        }
        args.command = words.join(" ");
        Ok(args)
    }

    fn duration(&self) -> u32 {
        self.duration.unwrap_or(if self.quick { 5 } else { 10 })
    }

    /// The harness's default drain unless `--drain` says.
    fn drain(&self) -> u32 {
        self.drain.unwrap_or(DEFAULT_DRAIN)
    }

    fn rates(&self, scenario: &Scenario) -> Vec<u32> {
        match &self.rates {
            Some(rates) => rates.clone(),
            None if self.quick => scenario.quick_rates.to_vec(),
            None => scenario.rates.to_vec(),
        }
    }

    fn wants(&self, scenario: &Scenario) -> bool {
        self.scenarios.as_ref().is_none_or(|list| list.iter().any(|n| n == scenario.name))
    }

    fn wants_proxy(&self, proxy: &str) -> bool {
        self.proxies.iter().any(|p| p == proxy)
    }
}

/// Our own arguments as typed (`bench` and what follows it, before `--`).
fn env_args_before_dashdash() -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    args.into_iter().take_while(|a| a != "--").collect()
}

fn split_list(value: &str) -> Vec<String> {
    value.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

pub fn bench(args: &BenchArgs, passthrough: &[String]) -> Result {
    let stages = usize::from(args.criterion) + 2 * usize::from(args.sipp);
    let mut progress = Progress::new("bench", stages.max(1));
    let started = SystemTime::now();
    if args.criterion {
        progress.stage("criterion micro-benchmarks of the compiler and the runtime");
        criterion(args, passthrough)?;
    }
    if args.sipp {
        progress.stage("SIPp scenarios: serc and Kamailio in turn");
        let report = sipp(args)?;
        progress.stage("report: BENCHMARKS.md, bench/results.svg");
        write_report(args, &report, started)?;
    }
    if stages == 0 {
        eprintln!("nothing to do: --no-criterion and --no-sipp");
    }
    progress.done();
    Ok(())
}

// ---------------------------------------------------------------------------
// stage 1: criterion

fn criterion(args: &BenchArgs, passthrough: &[String]) -> Result {
    let (before, after) = match passthrough.iter().position(|a| a == "--") {
        Some(i) => (&passthrough[..i], &passthrough[i + 1..]),
        None => (passthrough, &[][..]),
    };
    let quick: &[&str] = if args.quick { &["--warm-up-time", "1", "--measurement-time", "2"] } else { &[] };
    // Each bench target by name: `--benches` would also run the libraries'
    // libtest harness, which refuses criterion's options.
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "serc", "-p", "serc-runtime"]);
    for dir in ["compiler/benches", "runtime/benches"] {
        for path in crate::read_dir(&project_root().join(dir))? {
            let Some(name) =
                path.file_stem().and_then(|n| n.to_str()).filter(|_| path.extension().is_some_and(|e| e == "rs"))
            else {
                continue;
            };
            if name != "route" {
                cmd.args(["--bench", name]);
            }
        }
    }
    cmd.args(before);
    if !quick.is_empty() || !after.is_empty() {
        cmd.arg("--").args(quick).args(after);
    }
    run(&mut cmd)?;
    // The filters among cargo's arguments (`-- tm/`) also select the route benches.
    let filters: Vec<&String> = before.iter().filter(|a| !a.starts_with('-')).collect();
    route_bench(quick, &filters, after)
}

/// runtime/benches/route.rs on the code `serc emit` generates now: emitted
/// into target/serc-bench/route/, built with `--cfg serc_route_bench` for
/// that target only (`cargo rustc`), then run.
fn route_bench(quick: &[&str], filters: &[&String], after: &[String]) -> Result {
    let root = project_root();
    run(cargo().args(["build", "--release", "-p", "serc"]))?;
    let serc = root.join("target/release/serc");
    let dir = root.join("target/serc-bench/route");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (cfg, name) in [
        ("bench/configs/openser-relay-stateless.cfg", "relay_stateless"),
        ("examples/openser.cfg", "example_openser"),
        ("bench/configs/openser-openser-default.cfg", "openser_default"),
    ] {
        let mut emit = Command::new(&serc);
        emit.current_dir(&root).args(["emit", cfg]);
        eprintln!("$ {} > {}", show(&emit), dir.join(format!("{name}.rs")).display());
        let out = emit.output().map_err(|e| format!("cannot run {}: {e}", serc.display()))?;
        if !out.status.success() {
            return Err(format!("`serc emit {cfg}` failed:\n{}", String::from_utf8_lossy(&out.stderr)));
        }
        let path = dir.join(format!("{name}.rs"));
        // Rewritten only when it changes, so cargo does not rebuild for nothing.
        if fs::read(&path).ok().as_deref() != Some(&out.stdout[..]) {
            fs::write(&path, &out.stdout).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    let mut build = cargo();
    build
        .args([
            "rustc",
            "-p",
            "serc-runtime",
            "--bench",
            "route",
            "--profile",
            "bench",
            "--message-format",
            "json-render-diagnostics",
        ])
        .args(["--", "--cfg", "serc_route_bench"])
        .stdout(Stdio::piped());
    eprintln!("$ {}", show(&build));
    let out = build.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err("building the route bench failed (see above)".to_owned());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"name\":\"route\""))
        .find_map(|l| json_string(l, "executable"))
        .ok_or("cargo did not name the route bench's executable")?;
    run(Command::new(exe).current_dir(root.join("runtime")).arg("--bench").args(filters).args(quick).args(after))
}

// ---------------------------------------------------------------------------
// stage 2: SIPp

/// One step of the harness: one proxy at one rate, one repetition.
#[derive(Clone, Debug, Default)]
struct Step {
    rate: u32,
    /// Which repetition (1 to `--repeat`).
    rep: u32,
    pass: bool,
    why: String,
    achieved: f64,
    created: f64,
    failed: f64,
    retrans: f64,
    cpu_ms_per_1k: Option<f64>,
    /// Context switches of the proxy's threads per call or registration.
    switches: Option<f64>,
    proxy_cores: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    pss_mb: Option<f64>,
    sipp_cpu_ms_per_1k: Option<f64>,
    rcvbuf_err: Option<f64>,
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// A figure over the repetitions of a step.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        Some(Spread {
            median: median(values)?,
            min: values.iter().copied().reduce(f64::min)?,
            max: values.iter().copied().reduce(f64::max)?,
        })
    }
}

/// One proxy at one rate over the repetitions that gave a result: the
/// median of each figure.
#[derive(Clone, Debug, PartialEq)]
struct RateSummary {
    /// Whether `repeat` repetitions gave a result and every one passed.
    pass: bool,
    /// How many repetitions passed.
    passed: usize,
    cpu_ms_per_1k: Option<Spread>,
    p50: Option<f64>,
    p99: Option<f64>,
    pss_mb: Option<f64>,
}

impl RateSummary {
    /// `steps`: the repetitions of one rate that gave a result; `repeat` were
    /// run (a repetition without a result does not pass). None without steps.
    fn of(steps: &[&Step], repeat: u32) -> Option<RateSummary> {
        if steps.is_empty() {
            return None;
        }
        let figure = |f: fn(&Step) -> Option<f64>| steps.iter().filter_map(|s| f(s)).collect::<Vec<f64>>();
        let passed = steps.iter().filter(|s| s.pass).count();
        Some(RateSummary {
            pass: passed == steps.len() && steps.len() >= repeat as usize,
            passed,
            cpu_ms_per_1k: Spread::of(&figure(|s| s.cpu_ms_per_1k)),
            p50: median(&figure(|s| s.p50)),
            p99: median(&figure(|s| s.p99)),
            pss_mb: median(&figure(|s| s.pss_mb)),
        })
    }

    fn cpu(&self) -> Option<f64> {
        self.cpu_ms_per_1k.map(|c| c.median)
    }
}

struct ProxyResult {
    /// `--repeat`: how many repetitions each rate should have.
    repeat: u32,
    idle_pss_mb: Option<f64>,
    /// Every repetition at every rate, in the order run.
    steps: Vec<Step>,
    /// Rates not run (after a failure), and setup errors.
    notes: Vec<String>,
}

impl ProxyResult {
    fn new(repeat: u32) -> ProxyResult {
        ProxyResult { repeat, idle_pss_mb: None, steps: Vec::new(), notes: Vec::new() }
    }

    /// The highest rate passed (by every repetition), and whether every rate
    /// tried passed.
    fn max_pass(&self) -> Option<(u32, bool)> {
        let rates = self.rates();
        let passed = |rate: &u32| self.at(*rate).is_some_and(|s| s.pass);
        let best = rates.iter().copied().filter(passed).max()?;
        let capped = rates.iter().any(|r| *r > best && !passed(r));
        Some((best, !capped))
    }

    /// The highest median PSS over the rates.
    fn peak_pss(&self) -> Option<f64> {
        self.rates().into_iter().filter_map(|r| self.at(r)?.pss_mb).reduce(f64::max)
    }

    /// The rates with a result, in increasing order.
    fn rates(&self) -> Vec<u32> {
        let mut rates: Vec<u32> = self.steps.iter().map(|s| s.rate).collect();
        rates.sort_unstable();
        rates.dedup();
        rates
    }

    /// The repetitions at `rate`, summarized; None if none gave a result.
    fn at(&self, rate: u32) -> Option<RateSummary> {
        let steps: Vec<&Step> = self.steps.iter().filter(|s| s.rate == rate).collect();
        RateSummary::of(&steps, self.repeat)
    }
}

struct ScenarioReport {
    scenario: &'static Scenario,
    rates: Vec<u32>,
    proxies: BTreeMap<String, ProxyResult>,
}

struct Report {
    scenarios: Vec<ScenarioReport>,
    skipped: Vec<&'static Scenario>,
    out: PathBuf,
    duration: u32,
    /// Seconds after the load still counted in the proxy's CPU.
    drain: u32,
    repeat: u32,
    netns: bool,
    bins: Binaries,
    harness: PathBuf,
    /// The commit serc's proxies were built from (read before the build: the
    /// run itself rewrites bench/results.svg and BENCHMARKS.md).
    revision: String,
}

/// What the proxies run: serc's proxy of each scenario, the floor.
#[derive(Default)]
struct Binaries {
    serc: BTreeMap<&'static str, PathBuf>,
    floor: Option<PathBuf>,
}

/// The users of the register-auth scenario: u1..uN, password pw-uI, domain
/// bench.example (the harness writes SIPp's injection file from the same rule).
const AUTH_USERS: u32 = 1000;

/// The register-auth variant where Kamailio reads SQLite too.
const SQLITE_VARIANT: &str = "register-auth-sqlite";

/// Kamailio's SQLite schema directory (package kamailio-sqlite-modules, which
/// also holds db_sqlite.so), if installed.
fn kamailio_sqlite_schema() -> Option<PathBuf> {
    let schema = PathBuf::from("/usr/share/kamailio/db_sqlite");
    let module = |lib: PathBuf| lib.join("kamailio/modules/db_sqlite.so").is_file();
    let has_module = module(PathBuf::from("/usr/lib"))
        || fs::read_dir("/usr/lib").is_ok_and(|dirs| dirs.flatten().any(|d| module(d.path())));
    (has_module && schema.join("auth_db-create.sql").is_file()).then_some(schema)
}

/// register-auth and its SQLite variant: the subscriber tables the proxies
/// authenticate against, and the configs naming them (written to
/// target/serc-bench/configs/): serc's dbtext directory (register-auth) and
/// SQLite file (register-auth-sqlite), made with `serc db init` / `serc db
/// add-user` (what an operator does); Kamailio's db_text directory and SQLite
/// file made from its own schema (as `kamdbctl create` would), in WAL mode as
/// serc's.
fn prepare_register_auth(proxies: &[String], scenarios: &[&Scenario], harness: &Path) -> Result {
    let root = project_root();
    let dir = root.join("target/serc-bench/auth");
    let configs = root.join("target/serc-bench/configs");
    let _ = fs::remove_dir_all(&dir);
    for d in [&dir.join("dbtext"), &configs] {
        fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let runs = |proxy: &str, name: &str| {
        proxies.iter().any(|p| p == proxy || (proxy == SERC && p == SERC_METRICS))
            && scenarios.iter().any(|s| s.name == name)
    };
    let serc_variants = [
        ("register-auth", dir.join("serc-dbtext"), "dbtext", "@AUTH_DBTEXT@"),
        (SQLITE_VARIANT, dir.join("serc.sqlite"), "sqlite", "@AUTH_DB@"),
    ];
    if serc_variants.iter().any(|(name, ..)| runs(SERC, name)) {
        run(cargo().args(["build", "--release", "-p", "serc"]))?;
    }
    for (name, store, scheme, marker) in serc_variants {
        if !runs(SERC, name) {
            continue;
        }
        let serc = root.join("target/release/serc");
        let url = format!("{scheme}://{}", store.display());
        eprintln!("{name}: {AUTH_USERS} subscribers into {url}");
        run(Command::new(&serc).args(["db", "init", "--db-url", &url]))?;
        for i in 1..=AUTH_USERS {
            let out = Command::new(&serc)
                .args(["db", "add-user", &format!("sip:u{i}@bench.example"), &format!("pw-u{i}"), "--db-url", &url])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", serc.display()))?;
            if !out.status.success() {
                return Err(format!("serc db add-user u{i} failed: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        let template = root.join(format!("bench/configs/openser-{name}.cfg"));
        let text = fs::read_to_string(&template).map_err(|e| format!("{}: {e}", template.display()))?;
        write(&configs.join(format!("openser-{name}.cfg")), &text.replace(marker, &store.display().to_string()))?;
    }
    let kamailio_runs = |name: &str| runs(KAMAILIO, name);
    if kamailio_runs("register-auth") {
        let dbtext = dir.join("dbtext");
        let mut rows = String::from(
            "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null) \n",
        );
        for i in 1..=AUTH_USERS {
            rows.push_str(&format!("{i}:u{i}:bench.example:pw-u{i}:::\n"));
        }
        write(&dbtext.join("subscriber"), &rows)?;
        write(&dbtext.join("version"), "id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n")?;
        let template = harness.join("configs/kamailio-register-auth.cfg");
        let text = fs::read_to_string(&template).map_err(|e| format!("{}: {e}", template.display()))?;
        let text =
            text.replace("@DBTEXT@", &dbtext.display().to_string()).replace("@BENCH@", &harness.display().to_string());
        write(&configs.join("kamailio-register-auth.cfg"), &text)?;
    }
    if kamailio_runs(SQLITE_VARIANT) {
        let schema = kamailio_sqlite_schema().ok_or("Kamailio's SQLite schema is not installed")?;
        let db = dir.join("kamailio.sqlite");
        let mut sql = String::from("PRAGMA journal_mode=WAL;\nBEGIN;\n");
        for file in ["standard-create.sql", "auth_db-create.sql"] {
            let path = schema.join(file);
            sql.push_str(&fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        for i in 1..=AUTH_USERS {
            sql.push_str(&format!(
                "INSERT INTO subscriber (username, domain, password) VALUES ('u{i}', 'bench.example', 'pw-u{i}');\n"
            ));
        }
        sql.push_str("COMMIT;\n");
        eprintln!("{SQLITE_VARIANT}: {AUTH_USERS} subscribers into {} (Kamailio's schema)", db.display());
        let script = dir.join("kamailio.sql");
        write(&script, &sql)?;
        let out = Command::new("sqlite3")
            .arg(&db)
            .arg(format!(".read {}", script.display()))
            .output()
            .map_err(|e| format!("cannot run sqlite3: {e}"))?;
        if !out.status.success() {
            return Err(format!("sqlite3 {} failed: {}", db.display(), String::from_utf8_lossy(&out.stderr)));
        }
        let template = harness.join(format!("configs/kamailio-{SQLITE_VARIANT}.cfg"));
        let text = fs::read_to_string(&template).map_err(|e| format!("{}: {e}", template.display()))?;
        let text =
            text.replace("@SQLITE@", &db.display().to_string()).replace("@BENCH@", &harness.display().to_string());
        write(&configs.join(format!("kamailio-{SQLITE_VARIANT}.cfg")), &text)?;
    }
    Ok(())
}

fn harness_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("SERC_BENCH_HARNESS") {
        Some(dir) => PathBuf::from(dir),
        None => project_root().join("bench/harness"),
    };
    if !dir.join("run.sh").is_file() {
        return Err(format!(
            "the SIPp harness is missing: expected {} (bench/harness, serc's copy of the shared \
             harness; SERC_BENCH_HARNESS names another, or pass --no-sipp)",
            dir.join("run.sh").display()
        ));
    }
    Ok(dir.canonicalize().unwrap_or(dir))
}

fn check_tools(args: &BenchArgs) -> Result {
    let proxies = &args.proxies;
    let mut needed = vec![
        ("sipp", "apt-get install -y sip-tester"),
        ("python3", "apt-get install -y python3"),
        ("bc", "apt-get install -y bc"),
        ("/usr/bin/time", "apt-get install -y time"),
        ("ss", "apt-get install -y iproute2"),
        ("pgrep", "apt-get install -y procps"),
    ];
    let kamailio = proxies.iter().any(|p| p == KAMAILIO);
    let kamailio_on_sqlite = kamailio && SCENARIOS.iter().any(|s| s.name == SQLITE_VARIANT && args.wants(s));
    if kamailio {
        needed.push(("kamailio", "apt-get install -y kamailio"));
    }
    if kamailio_on_sqlite {
        needed.push(("sqlite3", "apt-get install -y sqlite3"));
    }
    let mut missing: Vec<String> = needed
        .iter()
        .filter(|(binary, _)| find_binary(binary).is_none())
        .map(|(binary, install)| format!("`{binary}` (install: {install})"))
        .collect();
    if kamailio_on_sqlite && kamailio_sqlite_schema().is_none() {
        missing.push(format!(
            "Kamailio's db_sqlite module and schema for {SQLITE_VARIANT} (install: apt-get install -y \
             kamailio-sqlite-modules)"
        ));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("the SIPp benches need {}", missing.join(", ")))
    }
}

/// Whether a private network namespace works here (`unshare -n`, then the
/// loopback brought up).
fn netns_works() -> std::result::Result<(), String> {
    if find_binary("unshare").is_none() || find_binary("ip").is_none() {
        return Err("`unshare` or `ip` is not installed (util-linux, iproute2)".to_owned());
    }
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && ip -o addr show lo | grep -q 127.0.0.1"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`unshare -n` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `program args…` run in a fresh network namespace with its loopback up
/// (or not, with `netns == false`), without core dumps (Kamailio sometimes
/// crashes on SIGTERM and writes a core into /).
fn wrapped(netns: bool, program: &Path, args: &[String]) -> Command {
    let script = if netns {
        "ulimit -c 0; ip link set lo up || exit 3; exec \"$0\" \"$@\""
    } else {
        "ulimit -c 0; exec \"$0\" \"$@\""
    };
    let mut cmd = if netns {
        let mut cmd = Command::new("unshare");
        cmd.args(["-n", "bash", "-c", script]);
        cmd
    } else {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", script]);
        cmd
    };
    cmd.arg(program).args(args);
    cmd
}

/// Builds serc (release) and a proxy for each scenario.
fn build_proxies(scenarios: &[&'static Scenario], bin_dir: &Path) -> Result<BTreeMap<&'static str, PathBuf>> {
    let root = project_root();
    run(cargo().args(["build", "--release", "-p", "serc"]))?;
    let serc = root.join("target/release/serc");
    fs::create_dir_all(bin_dir).map_err(|e| format!("cannot create {}: {e}", bin_dir.display()))?;
    let mut bins = BTreeMap::new();
    for s in scenarios {
        let cfg = serc_config(s)?;
        let out = bin_dir.join(format!("openser-{}", s.config));
        // Scenarios sharing a config share its proxy.
        if !bins.values().any(|built| *built == out) {
            run(Command::new(&serc).current_dir(&root).arg("build").arg(&cfg).arg("-o").arg(&out))?;
        }
        bins.insert(s.name, out);
    }
    Ok(bins)
}

/// The config serc builds for a scenario, relative to the workspace: serc
/// writes the config's path into the generated code's `__serc_at!` markers,
/// and a long one is wrapped over lines by the pretty-printer, which serc then
/// fails to read back (a serc bug, reported).
fn serc_config(s: &Scenario) -> Result<String> {
    let root = project_root();
    let cfg = format!("bench/configs/openser-{}.cfg", s.config);
    if !root.join(&cfg).is_file() {
        return Err(format!("no config {} for the scenario {}", root.join(&cfg).display(), s.name));
    }
    // A config naming a file the run prepares (@AUTH_DB@) is built from its
    // prepared copy.
    let prepared = format!("target/serc-bench/configs/openser-{}.cfg", s.config);
    Ok(if root.join(&prepared).is_file() { prepared } else { cfg })
}

/// The rates (calls/s) of `--pgo`'s training, 10 s each: below every
/// scenario's highest for serc, one where the caches run cold between
/// messages and one where they stay warm.
const PGO_TRAINING_RATES: [u32; 2] = [1000, 3000];
const PGO_TRAINING_SECS: u32 = 10;

/// `--pgo`: rebuilds each serc proxy of `bins` in place (once per config) with
/// `serc build --pgo-use`, from the profile of its `--pgo-generate` build run
/// through the config's first scenario at [`PGO_TRAINING_RATES`].
fn train(
    bins: &BTreeMap<&'static str, PathBuf>,
    scenarios: &[&'static Scenario],
    netns: bool,
    harness: &Path,
    dir: &Path,
) -> Result {
    let root = project_root();
    let serc = root.join("target/release/serc");
    let mut trained: Vec<PathBuf> = Vec::new();
    for s in scenarios {
        let Some(out) = bins.get(s.name).cloned() else { continue };
        if trained.contains(&out) {
            continue;
        }
        let cfg = serc_config(s)?;
        let profiles = root.join("target/serc-bench/pgo").join(s.config);
        let _ = fs::remove_dir_all(&profiles);
        let trainee = out.with_file_name(format!("openser-{}-trainee", s.config));
        run(Command::new(&serc)
            .current_dir(&root)
            .arg("build")
            .arg("--pgo-generate")
            .arg(&profiles)
            .arg(&cfg)
            .arg("-o")
            .arg(&trainee))?;
        let trainee_bins = Binaries { serc: BTreeMap::from([(s.name, trainee.clone())]), floor: None };
        let cmd = proxy_command(SERC, s, &trainee_bins, harness);
        for rate in PGO_TRAINING_RATES {
            eprintln!("\n--- {} training serc at {rate}/s for {PGO_TRAINING_SECS} s", s.name);
            let step = harness_step(
                netns,
                harness,
                s,
                "serc-trainee",
                &cmd,
                rate,
                1,
                (PGO_TRAINING_SECS, 0),
                &dir.join(s.name),
            )?;
            if !step.pass {
                return Err(format!(
                    "{}: the trainee failed at {rate}/s ({}): see {}",
                    s.name,
                    step.why,
                    dir.display()
                ));
            }
        }
        run(Command::new(&serc)
            .current_dir(&root)
            .arg("build")
            .arg("--pgo-use")
            .arg(&profiles)
            .arg(&cfg)
            .arg("-o")
            .arg(&out))?;
        trained.push(out);
    }
    Ok(())
}

/// Builds the floor, xtask/src/bin/udp-floor.rs (release).
fn build_floor() -> Result<PathBuf> {
    run(cargo().args(["build", "--release", "-p", "xtask", "--bin", "udp-floor"]))?;
    Ok(project_root().join("target/release/udp-floor"))
}

fn proxy_command(proxy: &str, scenario: &Scenario, bins: &Binaries, harness: &Path) -> Vec<String> {
    if proxy == FLOOR {
        let floor = bins.floor.as_ref().expect("the floor is built when asked for");
        let mut cmd = vec![floor.display().to_string()];
        cmd.extend(scenario.floor_args.iter().map(|a| a.to_string()));
        cmd
    } else if proxy == SERC || proxy == SERC_METRICS {
        let mut cmd = vec![
            bins.serc[scenario.name].display().to_string(),
            "--listen".into(),
            "udp:127.0.0.1:5060".into(),
            "--workers".into(),
            "2".into(),
        ];
        if proxy == SERC_METRICS {
            cmd.extend(["--http".into(), "127.0.0.1:0".into()]);
        }
        if scenario.name == "openser-default" {
            // Its debug=6 would log every message (Kamailio's runs at debug=-1);
            // its FIFO (/tmp/openser_fifo) moves out of the way of other proxies.
            let fifo = project_root().join("target/serc-bench/openser-default.fifo");
            cmd.extend(["--log-level".into(), "error".into(), "--mi-fifo".into(), fifo.display().to_string()]);
        }
        cmd
    } else {
        // As in ../shared/bench/README.md (the reference figures); a config
        // the run prepared (register-auth: its database's path) wins.
        let prepared = project_root().join(format!("target/serc-bench/configs/kamailio-{}.cfg", scenario.name));
        let cfg =
            if prepared.is_file() { prepared } else { harness.join(format!("configs/kamailio-{}.cfg", scenario.name)) };
        ["kamailio", "-DD", "-E", "-m", "512", "-M", "16", "-f"]
            .into_iter()
            .map(String::from)
            .chain([cfg.display().to_string()])
            .collect()
    }
}

fn sipp(args: &BenchArgs) -> Result<Report> {
    let harness = harness_dir()?;
    check_tools(args)?;
    let netns = if args.netns {
        match netns_works() {
            Ok(()) => {
                eprintln!("each step runs in a private network namespace (unshare -n, lo up)");
                true
            }
            Err(why) => {
                eprintln!(
                    "warning: no private network namespace ({why}); running in the host's namespace: \
                     udp ports 5060, 5061 and 5070 must be free (the harness refuses to start otherwise), \
                     and other tests must not use them meanwhile"
                );
                false
            }
        }
    } else {
        eprintln!("--no-netns: running in the host's namespace (udp 5060, 5061, 5070 must be free)");
        false
    };
    let chosen: Vec<&'static Scenario> = SCENARIOS.iter().filter(|s| args.wants(s)).collect();
    let runnable: Vec<&'static Scenario> = chosen.iter().copied().filter(|s| s.skip.is_none()).collect();
    let skipped: Vec<&'static Scenario> = chosen.iter().copied().filter(|s| s.skip.is_some()).collect();
    for s in &skipped {
        eprintln!("skipped: {} ({}): {}", s.name, s.what, s.skip.unwrap_or_default());
    }
    for s in &runnable {
        let cfg = harness.join(format!("configs/kamailio-{}.cfg", s.name));
        if args.wants_proxy(KAMAILIO) && !cfg.is_file() {
            return Err(format!("no Kamailio config {} for {}", cfg.display(), s.name));
        }
    }
    let root = project_root();
    let stamp = utc("+%Y%m%dT%H%M%SZ");
    let out = root.join("target/serc-bench/runs").join(&stamp);
    // Kamailio configs naming the harness's directory (@BENCH@): written with it.
    for s in &runnable {
        let template = harness.join(format!("configs/kamailio-{}.cfg", s.name));
        let text = fs::read_to_string(&template).unwrap_or_default();
        if s.harness != "register-auth" && text.contains("@BENCH@") {
            let out = root.join(format!("target/serc-bench/configs/kamailio-{}.cfg", s.name));
            write(&out, &text.replace("@BENCH@", &harness.display().to_string()))?;
        }
    }
    if runnable.iter().any(|s| s.harness == "register-auth") {
        prepare_register_auth(&args.proxies, &runnable, &harness)?;
    }
    let revision = git_revision();
    let mut bins = Binaries::default();
    if args.wants_proxy(SERC) || args.wants_proxy(SERC_METRICS) {
        bins.serc = build_proxies(&runnable, &root.join("target/serc-bench/bin"))?;
        if args.pgo {
            train(&bins.serc, &runnable, netns, &harness, &out.join("pgo-training"))?;
        }
    }
    if args.wants_proxy(FLOOR) {
        bins.floor = Some(build_floor()?);
    }
    let duration = args.duration();
    let mut scenarios = Vec::new();
    for s in &runnable {
        let rates = args.rates(s);
        let mut report = ScenarioReport { scenario: s, rates: rates.clone(), proxies: BTreeMap::new() };
        for proxy in &args.proxies {
            let cmd = proxy_command(proxy, s, &bins, &harness);
            let log = out.join(s.name).join(format!("{proxy}-idle.log"));
            let idle = idle_pss(netns, &cmd, &log);
            match &idle {
                Ok(mb) => eprintln!("{} {proxy}: idle PSS {mb:.1} MB", s.name),
                Err(e) => eprintln!("{} {proxy}: idle PSS not measured: {e}", s.name),
            }
            let result = report.proxies.entry(proxy.clone()).or_insert_with(|| ProxyResult::new(args.repeat));
            match idle {
                Ok(mb) => result.idle_pss_mb = Some(mb),
                Err(e) => result.notes.push(format!("idle PSS not measured: {e}")),
            }
        }
        // The rate each proxy failed at: its other rates are not run (its
        // other repetitions at that rate are).
        let mut failed: BTreeMap<String, u32> = BTreeMap::new();
        for &rate in &rates {
            for rep in 1..=args.repeat {
                for proxy in &args.proxies {
                    let result = report.proxies.get_mut(proxy).expect("entry made above");
                    if let Some(&at) = failed.get(proxy).filter(|&&at| at != rate) {
                        if rep == 1 {
                            let note = format!("{rate}/s not run: failed at {at}/s (--keep-going runs it)");
                            eprintln!("{} {proxy}: {note}", s.name);
                            result.notes.push(note);
                        }
                        continue;
                    }
                    let cmd = proxy_command(proxy, s, &bins, &harness);
                    let mut dir = out.join(s.name).join(proxy);
                    if args.repeat > 1 {
                        eprintln!("\n--- {} {proxy} at {rate}/s for {duration} s, {rep} of {}", s.name, args.repeat);
                        dir.push(format!("rep{rep}"));
                    } else {
                        eprintln!("\n--- {} {proxy} at {rate}/s for {duration} s", s.name);
                    }
                    let step = harness_step(netns, &harness, s, proxy, &cmd, rate, rep, (duration, args.drain()), &dir);
                    let pass = step.as_ref().is_ok_and(|st| st.pass);
                    match step {
                        Ok(step) => result.steps.push(step),
                        Err(e) => {
                            eprintln!("{} {proxy} at {rate}/s: {e}", s.name);
                            result.notes.push(format!("{rate}/s: {e}"));
                        }
                    }
                    if !pass && !args.keep_going {
                        failed.insert(proxy.clone(), rate);
                    }
                }
            }
        }
        print_scenario(&report);
        scenarios.push(report);
    }
    let drain = args.drain();
    Ok(Report { scenarios, skipped, out, duration, drain, repeat: args.repeat, netns, bins, harness, revision })
}

/// One call of the harness: `run.sh -k -s SCENARIO -r RATE -d SECONDS -D
/// DRAIN -n PROXY -p CMD -o DIR`, bounded in time; reads DIR/rRATE/result.json.
#[allow(clippy::too_many_arguments)]
fn harness_step(
    netns: bool,
    harness: &Path,
    scenario: &Scenario,
    proxy: &str,
    cmd: &[String],
    rate: u32,
    rep: u32,
    (duration, drain): (u32, u32),
    dir: &Path,
) -> Result<Step> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let step_dir = dir.join(format!("r{rate}"));
    if step_dir.exists() {
        return Err(format!("{} exists already", step_dir.display()));
    }
    // The harness runs the proxy with `bash -c "exec CMD"`: a path with
    // spaces would need quoting.
    let proxy_cmd = cmd.join(" ");
    let run_args: Vec<String> = [
        "-k",
        "-s",
        scenario.harness,
        "-r",
        &rate.to_string(),
        "-d",
        &duration.to_string(),
        "-D",
        &drain.to_string(),
        "-n",
        proxy,
        "-p",
        &proxy_cmd,
        "-o",
        &dir.display().to_string(),
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut command = wrapped(netns, &harness.join("run.sh"), &run_args);
    command.stdin(Stdio::null()).env("AUTH_USERS", AUTH_USERS.to_string());
    eprintln!("$ {}", show(&command));
    let child = command.spawn().map_err(|e| format!("cannot start the harness: {e}"))?;
    let bound = Duration::from_secs(u64::from(duration) + u64::from(drain) + 240);
    let status = wait_bounded(child, bound)?;
    let json = step_dir.join("result.json");
    let text = fs::read_to_string(&json).map_err(|_| {
        format!("the harness wrote no {} (exit status {status}; see {}/)", json.display(), step_dir.display())
    })?;
    Ok(step_of(&text, rate, rep))
}

/// A step's figures from the `result.json` the harness wrote for it.
fn step_of(text: &str, rate: u32, rep: u32) -> Step {
    let num = |key: &str| json_number(text, key);
    Step {
        rate,
        rep,
        pass: json_string(text, "verdict").as_deref() == Some("PASS"),
        why: json_string(text, "why").unwrap_or_default(),
        achieved: num("achieved").unwrap_or(0.0),
        created: num("created").unwrap_or(0.0),
        failed: num("failed").unwrap_or(0.0),
        retrans: num("retrans").unwrap_or(0.0),
        cpu_ms_per_1k: num("proxy_cpu_ms_per_1k"),
        switches: num("proxy_switches_per_call"),
        proxy_cores: num("proxy_cores"),
        p50: num("rtd1_p50"),
        p99: num("rtd1_p99"),
        pss_mb: num("proxy_pss_mb"),
        sipp_cpu_ms_per_1k: num("sipp_cpu_ms_per_1k"),
        rcvbuf_err: num("udp_rcvbuf_err"),
    }
}

/// Waits for `child` at most `bound`; past it, SIGTERM (the harness's trap
/// stops what it started), then SIGKILL.
fn wait_bounded(mut child: Child, bound: Duration) -> Result<String> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status.to_string());
        }
        if start.elapsed() > bound {
            eprintln!("step over its time bound ({} s): stopping it", bound.as_secs());
            signal(child.id(), "TERM");
            for _ in 0..100 {
                if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                    break;
                }
                sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("stopped after its time bound of {} s", bound.as_secs()));
        }
        sleep(Duration::from_millis(200));
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args(["-s", sig, &pid.to_string()]).stderr(Stdio::null()).status();
}

/// The PSS of the proxy started alone and left idle for 3 s, summed over its
/// processes, in MB.
fn idle_pss(netns: bool, cmd: &[String], log: &Path) -> Result<f64> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut command = wrapped(netns, Path::new(&cmd[0]), &cmd[1..]);
    command.stdin(Stdio::null()).stdout(file).stderr(err);
    let mut child = command.spawn().map_err(|e| format!("cannot start `{}`: {e}", cmd.join(" ")))?;
    // The wrapper execs the proxy: the child's PID is the proxy's.
    let pid = child.id();
    sleep(Duration::from_secs(3));
    let result = match child.try_wait() {
        Ok(Some(status)) => Err(format!("the proxy exited during start-up ({status}); see {}", log.display())),
        _ => {
            let tree = process_tree(pid);
            let kb: u64 = tree.iter().filter_map(|&p| smaps_pss_kb(p)).sum();
            Ok(kb as f64 / 1024.0)
        }
    };
    let tree = process_tree(pid);
    let comms: Vec<(u32, Option<String>)> = tree.iter().map(|&p| (p, comm(p))).collect();
    signal(pid, "TERM");
    for _ in 0..50 {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    // Leftover children: only if still the same program.
    for (p, name) in comms {
        if name.is_some() && comm(p) == name {
            signal(p, "KILL");
        }
    }
    result
}

/// `pid` and its descendants, from /proc.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
            // After the `(comm)` field: state, ppid.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|v| v.parse::<u32>().ok()) {
                parents.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|&&(_, pp)| pp == parent).map(|&(p, _)| p));
        i += 1;
    }
    tree
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_owned())
}

fn smaps_pss_kb(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A number of python's `json.dump` output (a top-level key; `null` is None).
fn json_number(text: &str, key: &str) -> Option<f64> {
    let value = json_raw(text, key)?;
    value.parse().ok()
}

fn json_string(text: &str, key: &str) -> Option<String> {
    let value = json_raw(text, key)?;
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

/// The raw text of `"key": VALUE` (VALUE a number, null, true, false or a
/// string without nested structure).
fn json_raw<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let start = text.find(&pattern)? + pattern.len();
    let rest = text[start..].trim_start();
    if let Some(body) = rest.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return Some(&rest[..i + 2]),
                _ => escaped = false,
            }
        }
        None
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

fn utc(format: &str) -> String {
    Command::new("date")
        .args(["-u", format])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-date".to_owned())
}

fn print_scenario(report: &ScenarioReport) {
    eprintln!("\n{}: {}", report.scenario.name, report.scenario.what);
    eprintln!(
        "{:>12} {:>9} {:>4} {:>10} {:>7} {:>7} {:>8} {:>8}  verdict",
        "proxy", "rate/s", "rep", "offered/s", "CPUms/1k", "p50ms", "p99ms", "PSS MB"
    );
    for (proxy, result) in &report.proxies {
        for s in &result.steps {
            eprintln!(
                "{:>12} {:>9} {:>4} {:>10.0} {:>7} {:>7} {:>8} {:>8}  {}{}",
                proxy,
                s.rate,
                s.rep,
                s.achieved,
                opt(s.cpu_ms_per_1k, 0),
                opt(s.p50, 0),
                opt(s.p99, 0),
                opt(s.pss_mb, 1),
                if s.pass { "PASS" } else { "FAIL" },
                if s.why.is_empty() { String::new() } else { format!(" ({})", s.why) }
            );
        }
    }
}

/// CPU per 1,000 calls at one rate: its median, with (min–max) when each
/// step ran more than once, and which repetitions failed.
fn cpu_cell(st: Option<&RateSummary>, repeat: u32) -> String {
    let Some(st) = st else { return "not run".to_owned() };
    let value = match st.cpu_ms_per_1k {
        Some(c) if repeat > 1 => format!("{:.0} ({:.0}–{:.0})", c.median, c.min, c.max),
        c => opt(c.map(|c| c.median), 0),
    };
    match (st.pass, repeat) {
        (true, _) => value,
        (false, 1) => format!("{value} (FAIL)"),
        (false, _) => format!("{value} (FAIL: {} of {repeat} passed)", st.passed),
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.decimals$}"))
}

/// serc/Kamailio, when both are there and Kamailio's is not zero.
fn ratio(serc: Option<f64>, kamailio: Option<f64>) -> String {
    match (serc, kamailio) {
        (Some(s), Some(k)) if k > 0.0 => format!("{:.2}", s / k),
        _ => "–".to_owned(),
    }
}

/// The p99 ratio; SIPp's times are whole milliseconds, multiples of its
/// clock tick (4 ms on the reference VM): a 0 is "below the resolution".
fn latency_ratio(serc: Option<f64>, kamailio: Option<f64>) -> String {
    match (serc, kamailio) {
        (Some(s), Some(k)) if s > 0.0 && k > 0.0 => format!("{:.2} (p99)", s / k),
        (Some(s), Some(k)) if s == k => "1 (p99; both below SIPp's resolution)".to_owned(),
        (Some(_), Some(_)) => "– (p99: one below SIPp's resolution)".to_owned(),
        _ => "–".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// stage 3: the report

const BEGIN: &str = "<!-- bench:begin (written by `cargo xtask bench`; edit outside the markers) -->";
const END: &str = "<!-- bench:end -->";

fn write_report(args: &BenchArgs, report: &Report, started: SystemTime) -> Result {
    let root = project_root();
    let svg = chart(report);
    let svg_path = root.join("bench/results.svg");
    write(&svg_path, &svg)?;
    write(&report.out.join("results.svg"), &svg)?;
    let block = markdown(args, report, started);
    write(&report.out.join("BENCHMARKS.md"), &block)?;
    let md_path = root.join("BENCHMARKS.md");
    let existing = fs::read_to_string(&md_path).unwrap_or_default();
    let text = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{block}{END}{}", &existing[..b], &existing[e + END.len()..]),
        _ => format!(
            "# Benchmarks: serc against Kamailio\n\n\
             Measured by `cargo xtask bench` (see `cargo xtask bench --help`); the block between the \
             markers is rewritten by each run, the rest of this file is kept.\n\n{BEGIN}\n{block}{END}\n{existing}"
        ),
    };
    write(&md_path, &text)?;
    eprintln!("wrote {}, {} and {}/", md_path.display(), svg_path.display(), report.out.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn first_line(program: &str, args: &[&str], contains: &str) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            text.lines().find(|l| l.contains(contains)).map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn git_revision() -> String {
    let root = project_root();
    let rev = Command::new("git")
        .args(["-C", &root.display().to_string(), "rev-parse", "--short", "HEAD"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(rev) = rev else { return format!("{} (not a git checkout)", root.display()) };
    let dirty = Command::new("git")
        .args(["-C", &root.display().to_string(), "status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        format!("{rev} with uncommitted changes")
    } else {
        rev
    }
}

fn markdown(args: &BenchArgs, report: &Report, started: SystemTime) -> String {
    let mut md = String::new();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(md, "## Run of {}\n", utc("+%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(md, "- command: `{}`", args.command);
    let _ = writeln!(
        md,
        "- machine: {} ({nproc} CPUs, Linux {}), shared with other work: figures are noisy, compare the ratios",
        cpu_model(),
        kernel.trim()
    );
    let _ = writeln!(
        md,
        "- serc: {}; Kamailio: {}; SIPp: {}",
        report.revision,
        first_line("kamailio", &["-v"], "version:").trim_start_matches("version: "),
        first_line("sipp", &["-v"], "SIPp v")
    );
    let _ = writeln!(
        md,
        "- each step: a fresh proxy, {} s of SIPp load at a fixed offered rate (RATE×{} calls), its CPU counted until {} s \
         after the load, measured by the shared harness `{}`{}",
        report.duration,
        report.duration,
        report.drain,
        report.harness.join("run.sh").display(),
        if report.netns { ", in a private network namespace" } else { ", in the host's network namespace" }
    );
    if report.repeat > 1 {
        let _ = writeln!(
            md,
            "- repeat: {n}: each (scenario, rate) step run {n} times per proxy, the proxies interleaved at each \
             repetition ({}, then again), each time a fresh proxy; the summary and the chart give the median of each \
             figure over the repetitions (CPU per 1,000 calls as median (min–max)); a rate counts as passed (highest \
             rate passed, solid markers) only if every repetition passed",
            args.proxies.join(", "),
            n = report.repeat
        );
    } else {
        let _ = writeln!(md, "- repeat: 1 (each step once)");
    }
    let _ = writeln!(md, "- serc proxies: `serc build bench/configs/openser-SCENARIO.cfg`, run with `--listen udp:127.0.0.1:5060 --workers 2`; Kamailio: `kamailio -DD -E -m 512 -M 16 -f configs/kamailio-SCENARIO.cfg` (children=2)");
    if args.pgo {
        let rates: Vec<String> = PGO_TRAINING_RATES.iter().map(u32::to_string).collect();
        let _ = writeln!(
            md,
            "- `--pgo`: serc's proxies built with `serc build --pgo-use`, from the profile their `--pgo-generate` build recorded in the config's first scenario at {} calls/s, {PGO_TRAINING_SECS} s each",
            rates.join(" and ")
        );
    }
    if report.bins.floor.is_some() {
        let _ = writeln!(
            md,
            "- floor: `udp-floor` (xtask/src/bin/udp-floor.rs), no SIP processing: 2 threads each looping one \
             `recv_from` and one `send_to` on one UDP socket bound to 127.0.0.1:5060; a REGISTER answered to its \
             sender with its Via, From, To, Call-ID and CSeq lines copied (200 OK; in register-auth a fixed 401 \
             challenge when it carries no Authorization), anything else relayed (from the UAS's port 5070 to the \
             UAC's 127.0.0.1:5061, anything else to the UAS's 127.0.0.1:5070): what the kernel alone costs per call \
             or registration on loopback"
        );
    }
    let _ = writeln!(
        md,
        "- raw data: `{}` (a `result.json` per step)",
        report.out.strip_prefix(project_root()).unwrap_or(&report.out).display()
    );
    let _ = writeln!(md, "\n![CPU per 1,000 calls and p99 setup time against the offered rate](bench/results.svg)\n");

    let medians = if report.repeat > 1 {
        format!("; medians over {} repetitions, CPU as median (min–max)", report.repeat)
    } else {
        String::new()
    };
    let _ = writeln!(md, "### Summary (ratio = serc / Kamailio; below 1 is better for serc{medians})\n");
    let _ = writeln!(md, "| scenario | figure | serc | Kamailio | ratio |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for s in &report.scenarios {
        let serc = s.proxies.get(SERC);
        let kam = s.proxies.get(KAMAILIO);
        let max = |p: Option<&ProxyResult>| match p.and_then(ProxyResult::max_pass) {
            Some((rate, true)) => (format!("≥ {rate}/s (highest tried)"), Some((f64::from(rate), true))),
            Some((rate, false)) => (format!("{rate}/s"), Some((f64::from(rate), false))),
            None => ("none passed".to_owned(), None),
        };
        let (ms, mv) = max(serc);
        let (mk, mkv) = max(kam);
        // A rate every step passed is only a lower bound of the maximum.
        let max_ratio = match (mv, mkv) {
            (Some((_, true)), Some((_, true))) => "– (both passed every rate tried)".to_owned(),
            (Some((a, true)), Some((b, false))) => format!("≥ {}", ratio(Some(a), Some(b))),
            (Some((a, false)), Some((b, true))) => format!("≤ {}", ratio(Some(a), Some(b))),
            (a, b) => ratio(a.map(|x| x.0), b.map(|x| x.0)),
        };
        let _ = writeln!(md, "| {} | highest rate passed | {ms} | {mk} | {max_ratio} |", s.scenario.name);
        // Each rate's summaries: serc, Kamailio, the floor.
        let at = |rate: u32, proxy: &str| s.proxies.get(proxy).and_then(|p| p.at(rate));
        let rows: Vec<(u32, [Option<RateSummary>; 3])> =
            s.rates.iter().map(|&rate| (rate, [at(rate, SERC), at(rate, KAMAILIO), at(rate, FLOOR)])).collect();
        let both = || rows.iter().filter(|(_, [a, b, _])| a.is_some() || b.is_some());
        let cpu = |st: &Option<RateSummary>| st.as_ref().and_then(RateSummary::cpu);
        for (rate, [a, b, _]) in both() {
            let _ = writeln!(
                md,
                "| | CPU ms / 1,000 {} at {rate}/s | {} | {} | {} |",
                s.scenario.unit,
                cpu_cell(a.as_ref(), report.repeat),
                cpu_cell(b.as_ref(), report.repeat),
                ratio(cpu(a), cpu(b))
            );
        }
        for (rate, [a, b, floor]) in rows.iter().filter(|(_, [.., floor])| floor.is_some()) {
            let _ = writeln!(
                md,
                "| | CPU ms / 1,000 {} at {rate}/s, floor: {}; serc / floor, Kamailio / floor | {} | {} | – |",
                s.scenario.unit,
                cpu_cell(floor.as_ref(), report.repeat),
                ratio(cpu(a), cpu(floor)),
                ratio(cpu(b), cpu(floor))
            );
        }
        for (rate, [a, b, _]) in both() {
            let lat = |st: &Option<RateSummary>| {
                st.as_ref().map_or("not run".to_owned(), |st| format!("{} / {}", opt(st.p50, 0), opt(st.p99, 0)))
            };
            let p99 = |st: &Option<RateSummary>| st.as_ref().and_then(|st| st.p99);
            let _ = writeln!(
                md,
                "| | p50 / p99 ms at {rate}/s | {} | {} | {} |",
                lat(a),
                lat(b),
                latency_ratio(p99(a), p99(b))
            );
        }
        let peak = |p: Option<&ProxyResult>| p.and_then(ProxyResult::peak_pss);
        let idle = |p: Option<&ProxyResult>| p.and_then(|p| p.idle_pss_mb);
        let _ = writeln!(
            md,
            "| | peak PSS MB (any rate) | {} | {} | {} |",
            opt(peak(serc), 1),
            opt(peak(kam), 1),
            ratio(peak(serc), peak(kam))
        );
        let _ = writeln!(
            md,
            "| | idle PSS MB | {} | {} | {} |",
            opt(idle(serc), 1),
            opt(idle(kam), 1),
            ratio(idle(serc), idle(kam))
        );
    }

    if report.scenarios.iter().any(|s| s.proxies.contains_key(SERC_METRICS)) {
        let _ = writeln!(md, "\n### What the processing-time histogram costs (serc-metrics = serc with `--http`)\n");
        let _ = writeln!(md, "| scenario | rate/s | serc CPU ms/1k | serc-metrics CPU ms/1k | ratio |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for s in &report.scenarios {
            for &rate in &s.rates {
                let cpu = |p: &str| s.proxies.get(p).and_then(|r| r.at(rate)).and_then(|st| st.cpu());
                let (off, on) = (cpu(SERC), cpu(SERC_METRICS));
                if off.is_some() || on.is_some() {
                    let _ = writeln!(
                        md,
                        "| {} | {rate} | {} | {} | {} |",
                        s.scenario.name,
                        opt(off, 0),
                        opt(on, 0),
                        ratio(on, off)
                    );
                }
            }
        }
    }

    let _ = writeln!(md, "\n### Every step\n");
    let _ = writeln!(md, "| scenario | proxy | rate/s | rep | offered/s | calls | failed | retr | CPU ms/1k | context switches / call | proxy cores | p50 ms | p99 ms | peak PSS MB | SIPp CPU ms/1k | UDP drops | verdict |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &report.scenarios {
        for (proxy, result) in &s.proxies {
            for st in &result.steps {
                let _ = writeln!(
                    md,
                    "| {} | {proxy} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
                    s.scenario.name,
                    st.rate,
                    st.rep,
                    st.achieved,
                    st.created,
                    st.failed,
                    st.retrans,
                    opt(st.cpu_ms_per_1k, 0),
                    opt(st.switches, 2),
                    opt(st.proxy_cores, 2),
                    opt(st.p50, 0),
                    opt(st.p99, 0),
                    opt(st.pss_mb, 1),
                    opt(st.sipp_cpu_ms_per_1k, 0),
                    opt(st.rcvbuf_err, 0),
                    if st.pass { "PASS" } else { "FAIL" },
                    if st.why.is_empty() { String::new() } else { format!(": {}", st.why) }
                );
            }
            for note in &result.notes {
                let _ = writeln!(md, "| {} | {proxy} | {note} |||||||||||||||", s.scenario.name);
            }
        }
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(md, "\n### Not run yet\n");
        for s in &report.skipped {
            let _ = writeln!(md, "- **{}** ({}): {}", s.name, s.what, s.skip.unwrap_or_default());
        }
    }
    let _ = writeln!(md, "\n### Micro-benchmarks (criterion, this machine, no peer: absolute figures)\n");
    let micro = criterion_results(started);
    if micro.is_empty() {
        let _ = writeln!(
            md,
            "Not run in this run{}.",
            if args.criterion { " (no criterion results found)" } else { " (--no-criterion)" }
        );
    } else {
        let _ = writeln!(md, "| benchmark | mean time | per second |");
        let _ = writeln!(md, "|---|---|---|");
        for (id, ns) in micro {
            let _ = writeln!(md, "| `{id}` | {} | {} |", human_time(ns), human_rate(1e9 / ns));
        }
    }
    let _ = writeln!(md, "\nSerc binaries measured:");
    for (name, bin) in &report.bins.serc {
        let _ = writeln!(md, "- {name}: `{}`", first_line(&bin.display().to_string(), &["--version"], ""));
    }
    md
}

fn human_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k", per_s / 1e3)
    } else {
        format!("{per_s:.1}")
    }
}

/// Criterion's mean estimates written since `since`: (benchmark id, ns).
fn criterion_results(since: SystemTime) -> Vec<(String, f64)> {
    let mut found = Vec::new();
    collect_estimates(&project_root().join("target/criterion"), since, &mut found, 0);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn collect_estimates(dir: &Path, since: SystemTime, out: &mut Vec<(String, f64)>, depth: usize) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    if depth > 6 {
        return;
    }
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "new") {
            let estimates = path.join("estimates.json");
            let fresh = fs::metadata(&estimates).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
            if !fresh {
                continue;
            }
            let id = fs::read_to_string(path.join("benchmark.json")).ok().and_then(|t| json_string(&t, "full_id"));
            let mean = fs::read_to_string(&estimates).ok().and_then(|t| {
                let at = t.find("\"mean\"")?;
                json_number(&t[at..], "point_estimate")
            });
            if let (Some(id), Some(mean)) = (id, mean) {
                out.push((id, mean));
            }
        } else if path.is_dir() && path.file_name().is_some_and(|n| n != "report") {
            collect_estimates(&path, since, out, depth + 1);
        }
    }
}

// ---------------------------------------------------------------------------
// the chart: hand-rolled SVG

const PANEL_W: f64 = 430.0;
const PANEL_H: f64 = 250.0;
const MARGIN_L: f64 = 60.0;
const MARGIN_T: f64 = 34.0;
const MARGIN_B: f64 = 42.0;
const MARGIN_R: f64 = 16.0;

fn color(proxy: &str) -> &'static str {
    match proxy {
        SERC => "#1f6fb4",
        SERC_METRICS => "#2ca02c",
        FLOOR => "#777777",
        _ => "#e0701b",
    }
}

/// The stroke pattern of a proxy's lines (an attribute, or nothing).
fn dash(proxy: &str) -> &'static str {
    match proxy {
        SERC | SERC_METRICS => "",
        FLOOR => r#" stroke-dasharray="2 3""#,
        _ => r#" stroke-dasharray="6 3""#,
    }
}

/// Rows of scenarios; per row, CPU ms per 1,000 calls and p99 setup time
/// against the offered rate, every proxy, the medians over the repetitions.
/// A rate not passed by every repetition is a hollow marker.
fn chart(report: &Report) -> String {
    let rows = report.scenarios.len().max(1);
    let width = 2.0 * PANEL_W + 20.0;
    let height = 40.0 + rows as f64 * (PANEL_H + 10.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    // Legend: serc and Kamailio, and the others measured.
    let mut x = 20.0;
    let measured = |p: &str| report.scenarios.iter().any(|s| s.proxies.get(p).is_some_and(|r| !r.steps.is_empty()));
    for proxy in PROXIES.into_iter().filter(|&p| p == SERC || p == KAMAILIO || measured(p)) {
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="18" x2="{}" y2="18" stroke="{}" stroke-width="2"{}/>"#,
            x + 24.0,
            color(proxy),
            dash(proxy)
        );
        let _ = writeln!(svg, r#"<circle cx="{}" cy="18" r="3.5" fill="{}"/>"#, x + 12.0, color(proxy));
        let _ = writeln!(svg, r#"<text x="{}" y="22">{proxy}</text>"#, x + 30.0);
        x += 40.0 + 6.5 * proxy.len() as f64;
    }
    let failed = if report.repeat > 1 {
        format!("medians of {} repetitions; hollow marker: a repetition failed", report.repeat)
    } else {
        "hollow marker: step failed".to_owned()
    };
    let _ = writeln!(
        svg,
        r##"<text x="{x}" y="22" fill="#555">{failed} (≥ 0.1 % failed calls or retransmissions)</text>"##
    );
    if report.scenarios.is_empty() {
        let _ = writeln!(svg, r#"<text x="20" y="60">no scenario measured</text>"#);
    }
    for (row, s) in report.scenarios.iter().enumerate() {
        let top = 40.0 + row as f64 * (PANEL_H + 10.0);
        let unit = if s.scenario.unit == "calls" { "calls" } else { "reg." };
        panel(&mut svg, 0.0, top, s, &format!("{}: proxy CPU ms per 1,000 {unit}", s.scenario.name), |st| st.cpu());
        panel(&mut svg, PANEL_W + 20.0, top, s, &format!("{}: p99 setup time, ms (SIPp)", s.scenario.name), |st| {
            st.p99
        });
    }
    svg.push_str("</svg>\n");
    svg
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|&c| c >= v * 0.999).unwrap_or(10.0 * p)
}

fn panel(
    svg: &mut String,
    left: f64,
    top: f64,
    s: &ScenarioReport,
    title: &str,
    value: impl Fn(&RateSummary) -> Option<f64>,
) {
    let x0 = left + MARGIN_L;
    let x1 = left + PANEL_W - MARGIN_R;
    let y0 = top + PANEL_H - MARGIN_B;
    let y1 = top + MARGIN_T;
    let max_rate = s.rates.iter().copied().max().unwrap_or(1);
    let xmax = nice_ceiling(f64::from(max_rate));
    // Each proxy's points: (rate, median, every repetition passed).
    let points = |result: &ProxyResult| -> Vec<(f64, f64, bool)> {
        s.rates
            .iter()
            .filter_map(|&rate| {
                let st = result.at(rate)?;
                Some((f64::from(rate), value(&st)?, st.pass))
            })
            .collect()
    };
    let vmax = s.proxies.values().flat_map(&points).map(|(_, v, _)| v).fold(0.0, f64::max);
    let ymax = nice_ceiling(vmax * 1.05);
    let px = |rate: f64| x0 + (x1 - x0) * rate / xmax;
    let py = |v: f64| y0 - (y0 - y1) * v / ymax;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="12" font-weight="bold">{}</text>"#,
        left + 10.0,
        top + 18.0,
        escape(title)
    );
    // Grid and ticks.
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let y = py(v);
        let _ = writeln!(svg, r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#e4e4e4"/>"##);
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, x0 - 5.0, y + 4.0, tick(v));
        let r = xmax * f64::from(i) / 5.0;
        let x = px(r);
        let _ = writeln!(svg, r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{:.1}" stroke="#888"/>"##, y0 + 4.0);
        let _ = writeln!(svg, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, y0 + 16.0, tick(r));
    }
    let _ = writeln!(svg, r##"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/>"##);
    let _ = writeln!(svg, r##"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>"##);
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">offered rate, {} per second</text>"#,
        (x0 + x1) / 2.0,
        y0 + 32.0,
        s.scenario.unit
    );
    for (proxy, result) in &s.proxies {
        let mut points = points(result);
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = color(proxy);
        let dash = dash(proxy);
        if points.len() > 1 {
            let path: Vec<String> = points.iter().map(|&(r, v, _)| format!("{:.1},{:.1}", px(r), py(v))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
        }
        for (r, v, pass) in points {
            let fill = if pass { c } else { "white" };
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{fill}" stroke="{c}" stroke-width="1.5"><title>{proxy} {r}/s: {v:.1}{}</title></circle>"#,
                px(r),
                py(v),
                if pass { "" } else { " (FAIL)" }
            );
        }
    }
}

fn tick(v: f64) -> String {
    if v >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_harness_json() {
        let text = r#"{"label": "serc", "rate": 1000, "rtd1_p50": 0.0, "rtd1_p99": null, "why": "failed \"3\"", "x": {"a": 1}, "verdict": "PASS"}"#;
        assert_eq!(json_number(text, "rate"), Some(1000.0));
        assert_eq!(json_number(text, "rtd1_p50"), Some(0.0));
        assert_eq!(json_number(text, "rtd1_p99"), None);
        assert_eq!(json_string(text, "why").as_deref(), Some("failed \"3\""));
        assert_eq!(json_string(text, "verdict").as_deref(), Some("PASS"));
    }

    #[test]
    fn a_step_is_read_from_its_result() {
        // Figures of a harness step's result.json (the stateful relay at 3,000/s).
        let text = r#"{"label": "csw", "rate": 3000, "achieved": 2999.9, "created": 30000, "failed": 0, "retrans": 0,
            "rtd1_p50": 0.0, "rtd1_p99": 8.0, "proxy_cpu_s": 2.21, "proxy_cores": 0.17, "proxy_cpu_ms_per_1k": 73.7,
            "proxy_switches_per_call": 0.83, "sipp_cpu_ms_per_1k": 111.0, "proxy_pss_mb": 72.1,
            "udp_rcvbuf_err": 0, "verdict": "PASS", "why": ""}"#;
        let step = step_of(text, 3000, 2);
        assert_eq!((step.rate, step.rep, step.pass, step.why.as_str()), (3000, 2, true, ""));
        assert_eq!((step.achieved, step.created, step.failed, step.retrans), (2999.9, 30000.0, 0.0, 0.0));
        assert_eq!((step.cpu_ms_per_1k, step.switches, step.proxy_cores), (Some(73.7), Some(0.83), Some(0.17)));
        assert_eq!((step.p50, step.p99, step.pss_mb), (Some(0.0), Some(8.0), Some(72.1)));
        assert_eq!((step.sipp_cpu_ms_per_1k, step.rcvbuf_err), (Some(111.0), Some(0.0)));
        // A harness without the count (an older copy) leaves it out.
        assert_eq!(step_of(r#"{"verdict": "FAIL", "why": "failed 3"}"#, 1000, 1).switches, None);
    }

    fn step(rate: u32, rep: u32, pass: bool, cpu: f64) -> Step {
        Step { rate, rep, pass, cpu_ms_per_1k: Some(cpu), p99: Some(cpu / 10.0), pss_mb: Some(cpu), ..Step::default() }
    }

    fn result(repeat: u32, steps: Vec<Step>) -> ProxyResult {
        ProxyResult { steps, ..ProxyResult::new(repeat) }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(Spread::of(&[7.0, 5.0, 9.0]), Some(Spread { median: 7.0, min: 5.0, max: 9.0 }));
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn a_rate_summary_takes_the_median_of_each_figure() {
        let steps = [step(1000, 1, true, 30.0), step(1000, 2, true, 50.0), step(1000, 3, true, 40.0)];
        let refs: Vec<&Step> = steps.iter().collect();
        let summary = RateSummary::of(&refs, 3).expect("steps");
        assert!(summary.pass);
        assert_eq!(summary.passed, 3);
        assert_eq!(summary.cpu_ms_per_1k, Some(Spread { median: 40.0, min: 30.0, max: 50.0 }));
        assert_eq!(summary.p99, Some(4.0));
        assert_eq!(summary.pss_mb, Some(40.0));
        // A figure some repetitions lack: the median of the others.
        let mut partial = steps.clone();
        partial[1].p50 = Some(2.0);
        let refs: Vec<&Step> = partial.iter().collect();
        assert_eq!(RateSummary::of(&refs, 3).expect("steps").p50, Some(2.0));
        assert_eq!(RateSummary::of(&[], 3), None);
    }

    #[test]
    fn a_rate_passes_only_if_every_repetition_passed() {
        let steps = [step(1000, 1, true, 30.0), step(1000, 2, false, 50.0), step(1000, 3, true, 40.0)];
        let refs: Vec<&Step> = steps.iter().collect();
        let summary = RateSummary::of(&refs, 3).expect("steps");
        assert!(!summary.pass);
        assert_eq!(summary.passed, 2);
        // A repetition without a result (the harness failed) does not pass.
        let refs: Vec<&Step> = steps.iter().filter(|s| s.pass).collect();
        assert!(!RateSummary::of(&refs, 3).expect("steps").pass);
        assert!(RateSummary::of(&refs, 2).expect("steps").pass);
    }

    #[test]
    fn the_highest_rate_passed_counts_every_repetition() {
        let r = result(
            2,
            vec![
                step(1000, 1, true, 30.0),
                step(1000, 2, true, 30.0),
                step(2000, 1, true, 30.0),
                step(2000, 2, false, 30.0),
            ],
        );
        assert_eq!(r.max_pass(), Some((1000, false)));
        let r = result(2, vec![step(1000, 1, true, 30.0), step(1000, 2, true, 30.0), step(2000, 1, true, 20.0)]);
        assert_eq!(r.max_pass(), Some((1000, false)), "a missing repetition");
        let r = result(1, vec![step(1000, 1, true, 30.0), step(2000, 1, true, 20.0)]);
        assert_eq!(r.max_pass(), Some((2000, true)));
        assert_eq!(result(1, vec![step(1000, 1, false, 30.0)]).max_pass(), None);
    }

    #[test]
    fn peak_pss_is_the_highest_median() {
        let r = result(
            3,
            vec![
                step(1000, 1, true, 10.0),
                step(2000, 1, true, 20.0),
                step(1000, 2, true, 90.0),
                step(2000, 2, true, 22.0),
                step(1000, 3, true, 11.0),
                step(2000, 3, true, 24.0),
            ],
        );
        assert_eq!(r.peak_pss(), Some(22.0));
        assert_eq!(r.rates(), [1000, 2000]);
    }

    #[test]
    fn cpu_cells() {
        let one = result(1, vec![step(1000, 1, true, 30.4)]);
        assert_eq!(cpu_cell(one.at(1000).as_ref(), 1), "30");
        assert_eq!(cpu_cell(one.at(2000).as_ref(), 1), "not run");
        let failed = result(1, vec![step(1000, 1, false, 30.0)]);
        assert_eq!(cpu_cell(failed.at(1000).as_ref(), 1), "30 (FAIL)");
        let three = result(3, vec![step(1000, 1, true, 30.0), step(1000, 2, false, 52.0), step(1000, 3, true, 41.0)]);
        assert_eq!(cpu_cell(three.at(1000).as_ref(), 3), "41 (30–52) (FAIL: 2 of 3 passed)");
    }

    #[test]
    fn options_repeat_and_floor() {
        let flags = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let args = BenchArgs::parse(&flags(&["--repeat", "3", "--proxies=floor,serc"]), &[]).expect("valid");
        assert_eq!(args.repeat, 3);
        assert_eq!(args.proxies, [SERC, FLOOR]);
        assert_eq!(BenchArgs::parse(&[], &[]).expect("valid").repeat, 1);
        assert!(BenchArgs::parse(&flags(&["--repeat", "0"]), &[]).is_err());
        assert!(BenchArgs::parse(&flags(&["--proxies", "bare"]), &[]).is_err());
        assert_eq!(BenchArgs::parse(&flags(&["--drain", "40"]), &[]).expect("valid").drain(), 40);
        assert_eq!(BenchArgs::parse(&[], &[]).expect("valid").drain(), DEFAULT_DRAIN);
        assert!(BenchArgs::parse(&flags(&["--drain", "121"]), &[]).is_err());
        assert!(BenchArgs::parse(&flags(&["--pgo"]), &[]).expect("valid").pgo);
        assert!(!BenchArgs::parse(&[], &[]).expect("valid").pgo);
        // The floor challenges where SIPp expects a 401 first.
        let challenged: Vec<&str> = SCENARIOS.iter().filter(|s| !s.floor_args.is_empty()).map(|s| s.name).collect();
        assert_eq!(challenged, ["register-auth", "register-auth-sqlite"]);
        // The SQLite variant is register-auth's SIPp pair with its own proxies.
        let variant = SCENARIOS.iter().find(|s| s.name == SQLITE_VARIANT).expect("a scenario");
        assert_eq!((variant.harness, variant.config), ("register-auth", SQLITE_VARIANT));
        assert!(SCENARIOS.iter().all(|s| s.config == s.name));
        let bins = Binaries { floor: Some(PathBuf::from("/f")), ..Binaries::default() };
        let register_auth = SCENARIOS.iter().find(|s| s.name == "register-auth").expect("a scenario");
        assert_eq!(proxy_command(FLOOR, register_auth, &bins, Path::new("/h")), ["/f", "--challenge"]);
        assert_eq!(proxy_command(FLOOR, &SCENARIOS[0], &bins, Path::new("/h")), ["/f"]);
    }

    #[test]
    fn axis_ceilings_are_round() {
        assert_eq!(nice_ceiling(3000.0), 5000.0);
        assert_eq!(nice_ceiling(12000.0), 20000.0);
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
