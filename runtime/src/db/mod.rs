//! The database layer: OpenSER's `db_url`s on three backends, with one small
//! API the modules use.
//!
//! - [`DbUrl`]: `sqlite://PATH` (embedded, a file), `postgres://user:pass@host:port/db`,
//!   `mysql://user:pass@host:port/db` (MySQL and MariaDB) and `dbtext://DIR`
//!   (OpenSER's tables in text files, [`dbtext`]: an in-memory SQLite
//!   database that writes its changes back to the files). OpenSER's
//!   implicit default, [`OPENSER_DEFAULT_URL`] (a module that needs a database
//!   and names none), becomes the embedded SQLite file [`EMBEDDED_DEFAULT_PATH`]
//!   ([`DbUrl::for_module`]), with a warning.
//! - [`Db`]: a pool (deadpool-postgres, mysql_async's own, one SQLite
//!   connection) driven by a small tokio runtime of its own, so the connections
//!   outlive whatever runtime the caller is on: the async methods can be awaited
//!   from any tokio task, and [`Db::wait`] lets the synchronous script functions
//!   (registrar's `save`) block on one without stalling the proxy's other tasks.
//!   `query_now`/`transaction_now` are what script functions call: SQLite runs
//!   on the calling thread (a library call; its mutex orders the callers), a
//!   server's operation through [`Db::wait`].
//! - Every statement is parameterised (`?` placeholders, rewritten to `$n` for
//!   PostgreSQL) and bounded by the timeout the `Db` was opened with. Table
//!   and column names come from the config (modparams), never from messages,
//!   and are checked to be plain identifiers ([`ident`]). Nothing is built by
//!   pasting message data into SQL.
//! - Errors are values ([`DbError`]): a database that is down or slow gives an
//!   error the caller turns into a 500 and a log line; the pools open new
//!   connections on the next use, so service comes back by itself.
//! - [`schema`]: the OpenSER 1.3 table layouts in each dialect, `serc db init`
//!   and the check made at start (missing table, wrong version).
//! - [`users`]: `serc db add-user`/`remove-user`/`add-domain`, as openserctl did.
//!
//! Times are Unix seconds ([`Value::Time`]), stored as `DATETIME`/`TIMESTAMP`
//! in UTC (OpenSER 1.3 wrote the server's local time); SQLite stores them as
//! text, `YYYY-MM-DD HH:MM:SS`.

pub mod dbtext;
mod mysql;
mod postgres;
mod reads;
pub mod schema;
mod sqlite;
pub mod users;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The URL OpenSER 1.3 used when a module needing a database named none.
pub const OPENSER_DEFAULT_URL: &str = "mysql://openser:openserrw@localhost/openser";

/// Where serc keeps the embedded database instead (relative to the working directory).
pub const EMBEDDED_DEFAULT_PATH: &str = "openser.sqlite";

/// How long one operation (a pooled connection, a statement, a transaction)
/// may take before it is an error, unless the caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed `db_url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// `sqlite://PATH`: a file (created when missing); `sqlite://:memory:` for tests.
    Sqlite(PathBuf),
    /// `postgres://` (or `postgresql://`).
    Postgres(ServerUrl),
    /// `mysql://` (MySQL or MariaDB).
    Mysql(ServerUrl),
    /// `dbtext://DIR` (also `text://`): a directory of table files.
    Text(PathBuf),
}

/// The parts of a server URL: `scheme://[user[:password]@]host[:port]/database`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: Option<u16>,
    pub database: String,
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Shown without the password.
impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DbUrl::Postgres(s) => write!(f, "postgres://{s}"),
            DbUrl::Mysql(s) => write!(f, "mysql://{s}"),
            DbUrl::Text(p) => write!(f, "dbtext://{}", p.display()),
        }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.user.is_empty() {
            write!(f, "{}@", self.user)?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "/{}", self.database)
    }
}

