//! MySQL and MariaDB (mysql_async, which pools). Statements go through the
//! binary protocol (server-side prepared, cached per connection), so values
//! come back typed: `DATETIME` as a date, numbers as numbers.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, TxOpts};

use super::{civil, split_batch, unix, DbError, Row, ServerUrl, Stmt, Value};

#[derive(Clone)]
pub(super) struct Mysql {
    pool: Pool,
}

fn err(e: mysql_async::Error) -> DbError {
    match e {
        mysql_async::Error::Server(s) => DbError::Query(format!("{} ({}): {}", s.code, s.state, s.message)),
        mysql_async::Error::Io(e) => DbError::Connect(e.to_string()),
        mysql_async::Error::Driver(e) => DbError::Connect(e.to_string()),
        other => DbError::Query(other.to_string()),
    }
}

fn to_my(v: &Value) -> mysql_async::Value {
    match v {
        Value::Null => mysql_async::Value::NULL,
        Value::Int(i) => mysql_async::Value::Int(*i),
        Value::Float(f) => mysql_async::Value::Double(*f),
        Value::Text(t) => mysql_async::Value::Bytes(t.as_bytes().to_vec()),
        Value::Time(t) => {
            let (y, mo, d, h, mi, s) = civil(*t);
            // DATETIME holds years 1000 to 9999.
            let y = y.clamp(1000, 9999);
            mysql_async::Value::Date(y as u16, mo as u8, d as u8, h as u8, mi as u8, s as u8, 0)
        }
    }
}

fn from_my(v: mysql_async::Value) -> Value {
    match v {
        mysql_async::Value::NULL => Value::Null,
        mysql_async::Value::Bytes(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
        mysql_async::Value::Int(i) => Value::Int(i),
        mysql_async::Value::UInt(u) => Value::Int(i64::try_from(u).unwrap_or(i64::MAX)),
        mysql_async::Value::Float(f) => Value::Float(f.into()),
        mysql_async::Value::Double(f) => Value::Float(f),
        mysql_async::Value::Date(y, mo, d, h, mi, s, _) => {
            Value::Time(unix(y.into(), mo.max(1).into(), d.max(1).into(), h.into(), mi.into(), s.into()))
        }
        mysql_async::Value::Time(neg, days, h, mi, s, _) => {
            let secs = i64::from(days) * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
            Value::Int(if neg { -secs } else { secs })
        }
    }
}

fn params(values: &[Value]) -> Params {
    if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(values.iter().map(to_my).collect())
    }
}

impl Mysql {
    pub(super) fn new(url: &ServerUrl, timeout: Duration) -> Result<Mysql, DbError> {
        let constraints = PoolConstraints::new(0, 16).ok_or_else(|| DbError::Connect("pool constraints".into()))?;
        let opts = OptsBuilder::default()
            .ip_or_hostname(url.host.clone())
            .tcp_port(url.port.unwrap_or(3306))
            .user(Some(url.user.clone()).filter(|u| !u.is_empty()))
            .pass(Some(url.password.clone()).filter(|p| !p.is_empty()))
            .db_name(Some(url.database.clone()))
            // Stay on the TCP address the URL names (no switch to a local socket).
            .prefer_socket(false)
            .stmt_cache_size(64)
            .wait_timeout(Some(u32::try_from(timeout.as_secs().max(1) * 60).unwrap_or(28_800) as usize))
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        Ok(Mysql { pool: Pool::new(opts) })
    }

    pub(super) async fn query(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>, DbError> {
        let mut conn = self.pool.get_conn().await.map_err(err)?;
        let rows: Vec<mysql_async::Row> = conn.exec(sql, params(&values)).await.map_err(err)?;
        Ok(rows.into_iter().map(|r| Row(r.unwrap().into_iter().map(from_my).collect())).collect())
    }

    pub(super) async fn transaction(&self, stmts: Vec<Stmt>) -> Result<u64, DbError> {
        let mut conn = self.pool.get_conn().await.map_err(err)?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(err)?;
        let mut changed = 0;
        for s in &stmts {
            tx.exec_drop(s.sql.as_str(), params(&s.params)).await.map_err(err)?;
            changed += tx.affected_rows();
        }
        tx.commit().await.map_err(err)?;
        Ok(changed)
    }

    pub(super) async fn batch(&self, sql: &str) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await.map_err(err)?;
        for s in split_batch(sql) {
            conn.query_drop(s).await.map_err(err)?;
        }
        Ok(())
    }
}
