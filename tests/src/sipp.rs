//! SIPp (Debian's `sip-tester`) scenarios of `tests/sipp/`, run as UAS in the
//! background or as UAC to completion, on UDP ports of 127.0.0.1.
//!
//! Ports are chosen free (bound to 0, released); SIPp is started again on other
//! ports when it cannot bind them (exit code 254, `-2`). Each run writes its
//! statistics (`-trace_stat`), unexpected messages (`-trace_err`) and last screen
//! (`-trace_screen`) into its own directory under `<target>/serc-e2e/sipp/`,
//! kept when the run fails and named in the report.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::net::{free_udp_port, udp_port_taken};
use crate::{find_peer, tail, target_dir, terminate, wait_until};

/// SIPp's exit code when it cannot bind a socket (`-2`).
const BIND_FAILURE: i32 = 254;

/// How many times SIPp is started on other ports after a bind failure.
const BIND_ATTEMPTS: usize = 5;

/// The SIPp program.
#[derive(Clone, Debug)]
pub struct Sipp {
    bin: PathBuf,
}

/// How a scenario runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// `-m`: calls to make (UAC) or to take (UAS) before exiting.
    pub calls: u32,
    /// `-r`: calls per second (UAC).
    pub rate: u32,
    /// `-timeout` (with `-timeout_error`: reaching it is a failure).
    pub timeout: Duration,
    /// `-s`: the `[service]` of the scenario.
    pub service: String,
    /// `-key NAME VALUE`: `[NAME]` in the scenario.
    pub keys: Vec<(String, String)>,
    /// More arguments.
    pub extra: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            calls: 1,
            rate: 10,
            timeout: Duration::from_secs(30),
            service: "service".into(),
            keys: Vec::new(),
            extra: Vec::new(),
        }
    }
}

impl Options {
    pub fn calls(mut self, calls: u32, rate: u32) -> Options {
        self.calls = calls;
        self.rate = rate;
        self
    }

    pub fn key(mut self, name: &str, value: impl ToString) -> Options {
        self.keys.push((name.to_string(), value.to_string()));
        self
    }
}

/// The statistics of a run: the last line of its `-trace_stat` CSV file, by
/// column name (`SuccessfulCall(C)`, `FailedCall(C)` …; `(C)` is cumulative).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub fields: BTreeMap<String, String>,
}

impl Stats {
    fn parse(csv: &str) -> Stats {
        let lines: Vec<&str> = csv.lines().filter(|l| !l.trim().is_empty()).collect();
        let (Some(header), Some(last)) = (lines.first(), lines.last()) else { return Stats::default() };
        if lines.len() < 2 {
            return Stats::default();
        }
        let fields = header.split(';').map(str::to_string).zip(last.split(';').map(str::to_string)).collect();
        Stats { fields }
    }

    /// A counter.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.fields.get(name)?.trim().parse().ok()
    }

    pub fn created(&self) -> u64 {
        self.get("TotalCallCreated").unwrap_or(0)
    }

    pub fn successful(&self) -> u64 {
        self.get("SuccessfulCall(C)").unwrap_or(0)
    }

    pub fn failed(&self) -> u64 {
        self.get("FailedCall(C)").unwrap_or(0)
    }
}

/// How a SIPp run ended.
pub struct Outcome {
    pub scenario: PathBuf,
    /// `None`: it was killed (it did not finish in time).
    pub status: Option<ExitStatus>,
    pub stats: Stats,
    /// Unexpected messages (`-trace_err`).
    pub errors: String,
    /// The last statistics screen.
    pub screen: String,
    pub stderr: String,
    /// Where its files are (removed when it succeeded).
    pub dir: PathBuf,
}

impl Outcome {
    /// Exit code 0: every call succeeded.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Asserts that every one of `calls` calls succeeded, with the whole report
    /// if not.
    pub fn assert_all_successful(&self, calls: u64) {
        assert!(
            self.success() && self.stats.successful() == calls && self.stats.failed() == 0,
            "SIPp: expected {calls} successful calls\n{self}"
        );
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sipp {}: {} — created {}, successful {}, failed {} (files in {})",
            self.scenario.display(),
            self.status.map_or("killed after its timeout".to_string(), |s| s.to_string()),
            self.stats.created(),
            self.stats.successful(),
            self.stats.failed(),
            self.dir.display()
        )?;
        if !self.errors.is_empty() {
            writeln!(f, "--- unexpected messages (end) ---\n{}", tail(&self.errors, 16 * 1024))?;
        }
        if !self.screen.is_empty() {
            writeln!(f, "--- last screen ---\n{}", tail(&self.screen, 8 * 1024))?;
        }
        if !self.stderr.is_empty() {
            writeln!(f, "--- stderr ---\n{}", tail(&self.stderr, 8 * 1024))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A SIPp process started on a port; its files.
struct Run {
    child: Child,
    scenario: PathBuf,
    port: u16,
    dir: PathBuf,
}

impl Run {
    /// Waits for it to exit (up to `timeout`, then kills it) and reads its files.
    fn finish(mut self, timeout: Duration) -> Outcome {
        let status = match wait_until(&mut self.child, timeout) {
            Some(status) => Some(status),
            None => {
                terminate(&mut self.child, Duration::from_secs(2));
                None
            }
        };
        self.outcome(status)
    }

    fn outcome(&self, status: Option<ExitStatus>) -> Outcome {
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let outcome = Outcome {
            scenario: self.scenario.clone(),
            status,
            stats: Stats::parse(&read("stats.csv")),
            errors: read("errors.log"),
            screen: read("screen.log"),
            stderr: read("stderr.log"),
            dir: self.dir.clone(),
        };
        if outcome.success() {
            let _ = fs::remove_dir_all(&self.dir);
        }
        outcome
    }
}

/// A SIPp UAS running in the background; killed on drop.
pub struct Uas {
    run: Option<Run>,
    timeout: Duration,
}

impl Uas {
    /// Where it listens (UDP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.run.as_ref().expect("running").port))
    }

    /// Waits for it to take its calls and exit (up to its timeout and 15 s).
    pub fn finish(mut self) -> Outcome {
        self.run.take().expect("running").finish(self.timeout + Duration::from_secs(15))
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            terminate(&mut run.child, Duration::from_secs(2));
        }
    }
}

