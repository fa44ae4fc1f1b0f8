//! A built proxy, running.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{tail, terminate, wait_until};

/// How long a proxy may take to bind its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long SIGTERM may take to stop it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy process listening on ephemeral ports of 127.0.0.1 (UDP and TCP),
/// stopped with SIGTERM on drop. Its stderr (the log) is kept for diagnosis,
/// and printed when the test panics.
pub struct Proxy {
    child: Option<Child>,
    bin: PathBuf,
    udp: SocketAddr,
    tcp: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

/// A `listening on PROTO:IP:PORT` line: the protocol and the address.
pub fn parse_listening_line(line: &str) -> Option<(&str, SocketAddr)> {
    let rest = line.trim_end().strip_prefix("listening on ")?;
    let (proto, addr) = rest.split_once(':')?;
    Some((proto, addr.parse().ok()?))
}

/// Reads a pipe line by line into `log` (and each line to `lines`, while someone
/// listens).
fn drain<R: Read + Send + 'static>(
    pipe: R,
    log: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    log.lock().unwrap_or_else(|p| p.into_inner()).push_str(&text);
                    if let Some(lines) = &lines {
                        let _ = lines.send(text);
                    }
                }
            }
        }
    })
}

/// Starts the proxy. A binary just written may be busy for a moment ("Text file
/// busy": a child forked meanwhile by another thread still holds the descriptor
/// it was written through): retried then.
fn spawn(bin: &Path, args: &[&str], dir: Option<&Path>) -> Child {
    let mut attempts = 0;
    loop {
        let mut command = Command::new(bin);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let spawned = command
            .args(["--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Ok(child) => return child,
            Err(e) if e.kind() == ErrorKind::ExecutableFileBusy && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot start {}: {e}", bin.display()),
        }
    }
}

impl Proxy {
    /// Starts `bin --listen udp:127.0.0.1:0 --listen tcp:127.0.0.1:0 ARGS…` and
    /// waits (up to 60 s) for the two `listening on …` lines on its stdout.
    /// Panics, with its stderr, if it exits or does not report both ports.
    pub fn start(bin: &Path, args: &[&str]) -> Proxy {
        Proxy::start_in(bin, args, None)
    }

    /// [`Proxy::start`] in the working directory `dir` (where the embedded
    /// database of a config without `db_url` is).
    pub fn start_in(bin: &Path, args: &[&str], dir: Option<&Path>) -> Proxy {
        let mut child = spawn(bin, args, dir);
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        drain(child.stdout.take().expect("piped stdout"), stdout.clone(), Some(tx));
        let stderr_reader = Some(drain(child.stderr.take().expect("piped stderr"), stderr.clone(), None));
        let mut proxy = Proxy {
            child: Some(child),
            bin: bin.to_path_buf(),
            udp: SocketAddr::from(([0, 0, 0, 0], 0)),
            tcp: SocketAddr::from(([0, 0, 0, 0], 0)),
            stdout,
            stderr,
            stderr_reader,
        };

        let deadline = Instant::now() + START_TIMEOUT;
        let (mut udp, mut tcp) = (None, None);
        while udp.is_none() || tcp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => match parse_listening_line(&line) {
                    Some(("udp", addr)) => udp = udp.or(Some(addr)),
                    Some(("tcp", addr)) => tcp = tcp.or(Some(addr)),
                    _ => {}
                },
                Err(RecvTimeoutError::Timeout) => {
                    proxy.fail(&format!("did not report its UDP and TCP ports within {START_TIMEOUT:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => proxy.fail("closed its stdout before reporting its ports"),
            }
        }
        proxy.udp = udp.expect("set above");
        proxy.tcp = tcp.expect("set above");
        proxy
    }

    /// The UDP socket it listens on.
    pub fn udp(&self) -> SocketAddr {
        self.udp
    }

    /// The TCP socket it listens on.
    pub fn tcp(&self) -> SocketAddr {
        self.tcp
    }

    /// `sip:IP:PORT` of its UDP socket (an OPTIONS to the proxy itself).
    pub fn uri(&self) -> String {
        format!("sip:{}", self.udp)
    }

    /// Its log so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The rest of the first stdout line starting with `prefix` (e.g.
    /// `management on http:`), waiting for it up to 10 s; `None` when it
    /// does not come.
    pub fn stdout_line(&self, prefix: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.stdout();
            if let Some(rest) = out.lines().find_map(|l| l.strip_prefix(prefix)) {
                return Some(rest.trim().to_string());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops it with SIGTERM and returns how it exited; panics (with its log) if
    /// SIGTERM did not stop it within 10 s.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let (status, by_sigterm) = terminate(&mut child, STOP_TIMEOUT);
        self.join_stderr();
        if !by_sigterm {
            panic!("{} ignored SIGTERM for {STOP_TIMEOUT:?} (killed)\n{}", self.bin.display(), self.log_excerpt());
        }
        status.expect("a reaped child has a status")
    }

    fn join_stderr(&mut self) {
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }

    fn log_excerpt(&self) -> String {
        format!(
            "--- {} stdout ---\n{}--- stderr (end) ---\n{}",
            self.bin.display(),
            self.stdout(),
            tail(&self.stderr(), 64 * 1024)
        )
    }

    /// Panics with `what`, how the process ended and its output.
    fn fail(&mut self, what: &str) -> ! {
        let mut child = self.child.take().expect("running");
        let status = match wait_until(&mut child, Duration::from_millis(500)) {
            Some(status) => format!("exited: {status}"),
            None => {
                let (status, _) = terminate(&mut child, Duration::from_secs(2));
                format!("still running, stopped ({status:?})")
            }
        };
        self.join_stderr();
        panic!("proxy {} {what} ({status})\n{}", self.bin.display(), self.log_excerpt());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let (status, _) = terminate(&mut child, STOP_TIMEOUT);
        if std::thread::panicking() {
            self.join_stderr();
            let status = status.map_or("an unknown status".to_string(), |s| s.to_string());
            eprintln!("proxy stopped: {status}\n{}", self.log_excerpt());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines() {
        assert_eq!(
            parse_listening_line("listening on udp:127.0.0.1:5060\n"),
            Some(("udp", "127.0.0.1:5060".parse().unwrap()))
        );
        assert_eq!(parse_listening_line("listening on tcp:[::1]:5061"), Some(("tcp", "[::1]:5061".parse().unwrap())));
        assert_eq!(parse_listening_line("listening on udp:127.0.0.1"), None);
        assert_eq!(parse_listening_line("starting"), None);
    }
}
