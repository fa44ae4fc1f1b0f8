//! SQLite (rusqlite, SQLite compiled in): one connection to the file, used
//! from the database runtime's blocking threads one operation at a time.
//! WAL journal, so readers of other processes (`serc db`) do not block it;
//! `busy_timeout` set to the operation timeout for when another process
//! holds the write lock.
//!
//! A dbtext directory ([`super::dbtext`]) is an in-memory connection with
//! its tables loaded; each operation asks it first whether a file changed,
//! and a write's transaction writes the tables it changed before it commits.
//!
//! Either way, a plain `SELECT` asked again is answered from memory until the
//! tables may have changed ([`super::reads`]).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection};

use super::dbtext::TextDb;
use super::reads::Reads;
use super::{datetime_text, split_batch, DbError, Row, Stmt, Value};

#[derive(Clone)]
pub(super) struct Sqlite {
    conn: Arc<Mutex<State>>,
}

struct State {
    conn: Connection,
    /// The text tables the connection mirrors (a `dbtext://` URL).
    text: Option<TextDb>,
    /// Answers to repeated reads.
    reads: Reads,
}

/// What an operation does, for a dbtext directory's bookkeeping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

fn err(e: rusqlite::Error) -> DbError {
    DbError::Query(e.to_string())
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
            Value::Float(f) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*f)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Time(t) => ToSqlOutput::Owned(rusqlite::types::Value::Text(datetime_text(*t))),
        })
    }
}

impl Sqlite {
    pub(super) fn open(path: &Path, timeout: Duration) -> Result<Sqlite, DbError> {
        let conn = Connection::open(path)
            .map_err(|e| DbError::Connect(format!("cannot open the SQLite file {}: {e}", path.display())))?;
        conn.busy_timeout(timeout).map_err(err)?;
        // WAL is refused for in-memory databases; that is fine.
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        Ok(Sqlite { conn: Arc::new(Mutex::new(State { conn, text: None, reads: Reads::default() })) })
    }

    /// A dbtext directory: its tables loaded into an in-memory database.
    pub(super) fn open_text(dir: &Path) -> Result<Sqlite, DbError> {
        let conn = Connection::open_in_memory().map_err(|e| DbError::Connect(format!("no in-memory database: {e}")))?;
        let text = TextDb::open(dir, &conn)?;
        Ok(Sqlite { conn: Arc::new(Mutex::new(State { conn, text: Some(text), reads: Reads::default() })) })
    }

    async fn with<T: Send + 'static>(
        &self,
        op: Op,
        f: impl FnOnce(&mut Connection, Times, Option<&mut TextDb>, &mut Reads) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.now(op, f))
            .await
            .map_err(|e| DbError::Query(format!("SQLite task failed: {e}")))?
    }

    /// Runs `f` on the connection on the calling thread (SQLite is a library
    /// call: a script function waiting for it needs no other thread; the
    /// connection's mutex orders the callers, `busy_timeout` bounds a lock
    /// another process holds). A dbtext directory's changed files are read
    /// first, and `f`, a write, writes the tables it changes before it commits.
    /// After a write, committed or not, no read is answered from memory as before.
    fn now<T>(
        &self,
        op: Op,
        f: impl FnOnce(&mut Connection, Times, Option<&mut TextDb>, &mut Reads) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut state = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let State { conn, text, reads } = &mut *state;
        let result = match text {
            None => f(conn, Times::Text, None, reads),
            Some(text) => {
                text.before(conn, op != Op::Read)?;
                let result = f(conn, Times::Seconds, Some(&mut *text), reads);
                if op != Op::Read {
                    text.settled();
                }
                result
            }
        };
        if op != Op::Read {
            reads.clear();
        }
        result
    }

    pub(super) async fn query(&self, sql: String, params: Vec<Value>) -> Result<Vec<Row>, DbError> {
        self.with(Op::Read, move |conn, times, text, reads| read_on(conn, &sql, &params, times, text, reads)).await
    }

    pub(super) fn query_now(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.now(Op::Read, |conn, times, text, reads| read_on(conn, sql, params, times, text, reads))
    }

    pub(super) fn transaction_now(&self, stmts: &[Stmt]) -> Result<u64, DbError> {
        self.now(Op::Write, |conn, times, text, _| transaction_on(conn, stmts, times, text))
    }

    /// The connection and its dbtext bookkeeping as they are, nothing read
    /// again or written (tests: a change made behind dbtext's back).
    #[cfg(test)]
    pub(super) fn raw<T>(&self, f: impl FnOnce(&Connection, Option<&mut TextDb>) -> T) -> T {
        let mut state = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let State { conn, text, .. } = &mut *state;
        f(conn, text.as_mut())
    }
}

/// How a time parameter is bound: as SQLite's `YYYY-MM-DD HH:MM:SS` text, or
/// as Unix seconds (dbtext, whose tables keep times in `int` columns).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Times {
    Text,
    Seconds,
}