impl DbUrl {
    /// Parses a `db_url`. Percent-escapes in the user and password are decoded.
    pub fn parse(text: &str) -> Result<DbUrl, DbError> {
        let bad = |why: &str| DbError::Url(format!("`{}`: {why}", redact(text)));
        let (scheme, rest) = text.trim().split_once("://").ok_or_else(|| {
            bad("expected sqlite://PATH, postgres://USER:PASS@HOST:PORT/DB, mysql://USER:PASS@HOST:PORT/DB \
                 or dbtext://DIRECTORY")
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => {
                if rest.is_empty() {
                    return Err(bad("no file after sqlite://"));
                }
                Ok(DbUrl::Sqlite(PathBuf::from(rest)))
            }
            "postgres" | "postgresql" => Ok(DbUrl::Postgres(server_url(rest).map_err(|w| bad(&w))?)),
            "mysql" | "mariadb" => Ok(DbUrl::Mysql(server_url(rest).map_err(|w| bad(&w))?)),
            "text" | "dbtext" => {
                if rest.is_empty() {
                    return Err(bad("no directory after dbtext://"));
                }
                Ok(DbUrl::Text(PathBuf::from(rest)))
            }
            other => Err(bad(&format!("unknown database `{other}` (serc has sqlite, postgres, mysql and dbtext)"))),
        }
    }

    /// The database a module uses: its `db_url` when the config set one, else
    /// the embedded SQLite file (OpenSER would have used
    /// [`OPENSER_DEFAULT_URL`]); `true` when it is that embedded default.
    pub fn for_module(explicit: Option<&str>) -> Result<(DbUrl, bool), DbError> {
        match explicit {
            Some(url) => Ok((DbUrl::parse(url)?, false)),
            None => Ok((DbUrl::Sqlite(PathBuf::from(EMBEDDED_DEFAULT_PATH)), true)),
        }
    }

    /// The SQL dialect of the backend.
    pub fn dialect(&self) -> Dialect {
        match self {
            DbUrl::Sqlite(_) | DbUrl::Text(_) => Dialect::Sqlite,
            DbUrl::Postgres(_) => Dialect::Postgres,
            DbUrl::Mysql(_) => Dialect::Mysql,
        }
    }
}

/// Opens the database of `module` at start-up: its `db_url` when the config
/// set one, else the embedded SQLite file (with a warning naming what
/// OpenSER 1.3 would have used, `openser_default`; its tables are created).
/// The error names the module.
pub async fn open_for_module(module: &str, explicit: Option<&str>, openser_default: &str) -> Result<Db, String> {
    let err = |e: DbError| format!("{module}: {e}");
    let (url, embedded) = DbUrl::for_module(explicit).map_err(err)?;
    if embedded {
        tracing::warn!(
            "{module}: no db_url: serc uses the embedded SQLite file {url} (OpenSER 1.3 would use {})",
            redact(openser_default)
        );
    }
    let database = Db::open(&url, DEFAULT_TIMEOUT).map_err(err)?;
    if embedded {
        schema::init(&database).await.map_err(err)?;
    }
    Ok(database)
}

/// The URL without its password, for messages.
pub fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &text[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &text[..s + 3], &text[at..]),
                None => text.to_string(),
            }
        }
        _ => text.to_string(),
    }
}

