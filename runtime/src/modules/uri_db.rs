//! uri_db: `check_to`, `check_from` and `does_uri_exist` (OpenSER 1.3's
//! uri_db): whether the authenticated user may use the To/From user name,
//! and whether the Request-URI names a subscriber.
//!
//! Without `use_uri_table` the To/From user must equal the user name of the
//! credentials `www_authorize`/`proxy_authorize` accepted (without regard to
//! case) and no database is needed: an empty `db_url` leaves the module
//! without one, as in OpenSER 1.3. With `use_uri_table` the `uri` table lists
//! the URI user names each (user, realm) may use. `does_uri_exist` looks the
//! Request-URI's user (and with `use_domain` its host) up in the `uri` or the
//! `subscriber` table. A database that fails answers with OpenSER's error
//! codes and a log line.

use std::sync::{Arc, OnceLock};

use crate::db::{self, Db, Value as DbValue};
use crate::script::Ctx;

use super::auth::Credentials;

/// uri_db's database, if it has one.
#[derive(Clone, Default)]
pub struct UriDbSlot(Arc<OnceLock<Db>>);

impl std::fmt::Debug for UriDbSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "UriDbSlot(database)" } else { "UriDbSlot(no database)" })
    }
}

/// Opens the database when the config loads uri_db with a non-empty
/// `db_url` (an unset one is OpenSER's default: the embedded SQLite file).
pub async fn start(config: &crate::script::Config) -> Result<(), String> {
    let params = &config.params;
    if !params.is_loaded("uri_db") {
        return Ok(());
    }
    let err = |e: db::DbError| format!("uri_db: {e}");
    let explicit = params.explicit("uri_db", "db_url").map(|v| v.as_text().into_owned());
    let use_uri_table = params.int("uri_db", "use_uri_table") != 0;
    if explicit.as_deref() == Some("") {
        if use_uri_table {
            return Err("uri_db: use_uri_table needs a database, and db_url is empty".to_string());
        }
        return Ok(());
    }
    let database =
        db::open_for_module("uri_db", explicit.as_deref(), "mysql://openserro:openserro@localhost/openser").await?;
    let table = if use_uri_table { "uri_table" } else { "subscriber_table" };
    let name = params.get("uri_db", table).as_text().into_owned();
    if name == "uri" || name == "subscriber" {
        db::schema::check(&database, &[name.as_str()]).await.map_err(err)?;
    }
    let _ = config.uri_db.0.set(database);
    Ok(())
}

fn text(ctx: &Ctx, param: &str) -> String {
    ctx.config.params.get("uri_db", param).as_text().into_owned()
}

/// Rows of `SELECT key_columns[0] FROM table WHERE each key column = value`:
/// some, none, or an error (already logged).
fn exists(ctx: &Ctx, table: &str, keys: &[(String, &str)]) -> Result<bool, ()> {
    let Some(database) = ctx.config.uri_db.0.get() else {
        tracing::error!("uri_db: no database (db_url is empty)");
        return Err(());
    };
    let sql = (|| -> Result<String, db::DbError> {
        let first = db::ident(&keys[0].0)?;
        let mut sql = format!("SELECT {first} FROM {} WHERE ", db::ident(table)?);
        for (i, (column, _)) in keys.iter().enumerate() {
            if i > 0 {
                sql.push_str(" AND ");
            }
            sql.push_str(db::ident(column)?);
            sql.push_str(" = ?");
        }
        Ok(sql)
    })();
    let sql = sql.map_err(|e| tracing::error!(error = %e, "uri_db: bad table or column name"))?;
    let args = keys.iter().map(|(_, v)| DbValue::from(*v)).collect();
    match database.query_now(sql, args) {
        Ok(rows) => Ok(!rows.is_empty()),
        Err(e) => {
            tracing::error!(error = %e, "uri_db: the query failed");
            Err(())
        }
    }
}

/// OpenSER 1.3's `check_username`: 1 when the authorized credentials may use
/// `uri`'s user name; -2 no authorized credentials, -4 no user in the URI,
/// -8 a database error, -9 not in the uri table, -10 another user name.
fn check_username(ctx: &Ctx, uri_text: &str) -> i32 {
    let Some(value) = ctx.authorized.credentials(ctx.msg) else {
        tracing::error!("uri_db: no authorized credentials: call www_authorize or proxy_authorize first");
        return -2;
    };
    let Some(creds) = Credentials::parse(value) else { return -2 };
    let Ok(uri) = crate::sip::uri::parse(uri_text) else {
        tracing::error!("uri_db: the URI does not parse");
        return -1;
    };
    let user = uri.user_unescaped();
    if user.is_empty() {
        return -4;
    }
    let (digest_user, _) = creds.user_and_domain();
    if ctx.config.params.int("uri_db", "use_uri_table") != 0 {
        let keys = [
            (text(ctx, "uri_user_column"), digest_user),
            (text(ctx, "uri_domain_column"), &*creds.realm),
            (text(ctx, "uri_uriuser_column"), &*user),
        ];
        return match exists(ctx, &text(ctx, "uri_table"), &keys) {
            Ok(true) => 1,
            Ok(false) => -9,
            Err(()) => -8,
        };
    }
    if user.eq_ignore_ascii_case(digest_user) {
        1
    } else {
        -10
    }
}

/// `check_to()`: the To user is the authenticated user's (a REGISTER for
/// oneself).
pub fn check_to(ctx: &mut Ctx) -> i32 {
    let to = ctx.msg.text(ctx.msg.to().uri).to_string();
    check_username(ctx, &to)
}

/// `check_from()`: the From user is the authenticated user's.
pub fn check_from(ctx: &mut Ctx) -> i32 {
    let from = ctx.msg.text(ctx.msg.from().uri).to_string();
    check_username(ctx, &from)
}

/// `does_uri_exist()`: the Request-URI's user is a subscriber (or listed in
/// the uri table); -5 when not, -4 a database error, -1 an unparsable URI.
pub fn does_uri_exist(ctx: &mut Ctx) -> i32 {
    let ruri = ctx.request_uri().to_string();
    let Ok(uri) = crate::sip::uri::parse(&ruri) else {
        tracing::error!("does_uri_exist: the Request-URI does not parse");
        return -1;
    };
    let user = uri.user_unescaped();
    let (table, user_col, domain_col) = if ctx.config.params.int("uri_db", "use_uri_table") != 0 {
        ("uri_table", "uri_uriuser_column", "uri_domain_column")
    } else {
        ("subscriber_table", "subscriber_user_column", "subscriber_domain_column")
    };
    let mut keys = vec![(text(ctx, user_col), &*user)];
    if ctx.config.params.int("uri_db", "use_domain") != 0 {
        keys.push((text(ctx, domain_col), uri.host_text));
    }
    match exists(ctx, &text(ctx, table), &keys) {
        Ok(true) => 1,
        Ok(false) => -5,
        Err(()) => -4,
    }
}
