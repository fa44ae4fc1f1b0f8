//! Throwaway database servers for tests: PostgreSQL and MariaDB started by
//! the test itself on 127.0.0.1 with a free port, in a temporary data
//! directory removed when the server is dropped; and temporary SQLite files.
//!
//! When a server's binaries are not installed the helpers return `None`
//! after printing why (the test then passes as skipped), unless
//! `SERC_REQUIRE_PEERS` is set (`cargo xtask test`, CI), where they panic.
//! Root runs PostgreSQL as the `postgres` user (`runuser`), as PostgreSQL
//! refuses to run as root; MariaDB runs with `--user=root`.
//!
//! Included by path from other crates' tests: depends on std only.

#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "serc-{what}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `sqlite://` URL of a file in this directory.
    pub fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn required() -> bool {
    std::env::var_os("SERC_REQUIRE_PEERS").is_some()
}

/// `None` (a skip, printed) or a panic under `SERC_REQUIRE_PEERS`.
fn missing<T>(what: &str, package: &str) -> Option<T> {
    let msg = format!("{what} is not installed (Debian package `{package}`; `cargo xtask test` installs it)");
    if required() {
        panic!("{msg}, and SERC_REQUIRE_PEERS is set");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn is_root() -> bool {
    // SAFETY-free: `id -u` rather than libc.
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A PostgreSQL server of its own; stopped and removed on drop.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
    as_postgres: bool,
}

impl Postgres {
    /// initdb + pg_ctl start (trust authentication, user `postgres`), or a skip.
    pub fn start() -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
            .max();
        let Some(bin) = bin else { return missing("PostgreSQL (initdb, pg_ctl)", "postgresql") };
        let dir = TempDir::new("pg");
        let as_postgres = is_root();
        let data = dir.path().join("data");
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres").arg(dir.path())).expect("chown");
        }
        let pg = Postgres { port: free_port(), bin, dir, as_postgres };
        pg.cmd("initdb")
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .map_err(|e| e.to_string())
            .and_then(
                |o| if o.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&o.stderr).into_owned()) },
            )
            .expect("initdb");
        pg.start_again();
        Some(pg)
    }

    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c.current_dir(self.dir.path());
            c
        } else {
            Command::new(exe)
        }
    }

    /// Starts the server (again, after [`Postgres::stop`]) on the same port.
    pub fn start_again(&self) {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        run(self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(opts)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"]))
        .expect("pg_ctl start");
        assert!(wait_for_port(self.port, Duration::from_secs(30)), "PostgreSQL listens");
    }

    /// Stops the server at once (the data stays).
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        let _ = run(self.cmd("pg_ctl").arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]));
    }

    /// Creates a database; its URL.
    pub fn create_db(&self, name: &str) -> String {
        run(self.cmd("createdb").args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name]))
            .expect("createdb");
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres:unused@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A MariaDB server of its own (`--skip-grant-tables`: any user, any
/// password); killed and removed on drop.
pub struct Mariadb {
    pub port: u16,
    child: Option<Child>,
    exe: PathBuf,
    dir: TempDir,
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Mariadb {
    /// mariadb-install-db + mariadbd, or a skip.
    pub fn start() -> Option<Mariadb> {
        let (Some(exe), Some(install)) = (find("mariadbd"), find("mariadb-install-db")) else {
            return missing("MariaDB (mariadbd, mariadb-install-db)", "mariadb-server");
        };
        let dir = TempDir::new("maria");
        let data = dir.path().join("data");
        run(Command::new(install).arg("--no-defaults").arg(format!("--datadir={}", data.display())).args([
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]))
        .expect("mariadb-install-db");
        let mut m = Mariadb { port: free_port(), child: None, exe, dir };
        m.start_again();
        Some(m)
    }

    /// Starts the server (again, after [`Mariadb::stop`]) on the same port.
    pub fn start_again(&mut self) {
        let d = self.dir.path();
        let child = Command::new(&self.exe)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("log").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        if !wait_for_port(self.port, Duration::from_secs(60)) {
            let log = std::fs::read_to_string(d.join("log")).unwrap_or_default();
            panic!("MariaDB does not listen on {}: {log}", self.port);
        }
    }

    /// Kills the server (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Creates a database (with the `mariadb` client); its URL.
    pub fn create_db(&self, name: &str) -> String {
        let client = find("mariadb").or_else(|| find("mysql")).expect("the mariadb client (mariadb-client)");
        run(Command::new(client)
            .args(["--no-defaults", "-h", "127.0.0.1", "-u", "root", "-P", &self.port.to_string(), "-e"])
            .arg(format!("CREATE DATABASE {name}")))
        .expect("CREATE DATABASE");
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://root:unused@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.stop();
    }
}