fn server_url(rest: &str) -> Result<ServerUrl, String> {
    let (creds, hostpart) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => ("", rest),
    };
    let (user, password) = match creds.split_once(':') {
        Some((u, p)) => (u, p),
        None => (creds, ""),
    };
    let (hostport, database) = hostpart.split_once('/').ok_or("no /DATABASE after the host")?;
    let database = database.split(['?', '#']).next().unwrap_or("");
    if database.is_empty() {
        return Err("no database name after the host".into());
    }
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, tail) = inner.split_once(']').ok_or("a `[` without `]`")?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| format!("`{p}` is not a port"))?),
            None if tail.is_empty() => None,
            None => return Err("`:` expected after `]`".into()),
        };
        (h.to_string(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().map_err(|_| format!("`{p}` is not a port"))?)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    Ok(ServerUrl {
        user: percent_decode(user),
        password: percent_decode(password),
        host,
        port,
        database: percent_decode(database),
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SQL dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// A value in a statement's parameters or a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    /// A `DATETIME`/`TIMESTAMP`, as Unix seconds (UTC).
    Time(i64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row; the accessors convert between what the backends return
/// (a time may come back as text from SQLite, an integer as text …).
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    pub fn get(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    pub fn int(&self, i: usize) -> Option<i64> {
        match self.get(i) {
            Value::Int(v) | Value::Time(v) => Some(*v),
            Value::Float(f) if f.is_finite() => Some(*f as i64),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn float(&self, i: usize) -> Option<f64> {
        match self.get(i) {
            Value::Int(v) => Some(*v as f64),
            Value::Float(f) => Some(*f),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn text(&self, i: usize) -> Option<String> {
        match self.get(i) {
            Value::Null => None,
            Value::Text(t) => Some(t.clone()),
            Value::Int(v) => Some(v.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Time(t) => Some(datetime_text(*t)),
        }
    }

    /// A time as Unix seconds: a time value, `YYYY-MM-DD HH:MM:SS` text, or seconds.
    pub fn time(&self, i: usize) -> Option<i64> {
        match self.get(i) {
            Value::Time(t) | Value::Int(t) => Some(*t),
            Value::Text(t) => parse_datetime(t).or_else(|| t.trim().parse().ok()),
            _ => None,
        }
    }
}

/// What went wrong with a database. The caller answers 500 and logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbError {
    /// The `db_url` does not parse or names what serc does not support.
    Url(String),
    /// No connection (refused, unreachable, authentication …).
    Connect(String),
    /// The operation took longer than the timeout.
    Timeout(Duration),
    /// The server refused a statement.
    Query(String),
    /// The tables are not what serc expects (missing, wrong version).
    Schema(String),
    /// A table or column name from the config is not a plain identifier.
    Name(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Url(m) => write!(f, "bad db_url {m}"),
            DbError::Connect(m) => write!(f, "cannot connect to the database: {m}"),
            DbError::Timeout(d) => write!(f, "the database did not answer within {} ms", d.as_millis()),
            DbError::Query(m) => write!(f, "database error: {m}"),
            DbError::Schema(m) => write!(f, "{m}"),
            DbError::Name(m) => write!(f, "`{m}` is not a valid table or column name (letters, digits, `_`)"),
        }
    }
}

impl std::error::Error for DbError {}

/// Checks that a table or column name is a plain SQL identifier (so it can
/// be written into a statement as it is).
pub fn ident(name: &str) -> Result<&str, DbError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(name)
    } else {
        Err(DbError::Name(name.to_string()))
    }
}

/// One statement of a transaction.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Stmt {
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Stmt {
        Stmt { sql: sql.into(), params }
    }
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
    Mysql(mysql::Mysql),
}

impl Backend {
    async fn query(&self, sql: String, params: Vec<Value>) -> Result<Vec<Row>, DbError> {
        match self {
            Backend::Sqlite(b) => b.query(sql, params).await,
            Backend::Postgres(b) => b.query(&sql, params).await,
            Backend::Mysql(b) => b.query(&sql, params).await,
        }
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> Result<u64, DbError> {
        match self {
            Backend::Sqlite(b) => b.transaction(stmts).await,
            Backend::Postgres(b) => b.transaction(stmts).await,
            Backend::Mysql(b) => b.transaction(stmts).await,
        }
    }

    async fn batch(&self, sql: String) -> Result<(), DbError> {
        match self {
            Backend::Sqlite(b) => b.batch(sql).await,
            Backend::Postgres(b) => b.batch(&sql).await,
            Backend::Mysql(b) => b.batch(&sql).await,
        }
    }
}

/// A database: cheap to clone (shared). See the module's documentation.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    url: DbUrl,
    backend: Backend,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db").field("url", &self.inner.url).finish()
    }
}

impl Db {
    /// Opens a database (no connection is made yet: the first operation
    /// connects, and a failed connection is retried by the next one). An
    /// SQLite file is created when missing.
    pub fn open(url: &DbUrl, timeout: Duration) -> Result<Db, DbError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("serc-db")
            .enable_all()
            .build()
            .map_err(|e| DbError::Connect(format!("no runtime for the database: {e}")))?;
        let handle = runtime.handle().clone();
        let backend = {
            let _guard = handle.enter();
            match url {
                DbUrl::Sqlite(path) => sqlite::Sqlite::open(path, timeout).map(Backend::Sqlite),
                DbUrl::Text(dir) => sqlite::Sqlite::open_text(dir).map(Backend::Sqlite),
                DbUrl::Postgres(s) => postgres::Postgres::new(s, timeout).map(Backend::Postgres),
                DbUrl::Mysql(s) => mysql::Mysql::new(s, timeout).map(Backend::Mysql),
            }
        };
        let backend = match backend {
            Ok(b) => b,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        Ok(Db { inner: Arc::new(Inner { url: url.clone(), backend, timeout, runtime: Some(runtime), handle }) })
    }

    /// The `Db` of `url` that another module of the proxy opened already (one
    /// pool per database, as OpenSER's modules on one `db_url` shared a
    /// connection per process), else a new one ([`Db::open`]).
    pub fn shared(url: &DbUrl, timeout: Duration) -> Result<Db, DbError> {
        static OPEN: std::sync::Mutex<Vec<(DbUrl, Duration, std::sync::Weak<Inner>)>> =
            std::sync::Mutex::new(Vec::new());
        let mut open = OPEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.retain(|(_, _, w)| w.strong_count() > 0);
        let found = open.iter().find(|(u, t, _)| u == url && *t == timeout).and_then(|(_, _, w)| w.upgrade());
        if let Some(inner) = found {
            return Ok(Db { inner });
        }
        let db = Db::open(url, timeout)?;
        open.push((url.clone(), timeout, Arc::downgrade(&db.inner)));
        Ok(db)
    }

    pub fn url(&self) -> &DbUrl {
        &self.inner.url
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.url.dialect()
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Runs `op` on the database's runtime, bounded by the timeout.
    fn run<T, F>(&self, op: F) -> impl Future<Output = Result<T, DbError>> + Send + 'static
    where
        T: Send + 'static,
        F: Future<Output = Result<T, DbError>> + Send + 'static,
    {
        let timeout = self.inner.timeout;
        let task = self.inner.handle.spawn(async move {
            match tokio::time::timeout(timeout, op).await {
                Ok(r) => r,
                Err(_) => Err(DbError::Timeout(timeout)),
            }
        });
        async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(DbError::Query(format!("database task failed: {e}"))),
            }
        }
    }

    /// Runs a query; its rows.
    pub fn query(
        &self,
        sql: impl Into<String>,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send + 'static {
        let backend = self.inner.backend.clone();
        let sql = sql.into();
        self.run(async move { backend.query(sql, params).await })
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(
        &self,
        sql: impl Into<String>,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<u64, DbError>> + Send + 'static {
        self.transaction(vec![Stmt::new(sql, params)])
    }

    /// Runs statements in one transaction: all or none; the rows changed.
    pub fn transaction(&self, stmts: Vec<Stmt>) -> impl Future<Output = Result<u64, DbError>> + Send + 'static {
        let backend = self.inner.backend.clone();
        self.run(async move { backend.transaction(stmts).await })
    }

    /// [`Db::query`] for a synchronous caller (a script function): the
    /// rows, waited for. SQLite runs on the calling thread — a library call
    /// needs no hop to the database's runtime and back, which cost a
    /// registrar with digest authentication most of its CPU; a server's
    /// query goes through [`Db::wait`].
    pub fn query_now(&self, sql: impl Into<String>, params: Vec<Value>) -> Result<Vec<Row>, DbError> {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.query_now(&sql.into(), &params),
            _ => self.wait(self.query(sql, params)),
        }
    }

    /// [`Db::transaction`] for a synchronous caller, as [`Db::query_now`].
    pub fn transaction_now(&self, stmts: Vec<Stmt>) -> Result<u64, DbError> {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.transaction_now(&stmts),
            _ => self.wait(self.transaction(stmts)),
        }
    }

    /// [`Db::execute`] for a synchronous caller, as [`Db::query_now`].
    pub fn execute_now(&self, sql: impl Into<String>, params: Vec<Value>) -> Result<u64, DbError> {
        self.transaction_now(vec![Stmt::new(sql, params)])
    }

    /// Runs statements without parameters, separated by `;` (DDL, from serc only).
    pub fn batch(&self, sql: impl Into<String>) -> impl Future<Output = Result<(), DbError>> + Send + 'static {
        let backend = self.inner.backend.clone();
        let sql = sql.into();
        self.run(async move { backend.batch(sql).await })
    }

    /// Runs a task on the database's runtime (a module's timer).
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.inner.handle.spawn(fut);
    }

    /// Waits for `fut` (one of this `Db`'s operations) from synchronous code:
    /// on a multi-threaded tokio runtime the worker hands its other tasks
    /// over while it waits (`block_in_place`); elsewhere (no runtime, or a
    /// current-thread one) the thread just waits. The operation itself runs
    /// on the database's runtime, so this never deadlocks.
    pub fn wait<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, DbError>> + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let recv = move || rx.recv();
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let got = if multi { tokio::task::block_in_place(recv) } else { recv() };
        // The sender is dropped without sending only if the runtime is shutting down.
        got.unwrap_or_else(|_| Err(DbError::Connect("the database's runtime stopped".into())))
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds.
pub fn datetime_text(t: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Unix seconds of `YYYY-MM-DD HH:MM:SS` (or `T` between, fractions ignored), UTC.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, time) = t.split_once([' ', 'T']).unwrap_or((t, "00:00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let time = time.split(['.', '+', 'Z']).next()?;
    let mut tm = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (tm.next()??, tm.next().unwrap_or(Some(0))?, tm.next().unwrap_or(Some(0))?);
    if !(0..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(unix(y, mo, da, h, mi, s))
}

/// Civil date and time (UTC) of Unix seconds (proleptic Gregorian calendar).
pub fn civil(t: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Days since 1970-01-01 → (y, m, d), after H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Unix seconds of a civil date and time (UTC).
pub fn unix(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + mi * 60 + s
}

/// `?` placeholders → `$1`, `$2` … (PostgreSQL). serc's statements have no
/// `?` inside literals.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a batch of DDL at `;` (serc's own statements: no `;` in literals).
fn split_batch(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(';').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(DbUrl::parse("sqlite:///tmp/x.db").unwrap(), DbUrl::Sqlite("/tmp/x.db".into()));
        assert_eq!(DbUrl::parse("sqlite://rel.db").unwrap(), DbUrl::Sqlite("rel.db".into()));
        assert_eq!(DbUrl::parse("dbtext:///tmp/openserdb").unwrap(), DbUrl::Text("/tmp/openserdb".into()));
        assert_eq!(DbUrl::parse("text://rel").unwrap().to_string(), "dbtext://rel");
        let DbUrl::Postgres(p) = DbUrl::parse("postgres://u:p%40ss@127.0.0.1:5433/openser").unwrap() else { panic!() };
        assert_eq!((p.user.as_str(), p.password.as_str(), p.host.as_str()), ("u", "p@ss", "127.0.0.1"));
        assert_eq!((p.port, p.database.as_str()), (Some(5433), "openser"));
        let DbUrl::Mysql(m) = DbUrl::parse(OPENSER_DEFAULT_URL).unwrap() else { panic!() };
        assert_eq!(
            (m.user.as_str(), m.password.as_str(), m.host.as_str(), m.port),
            ("openser", "openserrw", "localhost", None)
        );
        let DbUrl::Mysql(m) = DbUrl::parse("mysql://[::1]:3307/db").unwrap() else { panic!() };
        assert_eq!((m.host.as_str(), m.port), ("::1", Some(3307)));
        for bad in [
            "",
            "openser",
            "sqlite://",
            "mysql://host",
            "mysql://host/",
            "mysql://h:99999/db",
            "dbtext://",
            "oracle://x/y",
            "mysql://:3306/db",
        ] {
            assert!(DbUrl::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(redact("mysql://openser:openserrw@localhost/openser"), "mysql://openser:***@localhost/openser");
        assert!(!format!("{}", DbUrl::parse(OPENSER_DEFAULT_URL).unwrap()).contains("openserrw"));
        assert_eq!(DbUrl::for_module(None).unwrap(), (DbUrl::Sqlite(EMBEDDED_DEFAULT_PATH.into()), true));
    }

    #[test]
    fn times_round_trip() {
        for t in [0, 1, 86_399, 951_782_400, 1_700_000_000, -2_208_988_799, 4_102_444_800] {
            assert_eq!(parse_datetime(&datetime_text(t)), Some(t), "{t}");
        }
        assert_eq!(datetime_text(0), "1970-01-01 00:00:00");
        assert_eq!(parse_datetime("2020-05-28 21:32:15"), Some(1_590_701_535));
        assert_eq!(parse_datetime("1900-01-01 00:00:01"), Some(-2_208_988_799));
        assert_eq!(parse_datetime("nonsense"), None);
        assert_eq!(parse_datetime("2020-13-01 00:00:00"), None);
        assert_eq!(parse_datetime("99999999999999999-01-01 00:00:00"), None);
    }

    #[test]
    fn identifiers_and_placeholders() {
        assert!(ident("username").is_ok());
        assert!(ident("user_agent2").is_ok());
        for bad in ["", "1x", "a b", "x;drop", "a\"b", "a-b"] {
            assert!(ident(bad).is_err(), "{bad:?}");
        }
        assert_eq!(numbered_placeholders("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(split_batch("a; b ;; ").collect::<Vec<_>>(), ["a", "b"]);
    }
}
