//! SQLite (rusqlite, SQLite compiled in): one connection to the file, used
//! from the database runtime's blocking threads one operation at a time.
//! WAL journal, so readers of other processes (`serc db`) do not block it;
//! `busy_timeout` set to the operation timeout for when another process
//! holds the write lock.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection};

use super::{datetime_text, split_batch, DbError, Row, Stmt, Value};

#[derive(Clone)]
pub(super) struct Sqlite {
    conn: Arc<Mutex<Connection>>,
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
        Ok(Sqlite { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.now(f))
            .await
            .map_err(|e| DbError::Query(format!("SQLite task failed: {e}")))?
    }

    /// Runs `f` on the connection on the calling thread (SQLite is a library
    /// call: a script function waiting for it needs no other thread; the
    /// connection's mutex orders the callers, `busy_timeout` bounds a lock
    /// another process holds).
    pub(super) fn now<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    pub(super) async fn query(&self, sql: String, params: Vec<Value>) -> Result<Vec<Row>, DbError> {
        self.with(move |conn| query_on(conn, &sql, &params)).await
    }

    pub(super) fn query_now(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.now(|conn| query_on(conn, sql, params))
    }

    pub(super) fn transaction_now(&self, stmts: &[Stmt]) -> Result<u64, DbError> {
        self.now(|conn| transaction_on(conn, stmts))
    }
}

fn query_on(conn: &mut Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
    let mut stmt = conn.prepare_cached(sql).map_err(err)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(params_from_iter(params.iter())).map_err(err)?;
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

fn transaction_on(conn: &mut Connection, stmts: &[Stmt]) -> Result<u64, DbError> {
    let tx = conn.transaction().map_err(err)?;
    let mut changed = 0u64;
    for s in stmts {
        let mut stmt = tx.prepare_cached(&s.sql).map_err(err)?;
        changed += stmt.execute(params_from_iter(s.params.iter())).map_err(err)? as u64;
    }
    tx.commit().map_err(err)?;
    Ok(changed)
}

impl Sqlite {
    pub(super) async fn transaction(&self, stmts: Vec<Stmt>) -> Result<u64, DbError> {
        self.with(move |conn| transaction_on(conn, &stmts)).await
    }

    pub(super) async fn batch(&self, sql: String) -> Result<(), DbError> {
        self.with(move |conn| {
            let tx = conn.transaction().map_err(err)?;
            for s in split_batch(&sql) {
                tx.execute(s, []).map_err(err)?;
            }
            tx.commit().map_err(err)
        })
        .await
    }
}