impl Sipp {
    /// SIPp, or `None` after a `SKIPPED` notice when it is not installed (a
    /// panic when `SERC_REQUIRE_PEERS` is set): see [`crate::find_peer`].
    pub fn find() -> Option<Sipp> {
        find_peer("sipp", "sip-tester").map(|bin| Sipp { bin })
    }

    /// Starts `scenario` as a UAS and returns once it listens.
    pub fn uas(&self, scenario: &Path, opts: &Options) -> Uas {
        for _ in 0..BIND_ATTEMPTS {
            let mut run = self.spawn(scenario, None, opts);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = run.child.try_wait() {
                    if status.code() == Some(BIND_FAILURE) {
                        break;
                    }
                    panic!("the SIPp UAS exited at start\n{}", run.outcome(Some(status)));
                }
                if udp_port_taken(run.port) {
                    return Uas { run: Some(run), timeout: opts.timeout };
                }
                if Instant::now() > deadline {
                    terminate(&mut run.child, Duration::from_secs(2));
                    panic!("the SIPp UAS did not bind port {} within 10 s\n{}", run.port, run.outcome(None));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("SIPp could not bind a port in {BIND_ATTEMPTS} attempts");
    }

    /// Runs `scenario` as a UAC sending to `remote`, to its end (its timeout and
    /// 15 s at most).
    pub fn uac(&self, scenario: &Path, remote: SocketAddr, opts: &Options) -> Outcome {
        for _ in 0..BIND_ATTEMPTS {
            let outcome = self.spawn(scenario, Some(remote), opts).finish(opts.timeout + Duration::from_secs(15));
            if outcome.status.and_then(|s| s.code()) != Some(BIND_FAILURE) {
                return outcome;
            }
        }
        panic!("SIPp could not bind a port in {BIND_ATTEMPTS} attempts");
    }

    /// Starts SIPp on free ports (signalling, media, control) with its files in
    /// a new directory.
    fn spawn(&self, scenario: &Path, remote: Option<SocketAddr>, opts: &Options) -> Run {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let stem = scenario.file_stem().map_or("scenario".into(), |s| s.to_string_lossy());
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = target_dir().join("serc-e2e").join("sipp").join(format!("{stem}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let port = free_udp_port();
        let file = |name: &str| File::create(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));

        let mut cmd = Command::new(&self.bin);
        if let Some(remote) = remote {
            cmd.arg(remote.to_string());
        }
        cmd.arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &free_udp_port().to_string(), "-cp", &free_udp_port().to_string()])
            .args(["-m", &opts.calls.to_string(), "-r", &opts.rate.to_string()])
            .args(["-timeout", &format!("{}s", opts.timeout.as_secs().max(1)), "-timeout_error"])
            .args(["-s", &opts.service])
            .args(["-nostdin", "-trace_err", "-trace_stat", "-fd", "1", "-trace_screen"])
            .arg("-error_file")
            .arg(dir.join("errors.log"))
            .arg("-stf")
            .arg(dir.join("stats.csv"))
            .arg("-screen_file")
            .arg(dir.join("screen.log"));
        for (name, value) in &opts.keys {
            cmd.args(["-key", name, value]);
        }
        cmd.args(&opts.extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(file("stdout.log"))
            .stderr(file("stderr.log"));
        fs::write(dir.join("command.txt"), format!("{cmd:?}\n")).ok();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        Run { child, scenario: scenario.to_path_buf(), port, dir }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_from_the_last_csv_line() {
        let csv = "StartTime;TotalCallCreated;SuccessfulCall(C);FailedCall(C);\n\
                   2026-11-26\t17:13:20;0;0;0;\n\
                   2026-11-26\t17:13:21;20;19;1;\n";
        let stats = Stats::parse(csv);
        assert_eq!((stats.created(), stats.successful(), stats.failed()), (20, 19, 1));
        assert_eq!(Stats::parse("").successful(), 0);
    }
}
