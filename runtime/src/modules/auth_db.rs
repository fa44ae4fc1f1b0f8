//! auth_db: `www_authorize`/`proxy_authorize` with the HA1 from the
//! `subscriber` table (OpenSER 1.3's auth_db), over [`crate::db`].
//!
//! The row is found by `user_column` = the credentials' user name and, with
//! `use_domain`, `domain_column` = the `@domain` of the user name or else the
//! realm. The column read is `password_column` (`ha1` by default), or
//! `password_column_2` (`ha1b`) when the user name has a domain part; with
//! `calculate_ha1` it holds the plaintext password and HA1 is computed from
//! the whole user name, the realm and it. The columns of `load_credentials`
//! (`rpid` by default) become AVPs once authorized. Table and column names
//! come from the config and are checked to be plain identifiers; message data
//! only ever goes in as query parameters.
//!
//! The query runs while the worker waits ([`db::Db::query_now`], as OpenSER's worker
//! processes did), bounded by the database's timeout; a database that fails
//! or does not answer in time gets the request a 500 and a log line.

use crate::db::{self, Value as DbValue};
use crate::script::args::Format;
use crate::script::value::AvpName;
use crate::script::{Ctx, Value};

use super::auth::{self, Credentials, Kind};

/// Opens auth_db's database at start-up when the config loads auth_db, and
/// checks the `subscriber` table's version: a proxy that cannot check
/// passwords does not start.
pub async fn start(config: &crate::script::Config) -> Result<(), String> {
    if !config.params.is_loaded("auth_db") {
        return Ok(());
    }
    let explicit = config.params.explicit("auth_db", "db_url").map(|v| v.as_text().into_owned());
    let database = db::open_for_module("auth_db", explicit.as_deref(), db::OPENSER_DEFAULT_URL).await?;
    db::schema::check(&database, &["subscriber"]).await.map_err(|e| format!("auth_db: {e}"))?;
    let _ = config.auth.get_or_init(config).db.set(database);
    Ok(())
}

/// `www_authorize(realm, table)`: checks the Authorization credentials for
/// `realm` (empty: the To host of a REGISTER, else the From host).
pub fn www_authorize(ctx: &mut Ctx, realm: &Format, table: &str) -> i32 {
    authorize(ctx, realm, table, Kind::Www)
}

/// `proxy_authorize(realm, table)`: the same with Proxy-Authorization.
pub fn proxy_authorize(ctx: &mut Ctx, realm: &Format, table: &str) -> i32 {
    authorize(ctx, realm, table, Kind::Proxy)
}

/// What a successful lookup loads into AVPs: (AVP, column).
fn credential_columns(list: &str) -> Vec<(String, String)> {
    list.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once('=') {
            Some((avp, column)) => (avp.trim().to_string(), column.trim().to_string()),
            None => (item.to_string(), item.to_string()),
        })
        .collect()
}

/// auth_db's modparams, read once ([`crate::script::ModuleSettings`]), and
/// the parts of its query that do not depend on the table.
pub struct Settings {
    calc_ha1: bool,
    use_domain: bool,
    /// `load_credentials`: (AVP, column).
    loads: Vec<(String, String)>,
    /// `SELECT password_column, loads… FROM `, and the same with
    /// `password_column_2`; or why a column name is refused.
    select: [Result<String, db::DbError>; 2],
    /// ` WHERE user_column = ?[ AND domain_column = ?]`, or why a column
    /// name is refused.
    filter: Result<String, db::DbError>,
}

impl Settings {
    fn read(params: &crate::script::ModParams) -> Settings {
        let text = |p: &str| params.get("auth_db", p).as_text().into_owned();
        let use_domain = params.int("auth_db", "use_domain") != 0;
        let loads = credential_columns(&text("load_credentials"));
        let loaded = loads.iter().try_fold(String::new(), |mut cols, (_, c)| {
            cols.push_str(", ");
            cols.push_str(db::ident(c)?);
            Ok(cols)
        });
        let select = |password: &str| -> Result<String, db::DbError> {
            Ok(format!("SELECT {}{} FROM ", db::ident(password)?, loaded.clone()?))
        };
        let filter = (|| -> Result<String, db::DbError> {
            let mut filter = format!(" WHERE {} = ?", db::ident(&text("user_column"))?);
            if use_domain {
                filter.push_str(&format!(" AND {} = ?", db::ident(&text("domain_column"))?));
            }
            Ok(filter)
        })();
        Settings {
            calc_ha1: params.int("auth_db", "calculate_ha1") != 0,
            use_domain,
            select: [select(&text("password_column")), select(&text("password_column_2"))],
            filter,
            loads,
        }
    }
}

