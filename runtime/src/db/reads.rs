//! Answers to repeated reads, for the SQLite backend (a file or a dbtext
//! directory).
//!
//! A plain `SELECT` (no function call, no `CURRENT_…`, one statement) asked
//! again with the same parameters is answered with the rows it gave, until the
//! tables may have changed. [`super::sqlite`] forgets the answers:
//! - after every write through its connection, committed or rolled back;
//! - after any other statement run as a read (a config's `avp_db_query` may
//!   run an `UPDATE`);
//! - when the database's version moved: for a file, SQLite's `PRAGMA
//!   data_version`, which changes when another connection, of any process
//!   (`serc db add-user`), commits; for a dbtext directory, the count of its
//!   tables loaded again from their files ([`super::dbtext::TextDb::loads`]).
//!
//! So an answer is the one SQLite would give. A registrar with digest
//! authentication reads the same subscriber on every REGISTER; that query
//! cost more than the rest of its authorization, and at low rates SQLite's
//! large code is fetched cold for each one.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use super::{DbError, Row, Value};

/// The rows plain `SELECT`s returned, by statement and parameters, while
/// the tables stay as they were (see the module's documentation for who
/// empties it, and when).
///
/// Bounded: at most [`Reads::MAX`] answers of at most [`Reads::MAX_ROWS`]
/// rows each (a bigger answer is not kept); a full cache is emptied before
/// the next answer goes in, so names never seen again (a scan of usernames)
/// cannot grow it. One answer per hash of statement and parameters: the rare
/// other question with the same hash replaces it, and a lookup compares both.
#[derive(Default)]
pub(super) struct Reads {
    hasher: RandomState,
    answers: HashMap<u64, Answer>,
    /// The database's version the answers were given at (see [`Reads::read`]).
    version: Option<u64>,
}

struct Answer {
    sql: Box<str>,
    params: Box<[Value]>,
    rows: Vec<Row>,
}

impl Reads {
    const MAX: usize = 1024;
    const MAX_ROWS: usize = 32;

    /// A read: the answer kept for `sql` and `params` if the database is
    /// still at `version` (a number that moves whenever its tables may have
    /// changed other than through this connection's writes), else `run`'s,
    /// kept if `sql` is a plain `SELECT`. Anything else forgets every answer
    /// after it runs: it may have changed the tables.
    pub(super) fn read(
        &mut self,
        version: u64,
        sql: &str,
        params: &[Value],
        run: impl FnOnce() -> Result<Vec<Row>, DbError>,
    ) -> Result<Vec<Row>, DbError> {
        if self.version != Some(version) {
            self.clear();
            self.version = Some(version);
        }
        let key = self.key(sql, params);
        // Only a plain SELECT's answer is kept: a statement found needs no other check.
        if let Some(rows) = self.get(key, sql, params) {
            return Ok(rows.to_vec());
        }
        if !Self::cacheable(sql) {
            let rows = run();
            self.clear();
            return rows;
        }
        let rows = run()?;
        self.put(key, sql, params, &rows);
        Ok(rows)
    }

    /// Whether `sql` is a plain `SELECT`, whose answer depends only on the
    /// tables and its parameters: no function call (SQLite's `random()`,
    /// `datetime('now')` …), no `CURRENT_TIME`/`_DATE`/`_TIMESTAMP`, one statement.
    fn cacheable(sql: &str) -> bool {
        let sql = sql.trim_start().as_bytes();
        sql.len() > 6
            && sql[..6].eq_ignore_ascii_case(b"SELECT")
            && !sql.iter().any(|b| matches!(b, b'(' | b';'))
            && !sql.windows(8).any(|w| w.eq_ignore_ascii_case(b"CURRENT_"))
    }

    fn key(&self, sql: &str, params: &[Value]) -> u64 {
        let mut h = self.hasher.build_hasher();
        sql.hash(&mut h);
        params.len().hash(&mut h);
        for p in params {
            match p {
                Value::Null => 0u8.hash(&mut h),
                Value::Int(i) => (1u8, i).hash(&mut h),
                Value::Float(f) => (2u8, f.to_bits()).hash(&mut h),
                Value::Text(t) => (3u8, t).hash(&mut h),
                Value::Time(t) => (4u8, t).hash(&mut h),
            }
        }
        h.finish()
    }