/// A parameter bound the way [`Times`] says.
struct Bind<'a>(&'a Value, Times);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match (self.0, self.1) {
            (Value::Time(t), Times::Seconds) => Ok(ToSqlOutput::Owned(rusqlite::types::Value::Integer(*t))),
            (v, _) => v.to_sql(),
        }
    }
}

fn binds(params: &[Value], times: Times) -> impl Iterator<Item = Bind<'_>> {
    params.iter().map(move |p| Bind(p, times))
}

fn query_on(conn: &mut Connection, sql: &str, params: &[Value], times: Times) -> Result<Vec<Row>, DbError> {
    let mut stmt = conn.prepare_cached(sql).map_err(err)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(params_from_iter(binds(params, times))).map_err(err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(err)? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(match row.get_ref(i).map_err(err)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Float(f),
                ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

/// A query, answered from memory if it was asked before and the tables
/// have not changed since ([`Reads::read`]). The database's version: for a
/// dbtext directory the count of its tables loaded again; for a file
/// SQLite's `data_version`, which moves when another connection commits.
fn read_on(
    conn: &mut Connection,
    sql: &str,
    params: &[Value],
    times: Times,
    text: Option<&mut TextDb>,
    reads: &mut Reads,
) -> Result<Vec<Row>, DbError> {
    let version = match text {
        Some(text) => text.loads(),
        None => {
            let v: i64 = conn
                .prepare_cached("PRAGMA data_version")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(err)?;
            v as u64
        }
    };
    reads.read(version, sql, params, || query_on(conn, sql, params, times))
}

/// Runs `stmts` in one transaction; a dbtext directory's tables are written
/// before it commits (an error there rolls it back).
fn transaction_on(
    conn: &mut Connection,
    stmts: &[Stmt],
    times: Times,
    text: Option<&mut TextDb>,
) -> Result<u64, DbError> {
    let tx = conn.transaction().map_err(err)?;
    let mut changed = 0u64;
    for s in stmts {
        let mut stmt = tx.prepare_cached(&s.sql).map_err(err)?;
        changed += stmt.execute(params_from_iter(binds(&s.params, times))).map_err(err)? as u64;
    }
    if let Some(text) = text {
        text.write_changed(&tx, false)?;
    }
    tx.commit().map_err(err)?;
    Ok(changed)
}

impl Sqlite {
    pub(super) async fn transaction(&self, stmts: Vec<Stmt>) -> Result<u64, DbError> {
        self.with(Op::Write, move |conn, times, text, _| transaction_on(conn, &stmts, times, text)).await
    }

    pub(super) async fn batch(&self, sql: String) -> Result<(), DbError> {
        self.with(Op::Write, move |conn, _, text, _| {
            let tx = conn.transaction().map_err(err)?;
            for s in split_batch(&sql) {
                tx.execute(s, []).map_err(err)?;
            }
            // serc's schema (`serc db init`): every table is written.
            if let Some(text) = text {
                text.write_changed(&tx, true)?;
            }
            tx.commit().map_err(err)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SQLite file of its own, removed with its WAL files when dropped.
    struct File(std::path::PathBuf);

    impl Drop for File {
        fn drop(&mut self) {
            for end in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{end}", self.0.display()));
            }
        }
    }

    #[test]
    fn repeated_reads_of_a_file_see_other_connections_commits_and_its_own_writes() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let file = File(std::env::temp_dir().join(format!("serc-reads-{}-{nanos}.sqlite", std::process::id())));
        let db = Sqlite::open(&file.0, Duration::from_secs(5)).unwrap();
        let create = "CREATE TABLE subscriber (username TEXT, password TEXT)";
        let insert = "INSERT INTO subscriber VALUES ('alice', 'secret')";
        db.transaction_now(&[Stmt::new(create, vec![]), Stmt::new(insert, vec![])]).unwrap();
        let sql = "SELECT password FROM subscriber WHERE username = ?";
        let password = |db: &Sqlite| db.query_now(sql, &[Value::from("alice")]).unwrap()[0].text(0).unwrap();
        assert_eq!(password(&db), "secret");
        // Changed on its own connection behind its back: answered from memory.
        db.raw(|conn, _| conn.execute("UPDATE subscriber SET password = 'behind'", []).unwrap());
        assert_eq!(password(&db), "secret");
        // Another connection's commit (`serc db add-user`, another process) is seen.
        let other = Connection::open(&file.0).unwrap();
        other.execute("UPDATE subscriber SET password = 'other'", []).unwrap();
        assert_eq!(password(&db), "other");
        // And its own writes.
        db.transaction_now(&[Stmt::new("UPDATE subscriber SET password = ?", vec![Value::from("own")])]).unwrap();
        assert_eq!(password(&db), "own");
    }
}