fn authorize(ctx: &mut Ctx, realm: &Format, table: &str, kind: Kind) -> i32 {
    let config = ctx.config;
    let settings = config.auth_db.get_or_read(&config.params, Settings::read);
    let (calc_ha1, use_domain, loads) = (settings.calc_ha1, settings.use_domain, &settings.loads);
    let Some(database) = config.auth.get_or_init(config).db.get().cloned() else {
        tracing::error!("auth_db: no database (the proxy was not started with auth_db loaded)");
        super::sl::reply(ctx, 500, "Server Internal Error");
        return auth::ERROR;
    };
    let mut loaded: Vec<(String, Option<String>)> = Vec::new();
    let rc = auth::authorize(ctx, realm, kind, |creds: &Credentials<'_>, realm: &str| {
        let (user, domain) = creds.user_and_domain();
        // password_column_2 (ha1b) when the user name has a domain part.
        let which = usize::from(domain.is_some() && !calc_ha1);
        let sql = (|| -> Result<String, db::DbError> {
            let select = settings.select[which].as_ref().map_err(Clone::clone)?;
            let table = db::ident(table)?;
            let filter = settings.filter.as_ref().map_err(Clone::clone)?;
            let mut sql = String::with_capacity(select.len() + table.len() + filter.len());
            sql.push_str(select);
            sql.push_str(table);
            sql.push_str(filter);
            Ok(sql)
        })();
        let sql = match sql {
            Ok(sql) => sql,
            Err(e) => {
                tracing::error!(error = %e, "auth_db: bad table or column name");
                return Err(());
            }
        };
        let mut args = vec![DbValue::from(user)];
        if use_domain {
            args.push(DbValue::from(domain.unwrap_or(realm)));
        }
        let rows = match database.query_now(sql, args) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "auth_db: the subscriber lookup failed");
                return Err(());
            }
        };
        let Some(row) = rows.first() else { return Ok(None) };
        let secret = row.text(0).unwrap_or_default();
        for (i, (avp, _)) in loads.iter().enumerate() {
            loaded.push((avp.clone(), row.text(i + 1)));
        }
        Ok(Some(if calc_ha1 { auth::ha1(&creds.username, realm, &secret) } else { secret }))
    });
    if rc == auth::AUTHORIZED {
        for (avp, value) in loaded {
            let Some(value) = value.filter(|v| !v.is_empty()) else { continue };
            let spec = avp.strip_prefix("$avp(").and_then(|s| s.strip_suffix(')')).unwrap_or(&avp);
            match AvpName::parse(spec).or_else(|| AvpName::parse(&format!("s:{spec}"))) {
                Some(name) => ctx.avps.push(name, Value::Str(value)),
                None => tracing::error!(avp, "auth_db: load_credentials names no AVP"),
            }
        }
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_credentials_lists() {
        assert_eq!(credential_columns("rpid"), [("rpid".to_string(), "rpid".to_string())]);
        assert_eq!(
            credential_columns(" $avp(s:caller)=rpid ; email_address;"),
            [("$avp(s:caller)".to_string(), "rpid".to_string()), ("email_address".into(), "email_address".into())]
        );
        assert!(credential_columns("").is_empty());
    }

    #[test]
    fn the_query_is_prepared_once_and_a_bad_column_spoils_only_what_uses_it() {
        let mut params = crate::script::ModParams::default();
        params.set("auth_db", "load_credentials", Value::str("$avp(s:caller)=rpid;email_address"));
        params.set("auth_db", "use_domain", Value::Int(1));
        let s = Settings::read(&params);
        assert_eq!(s.select[0].as_deref(), Ok("SELECT ha1, rpid, email_address FROM "));
        assert_eq!(s.select[1].as_deref(), Ok("SELECT ha1b, rpid, email_address FROM "));
        assert_eq!(s.filter.as_deref(), Ok(" WHERE username = ? AND domain = ?"));
        params.set("auth_db", "password_column_2", Value::str("ha1b; DROP TABLE subscriber"));
        let s = Settings::read(&params);
        assert!(s.select[0].is_ok() && s.filter.is_ok());
        assert!(s.select[1].is_err());
    }
}