    fn get(&self, key: u64, sql: &str, params: &[Value]) -> Option<&[Row]> {
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        };
        let a = self.answers.get(&key)?;
        let hit =
            &*a.sql == sql && a.params.len() == params.len() && a.params.iter().zip(params).all(|(x, y)| same(x, y));
        hit.then_some(&a.rows[..])
    }

    fn put(&mut self, key: u64, sql: &str, params: &[Value], rows: &[Row]) {
        if rows.len() > Self::MAX_ROWS {
            return;
        }
        if self.answers.len() >= Self::MAX {
            self.clear();
        }
        self.answers.insert(key, Answer { sql: sql.into(), params: params.into(), rows: rows.to_vec() });
    }

    /// Forgets every answer (after a write).
    pub(super) fn clear(&mut self) {
        self.answers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_that_moves_forgets_the_answers() {
        let sql = "SELECT a FROM t";
        let mut runs = 0;
        let read = |reads: &mut Reads, version: u64, runs: &mut u32| {
            reads.read(version, sql, &[], || {
                *runs += 1;
                Ok(vec![Row(vec![Value::Int(i64::from(*runs))])])
            })
        };
        let mut reads = Reads::default();
        let first = read(&mut reads, 7, &mut runs).unwrap();
        assert_eq!(read(&mut reads, 7, &mut runs).unwrap(), first);
        assert_eq!(runs, 1);
        assert_ne!(read(&mut reads, 8, &mut runs).unwrap(), first);
        assert_eq!(runs, 2);
        // An error is not kept.
        let e = reads.read(8, "SELECT b FROM t", &[], || Err(DbError::Query("no such table".into())));
        assert!(e.is_err());
        assert_eq!(reads.answers.len(), 1);
    }

    #[test]
    fn what_reads_keep_is_bounded_and_exact() {
        let row = |v: &str| Row(vec![Value::from(v)]);
        let mut reads = Reads::default();
        let sql = "SELECT a FROM t WHERE b = ?";
        for i in 0..Reads::MAX + 10 {
            let params = [Value::Int(i as i64)];
            reads.put(reads.key(sql, &params), sql, &params, &[row("x")]);
            assert!(reads.answers.len() <= Reads::MAX);
        }
        // An answer of many rows is not kept.
        let many = vec![row("y"); Reads::MAX_ROWS + 1];
        let params = [Value::Text("many".into())];
        reads.put(reads.key(sql, &params), sql, &params, &many);
        assert!(reads.get(reads.key(sql, &params), sql, &params).is_none());
        // Parameters are compared exactly: a NaN is itself, 1 is not 1.0 nor "1".
        let nan = [Value::Float(f64::NAN)];
        reads.put(reads.key(sql, &nan), sql, &nan, &[row("nan")]);
        assert_eq!(reads.get(reads.key(sql, &nan), sql, &nan), Some(&[row("nan")][..]));
        let one = [Value::Int(1)];
        reads.clear();
        reads.put(reads.key(sql, &one), sql, &one, &[row("int")]);
        for other in [Value::Float(1.0), Value::Text("1".into()), Value::Time(1)] {
            assert!(reads.get(reads.key(sql, std::slice::from_ref(&other)), sql, &[other]).is_none());
        }
        assert!(reads.get(reads.key(sql, &one), "SELECT a FROM t WHERE c = ?", &one).is_none());
    }

    #[test]
    fn only_a_plain_select_is_kept() {
        for sql in [
            "SELECT password FROM subscriber WHERE username = ? AND domain = ?",
            "select a from t",
            "  SELECT * FROM location WHERE expires > ?",
        ] {
            assert!(Reads::cacheable(sql), "{sql}");
        }
        for sql in [
            "UPDATE t SET a = 1",
            "SELECT random()",
            "SELECT a FROM t WHERE d > datetime('now')",
            "SELECT a FROM t WHERE d > CURRENT_TIMESTAMP",
            "select a from t where d > current_date",
            "SELECT a FROM t; DELETE FROM t",
            "SELECT",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            assert!(!Reads::cacheable(sql), "{sql}");
        }
    }
}
