//! PostgreSQL (tokio-postgres), pooled by deadpool-postgres. Statements are
//! prepared (and cached per connection); each parameter is converted to the
//! type the server inferred for it, each result column read by its type.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{ManagerConfig, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;

use super::{numbered_placeholders, split_batch, DbError, Row, ServerUrl, Stmt, Value};

#[derive(Clone)]
pub(super) struct Postgres {
    pool: deadpool_postgres::Pool,
}

fn err(e: tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError::Query(format!("{}: {}", db.code().code(), db.message())),
        None if e.is_closed() => DbError::Connect(e.to_string()),
        None => DbError::Query(e.to_string()),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> DbError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
            Some(_) => err(e),
            None => DbError::Connect(e.to_string()),
        },
        deadpool_postgres::PoolError::Timeout(_) => DbError::Connect("timed out waiting for a connection".into()),
        other => DbError::Connect(other.to_string()),
    }
}

impl Postgres {
    pub(super) fn new(url: &ServerUrl, timeout: Duration) -> Result<Postgres, DbError> {
        let mut cfg = deadpool_postgres::Config::new();
        cfg.host = Some(url.host.clone());
        cfg.port = url.port;
        cfg.user = Some(url.user.clone()).filter(|u| !u.is_empty());
        cfg.password = Some(url.password.clone()).filter(|p| !p.is_empty());
        cfg.dbname = Some(url.database.clone());
        cfg.connect_timeout = Some(timeout);
        cfg.application_name = Some("serc".into());
        cfg.manager = Some(ManagerConfig { recycling_method: RecyclingMethod::Fast });
        cfg.pool = Some(PoolConfig {
            max_size: 16,
            timeouts: Timeouts { wait: Some(timeout), create: Some(timeout), recycle: Some(timeout) },
            ..PoolConfig::default()
        });
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| DbError::Connect(format!("bad PostgreSQL settings: {e}")))?;
        Ok(Postgres { pool })
    }

    pub(super) async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, DbError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(&numbered_placeholders(sql)).await.map_err(err)?;
        let args = convert(&params, stmt.params())?;
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&stmt, &refs).await.map_err(err)?;
        rows.iter().map(read_row).collect()
    }

    pub(super) async fn transaction(&self, stmts: Vec<Stmt>) -> Result<u64, DbError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(err)?;
        let mut changed = 0;
        for s in &stmts {
            let stmt = tx.prepare_cached(&numbered_placeholders(&s.sql)).await.map_err(err)?;
            let args = convert(&s.params, stmt.params())?;
            let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
            changed += tx.execute(&stmt, &refs).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(changed)
    }

    pub(super) async fn batch(&self, sql: &str) -> Result<(), DbError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(err)?;
        for s in split_batch(sql) {
            tx.batch_execute(s).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }
}

type Arg = Box<dyn ToSql + Sync + Send>;

fn system_time(t: i64) -> SystemTime {
    if t >= 0 {
        UNIX_EPOCH + Duration::from_secs(t as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.unsigned_abs())
    }
}

/// Each value as the Rust type the server's inferred parameter type takes.
fn convert(values: &[Value], types: &[Type]) -> Result<Vec<Arg>, DbError> {
    if values.len() != types.len() {
        return Err(DbError::Query(format!("{} parameters for {} placeholders", values.len(), types.len())));
    }
    values.iter().zip(types).map(|(v, ty)| one(v, ty)).collect()
}

fn one(v: &Value, ty: &Type) -> Result<Arg, DbError> {
    let mismatch = || DbError::Query(format!("cannot pass {v:?} as {ty}"));
    let int = |v: &Value| -> Result<Option<i64>, DbError> {
        match v {
            Value::Null => Ok(None),
            Value::Int(i) | Value::Time(i) => Ok(Some(*i)),
            Value::Float(f) => Ok(Some(*f as i64)),
            Value::Text(t) => t.trim().parse().map(Some).map_err(|_| mismatch()),
        }
    };
    let float = |v: &Value| -> Result<Option<f64>, DbError> {
        match v {
            Value::Null => Ok(None),
            Value::Int(i) | Value::Time(i) => Ok(Some(*i as f64)),
            Value::Float(f) => Ok(Some(*f)),
            Value::Text(t) => t.trim().parse().map(Some).map_err(|_| mismatch()),
        }
    };
    Ok(match *ty {
        Type::INT2 => Box::new(int(v)?.map(|i| i16::try_from(i).map_err(|_| mismatch())).transpose()?),
        Type::INT4 => Box::new(int(v)?.map(|i| i32::try_from(i).map_err(|_| mismatch())).transpose()?),
        Type::INT8 => Box::new(int(v)?),
        Type::FLOAT4 => Box::new(float(v)?.map(|f| f as f32)),
        Type::FLOAT8 => Box::new(float(v)?),
        Type::BOOL => Box::new(int(v)?.map(|i| i != 0)),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Box::new(match v {
            Value::Null => None,
            Value::Time(t) | Value::Int(t) => Some(system_time(*t)),
            Value::Text(t) => Some(system_time(super::parse_datetime(t).ok_or_else(mismatch)?)),
            Value::Float(_) => return Err(mismatch()),
        }),
        _ => Box::new(match v {
            Value::Null => None,
            Value::Text(t) => Some(t.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Time(t) => Some(super::datetime_text(*t)),
        }),
    })
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row, DbError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let e = |e: tokio_postgres::Error| DbError::Query(format!("column {}: {e}", col.name()));
        let v = match *col.type_() {
            Type::INT2 => row.try_get::<_, Option<i16>>(i).map_err(e)?.map(|v| Value::Int(v.into())),
            Type::INT4 => row.try_get::<_, Option<i32>>(i).map_err(e)?.map(|v| Value::Int(v.into())),
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(e)?.map(Value::Int),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map_err(e)?.map(|v| Value::Float(v.into())),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map_err(e)?.map(Value::Float),
            Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(e)?.map(|v| Value::Int(v.into())),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => row.try_get::<_, Option<SystemTime>>(i).map_err(e)?.map(|t| {
                Value::Time(match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_secs() as i64,
                    Err(before) => -(before.duration().as_secs() as i64),
                })
            }),
            _ => row.try_get::<_, Option<String>>(i).map_err(e)?.map(Value::Text),
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}
